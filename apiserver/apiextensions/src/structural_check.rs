//! The "must be structural" rules with upstream's messages and paths (mirrors
//! apiextensions-apiserver pkg/apiserver/schema/{validation,complete}.go).

use crate::structural::{AdditionalProperties, Structural, is_empty_json};
use apiserver_apimachinery::{FieldError, FieldPath};
use serde_json::Value;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    Root,
    Item,
    Field,
}

/// Checks the structural invariants and completeness of `s`, sorted by message as upstream.
pub fn validate_structural(path: &FieldPath, s: &Structural) -> Vec<FieldError> {
    let mut errs = Vec::new();
    invariants(s, Level::Root, path, &mut errs);
    completeness(&s.raw, s, path, path, &mut errs);
    errs.sort_by_key(|e| e.to_string());
    errs
}

fn invariants(s: &Structural, lvl: Level, p: &FieldPath, errs: &mut Vec<FieldError>) {
    if s.type_ == "array" && s.items.is_none() {
        errs.push(FieldError::required(&p.child("items"), "must be specified"));
    }
    if let Some(items) = &s.items {
        invariants(items, Level::Item, &p.child("items"), errs);
    }
    for (k, v) in &s.properties {
        invariants(v, Level::Field, &p.child("properties").key(k), errs);
    }
    if let Some(ap) = &s.additional_properties {
        if lvl == Level::Root {
            errs.push(FieldError::forbidden(
                &p.child("additionalProperties"),
                "must not be used at the root",
            ));
        }
        if let AdditionalProperties::Schema(ap) = ap {
            invariants(ap, Level::Field, &p.child("additionalProperties"), errs);
        }
    }
    if s.int_or_string && s.preserve_unknown_fields {
        errs.push(FieldError::invalid(
            &p.child("x-kubernetes-preserve-unknown-fields"),
            true,
            "must be false if x-kubernetes-int-or-string is true",
        ));
    }
    if s.int_or_string && s.embedded_resource {
        errs.push(FieldError::invalid(
            &p.child("x-kubernetes-embedded-resource"),
            true,
            "must be false if x-kubernetes-int-or-string is true",
        ));
    }
    let skip_any_of = is_int_or_string_any_of(s.raw.get("anyOf"));
    let skip_first_all_of_any_of = s
        .raw
        .get("allOf")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .is_some_and(|f| is_int_or_string_any_of(f.get("anyOf")));
    value_validation(&s.raw, skip_any_of, skip_first_all_of_any_of, p, errs);

    let check_metadata = lvl == Level::Root || s.embedded_resource;
    if s.embedded_resource && s.type_ != "object" {
        if s.type_.is_empty() {
            errs.push(FieldError::required(
                &p.child("type"),
                "must be object if x-kubernetes-embedded-resource is true",
            ));
        } else {
            errs.push(FieldError::invalid_str(
                &p.child("type"),
                &s.type_,
                "must be object if x-kubernetes-embedded-resource is true",
            ));
        }
    } else if s.type_.is_empty() && !s.int_or_string && !s.preserve_unknown_fields {
        let msg = match lvl {
            Level::Root => "must not be empty at the root",
            Level::Item => "must not be empty for specified array items",
            Level::Field => "must not be empty for specified object fields",
        };
        errs.push(FieldError::required(&p.child("type"), msg));
    }
    if s.embedded_resource && s.additional_properties.is_some() {
        errs.push(FieldError::forbidden(
            &p.child("additionalProperties"),
            "must not be used if x-kubernetes-embedded-resource is set",
        ));
    }
    if lvl == Level::Root && !s.type_.is_empty() && s.type_ != "object" {
        errs.push(FieldError::invalid_str(
            &p.child("type"),
            &s.type_,
            "must be object at the root",
        ));
    }
    for k in ["kind", "apiVersion"] {
        if let Some(f) = s.properties.get(k)
            && check_metadata
            && f.type_ != "string"
        {
            errs.push(FieldError::invalid_str(
                &p.child("properties").key(k).child("type"),
                &f.type_,
                "must be string",
            ));
        }
    }
    if let Some(m) = s.properties.get("metadata") {
        let mp = p.child("properties").key("metadata");
        if check_metadata && m.type_ != "object" {
            errs.push(FieldError::invalid_str(
                &mp.child("type"),
                &m.type_,
                "must be object",
            ));
        }
        if lvl == Level::Root && !metadata_only_names(&m.raw) {
            errs.push(FieldError::forbidden(
                &mp,
                "must not specify anything other than name and generateName, but metadata is implicitly specified",
            ));
        }
    }
    if s.embedded_resource && !s.preserve_unknown_fields && s.properties.is_empty() {
        errs.push(FieldError::required(
            &p.child("properties"),
            "must not be empty if x-kubernetes-embedded-resource is true without x-kubernetes-preserve-unknown-fields",
        ));
    }
}

/// Root `metadata` may only restrict `name` and `generateName` (type and default aside).
fn metadata_only_names(raw: &Value) -> bool {
    let Some(o) = raw.as_object() else {
        return true;
    };
    o.iter().all(|(k, v)| match k.as_str() {
        "type" | "default" => true,
        "properties" => v.as_object().is_none_or(|props| {
            props.is_empty()
                || (props.len() <= 2 && props.keys().all(|k| k == "name" || k == "generateName"))
        }),
        _ => is_empty_json(v),
    })
}

fn is_int_or_string_any_of(v: Option<&Value>) -> bool {
    let Some(a) = v.and_then(Value::as_array) else {
        return false;
    };
    a.len() == 2
        && a[0].as_object().is_some_and(|o| o.len() == 1)
        && a[0].get("type") == Some(&Value::from("integer"))
        && a[1].as_object().is_some_and(|o| o.len() == 1)
        && a[1].get("type") == Some(&Value::from("string"))
}

/// Checks the logical junctors (allOf/anyOf/oneOf/not) of a schema node.
fn value_validation(
    raw: &Value,
    skip_any_of: bool,
    skip_first_all_of_any_of: bool,
    p: &FieldPath,
    errs: &mut Vec<FieldError>,
) {
    if !skip_any_of {
        for (i, n) in arr(raw, "anyOf").iter().enumerate() {
            nested(n, false, false, &p.child("anyOf").index(i), errs);
        }
    }
    for (i, n) in arr(raw, "allOf").iter().enumerate() {
        let skip = skip_first_all_of_any_of && i == 0;
        nested(n, skip, false, &p.child("allOf").index(i), errs);
    }
    for (i, n) in arr(raw, "oneOf").iter().enumerate() {
        nested(n, false, false, &p.child("oneOf").index(i), errs);
    }
    if let Some(n) = raw.get("not") {
        nested(n, false, false, &p.child("not"), errs);
    }
    if let Some(pat) = raw.get("pattern").and_then(Value::as_str)
        && !pat.is_empty()
        && let Err(e) = crate::validation::compile_pattern(pat)
    {
        errs.push(FieldError::invalid_str(
            &p.child("pattern"),
            pat,
            format!("must be a valid regular expression, but isn't: {e}"),
        ));
    }
}

fn arr<'a>(v: &'a Value, k: &str) -> &'a [Value] {
    v.get(k)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn nested(
    raw: &Value,
    skip_any_of: bool,
    skip_all_of_any_of: bool,
    p: &FieldPath,
    errs: &mut Vec<FieldError>,
) {
    value_validation(raw, skip_any_of, skip_all_of_any_of, p, errs);
    if let Some(items) = raw.get("items").filter(|v| v.is_object()) {
        nested(items, false, false, &p.child("items"), errs);
    }
    if let Some(props) = raw.get("properties").and_then(Value::as_object) {
        for (k, v) in props {
            nested(v, false, false, &p.child("properties").key(k), errs);
        }
    }
    let set = |k: &str| raw.get(k).is_some_and(|v| !is_empty_json(v));
    if set("type") {
        errs.push(FieldError::forbidden(
            &p.child("type"),
            "must be empty to be structural",
        ));
    }
    if raw.get("additionalProperties").is_some() {
        errs.push(FieldError::forbidden(
            &p.child("additionalProperties"),
            "must be undefined to be structural",
        ));
    }
    let undefined = |k: &str| raw.get(k).is_some_and(|v| !v.is_null());
    for (k, msg) in [
        ("default", "must be undefined to be structural"),
        ("title", "must be empty to be structural"),
        ("description", "must be empty to be structural"),
        ("nullable", "must be false to be structural"),
        ("externalDocs", "must be undefined to be structural"),
        (
            "x-kubernetes-preserve-unknown-fields",
            "must be false to be structural",
        ),
        (
            "x-kubernetes-embedded-resource",
            "must be false to be structural",
        ),
        (
            "x-kubernetes-int-or-string",
            "must be false to be structural",
        ),
        (
            "x-kubernetes-list-map-keys",
            "must be empty to be structural",
        ),
        (
            "x-kubernetes-list-type",
            "must be undefined to be structural",
        ),
        (
            "x-kubernetes-map-type",
            "must be undefined to be structural",
        ),
        ("x-kubernetes-validations", "must be empty to be structural"),
    ] {
        let hit = match k {
            "default" | "externalDocs" | "x-kubernetes-list-type" | "x-kubernetes-map-type" => {
                undefined(k)
            }
            _ => set(k),
        };
        if hit {
            errs.push(FieldError::forbidden(&p.child(k), msg));
        }
    }
    if raw
        .get("properties")
        .and_then(Value::as_object)
        .is_some_and(|p| p.contains_key("metadata"))
    {
        errs.push(FieldError::forbidden(
            &p.child("properties").key("metadata"),
            "must not be specified in a nested context",
        ));
    }
}

/// Every field or array item mentioned in a value validation must exist structurally.
fn completeness(
    raw: &Value,
    s: &Structural,
    sp: &FieldPath,
    vp: &FieldPath,
    errs: &mut Vec<FieldError>,
) {
    if let Some(n) = raw.get("not") {
        nested_completeness(n, Some(s), sp, &vp.child("not"), errs);
    }
    for k in ["allOf", "anyOf", "oneOf"] {
        for (i, n) in arr(raw, k).iter().enumerate() {
            nested_completeness(n, Some(s), sp, &vp.child(k).index(i), errs);
        }
    }
}

fn nested_completeness(
    raw: &Value,
    s: Option<&Structural>,
    sp: &FieldPath,
    vp: &FieldPath,
    errs: &mut Vec<FieldError>,
) {
    let Some(s) = s else {
        errs.push(FieldError::required(
            sp,
            format!("because it is defined in {vp}"),
        ));
        return;
    };
    completeness(raw, s, sp, vp, errs);
    if let Some(items) = raw.get("items").filter(|v| v.is_object()) {
        nested_completeness(
            items,
            s.items.as_deref(),
            &sp.child("items"),
            &vp.child("items"),
            errs,
        );
    }
    if let Some(props) = raw.get("properties").and_then(Value::as_object) {
        for (k, v) in props {
            let vpk = vp.child("properties").key(k);
            match s.properties.get(k) {
                None => errs.push(FieldError::required(
                    &sp.child("properties").key(k),
                    format!("because it is defined in {vpk}"),
                )),
                Some(f) => {
                    nested_completeness(v, Some(f), &sp.child("properties").key(k), &vpk, errs)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn errs(v: Value) -> Vec<String> {
        match Structural::from_json_at(&v, &FieldPath::root("spec.validation.openAPIV3Schema")) {
            Ok(_) => vec![],
            Err(e) => e.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn missing_types_are_reported_with_upstream_messages() {
        let e = errs(json!({"type": "object", "properties": {
            "spec": {"properties": {"a": {"type": "string"}}},
            "list": {"type": "array"},
        }}));
        assert_eq!(
            e,
            vec![
                "spec.validation.openAPIV3Schema.properties[list].items: Required value: must be specified",
                "spec.validation.openAPIV3Schema.properties[spec].type: Required value: must not be empty for specified object fields",
            ]
        );
        assert_eq!(
            errs(json!({"properties": {}})),
            vec![
                "spec.validation.openAPIV3Schema.type: Required value: must not be empty at the root"
            ]
        );
    }

    #[test]
    fn value_validations_must_not_carry_structure() {
        let e = errs(
            json!({"type": "object", "properties": {"a": {"type": "string"}},
            "anyOf": [{"type": "object", "properties": {"b": {"description": "x"}}}]}),
        );
        assert_eq!(
            e,
            vec![
                "spec.validation.openAPIV3Schema.anyOf[0].properties[b].description: Forbidden: must be empty to be structural",
                "spec.validation.openAPIV3Schema.anyOf[0].type: Forbidden: must be empty to be structural",
                "spec.validation.openAPIV3Schema.properties[b]: Required value: because it is defined in spec.validation.openAPIV3Schema.anyOf[0].properties[b]",
            ]
        );
        // int-or-string's anyOf pattern is allowed.
        assert!(
            errs(
                json!({"type": "object", "properties": {"p": {"x-kubernetes-int-or-string": true,
                "anyOf": [{"type": "integer"}, {"type": "string"}]}}})
            )
            .is_empty()
        );
    }

    #[test]
    fn metadata_and_embedded_rules() {
        let e = errs(json!({"type": "object", "properties": {
            "metadata": {"type": "object", "properties": {"labels": {"type": "object"}}},
            "e": {"x-kubernetes-embedded-resource": true, "type": "object"},
        }}));
        assert_eq!(
            e,
            vec![
                "spec.validation.openAPIV3Schema.properties[e].properties: Required value: must not be empty if x-kubernetes-embedded-resource is true without x-kubernetes-preserve-unknown-fields",
                "spec.validation.openAPIV3Schema.properties[metadata]: Forbidden: must not specify anything other than name and generateName, but metadata is implicitly specified",
            ]
        );
        assert!(
            errs(
                json!({"type": "object", "properties": {"metadata": {"type": "object",
                "properties": {"name": {"type": "string", "maxLength": 10}}}}})
            )
            .is_empty()
        );
    }
}
