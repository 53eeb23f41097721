//! cronjob-controller, with the job controller running the Jobs it creates.

use super::*;
use crate::{cluster, wait_for};
use k8s_openapi::api::batch::v1::CronJob;
use kube::api::PostParams;

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
    // The next minute's job may be active by then (the schedule is every minute): only the
    // completed one must have left `active`.
    let st = wait_for(20, "cronjob saw the completed job", || async {
        let st = cjs.get("tick").await.unwrap().status?;
        let still_active = st
            .active
            .as_ref()
            .is_some_and(|a| a.iter().any(|r| r.name.as_deref() == Some(name.as_str())));
        (!still_active && st.last_successful_time.is_some()).then_some(st)
    })
    .await;
    let done = jobs.get(&name).await.unwrap();
    assert_eq!(
        st.last_successful_time,
        done.status.unwrap().completion_time,
        "lastSuccessfulTime is the job's completionTime"
    );
}
