//! kubelet: the node agent (upstream `cmd/kubelet`, `pkg/kubelet`). It registers its Node and
//! renews its Lease, runs the pods bound to it through the CRI, reports their status, and
//! serves logs, exec, attach and port-forward on its HTTPS port.

pub mod backoff;
pub mod config;
pub mod cri;
pub mod env;
pub mod image_gc;
pub mod images;
pub mod kubelet;
pub mod lifecycle;
pub mod logs;
pub mod metrics;
pub mod node_status;
pub mod pod_status;
pub mod pod_worker;
pub mod prober;
pub mod runtime_config;
pub mod runtime_pod;
pub mod server;
pub mod static_pods;
pub mod volumes;

pub use config::Config;

use component_base::client::ClientOptions;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::Api;
use kube::runtime::watcher;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// The address of the interface the default route uses (no packet is sent), else loopback.
pub fn default_node_ip() -> IpAddr {
    let probe = || -> std::io::Result<IpAddr> {
        let s = std::net::UdpSocket::bind("0.0.0.0:0")?;
        s.connect("10.255.255.254:9")?;
        Ok(s.local_addr()?.ip())
    };
    probe().unwrap_or(IpAddr::from([127, 0, 0, 1]))
}

/// Runs the kubelet until `shutdown` is cancelled.
pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    anyhow::ensure!(
        config.image_gc_low_threshold <= config.image_gc_high_threshold,
        "invalid configuration: imageGCLowThresholdPercent ({}) must be less than imageGCHighThresholdPercent ({})",
        config.image_gc_low_threshold,
        config.image_gc_high_threshold
    );
    let node_name = config.node_name();
    let node_ip = config.node_ip.unwrap_or_else(default_node_ip);
    let client = component_base::client::client(&ClientOptions {
        kubeconfig: config.kubeconfig.clone(),
        master: None,
        user_agent: format!(
            "kubelet/{} (linux/{}) kubernetes-rs",
            node_status::KUBELET_VERSION,
            node_status::arch()
        ),
    })
    .await?;
    let runtime = cri::Runtime::connect(
        &config.container_runtime_endpoint,
        config.runtime_request_timeout,
    )?;
    match runtime.version().await {
        Ok(v) => {
            tracing::info!(runtime = %v.runtime_name, version = %v.runtime_version, api = %v.runtime_api_version, "container runtime connected")
        }
        Err(e) => {
            tracing::warn!(error = %e, endpoint = %config.container_runtime_endpoint, "container runtime not reachable yet")
        }
    }
    std::fs::create_dir_all(config.root_dir.join("pods"))?;
    std::fs::create_dir_all(&config.pod_logs_dir)?;
    let mut labels = BTreeMap::new();
    for l in &config.node_labels {
        if let Some((k, v)) = l.split_once('=') {
            labels.insert(k.to_string(), v.to_string());
        }
    }
    let taints = config
        .register_with_taints
        .iter()
        .map(|t| node_status::parse_taint(t))
        .collect::<Result<Vec<_>, _>>()
        .map_err(anyhow::Error::msg)?;
    let settings = node_status::NodeSettings {
        name: node_name.clone(),
        node_ip,
        port: config.port,
        max_pods: config.max_pods,
        labels,
        taints,
        root_dir: config.root_dir.clone(),
    };
    let allocatable = node_status::capacity(&settings);
    tracing::info!(node = %node_name, %node_ip, "starting kubelet");
    if config.register_node {
        tokio::spawn(node_status::run(
            client.clone(),
            runtime.clone(),
            settings,
            config.node_status_update_frequency,
            config.node_status_report_frequency,
            shutdown.child_token(),
        ));
    }
    let mut registry = prometheus_client::registry::Registry::default();
    let kubelet_metrics = metrics::Metrics::register(&mut registry, &node_name);
    let (kl, probe_events) = kubelet::Kubelet::new(
        client.clone(),
        runtime,
        runtime_config::RuntimeSettings {
            root_dir: config.root_dir.clone(),
            pod_logs_dir: config.pod_logs_dir.clone(),
            cluster_dns: config.cluster_dns.clone(),
            cluster_domain: config.cluster_domain.clone(),
            resolv_conf: config.resolv_conf.clone(),
        },
        node_name.clone(),
        node_ip.to_string(),
        allocatable,
        config.sync_frequency,
        kubelet_metrics,
        shutdown.clone(),
    );
    tokio::spawn(kl.clone().handle_probe_events(probe_events));
    let pods: Api<Pod> = Api::all(client.clone());
    tokio::spawn(kl.pods.clone().run(
        pods,
        watcher::Config::default().fields(&format!("spec.nodeName={node_name}")),
        shutdown.child_token(),
    ));
    let services: Api<Service> = Api::all(client.clone());
    tokio::spawn(kl.services.clone().run(
        services,
        watcher::Config::default(),
        shutdown.child_token(),
    ));

    let registry = Arc::new(registry);
    let addrs = server::serve(
        server::ServerConfig::from_config(&config, vec![node_ip]),
        Arc::new(kl.runtime.clone()),
        Arc::new(kubelet::ServerPods(kl.clone())),
        registry,
        shutdown.child_token(),
    )
    .await?;
    tracing::info!(https = %addrs.https, healthz = ?addrs.healthz, "kubelet server listening");
    if let Ok(Some(rotation)) = logs::ContainerLogManager::new(
        Arc::new(kl.runtime.clone()),
        logs::DEFAULT_MAX_SIZE,
        logs::DEFAULT_MAX_FILES,
    ) {
        tokio::spawn(
            Arc::new(rotation).run(logs::DEFAULT_MONITOR_INTERVAL, shutdown.child_token()),
        );
    }

    tokio::select! {
        _ = shutdown.cancelled() => return Ok(()),
        _ = kl.pods.wait_synced() => {}
    }
    tokio::spawn(image_gc::run(
        kl.runtime.clone(),
        config.image_gc_high_threshold,
        config.image_gc_low_threshold,
        shutdown.child_token(),
    ));
    if let Some(dir) = config.pod_manifest_path.clone() {
        tracing::info!(path = %dir.display(), "watching static pod manifests");
        tokio::spawn(static_pods::run(kl.clone(), dir, shutdown.child_token()));
    }
    kubelet::sync_loop(kl, shutdown).await;
    Ok(())
}
