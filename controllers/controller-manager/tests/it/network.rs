//! Endpoints, EndpointSlices (and mirroring), disruption budgets, node lifecycle and resource
//! quota controllers against the test apiserver; the test plays the kubelet.

use crate::{Cluster, cluster, wait_for};
use k8s_openapi::api::core::v1::{Endpoints, Namespace, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

async fn namespace(c: &Cluster, name: &str) {
    let api: Api<Namespace> = Api::all(c.client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    api.create(&PostParams::default(), &ns).await.unwrap();
}

async fn node(c: &Cluster, name: &str, ready: bool) {
    let api: Api<Node> = Api::all(c.client.clone());
    let n: Node = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"topology.kubernetes.io/zone": "zone-a"}},
    }))
    .unwrap();
    api.create(&PostParams::default(), &n).await.unwrap();
    set_node_ready(c, name, ready).await;
}

async fn set_node_ready(c: &Cluster, name: &str, ready: bool) {
    let api: Api<Node> = Api::all(c.client.clone());
    let now = jiff::Timestamp::now().to_string();
    let status = if ready { "True" } else { "False" };
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"conditions": [{
            "type": "Ready", "status": status, "reason": "KubeletReady", "message": "kubelet is posting ready status",
            "lastHeartbeatTime": now, "lastTransitionTime": now,
        }]}})),
    )
    .await
    .unwrap();
}

/// A pod of `app` on `node` exposing container port `http` = 8080.
async fn pod(c: &Cluster, ns: &str, name: &str, app: &str, node: &str, extra: serde_json::Value) -> Pod {
    let api: Api<Pod> = Api::namespaced(c.client.clone(), ns);
    let mut v = json!({
        "metadata": {"name": name, "labels": {"app": app}},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "nginx",
            "ports": [{"name": "http", "containerPort": 8080}]}]},
    });
    if let Some(o) = extra.as_object() {
        for (k, val) in o {
            v["metadata"][k] = val.clone();
        }
    }
    api.create(&PostParams::default(), &serde_json::from_value(v).unwrap())
        .await
        .unwrap()
}

/// Plays the kubelet: the pod runs with `ip`, Ready as given.
async fn set_pod_ready(c: &Cluster, ns: &str, name: &str, ip: &str, ready: bool) {
    let api: Api<Pod> = Api::namespaced(c.client.clone(), ns);
    let now = jiff::Timestamp::now().to_string();
    let status = if ready { "True" } else { "False" };
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {
            "phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
            "conditions": [{"type": "Ready", "status": status, "lastTransitionTime": now}],
        }})),
    )
    .await
    .unwrap();
}

fn ips(list: Option<&Vec<k8s_openapi::api::core::v1::EndpointAddress>>) -> Vec<String> {
    let mut v: Vec<String> = list.into_iter().flatten().map(|a| a.ip.clone()).collect();
    v.sort();
    v
}

#[tokio::test]
async fn service_endpoints_and_slices_follow_pod_readiness() {
    let c = cluster("endpoint,endpointslice", &[]).await;
    let ns = "net";
    namespace(&c, ns).await;
    node(&c, "node-1", true).await;
    let svcs: Api<Service> = Api::namespaced(c.client.clone(), ns);
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"name": "web", "labels": {"tier": "front"}},
        "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
    }))
    .unwrap();
    let svc = svcs.create(&PostParams::default(), &svc).await.unwrap();
    pod(&c, ns, "web-1", "web", "node-1", json!({})).await;
    pod(&c, ns, "web-2", "web", "node-1", json!({})).await;
    pod(&c, ns, "other", "db", "node-1", json!({})).await;
    set_pod_ready(&c, ns, "web-1", "10.1.0.1", true).await;
    set_pod_ready(&c, ns, "web-2", "10.1.0.2", false).await;
    set_pod_ready(&c, ns, "other", "10.1.0.9", true).await;

    let eps: Api<Endpoints> = Api::namespaced(c.client.clone(), ns);
    let ep = wait_for(20, "endpoints with one ready and one not-ready address", || {
        let eps = eps.clone();
        async move {
            let ep = eps.get_opt("web").await.ok()??;
            let s = ep.subsets.as_ref()?.first()?.clone();
            (ips(s.addresses.as_ref()) == ["10.1.0.1"]
                && ips(s.not_ready_addresses.as_ref()) == ["10.1.0.2"])
                .then_some(ep)
        }
    })
    .await;
    let subset = &ep.subsets.as_ref().unwrap()[0];
    let port = &subset.ports.as_ref().unwrap()[0];
    assert_eq!((port.name.as_deref(), port.port), (Some("http"), 8080));
    let addr = &subset.addresses.as_ref().unwrap()[0];
    assert_eq!(addr.node_name.as_deref(), Some("node-1"));
    let tr = addr.target_ref.as_ref().unwrap();
    assert_eq!((tr.kind.as_deref(), tr.name.as_deref()), (Some("Pod"), Some("web-1")));
    assert_eq!(ep.metadata.labels.as_ref().unwrap()["tier"], "front");
    assert!(
        ep.metadata.annotations.as_ref().unwrap()
            .contains_key("endpoints.kubernetes.io/last-change-trigger-time"),
        "{:?}", ep.metadata
    );

    let slices: Api<EndpointSlice> = Api::namespaced(c.client.clone(), ns);
    let lp = ListParams::default().labels("kubernetes.io/service-name=web");
    let slice = wait_for(20, "an EndpointSlice with both pods", || {
        let (slices, lp) = (slices.clone(), lp.clone());
        async move {
            let list = slices.list(&lp).await.ok()?;
            let s = list.items.into_iter().next()?;
            (s.endpoints.as_ref().map_or(0, Vec::len) == 2).then_some(s)
        }
    })
    .await;
    let labels = slice.metadata.labels.as_ref().unwrap();
    assert_eq!(labels["endpointslice.kubernetes.io/managed-by"], "endpointslice-controller.k8s.io");
    assert_eq!(labels["tier"], "front");
    assert_eq!(slice.address_type, "IPv4");
    assert_eq!(slice.metadata.generate_name.as_deref(), Some("web-"));
    let owner = &slice.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!((owner.kind.as_str(), owner.uid.as_str()), ("Service", svc.metadata.uid.as_deref().unwrap()));
    let ready_of = |s: &EndpointSlice, ip: &str| {
        let e = s.endpoints.iter().flatten().find(|e| e.addresses[0] == ip).unwrap();
        let cond = e.conditions.as_ref().unwrap();
        (cond.ready, e.node_name.clone(), e.zone.clone())
    };
    assert_eq!(ready_of(&slice, "10.1.0.1"), (Some(true), Some("node-1".into()), Some("zone-a".into())));
    assert_eq!(ready_of(&slice, "10.1.0.2").0, Some(false));
    let sp = &slice.ports.as_ref().unwrap()[0];
    assert_eq!((sp.name.as_deref(), sp.port), (Some("http"), Some(8080)));

    // web-2 becomes ready; web-1 goes away.
    set_pod_ready(&c, ns, "web-2", "10.1.0.2", true).await;
    Api::<Pod>::namespaced(c.client.clone(), ns)
        .delete("web-1", &DeleteParams { grace_period_seconds: Some(0), ..Default::default() })
        .await
        .unwrap();
    wait_for(20, "endpoints with only web-2, ready", || {
        let eps = eps.clone();
        async move {
            let ep = eps.get_opt("web").await.ok()??;
            let s = ep.subsets.as_ref()?.first()?.clone();
            (ips(s.addresses.as_ref()) == ["10.1.0.2"] && s.not_ready_addresses.is_none()).then_some(())
        }
    })
    .await;
    wait_for(20, "the slice with only web-2, ready", || {
        let (slices, lp) = (slices.clone(), lp.clone());
        async move {
            let list = slices.list(&lp).await.ok()?;
            let [s] = list.items.as_slice() else { return None };
            let eps = s.endpoints.as_ref()?;
            (eps.len() == 1
                && eps[0].addresses == ["10.1.0.2"]
                && eps[0].conditions.as_ref()?.ready == Some(true))
            .then_some(())
        }
    })
    .await;

    // Deleting the service deletes its Endpoints.
    svcs.delete("web", &DeleteParams::default()).await.unwrap();
    wait_for(20, "endpoints deleted with the service", || {
        let eps = eps.clone();
        async move { eps.get_opt("web").await.ok()?.is_none().then_some(()) }
    })
    .await;
}
