//! Validation of embedded resources (`x-kubernetes-embedded-resource`) inside custom resources:
//! apiVersion, kind and metadata (mirrors apiextensions-apiserver
//! pkg/apiserver/schema/objectmeta/validation.go).

use crate::structural::Structural;
use crate::validation::render_value;
use apiserver_apimachinery::names::{NameRule, is_dns1035_label, validate_object_meta};
use apiserver_apimachinery::{FieldError, FieldPath};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::{Map, Value};

impl Structural {
    /// Validates every embedded resource below the root (the root's own metadata is the
    /// server's generic object-meta validation).
    pub fn validate_embedded_resources(&self, obj: &Value) -> Vec<FieldError> {
        let mut errs = Vec::new();
        walk(&FieldPath::default(), obj, self, &mut errs);
        errs
    }
}

fn walk(p: &FieldPath, x: &Value, s: &Structural, errs: &mut Vec<FieldError>) {
    match x {
        Value::Object(m) => {
            if s.embedded_resource {
                embedded(p, m, errs);
            }
            for (k, v) in m {
                if let Some(prop) = s.properties.get(k) {
                    walk(&p.child(k), v, prop, errs);
                } else if let Some(ap) = s.additional_schema() {
                    walk(&p.key(k), v, ap, errs);
                }
            }
        }
        Value::Array(a) => {
            if let Some(items) = s.items.as_deref() {
                for (i, v) in a.iter().enumerate() {
                    walk(&p.index(i), v, items, errs);
                }
            }
        }
        _ => {}
    }
}

fn embedded(p: &FieldPath, x: &Map<String, Value>, errs: &mut Vec<FieldError>) {
    if !x.contains_key("apiVersion") {
        errs.push(FieldError::required(&p.child("apiVersion"), ""));
    }
    if !x.contains_key("kind") {
        errs.push(FieldError::required(&p.child("kind"), ""));
    }
    for (k, v) in x {
        match k.as_str() {
            "apiVersion" => {
                let f = p.child("apiVersion");
                match v.as_str() {
                    None => errs.push(FieldError::invalid(&f, render_value(v), "must be a string")),
                    Some("") => errs.push(FieldError::invalid_str(&f, "", "must not be empty")),
                    Some(av) if av.matches('/').count() > 1 => errs.push(FieldError::invalid_str(
                        &f,
                        av,
                        format!("unexpected GroupVersion string: {av}"),
                    )),
                    Some(_) => {}
                }
            }
            "kind" => {
                let f = p.child("kind");
                match v.as_str() {
                    None => errs.push(FieldError::invalid(&f, render_value(v), "must be a string")),
                    Some("") => errs.push(FieldError::invalid_str(&f, "", "must not be empty")),
                    Some(kind) => {
                        let e = is_dns1035_label(&kind.to_lowercase());
                        if !e.is_empty() {
                            errs.push(FieldError::invalid_str(
                                &f,
                                kind,
                                format!(
                                    "may have mixed case, but should otherwise match: {}",
                                    e.join(",")
                                ),
                            ));
                        }
                    }
                }
            }
            "metadata" => {
                let f = p.child("metadata");
                match serde_json::from_value::<ObjectMeta>(v.clone()) {
                    Err(e) => errs.push(FieldError::invalid(&f, render_value(v), e.to_string())),
                    Ok(mut meta) => {
                        if meta.name.as_deref().unwrap_or("").is_empty() {
                            meta.name = Some("fakename".into());
                        }
                        let namespaced = meta.namespace.as_deref().is_some_and(|n| !n.is_empty());
                        for mut e in validate_object_meta(&meta, namespaced, NameRule::PathSegment)
                        {
                            e.field = rebase(&f, &e.field);
                            errs.push(e);
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

/// Moves a `metadata.x` path under `base` (`spec.template.metadata.x`).
fn rebase(base: &FieldPath, p: &FieldPath) -> FieldPath {
    let rest = p.as_str().strip_prefix("metadata").unwrap_or(p.as_str());
    FieldPath::root(&format!("{base}{rest}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn embedded_resources_are_checked() {
        let s = Structural::from_json(&json!({"type": "object", "properties": {"spec": {
            "type": "object", "properties": {"template": {"type": "object",
                "x-kubernetes-embedded-resource": true,
                "x-kubernetes-preserve-unknown-fields": true}}}}}))
        .unwrap();
        let errs: Vec<String> = s
            .validate_embedded_resources(&json!({"spec": {"template": {
                "kind": "my_kind", "metadata": {"name": "a/b", "labels": {"bad key!": "v"}}}}}))
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(errs[0], "spec.template.apiVersion: Required value");
        assert!(errs[1].starts_with(
            "spec.template.kind: Invalid value: \"my_kind\": may have mixed case, but should otherwise match: "
        ));
        assert_eq!(
            errs[2],
            "spec.template.metadata.name: Invalid value: \"a/b\": may not contain '/'"
        );
        assert!(errs[3].starts_with("spec.template.metadata.labels: Invalid value: \"bad key!\""));
        assert!(
            s.validate_embedded_resources(&json!({"spec": {"template": {
                "apiVersion": "v1", "kind": "Pod", "metadata": {}}}}))
                .is_empty()
        );
    }
}
