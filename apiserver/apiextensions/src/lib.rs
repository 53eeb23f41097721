//! Pure CustomResourceDefinition support for the apiserver (mirrors
//! k8s.io/apiextensions-apiserver): CRD validation, structural schemas, and custom resource
//! pruning, defaulting and validation.
//!
//! Public API:
//! - [`Structural::from_json`] / [`Structural::from_json_at`]: structural schema of a version's
//!   `openAPIV3Schema`, with upstream's "must be structural" errors.
//! - [`Structural::prune`] (whole resource) / [`Structural::prune_value`]: drop unknown fields,
//!   returning their paths (`spec.foo`) for fieldValidation Strict/Warn.
//! - [`Structural::prune_non_nullable_nulls`] then [`Structural::apply_defaults`]: defaulting, run after
//!   pruning on decode and on read from storage, as upstream.
//! - [`Structural::validate`]: OpenAPI value validation + embedded resources + list types + CEL
//!   rules, with upstream's messages; [`validation::validate_against_schema`] for the OpenAPI part.
//! - [`Structural::validate_list_sets_and_maps`], [`Structural::validate_embedded_resources`],
//!   [`Structural::validate_cel`] (x-kubernetes-validations, metered: per-call limit and
//!   per-object budget), [`Structural::validate_status`].
//! - [`cel::compile_rule`]: a rule type-checked against a schema node's type
//!   ([`cel::decl::decl_type`]) with its estimated cost; [`cel::crd_rules`] turns that into a
//!   CRD's compile and cost errors.
//! - [`validate_crd`], [`validate_crd_update`], [`validate_crd_status_update`]: CRD objects;
//!   [`helpers::prepare_for_create`] first. [`naming`]: NamesAccepted/Established conditions.
//! - [`helpers`]: versions, subresources, scale paths, selectable fields, dotted get/set;
//!   [`resource`]: type meta and scale replicas checks; [`printers`]: printer columns as Table
//!   cells; [`openapi`]: v3/v2 schemas for a CRD version.

pub mod formats;
pub mod listtype;
pub mod objectmeta;
pub mod prune;
pub mod ratchet;
pub mod structural;
pub mod structural_check;
pub mod validation;

pub use structural::{AdditionalProperties, Structural, ValidationRule};
pub mod cel;
pub mod conversion;
pub mod crd;
pub mod crd_schema;
pub mod helpers;
pub mod naming;
pub mod openapi;
pub mod printers;
pub mod resource;

pub use crd::{validate_crd, validate_crd_status_update, validate_crd_update};
#[cfg(test)]
mod crd_tests;
