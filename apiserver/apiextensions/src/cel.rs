//! `x-kubernetes-validations` CEL rules on custom resources: `self`/`oldSelf`, transition rules,
//! `optionalOldSelf`, message/messageExpression/reason/fieldPath, upstream's error format
//! (mirrors apiextensions-apiserver pkg/apiserver/schema/cel/validation.go). Evaluated with the
//! `cel` crate's standard library.

use crate::structural::{Structural, ValidationRule};
use crate::validation::render_value;
use apiserver_apimachinery::{FieldError, FieldErrorType, FieldPath};
use cel::objects::{Key, OptionalValue};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

static ENV: LazyLock<Arc<cel::Env>> = LazyLock::new(|| Arc::new(cel::Env::stdlib()));

type Compiled = Result<Arc<cel::Program>, String>;
static PROGRAMS: LazyLock<Mutex<HashMap<String, Compiled>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

static OLD_SELF: LazyLock<regex::Regex> =
    LazyLock::new(|| regex::Regex::new(r"\boldSelf\b").expect("static regex"));

/// Compiles (and caches) a CEL expression; the error is the parser's message.
pub fn compile(src: &str) -> Compiled {
    if let Ok(c) = PROGRAMS.lock()
        && let Some(p) = c.get(src)
    {
        return p.clone();
    }
    let res = ENV
        .compile(src)
        .map(Arc::new)
        .map_err(|e| e.to_string().trim().to_string());
    if let Ok(mut c) = PROGRAMS.lock() {
        if c.len() > 4096 {
            c.clear();
        }
        c.insert(src.to_string(), res.clone());
    }
    res
}

/// Whether a rule refers to `oldSelf` (a transition rule).
pub fn uses_old_self(rule: &str) -> bool {
    OLD_SELF.is_match(rule)
}

/// Converts a JSON value to a CEL value (integers as `int`, as upstream's unstructured values).
pub fn to_cel(v: &Value) -> cel::Value {
    match v {
        Value::Null => cel::Value::Null,
        Value::Bool(b) => cel::Value::Bool(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => cel::Value::Int(i),
            (None, Some(u)) => cel::Value::UInt(u),
            _ => cel::Value::Float(n.as_f64().unwrap_or(0.0)),
        },
        Value::String(s) => cel::Value::String(Arc::new(s.clone())),
        Value::Array(a) => cel::Value::List(Arc::new(a.iter().map(to_cel).collect())),
        Value::Object(m) => {
            let map: HashMap<Key, cel::Value> = m
                .iter()
                .map(|(k, v)| (Key::String(Arc::new(k.clone())), to_cel(v)))
                .collect();
            cel::Value::Map(map.into())
        }
    }
}

fn error_string(rule: &ValidationRule) -> String {
    if rule.message.is_empty() {
        rule.rule.trim().to_string()
    } else {
        rule.message.trim().to_string()
    }
}

fn message_or_default(rule: &ValidationRule) -> String {
    if rule.message.is_empty() {
        format!("failed rule: {}", error_string(rule))
    } else {
        rule.message.trim().to_string()
    }
}

/// Normalizes a rule's `fieldPath` (`.spec.x`, `['a.b']`) to a child path string.
fn normalize_field_path(fp: &str) -> String {
    let mut out = String::new();
    let mut rest = fp.trim();
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("['") {
            let end = r.find("']").unwrap_or(r.len());
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&r[..end]);
            rest = r.get(end + 2..).unwrap_or("");
        } else if let Some(r) = rest.strip_prefix('.') {
            rest = r;
        } else {
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            if !out.is_empty() && !rest.starts_with('[') {
                out.push('.');
            }
            out.push_str(&rest[..end]);
            rest = &rest[end..];
            if rest.starts_with('[') && !rest.starts_with("['") {
                let close = rest.find(']').map(|i| i + 1).unwrap_or(rest.len());
                out.push_str(&rest[..close]);
                rest = &rest[close..];
            }
        }
    }
    out
}

impl Structural {
    /// Evaluates every `x-kubernetes-validations` rule against `obj` (and `old` for transition
    /// rules on update), returning upstream-formatted errors. Root errors sit at `<nil>`, as
    /// upstream renders a rule on the resource root.
    pub fn validate_cel(&self, obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
        let mut errs = Vec::new();
        walk(self, obj, old, None, &mut errs);
        errs
    }

    /// Whether this schema (or any below it) has CEL rules.
    pub fn has_cel_rules(&self) -> bool {
        !self.x_validations.is_empty()
            || self.properties.values().any(Structural::has_cel_rules)
            || self.items.as_deref().is_some_and(Structural::has_cel_rules)
            || self
                .additional_schema()
                .is_some_and(Structural::has_cel_rules)
    }
}

fn walk(
    s: &Structural,
    v: &Value,
    old: Option<&Value>,
    path: Option<&FieldPath>,
    errs: &mut Vec<FieldError>,
) {
    if v.is_null() {
        return;
    }
    let old = old.filter(|o| !o.is_null());
    if !s.x_validations.is_empty() {
        rules(s, v, old, path, errs);
    }
    let child = |p: FieldPath| Some(p);
    match v {
        Value::Object(m) => {
            let correlatable = s.map_type.as_deref() != Some("atomic");
            for (k, fv) in m {
                let o = if correlatable {
                    old.and_then(|o| o.get(k))
                } else {
                    None
                };
                if let Some(ps) = s.properties.get(k) {
                    let p = match path {
                        Some(p) => p.child(k),
                        None => FieldPath::root(k),
                    };
                    walk(ps, fv, o, child(p).as_ref(), errs);
                } else if let Some(ap) = s.additional_schema() {
                    let p = path.cloned().unwrap_or_default().key(k);
                    walk(ap, fv, o, child(p).as_ref(), errs);
                }
            }
        }
        Value::Array(a) => {
            let Some(items) = s.items.as_deref() else {
                return;
            };
            for (i, iv) in a.iter().enumerate() {
                let o = if s.list_type.as_deref() == Some("map") {
                    old.and_then(Value::as_array).and_then(|olds| {
                        olds.iter()
                            .find(|ov| s.list_map_keys.iter().all(|k| ov.get(k) == iv.get(k)))
                    })
                } else {
                    None
                };
                let p = path.cloned().unwrap_or_default().index(i);
                walk(items, iv, o, Some(&p), errs);
            }
        }
        _ => {}
    }
}

fn type_value(s: &Structural) -> Option<String> {
    Some(apiserver_apimachinery::field::show_str(&s.type_))
}

fn rules(
    s: &Structural,
    v: &Value,
    old: Option<&Value>,
    path: Option<&FieldPath>,
    errs: &mut Vec<FieldError>,
) {
    let base = path.cloned().unwrap_or_else(|| FieldPath::root("<nil>"));
    let self_val = to_cel(v);
    for rule in &s.x_validations {
        if rule.rule.trim().is_empty() {
            continue;
        }
        let program = match compile(&rule.rule) {
            Ok(p) => p,
            Err(e) => {
                errs.push(FieldError {
                    kind: FieldErrorType::Invalid,
                    field: base.clone(),
                    value: type_value(s),
                    detail: format!("rule compile error: compilation failed: {e}"),
                });
                continue;
            }
        };
        let optional = rule.optional_old_self.unwrap_or(false);
        let transition = uses_old_self(&rule.rule);
        if transition && old.is_none() && !optional {
            continue;
        }
        let mut ctx = cel::Context::with_env(ENV.clone());
        ctx.add_variable_from_value("self", self_val.clone());
        if transition {
            let old_val = if optional {
                let o = match old {
                    Some(o) => OptionalValue::of(to_cel(o)),
                    None => OptionalValue::none(),
                };
                cel::Value::Opaque(Arc::new(o))
            } else {
                old.map(to_cel).unwrap_or(cel::Value::Null)
            };
            ctx.add_variable_from_value("oldSelf", old_val);
        }
        match program.execute(&ctx) {
            Ok(cel::Value::Bool(true)) => continue,
            Ok(_) => {}
            Err(e) => {
                errs.push(FieldError {
                    kind: FieldErrorType::Invalid,
                    field: base.clone(),
                    value: type_value(s),
                    detail: format!("{e} evaluating rule: {}", error_string(rule)),
                });
                continue;
            }
        }
        let field = if rule.field_path.trim().is_empty() {
            base.clone()
        } else {
            let fp = normalize_field_path(&rule.field_path);
            match path {
                Some(p) => p.child(&fp),
                None => FieldPath::root(&fp),
            }
        };
        let mut detail = None;
        if !rule.message_expression.trim().is_empty()
            && let Ok(p) = compile(&rule.message_expression)
            && let Ok(cel::Value::String(m)) = p.execute(&ctx)
            && !m.trim().is_empty()
            && !m.contains(['\n', '\r'])
        {
            detail = Some(m.to_string());
        }
        let detail = detail.unwrap_or_else(|| message_or_default(rule));
        let value = match s.type_.as_str() {
            "object" | "array" => None,
            _ => Some(render_value(v)),
        };
        let err = match rule.reason.as_deref() {
            Some("FieldValueForbidden") => FieldError::forbidden(&field, detail),
            Some("FieldValueRequired") => FieldError::required(&field, detail),
            Some("FieldValueDuplicate") => FieldError {
                kind: FieldErrorType::Duplicate,
                field,
                value,
                detail: String::new(),
            },
            _ => FieldError {
                kind: FieldErrorType::Invalid,
                field,
                value,
                detail,
            },
        };
        errs.push(err);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Structural {
        Structural::from_json(&json!({"type": "object", "properties": {"spec": {
            "type": "object",
            "x-kubernetes-validations": [
                {"rule": "self.minReplicas <= self.replicas", "message": "replicas should be in the range minReplicas..maxReplicas."},
                {"rule": "self.replicas < 100", "messageExpression": "'replicas ' + string(self.replicas) + ' too many'", "fieldPath": ".replicas", "reason": "FieldValueForbidden"},
            ],
            "properties": {
                "replicas": {"type": "integer"},
                "minReplicas": {"type": "integer"},
                "name": {"type": "string", "x-kubernetes-validations": [
                    {"rule": "self == oldSelf", "message": "name is immutable"},
                    {"rule": "self.startsWith('a')"}]},
                "mode": {"type": "string", "x-kubernetes-validations": [
                    {"rule": "!oldSelf.hasValue() || oldSelf.value() == self", "optionalOldSelf": true}]},
            }}}}))
        .unwrap()
    }

    fn msgs(obj: Value, old: Option<Value>) -> Vec<String> {
        schema()
            .validate_cel(&obj, old.as_ref())
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn rules_report_upstream_messages() {
        assert!(
            msgs(
                json!({"spec": {"replicas": 3, "minReplicas": 1, "name": "ab"}}),
                None
            )
            .is_empty()
        );
        assert_eq!(
            msgs(
                json!({"spec": {"replicas": 300, "minReplicas": 301, "name": "bc"}}),
                None
            ),
            vec![
                "spec: Invalid value: replicas should be in the range minReplicas..maxReplicas.",
                "spec.replicas: Forbidden: replicas 300 too many",
                "spec.name: Invalid value: \"bc\": failed rule: self.startsWith('a')",
            ]
        );
    }

    #[test]
    fn transition_rules_need_old_self() {
        let new = json!({"spec": {"replicas": 1, "minReplicas": 1, "name": "ax", "mode": "m2"}});
        let old = json!({"spec": {"replicas": 1, "minReplicas": 1, "name": "ay", "mode": "m1"}});
        assert_eq!(
            msgs(new.clone(), Some(old)),
            vec![
                "spec.name: Invalid value: \"ax\": name is immutable",
                "spec.mode: Invalid value: \"m2\": failed rule: !oldSelf.hasValue() || oldSelf.value() == self",
            ]
        );
        assert!(msgs(new, None).is_empty());
    }

    #[test]
    fn compile_errors_and_field_paths() {
        assert!(compile("self.a +").is_err());
        assert_eq!(normalize_field_path(".spec['a.b'].c"), "spec.a.b.c");
        assert_eq!(normalize_field_path(".x[0].y"), "x[0].y");
    }
}
