//! Per-key exponential back-off as the kubelet uses it for crash loops and image pulls
//! (client-go `util/flowcontrol/backoff.go`): 10 s doubling to 300 s, forgotten after twice the
//! maximum without a failure.

use std::collections::HashMap;
use std::time::{Duration, Instant};

pub const INITIAL: Duration = Duration::from_secs(10);
pub const MAX: Duration = Duration::from_secs(300);

#[derive(Debug)]
struct Entry {
    delay: Duration,
    last: Instant,
    note: String,
}

#[derive(Debug, Default)]
pub struct Backoff {
    entries: HashMap<String, Entry>,
}

impl Backoff {
    /// Records a failure at `at`: the first delay is 10 s, then it doubles up to 300 s.
    pub fn next(&mut self, key: &str, at: Instant, note: String) -> Duration {
        self.gc(at);
        let e = self.entries.entry(key.to_string()).or_insert(Entry {
            delay: Duration::ZERO,
            last: at,
            note: String::new(),
        });
        e.delay = if e.delay.is_zero() {
            INITIAL
        } else {
            (e.delay * 2).min(MAX)
        };
        e.last = at;
        e.note = note;
        e.delay
    }

    /// The last failure's note while `key` is backing off.
    pub fn in_backoff(&self, key: &str, now: Instant) -> Option<String> {
        let e = self.entries.get(key)?;
        (now < e.last + e.delay).then(|| e.note.clone())
    }

    /// Whether `since` (e.g. when the container exited) is within the current delay; returns
    /// the delay and when it ends.
    pub fn in_backoff_since(
        &self,
        key: &str,
        since: Instant,
        now: Instant,
    ) -> Option<(Duration, Instant)> {
        let e = self.entries.get(key)?;
        let until = since + e.delay;
        (now < until).then_some((e.delay, until))
    }

    pub fn delay(&self, key: &str) -> Duration {
        self.entries
            .get(key)
            .map(|e| e.delay)
            .unwrap_or(Duration::ZERO)
    }

    /// When the key's current back-off ends.
    pub fn until(&self, key: &str) -> Option<Instant> {
        self.entries.get(key).map(|e| e.last + e.delay)
    }

    pub fn reset(&mut self, key: &str) {
        self.entries.remove(key);
    }

    fn gc(&mut self, now: Instant) {
        self.entries
            .retain(|_, e| now.saturating_duration_since(e.last) < MAX * 2);
    }
}

/// Go's `time.Duration.String()` for whole seconds: `10s`, `1m20s`, `5m0s`.
pub fn go_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s < 60 {
        format!("{s}s")
    } else {
        format!("{}m{}s", s / 60, s % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_the_maximum() {
        let mut b = Backoff::default();
        let t = Instant::now();
        let delays: Vec<u64> = (0..7)
            .map(|_| b.next("k", t, String::new()).as_secs())
            .collect();
        assert_eq!(delays, vec![10, 20, 40, 80, 160, 300, 300]);
        assert!(b.in_backoff("k", t + Duration::from_secs(299)).is_some());
        assert!(b.in_backoff("k", t + Duration::from_secs(300)).is_none());
        assert!(b.in_backoff("other", t).is_none());
    }

    #[test]
    fn formats_like_go() {
        assert_eq!(go_duration(Duration::from_secs(10)), "10s");
        assert_eq!(go_duration(Duration::from_secs(80)), "1m20s");
        assert_eq!(go_duration(Duration::from_secs(300)), "5m0s");
    }
}
