//! endpoints-controller (mirrors upstream `pkg/controller/endpoint/endpoints_controller.go`):
//! keeps an Endpoints object named as each Service with a selector, listing the ready and
//! not-ready addresses of the selected pods per resolved port set.

pub mod repack;
pub mod support;

use crate::ControllerContext;
use crate::endpointslice::util::{self, HEADLESS_LABEL, LAST_CHANGE_TRIGGER_TIME};
use component_base::informer::{Change, Informer, key_of, split_key};
use component_base::workqueue::{WorkQueue, run_workers};
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, ObjectReference, Pod, Service,
};
use kube::Api;
use kube::api::{DeleteParams, ObjectMeta, PostParams};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use support::{is_not_found, on_change, shut_down_on_cancel};

/// More addresses than this are truncated (`endpoints.kubernetes.io/over-capacity: truncated`).
pub const MAX_CAPACITY: usize = 1000;
pub const OVER_CAPACITY: &str = "endpoints.kubernetes.io/over-capacity";
const LEADER_ANNOTATION: &str = "control-plane.alpha.kubernetes.io/leader";

struct Controller {
    client: kube::Client,
    services: Arc<Informer<Service>>,
    pods: Arc<Informer<Pod>>,
    endpoints: Arc<Informer<Endpoints>>,
    queue: Arc<WorkQueue<String>>,
    triggers: util::TriggerTimeTracker,
    /// Resource versions we wrote: a cache older than that is stale.
    written: Mutex<HashMap<String, u64>>,
    recorder: component_base::events::Recorder,
}

pub fn start(ctx: &ControllerContext) -> BoxFuture<'static, anyhow::Result<()>> {
    let c = Arc::new(Controller {
        client: ctx.client.clone(),
        services: ctx.informers.informer::<Service>(),
        pods: ctx.informers.informer::<Pod>(),
        endpoints: ctx.informers.informer::<Endpoints>(),
        queue: WorkQueue::new("endpoint"),
        triggers: util::TriggerTimeTracker::default(),
        written: Mutex::default(),
        recorder: ctx.recorder("endpoint-controller"),
    });
    let shutdown = ctx.shutdown.clone();
    let workers = ctx.config.concurrent_service_endpoint_syncs;
    Box::pin(async move {
        if !c.wait_synced(&shutdown).await {
            return Ok(());
        }
        c.subscribe(&shutdown);
        // Leftover Endpoints whose Service is gone are deleted once at startup.
        for ep in c.endpoints.list() {
            let leader = ep
                .metadata
                .annotations
                .as_ref()
                .is_some_and(|a| a.contains_key(LEADER_ANNOTATION));
            if !leader {
                c.queue.add(key_of(ep.as_ref()));
            }
        }
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
    async fn wait_synced(&self, shutdown: &tokio_util::sync::CancellationToken) -> bool {
        tokio::select! {
            _ = shutdown.cancelled() => false,
            _ = async {
                self.services.wait_synced().await;
                self.pods.wait_synced().await;
                self.endpoints.wait_synced().await;
            } => true,
        }
    }

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
        on_change(&self.endpoints, shutdown, move |ch: Change<Endpoints>| {
            if let Change::Deleted(ep) = ch {
                q.add(key_of(ep.as_ref()));
            }
        });
    }

    async fn sync(&self, key: &str) -> anyhow::Result<()> {
        let (ns, name) = split_key(key);
        let ns = ns.unwrap_or_default();
        let api: Api<Endpoints> = Api::namespaced(self.client.clone(), ns);
        let Some(svc) = self.services.get_by_key(key) else {
            match api.delete(name, &DeleteParams::default()).await {
                Err(e) if !is_not_found(&e) => return Err(e.into()),
                _ => {}
            }
            self.triggers.delete(key);
            self.written.lock().expect("written").remove(key);
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
        let subsets = desired_subsets(&svc, &pods);

        let current = self.endpoints.get_by_key(key);
        if let Some(&written) = self.written.lock().expect("written").get(key)
            && current
                .as_ref()
                .is_none_or(|c| rv_of(c).is_some_and(|rv| rv < written))
        {
            anyhow::bail!(
                "endpoints informer cache is out of date, resource version {written} already written for endpoints {key}"
            );
        }
        // Computed after the staleness check so a retried sync still reports the change.
        let pending = self.triggers.compute(&svc, &pods);
        let trigger = pending.time;
        let mut new = match &current {
            Some(cur) => (**cur).clone(),
            None => Endpoints {
                metadata: ObjectMeta {
                    name: Some(name.to_string()),
                    namespace: Some(ns.to_string()),
                    labels: svc.metadata.labels.clone(),
                    ..Default::default()
                },
                subsets: None,
            },
        };
        let svc_labels = svc.metadata.labels.clone().unwrap_or_default();
        if let Some(cur) = &current {
            let mut cur_labels = cur.metadata.labels.clone().unwrap_or_default();
            cur_labels.remove(HEADLESS_LABEL);
            if repack::normalized(cur.subsets.clone().unwrap_or_default()) == subsets
                && cur_labels == svc_labels
                && capacity_annotation_correct(cur)
            {
                self.triggers.commit(pending);
                return Ok(());
            }
        }
        new.subsets = Some(subsets);
        let mut labels: BTreeMap<String, String> = svc_labels;
        if util::is_service_ip_set(&svc) {
            labels.remove(HEADLESS_LABEL);
        } else {
            labels.insert(HEADLESS_LABEL.into(), String::new());
        }
        new.metadata.labels = Some(labels);
        let ann = new.metadata.annotations.get_or_insert_with(BTreeMap::new);
        match trigger {
            Some(t) => {
                ann.insert(LAST_CHANGE_TRIGGER_TIME.into(), util::rfc3339_nano(t));
            }
            None => {
                ann.remove(LAST_CHANGE_TRIGGER_TIME);
            }
        }
        if truncate(&mut new) {
            ann_of(&mut new).insert(OVER_CAPACITY.into(), "truncated".into());
        } else {
            ann_of(&mut new).remove(OVER_CAPACITY);
        }
        let pp = PostParams::default();
        let result = match &current {
            None => api.create(&pp, &new).await,
            Some(_) => api.replace(name, &pp, &new).await,
        };
        let result = result.map(|written| {
            if let Some(rv) = rv_of(&written) {
                self.written
                    .lock()
                    .expect("written")
                    .insert(key.to_string(), rv);
            }
            self.triggers.commit(pending);
        });
        if let Err(e) = result {
            let (reason, note) = if current.is_none() {
                (
                    "FailedToCreateEndpoint",
                    format!("Failed to create endpoint for service {ns}/{name}: {e}"),
                )
            } else {
                (
                    "FailedToUpdateEndpoint",
                    format!("Failed to update endpoint {ns}/{name}: {e}"),
                )
            };
            self.recorder.warning(&new, reason, "Update", note);
            return Err(e.into());
        }
        Ok(())
    }
}

fn rv_of(ep: &Endpoints) -> Option<u64> {
    ep.metadata
        .resource_version
        .as_deref()
        .and_then(|r| r.parse().ok())
}

fn ann_of(ep: &mut Endpoints) -> &mut BTreeMap<String, String> {
    ep.metadata.annotations.get_or_insert_with(BTreeMap::new)
}

/// The Endpoints subsets for a service and its selected pods, repacked by port set.
pub fn desired_subsets(svc: &Service, pods: &[Arc<Pod>]) -> Vec<EndpointSubset> {
    let spec = svc.spec.clone().unwrap_or_default();
    let tolerate_unready = spec.publish_not_ready_addresses.unwrap_or(false);
    let mut entries: Vec<repack::Entry> = Vec::new();
    for pod in pods {
        if !util::should_pod_be_in_endpoints(pod, tolerate_unready) {
            continue;
        }
        let Some(mut addr) = pod_address(svc, pod) else {
            continue;
        };
        if util::should_set_hostname(pod, svc) {
            addr.hostname = pod.spec.as_ref().and_then(|s| s.hostname.clone());
        }
        let ready = tolerate_unready || util::is_pod_ready(pod);
        let ports = spec.ports.clone().unwrap_or_default();
        if ports.is_empty() {
            if spec.cluster_ip.as_deref() == Some("None") {
                entries.push(repack::Entry {
                    address: addr,
                    ready,
                    port: None,
                });
            }
            continue;
        }
        for sp in &ports {
            let Some(num) = util::find_port(pod, sp) else {
                continue;
            };
            entries.push(repack::Entry {
                address: addr.clone(),
                ready,
                port: Some(EndpointPort {
                    name: sp.name.clone(),
                    port: num,
                    protocol: Some(sp.protocol.clone().unwrap_or_else(|| "TCP".into())),
                    app_protocol: sp.app_protocol.clone(),
                }),
            });
        }
    }
    repack::repack(entries)
}

/// The pod's address of the service's primary IP family.
fn pod_address(svc: &Service, pod: &Pod) -> Option<EndpointAddress> {
    let spec = svc.spec.as_ref();
    let want_v6 = match spec
        .and_then(|s| s.ip_families.as_ref())
        .and_then(|f| f.first())
    {
        Some(f) => f == "IPv6",
        None => {
            let cip = spec.and_then(|s| s.cluster_ip.as_deref()).unwrap_or("");
            if !cip.is_empty() && cip != "None" {
                cip.contains(':')
            } else {
                pod.status
                    .as_ref()
                    .and_then(|s| s.pod_ip.as_deref())
                    .is_some_and(|ip| ip.contains(':'))
            }
        }
    };
    let ip = util::pod_ips(pod)
        .into_iter()
        .find(|ip| ip.contains(':') == want_v6)?;
    Some(EndpointAddress {
        ip,
        hostname: None,
        node_name: Some(
            pod.spec
                .as_ref()
                .and_then(|s| s.node_name.clone())
                .unwrap_or_default(),
        ),
        target_ref: Some(ObjectReference {
            kind: Some("Pod".into()),
            namespace: pod.metadata.namespace.clone(),
            name: pod.metadata.name.clone(),
            uid: pod.metadata.uid.clone(),
            ..Default::default()
        }),
    })
}

fn capacity_annotation_correct(ep: &Endpoints) -> bool {
    let n: usize = ep
        .subsets
        .iter()
        .flatten()
        .map(|s| {
            s.addresses.as_ref().map_or(0, Vec::len)
                + s.not_ready_addresses.as_ref().map_or(0, Vec::len)
        })
        .sum();
    if n > MAX_CAPACITY {
        return false;
    }
    !ep.metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(OVER_CAPACITY))
}

/// Cuts the addresses to [`MAX_CAPACITY`], spreading the room over the subsets in proportion and
/// keeping ready addresses before not-ready ones. Returns whether anything was cut.
pub fn truncate(ep: &mut Endpoints) -> bool {
    let subsets = ep.subsets.get_or_insert_with(Vec::new);
    let ready: usize = subsets
        .iter()
        .map(|s| s.addresses.as_ref().map_or(0, Vec::len))
        .sum();
    let not_ready: usize = subsets
        .iter()
        .map(|s| s.not_ready_addresses.as_ref().map_or(0, Vec::len))
        .sum();
    if ready + not_ready <= MAX_CAPACITY {
        return false;
    }
    let cut_ready = ready > MAX_CAPACITY;
    let (room, total) = if cut_ready {
        (MAX_CAPACITY, ready)
    } else {
        (MAX_CAPACITY - ready, not_ready)
    };
    let mut left = room;
    for s in subsets.iter_mut() {
        let list = if cut_ready {
            &mut s.addresses
        } else {
            &mut s.not_ready_addresses
        };
        let n = list.as_ref().map_or(0, Vec::len);
        let share = (n * room).div_ceil(total.max(1)).min(left);
        if let Some(l) = list.as_mut() {
            l.truncate(share);
            left -= l.len();
            if l.is_empty() {
                *list = None;
            }
        }
        if cut_ready {
            s.not_ready_addresses = None;
        }
    }
    true
}
