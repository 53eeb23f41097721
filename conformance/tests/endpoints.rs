//! Endpoints and EndpointSlices follow a Service's ready pods. Mirrors upstream
//! `test/e2e/network/endpointslice.go` ("EndpointSlice").

use conformance::fakenode::{NOT_READY_ANNOTATION, ensure_fake_nodes};
use conformance::{cluster, poll_until};
use k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);
const TICK: Duration = Duration::from_millis(250);

fn pod(name: &str, ready: bool) -> Pod {
    let annotations = if ready {
        json!({})
    } else {
        json!({NOT_READY_ANNOTATION: "true"})
    };
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "eps"}, "annotations": annotations},
        "spec": {"terminationGracePeriodSeconds": 0,
                 "containers": [{"name": "c", "image": "httpd:1", "ports": [{"name": "http", "containerPort": 8080}]}]},
    }))
    .unwrap()
}

/// [sig-network] EndpointSlice should create Endpoints and EndpointSlices for Pods matching a Service [Conformance]
#[tokio::test]
async fn conformance_endpointslice_for_pods_matching_a_service() {
    ensure_fake_nodes().await;
    let c = cluster().await;
    let ns = c.create_namespace("endpointslice").await;
    let svcs: Api<Service> = c.ns_api(&ns.name);
    let svc: Service = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "example-named-port"},
        "spec": {"selector": {"app": "eps"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
    }))
    .unwrap();
    svcs.create(&PostParams::default(), &svc).await.unwrap();
    let pods: Api<Pod> = c.ns_api(&ns.name);
    pods.create(&PostParams::default(), &pod("pod1", true))
        .await
        .unwrap();
    pods.create(&PostParams::default(), &pod("pod2", false))
        .await
        .unwrap();
    let slices: Api<EndpointSlice> = c.ns_api(&ns.name);
    let slice = poll_until("an EndpointSlice with both pods", TICK, WAIT, || async {
        let list = slices
            .list(&ListParams::default().labels("kubernetes.io/service-name=example-named-port"))
            .await
            .ok()?
            .items;
        let s = list.into_iter().next()?;
        (s.endpoints.as_ref()?.len() == 2
            && s.endpoints.as_ref()?.iter().all(|e| {
                e.addresses
                    .first()
                    .is_some_and(|a| a.starts_with("10.244."))
            }))
        .then_some(s)
    })
    .await;
    assert_eq!(slice.address_type, "IPv4");
    assert_eq!(
        slice
            .metadata
            .labels
            .as_ref()
            .unwrap()
            .get("endpointslice.kubernetes.io/managed-by")
            .map(String::as_str),
        Some("endpointslice-controller.k8s.io")
    );
    let port = &slice.ports.as_ref().expect("ports")[0];
    assert_eq!(
        (port.name.as_deref(), port.port),
        (Some("http"), Some(8080)),
        "targetPort resolved by name"
    );
    for ep in slice.endpoints.as_ref().expect("endpoints") {
        let name = ep
            .target_ref
            .as_ref()
            .and_then(|r| r.name.clone())
            .unwrap_or_default();
        let ready = ep.conditions.as_ref().and_then(|c| c.ready);
        assert_eq!(ready, Some(name == "pod1"), "readiness of {name}");
    }
    // Endpoints (v1) agree: one ready address, one not ready.
    let eps: Api<Endpoints> = c.ns_api(&ns.name);
    let e = poll_until("Endpoints", TICK, WAIT, || async {
        eps.get_opt("example-named-port").await.ok()?
    })
    .await;
    let subset = &e.subsets.expect("subsets")[0];
    assert_eq!(subset.addresses.as_ref().map(Vec::len), Some(1));
    assert_eq!(subset.not_ready_addresses.as_ref().map(Vec::len), Some(1));
    // pod2 becomes ready (the stand-in kubelet follows the annotation): both endpoints ready.
    pods.patch(
        "pod2",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"annotations": {NOT_READY_ANNOTATION: null}}})),
    )
    .await
    .unwrap();
    poll_until("both endpoints ready", TICK, WAIT, || async {
        let s = slices
            .list(&ListParams::default().labels("kubernetes.io/service-name=example-named-port"))
            .await
            .ok()?
            .items
            .into_iter()
            .next()?;
        s.endpoints
            .as_ref()?
            .iter()
            .all(|e| e.conditions.as_ref().and_then(|c| c.ready) == Some(true))
            .then_some(())
    })
    .await;
    // A deleted pod leaves the slice.
    pods.delete("pod1", &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    poll_until("pod1 to leave the slice", TICK, WAIT, || async {
        let s = slices
            .list(&ListParams::default().labels("kubernetes.io/service-name=example-named-port"))
            .await
            .ok()?
            .items
            .into_iter()
            .next()?;
        (s.endpoints.as_ref()?.len() == 1).then_some(())
    })
    .await;
}
