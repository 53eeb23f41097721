//! OpenAPI value validation of custom resources with kube-openapi's messages, converted to field
//! errors as upstream does (mirrors apiextensions-apiserver pkg/apiserver/validation/validation.go
//! and kube-openapi pkg/validation/{validate,errors}).

use crate::formats::check_format;
use apiserver_apimachinery::field::show_str;
use apiserver_apimachinery::{FieldError, FieldErrorType, FieldPath};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

static PATTERNS: LazyLock<Mutex<HashMap<String, Arc<regex::Regex>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// Compiles (and caches) an OpenAPI `pattern`.
pub fn compile_pattern(p: &str) -> Result<Arc<regex::Regex>, String> {
    if let Ok(cache) = PATTERNS.lock()
        && let Some(r) = cache.get(p)
    {
        return Ok(r.clone());
    }
    let r = Arc::new(regex::Regex::new(p).map_err(|e| format!("error parsing regexp: {e}"))?);
    if let Ok(mut cache) = PATTERNS.lock() {
        if cache.len() > 4096 {
            cache.clear();
        }
        cache.insert(p.to_string(), r.clone());
    }
    Ok(r)
}

/// The JSON type name kube-openapi reports for a value.
pub fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
        Value::Number(n) => {
            if n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0) {
                "integer"
            } else {
                "number"
            }
        }
    }
}

/// Renders a number as Go's `%v` does for float64/int64.
pub fn fmt_num(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e21 {
        format!("{}", f as i64)
    } else {
        format!("{f}")
    }
}

/// Renders a value as upstream's field errors print it (strings quoted, compound values as JSON).
pub fn render_value(v: &Value) -> String {
    match v {
        Value::String(s) => show_str(s),
        Value::Number(n) => n
            .as_i64()
            .map(|i| i.to_string())
            .or_else(|| n.as_u64().map(|u| u.to_string()))
            .unwrap_or_else(|| fmt_num(n.as_f64().unwrap_or(0.0))),
        other => other.to_string(),
    }
}

/// JSON equality with numbers compared by value (1 == 1.0), as Go's decoded values compare.
pub fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(i), Some(j)) => i == j,
            _ => x.as_f64() == y.as_f64(),
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

struct Ctx<'a> {
    prefix: Option<&'a FieldPath>,
}

impl Ctx<'_> {
    fn path(&self, name: &str) -> FieldPath {
        let n = name.trim_start_matches('.');
        match self.prefix {
            Some(p) if n.is_empty() => p.clone(),
            Some(p) => p.child(n),
            None => FieldPath::root(n),
        }
    }
    fn composite(&self, msg: String) -> FieldError {
        let p = self
            .prefix
            .cloned()
            .unwrap_or_else(|| FieldPath::root("<nil>"));
        FieldError::invalid_str(&p, "", msg)
    }
}

/// Validates `data` against the OpenAPI schema `schema` (a JSONSchemaProps value). `prefix` is
/// the field path the data sits at (e.g. `status` for the status subresource), `None` for a
/// whole object.
pub fn validate_against_schema(
    schema: &Value,
    data: &Value,
    prefix: Option<&FieldPath>,
) -> Vec<FieldError> {
    let ctx = Ctx { prefix };
    let mut out = Vec::new();
    validate(&ctx, schema, data, "", &mut out);
    out
}

fn num(schema: &Value, k: &str) -> Option<f64> {
    schema.get(k).and_then(Value::as_f64)
}

fn int(schema: &Value, k: &str) -> Option<i64> {
    schema.get(k).and_then(Value::as_i64)
}

fn flag(schema: &Value, k: &str) -> bool {
    schema.get(k).and_then(Value::as_bool).unwrap_or(false)
}

fn validate(ctx: &Ctx, schema: &Value, data: &Value, name: &str, out: &mut Vec<FieldError>) {
    if !schema.is_object() {
        return;
    }
    let mut types: Vec<&str> = Vec::new();
    if flag(schema, "x-kubernetes-int-or-string") {
        types = vec!["integer", "string"];
    } else if let Some(t) = schema
        .get("type")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
    {
        types.push(t);
    }
    let actual = json_type(data);
    if data.is_null() {
        if !types.is_empty() && !flag(schema, "nullable") {
            out.push(type_error(ctx, name, &types.join(","), "null"));
        }
        return;
    }
    if !types.is_empty()
        && !types
            .iter()
            .any(|t| *t == actual || (*t == "number" && actual == "integer"))
    {
        out.push(type_error(ctx, name, &types.join(","), actual));
        return;
    }
    junctors(ctx, schema, data, name, out);
    match data {
        Value::String(s) => string_checks(ctx, schema, s, name, out),
        Value::Number(n) => number_checks(ctx, schema, n.as_f64().unwrap_or(0.0), data, name, out),
        Value::Array(a) => {
            if let Some(items) = schema.get("items").filter(|v| v.is_object()) {
                for (i, v) in a.iter().enumerate() {
                    validate(ctx, items, v, &format!("{name}[{i}]"), out);
                }
            }
            let n = a.len() as i64;
            if let Some(min) = int(schema, "minItems")
                && n < min
            {
                out.push(FieldError::invalid(
                    &ctx.path(name),
                    n,
                    format!("{name} in body should have at least {min} items"),
                ));
            }
            if let Some(max) = int(schema, "maxItems")
                && n > max
            {
                out.push(FieldError::too_many(
                    &ctx.path(name),
                    n as usize,
                    max as usize,
                ));
            }
            if flag(schema, "uniqueItems")
                && a.iter()
                    .enumerate()
                    .any(|(i, x)| a[..i].iter().any(|y| json_eq(x, y)))
            {
                out.push(FieldError::invalid(
                    &ctx.path(name),
                    render_value(data),
                    format!("{name} in body shouldn't contain duplicates"),
                ));
            }
        }
        _ => {}
    }
    if let Some(e) = schema.get("enum").and_then(Value::as_array)
        && !e.iter().any(|v| json_eq(v, data))
    {
        let valid: Vec<String> = e
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string())
            })
            .collect();
        let list: Vec<String> = valid.iter().map(|v| show_str(v)).collect();
        out.push(FieldError {
            kind: FieldErrorType::NotSupported,
            field: ctx.path(name),
            value: Some(render_value(data)),
            detail: format!("supported values: {}", list.join(", ")),
        });
    }
    if let Value::Object(o) = data {
        let n = o.len() as i64;
        if let Some(min) = int(schema, "minProperties")
            && n < min
        {
            out.push(FieldError::invalid(
                &ctx.path(name),
                n,
                format!("{name} in body should have at least {min} properties"),
            ));
        }
        if let Some(max) = int(schema, "maxProperties")
            && n > max
        {
            out.push(FieldError::too_many(
                &ctx.path(name),
                n as usize,
                max as usize,
            ));
        }
        let props = schema.get("properties").and_then(Value::as_object);
        match schema.get("additionalProperties") {
            Some(Value::Bool(false)) => {
                for k in o.keys() {
                    if !props.is_some_and(|p| p.contains_key(k)) {
                        out.push(FieldError::invalid_str(
                            &ctx.path(name),
                            k,
                            format!("{name}.{k} in body is a forbidden property"),
                        ));
                    }
                }
            }
            Some(ap @ Value::Object(_)) => {
                for (k, v) in o {
                    if !props.is_some_and(|p| p.contains_key(k)) {
                        validate(ctx, ap, v, &format!("{name}.{k}"), out);
                    }
                }
            }
            _ => {}
        }
        if let Some(props) = props {
            for (k, ps) in props {
                if let Some(v) = o.get(k) {
                    let child = if name.is_empty() {
                        k.clone()
                    } else {
                        format!("{name}.{k}")
                    };
                    validate(ctx, ps, v, &child, out);
                }
            }
        }
        if let Some(req) = schema.get("required").and_then(Value::as_array) {
            for k in req.iter().filter_map(Value::as_str) {
                if !o.contains_key(k) {
                    out.push(FieldError::required(&ctx.path(&format!("{name}.{k}")), ""));
                }
            }
        }
    }
}

fn type_error(ctx: &Ctx, name: &str, want: &str, actual: &str) -> FieldError {
    FieldError {
        kind: FieldErrorType::TypeInvalid,
        field: ctx.path(name),
        value: Some(show_str(actual)),
        detail: format!(
            "{name} in body must be of type {want}: {}",
            show_str(actual)
        ),
    }
}

fn string_checks(ctx: &Ctx, schema: &Value, s: &str, name: &str, out: &mut Vec<FieldError>) {
    let len = s.chars().count() as i64;
    if let Some(max) = int(schema, "maxLength")
        && len > max
    {
        out.push(FieldError::too_long(&ctx.path(name), max as usize));
    }
    if let Some(min) = int(schema, "minLength")
        && len < min
    {
        out.push(FieldError::invalid_str(
            &ctx.path(name),
            s,
            format!("{name} in body should be at least {min} chars long"),
        ));
    }
    if let Some(p) = schema
        .get("pattern")
        .and_then(Value::as_str)
        .filter(|p| !p.is_empty())
    {
        match compile_pattern(p) {
            Ok(re) if re.is_match(s) => {}
            Ok(_) => out.push(FieldError::invalid_str(
                &ctx.path(name),
                s,
                format!("{name} in body should match '{p}'"),
            )),
            Err(e) => out.push(FieldError::invalid_str(
                &ctx.path(name),
                s,
                format!("{name} in body should match '{p}, but pattern is invalid: {e}'"),
            )),
        }
    }
    if let Some(f) = schema.get("format").and_then(Value::as_str)
        && !check_format(f, s)
    {
        out.push(FieldError {
            kind: FieldErrorType::TypeInvalid,
            field: ctx.path(name),
            value: Some(show_str(s)),
            detail: format!("{name} in body must be of type {f}: {}", show_str(s)),
        });
    }
}

fn number_checks(
    ctx: &Ctx,
    schema: &Value,
    n: f64,
    data: &Value,
    name: &str,
    out: &mut Vec<FieldError>,
) {
    let shown = render_value(data);
    if let Some(m) = num(schema, "multipleOf")
        && m > 0.0
        && ((n / m) - (n / m).round()).abs() > 1e-9
    {
        out.push(FieldError::invalid(
            &ctx.path(name),
            &shown,
            format!("{name} in body should be a multiple of {}", fmt_num(m)),
        ));
    }
    if let Some(max) = num(schema, "maximum") {
        let excl = flag(schema, "exclusiveMaximum");
        if n > max || (excl && n == max) {
            let rel = if excl {
                "less than"
            } else {
                "less than or equal to"
            };
            out.push(FieldError::invalid(
                &ctx.path(name),
                &shown,
                format!("{name} in body should be {rel} {}", fmt_num(max)),
            ));
        }
    }
    if let Some(min) = num(schema, "minimum") {
        let excl = flag(schema, "exclusiveMinimum");
        if n < min || (excl && n == min) {
            let rel = if excl {
                "greater than"
            } else {
                "greater than or equal to"
            };
            out.push(FieldError::invalid(
                &ctx.path(name),
                &shown,
                format!("{name} in body should be {rel} {}", fmt_num(min)),
            ));
        }
    }
}

fn junctors(ctx: &Ctx, schema: &Value, data: &Value, name: &str, out: &mut Vec<FieldError>) {
    let branch = |s: &Value| {
        let mut e = Vec::new();
        validate(ctx, s, data, name, &mut e);
        e
    };
    let list = |k: &str| {
        schema
            .get(k)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let any_of = list("anyOf");
    if !any_of.is_empty() {
        let results: Vec<_> = any_of.iter().map(branch).collect();
        if !results.iter().any(Vec::is_empty) {
            out.push(ctx.composite(format!(
                "{} must validate at least one schema (anyOf)",
                show_str(name)
            )));
            if let Some(best) = results.into_iter().min_by_key(Vec::len) {
                out.extend(best);
            }
        }
    }
    let one_of = list("oneOf");
    if !one_of.is_empty() {
        let results: Vec<_> = one_of.iter().map(branch).collect();
        let valid = results.iter().filter(|r| r.is_empty()).count();
        if valid != 1 {
            let extra = if valid == 0 {
                "Found none valid".to_string()
            } else {
                format!("Found {valid} valid alternatives")
            };
            out.push(ctx.composite(format!(
                "{} must validate one and only one schema (oneOf). {extra}",
                show_str(name)
            )));
            if valid == 0
                && let Some(best) = results.into_iter().min_by_key(Vec::len)
            {
                out.extend(best);
            }
        }
    }
    let all_of = list("allOf");
    if !all_of.is_empty() {
        let mut validated = 0;
        for s in &all_of {
            let r = branch(s);
            if r.is_empty() {
                validated += 1;
            }
            out.extend(r);
        }
        if validated != all_of.len() {
            let extra = if validated == 0 {
                ". None validated"
            } else {
                ""
            };
            out.push(ctx.composite(format!(
                "{} must validate all the schemas (allOf){extra}",
                show_str(name)
            )));
        }
    }
    if let Some(not) = schema.get("not")
        && branch(not).is_empty()
    {
        out.push(ctx.composite(format!(
            "{} must not validate the schema (not)",
            show_str(name)
        )));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn msgs(schema: Value, data: Value) -> Vec<String> {
        validate_against_schema(&schema, &data, None)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    fn crontab_schema() -> Value {
        json!({"type": "object", "properties": {"spec": {"type": "object",
        "required": ["cronSpec"],
        "properties": {
            "cronSpec": {"type": "string", "pattern": "^(\\d+|\\*)(/\\d+)?(\\s+(\\d+|\\*)(/\\d+)?){4}$"},
            "replicas": {"type": "integer", "minimum": 1, "maximum": 10},
            "mode": {"type": "string", "enum": ["a", "b"]},
            "name": {"type": "string", "maxLength": 5, "minLength": 2},
            "tags": {"type": "array", "maxItems": 2, "items": {"type": "string"}},
            "when": {"type": "string", "format": "date-time"},
            "port": {"x-kubernetes-int-or-string": true},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}}
        }}}})
    }

    #[test]
    fn type_errors_match_upstream() {
        assert_eq!(
            msgs(
                crontab_schema(),
                json!({"spec": {"cronSpec": "* * * * *", "replicas": "x"}})
            ),
            vec![
                r#"spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string""#
            ]
        );
        assert_eq!(
            msgs(
                crontab_schema(),
                json!({"spec": {"cronSpec": "* * * * *", "port": true, "labels": {"a": 1}}})
            ),
            vec![
                r#"spec.port: Invalid value: "boolean": spec.port in body must be of type integer,string: "boolean""#,
                r#"spec.labels.a: Invalid value: "integer": spec.labels.a in body must be of type string: "integer""#,
            ]
        );
        assert_eq!(
            msgs(crontab_schema(), json!({"spec": null})),
            vec![r#"spec: Invalid value: "null": spec in body must be of type object: "null""#]
        );
    }

    #[test]
    fn value_constraints_match_upstream() {
        let mut got = msgs(
            crontab_schema(),
            json!({"spec": {"cronSpec": "bad", "replicas": 0, "mode": "x", "name": "toolong",
                "tags": ["a", "b", "c"], "when": "yesterday"}}),
        );
        got.sort();
        assert_eq!(
            got,
            vec![
                r#"spec.cronSpec: Invalid value: "bad": spec.cronSpec in body should match '^(\d+|\*)(/\d+)?(\s+(\d+|\*)(/\d+)?){4}$'"#,
                r#"spec.mode: Unsupported value: "x": supported values: "a", "b""#,
                "spec.name: Too long: may not be more than 5 bytes",
                "spec.replicas: Invalid value: 0: spec.replicas in body should be greater than or equal to 1",
                "spec.tags: Too many: 3: must have at most 2 items",
                r#"spec.when: Invalid value: "yesterday": spec.when in body must be of type date-time: "yesterday""#,
            ]
        );
        assert_eq!(
            msgs(crontab_schema(), json!({"spec": {}})),
            vec!["spec.cronSpec: Required value"]
        );
        assert!(
            msgs(
                crontab_schema(),
                json!({"spec": {"cronSpec": "*/5 * * * *", "replicas": 10,
            "port": "http", "when": "2024-01-02T03:04:05Z"}})
            )
            .is_empty()
        );
    }

    #[test]
    fn prefix_and_junctors() {
        let p = FieldPath::root("status");
        let errs = validate_against_schema(
            &json!({"type": "object", "properties": {"num": {"type": "integer", "maximum": 10}}}),
            &json!({"num": 15}),
            Some(&p),
        );
        assert_eq!(
            errs[0].to_string(),
            "status.num: Invalid value: 15: num in body should be less than or equal to 10"
        );
        let got = msgs(
            json!({"type": "object", "properties": {"f": {"x-kubernetes-int-or-string": true,
                "anyOf": [{"type": "integer"}, {"type": "string"}]}}}),
            json!({"f": 1.5}),
        );
        assert_eq!(
            got[0],
            r#"f: Invalid value: "number": f in body must be of type integer,string: "number""#
        );
    }
}
