//! The type graph of the built-in definitions: for each OpenAPI definition (named as upstream's
//! `api/openapi-spec` names it, e.g. `io.k8s.api.core.v1.PodSpec`), the shape of every property.
//! Built once from k8s-openapi's schemars `JsonSchema` impls, whose `$ref`s name the definitions.

use std::collections::HashMap;
use std::sync::LazyLock;

use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{Map, Value};

/// The shape of a property's value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Shape {
    /// A value of the named definition (`$ref`).
    Ref(String),
    /// A list whose items have the inner shape.
    Array(Box<Shape>),
    /// A string-keyed map whose values have the inner shape (`additionalProperties`).
    Map(Box<Shape>),
    /// One of several shapes (`oneOf`, e.g. `JSONSchemaPropsOrArray`).
    OneOf(Vec<Shape>),
    /// An object without declared properties (free-form, e.g. `RawExtension`).
    Object,
    /// A string, number or boolean.
    Scalar,
}

impl Shape {
    /// This shape, or the alternative of a `oneOf` that is a list.
    pub fn as_array(&self) -> Option<&Shape> {
        match self {
            Shape::Array(inner) => Some(inner),
            Shape::OneOf(alts) => alts.iter().find_map(Shape::as_array),
            _ => None,
        }
    }
    /// This shape, or the alternative of a `oneOf` that is an object (definition, map or
    /// free-form object).
    pub fn as_object(&self) -> Option<&Shape> {
        match self {
            Shape::Ref(_) | Shape::Map(_) | Shape::Object => Some(self),
            Shape::OneOf(alts) => alts.iter().find_map(Shape::as_object),
            _ => None,
        }
    }
}

/// One definition: its declared properties (empty for scalars and free-form objects) and, for a
/// union definition (`oneOf`, e.g. `JSONSchemaPropsOrArray`), its alternatives.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Definition {
    pub properties: HashMap<String, Shape>,
    pub alternatives: Vec<Shape>,
}

/// All definitions reachable from a set of root types.
#[derive(Clone, Debug, Default)]
pub struct TypeGraph {
    definitions: HashMap<String, Definition>,
}

/// The OpenAPI definition name of a k8s-openapi type, e.g. `io.k8s.api.apps.v1.Deployment`.
pub fn definition_of<K: JsonSchema>() -> String {
    K::schema_name().into_owned()
}

/// The graph of every built-in definition reachable from a resource type (built once).
pub fn type_graph() -> &'static TypeGraph {
    static GRAPH: LazyLock<TypeGraph> = LazyLock::new(|| {
        let mut generator = SchemaGenerator::default();
        super::roots::add_roots(&mut generator);
        TypeGraph::from_generator(&generator)
    });
    &GRAPH
}

impl TypeGraph {
    /// Reads the definitions a generator has collected (call `subschema_for` on the roots first).
    pub fn from_generator(generator: &SchemaGenerator) -> Self {
        let mut graph = TypeGraph::default();
        for (name, schema) in generator.definitions() {
            graph.insert(name, schema);
        }
        graph
    }

    /// Adds one definition from its JSON schema.
    pub fn insert(&mut self, name: &str, schema: &Value) {
        let properties = schema
            .get("properties")
            .and_then(Value::as_object)
            .map(|props| {
                props
                    .iter()
                    .map(|(k, v)| (k.clone(), shape_of(v)))
                    .collect()
            })
            .unwrap_or_default();
        let alternatives = match shape_of(schema) {
            Shape::OneOf(alts) => alts,
            _ => Vec::new(),
        };
        self.definitions.insert(
            name.to_string(),
            Definition {
                properties,
                alternatives,
            },
        );
    }

    /// Adds one definition with the given properties (used to build schemas for tests).
    pub fn insert_definition(&mut self, name: &str, properties: Vec<(&str, Shape)>) {
        let properties = properties
            .into_iter()
            .map(|(k, s)| (k.to_string(), s))
            .collect();
        self.definitions.insert(
            name.to_string(),
            Definition {
                properties,
                alternatives: Vec::new(),
            },
        );
    }

    pub fn definition(&self, name: &str) -> Option<&Definition> {
        self.definitions.get(name)
    }

    /// The shape of `field` in `definition`.
    pub fn field(&self, definition: &str, field: &str) -> Option<&Shape> {
        self.definitions.get(definition)?.properties.get(field)
    }

    /// Follows a `$ref` to a union definition: its `oneOf` alternatives as one shape.
    pub fn resolve<'a>(&'a self, shape: &'a Shape) -> std::borrow::Cow<'a, Shape> {
        if let Shape::Ref(name) = shape
            && let Some(def) = self.definitions.get(name)
            && !def.alternatives.is_empty()
        {
            return std::borrow::Cow::Owned(Shape::OneOf(def.alternatives.clone()));
        }
        std::borrow::Cow::Borrowed(shape)
    }

    pub fn contains(&self, definition: &str) -> bool {
        self.definitions.contains_key(definition)
    }

    pub fn definition_names(&self) -> impl Iterator<Item = &str> {
        self.definitions.keys().map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.definitions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.definitions.is_empty()
    }
}

/// The shape of one property schema as schemars renders it.
fn shape_of(schema: &Value) -> Shape {
    let Some(obj) = schema.as_object() else {
        return Shape::Scalar;
    };
    if let Some(name) = obj.get("$ref").and_then(Value::as_str).and_then(ref_name) {
        return Shape::Ref(name);
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        if let Some(alts) = obj.get(key).and_then(Value::as_array) {
            let mut shapes: Vec<Shape> = alts.iter().map(shape_of).collect();
            return if shapes.len() == 1 {
                shapes.remove(0)
            } else {
                Shape::OneOf(shapes)
            };
        }
    }
    match type_of(obj) {
        Some("array") => Shape::Array(Box::new(obj.get("items").map_or(Shape::Scalar, shape_of))),
        Some("object") => match obj.get("additionalProperties") {
            Some(v @ Value::Object(_)) => Shape::Map(Box::new(shape_of(v))),
            _ => Shape::Object,
        },
        _ => Shape::Scalar,
    }
}

fn type_of(obj: &Map<String, Value>) -> Option<&str> {
    match obj.get("type")? {
        Value::String(s) => Some(s),
        // e.g. ["object", "null"]
        Value::Array(types) => types
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null"),
        _ => None,
    }
}

/// `#/$defs/io.k8s.api.core.v1.PodSpec` -> `io.k8s.api.core.v1.PodSpec` (JSON-pointer unescaped).
fn ref_name(reference: &str) -> Option<String> {
    let last = reference.rsplit('/').next()?;
    Some(last.replace("~1", "/").replace("~0", "~"))
}
