//! `metadata.managedFields` on the wire and in memory (mirrors
//! k8s.io/apimachinery/pkg/util/managedfields/internal/managedfields.go, conflict.go and
//! capmanagers.go): manager identifiers, decoding and validation of entries, encoding sorted as
//! upstream sorts them, the cap on Update entries, and the 409 Status of apply conflicts.

use std::collections::BTreeMap;

use apiserver_apimachinery::{ApiError, Reason};
use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::StatusCause;
use serde_json::{Map, Value};

use crate::fieldsv1::{fields_to_set, set_to_fields};
use crate::updater::{Conflict, ManagedFields, VersionedSet};
use crate::value::write_go_string;

pub const APPLY: &str = "Apply";
pub const UPDATE: &str = "Update";

/// Owned fields per manager identifier, and the time of each manager's last change.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Managed {
    pub fields: ManagedFields,
    pub times: BTreeMap<String, Option<Timestamp>>,
}

/// The identifier of a manager: the JSON of its entry without time, fields and (for appliers)
/// apiVersion, as upstream's `BuildManagerIdentifier` writes it.
pub fn manager_identifier(
    manager: &str,
    operation: &str,
    api_version: &str,
    subresource: &str,
) -> String {
    let mut out = String::from("{");
    let mut first = true;
    let mut field = |out: &mut String, name: &str, value: &str| {
        if value.is_empty() {
            return;
        }
        if !first {
            out.push(',');
        }
        first = false;
        write_go_string(out, name);
        out.push(':');
        write_go_string(out, value);
    };
    field(&mut out, "manager", manager);
    field(&mut out, "operation", operation);
    if operation != APPLY {
        field(&mut out, "apiVersion", api_version);
    }
    field(&mut out, "subresource", subresource);
    out.push('}');
    out
}

fn id_field<'a>(id: &'a Value, name: &str) -> &'a str {
    id.get(name).and_then(Value::as_str).unwrap_or("")
}

/// RFC 3339 with whole seconds, as metav1.Time renders.
pub fn format_time(t: Timestamp) -> String {
    Timestamp::from_second(t.as_second())
        .unwrap_or(t)
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Decodes `metadata.managedFields` (absent or null: none).
pub fn decode(entries: Option<&Value>) -> Result<Managed, String> {
    let mut managed = Managed::default();
    let list = match entries {
        None | Some(Value::Null) => return Ok(managed),
        Some(Value::Array(list)) => list,
        Some(_) => return Err("managedFields must be a list".to_string()),
    };
    for (i, entry) in list.iter().enumerate() {
        let get = |k: &str| entry.get(k).and_then(Value::as_str).unwrap_or("");
        let operation = get("operation");
        if operation != APPLY && operation != UPDATE {
            return Err("operation must be `Apply` or `Update`".to_string());
        }
        let api_version = get("apiVersion");
        if api_version.is_empty() {
            return Err("apiVersion must not be empty".to_string());
        }
        match get("fieldsType") {
            "FieldsV1" => {}
            "" => return Err(format!("missing fieldsType in managed fields entry {i}")),
            other => {
                return Err(format!(
                    "invalid fieldsType {other:?} in managed fields entry {i}"
                ));
            }
        }
        let id = manager_identifier(get("manager"), operation, api_version, get("subresource"));
        let empty = Value::Object(Map::new());
        let set = fields_to_set(entry.get("fieldsV1").unwrap_or(&empty))
            .map_err(|e| format!("error decoding versioned set from entry {i}: {e}"))?;
        let time = match entry.get("time").and_then(Value::as_str) {
            Some(s) => Some(
                s.parse::<Timestamp>()
                    .map_err(|e| format!("invalid time {s:?} in managed fields entry {i}: {e}"))?,
            ),
            None => None,
        };
        managed.fields.insert(
            id.clone(),
            VersionedSet {
                set,
                api_version: api_version.to_string(),
                applied: operation == APPLY,
            },
        );
        managed.times.insert(id, time);
    }
    Ok(managed)
}

/// The wire entries, sorted as upstream sorts them (operation, time, manager, apiVersion,
/// subresource); `None` when there are none (the field is then left out).
pub fn encode(managed: &Managed) -> Option<Value> {
    if managed.fields.is_empty() {
        return None;
    }
    let mut entries: Vec<(String, i64, String, String, String, Value)> = Vec::new();
    for (id, vs) in &managed.fields {
        let parsed: Value = serde_json::from_str(id).unwrap_or(Value::Null);
        let manager = id_field(&parsed, "manager").to_string();
        let subresource = id_field(&parsed, "subresource").to_string();
        let operation = if vs.applied {
            APPLY.to_string()
        } else {
            id_field(&parsed, "operation").to_string()
        };
        let time = managed.times.get(id).copied().flatten();
        let mut e = Map::new();
        if !manager.is_empty() {
            e.insert("manager".into(), Value::String(manager.clone()));
        }
        if !operation.is_empty() {
            e.insert("operation".into(), Value::String(operation.clone()));
        }
        e.insert("apiVersion".into(), Value::String(vs.api_version.clone()));
        if let Some(t) = time {
            e.insert("time".into(), Value::String(format_time(t)));
        }
        e.insert("fieldsType".into(), Value::String("FieldsV1".into()));
        e.insert("fieldsV1".into(), set_to_fields(&vs.set));
        if !subresource.is_empty() {
            e.insert("subresource".into(), Value::String(subresource.clone()));
        }
        let secs = time.map_or(0, |t| t.as_second());
        entries.push((
            operation,
            secs,
            manager,
            vs.api_version.clone(),
            subresource,
            Value::Object(e),
        ));
    }
    entries.sort_by(|a, b| (&a.0, a.1, &a.2, &a.3, &a.4).cmp(&(&b.0, b.1, &b.2, &b.3, &b.4)));
    Some(Value::Array(entries.into_iter().map(|e| e.5).collect()))
}

/// Merges the oldest Update entries into `ancient-changes` buckets (one per API version) until
/// at most `max` Update entries remain (upstream `capUpdateManagers`).
pub fn cap_update_managers(managed: &mut Managed, max: usize) {
    let mut updaters: Vec<String> = managed
        .fields
        .iter()
        .filter(|(_, vs)| !vs.applied)
        .map(|(id, _)| id.clone())
        .collect();
    if updaters.len() <= max {
        return;
    }
    let secs = |m: &Managed, id: &str| {
        m.times
            .get(id)
            .copied()
            .flatten()
            .map_or(0, |t| t.as_second())
    };
    updaters.sort_by(|a, b| (secs(managed, a), a).cmp(&(secs(managed, b), b)));
    let mut first_of_version: BTreeMap<String, String> = BTreeMap::new();
    let mut length = updaters.len();
    for id in updaters {
        if length <= max {
            break;
        }
        let Some(vs) = managed.fields.get(&id).cloned() else {
            continue;
        };
        let time = managed.times.get(&id).copied().flatten();
        let bucket = manager_identifier("ancient-changes", UPDATE, &vs.api_version, "");
        match first_of_version.get(&vs.api_version) {
            Some(first) => {
                if !managed.fields.contains_key(&bucket)
                    && let Some(s) = managed.fields.remove(first)
                {
                    managed.fields.insert(bucket.clone(), s);
                }
                let merged = match managed.fields.get(&bucket) {
                    Some(b) => vs.set.union(&b.set),
                    None => vs.set.clone(),
                };
                managed.fields.insert(
                    bucket.clone(),
                    VersionedSet {
                        set: merged,
                        api_version: vs.api_version.clone(),
                        applied: vs.applied,
                    },
                );
                managed.fields.remove(&id);
                length -= 1;
                managed.times.insert(bucket, time);
            }
            None => {
                first_of_version.insert(vs.api_version.clone(), id);
            }
        }
    }
}

/// How a manager is named in conflict messages (upstream `printManager`).
pub fn print_manager(id: &str) -> String {
    let Ok(parsed) = serde_json::from_str::<Value>(id) else {
        return format!("{id:?}");
    };
    let mut s = format!("{:?}", id_field(&parsed, "manager"));
    let sub = id_field(&parsed, "subresource");
    if !sub.is_empty() {
        s = format!("{s} with subresource {sub:?}");
    }
    if id_field(&parsed, "operation") == UPDATE {
        s = format!("{s} using {}", id_field(&parsed, "apiVersion"));
    }
    s
}

/// The 409 Status of apply conflicts (upstream `NewConflictError`).
pub fn conflict_error(conflicts: &[Conflict]) -> ApiError {
    let causes = conflicts
        .iter()
        .map(|c| StatusCause {
            reason: Some("FieldManagerConflict".to_string()),
            message: Some(format!("conflict with {}", print_manager(&c.manager))),
            field: Some(c.path.to_string()),
        })
        .collect();
    let message = if let [only] = conflicts {
        format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            print_manager(&only.manager),
            only.path
        )
    } else {
        let mut by_manager: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for c in conflicts {
            by_manager
                .entry(c.manager.as_str())
                .or_default()
                .push(c.path.to_string());
        }
        let mut lines = Vec::new();
        for (manager, paths) in by_manager {
            lines.push(format!("conflicts with {}:", print_manager(manager)));
            lines.extend(paths.into_iter().map(|p| format!("- {p}")));
        }
        format!(
            "Apply failed with {} conflicts: {}",
            conflicts.len(),
            lines.join("\n")
        )
    };
    let mut err = ApiError::new(Reason::Conflict, message);
    err.causes = causes;
    err
}
