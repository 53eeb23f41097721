//! InterPodAffinity: required pod affinity / anti-affinity (the incoming pod's, and existing
//! pods' anti-affinity towards it) filter nodes by topology domain; preferred terms score
//! them (mirrors upstream `plugins/interpodaffinity/{filtering,scoring,plugin}.go`).

use crate::framework::types::AffinityTerm;
use crate::framework::*;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;

pub const NAME: &str = "InterPodAffinity";
pub const ERR_AFFINITY: &str = "node(s) didn't match pod affinity rules";
pub const ERR_ANTI_AFFINITY: &str = "node(s) didn't match pod anti-affinity rules";
pub const ERR_EXISTING_ANTI_AFFINITY: &str =
    "node(s) didn't satisfy existing pods anti-affinity rules";
const PRE_FILTER_KEY: &str = "PreFilterInterPodAffinity";
const PRE_SCORE_KEY: &str = "PreScoreInterPodAffinity";

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InterPodAffinityArgs {
    #[serde(default = "one")]
    pub hard_pod_affinity_weight: i32,
    #[serde(default)]
    pub ignore_preferred_terms_of_existing_pods: bool,
}

fn one() -> i32 {
    1
}

impl Default for InterPodAffinityArgs {
    fn default() -> Self {
        InterPodAffinityArgs {
            hard_pod_affinity_weight: 1,
            ignore_preferred_terms_of_existing_pods: false,
        }
    }
}

pub struct InterPodAffinity {
    args: InterPodAffinityArgs,
}

impl InterPodAffinity {
    pub fn new(args: InterPodAffinityArgs) -> anyhow::Result<Self> {
        if !(0..=100).contains(&args.hard_pod_affinity_weight) {
            anyhow::bail!(
                "hardPodAffinityWeight: Invalid value: {}: not in valid range [0, 100]",
                args.hard_pod_affinity_weight
            );
        }
        Ok(InterPodAffinity { args })
    }
}

/// topology key -> value -> count
type Counts = HashMap<String, HashMap<String, i64>>;

fn bump(c: &mut Counts, key: &str, value: &str, by: i64) {
    let e = c
        .entry(key.to_string())
        .or_default()
        .entry(value.to_string())
        .or_default();
    *e += by;
    if *e == 0
        && let Some(m) = c.get_mut(key)
    {
        m.remove(value);
        if m.is_empty() {
            c.remove(key);
        }
    }
}

fn get(c: &Counts, key: &str, value: &str) -> i64 {
    c.get(key).and_then(|m| m.get(value)).copied().unwrap_or(0)
}

/// Whether `term` selects `pod`, looking namespace labels up only when needed.
fn term_selects(term: &AffinityTerm, pod: &PodInfo, lister: &dyn SharedLister) -> bool {
    if !term.namespaces.contains(&pod.namespace)
        && term
            .namespace_selector
            .as_ref()
            .is_some_and(|s| !s.is_empty())
    {
        let labels = lister.namespace_labels(&pod.namespace);
        term.matches(pod, labels.as_ref())
    } else {
        term.matches(pod, None)
    }
}

#[derive(Clone, Default)]
struct PreFilterState {
    existing_anti_affinity: Counts,
    affinity: Counts,
    anti_affinity: Counts,
}

impl PreFilterState {
    /// Counts `existing` on `node` (multiplier +1 to add, -1 to remove).
    fn update(
        &mut self,
        pod: &PodInfo,
        existing: &PodInfo,
        node: &NodeInfo,
        lister: &dyn SharedLister,
        by: i64,
    ) {
        let labels = node.labels();
        for t in &existing.required_anti_affinity {
            if let Some(v) = labels.get(&t.topology_key)
                && term_selects(t, pod, lister)
            {
                bump(&mut self.existing_anti_affinity, &t.topology_key, v, by);
            }
        }
        if !pod.required_affinity.is_empty()
            && pod
                .required_affinity
                .iter()
                .all(|t| term_selects(t, existing, lister))
        {
            for t in &pod.required_affinity {
                if let Some(v) = labels.get(&t.topology_key) {
                    bump(&mut self.affinity, &t.topology_key, v, by);
                }
            }
        }
        for t in &pod.required_anti_affinity {
            if let Some(v) = labels.get(&t.topology_key)
                && term_selects(t, existing, lister)
            {
                bump(&mut self.anti_affinity, &t.topology_key, v, by);
            }
        }
    }
}

impl Plugin for InterPodAffinity {
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
            ClusterEvent::NamespaceChange,
        ]
    }
}

impl PreFilterPlugin for InterPodAffinity {
    fn name(&self) -> &'static str {
        NAME
    }
    fn pre_filter(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        lister: &dyn SharedLister,
    ) -> (Option<PreFilterResult>, Status) {
        if let Some(e) = &pod.parse_error {
            return (None, Status::unresolvable(e.clone()));
        }
        let own = !pod.required_affinity.is_empty() || !pod.required_anti_affinity.is_empty();
        let anti_nodes = lister.nodes_with_required_anti_affinity_pods();
        if !own
            && anti_nodes
                .iter()
                .all(|n| n.pods_with_required_anti_affinity.is_empty())
        {
            return (None, Status::skip());
        }
        let nodes = if own { lister.node_infos() } else { anti_nodes };
        let mut s = PreFilterState::default();
        for n in nodes {
            let labels = n.labels();
            for existing in &n.pods_with_required_anti_affinity {
                for t in &existing.required_anti_affinity {
                    if let Some(v) = labels.get(&t.topology_key)
                        && term_selects(t, pod, lister)
                    {
                        bump(&mut s.existing_anti_affinity, &t.topology_key, v, 1);
                    }
                }
            }
            if own {
                for existing in &n.pods {
                    if !pod.required_affinity.is_empty()
                        && pod
                            .required_affinity
                            .iter()
                            .all(|t| term_selects(t, existing, lister))
                    {
                        for t in &pod.required_affinity {
                            if let Some(v) = labels.get(&t.topology_key) {
                                bump(&mut s.affinity, &t.topology_key, v, 1);
                            }
                        }
                    }
                    for t in &pod.required_anti_affinity {
                        if let Some(v) = labels.get(&t.topology_key)
                            && term_selects(t, existing, lister)
                        {
                            bump(&mut s.anti_affinity, &t.topology_key, v, 1);
                        }
                    }
                }
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
        lister: &dyn SharedLister,
    ) -> Status {
        if let Some(s) = state.read_mut::<PreFilterState>(PRE_FILTER_KEY) {
            s.update(pod, added, node, lister, 1);
        }
        Status::success()
    }

    fn remove_pod(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        removed: &PodInfo,
        node: &NodeInfo,
        lister: &dyn SharedLister,
    ) -> Status {
        if let Some(s) = state.read_mut::<PreFilterState>(PRE_FILTER_KEY) {
            s.update(pod, removed, node, lister, -1);
        }
        Status::success()
    }
}

impl FilterPlugin for InterPodAffinity {
    fn name(&self) -> &'static str {
        NAME
    }
    fn filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let Some(s) = state.read::<PreFilterState>(PRE_FILTER_KEY) else {
            return Status::error("reading PreFilterInterPodAffinity from cycle state");
        };
        let labels = node.labels();
        if !pod.required_affinity.is_empty() {
            let ok = pod.required_affinity.iter().all(|t| {
                labels
                    .get(&t.topology_key)
                    .is_some_and(|v| get(&s.affinity, &t.topology_key, v) > 0)
            });
            // The first pod of a group that selects itself may go anywhere with the keys.
            let self_ok = s.affinity.is_empty()
                && pod
                    .required_affinity
                    .iter()
                    .all(|t| t.matches(pod, None) && labels.contains_key(&t.topology_key));
            if !ok && !self_ok {
                return Status::unresolvable(ERR_AFFINITY);
            }
        }
        for t in &pod.required_anti_affinity {
            if let Some(v) = labels.get(&t.topology_key)
                && get(&s.anti_affinity, &t.topology_key, v) > 0
            {
                return Status::unschedulable(ERR_ANTI_AFFINITY);
            }
        }
        if !s.existing_anti_affinity.is_empty() {
            for (k, v) in labels {
                if get(&s.existing_anti_affinity, k, v) > 0 {
                    return Status::unschedulable(ERR_EXISTING_ANTI_AFFINITY);
                }
            }
        }
        Status::success()
    }
}

#[derive(Clone, Default)]
struct PreScoreState {
    topology_score: Counts,
}

impl InterPodAffinity {
    fn process_existing(
        &self,
        s: &mut Counts,
        pod: &PodInfo,
        existing: &PodInfo,
        node: &NodeInfo,
        lister: &dyn SharedLister,
    ) {
        let labels = node.labels();
        let mut add = |t: &AffinityTerm, w: i64, selects: bool| {
            if selects && let Some(v) = labels.get(&t.topology_key) {
                bump(s, &t.topology_key, v, w);
            }
        };
        for w in &pod.preferred_affinity {
            add(
                &w.term,
                w.weight as i64,
                term_selects(&w.term, existing, lister),
            );
        }
        for w in &pod.preferred_anti_affinity {
            add(
                &w.term,
                -(w.weight as i64),
                term_selects(&w.term, existing, lister),
            );
        }
        if self.args.hard_pod_affinity_weight > 0 {
            for t in &existing.required_affinity {
                add(
                    t,
                    self.args.hard_pod_affinity_weight as i64,
                    term_selects(t, pod, lister),
                );
            }
        }
        if !self.args.ignore_preferred_terms_of_existing_pods {
            for w in &existing.preferred_affinity {
                add(&w.term, w.weight as i64, term_selects(&w.term, pod, lister));
            }
            for w in &existing.preferred_anti_affinity {
                add(
                    &w.term,
                    -(w.weight as i64),
                    term_selects(&w.term, pod, lister),
                );
            }
        }
    }
}

impl PreScorePlugin for InterPodAffinity {
    fn name(&self) -> &'static str {
        NAME
    }
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        _: &[Arc<NodeInfo>],
        lister: &dyn SharedLister,
    ) -> Status {
        let own = !pod.preferred_affinity.is_empty() || !pod.preferred_anti_affinity.is_empty();
        let with_affinity = lister.nodes_with_affinity_pods();
        if !own
            && with_affinity
                .iter()
                .all(|n| n.pods_with_affinity.is_empty())
        {
            return Status::skip();
        }
        let nodes = if own {
            lister.node_infos()
        } else {
            with_affinity
        };
        let mut s = PreScoreState::default();
        for n in nodes {
            let pods = if own { &n.pods } else { &n.pods_with_affinity };
            for existing in pods {
                self.process_existing(&mut s.topology_score, pod, existing, n, lister);
            }
        }
        if s.topology_score.is_empty() {
            return Status::skip();
        }
        state.write(PRE_SCORE_KEY, s);
        Status::success()
    }
}

impl ScorePlugin for InterPodAffinity {
    fn name(&self) -> &'static str {
        NAME
    }
    fn score(&self, state: &CycleState, _: &PodInfo, node: &NodeInfo) -> (i64, Status) {
        let Some(s) = state.read::<PreScoreState>(PRE_SCORE_KEY) else {
            return (
                0,
                Status::error("reading PreScoreInterPodAffinity from cycle state"),
            );
        };
        let labels = node.labels();
        let score = s
            .topology_score
            .iter()
            .filter_map(|(k, vals)| labels.get(k).and_then(|v| vals.get(v)))
            .sum();
        (score, Status::success())
    }
    fn normalize(&self, _: &CycleState, _: &PodInfo, scores: &mut [NodeScore]) -> Status {
        let min = scores.iter().map(|s| s.score).min().unwrap_or(0);
        let max = scores.iter().map(|s| s.score).max().unwrap_or(0);
        let diff = max - min;
        for s in scores.iter_mut() {
            s.score = if diff > 0 {
                (MAX_NODE_SCORE as f64 * ((s.score - min) as f64 / diff as f64)) as i64
            } else {
                0
            };
        }
        Status::success()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::*;
    use k8s_openapi::api::core::v1::{Affinity, PodAffinity, PodAffinityTerm, PodAntiAffinity};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

    fn term(app: &str, key: &str) -> PodAffinityTerm {
        PodAffinityTerm {
            label_selector: Some(LabelSelector {
                match_labels: Some([("app".to_string(), app.to_string())].into()),
                ..Default::default()
            }),
            topology_key: key.into(),
            ..Default::default()
        }
    }

    fn with_affinity(
        name: &str,
        app: &str,
        aff: Option<PodAffinityTerm>,
        anti: Option<PodAffinityTerm>,
    ) -> PodInfo {
        let mut p = labeled_pod(name, &[("app", app)]);
        p.spec.as_mut().unwrap().affinity = Some(Affinity {
            pod_affinity: aff.map(|t| PodAffinity {
                required_during_scheduling_ignored_during_execution: Some(vec![t]),
                ..Default::default()
            }),
            pod_anti_affinity: anti.map(|t| PodAntiAffinity {
                required_during_scheduling_ignored_during_execution: Some(vec![t]),
                ..Default::default()
            }),
            ..Default::default()
        });
        PodInfo::new(Arc::new(p))
    }

    fn cluster() -> (NodeInfo, NodeInfo, NodeInfo) {
        let mut a = NodeInfo::new(Arc::new(labeled_node("a", &[("zone", "z1")])));
        let b = NodeInfo::new(Arc::new(labeled_node("b", &[("zone", "z1")])));
        let c = NodeInfo::new(Arc::new(labeled_node("c", &[("zone", "z2")])));
        a.add_pod(Arc::new(PodInfo::new(Arc::new(labeled_pod(
            "db",
            &[("app", "db")],
        )))));
        (a, b, c)
    }

    fn run(pod: &PodInfo, nodes: &[NodeInfo]) -> Vec<Status> {
        let pl = InterPodAffinity::new(InterPodAffinityArgs::default()).unwrap();
        let lister = TestLister::new(nodes.to_vec());
        let mut st = CycleState::new();
        let (_, s) = pl.pre_filter(&mut st, pod, &lister);
        if s.is_skip() {
            return nodes.iter().map(|_| Status::success()).collect();
        }
        nodes.iter().map(|n| pl.filter(&st, pod, n)).collect()
    }

    #[test]
    fn required_affinity_follows_the_zone() {
        let (a, b, c) = cluster();
        let p = with_affinity("web", "web", Some(term("db", "zone")), None);
        let r = run(&p, &[a, b, c]);
        assert!(r[0].is_success() && r[1].is_success());
        assert_eq!(
            (r[2].code, r[2].message().as_str()),
            (Code::UnschedulableAndUnresolvable, ERR_AFFINITY)
        );
    }

    #[test]
    fn required_anti_affinity_both_ways() {
        let (a, b, c) = cluster();
        let p = with_affinity("web", "web", None, Some(term("db", "zone")));
        let r = run(&p, &[a.clone(), b.clone(), c.clone()]);
        assert_eq!(r[0].message(), ERR_ANTI_AFFINITY);
        assert_eq!(r[1].code, Code::Unschedulable);
        assert!(r[2].is_success());
        // An existing pod that repels app=web.
        let mut c2 = c.clone();
        c2.add_pod(Arc::new(with_affinity(
            "guard",
            "guard",
            None,
            Some(term("web", "zone")),
        )));
        let plain = PodInfo::new(Arc::new(labeled_pod("w2", &[("app", "web")])));
        let r = run(&plain, &[a, b, c2]);
        assert!(r[0].is_success());
        assert_eq!(r[2].message(), ERR_EXISTING_ANTI_AFFINITY);
    }

    #[test]
    fn self_affinity_lets_the_first_pod_in() {
        let (a, b, c) = cluster();
        let p = with_affinity("web", "web", Some(term("web", "zone")), None);
        let r = run(&p, &[a, b, c]);
        assert!(r.iter().all(|s| s.is_success()));
    }
}
