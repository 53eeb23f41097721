//! Completion indexes of Indexed Jobs (mirrors upstream `pkg/controller/job/indexed_job_utils.go`):
//! the `1,3-5` interval notation of `completedIndexes`/`failedIndexes`, and the index
//! annotation/label of pods.

use k8s_openapi::api::core::v1::Pod;
use std::collections::BTreeSet;

pub const COMPLETION_INDEX_ANNOTATION: &str = "batch.kubernetes.io/job-completion-index";
pub const INDEX_FAILURE_COUNT_ANNOTATION: &str = "batch.kubernetes.io/job-index-failure-count";

/// A sorted set of indexes rendered as upstream's ordered intervals.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Indexes(pub BTreeSet<i32>);

impl Indexes {
    /// Parses `1,3-5`, dropping indexes `>= completions` and malformed parts (as upstream, which
    /// logs and skips them).
    pub fn parse(s: &str, completions: i32) -> Indexes {
        let mut set = BTreeSet::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (a, b) = match part.split_once('-') {
                Some((a, b)) => (a.parse::<i32>(), b.parse::<i32>()),
                None => (part.parse::<i32>(), part.parse::<i32>()),
            };
            let (Ok(a), Ok(b)) = (a, b) else { continue };
            if a < 0 || b < a {
                continue;
            }
            for i in a..=b.min(completions - 1) {
                set.insert(i);
            }
        }
        Indexes(set)
    }

    pub fn total(&self) -> usize {
        self.0.len()
    }

    pub fn has(&self, i: i32) -> bool {
        self.0.contains(&i)
    }

    /// The intervals `(first, last)`.
    pub fn intervals(&self) -> Vec<(i32, i32)> {
        let mut out: Vec<(i32, i32)> = Vec::new();
        for &i in &self.0 {
            match out.last_mut() {
                Some(last) if last.1 + 1 == i => last.1 = i,
                _ => out.push((i, i)),
            }
        }
        out
    }
}

impl std::fmt::Display for Indexes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self
            .intervals()
            .into_iter()
            .map(|(a, b)| {
                if a == b {
                    a.to_string()
                } else {
                    format!("{a}-{b}")
                }
            })
            .collect();
        f.write_str(&parts.join(","))
    }
}

/// The pod's completion index from its annotation (`None` if missing or invalid).
pub fn completion_index(pod: &Pod) -> Option<i32> {
    pod.metadata
        .annotations
        .as_ref()?
        .get(COMPLETION_INDEX_ANNOTATION)?
        .parse::<i32>()
        .ok()
        .filter(|i| *i >= 0)
}

/// The failure count carried by a pod of a Job with backoffLimitPerIndex.
pub fn index_failure_count(pod: &Pod) -> i32 {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(INDEX_FAILURE_COUNT_ANNOTATION))
        .and_then(|v| v.parse::<i32>().ok())
        .unwrap_or(0)
        .max(0)
}

/// Whether a successPolicy rule with `succeededIndexes` (and optional `succeededCount`) is met by
/// the succeeded indexes.
pub fn rule_met(required: &Indexes, succeeded: &Indexes, count: Option<i32>) -> bool {
    let overlap = required.0.intersection(&succeeded.0).count();
    overlap == required.total() || count.is_some_and(|c| overlap >= usize::try_from(c).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_intervals() {
        let i = Indexes::parse("0,2-4,7", 10);
        assert_eq!(i.total(), 5);
        assert_eq!(i.to_string(), "0,2-4,7");
        assert_eq!(Indexes::parse("1-20", 3).to_string(), "1-2");
        assert_eq!(Indexes::parse("x,3", 5).to_string(), "3");
        assert_eq!(Indexes::default().to_string(), "");
    }

    #[test]
    fn success_policy_rules() {
        let s = Indexes::parse("0-2,5", 10);
        assert!(rule_met(&Indexes::parse("0-1", 10), &s, None));
        assert!(!rule_met(&Indexes::parse("0-5", 10), &s, None));
        assert!(rule_met(&Indexes::parse("0-5", 10), &s, Some(4)));
    }
}
