//! The replica reconcile (mirrors upstream pkg/controller/replicaset/replica_set.go
//! `syncReplicaSet`, `manageReplicas`, `slowStartBatch` and replica_set_utils.go
//! `calculateStatus` / `updateReplicaSetStatus`).

use super::{OwnerCondition, OwnerStatus, ReplicaController, ReplicaOwner};
use crate::controller_utils::pods::{
    is_pod_active, is_pod_available, is_pod_ready, is_pod_terminating, pods_to_delete,
};
use crate::controller_utils::{
    RefManager, controller_ref, error_message, is_namespace_terminating, is_not_found, labels_of,
    new_controller_ref,
};
use component_base::informer::{key_of, split_key};
use futures::future::join_all;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use kube::api::{DeleteParams, PostParams};
use kube::{Api, ResourceExt};
use std::sync::Arc;
use std::time::Duration;

/// Upstream `SlowStartInitialBatchSize`.
const SLOW_START_INITIAL_BATCH: usize = 1;

/// Runs `count` calls of `f` in batches of 1, 2, 4, ... stopping after the first batch with a
/// failure (upstream `slowStartBatch`). Returns the number of successes and the first error.
pub async fn slow_start_batch<F, Fut>(count: usize, f: F) -> (usize, Option<anyhow::Error>)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let mut remaining = count;
    let mut successes = 0;
    let mut batch = remaining.min(SLOW_START_INITIAL_BATCH);
    while batch > 0 {
        let results = join_all((0..batch).map(|_| f())).await;
        let mut first_err = None;
        for r in results {
            match r {
                Ok(()) => successes += 1,
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        if first_err.is_some() {
            return (successes, first_err);
        }
        remaining -= batch;
        batch = remaining.min(2 * batch);
    }
    (successes, None)
}

/// A pod for the owner's template (upstream `GetPodFromTemplate`): template labels,
/// annotations and finalizers, `generateName: <owner>-`, the controller reference.
pub fn pod_from_template<R: ReplicaOwner>(
    owner: &R,
    controller: &OwnerReference,
) -> anyhow::Result<Pod> {
    let Some(template) = owner.template() else {
        anyhow::bail!("unable to create pods, no template");
    };
    let tmeta = template.metadata.clone().unwrap_or_default();
    if tmeta.labels.as_ref().is_none_or(|l| l.is_empty()) {
        anyhow::bail!("unable to create pods, no labels");
    }
    Ok(Pod {
        metadata: ObjectMeta {
            generate_name: Some(format!("{}-", owner.name_any())),
            namespace: owner.namespace(),
            labels: tmeta.labels,
            annotations: tmeta.annotations,
            finalizers: tmeta.finalizers,
            owner_references: Some(vec![controller.clone()]),
            ..Default::default()
        },
        spec: template.spec.clone(),
        status: None,
    })
}

/// Status from the owner's active pods (upstream `calculateStatus`).
pub fn calculate_status<R: ReplicaOwner>(
    owner: &R,
    pods: &[Arc<Pod>],
    terminating: usize,
    manage_err: Option<&anyhow::Error>,
) -> OwnerStatus {
    let mut status = owner.owner_status();
    let template_labels = owner
        .template()
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    let now = jiff::Timestamp::now();
    let mut fully = 0;
    let mut ready = 0;
    let mut available = 0;
    for p in pods {
        let labels = labels_of(&p.metadata);
        if template_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
        {
            fully += 1;
        }
        if is_pod_ready(p) {
            ready += 1;
            if is_pod_available(p, owner.min_ready_seconds(), now) {
                available += 1;
            }
        }
    }
    let has_failure = status
        .conditions
        .iter()
        .any(|c| c.type_ == "ReplicaFailure");
    match manage_err {
        Some(e) if !has_failure => {
            let diff = pods.len() as i64 - i64::from(owner.replicas());
            let reason = if diff < 0 {
                "FailedCreate"
            } else if diff > 0 {
                "FailedDelete"
            } else {
                ""
            };
            status.conditions.push(OwnerCondition {
                type_: "ReplicaFailure".into(),
                status: "True".into(),
                reason: Some(reason.into()),
                message: Some(format!("{e:#}")),
                last_transition_time: Some(Time(now)),
            });
        }
        None if has_failure => status.conditions.retain(|c| c.type_ != "ReplicaFailure"),
        _ => {}
    }
    status.replicas = pods.len() as i32;
    status.fully_labeled_replicas = fully;
    status.ready_replicas = ready;
    status.available_replicas = available;
    if R::REPORTS_TERMINATING {
        status.terminating_replicas = Some(terminating as i32);
    }
    status
}

impl<R: ReplicaOwner> ReplicaController<R> {
    pub(super) async fn sync(&self, key: &str) -> anyhow::Result<()> {
        let Some(owner) = self.owners.get_by_key(key) else {
            self.expectations.delete(key);
            return Ok(());
        };
        let (Some(ns), name) = split_key(key) else {
            return Ok(());
        };
        let deleting = owner.meta().deletion_timestamp.is_some();
        let needs_sync = self.expectations.satisfied(key) && !deleting;
        let Some(selector) = owner.selector() else {
            tracing::warn!(%key, "invalid or empty selector; not syncing");
            return Ok(());
        };
        let controller = new_controller_ref(&R::api_version(&()), &R::kind(&()), owner.meta())?;
        let all = self.pods.list_namespace(ns);
        let terminating = all
            .iter()
            .filter(|p| {
                is_pod_terminating(p)
                    && controller_ref(&p.metadata).is_some_and(|r| r.uid == controller.uid)
                    && selector.matches(&labels_of(&p.metadata))
            })
            .count();
        let active: Vec<Arc<Pod>> = all.into_iter().filter(|p| is_pod_active(p)).collect();
        let mgr = RefManager {
            controller: &controller,
            selector: &selector,
            owner_deleting: deleting,
        };
        let pods_api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        let owners_api: Api<R> = Api::namespaced(self.client.clone(), ns);
        let uid = controller.uid.clone();
        let pods = mgr
            .claim(&pods_api, active, || async move {
                let fresh = owners_api.get(name).await?;
                if fresh.meta().uid.as_deref() != Some(uid.as_str()) {
                    anyhow::bail!("original {} {ns}/{name} is gone", R::kind(&()));
                }
                if fresh.meta().deletion_timestamp.is_some() {
                    anyhow::bail!("{} {ns}/{name} is being deleted", R::kind(&()));
                }
                Ok(())
            })
            .await?;
        let manage_err = if needs_sync {
            self.manage_replicas(&owner, key, &controller, &pods)
                .await
                .err()
        } else {
            None
        };
        let status = calculate_status(owner.as_ref(), &pods, terminating, manage_err.as_ref());
        let updated = self.update_status(&owner, status).await?;
        let min_ready = owner.min_ready_seconds();
        if manage_err.is_none()
            && min_ready > 0
            && updated.ready_replicas == owner.replicas()
            && updated.available_replicas != owner.replicas()
        {
            self.queue
                .add_after(key.to_string(), Duration::from_secs(min_ready as u64));
        }
        match manage_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    async fn manage_replicas(
        &self,
        owner: &Arc<R>,
        key: &str,
        controller: &OwnerReference,
        pods: &[Arc<Pod>],
    ) -> anyhow::Result<()> {
        let want = owner.replicas().max(0) as usize;
        let have = pods.len();
        let ns = owner.namespace().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        if have < want {
            let n = (want - have).min(self.burst);
            let pod = pod_from_template(owner.as_ref(), controller)?;
            self.expectations.expect_creations(key, n);
            let (created, err) = slow_start_batch(n, || self.create_pod(owner, &api, &pod)).await;
            if err.is_some() {
                // Creations that failed or were never tried will not be observed.
                for _ in created..n {
                    self.expectations.creation_observed(key);
                }
            }
            return err.map_or(Ok(()), Err);
        }
        if have > want {
            let n = (have - want).min(self.burst);
            let related = self.related_pods(owner, &ns);
            let victims = pods_to_delete(pods, &related, n);
            self.expectations
                .expect_deletions(key, victims.iter().map(|p| key_of(p.as_ref())).collect());
            let results = join_all(victims.iter().map(|p| self.delete_pod(owner, &api, p))).await;
            let mut first_err = None;
            for (p, r) in victims.iter().zip(results) {
                if let Err(e) = r {
                    self.expectations
                        .deletion_observed(key, &key_of(p.as_ref()));
                    if let Some(e) = e {
                        first_err.get_or_insert(e);
                    }
                }
            }
            return first_err.map_or(Ok(()), Err);
        }
        Ok(())
    }

    async fn create_pod(&self, owner: &Arc<R>, api: &Api<Pod>, pod: &Pod) -> anyhow::Result<()> {
        match api.create(&PostParams::default(), pod).await {
            Ok(created) => {
                self.recorder.normal(
                    owner.as_ref(),
                    "SuccessfulCreate",
                    "Create",
                    format!("Created pod: {}", created.name_any()),
                );
                Ok(())
            }
            // Upstream treats this as success: the namespace is going away.
            Err(e) if is_namespace_terminating(&e) => Ok(()),
            Err(e) => {
                self.recorder.warning(
                    owner.as_ref(),
                    "FailedCreate",
                    "Create",
                    format!("Error creating: {}", error_message(&e)),
                );
                Err(anyhow::anyhow!("{}", error_message(&e)))
            }
        }
    }

    /// `Err(None)` when the pod was already gone, `Err(Some)` on other failures.
    async fn delete_pod(
        &self,
        owner: &Arc<R>,
        api: &Api<Pod>,
        pod: &Pod,
    ) -> Result<(), Option<anyhow::Error>> {
        let name = pod.name_any();
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => {
                self.recorder.normal(
                    owner.as_ref(),
                    "SuccessfulDelete",
                    "Delete",
                    format!("Deleted pod: {name}"),
                );
                Ok(())
            }
            Err(e) if is_not_found(&e) => Err(None),
            Err(e) => {
                self.recorder.warning(
                    owner.as_ref(),
                    "FailedDelete",
                    "Delete",
                    format!("Error deleting: {}", error_message(&e)),
                );
                Err(Some(anyhow::anyhow!(
                    "unable to delete pods: {}",
                    error_message(&e)
                )))
            }
        }
    }

    /// Pods of the owner and of its siblings (owners controlled by the same controller, e.g.
    /// one Deployment's ReplicaSets), upstream `getIndirectlyRelatedPods`.
    fn related_pods(&self, owner: &R, ns: &str) -> Vec<Arc<Pod>> {
        let mut uids: Vec<String> = owner.meta().uid.iter().cloned().collect();
        if let Some(parent) = controller_ref(owner.meta()) {
            for o in self.owners.list_namespace(ns) {
                if controller_ref(o.meta()).is_some_and(|r| r.uid == parent.uid)
                    && let Some(u) = &o.meta().uid
                {
                    uids.push(u.clone());
                }
            }
        }
        self.pods
            .list_namespace(ns)
            .into_iter()
            .filter(|p| controller_ref(&p.metadata).is_some_and(|r| uids.contains(&r.uid)))
            .collect()
    }

    /// Writes the status unless nothing changed (upstream `updateReplicaSetStatus`, one retry
    /// after re-reading the owner).
    async fn update_status(
        &self,
        owner: &Arc<R>,
        mut status: OwnerStatus,
    ) -> anyhow::Result<OwnerStatus> {
        let generation = owner.meta().generation.unwrap_or(0);
        let current = owner.owner_status();
        status.observed_generation = current.observed_generation;
        if status == current && generation == current.observed_generation {
            return Ok(current);
        }
        status.observed_generation = generation;
        let ns = owner.namespace().unwrap_or_default();
        let name = owner.name_any();
        let api: Api<R> = Api::namespaced(self.client.clone(), &ns);
        let mut obj = (**owner).clone();
        for attempt in 0..2 {
            obj.set_owner_status(status.clone());
            match api
                .replace_status(&name, &PostParams::default(), &obj)
                .await
            {
                Ok(o) => return Ok(o.owner_status()),
                Err(e) if attempt == 0 && !is_not_found(&e) => {
                    obj = api.get(&name).await?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn slow_start_doubles_batches_and_stops_at_first_failing_batch() {
        let calls = AtomicUsize::new(0);
        let (ok, err) = slow_start_batch(10, || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Ok(())
        })
        .await;
        assert_eq!((ok, err.is_none()), (10, true));
        assert_eq!(calls.load(Ordering::SeqCst), 10);

        // Batches 1, 2, 4: the 4th call overall fails, so the batch of 4 is the last one.
        let calls = AtomicUsize::new(0);
        let (ok, err) = slow_start_batch(10, || async {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            if n == 3 {
                anyhow::bail!("quota")
            }
            Ok(())
        })
        .await;
        assert_eq!(ok, 6);
        assert!(err.is_some());
        assert_eq!(calls.load(Ordering::SeqCst), 7);
    }
}
