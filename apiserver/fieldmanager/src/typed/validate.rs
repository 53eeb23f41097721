//! Structural validation of a value against its type (mirrors structured-merge-diff
//! typed/validate.go, as `AsTyped` runs it on an applied configuration): keys a struct does not
//! declare, associative list items without usable keys, duplicated keys. Scalar kinds are not
//! checked.

use std::collections::BTreeSet;

use serde_json::Value;

use super::{error_at, list_item_element};
use crate::path::PathElement;
use crate::schema::{Handling, ListKind, Schema, TypeRef};

/// The validation errors of `value` (each `.path: message`), empty when it fits the type.
pub fn validate(
    schema: &Schema,
    tr: &TypeRef,
    value: &Value,
    allow_duplicates: bool,
) -> Vec<String> {
    let mut errs = Vec::new();
    walk(
        schema,
        tr,
        value,
        allow_duplicates,
        &mut Vec::new(),
        &mut errs,
    );
    errs
}

/// Upstream's rendering of several validation errors.
pub fn format_errors(errs: &[String]) -> String {
    match errs {
        [one] => one.clone(),
        _ => {
            let mut lines = vec!["errors:".to_string()];
            lines.extend(errs.iter().map(|e| format!("  {e}")));
            lines.join("\n")
        }
    }
}

fn walk(
    schema: &Schema,
    tr: &TypeRef,
    value: &Value,
    allow_duplicates: bool,
    path: &mut Vec<PathElement>,
    errs: &mut Vec<String>,
) {
    let Some(h) = schema.handling(tr, Some(value)) else {
        errs.push(error_at(path, "schema error: no type found matching"));
        return;
    };
    match h {
        Handling::Scalar => {}
        Handling::List(list) => {
            let items = match value {
                Value::Null => return,
                Value::Array(items) => items,
                other => {
                    errs.push(error_at(path, format!("expected list, got {other}")));
                    return;
                }
            };
            let mut seen = BTreeSet::new();
            for (i, item) in items.iter().enumerate() {
                let pe = if list.kind == ListKind::Atomic {
                    PathElement::Index(i)
                } else {
                    match list_item_element(schema, list, item) {
                        Ok(pe) => pe,
                        Err(e) => {
                            errs.push(error_at(path, format!("element {i}: {e}")));
                            return;
                        }
                    }
                };
                if !matches!(pe, PathElement::Index(_))
                    && !seen.insert(pe.clone())
                    && !allow_duplicates
                {
                    errs.push(error_at(path, format!("duplicate entries for key {pe}")));
                }
                path.push(pe);
                walk(schema, &list.element, item, allow_duplicates, path, errs);
                path.pop();
            }
        }
        Handling::Map(map, _) => {
            let obj = match value {
                Value::Null => return,
                Value::Object(obj) => obj,
                other => {
                    errs.push(error_at(path, format!("expected map, got {other}")));
                    return;
                }
            };
            for (key, val) in obj {
                path.push(PathElement::Field(key.clone()));
                match map.type_of(key) {
                    Some(t) => walk(schema, t, val, allow_duplicates, path, errs),
                    None => {
                        errs.push(error_at(path, "field not declared in schema"));
                        path.pop();
                        return;
                    }
                }
                path.pop();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::builtin_schema;
    use serde_json::json;

    #[test]
    fn reports_upstream_messages() {
        let s = builtin_schema();
        let tr = TypeRef::named("io.k8s.api.apps.v1.Deployment");
        let ok = json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"replicas": 1}});
        assert!(validate(s, &tr, &ok, false).is_empty());
        let unknown = json!({"spec": {"replicas": 1, "foo": 2}});
        assert_eq!(
            validate(s, &tr, &unknown, false),
            vec![".spec.foo: field not declared in schema"]
        );
        let dups = json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "env": [
            {"name": "X"}, {"name": "X"}, {"name": "Y"}, {"name": "Y"}]}]}}}});
        let errs = validate(s, &tr, &dups, false);
        assert_eq!(
            format_errors(&errs),
            "errors:\n  .spec.template.spec.containers[name=\"a\"].env: duplicate entries for key [name=\"X\"]\n  .spec.template.spec.containers[name=\"a\"].env: duplicate entries for key [name=\"Y\"]"
        );
        assert!(validate(s, &tr, &dups, true).is_empty());
        let keyless = json!({"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}});
        assert_eq!(
            validate(s, &tr, &keyless, false),
            vec![
                ".spec.template.spec.containers: element 0: associative list with keys has an element that omits all key fields [\"name\"] (and doesn't have default values for any key fields)"
            ]
        );
    }
}
