//! The `FieldsV1` JSON form of a field set (mirrors structured-merge-diff fieldpath/serialize.go
//! and k8s.io/apimachinery/pkg/util/managedfields/internal/fields.go): one object key per path
//! element, in the set's sorted order; a child that is also a member carries `".": {}` first;
//! a member without children is `{}`.

use serde_json::{Map, Value};

use crate::path::PathElement;
use crate::set::Set;

/// The set as a FieldsV1 JSON object (keys in upstream's order; serde_json keeps it).
pub fn set_to_fields(set: &Set) -> Value {
    Value::Object(emit(set, false))
}

fn emit(set: &Set, include_self: bool) -> Map<String, Value> {
    let mut out = Map::new();
    if include_self && !set.is_empty() {
        out.insert(".".to_string(), Value::Object(Map::new()));
    }
    let mut members = set.members.iter().peekable();
    let mut children = set.children.iter().peekable();
    loop {
        match (members.peek(), children.peek()) {
            (None, None) => break,
            (Some(m), Some((c, child))) if *m == *c => {
                out.insert(c.serialize(), Value::Object(emit(child, true)));
                members.next();
                children.next();
            }
            (Some(m), Some((c, _))) if *m < *c => {
                out.insert(m.serialize(), Value::Object(Map::new()));
                members.next();
            }
            (Some(m), None) => {
                out.insert(m.serialize(), Value::Object(Map::new()));
                members.next();
            }
            (_, Some((c, child))) => {
                out.insert(c.serialize(), Value::Object(emit(child, false)));
                children.next();
            }
        }
    }
    out
}

/// Parses a FieldsV1 JSON object. Keys of unknown element types are skipped, as upstream does.
pub fn fields_to_set(fields: &Value) -> Result<Set, String> {
    let Value::Object(map) = fields else {
        return Err("FieldsV1 must be a JSON object".to_string());
    };
    let (set, _) = read(map)?;
    Ok(set.unwrap_or_default())
}

/// Returns the children set (if any) and whether the node itself is a member.
fn read(map: &Map<String, Value>) -> Result<(Option<Set>, bool), String> {
    let mut is_member = false;
    let mut children: Option<Set> = None;
    for (key, value) in map {
        if key == "." {
            is_member = true;
            continue;
        }
        let pe = match PathElement::deserialize(key) {
            Ok(Some(pe)) => pe,
            Ok(None) => continue,
            Err(e) => return Err(format!("parsing key as path element: {e}")),
        };
        let Value::Object(inner) = value else {
            return Err(format!("expected an object for {key}"));
        };
        let (grandchildren, child_is_member) = read(inner)?;
        if child_is_member {
            children
                .get_or_insert_with(Set::new)
                .members
                .insert(pe.clone());
        }
        if let Some(gc) = grandchildren
            && !gc.is_empty()
        {
            let c = children.get_or_insert_with(Set::new);
            match c.children.get_mut(&pe) {
                Some(existing) => existing.union_in_place(&gc),
                None => {
                    c.children.insert(pe, gc);
                }
            }
        }
    }
    if children.is_none() {
        is_member = true;
    }
    Ok((children, is_member))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn round_trip(fields: Value) {
        let set = fields_to_set(&fields).unwrap();
        let back = set_to_fields(&set);
        assert_eq!(
            serde_json::to_string(&back).unwrap(),
            serde_json::to_string(&fields).unwrap()
        );
    }

    #[test]
    fn round_trips_upstream_managed_fields() {
        // kubectl create deployment (Update) as upstream stores it.
        round_trip(json!({
            "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
            "f:spec": {
                "f:progressDeadlineSeconds": {},
                "f:replicas": {},
                "f:revisionHistoryLimit": {},
                "f:selector": {},
                "f:strategy": {
                    "f:rollingUpdate": {".": {}, "f:maxSurge": {}, "f:maxUnavailable": {}},
                    "f:type": {}
                },
                "f:template": {
                    "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                    "f:spec": {
                        "f:containers": {
                            "k:{\"name\":\"nginx\"}": {
                                ".": {},
                                "f:image": {},
                                "f:imagePullPolicy": {},
                                "f:name": {},
                                "f:ports": {
                                    ".": {},
                                    "k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {
                                        ".": {},
                                        "f:containerPort": {},
                                        "f:protocol": {}
                                    }
                                },
                                "f:resources": {},
                                "f:terminationMessagePath": {},
                                "f:terminationMessagePolicy": {}
                            }
                        },
                        "f:dnsPolicy": {},
                        "f:restartPolicy": {},
                        "f:schedulerName": {},
                        "f:securityContext": {},
                        "f:terminationGracePeriodSeconds": {}
                    }
                }
            }
        }));
        // A set-list (finalizers) and a status subresource entry.
        round_trip(json!({
            "f:metadata": {"f:finalizers": {".": {}, "v:\"kubernetes\"": {}}},
            "f:status": {"f:conditions": {"k:{\"type\":\"Ready\"}": {".": {}, "f:status": {}}}}
        }));
    }

    #[test]
    fn parses_members_and_children() {
        let set =
            fields_to_set(&json!({"f:a": {}, "f:b": {".": {}, "f:c": {}}, "f:d": {"f:e": {}}}))
                .unwrap();
        assert!(set.has(&[PathElement::field("a")]));
        assert!(set.has(&[PathElement::field("b")]));
        assert!(set.has(&[PathElement::field("b"), PathElement::field("c")]));
        assert!(!set.has(&[PathElement::field("d")]));
        assert!(set.has(&[PathElement::field("d"), PathElement::field("e")]));
        assert!(fields_to_set(&json!({"k:notjson": {}})).is_err());
        assert!(fields_to_set(&json!([])).is_err());
        assert_eq!(set_to_fields(&Set::new()), json!({}));
    }
}

#[cfg(test)]
mod raw_tests {
    use super::*;

    #[test]
    fn serializes_byte_for_byte_like_upstream() {
        // From upstream's TestApplyConvertsManagedFieldsVersion.
        let raw = r#"{"f:metadata":{"f:labels":{"f:sidecar_version":{}}},"f:spec":{"f:template":{"f:spec":{"f:containers":{"k:{\"name\":\"sidecar\"}":{".":{},"f:image":{},"f:name":{}}}}}}}"#;
        let set = fields_to_set(&serde_json::from_str(raw).unwrap()).unwrap();
        assert_eq!(serde_json::to_string(&set_to_fields(&set)).unwrap(), raw);
    }
}
