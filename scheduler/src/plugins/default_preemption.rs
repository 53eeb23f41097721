//! DefaultPreemption (PostFilter): when no node fits, find nodes where evicting pods of lower
//! priority makes room, fewest PDB violations first, delete the chosen victims and nominate
//! the node (mirrors upstream `plugins/defaultpreemption/default_preemption.go` and
//! `framework/preemption/preemption.go`).

use crate::framework::runtime::Framework;
use crate::framework::*;
use apiserver_apimachinery::selector::LabelSelector;
use async_trait::async_trait;
use component_base::Informer;
use component_base::events::Recorder;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, DeleteParams, Preconditions};
use rand::Rng;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;

pub const NAME: &str = "DefaultPreemption";
pub const NOT_HELPFUL: &str = "Preemption is not helpful for scheduling";
pub const NO_VICTIMS: &str = "No preemption victims found for incoming pod";

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PreemptionArgs {
    #[serde(default = "ten")]
    pub min_candidate_nodes_percentage: i64,
    #[serde(default = "hundred")]
    pub min_candidate_nodes_absolute: i64,
}

fn ten() -> i64 {
    10
}
fn hundred() -> i64 {
    100
}

impl Default for PreemptionArgs {
    fn default() -> Self {
        PreemptionArgs {
            min_candidate_nodes_percentage: 10,
            min_candidate_nodes_absolute: 100,
        }
    }
}

pub struct DefaultPreemption {
    pub args: PreemptionArgs,
    pub client: Option<kube::Client>,
    pub pdbs: Option<Arc<Informer<PodDisruptionBudget>>>,
    pub recorder: Option<Recorder>,
}

/// A node where the preemptor fits once `victims` are gone.
#[derive(Clone, Debug)]
pub struct Candidate {
    pub node: String,
    pub victims: Vec<Arc<PodInfo>>,
    pub pdb_violations: usize,
}

fn start_time(p: &PodInfo) -> Option<jiff::Timestamp> {
    p.pod
        .status
        .as_ref()
        .and_then(|s| s.start_time.as_ref())
        .map(|t| t.0)
}

/// Higher priority first, then the pod that started earlier (upstream `MoreImportantPod`).
pub fn more_important(a: &PodInfo, b: &PodInfo) -> bool {
    if a.priority != b.priority {
        return a.priority > b.priority;
    }
    match (start_time(a), start_time(b)) {
        (Some(x), Some(y)) => x < y,
        (Some(_), None) => true,
        _ => false,
    }
}

/// Splits victims (already sorted) into those whose eviction would violate a PDB and the rest.
pub fn split_by_pdb(
    victims: &[Arc<PodInfo>],
    pdbs: &[Arc<PodDisruptionBudget>],
) -> (Vec<Arc<PodInfo>>, Vec<Arc<PodInfo>>) {
    let mut allowed: Vec<i64> = pdbs
        .iter()
        .map(|p| {
            p.status
                .as_ref()
                .and_then(|s| s.disruptions_allowed)
                .unwrap_or(0) as i64
        })
        .collect();
    let (mut violating, mut ok) = (vec![], vec![]);
    for v in victims {
        let mut violated = false;
        if !v.labels().is_empty() {
            for (i, pdb) in pdbs.iter().enumerate() {
                if pdb.metadata.namespace.as_deref() != Some(v.namespace.as_str()) {
                    continue;
                }
                let Some(sel) = pdb.spec.as_ref().and_then(|s| s.selector.as_ref()) else {
                    continue;
                };
                let Ok(sel) = LabelSelector::from_meta(sel) else {
                    continue;
                };
                if sel.is_empty() || !sel.matches(v.labels()) {
                    continue;
                }
                if pdb
                    .status
                    .as_ref()
                    .and_then(|s| s.disrupted_pods.as_ref())
                    .is_some_and(|d| d.contains_key(&v.name))
                {
                    continue;
                }
                allowed[i] -= 1;
                if allowed[i] < 0 {
                    violated = true;
                }
            }
        }
        if violated {
            violating.push(v.clone());
        } else {
            ok.push(v.clone());
        }
    }
    (violating, ok)
}

/// The fewest victims to evict from `node` so `pod` fits (upstream `SelectVictimsOnNode`).
pub fn select_victims(
    fw: &Framework,
    state: &mut CycleState,
    pod: &PodInfo,
    node: &mut NodeInfo,
    pdbs: &[Arc<PodDisruptionBudget>],
    lister: &dyn SharedLister,
) -> Result<Candidate, Status> {
    let mut potential: Vec<Arc<PodInfo>> = node
        .pods
        .iter()
        .filter(|p| p.priority < pod.priority)
        .cloned()
        .collect();
    if potential.is_empty() {
        return Err(Status::unresolvable(NO_VICTIMS));
    }
    for v in &potential {
        node.remove_pod(&v.key);
        let st = fw.run_pre_filter_remove_pod(state, pod, v, node, lister);
        if !st.is_success() {
            return Err(st);
        }
    }
    let st = fw.run_filter_with_nominated(state, pod, node, lister);
    if !st.is_success() {
        return Err(st);
    }
    potential.sort_by(|a, b| {
        if more_important(a, b) {
            std::cmp::Ordering::Less
        } else if more_important(b, a) {
            std::cmp::Ordering::Greater
        } else {
            std::cmp::Ordering::Equal
        }
    });
    let (violating, non_violating) = split_by_pdb(&potential, pdbs);
    let mut victims = vec![];
    let mut violations = 0;
    for (group, is_violating) in [(violating, true), (non_violating, false)] {
        for p in group {
            node.add_pod(p.clone());
            let st = fw.run_pre_filter_add_pod(state, pod, &p, node, lister);
            if !st.is_success() {
                return Err(st);
            }
            if !fw
                .run_filter_with_nominated(state, pod, node, lister)
                .is_success()
            {
                node.remove_pod(&p.key);
                let st = fw.run_pre_filter_remove_pod(state, pod, &p, node, lister);
                if !st.is_success() {
                    return Err(st);
                }
                if is_violating {
                    violations += 1;
                }
                victims.push(p);
            }
        }
    }
    victims.sort_by_key(|v| std::cmp::Reverse(v.priority));
    Ok(Candidate {
        node: node.name.clone(),
        victims,
        pdb_violations: violations,
    })
}

/// Upstream `pickOneNodeForPreemption`: fewest PDB violations, lowest highest-victim priority,
/// lowest priority sum, fewest victims, latest start of the highest-priority victims.
pub fn pick_one(cands: &[Candidate]) -> Option<&Candidate> {
    let mut best: Vec<&Candidate> = cands.iter().collect();
    let keep_min = |best: &mut Vec<&Candidate>, f: &dyn Fn(&Candidate) -> i64| {
        if let Some(m) = best.iter().map(|c| f(c)).min() {
            best.retain(|c| f(c) == m);
        }
    };
    keep_min(&mut best, &|c| c.pdb_violations as i64);
    keep_min(&mut best, &|c| {
        c.victims
            .first()
            .map(|v| v.priority as i64)
            .unwrap_or(i64::MIN)
    });
    keep_min(&mut best, &|c| {
        c.victims
            .iter()
            .map(|v| v.priority as i64 + i32::MAX as i64 + 1)
            .sum()
    });
    keep_min(&mut best, &|c| c.victims.len() as i64);
    keep_min(&mut best, &|c| {
        let top = c.victims.first().map(|v| v.priority);
        let earliest = c
            .victims
            .iter()
            .filter(|v| Some(v.priority) == top)
            .filter_map(|v| start_time(v))
            .min();
        earliest.map(|t| -t.as_millisecond()).unwrap_or(0)
    });
    best.first().copied()
}

impl DefaultPreemption {
    fn not_helpful(
        num_all: usize,
        statuses: HashMap<String, Status>,
    ) -> (Option<PostFilterResult>, Status) {
        let fe = FitError {
            num_all_nodes: num_all,
            node_statuses: statuses,
            absent_status: Some(Status::unresolvable(NOT_HELPFUL)),
            ..Default::default()
        };
        (
            Some(PostFilterResult {
                nominated_node_name: Some(String::new()),
            }),
            Status::unschedulable(format!("preemption: {fe}")),
        )
    }

    async fn evict(&self, pod: &PodInfo, victim: &PodInfo, node: &str) -> Result<(), kube::Error> {
        let Some(client) = self.client.clone() else {
            return Ok(());
        };
        let api: Api<Pod> = Api::namespaced(client, &victim.namespace);
        let scheduler = pod
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.scheduler_name.clone())
            .unwrap_or_else(|| "default-scheduler".into());
        let condition = serde_json::json!({"status": {"conditions": [{
            "type": "DisruptionTarget",
            "status": "True",
            "reason": "PreemptionByScheduler",
            "message": format!("{scheduler}: preempting to accommodate a higher priority pod"),
            "lastTransitionTime": jiff::Timestamp::now().round(jiff::Unit::Second).unwrap_or(jiff::Timestamp::now()).to_string(),
        }]}});
        match api
            .patch_status(
                &victim.name,
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Strategic(condition),
            )
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => return Ok(()),
            Err(e) => return Err(e),
        }
        let dp = DeleteParams {
            preconditions: Some(Preconditions {
                uid: Some(victim.uid.clone()),
                resource_version: None,
            }),
            ..Default::default()
        };
        match api.delete(&victim.name, &dp).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => return Ok(()),
            Err(e) => return Err(e),
        }
        if let Some(r) = &self.recorder {
            r.normal(
                &*victim.pod,
                "Preempted",
                "Preempting",
                format!("Preempted by pod {} on node {node}", pod.uid),
            );
        }
        Ok(())
    }
}

impl Plugin for DefaultPreemption {
    fn name(&self) -> &'static str {
        NAME
    }
    fn post_filter(self: Arc<Self>) -> Option<Arc<dyn PostFilterPlugin>> {
        Some(self)
    }
}

#[async_trait]
impl PostFilterPlugin for DefaultPreemption {
    fn name(&self) -> &'static str {
        NAME
    }
    async fn post_filter(&self, ctx: PostFilterContext<'_>) -> (Option<PostFilterResult>, Status) {
        let pod = ctx.pod;
        let spec = pod.pod.spec.as_ref();
        if spec.and_then(|s| s.preemption_policy.as_deref()) == Some("Never") {
            return (
                None,
                Status::unschedulable("preemption: not eligible due to preemptionPolicy=Never."),
            );
        }
        let all = ctx.lister.node_infos();
        if let Some(nom) = pod
            .pod
            .status
            .as_ref()
            .and_then(|s| s.nominated_node_name.as_deref())
            .filter(|n| !n.is_empty())
        {
            let unresolvable = ctx
                .node_statuses
                .get(nom)
                .is_some_and(|s| s.code == Code::UnschedulableAndUnresolvable);
            if !unresolvable
                && let Some(n) = ctx.lister.get(nom)
                && n.pods
                    .iter()
                    .any(|p| p.is_terminating() && p.priority < pod.priority)
            {
                return (
                    None,
                    Status::unschedulable(
                        "preemption: not eligible due to a terminating pod on the nominated node.",
                    ),
                );
            }
        }
        let absent_unschedulable = ctx
            .absent_status
            .is_some_and(|s| s.code == Code::Unschedulable);
        let potential: Vec<&Arc<NodeInfo>> = all
            .iter()
            .filter(|n| match ctx.node_statuses.get(&n.name) {
                Some(s) => s.code == Code::Unschedulable,
                None => absent_unschedulable,
            })
            .collect();
        if potential.is_empty() {
            return Self::not_helpful(all.len(), HashMap::new());
        }
        let pdbs: Vec<Arc<PodDisruptionBudget>> =
            self.pdbs.as_ref().map(|i| i.list()).unwrap_or_default();
        let n = potential.len() as i64;
        let want = (n * self.args.min_candidate_nodes_percentage / 100)
            .max(self.args.min_candidate_nodes_absolute)
            .min(n) as usize;
        let offset = rand::rng().random_range(0..potential.len());
        let mut candidates = Vec::new();
        let mut statuses = HashMap::new();
        for i in 0..potential.len() {
            if candidates.len() >= want {
                break;
            }
            let node = potential[(offset + i) % potential.len()];
            let mut ni = (**node).clone();
            let mut st = ctx.state.clone();
            match select_victims(ctx.framework, &mut st, pod, &mut ni, &pdbs, ctx.lister) {
                Ok(c) => candidates.push(c),
                Err(s) => {
                    statuses.insert(node.name.clone(), s);
                }
            }
        }
        let Some(best) = pick_one(&candidates).cloned() else {
            return Self::not_helpful(all.len(), statuses);
        };
        for v in &best.victims {
            if let Err(e) = self.evict(pod, v, &best.node).await {
                return (
                    None,
                    Status::error(format!("preemption: deleting victim {}: {e}", v.key)),
                );
            }
        }
        for other in ctx.framework.nominator.pods_on(&best.node) {
            if other.priority < pod.priority {
                ctx.framework.nominator.set(&other, None);
            }
        }
        (
            Some(PostFilterResult {
                nominated_node_name: Some(best.node.clone()),
            }),
            Status::success(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::*;

    fn prio_pod(name: &str, prio: i32, cpu: &str) -> Arc<PodInfo> {
        let mut p = pod_req(name, cpu, "0");
        p.spec.as_mut().unwrap().priority = Some(prio);
        p.metadata.labels = Some([("app".to_string(), name.to_string())].into());
        Arc::new(PodInfo::new(Arc::new(p)))
    }

    fn framework() -> Framework {
        let mut fw = Framework::empty("default-scheduler");
        let fit = super::super::node_resources_fit::Fit::new(Default::default()).unwrap();
        fw.add_multi_point(Arc::new(fit), 1);
        fw
    }

    #[test]
    fn evicts_only_lower_priority_pods_and_reprieves_what_it_can() {
        let fw = framework();
        let mut ni = NodeInfo::new(Arc::new(node_with("a", "4", "8Gi", "110")));
        ni.add_pod(prio_pod("low1", 1, "1"));
        ni.add_pod(prio_pod("low2", 2, "2"));
        ni.add_pod(prio_pod("high", 100, "1"));
        let lister = TestLister::new(vec![ni.clone()]);
        let pre = prio_pod("pre", 50, "2");
        let mut st = CycleState::new();
        let c = select_victims(&fw, &mut st, &pre, &mut ni, &[], &lister).unwrap();
        // Both low pods go; low2 (more important) is reprieved first but does not fit back;
        // low1 then does.
        let names: Vec<&str> = c.victims.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, vec!["low2"]);
        let mut ni2 = NodeInfo::new(Arc::new(node_with("b", "4", "8Gi", "110")));
        ni2.add_pod(prio_pod("top", 100, "4"));
        let err =
            select_victims(&fw, &mut CycleState::new(), &pre, &mut ni2, &[], &lister).unwrap_err();
        assert_eq!(err.message(), NO_VICTIMS);
    }

    #[test]
    fn pdb_violations_are_avoided_and_counted() {
        let pdb: PodDisruptionBudget = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "default"},
            "spec": {"selector": {"matchLabels": {"app": "low2"}}},
            "status": {"disruptionsAllowed": 0, "currentHealthy": 1, "desiredHealthy": 1, "expectedPods": 1}
        }))
        .unwrap();
        let victims = vec![prio_pod("low2", 2, "1"), prio_pod("low1", 1, "1")];
        let (violating, ok) = split_by_pdb(&victims, &[Arc::new(pdb)]);
        assert_eq!(violating[0].name, "low2");
        assert_eq!(ok[0].name, "low1");
        let a = Candidate {
            node: "a".into(),
            victims: vec![prio_pod("x", 1, "1")],
            pdb_violations: 1,
        };
        let b = Candidate {
            node: "b".into(),
            victims: vec![prio_pod("y", 5, "1")],
            pdb_violations: 0,
        };
        let c = Candidate {
            node: "c".into(),
            victims: vec![prio_pod("z", 3, "1")],
            pdb_violations: 0,
        };
        assert_eq!(pick_one(&[a, b, c]).unwrap().node, "c");
    }

    #[test]
    fn not_helpful_message() {
        let (r, st) = DefaultPreemption::not_helpful(3, HashMap::new());
        assert_eq!(r.unwrap().nominated_node_name.as_deref(), Some(""));
        assert_eq!(
            st.message(),
            "preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
        );
    }
}
