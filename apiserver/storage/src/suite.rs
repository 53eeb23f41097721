//! The storage test suite every backend must pass (run by `tests/it` against the in-memory
//! backend and a real etcd). Panics on failure; meant to be called from tests only.

use crate::{Event, Storage, StorageError, Update, guaranteed_update};
use bytes::Bytes;
use futures::StreamExt;
use std::sync::Arc;

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// Runs every check against `store`, using keys under `root` (must be empty).
pub async fn run(store: Arc<dyn Storage>, root: &str) {
    let k = |n: &str| format!("{root}{n}");
    let rev0 = store.current_revision().await.expect("revision");

    // create-if-absent
    let r1 = store.create(&k("a"), b("1"), None).await.expect("create");
    assert!(r1 > rev0, "create advances the revision");
    assert_eq!(
        store.create(&k("a"), b("x"), None).await,
        Err(StorageError::AlreadyExists)
    );
    let got = store.get(&k("a")).await.expect("get").expect("present");
    assert_eq!(got.value, b("1"));
    assert_eq!(got.mod_revision, r1);
    assert_eq!(got.create_revision, r1);

    // compare-and-swap update
    let r2 = store
        .update(&k("a"), b("2"), r1, None)
        .await
        .expect("update");
    assert!(r2 > r1);
    assert_eq!(
        store.update(&k("a"), b("3"), r1, None).await,
        Err(StorageError::Conflict),
        "stale update"
    );
    assert_eq!(
        store.update(&k("zz"), b("3"), 5, None).await,
        Err(StorageError::NotFound)
    );
    let got = store.get(&k("a")).await.expect("get").expect("present");
    assert_eq!(
        (got.value.clone(), got.mod_revision, got.create_revision),
        (b("2"), r2, r1)
    );

    // list with paging and historical reads
    store.create(&k("b"), b("b"), None).await.expect("create b");
    let r4 = store.create(&k("c"), b("c"), None).await.expect("create c");
    let all = store.list(root, "", 0, 0).await.expect("list");
    assert_eq!(all.items.len(), 3);
    assert!(all.revision >= r4, "list revision is the read revision");
    let page = store.list(root, "", 2, 0).await.expect("page");
    assert_eq!(page.items.len(), 2);
    assert!(page.more);
    assert_eq!(page.remaining, 1);
    let next = format!("{}\u{0}", page.items[1].key);
    let page2 = store
        .list(root, &next, 2, page.revision)
        .await
        .expect("page 2");
    assert_eq!(page2.items.len(), 1);
    assert!(!page2.more);
    let old = store.list(root, "", 0, r2).await.expect("historical list");
    assert_eq!(old.items.len(), 1, "at r2 only `a` existed");
    assert_eq!(old.items[0].value, b("2"));

    // watch from a revision replays history, then follows live changes
    let mut w = store.watch(root, r2).await.expect("watch");
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let batch = tokio::time::timeout(std::time::Duration::from_secs(5), w.next())
            .await
            .expect("watch event in time")
            .expect("stream open")
            .expect("no error");
        seen.extend(batch);
    }
    assert_eq!(seen[0].revision(), r2);
    assert!(matches!(&seen[0], Event::Put { prev: Some(p), .. } if p.value == b("1")));
    let rd = store.delete(&k("b"), 0).await.expect("delete");
    let batch = tokio::time::timeout(std::time::Duration::from_secs(5), w.next())
        .await
        .expect("delete event in time")
        .expect("open")
        .expect("ok");
    match &batch[0] {
        Event::Delete {
            key,
            prev,
            revision,
        } => {
            assert_eq!(key, &k("b"));
            assert_eq!(*revision, rd);
            assert_eq!(prev.as_ref().map(|p| p.value.clone()), Some(b("b")));
        }
        other => panic!("expected a delete, got {other:?}"),
    }
    // A write outside the watched prefix sends no event; a progress request makes the watch
    // report that it is complete up to that write's revision (and no event precedes it).
    let outside = format!("{}-outside/x", root.trim_end_matches('/'));
    let ro = store
        .create(&outside, b("x"), None)
        .await
        .expect("create outside");
    store.request_progress().await.expect("request progress");
    let batch = tokio::time::timeout(std::time::Duration::from_secs(5), w.next())
        .await
        .expect("progress in time")
        .expect("open")
        .expect("ok");
    match &batch[..] {
        [Event::Progress { revision }] => assert!(*revision >= ro, "progress {revision} < {ro}"),
        other => panic!("expected only a progress notification, got {other:?}"),
    }
    store.delete(&outside, 0).await.expect("delete outside");
    assert_eq!(store.delete(&k("b"), 0).await, Err(StorageError::NotFound));
    let c = store.get(&k("c")).await.expect("get").expect("c");
    assert_eq!(
        store.delete(&k("c"), c.mod_revision + 100).await,
        Err(StorageError::Conflict)
    );

    // guaranteed_update: skips identical writes, retries conflicts
    let (kv, wrote) =
        guaranteed_update::<_, StorageError, _>(store.as_ref(), &k("a"), None, |cur| {
            Ok(Update::Write(cur.expect("exists").value.clone()))
        })
        .await
        .expect("no-op update");
    assert!(!wrote, "unchanged bytes are not written");
    assert_eq!(kv.expect("kv").mod_revision, r2);
    // Concurrent read-modify-writes on one key: conflicts are retried, no increment is lost.
    store
        .create(&k("counter"), b("0"), None)
        .await
        .expect("counter");
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let st = store.clone();
        let key = k("counter");
        tasks.push(tokio::spawn(async move {
            for _ in 0..10 {
                guaranteed_update::<_, StorageError, _>(st.as_ref(), &key, None, |cur| {
                    let n: i64 = std::str::from_utf8(&cur.expect("exists").value)
                        .expect("utf8")
                        .parse()
                        .expect("int");
                    Ok(Update::Write(Bytes::from((n + 1).to_string())))
                })
                .await
                .expect("update");
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let v = store
        .get(&k("counter"))
        .await
        .expect("get")
        .expect("counter");
    assert_eq!(v.value, b("40"), "every concurrent increment was kept");
    let (gone, wrote) =
        guaranteed_update::<_, StorageError, _>(store.as_ref(), &k("counter"), None, |_| {
            Ok(Update::Delete)
        })
        .await
        .expect("delete via update");
    assert!(gone.is_none() && wrote);

    // compaction makes old revisions unavailable
    let now = store.current_revision().await.expect("rev");
    store.compact(now).await.expect("compact");
    match store.list(root, "", 0, r2).await {
        Err(StorageError::Compacted(_)) => {}
        other => panic!("list at a compacted revision must fail, got {other:?}"),
    }
    match store.watch(root, r2).await {
        Err(StorageError::Compacted(_)) => {}
        Ok(mut s) => match s.next().await {
            Some(Err(StorageError::Compacted(_))) => {}
            other => panic!("watch from a compacted revision must fail, got {other:?}"),
        },
        Err(e) => panic!("unexpected error {e}"),
    }
}
