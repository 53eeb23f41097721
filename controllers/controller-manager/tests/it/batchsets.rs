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
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"status": status})),
    )
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

async fn job_pods(pods: &Api<Pod>, job: &str) -> Vec<Pod> {
    pods_of(
        pods.list(&ListParams::default()).await.unwrap().items,
        "batch.kubernetes.io/job-name",
        job,
    )
}

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
async fn cronjob_creates_a_job_for_a_missed_schedule() {
    let c = cluster("cronjob-controller,job-controller", &[]).await;
    let cjs: Api<CronJob> = Api::namespaced(c.client.clone(), "default");
    let jobs: Api<Job> = Api::namespaced(c.client.clone(), "default");
    let cj: CronJob = serde_json::from_value(serde_json::json!({
        "apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": {"name": "tick"},
        "spec": {"schedule": "* * * * *", "timeZone": "Etc/UTC", "jobTemplate": {
            "metadata": {"labels": {"from": "tick"}},
            "spec": {"template": {"spec": {"restartPolicy": "Never",
                "containers": [{"name": "main", "image": "busybox"}]}}}}},
    }))
    .unwrap();
    let created = cjs.create(&PostParams::default(), &cj).await.unwrap();
    // Pretend the last run was two minutes ago: the current minute's run is due now.
    let earlier = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(120);
    let mut with_status = created.clone();
    with_status.status = Some(k8s_openapi::api::batch::v1::CronJobStatus {
        last_schedule_time: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            earlier,
        )),
        ..Default::default()
    });
    cjs.replace_status("tick", &PostParams::default(), &with_status)
        .await
        .unwrap();
    let job = wait_for(20, "a job from the cronjob", || async {
        jobs.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .next()
    })
    .await;
    let now_min = jiff::Timestamp::now().as_second().div_euclid(60);
    let name = job.metadata.name.clone().unwrap();
    let minutes: i64 = name.strip_prefix("tick-").unwrap().parse().unwrap();
    assert!(
        minutes == now_min || minutes == now_min - 1,
        "{name} vs {now_min}"
    );
    let stamp = &job.metadata.annotations.as_ref().unwrap()["batch.kubernetes.io/cronjob-scheduled-timestamp"];
    let t: jiff::Timestamp = stamp.parse().unwrap();
    assert_eq!(t.as_second(), minutes * 60);
    assert!(stamp.ends_with('Z'), "{stamp}");
    assert_eq!(job.metadata.labels.as_ref().unwrap()["from"], "tick");
    let owner = &job.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.controller),
        ("CronJob", Some(true))
    );
    let st = wait_for(20, "cronjob status", || async {
        let st = cjs.get("tick").await.unwrap().status?;
        (st.active.as_ref().is_some_and(|a| a.len() == 1)
            && st
                .last_schedule_time
                .as_ref()
                .is_some_and(|t| t.0.as_second() == minutes * 60))
        .then_some(st)
    })
    .await;
    assert_eq!(st.active.unwrap()[0].name.as_deref(), Some(name.as_str()));
    // Only one job for that time.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let n = jobs.list(&ListParams::default()).await.unwrap().items.len();
    assert!(n <= 2, "{n} jobs");
    // The job controller runs it; once its pod succeeds the CronJob sees the Job complete.
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    let pod = wait_for(20, "the job's pod", || async {
        job_pods(&pods, &name).await.pop()
    })
    .await;
    set_phase(
        &pods,
        pod.metadata.name.as_ref().unwrap(),
        "Succeeded",
        None,
    )
    .await;
    let st = wait_for(20, "cronjob saw the completed job", || async {
        let st = cjs.get("tick").await.unwrap().status?;
        (st.active.is_none() && st.last_successful_time.is_some()).then_some(st)
    })
    .await;
    let done = jobs.get(&name).await.unwrap();
    assert_eq!(
        st.last_successful_time,
        done.status.unwrap().completion_time,
        "lastSuccessfulTime is the job's completionTime"
    );
}

async fn node(c: &kube::Client, name: &str, taint: Option<(&str, &str)>) {
    let mut n = serde_json::json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}});
    if let Some((k, e)) = taint {
        n["spec"] = serde_json::json!({"taints": [{"key": k, "value": "x", "effect": e}]});
    }
    let n: Node = serde_json::from_value(n).unwrap();
    Api::<Node>::all(c.clone())
        .create(&PostParams::default(), &n)
        .await
        .unwrap();
}

fn affinity_node(p: &Pod) -> String {
    let terms = &p
        .spec
        .as_ref()
        .unwrap()
        .affinity
        .as_ref()
        .unwrap()
        .node_affinity
        .as_ref()
        .unwrap()
        .required_during_scheduling_ignored_during_execution
        .as_ref()
        .unwrap()
        .node_selector_terms;
    let f = &terms[0].match_fields.as_ref().unwrap()[0];
    assert_eq!(
        (f.key.as_str(), f.operator.as_str()),
        ("metadata.name", "In")
    );
    f.values.as_ref().unwrap()[0].clone()
}

#[tokio::test]
async fn daemonset_runs_one_pod_per_eligible_node() {
    let c = cluster("daemonset-controller", &[]).await;
    node(&c.client, "n1", None).await;
    node(&c.client, "n2", None).await;
    node(&c.client, "n3", Some(("dedicated", "NoSchedule"))).await;
    let dsets: Api<DaemonSet> = Api::namespaced(c.client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    let ds: DaemonSet = serde_json::from_value(serde_json::json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"},
        "spec": {"selector": {"matchLabels": {"app": "agent"}},
                 "template": {"metadata": {"labels": {"app": "agent"}},
                              "spec": {"containers": [{"name": "c", "image": "agent"}]}}},
    }))
    .unwrap();
    dsets.create(&PostParams::default(), &ds).await.unwrap();
    let list = wait_for(20, "two daemon pods", || async {
        let p = pods_of(
            pods.list(&ListParams::default()).await.unwrap().items,
            "app",
            "agent",
        );
        (p.len() == 2).then_some(p)
    })
    .await;
    let mut nodes: Vec<String> = list.iter().map(affinity_node).collect();
    nodes.sort();
    assert_eq!(nodes, ["n1", "n2"], "tainted node skipped");
    for p in &list {
        assert!(p.spec.as_ref().unwrap().node_name.is_none());
        assert!(
            p.metadata
                .labels
                .as_ref()
                .unwrap()
                .contains_key("controller-revision-hash")
        );
        let tols = p.spec.as_ref().unwrap().tolerations.as_ref().unwrap();
        assert!(
            tols.iter()
                .any(|t| t.key.as_deref() == Some("node.kubernetes.io/unschedulable"))
        );
        set_phase(&pods, p.metadata.name.as_ref().unwrap(), "Running", None).await;
    }
    let st = wait_for(20, "daemonset status", || async {
        let st = dsets.get("agent").await.unwrap().status?;
        (st.number_ready == 2).then_some(st)
    })
    .await;
    assert_eq!(
        (
            st.desired_number_scheduled,
            st.current_number_scheduled,
            st.number_misscheduled
        ),
        (2, 2, 0)
    );
    assert_eq!(
        (st.updated_number_scheduled, st.number_available),
        (Some(2), Some(2))
    );
    assert!(st.observed_generation.is_some());
    // A new node gets a pod too.
    node(&c.client, "n4", None).await;
    wait_for(20, "a pod on n4", || async {
        let p = pods_of(
            pods.list(&ListParams::default()).await.unwrap().items,
            "app",
            "agent",
        );
        p.iter().any(|p| affinity_node(p) == "n4").then_some(())
    })
    .await;
    let revs: Api<k8s_openapi::api::apps::v1::ControllerRevision> =
        Api::namespaced(c.client.clone(), "default");
    assert_eq!(
        revs.list(&ListParams::default()).await.unwrap().items.len(),
        1
    );
}

#[tokio::test]
async fn statefulset_creates_pods_in_order_with_claims() {
    let c = cluster("statefulset-controller", &[]).await;
    let sets: Api<StatefulSet> = Api::namespaced(c.client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(c.client.clone(), "default");
    let set: StatefulSet = serde_json::from_value(serde_json::json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "web"},
        "spec": {"replicas": 3, "serviceName": "nginx", "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "c", "image": "nginx"}]}},
                 "volumeClaimTemplates": [{"metadata": {"name": "www"},
                    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]},
    }))
    .unwrap();
    sets.create(&PostParams::default(), &set).await.unwrap();
    let names = || async {
        let mut n: Vec<String> = pods_of(
            pods.list(&ListParams::default()).await.unwrap().items,
            "app",
            "web",
        )
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect();
        n.sort();
        n
    };
    for i in 0..3 {
        let want: Vec<String> = (0..=i).map(|j| format!("web-{j}")).collect();
        wait_for(20, &format!("pods {want:?}"), || async {
            (names().await == want).then_some(())
        })
        .await;
        // The next ordinal waits for this one to be Running and Ready.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert_eq!(names().await, want, "created before web-{i} was ready");
        let p = pods.get(&format!("web-{i}")).await.unwrap();
        let l = p.metadata.labels.as_ref().unwrap();
        assert_eq!(l["statefulset.kubernetes.io/pod-name"], format!("web-{i}"));
        assert_eq!(l["apps.kubernetes.io/pod-index"], i.to_string());
        assert!(l["controller-revision-hash"].starts_with("web-"));
        let s = p.spec.as_ref().unwrap();
        assert_eq!(s.hostname.as_deref(), Some(format!("web-{i}").as_str()));
        assert_eq!(s.subdomain.as_deref(), Some("nginx"));
        let claim = pvcs.get(&format!("www-web-{i}")).await.unwrap();
        assert_eq!(claim.metadata.labels.as_ref().unwrap()["app"], "web");
        set_phase(&pods, &format!("web-{i}"), "Running", None).await;
    }
    let st = wait_for(20, "3 ready replicas", || async {
        let st = sets.get("web").await.unwrap().status?;
        (st.ready_replicas == Some(3)).then_some(st)
    })
    .await;
    assert_eq!(st.replicas, 3);
    assert_eq!(st.current_revision, st.update_revision);
    assert_eq!(st.updated_replicas, Some(3));
    // Scale down: the highest ordinal goes first.
    sets.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"spec": {"replicas": 1}})),
    )
    .await
    .unwrap();
    wait_for(20, "scaled down to web-0", || async {
        (names().await == ["web-0"]).then_some(())
    })
    .await;
    // Claims are retained by default.
    assert_eq!(
        pvcs.list(&ListParams::default()).await.unwrap().items.len(),
        3
    );
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

#[tokio::test]
async fn daemonset_rolling_update_replaces_pods() {
    let c = cluster("daemonset-controller", &[]).await;
    node(&c.client, "n1", None).await;
    node(&c.client, "n2", None).await;
    let dsets: Api<DaemonSet> = Api::namespaced(c.client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    let ds: DaemonSet = serde_json::from_value(serde_json::json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "roll"},
        "spec": {"selector": {"matchLabels": {"app": "roll"}},
                 "template": {"metadata": {"labels": {"app": "roll"}},
                              "spec": {"containers": [{"name": "c", "image": "v1"}]}}},
    }))
    .unwrap();
    dsets.create(&PostParams::default(), &ds).await.unwrap();
    let image = |p: &Pod| {
        p.spec.as_ref().unwrap().containers[0]
            .image
            .clone()
            .unwrap_or_default()
    };
    let live = || async {
        pods_of(
            pods.list(&ListParams::default()).await.unwrap().items,
            "app",
            "roll",
        )
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect::<Vec<_>>()
    };
    let first = wait_for(20, "two pods", || async {
        let p = live().await;
        (p.len() == 2).then_some(p)
    })
    .await;
    let old_hash = first[0].metadata.labels.as_ref().unwrap()["controller-revision-hash"].clone();
    for p in &first {
        set_phase(&pods, p.metadata.name.as_ref().unwrap(), "Running", None).await;
    }
    wait_for(20, "2 available", || async {
        (dsets.get("roll").await.unwrap().status?.number_available == Some(2)).then_some(())
    })
    .await;
    let patch = serde_json::json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "v2"}]}}}});
    dsets
        .patch("roll", &PatchParams::default(), &Patch::Strategic(patch))
        .await
        .unwrap();
    // Play the kubelet for new pods until both nodes run v2.
    wait_for(30, "both nodes on v2", || async {
        let p = live().await;
        let mut at_most_one_down = true;
        for pod in &p {
            if image(pod) == "v2" && crate::batchsets::phase(pod) != "Running" {
                set_phase(&pods, pod.metadata.name.as_ref().unwrap(), "Running", None).await;
            }
        }
        let running_v1 = p.iter().filter(|x| image(x) == "v1").count();
        let v2 = p.iter().filter(|x| image(x) == "v2").count();
        if running_v1 + v2 < 1 {
            at_most_one_down = false;
        }
        assert!(at_most_one_down, "both pods down at once");
        (p.len() == 2 && v2 == 2).then_some(())
    })
    .await;
    let st = wait_for(20, "updated status", || async {
        let st = dsets.get("roll").await.unwrap().status?;
        (st.updated_number_scheduled == Some(2) && st.number_ready == 2).then_some(st)
    })
    .await;
    assert_eq!(st.desired_number_scheduled, 2);
    for p in live().await {
        assert_ne!(
            p.metadata.labels.unwrap()["controller-revision-hash"],
            old_hash
        );
    }
}

fn phase(p: &Pod) -> &str {
    p.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

#[tokio::test]
async fn statefulset_adopts_orphans_and_rolls_updates_in_reverse() {
    let c = cluster("statefulset-controller", &[]).await;
    let sets: Api<StatefulSet> = Api::namespaced(c.client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    // An orphan that already has the identity of ordinal 0.
    let orphan: Pod = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "db-0", "labels": {"app": "db"}},
        "spec": {"containers": [{"name": "c", "image": "v1"}]},
    }))
    .unwrap();
    let orphan = pods.create(&PostParams::default(), &orphan).await.unwrap();
    set_phase(&pods, "db-0", "Running", None).await;
    let set: StatefulSet = serde_json::from_value(serde_json::json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
        "spec": {"replicas": 2, "serviceName": "db", "podManagementPolicy": "Parallel",
                 "updateStrategy": {"type": "OnDelete"},
                 "selector": {"matchLabels": {"app": "db"}},
                 "template": {"metadata": {"labels": {"app": "db"}},
                              "spec": {"containers": [{"name": "c", "image": "v1"}]}}},
    }))
    .unwrap();
    sets.create(&PostParams::default(), &set).await.unwrap();
    wait_for(20, "db-0 adopted", || async {
        let p = pods.get("db-0").await.ok()?;
        let r = p.metadata.owner_references?;
        (r.len() == 1 && r[0].kind == "StatefulSet" && r[0].controller == Some(true)).then_some(())
    })
    .await;
    assert_eq!(
        pods.get("db-0").await.unwrap().metadata.uid,
        orphan.metadata.uid,
        "not recreated"
    );
    // Parallel: db-1 does not wait for anything.
    wait_for(20, "db-1", || async { pods.get_opt("db-1").await.unwrap() }).await;
    set_phase(&pods, "db-1", "Running", None).await;
    // OnDelete: the adopted pod stays although it lacks the revision label.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(
        pods.get("db-0").await.unwrap().metadata.uid,
        orphan.metadata.uid
    );
    set_phase(&pods, "db-0", "Running", None).await;
    // RollingUpdate with a new template: db-1 is replaced first, db-0 only once db-1 is ready.
    let patch = serde_json::json!({"spec": {
        "updateStrategy": {"type": "RollingUpdate"},
        "template": {"spec": {"containers": [{"name": "c", "image": "v2"}]}}}});
    sets.patch("db", &PatchParams::default(), &Patch::Merge(patch))
        .await
        .unwrap();
    let image = |p: &Pod| {
        p.spec.as_ref().unwrap().containers[0]
            .image
            .clone()
            .unwrap_or_default()
    };
    wait_for(20, "db-1 on v2", || async {
        let p = pods.get_opt("db-1").await.unwrap()?;
        (image(&p) == "v2").then_some(())
    })
    .await;
    assert_eq!(
        image(&pods.get("db-0").await.unwrap()),
        "v1",
        "db-0 updated before db-1 was ready"
    );
    set_phase(&pods, "db-1", "Running", None).await;
    wait_for(20, "db-0 on v2", || async {
        let p = pods.get_opt("db-0").await.unwrap()?;
        (image(&p) == "v2").then_some(())
    })
    .await;
    set_phase(&pods, "db-0", "Running", None).await;
    let st = wait_for(20, "update finished", || async {
        let st = sets.get("db").await.unwrap().status?;
        (st.updated_replicas == Some(2)
            && st.ready_replicas == Some(2)
            && st.current_revision == st.update_revision)
            .then_some(st)
    })
    .await;
    assert_eq!(st.current_replicas, Some(2));
}
