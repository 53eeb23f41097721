//! Pod strategy (mirrors pkg/registry/core/pod/strategy.go): status set on create, graceful
//! deletion, selectable fields.

use crate::strategy::{GracefulDelete, Strategy};
use apiserver_apimachinery::FieldError;
use apiserver_apis::ApiType;
use k8s_openapi::api::core::v1::Pod;
use std::collections::BTreeMap;

pub struct PodStrategy;

impl Strategy<Pod> for PodStrategy {
    fn has_status(&self) -> bool {
        true
    }
    fn tracks_generation(&self) -> bool {
        true
    }
    fn prepare_for_create(&self, pod: &mut Pod) {
        apiserver_apis::strategy::pod_prepare_for_create(pod);
    }
    fn validate(&self, pod: &Pod) -> Vec<FieldError> {
        pod.validate()
    }
    fn validate_update(&self, new: &Pod, old: &Pod) -> Vec<FieldError> {
        new.validate_update(old)
    }
    fn field_labels(&self) -> &'static [&'static str] {
        &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ]
    }
    fn fields(&self, pod: &Pod, out: &mut BTreeMap<String, String>) {
        let spec = pod.spec.as_ref();
        let status = pod.status.as_ref();
        out.insert(
            "spec.nodeName".into(),
            spec.and_then(|s| s.node_name.clone()).unwrap_or_default(),
        );
        out.insert(
            "spec.restartPolicy".into(),
            spec.and_then(|s| s.restart_policy.clone())
                .unwrap_or_default(),
        );
        out.insert(
            "spec.schedulerName".into(),
            spec.and_then(|s| s.scheduler_name.clone())
                .unwrap_or_default(),
        );
        out.insert(
            "spec.serviceAccountName".into(),
            spec.and_then(|s| s.service_account_name.clone())
                .unwrap_or_default(),
        );
        out.insert(
            "spec.hostNetwork".into(),
            spec.and_then(|s| s.host_network)
                .unwrap_or(false)
                .to_string(),
        );
        out.insert(
            "status.phase".into(),
            status.and_then(|s| s.phase.clone()).unwrap_or_default(),
        );
        out.insert(
            "status.podIP".into(),
            status.and_then(|s| s.pod_ip.clone()).unwrap_or_default(),
        );
        out.insert(
            "status.nominatedNodeName".into(),
            status
                .and_then(|s| s.nominated_node_name.clone())
                .unwrap_or_default(),
        );
    }
    fn graceful_delete(&self, pod: &Pod, requested: Option<i64>) -> GracefulDelete {
        let spec = pod.spec.as_ref();
        let grace = requested
            .or_else(|| spec.and_then(|s| s.termination_grace_period_seconds))
            .unwrap_or(30);
        let unscheduled = spec
            .and_then(|s| s.node_name.as_deref())
            .is_none_or(str::is_empty);
        let finished = matches!(
            pod.status.as_ref().and_then(|s| s.phase.as_deref()),
            Some("Succeeded" | "Failed")
        );
        // A negative grace period means "as soon as possible": one second, as upstream.
        let grace = if grace < 0 { 1 } else { grace };
        if grace == 0 || unscheduled || finished {
            GracefulDelete::Now
        } else {
            GracefulDelete::After(grace)
        }
    }
    fn return_deleted_object(&self) -> bool {
        true
    }
}
