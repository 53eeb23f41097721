//! The generated schema table (see build.rs) and lookups over it: every k8s-pb message with
//! its fields' tags, wire types, shapes and JSON names, plus the (apiVersion, kind) index.
//! Mirrors the information in upstream's `generated.proto` files and Go JSON tags.

/// Scalar wire types used by protobuf fields and map keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(dead_code)] // The full set of protobuf scalars; k8s uses only some of them.
pub(crate) enum Scalar {
    Double,
    Float,
    Int32,
    Int64,
    Uint32,
    Uint64,
    Sint32,
    Sint64,
    Fixed32,
    Fixed64,
    Sfixed32,
    Sfixed64,
    Bool,
    String,
    Bytes,
}

/// The value type of a field (for maps: of the map's values).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ty {
    Scalar(Scalar),
    /// Index into [`MESSAGES`].
    Message(u16),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Shape {
    Single,
    Repeated,
    /// A map with keys of the given scalar type.
    Map(Scalar),
}

/// How a message maps to JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Special {
    /// An object of its fields.
    Plain,
    /// metav1.Time: RFC 3339 string with second precision.
    Time,
    /// metav1.MicroTime: RFC 3339 string with microsecond precision.
    MicroTime,
    /// metav1.Duration: Go duration string.
    Duration,
    /// resource.Quantity: string.
    Quantity,
    /// intstr.IntOrString: number or string.
    IntOrString,
    /// runtime.RawExtension: embedded object (raw JSON or an enveloped protobuf object).
    RawExtension,
    /// FieldsV1 and apiextensions JSON: raw JSON bytes embedded as a value.
    RawJson,
    /// JSONSchemaPropsOrArray: schema object or array of schemas.
    SchemaOrArray,
    /// JSONSchemaPropsOrBool: schema object or boolean.
    SchemaOrBool,
    /// JSONSchemaPropsOrStringArray: schema object or array of strings.
    SchemaOrStringArray,
    /// A Go named `[]string` wrapped in a message (`ExtraValue`, `Verbs`): JSON array.
    StringList,
}

#[derive(Debug)]
pub(crate) struct Field {
    pub tag: u32,
    pub json: &'static str,
    pub ty: Ty,
    pub shape: Shape,
    /// Whether a zero scalar ("", 0, false) read from the wire appears in JSON: false for Go
    /// non-pointer `omitempty` fields, whose zero values Go writes to protobuf but not to JSON.
    pub keep_zero: bool,
    pub packed: bool,
}

#[derive(Debug)]
pub(crate) struct Message {
    /// Module path in k8s-pb plus struct name, e.g. `api.core.v1.Pod`.
    pub name: &'static str,
    pub special: Special,
    /// Field indices in ascending tag order (the order fields are written on the wire).
    pub by_tag: &'static [u16],
    /// Fields in Go struct order (the order of JSON output).
    pub fields: &'static [Field],
}

impl Message {
    pub(crate) fn field_by_tag(&self, tag: u32) -> Option<(usize, &'static Field)> {
        let pos = self
            .by_tag
            .binary_search_by_key(&tag, |&i| self.fields[usize::from(i)].tag);
        pos.ok().map(|p| {
            let i = usize::from(self.by_tag[p]);
            (i, &self.fields[i])
        })
    }
}

include!(concat!(env!("OUT_DIR"), "/schema_table.rs"));

pub(crate) fn message(index: u16) -> &'static Message {
    &MESSAGES[usize::from(index)]
}

/// Finds a message by its k8s-pb path, e.g. `api.core.v1.Pod`.
#[cfg(test)]
pub(crate) fn message_by_name(name: &str) -> Option<&'static Message> {
    MESSAGES
        .binary_search_by(|m| m.name.cmp(name))
        .ok()
        .map(|i| &MESSAGES[i])
}

/// The message for a (apiVersion, kind) pair.
pub(crate) fn message_for_kind(api_version: &str, kind: &str) -> Option<&'static Message> {
    if let Ok(i) = KINDS.binary_search_by(|(av, k, _)| (*av, *k).cmp(&(api_version, kind))) {
        return Some(message(KINDS[i].2));
    }
    META_KINDS
        .binary_search_by(|(k, _)| (*k).cmp(kind))
        .ok()
        .map(|i| message(META_KINDS[i].1))
}

/// Every (apiVersion, kind) pair with a dedicated message (meta kinds excluded).
pub(crate) fn kinds() -> impl Iterator<Item = (&'static str, &'static str)> {
    KINDS.iter().map(|(av, k, _)| (*av, *k))
}
