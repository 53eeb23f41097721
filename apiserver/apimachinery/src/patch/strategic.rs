//! Strategic merge patch, applied server-side with upstream's semantics
//! (mirrors apimachinery/pkg/util/strategicpatch/patch.go, its `StrategicMergeMapPatch` with
//! `MergeParallelList` and `IgnoreUnmatchedNulls` set, as the apiserver's patch handler uses it).
//!
//! Patch metadata (strategy, merge key) comes from the `schema` table; the definition of every
//! nested value comes from the type graph. Values without a known definition are merged without
//! metadata: maps recursively, lists replaced (JSON merge-patch semantics), directives honoured.

mod list;
mod lookup;
mod merge;

pub use lookup::{BuiltinSchema, PatchSchema};

use crate::error::{ApiError, Reason};
use serde_json::{Map, Value};

pub(crate) const DIRECTIVE: &str = "$patch";
pub(crate) const DELETE: &str = "delete";
pub(crate) const REPLACE: &str = "replace";
pub(crate) const MERGE: &str = "merge";
pub(crate) const RETAIN_KEYS_STRATEGY: &str = "retainKeys";
pub(crate) const RETAIN_KEYS: &str = "$retainKeys";
pub(crate) const DELETE_PRIMITIVE_PREFIX: &str = "$deleteFromPrimitiveList";
pub(crate) const SET_ORDER_PREFIX: &str = "$setElementOrder";

/// Applies a strategic merge patch to `original`, the JSON form of an object of the OpenAPI
/// definition `definition` (e.g. `io.k8s.api.apps.v1.Deployment`).
pub fn apply_strategic_merge_patch(
    original: &Value,
    patch: &[u8],
    definition: &str,
) -> Result<Value, ApiError> {
    apply_strategic_merge_patch_with(original, patch, definition, &BuiltinSchema)
}

/// As [`apply_strategic_merge_patch`] for the k8s-openapi type `K` (e.g.
/// `k8s_openapi::api::apps::v1::Deployment`), whose definition name schemars reports.
pub fn apply_strategic_merge_patch_for<K: schemars::JsonSchema>(
    original: &Value,
    patch: &[u8],
) -> Result<Value, ApiError> {
    apply_strategic_merge_patch(original, patch, &crate::schema::definition_of::<K>())
}

/// As [`apply_strategic_merge_patch`], with the patch metadata and type graph taken from `schema`.
pub fn apply_strategic_merge_patch_with(
    original: &Value,
    patch: &[u8],
    definition: &str,
    schema: &dyn PatchSchema,
) -> Result<Value, ApiError> {
    let patch: Value =
        serde_json::from_slice(patch).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let patch = match patch {
        Value::Object(m) => m,
        // Decoding `null` into a map leaves it empty upstream: nothing to apply.
        Value::Null => Map::new(),
        other => {
            return Err(ApiError::bad_request(format!(
                "json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
                json_kind_word(&other)
            )));
        }
    };
    let original = match original {
        Value::Object(m) => m.clone(),
        Value::Null => Map::new(),
        _ => return Err(bad(ERR_BAD_JSON_DOC)),
    };
    let ctx = lookup::Ctx::new(schema);
    let root = ctx.root(definition);
    merge::merge_map(&ctx, original, patch, &root).map(Value::Object)
}

// Upstream's error texts (apimachinery/pkg/util/mergepatch/errors.go).
pub(crate) const ERR_BAD_JSON_DOC: &str = "invalid JSON document";
pub(crate) const ERR_NO_LIST_OF_LISTS: &str = "lists of lists are not supported";
pub(crate) const ERR_PRIMITIVE_LIST: &str = "invalid patch format of primitive list";
pub(crate) const ERR_RETAIN_KEYS: &str = "invalid patch format of retainKeys";
pub(crate) const ERR_SET_ORDER: &str = "invalid patch format of setElementOrder list";

/// A malformed patch: 400 BadRequest with the message.
pub(crate) fn bad(message: impl Into<String>) -> ApiError {
    ApiError::bad_request(message)
}

/// Lists of lists: upstream answers 422 with reason Invalid.
pub(crate) fn list_of_lists() -> ApiError {
    ApiError::new(Reason::Invalid, ERR_NO_LIST_OF_LISTS)
}

pub(crate) fn no_merge_key(item: &Map<String, Value>, key: &str) -> ApiError {
    bad(format!(
        "map: {} does not contain declared merge key: {key}",
        go_fmt_map(item)
    ))
}

pub(crate) fn bad_arg_type(expected: Kind, actual: &Value) -> ApiError {
    bad(format!(
        "expected a {}, but received a {}",
        expected.go_type(),
        Kind::of(actual).go_type()
    ))
}

pub(crate) fn bad_patch_type(directive: &Value, map: &Map<String, Value>) -> ApiError {
    bad(format!(
        "unknown patch type: {} in map: {}",
        go_fmt(directive),
        go_fmt_map(map)
    ))
}

/// The JSON kind of a value, distinguishing integers from floats as Go's decoder does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Null,
    Bool,
    Int,
    Float,
    String,
    Array,
    Object,
}

impl Kind {
    pub(crate) fn of(v: &Value) -> Kind {
        match v {
            Value::Null => Kind::Null,
            Value::Bool(_) => Kind::Bool,
            Value::Number(n) if n.is_i64() || n.is_u64() => Kind::Int,
            Value::Number(_) => Kind::Float,
            Value::String(_) => Kind::String,
            Value::Array(_) => Kind::Array,
            Value::Object(_) => Kind::Object,
        }
    }
    fn go_type(self) -> &'static str {
        match self {
            Kind::Null => "<nil>",
            Kind::Bool => "bool",
            Kind::Int => "int64",
            Kind::Float => "float64",
            Kind::String => "string",
            Kind::Array => "[]interface {}",
            Kind::Object => "map[string]interface {}",
        }
    }
}

fn json_kind_word(v: &Value) -> &'static str {
    match v {
        Value::Array(_) => "array",
        Value::String(_) => "string",
        Value::Number(_) => "number",
        Value::Bool(_) => "bool",
        _ => "object",
    }
}

/// Renders a value as Go's `%v` prints the decoded form (`map[k:v]`, `[a b]`, `<nil>`).
pub(crate) fn go_fmt(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Array(items) => go_fmt_list(items),
        Value::Object(m) => go_fmt_map(m),
    }
}

pub(crate) fn go_fmt_list(items: &[Value]) -> String {
    let parts: Vec<String> = items.iter().map(go_fmt).collect();
    format!("[{}]", parts.join(" "))
}

pub(crate) fn go_fmt_map(m: &Map<String, Value>) -> String {
    let mut keys: Vec<&String> = m.keys().collect();
    keys.sort();
    let parts: Vec<String> = keys
        .into_iter()
        .map(|k| format!("{k}:{}", go_fmt(&m[k])))
        .collect();
    format!("map[{}]", parts.join(" "))
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_builtin;
#[cfg(test)]
mod tests_lists;
