//! job-controller: completion, failure, indexes, suspend, deadline, orphans.

use super::*;
use crate::{cluster, wait_for};
use kube::api::{DeleteParams, PostParams};

#[tokio::test]
async fn job_completes_when_its_pods_succeed() {
    let c = cluster("job-controller", &[]).await;
    let jobs: Api<Job> = Api::namespaced(c.client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    jobs.create(
        &PostParams::default(),
        &job(
            "pi",
            serde_json::json!({"completions": 2, "parallelism": 2}),
        ),
    )
    .await
    .unwrap();
    let created = wait_for(20, "two job pods", || async {
        let p = job_pods(&pods, "pi").await;
        (p.len() == 2).then_some(p)
    })
    .await;
    for p in &created {
        let m = &p.metadata;
        assert!(
            m.finalizers
                .as_ref()
                .unwrap()
                .contains(&"batch.kubernetes.io/job-tracking".to_string())
        );
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
        Some((
            "CompletionsReached".into(),
            "Reached expected number of succeeded pods".into()
        ))
    );
    // Counted pods lose the tracking finalizer.
    for p in job_pods(&pods, "pi").await {
        assert!(
            p.metadata.finalizers.unwrap_or_default().is_empty(),
            "finalizer kept"
        );
    }
    // No extra pods were created.
    assert_eq!(job_pods(&pods, "pi").await.len(), 2);
    // Events: pods created and the job completed.
    let events: Api<k8s_openapi::api::events::v1::Event> =
        Api::namespaced(c.client.clone(), "default");
    let reasons = wait_for(20, "job events", || async {
        let reasons: Vec<String> = events
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("pi"))
            .filter_map(|e| e.reason)
            .collect();
        (reasons.iter().any(|r| r == "Completed")).then_some(reasons)
    })
    .await;
    assert!(
        reasons.iter().any(|r| r == "SuccessfulCreate"),
        "{reasons:?}"
    );
}

#[tokio::test]
async fn job_fails_after_backoff_limit() {
    let c = cluster("job-controller", &[]).await;
    let jobs: Api<Job> = Api::namespaced(c.client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    jobs.create(
        &PostParams::default(),
        &job("fail", serde_json::json!({"backoffLimit": 0})),
    )
    .await
    .unwrap();
    let p = wait_for(20, "a job pod", || async {
        job_pods(&pods, "fail").await.pop()
    })
    .await;
    set_phase(&pods, p.metadata.name.as_ref().unwrap(), "Failed", Some(1)).await;
    let failed = wait_for(20, "job Failed", || async {
        let j = jobs.get("fail").await.unwrap();
        condition(&j, "Failed").map(|_| j)
    })
    .await;
    assert_eq!(
        condition(&failed, "Failed"),
        Some((
            "BackoffLimitExceeded".into(),
            "Job has reached the specified backoff limit".into()
        ))
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
    jobs.create(&PostParams::default(), &job("pfp", policy))
        .await
        .unwrap();
    let p = wait_for(20, "a job pod", || async {
        job_pods(&pods, "pfp").await.pop()
    })
    .await;
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
        format!(
            "Container main for pod default/{pname} failed with exit code 42 matching FailJob rule at index 0"
        )
    );
}

#[tokio::test]
async fn indexed_job_creates_one_pod_per_index() {
    let c = cluster("job-controller", &[]).await;
    let jobs: Api<Job> = Api::namespaced(c.client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    let spec = serde_json::json!({"completions": 3, "parallelism": 3, "completionMode": "Indexed"});
    jobs.create(&PostParams::default(), &job("idx", spec))
        .await
        .unwrap();
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
            .find(|p| {
                p.metadata.annotations.as_ref().unwrap()["batch.kubernetes.io/job-completion-index"]
                    == i
            })
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
    assert_eq!(
        done.status.unwrap().completed_indexes.as_deref(),
        Some("0-2")
    );
}

#[tokio::test]
async fn suspended_job_creates_no_pods() {
    let c = cluster("job-controller", &[]).await;
    let jobs: Api<Job> = Api::namespaced(c.client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    jobs.create(
        &PostParams::default(),
        &job("sus", serde_json::json!({"suspend": true})),
    )
    .await
    .unwrap();
    let j = wait_for(20, "Suspended condition", || async {
        let j = jobs.get("sus").await.unwrap();
        condition(&j, "Suspended").map(|_| j)
    })
    .await;
    assert!(j.status.unwrap().start_time.is_none());
    assert!(job_pods(&pods, "sus").await.is_empty());
    jobs.patch(
        "sus",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"spec": {"suspend": false}})),
    )
    .await
    .unwrap();
    wait_for(20, "pod after resume", || async {
        job_pods(&pods, "sus").await.pop()
    })
    .await;
    let _ = jobs.delete("sus", &DeleteParams::default()).await;
}

#[tokio::test]
async fn job_deadline_exceeded_removes_pods() {
    let c = cluster("job-controller", &[]).await;
    let jobs: Api<Job> = Api::namespaced(c.client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    jobs.create(
        &PostParams::default(),
        &job("late", serde_json::json!({"activeDeadlineSeconds": 2})),
    )
    .await
    .unwrap();
    wait_for(20, "a job pod", || async {
        job_pods(&pods, "late").await.pop()
    })
    .await;
    let failed = wait_for(20, "job Failed", || async {
        let j = jobs.get("late").await.unwrap();
        condition(&j, "Failed").map(|_| j)
    })
    .await;
    assert_eq!(
        condition(&failed, "Failed"),
        Some((
            "DeadlineExceeded".into(),
            "Job was active longer than specified deadline".into()
        ))
    );
    let st = failed.status.unwrap();
    assert_eq!((st.active, st.failed), (Some(0), Some(1)));
    // The running pod was deleted (and, without a kubelet, is gone once its finalizer is).
    wait_for(20, "pods gone", || async {
        job_pods(&pods, "late").await.is_empty().then_some(())
    })
    .await;
}

#[tokio::test]
async fn failed_pod_is_replaced_after_backoff() {
    let c = cluster("job-controller", &[]).await;
    let jobs: Api<Job> = Api::namespaced(c.client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    jobs.create(
        &PostParams::default(),
        &job("retry", serde_json::json!({"backoffLimit": 3})),
    )
    .await
    .unwrap();
    let first = wait_for(20, "a job pod", || async {
        job_pods(&pods, "retry").await.pop()
    })
    .await;
    set_phase(
        &pods,
        first.metadata.name.as_ref().unwrap(),
        "Failed",
        Some(1),
    )
    .await;
    let t0 = std::time::Instant::now();
    wait_for(20, "failed=1", || async {
        (jobs.get("retry").await.unwrap().status?.failed == Some(1)).then_some(())
    })
    .await;
    let second = wait_for(25, "a replacement pod", || async {
        job_pods(&pods, "retry")
            .await
            .into_iter()
            .find(|p| p.metadata.uid != first.metadata.uid)
    })
    .await;
    // The finish time the kubelet reported is long past, so the 10 s backoff has elapsed.
    assert!(t0.elapsed() < std::time::Duration::from_secs(20));
    set_phase(
        &pods,
        second.metadata.name.as_ref().unwrap(),
        "Succeeded",
        None,
    )
    .await;
    let done = wait_for(20, "job Complete", || async {
        let j = jobs.get("retry").await.unwrap();
        condition(&j, "Complete").map(|_| j)
    })
    .await;
    let st = done.status.unwrap();
    assert_eq!((st.succeeded, st.failed), (Some(1), Some(1)));
}

#[tokio::test]
async fn orphaned_job_pods_lose_the_tracking_finalizer() {
    let c = cluster("job-controller", &[]).await;
    let jobs: Api<Job> = Api::namespaced(c.client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    jobs.create(&PostParams::default(), &job("gone", serde_json::json!({})))
        .await
        .unwrap();
    let p = wait_for(20, "a job pod", || async {
        job_pods(&pods, "gone").await.pop()
    })
    .await;
    jobs.delete("gone", &DeleteParams::background())
        .await
        .unwrap();
    let name = p.metadata.name.unwrap();
    wait_for(20, "finalizer removed", || async {
        let p = pods.get(&name).await.ok()?;
        p.metadata
            .finalizers
            .unwrap_or_default()
            .is_empty()
            .then_some(())
    })
    .await;
}
