//! Taints and tolerations, node affinity, topology spread across zones.

use super::*;
use serde_json::json;
use std::collections::HashMap;

#[tokio::test]
async fn taints_and_tolerations() {
    let gpu = json!([{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]);
    let nodes = vec![
        node("gpu", "4", &[("kind", "gpu")], gpu),
        node("plain", "4", &[], json!([])),
    ];
    let c = cluster_with(nodes, &[]).await;
    let tol =
        json!([{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}]);
    create_pod(
        &c.client,
        pod(
            "tolerant",
            "100m",
            json!({"tolerations": tol, "nodeSelector": {"kind": "gpu"}}),
        ),
    )
    .await;
    create_pod(
        &c.client,
        pod(
            "intolerant",
            "100m",
            json!({"nodeSelector": {"kind": "gpu"}}),
        ),
    )
    .await;
    for i in 0..4 {
        create_pod(&c.client, pod(&format!("any{i}"), "100m", json!({}))).await;
    }
    assert_eq!(wait_bound(&c.client, "tolerant").await, "gpu");
    for i in 0..4 {
        assert_eq!(wait_bound(&c.client, &format!("any{i}")).await, "plain");
    }
    let want = "0/2 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 1 node(s) had untolerated taint {dedicated: gpu}. preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling.";
    wait_for(20, "the intolerant pod's FailedScheduling event", || {
        let client = c.client.clone();
        async move {
            events_for(&client, "intolerant")
                .await
                .into_iter()
                .find(|(_, r, n)| r == "FailedScheduling" && n == want)
        }
    })
    .await;
    assert_eq!(node_of(&c.client, "intolerant").await, None);
}

#[tokio::test]
async fn required_and_preferred_node_affinity() {
    let c = cluster(&[]).await;
    for (n, z) in [("a", "z1"), ("b", "z2"), ("c", "z3")] {
        create_node(
            &c.client,
            node(n, "4", &[("topology.kubernetes.io/zone", z)], json!([])),
        )
        .await;
    }
    let required = json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [
            {"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["z2", "z3"]},
            {"key": "topology.kubernetes.io/zone", "operator": "NotIn", "values": ["z3"]}]}]}}});
    create_pod(&c.client, pod("req", "100m", json!({"affinity": required}))).await;
    assert_eq!(wait_bound(&c.client, "req").await, "b");
    let preferred = json!({"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 100, "preference": {"matchExpressions": [
            {"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["z3"]}]}}]}});
    for i in 0..3 {
        create_pod(
            &c.client,
            pod(&format!("pref{i}"), "100m", json!({"affinity": preferred})),
        )
        .await;
        assert_eq!(wait_bound(&c.client, &format!("pref{i}")).await, "c");
    }
}

#[tokio::test]
async fn topology_spread_across_zones() {
    let c = cluster(&[]).await;
    for (n, z) in [("a1", "z1"), ("a2", "z1"), ("b1", "z2"), ("c1", "z3")] {
        create_node(
            &c.client,
            node(n, "8", &[("topology.kubernetes.io/zone", z)], json!([])),
        )
        .await;
    }
    let spread = json!([{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
        "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": "web"}}}]);
    for i in 0..9 {
        create_pod(
            &c.client,
            pod(
                &format!("s{i}"),
                "100m",
                json!({"topologySpreadConstraints": spread}),
            ),
        )
        .await;
    }
    let mut per_zone: HashMap<&str, usize> = HashMap::new();
    for i in 0..9 {
        let n = wait_bound(&c.client, &format!("s{i}")).await;
        let z = match n.as_str() {
            "a1" | "a2" => "z1",
            "b1" => "z2",
            _ => "z3",
        };
        *per_zone.entry(z).or_default() += 1;
    }
    assert_eq!(per_zone.get("z1"), Some(&3), "{per_zone:?}");
    assert_eq!(per_zone.get("z2"), Some(&3), "{per_zone:?}");
    assert_eq!(per_zone.get("z3"), Some(&3), "{per_zone:?}");
}
