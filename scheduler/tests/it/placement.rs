//! Taints and tolerations, node affinity, topology spread across zones.

use super::*;
use k8s_openapi::api::core::v1::Node;
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

#[tokio::test]
async fn config_file_profiles_pick_their_pods() {
    let dir = std::env::temp_dir().join(format!("sched-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("config.yaml");
    std::fs::write(
        &cfg,
        r#"apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
leaderElection:
  leaderElect: false
profiles:
- schedulerName: default-scheduler
- schedulerName: bin-packer
  plugins:
    score:
      disabled:
      - name: NodeResourcesBalancedAllocation
  pluginConfig:
  - name: NodeResourcesFit
    args:
      scoringStrategy:
        type: MostAllocated
"#,
    )
    .unwrap();
    let nodes: Vec<Node> = (0..3)
        .map(|i| node(&format!("n{i}"), "4", &[], json!([])))
        .collect();
    let server = apiserver::TestServer::start(&[]).await.expect("apiserver");
    let client = kube::Client::try_from(kube::Config::new(server.url.parse().unwrap())).unwrap();
    for n in nodes {
        create_node(&client, n).await;
    }
    let (stop, _) = start_scheduler(&server.url, &[&format!("--config={}", cfg.display())]);
    let mut packed = std::collections::HashSet::new();
    for i in 0..4 {
        create_pod(
            &client,
            pod(
                &format!("bp{i}"),
                "500m",
                json!({"schedulerName": "bin-packer"}),
            ),
        )
        .await;
        packed.insert(wait_bound(&client, &format!("bp{i}")).await);
    }
    assert_eq!(packed.len(), 1, "MostAllocated packs: {packed:?}");
    create_pod(
        &client,
        pod("nobody", "100m", json!({"schedulerName": "nobody"})),
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(node_of(&client, "nobody").await, None);
    stop.cancel();
    let _ = std::fs::remove_dir_all(&dir);
}
