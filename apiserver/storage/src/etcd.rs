//! etcd v3 backend (mirrors apiserver/pkg/storage/etcd3/store.go): creates are
//! "create if absent" transactions, updates and deletes compare the mod revision.

use crate::{Event, EventStream, KeyValue, ListResult, Result, Storage, StorageError, prefix_end};
use async_trait::async_trait;
use bytes::Bytes;
use etcd_client::{
    Client, Compare, CompareOp, EventType, GetOptions, KvClient, PutOptions, Txn, TxnOp,
    TxnOpResponse, WatchOptions,
};
use futures::StreamExt;

#[derive(Clone)]
pub struct EtcdStorage {
    client: Client,
    /// The KV service alone: cloning it per request is much cheaper than cloning the client.
    kv: KvClient,
    /// Bumped by `request_progress`; every open watch stream then sends etcd a progress request.
    progress: std::sync::Arc<tokio::sync::watch::Sender<u64>>,
}

fn map_err(e: etcd_client::Error) -> StorageError {
    match e {
        etcd_client::Error::GRpcStatus(s) if s.message().contains("compacted") => {
            StorageError::Compacted(0)
        }
        etcd_client::Error::GRpcStatus(s)
            if matches!(s.code() as i32, GRPC_UNAVAILABLE | GRPC_DEADLINE_EXCEEDED) =>
        {
            StorageError::Unavailable(s.message().to_string())
        }
        etcd_client::Error::TransportError(t) => StorageError::Unavailable(t.to_string()),
        other => StorageError::Internal(other.to_string()),
    }
}

/// gRPC status codes (numeric, so this crate needs no direct tonic dependency).
const GRPC_DEADLINE_EXCEEDED: i32 = 4;
const GRPC_UNAVAILABLE: i32 = 14;

fn to_kv(kv: &etcd_client::KeyValue) -> KeyValue {
    KeyValue {
        key: String::from_utf8_lossy(kv.key()).into_owned(),
        value: Bytes::copy_from_slice(kv.value()),
        create_revision: kv.create_revision(),
        mod_revision: kv.mod_revision(),
    }
}

impl EtcdStorage {
    /// Connects to the given endpoints (`http://127.0.0.1:2379`).
    pub async fn connect(endpoints: &[String]) -> Result<Self> {
        let eps: Vec<String> = endpoints
            .iter()
            .map(|e| {
                e.trim_start_matches("http://")
                    .trim_start_matches("https://")
                    .to_string()
            })
            .collect();
        let opts = etcd_client::ConnectOptions::new()
            .with_connect_timeout(std::time::Duration::from_secs(5))
            .with_timeout(std::time::Duration::from_secs(30));
        let client = Client::connect(eps, Some(opts)).await.map_err(map_err)?;
        Ok(EtcdStorage {
            kv: client.kv_client(),
            client,
            progress: std::sync::Arc::new(tokio::sync::watch::channel(0).0),
        })
    }

    async fn lease(&self, ttl: Option<i64>) -> Result<Option<PutOptions>> {
        let Some(ttl) = ttl else { return Ok(None) };
        let mut c = self.client.clone();
        let lease = c.lease_grant(ttl, None).await.map_err(map_err)?;
        Ok(Some(PutOptions::new().with_lease(lease.id())))
    }
}

#[async_trait]
impl Storage for EtcdStorage {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let mut c = self.kv.clone();
        let resp = c.get(key, None).await.map_err(map_err)?;
        Ok(resp.kvs().first().map(to_kv))
    }

    async fn list(
        &self,
        prefix: &str,
        start: &str,
        limit: i64,
        revision: i64,
    ) -> Result<ListResult> {
        let mut c = self.kv.clone();
        let from = if start.is_empty() { prefix } else { start };
        let mut opts = GetOptions::new().with_range(prefix_end(prefix));
        if limit > 0 {
            opts = opts.with_limit(limit);
        }
        if revision > 0 {
            opts = opts.with_revision(revision);
        }
        let resp = c.get(from, Some(opts)).await.map_err(|e| {
            let m = map_err(e);
            if let StorageError::Compacted(_) = m {
                StorageError::Compacted(revision)
            } else {
                m
            }
        })?;
        let items: Vec<KeyValue> = resp.kvs().iter().map(to_kv).collect();
        let rev = resp.header().map_or(0, |h| h.revision());
        let remaining = (resp.count() - items.len() as i64).max(0);
        Ok(ListResult {
            more: resp.more(),
            remaining,
            items,
            revision: if revision > 0 { revision } else { rev },
        })
    }

    async fn create(&self, key: &str, value: Bytes, ttl: Option<i64>) -> Result<i64> {
        let put = self.lease(ttl).await?;
        let mut c = self.kv.clone();
        let txn = Txn::new()
            .when([Compare::create_revision(key, CompareOp::Equal, 0)])
            .and_then([TxnOp::put(key, value.to_vec(), put)]);
        let resp = c.txn(txn).await.map_err(map_err)?;
        if !resp.succeeded() {
            return Err(StorageError::AlreadyExists);
        }
        Ok(resp.header().map_or(0, |h| h.revision()))
    }

    async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected: i64,
        ttl: Option<i64>,
    ) -> Result<i64> {
        let put = self.lease(ttl).await?;
        let mut c = self.kv.clone();
        let txn = Txn::new()
            .when([Compare::mod_revision(key, CompareOp::Equal, expected)])
            .and_then([TxnOp::put(key, value.to_vec(), put)])
            .or_else([TxnOp::get(key, None)]);
        let resp = c.txn(txn).await.map_err(map_err)?;
        if !resp.succeeded() {
            for op in resp.op_responses() {
                if let TxnOpResponse::Get(g) = op {
                    if g.kvs().is_empty() {
                        return Err(StorageError::NotFound);
                    }
                }
            }
            return Err(StorageError::Conflict);
        }
        Ok(resp.header().map_or(0, |h| h.revision()))
    }

    async fn delete(&self, key: &str, expected: i64) -> Result<i64> {
        let mut c = self.kv.clone();
        let cmp = if expected == 0 {
            Compare::create_revision(key, CompareOp::Greater, 0)
        } else {
            Compare::mod_revision(key, CompareOp::Equal, expected)
        };
        let txn = Txn::new()
            .when([cmp])
            .and_then([TxnOp::delete(key, None)])
            .or_else([TxnOp::get(key, None)]);
        let resp = c.txn(txn).await.map_err(map_err)?;
        if !resp.succeeded() {
            for op in resp.op_responses() {
                if let TxnOpResponse::Get(g) = op {
                    if g.kvs().is_empty() {
                        return Err(StorageError::NotFound);
                    }
                }
            }
            return Err(StorageError::Conflict);
        }
        Ok(resp.header().map_or(0, |h| h.revision()))
    }

    async fn watch(&self, prefix: &str, from: i64) -> Result<EventStream> {
        let mut c = self.client.clone();
        let mut opts = WatchOptions::new()
            .with_range(prefix_end(prefix))
            .with_prev_key()
            .with_progress_notify();
        if from > 0 {
            opts = opts.with_start_revision(from);
        }
        let (requests, responses) = c.watch(prefix, Some(opts)).await.map_err(map_err)?.split();
        let mut progress = self.progress.subscribe();
        progress.mark_unchanged();
        struct St {
            requests: etcd_client::WatchRequestSender,
            responses: etcd_client::WatchResponseStream,
            progress: tokio::sync::watch::Receiver<u64>,
            /// Every `EtcdStorage` handle is gone: nobody can ask for progress any more.
            progress_closed: bool,
            done: bool,
        }
        let st = St {
            requests,
            responses,
            progress,
            progress_closed: false,
            done: false,
        };
        let s = futures::stream::unfold(st, |mut st| async move {
            if st.done {
                return None;
            }
            loop {
                let msg = tokio::select! {
                    m = st.responses.message() => m,
                    changed = st.progress.changed(), if !st.progress_closed => {
                        if changed.is_err() {
                            // A closed channel answers at once, forever: stop polling it.
                            st.progress_closed = true;
                            continue;
                        }
                        if st.requests.request_progress().await.is_err() {
                            st.done = true;
                            let e = StorageError::Unavailable("watch stream closed".into());
                            return Some((Err(e), st));
                        }
                        continue;
                    }
                };
                let resp = match msg {
                    Ok(Some(resp)) => resp,
                    Ok(None) => return None,
                    Err(e) => {
                        st.done = true;
                        return Some((Err(map_err(e)), st));
                    }
                };
                if resp.canceled() {
                    let e = if resp.compact_revision() > 0 {
                        StorageError::Compacted(resp.compact_revision())
                    } else {
                        StorageError::Unavailable(format!(
                            "watch canceled: {}",
                            resp.cancel_reason()
                        ))
                    };
                    st.done = true;
                    return Some((Err(e), st));
                }
                if resp.created() {
                    // The creation answer's revision says nothing about events still to come.
                    continue;
                }
                let evs: Vec<Event> = resp
                    .events()
                    .iter()
                    .filter_map(|ev| {
                        let kv = ev.kv()?;
                        let prev = ev.prev_kv().map(to_kv);
                        Some(match ev.event_type() {
                            EventType::Put => Event::Put {
                                kv: to_kv(kv),
                                prev,
                            },
                            EventType::Delete => Event::Delete {
                                key: String::from_utf8_lossy(kv.key()).into_owned(),
                                prev,
                                revision: kv.mod_revision(),
                            },
                        })
                    })
                    .collect();
                if !evs.is_empty() {
                    return Some((Ok(evs), st));
                }
                if let Some(h) = resp.header() {
                    // No events and not a creation: a progress notification (requested or
                    // periodic). Everything under the prefix up to this revision was sent.
                    let p = vec![Event::Progress {
                        revision: h.revision(),
                    }];
                    return Some((Ok(p), st));
                }
            }
        });
        Ok(s.boxed())
    }

    async fn request_progress(&self) -> Result<()> {
        self.progress.send_modify(|n| *n = n.wrapping_add(1));
        Ok(())
    }

    async fn current_revision(&self) -> Result<i64> {
        let mut c = self.kv.clone();
        let resp = c
            .get(
                "/registry/health-probe",
                Some(GetOptions::new().with_count_only()),
            )
            .await
            .map_err(map_err)?;
        Ok(resp.header().map_or(0, |h| h.revision()))
    }

    async fn compact(&self, revision: i64) -> Result<()> {
        let mut c = self.kv.clone();
        c.compact(revision, None).await.map_err(map_err)?;
        Ok(())
    }
}
