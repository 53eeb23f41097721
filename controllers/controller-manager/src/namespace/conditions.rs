//! Namespace deletion status conditions (upstream
//! `pkg/controller/namespace/deletion/status_condition_utils.go`): each deletion pass sets all
//! five condition types, True with the failure or False with the "ok" reason and message.

use k8s_openapi::api::core::v1::{NamespaceCondition, NamespaceStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use std::collections::BTreeMap;

pub const DISCOVERY_FAILURE: &str = "NamespaceDeletionDiscoveryFailure";
pub const GV_PARSING_FAILURE: &str = "NamespaceDeletionGroupVersionParsingFailure";
pub const CONTENT_FAILURE: &str = "NamespaceDeletionContentFailure";
pub const CONTENT_REMAINING: &str = "NamespaceContentRemaining";
pub const FINALIZERS_REMAINING: &str = "NamespaceFinalizersRemaining";

/// (type, ok reason, ok message), in upstream order.
const TYPES: [(&str, &str, &str); 5] = [
    (
        DISCOVERY_FAILURE,
        "ResourcesDiscovered",
        "All resources successfully discovered",
    ),
    (
        GV_PARSING_FAILURE,
        "ParsedGroupVersions",
        "All legacy kube types successfully parsed",
    ),
    (
        CONTENT_FAILURE,
        "ContentDeleted",
        "All content successfully deleted, may be waiting on finalization",
    ),
    (
        CONTENT_REMAINING,
        "ContentRemoved",
        "All content successfully removed",
    ),
    (
        FINALIZERS_REMAINING,
        "ContentRemoved",
        "All content successfully removed",
    ),
];

fn failing(type_: &str, reason: &str, message: String) -> NamespaceCondition {
    NamespaceCondition {
        type_: type_.to_string(),
        status: "True".into(),
        reason: Some(reason.into()),
        message: Some(message),
        last_transition_time: Some(Time(jiff::Timestamp::now())),
    }
}

/// Collects the failures of one deletion pass.
#[derive(Default)]
pub struct ConditionUpdater {
    new: Vec<NamespaceCondition>,
    content_errors: Vec<String>,
}

impl ConditionUpdater {
    pub fn discovery_failed(&mut self, failing_groups: usize, err: &str) {
        self.new.push(failing(
            DISCOVERY_FAILURE,
            "DiscoveryFailed",
            format!("Discovery failed for some groups, {failing_groups} failing: {err}"),
        ));
    }

    pub fn content_error(&mut self, err: String) {
        self.content_errors.push(err);
    }

    /// Remaining instances per `resource.group` and per finalizer.
    pub fn content_totals(
        &mut self,
        per_resource: &BTreeMap<String, usize>,
        per_finalizer: &BTreeMap<String, usize>,
    ) {
        let mut res: Vec<String> = per_resource
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(gr, n)| format!("{gr} has {n} resource instances"))
            .collect();
        if !per_resource.is_empty() {
            res.sort();
            self.new.push(failing(
                CONTENT_REMAINING,
                "SomeResourcesRemain",
                format!("Some resources are remaining: {}", res.join(", ")),
            ));
        }
        let mut fin: Vec<String> = per_finalizer
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(f, n)| format!("{f} in {n} resource instances"))
            .collect();
        if !per_finalizer.is_empty() {
            fin.sort();
            self.new.push(failing(
                FINALIZERS_REMAINING,
                "SomeFinalizerRemain",
                format!("Some finalizers are remaining: {}", fin.join(", ")),
            ));
        }
    }

    /// Writes all five conditions into `status`; returns whether anything changed.
    pub fn update(mut self, status: &mut NamespaceStatus) -> bool {
        if !self.content_errors.is_empty() && !self.new.iter().any(|c| c.type_ == CONTENT_FAILURE) {
            self.content_errors.sort();
            let n = self.content_errors.len();
            self.new.push(failing(
                CONTENT_FAILURE,
                "ContentDeletionFailed",
                format!(
                    "Failed to delete all resource types, {n} remaining: {}",
                    self.content_errors.join(", ")
                ),
            ));
        }
        let conds = status.conditions.get_or_insert_with(Vec::new);
        let mut changed = false;
        for (type_, ok_reason, ok_message) in TYPES {
            let new = self
                .new
                .iter()
                .find(|c| c.type_ == type_)
                .cloned()
                .unwrap_or_else(|| NamespaceCondition {
                    type_: type_.into(),
                    status: "False".into(),
                    reason: Some(ok_reason.into()),
                    message: Some(ok_message.into()),
                    last_transition_time: Some(Time(jiff::Timestamp::now())),
                });
            match conds.iter_mut().find(|c| c.type_ == type_) {
                None => {
                    conds.push(new);
                    changed = true;
                }
                Some(old) => {
                    if old.status != new.status
                        || old.reason != new.reason
                        || old.message != new.message
                    {
                        if old.status != new.status {
                            old.last_transition_time = new.last_transition_time;
                        }
                        old.status = new.status;
                        old.reason = new.reason;
                        old.message = new.message;
                        changed = true;
                    }
                }
            }
        }
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_every_condition_and_reports_remaining_content() {
        let mut u = ConditionUpdater::default();
        let res = BTreeMap::from([("pods.".to_string(), 2)]);
        let fin = BTreeMap::from([("example.com/x".to_string(), 1)]);
        u.content_totals(&res, &fin);
        let mut st = NamespaceStatus::default();
        assert!(u.update(&mut st));
        let c = st.conditions.clone().unwrap();
        assert_eq!(c.len(), 5);
        let get = |t: &str| c.iter().find(|x| x.type_ == t).unwrap().clone();
        assert_eq!(get(DISCOVERY_FAILURE).status, "False");
        assert_eq!(
            get(DISCOVERY_FAILURE).reason.as_deref(),
            Some("ResourcesDiscovered")
        );
        let rem = get(CONTENT_REMAINING);
        assert_eq!(rem.reason.as_deref(), Some("SomeResourcesRemain"));
        assert_eq!(
            rem.message.as_deref(),
            Some("Some resources are remaining: pods. has 2 resource instances")
        );
        assert_eq!(
            get(FINALIZERS_REMAINING).message.as_deref(),
            Some("Some finalizers are remaining: example.com/x in 1 resource instances")
        );
        // The same pass again changes nothing.
        let mut u = ConditionUpdater::default();
        u.content_totals(&res, &fin);
        assert!(!u.update(&mut st));
        // All clear: back to the ok variants.
        assert!(ConditionUpdater::default().update(&mut st));
        let c = st.conditions.unwrap();
        assert!(c.iter().all(|x| x.status == "False"));
    }
}
