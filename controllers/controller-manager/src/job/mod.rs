//! The job controller (mirrors upstream `pkg/controller/job/job_controller.go`): wiring — informers,
//! event handlers that map pods to their Job, create/delete and finalizer-removal expectations,
//! the pod backoff store — and the workers. The sync itself is in `sync.rs` and `manage.rs`.

mod indexes;
mod manage;
mod policy;
mod sync;
mod tracking;

pub use indexes::{COMPLETION_INDEX_ANNOTATION, Indexes};
pub use policy::{Action, BackoffRecord, match_pod_failure_policy};

use crate::ControllerContext;
use crate::podutil::{Expectations, controller_ref};
use component_base::events::Recorder;
use component_base::informer::{Change, Informer, key_of};
use component_base::workqueue::{WorkQueue, run_workers};
use futures::future::BoxFuture;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

/// The finalizer that keeps a Job's pods until the controller has counted them.
pub const JOB_TRACKING_FINALIZER: &str = "batch.kubernetes.io/job-tracking";
/// The value of `spec.managedBy` meaning this controller.
pub const JOB_CONTROLLER_NAME: &str = "kubernetes.io/job-controller";

pub(crate) struct JobController {
    client: kube::Client,
    jobs: Arc<Informer<Job>>,
    pods: Arc<Informer<Pod>>,
    queue: Arc<WorkQueue<String>>,
    /// Pods (`ns/name`) whose tracking finalizer may be left behind by a deleted or finished Job.
    orphans: Arc<WorkQueue<String>>,
    recorder: Recorder,
    expectations: Expectations,
    /// Pod UIDs (per Job key) whose tracking finalizer was removed but the informer has not
    /// shown it yet; they must not be counted again.
    finalizer_expectations: Mutex<HashMap<String, HashSet<String>>>,
    backoff: Mutex<HashMap<String, BackoffRecord>>,
}

/// `job-controller`: starts the informers and returns the run loop.
pub fn start(ctx: &ControllerContext) -> BoxFuture<'static, anyhow::Result<()>> {
    let c = Arc::new(JobController {
        client: ctx.client.clone(),
        jobs: ctx.informers.informer::<Job>(),
        pods: ctx.informers.informer::<Pod>(),
        queue: WorkQueue::new("job"),
        orphans: WorkQueue::new("job_orphan_pod"),
        recorder: ctx.recorder("job-controller"),
        expectations: Expectations::default(),
        finalizer_expectations: Mutex::default(),
        backoff: Mutex::default(),
    });
    let workers = ctx.config.concurrent_job_syncs;
    let informers = ctx.informers.clone();
    let shutdown = ctx.shutdown.clone();
    Box::pin(async move {
        if !informers.wait_for_cache_sync(&shutdown).await {
            return Ok(());
        }
        let mut jobs = c.jobs.subscribe();
        let mut pods = c.pods.subscribe();
        let h = c.clone();
        let handlers = tokio::spawn(async move {
            loop {
                tokio::select! {
                    Some(ch) = jobs.recv() => {
                        if let Change::Deleted(job) = &ch {
                            h.cleanup_pod_finalizers(job);
                        }
                        h.queue.add(key_of(ch.object().as_ref()));
                    }
                    Some(ch) = pods.recv() => h.on_pod(ch),
                    else => break,
                }
            }
        });
        let q = c.queue.clone();
        let sync = {
            let c = c.clone();
            move |key: String| {
                let c = c.clone();
                async move { Box::pin(sync::sync_job(&c, &key)).await }
            }
        };
        let orphan_sync = {
            let c = c.clone();
            move |key: String| {
                let c = c.clone();
                async move { c.sync_orphan_pod(&key).await }
            }
        };
        let oq = c.orphans.clone();
        tokio::select! {
            _ = run_workers(q.clone(), workers, sync) => {}
            _ = run_workers(oq.clone(), 1, orphan_sync) => {}
            _ = shutdown.cancelled() => {}
        }
        q.shut_down();
        oq.shut_down();
        handlers.abort();
        Ok(())
    })
}

fn has_tracking_finalizer(pod: &Pod) -> bool {
    pod.metadata
        .finalizers
        .as_ref()
        .is_some_and(|f| f.iter().any(|f| f == JOB_TRACKING_FINALIZER))
}

impl JobController {
    /// The key of the Job controlling the pod, if it is a Job that exists.
    fn job_key_of(&self, pod: &Pod) -> Option<String> {
        let r = controller_ref(&pod.metadata)?;
        if r.kind != "Job" {
            return None;
        }
        let ns = pod.metadata.namespace.as_deref()?;
        let job = self.jobs.get(Some(ns), &r.name)?;
        (job.metadata.uid.as_deref() == Some(r.uid.as_str())).then(|| format!("{ns}/{}", r.name))
    }

    fn on_pod(&self, ch: Change<Pod>) {
        let pod = ch.object().clone();
        if !matches!(ch, Change::Deleted(_)) && has_tracking_finalizer(&pod) && self.orphaned(&pod)
        {
            self.orphans.add(key_of(pod.as_ref()));
        }
        let Some(key) = self.job_key_of(&pod).or_else(|| {
            // A deleted Job's pods still need their finalizers observed.
            let r = controller_ref(&pod.metadata)?;
            Some(format!("{}/{}", pod.metadata.namespace.as_deref()?, r.name))
        }) else {
            return;
        };
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        match &ch {
            Change::Added(p) => {
                if p.metadata.deletion_timestamp.is_some() {
                    self.expectations.deletion_observed(&key);
                } else {
                    self.expectations.creation_observed(&key);
                }
            }
            Change::Updated(old, new) => {
                if old.metadata.deletion_timestamp.is_none()
                    && new.metadata.deletion_timestamp.is_some()
                {
                    self.expectations.deletion_observed(&key);
                }
                if !has_tracking_finalizer(new) {
                    self.finalizer_removal_observed(&key, &uid);
                }
            }
            Change::Deleted(p) => {
                if p.metadata.deletion_timestamp.is_none() {
                    self.expectations.deletion_observed(&key);
                }
                self.finalizer_removal_observed(&key, &uid);
            }
        }
        if self.jobs.get_by_key(&key).is_some() {
            self.queue.add(key);
        }
    }

    /// The pod's Job is gone (or is another object) or finished, so nobody will remove the
    /// tracking finalizer for it (upstream `syncOrphanPod`); Jobs managed elsewhere are skipped.
    fn orphaned(&self, pod: &Pod) -> bool {
        let Some(r) = controller_ref(&pod.metadata).filter(|r| r.kind == "Job") else {
            return true;
        };
        let ns = pod.metadata.namespace.as_deref();
        match self
            .jobs
            .get(ns, &r.name)
            .filter(|j| j.metadata.uid.as_deref() == Some(r.uid.as_str()))
        {
            None => true,
            Some(job) => {
                let managed_elsewhere = job
                    .spec
                    .as_ref()
                    .and_then(|s| s.managed_by.as_deref())
                    .is_some_and(|m| m != JOB_CONTROLLER_NAME);
                !managed_elsewhere && policy::is_finished(&job)
            }
        }
    }

    /// A deleted Job's pods that still carry the tracking finalizer (upstream
    /// `cleanupPodFinalizers`).
    fn cleanup_pod_finalizers(&self, job: &Job) {
        let uid = job.metadata.uid.as_deref().unwrap_or("");
        for p in self
            .pods
            .list_namespace(job.metadata.namespace.as_deref().unwrap_or(""))
        {
            if has_tracking_finalizer(&p) && crate::podutil::is_controlled_by(&p.metadata, uid) {
                self.orphans.add(key_of(p.as_ref()));
            }
        }
    }

    async fn sync_orphan_pod(&self, key: &str) -> anyhow::Result<()> {
        let Some(pod) = self.pods.get_by_key(key) else {
            return Ok(());
        };
        if !has_tracking_finalizer(&pod) || !self.orphaned(&pod) {
            return Ok(());
        }
        tracking::remove_finalizer(self, &pod).await
    }

    fn finalizer_removal_observed(&self, key: &str, uid: &str) {
        let mut m = self
            .finalizer_expectations
            .lock()
            .expect("finalizer expectations");
        if let Some(s) = m.get_mut(key) {
            s.remove(uid);
            if s.is_empty() {
                m.remove(key);
            }
        }
    }

    fn expected_finalizer_removals(&self, key: &str) -> HashSet<String> {
        self.finalizer_expectations
            .lock()
            .expect("finalizer expectations")
            .get(key)
            .cloned()
            .unwrap_or_default()
    }

    fn expect_finalizer_removals(&self, key: &str, uids: &[String]) {
        let mut m = self
            .finalizer_expectations
            .lock()
            .expect("finalizer expectations");
        m.entry(key.to_string())
            .or_default()
            .extend(uids.iter().cloned());
    }

    fn forget_job(&self, key: &str) {
        self.expectations.forget(key);
        self.finalizer_expectations
            .lock()
            .expect("finalizer expectations")
            .remove(key);
        self.backoff.lock().expect("backoff").remove(key);
    }

    fn backoff_record(&self, key: &str) -> BackoffRecord {
        self.backoff
            .lock()
            .expect("backoff")
            .get(key)
            .cloned()
            .unwrap_or_default()
    }

    fn set_backoff_record(&self, key: &str, r: BackoffRecord) {
        self.backoff
            .lock()
            .expect("backoff")
            .insert(key.to_string(), r);
    }
}
