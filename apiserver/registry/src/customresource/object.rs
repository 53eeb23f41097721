//! The custom resource object: type meta, `metadata` as the built-in ObjectMeta (so the generic
//! store's metadata rules apply unchanged), and everything else as JSON, validated by the
//! CRD's schema (mirrors upstream's use of `unstructured.Unstructured` for custom resources).

use crate::store::HasObjectMeta;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CustomResource {
    #[serde(
        rename = "apiVersion",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub api_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// `spec`, `status` and any other top-level field.
    #[serde(flatten)]
    pub content: Map<String, Value>,
}

impl HasObjectMeta for CustomResource {
    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn metadata_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// Defaulting and validation come from the CRD (the decoder and the strategy), not the type.
impl apiserver_apis::ApiType for CustomResource {}

/// Interns a name taken from a CRD (group, plural, kind, ...) for the `'static` resource
/// descriptions shared with built-in resources. Each distinct string is stored once, so
/// re-serving a CRD after an update does not grow memory.
pub fn intern(s: &str) -> &'static str {
    static SET: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut set = SET
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(found) = set.get(s) {
        return found;
    }
    let leaked: &'static str = Box::leak(s.to_string().into_boxed_str());
    set.insert(leaked);
    leaked
}

/// Interns a list of names.
pub fn intern_all(v: &[String]) -> &'static [&'static str] {
    static SET: OnceLock<Mutex<HashSet<&'static [&'static str]>>> = OnceLock::new();
    let items: Vec<&'static str> = v.iter().map(|s| intern(s)).collect();
    let mut set = SET
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(found) = set.get(items.as_slice()) {
        return found;
    }
    let leaked: &'static [&'static str] = Box::leak(items.into_boxed_slice());
    set.insert(leaked);
    leaked
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trips_and_interns() {
        let v = json!({"apiVersion": "example.com/v1", "kind": "Widget",
            "metadata": {"name": "w", "creationTimestamp": null}, "spec": {"a": 1}, "status": {"b": [1]}});
        let cr: CustomResource = serde_json::from_value(v).unwrap();
        assert_eq!(cr.metadata.name.as_deref(), Some("w"));
        assert_eq!(cr.content["spec"], json!({"a": 1}));
        let back = serde_json::to_value(&cr).unwrap();
        assert_eq!(
            back,
            json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
                "spec": {"a": 1}, "status": {"b": [1]}})
        );
        let a = intern("widgets");
        let b = intern(&"widgets".to_string());
        assert!(std::ptr::eq(a, b));
        let l1 = intern_all(&["w".into(), "wd".into()]);
        let l2 = intern_all(&["w".into(), "wd".into()]);
        assert!(std::ptr::eq(l1, l2));
    }
}
