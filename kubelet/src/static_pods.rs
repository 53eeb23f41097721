//! Static pods from `--pod-manifest-path` (`staticPodPath`) and their mirror pods (upstream
//! `pkg/kubelet/config/file.go`, `config/common.go`, `pkg/kubelet/pod/mirror_client.go`). The
//! kubelet runs a static pod from its file whether or not the apiserver answers; the mirror pod
//! in the API only shows it (status is posted there).

use crate::kubelet::Kubelet;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DeleteParams, PostParams};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub const ANN_CONFIG_HASH: &str = "kubernetes.io/config.hash";
pub const ANN_CONFIG_MIRROR: &str = "kubernetes.io/config.mirror";
pub const ANN_CONFIG_SOURCE: &str = "kubernetes.io/config.source";
/// Upstream's `--file-check-frequency` default.
pub const FILE_CHECK_FREQUENCY: Duration = Duration::from_secs(20);

pub fn is_mirror(pod: &Pod) -> bool {
    pod.metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(ANN_CONFIG_MIRROR))
}

fn hash_hex(parts: &[&str]) -> String {
    let mut out = String::new();
    for seed in 0u8..2 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        seed.hash(&mut h);
        for p in parts {
            p.hash(&mut h);
        }
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out
}

/// A manifest turned into the pod the kubelet runs: named `<name>-<node>`, in `default` unless
/// it says otherwise, bound to this node, with a uid and config hash derived from its content.
pub fn static_pod(text: &str, node: &str) -> Result<Pod, String> {
    let mut pod: Pod = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
    let name = pod
        .metadata
        .name
        .clone()
        .filter(|n| !n.is_empty())
        .ok_or("the manifest has no metadata.name")?;
    let ns = pod
        .metadata
        .namespace
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "default".into());
    let hash = hash_hex(&[text, node]);
    pod.metadata.name = Some(format!("{name}-{node}"));
    pod.metadata.namespace = Some(ns);
    pod.metadata.uid = Some(hash.clone());
    let ann = pod
        .metadata
        .annotations
        .get_or_insert_with(Default::default);
    ann.insert(ANN_CONFIG_HASH.into(), hash);
    ann.insert(ANN_CONFIG_SOURCE.into(), "file".into());
    let spec = pod.spec.get_or_insert_with(Default::default);
    spec.node_name = Some(node.to_string());
    if spec.restart_policy.is_none() {
        spec.restart_policy = Some("Always".into());
    }
    Ok(pod)
}

/// The static pods in `dir` by uid (files that do not parse are skipped with a warning).
pub fn read_dir(dir: &Path, node: &str) -> HashMap<String, Pod> {
    let mut out = HashMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let path = e.path();
        let hidden = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'));
        if hidden || !path.is_file() {
            continue;
        }
        match std::fs::read_to_string(&path)
            .map_err(|e| e.to_string())
            .and_then(|t| static_pod(&t, node))
        {
            Ok(p) => {
                out.insert(p.metadata.uid.clone().unwrap_or_default(), p);
            }
            Err(err) => {
                tracing::warn!(file = %path.display(), error = %err, "could not process manifest file")
            }
        }
    }
    out
}

/// The mirror pod of a static pod: the same pod, marked as a mirror and owned by the Node.
fn mirror_of(pod: &Pod, node: &Node) -> Pod {
    let mut m = pod.clone();
    m.metadata.uid = None;
    m.metadata.resource_version = None;
    let hash = pod_hash(pod);
    m.metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert(ANN_CONFIG_MIRROR.into(), hash);
    m.metadata.owner_references = Some(vec![OwnerReference {
        api_version: "v1".into(),
        kind: "Node".into(),
        name: node.metadata.name.clone().unwrap_or_default(),
        uid: node.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        ..Default::default()
    }]);
    m.status = None;
    m
}

fn pod_hash(pod: &Pod) -> String {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(ANN_CONFIG_HASH).cloned())
        .unwrap_or_default()
}

/// Watches the manifest directory and keeps the static pods and their mirror pods current.
pub async fn run(kl: Arc<Kubelet>, dir: std::path::PathBuf, shutdown: CancellationToken) {
    let nodes: Api<Node> = Api::all(kl.client.clone());
    loop {
        let fresh = read_dir(&dir, &kl.node_name);
        let old = kl.replace_static_pods(fresh.clone());
        for (uid, p) in &fresh {
            if !old.contains_key(uid) {
                tracing::info!(pod = %crate::pod_worker::pod_full_name(p), "static pod added");
            }
            kl.dispatch(
                uid,
                p.metadata.namespace.as_deref().unwrap_or(""),
                p.metadata.name.as_deref().unwrap_or(""),
            );
        }
        for (uid, p) in &old {
            if !fresh.contains_key(uid) {
                tracing::info!(pod = %crate::pod_worker::pod_full_name(p), "static pod removed");
                kl.dispatch(uid, "", "");
            }
        }
        if let Err(e) = sync_mirrors(&kl, &nodes, &fresh, &old).await {
            tracing::info!(error = %e, "mirror pods not synced; will retry");
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(FILE_CHECK_FREQUENCY.min(Duration::from_secs(5))) => {}
        }
    }
}

async fn sync_mirrors(
    kl: &Kubelet,
    nodes: &Api<Node>,
    fresh: &HashMap<String, Pod>,
    old: &HashMap<String, Pod>,
) -> Result<(), kube::Error> {
    let node = nodes.get(&kl.node_name).await?;
    for p in fresh.values() {
        let (ns, name) = (
            p.metadata.namespace.as_deref().unwrap_or("default"),
            p.metadata.name.as_deref().unwrap_or(""),
        );
        let api: Api<Pod> = Api::namespaced(kl.client.clone(), ns);
        let current = kl.pods.get(Some(ns), name);
        let up_to_date = current.as_ref().is_some_and(|m| {
            is_mirror(m)
                && m.metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(ANN_CONFIG_MIRROR))
                    == Some(&pod_hash(p))
                && m.metadata.deletion_timestamp.is_none()
        });
        if up_to_date {
            continue;
        }
        if current.is_some() {
            let _ = api
                .delete(name, &DeleteParams::default().grace_period(0))
                .await;
        }
        match api
            .create(&PostParams::default(), &mirror_of(p, &node))
            .await
        {
            Ok(_) => tracing::info!(pod = %name, "created mirror pod"),
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(e) => return Err(e),
        }
    }
    for p in old.values().filter(|p| {
        !fresh.values().any(|f| {
            f.metadata.name == p.metadata.name && f.metadata.namespace == p.metadata.namespace
        })
    }) {
        let (ns, name) = (
            p.metadata.namespace.as_deref().unwrap_or("default"),
            p.metadata.name.as_deref().unwrap_or(""),
        );
        if kl.pods.get(Some(ns), name).is_some_and(|m| is_mirror(&m)) {
            let api: Api<Pod> = Api::namespaced(kl.client.clone(), ns);
            let _ = api
                .delete(name, &DeleteParams::default().grace_period(0))
                .await;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_become_node_bound_pods_with_content_uids() {
        let text = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  containers:\n  - name: c\n    image: busybox:1.36\n";
        let p = static_pod(text, "node-1").unwrap();
        assert_eq!(p.metadata.name.as_deref(), Some("web-node-1"));
        assert_eq!(p.metadata.namespace.as_deref(), Some("default"));
        assert_eq!(
            p.spec.as_ref().unwrap().node_name.as_deref(),
            Some("node-1")
        );
        let uid = p.metadata.uid.clone().unwrap();
        assert_eq!(uid.len(), 32);
        assert_eq!(
            static_pod(text, "node-1").unwrap().metadata.uid.unwrap(),
            uid,
            "stable"
        );
        let changed = text.replace("1.36", "1.37");
        assert_ne!(
            static_pod(&changed, "node-1")
                .unwrap()
                .metadata
                .uid
                .unwrap(),
            uid
        );
        assert!(static_pod("kind: Pod\n", "n").is_err());
        let m = mirror_of(&p, &Node::default());
        assert!(is_mirror(&m));
        assert!(!is_mirror(&p));
        assert_eq!(m.metadata.uid, None);
    }
}
