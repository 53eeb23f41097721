//! Version conversion around the generic store of a custom resource (mirrors the versioning
//! codec and the REST handlers' conversion in apiextensions-apiserver's customresource_handler.go).
//! [`CrCodec`] is the synchronous storage codec: it writes the storage version (`conversion:
//! None` only rewrites `apiVersion`) and applies the schema defaults of an object's version on
//! read, as upstream's decoder does. [`ConvertRest`] converts what an endpoint serves (gets,
//! list pages in one conversion, watch events, deletes) to its version through the CRD's
//! [`CrConverter`], asynchronously, as a webhook may be called.

use super::converter::CrConverter;
use crate::context::{DeleteOptions, ListOptions, PatchType, RequestContext, WriteOptions};
use crate::rest::{EventConvert, ListOutput, Rest, WatchOutput, WriteOutput};
use crate::table::TableParts;
use apiserver_apiextensions::Structural;
use apiserver_apimachinery::{ApiError, ResourceInfo};
use apiserver_storage::cacher::{CachedObject, WatchEvent};
use async_trait::async_trait;
use bytes::Bytes;
use serde_json::Value;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Sets `apiVersion` of an object's JSON.
pub fn set_api_version(json: &[u8], api_version: &str) -> Result<Vec<u8>, String> {
    let mut v: Value = serde_json::from_slice(json).map_err(|e| e.to_string())?;
    if let Some(o) = v.as_object_mut() {
        o.insert("apiVersion".into(), Value::from(api_version));
    }
    serde_json::to_vec(&v).map_err(|e| e.to_string())
}

/// Whether JSON this server wrote starts with `apiVersion` = `av` (custom resources serialize
/// `apiVersion` first), so it needs no rewrite.
fn starts_with_api_version(json: &[u8], av: &str) -> bool {
    json.starts_with(format!(r#"{{"apiVersion":"{av}""#).as_bytes())
}

/// Schema defaults by apiVersion (`group/version`).
pub type DefaultsByVersion = Arc<BTreeMap<String, Arc<Structural>>>;

/// The storage codec of a custom resource.
pub struct CrCodec {
    /// The apiVersion written (`None`: as given; webhook conversion happened before).
    pub stored: Option<String>,
    /// The apiVersion read (`None`: as stored; webhook conversion happens after).
    pub served: Option<String>,
    /// Defaults applied on read to the object's (resulting) apiVersion.
    pub defaults: DefaultsByVersion,
}

impl apiserver_storage::codec::Codec for CrCodec {
    fn media_type(&self) -> &'static str {
        "application/json"
    }
    fn encode(&self, json: &[u8]) -> Result<Bytes, String> {
        match &self.stored {
            Some(s) if self.served.as_ref() != Some(s) => set_api_version(json, s).map(Bytes::from),
            _ => Ok(Bytes::copy_from_slice(json)),
        }
    }
    fn decode<'a>(&self, stored: &'a [u8]) -> Result<Cow<'a, [u8]>, String> {
        let rewrite = self
            .served
            .as_deref()
            .is_some_and(|av| !starts_with_api_version(stored, av));
        if !rewrite && self.defaults.is_empty() {
            return Ok(Cow::Borrowed(stored));
        }
        let mut v: Value = serde_json::from_slice(stored).map_err(|e| e.to_string())?;
        if let (Some(av), Some(o)) = (&self.served, v.as_object_mut()) {
            o.insert("apiVersion".into(), Value::from(av.as_str()));
        }
        let av = v
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if let Some(s) = self.defaults.get(&av) {
            s.apply_defaults(&mut v);
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

/// An endpoint served in another version than (some) objects are stored in.
pub struct ConvertRest {
    pub inner: Arc<dyn Rest>,
    pub api_version: String,
    pub converter: Arc<CrConverter>,
}

fn conversion_error(e: String) -> ApiError {
    ApiError::internal(e)
}

fn parse(b: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(b).map_err(|e| ApiError::internal(e.to_string()))
}

fn to_bytes(v: &Value) -> Result<Bytes, ApiError> {
    serde_json::to_vec(v)
        .map(Bytes::from)
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// Converts one object's JSON to `api_version` (unchanged bytes when already there).
async fn convert_bytes(
    converter: &CrConverter,
    b: Bytes,
    api_version: &str,
) -> Result<Bytes, ApiError> {
    if starts_with_api_version(&b, api_version) {
        return Ok(b);
    }
    let v = parse(&b)?;
    if v.get("apiVersion").and_then(Value::as_str) == Some(api_version) {
        return Ok(b);
    }
    let out = converter
        .convert_one(v, api_version)
        .await
        .map_err(conversion_error)?;
    to_bytes(&out)
}

impl ConvertRest {
    async fn one(&self, b: Bytes) -> Result<Bytes, ApiError> {
        convert_bytes(&self.converter, b, &self.api_version).await
    }

    /// Converts many objects' JSON in one conversion, keeping the bytes of those already in the
    /// served version.
    async fn many(&self, items: Vec<Bytes>) -> Result<Vec<Bytes>, ApiError> {
        let mut values = Vec::with_capacity(items.len());
        let mut todo = false;
        for b in &items {
            let v = parse(b)?;
            todo |= v.get("apiVersion").and_then(Value::as_str) != Some(&self.api_version);
            values.push(v);
        }
        if !todo {
            return Ok(items);
        }
        let converted = self
            .converter
            .convert_many(values, &self.api_version)
            .await
            .map_err(conversion_error)?;
        converted.iter().map(to_bytes).collect()
    }

    /// Converts the objects of watch events in one conversion.
    async fn events(&self, events: Vec<WatchEvent>) -> Result<Vec<WatchEvent>, ApiError> {
        let items = events.iter().map(|e| e.object.json.clone()).collect();
        let converted = self.many(items).await?;
        Ok(events
            .into_iter()
            .zip(converted)
            .map(|(e, json)| {
                if json == e.object.json {
                    return e;
                }
                WatchEvent {
                    kind: e.kind,
                    object: Arc::new(CachedObject {
                        key: e.object.key.clone(),
                        revision: e.object.revision,
                        json,
                        attrs: e.object.attrs.clone(),
                    }),
                }
            })
            .collect())
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
        self.one(b).await
    }
    async fn list(&self, ctx: &RequestContext, opts: &ListOptions) -> Result<ListOutput, ApiError> {
        let mut out = self.inner.list(ctx, opts).await?;
        out.items = self.many(std::mem::take(&mut out.items)).await?;
        Ok(out)
    }
    async fn watch(
        &self,
        ctx: &RequestContext,
        opts: &ListOptions,
    ) -> Result<WatchOutput, ApiError> {
        let mut w = self.inner.watch(ctx, opts).await?;
        w.initial = self.events(std::mem::take(&mut w.initial)).await?;
        let converter = self.converter.clone();
        let av = self.api_version.clone();
        let convert: EventConvert = Arc::new(move |b: Bytes| {
            let (converter, av) = (converter.clone(), av.clone());
            Box::pin(async move { convert_bytes(&converter, b, &av).await })
        });
        w.convert = Some(convert);
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
        let is_status = parse(&out.body)?.get("kind").and_then(Value::as_str) == Some("Status");
        if !is_status {
            out.body = self.one(std::mem::take(&mut out.body)).await?;
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
        let mut v = parse(&b)?;
        v["apiVersion"] = Value::from(self.api_version.as_str());
        if let Some(items) = v.get_mut("items").and_then(Value::as_array_mut) {
            let objs = std::mem::take(items);
            *items = self
                .converter
                .convert_many(objs, &self.api_version)
                .await
                .map_err(conversion_error)?;
        }
        to_bytes(&v)
    }
    fn table(&self, items: &[Bytes]) -> Result<TableParts, ApiError> {
        self.inner.table(items)
    }
    fn protobuf(&self) -> bool {
        self.inner.protobuf()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use apiserver_storage::codec::Codec;
    use serde_json::json;

    fn defaults() -> DefaultsByVersion {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object",
            "properties": {"size": {"type": "integer", "default": 3}}}}});
        let st = Arc::new(Structural::from_json(&schema).unwrap());
        Arc::new(BTreeMap::from([("g/v2".to_string(), st)]))
    }

    fn decode(c: &CrCodec, v: Value) -> Value {
        let b = serde_json::to_vec(&v).unwrap();
        serde_json::from_slice(&c.decode(&b).unwrap()).unwrap()
    }

    #[test]
    fn none_strategy_reads_every_stored_version_as_served() {
        let c = CrCodec {
            stored: Some("g/v2".into()),
            served: Some("g/v2".into()),
            defaults: Arc::default(),
        };
        // Stored before the storage version changed.
        let old = json!({"apiVersion": "g/v1", "kind": "W", "spec": {}});
        assert_eq!(decode(&c, old)["apiVersion"], "g/v2");
        let served_v1 = CrCodec {
            stored: Some("g/v2".into()),
            served: Some("g/v1".into()),
            defaults: Arc::default(),
        };
        let enc = served_v1
            .encode(br#"{"apiVersion":"g/v1","kind":"W"}"#)
            .unwrap();
        assert_eq!(&enc[..], br#"{"apiVersion":"g/v2","kind":"W"}"#);
    }

    #[test]
    fn webhook_reader_keeps_the_stored_version_and_its_defaults() {
        let c = CrCodec {
            stored: None,
            served: None,
            defaults: defaults(),
        };
        let v1 = json!({"apiVersion": "g/v1", "kind": "W", "spec": {}});
        assert_eq!(decode(&c, v1.clone()), v1);
        let v2 = json!({"apiVersion": "g/v2", "kind": "W", "spec": {}});
        assert_eq!(decode(&c, v2)["spec"], json!({"size": 3}));
        let enc = c.encode(br#"{"apiVersion":"g/v1"}"#).unwrap();
        assert_eq!(&enc[..], br#"{"apiVersion":"g/v1"}"#);
    }
}
