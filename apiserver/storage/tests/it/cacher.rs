//! Watch cache behaviour on the in-memory backend.

use apiserver_apimachinery::selector::LabelSelector;
use apiserver_storage::cacher::{Attrs, CacheSet, CachedObject, EventType, Filter, WatchStart};
use apiserver_storage::{Storage, memory::MemoryStorage};
use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

fn transform() -> apiserver_storage::cacher::Transform {
    Arc::new(|key: &str, value: &[u8], rev: i64| {
        let label = String::from_utf8_lossy(value).to_string();
        let mut attrs = Attrs::default();
        attrs.labels.insert("v".into(), label.clone());
        Ok(CachedObject {
            key: key.into(),
            revision: rev,
            json: Bytes::from(format!("{label}@{rev}")),
            attrs,
        })
    })
}

#[tokio::test]
async fn cache_lists_watches_and_filters() {
    let mem = MemoryStorage::new();
    let store: Arc<dyn Storage> = Arc::new(mem);
    store
        .create("/registry/things/ns/a", Bytes::from("red"), None)
        .await
        .unwrap();
    let set = CacheSet::new(store.clone(), "/registry/");
    let cache = set.register("/registry/things/", transform());
    let other = set.register("/registry/others/", transform());
    let stop = CancellationToken::new();
    tokio::spawn(set.clone().run(stop.clone()));
    set.wait_ready().await;

    let all = Filter {
        key_prefix: "/registry/things/".into(),
        ..Default::default()
    };
    let l = cache.list(&all, None, 0);
    assert_eq!(l.items.len(), 1);
    assert_eq!(l.items[0].json, Bytes::from("red@2"));

    let red = Filter {
        labels: LabelSelector::parse("v=red").unwrap(),
        ..all.clone()
    };
    let mut w = cache.watch(red, WatchStart::Now).unwrap();
    // a -> blue: leaves the selector, so the watcher sees DELETED.
    let cur = store.get("/registry/things/ns/a").await.unwrap().unwrap();
    let r = store
        .update(
            "/registry/things/ns/a",
            Bytes::from("blue"),
            cur.mod_revision,
            None,
        )
        .await
        .unwrap();
    let ev = tokio::time::timeout(Duration::from_secs(2), w.live.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ev.kind, EventType::Deleted);
    assert_eq!(ev.object.revision, r);
    // a write to another resource still advances the revision every cache reports
    let r2 = store
        .create("/registry/others/x", Bytes::from("z"), None)
        .await
        .unwrap();
    assert!(cache.wait_for(r2, Duration::from_secs(2)).await);
    assert_eq!(
        other
            .list(
                &Filter {
                    key_prefix: "/registry/others/".into(),
                    ..Default::default()
                },
                None,
                0
            )
            .items
            .len(),
        1
    );

    // resume from a past revision replays what happened after it
    let mut w2 = cache
        .watch(all.clone(), WatchStart::After(cur.mod_revision))
        .unwrap();
    assert_eq!(w2.initial.len(), 1);
    assert_eq!(w2.initial[0].kind, EventType::Modified);
    store.delete("/registry/things/ns/a", 0).await.unwrap();
    let ev = tokio::time::timeout(Duration::from_secs(2), w2.live.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ev.kind, EventType::Deleted);
    assert!(
        cache.watch(all, WatchStart::After(0)).is_err(),
        "too old revision is refused"
    );
    stop.cancel();
}

#[tokio::test]
async fn paging_and_slow_watchers() {
    let store: Arc<dyn Storage> = Arc::new(MemoryStorage::new());
    for i in 0..5 {
        store
            .create(&format!("/registry/p/{i}"), Bytes::from("x"), None)
            .await
            .unwrap();
    }
    let set = CacheSet::new(store.clone(), "/registry/");
    let cache = set.register("/registry/p/", transform());
    let stop = CancellationToken::new();
    tokio::spawn(set.clone().run(stop.clone()));
    set.wait_ready().await;
    let f = Filter {
        key_prefix: "/registry/p/".into(),
        ..Default::default()
    };
    let page = cache.list(&f, None, 2);
    assert_eq!(page.items.len(), 2);
    assert_eq!(page.remaining, Some(3));
    let page2 = cache.list(&f, page.next.as_deref(), 2);
    assert_eq!(page2.items[0].key, "/registry/p/2");

    // A watcher that never reads is dropped once its buffer is full; a reading one is not blocked.
    let slow = cache.watch(f.clone(), WatchStart::Now).unwrap();
    let mut fast = cache.watch(f.clone(), WatchStart::Now).unwrap();
    let reader = tokio::spawn(async move {
        let mut n = 0;
        while let Some(_e) = fast.live.recv().await {
            n += 1;
            if n == 1500 {
                break;
            }
        }
        n
    });
    for i in 0..1500 {
        let key = format!("/registry/p/{}", i % 5);
        let cur = store.get(&key).await.unwrap().unwrap();
        store
            .update(&key, Bytes::from(format!("v{i}")), cur.mod_revision, None)
            .await
            .unwrap();
        if i % 100 == 0 {
            tokio::task::yield_now().await;
        }
    }
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(10), reader)
            .await
            .unwrap()
            .unwrap(),
        1500
    );
    // One more write prunes the fast watcher, whose receiver the reader dropped.
    let cur = store.get("/registry/p/0").await.unwrap().unwrap();
    let r = store
        .update("/registry/p/0", Bytes::from("last"), cur.mod_revision, None)
        .await
        .unwrap();
    assert!(cache.wait_for(r, Duration::from_secs(2)).await);
    assert_eq!(cache.watcher_count(), 0, "slow watcher was closed");
    let mut slow_rx = slow.live;
    let mut got = 0;
    while slow_rx.recv().await.is_some() {
        got += 1;
    }
    assert!(got <= 1024, "slow watcher's channel was bounded");
    stop.cancel();
}

#[tokio::test]
async fn caches_registered_while_running_load_and_follow() {
    let store: Arc<dyn Storage> = Arc::new(MemoryStorage::new());
    store
        .create(
            "/registry/example.com/widgets/ns/a",
            Bytes::from("red"),
            None,
        )
        .await
        .unwrap();
    let set = CacheSet::new(store.clone(), "/registry/");
    let _pods = set.register("/registry/pods/", transform());
    let stop = CancellationToken::new();
    tokio::spawn(set.clone().run(stop.clone()));
    set.wait_ready().await;
    // Written after the set loaded: invisible to it until a cache claims the prefix.
    store
        .create(
            "/registry/example.com/widgets/ns/b",
            Bytes::from("blue"),
            None,
        )
        .await
        .unwrap();
    let widgets = set
        .register_live("/registry/example.com/widgets/", transform())
        .await
        .unwrap();
    let all = Filter {
        key_prefix: "/registry/example.com/widgets/".into(),
        ..Default::default()
    };
    let keys: Vec<String> = widgets
        .list(&all, None, 0)
        .items
        .iter()
        .map(|o| o.key.clone())
        .collect();
    assert_eq!(
        keys,
        vec![
            "/registry/example.com/widgets/ns/a",
            "/registry/example.com/widgets/ns/b"
        ]
    );
    let mut w = widgets.watch(all.clone(), WatchStart::Now).unwrap();
    let rev = store
        .create(
            "/registry/example.com/widgets/ns/c",
            Bytes::from("green"),
            None,
        )
        .await
        .unwrap();
    let ev = tokio::time::timeout(Duration::from_secs(5), w.live.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ev.kind, EventType::Added);
    assert_eq!(ev.object.json, Bytes::from(format!("green@{rev}")));
    assert!(widgets.wait_for(rev, Duration::from_secs(5)).await);
    assert_eq!(widgets.list(&all, None, 0).items.len(), 3);
    // Unregistered: its watchers end, and later writes are not applied to it.
    set.unregister(&widgets);
    let end = tokio::time::timeout(Duration::from_secs(5), w.live.recv())
        .await
        .unwrap();
    assert!(end.is_none());
    stop.cancel();
}

/// A write outside the cached root sends the cache no event; a reader waiting for that
/// revision (a consistent list) gets it through a progress notification instead of timing
/// out. Checked against a real etcd, whose watch only reports progress when asked.
#[tokio::test]
async fn wait_for_a_revision_written_outside_the_root_uses_progress() {
    let (_etcd, store) = crate::private_etcd().await;
    for store in [store, Arc::new(MemoryStorage::new()) as Arc<dyn Storage>] {
        let set = CacheSet::new(store.clone(), "/registry/");
        let cache = set.register("/registry/things/", transform());
        let stop = CancellationToken::new();
        tokio::spawn(set.clone().run(stop.clone()));
        set.wait_ready().await;
        let r = store
            .create("/elsewhere/x", Bytes::from("z"), None)
            .await
            .unwrap();
        assert!(cache.revision() < r, "no event reached the cache");
        // The 3 s upstream waits before giving up; without progress this times out.
        assert!(cache.wait_for(r, Duration::from_secs(3)).await);
        assert!(cache.revision() >= r);
        stop.cancel();
    }
}
