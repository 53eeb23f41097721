//! Pod state helpers and the deletion ranking used when scaling down (mirrors upstream
//! pkg/controller/controller_utils.go `IsPodActive`, `FilterActivePods`, `ActivePodsWithRanks`
//! and pkg/api/v1/pod `IsPodReady` / `IsPodAvailable`).

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Pod, PodCondition};
use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;

/// Upstream `core.PodDeletionCost` annotation.
pub const POD_DELETION_COST: &str = "controller.kubernetes.io/pod-deletion-cost";

fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

fn is_terminal(pod: &Pod) -> bool {
    matches!(phase(pod), "Succeeded" | "Failed")
}

/// Neither terminal nor being deleted.
pub fn is_pod_active(pod: &Pod) -> bool {
    !is_terminal(pod) && pod.metadata.deletion_timestamp.is_none()
}

/// Being deleted but not yet terminal (counted as `terminatingReplicas`).
pub fn is_pod_terminating(pod: &Pod) -> bool {
    !is_terminal(pod) && pod.metadata.deletion_timestamp.is_some()
}

fn ready_condition(pod: &Pod) -> Option<&PodCondition> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
}

pub fn is_pod_ready(pod: &Pod) -> bool {
    ready_condition(pod).is_some_and(|c| c.status == "True")
}

/// When the pod last became ready, if it is ready.
pub fn ready_since(pod: &Pod) -> Option<Timestamp> {
    let c = ready_condition(pod).filter(|c| c.status == "True")?;
    c.last_transition_time.as_ref().map(|t| t.0)
}

/// Ready for at least `min_ready_seconds` (upstream `IsPodAvailable`).
pub fn is_pod_available(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> bool {
    if !is_pod_ready(pod) {
        return false;
    }
    if min_ready_seconds <= 0 {
        return true;
    }
    match ready_since(pod) {
        Some(t) => t
            .checked_add(jiff::SignedDuration::from_secs(i64::from(
                min_ready_seconds,
            )))
            .is_ok_and(|until| until < now),
        None => false,
    }
}

fn phase_ordinal(pod: &Pod) -> u8 {
    match phase(pod) {
        "Unknown" => 1,
        "Running" => 2,
        _ => 0,
    }
}

fn deletion_cost(pod: &Pod) -> i64 {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(POD_DELETION_COST))
        .and_then(|v| v.parse::<i32>().ok())
        .map(i64::from)
        .unwrap_or(0)
}

fn max_restarts(pod: &Pod) -> i32 {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .map(|cs| cs.iter().map(|c| c.restart_count).max().unwrap_or(0))
        .unwrap_or(0)
}

fn node(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or("")
}

/// Orders pods so the ones to delete first come first (upstream `ActivePodsWithRanks.Less`):
/// unscheduled before scheduled, pending before unknown before running, not ready before
/// ready, lower deletion cost first, more co-located siblings first, more recently ready
/// first, more restarts first, newer first.
pub fn deletion_order(a: &Pod, b: &Pod, rank_a: i32, rank_b: i32) -> Ordering {
    let assigned = |p: &Pod| !node(p).is_empty();
    assigned(a)
        .cmp(&assigned(b))
        .then_with(|| phase_ordinal(a).cmp(&phase_ordinal(b)))
        .then_with(|| is_pod_ready(a).cmp(&is_pod_ready(b)))
        .then_with(|| deletion_cost(a).cmp(&deletion_cost(b)))
        .then_with(|| rank_b.cmp(&rank_a))
        .then_with(|| match (ready_since(a), ready_since(b)) {
            (Some(x), Some(y)) => y.cmp(&x),
            _ => Ordering::Equal,
        })
        .then_with(|| max_restarts(b).cmp(&max_restarts(a)))
        .then_with(|| {
            let created = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
            created(b).cmp(&created(a))
        })
}

/// The `n` pods of `pods` to delete first; `related` are the active pods of the owner and its
/// siblings (same controller), used to prefer deleting from crowded nodes.
pub fn pods_to_delete(pods: &[Arc<Pod>], related: &[Arc<Pod>], n: usize) -> Vec<Arc<Pod>> {
    let mut on_node: HashMap<&str, i32> = HashMap::new();
    for p in related.iter().filter(|p| is_pod_active(p)) {
        *on_node.entry(node(p)).or_default() += 1;
    }
    let mut ranked: Vec<(i32, Arc<Pod>)> = pods
        .iter()
        .map(|p| (on_node.get(node(p)).copied().unwrap_or(0), p.clone()))
        .collect();
    if n < ranked.len() {
        ranked.sort_by(|(ra, a), (rb, b)| deletion_order(a, b, *ra, *rb));
    }
    ranked.into_iter().take(n).map(|(_, p)| p).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodSpec, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn pod(name: &str, node: &str, phase: &str, ready: bool) -> Arc<Pod> {
        let mut p = Pod::default();
        p.metadata.name = Some(name.into());
        p.spec = Some(PodSpec {
            node_name: (!node.is_empty()).then(|| node.to_string()),
            ..Default::default()
        });
        p.status = Some(PodStatus {
            phase: Some(phase.into()),
            conditions: Some(vec![PodCondition {
                type_: "Ready".into(),
                status: if ready { "True" } else { "False" }.into(),
                last_transition_time: Some(Time(Timestamp::now())),
                ..Default::default()
            }]),
            ..Default::default()
        });
        Arc::new(p)
    }

    #[test]
    fn unscheduled_pending_and_unready_pods_go_first() {
        let pods = vec![
            pod("running-ready", "n1", "Running", true),
            pod("running-unready", "n1", "Running", false),
            pod("pending", "n1", "Pending", false),
            pod("unscheduled", "", "Pending", false),
        ];
        let names: Vec<String> = pods_to_delete(&pods, &pods, 3)
            .iter()
            .map(|p| p.metadata.name.clone().unwrap())
            .collect();
        assert_eq!(names, ["unscheduled", "pending", "running-unready"]);
    }

    #[test]
    fn availability_waits_for_min_ready_seconds() {
        let p = pod("a", "n", "Running", true);
        let now = Timestamp::now();
        assert!(is_pod_available(&p, 0, now));
        assert!(!is_pod_available(&p, 60, now));
        let later = now
            .checked_add(jiff::SignedDuration::from_secs(61))
            .unwrap();
        assert!(is_pod_available(&p, 60, later));
        assert!(!is_pod_available(&pod("b", "n", "Running", false), 0, now));
    }
}
