//! CronJob defaulting and validation (mirrors SetDefaults_CronJob and ValidateCronJob* of
//! pkg/apis/batch).

use super::job::job_spec_common;
use super::*;

const TZ_PART: &str = r"^[A-Za-z\.\-_0-9+]{1,14}$";

fn time_zone(errs: &mut Errs, tz: &Option<String>, path: &FieldPath) {
    let Some(tz) = tz else { return };
    let json = util::json(tz);
    if tz.is_empty() {
        errs.push(FieldError::invalid(
            path,
            json,
            "timeZone must be nil or non-empty string",
        ));
        return;
    }
    let part_re = regex::Regex::new(TZ_PART).ok();
    for part in tz.split('/') {
        let ok = part != "."
            && part != ".."
            && !part.starts_with('-')
            && part_re.as_ref().is_some_and(|r| r.is_match(part));
        if !ok {
            errs.push(FieldError::invalid(
                path,
                json,
                format!("unknown time zone {tz}"),
            ));
            return;
        }
    }
    if tz.eq_ignore_ascii_case("local") {
        errs.push(FieldError::invalid(
            path,
            &json,
            "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones",
        ));
    }
    if tz != "UTC" && jiff::tz::TimeZone::get(tz).is_err() {
        errs.push(FieldError::invalid(
            path,
            json,
            format!("unknown time zone {tz}"),
        ));
    }
}

/// `ValidateJobTemplateSpec`.
fn job_template_spec(errs: &mut Errs, t: &batch::JobTemplateSpec, path: &FieldPath) {
    let default = batch::JobSpec::default();
    let spec = t.spec.as_ref().unwrap_or(&default);
    let sp = path.child("spec");
    job_spec_common(errs, spec, &sp);
    if let Some(sel) = &spec.selector {
        errs.push(FieldError::invalid(
            &sp.child("selector"),
            util::json(sel),
            "`selector` will be auto-generated",
        ));
    }
    if spec.manual_selector == Some(true) {
        errs.push(util::not_supported_raw(
            &sp.child("manualSelector"),
            "true".to_string(),
            &["nil", "false"],
        ));
    }
}

fn validate_cron_job_spec(
    errs: &mut Errs,
    spec: &batch::CronJobSpec,
    old: Option<&batch::CronJobSpec>,
) {
    let sp = FieldPath::root("spec");
    let schedule_path = sp.child("schedule");
    if spec.schedule.is_empty() {
        errs.push(FieldError::required(&schedule_path, ""));
    } else {
        if let Err(e) = cron::parse_standard(&spec.schedule) {
            errs.push(FieldError::invalid_str(&schedule_path, &spec.schedule, e));
        }
        let allow_tz = old.is_some_and(|o| o.schedule.contains("TZ"));
        if allow_tz && spec.schedule.contains("TZ") && spec.time_zone.is_some() {
            errs.push(FieldError::invalid_str(
                &schedule_path,
                &spec.schedule,
                "cannot use both timeZone field and TZ or CRON_TZ in schedule",
            ));
        } else if !allow_tz && spec.schedule.contains("TZ") {
            errs.push(FieldError::invalid_str(
                &schedule_path,
                &spec.schedule,
                "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
            ));
        }
    }
    if let Some(s) = spec.starting_deadline_seconds {
        util::nonneg(errs, s, &sp.child("startingDeadlineSeconds"));
    }
    if old.is_none_or(|o| o.time_zone != spec.time_zone) {
        time_zone(errs, &spec.time_zone, &sp.child("timeZone"));
    }
    let cp = sp.child("concurrencyPolicy");
    match spec.concurrency_policy.as_deref().unwrap_or("") {
        "Allow" | "Forbid" | "Replace" => {}
        "" => errs.push(FieldError::required(&cp, "")),
        other => errs.push(FieldError::not_supported(
            &cp,
            other,
            &["Allow", "Forbid", "Replace"],
        )),
    }
    job_template_spec(errs, &spec.job_template, &sp.child("jobTemplate"));
    for (name, v) in [
        (
            "successfulJobsHistoryLimit",
            spec.successful_jobs_history_limit,
        ),
        ("failedJobsHistoryLimit", spec.failed_jobs_history_limit),
    ] {
        if let Some(v) = v {
            util::nonneg(errs, i64::from(v), &sp.child(name));
        }
    }
}

impl ApiType for batch::CronJob {
    fn default_fields(&mut self) {
        // The status struct is a value type upstream, so it always serializes.
        self.status.get_or_insert_with(Default::default);
        let spec = &mut self.spec;
        if spec.concurrency_policy.as_deref().unwrap_or("").is_empty() {
            spec.concurrency_policy = Some("Allow".to_string());
        }
        spec.suspend.get_or_insert(false);
        spec.successful_jobs_history_limit.get_or_insert(3);
        spec.failed_jobs_history_limit.get_or_insert(1);
        let job_spec = spec.job_template.spec.get_or_insert_with(Default::default);
        default_pod_template_spec(&mut job_spec.template);
    }
    fn validate(&self) -> Vec<FieldError> {
        let mut errs = Vec::new();
        kube_finalizers(&mut errs, &self.metadata);
        validate_cron_job_spec(&mut errs, &self.spec, None);
        let name = self.metadata.name.clone().unwrap_or_default();
        if name.len() > 52 {
            errs.push(FieldError::invalid_str(
                &FieldPath::root("metadata").child("name"),
                &name,
                "must be no more than 52 characters",
            ));
        }
        errs
    }
    fn validate_update(&self, old: &Self) -> Vec<FieldError> {
        let mut errs = Vec::new();
        kube_finalizers(&mut errs, &self.metadata);
        validate_cron_job_spec(&mut errs, &self.spec, Some(&old.spec));
        errs
    }
}
