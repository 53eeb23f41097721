//! Publishing CRD schemas in the OpenAPI documents: definitions appear in (and leave)
//! `/openapi/v2` with the CRD's schema, `kubectl create/apply` validate custom resources and
//! `kubectl explain` describes them. Mirrors upstream
//! `test/e2e/apimachinery/crd_publish_openapi.go` ("CustomResourcePublishOpenAPI
//! [Privileged:ClusterAdmin]").

use std::time::Duration;

use conformance::{Cluster, Kubectl, cluster};
use http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{CRDS, TestCrd, allow_all_schema, create_crd_watch_unsafe, delete_crd, rand_suffix};

/// schemaFoo.
fn schema_foo() -> Value {
    json!({
        "description": "Foo CRD for Testing",
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "description": "Specification of Foo",
                "properties": {
                    "bars": {
                        "description": "List of Bars and their specs.",
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["name"],
                            "properties": {
                                "name": {"description": "Name of Bar.", "type": "string"},
                                "age": {"description": "Age of Bar.", "type": "string"},
                                "feeling": {"description": "Whether Bar is feeling great.",
                                    "type": "string", "enum": ["Great", "Down"]},
                                "bazs": {"description": "List of Bazs.", "items": {"type": "string"},
                                    "type": "array"}
                            }
                        }
                    }
                }
            },
            "status": {
                "description": "Status of Foo",
                "type": "object",
                "properties": {
                    "bars": {
                        "description": "List of Bars and their statuses.",
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "name": {"description": "Name of Bar.", "type": "string"},
                                "available": {"description": "Whether the Bar is installed.",
                                    "type": "boolean"},
                                "quxType": {"description": "Indicates to external qux type.",
                                    "pattern": "in-tree|out-of-tree", "type": "string"}
                            }
                        }
                    }
                }
            }
        }
    })
}

/// The spec and status of schemaWaldo (also used by the preserve-unknown-fields schemas).
fn waldo_properties() -> Value {
    json!({
        "spec": {
            "description": "Specification of Waldo",
            "type": "object",
            "properties": {"dummy": {"description": "Dummy property.", "type": "object"}}
        },
        "status": {
            "description": "Status of Waldo",
            "type": "object",
            "properties": {
                "bars": {"description": "List of Bars and their statuses.", "type": "array",
                    "items": {"type": "object"}}
            }
        }
    })
}

/// schemaWaldo.
fn schema_waldo() -> Value {
    json!({"description": "Waldo CRD for Testing", "type": "object", "properties": waldo_properties()})
}

/// schemaPreserveRoot.
fn schema_preserve_root() -> Value {
    json!({"description": "preserve-unknown-properties at root for Testing",
        "x-kubernetes-preserve-unknown-fields": true, "type": "object",
        "properties": waldo_properties()})
}

/// schemaPreserveNested.
fn schema_preserve_nested() -> Value {
    let mut props = waldo_properties();
    props["spec"]["x-kubernetes-preserve-unknown-fields"] = json!(true);
    json!({"description": "preserve-unknown-properties in nested field for Testing",
        "type": "object", "properties": props})
}

/// One test's context: its namespace, kubectl, and the random token of its groups.
struct Fixture {
    c: Cluster,
    kubectl: Kubectl,
    ns: conformance::TestNamespace,
    token: String,
}

impl Fixture {
    async fn new() -> Self {
        let c = cluster().await;
        let ns = c.create_namespace("crd-publish-openapi").await;
        Fixture {
            c,
            kubectl: Kubectl::from_env(),
            ns,
            token: rand_suffix(5),
        }
    }

    /// setupCRD: `schema` `None` means no validation schema (allow-all), for which the published
    /// definition is expected to be just `type: object`.
    async fn setup_crd(
        &self,
        schema: Option<Value>,
        group_suffix: &str,
        versions: &[&str],
    ) -> TestCrd {
        let expect = schema.clone().unwrap_or_else(|| json!({"type": "object"}));
        self.setup_crd_and_verify_schema(schema, Some(expect), group_suffix, versions)
            .await
    }

    /// setupCRDAndVerifySchema: creates a namespaced CRD named like upstream's genRandomCRD in
    /// group `crd-publish-openapi-test-<suffix>-<token>.example.com`, one version per entry
    /// (the first is the storage version), and waits for each version's definition.
    async fn setup_crd_and_verify_schema(
        &self,
        schema: Option<Value>,
        expect: Option<Value>,
        group_suffix: &str,
        versions: &[&str],
    ) -> TestCrd {
        let group = format!(
            "crd-publish-openapi-test-{group_suffix}-{}.example.com",
            self.token
        );
        let name = format!("e2e-test-{}-{}-crd", self.ns.name, rand_suffix(4));
        let versions: Vec<Value> = versions
            .iter()
            .enumerate()
            .map(|(i, v)| {
                json!({"name": v, "served": true, "storage": i == 0,
                    "schema": {"openAPIV3Schema": schema.clone().unwrap_or_else(allow_all_schema)}})
            })
            .collect();
        let crd = json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": format!("{name}s.{group}")},
            "spec": {
                "group": group,
                "names": {"plural": format!("{name}s"), "singular": name, "kind": name,
                    "listKind": format!("{name}List")},
                "scope": "Namespaced",
                "versions": versions,
            }
        });
        let crd = create_crd_watch_unsafe(&self.c, &crd).await;
        for i in 0..crd.crd["spec"]["versions"].as_array().map_or(0, Vec::len) {
            wait_for_definition(
                &self.c,
                &definition_name(&crd, &crd.version(i)),
                expect.as_ref(),
            )
            .await;
        }
        crd
    }

    /// cleanupCRD: deletes the CRD and waits for all its versions' definitions to go.
    async fn cleanup_crd(&self, crd: TestCrd) {
        let names: Vec<String> = (0..crd.crd["spec"]["versions"].as_array().map_or(0, Vec::len))
            .map(|i| definition_name(&crd, &crd.version(i)))
            .collect();
        delete_crd(&self.c, crd).await;
        for name in names {
            wait_for_definition_cleanup(&self.c, &name).await;
        }
    }

    /// `"kind":..,"apiVersion":..,"metadata":{"name":..}` of a custom resource (metaPattern).
    fn meta(&self, crd: &TestCrd, name: &str) -> String {
        format!(
            r#""kind":"{}","apiVersion":"{}/{}","metadata":{{"name":"{name}"}}"#,
            crd.kind(),
            crd.group(),
            crd.version(0)
        )
    }

    fn ns_flag(&self) -> String {
        format!("--namespace={}", self.ns.name)
    }

    /// kubectl create and kubectl apply both accept `cr` (deleting it after each).
    fn create_and_apply_succeed(&self, crd: &TestCrd, cr: &str, name: &str) {
        let ns = self.ns_flag();
        for verb in ["create", "apply"] {
            let out = self.kubectl.run(&[&ns, verb, "-f", "-"], Some(cr));
            assert!(
                out.success(),
                "failed to {verb} CR {cr}: {}",
                out.describe()
            );
            let out = self
                .kubectl
                .run(&[&ns, "delete", &crd.plural(), name], None);
            assert!(out.success(), "failed to delete CR: {}", out.describe());
        }
    }

    /// kubectl `verb` rejects `cr` with an error containing one of `wants`.
    fn rejected(&self, verb: &str, cr: &str, wants: &[&str]) {
        let out = self
            .kubectl
            .run(&[&self.ns_flag(), verb, "-f", "-"], Some(cr));
        let text = format!("{}\n{}", out.stdout, out.stderr);
        assert!(
            !out.success() && wants.iter().any(|w| text.contains(w)),
            "kubectl {verb} must fail with one of {wants:?}: {}",
            out.describe()
        );
    }

    /// verifyKubectlExplain.
    fn explain_matches(&self, name: &str, pattern: &str) {
        let out = self.kubectl.run(&[&self.ns_flag(), "explain", name], None);
        assert!(
            out.success(),
            "failed to explain {name}: {}",
            out.describe()
        );
        let re = regex::Regex::new(pattern).expect("pattern");
        assert!(
            re.is_match(&out.stdout),
            "kubectl explain {name} result {{{}}} doesn't match pattern {{{pattern}}}",
            out.stdout
        );
    }
}

/// definitionName: the REST-friendly name of `<group>/<version>/<kind>` (group reversed).
fn definition_name(crd: &TestCrd, version: &str) -> String {
    let mut parts: Vec<String> = crd.group().split('.').map(str::to_string).collect();
    parts.reverse();
    format!("{}.{version}.{}", parts.join("."), crd.kind())
}

/// dropDefaults: removes what the server adds to a CRD's schema (metadata, apiVersion, kind,
/// the group-version-kind and selectable-fields extensions). Empty maps are dropped too, as
/// upstream's semantic equality treats them like absent ones.
fn drop_defaults(def: &mut Value) {
    if let Some(props) = def.get_mut("properties").and_then(Value::as_object_mut) {
        for k in ["metadata", "apiVersion", "kind"] {
            props.remove(k);
        }
        if props.is_empty() {
            def.as_object_mut().map(|m| m.remove("properties"));
        }
    }
    if let Some(m) = def.as_object_mut() {
        m.remove("x-kubernetes-group-version-kind");
        m.remove("x-kubernetes-selectable-fields");
    }
}

/// waitForOpenAPISchema: polls `/openapi/v2` (500 ms, 60 s; with ETag support) until `pred`
/// holds 10 times in a row; panics with the last message otherwise.
async fn wait_for_openapi_schema(
    c: &Cluster,
    what: &str,
    pred: impl Fn(&Value) -> Result<(), String>,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut etag = String::new();
    let mut cached = Value::Null;
    'poll: loop {
        for _ in 0..10 {
            let mut headers = vec![("Accept", "application/json")];
            let if_none_match = format!("\"{etag}\"");
            if !etag.is_empty() {
                headers.push(("If-None-Match", if_none_match.as_str()));
            }
            let resp = c
                .raw(Method::GET, "/openapi/v2", &headers, Vec::new())
                .await;
            if resp.status == StatusCode::OK {
                cached = resp.json();
                etag = resp
                    .headers
                    .get("ETag")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .trim_matches('"')
                    .to_string();
            } else if resp.status != StatusCode::NOT_MODIFIED {
                panic!("GET /openapi/v2: unexpected response: {}", resp.describe());
            }
            if let Err(last) = pred(&cached) {
                if tokio::time::Instant::now() >= deadline {
                    panic!("timed out waiting for {what}; last: {last}");
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue 'poll;
            }
        }
        return;
    }
}

/// waitForDefinition: `name` is in `/openapi/v2` with schema `expect` (existence only when
/// `None`).
async fn wait_for_definition(c: &Cluster, name: &str, expect: Option<&Value>) {
    let what = format!("definition {name:?} to be served with the right OpenAPI schema");
    wait_for_openapi_schema(c, &what, |spec| {
        let Some(def) = spec["definitions"].get(name) else {
            return Err(format!("definitions[{name:?}] not found"));
        };
        let Some(expect) = expect else {
            return Ok(());
        };
        let mut def = def.clone();
        drop_defaults(&mut def);
        if def != *expect {
            return Err(format!(
                "definitions[{name:?}] not match; expect: {expect}, actual: {def}"
            ));
        }
        Ok(())
    })
    .await;
}

/// waitForDefinitionCleanup: `name` is no longer in `/openapi/v2`.
async fn wait_for_definition_cleanup(c: &Cluster, name: &str) {
    let what = format!("definition {name:?} not to be served anymore");
    wait_for_openapi_schema(c, &what, |spec| match spec["definitions"].get(name) {
        Some(_) => Err(format!("definitions[{name:?}] still exists")),
        None => Ok(()),
    })
    .await;
}

/// [sig-api-machinery] CustomResourcePublishOpenAPI [Privileged:ClusterAdmin] works for CRD with
/// validation schema [Conformance]
#[tokio::test]
async fn conformance_crd_publish_openapi_works_for_crd_with_validation_schema() {
    let f = Fixture::new().await;
    let crd = f.setup_crd(Some(schema_foo()), "foo", &["v1"]).await;
    let meta = f.meta(&crd, "test-foo");

    // kubectl create and apply allow a request with known and required properties.
    let valid = format!(r#"{{{meta},"spec":{{"bars":[{{"name":"test-bar"}}]}}}}"#);
    f.create_and_apply_succeed(&crd, &valid, "test-foo");

    // ... reject a value outside the enum.
    let bad_enum = format!(
        r#"{{{meta},"spec":{{"bars":[{{"name":"test-bar", "feeling":"NonExistentValue"}}]}}}}"#
    );
    f.rejected(
        "create",
        &bad_enum,
        &[r#"Unsupported value: "NonExistentValue""#],
    );

    // ... reject unknown properties the schema does not allow.
    let unknown = format!(r#"{{{meta},"spec":{{"foo":true}}}}"#);
    for verb in ["create", "apply"] {
        f.rejected(
            verb,
            &unknown,
            &[r#"unknown field "foo""#, r#"unknown field "spec.foo""#],
        );
    }

    // ... reject a request without required properties.
    let no_required = format!(r#"{{{meta},"spec":{{"bars":[{{"age":"10"}}]}}}}"#);
    for verb in ["create", "apply"] {
        f.rejected(
            verb,
            &no_required,
            &[
                r#"missing required field "name""#,
                "spec.bars[0].name: Required value",
            ],
        );
    }

    // kubectl explain describes the custom resource and its properties, recursively.
    let plural = crd.plural();
    f.explain_matches(
        &plural,
        r"(?s)DESCRIPTION:.*Foo CRD for Testing.*FIELDS:.*apiVersion.*<string>.*APIVersion defines.*spec.*<Object>.*Specification of Foo",
    );
    f.explain_matches(
        &format!("{plural}.metadata"),
        r"(?s)DESCRIPTION:.*Standard object's metadata.*FIELDS:.*creationTimestamp.*<string>.*CreationTimestamp is a timestamp",
    );
    f.explain_matches(
        &format!("{plural}.spec"),
        r"(?s)DESCRIPTION:.*Specification of Foo.*FIELDS:.*bars.*<\[\]Object>.*List of Bars and their specs",
    );
    f.explain_matches(
        &format!("{plural}.spec.bars"),
        r"(?s)(FIELD|RESOURCE):.*bars.*<\[\]Object>.*DESCRIPTION:.*List of Bars and their specs.*FIELDS:.*bazs.*<\[\]string>.*List of Bazs.*name.*<string>.*Name of Bar",
    );

    // ... and fails for a property that does not exist.
    let out = f.kubectl.run(
        &[&f.ns_flag(), "explain", &format!("{plural}.spec.bars2")],
        None,
    );
    assert!(
        !out.success()
            && format!("{}{}", out.stdout, out.stderr).contains(r#"field "bars2" does not exist"#),
        "explaining a property that doesn't exist must fail: {}",
        out.describe()
    );

    f.cleanup_crd(crd).await;
}

/// [sig-api-machinery] CustomResourcePublishOpenAPI [Privileged:ClusterAdmin] works for CRD
/// without validation schema [Conformance]
#[tokio::test]
async fn conformance_crd_publish_openapi_works_for_crd_without_validation_schema() {
    let f = Fixture::new().await;
    let crd = f.setup_crd(None, "empty", &["v1"]).await;
    let meta = f.meta(&crd, "test-cr");
    let random = format!(r#"{{{meta},"a":{{"b":[{{"c":"d"}}]}}}}"#);
    f.create_and_apply_succeed(&crd, &random, "test-cr");
    f.explain_matches(&crd.plural(), r"(?s)DESCRIPTION:.*<empty>");
    f.cleanup_crd(crd).await;
}

/// [sig-api-machinery] CustomResourcePublishOpenAPI [Privileged:ClusterAdmin] works for CRD
/// preserving unknown fields at the schema root [Conformance]
#[tokio::test]
async fn conformance_crd_publish_openapi_works_for_crd_preserving_unknown_fields_at_the_schema_root()
 {
    let f = Fixture::new().await;
    let crd = f
        .setup_crd_and_verify_schema(
            Some(schema_preserve_root()),
            None,
            "unknown-at-root",
            &["v1"],
        )
        .await;
    let meta = f.meta(&crd, "test-cr");
    let random = format!(r#"{{{meta},"a":{{"b":[{{"c":"d"}}]}}}}"#);
    f.create_and_apply_succeed(&crd, &random, "test-cr");
    f.explain_matches(
        &crd.plural(),
        &format!("(?s)KIND:.*{}", regex::escape(&crd.kind())),
    );
    f.cleanup_crd(crd).await;
}

/// [sig-api-machinery] CustomResourcePublishOpenAPI [Privileged:ClusterAdmin] works for CRD
/// preserving unknown fields in an embedded object [Conformance]
#[tokio::test]
async fn conformance_crd_publish_openapi_works_for_crd_preserving_unknown_fields_in_an_embedded_object()
 {
    let f = Fixture::new().await;
    let crd = f
        .setup_crd_and_verify_schema(
            Some(schema_preserve_nested()),
            None,
            "unknown-in-nested",
            &["v1"],
        )
        .await;
    let meta = f.meta(&crd, "test-cr");
    let random = format!(r#"{{{meta},"spec":{{"a":null,"b":[{{"c":"d"}}]}}}}"#);
    f.create_and_apply_succeed(&crd, &random, "test-cr");
    f.explain_matches(
        &crd.plural(),
        r"(?s)DESCRIPTION:.*preserve-unknown-properties in nested field for Testing",
    );
    f.cleanup_crd(crd).await;
}

/// [sig-api-machinery] CustomResourcePublishOpenAPI [Privileged:ClusterAdmin] works for multiple
/// CRDs of different groups [Conformance]
#[tokio::test]
async fn conformance_crd_publish_openapi_works_for_multiple_crds_of_different_groups() {
    let f = Fixture::new().await;
    let foo = f.setup_crd(Some(schema_foo()), "foo", &["v1"]).await;
    let waldo = f
        .setup_crd(Some(schema_waldo()), "waldo", &["v1beta1"])
        .await;
    assert_ne!(
        foo.group(),
        waldo.group(),
        "CRDs should be of different groups"
    );
    wait_for_definition(
        &f.c,
        &definition_name(&waldo, "v1beta1"),
        Some(&schema_waldo()),
    )
    .await;
    wait_for_definition(&f.c, &definition_name(&foo, "v1"), Some(&schema_foo())).await;
    f.cleanup_crd(foo).await;
    f.cleanup_crd(waldo).await;
}

/// [sig-api-machinery] CustomResourcePublishOpenAPI [Privileged:ClusterAdmin] works for multiple
/// CRDs of same group but different versions [Conformance]
#[tokio::test]
async fn conformance_crd_publish_openapi_works_for_multiple_crds_of_same_group_but_different_versions()
 {
    let f = Fixture::new().await;
    // One multi-version CRD.
    let multi = f
        .setup_crd(Some(schema_foo()), "multi-ver", &["v2", "v3"])
        .await;
    wait_for_definition(&f.c, &definition_name(&multi, "v3"), Some(&schema_foo())).await;
    wait_for_definition(&f.c, &definition_name(&multi, "v2"), Some(&schema_foo())).await;
    f.cleanup_crd(multi).await;

    // Two CRDs in the same group.
    let foo = f
        .setup_crd(Some(schema_foo()), "common-group", &["v4"])
        .await;
    let waldo = f
        .setup_crd(Some(schema_waldo()), "common-group", &["v5"])
        .await;
    assert_eq!(
        foo.group(),
        waldo.group(),
        "CRDs should be of the same group"
    );
    wait_for_definition(&f.c, &definition_name(&waldo, "v5"), Some(&schema_waldo())).await;
    wait_for_definition(&f.c, &definition_name(&foo, "v4"), Some(&schema_foo())).await;
    f.cleanup_crd(foo).await;
    f.cleanup_crd(waldo).await;
}

/// [sig-api-machinery] CustomResourcePublishOpenAPI [Privileged:ClusterAdmin] works for multiple
/// CRDs of same group and version but different kinds [Conformance]
#[tokio::test]
async fn conformance_crd_publish_openapi_works_for_multiple_crds_of_same_group_and_version_but_different_kinds()
 {
    let f = Fixture::new().await;
    let foo = f
        .setup_crd(Some(schema_foo()), "common-group", &["v6"])
        .await;
    let waldo = f
        .setup_crd(Some(schema_waldo()), "common-group", &["v6"])
        .await;
    assert_eq!(
        foo.group(),
        waldo.group(),
        "CRDs should be of the same group"
    );
    wait_for_definition(&f.c, &definition_name(&waldo, "v6"), Some(&schema_waldo())).await;
    wait_for_definition(&f.c, &definition_name(&foo, "v6"), Some(&schema_foo())).await;
    f.cleanup_crd(foo).await;
    f.cleanup_crd(waldo).await;
}

/// [sig-api-machinery] CustomResourcePublishOpenAPI [Privileged:ClusterAdmin] updates the
/// published spec when one version gets renamed [Conformance]
#[tokio::test]
async fn conformance_crd_publish_openapi_updates_the_published_spec_when_one_version_gets_renamed()
{
    let f = Fixture::new().await;
    let mut crd = f
        .setup_crd(Some(schema_foo()), "multi-ver", &["v2", "v3"])
        .await;
    wait_for_definition(&f.c, &definition_name(&crd, "v3"), Some(&schema_foo())).await;
    wait_for_definition(&f.c, &definition_name(&crd, "v2"), Some(&schema_foo())).await;

    // Rename v3 to v4.
    let resp = crate::send(
        &f.c,
        Method::PATCH,
        &format!("{CRDS}/{}", crd.name()),
        "application/json-patch+json",
        br#"[{"op":"test","path":"/spec/versions/1/name","value":"v3"},
            {"op": "replace", "path": "/spec/versions/1/name", "value": "v4"}]"#,
    )
    .await;
    assert!(
        resp.status.is_success(),
        "renaming a version: {}",
        resp.describe()
    );
    crd.crd = resp.json();

    // The new name is served, the old one is removed, the other version is unchanged.
    wait_for_definition(&f.c, &definition_name(&crd, "v4"), Some(&schema_foo())).await;
    wait_for_definition_cleanup(&f.c, &definition_name(&crd, "v3")).await;
    wait_for_definition(&f.c, &definition_name(&crd, "v2"), Some(&schema_foo())).await;
    f.cleanup_crd(crd).await;
}

/// [sig-api-machinery] CustomResourcePublishOpenAPI [Privileged:ClusterAdmin] removes definition
/// from spec when one version gets changed to not be served [Conformance]
#[tokio::test]
async fn conformance_crd_publish_openapi_removes_definition_from_spec_when_one_version_gets_changed_to_not_be_served()
 {
    let f = Fixture::new().await;
    let mut crd = f
        .setup_crd(
            Some(schema_foo()),
            "multi-to-single-ver",
            &["v5", "v6alpha1"],
        )
        .await;
    wait_for_definition(
        &f.c,
        &definition_name(&crd, "v6alpha1"),
        Some(&schema_foo()),
    )
    .await;
    wait_for_definition(&f.c, &definition_name(&crd, "v5"), Some(&schema_foo())).await;

    // Mark v6alpha1 not served (get, then update).
    let path = format!("{CRDS}/{}", crd.name());
    let resp = crate::get(&f.c, &path).await;
    assert!(
        resp.status.is_success(),
        "getting the CRD: {}",
        resp.describe()
    );
    let mut current = resp.json();
    current["spec"]["versions"][1]["served"] = json!(false);
    let resp = crate::send_json(&f.c, Method::PUT, &path, &current).await;
    assert!(
        resp.status.is_success(),
        "updating the CRD: {}",
        resp.describe()
    );
    crd.crd = resp.json();

    wait_for_definition_cleanup(&f.c, &definition_name(&crd, "v6alpha1")).await;
    wait_for_definition(&f.c, &definition_name(&crd, "v5"), Some(&schema_foo())).await;
    f.cleanup_crd(crd).await;
}
