//! Watch conformance tests. Mirrors upstream `test/e2e/apimachinery/watch.go`
//! ("[sig-api-machinery] Watchers ...").

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use conformance::watch::EventType::{Added, Deleted, Modified};
use conformance::{EventStream, cluster};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, ListParams, PostParams, WatchParams};

const LABEL_KEY: &str = "watch-this-configmap";
const LABEL_A: &str = "multiple-watchers-A";
const LABEL_B: &str = "multiple-watchers-B";
const FROM_RV_LABEL: &str = "from-resource-version";
const RESTARTED_LABEL: &str = "watch-closed-and-restarted";
const CHANGED_LABEL: &str = "label-changed-and-restored";

/// How long "no such notification" is awaited. Upstream waits 10 s; watches deliver in order and
/// each of these checks is followed by events that must arrive, so a shorter wait still catches
/// a wrongly delivered event in practice and keeps the suite fast.
const NO_EVENT_WAIT: Duration = Duration::from_secs(3);

fn labelled_configmap(name: &str, value: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            labels: Some([(LABEL_KEY.to_string(), value.to_string())].into()),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// Opens a watch on configmaps whose LABEL_KEY is in `values`, from `rv`, like upstream's
/// watchConfigMaps (selector "watch-this-configmap in (a,b)").
async fn watch_configmaps(
    api: &Api<ConfigMap>,
    rv: &str,
    values: &[&str],
) -> EventStream<ConfigMap> {
    let selector = format!("{LABEL_KEY} in ({})", values.join(","));
    let wp = WatchParams::default().labels(&selector).disable_bookmarks();
    EventStream::open(api, &wp, rv).await
}

/// Get, mutate, update; retried on conflicts (upstream's updateConfigMap).
async fn update_configmap(
    api: &Api<ConfigMap>,
    name: &str,
    mutate: impl Fn(&mut ConfigMap),
) -> ConfigMap {
    for _ in 0..5 {
        let mut cm = api
            .get(name)
            .await
            .unwrap_or_else(|e| panic!("get configmap {name}: {e}"));
        mutate(&mut cm);
        match api.replace(name, &PostParams::default(), &cm).await {
            Ok(updated) => return updated,
            Err(kube::Error::Api(s)) if s.code == 409 => continue,
            Err(e) => panic!("update configmap {name}: {e}"),
        }
    }
    panic!("update configmap {name}: still conflicting after 5 tries");
}

fn set_data(cm: &mut ConfigMap, key: &str, value: &str) {
    cm.data
        .get_or_insert_with(BTreeMap::new)
        .insert(key.to_string(), value.to_string());
}

fn set_label(cm: &mut ConfigMap, value: &str) {
    cm.metadata
        .labels
        .get_or_insert_with(BTreeMap::new)
        .insert(LABEL_KEY.to_string(), value.to_string());
}

/// [sig-api-machinery] Watchers should observe add, update, and delete watch notifications on
/// configmaps [Conformance]
#[tokio::test]
async fn conformance_watch_observe_add_update_delete() {
    let c = cluster().await;
    let ns = c.create_namespace("watch").await;
    let api: Api<ConfigMap> = c.ns_api(&ns.name);
    let pp = PostParams::default();

    let mut watch_a = watch_configmaps(&api, "", &[LABEL_A]).await;
    let mut watch_b = watch_configmaps(&api, "", &[LABEL_B]).await;
    let mut watch_ab = watch_configmaps(&api, "", &[LABEL_A, LABEL_B]).await;

    // configmap A: add, two updates, delete.
    let cm_a = api
        .create(
            &pp,
            &labelled_configmap("e2e-watch-test-configmap-a", LABEL_A),
        )
        .await
        .expect("create configmap A");
    watch_a.expect(Added, Some(&cm_a)).await;
    watch_ab.expect(Added, Some(&cm_a)).await;
    watch_b.expect_none(Added, Some(&cm_a), NO_EVENT_WAIT).await;

    let name_a = cm_a.metadata.name.clone().unwrap();
    for value in ["1", "2"] {
        let cm_a = update_configmap(&api, &name_a, |cm| set_data(cm, "mutation", value)).await;
        watch_a.expect(Modified, Some(&cm_a)).await;
        watch_ab.expect(Modified, Some(&cm_a)).await;
        watch_b
            .expect_none(Modified, Some(&cm_a), NO_EVENT_WAIT)
            .await;
    }

    api.delete(&name_a, &DeleteParams::default())
        .await
        .expect("delete configmap A");
    watch_a.expect(Deleted, None).await;
    watch_ab.expect(Deleted, None).await;
    watch_b.expect_none(Deleted, None, NO_EVENT_WAIT).await;

    // configmap B: add, delete.
    let cm_b = api
        .create(
            &pp,
            &labelled_configmap("e2e-watch-test-configmap-b", LABEL_B),
        )
        .await
        .expect("create configmap B");
    watch_b.expect(Added, Some(&cm_b)).await;
    watch_ab.expect(Added, Some(&cm_b)).await;
    watch_a.expect_none(Added, Some(&cm_b), NO_EVENT_WAIT).await;

    let name_b = cm_b.metadata.name.clone().unwrap();
    api.delete(&name_b, &DeleteParams::default())
        .await
        .expect("delete configmap B");
    watch_b.expect(Deleted, None).await;
    watch_ab.expect(Deleted, None).await;
    watch_a.expect_none(Deleted, None, NO_EVENT_WAIT).await;
}

/// [sig-api-machinery] Watchers should be able to start watching from a specific resource
/// version [Conformance]
#[tokio::test]
async fn conformance_watch_from_specific_resource_version() {
    let c = cluster().await;
    let ns = c.create_namespace("watch").await;
    let api: Api<ConfigMap> = c.ns_api(&ns.name);

    let name = "e2e-watch-test-resource-version";
    api.create(
        &PostParams::default(),
        &labelled_configmap(name, FROM_RV_LABEL),
    )
    .await
    .expect("create configmap");
    let first = update_configmap(&api, name, |cm| set_data(cm, "mutation", "1")).await;
    let second = update_configmap(&api, name, |cm| set_data(cm, "mutation", "2")).await;
    api.delete(name, &DeleteParams::default())
        .await
        .expect("delete configmap");

    let rv = first
        .metadata
        .resource_version
        .clone()
        .expect("first update has a resourceVersion");
    let mut w = watch_configmaps(&api, &rv, &[FROM_RV_LABEL]).await;
    // Everything after the first update, and nothing before it: the next event is the second
    // update, exactly.
    let (ty, obj) = w
        .next_event(Duration::from_secs(60))
        .await
        .expect("an event after the first update");
    assert_eq!(
        (ty, &obj),
        (Modified, &second),
        "first event of a watch from rv {rv}"
    );
    w.expect(Deleted, None).await;
}

/// [sig-api-machinery] Watchers should be able to restart watching from the last resource
/// version observed by the previous watch [Conformance]
#[tokio::test]
async fn conformance_watch_restart_from_last_observed_resource_version() {
    let c = cluster().await;
    let ns = c.create_namespace("watch").await;
    let api: Api<ConfigMap> = c.ns_api(&ns.name);
    let name = "e2e-watch-test-watch-closed";

    let mut broken = watch_configmaps(&api, "", &[RESTARTED_LABEL]).await;
    let created = api
        .create(
            &PostParams::default(),
            &labelled_configmap(name, RESTARTED_LABEL),
        )
        .await
        .expect("create configmap");
    update_configmap(&api, name, |cm| set_data(cm, "mutation", "1")).await;

    broken.expect(Added, Some(&created)).await;
    let last = broken.expect(Modified, None).await;
    drop(broken);

    let second = update_configmap(&api, name, |cm| set_data(cm, "mutation", "2")).await;

    let rv = last
        .metadata
        .resource_version
        .clone()
        .expect("event object has a resourceVersion");
    let mut restarted = watch_configmaps(&api, &rv, &[RESTARTED_LABEL]).await;
    api.delete(name, &DeleteParams::default())
        .await
        .expect("delete configmap");

    restarted.expect(Modified, Some(&second)).await;
    restarted.expect(Deleted, None).await;
}

/// [sig-api-machinery] Watchers should observe an object deletion if it stops meeting the
/// requirements of the selector [Conformance]
#[tokio::test]
async fn conformance_watch_observe_deletion_when_selector_stops_matching() {
    let c = cluster().await;
    let ns = c.create_namespace("watch").await;
    let api: Api<ConfigMap> = c.ns_api(&ns.name);
    let name = "e2e-watch-test-label-changed";

    let mut w = watch_configmaps(&api, "", &[CHANGED_LABEL]).await;
    let created = api
        .create(
            &PostParams::default(),
            &labelled_configmap(name, CHANGED_LABEL),
        )
        .await
        .expect("create configmap");
    let first = update_configmap(&api, name, |cm| set_data(cm, "mutation", "1")).await;
    update_configmap(&api, name, |cm| set_label(cm, "wrong-value")).await;

    w.expect(Added, Some(&created)).await;
    w.expect(Modified, Some(&first)).await;
    w.expect(Deleted, None).await;

    let second = update_configmap(&api, name, |cm| set_data(cm, "mutation", "2")).await;
    w.expect_none(Modified, Some(&second), NO_EVENT_WAIT).await;

    let restored = update_configmap(&api, name, |cm| set_label(cm, CHANGED_LABEL)).await;
    let third = update_configmap(&api, name, |cm| set_data(cm, "mutation", "3")).await;
    api.delete(name, &DeleteParams::default())
        .await
        .expect("delete configmap");

    w.expect(Added, Some(&restored)).await;
    w.expect(Modified, Some(&third)).await;
    w.expect(Deleted, None).await;
}

/// Small deterministic PRNG (xorshift64*) for the event producer.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n
    }
}

/// Creates, updates (unconditionally, without resourceVersion) and deletes configmaps
/// cm-<i> at random every `tick` until `stop` is set (upstream's produceConfigMapEvents).
async fn produce_configmap_events(api: Api<ConfigMap>, stop: Arc<AtomicBool>, tick: Duration) {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut existing: Vec<usize> = Vec::new();
    let mut next = 0usize;
    let mut ticker = tokio::time::interval(tick);
    while !stop.load(Ordering::SeqCst) {
        ticker.tick().await;
        let op = if existing.is_empty() { 0 } else { rng.below(3) };
        let mut cm = ConfigMap::default();
        match op {
            0 => {
                cm.metadata.name = Some(format!("cm-{next}"));
                api.create(&PostParams::default(), &cm)
                    .await
                    .expect("producer: create configmap");
                existing.push(next);
                next += 1;
            }
            1 => {
                let name = format!("cm-{}", existing[rng.below(existing.len())]);
                cm.metadata.name = Some(name.clone());
                api.replace(&name, &PostParams::default(), &cm)
                    .await
                    .unwrap_or_else(|e| panic!("producer: unconditional update of {name}: {e}"));
            }
            _ => {
                let idx = rng.below(existing.len());
                let name = format!("cm-{}", existing.remove(idx));
                api.delete(&name, &DeleteParams::default())
                    .await
                    .unwrap_or_else(|e| panic!("producer: delete {name}: {e}"));
            }
        }
    }
}

/// [sig-api-machinery] Watchers should receive events on concurrent watches in same order
/// [Conformance]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_watch_concurrent_watches_same_order() {
    const ITERATIONS: usize = 100;
    let c = cluster().await;
    let ns = c.create_namespace("watch").await;
    let api: Api<ConfigMap> = c.ns_api(&ns.name);

    let list = api
        .list(&ListParams::default())
        .await
        .expect("list configmaps");
    let mut rv = list
        .metadata
        .resource_version
        .clone()
        .expect("list has a resourceVersion");

    let stop = Arc::new(AtomicBool::new(false));
    let producer = tokio::spawn(produce_configmap_events(
        api.clone(),
        stop.clone(),
        Duration::from_millis(5),
    ));

    let wp = WatchParams::default().disable_bookmarks();
    let mut watches: Vec<EventStream<ConfigMap>> = Vec::new();
    for i in 0..ITERATIONS {
        watches.push(EventStream::open(&api, &wp, &rv).await);
        let (_, first) = watches[0]
            .next_event(Duration::from_secs(10))
            .await
            .unwrap_or_else(|| panic!("iteration {i}: timed out waiting for a watch event"));
        rv = first
            .metadata
            .resource_version
            .clone()
            .expect("event has a resourceVersion");
        for (j, w) in watches.iter_mut().enumerate().skip(1) {
            let (_, got) = w
                .next_event(Duration::from_secs(10))
                .await
                .unwrap_or_else(|| {
                    panic!("iteration {i}, watch {j}: timed out waiting for an event")
                });
            assert_eq!(
                got.metadata.resource_version.as_deref(),
                Some(rv.as_str()),
                "iteration {i}, watch {j}: resource version mismatch"
            );
        }
    }
    stop.store(true, Ordering::SeqCst);
    drop(watches);
    if let Err(e) = producer.await {
        std::panic::resume_unwind(e.into_panic());
    }
}
