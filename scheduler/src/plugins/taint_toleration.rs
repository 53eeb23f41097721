//! TaintToleration: NoSchedule/NoExecute taints the pod does not tolerate reject the node;
//! untolerated PreferNoSchedule taints lower its score (mirrors upstream
//! `plugins/tainttoleration/taint_toleration.go`).

use super::helper::{default_normalize_score, find_untolerated, pod_tolerations};
use crate::framework::*;
use k8s_openapi::api::core::v1::Toleration;
use std::sync::Arc;

pub const NAME: &str = "TaintToleration";
const STATE_KEY: &str = "PreScoreTaintToleration";

pub struct TaintToleration;

impl Plugin for TaintToleration {
    fn name(&self) -> &'static str {
        NAME
    }
    fn filter(self: Arc<Self>) -> Option<Arc<dyn FilterPlugin>> {
        Some(self)
    }
    fn pre_score(self: Arc<Self>) -> Option<Arc<dyn PreScorePlugin>> {
        Some(self)
    }
    fn score(self: Arc<Self>) -> Option<Arc<dyn ScorePlugin>> {
        Some(self)
    }
    fn events(&self) -> &'static [ClusterEvent] {
        &[ClusterEvent::NodeAdd, ClusterEvent::NodeUpdate]
    }
}

impl FilterPlugin for TaintToleration {
    fn name(&self) -> &'static str {
        NAME
    }
    fn filter(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let taints = node.taints();
        if taints.is_empty() {
            return Status::success();
        }
        match find_untolerated(taints, pod_tolerations(&pod.pod), |t| {
            t.effect == "NoSchedule" || t.effect == "NoExecute"
        }) {
            None => Status::success(),
            Some(t) => Status::unresolvable(format!(
                "node(s) had untolerated taint {{{}: {}}}",
                t.key,
                t.value.as_deref().unwrap_or("")
            )),
        }
    }
}

#[derive(Clone)]
struct PreScoreState {
    tolerations: Vec<Toleration>,
}

impl PreScorePlugin for TaintToleration {
    fn name(&self) -> &'static str {
        NAME
    }
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        _: &[Arc<NodeInfo>],
        _: &dyn SharedLister,
    ) -> Status {
        let tolerations = pod_tolerations(&pod.pod)
            .iter()
            .filter(|t| {
                matches!(
                    t.effect.as_deref(),
                    None | Some("") | Some("PreferNoSchedule")
                )
            })
            .cloned()
            .collect();
        state.write(STATE_KEY, PreScoreState { tolerations });
        Status::success()
    }
}

impl ScorePlugin for TaintToleration {
    fn name(&self) -> &'static str {
        NAME
    }
    fn score(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> (i64, Status) {
        let taints = node.taints();
        if taints.is_empty() {
            return (0, Status::success());
        }
        let own;
        let tolerations: &[Toleration] = match state.read::<PreScoreState>(STATE_KEY) {
            Some(s) => &s.tolerations,
            None => {
                own = pod_tolerations(&pod.pod).to_vec();
                &own
            }
        };
        let count = taints
            .iter()
            .filter(|t| t.effect == "PreferNoSchedule")
            .filter(|t| {
                !tolerations
                    .iter()
                    .any(|tol| super::helper::tolerates(tol, t))
            })
            .count();
        (count as i64, Status::success())
    }
    fn normalize(&self, _: &CycleState, _: &PodInfo, scores: &mut [NodeScore]) -> Status {
        default_normalize_score(MAX_NODE_SCORE, true, scores);
        Status::success()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::*;

    #[test]
    fn untolerated_taint_message() {
        let n = NodeInfo::new(Arc::new(tainted_node(
            "cp",
            "node-role.kubernetes.io/control-plane",
            "",
            "NoSchedule",
        )));
        let st = CycleState::new();
        let p = PodInfo::new(Arc::new(pod("p")));
        let s = TaintToleration.filter(&st, &p, &n);
        assert_eq!(s.code, Code::UnschedulableAndUnresolvable);
        assert_eq!(
            s.message(),
            "node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }"
        );
        let mut tp = pod("t");
        tp.spec.as_mut().unwrap().tolerations = Some(vec![Toleration {
            key: Some("node-role.kubernetes.io/control-plane".into()),
            operator: Some("Exists".into()),
            ..Default::default()
        }]);
        assert!(
            TaintToleration
                .filter(&st, &PodInfo::new(Arc::new(tp)), &n)
                .is_success()
        );
        let v = NodeInfo::new(Arc::new(tainted_node("v", "dedicated", "gpu", "NoExecute")));
        assert_eq!(
            TaintToleration.filter(&st, &p, &v).message(),
            "node(s) had untolerated taint {dedicated: gpu}"
        );
        let soft = NodeInfo::new(Arc::new(tainted_node("s", "soft", "x", "PreferNoSchedule")));
        assert!(TaintToleration.filter(&st, &p, &soft).is_success());
    }

    #[test]
    fn prefer_no_schedule_lowers_score() {
        let soft = NodeInfo::new(Arc::new(tainted_node("s", "soft", "x", "PreferNoSchedule")));
        let clean = NodeInfo::new(Arc::new(node("c")));
        let p = PodInfo::new(Arc::new(pod("p")));
        let mut st = CycleState::new();
        TaintToleration.pre_score(&mut st, &p, &[], &EmptyLister);
        let mut scores = vec![
            NodeScore {
                name: "s".into(),
                score: TaintToleration.score(&st, &p, &soft).0,
            },
            NodeScore {
                name: "c".into(),
                score: TaintToleration.score(&st, &p, &clean).0,
            },
        ];
        TaintToleration.normalize(&st, &p, &mut scores);
        assert_eq!(scores[0].score, 0);
        assert_eq!(scores[1].score, 100);
    }
}
