//! The storage a served version of a webhook-converted custom resource writes through (mirrors
//! the versioning codec that customresource_handler.go's `crdConversionRESTOptionsGetter` gives
//! each version's etcd3 store): reads decode the stored object (with its stored version's
//! defaults) and convert it to the served version; writes convert to the storage version. The
//! conversion is async (a webhook call), so it happens here, around the byte-level storage,
//! instead of in the synchronous codec. Lists and watches pass through: the REST layer converts
//! them in batches. An update that converts to the bytes already stored is not written. Like
//! upstream's storage decoding, every read converts again (no conversion is remembered).

use super::converter::CrConverter;
use apiserver_storage::codec::Codec;
use apiserver_storage::{EventStream, KeyValue, ListResult, Result, Storage, StorageError};
use async_trait::async_trait;
use bytes::Bytes;
use serde_json::Value;
use std::sync::Arc;

pub struct ConvertingStorage {
    inner: Arc<dyn Storage>,
    converter: Arc<CrConverter>,
    /// Decodes stored bytes: the stored version's schema defaults, apiVersion kept.
    reader: Arc<dyn Codec>,
    /// The served apiVersion (`group/version`).
    served: String,
    /// The storage apiVersion.
    stored: String,
}

fn internal(e: impl ToString) -> StorageError {
    StorageError::Internal(e.to_string())
}

impl ConvertingStorage {
    pub fn new(
        inner: Arc<dyn Storage>,
        converter: Arc<CrConverter>,
        reader: Arc<dyn Codec>,
        served: String,
        stored: String,
    ) -> Self {
        ConvertingStorage {
            inner,
            converter,
            reader,
            served,
            stored,
        }
    }

    async fn to_served(&self, mut kv: KeyValue) -> Result<KeyValue> {
        let json = self.reader.decode(&kv.value).map_err(internal)?;
        let obj: Value = serde_json::from_slice(&json).map_err(internal)?;
        let out = self
            .converter
            .convert_one(obj, &self.served)
            .await
            .map_err(StorageError::Internal)?;
        kv.value = Bytes::from(serde_json::to_vec(&out).map_err(internal)?);
        Ok(kv)
    }

    async fn to_stored(&self, value: &[u8]) -> Result<Bytes> {
        let obj: Value = serde_json::from_slice(value).map_err(internal)?;
        let out = self
            .converter
            .convert_one(obj, &self.stored)
            .await
            .map_err(StorageError::Internal)?;
        Ok(Bytes::from(serde_json::to_vec(&out).map_err(internal)?))
    }
}

#[async_trait]
impl Storage for ConvertingStorage {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        match self.inner.get(key).await? {
            Some(kv) => self.to_served(kv).await.map(Some),
            None => Ok(None),
        }
    }
    /// Stored objects as they are (the caller converts pages).
    async fn list(
        &self,
        prefix: &str,
        start: &str,
        limit: i64,
        revision: i64,
    ) -> Result<ListResult> {
        self.inner.list(prefix, start, limit, revision).await
    }
    async fn create(&self, key: &str, value: Bytes, ttl_seconds: Option<i64>) -> Result<i64> {
        let stored = self.to_stored(&value).await?;
        self.inner.create(key, stored, ttl_seconds).await
    }
    async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected: i64,
        ttl_seconds: Option<i64>,
    ) -> Result<i64> {
        let stored = self.to_stored(&value).await?;
        if let Some(cur) = self.inner.get(key).await?
            && cur.mod_revision == expected
            && cur.value == stored
        {
            return Ok(expected);
        }
        self.inner.update(key, stored, expected, ttl_seconds).await
    }
    async fn delete(&self, key: &str, expected: i64) -> Result<i64> {
        self.inner.delete(key, expected).await
    }
    async fn watch(&self, prefix: &str, from: i64) -> Result<EventStream> {
        self.inner.watch(prefix, from).await
    }

    async fn request_progress(&self) -> Result<()> {
        self.inner.request_progress().await
    }
    async fn current_revision(&self) -> Result<i64> {
        self.inner.current_revision().await
    }
    async fn compact(&self, revision: i64) -> Result<()> {
        self.inner.compact(revision).await
    }
}
