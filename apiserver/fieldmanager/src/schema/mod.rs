//! The schema model merges follow (mirrors structured-merge-diff schema/elements.go and the
//! deduced types of kube-openapi pkg/schemaconv): every named type is an `Atom` that is a scalar,
//! a list (atomic, set or map with keys) and/or a map (struct fields and/or string-keyed
//! elements, granular or atomic). Untyped values use the two common types `__untyped_atomic_`
//! (everything atomic) and `__untyped_deduced_` (maps granular, lists atomic).

mod builtin;
mod openapi;

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

pub use builtin::builtin_schema;

pub const UNTYPED_ATOMIC: &str = "__untyped_atomic_";
pub const UNTYPED_DEDUCED: &str = "__untyped_deduced_";

/// How the elements of a list relate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListKind {
    /// Replaced as a whole (the default without `x-kubernetes-list-type`).
    Atomic,
    /// `x-kubernetes-list-type: set`: scalar elements identified by value.
    Set,
    /// `x-kubernetes-list-type: map`: object elements identified by these key fields.
    Map(Vec<String>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct ListType {
    pub element: TypeRef,
    pub kind: ListKind,
}

/// A struct field: its type and its OpenAPI `default` (used for list-map keys left out).
#[derive(Clone, Debug, PartialEq)]
pub struct StructField {
    pub ty: TypeRef,
    pub default: Option<Value>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct MapType {
    /// Declared fields (struct).
    pub fields: BTreeMap<String, StructField>,
    /// The type of other keys (`additionalProperties`, or deduced for preserve-unknown-fields);
    /// `None` when undeclared keys are not allowed.
    pub element: Option<TypeRef>,
    /// `x-kubernetes-map-type: atomic` (or `+structType=atomic`).
    pub atomic: bool,
}

impl MapType {
    /// The type of the value at `key`: the declared field, else the element type.
    pub fn type_of(&self, key: &str) -> Option<&TypeRef> {
        self.fields
            .get(key)
            .map(|f| &f.ty)
            .or(self.element.as_ref())
    }
}

/// A type: any combination of scalar, list and map (untyped values have all three).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Atom {
    pub scalar: bool,
    pub list: Option<ListType>,
    pub map: Option<MapType>,
}

/// A reference to a type: a named type (optionally overriding its map relationship, as a field's
/// `x-kubernetes-map-type` does), or an inline one.
#[derive(Clone, Debug, PartialEq)]
pub enum TypeRef {
    Named {
        name: String,
        map_atomic: Option<bool>,
    },
    Inline(Box<Atom>),
}

impl TypeRef {
    pub fn named(name: impl Into<String>) -> Self {
        TypeRef::Named {
            name: name.into(),
            map_atomic: None,
        }
    }
    pub fn deduced() -> Self {
        TypeRef::named(UNTYPED_DEDUCED)
    }
    pub fn atomic() -> Self {
        TypeRef::named(UNTYPED_ATOMIC)
    }
    pub fn scalar() -> Self {
        TypeRef::Inline(Box::new(Atom {
            scalar: true,
            ..Atom::default()
        }))
    }
}

/// How one value is handled, once its atom is resolved and deduced from the value's kind.
#[derive(Clone, Copy, Debug)]
pub enum Handling<'a> {
    Scalar,
    List(&'a ListType),
    /// A map, and whether it is atomic (after any override of the reference).
    Map(&'a MapType, bool),
}

/// A set of named types.
#[derive(Clone, Debug, Default)]
pub struct Schema {
    types: HashMap<String, Atom>,
}

impl Schema {
    /// An empty schema holding only the two untyped common types.
    pub fn new() -> Self {
        let mut s = Schema::default();
        s.add_common_types();
        s
    }

    fn add_common_types(&mut self) {
        self.types.insert(
            UNTYPED_ATOMIC.to_string(),
            Atom {
                scalar: true,
                list: Some(ListType {
                    element: TypeRef::atomic(),
                    kind: ListKind::Atomic,
                }),
                map: Some(MapType {
                    fields: BTreeMap::new(),
                    element: Some(TypeRef::atomic()),
                    atomic: true,
                }),
            },
        );
        self.types.insert(
            UNTYPED_DEDUCED.to_string(),
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
            },
        );
    }

    pub fn insert(&mut self, name: impl Into<String>, atom: Atom) {
        self.types.insert(name.into(), atom);
    }

    pub fn get(&self, name: &str) -> Option<&Atom> {
        self.types.get(name)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.types.contains_key(name)
    }

    pub fn len(&self) -> usize {
        self.types.len()
    }

    pub fn is_empty(&self) -> bool {
        self.types.is_empty()
    }

    /// The atom a reference names (or holds), and the map relationship override.
    pub fn resolve<'a>(&'a self, tr: &'a TypeRef) -> Option<(&'a Atom, Option<bool>)> {
        match tr {
            TypeRef::Named { name, map_atomic } => self.types.get(name).map(|a| (a, *map_atomic)),
            TypeRef::Inline(atom) => Some((atom.as_ref(), None)),
        }
    }

    /// How to handle `value` (absent when `None`) of type `tr` (upstream `deduceAtom` then
    /// `handleAtom`): the part of the atom matching the value's kind, else map, scalar, list in
    /// that order. `None` when the type does not resolve or is empty.
    pub fn handling<'a>(&'a self, tr: &'a TypeRef, value: Option<&Value>) -> Option<Handling<'a>> {
        let (atom, map_atomic) = self.resolve(tr)?;
        let as_map = |m: &'a MapType| Handling::Map(m, map_atomic.unwrap_or(m.atomic));
        match value {
            Some(Value::Number(_) | Value::String(_) | Value::Bool(_)) if atom.scalar => {
                return Some(Handling::Scalar);
            }
            Some(Value::Array(_)) if atom.list.is_some() => {
                return atom.list.as_ref().map(Handling::List);
            }
            Some(Value::Object(_)) if atom.map.is_some() => return atom.map.as_ref().map(as_map),
            _ => {}
        }
        if let Some(m) = &atom.map {
            Some(as_map(m))
        } else if atom.scalar {
            Some(Handling::Scalar)
        } else {
            atom.list.as_ref().map(Handling::List)
        }
    }

    /// Whether `value` and `other` would be handled the same way (upstream compares the deduced
    /// atoms); a different handling means the value changed kind.
    pub fn same_handling(a: &Handling<'_>, b: &Handling<'_>) -> bool {
        matches!(
            (a, b),
            (Handling::Scalar, Handling::Scalar)
                | (Handling::List(_), Handling::List(_))
                | (Handling::Map(..), Handling::Map(..))
        )
    }
}

/// The fallback type of a key not declared in a struct without an element type: upstream
/// rejects such keys ("field not declared in schema"); this engine treats them as atomic.
pub(crate) fn undeclared_field_type() -> &'static TypeRef {
    static T: std::sync::LazyLock<TypeRef> = std::sync::LazyLock::new(TypeRef::atomic);
    &T
}

pub use openapi::{crd_schema, from_openapi_v3};
