//! deployment-controller (mirrors upstream pkg/controller/deployment/deployment_controller.go):
//! wiring, informer event handlers and `syncDeployment`, which claims the deployment's
//! ReplicaSets and dispatches to scaling (`sync`), RollingUpdate or Recreate (`rollout`).

mod rollout;
mod sync;
pub mod util;

use crate::ControllerContext;
use crate::controller_utils::{
    RefManager, controller_ref, labels_of, new_controller_ref, selector_of,
};
use component_base::events::Recorder;
use component_base::informer::{Change, Informer, key_of};
use component_base::workqueue::{WorkQueue, run_workers};
use futures::future::BoxFuture;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, OwnerReference};
use kube::api::PostParams;
use kube::{Api, ResourceExt};
use std::collections::HashMap;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use util::*;

pub struct DeploymentController {
    client: kube::Client,
    deployments: Arc<Informer<Deployment>>,
    replica_sets: Arc<Informer<ReplicaSet>>,
    pods: Arc<Informer<Pod>>,
    queue: Arc<WorkQueue<String>>,
    recorder: Recorder,
}

/// Start fn of `deployment-controller`.
pub fn start(ctx: &ControllerContext) -> BoxFuture<'static, anyhow::Result<()>> {
    let c = Arc::new(DeploymentController {
        client: ctx.client.clone(),
        deployments: ctx.informers.informer::<Deployment>(),
        replica_sets: ctx.informers.informer::<ReplicaSet>(),
        pods: ctx.informers.informer::<Pod>(),
        queue: WorkQueue::new("deployment"),
        recorder: ctx.recorder("deployment-controller"),
    });
    let workers = ctx.config.concurrent_deployment_syncs;
    let shutdown = ctx.shutdown.clone();
    Box::pin(async move { c.run(workers, shutdown).await })
}

impl DeploymentController {
    async fn run(
        self: Arc<Self>,
        workers: usize,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = async {
                self.deployments.wait_synced().await;
                self.replica_sets.wait_synced().await;
                self.pods.wait_synced().await;
            } => {}
        }
        let events = tokio::spawn(self.clone().handle_events(shutdown.clone()));
        let c = self.clone();
        let work = tokio::spawn(run_workers(
            self.queue.clone(),
            workers,
            move |key: String| {
                let c = c.clone();
                async move { Box::pin(c.sync(&key)).await }
            },
        ));
        shutdown.cancelled().await;
        self.queue.shut_down();
        events.abort();
        let _ = work.await;
        Ok(())
    }

    async fn handle_events(self: Arc<Self>, shutdown: CancellationToken) {
        let mut ds = self.deployments.subscribe();
        let mut rss = self.replica_sets.subscribe();
        let mut pods = self.pods.subscribe();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                Some(ch) = ds.recv() => self.queue.add(key_of(ch.object().as_ref())),
                Some(ch) = rss.recv() => self.on_replica_set(ch),
                Some(ch) = pods.recv() => self.on_pod(ch),
                else => return,
            }
        }
    }

    fn resolve(&self, ns: Option<&str>, r: &OwnerReference) -> Option<Arc<Deployment>> {
        if r.kind != "Deployment" {
            return None;
        }
        self.deployments
            .get(ns, &r.name)
            .filter(|d| d.metadata.uid.as_deref() == Some(r.uid.as_str()))
    }

    fn enqueue_matching(&self, rs: &ReplicaSet) {
        let labels = labels_of(&rs.metadata);
        for d in self
            .deployments
            .list_namespace(rs.metadata.namespace.as_deref().unwrap_or_default())
        {
            if d.spec.selector != LabelSelector::default()
                && selector_of(Some(&d.spec.selector)).is_some_and(|s| s.matches(&labels))
            {
                self.queue.add(key_of(d.as_ref()));
            }
        }
    }

    fn on_replica_set(&self, ch: Change<ReplicaSet>) {
        let (old, cur) = match &ch {
            Change::Added(rs) | Change::Deleted(rs) => (None, rs),
            Change::Updated(old, cur) => {
                if old.resource_version() == cur.resource_version() {
                    return;
                }
                (Some(old), cur)
            }
        };
        let cur_ref = controller_ref(&cur.metadata);
        if let Some(old) = old {
            let old_ref = controller_ref(&old.metadata);
            if old_ref != cur_ref
                && let Some(r) = old_ref
                && let Some(d) = self.resolve(old.namespace().as_deref(), r)
            {
                self.queue.add(key_of(d.as_ref()));
            }
        }
        if let Some(r) = cur_ref {
            if let Some(d) = self.resolve(cur.namespace().as_deref(), r) {
                self.queue.add(key_of(d.as_ref()));
            }
            return;
        }
        if matches!(ch, Change::Deleted(_)) {
            return;
        }
        let changed = old.is_none_or(|o| {
            o.metadata.labels != cur.metadata.labels || controller_ref(&o.metadata).is_some()
        });
        if changed {
            self.enqueue_matching(cur);
        }
    }

    /// Recreate waits for old pods to go away: a pod deletion wakes its deployment.
    fn on_pod(&self, ch: Change<Pod>) {
        let Change::Deleted(pod) = ch else { return };
        let ns = pod.metadata.namespace.as_deref();
        let Some(r) = controller_ref(&pod.metadata).filter(|r| r.kind == "ReplicaSet") else {
            return;
        };
        let Some(rs) = self.replica_sets.get(ns, &r.name) else {
            return;
        };
        if let Some(dr) = controller_ref(&rs.metadata)
            && let Some(d) = self.resolve(ns, dr)
            && is_recreate(&d)
        {
            self.queue.add(key_of(d.as_ref()));
        }
    }

    /// Upstream `syncDeployment`.
    async fn sync(&self, key: &str) -> anyhow::Result<()> {
        let Some(d) = self.deployments.get_by_key(key) else {
            return Ok(());
        };
        let mut d = (*d).clone();
        if d.spec.selector == LabelSelector::default() {
            self.recorder.warning(
                &d,
                "SelectingAll",
                "Sync",
                "This deployment is selecting all pods. A non-empty selector is required.".into(),
            );
            let st = d.status.get_or_insert_default();
            if st.observed_generation.unwrap_or(0) < d.metadata.generation.unwrap_or(0) {
                st.observed_generation = d.metadata.generation;
                self.update_status(&mut d).await?;
            }
            return Ok(());
        }
        let rs_list = self.claim_replica_sets(&d).await?;
        if d.metadata.deletion_timestamp.is_some() {
            let (new_rs, old) = Box::pin(self.new_and_old(&mut d, &rs_list, false)).await?;
            return self.sync_status(&mut d, new_rs.as_ref(), &old).await;
        }
        self.check_paused_conditions(&mut d).await?;
        if d.spec.paused == Some(true) {
            return Box::pin(self.sync_scale(&mut d, &rs_list)).await;
        }
        if self.is_scaling_event(&mut d, &rs_list).await? {
            return Box::pin(self.sync_scale(&mut d, &rs_list)).await;
        }
        if is_recreate(&d) {
            let pod_map = self.pod_map(&d, &rs_list);
            self.rollout_recreate(&mut d, &rs_list, &pod_map).await
        } else {
            self.rollout_rolling(&mut d, &rs_list).await
        }
    }

    /// The ReplicaSets this deployment controls, after adoption and release (upstream
    /// `getReplicaSetsForDeployment`).
    async fn claim_replica_sets(&self, d: &Deployment) -> anyhow::Result<Vec<ReplicaSet>> {
        let ns = d.namespace().unwrap_or_default();
        let Some(selector) = selector_of(Some(&d.spec.selector)) else {
            anyhow::bail!("deployment {ns}/{} has an invalid selector", d.name_any());
        };
        let controller = new_controller_ref("apps/v1", "Deployment", &d.metadata)?;
        let mgr = RefManager {
            controller: &controller,
            selector: &selector,
            owner_deleting: d.metadata.deletion_timestamp.is_some(),
        };
        let api: Api<ReplicaSet> = Api::namespaced(self.client.clone(), &ns);
        let dapi: Api<Deployment> = Api::namespaced(self.client.clone(), &ns);
        let name = d.name_any();
        let uid = controller.uid.clone();
        let claimed = mgr
            .claim(&api, self.replica_sets.list_namespace(&ns), || async move {
                let fresh = dapi.get(&name).await?;
                if fresh.metadata.uid.as_deref() != Some(uid.as_str()) {
                    anyhow::bail!("original Deployment {name} is gone");
                }
                if fresh.metadata.deletion_timestamp.is_some() {
                    anyhow::bail!("Deployment {name} is being deleted");
                }
                Ok(())
            })
            .await?;
        Ok(claimed.into_iter().map(|rs| (*rs).clone()).collect())
    }

    /// Pods of the deployment's ReplicaSets, by ReplicaSet UID (upstream
    /// `getPodMapForDeployment`).
    fn pod_map(&self, d: &Deployment, rss: &[ReplicaSet]) -> HashMap<String, Vec<Arc<Pod>>> {
        let mut map: HashMap<String, Vec<Arc<Pod>>> = rss
            .iter()
            .filter_map(|rs| rs.metadata.uid.clone())
            .map(|u| (u, Vec::new()))
            .collect();
        let Some(sel) = selector_of(Some(&d.spec.selector)) else {
            return map;
        };
        for p in self
            .pods
            .list_namespace(d.metadata.namespace.as_deref().unwrap_or_default())
        {
            if !sel.matches(&labels_of(&p.metadata)) {
                continue;
            }
            if let Some(r) = controller_ref(&p.metadata)
                && let Some(v) = map.get_mut(&r.uid)
            {
                v.push(p);
            }
        }
        map
    }

    /// Upstream `checkPausedConditions`.
    async fn check_paused_conditions(&self, d: &mut Deployment) -> anyhow::Result<()> {
        if progress_deadline(d).is_none() {
            return Ok(());
        }
        let status = d.status.clone().unwrap_or_default();
        let cond = get_condition(&status, PROGRESSING);
        if cond.is_some_and(|c| c.reason.as_deref() == Some("ProgressDeadlineExceeded")) {
            return Ok(());
        }
        let paused_exists = cond.is_some_and(|c| c.reason.as_deref() == Some("DeploymentPaused"));
        let paused = d.spec.paused == Some(true);
        let c = if paused && !paused_exists {
            new_condition(
                PROGRESSING,
                "Unknown",
                "DeploymentPaused",
                "Deployment is paused".into(),
            )
        } else if !paused && paused_exists {
            new_condition(
                PROGRESSING,
                "Unknown",
                "DeploymentResumed",
                "Deployment is resumed".into(),
            )
        } else {
            return Ok(());
        };
        set_condition(d.status.get_or_insert_default(), c);
        self.update_status(d).await
    }

    /// Writes `d.status` and keeps the stored object (with its new resourceVersion) in `d`.
    async fn update_status(&self, d: &mut Deployment) -> anyhow::Result<()> {
        let api: Api<Deployment> =
            Api::namespaced(self.client.clone(), &d.namespace().unwrap_or_default());
        *d = api
            .replace_status(&d.name_any(), &PostParams::default(), d)
            .await?;
        Ok(())
    }
}
