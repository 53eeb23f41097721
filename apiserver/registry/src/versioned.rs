//! A resource served in another version than the one it is stored in (mirrors the scheme
//! conversions between versions, e.g. pkg/apis/events/v1/conversion.go and
//! pkg/apis/autoscaling/v1/conversion.go): requests are converted to the storage type at the edge
//! and answers back to the requested version.

use crate::context::{DeleteOptions, ListOptions, PatchType, RequestContext, WriteOptions};
use crate::decode::decode;
use crate::rest::{ListOutput, MainRest, Rest, WatchOutput, WriteOutput};
use crate::store::{Object, UpdateMode};
use crate::table::TableParts;
use apiserver_apimachinery::patch::{
    apply_json_patch, apply_merge_patch, strategic::apply_strategic_merge_patch_for,
};
use apiserver_apimachinery::{ApiError, ResourceInfo};
use async_trait::async_trait;
use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub struct Versioned<I: Object, E> {
    pub info: ResourceInfo,
    pub inner: MainRest<I>,
    pub to_ext: fn(I) -> E,
    pub to_int: fn(E) -> I,
    /// Maps this version's field selector labels to the stored version's.
    pub field_labels: fn(&str) -> Option<&'static str>,
}

/// Field labels of a version with only the metadata labels.
pub fn metadata_field_labels(l: &str) -> Option<&'static str> {
    match l {
        "metadata.name" => Some("metadata.name"),
        "metadata.namespace" => Some("metadata.namespace"),
        _ => None,
    }
}

fn ser<T: Serialize>(v: &T) -> Result<Bytes, ApiError> {
    serde_json::to_vec(v)
        .map(Bytes::from)
        .map_err(|e| ApiError::internal(e.to_string()))
}

impl<I: Object + schemars::JsonSchema, E> Versioned<I, E>
where
    E: Serialize + DeserializeOwned + schemars::JsonSchema + Send + Sync + 'static,
{
    fn ext_bytes(&self, int_json: &[u8]) -> Result<Bytes, ApiError> {
        let v: serde_json::Value =
            serde_json::from_slice(int_json).map_err(|e| ApiError::internal(e.to_string()))?;
        // Statuses (delete answers) pass through unchanged.
        if v.get("kind").and_then(|k| k.as_str()) == Some("Status") {
            return Ok(Bytes::copy_from_slice(int_json));
        }
        let i: I = serde_json::from_value(v).map_err(|e| ApiError::internal(e.to_string()))?;
        ser(&(self.to_ext)(i))
    }

    fn int_body(&self, body: &[u8], opts: &WriteOptions) -> Result<(Bytes, Vec<String>), ApiError> {
        let d = decode::<E>(
            body,
            &self.info.api_version(),
            self.info.kind,
            opts.field_validation,
        )?;
        Ok((ser(&(self.to_int)(d.object))?, d.warnings))
    }

    fn translate(&self, opts: &ListOptions) -> Result<ListOptions, ApiError> {
        let mut o = opts.clone();
        for r in &mut o.fields.requirements {
            r.field = (self.field_labels)(&r.field)
                .ok_or_else(|| {
                    ApiError::bad_request(format!("field label not supported: {}", r.field))
                })?
                .to_string();
        }
        Ok(o)
    }

    fn out(&self, w: WriteOutput, mut warnings: Vec<String>) -> Result<WriteOutput, ApiError> {
        warnings.extend(w.warnings);
        Ok(WriteOutput {
            body: self.ext_bytes(&w.body)?,
            code: w.code,
            warnings,
        })
    }
}

#[async_trait]
impl<I: Object + schemars::JsonSchema, E> Rest for Versioned<I, E>
where
    E: Serialize
        + DeserializeOwned
        + schemars::JsonSchema
        + apiserver_printers::TablePrinter
        + k8s_openapi::Metadata<Ty = k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta>
        + Send
        + Sync
        + 'static,
{
    fn info(&self) -> &ResourceInfo {
        &self.info
    }
    async fn get(&self, ctx: &RequestContext, name: &str) -> Result<Bytes, ApiError> {
        self.ext_bytes(&self.inner.get(ctx, name).await?)
    }
    async fn list(&self, ctx: &RequestContext, opts: &ListOptions) -> Result<ListOutput, ApiError> {
        let mut l = self.inner.list(ctx, &self.translate(opts)?).await?;
        l.items = l
            .items
            .iter()
            .map(|i| self.ext_bytes(i))
            .collect::<Result<_, _>>()?;
        Ok(l)
    }
    async fn watch(
        &self,
        ctx: &RequestContext,
        opts: &ListOptions,
    ) -> Result<WatchOutput, ApiError> {
        let mut w = self.inner.watch(ctx, &self.translate(opts)?).await?;
        let to_ext = self.to_ext;
        w.convert = Some(crate::rest::sync_convert(move |b: &[u8]| {
            let i: I = serde_json::from_slice(b).map_err(|e| ApiError::internal(e.to_string()))?;
            ser(&to_ext(i))
        }));
        Ok(w)
    }
    async fn create(
        &self,
        ctx: &RequestContext,
        name: Option<&str>,
        body: &[u8],
        opts: &WriteOptions,
    ) -> Result<WriteOutput, ApiError> {
        let (int, warnings) = self.int_body(body, opts)?;
        let w = self.inner.create(ctx, name, &int, opts).await?;
        self.out(w, warnings)
    }
    async fn update(
        &self,
        ctx: &RequestContext,
        name: &str,
        body: &[u8],
        opts: &WriteOptions,
    ) -> Result<WriteOutput, ApiError> {
        let (int, warnings) = self.int_body(body, opts)?;
        let w = self.inner.update(ctx, name, &int, opts).await?;
        self.out(w, warnings)
    }
    async fn patch(
        &self,
        ctx: &RequestContext,
        name: &str,
        ty: PatchType,
        body: &[u8],
        opts: &WriteOptions,
    ) -> Result<WriteOutput, ApiError> {
        if ty == PatchType::Apply {
            return Err(ApiError::unsupported_media_type(
                "application/apply-patch+yaml (server-side apply is not implemented yet)",
            ));
        }
        let api_version = self.info.api_version();
        let kind = self.info.kind;
        let mut warnings = Vec::new();
        let (out, _) = self
            .inner
            .store
            .update_with(ctx, name, UpdateMode::Main, opts, |old| {
                let old = old.ok_or_else(|| {
                    ApiError::not_found(self.info.group, self.info.resource, name)
                })?;
                let ext = serde_json::to_value((self.to_ext)(old.clone()))
                    .map_err(|e| ApiError::internal(e.to_string()))?;
                let patched = match ty {
                    PatchType::Json => apply_json_patch(&ext, body)?,
                    PatchType::Merge => apply_merge_patch(&ext, body)?,
                    PatchType::Strategic => apply_strategic_merge_patch_for::<E>(&ext, body)?,
                    PatchType::Apply => return Err(ApiError::internal("unreachable")),
                };
                let bytes =
                    serde_json::to_vec(&patched).map_err(|e| ApiError::internal(e.to_string()))?;
                let d = decode::<E>(&bytes, &api_version, kind, opts.field_validation)?;
                warnings = d.warnings;
                Ok((self.to_int)(d.object))
            })
            .await?;
        Ok(WriteOutput {
            body: ser(&(self.to_ext)(out))?,
            code: 200,
            warnings,
        })
    }
    async fn delete(
        &self,
        ctx: &RequestContext,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<WriteOutput, ApiError> {
        let w = self.inner.delete(ctx, name, opts).await?;
        self.out(w, vec![])
    }
    async fn delete_collection(
        &self,
        ctx: &RequestContext,
        list: &ListOptions,
        del: &DeleteOptions,
    ) -> Result<Bytes, ApiError> {
        let b = self
            .inner
            .delete_collection(ctx, &self.translate(list)?, del)
            .await?;
        let mut v: serde_json::Value =
            serde_json::from_slice(&b).map_err(|e| ApiError::internal(e.to_string()))?;
        if let Some(items) = v.get_mut("items").and_then(|i| i.as_array_mut()) {
            for it in items.iter_mut() {
                let i: I = serde_json::from_value(it.take())
                    .map_err(|e| ApiError::internal(e.to_string()))?;
                *it = serde_json::to_value((self.to_ext)(i))
                    .map_err(|e| ApiError::internal(e.to_string()))?;
            }
        }
        v["kind"] = serde_json::Value::from(self.info.list_kind.clone());
        v["apiVersion"] = serde_json::Value::from(self.info.api_version());
        ser(&v)
    }
    fn table(&self, items: &[Bytes]) -> Result<TableParts, ApiError> {
        crate::table::table_of::<E>(items)
    }
}
