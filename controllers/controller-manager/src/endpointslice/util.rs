//! Helpers shared by the endpoints, endpointslice and endpointslice-mirroring controllers
//! (mirrors upstream `staging/src/k8s.io/endpointslice/util/controller_utils.go` and
//! `trigger_time_tracker.go`): which pods belong in endpoints, port lookup, which services a
//! pod change touches, and the last-change trigger time.

use k8s_openapi::api::core::v1::{Pod, Service, ServicePort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

/// `endpoints.kubernetes.io/last-change-trigger-time`.
pub const LAST_CHANGE_TRIGGER_TIME: &str = "endpoints.kubernetes.io/last-change-trigger-time";
/// `service.kubernetes.io/headless`, set on Endpoints/EndpointSlices of headless services.
pub const HEADLESS_LABEL: &str = "service.kubernetes.io/headless";

/// Whether the pod's Ready condition is True.
pub fn is_pod_ready(pod: &Pod) -> bool {
    pod_ready_condition(pod).is_some_and(|c| c.status == "True")
}

fn pod_ready_condition(pod: &Pod) -> Option<&k8s_openapi::api::core::v1::PodCondition> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
}

/// Succeeded or Failed.
pub fn is_pod_terminal(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

/// The pod's IPs (`status.podIPs`, else `status.podIP`).
pub fn pod_ips(pod: &Pod) -> Vec<String> {
    let Some(st) = pod.status.as_ref() else {
        return vec![];
    };
    let ips: Vec<String> = st
        .pod_ips
        .iter()
        .flatten()
        .map(|p| p.ip.clone())
        .filter(|ip| !ip.is_empty())
        .collect();
    if !ips.is_empty() {
        return ips;
    }
    st.pod_ip
        .iter()
        .filter(|ip| !ip.is_empty())
        .cloned()
        .collect()
}

/// Whether a pod belongs in Endpoints/EndpointSlices: not terminal, has an IP, and (unless
/// `include_terminating`) not being deleted.
pub fn should_pod_be_in_endpoints(pod: &Pod, include_terminating: bool) -> bool {
    if is_pod_terminal(pod) || pod_ips(pod).is_empty() {
        return false;
    }
    include_terminating || pod.metadata.deletion_timestamp.is_none()
}

/// The hostname is published when the pod's subdomain names the service.
pub fn should_set_hostname(pod: &Pod, svc: &Service) -> bool {
    let spec = pod.spec.as_ref();
    let hostname = spec.and_then(|s| s.hostname.as_deref()).unwrap_or("");
    let subdomain = spec.and_then(|s| s.subdomain.as_deref()).unwrap_or("");
    !hostname.is_empty()
        && subdomain == svc.metadata.name.as_deref().unwrap_or("")
        && svc.metadata.namespace == pod.metadata.namespace
}

/// ClusterIP set and not `None`.
pub fn is_service_ip_set(svc: &Service) -> bool {
    let ip = svc
        .spec
        .as_ref()
        .and_then(|s| s.cluster_ip.as_deref())
        .unwrap_or("");
    !ip.is_empty() && ip != "None"
}

/// The container port a service port targets on this pod: a number as is, a name looked up in
/// the containers' (and restartable init containers') ports with the same protocol.
pub fn find_port(pod: &Pod, port: &ServicePort) -> Option<i32> {
    let proto = port.protocol.as_deref().unwrap_or("TCP");
    match port.target_port.as_ref() {
        Some(IntOrString::Int(n)) => Some(*n),
        Some(IntOrString::String(name)) => {
            if let Ok(n) = name.parse::<i32>() {
                return Some(n);
            }
            let spec = pod.spec.as_ref()?;
            let sidecars = spec
                .init_containers
                .iter()
                .flatten()
                .filter(|c| c.restart_policy.as_deref() == Some("Always"));
            spec.containers
                .iter()
                .chain(sidecars)
                .flat_map(|c| c.ports.iter().flatten())
                .find(|p| {
                    p.name.as_deref() == Some(name.as_str())
                        && p.protocol.as_deref().unwrap_or("TCP") == proto
                })
                .map(|p| p.container_port)
        }
        // targetPort defaults to port.
        None => Some(port.port),
    }
}

/// Whether every `key=value` of the (map) selector is among the labels. An empty selector
/// matches everything; callers treat a missing selector as matching nothing.
pub fn selector_matches(
    selector: &BTreeMap<String, String>,
    labels: Option<&BTreeMap<String, String>>,
) -> bool {
    selector
        .iter()
        .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

/// Keys of the services (with a selector) in the pod's namespace whose selector matches `labels`.
pub fn services_for_labels(
    services: &[Arc<Service>],
    labels: Option<&BTreeMap<String, String>>,
) -> BTreeSet<String> {
    services
        .iter()
        .filter(|s| {
            s.spec
                .as_ref()
                .and_then(|sp| sp.selector.as_ref())
                .is_some_and(|sel| selector_matches(sel, labels))
        })
        .map(|s| component_base::informer::key_of(s.as_ref()))
        .collect()
}

/// The services whose endpoints a pod change may affect (upstream
/// `GetServicesToUpdateOnPodChange`).
pub fn services_to_update_on_pod_change(
    services: &[Arc<Service>],
    old: &Pod,
    new: &Pod,
) -> BTreeSet<String> {
    if old.metadata.resource_version == new.metadata.resource_version {
        return BTreeSet::new();
    }
    let (pod_changed, labels_changed) = pod_endpoints_changed(old, new);
    if !pod_changed && !labels_changed {
        return BTreeSet::new();
    }
    let now = services_for_labels(services, new.metadata.labels.as_ref());
    if !labels_changed {
        return now;
    }
    let before = services_for_labels(services, old.metadata.labels.as_ref());
    if pod_changed {
        now.union(&before).cloned().collect()
    } else {
        now.symmetric_difference(&before).cloned().collect()
    }
}

fn pod_endpoints_changed(old: &Pod, new: &Pod) -> (bool, bool) {
    let host = |p: &Pod| {
        p.spec
            .as_ref()
            .map(|s| (s.hostname.clone(), s.subdomain.clone()))
    };
    let labels_changed = old.metadata.labels != new.metadata.labels || host(old) != host(new);
    let pod_changed = old.metadata.deletion_timestamp != new.metadata.deletion_timestamp
        || is_pod_ready(old) != is_pod_ready(new)
        || pod_ips(old) != pod_ips(new);
    (pod_changed, labels_changed)
}

#[derive(Default, Clone)]
struct ServiceState {
    service_trigger: Option<jiff::Timestamp>,
    pod_triggers: HashMap<String, jiff::Timestamp>,
}

/// Computes the `last-change-trigger-time` of a service's endpoints: the service's creation on
/// first sight, afterwards the earliest pod Ready transition (or service change) not yet seen.
#[derive(Default)]
pub struct TriggerTimeTracker {
    states: Mutex<HashMap<String, ServiceState>>,
}

/// A computed trigger time whose observations are recorded by [`TriggerTimeTracker::commit`]
/// once the endpoints were written, so that a failed sync reports the change again.
pub struct PendingTrigger {
    key: String,
    state: ServiceState,
    pub time: Option<jiff::Timestamp>,
}

impl TriggerTimeTracker {
    pub fn commit(&self, p: PendingTrigger) {
        self.states
            .lock()
            .expect("trigger times")
            .insert(p.key, p.state);
    }

    pub fn compute(&self, svc: &Service, pods: &[Arc<Pod>]) -> PendingTrigger {
        let key = component_base::informer::key_of(svc);
        let previous = self
            .states
            .lock()
            .expect("trigger times")
            .get(&key)
            .cloned();
        let known = previous.is_some();
        let previous = previous.unwrap_or_default();
        let mut min_changed: Option<jiff::Timestamp> = None;
        let mut fold = |t: jiff::Timestamp| {
            min_changed = Some(min_changed.map_or(t, |m| m.min(t)));
        };
        let mut pod_triggers = HashMap::new();
        for pod in pods {
            let Some(t) = pod_ready_condition(pod)
                .and_then(|c| c.last_transition_time.as_ref())
                .map(|t| t.0)
            else {
                continue;
            };
            let name = pod.metadata.name.clone().unwrap_or_default();
            if previous.pod_triggers.get(&name).is_none_or(|p| t > *p) {
                fold(t);
            }
            pod_triggers.insert(name, t);
        }
        let created = svc.metadata.creation_timestamp.as_ref().map(|t| t.0);
        if let Some(c) = created
            && previous.service_trigger.is_none_or(|p| c > p)
        {
            fold(c);
        }
        let state = ServiceState {
            service_trigger: created,
            pod_triggers,
        };
        PendingTrigger {
            key,
            state,
            time: if known { min_changed } else { created },
        }
    }

    pub fn delete(&self, key: &str) {
        self.states.lock().expect("trigger times").remove(key);
    }
}

/// RFC 3339 with nanoseconds as Go's `time.RFC3339Nano` prints UTC times (trailing zeros cut).
pub fn rfc3339_nano(t: jiff::Timestamp) -> String {
    t.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, ContainerPort, PodSpec};

    fn pod_with_port(name: &str, port: i32, proto: &str) -> Pod {
        Pod {
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "c".into(),
                    ports: Some(vec![ContainerPort {
                        name: Some(name.into()),
                        container_port: port,
                        protocol: Some(proto.into()),
                        ..Default::default()
                    }]),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn ports_resolve_by_name_and_protocol() {
        let pod = pod_with_port("http", 8080, "TCP");
        let mut sp = ServicePort {
            port: 80,
            target_port: Some(IntOrString::String("http".into())),
            ..Default::default()
        };
        assert_eq!(find_port(&pod, &sp), Some(8080));
        sp.protocol = Some("UDP".into());
        assert_eq!(find_port(&pod, &sp), None);
        sp.target_port = Some(IntOrString::Int(9000));
        assert_eq!(find_port(&pod, &sp), Some(9000));
    }

    #[test]
    fn rfc3339_nano_trims_zeros() {
        let t: jiff::Timestamp = "2024-05-01T10:00:00.500Z".parse().unwrap();
        assert_eq!(rfc3339_nano(t), "2024-05-01T10:00:00.5Z");
        let t: jiff::Timestamp = "2024-05-01T10:00:00Z".parse().unwrap();
        assert_eq!(rfc3339_nano(t), "2024-05-01T10:00:00Z");
    }
}
