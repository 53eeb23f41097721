//! pod-garbage-collector-controller (upstream `pkg/controller/podgc/gc_controller.go`): every
//! 20 s deletes terminated pods beyond `--terminated-pod-gc-threshold` (oldest first), terminating
//! pods on not-ready out-of-service nodes, pods bound to nodes that have stayed absent for a
//! 40 s quarantine, and terminating pods that were never scheduled. Pods not yet terminal are
//! marked Failed before the forced deletion.

use crate::ControllerContext;
use crate::garbagecollector::operations::is_not_found;
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{Node, Pod, PodCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::Client;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

const GC_CHECK_PERIOD: Duration = Duration::from_secs(20);
const QUARANTINE: Duration = Duration::from_secs(40);
const OUT_OF_SERVICE_TAINT: &str = "node.kubernetes.io/out-of-service";

pub fn start(ctx: &ControllerContext) -> BoxFuture<'static, anyhow::Result<()>> {
    let pods = ctx.informers.informer::<Pod>();
    let nodes = ctx.informers.informer::<Node>();
    let client = ctx.client.clone();
    let threshold = ctx.config.terminated_pod_gc_threshold;
    let shutdown = ctx.shutdown.clone();
    Box::pin(async move {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = async { pods.wait_synced().await; nodes.wait_synced().await } => {}
        }
        let mut gc = PodGc {
            client,
            threshold,
            quarantine: HashMap::new(),
        };
        loop {
            let p: Vec<Arc<Pod>> = pods.list();
            let n: Vec<Arc<Node>> = nodes.list();
            gc.gc(&p, &n).await;
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = tokio::time::sleep(GC_CHECK_PERIOD) => {}
            }
        }
    })
}

fn terminated(p: &Pod) -> bool {
    !matches!(
        p.status.as_ref().and_then(|s| s.phase.as_deref()),
        None | Some("Pending" | "Running" | "Unknown")
    )
}

fn evicted(p: &Pod) -> bool {
    p.status.as_ref().is_some_and(|s| {
        s.phase.as_deref() == Some("Failed") && s.reason.as_deref() == Some("Evicted")
    })
}

fn node_ready(n: &Node) -> bool {
    n.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True")
}

/// Evicted pods first, then oldest, then by name (upstream `byEvictionAndCreationTimestamp`).
fn sort_for_deletion(pods: &mut [Arc<Pod>]) {
    pods.sort_by(|a, b| {
        evicted(b)
            .cmp(&evicted(a))
            .then_with(|| {
                let t = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
                t(a).cmp(&t(b))
            })
            .then_with(|| a.metadata.name.cmp(&b.metadata.name))
    });
}

struct PodGc {
    client: Client,
    threshold: i64,
    /// Missing node name -> when it was first seen missing.
    quarantine: HashMap<String, Instant>,
}

impl PodGc {
    async fn gc(&mut self, pods: &[Arc<Pod>], nodes: &[Arc<Node>]) {
        if self.threshold > 0 {
            let mut done: Vec<Arc<Pod>> = pods.iter().filter(|p| terminated(p)).cloned().collect();
            let excess = done.len() as i64 - self.threshold;
            if excess > 0 {
                tracing::info!(count = excess, "garbage collecting terminated pods");
                sort_for_deletion(&mut done);
                for p in done.iter().take(excess as usize) {
                    self.delete(p, None).await;
                }
            }
        }
        let by_name: HashMap<&str, &Arc<Node>> = nodes
            .iter()
            .map(|n| (n.metadata.name.as_deref().unwrap_or_default(), n))
            .collect();
        let mut out_of_service: Vec<Arc<Pod>> = pods
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_some())
            .filter(|p| {
                let node = p
                    .spec
                    .as_ref()
                    .and_then(|s| s.node_name.as_deref())
                    .unwrap_or("");
                by_name.get(node).is_some_and(|n| {
                    !node_ready(n)
                        && n.spec
                            .as_ref()
                            .and_then(|s| s.taints.as_ref())
                            .is_some_and(|t| t.iter().any(|t| t.key == OUT_OF_SERVICE_TAINT))
                })
            })
            .cloned()
            .collect();
        sort_for_deletion(&mut out_of_service);
        for p in &out_of_service {
            self.delete(p, None).await;
        }
        // Orphaned pods: bound to nodes missing for a whole quarantine, confirmed by a GET.
        let now = Instant::now();
        let missing: HashSet<String> = pods
            .iter()
            .filter_map(|p| p.spec.as_ref().and_then(|s| s.node_name.clone()))
            .filter(|n| !n.is_empty() && !by_name.contains_key(n.as_str()))
            .collect();
        self.quarantine.retain(|n, _| missing.contains(n));
        let mut deleted_nodes = HashSet::new();
        for n in &missing {
            let since = *self.quarantine.entry(n.clone()).or_insert(now);
            if now.duration_since(since) < QUARANTINE {
                continue;
            }
            let api: Api<Node> = Api::all(self.client.clone());
            match api.get_opt(n).await {
                Ok(None) => {
                    deleted_nodes.insert(n.clone());
                }
                Ok(Some(_)) => {}
                Err(e) => tracing::warn!(node = %n, error = %e, "error while getting node"),
            }
        }
        for p in pods {
            let node = p
                .spec
                .as_ref()
                .and_then(|s| s.node_name.as_deref())
                .unwrap_or("");
            if deleted_nodes.contains(node) {
                let cond = PodCondition {
                    type_: "DisruptionTarget".into(),
                    status: "True".into(),
                    reason: Some("DeletionByPodGC".into()),
                    message: Some("PodGC: node no longer exists".into()),
                    last_transition_time: Some(Time(jiff::Timestamp::now())),
                    ..Default::default()
                };
                self.delete(p, Some(cond)).await;
            }
        }
        // Terminating pods that were never scheduled.
        for p in pods {
            let unscheduled = p
                .spec
                .as_ref()
                .and_then(|s| s.node_name.as_deref())
                .unwrap_or("")
                .is_empty();
            if p.metadata.deletion_timestamp.is_some() && unscheduled {
                self.delete(p, None).await;
            }
        }
    }

    /// Marks a non-terminal pod Failed (with `condition`), then deletes it with no grace period.
    async fn delete(&self, pod: &Pod, condition: Option<PodCondition>) {
        let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
        let name = pod.metadata.name.as_deref().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        tracing::info!(pod = %format!("{ns}/{name}"), "PodGC is force deleting Pod");
        if !terminated(pod) {
            let mut conditions = pod
                .status
                .as_ref()
                .and_then(|s| s.conditions.clone())
                .unwrap_or_default();
            if let Some(c) = condition {
                conditions.retain(|x| x.type_ != c.type_);
                conditions.push(c);
            }
            let patch = json!({
                "metadata": {"uid": pod.metadata.uid},
                "status": {"phase": "Failed", "conditions": conditions},
            });
            if let Err(e) = api
                .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                if !is_not_found(&e) {
                    tracing::warn!(pod = %format!("{ns}/{name}"), error = %e, "failed to mark pod Failed");
                }
                return;
            }
        }
        let dp = DeleteParams {
            grace_period_seconds: Some(0),
            ..Default::default()
        };
        if let Err(e) = api.delete(name, &dp).await
            && !is_not_found(&e)
        {
            tracing::warn!(pod = %format!("{ns}/{name}"), error = %e, "failed to delete pod");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, created: i64, phase: &str, reason: Option<&str>) -> Arc<Pod> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name, "creationTimestamp": jiff::Timestamp::from_second(created).unwrap().to_string()},
                "status": {"phase": phase, "reason": reason},
            }))
            .unwrap(),
        )
    }

    #[test]
    fn evicted_then_oldest_first() {
        let mut v = vec![
            pod("young", 300, "Succeeded", None),
            pod("old", 100, "Failed", None),
            pod("evicted", 500, "Failed", Some("Evicted")),
            pod("also-old", 100, "Succeeded", None),
        ];
        sort_for_deletion(&mut v);
        let names: Vec<&str> = v
            .iter()
            .map(|p| p.metadata.name.as_deref().unwrap())
            .collect();
        assert_eq!(names, ["evicted", "also-old", "old", "young"]);
        assert!(terminated(&v[0]) && !terminated(&pod("r", 1, "Running", None)));
    }
}
