//! Server-side apply of custom resources: create by apply, apply through another version, merge
//! patches next to apply, conflicts (and forcing them), list-map items owned by different
//! managers, no create on update, atomic lists. Mirrors "should work for CRDs" in upstream
//! `test/e2e/apimachinery/apply.go` ("ServerSideApply").

use conformance::{Cluster, RawResponse, cluster};
use http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::crd_field_validation::cron_spec_property;
use crate::{
    TestCrd, create_crd, delete_crd, random_name_crd, random_name_multi_version_crd, send,
    set_schema,
};

const APPLY: &str = "application/apply-patch+yaml";
const MERGE: &str = "application/merge-patch+json";

/// PATCHes `name` in `version` of the (cluster-scoped) CRD with `query` appended.
async fn patch(
    c: &Cluster,
    crd: &TestCrd,
    version: &str,
    name: &str,
    query: &str,
    content_type: &str,
    body: &str,
) -> RawResponse {
    let path = format!("{}/{name}{query}", crd.collection(version, ""));
    send(c, Method::PATCH, &path, content_type, body.as_bytes()).await
}

/// The body of a successful response; panics with `what` otherwise.
fn ok(resp: RawResponse, what: &str) -> Value {
    assert!(resp.status.is_success(), "{what}: {}", resp.describe());
    resp.json()
}

fn finalizers(obj: &Value) -> Vec<String> {
    obj["metadata"]["finalizers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f.as_str().map(str::to_string))
        .collect()
}

/// verifyNumFinalizers and verifyFinalizersIncludes.
fn verify_finalizers(obj: &Value, want: &[&str]) {
    let got = finalizers(obj);
    assert_eq!(got.len(), want.len(), "finalizers of {obj}");
    for w in want {
        assert!(
            got.iter().any(|g| g == w),
            "expected finalizers to include {w:?} but got {got:?}"
        );
    }
}

/// verifyReplicas: `.spec.replicas` is the integer `r`.
fn verify_replicas(obj: &Value, r: i64) {
    assert_eq!(
        obj["spec"]["replicas"].as_i64(),
        Some(r),
        "replicas of {obj}"
    );
}

/// verifyNumPorts.
fn verify_num_ports(obj: &Value, n: usize) {
    let ports = obj["spec"]["ports"]
        .as_array()
        .unwrap_or_else(|| panic!("no ports list in {obj}"));
    assert_eq!(ports.len(), n, "ports of {obj}");
}

/// The request failed with a Status whose details have exactly one cause (one conflict).
fn expect_one_conflict(resp: &RawResponse, what: &str) {
    assert!(
        !resp.status.is_success(),
        "{what}: expected conflicts, got {}",
        resp.describe()
    );
    let status = resp.json();
    assert_eq!(
        status["kind"],
        "Status",
        "{what}: not an API error: {}",
        resp.describe()
    );
    let causes = status["details"]["causes"].as_array().map_or(0, Vec::len);
    assert_eq!(
        causes,
        1,
        "{what}: expected one conflict: {}",
        resp.describe()
    );
}

/// [sig-api-machinery] ServerSideApply should work for CRDs
#[tokio::test]
async fn conformance_server_side_apply_should_work_for_crds() {
    let c = cluster().await;
    let schema = json!({"type": "object", "properties": {"spec": {
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
        "properties": {
            "cronSpec": cron_spec_property(),
            "ports": {
                "type": "array",
                "x-kubernetes-list-map-keys": ["containerPort", "protocol"],
                "x-kubernetes-list-type": "map",
                "items": {
                    "properties": {
                        "containerPort": {"format": "int32", "type": "integer"},
                        "hostIP": {"type": "string"},
                        "hostPort": {"format": "int32", "type": "integer"},
                        "name": {"type": "string"},
                        "protocol": {"type": "string"}
                    },
                    "required": ["containerPort", "protocol"],
                    "type": "object"
                }
            }
        }
    }}});
    let mut noxu = random_name_multi_version_crd("Cluster");
    set_schema(&mut noxu, &schema);
    let noxu = create_crd(&c, &noxu).await;
    let (v0, v1) = (noxu.version(0), noxu.version(1));
    let kind = noxu.kind();
    let name = "mytest";
    let api_version = format!("{}/{v0}", noxu.group());
    let yaml = format!(
        "\napiVersion: {api_version}\nkind: {kind}\nmetadata:\n  name: {name}\n  finalizers:\n  - test-finalizer\nspec:\n  cronSpec: \"* * * * */5\"\n  replicas: 1\n  ports:\n  - name: x\n    containerPort: 80\n    protocol: TCP"
    );
    let manager = "?fieldManager=apply_test";
    let result = ok(
        patch(&c, &noxu, &v0, name, manager, APPLY, &yaml).await,
        "failed to create custom resource with apply",
    );
    verify_finalizers(&result, &["test-finalizer"]);
    verify_replicas(&result, 1);
    verify_num_ports(&result, 1);

    // Apply works through the other version too.
    let yaml_beta = format!(
        "\napiVersion: {}/{v1}\nkind: {kind}\nmetadata:\n  name: {name}\nspec:\n  cronSpec: \"* * * * */5\"\n  replicas: 1\n  ports:\n  - name: x\n    containerPort: 80\n    protocol: TCP",
        noxu.group()
    );
    let result = ok(
        patch(&c, &noxu, &v1, name, manager, APPLY, &yaml_beta).await,
        "failed to apply through the other version",
    );
    verify_replicas(&result, 1);
    verify_num_ports(&result, 1);

    // A merge patch adds a finalizer.
    let result = ok(
        patch(
            &c,
            &noxu,
            &v0,
            name,
            "",
            MERGE,
            r#"{"metadata":{"finalizers":["test-finalizer","another-one"]}}"#,
        )
        .await,
        "failed to add finalizer with merge patch",
    );
    verify_finalizers(&result, &["test-finalizer", "another-one"]);

    // Re-applying the same configuration works: finalizers are a set.
    let result = ok(
        patch(&c, &noxu, &v0, name, manager, APPLY, &yaml).await,
        "failed to apply same config after adding a finalizer",
    );
    verify_finalizers(&result, &["test-finalizer", "another-one"]);

    // A merge patch changes replicas; re-applying conflicts on exactly that field.
    let result = ok(
        patch(
            &c,
            &noxu,
            &v0,
            name,
            "",
            MERGE,
            r#"{"spec":{"replicas": 5}}"#,
        )
        .await,
        "failed to update number of replicas with merge patch",
    );
    verify_replicas(&result, 5);
    let resp = patch(&c, &noxu, &v0, name, manager, APPLY, &yaml).await;
    expect_one_conflict(&resp, "applying after updating replicas");

    // Forcing takes the field back.
    let result = ok(
        patch(
            &c,
            &noxu,
            &v0,
            name,
            "?force=true&fieldManager=apply_test",
            APPLY,
            &yaml,
        )
        .await,
        "failed to apply object with force after updating replicas",
    );
    verify_replicas(&result, 1);

    // Another applier editing an existing list item conflicts.
    let other = "?fieldManager=apply_test_2";
    let edit_item = format!(
        "\napiVersion: {api_version}\nkind: {kind}\nmetadata:\n  name: {name}\nspec:\n  ports:\n  - name: \"y\"\n    containerPort: 80\n    protocol: TCP"
    );
    let resp = patch(&c, &noxu, &v0, name, other, APPLY, &edit_item).await;
    expect_one_conflict(&resp, "a different applier updating an existing list item");

    // ... while adding a new item works.
    let new_item = format!(
        "\napiVersion: {api_version}\nkind: {kind}\nmetadata:\n  name: {name}\nspec:\n  ports:\n  - name: \"y\"\n    containerPort: 8080\n    protocol: TCP"
    );
    let result = ok(
        patch(&c, &noxu, &v0, name, other, APPLY, &new_item).await,
        "failed to add a new list item to the object as a different applier",
    );
    verify_num_ports(&result, 2);

    // An update (PUT) does not create.
    let not_existing = json!({
        "apiVersion": api_version, "kind": kind,
        "metadata": {"name": "should-not-exist", "finalizers": ["test-finalizer"]},
        "spec": {"cronSpec": "* * * * */5", "replicas": 1, "ports": [{"name": "x", "containerPort": 80}]},
        "protocol": "TCP",
    });
    let path = format!(
        "{}/should-not-exist?fieldManager=apply_test",
        noxu.collection(&v0, "")
    );
    let resp = crate::send_json(&c, Method::PUT, &path, &not_existing).await;
    assert_eq!(
        resp.status,
        StatusCode::NOT_FOUND,
        "create on update should fail with NotFound: {}",
        resp.describe()
    );

    // Atomic lists are replaced as a whole by the latest applier.
    let mut atomic = random_name_crd("Cluster");
    set_schema(
        &mut atomic,
        &json!({"type": "object", "properties": {"spec": {"type": "object",
            "x-kubernetes-preserve-unknown-fields": true,
            "properties": {"atomicList": {"type": "array", "x-kubernetes-list-type": "atomic",
                "items": {"type": "string"}}}}}}),
    );
    let atomic = create_crd(&c, &atomic).await;
    let av = atomic.version(0);
    let atomic_yaml = |item: &str| {
        format!(
            "\napiVersion: {}/{av}\nkind: {}\nmetadata:\n  name: {name}\nspec:\n  atomicList:\n  - \"{item}\"",
            atomic.group(),
            atomic.kind()
        )
    };
    let result = ok(
        patch(
            &c,
            &atomic,
            &av,
            name,
            manager,
            APPLY,
            &atomic_yaml("item1"),
        )
        .await,
        "failed to create custom resource with apply",
    );
    assert_eq!(result["spec"]["atomicList"], json!(["item1"]), "{result}");
    let result = ok(
        patch(
            &c,
            &atomic,
            &av,
            name,
            "?fieldManager=apply_test_2&force=true",
            APPLY,
            &atomic_yaml("item2"),
        )
        .await,
        "failed to apply the atomic list as another manager",
    );
    assert_eq!(result["spec"]["atomicList"], json!(["item2"]), "{result}");

    // Clean up: the finalizers first, so that the custom resource (and its CRD) can go.
    delete_crd(&c, atomic).await;
    ok(
        patch(
            &c,
            &noxu,
            &v0,
            name,
            "",
            MERGE,
            r#"{"metadata":{"finalizers":[]}}"#,
        )
        .await,
        "failed to reset finalizers",
    );
    delete_crd(&c, noxu).await;
}
