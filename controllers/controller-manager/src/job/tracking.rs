//! Counting finished pods of a Job (mirrors upstream `trackJobStatusAndRemoveFinalizers`,
//! `flushUncountedAndRemoveFinalizers` and `enactJobFinished` in
//! `pkg/controller/job/job_controller.go`): finished pods go to `status.uncountedTerminatedPods`,
//! which is written before their `batch.kubernetes.io/job-tracking` finalizer is removed; pods
//! that lost it move into the counters; the interim SuccessCriteriaMet/FailureTarget condition is
//! written first and Complete/Failed once nothing is left uncounted or terminating.

use super::indexes::completion_index;
use super::policy::{counts_as_failure, ensure_condition};
use super::sync::{SyncCtx, failed_from, is_indexed, is_pod_failed, now, spec};
use super::{JobController, has_tracking_finalizer};
use crate::podutil::phase;
use k8s_openapi::api::batch::v1::{Job, JobStatus, UncountedTerminatedPods};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use std::collections::HashSet;
use std::sync::Arc;

/// Most pods counted per sync (upstream `MaxUncountedPods`).
const MAX_UNCOUNTED_PODS: usize = 500;

/// Moves UIDs whose pods lost their finalizer from the uncounted lists into the counters.
fn clean_uncounted(status: &mut JobStatus, with_finalizer: &HashSet<String>) -> bool {
    let unc = status
        .uncounted_terminated_pods
        .get_or_insert_with(UncountedTerminatedPods::default);
    let mut changed = false;
    let mut moved = (0, 0);
    for (list, n) in [
        (&mut unc.succeeded, &mut moved.0),
        (&mut unc.failed, &mut moved.1),
    ] {
        let before = list.as_ref().map_or(0, Vec::len);
        let kept: Vec<String> = list
            .take()
            .unwrap_or_default()
            .into_iter()
            .filter(|u| with_finalizer.contains(u))
            .collect();
        *n = (before - kept.len()) as i32;
        changed |= *n > 0;
        *list = (!kept.is_empty()).then_some(kept);
    }
    status.succeeded = Some(status.succeeded.unwrap_or(0) + moved.0);
    status.failed = Some(status.failed.unwrap_or(0) + moved.1);
    changed
}

async fn update_status(c: &JobController, job: &Job) -> anyhow::Result<Job> {
    let api: Api<Job> = Api::namespaced(
        c.client.clone(),
        job.metadata.namespace.as_deref().unwrap_or(""),
    );
    let name = job.metadata.name.clone().unwrap_or_default();
    Ok(api
        .replace_status(&name, &PostParams::default(), job)
        .await?)
}

pub(super) async fn track_and_remove_finalizers(
    c: &Arc<JobController>,
    mut cx: SyncCtx,
    mut needs_flush: bool,
    new_backoff: super::BackoffRecord,
) -> anyhow::Result<()> {
    let indexed = is_indexed(&cx.job);
    let completions = spec(&cx.job).completions.unwrap_or(0);
    if indexed {
        cx.pods
            .sort_by_key(|p| completion_index(p).unwrap_or(i32::MAX));
    }
    let mut with_finalizer: HashSet<String> = cx
        .pods
        .iter()
        .filter(|p| has_tracking_finalizer(p))
        .filter_map(|p| p.metadata.uid.clone())
        .filter(|u| !cx.expected_rm.contains(u))
        .collect();
    let status = cx.job.status.get_or_insert_with(JobStatus::default);
    needs_flush |= clean_uncounted(status, &with_finalizer);
    let unc = status.uncounted_terminated_pods.clone().unwrap_or_default();
    let unc_succeeded: HashSet<String> = unc
        .succeeded
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    let unc_failed: HashSet<String> = unc.failed.clone().unwrap_or_default().into_iter().collect();
    let (mut add_succeeded, mut add_failed, mut new_indexes) = (Vec::new(), Vec::new(), Vec::new());
    let mut to_remove: Vec<Arc<Pod>> = Vec::new();
    let mut reached_max = false;
    let job_terminal_failure = cx
        .finished
        .as_ref()
        .is_some_and(|f| f.type_ != "SuccessCriteriaMet");
    for p in &cx.pods {
        let uid = p.metadata.uid.clone().unwrap_or_default();
        if !has_tracking_finalizer(p) || cx.expected_rm.contains(&uid) {
            continue;
        }
        let failed = is_pod_failed(p, &cx.job);
        let can_remove = cx.job.metadata.deletion_timestamp.is_some()
            || cx.finished.is_some()
            || phase(p) == "Succeeded"
            || failed;
        if !can_remove {
            continue;
        }
        to_remove.push(p.clone());
        if phase(p) == "Succeeded" && !unc_failed.contains(&uid) {
            if indexed {
                if let Some(i) = completion_index(p).filter(|i| *i < completions)
                    && !cx.prev_succeeded_indexes.has(i)
                {
                    new_indexes.push(i);
                    needs_flush = true;
                }
            } else if !unc_succeeded.contains(&uid) {
                add_succeeded.push(uid);
                needs_flush = true;
            }
        } else if (failed || job_terminal_failure)
            && !unc_failed.contains(&uid)
            && (!indexed || completion_index(p).is_some_and(|i| i < completions))
            && counts_as_failure(&cx.job, p)
        {
            add_failed.push(uid);
            needs_flush = true;
        }
        if new_indexes.len() + add_succeeded.len() + add_failed.len() >= MAX_UNCOUNTED_PODS {
            reached_max = true;
            break;
        }
    }
    let status = cx.job.status.get_or_insert_with(JobStatus::default);
    let unc = status
        .uncounted_terminated_pods
        .get_or_insert_with(UncountedTerminatedPods::default);
    if !add_succeeded.is_empty() {
        unc.succeeded
            .get_or_insert_with(Vec::new)
            .extend(add_succeeded);
    }
    if !add_failed.is_empty() {
        unc.failed.get_or_insert_with(Vec::new).extend(add_failed);
    }
    if indexed {
        cx.succeeded_indexes.0.extend(new_indexes);
        let s = cx.succeeded_indexes.to_string();
        if status.completed_indexes.as_deref().unwrap_or("") != s {
            needs_flush = true;
        }
        status.succeeded = Some(cx.succeeded_indexes.total() as i32);
        status.completed_indexes = Some(s);
        let fi = cx.failed_indexes.as_ref().map(|f| f.to_string());
        if status.failed_indexes != fi {
            status.failed_indexes = fi;
            needs_flush = true;
        }
    }
    let t = now();
    let conds = status.conditions.get_or_insert_with(Vec::new);
    if let Some(f) = cx.finished.clone() {
        if f.type_ == "FailureTarget" {
            conds.push(f.clone());
            needs_flush = true;
            cx.finished = Some(failed_from(&f, t));
        } else if f.type_ == "SuccessCriteriaMet" {
            if !conds
                .iter()
                .any(|c| c.type_ == "SuccessCriteriaMet" && c.status == "True")
            {
                conds.push(f.clone());
                needs_flush = true;
            }
            let mut complete = f.clone();
            complete.type_ = "Complete".into();
            complete.last_probe_time = Some(Time(t));
            complete.last_transition_time = Some(Time(t));
            cx.finished = Some(complete);
        }
    }
    // 1. Flush the uncounted pods (and interim conditions) before removing finalizers.
    if needs_flush {
        cx.job = update_status(c, &cx.job)
            .await
            .map_err(|e| e.context("adding uncounted pods to status"))?;
        c.set_backoff_record(&cx.key, new_backoff);
        needs_flush = false;
    }
    // 2. Remove finalizers; 3. count the pods that lost them.
    let mut rm_err = None;
    if !to_remove.is_empty() {
        let uids: Vec<String> = to_remove
            .iter()
            .filter_map(|p| p.metadata.uid.clone())
            .collect();
        c.expect_finalizer_removals(&cx.key, &uids);
        let results =
            futures::future::join_all(to_remove.iter().map(|p| remove_finalizer(c, p))).await;
        for (p, r) in to_remove.iter().zip(results) {
            let uid = p.metadata.uid.clone().unwrap_or_default();
            match r {
                Ok(()) => {
                    with_finalizer.remove(&uid);
                }
                Err(e) => {
                    c.finalizer_removal_observed(&cx.key, &uid);
                    rm_err = Some(e);
                }
            }
        }
    }
    let status = cx.job.status.get_or_insert_with(JobStatus::default);
    if clean_uncounted(status, &with_finalizer) {
        needs_flush = true;
    }
    if let Some(e) = rm_err {
        if needs_flush {
            update_status(c, &cx.job).await?;
        }
        return Err(e);
    }
    // 4. The terminal condition, once nothing is uncounted or terminating.
    let mut job_finished = false;
    if !reached_max && let Some(f) = cx.finished.clone() {
        let status = cx.job.status.get_or_insert_with(JobStatus::default);
        let unc = status.uncounted_terminated_pods.clone().unwrap_or_default();
        let pending = unc.succeeded.map_or(0, |v| v.len()) + unc.failed.map_or(0, |v| v.len());
        if pending == 0 && cx.terminating == 0 {
            let conds = status.conditions.get_or_insert_with(Vec::new);
            ensure_condition(
                conds,
                &f.type_,
                "True",
                f.reason.as_deref().unwrap_or(""),
                f.message.as_deref().unwrap_or(""),
                t,
            );
            if f.type_ == "Complete" {
                status.completion_time = Some(Time(t));
            }
            job_finished = true;
            needs_flush = true;
        }
    }
    if needs_flush {
        let job = update_status(c, &cx.job)
            .await
            .map_err(|e| e.context("removing uncounted pods from status"))?;
        if job_finished && let Some(f) = &cx.finished {
            if f.type_ == "Complete" {
                let st = job.status.clone().unwrap_or_default();
                if spec(&job)
                    .completions
                    .is_some_and(|n| st.succeeded.unwrap_or(0) > n)
                {
                    c.recorder.warning(
                        &job,
                        "TooManySucceededPods",
                        "Sync",
                        "Too many succeeded pods running after completion count reached".into(),
                    );
                }
                c.recorder
                    .normal(&job, "Completed", "Sync", "Job completed".into());
            } else {
                let reason = f.reason.clone().unwrap_or_default();
                c.recorder
                    .warning(&job, &reason, "Sync", f.message.clone().unwrap_or_default());
            }
        }
    }
    Ok(())
}

/// Removes the tracking finalizer with a merge patch guarded by the pod's resourceVersion,
/// re-reading on conflict (a pod already gone counts as done).
pub(super) async fn remove_finalizer(c: &JobController, pod: &Pod) -> anyhow::Result<()> {
    let api: Api<Pod> = Api::namespaced(
        c.client.clone(),
        pod.metadata.namespace.as_deref().unwrap_or(""),
    );
    let name = pod.metadata.name.clone().unwrap_or_default();
    let mut cur = pod.clone();
    for _ in 0..5 {
        if !has_tracking_finalizer(&cur) {
            return Ok(());
        }
        let mut f = cur.metadata.finalizers.clone().unwrap_or_default();
        f.retain(|x| x != super::JOB_TRACKING_FINALIZER);
        let p = serde_json::json!({"metadata": {
            "finalizers": f,
            "resourceVersion": cur.metadata.resource_version,
        }});
        match api
            .patch(&name, &PatchParams::default(), &Patch::Merge(&p))
            .await
        {
            Ok(_) => return Ok(()),
            Err(e) if crate::podutil::is_not_found(&e) => return Ok(()),
            Err(kube::Error::Api(s)) if s.code == 409 => match api.get_opt(&name).await? {
                Some(p) => cur = p,
                None => return Ok(()),
            },
            Err(e) => return Err(e.into()),
        }
    }
    anyhow::bail!("removing tracking finalizer from pod {name}: too many conflicts")
}
