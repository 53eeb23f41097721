//! The apiserver restarted on the same etcd keeps every object and starts again (bootstrap
//! objects that already exist are left alone).

use crate::start;
use apiserver_storage::testing::EtcdServer;
use serde_json::json;

#[tokio::test]
async fn restart_on_the_same_etcd_keeps_objects() {
    let etcd = EtcdServer::start().await.expect("etcd must be installed");
    let flag = format!("--etcd-servers={}", etcd.endpoint());
    let first = start(&["--storage-backend=etcd3", &flag]).await;
    let (code, _) = first
        .post(
            "/api/v1/namespaces/default/configmaps",
            json!({"metadata": {"name": "kept"}, "data": {"a": "1"}}),
        )
        .await;
    assert_eq!(code, 201);
    let (_, svc) = first
        .get("/api/v1/namespaces/default/services/kubernetes")
        .await;
    drop(first);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;

    let second = start(&["--storage-backend=etcd3", &flag]).await;
    let (code, cm) = second
        .get("/api/v1/namespaces/default/configmaps/kept")
        .await;
    assert_eq!(code, 200, "{cm}");
    assert_eq!(cm["data"]["a"], "1");
    let (code, svc2) = second
        .get("/api/v1/namespaces/default/services/kubernetes")
        .await;
    assert_eq!(code, 200);
    assert_eq!(
        svc2["metadata"]["uid"], svc["metadata"]["uid"],
        "the kubernetes Service is not recreated"
    );
    assert_eq!(svc2["spec"]["clusterIP"], "10.0.0.1");
}

/// The value of one `apiserver_watch_cache_consistent_read_total` series for configmaps.
async fn consistent_reads(s: &crate::Server, fallback: bool) -> u64 {
    let metrics = s.metrics().await;
    let series = format!(
        "apiserver_watch_cache_consistent_read_total{{fallback=\"{fallback}\",group=\"\",resource=\"configmaps\",success=\"true\"}} "
    );
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&series))
        .map_or(0, |v| v.parse().unwrap())
}

/// A consistent LIST when etcd's newest revision belongs to a key outside `/registry/` (another
/// tenant of the same etcd): the watch cache learns it has seen everything through a progress
/// notification and serves the list itself, at that revision, instead of waiting out the
/// freshness timeout and falling back to etcd.
#[tokio::test]
async fn consistent_list_after_a_write_outside_the_prefix_is_served_from_the_cache() {
    let etcd = EtcdServer::start().await.expect("etcd must be installed");
    let flag = format!("--etcd-servers={}", etcd.endpoint());
    let s = start(&["--storage-backend=etcd3", &flag]).await;
    let (code, _) = s
        .post(
            "/api/v1/namespaces/default/configmaps",
            json!({"metadata": {"name": "c"}}),
        )
        .await;
    assert_eq!(code, 201);
    let other = apiserver_storage::etcd::EtcdStorage::connect(&[etcd.endpoint()])
        .await
        .unwrap();
    use apiserver_storage::Storage;
    let outside = other
        .create("/another-tenant/x", bytes::Bytes::from("y"), None)
        .await
        .unwrap();
    let (cached0, fallback0) = (
        consistent_reads(&s, false).await,
        consistent_reads(&s, true).await,
    );
    let (code, list) = s.get("/api/v1/namespaces/default/configmaps").await;
    assert_eq!(code, 200, "{list}");
    let rv: i64 = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(rv >= outside, "list at {rv}, etcd was at {outside}");
    assert_eq!(list["items"][0]["metadata"]["name"], "c");
    assert_eq!(consistent_reads(&s, false).await, cached0 + 1);
    assert_eq!(
        consistent_reads(&s, true).await,
        fallback0,
        "no fallback to etcd"
    );
}
