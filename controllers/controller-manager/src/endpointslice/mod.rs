//! endpointslice-controller (mirrors upstream `pkg/controller/endpointslice/endpointslice_controller.go`):
//! keeps the EndpointSlices of every Service with a selector, managed by
//! `endpointslice-controller.k8s.io`, in line with the selected pods.

pub mod reconciler;
pub mod util;

use crate::ControllerContext;
use crate::endpoints::support::{on_change, shut_down_on_cancel};
use component_base::informer::{Change, Informer, key_of, split_key};
use component_base::workqueue::{WorkQueue, run_workers};
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use reconciler::{LABEL_MANAGED_BY, LABEL_SERVICE_NAME, Reconciler};
use std::sync::Arc;
use std::time::Duration;

pub const CONTROLLER_NAME: &str = "endpointslice-controller.k8s.io";
/// Upstream `--max-endpoints-per-slice` default.
pub const MAX_ENDPOINTS_PER_SLICE: usize = 100;
/// Upstream `endpointSliceChangeMinSyncDelay`.
const SLICE_CHANGE_DELAY: Duration = Duration::from_secs(1);

struct Controller {
    services: Arc<Informer<Service>>,
    pods: Arc<Informer<Pod>>,
    slices: Arc<Informer<EndpointSlice>>,
    nodes: Arc<Informer<Node>>,
    queue: Arc<WorkQueue<String>>,
    triggers: util::TriggerTimeTracker,
    reconciler: Reconciler,
    recorder: component_base::events::Recorder,
}

pub fn start(ctx: &ControllerContext) -> BoxFuture<'static, anyhow::Result<()>> {
    let c = Arc::new(Controller {
        services: ctx.informers.informer::<Service>(),
        pods: ctx.informers.informer::<Pod>(),
        slices: ctx.informers.informer::<EndpointSlice>(),
        nodes: ctx.informers.informer::<Node>(),
        queue: WorkQueue::new("endpoint_slice"),
        triggers: util::TriggerTimeTracker::default(),
        reconciler: Reconciler {
            client: ctx.client.clone(),
            max_endpoints: MAX_ENDPOINTS_PER_SLICE,
            managed_by: CONTROLLER_NAME,
            tracker: Default::default(),
        },
        recorder: ctx.recorder("endpoint-slice-controller"),
    });
    let shutdown = ctx.shutdown.clone();
    let workers = ctx.config.concurrent_service_endpoint_syncs;
    Box::pin(async move {
        let synced = tokio::select! {
            _ = shutdown.cancelled() => false,
            _ = async {
                c.services.wait_synced().await;
                c.pods.wait_synced().await;
                c.slices.wait_synced().await;
                c.nodes.wait_synced().await;
            } => true,
        };
        if !synced {
            return Ok(());
        }
        c.subscribe(&shutdown);
        shut_down_on_cancel(&c.queue, &shutdown);
        let cc = c.clone();
        run_workers(c.queue.clone(), workers, move |key: String| {
            let c = cc.clone();
            async move { c.sync(&key).await }
        })
        .await;
        Ok(())
    })
}

/// The `namespace/service` key a slice belongs to, if it names one.
pub fn service_key_of(slice: &EndpointSlice) -> Option<String> {
    let svc = slice.metadata.labels.as_ref()?.get(LABEL_SERVICE_NAME)?;
    if svc.is_empty() {
        return None;
    }
    Some(format!(
        "{}/{svc}",
        slice.metadata.namespace.as_deref().unwrap_or("")
    ))
}

fn managed_by(slice: &EndpointSlice, controller: &str) -> bool {
    slice
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(LABEL_MANAGED_BY))
        .is_some_and(|m| m == controller)
}

impl Controller {
    fn subscribe(self: &Arc<Self>, shutdown: &tokio_util::sync::CancellationToken) {
        let q = self.queue.clone();
        on_change(&self.services, shutdown, move |ch: Change<Service>| {
            q.add(key_of(ch.object().as_ref()));
        });
        let c = self.clone();
        on_change(&self.pods, shutdown, move |ch: Change<Pod>| {
            let ns = ch.object().metadata.namespace.clone().unwrap_or_default();
            let services = c.services.list_namespace(&ns);
            let keys = match &ch {
                Change::Added(p) | Change::Deleted(p) => {
                    util::services_for_labels(&services, p.metadata.labels.as_ref())
                }
                Change::Updated(old, new) => {
                    util::services_to_update_on_pod_change(&services, old, new)
                }
            };
            for k in keys {
                c.queue.add(k);
            }
        });
        let q = self.queue.clone();
        on_change(&self.slices, shutdown, move |ch: Change<EndpointSlice>| {
            let mut keys = Vec::new();
            match &ch {
                Change::Updated(old, new) => {
                    let was = managed_by(old, CONTROLLER_NAME);
                    let is = managed_by(new, CONTROLLER_NAME);
                    if was || is {
                        keys.extend(service_key_of(old));
                        keys.extend(service_key_of(new));
                    }
                }
                Change::Added(s) | Change::Deleted(s) => {
                    if managed_by(s, CONTROLLER_NAME) {
                        keys.extend(service_key_of(s));
                    }
                }
            }
            keys.dedup();
            for k in keys {
                q.add_after(k, SLICE_CHANGE_DELAY);
            }
        });
    }

    async fn sync(&self, key: &str) -> anyhow::Result<()> {
        let (ns, name) = split_key(key);
        let ns = ns.unwrap_or_default();
        let Some(svc) = self.services.get_by_key(key) else {
            // The garbage collector deletes the slices through their owner reference.
            self.triggers.delete(key);
            self.reconciler.tracker.forget_service(key);
            return Ok(());
        };
        let spec = svc.spec.clone().unwrap_or_default();
        if spec.type_.as_deref() == Some("ExternalName") {
            return Ok(());
        }
        let Some(selector) = spec.selector.as_ref() else {
            return Ok(());
        };
        let pods: Vec<Arc<Pod>> = self
            .pods
            .list_namespace(ns)
            .into_iter()
            .filter(|p| util::selector_matches(selector, p.metadata.labels.as_ref()))
            .collect();
        let all: Vec<Arc<EndpointSlice>> = self
            .slices
            .list_namespace(ns)
            .into_iter()
            .filter(|s| {
                managed_by(s, CONTROLLER_NAME)
                    && s.metadata
                        .labels
                        .as_ref()
                        .and_then(|l| l.get(LABEL_SERVICE_NAME))
                        .is_some_and(|n| n == name)
            })
            .collect();
        self.reconciler.tracker.settle(key, &all);
        if self.reconciler.tracker.stale(key, &all) {
            anyhow::bail!("EndpointSlice informer cache is out of date");
        }
        let existing: Vec<Arc<EndpointSlice>> = all
            .into_iter()
            .filter(|s| s.metadata.deletion_timestamp.is_none())
            .collect();
        let pending = self.triggers.compute(&svc, &pods);
        let trigger = pending.time;
        let nodes = self.nodes.clone();
        let node_of = move |n: &str| nodes.get(None, n);
        if let Err(e) = self
            .reconciler
            .reconcile(&svc, &pods, existing, &node_of, trigger)
            .await
        {
            self.recorder.warning(
                svc.as_ref(),
                "FailedToUpdateEndpointSlices",
                "Update",
                format!("Error updating Endpoint Slices for Service {ns}/{name}: {e}"),
            );
            return Err(e);
        }
        self.triggers.commit(pending);
        Ok(())
    }
}
