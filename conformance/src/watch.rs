//! Watch assertions: wait for (or rule out) a notification of a given type and object. Mirrors
//! the helpers at the bottom of upstream's `test/e2e/apimachinery/watch.go` (expectEvent,
//! expectNoEvent, waitForEvent, waitForNextConfigMapEvent).

use std::fmt::Debug;
use std::time::Duration;

use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use kube::api::{Api, WatchEvent, WatchParams};
use serde::de::DeserializeOwned;

/// The notification types a watch delivers to tests (bookmarks are skipped).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

/// How long [`EventStream::expect`] waits (upstream: one minute).
pub const EXPECT_TIMEOUT: Duration = Duration::from_secs(60);

/// An open watch.
pub struct EventStream<K> {
    stream: BoxStream<'static, kube::Result<WatchEvent<K>>>,
    /// What was watched, for messages.
    pub what: String,
}

impl<K> EventStream<K>
where
    K: Clone + DeserializeOwned + Debug + PartialEq + Send + 'static,
{
    /// Opens a watch with `wp` from resource version `rv` ("" = from now, with no initial
    /// events for an empty collection).
    pub async fn open(api: &Api<K>, wp: &WatchParams, rv: &str) -> Self {
        let what = format!(
            "watch(labelSelector={:?}, fieldSelector={:?}, resourceVersion={rv:?})",
            wp.label_selector, wp.field_selector
        );
        let stream = api
            .watch(wp, rv)
            .await
            .unwrap_or_else(|e| panic!("opening {what}: {e}"))
            .boxed();
        EventStream { stream, what }
    }

    /// Next non-bookmark notification within `timeout`; `None` on timeout. Panics when the
    /// watch ends, fails, or delivers an ERROR event.
    pub async fn next_event(&mut self, timeout: Duration) -> Option<(EventType, K)> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let next = tokio::time::timeout_at(deadline, self.stream.try_next()).await;
            let event = match next {
                Err(_) => return None,
                Ok(Err(e)) => panic!("{}: {e}", self.what),
                Ok(Ok(None)) => panic!("{}: watch closed unexpectedly", self.what),
                Ok(Ok(Some(event))) => event,
            };
            match event {
                WatchEvent::Added(o) => return Some((EventType::Added, o)),
                WatchEvent::Modified(o) => return Some((EventType::Modified, o)),
                WatchEvent::Deleted(o) => return Some((EventType::Deleted, o)),
                WatchEvent::Bookmark(_) => continue,
                WatchEvent::Error(status) => panic!("{}: ERROR event: {status:?}", self.what),
            }
        }
    }

    /// Waits up to `timeout` for an event of type `ty` whose object equals `object` (any object
    /// when `None`); other events are skipped, as upstream's waitForEvent does.
    pub async fn wait_for(
        &mut self,
        ty: EventType,
        object: Option<&K>,
        timeout: Duration,
    ) -> Result<K, Vec<(EventType, K)>> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut skipped = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_event(left).await {
                None => return Err(skipped),
                Some((got, o)) if got == ty && object.is_none_or(|want| *want == o) => {
                    return Ok(o);
                }
                Some(other) => skipped.push(other),
            }
        }
    }

    /// Asserts that an event of type `ty` (with exactly `object`, if given) arrives within
    /// [`EXPECT_TIMEOUT`]; returns its object.
    pub async fn expect(&mut self, ty: EventType, object: Option<&K>) -> K {
        match self.wait_for(ty, object, EXPECT_TIMEOUT).await {
            Ok(o) => o,
            Err(skipped) => panic!(
                "{}: timed out waiting for {ty:?} {object:#?}\nevents seen instead: {skipped:#?}",
                self.what
            ),
        }
    }

    /// Asserts that no event of type `ty` (with exactly `object`, if given) arrives within `wait`.
    pub async fn expect_none(&mut self, ty: EventType, object: Option<&K>, wait: Duration) {
        if let Ok(o) = self.wait_for(ty, object, wait).await {
            panic!("{}: unexpected {ty:?} notification: {o:#?}", self.what);
        }
    }
}
