//! NodeName: a pod that names a node fits only that node (mirrors upstream
//! `plugins/nodename/node_name.go`).

use crate::framework::*;
use std::sync::Arc;

pub const NAME: &str = "NodeName";
pub const ERR_REASON: &str = "node(s) didn't match the requested node name";

pub struct NodeName;

impl Plugin for NodeName {
    fn name(&self) -> &'static str {
        NAME
    }
    fn filter(self: Arc<Self>) -> Option<Arc<dyn FilterPlugin>> {
        Some(self)
    }
    fn events(&self) -> &'static [ClusterEvent] {
        &[ClusterEvent::NodeAdd]
    }
}

impl FilterPlugin for NodeName {
    fn name(&self) -> &'static str {
        NAME
    }
    fn filter(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        match pod.node_name() {
            Some(n) if n != node.name => Status::unresolvable(ERR_REASON),
            _ => Status::success(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::*;

    #[test]
    fn only_the_named_node_fits() {
        let mut p = pod("p");
        p.spec.as_mut().unwrap().node_name = Some("a".into());
        let pi = PodInfo::new(Arc::new(p));
        let a = NodeInfo::new(Arc::new(node("a")));
        let b = NodeInfo::new(Arc::new(node("b")));
        let st = CycleState::new();
        assert!(NodeName.filter(&st, &pi, &a).is_success());
        let s = NodeName.filter(&st, &pi, &b);
        assert_eq!(s.code, Code::UnschedulableAndUnresolvable);
        assert_eq!(s.reasons, vec![ERR_REASON.to_string()]);
        let free = PodInfo::new(Arc::new(pod("q")));
        assert!(NodeName.filter(&st, &free, &b).is_success());
    }
}
