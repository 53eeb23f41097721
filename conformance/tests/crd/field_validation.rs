//! Server-side field validation of custom resources sent with server-side apply and
//! `fieldValidation=Strict`: unknown fields with and without a schema, unknown metadata in the
//! root and in an embedded object, duplicate fields where unknown fields are preserved. Mirrors
//! the custom resource tests of upstream `test/e2e/apimachinery/field_validation.go`
//! ("FieldValidation").

use conformance::{Cluster, RawResponse, cluster};
use http::Method;
use serde_json::{Value, json};

use crate::{TestCrd, create_crd, delete_crd, random_name_multi_version_crd, send, set_schema};

/// The `ports` list-map property of the upstream schemas.
fn ports_property() -> Value {
    json!({
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
    })
}

/// The `cronSpec` property of the upstream schemas.
pub fn cron_spec_property() -> Value {
    json!({"type": "string", "pattern": r"^(\d+|\*)(/\d+)?(\s+(\d+|\*)(/\d+)?){4}$"})
}

/// `{type: object, properties: {spec: <spec>}}` where spec has foo, cronSpec and ports (and
/// whatever `extra` adds to it).
fn schema_with_spec(extra: Value) -> Value {
    let mut spec = json!({
        "type": "object",
        "properties": {
            "foo": {"type": "string"},
            "cronSpec": cron_spec_property(),
            "ports": ports_property(),
        }
    });
    if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            if k == "properties" {
                for (pk, pv) in v.as_object().into_iter().flatten() {
                    s["properties"][pk] = pv.clone();
                }
            } else {
                s.insert(k.clone(), v.clone());
            }
        }
    }
    json!({"type": "object", "properties": {"spec": spec}})
}

/// Creates the multi-version, cluster-scoped CRD (with `schema` in every version, when given)
/// and waits for its watch to be primed (fixtures.CreateNewV1CustomResourceDefinition).
async fn setup(c: &Cluster, schema: Option<Value>) -> TestCrd {
    let mut crd = random_name_multi_version_crd("Cluster");
    if let Some(schema) = schema {
        set_schema(&mut crd, &schema);
    }
    create_crd(c, &crd).await
}

/// Server-side applies `yaml` to `mytest` in the CRD's first version with
/// `fieldManager=field_validation_mgr&fieldValidation=Strict`.
async fn strict_apply(c: &Cluster, crd: &TestCrd, yaml: &str) -> RawResponse {
    let path = format!(
        "{}/mytest?fieldManager=field_validation_mgr&fieldValidation=Strict",
        crd.collection(&crd.version(0), "")
    );
    send(
        c,
        Method::PATCH,
        &path,
        "application/apply-patch+yaml",
        yaml.as_bytes(),
    )
    .await
}

/// `apiVersion`, `kind` and `metadata.name: mytest` for the CRD's first version, as YAML lines.
fn header(crd: &TestCrd) -> String {
    format!(
        "\napiVersion: {}/{}\nkind: {}\nmetadata:\n  name: mytest\n",
        crd.group(),
        crd.version(0),
        crd.kind()
    )
}

/// [sig-api-machinery] FieldValidation should create/apply a CR with unknown fields for CRD with
/// no validation schema [Conformance]
#[tokio::test]
async fn conformance_field_validation_should_create_apply_a_cr_with_unknown_fields_for_crd_with_no_validation_schema()
 {
    let c = cluster().await;
    let crd = setup(&c, None).await;
    let yaml = format!(
        "{}spec:\n  unknown: uk1\n  cronSpec: \"* * * * */5\"\n  ports:\n  - name: x\n    containerPort: 80\n    protocol: TCP",
        header(&crd)
    );
    let resp = strict_apply(&c, &crd, &yaml).await;
    assert!(resp.status.is_success(), "apply: {}", resp.describe());
    delete_crd(&c, crd).await;
}

/// [sig-api-machinery] FieldValidation should create/apply a valid CR for CRD with validation
/// schema [Conformance]
#[tokio::test]
async fn conformance_field_validation_should_create_apply_a_valid_cr_for_crd_with_validation_schema()
 {
    let c = cluster().await;
    let crd = setup(&c, Some(schema_with_spec(json!({})))).await;
    let yaml = format!(
        "{}spec:\n  foo: foo1\n  cronSpec: \"* * * * */5\"\n  ports:\n  - name: x\n    containerPort: 80\n    protocol: TCP",
        header(&crd)
    );
    let resp = strict_apply(&c, &crd, &yaml).await;
    assert!(resp.status.is_success(), "apply: {}", resp.describe());
    delete_crd(&c, crd).await;
}

/// [sig-api-machinery] FieldValidation should create/apply an invalid CR with extra properties
/// for CRD with validation schema [Conformance]
#[tokio::test]
async fn conformance_field_validation_should_create_apply_an_invalid_cr_with_extra_properties_for_crd_with_validation_schema()
 {
    let c = cluster().await;
    let crd = setup(&c, Some(schema_with_spec(json!({})))).await;
    let yaml = format!(
        "{}unknownField: unknown\nspec:\n  foo: foo1\n  cronSpec: \"* * * * */5\"\n  ports:\n  - name: x\n    containerPort: 80\n    protocol: TCP",
        header(&crd)
    );
    let resp = strict_apply(&c, &crd, &yaml).await;
    assert!(
        resp.text()
            .contains(".unknownField: field not declared in schema"),
        "error missing unknown field: {}",
        resp.describe()
    );
    delete_crd(&c, crd).await;
}

/// [sig-api-machinery] FieldValidation should detect unknown metadata fields in both the root and
/// embedded object of a CR [Conformance]
#[tokio::test]
async fn conformance_field_validation_should_detect_unknown_metadata_fields_in_both_the_root_and_embedded_object_of_a_cr()
 {
    let c = cluster().await;
    let ns = c.create_namespace("field-validation").await;
    let template = json!({"properties": {"template": {
        "type": "object",
        "x-kubernetes-embedded-resource": true,
        "properties": {
            "metadata": {"type": "object", "properties": {"name": {"type": "string"}}},
            "spec": {"type": "object"}
        }
    }}, "x-kubernetes-preserve-unknown-fields": true});
    let crd = setup(&c, Some(schema_with_spec(template))).await;
    // As upstream: the embedded object's apiVersion is spelt "apiversion".
    let yaml = format!(
        "\napiVersion: {}/{}\nkind: {}\nmetadata:\n  name: mytest\n  unknownMeta: unknown\nspec:\n  template:\n    apiversion: foo/v1\n    kind: Sub\n    metadata:\n        unknownSubMeta: unknown\n        name: subobject\n        namespace: {}\n  foo: foo1\n  cronSpec: \"* * * * */5\"\n  ports:\n  - name: x\n    containerPort: 80\n    protocol: TCP",
        crd.group(),
        crd.version(0),
        crd.kind(),
        ns.name
    );
    let resp = strict_apply(&c, &crd, &yaml).await;
    let text = resp.text();
    assert!(
        text.contains(".spec.template.metadata.unknownSubMeta: field not declared in schema")
            || text.contains(".metadata.unknownMeta: field not declared in schema"),
        "error missing unknown metadata field: {}",
        resp.describe()
    );
    delete_crd(&c, crd).await;
}

/// [sig-api-machinery] FieldValidation should detect duplicates in a CR when preserving unknown
/// fields [Conformance]
#[tokio::test]
async fn conformance_field_validation_should_detect_duplicates_in_a_cr_when_preserving_unknown_fields()
 {
    let c = cluster().await;
    let crd = setup(
        &c,
        Some(schema_with_spec(
            json!({"x-kubernetes-preserve-unknown-fields": true}),
        )),
    )
    .await;
    let yaml = format!(
        "{}spec:\n  unknown: uk1\n  foo: foo1\n  foo: foo2\n  cronSpec: \"* * * * */5\"\n  ports:\n  - name: x\n    containerPort: 80\n    protocol: TCP",
        header(&crd)
    );
    let resp = strict_apply(&c, &crd, &yaml).await;
    // The raw (JSON) response body, as upstream matches it: the quotes are escaped.
    assert!(
        resp.text()
            .contains(r#"line 9: key \"foo\" already set in map"#),
        "error missing duplicate field: {}",
        resp.describe()
    );
    delete_crd(&c, crd).await;
}
