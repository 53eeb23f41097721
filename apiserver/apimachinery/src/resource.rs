//! Resource descriptions: group/version/kind/resource and what discovery says of each.

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupVersionResource {
    pub group: String,
    pub version: String,
    pub resource: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct GroupVersionKind {
    pub group: String,
    pub version: String,
    pub kind: String,
}

impl GroupVersionKind {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Namespaced,
    Cluster,
}

/// Everything the server, discovery and OpenAPI need to know about one resource.
#[derive(Clone, Debug)]
pub struct ResourceInfo {
    pub group: &'static str,
    pub version: &'static str,
    /// Plural, lower case: `pods`.
    pub resource: &'static str,
    pub singular: &'static str,
    pub kind: &'static str,
    pub list_kind: String,
    pub scope: Scope,
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    pub verbs: &'static [&'static str],
    /// Subresource names served (`status`, `scale`, `binding`, ...).
    pub subresources: Vec<&'static str>,
    /// etcd key prefix under `/registry/`, e.g. `pods`, `services/specs`, `minions`.
    pub etcd_prefix: &'static str,
}

impl ResourceInfo {
    pub fn namespaced(&self) -> bool {
        self.scope == Scope::Namespaced
    }
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
    pub fn gvr(&self) -> GroupVersionResource {
        GroupVersionResource {
            group: self.group.into(),
            version: self.version.into(),
            resource: self.resource.into(),
        }
    }
    pub fn gvk(&self) -> GroupVersionKind {
        GroupVersionKind {
            group: self.group.into(),
            version: self.version.into(),
            kind: self.kind.into(),
        }
    }
}

/// The verbs of an ordinary read-write resource.
pub const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];
/// Verbs of a create-only virtual resource (reviews).
pub const CREATE_ONLY: &[&str] = &["create"];
