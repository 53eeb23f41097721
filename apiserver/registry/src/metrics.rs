//! Metrics the registry keeps itself: upstream's watch-cache counters.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

type ConsistentReadKey = (&'static str, &'static str, bool, bool);

/// (group, resource, success, fallback) -> count.
static CONSISTENT_READS: Mutex<BTreeMap<ConsistentReadKey, u64>> = Mutex::new(BTreeMap::new());

/// Counts one consistent LIST: served from the watch cache (`fallback` false) or, when the
/// cache could not catch up in time, from storage; `success` is whether it was answered.
pub fn consistent_read(group: &'static str, resource: &'static str, success: bool, fallback: bool) {
    *CONSISTENT_READS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry((group, resource, success, fallback))
        .or_default() += 1;
}

/// `apiserver_watch_cache_consistent_read_total` in the Prometheus text format.
pub fn render(out: &mut String) {
    let name = "apiserver_watch_cache_consistent_read_total";
    let _ = writeln!(
        out,
        "# HELP {name} [ALPHA] Counter for consistent reads from cache."
    );
    let _ = writeln!(out, "# TYPE {name} counter");
    let counts = CONSISTENT_READS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    for ((group, resource, success, fallback), n) in counts {
        let _ = writeln!(
            out,
            "{name}{{fallback=\"{fallback}\",group=\"{group}\",resource=\"{resource}\",success=\"{success}\"}} {n}"
        );
    }
}
