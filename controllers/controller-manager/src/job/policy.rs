//! Job failure/success rules (mirrors upstream `pkg/controller/job/pod_failure_policy.go`,
//! `success_policy.go`, `backoff_utils.go` and the condition helpers of `job_controller.go`):
//! matching failed pods against podFailurePolicy, successPolicy rules, the pod recreation
//! backoff (10 s doubling, capped at 6 min) and job conditions.

use super::indexes::{Indexes, rule_met};
use k8s_openapi::api::batch::v1::{Job, JobCondition, PodFailurePolicy, SuccessPolicy};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use std::time::Duration;

/// What a pod failure policy rule decided for a failed pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    FailJob(String),
    FailIndex,
    Ignore,
    Count,
}

/// Matches a failed pod against the rules (first match wins); `None` if nothing matched.
pub fn match_pod_failure_policy(policy: Option<&PodFailurePolicy>, pod: &Pod) -> Option<Action> {
    let policy = policy?;
    let status = pod.status.as_ref();
    let ns = pod.metadata.namespace.as_deref().unwrap_or("");
    let name = pod.metadata.name.as_deref().unwrap_or("");
    for (index, rule) in policy.rules.iter().enumerate() {
        let matched: Option<String> = if let Some(req) = &rule.on_exit_codes {
            let lists = status
                .map(|s| {
                    let mut v = s.container_statuses.clone().unwrap_or_default();
                    v.extend(s.init_container_statuses.clone().unwrap_or_default());
                    v
                })
                .unwrap_or_default();
            lists.into_iter().find_map(|cs| {
                let term = cs.state.as_ref()?.terminated.as_ref()?;
                if term.exit_code == 0 {
                    return None;
                }
                if req.container_name.as_ref().is_some_and(|n| *n != cs.name) {
                    return None;
                }
                let listed = req.values.contains(&term.exit_code);
                let hit = match req.operator.as_str() {
                    "In" => listed,
                    "NotIn" => !listed,
                    _ => false,
                };
                hit.then(|| {
                    format!(
                        "Container {} for pod {ns}/{name} failed with exit code {} matching {} rule at index {index}",
                        cs.name, term.exit_code, rule.action
                    )
                })
            })
        } else if let Some(patterns) = &rule.on_pod_conditions {
            status
                .and_then(|s| s.conditions.as_ref())
                .and_then(|conds| {
                    conds.iter().find(|c| {
                        patterns.iter().any(|p| {
                            p.type_ == c.type_ && p.status.as_deref().unwrap_or("True") == c.status
                        })
                    })
                })
                .map(|c| {
                    format!(
                        "Pod {ns}/{name} has condition {} matching {} rule at index {index}",
                        c.type_, rule.action
                    )
                })
        } else {
            None
        };
        if let Some(msg) = matched {
            return Some(match rule.action.as_str() {
                "FailJob" => Action::FailJob(msg),
                "FailIndex" => Action::FailIndex,
                "Ignore" => Action::Ignore,
                _ => Action::Count,
            });
        }
    }
    None
}

/// Whether a failed pod counts towards backoffLimit (it does unless an Ignore rule matched).
pub fn counts_as_failure(job: &Job, pod: &Pod) -> bool {
    let policy = job
        .spec
        .as_ref()
        .and_then(|s| s.pod_failure_policy.as_ref());
    match_pod_failure_policy(policy, pod) != Some(Action::Ignore)
}

/// The `Matched rules at index N` message of the first successPolicy rule met.
pub fn match_success_policy(
    policy: Option<&SuccessPolicy>,
    completions: i32,
    succeeded: &Indexes,
) -> Option<String> {
    let policy = policy?;
    if succeeded.total() == 0 {
        return None;
    }
    for (i, rule) in policy.rules.iter().enumerate() {
        let met = match &rule.succeeded_indexes {
            Some(s) => {
                let req = Indexes::parse(s, completions);
                req.total() > 0 && rule_met(&req, succeeded, rule.succeeded_count)
            }
            None => rule
                .succeeded_count
                .is_some_and(|c| succeeded.total() >= usize::try_from(c).unwrap_or(usize::MAX)),
        };
        if met {
            return Some(format!("Matched rules at index {i}"));
        }
    }
    None
}

pub const DEFAULT_BACKOFF: Duration = Duration::from_secs(10);
pub const MAX_BACKOFF: Duration = Duration::from_secs(360);

/// Failures since the last success and when the last one finished (upstream `backoffRecord`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BackoffRecord {
    pub failures_after_last_success: u32,
    pub last_failure: Option<jiff::Timestamp>,
}

impl BackoffRecord {
    /// Folds newly finished pods (`(finished_at, succeeded)`) into the record.
    pub fn update(&self, mut finished: Vec<(jiff::Timestamp, bool)>) -> BackoffRecord {
        finished.sort_by_key(|f| f.0);
        let mut r = self.clone();
        for (at, ok) in finished {
            if ok {
                if r.last_failure.is_none_or(|l| at >= l) {
                    r.failures_after_last_success = 0;
                    r.last_failure = None;
                }
            } else {
                r.failures_after_last_success += 1;
                r.last_failure = Some(r.last_failure.map_or(at, |l| l.max(at)));
            }
        }
        r
    }

    /// How long to wait before creating a replacement pod.
    pub fn remaining(&self, now: jiff::Timestamp) -> Duration {
        let Some(last) = self.last_failure else {
            return Duration::ZERO;
        };
        if self.failures_after_last_success == 0 {
            return Duration::ZERO;
        }
        let exp = (self.failures_after_last_success - 1).min(16);
        let backoff = DEFAULT_BACKOFF.saturating_mul(1 << exp).min(MAX_BACKOFF);
        let elapsed = Duration::try_from(now.duration_since(last)).unwrap_or(Duration::ZERO);
        backoff.saturating_sub(elapsed)
    }
}

/// When a finished pod finished: the latest container termination, else its Ready condition
/// change, else its deletion time, else `now`.
pub fn finish_time(pod: &Pod, now: jiff::Timestamp) -> jiff::Timestamp {
    let status = pod.status.as_ref();
    let term = status
        .and_then(|s| s.container_statuses.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|c| c.state.as_ref()?.terminated.as_ref()?.finished_at.as_ref())
        .map(|t| t.0)
        .max();
    if let Some(t) = term {
        return t;
    }
    let ready = status
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready" && c.status == "False"))
        .and_then(|c| c.last_transition_time.as_ref())
        .map(|t| t.0);
    ready
        .or(pod.metadata.deletion_timestamp.as_ref().map(|t| t.0))
        .unwrap_or(now)
}

pub fn new_condition(
    type_: &str,
    reason: &str,
    message: &str,
    now: jiff::Timestamp,
) -> JobCondition {
    JobCondition {
        type_: type_.to_string(),
        status: "True".into(),
        reason: Some(reason.to_string()),
        message: Some(message.to_string()),
        last_probe_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    }
}

/// The condition of this type with status True.
pub fn true_condition<'a>(job: &'a Job, type_: &str) -> Option<&'a JobCondition> {
    job.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_ && c.status == "True")
}

/// Complete or Failed is True.
pub fn is_finished(job: &Job) -> bool {
    true_condition(job, "Complete").is_some() || true_condition(job, "Failed").is_some()
}

/// Sets a condition's status (upstream `ensureJobConditionStatus`): an absent condition is only
/// added when True; returns whether anything changed.
pub fn ensure_condition(
    conds: &mut Vec<JobCondition>,
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: jiff::Timestamp,
) -> bool {
    if let Some(c) = conds.iter_mut().find(|c| c.type_ == type_) {
        if c.status == status
            && c.reason.as_deref() == Some(reason)
            && c.message.as_deref() == Some(message)
        {
            return false;
        }
        if c.status != status {
            c.last_transition_time = Some(Time(now));
        }
        c.status = status.to_string();
        c.reason = Some(reason.to_string());
        c.message = Some(message.to_string());
        c.last_probe_time = Some(Time(now));
        return true;
    }
    if status == "True" {
        let mut c = new_condition(type_, reason, message, now);
        c.status = status.to_string();
        conds.push(c);
        return true;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::batch::v1::{
        PodFailurePolicyOnExitCodesRequirement, PodFailurePolicyRule,
    };
    use k8s_openapi::api::core::v1::{
        ContainerState, ContainerStateTerminated, ContainerStatus, PodStatus,
    };

    fn failed_pod(code: i32) -> Pod {
        let mut p = Pod::default();
        p.metadata.namespace = Some("ns".into());
        p.metadata.name = Some("p".into());
        p.status = Some(PodStatus {
            phase: Some("Failed".into()),
            container_statuses: Some(vec![ContainerStatus {
                name: "main".into(),
                state: Some(ContainerState {
                    terminated: Some(ContainerStateTerminated {
                        exit_code: code,
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }]),
            ..Default::default()
        });
        p
    }

    fn rule(action: &str, op: &str, values: Vec<i32>) -> PodFailurePolicyRule {
        PodFailurePolicyRule {
            action: action.into(),
            on_exit_codes: Some(PodFailurePolicyOnExitCodesRequirement {
                operator: op.into(),
                values,
                container_name: None,
            }),
            on_pod_conditions: None,
        }
    }

    #[test]
    fn exit_code_rules_first_match_wins() {
        let policy = PodFailurePolicy {
            rules: vec![
                rule("Ignore", "In", vec![1]),
                rule("FailJob", "NotIn", vec![1, 2]),
            ],
        };
        assert_eq!(
            match_pod_failure_policy(Some(&policy), &failed_pod(1)),
            Some(Action::Ignore)
        );
        assert_eq!(
            match_pod_failure_policy(Some(&policy), &failed_pod(2)),
            None
        );
        assert_eq!(
            match_pod_failure_policy(Some(&policy), &failed_pod(42)),
            Some(Action::FailJob(
                "Container main for pod ns/p failed with exit code 42 matching FailJob rule at index 1".into()
            ))
        );
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let t0 = jiff::Timestamp::from_second(1_000_000).unwrap();
        let r = BackoffRecord::default().update(vec![(t0, false)]);
        assert_eq!(r.remaining(t0), Duration::from_secs(10));
        let r = r.update(vec![(t0, false), (t0, false)]);
        assert_eq!(r.remaining(t0), Duration::from_secs(40));
        let r = r.update((0..10).map(|_| (t0, false)).collect());
        assert_eq!(r.remaining(t0), MAX_BACKOFF);
        let later = t0 + jiff::SignedDuration::from_secs(400);
        assert_eq!(r.remaining(later), Duration::ZERO);
        let r = r.update(vec![(later, true)]);
        assert_eq!(r.failures_after_last_success, 0);
    }

    #[test]
    fn conditions_are_only_added_when_true() {
        let now = jiff::Timestamp::from_second(0).unwrap();
        let mut c = Vec::new();
        assert!(!ensure_condition(
            &mut c,
            "Suspended",
            "False",
            "JobResumed",
            "Job resumed",
            now
        ));
        assert!(ensure_condition(
            &mut c,
            "Suspended",
            "True",
            "JobSuspended",
            "Job suspended",
            now
        ));
        assert!(ensure_condition(
            &mut c,
            "Suspended",
            "False",
            "JobResumed",
            "Job resumed",
            now
        ));
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].status, "False");
    }
}
