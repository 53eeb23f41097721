//! Shared informers (client-go `tools/cache` SharedIndexInformer and `informers.SharedInformerFactory`):
//! one list+watch per resource type for the whole process, a local store, and a change feed
//! (added, updated with the old object, deleted) to every subscriber. A relist after a watch
//! error is diffed against the store, so subscribers see the changes they missed, never a gap.

use futures::StreamExt;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio_util::sync::CancellationToken;

/// A change seen by an informer.
#[derive(Debug)]
pub enum Change<K> {
    Added(Arc<K>),
    /// Old, then new.
    Updated(Arc<K>, Arc<K>),
    Deleted(Arc<K>),
}

impl<K> Change<K> {
    /// The object as it is now (for deletions: as it was last seen).
    pub fn object(&self) -> &Arc<K> {
        match self {
            Change::Added(o) | Change::Deleted(o) | Change::Updated(_, o) => o,
        }
    }
}

impl<K> Clone for Change<K> {
    fn clone(&self) -> Self {
        match self {
            Change::Added(o) => Change::Added(o.clone()),
            Change::Updated(a, b) => Change::Updated(a.clone(), b.clone()),
            Change::Deleted(o) => Change::Deleted(o.clone()),
        }
    }
}

/// What an informed type must be.
pub trait Informable:
    Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static
{
}
impl<K> Informable for K where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static
{
}

/// `namespace/name` (or `name` for cluster-scoped objects), as client-go's MetaNamespaceKeyFunc.
pub fn key_of<K: Resource>(obj: &K) -> String {
    match obj.meta().namespace.as_deref() {
        Some(ns) if !ns.is_empty() => format!("{ns}/{}", obj.meta().name.as_deref().unwrap_or("")),
        _ => obj.meta().name.clone().unwrap_or_default(),
    }
}

/// Splits a key made by [`key_of`].
pub fn split_key(key: &str) -> (Option<&str>, &str) {
    match key.split_once('/') {
        Some((ns, name)) => (Some(ns), name),
        None => (None, key),
    }
}

pub struct Informer<K: Informable> {
    store: RwLock<HashMap<String, Arc<K>>>,
    subscribers: Mutex<Vec<UnboundedSender<Change<K>>>>,
    synced: tokio::sync::watch::Sender<bool>,
}

impl<K: Informable> Default for Informer<K> {
    fn default() -> Self {
        Informer {
            store: RwLock::default(),
            subscribers: Mutex::default(),
            synced: tokio::sync::watch::channel(false).0,
        }
    }
}

impl<K: Informable> Informer<K> {
    pub fn get(&self, ns: Option<&str>, name: &str) -> Option<Arc<K>> {
        let key = match ns {
            Some(ns) if !ns.is_empty() => format!("{ns}/{name}"),
            _ => name.to_string(),
        };
        self.get_by_key(&key)
    }

    pub fn get_by_key(&self, key: &str) -> Option<Arc<K>> {
        self.store.read().expect("informer store").get(key).cloned()
    }

    pub fn list(&self) -> Vec<Arc<K>> {
        self.store
            .read()
            .expect("informer store")
            .values()
            .cloned()
            .collect()
    }

    /// Objects in one namespace.
    pub fn list_namespace(&self, ns: &str) -> Vec<Arc<K>> {
        self.store
            .read()
            .expect("informer store")
            .values()
            .filter(|o| o.meta().namespace.as_deref() == Some(ns))
            .cloned()
            .collect()
    }

    pub fn len(&self) -> usize {
        self.store.read().expect("informer store").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn has_synced(&self) -> bool {
        *self.synced.borrow()
    }

    pub async fn wait_synced(&self) {
        let mut rx = self.synced.subscribe();
        let _ = rx.wait_for(|s| *s).await;
    }

    /// A feed of changes. A late subscriber first gets every stored object as `Added`.
    pub fn subscribe(&self) -> UnboundedReceiver<Change<K>> {
        let (tx, rx) = unbounded_channel();
        let mut subs = self.subscribers.lock().expect("informer subscribers");
        for obj in self.store.read().expect("informer store").values() {
            let _ = tx.send(Change::Added(obj.clone()));
        }
        subs.push(tx);
        rx
    }

    fn emit(&self, subs: &mut Vec<UnboundedSender<Change<K>>>, change: Change<K>) {
        subs.retain(|s| s.send(change.clone()).is_ok());
    }

    fn apply(&self, obj: K) {
        let key = key_of(&obj);
        let obj = Arc::new(obj);
        let mut subs = self.subscribers.lock().expect("informer subscribers");
        let old = self
            .store
            .write()
            .expect("informer store")
            .insert(key, obj.clone());
        let change = match old {
            Some(old) => Change::Updated(old, obj),
            None => Change::Added(obj),
        };
        self.emit(&mut subs, change);
    }

    fn delete(&self, obj: K) {
        let key = key_of(&obj);
        let mut subs = self.subscribers.lock().expect("informer subscribers");
        let old = self.store.write().expect("informer store").remove(&key);
        self.emit(
            &mut subs,
            Change::Deleted(old.unwrap_or_else(|| Arc::new(obj))),
        );
    }

    /// Replaces the store with a fresh list, emitting what changed.
    fn replace(&self, items: Vec<K>) {
        let mut subs = self.subscribers.lock().expect("informer subscribers");
        let mut fresh: HashMap<String, Arc<K>> = HashMap::with_capacity(items.len());
        for obj in items {
            fresh.insert(key_of(&obj), Arc::new(obj));
        }
        let old = std::mem::replace(
            &mut *self.store.write().expect("informer store"),
            fresh.clone(),
        );
        for (key, obj) in &fresh {
            match old.get(key) {
                None => self.emit(&mut subs, Change::Added(obj.clone())),
                Some(prev) if prev.resource_version() != obj.resource_version() => {
                    self.emit(&mut subs, Change::Updated(prev.clone(), obj.clone()))
                }
                Some(_) => {}
            }
        }
        for (key, obj) in old {
            if !fresh.contains_key(&key) {
                self.emit(&mut subs, Change::Deleted(obj));
            }
        }
    }

    /// Lists and watches until shut down, relisting (with backoff) after errors.
    pub async fn run(
        self: Arc<Self>,
        api: Api<K>,
        config: watcher::Config,
        shutdown: CancellationToken,
    ) {
        let kind = K::kind(&());
        let mut stream = watcher::watcher(api, config).default_backoff().boxed();
        let mut initial: Vec<K> = Vec::new();
        loop {
            let ev = tokio::select! {
                _ = shutdown.cancelled() => return,
                ev = stream.next() => ev,
            };
            match ev {
                None => return,
                Some(Err(e)) => tracing::warn!(%kind, error = %e, "watch failed; relisting"),
                Some(Ok(Event::Init)) => initial.clear(),
                Some(Ok(Event::InitApply(o))) => initial.push(o),
                Some(Ok(Event::InitDone)) => {
                    self.replace(std::mem::take(&mut initial));
                    self.synced.send_replace(true);
                    tracing::debug!(%kind, count = self.len(), "informer synced");
                }
                Some(Ok(Event::Apply(o))) => self.apply(o),
                Some(Ok(Event::Delete(o))) => self.delete(o),
            }
        }
    }
}

type Starter = Box<dyn FnOnce(Client, CancellationToken) + Send>;

/// One informer per type for the whole process.
pub struct InformerFactory {
    client: Client,
    informers: Mutex<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>,
    pending: Mutex<Vec<Starter>>,
    waiters: Mutex<Vec<Box<dyn Fn() -> bool + Send + Sync>>>,
}

impl InformerFactory {
    pub fn new(client: Client) -> Arc<Self> {
        Arc::new(InformerFactory {
            client,
            informers: Mutex::default(),
            pending: Mutex::default(),
            waiters: Mutex::default(),
        })
    }

    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// The shared informer of `K` (created, not yet started, on first use).
    pub fn informer<K: Informable>(&self) -> Arc<Informer<K>> {
        let mut map = self.informers.lock().expect("informer factory");
        if let Some(i) = map.get(&TypeId::of::<K>()) {
            return i.clone().downcast::<Informer<K>>().expect("informer type");
        }
        let inf: Arc<Informer<K>> = Arc::new(Informer::default());
        map.insert(TypeId::of::<K>(), inf.clone());
        let run = inf.clone();
        self.pending
            .lock()
            .expect("informer factory")
            .push(Box::new(move |client, shutdown| {
                let api: Api<K> = Api::all(client);
                tokio::spawn(run.run(api, watcher::Config::default(), shutdown));
            }));
        let check = inf.clone();
        self.waiters
            .lock()
            .expect("informer factory")
            .push(Box::new(move || check.has_synced()));
        inf
    }

    /// Starts every informer requested so far that is not running yet.
    pub fn start(&self, shutdown: &CancellationToken) {
        let pending = std::mem::take(&mut *self.pending.lock().expect("informer factory"));
        for start in pending {
            start(self.client.clone(), shutdown.child_token());
        }
    }

    /// Waits until every informer requested so far has listed once.
    pub async fn wait_for_cache_sync(&self, shutdown: &CancellationToken) -> bool {
        loop {
            let all = self
                .waiters
                .lock()
                .expect("informer factory")
                .iter()
                .all(|w| w());
            if all {
                return true;
            }
            tokio::select! {
                _ = shutdown.cancelled() => return false,
                _ = tokio::time::sleep(std::time::Duration::from_millis(20)) => {}
            }
        }
    }
}
