//! The schema of every built-in definition, built once from apiserver-apimachinery's type graph
//! (k8s-openapi's schemas) and its table of list/map extensions — the same facts upstream's
//! kube-openapi `schemaconv` reads from the generated OpenAPI (`x-kubernetes-list-type`,
//! `x-kubernetes-list-map-keys`, `x-kubernetes-map-type`, patch-strategy fallbacks).

use std::collections::BTreeMap;
use std::sync::LazyLock;

use apiserver_apimachinery::schema::{Shape, definition_map_type, field_meta, type_graph};
use serde_json::json;

use super::{Atom, ListKind, ListType, MapType, Schema, StructField, TypeRef, UNTYPED_DEDUCED};

/// `default`s of list-map key fields that upstream's OpenAPI carries (an element that leaves the
/// key out is keyed with the default, e.g. `k:{"containerPort":80,"protocol":"TCP"}`).
const KEY_DEFAULTS: &[(&str, &str, &str)] = &[
    ("io.k8s.api.core.v1.ContainerPort", "protocol", "TCP"),
    ("io.k8s.api.core.v1.ServicePort", "protocol", "TCP"),
];

/// Definitions upstream hard-codes as untyped scalars (any value, replaced as a whole).
const UNTYPED_SCALARS: &[&str] = &[
    "io.k8s.apimachinery.pkg.api.resource.Quantity",
    "io.k8s.apimachinery.pkg.runtime.RawExtension",
];

/// The schema of all built-in definitions (named as upstream's OpenAPI names them, e.g.
/// `io.k8s.api.apps.v1.Deployment`), built on first use.
pub fn builtin_schema() -> &'static Schema {
    static SCHEMA: LazyLock<Schema> = LazyLock::new(build);
    &SCHEMA
}

fn build() -> Schema {
    let graph = type_graph();
    let mut schema = Schema::new();
    for name in graph.definition_names() {
        let Some(def) = graph.definition(name) else {
            continue;
        };
        let atom = if UNTYPED_SCALARS.contains(&name) {
            Atom {
                scalar: true,
                ..Atom::default()
            }
        } else if !def.alternatives.is_empty() {
            // A union of shapes (e.g. JSONSchemaPropsOrArray): deduced from the value.
            deduced_atom(&schema)
        } else if def.properties.is_empty() {
            // Scalars (Time, IntOrString) and free-form objects. Scalars are leaves either way;
            // apiextensions JSON is untyped-deduced upstream, other free-form ones atomic.
            if name.ends_with(".JSON") {
                deduced_atom(&schema)
            } else {
                match schema.get(super::UNTYPED_ATOMIC) {
                    Some(a) => a.clone(),
                    None => Atom::default(),
                }
            }
        } else {
            let mut fields = BTreeMap::new();
            for (field, shape) in &def.properties {
                let ty = property_type(name, field, shape);
                let default = KEY_DEFAULTS
                    .iter()
                    .find(|(d, f, _)| *d == name && *f == field)
                    .map(|(_, _, v)| json!(v));
                fields.insert(field.clone(), StructField { ty, default });
            }
            Atom {
                scalar: false,
                list: None,
                map: Some(MapType {
                    fields,
                    element: None,
                    atomic: definition_map_type(name) == Some("atomic"),
                }),
            }
        };
        schema.insert(name, atom);
    }
    schema
}

fn deduced_atom(schema: &Schema) -> Atom {
    schema.get(UNTYPED_DEDUCED).cloned().unwrap_or_default()
}

/// The type of one property, with the field's list/map extensions applied.
fn property_type(definition: &str, field: &str, shape: &Shape) -> TypeRef {
    let meta = field_meta(definition, field);
    let map_atomic = meta.and_then(|m| m.map_type).map(|t| t == "atomic");
    match shape {
        Shape::Ref(name) => TypeRef::Named {
            name: name.clone(),
            map_atomic,
        },
        Shape::Array(inner) => {
            let kind = match meta {
                Some(m) => list_kind(
                    m.list_type,
                    m.list_map_keys,
                    m.patch_strategy,
                    m.patch_merge_key,
                ),
                None => ListKind::Atomic,
            };
            TypeRef::Inline(Box::new(Atom {
                list: Some(ListType {
                    element: element_type(inner),
                    kind,
                }),
                ..Atom::default()
            }))
        }
        Shape::Map(inner) => TypeRef::Inline(Box::new(Atom {
            map: Some(MapType {
                fields: BTreeMap::new(),
                element: Some(element_type(inner)),
                atomic: map_atomic.unwrap_or(false),
            }),
            ..Atom::default()
        })),
        Shape::OneOf(_) | Shape::Object => TypeRef::deduced(),
        Shape::Scalar => TypeRef::scalar(),
    }
}

/// The type of list items or map values (no extensions of their own).
fn element_type(shape: &Shape) -> TypeRef {
    match shape {
        Shape::Ref(name) => TypeRef::named(name.clone()),
        Shape::Array(inner) => TypeRef::Inline(Box::new(Atom {
            list: Some(ListType {
                element: element_type(inner),
                kind: ListKind::Atomic,
            }),
            ..Atom::default()
        })),
        Shape::Map(inner) => TypeRef::Inline(Box::new(Atom {
            map: Some(MapType {
                fields: BTreeMap::new(),
                element: Some(element_type(inner)),
                atomic: false,
            }),
            ..Atom::default()
        })),
        Shape::OneOf(_) | Shape::Object => TypeRef::deduced(),
        Shape::Scalar => TypeRef::scalar(),
    }
}

/// The list kind from `x-kubernetes-list-type` (then the patch strategy, as kube-openapi falls
/// back to it); atomic by default.
pub(super) fn list_kind(
    list_type: Option<&str>,
    keys: &[&str],
    patch_strategy: Option<&str>,
    merge_key: Option<&str>,
) -> ListKind {
    match list_type {
        Some("set") => ListKind::Set,
        Some("map") => ListKind::Map(keys.iter().map(|k| k.to_string()).collect()),
        Some(_) => ListKind::Atomic,
        None => match patch_strategy {
            Some("merge") | Some("merge,retainKeys") => match merge_key {
                Some(k) => ListKind::Map(vec![k.to_string()]),
                None => ListKind::Set,
            },
            _ => ListKind::Atomic,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::Handling;

    #[test]
    fn deployment_containers_are_a_list_map() {
        let s = builtin_schema();
        let pod_spec = s.get("io.k8s.api.core.v1.PodSpec").unwrap();
        let containers = &pod_spec.map.as_ref().unwrap().fields["containers"].ty;
        let Some(Handling::List(l)) = s.handling(containers, None) else {
            panic!("containers is not a list");
        };
        assert_eq!(l.kind, ListKind::Map(vec!["name".into()]));
        let container = s.get("io.k8s.api.core.v1.Container").unwrap();
        let args = &container.map.as_ref().unwrap().fields["args"].ty;
        assert!(matches!(
            s.handling(args, None),
            Some(Handling::List(ListType {
                kind: ListKind::Atomic,
                ..
            }))
        ));
        let selector = s
            .get("io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector")
            .unwrap();
        assert!(selector.map.as_ref().unwrap().atomic);
        let port = s.get("io.k8s.api.core.v1.ContainerPort").unwrap();
        assert_eq!(
            port.map.as_ref().unwrap().fields["protocol"].default,
            Some(json!("TCP"))
        );
        let meta = s
            .get("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta")
            .unwrap();
        let fin = &meta.map.as_ref().unwrap().fields["finalizers"].ty;
        assert!(matches!(
            s.handling(fin, None),
            Some(Handling::List(ListType {
                kind: ListKind::Set,
                ..
            }))
        ));
        let labels = &meta.map.as_ref().unwrap().fields["labels"].ty;
        assert!(matches!(
            s.handling(labels, None),
            Some(Handling::Map(_, false))
        ));
    }
}
