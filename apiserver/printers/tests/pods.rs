//! Pod rows for realistic pods: running, initializing, crash-looping, terminating,
//! completed, sidecars, scheduling gates and readiness gates.

use apiserver_printers::TablePrinter;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use serde_json::{Value, json};

fn now() -> Timestamp {
    "2024-06-01T12:00:00Z".parse().unwrap()
}

fn pod(v: Value) -> Pod {
    serde_json::from_value(v).unwrap()
}

/// Name, Ready, Status, Restarts, Age.
fn main_cells(p: &Pod) -> Vec<Value> {
    let cells = p.cells(now());
    assert_eq!(cells.len(), Pod::columns().unwrap().len());
    cells[..5].to_vec()
}

fn status(p: &Pod) -> String {
    p.cells(now())[2].as_str().unwrap().to_string()
}

fn meta(name: &str) -> Value {
    json!({"name": name, "namespace": "default", "creationTimestamp": "2024-06-01T11:55:00Z"})
}

#[test]
fn running_pod_with_wide_cells() {
    let p = pod(json!({
        "metadata": meta("web-7d9f"),
        "spec": {"nodeName": "node-1", "containers": [{"name": "nginx", "image": "nginx"}, {"name": "log", "image": "busybox"}]},
        "status": {
            "phase": "Running",
            "podIP": "10.244.1.7",
            "podIPs": [{"ip": "10.244.1.7"}],
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [
                {"name": "nginx", "image": "nginx", "imageID": "", "ready": true, "restartCount": 0, "state": {"running": {"startedAt": "2024-06-01T11:55:10Z"}}},
                {"name": "log", "image": "busybox", "imageID": "", "ready": true, "restartCount": 0, "state": {"running": {"startedAt": "2024-06-01T11:55:10Z"}}}
            ]
        }
    }));
    assert_eq!(
        p.cells(now()),
        vec![
            json!("web-7d9f"),
            json!("2/2"),
            json!("Running"),
            json!("0"),
            json!("5m"),
            json!("10.244.1.7"),
            json!("node-1"),
            json!("<none>"),
            json!("<none>"),
        ]
    );
    assert!(p.row_conditions().is_empty());
}

#[test]
fn pending_pod_without_status_details() {
    let p = pod(json!({
        "metadata": meta("pending"),
        "spec": {"containers": [{"name": "app", "image": "app"}]},
        "status": {"phase": "Pending"}
    }));
    let cells = p.cells(now());
    assert_eq!(cells[1..4], [json!("0/1"), json!("Pending"), json!("0")]);
    assert_eq!(
        cells[5..9],
        [
            json!("<none>"),
            json!("<none>"),
            json!("<none>"),
            json!("<none>")
        ]
    );
}

#[test]
fn init_container_progress_and_failures() {
    let base = |init_statuses: Value| {
        pod(json!({
            "metadata": meta("init"),
            "spec": {
                "initContainers": [{"name": "migrate", "image": "m"}, {"name": "warm", "image": "w"}],
                "containers": [{"name": "app", "image": "app"}]
            },
            "status": {
                "phase": "Pending",
                "conditions": [{"type": "Initialized", "status": "False"}],
                "initContainerStatuses": init_statuses,
                "containerStatuses": [{"name": "app", "image": "app", "imageID": "", "ready": false, "restartCount": 0,
                    "state": {"waiting": {"reason": "PodInitializing"}}}]
            }
        }))
    };
    let done = json!({"name": "migrate", "image": "m", "imageID": "", "ready": false, "restartCount": 0,
        "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}});
    let running = json!({"name": "warm", "image": "w", "imageID": "", "ready": false, "restartCount": 0,
        "state": {"running": {}}});
    let p = base(json!([done, running]));
    assert_eq!(
        main_cells(&p),
        vec![
            json!("init"),
            json!("0/1"),
            json!("Init:1/2"),
            json!("0"),
            json!("5m")
        ]
    );

    let pulling = json!({"name": "migrate", "image": "m", "imageID": "", "ready": false, "restartCount": 0,
        "state": {"waiting": {"reason": "ImagePullBackOff"}}});
    assert_eq!(status(&base(json!([pulling]))), "Init:ImagePullBackOff");

    let failed = json!({"name": "migrate", "image": "m", "imageID": "", "ready": false, "restartCount": 2,
        "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2024-06-01T11:59:00Z"}},
        "state": {"terminated": {"exitCode": 1, "reason": "Error"}}});
    let p = base(json!([failed]));
    assert_eq!(status(&p), "Init:Error");
    assert_eq!(p.cells(now())[3], json!("2 (60s ago)"));

    let no_reason = json!({"name": "migrate", "image": "m", "imageID": "", "ready": false, "restartCount": 0,
        "state": {"terminated": {"exitCode": 3}}});
    assert_eq!(status(&base(json!([no_reason]))), "Init:ExitCode:3");
    let signal = json!({"name": "migrate", "image": "m", "imageID": "", "ready": false, "restartCount": 0,
        "state": {"terminated": {"exitCode": 137, "signal": 9}}});
    assert_eq!(status(&base(json!([signal]))), "Init:Signal:9");
}

#[test]
fn crash_loop_with_restarts_and_last_restart_age() {
    let p = pod(json!({
        "metadata": meta("api-0"),
        "spec": {"containers": [{"name": "api", "image": "api"}]},
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "False"}],
            "containerStatuses": [{
                "name": "api", "image": "api", "imageID": "", "ready": false, "restartCount": 3,
                "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": "2024-06-01T11:55:00Z"}},
                "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s"}}
            }]
        }
    }));
    assert_eq!(
        main_cells(&p),
        vec![
            json!("api-0"),
            json!("0/1"),
            json!("CrashLoopBackOff"),
            json!("3 (5m ago)"),
            json!("5m")
        ]
    );
}

#[test]
fn terminating_unknown_and_terminal_pods_being_deleted() {
    let mut p = pod(json!({
        "metadata": meta("old"),
        "spec": {"containers": [{"name": "app", "image": "app"}]},
        "status": {"phase": "Running", "containerStatuses": [{"name": "app", "image": "app", "imageID": "",
            "ready": true, "restartCount": 0, "state": {"running": {}}}]}
    }));
    p.metadata.deletion_timestamp =
        Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now()));
    assert_eq!(status(&p), "Terminating");
    assert_eq!(p.cells(now())[1], json!("1/1"));

    p.status.as_mut().unwrap().reason = Some("NodeLost".to_string());
    assert_eq!(status(&p), "Unknown");

    // A pod that already succeeded keeps its terminal status while it is deleted.
    let mut done = pod(json!({
        "metadata": meta("job-x"),
        "spec": {"containers": [{"name": "app", "image": "app"}]},
        "status": {"phase": "Succeeded", "containerStatuses": [{"name": "app", "image": "app", "imageID": "",
            "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}
    }));
    done.metadata.deletion_timestamp =
        Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now()));
    assert_eq!(status(&done), "Completed");
}

#[test]
fn completed_pod_and_row_condition() {
    let p = pod(json!({
        "metadata": meta("job-abc"),
        "spec": {"containers": [{"name": "work", "image": "busybox"}]},
        "status": {"phase": "Succeeded", "containerStatuses": [{"name": "work", "image": "busybox", "imageID": "",
            "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}
    }));
    assert_eq!(
        main_cells(&p)[1..4],
        [json!("0/1"), json!("Completed"), json!("0")]
    );
    assert_eq!(
        p.row_conditions(),
        vec![
            json!({"type": "Completed", "status": "True", "reason": "Succeeded",
            "message": "The pod has completed successfully."})
        ]
    );
}

#[test]
fn completed_container_next_to_running_one() {
    let make = |ready_condition: &str| {
        pod(json!({
            "metadata": meta("mixed"),
            "spec": {"containers": [{"name": "a", "image": "a"}, {"name": "b", "image": "b"}]},
            "status": {"phase": "Running",
                "conditions": [{"type": "Ready", "status": ready_condition}],
                "containerStatuses": [
                    {"name": "a", "image": "a", "imageID": "", "ready": false, "restartCount": 0,
                     "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
                    {"name": "b", "image": "b", "imageID": "", "ready": true, "restartCount": 0,
                     "state": {"running": {}}}
                ]}
        }))
    };
    assert_eq!(status(&make("True")), "Running");
    assert_eq!(status(&make("False")), "NotReady");
    assert_eq!(make("True").cells(now())[1], json!("1/2"));
}

#[test]
fn sidecar_containers_count_toward_ready_and_restarts() {
    let p = pod(json!({
        "metadata": meta("sidecar"),
        "spec": {
            "initContainers": [{"name": "proxy", "image": "envoy", "restartPolicy": "Always"}],
            "containers": [{"name": "app", "image": "app"}]
        },
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "True"}],
            "initContainerStatuses": [{"name": "proxy", "image": "envoy", "imageID": "", "ready": true, "started": true,
                "restartCount": 1, "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2024-06-01T10:00:00Z"}},
                "state": {"running": {}}}],
            "containerStatuses": [{"name": "app", "image": "app", "imageID": "", "ready": true, "restartCount": 0,
                "state": {"running": {}}}]
        }
    }));
    assert_eq!(
        main_cells(&p)[1..4],
        [json!("2/2"), json!("Running"), json!("1 (120m ago)")]
    );
}

#[test]
fn scheduling_gated_and_readiness_gates() {
    let p = pod(json!({
        "metadata": meta("gated"),
        "spec": {
            "containers": [{"name": "app", "image": "app"}],
            "readinessGates": [{"conditionType": "example.com/lb"}, {"conditionType": "example.com/dns"}]
        },
        "status": {
            "phase": "Pending",
            "nominatedNodeName": "node-9",
            "conditions": [
                {"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"},
                {"type": "example.com/lb", "status": "True"},
                {"type": "example.com/dns", "status": "False"}
            ]
        }
    }));
    let cells = p.cells(now());
    assert_eq!(cells[2], json!("SchedulingGated"));
    assert_eq!(cells[7], json!("node-9"));
    assert_eq!(cells[8], json!("1/2"));
}

#[test]
fn pod_ip_prefers_pod_ip_field() {
    let p = pod(json!({
        "metadata": meta("ips"),
        "spec": {"containers": []},
        "status": {"podIPs": [{"ip": "fd00::5"}, {"ip": "10.0.0.5"}]}
    }));
    assert_eq!(p.cells(now())[5], json!("fd00::5"));
}
