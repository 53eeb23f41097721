//! Pod create/update/status validation, pod templates and replication controllers (mirrors
//! ValidatePodCreate, ValidatePodUpdate, ValidatePodStatusUpdate, ValidatePodTemplate and
//! ValidateReplicationController* in pkg/apis/core/validation/validation.go).

use super::podspec::{self, SpecOpts};
use crate::util::{self, Errs};
use apiserver_apimachinery::{FieldError, FieldPath};
use k8s_openapi::api::core::v1 as api;
use serde_json::Value;
use std::collections::BTreeMap;

fn spec_of(p: &api::Pod) -> std::borrow::Cow<'_, api::PodSpec> {
    match &p.spec {
        Some(s) => std::borrow::Cow::Borrowed(s),
        None => std::borrow::Cow::Owned(Default::default()),
    }
}

fn pod_annotations(errs: &mut Errs, pod: &api::Pod, spec: &api::PodSpec) {
    let path = FieldPath::root("metadata").child("annotations");
    let Some(ann) = &pod.metadata.annotations else {
        return;
    };
    if let Some(v) = ann.get("kubernetes.io/config.mirror")
        && spec.node_name.as_deref().unwrap_or("").is_empty()
    {
        errs.push(FieldError::invalid_str(
            &path.key("kubernetes.io/config.mirror"),
            v,
            "must set spec.nodeName if mirror pod annotation is set",
        ));
    }
    if let Some(v) = ann.get("controller.kubernetes.io/pod-deletion-cost")
        && (v.parse::<i32>().is_err() || v.trim() != v || v.starts_with('+'))
    {
        errs.push(FieldError::invalid_str(
            &path.key("controller.kubernetes.io/pod-deletion-cost"),
            v,
            "must be a 32bit integer",
        ));
    }
}

/// `validatePodMetadataAndSpec` minus object metadata.
fn pod_metadata_and_spec(errs: &mut Errs, pod: &api::Pod) {
    let spec = spec_of(pod);
    let sp = FieldPath::root("spec");
    pod_annotations(errs, pod, &spec);
    let opts = SpecOpts {
        pod_name: pod.metadata.name.as_deref(),
        is_pod: true,
    };
    podspec::pod_spec(errs, &spec, &opts, &sp);
    if spec
        .service_account_name
        .as_deref()
        .unwrap_or("")
        .is_empty()
    {
        for (vi, v) in spec.volumes.iter().flatten().enumerate() {
            for (si, src) in v
                .projected
                .iter()
                .flat_map(|p| p.sources.iter().flatten())
                .enumerate()
            {
                if src.service_account_token.is_some() {
                    let p = sp
                        .child("volumes")
                        .index(vi)
                        .child("projected")
                        .child("sources")
                        .index(si);
                    errs.push(FieldError::forbidden(
                        &p.child("serviceAccountToken"),
                        "must not be specified when serviceAccountName is not set",
                    ));
                }
            }
        }
    }
    for (i, c) in spec.containers.iter().enumerate() {
        podspec::image_whitespace(errs, c, &sp.child("containers").index(i));
    }
    for (i, c) in spec.init_containers.iter().flatten().enumerate() {
        podspec::image_whitespace(errs, c, &sp.child("initContainers").index(i));
    }
}

/// `ValidatePodCreate`.
pub(crate) fn validate_pod(pod: &api::Pod) -> Errs {
    let mut errs = Vec::new();
    super::kube_finalizers(&mut errs, &pod.metadata);
    pod_metadata_and_spec(&mut errs, pod);
    let spec = spec_of(pod);
    let sp = FieldPath::root("spec");
    if spec
        .ephemeral_containers
        .as_ref()
        .is_some_and(|e| !e.is_empty())
    {
        errs.push(FieldError::forbidden(
            &sp.child("ephemeralContainers"),
            "cannot be set on create",
        ));
    }
    if !spec.node_name.as_deref().unwrap_or("").is_empty()
        && spec
            .scheduling_gates
            .as_ref()
            .is_some_and(|g| !g.is_empty())
    {
        errs.push(FieldError::forbidden(
            &sp.child("nodeName"),
            "cannot be set until all schedulingGates have been cleared",
        ));
    }
    errs
}

fn container_updates(
    errs: &mut Errs,
    new: &[api::Container],
    old: &[api::Container],
    path: &FieldPath,
) -> bool {
    if new.len() != old.len() {
        errs.push(FieldError::forbidden(
            path,
            "pod updates may not add or remove containers",
        ));
        return true;
    }
    for (i, c) in new.iter().enumerate() {
        let image = c.image.as_deref().unwrap_or("");
        if image.is_empty() {
            errs.push(FieldError::required(&path.index(i).child("image"), ""));
        }
        if image.trim() != image {
            errs.push(FieldError::invalid_str(
                &path.index(i).child("image"),
                image,
                "must not have leading or trailing whitespace",
            ));
        }
    }
    false
}

const UPDATABLE_FIELDS: [&str; 5] = [
    "`spec.containers[*].image`",
    "`spec.initContainers[*].image`",
    "`spec.activeDeadlineSeconds`",
    "`spec.tolerations` (only additions to existing tolerations)",
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
];

/// A short field-level diff of two specs, in the spirit of upstream's `cmp.Diff` output.
pub(crate) fn spec_diff<T: serde::Serialize>(old: &T, new: &T) -> String {
    let to_map = |v: &T| match serde_json::to_value(v) {
        Ok(Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    };
    let (o, n) = (to_map(old), to_map(new));
    let mut keys: Vec<&String> = o.keys().chain(n.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut out = String::from("  {\n");
    for k in keys {
        let (a, b) = (o.get(k), n.get(k));
        if a != b {
            if let Some(a) = a {
                out.push_str(&format!("- \t{k:?}: {a},\n"));
            }
            if let Some(b) = b {
                out.push_str(&format!("+ \t{k:?}: {b},\n"));
            }
        }
    }
    out.push_str("  }\n");
    out
}

fn only_added_tolerations(
    errs: &mut Errs,
    new: &[api::Toleration],
    old: &[api::Toleration],
    path: &FieldPath,
) {
    for o in old {
        let found = new.iter().any(|n| {
            let mut oc = o.clone();
            oc.toleration_seconds = n.toleration_seconds;
            oc == *n
        });
        if !found {
            errs.push(FieldError::forbidden(
                path,
                "existing toleration can not be modified except its tolerationSeconds",
            ));
            return;
        }
    }
    super::scheduling::tolerations(errs, new, path);
}

/// `ValidatePodUpdate` minus object metadata.
pub(crate) fn validate_pod_update(new: &api::Pod, old: &api::Pod) -> Errs {
    let mut errs = Vec::new();
    super::kube_finalizers(&mut errs, &new.metadata);
    pod_metadata_and_spec(&mut errs, new);
    mirror_annotation_update(&mut errs, new, old);
    let sp = FieldPath::root("spec");
    let (ns, os) = (spec_of(new), spec_of(old));
    if container_updates(
        &mut errs,
        &ns.containers,
        &os.containers,
        &sp.child("containers"),
    ) {
        return errs;
    }
    let (ni, oi) = (
        ns.init_containers.clone().unwrap_or_default(),
        os.init_containers.clone().unwrap_or_default(),
    );
    if container_updates(&mut errs, &ni, &oi, &sp.child("initContainers")) {
        return errs;
    }
    let adp = sp.child("activeDeadlineSeconds");
    match (ns.active_deadline_seconds, os.active_deadline_seconds) {
        (Some(n), o) => {
            if n < 0 || n > i64::from(i32::MAX) {
                errs.push(FieldError::invalid(
                    &adp,
                    n,
                    util::range_msg(0, i64::from(i32::MAX)),
                ));
                return errs;
            }
            if o.is_some_and(|o| o < n) {
                errs.push(FieldError::invalid(
                    &adp,
                    n,
                    "must be less than or equal to previous value",
                ));
                return errs;
            }
        }
        (None, Some(_)) => errs.push(FieldError::invalid(
            &adp,
            "null",
            "must not update from a positive integer to nil value",
        )),
        (None, None) => {}
    }
    let (nt, ot) = (
        ns.tolerations.clone().unwrap_or_default(),
        os.tolerations.clone().unwrap_or_default(),
    );
    only_added_tolerations(&mut errs, &nt, &ot, &sp.child("tolerations"));
    let old_gates: Vec<&str> = os
        .scheduling_gates
        .iter()
        .flatten()
        .map(|g| g.name.as_str())
        .collect();
    for (i, g) in ns.scheduling_gates.iter().flatten().enumerate() {
        if !old_gates.contains(&g.name.as_str()) {
            errs.push(FieldError::forbidden(
                &sp.child("schedulingGates").index(i).child("name"),
                format!(
                    "only deletion is allowed, but found new scheduling gate '{}'",
                    g.name
                ),
            ));
        }
    }
    if *ns == *os {
        return errs;
    }
    let mut munged = ns.clone().into_owned();
    for (c, o) in munged.containers.iter_mut().zip(&os.containers) {
        c.image = o.image.clone();
    }
    for (c, o) in munged.init_containers.iter_mut().flatten().zip(oi.iter()) {
        c.image = o.image.clone();
    }
    munged.active_deadline_seconds = os.active_deadline_seconds;
    munged.scheduling_gates = os.scheduling_gates.clone();
    munged.tolerations = os.tolerations.clone();
    if os.termination_grace_period_seconds.is_some_and(|g| g < 0)
        && munged.termination_grace_period_seconds == Some(1)
    {
        munged.termination_grace_period_seconds = os.termination_grace_period_seconds;
    }
    if os.scheduling_gates.as_ref().is_some_and(|g| !g.is_empty())
        && munged.node_selector != os.node_selector
    {
        let empty = BTreeMap::new();
        let old_sel = os.node_selector.as_ref().unwrap_or(&empty);
        let new_sel = munged.node_selector.clone().unwrap_or_default();
        if old_sel.iter().any(|(k, v)| new_sel.get(k) != Some(v)) {
            errs.push(FieldError::invalid(
                &sp.child("nodeSelector"),
                util::json(&new_sel),
                "only additions to spec.nodeSelector are allowed (no mutations or deletions)",
            ));
        }
        munged.node_selector = os.node_selector.clone();
    }
    if munged != *os {
        let detail = format!(
            "pod updates may not change fields other than {}\n{}",
            UPDATABLE_FIELDS.join(","),
            spec_diff(os.as_ref(), &munged)
        );
        errs.push(FieldError::forbidden(&sp, detail));
    }
    errs
}

fn mirror_annotation_update(errs: &mut Errs, new: &api::Pod, old: &api::Pod) {
    const MIRROR: &str = "kubernetes.io/config.mirror";
    let path = FieldPath::root("metadata").child("annotations").key(MIRROR);
    let n = new
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(MIRROR));
    let o = old
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(MIRROR));
    match (o, n) {
        (Some(o), n) if Some(o) != n => errs.push(FieldError::forbidden(
            &path,
            "may not remove or update mirror pod annotation",
        )),
        (None, Some(_)) => errs.push(FieldError::forbidden(
            &path,
            "may not add mirror pod annotation",
        )),
        _ => {}
    }
}

/// `ValidatePodStatusUpdate` (the parts that do not depend on node state).
pub(crate) fn validate_pod_status_update(new: &api::Pod, old: &api::Pod) -> Errs {
    let mut errs = Vec::new();
    let st = FieldPath::root("status");
    let (ns, os) = (spec_of(new), spec_of(old));
    if ns.node_name != os.node_name {
        errs.push(FieldError::forbidden(
            &st.child("nodeName"),
            "may not be changed directly",
        ));
    }
    let (nst, ost) = (
        new.status.clone().unwrap_or_default(),
        old.status.clone().unwrap_or_default(),
    );
    for (i, c) in nst.conditions.iter().flatten().enumerate() {
        if !matches!(c.type_.as_str(), "PodScheduled" | "Ready" | "Initialized") {
            util::qualified_name(
                &mut errs,
                &c.type_,
                &FieldPath::root("metadata")
                    .child("conditions")
                    .index(i)
                    .child("Type"),
            );
        }
    }
    if nst.qos_class != ost.qos_class {
        errs.push(FieldError::invalid_str(
            &st.child("qosClass"),
            util::s(&nst.qos_class),
            util::IMMUTABLE_MSG,
        ));
    }
    if let Some(n) = nst.nominated_node_name.as_deref().filter(|n| !n.is_empty())
        && nst.nominated_node_name != ost.nominated_node_name
    {
        util::dns_subdomain(&mut errs, n, &st.child("nominatedNodeName"));
    }
    for (i, ip) in nst.pod_ips.iter().flatten().enumerate() {
        util::valid_ip(&mut errs, &ip.ip, &st.child("podIPs").index(i));
    }
    for (i, ip) in nst.host_ips.iter().flatten().enumerate() {
        util::valid_ip(&mut errs, &ip.ip, &st.child("hostIPs").index(i));
    }
    errs
}

/// `ValidatePodTemplate` minus object metadata.
pub(crate) fn validate_pod_template(t: &api::PodTemplate) -> Errs {
    let mut errs = Vec::new();
    super::kube_finalizers(&mut errs, &t.metadata);
    let template = t.template.clone().unwrap_or_default();
    podspec::pod_template_spec(&mut errs, &template, &FieldPath::root("template"));
    errs
}

/// `ValidateReplicationControllerSpec`.
pub(crate) fn validate_rc(rc: &api::ReplicationController) -> Errs {
    let mut errs = Vec::new();
    super::kube_finalizers(&mut errs, &rc.metadata);
    let spec = rc.spec.clone().unwrap_or_default();
    let sp = FieldPath::root("spec");
    util::nonneg(
        &mut errs,
        i64::from(spec.min_ready_seconds.unwrap_or(0)),
        &sp.child("minReadySeconds"),
    );
    let selector = spec.selector.clone().unwrap_or_default();
    if selector.is_empty() {
        errs.push(FieldError::required(&sp.child("selector"), ""));
    }
    util::nonneg(
        &mut errs,
        i64::from(spec.replicas.unwrap_or(0)),
        &sp.child("replicas"),
    );
    let tp = sp.child("template");
    match &spec.template {
        None => errs.push(FieldError::required(&tp, "")),
        Some(t) => {
            let labels = t
                .metadata
                .as_ref()
                .and_then(|m| m.labels.clone())
                .unwrap_or_default();
            if !selector.is_empty() && !util::map_selector_matches(&selector, &labels) {
                errs.push(FieldError::invalid(
                    &tp.child("metadata").child("labels"),
                    util::json(&labels),
                    "`selector` does not match template `labels`",
                ));
            }
            podspec::pod_template_spec(&mut errs, t, &tp);
            let restart = t
                .spec
                .as_ref()
                .and_then(|s| s.restart_policy.clone())
                .unwrap_or_default();
            if restart != "Always" {
                errs.push(FieldError::not_supported(
                    &tp.child("spec").child("restartPolicy"),
                    &restart,
                    &["Always"],
                ));
            }
            if t.spec
                .as_ref()
                .is_some_and(|s| s.active_deadline_seconds.is_some())
            {
                errs.push(FieldError::forbidden(
                    &tp.child("spec").child("activeDeadlineSeconds"),
                    "activeDeadlineSeconds in ReplicationController is not Supported",
                ));
            }
        }
    }
    errs
}

/// `ValidateReplicationControllerStatus`.
pub(crate) fn validate_rc_status(rc: &api::ReplicationController) -> Errs {
    let mut errs = Vec::new();
    let s = rc.status.clone().unwrap_or_default();
    let p = FieldPath::root("status");
    let fully = s.fully_labeled_replicas.unwrap_or(0);
    let ready = s.ready_replicas.unwrap_or(0);
    let avail = s.available_replicas.unwrap_or(0);
    for (name, v) in [
        ("replicas", i64::from(s.replicas)),
        ("fullyLabeledReplicas", i64::from(fully)),
        ("readyReplicas", i64::from(ready)),
        ("availableReplicas", i64::from(avail)),
        ("observedGeneration", s.observed_generation.unwrap_or(0)),
    ] {
        util::nonneg(&mut errs, v, &p.child(name));
    }
    let msg = "cannot be greater than status.replicas";
    for (name, v) in [
        ("fullyLabeledReplicas", fully),
        ("readyReplicas", ready),
        ("availableReplicas", avail),
    ] {
        if v > s.replicas {
            errs.push(FieldError::invalid(&p.child(name), v, msg));
        }
    }
    if avail > ready {
        errs.push(FieldError::invalid(
            &p.child("availableReplicas"),
            avail,
            "cannot be greater than readyReplicas",
        ));
    }
    errs
}

/// The pod's QoS class (`qos.GetPodQOS`), which the pod strategy stores on create.
pub fn pod_qos_class(spec: &api::PodSpec) -> &'static str {
    let mut requests: BTreeMap<String, i128> = BTreeMap::new();
    let mut limits: BTreeMap<String, i128> = BTreeMap::new();
    let mut guaranteed = true;
    let mut all: Vec<&api::Container> = spec.containers.iter().collect();
    all.extend(spec.init_containers.iter().flatten());
    let parse = |q: &k8s_openapi::apimachinery::pkg::api::resource::Quantity| {
        crate::quantity::parse(&q.0).map(|q| q.nanos).unwrap_or(0)
    };
    for c in all {
        let r = c.resources.clone().unwrap_or_default();
        let (reqs, lims) = (r.requests.unwrap_or_default(), r.limits.unwrap_or_default());
        let mut lim_found = 0;
        for name in ["cpu", "memory"] {
            if let Some(q) = reqs.get(name).map(parse).filter(|v| *v != 0) {
                *requests.entry(name.into()).or_default() += q;
            }
            if let Some(q) = lims.get(name).map(parse).filter(|v| *v != 0) {
                *limits.entry(name.into()).or_default() += q;
                lim_found += 1;
            }
        }
        if lim_found != 2 {
            guaranteed = false;
        }
    }
    if requests.is_empty() && limits.is_empty() {
        return "BestEffort";
    }
    if guaranteed && requests.iter().all(|(k, v)| limits.get(k) == Some(v)) {
        return "Guaranteed";
    }
    "Burstable"
}
