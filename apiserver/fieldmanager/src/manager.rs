//! The field manager of one resource (mirrors k8s.io/apimachinery/pkg/util/managedfields/
//! internal/fieldmanager.go and the managers it chains: versioncheck, lastappliedupdater,
//! lastappliedmanager, skipnonapplied, capmanagers, buildmanagerinfo, managedfieldsupdater,
//! stripmeta, structuredmerge): server-side apply and managedFields tracking of other writes,
//! on JSON objects whose `metadata.managedFields` it reads and writes.

use apiserver_apimachinery::{ApiError, Reason};
use jiff::Timestamp;
use serde_json::{Map, Value};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{FieldsV1, ManagedFieldsEntry, Time};

use crate::fieldsv1::set_to_fields;
use crate::lastapplied;
use crate::managed::{self, APPLY, Managed, UPDATE, cap_update_managers, manager_identifier};
use crate::path::Path;
use crate::schema::{Schema, TypeRef};
use crate::set::Set;
use crate::updater::{UpdateError, Updater};

/// Upstream's `DefaultMaxUpdateManagers`.
pub const DEFAULT_MAX_UPDATE_MANAGERS: usize = 10;
const BEFORE_FIRST_APPLY: &str = "before-first-apply";
const CURRENT_OPERATION: &str = "current-operation";

/// Field management for objects of one kind at one API version (and optionally one
/// subresource).
#[derive(Clone, Debug)]
pub struct FieldManager<'s> {
    schema: &'s Schema,
    root: TypeRef,
    api_version: String,
    kind: String,
    subresource: String,
    reset_fields: Option<Set>,
    max_update_managers: usize,
}

/// The fields upstream never records in managedFields.
/// The fields no manager owns, built once.
fn strip_set() -> &'static Set {
    static STRIP: std::sync::LazyLock<Set> = std::sync::LazyLock::new(build_strip_set);
    &STRIP
}

fn build_strip_set() -> Set {
    let mut s = Set::new();
    for p in [
        &["apiVersion"][..],
        &["kind"],
        &["metadata"],
        &["metadata", "name"],
        &["metadata", "namespace"],
        &["metadata", "creationTimestamp"],
        &["metadata", "selfLink"],
        &["metadata", "uid"],
        &["metadata", "clusterName"],
        &["metadata", "generation"],
        &["metadata", "managedFields"],
        &["metadata", "resourceVersion"],
    ] {
        s.insert(&Path::fields(p).0);
    }
    s
}

fn metadata(obj: &Value) -> Option<&Map<String, Value>> {
    obj.get("metadata").and_then(Value::as_object)
}

/// `obj` without `metadata.managedFields`.
pub(crate) fn without_managed_fields(obj: &Value) -> Value {
    let mut out = obj.clone();
    if let Some(meta) = out.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
    out
}

/// Writes the encoded entries (or removes the field when there are none).
fn set_managed_fields(obj: &mut Value, managed: &Managed) {
    let entries = managed::encode(managed);
    let Some(root) = obj.as_object_mut() else {
        return;
    };
    match entries {
        Some(e) => {
            let meta = root
                .entry("metadata")
                .or_insert_with(|| Value::Object(Map::new()));
            if let Some(meta) = meta.as_object_mut() {
                meta.insert("managedFields".into(), e);
            }
        }
        None => {
            if let Some(meta) = root.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.remove("managedFields");
            }
        }
    }
}

fn internal(msg: String) -> ApiError {
    ApiError::new(Reason::InternalError, msg)
}

impl<'s> FieldManager<'s> {
    /// A manager for objects of type `definition` (a named type of `schema`, e.g.
    /// `io.k8s.api.apps.v1.Deployment`) served as `api_version` (`apps/v1`) / `kind`.
    pub fn new(schema: &'s Schema, definition: &str, api_version: &str, kind: &str) -> Self {
        FieldManager {
            schema,
            root: TypeRef::named(definition),
            api_version: api_version.to_string(),
            kind: kind.to_string(),
            subresource: String::new(),
            reset_fields: None,
            max_update_managers: DEFAULT_MAX_UPDATE_MANAGERS,
        }
    }

    /// For writes through a subresource (`status`, `scale`): entries carry `subresource`.
    pub fn with_subresource(mut self, subresource: &str) -> Self {
        self.subresource = subresource.to_string();
        self
    }

    /// Fields the strategy resets (e.g. `status` for the main resource): never owned.
    pub fn with_reset_fields(mut self, paths: &[Path]) -> Self {
        self.reset_fields = Some(Set::from_paths(paths));
        self
    }

    pub fn with_max_update_managers(mut self, max: usize) -> Self {
        self.max_update_managers = max;
        self
    }

    fn updater(&self) -> Updater<'_> {
        Updater {
            schema: self.schema,
            root: &self.root,
            ignored: self.reset_fields.as_ref(),
        }
    }

    fn strip(&self, managed: &mut Managed, id: &str) {
        if let Some(vs) = managed.fields.get_mut(id) {
            vs.set = vs.set.difference(strip_set());
            if vs.set.is_empty() {
                managed.fields.remove(id);
            }
        }
    }

    /// An Update by `manager` through the inner managers (cap, manager info, managedFields
    /// updater, strip, structured merge).
    fn inner_update(
        &self,
        live: &Value,
        new: &Value,
        managed: &mut Managed,
        manager: &str,
        now: Timestamp,
    ) -> Result<(), UpdateError> {
        let name = if manager.is_empty() {
            "unknown"
        } else {
            manager
        };
        let id = manager_identifier(name, UPDATE, &self.api_version, &self.subresource);
        self.updater().update_op(
            live,
            new,
            &self.api_version,
            &mut managed.fields,
            CURRENT_OPERATION,
        )?;
        self.strip(managed, CURRENT_OPERATION);
        if let Some(mut vs) = managed.fields.remove(CURRENT_OPERATION) {
            if let Some(previous) = managed.fields.get(&id) {
                vs.set = vs.set.union(&previous.set);
            }
            managed.fields.insert(id.clone(), vs);
            managed.times.insert(id, Some(now));
        }
        cap_update_managers(managed, self.max_update_managers);
        Ok(())
    }

    /// An Apply through the inner managers (skip-non-applied, cap, manager info, managedFields
    /// updater, strip, structured merge).
    fn inner_apply(
        &self,
        live: &Value,
        applied: &Value,
        managed: &mut Managed,
        manager: &str,
        force: bool,
        now: Timestamp,
    ) -> Result<Value, UpdateError> {
        if managed.fields.is_empty() {
            let empty = Value::Object(Map::new());
            self.inner_update(&empty, live, managed, BEFORE_FIRST_APPLY, now)?;
        }
        let name = if manager.is_empty() {
            "unknown"
        } else {
            manager
        };
        let id = manager_identifier(name, APPLY, &self.api_version, &self.subresource);
        let (new, changed) = self.updater().apply(
            live,
            applied,
            &self.api_version,
            &mut managed.fields,
            &id,
            force,
        )?;
        self.strip(managed, &id);
        if changed {
            managed.times.insert(id, Some(now));
            Ok(new)
        } else {
            Ok(live.clone())
        }
    }

    /// Server-side apply of `applied` by `manager` onto `live` (`None` when the object does not
    /// exist yet): the merged object with its managedFields, or 409 with the conflicts (unless
    /// `force`), or 400 for a wrong apiVersion/kind or managedFields in the configuration.
    pub fn apply(
        &self,
        live: Option<&Value>,
        applied: &Value,
        manager: &str,
        force: bool,
        now: Timestamp,
    ) -> Result<Value, ApiError> {
        let live_obj = live.cloned().unwrap_or_else(|| Value::Object(Map::new()));
        let decoded = managed::decode(metadata(&live_obj).and_then(|m| m.get("managedFields")))
            .map_err(|e| internal(format!("failed to decode managed fields: {e}")))?;
        let applied_version = applied
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or("");
        let applied_kind = applied.get("kind").and_then(Value::as_str).unwrap_or("");
        if applied_version != self.api_version || applied_kind != self.kind {
            return Err(ApiError::bad_request(format!(
                "invalid object type: {}",
                gvk_string(applied_version, applied_kind)
            )));
        }
        if metadata(applied).is_some_and(|m| m.get("managedFields").is_some_and(|v| !v.is_null())) {
            return Err(ApiError::bad_request("metadata.managedFields must be nil"));
        }
        let errs = crate::typed::validate(self.schema, &self.root, applied, false);
        if !errs.is_empty() {
            return Err(internal(format!(
                "failed to create typed patch object ({}): {}",
                object_gvknn(applied),
                crate::typed::format_errors(&errs)
            )));
        }
        let live_obj = without_managed_fields(&live_obj);

        // lastAppliedManager: conflicts kubectl's client-side apply explains are forced.
        let mut managed = decoded.clone();
        let result = match self.inner_apply(&live_obj, applied, &mut managed, manager, force, now) {
            Err(UpdateError::Conflicts(conflicts)) if manager == "kubectl" => {
                match lastapplied::allowed_conflicts(
                    self.schema,
                    &self.root,
                    &self.api_version,
                    &live_obj,
                ) {
                    Some(allowed) => {
                        let remaining: Vec<_> = conflicts
                            .iter()
                            .filter(|c| !allowed.has(&c.path.0))
                            .cloned()
                            .collect();
                        if remaining.is_empty() {
                            managed = decoded.clone();
                            self.inner_apply(&live_obj, applied, &mut managed, manager, true, now)
                        } else {
                            Err(UpdateError::Conflicts(remaining))
                        }
                    }
                    None => Err(UpdateError::Conflicts(conflicts)),
                }
            }
            other => other,
        };
        let mut new = match result {
            Ok(v) => v,
            Err(UpdateError::Conflicts(c)) => return Err(managed::conflict_error(&c)),
            Err(UpdateError::Invalid(m)) => {
                return Err(internal(format!(
                    "failed to apply ({}): {m}",
                    object_gvknn(applied)
                )));
            }
        };
        // lastAppliedUpdater: keep kubectl's annotation in step with what it applied.
        if manager == "kubectl" && lastapplied::has_last_applied(&new) {
            lastapplied::set_last_applied(&mut new, &lastapplied::build_last_applied(applied));
        }
        set_managed_fields(&mut new, &managed);
        Ok(new)
    }

    /// Records a non-apply write (create, update, patch) by `manager`: `new` with its
    /// managedFields updated. `old` is the stored object (`None` on create). managedFields set
    /// in `new` are honoured (an empty list resets them), as upstream allows.
    pub fn update(
        &self,
        old: Option<&Value>,
        new: &Value,
        manager: &str,
        now: Timestamp,
    ) -> Result<Value, ApiError> {
        let mut out = new.clone();
        self.update_in_place(old, &mut out, manager, now)?;
        Ok(out)
    }

    /// `update` on an object the caller owns: `obj` (the new object) gets its managedFields
    /// updated in place. On error only its managedFields may have been removed.
    fn update_in_place(
        &self,
        old: Option<&Value>,
        obj: &mut Value,
        manager: &str,
        now: Timestamp,
    ) -> Result<(), ApiError> {
        let empty = Value::Object(Map::new());
        let live = old.unwrap_or(&empty);
        let Some(mut managed) = self.decode_live_or_new(live, obj) else {
            return Ok(());
        };
        if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("managedFields");
        }
        if managed.fields.is_empty() {
            let uid = metadata(live)
                .and_then(|m| m.get("uid"))
                .and_then(Value::as_str);
            if uid.is_some_and(|u| !u.is_empty()) {
                // An existing object nobody tracks: keep not tracking it.
                set_managed_fields(obj, &managed);
                return Ok(());
            }
        }
        // The stored object without its managedFields (copied only when it has them).
        let stripped;
        let live = if metadata(live).is_some_and(|m| m.contains_key("managedFields")) {
            stripped = without_managed_fields(live);
            &stripped
        } else {
            live
        };
        self.inner_update(live, obj, &mut managed, manager, now)
            .map_err(|e| internal(format!("failed to update ManagedFields: {e}")))?;
        set_managed_fields(obj, &managed);
        Ok(())
    }

    /// `update`, but on failure `new` keeps the stored object's managedFields (upstream
    /// `UpdateNoErrors`).
    pub fn update_no_errors(
        &self,
        old: Option<&Value>,
        new: &Value,
        manager: &str,
        now: Timestamp,
    ) -> Value {
        let mut out = new.clone();
        self.update_no_errors_in_place(old, &mut out, manager, now);
        out
    }

    /// `update_no_errors` on an object the caller owns, updated in place.
    pub fn update_no_errors_in_place(
        &self,
        old: Option<&Value>,
        obj: &mut Value,
        manager: &str,
        now: Timestamp,
    ) {
        if self.update_in_place(old, obj, manager, now).is_err() {
            let previous = old
                .and_then(metadata)
                .and_then(|m| m.get("managedFields"))
                .cloned();
            if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.remove("managedFields");
                if let Some(prev) = previous {
                    meta.insert("managedFields".into(), prev);
                }
            }
        }
    }

    /// The managedFields of a create that sent none, as `update_no_errors(None, new, ..)`
    /// records them, without the general bookkeeping (manager identifiers, unions with previous
    /// owners, the wire form as JSON). `new` must have no `metadata.managedFields`. `None` when
    /// no field is owned, or when the object does not fit the schema (where `UpdateNoErrors`
    /// records nothing on a create either).
    pub fn create_entries(
        &self,
        new: &Value,
        manager: &str,
        now: Timestamp,
    ) -> Option<Vec<ManagedFieldsEntry>> {
        metadata(new)?;
        let set = self
            .updater()
            .created_fields(new)
            .ok()?
            .difference(strip_set());
        if set.is_empty() {
            return None;
        }
        let manager = if manager.is_empty() {
            "unknown"
        } else {
            manager
        };
        let time = Timestamp::from_second(now.as_second()).unwrap_or(now);
        Some(vec![ManagedFieldsEntry {
            api_version: Some(self.api_version.clone()),
            fields_type: Some("FieldsV1".into()),
            fields_v1: Some(FieldsV1(set_to_fields(&set))),
            manager: Some(manager.to_string()),
            operation: Some(UPDATE.to_string()),
            subresource: (!self.subresource.is_empty()).then(|| self.subresource.clone()),
            time: Some(Time(time)),
        }])
    }

    /// The managed fields to start from: the request's own (unless through a subresource),
    /// an explicit reset, else the stored object's. `None` when the object has no metadata.
    fn decode_live_or_new(&self, live: &Value, new: &Value) -> Option<Managed> {
        let from_live = || {
            managed::decode(metadata(live).and_then(|m| m.get("managedFields"))).unwrap_or_default()
        };
        if !self.subresource.is_empty() {
            return Some(from_live());
        }
        let new_meta = metadata(new)?;
        let requested = new_meta.get("managedFields");
        if is_reset(requested) {
            return Some(Managed::default());
        }
        match managed::decode(requested) {
            Ok(m) if !m.fields.is_empty() => Some(m),
            _ => Some(from_live()),
        }
    }
}

/// A non-nil empty list, or a list of one empty entry, asks to reset managedFields.
fn is_reset(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Array(list)) => match list.as_slice() {
            [] => true,
            [only] => only.as_object().is_some_and(Map::is_empty),
            _ => false,
        },
        _ => false,
    }
}

/// `namespace/name; apps/v1, Kind=Deployment`, as upstream names objects in errors.
fn object_gvknn(obj: &Value) -> String {
    let meta = metadata(obj);
    let get = |k: &str| {
        meta.and_then(|m| m.get(k))
            .and_then(Value::as_str)
            .unwrap_or("")
    };
    let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    format!(
        "{}/{}; {}",
        get("namespace"),
        get("name"),
        gvk_string(api_version, kind)
    )
}

/// `schema.GroupVersionKind.String()`: `apps/v1, Kind=Deployment` (`/v1, Kind=Pod` for core).
fn gvk_string(api_version: &str, kind: &str) -> String {
    let (group, version) = match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    };
    format!("{group}/{version}, Kind={kind}")
}
