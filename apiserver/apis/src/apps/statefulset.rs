//! StatefulSet defaulting and validation (mirrors SetDefaults_StatefulSet and
//! ValidateStatefulSet* of pkg/apis/apps).

use super::*;

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
        // The status struct is a value type upstream, so it always serializes.
        let status = self.status.get_or_insert_with(Default::default);
        status.available_replicas.get_or_insert(0);
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
