//! Building CRI sandbox and container configs from a pod (upstream
//! `pkg/kubelet/kuberuntime/kuberuntime_sandbox.go` generatePodSandboxConfig,
//! `kuberuntime_container.go` generateContainerConfig, `kuberuntime_container_linux.go`,
//! `pkg/kubelet/network/dns/dns.go`, `kubelet_pods.go` makeHostsMount), and the labels and
//! annotations by which the kubelet recognises its containers again (`labels.go`).

use crate::cri::v1 as cri;
use crate::env::parse_quantity;
use k8s_openapi::api::core::v1::{Container, Pod};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub const LABEL_POD_NAME: &str = "io.kubernetes.pod.name";
pub const LABEL_POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
pub const LABEL_POD_UID: &str = "io.kubernetes.pod.uid";
pub const LABEL_CONTAINER_NAME: &str = "io.kubernetes.container.name";
pub const ANN_RESTART_COUNT: &str = "io.kubernetes.container.restartCount";
pub const ANN_TERMINATION_MESSAGE_PATH: &str = "io.kubernetes.container.terminationMessagePath";
pub const ANN_TERMINATION_MESSAGE_POLICY: &str = "io.kubernetes.container.terminationMessagePolicy";
pub const ANN_GRACE_PERIOD: &str = "io.kubernetes.pod.terminationGracePeriod";
pub const ANN_HASH: &str = "io.kubernetes.container.hash";

/// Node-wide settings the configs need.
#[derive(Clone, Debug)]
pub struct RuntimeSettings {
    pub root_dir: PathBuf,
    pub pod_logs_dir: PathBuf,
    pub cluster_dns: Vec<std::net::IpAddr>,
    pub cluster_domain: String,
    pub resolv_conf: String,
}

pub fn pod_uid(pod: &Pod) -> String {
    pod.metadata.uid.clone().unwrap_or_default()
}

pub fn pod_dir(root: &Path, uid: &str) -> PathBuf {
    root.join("pods").join(uid)
}

pub fn pod_log_dir(s: &RuntimeSettings, pod: &Pod) -> PathBuf {
    s.pod_logs_dir.join(format!(
        "{}_{}_{}",
        pod.metadata.namespace.as_deref().unwrap_or(""),
        pod.metadata.name.as_deref().unwrap_or(""),
        pod_uid(pod)
    ))
}

pub fn host_network(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.host_network)
        .unwrap_or(false)
}

/// The pod's hostname and (with a subdomain) its FQDN.
pub fn hostname_and_domain(pod: &Pod, cluster_domain: &str) -> (String, Option<String>) {
    let spec = pod.spec.as_ref();
    let mut host = spec
        .and_then(|s| s.hostname.clone())
        .unwrap_or_else(|| pod.metadata.name.clone().unwrap_or_default());
    host.truncate(63);
    let host = host.trim_end_matches(['-', '.']).to_string();
    let domain = spec.and_then(|s| s.subdomain.clone()).map(|sub| {
        format!(
            "{sub}.{}.svc.{cluster_domain}",
            pod.metadata.namespace.as_deref().unwrap_or("")
        )
    });
    (host, domain)
}

fn pod_labels(pod: &Pod) -> HashMap<String, String> {
    let mut l: HashMap<String, String> = pod
        .metadata
        .labels
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    l.insert(
        LABEL_POD_NAME.into(),
        pod.metadata.name.clone().unwrap_or_default(),
    );
    l.insert(
        LABEL_POD_NAMESPACE.into(),
        pod.metadata.namespace.clone().unwrap_or_default(),
    );
    l.insert(LABEL_POD_UID.into(), pod_uid(pod));
    l
}

fn parse_resolv_conf(text: &str) -> (Vec<String>, Vec<String>, Vec<String>) {
    let (mut servers, mut searches, mut options) = (vec![], vec![], vec![]);
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        let mut f = line.split_whitespace();
        match f.next() {
            Some("nameserver") => servers.extend(f.next().map(str::to_string)),
            Some("search") => searches = f.map(str::to_string).collect(),
            Some("options") => options.extend(f.map(str::to_string)),
            _ => {}
        }
    }
    (servers, searches, options)
}

/// The pod's DNS config (upstream dns.go GetPodDNS); Err is the MissingClusterDNS event message.
pub fn dns_config(pod: &Pod, s: &RuntimeSettings) -> (cri::DnsConfig, Option<String>) {
    let spec = pod.spec.as_ref();
    let policy = spec
        .and_then(|p| p.dns_policy.clone())
        .unwrap_or_else(|| "ClusterFirst".into());
    let host = std::fs::read_to_string(&s.resolv_conf).unwrap_or_default();
    let (host_servers, host_search, host_opts) = parse_resolv_conf(&host);
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let mut warning = None;
    let cluster_first = match policy.as_str() {
        "ClusterFirstWithHostNet" => true,
        "ClusterFirst" => !host_network(pod),
        _ => false,
    };
    let mut cfg = if policy == "None" {
        cri::DnsConfig::default()
    } else if cluster_first && !s.cluster_dns.is_empty() {
        let d = &s.cluster_domain;
        let mut searches = vec![format!("{ns}.svc.{d}"), format!("svc.{d}"), d.clone()];
        searches.extend(host_search);
        cri::DnsConfig {
            servers: s.cluster_dns.iter().map(|i| i.to_string()).collect(),
            searches,
            options: vec!["ndots:5".into()],
        }
    } else {
        if cluster_first {
            warning = Some(format!(
                "pod: {:?}. kubelet does not have ClusterDNS IP configured and cannot create Pod using \"ClusterFirst\" policy. Falling back to \"Default\" policy.",
                format!(
                    "{}_{}({})",
                    pod.metadata.name.as_deref().unwrap_or(""),
                    ns,
                    pod_uid(pod)
                )
            ));
        }
        cri::DnsConfig {
            servers: host_servers,
            searches: host_search,
            options: host_opts,
        }
    };
    if let Some(extra) = spec.and_then(|p| p.dns_config.as_ref()) {
        for n in extra.nameservers.clone().unwrap_or_default() {
            if !cfg.servers.contains(&n) {
                cfg.servers.push(n);
            }
        }
        for sch in extra.searches.clone().unwrap_or_default() {
            if !cfg.searches.contains(&sch) {
                cfg.searches.push(sch);
            }
        }
        for o in extra.options.clone().unwrap_or_default() {
            let v = match o.value {
                Some(v) => format!("{}:{v}", o.name.clone().unwrap_or_default()),
                None => o.name.clone().unwrap_or_default(),
            };
            let key = v.split(':').next().unwrap_or("").to_string();
            cfg.options
                .retain(|x| x.split(':').next() != Some(key.as_str()));
            cfg.options.push(v);
        }
    }
    (cfg, warning)
}

/// The kubelet-managed /etc/hosts of a pod.
pub fn hosts_file(pod: &Pod, pod_ips: &[String], cluster_domain: &str) -> String {
    let mut out = String::from(
        "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n",
    );
    let (host, domain) = hostname_and_domain(pod, cluster_domain);
    for ip in pod_ips {
        match &domain {
            Some(d) => out.push_str(&format!("{ip}\t{host}.{d}\t{host}\n")),
            None => out.push_str(&format!("{ip}\t{host}\n")),
        }
    }
    let aliases = pod
        .spec
        .as_ref()
        .and_then(|s| s.host_aliases.clone())
        .unwrap_or_default();
    if !aliases.is_empty() {
        out.push_str("\n# Entries added by HostAliases.\n");
        for a in aliases {
            out.push_str(&format!(
                "{}\t{}\n",
                a.ip,
                a.hostnames.unwrap_or_default().join("\t")
            ));
        }
    }
    out
}

pub fn sandbox_config(
    pod: &Pod,
    attempt: u32,
    s: &RuntimeSettings,
) -> (cri::PodSandboxConfig, Option<String>) {
    let spec = pod.spec.clone().unwrap_or_default();
    let (hostname, _) = hostname_and_domain(pod, &s.cluster_domain);
    let (dns, warning) = dns_config(pod, s);
    let mut port_mappings = vec![];
    for c in spec.containers.iter() {
        for p in c.ports.clone().unwrap_or_default() {
            if let Some(hp) = p.host_port.filter(|h| *h > 0) {
                port_mappings.push(cri::PortMapping {
                    protocol: match p.protocol.as_deref() {
                        Some("UDP") => cri::Protocol::Udp as i32,
                        Some("SCTP") => cri::Protocol::Sctp as i32,
                        _ => cri::Protocol::Tcp as i32,
                    },
                    container_port: p.container_port,
                    host_port: hp,
                    host_ip: p.host_ip.clone().unwrap_or_default(),
                });
            }
        }
    }
    let sc = spec.security_context.clone().unwrap_or_default();
    let ns_mode = |host: bool, pod_mode: cri::NamespaceMode| {
        if host {
            cri::NamespaceMode::Node as i32
        } else {
            pod_mode as i32
        }
    };
    let linux = cri::LinuxPodSandboxConfig {
        cgroup_parent: String::new(),
        security_context: Some(cri::LinuxSandboxSecurityContext {
            namespace_options: Some(cri::NamespaceOption {
                network: ns_mode(spec.host_network.unwrap_or(false), cri::NamespaceMode::Pod),
                pid: if spec.host_pid.unwrap_or(false) {
                    cri::NamespaceMode::Node as i32
                } else if spec.share_process_namespace.unwrap_or(false) {
                    cri::NamespaceMode::Pod as i32
                } else {
                    cri::NamespaceMode::Container as i32
                },
                ipc: ns_mode(spec.host_ipc.unwrap_or(false), cri::NamespaceMode::Pod),
                ..Default::default()
            }),
            run_as_user: sc.run_as_user.map(|v| cri::Int64Value { value: v }),
            run_as_group: sc.run_as_group.map(|v| cri::Int64Value { value: v }),
            supplemental_groups: sc.supplemental_groups.clone().unwrap_or_default(),
            ..Default::default()
        }),
        sysctls: sc
            .sysctls
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|s| (s.name, s.value))
            .collect(),
        ..Default::default()
    };
    let cfg = cri::PodSandboxConfig {
        metadata: Some(cri::PodSandboxMetadata {
            name: pod.metadata.name.clone().unwrap_or_default(),
            uid: pod_uid(pod),
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            attempt,
        }),
        hostname: if spec.host_network.unwrap_or(false) {
            String::new()
        } else {
            hostname
        },
        log_directory: pod_log_dir(s, pod).display().to_string(),
        dns_config: Some(dns),
        port_mappings,
        labels: pod_labels(pod),
        annotations: pod
            .metadata
            .annotations
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
        linux: Some(linux),
        windows: None,
    };
    (cfg, warning)
}

fn cpu_shares(req: Option<f64>) -> i64 {
    // Upstream MilliCPUToShares: 1 core = 1024 shares, minimum 2.
    match req {
        Some(cores) if cores > 0.0 => ((cores * 1024.0) as i64).max(2),
        _ => 2,
    }
}

/// Linux resources from requests and limits (upstream kuberuntime_container_linux.go).
pub fn linux_resources(c: &Container) -> cri::LinuxContainerResources {
    let res = c.resources.clone().unwrap_or_default();
    let get = |m: &Option<
        std::collections::BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
    >,
               k: &str| {
        m.as_ref()
            .and_then(|m| m.get(k))
            .and_then(|q| parse_quantity(&q.0))
    };
    let cpu_req = get(&res.requests, "cpu").or(get(&res.limits, "cpu"));
    let cpu_lim = get(&res.limits, "cpu");
    let mem_lim = get(&res.limits, "memory");
    let period = 100_000i64;
    cri::LinuxContainerResources {
        cpu_shares: cpu_shares(cpu_req),
        cpu_period: if cpu_lim.is_some() { period } else { 0 },
        cpu_quota: cpu_lim
            .map(|l| ((l * period as f64) as i64).max(1000))
            .unwrap_or(0),
        memory_limit_in_bytes: mem_lim.map(|m| m as i64).unwrap_or(0),
        oom_score_adj: 0,
        ..Default::default()
    }
}

pub struct ContainerParts<'a> {
    pub pod: &'a Pod,
    pub container: &'a Container,
    pub restart_count: i32,
    pub image_ref: String,
    pub env: Vec<(String, String)>,
    pub command: Vec<String>,
    pub args: Vec<String>,
    pub mounts: Vec<cri::Mount>,
}

pub fn container_config(p: ContainerParts<'_>) -> cri::ContainerConfig {
    let c = p.container;
    let pod = p.pod;
    let spec = pod.spec.clone().unwrap_or_default();
    let sc = c.security_context.clone().unwrap_or_default();
    let psc = spec.security_context.clone().unwrap_or_default();
    let mut labels: HashMap<String, String> = HashMap::new();
    labels.insert(
        LABEL_POD_NAME.into(),
        pod.metadata.name.clone().unwrap_or_default(),
    );
    labels.insert(
        LABEL_POD_NAMESPACE.into(),
        pod.metadata.namespace.clone().unwrap_or_default(),
    );
    labels.insert(LABEL_POD_UID.into(), pod_uid(pod));
    labels.insert(LABEL_CONTAINER_NAME.into(), c.name.clone());
    let term_path = c
        .termination_message_path
        .clone()
        .unwrap_or_else(|| "/dev/termination-log".into());
    let mut annotations: HashMap<String, String> = HashMap::new();
    annotations.insert(ANN_RESTART_COUNT.into(), p.restart_count.to_string());
    annotations.insert(ANN_TERMINATION_MESSAGE_PATH.into(), term_path);
    annotations.insert(
        ANN_TERMINATION_MESSAGE_POLICY.into(),
        c.termination_message_policy
            .clone()
            .unwrap_or_else(|| "File".into()),
    );
    annotations.insert(
        ANN_GRACE_PERIOD.into(),
        spec.termination_grace_period_seconds
            .unwrap_or(30)
            .to_string(),
    );
    annotations.insert(ANN_HASH.into(), container_hash(c));
    let caps = sc.capabilities.clone().unwrap_or_default();
    let security = cri::LinuxContainerSecurityContext {
        capabilities: Some(cri::Capability {
            add_capabilities: caps.add.unwrap_or_default(),
            drop_capabilities: caps.drop.unwrap_or_default(),
            ..Default::default()
        }),
        privileged: sc.privileged.unwrap_or(false),
        namespace_options: Some(cri::NamespaceOption {
            network: if spec.host_network.unwrap_or(false) {
                cri::NamespaceMode::Node as i32
            } else {
                cri::NamespaceMode::Pod as i32
            },
            pid: if spec.host_pid.unwrap_or(false) {
                cri::NamespaceMode::Node as i32
            } else if spec.share_process_namespace.unwrap_or(false) {
                cri::NamespaceMode::Pod as i32
            } else {
                cri::NamespaceMode::Container as i32
            },
            ipc: if spec.host_ipc.unwrap_or(false) {
                cri::NamespaceMode::Node as i32
            } else {
                cri::NamespaceMode::Pod as i32
            },
            ..Default::default()
        }),
        run_as_user: sc
            .run_as_user
            .or(psc.run_as_user)
            .map(|v| cri::Int64Value { value: v }),
        run_as_group: sc
            .run_as_group
            .or(psc.run_as_group)
            .map(|v| cri::Int64Value { value: v }),
        readonly_rootfs: sc.read_only_root_filesystem.unwrap_or(false),
        supplemental_groups: psc.supplemental_groups.clone().unwrap_or_default(),
        no_new_privs: sc.allow_privilege_escalation == Some(false),
        ..Default::default()
    };
    cri::ContainerConfig {
        metadata: Some(cri::ContainerMetadata {
            name: c.name.clone(),
            attempt: p.restart_count.max(0) as u32,
        }),
        image: Some(cri::ImageSpec {
            image: p.image_ref,
            user_specified_image: c.image.clone().unwrap_or_default(),
            ..Default::default()
        }),
        command: p.command,
        args: p.args,
        working_dir: c.working_dir.clone().unwrap_or_default(),
        envs: p
            .env
            .into_iter()
            .map(|(key, value)| cri::KeyValue { key, value })
            .collect(),
        mounts: p.mounts,
        labels,
        annotations,
        log_path: format!("{}/{}.log", c.name, p.restart_count),
        stdin: c.stdin.unwrap_or(false),
        stdin_once: c.stdin_once.unwrap_or(false),
        tty: c.tty.unwrap_or(false),
        linux: Some(cri::LinuxContainerConfig {
            resources: Some(linux_resources(c)),
            security_context: Some(security),
        }),
        ..Default::default()
    }
}

/// A hash of the container spec: a changed spec (e.g. a new image) restarts the container.
pub fn container_hash(c: &Container) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    serde_json::to_string(c).unwrap_or_default().hash(&mut h);
    format!("{:x}", h.finish() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(json: serde_json::Value) -> Pod {
        serde_json::from_value(json).unwrap()
    }

    fn settings(dns: &[&str]) -> RuntimeSettings {
        RuntimeSettings {
            root_dir: "/tmp/k".into(),
            pod_logs_dir: "/var/log/pods".into(),
            cluster_dns: dns.iter().map(|s| s.parse().unwrap()).collect(),
            cluster_domain: "cluster.local".into(),
            resolv_conf: "/nonexistent".into(),
        }
    }

    #[test]
    fn cluster_first_dns() {
        let p = pod(
            serde_json::json!({"metadata": {"name": "p", "namespace": "ns", "uid": "u"}, "spec": {"containers": []}}),
        );
        let (cfg, warn) = dns_config(&p, &settings(&["10.0.0.10"]));
        assert!(warn.is_none());
        assert_eq!(cfg.servers, vec!["10.0.0.10"]);
        assert_eq!(
            cfg.searches[..3],
            ["ns.svc.cluster.local", "svc.cluster.local", "cluster.local"]
        );
        assert_eq!(cfg.options, vec!["ndots:5"]);
        let (_, warn) = dns_config(&p, &settings(&[]));
        assert!(warn.unwrap().contains("Falling back to \"Default\" policy"));
    }

    #[test]
    fn hosts_file_has_pod_ip_and_aliases() {
        let p = pod(
            serde_json::json!({"metadata": {"name": "web", "namespace": "ns"}, "spec": {"containers": [],
            "hostname": "h", "subdomain": "sub", "hostAliases": [{"ip": "1.2.3.4", "hostnames": ["a", "b"]}]}}),
        );
        let h = hosts_file(&p, &["10.244.0.5".into()], "cluster.local");
        assert!(h.starts_with("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n"));
        assert!(h.contains("10.244.0.5\th.sub.ns.svc.cluster.local\th\n"));
        assert!(h.ends_with("# Entries added by HostAliases.\n1.2.3.4\ta\tb\n"));
    }

    #[test]
    fn resources_map_to_cgroup_values() {
        let c: Container = serde_json::from_value(serde_json::json!({"name": "c",
            "resources": {"limits": {"cpu": "500m", "memory": "64Mi"}, "requests": {"cpu": "250m"}}})).unwrap();
        let r = linux_resources(&c);
        assert_eq!(r.cpu_shares, 256);
        assert_eq!(r.cpu_quota, 50_000);
        assert_eq!(r.cpu_period, 100_000);
        assert_eq!(r.memory_limit_in_bytes, 64 << 20);
        let c: Container = serde_json::from_value(serde_json::json!({"name": "c"})).unwrap();
        assert_eq!(linux_resources(&c).cpu_shares, 2);
    }
}
