//! PodTopologySpread: DoNotSchedule constraints filter nodes whose domain would exceed
//! `maxSkew` over the least-loaded domain; ScheduleAnyway constraints (or the system default
//! constraints for pods owned by services and controllers) score nodes to even out the
//! spread (mirrors upstream `plugins/podtopologyspread/{common,filtering,scoring,plugin}.go`).

use super::helper::{find_untolerated, pod_matches_node_selector_and_affinity, pod_tolerations};
use crate::framework::*;
use apiserver_apimachinery::selector::{LabelSelector, Op, Requirement};
use k8s_openapi::api::core::v1::TopologySpreadConstraint;
use serde::Deserialize;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

pub const NAME: &str = "PodTopologySpread";
pub const ERR_CONSTRAINTS: &str = "node(s) didn't match pod topology spread constraints";
pub const ERR_LABEL: &str =
    "node(s) didn't match pod topology spread constraints (missing required label)";
const HOSTNAME: &str = "kubernetes.io/hostname";
const PRE_FILTER_KEY: &str = "PreFilterPodTopologySpread";
const PRE_SCORE_KEY: &str = "PreScorePodTopologySpread";

/// `PodTopologySpreadArgs`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SpreadArgs {
    #[serde(default)]
    pub default_constraints: Vec<TopologySpreadConstraint>,
    /// `System` (default) or `List`.
    #[serde(default)]
    pub defaulting_type: Option<String>,
}

/// Builds the selector of the services and controllers a pod belongs to (upstream
/// `helper.DefaultSelector`); None when it belongs to none.
pub type DefaultSelectorFn = Arc<dyn Fn(&PodInfo) -> Option<LabelSelector> + Send + Sync>;

#[derive(Clone, Debug)]
struct Constraint {
    max_skew: i64,
    key: String,
    selector: Option<LabelSelector>,
    min_domains: usize,
    honor_affinity: bool,
    honor_taints: bool,
}

pub struct PodTopologySpread {
    defaults: Vec<TopologySpreadConstraint>,
    default_selector: Option<DefaultSelectorFn>,
}

fn system_defaults() -> Vec<TopologySpreadConstraint> {
    vec![
        TopologySpreadConstraint {
            max_skew: 3,
            topology_key: HOSTNAME.into(),
            when_unsatisfiable: "ScheduleAnyway".into(),
            ..Default::default()
        },
        TopologySpreadConstraint {
            max_skew: 5,
            topology_key: "topology.kubernetes.io/zone".into(),
            when_unsatisfiable: "ScheduleAnyway".into(),
            ..Default::default()
        },
    ]
}

impl PodTopologySpread {
    pub fn new(
        args: SpreadArgs,
        default_selector: Option<DefaultSelectorFn>,
    ) -> anyhow::Result<Self> {
        let defaults = match args.defaulting_type.as_deref().unwrap_or("System") {
            "System" => {
                if !args.default_constraints.is_empty() {
                    anyhow::bail!(
                        "defaultConstraints: Invalid value: when .defaultingType is \"System\", .defaultConstraints must be empty"
                    );
                }
                system_defaults()
            }
            "List" => args.default_constraints,
            other => anyhow::bail!("defaultingType: Unsupported value: {other:?}"),
        };
        for c in &defaults {
            if c.label_selector.is_some() {
                anyhow::bail!(
                    "defaultConstraints[].labelSelector: Forbidden: constraint must not define a selector, as they deduced for each pod"
                );
            }
        }
        Ok(PodTopologySpread {
            defaults,
            default_selector,
        })
    }

    fn build(pod: &PodInfo, cs: &[TopologySpreadConstraint], action: &str) -> Vec<Constraint> {
        cs.iter()
            .filter(|c| c.when_unsatisfiable == action)
            .map(|c| {
                let mut selector = c
                    .label_selector
                    .as_ref()
                    .and_then(|s| LabelSelector::from_meta(s).ok());
                if let (Some(sel), Some(keys)) = (selector.as_mut(), c.match_label_keys.as_ref()) {
                    for k in keys {
                        if let Some(v) = pod.labels().get(k) {
                            sel.requirements.push(Requirement {
                                key: k.clone(),
                                op: Op::In,
                                values: vec![v.clone()],
                            });
                        }
                    }
                }
                Constraint {
                    max_skew: c.max_skew as i64,
                    key: c.topology_key.clone(),
                    selector,
                    min_domains: c.min_domains.unwrap_or(1).max(1) as usize,
                    honor_affinity: c.node_affinity_policy.as_deref() != Some("Ignore"),
                    honor_taints: c.node_taints_policy.as_deref() == Some("Honor"),
                }
            })
            .collect()
    }

    /// The pod's constraints for `action`; the defaults (with the pod's default selector) when
    /// the pod has none at all. The bool says whether they are the pod's own.
    fn constraints(&self, pod: &PodInfo, action: &str) -> (Vec<Constraint>, bool) {
        let own = pod
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.topology_spread_constraints.as_ref());
        if let Some(own) = own.filter(|c| !c.is_empty()) {
            return (Self::build(pod, own, action), true);
        }
        let Some(sel) = self.default_selector.as_ref().and_then(|f| f(pod)) else {
            return (vec![], false);
        };
        if sel.is_empty() {
            return (vec![], false);
        }
        let mut cs = Self::build(pod, &self.defaults, action);
        for c in &mut cs {
            c.selector = Some(sel.clone());
        }
        (cs, false)
    }
}

fn node_passes_policies(c: &Constraint, pod: &PodInfo, node: &NodeInfo) -> bool {
    if c.honor_affinity
        && !pod_matches_node_selector_and_affinity(&pod.pod, node.labels(), &node.name)
    {
        return false;
    }
    if c.honor_taints
        && find_untolerated(node.taints(), pod_tolerations(&pod.pod), |t| {
            t.effect == "NoSchedule" || t.effect == "NoExecute"
        })
        .is_some()
    {
        return false;
    }
    true
}

fn has_all_keys(cs: &[Constraint], node: &NodeInfo) -> bool {
    let l = node.labels();
    cs.iter().all(|c| l.contains_key(&c.key))
}

fn count_matching(pods: &[Arc<PodInfo>], sel: &Option<LabelSelector>, ns: &str) -> i64 {
    let Some(sel) = sel else {
        return 0;
    };
    pods.iter()
        .filter(|p| !p.is_terminating() && p.namespace == ns && sel.matches(p.labels()))
        .count() as i64
}

#[derive(Clone, Default)]
struct PreFilterState {
    constraints: Vec<Constraint>,
    /// Per constraint: domain value -> matching pods.
    counts: Vec<HashMap<String, i64>>,
}

impl PreFilterState {
    fn min(&self, i: usize) -> i64 {
        let m = &self.counts[i];
        if m.len() < self.constraints[i].min_domains {
            return 0;
        }
        m.values().copied().min().unwrap_or(0)
    }

    fn update(&mut self, pod: &PodInfo, other: &PodInfo, node: &NodeInfo, by: i64) {
        if other.namespace != pod.namespace || !has_all_keys(&self.constraints, node) {
            return;
        }
        for (i, c) in self.constraints.iter().enumerate() {
            if !node_passes_policies(c, pod, node)
                || !c
                    .selector
                    .as_ref()
                    .is_some_and(|s| s.matches(other.labels()))
            {
                continue;
            }
            if let Some(v) = node.labels().get(&c.key) {
                *self.counts[i].entry(v.clone()).or_default() += by;
            }
        }
    }
}

impl Plugin for PodTopologySpread {
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
        &[
            ClusterEvent::AssignedPodAdd,
            ClusterEvent::AssignedPodUpdate,
            ClusterEvent::AssignedPodDelete,
            ClusterEvent::NodeAdd,
            ClusterEvent::NodeUpdate,
        ]
    }
}

impl PreFilterPlugin for PodTopologySpread {
    fn name(&self) -> &'static str {
        NAME
    }
    fn pre_filter(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        lister: &dyn SharedLister,
    ) -> (Option<PreFilterResult>, Status) {
        let (constraints, _) = self.constraints(pod, "DoNotSchedule");
        if constraints.is_empty() {
            return (None, Status::skip());
        }
        let mut s = PreFilterState {
            counts: vec![HashMap::new(); constraints.len()],
            constraints,
        };
        for n in lister.node_infos() {
            if !has_all_keys(&s.constraints, n) {
                continue;
            }
            for (i, c) in s.constraints.iter().enumerate() {
                if !node_passes_policies(c, pod, n) {
                    continue;
                }
                let v = &n.labels()[&c.key];
                *s.counts[i].entry(v.clone()).or_default() +=
                    count_matching(&n.pods, &c.selector, &pod.namespace);
            }
        }
        state.write(PRE_FILTER_KEY, s);
        (None, Status::success())
    }
    fn add_pod(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        added: &PodInfo,
        node: &NodeInfo,
        _: &dyn SharedLister,
    ) -> Status {
        if let Some(s) = state.read_mut::<PreFilterState>(PRE_FILTER_KEY) {
            s.update(pod, added, node, 1);
        }
        Status::success()
    }
    fn remove_pod(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        removed: &PodInfo,
        node: &NodeInfo,
        _: &dyn SharedLister,
    ) -> Status {
        if let Some(s) = state.read_mut::<PreFilterState>(PRE_FILTER_KEY) {
            s.update(pod, removed, node, -1);
        }
        Status::success()
    }
}

impl FilterPlugin for PodTopologySpread {
    fn name(&self) -> &'static str {
        NAME
    }
    fn filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let Some(s) = state.read::<PreFilterState>(PRE_FILTER_KEY) else {
            return Status::error("reading PreFilterPodTopologySpread from cycle state");
        };
        let labels = node.labels();
        for (i, c) in s.constraints.iter().enumerate() {
            let Some(v) = labels.get(&c.key) else {
                return Status::unresolvable(ERR_LABEL);
            };
            let self_match = c
                .selector
                .as_ref()
                .is_some_and(|sel| sel.matches(pod.labels())) as i64;
            let matching = s.counts[i].get(v).copied().unwrap_or(0);
            if matching + self_match - s.min(i) > c.max_skew {
                return Status::unschedulable(ERR_CONSTRAINTS);
            }
        }
        Status::success()
    }
}

#[derive(Clone, Default)]
struct PreScoreState {
    constraints: Vec<Constraint>,
    ignored: HashSet<String>,
    counts: Vec<HashMap<String, i64>>,
    weights: Vec<f64>,
}

impl PreScorePlugin for PodTopologySpread {
    fn name(&self) -> &'static str {
        NAME
    }
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        filtered: &[Arc<NodeInfo>],
        lister: &dyn SharedLister,
    ) -> Status {
        let (constraints, require_all) = self.constraints(pod, "ScheduleAnyway");
        if constraints.is_empty() {
            return Status::skip();
        }
        let mut s = PreScoreState {
            counts: vec![HashMap::new(); constraints.len()],
            weights: vec![0.0; constraints.len()],
            constraints,
            ignored: HashSet::new(),
        };
        let mut sizes = vec![0usize; s.constraints.len()];
        for n in filtered {
            if require_all && !has_all_keys(&s.constraints, n) {
                s.ignored.insert(n.name.clone());
                continue;
            }
            for (i, c) in s.constraints.iter().enumerate() {
                if c.key == HOSTNAME {
                    continue;
                }
                if let Some(v) = n.labels().get(&c.key)
                    && !s.counts[i].contains_key(v)
                {
                    s.counts[i].insert(v.clone(), 0);
                    sizes[i] += 1;
                }
            }
        }
        for (i, c) in s.constraints.iter().enumerate() {
            if c.key == HOSTNAME {
                sizes[i] = filtered.len() - s.ignored.len();
            }
            s.weights[i] = ((sizes[i] + 2) as f64).ln();
        }
        let keyed: Vec<usize> = (0..s.constraints.len())
            .filter(|i| s.constraints[*i].key != HOSTNAME)
            .collect();
        if !keyed.is_empty() {
            for n in lister.node_infos() {
                if require_all && !has_all_keys(&s.constraints, n) {
                    continue;
                }
                for &i in &keyed {
                    let c = &s.constraints[i];
                    if !node_passes_policies(c, pod, n) {
                        continue;
                    }
                    if let Some(v) = n.labels().get(&c.key)
                        && let Some(cnt) = s.counts[i].get_mut(v)
                    {
                        *cnt += count_matching(&n.pods, &c.selector, &pod.namespace);
                    }
                }
            }
        }
        state.write(PRE_SCORE_KEY, s);
        Status::success()
    }
}

impl ScorePlugin for PodTopologySpread {
    fn name(&self) -> &'static str {
        NAME
    }
    /// Ignored nodes score -1 here and 0 after normalisation.
    fn score(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> (i64, Status) {
        let Some(s) = state.read::<PreScoreState>(PRE_SCORE_KEY) else {
            return (
                0,
                Status::error("reading PreScorePodTopologySpread from cycle state"),
            );
        };
        if s.ignored.contains(&node.name) {
            return (-1, Status::success());
        }
        let labels = node.labels();
        let mut score = 0f64;
        for (i, c) in s.constraints.iter().enumerate() {
            if let Some(v) = labels.get(&c.key) {
                let cnt = if c.key == HOSTNAME {
                    count_matching(&node.pods, &c.selector, &pod.namespace)
                } else {
                    s.counts[i].get(v).copied().unwrap_or(0)
                };
                score += cnt as f64 * s.weights[i] + (c.max_skew - 1) as f64;
            }
        }
        (score.round() as i64, Status::success())
    }
    fn normalize(&self, _: &CycleState, _: &PodInfo, scores: &mut [NodeScore]) -> Status {
        let valid = scores.iter().filter(|s| s.score >= 0).map(|s| s.score);
        let min = valid.clone().min().unwrap_or(0);
        let max = valid.max().unwrap_or(0);
        for s in scores.iter_mut() {
            s.score = if s.score < 0 {
                0
            } else if max == 0 {
                MAX_NODE_SCORE
            } else {
                MAX_NODE_SCORE * (max + min - s.score) / max
            };
        }
        Status::success()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector as MetaSelector;

    fn spread_pod(name: &str, when: &str) -> PodInfo {
        let mut p = labeled_pod(name, &[("app", "web")]);
        p.spec.as_mut().unwrap().topology_spread_constraints =
            Some(vec![TopologySpreadConstraint {
                max_skew: 1,
                topology_key: "zone".into(),
                when_unsatisfiable: when.into(),
                label_selector: Some(MetaSelector {
                    match_labels: Some([("app".to_string(), "web".to_string())].into()),
                    ..Default::default()
                }),
                ..Default::default()
            }]);
        PodInfo::new(Arc::new(p))
    }

    fn nodes() -> Vec<NodeInfo> {
        let mut a = NodeInfo::new(Arc::new(labeled_node("a", &[("zone", "z1")])));
        let b = NodeInfo::new(Arc::new(labeled_node("b", &[("zone", "z2")])));
        let c = NodeInfo::new(Arc::new(labeled_node("c", &[])));
        a.add_pod(Arc::new(PodInfo::new(Arc::new(labeled_pod(
            "w0",
            &[("app", "web")],
        )))));
        vec![a, b, c]
    }

    #[test]
    fn do_not_schedule_limits_skew() {
        let pl = PodTopologySpread::new(SpreadArgs::default(), None).unwrap();
        let ns = nodes();
        let lister = TestLister::new(ns.clone());
        let p = spread_pod("w1", "DoNotSchedule");
        let mut st = CycleState::new();
        assert!(pl.pre_filter(&mut st, &p, &lister).1.is_success());
        let r: Vec<Status> = ns.iter().map(|n| pl.filter(&st, &p, n)).collect();
        assert_eq!(
            (r[0].code, r[0].message().as_str()),
            (Code::Unschedulable, ERR_CONSTRAINTS)
        );
        assert!(r[1].is_success());
        assert_eq!(
            (r[2].code, r[2].message().as_str()),
            (Code::UnschedulableAndUnresolvable, ERR_LABEL)
        );
    }

    #[test]
    fn schedule_anyway_prefers_the_emptier_zone() {
        let pl = PodTopologySpread::new(SpreadArgs::default(), None).unwrap();
        let ns = nodes();
        let lister = TestLister::new(ns.clone());
        let arcs: Vec<Arc<NodeInfo>> = ns.iter().cloned().map(Arc::new).collect();
        let p = spread_pod("w1", "ScheduleAnyway");
        let mut st = CycleState::new();
        assert!(pl.pre_score(&mut st, &p, &arcs, &lister).is_success());
        let mut scores: Vec<NodeScore> = ns
            .iter()
            .map(|n| NodeScore {
                name: n.name.clone(),
                score: pl.score(&st, &p, n).0,
            })
            .collect();
        pl.normalize(&st, &p, &mut scores);
        assert!(scores[1].score > scores[0].score, "{scores:?}");
        assert_eq!(scores[2].score, 0, "a node without the key is ignored");
    }

    #[test]
    fn system_defaults_need_an_owner_selector() {
        let sel: DefaultSelectorFn = Arc::new(|p: &PodInfo| {
            p.labels().get("app").map(|v| LabelSelector {
                requirements: vec![Requirement {
                    key: "app".into(),
                    op: Op::Equals,
                    values: vec![v.clone()],
                }],
            })
        });
        let pl = PodTopologySpread::new(SpreadArgs::default(), Some(sel)).unwrap();
        let owned = PodInfo::new(Arc::new(labeled_pod("o", &[("app", "web")])));
        assert_eq!(pl.constraints(&owned, "ScheduleAnyway").0.len(), 2);
        let lone = PodInfo::new(Arc::new(pod("l")));
        assert!(pl.constraints(&lone, "ScheduleAnyway").0.is_empty());
    }
}
