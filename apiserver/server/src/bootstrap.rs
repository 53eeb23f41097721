//! Objects every cluster has from the start (mirrors pkg/controlplane/controller/
//! {systemnamespaces,kubernetesservice}): the default namespaces and the `kubernetes` Service,
//! plus the periodic etcd compaction (mirrors storage/etcd3/compact.go).

use crate::state::AppState;
use apiserver_apimachinery::{ApiError, Reason};
use apiserver_registry::context::{RequestContext, WriteOptions};
use apiserver_storage::Storage;
use k8s_openapi::api::core::v1::{Namespace, Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

fn ignore_exists(r: Result<impl Sized, ApiError>) -> Result<(), ApiError> {
    match r {
        Ok(_) => Ok(()),
        Err(e) if e.reason == Reason::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

pub async fn run(state: &AppState) -> anyhow::Result<()> {
    let ctx = RequestContext::default();
    let opts = WriteOptions::default();
    for name in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            ..Default::default()
        };
        ignore_exists(state.namespaces.create(&ctx, ns, &opts).await)
            .map_err(|e| anyhow::anyhow!("namespace {name}: {e}"))?;
    }
    // The built-in PriorityClasses (upstream pkg/apis/scheduling SystemPriorityClasses).
    for (name, value, description) in [
        (
            "system-node-critical",
            2_000_001_000,
            "Used for system critical pods that must not be moved from their current node.",
        ),
        (
            "system-cluster-critical",
            2_000_000_000,
            "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary.",
        ),
    ] {
        let pc = k8s_openapi::api::scheduling::v1::PriorityClass {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            value: Some(value),
            description: Some(description.into()),
            ..Default::default()
        };
        ignore_exists(state.priority_classes.create(&ctx, pc, &opts).await)
            .map_err(|e| anyhow::anyhow!("priorityclass {name}: {e}"))?;
    }
    let ip = state.kubernetes_service_ip.to_string();
    let svc = Service {
        metadata: ObjectMeta {
            name: Some("kubernetes".into()),
            namespace: Some("default".into()),
            labels: Some(BTreeMap::from([
                ("component".to_string(), "apiserver".to_string()),
                ("provider".to_string(), "kubernetes".to_string()),
            ])),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            cluster_ip: Some(ip.clone()),
            cluster_ips: Some(vec![ip]),
            type_: Some("ClusterIP".into()),
            session_affinity: Some("None".into()),
            ports: Some(vec![ServicePort {
                name: Some("https".into()),
                port: 443,
                protocol: Some("TCP".into()),
                target_port: Some(IntOrString::Int(6443)),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        status: None,
    };
    let ctx = RequestContext {
        namespace: Some("default".into()),
        ..Default::default()
    };
    // On restart the Service exists and holds its IP: creating it again would fail allocation.
    match state.services.get(Some("default"), "kubernetes").await {
        Ok(_) => return Ok(()),
        Err(e) if e.reason == Reason::NotFound => {}
        Err(e) => return Err(anyhow::anyhow!("kubernetes service: {e}")),
    }
    ignore_exists(state.services.create(&ctx, svc, &opts).await)
        .map_err(|e| anyhow::anyhow!("kubernetes service: {e}"))?;
    Ok(())
}

/// Compacts storage every `interval`, keeping the history since the previous compaction.
pub async fn compaction_loop(
    storage: Arc<dyn Storage>,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let mut last: Option<i64> = None;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        let Ok(now) = storage.current_revision().await else {
            continue;
        };
        if let Some(prev) = last {
            if prev > 0 {
                match storage.compact(prev).await {
                    Ok(()) => tracing::info!(revision = prev, "compacted storage"),
                    Err(e) => tracing::debug!(error = %e, "compaction skipped"),
                }
            }
        }
        last = Some(now);
    }
}
