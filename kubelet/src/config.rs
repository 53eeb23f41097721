//! The kubelet's flags and its KubeletConfiguration file (upstream `cmd/kubelet/app/options`,
//! `pkg/kubelet/apis/config/v1beta1/defaults.go`). Flags given on the command line win over the
//! file, as upstream.

use clap::Parser;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

fn parse_duration(s: &str) -> Result<Duration, String> {
    parse_go_duration(s).ok_or_else(|| format!("invalid duration {s:?}"))
}

/// Go's `time.ParseDuration` for the units flags use (h, m, s, ms).
pub fn parse_go_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s == "0" {
        return Some(Duration::ZERO);
    }
    let mut total = 0f64;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_end == 0 {
            return None;
        }
        let n: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..unit_end] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            "us" | "µs" => 0.000_001,
            "ns" => 0.000_000_001,
            _ => return None,
        };
        total += n * mult;
        rest = &rest[unit_end..];
    }
    Some(Duration::from_secs_f64(total))
}

#[derive(Parser, Debug, Clone)]
#[command(
    name = "kubelet",
    about = "The Kubernetes node agent (Rust reimplementation)."
)]
pub struct Config {
    /// kubeconfig for talking to the apiserver.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// A KubeletConfiguration (kubelet.config.k8s.io/v1beta1) file; flags override it.
    #[arg(long = "config")]
    pub config_file: Option<PathBuf>,
    /// The node's name instead of the hostname.
    #[arg(long)]
    pub hostname_override: Option<String>,
    /// The node's InternalIP (default: the address of the default route's interface).
    #[arg(long)]
    pub node_ip: Option<IpAddr>,
    #[arg(long, default_value = "unix:///run/containerd/containerd.sock")]
    pub container_runtime_endpoint: String,
    #[arg(long, default_value = "2m", value_parser = parse_duration)]
    pub runtime_request_timeout: Duration,
    /// Where the kubelet keeps pod volumes and its state.
    #[arg(long, default_value = "/var/lib/kubelet")]
    pub root_dir: PathBuf,
    /// Container logs (`podLogsDir` in the config file).
    #[arg(long, default_value = "/var/log/pods")]
    pub pod_logs_dir: PathBuf,
    /// Static pod manifests.
    #[arg(long)]
    pub pod_manifest_path: Option<PathBuf>,
    #[arg(long, value_delimiter = ',')]
    pub cluster_dns: Vec<IpAddr>,
    #[arg(long, default_value = "cluster.local")]
    pub cluster_domain: String,
    /// The resolv.conf the pods' DNS config starts from (dnsPolicy Default).
    #[arg(long, default_value = "/etc/resolv.conf")]
    pub resolv_conf: String,
    #[arg(long, default_value = "0.0.0.0")]
    pub address: IpAddr,
    #[arg(long, default_value_t = 10250)]
    pub port: u16,
    #[arg(long, default_value = "127.0.0.1")]
    pub healthz_bind_address: IpAddr,
    #[arg(long, default_value_t = 10248)]
    pub healthz_port: u16,
    #[arg(long)]
    pub tls_cert_file: Option<PathBuf>,
    #[arg(long)]
    pub tls_private_key_file: Option<PathBuf>,
    /// Where a self-signed serving certificate is written when none is given.
    #[arg(long)]
    pub cert_dir: Option<PathBuf>,
    /// Clients presenting a certificate signed by this CA are authenticated.
    #[arg(long)]
    pub client_ca_file: Option<PathBuf>,
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub anonymous_auth: bool,
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub node_status_update_frequency: Duration,
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub node_status_report_frequency: Duration,
    #[arg(long, default_value = "1m", value_parser = parse_duration)]
    pub sync_frequency: Duration,
    #[arg(long, value_delimiter = ',')]
    pub node_labels: Vec<String>,
    #[arg(long, value_delimiter = ',')]
    pub register_with_taints: Vec<String>,
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub register_node: bool,
    #[arg(long, default_value_t = 110)]
    pub max_pods: i64,
    /// Image GC starts when the image filesystem is this full (percent).
    #[arg(long, default_value_t = 85, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub image_gc_high_threshold: u8,
    /// Image GC frees space down to this usage (percent).
    #[arg(long, default_value_t = 80, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub image_gc_low_threshold: u8,
    #[arg(short = 'v', long = "v", default_value_t = 2)]
    pub v: u8,
}

impl Config {
    /// The node name: --hostname-override, else the lower-cased hostname (as upstream).
    pub fn node_name(&self) -> String {
        if let Some(n) = &self.hostname_override {
            return n.trim().to_lowercase();
        }
        hostname()
    }

    /// Merges a KubeletConfiguration file under the flags that were not given explicitly.
    pub fn apply_file(&mut self, matches: &clap::ArgMatches) -> anyhow::Result<()> {
        let Some(path) = &self.config_file else {
            return Ok(());
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
        let doc: serde_json::Value = serde_yaml::from_str(&text)
            .map_err(|e| anyhow::anyhow!("parsing {}: {e}", path.display()))?;
        let explicit =
            |id: &str| matches.value_source(id) == Some(clap::parser::ValueSource::CommandLine);
        let s = |k: &str| doc.get(k).and_then(|v| v.as_str()).map(str::to_string);
        let n = |k: &str| doc.get(k).and_then(|v| v.as_i64());
        if !explicit("container_runtime_endpoint") {
            if let Some(v) = s("containerRuntimeEndpoint") {
                self.container_runtime_endpoint = v;
            }
        }
        if !explicit("pod_logs_dir") {
            if let Some(v) = s("podLogsDir") {
                self.pod_logs_dir = v.into();
            }
        }
        if !explicit("pod_manifest_path") {
            if let Some(v) = s("staticPodPath") {
                self.pod_manifest_path = Some(v.into());
            }
        }
        if !explicit("cluster_domain") {
            if let Some(v) = s("clusterDomain") {
                self.cluster_domain = v;
            }
        }
        if !explicit("cluster_dns") {
            if let Some(list) = doc.get("clusterDNS").and_then(|v| v.as_array()) {
                self.cluster_dns = list
                    .iter()
                    .filter_map(|v| v.as_str()?.parse().ok())
                    .collect();
            }
        }
        if !explicit("resolv_conf") {
            if let Some(v) = s("resolvConf") {
                self.resolv_conf = v;
            }
        }
        if !explicit("port") {
            if let Some(v) = n("port") {
                self.port = u16::try_from(v)?;
            }
        }
        if !explicit("healthz_port") {
            if let Some(v) = n("healthzPort") {
                self.healthz_port = u16::try_from(v)?;
            }
        }
        if !explicit("max_pods") {
            if let Some(v) = n("maxPods") {
                self.max_pods = v;
            }
        }
        for (id, key) in [
            ("image_gc_high_threshold", "imageGCHighThresholdPercent"),
            ("image_gc_low_threshold", "imageGCLowThresholdPercent"),
        ] {
            if !explicit(id) {
                if let Some(v) = n(key) {
                    let v = u8::try_from(v)
                        .ok()
                        .filter(|v| *v <= 100)
                        .ok_or_else(|| anyhow::anyhow!("{key}: {v} is not a percentage"))?;
                    if id == "image_gc_high_threshold" {
                        self.image_gc_high_threshold = v;
                    } else {
                        self.image_gc_low_threshold = v;
                    }
                }
            }
        }
        if !explicit("tls_cert_file") {
            if let Some(v) = s("tlsCertFile") {
                self.tls_cert_file = Some(v.into());
            }
        }
        if !explicit("tls_private_key_file") {
            if let Some(v) = s("tlsPrivateKeyFile") {
                self.tls_private_key_file = Some(v.into());
            }
        }
        if !explicit("client_ca_file") {
            if let Some(v) = doc
                .pointer("/authentication/x509/clientCAFile")
                .and_then(|v| v.as_str())
            {
                self.client_ca_file = Some(v.into());
            }
        }
        if !explicit("anonymous_auth") {
            if let Some(v) = doc
                .pointer("/authentication/anonymous/enabled")
                .and_then(|v| v.as_bool())
            {
                self.anonymous_auth = v;
            }
        }
        for (id, key) in [
            ("node_status_update_frequency", "nodeStatusUpdateFrequency"),
            ("node_status_report_frequency", "nodeStatusReportFrequency"),
            ("sync_frequency", "syncFrequency"),
            ("runtime_request_timeout", "runtimeRequestTimeout"),
        ] {
            if explicit(id) {
                continue;
            }
            if let Some(v) = s(key) {
                let d = parse_go_duration(&v)
                    .ok_or_else(|| anyhow::anyhow!("{key}: invalid duration {v:?}"))?;
                match id {
                    "node_status_update_frequency" => self.node_status_update_frequency = d,
                    "node_status_report_frequency" => self.node_status_report_frequency = d,
                    "sync_frequency" => self.sync_frequency = d,
                    _ => self.runtime_request_timeout = d,
                }
            }
        }
        Ok(())
    }
}

pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_lowercase())
        .unwrap_or_else(|_| "localhost".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, FromArgMatches};

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("10s"), Some(Duration::from_secs(10)));
        assert_eq!(parse_go_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_go_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_go_duration("5"), None);
        assert_eq!(parse_go_duration(""), None);
    }

    #[test]
    fn file_fills_what_flags_did_not_set() {
        let dir = std::env::temp_dir().join(format!("kubelet-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("config.yaml");
        std::fs::write(
            &file,
            "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n\
             clusterDNS: [10.0.0.10]\nclusterDomain: example.local\nport: 11250\n\
             nodeStatusUpdateFrequency: 4s\nauthentication:\n  anonymous:\n    enabled: false\n",
        )
        .unwrap();
        let args = [
            "kubelet",
            "--config",
            file.to_str().unwrap(),
            "--port",
            "12250",
        ];
        let matches = Config::command().get_matches_from(args);
        let mut c = Config::from_arg_matches(&matches).unwrap();
        c.apply_file(&matches).unwrap();
        assert_eq!(c.port, 12250, "the flag wins");
        assert_eq!(c.cluster_domain, "example.local");
        assert_eq!(c.cluster_dns, vec!["10.0.0.10".parse::<IpAddr>().unwrap()]);
        assert_eq!(c.node_status_update_frequency, Duration::from_secs(4));
        assert!(!c.anonymous_auth);
        std::fs::remove_dir_all(&dir).ok();
    }
}
