//! apps/v1: defaulting and validation for Deployment, ReplicaSet, StatefulSet, DaemonSet and
//! ControllerRevision, plus the workload helpers they share (mirrors pkg/apis/apps/v1/defaults.go,
//! pkg/apis/apps/validation/validation.go and the selector rules of pkg/registry/apps/*/strategy.go).

use crate::ApiType;
use crate::corev1::defaults::default_pod_template_spec;
use crate::corev1::{kube_finalizers, validate_pod_template_spec};
use crate::util::{self, Errs, Selector};
use apiserver_apimachinery::{FieldError, FieldPath};
use k8s_openapi::api::apps::v1 as apps;
use k8s_openapi::api::core::v1 as core;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

fn spec_path() -> FieldPath {
    FieldPath::root("spec")
}

fn template_labels(t: &core::PodTemplateSpec) -> std::collections::BTreeMap<String, String> {
    t.metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default()
}

fn restart_policy(t: &core::PodTemplateSpec) -> String {
    t.spec
        .as_ref()
        .and_then(|s| s.restart_policy.clone())
        .unwrap_or_default()
}

/// Required / strict label selector validation shared by the workload specs. Returns the
/// converted selector (`LabelSelectorAsSelector`).
fn workload_selector(errs: &mut Errs, sel: &LabelSelector, kind: &str) -> Selector {
    let sp = spec_path().child("selector");
    match util::present_selector(sel) {
        None => errs.push(FieldError::required(&sp, "")),
        Some(s) => {
            util::label_selector(errs, s, &sp, false);
            if util::selector_is_empty(s) {
                errs.push(FieldError::invalid(
                    &sp,
                    util::json(s),
                    format!("empty selector is invalid for {kind}"),
                ));
            }
        }
    }
    Selector::from_meta(util::present_selector(sel))
}

fn template_matches(
    errs: &mut Errs,
    selector: &Selector,
    t: &core::PodTemplateSpec,
    tp: &FieldPath,
) {
    let labels = template_labels(t);
    if !selector.is_empty() && !selector.matches(&labels) {
        errs.push(FieldError::invalid(
            &tp.child("metadata").child("labels"),
            util::json(&labels),
            "`selector` does not match template `labels`",
        ));
    }
}

/// `ValidatePodTemplateSpecForReplicaSet`.
fn template_for_replica_set(
    errs: &mut Errs,
    selector: &Selector,
    t: &core::PodTemplateSpec,
    kind: &str,
) {
    let tp = spec_path().child("template");
    template_matches(errs, selector, t, &tp);
    validate_pod_template_spec(errs, t, &tp);
    let restart = restart_policy(t);
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
            format!("activeDeadlineSeconds in {kind} is not Supported"),
        ));
    }
}

fn selector_with_template(
    errs: &mut Errs,
    sel: &LabelSelector,
    template: &core::PodTemplateSpec,
    kind: &str,
) {
    let selector = workload_selector(errs, sel, "deployment");
    if matches!(selector, Selector::Invalid) {
        errs.push(FieldError::invalid(
            &spec_path().child("selector"),
            util::json(sel),
            "invalid label selector",
        ));
    } else {
        template_for_replica_set(errs, &selector, template, kind);
    }
}

fn selector_immutable(errs: &mut Errs, new: &LabelSelector, old: &LabelSelector) {
    if new != old {
        errs.push(FieldError::invalid(
            &spec_path().child("selector"),
            util::json(new),
            util::IMMUTABLE_MSG,
        ));
    }
}

fn nonneg_field(errs: &mut Errs, v: Option<i32>, path: &FieldPath) {
    util::nonneg(errs, i64::from(v.unwrap_or(0)), path);
}

/// Status counters: `(name, value)` pairs checked for negatives, then the ordering rules.
fn replica_counts(
    errs: &mut Errs,
    counts: &[(&str, i64)],
    replicas: i64,
    ready: i64,
    available: i64,
    available_msg: &str,
) {
    let p = FieldPath::root("status");
    for (name, v) in counts {
        util::nonneg(errs, *v, &p.child(name));
    }
    let msg = "cannot be greater than status.replicas";
    for (name, v) in counts {
        if matches!(
            *name,
            "updatedReplicas"
                | "readyReplicas"
                | "availableReplicas"
                | "fullyLabeledReplicas"
                | "currentReplicas"
        ) && *v > replicas
        {
            errs.push(FieldError::invalid(&p.child(name), *v, msg));
        }
    }
    if available > ready {
        errs.push(FieldError::invalid(
            &p.child("availableReplicas"),
            available,
            available_msg,
        ));
    }
}

fn collision_decrement(errs: &mut Errs, new: Option<i32>, old: Option<i32>) {
    let decremented = match (new, old) {
        (None, Some(_)) => true,
        (Some(n), Some(o)) => n < o,
        _ => false,
    };
    if decremented {
        errs.push(FieldError::invalid(
            &FieldPath::root("status").child("collisionCount"),
            new.unwrap_or(0),
            "cannot be decremented",
        ));
    }
}

mod daemonset;
mod deployment;
mod statefulset;
