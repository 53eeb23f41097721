//! The type-erased REST interface the server's handlers call (mirrors apiserver/pkg/registry/rest),
//! and its implementation for the main resource over the generic store. Bodies come in as JSON
//! bytes (the server converts protobuf and YAML at the edge) and are decoded here, once, into the
//! resource's type.

use crate::context::{
    DeleteOptions, FieldValidation, ListOptions, PatchType, RequestContext, WriteOptions,
};
use crate::store::{DeleteOutcome, GenericStore, Object, UpdateMode};
use crate::table::TableParts;
use apiserver_apimachinery::error::success_status;
use apiserver_apimachinery::patch::{apply_json_patch, apply_merge_patch};
use apiserver_apimachinery::rv::{decode_continue, encode_continue, parse_resource_version};
use apiserver_apimachinery::{ApiError, ResourceInfo};
use apiserver_storage::StorageError;
use apiserver_storage::cacher::{CachedObject, Filter, WatchCache, WatchEvent, WatchStart};
use async_trait::async_trait;
use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// A list page: item JSON bytes in key order, and the list metadata.
pub struct ListOutput {
    pub items: Vec<Bytes>,
    pub resource_version: i64,
    pub continue_token: Option<String>,
    pub remaining: Option<i64>,
}

/// A watch: events already due, the live channel, and the cache for bookmarks.
pub struct WatchOutput {
    pub initial: Vec<WatchEvent>,
    pub live: mpsc::Receiver<WatchEvent>,
    pub revision: i64,
    pub cache: Arc<WatchCache>,
    /// Send the `k8s.io/initial-events-end` bookmark after the initial events.
    pub initial_events_end: bool,
    /// Converts each event's object to the served version (resources served in another version
    /// than they are stored in).
    pub convert: Option<EventConvert>,
}

/// Converts a watch event's object; async, as custom resources may call a conversion webhook.
pub type EventConvert = Arc<
    dyn Fn(Bytes) -> futures::future::BoxFuture<'static, Result<Bytes, ApiError>> + Send + Sync,
>;

/// An [`EventConvert`] of a synchronous conversion.
pub fn sync_convert(
    f: impl Fn(&[u8]) -> Result<Bytes, ApiError> + Send + Sync + 'static,
) -> EventConvert {
    Arc::new(move |b: Bytes| Box::pin(std::future::ready(f(&b))))
}

/// The answer to a write.
pub struct WriteOutput {
    pub body: Bytes,
    pub code: u16,
    pub warnings: Vec<String>,
}

impl WriteOutput {
    fn json<T: serde::Serialize>(
        v: &T,
        code: u16,
        warnings: Vec<String>,
    ) -> Result<Self, ApiError> {
        let body = serde_json::to_vec(v).map_err(|e| ApiError::internal(e.to_string()))?;
        Ok(WriteOutput {
            body: Bytes::from(body),
            code,
            warnings,
        })
    }
}

fn not_allowed(verb: &str, info: &ResourceInfo) -> ApiError {
    let mut e = ApiError::method_not_allowed(format!(
        "the server does not allow this method on the requested resource ({verb} {})",
        info.resource
    ));
    e.code = Some(405);
    e
}

/// One endpoint: a resource or one of its subresources.
#[async_trait]
pub trait Rest: Send + Sync {
    /// The resource (for subresources, the parent resource).
    fn info(&self) -> &ResourceInfo;
    /// The apiVersion and kind of request and response bodies.
    fn body_kind(&self) -> (String, String) {
        (self.info().api_version(), self.info().kind.to_string())
    }
    async fn get(&self, _ctx: &RequestContext, _name: &str) -> Result<Bytes, ApiError> {
        Err(not_allowed("get", self.info()))
    }
    async fn list(
        &self,
        _ctx: &RequestContext,
        _opts: &ListOptions,
    ) -> Result<ListOutput, ApiError> {
        Err(not_allowed("list", self.info()))
    }
    async fn watch(
        &self,
        _ctx: &RequestContext,
        _opts: &ListOptions,
    ) -> Result<WatchOutput, ApiError> {
        Err(not_allowed("watch", self.info()))
    }
    /// `name` is set for subresource creates (pods/binding, pods/eviction).
    async fn create(
        &self,
        _ctx: &RequestContext,
        _name: Option<&str>,
        _body: &[u8],
        _opts: &WriteOptions,
    ) -> Result<WriteOutput, ApiError> {
        Err(not_allowed("create", self.info()))
    }
    async fn update(
        &self,
        _ctx: &RequestContext,
        _name: &str,
        _body: &[u8],
        _opts: &WriteOptions,
    ) -> Result<WriteOutput, ApiError> {
        Err(not_allowed("update", self.info()))
    }
    async fn patch(
        &self,
        _ctx: &RequestContext,
        _name: &str,
        _ty: PatchType,
        _body: &[u8],
        _opts: &WriteOptions,
    ) -> Result<WriteOutput, ApiError> {
        Err(not_allowed("patch", self.info()))
    }
    async fn delete(
        &self,
        _ctx: &RequestContext,
        _name: &str,
        _opts: &DeleteOptions,
    ) -> Result<WriteOutput, ApiError> {
        Err(not_allowed("delete", self.info()))
    }
    async fn delete_collection(
        &self,
        _ctx: &RequestContext,
        _list: &ListOptions,
        _del: &DeleteOptions,
    ) -> Result<Bytes, ApiError> {
        Err(not_allowed("deletecollection", self.info()))
    }
    /// Server-side printing of served JSON items.
    fn table(&self, _items: &[Bytes]) -> Result<TableParts, ApiError> {
        Err(ApiError::not_acceptable(
            "this resource does not support Table output",
        ))
    }
    /// Whether bodies of this endpoint can be protobuf (custom resources: JSON only).
    fn protobuf(&self) -> bool {
        true
    }
}

/// The main endpoint of a resource.
pub struct MainRest<K: Object> {
    pub store: Arc<GenericStore<K>>,
}

/// Field selectors may only name the resource's selectable fields.
fn check_field_labels<K: Object>(
    store: &GenericStore<K>,
    opts: &ListOptions,
) -> Result<(), ApiError> {
    for r in &opts.fields.requirements {
        let known = r.field == "metadata.name"
            || r.field == "metadata.namespace"
            || store.strategy.field_labels().contains(&r.field.as_str());
        if !known {
            return Err(ApiError::bad_request(format!(
                "field label not supported: {}",
                r.field
            )));
        }
    }
    Ok(())
}

fn filter_of<K: Object>(
    store: &GenericStore<K>,
    ctx: &RequestContext,
    opts: &ListOptions,
) -> Filter {
    Filter {
        key_prefix: store.key_prefix(ctx.namespace.as_deref()),
        labels: opts.labels.clone(),
        fields: opts.fields.clone(),
    }
}

const FRESHNESS_WAIT: Duration = Duration::from_secs(3);

impl<K: Object> MainRest<K> {
    fn storage_err(&self, e: StorageError) -> ApiError {
        match e {
            StorageError::Compacted(_) => ApiError::expired(
                "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
            ),
            StorageError::Unavailable(m) => ApiError::service_unavailable(m),
            other => ApiError::internal(other.to_string()),
        }
    }

    /// A list page read from storage at `revision` (exact reads, continuations of old lists).
    async fn list_from_storage(
        &self,
        filter: &Filter,
        start: &str,
        limit: i64,
        revision: i64,
    ) -> Result<ListOutput, ApiError> {
        let store = &self.store;
        let mut items = Vec::new();
        let mut start = if start.is_empty() {
            filter.key_prefix.clone()
        } else {
            start.to_string()
        };
        let mut read_rev = revision;
        let mut last_key: Option<String> = None;
        loop {
            let page = store
                .storage
                .list(
                    &filter.key_prefix,
                    &start,
                    if limit > 0 { limit } else { 0 },
                    read_rev,
                )
                .await
                .map_err(|e| self.storage_err(e))?;
            read_rev = page.revision;
            for kv in &page.items {
                let o = store
                    .cache
                    .transform(&kv.key, &kv.value, kv.mod_revision)
                    .map_err(ApiError::internal)?;
                last_key = Some(kv.key.clone());
                if filter.matches(&o) {
                    items.push(o.json);
                    if limit > 0 && items.len() as i64 == limit {
                        break;
                    }
                }
            }
            let full = limit > 0 && items.len() as i64 >= limit;
            if !page.more || full {
                let more =
                    page.more || (full && last_key.as_ref() != page.items.last().map(|k| &k.key));
                let cont = match (&last_key, more) {
                    (Some(k), true) => Some(encode_continue(
                        read_rev,
                        k.trim_start_matches(&store.resource_prefix()),
                    )),
                    _ => None,
                };
                let remaining = if cont.is_some() && !filter.has_selectors() {
                    Some(page.remaining)
                } else {
                    None
                };
                return Ok(ListOutput {
                    items,
                    resource_version: read_rev,
                    continue_token: cont,
                    remaining,
                });
            }
            match page.items.last() {
                Some(last) => start = format!("{}\u{0}", last.key),
                None => {
                    return Ok(ListOutput {
                        items,
                        resource_version: read_rev,
                        continue_token: None,
                        remaining: None,
                    });
                }
            }
        }
    }

    fn list_from_cache(&self, filter: &Filter, after: Option<&str>, limit: i64) -> ListOutput {
        let page = self.store.cache.list(filter, after, limit.max(0) as usize);
        let cont = page.next.as_ref().map(|k| {
            encode_continue(
                page.revision,
                k.trim_start_matches(&self.store.resource_prefix()),
            )
        });
        ListOutput {
            items: page
                .items
                .iter()
                .map(|o: &Arc<CachedObject>| o.json.clone())
                .collect(),
            resource_version: page.revision,
            continue_token: cont,
            remaining: page.remaining,
        }
    }

    /// Waits until the cache is at least as new as storage; false if it could not catch up.
    async fn wait_consistent(&self) -> Result<bool, ApiError> {
        let rev = self
            .store
            .storage
            .current_revision()
            .await
            .map_err(|e| self.storage_err(e))?;
        Ok(self.store.cache.wait_for(rev, FRESHNESS_WAIT).await)
    }

    fn too_large(&self, rv: i64) -> ApiError {
        let mut e = ApiError::timeout(format!(
            "Too large resource version: {rv}, current: {}",
            self.store.cache.revision()
        ));
        e.causes.push(
            k8s_openapi::apimachinery::pkg::apis::meta::v1::StatusCause {
                reason: Some("ResourceVersionTooLarge".into()),
                message: Some("Too large resource version".into()),
                field: None,
            },
        );
        e.retry_after_seconds = Some(1);
        e
    }

    fn write_out(
        &self,
        obj: &K,
        code: u16,
        warnings: Vec<String>,
    ) -> Result<WriteOutput, ApiError> {
        WriteOutput::json(obj, code, warnings)
    }
}

#[async_trait]
impl<K: Object> Rest for MainRest<K> {
    fn info(&self) -> &ResourceInfo {
        &self.store.info
    }

    async fn get(&self, ctx: &RequestContext, name: &str) -> Result<Bytes, ApiError> {
        let obj = self.store.get(ctx.namespace.as_deref(), name).await?;
        serde_json::to_vec(&obj)
            .map(Bytes::from)
            .map_err(|e| ApiError::internal(e.to_string()))
    }

    async fn list(&self, ctx: &RequestContext, opts: &ListOptions) -> Result<ListOutput, ApiError> {
        check_field_labels(&self.store, opts)?;
        let filter = filter_of(&self.store, ctx, opts);
        if !opts.continue_token.is_empty() {
            let (rev, start) = decode_continue(&opts.continue_token)?;
            let after = format!(
                "{}{}",
                self.store.resource_prefix(),
                start.trim_end_matches('\u{0}')
            );
            if rev == -1 {
                // An inconsistent continuation (after a 410): the rest of the list, read now.
                return self
                    .list_from_storage(&filter, &format!("{after}\u{0}"), opts.limit, 0)
                    .await;
            }
            if rev == self.store.cache.revision() {
                return Ok(self.list_from_cache(&filter, Some(&after), opts.limit));
            }
            return match self
                .list_from_storage(&filter, &format!("{after}\u{0}"), opts.limit, rev)
                .await
            {
                Err(mut e) if e.reason == apiserver_apimachinery::Reason::Expired => {
                    // As upstream: offer a token that continues without consistency.
                    e.list_continue = Some(encode_continue(-1, start.trim_end_matches('\u{0}')));
                    Err(e)
                }
                other => other,
            };
        }
        let rv = parse_resource_version(&opts.resource_version)?;
        match (rv, opts.resource_version_match.as_str()) {
            (None, "") => {
                let (group, resource) = (self.store.info.group, self.store.info.resource);
                if self.wait_consistent().await? {
                    crate::metrics::consistent_read(group, resource, true, false);
                    Ok(self.list_from_cache(&filter, None, opts.limit))
                } else {
                    let out = self.list_from_storage(&filter, "", opts.limit, 0).await;
                    crate::metrics::consistent_read(group, resource, out.is_ok(), true);
                    out
                }
            }
            (Some(0), "" | "NotOlderThan") => Ok(self.list_from_cache(&filter, None, opts.limit)),
            (Some(rv), "" | "NotOlderThan") => {
                if !self.store.cache.wait_for(rv, FRESHNESS_WAIT).await {
                    return Err(self.too_large(rv));
                }
                Ok(self.list_from_cache(&filter, None, opts.limit))
            }
            (Some(rv), "Exact") if rv > 0 => {
                match self.list_from_storage(&filter, "", opts.limit, rv).await {
                    Err(e) if e.reason == apiserver_apimachinery::Reason::Expired => Err(
                        ApiError::expired("The resourceVersion for the provided list is too old."),
                    ),
                    other => other,
                }
            }
            (_, m) => Err(ApiError::invalid(
                "meta.k8s.io",
                "ListOptions",
                "",
                &[apiserver_apimachinery::FieldError::not_supported(
                    &apiserver_apimachinery::FieldPath::root("resourceVersionMatch"),
                    m,
                    &["Exact", "NotOlderThan"],
                )],
            )),
        }
    }

    async fn watch(
        &self,
        ctx: &RequestContext,
        opts: &ListOptions,
    ) -> Result<WatchOutput, ApiError> {
        check_field_labels(&self.store, opts)?;
        let filter = filter_of(&self.store, ctx, opts);
        let rv = parse_resource_version(&opts.resource_version)?;
        let initial_events_end = opts.send_initial_events == Some(true);
        if initial_events_end && opts.resource_version_match != "NotOlderThan" {
            return Err(ApiError::invalid(
                "meta.k8s.io",
                "ListOptions",
                "",
                &[apiserver_apimachinery::FieldError::forbidden(
                    &apiserver_apimachinery::FieldPath::root("resourceVersionMatch"),
                    "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
                )],
            ));
        }
        let start = match (rv, opts.send_initial_events) {
            (_, Some(true)) => {
                match rv {
                    None => {
                        self.wait_consistent().await?;
                    }
                    Some(r) if r > 0 => {
                        if !self.store.cache.wait_for(r, FRESHNESS_WAIT).await {
                            return Err(self.too_large(r));
                        }
                    }
                    _ => {}
                }
                WatchStart::Initial
            }
            (None | Some(0), Some(false)) => WatchStart::Now,
            (None, None) => {
                self.wait_consistent().await?;
                WatchStart::Initial
            }
            (Some(0), None) => WatchStart::Initial,
            (Some(r), _) => WatchStart::After(r),
        };
        let w = self.store.cache.watch(filter, start).map_err(|e| match e {
            StorageError::Compacted(oldest) => {
                ApiError::too_old_resource_version(rv.unwrap_or(0), oldest)
            }
            other => ApiError::internal(other.to_string()),
        })?;
        Ok(WatchOutput {
            initial: w.initial,
            live: w.live,
            revision: w.revision,
            cache: self.store.cache.clone(),
            initial_events_end,
            convert: None,
        })
    }

    async fn create(
        &self,
        ctx: &RequestContext,
        _name: Option<&str>,
        body: &[u8],
        opts: &WriteOptions,
    ) -> Result<WriteOutput, ApiError> {
        let d = self.store.support.decode(body, opts.field_validation)?;
        let obj = self.store.create(ctx, d.object, opts).await?;
        self.write_out(&obj, 201, d.warnings)
    }

    async fn update(
        &self,
        ctx: &RequestContext,
        name: &str,
        body: &[u8],
        opts: &WriteOptions,
    ) -> Result<WriteOutput, ApiError> {
        let d = self.store.support.decode(body, opts.field_validation)?;
        let obj = d.object;
        let (out, created) = self
            .store
            .update_with(ctx, name, UpdateMode::Main, opts, |_| Ok(obj.clone()))
            .await?;
        self.write_out(&out, if created { 201 } else { 200 }, d.warnings)
    }

    async fn patch(
        &self,
        ctx: &RequestContext,
        name: &str,
        ty: PatchType,
        body: &[u8],
        opts: &WriteOptions,
    ) -> Result<WriteOutput, ApiError> {
        if ty == PatchType::Apply {
            let (out, created) =
                apply_store(&self.store, ctx, name, body, opts, UpdateMode::Main).await?;
            return self.write_out(&out, if created { 201 } else { 200 }, vec![]);
        }
        let (out, warnings) =
            patch_store(&self.store, ctx, name, ty, body, opts, UpdateMode::Main).await?;
        self.write_out(&out, 200, warnings)
    }

    async fn delete(
        &self,
        ctx: &RequestContext,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<WriteOutput, ApiError> {
        match self.store.delete(ctx, name, opts).await? {
            DeleteOutcome::Pending(obj) => self.write_out(&obj, 200, vec![]),
            DeleteOutcome::Deleted(obj) => {
                if self.store.strategy.return_deleted_object() {
                    self.write_out(&obj, 200, vec![])
                } else {
                    let s = success_status(
                        self.store.info.group,
                        self.store.info.resource,
                        name,
                        obj.metadata().uid.clone(),
                    );
                    WriteOutput::json(&s, 200, vec![])
                }
            }
        }
    }

    async fn delete_collection(
        &self,
        ctx: &RequestContext,
        list: &ListOptions,
        del: &DeleteOptions,
    ) -> Result<Bytes, ApiError> {
        if !self.store.info.verbs.contains(&"deletecollection") {
            return Err(not_allowed("deletecollection", &self.store.info));
        }
        check_field_labels(&self.store, list)?;
        self.wait_consistent().await?;
        let filter = filter_of(&self.store, ctx, list);
        let page = self.store.cache.list(&filter, None, 0);
        let mut items = Vec::new();
        for o in page.items {
            let obj: K =
                serde_json::from_slice(&o.json).map_err(|e| ApiError::internal(e.to_string()))?;
            let name = obj.metadata().name.clone().unwrap_or_default();
            let ns = obj.metadata().namespace.clone();
            let c = RequestContext {
                namespace: ns,
                ..ctx.clone()
            };
            match self.store.delete(&c, &name, del).await {
                Ok(DeleteOutcome::Deleted(o)) | Ok(DeleteOutcome::Pending(o)) => items.push(o),
                Err(e) if e.reason == apiserver_apimachinery::Reason::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        let list = serde_json::json!({
            "kind": format!("{}List", self.store.info.kind),
            "apiVersion": self.store.info.api_version(),
            "metadata": {"resourceVersion": self.store.cache.revision().to_string()},
            "items": items,
        });
        serde_json::to_vec(&list)
            .map(Bytes::from)
            .map_err(|e| ApiError::internal(e.to_string()))
    }

    fn table(&self, items: &[Bytes]) -> Result<TableParts, ApiError> {
        self.store.support.table(items)
    }
    fn protobuf(&self) -> bool {
        self.store.support.protobuf()
    }
}

/// Server-side apply (upstream's `applyPatcher`): merges the applied configuration into the
/// live object with the field manager (conflicts are 409), creating the object when it does not
/// exist. Returns the result and whether it was created.
pub async fn apply_store<K: Object>(
    store: &GenericStore<K>,
    ctx: &RequestContext,
    name: &str,
    body: &[u8],
    opts: &WriteOptions,
    mode: UpdateMode,
) -> Result<(K, bool), ApiError> {
    let applied: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("error decoding apply patch: {e}")))?;
    if !applied.is_object() {
        return Err(ApiError::bad_request(
            "the apply configuration must be an object",
        ));
    }
    let manager = opts.field_manager.clone().unwrap_or_default();
    let fm = store.field_manager(mode);
    let mut inner = opts.clone();
    inner.managed_fields_done = true;
    let merge = |live: Option<&K>| -> Result<K, ApiError> {
        let live = live
            .map(|o| serde_json::to_value(o).map_err(|e| ApiError::internal(e.to_string())))
            .transpose()?;
        let merged = fm.apply(
            live.as_ref(),
            &applied,
            &manager,
            opts.force,
            jiff::Timestamp::now(),
        )?;
        // Through the type's decoder, as upstream decodes the merged object (custom resources
        // get their schema defaults here).
        let bytes = serde_json::to_vec(&merged).map_err(|e| ApiError::internal(e.to_string()))?;
        store
            .support
            .decode(&bytes, FieldValidation::Ignore)
            .map(|d| d.object)
    };
    let ns = if store.info.namespaced() {
        ctx.namespace.as_deref()
    } else {
        None
    };
    for _ in 0..3 {
        match store.get(ns, name).await {
            Ok(_) => {
                let (out, _) = store
                    .update_with(ctx, name, mode, &inner, |old| merge(old))
                    .await?;
                return Ok((out, false));
            }
            Err(e) if e.reason == apiserver_apimachinery::Reason::NotFound => {
                if mode != UpdateMode::Main {
                    return Err(e);
                }
                let obj = merge(None)?;
                if obj.metadata().name.as_deref() != Some(name) {
                    return Err(ApiError::bad_request(format!(
                        "the name of the object ({}) does not match the name on the URL ({name})",
                        obj.metadata().name.as_deref().unwrap_or("")
                    )));
                }
                match store.create(ctx, obj, &inner).await {
                    Ok(out) => return Ok((out, true)),
                    // Created meanwhile: apply to it.
                    Err(e) if e.reason == apiserver_apimachinery::Reason::AlreadyExists => continue,
                    Err(e) => return Err(e),
                }
            }
            Err(e) => return Err(e),
        }
    }
    Err(ApiError::conflict(
        store.info.group,
        store.info.resource,
        name,
        "the object kept changing during apply",
    ))
}

/// Applies a patch of `ty` to the stored object under `mode`.
pub async fn patch_store<K: Object>(
    store: &GenericStore<K>,
    ctx: &RequestContext,
    name: &str,
    ty: PatchType,
    body: &[u8],
    opts: &WriteOptions,
    mode: UpdateMode,
) -> Result<(K, Vec<String>), ApiError> {
    let mut warnings = Vec::new();
    if ty == PatchType::Apply {
        let (out, _) = apply_store(store, ctx, name, body, opts, mode).await?;
        return Ok((out, warnings));
    }
    let (out, _) = store
        .update_with(ctx, name, mode, opts, |old| {
            let old = old
                .ok_or_else(|| ApiError::not_found(store.info.group, store.info.resource, name))?;
            let old_json =
                serde_json::to_value(old).map_err(|e| ApiError::internal(e.to_string()))?;
            let patched = match ty {
                PatchType::Json => apply_json_patch(&old_json, body)?,
                PatchType::Merge => apply_merge_patch(&old_json, body)?,
                PatchType::Strategic => store.support.strategic_merge(&old_json, body)?,
                PatchType::Apply => return Err(ApiError::internal("unreachable")),
            };
            let bytes =
                serde_json::to_vec(&patched).map_err(|e| ApiError::internal(e.to_string()))?;
            let validation = if opts.field_validation == FieldValidation::Strict {
                FieldValidation::Strict
            } else {
                opts.field_validation
            };
            let d = store.support.decode(&bytes, validation)?;
            warnings = d.warnings;
            Ok(d.object)
        })
        .await?;
    Ok((out, warnings))
}
