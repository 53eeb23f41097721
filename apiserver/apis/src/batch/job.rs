//! Job defaulting, selector generation and validation (mirrors SetDefaults_Job, the job strategy's
//! generateSelector and ValidateJob* of pkg/apis/batch).

use super::policy::{managed_by, pod_failure_policy};
use super::*;

/// `SetDefaults_Job` (with the gates that are on by default in v1.37).
fn default_job_spec(spec: &mut batch::JobSpec) {
    if spec.completions.is_none() && spec.parallelism.is_none() {
        spec.completions = Some(1);
        spec.parallelism = Some(1);
    }
    spec.parallelism.get_or_insert(1);
    if spec.backoff_limit.is_none() {
        spec.backoff_limit = Some(if spec.backoff_limit_per_index.is_some() {
            i32::MAX
        } else {
            6
        });
    }
    spec.completion_mode
        .get_or_insert_with(|| "NonIndexed".to_string());
    spec.suspend.get_or_insert(false);
    spec.manual_selector.get_or_insert(false);
    if let Some(pfp) = &mut spec.pod_failure_policy {
        for rule in pfp.rules.iter_mut() {
            for pattern in rule.on_pod_conditions.iter_mut().flatten() {
                if pattern.status.as_deref().unwrap_or("").is_empty() {
                    pattern.status = Some("True".to_string());
                }
            }
        }
    }
    if spec.pod_replacement_policy.is_none() {
        let v = if spec.pod_failure_policy.is_some() {
            "Failed"
        } else {
            "TerminatingOrFailed"
        };
        spec.pod_replacement_policy = Some(v.to_string());
    }
    default_pod_template_spec(&mut spec.template);
}

fn template_labels(spec: &batch::JobSpec) -> BTreeMap<String, String> {
    spec.template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default()
}

fn copy_template_labels(job: &mut batch::Job) {
    let spec = job.spec.as_ref();
    let labels = spec
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| m.labels.clone());
    if let Some(l) = labels
        && job.metadata.labels.as_ref().is_none_or(|m| m.is_empty())
    {
        job.metadata.labels = Some(l);
    }
}

/// The job strategy's `generateSelector`: adds the `job-name`/`controller-uid` labels (legacy and
/// `batch.kubernetes.io/` forms) to the pod template and selects on the controller uid. Call it on
/// create when `spec.manualSelector` is not true, after `metadata.uid` is assigned. Like upstream's
/// re-defaulting on read-back, the job's own labels are then filled from the template if empty.
pub fn job_generate_selector(job: &mut batch::Job) {
    let name = job.metadata.name.clone().unwrap_or_default();
    let uid = job.metadata.uid.clone().unwrap_or_default();
    let spec = job.spec.get_or_insert_with(Default::default);
    if spec.manual_selector == Some(true) {
        return;
    }
    let labels = spec
        .template
        .metadata
        .get_or_insert_with(Default::default)
        .labels
        .get_or_insert_with(Default::default);
    for key in [LEGACY_JOB_NAME_LABEL, JOB_NAME_LABEL] {
        labels
            .entry(key.to_string())
            .or_insert_with(|| name.clone());
    }
    for key in [LEGACY_CONTROLLER_UID_LABEL, CONTROLLER_UID_LABEL] {
        labels.entry(key.to_string()).or_insert_with(|| uid.clone());
    }
    let sel = spec.selector.get_or_insert_with(Default::default);
    sel.match_labels
        .get_or_insert_with(Default::default)
        .entry(CONTROLLER_UID_LABEL.to_string())
        .or_insert(uid);
    copy_template_labels(job);
}

fn has_label(errs: &mut Errs, labels: &BTreeMap<String, String>, key: &str, want: &str) {
    let p = FieldPath::root("spec")
        .child("template")
        .child("metadata")
        .child("labels")
        .key(key);
    match labels.get(key) {
        None => errs.push(FieldError::required(&p, format!("must be '{want}'"))),
        Some(v) if v != want => errs.push(FieldError::invalid(
            &p,
            util::json(labels),
            format!("must be '{want}'"),
        )),
        Some(_) => {}
    }
}

/// `validateGeneratedSelector`.
fn generated_selector(errs: &mut Errs, job: &batch::Job, spec: &batch::JobSpec, prefixed: bool) {
    if spec.manual_selector == Some(true) {
        return;
    }
    let Some(sel) = &spec.selector else { return };
    let uid = job.metadata.uid.clone().unwrap_or_default();
    let name = job.metadata.name.clone().unwrap_or_default();
    if uid.is_empty() {
        errs.push(FieldError::required(
            &FieldPath::root("metadata").child("uid"),
            "",
        ));
    }
    let labels = template_labels(spec);
    has_label(errs, &labels, LEGACY_CONTROLLER_UID_LABEL, &uid);
    has_label(errs, &labels, LEGACY_JOB_NAME_LABEL, &name);
    let mut expected = BTreeMap::new();
    if prefixed {
        has_label(errs, &labels, CONTROLLER_UID_LABEL, &uid);
        has_label(errs, &labels, JOB_NAME_LABEL, &name);
        expected.insert(CONTROLLER_UID_LABEL.to_string(), uid.clone());
        expected.insert(JOB_NAME_LABEL.to_string(), name.clone());
    }
    expected.insert(LEGACY_CONTROLLER_UID_LABEL.to_string(), uid);
    expected.insert(LEGACY_JOB_NAME_LABEL.to_string(), name);
    if let Selector::Parsed(s) = Selector::from_meta(Some(sel))
        && !s.matches(&expected)
    {
        errs.push(FieldError::invalid(
            &FieldPath::root("spec").child("selector"),
            util::json(sel),
            "`selector` not auto-generated",
        ));
    }
}

/// `validateJobSpec` (the parts shared with job templates).
pub(super) fn job_spec_common(errs: &mut Errs, spec: &batch::JobSpec, path: &FieldPath) {
    for (name, v) in [
        ("parallelism", spec.parallelism.map(i64::from)),
        ("completions", spec.completions.map(i64::from)),
        ("activeDeadlineSeconds", spec.active_deadline_seconds),
        ("backoffLimit", spec.backoff_limit.map(i64::from)),
        (
            "ttlSecondsAfterFinished",
            spec.ttl_seconds_after_finished.map(i64::from),
        ),
        (
            "backoffLimitPerIndex",
            spec.backoff_limit_per_index.map(i64::from),
        ),
    ] {
        if let Some(v) = v {
            util::nonneg(errs, v, &path.child(name));
        }
    }
    if let Some(m) = spec.max_failed_indexes {
        util::nonneg(errs, i64::from(m), &path.child("maxFailedIndexes"));
        if spec.backoff_limit_per_index.is_none() {
            errs.push(FieldError::required(
                &path.child("backoffLimitPerIndex"),
                "when maxFailedIndexes is specified",
            ));
        }
    }
    if let Some(mb) = &spec.managed_by {
        managed_by(errs, mb, &path.child("managedBy"));
    }
    let mode = spec.completion_mode.as_deref();
    if let Some(m) = mode
        && m != "NonIndexed"
        && m != "Indexed"
    {
        errs.push(FieldError::not_supported(
            &path.child("completionMode"),
            m,
            &["NonIndexed", "Indexed"],
        ));
    }
    if mode == Some("Indexed") {
        if spec.completions.is_none() {
            errs.push(FieldError::required(
                &path.child("completions"),
                "when completion mode is Indexed",
            ));
        }
        if let Some(p) = spec.parallelism.filter(|p| *p > 100_000) {
            errs.push(FieldError::invalid(
                &path.child("parallelism"),
                p,
                "must be less than or equal to 100000 when completion mode is Indexed",
            ));
        }
        if let (Some(c), Some(m)) = (spec.completions, spec.max_failed_indexes)
            && m > c
        {
            errs.push(FieldError::invalid(
                &path.child("maxFailedIndexes"),
                m,
                "must be less than or equal to completions",
            ));
        }
    } else {
        if let Some(b) = spec.backoff_limit_per_index {
            errs.push(FieldError::invalid(
                &path.child("backoffLimitPerIndex"),
                b,
                "requires indexed completion mode",
            ));
        }
        if let Some(m) = spec.max_failed_indexes {
            errs.push(FieldError::invalid(
                &path.child("maxFailedIndexes"),
                m,
                "requires indexed completion mode",
            ));
        }
    }
    if let Some(pfp) = &spec.pod_failure_policy {
        pod_failure_policy(errs, spec, pfp, &path.child("podFailurePolicy"));
    }
    if let Some(sp) = &spec.success_policy {
        if mode != Some("Indexed") {
            errs.push(FieldError::invalid(
                &path.child("successPolicy"),
                util::json(sp),
                "requires indexed completion mode",
            ));
        } else if sp.rules.is_empty() {
            errs.push(FieldError::required(
                &path.child("successPolicy").child("rules"),
                "at least one rules must be specified when the successPolicy is specified",
            ));
        }
    }
    if let Some(prp) = &spec.pod_replacement_policy {
        let pp = path.child("podReplacementPolicy");
        if spec.pod_failure_policy.is_some() {
            if prp != "Failed" {
                errs.push(FieldError::not_supported(&pp, prp, &["Failed"]));
            }
        } else if prp != "Failed" && prp != "TerminatingOrFailed" {
            errs.push(FieldError::not_supported(
                &pp,
                prp,
                &["Failed", "TerminatingOrFailed"],
            ));
        }
    }
    let tp = path.child("template");
    validate_pod_template_spec(errs, &spec.template, &tp);
    let restart = spec
        .template
        .spec
        .as_ref()
        .and_then(|s| s.restart_policy.clone())
        .unwrap_or_default();
    let rp = tp.child("spec").child("restartPolicy");
    if restart == "Always" || restart.is_empty() {
        errs.push(FieldError::required(
            &rp,
            "valid values: \"OnFailure\", \"Never\"",
        ));
    } else if restart != "OnFailure" && restart != "Never" {
        errs.push(FieldError::not_supported(
            &rp,
            &restart,
            &["OnFailure", "Never"],
        ));
    } else if spec.pod_failure_policy.is_some() && restart != "Never" {
        errs.push(FieldError::invalid_str(
            &rp,
            &restart,
            "only \"Never\" is supported when podFailurePolicy is specified",
        ));
    }
}

/// `ValidateJob` minus object metadata.
fn validate_job(job: &batch::Job, prefixed_labels: bool) -> Errs {
    let mut errs = Vec::new();
    kube_finalizers(&mut errs, &job.metadata);
    let default = batch::JobSpec::default();
    let spec = job.spec.as_ref().unwrap_or(&default);
    generated_selector(&mut errs, job, spec, prefixed_labels);
    let sp = FieldPath::root("spec");
    job_spec_common(&mut errs, spec, &sp);
    match &spec.selector {
        None => errs.push(FieldError::required(&sp.child("selector"), "")),
        Some(sel) => util::label_selector(&mut errs, sel, &sp.child("selector"), false),
    }
    let selector = Selector::from_meta(spec.selector.as_ref());
    if !matches!(selector, Selector::Invalid) {
        let labels = template_labels(spec);
        if !selector.matches(&labels) {
            errs.push(FieldError::invalid(
                &sp.child("template").child("metadata").child("labels"),
                util::json(&labels),
                "`selector` does not match template `labels`",
            ));
        }
    }
    if spec.completion_mode.as_deref() == Some("Indexed")
        && let Some(c) = spec.completions.filter(|c| *c > 0)
    {
        let name = job.metadata.name.clone().unwrap_or_default();
        let host = format!("{name}-{}", c - 1);
        if !util::dns_label_msgs(&host).is_empty() {
            errs.push(FieldError::invalid_str(
                &FieldPath::root("metadata").child("name"),
                &name,
                format!("will not able to create pod with invalid DNS label: {host}"),
            ));
        }
    }
    errs
}

fn validate_job_update(job: &batch::Job, old: &batch::Job) -> Errs {
    let old_labels = old.spec.as_ref().map(template_labels).unwrap_or_default();
    let prefixed =
        old_labels.contains_key(JOB_NAME_LABEL) && old_labels.contains_key(CONTROLLER_UID_LABEL);
    let mut errs = validate_job(job, prefixed);
    let (ns, os) = (
        job.spec.clone().unwrap_or_default(),
        old.spec.clone().unwrap_or_default(),
    );
    let sp = FieldPath::root("spec");
    let indexed = ns.completion_mode.as_deref() == Some("Indexed");
    if ns.completions != os.completions {
        if !indexed {
            errs.push(FieldError::invalid(
                &sp.child("completions"),
                util::json_opt(ns.completions.as_ref()),
                util::IMMUTABLE_MSG,
            ));
        } else if let Some(c) = ns.completions
            && Some(c) != ns.parallelism
        {
            errs.push(FieldError::invalid(
                &sp.child("completions"),
                c,
                "can only be modified in tandem with spec.parallelism",
            ));
        }
    }
    util::immutable(&mut errs, &ns.selector, &os.selector, &sp.child("selector"));
    let mut old_template = os.template.clone();
    let suspended_not_started = os.suspend == Some(true)
        && old
            .status
            .as_ref()
            .and_then(|s| s.start_time.as_ref())
            .is_none();
    if suspended_not_started {
        let (t, ot) = (
            ns.template.spec.clone().unwrap_or_default(),
            old_template.spec.get_or_insert_with(Default::default),
        );
        ot.node_selector = t.node_selector;
        ot.tolerations = t.tolerations;
        ot.scheduling_gates = t.scheduling_gates;
        match (&t.affinity, &mut ot.affinity) {
            (None, Some(oa)) => {
                oa.node_affinity = None;
                if *oa == Default::default() {
                    ot.affinity = None;
                }
            }
            (Some(a), None) => {
                ot.affinity = Some(k8s_openapi::api::core::v1::Affinity {
                    node_affinity: a.node_affinity.clone(),
                    ..Default::default()
                })
            }
            (Some(a), Some(oa)) => oa.node_affinity = a.node_affinity.clone(),
            (None, None) => {}
        }
        let meta = old_template.metadata.get_or_insert_with(Default::default);
        let nm = ns.template.metadata.clone().unwrap_or_default();
        meta.annotations = nm.annotations;
        meta.labels = nm.labels;
    }
    util::immutable(
        &mut errs,
        &ns.template,
        &old_template,
        &sp.child("template"),
    );
    util::immutable(
        &mut errs,
        &ns.completion_mode,
        &os.completion_mode,
        &sp.child("completionMode"),
    );
    util::immutable(
        &mut errs,
        &ns.pod_failure_policy,
        &os.pod_failure_policy,
        &sp.child("podFailurePolicy"),
    );
    util::immutable(
        &mut errs,
        &ns.backoff_limit_per_index,
        &os.backoff_limit_per_index,
        &sp.child("backoffLimitPerIndex"),
    );
    util::immutable(
        &mut errs,
        &ns.managed_by,
        &os.managed_by,
        &sp.child("managedBy"),
    );
    util::immutable(
        &mut errs,
        &ns.success_policy,
        &os.success_policy,
        &sp.child("successPolicy"),
    );
    errs
}

impl ApiType for batch::Job {
    fn default_fields(&mut self) {
        let spec = self.spec.get_or_insert_with(Default::default);
        default_job_spec(spec);
        copy_template_labels(self);
        // The status struct is a value type upstream, so it always serializes.
        self.status.get_or_insert_with(Default::default);
    }
    fn validate(&self) -> Vec<FieldError> {
        validate_job(self, true)
    }
    fn validate_update(&self, old: &Self) -> Vec<FieldError> {
        validate_job_update(self, old)
    }
    fn validate_status_update(&self, _old: &Self) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let s = self.status.clone().unwrap_or_default();
        let p = FieldPath::root("status");
        for (name, v) in [
            ("active", s.active),
            ("succeeded", s.succeeded),
            ("failed", s.failed),
            ("ready", s.ready),
            ("terminating", s.terminating),
        ] {
            if let Some(v) = v {
                util::nonneg(&mut errs, i64::from(v), &p.child(name));
            }
        }
        errs
    }
}
