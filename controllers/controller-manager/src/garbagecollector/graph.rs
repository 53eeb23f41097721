//! The garbage collector's dependency graph (upstream `garbagecollector/graph.go` and the event
//! processing of `graph_builder.go`): one node per observed object (or "virtual" node for an owner
//! only known from an ownerReference), linked owner -> dependents by uid. Applying an event yields
//! the uids to hand to the attempt-to-delete and attempt-to-orphan queues.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use std::collections::{HashMap, HashSet};

pub const ORPHAN_FINALIZER: &str = "orphan";
pub const FOREGROUND_FINALIZER: &str = "foregroundDeletion";

/// Coordinates of an object: an owner reference plus the namespace it is looked up in.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Identity {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub uid: String,
    /// The object's namespace (for a virtual node: its dependent's namespace).
    pub namespace: Option<String>,
}

impl std::fmt::Display for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "[{}/{}, namespace: {}, name: {}, uid: {}]",
            self.api_version,
            self.kind,
            self.namespace.as_deref().unwrap_or(""),
            self.name,
            self.uid
        )
    }
}

#[derive(Clone, Debug)]
pub struct Node {
    pub identity: Identity,
    pub owners: Vec<OwnerReference>,
    pub dependents: HashSet<String>,
    pub being_deleted: bool,
    pub deleting_dependents: bool,
    /// False for a virtual node (only known from an ownerReference so far).
    pub observed: bool,
}

/// A change seen by a monitor (or made up by the collector).
#[derive(Clone, Debug)]
pub enum GraphEvent {
    Upsert {
        api_version: String,
        kind: String,
        meta: ObjectMeta,
    },
    Delete {
        api_version: String,
        kind: String,
        meta: ObjectMeta,
    },
    /// The collector found that this identity does not exist.
    VirtualDelete(Identity),
}

/// What the collector should look at after an event.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Work {
    pub attempt_to_delete: Vec<String>,
    pub attempt_to_orphan: Vec<String>,
    /// Uids known to be gone (for the absent-owner cache).
    pub absent: Vec<String>,
}

#[derive(Default)]
pub struct Graph {
    nodes: HashMap<String, Node>,
}

fn has_finalizer(meta: &ObjectMeta, f: &str) -> bool {
    meta.finalizers.iter().flatten().any(|x| x == f)
}

fn identity_of(api_version: &str, kind: &str, meta: &ObjectMeta) -> Identity {
    Identity {
        api_version: api_version.to_string(),
        kind: kind.to_string(),
        name: meta.name.clone().unwrap_or_default(),
        uid: meta.uid.clone().unwrap_or_default(),
        namespace: meta.namespace.clone().filter(|n| !n.is_empty()),
    }
}

/// Whether an owner reference blocks its owner's foreground deletion.
pub fn blocks(r: &OwnerReference) -> bool {
    r.block_owner_deletion == Some(true)
}

impl Graph {
    pub fn get(&self, uid: &str) -> Option<&Node> {
        self.nodes.get(uid)
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Dependents of `uid` whose reference to it has blockOwnerDeletion set.
    pub fn blocking_dependents(&self, uid: &str) -> Vec<&Node> {
        let Some(n) = self.nodes.get(uid) else {
            return vec![];
        };
        n.dependents
            .iter()
            .filter_map(|d| self.nodes.get(d))
            .filter(|d| d.owners.iter().any(|o| o.uid == uid && blocks(o)))
            .collect()
    }

    pub fn dependents(&self, uid: &str) -> Vec<&Node> {
        self.nodes
            .get(uid)
            .map(|n| {
                n.dependents
                    .iter()
                    .filter_map(|d| self.nodes.get(d))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn add_dependent_to_owners(
        &mut self,
        dependent: &Identity,
        owners: &[OwnerReference],
        work: &mut Work,
    ) {
        for o in owners {
            match self.nodes.get_mut(&o.uid) {
                Some(owner) => {
                    owner.dependents.insert(dependent.uid.clone());
                }
                None => {
                    let identity = Identity {
                        api_version: o.api_version.clone(),
                        kind: o.kind.clone(),
                        name: o.name.clone(),
                        uid: o.uid.clone(),
                        namespace: dependent.namespace.clone(),
                    };
                    self.nodes.insert(
                        o.uid.clone(),
                        Node {
                            identity,
                            owners: vec![],
                            dependents: HashSet::from([dependent.uid.clone()]),
                            being_deleted: false,
                            deleting_dependents: false,
                            observed: false,
                        },
                    );
                    // Verify the owner exists (it may never be observed).
                    work.attempt_to_delete.push(o.uid.clone());
                }
            }
        }
    }

    /// Removes `dependent` from the given owners; owners waiting for their dependents are
    /// re-examined.
    fn remove_dependent_from_owners(
        &mut self,
        dependent: &str,
        owners: &[OwnerReference],
        work: &mut Work,
    ) {
        for o in owners {
            if let Some(owner) = self.nodes.get_mut(&o.uid) {
                owner.dependents.remove(dependent);
                if owner.deleting_dependents {
                    work.attempt_to_delete.push(o.uid.clone());
                }
            }
        }
    }

    /// Applies one event.
    pub fn process(&mut self, event: GraphEvent) -> Work {
        let mut work = Work::default();
        match event {
            GraphEvent::Upsert {
                api_version,
                kind,
                meta,
            } => self.upsert(identity_of(&api_version, &kind, &meta), &meta, &mut work),
            GraphEvent::Delete {
                api_version,
                kind,
                meta,
            } => {
                let id = identity_of(&api_version, &kind, &meta);
                self.remove(&id.uid, &mut work);
            }
            GraphEvent::VirtualDelete(id) => match self.nodes.get(&id.uid) {
                // Observed meanwhile: only the references with wrong coordinates were bad; let
                // the dependents re-verify their owners.
                Some(n) if n.observed => {
                    work.attempt_to_delete.extend(n.dependents.iter().cloned());
                }
                Some(_) => self.remove(&id.uid, &mut work),
                None => {}
            },
        }
        work
    }

    fn remove(&mut self, uid: &str, work: &mut Work) {
        let Some(node) = self.nodes.remove(uid) else {
            return;
        };
        work.absent.push(uid.to_string());
        work.attempt_to_delete
            .extend(node.dependents.iter().cloned());
        let owners = node.owners.clone();
        self.remove_dependent_from_owners(uid, &owners, work);
    }

    fn upsert(&mut self, id: Identity, meta: &ObjectMeta, work: &mut Work) {
        if id.uid.is_empty() {
            return;
        }
        let owners = meta.owner_references.clone().unwrap_or_default();
        let being_deleted = meta.deletion_timestamp.is_some();
        let uid = id.uid.clone();
        match self.nodes.get_mut(&uid) {
            None => {
                self.nodes.insert(
                    uid.clone(),
                    Node {
                        identity: id.clone(),
                        owners: owners.clone(),
                        dependents: HashSet::new(),
                        being_deleted,
                        deleting_dependents: false,
                        observed: true,
                    },
                );
                self.add_dependent_to_owners(&id, &owners, work);
            }
            Some(node) => {
                if !node.observed {
                    node.observed = true;
                    node.identity = id.clone();
                }
                let old = std::mem::replace(&mut node.owners, owners.clone());
                node.being_deleted |= being_deleted;
                let added: Vec<OwnerReference> = owners
                    .iter()
                    .filter(|n| !old.iter().any(|o| o.uid == n.uid))
                    .cloned()
                    .collect();
                let removed: Vec<OwnerReference> = old
                    .iter()
                    .filter(|o| !owners.iter().any(|n| n.uid == o.uid))
                    .cloned()
                    .collect();
                // An owner whose blocking reference became non-blocking may be unblocked.
                for o in &old {
                    if blocks(o)
                        && owners.iter().any(|n| n.uid == o.uid && !blocks(n))
                        && self
                            .nodes
                            .get(&o.uid)
                            .is_some_and(|n| n.deleting_dependents)
                    {
                        work.attempt_to_delete.push(o.uid.clone());
                    }
                }
                self.add_dependent_to_owners(&id, &added, work);
                self.remove_dependent_from_owners(&uid, &removed, work);
            }
        }
        // Transitions (level-triggered: the queues deduplicate).
        if being_deleted && has_finalizer(meta, ORPHAN_FINALIZER) {
            work.attempt_to_orphan.push(uid.clone());
        }
        let foreground = being_deleted && has_finalizer(meta, FOREGROUND_FINALIZER);
        if let Some(node) = self.nodes.get_mut(&uid) {
            node.deleting_dependents = foreground;
            if foreground {
                work.attempt_to_delete
                    .extend(node.dependents.iter().cloned());
            }
        }
        if foreground {
            work.attempt_to_delete.push(uid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(name: &str, uid: &str, owners: &[(&str, bool)]) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.into()),
            namespace: Some("ns".into()),
            uid: Some(uid.into()),
            owner_references: (!owners.is_empty()).then(|| {
                owners
                    .iter()
                    .map(|(u, b)| OwnerReference {
                        api_version: "v1".into(),
                        kind: "ConfigMap".into(),
                        name: format!("owner-{u}"),
                        uid: u.to_string(),
                        block_owner_deletion: Some(*b),
                        controller: None,
                    })
                    .collect()
            }),
            ..Default::default()
        }
    }

    fn up(m: ObjectMeta) -> GraphEvent {
        GraphEvent::Upsert {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            meta: m,
        }
    }

    #[test]
    fn virtual_owner_is_verified_and_dependents_follow_deletions() {
        let mut g = Graph::default();
        // A dependent seen before its owner makes a virtual owner node to verify.
        let w = g.process(up(meta("d", "d1", &[("o1", true)])));
        assert_eq!(w.attempt_to_delete, vec!["o1".to_string()]);
        assert!(!g.get("o1").unwrap().observed);
        // The owner is observed: no new work, the node is real now.
        let w = g.process(up(meta("owner-o1", "o1", &[])));
        assert!(w.attempt_to_delete.is_empty());
        assert!(g.get("o1").unwrap().observed);
        assert_eq!(g.blocking_dependents("o1").len(), 1);
        // The owner goes away: its dependent is examined.
        let w = g.process(GraphEvent::Delete {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            meta: meta("owner-o1", "o1", &[]),
        });
        assert_eq!(w.attempt_to_delete, vec!["d1".to_string()]);
        assert_eq!(w.absent, vec!["o1".to_string()]);
    }

    #[test]
    fn foreground_and_orphan_transitions() {
        let mut g = Graph::default();
        g.process(up(meta("o", "o1", &[])));
        g.process(up(meta("d", "d1", &[("o1", true)])));
        let mut m = meta("o", "o1", &[]);
        m.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            jiff::Timestamp::now(),
        ));
        m.finalizers = Some(vec![FOREGROUND_FINALIZER.into()]);
        let w = g.process(up(m.clone()));
        assert_eq!(
            w.attempt_to_delete,
            vec!["d1".to_string(), "o1".to_string()]
        );
        assert!(g.get("o1").unwrap().deleting_dependents);
        // The dependent drops its reference: the owner is re-examined.
        let w = g.process(up(meta("d", "d1", &[])));
        assert_eq!(w.attempt_to_delete, vec!["o1".to_string()]);
        assert!(g.dependents("o1").is_empty());
        m.finalizers = Some(vec![ORPHAN_FINALIZER.into()]);
        let w = g.process(up(m));
        assert_eq!(w.attempt_to_orphan, vec!["o1".to_string()]);
    }
}
