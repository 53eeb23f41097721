//! DaemonSet and ControllerRevision defaulting and validation (mirrors SetDefaults_DaemonSet,
//! ValidateDaemonSet* and ValidateControllerRevision* of pkg/apis/apps).

use super::*;

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
        // The status struct is a value type upstream, so it always serializes.
        self.status.get_or_insert_with(Default::default);
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
