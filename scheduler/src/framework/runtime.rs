//! One profile's plugins and how each extension point runs them (mirrors upstream
//! `pkg/scheduler/framework/runtime/framework.go`): in configured order, stopping at the
//! first rejection for Filter, weighting normalised scores, recording the failing plugin.
//! Also the nominator (pods nominated to nodes by preemption), whose pods Filter counts.

use super::*;
use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

/// Pods nominated to run on a node (upstream `nominator`).
#[derive(Default)]
pub struct Nominator {
    inner: Mutex<NominatorInner>,
    /// Number of nominated pods (read without the lock on every Filter).
    count: std::sync::atomic::AtomicUsize,
}

#[derive(Default)]
struct NominatorInner {
    by_node: HashMap<String, Vec<Arc<PodInfo>>>,
    node_of: HashMap<String, String>,
}

impl Nominator {
    /// Records (or with `node = None` clears) the nomination of `pod`.
    pub fn set(&self, pod: &Arc<PodInfo>, node: Option<&str>) {
        if node.is_none_or(str::is_empty) && self.is_empty() {
            return;
        }
        let mut g = self.inner.lock().expect("nominator");
        if let Some(old) = g.node_of.remove(&pod.key)
            && let Some(v) = g.by_node.get_mut(&old)
        {
            v.retain(|p| p.key != pod.key);
            if v.is_empty() {
                g.by_node.remove(&old);
            }
        }
        if let Some(node) = node.filter(|n| !n.is_empty()) {
            g.node_of.insert(pod.key.clone(), node.to_string());
            g.by_node
                .entry(node.to_string())
                .or_default()
                .push(pod.clone());
        }
        self.count
            .store(g.node_of.len(), std::sync::atomic::Ordering::Relaxed);
    }

    pub fn remove(&self, key: &str) {
        if self.is_empty() {
            return;
        }
        let mut g = self.inner.lock().expect("nominator");
        if let Some(old) = g.node_of.remove(key)
            && let Some(v) = g.by_node.get_mut(&old)
        {
            v.retain(|p| p.key != key);
            if v.is_empty() {
                g.by_node.remove(&old);
            }
        }
        self.count
            .store(g.node_of.len(), std::sync::atomic::Ordering::Relaxed);
    }

    pub fn pods_on(&self, node: &str) -> Vec<Arc<PodInfo>> {
        let g = self.inner.lock().expect("nominator");
        g.by_node.get(node).cloned().unwrap_or_default()
    }

    pub fn is_empty(&self) -> bool {
        self.count.load(std::sync::atomic::Ordering::Relaxed) == 0
    }
}

/// A profile: its scheduler name and its plugins per extension point.
pub struct Framework {
    pub scheduler_name: String,
    pub pre_filter: Vec<Arc<dyn PreFilterPlugin>>,
    pub filter: Vec<Arc<dyn FilterPlugin>>,
    pub post_filter: Vec<Arc<dyn PostFilterPlugin>>,
    pub pre_score: Vec<Arc<dyn PreScorePlugin>>,
    pub score: Vec<(Arc<dyn ScorePlugin>, i64)>,
    pub reserve: Vec<Arc<dyn ReservePlugin>>,
    pub permit: Vec<Arc<dyn PermitPlugin>>,
    pub pre_bind: Vec<Arc<dyn PreBindPlugin>>,
    pub bind: Vec<Arc<dyn BindPlugin>>,
    /// Events each enabled plugin registered.
    pub events: HashMap<String, &'static [ClusterEvent]>,
    pub percentage_of_nodes_to_score: Option<i32>,
    pub nominator: Arc<Nominator>,
}

impl Framework {
    pub fn empty(scheduler_name: &str) -> Framework {
        Framework {
            scheduler_name: scheduler_name.to_string(),
            pre_filter: vec![],
            filter: vec![],
            post_filter: vec![],
            pre_score: vec![],
            score: vec![],
            reserve: vec![],
            permit: vec![],
            pre_bind: vec![],
            bind: vec![],
            events: HashMap::new(),
            percentage_of_nodes_to_score: None,
            nominator: Arc::default(),
        }
    }

    /// Adds `plugin` at every extension point it implements (`weight` for Score).
    pub fn add_multi_point(&mut self, plugin: Arc<dyn Plugin>, weight: i64) {
        self.events
            .insert(plugin.name().to_string(), plugin.events());
        if let Some(p) = plugin.clone().pre_filter() {
            self.pre_filter.push(p);
        }
        if let Some(p) = plugin.clone().filter() {
            self.filter.push(p);
        }
        if let Some(p) = plugin.clone().post_filter() {
            self.post_filter.push(p);
        }
        if let Some(p) = plugin.clone().pre_score() {
            self.pre_score.push(p);
        }
        if let Some(p) = plugin.clone().score() {
            self.score.push((p, weight));
        }
        if let Some(p) = plugin.clone().reserve() {
            self.reserve.push(p);
        }
        if let Some(p) = plugin.clone().permit() {
            self.permit.push(p);
        }
        if let Some(p) = plugin.clone().pre_bind() {
            self.pre_bind.push(p);
        }
        if let Some(p) = plugin.bind() {
            self.bind.push(p);
        }
    }

    /// Runs PreFilter; intersects the node sets plugins narrow to. A rejection carries the
    /// failing plugin.
    pub fn run_pre_filter(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        lister: &dyn SharedLister,
    ) -> (Option<PreFilterResult>, Status) {
        let mut result: Option<BTreeSet<String>> = None;
        for p in &self.pre_filter {
            let (r, st) = p.pre_filter(state, pod, lister);
            if st.is_skip() {
                state.skip_filter.push(p.name());
                continue;
            }
            if !st.is_success() {
                return (None, st.with_plugin(p.name()));
            }
            if let Some(names) = r.and_then(|r| r.node_names) {
                result = Some(match result {
                    None => names,
                    Some(cur) => cur.intersection(&names).cloned().collect(),
                });
                if result.as_ref().is_some_and(|r| r.is_empty()) {
                    return (
                        None,
                        Status::unresolvable(
                            "node(s) didn't satisfy plugin(s) [".to_string() + p.name() + "]",
                        )
                        .with_plugin(p.name()),
                    );
                }
            }
        }
        state.filter_skip_mask = 0;
        for (i, f) in self.filter.iter().enumerate().take(64) {
            if state.skip_filter.contains(&f.name()) {
                state.filter_skip_mask |= 1 << i;
            }
        }
        (
            result.map(|n| PreFilterResult {
                node_names: Some(n),
            }),
            Status::success(),
        )
    }

    pub fn run_pre_filter_add_pod(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        added: &PodInfo,
        node: &NodeInfo,
        lister: &dyn SharedLister,
    ) -> Status {
        for p in &self.pre_filter {
            if state.skip_filter.contains(&p.name()) {
                continue;
            }
            let st = p.add_pod(state, pod, added, node, lister);
            if !st.is_success() {
                return st.with_plugin(p.name());
            }
        }
        Status::success()
    }

    pub fn run_pre_filter_remove_pod(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        removed: &PodInfo,
        node: &NodeInfo,
        lister: &dyn SharedLister,
    ) -> Status {
        for p in &self.pre_filter {
            if state.skip_filter.contains(&p.name()) {
                continue;
            }
            let st = p.remove_pod(state, pod, removed, node, lister);
            if !st.is_success() {
                return st.with_plugin(p.name());
            }
        }
        Status::success()
    }

    /// Runs Filter plugins in order; the first non-success status is returned.
    pub fn run_filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        for (i, p) in self.filter.iter().enumerate() {
            if i < 64 && state.filter_skip_mask & (1 << i) != 0 {
                continue;
            }
            let st = p.filter(state, pod, node);
            if !st.is_success() {
                let st = if st.is_rejected() {
                    st
                } else {
                    Status::error(format!(
                        "running {:?} filter plugin: {}",
                        p.name(),
                        st.message()
                    ))
                };
                return st.with_plugin(p.name());
            }
        }
        Status::success()
    }

    /// Filter with the pods nominated to the node of equal or higher priority counted as if
    /// running there (upstream `RunFilterPluginsWithNominatedPods`): the pod must fit both with
    /// and without them.
    pub fn run_filter_with_nominated(
        &self,
        state: &CycleState,
        pod: &PodInfo,
        node: &NodeInfo,
        lister: &dyn SharedLister,
    ) -> Status {
        if self.nominator.is_empty() {
            return self.run_filter(state, pod, node);
        }
        let nominated: Vec<Arc<PodInfo>> = self
            .nominator
            .pods_on(&node.name)
            .into_iter()
            .filter(|p| p.key != pod.key && p.priority >= pod.priority)
            .collect();
        if nominated.is_empty() {
            return self.run_filter(state, pod, node);
        }
        let mut with = node.clone();
        let mut st2 = state.clone();
        for p in nominated {
            with.add_pod(p.clone());
            let st = self.run_pre_filter_add_pod(&mut st2, pod, &p, &with, lister);
            if !st.is_success() {
                return st;
            }
        }
        let st = self.run_filter(&st2, pod, &with);
        if !st.is_success() {
            return st;
        }
        self.run_filter(state, pod, node)
    }

    pub async fn run_post_filter(
        &self,
        ctx: PostFilterContext<'_>,
    ) -> (Option<PostFilterResult>, Status) {
        let mut last = Status::unschedulable("");
        last.reasons.clear();
        for p in &self.post_filter {
            let c = PostFilterContext {
                state: ctx.state,
                pod: ctx.pod,
                lister: ctx.lister,
                node_statuses: ctx.node_statuses,
                absent_status: ctx.absent_status,
                framework: ctx.framework,
            };
            let (r, st) = p.post_filter(c).await;
            if st.is_success() {
                return (r, st);
            }
            if st.code != Code::Unschedulable && st.code != Code::UnschedulableAndUnresolvable {
                return (r, st.with_plugin(p.name()));
            }
            last = st.with_plugin(p.name());
        }
        (None, last)
    }

    pub fn run_pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        nodes: &[Arc<NodeInfo>],
        lister: &dyn SharedLister,
    ) -> Status {
        for p in &self.pre_score {
            let st = p.pre_score(state, pod, nodes, lister);
            if st.is_skip() {
                state.skip_score.push(p.name());
                continue;
            }
            if !st.is_success() {
                return st.with_plugin(p.name());
            }
        }
        Status::success()
    }

    /// Total weighted, normalised score per node (same order as `nodes`).
    pub fn run_score(
        &self,
        state: &CycleState,
        pod: &PodInfo,
        nodes: &[Arc<NodeInfo>],
        totals: &mut Vec<i64>,
    ) -> Status {
        totals.clear();
        totals.resize(nodes.len(), 0);
        let mut scores: Vec<NodeScore> = Vec::with_capacity(nodes.len());
        for (p, weight) in &self.score {
            if state.skip_score.contains(&p.name()) {
                continue;
            }
            scores.clear();
            for n in nodes {
                let (s, st) = p.score(state, pod, n);
                if !st.is_success() {
                    return st.with_plugin(p.name());
                }
                scores.push(NodeScore {
                    name: String::new(),
                    score: s,
                });
            }
            let st = p.normalize(state, pod, &mut scores);
            if !st.is_success() {
                return st.with_plugin(p.name());
            }
            for (i, s) in scores.iter().enumerate() {
                if s.score > MAX_NODE_SCORE || s.score < MIN_NODE_SCORE {
                    return Status::error(format!(
                        "plugin {:?} returns an invalid score {}, it should in the range of [{}, {}] after normalizing",
                        p.name(),
                        s.score,
                        MIN_NODE_SCORE,
                        MAX_NODE_SCORE
                    ));
                }
                totals[i] += s.score * weight;
            }
        }
        Status::success()
    }

    pub fn run_reserve(&self, state: &mut CycleState, pod: &PodInfo, node: &str) -> Status {
        for p in &self.reserve {
            let st = p.reserve(state, pod, node);
            if !st.is_success() {
                return st.with_plugin(p.name());
            }
        }
        Status::success()
    }

    pub fn run_unreserve(&self, state: &mut CycleState, pod: &PodInfo, node: &str) {
        for p in self.reserve.iter().rev() {
            p.unreserve(state, pod, node);
        }
    }

    /// Success, a rejection, or Wait with the longest timeout asked for.
    pub fn run_permit(&self, state: &CycleState, pod: &PodInfo, node: &str) -> (Status, Duration) {
        let mut wait: Option<Duration> = None;
        for p in &self.permit {
            let (st, d) = p.permit(state, pod, node);
            match st.code {
                Code::Success => {}
                Code::Wait => wait = Some(wait.map_or(d, |w| w.max(d))),
                _ => return (st.with_plugin(p.name()), Duration::ZERO),
            }
        }
        match wait {
            Some(d) => (Status::new(Code::Wait, ""), d),
            None => (Status::success(), Duration::ZERO),
        }
    }

    pub async fn run_pre_bind(&self, pod: &PodInfo, node: &str) -> Status {
        for p in &self.pre_bind {
            let st = p.pre_bind(pod, node).await;
            if !st.is_success() {
                return st.with_plugin(p.name());
            }
        }
        Status::success()
    }

    pub async fn run_bind(&self, pod: &PodInfo, node: &str) -> Status {
        for p in &self.bind {
            let st = p.bind(pod, node).await;
            if st.is_skip() {
                continue;
            }
            return st.with_plugin(p.name());
        }
        Status::error("no bind plugin bound the pod")
    }
}
