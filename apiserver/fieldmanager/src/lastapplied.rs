//! The client-side → server-side apply migration (mirrors k8s.io/apimachinery/pkg/util/
//! managedfields/internal/lastappliedmanager.go, lastappliedupdater.go and lastapplied.go): when
//! `kubectl` applies server-side onto an object kubectl last applied client-side, conflicts on
//! fields its `kubectl.kubernetes.io/last-applied-configuration` annotation still matches are
//! forced; and the annotation is kept in step with later server-side applies.

use serde_json::{Map, Value};

use crate::schema::{Schema, TypeRef};
use crate::set::Set;
use crate::typed::{compare, to_field_set};
use crate::value::to_go_json;

pub const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";
/// Upstream's `TotalAnnotationSizeLimitB`.
const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;

fn annotations(obj: &Value) -> Option<&Map<String, Value>> {
    obj.get("metadata")?.get("annotations")?.as_object()
}

fn last_applied(obj: &Value) -> Option<&str> {
    annotations(obj)?
        .get(LAST_APPLIED_ANNOTATION)?
        .as_str()
        .filter(|s| !s.is_empty())
}

pub fn has_last_applied(obj: &Value) -> bool {
    last_applied(obj).is_some()
}

/// The fields kubectl's last client-side apply set and the live object still holds unchanged:
/// conflicts on them are allowed. `None` when there is no usable annotation.
pub fn allowed_conflicts(
    schema: &Schema,
    root: &TypeRef,
    api_version: &str,
    live: &Value,
) -> Option<Set> {
    let text = last_applied(live)?;
    let last: Value = serde_json::from_str(text).ok()?;
    if !last.is_object() || last.get("apiVersion").and_then(Value::as_str) != Some(api_version) {
        return None;
    }
    let set = to_field_set(schema, root, &last).ok()?;
    let cmp = compare(schema, root, &last, live).ok()?;
    Some(
        set.difference(&cmp.modified)
            .difference(&cmp.added)
            .difference(&cmp.removed),
    )
}

/// The annotation value for an applied configuration: the configuration without the
/// annotation itself, as Go's unstructured JSON encoder writes it (sorted keys, newline).
pub fn build_last_applied(applied: &Value) -> String {
    let mut obj = applied.clone();
    if let Some(ann) = obj
        .get_mut("metadata")
        .and_then(|m| m.get_mut("annotations"))
        .and_then(Value::as_object_mut)
    {
        ann.remove(LAST_APPLIED_ANNOTATION);
    }
    let mut s = to_go_json(&obj, true);
    s.push('\n');
    s
}

/// Sets the annotation, unless that would exceed the total annotation size limit.
pub fn set_last_applied(obj: &mut Value, value: &str) {
    let Some(root) = obj.as_object_mut() else {
        return;
    };
    let meta = root
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    let Some(meta) = meta.as_object_mut() else {
        return;
    };
    let ann = meta
        .entry("annotations")
        .or_insert_with(|| Value::Object(Map::new()));
    let Some(ann) = ann.as_object_mut() else {
        return;
    };
    ann.insert(
        LAST_APPLIED_ANNOTATION.into(),
        Value::String(value.to_string()),
    );
    let total: usize = ann
        .iter()
        .map(|(k, v)| k.len() + v.as_str().map_or(0, str::len))
        .sum();
    if total > TOTAL_ANNOTATION_SIZE_LIMIT {
        ann.remove(LAST_APPLIED_ANNOTATION);
    }
}
