//! The CronJob controller (mirrors upstream `pkg/controller/cronjob/cronjob_controllerv2.go` and
//! `utils.go`): reconciles `status.active` with the Jobs it owns, creates a Job
//! `<cronjob>-<scheduled minutes>` for the most recent missed schedule (startingDeadlineSeconds,
//! concurrencyPolicy Allow/Forbid/Replace, suspend, timeZone), trims finished Jobs beyond the
//! history limits and requeues itself for the next activation.

pub mod schedule;

use crate::ControllerContext;
use crate::podutil::{controller_owner_ref, controller_ref, is_not_found};
use component_base::events::Recorder;
use component_base::informer::{Informer, key_of, split_key};
use component_base::workqueue::{WorkQueue, run_workers};
use futures::future::BoxFuture;
use jiff::Timestamp;
use jiff::tz::TimeZone;
use k8s_openapi::api::batch::v1::{CronJob, CronJobStatus, Job};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{DeleteParams, PostParams};
use kube::{Api, Resource};
use schedule::Schedule;
use std::sync::Arc;
use std::time::Duration;

/// The annotation carrying a Job's scheduled time (RFC 3339, in the CronJob's zone).
pub const SCHEDULED_TIMESTAMP_ANNOTATION: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";

struct CronJobController {
    client: kube::Client,
    cronjobs: Arc<Informer<CronJob>>,
    jobs: Arc<Informer<Job>>,
    queue: Arc<WorkQueue<String>>,
    recorder: Recorder,
}

/// `cronjob-controller`.
pub fn start(ctx: &ControllerContext) -> BoxFuture<'static, anyhow::Result<()>> {
    let c = Arc::new(CronJobController {
        client: ctx.client.clone(),
        cronjobs: ctx.informers.informer::<CronJob>(),
        jobs: ctx.informers.informer::<Job>(),
        queue: WorkQueue::new("cronjob"),
        recorder: ctx.recorder("cronjob-controller"),
    });
    let informers = ctx.informers.clone();
    let shutdown = ctx.shutdown.clone();
    Box::pin(async move {
        if !informers.wait_for_cache_sync(&shutdown).await {
            return Ok(());
        }
        let mut cjs = c.cronjobs.subscribe();
        let mut jobs = c.jobs.subscribe();
        let h = c.clone();
        let handlers = tokio::spawn(async move {
            loop {
                tokio::select! {
                    Some(ch) = cjs.recv() => h.queue.add(key_of(ch.object().as_ref())),
                    Some(ch) = jobs.recv() => {
                        let j = ch.object();
                        if let Some(r) = controller_ref(&j.metadata).filter(|r| r.kind == "CronJob") {
                            let ns = j.metadata.namespace.clone().unwrap_or_default();
                            h.queue.add(format!("{ns}/{}", r.name));
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
                async move { Box::pin(c.sync(&key)).await }
            }
        };
        tokio::select! {
            _ = run_workers(q.clone(), 5, sync) => {}
            _ = shutdown.cancelled() => {}
        }
        q.shut_down();
        handlers.abort();
        Ok(())
    })
}

/// Finished means Complete or Failed is True; returns the condition type.
fn finished(j: &Job) -> Option<String> {
    j.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find_map(|c| {
            ((c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
                .then(|| c.type_.clone())
        })
}

/// The Job name for a scheduled time: `<cronjob>-<unix minutes>`.
pub fn job_name(cronjob: &str, scheduled: Timestamp) -> String {
    format!("{cronjob}-{}", scheduled.as_second().div_euclid(60))
}

/// The most recent activation at or before `now` that was not started yet (earliest bound: the
/// last schedule time, else creation, else — with startingDeadlineSeconds — `now - deadline`),
/// with the number of activations missed; `Ok(None)` if none is due.
pub fn most_recent_schedule_time(
    sched: &Schedule,
    tz: &TimeZone,
    earliest: Timestamp,
    starting_deadline: Option<i64>,
    now: Timestamp,
) -> (Option<Timestamp>, usize) {
    let mut earliest = earliest;
    if let Some(sd) = starting_deadline {
        let bound = now - jiff::SignedDuration::from_secs(sd);
        if bound > earliest {
            earliest = bound;
        }
    }
    let mut last = None;
    let mut missed = 0usize;
    let mut t = earliest;
    while let Some(n) = sched.next(t, tz) {
        if n > now {
            break;
        }
        last = Some(n);
        missed += 1;
        t = n;
        if missed > 10_000 {
            break;
        }
    }
    (last, missed)
}

impl CronJobController {
    async fn sync(&self, key: &str) -> anyhow::Result<()> {
        let (ns, name) = split_key(key);
        let Some(shared) = self.cronjobs.get(ns, name) else {
            return Ok(());
        };
        let mut cj = (*shared).clone();
        let ns = ns.unwrap_or("").to_string();
        let uid = cj.metadata.uid.clone().unwrap_or_default();
        let jobs: Vec<Arc<Job>> = self
            .jobs
            .list_namespace(&ns)
            .into_iter()
            .filter(|j| crate::podutil::is_controlled_by(&j.metadata, &uid))
            .collect();
        let requeue = self.sync_cronjob(&mut cj, &jobs).await?;
        self.cleanup_finished(&cj, &jobs).await?;
        if let Some(d) = requeue {
            self.queue.add_after(key.to_string(), d);
        }
        Ok(())
    }

    async fn update_status(&self, cj: &CronJob) -> anyhow::Result<CronJob> {
        let api: Api<CronJob> = Api::namespaced(
            self.client.clone(),
            cj.metadata.namespace.as_deref().unwrap_or(""),
        );
        let name = cj.metadata.name.clone().unwrap_or_default();
        Ok(api
            .replace_status(&name, &PostParams::default(), cj)
            .await?)
    }

    /// Returns when to look again.
    async fn sync_cronjob(
        &self,
        cj: &mut CronJob,
        jobs: &[Arc<Job>],
    ) -> anyhow::Result<Option<Duration>> {
        let mut changed = false;
        let status = cj.status.get_or_insert_with(CronJobStatus::default);
        let mut active = status.active.clone().unwrap_or_default();
        let mut last_success = status.last_successful_time.clone();
        let mut events: Vec<(bool, &str, String)> = Vec::new();
        for j in jobs {
            let juid = j.metadata.uid.clone().unwrap_or_default();
            let jname = j.metadata.name.clone().unwrap_or_default();
            let in_active = active
                .iter()
                .any(|r| r.uid.as_deref() == Some(juid.as_str()));
            let fin = finished(j);
            if !in_active && fin.is_none() {
                events.push((
                    true,
                    "UnexpectedJob",
                    format!("Saw a job that the controller did not create or forgot: {jname}"),
                ));
            } else if in_active && let Some(cond) = &fin {
                active.retain(|r| r.uid.as_deref() != Some(juid.as_str()));
                events.push((
                    false,
                    "SawCompletedJob",
                    format!("Saw completed job: {jname}, condition: {cond}"),
                ));
                changed = true;
            }
            if fin.as_deref() == Some("Complete")
                && let Some(ct) = j.status.as_ref().and_then(|s| s.completion_time.clone())
                && last_success.as_ref().is_none_or(|l| ct.0 > l.0)
            {
                last_success = Some(ct);
                changed = true;
            }
        }
        // Active references whose Job is gone.
        let api_jobs: Api<Job> = Api::namespaced(
            self.client.clone(),
            cj.metadata.namespace.as_deref().unwrap_or(""),
        );
        let mut kept = Vec::new();
        for r in active {
            if jobs.iter().any(|j| j.metadata.uid == r.uid) {
                kept.push(r);
                continue;
            }
            match api_jobs.get_opt(r.name.as_deref().unwrap_or("")).await? {
                Some(_) => kept.push(r),
                None => {
                    events.push((
                        false,
                        "MissingJob",
                        format!(
                            "Active job went missing: {}",
                            r.name.clone().unwrap_or_default()
                        ),
                    ));
                    changed = true;
                }
            }
        }
        for (warn, reason, msg) in events {
            if warn {
                self.recorder.warning(cj, reason, "Sync", msg);
            } else {
                self.recorder.normal(cj, reason, "Sync", msg);
            }
        }
        let status = cj.status.get_or_insert_with(CronJobStatus::default);
        status.active = (!kept.is_empty()).then_some(kept);
        status.last_successful_time = last_success;
        if changed {
            *cj = self.update_status(cj).await?;
        }
        if cj.metadata.deletion_timestamp.is_some() {
            return Ok(None);
        }
        let spec = cj.spec.clone();
        let tz = match spec.time_zone.as_deref() {
            None => TimeZone::system(),
            Some(z) => match TimeZone::get(z) {
                Ok(tz) => tz,
                Err(e) => {
                    self.recorder.warning(
                        cj,
                        "UnknownTimeZone",
                        "Sync",
                        format!("invalid timeZone: {z:?}: {e}"),
                    );
                    return Ok(None);
                }
            },
        };
        if spec.suspend == Some(true) {
            return Ok(None);
        }
        let sched = match Schedule::parse(&spec.schedule) {
            Ok(s) => s,
            Err(e) => {
                self.recorder.warning(
                    cj,
                    "UnparseableSchedule",
                    "Sync",
                    format!("unparseable schedule: {:?} : {e}", spec.schedule),
                );
                return Ok(None);
            }
        };
        let now = Timestamp::now();
        let status = cj.status.clone().unwrap_or_default();
        let earliest = status
            .last_schedule_time
            .as_ref()
            .or(cj.metadata.creation_timestamp.as_ref())
            .map(|t| t.0)
            .unwrap_or(now);
        let (scheduled, missed) =
            most_recent_schedule_time(&sched, &tz, earliest, spec.starting_deadline_seconds, now);
        let next_in = |now: Timestamp| {
            sched.next(now, &tz).map(|n| {
                Duration::try_from(n.duration_since(now)).unwrap_or_default()
                    + Duration::from_millis(100)
            })
        };
        if missed > 100 {
            self.recorder.warning(cj, "TooManyMissedTimes", "Sync", format!(
                "too many missed start times: {missed}. Set or decrease .spec.startingDeadlineSeconds or check clock skew"));
        }
        let Some(scheduled) = scheduled else {
            return Ok(next_in(now));
        };
        if let Some(sd) = spec.starting_deadline_seconds
            && scheduled + jiff::SignedDuration::from_secs(sd) < now
        {
            self.recorder.warning(
                cj,
                "MissSchedule",
                "Sync",
                format!(
                    "Missed scheduled time to start a job: {}",
                    scheduled.strftime("%a, %d %b %Y %H:%M:%S %z")
                ),
            );
            return Ok(next_in(now));
        }
        let cj_name = cj.metadata.name.clone().unwrap_or_default();
        let name = job_name(&cj_name, scheduled);
        let active = status.active.clone().unwrap_or_default();
        if active
            .iter()
            .any(|r| r.name.as_deref() == Some(name.as_str()))
            || status
                .last_schedule_time
                .as_ref()
                .is_some_and(|t| t.0 == scheduled)
        {
            return Ok(next_in(now));
        }
        let policy = spec.concurrency_policy.as_deref().unwrap_or("Allow");
        if policy == "Forbid" && !active.is_empty() {
            self.recorder.normal(cj, "JobAlreadyActive", "Sync",
                "Not starting job because prior execution is running and concurrency policy is Forbid".into());
            return Ok(next_in(now));
        }
        let mut active = active;
        if policy == "Replace" {
            for r in std::mem::take(&mut active) {
                let jn = r.name.clone().unwrap_or_default();
                match api_jobs.delete(&jn, &DeleteParams::background()).await {
                    Ok(_) => self.recorder.normal(
                        cj,
                        "SuccessfulDelete",
                        "Delete",
                        format!("Deleted job {jn}"),
                    ),
                    Err(e) if is_not_found(&e) => {}
                    Err(e) => {
                        self.recorder.warning(
                            cj,
                            "FailedDelete",
                            "Delete",
                            format!("Deleted job: {e}"),
                        );
                        return Err(e.into());
                    }
                }
            }
        }
        let job = self.job_from_template(cj, &name, scheduled, &tz);
        let created = match api_jobs.create(&PostParams::default(), &job).await {
            Ok(j) => {
                self.recorder.normal(
                    cj,
                    "SuccessfulCreate",
                    "Create",
                    format!("Created job {name}"),
                );
                j
            }
            Err(e) if crate::podutil::is_already_exists(&e) => {
                let existing = api_jobs.get(&name).await?;
                if !crate::podutil::is_controlled_by(
                    &existing.metadata,
                    cj.metadata.uid.as_deref().unwrap_or(""),
                ) {
                    return Ok(next_in(now));
                }
                existing
            }
            Err(e) => {
                self.recorder.warning(
                    cj,
                    "FailedCreate",
                    "Create",
                    format!("Error creating job: {e}"),
                );
                return Err(e.into());
            }
        };
        if finished(&created).is_none() && !active.iter().any(|r| r.uid == created.metadata.uid) {
            active.push(ObjectReference {
                api_version: Some("batch/v1".into()),
                kind: Some("Job".into()),
                name: created.metadata.name.clone(),
                namespace: created.metadata.namespace.clone(),
                uid: created.metadata.uid.clone(),
                resource_version: created.metadata.resource_version.clone(),
                field_path: None,
            });
        }
        let st = cj.status.get_or_insert_with(CronJobStatus::default);
        st.active = (!active.is_empty()).then_some(active);
        st.last_schedule_time = Some(Time(scheduled));
        *cj = self.update_status(cj).await?;
        Ok(next_in(Timestamp::now()))
    }

    fn job_from_template(
        &self,
        cj: &CronJob,
        name: &str,
        scheduled: Timestamp,
        tz: &TimeZone,
    ) -> Job {
        let spec = cj.spec.clone();
        let tmpl = spec.job_template;
        let meta = tmpl.metadata.unwrap_or_default();
        let mut annotations = meta.annotations.unwrap_or_default();
        let stamp = scheduled
            .to_zoned(tz.clone())
            .strftime("%Y-%m-%dT%H:%M:%S%:z")
            .to_string();
        let stamp = stamp.replace("+00:00", "Z");
        annotations.insert(SCHEDULED_TIMESTAMP_ANNOTATION.into(), stamp);
        Job {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                namespace: cj.meta().namespace.clone(),
                labels: meta.labels,
                annotations: Some(annotations),
                owner_references: Some(vec![controller_owner_ref(cj)]),
                ..Default::default()
            },
            spec: tmpl.spec,
            status: None,
        }
    }

    /// Deletes the oldest finished Jobs beyond successful/failedJobsHistoryLimit.
    async fn cleanup_finished(&self, cj: &CronJob, jobs: &[Arc<Job>]) -> anyhow::Result<()> {
        let spec = cj.spec.clone();
        let api: Api<Job> = Api::namespaced(
            self.client.clone(),
            cj.metadata.namespace.as_deref().unwrap_or(""),
        );
        for (kind, limit) in [
            ("Complete", spec.successful_jobs_history_limit.unwrap_or(3)),
            ("Failed", spec.failed_jobs_history_limit.unwrap_or(1)),
        ] {
            let mut done: Vec<&Arc<Job>> = jobs
                .iter()
                .filter(|j| finished(j).as_deref() == Some(kind))
                .collect();
            let limit = usize::try_from(limit.max(0)).unwrap_or(0);
            if done.len() <= limit {
                continue;
            }
            done.sort_by_key(|j| {
                j.status
                    .as_ref()
                    .and_then(|s| s.start_time.as_ref())
                    .or(j.metadata.creation_timestamp.as_ref())
                    .map(|t| t.0)
            });
            for j in &done[..done.len() - limit] {
                let n = j.metadata.name.clone().unwrap_or_default();
                match api.delete(&n, &DeleteParams::background()).await {
                    Ok(_) => self.recorder.normal(
                        cj,
                        "SuccessfulDelete",
                        "Delete",
                        format!("Deleted job {n}"),
                    ),
                    Err(e) if is_not_found(&e) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn job_names_use_minutes() {
        assert_eq!(
            job_name("hello", ts("2024-01-01T00:01:00Z")),
            "hello-28401121"
        );
    }

    #[test]
    fn most_recent_missed_time() {
        let s = Schedule::parse("* * * * *").unwrap();
        let utc = TimeZone::UTC;
        // Created 10:00:30, now 10:03:10: three activations missed, the latest 10:03.
        let (t, n) = most_recent_schedule_time(
            &s,
            &utc,
            ts("2024-01-01T10:00:30Z"),
            None,
            ts("2024-01-01T10:03:10Z"),
        );
        assert_eq!((t, n), (Some(ts("2024-01-01T10:03:00Z")), 3));
        // Nothing due yet.
        let (t, _) = most_recent_schedule_time(
            &s,
            &utc,
            ts("2024-01-01T10:03:00Z"),
            None,
            ts("2024-01-01T10:03:40Z"),
        );
        assert_eq!(t, None);
        // startingDeadlineSeconds bounds how far back we look.
        let (t, n) = most_recent_schedule_time(
            &s,
            &utc,
            ts("2024-01-01T00:00:00Z"),
            Some(90),
            ts("2024-01-01T10:03:10Z"),
        );
        assert_eq!((t, n), (Some(ts("2024-01-01T10:03:00Z")), 2));
    }
}
