//! OpenAPI v3 components and v2 definitions for a CRD version, so `kubectl explain` and
//! client-side validation find the kind (mirrors apiextensions-apiserver
//! pkg/controller/openapi/builder, in a reduced form: schemas only, no paths).

use serde_json::{Map, Value, json};

/// `com.example.stable.v1.CronTab` for group `stable.example.com`.
pub fn definition_name(group: &str, version: &str, kind: &str) -> String {
    let mut parts: Vec<&str> = group.split('.').collect();
    parts.reverse();
    format!("{}.{version}.{kind}", parts.join("."))
}

fn with_refs(
    schema: &Value,
    prefix: &str,
    v2: bool,
    group: &str,
    version: &str,
    kind: &str,
    list: bool,
) -> Value {
    let mut s = schema.as_object().cloned().unwrap_or_default();
    let mut props = s
        .get("properties")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    props.insert("apiVersion".into(), json!({"type": "string", "description": "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources"}));
    props.insert("kind".into(), json!({"type": "string", "description": "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds"}));
    let meta = if list { "ListMeta" } else { "ObjectMeta" };
    let meta_ref = json!({"$ref": format!("{prefix}io.k8s.apimachinery.pkg.apis.meta.v1.{meta}")});
    props.insert(
        "metadata".into(),
        if v2 { meta_ref } else { json!({"allOf": [meta_ref], "description": "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"}) },
    );
    s.insert("type".into(), Value::from("object"));
    s.insert("properties".into(), Value::Object(props));
    s.insert(
        "x-kubernetes-group-version-kind".into(),
        json!([{"group": group, "version": version, "kind": kind}]),
    );
    if v2 {
        strip_v2(&mut s);
    }
    Value::Object(s)
}

/// OpenAPI v2 cannot express these; upstream drops them when publishing v2.
fn strip_v2(s: &mut Map<String, Value>) {
    for k in [
        "nullable",
        "oneOf",
        "anyOf",
        "not",
        "x-kubernetes-validations",
    ] {
        s.remove(k);
    }
    for k in ["properties"] {
        if let Some(Value::Object(ps)) = s.get_mut(k) {
            for v in ps.values_mut() {
                if let Value::Object(m) = v {
                    strip_v2(m);
                }
            }
        }
    }
    for k in ["items", "additionalProperties"] {
        if let Some(Value::Object(m)) = s.get_mut(k) {
            strip_v2(m);
        }
    }
}

/// Schemas for `crd`'s `version` (kind and list kind), keyed by definition name. `v2` selects
/// `#/definitions/` refs and the v2 restrictions; otherwise `#/components/schemas/`.
pub fn version_schemas(crd: &Value, version: &str, v2: bool) -> Map<String, Value> {
    let group = crd
        .pointer("/spec/group")
        .and_then(Value::as_str)
        .unwrap_or("");
    let kind = crd
        .pointer("/spec/names/kind")
        .and_then(Value::as_str)
        .unwrap_or("");
    let list_kind = crd
        .pointer("/spec/names/listKind")
        .and_then(Value::as_str)
        .unwrap_or("");
    let prefix = if v2 {
        "#/definitions/"
    } else {
        "#/components/schemas/"
    };
    let schema = crate::helpers::schema_for_version(crd, version)
        .cloned()
        .unwrap_or(json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}));
    let name = definition_name(group, version, kind);
    let mut out = Map::new();
    out.insert(
        name.clone(),
        with_refs(&schema, prefix, v2, group, version, kind, false),
    );
    let list = json!({"description": format!("{list_kind} is a list of {kind}"), "required": ["items"],
        "properties": {"items": {"type": "array", "description": format!("List of {}. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md", crd.pointer("/spec/names/plural").and_then(Value::as_str).unwrap_or("")),
            "items": {"$ref": format!("{prefix}{name}")}}}});
    out.insert(
        definition_name(group, version, list_kind),
        with_refs(&list, prefix, v2, group, version, list_kind, true),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemas_for_a_version() {
        let crd = json!({"spec": {"group": "stable.example.com", "names": {"kind": "CronTab", "listKind": "CronTabList", "plural": "crontabs"},
            "versions": [{"name": "v1", "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                "spec": {"type": "object", "nullable": true, "properties": {"a": {"type": "string"}}}}}}}]}});
        let v3 = version_schemas(&crd, "v1", false);
        let k = &v3["com.example.stable.v1.CronTab"];
        assert_eq!(k["x-kubernetes-group-version-kind"][0]["kind"], "CronTab");
        assert_eq!(
            k["properties"]["metadata"]["allOf"][0]["$ref"],
            "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
        );
        assert_eq!(k["properties"]["spec"]["nullable"], true);
        let v2 = version_schemas(&crd, "v1", true);
        assert!(
            v2["com.example.stable.v1.CronTab"]["properties"]["spec"]
                .get("nullable")
                .is_none()
        );
        assert_eq!(
            v2["com.example.stable.v1.CronTabList"]["properties"]["items"]["items"]["$ref"],
            "#/definitions/com.example.stable.v1.CronTab"
        );
    }
}
