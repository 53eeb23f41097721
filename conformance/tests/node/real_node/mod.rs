//! Shared helpers of the real-node tests; one file per concept below.

use conformance::{Cluster, cluster, poll_until};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Event, Node, Pod};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::json;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);
const TICK: Duration = Duration::from_millis(250);
const BUSYBOX: &str = "registry.k8s.io/e2e-test-images/busybox:1.36.1-1";

/// The real node's name (`conformance/run.sh` exports it).
fn node_name() -> String {
    std::env::var("CONFORMANCE_NODE_NAME")
        .expect("CONFORMANCE_NODE_NAME is not set: run these tests with conformance/run.sh")
}

/// A pod pinned (by nodeSelector, through the scheduler) to the real node.
fn pod(name: &str, spec: serde_json::Value) -> Pod {
    let mut spec = spec;
    spec["nodeSelector"] = json!({"kubernetes.io/hostname": node_name()});
    if spec.get("terminationGracePeriodSeconds").is_none() {
        spec["terminationGracePeriodSeconds"] = json!(1);
    }
    serde_json::from_value(json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name}, "spec": spec}))
    .unwrap()
}

async fn wait_phase(api: &Api<Pod>, name: &str, phases: &[&str]) -> Pod {
    poll_until(
        &format!("pod {name} to reach {phases:?}"),
        TICK,
        WAIT,
        || async {
            let p = api.get(name).await.ok()?;
            let phase = p.status.as_ref()?.phase.clone()?;
            phases.contains(&phase.as_str()).then_some(p)
        },
    )
    .await
}

async fn setup(base: &str) -> (Cluster, conformance::TestNamespace, Api<Pod>) {
    let c = cluster().await;
    let ns = c.create_namespace(base).await;
    let pods: Api<Pod> = c.ns_api(&ns.name);
    (c, ns, pods)
}

fn kubectl() -> conformance::Kubectl {
    conformance::Kubectl::from_env()
}

/// A long-running busybox pod in a new namespace, Running; returns (namespace guard, name).
async fn running_busybox(base: &str, command: &str) -> (conformance::TestNamespace, Api<Pod>) {
    let (_c, ns, pods) = setup(base).await;
    pods.create(
        &PostParams::default(),
        &pod(
            "busybox",
            json!({
        "containers": [{"name": "busybox", "image": BUSYBOX, "command": ["sh", "-c", command]}]}),
        ),
    )
    .await
    .unwrap();
    wait_phase(&pods, "busybox", &["Running"]).await;
    (ns, pods)
}

mod containers;
mod helm;
mod kubectl;
mod pods;
mod probes;
mod volumes;
mod workloads;
