//! Deployment scaling, new-ReplicaSet creation, history cleanup and status (mirrors upstream
//! pkg/controller/deployment/sync.go).

use super::DeploymentController;
use super::util::*;
use crate::controller_utils::{
    controller_ref, error_message, is_already_exists, is_not_found, new_controller_ref,
};
use k8s_openapi::api::apps::v1::{Deployment, DeploymentStatus, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{DeleteParams, PostParams};
use kube::{Api, ResourceExt};
use std::collections::HashMap;

fn nz(v: i32) -> Option<i32> {
    (v != 0).then_some(v)
}

impl DeploymentController {
    fn rs_api(&self, d: &Deployment) -> Api<ReplicaSet> {
        Api::namespaced(self.client.clone(), &d.namespace().unwrap_or_default())
    }

    /// Upstream `getAllReplicaSetsAndSyncRevision`: the new ReplicaSet (created when `create`
    /// and missing) and all the others.
    pub(super) async fn new_and_old(
        &self,
        d: &mut Deployment,
        rss: &[ReplicaSet],
        create: bool,
    ) -> anyhow::Result<(Option<ReplicaSet>, Vec<ReplicaSet>)> {
        let new_uid = find_new(d, rss).and_then(|rs| rs.metadata.uid);
        let old: Vec<ReplicaSet> = rss
            .iter()
            .filter(|rs| new_uid.is_none() || rs.metadata.uid != new_uid)
            .cloned()
            .collect();
        let new_rs = Box::pin(self.new_replica_set(d, rss, &old, create)).await?;
        Ok((new_rs, old))
    }

    /// Upstream `getNewReplicaSet`.
    async fn new_replica_set(
        &self,
        d: &mut Deployment,
        rss: &[ReplicaSet],
        old: &[ReplicaSet],
        create: bool,
    ) -> anyhow::Result<Option<ReplicaSet>> {
        let new_revision = max_revision(old) + 1;
        let api = self.rs_api(d);
        if let Some(existing) = find_new(d, rss) {
            let mut rs = existing.clone();
            let changed = set_new_rs_annotations(d, &mut rs, new_revision, true);
            let min_ready = d.spec.min_ready_seconds;
            if changed || rs.spec.min_ready_seconds != min_ready {
                rs.spec.min_ready_seconds = min_ready;
                let updated = api
                    .replace(&rs.name_any(), &PostParams::default(), &rs)
                    .await?;
                return Ok(Some(updated));
            }
            let rev = rs
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(REVISION))
                .cloned()
                .unwrap_or_default();
            let mut needs_update = set_deployment_revision(d, &rev);
            let has_deadline = progress_deadline(d).is_some();
            let status = d.status.get_or_insert_default();
            if has_deadline && get_condition(status, PROGRESSING).is_none() {
                let msg = format!("Found new replica set {:?}", rs.name_any());
                set_condition(
                    status,
                    new_condition(PROGRESSING, "True", "FoundNewReplicaSet", msg),
                );
                needs_update = true;
            }
            if needs_update {
                self.update_status(d).await?;
            }
            return Ok(Some(rs));
        }
        if !create {
            return Ok(None);
        }
        let hash = template_hash(d);
        let mut template = d.spec.template.clone();
        let tmeta = template.metadata.get_or_insert_default();
        tmeta
            .labels
            .get_or_insert_default()
            .insert(POD_TEMPLATE_HASH.into(), hash.clone());
        let mut selector = d.spec.selector.clone();
        selector
            .match_labels
            .get_or_insert_default()
            .insert(POD_TEMPLATE_HASH.into(), hash.clone());
        let mut new_rs = ReplicaSet {
            metadata: ObjectMeta {
                name: Some(format!("{}-{hash}", d.name_any())),
                namespace: d.namespace(),
                owner_references: Some(vec![new_controller_ref(
                    "apps/v1",
                    "Deployment",
                    &d.metadata,
                )?]),
                labels: tmeta.labels.clone(),
                ..Default::default()
            },
            spec: ReplicaSetSpec {
                replicas: Some(0),
                min_ready_seconds: d.spec.min_ready_seconds,
                selector,
                template: Some(template),
            },
            status: None,
        };
        let mut all = old.to_vec();
        all.push(new_rs.clone());
        let count = new_rs_new_replicas(d, &all, &new_rs);
        new_rs.spec.replicas = Some(count);
        set_new_rs_annotations(d, &mut new_rs, new_revision, false);
        let name = new_rs.name_any();
        let (created, already_existed) = match api.create(&PostParams::default(), &new_rs).await {
            Ok(rs) => (rs, false),
            Err(e) if is_already_exists(&e) => {
                let existing = api.get(&name).await?;
                let ours = controller_ref(&existing.metadata)
                    .is_some_and(|r| Some(&r.uid) == d.metadata.uid.as_ref());
                let same = existing
                    .spec
                    .template
                    .as_ref()
                    .is_some_and(|t| equal_ignore_hash(t, &d.spec.template));
                if ours && same {
                    (existing, true)
                } else {
                    // A hash collision: try the next hash.
                    let st = d.status.get_or_insert_default();
                    st.collision_count = Some(st.collision_count.unwrap_or(0) + 1);
                    self.update_status(d).await?;
                    anyhow::bail!("replica set {name} already exists (hash collision)");
                }
            }
            Err(e) => {
                if !crate::controller_utils::is_namespace_terminating(&e) {
                    let msg = format!(
                        "Failed to create new replica set {name:?}: {}",
                        error_message(&e)
                    );
                    if progress_deadline(d).is_some() {
                        set_condition(
                            d.status.get_or_insert_default(),
                            new_condition(
                                PROGRESSING,
                                "False",
                                "ReplicaSetCreateError",
                                msg.clone(),
                            ),
                        );
                        self.update_status(d).await?;
                    }
                    self.recorder
                        .warning(d, "ReplicaSetCreateError", "Create", msg);
                }
                return Err(e.into());
            }
        };
        if !already_existed && count > 0 {
            self.recorder.normal(
                d,
                "ScalingReplicaSet",
                "Scale",
                format!("Scaled up replica set {name} from 0 to {count}"),
            );
        }
        let mut needs_update = set_deployment_revision(d, &new_revision.to_string());
        if !already_existed && progress_deadline(d).is_some() {
            let msg = format!("Created new replica set {name:?}");
            set_condition(
                d.status.get_or_insert_default(),
                new_condition(PROGRESSING, "True", "NewReplicaSetCreated", msg),
            );
            needs_update = true;
        }
        if needs_update {
            self.update_status(d).await?;
        }
        Ok(Some(created))
    }

    /// Some active ReplicaSet was sized for another replica count (upstream
    /// `isScalingEvent`).
    pub(super) async fn is_scaling_event(
        &self,
        d: &mut Deployment,
        rss: &[ReplicaSet],
    ) -> anyhow::Result<bool> {
        let (new_rs, mut all) = Box::pin(self.new_and_old(d, rss, false)).await?;
        all.extend(new_rs);
        Ok(active(&all)
            .iter()
            .filter_map(desired_annotation)
            .any(|want| want != replicas(d)))
    }

    /// Scaling only, for paused deployments and scaling events (upstream `sync`).
    pub(super) async fn sync_scale(
        &self,
        d: &mut Deployment,
        rss: &[ReplicaSet],
    ) -> anyhow::Result<()> {
        let (new_rs, old) = Box::pin(self.new_and_old(d, rss, false)).await?;
        let (new_rs, old) = self.scale(d, new_rs, old).await?;
        if d.spec.paused == Some(true) {
            self.cleanup(d, &old).await?;
        }
        self.sync_status(d, new_rs.as_ref(), &old).await
    }

    /// Upstream `scale`: one active ReplicaSet takes the full count; a saturated new one makes
    /// the old ones go to zero; otherwise the change is spread proportionally.
    async fn scale(
        &self,
        d: &Deployment,
        new_rs: Option<ReplicaSet>,
        mut old: Vec<ReplicaSet>,
    ) -> anyhow::Result<(Option<ReplicaSet>, Vec<ReplicaSet>)> {
        let want = replicas(d);
        // Active or latest.
        old.sort_by(|a, b| by_creation(b, a));
        let mut all = old.clone();
        all.extend(new_rs.clone());
        let act = active(&all);
        let target = match act.len() {
            0 => new_rs.clone().or_else(|| old.first().cloned()),
            1 => act.first().cloned(),
            _ => None,
        };
        if let Some(t) = target {
            if rs_replicas(&t) != want {
                let scaled = self.scale_rs(d, &t, want).await?;
                return Ok(replace_in(new_rs, old, scaled));
            }
            return Ok((new_rs, old));
        }
        if is_saturated(d, new_rs.as_ref()) {
            for rs in active(&old) {
                let scaled = self.scale_rs(d, &rs, 0).await?;
                for o in old.iter_mut() {
                    if o.metadata.uid == scaled.metadata.uid {
                        *o = scaled.clone();
                    }
                }
            }
            return Ok((new_rs, old));
        }
        if is_recreate(d) {
            return Ok((new_rs, old));
        }
        let mut act = act;
        let allowed = if want > 0 { want + max_surge(d) } else { 0 };
        let to_add = allowed - sum_replicas(&act);
        if to_add > 0 {
            act.sort_by(|a, b| by_size(a, b, true));
        } else if to_add < 0 {
            act.sort_by(|a, b| by_size(a, b, false));
        }
        let mut added = 0;
        let mut sizes: HashMap<String, i32> = HashMap::new();
        for rs in &act {
            let p = if to_add != 0 {
                proportion(rs, d, to_add, added)
            } else {
                0
            };
            added += p;
            sizes.insert(rs.name_any(), rs_replicas(rs) + p);
        }
        let (mut new_rs, mut old) = (new_rs, old);
        for (i, rs) in act.iter().enumerate() {
            let mut size = sizes.get(&rs.name_any()).copied().unwrap_or(0);
            if i == 0 && to_add != 0 {
                size = (size + to_add - added).max(0);
            }
            let scaled = self.scale_rs_always(d, rs, size).await?;
            (new_rs, old) = replace_in(new_rs, old, scaled);
        }
        Ok((new_rs, old))
    }

    /// Resizes `rs` when its size differs (upstream `scaleReplicaSetAndRecordEvent`).
    pub(super) async fn scale_rs(
        &self,
        d: &Deployment,
        rs: &ReplicaSet,
        size: i32,
    ) -> anyhow::Result<ReplicaSet> {
        if rs_replicas(rs) == size {
            return Ok(rs.clone());
        }
        self.scale_rs_always(d, rs, size).await
    }

    /// Resizes `rs` and refreshes its replica annotations (upstream `scaleReplicaSet`).
    async fn scale_rs_always(
        &self,
        d: &Deployment,
        rs: &ReplicaSet,
        size: i32,
    ) -> anyhow::Result<ReplicaSet> {
        let want = replicas(d);
        let max = want + max_surge(d);
        let old_size = rs_replicas(rs);
        let resize = old_size != size;
        if !resize && !replicas_annotations_need_update(rs, want, max) {
            return Ok(rs.clone());
        }
        let mut copy = rs.clone();
        copy.spec.replicas = Some(size);
        set_replicas_annotations(&mut copy, want, max);
        let updated = self
            .rs_api(d)
            .replace(&rs.name_any(), &PostParams::default(), &copy)
            .await?;
        if resize {
            let op = if old_size > size { "down" } else { "up" };
            self.recorder.normal(
                d,
                "ScalingReplicaSet",
                "Scale",
                format!(
                    "Scaled {op} replica set {} from {old_size} to {size}",
                    rs.name_any()
                ),
            );
        }
        Ok(updated)
    }

    /// Deletes the oldest unused ReplicaSets beyond `revisionHistoryLimit` (upstream
    /// `cleanupDeployment`).
    pub(super) async fn cleanup(&self, d: &Deployment, old: &[ReplicaSet]) -> anyhow::Result<()> {
        let Some(limit) = d.spec.revision_history_limit else {
            return Ok(());
        };
        let mut cleanable: Vec<&ReplicaSet> = old
            .iter()
            .filter(|rs| rs.metadata.deletion_timestamp.is_none())
            .collect();
        let diff = cleanable.len() as i64 - i64::from(limit);
        if diff <= 0 {
            return Ok(());
        }
        cleanable.sort_by(|a, b| by_revision(a, b));
        let api = self.rs_api(d);
        for rs in cleanable.into_iter().take(diff as usize) {
            let st = rs.status.clone().unwrap_or_default();
            if st.replicas != 0
                || rs_replicas(rs) != 0
                || rs.metadata.generation.unwrap_or(0) > st.observed_generation.unwrap_or(0)
            {
                continue;
            }
            match api.delete(&rs.name_any(), &DeleteParams::default()).await {
                Ok(_) => {}
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Upstream `syncDeploymentStatus`.
    pub(super) async fn sync_status(
        &self,
        d: &mut Deployment,
        new_rs: Option<&ReplicaSet>,
        old: &[ReplicaSet],
    ) -> anyhow::Result<()> {
        let status = calculate_status(d, new_rs, old);
        if d.status.as_ref() == Some(&status) {
            return Ok(());
        }
        d.status = Some(status);
        self.update_status(d).await
    }
}

fn replace_in(
    new_rs: Option<ReplicaSet>,
    mut old: Vec<ReplicaSet>,
    scaled: ReplicaSet,
) -> (Option<ReplicaSet>, Vec<ReplicaSet>) {
    if new_rs
        .as_ref()
        .is_some_and(|n| n.metadata.uid == scaled.metadata.uid)
    {
        return (Some(scaled), old);
    }
    for o in old.iter_mut() {
        if o.metadata.uid == scaled.metadata.uid {
            *o = scaled.clone();
        }
    }
    (new_rs, old)
}

/// Upstream `calculateStatus`: counts over all ReplicaSets and the Available condition.
pub(super) fn calculate_status(
    d: &Deployment,
    new_rs: Option<&ReplicaSet>,
    old: &[ReplicaSet],
) -> DeploymentStatus {
    let mut all: Vec<ReplicaSet> = old.to_vec();
    all.extend(new_rs.cloned());
    let available = sum_status(&all, |s| s.available_replicas.unwrap_or(0));
    let total = sum_replicas(&all);
    let prev = d.status.clone().unwrap_or_default();
    let mut status = DeploymentStatus {
        observed_generation: d.metadata.generation,
        replicas: nz(sum_status(&all, |s| s.replicas)),
        updated_replicas: nz(new_rs.map_or(0, |rs| rs.status.as_ref().map_or(0, |s| s.replicas))),
        ready_replicas: nz(sum_status(&all, |s| s.ready_replicas.unwrap_or(0))),
        available_replicas: nz(available),
        unavailable_replicas: nz((total - available).max(0)),
        terminating_replicas: Some(sum_status(&all, |s| s.terminating_replicas.unwrap_or(0))),
        collision_count: prev.collision_count,
        conditions: prev.conditions.clone(),
    };
    let c = if available >= replicas(d) - max_unavailable(d) {
        new_condition(
            AVAILABLE,
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.".into(),
        )
    } else {
        new_condition(
            AVAILABLE,
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.".into(),
        )
    };
    set_condition(&mut status, c);
    status
}
