//! One probe worker: probes one container's liveness, readiness or startup every periodSeconds
//! and caches the result once it crosses its threshold (upstream `pkg/kubelet/prober/worker.go`).

use super::results::ProbeResult;
use super::{Inner, ProbeKey, ProbeType};
use k8s_openapi::api::core::v1::{Container, ContainerStatus, Pod, PodStatus, Probe};
use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

pub(crate) const DEFAULT_PERIOD_SECONDS: i32 = 10;
pub(crate) const DEFAULT_TIMEOUT_SECONDS: i32 = 1;
pub(crate) const DEFAULT_SUCCESS_THRESHOLD: i32 = 1;
pub(crate) const DEFAULT_FAILURE_THRESHOLD: i32 = 3;

/// A probe setting, or its default when unset (or not positive, which validation refuses).
pub(crate) fn setting(v: Option<i32>, default: i32) -> i32 {
    v.filter(|v| *v > 0).unwrap_or(default)
}

pub(crate) struct Worker {
    inner: Arc<Inner>,
    id: u64,
    key: ProbeKey,
    stop: CancellationToken,
    manual: mpsc::Receiver<()>,
    /// The container this worker probes now (as in the pod status).
    container_id: String,
    last_result: Option<ProbeResult>,
    /// How many probes in a row returned `last_result`.
    result_run: i32,
    /// After a liveness/startup failure: wait for a new container.
    on_hold: bool,
}

enum Next {
    Continue,
    /// The worker ends for good (pod terminal, container done for good, pod deleting).
    Exit,
}

impl Worker {
    pub(crate) fn new(
        inner: Arc<Inner>,
        id: u64,
        key: ProbeKey,
        stop: CancellationToken,
        manual: mpsc::Receiver<()>,
    ) -> Worker {
        Worker {
            inner,
            id,
            key,
            stop,
            manual,
            container_id: String::new(),
            last_result: None,
            result_run: 0,
            on_hold: false,
        }
    }

    fn period(&self) -> Duration {
        let secs = self
            .inner
            .snapshot(&self.key.pod_uid)
            .and_then(|(pod, _)| {
                find_spec(&pod, &self.key.container)
                    .and_then(|(c, _)| self.key.probe_type.spec(c).map(|p| p.period_seconds))
            })
            .flatten();
        Duration::from_secs(setting(secs, DEFAULT_PERIOD_SECONDS) as u64)
    }

    pub(crate) async fn run(mut self) {
        let stop = self.stop.clone();
        let period = self.period();
        // Right after a kubelet (re)start, spread the first probes over one period.
        if self.inner.jitter && period > self.inner.clock.since_start() {
            let delay = period.mul_f64(random_fraction(self.id));
            tokio::select! {
                _ = stop.cancelled() => return self.finish(false),
                _ = tokio::time::sleep(delay) => {}
            }
        }
        let mut ticker = tokio::time::interval_at(Instant::now() + period, period);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
        let mut manual = std::mem::replace(&mut self.manual, mpsc::channel(1).1);
        loop {
            let next = tokio::select! {
                biased;
                _ = stop.cancelled() => return self.finish(false),
                next = self.do_probe() => next,
            };
            if let Next::Exit = next {
                return self.finish(true);
            }
            tokio::select! {
                biased;
                _ = stop.cancelled() => return self.finish(false),
                _ = ticker.tick() => {}
                Some(()) = manual.recv() => {}
            }
        }
    }

    fn finish(&self, for_good: bool) {
        self.inner
            .worker_done(&self.key, self.id, &self.container_id, for_good);
    }

    /// Probes once and records the result (upstream `doProbe`).
    async fn do_probe(&mut self) -> Next {
        let Some((pod, status)) = self.inner.snapshot(&self.key.pod_uid) else {
            return Next::Continue;
        };
        if matches!(status.phase.as_deref(), Some("Succeeded" | "Failed")) {
            return Next::Exit;
        }
        let Some((container, sidecar)) = find_spec(&pod, &self.key.container) else {
            return Next::Exit;
        };
        let Some(spec) = self.key.probe_type.spec(container) else {
            return Next::Exit;
        };
        let Some(cs) = find_status(&status, &self.key.container) else {
            // Not created yet, or removed: wait for news.
            return Next::Continue;
        };
        let container_id = cs.container_id.clone().unwrap_or_default();
        if container_id != self.container_id {
            if !self.container_id.is_empty() {
                self.inner.remove_result(&self.key, &self.container_id);
            }
            self.container_id = container_id.clone();
            let initial = self.key.probe_type.initial();
            self.inner
                .set_result(&self.key, &container_id, initial, None);
            // A new container: probe it again.
            self.on_hold = false;
        }
        if self.on_hold {
            return Next::Continue;
        }

        let state = cs.state.as_ref();
        let Some(running) = state.and_then(|s| s.running.as_ref()) else {
            self.inner
                .set_result(&self.key, &container_id, ProbeResult::Failure, None);
            let terminated = state.and_then(|s| s.terminated.as_ref()).is_some();
            // Stop for good once the container is done and will not be restarted.
            return if !terminated || restarts(&pod, container, sidecar) {
                Next::Continue
            } else {
                Next::Exit
            };
        };

        // Graceful deletion: liveness and startup stop quietly, readiness goes on.
        if pod.metadata.deletion_timestamp.is_some()
            && matches!(
                self.key.probe_type,
                ProbeType::Liveness | ProbeType::Startup
            )
        {
            self.inner
                .set_result(&self.key, &container_id, ProbeResult::Success, None);
            return Next::Exit;
        }

        // No probing during initialDelaySeconds, counted from the container's start.
        let delay = spec.initial_delay_seconds.unwrap_or(0);
        if let Some(started_at) = &running.started_at {
            let since = self.inner.clock.seconds_since(started_at.0);
            if (since.trunc() as i64) < i64::from(delay) {
                return Next::Continue;
            }
        }

        // Liveness and readiness wait for the startup probe; the startup probe stops once it
        // passed (its worker stays for the container's next instance).
        let started = self.inner.is_started(&self.key, &container_id);
        if started == (self.key.probe_type == ProbeType::Startup) {
            return Next::Continue;
        }

        let Ok(result) = self
            .probe(&pod, &status, container, spec, &container_id)
            .await
        else {
            // The prober errored: the result is thrown away.
            return Next::Continue;
        };

        if self.last_result == Some(result) {
            self.result_run += 1;
        } else {
            self.last_result = Some(result);
            self.result_run = 1;
        }
        let failure_threshold = setting(spec.failure_threshold, DEFAULT_FAILURE_THRESHOLD);
        let success_threshold = setting(spec.success_threshold, DEFAULT_SUCCESS_THRESHOLD);
        if (result == ProbeResult::Failure && self.result_run < failure_threshold)
            || (result == ProbeResult::Success && self.result_run < success_threshold)
        {
            return Next::Continue;
        }

        let kills = self.key.probe_type != ProbeType::Readiness && result == ProbeResult::Failure;
        let restart = kills.then(|| kill_message(&pod, container, sidecar, self.key.probe_type));
        self.inner
            .set_result(&self.key, &container_id, result, restart);
        if kills {
            // The container will be killed: hold until a new one shows up.
            self.on_hold = true;
            self.result_run = 0;
        }
        Next::Continue
    }

    async fn probe(
        &self,
        pod: &Pod,
        status: &PodStatus,
        container: &Container,
        spec: &Probe,
        container_id: &str,
    ) -> Result<ProbeResult, ()> {
        let target = super::probe::Target {
            pod,
            container,
            pod_ip: status.pod_ip.as_deref().unwrap_or(""),
            container_id: super::results::container_key(container_id),
        };
        let (result, events) = self
            .inner
            .prober
            .probe(self.key.probe_type, spec, &target)
            .await;
        for (warning, reason, message) in events {
            self.inner.send(super::ProbeEvent::Event {
                pod_uid: self.key.pod_uid.clone(),
                warning,
                reason: reason.to_string(),
                message,
            });
        }
        result
    }
}

/// The container spec by name: an app container, or a sidecar (`true`).
pub(crate) fn find_spec<'a>(pod: &'a Pod, name: &str) -> Option<(&'a Container, bool)> {
    super::probed_containers(pod).find(|(c, _)| c.name == name)
}

/// The container's status with a container ID, among app containers then init containers.
fn find_status<'a>(status: &'a PodStatus, name: &str) -> Option<&'a ContainerStatus> {
    let with_id = |c: &&ContainerStatus| {
        c.name == name && c.container_id.as_deref().is_some_and(|id| !id.is_empty())
    };
    status
        .container_statuses
        .iter()
        .flatten()
        .find(with_id)
        .or_else(|| {
            status
                .init_container_statuses
                .iter()
                .flatten()
                .find(with_id)
        })
}

/// Will the container be started again after it exits (or is killed)?
fn restarts(pod: &Pod, container: &Container, sidecar: bool) -> bool {
    if sidecar {
        return true;
    }
    let policy = container
        .restart_policy
        .as_deref()
        .or_else(|| pod.spec.as_ref().and_then(|s| s.restart_policy.as_deref()))
        .unwrap_or("Always");
    policy != "Never"
}

/// Upstream's message for killing a container that failed its liveness or startup probe.
fn kill_message(pod: &Pod, container: &Container, sidecar: bool, t: ProbeType) -> String {
    let which = if t == ProbeType::Startup {
        "startup"
    } else {
        "liveness"
    };
    if sidecar {
        return format!("Init container {} failed {which} probe", container.name);
    }
    let msg = format!("Container {} failed {which} probe", container.name);
    if restarts(pod, container, false) {
        format!("{msg}, will be restarted")
    } else {
        msg
    }
}

/// A number in [0, 1) that differs between workers and kubelet runs.
fn random_fraction(seed: u64) -> f64 {
    let x = std::collections::hash_map::RandomState::new().hash_one(seed);
    (x >> 11) as f64 / (1u64 << 53) as f64
}
