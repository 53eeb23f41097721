//! apps/v1: defaulting and validation for Deployment, ReplicaSet, StatefulSet, DaemonSet and
//! ControllerRevision (mirrors pkg/apis/apps/v1/defaults.go, pkg/apis/apps/validation/validation.go
//! and the selector-immutability rules of pkg/registry/apps/*/strategy.go).

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

// ---------------------------------------------------------------------------------------------
// Deployment

fn default_deployment(d: &mut apps::Deployment) {
    let spec = &mut d.spec;
    spec.replicas.get_or_insert(1);
    let strategy = spec.strategy.get_or_insert_with(Default::default);
    if strategy.type_.as_deref().unwrap_or("").is_empty() {
        strategy.type_ = Some("RollingUpdate".to_string());
    }
    if strategy.type_.as_deref() == Some("RollingUpdate") {
        let ru = strategy.rolling_update.get_or_insert_with(Default::default);
        ru.max_unavailable
            .get_or_insert_with(|| IntOrString::String("25%".into()));
        ru.max_surge
            .get_or_insert_with(|| IntOrString::String("25%".into()));
    }
    spec.revision_history_limit.get_or_insert(10);
    spec.progress_deadline_seconds.get_or_insert(600);
    default_pod_template_spec(&mut spec.template);
}

fn validate_deployment_strategy(errs: &mut Errs, s: Option<&apps::DeploymentStrategy>) {
    let path = spec_path().child("strategy");
    let default = apps::DeploymentStrategy::default();
    let s = s.unwrap_or(&default);
    match s.type_.as_deref().unwrap_or("") {
        "Recreate" => {
            if s.rolling_update.is_some() {
                errs.push(FieldError::forbidden(
                    &path.child("rollingUpdate"),
                    "may not be specified when strategy `type` is 'Recreate'",
                ));
            }
        }
        "RollingUpdate" => match &s.rolling_update {
            None => errs.push(FieldError::required(
                &path.child("rollingUpdate"),
                "this should be defaulted and never be nil",
            )),
            Some(ru) => {
                let rp = path.child("rollingUpdate");
                let zero = IntOrString::Int(0);
                let mu = ru.max_unavailable.as_ref().unwrap_or(&zero);
                let ms = ru.max_surge.as_ref().unwrap_or(&zero);
                util::positive_int_or_percent(errs, mu, &rp.child("maxUnavailable"));
                util::positive_int_or_percent(errs, ms, &rp.child("maxSurge"));
                if util::int_or_percent_value(mu) == 0 && util::int_or_percent_value(ms) == 0 {
                    errs.push(FieldError::invalid(
                        &rp.child("maxUnavailable"),
                        util::int_or_string_str(mu),
                        "may not be 0 when `maxSurge` is 0",
                    ));
                }
                util::not_more_than_100_percent(errs, mu, &rp.child("maxUnavailable"));
            }
        },
        _ => errs.push(util::not_supported_raw(
            &path,
            util::json(s),
            &["Recreate", "RollingUpdate"],
        )),
    }
}

fn validate_deployment(d: &apps::Deployment) -> Errs {
    let mut errs = Vec::new();
    kube_finalizers(&mut errs, &d.metadata);
    let spec = &d.spec;
    let sp = spec_path();
    nonneg_field(&mut errs, spec.replicas, &sp.child("replicas"));
    selector_with_template(&mut errs, &spec.selector, &spec.template, "ReplicaSet");
    validate_deployment_strategy(&mut errs, spec.strategy.as_ref());
    nonneg_field(
        &mut errs,
        spec.min_ready_seconds,
        &sp.child("minReadySeconds"),
    );
    if let Some(r) = spec.revision_history_limit {
        util::nonneg(&mut errs, i64::from(r), &sp.child("revisionHistoryLimit"));
    }
    if let Some(p) = spec.progress_deadline_seconds {
        util::nonneg(
            &mut errs,
            i64::from(p),
            &sp.child("progressDeadlineSeconds"),
        );
        if p <= spec.min_ready_seconds.unwrap_or(0) {
            errs.push(FieldError::invalid(
                &sp.child("progressDeadlineSeconds"),
                p,
                "must be greater than minReadySeconds",
            ));
        }
    }
    errs
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

impl ApiType for apps::Deployment {
    fn default_fields(&mut self) {
        default_deployment(self);
    }
    fn validate(&self) -> Vec<FieldError> {
        validate_deployment(self)
    }
    fn validate_update(&self, old: &Self) -> Vec<FieldError> {
        let mut errs = validate_deployment(self);
        selector_immutable(&mut errs, &self.spec.selector, &old.spec.selector);
        errs
    }
    fn validate_status_update(&self, old: &Self) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let s = self.status.clone().unwrap_or_default();
        let (r, ready, avail) = (
            i64::from(s.replicas.unwrap_or(0)),
            i64::from(s.ready_replicas.unwrap_or(0)),
            i64::from(s.available_replicas.unwrap_or(0)),
        );
        let mut counts = vec![
            ("observedGeneration", s.observed_generation.unwrap_or(0)),
            ("replicas", r),
            (
                "updatedReplicas",
                i64::from(s.updated_replicas.unwrap_or(0)),
            ),
            ("readyReplicas", ready),
            ("availableReplicas", avail),
            (
                "unavailableReplicas",
                i64::from(s.unavailable_replicas.unwrap_or(0)),
            ),
        ];
        if let Some(c) = s.collision_count {
            counts.push(("collisionCount", i64::from(c)));
        }
        replica_counts(
            &mut errs,
            &counts,
            r,
            ready,
            avail,
            "cannot be greater than readyReplicas",
        );
        collision_decrement(
            &mut errs,
            s.collision_count,
            old.status.as_ref().and_then(|s| s.collision_count),
        );
        errs
    }
}

// ---------------------------------------------------------------------------------------------
// ReplicaSet

fn validate_replica_set(rs: &apps::ReplicaSet) -> Errs {
    let mut errs = Vec::new();
    kube_finalizers(&mut errs, &rs.metadata);
    let spec = &rs.spec;
    let sp = spec_path();
    nonneg_field(&mut errs, spec.replicas, &sp.child("replicas"));
    nonneg_field(
        &mut errs,
        spec.min_ready_seconds,
        &sp.child("minReadySeconds"),
    );
    let template = spec.template.clone().unwrap_or_default();
    selector_with_template(&mut errs, &spec.selector, &template, "ReplicaSet");
    errs
}

impl ApiType for apps::ReplicaSet {
    fn default_fields(&mut self) {
        let spec = &mut self.spec;
        spec.replicas.get_or_insert(1);
        default_pod_template_spec(spec.template.get_or_insert_with(Default::default));
    }
    fn validate(&self) -> Vec<FieldError> {
        validate_replica_set(self)
    }
    fn validate_update(&self, old: &Self) -> Vec<FieldError> {
        let mut errs = validate_replica_set(self);
        selector_immutable(&mut errs, &self.spec.selector, &old.spec.selector);
        errs
    }
    fn validate_status_update(&self, _old: &Self) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let s = self.status.clone().unwrap_or_default();
        let (r, ready, avail) = (
            i64::from(s.replicas),
            i64::from(s.ready_replicas.unwrap_or(0)),
            i64::from(s.available_replicas.unwrap_or(0)),
        );
        let counts = [
            ("replicas", r),
            (
                "fullyLabeledReplicas",
                i64::from(s.fully_labeled_replicas.unwrap_or(0)),
            ),
            ("readyReplicas", ready),
            ("availableReplicas", avail),
            ("observedGeneration", s.observed_generation.unwrap_or(0)),
        ];
        replica_counts(
            &mut errs,
            &counts,
            r,
            ready,
            avail,
            "cannot be greater than readyReplicas",
        );
        errs
    }
}

// ---------------------------------------------------------------------------------------------
// StatefulSet

fn default_stateful_set(s: &mut apps::StatefulSet) {
    let spec = &mut s.spec;
    if spec
        .pod_management_policy
        .as_deref()
        .unwrap_or("")
        .is_empty()
    {
        spec.pod_management_policy = Some("OrderedReady".to_string());
    }
    let us = spec.update_strategy.get_or_insert_with(Default::default);
    if us.type_.as_deref().unwrap_or("").is_empty() {
        us.type_ = Some("RollingUpdate".to_string());
        us.rolling_update.get_or_insert_with(Default::default);
    }
    if us.type_.as_deref() == Some("RollingUpdate")
        && let Some(ru) = &mut us.rolling_update
    {
        ru.partition.get_or_insert(0);
        // MaxUnavailableStatefulSet is enabled by default in v1.37.
        ru.max_unavailable.get_or_insert(IntOrString::Int(1));
    }
    let policy = spec
        .persistent_volume_claim_retention_policy
        .get_or_insert_with(Default::default);
    for slot in [&mut policy.when_deleted, &mut policy.when_scaled] {
        if slot.as_deref().unwrap_or("").is_empty() {
            *slot = Some("Retain".to_string());
        }
    }
    spec.replicas.get_or_insert(1);
    spec.revision_history_limit.get_or_insert(10);
    default_pod_template_spec(&mut spec.template);
    for pvc in spec.volume_claim_templates.iter_mut().flatten() {
        pvc.default_fields();
    }
}

fn validate_stateful_set(s: &apps::StatefulSet) -> Errs {
    let mut errs = Vec::new();
    kube_finalizers(&mut errs, &s.metadata);
    let spec = &s.spec;
    let sp = spec_path();
    match spec.pod_management_policy.as_deref().unwrap_or("") {
        "" => errs.push(FieldError::required(&sp.child("podManagementPolicy"), "")),
        "OrderedReady" | "Parallel" => {}
        other => errs.push(FieldError::invalid_str(
            &sp.child("podManagementPolicy"),
            other,
            "must be 'OrderedReady' or 'Parallel'",
        )),
    }
    let us = spec.update_strategy.clone().unwrap_or_default();
    let usp = sp.child("updateStrategy");
    match us.type_.as_deref().unwrap_or("") {
        "" => errs.push(FieldError::required(&usp, "")),
        "OnDelete" => {
            if let Some(ru) = &us.rolling_update {
                errs.push(FieldError::invalid(
                    &usp.child("rollingUpdate"),
                    util::json(ru),
                    "only allowed for updateStrategy 'RollingUpdate'",
                ));
            }
        }
        "RollingUpdate" => {
            if let Some(ru) = &us.rolling_update {
                let rp = usp.child("rollingUpdate");
                nonneg_field(&mut errs, ru.partition, &rp.child("partition"));
                if let Some(mu) = &ru.max_unavailable {
                    let mp = rp.child("maxUnavailable");
                    util::positive_int_or_percent(&mut errs, mu, &mp);
                    if util::int_or_percent_value(mu) == 0 {
                        errs.push(FieldError::invalid(
                            &mp,
                            util::int_or_string_str(mu),
                            "cannot be 0",
                        ));
                    }
                    util::not_more_than_100_percent(&mut errs, mu, &mp);
                }
            }
        }
        _ => errs.push(FieldError::invalid(
            &usp,
            util::json(&us),
            "must be 'RollingUpdate' or 'OnDelete'",
        )),
    }
    if let Some(p) = &spec.persistent_volume_claim_retention_policy {
        let pp = sp.child("persistentVolumeClaimRetentionPolicy");
        for (field, v) in [
            ("whenDeleted", &p.when_deleted),
            ("whenScaled", &p.when_scaled),
        ] {
            let v = v.as_deref().unwrap_or("");
            if v != "Retain" && v != "Delete" {
                errs.push(FieldError::not_supported(
                    &pp.child(field),
                    v,
                    &["Retain", "Delete"],
                ));
            }
        }
    }
    nonneg_field(&mut errs, spec.replicas, &sp.child("replicas"));
    nonneg_field(
        &mut errs,
        spec.min_ready_seconds,
        &sp.child("minReadySeconds"),
    );
    if let Some(o) = &spec.ordinals {
        nonneg_field(&mut errs, o.start, &sp.child("ordinals.start"));
    }
    let selector = workload_selector(&mut errs, &spec.selector, "statefulset");
    let tp = sp.child("template");
    if matches!(selector, Selector::Invalid) {
        errs.push(FieldError::invalid(
            &sp.child("selector"),
            util::json(&spec.selector),
            "",
        ));
    } else {
        template_matches(&mut errs, &selector, &spec.template, &tp);
        let meta = spec.template.metadata.clone().unwrap_or_default();
        util::labels(&mut errs, &meta.labels, &tp.child("labels"));
        util::annotations(&mut errs, &meta.annotations, &tp.child("annotations"));
    }
    let restart = restart_policy(&spec.template);
    if restart != "Always" {
        errs.push(FieldError::not_supported(
            &tp.child("spec").child("restartPolicy"),
            &restart,
            &["Always"],
        ));
    }
    if spec
        .template
        .spec
        .as_ref()
        .is_some_and(|s| s.active_deadline_seconds.is_some())
    {
        errs.push(FieldError::forbidden(
            &tp.child("spec").child("activeDeadlineSeconds"),
            "activeDeadlineSeconds in StatefulSet is not Supported",
        ));
    }
    errs
}

impl ApiType for apps::StatefulSet {
    fn default_fields(&mut self) {
        default_stateful_set(self);
    }
    fn validate(&self) -> Vec<FieldError> {
        validate_stateful_set(self)
    }
    fn validate_update(&self, old: &Self) -> Vec<FieldError> {
        let mut errs = validate_stateful_set(self);
        let mut munged = self.spec.clone();
        let old_spec = old.spec.clone();
        munged.replicas = old_spec.replicas;
        munged.template = old_spec.template.clone();
        munged.update_strategy = old_spec.update_strategy.clone();
        munged.min_ready_seconds = old_spec.min_ready_seconds;
        munged.ordinals = old_spec.ordinals.clone();
        munged.persistent_volume_claim_retention_policy =
            old_spec.persistent_volume_claim_retention_policy.clone();
        if munged != old_spec {
            errs.push(FieldError::forbidden(
                &spec_path(),
                "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
            ));
        }
        errs
    }
    fn validate_status_update(&self, old: &Self) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let s = self.status.clone().unwrap_or_default();
        let (r, ready, avail) = (
            i64::from(s.replicas),
            i64::from(s.ready_replicas.unwrap_or(0)),
            i64::from(s.available_replicas.unwrap_or(0)),
        );
        let mut counts = vec![
            ("replicas", r),
            ("readyReplicas", ready),
            (
                "currentReplicas",
                i64::from(s.current_replicas.unwrap_or(0)),
            ),
            (
                "updatedReplicas",
                i64::from(s.updated_replicas.unwrap_or(0)),
            ),
            ("availableReplicas", avail),
        ];
        if let Some(g) = s.observed_generation {
            counts.push(("observedGeneration", g));
        }
        if let Some(c) = s.collision_count {
            counts.push(("collisionCount", i64::from(c)));
        }
        replica_counts(
            &mut errs,
            &counts,
            r,
            ready,
            avail,
            "cannot be greater than status.readyReplicas",
        );
        collision_decrement(
            &mut errs,
            s.collision_count,
            old.status.as_ref().and_then(|s| s.collision_count),
        );
        errs
    }
}

// ---------------------------------------------------------------------------------------------
// DaemonSet

fn default_daemon_set(d: &mut apps::DaemonSet) {
    let spec = &mut d.spec;
    let us = spec.update_strategy.get_or_insert_with(Default::default);
    if us.type_.as_deref().unwrap_or("").is_empty() {
        us.type_ = Some("RollingUpdate".to_string());
    }
    if us.type_.as_deref() == Some("RollingUpdate") {
        let ru = us.rolling_update.get_or_insert_with(Default::default);
        ru.max_unavailable.get_or_insert(IntOrString::Int(1));
        ru.max_surge.get_or_insert(IntOrString::Int(0));
    }
    spec.revision_history_limit.get_or_insert(10);
    default_pod_template_spec(&mut spec.template);
}

fn validate_daemon_set(d: &apps::DaemonSet) -> Errs {
    let mut errs = Vec::new();
    kube_finalizers(&mut errs, &d.metadata);
    let spec = &d.spec;
    let sp = spec_path();
    let sel = util::present_selector(&spec.selector);
    if let Some(s) = sel {
        util::label_selector(&mut errs, s, &sp.child("selector"), false);
    }
    let selector = Selector::from_meta(sel);
    let labels = template_labels(&spec.template);
    if !matches!(selector, Selector::Invalid) && !selector.matches(&labels) {
        errs.push(FieldError::invalid(
            &sp.child("template").child("metadata").child("labels"),
            util::json(&labels),
            "`selector` does not match template `labels`",
        ));
    }
    if let Some(s) = sel.filter(|s| util::selector_is_empty(s)) {
        errs.push(FieldError::invalid(
            &sp.child("selector"),
            util::json(s),
            "empty selector is invalid for daemonset",
        ));
    }
    let tp = sp.child("template");
    validate_pod_template_spec(&mut errs, &spec.template, &tp);
    let restart = restart_policy(&spec.template);
    if restart != "Always" {
        errs.push(FieldError::not_supported(
            &tp.child("spec").child("restartPolicy"),
            &restart,
            &["Always"],
        ));
    }
    if spec
        .template
        .spec
        .as_ref()
        .is_some_and(|s| s.active_deadline_seconds.is_some())
    {
        errs.push(FieldError::forbidden(
            &tp.child("spec").child("activeDeadlineSeconds"),
            "activeDeadlineSeconds in DaemonSet is not Supported",
        ));
    }
    nonneg_field(
        &mut errs,
        spec.min_ready_seconds,
        &sp.child("minReadySeconds"),
    );
    let us = spec.update_strategy.clone().unwrap_or_default();
    let usp = sp.child("updateStrategy");
    match us.type_.as_deref().unwrap_or("") {
        "OnDelete" => {}
        "RollingUpdate" => match &us.rolling_update {
            None => errs.push(FieldError::required(&usp.child("rollingUpdate"), "")),
            Some(ru) => {
                let rp = usp.child("rollingUpdate");
                let zero = IntOrString::Int(0);
                let mu = ru.max_unavailable.as_ref().unwrap_or(&zero);
                let ms = ru.max_surge.as_ref().unwrap_or(&zero);
                util::positive_int_or_percent(&mut errs, mu, &rp.child("maxUnavailable"));
                util::positive_int_or_percent(&mut errs, ms, &rp.child("maxSurge"));
                util::not_more_than_100_percent(&mut errs, mu, &rp.child("maxUnavailable"));
                util::not_more_than_100_percent(&mut errs, ms, &rp.child("maxSurge"));
                let (has_u, has_s) = (
                    util::int_or_percent_value(mu) != 0,
                    util::int_or_percent_value(ms) != 0,
                );
                if has_u && has_s {
                    errs.push(FieldError::invalid(
                        &rp.child("maxSurge"),
                        util::int_or_string_str(ms),
                        "may not be set when maxUnavailable is non-zero",
                    ));
                } else if !has_u && !has_s {
                    errs.push(FieldError::required(
                        &rp.child("maxUnavailable"),
                        "cannot be 0 when maxSurge is 0",
                    ));
                }
            }
        },
        _ => errs.push(util::not_supported_raw(
            &usp,
            util::json(&us),
            &["RollingUpdate", "OnDelete"],
        )),
    }
    if let Some(r) = spec.revision_history_limit {
        util::nonneg(&mut errs, i64::from(r), &sp.child("revisionHistoryLimit"));
    }
    errs
}

impl ApiType for apps::DaemonSet {
    fn default_fields(&mut self) {
        default_daemon_set(self);
    }
    fn validate(&self) -> Vec<FieldError> {
        validate_daemon_set(self)
    }
    fn validate_update(&self, old: &Self) -> Vec<FieldError> {
        let mut errs = validate_daemon_set(self);
        selector_immutable(&mut errs, &self.spec.selector, &old.spec.selector);
        errs
    }
    fn validate_status_update(&self, old: &Self) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let s = self.status.clone().unwrap_or_default();
        let p = FieldPath::root("status");
        for (name, v) in [
            (
                "currentNumberScheduled",
                i64::from(s.current_number_scheduled),
            ),
            ("numberMisscheduled", i64::from(s.number_misscheduled)),
            (
                "desiredNumberScheduled",
                i64::from(s.desired_number_scheduled),
            ),
            ("numberReady", i64::from(s.number_ready)),
            ("observedGeneration", s.observed_generation.unwrap_or(0)),
            (
                "updatedNumberScheduled",
                i64::from(s.updated_number_scheduled.unwrap_or(0)),
            ),
            (
                "numberAvailable",
                i64::from(s.number_available.unwrap_or(0)),
            ),
            (
                "numberUnavailable",
                i64::from(s.number_unavailable.unwrap_or(0)),
            ),
        ] {
            util::nonneg(&mut errs, v, &p.child(name));
        }
        if let Some(c) = s.collision_count {
            util::nonneg(&mut errs, i64::from(c), &p.child("collisionCount"));
        }
        collision_decrement(
            &mut errs,
            s.collision_count,
            old.status.as_ref().and_then(|s| s.collision_count),
        );
        errs
    }
}

// ---------------------------------------------------------------------------------------------
// ControllerRevision

fn validate_controller_revision(r: &apps::ControllerRevision) -> Errs {
    let mut errs = Vec::new();
    kube_finalizers(&mut errs, &r.metadata);
    if r.data.0.is_null() {
        errs.push(FieldError::required(
            &FieldPath::root("data"),
            "data is mandatory",
        ));
    }
    util::nonneg(
        &mut errs,
        r.revision.unwrap_or(0),
        &FieldPath::root("revision"),
    );
    errs
}

impl ApiType for apps::ControllerRevision {
    fn validate(&self) -> Vec<FieldError> {
        validate_controller_revision(self)
    }
    fn validate_update(&self, old: &Self) -> Vec<FieldError> {
        let mut errs = validate_controller_revision(self);
        if self.data != old.data {
            errs.push(FieldError::invalid(
                &FieldPath::root("data"),
                util::json(&self.data),
                util::IMMUTABLE_MSG,
            ));
        }
        errs
    }
}
