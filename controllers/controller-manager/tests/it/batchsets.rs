//! job, cronjob, daemonset and statefulset controllers against the test apiserver; the tests play
//! the kubelet by writing pod status.

use crate::{cluster, wait_for};
use k8s_openapi::api::apps::v1::{DaemonSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Node, PersistentVolumeClaim, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};

fn pods_of(list: Vec<Pod>, label: &str, value: &str) -> Vec<Pod> {
    list.into_iter()
        .filter(|p| {
            p.metadata.labels.as_ref().and_then(|l| l.get(label)).map(String::as_str) == Some(value)
        })
        .collect()
}

/// Plays the kubelet: sets the pod's phase (and Ready when Running).
async fn set_phase(api: &Api<Pod>, name: &str, phase: &str, exit_code: Option<i32>) {
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
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(serde_json::json!({"status": status})))
        .await
        .unwrap_or_else(|e| panic!("patch status of {name}: {e}"));
}

fn job(name: &str, extra: serde_json::Value) -> Job {
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

fn json_merge(a: &mut serde_json::Value, b: serde_json::Value) {
    if let (Some(a), serde_json::Value::Object(b)) = (a.as_object_mut(), b) {
        for (k, v) in b {
            a.insert(k, v);
        }
    }
}

fn condition(j: &Job, t: &str) -> Option<(String, String)> {
    j.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == t && c.status == "True")
        .map(|c| (c.reason.clone().unwrap_or_default(), c.message.clone().unwrap_or_default()))
}

async fn job_pods(pods: &Api<Pod>, job: &str) -> Vec<Pod> {
    pods_of(pods.list(&ListParams::default()).await.unwrap().items, "batch.kubernetes.io/job-name", job)
}

#[tokio::test]
async fn job_completes_when_its_pods_succeed() {
    let c = cluster("job-controller", &[]).await;
    let jobs: Api<Job> = Api::namespaced(c.client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    jobs.create(&PostParams::default(), &job("pi", serde_json::json!({"completions": 2, "parallelism": 2})))
        .await
        .unwrap();
    let created = wait_for(20, "two job pods", || async {
        let p = job_pods(&pods, "pi").await;
        (p.len() == 2).then_some(p)
    })
    .await;
    for p in &created {
        let m = &p.metadata;
        assert!(m.finalizers.as_ref().unwrap().contains(&"batch.kubernetes.io/job-tracking".to_string()));
        let labels = m.labels.as_ref().unwrap();
        assert!(labels.contains_key("batch.kubernetes.io/controller-uid"));
        assert_eq!(labels.get("job-name").map(String::as_str), Some("pi"));
        let owner = &m.owner_references.as_ref().unwrap()[0];
        assert_eq!((owner.kind.as_str(), owner.controller), ("Job", Some(true)));
        assert!(m.name.as_ref().unwrap().starts_with("pi-"));
    }
    wait_for(20, "active=2", || async {
        let j = jobs.get("pi").await.unwrap();
        (j.status?.active == Some(2)).then_some(())
    })
    .await;
    for p in &created {
        set_phase(&pods, p.metadata.name.as_ref().unwrap(), "Succeeded", None).await;
    }
    let done = wait_for(20, "job Complete", || async {
        let j = jobs.get("pi").await.unwrap();
        condition(&j, "Complete").map(|_| j)
    })
    .await;
    let st = done.status.clone().unwrap();
    assert_eq!(st.succeeded, Some(2));
    assert!(st.completion_time.is_some() && st.start_time.is_some());
    assert_eq!(
        condition(&done, "SuccessCriteriaMet"),
        Some(("CompletionsReached".into(), "Reached expected number of succeeded pods".into()))
    );
    // Counted pods lose the tracking finalizer.
    for p in job_pods(&pods, "pi").await {
        assert!(p.metadata.finalizers.unwrap_or_default().is_empty(), "finalizer kept");
    }
    // No extra pods were created.
    assert_eq!(job_pods(&pods, "pi").await.len(), 2);
}

#[tokio::test]
async fn job_fails_after_backoff_limit() {
    let c = cluster("job-controller", &[]).await;
    let jobs: Api<Job> = Api::namespaced(c.client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    jobs.create(&PostParams::default(), &job("fail", serde_json::json!({"backoffLimit": 0})))
        .await
        .unwrap();
    let p = wait_for(20, "a job pod", || async { job_pods(&pods, "fail").await.pop() }).await;
    set_phase(&pods, p.metadata.name.as_ref().unwrap(), "Failed", Some(1)).await;
    let failed = wait_for(20, "job Failed", || async {
        let j = jobs.get("fail").await.unwrap();
        condition(&j, "Failed").map(|_| j)
    })
    .await;
    assert_eq!(
        condition(&failed, "Failed"),
        Some(("BackoffLimitExceeded".into(), "Job has reached the specified backoff limit".into()))
    );
    assert!(condition(&failed, "FailureTarget").is_some());
    assert_eq!(failed.status.unwrap().failed, Some(1));
    assert_eq!(job_pods(&pods, "fail").await.len(), 1, "no replacement pod");
}

#[tokio::test]
async fn pod_failure_policy_fail_job_rule() {
    let c = cluster("job-controller", &[]).await;
    let jobs: Api<Job> = Api::namespaced(c.client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    let policy = serde_json::json!({"backoffLimit": 5, "podFailurePolicy": {"rules": [
        {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}}]}});
    jobs.create(&PostParams::default(), &job("pfp", policy)).await.unwrap();
    let p = wait_for(20, "a job pod", || async { job_pods(&pods, "pfp").await.pop() }).await;
    let pname = p.metadata.name.clone().unwrap();
    set_phase(&pods, &pname, "Failed", Some(42)).await;
    let failed = wait_for(20, "job Failed", || async {
        let j = jobs.get("pfp").await.unwrap();
        condition(&j, "Failed").map(|_| j)
    })
    .await;
    let (reason, msg) = condition(&failed, "Failed").unwrap();
    assert_eq!(reason, "PodFailurePolicy");
    assert_eq!(
        msg,
        format!("Container main for pod default/{pname} failed with exit code 42 matching FailJob rule at index 0")
    );
}

#[tokio::test]
async fn indexed_job_creates_one_pod_per_index() {
    let c = cluster("job-controller", &[]).await;
    let jobs: Api<Job> = Api::namespaced(c.client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    let spec = serde_json::json!({"completions": 3, "parallelism": 3, "completionMode": "Indexed"});
    jobs.create(&PostParams::default(), &job("idx", spec)).await.unwrap();
    let created = wait_for(20, "three indexed pods", || async {
        let p = job_pods(&pods, "idx").await;
        (p.len() == 3).then_some(p)
    })
    .await;
    let mut idx: Vec<String> = created
        .iter()
        .map(|p| {
            let i = p.metadata.annotations.as_ref().unwrap()["batch.kubernetes.io/job-completion-index"].clone();
            assert_eq!(p.spec.as_ref().unwrap().hostname.as_deref(), Some(format!("idx-{i}").as_str()));
            assert!(p.metadata.name.as_ref().unwrap().starts_with(&format!("idx-{i}-")));
            i
        })
        .collect();
    idx.sort();
    assert_eq!(idx, ["0", "1", "2"]);
    // Index 1 succeeds: completedIndexes says so and the job is not complete yet.
    let by_index = |i: &str| {
        created
            .iter()
            .find(|p| p.metadata.annotations.as_ref().unwrap()["batch.kubernetes.io/job-completion-index"] == i)
            .unwrap()
            .metadata
            .name
            .clone()
            .unwrap()
    };
    set_phase(&pods, &by_index("1"), "Succeeded", None).await;
    wait_for(20, "completedIndexes=1", || async {
        let j = jobs.get("idx").await.unwrap();
        (j.status?.completed_indexes.as_deref() == Some("1")).then_some(())
    })
    .await;
    assert!(condition(&jobs.get("idx").await.unwrap(), "Complete").is_none());
    set_phase(&pods, &by_index("0"), "Succeeded", None).await;
    set_phase(&pods, &by_index("2"), "Succeeded", None).await;
    let done = wait_for(20, "indexed job Complete", || async {
        let j = jobs.get("idx").await.unwrap();
        condition(&j, "Complete").map(|_| j)
    })
    .await;
    assert_eq!(done.status.unwrap().completed_indexes.as_deref(), Some("0-2"));
}

#[tokio::test]
async fn suspended_job_creates_no_pods() {
    let c = cluster("job-controller", &[]).await;
    let jobs: Api<Job> = Api::namespaced(c.client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    jobs.create(&PostParams::default(), &job("sus", serde_json::json!({"suspend": true})))
        .await
        .unwrap();
    let j = wait_for(20, "Suspended condition", || async {
        let j = jobs.get("sus").await.unwrap();
        condition(&j, "Suspended").map(|_| j)
    })
    .await;
    assert!(j.status.unwrap().start_time.is_none());
    assert!(job_pods(&pods, "sus").await.is_empty());
    jobs.patch("sus", &PatchParams::default(), &Patch::Merge(serde_json::json!({"spec": {"suspend": false}})))
        .await
        .unwrap();
    wait_for(20, "pod after resume", || async { job_pods(&pods, "sus").await.pop() }).await;
    let _ = jobs.delete("sus", &DeleteParams::default()).await;
}
