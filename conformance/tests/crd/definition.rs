//! CustomResourceDefinition objects: create/delete, list and delete collection, the status
//! subresource, discovery, defaulting, and watching custom resources. Mirrors upstream
//! `test/e2e/apimachinery/custom_resource_definition.go` ("CustomResourceDefinition resources
//! [Privileged:ClusterAdmin]") and `crd_watch.go` ("CustomResourceDefinition Watch").

use std::time::Duration;

use conformance::watch::EventType;
use conformance::{EventStream, cluster, poll_until};
use http::{Method, StatusCode};
use kube::api::{DeleteParams, DynamicObject, PostParams, WatchParams};
use serde_json::{Value, json};

use crate::{
    CRDS, create_crd, create_crd_watch_unsafe, delete_crd, get, rand_suffix, random_group,
    random_name_crd, send, send_json,
};

/// A CRD condition as upstream's Go struct sees it: type and status are always serialized
/// (no omitempty), the other fields are optional, a null time is the zero time.
fn normalized_condition(c: &Value) -> Vec<String> {
    ["type", "status", "lastTransitionTime", "reason", "message"]
        .iter()
        .map(|k| c[*k].as_str().unwrap_or("").to_string())
        .collect()
}

/// expectCondition: the CRD's status conditions contain one equal to `want` (whole conditions
/// compared, as upstream compares the structs).
fn expect_condition(crd: &Value, want: &Value) {
    let conditions = crd["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let want_fields = normalized_condition(want);
    assert!(
        conditions
            .iter()
            .any(|c| normalized_condition(c) == want_fields),
        "condition {want} not found in conditions {conditions:?}"
    );
}

/// [sig-api-machinery] CustomResourceDefinition resources [Privileged:ClusterAdmin] Simple
/// CustomResourceDefinition creating/deleting custom resource definition objects works
/// [Conformance]
#[tokio::test]
async fn conformance_crd_creating_deleting_custom_resource_definition_objects_works() {
    let c = cluster().await;
    let crd = create_crd_watch_unsafe(&c, &random_name_crd("Cluster")).await;
    delete_crd(&c, crd).await;
}

/// [sig-api-machinery] CustomResourceDefinition resources [Privileged:ClusterAdmin] Simple
/// CustomResourceDefinition listing custom resource definition objects works [Conformance]
#[tokio::test]
async fn conformance_crd_listing_custom_resource_definition_objects_works() {
    const TEST_LIST_SIZE: usize = 10;
    let c = cluster().await;
    let test_uuid = uuid::Uuid::new_v4().to_string();
    let mut crds = Vec::new();
    for _ in 0..TEST_LIST_SIZE {
        let mut crd = random_name_crd("Cluster");
        crd["metadata"]["labels"] = json!({"e2e-list-test-uuid": test_uuid});
        crds.push(create_crd_watch_unsafe(&c, &crd).await);
    }
    // One without the label, to check that the selector matches correctly.
    let unlabeled = create_crd_watch_unsafe(&c, &random_name_crd("Cluster")).await;

    let selector = format!("e2e-list-test-uuid={test_uuid}");
    let list_path = format!(
        "{CRDS}?labelSelector={}",
        conformance::query_escape(&selector)
    );
    let resp = get(&c, &list_path).await;
    assert!(
        resp.status.is_success(),
        "listing CRDs: {}",
        resp.describe()
    );
    let list = resp.json();
    let items = list["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(items.len(), TEST_LIST_SIZE, "listed CRDs: {list}");
    for actual in &items {
        let expected = crds
            .iter()
            .find(|e| e.crd["metadata"]["name"] == actual["metadata"]["name"])
            .unwrap_or_else(|| panic!("unexpected CRD in list: {}", actual["metadata"]["name"]));
        assert_eq!(
            actual["spec"], expected.crd["spec"],
            "CRD in list with name {} must match the one created with that name",
            actual["metadata"]["name"]
        );
    }

    // DeleteV1CustomResourceDefinitions: delete collection, then wait for discovery.
    let resp = c
        .raw(
            Method::DELETE,
            &list_path,
            &[("Accept", "application/json")],
            Vec::new(),
        )
        .await;
    assert!(
        resp.status.is_success(),
        "deleting CRDs by label: {}",
        resp.describe()
    );
    for mut crd in crds {
        // Deleted by the collection call; wait until it is gone from discovery.
        crd.mark_deleted();
        let (group, plural, version) = (crd.group(), crd.plural(), crd.version(0));
        poll_until(
            &format!("{plural}.{group} to leave discovery"),
            Duration::from_millis(500),
            Duration::from_secs(30),
            || async {
                (!crate::exists_in_discovery(&c, &group, &version, &plural).await).then_some(())
            },
        )
        .await;
    }
    let resp = get(&c, &format!("{CRDS}/{}", unlabeled.name())).await;
    assert!(
        resp.status.is_success(),
        "getting the remaining CRD: {}",
        resp.describe()
    );
    delete_crd(&c, unlabeled).await;
}

/// [sig-api-machinery] CustomResourceDefinition resources [Privileged:ClusterAdmin] Simple
/// CustomResourceDefinition getting/updating/patching custom resource definition status
/// sub-resource works [Conformance]
#[tokio::test]
async fn conformance_crd_getting_updating_patching_custom_resource_definition_status_sub_resource_works()
 {
    let c = cluster().await;
    let crd = create_crd_watch_unsafe(&c, &random_name_crd("Cluster")).await;
    let status_path = format!("{CRDS}/{}/status", crd.name());
    let update_condition = json!({"message": "updated"});

    // RetryOnConflict: read the status subresource, append a condition, UpdateStatus.
    let mut updated = None;
    for _ in 0..5 {
        let resp = get(&c, &status_path).await;
        assert!(
            resp.status.is_success(),
            "getting CustomResourceDefinition status: {}",
            resp.describe()
        );
        let mut status = resp.json();
        assert_eq!(
            status["spec"], crd.crd["spec"],
            "the status subresource's spec must match the created CRD's"
        );
        let mut conditions = status["status"]["conditions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        conditions.push(update_condition.clone());
        status["status"]["conditions"] = Value::Array(conditions);
        let resp = send_json(&c, Method::PUT, &status_path, &status).await;
        if resp.status == StatusCode::CONFLICT {
            continue;
        }
        assert!(
            resp.status.is_success(),
            "updating CustomResourceDefinition status: {}",
            resp.describe()
        );
        updated = Some(resp.json());
        break;
    }
    let updated = updated.expect("UpdateStatus kept conflicting");
    expect_condition(&updated, &update_condition);

    let resp = send(
        &c,
        Method::PATCH,
        &status_path,
        "application/json-patch+json",
        br#"[{"op": "add", "path": "/status/conditions", "value": [{"message": "patched"}]}]"#,
    )
    .await;
    assert!(
        resp.status.is_success(),
        "patching CustomResourceDefinition status: {}",
        resp.describe()
    );
    expect_condition(&updated, &update_condition);
    expect_condition(&resp.json(), &json!({"message": "patched"}));
    delete_crd(&c, crd).await;
}

/// [sig-api-machinery] CustomResourceDefinition resources [Privileged:ClusterAdmin] should
/// include custom resource definition resources in discovery documents [Conformance]
#[tokio::test]
async fn conformance_crd_should_include_custom_resource_definition_resources_in_discovery_documents()
 {
    let c = cluster().await;
    let list = c.get_json("/apis", "application/json").await;
    let group = list["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|g| g["name"] == "apiextensions.k8s.io")
        .unwrap_or_else(|| panic!("apiextensions.k8s.io API group not found in /apis: {list}"));
    assert!(
        group["versions"]
            .as_array()
            .is_some_and(|vs| vs.iter().any(|v| v["version"] == "v1")),
        "apiextensions.k8s.io/v1 not found in the /apis discovery document: {group}"
    );

    let group = c
        .get_json("/apis/apiextensions.k8s.io", "application/json")
        .await;
    assert_eq!(group["name"], "apiextensions.k8s.io", "{group}");
    assert!(
        group["versions"]
            .as_array()
            .is_some_and(|vs| vs.iter().any(|v| v["version"] == "v1")),
        "apiextensions.k8s.io/v1 not found in /apis/apiextensions.k8s.io: {group}"
    );

    let resources = c
        .get_json("/apis/apiextensions.k8s.io/v1", "application/json")
        .await;
    assert_eq!(resources["groupVersion"], "apiextensions.k8s.io/v1");
    assert!(
        resources["resources"]
            .as_array()
            .is_some_and(|rs| rs.iter().any(|r| r["name"] == "customresourcedefinitions")),
        "customresourcedefinitions not found in /apis/apiextensions.k8s.io/v1: {resources}"
    );
}

/// [sig-api-machinery] CustomResourceDefinition resources [Privileged:ClusterAdmin] custom
/// resource defaulting for requests and from storage works [Conformance]
#[tokio::test]
async fn conformance_crd_custom_resource_defaulting_for_requests_and_from_storage_works() {
    let c = cluster().await;
    let mut crd = random_name_crd("Cluster");
    let props = &mut crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"];
    *props = json!({"a": {"type": "string"}, "b": {"type": "string"}});
    let crd = create_crd_watch_unsafe(&c, &crd).await;
    let collection = crd.collection(&crd.version(0), "");
    let api_version = format!("{}/{}", crd.group(), crd.version(0));

    // A custom resource stored without the default.
    let name1 = format!("cr-1{}", rand_suffix(5));
    let resp = send_json(
        &c,
        Method::POST,
        &collection,
        &json!({"apiVersion": api_version, "kind": crd.kind(), "metadata": {"name": name1}}),
    )
    .await;
    assert_eq!(
        resp.status,
        StatusCode::CREATED,
        "creating CR: {}",
        resp.describe()
    );

    // Default a to "A": reading the stored object must show it.
    let crd_path = format!("{CRDS}/{}", crd.name());
    let resp = send(
        &c,
        Method::PATCH,
        &crd_path,
        "application/json-patch+json",
        br#"[{"op":"add","path":"/spec/versions/0/schema/openAPIV3Schema/properties/a/default","value":"A"}]"#,
    )
    .await;
    assert!(
        resp.status.is_success(),
        "setting default for a to \"A\" in schema: {}",
        resp.describe()
    );
    let path1 = format!("{collection}/{name1}");
    poll_until(
        "CR to be defaulted on read",
        Duration::from_millis(100),
        Duration::from_secs(30),
        || async {
            let o = get(&c, &path1).await.json();
            match o.get("a") {
                None => None,
                Some(a) => {
                    assert_eq!(a, "A", "expected a:\"A\", got {o}");
                    Some(())
                }
            }
        },
    )
    .await;

    // A custom resource created now gets the default on the request.
    let name2 = format!("cr-2{}", rand_suffix(5));
    let resp = send_json(
        &c,
        Method::POST,
        &collection,
        &json!({"apiVersion": api_version, "kind": crd.kind(), "metadata": {"name": name2}}),
    )
    .await;
    assert_eq!(
        resp.status,
        StatusCode::CREATED,
        "creating CR: {}",
        resp.describe()
    );
    assert_eq!(resp.json()["a"], "A", "\"a\" is defaulted to \"A\"");

    // Drop a's default, default b to "B": b shows up on read, a stays as stored.
    let resp = send(
        &c,
        Method::PATCH,
        &crd_path,
        "application/json-patch+json",
        br#"[{"op":"remove","path":"/spec/versions/0/schema/openAPIV3Schema/properties/a/default"},
            {"op":"add","path":"/spec/versions/0/schema/openAPIV3Schema/properties/b/default","value":"B"}]"#,
    )
    .await;
    assert!(
        resp.status.is_success(),
        "setting default for b to \"B\" and removing default for a: {}",
        resp.describe()
    );
    let path2 = format!("{collection}/{name2}");
    poll_until(
        "CR to be defaulted on read for b and a staying the same",
        Duration::from_millis(100),
        Duration::from_secs(30),
        || async {
            let o = get(&c, &path2).await.json();
            let b = o.get("b")?;
            assert_eq!(b, "B", "expected b:\"B\", got {o}");
            assert_eq!(o["a"], "A", "expected a:\"A\" to be unchanged, got {o}");
            Some(())
        },
    )
    .await;
    delete_crd(&c, crd).await;
}

/// fixtures.NewNoxuV1CustomResourceDefinition (in a random group).
fn noxu_crd(scope: &str) -> Value {
    let group = random_group("mygroup");
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("noxus.{group}")},
        "spec": {
            "group": group,
            "versions": [{"name": "v1beta1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": crate::allow_all_schema()}}],
            "names": {"plural": "noxus", "singular": "nonenglishnoxu", "kind": "WishIHadChosenNoxu",
                "shortNames": ["foo", "bar", "abc", "def"], "listKind": "NoxuItemList",
                "categories": ["all"]},
            "scope": scope,
        }
    })
}

/// fixtures.NewNoxuInstance.
fn noxu_instance(group: &str, name: &str) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": format!("{group}/v1beta1"),
        "kind": "WishIHadChosenNoxu",
        "metadata": {"name": name},
        "content": {"key": "value"},
        "num": {"num1": i64::MAX, "num2": 1000000},
    }))
    .expect("noxu instance")
}

/// [sig-api-machinery] CustomResourceDefinition Watch [Privileged:ClusterAdmin]
/// CustomResourceDefinition Watch watch on custom resource definition objects [Conformance]
#[tokio::test]
async fn conformance_crd_watch_on_custom_resource_definition_objects() {
    const NAME_A: &str = "name1";
    const NAME_B: &str = "name2";
    let no_event = Duration::from_secs(3);
    let c = cluster().await;
    let crd = create_crd(&c, &noxu_crd("Cluster")).await;
    let api = crd.api(&c, &crd.version(0), "");
    let watch_params = |name: &str| {
        WatchParams::default()
            .fields(&format!("metadata.name={name}"))
            .timeout(290)
    };
    let mut watch_a = EventStream::open(&api, &watch_params(NAME_A), "").await;
    let mut watch_b = EventStream::open(&api, &watch_params(NAME_B), "").await;

    // instantiateCustomResource: created, with a uid, apiVersion and kind of the CRD.
    let instantiate = |name: &'static str| {
        let api = api.clone();
        let (group, kind) = (crd.group(), crd.kind());
        async move {
            let created = api
                .create(&PostParams::default(), &noxu_instance(&group, name))
                .await
                .unwrap_or_else(|e| panic!("failed to instantiate custom resource {name}: {e}"));
            assert!(
                created
                    .metadata
                    .uid
                    .as_deref()
                    .is_some_and(|u| !u.is_empty()),
                "missing uid: {created:?}"
            );
            let types = created.types.clone().expect("typed");
            assert_eq!(types.api_version, format!("{group}/v1beta1"));
            assert_eq!(types.kind, kind);
            created
        }
    };
    // patchCustomResource: a JSON patch adding `/dummy`.
    let patch = |name: &'static str| {
        let path = format!("{}/{name}", crd.collection(&crd.version(0), ""));
        let c = c.clone();
        async move {
            let resp = send(
                &c,
                Method::PATCH,
                &path,
                "application/json-patch+json",
                br#"[{ "op": "add", "path": "/dummy", "value": "test" }]"#,
            )
            .await;
            assert!(
                resp.status.is_success(),
                "failed to patch custom resource {name}: {}",
                resp.describe()
            );
        }
    };

    // Creating first CR.
    let cr_a = instantiate(NAME_A).await;
    watch_a.expect(EventType::Added, Some(&cr_a)).await;
    watch_b
        .expect_none(EventType::Added, Some(&cr_a), no_event)
        .await;
    // Creating second CR.
    let cr_b = instantiate(NAME_B).await;
    watch_b.expect(EventType::Added, Some(&cr_b)).await;
    watch_a
        .expect_none(EventType::Added, Some(&cr_b), no_event)
        .await;
    // Modifying first CR.
    patch(NAME_A).await;
    watch_a.expect(EventType::Modified, None).await;
    watch_b
        .expect_none(EventType::Modified, None, no_event)
        .await;
    // Modifying second CR.
    patch(NAME_B).await;
    watch_b.expect(EventType::Modified, None).await;
    watch_a
        .expect_none(EventType::Modified, None, no_event)
        .await;
    // Deleting first CR.
    api.delete(NAME_A, &DeleteParams::default())
        .await
        .unwrap_or_else(|e| panic!("failed to delete custom resource {NAME_A}: {e}"));
    watch_a.expect(EventType::Deleted, None).await;
    watch_b
        .expect_none(EventType::Deleted, None, no_event)
        .await;
    // Deleting second CR.
    api.delete(NAME_B, &DeleteParams::default())
        .await
        .unwrap_or_else(|e| panic!("failed to delete custom resource {NAME_B}: {e}"));
    watch_b.expect(EventType::Deleted, None).await;
    watch_a
        .expect_none(EventType::Deleted, None, no_event)
        .await;

    delete_crd(&c, crd).await;
}
