//! What a store needs to know about its served type beyond serde: how request bodies decode,
//! how strategic merge patches apply, how objects print as Table rows and which schema
//! server-side apply merges with. Built-in types know all of it statically ([`Builtin`]);
//! custom resources take it from their CustomResourceDefinition (mirrors the scheme, the
//! strategic-merge patch meta and the table convertor that upstream's installer wires per
//! resource, and apiextensions-apiserver's per-CRD equivalents).

use crate::context::FieldValidation;
use crate::decode::{Decoded, decode};
use crate::store::BuiltinObject;
use crate::table::{TableParts, table_of};
use apiserver_apimachinery::patch::strategic::apply_strategic_merge_patch_for;
use apiserver_apimachinery::{ApiError, ResourceInfo};
use apiserver_fieldmanager::FieldManager;
use bytes::Bytes;
use serde_json::Value;
use std::marker::PhantomData;

pub trait TypeSupport<K>: Send + Sync {
    /// Decodes a request body (JSON) into the type, with field validation.
    fn decode(&self, body: &[u8], validation: FieldValidation) -> Result<Decoded<K>, ApiError>;
    /// Applies a strategic merge patch to an object's JSON.
    fn strategic_merge(&self, original: &Value, patch: &[u8]) -> Result<Value, ApiError>;
    /// Server-side printing of served JSON items.
    fn table(&self, items: &[Bytes]) -> Result<TableParts, ApiError>;
    /// The server-side apply field manager of the main resource.
    fn field_manager(&self) -> FieldManager<'_>;
    /// Whether objects can be encoded as protobuf (built-in types; custom resources are JSON
    /// only, as upstream).
    fn protobuf(&self) -> bool {
        true
    }
}

/// The type support of a built-in type.
pub struct Builtin<K> {
    api_version: String,
    kind: &'static str,
    definition: String,
    _k: PhantomData<fn() -> K>,
}

impl<K: BuiltinObject> Builtin<K> {
    pub fn new(info: &ResourceInfo) -> Self {
        Builtin {
            api_version: info.api_version(),
            kind: info.kind,
            definition: apiserver_apimachinery::schema::definition_of::<K>(),
            _k: PhantomData,
        }
    }
}

impl<K: BuiltinObject> TypeSupport<K> for Builtin<K> {
    fn decode(&self, body: &[u8], validation: FieldValidation) -> Result<Decoded<K>, ApiError> {
        decode::<K>(body, &self.api_version, self.kind, validation)
    }
    fn strategic_merge(&self, original: &Value, patch: &[u8]) -> Result<Value, ApiError> {
        apply_strategic_merge_patch_for::<K>(original, patch)
    }
    fn table(&self, items: &[Bytes]) -> Result<TableParts, ApiError> {
        table_of::<K>(items)
    }
    fn field_manager(&self) -> FieldManager<'_> {
        FieldManager::new(
            apiserver_fieldmanager::builtin_schema(),
            &self.definition,
            &self.api_version,
            self.kind,
        )
    }
}
