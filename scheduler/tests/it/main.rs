//! kube-scheduler against an in-process kube-apiserver (memory storage), with plain Node
//! objects (no kubelet). One file per area.

mod basic;
mod leader;
mod placement;
mod preemption;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ListParams, PostParams};
use std::future::Future;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub struct Cluster {
    pub server: apiserver::TestServer,
    pub client: kube::Client,
    stop: CancellationToken,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Starts `kube-scheduler --master <url> --secure-port=0 <extra...>`; cancel the token to stop.
pub fn start_scheduler(
    url: &str,
    extra: &[&str],
) -> (
    CancellationToken,
    tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    let mut args = vec![
        "kube-scheduler".to_string(),
        format!("--master={url}"),
        "--secure-port=0".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let config = <scheduler::Config as clap::Parser>::parse_from(args);
    let stop = CancellationToken::new();
    let s = stop.clone();
    let h = tokio::spawn(async move { scheduler::run(config, s).await });
    (stop, h)
}

/// An apiserver and one scheduler without leader election.
pub async fn cluster(extra: &[&str]) -> Cluster {
    cluster_with(vec![], extra).await
}

/// Like [`cluster`], with `nodes` created before the scheduler starts (so its first cycle
/// sees them all).
pub async fn cluster_with(nodes: Vec<Node>, extra: &[&str]) -> Cluster {
    let server = apiserver::TestServer::start(&[]).await.expect("apiserver");
    let client = kube::Client::try_from(kube::Config::new(server.url.parse().unwrap())).unwrap();
    for n in nodes {
        create_node(&client, n).await;
    }
    let mut args = vec!["--leader-elect=false"];
    args.extend_from_slice(extra);
    let (stop, _) = start_scheduler(&server.url, &args);
    Cluster {
        server,
        client,
        stop,
    }
}

pub fn node(name: &str, cpu: &str, labels: &[(&str, &str)], taints: serde_json::Value) -> Node {
    let mut l = serde_json::Map::new();
    l.insert("kubernetes.io/hostname".into(), name.into());
    for (k, v) in labels {
        l.insert(k.to_string(), (*v).into());
    }
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": l},
        "spec": {"taints": taints},
        "status": {
            "capacity": {"cpu": cpu, "memory": "8Gi", "pods": "110"},
            "allocatable": {"cpu": cpu, "memory": "8Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True"}]
        }
    }))
    .unwrap()
}

pub async fn create_node(c: &kube::Client, n: Node) {
    let api: Api<Node> = Api::all(c.clone());
    let created = api
        .create(&PostParams::default(), &n)
        .await
        .expect("create node");
    // Some servers drop status on create; make sure allocatable is there.
    if created
        .status
        .as_ref()
        .and_then(|s| s.allocatable.as_ref())
        .is_none()
    {
        let mut n2 = created.clone();
        n2.status = n.status.clone();
        api.replace_status(
            created.metadata.name.as_deref().unwrap(),
            &PostParams::default(),
            &n2,
        )
        .await
        .expect("node status");
    }
}

pub fn pod(name: &str, cpu: &str, spec_extra: serde_json::Value) -> Pod {
    let mut spec = serde_json::json!({
        "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10",
            "resources": {"requests": {"cpu": cpu, "memory": "64Mi"}}}]
    });
    if let (Some(s), Some(extra)) = (spec.as_object_mut(), spec_extra.as_object()) {
        for (k, v) in extra {
            s.insert(k.clone(), v.clone());
        }
    }
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": {"app": "web"}},
        "spec": spec
    }))
    .unwrap()
}

pub async fn create_pod(c: &kube::Client, p: Pod) {
    let api: Api<Pod> = Api::namespaced(c.clone(), "default");
    api.create(&PostParams::default(), &p)
        .await
        .expect("create pod");
}

pub async fn node_of(c: &kube::Client, name: &str) -> Option<String> {
    let api: Api<Pod> = Api::namespaced(c.clone(), "default");
    api.get(name).await.ok()?.spec?.node_name
}

/// Waits for the pod to be bound and returns its node.
pub async fn wait_bound(c: &kube::Client, name: &str) -> String {
    wait_for(20, &format!("pod {name} to be bound"), || node_of(c, name)).await
}

/// Events (events.k8s.io/v1) about a pod: (type, reason, note).
pub async fn events_for(c: &kube::Client, pod: &str) -> Vec<(String, String, String)> {
    let api: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(c.clone(), "default");
    let list = api.list(&ListParams::default()).await.expect("list events");
    list.items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(pod))
        .map(|e| {
            (
                e.type_.unwrap_or_default(),
                e.reason.unwrap_or_default(),
                e.note.unwrap_or_default(),
            )
        })
        .collect()
}

/// Polls `check` every 100 ms until it returns Some, failing after `secs` seconds.
pub async fn wait_for<T, F, Fut>(secs: u64, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {secs}s waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
