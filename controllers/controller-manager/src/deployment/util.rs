//! Deployment helpers (mirrors upstream pkg/controller/deployment/util/deployment_util.go):
//! annotations and revisions, maxSurge/maxUnavailable fenceposts, finding the new and old
//! ReplicaSets, replica arithmetic, proportions and the deployment conditions.

use crate::controller_utils::compute_hash;
use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::cmp::Ordering;
use std::collections::BTreeMap;

pub const REVISION: &str = "deployment.kubernetes.io/revision";
pub const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
pub const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
pub const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
pub const ROLLBACK_TO: &str = "deprecated.deployment.rollback.to";
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";
pub const POD_TEMPLATE_HASH: &str = "pod-template-hash";
/// Upstream `maxRevHistoryLengthInChars`.
pub const MAX_REV_HISTORY_CHARS: usize = 2000;

pub const PROGRESSING: &str = "Progressing";
pub const AVAILABLE: &str = "Available";
pub const REPLICA_FAILURE: &str = "ReplicaFailure";

pub fn replicas(d: &Deployment) -> i32 {
    d.spec.replicas.unwrap_or(1)
}

pub fn rs_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.replicas.unwrap_or(1)
}

pub fn rs_available(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.available_replicas)
        .unwrap_or(0)
}

pub fn is_recreate(d: &Deployment) -> bool {
    d.spec.strategy.as_ref().and_then(|s| s.type_.as_deref()) == Some("Recreate")
}

/// `progressDeadlineSeconds` is set and not "infinite" (MaxInt32).
pub fn progress_deadline(d: &Deployment) -> Option<i32> {
    d.spec.progress_deadline_seconds.filter(|s| *s != i32::MAX)
}

/// Now, at the one-second precision the API stores.
pub fn now() -> Time {
    Time(Timestamp::from_second(Timestamp::now().as_second()).unwrap_or_else(|_| Timestamp::now()))
}

/// `int` or `"N%"` of `total`, rounded up or down (upstream `GetScaledValueFromIntOrPercent`).
pub fn scaled_value(v: &IntOrString, total: i32, round_up: bool) -> Result<i32, String> {
    match v {
        IntOrString::Int(i) => Ok(*i),
        IntOrString::String(s) => {
            let p: i64 = s
                .strip_suffix('%')
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| format!("invalid value for IntOrString: invalid value {s:?}"))?;
            let x = p * i64::from(total);
            let v = if round_up {
                (x + 99).div_euclid(100)
            } else {
                x.div_euclid(100)
            };
            Ok(v as i32)
        }
    }
}

/// Resolved (maxSurge, maxUnavailable) for `desired` replicas (upstream `ResolveFenceposts`):
/// surge rounds up, unavailability down, and both zero means one unavailable.
pub fn fenceposts(d: &Deployment, desired: i32) -> (i32, i32) {
    let ru = d
        .spec
        .strategy
        .as_ref()
        .and_then(|s| s.rolling_update.as_ref());
    let quarter = IntOrString::String("25%".into());
    let surge = ru.and_then(|r| r.max_surge.as_ref()).unwrap_or(&quarter);
    let unavail = ru
        .and_then(|r| r.max_unavailable.as_ref())
        .unwrap_or(&quarter);
    let surge = scaled_value(surge, desired, true).unwrap_or(0);
    let mut unavail = scaled_value(unavail, desired, false).unwrap_or(0);
    if surge == 0 && unavail == 0 {
        unavail = 1;
    }
    (surge, unavail)
}

pub fn max_surge(d: &Deployment) -> i32 {
    if is_recreate(d) {
        return 0;
    }
    fenceposts(d, replicas(d)).0
}

pub fn max_unavailable(d: &Deployment) -> i32 {
    if is_recreate(d) || replicas(d) == 0 {
        return 0;
    }
    fenceposts(d, replicas(d)).1.min(replicas(d))
}

fn annotation<'a>(rs: &'a ReplicaSet, key: &str) -> Option<&'a str> {
    rs.metadata
        .annotations
        .as_ref()?
        .get(key)
        .map(String::as_str)
}

pub fn revision(rs: &ReplicaSet) -> i64 {
    annotation(rs, REVISION)
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

pub fn max_revision(rss: &[ReplicaSet]) -> i64 {
    rss.iter().map(revision).max().unwrap_or(0)
}

pub fn desired_annotation(rs: &ReplicaSet) -> Option<i32> {
    annotation(rs, DESIRED_REPLICAS).and_then(|v| v.parse().ok())
}

pub fn max_replicas_annotation(rs: &ReplicaSet) -> Option<i32> {
    annotation(rs, MAX_REPLICAS).and_then(|v| v.parse().ok())
}

/// Sets desired-replicas and max-replicas; whether anything changed.
pub fn set_replicas_annotations(rs: &mut ReplicaSet, desired: i32, max: i32) -> bool {
    let a = rs.metadata.annotations.get_or_insert_with(BTreeMap::new);
    let mut changed = false;
    for (k, v) in [(DESIRED_REPLICAS, desired), (MAX_REPLICAS, max)] {
        let v = v.to_string();
        if a.get(k) != Some(&v) {
            a.insert(k.to_string(), v);
            changed = true;
        }
    }
    changed
}

pub fn replicas_annotations_need_update(rs: &ReplicaSet, desired: i32, max: i32) -> bool {
    desired_annotation(rs) != Some(desired) || max_replicas_annotation(rs) != Some(max)
}

fn skip_copy(k: &str) -> bool {
    matches!(
        k,
        LAST_APPLIED | REVISION | REVISION_HISTORY | DESIRED_REPLICAS | MAX_REPLICAS | ROLLBACK_TO
    )
}

/// Upstream `SetNewReplicaSetAnnotations`: copies the deployment's own annotations, raises the
/// revision to `new_revision` (keeping the replaced one in revision-history, as after a
/// rollback) and, for a ReplicaSet about to be created, sets the replica annotations.
pub fn set_new_rs_annotations(
    d: &Deployment,
    rs: &mut ReplicaSet,
    new_revision: i64,
    exists: bool,
) -> bool {
    let mut changed = false;
    let a = rs.metadata.annotations.get_or_insert_with(BTreeMap::new);
    for (k, v) in d.metadata.annotations.iter().flatten() {
        if skip_copy(k) || a.get(k) == Some(v) {
            continue;
        }
        a.insert(k.clone(), v.clone());
        changed = true;
    }
    let old = a.get(REVISION).cloned();
    let old_rev: i64 = match old.as_deref() {
        None | Some("") => 0,
        Some(s) => match s.parse() {
            Ok(v) => v,
            Err(_) => return false,
        },
    };
    if old_rev < new_revision {
        a.insert(REVISION.into(), new_revision.to_string());
        changed = true;
        if let Some(old) = old.filter(|o| !o.is_empty()) {
            let history = a.get(REVISION_HISTORY).cloned().unwrap_or_default();
            if history.is_empty() {
                a.insert(REVISION_HISTORY.into(), old);
            } else {
                let mut entries: Vec<&str> = history.split(',').collect();
                let mut total = history.len() + old.len() + 1;
                let mut start = 0;
                while total > MAX_REV_HISTORY_CHARS && start < entries.len() {
                    total -= entries[start].len() + 1;
                    start += 1;
                }
                if total <= MAX_REV_HISTORY_CHARS {
                    entries = entries.split_off(start);
                    entries.push(&old);
                    a.insert(REVISION_HISTORY.into(), entries.join(","));
                }
            }
        }
    }
    if !exists {
        let desired = replicas(d);
        if set_replicas_annotations(rs, desired, desired + max_surge(d)) {
            changed = true;
        }
    }
    changed
}

/// Sets the deployment's revision annotation; whether it changed.
pub fn set_deployment_revision(d: &mut Deployment, revision: &str) -> bool {
    let a = d.metadata.annotations.get_or_insert_with(BTreeMap::new);
    if a.get(REVISION).map(String::as_str) == Some(revision) {
        return false;
    }
    a.insert(REVISION.into(), revision.into());
    true
}

fn without_hash(t: &PodTemplateSpec) -> serde_json::Value {
    let mut t = t.clone();
    if let Some(m) = t.metadata.as_mut()
        && let Some(l) = m.labels.as_mut()
    {
        l.remove(POD_TEMPLATE_HASH);
        if l.is_empty() {
            m.labels = None;
        }
    }
    serde_json::to_value(&t).unwrap_or_default()
}

/// Templates equal but for the pod-template-hash label (upstream `EqualIgnoreHash`).
pub fn equal_ignore_hash(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    without_hash(a) == without_hash(b)
}

/// The hash the new ReplicaSet of `d` gets.
pub fn template_hash(d: &Deployment) -> String {
    compute_hash(
        &d.spec.template,
        d.status.as_ref().and_then(|s| s.collision_count),
    )
}

fn created(rs: &ReplicaSet) -> Option<Timestamp> {
    rs.metadata.creation_timestamp.as_ref().map(|t| t.0)
}

/// Oldest first, names breaking ties (upstream `ReplicaSetsByCreationTimestamp`).
pub fn by_creation(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    created(a)
        .cmp(&created(b))
        .then_with(|| a.metadata.name.cmp(&b.metadata.name))
}

/// Lowest revision first (upstream `ReplicaSetsByRevision`).
pub fn by_revision(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    revision(a)
        .cmp(&revision(b))
        .then_with(|| by_creation(a, b))
}

/// Largest first; among equals newer first (`newer`) or older first.
pub fn by_size(a: &ReplicaSet, b: &ReplicaSet, newer: bool) -> Ordering {
    rs_replicas(b).cmp(&rs_replicas(a)).then_with(|| {
        if newer {
            by_creation(b, a)
        } else {
            by_creation(a, b)
        }
    })
}

/// The ReplicaSet whose template is the deployment's (oldest such), upstream
/// `FindNewReplicaSet`.
pub fn find_new(d: &Deployment, rss: &[ReplicaSet]) -> Option<ReplicaSet> {
    let mut sorted: Vec<&ReplicaSet> = rss.iter().collect();
    sorted.sort_by(|a, b| by_creation(a, b));
    sorted
        .into_iter()
        .find(|rs| {
            rs.spec
                .template
                .as_ref()
                .is_some_and(|t| equal_ignore_hash(t, &d.spec.template))
        })
        .cloned()
}

pub fn sum_replicas<'a>(rss: impl IntoIterator<Item = &'a ReplicaSet>) -> i32 {
    rss.into_iter().map(rs_replicas).sum()
}

pub fn sum_status(
    rss: &[ReplicaSet],
    f: impl Fn(&k8s_openapi::api::apps::v1::ReplicaSetStatus) -> i32,
) -> i32 {
    rss.iter().filter_map(|rs| rs.status.as_ref()).map(f).sum()
}

pub fn active(rss: &[ReplicaSet]) -> Vec<ReplicaSet> {
    rss.iter()
        .filter(|rs| rs_replicas(rs) > 0)
        .cloned()
        .collect()
}

/// Upstream `NewRSNewReplicas`: how big the new ReplicaSet may be now.
pub fn new_rs_new_replicas(d: &Deployment, all: &[ReplicaSet], new_rs: &ReplicaSet) -> i32 {
    if is_recreate(d) {
        return replicas(d);
    }
    let surge = fenceposts(d, replicas(d)).0;
    let current = sum_replicas(all);
    let max_total = replicas(d) + surge;
    if current >= max_total {
        return rs_replicas(new_rs);
    }
    let up = (max_total - current).min(replicas(d) - rs_replicas(new_rs));
    rs_replicas(new_rs) + up
}

/// The new ReplicaSet runs everything (upstream `IsSaturated`).
pub fn is_saturated(d: &Deployment, rs: Option<&ReplicaSet>) -> bool {
    let Some(rs) = rs else { return false };
    desired_annotation(rs) == Some(replicas(d))
        && rs_replicas(rs) == replicas(d)
        && rs_available(rs) == replicas(d)
}

/// How many replicas `rs` gains or loses in a proportional scale (upstream `GetProportion`).
pub fn proportion(rs: &ReplicaSet, d: &Deployment, to_add: i32, added: i32) -> i32 {
    if rs_replicas(rs) == 0 || to_add == 0 || to_add == added {
        return 0;
    }
    let fraction = if replicas(d) == 0 {
        -rs_replicas(rs)
    } else {
        let total = replicas(d) + max_surge(d);
        let annotated = max_replicas_annotation(rs)
            .unwrap_or_else(|| d.status.as_ref().and_then(|s| s.replicas).unwrap_or(0));
        if annotated == 0 {
            0
        } else {
            let size = f64::from(rs_replicas(rs)) * f64::from(total) / f64::from(annotated);
            size.round() as i32 - rs_replicas(rs)
        }
    };
    let allowed = to_add - added;
    if to_add > 0 {
        fraction.min(allowed)
    } else {
        fraction.max(allowed)
    }
}

pub fn get_condition<'a>(s: &'a DeploymentStatus, type_: &str) -> Option<&'a DeploymentCondition> {
    s.conditions
        .iter()
        .flatten()
        .find(|c| c.type_.as_deref() == Some(type_))
}

pub fn new_condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: String,
) -> DeploymentCondition {
    let t = now();
    DeploymentCondition {
        type_: Some(type_.into()),
        status: Some(status.into()),
        reason: Some(reason.into()),
        message: Some(message),
        last_update_time: Some(t.clone()),
        last_transition_time: Some(t),
    }
}

/// Upstream `SetDeploymentCondition`: no-op when status and reason are unchanged; keeps the
/// transition time when only the reason changes.
pub fn set_condition(s: &mut DeploymentStatus, mut c: DeploymentCondition) {
    let type_ = c.type_.clone().unwrap_or_default();
    if let Some(cur) = get_condition(s, &type_) {
        if cur.status == c.status && cur.reason == c.reason {
            return;
        }
        if cur.status == c.status {
            c.last_transition_time = cur.last_transition_time.clone();
        }
    }
    remove_condition(s, &type_);
    s.conditions.get_or_insert_with(Vec::new).push(c);
}

pub fn remove_condition(s: &mut DeploymentStatus, type_: &str) {
    if let Some(cs) = s.conditions.as_mut() {
        cs.retain(|c| c.type_.as_deref() != Some(type_));
        if cs.is_empty() {
            s.conditions = None;
        }
    }
}

/// Upstream `DeploymentComplete`.
pub fn is_complete(d: &Deployment, s: &DeploymentStatus) -> bool {
    let want = replicas(d);
    s.updated_replicas.unwrap_or(0) == want
        && s.replicas.unwrap_or(0) == want
        && s.available_replicas.unwrap_or(0) == want
        && s.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(0)
}

/// Upstream `DeploymentProgressing`: more updated, fewer old, more ready or more available.
pub fn is_progressing(d: &Deployment, new: &DeploymentStatus) -> bool {
    let old = d.status.clone().unwrap_or_default();
    let g = |v: Option<i32>| v.unwrap_or(0);
    let old_old = g(old.replicas) - g(old.updated_replicas);
    let new_old = g(new.replicas) - g(new.updated_replicas);
    g(new.updated_replicas) > g(old.updated_replicas)
        || new_old < old_old
        || g(new.ready_replicas) > g(old.ready_replicas)
        || g(new.available_replicas) > g(old.available_replicas)
}

/// Upstream `DeploymentTimedOut`.
pub fn is_timed_out(d: &Deployment, s: &DeploymentStatus) -> bool {
    let Some(deadline) = progress_deadline(d) else {
        return false;
    };
    let Some(c) = get_condition(s, PROGRESSING) else {
        return false;
    };
    match c.reason.as_deref() {
        Some("NewReplicaSetAvailable") => false,
        Some("ProgressDeadlineExceeded") => true,
        _ => c.last_update_time.as_ref().is_some_and(|t| {
            t.0.checked_add(jiff::SignedDuration::from_secs(i64::from(deadline)))
                .is_ok_and(|until| until < Timestamp::now())
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deploy(replicas: i32, surge: IntOrString, unavail: IntOrString) -> Deployment {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "d"},
            "spec": {"replicas": replicas, "selector": {}, "template": {},
                     "strategy": {"type": "RollingUpdate",
                                  "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavail}}},
        }))
        .unwrap()
    }

    #[test]
    fn fenceposts_round_as_upstream() {
        let pct = |s: &str| IntOrString::String(s.into());
        // 25% of 10: surge rounds up to 3, unavailable down to 2.
        assert_eq!(fenceposts(&deploy(10, pct("25%"), pct("25%")), 10), (3, 2));
        // 25% of 1: surge 1, unavailable 0.
        assert_eq!(fenceposts(&deploy(1, pct("25%"), pct("25%")), 1), (1, 0));
        // Both zero: one may be unavailable.
        let d = deploy(3, IntOrString::Int(0), pct("10%"));
        assert_eq!(fenceposts(&d, 3), (0, 1));
        assert_eq!(
            max_unavailable(&deploy(2, IntOrString::Int(0), IntOrString::Int(5))),
            2
        );
        assert!(scaled_value(&pct("x"), 3, true).is_err());
    }

    #[test]
    fn rollback_keeps_revision_history() {
        let d = deploy(3, IntOrString::Int(1), IntOrString::Int(0));
        let mut rs = ReplicaSet::default();
        assert!(set_new_rs_annotations(&d, &mut rs, 1, false));
        assert_eq!(revision(&rs), 1);
        assert_eq!(desired_annotation(&rs), Some(3));
        assert_eq!(max_replicas_annotation(&rs), Some(4));
        assert!(!set_new_rs_annotations(&d, &mut rs, 1, true));
        assert!(set_new_rs_annotations(&d, &mut rs, 3, true));
        assert!(set_new_rs_annotations(&d, &mut rs, 5, true));
        assert_eq!(revision(&rs), 5);
        let a = rs.metadata.annotations.unwrap();
        assert_eq!(a.get(REVISION_HISTORY).map(String::as_str), Some("1,3"));
    }

    #[test]
    fn proportions_follow_max_replicas_annotation() {
        let d = deploy(20, IntOrString::Int(0), IntOrString::Int(1));
        let mut rs = ReplicaSet::default();
        rs.spec.replicas = Some(5);
        set_replicas_annotations(&mut rs, 10, 10);
        // Deployment doubled from 10 to 20: a 5-replica set gets 5 more.
        assert_eq!(proportion(&rs, &d, 10, 0), 5);
        assert_eq!(proportion(&rs, &d, 10, 8), 2);
    }
}
