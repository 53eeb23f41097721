//! Path elements and paths into an object (mirrors structured-merge-diff fieldpath/element.go,
//! fieldpath/path.go and fieldpath/serialize-pe.go): a struct or map field, a list-map element by
//! its key fields, a set element by value, or a list index; their total ordering, their `String()`
//! rendering (`.spec.containers[name="nginx"].image`) and their FieldsV1 key form
//! (`f:name`, `k:{"name":"nginx"}`, `v:"a"`, `i:0`).

use std::cmp::Ordering;
use std::fmt;

use serde_json::Value;

use crate::value::{compare, to_go_json, to_path_string, write_go_string};

/// One step of a path.
#[derive(Clone, Debug)]
pub enum PathElement {
    /// A field of a struct or a key of a string-keyed map.
    Field(String),
    /// An element of a list-map, identified by its key fields, sorted by name.
    Key(Vec<(String, Value)>),
    /// An element of a set-list, identified by its (scalar) value.
    Value(Value),
    /// An element of a list by position (never in stored sets).
    Index(usize),
}

impl PathElement {
    pub fn field(name: impl Into<String>) -> Self {
        PathElement::Field(name.into())
    }

    /// A key element; the fields are sorted by name, as upstream keeps them.
    pub fn key(mut fields: Vec<(String, Value)>) -> Self {
        fields.sort_by(|a, b| a.0.cmp(&b.0));
        PathElement::Key(fields)
    }

    fn rank(&self) -> u8 {
        match self {
            PathElement::Field(_) => 0,
            PathElement::Key(_) => 1,
            PathElement::Value(_) => 2,
            PathElement::Index(_) => 3,
        }
    }

    /// The FieldsV1 object key of this element.
    pub fn serialize(&self) -> String {
        match self {
            PathElement::Field(name) => format!("f:{name}"),
            PathElement::Key(fields) => {
                let mut out = String::from("k:{");
                for (i, (name, value)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_go_string(&mut out, name);
                    out.push(':');
                    out.push_str(&to_go_json(value, true));
                }
                out.push('}');
                out
            }
            PathElement::Value(v) => format!("v:{}", to_go_json(v, true)),
            PathElement::Index(i) => format!("i:{i}"),
        }
    }

    /// Parses a FieldsV1 object key; `Ok(None)` for an unknown element type (skipped, as
    /// upstream does).
    pub fn deserialize(s: &str) -> Result<Option<PathElement>, String> {
        let bytes = s.as_bytes();
        if bytes.len() < 2 {
            return Err("key must be 2 characters long:".to_string());
        }
        if bytes[1] != b':' {
            return Err(format!("missing colon: {s}"));
        }
        let rest = &s[2..];
        match bytes[0] {
            b'f' => Ok(Some(PathElement::Field(rest.to_string()))),
            b'v' => {
                let v: Value = serde_json::from_str(rest).map_err(|e| e.to_string())?;
                Ok(Some(PathElement::Value(v)))
            }
            b'k' => {
                let v: Value = serde_json::from_str(rest).map_err(|e| e.to_string())?;
                let Value::Object(map) = v else {
                    return Err(format!("expected a JSON object in key {s}"));
                };
                Ok(Some(PathElement::key(map.into_iter().collect())))
            }
            b'i' => rest
                .parse::<usize>()
                .map(|i| Some(PathElement::Index(i)))
                .map_err(|e| e.to_string()),
            _ => Ok(None),
        }
    }
}

impl Ord for PathElement {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (PathElement::Field(a), PathElement::Field(b)) => a.cmp(b),
            (PathElement::Key(a), PathElement::Key(b)) => {
                for ((an, av), (bn, bv)) in a.iter().zip(b.iter()) {
                    let c = an.cmp(bn).then_with(|| compare(av, bv));
                    if c != Ordering::Equal {
                        return c;
                    }
                }
                a.len().cmp(&b.len())
            }
            (PathElement::Value(a), PathElement::Value(b)) => compare(a, b),
            (PathElement::Index(a), PathElement::Index(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

impl PartialOrd for PathElement {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for PathElement {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for PathElement {}

impl fmt::Display for PathElement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathElement::Field(name) => write!(f, ".{name}"),
            PathElement::Key(fields) => {
                let parts: Vec<String> = fields
                    .iter()
                    .map(|(k, v)| format!("{k}={}", to_path_string(v)))
                    .collect();
                write!(f, "[{}]", parts.join(","))
            }
            PathElement::Value(v) => write!(f, "[={}]", to_path_string(v)),
            PathElement::Index(i) => write!(f, "[{i}]"),
        }
    }
}

/// A path from the object root.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Path(pub Vec<PathElement>);

impl Path {
    /// A path of field names, e.g. `Path::fields(&["spec", "replicas"])`.
    pub fn fields(names: &[&str]) -> Self {
        Path(names.iter().map(|n| PathElement::field(*n)).collect())
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for pe in &self.0 {
            write!(f, "{pe}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn key_elements_sort_and_serialize() {
        let pe = PathElement::key(vec![
            ("protocol".into(), json!("TCP")),
            ("containerPort".into(), json!(80)),
        ]);
        assert_eq!(pe.serialize(), r#"k:{"containerPort":80,"protocol":"TCP"}"#);
        assert_eq!(pe.to_string(), r#"[containerPort=80,protocol="TCP"]"#);
        let back = PathElement::deserialize(&pe.serialize()).unwrap().unwrap();
        assert_eq!(back, pe);
    }

    #[test]
    fn element_kinds_order_and_parse() {
        let f = PathElement::field("z");
        let k = PathElement::key(vec![("name".into(), json!("a"))]);
        let v = PathElement::Value(json!("a"));
        assert!(f < k && k < v && v < PathElement::Index(0));
        assert_eq!(
            PathElement::deserialize("v:\"x\"").unwrap(),
            Some(PathElement::Value(json!("x")))
        );
        assert_eq!(
            PathElement::deserialize("i:3").unwrap(),
            Some(PathElement::Index(3))
        );
        assert_eq!(PathElement::deserialize("x:3").unwrap(), None);
        assert!(PathElement::deserialize("f").is_err());
        assert!(PathElement::deserialize("k:[1]").is_err());
        let p = Path(vec![
            PathElement::field("spec"),
            PathElement::field("containers"),
            PathElement::key(vec![("name".into(), json!("nginx"))]),
            PathElement::field("image"),
        ]);
        assert_eq!(p.to_string(), r#".spec.containers[name="nginx"].image"#);
    }
}
