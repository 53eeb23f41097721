//! The probe manager: liveness, readiness and startup probes of the containers (and sidecars) of
//! the pods on this node (upstream `pkg/kubelet/prober/prober_manager.go`). One worker task per
//! container probe; results are cached per container ID and read back for status generation.

mod exec;
mod grpc;
pub(crate) mod http;
pub(crate) mod probe;
mod results;
mod tcp;
mod worker;

#[cfg(test)]
mod worker_tests;

pub use exec::{CommandRunner, ExecError, ExecOutput};

use k8s_openapi::api::core::v1::{Container, Pod, PodStatus, Probe};
use results::{Cache, ProbeResult};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// What the probe manager tells the kubelet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeEvent {
    /// A probe result changed: the pod's status must be regenerated.
    StatusChanged { pod_uid: String },
    /// Liveness (or startup) failed past its threshold: the kubelet must kill the container
    /// and restart it as its restart policy says. `message` is upstream's kill message
    /// ("Container <name> failed liveness probe, will be restarted").
    Restart {
        pod_uid: String,
        container: String,
        container_id: String,
        message: String,
    },
    /// An event to record on the pod (`Unhealthy`, `ProbeWarning`).
    Event {
        pod_uid: String,
        warning: bool,
        reason: String,
        message: String,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum ProbeType {
    Liveness,
    Readiness,
    Startup,
}

impl ProbeType {
    /// As upstream prints it in events ("Liveness probe failed: ...").
    pub(crate) fn name(self) -> &'static str {
        match self {
            ProbeType::Liveness => "Liveness",
            ProbeType::Readiness => "Readiness",
            ProbeType::Startup => "Startup",
        }
    }

    pub(crate) fn spec(self, c: &Container) -> Option<&Probe> {
        match self {
            ProbeType::Liveness => c.liveness_probe.as_ref(),
            ProbeType::Readiness => c.readiness_probe.as_ref(),
            ProbeType::Startup => c.startup_probe.as_ref(),
        }
    }

    fn index(self) -> usize {
        match self {
            ProbeType::Liveness => 0,
            ProbeType::Readiness => 1,
            ProbeType::Startup => 2,
        }
    }

    /// The result a new container starts with: not ready, alive, not started.
    pub(crate) fn initial(self) -> ProbeResult {
        match self {
            ProbeType::Liveness => ProbeResult::Success,
            ProbeType::Readiness => ProbeResult::Failure,
            ProbeType::Startup => ProbeResult::Unknown,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct ProbeKey {
    pub(crate) pod_uid: String,
    pub(crate) container: String,
    pub(crate) probe_type: ProbeType,
}

/// Wall-clock time as the workers see it: the wall clock at creation plus tokio's monotonic
/// time since, so that initialDelaySeconds follows tokio's (pausable) clock in tests.
#[derive(Clone, Copy)]
pub(crate) struct Clock {
    wall: jiff::Timestamp,
    mono: tokio::time::Instant,
}

impl Clock {
    fn new() -> Clock {
        Clock {
            wall: jiff::Timestamp::now(),
            mono: tokio::time::Instant::now(),
        }
    }

    #[cfg(test)]
    pub(crate) fn now(&self) -> jiff::Timestamp {
        jiff::SignedDuration::try_from(self.mono.elapsed())
            .ok()
            .and_then(|d| self.wall.checked_add(d).ok())
            .unwrap_or(self.wall)
    }

    /// Seconds elapsed since `t` (negative when `t` is in the future).
    pub(crate) fn seconds_since(&self, t: jiff::Timestamp) -> f64 {
        self.wall.duration_since(t).as_secs_f64() + self.mono.elapsed().as_secs_f64()
    }

    pub(crate) fn since_start(&self) -> Duration {
        self.mono.elapsed()
    }
}

/// Runs the probes of the pods on this node; cheap to clone.
#[derive(Clone)]
pub struct ProbeManager {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) prober: probe::Prober,
    pub(crate) events: mpsc::UnboundedSender<ProbeEvent>,
    pub(crate) clock: Clock,
    /// Spread the first probes over one period while the kubelet has just started.
    pub(crate) jitter: bool,
    runtime: Option<tokio::runtime::Handle>,
    next_worker: AtomicU64,
    state: Mutex<State>,
}

#[derive(Default)]
pub(crate) struct State {
    pods: HashMap<String, PodEntry>,
    workers: HashMap<ProbeKey, WorkerHandle>,
    results: [Cache; 3],
}

struct PodEntry {
    pod: Arc<Pod>,
    status: Arc<PodStatus>,
    /// Probes whose worker ended for good (pod terminal, container done, pod deleting).
    finished: HashSet<(String, ProbeType)>,
}

struct WorkerHandle {
    id: u64,
    stop: CancellationToken,
    trigger: mpsc::Sender<()>,
}

/// The containers that may have probe workers: app containers and sidecars
/// (init containers with restartPolicy Always).
pub(crate) fn probed_containers(pod: &Pod) -> impl Iterator<Item = (&Container, bool)> {
    let spec = pod.spec.as_ref();
    let apps = spec.into_iter().flat_map(|s| s.containers.iter());
    let sidecars = spec
        .into_iter()
        .flat_map(|s| s.init_containers.iter().flatten())
        .filter(|c| is_sidecar(c));
    apps.map(|c| (c, false)).chain(sidecars.map(|c| (c, true)))
}

pub(crate) fn is_sidecar(c: &Container) -> bool {
    c.restart_policy.as_deref() == Some("Always")
}

impl ProbeManager {
    /// Exec probes run through the CRI's ExecSync.
    pub fn new(runtime: crate::cri::Runtime, events: mpsc::UnboundedSender<ProbeEvent>) -> Self {
        Self::with_runner(Arc::new(runtime), events)
    }

    /// A manager whose exec probes run through `runner` (a fake in tests).
    pub fn with_runner(
        runner: Arc<dyn CommandRunner>,
        events: mpsc::UnboundedSender<ProbeEvent>,
    ) -> Self {
        Self::build(runner, events, true)
    }

    pub(crate) fn build(
        runner: Arc<dyn CommandRunner>,
        events: mpsc::UnboundedSender<ProbeEvent>,
        jitter: bool,
    ) -> Self {
        ProbeManager {
            inner: Arc::new(Inner {
                prober: probe::Prober::new(runner),
                events,
                clock: Clock::new(),
                jitter,
                runtime: tokio::runtime::Handle::try_current().ok(),
                next_worker: AtomicU64::new(1),
                state: Mutex::new(State::default()),
            }),
        }
    }

    /// Records the pod and its current status (containerStatuses with containerID,
    /// state.running.startedAt; podIP) and starts workers for probes that have none yet.
    /// Call it when a pod is added (an empty status is fine) and after every sync.
    pub fn update_pod(&self, pod: &Pod, status: &PodStatus) {
        let Some(uid) = pod.metadata.uid.clone().filter(|u| !u.is_empty()) else {
            return;
        };
        let terminal = matches!(status.phase.as_deref(), Some("Succeeded" | "Failed"));
        let Some(rt) = tokio::runtime::Handle::try_current()
            .ok()
            .or_else(|| self.inner.runtime.clone())
        else {
            tracing::error!(pod = %uid, "no tokio runtime to run probe workers on");
            return;
        };
        let mut spawn = Vec::new();
        {
            let mut st = self.inner.lock();
            let State { pods, workers, .. } = &mut *st;
            let entry = pods.entry(uid.clone()).or_insert_with(|| PodEntry {
                pod: Arc::new(Pod::default()),
                status: Arc::new(PodStatus::default()),
                finished: HashSet::new(),
            });
            entry.pod = Arc::new(pod.clone());
            entry.status = Arc::new(status.clone());
            if !terminal {
                for (c, _) in probed_containers(pod) {
                    for t in [
                        ProbeType::Startup,
                        ProbeType::Readiness,
                        ProbeType::Liveness,
                    ] {
                        if t.spec(c).is_none() || entry.finished.contains(&(c.name.clone(), t)) {
                            continue;
                        }
                        let key = ProbeKey {
                            pod_uid: uid.clone(),
                            container: c.name.clone(),
                            probe_type: t,
                        };
                        if workers.contains_key(&key) {
                            continue;
                        }
                        let id = self.inner.next_worker.fetch_add(1, Ordering::Relaxed);
                        let stop = CancellationToken::new();
                        let (trigger, manual) = mpsc::channel(1);
                        workers.insert(
                            key.clone(),
                            WorkerHandle {
                                id,
                                stop: stop.clone(),
                                trigger,
                            },
                        );
                        spawn.push(worker::Worker::new(
                            self.inner.clone(),
                            id,
                            key,
                            stop,
                            manual,
                        ));
                    }
                }
            }
        }
        for w in spawn {
            rt.spawn(w.run());
        }
    }

    /// Stops the pod's workers and forgets the pod.
    pub fn remove_pod(&self, pod_uid: &str) {
        let mut st = self.inner.lock();
        st.pods.remove(pod_uid);
        st.workers.retain(|k, h| {
            let keep = k.pod_uid != pod_uid;
            if !keep {
                h.stop.cancel();
            }
            keep
        });
    }

    /// Is the running container ready? False until its startup probe passed; then true when
    /// its last readiness result is success, or when it has no readiness probe. Asking about a
    /// container whose readiness probe has not passed triggers an immediate probe, as upstream.
    pub fn is_ready(&self, pod_uid: &str, container: &str, container_id: &str) -> bool {
        let st = self.inner.lock();
        if !started(&st, pod_uid, container, container_id) {
            return false;
        }
        if st.results[ProbeType::Readiness.index()].get(container_id) == Some(ProbeResult::Success)
        {
            return true;
        }
        let key = ProbeKey {
            pod_uid: pod_uid.to_string(),
            container: container.to_string(),
            probe_type: ProbeType::Readiness,
        };
        match st.workers.get(&key) {
            Some(w) => {
                let _ = w.trigger.try_send(());
                false
            }
            None => true,
        }
    }

    /// Has the running container started (its startup probe passed, or it has none)?
    pub fn is_started(&self, pod_uid: &str, container: &str, container_id: &str) -> bool {
        started(&self.inner.lock(), pod_uid, container, container_id)
    }

    /// Did this container fail its liveness or startup probe (so it must be killed)? The
    /// `Restart` event says the same once; this lets a sync that missed it catch up.
    pub fn failed_liveness(&self, container_id: &str) -> bool {
        let st = self.inner.lock();
        [ProbeType::Liveness, ProbeType::Startup]
            .iter()
            .any(|t| st.results[t.index()].get(container_id) == Some(ProbeResult::Failure))
    }

    #[cfg(test)]
    pub(crate) fn worker_count(&self) -> usize {
        self.inner.lock().workers.len()
    }

    #[cfg(test)]
    pub(crate) fn clock(&self) -> Clock {
        self.inner.clock
    }
}

fn started(st: &State, pod_uid: &str, container: &str, container_id: &str) -> bool {
    if let Some(r) = st.results[ProbeType::Startup.index()].get(container_id) {
        return r == ProbeResult::Success;
    }
    // A startup probe that has not run yet means not started; no startup probe means started.
    !st.workers.contains_key(&ProbeKey {
        pod_uid: pod_uid.to_string(),
        container: container.to_string(),
        probe_type: ProbeType::Startup,
    })
}

impl Inner {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn send(&self, ev: ProbeEvent) {
        let _ = self.events.send(ev);
    }

    /// The latest pod and status recorded for `pod_uid`.
    pub(crate) fn snapshot(&self, pod_uid: &str) -> Option<(Arc<Pod>, Arc<PodStatus>)> {
        let st = self.lock();
        st.pods
            .get(pod_uid)
            .map(|e| (e.pod.clone(), e.status.clone()))
    }

    pub(crate) fn is_started(&self, key: &ProbeKey, container_id: &str) -> bool {
        started(&self.lock(), &key.pod_uid, &key.container, container_id)
    }

    /// Caches a result; on a change, readiness and startup results ask for a status update,
    /// and a failed liveness/startup probe with `restart` set asks for a restart.
    pub(crate) fn set_result(
        &self,
        key: &ProbeKey,
        container_id: &str,
        result: ProbeResult,
        restart: Option<String>,
    ) {
        let changed = self.lock().results[key.probe_type.index()].set(container_id, result);
        if !changed {
            return;
        }
        if key.probe_type != ProbeType::Liveness {
            self.send(ProbeEvent::StatusChanged {
                pod_uid: key.pod_uid.clone(),
            });
        }
        if let (Some(message), ProbeResult::Failure) = (restart, result) {
            self.send(ProbeEvent::Restart {
                pod_uid: key.pod_uid.clone(),
                container: key.container.clone(),
                container_id: container_id.to_string(),
                message,
            });
        }
    }

    pub(crate) fn remove_result(&self, key: &ProbeKey, container_id: &str) {
        self.lock().results[key.probe_type.index()].remove(container_id);
    }

    /// Called by a worker as it ends: forgets its result and itself; a worker that ended on
    /// its own is not started again for this pod.
    pub(crate) fn worker_done(&self, key: &ProbeKey, id: u64, container_id: &str, for_good: bool) {
        let mut st = self.lock();
        if !container_id.is_empty() {
            st.results[key.probe_type.index()].remove(container_id);
        }
        if st.workers.get(key).map(|h| h.id) == Some(id) {
            st.workers.remove(key);
        }
        if for_good && let Some(p) = st.pods.get_mut(&key.pod_uid) {
            p.finished.insert((key.container.clone(), key.probe_type));
        }
    }
}
