//! Fake nodes for the control-plane tests (issue 3): Node objects with Leases and a stand-in
//! kubelet that moves pods bound to them through their lifecycle without running containers, as
//! upstream's scheduler and controller integration tests do with "hollow" nodes.
//!
//! One set of nodes (`conformance-node-1..3`, zones `zone-a..c`) serves every test of a process;
//! the stand-in kubelet runs on its own thread and runtime because each `#[tokio::test]` has its
//! own runtime. Pod behaviour is steered by annotations on the pod (or its template):
//! - [`EXIT_CODE_ANNOTATION`]: the pod's containers "exit" with that code right after starting
//!   (phase Succeeded for 0, Failed otherwise), for Jobs;
//! - [`NOT_READY_ANNOTATION`]: the pod runs but never becomes Ready.
//!
//! Fake pod IPs come from [`FAKE_POD_CIDR`], which `conformance/run.sh` blackholes: nothing may
//! send traffic to them.

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use serde_json::json;
use std::collections::HashMap;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

pub const FAKE_NODE_LABEL: &str = "conformance.k8s.io/fake-node";
pub const EXIT_CODE_ANNOTATION: &str = "conformance.k8s.io/fake-exit-code";
pub const NOT_READY_ANNOTATION: &str = "conformance.k8s.io/fake-not-ready";
pub const FAKE_POD_CIDR: &str = "10.244.0.0/16";
pub const FAKE_NODES: [&str; 3] = [
    "conformance-node-1",
    "conformance-node-2",
    "conformance-node-3",
];
const ZONES: [&str; 3] = ["zone-a", "zone-b", "zone-c"];

static STARTED: OnceLock<()> = OnceLock::new();
static NEXT_IP: AtomicU32 = AtomicU32::new(2);

/// Makes sure the fake nodes exist and their stand-in kubelet runs (once per process); returns
/// their names once all are registered and Ready.
pub async fn ensure_fake_nodes() -> Vec<String> {
    STARTED.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("fake kubelet runtime");
            rt.block_on(async move {
                let c = crate::cluster().await;
                register_nodes(&c.client).await;
                let _ = tx.send(());
                let client = c.client.clone();
                tokio::spawn(heartbeat(client.clone()));
                run_pods(client).await;
            });
        });
        rx.recv_timeout(Duration::from_secs(60))
            .expect("fake nodes registered");
    });
    FAKE_NODES.iter().map(|s| s.to_string()).collect()
}

fn node(name: &str, zone: &str) -> Node {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {
            "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
            "topology.kubernetes.io/zone": zone, FAKE_NODE_LABEL: "true"}},
        "spec": {},
    }))
    .expect("node")
}

fn node_status(now: &str) -> serde_json::Value {
    let cond = |t: &str, s: &str, reason: &str, msg: &str| {
        json!({"type": t, "status": s, "reason": reason, "message": msg,
               "lastHeartbeatTime": now, "lastTransitionTime": now})
    };
    let res = json!({"cpu": "4", "memory": "8Gi", "pods": "110", "ephemeral-storage": "100Gi"});
    json!({"status": {
        "capacity": res, "allocatable": res,
        "conditions": [
            cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
            cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
            cond("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
            cond("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
        ],
        "addresses": [{"type": "Hostname", "address": "fake"}],
        "nodeInfo": {"machineID": "", "systemUUID": "", "bootID": "", "kernelVersion": "fake",
            "osImage": "fake", "containerRuntimeVersion": "fake://0", "kubeletVersion": "v1.37.0",
            "kubeProxyVersion": "", "operatingSystem": "linux", "architecture": "amd64"},
    }})
}

fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

async fn register_nodes(client: &kube::Client) {
    let nodes: Api<Node> = Api::all(client.clone());
    for (name, zone) in FAKE_NODES.iter().zip(ZONES) {
        if nodes.get_opt(name).await.ok().flatten().is_none() {
            let _ = nodes
                .create(&PostParams::default(), &node(name, zone))
                .await;
        }
        // A previous run may have left taints (e.g. unreachable) behind.
        let _ = nodes
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"taints": null, "unschedulable": null}})),
            )
            .await;
    }
    beat(client).await;
}

async fn beat(client: &kube::Client) {
    let nodes: Api<Node> = Api::all(client.clone());
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let t = now();
    for name in FAKE_NODES {
        let _ = nodes
            .patch_status(
                name,
                &PatchParams::default(),
                &Patch::Merge(node_status(&t)),
            )
            .await;
        let spec = LeaseSpec {
            holder_identity: Some(name.to_string()),
            lease_duration_seconds: Some(40),
            renew_time: Some(MicroTime(jiff::Timestamp::now())),
            ..Default::default()
        };
        match leases.get_opt(name).await {
            Ok(Some(mut l)) => {
                l.spec = Some(spec);
                let _ = leases.replace(name, &PostParams::default(), &l).await;
            }
            _ => {
                let l = Lease {
                    metadata: ObjectMeta {
                        name: Some(name.to_string()),
                        ..Default::default()
                    },
                    spec: Some(spec),
                };
                let _ = leases.create(&PostParams::default(), &l).await;
            }
        }
    }
}

async fn heartbeat(client: kube::Client) {
    loop {
        tokio::time::sleep(Duration::from_secs(10)).await;
        beat(&client).await;
    }
}

fn annotation<'a>(pod: &'a Pod, key: &str) -> Option<&'a str> {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .map(String::as_str)
}

fn next_ip() -> String {
    let n = NEXT_IP.fetch_add(1, Ordering::Relaxed);
    format!("10.244.{}.{}", (n / 250) % 250, n % 250 + 2)
}

/// Drives pods bound to the fake nodes: Pending -> Running (Ready unless annotated), then
/// Succeeded/Failed when an exit code is annotated; pods being deleted are removed at once.
async fn run_pods(client: kube::Client) {
    let pods: Api<Pod> = Api::all(client.clone());
    let mut ips: HashMap<String, String> = HashMap::new();
    let mut stream = watcher(pods, watcher::Config::default()).boxed();
    while let Some(ev) = stream.next().await {
        let objs = match ev {
            Ok(watcher::Event::Apply(p)) | Ok(watcher::Event::InitApply(p)) => vec![p],
            _ => continue,
        };
        for pod in objs {
            let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.clone()) else {
                continue;
            };
            if !FAKE_NODES.contains(&node.as_str()) {
                continue;
            }
            let ns = pod.metadata.namespace.clone().unwrap_or_default();
            let name = pod.metadata.name.clone().unwrap_or_default();
            let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
            if pod.metadata.deletion_timestamp.is_some() {
                let _ = api
                    .delete(&name, &DeleteParams::default().grace_period(0))
                    .await;
                ips.remove(&format!("{ns}/{name}"));
                continue;
            }
            let phase = pod
                .status
                .as_ref()
                .and_then(|s| s.phase.clone())
                .unwrap_or_default();
            if phase == "Succeeded" || phase == "Failed" {
                continue;
            }
            let exit = annotation(&pod, EXIT_CODE_ANNOTATION).and_then(|v| v.parse::<i32>().ok());
            let ready = annotation(&pod, NOT_READY_ANNOTATION).is_none() && exit.is_none();
            if phase == "Running" {
                let is_ready = pod
                    .status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|cs| {
                        cs.iter()
                            .any(|c| c.type_ == "Ready" && (c.status == "True") == ready)
                    });
                if is_ready && exit.is_none() {
                    continue;
                }
            }
            let ip = ips
                .entry(format!("{ns}/{name}"))
                .or_insert_with(next_ip)
                .clone();
            let status = pod_status(&pod, &ip, ready, exit);
            let _ = api
                .patch_status(
                    &name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"status": status})),
                )
                .await;
        }
    }
}

fn pod_status(pod: &Pod, ip: &str, ready: bool, exit: Option<i32>) -> serde_json::Value {
    let t = now();
    let containers: Vec<serde_json::Value> = pod
        .spec
        .as_ref()
        .map(|s| s.containers.clone())
        .unwrap_or_default()
        .iter()
        .map(|c| {
            let state = match exit {
                Some(code) => json!({"terminated": {"exitCode": code,
                    "reason": if code == 0 { "Completed" } else { "Error" },
                    "startedAt": t, "finishedAt": t}}),
                None => json!({"running": {"startedAt": t}}),
            };
            json!({"name": c.name, "image": c.image.clone().unwrap_or_default(),
                   "imageID": "", "ready": ready, "restartCount": 0, "started": exit.is_none(),
                   "state": state})
        })
        .collect();
    let cond = |ty: &str, ok: bool| json!({"type": ty, "status": if ok { "True" } else { "False" }, "lastTransitionTime": t});
    let phase = match exit {
        Some(0) => "Succeeded",
        Some(_) => "Failed",
        None => "Running",
    };
    json!({
        "phase": phase,
        "hostIP": "127.0.0.1", "hostIPs": [{"ip": "127.0.0.1"}],
        "podIP": ip, "podIPs": [{"ip": ip}],
        "startTime": t,
        "qosClass": "BestEffort",
        "conditions": [cond("PodReadyToStartContainers", exit.is_none()), cond("Initialized", true),
                       cond("ContainersReady", ready), cond("Ready", ready), cond("PodScheduled", true)],
        "containerStatuses": containers,
    })
}
