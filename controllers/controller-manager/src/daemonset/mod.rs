//! The DaemonSet controller (mirrors upstream `pkg/controller/daemon/daemon_controller.go`):
//! one pod per eligible node, pinned to it by node affinity; failed pods replaced, pods on nodes
//! that no longer qualify removed; ControllerRevisions with `controller-revision-hash`; the
//! RollingUpdate/OnDelete strategies (`update.rs`) and status.

mod predicates;
mod update;

pub use predicates::{
    add_daemon_tolerations, node_matches, set_node_affinity, should_run, target_node,
};

use crate::ControllerContext;
use crate::history::{self, CONTROLLER_REVISION_HASH};
use crate::podutil::{
    Expectations, controller_owner_ref, controller_ref, is_controlled_by, is_not_found,
    is_pod_available, is_pod_ready, phase, pod_from_template,
};
use component_base::events::Recorder;
use component_base::informer::{Informer, key_of, split_key};
use component_base::workqueue::{WorkQueue, run_workers};
use futures::future::BoxFuture;
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet, DaemonSetStatus};
use k8s_openapi::api::core::v1::{Node, Pod, PodTemplateSpec};
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

pub(crate) struct DaemonSetController {
    client: kube::Client,
    sets: Arc<Informer<DaemonSet>>,
    pods: Arc<Informer<Pod>>,
    nodes: Arc<Informer<Node>>,
    revisions: Arc<Informer<ControllerRevision>>,
    queue: Arc<WorkQueue<String>>,
    recorder: Recorder,
    expectations: Expectations,
}

/// `daemonset-controller`.
pub fn start(ctx: &ControllerContext) -> BoxFuture<'static, anyhow::Result<()>> {
    let c = Arc::new(DaemonSetController {
        client: ctx.client.clone(),
        sets: ctx.informers.informer::<DaemonSet>(),
        pods: ctx.informers.informer::<Pod>(),
        nodes: ctx.informers.informer::<Node>(),
        revisions: ctx.informers.informer::<ControllerRevision>(),
        queue: WorkQueue::new("daemonset"),
        recorder: ctx.recorder("daemonset-controller"),
        expectations: Expectations::default(),
    });
    let workers = ctx.config.concurrent_daemonset_syncs;
    let informers = ctx.informers.clone();
    let shutdown = ctx.shutdown.clone();
    Box::pin(async move {
        if !informers.wait_for_cache_sync(&shutdown).await {
            return Ok(());
        }
        let mut sets = c.sets.subscribe();
        let mut pods = c.pods.subscribe();
        let mut nodes = c.nodes.subscribe();
        let h = c.clone();
        let handlers = tokio::spawn(async move {
            loop {
                tokio::select! {
                    Some(ch) = sets.recv() => h.queue.add(key_of(ch.object().as_ref())),
                    Some(ch) = pods.recv() => h.on_pod(&ch),
                    Some(_) = nodes.recv() => {
                        for ds in h.sets.list() {
                            h.queue.add(key_of(ds.as_ref()));
                        }
                    }
                    else => break,
                }
            }
        });
        let q = c.queue.clone();
        let sync = {
            let c = c.clone();
            move |key: String| {
                let c = c.clone();
                async move { c.sync(&key).await }
            }
        };
        tokio::select! {
            _ = run_workers(q.clone(), workers, sync) => {}
            _ = shutdown.cancelled() => {}
        }
        q.shut_down();
        handlers.abort();
        Ok(())
    })
}

/// The template pods are created from: the set's template plus the daemon tolerations.
pub fn daemon_pod_template(ds: &DaemonSet) -> PodTemplateSpec {
    let mut t = ds.spec.template.clone();
    add_daemon_tolerations(t.spec.get_or_insert_with(Default::default));
    t
}

fn pod_hash(p: &Pod) -> Option<&str> {
    p.metadata
        .labels
        .as_ref()?
        .get(CONTROLLER_REVISION_HASH)
        .map(String::as_str)
}

/// What sync decided for one node.
pub(crate) struct NodeState {
    pub node: String,
    pub should_run: bool,
    pub pods: Vec<Arc<Pod>>,
}

impl DaemonSetController {
    fn on_pod(&self, ch: &component_base::informer::Change<Pod>) {
        use component_base::informer::Change;
        let pod = ch.object();
        let Some(r) = controller_ref(&pod.metadata).filter(|r| r.kind == "DaemonSet") else {
            return;
        };
        let key = format!(
            "{}/{}",
            pod.metadata.namespace.as_deref().unwrap_or(""),
            r.name
        );
        match ch {
            Change::Added(p) if p.metadata.deletion_timestamp.is_none() => {
                self.expectations.creation_observed(&key)
            }
            Change::Updated(o, n)
                if o.metadata.deletion_timestamp.is_none()
                    && n.metadata.deletion_timestamp.is_some() =>
            {
                self.expectations.deletion_observed(&key)
            }
            Change::Deleted(p) if p.metadata.deletion_timestamp.is_none() => {
                self.expectations.deletion_observed(&key)
            }
            _ => {}
        }
        self.queue.add(key);
    }

    async fn sync(&self, key: &str) -> anyhow::Result<()> {
        let (ns, name) = split_key(key);
        let Some(shared) = self.sets.get(ns, name) else {
            self.expectations.forget(key);
            return Ok(());
        };
        let ds = (*shared).clone();
        let ns = ns.unwrap_or("").to_string();
        let uid = ds.metadata.uid.clone().unwrap_or_default();
        let spec = ds.spec.clone();
        // Pods of this set, by node.
        let mut by_node: HashMap<String, Vec<Arc<Pod>>> = HashMap::new();
        let owned_pods: Vec<Arc<Pod>> = if ds.metadata.deletion_timestamp.is_none() {
            crate::podutil::claim_pods(
                &self.client,
                &ds,
                &spec.selector,
                self.pods.list_namespace(&ns),
                |_| true,
            )
            .await?
        } else {
            self.pods
                .list_namespace(&ns)
                .into_iter()
                .filter(|p| is_controlled_by(&p.metadata, &uid))
                .collect()
        };
        for p in owned_pods {
            if let Some(n) = target_node(&p) {
                by_node.entry(n).or_default().push(p);
            }
        }
        if ds.metadata.deletion_timestamp.is_some() {
            return Ok(());
        }
        // Revisions.
        let all_revs = self.revisions.list_namespace(&ns);
        let owned = history::owned(&all_revs, &uid);
        let template = daemon_pod_template(&ds);
        let want = history::new_revision(
            name,
            &ns,
            controller_owner_ref(&ds),
            spec.template
                .metadata
                .as_ref()
                .and_then(|m| m.labels.as_ref()),
            history::template_patch(&spec.template),
            0,
            ds.status.as_ref().and_then(|s| s.collision_count),
        );
        let (cur, collision_count) = history::ensure_revision(
            &self.client,
            &owned,
            want,
            name,
            ds.status.as_ref().and_then(|s| s.collision_count),
        )
        .await?;
        let hash = history::hash_of(&cur);

        let nodes = self.nodes.list();
        let mut states: Vec<NodeState> = Vec::new();
        let tspec = template.spec.clone().unwrap_or_default();
        for n in &nodes {
            let nname = n.metadata.name.clone().unwrap_or_default();
            let (run, keep) = should_run(&tspec, n);
            let pods = by_node.remove(&nname).unwrap_or_default();
            states.push(NodeState {
                node: nname,
                should_run: run,
                pods,
            });
            let _ = keep;
        }
        if self.expectations.satisfied(key) {
            let mut create: Vec<String> = Vec::new();
            let mut delete: Vec<Arc<Pod>> = Vec::new();
            // Pods for nodes that no longer exist.
            for pods in by_node.values() {
                delete.extend(
                    pods.iter()
                        .filter(|p| p.metadata.deletion_timestamp.is_none())
                        .cloned(),
                );
            }
            for (st, n) in states.iter().zip(&nodes) {
                let (_, keep) = should_run(&tspec, n);
                let live: Vec<&Arc<Pod>> = st
                    .pods
                    .iter()
                    .filter(|p| p.metadata.deletion_timestamp.is_none())
                    .collect();
                if st.should_run {
                    let mut running = Vec::new();
                    for p in &live {
                        if phase(p) == "Failed" {
                            self.recorder.warning(&ds, "FailedDaemonPod", "Sync", format!(
                                "Found failed daemon pod {ns}/{} on node {}, will try to kill it",
                                p.metadata.name.clone().unwrap_or_default(), st.node));
                            delete.push((*p).clone());
                        } else {
                            running.push((*p).clone());
                        }
                    }
                    if running.is_empty()
                        && st.pods.iter().all(|p| {
                            p.metadata.deletion_timestamp.is_none() || phase(p) == "Failed"
                        })
                    {
                        create.push(st.node.clone());
                    } else if running.len() > 1 && update::max_surge(&ds, 1) == 0 {
                        // Keep the oldest pod; remove duplicates.
                        running
                            .sort_by_key(|p| p.metadata.creation_timestamp.as_ref().map(|t| t.0));
                        delete.extend(running.into_iter().skip(1));
                    }
                } else if !keep {
                    delete.extend(live.into_iter().cloned());
                }
            }
            self.sync_nodes(&ds, key, &hash, &create, &delete).await?;
            if spec
                .update_strategy
                .as_ref()
                .and_then(|s| s.type_.as_deref())
                .unwrap_or("RollingUpdate")
                == "RollingUpdate"
                && create.is_empty()
                && delete.is_empty()
            {
                update::rolling_update(self, &ds, key, &hash, &states).await?;
            }
        }
        // History: keep revisions used by pods or current, trim the rest.
        let mut live: Vec<String> = states
            .iter()
            .flat_map(|s| s.pods.iter())
            .filter_map(|p| pod_hash(p).map(String::from))
            .collect();
        live.push(hash.clone());
        let owned = history::owned(&self.revisions.list_namespace(&ns), &uid);
        history::truncate(
            &self.client,
            &owned,
            &live,
            spec.revision_history_limit.unwrap_or(10),
        )
        .await?;
        self.update_status(&ds, &hash, &states, collision_count)
            .await
    }

    /// Creates pods on `create` nodes (slow start) and deletes `delete` pods.
    pub(crate) async fn sync_nodes(
        &self,
        ds: &DaemonSet,
        key: &str,
        hash: &str,
        create: &[String],
        delete: &[Arc<Pod>],
    ) -> anyhow::Result<()> {
        if create.is_empty() && delete.is_empty() {
            return Ok(());
        }
        self.expectations
            .expect(key, create.len() as i64, delete.len() as i64);
        let ns = ds.metadata.namespace.clone().unwrap_or_default();
        let name = ds.metadata.name.clone().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        let mut err = None;
        let mut batch = 1;
        let mut pos = 0;
        while pos < create.len() {
            let end = (pos + batch).min(create.len());
            let results = futures::future::join_all(create[pos..end].iter().map(|node| {
                let mut t = daemon_pod_template(ds);
                t.metadata
                    .get_or_insert_with(Default::default)
                    .labels
                    .get_or_insert_with(BTreeMap::new)
                    .insert(CONTROLLER_REVISION_HASH.into(), hash.to_string());
                let mut pod = pod_from_template(&t, &ns, &name, controller_owner_ref(ds));
                set_node_affinity(pod.spec.get_or_insert_with(Default::default), node);
                let api = api.clone();
                async move { api.create(&PostParams::default(), &pod).await }
            }))
            .await;
            for r in results {
                match r {
                    Ok(p) => self.recorder.normal(
                        ds,
                        "SuccessfulCreate",
                        "Create",
                        format!("Created pod: {}", p.metadata.name.unwrap_or_default()),
                    ),
                    Err(e) => {
                        self.expectations.creation_observed(key);
                        self.recorder.warning(
                            ds,
                            "FailedCreate",
                            "Create",
                            format!("Error creating: {e}"),
                        );
                        err = Some(e);
                    }
                }
            }
            pos = end;
            if err.is_some() {
                for _ in pos..create.len() {
                    self.expectations.creation_observed(key);
                }
                break;
            }
            batch *= 2;
        }
        for p in delete {
            let pname = p.metadata.name.clone().unwrap_or_default();
            match api.delete(&pname, &DeleteParams::default()).await {
                Ok(_) => self.recorder.normal(
                    ds,
                    "SuccessfulDelete",
                    "Delete",
                    format!("Deleted pod: {pname}"),
                ),
                Err(e) if is_not_found(&e) => self.expectations.deletion_observed(key),
                Err(e) => {
                    self.expectations.deletion_observed(key);
                    self.recorder.warning(
                        ds,
                        "FailedDelete",
                        "Delete",
                        format!("Error deleting: {e}"),
                    );
                    err = Some(e);
                }
            }
        }
        match err {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    async fn update_status(
        &self,
        ds: &DaemonSet,
        hash: &str,
        states: &[NodeState],
        collision_count: Option<i32>,
    ) -> anyhow::Result<()> {
        let min_ready = ds.spec.min_ready_seconds.unwrap_or(0);
        let now = jiff::Timestamp::now();
        let (mut desired, mut current, mut mis, mut ready, mut updated, mut available) =
            (0, 0, 0, 0, 0, 0);
        for st in states {
            let live: Vec<&Arc<Pod>> = st
                .pods
                .iter()
                .filter(|p| p.metadata.deletion_timestamp.is_none())
                .collect();
            if st.should_run {
                desired += 1;
                if live.is_empty() {
                    continue;
                }
                current += 1;
                let mut sorted = live.clone();
                sorted.sort_by_key(|p| p.metadata.creation_timestamp.as_ref().map(|t| t.0));
                let p = sorted[0];
                if is_pod_ready(p) {
                    ready += 1;
                    if is_pod_available(p, min_ready, now) {
                        available += 1;
                    }
                }
                if live.iter().any(|p| pod_hash(p) == Some(hash)) {
                    updated += 1;
                }
            } else if !live.is_empty() {
                mis += 1;
            }
        }
        let status = DaemonSetStatus {
            desired_number_scheduled: desired,
            current_number_scheduled: current,
            number_misscheduled: mis,
            number_ready: ready,
            updated_number_scheduled: Some(updated),
            number_available: Some(available),
            number_unavailable: Some(desired - available),
            observed_generation: ds.metadata.generation,
            collision_count,
            conditions: ds.status.as_ref().and_then(|s| s.conditions.clone()),
        };
        if ds.status.as_ref() == Some(&status) {
            return Ok(());
        }
        let mut new = ds.clone();
        new.status = Some(status);
        let api: Api<DaemonSet> = Api::namespaced(
            self.client.clone(),
            ds.metadata.namespace.as_deref().unwrap_or(""),
        );
        api.replace_status(
            ds.metadata.name.as_deref().unwrap_or(""),
            &PostParams::default(),
            &new,
        )
        .await?;
        // Availability changes with time: look again once minReadySeconds passed.
        if min_ready > 0 && available < ready {
            self.queue
                .add_after(key_of(ds), std::time::Duration::from_secs(min_ready as u64));
        }
        Ok(())
    }
}
