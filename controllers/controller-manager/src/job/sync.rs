//! One Job sync (mirrors upstream `syncJob` and `trackJobStatusAndRemoveFinalizers` in
//! `pkg/controller/job/job_controller.go`): count pods, decide whether the Job met its success
//! criteria or a failure target, manage pods, then count finished pods through
//! `status.uncountedTerminatedPods`, remove their tracking finalizers and set the terminal
//! condition once nothing is left to count or terminating.

use super::indexes::{Indexes, completion_index};
use super::policy::{
    Action, counts_as_failure, ensure_condition, finish_time, is_finished,
    match_pod_failure_policy, match_success_policy, new_condition, true_condition,
};
use super::{JOB_CONTROLLER_NAME, JobController, has_tracking_finalizer, manage};
use crate::podutil::{is_controlled_by, is_pod_active, is_pod_ready, is_pod_terminating, phase};
use component_base::informer::split_key;
use k8s_openapi::api::batch::v1::{Job, JobCondition, JobStatus, UncountedTerminatedPods};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

/// What one sync learned about the Job.
pub(super) struct SyncCtx {
    pub key: String,
    pub job: Job,
    pub pods: Vec<Arc<Pod>>,
    pub succeeded: i32,
    pub succeeded_indexes: Indexes,
    pub prev_succeeded_indexes: Indexes,
    pub failed_indexes: Option<Indexes>,
    pub terminating: i32,
    pub ready: i32,
    pub finished: Option<JobCondition>,
    pub expected_rm: HashSet<String>,
}

pub(super) fn spec(job: &Job) -> k8s_openapi::api::batch::v1::JobSpec {
    job.spec.clone().unwrap_or_default()
}

pub(super) fn is_indexed(job: &Job) -> bool {
    spec(job).completion_mode.as_deref() == Some("Indexed")
}

pub(super) fn is_suspended(job: &Job) -> bool {
    spec(job).suspend == Some(true)
}

/// Only Failed pods are replaced (podReplacementPolicy Failed, the default with a
/// podFailurePolicy); otherwise terminating pods are replaced too.
pub(super) fn only_replace_failed(job: &Job) -> bool {
    let s = spec(job);
    match s.pod_replacement_policy.as_deref() {
        Some(p) => p == "Failed",
        None => s.pod_failure_policy.is_some(),
    }
}

/// Failed, or (unless only Failed pods are replaced) deleted before finishing.
pub(super) fn is_pod_failed(pod: &Pod, job: &Job) -> bool {
    let ph = phase(pod);
    if ph == "Failed" {
        return true;
    }
    if only_replace_failed(job) {
        return false;
    }
    pod.metadata.deletion_timestamp.is_some() && ph != "Succeeded"
}

pub(super) fn now() -> jiff::Timestamp {
    jiff::Timestamp::now()
}

pub(super) async fn sync_job(c: &Arc<JobController>, key: &str) -> anyhow::Result<()> {
    let (ns, name) = split_key(key);
    let ns = ns.unwrap_or("");
    let Some(shared) = c.jobs.get(Some(ns), name) else {
        c.forget_job(key);
        return Ok(());
    };
    let s = spec(&shared);
    if s.managed_by
        .as_deref()
        .is_some_and(|m| m != JOB_CONTROLLER_NAME)
    {
        return Ok(());
    }
    if is_finished(&shared) {
        c.backoff.lock().expect("backoff").remove(key);
        return Ok(());
    }
    let mut job = (*shared).clone();
    if let Some(m) = s.completion_mode.as_deref()
        && m != "NonIndexed"
        && m != "Indexed"
    {
        c.recorder.warning(
            &job,
            "UnknownCompletionMode",
            "Sync",
            "Skipped Job sync because completion mode is unknown".into(),
        );
        return Ok(());
    }
    let indexed = is_indexed(&job);
    let completions = s.completions;
    let status = job.status.get_or_insert_with(JobStatus::default);
    let uncounted = status
        .uncounted_terminated_pods
        .get_or_insert_with(UncountedTerminatedPods::default)
        .clone();
    let unc_succeeded: HashSet<String> = uncounted
        .succeeded
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    let unc_failed: HashSet<String> = uncounted
        .failed
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();

    let satisfied = c.expectations.satisfied(key);
    let uid = job.metadata.uid.clone().unwrap_or_default();
    let pods: Vec<Arc<Pod>> = match s.selector.as_ref() {
        Some(sel) if job.metadata.deletion_timestamp.is_none() => {
            crate::podutil::claim_pods(&c.client, &job, sel, c.pods.list_namespace(ns), |_| true)
                .await?
        }
        _ => c
            .pods
            .list_namespace(ns)
            .into_iter()
            .filter(|p| is_controlled_by(&p.metadata, &uid))
            .collect(),
    };
    let expected_rm = c.expected_finalizer_removals(key);
    let active_pods: Vec<Arc<Pod>> = pods.iter().filter(|p| is_pod_active(p)).cloned().collect();
    let mut ready = active_pods.iter().filter(|p| is_pod_ready(p)).count() as i32;
    let mut terminating = pods.iter().filter(|p| is_pod_terminating(p)).count() as i32;
    let mut active = active_pods.len() as i32;

    // Pods that finished since the last count.
    let t = now();
    let mut new_succeeded = 0;
    let mut new_failed = 0;
    let mut finished_for_backoff = Vec::new();
    for p in &pods {
        let uid = p.metadata.uid.clone().unwrap_or_default();
        if !has_tracking_finalizer(p)
            || expected_rm.contains(&uid)
            || unc_succeeded.contains(&uid)
            || unc_failed.contains(&uid)
        {
            continue;
        }
        if phase(p) == "Succeeded" {
            new_succeeded += 1;
            finished_for_backoff.push((finish_time(p, t), true));
        } else if is_pod_failed(p, &job) {
            if counts_as_failure(&job, p) {
                new_failed += 1;
            }
            finished_for_backoff.push((finish_time(p, t), false));
        }
    }
    let status = job.status.get_or_insert_with(JobStatus::default);
    let mut succeeded = status.succeeded.unwrap_or(0) + new_succeeded + unc_succeeded.len() as i32;
    let failed = status.failed.unwrap_or(0) + new_failed + unc_failed.len() as i32;
    if status.start_time.is_none() && s.suspend != Some(true) {
        status.start_time = Some(Time(t));
    }
    let new_backoff = c.backoff_record(key).update(finished_for_backoff);

    let backoff_limit = s.backoff_limit.unwrap_or(6);
    let mut finished: Option<JobCondition> = true_condition(&job, "SuccessCriteriaMet").cloned();
    if finished.is_none() {
        if let Some(ft) = true_condition(&job, "FailureTarget") {
            finished = Some(failed_from(ft, t));
        } else if let Some(msg) = fail_job_message(&job, &pods) {
            finished = Some(new_condition("FailureTarget", "PodFailurePolicy", &msg, t));
        }
    }
    if finished.is_none() {
        if failed > backoff_limit || past_backoff_limit_on_failure(&job, &pods) {
            finished = Some(new_condition(
                "FailureTarget",
                "BackoffLimitExceeded",
                "Job has reached the specified backoff limit",
                t,
            ));
        } else if let Some(left) = deadline_left(&job, t) {
            if left.is_zero() {
                finished = Some(new_condition(
                    "FailureTarget",
                    "DeadlineExceeded",
                    "Job was active longer than specified deadline",
                    t,
                ));
            } else {
                c.queue.add_after(key.to_string(), left);
            }
        }
    }
    let mut prev_succeeded_indexes = Indexes::default();
    let mut succeeded_indexes = Indexes::default();
    let mut failed_indexes = None;
    if indexed {
        let n = completions.unwrap_or(0);
        let status = job.status.as_ref().cloned().unwrap_or_default();
        prev_succeeded_indexes =
            Indexes::parse(status.completed_indexes.as_deref().unwrap_or(""), n);
        succeeded_indexes = prev_succeeded_indexes.clone();
        for p in &pods {
            if phase(p) == "Succeeded"
                && has_tracking_finalizer(p)
                && let Some(i) = completion_index(p).filter(|i| *i < n)
            {
                succeeded_indexes.0.insert(i);
            }
        }
        succeeded = succeeded_indexes.total() as i32;
        if let Some(limit) = s.backoff_limit_per_index {
            let fi = manage::failed_indexes(&job, &pods, limit, &prev_failed(&job, n));
            if finished.is_none() {
                if s.max_failed_indexes
                    .is_some_and(|m| fi.total() > m.max(0) as usize)
                {
                    finished = Some(new_condition(
                        "FailureTarget",
                        "MaxFailedIndexesExceeded",
                        "Job has exceeded the specified maximal number of failed indexes",
                        t,
                    ));
                } else if fi.total() > 0 && fi.total() + succeeded_indexes.total() >= n as usize {
                    finished = Some(new_condition(
                        "FailureTarget",
                        "FailedIndexes",
                        "Job has failed indexes",
                        t,
                    ));
                }
            }
            failed_indexes = Some(fi);
        }
        if finished.is_none()
            && let Some(msg) =
                match_success_policy(s.success_policy.as_ref(), n, &succeeded_indexes)
        {
            finished = Some(new_condition(
                "SuccessCriteriaMet",
                "SuccessPolicy",
                &msg,
                t,
            ));
        }
    }

    let mut cx = SyncCtx {
        key: key.to_string(),
        job,
        pods,
        succeeded,
        succeeded_indexes,
        prev_succeeded_indexes,
        failed_indexes,
        terminating,
        ready,
        finished,
        expected_rm,
    };
    let mut suspend_changed = false;
    let mut manage_err = None;
    if cx.finished.is_some() {
        // The Job is done: remove what still runs, keeping finalizers so the pods are counted.
        let (deleted_ready, deleted, err) = manage::delete_pods(c, &cx, &active_pods, false).await;
        if deleted != active || !satisfied {
            cx.finished = None;
        }
        active -= deleted;
        terminating += deleted;
        ready -= deleted_ready;
        manage_err = err;
    } else {
        let mut managed = false;
        if satisfied && cx.job.metadata.deletion_timestamp.is_none() {
            match manage::manage_job(c, &cx, &active_pods, &new_backoff).await {
                Ok(a) => active = a,
                Err((a, e)) => {
                    active = a;
                    manage_err = Some(e);
                }
            }
            managed = true;
        }
        let complete = match completions {
            None => cx.succeeded > 0 && active == 0,
            Some(n) => cx.succeeded >= n && active == 0,
        };
        if complete {
            cx.finished = Some(new_condition(
                "SuccessCriteriaMet",
                "CompletionsReached",
                "Reached expected number of succeeded pods",
                t,
            ));
        } else if managed {
            let job = &mut cx.job;
            let suspended = is_suspended(job);
            let conds = job
                .status
                .get_or_insert_with(JobStatus::default)
                .conditions
                .get_or_insert_with(Vec::new);
            if suspended {
                if ensure_condition(
                    conds,
                    "Suspended",
                    "True",
                    "JobSuspended",
                    "Job suspended",
                    t,
                ) {
                    suspend_changed = true;
                    c.recorder
                        .normal(job, "Suspended", "Sync", "Job suspended".into());
                }
            } else if ensure_condition(conds, "Suspended", "False", "JobResumed", "Job resumed", t)
            {
                suspend_changed = true;
                c.recorder
                    .normal(job, "Resumed", "Sync", "Job resumed".into());
                job.status.get_or_insert_with(JobStatus::default).start_time = Some(Time(t));
            }
        }
    }
    cx.terminating = terminating;
    cx.ready = ready;
    let status = cx.job.status.get_or_insert_with(JobStatus::default);
    let needs_update = suspend_changed
        || status.active.unwrap_or(0) != active
        || status.ready != Some(ready)
        || status.terminating != Some(terminating);
    status.active = Some(active);
    status.ready = Some(ready);
    status.terminating = Some(terminating);
    super::tracking::track_and_remove_finalizers(c, cx, needs_update, new_backoff).await?;
    match manage_err {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

pub(super) fn failed_from(ft: &JobCondition, t: jiff::Timestamp) -> JobCondition {
    new_condition(
        "Failed",
        ft.reason.as_deref().unwrap_or(""),
        ft.message.as_deref().unwrap_or(""),
        t,
    )
}

fn prev_failed(job: &Job, n: i32) -> Indexes {
    let s = job
        .status
        .as_ref()
        .and_then(|s| s.failed_indexes.as_deref())
        .unwrap_or("");
    Indexes::parse(s, n)
}

/// The message of the first failed pod matching a FailJob rule.
fn fail_job_message(job: &Job, pods: &[Arc<Pod>]) -> Option<String> {
    let policy = job.spec.as_ref()?.pod_failure_policy.as_ref()?;
    pods.iter().filter(|p| is_pod_failed(p, job)).find_map(|p| {
        match match_pod_failure_policy(Some(policy), p) {
            Some(Action::FailJob(m)) => Some(m),
            _ => None,
        }
    })
}

/// For restartPolicy OnFailure: the running pods' container restarts reach backoffLimit.
fn past_backoff_limit_on_failure(job: &Job, pods: &[Arc<Pod>]) -> bool {
    let s = spec(job);
    if s.template
        .spec
        .as_ref()
        .and_then(|p| p.restart_policy.as_deref())
        != Some("OnFailure")
    {
        return false;
    }
    let restarts: i32 = pods
        .iter()
        .filter(|p| matches!(phase(p), "Running" | "Pending"))
        .filter_map(|p| p.status.as_ref())
        .flat_map(|st| {
            st.init_container_statuses
                .iter()
                .flatten()
                .chain(st.container_statuses.iter().flatten())
                .map(|c| c.restart_count)
        })
        .sum();
    let limit = s.backoff_limit.unwrap_or(6);
    if limit == 0 {
        restarts > 0
    } else {
        restarts >= limit
    }
}

/// Time left before activeDeadlineSeconds (`None` without a deadline or while suspended).
fn deadline_left(job: &Job, t: jiff::Timestamp) -> Option<Duration> {
    let secs = spec(job).active_deadline_seconds?;
    if is_suspended(job) {
        return None;
    }
    let start = job.status.as_ref()?.start_time.as_ref()?.0;
    let end = start + jiff::SignedDuration::from_secs(secs);
    Some(Duration::try_from(end.duration_since(t)).unwrap_or(Duration::ZERO))
}
