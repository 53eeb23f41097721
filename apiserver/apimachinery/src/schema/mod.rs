//! Schema facts of the built-in Kubernetes v1.37 types that patches need: the patch and list
//! extensions upstream publishes in `api/openapi-spec` (`x-kubernetes-patch-strategy`,
//! `x-kubernetes-patch-merge-key`, `x-kubernetes-list-type`, `x-kubernetes-list-map-keys`,
//! `x-kubernetes-map-type`), kept as a generated data table (`table.rs`, by `gen_table.py`), and
//! the type graph (which definition a field's value, list items or map values have), built from
//! k8s-openapi's schemars `JsonSchema` impls.

mod graph;
mod roots;
mod table;

pub use graph::{Definition, Shape, TypeGraph, definition_of, type_graph};

/// The patch and list metadata of one field of one OpenAPI definition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldMeta {
    /// `x-kubernetes-patch-strategy`: `merge`, `retainKeys`, `merge,retainKeys` or `replace`.
    pub patch_strategy: Option<&'static str>,
    /// `x-kubernetes-patch-merge-key`.
    pub patch_merge_key: Option<&'static str>,
    /// `x-kubernetes-list-type`: `atomic`, `set` or `map`.
    pub list_type: Option<&'static str>,
    /// `x-kubernetes-list-map-keys`, in declaration order.
    pub list_map_keys: &'static [&'static str],
    /// `x-kubernetes-map-type`: `atomic` or `granular`.
    pub map_type: Option<&'static str>,
}

impl FieldMeta {
    /// The comma-separated patch strategies, e.g. `["merge", "retainKeys"]`.
    pub fn patch_strategies(&self) -> Vec<&'static str> {
        self.patch_strategy
            .map(|s| s.split(',').collect())
            .unwrap_or_default()
    }
}

/// The metadata of `field` (its JSON name) in `definition` (e.g. `io.k8s.api.core.v1.PodSpec`), or
/// `None` when the field carries none of the extensions (or the definition is not built in).
pub fn field_meta(definition: &str, field: &str) -> Option<&'static FieldMeta> {
    table::FIELDS
        .binary_search_by(|(d, f, _)| (*d, *f).cmp(&(definition, field)))
        .ok()
        .map(|i| &table::FIELDS[i].2)
}

/// The definition-level `x-kubernetes-map-type` (`atomic` for types marked `+structType=atomic`).
pub fn definition_map_type(definition: &str) -> Option<&'static str> {
    table::DEFINITION_MAP_TYPES
        .binary_search_by(|(d, _)| (*d).cmp(definition))
        .ok()
        .map(|i| table::DEFINITION_MAP_TYPES[i].1)
}

/// Every (definition, field) that has metadata, sorted.
pub fn all_field_meta() -> impl Iterator<Item = (&'static str, &'static str, &'static FieldMeta)> {
    table::FIELDS.iter().map(|(d, f, m)| (*d, *f, m))
}

#[cfg(test)]
mod tests;
