//! Watch semantics over HTTP: initial events, resume from a revision, selectors, bookmarks,
//! sendInitialEvents, and 410 for compacted revisions.

use crate::{Server, rv, start};
use futures::StreamExt;
use serde_json::{Value, json};
use std::time::Duration;

async fn events(s: &Server, path: &str, n: usize) -> Vec<Value> {
    let resp = s.http.get(s.url(path)).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let mut stream = resp.bytes_stream();
    let mut buf = Vec::new();
    let mut out = Vec::new();
    while out.len() < n {
        let chunk = tokio::time::timeout(Duration::from_secs(5), stream.next())
            .await
            .expect("event in time")
            .expect("open")
            .unwrap();
        buf.extend_from_slice(&chunk);
        while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=pos).collect();
            out.push(serde_json::from_slice(&line).unwrap());
        }
    }
    out
}

#[tokio::test]
async fn watch_from_revision_selectors_and_initial_events() {
    let s = start(&[]).await;
    let base = "/api/v1/namespaces/default/configmaps";
    let (_, a) = s
        .post(
            base,
            json!({"metadata": {"name": "a", "labels": {"w": "yes"}}}),
        )
        .await;
    let start_rv = rv(&a);
    let mut upd = a.clone();
    upd["metadata"]["labels"] = json!({"w": "no"});
    let (_, a2) = s.put(&format!("{base}/a"), upd).await;
    s.post(
        base,
        json!({"metadata": {"name": "b", "labels": {"w": "yes"}}}),
    )
    .await;

    // From a revision: the modification (a leaves the selector -> DELETED), then b ADDED.
    let evs = events(
        &s,
        &format!("{base}?watch=true&resourceVersion={start_rv}&labelSelector=w%3Dyes"),
        2,
    )
    .await;
    assert_eq!(evs[0]["type"], "DELETED");
    assert_eq!(
        evs[0]["object"]["metadata"]["resourceVersion"],
        a2["metadata"]["resourceVersion"]
    );
    assert_eq!(evs[1]["type"], "ADDED");
    assert_eq!(evs[1]["object"]["metadata"]["name"], "b");

    // No resourceVersion: synthetic ADDED events for what exists.
    let evs = events(&s, &format!("{base}?watch=1"), 2).await;
    assert!(evs.iter().all(|e| e["type"] == "ADDED"));

    // sendInitialEvents: ADDED events, then the initial-events-end bookmark.
    let evs = events(&s, &format!("{base}?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true"), 3).await;
    assert_eq!(evs[2]["type"], "BOOKMARK");
    assert_eq!(
        evs[2]["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );
    assert_eq!(evs[2]["object"]["kind"], "ConfigMap");

    // A live deletion carries the deletion revision.
    let path = format!("{base}?watch=1&resourceVersion={}", rv(&a2));
    let s2 = &s;
    let watcher = async move { events(s2, &path, 2).await };
    let deleter = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        s.delete(&format!("{base}/b")).await
    };
    let (evs, _) = tokio::join!(watcher, deleter);
    assert_eq!(evs[1]["type"], "DELETED");
    assert!(rv(&evs[1]["object"]) > rv(&evs[0]["object"]));
}

#[tokio::test]
async fn watch_from_too_old_revision_is_gone() {
    let s = start(&[]).await;
    let base = "/api/v1/namespaces/default/configmaps";
    // Push enough events through one cache that its history no longer reaches revision 1.
    let (_, c) = s.post(base, json!({"metadata": {"name": "churn"}})).await;
    let mut cur = c;
    for i in 0..10_050 {
        cur["data"] = json!({"i": i.to_string()});
        let (code, next) = s.put(&format!("{base}/churn"), cur.clone()).await;
        assert_eq!(code, 200);
        cur = next;
    }
    let evs = events(&s, &format!("{base}?watch=1&resourceVersion=2"), 1).await;
    assert_eq!(evs[0]["type"], "ERROR");
    assert_eq!(evs[0]["object"]["code"], 410);
    assert_eq!(evs[0]["object"]["reason"], "Expired");
}
