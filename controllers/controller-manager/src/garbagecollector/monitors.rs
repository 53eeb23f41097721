//! Metadata-only watches of every deletable resource feeding the dependency graph (upstream
//! `graph_builder.go` monitors): started and stopped as discovery changes, a relist is diffed
//! against what the monitor saw so deletions missed while disconnected still reach the graph.

use super::discovery::ResourceInfo;
use super::graph::GraphEvent;
use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Client;
use kube::api::{Api, DynamicObject};
use kube::core::PartialObjectMeta;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio_util::sync::CancellationToken;

/// Receives the graph events of the monitors.
pub trait Sink: Send + Sync + 'static {
    fn event(&self, ev: GraphEvent);
}

struct Monitor {
    stop: CancellationToken,
    synced: Arc<AtomicBool>,
}

/// The running monitors, keyed by `resource.group`.
#[derive(Default)]
pub struct Monitors {
    running: HashMap<String, Monitor>,
}

impl Monitors {
    /// Starts monitors for new resources and stops those no longer served. Returns whether the
    /// set changed.
    pub fn sync(
        &mut self,
        client: &Client,
        resources: &[ResourceInfo],
        sink: Arc<dyn Sink>,
        shutdown: &CancellationToken,
    ) -> bool {
        let mut changed = false;
        let wanted: HashMap<String, &ResourceInfo> =
            resources.iter().map(|r| (r.group_resource(), r)).collect();
        self.running.retain(|k, m| {
            let keep = wanted.contains_key(k);
            if !keep {
                tracing::info!(resource = %k, "garbage collector: stopping monitor");
                m.stop.cancel();
                changed = true;
            }
            keep
        });
        for (k, info) in wanted {
            if self.running.contains_key(&k) {
                continue;
            }
            changed = true;
            let stop = shutdown.child_token();
            let synced = Arc::new(AtomicBool::new(false));
            tokio::spawn(run_monitor(
                client.clone(),
                info.clone(),
                sink.clone(),
                synced.clone(),
                stop.clone(),
            ));
            self.running.insert(k, Monitor { stop, synced });
        }
        changed
    }

    pub fn all_synced(&self) -> bool {
        self.running
            .values()
            .all(|m| m.synced.load(Ordering::SeqCst))
    }

    pub fn len(&self) -> usize {
        self.running.len()
    }

    pub fn is_empty(&self) -> bool {
        self.running.is_empty()
    }
}

async fn run_monitor(
    client: Client,
    info: ResourceInfo,
    sink: Arc<dyn Sink>,
    synced: Arc<AtomicBool>,
    stop: CancellationToken,
) {
    let api: Api<PartialObjectMeta<DynamicObject>> = Api::all_with(client, &info.ar);
    let mut stream = watcher::watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    let av = info.ar.api_version.clone();
    let kind = info.ar.kind.clone();
    let upsert = |meta: ObjectMeta| GraphEvent::Upsert {
        api_version: av.clone(),
        kind: kind.clone(),
        meta,
    };
    let delete = |meta: ObjectMeta| GraphEvent::Delete {
        api_version: av.clone(),
        kind: kind.clone(),
        meta,
    };
    let mut known: HashMap<String, ObjectMeta> = HashMap::new();
    let mut initial: Vec<ObjectMeta> = Vec::new();
    loop {
        let ev = tokio::select! {
            _ = stop.cancelled() => return,
            ev = stream.next() => ev,
        };
        match ev {
            None => return,
            Some(Err(e)) => {
                tracing::debug!(resource = %info.group_resource(), error = %e, "garbage collector monitor: watch failed")
            }
            Some(Ok(Event::Init)) => initial.clear(),
            Some(Ok(Event::InitApply(o))) => initial.push(o.metadata),
            Some(Ok(Event::InitDone)) => {
                let fresh: HashMap<String, ObjectMeta> = std::mem::take(&mut initial)
                    .into_iter()
                    .map(|m| (m.uid.clone().unwrap_or_default(), m))
                    .collect();
                for (uid, m) in known.drain() {
                    if !fresh.contains_key(&uid) {
                        sink.event(delete(m));
                    }
                }
                for m in fresh.values() {
                    sink.event(upsert(m.clone()));
                }
                known = fresh;
                synced.store(true, Ordering::SeqCst);
            }
            Some(Ok(Event::Apply(o))) => {
                known.insert(
                    o.metadata.uid.clone().unwrap_or_default(),
                    o.metadata.clone(),
                );
                sink.event(upsert(o.metadata));
            }
            Some(Ok(Event::Delete(o))) => {
                known.remove(o.metadata.uid.as_deref().unwrap_or_default());
                sink.event(delete(o.metadata));
            }
        }
    }
}
