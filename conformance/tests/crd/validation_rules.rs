//! `x-kubernetes-validations` CEL rules: custom resources that satisfy or break the rules,
//! CRDs whose rules do not compile or are too expensive, the runtime cost limit and transition
//! rules. Mirrors upstream `test/e2e/apimachinery/crd_validation_rules.go`
//! ("CustomResourceValidationRules [Privileged:ClusterAdmin]").

use conformance::{Cluster, cluster};
use http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{
    TestCrd, create_crd_watch_unsafe, delete_crd, rand_suffix, random_name_crd, send_json,
    set_schema, try_create_crd,
};

/// schemaWithValidationExpression: every CRD validation feature the tests exercise.
fn schema_with_validation_expression() -> Value {
    json!({
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "x-kubernetes-validations": [
                    {"rule": "self.x + self.y > 0"},
                    {"rule": "self.firstArray.isSorted() && self.secondArray.isSorted() && ((self.firstArray.sum() + self.secondArray.sum()) % 2 == 0)"},
                    {"rule": "self.largeArray.all(x, self.largeArray.all(y, y == x))"}
                ],
                "properties": {
                    "x": {"type": "integer"},
                    "y": {"type": "integer"},
                    "firstArray": {"type": "array", "maxItems": 1000, "items": {"type": "integer"}},
                    "secondArray": {"type": "array", "maxItems": 1000, "items": {"type": "integer"}},
                    "largeArray": {"type": "array", "maxItems": 725, "items": {"type": "integer"}}
                }
            },
            "status": {
                "type": "object",
                "x-kubernetes-validations": [
                    {"rule": "self.health == 'ok' || self.health == 'unhealthy'"}
                ],
                "properties": {"health": {"type": "string"}}
            }
        }
    })
}

/// fixtures.NewRandomNameV1CustomResourceDefinitionWithSchema (namespaced, no status).
fn crd_with_schema(schema: &Value) -> Value {
    let mut crd = random_name_crd("Namespaced");
    set_schema(&mut crd, schema);
    crd
}

/// POSTs a custom resource `{apiVersion, kind, metadata: {name, namespace}, spec}` to the CRD's
/// only version in `ns`.
async fn create_cr(
    c: &Cluster,
    crd: &TestCrd,
    ns: &str,
    name: &str,
    spec: Value,
) -> conformance::RawResponse {
    let version = crd.version(0);
    let body = json!({
        "apiVersion": format!("{}/{version}", crd.group()),
        "kind": crd.kind(),
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    });
    send_json(c, Method::POST, &crd.collection(&version, ns), &body).await
}

/// The request failed and its Status message contains `want`.
fn expect_error_containing(resp: &conformance::RawResponse, want: &str, what: &str) {
    assert!(
        !resp.status.is_success(),
        "{what} must fail: {}",
        resp.describe()
    );
    assert!(
        resp.text().contains(want),
        "expected the error to contain {want:?}, got {}",
        resp.describe()
    );
}

/// [sig-api-machinery] CustomResourceValidationRules [Privileged:ClusterAdmin] MUST NOT fail
/// validation for create of a custom resource that satisfies the x-kubernetes-validations rules
#[tokio::test]
async fn conformance_crd_validation_rules_must_not_fail_validation_for_create_of_a_custom_resource_that_satisfies_the_rules()
 {
    let c = cluster().await;
    let ns = c.create_namespace("crd-validation-expressions").await;
    let crd =
        create_crd_watch_unsafe(&c, &crd_with_schema(&schema_with_validation_expression())).await;
    let resp = create_cr(
        &c,
        &crd,
        &ns.name,
        &format!("cr-1{}", rand_suffix(5)),
        json!({"x": 1, "y": 0, "firstArray": [3, 4], "secondArray": [5, 10], "largeArray": [2, 2]}),
    )
    .await;
    assert_eq!(
        resp.status,
        StatusCode::CREATED,
        "validation rules satisfied: {}",
        resp.describe()
    );
    delete_crd(&c, crd).await;
}

/// [sig-api-machinery] CustomResourceValidationRules [Privileged:ClusterAdmin] MUST fail
/// validation for create of a custom resource that does not satisfy the x-kubernetes-validations
/// rules
#[tokio::test]
async fn conformance_crd_validation_rules_must_fail_validation_for_create_of_a_custom_resource_that_does_not_satisfy_the_rules()
 {
    let c = cluster().await;
    let ns = c.create_namespace("crd-validation-expressions").await;
    let crd =
        create_crd_watch_unsafe(&c, &crd_with_schema(&schema_with_validation_expression())).await;
    let resp = create_cr(
        &c,
        &crd,
        &ns.name,
        &format!("cr-1{}", rand_suffix(5)),
        json!({"x": 0, "y": 0}),
    )
    .await;
    expect_error_containing(&resp, "failed rule", "creating a CR breaking the rules");
    delete_crd(&c, crd).await;
}

/// Creating a CRD with `schema` fails with an error containing `want`.
async fn expect_crd_rejected(schema: Value, want: &str) {
    let c = cluster().await;
    let crd = crd_with_schema(&schema);
    let resp = try_create_crd(&c, &crd).await;
    if resp.status.is_success() {
        // Do not leave it behind.
        delete_crd(&c, TestCrd::adopt(resp.json())).await;
    }
    expect_error_containing(&resp, want, "creating the CustomResourceDefinition");
}

/// [sig-api-machinery] CustomResourceValidationRules [Privileged:ClusterAdmin] MUST fail create
/// of a custom resource definition that contains a x-kubernetes-validations rule that refers to a
/// property that do not exist
#[tokio::test]
async fn conformance_crd_validation_rules_must_fail_create_of_a_crd_with_a_rule_that_refers_to_a_property_that_does_not_exist()
 {
    let schema = json!({"type": "object", "properties": {"spec": {"type": "object",
        "x-kubernetes-validations": [{"rule": "self.z == 100"}],
        "properties": {"x": {"type": "integer"}}}}});
    expect_crd_rejected(schema, "undefined field 'z'").await;
}

/// [sig-api-machinery] CustomResourceValidationRules [Privileged:ClusterAdmin] MUST fail create
/// of a custom resource definition that contains an x-kubernetes-validations rule that contains
/// a syntax error
#[tokio::test]
async fn conformance_crd_validation_rules_must_fail_create_of_a_crd_with_a_rule_that_contains_a_syntax_error()
 {
    let schema = json!({"type": "object", "properties": {"spec": {"type": "object",
        "x-kubernetes-validations": [{"rule": "self = 42"}]}}});
    expect_crd_rejected(schema, "Syntax error").await;
}

/// [sig-api-machinery] CustomResourceValidationRules [Privileged:ClusterAdmin] MUST fail create
/// of a custom resource definition that contains an x-kubernetes-validations rule that exceeds
/// the estimated cost limit
#[tokio::test]
async fn conformance_crd_validation_rules_must_fail_create_of_a_crd_with_a_rule_that_exceeds_the_estimated_cost_limit()
 {
    let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "x": {"type": "array", "items": {"type": "array", "items": {"type": "string"},
            "x-kubernetes-validations": [{"rule": "self.all(s, s == 'string constant')"}]}}}}}});
    expect_crd_rejected(schema, "exceeds budget").await;
}

/// [sig-api-machinery] CustomResourceValidationRules [Privileged:ClusterAdmin] MUST fail create
/// of a custom resource that exceeds the runtime cost limit for x-kubernetes-validations rule
/// execution
#[tokio::test]
async fn conformance_crd_validation_rules_must_fail_create_of_a_custom_resource_that_exceeds_the_runtime_cost_limit()
 {
    let c = cluster().await;
    let ns = c.create_namespace("crd-validation-expressions").await;
    let crd =
        create_crd_watch_unsafe(&c, &crd_with_schema(&schema_with_validation_expression())).await;
    let large_array = vec![20; 725];
    let resp = create_cr(
        &c,
        &crd,
        &ns.name,
        &format!("cr-1{}", rand_suffix(5)),
        json!({"largeArray": large_array}),
    )
    .await;
    expect_error_containing(
        &resp,
        "call cost exceeds limit",
        "creating a CR exceeding the runtime cost limit",
    );
    delete_crd(&c, crd).await;
}

/// [sig-api-machinery] CustomResourceValidationRules [Privileged:ClusterAdmin] MUST fail update
/// of a custom resource that does not satisfy a x-kubernetes-validations transition rule
#[tokio::test]
async fn conformance_crd_validation_rules_must_fail_update_of_a_custom_resource_that_does_not_satisfy_a_transition_rule()
 {
    let c = cluster().await;
    let ns = c.create_namespace("crd-validation-expressions").await;
    let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "num": {"type": "integer", "x-kubernetes-validations": [{"rule": "self > oldSelf"}]}}}}});
    let crd = create_crd_watch_unsafe(&c, &crd_with_schema(&schema)).await;
    let name = format!("cr-1{}", rand_suffix(5));
    let resp = create_cr(&c, &crd, &ns.name, &name, json!({"num": 10})).await;
    assert_eq!(
        resp.status,
        StatusCode::CREATED,
        "transition rules do not apply to create operations: {}",
        resp.describe()
    );
    let rv = resp.json()["metadata"]["resourceVersion"].clone();
    let version = crd.version(0);
    let update = json!({
        "apiVersion": format!("{}/{version}", crd.group()),
        "kind": crd.kind(),
        "metadata": {"name": name, "namespace": ns.name, "resourceVersion": rv},
        "spec": {"num": 9},
    });
    let path = format!("{}/{name}", crd.collection(&version, &ns.name));
    let resp = send_json(&c, Method::PUT, &path, &update).await;
    expect_error_containing(
        &resp,
        "failed rule",
        "updating a CR breaking a transition rule",
    );
    delete_crd(&c, crd).await;
}
