//! job, cronjob, daemonset and statefulset controllers against the test apiserver; the tests play
//! the kubelet by writing pod status. Shared helpers here; one file per controller family.

mod cronjob;
mod daemonset;
mod job;
mod statefulset;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, Patch, PatchParams};

pub(super) fn pods_of(list: Vec<Pod>, label: &str, value: &str) -> Vec<Pod> {
    list.into_iter()
        .filter(|p| {
            p.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(label))
                .map(String::as_str)
                == Some(value)
        })
        .collect()
}

/// Plays the kubelet: sets the pod's phase (and Ready when Running).
pub(super) async fn set_phase(api: &Api<Pod>, name: &str, phase: &str, exit_code: Option<i32>) {
    let ready = if phase == "Running" { "True" } else { "False" };
    let mut status = serde_json::json!({
        "phase": phase,
        "conditions": [{"type": "Ready", "status": ready,
                        "lastTransitionTime": "2024-01-01T00:00:00Z"}],
    });
    if let Some(code) = exit_code {
        status["containerStatuses"] = serde_json::json!([{
            "name": "main", "image": "busybox", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"terminated": {"exitCode": code, "reason": "Error",
                                      "finishedAt": "2024-01-01T00:00:00Z"}},
        }]);
    }
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"status": status})),
    )
    .await
    .unwrap_or_else(|e| panic!("patch status of {name}: {e}"));
}

pub(super) fn job(name: &str, extra: serde_json::Value) -> Job {
    let mut j = serde_json::json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "template": {"spec": {"restartPolicy": "Never",
                "containers": [{"name": "main", "image": "busybox"}]}},
        },
    });
    json_merge(&mut j["spec"], extra);
    serde_json::from_value(j).unwrap()
}

pub(super) fn json_merge(a: &mut serde_json::Value, b: serde_json::Value) {
    if let (Some(a), serde_json::Value::Object(b)) = (a.as_object_mut(), b) {
        for (k, v) in b {
            a.insert(k, v);
        }
    }
}

pub(super) fn condition(j: &Job, t: &str) -> Option<(String, String)> {
    j.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == t && c.status == "True")
        .map(|c| {
            (
                c.reason.clone().unwrap_or_default(),
                c.message.clone().unwrap_or_default(),
            )
        })
}

pub(super) async fn job_pods(pods: &Api<Pod>, job: &str) -> Vec<Pod> {
    pods_of(
        pods.list(&ListParams::default()).await.unwrap().items,
        "batch.kubernetes.io/job-name",
        job,
    )
}

pub(super) fn phase(p: &Pod) -> &str {
    p.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}
