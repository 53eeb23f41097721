//! Server-side field validation of typed objects. Mirrors upstream
//! `test/e2e/apimachinery/field_validation.go` ("FieldValidation").

use conformance::cluster;
use http::Method;

/// POSTs `body` as a Deployment with fieldValidation=Strict and returns the error Status message.
async fn strict_create_deployment(body: &str) -> String {
    let c = cluster().await;
    let ns = c.create_namespace("field-validation").await;
    let path = format!(
        "/apis/apps/v1/namespaces/{}/deployments?fieldManager=field_validation_mgr&fieldValidation=Strict",
        ns.name
    );
    let resp = c
        .raw(
            Method::POST,
            &path,
            &[
                ("Content-Type", "application/json"),
                ("Accept", "application/json"),
            ],
            body.as_bytes().to_vec(),
        )
        .await;
    assert!(
        !resp.status.is_success(),
        "strict create must fail: {}",
        resp.describe()
    );
    let status = resp.json();
    assert_eq!(status["kind"], "Status", "{}", resp.describe());
    status["message"].as_str().unwrap_or_default().to_string()
}

/// [sig-api-machinery] FieldValidation should detect unknown and duplicate fields of a typed
/// object [Conformance]
#[tokio::test]
async fn conformance_field_validation_unknown_and_duplicate_fields() {
    let body = r#"{
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "my-dep", "labels": {"app": "nginx"}},
        "spec": {
            "unknownField": "foo",
            "replicas": 2,
            "replicas": 3,
            "selector": {"matchLabels": {"app": "nginx"}},
            "template": {
                "metadata": {"labels": {"app": "nginx"}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx:latest"}]}
            }
        }
    }"#;
    let message = strict_create_deployment(body).await;
    let want = r#"strict decoding error: unknown field "spec.unknownField", duplicate field "spec.replicas""#;
    assert!(
        message.contains(want),
        "error missing unknown/duplicate field, got: {message}"
    );
}

/// [sig-api-machinery] FieldValidation should detect unknown metadata fields of a typed object
/// [Conformance]
#[tokio::test]
async fn conformance_field_validation_unknown_metadata_fields() {
    let body = r#"{
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "my-dep", "unknownMeta": "foo", "labels": {"app": "nginx"}},
        "spec": {
            "selector": {"matchLabels": {"app": "nginx"}},
            "template": {
                "metadata": {"labels": {"app": "nginx"}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx:latest"}]}
            }
        }
    }"#;
    let message = strict_create_deployment(body).await;
    let want = r#"strict decoding error: unknown field "metadata.unknownMeta""#;
    assert!(
        message.contains(want),
        "error missing unknown metadata field, got: {message}"
    );
}
