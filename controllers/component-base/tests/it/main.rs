//! component-base against an in-process kube-apiserver: informers see creates, updates and
//! deletes; of two electors on one Lease only one leads, and the other takes over on release.

use component_base::leader::{LeaderElectionConfig, LeaderElector};
use component_base::{Change, InformerFactory};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, ObjectMeta, PostParams};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

async fn client(url: &str) -> kube::Client {
    kube::Client::try_from(kube::Config::new(url.parse().unwrap())).unwrap()
}

fn cm(name: &str, v: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([("k".to_string(), v.to_string())])),
        ..Default::default()
    }
}

#[tokio::test]
async fn informer_feeds_changes() {
    let server = apiserver::TestServer::start(&[]).await.unwrap();
    let client = client(&server.url).await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    api.create(&PostParams::default(), &cm("before", "1"))
        .await
        .unwrap();
    let factory = InformerFactory::new(client);
    let inf = factory.informer::<ConfigMap>();
    let stop = CancellationToken::new();
    factory.start(&stop);
    assert!(factory.wait_for_cache_sync(&stop).await);
    assert!(inf.get(Some("default"), "before").is_some());
    let mut rx = inf.subscribe();
    // The late subscriber first sees what is stored.
    let mut seen_before = false;
    while let Ok(Some(c)) = tokio::time::timeout(Duration::from_millis(200), rx.recv()).await {
        if let Change::Added(o) = &c {
            seen_before |= o.metadata.name.as_deref() == Some("before");
        }
    }
    assert!(seen_before);
    api.create(&PostParams::default(), &cm("x", "1"))
        .await
        .unwrap();
    api.replace("x", &PostParams::default(), &{
        let mut c = api.get("x").await.unwrap();
        c.data = Some(BTreeMap::from([("k".to_string(), "2".to_string())]));
        c
    })
    .await
    .unwrap();
    api.delete("x", &DeleteParams::default()).await.unwrap();
    let mut kinds = Vec::new();
    while kinds.len() < 3 {
        let c = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("change in time")
            .expect("feed open");
        if c.object().metadata.name.as_deref() != Some("x") {
            continue;
        }
        kinds.push(match c {
            Change::Added(_) => "added",
            Change::Updated(old, new) => {
                assert_eq!(old.data.as_ref().unwrap()["k"], "1");
                assert_eq!(new.data.as_ref().unwrap()["k"], "2");
                "updated"
            }
            Change::Deleted(_) => "deleted",
        });
    }
    assert_eq!(kinds, ["added", "updated", "deleted"]);
    assert!(inf.get(Some("default"), "x").is_none());
    stop.cancel();
}

#[tokio::test]
async fn one_leader_at_a_time() {
    let server = apiserver::TestServer::start(&[]).await.unwrap();
    let leading = Arc::new(AtomicUsize::new(0));
    let max = Arc::new(AtomicUsize::new(0));
    let ran = Arc::new(AtomicUsize::new(0));
    let mut stops = Vec::new();
    let mut handles = Vec::new();
    for i in 0..2 {
        let client = client(&server.url).await;
        let mut cfg = LeaderElectionConfig::new("kube-system", "test-lease", format!("id-{i}"));
        cfg.lease_duration = Duration::from_secs(3);
        cfg.renew_deadline = Duration::from_secs(2);
        cfg.retry_period = Duration::from_millis(200);
        let stop = CancellationToken::new();
        stops.push(stop.clone());
        let (leading, max, ran) = (leading.clone(), max.clone(), ran.clone());
        handles.push(tokio::spawn(LeaderElector::new(client, cfg).run(
            stop,
            move |tok| async move {
                let now = leading.fetch_add(1, Ordering::SeqCst) + 1;
                max.fetch_max(now, Ordering::SeqCst);
                ran.fetch_add(1, Ordering::SeqCst);
                tok.cancelled().await;
                leading.fetch_sub(1, Ordering::SeqCst);
                Ok(())
            },
        )));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(ran.load(Ordering::SeqCst), 1, "exactly one elector leads");
    // Stop whichever leads: it releases the lease and the other takes over quickly.
    let lease: Api<k8s_openapi::api::coordination::v1::Lease> =
        Api::namespaced(client(&server.url).await, "kube-system");
    let holder = lease
        .get("test-lease")
        .await
        .unwrap()
        .spec
        .unwrap()
        .holder_identity
        .unwrap();
    let idx: usize = holder.trim_start_matches("id-").parse().unwrap();
    stops[idx].cancel();
    for _ in 0..50 {
        if ran.load(Ordering::SeqCst) == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(ran.load(Ordering::SeqCst), 2, "the standby took over");
    assert_eq!(max.load(Ordering::SeqCst), 1, "never two leaders at once");
    for s in &stops {
        s.cancel();
    }
    for h in handles {
        h.await.unwrap().unwrap();
    }
}
