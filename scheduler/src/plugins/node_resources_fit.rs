//! NodeResourcesFit: the node must have room for the pod's requests and pod count; scores by
//! the configured strategy (LeastAllocated by default, MostAllocated,
//! RequestedToCapacityRatio) over weighted resources (mirrors upstream
//! `plugins/noderesources/fit.go`, `least_allocated.go`, `most_allocated.go`,
//! `requested_to_capacity_ratio.go` and `resource_allocation.go`).

use crate::framework::*;
use serde::Deserialize;
use std::sync::Arc;

pub const NAME: &str = "NodeResourcesFit";

#[derive(Clone, Debug, Deserialize)]
pub struct ResourceSpec {
    pub name: String,
    #[serde(default = "one")]
    pub weight: i64,
}

fn one() -> i64 {
    1
}

#[derive(Clone, Debug, Deserialize)]
pub struct UtilizationShapePoint {
    pub utilization: i64,
    pub score: i64,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestedToCapacityRatio {
    #[serde(default)]
    pub shape: Vec<UtilizationShapePoint>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScoringStrategy {
    #[serde(rename = "type", default)]
    pub type_: Option<String>,
    #[serde(default)]
    pub resources: Option<Vec<ResourceSpec>>,
    #[serde(default)]
    pub requested_to_capacity_ratio: Option<RequestedToCapacityRatio>,
}

/// `NodeResourcesFitArgs`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FitArgs {
    #[serde(default)]
    pub ignored_resources: Vec<String>,
    #[serde(default)]
    pub ignored_resource_groups: Vec<String>,
    #[serde(default)]
    pub scoring_strategy: Option<ScoringStrategy>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    LeastAllocated,
    MostAllocated,
    RequestedToCapacityRatio,
}

pub struct Fit {
    ignored: Vec<String>,
    ignored_groups: Vec<String>,
    strategy: Strategy,
    resources: Vec<ResourceSpec>,
    /// (utilization 0..=100, score 0..=100)
    shape: Vec<(i64, i64)>,
}

fn default_resources() -> Vec<ResourceSpec> {
    vec![
        ResourceSpec {
            name: "cpu".into(),
            weight: 1,
        },
        ResourceSpec {
            name: "memory".into(),
            weight: 1,
        },
    ]
}

impl Fit {
    pub fn new(args: FitArgs) -> anyhow::Result<Fit> {
        let ss = args.scoring_strategy.unwrap_or_default();
        let strategy = match ss.type_.as_deref().unwrap_or("LeastAllocated") {
            "LeastAllocated" => Strategy::LeastAllocated,
            "MostAllocated" => Strategy::MostAllocated,
            "RequestedToCapacityRatio" => Strategy::RequestedToCapacityRatio,
            other => anyhow::bail!("scoringStrategy.type: Unsupported value: {other:?}"),
        };
        let resources = ss
            .resources
            .filter(|r| !r.is_empty())
            .unwrap_or_else(default_resources);
        for r in &resources {
            if !(1..=100).contains(&r.weight) {
                anyhow::bail!(
                    "resources[].weight: Invalid value: {}: resource weight of {} should be in the range [1, 100]",
                    r.weight,
                    r.name
                );
            }
        }
        let mut shape: Vec<(i64, i64)> = ss
            .requested_to_capacity_ratio
            .map(|r| {
                r.shape
                    .into_iter()
                    .map(|p| (p.utilization, p.score * (MAX_NODE_SCORE / 10)))
                    .collect()
            })
            .unwrap_or_default();
        if strategy == Strategy::RequestedToCapacityRatio && shape.is_empty() {
            shape = vec![(0, MAX_NODE_SCORE), (100, 0)];
        }
        Ok(Fit {
            ignored: args.ignored_resources,
            ignored_groups: args.ignored_resource_groups,
            strategy,
            resources,
            shape,
        })
    }

    fn ignored(&self, name: &str) -> bool {
        self.ignored.iter().any(|i| i == name)
            || name
                .split_once('/')
                .is_some_and(|(g, _)| self.ignored_groups.iter().any(|i| i == g))
    }

    fn shape_score(&self, utilization: i64) -> i64 {
        let s = &self.shape;
        if s.is_empty() {
            return 0;
        }
        if utilization <= s[0].0 {
            return s[0].1;
        }
        for w in s.windows(2) {
            let ((u0, s0), (u1, s1)) = (w[0], w[1]);
            if utilization <= u1 {
                return s0 + (s1 - s0) * (utilization - u0) / (u1 - u0).max(1);
            }
        }
        s[s.len() - 1].1
    }
}

/// One missing resource: its reason and whether preemption cannot help (the pod asks for
/// more than the node has at all).
pub struct Insufficient {
    pub reason: String,
    pub unresolvable: bool,
}

/// Upstream `fitsRequest`.
pub fn fits_request(fit: Option<&Fit>, pod: &PodInfo, node: &NodeInfo) -> Vec<Insufficient> {
    let mut out = Vec::new();
    let alloc = &node.allocatable;
    let used = &node.requested;
    let req = &pod.requests;
    if node.pods.len() as i64 + 1 > alloc.allowed_pod_number {
        out.push(Insufficient {
            reason: "Too many pods".into(),
            unresolvable: false,
        });
    }
    if req.milli_cpu == 0 && req.memory == 0 && req.ephemeral_storage == 0 && req.scalar.is_empty()
    {
        return out;
    }
    let mut check = |name: &str, want: i64, have: i64, used: i64| {
        if want > 0 && want > have - used {
            out.push(Insufficient {
                reason: format!("Insufficient {name}"),
                unresolvable: want > have,
            });
        }
    };
    check("cpu", req.milli_cpu, alloc.milli_cpu, used.milli_cpu);
    check("memory", req.memory, alloc.memory, used.memory);
    check(
        "ephemeral-storage",
        req.ephemeral_storage,
        alloc.ephemeral_storage,
        used.ephemeral_storage,
    );
    for (name, want) in &req.scalar {
        if *want == 0 || fit.is_some_and(|f| f.ignored(name)) {
            continue;
        }
        check(name, *want, alloc.scalar(name), used.scalar(name));
    }
    out
}

impl Plugin for Fit {
    fn name(&self) -> &'static str {
        NAME
    }
    fn filter(self: Arc<Self>) -> Option<Arc<dyn FilterPlugin>> {
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
            ClusterEvent::AssignedPodUpdate,
        ]
    }
}

impl FilterPlugin for Fit {
    fn name(&self) -> &'static str {
        NAME
    }
    fn filter(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let missing = fits_request(Some(self), pod, node);
        if missing.is_empty() {
            return Status::success();
        }
        let code = if missing.iter().any(|m| m.unresolvable) {
            Code::UnschedulableAndUnresolvable
        } else {
            Code::Unschedulable
        };
        Status::with_reasons(code, missing.into_iter().map(|m| m.reason).collect())
    }
}

/// Requested (with the pod) and allocatable amounts of `name` on the node; CPU and memory use
/// the non-zero defaults when `non_zero`.
pub fn requested_and_allocatable(
    pod: &PodInfo,
    node: &NodeInfo,
    name: &str,
    non_zero: bool,
) -> (i64, i64) {
    let alloc = node.allocatable.get(name);
    let req = match (name, non_zero) {
        ("cpu", true) => node.non_zero_requested.milli_cpu + pod.non_zero_requests.milli_cpu,
        ("memory", true) => node.non_zero_requested.memory + pod.non_zero_requests.memory,
        _ => node.requested.get(name) + pod.requests.get(name),
    };
    (req, alloc)
}

impl ScorePlugin for Fit {
    fn name(&self) -> &'static str {
        NAME
    }
    fn score(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> (i64, Status) {
        let mut total = 0i64;
        let mut weights = 0i64;
        for r in &self.resources {
            let (req, alloc) = requested_and_allocatable(pod, node, &r.name, true);
            if alloc == 0 {
                continue;
            }
            let s = match self.strategy {
                Strategy::LeastAllocated => {
                    if req > alloc {
                        0
                    } else {
                        (alloc - req) * MAX_NODE_SCORE / alloc
                    }
                }
                Strategy::MostAllocated => req.min(alloc) * MAX_NODE_SCORE / alloc,
                Strategy::RequestedToCapacityRatio => {
                    self.shape_score(req.min(alloc) * MAX_NODE_SCORE / alloc)
                }
            };
            total += s * r.weight;
            weights += r.weight;
        }
        if weights == 0 {
            return (0, Status::success());
        }
        let score = if self.strategy == Strategy::RequestedToCapacityRatio {
            ((total as f64) / (weights as f64)).round() as i64
        } else {
            total / weights
        };
        (score, Status::success())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::*;

    fn fit(strategy: &str) -> Fit {
        Fit::new(FitArgs {
            scoring_strategy: Some(ScoringStrategy {
                type_: Some(strategy.into()),
                ..Default::default()
            }),
            ..Default::default()
        })
        .unwrap()
    }

    #[test]
    fn filter_reports_each_missing_resource() {
        let mut ni = NodeInfo::new(Arc::new(node_with("a", "2", "4Gi", "2")));
        ni.add_pod(Arc::new(PodInfo::new(Arc::new(pod_req(
            "x", "1500m", "1Gi",
        )))));
        let st = CycleState::new();
        let f = fit("LeastAllocated");
        let big = PodInfo::new(Arc::new(pod_req("p", "1", "4Gi")));
        let s = f.filter(&st, &big, &ni);
        assert_eq!(s.reasons, vec!["Insufficient cpu", "Insufficient memory"]);
        // 4Gi is not more than the node has in total: preemption could help.
        assert_eq!(s.code, Code::Unschedulable);
        let huge = PodInfo::new(Arc::new(pod_req("h", "3", "1Mi")));
        let s = f.filter(&st, &huge, &ni);
        assert_eq!(s.code, Code::UnschedulableAndUnresolvable);
        assert_eq!(s.message(), "Insufficient cpu");
        ni.add_pod(Arc::new(PodInfo::new(Arc::new(pod_req("y", "0", "0")))));
        let small = PodInfo::new(Arc::new(pod_req("s", "100m", "1Mi")));
        let s = f.filter(&st, &small, &ni);
        assert_eq!(s.message(), "Too many pods");
        assert_eq!(s.code, Code::Unschedulable);
    }

    #[test]
    fn init_containers_and_sidecars_and_overhead() {
        let mut p = pod_req("p", "100m", "100Mi");
        let spec = p.spec.as_mut().unwrap();
        let mut init = spec.containers[0].clone();
        init.name = "init".into();
        init.resources = Some(requests("500m", "10Mi"));
        let mut sidecar = init.clone();
        sidecar.name = "side".into();
        sidecar.restart_policy = Some("Always".into());
        sidecar.resources = Some(requests("200m", "50Mi"));
        let mut late = init.clone();
        late.name = "late".into();
        late.resources = Some(requests("250m", "1Mi"));
        spec.init_containers = Some(vec![init, sidecar, late]);
        spec.overhead = Some([("cpu".to_string(), q("10m"))].into());
        let pi = PodInfo::new(Arc::new(p));
        // app 100m + sidecar 200m = 300m; init max(500m, 200m+250m) = 500m; + 10m overhead.
        assert_eq!(pi.requests.milli_cpu, 510);
        // memory: app 100Mi + sidecar 50Mi = 150Mi beats init max(10Mi, 51Mi).
        assert_eq!(pi.requests.memory, 150 * 1024 * 1024);
    }

    #[test]
    fn least_and_most_allocated_scores() {
        let ni = NodeInfo::new(Arc::new(node_with("a", "4", "8Gi", "110")));
        let p = PodInfo::new(Arc::new(pod_req("p", "1", "2Gi")));
        let st = CycleState::new();
        // cpu (4-1)/4 = 75, memory (8-2)/8 = 75.
        assert_eq!(fit("LeastAllocated").score(&st, &p, &ni).0, 75);
        assert_eq!(fit("MostAllocated").score(&st, &p, &ni).0, 25);
        // No requests: the non-zero defaults (100m, 200Mi) count for scoring.
        let none = PodInfo::new(Arc::new(pod("n")));
        let expect_cpu = (4000 - 100) * 100 / 4000;
        let mem = 8i64 * 1024 * 1024 * 1024;
        let expect_mem = (mem - 200 * 1024 * 1024) * 100 / mem;
        assert_eq!(
            fit("LeastAllocated").score(&st, &none, &ni).0,
            (expect_cpu + expect_mem) / 2
        );
    }
}
