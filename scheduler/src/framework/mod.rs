//! The scheduling framework's contract (mirrors upstream `pkg/scheduler/framework/interface.go`
//! and `cycle_state.go`): status codes, the per-cycle state, and one trait per extension point.
//! A plugin is one value implementing [`Plugin`] plus the extension-point traits it supports.

pub mod runtime;
pub mod types;

use async_trait::async_trait;
use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

pub use types::{FitError, NodeInfo, PodInfo, Resource};

/// Highest score a Score plugin may give after normalisation.
pub const MAX_NODE_SCORE: i64 = 100;
pub const MIN_NODE_SCORE: i64 = 0;

/// Result codes of plugins (upstream `fwk.Code`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Code {
    Success,
    Error,
    /// The pod does not fit now; preemption may help.
    Unschedulable,
    /// The pod does not fit and preemption cannot help on this node.
    UnschedulableAndUnresolvable,
    Wait,
    Skip,
    Pending,
}

/// A plugin's verdict with its reasons and the plugin that failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub code: Code,
    pub reasons: Vec<String>,
    pub plugin: String,
}

impl Default for Status {
    fn default() -> Self {
        Status::success()
    }
}

impl Status {
    pub fn success() -> Status {
        Status {
            code: Code::Success,
            reasons: Vec::new(),
            plugin: String::new(),
        }
    }
    pub fn new(code: Code, reason: impl Into<String>) -> Status {
        Status {
            code,
            reasons: vec![reason.into()],
            plugin: String::new(),
        }
    }
    pub fn with_reasons(code: Code, reasons: Vec<String>) -> Status {
        Status {
            code,
            reasons,
            plugin: String::new(),
        }
    }
    pub fn unschedulable(reason: impl Into<String>) -> Status {
        Status::new(Code::Unschedulable, reason)
    }
    pub fn unresolvable(reason: impl Into<String>) -> Status {
        Status::new(Code::UnschedulableAndUnresolvable, reason)
    }
    pub fn error(reason: impl Into<String>) -> Status {
        Status::new(Code::Error, reason)
    }
    pub fn skip() -> Status {
        Status {
            code: Code::Skip,
            reasons: Vec::new(),
            plugin: String::new(),
        }
    }
    pub fn is_success(&self) -> bool {
        self.code == Code::Success
    }
    pub fn is_skip(&self) -> bool {
        self.code == Code::Skip
    }
    /// Unschedulable or UnschedulableAndUnresolvable.
    pub fn is_rejected(&self) -> bool {
        matches!(
            self.code,
            Code::Unschedulable | Code::UnschedulableAndUnresolvable | Code::Pending
        )
    }
    /// The reasons joined with ", " (upstream `Status.Message`).
    pub fn message(&self) -> String {
        self.reasons.join(", ")
    }
    pub fn with_plugin(mut self, plugin: &str) -> Status {
        if self.plugin.is_empty() {
            self.plugin = plugin.to_string();
        }
        self
    }
}

/// Data a plugin keeps in the cycle state; cloned when preemption simulates a node.
pub trait StateData: Any + Send + Sync {
    fn clone_data(&self) -> Box<dyn StateData>;
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

impl<T: Any + Clone + Send + Sync> StateData for T {
    fn clone_data(&self) -> Box<dyn StateData> {
        Box::new(self.clone())
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// State of one scheduling cycle, shared by the plugins (upstream `CycleState`). A handful
/// of entries, so a small list beats hashing on every Filter/Score call.
#[derive(Default)]
pub struct CycleState {
    data: Vec<(&'static str, Box<dyn StateData>)>,
    /// Plugins whose PreFilter returned Skip (their Filter is not run).
    pub skip_filter: Vec<&'static str>,
    /// Bit i set: the profile's i-th Filter plugin is skipped this cycle.
    pub filter_skip_mask: u64,
    /// Plugins whose PreScore returned Skip (their Score is not run).
    pub skip_score: Vec<&'static str>,
}

impl Clone for CycleState {
    fn clone(&self) -> Self {
        CycleState {
            data: self
                .data
                .iter()
                .map(|(k, v)| (*k, (**v).clone_data()))
                .collect(),
            skip_filter: self.skip_filter.clone(),
            filter_skip_mask: self.filter_skip_mask,
            skip_score: self.skip_score.clone(),
        }
    }
}

impl CycleState {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn write<T: Any + Clone + Send + Sync>(&mut self, key: &'static str, v: T) {
        match self.data.iter_mut().find(|(k, _)| *k == key) {
            Some(e) => e.1 = Box::new(v),
            None => self.data.push((key, Box::new(v))),
        }
    }
    pub fn read<T: Any>(&self, key: &'static str) -> Option<&T> {
        self.data
            .iter()
            .find(|(k, _)| *k == key)
            .and_then(|(_, v)| (**v).as_any().downcast_ref())
    }
    pub fn read_mut<T: Any>(&mut self, key: &'static str) -> Option<&mut T> {
        self.data
            .iter_mut()
            .find(|(k, _)| *k == key)
            .and_then(|(_, v)| (**v).as_any_mut().downcast_mut())
    }
}

/// What PreFilter may narrow the candidate nodes to (`nil` = all nodes).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PreFilterResult {
    pub node_names: Option<std::collections::BTreeSet<String>>,
}

/// A node's score from one plugin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeScore {
    pub name: String,
    pub score: i64,
}

/// What a PostFilter plugin proposes (the node to nominate; `Some("")` clears it).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PostFilterResult {
    pub nominated_node_name: Option<String>,
}

/// Read access to the cluster as the current cycle sees it.
pub trait SharedLister: Send + Sync {
    fn node_infos(&self) -> &[Arc<NodeInfo>];
    fn get(&self, node: &str) -> Option<&Arc<NodeInfo>>;
    /// Labels of a namespace (for affinity terms with a namespaceSelector).
    fn namespace_labels(&self, ns: &str) -> Option<std::collections::BTreeMap<String, String>>;
    /// How many nodes have an image (ImageLocality's spread).
    fn image_num_nodes(&self, image: &str) -> usize;
    /// Nodes running pods with (anti-)affinity terms (a superset is fine).
    fn nodes_with_affinity_pods(&self) -> &[Arc<NodeInfo>] {
        self.node_infos()
    }
    /// Nodes running pods with required anti-affinity terms (a superset is fine).
    fn nodes_with_required_anti_affinity_pods(&self) -> &[Arc<NodeInfo>] {
        self.node_infos()
    }
}

/// Every plugin: its name, and which extension points it implements.
pub trait Plugin: Send + Sync {
    fn name(&self) -> &'static str;
    fn pre_filter(self: Arc<Self>) -> Option<Arc<dyn PreFilterPlugin>> {
        None
    }
    fn filter(self: Arc<Self>) -> Option<Arc<dyn FilterPlugin>> {
        None
    }
    fn post_filter(self: Arc<Self>) -> Option<Arc<dyn PostFilterPlugin>> {
        None
    }
    fn pre_score(self: Arc<Self>) -> Option<Arc<dyn PreScorePlugin>> {
        None
    }
    fn score(self: Arc<Self>) -> Option<Arc<dyn ScorePlugin>> {
        None
    }
    fn reserve(self: Arc<Self>) -> Option<Arc<dyn ReservePlugin>> {
        None
    }
    fn permit(self: Arc<Self>) -> Option<Arc<dyn PermitPlugin>> {
        None
    }
    fn pre_bind(self: Arc<Self>) -> Option<Arc<dyn PreBindPlugin>> {
        None
    }
    fn bind(self: Arc<Self>) -> Option<Arc<dyn BindPlugin>> {
        None
    }
    /// Cluster events that may make a pod this plugin rejected schedulable.
    fn events(&self) -> &'static [ClusterEvent] {
        &[]
    }
}

/// Cluster changes the queue reacts to (upstream `ClusterEvent`, coarse-grained).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ClusterEvent {
    NodeAdd,
    NodeUpdate,
    AssignedPodAdd,
    AssignedPodUpdate,
    AssignedPodDelete,
    NamespaceChange,
    PdbChange,
    ServiceChange,
}

pub trait PreFilterPlugin: Send + Sync {
    fn name(&self) -> &'static str;
    /// Returns a narrowed node set, Skip (Filter not needed), or a rejection.
    fn pre_filter(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        lister: &dyn SharedLister,
    ) -> (Option<PreFilterResult>, Status);
    /// PreFilterExtensions: a pod was added to `node` during simulation.
    fn add_pod(
        &self,
        _state: &mut CycleState,
        _pod: &PodInfo,
        _added: &PodInfo,
        _node: &NodeInfo,
        _lister: &dyn SharedLister,
    ) -> Status {
        Status::success()
    }
    /// PreFilterExtensions: a pod was removed from `node` during simulation.
    fn remove_pod(
        &self,
        _state: &mut CycleState,
        _pod: &PodInfo,
        _removed: &PodInfo,
        _node: &NodeInfo,
        _lister: &dyn SharedLister,
    ) -> Status {
        Status::success()
    }
}

pub trait FilterPlugin: Send + Sync {
    fn name(&self) -> &'static str;
    fn filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status;
}

/// Context given to PostFilter plugins (they make API calls).
pub struct PostFilterContext<'a> {
    pub state: &'a CycleState,
    pub pod: &'a Arc<PodInfo>,
    pub lister: &'a dyn SharedLister,
    /// Status of every node that was filtered and failed.
    pub node_statuses: &'a HashMap<String, Status>,
    /// Status of nodes absent from `node_statuses` (all-nodes rejection from PreFilter).
    pub absent_status: Option<&'a Status>,
    pub framework: &'a runtime::Framework,
}

#[async_trait]
pub trait PostFilterPlugin: Send + Sync {
    fn name(&self) -> &'static str;
    async fn post_filter(&self, ctx: PostFilterContext<'_>) -> (Option<PostFilterResult>, Status);
}

pub trait PreScorePlugin: Send + Sync {
    fn name(&self) -> &'static str;
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        nodes: &[Arc<NodeInfo>],
        lister: &dyn SharedLister,
    ) -> Status;
}

pub trait ScorePlugin: Send + Sync {
    fn name(&self) -> &'static str;
    fn score(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> (i64, Status);
    /// Scales the raw scores into 0..=100 (ScoreExtensions).
    fn normalize(&self, _state: &CycleState, _pod: &PodInfo, _scores: &mut [NodeScore]) -> Status {
        Status::success()
    }
}

pub trait ReservePlugin: Send + Sync {
    fn name(&self) -> &'static str;
    fn reserve(&self, state: &mut CycleState, pod: &PodInfo, node: &str) -> Status;
    fn unreserve(&self, state: &mut CycleState, pod: &PodInfo, node: &str);
}

pub trait PermitPlugin: Send + Sync {
    fn name(&self) -> &'static str;
    /// Success, a rejection, or Wait with a timeout.
    fn permit(&self, state: &CycleState, pod: &PodInfo, node: &str) -> (Status, Duration);
}

#[async_trait]
pub trait PreBindPlugin: Send + Sync {
    fn name(&self) -> &'static str;
    async fn pre_bind(&self, pod: &PodInfo, node: &str) -> Status;
}

#[async_trait]
pub trait BindPlugin: Send + Sync {
    fn name(&self) -> &'static str;
    /// Skip lets the next bind plugin decide.
    async fn bind(&self, pod: &PodInfo, node: &str) -> Status;
}
