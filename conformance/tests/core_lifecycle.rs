//! API lifecycle tests of core/v1 objects that need no kubelet. Mirrors upstream
//! `test/e2e/auth/service_accounts.go` ("ServiceAccounts"), `test/e2e/common/node/configmap.go`
//! ("ConfigMap"), `test/e2e/common/node/secrets.go` ("Secrets") and
//! `test/e2e/common/node/podtemplates.go` ("PodTemplates"); API-only parts.

use std::time::Duration;

use base64::Engine;
use conformance::watch::EventType::{Added, Deleted, Modified};
use conformance::{EventStream, cluster, poll_until};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, PodSpec, PodTemplate, PodTemplateSpec, Secret, ServiceAccount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchParams};

fn meta(name: &str, labels: &[(&str, &str)]) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        labels: Some(
            labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ),
        ..Default::default()
    }
}

fn is_invalid(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(s) if s.code == 422 && s.reason == "Invalid")
}

/// [sig-auth] ServiceAccounts should run through the lifecycle of a ServiceAccount [Conformance]
#[tokio::test]
async fn conformance_serviceaccount_lifecycle() {
    let c = cluster().await;
    let ns = c.create_namespace("svcaccounts").await;
    let api: Api<ServiceAccount> = c.ns_api(&ns.name);
    let name = "testserviceaccount";
    let selector = "test-serviceaccount-static=true";

    let sa = ServiceAccount {
        metadata: meta(name, &[("test-serviceaccount-static", "true")]),
        ..Default::default()
    };
    let created = api
        .create(&PostParams::default(), &sa)
        .await
        .expect("create ServiceAccount");
    let got = api.get(name).await.expect("get ServiceAccount");
    assert_eq!(created.metadata.uid, got.metadata.uid);

    // A watch without resourceVersion starts with the current state: ADDED for the account.
    let wp = WatchParams::default().labels(selector).timeout(180);
    let mut w = EventStream::open(&api, &wp, "").await;
    w.expect(Added, None).await;

    // Bytes as client-go's json.Marshal(v1.ServiceAccount{...}) produces them.
    let patch = serde_json::json!({"metadata": {"creationTimestamp": null}, "automountServiceAccountToken": false});
    api.patch(name, &PatchParams::default(), &Patch::Strategic(&patch))
        .await
        .expect("patch ServiceAccount");
    w.expect(Modified, None).await;

    let all: Api<ServiceAccount> = c.all_api();
    let list = all
        .list(&ListParams::default().labels(selector))
        .await
        .expect("list ServiceAccounts");
    let found = list.items.iter().any(|s| {
        s.metadata.name.as_deref() == Some(name)
            && s.metadata.namespace.as_deref() == Some(&ns.name)
            && s.automount_service_account_token == Some(false)
    });
    assert!(
        found,
        "patched ServiceAccount not found in {:?}",
        list.items
    );
    let listed = list
        .items
        .iter()
        .find(|s| s.metadata.name.as_deref() == Some(name))
        .unwrap();
    assert_eq!(
        listed.metadata.creation_timestamp, created.metadata.creation_timestamp,
        "creationTimestamp: null in a patch must not clear it"
    );

    api.delete_collection(&DeleteParams::default(), &ListParams::default())
        .await
        .expect("delete ServiceAccounts by collection");
    w.expect(Deleted, None).await;
}

/// [sig-auth] ServiceAccounts should update a ServiceAccount [Conformance]
#[tokio::test]
async fn conformance_serviceaccount_update() {
    let c = cluster().await;
    let ns = c.create_namespace("svcaccounts").await;
    let api: Api<ServiceAccount> = c.ns_api(&ns.name);
    let name = "e2e-sa-update";
    let sa = ServiceAccount {
        metadata: meta(name, &[]),
        automount_service_account_token: Some(false),
        ..Default::default()
    };
    let created = api
        .create(&PostParams::default(), &sa)
        .await
        .expect("create ServiceAccount");
    assert_eq!(created.automount_service_account_token, Some(false));

    let mut current = api.get(name).await.expect("get ServiceAccount");
    current.automount_service_account_token = Some(true);
    let updated = api
        .replace(name, &PostParams::default(), &current)
        .await
        .expect("update ServiceAccount");
    assert_eq!(updated.automount_service_account_token, Some(true));
}

/// [sig-node] ConfigMap should run through a ConfigMap lifecycle [NodeConformance] [Conformance]
#[tokio::test]
async fn conformance_configmap_lifecycle() {
    let c = cluster().await;
    let ns = c.create_namespace("configmap").await;
    let api: Api<ConfigMap> = c.ns_api(&ns.name);
    let name = format!("test-configmap{}", uuid::Uuid::new_v4());

    let cm = ConfigMap {
        metadata: meta(&name, &[("test-configmap-static", "true")]),
        data: Some([("valueName".to_string(), "value".to_string())].into()),
        ..Default::default()
    };
    api.create(&PostParams::default(), &cm)
        .await
        .expect("create ConfigMap");
    let got = api.get(&name).await.expect("get ConfigMap");
    assert_eq!(
        got.data
            .as_ref()
            .and_then(|d| d.get("valueName"))
            .map(String::as_str),
        Some("value")
    );
    assert_eq!(
        got.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("test-configmap-static"))
            .map(String::as_str),
        Some("true")
    );

    let patch = serde_json::json!({
        "metadata": {"creationTimestamp": null, "labels": {"test-configmap": "patched"}},
        "data": {"valueName": "value1"}
    });
    api.patch(&name, &PatchParams::default(), &Patch::Strategic(&patch))
        .await
        .expect("patch ConfigMap");

    let all: Api<ConfigMap> = c.all_api();
    let list = all
        .list(&ListParams::default().labels("test-configmap=patched"))
        .await
        .expect("list ConfigMaps in all namespaces");
    let found = list.items.iter().any(|cm| {
        let labels = cm.metadata.labels.clone().unwrap_or_default();
        cm.metadata.name.as_deref() == Some(&name)
            && cm.metadata.namespace.as_deref() == Some(&ns.name)
            && labels.get("test-configmap-static").map(String::as_str) == Some("true")
            && labels.get("test-configmap").map(String::as_str) == Some("patched")
            && cm
                .data
                .as_ref()
                .and_then(|d| d.get("valueName"))
                .map(String::as_str)
                == Some("value1")
    });
    assert!(
        found,
        "patched ConfigMap not found by label selector: {:?}",
        list.items
    );

    let sel = ListParams::default().labels("test-configmap-static=true");
    api.delete_collection(&DeleteParams::default(), &sel)
        .await
        .expect("delete ConfigMaps by collection");
    let left = api.list(&sel).await.expect("list ConfigMaps");
    assert_eq!(
        left.items.len(),
        0,
        "ConfigMap still present after delete collection"
    );
}

/// [sig-node] ConfigMap should fail to create ConfigMap with empty key [Conformance]
#[tokio::test]
async fn conformance_configmap_empty_key() {
    let c = cluster().await;
    let ns = c.create_namespace("configmap").await;
    let api: Api<ConfigMap> = c.ns_api(&ns.name);
    let cm = ConfigMap {
        metadata: meta("configmap-test-emptykey", &[]),
        data: Some([(String::new(), "value-1".to_string())].into()),
        ..Default::default()
    };
    let err = api
        .create(&PostParams::default(), &cm)
        .await
        .expect_err("empty key must be rejected");
    assert!(is_invalid(&err), "expected 422 Invalid, got {err:?}");
}

/// [sig-node] Secrets should patch a secret [Conformance]
#[tokio::test]
async fn conformance_secret_patch() {
    let c = cluster().await;
    let ns = c.create_namespace("secrets").await;
    let api: Api<Secret> = c.ns_api(&ns.name);
    let all: Api<Secret> = c.all_api();
    let name = format!("test-secret-{}", uuid::Uuid::new_v4());

    let secret = Secret {
        metadata: meta(&name, &[("testsecret-constant", "true")]),
        data: Some([("key".to_string(), ByteString(b"value".to_vec()))].into()),
        type_: Some("Opaque".into()),
        ..Default::default()
    };
    api.create(&PostParams::default(), &secret)
        .await
        .expect("create Secret");

    let constant = ListParams::default().labels("testsecret-constant=true");
    let list = all
        .list(&constant)
        .await
        .expect("list Secrets in all namespaces");
    assert!(!list.items.is_empty(), "no secrets found");
    assert!(
        list.items
            .iter()
            .any(|s| s.metadata.name.as_deref() == Some(&name)
                && s.metadata.namespace.as_deref() == Some(&ns.name)),
        "created secret not listed"
    );

    // Upstream marshals map[string][]byte{"key": []byte(base64("value1"))}: the stored bytes
    // are base64("value1").
    let b64 = base64::engine::general_purpose::STANDARD;
    let stored = b64.encode("value1");
    let patch = serde_json::json!({
        "metadata": {"labels": {"testsecret": "true"}},
        "data": {"key": b64.encode(&stored)}
    });
    api.patch(&name, &PatchParams::default(), &Patch::Strategic(&patch))
        .await
        .expect("patch Secret");

    let got = api.get(&name).await.expect("get Secret");
    let bytes = got
        .data
        .as_ref()
        .and_then(|d| d.get("key"))
        .expect("data.key")
        .0
        .clone();
    let decoded = b64.decode(&bytes).expect("data.key holds base64");
    assert_eq!(
        decoded, b"value1",
        "secret data was not updated from the patch"
    );

    api.delete_collection(
        &DeleteParams::default(),
        &ListParams::default().labels("testsecret=true"),
    )
    .await
    .expect("delete Secret by label selector");
    let list = all
        .list(&constant)
        .await
        .expect("list Secrets in all namespaces");
    assert!(
        !list
            .items
            .iter()
            .any(|s| s.metadata.name.as_deref() == Some(&name)
                && s.metadata.namespace.as_deref() == Some(&ns.name)),
        "secret was not deleted"
    );
}

/// [sig-node] Secrets should fail to create secret due to empty secret key [Conformance]
#[tokio::test]
async fn conformance_secret_empty_key() {
    let c = cluster().await;
    let ns = c.create_namespace("secrets").await;
    let api: Api<Secret> = c.ns_api(&ns.name);
    let secret = Secret {
        metadata: meta("secret-emptykey-test", &[]),
        data: Some([(String::new(), ByteString(b"value-1\n".to_vec()))].into()),
        ..Default::default()
    };
    let err = api
        .create(&PostParams::default(), &secret)
        .await
        .expect_err("empty key must be rejected");
    assert!(is_invalid(&err), "expected 422 Invalid, got {err:?}");
}

fn pod_template(name: &str, labels: &[(&str, &str)], container: &str, image: &str) -> PodTemplate {
    PodTemplate {
        metadata: meta(name, labels),
        template: Some(PodTemplateSpec {
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: container.into(),
                    image: Some(image.into()),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        }),
    }
}

/// [sig-node] PodTemplates should run the lifecycle of PodTemplates [Conformance]
#[tokio::test]
async fn conformance_podtemplate_lifecycle() {
    let c = cluster().await;
    let ns = c.create_namespace("podtemplate").await;
    let api: Api<PodTemplate> = c.ns_api(&ns.name);
    let all: Api<PodTemplate> = c.all_api();
    let name = format!("nginx-pod-template-{}", uuid::Uuid::new_v4());
    let stat = ListParams::default().labels("podtemplate-static=true");

    let before = all.list(&stat).await.expect("list all PodTemplates");
    assert_eq!(
        before.items.len(),
        0,
        "unexpected templates: {:?}",
        before.items
    );

    let tpl = pod_template(&name, &[("podtemplate-static", "true")], "nginx", "nginx");
    api.create(&PostParams::default(), &tpl)
        .await
        .expect("create PodTemplate");
    let got = api.get(&name).await.expect("get PodTemplate");
    assert_eq!(got.metadata.name.as_deref(), Some(name.as_str()));

    let patch = serde_json::json!({"metadata": {"labels": {"podtemplate": "patched"}}});
    api.patch(&name, &PatchParams::default(), &Patch::Strategic(&patch))
        .await
        .expect("patch PodTemplate");
    let got = api.get(&name).await.expect("get PodTemplate");
    assert_eq!(
        got.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("podtemplate"))
            .map(String::as_str),
        Some("patched"),
        "new label not found"
    );

    api.delete(&name, &DeleteParams::default())
        .await
        .expect("delete PodTemplate");
    let after = all.list(&stat).await.expect("list all PodTemplates");
    assert_eq!(after.items.len(), 0, "PodTemplate was not deleted");
}

/// [sig-node] PodTemplates should delete a collection of pod templates [Conformance]
#[tokio::test]
async fn conformance_podtemplate_delete_collection() {
    let c = cluster().await;
    let ns = c.create_namespace("podtemplate").await;
    let api: Api<PodTemplate> = c.ns_api(&ns.name);
    let set = ListParams::default().labels("podtemplate-set=true");
    for name in [
        "test-podtemplate-1",
        "test-podtemplate-2",
        "test-podtemplate-3",
    ] {
        let tpl = pod_template(
            name,
            &[("podtemplate-set", "true")],
            "token-test",
            "registry.k8s.io/e2e-test-images/agnhost:2.56",
        );
        api.create(&PostParams::default(), &tpl)
            .await
            .expect("create pod template");
    }
    let list = api.list(&set).await.expect("list pod templates");
    assert_eq!(list.items.len(), 3);

    api.delete_collection(&DeleteParams::default(), &set)
        .await
        .expect("delete collection");
    poll_until(
        "pod templates to be gone",
        Duration::from_secs(1),
        Duration::from_secs(60),
        || {
            let api = api.clone();
            let set = set.clone();
            async move {
                api.list(&set)
                    .await
                    .ok()
                    .filter(|l| l.items.is_empty())
                    .map(|_| ())
            }
        },
    )
    .await;
}
