//! List chunking and Table transformation tests. Mirrors upstream
//! `test/e2e/apimachinery/chunking.go` ("Servers with support for API chunking") and
//! `test/e2e/apimachinery/table_conversion.go` ("Servers with support for Table transformation").

use conformance::{Cluster, cluster, query_escape};
use futures::StreamExt;
use http::{Method, StatusCode};
use k8s_openapi::api::core::v1::{Container, Pod, PodSpec, PodTemplate, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, ListParams, PostParams};

const TABLE_V1BETA1: &str = "application/json;as=Table;v=v1beta1;g=meta.k8s.io";
const TABLE_V1: &str = "application/json;as=Table;v=v1;g=meta.k8s.io";

fn template(i: usize) -> PodTemplate {
    PodTemplate {
        metadata: ObjectMeta {
            name: Some(format!("template-{i:04}")),
            ..Default::default()
        },
        template: Some(PodTemplateSpec {
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "test".into(),
                    image: Some("test2".into()),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        }),
    }
}

/// Creates template-0000 .. template-(n-1) with `parallel` requests in flight (upstream:
/// workqueue.ParallelizeUntil, each create tried up to 4 times).
async fn create_templates(api: &Api<PodTemplate>, n: usize, parallel: usize) {
    let results: Vec<Result<(), String>> = futures::stream::iter(0..n)
        .map(|i| async move {
            let mut last = String::new();
            for _ in 0..4 {
                match api.create(&PostParams::default(), &template(i)).await {
                    Ok(_) => return Ok(()),
                    Err(e) => last = e.to_string(),
                }
            }
            Err(format!("template {i}: {last}"))
        })
        .buffer_unordered(parallel)
        .collect()
        .await;
    let errors: Vec<String> = results.into_iter().filter_map(Result::err).collect();
    assert!(
        errors.is_empty(),
        "creating pod templates failed: {errors:?}"
    );
}

/// [sig-api-machinery] Servers with support for API chunking should return chunks of results
/// for list calls [Conformance]
#[tokio::test]
async fn conformance_chunking_return_chunks_for_list_calls() {
    const TOTAL: usize = 400;
    let c = cluster().await;
    let ns = c.create_namespace("chunking").await;
    let api: Api<PodTemplate> = c.ns_api(&ns.name);
    create_templates(&api, TOTAL, 20).await;

    // Page sizes vary like upstream's rand.Int31n(total/10)+1, but deterministically.
    let mut seed = 7u32;
    for round in 0..3 {
        let mut found = 0usize;
        let mut last_rv: Option<String> = None;
        let mut token: Option<String> = None;
        loop {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let limit = (seed >> 16) % (TOTAL as u32 / 10) + 1;
            let mut lp = ListParams::default().limit(limit);
            if let Some(t) = &token {
                lp = lp.continue_token(t);
            }
            let list = api
                .list(&lp)
                .await
                .unwrap_or_else(|e| panic!("round {round}: list limit={limit}: {e}"));
            assert!(
                list.items.len() <= limit as usize,
                "round {round}: {} items > limit {limit}",
                list.items.len()
            );
            let rv = list.metadata.resource_version.clone().unwrap_or_default();
            let first_rv = last_rv.get_or_insert_with(|| rv.clone());
            assert_eq!(
                &rv, first_rv,
                "round {round}: every page must carry the first page's resourceVersion"
            );
            let cont = list.metadata.continue_.clone().unwrap_or_default();
            if cont.is_empty() {
                assert_eq!(
                    list.metadata.remaining_item_count, None,
                    "round {round}: last page must not have remainingItemCount"
                );
            } else {
                let remaining = list.metadata.remaining_item_count.unwrap_or_else(|| {
                    panic!("round {round}: page with continue lacks remainingItemCount")
                });
                assert_eq!(
                    remaining as usize + list.items.len() + found,
                    TOTAL,
                    "round {round}: remainingItemCount {remaining} + page {} + found {found}",
                    list.items.len()
                );
            }
            for item in &list.items {
                assert_eq!(
                    item.metadata.name.as_deref(),
                    Some(format!("template-{found:04}").as_str())
                );
                found += 1;
            }
            if cont.is_empty() {
                break;
            }
            token = Some(cont);
        }
        assert_eq!(found, TOTAL, "round {round}: items found across pages");
    }

    let all = api
        .list(&ListParams::default().limit(TOTAL as u32 + 1))
        .await
        .expect("list all at once");
    assert_eq!(all.items.len(), TOTAL);
}

/// [sig-api-machinery] Servers with support for Table transformation should return chunks of
/// table results for list calls
#[tokio::test]
async fn table_return_chunks_of_table_results() {
    let c = cluster().await;
    let ns = c.create_namespace("tables").await;
    let api: Api<PodTemplate> = c.ns_api(&ns.name);
    create_templates(&api, 20, 5).await;

    let base = format!("/api/v1/namespaces/{}/podtemplates", ns.name);
    let page = c.get_json(&format!("{base}?limit=2"), TABLE_V1BETA1).await;
    let rows = page["rows"].as_array().expect("table has rows");
    assert_eq!(rows.len(), 2, "first page: {page}");
    assert_ne!(
        page["metadata"]["resourceVersion"].as_str().unwrap_or(""),
        "",
        "{page}"
    );
    let cont = page["metadata"]["continue"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert_ne!(cont, "", "first page must have a continue token: {page}");
    assert_eq!(rows[0]["cells"][0], "template-0000");
    assert_eq!(rows[1]["cells"][0], "template-0001");

    let next = c
        .get_json(
            &format!("{base}?continue={}", query_escape(&cont)),
            TABLE_V1BETA1,
        )
        .await;
    let rows = next["rows"].as_array().expect("table has rows");
    assert!(!rows.is_empty(), "second page is empty: {next}");
    assert_eq!(rows[0]["cells"][0], "template-0002");
}

/// [sig-api-machinery] Servers with support for Table transformation should return pod details
#[tokio::test]
async fn table_return_pod_details() {
    let c = cluster().await;
    let ns = c.create_namespace("tables").await;
    let pods: Api<Pod> = c.ns_api(&ns.name);
    let pod = Pod {
        metadata: ObjectMeta {
            name: Some("pod-1".into()),
            ..Default::default()
        },
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "agnhost-container".into(),
                image: Some("registry.k8s.io/e2e-test-images/agnhost:2.56".into()),
                args: Some(vec!["porter".into()]),
                ..Default::default()
            }],
            restart_policy: Some("Never".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    pods.create(&PostParams::default(), &pod)
        .await
        .expect("create pod");

    let table = c
        .get_json(
            &format!("/api/v1/namespaces/{}/pods/pod-1", ns.name),
            TABLE_V1BETA1,
        )
        .await;
    let columns = table["columnDefinitions"]
        .as_array()
        .expect("columnDefinitions");
    assert!(columns.len() > 2, "{table}");
    let rows = table["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 1, "{table}");
    assert_eq!(
        rows[0]["cells"].as_array().map(Vec::len),
        Some(columns.len()),
        "{table}"
    );
    assert_eq!(columns[0]["name"], "Name");
    assert_eq!(rows[0]["cells"][0], "pod-1");
}

/// [sig-api-machinery] Servers with support for Table transformation should return a 406 for a
/// backend which does not implement metadata [Conformance]
#[tokio::test]
async fn conformance_table_406_for_backend_without_metadata() {
    let c: Cluster = cluster().await;
    let body = serde_json::json!({
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {"nonResourceAttributes": {"path": "/", "verb": "get"}}
    });
    let resp = c
        .raw(
            Method::POST,
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            &[("Accept", TABLE_V1), ("Content-Type", "application/json")],
            serde_json::to_vec(&body).unwrap(),
        )
        .await;
    assert_eq!(
        resp.status,
        StatusCode::NOT_ACCEPTABLE,
        "{}",
        resp.describe()
    );
    let status = resp.json();
    assert_eq!(
        status["kind"],
        "Status",
        "error body must be a Status: {}",
        resp.describe()
    );
    assert_eq!(status["code"], 406, "{}", resp.describe());
}
