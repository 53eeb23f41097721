//! Deployment and ReplicaSet defaulting and validation (mirrors SetDefaults_Deployment,
//! SetDefaults_ReplicaSet, ValidateDeployment* and ValidateReplicaSet* of pkg/apis/apps).

use super::*;

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

impl ApiType for apps::Deployment {
    fn default_fields(&mut self) {
        default_deployment(self);
        // The status struct is a value type upstream, so it always serializes.
        self.status.get_or_insert_with(Default::default);
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
        // The status struct is a value type upstream, so it always serializes.
        self.status.get_or_insert_with(Default::default);
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
