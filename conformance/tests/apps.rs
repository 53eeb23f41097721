//! Workload controllers with the scheduler and fake nodes (the stand-in kubelet marks pods
//! Running/Ready). Mirrors upstream `test/e2e/apps/{deployment,replica_set,job,daemon_set,
//! statefulset}.go`.

use conformance::fakenode::{EXIT_CODE_ANNOTATION, ensure_fake_nodes};
use conformance::{Cluster, cluster, poll_until};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(90);
const TICK: Duration = Duration::from_millis(250);

fn pod_template(
    labels: serde_json::Value,
    image: &str,
    annotations: serde_json::Value,
) -> serde_json::Value {
    json!({
        "metadata": {"labels": labels, "annotations": annotations},
        "spec": {"terminationGracePeriodSeconds": 0,
                 "containers": [{"name": "app", "image": image}]},
    })
}

async fn pods_with(c: &Cluster, ns: &str, selector: &str) -> Vec<Pod> {
    let api: Api<Pod> = c.ns_api(ns);
    api.list(&ListParams::default().labels(selector))
        .await
        .expect("list pods")
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect()
}

fn is_running_ready(p: &Pod) -> bool {
    let st = p.status.as_ref();
    st.and_then(|s| s.phase.as_deref()) == Some("Running")
        && st
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn image_of(p: &Pod) -> String {
    p.spec
        .as_ref()
        .and_then(|s| s.containers[0].image.clone())
        .unwrap_or_default()
}

async fn wait_deployment_complete(api: &Api<Deployment>, name: &str, replicas: i32) -> Deployment {
    poll_until(
        &format!("deployment {name} to complete"),
        TICK,
        WAIT,
        || async {
            let d = api.get(name).await.ok()?;
            let st = d.status.clone()?;
            let done = st.observed_generation >= d.metadata.generation
                && st.updated_replicas == Some(replicas)
                && st.replicas == Some(replicas)
                && st.available_replicas == Some(replicas);
            done.then_some(d)
        },
    )
    .await
}

/// [sig-apps] Deployment RollingUpdateDeployment should delete old pods and create new ones [Conformance]
#[tokio::test]
async fn conformance_deployment_rolling_update_deletes_old_pods_and_creates_new_ones() {
    ensure_fake_nodes().await;
    let c = cluster().await;
    let ns = c.create_namespace("deployment").await;
    let api: Api<Deployment> = c.ns_api(&ns.name);
    let d: Deployment = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "test-rolling-update-deployment"},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"name": "sample-pod"}},
                 "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 1}},
                 "template": pod_template(json!({"name": "sample-pod"}), "httpd:1", json!({}))},
    }))
    .unwrap();
    api.create(&PostParams::default(), &d)
        .await
        .expect("create deployment");
    wait_deployment_complete(&api, "test-rolling-update-deployment", 3).await;
    let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "agnhost:2"}]}}}});
    api.patch(
        "test-rolling-update-deployment",
        &PatchParams::default(),
        &Patch::Strategic(&patch),
    )
    .await
    .expect("update the template");
    let done = wait_deployment_complete(&api, "test-rolling-update-deployment", 3).await;
    assert_eq!(
        done.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("deployment.kubernetes.io/revision"))
            .map(String::as_str),
        Some("2"),
        "the rollout made revision 2"
    );
    // Old pods are gone, new ones run the new image; the old ReplicaSet is scaled to zero.
    let pods = poll_until("only new pods", TICK, WAIT, || async {
        let pods = pods_with(&c, &ns.name, "name=sample-pod").await;
        (pods.len() == 3 && pods.iter().all(|p| image_of(p) == "agnhost:2")).then_some(pods)
    })
    .await;
    assert!(pods.iter().all(is_running_ready));
    let rss: Api<ReplicaSet> = c.ns_api(&ns.name);
    let list = rss.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(
        list.len(),
        2,
        "old and new ReplicaSets: {:?}",
        list.iter()
            .map(|r| r.metadata.name.clone())
            .collect::<Vec<_>>()
    );
    let zero = list.iter().filter(|r| r.spec.replicas == Some(0)).count();
    assert_eq!(zero, 1, "the old ReplicaSet is scaled down to 0");
    for rs in &list {
        let owner = &rs.metadata.owner_references.as_ref().expect("owned")[0];
        assert_eq!(owner.kind, "Deployment");
        assert_eq!(owner.controller, Some(true));
        assert!(
            rs.metadata
                .labels
                .as_ref()
                .unwrap()
                .contains_key("pod-template-hash")
        );
    }
}

/// [sig-apps] Deployment RecreateDeployment should delete old pods and create new ones [Conformance]
#[tokio::test]
async fn conformance_deployment_recreate_deletes_old_pods_and_creates_new_ones() {
    ensure_fake_nodes().await;
    let c = cluster().await;
    let ns = c.create_namespace("deployment").await;
    let api: Api<Deployment> = c.ns_api(&ns.name);
    let d: Deployment = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "test-recreate-deployment"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"name": "sample-pod-3"}},
                 "strategy": {"type": "Recreate"},
                 "template": pod_template(json!({"name": "sample-pod-3"}), "agnhost:2", json!({}))},
    }))
    .unwrap();
    api.create(&PostParams::default(), &d)
        .await
        .expect("create deployment");
    wait_deployment_complete(&api, "test-recreate-deployment", 2).await;
    let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "httpd:1"}]}}}});
    api.patch(
        "test-recreate-deployment",
        &PatchParams::default(),
        &Patch::Strategic(&patch),
    )
    .await
    .unwrap();
    wait_deployment_complete(&api, "test-recreate-deployment", 2).await;
    let pods = pods_with(&c, &ns.name, "name=sample-pod-3").await;
    assert_eq!(pods.len(), 2);
    assert!(
        pods.iter().all(|p| image_of(p) == "httpd:1"),
        "only new pods remain"
    );
}

/// [sig-apps] ReplicaSet should adopt matching pods on creation and release no longer matching pods [Conformance]
#[tokio::test]
async fn conformance_replicaset_adopt_and_release_pods() {
    ensure_fake_nodes().await;
    let c = cluster().await;
    let ns = c.create_namespace("replicaset").await;
    let pods: Api<Pod> = c.ns_api(&ns.name);
    let orphan: Pod = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "pod-adoption-release", "labels": {"name": "pod-adoption-release"}},
        "spec": {"terminationGracePeriodSeconds": 0, "containers": [{"name": "app", "image": "httpd:1"}]},
    }))
    .unwrap();
    pods.create(&PostParams::default(), &orphan)
        .await
        .expect("create orphan pod");
    let rss: Api<ReplicaSet> = c.ns_api(&ns.name);
    let rs: ReplicaSet = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": "pod-adoption-release"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"name": "pod-adoption-release"}},
                 "template": pod_template(json!({"name": "pod-adoption-release"}), "httpd:1", json!({}))},
    }))
    .unwrap();
    let rs = rss
        .create(&PostParams::default(), &rs)
        .await
        .expect("create replicaset");
    let uid = rs.metadata.uid.clone().unwrap();
    poll_until("the orphan pod to be adopted", TICK, WAIT, || async {
        let p = pods.get("pod-adoption-release").await.ok()?;
        p.metadata
            .owner_references
            .as_ref()?
            .iter()
            .any(|o| o.uid == uid && o.controller == Some(true))
            .then_some(())
    })
    .await;
    // Changing the label releases the pod, and the ReplicaSet makes a replacement.
    pods.patch(
        "pod-adoption-release",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"name": "not-matching"}}})),
    )
    .await
    .unwrap();
    poll_until("the pod to be released", TICK, WAIT, || async {
        let p = pods.get("pod-adoption-release").await.ok()?;
        let owned = p
            .metadata
            .owner_references
            .as_ref()
            .is_some_and(|os| os.iter().any(|o| o.uid == uid));
        (!owned).then_some(())
    })
    .await;
    poll_until("a replacement pod", TICK, WAIT, || async {
        (pods_with(&c, &ns.name, "name=pod-adoption-release")
            .await
            .len()
            == 1)
            .then_some(())
    })
    .await;
}

/// [sig-apps] ReplicaSet Replicaset should have a working scale subresource [Conformance]
#[tokio::test]
async fn conformance_replicaset_scale_subresource() {
    ensure_fake_nodes().await;
    let c = cluster().await;
    let ns = c.create_namespace("replicaset").await;
    let rss: Api<ReplicaSet> = c.ns_api(&ns.name);
    let rs: ReplicaSet = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": "test-rs"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"name": "sample-pod"}},
                 "template": pod_template(json!({"name": "sample-pod"}), "httpd:1", json!({}))},
    }))
    .unwrap();
    rss.create(&PostParams::default(), &rs).await.unwrap();
    poll_until("1 ready replica", TICK, WAIT, || async {
        let r = rss.get("test-rs").await.ok()?;
        (r.status?.ready_replicas == Some(1)).then_some(())
    })
    .await;
    let scale = rss.get_scale("test-rs").await.expect("get scale");
    assert_eq!(scale.spec.and_then(|s| s.replicas), Some(1));
    rss.patch_scale(
        "test-rs",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 2}})),
    )
    .await
    .expect("patch scale");
    poll_until("2 ready replicas", TICK, WAIT, || async {
        let r = rss.get("test-rs").await.ok()?;
        (r.status?.ready_replicas == Some(2)).then_some(())
    })
    .await;
    assert_eq!(pods_with(&c, &ns.name, "name=sample-pod").await.len(), 2);
}

/// [sig-apps] Job should run a job to completion when tasks succeed
#[tokio::test]
async fn conformance_job_runs_to_completion_when_tasks_succeed() {
    ensure_fake_nodes().await;
    let c = cluster().await;
    let ns = c.create_namespace("job").await;
    let jobs: Api<Job> = c.ns_api(&ns.name);
    let job: Job = serde_json::from_value(json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "all-succeed"},
        "spec": {"parallelism": 2, "completions": 4, "backoffLimit": 6,
                 "template": {"metadata": {"annotations": {EXIT_CODE_ANNOTATION: "0"}},
                              "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 0,
                                       "containers": [{"name": "c", "image": "busybox"}]}}},
    }))
    .unwrap();
    jobs.create(&PostParams::default(), &job)
        .await
        .expect("create job");
    let done = poll_until("the job to complete", TICK, WAIT, || async {
        let j = jobs.get("all-succeed").await.ok()?;
        let complete = j
            .status
            .as_ref()?
            .conditions
            .as_ref()?
            .iter()
            .any(|c| c.type_ == "Complete" && c.status == "True");
        complete.then_some(j)
    })
    .await;
    let st = done.status.unwrap();
    assert_eq!(st.succeeded, Some(4), "4 completions");
    assert!(st.completion_time.is_some());
}

/// [sig-apps] Job should create pods for an Indexed job with completion indexes and specified hostname [Conformance]
#[tokio::test]
async fn conformance_job_indexed_completion_indexes_and_hostname() {
    ensure_fake_nodes().await;
    let c = cluster().await;
    let ns = c.create_namespace("job").await;
    let jobs: Api<Job> = c.ns_api(&ns.name);
    let job: Job = serde_json::from_value(json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "indexed-job"},
        "spec": {"parallelism": 2, "completions": 4, "completionMode": "Indexed",
                 "template": {"metadata": {"annotations": {EXIT_CODE_ANNOTATION: "0"}},
                              "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 0,
                                       "containers": [{"name": "c", "image": "busybox"}]}}},
    }))
    .unwrap();
    jobs.create(&PostParams::default(), &job).await.unwrap();
    let done = poll_until("the indexed job to complete", TICK, WAIT, || async {
        let j = jobs.get("indexed-job").await.ok()?;
        let complete = j
            .status
            .as_ref()?
            .conditions
            .as_ref()?
            .iter()
            .any(|c| c.type_ == "Complete" && c.status == "True");
        complete.then_some(j)
    })
    .await;
    assert_eq!(
        done.status.unwrap().completed_indexes.as_deref(),
        Some("0-3")
    );
    let pods = pods_with(&c, &ns.name, "batch.kubernetes.io/job-name=indexed-job").await;
    let mut indexes: Vec<String> = pods
        .iter()
        .map(|p| {
            let idx = p.metadata.annotations.as_ref().unwrap()["batch.kubernetes.io/job-completion-index"].clone();
            assert_eq!(p.spec.as_ref().unwrap().hostname.as_deref(), Some(format!("indexed-job-{idx}").as_str()));
            idx
        })
        .collect();
    indexes.sort();
    indexes.dedup();
    assert_eq!(indexes, ["0", "1", "2", "3"]);
}

/// [sig-apps] Daemon set [Serial] should run and stop simple daemon [Conformance]
#[tokio::test]
async fn conformance_daemonset_run_and_stop_simple_daemon() {
    let fake = ensure_fake_nodes().await;
    let c = cluster().await;
    let ns = c.create_namespace("daemonsets").await;
    let api: Api<DaemonSet> = c.ns_api(&ns.name);
    // Only the fake nodes: other nodes (a real kubelet's) may lack the image.
    let ds: DaemonSet = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": "daemon-set"},
        "spec": {"selector": {"matchLabels": {"daemonset-name": "daemon-set"}},
                 "template": {"metadata": {"labels": {"daemonset-name": "daemon-set"}},
                              "spec": {"nodeSelector": {conformance::fakenode::FAKE_NODE_LABEL: "true"},
                                       "terminationGracePeriodSeconds": 0,
                                       "containers": [{"name": "app", "image": "httpd:1"}]}}},
    }))
    .unwrap();
    api.create(&PostParams::default(), &ds).await.unwrap();
    let pods = poll_until("one daemon pod per node", TICK, WAIT, || async {
        let pods = pods_with(&c, &ns.name, "daemonset-name=daemon-set").await;
        let mut nodes: Vec<String> = pods
            .iter()
            .filter(|p| is_running_ready(p))
            .filter_map(|p| p.spec.as_ref()?.node_name.clone())
            .collect();
        nodes.sort();
        (nodes == fake).then_some(pods)
    })
    .await;
    assert_eq!(pods.len(), fake.len());
    poll_until("daemonset status", TICK, WAIT, || async {
        let st = api.get("daemon-set").await.ok()?.status?;
        (st.desired_number_scheduled == fake.len() as i32 && st.number_ready == fake.len() as i32)
            .then_some(())
    })
    .await;
    // Stop it: deleting the DaemonSet removes its pods.
    api.delete("daemon-set", &DeleteParams::default())
        .await
        .unwrap();
    poll_until("daemon pods to be gone", TICK, WAIT, || async {
        pods_with(&c, &ns.name, "daemonset-name=daemon-set")
            .await
            .is_empty()
            .then_some(())
    })
    .await;
}

/// [sig-apps] StatefulSet Basic StatefulSet functionality [StatefulSetBasic] Scaling should happen in predictable order and halt if any stateful pod is unhealthy [Slow] [Conformance]
#[tokio::test]
async fn conformance_statefulset_scaling_happens_in_predictable_order() {
    ensure_fake_nodes().await;
    let c = cluster().await;
    let ns = c.create_namespace("statefulset").await;
    let api: Api<StatefulSet> = c.ns_api(&ns.name);
    let ss: StatefulSet = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "ss"},
        "spec": {"replicas": 3, "serviceName": "test", "selector": {"matchLabels": {"app": "ss"}},
                 "template": pod_template(json!({"app": "ss"}), "httpd:1", json!({}))},
    }))
    .unwrap();
    api.create(&PostParams::default(), &ss).await.unwrap();
    // Watch creation order: ss-N is only created once ss-(N-1) is Running and Ready.
    let pods_api: Api<Pod> = c.ns_api(&ns.name);
    let mut seen: Vec<String> = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let pods = pods_api
            .list(&ListParams::default().labels("app=ss"))
            .await
            .expect("list")
            .items;
        for p in &pods {
            let name = p.metadata.name.clone().unwrap();
            if seen.contains(&name) {
                continue;
            }
            let ordinal: usize = name
                .trim_start_matches("ss-")
                .parse()
                .expect("ordinal name");
            assert_eq!(
                ordinal,
                seen.len(),
                "pods created in order: saw {seen:?} then {name}"
            );
            if ordinal > 0 {
                let prev = format!("ss-{}", ordinal - 1);
                let prev = pods
                    .iter()
                    .find(|q| q.metadata.name.as_deref() == Some(prev.as_str()));
                assert!(
                    prev.is_some_and(is_running_ready),
                    "{name} created before its predecessor was ready"
                );
            }
            seen.push(name);
        }
        if pods.len() == 3 && pods.iter().all(is_running_ready) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for 3 ordered pods; saw {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(seen, ["ss-0", "ss-1", "ss-2"]);
    let p = pods_api.get("ss-1").await.unwrap();
    assert_eq!(
        p.metadata
            .labels
            .as_ref()
            .unwrap()
            .get("statefulset.kubernetes.io/pod-name")
            .map(String::as_str),
        Some("ss-1")
    );
}
