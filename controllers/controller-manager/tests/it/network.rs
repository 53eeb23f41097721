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
async fn pod(
    c: &Cluster,
    ns: &str,
    name: &str,
    app: &str,
    node: &str,
    extra: serde_json::Value,
) -> Pod {
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
    let ep = wait_for(
        20,
        "endpoints with one ready and one not-ready address",
        || {
            let eps = eps.clone();
            async move {
                let ep = eps.get_opt("web").await.ok()??;
                let s = ep.subsets.as_ref()?.first()?.clone();
                (ips(s.addresses.as_ref()) == ["10.1.0.1"]
                    && ips(s.not_ready_addresses.as_ref()) == ["10.1.0.2"])
                .then_some(ep)
            }
        },
    )
    .await;
    let subset = &ep.subsets.as_ref().unwrap()[0];
    let port = &subset.ports.as_ref().unwrap()[0];
    assert_eq!((port.name.as_deref(), port.port), (Some("http"), 8080));
    let addr = &subset.addresses.as_ref().unwrap()[0];
    assert_eq!(addr.node_name.as_deref(), Some("node-1"));
    let tr = addr.target_ref.as_ref().unwrap();
    assert_eq!(
        (tr.kind.as_deref(), tr.name.as_deref()),
        (Some("Pod"), Some("web-1"))
    );
    assert_eq!(ep.metadata.labels.as_ref().unwrap()["tier"], "front");
    assert!(
        ep.metadata
            .annotations
            .as_ref()
            .unwrap()
            .contains_key("endpoints.kubernetes.io/last-change-trigger-time"),
        "{:?}",
        ep.metadata
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
    assert_eq!(
        labels["endpointslice.kubernetes.io/managed-by"],
        "endpointslice-controller.k8s.io"
    );
    assert_eq!(labels["tier"], "front");
    assert_eq!(slice.address_type, "IPv4");
    assert_eq!(slice.metadata.generate_name.as_deref(), Some("web-"));
    let owner = &slice.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str()),
        ("Service", svc.metadata.uid.as_deref().unwrap())
    );
    let ready_of = |s: &EndpointSlice, ip: &str| {
        let e = s
            .endpoints
            .iter()
            .flatten()
            .find(|e| e.addresses[0] == ip)
            .unwrap();
        let cond = e.conditions.as_ref().unwrap();
        (cond.ready, e.node_name.clone(), e.zone.clone())
    };
    assert_eq!(
        ready_of(&slice, "10.1.0.1"),
        (Some(true), Some("node-1".into()), Some("zone-a".into()))
    );
    assert_eq!(ready_of(&slice, "10.1.0.2").0, Some(false));
    let sp = &slice.ports.as_ref().unwrap()[0];
    assert_eq!((sp.name.as_deref(), sp.port), (Some("http"), Some(8080)));

    // web-2 becomes ready; web-1 goes away.
    set_pod_ready(&c, ns, "web-2", "10.1.0.2", true).await;
    Api::<Pod>::namespaced(c.client.clone(), ns)
        .delete(
            "web-1",
            &DeleteParams {
                grace_period_seconds: Some(0),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    wait_for(20, "endpoints with only web-2, ready", || {
        let eps = eps.clone();
        async move {
            let ep = eps.get_opt("web").await.ok()??;
            let s = ep.subsets.as_ref()?.first()?.clone();
            (ips(s.addresses.as_ref()) == ["10.1.0.2"] && s.not_ready_addresses.is_none())
                .then_some(())
        }
    })
    .await;
    wait_for(20, "the slice with only web-2, ready", || {
        let (slices, lp) = (slices.clone(), lp.clone());
        async move {
            let list = slices.list(&lp).await.ok()?;
            let [s] = list.items.as_slice() else {
                return None;
            };
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

fn pdb_status(
    p: &k8s_openapi::api::policy::v1::PodDisruptionBudget,
) -> Option<(i32, i32, i32, i32, String, String)> {
    let s = p.status.as_ref()?;
    let c = s
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "DisruptionAllowed")?;
    Some((
        s.expected_pods?,
        s.desired_healthy?,
        s.current_healthy?,
        s.disruptions_allowed?,
        c.status.clone(),
        c.reason.clone(),
    ))
}

#[tokio::test]
async fn disruption_budget_status_counts_healthy_pods_against_the_controller_scale() {
    use k8s_openapi::api::apps::v1::StatefulSet;
    use k8s_openapi::api::policy::v1::PodDisruptionBudget;
    let c = cluster("disruption", &[]).await;
    let ns = "pdb";
    namespace(&c, ns).await;
    let sts: StatefulSet = serde_json::from_value(json!({
        "metadata": {"name": "db"},
        "spec": {"replicas": 4, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
            "template": {"metadata": {"labels": {"app": "db"}},
                "spec": {"containers": [{"name": "c", "image": "db"}]}}},
    }))
    .unwrap();
    let sts = Api::<StatefulSet>::namespaced(c.client.clone(), ns)
        .create(&PostParams::default(), &sts)
        .await
        .unwrap();
    let owner = json!({"ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "db",
        "uid": sts.metadata.uid.clone().unwrap(), "controller": true}]});
    for i in 0..3 {
        pod(&c, ns, &format!("db-{i}"), "db", "", owner.clone()).await;
        set_pod_ready(&c, ns, &format!("db-{i}"), &format!("10.2.0.{i}"), i < 2).await;
    }
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(c.client.clone(), ns);
    for (name, field, value) in [
        ("max", "maxUnavailable", json!(1)),
        ("min", "minAvailable", json!("50%")),
        ("count", "minAvailable", json!(2)),
    ] {
        let p: PodDisruptionBudget = serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {field: value, "selector": {"matchLabels": {"app": "db"}}},
        }))
        .unwrap();
        pdbs.create(&PostParams::default(), &p).await.unwrap();
    }
    let status = |name: &'static str, want: (i32, i32, i32, i32, &'static str, &'static str)| {
        let pdbs = pdbs.clone();
        async move {
            let got = wait_for(20, &format!("status of PDB {name}: {want:?}"), || {
                let pdbs = pdbs.clone();
                async move {
                    let p = pdbs.get(name).await.ok()?;
                    let s = pdb_status(&p)?;
                    let w = (
                        want.0,
                        want.1,
                        want.2,
                        want.3,
                        want.4.to_string(),
                        want.5.to_string(),
                    );
                    (s == w).then_some(p)
                }
            })
            .await;
            assert_eq!(
                got.status.unwrap().observed_generation,
                got.metadata.generation
            );
        }
    };
    // Expected pods come from the StatefulSet's 4 replicas, not the 3 pods.
    status("max", (4, 3, 2, 0, "False", "InsufficientPods")).await;
    status("min", (4, 2, 2, 0, "False", "InsufficientPods")).await;
    // An integer minAvailable counts the pods themselves.
    status("count", (3, 2, 2, 0, "False", "InsufficientPods")).await;
    set_pod_ready(&c, ns, "db-2", "10.2.0.2", true).await;
    status("max", (4, 3, 3, 0, "False", "InsufficientPods")).await;
    status("min", (4, 2, 3, 1, "True", "SufficientPods")).await;
    status("count", (3, 2, 3, 1, "True", "SufficientPods")).await;
}

async fn renew_lease(c: &Cluster, node: &str) {
    use k8s_openapi::api::coordination::v1::Lease;
    let api: Api<Lease> = Api::namespaced(c.client.clone(), "kube-node-lease");
    let now = jiff::Timestamp::now().to_string();
    let lease: Lease = serde_json::from_value(json!({
        "metadata": {"name": node},
        "spec": {"holderIdentity": node, "leaseDurationSeconds": 40, "renewTime": now},
    }))
    .unwrap();
    match api.get_opt(node).await.unwrap() {
        None => {
            api.create(&PostParams::default(), &lease).await.unwrap();
        }
        Some(_) => {
            api.patch(
                node,
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"renewTime": now}})),
            )
            .await
            .unwrap();
        }
    }
}

fn taints_of(n: &Node) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = n
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .into_iter()
        .flatten()
        .map(|t| (t.key.clone(), t.effect.clone()))
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn silent_nodes_become_unknown_tainted_and_evicted() {
    let c = cluster(
        "nodelifecycle,taint-eviction-controller",
        &[
            "--node-monitor-period=200ms",
            "--node-monitor-grace-period=2s",
        ],
    )
    .await;
    let nss: Api<Namespace> = Api::all(c.client.clone());
    if nss.get_opt("kube-node-lease").await.unwrap().is_none() {
        namespace(&c, "kube-node-lease").await;
    }
    let ns = "nodes";
    namespace(&c, ns).await;
    node(&c, "silent", true).await;
    renew_lease(&c, "silent").await;
    node(&c, "sick", false).await;
    renew_lease(&c, "sick").await;
    // The kubelet of "sick" keeps renewing its lease.
    let renewer = {
        let client = c.client.clone();
        let server = c.server.url.clone();
        tokio::spawn(async move {
            let _ = server;
            let api: Api<k8s_openapi::api::coordination::v1::Lease> =
                Api::namespaced(client, "kube-node-lease");
            loop {
                let now = jiff::Timestamp::now().to_string();
                let _ = api
                    .patch(
                        "sick",
                        &PatchParams::default(),
                        &Patch::Merge(json!({"spec": {"renewTime": now}})),
                    )
                    .await;
                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            }
        })
    };
    {
        // Without a toleration of its own the DefaultTolerationSeconds admission plugin would give
        // the pod 300 s; tolerating the taint for 0 s means "evict at once".
        let api: Api<Pod> = Api::namespaced(c.client.clone(), ns);
        let p: Pod = serde_json::from_value(json!({
            "metadata": {"name": "plain", "labels": {"app": "x"}},
            "spec": {"nodeName": "silent", "containers": [{"name": "c", "image": "x"}],
                "tolerations": [{"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                    "effect": "NoExecute", "tolerationSeconds": 0}]},
        }))
        .unwrap();
        api.create(&PostParams::default(), &p).await.unwrap();
    }
    set_pod_ready(&c, ns, "plain", "10.3.0.1", true).await;
    let tolerant = {
        let api: Api<Pod> = Api::namespaced(c.client.clone(), ns);
        let p: Pod = serde_json::from_value(json!({
            "metadata": {"name": "tolerant"},
            "spec": {"nodeName": "silent", "containers": [{"name": "c", "image": "x"}],
                "tolerations": [{"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                    "effect": "NoExecute", "tolerationSeconds": 3600}]},
        }))
        .unwrap();
        api.create(&PostParams::default(), &p).await.unwrap();
        set_pod_ready(&c, ns, "tolerant", "10.3.0.2", true).await;
        api
    };

    let nodes: Api<Node> = Api::all(c.client.clone());
    let silent = wait_for(
        20,
        "the silent node to be Unknown and tainted unreachable",
        || {
            let nodes = nodes.clone();
            async move {
                let n = nodes.get("silent").await.ok()?;
                let t = taints_of(&n);
                (t.contains(&("node.kubernetes.io/unreachable".into(), "NoExecute".into()))
                    && t.contains(&("node.kubernetes.io/unreachable".into(), "NoSchedule".into())))
                .then_some(n)
            }
        },
    )
    .await;
    let conds = silent.status.as_ref().unwrap().conditions.as_ref().unwrap();
    for t in ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"] {
        let cnd = conds.iter().find(|c| c.type_ == t).unwrap();
        assert_eq!(cnd.status, "Unknown", "{t}");
    }
    let ready = conds.iter().find(|c| c.type_ == "Ready").unwrap();
    assert_eq!(ready.reason.as_deref(), Some("NodeStatusUnknown"));
    assert_eq!(
        ready.message.as_deref(),
        Some("Kubelet stopped posting node status.")
    );
    let mem = conds.iter().find(|c| c.type_ == "MemoryPressure").unwrap();
    assert_eq!(mem.reason.as_deref(), Some("NodeStatusNeverUpdated"));

    // The pod without a toleration is evicted; the tolerant one stays but is not ready.
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), ns);
    wait_for(20, "the intolerant pod to be deleted", || {
        let pods = pods.clone();
        async move {
            match pods.get_opt("plain").await.ok()? {
                None => Some(()),
                Some(p) => p.metadata.deletion_timestamp.map(|_| ()),
            }
        }
    })
    .await;
    let p = tolerant.get("tolerant").await.unwrap();
    assert!(p.metadata.deletion_timestamp.is_none());
    let ready = p
        .status
        .unwrap()
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(ready.status, "False");

    // A NotReady node that still renews its lease is tainted not-ready, and stays False.
    let sick = wait_for(20, "the NotReady node to be tainted not-ready", || {
        let nodes = nodes.clone();
        async move {
            let n = nodes.get("sick").await.ok()?;
            let t = taints_of(&n);
            (t == [
                (
                    "node.kubernetes.io/not-ready".to_string(),
                    "NoExecute".to_string(),
                ),
                (
                    "node.kubernetes.io/not-ready".to_string(),
                    "NoSchedule".to_string(),
                ),
            ])
            .then_some(n)
        }
    })
    .await;
    let ready = sick
        .status
        .unwrap()
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(ready.status, "False");
    renewer.abort();
}

#[tokio::test]
async fn resource_quota_usage_is_counted() {
    use k8s_openapi::api::core::v1::{ConfigMap, ResourceQuota};
    let c = cluster("resourcequota", &[]).await;
    let ns = "quota";
    namespace(&c, ns).await;
    let rq: ResourceQuota = serde_json::from_value(json!({
        "metadata": {"name": "q"},
        "spec": {"hard": {"pods": "10", "configmaps": "5", "requests.cpu": "4", "limits.memory": "2Gi",
            "services": "3", "count/deployments.apps": "2"}},
    }))
    .unwrap();
    Api::<ResourceQuota>::namespaced(c.client.clone(), ns)
        .create(&PostParams::default(), &rq)
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), ns);
    for (name, cpu, mem) in [("a", "250m", "256Mi"), ("b", "500m", "768Mi")] {
        let p: Pod = serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "x",
                "resources": {"requests": {"cpu": cpu}, "limits": {"memory": mem}}}]},
        }))
        .unwrap();
        pods.create(&PostParams::default(), &p).await.unwrap();
    }
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "cm"}})).unwrap();
    Api::<ConfigMap>::namespaced(c.client.clone(), ns)
        .create(&PostParams::default(), &cm)
        .await
        .unwrap();
    let quotas: Api<ResourceQuota> = Api::namespaced(c.client.clone(), ns);
    let want = |pairs: &[(&str, &str)]| -> std::collections::BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let used_of = |rq: &ResourceQuota| -> std::collections::BTreeMap<String, String> {
        rq.status
            .as_ref()
            .and_then(|s| s.used.clone())
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.0))
            .collect()
    };
    let expected = want(&[
        ("pods", "2"),
        ("configmaps", "1"),
        ("requests.cpu", "750m"),
        ("limits.memory", "1Gi"),
        ("services", "0"),
        ("count/deployments.apps", "0"),
    ]);
    let rq = wait_for(20, "quota usage for two pods and a configmap", || {
        let (quotas, expected) = (quotas.clone(), expected.clone());
        async move {
            let rq = quotas.get("q").await.ok()?;
            (used_of(&rq) == expected).then_some(rq)
        }
    })
    .await;
    let hard: Vec<String> = rq.status.unwrap().hard.unwrap().into_keys().collect();
    assert_eq!(hard.len(), 6);
    // A finished pod no longer counts.
    pods.patch_status(
        "b",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"phase": "Succeeded"}})),
    )
    .await
    .unwrap();
    let expected = want(&[
        ("pods", "1"),
        ("configmaps", "1"),
        ("requests.cpu", "250m"),
        ("limits.memory", "256Mi"),
        ("services", "0"),
        ("count/deployments.apps", "0"),
    ]);
    wait_for(20, "quota usage after a pod finished", || {
        let (quotas, expected) = (quotas.clone(), expected.clone());
        async move { (used_of(&quotas.get("q").await.ok()?) == expected).then_some(()) }
    })
    .await;
}

#[tokio::test]
async fn endpoints_of_selectorless_services_are_mirrored_into_slices() {
    let c = cluster("endpoint,endpointslice,endpointslicemirroring", &[]).await;
    let ns = "mirror";
    namespace(&c, ns).await;
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"name": "ext"},
        "spec": {"ports": [{"name": "db", "port": 5432}]},
    }))
    .unwrap();
    Api::<Service>::namespaced(c.client.clone(), ns)
        .create(&PostParams::default(), &svc)
        .await
        .unwrap();
    let ep: Endpoints = serde_json::from_value(json!({
        "metadata": {"name": "ext"},
        "subsets": [{"addresses": [{"ip": "192.168.1.10"}], "notReadyAddresses": [{"ip": "192.168.1.11"}],
            "ports": [{"name": "db", "port": 5432}]}],
    }))
    .unwrap();
    let eps: Api<Endpoints> = Api::namespaced(c.client.clone(), ns);
    eps.create(&PostParams::default(), &ep).await.unwrap();
    let slices: Api<EndpointSlice> = Api::namespaced(c.client.clone(), ns);
    let lp = ListParams::default().labels("kubernetes.io/service-name=ext");
    let s = wait_for(20, "a mirrored EndpointSlice", || {
        let (slices, lp) = (slices.clone(), lp.clone());
        async move {
            let list = slices.list(&lp).await.ok()?;
            let [s] = list.items.as_slice() else {
                return None;
            };
            (s.endpoints.as_ref().map_or(0, Vec::len) == 2).then(|| s.clone())
        }
    })
    .await;
    assert_eq!(
        s.metadata.labels.as_ref().unwrap()["endpointslice.kubernetes.io/managed-by"],
        "endpointslicemirroring-controller.k8s.io"
    );
    let ready: Vec<(String, Option<bool>)> = s
        .endpoints
        .iter()
        .flatten()
        .map(|e| {
            (
                e.addresses[0].clone(),
                e.conditions.as_ref().and_then(|c| c.ready),
            )
        })
        .collect();
    assert!(ready.contains(&("192.168.1.10".into(), Some(true))));
    assert!(ready.contains(&("192.168.1.11".into(), Some(false))));
    // The endpoints controller leaves the hand-written Endpoints alone.
    let kept = eps.get("ext").await.unwrap();
    assert_eq!(
        ips(kept.subsets.as_ref().unwrap()[0].addresses.as_ref()),
        ["192.168.1.10"]
    );
    // Removing the Endpoints removes the mirror.
    eps.delete("ext", &DeleteParams::default()).await.unwrap();
    wait_for(20, "the mirrored slice to go", || {
        let (slices, lp) = (slices.clone(), lp.clone());
        async move { slices.list(&lp).await.ok()?.items.is_empty().then_some(()) }
    })
    .await;
}
