//! NodeUnschedulable: cordoned nodes (`spec.unschedulable`) take only pods tolerating the
//! `node.kubernetes.io/unschedulable:NoSchedule` taint (mirrors upstream
//! `plugins/nodeunschedulable/node_unschedulable.go`).

use super::helper::{pod_tolerations, tolerates};
use crate::framework::*;
use k8s_openapi::api::core::v1::Taint;
use std::sync::Arc;

pub const NAME: &str = "NodeUnschedulable";
pub const ERR_REASON_UNSCHEDULABLE: &str = "node(s) were unschedulable";
pub const ERR_REASON_UNKNOWN: &str = "node(s) had unknown conditions";

pub struct NodeUnschedulable;

impl Plugin for NodeUnschedulable {
    fn name(&self) -> &'static str {
        NAME
    }
    fn filter(self: Arc<Self>) -> Option<Arc<dyn FilterPlugin>> {
        Some(self)
    }
    fn events(&self) -> &'static [ClusterEvent] {
        &[ClusterEvent::NodeAdd, ClusterEvent::NodeUpdate]
    }
}

impl FilterPlugin for NodeUnschedulable {
    fn name(&self) -> &'static str {
        NAME
    }
    fn filter(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let Some(n) = node.node.as_ref() else {
            return Status::unresolvable(ERR_REASON_UNKNOWN);
        };
        if !n
            .spec
            .as_ref()
            .and_then(|s| s.unschedulable)
            .unwrap_or(false)
        {
            return Status::success();
        }
        let taint = Taint {
            key: "node.kubernetes.io/unschedulable".into(),
            effect: "NoSchedule".into(),
            ..Default::default()
        };
        if pod_tolerations(&pod.pod)
            .iter()
            .any(|t| tolerates(t, &taint))
        {
            Status::success()
        } else {
            Status::unresolvable(ERR_REASON_UNSCHEDULABLE)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::*;
    use k8s_openapi::api::core::v1::Toleration;

    #[test]
    fn cordoned_nodes_reject_intolerant_pods() {
        let mut n = node("a");
        n.spec.get_or_insert_default().unschedulable = Some(true);
        let ni = NodeInfo::new(Arc::new(n));
        let st = CycleState::new();
        let p = PodInfo::new(Arc::new(pod("p")));
        let s = NodeUnschedulable.filter(&st, &p, &ni);
        assert_eq!(s.code, Code::UnschedulableAndUnresolvable);
        assert_eq!(s.message(), ERR_REASON_UNSCHEDULABLE);
        let mut tp = pod("t");
        tp.spec.as_mut().unwrap().tolerations = Some(vec![Toleration {
            key: Some("node.kubernetes.io/unschedulable".into()),
            operator: Some("Exists".into()),
            effect: Some("NoSchedule".into()),
            ..Default::default()
        }]);
        let tp = PodInfo::new(Arc::new(tp));
        assert!(NodeUnschedulable.filter(&st, &tp, &ni).is_success());
        let ok = NodeInfo::new(Arc::new(node("b")));
        assert!(NodeUnschedulable.filter(&st, &p, &ok).is_success());
    }
}
