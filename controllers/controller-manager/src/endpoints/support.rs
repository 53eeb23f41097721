//! Plumbing shared by this crate's network, disruption, node-lifecycle and quota controllers:
//! API error classification, change-feed pumps and queue shutdown (the client-go / apimachinery
//! helpers upstream controllers lean on: `errors.IsNotFound`, event handlers, `queue.ShutDown`).

use component_base::informer::{Change, Informable, Informer};
use component_base::workqueue::WorkQueue;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

pub fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

pub fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

pub fn is_already_exists(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409 && s.reason == "AlreadyExists")
}

/// Feeds every change of `informer` to `handle` until shut down.
pub fn on_change<K, F>(informer: &Informer<K>, shutdown: &CancellationToken, mut handle: F)
where
    K: Informable,
    F: FnMut(Change<K>) + Send + 'static,
{
    let mut rx = informer.subscribe();
    let shutdown = shutdown.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                c = rx.recv() => match c {
                    Some(c) => handle(c),
                    None => return,
                },
            }
        }
    });
}

/// Shuts the queue down (ending its workers) when the token is cancelled.
pub fn shut_down_on_cancel<T>(queue: &Arc<WorkQueue<T>>, shutdown: &CancellationToken)
where
    T: std::hash::Hash + Eq + Clone + Send + Sync + 'static,
{
    let q = queue.clone();
    let s = shutdown.clone();
    tokio::spawn(async move {
        s.cancelled().await;
        q.shut_down();
    });
}

/// Now, as a `metav1.Time` (second precision, as the API stores it).
pub fn now() -> k8s_openapi::apimachinery::pkg::apis::meta::v1::Time {
    let ts = jiff::Timestamp::now();
    let secs = jiff::Timestamp::from_second(ts.as_second()).unwrap_or(ts);
    k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(secs)
}
