//! Uniqueness of `x-kubernetes-list-type: set|map` lists in custom resources (mirrors
//! apiextensions-apiserver pkg/apiserver/schema/listtype/validation.go).

use crate::structural::Structural;
use crate::validation::render_value;
use apiserver_apimachinery::{FieldError, FieldPath};
use serde_json::{Map, Value};

impl Structural {
    /// Duplicate set items and duplicate map-list keys, as `Duplicate value` errors.
    pub fn validate_list_sets_and_maps(&self, obj: &Value) -> Vec<FieldError> {
        let mut errs = Vec::new();
        if let Value::Object(m) = obj {
            object(&FieldPath::default(), self, m, &mut errs);
        }
        errs
    }
}

fn object(p: &FieldPath, s: &Structural, m: &Map<String, Value>, errs: &mut Vec<FieldError>) {
    for (k, v) in m {
        if let Some(sub) = s.properties.get(k) {
            dispatch(&p.child(k), sub, v, errs);
        }
    }
}

fn dispatch(p: &FieldPath, s: &Structural, v: &Value, errs: &mut Vec<FieldError>) {
    match v {
        Value::Array(a) => array(p, s, a, errs),
        Value::Object(m) => object(p, s, m, errs),
        _ => {}
    }
}

/// Canonical identity of a value for set comparison (numbers by value).
fn identity(v: &Value) -> String {
    match v {
        Value::Number(n) => match n.as_i64() {
            Some(i) => i.to_string(),
            None => n.as_f64().map(|f| f.to_string()).unwrap_or_default(),
        },
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .iter()
                .map(|k| format!("{}:{}", Value::from(k.as_str()), identity(&m[*k])))
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        Value::Array(a) => format!("[{}]", a.iter().map(identity).collect::<Vec<_>>().join(",")),
        other => other.to_string(),
    }
}

/// Indices of the second occurrence of each repeated value (upstream reports only that one).
fn non_unique(keys: &[String]) -> Vec<usize> {
    let mut seen: std::collections::HashMap<&str, usize> = Default::default();
    let mut out = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        let c = seen.entry(k.as_str()).or_insert(0);
        *c += 1;
        if *c == 2 {
            out.push(i);
        }
    }
    out
}

fn array(p: &FieldPath, s: &Structural, a: &[Value], errs: &mut Vec<FieldError>) {
    match s.list_type.as_deref() {
        Some("set") => {
            let ids: Vec<String> = a.iter().map(identity).collect();
            for i in non_unique(&ids) {
                errs.push(FieldError::duplicate(&p.index(i), render_value(&a[i])));
            }
        }
        Some("map") => map_list(p, s, a, errs),
        _ => {}
    }
    if let Some(items) = s.items.as_deref() {
        for (i, v) in a.iter().enumerate() {
            dispatch(&p.index(i), items, v, errs);
        }
    }
}

fn map_list(p: &FieldPath, s: &Structural, a: &[Value], errs: &mut Vec<FieldError>) {
    for (i, x) in a.iter().enumerate() {
        if !x.is_null() && !x.is_object() {
            errs.push(FieldError::invalid(
                &p.index(i),
                render_value(x),
                "must be an object for an array of list-type map",
            ));
            return;
        }
    }
    if a.len() <= 1 {
        return;
    }
    let keys: Vec<Map<String, Value>> = a
        .iter()
        .map(|x| {
            let mut key = Map::new();
            for kf in &s.list_map_keys {
                if let Some(v) = x.get(kf) {
                    key.insert(kf.clone(), v.clone());
                }
            }
            key
        })
        .collect();
    let ids: Vec<String> = keys
        .iter()
        .map(|k| identity(&Value::Object(k.clone())))
        .collect();
    for i in non_unique(&ids) {
        errs.push(FieldError::duplicate(
            &p.index(i),
            Value::Object(keys[i].clone()).to_string(),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn duplicates_are_reported() {
        let s = Structural::from_json(&json!({"type": "object", "properties": {"spec": {
            "type": "object", "properties": {
                "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
                "ports": {"type": "array", "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["name"],
                    "items": {"type": "object", "required": ["name"], "properties": {
                        "name": {"type": "string"}, "port": {"type": "integer"}}}}}}}}))
        .unwrap();
        let errs: Vec<String> = s
            .validate_list_sets_and_maps(&json!({"spec": {
                "tags": ["a", "b", "a", "a"],
                "ports": [{"name": "http", "port": 80}, {"name": "http", "port": 81}, {"name": "x"}]}}))
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            errs,
            vec![
                r#"spec.tags[2]: Duplicate value: "a""#,
                r#"spec.ports[1]: Duplicate value: {"name":"http"}"#,
            ]
        );
        assert!(
            s.validate_list_sets_and_maps(&json!({"spec": {"tags": ["a", "b"]}}))
                .is_empty()
        );
    }
}
