//! Cached probe results, one map per probe type keyed by container ID (upstream
//! `pkg/kubelet/prober/results/results_manager.go`).

use std::collections::HashMap;

/// The outcome of a probe as cached for a container (upstream `results.Result`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ProbeResult {
    /// Not probed yet (startup probes start here).
    Unknown,
    Success,
    Failure,
}

/// The results of one probe type. Keys are runtime container IDs without the `<runtime>://`
/// prefix, so both spellings find the same entry.
#[derive(Default)]
pub(crate) struct Cache {
    by_container: HashMap<String, ProbeResult>,
}

/// `containerd://abc` and `abc` name the same container.
pub(crate) fn container_key(id: &str) -> &str {
    id.split_once("://").map(|(_, rest)| rest).unwrap_or(id)
}

impl Cache {
    pub(crate) fn get(&self, container_id: &str) -> Option<ProbeResult> {
        self.by_container.get(container_key(container_id)).copied()
    }

    /// Stores a result; true when it differs from the cached one (a new entry counts as a
    /// change, as upstream's `updateCache`).
    pub(crate) fn set(&mut self, container_id: &str, result: ProbeResult) -> bool {
        let key = container_key(container_id).to_string();
        self.by_container.insert(key, result) != Some(result)
    }

    pub(crate) fn remove(&mut self, container_id: &str) {
        self.by_container.remove(container_key(container_id));
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.by_container.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_reports_changes_and_keys_ignore_the_runtime_prefix() {
        let mut c = Cache::default();
        assert!(c.set("containerd://abc", ProbeResult::Failure));
        assert!(!c.set("abc", ProbeResult::Failure));
        assert_eq!(c.get("abc"), Some(ProbeResult::Failure));
        assert!(c.set("abc", ProbeResult::Success));
        assert_eq!(c.get("containerd://abc"), Some(ProbeResult::Success));
        c.remove("containerd://abc");
        assert_eq!(c.get("abc"), None);
        assert_eq!(c.len(), 0);
    }
}
