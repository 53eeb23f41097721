//! disruption-controller (mirrors upstream `pkg/controller/disruption/disruption.go`): computes
//! every PodDisruptionBudget's status (expected, current and desired healthy pods, disruptions
//! allowed and the `DisruptionAllowed` condition) from its pods and their controllers' scale.

use crate::ControllerContext;
use crate::endpoints::support::{is_conflict, on_change, shut_down_on_cancel};
use crate::endpointslice::util::is_pod_ready;
use apiserver_apimachinery::selector::LabelSelector;
use component_base::informer::{Change, Informer, key_of};
use component_base::workqueue::{WorkQueue, run_workers};
use futures::future::BoxFuture;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Pod, ReplicationController};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, OwnerReference, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::Api;
use kube::api::PostParams;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

/// How long an eviction-approved pod may stay before it counts as healthy again.
const DELETION_TIMEOUT: Duration = Duration::from_secs(120);

struct Controller {
    client: kube::Client,
    pdbs: Arc<Informer<PodDisruptionBudget>>,
    pods: Arc<Informer<Pod>>,
    rcs: Arc<Informer<ReplicationController>>,
    rss: Arc<Informer<ReplicaSet>>,
    deployments: Arc<Informer<Deployment>>,
    statefulsets: Arc<Informer<StatefulSet>>,
    queue: Arc<WorkQueue<String>>,
    recorder: component_base::events::Recorder,
}

pub fn start(ctx: &ControllerContext) -> BoxFuture<'static, anyhow::Result<()>> {
    let c = Arc::new(Controller {
        client: ctx.client.clone(),
        pdbs: ctx.informers.informer(),
        pods: ctx.informers.informer(),
        rcs: ctx.informers.informer(),
        rss: ctx.informers.informer(),
        deployments: ctx.informers.informer(),
        statefulsets: ctx.informers.informer(),
        queue: WorkQueue::new("disruption"),
        recorder: ctx.recorder("disruption-controller"),
    });
    let shutdown = ctx.shutdown.clone();
    Box::pin(async move {
        let synced = tokio::select! {
            _ = shutdown.cancelled() => false,
            _ = async {
                c.pdbs.wait_synced().await;
                c.pods.wait_synced().await;
                c.rcs.wait_synced().await;
                c.rss.wait_synced().await;
                c.deployments.wait_synced().await;
                c.statefulsets.wait_synced().await;
            } => true,
        };
        if !synced {
            return Ok(());
        }
        let q = c.queue.clone();
        on_change(
            &c.pdbs,
            &shutdown,
            move |ch: Change<PodDisruptionBudget>| {
                q.add(key_of(ch.object().as_ref()));
            },
        );
        let cc = c.clone();
        on_change(&c.pods, &shutdown, move |ch: Change<Pod>| {
            for k in cc.pdbs_for_pod(ch.object()) {
                cc.queue.add(k);
            }
        });
        shut_down_on_cancel(&c.queue, &shutdown);
        let cc = c.clone();
        run_workers(c.queue.clone(), 1, move |key: String| {
            let c = cc.clone();
            async move { c.sync(&key).await }
        })
        .await;
        Ok(())
    })
}

fn selector_of(pdb: &PodDisruptionBudget) -> Option<LabelSelector> {
    let sel = pdb.spec.as_ref()?.selector.as_ref()?;
    LabelSelector::from_meta(sel).ok()
}

fn controller_of(refs: Option<&Vec<OwnerReference>>) -> Option<&OwnerReference> {
    refs?.iter().find(|r| r.controller == Some(true))
}

fn group_of(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(g, _)| g)
}

impl Controller {
    /// The budgets selecting the pod. Upstream syncs only the first (and warns) until the next
    /// resync; without periodic resyncs here, every matching budget is synced.
    fn pdbs_for_pod(&self, pod: &Pod) -> Vec<String> {
        let Some(ns) = pod.metadata.namespace.as_deref() else {
            return vec![];
        };
        let labels = pod.metadata.labels.clone().unwrap_or_default();
        let mut pdbs: Vec<_> = self
            .pdbs
            .list_namespace(ns)
            .into_iter()
            .filter(|p| selector_of(p).is_some_and(|s| s.matches(&labels)))
            .collect();
        pdbs.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        if pdbs.len() > 1 {
            let chosen = pdbs[0].metadata.name.clone().unwrap_or_default();
            self.recorder.warning(
                pod,
                "MultiplePodDisruptionBudgets",
                "Sync",
                format!(
                    "Pod {:?}/{:?} matches multiple PodDisruptionBudgets.  Chose {chosen:?} arbitrarily.",
                    ns,
                    pod.metadata.name.as_deref().unwrap_or("")
                ),
            );
        }
        pdbs.iter().map(|p| key_of(p.as_ref())).collect()
    }

    async fn sync(&self, key: &str) -> anyhow::Result<()> {
        let Some(pdb) = self.pdbs.get_by_key(key) else {
            return Ok(());
        };
        match self.try_sync(&pdb).await {
            Ok(()) => Ok(()),
            Err(e) if e.downcast_ref::<kube::Error>().is_some_and(is_conflict) => Err(e),
            Err(e) => {
                self.fail_safe(&pdb, &format!("{e:#}")).await?;
                Err(e)
            }
        }
    }

    async fn try_sync(&self, pdb: &PodDisruptionBudget) -> anyhow::Result<()> {
        let ns = pdb.metadata.namespace.clone().unwrap_or_default();
        let sel = selector_of(pdb);
        let pods: Vec<Arc<Pod>> = match &sel {
            Some(sel) => self
                .pods
                .list_namespace(&ns)
                .into_iter()
                .filter(|p| sel.matches(&p.metadata.labels.clone().unwrap_or_default()))
                .collect(),
            None => vec![],
        };
        if pods.is_empty() {
            self.recorder
                .normal(pdb, "NoPods", "Sync", "No matching pods found".into());
        }
        let (expected, desired, unmanaged) = match self.expected_count(pdb, &pods).await {
            Ok(v) => v,
            Err(e) => {
                self.recorder.warning(
                    pdb,
                    "CalculateExpectedPodCountFailed",
                    "Sync",
                    format!("Failed to calculate the number of expected pods: {e:#}"),
                );
                return Err(e);
            }
        };
        if unmanaged {
            self.recorder.warning(
                pdb,
                "UnmanagedPods",
                "Sync",
                "Pods selected by this PodDisruptionBudget were found to be unmanaged. As a result, the status of the PDB cannot be calculated correctly, which may result in undefined behavior. To account for these pods please set \".spec.minAvailable\" field of the PDB to an integer value.".into(),
            );
        }
        let now = jiff::Timestamp::now();
        let (disrupted, recheck) = disrupted_pods(pdb, &pods, now);
        let healthy = pods
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .filter(|p| {
                disrupted
                    .get(p.metadata.name.as_deref().unwrap_or(""))
                    .is_none_or(|t| t.0 + DELETION_TIMEOUT <= now)
            })
            .filter(|p| is_pod_ready(p))
            .count() as i32;
        self.update_status(pdb, healthy, desired, expected, disrupted)
            .await?;
        if let Some(at) = recheck {
            let wait = at.duration_since(now).unsigned_abs();
            self.queue.add_after(key_of(pdb), wait);
        }
        Ok(())
    }

    /// `(expectedPods, desiredHealthy, has unmanaged pods)` (upstream `getExpectedPodCount`).
    async fn expected_count(
        &self,
        pdb: &PodDisruptionBudget,
        pods: &[Arc<Pod>],
    ) -> anyhow::Result<(i32, i32, bool)> {
        let spec = pdb.spec.clone().unwrap_or_default();
        if let Some(max) = &spec.max_unavailable {
            let (expected, unmanaged) = self.expected_scale(pods).await?;
            let max = scaled(max, expected, true)?;
            return Ok((expected, (expected - max).max(0), unmanaged));
        }
        match &spec.min_available {
            Some(IntOrString::Int(n)) => Ok((pods.len() as i32, *n, false)),
            Some(min @ IntOrString::String(_)) => {
                let (expected, unmanaged) = self.expected_scale(pods).await?;
                Ok((expected, scaled(min, expected, true)?, unmanaged))
            }
            None => Ok((0, 0, false)),
        }
    }

    /// Sum of the scales of the pods' controllers (upstream `getExpectedScale`).
    async fn expected_scale(&self, pods: &[Arc<Pod>]) -> anyhow::Result<(i32, bool)> {
        let mut scales: HashMap<String, i32> = HashMap::new();
        let mut unmanaged = false;
        for pod in pods {
            let Some(cref) = controller_of(pod.metadata.owner_references.as_ref()) else {
                unmanaged = true;
                continue;
            };
            if scales.contains_key(&cref.uid) {
                continue;
            }
            let ns = pod.metadata.namespace.as_deref().unwrap_or("");
            match self.find_scale(cref, ns).await? {
                Some((uid, n)) => {
                    scales.insert(uid, n);
                }
                None => anyhow::bail!(
                    "found no controllers for pod {:?}",
                    pod.metadata.name.as_deref().unwrap_or("")
                ),
            }
        }
        Ok((scales.values().sum(), unmanaged))
    }

    /// The controller's uid and desired replicas: RCs, Deployments (through their ReplicaSets),
    /// ReplicaSets, StatefulSets, else any resource with a scale subresource.
    async fn find_scale(
        &self,
        cref: &OwnerReference,
        ns: &str,
    ) -> anyhow::Result<Option<(String, i32)>> {
        let group = group_of(&cref.api_version);
        let uid_ok = |uid: Option<&String>| uid == Some(&cref.uid);
        match (cref.kind.as_str(), group) {
            ("ReplicationController", "") => {
                let rc = self.rcs.get(Some(ns), &cref.name);
                Ok(rc.filter(|rc| uid_ok(rc.metadata.uid.as_ref())).map(|rc| {
                    let n = rc.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
                    (cref.uid.clone(), n)
                }))
            }
            ("ReplicaSet", "apps" | "extensions") => {
                let Some(rs) = self
                    .rss
                    .get(Some(ns), &cref.name)
                    .filter(|rs| uid_ok(rs.metadata.uid.as_ref()))
                else {
                    return Ok(None);
                };
                if let Some(dref) = controller_of(rs.metadata.owner_references.as_ref())
                    && dref.kind == "Deployment"
                {
                    if !matches!(group_of(&dref.api_version), "apps" | "extensions") {
                        return Ok(None);
                    }
                    let d = self.deployments.get(Some(ns), &dref.name);
                    return Ok(d
                        .filter(|d| d.metadata.uid.as_ref() == Some(&dref.uid))
                        .map(|d| {
                            let n = d.spec.replicas.unwrap_or(1);
                            (dref.uid.clone(), n)
                        }));
                }
                let n = rs.spec.replicas.unwrap_or(1);
                Ok(Some((cref.uid.clone(), n)))
            }
            ("StatefulSet", "apps") => {
                let ss = self.statefulsets.get(Some(ns), &cref.name);
                Ok(ss.filter(|s| uid_ok(s.metadata.uid.as_ref())).map(|s| {
                    let n = s.spec.replicas.unwrap_or(1);
                    (cref.uid.clone(), n)
                }))
            }
            _ => self.scale_subresource(cref, ns).await,
        }
    }

    async fn scale_subresource(
        &self,
        cref: &OwnerReference,
        ns: &str,
    ) -> anyhow::Result<Option<(String, i32)>> {
        let (group, version) = match cref.api_version.rsplit_once('/') {
            Some((g, v)) => (g, v),
            None => ("", cref.api_version.as_str()),
        };
        let gvk = kube::api::GroupVersionKind::gvk(group, version, &cref.kind);
        let (ar, caps) = kube::discovery::pinned_kind(&self.client, &gvk).await?;
        if !caps.subresources.iter().any(|(sr, _)| sr.plural == "scale") {
            anyhow::bail!(
                "{}.{} does not implement the scale subresource",
                ar.plural,
                group
            );
        }
        let api: Api<kube::api::DynamicObject> = Api::namespaced_with(self.client.clone(), ns, &ar);
        match api.get_subresource("scale", &cref.name).await {
            Ok(scale) => {
                if scale.metadata.uid.as_ref() != Some(&cref.uid) {
                    return Ok(None);
                }
                let n = scale.data["spec"]["replicas"].as_i64().unwrap_or(0) as i32;
                Ok(Some((cref.uid.clone(), n)))
            }
            Err(e) if crate::endpoints::support::is_not_found(&e) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn update_status(
        &self,
        pdb: &PodDisruptionBudget,
        healthy: i32,
        desired: i32,
        expected: i32,
        disrupted: BTreeMap<String, Time>,
    ) -> anyhow::Result<()> {
        let mut allowed = healthy - desired;
        if expected <= 0 || allowed <= 0 {
            allowed = 0;
        }
        let generation = pdb.metadata.generation;
        let cur = pdb.status.clone().unwrap_or_default();
        let (status, reason) = if allowed > 0 {
            ("True", "SufficientPods")
        } else {
            ("False", "InsufficientPods")
        };
        let cond_ok =
            cur.conditions.iter().flatten().any(|c| {
                c.type_ == "DisruptionAllowed" && c.status == status && c.reason == reason
            });
        let cur_disrupted = cur.disrupted_pods.clone().unwrap_or_default();
        if cur.current_healthy == Some(healthy)
            && cur.desired_healthy == Some(desired)
            && cur.expected_pods == Some(expected)
            && cur.disruptions_allowed == Some(allowed)
            && cur_disrupted == disrupted
            && cur.observed_generation == generation
            && cond_ok
        {
            return Ok(());
        }
        let mut conditions = cur.conditions.clone().unwrap_or_default();
        set_condition(&mut conditions, status, reason, "", generation);
        let mut new = pdb.clone();
        new.status = Some(PodDisruptionBudgetStatus {
            current_healthy: Some(healthy),
            desired_healthy: Some(desired),
            expected_pods: Some(expected),
            disruptions_allowed: Some(allowed),
            disrupted_pods: (!disrupted.is_empty()).then_some(disrupted),
            observed_generation: generation,
            conditions: Some(conditions),
        });
        self.write_status(&new).await
    }

    /// Sets disruptionsAllowed to 0 with a `SyncFailed` condition when the status cannot be
    /// computed, so that evictions are refused rather than allowed blindly.
    async fn fail_safe(&self, pdb: &PodDisruptionBudget, err: &str) -> anyhow::Result<()> {
        let mut new = pdb.clone();
        let st = new.status.get_or_insert_with(Default::default);
        st.disruptions_allowed = Some(0);
        let generation = st.observed_generation;
        let conds = st.conditions.get_or_insert_with(Vec::new);
        set_condition(conds, "False", "SyncFailed", err, generation);
        self.write_status(&new).await
    }

    async fn write_status(&self, pdb: &PodDisruptionBudget) -> anyhow::Result<()> {
        let api: Api<PodDisruptionBudget> = Api::namespaced(
            self.client.clone(),
            pdb.metadata.namespace.as_deref().unwrap_or(""),
        );
        let name = pdb.metadata.name.clone().unwrap_or_default();
        api.replace_status(&name, &PostParams::default(), pdb)
            .await?;
        Ok(())
    }
}

/// `meta.SetStatusCondition` for the `DisruptionAllowed` condition.
fn set_condition(
    conds: &mut Vec<Condition>,
    status: &str,
    reason: &str,
    message: &str,
    generation: Option<i64>,
) {
    let now = crate::endpoints::support::now();
    match conds.iter_mut().find(|c| c.type_ == "DisruptionAllowed") {
        Some(c) => {
            if c.status != status {
                c.status = status.into();
                c.last_transition_time = now;
            }
            c.reason = reason.into();
            c.message = message.into();
            c.observed_generation = generation;
        }
        None => conds.push(Condition {
            type_: "DisruptionAllowed".into(),
            status: status.into(),
            reason: reason.into(),
            message: message.into(),
            observed_generation: generation,
            last_transition_time: now,
        }),
    }
}

/// Keeps the disrupted pods still expected to be deleted; returns when to look again.
fn disrupted_pods(
    pdb: &PodDisruptionBudget,
    pods: &[Arc<Pod>],
    now: jiff::Timestamp,
) -> (BTreeMap<String, Time>, Option<jiff::Timestamp>) {
    let mut out = BTreeMap::new();
    let mut recheck: Option<jiff::Timestamp> = None;
    let Some(cur) = pdb.status.as_ref().and_then(|s| s.disrupted_pods.as_ref()) else {
        return (out, None);
    };
    for pod in pods {
        if pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let name = pod.metadata.name.clone().unwrap_or_default();
        let Some(t) = cur.get(&name) else { continue };
        let due = t.0 + DELETION_TIMEOUT;
        if due > now {
            recheck = Some(recheck.map_or(due, |r| r.min(due)));
            out.insert(name, t.clone());
        }
    }
    (out, recheck)
}

/// `intstr.GetScaledValueFromIntOrPercent`: a number, or a percentage of `total` rounded up or
/// down.
pub fn scaled(v: &IntOrString, total: i32, round_up: bool) -> anyhow::Result<i32> {
    match v {
        IntOrString::Int(n) => Ok(*n),
        IntOrString::String(s) => {
            let Some(p) = s.strip_suffix('%') else {
                anyhow::bail!(
                    "invalid value for IntOrString: invalid type: string is not a percentage"
                );
            };
            let p: i64 = p
                .parse()
                .map_err(|_| anyhow::anyhow!("invalid value {s:?}: {s} is not a percentage"))?;
            let prod = p * i64::from(total);
            Ok(if round_up {
                (prod + 99).div_euclid(100)
            } else {
                prod.div_euclid(100)
            } as i32)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_scale_with_rounding() {
        let p = IntOrString::String("50%".into());
        assert_eq!(scaled(&p, 3, true).unwrap(), 2);
        assert_eq!(scaled(&p, 3, false).unwrap(), 1);
        assert_eq!(scaled(&IntOrString::Int(4), 10, true).unwrap(), 4);
        assert!(scaled(&IntOrString::String("x".into()), 3, true).is_err());
    }
}
