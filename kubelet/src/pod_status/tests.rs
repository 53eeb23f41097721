use super::*;
use crate::runtime_pod::SandboxInfo;

fn pod(json: serde_json::Value) -> Pod {
    serde_json::from_value(json).unwrap()
}

fn info(name: &str, state: State, exit: i32, created: i64, restarts: i32) -> ContainerInfo {
    ContainerInfo {
        id: format!("{name}-{created}"),
        name: name.into(),
        sandbox_id: "sb".into(),
        restart_count: restarts,
        state,
        created_at: created,
        started_at: created + 1,
        finished_at: if exit >= 0 { created + 2 } else { 0 },
        exit_code: exit.max(0),
        reason: String::new(),
        message: String::new(),
        image: "docker.io/library/busybox:1.36".into(),
        image_ref: "sha256:abc".into(),
        hash: String::new(),
        termination_message_path: String::new(),
    }
}

fn sandbox() -> SandboxInfo {
    SandboxInfo {
        id: "sb".into(),
        attempt: 0,
        ready: true,
        created_at: 1,
        ip: Some("10.244.0.7".into()),
        additional_ips: vec![],
    }
}

fn inputs<'a>(
    waiting: &'a HashMap<String, Waiting>,
    yes: &'a dyn Fn(&str, &str) -> bool,
) -> StatusInputs<'a> {
    StatusInputs {
        host_ip: "127.0.0.1",
        waiting,
        ready: yes,
        started: yes,
        start_time: None,
        failed: None,
        known_pod_ips: &[],
    }
}

fn condition<'a>(s: &'a PodStatus, t: &str) -> &'a PodCondition {
    s.conditions
        .as_ref()
        .unwrap()
        .iter()
        .find(|c| c.type_ == t)
        .unwrap()
}

#[test]
fn running_pod_is_ready_with_its_ip() {
    let p = pod(serde_json::json!({"metadata": {"name": "p", "uid": "u"},
        "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]},
        "status": {"conditions": [{"type": "PodScheduled", "status": "True"}]}}));
    let rp = RuntimePod {
        sandboxes: vec![sandbox()],
        containers: vec![info("c", State::Running, -1, 10, 0)],
    };
    let w = HashMap::new();
    let yes = |_: &str, _: &str| true;
    let s = generate(&p, &rp, &inputs(&w, &yes));
    assert_eq!(s.phase.as_deref(), Some("Running"));
    assert_eq!(s.pod_ip.as_deref(), Some("10.244.0.7"));
    assert_eq!(condition(&s, "Ready").status, "True");
    assert_eq!(condition(&s, "PodScheduled").status, "True", "kept");
    let cs = &s.container_statuses.as_ref().unwrap()[0];
    assert!(cs.ready);
    assert_eq!(cs.container_id.as_deref(), Some("containerd://c-10"));
    assert_eq!(s.qos_class.as_deref(), Some("BestEffort"));
}

#[test]
fn crash_loop_is_waiting_with_the_last_exit() {
    let p = pod(
        serde_json::json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}]}}),
    );
    let rp = RuntimePod {
        sandboxes: vec![sandbox()],
        containers: vec![
            info("c", State::Exited, 1, 20, 1),
            info("c", State::Exited, 1, 10, 0),
        ],
    };
    let w = HashMap::from([(
        "c".to_string(),
        Waiting {
            reason: "CrashLoopBackOff".into(),
            message: "back-off 10s".into(),
        },
    )]);
    let yes = |_: &str, _: &str| true;
    let s = generate(&p, &rp, &inputs(&w, &yes));
    let cs = &s.container_statuses.as_ref().unwrap()[0];
    assert_eq!(
        cs.state
            .as_ref()
            .unwrap()
            .waiting
            .as_ref()
            .unwrap()
            .reason
            .as_deref(),
        Some("CrashLoopBackOff")
    );
    assert_eq!(
        cs.last_state
            .as_ref()
            .unwrap()
            .terminated
            .as_ref()
            .unwrap()
            .exit_code,
        1
    );
    assert_eq!(cs.restart_count, 1);
    assert_eq!(
        s.phase.as_deref(),
        Some("Running"),
        "restartPolicy Always keeps a crashing pod Running"
    );
    assert_eq!(
        condition(&s, "Ready").message.as_deref(),
        Some("containers with unready status: [c]")
    );
}

#[test]
fn never_restart_pods_finish() {
    let p = pod(
        serde_json::json!({"metadata": {"name": "p"}, "spec": {"restartPolicy": "Never",
        "containers": [{"name": "a"}, {"name": "b"}]}}),
    );
    let w = HashMap::new();
    let yes = |_: &str, _: &str| true;
    let ok = RuntimePod {
        sandboxes: vec![sandbox()],
        containers: vec![
            info("a", State::Exited, 0, 10, 0),
            info("b", State::Exited, 0, 11, 0),
        ],
    };
    let s = generate(&p, &ok, &inputs(&w, &yes));
    assert_eq!(s.phase.as_deref(), Some("Succeeded"));
    assert_eq!(
        condition(&s, "Ready").reason.as_deref(),
        Some("PodCompleted")
    );
    let bad = RuntimePod {
        sandboxes: vec![sandbox()],
        containers: vec![
            info("a", State::Exited, 0, 10, 0),
            info("b", State::Exited, 2, 11, 0),
        ],
    };
    assert_eq!(
        generate(&p, &bad, &inputs(&w, &yes)).phase.as_deref(),
        Some("Failed")
    );
}

#[test]
fn init_containers_gate_the_app() {
    let p = pod(serde_json::json!({"metadata": {"name": "p"}, "spec": {
        "initContainers": [{"name": "i1"}, {"name": "i2"}], "containers": [{"name": "c"}]}}));
    let rp = RuntimePod {
        sandboxes: vec![sandbox()],
        containers: vec![
            info("i1", State::Exited, 0, 10, 0),
            info("i2", State::Running, -1, 11, 0),
        ],
    };
    let w = HashMap::new();
    let yes = |_: &str, _: &str| true;
    let s = generate(&p, &rp, &inputs(&w, &yes));
    assert_eq!(s.phase.as_deref(), Some("Pending"));
    assert_eq!(
        condition(&s, "Initialized").message.as_deref(),
        Some("containers with incomplete status: [i2]")
    );
    let cs = &s.container_statuses.as_ref().unwrap()[0];
    assert_eq!(
        cs.state
            .as_ref()
            .unwrap()
            .waiting
            .as_ref()
            .unwrap()
            .reason
            .as_deref(),
        Some("PodInitializing")
    );
}

#[test]
fn qos_classes() {
    let g = pod(
        serde_json::json!({"spec": {"containers": [{"name": "c", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]}}),
    );
    assert_eq!(qos_class(&g), "Guaranteed");
    let b = pod(
        serde_json::json!({"spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "1"}}}]}}),
    );
    assert_eq!(qos_class(&b), "Burstable");
}
