//! Storage for the apiserver: a byte-level key-value interface with etcd revisions
//! (mirrors apiserver/pkg/storage/interfaces.go), an etcd v3 backend, a first-class in-memory
//! backend with real revisions, the read-modify-write loop `guaranteed_update`, and the watch
//! cache that serves LIST and WATCH (mirrors apiserver/pkg/storage/cacher).

pub mod cacher;
pub mod codec;
pub mod etcd;
pub mod memory;
pub mod suite;
pub mod testing;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;

/// One stored key with its revisions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: Bytes,
    pub create_revision: i64,
    pub mod_revision: i64,
}

/// A change seen by a watch. `revision` is the revision of the change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Put {
        kv: KeyValue,
        prev: Option<KeyValue>,
    },
    Delete {
        key: String,
        prev: Option<KeyValue>,
        revision: i64,
    },
    /// The watch has seen every change under its prefix up to `revision` (an answer to
    /// `Storage::request_progress`, or etcd's periodic progress notification). Not a change:
    /// it has no key.
    Progress { revision: i64 },
}

impl Event {
    pub fn revision(&self) -> i64 {
        match self {
            Event::Put { kv, .. } => kv.mod_revision,
            Event::Delete { revision, .. } | Event::Progress { revision } => *revision,
        }
    }
    pub fn key(&self) -> &str {
        match self {
            Event::Put { kv, .. } => &kv.key,
            Event::Delete { key, .. } => key,
            Event::Progress { .. } => "",
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListResult {
    pub items: Vec<KeyValue>,
    /// The revision the list was read at.
    pub revision: i64,
    /// Whether keys remain after the returned page.
    pub more: bool,
    /// How many keys remain after the returned page.
    pub remaining: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    #[error("key not found")]
    NotFound,
    #[error("key already exists")]
    AlreadyExists,
    #[error("revision mismatch")]
    Conflict,
    #[error("required revision has been compacted (compacted at {0})")]
    Compacted(i64),
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    #[error("storage error: {0}")]
    Internal(String),
}

pub type Result<T> = std::result::Result<T, StorageError>;

/// A batch of events at one or more revisions, in revision order.
pub type EventStream = BoxStream<'static, Result<Vec<Event>>>;

/// Byte-level storage with revisions; keys are absolute (`/registry/pods/default/x`).
#[async_trait]
pub trait Storage: Send + Sync + 'static {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>>;
    /// Lists keys under `prefix`, starting at `start` (inclusive; empty = from the prefix), at most
    /// `limit` keys (0 = all), at `revision` (0 = latest).
    async fn list(
        &self,
        prefix: &str,
        start: &str,
        limit: i64,
        revision: i64,
    ) -> Result<ListResult>;
    /// Creates the key if absent; returns the new revision. `ttl_seconds` attaches a lease.
    async fn create(&self, key: &str, value: Bytes, ttl_seconds: Option<i64>) -> Result<i64>;
    /// Replaces the value if the key's mod revision is `expected`; returns the new revision.
    async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected: i64,
        ttl_seconds: Option<i64>,
    ) -> Result<i64>;
    /// Deletes the key if its mod revision is `expected` (0 = any); returns the deletion revision.
    async fn delete(&self, key: &str, expected: i64) -> Result<i64>;
    /// Streams every change under `prefix` with revision >= `from`.
    async fn watch(&self, prefix: &str, from: i64) -> Result<EventStream>;
    /// Asks every open watch to report, with an `Event::Progress`, the revision up to which it
    /// has delivered everything, even when nothing under its prefix changed (upstream's
    /// `RequestWatchProgress`). The watch cache needs it to serve consistent reads when the
    /// newest writes are outside its prefix.
    async fn request_progress(&self) -> Result<()>;
    /// The store's current revision.
    async fn current_revision(&self) -> Result<i64>;
    /// Discards history before `revision`.
    async fn compact(&self, revision: i64) -> Result<()>;
}

/// Outcome of one `guaranteed_update` attempt's decision.
pub enum Update {
    /// Write these bytes.
    Write(Bytes),
    /// Delete the key.
    Delete,
    /// Leave the key as it is.
    Keep,
}

/// The one read-modify-write loop: reads the key, asks `decide` what to write, writes it only if
/// the key's mod revision is unchanged, retries on conflict, and skips writes of identical bytes.
/// Returns the final key value (None if deleted or absent) and whether anything was written.
pub async fn guaranteed_update<S, E, F>(
    store: &S,
    key: &str,
    ttl_seconds: Option<i64>,
    mut decide: F,
) -> std::result::Result<(Option<KeyValue>, bool), E>
where
    S: Storage + ?Sized,
    E: From<StorageError>,
    F: FnMut(Option<&KeyValue>) -> std::result::Result<Update, E>,
{
    loop {
        let current = store.get(key).await?;
        match decide(current.as_ref())? {
            Update::Keep => return Ok((current, false)),
            Update::Write(bytes) => {
                if let Some(cur) = &current {
                    if cur.value == bytes {
                        return Ok((current, false));
                    }
                }
                let res = match &current {
                    Some(cur) => {
                        store
                            .update(key, bytes.clone(), cur.mod_revision, ttl_seconds)
                            .await
                    }
                    None => store.create(key, bytes.clone(), ttl_seconds).await,
                };
                match res {
                    Ok(rev) => {
                        let create_revision = current.as_ref().map_or(rev, |c| c.create_revision);
                        return Ok((
                            Some(KeyValue {
                                key: key.to_string(),
                                value: bytes,
                                create_revision,
                                mod_revision: rev,
                            }),
                            true,
                        ));
                    }
                    Err(StorageError::Conflict) | Err(StorageError::AlreadyExists) => continue,
                    Err(e) => return Err(e.into()),
                }
            }
            Update::Delete => {
                let Some(cur) = &current else {
                    return Ok((None, false));
                };
                match store.delete(key, cur.mod_revision).await {
                    Ok(_) => return Ok((None, true)),
                    Err(StorageError::Conflict) => continue,
                    Err(StorageError::NotFound) => return Ok((None, false)),
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }
}

/// The end of the range that holds every key starting with `prefix`.
pub fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}
