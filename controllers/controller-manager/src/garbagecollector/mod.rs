//! garbage-collector-controller (upstream `pkg/controller/garbagecollector/garbagecollector.go`):
//! watches the metadata of every deletable resource (re-discovered periodically, so later CRDs
//! are covered), keeps the ownerReference graph, and deletes dependents whose owners are gone
//! (background), deletes the dependents of owners in foreground deletion before releasing them,
//! and strips references to orphaning owners.

pub mod discovery;
pub mod graph;
pub mod monitors;
pub mod operations;

use crate::ControllerContext;
use component_base::workqueue::WorkQueue;
use futures::future::BoxFuture;
use graph::{FOREGROUND_FINALIZER, Graph, GraphEvent, Identity, ORPHAN_FINALIZER, Work};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Client;
use kube::api::PropagationPolicy;
use monitors::{Monitors, Sink};
use operations::{Ops, RestMappingError};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Resources the collector never watches (upstream `DefaultIgnoredResources`).
const IGNORED: [(&str, &str); 2] = [("", "events"), ("events.k8s.io", "events")];
const ABSENT_CACHE_SIZE: usize = 500;

pub fn start(ctx: &ControllerContext) -> BoxFuture<'static, anyhow::Result<()>> {
    let gc = GarbageCollector::new(ctx.client.clone());
    let workers = ctx.config.concurrent_gc_syncs;
    let shutdown = ctx.shutdown.clone();
    Box::pin(async move { gc.run(workers, Duration::from_secs(30), shutdown).await })
}

pub struct GarbageCollector {
    ops: Ops,
    graph: Mutex<Graph>,
    absent: Mutex<HashSet<String>>,
    attempt_to_delete: Arc<WorkQueue<String>>,
    attempt_to_orphan: Arc<WorkQueue<String>>,
}

struct GraphSink(Arc<GarbageCollector>);

impl Sink for GraphSink {
    fn event(&self, ev: GraphEvent) {
        self.0.process(ev);
    }
}

enum Outcome {
    Done,
    Requeue,
}

#[derive(Default)]
struct Classified {
    solid: Vec<OwnerReference>,
    dangling: Vec<OwnerReference>,
    waiting: Vec<OwnerReference>,
}

fn has_finalizer(meta: &ObjectMeta, f: &str) -> bool {
    meta.finalizers.iter().flatten().any(|x| x == f)
}

/// The resources to monitor: served with list, watch and delete, and not ignored.
pub fn deletable(d: &discovery::Discovered) -> Vec<discovery::ResourceInfo> {
    d.preferred()
        .into_iter()
        .filter(|r| r.supports("list") && r.supports("watch") && r.supports("delete"))
        .filter(|r| !IGNORED.contains(&(r.ar.group.as_str(), r.ar.plural.as_str())))
        .cloned()
        .collect()
}

impl GarbageCollector {
    pub fn new(client: Client) -> Arc<Self> {
        Arc::new(GarbageCollector {
            ops: Ops::new(client),
            graph: Mutex::default(),
            absent: Mutex::default(),
            attempt_to_delete: WorkQueue::new("garbage_collector_attempt_to_delete"),
            attempt_to_orphan: WorkQueue::new("garbage_collector_attempt_to_orphan"),
        })
    }

    /// Applies a graph event and queues the resulting work.
    fn process(&self, ev: GraphEvent) {
        let work: Work = self.graph.lock().expect("gc graph").process(ev);
        {
            let mut absent = self.absent.lock().expect("gc absent cache");
            for uid in work.absent {
                if absent.len() >= ABSENT_CACHE_SIZE {
                    absent.clear();
                }
                absent.insert(uid);
            }
        }
        for uid in work.attempt_to_delete {
            self.attempt_to_delete.add(uid);
        }
        for uid in work.attempt_to_orphan {
            self.attempt_to_orphan.add(uid);
        }
    }

    /// Discovers resources every `resync`, keeps monitors in step, and runs `workers` workers
    /// per queue once the graph has synced.
    pub async fn run(
        self: Arc<Self>,
        workers: usize,
        resync: Duration,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        let sink: Arc<dyn Sink> = Arc::new(GraphSink(self.clone()));
        let mut monitors = Monitors::default();
        let client = self.ops.client.clone();
        // First discovery: retry until the server answers.
        loop {
            match discovery::discover(&client).await {
                Ok(d) => {
                    if let Some(m) = d.failure_message() {
                        tracing::warn!(error = %m, "garbage collector: partial discovery");
                    }
                    monitors.sync(&client, &deletable(&d), sink.clone(), &shutdown);
                    self.ops.set_discovery(d);
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "garbage collector: discovery failed")
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
        // Wait for the graph (bounded, as a failing monitor must not stop collection).
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while !monitors.all_synced() && tokio::time::Instant::now() < deadline {
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
        tracing::info!(
            monitors = monitors.len(),
            "garbage collector: graph synced, collecting"
        );
        let mut handles = Vec::new();
        for _ in 0..workers.max(1) {
            let gc = self.clone();
            handles.push(tokio::spawn(async move { gc.delete_worker().await }));
            let gc = self.clone();
            handles.push(tokio::spawn(async move { gc.orphan_worker().await }));
        }
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(resync) => {}
            }
            match discovery::discover(&client).await {
                Ok(d) => {
                    if monitors.sync(&client, &deletable(&d), sink.clone(), &shutdown) {
                        tracing::info!(
                            monitors = monitors.len(),
                            "garbage collector: resources changed"
                        );
                    }
                    self.ops.set_discovery(d);
                }
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "garbage collector: discovery failed")
                }
            }
        }
        self.attempt_to_delete.shut_down();
        self.attempt_to_orphan.shut_down();
        for h in handles {
            let _ = h.await;
        }
        Ok(())
    }

    async fn delete_worker(self: Arc<Self>) {
        let q = self.attempt_to_delete.clone();
        while let Some(uid) = q.get().await {
            match self.attempt_to_delete_item(&uid).await {
                Ok(Outcome::Done) => q.forget(&uid),
                Ok(Outcome::Requeue) => q.add_rate_limited(uid.clone()),
                Err(e) => {
                    tracing::info!(uid = %uid, error = %format!("{e:#}"), "garbage collector: attemptToDelete failed; retrying");
                    q.add_rate_limited(uid.clone());
                }
            }
            q.done(&uid);
        }
    }

    async fn orphan_worker(self: Arc<Self>) {
        let q = self.attempt_to_orphan.clone();
        while let Some(uid) = q.get().await {
            match self.attempt_to_orphan_item(&uid).await {
                Ok(()) => q.forget(&uid),
                Err(e) => {
                    tracing::info!(uid = %uid, error = %format!("{e:#}"), "garbage collector: orphaning failed; retrying");
                    q.add_rate_limited(uid.clone());
                }
            }
            q.done(&uid);
        }
    }

    fn node(&self, uid: &str) -> Option<graph::Node> {
        self.graph.lock().expect("gc graph").get(uid).cloned()
    }

    /// Upstream `attemptToDeleteItem`.
    async fn attempt_to_delete_item(&self, uid: &str) -> anyhow::Result<Outcome> {
        let Some(node) = self.node(uid) else {
            return Ok(Outcome::Done);
        };
        // Being deleted without waiting for dependents: the deletion event will follow.
        if node.being_deleted && !node.deleting_dependents {
            return Ok(Outcome::Done);
        }
        let latest = match self.ops.get_meta(&node.identity).await {
            Ok(Some(m)) if m.uid.as_deref() == Some(uid) => m,
            Ok(_) => {
                self.process(GraphEvent::VirtualDelete(node.identity.clone()));
                return Ok(Outcome::Done);
            }
            Err(e) if e.downcast_ref::<RestMappingError>().is_some() => {
                // The kind is not served: nothing with these coordinates can exist.
                self.process(GraphEvent::VirtualDelete(node.identity.clone()));
                return Ok(Outcome::Done);
            }
            Err(e) => return Err(e),
        };
        if node.deleting_dependents {
            self.process_deleting_dependents(&node).await?;
            return Ok(Outcome::Done);
        }
        let refs = latest.owner_references.clone().unwrap_or_default();
        if refs.is_empty() {
            return Ok(if node.observed {
                Outcome::Done
            } else {
                Outcome::Requeue
            });
        }
        let c = self.classify(&node.identity, &refs).await?;
        tracing::debug!(item = %node.identity, solid = c.solid.len(), dangling = c.dangling.len(), waiting = c.waiting.len(), "garbage collector: classified owner references");
        if !c.solid.is_empty() {
            if !c.dangling.is_empty() || !c.waiting.is_empty() {
                let uids: Vec<String> = c
                    .dangling
                    .iter()
                    .chain(&c.waiting)
                    .map(|r| r.uid.clone())
                    .collect();
                self.ops.remove_owner_refs(&node.identity, &uids).await?;
            }
        } else if !c.waiting.is_empty() && !node.dependents.is_empty() {
            let deps_deleting = {
                let g = self.graph.lock().expect("gc graph");
                g.dependents(uid).iter().any(|d| d.deleting_dependents)
            };
            if deps_deleting {
                // Break a possible cycle of foreground deletions.
                self.ops.unblock_owner_refs(&node.identity).await?;
            }
            tracing::info!(item = %node.identity, "garbage collector: deleting dependent in foreground");
            self.ops
                .delete(&node.identity, PropagationPolicy::Foreground)
                .await?;
        } else {
            let policy = if has_finalizer(&latest, ORPHAN_FINALIZER) {
                PropagationPolicy::Orphan
            } else if has_finalizer(&latest, FOREGROUND_FINALIZER) {
                PropagationPolicy::Foreground
            } else {
                PropagationPolicy::Background
            };
            tracing::info!(item = %node.identity, ?policy, "garbage collector: deleting object whose owners are gone");
            self.ops.delete(&node.identity, policy).await?;
        }
        Ok(if node.observed {
            Outcome::Done
        } else {
            Outcome::Requeue
        })
    }

    /// Sorts owner references into live owners, dangling references and owners waiting for
    /// their dependents' deletion, verifying each owner with a live GET.
    async fn classify(
        &self,
        item: &Identity,
        refs: &[OwnerReference],
    ) -> anyhow::Result<Classified> {
        let mut c = Classified::default();
        for r in refs {
            if self
                .absent
                .lock()
                .expect("gc absent cache")
                .contains(&r.uid)
            {
                c.dangling.push(r.clone());
                continue;
            }
            let owner = Identity {
                api_version: r.api_version.clone(),
                kind: r.kind.clone(),
                name: r.name.clone(),
                uid: r.uid.clone(),
                namespace: item.namespace.clone(),
            };
            match self.ops.get_meta(&owner).await? {
                Some(m) if m.uid.as_deref() == Some(r.uid.as_str()) => {
                    if m.deletion_timestamp.is_some() && has_finalizer(&m, FOREGROUND_FINALIZER) {
                        c.waiting.push(r.clone());
                    } else {
                        c.solid.push(r.clone());
                    }
                }
                _ => {
                    let mut absent = self.absent.lock().expect("gc absent cache");
                    if absent.len() >= ABSENT_CACHE_SIZE {
                        absent.clear();
                    }
                    absent.insert(r.uid.clone());
                    c.dangling.push(r.clone());
                }
            }
        }
        Ok(c)
    }

    /// An owner in foreground deletion: delete its blocking dependents, or release it when none
    /// remain.
    async fn process_deleting_dependents(&self, node: &graph::Node) -> anyhow::Result<()> {
        let blocking: Vec<(String, bool)> = {
            let g = self.graph.lock().expect("gc graph");
            g.blocking_dependents(&node.identity.uid)
                .iter()
                .map(|d| (d.identity.uid.clone(), d.deleting_dependents))
                .collect()
        };
        if blocking.is_empty() {
            tracing::info!(item = %node.identity, "garbage collector: dependents gone, removing foregroundDeletion finalizer");
            return self
                .ops
                .remove_finalizer(&node.identity, FOREGROUND_FINALIZER)
                .await;
        }
        for (uid, deleting) in blocking {
            if !deleting {
                self.attempt_to_delete.add(uid);
            }
        }
        Ok(())
    }

    /// Upstream `attemptToOrphanWorker`: strip the owner from its dependents, then release it.
    async fn attempt_to_orphan_item(&self, uid: &str) -> anyhow::Result<()> {
        let Some(node) = self.node(uid) else {
            return Ok(());
        };
        let dependents: Vec<Identity> = {
            let g = self.graph.lock().expect("gc graph");
            g.dependents(uid)
                .iter()
                .map(|d| d.identity.clone())
                .collect()
        };
        for d in &dependents {
            self.ops.remove_owner_refs(d, &[uid.to_string()]).await?;
        }
        tracing::info!(item = %node.identity, dependents = dependents.len(), "garbage collector: orphaned dependents, removing orphan finalizer");
        self.ops
            .remove_finalizer(&node.identity, ORPHAN_FINALIZER)
            .await
    }
}
