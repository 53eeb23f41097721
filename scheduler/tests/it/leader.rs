//! Two scheduler replicas with leader election: only the leader binds; a standby takes over.

use super::*;
use k8s_openapi::api::coordination::v1::Lease;
use serde_json::json;

#[tokio::test]
async fn two_replicas_never_double_bind_and_fail_over() {
    let server = apiserver::TestServer::start(&[]).await.expect("apiserver");
    let client = kube::Client::try_from(kube::Config::new(server.url.parse().unwrap())).unwrap();
    for i in 0..3 {
        create_node(&client, node(&format!("n{i}"), "16", &[], json!([]))).await;
    }
    let le = [
        "--leader-elect=true",
        "--leader-elect-lease-duration=2s",
        "--leader-elect-renew-deadline=1500ms",
        "--leader-elect-retry-period=200ms",
    ];
    let (stop_a, run_a) = start_scheduler(&server.url, &le);
    let (stop_b, run_b) = start_scheduler(&server.url, &le);
    for i in 0..30 {
        create_pod(&client, pod(&format!("p{i}"), "10m", json!({}))).await;
    }
    for i in 0..30 {
        wait_bound(&client, &format!("p{i}")).await;
    }
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-system");
    let holder = leases
        .get("kube-scheduler")
        .await
        .expect("lease")
        .spec
        .and_then(|s| s.holder_identity)
        .expect("holder");
    // Every pod was bound exactly once: one Scheduled event each, no failed bindings.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let events: Api<k8s_openapi::api::events::v1::Event> =
        Api::namespaced(client.clone(), "default");
    let all = events.list(&ListParams::default()).await.unwrap().items;
    for i in 0..30 {
        let name = format!("p{i}");
        let scheduled = all
            .iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name.as_str()))
            .filter(|e| e.reason.as_deref() == Some("Scheduled"))
            .count();
        assert_eq!(scheduled, 1, "pod {name}");
    }
    assert!(
        !all.iter()
            .any(|e| e.reason.as_deref() == Some("FailedScheduling"))
    );
    // Stop whichever leads; the other takes over and schedules new pods.
    let (a_done, b_done) = (run_a.is_finished(), run_b.is_finished());
    assert!(!a_done && !b_done, "both replicas keep running");
    stop_a.cancel();
    let _ = run_a.await;
    create_pod(&client, pod("after", "10m", json!({}))).await;
    wait_bound(&client, "after").await;
    let new_holder = leases
        .get("kube-scheduler")
        .await
        .unwrap()
        .spec
        .and_then(|s| s.holder_identity);
    assert!(new_holder.is_some());
    let _ = holder;
    stop_b.cancel();
    let _ = run_b.await;
}
