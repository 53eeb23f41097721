//! The scheduler cache and its per-cycle snapshot (mirrors upstream
//! `pkg/scheduler/backend/cache/cache.go`, `snapshot.go` and `node_tree.go`): node infos with
//! the pods bound or assumed on them. Assumed pods count at once so the next cycle does not
//! overcommit while binding runs asynchronously; a failed binding forgets the assumption.
//!
//! Snapshots are incremental: a node info is shared (`Arc`) between cache and snapshot and
//! copied only when the cache changes it after a snapshot took it; only nodes changed since
//! the last snapshot are replaced, and the node list is rebuilt only when nodes come or go.

use crate::framework::{NodeInfo, PodInfo, SharedLister};
use component_base::Informer;
use k8s_openapi::api::core::v1::{Namespace, Node};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

struct PodState {
    info: Arc<PodInfo>,
    node: String,
    assumed: bool,
}

#[derive(Default)]
struct Inner {
    nodes: HashMap<String, Arc<NodeInfo>>,
    pods: HashMap<String, PodState>,
    dirty: HashSet<String>,
    /// Nodes came or went (or a node's labels or images changed): rebuild the list.
    rebuild: bool,
}

#[derive(Default)]
pub struct Cache {
    inner: Mutex<Inner>,
}

impl Inner {
    fn node_mut(&mut self, name: &str) -> &mut NodeInfo {
        self.dirty.insert(name.to_string());
        let e = self.nodes.entry(name.to_string()).or_insert_with(|| {
            Arc::new(NodeInfo {
                name: name.to_string(),
                ..Default::default()
            })
        });
        Arc::make_mut(e)
    }

    fn add_to_node(&mut self, info: &Arc<PodInfo>, node: &str) {
        self.node_mut(node).add_pod(info.clone());
    }

    fn remove_from_node(&mut self, key: &str, node: &str) {
        if !self.nodes.contains_key(node) {
            return;
        }
        let ni = self.node_mut(node);
        ni.remove_pod(key);
        if ni.node.is_none() && ni.pods.is_empty() {
            self.nodes.remove(node);
            self.dirty.remove(node);
        }
    }
}

impl Cache {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add_node(&self, node: Arc<Node>) {
        let mut g = self.inner.lock().expect("cache");
        let name = node.metadata.name.clone().unwrap_or_default();
        g.node_mut(&name).set_node(node);
        g.rebuild = true;
    }

    pub fn update_node(&self, node: Arc<Node>) {
        let mut g = self.inner.lock().expect("cache");
        let name = node.metadata.name.clone().unwrap_or_default();
        let ni = g.node_mut(&name);
        let structural = ni.node.as_ref().is_none_or(|old| {
            old.metadata.labels != node.metadata.labels
                || old.status.as_ref().map(|s| &s.images) != node.status.as_ref().map(|s| &s.images)
        });
        ni.set_node(node);
        if structural {
            g.rebuild = true;
        }
    }

    pub fn remove_node(&self, name: &str) {
        let mut g = self.inner.lock().expect("cache");
        let keep = g.nodes.get(name).is_some_and(|n| !n.pods.is_empty());
        if keep {
            let ni = g.node_mut(name);
            ni.node = None;
        } else {
            g.nodes.remove(name);
            g.dirty.remove(name);
        }
        g.rebuild = true;
    }

    /// Counts `info` (whose spec names its node) on that node before binding.
    pub fn assume_pod(&self, info: Arc<PodInfo>) -> Result<(), String> {
        let node = info.node_name().unwrap_or_default().to_string();
        let mut g = self.inner.lock().expect("cache");
        if g.pods.contains_key(&info.key) {
            return Err(format!(
                "pod {} is in the cache, so can't be assumed",
                info.key
            ));
        }
        g.add_to_node(&info, &node);
        g.pods.insert(
            info.key.clone(),
            PodState {
                info,
                node,
                assumed: true,
            },
        );
        Ok(())
    }

    /// Drops an assumption (binding failed).
    pub fn forget_pod(&self, key: &str) {
        let mut g = self.inner.lock().expect("cache");
        if g.pods.get(key).is_some_and(|p| p.assumed)
            && let Some(p) = g.pods.remove(key)
        {
            g.remove_from_node(key, &p.node);
        }
    }

    pub fn is_assumed(&self, key: &str) -> bool {
        self.inner
            .lock()
            .expect("cache")
            .pods
            .get(key)
            .is_some_and(|p| p.assumed)
    }

    /// An assigned pod seen by the informer (confirms an assumption, or adds it).
    pub fn add_pod(&self, info: Arc<PodInfo>) {
        let node = info.node_name().unwrap_or_default().to_string();
        let mut g = self.inner.lock().expect("cache");
        if let Some(old) = g.pods.remove(&info.key) {
            g.remove_from_node(&info.key, &old.node);
        }
        g.add_to_node(&info, &node);
        g.pods.insert(
            info.key.clone(),
            PodState {
                info,
                node,
                assumed: false,
            },
        );
    }

    pub fn update_pod(&self, info: Arc<PodInfo>) {
        self.add_pod(info)
    }

    pub fn remove_pod(&self, key: &str) {
        let mut g = self.inner.lock().expect("cache");
        if let Some(p) = g.pods.remove(key) {
            g.remove_from_node(key, &p.node);
        }
    }

    pub fn pod(&self, key: &str) -> Option<Arc<PodInfo>> {
        self.inner
            .lock()
            .expect("cache")
            .pods
            .get(key)
            .map(|p| p.info.clone())
    }

    pub fn node_count(&self) -> usize {
        self.inner
            .lock()
            .expect("cache")
            .nodes
            .values()
            .filter(|n| n.node.is_some())
            .count()
    }

    /// Brings `snap` up to date with the cache, touching only what changed.
    pub fn update_snapshot(&self, snap: &mut Snapshot) {
        let mut g = self.inner.lock().expect("cache");
        if g.rebuild || snap.nodes.is_empty() && !g.nodes.is_empty() {
            g.rebuild = false;
            g.dirty.clear();
            let list = zone_interleaved(
                g.nodes
                    .values()
                    .filter(|n| n.node.is_some())
                    .cloned()
                    .collect(),
            );
            snap.index = list
                .iter()
                .enumerate()
                .map(|(i, n)| (n.name.clone(), i))
                .collect();
            let mut images: HashMap<String, usize> = HashMap::new();
            for n in &list {
                for img in n.images.keys() {
                    *images.entry(img.clone()).or_default() += 1;
                }
            }
            snap.image_nodes = images;
            snap.nodes = list;
            snap.refresh_affinity_lists();
            return;
        }
        let dirty: Vec<String> = g.dirty.drain().collect();
        let mut affinity_changed = false;
        for name in dirty {
            if let (Some(&i), Some(n)) = (snap.index.get(&name), g.nodes.get(&name)) {
                let old = &snap.nodes[i];
                affinity_changed |=
                    !old.pods_with_affinity.is_empty() || !n.pods_with_affinity.is_empty();
                snap.nodes[i] = n.clone();
            }
        }
        if affinity_changed {
            snap.refresh_affinity_lists();
        }
    }
}

/// Nodes ordered round-robin across zones (upstream `nodeTree`), so that the first nodes
/// examined spread over zones; by name within a zone.
fn zone_interleaved(mut nodes: Vec<Arc<NodeInfo>>) -> Vec<Arc<NodeInfo>> {
    nodes.sort_by(|a, b| a.name.cmp(&b.name));
    let mut zones: BTreeMap<String, Vec<Arc<NodeInfo>>> = BTreeMap::new();
    for n in nodes {
        let l = n.labels();
        let zone = format!(
            "{}:\x00:{}",
            l.get("topology.kubernetes.io/region")
                .map(String::as_str)
                .unwrap_or(""),
            l.get("topology.kubernetes.io/zone")
                .map(String::as_str)
                .unwrap_or("")
        );
        zones.entry(zone).or_default().push(n);
    }
    if zones.len() <= 1 {
        return zones.into_values().next().unwrap_or_default();
    }
    let total: usize = zones.values().map(Vec::len).sum();
    let mut out = Vec::with_capacity(total);
    let mut lists: Vec<std::vec::IntoIter<Arc<NodeInfo>>> =
        zones.into_values().map(|v| v.into_iter()).collect();
    while out.len() < total {
        for l in lists.iter_mut() {
            if let Some(n) = l.next() {
                out.push(n);
            }
        }
    }
    out
}

/// The cluster as one scheduling cycle sees it.
#[derive(Default)]
pub struct Snapshot {
    pub nodes: Vec<Arc<NodeInfo>>,
    with_affinity: Vec<Arc<NodeInfo>>,
    with_required_anti_affinity: Vec<Arc<NodeInfo>>,
    index: HashMap<String, usize>,
    image_nodes: HashMap<String, usize>,
    pub namespaces: Option<Arc<Informer<Namespace>>>,
}

impl Snapshot {
    fn refresh_affinity_lists(&mut self) {
        self.with_affinity = self
            .nodes
            .iter()
            .filter(|n| !n.pods_with_affinity.is_empty())
            .cloned()
            .collect();
        self.with_required_anti_affinity = self
            .nodes
            .iter()
            .filter(|n| !n.pods_with_required_anti_affinity.is_empty())
            .cloned()
            .collect();
    }
}

impl SharedLister for Snapshot {
    fn nodes_with_affinity_pods(&self) -> &[Arc<NodeInfo>] {
        &self.with_affinity
    }
    fn nodes_with_required_anti_affinity_pods(&self) -> &[Arc<NodeInfo>] {
        &self.with_required_anti_affinity
    }
    fn node_infos(&self) -> &[Arc<NodeInfo>] {
        &self.nodes
    }
    fn get(&self, node: &str) -> Option<&Arc<NodeInfo>> {
        self.index.get(node).map(|&i| &self.nodes[i])
    }
    fn namespace_labels(&self, ns: &str) -> Option<BTreeMap<String, String>> {
        self.namespaces
            .as_ref()
            .and_then(|i| i.get(None, ns))
            .map(|n| n.metadata.labels.clone().unwrap_or_default())
    }
    fn image_num_nodes(&self, image: &str) -> usize {
        self.image_nodes.get(image).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::*;

    fn assigned(name: &str, node: &str, cpu: &str) -> Arc<PodInfo> {
        let mut p = pod_req(name, cpu, "1Mi");
        p.spec.as_mut().unwrap().node_name = Some(node.into());
        Arc::new(PodInfo::new(Arc::new(p)))
    }

    #[test]
    fn assume_forget_confirm_and_incremental_snapshots() {
        let c = Cache::new();
        c.add_node(Arc::new(labeled_node(
            "a",
            &[("topology.kubernetes.io/zone", "z1")],
        )));
        c.add_node(Arc::new(labeled_node(
            "b",
            &[("topology.kubernetes.io/zone", "z2")],
        )));
        c.add_node(Arc::new(labeled_node(
            "c",
            &[("topology.kubernetes.io/zone", "z1")],
        )));
        let mut snap = Snapshot::default();
        c.update_snapshot(&mut snap);
        let order: Vec<&str> = snap.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(order, vec!["a", "b", "c"]);
        let before = snap.get("a").unwrap().clone();
        c.assume_pod(assigned("p", "a", "1")).unwrap();
        assert!(c.is_assumed("default/p"));
        // The snapshot taken before is not changed under the cycle's feet.
        assert_eq!(before.requested.milli_cpu, 0);
        c.update_snapshot(&mut snap);
        assert_eq!(snap.get("a").unwrap().requested.milli_cpu, 1000);
        assert!(Arc::ptr_eq(snap.get("b").unwrap(), &snap.nodes[1]));
        c.forget_pod("default/p");
        c.update_snapshot(&mut snap);
        assert_eq!(snap.get("a").unwrap().requested.milli_cpu, 0);
        c.assume_pod(assigned("p", "a", "1")).unwrap();
        c.add_pod(assigned("p", "a", "1"));
        assert!(!c.is_assumed("default/p"));
        c.forget_pod("default/p");
        c.update_snapshot(&mut snap);
        assert_eq!(
            snap.get("a").unwrap().pods.len(),
            1,
            "a confirmed pod is not forgotten"
        );
        c.remove_pod("default/p");
        c.remove_node("b");
        c.update_snapshot(&mut snap);
        assert_eq!(snap.nodes.len(), 2);
        assert_eq!(snap.get("a").unwrap().pods.len(), 0);
    }
}
