//! Node taints the node controllers manage and toleration matching (mirrors upstream
//! `pkg/controller/nodelifecycle` taint templates, `pkg/util/taints` and
//! `k8s.io/api/core/v1/toleration.go` `ToleratesTaint`).

use crate::endpoints::support::is_conflict;
use k8s_openapi::api::core::v1::{Node, Taint, Toleration};
use kube::Api;
use kube::api::PostParams;

pub const NOT_READY: &str = "node.kubernetes.io/not-ready";
pub const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
pub const UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";
pub const MEMORY_PRESSURE: &str = "node.kubernetes.io/memory-pressure";
pub const DISK_PRESSURE: &str = "node.kubernetes.io/disk-pressure";
pub const PID_PRESSURE: &str = "node.kubernetes.io/pid-pressure";
pub const NETWORK_UNAVAILABLE: &str = "node.kubernetes.io/network-unavailable";

/// The NoSchedule taint keys the controller owns.
pub const NO_SCHEDULE_KEYS: &[&str] = &[
    NOT_READY,
    UNREACHABLE,
    UNSCHEDULABLE,
    MEMORY_PRESSURE,
    DISK_PRESSURE,
    PID_PRESSURE,
    NETWORK_UNAVAILABLE,
];

/// The NoSchedule taints a node's conditions (and `spec.unschedulable`) call for.
pub fn no_schedule_taints_for(node: &Node) -> Vec<&'static str> {
    let mut out = Vec::new();
    for c in node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
    {
        let key = match (c.type_.as_str(), c.status.as_str()) {
            ("Ready", "False") => NOT_READY,
            ("Ready", "Unknown") => UNREACHABLE,
            ("MemoryPressure", "True") => MEMORY_PRESSURE,
            ("DiskPressure", "True") => DISK_PRESSURE,
            ("PIDPressure", "True") => PID_PRESSURE,
            ("NetworkUnavailable", "True") => NETWORK_UNAVAILABLE,
            _ => continue,
        };
        if !out.contains(&key) {
            out.push(key);
        }
    }
    if node.spec.as_ref().and_then(|s| s.unschedulable) == Some(true) {
        out.push(UNSCHEDULABLE);
    }
    out
}

/// Reads the node, edits its taints and writes it back if they changed (retrying conflicts).
pub async fn update_taints<F>(client: &kube::Client, name: &str, edit: F) -> anyhow::Result<()>
where
    F: Fn(&mut Vec<Taint>),
{
    let api: Api<Node> = Api::all(client.clone());
    for _ in 0..5 {
        let Some(mut node) = api.get_opt(name).await? else {
            return Ok(());
        };
        let spec = node.spec.get_or_insert_with(Default::default);
        let before = spec.taints.clone().unwrap_or_default();
        let mut taints = before.clone();
        edit(&mut taints);
        if taints == before {
            return Ok(());
        }
        spec.taints = (!taints.is_empty()).then_some(taints);
        match api.replace(name, &PostParams::default(), &node).await {
            Ok(_) => return Ok(()),
            Err(e) if is_conflict(&e) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    anyhow::bail!("too many conflicts updating the taints of node {name}")
}

/// Whether the toleration tolerates the taint.
pub fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    if let Some(e) = t.effect.as_deref()
        && !e.is_empty()
        && e != taint.effect
    {
        return false;
    }
    let key = t.key.as_deref().unwrap_or("");
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match t.operator.as_deref().unwrap_or("Equal") {
        "Exists" => true,
        "Equal" | "" => t.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or(""),
        _ => false,
    }
}

/// For NoExecute taints: `None` if some taint is not tolerated; else how long the pod may stay
/// (`Some(None)` = forever), the shortest `tolerationSeconds` of the tolerations used.
pub fn min_toleration(
    tolerations: &[Toleration],
    taints: &[&Taint],
) -> Option<Option<std::time::Duration>> {
    let mut min: Option<i64> = None;
    for taint in taints {
        let used: Vec<&Toleration> = tolerations.iter().filter(|t| tolerates(t, taint)).collect();
        if used.is_empty() {
            return None;
        }
        for t in used {
            if let Some(s) = t.toleration_seconds {
                min = Some(min.map_or(s, |m| m.min(s)));
            }
        }
    }
    Some(min.map(|s| std::time::Duration::from_secs(s.max(0) as u64)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taint(key: &str) -> Taint {
        Taint {
            key: key.into(),
            effect: "NoExecute".into(),
            ..Default::default()
        }
    }

    #[test]
    fn toleration_seconds_bound_the_stay() {
        let unreachable = taint(UNREACHABLE);
        let tol = |key: Option<&str>, secs: Option<i64>| Toleration {
            key: key.map(String::from),
            operator: Some("Exists".into()),
            effect: Some("NoExecute".into()),
            toleration_seconds: secs,
            value: None,
        };
        assert_eq!(min_toleration(&[], &[&unreachable]), None);
        assert_eq!(
            min_toleration(&[tol(Some(UNREACHABLE), Some(3))], &[&unreachable]),
            Some(Some(std::time::Duration::from_secs(3)))
        );
        assert_eq!(
            min_toleration(&[tol(None, None)], &[&unreachable]),
            Some(None)
        );
        assert_eq!(
            min_toleration(&[tol(Some(NOT_READY), None)], &[&unreachable]),
            None
        );
    }
}
