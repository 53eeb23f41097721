//! endpointslice-mirroring-controller (mirrors upstream `pkg/controller/endpointslicemirroring`):
//! the Endpoints of Services without a selector (written by hand or by another controller) are
//! mirrored into EndpointSlices managed by `endpointslicemirroring-controller.k8s.io`.

use crate::ControllerContext;
use crate::endpoints::support::{is_not_found, on_change, shut_down_on_cancel};
use crate::endpointslice::reconciler::{
    LABEL_MANAGED_BY, LABEL_SERVICE_NAME, PortMapKey, new_slice, port_map_key,
};
use crate::endpointslice::service_key_of;
use component_base::informer::{Change, Informer, key_of, split_key};
use component_base::workqueue::{WorkQueue, run_workers};
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{EndpointAddress, Endpoints, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use std::collections::BTreeMap;
use std::sync::Arc;

pub const CONTROLLER_NAME: &str = "endpointslicemirroring-controller.k8s.io";
const SKIP_MIRROR: &str = "endpointslice.kubernetes.io/skip-mirror";
const MAX_ENDPOINTS_PER_SLICE: usize = 100;
/// Upstream mirrors at most this many addresses per Endpoints subset.
const MAX_PER_SUBSET: usize = 1000;

struct Controller {
    client: kube::Client,
    endpoints: Arc<Informer<Endpoints>>,
    services: Arc<Informer<Service>>,
    slices: Arc<Informer<EndpointSlice>>,
    queue: Arc<WorkQueue<String>>,
}

pub fn start(ctx: &ControllerContext) -> BoxFuture<'static, anyhow::Result<()>> {
    let c = Arc::new(Controller {
        client: ctx.client.clone(),
        endpoints: ctx.informers.informer(),
        services: ctx.informers.informer(),
        slices: ctx.informers.informer(),
        queue: WorkQueue::new("endpoint_slice_mirroring"),
    });
    let shutdown = ctx.shutdown.clone();
    let workers = ctx.config.concurrent_service_endpoint_syncs;
    Box::pin(async move {
        let synced = tokio::select! {
            _ = shutdown.cancelled() => false,
            _ = async {
                c.endpoints.wait_synced().await;
                c.services.wait_synced().await;
                c.slices.wait_synced().await;
            } => true,
        };
        if !synced {
            return Ok(());
        }
        let q = c.queue.clone();
        on_change(&c.endpoints, &shutdown, move |ch: Change<Endpoints>| {
            q.add(key_of(ch.object().as_ref()));
        });
        let q = c.queue.clone();
        on_change(&c.services, &shutdown, move |ch: Change<Service>| {
            q.add(key_of(ch.object().as_ref()));
        });
        let q = c.queue.clone();
        on_change(&c.slices, &shutdown, move |ch: Change<EndpointSlice>| {
            let s = ch.object();
            let ours = s
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(LABEL_MANAGED_BY))
                == Some(&CONTROLLER_NAME.to_string());
            if ours && let Some(k) = service_key_of(s) {
                q.add_after(k, std::time::Duration::from_secs(1));
            }
        });
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

impl Controller {
    async fn sync(&self, key: &str) -> anyhow::Result<()> {
        let (ns, name) = split_key(key);
        let ns = ns.unwrap_or_default();
        let existing: Vec<Arc<EndpointSlice>> = self
            .slices
            .list_namespace(ns)
            .into_iter()
            .filter(|s| {
                let l = s.metadata.labels.clone().unwrap_or_default();
                l.get(LABEL_MANAGED_BY).map(String::as_str) == Some(CONTROLLER_NAME)
                    && l.get(LABEL_SERVICE_NAME).map(String::as_str) == Some(name)
            })
            .collect();
        let svc = self.services.get_by_key(key);
        let ep = self.endpoints.get_by_key(key);
        let mirror = match (&svc, &ep) {
            (Some(svc), Some(ep)) => {
                svc.spec
                    .as_ref()
                    .and_then(|s| s.selector.as_ref())
                    .is_none()
                    && ep.metadata.labels.as_ref().and_then(|l| l.get(SKIP_MIRROR))
                        != Some(&"true".to_string())
            }
            _ => false,
        };
        let desired = match (mirror, &svc, &ep) {
            (true, Some(svc), Some(ep)) => desired_slices(svc, ep),
            _ => vec![],
        };
        self.apply(ns, existing, desired).await
    }

    /// Pairs desired slices with existing ones of the same address type and ports, updating
    /// those that differ, creating the rest and deleting leftovers.
    async fn apply(
        &self,
        ns: &str,
        existing: Vec<Arc<EndpointSlice>>,
        desired: Vec<EndpointSlice>,
    ) -> anyhow::Result<()> {
        let api: Api<EndpointSlice> = Api::namespaced(self.client.clone(), ns);
        let pp = PostParams::default();
        let mut pool: BTreeMap<(String, PortMapKey), Vec<Arc<EndpointSlice>>> = BTreeMap::new();
        for s in existing {
            pool.entry((s.address_type.clone(), port_map_key(s.ports.as_ref())))
                .or_default()
                .push(s);
        }
        for mut want in desired {
            let k = (want.address_type.clone(), port_map_key(want.ports.as_ref()));
            match pool.get_mut(&k).and_then(Vec::pop) {
                Some(have) => {
                    if have.endpoints == want.endpoints
                        && have.metadata.labels == want.metadata.labels
                    {
                        continue;
                    }
                    want.metadata.name = have.metadata.name.clone();
                    want.metadata.resource_version = have.metadata.resource_version.clone();
                    let name = want.metadata.name.clone().unwrap_or_default();
                    api.replace(&name, &pp, &want).await?;
                }
                None => {
                    api.create(&pp, &want).await?;
                }
            }
        }
        for s in pool.into_values().flatten() {
            let name = s.metadata.name.clone().unwrap_or_default();
            match api.delete(&name, &DeleteParams::default()).await {
                Err(e) if !is_not_found(&e) => return Err(e.into()),
                _ => {}
            }
        }
        Ok(())
    }
}

fn to_endpoint(a: &EndpointAddress, ready: bool) -> Endpoint {
    Endpoint {
        addresses: vec![a.ip.clone()],
        conditions: Some(EndpointConditions {
            ready: Some(ready),
            serving: None,
            terminating: None,
        }),
        hostname: a.hostname.clone().filter(|h| !h.is_empty()),
        node_name: a.node_name.clone().filter(|n| !n.is_empty()),
        target_ref: a.target_ref.clone(),
        ..Default::default()
    }
}

/// The slices mirroring an Endpoints object: per subset and address family, chunks of 100.
pub fn desired_slices(svc: &Service, ep: &Endpoints) -> Vec<EndpointSlice> {
    let mut out = Vec::new();
    let mut labels: BTreeMap<String, String> = ep
        .metadata
        .labels
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, _)| k != LABEL_MANAGED_BY && k != LABEL_SERVICE_NAME)
        .collect();
    labels.insert(
        LABEL_SERVICE_NAME.into(),
        svc.metadata.name.clone().unwrap_or_default(),
    );
    labels.insert(LABEL_MANAGED_BY.into(), CONTROLLER_NAME.into());
    for subset in ep.subsets.iter().flatten() {
        let ports: Vec<EndpointPort> = subset
            .ports
            .iter()
            .flatten()
            .map(|p| EndpointPort {
                name: Some(p.name.clone().unwrap_or_default()),
                port: Some(p.port),
                protocol: Some(p.protocol.clone().unwrap_or_else(|| "TCP".into())),
                app_protocol: p.app_protocol.clone(),
            })
            .collect();
        let all: Vec<Endpoint> = subset
            .addresses
            .iter()
            .flatten()
            .map(|a| to_endpoint(a, true))
            .chain(
                subset
                    .not_ready_addresses
                    .iter()
                    .flatten()
                    .map(|a| to_endpoint(a, false)),
            )
            .take(MAX_PER_SUBSET)
            .collect();
        for v6 in [false, true] {
            let fam: Vec<Endpoint> = all
                .iter()
                .filter(|e| e.addresses[0].contains(':') == v6)
                .cloned()
                .collect();
            for chunk in fam.chunks(MAX_ENDPOINTS_PER_SLICE) {
                let t = if v6 { "IPv6" } else { "IPv4" };
                let mut s = new_slice(svc, t, ports.clone(), CONTROLLER_NAME);
                s.metadata.labels = Some(labels.clone());
                s.endpoints = Some(chunk.to_vec());
                out.push(s);
            }
        }
    }
    out
}
