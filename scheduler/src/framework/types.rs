//! What the scheduler knows about pods and nodes (mirrors upstream
//! `pkg/scheduler/framework/types.go` and `component-helpers/resource`): resource sums with
//! upstream's init-container, sidecar and overhead rules, pod infos with pre-parsed affinity
//! terms and host ports, node infos with requested resources and used ports, and `FitError`'s
//! message format.

use super::Status;
use apiserver_apimachinery::selector::LabelSelector;
use k8s_openapi::api::core::v1::{Container, Node, Pod, PodAffinityTerm, Taint};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Requests given to containers that request no CPU when scoring (upstream 100m).
pub const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
/// Requests given to containers that request no memory when scoring (upstream 200 MiB).
pub const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;

static GENERATION: AtomicU64 = AtomicU64::new(1);
static EMPTY_LABELS: BTreeMap<String, String> = BTreeMap::new();

/// A fresh, process-wide increasing generation number.
pub fn next_generation() -> u64 {
    GENERATION.fetch_add(1, Ordering::Relaxed)
}

/// Amounts of resources: CPU in millicores, bytes, pod count and extended resources.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resource {
    pub milli_cpu: i64,
    pub memory: i64,
    pub ephemeral_storage: i64,
    pub allowed_pod_number: i64,
    /// Extended resources, hugepages and the like (few; kept as a small list).
    pub scalar: Vec<(String, i64)>,
}

/// Whether a resource name is counted as a scalar (extended, hugepages, attachable volumes).
pub fn is_scalar_resource(name: &str) -> bool {
    name.starts_with("hugepages-")
        || name.starts_with("attachable-volumes-")
        || (name.contains('/') && !name.starts_with("kubernetes.io/"))
        || name.starts_with("requests.")
}

fn quantity_value(q: &Quantity) -> i64 {
    apiserver_apis::quantity::parse(&q.0)
        .map(|q| q.value().clamp(i64::MIN as i128, i64::MAX as i128) as i64)
        .unwrap_or(0)
}

fn quantity_milli(q: &Quantity) -> i64 {
    apiserver_apis::quantity::parse(&q.0)
        .map(|q| q.milli_value().clamp(i64::MIN as i128, i64::MAX as i128) as i64)
        .unwrap_or(0)
}

impl Resource {
    /// From a ResourceList (requests, allocatable or overhead).
    pub fn from_list(list: &BTreeMap<String, Quantity>) -> Resource {
        let mut r = Resource::default();
        for (name, q) in list {
            match name.as_str() {
                "cpu" => r.milli_cpu = quantity_milli(q),
                "memory" => r.memory = quantity_value(q),
                "ephemeral-storage" => r.ephemeral_storage = quantity_value(q),
                "pods" => r.allowed_pod_number = quantity_value(q),
                n if is_scalar_resource(n) => r.set_scalar(n, quantity_value(q)),
                _ => {}
            }
        }
        r
    }

    pub fn scalar(&self, name: &str) -> i64 {
        self.scalar
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| *v)
            .unwrap_or(0)
    }

    pub fn set_scalar(&mut self, name: &str, v: i64) {
        match self.scalar.iter_mut().find(|(n, _)| n == name) {
            Some(e) => e.1 = v,
            None => self.scalar.push((name.to_string(), v)),
        }
    }

    pub fn add(&mut self, o: &Resource) {
        self.milli_cpu += o.milli_cpu;
        self.memory += o.memory;
        self.ephemeral_storage += o.ephemeral_storage;
        self.allowed_pod_number += o.allowed_pod_number;
        for (n, v) in &o.scalar {
            let cur = self.scalar(n);
            self.set_scalar(n, cur + v);
        }
    }

    pub fn sub(&mut self, o: &Resource) {
        self.milli_cpu -= o.milli_cpu;
        self.memory -= o.memory;
        self.ephemeral_storage -= o.ephemeral_storage;
        self.allowed_pod_number -= o.allowed_pod_number;
        for (n, v) in &o.scalar {
            let cur = self.scalar(n);
            self.set_scalar(n, cur - v);
        }
    }

    /// Element-wise maximum.
    pub fn set_max(&mut self, o: &Resource) {
        self.milli_cpu = self.milli_cpu.max(o.milli_cpu);
        self.memory = self.memory.max(o.memory);
        self.ephemeral_storage = self.ephemeral_storage.max(o.ephemeral_storage);
        for (n, v) in &o.scalar {
            let cur = self.scalar(n);
            self.set_scalar(n, cur.max(*v));
        }
    }

    /// The amount of a named resource (`cpu` in millicores).
    pub fn get(&self, name: &str) -> i64 {
        match name {
            "cpu" => self.milli_cpu,
            "memory" => self.memory,
            "ephemeral-storage" => self.ephemeral_storage,
            "pods" => self.allowed_pod_number,
            n => self.scalar(n),
        }
    }
}

fn container_requests(c: &Container, non_zero: bool) -> Resource {
    let mut r = c
        .resources
        .as_ref()
        .and_then(|r| r.requests.as_ref())
        .map(Resource::from_list)
        .unwrap_or_default();
    if non_zero {
        let reqs = c.resources.as_ref().and_then(|r| r.requests.as_ref());
        if !reqs.is_some_and(|r| r.contains_key("cpu")) {
            r.milli_cpu = DEFAULT_MILLI_CPU_REQUEST;
        }
        if !reqs.is_some_and(|r| r.contains_key("memory")) {
            r.memory = DEFAULT_MEMORY_REQUEST;
        }
    }
    r
}

/// A pod's effective requests (upstream `resourcehelper.PodRequests`): the sum of app
/// containers and sidecars, at least each init container's request plus the sidecars started
/// before it, overridden by pod-level requests, plus the pod overhead. `non_zero` gives
/// containers without a CPU/memory request the scoring defaults.
pub fn pod_requests(pod: &Pod, non_zero: bool) -> Resource {
    let Some(spec) = pod.spec.as_ref() else {
        return Resource::default();
    };
    let mut reqs = Resource::default();
    for c in &spec.containers {
        reqs.add(&container_requests(c, non_zero));
    }
    let mut sidecars = Resource::default();
    let mut init_max = Resource::default();
    for c in spec.init_containers.iter().flatten() {
        let r = container_requests(c, non_zero);
        let step = if c.restart_policy.as_deref() == Some("Always") {
            reqs.add(&r);
            sidecars.add(&r);
            sidecars.clone()
        } else {
            let mut s = r;
            s.add(&sidecars);
            s
        };
        init_max.set_max(&step);
    }
    reqs.set_max(&init_max);
    if let Some(pod_level) = spec.resources.as_ref().and_then(|r| r.requests.as_ref()) {
        let p = Resource::from_list(pod_level);
        if pod_level.contains_key("cpu") {
            reqs.milli_cpu = p.milli_cpu;
        }
        if pod_level.contains_key("memory") {
            reqs.memory = p.memory;
        }
    }
    if let Some(overhead) = &spec.overhead {
        reqs.add(&Resource::from_list(overhead));
    }
    reqs
}

/// A host port a pod uses (`0.0.0.0` = every address).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HostPort {
    pub ip: String,
    pub protocol: String,
    pub port: i32,
}

impl HostPort {
    pub fn conflicts(&self, o: &HostPort) -> bool {
        self.port == o.port
            && self.protocol == o.protocol
            && (self.ip == o.ip || self.ip == "0.0.0.0" || o.ip == "0.0.0.0")
    }
}

/// The host ports a pod's containers ask for.
pub fn pod_host_ports(pod: &Pod) -> Vec<HostPort> {
    let mut out = Vec::new();
    let Some(spec) = pod.spec.as_ref() else {
        return out;
    };
    let sidecars = spec
        .init_containers
        .iter()
        .flatten()
        .filter(|c| c.restart_policy.as_deref() == Some("Always"));
    for c in spec.containers.iter().chain(sidecars) {
        for p in c.ports.iter().flatten() {
            if let Some(hp) = p.host_port.filter(|hp| *hp > 0) {
                out.push(HostPort {
                    ip: p
                        .host_ip
                        .clone()
                        .filter(|s| !s.is_empty())
                        .unwrap_or_else(|| "0.0.0.0".into()),
                    protocol: p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                    port: hp,
                });
            }
        }
    }
    out
}

/// A pod (anti-)affinity term with its selectors parsed.
#[derive(Clone, Debug)]
pub struct AffinityTerm {
    pub namespaces: HashSet<String>,
    /// None matches no namespace by label.
    pub namespace_selector: Option<LabelSelector>,
    /// None matches nothing (a term without a labelSelector).
    pub selector: Option<LabelSelector>,
    pub topology_key: String,
}

impl AffinityTerm {
    pub fn new(owner_ns: &str, t: &PodAffinityTerm) -> Result<AffinityTerm, String> {
        let selector = match &t.label_selector {
            Some(s) => Some(LabelSelector::from_meta(s)?),
            None => None,
        };
        let namespace_selector = match &t.namespace_selector {
            Some(s) => Some(LabelSelector::from_meta(s)?),
            None => None,
        };
        let mut namespaces: HashSet<String> = t.namespaces.iter().flatten().cloned().collect();
        if namespaces.is_empty() && namespace_selector.is_none() {
            namespaces.insert(owner_ns.to_string());
        }
        Ok(AffinityTerm {
            namespaces,
            namespace_selector,
            selector,
            topology_key: t.topology_key.clone(),
        })
    }

    /// Whether `pod` is selected by the term (`ns_labels` are the labels of its namespace).
    pub fn matches(&self, pod: &PodInfo, ns_labels: Option<&BTreeMap<String, String>>) -> bool {
        let ns_ok = self.namespaces.contains(&pod.namespace)
            || self
                .namespace_selector
                .as_ref()
                .is_some_and(|s| s.is_empty() || ns_labels.is_some_and(|l| s.matches(l)));
        ns_ok
            && self
                .selector
                .as_ref()
                .is_some_and(|s| s.matches(pod.labels()))
    }
}

#[derive(Clone, Debug)]
pub struct WeightedAffinityTerm {
    pub term: AffinityTerm,
    pub weight: i32,
}

/// A pod with what the plugins need precomputed (upstream `PodInfo`).
#[derive(Clone, Debug)]
pub struct PodInfo {
    pub pod: Arc<Pod>,
    /// `namespace/name`
    pub key: String,
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub priority: i32,
    pub requests: Resource,
    /// Requests with the scoring defaults for containers that request nothing.
    pub non_zero_requests: Resource,
    pub host_ports: Vec<HostPort>,
    pub required_affinity: Vec<AffinityTerm>,
    pub required_anti_affinity: Vec<AffinityTerm>,
    pub preferred_affinity: Vec<WeightedAffinityTerm>,
    pub preferred_anti_affinity: Vec<WeightedAffinityTerm>,
    /// A malformed affinity term (the pod is unschedulable with this message).
    pub parse_error: Option<String>,
}

impl PodInfo {
    pub fn new(pod: Arc<Pod>) -> PodInfo {
        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let spec = pod.spec.as_ref();
        let mut parse_error = None;
        let mut terms = |ts: Option<&Vec<PodAffinityTerm>>| -> Vec<AffinityTerm> {
            ts.into_iter()
                .flatten()
                .filter_map(|t| match AffinityTerm::new(&namespace, t) {
                    Ok(t) => Some(t),
                    Err(e) => {
                        parse_error = Some(e);
                        None
                    }
                })
                .collect()
        };
        let aff = spec.and_then(|s| s.affinity.as_ref());
        let pa = aff.and_then(|a| a.pod_affinity.as_ref());
        let paa = aff.and_then(|a| a.pod_anti_affinity.as_ref());
        let required_affinity = terms(pa.and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        }));
        let required_anti_affinity = terms(paa.and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        }));
        let mut weighted =
            |ts: Option<&Vec<k8s_openapi::api::core::v1::WeightedPodAffinityTerm>>| {
                ts.into_iter()
                    .flatten()
                    .filter_map(
                        |w| match AffinityTerm::new(&namespace, &w.pod_affinity_term) {
                            Ok(term) => Some(WeightedAffinityTerm {
                                term,
                                weight: w.weight,
                            }),
                            Err(e) => {
                                parse_error = Some(e);
                                None
                            }
                        },
                    )
                    .collect::<Vec<_>>()
            };
        let preferred_affinity = weighted(pa.and_then(|a| {
            a.preferred_during_scheduling_ignored_during_execution
                .as_ref()
        }));
        let preferred_anti_affinity = weighted(paa.and_then(|a| {
            a.preferred_during_scheduling_ignored_during_execution
                .as_ref()
        }));
        PodInfo {
            key: format!("{namespace}/{name}"),
            uid: pod.metadata.uid.clone().unwrap_or_default(),
            priority: spec.and_then(|s| s.priority).unwrap_or(0),
            requests: pod_requests(&pod, false),
            non_zero_requests: pod_requests(&pod, true),
            host_ports: pod_host_ports(&pod),
            required_affinity,
            required_anti_affinity,
            preferred_affinity,
            preferred_anti_affinity,
            parse_error,
            namespace,
            name,
            pod,
        }
    }

    /// The same pod assigned to `node` (what the cache assumes while binding).
    pub fn with_node(&self, node: &str) -> PodInfo {
        let mut p = (*self.pod).clone();
        p.spec.get_or_insert_default().node_name = Some(node.to_string());
        PodInfo {
            pod: Arc::new(p),
            ..self.clone()
        }
    }

    pub fn labels(&self) -> &BTreeMap<String, String> {
        self.pod.metadata.labels.as_ref().unwrap_or(&EMPTY_LABELS)
    }
    pub fn node_name(&self) -> Option<&str> {
        self.pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .filter(|n| !n.is_empty())
    }
    pub fn is_terminating(&self) -> bool {
        self.pod.metadata.deletion_timestamp.is_some()
    }
    pub fn has_affinity(&self) -> bool {
        !self.required_affinity.is_empty()
            || !self.required_anti_affinity.is_empty()
            || !self.preferred_affinity.is_empty()
            || !self.preferred_anti_affinity.is_empty()
    }
}

/// What the scheduler knows of one node (upstream `NodeInfo`).
#[derive(Clone, Debug, Default)]
pub struct NodeInfo {
    pub node: Option<Arc<Node>>,
    pub name: String,
    pub pods: Vec<Arc<PodInfo>>,
    pub pods_with_affinity: Vec<Arc<PodInfo>>,
    pub pods_with_required_anti_affinity: Vec<Arc<PodInfo>>,
    pub used_ports: Vec<HostPort>,
    pub requested: Resource,
    pub non_zero_requested: Resource,
    pub allocatable: Resource,
    /// Image name (every name the node reports) to size in bytes.
    pub images: Arc<HashMap<String, i64>>,
    pub generation: u64,
}

impl NodeInfo {
    pub fn new(node: Arc<Node>) -> NodeInfo {
        let mut n = NodeInfo::default();
        n.set_node(node);
        n
    }

    pub fn set_node(&mut self, node: Arc<Node>) {
        self.name = node.metadata.name.clone().unwrap_or_default();
        let status = node.status.as_ref();
        self.allocatable = status
            .and_then(|s| s.allocatable.as_ref())
            .map(Resource::from_list)
            .unwrap_or_default();
        let mut images = HashMap::new();
        for img in status.and_then(|s| s.images.as_ref()).into_iter().flatten() {
            for n in img.names.iter().flatten() {
                images.insert(n.clone(), img.size_bytes.unwrap_or(0));
            }
        }
        self.images = Arc::new(images);
        self.node = Some(node);
        self.generation = next_generation();
    }

    pub fn labels(&self) -> &BTreeMap<String, String> {
        self.node
            .as_ref()
            .and_then(|n| n.metadata.labels.as_ref())
            .unwrap_or(&EMPTY_LABELS)
    }

    pub fn taints(&self) -> &[Taint] {
        self.node
            .as_ref()
            .and_then(|n| n.spec.as_ref())
            .and_then(|s| s.taints.as_deref())
            .unwrap_or(&[])
    }

    pub fn add_pod(&mut self, pi: Arc<PodInfo>) {
        self.requested.add(&pi.requests);
        self.non_zero_requested.milli_cpu += pi.non_zero_requests.milli_cpu;
        self.non_zero_requested.memory += pi.non_zero_requests.memory;
        self.used_ports.extend(pi.host_ports.iter().cloned());
        if pi.has_affinity() {
            self.pods_with_affinity.push(pi.clone());
        }
        if !pi.required_anti_affinity.is_empty() {
            self.pods_with_required_anti_affinity.push(pi.clone());
        }
        self.pods.push(pi);
        self.generation = next_generation();
    }

    /// Removes the pod with `key`; returns it if it was there.
    pub fn remove_pod(&mut self, key: &str) -> Option<Arc<PodInfo>> {
        let idx = self.pods.iter().position(|p| p.key == key)?;
        let pi = self.pods.swap_remove(idx);
        self.pods_with_affinity.retain(|p| p.key != key);
        self.pods_with_required_anti_affinity
            .retain(|p| p.key != key);
        self.requested.sub(&pi.requests);
        self.non_zero_requested.milli_cpu -= pi.non_zero_requests.milli_cpu;
        self.non_zero_requested.memory -= pi.non_zero_requests.memory;
        for hp in &pi.host_ports {
            if let Some(i) = self.used_ports.iter().position(|u| u == hp) {
                self.used_ports.swap_remove(i);
            }
        }
        self.generation = next_generation();
        Some(pi)
    }
}

/// Why a pod fits no node; its `Display` is upstream's `FitError.Error()`.
#[derive(Clone, Debug, Default)]
pub struct FitError {
    pub num_all_nodes: usize,
    /// Statuses of the nodes that were filtered out.
    pub node_statuses: HashMap<String, Status>,
    /// Status counted for every node absent from `node_statuses`.
    pub absent_status: Option<Status>,
    pub pre_filter_msg: String,
    pub post_filter_msg: String,
    /// Plugins that rejected the pod (drive re-queueing).
    pub unschedulable_plugins: HashSet<String>,
}

impl std::fmt::Display for FitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "0/{} nodes are available:", self.num_all_nodes)?;
        if !self.pre_filter_msg.is_empty() {
            write!(f, " {}.", self.pre_filter_msg)?;
        } else {
            let mut counts: HashMap<&str, usize> = HashMap::new();
            for st in self.node_statuses.values() {
                for r in &st.reasons {
                    *counts.entry(r.as_str()).or_default() += 1;
                }
            }
            if let Some(absent) = &self.absent_status {
                let missing = self.num_all_nodes.saturating_sub(self.node_statuses.len());
                if missing > 0 {
                    for r in &absent.reasons {
                        *counts.entry(r.as_str()).or_default() += missing;
                    }
                }
            }
            let mut parts: Vec<String> = counts.iter().map(|(r, n)| format!("{n} {r}")).collect();
            parts.sort();
            if !parts.is_empty() {
                write!(f, " {}.", parts.join(", "))?;
            }
        }
        if !self.post_filter_msg.is_empty() {
            write!(f, " {}", self.post_filter_msg)?;
        }
        Ok(())
    }
}
