//! One scheduling cycle and the binding cycle it hands off to (mirrors upstream
//! `pkg/scheduler/schedule_one.go`): snapshot, PreFilter, Filter over a sample of nodes
//! (`percentageOfNodesToScore`, adaptive by default) starting where the last cycle stopped,
//! PreScore/Score, host selection; then assume, Reserve, Permit, and bind asynchronously.
//! Failures run PostFilter (preemption), set PodScheduled=False, emit FailedScheduling and
//! re-queue the pod.

use crate::cache::{Cache, Snapshot};
use crate::framework::runtime::Framework;
use crate::framework::*;
use crate::queue::{QueuedPod, SchedulingQueue};
use component_base::Informer;
use component_base::events::Recorder;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams};
use rand::Rng;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

pub const NO_NODES_AVAILABLE: &str = "no nodes available to schedule pods";
const MIN_FEASIBLE_NODES: usize = 100;
const MIN_FEASIBLE_PERCENTAGE: i32 = 5;

/// How many feasible nodes to look for among `n` (upstream `numFeasibleNodesToFind`).
pub fn num_feasible_nodes_to_find(percentage: i32, n: usize) -> usize {
    if n < MIN_FEASIBLE_NODES || percentage >= 100 {
        return n;
    }
    let mut p = percentage;
    if p <= 0 {
        p = (50 - (n / 125) as i64).max(MIN_FEASIBLE_PERCENTAGE as i64) as i32;
    }
    (n * p as usize / 100).max(MIN_FEASIBLE_NODES)
}

/// Why a cycle found no node.
pub enum Failure {
    Fit(FitError),
    Error(String),
}

/// What the scheduling loop and binding tasks share.
pub struct Shared {
    pub cache: Arc<Cache>,
    pub queue: Arc<SchedulingQueue>,
    pub client: Option<kube::Client>,
    pub recorders: HashMap<String, Recorder>,
    pub pods: Option<Arc<Informer<Pod>>>,
    pub metrics: Option<Arc<crate::metrics::Metrics>>,
}

/// The scheduling loop's own state.
pub struct Scheduler {
    pub shared: Arc<Shared>,
    pub profiles: HashMap<String, Arc<Framework>>,
    pub snapshot: Snapshot,
    pub percentage_of_nodes_to_score: i32,
    next_start: usize,
    feasible: Vec<Arc<NodeInfo>>,
    scores: Vec<i64>,
    rng: TieBreaker,
}

impl Scheduler {
    pub fn new(
        shared: Arc<Shared>,
        profiles: HashMap<String, Arc<Framework>>,
        percentage: i32,
    ) -> Self {
        Scheduler {
            shared,
            profiles,
            snapshot: Snapshot::default(),
            percentage_of_nodes_to_score: percentage,
            next_start: 0,
            feasible: Vec::new(),
            scores: Vec::new(),
            rng: TieBreaker::new(),
        }
    }

    /// Schedules pods until the queue closes.
    pub async fn run(mut self) {
        while let Some(qp) = self.shared.queue.pop().await {
            self.schedule_one(qp).await;
            // pop() does not yield while pods wait: let this worker's other tasks run.
            tokio::task::consume_budget().await;
        }
    }

    pub async fn schedule_one(&mut self, qp: QueuedPod) {
        let shared = self.shared.clone();
        let pod = qp.info.clone();
        let name = pod
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.scheduler_name.clone())
            .unwrap_or_else(|| "default-scheduler".into());
        let Some(fw) = self.profiles.get(&name).cloned() else {
            shared.queue.done(&pod.key);
            return;
        };
        if pod.is_terminating() || shared.cache.is_assumed(&pod.key) {
            shared.queue.done(&pod.key);
            return;
        }
        shared.cache.update_snapshot(&mut self.snapshot);
        let mut state = CycleState::new();
        let node = match self.schedule_pod(&fw, &mut state, &pod) {
            Ok(n) => n,
            Err(f) => return self.fail(&fw, &state, qp, f).await,
        };
        let assumed = Arc::new(pod.with_node(&node));
        if let Err(e) = shared.cache.assume_pod(assumed.clone()) {
            return self.fail(&fw, &state, qp, Failure::Error(e)).await;
        }
        let st = fw.run_reserve(&mut state, &assumed, &node);
        if !st.is_success() {
            fw.run_unreserve(&mut state, &assumed, &node);
            shared.cache.forget_pod(&pod.key);
            return self
                .fail(
                    &fw,
                    &state,
                    qp,
                    status_failure(&st, self.snapshot.nodes.len()),
                )
                .await;
        }
        let (st, wait) = fw.run_permit(&state, &assumed, &node);
        if !st.is_success() && st.code != Code::Wait {
            fw.run_unreserve(&mut state, &assumed, &node);
            shared.cache.forget_pod(&pod.key);
            return self
                .fail(
                    &fw,
                    &state,
                    qp,
                    status_failure(&st, self.snapshot.nodes.len()),
                )
                .await;
        }
        shared.queue.nominator.remove(&pod.key);
        tokio::spawn(binding_cycle(shared, fw, state, assumed, node, qp, wait));
    }

    /// Finds the node for `pod` (upstream `schedulePod`).
    pub fn schedule_pod(
        &mut self,
        fw: &Framework,
        state: &mut CycleState,
        pod: &PodInfo,
    ) -> Result<String, Failure> {
        let n_all = self.snapshot.nodes.len();
        if n_all == 0 {
            return Err(Failure::Error(NO_NODES_AVAILABLE.into()));
        }
        self.find_nodes_that_fit(fw, state, pod)?;
        if self.feasible.len() == 1 {
            return Ok(self.feasible[0].name.clone());
        }
        let feasible = std::mem::take(&mut self.feasible);
        let st = fw.run_pre_score(state, pod, &feasible, &self.snapshot);
        if !st.is_success() {
            self.feasible = feasible;
            return Err(Failure::Error(st.message()));
        }
        let mut scores = std::mem::take(&mut self.scores);
        let st = fw.run_score(state, pod, &feasible, &mut scores);
        let result = if st.is_success() {
            Ok(select_host(&feasible, &scores, &mut self.rng))
        } else {
            Err(Failure::Error(st.message()))
        };
        self.scores = scores;
        self.feasible = feasible;
        result
    }

    fn find_nodes_that_fit(
        &mut self,
        fw: &Framework,
        state: &mut CycleState,
        pod: &PodInfo,
    ) -> Result<(), Failure> {
        self.feasible.clear();
        let snap = &self.snapshot;
        let n_all = snap.nodes.len();
        let mut fit = FitError {
            num_all_nodes: n_all,
            ..Default::default()
        };
        let (pre, st) = fw.run_pre_filter(state, pod, snap);
        if !st.is_success() {
            if !st.is_rejected() {
                return Err(Failure::Error(st.message()));
            }
            fit.pre_filter_msg = st.message();
            fit.unschedulable_plugins.insert(st.plugin.clone());
            fit.absent_status = Some(st);
            return Err(Failure::Fit(fit));
        }
        if let Some(nom) = pod
            .pod
            .status
            .as_ref()
            .and_then(|s| s.nominated_node_name.as_deref())
            && let Some(n) = snap.get(nom)
            && fw
                .run_filter_with_nominated(state, pod, n, snap)
                .is_success()
        {
            self.feasible.push(n.clone());
            return Ok(());
        }
        let subset: Option<Vec<Arc<NodeInfo>>> = pre
            .and_then(|r| r.node_names)
            .map(|names| names.iter().filter_map(|n| snap.get(n).cloned()).collect());
        if subset.is_some() {
            fit.absent_status = Some(Status::unresolvable(
                "node(s) didn't satisfy plugin(s) [NodeAffinity]",
            ));
        }
        let nodes: &[Arc<NodeInfo>] = subset.as_deref().unwrap_or(&snap.nodes);
        let len = nodes.len();
        let want = num_feasible_nodes_to_find(
            fw.percentage_of_nodes_to_score
                .unwrap_or(self.percentage_of_nodes_to_score),
            len,
        );
        let start = if subset.is_some() || len == 0 {
            0
        } else {
            self.next_start % len
        };
        let mut processed = 0;
        for i in 0..len {
            let n = &nodes[(start + i) % len];
            processed += 1;
            let st = fw.run_filter_with_nominated(state, pod, n, snap);
            if st.is_success() {
                self.feasible.push(n.clone());
                if self.feasible.len() >= want {
                    break;
                }
            } else if st.is_rejected() {
                fit.unschedulable_plugins.insert(st.plugin.clone());
                fit.node_statuses.insert(n.name.clone(), st);
            } else {
                return Err(Failure::Error(st.message()));
            }
        }
        if subset.is_none() && len > 0 {
            self.next_start = (start + processed) % len;
        }
        if self.feasible.is_empty() {
            return Err(Failure::Fit(fit));
        }
        Ok(())
    }

    async fn fail(&mut self, fw: &Arc<Framework>, state: &CycleState, qp: QueuedPod, f: Failure) {
        let (message, reason, plugins, nominate) = match f {
            // Upstream reports "no nodes" as UnschedulableAndUnresolvable: reason Unschedulable.
            Failure::Error(e) if e == NO_NODES_AVAILABLE => {
                (e, "Unschedulable", HashSet::new(), None)
            }
            Failure::Error(e) => (e, "SchedulerError", HashSet::new(), None),
            Failure::Fit(mut fit) => {
                let mut nominate = None;
                if !fw.post_filter.is_empty() {
                    let (r, st) = fw
                        .run_post_filter(PostFilterContext {
                            state,
                            pod: &qp.info,
                            lister: &self.snapshot,
                            node_statuses: &fit.node_statuses,
                            absent_status: fit.absent_status.as_ref(),
                            framework: fw,
                        })
                        .await;
                    fit.post_filter_msg = st.message();
                    nominate = r.and_then(|r| r.nominated_node_name);
                }
                let plugins = std::mem::take(&mut fit.unschedulable_plugins);
                (fit.to_string(), "Unschedulable", plugins, nominate)
            }
        };
        if let Some(m) = &self.shared.metrics {
            let result = if reason == "Unschedulable" {
                "unschedulable"
            } else {
                "error"
            };
            m.attempt(result, &fw.scheduler_name);
        }
        handle_failure(
            &self.shared,
            &fw.scheduler_name,
            qp,
            message,
            reason,
            plugins,
            nominate,
        )
        .await;
    }
}

fn status_failure(st: &Status, n_all: usize) -> Failure {
    if st.is_rejected() {
        let mut fit = FitError {
            num_all_nodes: n_all,
            pre_filter_msg: st.message(),
            ..Default::default()
        };
        fit.unschedulable_plugins.insert(st.plugin.clone());
        Failure::Fit(fit)
    } else {
        Failure::Error(st.message())
    }
}

/// A cheap generator for tie-breaking (xorshift64*), seeded once per scheduler.
pub struct TieBreaker(u64);

impl TieBreaker {
    pub fn new() -> Self {
        TieBreaker(rand::rng().random::<u64>() | 1)
    }
    fn below(&mut self, n: u32) -> u32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        ((self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) % n as u64) as u32
    }
}

impl Default for TieBreaker {
    fn default() -> Self {
        Self::new()
    }
}

/// The highest total score; ties broken uniformly at random (reservoir sampling).
pub fn select_host(nodes: &[Arc<NodeInfo>], scores: &[i64], rng: &mut TieBreaker) -> String {
    let mut best = 0;
    let mut ties = 0u32;
    for (i, s) in scores.iter().enumerate() {
        if *s > scores[best] {
            best = i;
            ties = 1;
        } else if *s == scores[best] {
            ties += 1;
            if rng.below(ties) == 0 {
                best = i;
            }
        }
    }
    nodes[best].name.clone()
}

/// Records the failure on the pod (condition, nominated node, event) and re-queues it
/// (upstream `handleSchedulingFailure`), unless it was deleted or bound meanwhile.
pub async fn handle_failure(
    shared: &Arc<Shared>,
    profile: &str,
    mut qp: QueuedPod,
    message: String,
    reason: &str,
    plugins: HashSet<String>,
    nominate: Option<String>,
) {
    tracing::debug!(pod = %qp.info.key, %message, "unable to schedule pod");
    if let Some(pods) = &shared.pods {
        match pods.get_by_key(&qp.info.key) {
            None => {
                shared.queue.done(&qp.info.key);
                return;
            }
            Some(latest) => {
                let same_uid = latest.metadata.uid == qp.info.pod.metadata.uid;
                let assigned = latest
                    .spec
                    .as_ref()
                    .and_then(|s| s.node_name.as_deref())
                    .is_some_and(|n| !n.is_empty());
                if !same_uid || assigned {
                    shared.queue.done(&qp.info.key);
                    return;
                }
                if latest.metadata.resource_version != qp.info.pod.metadata.resource_version {
                    qp.info = Arc::new(PodInfo::new(latest));
                }
            }
        }
    }
    let info = qp.info.clone();
    if let Some(n) = &nominate {
        shared.queue.nominator.set(&info, Some(n.as_str()));
    }
    qp.unschedulable_plugins = plugins;
    shared.queue.add_unschedulable(qp);
    if let Some(r) = shared.recorders.get(profile) {
        r.warning(
            &*info.pod,
            "FailedScheduling",
            "Scheduling",
            message.clone(),
        );
    }
    if let Some(client) = shared.client.clone() {
        let current = info.pod.status.as_ref();
        let cond = current
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == "PodScheduled"));
        let same = cond.is_some_and(|c| {
            c.status == "False"
                && c.reason.as_deref() == Some(reason)
                && c.message.as_deref() == Some(message.as_str())
        });
        let nominated_now = current
            .and_then(|s| s.nominated_node_name.clone())
            .unwrap_or_default();
        let nominated_changed = nominate.as_ref().is_some_and(|n| *n != nominated_now);
        if same && !nominated_changed {
            return;
        }
        let transition = match cond {
            Some(c) if c.status == "False" => {
                c.last_transition_time.as_ref().map(|t| t.0.to_string())
            }
            _ => None,
        }
        .unwrap_or_else(|| {
            jiff::Timestamp::now()
                .round(jiff::Unit::Second)
                .unwrap_or(jiff::Timestamp::now())
                .to_string()
        });
        let mut status = serde_json::json!({
            "conditions": [{
                "type": "PodScheduled",
                "status": "False",
                "reason": reason,
                "message": message,
                "lastProbeTime": null,
                "lastTransitionTime": transition,
            }]
        });
        if let Some(n) = nominate {
            status["nominatedNodeName"] = if n.is_empty() {
                serde_json::Value::Null
            } else {
                n.into()
            };
        }
        let patch = serde_json::json!({ "status": status });
        let api: Api<Pod> = Api::namespaced(client, &info.namespace);
        let name = info.name.clone();
        tokio::spawn(async move {
            if let Err(e) = api
                .patch_status(&name, &PatchParams::default(), &Patch::Strategic(patch))
                .await
            {
                tracing::debug!(pod = %name, error = %e, "updating the pod's PodScheduled condition failed");
            }
        });
    }
}

/// Waits for Permit, runs PreBind and Bind; a failure forgets the assumption, frees what it
/// held for other pods and re-queues the pod.
async fn binding_cycle(
    shared: Arc<Shared>,
    fw: Arc<Framework>,
    mut state: CycleState,
    pod: Arc<PodInfo>,
    node: String,
    qp: QueuedPod,
    wait: std::time::Duration,
) {
    if !wait.is_zero() {
        tokio::time::sleep(wait).await;
    }
    let mut st = fw.run_pre_bind(&pod, &node).await;
    if st.is_success() {
        st = fw.run_bind(&pod, &node).await;
    }
    if !st.is_success() {
        fw.run_unreserve(&mut state, &pod, &node);
        shared.cache.forget_pod(&pod.key);
        shared.queue.move_all(ClusterEvent::AssignedPodDelete);
        if let Some(m) = &shared.metrics {
            m.attempt("error", &fw.scheduler_name);
        }
        let plugins = HashSet::new();
        handle_failure(
            &shared,
            &fw.scheduler_name,
            qp,
            st.message(),
            "SchedulerError",
            plugins,
            None,
        )
        .await;
        return;
    }
    shared.queue.done(&pod.key);
    if let Some(m) = &shared.metrics {
        m.attempt("scheduled", &fw.scheduler_name);
    }
    tracing::debug!(pod = %pod.key, %node, "bound pod");
    if let Some(r) = shared.recorders.get(&fw.scheduler_name) {
        r.normal(
            &*pod.pod,
            "Scheduled",
            "Binding",
            format!(
                "Successfully assigned {}/{} to {node}",
                pod.namespace, pod.name
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::*;

    fn scheduler(nodes: usize) -> Scheduler {
        let cache = Arc::new(Cache::new());
        for i in 0..nodes {
            let z = format!("zone-{}", i % 10);
            cache.add_node(Arc::new(labeled_node(
                &format!("n{i}"),
                &[("topology.kubernetes.io/zone", z.as_str())],
            )));
        }
        let nominator: Arc<crate::framework::runtime::Nominator> = Arc::default();
        let fw = crate::config::build_framework(
            &Default::default(),
            &Default::default(),
            nominator.clone(),
        )
        .unwrap();
        let shared = Arc::new(Shared {
            cache,
            queue: Arc::new(SchedulingQueue::new(nominator, HashMap::new())),
            client: None,
            recorders: HashMap::new(),
            pods: None,
            metrics: None,
        });
        Scheduler::new(
            shared,
            HashMap::from([("default-scheduler".to_string(), Arc::new(fw))]),
            0,
        )
    }

    /// Schedules `n` pods without an API server (what one cycle costs, bind excluded).
    fn run_cycles(s: &mut Scheduler, n: usize) -> Vec<String> {
        let fw = s.profiles["default-scheduler"].clone();
        let mut placed = vec![];
        for i in 0..n {
            let pi = PodInfo::new(Arc::new(pod_req(&format!("p{i}"), "100m", "500Mi")));
            s.shared.cache.update_snapshot(&mut s.snapshot);
            let mut st = CycleState::new();
            let Ok(node) = s.schedule_pod(&fw, &mut st, &pi) else {
                panic!("pod {i} did not fit");
            };
            s.shared
                .cache
                .assume_pod(Arc::new(pi.with_node(&node)))
                .unwrap();
            placed.push(node);
        }
        placed
    }

    #[test]
    fn cycles_spread_pods_and_sample_nodes_round_robin() {
        let mut s = scheduler(300);
        let placed = run_cycles(&mut s, 300);
        let mut per_node: HashMap<&String, usize> = HashMap::new();
        for n in &placed {
            *per_node.entry(n).or_default() += 1;
        }
        // LeastAllocated spreads: nearly every pod lands on an empty node (a sampled window
        // may hold only occupied ones).
        assert!(per_node.len() >= 280, "{}", per_node.len());
        assert!(per_node.values().all(|c| *c <= 2));
    }

    /// Rough cost of a cycle on 5000 nodes: `cargo test -p scheduler --release -- --ignored
    /// --nocapture cycle_cost`.
    #[test]
    #[ignore]
    fn cycle_cost_on_5000_nodes() {
        let mut s = scheduler(5000);
        let n = 2000;
        let t = std::time::Instant::now();
        run_cycles(&mut s, n);
        let per = t.elapsed() / n as u32;
        println!(
            "{n} cycles on 5000 nodes: {per:?} per pod ({:.0} pods/s)",
            1.0 / per.as_secs_f64()
        );
    }

    #[test]
    fn adaptive_percentage_of_nodes_to_score() {
        assert_eq!(num_feasible_nodes_to_find(0, 50), 50);
        assert_eq!(num_feasible_nodes_to_find(0, 99), 99);
        // 50 - 1000/125 = 42 %
        assert_eq!(num_feasible_nodes_to_find(0, 1000), 420);
        // 50 - 5000/125 = 10 %
        assert_eq!(num_feasible_nodes_to_find(0, 5000), 500);
        // at least 5 %
        assert_eq!(num_feasible_nodes_to_find(0, 10000), 500);
        // at least 100 nodes
        assert_eq!(num_feasible_nodes_to_find(1, 2000), 100);
        assert_eq!(num_feasible_nodes_to_find(100, 2000), 2000);
    }
}
