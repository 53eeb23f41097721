//! The EndpointSlice reconciler (mirrors upstream `staging/src/k8s.io/endpointslice/reconciler.go`
//! and `utils.go`): turns a Service's selected pods into EndpointSlices per address type and port
//! set, at most `max_endpoints` endpoints each, changing as few slices as it can; a Service with
//! no endpoints of an address type keeps one empty placeholder slice.

use super::util;
use crate::endpoints::support::is_not_found;
use k8s_openapi::api::core::v1::{Node, ObjectReference, Pod, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::Api;
use kube::api::{DeleteParams, ObjectMeta, PostParams};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

pub const LABEL_SERVICE_NAME: &str = "kubernetes.io/service-name";
pub const LABEL_MANAGED_BY: &str = "endpointslice.kubernetes.io/managed-by";
pub const TOPOLOGY_ZONE: &str = "topology.kubernetes.io/zone";

/// Sorted `(name, port, protocol, appProtocol)` of a slice's ports: slices are grouped by it.
pub type PortMapKey = Vec<(String, i32, String, String)>;

pub fn port_map_key(ports: Option<&Vec<EndpointPort>>) -> PortMapKey {
    let mut k: PortMapKey = ports
        .into_iter()
        .flatten()
        .map(|p| {
            (
                p.name.clone().unwrap_or_default(),
                p.port.unwrap_or_default(),
                p.protocol.clone().unwrap_or_default(),
                p.app_protocol.clone().unwrap_or_default(),
            )
        })
        .collect();
    k.sort();
    k
}

/// Identity of an endpoint across syncs: its pod (or first address) and hostname.
fn endpoint_key(e: &Endpoint) -> (String, String, String, String) {
    let r = e.target_ref.as_ref();
    (
        r.and_then(|r| r.namespace.clone()).unwrap_or_default(),
        r.and_then(|r| r.name.clone()).unwrap_or_default(),
        e.addresses.first().cloned().unwrap_or_default(),
        e.hostname.clone().unwrap_or_default(),
    )
}

/// The address types a service wants slices for (upstream `getAddressTypesForService`).
pub fn address_types(svc: &Service) -> BTreeSet<String> {
    let spec = svc.spec.as_ref();
    let mut out: BTreeSet<String> = spec
        .and_then(|s| s.ip_families.as_ref())
        .into_iter()
        .flatten()
        .filter(|f| *f == "IPv4" || *f == "IPv6")
        .cloned()
        .collect();
    if out.is_empty() {
        let cip = spec.and_then(|s| s.cluster_ip.as_deref()).unwrap_or("");
        if !cip.is_empty() && cip != "None" {
            out.insert(if cip.contains(':') { "IPv6" } else { "IPv4" }.into());
        } else {
            out.insert("IPv4".into());
            out.insert("IPv6".into());
        }
    }
    out
}

/// The service ports resolved on this pod.
pub fn endpoint_ports(svc: &Service, pod: &Pod) -> Vec<EndpointPort> {
    let spec = svc.spec.clone().unwrap_or_default();
    spec.ports
        .iter()
        .flatten()
        .filter_map(|sp| {
            let n = util::find_port(pod, sp)?;
            Some(EndpointPort {
                name: Some(sp.name.clone().unwrap_or_default()),
                port: Some(n),
                protocol: Some(sp.protocol.clone().unwrap_or_else(|| "TCP".into())),
                app_protocol: sp.app_protocol.clone(),
            })
        })
        .collect()
}

/// The endpoint of a pod for one address type (upstream `podToEndpoint`).
pub fn pod_to_endpoint(pod: &Pod, node: Option<&Node>, svc: &Service, v6: bool) -> Endpoint {
    let serving = util::is_pod_ready(pod);
    let terminating = pod.metadata.deletion_timestamp.is_some();
    let publish = svc
        .spec
        .as_ref()
        .and_then(|s| s.publish_not_ready_addresses)
        .unwrap_or(false);
    let ready = publish || (serving && !terminating);
    let node_name = pod.spec.as_ref().and_then(|s| s.node_name.clone());
    Endpoint {
        addresses: util::pod_ips(pod)
            .into_iter()
            .filter(|ip| ip.contains(':') == v6)
            .collect(),
        conditions: Some(EndpointConditions {
            ready: Some(ready),
            serving: Some(serving),
            terminating: Some(terminating),
        }),
        target_ref: Some(ObjectReference {
            kind: Some("Pod".into()),
            namespace: pod.metadata.namespace.clone(),
            name: pod.metadata.name.clone(),
            uid: pod.metadata.uid.clone(),
            ..Default::default()
        }),
        node_name: node_name.filter(|n| !n.is_empty()),
        zone: node
            .and_then(|n| n.metadata.labels.as_ref())
            .and_then(|l| l.get(TOPOLOGY_ZONE))
            .filter(|z| !z.is_empty())
            .cloned(),
        hostname: util::should_set_hostname(pod, svc)
            .then(|| pod.spec.as_ref().and_then(|s| s.hostname.clone()))
            .flatten(),
        ..Default::default()
    }
}

/// The labels a slice of this service carries: the service's own (minus reserved keys), the
/// headless marker, service name and manager.
pub fn slice_labels(svc: &Service, managed_by: &str) -> BTreeMap<String, String> {
    let reserved =
        |k: &str| k == LABEL_SERVICE_NAME || k == LABEL_MANAGED_BY || k == util::HEADLESS_LABEL;
    let mut labels: BTreeMap<String, String> = svc
        .metadata
        .labels
        .iter()
        .flatten()
        .filter(|(k, _)| !reserved(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !util::is_service_ip_set(svc) {
        labels.insert(util::HEADLESS_LABEL.into(), String::new());
    }
    labels.insert(
        LABEL_SERVICE_NAME.into(),
        svc.metadata.name.clone().unwrap_or_default(),
    );
    labels.insert(LABEL_MANAGED_BY.into(), managed_by.into());
    labels
}

fn len(s: &EndpointSlice) -> usize {
    s.endpoints.as_ref().map_or(0, Vec::len)
}

fn owned_by(slice: &EndpointSlice, svc: &Service) -> bool {
    slice.metadata.owner_references.iter().flatten().any(|o| {
        Some(&o.uid) == svc.metadata.uid.as_ref() && o.kind == "Service" && o.api_version == "v1"
    })
}

/// A new (unnamed) slice for the service.
pub fn new_slice(
    svc: &Service,
    address_type: &str,
    ports: Vec<EndpointPort>,
    managed_by: &str,
) -> EndpointSlice {
    let name = svc.metadata.name.clone().unwrap_or_default();
    EndpointSlice {
        metadata: ObjectMeta {
            generate_name: Some(format!("{name}-")),
            namespace: svc.metadata.namespace.clone(),
            labels: Some(slice_labels(svc, managed_by)),
            owner_references: Some(vec![OwnerReference {
                api_version: "v1".into(),
                kind: "Service".into(),
                name,
                uid: svc.metadata.uid.clone().unwrap_or_default(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]),
            ..Default::default()
        },
        address_type: address_type.into(),
        endpoints: Some(vec![]),
        ports: Some(ports),
    }
}

type EndpointKey = (String, String, String, String);
/// Desired endpoints of one port set: the ports and the endpoints by identity.
type Desired = BTreeMap<PortMapKey, (Vec<EndpointPort>, BTreeMap<EndpointKey, Endpoint>)>;

/// Looks a node up by name.
pub type NodeLookup = dyn Fn(&str) -> Option<Arc<Node>> + Send + Sync;

pub struct Reconciler {
    pub client: kube::Client,
    pub max_endpoints: usize,
    pub managed_by: &'static str,
    pub tracker: SliceTracker,
}

/// What this controller last wrote per service (upstream `EndpointSliceTracker`): slice name to
/// the resource version written, or `None` for a deletion. A cache that has not caught up with
/// those writes is stale; syncing from it could duplicate or resurrect slices.
#[derive(Default)]
pub struct SliceTracker {
    written: std::sync::Mutex<std::collections::HashMap<String, BTreeMap<String, Option<u64>>>>,
}

fn rv_of(s: &EndpointSlice) -> Option<u64> {
    s.metadata
        .resource_version
        .as_deref()
        .and_then(|r| r.parse().ok())
}

impl SliceTracker {
    /// Whether the cached slices of `service_key` are older than what was written.
    pub fn stale(&self, service_key: &str, cached: &[Arc<EndpointSlice>]) -> bool {
        let written = self.written.lock().expect("slice tracker");
        let Some(w) = written.get(service_key) else {
            return false;
        };
        w.iter().any(|(name, rv)| {
            let seen = cached
                .iter()
                .find(|s| s.metadata.name.as_deref() == Some(name.as_str()));
            match (rv, seen) {
                (None, Some(_)) => true,
                (None, None) => false,
                (Some(_), None) => true,
                (Some(rv), Some(s)) => rv_of(s).is_some_and(|seen| seen < *rv),
            }
        })
    }

    pub fn forget_service(&self, service_key: &str) {
        self.written
            .lock()
            .expect("slice tracker")
            .remove(service_key);
    }

    fn record(&self, service_key: &str, name: String, rv: Option<u64>) {
        self.written
            .lock()
            .expect("slice tracker")
            .entry(service_key.to_string())
            .or_default()
            .insert(name, rv);
    }

    /// Drops expectations the cache has met.
    pub fn settle(&self, service_key: &str, cached: &[Arc<EndpointSlice>]) {
        let mut written = self.written.lock().expect("slice tracker");
        if let Some(w) = written.get_mut(service_key) {
            w.retain(|name, rv| {
                let seen = cached
                    .iter()
                    .find(|s| s.metadata.name.as_deref() == Some(name.as_str()));
                match (rv, seen) {
                    (None, None) => false,
                    (Some(rv), Some(s)) => rv_of(s).is_none_or(|seen| seen < *rv),
                    _ => true,
                }
            });
        }
    }
}

#[derive(Default)]
struct Plan {
    create: Vec<EndpointSlice>,
    update: Vec<EndpointSlice>,
    delete: Vec<EndpointSlice>,
}

impl Reconciler {
    /// Brings the service's slices in line with its pods; `node_of` looks nodes up by name.
    /// Pods on unknown nodes are left out (and reported as an error so the sync is retried),
    /// unless the service publishes not-ready addresses.
    pub async fn reconcile(
        &self,
        svc: &Service,
        pods: &[Arc<Pod>],
        existing: Vec<Arc<EndpointSlice>>,
        node_of: &NodeLookup,
        trigger: Option<jiff::Timestamp>,
    ) -> anyhow::Result<()> {
        let types = address_types(svc);
        let mut errors: Vec<String> = Vec::new();
        let mut plan = Plan::default();
        let mut by_type: BTreeMap<String, Vec<Arc<EndpointSlice>>> = BTreeMap::new();
        for s in existing {
            if types.contains(&s.address_type) {
                by_type.entry(s.address_type.clone()).or_default().push(s);
            } else {
                plan.delete.push((*s).clone());
            }
        }
        for t in &types {
            let existing = by_type.remove(t).unwrap_or_default();
            let p = self.plan_address_type(svc, pods, existing, node_of, t, &mut errors);
            self.finalize(svc, p, trigger, &mut errors).await;
        }
        let stray = std::mem::take(&mut plan.delete);
        self.finalize(
            svc,
            Plan {
                delete: stray,
                ..Plan::default()
            },
            trigger,
            &mut errors,
        )
        .await;
        if errors.is_empty() {
            Ok(())
        } else {
            anyhow::bail!("{}", errors.join("; "))
        }
    }

    fn plan_address_type(
        &self,
        svc: &Service,
        pods: &[Arc<Pod>],
        existing: Vec<Arc<EndpointSlice>>,
        node_of: &NodeLookup,
        address_type: &str,
        errors: &mut Vec<String>,
    ) -> Plan {
        let mut plan = Plan::default();
        let existing_count = existing.len();
        let mut existing_by_ports: BTreeMap<PortMapKey, Vec<EndpointSlice>> = BTreeMap::new();
        for s in existing {
            if owned_by(&s, svc) {
                existing_by_ports
                    .entry(port_map_key(s.ports.as_ref()))
                    .or_default()
                    .push((*s).clone());
            } else {
                plan.delete.push((*s).clone());
            }
        }
        let publish = svc
            .spec
            .as_ref()
            .and_then(|s| s.publish_not_ready_addresses)
            .unwrap_or(false);
        let mut desired: Desired = BTreeMap::new();
        for pod in pods {
            if !util::should_pod_be_in_endpoints(pod, true) {
                continue;
            }
            let ports = endpoint_ports(svc, pod);
            let key = port_map_key(Some(&ports));
            let entry = desired
                .entry(key)
                .or_insert_with(|| (ports, BTreeMap::new()));
            let node_name = pod
                .spec
                .as_ref()
                .and_then(|s| s.node_name.clone())
                .unwrap_or_default();
            let node = node_of(&node_name);
            if node.is_none() && !publish {
                errors.push(format!(
                    "skipping Pod {} for Service {}/{}: Node {} Not Found",
                    pod.metadata.name.as_deref().unwrap_or(""),
                    svc.metadata.namespace.as_deref().unwrap_or(""),
                    svc.metadata.name.as_deref().unwrap_or(""),
                    node_name
                ));
                continue;
            }
            let ep = pod_to_endpoint(pod, node.as_deref(), svc, address_type == "IPv6");
            if !ep.addresses.is_empty() {
                entry.1.insert(endpoint_key(&ep), ep);
            }
        }
        let labels = slice_labels(svc, self.managed_by);
        for (key, (ports, want)) in &desired {
            let slices = existing_by_ports.remove(key).unwrap_or_default();
            self.plan_port_map(svc, address_type, ports, want, slices, &labels, &mut plan);
        }
        for (_, slices) in existing_by_ports {
            plan.delete.extend(slices);
        }
        if plan.delete.len() == existing_count && plan.create.is_empty() {
            let placeholder = new_slice(svc, address_type, vec![], self.managed_by);
            let is_placeholder = |s: &EndpointSlice| {
                s.endpoints.as_ref().is_none_or(Vec::is_empty)
                    && s.ports.as_ref().is_none_or(Vec::is_empty)
                    && s.metadata.labels.as_ref() == placeholder.metadata.labels.as_ref()
                    && owned_by(s, svc)
            };
            if plan.delete.len() == 1 && is_placeholder(&plan.delete[0]) {
                plan.delete.clear();
            } else {
                plan.create.push(placeholder);
            }
        }
        plan
    }

    #[allow(clippy::too_many_arguments)]
    fn plan_port_map(
        &self,
        svc: &Service,
        address_type: &str,
        ports: &[EndpointPort],
        want: &BTreeMap<(String, String, String, String), Endpoint>,
        slices: Vec<EndpointSlice>,
        labels: &BTreeMap<String, String>,
        plan: &mut Plan,
    ) {
        let mut placed: BTreeSet<(String, String, String, String)> = BTreeSet::new();
        let mut to_update: Vec<EndpointSlice> = Vec::new();
        let mut unchanged: Vec<EndpointSlice> = Vec::new();
        for mut s in slices {
            let mut changed = false;
            let mut kept = Vec::new();
            for e in s.endpoints.take().unwrap_or_default() {
                let k = endpoint_key(&e);
                match want.get(&k) {
                    Some(w) if !placed.contains(&k) => {
                        if *w != e {
                            changed = true;
                        }
                        kept.push(w.clone());
                        placed.insert(k);
                    }
                    _ => changed = true,
                }
            }
            let empty = kept.is_empty();
            s.endpoints = Some(kept);
            if s.metadata.labels.as_ref() != Some(labels) {
                s.metadata.labels = Some(labels.clone());
                changed = true;
            }
            if !changed {
                unchanged.push(s);
            } else if empty {
                plan.delete.push(s);
            } else {
                to_update.push(s);
            }
        }
        let mut rest: Vec<Endpoint> = want
            .iter()
            .filter(|(k, _)| !placed.contains(*k))
            .map(|(_, e)| e.clone())
            .collect();
        // Fill the slices being updated anyway, fullest first.
        to_update.sort_by_key(|s| std::cmp::Reverse(len(s)));
        for s in &mut to_update {
            let eps = s.endpoints.get_or_insert_with(Vec::new);
            while eps.len() < self.max_endpoints
                && let Some(e) = rest.pop()
            {
                eps.push(e);
            }
        }
        // Then new slices; a last partial batch may top up an unchanged slice instead.
        while !rest.is_empty() {
            let n = rest.len().min(self.max_endpoints);
            let batch: Vec<Endpoint> = rest.drain(..n).collect();
            let fill = (batch.len() < self.max_endpoints)
                .then(|| {
                    unchanged
                        .iter()
                        .enumerate()
                        .filter(|(_, s)| len(s) + batch.len() <= self.max_endpoints)
                        .max_by_key(|(_, s)| len(s))
                        .map(|(i, _)| i)
                })
                .flatten();
            match fill {
                Some(i) => {
                    let mut s = unchanged.remove(i);
                    s.endpoints.get_or_insert_with(Vec::new).extend(batch);
                    to_update.push(s);
                }
                None => {
                    let mut s = new_slice(svc, address_type, ports.to_vec(), self.managed_by);
                    s.endpoints = Some(batch);
                    plan.create.push(s);
                }
            }
        }
        plan.update.extend(to_update);
    }

    async fn finalize(
        &self,
        svc: &Service,
        mut plan: Plan,
        trigger: Option<jiff::Timestamp>,
        errors: &mut Vec<String>,
    ) {
        // Reuse slices about to be deleted for ones about to be created.
        let mut i = 0;
        while i < plan.delete.len() && !plan.create.is_empty() {
            let last = plan.create.len() - 1;
            if plan.delete[i].address_type == plan.create[last].address_type
                && owned_by(&plan.delete[i], svc)
            {
                let old = plan.delete.remove(i);
                let mut s = plan.create.pop().unwrap_or_default();
                s.metadata.name = old.metadata.name.clone();
                s.metadata.generate_name = old.metadata.generate_name.clone();
                s.metadata.resource_version = old.metadata.resource_version.clone();
                s.metadata.annotations = old.metadata.annotations.clone();
                plan.update.push(s);
            } else {
                i += 1;
            }
        }
        let ns = svc.metadata.namespace.clone().unwrap_or_default();
        let svc_key = format!("{ns}/{}", svc.metadata.name.as_deref().unwrap_or(""));
        let api: Api<EndpointSlice> = Api::namespaced(self.client.clone(), &ns);
        let pp = PostParams::default();
        let annotate = |s: &mut EndpointSlice| {
            let a = s.metadata.annotations.get_or_insert_with(BTreeMap::new);
            match trigger {
                Some(t) => {
                    a.insert(util::LAST_CHANGE_TRIGGER_TIME.into(), util::rfc3339_nano(t));
                }
                None => {
                    a.remove(util::LAST_CHANGE_TRIGGER_TIME);
                }
            }
        };
        if svc.metadata.deletion_timestamp.is_none() {
            for mut s in plan.create {
                annotate(&mut s);
                match api.create(&pp, &s).await {
                    Ok(c) => self.tracker.record(
                        &svc_key,
                        c.metadata.name.clone().unwrap_or_default(),
                        rv_of(&c),
                    ),
                    Err(e) => errors.push(format!(
                        "failed to create EndpointSlice for Service {ns}/{}: {e}",
                        svc.metadata.name.as_deref().unwrap_or("")
                    )),
                }
            }
        }
        for mut s in plan.update {
            annotate(&mut s);
            let name = s.metadata.name.clone().unwrap_or_default();
            match api.replace(&name, &pp, &s).await {
                Ok(u) => self.tracker.record(&svc_key, name, rv_of(&u)),
                Err(e) => errors.push(format!(
                    "failed to update {name} EndpointSlice for Service {ns}/{}: {e}",
                    svc.metadata.name.as_deref().unwrap_or("")
                )),
            }
        }
        for s in plan.delete {
            let name = s.metadata.name.clone().unwrap_or_default();
            match api.delete(&name, &DeleteParams::default()).await {
                Err(e) if !is_not_found(&e) => errors.push(format!(
                    "error deleting {name} EndpointSlice for Service {ns}/{}: {e}",
                    svc.metadata.name.as_deref().unwrap_or("")
                )),
                _ => self.tracker.record(&svc_key, name, None),
            }
        }
    }
}
