//! Behaviour tests of the field manager on ConfigMap-, Deployment- and Service-shaped objects.

mod apply;
mod update;

use jiff::Timestamp;
use serde_json::{Value, json};

use crate::{FieldManager, builtin_schema};

pub(super) fn t(sec: i64) -> Timestamp {
    Timestamp::from_second(1_700_000_000 + sec).unwrap()
}

pub(super) fn configmaps() -> FieldManager<'static> {
    FieldManager::new(
        builtin_schema(),
        "io.k8s.api.core.v1.ConfigMap",
        "v1",
        "ConfigMap",
    )
}

pub(super) fn deployments() -> FieldManager<'static> {
    FieldManager::new(
        builtin_schema(),
        "io.k8s.api.apps.v1.Deployment",
        "apps/v1",
        "Deployment",
    )
}

pub(super) fn services() -> FieldManager<'static> {
    FieldManager::new(
        builtin_schema(),
        "io.k8s.api.core.v1.Service",
        "v1",
        "Service",
    )
}

/// The managedFields entries of an object.
pub(super) fn entries(obj: &Value) -> Vec<Value> {
    obj["metadata"]["managedFields"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The fieldsV1 of the entry of `manager` (and `operation`).
pub(super) fn fields_of(obj: &Value, manager: &str, operation: &str) -> Value {
    entries(obj)
        .into_iter()
        .find(|e| e["manager"] == manager && e["operation"] == operation)
        .map(|e| e["fieldsV1"].clone())
        .unwrap_or(Value::Null)
}

pub(super) fn nginx(replicas: i64, extra_container_fields: Value) -> Value {
    let mut container = json!({"name": "nginx", "image": "nginx:1.25"});
    if let (Some(c), Some(extra)) = (
        container.as_object_mut(),
        extra_container_fields.as_object(),
    ) {
        for (k, v) in extra {
            c.insert(k.clone(), v.clone());
        }
    }
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "nginx"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "nginx"}},
            "template": {
                "metadata": {"labels": {"app": "nginx"}},
                "spec": {"containers": [container]}
            }
        }
    })
}
