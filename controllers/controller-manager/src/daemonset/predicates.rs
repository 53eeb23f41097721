//! Which nodes run a daemon pod (mirrors upstream `NodeShouldRunDaemonPod` in
//! `pkg/controller/daemon/daemon_controller.go` and `pkg/controller/daemon/util`): nodeSelector and
//! required node affinity, taints against the pod's tolerations plus those added to every daemon
//! pod, and the per-node affinity (`matchFields metadata.name`) given to created pods.

use k8s_openapi::api::core::v1::{
    Affinity, Node, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Pod,
    PodSpec, Taint, Toleration,
};
use std::collections::BTreeMap;

/// The tolerations upstream adds to daemon pods (`AddOrUpdateDaemonPodTolerations`).
pub fn add_daemon_tolerations(spec: &mut PodSpec) {
    let mut add = vec![
        ("node.kubernetes.io/not-ready", "NoExecute"),
        ("node.kubernetes.io/unreachable", "NoExecute"),
        ("node.kubernetes.io/disk-pressure", "NoSchedule"),
        ("node.kubernetes.io/memory-pressure", "NoSchedule"),
        ("node.kubernetes.io/pid-pressure", "NoSchedule"),
        ("node.kubernetes.io/unschedulable", "NoSchedule"),
    ];
    if spec.host_network == Some(true) {
        add.push(("node.kubernetes.io/network-unavailable", "NoSchedule"));
    }
    let tols = spec.tolerations.get_or_insert_with(Vec::new);
    for (key, effect) in add {
        let t = Toleration {
            key: Some(key.into()),
            operator: Some("Exists".into()),
            effect: Some(effect.into()),
            ..Default::default()
        };
        // Replace a toleration with the same key and effect (as upstream's AddOrUpdate).
        tols.retain(|x| !(x.key.as_deref() == Some(key) && x.effect.as_deref() == Some(effect)));
        tols.push(t);
    }
}

fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    if let Some(e) = t.effect.as_deref().filter(|e| !e.is_empty())
        && e != taint.effect
    {
        return false;
    }
    let key = t.key.as_deref().unwrap_or("");
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match t.operator.as_deref().unwrap_or("Equal") {
        "Exists" => true,
        "Equal" => {
            !key.is_empty()
                && t.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or("")
        }
        _ => false,
    }
}

fn requirement_matches(r: &NodeSelectorRequirement, value: Option<&String>) -> bool {
    let vals = r.values.as_deref().unwrap_or(&[]);
    let num = |s: &str| s.parse::<i64>().ok();
    match r.operator.as_str() {
        "In" => value.is_some_and(|v| vals.contains(v)),
        "NotIn" => value.is_none_or(|v| !vals.contains(v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => {
            let (Some(v), Some(bound)) = (
                value.and_then(|v| num(v)),
                vals.first().and_then(|b| num(b)),
            ) else {
                return false;
            };
            if r.operator == "Gt" {
                v > bound
            } else {
                v < bound
            }
        }
        _ => false,
    }
}

fn term_matches(term: &NodeSelectorTerm, node: &Node) -> bool {
    let exprs = term.match_expressions.as_deref().unwrap_or(&[]);
    let fields = term.match_fields.as_deref().unwrap_or(&[]);
    if exprs.is_empty() && fields.is_empty() {
        return false;
    }
    let empty = BTreeMap::new();
    let labels = node.metadata.labels.as_ref().unwrap_or(&empty);
    let name = node.metadata.name.clone();
    exprs
        .iter()
        .all(|r| requirement_matches(r, labels.get(&r.key)))
        && fields
            .iter()
            .all(|r| r.key == "metadata.name" && requirement_matches(r, name.as_ref()))
}

/// nodeSelector and required node affinity (upstream `nodeaffinity.GetRequiredNodeAffinity`).
pub fn node_matches(spec: &PodSpec, node: &Node) -> bool {
    if let Some(sel) = &spec.node_selector {
        let empty = BTreeMap::new();
        let labels = node.metadata.labels.as_ref().unwrap_or(&empty);
        if !sel.iter().all(|(k, v)| labels.get(k) == Some(v)) {
            return false;
        }
    }
    let required = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|n| {
            n.required_during_scheduling_ignored_during_execution
                .as_ref()
        });
    match required {
        None => true,
        Some(ns) => ns.node_selector_terms.iter().any(|t| term_matches(t, node)),
    }
}

/// (should run, should continue running) for a daemon pod spec (tolerations already added) on
/// the node: every NoSchedule/NoExecute taint must be tolerated to run, every NoExecute one to
/// keep running.
pub fn should_run(spec: &PodSpec, node: &Node) -> (bool, bool) {
    if !node_matches(spec, node) {
        return (false, false);
    }
    let tols = spec.tolerations.as_deref().unwrap_or(&[]);
    let taints = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_deref())
        .unwrap_or(&[]);
    let untolerated = |effect: &str| {
        taints
            .iter()
            .filter(|t| t.effect == effect)
            .any(|t| !tols.iter().any(|x| tolerates(x, t)))
    };
    let no_execute = untolerated("NoExecute");
    (!no_execute && !untolerated("NoSchedule"), !no_execute)
}

/// Requires scheduling onto exactly `node` (upstream `ReplaceDaemonSetPodNodeNameNodeAffinity`).
pub fn set_node_affinity(spec: &mut PodSpec, node: &str) {
    let term = NodeSelectorTerm {
        match_expressions: None,
        match_fields: Some(vec![NodeSelectorRequirement {
            key: "metadata.name".into(),
            operator: "In".into(),
            values: Some(vec![node.to_string()]),
        }]),
    };
    let aff = spec.affinity.get_or_insert_with(Affinity::default);
    let na = aff.node_affinity.get_or_insert_with(NodeAffinity::default);
    na.required_during_scheduling_ignored_during_execution = Some(NodeSelector {
        node_selector_terms: vec![term],
    });
}

/// The node a daemon pod is for: its nodeName, else the node its affinity pins it to.
pub fn target_node(pod: &Pod) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    if let Some(n) = spec.node_name.as_ref().filter(|n| !n.is_empty()) {
        return Some(n.clone());
    }
    let terms = &spec
        .affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?
        .node_selector_terms;
    terms.iter().find_map(|t| {
        t.match_fields.as_ref()?.iter().find_map(|r| {
            let v = r.values.as_ref()?;
            (r.key == "metadata.name" && r.operator == "In" && v.len() == 1).then(|| v[0].clone())
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::NodeSpec;

    fn node(name: &str, taints: Vec<(&str, &str)>) -> Node {
        let mut n = Node::default();
        n.metadata.name = Some(name.into());
        n.metadata.labels = Some([("zone".to_string(), "a".to_string())].into());
        n.spec = Some(NodeSpec {
            taints: Some(
                taints
                    .into_iter()
                    .map(|(k, e)| Taint {
                        key: k.into(),
                        effect: e.into(),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        });
        n
    }

    #[test]
    fn taints_and_tolerations() {
        let mut spec = PodSpec::default();
        add_daemon_tolerations(&mut spec);
        assert_eq!(should_run(&spec, &node("a", vec![])), (true, true));
        assert_eq!(
            should_run(
                &spec,
                &node("a", vec![("node.kubernetes.io/not-ready", "NoExecute")])
            ),
            (true, true)
        );
        assert_eq!(
            should_run(
                &spec,
                &node(
                    "a",
                    vec![("node.kubernetes.io/unschedulable", "NoSchedule")]
                )
            ),
            (true, true)
        );
        assert_eq!(
            should_run(&spec, &node("a", vec![("dedicated", "NoSchedule")])),
            (false, true)
        );
        assert_eq!(
            should_run(&spec, &node("a", vec![("dedicated", "NoExecute")])),
            (false, false)
        );
        assert_eq!(
            should_run(
                &spec,
                &node(
                    "a",
                    vec![("node.kubernetes.io/network-unavailable", "NoSchedule")]
                )
            ),
            (false, true)
        );
        spec.host_network = Some(true);
        add_daemon_tolerations(&mut spec);
        assert_eq!(
            should_run(
                &spec,
                &node(
                    "a",
                    vec![("node.kubernetes.io/network-unavailable", "NoSchedule")]
                )
            ),
            (true, true)
        );
    }

    #[test]
    fn selectors_and_affinity() {
        let mut spec = PodSpec {
            node_selector: Some([("zone".to_string(), "b".to_string())].into()),
            ..Default::default()
        };
        assert!(!node_matches(&spec, &node("a", vec![])));
        spec.node_selector = None;
        set_node_affinity(&mut spec, "a");
        assert!(node_matches(&spec, &node("a", vec![])));
        assert!(!node_matches(&spec, &node("b", vec![])));
        let pod = Pod {
            spec: Some(spec),
            ..Default::default()
        };
        assert_eq!(target_node(&pod).as_deref(), Some("a"));
    }
}
