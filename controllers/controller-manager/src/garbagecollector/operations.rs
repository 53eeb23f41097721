//! The garbage collector's API calls on objects known only by coordinates (upstream
//! `garbagecollector/operations.go` and `patch.go`): metadata GETs, deletes with a uid
//! precondition, and optimistic-concurrency patches of ownerReferences and finalizers.

use super::discovery::{Discovered, ResourceInfo};
use super::graph::Identity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Client;
use kube::api::{
    Api, DeleteParams, DynamicObject, Patch, PatchParams, Preconditions, PropagationPolicy,
};
use serde_json::json;
use std::sync::{Arc, RwLock};

/// The HTTP status code of an API error.
pub fn api_code(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(s) => Some(s.code),
        _ => None,
    }
}

pub fn is_not_found(e: &kube::Error) -> bool {
    api_code(e) == Some(404)
}

pub fn is_conflict(e: &kube::Error) -> bool {
    api_code(e) == Some(409)
}

/// A REST mapping failure: the kind is not served (upstream `restMappingError`).
#[derive(Debug)]
pub struct RestMappingError(pub String);

impl std::fmt::Display for RestMappingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unable to get REST mapping for {}", self.0)
    }
}

impl std::error::Error for RestMappingError {}

/// Dynamic access to any served object.
#[derive(Clone)]
pub struct Ops {
    pub client: Client,
    pub discovery: Arc<RwLock<Arc<Discovered>>>,
}

impl Ops {
    pub fn new(client: Client) -> Self {
        Ops {
            client,
            discovery: Arc::new(RwLock::new(Arc::new(Discovered::default()))),
        }
    }

    pub fn set_discovery(&self, d: Discovered) {
        *self.discovery.write().expect("discovery") = Arc::new(d);
    }

    fn mapping(&self, api_version: &str, kind: &str) -> Result<ResourceInfo, RestMappingError> {
        self.discovery
            .read()
            .expect("discovery")
            .resolve(api_version, kind)
            .cloned()
            .ok_or_else(|| RestMappingError(format!("{api_version}/{kind}")))
    }

    /// The API for `id`; `Ok(None)` when the object cannot exist there (a namespaced kind
    /// referenced without a namespace).
    fn api(&self, id: &Identity) -> Result<Option<Api<DynamicObject>>, RestMappingError> {
        let m = self.mapping(&id.api_version, &id.kind)?;
        Ok(match (m.namespaced, id.namespace.as_deref()) {
            (true, Some(ns)) => Some(Api::namespaced_with(self.client.clone(), ns, &m.ar)),
            (true, None) => None,
            (false, _) => Some(Api::all_with(self.client.clone(), &m.ar)),
        })
    }

    /// The live metadata of `id`'s name (whatever its uid), or None if absent.
    pub async fn get_meta(&self, id: &Identity) -> anyhow::Result<Option<ObjectMeta>> {
        let Some(api) = self.api(id)? else {
            return Ok(None);
        };
        match api.get_metadata(&id.name).await {
            Ok(o) => Ok(Some(o.metadata)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes `id` (only if its uid still matches) with the given propagation policy.
    pub async fn delete(&self, id: &Identity, policy: PropagationPolicy) -> anyhow::Result<()> {
        let Some(api) = self.api(id)? else {
            return Ok(());
        };
        let dp = DeleteParams {
            propagation_policy: Some(policy),
            preconditions: Some(Preconditions {
                uid: Some(id.uid.clone()),
                resource_version: None,
            }),
            ..Default::default()
        };
        match api.delete(&id.name, &dp).await {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Reads `id`, lets `edit` change its metadata, and writes the ownerReferences and
    /// finalizers back with a JSON merge patch guarded by uid and resourceVersion; retried on
    /// conflicts. `edit` returns false when nothing needs to change. Absent objects are fine.
    pub async fn update_meta<F>(&self, id: &Identity, mut edit: F) -> anyhow::Result<()>
    where
        F: FnMut(&mut ObjectMeta) -> bool,
    {
        let Some(api) = self.api(id)? else {
            return Ok(());
        };
        for _ in 0..5 {
            let mut meta = match api.get_metadata(&id.name).await {
                Ok(o) => o.metadata,
                Err(e) if is_not_found(&e) => return Ok(()),
                Err(e) => return Err(e.into()),
            };
            if meta.uid.as_deref() != Some(id.uid.as_str()) {
                return Ok(());
            }
            let before = (meta.owner_references.clone(), meta.finalizers.clone());
            if !edit(&mut meta) {
                return Ok(());
            }
            let mut patch = serde_json::Map::new();
            patch.insert("uid".into(), json!(id.uid));
            patch.insert("resourceVersion".into(), json!(meta.resource_version));
            if before.0 != meta.owner_references {
                let refs = meta.owner_references.clone().filter(|r| !r.is_empty());
                patch.insert("ownerReferences".into(), json!(refs));
            }
            if before.1 != meta.finalizers {
                let f = meta.finalizers.clone().filter(|f| !f.is_empty());
                patch.insert("finalizers".into(), json!(f));
            }
            let body = json!({ "metadata": patch });
            match api
                .patch(&id.name, &PatchParams::default(), &Patch::Merge(&body))
                .await
            {
                Ok(_) => return Ok(()),
                Err(e) if is_not_found(&e) => return Ok(()),
                Err(e) if is_conflict(&e) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        anyhow::bail!("too many conflicts updating {id}")
    }

    /// Removes the owner references with the given uids from `id`.
    pub async fn remove_owner_refs(&self, id: &Identity, uids: &[String]) -> anyhow::Result<()> {
        self.update_meta(id, |m| {
            let refs: &mut Vec<OwnerReference> = m.owner_references.get_or_insert_with(Vec::new);
            let n = refs.len();
            refs.retain(|r| !uids.contains(&r.uid));
            refs.len() != n
        })
        .await
    }

    /// Clears blockOwnerDeletion on every reference of `id` (upstream
    /// `unblockOwnerReferences`), so a foreground-deleting dependent cannot deadlock its owner.
    pub async fn unblock_owner_refs(&self, id: &Identity) -> anyhow::Result<()> {
        self.update_meta(id, |m| {
            let mut changed = false;
            for r in m.owner_references.iter_mut().flatten() {
                if r.block_owner_deletion == Some(true) {
                    r.block_owner_deletion = Some(false);
                    changed = true;
                }
            }
            changed
        })
        .await
    }

    /// Removes one finalizer from `id`.
    pub async fn remove_finalizer(&self, id: &Identity, finalizer: &str) -> anyhow::Result<()> {
        self.update_meta(id, |m| {
            let f = m.finalizers.get_or_insert_with(Vec::new);
            let n = f.len();
            f.retain(|x| x != finalizer);
            f.len() != n
        })
        .await
    }
}
