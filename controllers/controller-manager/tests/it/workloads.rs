//! ReplicaSet, ReplicationController and Deployment controllers against a test apiserver; the
//! test plays the kubelet by marking pods Running and Ready through the status subresource.

use crate::{Cluster, cluster, wait_for};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Pod, ReplicationController};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;

const NS: &str = "default";

fn pods_api(c: &Cluster) -> Api<Pod> {
    Api::namespaced(c.client.clone(), NS)
}

/// Active (not being deleted) pods carrying `app=<app>`.
async fn active_pods(c: &Cluster, app: &str) -> Vec<Pod> {
    pods_api(c)
        .list(&ListParams::default().labels(&format!("app={app}")))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect()
}

fn is_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Plays the kubelet once: every pod not yet ready becomes Running and Ready.
async fn mark_ready(client: &kube::Client) -> usize {
    let api: Api<Pod> = Api::namespaced(client.clone(), NS);
    let Ok(list) = api.list(&ListParams::default()).await else {
        return 0;
    };
    let mut n = 0;
    for p in list.items {
        if is_ready(&p) || p.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let now = jiff::Timestamp::now().to_string();
        let status = json!({"status": {"phase": "Running", "conditions": [
            {"type": "Ready", "status": "True", "lastTransitionTime": now},
        ]}});
        if api
            .patch_status(
                &p.name_any(),
                &PatchParams::default(),
                &Patch::Merge(status),
            )
            .await
            .is_ok()
        {
            n += 1;
        }
    }
    n
}

/// A kubelet that keeps marking pods ready until the cluster is dropped.
fn kubelet(c: &Cluster) {
    let client = c.client.clone();
    tokio::spawn(async move {
        loop {
            mark_ready(&client).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
}

fn labels(app: &str) -> BTreeMap<String, String> {
    [("app".to_string(), app.to_string())].into()
}

fn template(app: &str, image: &str) -> serde_json::Value {
    json!({
        "metadata": {"labels": labels(app)},
        "spec": {"containers": [{"name": "c", "image": image}]},
    })
}

async fn create_rs(c: &Cluster, name: &str, app: &str, replicas: i32) -> ReplicaSet {
    let rs: ReplicaSet = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": labels(app)},
                 "template": template(app, "nginx:1")},
    }))
    .unwrap();
    Api::<ReplicaSet>::namespaced(c.client.clone(), NS)
        .create(&PostParams::default(), &rs)
        .await
        .unwrap()
}

async fn wait_pod_count(c: &Cluster, app: &str, n: usize) -> Vec<Pod> {
    wait_for(20, &format!("{n} active pods of {app}"), || async {
        let pods = active_pods(c, app).await;
        (pods.len() == n).then_some(pods)
    })
    .await
}

#[tokio::test]
async fn replicaset_creates_replaces_scales_down_and_reports_status() {
    let c = cluster("replicaset-controller", &[]).await;
    kubelet(&c);
    let rs = create_rs(&c, "web", "web", 3).await;
    let pods = wait_pod_count(&c, "web", 3).await;
    for p in &pods {
        assert!(p.name_any().starts_with("web-"), "{}", p.name_any());
        assert_eq!(p.name_any().len(), "web-".len() + 5, "{}", p.name_any());
        let r = &p.owner_references()[0];
        assert_eq!(
            (r.kind.as_str(), r.name.as_str(), r.uid.as_str()),
            ("ReplicaSet", "web", rs.uid().unwrap().as_str())
        );
        assert_eq!(
            (r.controller, r.block_owner_deletion),
            (Some(true), Some(true))
        );
    }
    let rss: Api<ReplicaSet> = Api::namespaced(c.client.clone(), NS);
    wait_for(20, "status of 3 ready replicas", || async {
        let s = rss.get("web").await.ok()?.status?;
        (s.replicas == 3
            && s.ready_replicas == Some(3)
            && s.available_replicas == Some(3)
            && s.fully_labeled_replicas == Some(3)
            && s.observed_generation == Some(1))
        .then_some(())
    })
    .await;

    // A deleted pod is replaced, never doubly.
    let victim = pods[0].name_any();
    pods_api(&c)
        .delete(&victim, &DeleteParams::default())
        .await
        .unwrap();
    wait_for(20, "replacement pod", || async {
        let pods = active_pods(&c, "web").await;
        (pods.len() == 3 && pods.iter().all(|p| p.name_any() != victim)).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(active_pods(&c, "web").await.len(), 3, "no extra pods");

    // Scaling down deletes the surplus.
    rss.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 1}})),
    )
    .await
    .unwrap();
    wait_pod_count(&c, "web", 1).await;
    wait_for(20, "status of 1 replica", || async {
        let s = rss.get("web").await.ok()?.status?;
        (s.replicas == 1 && s.observed_generation == Some(2)).then_some(())
    })
    .await;

    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(c.client.clone(), NS);
    let notes = wait_for(20, "events", || async {
        let notes: Vec<String> = events
            .list(&ListParams::default())
            .await
            .ok()?
            .items
            .into_iter()
            .filter_map(|e| Some(format!("{} {}", e.reason?, e.note?)))
            .collect();
        (notes
            .iter()
            .any(|n| n.starts_with("SuccessfulDelete Deleted pod: web-"))
            && notes
                .iter()
                .any(|n| n.starts_with("SuccessfulCreate Created pod: web-")))
        .then_some(notes)
    })
    .await;
    assert!(!notes.is_empty());
}

#[tokio::test]
async fn replicaset_adopts_orphans_and_releases_pods_that_stop_matching() {
    let c = cluster("replicaset-controller", &[]).await;
    let orphan: Pod = serde_json::from_value(json!({
        "metadata": {"name": "orphan", "labels": labels("db")},
        "spec": {"containers": [{"name": "c", "image": "db"}]},
    }))
    .unwrap();
    pods_api(&c)
        .create(&PostParams::default(), &orphan)
        .await
        .unwrap();
    let rs = create_rs(&c, "db", "db", 2).await;
    let pods = wait_pod_count(&c, "db", 2).await;
    assert!(pods.iter().any(|p| p.name_any() == "orphan"));
    let adopted = wait_for(20, "adoption", || async {
        let p = pods_api(&c).get("orphan").await.ok()?;
        p.owner_references()
            .iter()
            .any(|r| r.uid == rs.uid().unwrap() && r.controller == Some(true))
            .then_some(p)
    })
    .await;
    assert_eq!(adopted.owner_references().len(), 1);

    // Relabel it: released, and a replacement is created.
    pods_api(&c)
        .patch(
            "orphan",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"app": "other"}}})),
        )
        .await
        .unwrap();
    wait_for(20, "release", || async {
        let p = pods_api(&c).get("orphan").await.ok()?;
        p.owner_references().is_empty().then_some(())
    })
    .await;
    wait_pod_count(&c, "db", 2).await;
}

#[tokio::test]
async fn replicationcontroller_keeps_its_replicas() {
    let c = cluster("replicationcontroller-controller", &[]).await;
    kubelet(&c);
    let rc: ReplicationController = serde_json::from_value(json!({
        "metadata": {"name": "legacy"},
        "spec": {"replicas": 2, "selector": labels("legacy"),
                 "template": template("legacy", "nginx:1")},
    }))
    .unwrap();
    let rcs: Api<ReplicationController> = Api::namespaced(c.client.clone(), NS);
    rcs.create(&PostParams::default(), &rc).await.unwrap();
    let pods = wait_pod_count(&c, "legacy", 2).await;
    assert!(
        pods.iter()
            .all(|p| p.owner_references()[0].kind == "ReplicationController")
    );
    wait_for(20, "rc status", || async {
        let s = rcs.get("legacy").await.ok()?.status?;
        (s.replicas == 2 && s.ready_replicas == Some(2)).then_some(())
    })
    .await;
}
