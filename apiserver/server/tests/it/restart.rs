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
