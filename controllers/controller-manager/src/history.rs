//! ControllerRevision history shared by the daemonset and statefulset controllers (mirrors
//! upstream `pkg/controller/history/controller_history.go`): revision hashing
//! (`controller-revision-hash`), finding an equal revision, creating the next one and trimming
//! old ones beyond `revisionHistoryLimit`.

use crate::podutil::{fnv32a, is_controlled_by, safe_encode};
use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use kube::api::{DeleteParams, PostParams};
use kube::{Api, Client};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The label carrying a revision's hash on revisions and pods.
pub const CONTROLLER_REVISION_HASH: &str = "controller-revision-hash";

/// The hash of revision data plus an optional collision count (upstream
/// `ControllerRevisionHash`: fnv32a, rendered through `SafeEncodeString`).
pub fn revision_hash(data: &serde_json::Value, collision_count: Option<i32>) -> String {
    let mut bytes = serde_json::to_vec(data).unwrap_or_default();
    if let Some(c) = collision_count {
        bytes.extend_from_slice(&c.to_le_bytes());
    }
    safe_encode(&fnv32a(&bytes).to_string())
}

/// The revision data both workload controllers store: the pod template as a strategic merge
/// patch that replaces `spec.template`.
pub fn template_patch(template: &k8s_openapi::api::core::v1::PodTemplateSpec) -> serde_json::Value {
    let mut t = serde_json::to_value(template).unwrap_or_default();
    if let Some(o) = t.as_object_mut() {
        o.insert("$patch".into(), "replace".into());
    }
    serde_json::json!({ "spec": { "template": t } })
}

/// A new (not yet created) revision `<parent>-<hash>` with the template labels plus the hash.
pub fn new_revision(
    parent_name: &str,
    namespace: &str,
    owner: OwnerReference,
    template_labels: Option<&BTreeMap<String, String>>,
    data: serde_json::Value,
    revision: i64,
    collision_count: Option<i32>,
) -> ControllerRevision {
    let hash = revision_hash(&data, collision_count);
    let mut labels = template_labels.cloned().unwrap_or_default();
    labels.insert(CONTROLLER_REVISION_HASH.into(), hash.clone());
    ControllerRevision {
        metadata: ObjectMeta {
            name: Some(format!("{parent_name}-{hash}")),
            namespace: Some(namespace.to_string()),
            labels: Some(labels),
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        data: RawExtension(data),
        revision: Some(revision),
    }
}

/// The hash label of a revision (or its name suffix).
pub fn hash_of(rev: &ControllerRevision) -> String {
    rev.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(CONTROLLER_REVISION_HASH))
        .cloned()
        .unwrap_or_default()
}

/// The revisions controlled by `owner_uid`, oldest first.
pub fn owned(all: &[Arc<ControllerRevision>], owner_uid: &str) -> Vec<Arc<ControllerRevision>> {
    let mut v: Vec<_> = all
        .iter()
        .filter(|r| is_controlled_by(&r.metadata, owner_uid))
        .cloned()
        .collect();
    v.sort_by(|a, b| {
        a.revision
            .cmp(&b.revision)
            .then_with(|| a.metadata.name.cmp(&b.metadata.name))
    });
    v
}

/// Finds or creates the revision for `want` among `existing` (sorted oldest first): an equal
/// revision that is not the newest gets the next revision number; otherwise a new revision is
/// created, bumping `collision_count` on a name clash with different data. Returns the revision
/// and the (possibly bumped) collision count.
pub async fn ensure_revision(
    client: &Client,
    existing: &[Arc<ControllerRevision>],
    mut want: ControllerRevision,
    parent_name: &str,
    mut collision_count: Option<i32>,
) -> anyhow::Result<(ControllerRevision, Option<i32>)> {
    let ns = want.metadata.namespace.clone().unwrap_or_default();
    let api: Api<ControllerRevision> = Api::namespaced(client.clone(), &ns);
    let max = existing
        .iter()
        .map(|r| r.revision.unwrap_or(0))
        .max()
        .unwrap_or(0);
    if let Some(eq) = existing.iter().rev().find(|r| r.data.0 == want.data.0) {
        if eq.revision.unwrap_or(0) == max {
            return Ok(((**eq).clone(), collision_count));
        }
        let mut bumped = (**eq).clone();
        bumped.revision = Some(max + 1);
        let name = bumped.metadata.name.clone().unwrap_or_default();
        let r = api.replace(&name, &PostParams::default(), &bumped).await?;
        return Ok((r, collision_count));
    }
    want.revision = Some(max + 1);
    for _ in 0..5 {
        match api.create(&PostParams::default(), &want).await {
            Ok(r) => return Ok((r, collision_count)),
            Err(e) if crate::podutil::is_already_exists(&e) => {
                let name = want.metadata.name.clone().unwrap_or_default();
                let cur = api.get(&name).await?;
                if cur.data.0 == want.data.0 {
                    return Ok((cur, collision_count));
                }
                let c = collision_count.unwrap_or(0) + 1;
                collision_count = Some(c);
                let hash = revision_hash(&want.data.0, collision_count);
                want.metadata.name = Some(format!("{parent_name}-{hash}"));
                if let Some(l) = want.metadata.labels.as_mut() {
                    l.insert(CONTROLLER_REVISION_HASH.into(), hash);
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    anyhow::bail!("could not create a controller revision for {ns}/{parent_name}")
}

/// Deletes the oldest revisions beyond `limit`, never one in `live` (hashes still used by pods
/// or the current/update revisions).
pub async fn truncate(
    client: &Client,
    revisions: &[Arc<ControllerRevision>],
    live: &[String],
    limit: i32,
) -> anyhow::Result<()> {
    let dead: Vec<_> = revisions
        .iter()
        .filter(|r| !live.contains(&hash_of(r)))
        .collect();
    let limit = usize::try_from(limit.max(0)).unwrap_or(0);
    if dead.len() <= limit {
        return Ok(());
    }
    for r in &dead[..dead.len() - limit] {
        let ns = r.metadata.namespace.clone().unwrap_or_default();
        let name = r.metadata.name.clone().unwrap_or_default();
        let api: Api<ControllerRevision> = Api::namespaced(client.clone(), &ns);
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(e) if crate::podutil::is_not_found(&e) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_stable_and_collision_count_changes_them() {
        let d = serde_json::json!({"spec": {"template": {"a": 1}}});
        assert_eq!(revision_hash(&d, None), revision_hash(&d, None));
        assert_ne!(revision_hash(&d, None), revision_hash(&d, Some(1)));
        let other = serde_json::json!({"spec": {"template": {"a": 2}}});
        assert_ne!(revision_hash(&d, None), revision_hash(&other, None));
    }
}
