//! One StatefulSet sync (mirrors upstream `pkg/controller/statefulset/stateful_set_control.go`):
//! revisions, then pods in ordinal order — claims before pods, OrderedReady waits for each pod to
//! be Running and Ready before the next and scales down from the highest ordinal one at a time,
//! Parallel does not wait — then RollingUpdate from the highest ordinal down to the partition,
//! persistentVolumeClaimRetentionPolicy owner references, history and status.

use super::{
    StatefulSetController, claim_name, is_running_and_available, is_running_and_ready, is_terminal,
    new_pod, ordinal_of, pod_revision, revision_label,
};
use crate::history;
use crate::podutil::{controller_owner_ref, is_already_exists, is_controlled_by, is_not_found};
use component_base::informer::split_key;
use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet, StatefulSetStatus};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use std::collections::BTreeMap;
use std::sync::Arc;

pub(super) async fn sync(c: &StatefulSetController, key: &str) -> anyhow::Result<()> {
    let (ns, name) = split_key(key);
    let Some(shared) = c.sets.get(ns, name) else {
        return Ok(());
    };
    let set = (*shared).clone();
    if set.metadata.deletion_timestamp.is_some() {
        return Ok(());
    }
    let ns = ns.unwrap_or("").to_string();
    let uid = set.metadata.uid.clone().unwrap_or_default();
    let pods: Vec<Arc<Pod>> = crate::podutil::claim_pods(
        &c.client,
        &set,
        &set.spec.selector,
        c.pods.list_namespace(&ns),
        |p| ordinal_of(name, p.metadata.name.as_deref().unwrap_or("")).is_some(),
    )
    .await?;
    // Revisions: the update revision is the current template; the current one is what the
    // status says (or the update revision at first).
    let owned = history::owned(&c.revisions.list_namespace(&ns), &uid);
    let collision = set.status.as_ref().and_then(|s| s.collision_count);
    let want = history::new_revision(
        name,
        &ns,
        controller_owner_ref(&set),
        set.spec
            .template
            .metadata
            .as_ref()
            .and_then(|m| m.labels.as_ref()),
        history::template_patch(&set.spec.template),
        0,
        collision,
    );
    let (update_rev, collision) =
        history::ensure_revision(&c.client, &owned, want, name, collision).await?;
    let current_name = set.status.as_ref().and_then(|s| s.current_revision.clone());
    let current_rev = current_name
        .and_then(|n| {
            owned
                .iter()
                .find(|r| r.metadata.name.as_deref() == Some(n.as_str()))
                .map(|r| (**r).clone())
        })
        .unwrap_or_else(|| update_rev.clone());

    let result = update_pods(c, &set, &pods, &current_rev, &update_rev).await;

    let mut live: Vec<String> = pods
        .iter()
        .filter_map(|p| pod_revision(p).map(String::from))
        .collect();
    live.push(revision_label(&current_rev));
    live.push(revision_label(&update_rev));
    let hashes: Vec<String> = live
        .iter()
        .filter_map(|n| n.rsplit_once('-').map(|(_, h)| h.to_string()))
        .collect();
    let owned = history::owned(&c.revisions.list_namespace(&ns), &uid);
    history::truncate(
        &c.client,
        &owned,
        &hashes,
        set.spec.revision_history_limit.unwrap_or(10),
    )
    .await?;
    let pods: Vec<Arc<Pod>> = c
        .pods
        .list_namespace(&ns)
        .into_iter()
        .filter(|p| is_controlled_by(&p.metadata, &uid))
        .collect();
    update_status(c, &set, &pods, &current_rev, &update_rev, collision).await?;
    result
}

fn strategy(set: &StatefulSet) -> (&str, i32) {
    let s = set.spec.update_strategy.as_ref();
    let t = s
        .and_then(|s| s.type_.as_deref())
        .unwrap_or("RollingUpdate");
    let partition = s
        .and_then(|s| s.rolling_update.as_ref())
        .and_then(|r| r.partition)
        .unwrap_or(0);
    (t, partition)
}

async fn update_pods(
    c: &StatefulSetController,
    set: &StatefulSet,
    pods: &[Arc<Pod>],
    current: &ControllerRevision,
    update: &ControllerRevision,
) -> anyhow::Result<()> {
    let name = set.metadata.name.clone().unwrap_or_default();
    let ns = set.metadata.namespace.clone().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(c.client.clone(), &ns);
    let replicas = set.spec.replicas.unwrap_or(1).max(0);
    let start = set
        .spec
        .ordinals
        .as_ref()
        .and_then(|o| o.start)
        .unwrap_or(0)
        .max(0);
    let monotonic = set.spec.pod_management_policy.as_deref() != Some("Parallel");
    let (strategy, partition) = strategy(set);
    let min_ready = set.spec.min_ready_seconds.unwrap_or(0);
    let mut slots: BTreeMap<i32, Arc<Pod>> = BTreeMap::new();
    let mut condemned: Vec<(i32, Arc<Pod>)> = Vec::new();
    for p in pods {
        let Some(o) = ordinal_of(&name, p.metadata.name.as_deref().unwrap_or("")) else {
            continue;
        };
        if o >= start && o < start + replicas {
            slots.insert(o, p.clone());
        } else {
            condemned.push((o, p.clone()));
        }
    }
    condemned.sort_by_key(|(o, _)| std::cmp::Reverse(*o));
    let current_replicas = set
        .status
        .as_ref()
        .and_then(|s| s.current_replicas)
        .unwrap_or(0);
    // Scale up / repair in ordinal order.
    for ordinal in start..start + replicas {
        match slots.get(&ordinal) {
            None => {
                // Below the partition (or, without rollingUpdate, the current replicas) a
                // recreated pod keeps the current revision.
                let bound = match set
                    .spec
                    .update_strategy
                    .as_ref()
                    .and_then(|s| s.rolling_update.as_ref())
                {
                    None => current_replicas,
                    Some(_) => partition,
                };
                let use_current = strategy == "RollingUpdate" && ordinal < start + bound;
                let rev = if use_current { current } else { update };
                let pod = new_pod(set, rev, ordinal);
                create_claims(c, set, &pod, ordinal).await?;
                let pod_name = pod.metadata.name.clone().unwrap_or_default();
                match api.create(&PostParams::default(), &pod).await {
                    Ok(_) => c.recorder.normal(
                        set,
                        "SuccessfulCreate",
                        "Create",
                        format!("create Pod {pod_name} in StatefulSet {name} successful"),
                    ),
                    Err(e) if is_already_exists(&e) => {}
                    Err(e) => {
                        c.recorder.warning(
                            set,
                            "FailedCreate",
                            "Create",
                            format!(
                                "create Pod {pod_name} in StatefulSet {name} failed error: {e}"
                            ),
                        );
                        return Err(e.into());
                    }
                }
                if monotonic {
                    return Ok(());
                }
            }
            Some(p) if is_terminal(p) && p.metadata.deletion_timestamp.is_none() => {
                // Failed or Succeeded: delete, and recreate on a later sync.
                delete_pod(c, set, &api, p).await?;
                if monotonic {
                    return Ok(());
                }
            }
            Some(p) => {
                if monotonic
                    && (p.metadata.deletion_timestamp.is_some()
                        || !is_running_and_ready(p)
                        || !is_running_and_available(p, min_ready))
                {
                    if min_ready > 0 && is_running_and_ready(p) {
                        c.queue.add_after(
                            component_base::informer::key_of(set),
                            std::time::Duration::from_secs(min_ready as u64),
                        );
                    }
                    return Ok(());
                }
            }
        }
    }
    // Scale down from the highest ordinal.
    for (_, p) in &condemned {
        if p.metadata.deletion_timestamp.is_some() {
            if monotonic {
                return Ok(());
            }
            continue;
        }
        retain_claims_on_scale_down(c, set, p).await?;
        delete_pod(c, set, &api, p).await?;
        if monotonic {
            return Ok(());
        }
    }
    if strategy != "RollingUpdate" {
        return Ok(());
    }
    // Rolling update: highest ordinal first, down to the partition, one pod at a time.
    let update_label = update.metadata.name.clone();
    for (ordinal, p) in slots.iter().rev() {
        if ordinal - start < partition {
            break;
        }
        if pod_revision(p) != update_label.as_deref() && p.metadata.deletion_timestamp.is_none() {
            delete_pod(c, set, &api, p).await?;
            return Ok(());
        }
        if !is_running_and_ready(p) || p.metadata.deletion_timestamp.is_some() {
            return Ok(());
        }
    }
    Ok(())
}

async fn delete_pod(
    c: &StatefulSetController,
    set: &StatefulSet,
    api: &Api<Pod>,
    p: &Pod,
) -> anyhow::Result<()> {
    let name = set.metadata.name.clone().unwrap_or_default();
    let pn = p.metadata.name.clone().unwrap_or_default();
    match api.delete(&pn, &DeleteParams::default()).await {
        Ok(_) => {
            c.recorder.normal(
                set,
                "SuccessfulDelete",
                "Delete",
                format!("delete Pod {pn} in StatefulSet {name} successful"),
            );
            Ok(())
        }
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => {
            c.recorder.warning(
                set,
                "FailedDelete",
                "Delete",
                format!("delete Pod {pn} in StatefulSet {name} failed error: {e}"),
            );
            Err(e.into())
        }
    }
}

fn retention(set: &StatefulSet) -> (String, String) {
    let r = set.spec.persistent_volume_claim_retention_policy.as_ref();
    (
        r.and_then(|r| r.when_deleted.clone())
            .unwrap_or_else(|| "Retain".into()),
        r.and_then(|r| r.when_scaled.clone())
            .unwrap_or_else(|| "Retain".into()),
    )
}

/// Creates the pod's missing claims (labels: claim template labels plus the set's
/// matchLabels; owned by the set when whenDeleted is Delete).
async fn create_claims(
    c: &StatefulSetController,
    set: &StatefulSet,
    pod: &Pod,
    ordinal: i32,
) -> anyhow::Result<()> {
    let name = set.metadata.name.clone().unwrap_or_default();
    let ns = set.metadata.namespace.clone().unwrap_or_default();
    let api: Api<PersistentVolumeClaim> = Api::namespaced(c.client.clone(), &ns);
    let (when_deleted, _) = retention(set);
    let pod_name = pod.metadata.name.clone().unwrap_or_default();
    for t in set.spec.volume_claim_templates.iter().flatten() {
        let tname = t.metadata.name.clone().unwrap_or_default();
        let cname = claim_name(&tname, &name, ordinal);
        if c.claims.get(Some(&ns), &cname).is_some() {
            continue;
        }
        let mut claim = t.clone();
        claim.metadata.name = Some(cname.clone());
        claim.metadata.namespace = Some(ns.clone());
        claim.metadata.resource_version = None;
        claim.metadata.uid = None;
        claim.status = None;
        let labels = claim.metadata.labels.get_or_insert_with(Default::default);
        for (k, v) in set.spec.selector.match_labels.iter().flatten() {
            labels.insert(k.clone(), v.clone());
        }
        if when_deleted == "Delete" {
            claim.metadata.owner_references =
                Some(vec![non_controller_ref(controller_owner_ref(set))]);
        }
        match api.create(&PostParams::default(), &claim).await {
            Ok(_) => c.recorder.normal(
                set,
                "SuccessfulCreate",
                "Create",
                format!("create Claim {cname} Pod {pod_name} in StatefulSet {name} success"),
            ),
            Err(e) if is_already_exists(&e) => {}
            Err(e) => {
                c.recorder.warning(set, "FailedCreate", "Create",
                    format!("create Claim {cname} for Pod {pod_name} in StatefulSet {name} failed error: {e}"));
                return Err(e.into());
            }
        }
    }
    Ok(())
}

/// Owner references on claims never claim control (as upstream).
fn non_controller_ref(mut r: OwnerReference) -> OwnerReference {
    r.controller = None;
    r
}

/// whenScaled Delete: a scaled-down pod's claims become owned by the pod, so the garbage
/// collector removes them with it.
async fn retain_claims_on_scale_down(
    c: &StatefulSetController,
    set: &StatefulSet,
    pod: &Pod,
) -> anyhow::Result<()> {
    let (_, when_scaled) = retention(set);
    if when_scaled != "Delete" {
        return Ok(());
    }
    let name = set.metadata.name.clone().unwrap_or_default();
    let ns = set.metadata.namespace.clone().unwrap_or_default();
    let Some(ordinal) = ordinal_of(&name, pod.metadata.name.as_deref().unwrap_or("")) else {
        return Ok(());
    };
    let api: Api<PersistentVolumeClaim> = Api::namespaced(c.client.clone(), &ns);
    for t in set.spec.volume_claim_templates.iter().flatten() {
        let cname = claim_name(t.metadata.name.as_deref().unwrap_or(""), &name, ordinal);
        let Some(claim) = c.claims.get(Some(&ns), &cname) else {
            continue;
        };
        let puid = pod.metadata.uid.clone().unwrap_or_default();
        let mut refs = claim.metadata.owner_references.clone().unwrap_or_default();
        if refs.iter().any(|r| r.uid == puid) {
            continue;
        }
        refs.push(non_controller_ref(controller_owner_ref(pod)));
        let patch = serde_json::json!({"metadata": {"ownerReferences": refs}});
        match api
            .patch(&cname, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {}
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

async fn update_status(
    c: &StatefulSetController,
    set: &StatefulSet,
    pods: &[Arc<Pod>],
    current: &ControllerRevision,
    update: &ControllerRevision,
    collision: Option<i32>,
) -> anyhow::Result<()> {
    let min_ready = set.spec.min_ready_seconds.unwrap_or(0);
    let (cur, upd) = (current.metadata.name.clone(), update.metadata.name.clone());
    let mut st = StatefulSetStatus {
        observed_generation: set.metadata.generation,
        collision_count: collision,
        conditions: set.status.as_ref().and_then(|s| s.conditions.clone()),
        ..Default::default()
    };
    let (mut ready, mut available, mut current_n, mut updated) = (0, 0, 0, 0);
    for p in pods {
        if !crate::podutil::phase(p).is_empty() {
            st.replicas += 1;
        }
        if is_running_and_ready(p) {
            ready += 1;
            if is_running_and_available(p, min_ready) {
                available += 1;
            }
        }
        if !crate::podutil::phase(p).is_empty() && p.metadata.deletion_timestamp.is_none() {
            let r = pod_revision(p).map(String::from);
            if r == cur {
                current_n += 1;
            }
            if r == upd {
                updated += 1;
            }
        }
    }
    st.ready_replicas = Some(ready);
    st.available_replicas = Some(available);
    st.current_replicas = Some(current_n);
    st.updated_replicas = Some(updated);
    st.current_revision = cur.clone();
    st.update_revision = upd.clone();
    // A finished rolling update makes the update revision current.
    let (strategy, _) = strategy(set);
    if strategy == "RollingUpdate"
        && updated == st.replicas
        && ready == st.replicas
        && st.replicas == set.spec.replicas.unwrap_or(1)
    {
        st.current_revision = upd;
        st.current_replicas = Some(updated);
    }
    if set.status.as_ref() == Some(&st) {
        return Ok(());
    }
    let mut new = set.clone();
    new.status = Some(st);
    let api: Api<StatefulSet> = Api::namespaced(
        c.client.clone(),
        set.metadata.namespace.as_deref().unwrap_or(""),
    );
    api.replace_status(
        set.metadata.name.as_deref().unwrap_or(""),
        &PostParams::default(),
        &new,
    )
    .await?;
    Ok(())
}
