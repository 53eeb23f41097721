//! NodeResourcesBalancedAllocation: prefers nodes whose CPU and memory utilisation would be
//! balanced after placing the pod: score = (1 - standard deviation of the fractions) * 100
//! (mirrors upstream `plugins/noderesources/balanced_allocation.go`).

use super::node_resources_fit::{ResourceSpec, requested_and_allocatable};
use crate::framework::*;
use serde::Deserialize;
use std::sync::Arc;

pub const NAME: &str = "NodeResourcesBalancedAllocation";

#[derive(Clone, Debug, Default, Deserialize)]
pub struct BalancedArgs {
    #[serde(default)]
    pub resources: Option<Vec<ResourceSpec>>,
}

pub struct BalancedAllocation {
    resources: Vec<String>,
}

impl BalancedAllocation {
    pub fn new(args: BalancedArgs) -> BalancedAllocation {
        let resources = args
            .resources
            .filter(|r| !r.is_empty())
            .map(|r| r.into_iter().map(|r| r.name).collect())
            .unwrap_or_else(|| vec!["cpu".into(), "memory".into()]);
        BalancedAllocation { resources }
    }
}

impl Plugin for BalancedAllocation {
    fn name(&self) -> &'static str {
        NAME
    }
    fn pre_score(self: Arc<Self>) -> Option<Arc<dyn PreScorePlugin>> {
        Some(self)
    }
    fn score(self: Arc<Self>) -> Option<Arc<dyn ScorePlugin>> {
        Some(self)
    }
    fn events(&self) -> &'static [ClusterEvent] {
        &[
            ClusterEvent::NodeAdd,
            ClusterEvent::NodeUpdate,
            ClusterEvent::AssignedPodDelete,
        ]
    }
}

impl PreScorePlugin for BalancedAllocation {
    fn name(&self) -> &'static str {
        NAME
    }
    /// Best-effort pods (requesting none of the resources) are not scored.
    fn pre_score(
        &self,
        _: &mut CycleState,
        pod: &PodInfo,
        _: &[Arc<NodeInfo>],
        _: &dyn SharedLister,
    ) -> Status {
        if self.resources.iter().all(|r| pod.requests.get(r) == 0) {
            Status::skip()
        } else {
            Status::success()
        }
    }
}

impl ScorePlugin for BalancedAllocation {
    fn name(&self) -> &'static str {
        NAME
    }
    fn score(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> (i64, Status) {
        let mut fractions = [0f64; 8];
        let mut n = 0usize;
        for r in &self.resources {
            let (req, alloc) = requested_and_allocatable(pod, node, r, false);
            if alloc == 0 || n == fractions.len() {
                continue;
            }
            fractions[n] = (req as f64 / alloc as f64).min(1.0);
            n += 1;
        }
        let std = match n {
            0 | 1 => 0.0,
            2 => ((fractions[0] - fractions[1]) / 2.0).abs(),
            _ => {
                let mean = fractions[..n].iter().sum::<f64>() / n as f64;
                let var = fractions[..n]
                    .iter()
                    .map(|f| (f - mean) * (f - mean))
                    .sum::<f64>()
                    / n as f64;
                var.sqrt()
            }
        };
        (
            ((1.0 - std) * MAX_NODE_SCORE as f64) as i64,
            Status::success(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::*;

    #[test]
    fn balanced_scores() {
        let ni = NodeInfo::new(Arc::new(node_with("a", "4", "8Gi", "110")));
        let st = CycleState::new();
        let b = BalancedAllocation::new(BalancedArgs::default());
        // cpu 1/4 = 0.25, memory 2/8 = 0.25: perfectly balanced.
        let p = PodInfo::new(Arc::new(pod_req("p", "1", "2Gi")));
        assert_eq!(b.score(&st, &p, &ni).0, 100);
        // cpu 2/4 = 0.5, memory 1/8 = 0.125: std 0.1875 -> 81.
        let p = PodInfo::new(Arc::new(pod_req("p", "2", "1Gi")));
        assert_eq!(b.score(&st, &p, &ni).0, 81);
        let mut st = CycleState::new();
        let none = PodInfo::new(Arc::new(pod("n")));
        assert!(b.pre_score(&mut st, &none, &[], &EmptyLister).is_skip());
    }
}
