//! Controller expectations (mirrors upstream pkg/controller/controller_utils.go
//! `ControllerExpectations` and `UIDTrackingControllerExpectations`): how many creations and
//! which deletions a controller has asked for and not yet seen in its informer, so that a slow
//! watch never makes it create or delete twice. Expectations expire after five minutes.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Upstream `ExpectationsTimeout`.
pub const EXPECTATIONS_TIMEOUT: Duration = Duration::from_secs(5 * 60);

#[derive(Debug)]
struct Expectation {
    add: i64,
    del: i64,
    set_at: Instant,
    /// Keys (`ns/name`) of objects whose deletion is awaited.
    deleting: HashSet<String>,
}

/// Expectations keyed by controller key (`ns/name`).
#[derive(Debug, Default)]
pub struct Expectations {
    inner: Mutex<HashMap<String, Expectation>>,
}

impl Expectations {
    /// Whether the controller may act: nothing is awaited, or what was awaited was seen, or the
    /// expectation expired.
    pub fn satisfied(&self, key: &str) -> bool {
        let map = self.inner.lock().expect("expectations");
        match map.get(key) {
            None => true,
            Some(e) => (e.add <= 0 && e.del <= 0) || e.set_at.elapsed() > EXPECTATIONS_TIMEOUT,
        }
    }

    /// Awaits `n` creations (replacing any earlier expectation).
    pub fn expect_creations(&self, key: &str, n: usize) {
        self.inner.lock().expect("expectations").insert(
            key.to_string(),
            Expectation {
                add: n as i64,
                del: 0,
                set_at: Instant::now(),
                deleting: HashSet::new(),
            },
        );
    }

    /// Awaits the deletion of the objects with these keys (replacing any earlier expectation).
    pub fn expect_deletions(&self, key: &str, deleted: Vec<String>) {
        let deleting: HashSet<String> = deleted.into_iter().collect();
        self.inner.lock().expect("expectations").insert(
            key.to_string(),
            Expectation {
                add: 0,
                del: deleting.len() as i64,
                set_at: Instant::now(),
                deleting,
            },
        );
    }

    /// One awaited creation was seen (or will never happen).
    pub fn creation_observed(&self, key: &str) {
        if let Some(e) = self.inner.lock().expect("expectations").get_mut(key) {
            e.add -= 1;
        }
    }

    /// The deletion of `object_key` was seen (or will never happen); counted once per object.
    pub fn deletion_observed(&self, key: &str, object_key: &str) {
        if let Some(e) = self.inner.lock().expect("expectations").get_mut(key)
            && e.deleting.remove(object_key)
        {
            e.del -= 1;
        }
    }

    /// Forgets the controller (it was deleted).
    pub fn delete(&self, key: &str) {
        self.inner.lock().expect("expectations").remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creations_and_deletions_are_awaited_once() {
        let e = Expectations::default();
        assert!(e.satisfied("ns/rs"));
        e.expect_creations("ns/rs", 2);
        assert!(!e.satisfied("ns/rs"));
        e.creation_observed("ns/rs");
        assert!(!e.satisfied("ns/rs"));
        e.creation_observed("ns/rs");
        assert!(e.satisfied("ns/rs"));

        e.expect_deletions("ns/rs", vec!["ns/a".into(), "ns/b".into()]);
        e.deletion_observed("ns/rs", "ns/a");
        e.deletion_observed("ns/rs", "ns/a");
        assert!(!e.satisfied("ns/rs"), "one deletion counted twice");
        e.deletion_observed("ns/rs", "ns/other");
        assert!(!e.satisfied("ns/rs"));
        e.deletion_observed("ns/rs", "ns/b");
        assert!(e.satisfied("ns/rs"));
        e.expect_creations("ns/rs", 1);
        e.delete("ns/rs");
        assert!(e.satisfied("ns/rs"));
    }
}
