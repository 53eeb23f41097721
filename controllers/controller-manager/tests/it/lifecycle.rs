//! Object-lifecycle controllers: garbage collector (background, orphan, foreground cascades),
//! namespace deletion, default service accounts, kube-root-ca.crt, TTL after finished, pod GC.

use crate::{cluster, wait_for};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Service, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::{Resource, ResourceExt};
use serde_json::json;

/// A non-controller owner reference (several may point at different owners).
fn owner_ref<K: Resource<DynamicType = ()>>(o: &K, block: bool) -> OwnerReference {
    OwnerReference {
        api_version: K::api_version(&()).into(),
        kind: K::kind(&()).into(),
        name: o.meta().name.clone().unwrap(),
        uid: o.meta().uid.clone().unwrap(),
        controller: None,
        block_owner_deletion: Some(block),
    }
}

async fn configmap(
    api: &Api<ConfigMap>,
    name: &str,
    owners: Vec<OwnerReference>,
    finalizers: &[&str],
) -> ConfigMap {
    let cm: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": name, "ownerReferences": owners, "finalizers": finalizers},
    }))
    .unwrap();
    api.create(&PostParams::default(), &cm).await.unwrap()
}

async fn gone<K>(api: &Api<K>, name: &str) -> Option<()>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api.get_opt(name).await.unwrap() {
        None => Some(()),
        Some(_) => None,
    }
}

#[tokio::test]
async fn background_cascade_deletes_dependents_through_two_levels() {
    let c = cluster("garbage-collector-controller", &[]).await;
    let deps: Api<Deployment> = Api::namespaced(c.client.clone(), "default");
    let rss: Api<ReplicaSet> = Api::namespaced(c.client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    let labels = json!({"app": "web"});
    let template = json!({"metadata": {"labels": labels}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}});
    let d: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"selector": {"matchLabels": labels}, "template": template},
    }))
    .unwrap();
    let d = deps.create(&PostParams::default(), &d).await.unwrap();
    let rs: ReplicaSet = serde_json::from_value(json!({
        "metadata": {"name": "web-1", "ownerReferences": [owner_ref(&d, true)]},
        "spec": {"selector": {"matchLabels": labels}, "template": template},
    }))
    .unwrap();
    let rs = rss.create(&PostParams::default(), &rs).await.unwrap();
    for i in 0..2 {
        let p: Pod = serde_json::from_value(json!({
            "metadata": {"name": format!("web-1-{i}"), "labels": labels, "ownerReferences": [owner_ref(&rs, true)]},
            "spec": template["spec"],
        }))
        .unwrap();
        pods.create(&PostParams::default(), &p).await.unwrap();
    }
    // A pod with a second, live owner survives its first owner's deletion.
    let cms: Api<ConfigMap> = Api::namespaced(c.client.clone(), "default");
    let keeper = configmap(&cms, "keeper", vec![], &[]).await;
    let p: Pod = serde_json::from_value(json!({
        "metadata": {"name": "shared", "ownerReferences": [owner_ref(&rs, false), owner_ref(&keeper, false)]},
        "spec": template["spec"],
    }))
    .unwrap();
    pods.create(&PostParams::default(), &p).await.unwrap();

    deps.delete("web", &DeleteParams::default()).await.unwrap();
    wait_for(20, "replicaset deleted", || gone(&rss, "web-1")).await;
    wait_for(20, "pods deleted", || async {
        let left = pods.list(&Default::default()).await.unwrap();
        let names: Vec<String> = left.items.iter().map(|p| p.name_any()).collect();
        (names == ["shared"]).then_some(())
    })
    .await;
    // The shared pod lost only its dangling reference.
    let shared = wait_for(20, "dangling reference removed", || async {
        let p = pods.get("shared").await.unwrap();
        (p.owner_references().len() == 1).then_some(p)
    })
    .await;
    assert_eq!(shared.owner_references()[0].name, "keeper");

    // A dependent whose owner uid never existed is collected after the owner is verified absent.
    let mut fake = owner_ref(&keeper, false);
    fake.uid = "00000000-0000-0000-0000-000000000000".into();
    configmap(&cms, "dangling", vec![fake], &[]).await;
    wait_for(20, "dangling dependent deleted", || gone(&cms, "dangling")).await;
    assert!(cms.get_opt("keeper").await.unwrap().is_some());
}

#[tokio::test]
async fn orphan_deletion_strips_references_and_keeps_dependents() {
    let c = cluster("garbage-collector-controller", &[]).await;
    let cms: Api<ConfigMap> = Api::namespaced(c.client.clone(), "default");
    let owner = configmap(&cms, "owner", vec![], &[]).await;
    let other = configmap(&cms, "other", vec![], &[]).await;
    configmap(&cms, "dep-a", vec![owner_ref(&owner, true)], &[]).await;
    configmap(
        &cms,
        "dep-b",
        vec![owner_ref(&owner, false), owner_ref(&other, false)],
        &[],
    )
    .await;
    // Let the collector see the dependents before the owner goes.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    cms.delete("owner", &DeleteParams::orphan()).await.unwrap();
    wait_for(20, "owner deleted", || gone(&cms, "owner")).await;
    let a = cms.get("dep-a").await.unwrap();
    assert!(
        a.owner_references().is_empty(),
        "{:?}",
        a.owner_references()
    );
    let b = cms.get("dep-b").await.unwrap();
    let names: Vec<&str> = b
        .owner_references()
        .iter()
        .map(|r| r.name.as_str())
        .collect();
    assert_eq!(names, ["other"]);
    // Nothing else is collected later.
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert!(cms.get_opt("dep-a").await.unwrap().is_some());
}

#[tokio::test]
async fn foreground_deletion_waits_for_blocking_dependents() {
    let c = cluster("garbage-collector-controller", &[]).await;
    let cms: Api<ConfigMap> = Api::namespaced(c.client.clone(), "default");
    let owner = configmap(&cms, "owner", vec![], &[]).await;
    configmap(
        &cms,
        "blocker",
        vec![owner_ref(&owner, true)],
        &["test.example.com/hold"],
    )
    .await;
    configmap(&cms, "plain", vec![owner_ref(&owner, false)], &[]).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    cms.delete("owner", &DeleteParams::foreground())
        .await
        .unwrap();
    // Both dependents are deleted; the blocker stays (finalizer) and so does the owner.
    wait_for(20, "plain dependent deleted", || gone(&cms, "plain")).await;
    wait_for(20, "blocker marked for deletion", || async {
        let b = cms.get("blocker").await.unwrap();
        b.meta().deletion_timestamp.is_some().then_some(())
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let o = cms.get("owner").await.unwrap();
    assert!(o.meta().deletion_timestamp.is_some());
    assert!(o.finalizers().iter().any(|f| f == "foregroundDeletion"));
    // The blocker goes: the owner is released.
    cms.patch(
        "blocker",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    wait_for(20, "owner deleted", || gone(&cms, "owner")).await;
}

/// Starts a controller manager against an existing server (for tests that prepare objects
/// before the controllers run).
fn start_controllers(
    url: &str,
    controllers: &str,
    extra: &[&str],
) -> tokio_util::sync::CancellationToken {
    let mut args = vec![
        "kube-controller-manager".to_string(),
        format!("--master={url}"),
        format!("--controllers={controllers}"),
        "--leader-elect=false".into(),
        "--secure-port=0".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let config = <controller_manager::Config as clap::Parser>::parse_from(args);
    let stop = tokio_util::sync::CancellationToken::new();
    let s = stop.clone();
    tokio::spawn(async move { controller_manager::run(config, s).await });
    stop
}

#[tokio::test]
async fn namespace_deletion_empties_the_namespace_and_removes_it() {
    let c = cluster("namespace-controller,garbage-collector-controller", &[]).await;
    let nss: Api<Namespace> = Api::all(c.client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "doomed"}})).unwrap();
    nss.create(&PostParams::default(), &ns).await.unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(c.client.clone(), "doomed");
    configmap(&cms, "a", vec![], &[]).await;
    configmap(&cms, "held", vec![], &["test.example.com/hold"]).await;
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "doomed");
    let p: Pod = serde_json::from_value(json!({
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "nginx"}]},
    }))
    .unwrap();
    pods.create(&PostParams::default(), &p).await.unwrap();
    let svcs: Api<Service> = Api::namespaced(c.client.clone(), "doomed");
    let s: Service = serde_json::from_value(json!({
        "metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]},
    }))
    .unwrap();
    svcs.create(&PostParams::default(), &s).await.unwrap();

    nss.delete("doomed", &DeleteParams::default())
        .await
        .unwrap();
    // Everything deletable goes; the finalizer-held object is reported in the conditions.
    wait_for(20, "content deleted", || async {
        let left = cms.list(&Default::default()).await.unwrap().items.len()
            + pods.list(&Default::default()).await.unwrap().items.len()
            + svcs.list(&Default::default()).await.unwrap().items.len();
        (left == 1).then_some(())
    })
    .await;
    let ns = wait_for(20, "remaining-content conditions", || async {
        let ns = nss.get("doomed").await.unwrap();
        let conds = ns.status.clone()?.conditions?;
        let fin = conds
            .iter()
            .find(|c| c.type_ == "NamespaceFinalizersRemaining")?;
        (fin.status == "True").then_some(ns)
    })
    .await;
    let st = ns.status.unwrap();
    assert_eq!(st.phase.as_deref(), Some("Terminating"));
    let conds = st.conditions.unwrap();
    let get = |t: &str| conds.iter().find(|c| c.type_ == t).unwrap();
    assert_eq!(get("NamespaceDeletionDiscoveryFailure").status, "False");
    assert_eq!(
        get("NamespaceDeletionDiscoveryFailure").reason.as_deref(),
        Some("ResourcesDiscovered")
    );
    assert_eq!(
        get("NamespaceFinalizersRemaining").message.as_deref(),
        Some("Some finalizers are remaining: test.example.com/hold in 1 resource instances")
    );
    assert_eq!(
        get("NamespaceContentRemaining").message.as_deref(),
        Some("Some resources are remaining: configmaps. has 1 resource instances")
    );
    assert_eq!(
        get("NamespaceContentRemaining").reason.as_deref(),
        Some("SomeResourcesRemain")
    );
    assert!(
        nss.get("doomed")
            .await
            .unwrap()
            .spec
            .unwrap()
            .finalizers
            .unwrap()
            .contains(&"kubernetes".to_string())
    );
    // Release the last object: the namespace is finalized and disappears.
    cms.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    wait_for(30, "namespace deleted", || gone(&nss, "doomed")).await;
}

#[tokio::test]
async fn default_service_account_is_created_and_recreated() {
    let c = cluster("serviceaccount-controller", &[]).await;
    let nss: Api<Namespace> = Api::all(c.client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "team"}})).unwrap();
    nss.create(&PostParams::default(), &ns).await.unwrap();
    let sas: Api<ServiceAccount> = Api::namespaced(c.client.clone(), "team");
    let first = wait_for(20, "default service account", || async {
        sas.get_opt("default").await.unwrap()
    })
    .await;
    // Existing namespaces get one too.
    let kube_system: Api<ServiceAccount> = Api::namespaced(c.client.clone(), "kube-system");
    wait_for(20, "kube-system default", || async {
        kube_system.get_opt("default").await.unwrap()
    })
    .await;
    sas.delete("default", &DeleteParams::default())
        .await
        .unwrap();
    let second = wait_for(20, "re-created default", || async {
        sas.get_opt("default")
            .await
            .unwrap()
            .filter(|s| s.metadata.uid != first.metadata.uid)
    })
    .await;
    assert_eq!(second.metadata.name.as_deref(), Some("default"));
}

#[tokio::test]
async fn root_ca_configmap_is_published_and_restored() {
    let dir = std::env::temp_dir().join(format!("root-ca-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca_path = dir.join("ca.crt");
    let pem = "-----BEGIN CERTIFICATE-----\nMIIBtest\n-----END CERTIFICATE-----\n";
    std::fs::write(&ca_path, pem).unwrap();
    let arg = format!("--root-ca-file={}", ca_path.display());
    let c = cluster("root-ca-certificate-publisher-controller", &[&arg]).await;
    let cms: Api<ConfigMap> = Api::namespaced(c.client.clone(), "default");
    let cm = wait_for(20, "kube-root-ca.crt", || async {
        cms.get_opt("kube-root-ca.crt").await.unwrap()
    })
    .await;
    assert_eq!(
        cm.data.as_ref().unwrap().get("ca.crt").map(String::as_str),
        Some(pem)
    );
    assert!(
        cm.metadata.annotations.unwrap()["kubernetes.io/description"]
            .starts_with("Contains a CA bundle")
    );
    // Tampering is undone.
    cms.patch(
        "kube-root-ca.crt",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"ca.crt": "x", "extra": "y"}})),
    )
    .await
    .unwrap();
    wait_for(20, "restored data", || async {
        let cm = cms.get("kube-root-ca.crt").await.unwrap();
        (cm.data.as_ref()?.len() == 1 && cm.data.as_ref()?.get("ca.crt")? == pem).then_some(())
    })
    .await;
    // Deletion is undone.
    cms.delete("kube-root-ca.crt", &DeleteParams::default())
        .await
        .unwrap();
    wait_for(20, "re-created", || async {
        cms.get_opt("kube-root-ca.crt").await.unwrap()
    })
    .await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn finished_job_is_deleted_after_its_ttl() {
    let c = cluster(
        "ttl-after-finished-controller,garbage-collector-controller",
        &[],
    )
    .await;
    let jobs: Api<Job> = Api::namespaced(c.client.clone(), "default");
    let mk = |name: &str, ttl: i64| -> Job {
        serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {
                "ttlSecondsAfterFinished": ttl,
                "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}},
            },
        }))
        .unwrap()
    };
    for (name, ttl) in [("quick", 2), ("slow", 3600)] {
        jobs.create(&PostParams::default(), &mk(name, ttl))
            .await
            .unwrap();
        let now = jiff::Timestamp::now().to_string();
        let status = json!({"status": {
            "startTime": now, "completionTime": now, "succeeded": 1,
            "conditions": [
                {"type": "SuccessCriteriaMet", "status": "True", "lastTransitionTime": now},
                {"type": "Complete", "status": "True", "lastTransitionTime": now},
            ],
        }});
        jobs.patch_status(name, &PatchParams::default(), &Patch::Merge(status))
            .await
            .unwrap();
    }
    // A running job with a TTL stays.
    jobs.create(&PostParams::default(), &mk("running", 0))
        .await
        .unwrap();
    let started = std::time::Instant::now();
    wait_for(20, "quick job deleted", || gone(&jobs, "quick")).await;
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(1000),
        "deleted before its TTL"
    );
    assert!(jobs.get_opt("slow").await.unwrap().is_some());
    assert!(jobs.get_opt("running").await.unwrap().is_some());
}

#[tokio::test]
async fn terminated_pods_over_the_threshold_are_deleted_oldest_first() {
    let server = apiserver::TestServer::start(&[]).await.expect("apiserver");
    let client = kube::Client::try_from(kube::Config::new(server.url.parse().unwrap())).unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    for name in ["p1", "p2", "p3", "running"] {
        let p: Pod = serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "nginx"}]},
        }))
        .unwrap();
        pods.create(&PostParams::default(), &p).await.unwrap();
        let phase = if name == "running" {
            "Running"
        } else {
            "Succeeded"
        };
        pods.patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": phase}})),
        )
        .await
        .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    }
    let stop = start_controllers(
        &server.url,
        "pod-garbage-collector-controller",
        &["--terminated-pod-gc-threshold=1"],
    );
    wait_for(20, "two oldest terminated pods deleted", || async {
        let mut names: Vec<String> = pods
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .iter()
            .map(|p| p.name_any())
            .collect();
        names.sort();
        (names == ["p3", "running"]).then_some(())
    })
    .await;
    stop.cancel();
}
