//! Namespace API tests. Mirrors upstream `test/e2e/apimachinery/namespace.go` ("Namespaces").

use conformance::{cluster, compare_resource_versions};
use k8s_openapi::api::core::v1::{Namespace, NamespaceCondition, NamespaceSpec};
use kube::api::{Api, Patch, PatchParams, PostParams};

const FAKE_FINALIZER: &str = "e2e.example.com/fakeFinalizer";

/// [sig-api-machinery] Namespaces [Serial] should patch a Namespace [Conformance]
#[tokio::test]
async fn conformance_namespace_patch() {
    let c = cluster().await;
    let base = format!("nspatchtest-{}", uuid::Uuid::new_v4());
    let ns = c.create_namespace(&base).await;
    let original_rv = ns
        .object
        .metadata
        .resource_version
        .clone()
        .expect("created namespace has a resourceVersion");
    assert!(
        original_rv.parse::<u64>().is_ok(),
        "resourceVersion {original_rv:?} is not valid"
    );

    let api: Api<Namespace> = c.all_api();
    let patch = serde_json::json!({"metadata": {"labels": {"testLabel": "testValue"}}});
    let patched = api
        .patch(&ns.name, &PatchParams::default(), &Patch::Strategic(&patch))
        .await
        .expect("strategic merge patch of the namespace");
    let patched_rv = patched
        .metadata
        .resource_version
        .clone()
        .expect("patched resourceVersion");
    assert_eq!(
        compare_resource_versions(&original_rv, &patched_rv),
        std::cmp::Ordering::Less,
        "patched object should have a larger resource version ({original_rv} -> {patched_rv})"
    );

    let got = api.get(&ns.name).await.expect("get namespace");
    let labels = got.metadata.labels.unwrap_or_default();
    assert_eq!(
        labels.get("testLabel").map(String::as_str),
        Some("testValue"),
        "namespace not patched: {labels:?}"
    );
}

/// [sig-api-machinery] Namespaces [Serial] should apply an update to a Namespace [Conformance]
#[tokio::test]
async fn conformance_namespace_apply_update() {
    let c = cluster().await;
    let ns = c.create_namespace("namespaces").await;
    let api: Api<Namespace> = c.all_api();
    let mut updated = None;
    for _ in 0..5 {
        let mut current = api.get(&ns.name).await.expect("get namespace");
        // Upstream indexes the existing label map: a namespace always has labels (at least
        // kubernetes.io/metadata.name).
        let labels = current
            .metadata
            .labels
            .as_mut()
            .expect("namespace has labels");
        labels.insert(ns.name.clone(), "updated".into());
        match api
            .replace(&ns.name, &PostParams::default(), &current)
            .await
        {
            Ok(ns) => {
                updated = Some(ns);
                break;
            }
            Err(kube::Error::Api(s)) if s.code == 409 => continue,
            Err(e) => panic!("update namespace: {e}"),
        }
    }
    let updated = updated.expect("update kept conflicting");
    let labels = updated.metadata.labels.unwrap_or_default();
    assert_eq!(
        labels.get(&ns.name).map(String::as_str),
        Some("updated"),
        "labels: {labels:?}"
    );
    assert_eq!(
        labels.get("kubernetes.io/metadata.name"),
        Some(&ns.name),
        "kubernetes.io/metadata.name label: {labels:?}"
    );
}

/// PUTs `ns` to the finalize subresource.
async fn finalize(api: &Api<Namespace>, ns: &Namespace) -> Namespace {
    let name = ns.metadata.name.as_deref().expect("namespace name");
    api.replace_subresource("finalize", name, &PostParams::default(), ns)
        .await
        .unwrap_or_else(|e| panic!("PUT namespaces/{name}/finalize: {e}"))
}

fn finalizers(ns: &Namespace) -> Vec<String> {
    ns.spec
        .as_ref()
        .and_then(|s| s.finalizers.clone())
        .unwrap_or_default()
}

/// [sig-api-machinery] Namespaces [Serial] should apply a finalizer to a Namespace [Conformance]
#[tokio::test]
async fn conformance_namespace_apply_finalizer() {
    let c = cluster().await;
    let ns = c.create_namespace("e2e-ns").await;
    let api: Api<Namespace> = c.all_api();

    let mut current = api.get(&ns.name).await.expect("get namespace");
    let mut list = finalizers(&current);
    assert_eq!(
        list,
        vec!["kubernetes".to_string()],
        "a new namespace has the kubernetes finalizer"
    );
    list.push(FAKE_FINALIZER.into());
    current.spec = Some(NamespaceSpec {
        finalizers: Some(list),
    });
    let updated = finalize(&api, &current).await;
    assert!(
        finalizers(&updated).iter().any(|f| f == FAKE_FINALIZER),
        "finalizer {FAKE_FINALIZER} not found: {:?}",
        finalizers(&updated)
    );

    let mut current = api.get(&ns.name).await.expect("get namespace");
    assert!(
        finalizers(&current).iter().any(|f| f == FAKE_FINALIZER),
        "finalizer was not stored"
    );
    let kept: Vec<String> = finalizers(&current)
        .into_iter()
        .filter(|f| f != FAKE_FINALIZER)
        .collect();
    current.spec = Some(NamespaceSpec {
        finalizers: Some(kept),
    });
    let updated = finalize(&api, &current).await;
    assert!(
        !finalizers(&updated).iter().any(|f| f == FAKE_FINALIZER),
        "finalizer {FAKE_FINALIZER} still present: {:?}",
        finalizers(&updated)
    );
    assert_eq!(finalizers(&updated), vec!["kubernetes".to_string()]);
}

/// [sig-api-machinery] Namespaces [Serial] should apply changes to a namespace status
/// [Conformance]
#[tokio::test]
async fn conformance_namespace_apply_status_changes() {
    let c = cluster().await;
    let ns = c.create_namespace("namespaces").await;
    let api: Api<Namespace> = c.all_api();

    let status = api
        .get_status(&ns.name)
        .await
        .expect("GET namespaces/{name}/status");
    let phase = status.status.as_ref().and_then(|s| s.phase.clone());
    assert_eq!(phase.as_deref(), Some("Active"));

    let patch = serde_json::json!({
        "metadata": {"annotations": {"e2e-patched-ns-status": ns.name}},
        "status": {"conditions": [{
            "type": "StatusPatch", "status": "True", "reason": "E2E", "message": "Patched by an e2e test"
        }]}
    });
    let patched = api
        .patch_status(&ns.name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("merge patch of namespaces/status");
    let annotations = patched.metadata.annotations.clone().unwrap_or_default();
    assert_eq!(
        annotations.get("e2e-patched-ns-status"),
        Some(&ns.name),
        "annotations: {annotations:?}"
    );
    let conditions = patched
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let last = conditions.last().expect("patched status has conditions");
    assert_eq!(last.reason.as_deref(), Some("E2E"));
    assert_eq!(last.message.as_deref(), Some("Patched by an e2e test"));

    let mut updated = None;
    for _ in 0..5 {
        let mut current = api.get_status(&ns.name).await.expect("get status");
        let st = current.status.get_or_insert_with(Default::default);
        st.conditions
            .get_or_insert_with(Vec::new)
            .push(NamespaceCondition {
                type_: "StatusUpdate".into(),
                status: "True".into(),
                reason: Some("E2E".into()),
                message: Some("Updated by an e2e test".into()),
                ..Default::default()
            });
        match api
            .replace_status(&ns.name, &PostParams::default(), &current)
            .await
        {
            Ok(ns) => {
                updated = Some(ns);
                break;
            }
            Err(kube::Error::Api(s)) if s.code == 409 => continue,
            Err(e) => panic!("update namespaces/status: {e}"),
        }
    }
    let updated = updated.expect("status update kept conflicting");
    let conditions = updated
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default();
    let last = conditions.last().expect("updated status has conditions");
    assert_eq!(last.type_, "StatusUpdate", "conditions: {conditions:?}");
    assert_eq!(last.message.as_deref(), Some("Updated by an e2e test"));
}
