//! Server-side apply's engine (mirrors sigs.k8s.io/structured-merge-diff — fieldpath, typed,
//! merge — and k8s.io/apimachinery/pkg/util/managedfields): field sets and their `FieldsV1`
//! form, typed comparison and merge of JSON objects under a schema, ownership and conflicts
//! between managers, and `metadata.managedFields` bookkeeping. Pure: no I/O.
//!
//! # Use
//!
//! ```
//! use apiserver_fieldmanager::{FieldManager, builtin_schema};
//! use serde_json::json;
//!
//! let fm = FieldManager::new(builtin_schema(), "io.k8s.api.core.v1.ConfigMap", "v1", "ConfigMap");
//! let now = jiff::Timestamp::from_second(1_700_000_000).unwrap();
//! let applied = json!({"apiVersion": "v1", "kind": "ConfigMap",
//!                      "metadata": {"name": "c"}, "data": {"a": "1"}});
//! // Create by apply (no live object):
//! let obj = fm.apply(None, &applied, "kubectl", false, now).unwrap();
//! assert_eq!(obj["metadata"]["managedFields"][0]["fieldsV1"], json!({"f:data": {"f:a": {}}}));
//! // Another manager changing `data.a` conflicts (409) unless it forces:
//! let other = json!({"apiVersion": "v1", "kind": "ConfigMap",
//!                    "metadata": {"name": "c"}, "data": {"a": "2"}});
//! let err = fm.apply(Some(&obj), &other, "helm", false, now).unwrap_err();
//! assert_eq!(err.message, "Apply failed with 1 conflict: conflict with \"kubectl\": .data.a");
//! // Any other write records an Update entry for its manager:
//! let mut edited = obj.clone();
//! edited["data"]["b"] = json!("x");
//! let updated = fm.update(Some(&obj), &edited, "kubectl-edit", now).unwrap();
//! assert_eq!(updated["metadata"]["managedFields"][1]["manager"], "kubectl-edit");
//! ```
//!
//! * [`FieldManager`] — `apply(live, applied, manager, force, now) -> Result<Value, ApiError>`,
//!   `update(old, new, manager, now) -> Result<Value, ApiError>`, `update_no_errors`; built with
//!   `new(schema, definition, api_version, kind)`, `with_subresource`, `with_reset_fields`,
//!   `with_max_update_managers`.
//! * Schemas: [`builtin_schema`] (every built-in definition), [`from_openapi_v3`] (an OpenAPI v3
//!   document's `components.schemas`), [`crd_schema`] (a CRD version's `openAPIV3Schema`).
//! * Field sets: [`Set`], [`Path`], [`PathElement`], [`set_to_fields`] / [`fields_to_set`].
//! * Typed operations: [`to_field_set`], [`compare`], [`merge`], [`remove_items`],
//!   [`typed::validate`].
//! * Ownership: [`Updater`] with [`ManagedFields`]; wire form in [`managed`].
//!
//! Applied configurations are validated as upstream's `AsTyped` does (undeclared fields,
//! duplicated or missing list keys: 500 `failed to create typed patch object (...)`).
//!
//! Differences from upstream: one API version per manager (no conversion between versions);
//! scalar kinds are not validated; in stored objects, keys a struct does not declare are treated
//! as atomic values instead of failing the operation; on create
//! the "old" object is `{}` rather than the Go zero value of the type, so Update entries of
//! creates also own non-pointer struct fields (`f:spec: {".": {}}`); schema-change
//! reconciliation of stored sets is not done.

mod fieldsv1;
mod lastapplied;
pub mod managed;
mod manager;
mod path;
pub mod schema;
mod set;
pub mod typed;
mod updater;
pub mod value;

pub use fieldsv1::{fields_to_set, set_to_fields};
pub use lastapplied::LAST_APPLIED_ANNOTATION;
pub use manager::{DEFAULT_MAX_UPDATE_MANAGERS, FieldManager};
pub use path::{Path, PathElement};
pub use schema::{Schema, TypeRef, builtin_schema, crd_schema, from_openapi_v3};
pub use set::Set;
pub use typed::{Comparison, compare, merge, remove_items, to_field_set};
pub use updater::{Conflict, ManagedFields, UpdateError, Updater, VersionedSet};

#[cfg(test)]
mod tests;
