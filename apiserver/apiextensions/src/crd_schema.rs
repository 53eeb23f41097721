//! Static validation of a CRD version's `openAPIV3Schema`: OpenAPI v3 restrictions, list/map
//! types, `x-kubernetes-validations` (compiled), structural rules and defaults (mirrors
//! apiextensions-apiserver pkg/apis/apiextensions/validation/validation.go,
//! `validateCustomResourceDefinitionValidation` and `ValidateCustomResourceDefinitionOpenAPISchema`).

use crate::cel::crd_rules::{CelContext, compile_rules};
use crate::structural::Structural;
use crate::validation::{render_value, validate_against_schema};
use apiserver_apimachinery::{FieldError, FieldPath};
use serde_json::Value;

const OPENAPI_V3_TYPES: [&str; 6] = ["array", "boolean", "integer", "number", "object", "string"];
const ALLOWED_AT_ROOT_WITH_STATUS: &[&str] = &[
    "description",
    "type",
    "format",
    "title",
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
    "required",
    "items",
    "properties",
    "externalDocs",
    "example",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-validations",
];
const ALLOWED_NAMES_AT_ROOT: &str = "[Description Type Format Title Maximum ExclusiveMaximum Minimum ExclusiveMinimum MaxLength MinLength Pattern MaxItems MinItems UniqueItems MultipleOf Required Items Properties ExternalDocs Example XPreserveUnknownFields XValidations]";
const REASONS: [&str; 4] = [
    "FieldValueDuplicate",
    "FieldValueForbidden",
    "FieldValueInvalid",
    "FieldValueRequired",
];

#[derive(Clone, Default)]
struct Ctx {
    forbid_defaults: Option<String>,
    inside_meta: bool,
    uncorrelatable: Option<FieldPath>,
    cel: CelContext,
}

/// Validates `validation.openAPIV3Schema` at `path` (`spec.validation` or
/// `spec.versions[i].schema`); `status_enabled` applies the root restrictions of the status
/// subresource; `suppress_cost` skips the per-expression CEL cost limits (an update that leaves
/// this schema unchanged).
pub fn validate_crd_schema(
    schema: &Value,
    status_enabled: bool,
    path: &FieldPath,
    suppress_cost: bool,
) -> Vec<FieldError> {
    let sp = path.child("openAPIV3Schema");
    let mut errs = Vec::new();
    if status_enabled && let Some(o) = schema.as_object() {
        for (k, v) in o {
            if crate::structural::is_empty_json(v) {
                continue;
            }
            if k == "type" {
                if v.as_str() != Some("object") {
                    errs.push(FieldError::invalid(
                        &path.child("openAPIV3Schema.type"),
                        render_value(v),
                        r#"only "object" is allowed as the type at the root of the schema if the status subresource is enabled"#,
                    ));
                    break;
                }
                continue;
            }
            if !ALLOWED_AT_ROOT_WITH_STATUS.contains(&k.as_str()) {
                errs.push(FieldError::invalid(
                    &sp,
                    schema.to_string(),
                    format!("only {ALLOWED_NAMES_AT_ROOT} fields are allowed at the root of the schema if the status subresource is enabled"),
                ));
                break;
            }
        }
    }
    if schema.get("nullable").and_then(Value::as_bool) == Some(true) {
        errs.push(FieldError::forbidden(
            &path.child("openAPIV3Schema.nullable"),
            "nullable cannot be true at the root",
        ));
    }
    let mut init_errs = Vec::new();
    let mut structural_ok = None;
    match Structural::convert(schema) {
        Err(msg) => init_errs.push(FieldError::invalid_str(&sp, "", msg)),
        Ok(s) => {
            let serrs = crate::structural_check::validate_structural(&sp, &s);
            if serrs.is_empty() {
                let derrs = validate_defaults(&s, &sp, false);
                if derrs.is_empty() {
                    structural_ok = Some(s);
                }
                errs.extend(derrs);
            } else {
                errs.extend(serrs);
            }
        }
    }
    let root = Ctx {
        cel: CelContext::root(suppress_cost),
        ..Ctx::default()
    };
    open_api_schema(schema, &sp, &root, true, structural_ok.is_some(), &mut errs);
    if structural_ok.is_some() {
        errs.extend(root.cel.total.borrow().errors(&sp));
    }
    if errs.is_empty() {
        errs.extend(init_errs);
    }
    errs
}

fn open_api_schema(
    s: &Value,
    p: &FieldPath,
    ctx: &Ctx,
    is_root: bool,
    cel: bool,
    errs: &mut Vec<FieldError>,
) {
    let Some(o) = s.as_object() else { return };
    let before = errs.len();
    let typ = o.get("type").and_then(Value::as_str).unwrap_or("");
    if !typ.is_empty() && !OPENAPI_V3_TYPES.contains(&typ) {
        errs.push(FieldError::not_supported(
            &p.child("type"),
            typ,
            &OPENAPI_V3_TYPES,
        ));
    }
    if o.contains_key("default")
        && let Some(reason) = &ctx.forbid_defaults
    {
        let detail = if reason.is_empty() {
            "must not be set".to_string()
        } else {
            format!("must not be set {reason}")
        };
        errs.push(FieldError::forbidden(&p.child("default"), detail));
    }
    for (k, msg) in [
        ("id", "id is not supported"),
        ("additionalItems", "additionalItems is not supported"),
        ("patternProperties", "patternProperties is not supported"),
        ("definitions", "definitions is not supported"),
        ("dependencies", "dependencies is not supported"),
        ("$ref", "$ref is not supported"),
    ] {
        if o.get(k)
            .is_some_and(|v| !crate::structural::is_empty_json(v))
        {
            errs.push(FieldError::forbidden(&p.child(k), msg));
        }
    }
    if typ == "null" {
        errs.push(FieldError::forbidden(
            &p.child("type"),
            "type cannot be set to null, use nullable as an alternative",
        ));
    }
    if o.get("items").is_some_and(Value::is_array) {
        errs.push(FieldError::forbidden(
            &p.child("items"),
            "items must be a schema object and not an array",
        ));
    }
    let embedded = o
        .get("x-kubernetes-embedded-resource")
        .and_then(Value::as_bool)
        == Some(true);
    if ctx.inside_meta && embedded {
        errs.push(FieldError::forbidden(
            &p.child("x-kubernetes-embedded-resource"),
            "must not be used inside of resource meta",
        ));
    }
    if o.get("uniqueItems").and_then(Value::as_bool) == Some(true) {
        errs.push(FieldError::forbidden(
            &p.child("uniqueItems"),
            "uniqueItems cannot be set to true since the runtime complexity becomes quadratic",
        ));
    }
    let props = o.get("properties").and_then(Value::as_object);
    if let Some(ap) = o.get("additionalProperties") {
        if props.is_some_and(|p| !p.is_empty()) && (ap == &Value::Bool(false) || ap.is_object()) {
            errs.push(FieldError::forbidden(
                &p.child("additionalProperties"),
                "additionalProperties and properties are mutual exclusive",
            ));
        }
        let mut sub = ctx.clone();
        sub.cel = ctx.cel.child(s);
        if ctx.inside_meta {
            sub.forbid_defaults =
                Some("inside additionalProperties applying to object metadata".into());
        }
        open_api_schema(ap, &p.child("additionalProperties"), &sub, false, cel, errs);
    }
    let map_type = o.get("x-kubernetes-map-type").and_then(Value::as_str);
    if let Some(props) = props {
        for (k, v) in props {
            let mut sub = ctx.clone();
            sub.cel = ctx.cel.child(s);
            if map_type == Some("atomic") && sub.uncorrelatable.is_none() {
                sub.uncorrelatable = Some(p.clone());
            }
            if (is_root || embedded) && ["metadata", "kind", "apiVersion"].contains(&k.as_str()) {
                sub.inside_meta = true;
                if is_root {
                    sub.forbid_defaults = Some(format!("in top-level {k}"));
                }
            }
            open_api_schema(v, &p.child("properties").key(k), &sub, false, cel, errs);
        }
    }
    if let Some(n) = o.get("not") {
        open_api_schema(n, &p.child("not"), ctx, false, false, errs);
    }
    for k in ["allOf", "oneOf", "anyOf"] {
        for (i, v) in o
            .get(k)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            open_api_schema(v, &p.child(k).index(i), ctx, false, false, errs);
        }
    }
    let list_type = o.get("x-kubernetes-list-type").and_then(Value::as_str);
    if let Some(items) = o.get("items").filter(|v| v.is_object()) {
        let mut sub = ctx.clone();
        sub.cel = ctx.cel.child(s);
        if list_type != Some("map") && sub.uncorrelatable.is_none() {
            sub.uncorrelatable = Some(p.clone());
        }
        open_api_schema(items, &p.child("items"), &sub, false, cel, errs);
    }
    if o.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(false)) {
        errs.push(FieldError::invalid(
            &p.child("x-kubernetes-preserve-unknown-fields"),
            false,
            "must be true or undefined",
        ));
    }
    list_and_map_types(o, typ, list_type, map_type, p, errs);
    x_validations(o, p, errs);
    if cel && errs.len() == before && o.contains_key("x-kubernetes-validations") {
        compile_rules(
            s,
            p,
            is_root || embedded,
            ctx.uncorrelatable.as_ref(),
            &ctx.cel,
            errs,
        );
    }
}

fn type_err(p: &FieldPath, typ: &str, msg: &str) -> FieldError {
    if typ.is_empty() {
        FieldError::required(&p.child("type"), msg)
    } else {
        FieldError::invalid_str(&p.child("type"), typ, msg)
    }
}

fn list_and_map_types(
    o: &serde_json::Map<String, Value>,
    typ: &str,
    list_type: Option<&str>,
    map_type: Option<&str>,
    p: &FieldPath,
    errs: &mut Vec<FieldError>,
) {
    if let Some(mt) = map_type {
        if typ != "object" {
            errs.push(type_err(
                p,
                typ,
                "must be object if x-kubernetes-map-type is specified",
            ));
        }
        if mt != "atomic" && mt != "granular" {
            errs.push(FieldError::not_supported(
                &p.child("x-kubernetes-map-type"),
                mt,
                &["atomic", "granular"],
            ));
        }
    }
    let items = o.get("items").filter(|v| v.is_object());
    if let Some(lt) = list_type {
        if typ != "array" {
            errs.push(type_err(
                p,
                typ,
                "must be array if x-kubernetes-list-type is specified",
            ));
        } else if lt == "set"
            && let Some(is) = items
        {
            let ityp = is.get("type").and_then(Value::as_str).unwrap_or("");
            let ilt = is.get("x-kubernetes-list-type").and_then(Value::as_str);
            let imt = is.get("x-kubernetes-map-type").and_then(Value::as_str);
            if (ityp == "array" && ilt.is_some_and(|l| l != "atomic"))
                || (ityp == "object" && imt != Some("atomic"))
            {
                let k = if ityp == "array" {
                    "x-kubernetes-list-type"
                } else {
                    "x-kubernetes-map-type"
                };
                errs.push(FieldError::invalid(
                    &p.child("items").child(k),
                    ilt.map(apiserver_apimachinery::field::show_str)
                        .unwrap_or_else(|| "null".into()),
                    "must be atomic as item of a list with x-kubernetes-list-type=set",
                ));
            }
        }
        if !["atomic", "set", "map"].contains(&lt) {
            errs.push(FieldError::not_supported(
                &p.child("x-kubernetes-list-type"),
                lt,
                &["atomic", "set", "map"],
            ));
        }
    }
    let keys = crate::structural::string_list(o.get("x-kubernetes-list-map-keys"));
    if !keys.is_empty() {
        match list_type {
            None => errs.push(FieldError::required(
                &p.child("x-kubernetes-list-type"),
                "must be map if x-kubernetes-list-map-keys is non-empty",
            )),
            Some("map") => {}
            Some(lt) => errs.push(FieldError::invalid_str(
                &p.child("x-kubernetes-list-type"),
                lt,
                "must be map if x-kubernetes-list-map-keys is non-empty",
            )),
        }
    }
    if list_type != Some("map") {
        return;
    }
    if keys.is_empty() {
        errs.push(FieldError::required(
            &p.child("x-kubernetes-list-map-keys"),
            "must not be empty if x-kubernetes-list-type is map",
        ));
    }
    let Some(is) = items else {
        errs.push(FieldError::required(
            &p.child("items"),
            "must have a schema if x-kubernetes-list-type is map",
        ));
        return;
    };
    let ityp = is.get("type").and_then(Value::as_str).unwrap_or("");
    if ityp != "object" {
        errs.push(FieldError::invalid_str(
            &p.child("items").child("type"),
            ityp,
            "must be object if parent array's x-kubernetes-list-type is map",
        ));
        return;
    }
    let iprops = is.get("properties").and_then(Value::as_object);
    let required = crate::structural::string_list(is.get("required"));
    let keys_json = Value::from(keys.clone()).to_string();
    let mut seen = std::collections::HashSet::new();
    for k in &keys {
        match iprops.and_then(|ps| ps.get(k)) {
            Some(ks) => {
                let kt = ks.get("type").and_then(Value::as_str).unwrap_or("");
                if kt == "array" || kt == "object" {
                    errs.push(FieldError::invalid_str(
                        &p.child("items").child("properties").key(k).child("type"),
                        ityp,
                        "must be a scalar type if parent array's x-kubernetes-list-type is map",
                    ));
                }
                if !required.contains(k) && ks.get("default").is_none() {
                    errs.push(FieldError::required(
                        &p.child("items").child("properties").key(k).child("default"),
                        "this property is in x-kubernetes-list-map-keys, so it must have a default or be a required property",
                    ));
                }
                if ks.get("nullable").and_then(Value::as_bool) == Some(true) {
                    errs.push(FieldError::forbidden(
                        &p.child("items")
                            .child("properties")
                            .key(k)
                            .child("nullable"),
                        "this property is in x-kubernetes-list-map-keys, so it cannot be nullable",
                    ));
                }
            }
            None => errs.push(FieldError::invalid(
                &p.child("x-kubernetes-list-map-keys"),
                &keys_json,
                "entries must all be names of item properties",
            )),
        }
        if !seen.insert(k) {
            errs.push(FieldError::invalid(
                &p.child("x-kubernetes-list-map-keys"),
                &keys_json,
                "must not contain duplicate entries",
            ));
        }
    }
    if is.get("nullable").and_then(Value::as_bool) == Some(true) {
        errs.push(FieldError::forbidden(
            &p.child("items").child("nullable"),
            "cannot be nullable when x-kubernetes-list-type is map",
        ));
    }
}

fn x_validations(o: &serde_json::Map<String, Value>, p: &FieldPath, errs: &mut Vec<FieldError>) {
    let Some(rules) = o.get("x-kubernetes-validations").and_then(Value::as_array) else {
        return;
    };
    for (i, r) in rules.iter().enumerate() {
        let rp = p.child("x-kubernetes-validations").index(i);
        let s = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("");
        let (rule, msg, mexpr, fp) = (
            s("rule"),
            s("message"),
            s("messageExpression"),
            s("fieldPath"),
        );
        let nl = |x: &str| x.contains(['\n', '\r']);
        if rule.trim().is_empty() {
            errs.push(FieldError::required(
                &rp.child("rule"),
                "rule is not specified",
            ));
        } else if !msg.is_empty() && msg.trim().is_empty() {
            errs.push(FieldError::invalid_str(
                &rp.child("message"),
                msg,
                "must be non-empty if specified",
            ));
        } else if nl(msg.trim()) {
            errs.push(FieldError::invalid_str(
                &rp.child("message"),
                msg,
                "must not contain line breaks",
            ));
        } else if nl(rule.trim()) && msg.trim().is_empty() {
            errs.push(FieldError::required(
                &rp.child("message"),
                "message must be specified if rule contains line breaks",
            ));
        }
        if !mexpr.is_empty() && mexpr.trim().is_empty() {
            errs.push(FieldError::required(
                &rp.child("messageExpression"),
                "messageExpression must be non-empty if specified",
            ));
        }
        if let Some(reason) = r.get("reason").and_then(Value::as_str)
            && !REASONS.contains(&reason)
        {
            errs.push(FieldError::not_supported(
                &rp.child("reason"),
                reason,
                &REASONS,
            ));
        }
        if !fp.is_empty() && fp.trim().is_empty() {
            errs.push(FieldError::invalid_str(
                &rp.child("fieldPath"),
                fp,
                "must be non-empty if specified",
            ));
        }
        if nl(fp) {
            errs.push(FieldError::invalid_str(
                &rp.child("fieldPath"),
                fp,
                "must not contain line breaks",
            ));
        }
    }
}

/// Defaults must be pruned and valid against their schema (upstream `ValidateDefaults`; defaults
/// inside metadata are forbidden earlier and skipped here).
fn validate_defaults(s: &Structural, p: &FieldPath, inside_meta: bool) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(d) = &s.default
        && !inside_meta
    {
        let mut pruned = d.clone();
        if s.embedded_resource {
            s.prune(&mut pruned);
        } else {
            s.prune_value(&mut pruned);
        }
        if &pruned != d {
            errs.push(FieldError::invalid(
                &p.child("default"),
                d.to_string(),
                "must not have unknown fields",
            ));
        } else {
            errs.extend(validate_against_schema(
                &s.raw,
                d,
                Some(&p.child("default")),
            ));
            if errs.is_empty() {
                errs.extend(s.validate_cel(d, None).into_iter().map(|mut e| {
                    let rest = e.field.as_str().trim_start_matches("<nil>").to_string();
                    e.field = FieldPath::root(&format!(
                        "{}{}",
                        p.child("default"),
                        if rest.is_empty() || rest.starts_with('[') {
                            rest
                        } else {
                            format!(".{rest}")
                        }
                    ));
                    e
                }));
            }
        }
    }
    for (k, v) in &s.properties {
        let meta = inside_meta || ((s.embedded_resource) && k == "metadata");
        errs.extend(validate_defaults(v, &p.child("properties").key(k), meta));
    }
    if let Some(items) = &s.items {
        errs.extend(validate_defaults(items, &p.child("items"), inside_meta));
    }
    if let Some(ap) = s.additional_schema() {
        errs.extend(validate_defaults(
            ap,
            &p.child("additionalProperties"),
            inside_meta,
        ));
    }
    errs
}
