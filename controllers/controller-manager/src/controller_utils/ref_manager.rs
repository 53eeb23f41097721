//! Claiming children by ownerReference (mirrors upstream
//! pkg/controller/controller_ref_manager.go `BaseControllerRefManager.ClaimObject`): a
//! controller keeps the children it controls that still match its selector, releases the ones
//! that no longer match, and adopts matching orphans, patching `metadata.ownerReferences` with
//! strategic merge patches that carry the child's UID as a precondition.

use super::{controller_ref, is_not_found, labels_of};
use apiserver_apimachinery::selector::LabelSelector as Selector;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Patch, PatchParams};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use serde_json::json;
use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;

/// What claiming needs to know about the owner.
pub struct RefManager<'a> {
    /// The controller reference the owner puts on its children.
    pub controller: &'a OwnerReference,
    pub selector: &'a Selector,
    /// The owner has a deletionTimestamp: it neither adopts nor releases.
    pub owner_deleting: bool,
}

impl RefManager<'_> {
    /// The children this owner controls after adopting and releasing. `can_adopt` is asked
    /// (at most once) before the first adoption; upstream re-reads the owner from the API to be
    /// sure it is not being deleted (`RecheckDeletionTimestamp`). Errors from adopting or
    /// releasing (other than the child being gone) are returned after all children are seen.
    pub async fn claim<C, F, Fut>(
        &self,
        api: &Api<C>,
        children: Vec<Arc<C>>,
        can_adopt: F,
    ) -> anyhow::Result<Vec<Arc<C>>>
    where
        C: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
        F: FnOnce() -> Fut,
        Fut: Future<Output = anyhow::Result<()>>,
    {
        let mut can_adopt = Some(can_adopt);
        let mut adopt_result: Option<Result<(), String>> = None;
        let mut claimed = Vec::new();
        let mut errors = Vec::new();
        for child in children {
            let meta = child.meta();
            let matches = self.selector.matches(&labels_of(meta));
            if let Some(r) = controller_ref(meta) {
                if r.uid != self.controller.uid {
                    continue;
                }
                if matches {
                    claimed.push(child);
                    continue;
                }
                if self.owner_deleting {
                    continue;
                }
                if let Err(e) = self.release(api, &child).await {
                    errors.push(e);
                }
                continue;
            }
            if self.owner_deleting || !matches || meta.deletion_timestamp.is_some() {
                continue;
            }
            if adopt_result.is_none() {
                let check = match can_adopt.take() {
                    Some(f) => f().await.map_err(|e| format!("{e:#}")),
                    None => Err("adoption check already used".to_string()),
                };
                adopt_result = Some(check);
            }
            if let Some(Err(e)) = &adopt_result {
                errors.push(anyhow::anyhow!(
                    "can't adopt {} {}: {e}",
                    C::kind(&()),
                    meta.name.as_deref().unwrap_or("")
                ));
                continue;
            }
            match self.adopt(api, &child).await {
                Ok(true) => claimed.push(child),
                Ok(false) => {}
                Err(e) => errors.push(e),
            }
        }
        match errors.into_iter().next() {
            Some(e) => Err(e),
            None => Ok(claimed),
        }
    }

    /// Adds our controller reference; `Ok(false)` when the child is gone.
    async fn adopt<C>(&self, api: &Api<C>, child: &C) -> anyhow::Result<bool>
    where
        C: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
    {
        let meta = child.meta();
        let patch = json!({"metadata": {
            "ownerReferences": [self.controller],
            "uid": meta.uid,
        }});
        let name = meta.name.as_deref().unwrap_or_default();
        match api
            .patch(name, &PatchParams::default(), &Patch::Strategic(patch))
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(anyhow::anyhow!("adopting {} {name}: {e}", C::kind(&()))),
        }
    }

    /// Removes our reference from a child that no longer matches.
    async fn release<C>(&self, api: &Api<C>, child: &C) -> anyhow::Result<()>
    where
        C: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
    {
        let meta = child.meta();
        let patch = json!({"metadata": {
            "ownerReferences": [{"$patch": "delete", "uid": self.controller.uid}],
            "uid": meta.uid,
        }});
        let name = meta.name.as_deref().unwrap_or_default();
        match api
            .patch(name, &PatchParams::default(), &Patch::Strategic(patch))
            .await
        {
            Ok(_) => Ok(()),
            // Gone, or its UID changed (422 from the uid precondition): nothing to release.
            Err(e) if is_not_found(&e) || super::api_status(&e) == Some(422) => Ok(()),
            Err(e) => Err(anyhow::anyhow!("releasing {} {name}: {e}", C::kind(&()))),
        }
    }
}
