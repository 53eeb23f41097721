//! statefulset-controller: ordered creation, claims, scale down, adoption, rolling update.

use super::*;
use crate::{cluster, wait_for};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::api::PostParams;

#[tokio::test]
async fn statefulset_creates_pods_in_order_with_claims() {
    let c = cluster("statefulset-controller", &[]).await;
    let sets: Api<StatefulSet> = Api::namespaced(c.client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(c.client.clone(), "default");
    let set: StatefulSet = serde_json::from_value(serde_json::json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "web"},
        "spec": {"replicas": 3, "serviceName": "nginx", "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "c", "image": "nginx"}]}},
                 "volumeClaimTemplates": [{"metadata": {"name": "www"},
                    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]},
    }))
    .unwrap();
    sets.create(&PostParams::default(), &set).await.unwrap();
    let names = || async {
        let mut n: Vec<String> = pods_of(
            pods.list(&ListParams::default()).await.unwrap().items,
            "app",
            "web",
        )
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect();
        n.sort();
        n
    };
    for i in 0..3 {
        let want: Vec<String> = (0..=i).map(|j| format!("web-{j}")).collect();
        wait_for(20, &format!("pods {want:?}"), || async {
            (names().await == want).then_some(())
        })
        .await;
        // The next ordinal waits for this one to be Running and Ready.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert_eq!(names().await, want, "created before web-{i} was ready");
        let p = pods.get(&format!("web-{i}")).await.unwrap();
        let l = p.metadata.labels.as_ref().unwrap();
        assert_eq!(l["statefulset.kubernetes.io/pod-name"], format!("web-{i}"));
        assert_eq!(l["apps.kubernetes.io/pod-index"], i.to_string());
        assert!(l["controller-revision-hash"].starts_with("web-"));
        let s = p.spec.as_ref().unwrap();
        assert_eq!(s.hostname.as_deref(), Some(format!("web-{i}").as_str()));
        assert_eq!(s.subdomain.as_deref(), Some("nginx"));
        let claim = pvcs.get(&format!("www-web-{i}")).await.unwrap();
        assert_eq!(claim.metadata.labels.as_ref().unwrap()["app"], "web");
        set_phase(&pods, &format!("web-{i}"), "Running", None).await;
    }
    let st = wait_for(20, "3 ready replicas", || async {
        let st = sets.get("web").await.unwrap().status?;
        (st.ready_replicas == Some(3)).then_some(st)
    })
    .await;
    assert_eq!(st.replicas, 3);
    assert_eq!(st.current_revision, st.update_revision);
    assert_eq!(st.updated_replicas, Some(3));
    // Scale down: the highest ordinal goes first.
    sets.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"spec": {"replicas": 1}})),
    )
    .await
    .unwrap();
    wait_for(20, "scaled down to web-0", || async {
        (names().await == ["web-0"]).then_some(())
    })
    .await;
    // Claims are retained by default.
    assert_eq!(
        pvcs.list(&ListParams::default()).await.unwrap().items.len(),
        3
    );
}

#[tokio::test]
async fn statefulset_adopts_orphans_and_rolls_updates_in_reverse() {
    let c = cluster("statefulset-controller", &[]).await;
    let sets: Api<StatefulSet> = Api::namespaced(c.client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    // An orphan that already has the identity of ordinal 0.
    let orphan: Pod = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "db-0", "labels": {"app": "db"}},
        "spec": {"containers": [{"name": "c", "image": "v1"}]},
    }))
    .unwrap();
    let orphan = pods.create(&PostParams::default(), &orphan).await.unwrap();
    set_phase(&pods, "db-0", "Running", None).await;
    let set: StatefulSet = serde_json::from_value(serde_json::json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
        "spec": {"replicas": 2, "serviceName": "db", "podManagementPolicy": "Parallel",
                 "updateStrategy": {"type": "OnDelete"},
                 "selector": {"matchLabels": {"app": "db"}},
                 "template": {"metadata": {"labels": {"app": "db"}},
                              "spec": {"containers": [{"name": "c", "image": "v1"}]}}},
    }))
    .unwrap();
    sets.create(&PostParams::default(), &set).await.unwrap();
    wait_for(20, "db-0 adopted", || async {
        let p = pods.get("db-0").await.ok()?;
        let r = p.metadata.owner_references?;
        (r.len() == 1 && r[0].kind == "StatefulSet" && r[0].controller == Some(true)).then_some(())
    })
    .await;
    assert_eq!(
        pods.get("db-0").await.unwrap().metadata.uid,
        orphan.metadata.uid,
        "not recreated"
    );
    // Parallel: db-1 does not wait for anything.
    wait_for(20, "db-1", || async { pods.get_opt("db-1").await.unwrap() }).await;
    set_phase(&pods, "db-1", "Running", None).await;
    // OnDelete: the adopted pod stays although it lacks the revision label.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(
        pods.get("db-0").await.unwrap().metadata.uid,
        orphan.metadata.uid
    );
    set_phase(&pods, "db-0", "Running", None).await;
    // RollingUpdate with a new template: db-1 is replaced first, db-0 only once db-1 is ready.
    let patch = serde_json::json!({"spec": {
        "updateStrategy": {"type": "RollingUpdate"},
        "template": {"spec": {"containers": [{"name": "c", "image": "v2"}]}}}});
    sets.patch("db", &PatchParams::default(), &Patch::Merge(patch))
        .await
        .unwrap();
    let image = |p: &Pod| {
        p.spec.as_ref().unwrap().containers[0]
            .image
            .clone()
            .unwrap_or_default()
    };
    wait_for(20, "db-1 on v2", || async {
        let p = pods.get_opt("db-1").await.unwrap()?;
        (image(&p) == "v2").then_some(())
    })
    .await;
    assert_eq!(
        image(&pods.get("db-0").await.unwrap()),
        "v1",
        "db-0 updated before db-1 was ready"
    );
    set_phase(&pods, "db-1", "Running", None).await;
    wait_for(20, "db-0 on v2", || async {
        let p = pods.get_opt("db-0").await.unwrap()?;
        (image(&p) == "v2").then_some(())
    })
    .await;
    set_phase(&pods, "db-0", "Running", None).await;
    let st = wait_for(20, "update finished", || async {
        let st = sets.get("db").await.unwrap().status?;
        (st.updated_replicas == Some(2)
            && st.ready_replicas == Some(2)
            && st.current_revision == st.update_revision)
            .then_some(st)
    })
    .await;
    assert_eq!(st.current_replicas, Some(2));
}
