//! ttl-after-finished-controller (upstream `pkg/controller/ttlafterfinished`): deletes finished
//! Jobs (cascading in the foreground, with a uid precondition) `ttlSecondsAfterFinished` after
//! the time of their Complete or Failed condition, re-checking the live Job first.

use crate::ControllerContext;
use crate::garbagecollector::operations::is_not_found;
use component_base::informer::{Change, key_of, split_key};
use component_base::workqueue::{WorkQueue, run_workers};
use futures::future::BoxFuture;
use k8s_openapi::api::batch::v1::Job;
use kube::api::{Api, DeleteParams, Preconditions, PropagationPolicy};
use std::sync::Arc;
use std::time::Duration;

fn finished(job: &Job) -> bool {
    finish_time(job).is_some()
}

/// The time of the Job's true Complete or Failed condition.
fn finish_time(job: &Job) -> Option<jiff::Timestamp> {
    job.status
        .as_ref()?
        .conditions
        .iter()
        .flatten()
        .find(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
        .and_then(|c| c.last_transition_time.as_ref().map(|t| t.0))
}

fn needs_cleanup(job: &Job) -> bool {
    job.metadata.deletion_timestamp.is_none()
        && job
            .spec
            .as_ref()
            .and_then(|s| s.ttl_seconds_after_finished)
            .is_some()
        && finished(job)
}

/// Time left until the Job expires (zero or negative: expired); None if it needs no cleanup.
fn time_left(job: &Job, now: jiff::Timestamp) -> Option<Duration> {
    if !needs_cleanup(job) {
        return None;
    }
    let ttl = job.spec.as_ref()?.ttl_seconds_after_finished?;
    let expire = finish_time(job)?.as_millisecond() + i64::from(ttl) * 1000;
    let left = expire - now.as_millisecond();
    Some(Duration::from_millis(left.max(0) as u64))
}

pub fn start(ctx: &ControllerContext) -> BoxFuture<'static, anyhow::Result<()>> {
    let jobs = ctx.informers.informer::<Job>();
    let client = ctx.client.clone();
    let shutdown = ctx.shutdown.clone();
    Box::pin(async move {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = jobs.wait_synced() => {}
        }
        let queue: Arc<WorkQueue<String>> = WorkQueue::new("ttl_jobs_to_delete");
        let (q, mut rx) = (queue.clone(), jobs.subscribe());
        tokio::spawn(async move {
            while let Some(c) = rx.recv().await {
                if let Change::Added(j) | Change::Updated(_, j) = &c
                    && needs_cleanup(j)
                {
                    q.add(key_of(j.as_ref()));
                }
            }
        });
        let q = queue.clone();
        let sync = move |key: String| {
            let (jobs, client, q) = (jobs.clone(), client.clone(), q.clone());
            async move {
                let Some(job) = jobs.get_by_key(&key) else {
                    return Ok(());
                };
                match time_left(&job, jiff::Timestamp::now()) {
                    None => return Ok(()),
                    Some(d) if !d.is_zero() => {
                        q.add_after(key, d);
                        return Ok(());
                    }
                    Some(_) => {}
                }
                let (ns, name) = split_key(&key);
                let api: Api<Job> = Api::namespaced(client, ns.unwrap_or_default());
                // The cached TTL may be stale: check the live Job before deleting it.
                let Some(fresh) = api.get_opt(name).await? else {
                    return Ok(());
                };
                match time_left(&fresh, jiff::Timestamp::now()) {
                    None => return Ok(()),
                    Some(d) if !d.is_zero() => {
                        q.add_after(key, d);
                        return Ok(());
                    }
                    Some(_) => {}
                }
                tracing::info!(job = %key, "cleaning up Job");
                let dp = DeleteParams {
                    propagation_policy: Some(PropagationPolicy::Foreground),
                    preconditions: Some(Preconditions {
                        uid: fresh.metadata.uid.clone(),
                        resource_version: None,
                    }),
                    ..Default::default()
                };
                match api.delete(name, &dp).await {
                    Ok(_) => Ok(()),
                    Err(e) if is_not_found(&e) => Ok(()),
                    Err(e) => Err(e.into()),
                }
            }
        };
        let runner = tokio::spawn(run_workers(queue.clone(), 5, sync));
        shutdown.cancelled().await;
        queue.shut_down();
        let _ = runner.await;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_counts_from_the_finish_condition() {
        let now = jiff::Timestamp::now();
        let finished_at = now - jiff::SignedDuration::from_secs(10);
        let mut job: Job = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "j"},
            "spec": {"ttlSecondsAfterFinished": 30, "template": {}},
            "status": {"conditions": [{"type": "Complete", "status": "True", "lastTransitionTime": finished_at.to_string()}]},
        }))
        .unwrap();
        let left = time_left(&job, now).unwrap();
        assert!(
            left <= Duration::from_secs(20) && left > Duration::from_secs(19),
            "{left:?}"
        );
        job.spec.as_mut().unwrap().ttl_seconds_after_finished = Some(0);
        assert!(time_left(&job, now).unwrap().is_zero());
        job.status = None;
        assert!(time_left(&job, now).is_none());
    }
}
