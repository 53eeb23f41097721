//! In-memory storage with real revisions and watch history (first-class backend for tests and
//! embedded use; behaves like etcd's MVCC for everything the apiserver relies on).

use crate::{Event, EventStream, KeyValue, ListResult, Result, Storage, StorageError};
use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

const LIVE_BUFFER: usize = 4096;

#[derive(Default)]
struct State {
    data: BTreeMap<String, KeyValue>,
    revision: i64,
    compacted: i64,
    /// Every change since `compacted`, oldest first (kept for watches and historical lists).
    history: VecDeque<Event>,
}

/// An in-memory MVCC store.
#[derive(Clone)]
pub struct MemoryStorage {
    state: Arc<Mutex<State>>,
    live: broadcast::Sender<Arc<Vec<Event>>>,
}

impl Default for MemoryStorage {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStorage {
    pub fn new() -> Self {
        let (live, _) = broadcast::channel(LIVE_BUFFER);
        MemoryStorage {
            state: Arc::new(Mutex::new(State {
                revision: 1,
                ..Default::default()
            })),
            live,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn commit(&self, st: &mut State, ev: Event) {
        st.history.push_back(ev.clone());
        let _ = self.live.send(Arc::new(vec![ev]));
    }
}

/// Reconstructs the value of every key under `prefix` as of `revision` from the current data and
/// the history after it.
fn snapshot_at(st: &State, prefix: &str, revision: i64) -> BTreeMap<String, KeyValue> {
    let mut snap: BTreeMap<String, KeyValue> = st
        .data
        .range(prefix.to_string()..)
        .take_while(|(k, _)| k.starts_with(prefix))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for ev in st.history.iter().rev() {
        if ev.revision() <= revision {
            break;
        }
        if !ev.key().starts_with(prefix) {
            continue;
        }
        match ev {
            Event::Put { kv, prev } => match prev {
                Some(p) => {
                    snap.insert(kv.key.clone(), p.clone());
                }
                None => {
                    snap.remove(&kv.key);
                }
            },
            Event::Delete { key, prev, .. } => {
                if let Some(p) = prev {
                    snap.insert(key.clone(), p.clone());
                }
            }
            Event::Progress { .. } => {}
        }
    }
    snap
}

#[async_trait]
impl Storage for MemoryStorage {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        Ok(self.lock().data.get(key).cloned())
    }

    async fn list(
        &self,
        prefix: &str,
        start: &str,
        limit: i64,
        revision: i64,
    ) -> Result<ListResult> {
        let st = self.lock();
        if revision > 0 && revision < st.compacted {
            return Err(StorageError::Compacted(st.compacted));
        }
        if revision > st.revision {
            return Err(StorageError::Internal(format!(
                "revision {revision} is in the future"
            )));
        }
        let read_rev = if revision > 0 { revision } else { st.revision };
        let snap = if revision > 0 && revision < st.revision {
            snapshot_at(&st, prefix, revision)
        } else {
            st.data
                .range(prefix.to_string()..)
                .take_while(|(k, _)| k.starts_with(prefix))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        };
        let from = if start.is_empty() { prefix } else { start };
        let all: Vec<KeyValue> = snap
            .range(from.to_string()..)
            .map(|(_, v)| v.clone())
            .collect();
        let total = all.len() as i64;
        let items: Vec<KeyValue> = if limit > 0 {
            all.into_iter().take(limit as usize).collect()
        } else {
            all
        };
        let remaining = total - items.len() as i64;
        Ok(ListResult {
            more: remaining > 0,
            remaining,
            items,
            revision: read_rev,
        })
    }

    async fn create(&self, key: &str, value: Bytes, _ttl: Option<i64>) -> Result<i64> {
        let mut st = self.lock();
        if st.data.contains_key(key) {
            return Err(StorageError::AlreadyExists);
        }
        st.revision += 1;
        let kv = KeyValue {
            key: key.to_string(),
            value,
            create_revision: st.revision,
            mod_revision: st.revision,
        };
        st.data.insert(key.to_string(), kv.clone());
        let rev = st.revision;
        self.commit(&mut st, Event::Put { kv, prev: None });
        Ok(rev)
    }

    async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected: i64,
        _ttl: Option<i64>,
    ) -> Result<i64> {
        let mut st = self.lock();
        let prev = match st.data.get(key) {
            Some(p) if p.mod_revision == expected => p.clone(),
            Some(_) => return Err(StorageError::Conflict),
            None => return Err(StorageError::NotFound),
        };
        st.revision += 1;
        let kv = KeyValue {
            key: key.to_string(),
            value,
            create_revision: prev.create_revision,
            mod_revision: st.revision,
        };
        st.data.insert(key.to_string(), kv.clone());
        let rev = st.revision;
        self.commit(
            &mut st,
            Event::Put {
                kv,
                prev: Some(prev),
            },
        );
        Ok(rev)
    }

    async fn delete(&self, key: &str, expected: i64) -> Result<i64> {
        let mut st = self.lock();
        let prev = match st.data.get(key) {
            Some(p) if expected == 0 || p.mod_revision == expected => p.clone(),
            Some(_) => return Err(StorageError::Conflict),
            None => return Err(StorageError::NotFound),
        };
        st.revision += 1;
        st.data.remove(key);
        let rev = st.revision;
        self.commit(
            &mut st,
            Event::Delete {
                key: key.to_string(),
                prev: Some(prev),
                revision: rev,
            },
        );
        Ok(rev)
    }

    async fn watch(&self, prefix: &str, from: i64) -> Result<EventStream> {
        let (backlog, rx) = {
            let st = self.lock();
            if from > 0 && from <= st.compacted {
                return Err(StorageError::Compacted(st.compacted));
            }
            let from = if from == 0 { st.revision + 1 } else { from };
            let backlog: Vec<Event> = st
                .history
                .iter()
                .filter(|e| e.revision() >= from && e.key().starts_with(prefix))
                .cloned()
                .collect();
            (backlog, self.live.subscribe())
        };
        let prefix = prefix.to_string();
        let last = backlog.last().map(|e| e.revision()).unwrap_or(0);
        let first = futures::stream::iter((!backlog.is_empty()).then_some(Ok(backlog)));
        let live = tokio_stream_from(rx).filter_map(move |batch| {
            let prefix = prefix.clone();
            async move {
                match batch {
                    Err(e) => Some(Err(e)),
                    Ok(b) => {
                        let evs: Vec<Event> = b
                            .iter()
                            .filter(|e| {
                                matches!(e, Event::Progress { .. })
                                    || (e.revision() > last && e.key().starts_with(&prefix))
                            })
                            .cloned()
                            .collect();
                        (!evs.is_empty()).then_some(Ok(evs))
                    }
                }
            }
        });
        Ok(first.chain(live).boxed())
    }

    async fn request_progress(&self) -> Result<()> {
        // Every change is broadcast as it is committed, so the current revision is complete.
        let revision = self.lock().revision;
        let _ = self.live.send(Arc::new(vec![Event::Progress { revision }]));
        Ok(())
    }

    async fn current_revision(&self) -> Result<i64> {
        Ok(self.lock().revision)
    }

    async fn compact(&self, revision: i64) -> Result<()> {
        let mut st = self.lock();
        if revision <= st.compacted {
            return Err(StorageError::Compacted(st.compacted));
        }
        st.compacted = revision.min(st.revision);
        let c = st.compacted;
        while st.history.front().is_some_and(|e| e.revision() <= c) {
            st.history.pop_front();
        }
        Ok(())
    }
}

/// Turns a broadcast receiver into a stream; a lagging receiver ends with an error so the
/// consumer re-lists instead of silently missing events.
fn tokio_stream_from(rx: broadcast::Receiver<Arc<Vec<Event>>>) -> EventStream {
    futures::stream::unfold((rx, false), |(mut rx, done)| async move {
        if done {
            return None;
        }
        match rx.recv().await {
            Ok(b) => Some((Ok((*b).clone()), (rx, false))),
            Err(broadcast::error::RecvError::Lagged(n)) => Some((
                Err(StorageError::Unavailable(format!(
                    "watch fell behind by {n} batches"
                ))),
                (rx, true),
            )),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    })
    .boxed()
}
