//! The kubelet's Prometheus metrics (a subset of upstream `pkg/kubelet/metrics`):
//! `kubelet_node_name`, `kubelet_running_pods`, `kubelet_running_containers{container_state}`,
//! `kubelet_pod_start_duration_seconds`, `kubelet_pod_worker_duration_seconds{operation}`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NodeLabel {
    pub node: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    pub container_state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabel {
    pub operation: String,
}

fn seconds_histogram() -> Histogram {
    // 5 ms .. ~41 s, as upstream's pod start buckets cover sub-second to tens of seconds.
    Histogram::new(exponential_buckets(0.005, 2.0, 14))
}

pub struct Metrics {
    pub node_name: Family<NodeLabel, Gauge>,
    pub running_pods: Gauge,
    pub running_containers: Family<StateLabel, Gauge>,
    pub pod_start: Histogram,
    pub pod_worker: Family<OperationLabel, Histogram, fn() -> Histogram>,
}

impl Metrics {
    pub fn register(registry: &mut Registry, node: &str) -> Metrics {
        let m = Metrics {
            node_name: Family::default(),
            running_pods: Gauge::default(),
            running_containers: Family::default(),
            pod_start: seconds_histogram(),
            pod_worker: Family::new_with_constructor(seconds_histogram),
        };
        m.node_name
            .get_or_create(&NodeLabel {
                node: node.to_string(),
            })
            .set(1);
        registry.register(
            "kubelet_node_name",
            "The node's name. The count is always 1.",
            m.node_name.clone(),
        );
        registry.register(
            "kubelet_running_pods",
            "Number of pods that have a running pod sandbox",
            m.running_pods.clone(),
        );
        registry.register(
            "kubelet_running_containers",
            "Number of containers currently running",
            m.running_containers.clone(),
        );
        registry.register(
            "kubelet_pod_start_duration_seconds",
            "Duration in seconds from kubelet seeing a pod for the first time to the pod starting to run",
            m.pod_start.clone(),
        );
        registry.register(
            "kubelet_pod_worker_duration_seconds",
            "Duration in seconds to sync a single pod. Broken down by operation type: create, update, or sync",
            m.pod_worker.clone(),
        );
        m
    }

    pub fn observe_sync(&self, seconds: f64) {
        self.pod_worker
            .get_or_create(&OperationLabel {
                operation: "sync".into(),
            })
            .observe(seconds);
    }

    pub fn set_running(&self, pods: i64, containers: i64) {
        self.running_pods.set(pods);
        self.running_containers
            .get_or_create(&StateLabel {
                container_state: "running".into(),
            })
            .set(containers);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_upstream_names() {
        let mut r = Registry::default();
        let m = Metrics::register(&mut r, "node-a");
        m.set_running(2, 3);
        m.observe_sync(0.02);
        m.pod_start.observe(0.2);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &r).unwrap();
        assert!(
            out.contains("kubelet_node_name{node=\"node-a\"} 1"),
            "{out}"
        );
        assert!(out.contains("kubelet_running_pods 2"), "{out}");
        assert!(
            out.contains("kubelet_running_containers{container_state=\"running\"} 3"),
            "{out}"
        );
        assert!(
            out.contains("kubelet_pod_start_duration_seconds_count 1"),
            "{out}"
        );
        assert!(
            out.contains("kubelet_pod_worker_duration_seconds_count{operation=\"sync\"} 1"),
            "{out}"
        );
    }
}
