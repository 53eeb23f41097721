//! RollingUpdate and Recreate rollouts and the Progressing condition (mirrors upstream
//! pkg/controller/deployment/rolling.go, recreate.go and progress.go).

use super::DeploymentController;
use super::sync::calculate_status;
use super::util::*;
use component_base::informer::key_of;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

impl DeploymentController {
    /// Upstream `rolloutRolling`.
    pub(super) async fn rollout_rolling(
        &self,
        d: &mut Deployment,
        rss: &[ReplicaSet],
    ) -> anyhow::Result<()> {
        let (new_rs, old) = Box::pin(self.new_and_old(d, rss, true)).await?;
        let Some(mut new_rs) = new_rs else {
            anyhow::bail!("no new replica set for deployment {}", d.name_any());
        };
        // Scale up the new ReplicaSet as far as maxSurge allows.
        let mut all = old.clone();
        all.push(new_rs.clone());
        let want = replicas(d);
        let target = if rs_replicas(&new_rs) > want {
            want
        } else {
            new_rs_new_replicas(d, &all, &new_rs)
        };
        if rs_replicas(&new_rs) != target {
            new_rs = self.scale_rs(d, &new_rs, target).await?;
            return self.sync_rollout_status(d, Some(&new_rs), &old).await;
        }
        // Scale old ReplicaSets down as far as maxUnavailable allows.
        let (old, scaled_down) = self.reconcile_old(d, old, &new_rs).await?;
        if scaled_down {
            return self.sync_rollout_status(d, Some(&new_rs), &old).await;
        }
        let status = calculate_status(d, Some(&new_rs), &old);
        if is_complete(d, &status) {
            self.cleanup(d, &old).await?;
        }
        self.sync_rollout_status(d, Some(&new_rs), &old).await
    }

    /// Upstream `reconcileOldReplicaSets`: unhealthy old replicas go first, then healthy ones
    /// while enough pods stay available.
    async fn reconcile_old(
        &self,
        d: &Deployment,
        mut old: Vec<ReplicaSet>,
        new_rs: &ReplicaSet,
    ) -> anyhow::Result<(Vec<ReplicaSet>, bool)> {
        let old_count = sum_replicas(&old);
        if old_count == 0 {
            return Ok((old, false));
        }
        let all_count = old_count + rs_replicas(new_rs);
        let min_available = replicas(d) - max_unavailable(d);
        let new_unavailable = rs_replicas(new_rs) - rs_available(new_rs);
        let max_scaled_down = all_count - min_available - new_unavailable;
        if max_scaled_down <= 0 {
            return Ok((old, false));
        }
        // Clean up unhealthy replicas first.
        old.sort_by(by_creation);
        let mut cleaned = 0;
        for rs in old.iter_mut() {
            if cleaned >= max_scaled_down {
                break;
            }
            let unhealthy = rs_replicas(rs) - rs_available(rs);
            if rs_replicas(rs) == 0 || unhealthy == 0 {
                continue;
            }
            let n = (max_scaled_down - cleaned).min(unhealthy);
            *rs = self.scale_rs(d, rs, rs_replicas(rs) - n).await?;
            cleaned += n;
        }
        // Then healthy ones, keeping minAvailable.
        let mut all = old.clone();
        all.push(new_rs.clone());
        let available: i32 = all.iter().map(rs_available).sum();
        let mut scaled = 0;
        if available > min_available {
            let total = available - min_available;
            for rs in old.iter_mut() {
                if scaled >= total {
                    break;
                }
                if rs_replicas(rs) == 0 {
                    continue;
                }
                let n = rs_replicas(rs).min(total - scaled);
                *rs = self.scale_rs(d, rs, rs_replicas(rs) - n).await?;
                scaled += n;
            }
        }
        Ok((old, cleaned + scaled > 0))
    }

    /// Upstream `rolloutRecreate`: old ReplicaSets to zero, wait for their pods to stop, then
    /// the new ReplicaSet to full size.
    pub(super) async fn rollout_recreate(
        &self,
        d: &mut Deployment,
        rss: &[ReplicaSet],
        pod_map: &HashMap<String, Vec<Arc<Pod>>>,
    ) -> anyhow::Result<()> {
        let (new_rs, mut old) = Box::pin(self.new_and_old(d, rss, false)).await?;
        let mut scaled_down = false;
        for rs in old.iter_mut() {
            if rs_replicas(rs) != 0 {
                *rs = self.scale_rs(d, rs, 0).await?;
                scaled_down = true;
            }
        }
        if scaled_down || old_pods_running(new_rs.as_ref(), &old, pod_map) {
            return self.sync_rollout_status(d, new_rs.as_ref(), &old).await;
        }
        let (new_rs, old) = match new_rs {
            Some(n) => (n, old),
            None => match Box::pin(self.new_and_old(d, rss, true)).await? {
                (Some(n), old) => (n, old),
                (None, _) => anyhow::bail!("no new replica set for deployment {}", d.name_any()),
            },
        };
        let new_rs = self.scale_rs(d, &new_rs, replicas(d)).await?;
        let status = calculate_status(d, Some(&new_rs), &old);
        if is_complete(d, &status) {
            self.cleanup(d, &old).await?;
        }
        self.sync_rollout_status(d, Some(&new_rs), &old).await
    }

    /// Upstream `syncRolloutStatus`: status plus the Progressing condition.
    pub(super) async fn sync_rollout_status(
        &self,
        d: &mut Deployment,
        new_rs: Option<&ReplicaSet>,
        old: &[ReplicaSet],
    ) -> anyhow::Result<()> {
        let mut status = calculate_status(d, new_rs, old);
        if progress_deadline(d).is_none() {
            remove_condition(&mut status, PROGRESSING);
        }
        let prev = d.status.clone().unwrap_or_default();
        let current = get_condition(&prev, PROGRESSING).cloned();
        let complete_before = status.replicas == status.updated_replicas
            && current
                .as_ref()
                .is_some_and(|c| c.reason.as_deref() == Some("NewReplicaSetAvailable"));
        if progress_deadline(d).is_some() && !complete_before {
            let subject = match new_rs {
                Some(rs) => format!("ReplicaSet {:?}", rs.name_any()),
                None => format!("Deployment {:?}", d.name_any()),
            };
            if is_complete(d, &status) {
                let msg = format!("{subject} has successfully progressed.");
                set_condition(
                    &mut status,
                    new_condition(PROGRESSING, "True", "NewReplicaSetAvailable", msg),
                );
            } else if is_progressing(d, &status) {
                let msg = format!("{subject} is progressing.");
                let mut c = new_condition(PROGRESSING, "True", "ReplicaSetUpdated", msg);
                if let Some(cur) = &current {
                    if cur.status.as_deref() == Some("True") {
                        c.last_transition_time = cur.last_transition_time.clone();
                    }
                    remove_condition(&mut status, PROGRESSING);
                }
                set_condition(&mut status, c);
            } else if is_timed_out(d, &status) {
                let msg = format!("{subject} has timed out progressing.");
                set_condition(
                    &mut status,
                    new_condition(PROGRESSING, "False", "ProgressDeadlineExceeded", msg),
                );
            }
        }
        match replica_failure(new_rs, old) {
            Some(c) => set_condition(&mut status, c),
            None => remove_condition(&mut status, REPLICA_FAILURE),
        }
        if d.status.as_ref() == Some(&status) {
            self.requeue_stuck(d, &status);
            return Ok(());
        }
        d.status = Some(status);
        self.update_status(d).await
    }

    /// Re-checks a deployment when its progress deadline would pass (upstream
    /// `requeueStuckDeployment`).
    fn requeue_stuck(&self, d: &Deployment, status: &DeploymentStatus) {
        let Some(deadline) = progress_deadline(d) else {
            return;
        };
        let prev = d.status.clone().unwrap_or_default();
        let Some(cur) = get_condition(&prev, PROGRESSING) else {
            return;
        };
        if is_complete(d, status) || cur.reason.as_deref() == Some("ProgressDeadlineExceeded") {
            return;
        }
        let Some(updated) = cur.last_update_time.as_ref() else {
            return;
        };
        let due = updated.0.as_second() + i64::from(deadline);
        let left = due - jiff::Timestamp::now().as_second();
        let delay = if left < 1 { 1 } else { left as u64 + 1 };
        self.queue.add_after(key_of(d), Duration::from_secs(delay));
    }
}

/// The first ReplicaFailure condition of the new, then the old ReplicaSets, as a deployment
/// condition (upstream `getReplicaFailures`).
fn replica_failure(new_rs: Option<&ReplicaSet>, old: &[ReplicaSet]) -> Option<DeploymentCondition> {
    new_rs.into_iter().chain(old.iter()).find_map(|rs| {
        let c = rs
            .status
            .as_ref()?
            .conditions
            .as_ref()?
            .iter()
            .find(|c| c.type_.as_deref() == Some(REPLICA_FAILURE))?;
        Some(DeploymentCondition {
            type_: c.type_.clone(),
            status: c.status.clone(),
            reason: c.reason.clone(),
            message: c.message.clone(),
            last_update_time: c.last_transition_time.clone(),
            last_transition_time: c.last_transition_time.clone(),
        })
    })
}

/// Old pods still exist or may still run (upstream `oldPodsRunning`).
fn old_pods_running(
    new_rs: Option<&ReplicaSet>,
    old: &[ReplicaSet],
    pod_map: &HashMap<String, Vec<Arc<Pod>>>,
) -> bool {
    let old_status: i32 = old
        .iter()
        .filter_map(|rs| rs.status.as_ref())
        .map(|s| s.replicas)
        .sum();
    if old_status > 0 {
        return true;
    }
    let new_uid = new_rs.and_then(|rs| rs.metadata.uid.clone());
    pod_map.iter().any(|(uid, pods)| {
        Some(uid) != new_uid.as_ref()
            && pods.iter().any(|p| {
                let phase = p.status.as_ref().and_then(|s| s.phase.as_deref());
                !matches!(phase, Some("Failed") | Some("Succeeded"))
            })
    })
}
