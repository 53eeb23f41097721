//! Whole custom resource validation in upstream's order: OpenAPI schema, embedded resources,
//! list types, CEL rules (mirrors apiextensions-apiserver pkg/registry/customresource/
//! {strategy,validator}.go, the parts that are not generic object-meta validation).

use crate::structural::Structural;
use crate::validation::{render_value, validate_against_schema};
use apiserver_apimachinery::{FieldError, FieldPath};
use serde_json::Value;

impl Structural {
    /// Validates a custom resource (`old` on update): schema, embedded resources, list-type
    /// uniqueness (on update only if the old object had none, as upstream), CEL rules. On update,
    /// schema and CEL errors in parts the update did not change are dropped (ratcheting).
    pub fn validate(&self, obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
        let mut ratcheted = validate_against_schema(&self.raw, obj, None);
        ratcheted.extend(self.validate_cel(obj, old));
        let mut errs = match old {
            Some(o) => crate::ratchet::ratchet(self, obj, o, ratcheted),
            None => ratcheted,
        };
        errs.extend(self.validate_embedded_resources(obj));
        match old {
            Some(o) if !self.validate_list_sets_and_maps(o).is_empty() => {}
            _ => errs.extend(self.validate_list_sets_and_maps(obj)),
        }
        errs
    }

    /// Validates the `status` of a status-subresource update against `properties.status`.
    pub fn validate_status(&self, obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
        let Some(status) = obj.get("status") else {
            return Vec::new();
        };
        let Some(ss) = self.properties.get("status") else {
            return Vec::new();
        };
        let p = FieldPath::root("status");
        let mut sub = Structural {
            type_: "object".into(),
            ..Structural::default()
        };
        sub.properties.insert("status".into(), ss.clone());
        let mut ratcheted = validate_against_schema(&ss.raw, status, Some(&p));
        ratcheted.extend(sub.validate_cel(obj, old));
        let mut errs = match old {
            Some(o) => crate::ratchet::ratchet(&sub, obj, o, ratcheted),
            None => ratcheted,
        };
        errs.extend(sub.validate_embedded_resources(obj));
        errs.extend(sub.validate_list_sets_and_maps(obj));
        errs
    }
}

/// `kind`/`apiVersion` of a custom resource must match the served kind (upstream
/// `ValidateTypeMeta`).
pub fn validate_type_meta(obj: &Value, group: &str, version: &str, kind: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let k = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    if k != kind {
        errs.push(FieldError::invalid_str(
            &FieldPath::root("kind"),
            k,
            format!("must be {kind}"),
        ));
    }
    let gv = format!("{group}/{version}");
    let av = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    if av != gv {
        errs.push(FieldError::invalid_str(
            &FieldPath::root("apiVersion"),
            av,
            format!("must be {gv}"),
        ));
    }
    errs
}

/// Checks a scale replicas path value (`specReplicasPath`/`statusReplicasPath`): a missing
/// value is fine, otherwise an integer in [0, MaxInt32].
pub fn validate_replicas_path(obj: &Value, json_path: &str) -> Vec<FieldError> {
    let p = FieldPath::root(json_path);
    match crate::helpers::get_path(obj, json_path) {
        None => Vec::new(),
        Some(v) => match v.as_i64() {
            None => vec![FieldError::invalid(
                &p,
                0,
                format!(
                    "{} accessor error: {} is of the type {}, expected int64",
                    json_path.trim_start_matches('.'),
                    render_value(v),
                    go_type(v)
                ),
            )],
            Some(n) if n < 0 => vec![FieldError::invalid(
                &p,
                n,
                "should be a non-negative integer",
            )],
            Some(n) if n > i32::MAX as i64 => vec![FieldError::invalid(
                &p,
                n,
                format!("should be less than or equal to {}", i32::MAX),
            )],
            Some(_) => Vec::new(),
        },
    }
}

fn go_type(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "string",
        Value::Bool(_) => "bool",
        Value::Number(_) => "float64",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
        Value::Null => "<nil>",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn whole_resource_and_status() {
        let s = Structural::from_json(&json!({"type": "object", "properties": {
            "spec": {"type": "object", "properties": {"replicas": {"type": "integer", "minimum": 1}}},
            "status": {"type": "object", "properties": {"num": {"type": "integer", "maximum": 10}}}}}))
        .unwrap();
        let errs: Vec<String> = s
            .validate(&json!({"spec": {"replicas": 0}}), None)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            errs,
            vec![
                "spec.replicas: Invalid value: 0: spec.replicas in body should be greater than or equal to 1"
            ]
        );
        let errs = s.validate_status(&json!({"status": {"num": 15}}), None);
        assert_eq!(
            errs[0].to_string(),
            "status.num: Invalid value: 15: num in body should be less than or equal to 10"
        );
        let tm = validate_type_meta(
            &json!({"apiVersion": "a.io/v1", "kind": "Foo"}),
            "a.io",
            "v2",
            "Foo",
        );
        assert_eq!(
            tm[0].to_string(),
            "apiVersion: Invalid value: \"a.io/v1\": must be a.io/v2"
        );
        let r = validate_replicas_path(&json!({"spec": {"replicas": -1}}), ".spec.replicas");
        assert_eq!(
            r[0].to_string(),
            ".spec.replicas: Invalid value: -1: should be a non-negative integer"
        );
    }
}
