//! The watch cache (mirrors apiserver/pkg/storage/cacher): one etcd watch over `/registry/`
//! feeds one cache per resource. Each cache holds the current objects (already decoded into their
//! served JSON with resourceVersion set, plus labels and selectable fields), a bounded history of
//! events for watches from a past revision, and the registered watchers. Every event is
//! transformed once and shared; each watcher gets a bounded channel and is closed, never waited
//! for, when it falls behind.

use crate::{Event, KeyValue, Storage, StorageError};
use apiserver_apimachinery::selector::{FieldSelector, LabelSelector};
use bytes::Bytes;
use futures::StreamExt;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

/// How many past events a cache keeps for watches that resume from a revision.
const HISTORY: usize = 10_000;
/// How many events a watcher may have in flight before it is closed.
const WATCHER_BUFFER: usize = 1024;

/// Labels and selectable fields of an object, for selector matching.
#[derive(Clone, Debug, Default)]
pub struct Attrs {
    pub labels: BTreeMap<String, String>,
    pub fields: BTreeMap<String, String>,
}

/// An object as served: its key, revision, JSON bytes and attributes.
#[derive(Debug)]
pub struct CachedObject {
    pub key: String,
    pub revision: i64,
    pub json: Bytes,
    pub attrs: Attrs,
}

/// Turns stored bytes into a served object with the given resourceVersion.
pub type Transform = Arc<dyn Fn(&str, &[u8], i64) -> Result<CachedObject, String> + Send + Sync>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One event as a watcher sees it.
#[derive(Clone, Debug)]
pub struct WatchEvent {
    pub kind: EventType,
    pub object: Arc<CachedObject>,
}

#[derive(Debug)]
struct HistEvent {
    revision: i64,
    object: Arc<CachedObject>,
    prev: Option<Arc<CachedObject>>,
    deleted: bool,
    /// The previous object stamped with this event's revision, for watchers whose selector the
    /// object leaves (computed on first use).
    prev_at_rev: std::sync::OnceLock<Option<Arc<CachedObject>>>,
}

/// What a watcher or list wants to see.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// Absolute key prefix (the resource prefix, or the namespace's prefix under it).
    pub key_prefix: String,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
}

impl Filter {
    pub fn matches(&self, o: &CachedObject) -> bool {
        o.key.starts_with(&self.key_prefix)
            && self.labels.matches(&o.attrs.labels)
            && self.fields.matches(&o.attrs.fields)
    }
    pub fn has_selectors(&self) -> bool {
        !self.labels.is_empty() || !self.fields.is_empty()
    }
    fn classify(&self, ev: &HistEvent, transform: &Transform) -> Option<WatchEvent> {
        let prev_match = ev.prev.as_ref().is_some_and(|p| self.matches(p));
        if ev.deleted {
            return prev_match.then(|| WatchEvent {
                kind: EventType::Deleted,
                object: ev.object.clone(),
            });
        }
        let cur = self.matches(&ev.object);
        let kind = match (prev_match, cur) {
            (true, true) => EventType::Modified,
            (false, true) => EventType::Added,
            (true, false) => {
                // The object left the selector: the watcher sees the last state it matched,
                // at the revision of the change (as upstream's cache watcher).
                let prev = ev
                    .prev_at_rev
                    .get_or_init(|| {
                        let p = ev.prev.as_ref()?;
                        transform(&p.key, &p.json, ev.revision).ok().map(Arc::new)
                    })
                    .clone()
                    .unwrap_or_else(|| ev.object.clone());
                return Some(WatchEvent {
                    kind: EventType::Deleted,
                    object: prev,
                });
            }
            (false, false) => return None,
        };
        Some(WatchEvent {
            kind,
            object: ev.object.clone(),
        })
    }
}

struct WatcherSlot {
    filter: Filter,
    tx: mpsc::Sender<WatchEvent>,
    /// Only events after this revision are sent (the watcher already has the rest).
    after: i64,
}

#[derive(Default)]
struct CacheState {
    /// The newest revision applied to this cache (may be ahead of the set's revision while a
    /// batch is being applied).
    revision: i64,
    objects: BTreeMap<String, Arc<CachedObject>>,
    history: VecDeque<Arc<HistEvent>>,
    /// Events after this revision are all in `history`.
    oldest: i64,
    watchers: Vec<WatcherSlot>,
    /// Events seen while a cache registered at run time loads its initial list.
    pending: Option<Vec<Event>>,
    /// Events at or before this revision are already in the loaded list.
    loaded_at: i64,
}

/// Where a watch starts.
#[derive(Clone, Copy, Debug)]
pub enum WatchStart {
    /// Synthetic ADDED events for the current objects, then changes.
    Initial,
    /// Only changes after now.
    Now,
    /// Changes after this revision.
    After(i64),
}

/// A registered watch: the events already due, then the live channel.
pub struct Watcher {
    pub initial: Vec<WatchEvent>,
    pub live: mpsc::Receiver<WatchEvent>,
    /// The revision the initial events reflect.
    pub revision: i64,
}

/// A list page served from the cache.
pub struct CacheList {
    pub items: Vec<Arc<CachedObject>>,
    pub revision: i64,
    /// The key the next page starts after, when more items remain.
    pub next: Option<String>,
    pub remaining: Option<i64>,
}

/// The cache of one resource.
pub struct WatchCache {
    pub prefix: String,
    transform: Transform,
    state: RwLock<CacheState>,
    set: Arc<Shared>,
}

impl WatchCache {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, CacheState> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, CacheState> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }

    pub fn transform(&self, key: &str, value: &[u8], rev: i64) -> Result<CachedObject, String> {
        (self.transform)(key, value, rev)
    }

    /// The revision the cache (and every cache of its set) is current at.
    pub fn revision(&self) -> i64 {
        *self.set.revision.borrow()
    }

    /// Waits until the cache has seen `rev`; false on timeout. While it waits it asks for
    /// progress notifications, so writes outside the cached prefix (which produce no events)
    /// do not hold it up.
    pub async fn wait_for(&self, rev: i64, timeout: Duration) -> bool {
        let mut rx = self.set.revision.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        let mut step = PROGRESS_FIRST_WAIT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(step.min(left), rx.wait_for(|r| *r >= rev)).await {
                Ok(Ok(_)) => return true,
                Ok(Err(_)) => return false,
                Err(_) if left <= step => return false,
                Err(_) => {
                    self.set.progress_wanted.notify_one();
                    step = PROGRESS_REQUEST_PERIOD;
                }
            }
        }
    }

    /// Lists matching objects in key order, starting after `after` (a full key).
    pub fn list(&self, filter: &Filter, after: Option<&str>, limit: usize) -> CacheList {
        let global = self.revision();
        let st = self.read();
        let revision = global.max(st.revision);
        let start = match after {
            Some(a) => std::ops::Bound::Excluded(a.to_string()),
            None => std::ops::Bound::Included(filter.key_prefix.clone()),
        };
        let mut items = Vec::new();
        let mut next = None;
        let mut iter = st
            .objects
            .range((start, std::ops::Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(&filter.key_prefix))
            .filter(|(_, o)| filter.matches(o));
        for (_, o) in iter.by_ref() {
            if limit > 0 && items.len() == limit {
                next = items.last().map(|l: &Arc<CachedObject>| l.key.clone());
                break;
            }
            items.push(o.clone());
        }
        let remaining = match &next {
            Some(_) if !filter.has_selectors() => Some(1 + iter.count() as i64),
            _ => None,
        };
        CacheList {
            items,
            revision,
            next,
            remaining,
        }
    }

    /// The cached object at `key`, if any.
    pub fn get(&self, key: &str) -> Option<Arc<CachedObject>> {
        self.read().objects.get(key).cloned()
    }

    /// Registers a watcher.
    pub fn watch(&self, filter: Filter, start: WatchStart) -> Result<Watcher, StorageError> {
        let (tx, live) = mpsc::channel(WATCHER_BUFFER);
        let global = self.revision();
        let mut st = self.write();
        let revision = global.max(st.revision);
        let initial = match start {
            WatchStart::Initial => st
                .objects
                .range(filter.key_prefix.clone()..)
                .take_while(|(k, _)| k.starts_with(&filter.key_prefix))
                .filter(|(_, o)| filter.matches(o))
                .map(|(_, o)| WatchEvent {
                    kind: EventType::Added,
                    object: o.clone(),
                })
                .collect(),
            WatchStart::Now => Vec::new(),
            WatchStart::After(rv) => {
                if rv < st.oldest {
                    return Err(StorageError::Compacted(st.oldest));
                }
                st.history
                    .iter()
                    .filter(|e| e.revision > rv)
                    .filter_map(|e| filter.classify(e, &self.transform))
                    .collect()
            }
        };
        let after = match start {
            WatchStart::After(rv) => rv.max(st.history.back().map_or(0, |e| e.revision)),
            _ => revision,
        };
        st.watchers.push(WatcherSlot { filter, tx, after });
        Ok(Watcher {
            initial,
            live,
            revision,
        })
    }

    /// The oldest revision a watch can resume from.
    pub fn oldest(&self) -> i64 {
        self.read().oldest
    }

    fn reset(&self, objects: BTreeMap<String, Arc<CachedObject>>, revision: i64) {
        let mut st = self.write();
        st.pending = None;
        st.loaded_at = revision;
        st.revision = revision;
        st.objects = objects;
        st.history.clear();
        st.oldest = revision;
        // Watchers cannot be told what changed while the cache was rebuilt: close them so their
        // clients resume (and get 410 if they are too far behind).
        st.watchers.clear();
    }

    fn apply(&self, ev: &Event) {
        let mut st = self.write();
        if let Some(p) = st.pending.as_mut() {
            p.push(ev.clone());
            return;
        }
        if ev.revision() <= st.loaded_at {
            return;
        }
        self.apply_locked(&mut st, ev);
    }

    /// Ends the initial load of a cache registered at run time: the listed objects, then the
    /// events that arrived meanwhile and are newer than the list.
    fn finish_load(&self, objects: BTreeMap<String, Arc<CachedObject>>, revision: i64) {
        let mut st = self.write();
        let pending = st.pending.take().unwrap_or_default();
        st.revision = revision;
        st.objects = objects;
        st.history.clear();
        st.oldest = revision;
        st.loaded_at = revision;
        for ev in pending.iter().filter(|e| e.revision() > revision) {
            self.apply_locked(&mut st, ev);
        }
    }

    fn apply_locked(&self, st: &mut CacheState, ev: &Event) {
        let (hist, key) = match ev {
            Event::Put { kv, .. } => match self.transform(&kv.key, &kv.value, kv.mod_revision) {
                Ok(obj) => {
                    let obj = Arc::new(obj);
                    let prev = st.objects.get(&kv.key).cloned();
                    (
                        HistEvent {
                            revision: kv.mod_revision,
                            object: obj,
                            prev,
                            deleted: false,
                            prev_at_rev: Default::default(),
                        },
                        kv.key.clone(),
                    )
                }
                Err(e) => {
                    tracing::warn!(key = %kv.key, error = %e, "cannot decode stored object; skipping");
                    return;
                }
            },
            Event::Progress { .. } => return,
            Event::Delete {
                key,
                prev,
                revision,
            } => {
                let cached = st.objects.get(key).cloned();
                let last = match (cached, prev) {
                    (Some(c), _) => c,
                    (None, Some(p)) => match self.transform(key, &p.value, p.mod_revision) {
                        Ok(o) => Arc::new(o),
                        Err(_) => return,
                    },
                    (None, None) => return,
                };
                // The deleted object is served with the revision of its deletion.
                let obj = match self.transform(key, &rejson(&last), *revision) {
                    Ok(o) => Arc::new(o),
                    Err(_) => return,
                };
                (
                    HistEvent {
                        revision: *revision,
                        object: obj,
                        prev: Some(last),
                        deleted: true,
                        prev_at_rev: Default::default(),
                    },
                    key.clone(),
                )
            }
        };
        let hist = Arc::new(hist);
        st.revision = st.revision.max(hist.revision);
        if hist.deleted {
            st.objects.remove(&key);
        } else {
            st.objects.insert(key, hist.object.clone());
        }
        if st.history.len() >= HISTORY {
            if let Some(old) = st.history.pop_front() {
                st.oldest = old.revision;
            }
        }
        st.history.push_back(hist.clone());
        st.watchers.retain(|w| {
            if w.tx.is_closed() {
                return false;
            }
            if hist.revision <= w.after {
                return true;
            }
            match w.filter.classify(&hist, &self.transform) {
                None => true,
                Some(ev) => match w.tx.try_send(ev) {
                    Ok(()) => true,
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        tracing::info!(prefix = %self.prefix, "closing a watcher that fell behind");
                        false
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => false,
                },
            }
        });
    }

    /// Number of open watchers (for metrics).
    pub fn watcher_count(&self) -> usize {
        self.read().watchers.len()
    }
}

fn rejson(o: &CachedObject) -> Vec<u8> {
    o.json.to_vec()
}

struct Shared {
    revision: watch::Sender<i64>,
    /// Woken by a reader waiting for a revision the watch has not reported; the watch loop
    /// then asks storage for a progress notification.
    progress_wanted: tokio::sync::Notify,
}

/// How often a waiting reader asks again for a progress notification (upstream's
/// `progressRequestPeriod`).
const PROGRESS_REQUEST_PERIOD: Duration = Duration::from_millis(100);
/// How long a reader first waits for the watch to deliver before asking for progress: the
/// newest write is usually already on its way.
const PROGRESS_FIRST_WAIT: Duration = Duration::from_millis(5);

/// All caches of one storage, fed by one watch over their common prefix.
pub struct CacheSet {
    storage: Arc<dyn Storage>,
    root: String,
    caches: RwLock<Vec<Arc<WatchCache>>>,
    shared: Arc<Shared>,
    ready: watch::Sender<bool>,
}

impl CacheSet {
    pub fn new(storage: Arc<dyn Storage>, root: &str) -> Arc<Self> {
        let (revision, _) = watch::channel(0);
        let (ready, _) = watch::channel(false);
        Arc::new(CacheSet {
            storage,
            root: root.to_string(),
            caches: RwLock::new(Vec::new()),
            shared: Arc::new(Shared {
                revision,
                progress_wanted: tokio::sync::Notify::new(),
            }),
            ready,
        })
    }

    /// Registers the cache of one resource prefix (e.g. `/registry/pods/`). Call before `run`.
    pub fn register(&self, prefix: &str, transform: Transform) -> Arc<WatchCache> {
        let c = Arc::new(WatchCache {
            prefix: prefix.to_string(),
            transform,
            state: RwLock::new(CacheState::default()),
            set: self.shared.clone(),
        });
        let mut caches = self.caches.write().unwrap_or_else(|p| p.into_inner());
        caches.push(c.clone());
        // Longest prefix first, so `/registry/services/specs/` wins over `/registry/services/`.
        caches.sort_by(|a, b| b.prefix.len().cmp(&a.prefix.len()));
        c
    }

    /// Registers the cache of a resource prefix while the set is running (custom resources):
    /// events are buffered while the prefix is listed, then replayed past the list's revision.
    pub async fn register_live(
        &self,
        prefix: &str,
        transform: Transform,
    ) -> Result<Arc<WatchCache>, StorageError> {
        let c = Arc::new(WatchCache {
            prefix: prefix.to_string(),
            transform,
            state: RwLock::new(CacheState {
                pending: Some(Vec::new()),
                ..CacheState::default()
            }),
            set: self.shared.clone(),
        });
        {
            let mut caches = self.caches.write().unwrap_or_else(|p| p.into_inner());
            caches.push(c.clone());
            caches.sort_by(|a, b| b.prefix.len().cmp(&a.prefix.len()));
        }
        let loaded = self.list_prefix(&c).await;
        match loaded {
            Ok((objects, revision)) => {
                c.finish_load(objects, revision);
                Ok(c)
            }
            Err(e) => {
                self.unregister(&c);
                Err(e)
            }
        }
    }

    async fn list_prefix(
        &self,
        c: &WatchCache,
    ) -> Result<(BTreeMap<String, Arc<CachedObject>>, i64), StorageError> {
        let mut objects = BTreeMap::new();
        let mut start = String::new();
        let mut revision = 0;
        loop {
            let page = self.storage.list(&c.prefix, &start, 5000, revision).await?;
            revision = page.revision;
            for kv in &page.items {
                match c.transform(&kv.key, &kv.value, kv.mod_revision) {
                    Ok(o) => {
                        objects.insert(kv.key.clone(), Arc::new(o));
                    }
                    Err(e) => {
                        tracing::warn!(key = %kv.key, error = %e, "cannot decode stored object; skipping")
                    }
                }
            }
            match (page.more, page.items.last()) {
                (true, Some(last)) => start = format!("{}\u{0}", last.key),
                _ => return Ok((objects, revision)),
            }
        }
    }

    /// Removes a cache (a custom resource no longer served); its watchers are closed.
    pub fn unregister(&self, cache: &Arc<WatchCache>) {
        let mut caches = self.caches.write().unwrap_or_else(|p| p.into_inner());
        caches.retain(|c| !Arc::ptr_eq(c, cache));
        cache.write().watchers.clear();
    }

    fn cache_for(&self, key: &str) -> Option<Arc<WatchCache>> {
        let caches = self.caches.read().unwrap_or_else(|p| p.into_inner());
        caches.iter().find(|c| key.starts_with(&c.prefix)).cloned()
    }

    pub fn revision(&self) -> i64 {
        *self.shared.revision.borrow()
    }

    /// The common key prefix of every cache (`/registry/`).
    pub fn root(&self) -> &str {
        &self.root
    }

    /// Waits until the initial list has been loaded.
    pub async fn wait_ready(&self) {
        let mut rx = self.ready.subscribe();
        let _ = rx.wait_for(|r| *r).await;
    }

    pub fn is_ready(&self) -> bool {
        *self.ready.borrow()
    }

    /// Lists everything and then follows the watch, re-listing whenever the watch breaks.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut backoff = Duration::from_millis(100);
        loop {
            let res = tokio::select! {
                _ = shutdown.cancelled() => return,
                r = self.clone().list_and_watch(&shutdown) => r,
            };
            if shutdown.is_cancelled() {
                return;
            }
            if let Err(e) = res {
                tracing::warn!(error = %e, "watch cache lost its watch; re-listing");
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }

    async fn list_and_watch(
        self: Arc<Self>,
        shutdown: &CancellationToken,
    ) -> Result<(), StorageError> {
        let mut start = String::new();
        let mut revision = 0;
        let mut by_cache: BTreeMap<String, BTreeMap<String, Arc<CachedObject>>> = BTreeMap::new();
        loop {
            let page = self
                .storage
                .list(&self.root, &start, 5000, revision)
                .await?;
            revision = page.revision;
            for kv in &page.items {
                self.load(kv, &mut by_cache);
            }
            match (page.more, page.items.last()) {
                (true, Some(last)) => start = format!("{}\u{0}", last.key),
                _ => break,
            }
        }
        {
            let caches = self
                .caches
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            for c in caches {
                c.reset(by_cache.remove(&c.prefix).unwrap_or_default(), revision);
            }
        }
        self.shared.revision.send_replace(revision);
        self.ready.send_replace(true);
        tracing::info!(revision, "watch cache loaded");
        let mut stream = self.storage.watch(&self.root, revision + 1).await?;
        loop {
            let batch = tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = self.shared.progress_wanted.notified() => {
                    self.storage.request_progress().await?;
                    continue;
                }
                b = stream.next() => b,
            };
            let Some(batch) = batch else {
                return Err(StorageError::Unavailable("watch ended".into()));
            };
            let batch = batch?;
            let mut last = 0;
            for ev in &batch {
                if let Some(c) = self.cache_for(ev.key()) {
                    c.apply(ev);
                }
                last = ev.revision();
            }
            if last > 0 {
                self.shared.revision.send_if_modified(|r| {
                    if last > *r {
                        *r = last;
                        true
                    } else {
                        false
                    }
                });
            }
        }
    }

    fn load(&self, kv: &KeyValue, out: &mut BTreeMap<String, BTreeMap<String, Arc<CachedObject>>>) {
        let Some(c) = self.cache_for(&kv.key) else {
            return;
        };
        match c.transform(&kv.key, &kv.value, kv.mod_revision) {
            Ok(o) => {
                out.entry(c.prefix.clone())
                    .or_default()
                    .insert(kv.key.clone(), Arc::new(o));
            }
            Err(e) => {
                tracing::warn!(key = %kv.key, error = %e, "cannot decode stored object; skipping")
            }
        }
    }
}
