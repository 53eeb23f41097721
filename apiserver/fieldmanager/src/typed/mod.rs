//! Operations on a JSON value under a schema type (mirrors structured-merge-diff typed/:
//! helpers.go, tofieldset.go, remove.go and fieldpath.Set.EnsureNamedFieldsAreMembers): the path
//! element of a list item, the field set of a value, removal of a set's items from a value.
//! Comparison and merging live in `compare` and `merge`.

mod compare;
mod merge;
mod validate;

use serde_json::{Map, Value};

use crate::path::PathElement;
use crate::schema::{Handling, ListKind, ListType, Schema, TypeRef, undeclared_field_type};
use crate::set::Set;

pub use compare::{Comparison, compare};
pub use merge::merge;
pub use validate::{format_errors, validate};

/// Renders an error at a path like upstream's validation errors (`.spec.x: message`).
pub(crate) fn error_at(path: &[PathElement], msg: impl std::fmt::Display) -> String {
    if path.is_empty() {
        return msg.to_string();
    }
    let p: String = path.iter().map(|pe| pe.to_string()).collect();
    format!("{p}: {msg}")
}

/// The type of the value under `key` of a map type.
pub(crate) fn map_item_type<'a>(m: &'a crate::schema::MapType, key: &str) -> &'a TypeRef {
    m.type_of(key).unwrap_or(undeclared_field_type())
}

/// The path element naming `item` in an associative list.
pub fn list_item_element(
    schema: &Schema,
    list: &ListType,
    item: &Value,
) -> Result<PathElement, String> {
    match &list.kind {
        ListKind::Atomic => Err("invalid indexing of non-associative list".to_string()),
        ListKind::Set => match item {
            Value::Object(_) => {
                Err("associative list without keys has an element that's a map type".into())
            }
            Value::Array(_) => Err("not supported: associative list with lists as elements".into()),
            Value::Null => {
                Err("associative list without keys has an element that's an explicit null".into())
            }
            v => Ok(PathElement::Value(v.clone())),
        },
        ListKind::Map(keys) => {
            let obj = match item {
                Value::Object(o) => o,
                Value::Null => {
                    return Err("associative list with keys may not have a null element".into());
                }
                _ => return Err("associative list with keys may not have non-map elements".into()),
            };
            let element_fields = schema
                .resolve(&list.element)
                .and_then(|(a, _)| a.map.as_ref());
            let mut fields = Vec::with_capacity(keys.len());
            for k in keys {
                if let Some(v) = obj.get(k) {
                    fields.push((k.clone(), v.clone()));
                } else if let Some(d) = element_fields
                    .and_then(|m| m.fields.get(k))
                    .and_then(|f| f.default.clone())
                {
                    fields.push((k.clone(), d));
                }
            }
            if !keys.is_empty() && fields.is_empty() {
                return Err(format!(
                    "associative list with keys has an element that omits all key fields {} (and doesn't have default values for any key fields)",
                    go_string_list(keys)
                ));
            }
            Ok(PathElement::key(fields))
        }
    }
}

/// Go's `%q` of a `[]string`: `["a" "b"]`.
fn go_string_list(keys: &[String]) -> String {
    let quoted: Vec<String> = keys.iter().map(|k| format!("{k:?}")).collect();
    format!("[{}]", quoted.join(" "))
}

/// The set of fields `value` sets (upstream `TypedValue.ToFieldSet`): scalars and atomic
/// lists/maps are members; list items and map entries (not struct fields) are members with
/// their children; struct fields holding null or `{}` are members.
pub fn to_field_set(schema: &Schema, tr: &TypeRef, value: &Value) -> Result<Set, String> {
    let mut set = Set::new();
    let mut path = Vec::new();
    field_set_walk(schema, tr, value, &mut path, &mut set)?;
    Ok(set)
}

fn field_set_walk(
    schema: &Schema,
    tr: &TypeRef,
    value: &Value,
    path: &mut Vec<PathElement>,
    set: &mut Set,
) -> Result<(), String> {
    let handling = schema
        .handling(tr, Some(value))
        .ok_or_else(|| error_at(path, "schema error: no type found matching"))?;
    match handling {
        Handling::Scalar => set.insert(path),
        Handling::List(list) => {
            if list.kind == ListKind::Atomic {
                set.insert(path);
                return Ok(());
            }
            let Value::Array(items) = value else {
                return Ok(());
            };
            let mut pes = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let pe = list_item_element(schema, list, item)
                    .map_err(|e| error_at(path, format!("element {i}: {e}")))?;
                pes.push(pe);
            }
            let mut counts: std::collections::BTreeMap<&PathElement, usize> = Default::default();
            for pe in &pes {
                *counts.entry(pe).or_default() += 1;
            }
            for (pe, item) in pes.iter().zip(items) {
                path.push(pe.clone());
                if counts.get(pe).copied().unwrap_or(0) < 2 {
                    field_set_walk(schema, &list.element, item, path, set)?;
                }
                // A duplicated key is owned as one atomic element.
                set.insert(path);
                path.pop();
            }
        }
        Handling::Map(map, atomic) => {
            if atomic {
                set.insert(path);
                return Ok(());
            }
            let Value::Object(obj) = value else {
                return Ok(());
            };
            for (key, val) in obj {
                path.push(PathElement::Field(key.clone()));
                field_set_walk(schema, map_item_type(map, key), val, path, set)?;
                let empty = val.is_null() || val.as_object().is_some_and(Map::is_empty);
                if empty || !map.fields.contains_key(key) {
                    set.insert(path);
                }
                path.pop();
            }
        }
    }
    Ok(())
}

/// `value` without the items of `to_remove` (upstream `TypedValue.RemoveItems`); `None` when
/// nothing of it is left (the caller drops the field).
pub fn remove_items(
    schema: &Schema,
    tr: &TypeRef,
    value: &Value,
    to_remove: &Set,
) -> Option<Value> {
    match schema.handling(tr, Some(value)) {
        None | Some(Handling::Scalar) => Some(value.clone()),
        Some(Handling::List(list)) => {
            let Value::Array(items) = value else {
                return Some(value.clone());
            };
            if items.is_empty() || list.kind == ListKind::Atomic {
                return Some(value.clone());
            }
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                let Ok(pe) = list_item_element(schema, list, item) else {
                    out.push(item.clone());
                    continue;
                };
                if to_remove.has(std::slice::from_ref(&pe)) {
                    continue;
                }
                match to_remove.with_prefix(&pe) {
                    Some(sub) => {
                        if let Some(v) = remove_items(schema, &list.element, item, sub) {
                            out.push(v);
                        }
                    }
                    None => out.push(item.clone()),
                }
            }
            (!out.is_empty()).then_some(Value::Array(out))
        }
        Some(Handling::Map(map, atomic)) => {
            let Value::Object(obj) = value else {
                return Some(value.clone());
            };
            if obj.is_empty() || atomic {
                return Some(value.clone());
            }
            let mut out = Map::new();
            for (key, val) in obj {
                let pe = PathElement::Field(key.clone());
                if to_remove.has(std::slice::from_ref(&pe)) {
                    continue;
                }
                match to_remove.with_prefix(&pe) {
                    Some(sub) => {
                        if let Some(v) = remove_items(schema, map_item_type(map, key), val, sub) {
                            out.insert(key.clone(), v);
                        }
                    }
                    None => {
                        out.insert(key.clone(), val.clone());
                    }
                }
            }
            (!out.is_empty()).then_some(Value::Object(out))
        }
    }
}

/// The set plus every struct field (declared in the schema) that has children in it
/// (upstream `Set.EnsureNamedFieldsAreMembers`), so removing the set removes those fields.
pub fn ensure_named_fields_are_members(schema: &Schema, tr: Option<&TypeRef>, set: &Set) -> Set {
    let atom = tr.and_then(|t| schema.resolve(t)).map(|(a, _)| a);
    let map = atom.and_then(|a| a.map.as_ref());
    let list = atom.and_then(|a| a.list.as_ref());
    let mut out = Set {
        members: set.members.clone(),
        children: Default::default(),
    };
    for (pe, child) in &set.children {
        let child_type = match pe {
            PathElement::Field(name) => {
                if map.is_some_and(|m| m.fields.contains_key(name)) {
                    out.members.insert(pe.clone());
                }
                map.and_then(|m| m.type_of(name))
            }
            PathElement::Key(_) => list.map(|l| &l.element),
            _ => None,
        };
        out.children.insert(
            pe.clone(),
            ensure_named_fields_are_members(schema, child_type, child),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fieldsv1::set_to_fields;
    use crate::schema::builtin_schema;
    use serde_json::json;

    fn pod_spec() -> TypeRef {
        TypeRef::named("io.k8s.api.core.v1.PodSpec")
    }

    #[test]
    fn merge_keeps_live_order_and_appends_new_items() {
        let s = builtin_schema();
        let live =
            json!({"containers": [{"name": "a", "image": "1"}, {"name": "b"}, {"name": "c"}]});
        let applied = json!({"containers": [{"name": "c", "image": "3"}, {"name": "d"}, {"name": "a", "image": "2"}]});
        let merged = merge(s, &pod_spec(), &live, &applied).unwrap();
        let names: Vec<&str> = merged["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["b", "c", "d", "a"]);
        assert_eq!(merged["containers"][3]["image"], "2");
        // Atomic lists and atomic maps are replaced; granular maps merged.
        let live = json!({"tolerations": [{"key": "x"}], "nodeSelector": {"a": "1"}, "overhead": {"cpu": "1"}});
        let applied = json!({"tolerations": [{"key": "y"}], "nodeSelector": {"b": "2"}, "overhead": {"memory": "1"}});
        let merged = merge(s, &pod_spec(), &live, &applied).unwrap();
        assert_eq!(merged["tolerations"], json!([{"key": "y"}]));
        assert_eq!(merged["nodeSelector"], json!({"b": "2"}));
        assert_eq!(merged["overhead"], json!({"cpu": "1", "memory": "1"}));
    }

    #[test]
    fn compare_reports_added_modified_removed() {
        let s = builtin_schema();
        let old = json!({"hostname": "h", "containers": [{"name": "a", "image": "1"}], "nodeSelector": {"x": "1"}});
        let new = json!({"containers": [{"name": "a", "image": "2"}, {"name": "b"}], "nodeSelector": {"x": "1"}, "volumes": []});
        let c = compare(s, &pod_spec(), &old, &new).unwrap();
        assert_eq!(set_to_fields(&c.removed), json!({"f:hostname": {}}));
        assert_eq!(
            set_to_fields(&c.modified),
            json!({"f:containers": {"k:{\"name\":\"a\"}": {"f:image": {}}}})
        );
        assert_eq!(
            set_to_fields(&c.added),
            json!({"f:containers": {"k:{\"name\":\"b\"}": {".": {}, "f:name": {}}}, "f:volumes": {}})
        );
        assert!(compare(s, &pod_spec(), &old, &old).unwrap().is_same());
    }

    #[test]
    fn remove_items_drops_members_and_emptied_parents() {
        let s = builtin_schema();
        let v = json!({"containers": [{"name": "a", "image": "1", "args": ["x"]}, {"name": "b"}], "hostname": "h"});
        let mut set = Set::new();
        let a = PathElement::key(vec![("name".into(), json!("a"))]);
        let b = PathElement::key(vec![("name".into(), json!("b"))]);
        set.insert(&[
            PathElement::field("containers"),
            a,
            PathElement::field("args"),
        ]);
        set.insert(&[PathElement::field("containers"), b]);
        set.insert(&[PathElement::field("hostname")]);
        let out = remove_items(s, &pod_spec(), &v, &set).unwrap();
        assert_eq!(out, json!({"containers": [{"name": "a", "image": "1"}]}));
        let fs = to_field_set(s, &pod_spec(), &out).unwrap();
        assert_eq!(
            set_to_fields(&fs),
            json!({"f:containers": {"k:{\"name\":\"a\"}": {".": {}, "f:image": {}, "f:name": {}}}})
        );
    }
}
