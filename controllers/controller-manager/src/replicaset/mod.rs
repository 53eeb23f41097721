//! replicaset-controller and replicationcontroller-controller (mirrors upstream
//! pkg/controller/replicaset/replica_set.go and pkg/controller/replication): keeps
//! `spec.replicas` active pods per owner, adopting and releasing pods by selector, with
//! expectations so a slow watch never causes double creation. This file holds the controller
//! wiring and informer event handlers; `sync` holds the reconcile, `owner` the two kinds.

mod owner;
mod sync;

pub use owner::{OwnerCondition, OwnerStatus, ReplicaOwner};

use crate::ControllerContext;
use crate::controller_utils::{Expectations, controller_ref, labels_of};
use component_base::events::Recorder;
use component_base::informer::{Change, Informer, key_of};
use component_base::workqueue::{WorkQueue, run_workers};
use futures::future::BoxFuture;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Pod, ReplicationController};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::ResourceExt;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Upstream `BurstReplicas`: at most this many creations or deletions per sync.
pub const BURST_REPLICAS: usize = 500;

/// Start fn of `replicaset-controller`.
pub fn start_replicaset(ctx: &ControllerContext) -> BoxFuture<'static, anyhow::Result<()>> {
    start::<ReplicaSet>(ctx, ctx.config.concurrent_replicaset_syncs)
}

/// Start fn of `replicationcontroller-controller` (upstream `--concurrent-rc-syncs`, default 5).
pub fn start_replicationcontroller(
    ctx: &ControllerContext,
) -> BoxFuture<'static, anyhow::Result<()>> {
    start::<ReplicationController>(ctx, 5)
}

/// The controller over one owner kind.
pub struct ReplicaController<R: ReplicaOwner> {
    client: kube::Client,
    owners: Arc<Informer<R>>,
    pods: Arc<Informer<Pod>>,
    queue: Arc<WorkQueue<String>>,
    expectations: Expectations,
    recorder: Recorder,
    burst: usize,
}

/// Requests the informers now and returns the run loop.
pub fn start<R: ReplicaOwner>(
    ctx: &ControllerContext,
    workers: usize,
) -> BoxFuture<'static, anyhow::Result<()>> {
    let c = Arc::new(ReplicaController::<R> {
        client: ctx.client.clone(),
        owners: ctx.informers.informer::<R>(),
        pods: ctx.informers.informer::<Pod>(),
        queue: WorkQueue::new(R::CONTROLLER_NAME),
        expectations: Expectations::default(),
        recorder: ctx.recorder(R::CONTROLLER_NAME),
        burst: BURST_REPLICAS,
    });
    let shutdown = ctx.shutdown.clone();
    Box::pin(async move { c.run(workers, shutdown).await })
}

impl<R: ReplicaOwner> ReplicaController<R> {
    async fn run(
        self: Arc<Self>,
        workers: usize,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = async { self.owners.wait_synced().await; self.pods.wait_synced().await } => {}
        }
        let events = tokio::spawn(self.clone().handle_events(shutdown.clone()));
        let c = self.clone();
        let work = tokio::spawn(run_workers(
            self.queue.clone(),
            workers,
            move |key: String| {
                let c = c.clone();
                async move { c.sync(&key).await }
            },
        ));
        shutdown.cancelled().await;
        self.queue.shut_down();
        events.abort();
        let _ = work.await;
        Ok(())
    }

    async fn handle_events(self: Arc<Self>, shutdown: CancellationToken) {
        let mut owners = self.owners.subscribe();
        let mut pods = self.pods.subscribe();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                Some(ch) = owners.recv() => self.on_owner(ch),
                Some(ch) = pods.recv() => self.on_pod(ch),
                else => return,
            }
        }
    }

    fn on_owner(&self, ch: Change<R>) {
        if let Change::Deleted(o) = &ch {
            self.expectations.delete(&key_of(o.as_ref()));
        }
        self.queue.add(key_of(ch.object().as_ref()));
    }

    /// The owner a controller reference points at, if it is one of ours and still exists.
    fn resolve(&self, ns: Option<&str>, r: &OwnerReference) -> Option<Arc<R>> {
        if r.kind != R::kind(&()) {
            return None;
        }
        self.owners
            .get(ns, &r.name)
            .filter(|o| o.meta().uid.as_deref() == Some(r.uid.as_str()))
    }

    /// Owners in the pod's namespace whose selector matches it (for orphans).
    fn matching_owners(&self, pod: &Pod) -> Vec<Arc<R>> {
        let Some(ns) = pod.metadata.namespace.as_deref() else {
            return vec![];
        };
        let labels = labels_of(&pod.metadata);
        self.owners
            .list_namespace(ns)
            .into_iter()
            .filter(|o| o.selector().is_some_and(|s| s.matches(&labels)))
            .collect()
    }

    fn enqueue(&self, owner: &R) {
        self.queue.add(key_of(owner));
    }

    fn on_pod(&self, ch: Change<Pod>) {
        match ch {
            Change::Added(pod) => {
                if pod.metadata.deletion_timestamp.is_some() {
                    self.pod_deleted(&pod);
                    return;
                }
                if let Some(r) = controller_ref(&pod.metadata) {
                    if let Some(o) = self.resolve(pod.namespace().as_deref(), r) {
                        self.expectations.creation_observed(&key_of(o.as_ref()));
                        self.enqueue(&o);
                    }
                    return;
                }
                for o in self.matching_owners(&pod) {
                    self.enqueue(&o);
                }
            }
            Change::Updated(old, cur) => {
                if old.resource_version() == cur.resource_version() {
                    return;
                }
                let labels_changed = old.metadata.labels != cur.metadata.labels;
                if cur.metadata.deletion_timestamp.is_some() {
                    self.pod_deleted(&cur);
                    if labels_changed {
                        self.pod_deleted(&old);
                    }
                    return;
                }
                let old_ref = controller_ref(&old.metadata);
                let cur_ref = controller_ref(&cur.metadata);
                let ref_changed = old_ref != cur_ref;
                if ref_changed
                    && let Some(r) = old_ref
                    && let Some(o) = self.resolve(old.namespace().as_deref(), r)
                {
                    self.enqueue(&o);
                }
                if let Some(r) = cur_ref {
                    if let Some(o) = self.resolve(cur.namespace().as_deref(), r) {
                        self.enqueue(&o);
                        let min_ready = o.min_ready_seconds();
                        if min_ready > 0
                            && !crate::controller_utils::pods::is_pod_ready(&old)
                            && crate::controller_utils::pods::is_pod_ready(&cur)
                        {
                            // Re-check availability once minReadySeconds have passed.
                            self.queue.add_after(
                                key_of(o.as_ref()),
                                Duration::from_secs(min_ready as u64 + 1),
                            );
                        }
                    }
                    return;
                }
                if labels_changed || ref_changed {
                    for o in self.matching_owners(&cur) {
                        self.enqueue(&o);
                    }
                }
            }
            Change::Deleted(pod) => self.pod_deleted(&pod),
        }
    }

    fn pod_deleted(&self, pod: &Pod) {
        if let Some(r) = controller_ref(&pod.metadata)
            && let Some(o) = self.resolve(pod.metadata.namespace.as_deref(), r)
        {
            let key = key_of(o.as_ref());
            self.expectations.deletion_observed(&key, &key_of(pod));
            self.queue.add(key);
        }
    }
}
