//! The structural schema of a CRD version: the type skeleton that drives pruning, defaulting,
//! list-type checks, embedded resources and CEL (mirrors apiextensions-apiserver
//! pkg/apiserver/schema/{structural,convert}.go).

use crate::structural_check::validate_structural;
use apiserver_apimachinery::{FieldError, FieldPath};
use serde_json::Value;
use std::collections::BTreeMap;

/// `additionalProperties` of a structural node.
#[derive(Clone, Debug, PartialEq)]
pub enum AdditionalProperties {
    /// `additionalProperties: true|false`.
    Bool(bool),
    /// `additionalProperties: {schema}`.
    Schema(Box<Structural>),
}

/// One `x-kubernetes-validations` rule.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ValidationRule {
    pub rule: String,
    pub message: String,
    pub message_expression: String,
    pub reason: Option<String>,
    pub field_path: String,
    pub optional_old_self: Option<bool>,
}

/// A structural schema node. `raw` keeps the JSONSchemaProps it came from, which value
/// validation (the OpenAPI validator upstream) and OpenAPI publishing walk.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Structural {
    /// `type`, empty when unspecified.
    pub type_: String,
    pub description: String,
    pub nullable: bool,
    pub default: Option<Value>,
    pub format: String,
    pub enum_: Vec<Value>,
    pub properties: BTreeMap<String, Structural>,
    pub items: Option<Box<Structural>>,
    pub additional_properties: Option<AdditionalProperties>,
    pub preserve_unknown_fields: bool,
    pub embedded_resource: bool,
    pub int_or_string: bool,
    pub list_type: Option<String>,
    pub list_map_keys: Vec<String>,
    pub map_type: Option<String>,
    pub x_validations: Vec<ValidationRule>,
    pub raw: Value,
}

/// Keys of JSONSchemaProps that this crate understands; anything else in a schema is rejected
/// by the typed decoding upstream (unknown field), which we report the same way.
const KNOWN_KEYS: &[&str] = &[
    "id",
    "$schema",
    "$ref",
    "description",
    "type",
    "format",
    "title",
    "default",
    "maximum",
    "exclusiveMaximum",
    "minimum",
    "exclusiveMinimum",
    "maxLength",
    "minLength",
    "pattern",
    "maxItems",
    "minItems",
    "uniqueItems",
    "multipleOf",
    "enum",
    "maxProperties",
    "minProperties",
    "required",
    "items",
    "allOf",
    "oneOf",
    "anyOf",
    "not",
    "properties",
    "additionalProperties",
    "patternProperties",
    "dependencies",
    "additionalItems",
    "definitions",
    "externalDocs",
    "example",
    "nullable",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-embedded-resource",
    "x-kubernetes-int-or-string",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-list-type",
    "x-kubernetes-map-type",
    "x-kubernetes-validations",
];

/// Whether `key` is a JSONSchemaProps field.
pub fn is_known_schema_key(key: &str) -> bool {
    KNOWN_KEYS.contains(&key)
}

fn str_of(v: &Value, k: &str) -> String {
    v.get(k).and_then(Value::as_str).unwrap_or("").to_string()
}

fn bool_of(v: &Value, k: &str) -> bool {
    v.get(k).and_then(Value::as_bool).unwrap_or(false)
}

impl Structural {
    /// Converts a JSONSchemaProps value and checks it is structural; errors are rooted at
    /// `openAPIV3Schema` (use [`Structural::from_json_at`] for a CRD path).
    pub fn from_json(schema: &Value) -> Result<Structural, Vec<FieldError>> {
        Self::from_json_at(schema, &FieldPath::root("openAPIV3Schema"))
    }

    /// As [`Structural::from_json`], with errors rooted at `path`.
    pub fn from_json_at(schema: &Value, path: &FieldPath) -> Result<Structural, Vec<FieldError>> {
        let s =
            Self::convert(schema).map_err(|msg| vec![FieldError::invalid_str(path, "", msg)])?;
        let errs = validate_structural(path, &s);
        if errs.is_empty() { Ok(s) } else { Err(errs) }
    }

    /// Converts without the structural checks (upstream `NewStructural`): only errors on
    /// constructs the structural model cannot hold.
    pub fn convert(schema: &Value) -> Result<Structural, String> {
        let Some(obj) = schema.as_object() else {
            return Err("OpenAPIV3Schema must be an object".to_string());
        };
        for (k, msg) in [
            ("id", "OpenAPIV3Schema 'id' is not supported"),
            ("$schema", "OpenAPIV3Schema 'schema' is not supported"),
            ("$ref", "OpenAPIV3Schema '$ref' is not supported"),
            (
                "patternProperties",
                "OpenAPIV3Schema 'patternProperties' is not supported",
            ),
            (
                "dependencies",
                "OpenAPIV3Schema 'dependencies' is not supported",
            ),
            (
                "additionalItems",
                "OpenAPIV3Schema 'additionalItems' is not supported",
            ),
            (
                "definitions",
                "OpenAPIV3Schema 'definitions' is not supported",
            ),
        ] {
            if obj.get(k).is_some_and(|v| !is_empty_json(v)) {
                return Err(msg.to_string());
            }
        }
        let mut s = Structural {
            type_: str_of(schema, "type"),
            description: str_of(schema, "description"),
            nullable: bool_of(schema, "nullable"),
            default: obj.get("default").cloned(),
            format: str_of(schema, "format"),
            enum_: obj
                .get("enum")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
            preserve_unknown_fields: bool_of(schema, "x-kubernetes-preserve-unknown-fields"),
            embedded_resource: bool_of(schema, "x-kubernetes-embedded-resource"),
            int_or_string: bool_of(schema, "x-kubernetes-int-or-string"),
            list_type: obj
                .get("x-kubernetes-list-type")
                .and_then(Value::as_str)
                .map(str::to_string),
            list_map_keys: string_list(obj.get("x-kubernetes-list-map-keys")),
            map_type: obj
                .get("x-kubernetes-map-type")
                .and_then(Value::as_str)
                .map(str::to_string),
            raw: schema.clone(),
            ..Default::default()
        };
        if obj.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(false)) {
            return Err(
                "internal error: 'x-kubernetes-preserve-unknown-fields' must be true or undefined"
                    .to_string(),
            );
        }
        if let Some(items) = obj.get("items") {
            if items.is_array() {
                return Err("OpenAPIV3Schema 'items' must be a schema, but is an array".to_string());
            }
            s.items = Some(Box::new(Self::convert(items)?));
        }
        if let Some(props) = obj.get("properties").and_then(Value::as_object) {
            for (k, v) in props {
                s.properties.insert(k.clone(), Self::convert(v)?);
            }
        }
        match obj.get("additionalProperties") {
            Some(Value::Bool(b)) => s.additional_properties = Some(AdditionalProperties::Bool(*b)),
            Some(v @ Value::Object(_)) => {
                s.additional_properties =
                    Some(AdditionalProperties::Schema(Box::new(Self::convert(v)?)))
            }
            _ => {}
        }
        if let Some(rules) = obj
            .get("x-kubernetes-validations")
            .and_then(Value::as_array)
        {
            for r in rules {
                s.x_validations.push(ValidationRule {
                    rule: str_of(r, "rule"),
                    message: str_of(r, "message"),
                    message_expression: str_of(r, "messageExpression"),
                    reason: r.get("reason").and_then(Value::as_str).map(str::to_string),
                    field_path: str_of(r, "fieldPath"),
                    optional_old_self: r.get("optionalOldSelf").and_then(Value::as_bool),
                });
            }
        }
        Ok(s)
    }

    /// The schema for a property of an object node: `properties[k]`, else the
    /// `additionalProperties` schema.
    pub fn field(&self, k: &str) -> Option<&Structural> {
        self.properties
            .get(k)
            .or(match &self.additional_properties {
                Some(AdditionalProperties::Schema(s)) => Some(s),
                _ => None,
            })
    }

    /// The `additionalProperties` schema, if any.
    pub fn additional_schema(&self) -> Option<&Structural> {
        match &self.additional_properties {
            Some(AdditionalProperties::Schema(s)) => Some(s),
            _ => None,
        }
    }

    /// Walks a dotted path (`.spec.replicas`, `spec.replicas`) down properties.
    pub fn lookup_path(&self, path: &str) -> Option<&Structural> {
        let mut cur = self;
        for seg in path.trim_start_matches('.').split('.') {
            if seg.is_empty() {
                continue;
            }
            cur = cur.field(seg)?;
        }
        Some(cur)
    }
}

/// Whether a JSON value is the zero value of its Go field (absent-equivalent).
pub(crate) fn is_empty_json(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::Number(_) => false,
    }
}

pub(crate) fn string_list(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn converts_nested_schema() {
        let s = Structural::from_json(&json!({
            "type": "object",
            "properties": {
                "spec": {"type": "object", "properties": {
                    "replicas": {"type": "integer", "default": 1},
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                    "ports": {"type": "array", "x-kubernetes-list-type": "map",
                        "x-kubernetes-list-map-keys": ["name"],
                        "items": {"type": "object", "required": ["name"],
                            "properties": {"name": {"type": "string"}}}}
                }}
            }
        }))
        .unwrap();
        let spec = &s.properties["spec"];
        assert_eq!(spec.properties["replicas"].default, Some(json!(1)));
        assert_eq!(
            spec.field("labels")
                .unwrap()
                .additional_schema()
                .unwrap()
                .type_,
            "string"
        );
        let ports = s.lookup_path(".spec.ports").unwrap();
        assert_eq!(ports.list_type.as_deref(), Some("map"));
        assert_eq!(ports.list_map_keys, vec!["name"]);
        assert!(s.lookup_path("spec.nope").is_none());
    }

    #[test]
    fn rejects_unsupported_constructs() {
        let err = Structural::from_json(&json!({"type": "object", "items": [{"type": "string"}]}))
            .unwrap_err();
        assert_eq!(
            err[0].to_string(),
            "openAPIV3Schema: Invalid value: \"\": OpenAPIV3Schema 'items' must be a schema, but is an array"
        );
        assert!(Structural::convert(&json!({"$ref": "#/x"})).is_err());
    }
}
