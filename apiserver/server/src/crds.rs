//! Serving CustomResourceDefinitions (mirrors apiextensions-apiserver's crdHandler and its
//! controllers: naming (`NamesAccepted`, accepted names), establishing (`Established`),
//! finalizer (custom resources deleted before the CRD goes), discovery and OpenAPI publishing).
//!
//! One task owns the serving state: it follows the CRD watch cache, reconciles every CRD on each
//! change (and every [`RESYNC`]), and publishes an immutable [`DynamicApi`] snapshot (endpoints,
//! the resource list for discovery, OpenAPI documents) that request handlers read.

use apiserver_apiextensions::{helpers, naming};
use apiserver_apimachinery::{ApiError, ResourceInfo};
use apiserver_openapi::{OpenApiBuilder, OpenApiDocuments};
use apiserver_registry::context::UserInfo;
use apiserver_registry::context::{DeleteOptions, ListOptions, RequestContext, WriteOptions};
use apiserver_registry::customresource::{self, ServedCrd, ServingContext};
use apiserver_registry::install::Endpoints;
use apiserver_registry::rest::{Rest, WriteOutput};
use apiserver_registry::store::{GenericStore, UpdateMode};
use apiserver_registry::strategies::crds::CLEANUP_FINALIZER;
use apiserver_storage::cacher::{Filter, WatchStart};
use async_trait::async_trait;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often every CRD is reconciled without a change (retries of failed work).
const RESYNC: Duration = Duration::from_secs(10);
/// How soon terminating CRDs are looked at again while their resources are deleted.
const FINALIZE_RETRY: Duration = Duration::from_millis(500);

/// What is served beyond the install table, as one snapshot.
pub struct DynamicApi {
    /// Endpoints of custom resources.
    pub endpoints: Endpoints,
    /// Every served resource: the built-in ones, then custom resources.
    pub resources: Vec<ResourceInfo>,
    pub openapi: OpenApiDocuments,
}

pub struct Crds {
    base_resources: Vec<ResourceInfo>,
    /// The built-in part of the OpenAPI documents (behind a lock: the schema generator inside
    /// is not `Sync`).
    base_openapi: Mutex<OpenApiBuilder>,
    current: RwLock<Arc<DynamicApi>>,
    store: Arc<GenericStore<CustomResourceDefinition>>,
    ctx: ServingContext,
}

struct Serving {
    fingerprint: Value,
    served: ServedCrd,
    terminating: bool,
}

fn system_ctx(namespace: Option<String>) -> RequestContext {
    RequestContext {
        user: UserInfo {
            name: "system:apiserver".into(),
            uid: String::new(),
            groups: vec!["system:masters".into()],
        },
        namespace,
    }
}

fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn name_of(crd: &Value) -> String {
    crd.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

fn has_cleanup_finalizer(crd: &Value) -> bool {
    crd.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|f| f.iter().any(|x| x.as_str() == Some(CLEANUP_FINALIZER)))
}

fn terminating(crd: &Value) -> bool {
    crd.pointer("/metadata/deletionTimestamp")
        .is_some_and(|t| !t.is_null())
}

/// What the served storage depends on: a change rebuilds it.
fn fingerprint(crd: &Value) -> Value {
    json!({
        "uid": crd.pointer("/metadata/uid"),
        "spec": crd.get("spec"),
        "names": crd.pointer("/status/acceptedNames"),
    })
}

/// How many custom resources of a CRD are stored.
fn stored_count(served: &ServedCrd) -> usize {
    let all = Filter {
        key_prefix: served.cache.prefix.clone(),
        ..Default::default()
    };
    served.cache.list(&all, None, 0).items.len()
}

/// Refuses creates while the CRD is being deleted (upstream's crdHandler).
struct Terminating(Arc<dyn Rest>);

#[async_trait]
impl Rest for Terminating {
    fn info(&self) -> &ResourceInfo {
        self.0.info()
    }
    fn body_kind(&self) -> (String, String) {
        self.0.body_kind()
    }
    async fn get(&self, ctx: &RequestContext, name: &str) -> Result<bytes::Bytes, ApiError> {
        self.0.get(ctx, name).await
    }
    async fn list(
        &self,
        ctx: &RequestContext,
        opts: &ListOptions,
    ) -> Result<apiserver_registry::ListOutput, ApiError> {
        self.0.list(ctx, opts).await
    }
    async fn watch(
        &self,
        ctx: &RequestContext,
        opts: &ListOptions,
    ) -> Result<apiserver_registry::WatchOutput, ApiError> {
        self.0.watch(ctx, opts).await
    }
    async fn create(
        &self,
        _ctx: &RequestContext,
        _name: Option<&str>,
        _body: &[u8],
        _opts: &WriteOptions,
    ) -> Result<WriteOutput, ApiError> {
        let mut e = ApiError::method_not_allowed(
            "create not allowed while custom resource definition is terminating",
        );
        e.code = Some(405);
        Err(e)
    }
    async fn update(
        &self,
        ctx: &RequestContext,
        name: &str,
        body: &[u8],
        opts: &WriteOptions,
    ) -> Result<WriteOutput, ApiError> {
        self.0.update(ctx, name, body, opts).await
    }
    async fn patch(
        &self,
        ctx: &RequestContext,
        name: &str,
        ty: apiserver_registry::PatchType,
        body: &[u8],
        opts: &WriteOptions,
    ) -> Result<WriteOutput, ApiError> {
        self.0.patch(ctx, name, ty, body, opts).await
    }
    async fn delete(
        &self,
        ctx: &RequestContext,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<WriteOutput, ApiError> {
        self.0.delete(ctx, name, opts).await
    }
    async fn delete_collection(
        &self,
        ctx: &RequestContext,
        list: &ListOptions,
        del: &DeleteOptions,
    ) -> Result<bytes::Bytes, ApiError> {
        self.0.delete_collection(ctx, list, del).await
    }
    fn table(
        &self,
        items: &[bytes::Bytes],
    ) -> Result<apiserver_registry::table::TableParts, ApiError> {
        self.0.table(items)
    }
    fn protobuf(&self) -> bool {
        self.0.protobuf()
    }
}

impl Crds {
    pub fn new(
        base_resources: Vec<ResourceInfo>,
        base_openapi: OpenApiBuilder,
        store: Arc<GenericStore<CustomResourceDefinition>>,
        ctx: ServingContext,
    ) -> Arc<Crds> {
        let current = Arc::new(DynamicApi {
            endpoints: Endpoints::new(),
            resources: base_resources.clone(),
            openapi: base_openapi.build(),
        });
        Arc::new(Crds {
            base_resources,
            base_openapi: Mutex::new(base_openapi),
            current: RwLock::new(current),
            store,
            ctx,
        })
    }

    /// The current snapshot.
    pub fn current(&self) -> Arc<DynamicApi> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Follows CRDs until `shutdown`.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut serving: BTreeMap<String, Serving> = BTreeMap::new();
        let filter = Filter {
            key_prefix: self.store.resource_prefix(),
            ..Default::default()
        };
        let mut watch = None;
        loop {
            if watch.is_none() {
                watch = self.store.cache.watch(filter.clone(), WatchStart::Now).ok();
            }
            let again = self.reconcile(&mut serving).await;
            let wait = if again { FINALIZE_RETRY } else { RESYNC };
            let Some(w) = watch.as_mut() else {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(FINALIZE_RETRY) => continue,
                }
            };
            let closed = tokio::select! {
                _ = shutdown.cancelled() => break,
                ev = w.live.recv() => {
                    // Coalesce a burst of changes into one pass.
                    while w.live.try_recv().is_ok() {}
                    ev.is_none()
                }
                _ = tokio::time::sleep(wait) => false,
            };
            if closed {
                watch = None;
            }
        }
        for s in serving.values() {
            self.ctx.caches.unregister(&s.served.cache);
        }
    }

    fn all_crds(&self) -> Vec<Value> {
        let filter = Filter {
            key_prefix: self.store.resource_prefix(),
            ..Default::default()
        };
        self.store
            .cache
            .list(&filter, None, 0)
            .items
            .iter()
            .filter_map(|o| serde_json::from_slice(&o.json).ok())
            .collect()
    }

    /// One pass over every CRD. Returns whether work remains that should be retried soon.
    async fn reconcile(&self, serving: &mut BTreeMap<String, Serving>) -> bool {
        let mut again = false;
        let mut changed = false;
        let all = self.all_crds();
        let mut seen = Vec::new();
        for crd in &all {
            let name = name_of(crd);
            seen.push(name.clone());
            let crd = match self.update_names(crd, &all).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(crd = %name, error = %e.message, "updating CRD status");
                    again = true;
                    continue;
                }
            };
            let established = naming::condition_true(&crd, "Established");
            let fp = fingerprint(&crd);
            let term = terminating(&crd);
            if established {
                let current = serving.get(&name).map(|s| &s.fingerprint);
                if current != Some(&fp) {
                    match customresource::serve(&crd, &self.ctx).await {
                        Ok(served) => {
                            tracing::info!(crd = %name, "serving custom resources");
                            if let Some(old) = serving.insert(
                                name.clone(),
                                Serving {
                                    fingerprint: fp,
                                    served,
                                    terminating: term,
                                },
                            ) {
                                self.ctx.caches.unregister(&old.served.cache);
                            }
                            changed = true;
                        }
                        Err(e) => {
                            tracing::warn!(crd = %name, error = %e, "cannot serve custom resources");
                            again = true;
                        }
                    }
                }
            }
            if let Some(s) = serving.get_mut(&name) {
                if s.terminating != term {
                    s.terminating = term;
                    changed = true;
                }
            }
            if term && has_cleanup_finalizer(&crd) {
                match self.finalize(&crd, serving.get(&name)).await {
                    Ok(true) => {
                        if let Some(old) = serving.remove(&name) {
                            self.ctx.caches.unregister(&old.served.cache);
                            changed = true;
                        }
                    }
                    Ok(false) => again = true,
                    Err(e) => {
                        tracing::warn!(crd = %name, error = %e.message, "deleting custom resources");
                        again = true;
                    }
                }
            }
        }
        let gone: Vec<String> = serving
            .keys()
            .filter(|k| !seen.contains(k))
            .cloned()
            .collect();
        for name in gone {
            if let Some(old) = serving.remove(&name) {
                tracing::info!(crd = %name, "no longer serving custom resources");
                self.ctx.caches.unregister(&old.served.cache);
                changed = true;
            }
        }
        if changed {
            self.publish(serving);
        }
        again
    }

    /// The naming and establishing controllers: accepted names and the NamesAccepted and
    /// Established conditions. Returns the CRD as it now is.
    async fn update_names(&self, crd: &Value, all: &[Value]) -> Result<Value, ApiError> {
        let r = naming::calculate_names_and_conditions(crd, all);
        let desired = |cur: &Value| -> Value {
            let mut v = cur.clone();
            let ts = now();
            v["status"]["acceptedNames"] = r.accepted_names.clone();
            naming::set_condition(&mut v, r.names_accepted.clone(), &ts);
            let names_ok = r.names_accepted.get("status").and_then(Value::as_str) == Some("True");
            let est = if names_ok && !terminating(cur) {
                naming::established_condition()
            } else {
                r.established.clone()
            };
            // Once established, a CRD stays established.
            if !naming::condition_true(cur, "Established") {
                naming::set_condition(&mut v, est, &ts);
            }
            v
        };
        if desired(crd) == *crd {
            return Ok(crd.clone());
        }
        let name = name_of(crd);
        let (out, _) = self
            .store
            .update_with(
                &system_ctx(None),
                &name,
                UpdateMode::Status,
                &WriteOptions {
                    field_manager: Some("kube-apiserver".into()),
                    ..Default::default()
                },
                |old| {
                    let old = old.ok_or_else(|| {
                        ApiError::not_found(
                            "apiextensions.k8s.io",
                            "customresourcedefinitions",
                            &name,
                        )
                    })?;
                    let cur =
                        serde_json::to_value(old).map_err(|e| ApiError::internal(e.to_string()))?;
                    serde_json::from_value(desired(&cur))
                        .map_err(|e| ApiError::internal(e.to_string()))
                },
            )
            .await?;
        serde_json::to_value(&out).map_err(|e| ApiError::internal(e.to_string()))
    }

    /// The finalizer controller: deletes every custom resource of a terminating CRD, then
    /// removes the cleanup finalizer. Returns whether the CRD is finalized.
    async fn finalize(&self, crd: &Value, serving: Option<&Serving>) -> Result<bool, ApiError> {
        let name = name_of(crd);
        if let Some(s) = serving {
            // Any served version reaches every object (they share one storage).
            let main = s
                .served
                .endpoints
                .iter()
                .find(|((_, _, _, sub), _)| sub.is_empty())
                .map(|(_, ep)| ep.clone());
            if let Some(ep) = main {
                let remaining = stored_count(&s.served);
                if remaining > 0 {
                    self.set_terminating(
                        &name,
                        "InstanceDeletionInProgress",
                        "CustomResource deletion is in progress",
                    )
                    .await?;
                    ep.delete_collection(
                        &system_ctx(None),
                        &ListOptions::default(),
                        &DeleteOptions::default(),
                    )
                    .await?;
                    let left = stored_count(&s.served);
                    if left > 0 {
                        // Deleted objects may still have finalizers; try again soon.
                        return Ok(false);
                    }
                }
            }
        }
        self.set_terminating(&name, "InstanceDeletionCompleted", "removed all instances")
            .await?;
        self.store
            .update_with(
                &system_ctx(None),
                &name,
                UpdateMode::Main,
                &WriteOptions {
                    field_manager: Some("kube-apiserver".into()),
                    ..Default::default()
                },
                |old| {
                    let mut c = old
                        .ok_or_else(|| {
                            ApiError::not_found(
                                "apiextensions.k8s.io",
                                "customresourcedefinitions",
                                &name,
                            )
                        })?
                        .clone();
                    if let Some(f) = c.metadata.finalizers.as_mut() {
                        f.retain(|x| x != CLEANUP_FINALIZER);
                    }
                    Ok(c)
                },
            )
            .await?;
        Ok(true)
    }

    async fn set_terminating(
        &self,
        name: &str,
        reason: &str,
        message: &str,
    ) -> Result<(), ApiError> {
        let cond =
            json!({"type": "Terminating", "status": "True", "reason": reason, "message": message});
        self.store
            .update_with(
                &system_ctx(None),
                name,
                UpdateMode::Status,
                &WriteOptions {
                    field_manager: Some("kube-apiserver".into()),
                    ..Default::default()
                },
                |old| {
                    let old = old.ok_or_else(|| {
                        ApiError::not_found(
                            "apiextensions.k8s.io",
                            "customresourcedefinitions",
                            name,
                        )
                    })?;
                    let mut v =
                        serde_json::to_value(old).map_err(|e| ApiError::internal(e.to_string()))?;
                    naming::set_condition(&mut v, cond.clone(), &now());
                    serde_json::from_value(v).map_err(|e| ApiError::internal(e.to_string()))
                },
            )
            .await
            .map(|_| ())
    }

    /// Publishes a new snapshot: endpoints, discovery resources (custom groups after the
    /// built-in ones, each group's versions in version-priority order) and OpenAPI.
    fn publish(&self, serving: &BTreeMap<String, Serving>) {
        let mut endpoints = Endpoints::new();
        let mut custom: Vec<ResourceInfo> = Vec::new();
        let mut openapi = self
            .base_openapi
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for s in serving.values() {
            for (k, ep) in &s.served.endpoints {
                let ep = if s.terminating && k.3.is_empty() {
                    Arc::new(Terminating(ep.clone())) as Arc<dyn Rest>
                } else {
                    ep.clone()
                };
                endpoints.insert(k.clone(), ep);
            }
            for v in &s.served.versions {
                custom.push(v.info.clone());
                openapi.add_resource_schemas(
                    &v.info,
                    &v.definition,
                    v.schema.clone(),
                    v.schema_v2.clone(),
                );
            }
        }
        // Stable: groups in order of first appearance, versions by priority within a group.
        let mut group_order: Vec<&'static str> = Vec::new();
        for r in &custom {
            if !group_order.contains(&r.group) {
                group_order.push(r.group);
            }
        }
        custom.sort_by(|a, b| {
            let ga = group_order.iter().position(|g| *g == a.group);
            let gb = group_order.iter().position(|g| *g == b.group);
            ga.cmp(&gb)
                .then_with(|| helpers::version_order(a.version, b.version))
                .then_with(|| a.resource.cmp(b.resource))
        });
        let mut resources = self.base_resources.clone();
        resources.extend(custom);
        let snapshot = Arc::new(DynamicApi {
            endpoints,
            resources,
            openapi: openapi.build(),
        });
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = snapshot;
    }
}
