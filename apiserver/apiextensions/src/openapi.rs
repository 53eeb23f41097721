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

const OBJECT_META_DESCRIPTION: &str = "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";
const LIST_META_DESCRIPTION: &str = "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";
const API_VERSION_DESCRIPTION: &str = "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources";
const KIND_DESCRIPTION: &str = "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";

/// Which document a schema is for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Flavor {
    /// Swagger 2.0 (`/openapi/v2`): `#/definitions/` refs, without what v2 cannot express, and
    /// just `type: object` for a root that preserves unknown fields (kubectl's v2 validation
    /// would otherwise refuse every unknown field).
    V2,
    /// OpenAPI 3 (`/openapi/v3`): `#/components/schemas/` refs; a ref with a description is
    /// wrapped in `allOf`, as OpenAPI 3.0 ignores siblings of `$ref`.
    V3,
    /// The OpenAPI 3 content written with Swagger 2.0 refs (a description beside `$ref`), the
    /// form our OpenAPI builder takes and converts to v3 itself.
    V3WithV2Refs,
}

/// A `$ref` to a meta type with a description, in the flavor's form.
fn meta_ref(flavor: Flavor, ty: &str, description: &str) -> Value {
    let target = match flavor {
        Flavor::V3 => format!("#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.{ty}"),
        _ => format!("#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.{ty}"),
    };
    match flavor {
        Flavor::V3 => json!({"allOf": [{"$ref": target}], "description": description}),
        _ => json!({"$ref": target, "description": description}),
    }
}

fn with_refs(schema: &Value, flavor: Flavor, gvk: (&str, &str, &str), list: bool) -> Value {
    let (group, version, kind) = gvk;
    let mut s = schema.as_object().cloned().unwrap_or_default();
    let preserve_root = s
        .get("x-kubernetes-preserve-unknown-fields")
        .and_then(Value::as_bool)
        == Some(true);
    if flavor == Flavor::V2 && preserve_root && !list {
        // Upstream publishes nothing but the type (not even TypeMeta/ObjectMeta) here.
        s = Map::new();
    } else {
        let mut props = s
            .get("properties")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        props.insert(
            "apiVersion".into(),
            json!({"type": "string", "description": API_VERSION_DESCRIPTION}),
        );
        props.insert(
            "kind".into(),
            json!({"type": "string", "description": KIND_DESCRIPTION}),
        );
        let meta = if list {
            meta_ref(flavor, "ListMeta", LIST_META_DESCRIPTION)
        } else {
            meta_ref(flavor, "ObjectMeta", OBJECT_META_DESCRIPTION)
        };
        props.insert("metadata".into(), meta);
        s.insert("properties".into(), Value::Object(props));
        if !list && let Some(Value::Object(ps)) = s.get_mut("properties") {
            for (k, v) in ps.iter_mut() {
                if k != "metadata" {
                    add_embedded_properties(v, flavor);
                }
            }
        }
        if flavor == Flavor::V2 {
            strip_v2(&mut s);
        }
    }
    s.insert("type".into(), Value::from("object"));
    s.insert(
        "x-kubernetes-group-version-kind".into(),
        json!([{"group": group, "version": version, "kind": kind}]),
    );
    Value::Object(s)
}

/// Nodes marked `x-kubernetes-embedded-resource` get apiVersion, kind and metadata properties
/// (required apiVersion and kind), except in v2 where they also preserve unknown fields
/// (upstream's addEmbeddedProperties).
fn add_embedded_properties(v: &mut Value, flavor: Flavor) {
    let Value::Object(s) = v else {
        return;
    };
    for k in ["items", "additionalProperties"] {
        if let Some(child) = s.get_mut(k) {
            add_embedded_properties(child, flavor);
        }
    }
    if let Some(Value::Object(ps)) = s.get_mut("properties") {
        for child in ps.values_mut() {
            add_embedded_properties(child, flavor);
        }
    }
    let flag = |k: &str| s.get(k).and_then(Value::as_bool) == Some(true);
    if flavor == Flavor::V2 && flag("x-kubernetes-preserve-unknown-fields") {
        return;
    }
    if !flag("x-kubernetes-embedded-resource") {
        return;
    }
    let props = s
        .entry("properties")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(ps) = props {
        ps.insert("apiVersion".into(), json!({"type": "string", "description": "apiVersion defines the versioned schema of this representation of an object. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources"}));
        ps.insert("kind".into(), json!({"type": "string", "description": "kind is a string value representing the type of this object. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds"}));
        ps.insert(
            "metadata".into(),
            meta_ref(flavor, "ObjectMeta", OBJECT_META_DESCRIPTION),
        );
    }
    let req = s
        .entry("required")
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Value::Array(req) = req {
        for k in ["kind", "apiVersion"] {
            if !req.iter().any(|r| r == k) {
                req.push(Value::from(k));
            }
        }
    }
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

/// Schemas for `crd`'s `version` (kind and list kind) in `flavor`, keyed by definition name.
pub fn version_schemas(crd: &Value, version: &str, flavor: Flavor) -> Map<String, Value> {
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
    let prefix = match flavor {
        Flavor::V3 => "#/components/schemas/",
        _ => "#/definitions/",
    };
    let schema = crate::helpers::schema_for_version(crd, version)
        .cloned()
        .unwrap_or(json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}));
    let name = definition_name(group, version, kind);
    let mut out = Map::new();
    out.insert(
        name.clone(),
        with_refs(&schema, flavor, (group, version, kind), false),
    );
    let list = json!({"description": format!("{list_kind} is a list of {kind}"), "required": ["items"],
        "properties": {"items": {"type": "array", "description": format!("List of {}. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md", crd.pointer("/spec/names/plural").and_then(Value::as_str).unwrap_or("")),
            "items": {"$ref": format!("{prefix}{name}")}}}});
    out.insert(
        definition_name(group, version, list_kind),
        with_refs(&list, flavor, (group, version, list_kind), true),
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
        let v3 = version_schemas(&crd, "v1", Flavor::V3);
        let k = &v3["com.example.stable.v1.CronTab"];
        assert_eq!(k["x-kubernetes-group-version-kind"][0]["kind"], "CronTab");
        assert_eq!(
            k["properties"]["metadata"]["allOf"][0]["$ref"],
            "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
        );
        assert_eq!(k["properties"]["spec"]["nullable"], true);
        let v2 = version_schemas(&crd, "v1", Flavor::V2);
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

    #[test]
    fn preserve_unknown_root_embedded_resources_and_metadata_descriptions() {
        let crd = json!({"spec": {"group": "g.example.com", "names": {"kind": "K", "listKind": "KList", "plural": "ks"},
            "versions": [{"name": "v1", "schema": {"openAPIV3Schema": {"type": "object",
                "x-kubernetes-preserve-unknown-fields": true,
                "properties": {"spec": {"type": "object", "properties": {
                    "emb": {"type": "object", "x-kubernetes-embedded-resource": true,
                        "x-kubernetes-preserve-unknown-fields": true}}}}}}}]}});
        let v2 = version_schemas(&crd, "v1", Flavor::V2);
        assert_eq!(
            v2["com.example.g.v1.K"],
            json!({"type": "object", "x-kubernetes-group-version-kind": [{"group": "g.example.com", "version": "v1", "kind": "K"}]})
        );
        let c = version_schemas(&crd, "v1", Flavor::V3WithV2Refs);
        let k = &c["com.example.g.v1.K"];
        assert_eq!(
            k["properties"]["metadata"],
            json!({"$ref": "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
                "description": OBJECT_META_DESCRIPTION})
        );
        let emb = &k["properties"]["spec"]["properties"]["emb"];
        assert_eq!(emb["required"], json!(["kind", "apiVersion"]));
        assert_eq!(emb["properties"]["kind"]["type"], "string");
        assert_eq!(
            c["com.example.g.v1.KList"]["properties"]["metadata"]["$ref"],
            "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta"
        );
    }
}
