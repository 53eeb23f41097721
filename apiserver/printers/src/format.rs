//! Shared cell formatting: label maps and selectors (labels.FormatLabels,
//! metav1.FormatLabelSelector, labels.Selector.String()), container layout, access modes,
//! int-or-string values and "+ N more..." lists, as printers.go and its helpers print them.

use std::collections::{BTreeMap, BTreeSet};

use apiserver_apimachinery::names::{is_label_value, is_qualified_name};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Container;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{Value, json};

use crate::duration::translate_timestamp_since;

pub(crate) fn name(meta: &ObjectMeta) -> Value {
    json!(meta.name.clone().unwrap_or_default())
}

pub(crate) fn age(meta: &ObjectMeta, now: Timestamp) -> Value {
    json!(translate_timestamp_since(
        meta.creation_timestamp.as_ref(),
        now
    ))
}

pub(crate) fn s(v: Option<&String>) -> String {
    v.cloned().unwrap_or_default()
}

pub(crate) fn annotation<'a>(meta: &'a ObjectMeta, key: &str) -> Option<&'a String> {
    meta.annotations.as_ref().and_then(|a| a.get(key))
}

/// `labels.FormatLabels`: sorted `k=v` pairs joined by commas, `<none>` when empty.
pub fn format_labels(labels: Option<&BTreeMap<String, String>>) -> String {
    let out = labels
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    if out.is_empty() {
        "<none>".to_string()
    } else {
        out
    }
}

/// `metav1.LabelSelectorAsSelector(sel).String()`; `Err` when the selector is invalid.
/// A nil selector selects nothing and an empty one everything; both print as "".
pub(crate) fn selector_string(sel: Option<&LabelSelector>) -> Result<String, String> {
    let Some(sel) = sel else {
        return Ok(String::new());
    };
    let mut reqs: Vec<(String, String)> = Vec::new();
    for (k, v) in sel.match_labels.iter().flatten() {
        validate(k, std::slice::from_ref(v))?;
        reqs.push((k.clone(), format!("{k}={v}")));
    }
    for e in sel.match_expressions.iter().flatten() {
        let values = e.values.clone().unwrap_or_default();
        let (op, set) = match e.operator.as_str() {
            "In" => (" in ", true),
            "NotIn" => (" notin ", true),
            "Exists" => ("", false),
            "DoesNotExist" => ("", false),
            other => return Err(format!("{other:?} is not a valid label selector operator")),
        };
        if set && values.is_empty() {
            return Err("for 'in', 'notin' operators, values set can't be empty".into());
        }
        if !set && !values.is_empty() {
            return Err("values set must be empty for exists and does not exist".into());
        }
        validate(&e.key, &values)?;
        let text = if e.operator == "DoesNotExist" {
            format!("!{}", e.key)
        } else if !set {
            e.key.clone()
        } else {
            let mut sorted = values.clone();
            sorted.sort();
            format!("{}{op}({})", e.key, sorted.join(","))
        };
        reqs.push((e.key.clone(), text));
    }
    // labels.Selector.Add sorts requirements by key.
    reqs.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(reqs
        .into_iter()
        .map(|(_, t)| t)
        .collect::<Vec<_>>()
        .join(","))
}

fn validate(key: &str, values: &[String]) -> Result<(), String> {
    let errs = is_qualified_name(key);
    if !errs.is_empty() {
        return Err(errs.join("; "));
    }
    for v in values {
        let errs = is_label_value(v);
        if !errs.is_empty() {
            return Err(errs.join("; "));
        }
    }
    Ok(())
}

/// `metav1.FormatLabelSelector`: `<error>` for an invalid selector, `<none>` for an empty one.
pub fn format_label_selector(sel: Option<&LabelSelector>) -> String {
    match selector_string(sel) {
        Err(_) => "<error>".to_string(),
        Ok(s) if s.is_empty() => "<none>".to_string(),
        Ok(s) => s,
    }
}

/// The Go (gogo-protobuf generated) `(*metav1.LabelSelector).String()` debug form.
pub(crate) fn go_label_selector_debug(sel: &LabelSelector) -> String {
    let labels: String = sel
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}: {v},"))
        .collect();
    let exprs: String = sel
        .match_expressions
        .iter()
        .flatten()
        .map(|e| {
            format!(
                "LabelSelectorRequirement{{Key:{},Operator:{},Values:[{}],}},",
                e.key,
                e.operator,
                e.values.clone().unwrap_or_default().join(" ")
            )
        })
        .collect();
    format!(
        "&LabelSelector{{MatchLabels:map[string]string{{{labels}}},MatchExpressions:[]LabelSelectorRequirement{{{exprs}}},}}"
    )
}

/// `layoutContainerCells`: container names and images joined by commas.
pub(crate) fn layout_containers(containers: &[Container]) -> (String, String) {
    let names: Vec<&str> = containers.iter().map(|c| c.name.as_str()).collect();
    let images: Vec<&str> = containers
        .iter()
        .map(|c| c.image.as_deref().unwrap_or(""))
        .collect();
    (names.join(","), images.join(","))
}

/// `helper.GetAccessModesAsString`: RWO, ROX, RWX, RWOP in that order, deduplicated.
pub(crate) fn access_modes(modes: Option<&Vec<String>>) -> String {
    let modes = modes.map(Vec::as_slice).unwrap_or_default();
    [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ]
    .iter()
    .filter(|(mode, _)| modes.iter().any(|m| m == mode))
    .map(|(_, short)| *short)
    .collect::<Vec<_>>()
    .join(",")
}

/// `intstr.IntOrString.String()`.
pub(crate) fn int_or_string(v: &IntOrString) -> String {
    match v {
        IntOrString::Int(i) => i.to_string(),
        IntOrString::String(s) => s.clone(),
    }
}

/// `printBoolPtr`: True/False, `<unset>` for nil.
pub(crate) fn bool_ptr(v: Option<bool>) -> String {
    match v {
        Some(true) => "True".to_string(),
        Some(false) => "False".to_string(),
        None => "<unset>".to_string(),
    }
}

/// `listWithMoreString`: the joined list, "+ N more..." past `max`, `<unset>` when empty.
pub(crate) fn list_with_more(list: &[String], more: bool, count: usize, max: usize) -> String {
    let ret = list.join(",");
    if more {
        return format!("{ret} + {} more...", count.saturating_sub(max));
    }
    if ret.is_empty() {
        "<unset>".to_string()
    } else {
        ret
    }
}

/// The first three items and whether more exist (the loops of formatDiscovery*).
pub(crate) fn first_three(items: impl Iterator<Item = String>) -> String {
    const MAX: usize = 3;
    let mut list = Vec::new();
    let mut more = false;
    let mut count = 0;
    for item in items {
        if list.len() < MAX {
            list.push(item);
        } else if list.len() == MAX {
            more = true;
        }
        count += 1;
    }
    list_with_more(&list, more, count, MAX)
}

/// Load-balancer ingress points (IP, else hostname) as a sorted, deduplicated list
/// (`loadBalancerStatusStringer` with wide output, which the apiserver always uses).
pub(crate) fn lb_ingress<'a>(
    points: impl Iterator<Item = (Option<&'a String>, Option<&'a String>)>,
) -> String {
    let set: BTreeSet<&str> = points
        .filter_map(|(ip, host)| {
            let ip = ip.map(String::as_str).unwrap_or("");
            let host = host.map(String::as_str).unwrap_or("");
            if !ip.is_empty() {
                Some(ip)
            } else if !host.is_empty() {
                Some(host)
            } else {
                None
            }
        })
        .collect();
    set.into_iter().collect::<Vec<_>>().join(",")
}

/// `net.JoinHostPort`.
pub(crate) fn join_host_port(host: &str, port: i32) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// `metav1.GetControllerOf`: the owner reference marked as controller.
pub(crate) fn controller_of(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references
        .iter()
        .flatten()
        .find(|r| r.controller == Some(true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn sel(labels: &[(&str, &str)], exprs: &[(&str, &str, &[&str])]) -> LabelSelector {
        LabelSelector {
            match_labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            match_expressions: Some(
                exprs
                    .iter()
                    .map(|(k, op, vs)| LabelSelectorRequirement {
                        key: k.to_string(),
                        operator: op.to_string(),
                        values: Some(vs.iter().map(|v| v.to_string()).collect()),
                    })
                    .collect(),
            ),
        }
    }

    #[test]
    fn selectors_print_sorted_by_key() {
        let s = sel(
            &[("tier", "web"), ("app", "nginx")],
            &[
                ("env", "In", &["prod", "dev"]),
                ("zone", "DoesNotExist", &[]),
                ("canary", "Exists", &[]),
            ],
        );
        assert_eq!(
            format_label_selector(Some(&s)),
            "app=nginx,canary,env in (dev,prod),tier=web,!zone"
        );
        assert_eq!(format_label_selector(None), "<none>");
        assert_eq!(
            format_label_selector(Some(&LabelSelector::default())),
            "<none>"
        );
        let bad = sel(&[], &[("a", "Near", &["x"])]);
        assert_eq!(format_label_selector(Some(&bad)), "<error>");
        let empty_in = sel(&[], &[("a", "In", &[])]);
        assert_eq!(format_label_selector(Some(&empty_in)), "<error>");
    }

    #[test]
    fn labels_and_modes() {
        let mut m = BTreeMap::new();
        assert_eq!(format_labels(Some(&m)), "<none>");
        m.insert("b".to_string(), "2".to_string());
        m.insert("a".to_string(), "1".to_string());
        assert_eq!(format_labels(Some(&m)), "a=1,b=2");
        let modes = vec!["ReadWriteMany".to_string(), "ReadWriteOnce".to_string()];
        assert_eq!(access_modes(Some(&modes)), "RWO,RWX");
        assert_eq!(join_host_port("fd00::1", 80), "[fd00::1]:80");
    }

    #[test]
    fn go_debug_selector() {
        let s = sel(&[("a", "b")], &[("k", "In", &["x", "y"])]);
        assert_eq!(
            go_label_selector_debug(&s),
            "&LabelSelector{MatchLabels:map[string]string{a: b,},MatchExpressions:[]LabelSelectorRequirement{LabelSelectorRequirement{Key:k,Operator:In,Values:[x y],},},}"
        );
    }
}
