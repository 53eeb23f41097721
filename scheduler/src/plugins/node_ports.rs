//! NodePorts: a pod's host ports must be free on the node (mirrors upstream
//! `plugins/nodeports/node_ports.go`).

use crate::framework::*;
use std::sync::Arc;

pub const NAME: &str = "NodePorts";
pub const ERR_REASON: &str = "node(s) didn't have free ports for the requested pod ports";

pub struct NodePorts;

impl Plugin for NodePorts {
    fn name(&self) -> &'static str {
        NAME
    }
    fn pre_filter(self: Arc<Self>) -> Option<Arc<dyn PreFilterPlugin>> {
        Some(self)
    }
    fn filter(self: Arc<Self>) -> Option<Arc<dyn FilterPlugin>> {
        Some(self)
    }
    fn events(&self) -> &'static [ClusterEvent] {
        &[ClusterEvent::NodeAdd, ClusterEvent::AssignedPodDelete]
    }
}

impl PreFilterPlugin for NodePorts {
    fn name(&self) -> &'static str {
        NAME
    }
    fn pre_filter(
        &self,
        _: &mut CycleState,
        pod: &PodInfo,
        _: &dyn SharedLister,
    ) -> (Option<PreFilterResult>, Status) {
        if pod.host_ports.is_empty() {
            (None, Status::skip())
        } else {
            (None, Status::success())
        }
    }
}

impl FilterPlugin for NodePorts {
    fn name(&self) -> &'static str {
        NAME
    }
    fn filter(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let conflict = pod
            .host_ports
            .iter()
            .any(|want| node.used_ports.iter().any(|used| used.conflicts(want)));
        if conflict {
            Status::unschedulable(ERR_REASON)
        } else {
            Status::success()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::*;
    use k8s_openapi::api::core::v1::ContainerPort;

    fn with_port(name: &str, ip: Option<&str>, port: i32) -> PodInfo {
        let mut p = pod(name);
        p.spec.as_mut().unwrap().containers[0].ports = Some(vec![ContainerPort {
            container_port: 80,
            host_port: Some(port),
            host_ip: ip.map(String::from),
            ..Default::default()
        }]);
        PodInfo::new(Arc::new(p))
    }

    #[test]
    fn host_port_conflicts() {
        let mut ni = NodeInfo::new(Arc::new(node("a")));
        ni.add_pod(Arc::new(with_port("x", Some("10.0.0.1"), 8080)));
        let st = CycleState::new();
        let s = NodePorts.filter(&st, &with_port("p", None, 8080), &ni);
        assert_eq!(s.code, Code::Unschedulable);
        assert_eq!(s.message(), ERR_REASON);
        assert!(
            NodePorts
                .filter(&st, &with_port("q", Some("10.0.0.2"), 8080), &ni)
                .is_success()
        );
        assert!(
            NodePorts
                .filter(&st, &with_port("r", None, 8081), &ni)
                .is_success()
        );
    }
}
