//! `conversion: None` between the versions of a custom resource (mirrors apiextensions-apiserver
//! pkg/apiserver/conversion/nop_converter.go): only `apiVersion` changes. [`CrCodec`] stores
//! objects in the storage version and reads them back in a served one, applying the schema's
//! defaults on read as upstream's decoder does; [`ConvertRest`] rewrites what the shared watch
//! cache serves (lists and watch events).

use crate::context::{DeleteOptions, ListOptions, PatchType, RequestContext, WriteOptions};
use crate::rest::{ListOutput, Rest, WatchOutput, WriteOutput};
use crate::table::TableParts;
use apiserver_apiextensions::Structural;
use apiserver_apimachinery::{ApiError, ResourceInfo};
use async_trait::async_trait;
use bytes::Bytes;
use serde_json::Value;
use std::borrow::Cow;
use std::sync::Arc;

/// Sets `apiVersion` of an object's JSON.
pub fn set_api_version(json: &[u8], api_version: &str) -> Result<Vec<u8>, String> {
    let mut v: Value = serde_json::from_slice(json).map_err(|e| e.to_string())?;
    if let Some(o) = v.as_object_mut() {
        o.insert("apiVersion".into(), Value::from(api_version));
    }
    serde_json::to_vec(&v).map_err(|e| e.to_string())
}

/// Stores in `stored`, reads as `served` with `defaults` applied (upstream defaults custom
/// resources when reading them from storage, so new schema defaults show on old objects).
pub struct CrCodec {
    pub stored: String,
    pub served: String,
    pub defaults: Option<Arc<Structural>>,
}

impl apiserver_storage::codec::Codec for CrCodec {
    fn media_type(&self) -> &'static str {
        "application/json"
    }
    fn encode(&self, json: &[u8]) -> Result<Bytes, String> {
        if self.stored == self.served {
            return Ok(Bytes::copy_from_slice(json));
        }
        set_api_version(json, &self.stored).map(Bytes::from)
    }
    fn decode<'a>(&self, stored: &'a [u8]) -> Result<Cow<'a, [u8]>, String> {
        if self.stored == self.served && self.defaults.is_none() {
            return Ok(Cow::Borrowed(stored));
        }
        let mut v: Value = serde_json::from_slice(stored).map_err(|e| e.to_string())?;
        if let Some(s) = &self.defaults {
            s.apply_defaults(&mut v);
        }
        if let Some(o) = v.as_object_mut() {
            o.insert("apiVersion".into(), Value::from(self.served.as_str()));
        }
        serde_json::to_vec(&v)
            .map(Cow::Owned)
            .map_err(|e| e.to_string())
    }
}

/// Whether a schema declares any default (only then is defaulting on read worth its cost).
pub fn has_defaults(schema: &Value) -> bool {
    match schema {
        Value::Object(m) => m.contains_key("default") || m.values().any(has_defaults),
        Value::Array(a) => a.iter().any(has_defaults),
        _ => false,
    }
}

/// An endpoint of a served version that is not the storage version.
pub struct ConvertRest {
    pub inner: Arc<dyn Rest>,
    pub api_version: String,
}

impl ConvertRest {
    fn convert(&self, b: &[u8]) -> Result<Bytes, ApiError> {
        set_api_version(b, &self.api_version)
            .map(Bytes::from)
            .map_err(ApiError::internal)
    }
}

#[async_trait]
impl Rest for ConvertRest {
    fn info(&self) -> &ResourceInfo {
        self.inner.info()
    }
    fn body_kind(&self) -> (String, String) {
        self.inner.body_kind()
    }
    async fn get(&self, ctx: &RequestContext, name: &str) -> Result<Bytes, ApiError> {
        let b = self.inner.get(ctx, name).await?;
        self.convert(&b)
    }
    async fn list(&self, ctx: &RequestContext, opts: &ListOptions) -> Result<ListOutput, ApiError> {
        let mut out = self.inner.list(ctx, opts).await?;
        out.items = out
            .items
            .iter()
            .map(|b| self.convert(b))
            .collect::<Result<_, _>>()?;
        Ok(out)
    }
    async fn watch(
        &self,
        ctx: &RequestContext,
        opts: &ListOptions,
    ) -> Result<WatchOutput, ApiError> {
        let mut w = self.inner.watch(ctx, opts).await?;
        let av = self.api_version.clone();
        w.convert = Some(Arc::new(move |b: &[u8]| {
            set_api_version(b, &av)
                .map(Bytes::from)
                .map_err(ApiError::internal)
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
        self.inner.create(ctx, name, body, opts).await
    }
    async fn update(
        &self,
        ctx: &RequestContext,
        name: &str,
        body: &[u8],
        opts: &WriteOptions,
    ) -> Result<WriteOutput, ApiError> {
        self.inner.update(ctx, name, body, opts).await
    }
    async fn patch(
        &self,
        ctx: &RequestContext,
        name: &str,
        ty: PatchType,
        body: &[u8],
        opts: &WriteOptions,
    ) -> Result<WriteOutput, ApiError> {
        self.inner.patch(ctx, name, ty, body, opts).await
    }
    async fn delete(
        &self,
        ctx: &RequestContext,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<WriteOutput, ApiError> {
        let mut out = self.inner.delete(ctx, name, opts).await?;
        if serde_json::from_slice::<Value>(&out.body)
            .ok()
            .and_then(|v| v.get("kind").and_then(Value::as_str).map(|k| k != "Status"))
            .unwrap_or(false)
        {
            out.body = self.convert(&out.body)?;
        }
        Ok(out)
    }
    async fn delete_collection(
        &self,
        ctx: &RequestContext,
        list: &ListOptions,
        del: &DeleteOptions,
    ) -> Result<Bytes, ApiError> {
        let b = self.inner.delete_collection(ctx, list, del).await?;
        let mut v: Value =
            serde_json::from_slice(&b).map_err(|e| ApiError::internal(e.to_string()))?;
        v["apiVersion"] = Value::from(self.api_version.as_str());
        if let Some(items) = v.get_mut("items").and_then(Value::as_array_mut) {
            for i in items {
                i["apiVersion"] = Value::from(self.api_version.as_str());
            }
        }
        serde_json::to_vec(&v)
            .map(Bytes::from)
            .map_err(|e| ApiError::internal(e.to_string()))
    }
    fn table(&self, items: &[Bytes]) -> Result<TableParts, ApiError> {
        self.inner.table(items)
    }
    fn protobuf(&self) -> bool {
        self.inner.protobuf()
    }
}
