//! Lookups on a CRD (served/storage versions, per-version schema, subresources, printer columns,
//! selectable fields) and simple-JSONPath get/set on objects (mirrors apiextensions-apiserver
//! pkg/apihelpers/helpers.go and the scale/selectable-field parts of pkg/registry/customresource).

use serde_json::{Map, Value};

/// `spec.versions[]` of a CRD.
pub fn versions(crd: &Value) -> &[Value] {
    crd.pointer("/spec/versions")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// The version entry named `name`.
pub fn version<'a>(crd: &'a Value, name: &str) -> Option<&'a Value> {
    versions(crd)
        .iter()
        .find(|v| v.get("name").and_then(Value::as_str) == Some(name))
}

/// Names of served versions, in spec order.
pub fn served_versions(crd: &Value) -> Vec<String> {
    versions(crd)
        .iter()
        .filter(|v| v.get("served").and_then(Value::as_bool).unwrap_or(false))
        .filter_map(|v| v.get("name").and_then(Value::as_str).map(str::to_string))
        .collect()
}

/// The storage version's name (`storage: true`).
pub fn storage_version(crd: &Value) -> Option<String> {
    versions(crd)
        .iter()
        .find(|v| v.get("storage").and_then(Value::as_bool).unwrap_or(false))
        .and_then(|v| v.get("name").and_then(Value::as_str).map(str::to_string))
}

/// Kubernetes version-priority order of versions (upstream `SortedByGroupAndVersion`):
/// GA > beta > alpha > other, higher numbers first, non-kube-like names alphabetically last.
pub fn sorted_versions(crd: &Value) -> Vec<String> {
    let mut names: Vec<String> = versions(crd)
        .iter()
        .filter_map(|v| v.get("name").and_then(Value::as_str).map(str::to_string))
        .collect();
    names.sort_by(|a, b| version_key(a).cmp(&version_key(b)).then(a.cmp(b)));
    names
}

/// Orders two version names by Kubernetes version priority (the preferred one first).
pub fn version_order(a: &str, b: &str) -> std::cmp::Ordering {
    version_key(a).cmp(&version_key(b)).then(a.cmp(b))
}

fn version_key(v: &str) -> (u8, i64, i64) {
    let parse = |s: &str| -> Option<(u8, i64, i64)> {
        let rest = s.strip_prefix('v')?;
        let end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let major: i64 = rest[..end].parse().ok()?;
        let tail = &rest[end..];
        if tail.is_empty() {
            return Some((0, -major, 0));
        }
        for (pre, rank) in [("beta", 1u8), ("alpha", 2u8)] {
            if let Some(n) = tail.strip_prefix(pre) {
                let minor: i64 = n.parse().ok()?;
                return Some((rank, -major, -minor));
            }
        }
        None
    };
    parse(v).unwrap_or((3, 0, 0))
}

/// `versions[name].schema.openAPIV3Schema`.
pub fn schema_for_version<'a>(crd: &'a Value, name: &str) -> Option<&'a Value> {
    version(crd, name)?.pointer("/schema/openAPIV3Schema")
}

/// `versions[name].subresources`.
pub fn subresources_for_version<'a>(crd: &'a Value, name: &str) -> Option<&'a Value> {
    version(crd, name)?.get("subresources")
}

/// Whether `version` has the status subresource.
pub fn has_status_subresource(crd: &Value, name: &str) -> bool {
    subresources_for_version(crd, name).is_some_and(|s| s.get("status").is_some())
}

/// The scale subresource paths of a version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScalePaths {
    pub spec_replicas_path: String,
    pub status_replicas_path: String,
    pub label_selector_path: Option<String>,
}

/// `versions[name].subresources.scale`.
pub fn scale_for_version(crd: &Value, name: &str) -> Option<ScalePaths> {
    let s = subresources_for_version(crd, name)?.get("scale")?;
    let get = |k: &str| s.get(k).and_then(Value::as_str).map(str::to_string);
    Some(ScalePaths {
        spec_replicas_path: get("specReplicasPath")?,
        status_replicas_path: get("statusReplicasPath")?,
        label_selector_path: get("labelSelectorPath").filter(|s| !s.is_empty()),
    })
}

/// `selectableFields[].jsonPath` of a version.
pub fn selectable_fields(crd: &Value, name: &str) -> Vec<String> {
    version(crd, name)
        .and_then(|v| v.get("selectableFields"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|f| {
                    f.get("jsonPath")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Field-selector values of an object for a version's selectable fields: the field name is the
/// jsonPath without its leading dot; strings, booleans and integers render as text, absent
/// fields as empty (upstream's `fieldsSet`).
pub fn selectable_field_values(crd: &Value, name: &str, obj: &Value) -> Vec<(String, String)> {
    selectable_fields(crd, name)
        .into_iter()
        .map(|p| {
            let v = match get_path(obj, &p) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Bool(b)) => b.to_string(),
                Some(Value::Number(n)) => n.to_string(),
                _ => String::new(),
            };
            (p.trim_start_matches('.').to_string(), v)
        })
        .collect()
}

/// Reads a simple dotted JSON path (`.spec.replicas`).
pub fn get_path<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = obj;
    for seg in path
        .trim_start_matches('.')
        .split('.')
        .filter(|s| !s.is_empty())
    {
        cur = cur.as_object()?.get(seg)?;
    }
    Some(cur)
}

/// Writes a simple dotted JSON path, creating intermediate objects; fails if a non-object is
/// in the way.
pub fn set_path(obj: &mut Value, path: &str, value: Value) -> Result<(), String> {
    let segs: Vec<&str> = path
        .trim_start_matches('.')
        .split('.')
        .filter(|s| !s.is_empty())
        .collect();
    let Some((last, parents)) = segs.split_last() else {
        *obj = value;
        return Ok(());
    };
    let mut cur = obj;
    for seg in parents {
        if cur.is_null() {
            *cur = Value::Object(Map::new());
        }
        let m = cur
            .as_object_mut()
            .ok_or_else(|| format!("{path}: {seg} is not an object"))?;
        cur = m
            .entry(seg.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    if cur.is_null() {
        *cur = Value::Object(Map::new());
    }
    cur.as_object_mut()
        .ok_or_else(|| format!("{path}: parent of {last} is not an object"))?
        .insert(last.to_string(), value);
    Ok(())
}

/// Prepares a CRD for create as upstream's strategy does: status cleared except for
/// `storedVersions = [storage version]`, generation 1.
pub fn prepare_for_create(crd: &mut Value) {
    let storage = storage_version(crd);
    if let Some(m) = crd.as_object_mut() {
        let mut status = Map::new();
        status.insert("conditions".into(), Value::Array(Vec::new()));
        status.insert(
            "acceptedNames".into(),
            serde_json::json!({"plural": "", "kind": ""}),
        );
        status.insert(
            "storedVersions".into(),
            Value::Array(storage.into_iter().map(Value::from).collect()),
        );
        m.insert("status".into(), Value::Object(status));
        if let Some(meta) = m.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert("generation".into(), Value::from(1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn crd() -> Value {
        json!({"spec": {"versions": [
            {"name": "v1beta1", "served": true, "storage": false},
            {"name": "v1", "served": true, "storage": true,
             "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas",
                "statusReplicasPath": ".status.replicas", "labelSelectorPath": ".status.selector"}},
             "selectableFields": [{"jsonPath": ".spec.color"}, {"jsonPath": ".spec.size"}]},
            {"name": "v2alpha1", "served": false, "storage": false},
            {"name": "foo", "served": true, "storage": false}]}})
    }

    #[test]
    fn version_lookups() {
        let c = crd();
        assert_eq!(served_versions(&c), vec!["v1beta1", "v1", "foo"]);
        assert_eq!(storage_version(&c).as_deref(), Some("v1"));
        assert_eq!(
            sorted_versions(&c),
            vec!["v1", "v1beta1", "v2alpha1", "foo"]
        );
        assert!(has_status_subresource(&c, "v1"));
        assert!(!has_status_subresource(&c, "v1beta1"));
        let s = scale_for_version(&c, "v1").unwrap();
        assert_eq!(s.label_selector_path.as_deref(), Some(".status.selector"));
        let obj = json!({"spec": {"color": "red", "size": 3}});
        assert_eq!(
            selectable_field_values(&c, "v1", &obj),
            vec![
                ("spec.color".to_string(), "red".to_string()),
                ("spec.size".to_string(), "3".to_string())
            ]
        );
    }

    #[test]
    fn path_get_set() {
        let mut o = json!({"spec": {"replicas": 1}});
        assert_eq!(get_path(&o, ".spec.replicas"), Some(&json!(1)));
        set_path(&mut o, ".status.replicas", json!(3)).unwrap();
        assert_eq!(o["status"]["replicas"], json!(3));
        assert!(set_path(&mut o, ".spec.replicas.x", json!(1)).is_err());
        let mut c = json!({"metadata": {"name": "a"}, "spec": {"versions": [{"name": "v1", "storage": true}]},
            "status": {"conditions": [{"type": "X"}]}});
        prepare_for_create(&mut c);
        assert_eq!(c["status"]["storedVersions"], json!(["v1"]));
        assert_eq!(c["status"]["conditions"], json!([]));
    }
}
