//! Binding, the unschedulable message, events, re-queueing on node add.

use super::*;
use k8s_openapi::api::core::v1::Pod;
use serde_json::json;

#[tokio::test]
async fn pods_get_bound_with_a_scheduled_event() {
    let c = cluster(&[]).await;
    for i in 0..3 {
        create_node(&c.client, node(&format!("n{i}"), "4", &[], json!([]))).await;
    }
    for i in 0..6 {
        create_pod(&c.client, pod(&format!("p{i}"), "500m", json!({}))).await;
    }
    let mut used = std::collections::HashSet::new();
    for i in 0..6 {
        used.insert(wait_bound(&c.client, &format!("p{i}")).await);
    }
    // LeastAllocated + BalancedAllocation spread six pods over the three nodes.
    assert_eq!(used.len(), 3, "{used:?}");
    let n0 = node_of(&c.client, "p0").await.unwrap();
    let want = format!("Successfully assigned default/p0 to {n0}");
    wait_for(10, "the Scheduled event", || {
        let want = want.clone();
        let client = c.client.clone();
        async move {
            events_for(&client, "p0")
                .await
                .into_iter()
                .find(|(t, r, n)| t == "Normal" && r == "Scheduled" && *n == want)
        }
    })
    .await;
}

#[tokio::test]
async fn a_pod_too_big_stays_pending_with_upstreams_message_until_a_node_fits() {
    let cp = json!([{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]);
    let nodes = vec![
        node("worker", "1", &[], json!([])),
        node("cp1", "8", &[], cp.clone()),
        node("cp2", "8", &[], cp),
    ];
    let c = cluster_with(nodes, &[]).await;
    create_pod(&c.client, pod("big", "2", json!({}))).await;
    let want = "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.";
    let api: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    let cond = wait_for(20, "PodScheduled=False with the message", || {
        let api = api.clone();
        async move {
            let p = api.get("big").await.ok()?;
            p.status?
                .conditions?
                .into_iter()
                .find(|c| c.type_ == "PodScheduled" && c.message.as_deref() == Some(want))
        }
    })
    .await;
    assert_eq!(cond.status, "False");
    assert_eq!(cond.reason.as_deref(), Some("Unschedulable"));
    assert_eq!(cond.message.as_deref(), Some(want));
    wait_for(10, "the FailedScheduling event", || {
        let client = c.client.clone();
        async move {
            events_for(&client, "big")
                .await
                .into_iter()
                .find(|(t, r, n)| t == "Warning" && r == "FailedScheduling" && n == want)
        }
    })
    .await;
    assert_eq!(node_of(&c.client, "big").await, None);
    // A node that fits arrives: the pod is re-queued and bound there.
    create_node(&c.client, node("large", "4", &[], json!([]))).await;
    assert_eq!(wait_bound(&c.client, "big").await, "large");
}

#[tokio::test]
async fn pods_for_other_schedulers_or_already_bound_are_left_alone() {
    let c = cluster(&[]).await;
    create_node(&c.client, node("n0", "4", &[], json!([]))).await;
    create_pod(
        &c.client,
        pod("other", "100m", json!({"schedulerName": "my-scheduler"})),
    )
    .await;
    create_pod(&c.client, pod("mine", "100m", json!({}))).await;
    wait_bound(&c.client, "mine").await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(node_of(&c.client, "other").await, None);
}
