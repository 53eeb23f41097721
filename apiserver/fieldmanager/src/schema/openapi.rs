//! Schemas from OpenAPI v3 JSON (mirrors kube-openapi pkg/schemaconv/openapi.go): a document's
//! `components.schemas` (built-in or aggregated definitions, `$ref`s between them) and a
//! CustomResourceDefinition version's `openAPIV3Schema` (a JSONSchemaProps tree), honouring
//! `x-kubernetes-list-type`, `x-kubernetes-list-map-keys`, `x-kubernetes-map-type`,
//! `x-kubernetes-preserve-unknown-fields` and the patch-strategy fallback for lists.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::builtin::{builtin_schema, list_kind};
use super::{Atom, ListKind, ListType, MapType, Schema, StructField, TypeRef};

const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
const UNTYPED_SCALARS: &[&str] = &[
    "io.k8s.apimachinery.pkg.api.resource.Quantity",
    "io.k8s.apimachinery.pkg.runtime.RawExtension",
];

/// A schema of every definition in an OpenAPI v3 document's `components.schemas` (or of the map
/// itself when `doc` is already that map).
pub fn from_openapi_v3(doc: &Value) -> Result<Schema, String> {
    let schemas = doc
        .pointer("/components/schemas")
        .unwrap_or(doc)
        .as_object()
        .ok_or_else(|| "expected components.schemas to be an object".to_string())?;
    let mut out = Schema::new();
    for (name, spec) in schemas {
        if spec.get("$ref").is_some() {
            continue;
        }
        let atom = if UNTYPED_SCALARS.contains(&name.as_str()) {
            Atom {
                scalar: true,
                ..Atom::default()
            }
        } else {
            parse_schema(spec, false)?
        };
        out.insert(name.clone(), atom);
    }
    Ok(out)
}

/// A schema for one custom resource version: its `openAPIV3Schema` becomes the type named
/// `root`, whose `metadata` is the built-in ObjectMeta and `apiVersion`/`kind` strings (as
/// upstream's CRD OpenAPI builder makes them). `preserve_unknown_fields` is the CRD-level flag
/// (always false for apiextensions/v1).
pub fn crd_schema(
    open_api_v3_schema: &Value,
    root: &str,
    preserve_unknown_fields: bool,
) -> Result<Schema, String> {
    let mut out = Schema::new();
    copy_closure(builtin_schema(), OBJECT_META, &mut out);
    let mut atom = parse_schema(open_api_v3_schema, preserve_unknown_fields)?;
    let map = atom.map.get_or_insert_with(MapType::default);
    map.fields.insert(
        "metadata".into(),
        StructField {
            ty: TypeRef::named(OBJECT_META),
            default: None,
        },
    );
    for f in ["apiVersion", "kind"] {
        map.fields.insert(
            f.into(),
            StructField {
                ty: TypeRef::scalar(),
                default: None,
            },
        );
    }
    out.insert(root, atom);
    Ok(out)
}

/// Copies a named type and every named type it references.
fn copy_closure(from: &Schema, name: &str, to: &mut Schema) {
    if to.contains(name) {
        return;
    }
    let Some(atom) = from.get(name) else {
        return;
    };
    to.insert(name, atom.clone());
    let mut refs = Vec::new();
    collect_refs(atom, &mut refs);
    for r in refs {
        copy_closure(from, &r, to);
    }
}

fn collect_refs(atom: &Atom, out: &mut Vec<String>) {
    let visit = |tr: &TypeRef, out: &mut Vec<String>| match tr {
        TypeRef::Named { name, .. } => out.push(name.clone()),
        TypeRef::Inline(a) => collect_refs(a, out),
    };
    if let Some(l) = &atom.list {
        visit(&l.element, out);
    }
    if let Some(m) = &atom.map {
        for f in m.fields.values() {
            visit(&f.ty, out);
        }
        if let Some(e) = &m.element {
            visit(e, out);
        }
    }
}

fn extension<'a>(m: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    m.get(key)
}

fn schema_type(m: &Map<String, Value>) -> &str {
    match m.get("type") {
        Some(Value::String(s)) => s,
        Some(Value::Array(types)) => types
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or(""),
        _ => "",
    }
}

fn parse_schema(spec: &Value, mut preserve: bool) -> Result<Atom, String> {
    let Some(m) = spec.as_object() else {
        // `true` / `{}`-like schemas accept anything.
        return Ok(untyped_atom());
    };
    if extension(m, "x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true)) {
        preserve = true;
    }
    Ok(match schema_type(m) {
        "" => Atom {
            scalar: true,
            list: Some(parse_list(m, preserve)?),
            map: Some(parse_object(m, preserve)?),
        },
        "object" => Atom {
            map: Some(parse_object(m, preserve)?),
            ..Atom::default()
        },
        "array" => Atom {
            list: Some(parse_list(m, preserve)?),
            ..Atom::default()
        },
        "integer" | "number" | "string" | "boolean" => Atom {
            scalar: true,
            ..Atom::default()
        },
        other => return Err(format!("unrecognized type: '{other}'")),
    })
}

fn untyped_atom() -> Atom {
    Atom {
        scalar: true,
        list: Some(ListType {
            element: TypeRef::atomic(),
            kind: ListKind::Atomic,
        }),
        map: Some(MapType {
            fields: BTreeMap::new(),
            element: Some(TypeRef::deduced()),
            atomic: false,
        }),
    }
}

/// The last segment of `#/components/schemas/<name>` (JSON-pointer unescaped).
fn ref_name(spec: &Map<String, Value>) -> Option<String> {
    let reference = spec.get("$ref").and_then(Value::as_str).or_else(|| {
        match spec
            .get("allOf")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
        {
            Some([only]) => only.get("$ref").and_then(Value::as_str),
            _ => None,
        }
    })?;
    let last = reference.rsplit('/').next()?;
    (!last.is_empty()).then(|| last.replace("~1", "/").replace("~0", "~"))
}

fn map_type_atomic(m: &Map<String, Value>) -> Result<Option<bool>, String> {
    match extension(m, "x-kubernetes-map-type") {
        None => Ok(None),
        Some(Value::String(s)) if s == "atomic" => Ok(Some(true)),
        Some(Value::String(s)) if s == "granular" => Ok(Some(false)),
        Some(other) => Err(format!("unknown map type {other}")),
    }
}

fn make_ref(spec: &Value, preserve: bool) -> Result<TypeRef, String> {
    if let Some(m) = spec.as_object()
        && let Some(name) = ref_name(m)
    {
        if name == "io.k8s.apimachinery.pkg.runtime.RawExtension" {
            return Ok(TypeRef::atomic());
        }
        return Ok(TypeRef::Named {
            name,
            map_atomic: map_type_atomic(m)?,
        });
    }
    Ok(TypeRef::Inline(Box::new(parse_schema(spec, preserve)?)))
}

fn parse_object(m: &Map<String, Value>, preserve: bool) -> Result<MapType, String> {
    let mut fields = BTreeMap::new();
    let props = m.get("properties").and_then(Value::as_object);
    if let Some(props) = props {
        for (name, member) in props {
            fields.insert(
                name.clone(),
                StructField {
                    ty: make_ref(member, preserve)?,
                    default: member.get("default").cloned(),
                },
            );
        }
    }
    let element = match m.get("additionalProperties") {
        None => (preserve || fields.is_empty()).then(TypeRef::deduced),
        Some(Value::Bool(true)) => Some(TypeRef::deduced()),
        Some(Value::Bool(false)) => None,
        Some(schema) => Some(make_ref(schema, preserve)?),
    };
    Ok(MapType {
        fields,
        element,
        atomic: map_type_atomic(m)?.unwrap_or(false),
    })
}

fn parse_list(m: &Map<String, Value>, preserve: bool) -> Result<ListType, String> {
    let list_type = extension(m, "x-kubernetes-list-type").and_then(Value::as_str);
    if let Some(t) = list_type
        && !matches!(t, "atomic" | "set" | "map")
    {
        return Err(format!("unknown list type {t}"));
    }
    let keys: Vec<&str> = extension(m, "x-kubernetes-list-map-keys")
        .and_then(Value::as_array)
        .map(|ks| ks.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if list_type == Some("map") && keys.is_empty() {
        return Err("missing map keys".to_string());
    }
    let kind = list_kind(
        list_type,
        &keys,
        extension(m, "x-kubernetes-patch-strategy").and_then(Value::as_str),
        extension(m, "x-kubernetes-patch-merge-key").and_then(Value::as_str),
    );
    let element = match m.get("items") {
        Some(items) => make_ref(items, preserve)?,
        None => TypeRef::atomic(),
    };
    Ok(ListType { element, kind })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::Handling;
    use serde_json::json;

    #[test]
    fn crd_schema_with_extensions() {
        let s = crd_schema(
            &json!({
                "type": "object",
                "properties": {
                    "spec": {
                        "type": "object",
                        "properties": {
                            "items": {
                                "type": "array",
                                "x-kubernetes-list-type": "map",
                                "x-kubernetes-list-map-keys": ["name"],
                                "items": {"type": "object", "properties": {
                                    "name": {"type": "string"}, "v": {"type": "integer"}}}
                            },
                            "tags": {"type": "array", "items": {"type": "string"}},
                            "sel": {"type": "object", "x-kubernetes-map-type": "atomic",
                                    "additionalProperties": {"type": "string"}},
                            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
                        }
                    }
                }
            }),
            "com.example.v1.Widget",
            false,
        )
        .unwrap();
        let root = s
            .get("com.example.v1.Widget")
            .unwrap()
            .map
            .as_ref()
            .unwrap();
        assert!(root.fields.contains_key("metadata"));
        assert!(s.contains(OBJECT_META));
        let TypeRef::Inline(spec) = &root.fields["spec"].ty else {
            panic!("spec not inline")
        };
        let spec = spec.map.as_ref().unwrap();
        assert!(matches!(
            s.handling(&spec.fields["items"].ty, None),
            Some(Handling::List(ListType { kind: ListKind::Map(k), .. })) if k == &vec!["name".to_string()]
        ));
        assert!(matches!(
            s.handling(&spec.fields["tags"].ty, None),
            Some(Handling::List(ListType {
                kind: ListKind::Atomic,
                ..
            }))
        ));
        assert!(matches!(
            s.handling(&spec.fields["sel"].ty, None),
            Some(Handling::Map(_, true))
        ));
        let Some(Handling::Map(free, false)) = s.handling(&spec.fields["free"].ty, None) else {
            panic!("free is not a granular map")
        };
        assert_eq!(free.element, Some(TypeRef::deduced()));
    }

    #[test]
    fn components_with_refs() {
        let s = from_openapi_v3(&json!({"components": {"schemas": {
            "a.B": {"type": "object", "properties": {
                "sel": {"allOf": [{"$ref": "#/components/schemas/a.C"}],
                        "x-kubernetes-map-type": "atomic"},
                "ports": {"type": "array", "x-kubernetes-patch-strategy": "merge",
                          "x-kubernetes-patch-merge-key": "port",
                          "items": {"$ref": "#/components/schemas/a.C"}}
            }},
            "a.C": {"type": "object", "properties": {"port": {"type": "integer"}}}
        }}}))
        .unwrap();
        let b = s.get("a.B").unwrap().map.as_ref().unwrap();
        assert_eq!(
            b.fields["sel"].ty,
            TypeRef::Named {
                name: "a.C".into(),
                map_atomic: Some(true)
            }
        );
        assert!(matches!(
            s.handling(&b.fields["sel"].ty, None),
            Some(Handling::Map(_, true))
        ));
        assert!(matches!(
            s.handling(&b.fields["ports"].ty, None),
            Some(Handling::List(ListType {
                kind: ListKind::Map(_),
                ..
            }))
        ));
        assert!(
            from_openapi_v3(&json!({"x": {"type": "array", "x-kubernetes-list-type": "bag"}}))
                .is_err()
        );
    }
}
