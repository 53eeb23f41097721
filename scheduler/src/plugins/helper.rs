//! Helpers the plugins share (mirrors upstream `plugins/helper` and
//! `component-helpers/scheduling/corev1`): node selector and node affinity matching,
//! toleration matching, and the default score normalisation.

use crate::framework::{MAX_NODE_SCORE, NodeScore};
use k8s_openapi::api::core::v1::{
    Node, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Pod, Taint, Toleration,
};
use std::collections::BTreeMap;

/// Scales scores so the highest is `MAX_NODE_SCORE` (and flips them when `reverse`), as
/// upstream `DefaultNormalizeScore`.
pub fn default_normalize_score(max_priority: i64, reverse: bool, scores: &mut [NodeScore]) {
    let max = scores.iter().map(|s| s.score).max().unwrap_or(0);
    if max == 0 {
        if reverse {
            for s in scores.iter_mut() {
                s.score = max_priority;
            }
        }
        return;
    }
    for s in scores.iter_mut() {
        s.score = max_priority * s.score / max;
        if reverse {
            s.score = max_priority - s.score;
        }
    }
}

pub const MAX_SCORE: i64 = MAX_NODE_SCORE;

fn requirement_matches(r: &NodeSelectorRequirement, value: Option<&String>) -> bool {
    let values = r.values.as_deref().unwrap_or(&[]);
    match r.operator.as_str() {
        "In" => value.is_some_and(|v| values.contains(v)),
        "NotIn" => value.is_none_or(|v| !values.contains(v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => {
            let (Some(v), Some(want)) = (value, values.first()) else {
                return false;
            };
            let (Ok(v), Ok(w)) = (v.parse::<i64>(), want.parse::<i64>()) else {
                return false;
            };
            if r.operator == "Gt" { v > w } else { v < w }
        }
        _ => false,
    }
}

/// One node selector term: all expressions and fields must match; an empty term matches
/// nothing.
pub fn term_matches(t: &NodeSelectorTerm, labels: &BTreeMap<String, String>, name: &str) -> bool {
    let exprs = t.match_expressions.as_deref().unwrap_or(&[]);
    let fields = t.match_fields.as_deref().unwrap_or(&[]);
    if exprs.is_empty() && fields.is_empty() {
        return false;
    }
    let name = name.to_string();
    exprs
        .iter()
        .all(|r| requirement_matches(r, labels.get(&r.key)))
        && fields
            .iter()
            .all(|r| r.key == "metadata.name" && requirement_matches(r, Some(&name)))
}

/// Terms are ORed.
pub fn node_selector_matches(
    sel: &NodeSelector,
    labels: &BTreeMap<String, String>,
    name: &str,
) -> bool {
    sel.node_selector_terms
        .iter()
        .any(|t| term_matches(t, labels, name))
}

/// Whether the pod's `nodeSelector` and required node affinity accept the node (upstream
/// `GetRequiredNodeAffinity(pod).Match(node)`).
pub fn pod_matches_node_selector_and_affinity(
    pod: &Pod,
    labels: &BTreeMap<String, String>,
    name: &str,
) -> bool {
    let Some(spec) = pod.spec.as_ref() else {
        return true;
    };
    if let Some(sel) = &spec.node_selector
        && sel.iter().any(|(k, v)| labels.get(k) != Some(v))
    {
        return false;
    }
    match spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|na| {
            na.required_during_scheduling_ignored_during_execution
                .as_ref()
        }) {
        Some(sel) => node_selector_matches(sel, labels, name),
        None => true,
    }
}

pub fn node_labels(node: &Node) -> &BTreeMap<String, String> {
    static EMPTY: BTreeMap<String, String> = BTreeMap::new();
    node.metadata.labels.as_ref().unwrap_or(&EMPTY)
}

/// Upstream `Toleration.ToleratesTaint`.
pub fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    if let Some(e) = t.effect.as_deref().filter(|e| !e.is_empty())
        && e != taint.effect
    {
        return false;
    }
    if let Some(k) = t.key.as_deref().filter(|k| !k.is_empty())
        && k != taint.key
    {
        return false;
    }
    match t.operator.as_deref().unwrap_or("Equal") {
        "Exists" => true,
        "" | "Equal" => t.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or(""),
        _ => false,
    }
}

/// The first taint (with an effect `filter` accepts) no toleration tolerates.
pub fn find_untolerated<'a>(
    taints: &'a [Taint],
    tolerations: &[Toleration],
    filter: impl Fn(&Taint) -> bool,
) -> Option<&'a Taint> {
    taints
        .iter()
        .filter(|t| filter(t))
        .find(|t| !tolerations.iter().any(|tol| tolerates(tol, t)))
}

pub fn pod_tolerations(pod: &Pod) -> &[Toleration] {
    pod.spec
        .as_ref()
        .and_then(|s| s.tolerations.as_deref())
        .unwrap_or(&[])
}
