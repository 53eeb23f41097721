//! daemonset-controller: placement by taints and nodes, rolling update.

use super::*;
use crate::{cluster, wait_for};
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::Node;
use kube::api::PostParams;

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
            if image(pod) == "v2" && super::phase(pod) != "Running" {
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
