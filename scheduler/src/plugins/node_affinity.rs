//! NodeAffinity: `nodeSelector` and required node affinity filter nodes; preferred terms
//! score them by the sum of matching weights (mirrors upstream
//! `plugins/nodeaffinity/node_affinity.go`).

use super::helper::{
    default_normalize_score, pod_matches_node_selector_and_affinity, term_matches,
};
use crate::framework::*;
use k8s_openapi::api::core::v1::{NodeSelector, PreferredSchedulingTerm};
use serde::Deserialize;
use std::collections::BTreeSet;
use std::sync::Arc;

pub const NAME: &str = "NodeAffinity";
pub const ERR_REASON_POD: &str = "node(s) didn't match Pod's node affinity/selector";
pub const ERR_REASON_ENFORCED: &str = "node(s) didn't match scheduler-enforced node affinity";

/// `NodeAffinityArgs`: an affinity every pod of the profile must also satisfy.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeAffinityArgs {
    #[serde(default)]
    pub added_affinity: Option<k8s_openapi::api::core::v1::NodeAffinity>,
}

pub struct NodeAffinity {
    added_required: Option<NodeSelector>,
    added_preferred: Vec<PreferredSchedulingTerm>,
}

impl NodeAffinity {
    pub fn new(args: NodeAffinityArgs) -> NodeAffinity {
        let a = args.added_affinity.unwrap_or_default();
        NodeAffinity {
            added_required: a.required_during_scheduling_ignored_during_execution,
            added_preferred: a
                .preferred_during_scheduling_ignored_during_execution
                .unwrap_or_default(),
        }
    }
}

fn preferred(pod: &PodInfo) -> &[PreferredSchedulingTerm] {
    pod.pod
        .spec
        .as_ref()
        .and_then(|s| s.affinity.as_ref())
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|n| {
            n.preferred_during_scheduling_ignored_during_execution
                .as_deref()
        })
        .unwrap_or(&[])
}

impl Plugin for NodeAffinity {
    fn name(&self) -> &'static str {
        NAME
    }
    fn pre_filter(self: Arc<Self>) -> Option<Arc<dyn PreFilterPlugin>> {
        Some(self)
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

impl PreFilterPlugin for NodeAffinity {
    fn name(&self) -> &'static str {
        NAME
    }
    /// Skips when there is nothing to check; narrows to the nodes named by
    /// `metadata.name In` fields when every term has one (DaemonSet pods).
    fn pre_filter(
        &self,
        _: &mut CycleState,
        pod: &PodInfo,
        _: &dyn SharedLister,
    ) -> (Option<PreFilterResult>, Status) {
        let spec = pod.pod.spec.as_ref();
        let required = spec
            .and_then(|s| s.affinity.as_ref())
            .and_then(|a| a.node_affinity.as_ref())
            .and_then(|n| {
                n.required_during_scheduling_ignored_during_execution
                    .as_ref()
            });
        let has_selector = spec
            .and_then(|s| s.node_selector.as_ref())
            .is_some_and(|s| !s.is_empty());
        if required.is_none() && !has_selector && self.added_required.is_none() {
            return (None, Status::skip());
        }
        let Some(req) = required else {
            return (None, Status::success());
        };
        let mut names: Option<BTreeSet<String>> = Some(BTreeSet::new());
        for t in &req.node_selector_terms {
            let field_names: Option<BTreeSet<String>> = t
                .match_fields
                .iter()
                .flatten()
                .find(|f| f.key == "metadata.name" && f.operator == "In")
                .map(|f| f.values.iter().flatten().cloned().collect());
            match (field_names, names.as_mut()) {
                (Some(n), Some(acc)) => acc.extend(n),
                _ => names = None,
            }
        }
        match names {
            Some(n) if n.is_empty() => (None, Status::unresolvable(ERR_REASON_POD)),
            Some(n) => (
                Some(PreFilterResult {
                    node_names: Some(n),
                }),
                Status::success(),
            ),
            None => (None, Status::success()),
        }
    }
}

impl FilterPlugin for NodeAffinity {
    fn name(&self) -> &'static str {
        NAME
    }
    fn filter(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let labels = node.labels();
        if let Some(sel) = &self.added_required
            && !sel
                .node_selector_terms
                .iter()
                .any(|t| term_matches(t, labels, &node.name))
        {
            return Status::unresolvable(ERR_REASON_ENFORCED);
        }
        if pod_matches_node_selector_and_affinity(&pod.pod, labels, &node.name) {
            Status::success()
        } else {
            Status::unresolvable(ERR_REASON_POD)
        }
    }
}

impl PreScorePlugin for NodeAffinity {
    fn name(&self) -> &'static str {
        NAME
    }
    fn pre_score(
        &self,
        _: &mut CycleState,
        pod: &PodInfo,
        _: &[Arc<NodeInfo>],
        _: &dyn SharedLister,
    ) -> Status {
        if preferred(pod).is_empty() && self.added_preferred.is_empty() {
            Status::skip()
        } else {
            Status::success()
        }
    }
}

impl ScorePlugin for NodeAffinity {
    fn name(&self) -> &'static str {
        NAME
    }
    fn score(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> (i64, Status) {
        let labels = node.labels();
        let score = preferred(pod)
            .iter()
            .chain(self.added_preferred.iter())
            .filter(|t| t.weight != 0 && term_matches(&t.preference, labels, &node.name))
            .map(|t| t.weight as i64)
            .sum();
        (score, Status::success())
    }
    fn normalize(&self, _: &CycleState, _: &PodInfo, scores: &mut [NodeScore]) -> Status {
        default_normalize_score(MAX_NODE_SCORE, false, scores);
        Status::success()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::*;
    use k8s_openapi::api::core::v1::{Affinity, NodeSelectorRequirement, NodeSelectorTerm};

    fn expr(key: &str, op: &str, values: &[&str]) -> NodeSelectorTerm {
        NodeSelectorTerm {
            match_expressions: Some(vec![NodeSelectorRequirement {
                key: key.into(),
                operator: op.into(),
                values: Some(values.iter().map(|s| s.to_string()).collect()),
            }]),
            match_fields: None,
        }
    }

    #[test]
    fn selector_and_required_terms_filter() {
        let a = NodeInfo::new(Arc::new(labeled_node(
            "a",
            &[("disk", "ssd"), ("zone", "z1")],
        )));
        let b = NodeInfo::new(Arc::new(labeled_node("b", &[("disk", "hdd")])));
        let pl = NodeAffinity::new(NodeAffinityArgs::default());
        let st = CycleState::new();
        let mut p = pod("p");
        p.spec.as_mut().unwrap().node_selector =
            Some([("disk".to_string(), "ssd".to_string())].into());
        let pi = PodInfo::new(Arc::new(p.clone()));
        assert!(pl.filter(&st, &pi, &a).is_success());
        let s = pl.filter(&st, &pi, &b);
        assert_eq!(
            (s.code, s.message().as_str()),
            (Code::UnschedulableAndUnresolvable, ERR_REASON_POD)
        );
        p.spec.as_mut().unwrap().node_selector = None;
        p.spec.as_mut().unwrap().affinity = Some(Affinity {
            node_affinity: Some(k8s_openapi::api::core::v1::NodeAffinity {
                required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                    node_selector_terms: vec![
                        expr("zone", "In", &["z2"]),
                        expr("disk", "NotIn", &["ssd"]),
                    ],
                }),
                ..Default::default()
            }),
            ..Default::default()
        });
        let pi = PodInfo::new(Arc::new(p));
        assert!(!pl.filter(&st, &pi, &a).is_success());
        assert!(pl.filter(&st, &pi, &b).is_success());
    }

    #[test]
    fn preferred_terms_score_and_normalize() {
        let pl = NodeAffinity::new(NodeAffinityArgs::default());
        let mut p = pod("p");
        p.spec.as_mut().unwrap().affinity = Some(Affinity {
            node_affinity: Some(k8s_openapi::api::core::v1::NodeAffinity {
                preferred_during_scheduling_ignored_during_execution: Some(vec![
                    PreferredSchedulingTerm {
                        weight: 10,
                        preference: expr("zone", "In", &["z1"]),
                    },
                    PreferredSchedulingTerm {
                        weight: 30,
                        preference: expr("disk", "Exists", &[]),
                    },
                ]),
                ..Default::default()
            }),
            ..Default::default()
        });
        let pi = PodInfo::new(Arc::new(p));
        let st = CycleState::new();
        let a = NodeInfo::new(Arc::new(labeled_node(
            "a",
            &[("disk", "ssd"), ("zone", "z1")],
        )));
        let b = NodeInfo::new(Arc::new(labeled_node("b", &[("disk", "hdd")])));
        let c = NodeInfo::new(Arc::new(labeled_node("c", &[])));
        let mut scores: Vec<NodeScore> = [&a, &b, &c]
            .iter()
            .map(|n| NodeScore {
                name: n.name.clone(),
                score: pl.score(&st, &pi, n).0,
            })
            .collect();
        assert_eq!(
            scores.iter().map(|s| s.score).collect::<Vec<_>>(),
            vec![40, 30, 0]
        );
        pl.normalize(&st, &pi, &mut scores);
        assert_eq!(
            scores.iter().map(|s| s.score).collect::<Vec<_>>(),
            vec![100, 75, 0]
        );
    }
}
