//! Scheme defaulting for core/v1 (mirrors pkg/apis/core/v1/defaults.go and
//! zz_generated.defaults.go).

use crate::quantity;
use k8s_openapi::api::core::v1 as api;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeMap;

pub(crate) type ResourceList = BTreeMap<String, Quantity>;

fn set<T>(slot: &mut Option<T>, v: T) {
    if slot.is_none() {
        *slot = Some(v);
    }
}

fn set_str(slot: &mut Option<String>, v: &str) {
    if slot.as_deref().unwrap_or("").is_empty() {
        *slot = Some(v.to_string());
    }
}

/// `SetDefaults_ResourceList`: round up to milli precision, canonical form.
pub(crate) fn default_resource_list(list: &mut Option<ResourceList>) {
    if let Some(list) = list {
        for q in list.values_mut() {
            q.0 = quantity::canonicalize_resource(&q.0);
        }
    }
}

fn canonical_quantity(q: &mut Option<Quantity>) {
    if let Some(q) = q {
        q.0 = quantity::canonicalize(&q.0);
    }
}

/// Splits an image reference and returns its tag, `latest` when neither tag nor digest is given
/// (`parsers.ParseImageName`).
pub(crate) fn image_tag(image: &str) -> String {
    let (name, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    let last_slash = name.rfind('/').map_or(0, |i| i + 1);
    let tag = name[last_slash..]
        .rsplit_once(':')
        .map(|(_, t)| t.to_string());
    match (tag, digest) {
        (Some(t), _) => t,
        (None, None) => "latest".to_string(),
        (None, Some(_)) => String::new(),
    }
}

fn pull_policy_for(image: &str) -> &'static str {
    if image_tag(image) == "latest" {
        "Always"
    } else {
        "IfNotPresent"
    }
}

fn default_field_selector(f: &mut Option<api::ObjectFieldSelector>) {
    if let Some(f) = f {
        set_str(&mut f.api_version, "v1");
    }
}

fn default_http_get(h: &mut Option<api::HTTPGetAction>) {
    if let Some(h) = h {
        set_str(&mut h.path, "/");
        set_str(&mut h.scheme, "HTTP");
    }
}

fn default_probe(p: &mut Option<api::Probe>) {
    let Some(p) = p else { return };
    for (slot, v) in [
        (&mut p.timeout_seconds, 1),
        (&mut p.period_seconds, 10),
        (&mut p.success_threshold, 1),
        (&mut p.failure_threshold, 3),
    ] {
        if slot.unwrap_or(0) == 0 {
            *slot = Some(v);
        }
    }
    default_http_get(&mut p.http_get);
    if let Some(g) = &mut p.grpc {
        set(&mut g.service, String::new());
    }
}

fn default_lifecycle(l: &mut Option<api::Lifecycle>) {
    if let Some(l) = l {
        for h in [&mut l.post_start, &mut l.pre_stop].into_iter().flatten() {
            default_http_get(&mut h.http_get);
        }
    }
}

/// `SetDefaults_Container` plus the generated nested defaults.
pub(crate) fn default_container(c: &mut api::Container) {
    if c.image_pull_policy.as_deref().unwrap_or("").is_empty() {
        c.image_pull_policy = Some(pull_policy_for(c.image.as_deref().unwrap_or("")).to_string());
    }
    set_str(&mut c.termination_message_path, "/dev/termination-log");
    set_str(&mut c.termination_message_policy, "File");
    for p in c.ports.iter_mut().flatten() {
        set_str(&mut p.protocol, "TCP");
    }
    for e in c.env.iter_mut().flatten() {
        if let Some(vf) = &mut e.value_from {
            default_field_selector(&mut vf.field_ref);
        }
    }
    // ResourceRequirements is a value type upstream, so it always serializes as `{}` at least.
    let res = c.resources.get_or_insert_with(Default::default);
    default_resource_list(&mut res.limits);
    default_resource_list(&mut res.requests);
    default_probe(&mut c.liveness_probe);
    default_probe(&mut c.readiness_probe);
    default_probe(&mut c.startup_probe);
    default_lifecycle(&mut c.lifecycle);
}

pub(crate) fn ephemeral_as_container(e: &api::EphemeralContainer) -> api::Container {
    api::Container {
        args: e.args.clone(),
        command: e.command.clone(),
        env: e.env.clone(),
        env_from: e.env_from.clone(),
        image: e.image.clone(),
        image_pull_policy: e.image_pull_policy.clone(),
        lifecycle: e.lifecycle.clone(),
        liveness_probe: e.liveness_probe.clone(),
        name: e.name.clone(),
        ports: e.ports.clone(),
        readiness_probe: e.readiness_probe.clone(),
        resize_policy: e.resize_policy.clone(),
        resources: e.resources.clone(),
        restart_policy: e.restart_policy.clone(),
        restart_policy_rules: e.restart_policy_rules.clone(),
        security_context: e.security_context.clone(),
        startup_probe: e.startup_probe.clone(),
        stdin: e.stdin,
        stdin_once: e.stdin_once,
        termination_message_path: e.termination_message_path.clone(),
        termination_message_policy: e.termination_message_policy.clone(),
        tty: e.tty,
        volume_devices: e.volume_devices.clone(),
        volume_mounts: e.volume_mounts.clone(),
        working_dir: e.working_dir.clone(),
    }
}

fn default_ephemeral_container(e: &mut api::EphemeralContainer) {
    let mut c = ephemeral_as_container(e);
    default_container(&mut c);
    e.image_pull_policy = c.image_pull_policy;
    e.termination_message_path = c.termination_message_path;
    e.termination_message_policy = c.termination_message_policy;
    e.ports = c.ports;
    e.env = c.env;
    e.resources = c.resources;
    e.liveness_probe = c.liveness_probe;
    e.readiness_probe = c.readiness_probe;
    e.startup_probe = c.startup_probe;
    e.lifecycle = c.lifecycle;
}

fn has_source(v: &api::Volume) -> bool {
    v.aws_elastic_block_store.is_some()
        || v.azure_disk.is_some()
        || v.azure_file.is_some()
        || v.cephfs.is_some()
        || v.cinder.is_some()
        || v.config_map.is_some()
        || v.csi.is_some()
        || v.downward_api.is_some()
        || v.empty_dir.is_some()
        || v.ephemeral.is_some()
        || v.fc.is_some()
        || v.flex_volume.is_some()
        || v.flocker.is_some()
        || v.gce_persistent_disk.is_some()
        || v.git_repo.is_some()
        || v.glusterfs.is_some()
        || v.host_path.is_some()
        || v.image.is_some()
        || v.iscsi.is_some()
        || v.nfs.is_some()
        || v.persistent_volume_claim.is_some()
        || v.photon_persistent_disk.is_some()
        || v.portworx_volume.is_some()
        || v.projected.is_some()
        || v.quobyte.is_some()
        || v.rbd.is_some()
        || v.scale_io.is_some()
        || v.secret.is_some()
        || v.storageos.is_some()
        || v.vsphere_volume.is_some()
}

const DEFAULT_MODE: i32 = 0o644;

/// `SetDefaults_PersistentVolumeClaimSpec` plus resource rounding.
pub(crate) fn default_pvc_spec(spec: &mut api::PersistentVolumeClaimSpec) {
    set_str(&mut spec.volume_mode, "Filesystem");
    if let Some(r) = &mut spec.resources {
        default_resource_list(&mut r.limits);
        default_resource_list(&mut r.requests);
    }
}

/// `SetDefaults_Volume` and the per-source defaults.
pub(crate) fn default_volume(v: &mut api::Volume) {
    if !has_source(v) {
        v.empty_dir = Some(Default::default());
    }
    if let Some(img) = &mut v.image
        && img.pull_policy.as_deref().unwrap_or("").is_empty()
    {
        img.pull_policy = Some(pull_policy_for(img.reference.as_deref().unwrap_or("")).to_string());
    }
    if let Some(e) = &mut v.empty_dir {
        canonical_quantity(&mut e.size_limit);
    }
    if let Some(h) = &mut v.host_path {
        set(&mut h.type_, String::new());
    }
    if let Some(s) = &mut v.secret {
        set(&mut s.default_mode, DEFAULT_MODE);
    }
    if let Some(c) = &mut v.config_map {
        set(&mut c.default_mode, DEFAULT_MODE);
    }
    if let Some(d) = &mut v.downward_api {
        set(&mut d.default_mode, DEFAULT_MODE);
        for item in d.items.iter_mut().flatten() {
            default_field_selector(&mut item.field_ref);
        }
    }
    if let Some(p) = &mut v.projected {
        set(&mut p.default_mode, DEFAULT_MODE);
        for src in p.sources.iter_mut().flatten() {
            if let Some(d) = &mut src.downward_api {
                for item in d.items.iter_mut().flatten() {
                    default_field_selector(&mut item.field_ref);
                }
            }
            if let Some(t) = &mut src.service_account_token {
                set(&mut t.expiration_seconds, 3600);
            }
        }
    }
    if let Some(i) = &mut v.iscsi {
        set_str(&mut i.iscsi_interface, "default");
    }
    if let Some(r) = &mut v.rbd {
        set_str(&mut r.pool, "rbd");
        set_str(&mut r.user, "admin");
        set_str(&mut r.keyring, "/etc/ceph/keyring");
    }
    if let Some(a) = &mut v.azure_disk {
        set(&mut a.caching_mode, "ReadWrite".to_string());
        set(&mut a.kind, "Shared".to_string());
        set(&mut a.fs_type, "ext4".to_string());
        set(&mut a.read_only, false);
    }
    if let Some(s) = &mut v.scale_io {
        set_str(&mut s.storage_mode, "ThinProvisioned");
        set_str(&mut s.fs_type, "xfs");
    }
    if let Some(e) = &mut v.ephemeral
        && let Some(t) = &mut e.volume_claim_template
    {
        default_pvc_spec(&mut t.spec);
    }
}

/// `SetDefaults_PodSpec` and everything nested in a pod spec (the parts shared by pods and
/// pod templates).
pub fn default_pod_spec(spec: &mut api::PodSpec) {
    set_str(&mut spec.dns_policy, "ClusterFirst");
    set_str(&mut spec.restart_policy, "Always");
    set(&mut spec.security_context, Default::default());
    set(&mut spec.termination_grace_period_seconds, 30);
    set_str(&mut spec.scheduler_name, "default-scheduler");
    for v in spec.volumes.iter_mut().flatten() {
        default_volume(v);
    }
    for c in spec.init_containers.iter_mut().flatten() {
        default_container(c);
    }
    for c in spec.containers.iter_mut() {
        default_container(c);
    }
    for e in spec.ephemeral_containers.iter_mut().flatten() {
        default_ephemeral_container(e);
    }
    default_resource_list(&mut spec.overhead);
}

/// Defaults a pod template embedded in a workload; its spec is a value type upstream.
pub fn default_pod_template_spec(t: &mut api::PodTemplateSpec) {
    default_pod_spec(t.spec.get_or_insert_with(Default::default));
}

fn requests_from_limits(c: &mut api::Container) {
    let Some(res) = &mut c.resources else { return };
    let Some(limits) = &res.limits else { return };
    let requests = res.requests.get_or_insert_with(Default::default);
    for (k, v) in limits {
        requests.entry(k.clone()).or_insert_with(|| v.clone());
    }
}

const POD_LEVEL_RESOURCES: [&str; 2] = ["cpu", "memory"];

fn is_pod_level_resource(name: &str) -> bool {
    POD_LEVEL_RESOURCES.contains(&name) || name.starts_with("hugepages-")
}

/// Effective container requests of a pod for one resource (regular containers summed, init
/// containers as a maximum) in nanos.
fn aggregate_requests(spec: &api::PodSpec, name: &str) -> Option<i128> {
    let get = |c: &api::Container| {
        c.resources
            .as_ref()
            .and_then(|r| r.requests.as_ref())
            .and_then(|r| r.get(name))
            .and_then(|q| quantity::parse(&q.0).ok())
            .map(|q| q.nanos)
    };
    let mut any = false;
    let mut sum = 0i128;
    for c in &spec.containers {
        if let Some(n) = get(c) {
            any = true;
            sum += n;
        }
    }
    let mut init_max = 0i128;
    for c in spec.init_containers.iter().flatten() {
        if let Some(n) = get(c) {
            any = true;
            if c.restart_policy.as_deref() == Some("Always") {
                sum += n;
            } else {
                init_max = init_max.max(n);
            }
        }
    }
    any.then(|| sum.max(init_max))
}

/// `defaultPodRequests`: pod-level requests from container requests or pod-level limits.
fn default_pod_level_requests(spec: &mut api::PodSpec) {
    let Some(res) = &spec.resources else { return };
    let Some(limits) = res.limits.clone().filter(|l| !l.is_empty()) else {
        return;
    };
    let mut reqs = res.requests.clone().unwrap_or_default();
    for name in POD_LEVEL_RESOURCES {
        if !reqs.contains_key(name)
            && let Some(n) = aggregate_requests(spec, name)
        {
            let q = quantity::Quantity {
                nanos: n,
                format: quantity::Format::DecimalSI,
            };
            reqs.insert(name.to_string(), Quantity(q.canonical()));
        }
    }
    for (k, v) in limits {
        if is_pod_level_resource(&k) {
            reqs.entry(k).or_insert(v);
        }
    }
    if !reqs.is_empty()
        && let Some(res) = &mut spec.resources
    {
        res.requests = Some(reqs);
    }
}

/// `SetObjectDefaults_Pod`.
pub fn default_pod(pod: &mut api::Pod) {
    let spec = pod.spec.get_or_insert_with(Default::default);
    for c in spec.containers.iter_mut() {
        requests_from_limits(c);
    }
    for c in spec.init_containers.iter_mut().flatten() {
        requests_from_limits(c);
    }
    default_pod_level_requests(spec);
    if let Some(res) = &mut spec.resources {
        default_resource_list(&mut res.limits);
        default_resource_list(&mut res.requests);
    }
    set(&mut spec.enable_service_links, true);
    if spec.host_network == Some(true) {
        let all = spec
            .containers
            .iter_mut()
            .chain(spec.init_containers.iter_mut().flatten());
        for c in all {
            for p in c.ports.iter_mut().flatten() {
                if p.host_port.unwrap_or(0) == 0 {
                    p.host_port = Some(p.container_port);
                }
            }
        }
    }
    default_pod_spec(spec);
}

/// `ExternallyAccessible`: LoadBalancer, NodePort, or ClusterIP with external IPs.
pub(crate) fn externally_accessible(spec: &api::ServiceSpec) -> bool {
    match spec.type_.as_deref().unwrap_or("") {
        "LoadBalancer" | "NodePort" => true,
        "ClusterIP" => spec.external_ips.as_ref().is_some_and(|v| !v.is_empty()),
        _ => false,
    }
}

/// `SetObjectDefaults_Service`.
pub fn default_service(svc: &mut api::Service) {
    let spec = svc.spec.get_or_insert_with(Default::default);
    set_str(&mut spec.session_affinity, "None");
    match spec.session_affinity.as_deref() {
        Some("None") => spec.session_affinity_config = None,
        Some("ClientIP") => {
            let has_timeout = spec
                .session_affinity_config
                .as_ref()
                .and_then(|c| c.client_ip.as_ref())
                .and_then(|c| c.timeout_seconds)
                .is_some();
            if !has_timeout {
                spec.session_affinity_config = Some(api::SessionAffinityConfig {
                    client_ip: Some(api::ClientIPConfig {
                        timeout_seconds: Some(10800),
                    }),
                });
            }
        }
        _ => {}
    }
    set_str(&mut spec.type_, "ClusterIP");
    for p in spec.ports.iter_mut().flatten() {
        set_str(&mut p.protocol, "TCP");
        let unset = match &p.target_port {
            None => true,
            Some(IntOrString::Int(0)) => true,
            Some(IntOrString::String(s)) => s.is_empty(),
            Some(IntOrString::Int(_)) => false,
        };
        if unset {
            p.target_port = Some(IntOrString::Int(p.port));
        }
    }
    if externally_accessible(spec) {
        set_str(&mut spec.external_traffic_policy, "Cluster");
    }
    let ty = spec.type_.clone().unwrap_or_default();
    if spec.internal_traffic_policy.is_none()
        && matches!(ty.as_str(), "NodePort" | "LoadBalancer" | "ClusterIP")
    {
        spec.internal_traffic_policy = Some("Cluster".to_string());
    }
    if ty == "LoadBalancer" {
        set(&mut spec.allocate_load_balancer_node_ports, true);
    }
    // ServiceStatus and its LoadBalancer field are value types upstream: `status: {loadBalancer: {}}`.
    let status = svc.status.get_or_insert_with(Default::default);
    let lb = status.load_balancer.get_or_insert_with(Default::default);
    if ty == "LoadBalancer" {
        for ing in lb.ingress.iter_mut().flatten() {
            if ing.ip.as_deref().is_some_and(|ip| !ip.is_empty()) && ing.ip_mode.is_none() {
                ing.ip_mode = Some("VIP".to_string());
            }
        }
    }
}

/// `SetDefaults_LimitRangeItem` plus resource rounding.
pub(crate) fn default_limit_range_item(item: &mut api::LimitRangeItem) {
    if item.type_ == "Container" {
        let max = item.max.clone().unwrap_or_default();
        let min = item.min.clone().unwrap_or_default();
        let default = item.default.get_or_insert_with(Default::default);
        for (k, v) in &max {
            default.entry(k.clone()).or_insert_with(|| v.clone());
        }
        let default = default.clone();
        let default_request = item.default_request.get_or_insert_with(Default::default);
        for (k, v) in &default {
            default_request
                .entry(k.clone())
                .or_insert_with(|| v.clone());
        }
        for (k, v) in &min {
            default_request
                .entry(k.clone())
                .or_insert_with(|| v.clone());
        }
    }
    for list in [
        &mut item.max,
        &mut item.min,
        &mut item.default,
        &mut item.default_request,
        &mut item.max_limit_request_ratio,
    ] {
        default_resource_list(list);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_tags() {
        assert_eq!(image_tag("nginx"), "latest");
        assert_eq!(image_tag("nginx:1.25"), "1.25");
        assert_eq!(image_tag("registry:5000/nginx"), "latest");
        assert_eq!(image_tag("registry:5000/nginx:latest"), "latest");
        assert_eq!(image_tag("nginx@sha256:abc"), "");
        assert_eq!(pull_policy_for("nginx@sha256:abc"), "IfNotPresent");
    }
}
