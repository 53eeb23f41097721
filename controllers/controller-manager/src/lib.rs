//! kube-controller-manager (mirrors upstream `cmd/kube-controller-manager/app`): flags, leader
//! election, the shared informer factory and the table of controllers started by `--controllers`.

pub mod controller_utils;
pub mod cronjob;
pub mod daemonset;
pub mod deployment;
pub mod disruption;
pub mod endpoints;
pub mod endpointslice;
pub mod endpointslicemirroring;
pub mod history;
pub mod job;
pub mod nodelifecycle;
pub mod podutil;
pub mod replicaset;
pub mod resourcequota;
pub mod statefulset;

use clap::Parser;
use component_base::InformerFactory;
use component_base::client::ClientOptions;
use component_base::events::Recorder;
use component_base::leader::{LeaderElectionConfig, LeaderElector, default_identity};
use component_base::serve::Health;
use futures::future::BoxFuture;
use prometheus_client::registry::Registry;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub mod garbagecollector;
pub mod namespace;
pub mod podgc;
pub mod rootcacertpublisher;
pub mod serviceaccount;
pub mod ttlafterfinished;

#[derive(Parser, Clone, Debug)]
#[command(
    name = "kube-controller-manager",
    about = "Runs the Kubernetes controllers against an API server."
)]
pub struct Config {
    /// Path to a kubeconfig file with authorization and master location information.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// The address of the Kubernetes API server (overrides any value in kubeconfig).
    #[arg(long)]
    pub master: Option<String>,
    /// Controllers to enable: '*' enables all on-by-default controllers, 'foo' enables foo,
    /// '-foo' disables foo.
    #[arg(long, value_delimiter = ',', default_value = "*")]
    pub controllers: Vec<String>,
    /// Start a leader election client and gain leadership before running the controllers.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_elect: bool,
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub leader_elect_lease_duration: Duration,
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub leader_elect_renew_deadline: Duration,
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub leader_elect_retry_period: Duration,
    #[arg(long, default_value = "kube-system")]
    pub leader_elect_resource_namespace: String,
    #[arg(long, default_value = "kube-controller-manager")]
    pub leader_elect_resource_name: String,
    /// The IP address on which to serve /healthz and /metrics.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind_address: std::net::IpAddr,
    /// The port on which to serve /healthz and /metrics (0 picks a free port; plain HTTP, see
    /// component_base::serve).
    #[arg(long, default_value_t = 10257)]
    pub secure_port: u16,
    /// Root CA published as `kube-root-ca.crt` in every namespace and put into service-account
    /// token secrets.
    #[arg(long)]
    pub root_ca_file: Option<PathBuf>,
    #[arg(long, default_value_t = 5)]
    pub concurrent_deployment_syncs: usize,
    #[arg(long, default_value_t = 5)]
    pub concurrent_replicaset_syncs: usize,
    #[arg(long, default_value_t = 10)]
    pub concurrent_namespace_syncs: usize,
    #[arg(long, default_value_t = 20)]
    pub concurrent_gc_syncs: usize,
    #[arg(long, default_value_t = 5)]
    pub concurrent_service_endpoint_syncs: usize,
    #[arg(long, default_value_t = 5)]
    pub concurrent_job_syncs: usize,
    #[arg(long, default_value_t = 2)]
    pub concurrent_daemonset_syncs: usize,
    #[arg(long, default_value_t = 5)]
    pub concurrent_statefulset_syncs: usize,
    /// Number of terminated pods that can exist before the terminated pod garbage collector
    /// starts deleting terminated pods. If <= 0, the terminated pod garbage collector is
    /// disabled.
    #[arg(long, default_value_t = 12500)]
    pub terminated_pod_gc_threshold: i64,
    /// How often the node lifecycle controller checks node health.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub node_monitor_period: Duration,
    /// How long a node may go without renewing its Lease or posting status before it is
    /// considered unreachable.
    #[arg(long, default_value = "40s", value_parser = parse_duration)]
    pub node_monitor_grace_period: Duration,
    /// How long a node that never posted status is given before it is considered unreachable.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub node_startup_grace_period: Duration,
    /// Log verbosity (klog levels).
    #[arg(short = 'v', long = "v", default_value_t = 0)]
    pub v: u8,
}

pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, mult) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = s.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num.parse().map_err(|_| format!("invalid duration {s:?}"))?;
    Ok(Duration::from_secs_f64(v * mult))
}

/// What a controller gets when it starts.
#[derive(Clone)]
pub struct ControllerContext {
    pub client: kube::Client,
    pub informers: Arc<InformerFactory>,
    pub config: Arc<Config>,
    pub shutdown: CancellationToken,
}

impl ControllerContext {
    /// An event recorder reporting as `component` (upstream's reporting controller names, e.g.
    /// `deployment-controller`).
    pub fn recorder(&self, component: &str) -> Recorder {
        Recorder::new(self.client.clone(), component)
    }
}

/// Starts a controller: requests its informers from the factory and returns its run loop.
pub type StartFn = fn(&ControllerContext) -> BoxFuture<'static, anyhow::Result<()>>;

/// One row of the controller table.
pub struct ControllerDescriptor {
    /// Upstream's name as accepted by `--controllers` (e.g. `deployment-controller`).
    pub name: &'static str,
    /// Older names also accepted (e.g. `deployment`).
    pub aliases: &'static [&'static str],
    pub enabled_by_default: bool,
    pub start: StartFn,
}

/// Every controller this binary can run.
pub fn controllers() -> Vec<ControllerDescriptor> {
    vec![
        ControllerDescriptor {
            name: "garbage-collector-controller",
            aliases: &["garbagecollector"],
            enabled_by_default: true,
            start: garbagecollector::start,
        },
        ControllerDescriptor {
            name: "namespace-controller",
            aliases: &["namespace"],
            enabled_by_default: true,
            start: namespace::start,
        },
        ControllerDescriptor {
            name: "serviceaccount-controller",
            aliases: &["serviceaccount"],
            enabled_by_default: true,
            start: serviceaccount::start,
        },
        ControllerDescriptor {
            name: "root-ca-certificate-publisher-controller",
            aliases: &["root-ca-cert-publisher"],
            enabled_by_default: true,
            start: rootcacertpublisher::start,
        },
        ControllerDescriptor {
            name: "pod-garbage-collector-controller",
            aliases: &["podgc"],
            enabled_by_default: true,
            start: podgc::start,
        },
        ControllerDescriptor {
            name: "ttl-after-finished-controller",
            aliases: &["ttlafterfinished"],
            enabled_by_default: true,
            start: ttlafterfinished::start,
        },
        ControllerDescriptor {
            name: "deployment-controller",
            aliases: &["deployment"],
            enabled_by_default: true,
            start: deployment::start,
        },
        ControllerDescriptor {
            name: "replicaset-controller",
            aliases: &["replicaset"],
            enabled_by_default: true,
            start: replicaset::start_replicaset,
        },
        ControllerDescriptor {
            name: "replicationcontroller-controller",
            aliases: &["replicationcontroller"],
            enabled_by_default: true,
            start: replicaset::start_replicationcontroller,
        },
        ControllerDescriptor {
            name: "endpoints-controller",
            aliases: &["endpoint"],
            enabled_by_default: true,
            start: endpoints::start,
        },
        ControllerDescriptor {
            name: "endpointslice-controller",
            aliases: &["endpointslice"],
            enabled_by_default: true,
            start: endpointslice::start,
        },
        ControllerDescriptor {
            name: "endpointslice-mirroring-controller",
            aliases: &["endpointslicemirroring"],
            enabled_by_default: true,
            start: endpointslicemirroring::start,
        },
        ControllerDescriptor {
            name: "disruption-controller",
            aliases: &["disruption"],
            enabled_by_default: true,
            start: disruption::start,
        },
        ControllerDescriptor {
            name: "node-lifecycle-controller",
            aliases: &["nodelifecycle"],
            enabled_by_default: true,
            start: nodelifecycle::start,
        },
        ControllerDescriptor {
            name: "taint-eviction-controller",
            aliases: &[],
            enabled_by_default: true,
            start: nodelifecycle::taint_eviction::start,
        },
        ControllerDescriptor {
            name: "resourcequota-controller",
            aliases: &["resourcequota"],
            enabled_by_default: true,
            start: resourcequota::start,
        },
        ControllerDescriptor {
            name: "job-controller",
            aliases: &["job"],
            enabled_by_default: true,
            start: job::start,
        },
        ControllerDescriptor {
            name: "cronjob-controller",
            aliases: &["cronjob"],
            enabled_by_default: true,
            start: cronjob::start,
        },
        ControllerDescriptor {
            name: "daemonset-controller",
            aliases: &["daemonset"],
            enabled_by_default: true,
            start: daemonset::start,
        },
        ControllerDescriptor {
            name: "statefulset-controller",
            aliases: &["statefulset"],
            enabled_by_default: true,
            start: statefulset::start,
        },
    ]
}

/// Whether `--controllers` enables the descriptor (upstream `IsControllerEnabled`).
pub fn is_enabled(flags: &[String], d: &ControllerDescriptor) -> bool {
    let names: Vec<&str> = std::iter::once(d.name)
        .chain(d.aliases.iter().copied())
        .collect();
    let mut star = false;
    for f in flags {
        let f = f.trim();
        if f == "*" {
            star = true;
        } else if let Some(neg) = f.strip_prefix('-') {
            if names.contains(&neg) {
                return false;
            }
        } else if names.contains(&f) {
            return true;
        }
    }
    star && d.enabled_by_default
}

/// Runs the controller manager until shut down (or, with leader election, until leadership is
/// lost, which is an error as upstream).
pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let known: Vec<ControllerDescriptor> = controllers();
    for f in &config.controllers {
        let n = f.trim().trim_start_matches('-');
        if n != "*" && !known.iter().any(|d| d.name == n || d.aliases.contains(&n)) {
            anyhow::bail!("{n:?} is not in the list of known controllers");
        }
    }
    let client = component_base::client::client(&ClientOptions {
        kubeconfig: config.kubeconfig.clone(),
        master: config.master.clone(),
        user_agent: "kube-controller-manager".into(),
    })
    .await?;
    let health = Health::default();
    let registry = Arc::new(Registry::default());
    let addr = SocketAddr::new(config.bind_address, config.secure_port);
    let bound =
        component_base::serve::serve(addr, health.clone(), registry, shutdown.clone()).await?;
    tracing::info!(address = %bound, "serving healthz and metrics");
    let config = Arc::new(config);
    let lead = {
        let client = client.clone();
        let config = config.clone();
        move |leading: CancellationToken| start_controllers(client, config, leading)
    };
    if config.leader_elect {
        let mut le = LeaderElectionConfig::new(
            &config.leader_elect_resource_namespace,
            &config.leader_elect_resource_name,
            default_identity(),
        );
        le.lease_duration = config.leader_elect_lease_duration;
        le.renew_deadline = config.leader_elect_renew_deadline;
        le.retry_period = config.leader_elect_retry_period;
        LeaderElector::new(client, le).run(shutdown, lead).await
    } else {
        lead(shutdown).await
    }
}

async fn start_controllers(
    client: kube::Client,
    config: Arc<Config>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let ctx = ControllerContext {
        informers: InformerFactory::new(client.clone()),
        client,
        config: config.clone(),
        shutdown: shutdown.clone(),
    };
    let mut tasks = Vec::new();
    for d in controllers() {
        if !is_enabled(&config.controllers, &d) {
            tracing::info!(controller = d.name, "controller disabled");
            continue;
        }
        tracing::info!(controller = d.name, "starting controller");
        let fut = (d.start)(&ctx);
        let name = d.name;
        tasks.push(tokio::spawn(async move {
            if let Err(e) = fut.await {
                tracing::error!(controller = name, error = %format!("{e:#}"), "controller stopped");
            }
        }));
    }
    ctx.informers.start(&shutdown);
    shutdown.cancelled().await;
    for t in tasks {
        let _ = t.await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(name: &'static str, on: bool) -> ControllerDescriptor {
        fn start(_: &ControllerContext) -> BoxFuture<'static, anyhow::Result<()>> {
            Box::pin(async { Ok(()) })
        }
        ControllerDescriptor {
            name,
            aliases: &[],
            enabled_by_default: on,
            start,
        }
    }

    #[test]
    fn controllers_flag_semantics() {
        let flags = |s: &str| s.split(',').map(String::from).collect::<Vec<_>>();
        assert!(is_enabled(&flags("*"), &d("a", true)));
        assert!(!is_enabled(&flags("*"), &d("b", false)));
        assert!(is_enabled(&flags("*,b"), &d("b", false)));
        assert!(!is_enabled(&flags("*,-a"), &d("a", true)));
        assert!(!is_enabled(&flags("b"), &d("a", true)));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("15s").unwrap(), Duration::from_secs(15));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert!(parse_duration("x").is_err());
    }
}
