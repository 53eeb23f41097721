//! taint-eviction-controller (mirrors upstream `pkg/controller/tainteviction/taint_eviction.go`):
//! deletes pods on nodes with NoExecute taints they do not tolerate, at once, or after the
//! shortest `tolerationSeconds` of the tolerations they rely on; a taint removed in time cancels
//! the eviction.

use super::taints::min_toleration;
use crate::ControllerContext;
use crate::endpoints::support::{is_not_found, on_change};
use component_base::informer::{Change, Informer, key_of};
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{Node, Pod, Taint};
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

struct Controller {
    client: kube::Client,
    pods: Arc<Informer<Pod>>,
    nodes: Arc<Informer<Node>>,
    /// Scheduled evictions by pod key.
    scheduled: Mutex<HashMap<String, CancellationToken>>,
    recorder: component_base::events::Recorder,
    shutdown: CancellationToken,
}

pub fn start(ctx: &ControllerContext) -> BoxFuture<'static, anyhow::Result<()>> {
    let c = Arc::new(Controller {
        client: ctx.client.clone(),
        pods: ctx.informers.informer(),
        nodes: ctx.informers.informer(),
        scheduled: Mutex::default(),
        recorder: ctx.recorder("taint-eviction-controller"),
        shutdown: ctx.shutdown.clone(),
    });
    let shutdown = ctx.shutdown.clone();
    Box::pin(async move {
        let synced = tokio::select! {
            _ = shutdown.cancelled() => false,
            _ = async { c.pods.wait_synced().await; c.nodes.wait_synced().await; } => true,
        };
        if !synced {
            return Ok(());
        }
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Work>();
        let t = tx.clone();
        on_change(&c.nodes, &shutdown, move |ch: Change<Node>| {
            let _ = t.send(Work::Node(
                ch.object().metadata.name.clone().unwrap_or_default(),
            ));
        });
        on_change(&c.pods, &shutdown, move |ch: Change<Pod>| match ch {
            Change::Deleted(p) => {
                let _ = tx.send(Work::PodGone(key_of(p.as_ref())));
            }
            other => {
                let _ = tx.send(Work::Pod(other.object().clone()));
            }
        });
        loop {
            let w = tokio::select! {
                _ = shutdown.cancelled() => break,
                w = rx.recv() => match w { Some(w) => w, None => break },
            };
            match w {
                Work::Node(name) => {
                    let pods: Vec<Arc<Pod>> = c
                        .pods
                        .list()
                        .into_iter()
                        .filter(|p| node_of(p) == Some(name.as_str()))
                        .collect();
                    for p in pods {
                        c.process_pod(&p);
                    }
                }
                Work::Pod(p) => c.process_pod(&p),
                Work::PodGone(key) => c.cancel(&key, None),
            }
        }
        Ok(())
    })
}

enum Work {
    Node(String),
    Pod(Arc<Pod>),
    PodGone(String),
}

fn node_of(p: &Pod) -> Option<&str> {
    p.spec
        .as_ref()?
        .node_name
        .as_deref()
        .filter(|n| !n.is_empty())
}

impl Controller {
    fn process_pod(self: &Arc<Self>, pod: &Arc<Pod>) {
        let key = key_of(pod.as_ref());
        if pod.metadata.deletion_timestamp.is_some() {
            return;
        }
        let Some(node) = node_of(pod).and_then(|n| self.nodes.get(None, n)) else {
            self.cancel(&key, None);
            return;
        };
        let taints: Vec<&Taint> = node
            .spec
            .as_ref()
            .and_then(|s| s.taints.as_ref())
            .into_iter()
            .flatten()
            .filter(|t| t.effect == "NoExecute")
            .collect();
        if taints.is_empty() {
            self.cancel(&key, Some(pod));
            return;
        }
        let tolerations = pod
            .spec
            .as_ref()
            .and_then(|s| s.tolerations.clone())
            .unwrap_or_default();
        let delay = match min_toleration(&tolerations, &taints) {
            None => Some(std::time::Duration::ZERO),
            Some(d) => d,
        };
        let Some(delay) = delay else {
            // Tolerated forever.
            self.cancel(&key, Some(pod));
            return;
        };
        if self.scheduled.lock().expect("evictions").contains_key(&key) {
            return;
        }
        let token = self.shutdown.child_token();
        self.scheduled
            .lock()
            .expect("evictions")
            .insert(key.clone(), token.clone());
        let c = self.clone();
        let pod = pod.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = token.cancelled() => return,
                _ = tokio::time::sleep(delay) => {}
            }
            if let Err(e) = c.evict(&pod).await {
                tracing::warn!(pod = %key, error = %format!("{e:#}"), "taint eviction failed");
            }
            c.scheduled.lock().expect("evictions").remove(&key);
        });
    }

    fn cancel(&self, key: &str, pod: Option<&Arc<Pod>>) {
        if let Some(t) = self.scheduled.lock().expect("evictions").remove(key) {
            t.cancel();
            if let Some(p) = pod {
                self.recorder.normal(
                    p.as_ref(),
                    "TaintManagerEviction",
                    "Cancel",
                    format!("Cancelling deletion of Pod {key}"),
                );
            }
        }
    }

    /// Marks the pod with a `DisruptionTarget` condition and deletes it.
    async fn evict(&self, pod: &Pod) -> anyhow::Result<()> {
        let ns = pod.metadata.namespace.as_deref().unwrap_or("");
        let name = pod.metadata.name.as_deref().unwrap_or("");
        self.recorder.normal(
            pod,
            "TaintManagerEviction",
            "Delete",
            format!("Marking for deletion Pod {ns}/{name}"),
        );
        let api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        let cond = serde_json::json!({"status": {"conditions": [{
            "type": "DisruptionTarget", "status": "True", "reason": "DeletionByTaintManager",
            "message": "Taint manager: deleting due to NoExecute taint",
            "lastTransitionTime": crate::endpoints::support::now(),
        }]}});
        match api
            .patch_status(name, &PatchParams::default(), &Patch::Strategic(cond))
            .await
        {
            Err(e) if is_not_found(&e) => return Ok(()),
            Err(e) => tracing::debug!(error = %e, "adding the DisruptionTarget condition failed"),
            Ok(_) => {}
        }
        match api.delete(name, &DeleteParams::default()).await {
            Err(e) if !is_not_found(&e) => Err(e.into()),
            _ => Ok(()),
        }
    }
}
