//! Patch metadata lookup while descending a value: the field's strategy and merge key, and the
//! definition of its value, list items or map values (mirrors strategicpatch/meta.go's
//! `LookupPatchMetadataForStruct` / `LookupPatchMetadataForSlice`).

use std::borrow::Cow;

use super::{RETAIN_KEYS_STRATEGY, bad};
use crate::error::ApiError;
use crate::schema::{self, FieldMeta, Shape, TypeGraph};

/// Where the patch engine finds patch metadata and the type graph.
pub trait PatchSchema {
    /// The metadata of `field` in `definition`, if it has any.
    fn field_meta(&self, definition: &str, field: &str) -> Option<&FieldMeta>;
    /// The type graph the definitions live in.
    fn graph(&self) -> &TypeGraph;
}

/// The built-in Kubernetes types: the generated metadata table and k8s-openapi's type graph.
#[derive(Clone, Copy, Debug, Default)]
pub struct BuiltinSchema;

impl PatchSchema for BuiltinSchema {
    fn field_meta(&self, definition: &str, field: &str) -> Option<&FieldMeta> {
        schema::field_meta(definition, field)
    }
    fn graph(&self) -> &TypeGraph {
        schema::type_graph()
    }
}

/// What is known about the value being merged.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Node {
    /// No schema: merged without metadata.
    Unknown,
    /// A value of this definition.
    Def(String),
    /// A string-keyed map whose values have this shape.
    MapOf(Shape),
}

impl Node {
    /// The name used in upstream's "cannot merge lists without merge key for %s".
    pub(crate) fn name(&self) -> &str {
        match self {
            Node::Def(d) => d,
            Node::MapOf(_) => "map",
            Node::Unknown => "unknown",
        }
    }
}

/// A field's patch metadata, its retainKeys flag split off from its merge/replace strategy.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct FieldPatch {
    /// `merge`, `replace` or empty.
    pub strategy: String,
    /// The merge key of a list of maps (empty when none).
    pub merge_key: String,
}

pub(crate) struct Ctx<'a> {
    schema: &'a dyn PatchSchema,
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(schema: &'a dyn PatchSchema) -> Self {
        Ctx { schema }
    }

    pub(crate) fn root(&self, definition: &str) -> Node {
        if self.schema.graph().contains(definition) {
            Node::Def(definition.to_string())
        } else {
            Node::Unknown
        }
    }

    /// Metadata of `key` whose value is a map, and the node of that map.
    pub(crate) fn lookup_struct(
        &self,
        node: &Node,
        key: &str,
    ) -> Result<(FieldPatch, Node), ApiError> {
        let (meta, shape) = self.field(node, key)?;
        let child = match shape {
            Some(shape) => self.object_node(&shape),
            None => Node::Unknown,
        };
        Ok((meta, child))
    }

    /// Metadata of `key` whose value is a list, and the node of the list's items.
    pub(crate) fn lookup_slice(
        &self,
        node: &Node,
        key: &str,
    ) -> Result<(FieldPatch, Node), ApiError> {
        let (meta, shape) = self.field(node, key)?;
        let graph = self.schema.graph();
        let items = shape
            .as_deref()
            .map(|s| graph.resolve(s))
            .and_then(|s| s.as_array().map(|inner| self.object_node(inner)));
        Ok((meta, items.unwrap_or(Node::Unknown)))
    }

    fn field(
        &self,
        node: &Node,
        key: &str,
    ) -> Result<(FieldPatch, Option<Cow<'_, Shape>>), ApiError> {
        match node {
            Node::Unknown => Ok((FieldPatch::default(), None)),
            Node::MapOf(values) => Ok((FieldPatch::default(), Some(Cow::Owned(values.clone())))),
            Node::Def(d) => {
                let meta = match self.schema.field_meta(d, key) {
                    Some(m) => split_strategies(m)?,
                    None => FieldPatch::default(),
                };
                let shape = self.schema.graph().field(d, key).map(Cow::Borrowed);
                Ok((meta, shape))
            }
        }
    }

    /// The node of a value of this shape when it is an object.
    fn object_node(&self, shape: &Shape) -> Node {
        let resolved = self.schema.graph().resolve(shape);
        match resolved.as_object() {
            Some(Shape::Ref(name)) => Node::Def(name.clone()),
            Some(Shape::Map(values)) => Node::MapOf((**values).clone()),
            _ => Node::Unknown,
        }
    }
}

/// Splits `merge,retainKeys` into the retainKeys flag (unused when applying: the `$retainKeys`
/// directive drives it) and the other strategy, as upstream's `extractRetainKeysPatchStrategy`.
fn split_strategies(meta: &FieldMeta) -> Result<FieldPatch, ApiError> {
    let strategies = meta.patch_strategies();
    let strategy = match strategies.as_slice() {
        [] => "",
        [one] if *one == RETAIN_KEYS_STRATEGY => "",
        [one] => one,
        [a, b] if *a == RETAIN_KEYS_STRATEGY => b,
        [a, b] if *b == RETAIN_KEYS_STRATEGY => a,
        _ => {
            return Err(bad(format!(
                "unexpected patch strategy: [{}]",
                strategies.join(" ")
            )));
        }
    };
    Ok(FieldPatch {
        strategy: strategy.to_string(),
        merge_key: meta.patch_merge_key.unwrap_or("").to_string(),
    })
}
