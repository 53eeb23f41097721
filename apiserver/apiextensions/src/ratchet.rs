//! Validation ratcheting for custom resource updates (mirrors apiextensions-apiserver
//! pkg/apiserver/schema/{ratcheting,cel}, feature CRDValidationRatcheting, on by default): an
//! error found in a part of the object that the update did not change is dropped, so tightening
//! a schema does not make existing objects impossible to update. A node is unchanged when the
//! correlated old node is equal; nodes correlate through object properties and map values, items
//! of `map` lists by their keys and items of `set` lists by value; items of atomic lists have no
//! old counterpart (only an unchanged whole list ratchets them).

use crate::structural::{AdditionalProperties, Structural};
use apiserver_apimachinery::FieldError;
use serde_json::Value;

/// One step of a field path: `.name` or `[index-or-key]`.
#[derive(Debug, PartialEq)]
enum Step<'a> {
    Name(&'a str),
    Bracket(&'a str),
}

/// Splits `spec.items[2].labels[a.b]` into its steps (brackets may contain dots).
fn steps(path: &str) -> Vec<Step<'_>> {
    let mut out = Vec::new();
    let bytes = path.as_bytes();
    let mut i = 0;
    let mut start = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'.' => {
                if i > start {
                    out.push(Step::Name(&path[start..i]));
                }
                start = i + 1;
            }
            b'[' => {
                if i > start {
                    out.push(Step::Name(&path[start..i]));
                }
                let end = path[i..].find(']').map_or(path.len(), |e| i + e);
                out.push(Step::Bracket(&path[i + 1..end]));
                i = end;
                start = end + 1;
            }
            _ => {}
        }
        i += 1;
    }
    if start < path.len() {
        out.push(Step::Name(&path[start..]));
    }
    out
}

fn child_schema<'s>(s: Option<&'s Structural>, name: &str) -> Option<&'s Structural> {
    let s = s?;
    s.properties.get(name).or(match &s.additional_properties {
        Some(AdditionalProperties::Schema(a)) => Some(a.as_ref()),
        _ => None,
    })
}

/// The item of `old` (a list) that correlates with `item` under the list's type.
fn correlate<'v>(schema: Option<&Structural>, old: &'v Value, item: &Value) -> Option<&'v Value> {
    let s = schema?;
    let list = old.as_array()?;
    match s.list_type.as_deref() {
        Some("map") if !s.list_map_keys.is_empty() => list
            .iter()
            .find(|o| s.list_map_keys.iter().all(|k| o.get(k) == item.get(k))),
        Some("set") => list.iter().find(|o| *o == item),
        _ => None,
    }
}

/// Whether the error at `path` lies in a part of `new` equal to its old counterpart.
fn unchanged(schema: &Structural, new: &Value, old: &Value, path: &str) -> bool {
    let (mut n, mut o, mut s) = (new, old, Some(schema));
    if n == o {
        return true;
    }
    for step in steps(path) {
        let (next_n, next_o, next_s) = match step {
            Step::Name(k) | Step::Bracket(k) if n.is_object() => {
                (n.get(k), o.get(k), child_schema(s, k))
            }
            Step::Bracket(i) if n.is_array() => {
                let Some(item) = i.parse::<usize>().ok().and_then(|i| n.get(i)) else {
                    return false;
                };
                let item_schema = s.and_then(|s| s.items.as_deref());
                (Some(item), correlate(s, o, item), item_schema)
            }
            _ => return false,
        };
        let (Some(nn), Some(oo)) = (next_n, next_o) else {
            return false;
        };
        if nn == oo {
            return true;
        }
        (n, o, s) = (nn, oo, next_s);
    }
    false
}

/// `errs` (found validating `new` against `schema`) without those in unchanged parts.
pub fn ratchet(
    schema: &Structural,
    new: &Value,
    old: &Value,
    errs: Vec<FieldError>,
) -> Vec<FieldError> {
    errs.into_iter()
        .filter(|e| !unchanged(schema, new, old, e.field.as_str()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Structural {
        Structural::from_json(&json!({"type": "object", "properties": {
            "spec": {"type": "object", "properties": {
                "name": {"type": "string", "maxLength": 3},
                "other": {"type": "string"},
                "ports": {"type": "array", "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["name"],
                    "items": {"type": "object", "required": ["name"], "properties": {
                        "name": {"type": "string"}, "port": {"type": "integer", "maximum": 100}}}},
                "tags": {"type": "array", "items": {"type": "string", "maxLength": 2}}}}}}))
        .expect("structural")
    }

    fn errs(s: &Structural, new: &Value, old: &Value) -> Vec<String> {
        ratchet(s, new, old, s.validate(new, Some(old)))
            .iter()
            .map(|e| e.field.as_str().to_string())
            .collect()
    }

    #[test]
    fn path_steps() {
        assert_eq!(
            steps("spec.items[2].labels[a.b].x"),
            vec![
                Step::Name("spec"),
                Step::Name("items"),
                Step::Bracket("2"),
                Step::Name("labels"),
                Step::Bracket("a.b"),
                Step::Name("x")
            ]
        );
    }

    #[test]
    fn unchanged_invalid_fields_are_ratcheted_changed_ones_are_not() {
        let s = schema();
        let old = json!({"spec": {"name": "toolong", "other": "a",
            "ports": [{"name": "a", "port": 500}, {"name": "b", "port": 1}],
            "tags": ["long", "ok"]}});
        // Only `other` changes: the old violations stay and are not reported.
        let mut new = old.clone();
        new["spec"]["other"] = json!("b");
        assert!(
            errs(&s, &new, &old).is_empty(),
            "{:?}",
            errs(&s, &new, &old)
        );
        // Changing the invalid value to another invalid one is reported.
        new["spec"]["name"] = json!("stilltoolong");
        assert_eq!(errs(&s, &new, &old), ["spec.name"]);
        // Map-list items correlate by key even when reordered.
        let mut new = old.clone();
        new["spec"]["ports"] = json!([{"name": "b", "port": 2}, {"name": "a", "port": 500}]);
        assert!(
            errs(&s, &new, &old).is_empty(),
            "{:?}",
            errs(&s, &new, &old)
        );
        // An atomic list that changed reports errors in its items.
        let mut new = old.clone();
        new["spec"]["tags"] = json!(["long", "ok", "x"]);
        assert_eq!(errs(&s, &new, &old), ["spec.tags[0]"]);
    }
}
