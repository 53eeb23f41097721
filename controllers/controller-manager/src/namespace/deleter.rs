//! Deleting a namespace's content (upstream
//! `pkg/controller/namespace/deletion/namespaced_resources_deleter.go`): mark the namespace
//! Terminating, delete every namespaced resource in it (deletecollection, else list and delete
//! each), report what remains in the status conditions, and once empty remove the `kubernetes`
//! finalizer through `namespaces/{name}/finalize`.

use super::conditions::ConditionUpdater;
use crate::garbagecollector::discovery::{self, ResourceInfo};
use crate::garbagecollector::operations::{api_code, is_conflict, is_not_found};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::Client;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, PostParams, PropagationPolicy};
use kube::core::PartialObjectMeta;
use std::collections::BTreeMap;

/// The finalizer this controller owns.
pub const FINALIZER: &str = "kubernetes";
/// Default wait for content held by finalizers (upstream `finalizerEstimateSeconds`).
const FINALIZER_ESTIMATE_SECONDS: i64 = 15;

/// Content remains that is expected to go away by itself within `estimate` seconds.
#[derive(Debug)]
pub struct ResourcesRemaining {
    pub estimate: i64,
}

impl std::fmt::Display for ResourcesRemaining {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "some content remains in the namespace, estimate {} seconds before it is removed",
            self.estimate
        )
    }
}

impl std::error::Error for ResourcesRemaining {}

#[derive(Default)]
struct GvrResult {
    estimate: i64,
    remaining: usize,
    finalizers: BTreeMap<String, usize>,
}

pub struct Deleter {
    client: Client,
}

impl Deleter {
    pub fn new(client: Client) -> Self {
        Deleter { client }
    }

    /// One deletion pass over namespace `name` (upstream `Delete`).
    pub async fn delete(&self, name: &str) -> anyhow::Result<()> {
        let nss: Api<Namespace> = Api::all(self.client.clone());
        let Some(mut ns) = nss.get_opt(name).await? else {
            return Ok(());
        };
        if ns.metadata.deletion_timestamp.is_none() {
            return Ok(());
        }
        // Ensure the Terminating phase.
        loop {
            let st = ns.status.get_or_insert_with(Default::default);
            if st.phase.as_deref() == Some("Terminating") {
                break;
            }
            st.phase = Some("Terminating".into());
            match nss.replace_status(name, &PostParams::default(), &ns).await {
                Ok(n) => {
                    ns = n;
                    break;
                }
                Err(e) if is_not_found(&e) => return Ok(()),
                Err(e) if is_conflict(&e) => match nss.get_opt(name).await? {
                    Some(n) => ns = n,
                    None => return Ok(()),
                },
                Err(e) => return Err(e.into()),
            }
        }
        let finalizers = ns
            .spec
            .as_ref()
            .and_then(|s| s.finalizers.clone())
            .unwrap_or_default();
        if finalizers.is_empty() {
            return Ok(());
        }
        let estimate = self.delete_all_content(&nss, &mut ns).await?;
        if estimate > 0 {
            return Err(ResourcesRemaining { estimate }.into());
        }
        self.finalize(&nss, ns).await
    }

    /// Removes our finalizer via the finalize subresource, retrying on conflicts.
    async fn finalize(&self, nss: &Api<Namespace>, mut ns: Namespace) -> anyhow::Result<()> {
        let name = ns.metadata.name.clone().unwrap_or_default();
        for _ in 0..5 {
            let spec = ns.spec.get_or_insert_with(Default::default);
            let mut f: Vec<String> = spec.finalizers.clone().unwrap_or_default();
            f.retain(|x| x != FINALIZER);
            f.sort();
            f.dedup();
            spec.finalizers = Some(f);
            match nss
                .replace_subresource("finalize", &name, &PostParams::default(), &ns)
                .await
            {
                Ok(_) => return Ok(()),
                Err(e) if is_not_found(&e) => return Ok(()),
                Err(e) if is_conflict(&e) => {
                    let uid = ns.metadata.uid.clone();
                    match nss.get_opt(&name).await? {
                        Some(n) if n.metadata.uid == uid => ns = n,
                        Some(_) => anyhow::bail!("namespace uid has changed across retries"),
                        None => return Ok(()),
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        anyhow::bail!("too many conflicts finalizing namespace {name}")
    }

    /// Deletes every namespaced resource; returns the estimated seconds until what remains is
    /// gone, and errors for resources that could not be deleted.
    async fn delete_all_content(
        &self,
        nss: &Api<Namespace>,
        ns: &mut Namespace,
    ) -> anyhow::Result<i64> {
        let name = ns.metadata.name.clone().unwrap_or_default();
        let deleted_at = ns
            .metadata
            .deletion_timestamp
            .as_ref()
            .map(|t| t.0)
            .unwrap_or_else(jiff::Timestamp::now);
        let mut updater = ConditionUpdater::default();
        let mut errors: Vec<String> = Vec::new();
        let found = discovery::discover(&self.client).await?;
        if let Some(msg) = found.failure_message() {
            updater.discovery_failed(found.failed.len(), &msg);
            errors.push(msg);
        }
        let resources: Vec<ResourceInfo> = found
            .preferred()
            .into_iter()
            .filter(|r| r.namespaced && r.supports("delete"))
            .cloned()
            .collect();
        let mut estimate = 0i64;
        let mut per_resource = BTreeMap::new();
        let mut per_finalizer: BTreeMap<String, usize> = BTreeMap::new();
        for r in &resources {
            let res = match self.delete_resource(r, &name, deleted_at).await {
                Ok(res) => res,
                Err((res, e)) => {
                    updater.content_error(e.clone());
                    errors.push(e);
                    res
                }
            };
            estimate = estimate.max(res.estimate);
            if res.remaining > 0 {
                per_resource.insert(r.group_resource(), res.remaining);
                for (f, n) in res.finalizers {
                    *per_finalizer.entry(f).or_default() += n;
                }
            }
        }
        updater.content_totals(&per_resource, &per_finalizer);
        if updater.update(ns.status.get_or_insert_with(Default::default)) {
            match nss
                .replace_status(&name, &PostParams::default(), &*ns)
                .await
            {
                Ok(n) => *ns = n,
                Err(e) => {
                    tracing::warn!(namespace = %name, error = %e, "couldn't update status condition for namespace")
                }
            }
        }
        if !errors.is_empty() {
            anyhow::bail!("{}", errors.join("; "));
        }
        Ok(estimate)
    }

    /// Upstream `deleteAllContentForGroupVersionResource`.
    async fn delete_resource(
        &self,
        r: &ResourceInfo,
        ns: &str,
        deleted_at: jiff::Timestamp,
    ) -> Result<GvrResult, (GvrResult, String)> {
        let gvr = format!("{}/{}, Resource={}", r.ar.group, r.ar.version, r.ar.plural);
        let mut estimate = 0;
        if r.ar.group.is_empty() && r.ar.plural == "pods" {
            estimate = self
                .estimate_pods(ns, deleted_at)
                .await
                .map_err(|e| (GvrResult::default(), e.to_string()))?;
        }
        let fail = |e: String| {
            (
                GvrResult {
                    estimate,
                    ..Default::default()
                },
                e,
            )
        };
        let api: Api<DynamicObject> = Api::namespaced_with(self.client.clone(), ns, &r.ar);
        let meta: Api<PartialObjectMeta<DynamicObject>> =
            Api::namespaced_with(self.client.clone(), ns, &r.ar);
        let dp = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Background),
            ..Default::default()
        };
        let mut collection_done = false;
        if r.supports("deletecollection") {
            match api.delete_collection(&dp, &ListParams::default()).await {
                Ok(_) => collection_done = true,
                Err(e) if matches!(api_code(&e), Some(404 | 405)) => {}
                Err(e) => return Err(fail(e.to_string())),
            }
        }
        if !r.supports("list") {
            return Ok(GvrResult {
                estimate,
                ..Default::default()
            });
        }
        if !collection_done {
            let items = match meta.list_metadata(&ListParams::default()).await {
                Ok(l) => l.items,
                Err(e) if matches!(api_code(&e), Some(404 | 405)) => {
                    return Ok(GvrResult::default());
                }
                Err(e) => return Err(fail(e.to_string())),
            };
            for it in items {
                let n = it.metadata.name.clone().unwrap_or_default();
                match api.delete(&n, &dp).await {
                    Ok(_) => {}
                    Err(e) if matches!(api_code(&e), Some(404 | 405)) => {}
                    Err(e) => return Err(fail(e.to_string())),
                }
            }
        }
        let left = match meta.list_metadata(&ListParams::default()).await {
            Ok(l) => l.items,
            Err(e) if matches!(api_code(&e), Some(404 | 405)) => {
                return Ok(GvrResult {
                    estimate,
                    ..Default::default()
                });
            }
            Err(e) => return Err(fail(e.to_string())),
        };
        if left.is_empty() {
            return Ok(GvrResult::default());
        }
        let mut finalizers = BTreeMap::new();
        for it in &left {
            for f in it.metadata.finalizers.iter().flatten() {
                *finalizers.entry(f.clone()).or_insert(0) += 1;
            }
        }
        let remaining = left.len();
        if estimate != 0 {
            return Ok(GvrResult {
                estimate,
                remaining,
                finalizers,
            });
        }
        if !finalizers.is_empty() {
            return Ok(GvrResult {
                estimate: FINALIZER_ESTIMATE_SECONDS,
                remaining,
                finalizers,
            });
        }
        Err((
            GvrResult {
                estimate,
                remaining,
                finalizers,
            },
            format!("unexpected items still remain in namespace: {ns} for gvr: {gvr}"),
        ))
    }

    /// The longest grace period of the namespace's non-terminal pods, unless it has already
    /// elapsed since the namespace was deleted.
    async fn estimate_pods(&self, ns: &str, deleted_at: jiff::Timestamp) -> anyhow::Result<i64> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        let mut estimate = 0i64;
        for p in pods.list(&ListParams::default()).await?.items {
            let phase = p.status.as_ref().and_then(|s| s.phase.as_deref());
            if matches!(phase, Some("Succeeded" | "Failed")) {
                continue;
            }
            if let Some(g) = p
                .spec
                .as_ref()
                .and_then(|s| s.termination_grace_period_seconds)
            {
                estimate = estimate.max(g);
            }
        }
        let elapsed = jiff::Timestamp::now().duration_since(deleted_at).as_secs();
        Ok(if elapsed >= estimate { 0 } else { estimate })
    }
}
