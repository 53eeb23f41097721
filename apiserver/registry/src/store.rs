//! The generic store (mirrors apiserver/pkg/registry/generic/registry/store.go): create, get,
//! update, delete and list for any resource, parameterized by its type and strategy. Every
//! read-modify-write goes through `apiserver_storage::guaranteed_update`.

use crate::context::{DeleteOptions, ListOptions, RequestContext, WriteOptions};
use crate::meta;
use crate::strategy::{GracefulDelete, Strategy};
use crate::typesupport::{Builtin, TypeSupport};
use apiserver_apimachinery::names::{validate_object_meta, validate_object_meta_update};
use apiserver_apimachinery::{ApiError, FieldError, ResourceInfo};
use apiserver_storage::cacher::{Attrs, CacheSet, CachedObject, Transform, WatchCache};
use apiserver_storage::codec::Codec;
use apiserver_storage::{Storage, StorageError, Update, guaranteed_update};
use bytes::Bytes;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Access to an object's `metadata` (k8s-openapi's `Metadata` for built-in types; custom
/// resources implement it themselves).
pub trait HasObjectMeta {
    fn metadata(&self) -> &ObjectMeta;
    fn metadata_mut(&mut self) -> &mut ObjectMeta;
}

impl<T: k8s_openapi::Metadata<Ty = ObjectMeta>> HasObjectMeta for T {
    fn metadata(&self) -> &ObjectMeta {
        k8s_openapi::Metadata::metadata(self)
    }
    fn metadata_mut(&mut self) -> &mut ObjectMeta {
        k8s_openapi::Metadata::metadata_mut(self)
    }
}

/// Everything a stored, served type must be: built-in types and custom resources. What depends
/// on the type beyond this (decoding, strategic merge, tables, the apply schema) comes from the
/// store's [`TypeSupport`].
pub trait Object:
    HasObjectMeta
    + Serialize
    + DeserializeOwned
    + Clone
    + Send
    + Sync
    + apiserver_apis::ApiType
    + 'static
{
}

impl<T> Object for T where
    T: HasObjectMeta
        + Serialize
        + DeserializeOwned
        + Clone
        + Send
        + Sync
        + apiserver_apis::ApiType
        + 'static
{
}

/// A built-in type: its schema, printer and type meta are known statically.
pub trait BuiltinObject:
    Object
    + k8s_openapi::Resource
    + k8s_openapi::Metadata<Ty = ObjectMeta>
    + apiserver_printers::TablePrinter
    + schemars::JsonSchema
{
}

impl<T> BuiltinObject for T where
    T: Object
        + k8s_openapi::Resource
        + k8s_openapi::Metadata<Ty = ObjectMeta>
        + apiserver_printers::TablePrinter
        + schemars::JsonSchema
{
}

/// Answers whether a namespace accepts new objects (NamespaceLifecycle admission).
#[async_trait::async_trait]
pub trait NamespaceLifecycle: Send + Sync {
    async fn check_create(&self, namespace: &str) -> Result<(), ApiError>;
}

/// Errors inside the update loop: an API error, or storage trouble to classify.
pub enum StoreError {
    Api(ApiError),
    Storage(StorageError),
}

impl From<StorageError> for StoreError {
    fn from(e: StorageError) -> Self {
        StoreError::Storage(e)
    }
}

impl From<ApiError> for StoreError {
    fn from(e: ApiError) -> Self {
        StoreError::Api(e)
    }
}

/// Which part of an object an update may change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpdateMode {
    /// The main resource: status is kept from the stored object.
    Main,
    /// The status subresource: only status (and nothing else) changes.
    Status,
    /// Server-internal subresources (binding, finalize) that set what they need themselves.
    Internal,
}

pub struct GenericStore<K: Object> {
    pub info: ResourceInfo,
    pub strategy: Arc<dyn Strategy<K>>,
    pub storage: Arc<dyn Storage>,
    pub cache: Arc<WatchCache>,
    pub namespaces: Option<Arc<dyn NamespaceLifecycle>>,
    /// The storage key prefix (`--etcd-prefix` with a trailing slash).
    pub root: String,
    /// How objects are encoded in storage.
    pub codec: Arc<dyn Codec>,
    /// What depends on the served type (decoding, strategic merge, tables, apply schema).
    pub support: Arc<dyn TypeSupport<K>>,
}

/// The result of a delete.
pub enum DeleteOutcome<K> {
    /// Gone from storage; the last state.
    Deleted(K),
    /// Marked for deletion (finalizers or grace period) and still stored.
    Pending(K),
}

fn json_of<K: Serialize>(obj: &K) -> Result<serde_json::Value, ApiError> {
    serde_json::to_value(obj).map_err(|e| ApiError::internal(e.to_string()))
}

fn from_json<K: DeserializeOwned>(v: serde_json::Value) -> Result<K, ApiError> {
    serde_json::from_value(v).map_err(|e| ApiError::internal(e.to_string()))
}

impl<K: BuiltinObject> GenericStore<K> {
    /// The store of a built-in resource, with its own watch cache.
    pub fn new(
        info: ResourceInfo,
        strategy: Arc<dyn Strategy<K>>,
        storage: Arc<dyn Storage>,
        caches: &CacheSet,
        namespaces: Option<Arc<dyn NamespaceLifecycle>>,
        codec: Arc<dyn Codec>,
    ) -> Self {
        let prefix = format!("{}{}/", caches.root(), info.etcd_prefix);
        let transform = Self::transform(strategy.clone(), codec.clone());
        let cache = caches.register(&prefix, transform);
        let support: Arc<dyn TypeSupport<K>> = Arc::new(Builtin::<K>::new(&info));
        GenericStore {
            info,
            strategy,
            storage,
            cache,
            namespaces,
            root: caches.root().to_string(),
            codec,
            support,
        }
    }
}

impl<K: Object> GenericStore<K> {
    /// Decodes stored bytes into the served JSON with resourceVersion and selectable fields.
    pub fn transform(strategy: Arc<dyn Strategy<K>>, codec: Arc<dyn Codec>) -> Transform {
        let shallow = strategy.field_labels().is_empty();
        Arc::new(move |key: &str, value: &[u8], rev: i64| {
            let json = codec.decode(value).map_err(|e| format!("{key}: {e}"))?;
            if shallow {
                // Only metadata is selectable: no need to decode into the type.
                let (json, view) =
                    apiserver_apimachinery::rawmeta::stamp_resource_version(&json, rev)
                        .map_err(|e| format!("{key}: {e}"))?;
                let mut fields = BTreeMap::new();
                fields.insert("metadata.name".to_string(), view.name);
                fields.insert("metadata.namespace".to_string(), view.namespace);
                return Ok(CachedObject {
                    key: key.to_string(),
                    revision: rev,
                    json: Bytes::from(json),
                    attrs: Attrs {
                        labels: view.labels,
                        fields,
                    },
                });
            }
            let mut obj: K = serde_json::from_slice(&json).map_err(|e| format!("{key}: {e}"))?;
            obj.metadata_mut().resource_version = Some(rev.to_string());
            let json = serde_json::to_vec(&obj).map_err(|e| e.to_string())?;
            let m = obj.metadata();
            let mut fields = BTreeMap::new();
            fields.insert(
                "metadata.name".to_string(),
                m.name.clone().unwrap_or_default(),
            );
            fields.insert(
                "metadata.namespace".to_string(),
                m.namespace.clone().unwrap_or_default(),
            );
            strategy.fields(&obj, &mut fields);
            let attrs = Attrs {
                labels: m.labels.clone().unwrap_or_default(),
                fields,
            };
            Ok(CachedObject {
                key: key.to_string(),
                revision: rev,
                json: Bytes::from(json),
                attrs,
            })
        })
    }

    pub fn resource_prefix(&self) -> String {
        format!("{}{}/", self.root, self.info.etcd_prefix)
    }

    /// The key prefix of a namespace (or of the whole resource).
    pub fn key_prefix(&self, ns: Option<&str>) -> String {
        match ns {
            Some(ns) if self.info.namespaced() => {
                format!("{}{}/{}/", self.root, self.info.etcd_prefix, ns)
            }
            _ => self.resource_prefix(),
        }
    }

    pub fn key(&self, ns: Option<&str>, name: &str) -> String {
        format!("{}{}", self.key_prefix(ns), name)
    }

    fn not_found(&self, name: &str) -> ApiError {
        ApiError::not_found(self.info.group, self.info.resource, name)
    }

    fn classify(&self, name: &str, e: StoreError) -> ApiError {
        match e {
            StoreError::Api(a) => a,
            StoreError::Storage(StorageError::NotFound) => self.not_found(name),
            StoreError::Storage(StorageError::AlreadyExists) => {
                ApiError::already_exists(self.info.group, self.info.resource, name)
            }
            StoreError::Storage(StorageError::Conflict) => {
                ApiError::stale(self.info.group, self.info.resource, name)
            }
            StoreError::Storage(StorageError::Compacted(r)) => ApiError::expired(format!(
                "The resourceVersion for the provided list is too old (compacted at {r})."
            )),
            StoreError::Storage(StorageError::Unavailable(m)) => {
                ApiError::service_unavailable(format!("storage is unavailable: {m}"))
            }
            StoreError::Storage(StorageError::Internal(m)) => ApiError::internal(m),
        }
    }

    /// Decodes a stored value, setting its resourceVersion.
    pub fn decode_stored(&self, value: &[u8], rev: i64) -> Result<K, ApiError> {
        let json = self.codec.decode(value).map_err(|e| {
            ApiError::internal(format!("decoding stored {}: {e}", self.info.resource))
        })?;
        let mut obj: K = serde_json::from_slice(&json).map_err(|e| {
            ApiError::internal(format!("decoding stored {}: {e}", self.info.resource))
        })?;
        obj.metadata_mut().resource_version = Some(rev.to_string());
        Ok(obj)
    }

    /// The stored form: the object without its resourceVersion (taken out for the encoding
    /// and put back, rather than copying the object).
    fn encode_for_storage(&self, obj: &mut K) -> Result<Bytes, ApiError> {
        let rv = obj.metadata_mut().resource_version.take();
        let json = serde_json::to_vec(obj).map_err(|e| ApiError::internal(e.to_string()));
        obj.metadata_mut().resource_version = rv;
        self.codec.encode(&json?).map_err(ApiError::internal)
    }

    /// The server-side apply field manager for writes through `mode`.
    pub fn field_manager(&self, mode: UpdateMode) -> apiserver_fieldmanager::FieldManager<'_> {
        let fm = self.support.field_manager();
        match mode {
            UpdateMode::Status => fm
                .with_subresource("status")
                .with_reset_fields(&[apiserver_fieldmanager::Path::fields(&["spec"])]),
            _ if self.strategy.has_status() => {
                fm.with_reset_fields(&[apiserver_fieldmanager::Path::fields(&["status"])])
            }
            _ => fm,
        }
    }

    /// Records a non-apply write in `metadata.managedFields` (upstream's fieldmanager
    /// `UpdateNoErrors` in the create/update/patch handlers).
    fn track_managed_fields(
        &self,
        old: Option<&K>,
        new: K,
        opts: &WriteOptions,
        mode: UpdateMode,
    ) -> Result<K, ApiError> {
        if opts.managed_fields_done || mode == UpdateMode::Internal {
            return Ok(new);
        }
        let manager = opts.field_manager.as_deref().unwrap_or("");
        if old.is_none()
            && new
                .metadata()
                .managed_fields
                .as_ref()
                .is_none_or(Vec::is_empty)
        {
            // A create that sent no managedFields (the usual case): one entry for `manager`,
            // computed without the general bookkeeping.
            let mut new = new;
            new.metadata_mut().managed_fields = None;
            let v = json_of(&new)?;
            new.metadata_mut().managed_fields =
                self.field_manager(mode)
                    .create_entries(&v, manager, jiff::Timestamp::now());
            return Ok(new);
        }
        let old_v = old.map(json_of).transpose()?;
        let mut out = json_of(&new)?;
        self.field_manager(mode).update_no_errors_in_place(
            old_v.as_ref(),
            &mut out,
            manager,
            jiff::Timestamp::now(),
        );
        // Only metadata.managedFields differs from `new`: take just that instead of
        // deserializing the whole object again.
        let mut new = new;
        new.metadata_mut().managed_fields =
            match out.get("metadata").and_then(|m| m.get("managedFields")) {
                None | Some(serde_json::Value::Null) => None,
                Some(v) => Some(
                    <Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry>
                        as serde::Deserialize>::deserialize(v)
                        .map_err(|e| ApiError::internal(e.to_string()))?,
                ),
            };
        Ok(new)
    }

    fn invalid(&self, obj: &K, errs: &[FieldError]) -> ApiError {
        let name = obj.metadata().name.clone().unwrap_or_default();
        ApiError::invalid(self.info.group, self.info.kind, &name, errs)
    }

    fn check_namespace(&self, ctx: &RequestContext, meta: &mut ObjectMeta) -> Result<(), ApiError> {
        if !self.info.namespaced() {
            meta.namespace = None;
            return Ok(());
        }
        let path_ns = ctx.namespace.as_deref().unwrap_or("");
        match meta.namespace.as_deref() {
            None | Some("") => meta.namespace = Some(path_ns.to_string()),
            Some(ns) if ns != path_ns => {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            Some(_) => {}
        }
        Ok(())
    }

    pub async fn get(&self, ns: Option<&str>, name: &str) -> Result<K, ApiError> {
        let kv = self
            .storage
            .get(&self.key(ns, name))
            .await
            .map_err(|e| self.classify(name, e.into()))?
            .ok_or_else(|| self.not_found(name))?;
        self.decode_stored(&kv.value, kv.mod_revision)
    }

    /// Create (upstream `rest.BeforeCreate` + `Store.Create`).
    pub async fn create(
        &self,
        ctx: &RequestContext,
        mut obj: K,
        opts: &WriteOptions,
    ) -> Result<K, ApiError> {
        self.check_namespace(ctx, obj.metadata_mut())?;
        if obj
            .metadata()
            .resource_version
            .as_deref()
            .is_some_and(|rv| !rv.is_empty())
        {
            return Err(ApiError::bad_request(
                "resourceVersion should not be set on objects to be created",
            ));
        }
        if self.strategy.has_status() && self.strategy.reset_status_on_create() {
            let mut v = json_of(&obj)?;
            if let Some(o) = v.as_object_mut() {
                o.remove("status");
            }
            obj = from_json(v)?;
        }
        obj.default_fields();
        meta::fill_system_fields(obj.metadata_mut());
        if self.strategy.tracks_generation() {
            obj.metadata_mut().generation = Some(1);
        } else {
            obj.metadata_mut().generation = None;
        }
        self.strategy.prepare_for_create(&mut obj);
        // NamespaceLifecycle is the first admission plugin, ahead of the others and validation.
        if self.info.namespaced()
            && let (Some(lc), Some(ns)) = (&self.namespaces, obj.metadata().namespace.clone())
        {
            lc.check_create(&ns).await?;
        }
        let ns = obj.metadata().namespace.clone().unwrap_or_default();
        self.strategy.admit_create_async(&ns, &mut obj).await?;
        self.strategy.admit_create(&mut obj)?;
        let mut obj = self.track_managed_fields(None, obj, opts, UpdateMode::Main)?;
        let generate = obj.metadata().name.as_deref().is_none_or(str::is_empty)
            && obj
                .metadata()
                .generate_name
                .as_deref()
                .is_some_and(|g| !g.is_empty());
        if generate {
            let base = obj.metadata().generate_name.clone().unwrap_or_default();
            obj.metadata_mut().name = Some(meta::generate_name(&base));
        }
        let mut errs = validate_object_meta(
            obj.metadata(),
            self.info.namespaced(),
            self.strategy.name_rule(),
        );
        if generate {
            // Errors about the generated name are reported against generateName only.
            errs.retain(|e| e.field.as_str() != "metadata.name");
        }
        errs.extend(self.strategy.validate(&obj));
        if errs.is_empty() {
            errs.extend(self.strategy.allocate(&mut obj, None));
        }
        if !errs.is_empty() {
            return Err(self.invalid(&obj, &errs));
        }
        if opts.dry_run {
            return Ok(obj);
        }
        let mut attempts = 0;
        loop {
            let name = obj.metadata().name.clone().unwrap_or_default();
            let key = self.key(obj.metadata().namespace.as_deref(), &name);
            let bytes = self.encode_for_storage(&mut obj)?;
            match self
                .storage
                .create(&key, bytes, self.strategy.ttl_seconds())
                .await
            {
                Ok(rev) => {
                    obj.metadata_mut().resource_version = Some(rev.to_string());
                    return Ok(obj);
                }
                Err(StorageError::AlreadyExists) if generate && attempts < 8 => {
                    attempts += 1;
                    let base = obj.metadata().generate_name.clone().unwrap_or_default();
                    obj.metadata_mut().name = Some(meta::generate_name(&base));
                }
                Err(e) => return Err(self.classify(&name, e.into())),
            }
        }
    }

    /// Update through `guaranteed_update`. `mutate` turns the current object into the desired one
    /// (for PUT it returns the request's object; for PATCH it applies the patch). Returns the
    /// result and whether it was created.
    pub async fn update_with<F>(
        &self,
        ctx: &RequestContext,
        name: &str,
        mode: UpdateMode,
        opts: &WriteOptions,
        mut mutate: F,
    ) -> Result<(K, bool), ApiError>
    where
        F: FnMut(Option<&K>) -> Result<K, ApiError> + Send,
    {
        let ns = if self.info.namespaced() {
            ctx.namespace.clone()
        } else {
            None
        };
        let key = self.key(ns.as_deref(), name);
        // Create-on-update needs the (async) namespace check before the loop.
        let exists = self
            .storage
            .get(&key)
            .await
            .map_err(|e| self.classify(name, e.into()))?
            .is_some();
        if !exists {
            if !self.strategy.allow_create_on_update() || mode == UpdateMode::Status {
                return Err(self.not_found(name));
            }
            let obj = mutate(None)?;
            if obj.metadata().name.as_deref() != Some(name) {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({}) does not match the name on the URL ({name})",
                    obj.metadata().name.as_deref().unwrap_or("")
                )));
            }
            let mut obj = obj;
            obj.metadata_mut().resource_version = None;
            return self.create(ctx, obj, opts).await.map(|o| (o, true));
        }
        let mut result: Option<K> = None;
        let dry_run = opts.dry_run;
        let outcome = guaranteed_update::<_, StoreError, _>(
            self.storage.as_ref(),
            &key,
            self.strategy.ttl_seconds(),
            |cur| {
                let cur = cur.ok_or(StoreError::Storage(StorageError::NotFound))?;
                let old = self.decode_stored(&cur.value, cur.mod_revision)?;
                let mut new = mutate(Some(&old))?;
                self.check_namespace(ctx, new.metadata_mut())?;
                let new_name = new.metadata().name.clone().unwrap_or_default();
                if new_name != name {
                    return Err(ApiError::bad_request(format!(
                        "the name of the object ({new_name}) does not match the name on the URL ({name})"
                    ))
                    .into());
                }
                match new.metadata().resource_version.as_deref() {
                    Some(rv) if !rv.is_empty() && rv != "0" => {
                        if rv != cur.mod_revision.to_string() {
                            return Err(StoreError::Api(ApiError::stale(self.info.group, self.info.resource, name)));
                        }
                    }
                    _ if !self.strategy.allow_unconditional_update() => {
                        let fe = FieldError::invalid(
                            &apiserver_apimachinery::FieldPath::root("metadata").child("resourceVersion"),
                            "0x0",
                            "must be specified for an update",
                        );
                        return Err(self.invalid(&new, &[fe]).into());
                    }
                    _ => {}
                }
                let mut new = self.merge_for_update(new, &old, mode)?;
                new.default_fields();
                if mode == UpdateMode::Main {
                    self.strategy.prepare_for_update(&mut new, &old);
                }
                let mut new = self.track_managed_fields(Some(&old), new, opts, mode)?;
                if self.strategy.tracks_generation() && mode == UpdateMode::Main && spec_changed(&new, &old, self.strategy.has_status())? {
                    new.metadata_mut().generation = Some(old.metadata().generation.unwrap_or(0) + 1);
                }
                let mut errs = validate_object_meta_update(
                    new.metadata(),
                    old.metadata(),
                    self.info.namespaced(),
                    self.strategy.name_rule(),
                );
                match mode {
                    UpdateMode::Main => errs.extend(self.strategy.validate_update(&new, &old)),
                    UpdateMode::Status => {
                        errs.extend(new.validate_status_update(&old));
                        errs.extend(self.strategy.validate_status_update(&new, &old));
                    }
                    UpdateMode::Internal => {}
                }
                if errs.is_empty() && mode == UpdateMode::Main {
                    errs.extend(self.strategy.allocate(&mut new, Some(&old)));
                }
                if !errs.is_empty() {
                    return Err(self.invalid(&new, &errs).into());
                }
                // Upstream's shouldDeleteDuringUpdate: marked, no finalizers left, and not in a
                // graceful termination period.
                let finalized = new.metadata().deletion_timestamp.is_some()
                    && new.metadata().finalizers.as_ref().is_none_or(Vec::is_empty)
                    && old.metadata().deletion_grace_period_seconds == Some(0)
                    && !self.strategy.delete_marks_only(&new);
                new.metadata_mut().resource_version = Some(cur.mod_revision.to_string());
                let bytes = self.encode_for_storage(&mut new)?;
                result = Some(new);
                if dry_run {
                    return Ok(Update::Keep);
                }
                if finalized {
                    return Ok(Update::Delete);
                }
                if cur.value == bytes {
                    return Ok(Update::Keep);
                }
                Ok(Update::Write(bytes))
            },
        )
        .await
        .map_err(|e| self.classify(name, e))?;
        let mut out = result.ok_or_else(|| ApiError::internal("update produced no object"))?;
        if let (Some(kv), false) = (&outcome.0, dry_run) {
            out.metadata_mut().resource_version = Some(kv.mod_revision.to_string());
        }
        Ok((out, false))
    }

    /// Carries over what a client may not change through this endpoint.
    fn merge_for_update(&self, new: K, old: &K, mode: UpdateMode) -> Result<K, ApiError> {
        let new_meta = new.metadata().clone();
        let mut merged: K = if self.strategy.has_status() && mode != UpdateMode::Internal {
            let mut nv = json_of(&new)?;
            let ov = json_of(old)?;
            match mode {
                UpdateMode::Main => {
                    if let Some(o) = nv.as_object_mut() {
                        match ov.get("status") {
                            Some(s) => o.insert("status".into(), s.clone()),
                            None => o.remove("status"),
                        };
                    }
                    from_json(nv)?
                }
                UpdateMode::Status | UpdateMode::Internal => {
                    // Status writes change status and metadata; everything else is the stored one.
                    if let (Some(n), Some(o)) = (nv.as_object_mut(), ov.as_object()) {
                        n.retain(|k, _| {
                            k == "metadata" || k == "status" || k == "apiVersion" || k == "kind"
                        });
                        for (k, v) in o {
                            if k != "metadata" && k != "status" {
                                n.insert(k.clone(), v.clone());
                            }
                        }
                    }
                    let mut k: K = from_json(nv)?;
                    k.metadata_mut().resource_version = new_meta.resource_version.clone();
                    k
                }
            }
        } else {
            new
        };
        let m = merged.metadata_mut();
        let om = old.metadata();
        if m.uid.as_deref().is_none_or(str::is_empty) {
            m.uid = om.uid.clone();
        }
        m.creation_timestamp = om.creation_timestamp.clone();
        m.deletion_timestamp = om.deletion_timestamp.clone();
        m.deletion_grace_period_seconds = om.deletion_grace_period_seconds;
        m.generation = om.generation;
        m.self_link = None;
        if m.namespace.is_none() && self.info.namespaced() {
            m.namespace = om.namespace.clone();
        }
        Ok(merged)
    }

    /// Delete with preconditions, finalizers, propagation policy and graceful deletion.
    pub async fn delete(
        &self,
        ctx: &RequestContext,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<DeleteOutcome<K>, ApiError> {
        let ns = if self.info.namespaced() {
            ctx.namespace.clone()
        } else {
            None
        };
        let key = self.key(ns.as_deref(), name);
        let mut outcome: Option<DeleteOutcome<K>> = None;
        let (kv, _) = guaranteed_update::<_, StoreError, _>(self.storage.as_ref(), &key, None, |cur| {
            let cur = cur.ok_or(StoreError::Storage(StorageError::NotFound))?;
            let mut obj = self.decode_stored(&cur.value, cur.mod_revision)?;
            self.strategy.check_delete(&obj)?;
            let m = obj.metadata();
            if let Some(uid) = &opts.precondition_uid {
                let actual = m.uid.clone().unwrap_or_default();
                if &actual != uid {
                    return Err(ApiError::conflict(
                        self.info.group,
                        self.info.resource,
                        name,
                        &format!("Precondition failed: UID in precondition: {uid}, UID in object meta: {actual}"),
                    )
                    .into());
                }
            }
            if let Some(rv) = &opts.precondition_resource_version {
                let actual = cur.mod_revision.to_string();
                if &actual != rv {
                    return Err(ApiError::conflict(
                        self.info.group,
                        self.info.resource,
                        name,
                        &format!(
                            "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {actual}"
                        ),
                    )
                    .into());
                }
            }
            let policy = opts.propagation_policy.clone().or_else(|| match opts.orphan_dependents {
                Some(true) => Some("Orphan".to_string()),
                Some(false) => Some("Background".to_string()),
                None => None,
            });
            let mut changed = false;
            let mut finalizers = obj.metadata().finalizers.clone().unwrap_or_default();
            let add = |f: &mut Vec<String>, name: &str, changed: &mut bool| {
                if !f.iter().any(|x| x == name) {
                    f.push(name.to_string());
                    *changed = true;
                }
            };
            match policy.as_deref() {
                Some("Orphan") => add(&mut finalizers, "orphan", &mut changed),
                Some("Foreground") => add(&mut finalizers, "foregroundDeletion", &mut changed),
                Some("Background") => {
                    let before = finalizers.len();
                    finalizers.retain(|f| f != "orphan" && f != "foregroundDeletion");
                    changed |= before != finalizers.len();
                }
                None => {}
                Some(other) => {
                    return Err(ApiError::invalid(
                        "meta.k8s.io",
                        "DeleteOptions",
                        "",
                        &[FieldError::not_supported(
                            &apiserver_apimachinery::FieldPath::root("propagationPolicy"),
                            other,
                            &["Foreground", "Background", "Orphan"],
                        )],
                    )
                    .into());
                }
            }
            let marks_only = self.strategy.delete_marks_only(&obj);
            let grace = self.strategy.graceful_delete(&obj, opts.grace_period_seconds);
            let already_deleting = obj.metadata().deletion_timestamp.is_some();
            if !finalizers.is_empty() || marks_only {
                let mm = obj.metadata_mut();
                mm.finalizers = (!finalizers.is_empty()).then(|| finalizers.clone());
                if mm.deletion_timestamp.is_none() {
                    let g = match grace {
                        GracefulDelete::After(s) => s,
                        GracefulDelete::Now => 0,
                    };
                    mm.deletion_timestamp = Some(meta::now_plus(g));
                    mm.deletion_grace_period_seconds = Some(g);
                    changed = true;
                }
                if marks_only {
                    self.strategy.prepare_for_delete_mark(&mut obj);
                    changed = true;
                }
                outcome = Some(DeleteOutcome::Pending(obj.clone()));
                if opts.dry_run || !changed {
                    return Ok(Update::Keep);
                }
                return Ok(Update::Write(self.encode_for_storage(&mut obj)?));
            }
            match grace {
                GracefulDelete::After(s) if s > 0 => {
                    let shorter = obj.metadata().deletion_grace_period_seconds.is_none_or(|cur| s < cur);
                    if !already_deleting || shorter {
                        let mm = obj.metadata_mut();
                        mm.deletion_timestamp = Some(meta::now_plus(s));
                        mm.deletion_grace_period_seconds = Some(s);
                        outcome = Some(DeleteOutcome::Pending(obj.clone()));
                        if opts.dry_run {
                            return Ok(Update::Keep);
                        }
                        return Ok(Update::Write(self.encode_for_storage(&mut obj)?));
                    }
                    outcome = Some(DeleteOutcome::Pending(obj));
                    Ok(Update::Keep)
                }
                _ => {
                    outcome = Some(DeleteOutcome::Deleted(obj));
                    if opts.dry_run { Ok(Update::Keep) } else { Ok(Update::Delete) }
                }
            }
        })
        .await
        .map_err(|e| self.classify(name, e))?;
        let mut outcome =
            outcome.ok_or_else(|| ApiError::internal("delete produced no outcome"))?;
        if let (DeleteOutcome::Pending(obj), Some(kv)) = (&mut outcome, &kv) {
            if !opts.dry_run {
                obj.metadata_mut().resource_version = Some(kv.mod_revision.to_string());
            }
        }
        Ok(outcome)
    }

    /// Lists the keys of objects matching `opts` (for deletecollection).
    pub fn list_names(&self, ns: Option<&str>, opts: &ListOptions) -> Vec<String> {
        let filter = apiserver_storage::cacher::Filter {
            key_prefix: self.key_prefix(ns),
            labels: opts.labels.clone(),
            fields: opts.fields.clone(),
        };
        self.cache
            .list(&filter, None, 0)
            .items
            .iter()
            .filter_map(|o| o.key.rsplit('/').next().map(str::to_string))
            .collect()
    }
}

/// Whether anything outside metadata (and status, when it is a subresource of its own)
/// changed. Without a status subresource a status change is a change of the object (upstream's
/// custom resource strategy bumps the generation for it).
fn spec_changed<K: Serialize>(new: &K, old: &K, has_status: bool) -> Result<bool, ApiError> {
    let strip = |v: serde_json::Value| {
        let mut v = v;
        if let Some(o) = v.as_object_mut() {
            o.remove("metadata");
            if has_status {
                o.remove("status");
            }
        }
        v
    };
    Ok(strip(json_of(new)?) != strip(json_of(old)?))
}
