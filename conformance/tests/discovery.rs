//! Discovery and version tests. Mirrors upstream `test/e2e/apimachinery/discovery.go`
//! ("Discovery"), `aggregated_discovery.go` ("AggregatedDiscovery") and `server_version.go`
//! ("server version").

use conformance::{Cluster, cluster};
use http::{Method, StatusCode};
use serde_json::Value;

const JSON: &str = "application/json";
const AGGREGATED_V2: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// (group, version, resource) every conformant server must serve (upstream's expectedGVR list
/// in aggregated_discovery.go, the same as the table in discovery.go).
const EXPECTED_GVR: &[(&str, &str, &str)] = &[
    (
        "admissionregistration.k8s.io",
        "v1",
        "validatingwebhookconfigurations",
    ),
    ("apiextensions.k8s.io", "v1", "customresourcedefinitions"),
    ("apiregistration.k8s.io", "v1", "apiservices"),
    ("apps", "v1", "deployments"),
    ("authentication.k8s.io", "v1", "tokenreviews"),
    ("authorization.k8s.io", "v1", "selfsubjectaccessreviews"),
    ("autoscaling", "v1", "horizontalpodautoscalers"),
    ("autoscaling", "v2", "horizontalpodautoscalers"),
    ("batch", "v1", "jobs"),
    ("certificates.k8s.io", "v1", "certificatesigningrequests"),
    ("coordination.k8s.io", "v1", "leases"),
    ("discovery.k8s.io", "v1", "endpointslices"),
    ("events.k8s.io", "v1", "events"),
    ("networking.k8s.io", "v1", "ingresses"),
    ("node.k8s.io", "v1", "runtimeclasses"),
    ("policy", "v1", "poddisruptionbudgets"),
    ("scheduling.k8s.io", "v1", "priorityclasses"),
    ("storage.k8s.io", "v1", "csinodes"),
];
const EXPECTED_LEGACY_GVR: (&str, &str, &str) = ("", "v1", "namespaces");

/// [sig-api-machinery] Discovery should validate PreferredVersion for each APIGroup [Conformance]
#[tokio::test]
async fn conformance_discovery_validate_preferred_version() {
    let c = cluster().await;
    let list = c.get_json("/apis/", JSON).await;
    assert_eq!(list["kind"], "APIGroupList", "{list}");
    let groups = list["groups"].as_array().expect("groups");
    assert!(!groups.is_empty(), "missing APIGroups");
    for group in groups {
        let name = group["name"].as_str().expect("group name");
        if name.ends_with(".example.com") {
            continue;
        }
        let checked = c.get_json(&format!("/apis/{name}/"), JSON).await;
        assert_eq!(checked["kind"], "APIGroup", "/apis/{name}/: {checked}");
        let versions = checked["versions"].as_array().expect("versions");
        assert!(!versions.is_empty(), "no version found for {name}");
        let preferred = &checked["preferredVersion"]["groupVersion"];
        assert!(
            versions.iter().any(|v| v["groupVersion"] == *preferred),
            "preferredVersion {preferred} of {name} is not among its versions {versions:?}"
        );
    }
}

/// [sig-api-machinery] Discovery should locate the groupVersion and a resource within each
/// APIGroup [Conformance]
#[tokio::test]
async fn conformance_discovery_locate_group_version_and_resource() {
    let c = cluster().await;
    let mut problems = Vec::new();
    for (group, version, resource) in std::iter::once(&EXPECTED_LEGACY_GVR).chain(EXPECTED_GVR) {
        let (path, gv) = if group.is_empty() {
            (format!("/api/{version}"), version.to_string())
        } else {
            (
                format!("/apis/{group}/{version}"),
                format!("{group}/{version}"),
            )
        };
        let resp = c
            .raw(Method::GET, &path, &[("Accept", JSON)], Vec::new())
            .await;
        if !resp.status.is_success() {
            problems.push(format!("GET {path}: HTTP {}", resp.status));
            continue;
        }
        let list = resp.json();
        if list["groupVersion"] != gv.as_str() {
            problems.push(format!(
                "{path}: groupVersion {} != {gv}",
                list["groupVersion"]
            ));
        }
        let found = list["resources"]
            .as_array()
            .is_some_and(|rs| rs.iter().any(|r| r["name"] == *resource));
        if !found {
            problems.push(format!("{path}: resource {resource} not found"));
        }
    }
    assert!(
        problems.is_empty(),
        "discovery problems:\n{}",
        problems.join("\n")
    );
}

/// [sig-api-machinery] Discovery should accurately determine present and missing resources
#[tokio::test]
async fn discovery_present_and_missing_resources() {
    let c = cluster().await;
    async fn enabled(c: &Cluster, path: &str, resource: &str) -> bool {
        let resp = c
            .raw(Method::GET, path, &[("Accept", JSON)], Vec::new())
            .await;
        if resp.status == StatusCode::NOT_FOUND {
            return false;
        }
        assert!(resp.status.is_success(), "GET {path}: {}", resp.describe());
        resp.json()["resources"]
            .as_array()
            .is_some_and(|rs| rs.iter().any(|r| r["name"] == resource))
    }
    assert!(
        enabled(&c, "/api/v1", "namespaces").await,
        "namespaces.v1 must be present"
    );
    assert!(
        enabled(&c, "/apis/apps/v1", "deployments").await,
        "deployments.v1.apps must be present"
    );
    assert!(!enabled(&c, "/apis/apps/v1", "please-dont-ever-create-this").await);
    assert!(!enabled(&c, "/apis/not-these-apps/v1", "deployments").await);
}

/// Whether an APIGroupDiscoveryList has group/version/resource.
fn aggregated_has(list: &Value, group: &str, version: &str, resource: &str) -> bool {
    list["items"].as_array().into_iter().flatten().any(|g| {
        g["metadata"]["name"].as_str().unwrap_or("") == group
            && g["versions"].as_array().into_iter().flatten().any(|v| {
                v["version"] == version
                    && v["resources"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|r| r["resource"] == resource)
            })
    })
}

/// [sig-api-machinery] AggregatedDiscovery should support raw aggregated discovery endpoint
/// Accept headers [Conformance]
#[tokio::test]
async fn conformance_aggregated_discovery_raw_accept_headers() {
    let c = cluster().await;
    let apis = c.get_json("/apis", AGGREGATED_V2).await;
    let missing: Vec<String> = EXPECTED_GVR
        .iter()
        .filter(|(g, v, r)| !aggregated_has(&apis, g, v, r))
        .map(|(g, v, r)| format!("{g}/{v} {r}"))
        .collect();
    assert!(
        missing.is_empty(),
        "missing from aggregated /apis: {missing:?}"
    );

    let api = c.get_json("/api", AGGREGATED_V2).await;
    let (g, v, r) = EXPECTED_LEGACY_GVR;
    assert!(
        aggregated_has(&api, g, v, r),
        "legacy {v} {r} missing from aggregated /api: {api}"
    );
}

/// [sig-api-machinery] AggregatedDiscovery should support aggregated discovery interface
/// [Conformance]
///
/// client-go's aggregated discovery client asks with Accept "<v2 aggregated>,application/json",
/// uses the aggregated document only when the response's Content-Type says it is one, and then
/// builds the group list and per-version resource lists from /api and /apis.
#[tokio::test]
async fn conformance_aggregated_discovery_interface() {
    let c = cluster().await;
    let accept = format!("{AGGREGATED_V2},{JSON}");
    let mut docs = Vec::new();
    for path in ["/api", "/apis"] {
        let resp = c
            .raw(Method::GET, path, &[("Accept", &accept)], Vec::new())
            .await;
        assert!(resp.status.is_success(), "GET {path}: {}", resp.describe());
        let ct = resp.content_type();
        assert!(
            ct.starts_with(JSON)
                && ct.contains("g=apidiscovery.k8s.io")
                && ct.contains("v=v2")
                && ct.contains("as=APIGroupDiscoveryList"),
            "GET {path}: Content-Type {ct:?} is not the aggregated discovery type"
        );
        let doc = resp.json();
        assert_eq!(doc["kind"], "APIGroupDiscoveryList", "{path}: {doc}");
        docs.push(doc);
    }
    let mut problems = Vec::new();
    for (g, v, r) in std::iter::once(&EXPECTED_LEGACY_GVR).chain(EXPECTED_GVR) {
        if !docs.iter().any(|d| aggregated_has(d, g, v, r)) {
            problems.push(format!("{g}/{v} {r}"));
        }
    }
    assert!(
        problems.is_empty(),
        "GVRs missing from aggregated discovery: {problems:?}"
    );
}

/// [sig-api-machinery] server version should find the server version [Conformance]
#[tokio::test]
async fn conformance_server_version() {
    let c = cluster().await;
    let v = c.get_json("/version", JSON).await;
    let major = v["major"].as_str().expect("major is a string");
    let minor = v["minor"].as_str().expect("minor is a string");
    // Major: a single digit 1-9; minor: its digits, with at most non-digits around them.
    assert!(
        major.len() == 1 && matches!(major.as_bytes()[0], b'1'..=b'9'),
        "major {major:?}"
    );
    let digits: String = minor.chars().filter(char::is_ascii_digit).collect();
    let first_run: String = minor
        .chars()
        .skip_while(|c| !c.is_ascii_digit())
        .take_while(char::is_ascii_digit)
        .collect();
    assert!(!digits.is_empty() && digits == first_run, "minor {minor:?}");
    let git_version = v["gitVersion"].as_str().expect("gitVersion");
    assert!(
        git_version.starts_with(&format!("v{major}.{digits}.")),
        "gitVersion {git_version:?}"
    );
}
