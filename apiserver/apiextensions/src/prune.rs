//! Pruning of unknown fields, defaulting, and dropping of non-nullable nulls on custom resources
//! (mirrors apiextensions-apiserver pkg/apiserver/schema/pruning/algorithm.go,
//! defaulting/{algorithm,prunenulls}.go and the unknown-field tracking of objectmeta/coerce.go).

use crate::structural::Structural;
use serde_json::{Map, Value};

const META_FIELDS: [&str; 3] = ["apiVersion", "kind", "metadata"];

/// The fields of `metav1.ObjectMeta` kept in `metadata` of a resource (root or embedded).
pub const OBJECT_META_FIELDS: &[&str] = &[
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
];

struct Tracker {
    path: Vec<String>,
    unknown: Vec<String>,
}

impl Tracker {
    fn joined(&self, extra: &str) -> String {
        let mut s = String::new();
        for seg in &self.path {
            if !s.is_empty() && !seg.starts_with('[') {
                s.push('.');
            }
            s.push_str(seg);
        }
        if !extra.is_empty() {
            if !s.is_empty() {
                s.push('.');
            }
            s.push_str(extra);
        }
        s
    }
    fn record(&mut self, k: &str) {
        let p = self.joined(k);
        self.unknown.push(p);
    }
}

impl Structural {
    /// Prunes fields the schema does not specify from a whole custom resource (the root is a
    /// resource: `apiVersion`, `kind` and `metadata` stay; unknown `metadata` fields go). Returns
    /// the sorted pruned paths (`spec.foo`, `spec.items[0].bar`, `metadata.foo`).
    pub fn prune(&self, obj: &mut Value) -> Vec<String> {
        let mut t = Tracker {
            path: Vec::new(),
            unknown: Vec::new(),
        };
        let mut root = self.clone();
        root.embedded_resource = true;
        prune(obj, Some(&root), &mut t);
        t.unknown.sort();
        t.unknown
    }

    /// Prunes a value that is not a resource root (e.g. a default value or a status object).
    pub fn prune_value(&self, v: &mut Value) -> Vec<String> {
        let mut t = Tracker {
            path: Vec::new(),
            unknown: Vec::new(),
        };
        prune(v, Some(self), &mut t);
        t.unknown.sort();
        t.unknown
    }

    /// Applies `default`s (upstream `structuraldefaulting.Default`): missing properties and
    /// non-nullable nulls get their schema's default, recursively. Run after pruning.
    pub fn apply_defaults(&self, v: &mut Value) {
        default(v, self)
    }

    /// Drops nulls of non-nullable fields without default (upstream
    /// `PruneNonNullableNullsWithoutDefaults`), done before defaulting on decode.
    pub fn prune_non_nullable_nulls(&self, v: &mut Value) {
        prune_nulls(v, Some(self))
    }
}

fn prune_meta(m: &mut Map<String, Value>, t: &mut Tracker) {
    let unknown: Vec<String> = m
        .keys()
        .filter(|k| !OBJECT_META_FIELDS.contains(&k.as_str()))
        .cloned()
        .collect();
    for k in unknown {
        t.path.push("metadata".into());
        t.record(&k);
        t.path.pop();
        m.remove(&k);
    }
}

fn prune(x: &mut Value, s: Option<&Structural>, t: &mut Tracker) {
    if let Some(s) = s
        && s.preserve_unknown_fields
    {
        skip_prune(x, s, t);
        return;
    }
    match x {
        Value::Object(m) => {
            let Some(s) = s else {
                let keys: Vec<String> = m.keys().cloned().collect();
                for k in keys {
                    t.record(&k);
                }
                m.clear();
                return;
            };
            let keys: Vec<String> = m.keys().cloned().collect();
            for k in keys {
                if s.embedded_resource && META_FIELDS.contains(&k.as_str()) {
                    if k == "metadata"
                        && let Some(Value::Object(meta)) = m.get_mut("metadata")
                    {
                        prune_meta(meta, t);
                    }
                    continue;
                }
                let child = s.properties.get(&k).or(s.additional_schema());
                let allowed = s.properties.contains_key(&k) || s.additional_properties.is_some();
                if allowed {
                    t.path.push(k.clone());
                    if let Some(v) = m.get_mut(&k) {
                        prune(v, child, t);
                    }
                    t.path.pop();
                } else {
                    if !META_FIELDS.contains(&k.as_str()) || !t.path.is_empty() {
                        t.record(&k);
                    }
                    m.remove(&k);
                }
            }
        }
        Value::Array(a) => {
            let items = s.and_then(|s| s.items.as_deref());
            for (i, v) in a.iter_mut().enumerate() {
                t.path.push(format!("[{i}]"));
                prune(v, items, t);
                t.path.pop();
            }
        }
        _ => {}
    }
}

fn skip_prune(x: &mut Value, s: &Structural, t: &mut Tracker) {
    match x {
        Value::Object(m) => {
            for (k, v) in m.iter_mut() {
                if s.embedded_resource && META_FIELDS.contains(&k.as_str()) {
                    if k == "metadata"
                        && let Value::Object(meta) = v
                    {
                        prune_meta(meta, t);
                    }
                    continue;
                }
                if s.properties.contains_key(k) || s.additional_properties.is_some() {
                    t.path.push(k.clone());
                    prune(v, s.field(k), t);
                    t.path.pop();
                }
            }
        }
        Value::Array(a) => {
            if let Some(items) = s.items.as_deref() {
                for (i, v) in a.iter_mut().enumerate() {
                    t.path.push(format!("[{i}]"));
                    skip_prune(v, items, t);
                    t.path.pop();
                }
            }
        }
        _ => {}
    }
}

fn non_nullable_null(x: &Value, s: Option<&Structural>) -> bool {
    x.is_null() && s.is_some_and(|s| !s.nullable)
}

fn default(x: &mut Value, s: &Structural) {
    match x {
        Value::Object(m) => {
            for (k, prop) in &s.properties {
                let Some(d) = &prop.default else { continue };
                let missing = match m.get(k) {
                    None => true,
                    Some(v) => non_nullable_null(v, Some(prop)),
                };
                if missing {
                    m.insert(k.clone(), d.clone());
                }
            }
            let ap = s.additional_schema();
            for (k, v) in m.iter_mut() {
                if let Some(prop) = s.properties.get(k) {
                    default(v, prop);
                } else if let Some(ap) = ap {
                    if non_nullable_null(v, Some(ap))
                        && let Some(d) = &ap.default
                    {
                        *v = d.clone();
                    }
                    default(v, ap);
                }
            }
        }
        Value::Array(a) => {
            if let Some(items) = s.items.as_deref() {
                for v in a.iter_mut() {
                    if non_nullable_null(v, Some(items))
                        && let Some(d) = &items.default
                    {
                        *v = d.clone();
                    }
                    default(v, items);
                }
            }
        }
        _ => {}
    }
}

fn prune_nulls(x: &mut Value, s: Option<&Structural>) {
    match x {
        Value::Object(m) => {
            let keys: Vec<String> = m.keys().cloned().collect();
            for k in keys {
                let fs = s.and_then(|s| s.field(&k));
                let drop = m.get(&k).is_some_and(|v| {
                    v.is_null() && fs.is_some_and(|f| !f.nullable && f.default.is_none())
                });
                if drop {
                    m.remove(&k);
                } else if let Some(v) = m.get_mut(&k) {
                    prune_nulls(v, fs);
                }
            }
        }
        Value::Array(a) => {
            let items = s.and_then(|s| s.items.as_deref());
            for v in a.iter_mut() {
                prune_nulls(v, items);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Structural {
        Structural::from_json(&json!({"type": "object", "properties": {
            "spec": {"type": "object", "properties": {
                "replicas": {"type": "integer", "default": 1},
                "mode": {"type": "string", "default": "a"},
                "nested": {"type": "object", "default": {}, "properties": {
                    "x": {"type": "string", "default": "dx"}}},
                "items": {"type": "array", "items": {"type": "object", "properties": {
                    "name": {"type": "string"}, "port": {"type": "integer", "default": 80}}}},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true,
                    "properties": {"typed": {"type": "object", "properties": {"a": {"type": "string"}}}}},
                "template": {"type": "object", "x-kubernetes-embedded-resource": true,
                    "x-kubernetes-preserve-unknown-fields": true},
                "opt": {"type": "string"},
            }},
        }}))
        .unwrap()
    }

    #[test]
    fn prunes_unknown_fields_and_reports_paths() {
        let mut obj = json!({"apiVersion": "x/v1", "kind": "K",
            "metadata": {"name": "n", "bogus": 1},
            "spec": {"replicas": 2, "foo": 1, "items": [{"name": "a", "extra": true}],
                "free": {"anything": 1, "typed": {"a": "x", "b": "y"}},
                "template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "junk": 1}, "spec": {}}},
            "status": {"x": 1}});
        let pruned = schema().prune(&mut obj);
        assert_eq!(
            pruned,
            vec![
                "metadata.bogus",
                "spec.foo",
                "spec.free.typed.b",
                "spec.items[0].extra",
                "spec.template.metadata.junk",
                "status",
            ]
        );
        assert_eq!(obj["spec"]["free"]["anything"], json!(1));
        assert_eq!(obj["metadata"], json!({"name": "n"}));
        assert_eq!(obj["spec"]["template"]["spec"], json!({}));
    }

    #[test]
    fn defaults_after_pruning() {
        let s = schema();
        let mut obj = json!({"spec": {"mode": null, "opt": null, "items": [{"name": "a"}]}});
        s.prune_non_nullable_nulls(&mut obj);
        s.apply_defaults(&mut obj);
        assert_eq!(
            obj["spec"],
            json!({"mode": "a", "items": [{"name": "a", "port": 80}], "replicas": 1,
                "nested": {"x": "dx"}})
        );
    }
}
