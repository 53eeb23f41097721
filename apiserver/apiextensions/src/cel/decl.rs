//! CEL types of structural schema nodes, with the size bounds the cost estimator uses, CEL
//! property-name escaping and the schema-aware conversion of JSON values to CEL values (mirrors
//! apiserver pkg/cel/common/schemas.go `SchemaDeclType`, pkg/cel/types.go, pkg/cel/escaping.go and
//! apiextensions-apiserver pkg/apiserver/schema/cel/model `WithTypeAndObjectMeta`).

use crate::structural::Structural;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;
use std::rc::Rc;
use std::sync::{Arc, LazyLock};

/// The largest request the API server accepts; unbounded lists, maps and strings are assumed to
/// fill one (upstream `MaxRequestSizeBytes`).
pub const MAX_REQUEST_SIZE: i64 = 3 * 1024 * 1024;

/// An object type: its (escaped) property names and types. `open` objects (preserving unknown
/// fields, embedded resources) accept any field name when type-checking.
#[derive(Debug)]
pub struct Object {
    pub fields: BTreeMap<String, Rc<Ty>>,
    pub open: bool,
}

/// The kind of a CEL type.
#[derive(Clone, Debug)]
pub enum Kind {
    Dyn,
    Bool,
    Int,
    Uint,
    Double,
    String,
    Bytes,
    Null,
    Duration,
    Timestamp,
    Type,
    List(Rc<Ty>),
    Map(Rc<Ty>, Rc<Ty>),
    Object(Rc<Object>),
    Optional(Rc<Ty>),
}

/// A CEL type. Types of schema nodes carry `max`, upstream's `MaxElements` (the largest size of
/// the value: characters, items or properties; 0 for scalars and objects), and the smallest
/// size of the value serialized as JSON.
#[derive(Clone, Debug)]
pub struct Ty {
    pub kind: Kind,
    pub max: Option<u64>,
    pub min_size: i64,
}

impl Ty {
    /// A type that does not come from the schema (no size bound).
    pub fn of(kind: Kind) -> Rc<Ty> {
        Rc::new(Ty {
            kind,
            max: None,
            min_size: 0,
        })
    }

    pub fn dyn_() -> Rc<Ty> {
        Ty::of(Kind::Dyn)
    }

    fn schema(kind: Kind, max: i64, min_size: i64) -> Rc<Ty> {
        Rc::new(Ty {
            kind,
            max: Some(u64::try_from(max).unwrap_or(0)),
            min_size,
        })
    }

    pub fn is_dyn(&self) -> bool {
        matches!(self.kind, Kind::Dyn)
    }

    /// Whether the type is the same kind of type as `other` (parameters compared shallowly).
    pub fn same_kind(&self, other: &Ty) -> bool {
        std::mem::discriminant(&self.kind) == std::mem::discriminant(&other.kind)
    }
}

impl fmt::Display for Ty {
    /// The type as cel-go's checker prints it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Dyn => f.write_str("dyn"),
            Kind::Bool => f.write_str("bool"),
            Kind::Int => f.write_str("int"),
            Kind::Uint => f.write_str("uint"),
            Kind::Double => f.write_str("double"),
            Kind::String => f.write_str("string"),
            Kind::Bytes => f.write_str("bytes"),
            Kind::Null => f.write_str("null_type"),
            Kind::Duration => f.write_str("google.protobuf.Duration"),
            Kind::Timestamp => f.write_str("google.protobuf.Timestamp"),
            Kind::Type => f.write_str("type"),
            Kind::List(e) => write!(f, "list({e})"),
            Kind::Map(k, v) => write!(f, "map({k}, {v})"),
            Kind::Object(_) => f.write_str("object"),
            Kind::Optional(t) => write!(f, "optional_type({t})"),
        }
    }
}

fn raw_int(s: &Structural, key: &str) -> Option<i64> {
    s.raw.get(key).and_then(Value::as_i64).map(|v| v.max(0))
}

/// Upstream `estimateMaxStringLengthPerRequest` for plain strings: the request minus `""`.
const MAX_STRING: i64 = MAX_REQUEST_SIZE - 2;

fn max_items_from_min_size(min: i64) -> i64 {
    (MAX_REQUEST_SIZE - 2) / (min + 1)
}

fn max_properties_from_min_size(min: i64) -> i64 {
    (MAX_REQUEST_SIZE - 2) / (min + 6)
}

fn string_type(s: &Structural) -> Rc<Ty> {
    let max_len = raw_int(s, "maxLength");
    match s.format.as_str() {
        "byte" => Ty::schema(Kind::Bytes, max_len.unwrap_or(MAX_STRING), 2),
        "duration" => Ty::schema(Kind::Duration, 32, 3),
        "date" => Ty::schema(Kind::Timestamp, 12, 12),
        "date-time" => Ty::schema(Kind::Timestamp, 32, 21),
        _ => {
            let max = match max_len {
                Some(l) => l.saturating_mul(4),
                None if !s.enum_.is_empty() => s
                    .enum_
                    .iter()
                    .filter_map(Value::as_str)
                    .map(|e| e.len() as i64)
                    .max()
                    .unwrap_or(0),
                None => MAX_STRING,
            };
            Ty::schema(Kind::String, max, 2)
        }
    }
}

fn capped_string(existing: Option<&Structural>, cap: i64) -> Rc<Ty> {
    let max = existing
        .and_then(|s| raw_int(s, "maxLength"))
        .map_or(cap, |l| l.min(cap));
    Ty::schema(Kind::String, max.saturating_mul(4), 2)
}

/// Whether the root of a resource already declares `kind`, `apiVersion` and
/// `metadata.{name,generateName}` as upstream's `WithTypeAndObjectMeta` requires.
fn has_type_and_object_meta(s: &Structural) -> bool {
    let str_prop =
        |s: &Structural, k: &str| s.properties.get(k).is_some_and(|p| p.type_ == "string");
    str_prop(s, "kind")
        && str_prop(s, "apiVersion")
        && s.properties.get("metadata").is_some_and(|m| {
            m.type_ == "object" && str_prop(m, "name") && str_prop(m, "generateName")
        })
}

/// The CEL type of a schema node (upstream `SchemaDeclType`), `None` when the node is not
/// visible to CEL. `resource_root` is set for the root of the custom resource and of embedded
/// resources, where `apiVersion`, `kind` and `metadata.name`/`generateName` are always declared.
pub fn decl_type(s: &Structural, resource_root: bool) -> Option<Rc<Ty>> {
    if s.int_or_string {
        let max = raw_int(s, "maxLength").map_or(MAX_STRING, |l| l.saturating_mul(4));
        return Some(Ty::schema(Kind::Dyn, max, 1));
    }
    match s.type_.as_str() {
        "array" => {
            let items = s.items.as_deref()?;
            let item = decl_type(items, items.embedded_resource)?;
            let max =
                raw_int(s, "maxItems").unwrap_or_else(|| max_items_from_min_size(item.min_size));
            Some(Ty::schema(Kind::List(item), max, 2))
        }
        "object" => {
            if let Some(ap) = s.additional_schema() {
                let val = decl_type(ap, ap.embedded_resource)?;
                let max = raw_int(s, "maxProperties")
                    .unwrap_or_else(|| max_properties_from_min_size(val.min_size));
                // upstream's map keys are the shared `StringType`, whose MaxElements is 0
                let key = Ty::schema(Kind::String, 0, 2);
                return Some(Ty::schema(Kind::Map(key, val), max, 2));
            }
            Some(object_type(s, resource_root))
        }
        "string" => Some(string_type(s)),
        "boolean" => Some(Ty::schema(Kind::Bool, 0, 4)),
        "number" => Some(Ty::schema(Kind::Double, 0, 1)),
        "integer" => Some(Ty::schema(Kind::Int, 0, 1)),
        _ => None,
    }
}

fn object_type(s: &Structural, resource_root: bool) -> Rc<Ty> {
    let required: Vec<&str> = s
        .raw
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let replace_meta = resource_root && !has_type_and_object_meta(s);
    let mut fields = BTreeMap::new();
    let mut min_size = 2i64;
    let mut add = |name: &str, t: Rc<Ty>, has_default: bool| {
        if required.contains(&name) && !has_default {
            min_size += name.len() as i64 + t.min_size + 4;
        }
        if let Some(escaped) = escape(name) {
            fields.insert(escaped, t);
        }
    };
    for (name, prop) in &s.properties {
        if replace_meta && ["kind", "apiVersion", "metadata"].contains(&name.as_str()) {
            continue;
        }
        if let Some(t) = decl_type(prop, prop.embedded_resource) {
            add(name, t, prop.default.is_some());
        }
    }
    if replace_meta {
        let meta = s.properties.get("metadata");
        let mut meta_fields = BTreeMap::new();
        let field = |k: &str| meta.and_then(|m| m.properties.get(k));
        meta_fields.insert("name".to_string(), capped_string(field("name"), 253));
        meta_fields.insert(
            "generateName".to_string(),
            capped_string(field("generateName"), 252),
        );
        let meta_ty = Ty::schema(
            Kind::Object(Rc::new(Object {
                fields: meta_fields,
                open: false,
            })),
            0,
            2,
        );
        add("kind", Ty::schema(Kind::String, MAX_STRING, 2), false);
        add("apiVersion", Ty::schema(Kind::String, MAX_STRING, 2), false);
        add("metadata", meta_ty, false);
    }
    let open = s.preserve_unknown_fields || s.embedded_resource;
    Ty::schema(Kind::Object(Rc::new(Object { fields, open })), 0, min_size)
}

/// The worst-case number of times a value of this minimum serialized size fits in a request
/// (upstream `maxCardinality`): the cardinality of a rule under unbounded lists or maps.
pub fn max_cardinality(min_size: i64) -> u64 {
    u64::try_from(MAX_REQUEST_SIZE / (min_size.max(0) + 1)).unwrap_or(0)
}

const RESERVED: [&str; 21] = [
    "true",
    "false",
    "null",
    "in",
    "as",
    "break",
    "const",
    "continue",
    "else",
    "for",
    "function",
    "if",
    "import",
    "let",
    "loop",
    "package",
    "namespace",
    "return",
    "var",
    "void",
    "while",
];

/// The CEL name of a property (upstream `cel.Escape`): reserved words become `__word__`, `__`,
/// `.`, `-` and `/` become `__underscores__`, `__dot__`, `__dash__`, `__slash__`; `None` for
/// names CEL cannot refer to (empty, leading digit, other characters).
pub fn escape(name: &str) -> Option<String> {
    let first = name.chars().next()?;
    if first.is_ascii_digit() {
        return None;
    }
    if RESERVED.contains(&name) {
        return Some(format!("__{name}__"));
    }
    let mut out = String::with_capacity(name.len());
    let mut chars = name.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '_' if chars.peek() == Some(&'_') => {
                chars.next();
                out.push_str("__underscores__");
            }
            '.' => out.push_str("__dot__"),
            '-' => out.push_str("__dash__"),
            '/' => out.push_str("__slash__"),
            c if c.is_ascii_alphanumeric() || c == '_' => out.push(c),
            _ => return None,
        }
    }
    Some(out)
}

/// Converts a JSON value to a CEL value along its schema: integers as `int`, object properties
/// under their escaped names (as upstream's unstructured values expose them).
pub fn to_cel(v: &Value, s: Option<&Structural>) -> cel::Value {
    let s = s.filter(|s| !s.int_or_string);
    match v {
        Value::Null => cel::Value::Null,
        Value::Bool(b) => cel::Value::Bool(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => cel::Value::Int(i),
            (None, Some(u)) => cel::Value::UInt(u),
            _ => cel::Value::Float(n.as_f64().unwrap_or(0.0)),
        },
        Value::String(st) => s
            .filter(|s| s.type_ == "string")
            .and_then(|s| formatted(&s.format, st))
            .unwrap_or_else(|| cel::Value::String(Arc::new(st.clone()))),
        Value::Array(a) => {
            let items = s.and_then(|s| s.items.as_deref());
            cel::Value::List(Arc::new(a.iter().map(|i| to_cel(i, items)).collect()))
        }
        Value::Object(m) => {
            let map: std::collections::HashMap<cel::objects::Key, cel::Value> = m
                .iter()
                .map(|(k, fv)| {
                    let (name, fs) = match s {
                        Some(s) if s.properties.contains_key(k) => {
                            (escape(k).unwrap_or_else(|| k.clone()), s.properties.get(k))
                        }
                        Some(s) => (k.clone(), s.additional_schema()),
                        None => (k.clone(), None),
                    };
                    (cel::objects::Key::String(Arc::new(name)), to_cel(fv, fs))
                })
                .collect();
            cel::Value::Map(map.into())
        }
    }
}

static TIMESTAMP: LazyLock<Option<cel::Program>> =
    LazyLock::new(|| crate::cel::compile::parse("timestamp(v)").ok());
static DURATION: LazyLock<Option<cel::Program>> =
    LazyLock::new(|| crate::cel::compile::parse("duration(v)").ok());

/// Evaluates `timestamp(v)` or `duration(v)` on a string with the rules' environment.
fn convert(program: &LazyLock<Option<cel::Program>>, v: &str) -> Option<cel::Value> {
    let program = program.as_ref()?;
    let mut ctx = cel::Context::with_env(crate::cel::library::ENV.clone());
    ctx.add_variable_from_value("v", v.to_string());
    program.execute(&ctx).ok()
}

/// A string of a CEL-typed format as upstream exposes it: `date`/`date-time` as timestamps,
/// `duration` as a duration, `byte` as bytes; `None` (kept a string) when it does not parse.
fn formatted(format: &str, v: &str) -> Option<cel::Value> {
    match format {
        "date-time" => convert(&TIMESTAMP, v),
        "date" => convert(&TIMESTAMP, &format!("{v}T00:00:00Z")),
        "duration" => convert(&DURATION, v),
        "byte" => {
            use base64::Engine;
            let bytes = base64::engine::general_purpose::STANDARD.decode(v).ok()?;
            Some(cel::Value::Bytes(Arc::new(bytes)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema(v: Value) -> Structural {
        Structural::from_json(&v).expect("structural")
    }

    #[test]
    fn escaping_follows_upstream() {
        assert_eq!(escape("foo").as_deref(), Some("foo"));
        assert_eq!(escape("namespace").as_deref(), Some("__namespace__"));
        assert_eq!(
            escape("a-b.c/d").as_deref(),
            Some("a__dash__b__dot__c__slash__d")
        );
        assert_eq!(escape("a__b").as_deref(), Some("a__underscores__b"));
        assert_eq!(escape("a___b").as_deref(), Some("a__underscores___b"));
        assert_eq!(escape("1a"), None);
        assert_eq!(escape("a b"), None);
        assert_eq!(escape(""), None);
    }

    #[test]
    fn decl_types_carry_upstream_sizes() {
        let s = schema(json!({"type": "object", "properties": {
            "x": {"type": "array", "items": {"type": "array", "items": {"type": "string"}}},
            "names": {"type": "array", "maxItems": 10, "items": {"type": "string", "maxLength": 5}},
            "labels": {"type": "object", "additionalProperties": {"type": "integer"}},
            "when": {"type": "string", "format": "date-time"},
        }}));
        let t = decl_type(&s, false).expect("type");
        let Kind::Object(o) = &t.kind else {
            panic!("object expected: {t}")
        };
        let x = &o.fields["x"];
        assert_eq!(x.to_string(), "list(list(string))");
        // items of unbounded string lists: (3 MiB - 2) / (2 + 1)
        assert_eq!(x.max, Some(1_048_575));
        let Kind::List(inner) = &x.kind else {
            panic!("list")
        };
        assert_eq!(inner.max, Some(1_048_575));
        let names = &o.fields["names"];
        assert_eq!(names.max, Some(10));
        let Kind::List(name) = &names.kind else {
            panic!("list")
        };
        assert_eq!(name.max, Some(20));
        assert_eq!(o.fields["labels"].to_string(), "map(string, int)");
        assert_eq!(
            o.fields["labels"].max,
            Some(((MAX_REQUEST_SIZE - 2) / 7) as u64)
        );
        assert_eq!(o.fields["when"].to_string(), "google.protobuf.Timestamp");
        assert_eq!(max_cardinality(2), 1_048_576);
    }

    #[test]
    fn resource_roots_declare_type_and_object_meta() {
        let s = schema(json!({"type": "object", "properties": {"spec": {"type": "object"}}}));
        let t = decl_type(&s, true).expect("type");
        let Kind::Object(o) = &t.kind else { panic!() };
        assert!(o.fields.contains_key("apiVersion") && o.fields.contains_key("kind"));
        let Kind::Object(meta) = &o.fields["metadata"].kind else {
            panic!()
        };
        assert_eq!(
            meta.fields.keys().collect::<Vec<_>>(),
            ["generateName", "name"]
        );
        assert_eq!(meta.fields["name"].max, Some(253 * 4));
    }

    #[test]
    fn formatted_strings_are_typed_values() {
        let s = schema(json!({"type": "object", "properties": {
            "t": {"type": "string", "format": "date-time"},
            "d": {"type": "string", "format": "date"},
            "dur": {"type": "string", "format": "duration"},
            "b": {"type": "string", "format": "byte"},
            "bad": {"type": "string", "format": "date-time"}}}));
        let v = to_cel(
            &json!({"t": "2024-01-02T03:04:05Z", "d": "2024-01-02", "dur": "1h30m", "b": "aGk=", "bad": "x"}),
            Some(&s),
        );
        let cel::Value::Map(m) = v else { panic!() };
        let get = |k: &str| {
            m.map
                .get(&cel::objects::Key::String(Arc::new(k.to_string())))
        };
        assert!(matches!(get("t"), Some(cel::Value::Timestamp(_))));
        assert!(matches!(get("d"), Some(cel::Value::Timestamp(_))));
        assert!(matches!(get("dur"), Some(cel::Value::Duration(_))));
        assert_eq!(get("b"), Some(&cel::Value::Bytes(Arc::new(b"hi".to_vec()))));
        assert_eq!(get("bad"), Some(&cel::Value::String(Arc::new("x".into()))));
    }

    #[test]
    fn values_use_escaped_property_names() {
        let s = schema(json!({"type": "object", "properties": {
            "foo-bar": {"type": "integer"},
            "m": {"type": "object", "additionalProperties": {"type": "string"}}}}));
        let v = to_cel(&json!({"foo-bar": 1, "m": {"a-b": "x"}}), Some(&s));
        let cel::Value::Map(m) = v else { panic!() };
        let key = |k: &str| cel::objects::Key::String(Arc::new(k.to_string()));
        assert_eq!(m.map.get(&key("foo__dash__bar")), Some(&cel::Value::Int(1)));
        let Some(cel::Value::Map(inner)) = m.map.get(&key("m")) else {
            panic!()
        };
        assert!(inner.map.contains_key(&key("a-b")));
    }
}
