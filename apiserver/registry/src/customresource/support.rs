//! The type support of one served version of a custom resource: decoding with pruning of
//! unknown fields and defaulting from the version's schema (mirrors apiextensions-apiserver's
//! `schemaCoercingConverter`, `unstructuredDefaulter` and the pruning in
//! customresource_handler.go), printer columns as Table output (tableconvertor), the
//! server-side apply schema from `openAPIV3Schema`, and no strategic merge patch (415, as
//! upstream).

use super::object::CustomResource;
use crate::context::FieldValidation;
use crate::decode::Decoded;
use crate::table::{TableParts, TableRowParts};
use crate::typesupport::TypeSupport;
use apiserver_apiextensions::Structural;
use apiserver_apiextensions::printers::{column_definitions, printer_cells};
use apiserver_apimachinery::ApiError;
use apiserver_apimachinery::error::Reason;
use apiserver_fieldmanager::{FieldManager, Schema};
use bytes::Bytes;
use serde_json::Value;
use std::sync::Arc;

pub struct CustomResourceSupport {
    pub api_version: String,
    pub kind: String,
    pub schema: Option<Arc<Structural>>,
    /// The CRD's `spec.versions[]` entry (printer columns).
    pub crd_version: Value,
    /// The apply schema and the name of the resource's type in it.
    pub apply_schema: Schema,
    pub definition: String,
}

impl CustomResourceSupport {
    fn strict_error(&self, msgs: &[String]) -> ApiError {
        let version = self
            .api_version
            .rsplit('/')
            .next()
            .unwrap_or(&self.api_version);
        ApiError::bad_request(format!(
            "{kind} in version \"{version}\" cannot be handled as a {kind}: strict decoding error: {}",
            msgs.join(", "),
            kind = self.kind
        ))
    }
}

fn str_field<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str).filter(|s| !s.is_empty())
}

impl TypeSupport<CustomResource> for CustomResourceSupport {
    fn decode(
        &self,
        body: &[u8],
        validation: FieldValidation,
    ) -> Result<Decoded<CustomResource>, ApiError> {
        let mut v: Value = serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding request body: {e}")))?;
        if !v.is_object() {
            return Err(ApiError::bad_request(
                "error decoding request body: the object must be a JSON object",
            ));
        }
        let raw = String::from_utf8_lossy(body);
        let Some(kind) = str_field(&v, "kind") else {
            return Err(ApiError::bad_request(format!(
                "Object 'Kind' is missing in '{raw}'"
            )));
        };
        if kind != self.kind {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({kind}) does not match the expected kind ({})",
                self.kind
            )));
        }
        let Some(av) = str_field(&v, "apiVersion") else {
            return Err(ApiError::bad_request(format!(
                "Object 'apiVersion' is missing in '{raw}'"
            )));
        };
        if av != self.api_version {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({av}) does not match the expected API version ({})",
                self.api_version
            )));
        }
        let mut msgs: Vec<String> = Vec::new();
        if let Some(s) = &self.schema {
            msgs.extend(
                s.prune(&mut v)
                    .into_iter()
                    .map(|p| format!("unknown field \"{p}\"")),
            );
            s.prune_non_nullable_nulls(&mut v);
            s.apply_defaults(&mut v);
        }
        if validation != FieldValidation::Ignore {
            msgs.extend(
                crate::dupes::duplicate_fields(body)
                    .into_iter()
                    .map(|p| format!("duplicate field \"{p}\"")),
            );
        }
        let object: CustomResource = serde_json::from_value(v)
            .map_err(|e| ApiError::bad_request(format!("error decoding request body: {e}")))?;
        let mut warnings = Vec::new();
        if !msgs.is_empty() {
            match validation {
                FieldValidation::Strict => return Err(self.strict_error(&msgs)),
                FieldValidation::Warn => warnings = msgs,
                FieldValidation::Ignore => {}
            }
        }
        Ok(Decoded { object, warnings })
    }

    fn strategic_merge(&self, _original: &Value, _patch: &[u8]) -> Result<Value, ApiError> {
        let mut e = ApiError::new(
            Reason::UnsupportedMediaType,
            "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
        );
        e.code = Some(415);
        Err(e)
    }

    fn table(&self, items: &[Bytes]) -> Result<TableParts, ApiError> {
        let now = jiff::Timestamp::now();
        let mut rows = Vec::with_capacity(items.len());
        for json in items {
            let obj: Value =
                serde_json::from_slice(json).map_err(|e| ApiError::internal(e.to_string()))?;
            rows.push(TableRowParts {
                cells: printer_cells(&self.crd_version, &obj, now),
                conditions: Vec::new(),
                object: json.clone(),
            });
        }
        Ok(TableParts {
            columns: column_definitions(&self.crd_version),
            rows,
        })
    }

    fn protobuf(&self) -> bool {
        false
    }

    fn field_manager(&self) -> FieldManager<'_> {
        FieldManager::new(
            &self.apply_schema,
            &self.definition,
            &self.api_version,
            &self.kind,
        )
    }
}
