//! Node registration, node status and the node Lease (upstream `pkg/kubelet/kubelet_node_status.go`,
//! `pkg/kubelet/nodestatus/setters.go`, `pkg/kubelet/nodelease`). Status is posted when it changed
//! or every `--node-status-report-frequency`; the Lease is renewed every quarter of its duration.

use crate::cri::Runtime;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{
    ContainerImage, DaemonEndpoint, Node, NodeAddress, NodeCondition, NodeDaemonEndpoints,
    NodeSpec, NodeStatus, NodeSystemInfo, Taint,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, OwnerReference, Time};
use kube::api::{Api, PostParams};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

pub const LEASE_DURATION_SECONDS: i32 = 40;
pub const KUBELET_VERSION: &str = "v1.37.1";
const MAX_IMAGES_IN_STATUS: usize = 50;

/// What node status needs to know about the machine and the kubelet's settings.
#[derive(Clone, Debug)]
pub struct NodeSettings {
    pub name: String,
    pub node_ip: IpAddr,
    pub port: u16,
    pub max_pods: i64,
    pub labels: BTreeMap<String, String>,
    pub taints: Vec<Taint>,
    pub root_dir: std::path::PathBuf,
}

pub fn now() -> Time {
    Time(jiff::Timestamp::now())
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

pub fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// MemTotal in bytes.
fn mem_total() -> u64 {
    read("/proc/meminfo")
        .lines()
        .find_map(|l| {
            let rest = l.strip_prefix("MemTotal:")?;
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .unwrap_or(0)
        * 1024
}

fn fs_size(path: &std::path::Path) -> u64 {
    nix::sys::statvfs::statvfs(path)
        .map(|s| s.blocks() as u64 * s.fragment_size() as u64)
        .unwrap_or(0)
}

fn os_image() -> String {
    read("/etc/os-release")
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_else(|| "Linux".into())
}

/// The labels upstream's kubelet always sets on its Node.
pub fn default_labels(name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("kubernetes.io/hostname".to_string(), name.to_string()),
        ("kubernetes.io/os".to_string(), "linux".to_string()),
        ("kubernetes.io/arch".to_string(), arch().to_string()),
        ("beta.kubernetes.io/os".to_string(), "linux".to_string()),
        ("beta.kubernetes.io/arch".to_string(), arch().to_string()),
    ])
}

/// `key=value:Effect` as `--register-with-taints` takes them.
pub fn parse_taint(s: &str) -> Result<Taint, String> {
    let (kv, effect) = s
        .rsplit_once(':')
        .ok_or_else(|| format!("invalid taint spec: {s}"))?;
    if !matches!(effect, "NoSchedule" | "PreferNoSchedule" | "NoExecute") {
        return Err(format!(
            "invalid taint effect: {effect}, unsupported taint effect"
        ));
    }
    let (key, value) = match kv.split_once('=') {
        Some((k, v)) => (k, Some(v.to_string())),
        None => (kv, None),
    };
    Ok(Taint {
        key: key.to_string(),
        value,
        effect: effect.to_string(),
        time_added: None,
    })
}

pub fn capacity(s: &NodeSettings) -> BTreeMap<String, Quantity> {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    BTreeMap::from([
        ("cpu".to_string(), Quantity(cpus.to_string())),
        (
            "memory".to_string(),
            Quantity(format!("{}Ki", mem_total() / 1024)),
        ),
        ("pods".to_string(), Quantity(s.max_pods.to_string())),
        (
            "ephemeral-storage".to_string(),
            Quantity(format!("{}Ki", fs_size(&s.root_dir) / 1024)),
        ),
        ("hugepages-1Gi".to_string(), Quantity("0".into())),
        ("hugepages-2Mi".to_string(), Quantity("0".into())),
    ])
}

fn condition(type_: &str, status: bool, reason: &str, message: &str) -> NodeCondition {
    NodeCondition {
        type_: type_.to_string(),
        status: if status { "True" } else { "False" }.to_string(),
        reason: Some(reason.to_string()),
        message: Some(message.to_string()),
        last_heartbeat_time: Some(now()),
        last_transition_time: Some(now()),
    }
}

/// Whether the runtime is up and its network is ready; Err carries upstream's NotReady message.
pub async fn runtime_ready(runtime: &Runtime) -> Result<String, String> {
    let version = runtime
        .version()
        .await
        .map_err(|e| format!("container runtime is down: {e}"))?;
    let status = runtime
        .status()
        .await
        .map_err(|e| format!("container runtime status check may not have completed yet: {e}"))?;
    for c in &status.conditions {
        if !c.status {
            let what = if c.r#type == "NetworkReady" {
                "container runtime network not ready"
            } else {
                "container runtime not ready"
            };
            return Err(format!(
                "{what}: {}=false reason:{} message:{}",
                c.r#type, c.reason, c.message
            ));
        }
    }
    Ok(format!(
        "{}://{}",
        version.runtime_name, version.runtime_version
    ))
}

/// The node's status as the kubelet sees it now (heartbeat times are now; transition times are
/// carried over from `old` when a condition did not change).
pub async fn build_status(
    s: &NodeSettings,
    runtime: &Runtime,
    old: Option<&NodeStatus>,
) -> NodeStatus {
    let ready = runtime_ready(runtime).await;
    let runtime_version = ready.clone().unwrap_or_default();
    let images = match runtime.list_images().await {
        Ok(mut list) => {
            list.sort_by(|a, b| b.size.cmp(&a.size));
            list.into_iter()
                .take(MAX_IMAGES_IN_STATUS)
                .map(|i| {
                    let mut names = i.repo_digests.clone();
                    names.extend(i.repo_tags.clone());
                    ContainerImage {
                        names: Some(names),
                        size_bytes: Some(i.size as i64),
                    }
                })
                .collect()
        }
        Err(_) => old.and_then(|o| o.images.clone()).unwrap_or_default(),
    };
    let mut conditions = vec![
        condition(
            "MemoryPressure",
            false,
            "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available",
        ),
        condition(
            "DiskPressure",
            false,
            "KubeletHasNoDiskPressure",
            "kubelet has no disk pressure",
        ),
        condition(
            "PIDPressure",
            false,
            "KubeletHasSufficientPID",
            "kubelet has sufficient PID available",
        ),
        match &ready {
            Ok(_) => condition(
                "Ready",
                true,
                "KubeletReady",
                "kubelet is posting ready status",
            ),
            Err(msg) => condition("Ready", false, "KubeletNotReady", msg),
        },
    ];
    if let Some(old) = old.and_then(|o| o.conditions.as_ref()) {
        for c in &mut conditions {
            if let Some(prev) = old.iter().find(|p| p.type_ == c.type_) {
                if prev.status == c.status {
                    c.last_transition_time = prev.last_transition_time.clone();
                }
            }
        }
    }
    let cap = capacity(s);
    NodeStatus {
        capacity: Some(cap.clone()),
        allocatable: Some(cap),
        conditions: Some(conditions),
        addresses: Some(vec![
            NodeAddress {
                type_: "InternalIP".into(),
                address: s.node_ip.to_string(),
            },
            NodeAddress {
                type_: "Hostname".into(),
                address: s.name.clone(),
            },
        ]),
        daemon_endpoints: Some(NodeDaemonEndpoints {
            kubelet_endpoint: Some(DaemonEndpoint {
                port: i32::from(s.port),
            }),
        }),
        node_info: Some(NodeSystemInfo {
            machine_id: read("/etc/machine-id"),
            system_uuid: {
                let u = read("/sys/class/dmi/id/product_uuid");
                if u.is_empty() {
                    read("/etc/machine-id")
                } else {
                    u
                }
            },
            boot_id: read("/proc/sys/kernel/random/boot_id"),
            kernel_version: read("/proc/sys/kernel/osrelease"),
            os_image: os_image(),
            container_runtime_version: runtime_version,
            kubelet_version: KUBELET_VERSION.into(),
            kube_proxy_version: String::new(),
            operating_system: "linux".into(),
            architecture: arch().into(),
            swap: None,
            running_in_user_namespace: None,
        }),
        images: Some(images),
        ..Default::default()
    }
}

/// The parts of the status that count as a change (heartbeat times do not).
fn significant(s: &NodeStatus) -> serde_json::Value {
    let mut v = serde_json::to_value(s).unwrap_or_default();
    if let Some(conds) = v.get_mut("conditions").and_then(|c| c.as_array_mut()) {
        for c in conds {
            if let Some(o) = c.as_object_mut() {
                o.remove("lastHeartbeatTime");
            }
        }
    }
    v
}

/// Registers the node (or adopts the existing one, reconciling the labels the kubelet owns).
pub async fn register(api: &Api<Node>, s: &NodeSettings) -> anyhow::Result<Node> {
    let mut labels = default_labels(&s.name);
    labels.extend(s.labels.clone());
    let node = Node {
        metadata: ObjectMeta {
            name: Some(s.name.clone()),
            labels: Some(labels.clone()),
            annotations: Some(BTreeMap::from([(
                "volumes.kubernetes.io/controller-managed-attach-detach".to_string(),
                "true".to_string(),
            )])),
            ..Default::default()
        },
        spec: Some(NodeSpec {
            taints: if s.taints.is_empty() {
                None
            } else {
                Some(s.taints.clone())
            },
            ..Default::default()
        }),
        status: None,
    };
    match api.create(&PostParams::default(), &node).await {
        Ok(n) => {
            tracing::info!(node = %s.name, "successfully registered node");
            Ok(n)
        }
        Err(kube::Error::Api(e)) if e.code == 409 => {
            let mut existing = api.get(&s.name).await?;
            let current = existing.metadata.labels.clone().unwrap_or_default();
            let mut merged = current.clone();
            merged.extend(labels);
            if merged != current {
                existing.metadata.labels = Some(merged);
                existing = api
                    .replace(&s.name, &PostParams::default(), &existing)
                    .await?;
            }
            tracing::info!(node = %s.name, "node already registered; adopting it");
            Ok(existing)
        }
        Err(e) => Err(e.into()),
    }
}

/// Keeps the node's status and Lease current until shut down.
pub async fn run(
    client: kube::Client,
    runtime: Runtime,
    settings: NodeSettings,
    update_every: Duration,
    report_every: Duration,
    shutdown: CancellationToken,
) {
    let nodes: Api<Node> = Api::all(client.clone());
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let mut node_uid = loop {
        match register(&nodes, &settings).await {
            Ok(n) => break n.metadata.uid.unwrap_or_default(),
            Err(e) => {
                tracing::warn!(error = %e, "unable to register node with the API server; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                }
            }
        }
    };
    let mut last_posted: Option<(serde_json::Value, Instant)> = None;
    let mut next_lease = Instant::now();
    let lease_every = Duration::from_secs(LEASE_DURATION_SECONDS as u64 / 4);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut next_status = Instant::now();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        if Instant::now() >= next_status {
            next_status = Instant::now() + update_every;
            match sync_status(&nodes, &runtime, &settings, &mut last_posted, report_every).await {
                Ok(uid) => node_uid = uid,
                Err(e) => {
                    tracing::warn!(error = %e, "error updating node status, will retry");
                    if matches!(&e, kube::Error::Api(a) if a.code == 404) {
                        // The Node was deleted: register again.
                        if let Ok(n) = register(&nodes, &settings).await {
                            node_uid = n.metadata.uid.unwrap_or_default();
                            last_posted = None;
                        }
                    }
                }
            }
        }
        if Instant::now() >= next_lease {
            match renew_lease(&leases, &settings.name, &node_uid).await {
                Ok(()) => next_lease = Instant::now() + lease_every,
                Err(e) => {
                    tracing::warn!(error = %e, "failed to update lease");
                    next_lease = Instant::now() + Duration::from_millis(200);
                }
            }
        }
    }
}

async fn sync_status(
    nodes: &Api<Node>,
    runtime: &Runtime,
    settings: &NodeSettings,
    last_posted: &mut Option<(serde_json::Value, Instant)>,
    report_every: Duration,
) -> Result<String, kube::Error> {
    let mut node = nodes.get(&settings.name).await?;
    let uid = node.metadata.uid.clone().unwrap_or_default();
    let status = build_status(settings, runtime, node.status.as_ref()).await;
    let sig = significant(&status);
    let due = match last_posted {
        Some((prev, at)) => *prev != sig || at.elapsed() >= report_every,
        None => true,
    };
    let api_differs = node.status.as_ref().map(significant) != Some(sig.clone());
    if !due && !api_differs {
        return Ok(uid);
    }
    let mut merged = status;
    // Keep what other components own (e.g. volumesAttached, nodeInfo swap, config).
    if let Some(old) = node.status.take() {
        merged.volumes_attached = old.volumes_attached;
        merged.volumes_in_use = old.volumes_in_use;
        merged.config = old.config;
    }
    node.status = Some(merged);
    nodes
        .replace_status(&settings.name, &PostParams::default(), &node)
        .await?;
    *last_posted = Some((sig, Instant::now()));
    Ok(uid)
}

async fn renew_lease(leases: &Api<Lease>, name: &str, node_uid: &str) -> Result<(), kube::Error> {
    let spec = LeaseSpec {
        holder_identity: Some(name.to_string()),
        lease_duration_seconds: Some(LEASE_DURATION_SECONDS),
        renew_time: Some(MicroTime(jiff::Timestamp::now())),
        ..Default::default()
    };
    match leases.get_opt(name).await? {
        Some(mut lease) => {
            lease.spec = Some(spec);
            leases.replace(name, &PostParams::default(), &lease).await?;
        }
        None => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(name.to_string()),
                    namespace: Some("kube-node-lease".into()),
                    owner_references: (!node_uid.is_empty()).then(|| {
                        vec![OwnerReference {
                            api_version: "v1".into(),
                            kind: "Node".into(),
                            name: name.to_string(),
                            uid: node_uid.to_string(),
                            ..Default::default()
                        }]
                    }),
                    ..Default::default()
                },
                spec: Some(spec),
            };
            leases.create(&PostParams::default(), &lease).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taints_parse_as_upstream() {
        let t = parse_taint("dedicated=gpu:NoSchedule").unwrap();
        assert_eq!(t.key, "dedicated");
        assert_eq!(t.value.as_deref(), Some("gpu"));
        assert_eq!(t.effect, "NoSchedule");
        let t = parse_taint("node.kubernetes.io/unschedulable:NoExecute").unwrap();
        assert_eq!(t.value, None);
        assert!(parse_taint("a=b:Sometimes").is_err());
        assert!(parse_taint("nocolon").is_err());
    }

    #[test]
    fn capacity_reads_the_machine() {
        let s = NodeSettings {
            name: "n".into(),
            node_ip: "127.0.0.1".parse().unwrap(),
            port: 10250,
            max_pods: 110,
            labels: BTreeMap::new(),
            taints: vec![],
            root_dir: "/".into(),
        };
        let c = capacity(&s);
        assert_eq!(c["pods"].0, "110");
        assert!(c["memory"].0.ends_with("Ki"));
        assert_ne!(c["memory"].0, "0Ki");
        assert_ne!(c["cpu"].0, "0");
    }

    #[test]
    fn heartbeats_are_not_a_change() {
        let a = NodeStatus {
            conditions: Some(vec![condition("Ready", true, "KubeletReady", "m")]),
            ..Default::default()
        };
        let mut b = a.clone();
        b.conditions.as_mut().unwrap()[0].last_heartbeat_time =
            Some(Time(jiff::Timestamp::from_second(5).unwrap()));
        assert_eq!(significant(&a), significant(&b));
        b.conditions.as_mut().unwrap()[0].status = "False".into();
        assert_ne!(significant(&a), significant(&b));
    }
}
