//! Creating and deleting a Job's pods (mirrors upstream `manageJob`, `deleteJobPods`,
//! `deleteActivePods` and pod creation in `pkg/controller/job/job_controller.go`): parallelism
//! and remaining completions, per-index creation for Indexed Jobs, the pod recreation backoff,
//! slow-start batches and the tracking finalizer on every new pod.

use super::indexes::{
    COMPLETION_INDEX_ANNOTATION, INDEX_FAILURE_COUNT_ANNOTATION, Indexes, completion_index,
    index_failure_count,
};
use super::policy::{Action, BackoffRecord, match_pod_failure_policy};
use super::sync::{SyncCtx, is_indexed, is_pod_failed, is_suspended, only_replace_failed, spec};
use super::{JOB_TRACKING_FINALIZER, JobController};
use crate::podutil::{controller_owner_ref, deletion_cost_key, is_pod_ready, pod_from_template};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, ObjectFieldSelector, Pod};
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// Most pods created or deleted per sync (upstream `MaxPodCreateDeletePerSync`).
const MAX_POD_CREATE_DELETE_PER_SYNC: i32 = 500;

/// Per-index failure counts for backoffLimitPerIndex (from the pods' annotations plus their own
/// counted failure) and the indexes failed by a FailIndex rule.
fn index_failures(job: &Job, pods: &[Arc<Pod>]) -> (HashMap<i32, i32>, BTreeSet<i32>) {
    let policy = spec(job).pod_failure_policy;
    let mut counts: HashMap<i32, i32> = HashMap::new();
    let mut fail_index = BTreeSet::new();
    for p in pods {
        let Some(i) = completion_index(p) else {
            continue;
        };
        let mut n = index_failure_count(p);
        if is_pod_failed(p, job) {
            match match_pod_failure_policy(policy.as_ref(), p) {
                Some(Action::Ignore) => {}
                Some(Action::FailIndex) => {
                    fail_index.insert(i);
                    n += 1;
                }
                _ => n += 1,
            }
        }
        let e = counts.entry(i).or_insert(0);
        *e = (*e).max(n);
    }
    (counts, fail_index)
}

/// The failed indexes of a Job with backoffLimitPerIndex (upstream `isIndexFailed`): an index
/// fails when a failed pod of it matched a FailIndex rule, or counted a failure that takes the
/// index over the limit; ignored failures never fail an index.
pub(super) fn failed_indexes(job: &Job, pods: &[Arc<Pod>], limit: i32, prev: &Indexes) -> Indexes {
    let n = spec(job).completions.unwrap_or(0);
    let policy = spec(job).pod_failure_policy;
    let mut out = prev.clone();
    for p in pods.iter().filter(|p| is_pod_failed(p, job)) {
        let Some(i) = completion_index(p).filter(|i| *i < n) else {
            continue;
        };
        let failed = match match_pod_failure_policy(policy.as_ref(), p) {
            Some(Action::FailIndex) => true,
            Some(Action::Ignore) => false,
            _ => index_failure_count(p) + 1 > limit,
        };
        if failed {
            out.0.insert(i);
        }
    }
    out
}

/// Reconciles the number of active pods; returns the new active count (and the error, if
/// some operation failed).
pub(super) async fn manage_job(
    c: &Arc<JobController>,
    cx: &SyncCtx,
    active_pods: &[Arc<Pod>],
    backoff: &BackoffRecord,
) -> Result<i32, (i32, anyhow::Error)> {
    let job = &cx.job;
    let s = spec(job);
    let mut active = active_pods.len() as i32;
    if is_suspended(job) {
        let (_, deleted, err) = delete_pods(c, cx, active_pods, true).await;
        return finish(active - deleted, err);
    }
    let parallelism = s.parallelism.unwrap_or(1).max(0);
    let want_active = match s.completions {
        None if cx.succeeded > 0 => active,
        None => parallelism,
        Some(n) => (n - cx.succeeded).clamp(0, parallelism),
    };
    let indexed = is_indexed(job);
    let completions = s.completions.unwrap_or(0);
    // Pods to remove: for Indexed Jobs first those with a bad, finished or duplicate index.
    let mut to_delete: Vec<Arc<Pod>> = Vec::new();
    let mut keep: Vec<Arc<Pod>> = active_pods.to_vec();
    if indexed {
        keep.sort_by_key(|p| std::cmp::Reverse(deletion_cost_key(p)));
        let mut seen = BTreeSet::new();
        let mut rest = Vec::new();
        let failed = cx.failed_indexes.clone().unwrap_or_default();
        for p in keep {
            match completion_index(p.as_ref()) {
                Some(i)
                    if i < completions
                        && !cx.succeeded_indexes.has(i)
                        && !failed.has(i)
                        && seen.insert(i) =>
                {
                    rest.push(p)
                }
                _ => to_delete.push(p),
            }
        }
        keep = rest;
    }
    let excess = (keep.len() as i32 - want_active).max(0);
    if excess > 0 {
        keep.sort_by_key(|p| deletion_cost_key(p));
        to_delete.extend(keep.iter().take(excess as usize).cloned());
    }
    to_delete.truncate(MAX_POD_CREATE_DELETE_PER_SYNC as usize);
    if !to_delete.is_empty() {
        c.expectations.expect(&cx.key, 0, to_delete.len() as i64);
        let (_, deleted, err) = delete_pods(c, cx, &to_delete, true).await;
        return finish(active - deleted, err);
    }
    if active >= want_active {
        return Ok(active);
    }
    let remaining = backoff.remaining(jiff::Timestamp::now());
    if !remaining.is_zero() {
        c.queue.add_after(cx.key.clone(), remaining);
        return Ok(active);
    }
    let mut diff = want_active - active;
    if only_replace_failed(job) {
        diff -= cx.terminating;
    }
    let diff = diff.min(MAX_POD_CREATE_DELETE_PER_SYNC);
    if diff <= 0 {
        return Ok(active);
    }
    let indexes: Vec<Option<i32>> = if indexed {
        let failed = cx.failed_indexes.clone().unwrap_or_default();
        let busy: BTreeSet<i32> = active_pods
            .iter()
            .filter_map(|p| completion_index(p))
            .collect();
        (0..completions)
            .filter(|i| !cx.succeeded_indexes.has(*i) && !failed.has(*i) && !busy.contains(i))
            .take(diff as usize)
            .map(Some)
            .collect()
    } else {
        vec![None; diff as usize]
    };
    let counts = index_failures(job, &cx.pods).0;
    c.expectations.expect(&cx.key, indexes.len() as i64, 0);
    active += indexes.len() as i32;
    // Slow start: batches of 1, 2, 4... stop at the first batch with a failure.
    let mut batch = 1usize;
    let mut pos = 0;
    while pos < indexes.len() {
        let end = (pos + batch).min(indexes.len());
        let results = futures::future::join_all(
            indexes[pos..end]
                .iter()
                .map(|i| create_pod(c, job, *i, i.and_then(|i| counts.get(&i).copied()))),
        )
        .await;
        let mut err = None;
        for r in results {
            if let Err(e) = r {
                c.expectations.creation_observed(&cx.key);
                active -= 1;
                err = Some(e);
            }
        }
        if let Some(e) = err {
            for _ in end..indexes.len() {
                c.expectations.creation_observed(&cx.key);
                active -= 1;
            }
            return Err((active, e));
        }
        pos = end;
        batch *= 2;
    }
    Ok(active)
}

fn finish(active: i32, err: Option<anyhow::Error>) -> Result<i32, (i32, anyhow::Error)> {
    match err {
        None => Ok(active),
        Some(e) => Err((active, e)),
    }
}

async fn create_pod(
    c: &JobController,
    job: &Job,
    index: Option<i32>,
    failure_count: Option<i32>,
) -> anyhow::Result<()> {
    let ns = job.metadata.namespace.clone().unwrap_or_default();
    let name = job.metadata.name.clone().unwrap_or_default();
    let s = spec(job);
    let prefix = match index {
        Some(i) => format!("{name}-{i}"),
        None => name.clone(),
    };
    let mut pod = pod_from_template(&s.template, &ns, &prefix, controller_owner_ref(job));
    pod.metadata
        .finalizers
        .get_or_insert_with(Vec::new)
        .push(JOB_TRACKING_FINALIZER.into());
    if let Some(i) = index {
        pod.metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert(COMPLETION_INDEX_ANNOTATION.into(), i.to_string());
        pod.metadata
            .labels
            .get_or_insert_with(Default::default)
            .insert(COMPLETION_INDEX_ANNOTATION.into(), i.to_string());
        if s.backoff_limit_per_index.is_some() {
            pod.metadata
                .annotations
                .get_or_insert_with(Default::default)
                .insert(
                    INDEX_FAILURE_COUNT_ANNOTATION.into(),
                    failure_count.unwrap_or(0).to_string(),
                );
        }
        if let Some(ps) = pod.spec.as_mut() {
            if ps.hostname.is_none() {
                ps.hostname = Some(format!("{name}-{i}"));
            }
            let env = EnvVar {
                name: "JOB_COMPLETION_INDEX".into(),
                value: None,
                value_from: Some(EnvVarSource {
                    field_ref: Some(ObjectFieldSelector {
                        api_version: None,
                        field_path: format!(
                            "metadata.annotations['{COMPLETION_INDEX_ANNOTATION}']"
                        ),
                    }),
                    ..Default::default()
                }),
            };
            for ctr in ps
                .containers
                .iter_mut()
                .chain(ps.init_containers.iter_mut().flatten())
            {
                let envs = ctr.env.get_or_insert_with(Vec::new);
                if !envs.iter().any(|e| e.name == env.name) {
                    envs.push(env.clone());
                }
            }
        }
    }
    let api: Api<Pod> = Api::namespaced(c.client.clone(), &ns);
    match api.create(&PostParams::default(), &pod).await {
        Ok(p) => {
            c.recorder.normal(
                job,
                "SuccessfulCreate",
                "Create",
                format!("Created pod: {}", p.metadata.name.unwrap_or_default()),
            );
            Ok(())
        }
        Err(e) => {
            c.recorder.warning(
                job,
                "FailedCreate",
                "Create",
                format!("Error creating: {e}"),
            );
            Err(e.into())
        }
    }
}

/// Deletes pods; with `remove_finalizer` (pods the Job no longer wants) their tracking finalizer
/// is removed first so they are not counted. Returns (ready deleted, deleted, error).
pub(super) async fn delete_pods(
    c: &JobController,
    cx: &SyncCtx,
    pods: &[Arc<Pod>],
    remove_finalizer: bool,
) -> (i32, i32, Option<anyhow::Error>) {
    let job = &cx.job;
    let results = futures::future::join_all(pods.iter().map(|p| async move {
        let ns = p.metadata.namespace.clone().unwrap_or_default();
        let name = p.metadata.name.clone().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(c.client.clone(), &ns);
        if remove_finalizer
            && let Some(f) = p.metadata.finalizers.as_ref()
            && f.iter().any(|x| x == JOB_TRACKING_FINALIZER)
        {
            let rest: Vec<&String> = f.iter().filter(|x| *x != JOB_TRACKING_FINALIZER).collect();
            let patch = serde_json::json!({"metadata": {"finalizers": rest}});
            if let Err(e) = api
                .patch(&name, &Default::default(), &kube::api::Patch::Merge(&patch))
                .await
                && !crate::podutil::is_not_found(&e)
            {
                return Err(anyhow::Error::from(e).context("removing completion finalizer"));
            }
        }
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => {
                c.recorder.normal(
                    job,
                    "SuccessfulDelete",
                    "Delete",
                    format!("Deleted pod: {name}"),
                );
                Ok(())
            }
            Err(e) if crate::podutil::is_not_found(&e) => Ok(()),
            Err(e) => {
                c.recorder.warning(
                    job,
                    "FailedDelete",
                    "Delete",
                    format!("Error deleting: {e}"),
                );
                Err(e.into())
            }
        }
    }))
    .await;
    let (mut ready, mut deleted, mut err) = (0, 0, None);
    for (p, r) in pods.iter().zip(results) {
        match r {
            Ok(()) => {
                deleted += 1;
                if is_pod_ready(p) {
                    ready += 1;
                }
            }
            Err(e) => {
                if remove_finalizer {
                    c.expectations.deletion_observed(&cx.key);
                }
                err = Some(e);
            }
        }
    }
    (ready, deleted, err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(index: i32, failed: bool, count: i32, code: i32) -> Arc<Pod> {
        Arc::new(
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": format!("p{index}"), "namespace": "ns", "annotations": {
                    COMPLETION_INDEX_ANNOTATION: index.to_string(),
                    INDEX_FAILURE_COUNT_ANNOTATION: count.to_string()}},
                "status": {"phase": if failed { "Failed" } else { "Running" },
                    "containerStatuses": [{"name": "main", "image": "x", "imageID": "", "ready": false,
                        "restartCount": 0, "state": {"terminated": {"exitCode": code}}}]},
            }))
            .unwrap(),
        )
    }

    #[test]
    fn failed_indexes_count_per_index_and_fail_index_rules() {
        let job: Job = serde_json::from_value(serde_json::json!({
            "spec": {"completions": 4, "completionMode": "Indexed", "backoffLimitPerIndex": 1,
                "podFailurePolicy": {"rules": [
                    {"action": "FailIndex", "onExitCodes": {"operator": "In", "values": [42]}},
                    {"action": "Ignore", "onExitCodes": {"operator": "In", "values": [7]}}]},
                "template": {}},
        }))
        .unwrap();
        let pods = vec![
            pod(0, true, 0, 1),  // first failure of index 0: within the limit
            pod(1, true, 1, 1),  // second failure of index 1: over the limit
            pod(2, true, 0, 42), // FailIndex
            pod(3, true, 5, 7),  // ignored: does not count
        ];
        let fi = failed_indexes(&job, &pods, 1, &Indexes::default());
        assert_eq!(fi.to_string(), "1-2");
        let (counts, _) = index_failures(&job, &pods);
        assert_eq!((counts[&0], counts[&1], counts[&3]), (1, 2, 5));
    }
}
