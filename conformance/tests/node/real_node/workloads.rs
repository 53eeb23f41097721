//! Controllers driving real containers: Job, Deployment (upstream `test/e2e/apps/{job,deployment}.go`).

use super::*;

/// [sig-apps] Job should run a job to completion when tasks succeed [Conformance]
#[tokio::test]
async fn job_should_run_a_job_to_completion_when_tasks_succeed() {
    let c = cluster().await;
    let ns = c.create_namespace("job-real").await;
    let jobs: Api<Job> = c.ns_api(&ns.name);
    let job: Job = serde_json::from_value(json!({"apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "all-succeed"},
        "spec": {"completions": 2, "parallelism": 2, "backoffLimit": 6, "template": {"spec": {
            "restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
            "nodeSelector": {"kubernetes.io/hostname": node_name()},
            "containers": [{"name": "c", "image": BUSYBOX, "command": ["sh", "-c", "sleep 1"]}]}}}}))
    .unwrap();
    jobs.create(&PostParams::default(), &job).await.unwrap();
    poll_until(
        "the job to complete",
        TICK,
        Duration::from_secs(90),
        || async {
            let j = jobs.get("all-succeed").await.ok()?;
            (j.status?.succeeded? == 2).then_some(())
        },
    )
    .await;
}

/// [sig-apps] Deployment RollingUpdateDeployment should delete old pods and create new ones [Conformance]
/// (here: a Deployment's pods run in real containers, and a deleted pod is replaced)
#[tokio::test]
async fn deployment_pods_run_and_are_replaced() {
    let c = cluster().await;
    let ns = c.create_namespace("deploy-real").await;
    let deps: Api<k8s_openapi::api::apps::v1::Deployment> = c.ns_api(&ns.name);
    let pods: Api<Pod> = c.ns_api(&ns.name);
    deps.create(
        &PostParams::default(),
        &serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                "terminationGracePeriodSeconds": 1,
                "nodeSelector": {"kubernetes.io/hostname": node_name()},
                "containers": [{"name": "c", "image": BUSYBOX, "command": ["sleep", "3600"]}]}}}}))
        .unwrap(),
    )
    .await
    .unwrap();
    let running = |pods: Api<Pod>| async move {
        let l = pods
            .list(&ListParams::default().labels("app=web"))
            .await
            .ok()?;
        let names: Vec<String> = l
            .items
            .iter()
            .filter(|p| {
                p.metadata.deletion_timestamp.is_none()
                    && p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
            })
            .filter_map(|p| p.metadata.name.clone())
            .collect();
        (names.len() == 2).then_some(names)
    };
    let first = poll_until("2 running pods", TICK, WAIT, || running(pods.clone())).await;
    pods.delete(&first[0], &DeleteParams::default())
        .await
        .unwrap();
    let second = poll_until("a replacement pod running", TICK, WAIT, || {
        let pods = pods.clone();
        let gone = first[0].clone();
        async move { running(pods).await.filter(|n| !n.contains(&gone)) }
    })
    .await;
    assert!(
        second.contains(&first[1]),
        "the other pod kept running: {first:?} -> {second:?}"
    );
    let d = deps.get("web").await.unwrap();
    poll_until(
        "the deployment to report 2 available",
        TICK,
        WAIT,
        || async {
            let d = deps.get("web").await.ok()?;
            (d.status?.available_replicas? == 2).then_some(())
        },
    )
    .await;
    drop(d);
}
