//! DaemonSet rolling update (mirrors upstream `pkg/controller/daemon/update.go` `rollingUpdate`):
//! with maxSurge 0, old pods are deleted while at most maxUnavailable nodes lack an available
//! pod (unavailable old pods go first); with maxSurge > 0, a new pod is started next to the old
//! one on at most maxSurge nodes and the old pod is deleted once the new one is available.

use super::{DaemonSetController, NodeState, pod_hash};
use crate::podutil::is_pod_available;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::sync::Arc;

/// Resolves an int-or-percent against `total`, rounding percentages up.
pub fn scaled(v: Option<&IntOrString>, total: i32, default: i32) -> i32 {
    match v {
        None => default,
        Some(IntOrString::Int(i)) => *i,
        Some(IntOrString::String(s)) => {
            match s.strip_suffix('%').and_then(|p| p.parse::<i64>().ok()) {
                Some(p) => ((p * i64::from(total) + 99) / 100) as i32,
                None => default,
            }
        }
    }
}

fn rolling(ds: &DaemonSet) -> Option<&k8s_openapi::api::apps::v1::RollingUpdateDaemonSet> {
    ds.spec.update_strategy.as_ref()?.rolling_update.as_ref()
}

pub fn max_surge(ds: &DaemonSet, desired: i32) -> i32 {
    scaled(rolling(ds).and_then(|r| r.max_surge.as_ref()), desired, 0).max(0)
}

pub fn max_unavailable(ds: &DaemonSet, desired: i32) -> i32 {
    let mu = scaled(
        rolling(ds).and_then(|r| r.max_unavailable.as_ref()),
        desired,
        1,
    )
    .max(0);
    if mu == 0 && max_surge(ds, desired) == 0 {
        1
    } else {
        mu
    }
}

pub(super) async fn rolling_update(
    c: &DaemonSetController,
    ds: &DaemonSet,
    key: &str,
    hash: &str,
    states: &[NodeState],
) -> anyhow::Result<()> {
    let desired = states.iter().filter(|s| s.should_run).count() as i32;
    let surge = max_surge(ds, desired);
    let max_unavail = max_unavailable(ds, desired);
    let min_ready = ds.spec.min_ready_seconds.unwrap_or(0);
    let now = jiff::Timestamp::now();
    let avail = |p: &Arc<Pod>| is_pod_available(p, min_ready, now);
    let mut delete: Vec<Arc<Pod>> = Vec::new();
    let mut create: Vec<String> = Vec::new();
    let mut candidates: Vec<Arc<Pod>> = Vec::new();
    let mut surge_candidates: Vec<String> = Vec::new();
    let mut unavailable = 0;
    let mut surging = 0;
    for st in states.iter().filter(|s| s.should_run) {
        let live: Vec<&Arc<Pod>> = st
            .pods
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .collect();
        let new: Vec<&&Arc<Pod>> = live.iter().filter(|p| pod_hash(p) == Some(hash)).collect();
        let old: Vec<&&Arc<Pod>> = live.iter().filter(|p| pod_hash(p) != Some(hash)).collect();
        if new.len() > 1 || old.len() > 1 {
            continue;
        }
        let (new, old) = (
            new.first().map(|p| (**p).clone()),
            old.first().map(|p| (**p).clone()),
        );
        if surge == 0 {
            match (old, new) {
                (None, new) => {
                    if new.as_ref().is_none_or(|p| !avail(p)) {
                        unavailable += 1;
                    }
                }
                (Some(o), _) if !avail(&o) => {
                    unavailable += 1;
                    delete.push(o);
                }
                (Some(o), _) => candidates.push(o),
            }
        } else {
            match (old, new) {
                (None, new) => {
                    if new.as_ref().is_none_or(|p| !avail(p)) {
                        unavailable += 1;
                    }
                }
                (Some(o), None) => {
                    if !avail(&o) {
                        // Nothing to protect: replace at once.
                        create.push(st.node.clone());
                    } else {
                        surge_candidates.push(st.node.clone());
                    }
                }
                (Some(o), Some(n)) => {
                    if avail(&n) {
                        delete.push(o);
                    } else {
                        surging += 1;
                    }
                }
            }
        }
    }
    if surge == 0 {
        let room = (max_unavail - unavailable).max(0) as usize;
        delete.extend(candidates.into_iter().take(room));
    } else {
        let room = (surge - surging).max(0) as usize;
        create.extend(surge_candidates.into_iter().take(room));
    }
    c.sync_nodes(ds, key, hash, &create, &delete).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int_or_percent() {
        assert_eq!(scaled(Some(&IntOrString::String("25%".into())), 10, 0), 3);
        assert_eq!(scaled(Some(&IntOrString::Int(2)), 10, 0), 2);
        assert_eq!(scaled(None, 10, 1), 1);
    }
}
