//! kube-scheduler (mirrors upstream `cmd/kube-scheduler/app` and `pkg/scheduler/scheduler.go`):
//! flags and `--config`, leader election, the informers feeding the cache and the queue, and
//! the scheduling loop.

pub mod cache;
pub mod config;
pub mod framework;
pub mod metrics;
pub mod plugins;
pub mod queue;
pub mod schedule_one;

use crate::cache::Cache;
use crate::config::{KubeSchedulerConfiguration, build_framework, plugin_events};
use crate::framework::runtime::{Framework, Nominator};
use crate::framework::{ClusterEvent, PodInfo};
use crate::queue::SchedulingQueue;
use crate::schedule_one::{Scheduler, Shared};
use clap::Parser;
use component_base::client::ClientOptions;
use component_base::events::Recorder;
use component_base::leader::{LeaderElectionConfig, LeaderElector, default_identity};
use component_base::serve::Health;
use component_base::{Change, InformerFactory};
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use prometheus_client::registry::Registry;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Parser, Clone, Debug)]
#[command(name = "kube-scheduler", about = "Assigns pending pods to nodes.")]
pub struct Config {
    /// Path to a kubeconfig file with authorization and master location information.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// The address of the Kubernetes API server (overrides any value in kubeconfig).
    #[arg(long)]
    pub master: Option<String>,
    /// The path to the KubeSchedulerConfiguration file.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Start a leader election client and gain leadership before scheduling.
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
    #[arg(long, default_value = "kube-scheduler")]
    pub leader_elect_resource_name: String,
    /// The IP address on which to serve /healthz and /metrics.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind_address: std::net::IpAddr,
    /// The port for /healthz and /metrics (0 picks a free port; plain HTTP).
    #[arg(long, default_value_t = 10259)]
    pub secure_port: u16,
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
    if !v.is_finite() || v < 0.0 {
        return Err(format!("invalid duration {s:?}"));
    }
    Ok(Duration::from_secs_f64(v * mult))
}

/// Runs the scheduler until shut down (or, with leader election, until leadership is lost,
/// which is an error as upstream).
pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let file = match &config.config {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .map_err(|e| anyhow::anyhow!("reading {}: {e}", p.display()))?;
            KubeSchedulerConfiguration::parse(&text)
                .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?
        }
        None => KubeSchedulerConfiguration::default(),
    };
    // Fail early on a bad profile.
    for p in file.profiles() {
        build_framework(&p, &plugins::Handle::default(), Arc::default())?;
    }
    let kubeconfig = config.kubeconfig.clone().or_else(|| {
        file.client_connection
            .as_ref()
            .and_then(|c| c.kubeconfig.clone())
            .map(PathBuf::from)
    });
    let client = component_base::client::client(&ClientOptions {
        kubeconfig,
        master: config.master.clone(),
        user_agent: "kube-scheduler".into(),
    })
    .await?;
    let health = Health::default();
    health.add("ping", || true);
    let mut registry = Registry::default();
    let metrics = Arc::new(metrics::Metrics::register(&mut registry));
    let registry = Arc::new(registry);
    let addr = SocketAddr::new(config.bind_address, config.secure_port);
    let bound = component_base::serve::serve(addr, health, registry, shutdown.clone()).await?;
    tracing::info!(address = %bound, "serving healthz and metrics");
    let le = file.leader_election.clone().unwrap_or_default();
    let dur = |v: &Option<String>, d: Duration| -> anyhow::Result<Duration> {
        match v {
            Some(s) => parse_duration(s).map_err(|e| anyhow::anyhow!(e)),
            None => Ok(d),
        }
    };
    let mut lec = LeaderElectionConfig::new(
        le.resource_namespace
            .as_deref()
            .unwrap_or(&config.leader_elect_resource_namespace),
        le.resource_name
            .as_deref()
            .unwrap_or(&config.leader_elect_resource_name),
        default_identity(),
    );
    lec.lease_duration = dur(&le.lease_duration, config.leader_elect_lease_duration)?;
    lec.renew_deadline = dur(&le.renew_deadline, config.leader_elect_renew_deadline)?;
    lec.retry_period = dur(&le.retry_period, config.leader_elect_retry_period)?;
    let leader_elect = le.leader_elect.unwrap_or(config.leader_elect);
    let file = Arc::new(file);
    let lead = {
        let client = client.clone();
        move |leading: CancellationToken| run_scheduler(client, file, metrics, leading)
    };
    if leader_elect {
        LeaderElector::new(client, lec).run(shutdown, lead).await
    } else {
        lead(shutdown).await
    }
}

fn assigned(p: &Pod) -> bool {
    p.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .is_some_and(|n| !n.is_empty())
}

fn terminal(p: &Pod) -> bool {
    matches!(
        p.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

/// Feeds pod and node changes into the cache and the queue (upstream `eventhandlers.go`).
pub struct EventHandler {
    pub cache: Arc<Cache>,
    pub queue: Arc<SchedulingQueue>,
    pub profiles: HashSet<String>,
}

impl EventHandler {
    fn responsible(&self, p: &Pod) -> bool {
        let name = p
            .spec
            .as_ref()
            .and_then(|s| s.scheduler_name.as_deref())
            .unwrap_or("default-scheduler");
        self.profiles.contains(name)
    }

    pub fn on_node(&self, c: Change<Node>) {
        match c {
            Change::Added(n) => {
                self.cache.add_node(n);
                self.queue.move_all(ClusterEvent::NodeAdd);
            }
            Change::Updated(_, n) => {
                self.cache.update_node(n);
                self.queue.move_all(ClusterEvent::NodeUpdate);
            }
            Change::Deleted(n) => self
                .cache
                .remove_node(n.metadata.name.as_deref().unwrap_or("")),
        }
    }

    pub fn on_pod(&self, c: Change<Pod>) {
        match c {
            Change::Added(p) => {
                if terminal(&p) {
                    return;
                }
                if assigned(&p) {
                    self.cache.add_pod(Arc::new(PodInfo::new(p)));
                    self.queue.move_all(ClusterEvent::AssignedPodAdd);
                } else if self.responsible(&p) {
                    self.queue.add(Arc::new(PodInfo::new(p)));
                }
            }
            Change::Updated(old, p) => {
                let key = component_base::informer::key_of(&*p);
                if assigned(&p) {
                    if !assigned(&old) {
                        self.queue.delete(&key);
                    }
                    if terminal(&p) {
                        self.cache.remove_pod(&key);
                        self.queue.move_all(ClusterEvent::AssignedPodDelete);
                        return;
                    }
                    self.cache.update_pod(Arc::new(PodInfo::new(p)));
                    self.queue.move_all(if assigned(&old) {
                        ClusterEvent::AssignedPodUpdate
                    } else {
                        ClusterEvent::AssignedPodAdd
                    });
                } else if self.responsible(&p) && !terminal(&p) {
                    self.queue.update(Arc::new(PodInfo::new(p)));
                } else {
                    self.queue.delete(&key);
                }
            }
            Change::Deleted(p) => {
                let key = component_base::informer::key_of(&*p);
                if assigned(&p) {
                    self.cache.remove_pod(&key);
                    self.queue.move_all(ClusterEvent::AssignedPodDelete);
                } else {
                    self.queue.delete(&key);
                }
            }
        }
    }
}

/// Builds the profiles and runs the informers, event handlers, queue and scheduling loop
/// until `shutdown`.
pub async fn run_scheduler(
    client: kube::Client,
    file: Arc<KubeSchedulerConfiguration>,
    metrics: Arc<metrics::Metrics>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let factory = InformerFactory::new(client.clone());
    let pods = factory.informer::<Pod>();
    let nodes = factory.informer::<Node>();
    let namespaces = factory.informer::<Namespace>();
    let nominator: Arc<Nominator> = Arc::default();
    let mut profiles: HashMap<String, Arc<Framework>> = HashMap::new();
    let mut recorders = HashMap::new();
    for p in file.profiles() {
        let name = p
            .scheduler_name
            .clone()
            .unwrap_or_else(|| "default-scheduler".into());
        let recorder = Recorder::new(client.clone(), &name);
        let handle = plugins::Handle {
            client: Some(client.clone()),
            informers: Some(factory.clone()),
            recorder: Some(recorder.clone()),
        };
        let fw = build_framework(&p, &handle, nominator.clone())?;
        recorders.insert(name.clone(), recorder);
        profiles.insert(name, Arc::new(fw));
    }
    let events = plugin_events(&profiles.values().map(|f| f.as_ref()).collect::<Vec<_>>());
    let queue = Arc::new(SchedulingQueue::new(nominator, events));
    queue.set_backoff(
        Duration::from_secs(file.pod_initial_backoff_seconds.unwrap_or(1).max(1)),
        Duration::from_secs(file.pod_max_backoff_seconds.unwrap_or(10).max(1)),
    );
    let cache = Arc::new(Cache::new());
    factory.start(&shutdown);
    if !factory.wait_for_cache_sync(&shutdown).await {
        return Ok(());
    }
    let handler = EventHandler {
        cache: cache.clone(),
        queue: queue.clone(),
        profiles: profiles.keys().cloned().collect(),
    };
    let mut node_rx = nodes.subscribe();
    let mut pod_rx = pods.subscribe();
    // The state as listed goes in before the first cycle: nodes, then pods.
    while let Ok(c) = node_rx.try_recv() {
        handler.on_node(c);
    }
    while let Ok(c) = pod_rx.try_recv() {
        handler.on_pod(c);
    }
    let stop = shutdown.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                Some(c) = node_rx.recv() => handler.on_node(c),
                Some(c) = pod_rx.recv() => handler.on_pod(c),
                else => return,
            }
        }
    });
    tokio::spawn(queue.clone().run_flusher(shutdown.clone()));
    {
        let (queue, metrics, stop) = (queue.clone(), metrics.clone(), shutdown.clone());
        tokio::spawn(async move {
            loop {
                metrics.set_pending(queue.lens());
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        });
    }
    let shared = Arc::new(Shared {
        metrics: Some(metrics),
        cache,
        queue: queue.clone(),
        client: Some(client),
        recorders,
        pods: Some(pods),
    });
    let mut sched = Scheduler::new(
        shared,
        profiles,
        file.percentage_of_nodes_to_score.unwrap_or(0),
    );
    sched.snapshot.namespaces = Some(namespaces);
    tracing::info!("starting the scheduling loop");
    tokio::select! {
        _ = shutdown.cancelled() => {}
        _ = sched.run() => {}
    }
    queue.close();
    Ok(())
}
