//! DefaultPreemption end to end: a high-priority pod evicts lower-priority pods, is
//! nominated to their node and lands there once they are gone.

use super::*;
use k8s_openapi::api::core::v1::Pod;
use kube::api::DeleteParams;
use serde_json::json;

#[tokio::test]
async fn a_higher_priority_pod_preempts_and_is_nominated() {
    let c = cluster_with(vec![node("only", "2", &[], json!([]))], &[]).await;
    // Priorities come from PriorityClasses (the apiserver's Priority admission plugin refuses
    // a bare spec.priority, as upstream).
    let classes: Api<k8s_openapi::api::scheduling::v1::PriorityClass> = Api::all(c.client.clone());
    for (name, value) in [("low", 1), ("high", 1000)] {
        let pc = serde_json::from_value(json!({"apiVersion": "scheduling.k8s.io/v1",
            "kind": "PriorityClass", "metadata": {"name": name}, "value": value}))
        .unwrap();
        classes
            .create(&kube::api::PostParams::default(), &pc)
            .await
            .expect("create priority class");
    }
    for i in 0..2 {
        create_pod(
            &c.client,
            pod(&format!("low{i}"), "1", json!({"priorityClassName": "low"})),
        )
        .await;
        wait_bound(&c.client, &format!("low{i}")).await;
    }
    create_pod(
        &c.client,
        pod("high", "1500m", json!({"priorityClassName": "high"})),
    )
    .await;
    let api: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    // The scheduler nominates the node and deletes victims (graceful: they get a
    // deletionTimestamp, as there is no kubelet here).
    let nominated = wait_for(20, "nominatedNodeName", || {
        let api = api.clone();
        async move { api.get("high").await.ok()?.status?.nominated_node_name }
    })
    .await;
    assert_eq!(nominated, "only");
    let victims: Vec<String> = wait_for(20, "victims being deleted", || {
        let api = api.clone();
        async move {
            let mut v = vec![];
            for i in 0..2 {
                let p = api.get(&format!("low{i}")).await.ok();
                if p.as_ref()
                    .is_none_or(|p| p.metadata.deletion_timestamp.is_some())
                {
                    v.push(format!("low{i}"));
                }
            }
            (!v.is_empty()).then_some(v)
        }
    })
    .await;
    // Freeing 1 cpu is not enough for 1.5 cpu: both low pods go.
    assert_eq!(victims.len(), 2, "{victims:?}");
    let low0 = api.get("low0").await.unwrap();
    let dt = low0
        .status
        .and_then(|s| s.conditions)
        .and_then(|c| c.into_iter().find(|c| c.type_ == "DisruptionTarget"))
        .expect("DisruptionTarget condition");
    assert_eq!(dt.reason.as_deref(), Some("PreemptionByScheduler"));
    assert_eq!(
        dt.message.as_deref(),
        Some("default-scheduler: preempting to accommodate a higher priority pod")
    );
    let preempted = events_for(&c.client, "low0").await;
    assert!(
        preempted
            .iter()
            .any(|(_, r, n)| r == "Preempted" && n.starts_with("Preempted by pod ")),
        "{preempted:?}"
    );
    // Play the kubelet: the victims finish terminating.
    for v in &victims {
        let _ = api
            .delete(
                v,
                &DeleteParams {
                    grace_period_seconds: Some(0),
                    ..Default::default()
                },
            )
            .await;
    }
    assert_eq!(wait_bound(&c.client, "high").await, "only");
}
