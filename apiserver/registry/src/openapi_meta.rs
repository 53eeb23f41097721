//! Publishes the patch metadata table (`x-kubernetes-patch-strategy`, merge keys, list and map
//! types) into the OpenAPI documents, so kubectl computes strategic merge patches as upstream.

use serde_json::{Map, Value};

pub fn field_meta(definition: &str, field: &str) -> Option<Map<String, Value>> {
    let m = apiserver_apimachinery::schema::field_meta(definition, field)?;
    let mut out = Map::new();
    if let Some(s) = m.patch_strategy {
        out.insert("x-kubernetes-patch-strategy".into(), Value::from(s));
    }
    if let Some(k) = m.patch_merge_key {
        out.insert("x-kubernetes-patch-merge-key".into(), Value::from(k));
    }
    if let Some(t) = m.list_type {
        out.insert("x-kubernetes-list-type".into(), Value::from(t));
    }
    if !m.list_map_keys.is_empty() {
        out.insert(
            "x-kubernetes-list-map-keys".into(),
            Value::from(m.list_map_keys.to_vec()),
        );
    }
    if let Some(t) = m.map_type {
        out.insert("x-kubernetes-map-type".into(), Value::from(t));
    }
    (!out.is_empty()).then_some(out)
}
