//! `x-kubernetes-validations` CEL rules on custom resources: `self`/`oldSelf`, transition rules,
//! `optionalOldSelf`, message/messageExpression/reason/fieldPath, the per-call cost limit and the
//! per-object cost budget, upstream's error format (mirrors apiextensions-apiserver
//! pkg/apiserver/schema/cel/validation.go).
//!
//! Submodules: [`library`] (environment, list/regex/sets libraries), [`net`] (IP, CIDR),
//! [`url`], [`quantity`], [`format`], [`comprehensions`] (two-variable comprehensions),
//! [`decl`] (schema types), [`check`] (type checker), [`cost`] and [`est`] (estimated cost),
//! [`runtime_cost`] (metered evaluation), [`instrument`] (cost-charging AST), [`compile`] (rule
//! compilation), [`crd_rules`] (compile and cost errors of a CRD's rules).

pub mod check;
pub mod compile;
pub mod comprehensions;
pub mod cost;
pub mod crd_rules;
pub mod decl;
pub mod est;
pub mod format;
pub mod instrument;
pub mod library;
pub mod net;
pub mod quantity;
pub mod runtime_cost;
pub mod url;

use crate::structural::{Structural, ValidationRule};
use crate::validation::render_value;
use apiserver_apimachinery::{FieldError, FieldErrorType, FieldPath};
use cel::ExecutionError;
use cel::objects::OptionalValue;
use runtime_cost::{LIMIT_EXCEEDED, PER_CALL_LIMIT, RUNTIME_BUDGET, Usage};
use serde_json::Value;
use std::sync::Arc;

pub use compile::{RuleCompilation, compile_rule};

/// Parses (and caches) an expression for evaluation; the error is the rendered parse error.
pub fn compile(src: &str) -> compile::Cached {
    compile::program(src)
}

/// Whether a rule refers to `oldSelf` (a transition rule).
pub fn uses_old_self(rule: &str) -> bool {
    compile(rule).is_ok_and(|p| p.uses_old_self)
}

/// Converts a JSON value to a CEL value (integers as `int`, as upstream's unstructured values).
pub fn to_cel(v: &Value) -> cel::Value {
    decl::to_cel(v, None)
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
    /// upstream renders a rule on the resource root. All rules share the per-object cost
    /// budget; a rule exceeding the per-call limit, or the budget running out, stops validation.
    pub fn validate_cel(&self, obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
        let mut w = Walk {
            errs: Vec::new(),
            budget: RUNTIME_BUDGET,
        };
        w.node(self, obj, old, None);
        w.errs
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

const OUT_OF_BUDGET: &str =
    "validation failed due to running out of cost budget, no further validation rules will be run";

const MESSAGE_OUT_OF_BUDGET: &str = "messageExpression evaluation failed due to running out of cost budget, no further validation rules will be run";

struct Walk {
    errs: Vec<FieldError>,
    /// The remaining runtime cost budget; negative once validation must stop.
    budget: i64,
}

fn type_value(s: &Structural) -> Option<String> {
    Some(apiserver_apimachinery::field::show_str(&s.type_))
}

/// An evaluation error as cel-go words it.
fn eval_error(e: &ExecutionError) -> String {
    match e {
        ExecutionError::NoSuchKey(k) => format!("no such key: {k}"),
        ExecutionError::DivisionByZero(_) => "division by zero".to_string(),
        ExecutionError::RemainderByZero(_) => "modulus by zero".to_string(),
        ExecutionError::Overflow(..) => "integer overflow".to_string(),
        ExecutionError::FunctionError { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

impl Walk {
    fn stopped(&self) -> bool {
        self.budget < 0
    }

    fn node(&mut self, s: &Structural, v: &Value, old: Option<&Value>, path: Option<&FieldPath>) {
        if v.is_null() || self.stopped() {
            return;
        }
        let old = old.filter(|o| !o.is_null());
        if !s.x_validations.is_empty() {
            self.rules(s, v, old, path);
        }
        match v {
            Value::Object(m) => {
                let correlatable = s.map_type.as_deref() != Some("atomic");
                for (k, fv) in m {
                    if self.stopped() {
                        return;
                    }
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
                        self.node(ps, fv, o, Some(&p));
                    } else if let Some(ap) = s.additional_schema() {
                        let p = path.cloned().unwrap_or_default().key(k);
                        self.node(ap, fv, o, Some(&p));
                    }
                }
            }
            Value::Array(a) => {
                let Some(items) = s.items.as_deref() else {
                    return;
                };
                for (i, iv) in a.iter().enumerate() {
                    if self.stopped() {
                        return;
                    }
                    let o = if s.list_type.as_deref() == Some("map") {
                        old.and_then(Value::as_array).and_then(|olds| {
                            olds.iter()
                                .find(|ov| s.list_map_keys.iter().all(|k| ov.get(k) == iv.get(k)))
                        })
                    } else {
                        None
                    };
                    let p = path.cloned().unwrap_or_default().index(i);
                    self.node(items, iv, o, Some(&p));
                }
            }
            _ => {}
        }
    }

    fn invalid(&mut self, field: &FieldPath, s: &Structural, detail: String) {
        self.errs.push(FieldError {
            kind: FieldErrorType::Invalid,
            field: field.clone(),
            value: type_value(s),
            detail,
        });
    }

    /// Charges an evaluation to the budget; false (and an error) once it runs out.
    fn charge(&mut self, usage: Usage, field: &FieldPath, s: &Structural, msg: &str) -> bool {
        let cost = i64::try_from(usage.cost).unwrap_or(i64::MAX);
        if cost > self.budget {
            self.invalid(field, s, msg.to_string());
            self.budget = -1;
            return false;
        }
        self.budget -= cost;
        true
    }

    fn rules(&mut self, s: &Structural, v: &Value, old: Option<&Value>, path: Option<&FieldPath>) {
        let base = path.cloned().unwrap_or_else(|| FieldPath::root("<nil>"));
        if self.budget <= 0 {
            self.invalid(&base, s, OUT_OF_BUDGET.to_string());
            self.budget = -1;
            return;
        }
        let self_val = decl::to_cel(v, Some(s));
        let old_val = old.map(|o| decl::to_cel(o, Some(s)));
        for rule in &s.x_validations {
            if rule.rule.trim().is_empty() {
                continue;
            }
            let program = match compile(&rule.rule) {
                Ok(p) => p,
                Err(e) => {
                    self.invalid(
                        &base,
                        s,
                        format!("rule compile error: compilation failed: {e}"),
                    );
                    continue;
                }
            };
            let optional = rule.optional_old_self.unwrap_or(false);
            if program.uses_old_self && old.is_none() && !optional {
                continue;
            }
            let mut ctx = cel::Context::with_env(library::ENV.clone());
            ctx.add_variable_from_value("self", self_val.clone());
            let old_self = if optional {
                let o = match &old_val {
                    Some(o) => OptionalValue::of(o.clone()),
                    None => OptionalValue::none(),
                };
                cel::Value::Opaque(Arc::new(o))
            } else {
                old_val.clone().unwrap_or(cel::Value::Null)
            };
            ctx.add_variable_from_value("oldSelf", old_self);
            let (result, usage) =
                runtime_cost::metered(PER_CALL_LIMIT, || cel::Value::resolve(&program.expr, &ctx));
            if !self.charge(usage, &base, s, OUT_OF_BUDGET) {
                return;
            }
            if usage.exceeded {
                self.invalid(
                    &base,
                    s,
                    format!(
                        "'{LIMIT_EXCEEDED}': no further validation rules will be run due to call cost exceeds limit for rule: {}",
                        error_string(rule)
                    ),
                );
                self.budget = -1;
                return;
            }
            match result {
                Ok(cel::Value::Bool(true)) => continue,
                Ok(_) => {}
                Err(e @ ExecutionError::NoSuchOverload(_)) => {
                    self.invalid(
                        &base,
                        s,
                        format!(
                            "'no such overload: {e}': call arguments did not match a supported operator, function or macro signature for rule: {}",
                            error_string(rule)
                        ),
                    );
                    continue;
                }
                Err(e) => {
                    self.invalid(
                        &base,
                        s,
                        format!("{} evaluating rule: {}", eval_error(&e), error_string(rule)),
                    );
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
            let Some(detail) = self.message(rule, &ctx, &field, s) else {
                return;
            };
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
            self.errs.push(err);
        }
    }

    /// The message of a failed rule: its messageExpression's result when that evaluates to a
    /// usable string, else the message or `failed rule: <rule>`. `None` when evaluating the
    /// messageExpression stopped validation.
    fn message(
        &mut self,
        rule: &ValidationRule,
        ctx: &cel::Context,
        field: &FieldPath,
        s: &Structural,
    ) -> Option<String> {
        let mexpr = rule.message_expression.trim();
        if !mexpr.is_empty()
            && let Ok(p) = compile(&rule.message_expression)
        {
            let (result, usage) =
                runtime_cost::metered(PER_CALL_LIMIT, || cel::Value::resolve(&p.expr, ctx));
            if !self.charge(usage, field, s, MESSAGE_OUT_OF_BUDGET) {
                return None;
            }
            if usage.exceeded {
                self.invalid(
                    field,
                    s,
                    format!(
                        "no further validation rules will be run due to call cost exceeds limit for messageExpression: {}",
                        apiserver_apimachinery::field::show_str(&rule.message_expression)
                    ),
                );
                self.budget = -1;
                return None;
            }
            if let Ok(cel::Value::String(m)) = result
                && !m.trim().is_empty()
                && m.len() <= 5 * 1024
                && !m.contains(['\n', '\r'])
            {
                return Some(m.trim().to_string());
            }
        }
        Some(message_or_default(rule))
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

    fn e2e_schema() -> Structural {
        Structural::from_json(&json!({"type": "object", "properties": {"spec": {"type": "object",
            "x-kubernetes-validations": [
                {"rule": "self.x + self.y > 0"},
                {"rule": "self.firstArray.isSorted() && self.secondArray.isSorted() && ((self.firstArray.sum() + self.secondArray.sum()) % 2 == 0)"},
                {"rule": "self.largeArray.all(x, self.largeArray.all(y, y == x))"}],
            "properties": {
                "x": {"type": "integer"}, "y": {"type": "integer"},
                "firstArray": {"type": "array", "maxItems": 1000, "items": {"type": "integer"}},
                "secondArray": {"type": "array", "maxItems": 1000, "items": {"type": "integer"}},
                "largeArray": {"type": "array", "maxItems": 725, "items": {"type": "integer"}}}}}}))
        .unwrap()
    }

    fn errors(s: &Structural, obj: Value) -> Vec<String> {
        s.validate_cel(&obj, None)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn list_library_rules_pass() {
        let obj = json!({"spec": {"x": 1, "y": 0, "firstArray": [3, 4], "secondArray": [5, 10], "largeArray": [2, 2]}});
        assert!(errors(&e2e_schema(), obj).is_empty());
        let obj = json!({"spec": {"x": 1, "y": 0, "firstArray": [4, 3], "secondArray": [5, 10], "largeArray": [2, 2]}});
        assert_eq!(errors(&e2e_schema(), obj).len(), 1);
    }

    #[test]
    fn the_per_call_cost_limit_stops_validation() {
        let obj = json!({"spec": {"largeArray": vec![20; 725]}});
        assert_eq!(
            errors(&e2e_schema(), obj),
            vec![
                "spec: Invalid value: \"object\": no such key: x evaluating rule: self.x + self.y > 0",
                "spec: Invalid value: \"object\": no such key: firstArray evaluating rule: self.firstArray.isSorted() && self.secondArray.isSorted() && ((self.firstArray.sum() + self.secondArray.sum()) % 2 == 0)",
                "spec: Invalid value: \"object\": 'operation cancelled: actual cost limit exceeded': no further validation rules will be run due to call cost exceeds limit for rule: self.largeArray.all(x, self.largeArray.all(y, y == x))",
            ]
        );
    }

    #[test]
    fn the_runtime_budget_is_shared_by_all_rules() {
        // each evaluation: ceil(30000 * 0.1) * ceil(3000 * 0.1) = 900000, plus 4
        let rules: Vec<Value> = (0..12)
            .map(|_| json!({"rule": "self.s.contains(self.t)"}))
            .collect();
        let s = Structural::from_json(&json!({"type": "object", "properties": {"spec": {
            "type": "object", "x-kubernetes-validations": rules,
            "properties": {"s": {"type": "string"}, "t": {"type": "string"}}}}}))
        .unwrap();
        let obj = |t: usize| json!({"spec": {"s": "a".repeat(30000), "t": "a".repeat(t)}});
        assert_eq!(
            errors(&s, obj(3000)),
            vec![
                "spec: Invalid value: \"object\": validation failed due to running out of cost budget, no further validation rules will be run"
            ]
        );
        assert_eq!(errors(&s, obj(1000)), Vec::<String>::new());
        // a single evaluation over the per-call limit
        assert_eq!(errors(&s, obj(4000)).len(), 1);
        assert!(
            errors(&s, obj(4000))[0]
                .contains("call cost exceeds limit for rule: self.s.contains(self.t)")
        );
    }

    #[test]
    fn escaped_property_names_are_visible_to_rules() {
        let s = Structural::from_json(&json!({"type": "object", "properties": {"spec": {
            "type": "object", "x-kubernetes-validations": [
                {"rule": "self.foo__dash__bar > 0 && self.__namespace__ == 'ns'"}],
            "properties": {"foo-bar": {"type": "integer"}, "namespace": {"type": "string"}}}}}))
        .unwrap();
        assert!(errors(&s, json!({"spec": {"foo-bar": 1, "namespace": "ns"}})).is_empty());
        assert_eq!(
            errors(&s, json!({"spec": {"foo-bar": 0, "namespace": "ns"}})).len(),
            1
        );
    }

    #[test]
    fn compile_errors_and_field_paths() {
        assert!(compile("self.a +").is_err());
        assert_eq!(normalize_field_path(".spec['a.b'].c"), "spec.a.b.c");
        assert_eq!(normalize_field_path(".x[0].y"), "x[0].y");
    }
}
