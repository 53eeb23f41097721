//! CustomResourceDefinitions and custom resources through the real HTTP API (and kubectl where
//! upstream uses it), one file per upstream e2e file under `crd/`. Mirrors upstream
//! `test/e2e/apimachinery/{custom_resource_definition,crd_watch,crd_publish_openapi,
//! crd_validation_rules,field_validation,apply}.go` and the fixtures they use
//! (`apiextensions-apiserver/test/integration/fixtures/resources.go`, `test/utils/crd`).
//!
//! Every CRD gets a random name in a random `*.example.com` group (tests run in parallel against
//! one cluster) and is deleted at the end; a guard also deletes it when a test fails half-way.

#[path = "crd/apply.rs"]
mod crd_apply;
#[path = "crd/definition.rs"]
mod crd_definition;
#[path = "crd/field_validation.rs"]
mod crd_field_validation;
#[path = "crd/publish_openapi.rs"]
mod crd_publish_openapi;
#[path = "crd/validation_rules.rs"]
mod crd_validation_rules;

use std::time::Duration;

use conformance::{Cluster, Kubectl, RawResponse, poll_until};
use futures::{StreamExt, TryStreamExt};
use http::{Method, StatusCode};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, PostParams, WatchEvent, WatchParams,
};
use serde_json::{Value, json};

/// Collection path of CustomResourceDefinitions.
pub const CRDS: &str = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";
const JSON: &str = "application/json";

/// `n` random lowercase hex characters.
pub fn rand_suffix(n: usize) -> String {
    uuid::Uuid::new_v4().simple().to_string()[..n].to_string()
}

/// A group of its own for one test: `<base>-<random>.example.com`.
pub fn random_group(base: &str) -> String {
    format!("{base}-{}.example.com", rand_suffix(6))
}

/// fixtures.AllowAllSchema: an object keeping every field.
pub fn allow_all_schema() -> Value {
    json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true})
}

/// fixtures.NewRandomNameV1CustomResourceDefinition: kind/singular `foo<random>a`, one version
/// `v1beta1` (served, storage) with the allow-all schema. The group is random per call.
pub fn random_name_crd(scope: &str) -> Value {
    let name = format!("foo{}a", rand_suffix(5));
    let group = random_group("mygroup");
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{name}s.{group}")},
        "spec": {
            "group": group,
            "versions": [{"name": "v1beta1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": allow_all_schema()}}],
            "names": {"plural": format!("{name}s"), "singular": name, "kind": name,
                "listKind": format!("{name}List")},
            "scope": scope,
        }
    })
}

/// fixtures.NewRandomNameMultipleVersionCustomResourceDefinition: versions `v1beta1` (served)
/// and `v1` (served, storage), both with the status subresource and the allow-all schema.
pub fn random_name_multi_version_crd(scope: &str) -> Value {
    let mut crd = random_name_crd(scope);
    let version = |name: &str, storage: bool| {
        json!({"name": name, "served": true, "storage": storage,
            "subresources": {"status": {}},
            "schema": {"openAPIV3Schema": allow_all_schema()}})
    };
    crd["spec"]["versions"] = json!([version("v1beta1", false), version("v1", true)]);
    crd
}

/// Sets `openAPIV3Schema` of every version.
pub fn set_schema(crd: &mut Value, schema: &Value) {
    for v in crd["spec"]["versions"].as_array_mut().into_iter().flatten() {
        v["schema"] = json!({"openAPIV3Schema": schema});
    }
}

/// Sends `body` with the given Content-Type and `Accept: application/json`.
pub async fn send(
    c: &Cluster,
    method: Method,
    path: &str,
    content_type: &str,
    body: &[u8],
) -> RawResponse {
    c.raw(
        method,
        path,
        &[("Content-Type", content_type), ("Accept", JSON)],
        body.to_vec(),
    )
    .await
}

/// Sends a JSON body.
pub async fn send_json(c: &Cluster, method: Method, path: &str, body: &Value) -> RawResponse {
    send(c, method, path, JSON, body.to_string().as_bytes()).await
}

/// GET as JSON, whatever the status.
pub async fn get(c: &Cluster, path: &str) -> RawResponse {
    c.raw(Method::GET, path, &[("Accept", JSON)], Vec::new())
        .await
}

/// A CustomResourceDefinition created by a test. Dropping it without [`delete_crd`] deletes it
/// in the background (best effort), so a failing test does not leave it behind.
pub struct TestCrd {
    /// The CRD as returned by the create call.
    pub crd: Value,
    deleted: bool,
}

impl TestCrd {
    /// Takes charge of a CRD created some other way (deleted on drop).
    pub fn adopt(crd: Value) -> Self {
        TestCrd {
            crd,
            deleted: false,
        }
    }
    pub fn name(&self) -> String {
        self.crd["metadata"]["name"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }
    pub fn group(&self) -> String {
        self.crd["spec"]["group"].as_str().unwrap_or("").to_string()
    }
    pub fn plural(&self) -> String {
        self.crd["spec"]["names"]["plural"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }
    pub fn kind(&self) -> String {
        self.crd["spec"]["names"]["kind"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }
    /// Name of the `i`th version in the spec.
    pub fn version(&self, i: usize) -> String {
        self.crd["spec"]["versions"][i]["name"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }
    /// Records that the CRD is gone (deleted some other way), so dropping it does nothing.
    pub fn mark_deleted(&mut self) {
        self.deleted = true;
    }
    pub fn namespaced(&self) -> bool {
        self.crd["spec"]["scope"] == "Namespaced"
    }
    /// Collection path of the custom resources in `version` (in `ns` when namespaced).
    pub fn collection(&self, version: &str, ns: &str) -> String {
        let (group, plural) = (self.group(), self.plural());
        if self.namespaced() {
            format!("/apis/{group}/{version}/namespaces/{ns}/{plural}")
        } else {
            format!("/apis/{group}/{version}/{plural}")
        }
    }
    /// The kube API for the custom resources in `version` (namespace `ns` when namespaced).
    pub fn api(&self, c: &Cluster, version: &str, ns: &str) -> Api<DynamicObject> {
        let ar = ApiResource {
            group: self.group(),
            version: version.to_string(),
            api_version: format!("{}/{version}", self.group()),
            kind: self.kind(),
            plural: self.plural(),
        };
        if self.namespaced() {
            Api::namespaced_with(c.client.clone(), ns, &ar)
        } else {
            Api::all_with(c.client.clone(), &ar)
        }
    }
}

impl Drop for TestCrd {
    fn drop(&mut self) {
        if self.deleted || std::env::var_os(conformance::KUBECONFIG_ENV).is_none() {
            return;
        }
        let _ = Kubectl::from_env().run(
            &[
                "delete",
                "customresourcedefinition",
                &self.name(),
                "--wait=false",
                "--ignore-not-found",
            ],
            None,
        );
    }
}

/// Names of the served versions of `crd`.
pub fn served_versions(crd: &Value) -> Vec<String> {
    crd["spec"]["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["served"] == true)
        .filter_map(|v| v["name"].as_str().map(str::to_string))
        .collect()
}

/// existsInDiscoveryV1: whether `/apis/<group>/<version>` lists `plural`.
pub async fn exists_in_discovery(c: &Cluster, group: &str, version: &str, plural: &str) -> bool {
    let resp = get(c, &format!("/apis/{group}/{version}")).await;
    if resp.status == StatusCode::NOT_FOUND {
        return false;
    }
    assert!(
        resp.status.is_success(),
        "GET /apis/{group}/{version}: {}",
        resp.describe()
    );
    resp.json()["resources"]
        .as_array()
        .is_some_and(|rs| rs.iter().any(|r| r["name"] == plural))
}

/// Waits (500 ms polls, 30 s) until every served version of `crd` is (or is no longer) in
/// discovery.
async fn wait_discovery(c: &Cluster, crd: &Value, present: bool) {
    let group = crd["spec"]["group"].as_str().unwrap_or("").to_string();
    let plural = crd["spec"]["names"]["plural"]
        .as_str()
        .unwrap_or("")
        .to_string();
    for version in served_versions(crd) {
        let what = format!(
            "{plural}.{group}/{version} to {} discovery",
            if present {
                "appear in"
            } else {
                "disappear from"
            }
        );
        poll_until(
            &what,
            Duration::from_millis(500),
            Duration::from_secs(30),
            || async {
                (exists_in_discovery(c, &group, &version, &plural).await == present).then_some(())
            },
        )
        .await;
    }
}

/// POSTs a CRD and returns the response, whatever it is.
pub async fn try_create_crd(c: &Cluster, crd: &Value) -> RawResponse {
    send_json(c, Method::POST, CRDS, crd).await
}

/// fixtures.CreateNewV1CustomResourceDefinitionWatchUnsafe: creates the CRD (must succeed) and
/// waits until its served versions are in discovery.
pub async fn create_crd_watch_unsafe(c: &Cluster, crd: &Value) -> TestCrd {
    let resp = try_create_crd(c, crd).await;
    assert_eq!(
        resp.status,
        StatusCode::CREATED,
        "creating CustomResourceDefinition {}: {}",
        crd["metadata"]["name"],
        resp.describe()
    );
    let created = TestCrd::adopt(resp.json());
    wait_discovery(c, &created.crd, true).await;
    created
}

/// fixtures.CreateNewV1CustomResourceDefinition: like [`create_crd_watch_unsafe`], then waits
/// until a watch from the resource version of a just-created (and deleted) instance sees its
/// deletion in every served version (isWatchCachePrimed).
pub async fn create_crd(c: &Cluster, crd: &Value) -> TestCrd {
    let created = create_crd_watch_unsafe(c, crd).await;
    poll_until(
        "the custom resources' watch to be primed",
        Duration::from_millis(500),
        Duration::from_secs(30),
        || async { watch_cache_primed(c, &created).await.then_some(()) },
    )
    .await;
    created
}

async fn watch_cache_primed(c: &Cluster, crd: &TestCrd) -> bool {
    let versions = served_versions(&crd.crd);
    let Some(first) = versions.first() else {
        return true;
    };
    let ns = if crd.namespaced() { "default" } else { "" };
    let mut instance = json!({
        "apiVersion": format!("{}/{first}", crd.group()),
        "kind": crd.kind(),
        "metadata": {"name": "setup-instance"},
        "alpha": "foo_123", "beta": 10, "gamma": "bar", "delta": "hello", "epsilon": "foobar",
        "spec": {},
    });
    if !ns.is_empty() {
        instance["metadata"]["namespace"] = json!(ns);
    }
    let obj: DynamicObject = serde_json::from_value(instance).expect("setup instance");
    let api = crd.api(c, first, ns);
    let created = api
        .create(&PostParams::default(), &obj)
        .await
        .unwrap_or_else(|e| panic!("creating setup-instance of {}: {e}", crd.name()));
    api.delete("setup-instance", &DeleteParams::default())
        .await
        .unwrap_or_else(|e| panic!("deleting setup-instance of {}: {e}", crd.name()));
    let rv = created
        .metadata
        .resource_version
        .clone()
        .unwrap_or_default();
    for v in &versions {
        let api = crd.api(c, v, ns);
        let stream = match api.watch(&WatchParams::default(), &rv).await {
            Ok(s) => s,
            Err(_) => return false,
        };
        let mut stream = stream.boxed();
        match tokio::time::timeout(Duration::from_secs(5), stream.try_next()).await {
            Ok(Ok(Some(WatchEvent::Deleted(_)))) => {}
            Ok(Ok(Some(WatchEvent::Error(_)))) => return false,
            Ok(Ok(Some(other))) => panic!("{}/{v}: expected DELETE, but got {other:?}", crd.name()),
            Ok(Ok(None)) | Ok(Err(_)) => return false,
            Err(_) => panic!("{}/{v}: gave up waiting for watch event", crd.name()),
        }
    }
    true
}

/// fixtures.DeleteV1CustomResourceDefinition: deletes the CRD and waits until its served
/// versions are gone from discovery.
pub async fn delete_crd(c: &Cluster, mut crd: TestCrd) {
    let path = format!("{CRDS}/{}", crd.name());
    let resp = c
        .raw(Method::DELETE, &path, &[("Accept", JSON)], Vec::new())
        .await;
    assert!(
        resp.status.is_success(),
        "deleting CustomResourceDefinition {}: {}",
        crd.name(),
        resp.describe()
    );
    crd.deleted = true;
    wait_discovery(c, &crd.crd, false).await;
}
