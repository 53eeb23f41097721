//! Object-lifecycle controllers: garbage collector (background, orphan, foreground cascades),
//! namespace deletion, default service accounts, kube-root-ca.crt, TTL after finished, pod GC.

use crate::{cluster, wait_for};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
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

async fn configmap(api: &Api<ConfigMap>, name: &str, owners: Vec<OwnerReference>, finalizers: &[&str]) -> ConfigMap {
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
    configmap(&cms, "dep-b", vec![owner_ref(&owner, false), owner_ref(&other, false)], &[]).await;
    // Let the collector see the dependents before the owner goes.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    cms.delete("owner", &DeleteParams::orphan()).await.unwrap();
    wait_for(20, "owner deleted", || gone(&cms, "owner")).await;
    let a = cms.get("dep-a").await.unwrap();
    assert!(a.owner_references().is_empty(), "{:?}", a.owner_references());
    let b = cms.get("dep-b").await.unwrap();
    let names: Vec<&str> = b.owner_references().iter().map(|r| r.name.as_str()).collect();
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
    configmap(&cms, "blocker", vec![owner_ref(&owner, true)], &["test.example.com/hold"]).await;
    configmap(&cms, "plain", vec![owner_ref(&owner, false)], &[]).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    cms.delete("owner", &DeleteParams::foreground()).await.unwrap();
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
