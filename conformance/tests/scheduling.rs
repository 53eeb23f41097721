//! kube-scheduler against fake nodes. Mirrors upstream `test/e2e/scheduling/predicates.go`
//! ("SchedulerPredicates") and the leader-election guarantee of running two replicas.

use conformance::fakenode::{FAKE_NODE_LABEL, ensure_fake_nodes};
use conformance::{Cluster, cluster, poll_until};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Event, Node, Pod};
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);
const TICK: Duration = Duration::from_millis(250);

fn pod(name: &str, extra_spec: serde_json::Value) -> Pod {
    let mut spec = json!({"terminationGracePeriodSeconds": 0,
                          "containers": [{"name": "pause", "image": "registry.k8s.io/pause:3.10"}]});
    if let (Some(s), Some(e)) = (spec.as_object_mut(), extra_spec.as_object()) {
        for (k, v) in e {
            s.insert(k.clone(), v.clone());
        }
    }
    serde_json::from_value(
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}),
    )
    .unwrap()
}

async fn node_count(c: &Cluster) -> usize {
    let nodes: Api<Node> = c.all_api();
    nodes
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .len()
}

/// Waits for the pod's PodScheduled=False/Unschedulable condition and returns its message.
async fn unschedulable_message(api: &Api<Pod>, name: &str) -> String {
    poll_until(
        &format!("{name} to be marked unschedulable"),
        TICK,
        WAIT,
        || async {
            let p = api.get(name).await.ok()?;
            let c = p
                .status?
                .conditions?
                .into_iter()
                .find(|c| c.type_ == "PodScheduled")?;
            (c.status == "False" && c.reason.as_deref() == Some("Unschedulable"))
                .then(|| c.message.unwrap_or_default())
        },
    )
    .await
}

/// [sig-scheduling] SchedulerPredicates [Serial] validates resource limits of pods that are allowed to run [Conformance]
#[tokio::test]
async fn conformance_scheduler_predicates_resource_limits() {
    ensure_fake_nodes().await;
    let c = cluster().await;
    let ns = c.create_namespace("sched-pred").await;
    let api: Api<Pod> = c.ns_api(&ns.name);
    // Each fake node has 4 CPUs: a pod asking for 3 fits, one asking for 100 fits nowhere.
    api.create(&PostParams::default(), &pod("fits", json!({"nodeSelector": {FAKE_NODE_LABEL: "true"},
        "containers": [{"name": "pause", "image": "registry.k8s.io/pause:3.10", "resources": {"requests": {"cpu": "3"}}}]})))
        .await
        .unwrap();
    api.create(&PostParams::default(), &pod("too-big", json!({
        "containers": [{"name": "pause", "image": "registry.k8s.io/pause:3.10", "resources": {"requests": {"cpu": "100"}}}]})))
        .await
        .unwrap();
    poll_until("the fitting pod to be bound", TICK, WAIT, || async {
        api.get("fits").await.ok()?.spec?.node_name
    })
    .await;
    let msg = unschedulable_message(&api, "too-big").await;
    let n = node_count(&c).await;
    assert!(
        msg.starts_with(&format!("0/{n} nodes are available: ")),
        "{msg}"
    );
    assert!(msg.contains(&format!("{n} Insufficient cpu")), "{msg}");
    assert!(msg.contains("preemption: "), "{msg}");
    // A FailedScheduling warning event names the pod.
    let events: Api<Event> = c.ns_api(&ns.name);
    poll_until("a FailedScheduling event", TICK, WAIT, || async {
        let evs = events.list(&ListParams::default()).await.ok()?.items;
        evs.iter()
            .any(|e| {
                e.reason.as_deref() == Some("FailedScheduling")
                    && e.involved_object.name.as_deref() == Some("too-big")
            })
            .then_some(())
    })
    .await;
    assert!(
        api.get("too-big")
            .await
            .unwrap()
            .spec
            .unwrap()
            .node_name
            .is_none()
    );
}

/// [sig-scheduling] SchedulerPredicates [Serial] validates that NodeSelector is respected if not matching [Conformance]
#[tokio::test]
async fn conformance_scheduler_predicates_node_selector_not_matching() {
    ensure_fake_nodes().await;
    let c = cluster().await;
    let ns = c.create_namespace("sched-pred").await;
    let api: Api<Pod> = c.ns_api(&ns.name);
    api.create(
        &PostParams::default(),
        &pod(
            "restricted-pod",
            json!({"nodeSelector": {"label": "nonempty"}}),
        ),
    )
    .await
    .unwrap();
    let msg = unschedulable_message(&api, "restricted-pod").await;
    let n = node_count(&c).await;
    assert!(
        msg.starts_with(&format!("0/{n} nodes are available: ")),
        "{msg}"
    );
    assert!(
        msg.contains("node(s) didn't match Pod's node affinity/selector"),
        "{msg}"
    );
}

/// [sig-scheduling] SchedulerPredicates [Serial] validates that NodeSelector is respected if matching [Conformance]
#[tokio::test]
async fn conformance_scheduler_predicates_node_selector_matching() {
    let nodes = ensure_fake_nodes().await;
    let c = cluster().await;
    let ns = c.create_namespace("sched-pred").await;
    let api: Api<Pod> = c.ns_api(&ns.name);
    let target = &nodes[1];
    api.create(
        &PostParams::default(),
        &pod(
            "with-labels",
            json!({"nodeSelector": {"kubernetes.io/hostname": target}}),
        ),
    )
    .await
    .unwrap();
    let bound = poll_until("the pod to be bound", TICK, WAIT, || async {
        api.get("with-labels").await.ok()?.spec?.node_name
    })
    .await;
    assert_eq!(&bound, target);
    // The scheduler reports the assignment as upstream does.
    let events: Api<Event> = c.ns_api(&ns.name);
    let ev = poll_until("a Scheduled event", TICK, WAIT, || async {
        events
            .list(&ListParams::default())
            .await
            .ok()?
            .items
            .into_iter()
            .find(|e| {
                e.reason.as_deref() == Some("Scheduled")
                    && e.involved_object.name.as_deref() == Some("with-labels")
            })
    })
    .await;
    let note = ev.message.unwrap_or_default();
    assert_eq!(
        note,
        format!("Successfully assigned {}/with-labels to {target}", ns.name)
    );
}

/// Two kube-scheduler replicas run (conformance/run.sh starts two): one holds the Lease, and every
/// pod is bound exactly once.
#[tokio::test]
async fn scheduler_two_replicas_bind_each_pod_once() {
    ensure_fake_nodes().await;
    let c = cluster().await;
    let leases: Api<Lease> = c.ns_api("kube-system");
    let lease = poll_until("the kube-scheduler lease", TICK, WAIT, || async {
        leases.get("kube-scheduler").await.ok()
    })
    .await;
    assert!(
        lease
            .spec
            .and_then(|s| s.holder_identity)
            .is_some_and(|h| !h.is_empty())
    );
    let ns = c.create_namespace("sched-ha").await;
    let api: Api<Pod> = c.ns_api(&ns.name);
    for i in 0..20 {
        api.create(
            &PostParams::default(),
            &pod(
                &format!("p{i}"),
                json!({"nodeSelector": {FAKE_NODE_LABEL: "true"}}),
            ),
        )
        .await
        .unwrap();
    }
    poll_until("all pods bound", TICK, WAIT, || async {
        let pods = api.list(&ListParams::default()).await.ok()?.items;
        pods.iter()
            .all(|p| p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some())
            .then_some(())
    })
    .await;
    // Give a second binder time to (wrongly) act, then count Scheduled events per pod.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let events: Api<Event> = c.ns_api(&ns.name);
    let evs = events.list(&ListParams::default()).await.unwrap().items;
    for i in 0..20 {
        let name = format!("p{i}");
        let n: i32 = evs
            .iter()
            .filter(|e| {
                e.reason.as_deref() == Some("Scheduled")
                    && e.involved_object.name.as_deref() == Some(name.as_str())
            })
            .map(|e| e.count.unwrap_or(1).max(1))
            .sum();
        assert_eq!(n, 1, "pod {name} was scheduled {n} times");
    }
}
