//! Worker timing tests on tokio's paused clock, with exec probes answered by a fake runner.

use super::*;
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStatus, ExecAction,
    PodSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use tokio::time::Instant;

struct Call {
    at: Duration,
    container_id: String,
    cmd: String,
}

/// Exit codes by command name (0 unless set); records every call.
struct Fake {
    start: Instant,
    exit: Mutex<HashMap<String, i32>>,
    calls: Mutex<Vec<Call>>,
}

impl Fake {
    fn new() -> Arc<Fake> {
        Arc::new(Fake {
            start: Instant::now(),
            exit: Mutex::new(HashMap::new()),
            calls: Mutex::new(Vec::new()),
        })
    }
    fn set(&self, cmd: &str, code: i32) {
        self.exit.lock().unwrap().insert(cmd.to_string(), code);
    }
    /// When `cmd` ran, in seconds since the test started.
    fn times(&self, cmd: &str) -> Vec<u64> {
        let calls = self.calls.lock().unwrap();
        calls
            .iter()
            .filter(|c| c.cmd == cmd)
            .map(|c| c.at.as_secs())
            .collect()
    }
    fn containers(&self, cmd: &str) -> Vec<String> {
        let calls = self.calls.lock().unwrap();
        calls
            .iter()
            .filter(|c| c.cmd == cmd)
            .map(|c| c.container_id.clone())
            .collect()
    }
}

impl CommandRunner for Fake {
    fn run_in_container<'a>(
        &'a self,
        container_id: &'a str,
        cmd: &'a [String],
        _timeout: Duration,
    ) -> BoxFuture<'a, Result<ExecOutput, ExecError>> {
        let name = cmd.first().cloned().unwrap_or_default();
        let code = self.exit.lock().unwrap().get(&name).copied().unwrap_or(0);
        self.calls.lock().unwrap().push(Call {
            at: self.start.elapsed(),
            container_id: container_id.to_string(),
            cmd: name.clone(),
        });
        Box::pin(async move {
            Ok(ExecOutput {
                exit_code: code,
                stdout: format!("{name} exited {code}").into_bytes(),
                stderr: vec![],
            })
        })
    }
}

fn exec_probe(cmd: &str, delay: i32, period: i32, success: i32, failure: i32) -> Probe {
    Probe {
        exec: Some(ExecAction {
            command: Some(vec![cmd.to_string()]),
        }),
        initial_delay_seconds: Some(delay),
        period_seconds: Some(period),
        success_threshold: Some(success),
        failure_threshold: Some(failure),
        timeout_seconds: Some(1),
        ..Default::default()
    }
}

fn app(name: &str) -> Container {
    Container {
        name: name.to_string(),
        ..Default::default()
    }
}

fn pod(containers: Vec<Container>, init: Vec<Container>, restart: &str) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some("web".into()),
            namespace: Some("default".into()),
            uid: Some("uid-1".into()),
            ..Default::default()
        },
        spec: Some(PodSpec {
            containers,
            init_containers: Some(init),
            restart_policy: Some(restart.to_string()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn running(name: &str, id: &str, started: jiff::Timestamp) -> ContainerStatus {
    ContainerStatus {
        name: name.to_string(),
        container_id: Some(format!("containerd://{id}")),
        state: Some(ContainerState {
            running: Some(ContainerStateRunning {
                started_at: Some(Time(started)),
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn status(containers: Vec<ContainerStatus>) -> PodStatus {
    PodStatus {
        phase: Some("Running".into()),
        pod_ip: Some("10.0.0.2".into()),
        container_statuses: Some(containers),
        ..Default::default()
    }
}

fn manager(fake: &Arc<Fake>) -> (ProbeManager, mpsc::UnboundedReceiver<ProbeEvent>) {
    let (tx, rx) = mpsc::unbounded_channel();
    (ProbeManager::build(fake.clone(), tx, false), rx)
}

fn drain(rx: &mut mpsc::UnboundedReceiver<ProbeEvent>) -> Vec<ProbeEvent> {
    let mut out = vec![];
    while let Ok(e) = rx.try_recv() {
        out.push(e);
    }
    out
}

/// Sleeps until `secs` (plus a little) after the test started.
async fn at(fake: &Fake, secs: f64) {
    tokio::time::sleep_until(fake.start + Duration::from_secs_f64(secs + 0.1)).await;
}

impl ProbeManager {
    /// The cached result, without the side effects of `is_ready`.
    fn result(&self, t: ProbeType, container_id: &str) -> Option<ProbeResult> {
        self.inner.lock().results[t.index()].get(container_id)
    }
}

const C1: &str = "containerd://c1";

#[tokio::test(start_paused = true)]
async fn readiness_starts_false_and_follows_its_thresholds() {
    let fake = Fake::new();
    let (m, mut rx) = manager(&fake);
    let mut c = app("app");
    c.readiness_probe = Some(exec_probe("ready", 0, 10, 2, 3));
    let p = pod(vec![c], vec![], "Always");
    m.update_pod(&p, &status(vec![running("app", "c1", m.clock().now())]));

    at(&fake, 0.0).await;
    assert_eq!(fake.times("ready"), vec![0]);
    assert_eq!(
        m.result(ProbeType::Readiness, C1),
        Some(ProbeResult::Failure)
    );
    assert_eq!(
        drain(&mut rx),
        vec![ProbeEvent::StatusChanged {
            pod_uid: "uid-1".into()
        }]
    );
    // The second success in a row makes it ready.
    at(&fake, 10.0).await;
    assert_eq!(
        m.result(ProbeType::Readiness, C1),
        Some(ProbeResult::Success)
    );
    assert!(m.is_ready("uid-1", "app", C1));
    assert_eq!(drain(&mut rx).len(), 1);

    // Three failures in a row make it unready again, each with an Unhealthy event.
    fake.set("ready", 1);
    at(&fake, 30.0).await;
    assert_eq!(
        m.result(ProbeType::Readiness, C1),
        Some(ProbeResult::Success)
    );
    at(&fake, 40.0).await;
    assert_eq!(
        m.result(ProbeType::Readiness, C1),
        Some(ProbeResult::Failure)
    );
    assert!(!m.is_ready("uid-1", "app", C1));
    let events = drain(&mut rx);
    let unhealthy: Vec<_> = events
        .iter()
        .filter(|e| matches!(e, ProbeEvent::Event { reason, .. } if reason == "Unhealthy"))
        .collect();
    assert_eq!(unhealthy.len(), 3);
    assert_eq!(
        unhealthy[0],
        &ProbeEvent::Event {
            pod_uid: "uid-1".into(),
            warning: true,
            reason: "Unhealthy".into(),
            message: "Readiness probe failed: ready exited 1".into(),
        }
    );
    assert!(events.contains(&ProbeEvent::StatusChanged {
        pod_uid: "uid-1".into()
    }));
    assert_eq!(fake.times("ready"), vec![0, 10, 20, 30, 40]);
    assert_eq!(fake.containers("ready")[0], "c1");
}

#[tokio::test(start_paused = true)]
async fn asking_for_readiness_triggers_a_probe() {
    let fake = Fake::new();
    let (m, _rx) = manager(&fake);
    let mut c = app("app");
    c.readiness_probe = Some(exec_probe("ready", 0, 60, 1, 3));
    fake.set("ready", 1);
    let p = pod(vec![c], vec![], "Always");
    m.update_pod(&p, &status(vec![running("app", "c1", m.clock().now())]));
    at(&fake, 1.0).await;
    assert_eq!(fake.times("ready"), vec![0]);
    fake.set("ready", 0);
    assert!(!m.is_ready("uid-1", "app", C1));
    at(&fake, 2.0).await;
    assert_eq!(fake.times("ready"), vec![0, 1]);
    assert!(m.is_ready("uid-1", "app", C1));
}

#[tokio::test(start_paused = true)]
async fn initial_delay_counts_from_the_container_start() {
    let fake = Fake::new();
    let (m, _rx) = manager(&fake);
    let mut a = app("a");
    a.liveness_probe = Some(exec_probe("live-a", 15, 10, 1, 3));
    let mut b = app("b");
    b.liveness_probe = Some(exec_probe("live-b", 15, 10, 1, 3));
    let p = pod(vec![a, b], vec![], "Always");
    let now = m.clock().now();
    let eight_ago = now - jiff::SignedDuration::from_secs(8);
    m.update_pod(
        &p,
        &status(vec![running("a", "ca", now), running("b", "cb", eight_ago)]),
    );
    at(&fake, 35.0).await;
    // Started now: 0 and 10 s are too early. Started 8 s before: 10 s is 18 s after start.
    assert_eq!(fake.times("live-a"), vec![20, 30]);
    assert_eq!(fake.times("live-b"), vec![10, 20, 30]);
}

#[tokio::test(start_paused = true)]
async fn startup_probe_gates_liveness_and_readiness() {
    let fake = Fake::new();
    let (m, mut rx) = manager(&fake);
    let mut c = app("app");
    c.startup_probe = Some(exec_probe("start", 0, 10, 1, 10));
    c.liveness_probe = Some(exec_probe("live", 0, 10, 1, 3));
    c.readiness_probe = Some(exec_probe("ready", 0, 10, 1, 3));
    fake.set("start", 1);
    let p = pod(vec![c], vec![], "Always");
    m.update_pod(&p, &status(vec![running("app", "c1", m.clock().now())]));

    at(&fake, 25.0).await;
    assert_eq!(fake.times("start"), vec![0, 10, 20]);
    assert!(fake.times("live").is_empty());
    assert!(fake.times("ready").is_empty());
    assert!(!m.is_started("uid-1", "app", C1));
    assert!(!m.is_ready("uid-1", "app", C1));
    drain(&mut rx);

    fake.set("start", 0);
    at(&fake, 30.0).await;
    assert!(m.is_started("uid-1", "app", C1));
    assert!(drain(&mut rx).contains(&ProbeEvent::StatusChanged {
        pod_uid: "uid-1".into()
    }));
    at(&fake, 55.0).await;
    // Once started, the startup probe stops and the others run.
    assert_eq!(fake.times("start"), vec![0, 10, 20, 30]);
    assert!(fake.times("live").len() >= 2, "{:?}", fake.times("live"));
    assert!(fake.times("ready").len() >= 2);
    assert!(m.is_ready("uid-1", "app", C1));
}

#[tokio::test(start_paused = true)]
async fn startup_failure_restarts_like_liveness_and_new_containers_start_over() {
    let fake = Fake::new();
    let (m, mut rx) = manager(&fake);
    let mut c = app("app");
    c.startup_probe = Some(exec_probe("start", 0, 10, 1, 3));
    fake.set("start", 1);
    let p = pod(vec![c], vec![], "Always");
    m.update_pod(&p, &status(vec![running("app", "c1", m.clock().now())]));

    at(&fake, 50.0).await;
    // Three failures, then on hold until a new container shows up.
    assert_eq!(fake.times("start"), vec![0, 10, 20]);
    assert_eq!(m.result(ProbeType::Startup, C1), Some(ProbeResult::Failure));
    assert!(m.failed_liveness(C1));
    let restarts: Vec<_> = drain(&mut rx)
        .into_iter()
        .filter(|e| matches!(e, ProbeEvent::Restart { .. }))
        .collect();
    assert_eq!(
        restarts,
        vec![ProbeEvent::Restart {
            pod_uid: "uid-1".into(),
            container: "app".into(),
            container_id: C1.into(),
            message: "Container app failed startup probe, will be restarted".into(),
        }]
    );

    m.update_pod(&p, &status(vec![running("app", "c2", m.clock().now())]));
    at(&fake, 60.0).await;
    assert_eq!(fake.times("start"), vec![0, 10, 20, 60]);
    assert_eq!(fake.containers("start")[3], "c2");
    // The old container's result is gone; the new one is probing.
    assert_eq!(m.result(ProbeType::Startup, C1), None);
    assert_eq!(
        m.result(ProbeType::Startup, "containerd://c2"),
        Some(ProbeResult::Unknown)
    );
    assert!(!m.failed_liveness(C1));
}

#[tokio::test(start_paused = true)]
async fn liveness_failure_asks_for_a_kill_once() {
    let fake = Fake::new();
    let (m, mut rx) = manager(&fake);
    let mut c = app("app");
    c.liveness_probe = Some(exec_probe("live", 0, 10, 1, 2));
    let p = pod(vec![c], vec![], "Never");
    m.update_pod(&p, &status(vec![running("app", "c1", m.clock().now())]));
    at(&fake, 15.0).await;
    assert_eq!(
        m.result(ProbeType::Liveness, C1),
        Some(ProbeResult::Success)
    );
    // Liveness results do not regenerate the status.
    assert!(drain(&mut rx).is_empty());

    fake.set("live", 1);
    at(&fake, 45.0).await;
    assert_eq!(fake.times("live"), vec![0, 10, 20, 30]);
    let events = drain(&mut rx);
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, ProbeEvent::Event { message, .. } if message == "Liveness probe failed: live exited 1"))
            .count(),
        2
    );
    assert!(events.contains(&ProbeEvent::Restart {
        pod_uid: "uid-1".into(),
        container: "app".into(),
        container_id: C1.into(),
        message: "Container app failed liveness probe".into(),
    }));
    assert!(m.failed_liveness("c1"));
}

#[tokio::test(start_paused = true)]
async fn sidecars_are_probed_like_app_containers() {
    let fake = Fake::new();
    let (m, mut rx) = manager(&fake);
    let mut side = app("side");
    side.restart_policy = Some("Always".into());
    side.liveness_probe = Some(exec_probe("side-live", 0, 10, 1, 1));
    let mut plain_init = app("init");
    plain_init.liveness_probe = Some(exec_probe("init-live", 0, 10, 1, 1));
    let p = pod(vec![app("app")], vec![plain_init, side], "Always");
    let mut st = status(vec![]);
    st.init_container_statuses = Some(vec![running("side", "s1", m.clock().now())]);
    fake.set("side-live", 1);
    m.update_pod(&p, &st);
    assert_eq!(m.worker_count(), 1);
    at(&fake, 1.0).await;
    assert!(drain(&mut rx).contains(&ProbeEvent::Restart {
        pod_uid: "uid-1".into(),
        container: "side".into(),
        container_id: "containerd://s1".into(),
        message: "Init container side failed liveness probe".into(),
    }));
    assert!(fake.times("init-live").is_empty());
    // Containers without probes need no worker and are ready once running.
    assert!(m.is_ready("uid-1", "app", "containerd://a1"));
    assert!(m.is_started("uid-1", "app", "containerd://a1"));
}

#[tokio::test(start_paused = true)]
async fn workers_stop_with_the_pod() {
    let fake = Fake::new();
    let (m, _rx) = manager(&fake);
    let mut c = app("app");
    c.liveness_probe = Some(exec_probe("live", 0, 10, 1, 3));
    c.readiness_probe = Some(exec_probe("ready", 0, 10, 1, 3));
    let p = pod(vec![c], vec![], "Always");
    m.update_pod(&p, &status(vec![running("app", "c1", m.clock().now())]));
    at(&fake, 5.0).await;
    assert_eq!(m.worker_count(), 2);
    m.remove_pod("uid-1");
    at(&fake, 40.0).await;
    assert_eq!(m.worker_count(), 0);
    assert_eq!(fake.times("live"), vec![0]);
    assert_eq!(m.result(ProbeType::Readiness, C1), None);
}

#[tokio::test(start_paused = true)]
async fn terminal_pods_and_finished_containers_end_their_workers() {
    let fake = Fake::new();
    let (m, _rx) = manager(&fake);
    let mut c = app("app");
    c.readiness_probe = Some(exec_probe("ready", 0, 10, 1, 3));
    let p = pod(vec![c], vec![], "Never");
    m.update_pod(&p, &status(vec![running("app", "c1", m.clock().now())]));
    at(&fake, 5.0).await;
    assert_eq!(m.worker_count(), 1);

    // The container exited and will not be restarted: the worker ends for good.
    let mut done = running("app", "c1", m.clock().now());
    done.state = Some(ContainerState {
        terminated: Some(ContainerStateTerminated {
            exit_code: 0,
            ..Default::default()
        }),
        ..Default::default()
    });
    m.update_pod(&p, &status(vec![done.clone()]));
    at(&fake, 15.0).await;
    assert_eq!(m.worker_count(), 0);
    m.update_pod(&p, &status(vec![done]));
    assert_eq!(m.worker_count(), 0);

    // A terminal pod gets no workers.
    let mut other = p.clone();
    other.metadata.uid = Some("uid-2".into());
    let mut st = status(vec![]);
    st.phase = Some("Succeeded".into());
    m.update_pod(&other, &st);
    assert_eq!(m.worker_count(), 0);
}

#[tokio::test(start_paused = true)]
async fn deletion_quiets_liveness_but_not_readiness() {
    let fake = Fake::new();
    let (m, _rx) = manager(&fake);
    let mut c = app("app");
    c.liveness_probe = Some(exec_probe("live", 0, 10, 1, 1));
    c.readiness_probe = Some(exec_probe("ready", 0, 10, 1, 3));
    let mut p = pod(vec![c], vec![], "Always");
    let st = status(vec![running("app", "c1", m.clock().now())]);
    m.update_pod(&p, &st);
    at(&fake, 5.0).await;
    p.metadata.deletion_timestamp = Some(Time(m.clock().now()));
    fake.set("live", 1);
    m.update_pod(&p, &st);
    at(&fake, 25.0).await;
    assert_eq!(fake.times("live"), vec![0]);
    assert_eq!(fake.times("ready"), vec![0, 10, 20]);
    assert_eq!(m.worker_count(), 1);
    assert!(!m.failed_liveness(C1));
}

#[tokio::test(start_paused = true)]
async fn first_probes_are_spread_over_a_period_after_start() {
    let fake = Fake::new();
    let (tx, _rx) = mpsc::unbounded_channel();
    let m = ProbeManager::build(fake.clone(), tx, true);
    let mut c = app("app");
    c.liveness_probe = Some(exec_probe("live", 0, 10, 1, 3));
    let p = pod(vec![c], vec![], "Always");
    m.update_pod(&p, &status(vec![running("app", "c1", m.clock().now())]));
    at(&fake, 30.0).await;
    let times = fake.times("live");
    assert_eq!(times.len(), 3, "{times:?}");
    assert!(times[0] < 10 && times[1] == times[0] + 10);
}
