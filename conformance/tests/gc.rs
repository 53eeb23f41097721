//! The garbage collector, namespace deletion and the per-namespace objects the controller
//! manager maintains. Mirrors upstream `test/e2e/apimachinery/{garbage_collector,namespace}.go`
//! and `test/e2e/auth/service_accounts.go`.

use conformance::fakenode::ensure_fake_nodes;
use conformance::{cluster, poll_until};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{
    ConfigMap, Namespace, Pod, ReplicationController, Service, ServiceAccount,
};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::json;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(90);
const TICK: Duration = Duration::from_millis(250);

fn deployment(name: &str, replicas: i32) -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"terminationGracePeriodSeconds": 0, "containers": [{"name": "c", "image": "httpd:1"}]}}},
    }))
    .unwrap()
}

/// [sig-api-machinery] Garbage collector should delete RS created by deployment when not orphaning [Conformance]
#[tokio::test]
async fn conformance_gc_delete_rs_created_by_deployment_when_not_orphaning() {
    ensure_fake_nodes().await;
    let c = cluster().await;
    let ns = c.create_namespace("gc").await;
    let deps: Api<Deployment> = c.ns_api(&ns.name);
    let rss: Api<ReplicaSet> = c.ns_api(&ns.name);
    deps.create(
        &PostParams::default(),
        &deployment("simpletest-deployment", 2),
    )
    .await
    .unwrap();
    poll_until("the deployment's ReplicaSet", TICK, WAIT, || async {
        (!rss
            .list(&ListParams::default())
            .await
            .ok()?
            .items
            .is_empty())
        .then_some(())
    })
    .await;
    deps.delete("simpletest-deployment", &DeleteParams::background())
        .await
        .unwrap();
    poll_until(
        "ReplicaSets and pods to be collected",
        TICK,
        WAIT,
        || async {
            let pods: Api<Pod> = c.ns_api(&ns.name);
            let no_rs = rss
                .list(&ListParams::default())
                .await
                .ok()?
                .items
                .is_empty();
            let no_pods = pods
                .list(&ListParams::default())
                .await
                .ok()?
                .items
                .is_empty();
            (no_rs && no_pods).then_some(())
        },
    )
    .await;
}

/// [sig-api-machinery] Garbage collector should orphan RS created by deployment when deleteOptions.PropagationPolicy is Orphan [Conformance]
#[tokio::test]
async fn conformance_gc_orphan_rs_created_by_deployment() {
    ensure_fake_nodes().await;
    let c = cluster().await;
    let ns = c.create_namespace("gc").await;
    let deps: Api<Deployment> = c.ns_api(&ns.name);
    let rss: Api<ReplicaSet> = c.ns_api(&ns.name);
    deps.create(
        &PostParams::default(),
        &deployment("simpletest-deployment", 2),
    )
    .await
    .unwrap();
    poll_until("the deployment's ReplicaSet", TICK, WAIT, || async {
        (!rss
            .list(&ListParams::default())
            .await
            .ok()?
            .items
            .is_empty())
        .then_some(())
    })
    .await;
    deps.delete("simpletest-deployment", &DeleteParams::orphan())
        .await
        .unwrap();
    poll_until("the deployment to be gone", TICK, WAIT, || async {
        deps.get_opt("simpletest-deployment")
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;
    // The ReplicaSet stays, without its owner reference, for a while.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let list = rss.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(list.len(), 1, "the ReplicaSet was orphaned, not deleted");
    assert!(
        list[0]
            .metadata
            .owner_references
            .as_ref()
            .is_none_or(|o| o.is_empty()),
        "owner reference removed"
    );
}

/// [sig-api-machinery] Garbage collector should keep the rc around until all its pods are deleted if the deleteOptions says so [Conformance]
#[tokio::test]
async fn conformance_gc_foreground_keeps_rc_until_pods_deleted() {
    ensure_fake_nodes().await;
    let c = cluster().await;
    let ns = c.create_namespace("gc").await;
    let rcs: Api<ReplicationController> = c.ns_api(&ns.name);
    let pods: Api<Pod> = c.ns_api(&ns.name);
    let rc: ReplicationController = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "simpletest.rc"},
        "spec": {"replicas": 2, "selector": {"app": "gc-test"},
                 "template": {"metadata": {"labels": {"app": "gc-test"}},
                              "spec": {"terminationGracePeriodSeconds": 0, "containers": [{"name": "c", "image": "httpd:1"}]}}},
    }))
    .unwrap();
    rcs.create(&PostParams::default(), &rc).await.unwrap();
    poll_until("2 pods", TICK, WAIT, || async {
        (pods.list(&ListParams::default()).await.ok()?.items.len() == 2).then_some(())
    })
    .await;
    rcs.delete("simpletest.rc", &DeleteParams::foreground())
        .await
        .unwrap();
    // Both go: the pods first, then the rc (it carried the foregroundDeletion finalizer).
    poll_until("rc and pods to be deleted", TICK, WAIT, || async {
        let rc_gone = rcs.get_opt("simpletest.rc").await.ok()?.is_none();
        let no_pods = pods
            .list(&ListParams::default())
            .await
            .ok()?
            .items
            .is_empty();
        if !no_pods {
            // While pods remain, the rc must still exist.
            assert!(!rc_gone, "the rc was deleted before its pods");
        }
        (rc_gone && no_pods).then_some(())
    })
    .await;
}

/// [sig-api-machinery] Namespaces [Serial] should ensure that all services are removed when a namespace is deleted [Conformance]
#[tokio::test]
async fn conformance_namespace_deletion_removes_services() {
    let c = cluster().await;
    let ns = c.create_namespace("nsdeletetest").await;
    let svcs: Api<Service> = c.ns_api(&ns.name);
    let svc: Service = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "test-service"},
        "spec": {"ports": [{"port": 80, "targetPort": 80}], "selector": {"foo": "bar"}},
    }))
    .unwrap();
    svcs.create(&PostParams::default(), &svc).await.unwrap();
    let cms: Api<ConfigMap> = c.ns_api(&ns.name);
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "cm"}})).unwrap(),
    )
    .await
    .unwrap();
    let namespaces: Api<Namespace> = c.all_api();
    namespaces
        .delete(&ns.name, &DeleteParams::default())
        .await
        .unwrap();
    poll_until("the namespace to be removed", TICK, WAIT, || async {
        namespaces
            .get_opt(&ns.name)
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;
    // Re-creating it shows an empty namespace.
    let again: Namespace = serde_json::from_value(json!({"metadata": {"name": ns.name}})).unwrap();
    namespaces
        .create(&PostParams::default(), &again)
        .await
        .unwrap();
    assert!(
        svcs.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty(),
        "no services survive"
    );
}

/// [sig-auth] ServiceAccounts should guarantee kube-root-ca.crt exist in any namespace [Conformance]
#[tokio::test]
async fn conformance_serviceaccounts_root_ca_configmap_in_every_namespace() {
    let c = cluster().await;
    let ns = c.create_namespace("svcaccounts").await;
    let cms: Api<ConfigMap> = c.ns_api(&ns.name);
    let cm = poll_until("kube-root-ca.crt", TICK, WAIT, || async {
        cms.get_opt("kube-root-ca.crt").await.ok()?
    })
    .await;
    assert!(
        cm.data
            .unwrap_or_default()
            .get("ca.crt")
            .is_some_and(|v| v.contains("BEGIN CERTIFICATE"))
    );
    // Deleted, it comes back.
    cms.delete("kube-root-ca.crt", &DeleteParams::default())
        .await
        .unwrap();
    poll_until("kube-root-ca.crt re-created", TICK, WAIT, || async {
        cms.get_opt("kube-root-ca.crt").await.ok()?
    })
    .await;
    // And every namespace gets its default ServiceAccount.
    let sas: Api<ServiceAccount> = c.ns_api(&ns.name);
    poll_until("the default ServiceAccount", TICK, WAIT, || async {
        sas.get_opt("default").await.ok()?
    })
    .await;
}
