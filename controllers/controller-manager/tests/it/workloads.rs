//! ReplicaSet, ReplicationController and Deployment controllers against a test apiserver; the
//! test plays the kubelet by marking pods Running and Ready through the status subresource.

use crate::{Cluster, cluster, wait_for};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
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
    // Let the controller's pod informer see the orphan first (else it may create two pods,
    // then adopt the orphan and delete one of the three, as upstream would).
    tokio::time::sleep(Duration::from_secs(1)).await;
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

// ---- Deployments ----

async fn create_deploy(c: &Cluster, name: &str, spec: serde_json::Value) -> Deployment {
    let mut spec = spec;
    spec["selector"] = json!({"matchLabels": labels(name)});
    if spec.get("template").is_none() {
        spec["template"] = template(name, "nginx:1");
    }
    let d: Deployment = serde_json::from_value(json!({
        "metadata": {"name": name}, "spec": spec,
    }))
    .unwrap();
    Api::<Deployment>::namespaced(c.client.clone(), NS)
        .create(&PostParams::default(), &d)
        .await
        .unwrap()
}

/// `kubectl rollout status` logic: finished when the controller saw the latest generation and
/// all replicas are updated and available with no old ones left.
fn rollout_done(d: &Deployment) -> bool {
    let Some(s) = &d.status else { return false };
    let progressing = s
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_.as_deref() == Some("Progressing"));
    let want = d.spec.replicas.unwrap_or(1);
    let updated = s.updated_replicas.unwrap_or(0);
    s.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(0)
        && progressing.is_none_or(|c| c.reason.as_deref() != Some("ProgressDeadlineExceeded"))
        && updated >= want
        && s.replicas.unwrap_or(0) <= updated
        && s.available_replicas.unwrap_or(0) >= updated
}

fn condition(d: &Deployment, type_: &str) -> Option<(String, String)> {
    d.status
        .as_ref()?
        .conditions
        .iter()
        .flatten()
        .find_map(|c| {
            (c.type_.as_deref() == Some(type_)).then(|| {
                (
                    c.status.clone().unwrap_or_default(),
                    c.reason.clone().unwrap_or_default(),
                )
            })
        })
}

async fn wait_rollout(c: &Cluster, name: &str) -> Deployment {
    let api: Api<Deployment> = Api::namespaced(c.client.clone(), NS);
    wait_for(30, &format!("rollout of {name}"), || async {
        let d = api.get(name).await.ok()?;
        rollout_done(&d).then_some(d)
    })
    .await
}

/// The deployment's ReplicaSets, oldest revision first.
async fn replica_sets(c: &Cluster, app: &str) -> Vec<ReplicaSet> {
    let mut rss = Api::<ReplicaSet>::namespaced(c.client.clone(), NS)
        .list(&ListParams::default().labels(&format!("app={app}")))
        .await
        .unwrap()
        .items;
    rss.sort_by_key(revision);
    rss
}

fn annotation(rs: &ReplicaSet, key: &str) -> String {
    rs.annotations().get(key).cloned().unwrap_or_default()
}

fn revision(rs: &ReplicaSet) -> i64 {
    annotation(rs, "deployment.kubernetes.io/revision")
        .parse()
        .unwrap_or(0)
}

fn image(rs: &ReplicaSet) -> String {
    rs.spec
        .template
        .as_ref()
        .unwrap()
        .spec
        .as_ref()
        .unwrap()
        .containers[0]
        .image
        .clone()
        .unwrap()
}

async fn set_image(c: &Cluster, name: &str, image: &str) {
    Api::<Deployment>::namespaced(c.client.clone(), NS)
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [
                {"name": "c", "image": image}]}}}})),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn deployment_creates_a_hashed_replica_set_and_completes() {
    let c = cluster("deployment-controller,replicaset-controller", &[]).await;
    kubelet(&c);
    create_deploy(&c, "web", json!({"replicas": 3})).await;
    let d = wait_rollout(&c, "web").await;
    let rss = replica_sets(&c, "web").await;
    assert_eq!(rss.len(), 1);
    let rs = &rss[0];
    let hash = rs.labels().get("pod-template-hash").cloned().unwrap();
    assert_eq!(rs.name_any(), format!("web-{hash}"));
    assert_eq!(
        rs.spec
            .selector
            .match_labels
            .as_ref()
            .unwrap()
            .get("pod-template-hash"),
        Some(&hash)
    );
    assert_eq!(revision(rs), 1);
    assert_eq!(
        annotation(rs, "deployment.kubernetes.io/desired-replicas"),
        "3"
    );
    // maxSurge 25% of 3 rounds up to 1.
    assert_eq!(annotation(rs, "deployment.kubernetes.io/max-replicas"), "4");
    assert_eq!(rs.owner_references()[0].kind, "Deployment");
    let s = d.status.clone().unwrap();
    assert_eq!(
        (
            s.replicas,
            s.updated_replicas,
            s.ready_replicas,
            s.available_replicas
        ),
        (Some(3), Some(3), Some(3), Some(3))
    );
    assert_eq!(s.unavailable_replicas.unwrap_or(0), 0);
    assert_eq!(
        d.annotations()
            .get("deployment.kubernetes.io/revision")
            .unwrap(),
        "1"
    );
    assert_eq!(
        condition(&d, "Available"),
        Some(("True".into(), "MinimumReplicasAvailable".into()))
    );
    let d = wait_for(20, "NewReplicaSetAvailable", || async {
        let d = Api::<Deployment>::namespaced(c.client.clone(), NS)
            .get("web")
            .await
            .ok()?;
        (condition(&d, "Progressing") == Some(("True".into(), "NewReplicaSetAvailable".into())))
            .then_some(d)
    })
    .await;
    assert!(rollout_done(&d));
    let pods = active_pods(&c, "web").await;
    assert_eq!(pods.len(), 3);
    assert!(
        pods.iter()
            .all(|p| p.labels().get("pod-template-hash") == Some(&hash))
    );
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(c.client.clone(), NS);
    let want = format!("Scaled up replica set web-{hash} from 0 to 3");
    wait_for(20, "ScalingReplicaSet event", || async {
        let evs = events.list(&ListParams::default()).await.ok()?.items;
        evs.iter()
            .any(|e| {
                e.reason.as_deref() == Some("ScalingReplicaSet") && e.note.as_deref() == Some(&want)
            })
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn rolling_update_respects_surge_and_unavailability_then_rolls_back() {
    let c = cluster("deployment-controller,replicaset-controller", &[]).await;
    create_deploy(
        &c,
        "api",
        json!({"replicas": 4, "strategy": {"type": "RollingUpdate",
               "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}}),
    )
    .await;
    wait_for(30, "first rollout", || async {
        mark_ready(&c.client).await;
        let d = Api::<Deployment>::namespaced(c.client.clone(), NS)
            .get("api")
            .await
            .ok()?;
        rollout_done(&d).then_some(())
    })
    .await;

    set_image(&c, "api", "nginx:2").await;
    // Without ready new pods, only the surge pod exists and no old pod goes away.
    let (old, new) = wait_for(20, "surge replica set", || async {
        let rss = replica_sets(&c, "api").await;
        (rss.len() == 2 && rss[1].spec.replicas == Some(1))
            .then(|| (rss[0].clone(), rss[1].clone()))
    })
    .await;
    assert_eq!(
        (image(&old), image(&new)),
        ("nginx:1".into(), "nginx:2".into())
    );
    assert_eq!(revision(&new), 2);
    tokio::time::sleep(Duration::from_millis(800)).await;
    let rss = replica_sets(&c, "api").await;
    assert_eq!(
        (rss[0].spec.replicas, rss[1].spec.replicas),
        (Some(4), Some(1))
    );
    assert_eq!(active_pods(&c, "api").await.len(), 5);

    // Play the kubelet step by step, checking the fenceposts on every step.
    wait_for(40, "second rollout", || async {
        let pods = active_pods(&c, "api").await;
        let ready = pods.iter().filter(|p| is_ready(p)).count();
        assert!(
            pods.len() <= 5,
            "more than replicas+maxSurge pods: {}",
            pods.len()
        );
        assert!(
            ready >= 4,
            "fewer than replicas-maxUnavailable ready pods: {ready}"
        );
        let rss = replica_sets(&c, "api").await;
        let total: i32 = rss.iter().map(|r| r.spec.replicas.unwrap_or(0)).sum();
        assert!(total <= 5, "replica sets sized {total} > 5");
        mark_ready(&c.client).await;
        let d = Api::<Deployment>::namespaced(c.client.clone(), NS)
            .get("api")
            .await
            .ok()?;
        rollout_done(&d).then_some(())
    })
    .await;
    let rss = replica_sets(&c, "api").await;
    assert_eq!(
        (rss[0].spec.replicas, rss[1].spec.replicas),
        (Some(0), Some(4))
    );
    assert!(
        active_pods(&c, "api")
            .await
            .iter()
            .all(|p| p.spec.as_ref().unwrap().containers[0].image.as_deref() == Some("nginx:2"))
    );

    // `kubectl rollout undo`: the template goes back to revision 1's; that ReplicaSet is
    // reused with revision 3.
    kubelet(&c);
    set_image(&c, "api", "nginx:1").await;
    wait_for(30, "rollback", || async {
        let d = Api::<Deployment>::namespaced(c.client.clone(), NS)
            .get("api")
            .await
            .ok()?;
        let rss = replica_sets(&c, "api").await;
        (rollout_done(&d)
            && rss.len() == 2
            && rss[1].spec.replicas == Some(4)
            && rss[0].spec.replicas == Some(0))
        .then_some(())
    })
    .await;
    let rss = replica_sets(&c, "api").await;
    assert_eq!(rss[1].name_any(), old.name_any(), "old replica set reused");
    assert_eq!(revision(&rss[1]), 3);
    assert_eq!(
        annotation(&rss[1], "deployment.kubernetes.io/revision-history"),
        "1"
    );
    let d = Api::<Deployment>::namespaced(c.client.clone(), NS)
        .get("api")
        .await
        .unwrap();
    assert_eq!(
        d.annotations()
            .get("deployment.kubernetes.io/revision")
            .unwrap(),
        "3"
    );
}

#[tokio::test]
async fn recreate_stops_old_pods_before_starting_new_ones_and_cleans_history() {
    let c = cluster("deployment-controller,replicaset-controller", &[]).await;
    kubelet(&c);
    create_deploy(
        &c,
        "batch",
        json!({"replicas": 2, "revisionHistoryLimit": 0, "strategy": {"type": "Recreate"}}),
    )
    .await;
    wait_rollout(&c, "batch").await;
    set_image(&c, "batch", "nginx:2").await;
    wait_for(30, "recreate rollout", || async {
        let pods = active_pods(&c, "batch").await;
        let images: std::collections::BTreeSet<String> = pods
            .iter()
            .filter_map(|p| p.spec.as_ref()?.containers[0].image.clone())
            .collect();
        assert!(images.len() <= 1, "old and new pods together: {images:?}");
        let d = Api::<Deployment>::namespaced(c.client.clone(), NS)
            .get("batch")
            .await
            .ok()?;
        (rollout_done(&d) && d.metadata.generation == Some(2) && images.contains("nginx:2"))
            .then_some(())
    })
    .await;
    // revisionHistoryLimit 0: the old ReplicaSet is deleted once the rollout completes.
    wait_for(20, "history cleanup", || async {
        let rss = replica_sets(&c, "batch").await;
        (rss.len() == 1 && image(&rss[0]) == "nginx:2").then_some(())
    })
    .await;
}

#[tokio::test]
async fn paused_deployment_scales_but_does_not_roll_out() {
    let c = cluster("deployment-controller,replicaset-controller", &[]).await;
    kubelet(&c);
    create_deploy(&c, "p", json!({"replicas": 2})).await;
    wait_rollout(&c, "p").await;
    let api: Api<Deployment> = Api::namespaced(c.client.clone(), NS);
    api.patch(
        "p",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"paused": true}})),
    )
    .await
    .unwrap();
    set_image(&c, "p", "nginx:2").await;
    api.patch(
        "p",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 3}})),
    )
    .await
    .unwrap();
    wait_for(20, "paused scale-up", || async {
        let d = api.get("p").await.ok()?;
        (d.status.as_ref()?.available_replicas == Some(3)
            && condition(&d, "Progressing").is_some_and(|(_, r)| r == "DeploymentPaused"))
        .then_some(())
    })
    .await;
    let rss = replica_sets(&c, "p").await;
    assert_eq!(rss.len(), 1, "no rollout while paused");
    assert_eq!(image(&rss[0]), "nginx:1");
    assert_eq!(rss[0].spec.replicas, Some(3));

    api.patch(
        "p",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"paused": false}})),
    )
    .await
    .unwrap();
    wait_for(30, "rollout after resume", || async {
        let d = api.get("p").await.ok()?;
        let rss = replica_sets(&c, "p").await;
        (rollout_done(&d)
            && rss.len() == 2
            && image(&rss[1]) == "nginx:2"
            && rss[1].spec.replicas == Some(3))
        .then_some(())
    })
    .await;
}

#[tokio::test]
async fn scaling_during_a_rollout_is_proportional() {
    let c = cluster("deployment-controller,replicaset-controller", &[]).await;
    create_deploy(
        &c,
        "prop",
        json!({"replicas": 10, "strategy": {"type": "RollingUpdate",
               "rollingUpdate": {"maxSurge": 3, "maxUnavailable": 2}}}),
    )
    .await;
    wait_for(30, "first rollout", || async {
        mark_ready(&c.client).await;
        let d = Api::<Deployment>::namespaced(c.client.clone(), NS)
            .get("prop")
            .await
            .ok()?;
        rollout_done(&d).then_some(())
    })
    .await;
    // No kubelet now: the rollout stalls at old 8 (2 unavailable) + new 5 (3 surge).
    set_image(&c, "prop", "nginx:2").await;
    wait_for(20, "stalled rollout", || async {
        let rss = replica_sets(&c, "prop").await;
        (rss.len() == 2 && rss[0].spec.replicas == Some(8) && rss[1].spec.replicas == Some(5))
            .then_some(())
    })
    .await;
    Api::<Deployment>::namespaced(c.client.clone(), NS)
        .patch(
            "prop",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 20}})),
        )
        .await
        .unwrap();
    // 23 allowed pods split by the sets' share of the previous 13: 8 -> 14, 5 -> 9.
    let rss = wait_for(20, "proportional scale", || async {
        let rss = replica_sets(&c, "prop").await;
        (rss[0].spec.replicas == Some(14) && rss[1].spec.replicas == Some(9)).then_some(rss)
    })
    .await;
    for rs in &rss {
        assert_eq!(
            annotation(rs, "deployment.kubernetes.io/desired-replicas"),
            "20"
        );
        assert_eq!(
            annotation(rs, "deployment.kubernetes.io/max-replicas"),
            "23"
        );
    }
}

#[tokio::test]
async fn a_stuck_rollout_exceeds_its_progress_deadline() {
    let c = cluster("deployment-controller,replicaset-controller", &[]).await;
    // No kubelet: the pod never becomes ready.
    create_deploy(
        &c,
        "stuck",
        json!({"replicas": 1, "progressDeadlineSeconds": 2}),
    )
    .await;
    let api: Api<Deployment> = Api::namespaced(c.client.clone(), NS);
    let d = wait_for(20, "ProgressDeadlineExceeded", || async {
        let d = api.get("stuck").await.ok()?;
        (condition(&d, "Progressing") == Some(("False".into(), "ProgressDeadlineExceeded".into())))
            .then_some(d)
    })
    .await;
    assert!(!rollout_done(&d));
    assert_eq!(
        condition(&d, "Available"),
        Some(("False".into(), "MinimumReplicasUnavailable".into()))
    );
}
