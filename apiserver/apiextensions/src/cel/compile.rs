//! Compiling `x-kubernetes-validations` rules (mirrors apiextensions-apiserver
//! pkg/apiserver/schema/cel/compilation.go): parsing, type-checking against the schema node's
//! CEL type, the bool/string result requirement, `oldSelf` detection and the estimated cost;
//! errors are rendered as cel-go does (`ERROR: <input>:1:5: undefined field 'z'` and a source
//! snippet). Also the cache of instrumented programs used at evaluation time.

use crate::cel::check::{self, Checked};
use crate::cel::cost;
use crate::cel::decl::{Kind, Ty};
use crate::cel::instrument;
use crate::cel::library::ENV;
use crate::structural::ValidationRule;
use cel::common::ast::{Expr, IdedExpr};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::{Arc, LazyLock, Mutex};

/// The result of compiling one rule for a schema node (upstream `CompilationResult`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RuleCompilation {
    /// Why the rule is invalid (`compilation failed: ...`, `cel expression must evaluate to a
    /// bool`).
    pub error: Option<String>,
    /// Why the messageExpression is invalid.
    pub message_expression_error: Option<String>,
    /// Whether the rule refers to `oldSelf` (a transition rule).
    pub uses_old_self: bool,
    /// The estimated worst-case cost of one evaluation of the rule.
    pub max_cost: u64,
    /// The estimated worst-case cost of the messageExpression, when there is one.
    pub message_expression_max_cost: Option<u64>,
}

/// Renders an error at a 1-based line and 0-based column as cel-go's `Error.ToDisplayString`.
fn render(src: &str, line: usize, col: usize, msg: &str) -> String {
    let mut out = format!("ERROR: <input>:{line}:{}: {msg}", col + 1);
    if let Some(text) = src.split('\n').nth(line.saturating_sub(1))
        && line > 0
    {
        let text = text.trim_end_matches('\r').replace('\t', " ");
        out.push_str("\n | ");
        out.push_str(&text);
        out.push_str("\n | ");
        let mut chars = text.chars();
        for _ in 0..col {
            match chars.next() {
                Some(c) if c.len_utf8() > 1 => out.push('\u{ff0e}'),
                Some(_) => out.push('.'),
                None => break,
            }
        }
        match chars.next() {
            Some(c) if c.len_utf8() > 1 => out.push('\u{ff3e}'),
            _ => out.push('^'),
        }
    }
    out
}

/// The 1-based line and 0-based column of a character offset.
fn location(src: &str, offset: usize) -> (usize, usize) {
    let mut line = 1;
    let mut col = 0;
    for c in src.chars().take(offset) {
        if c == '\n' {
            line += 1;
            col = 0;
        } else {
            col += 1;
        }
    }
    (line, col)
}

/// Parses a rule, rendering parse errors as cel-go does.
pub fn parse(src: &str) -> Result<cel::Program, String> {
    ENV.compile(src).map_err(|errs| {
        let mut rendered: Vec<((isize, isize), String)> = errs
            .errors
            .iter()
            .map(|e| {
                let (line, col) = e.pos;
                let text = if line > 0 && col > 0 {
                    render(
                        src,
                        usize::try_from(line).unwrap_or(1),
                        usize::try_from(col - 1).unwrap_or(0),
                        &e.msg,
                    )
                } else {
                    format!("ERROR: <input>:{line}:{col}: {}", e.msg)
                };
                (e.pos, text)
            })
            .collect();
        rendered.sort_by_key(|(pos, _)| *pos);
        rendered
            .into_iter()
            .map(|(_, t)| t)
            .collect::<Vec<_>>()
            .join("\n")
    })
}

fn check_errors(src: &str, program: &cel::Program, checked: &Checked) -> String {
    let mut errs: Vec<((usize, usize), String)> = checked
        .errors
        .iter()
        .map(|(id, msg)| {
            let offset = program
                .source_info()
                .offset_for(*id)
                .map_or(0, |(start, _)| start as usize);
            let (line, col) = location(src, offset);
            ((line, col), render(src, line, col, msg))
        })
        .collect();
    errs.sort_by_key(|(pos, _)| *pos);
    errs.dedup();
    errs.into_iter()
        .map(|(_, t)| t)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether an expression refers to the variable `oldSelf`.
pub fn refers_to_old_self(e: &IdedExpr) -> bool {
    let mut found = false;
    walk(e, &mut |x| {
        if matches!(&x.expr, Expr::Ident(n) if n == "oldSelf") {
            found = true;
        }
    });
    found
}

/// Visits every node of an expression.
pub(crate) fn walk(e: &IdedExpr, f: &mut impl FnMut(&IdedExpr)) {
    f(e);
    match &e.expr {
        Expr::Call(c) => {
            if let Some(t) = &c.target {
                walk(t, f);
            }
            c.args.iter().for_each(|a| walk(a, f));
        }
        Expr::Select(s) => walk(&s.operand, f),
        Expr::List(l) => l.elements.iter().for_each(|a| walk(a, f)),
        Expr::Comprehension(c) => {
            for x in [
                &c.iter_range,
                &c.accu_init,
                &c.loop_cond,
                &c.loop_step,
                &c.result,
            ] {
                walk(x, f);
            }
        }
        Expr::Map(m) => {
            for en in &m.entries {
                match &en.expr {
                    cel::common::ast::EntryExpr::MapEntry(me) => {
                        walk(&me.key, f);
                        walk(&me.value, f);
                    }
                    cel::common::ast::EntryExpr::StructField(sf) => walk(&sf.value, f),
                }
            }
        }
        Expr::Struct(s) => {
            for en in &s.entries {
                if let cel::common::ast::EntryExpr::StructField(sf) = &en.expr {
                    walk(&sf.value, f);
                }
            }
        }
        Expr::Literal(_) | Expr::Ident(_) | Expr::Unspecified => {}
    }
}

/// A parsed and type-checked expression.
struct Compiled {
    program: cel::Program,
    checked: Checked,
}

enum Failure {
    Compile(String),
    Output,
}

fn compile_checked(src: &str, vars: &[(&str, Rc<Ty>)], want: &Kind) -> Result<Compiled, Failure> {
    let program = parse(src).map_err(Failure::Compile)?;
    let checked = check::check(program.expression(), vars);
    if !checked.errors.is_empty() {
        return Err(Failure::Compile(check_errors(src, &program, &checked)));
    }
    if check::definitely_not(&checked.type_of(program.expression().id), want) {
        return Err(Failure::Output);
    }
    Ok(Compiled { program, checked })
}

/// Compiles a rule (and its messageExpression) for a schema node whose CEL type is `self_ty`
/// (`None` when the node is not visible to CEL: nothing is type-checked then).
pub fn compile_rule(rule: &ValidationRule, self_ty: Option<Rc<Ty>>) -> RuleCompilation {
    let mut out = RuleCompilation::default();
    if rule.rule.trim().is_empty() {
        return out;
    }
    let self_ty = self_ty.unwrap_or_else(Ty::dyn_);
    let old_self_ty = if rule.optional_old_self == Some(true) {
        Ty::of(Kind::Optional(self_ty.clone()))
    } else {
        self_ty.clone()
    };
    let vars = [("self", self_ty), ("oldSelf", old_self_ty)];
    let compiled = match compile_checked(&rule.rule, &vars, &Kind::Bool) {
        Ok(c) => c,
        Err(Failure::Compile(e)) => {
            out.error = Some(format!("compilation failed: {e}"));
            return out;
        }
        Err(Failure::Output) => {
            out.error = Some("cel expression must evaluate to a bool".to_string());
            return out;
        }
    };
    let expr = compiled.program.expression();
    out.uses_old_self = refers_to_old_self(expr);
    out.max_cost = cost::estimate(expr, &compiled.checked).max;
    if !rule.message_expression.is_empty() {
        match compile_checked(&rule.message_expression, &vars, &Kind::String) {
            Ok(m) => {
                out.message_expression_max_cost =
                    Some(cost::estimate(m.program.expression(), &m.checked).max);
            }
            Err(Failure::Compile(e)) => {
                out.message_expression_error =
                    Some(format!("messageExpression compilation failed: {e}"));
            }
            Err(Failure::Output) => {
                out.message_expression_error =
                    Some("messageExpression must evaluate to a string".to_string());
            }
        }
    }
    out
}

/// A rule ready for evaluation: its AST instrumented for runtime cost.
#[derive(Debug)]
pub struct Program {
    pub expr: IdedExpr,
    pub uses_old_self: bool,
}

pub type Cached = Result<Arc<Program>, String>;
static PROGRAMS: LazyLock<Mutex<HashMap<String, Cached>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// Parses (and caches) an expression for evaluation; the error is the rendered parse error.
pub fn program(src: &str) -> Cached {
    if let Ok(c) = PROGRAMS.lock()
        && let Some(p) = c.get(src)
    {
        return p.clone();
    }
    let res = parse(src).map(|p| {
        Arc::new(Program {
            expr: instrument::instrument(p.expression()),
            uses_old_self: refers_to_old_self(p.expression()),
        })
    });
    if let Ok(mut c) = PROGRAMS.lock() {
        if c.len() > 4096 {
            c.clear();
        }
        c.insert(src.to_string(), res.clone());
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cel::decl::decl_type;
    use crate::structural::Structural;
    use serde_json::{Value, json};

    fn rule(src: &str) -> ValidationRule {
        ValidationRule {
            rule: src.to_string(),
            ..Default::default()
        }
    }

    fn compile_at(schema: Value, root: bool, r: &ValidationRule) -> RuleCompilation {
        let s = Structural::convert(&schema).expect("structural");
        compile_rule(r, decl_type(&s, root))
    }

    fn spec() -> Value {
        json!({"type": "object", "properties": {
            "x": {"type": "integer"},
            "foo-bar": {"type": "string"},
            "namespace": {"type": "string"},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
            "port": {"x-kubernetes-int-or-string": true},
            "items": {"type": "array", "items": {"type": "object", "properties": {
                "name": {"type": "string"}}}},
        }})
    }

    fn error(src: &str) -> Option<String> {
        compile_at(spec(), false, &rule(src)).error
    }

    #[test]
    fn undefined_fields_are_compile_errors() {
        assert_eq!(
            error("self.z == 100").as_deref(),
            Some(
                "compilation failed: ERROR: <input>:1:5: undefined field 'z'\n | self.z == 100\n | ....^"
            )
        );
        assert_eq!(
            error("self.items.all(i, i.name != '' && i.nme != '')").as_deref(),
            Some(
                "compilation failed: ERROR: <input>:1:36: undefined field 'nme'\n | self.items.all(i, i.name != '' && i.nme != '')\n | ...................................^"
            )
        );
        assert!(
            error("self.items.all(i, it, it.nme == '')")
                .is_some_and(|e| e.contains("undefined field 'nme'"))
        );
        assert!(error("has(self.z)").is_some_and(|e| e.contains("undefined field 'z'")));
        assert!(
            error("self.x > 0 && self.z > 0 && self.w > 0")
                .is_some_and(|e| e.matches("undefined field").count() == 2)
        );
    }

    #[test]
    fn valid_rules_compile() {
        for ok in [
            "self.x > 0",
            "has(self.x) && self.x > 0",
            "self.foo__dash__bar.startsWith('a')",
            "self.__namespace__ != ''",
            "self.labels.anything == 'x' && self.labels['a-b'] == 'y'",
            "self.free.whatever.deeper == 1",
            "type(self.port) == int || self.port.endsWith('%')",
            "self.items.map(i, i.name).all(n, n.size() < 10)",
            "self.items.exists(i, i.name == 'a') && self.items.filter(i, i.name == 'b').size() == 0",
            "self.items.all(i, self.items.exists_one(j, j.name == i.name))",
            "sets.contains(['a'], self.items.map(i, i.name))",
            "[1, 2].sum() == 3 && self.items.size() < 5",
            "optional.of(self.x).hasValue()",
            "self.x == oldSelf.x",
            "self.labels.all(k, v, k.startsWith('a') && v.size() < 10)",
            "self.items.exists(i, it, i > 0 && it.name == 'x')",
            "self.items.transformList(i, it, it.name).all(n, n != '')",
            "int('1') == 1 && string(self.x) != '' && duration('1s') > duration('0s')",
        ] {
            let r = compile_at(spec(), false, &rule(ok));
            assert_eq!(r.error, None, "{ok}");
        }
        let transition = compile_at(spec(), false, &rule("self.x >= oldSelf.x"));
        assert!(transition.uses_old_self);
        assert!(!compile_at(spec(), false, &rule("self.x > 0")).uses_old_self);
        let optional = ValidationRule {
            rule: "!oldSelf.hasValue() || oldSelf.value().x <= self.x".into(),
            optional_old_self: Some(true),
            ..Default::default()
        };
        assert_eq!(compile_at(spec(), false, &optional).error, None);
    }

    #[test]
    fn other_compile_errors() {
        assert_eq!(
            error("x > 0").as_deref(),
            Some(
                "compilation failed: ERROR: <input>:1:1: undeclared reference to 'x' (in container '')\n | x > 0\n | ^"
            )
        );
        assert_eq!(
            error("self.x").as_deref(),
            Some("cel expression must evaluate to a bool")
        );
        assert_eq!(
            error("self.x.y == 1").as_deref(),
            Some(
                "compilation failed: ERROR: <input>:1:7: type 'int' does not support field selection\n | self.x.y == 1\n | ......^"
            )
        );
        assert!(error("self = 42").is_some_and(|e| e.contains("Syntax error")));
        let with_message = |m: &str| ValidationRule {
            rule: "self.x > 0".into(),
            message_expression: m.into(),
            ..Default::default()
        };
        let r = compile_at(spec(), false, &with_message("self.x"));
        assert_eq!(
            r.message_expression_error.as_deref(),
            Some("messageExpression must evaluate to a string")
        );
        let r = compile_at(spec(), false, &with_message("'x is ' + self.y"));
        assert!(r.message_expression_error.is_some_and(|e| e.starts_with(
            "messageExpression compilation failed: ERROR: <input>:1:15: undefined field 'y'"
        )));
        let r = compile_at(spec(), false, &with_message("'x is ' + string(self.x)"));
        assert_eq!(r.message_expression_error, None);
        assert!(r.message_expression_max_cost.is_some());
    }

    #[test]
    fn resource_roots_expose_type_and_object_meta_only() {
        let root = json!({"type": "object", "properties": {"spec": spec()}});
        let at_root = |src: &str| compile_at(root.clone(), true, &rule(src)).error;
        assert_eq!(
            at_root("self.metadata.name.startsWith('a') && self.kind != ''"),
            None
        );
        assert!(
            at_root("self.metadata.labels.size() > 0")
                .is_some_and(|e| e.contains("undefined field 'labels'"))
        );
        assert!(at_root("self.spec.x > 0").is_none());
    }

    fn cost(schema: Value, src: &str) -> u64 {
        let r = compile_at(schema, false, &rule(src));
        assert_eq!(r.error, None, "{src}");
        r.max_cost
    }

    #[test]
    fn estimated_costs_follow_cel_go() {
        // 1 (range) + 1 (result) + items * (2 (loop condition) + 4 (step: ident + equality))
        let strings = json!({"type": "array", "items": {"type": "string"}});
        assert_eq!(
            cost(strings, "self.all(s, s == 'string constant')"),
            2 + 1_048_575 * 6
        );
        let bounded =
            json!({"type": "array", "maxItems": 10, "items": {"type": "string", "maxLength": 5}});
        assert_eq!(
            cost(bounded.clone(), "self.all(s, s == 'string constant')"),
            2 + 10 * 6
        );
        // comparing two strings of at most 5 characters (20 bytes) costs 2; exists() checks
        // `!@result` (3) and steps `@result || ...` (1)
        assert_eq!(
            cost(bounded, "self.all(s, self.exists(t, s == t))"),
            2 + 10 * (2 + 1 + (2 + 10 * (3 + 1 + 4)))
        );
        let large = json!({"type": "object", "properties": {"largeArray": {"type": "array", "maxItems": 725, "items": {"type": "integer"}}}});
        assert_eq!(
            cost(
                large,
                "self.largeArray.all(x, self.largeArray.all(y, y == x))"
            ),
            3 + 725 * (3 + 3 + 725 * 5)
        );
        // two-variable comprehensions cost as much as one-variable ones
        let names =
            json!({"type": "array", "maxItems": 10, "items": {"type": "string", "maxLength": 5}});
        assert_eq!(
            cost(names.clone(), "self.all(i, s, s == 'string constant')"),
            cost(names, "self.all(s, s == 'string constant')") + 2
        );
        let labels =
            json!({"type": "object", "additionalProperties": {"type": "string", "maxLength": 63}});
        // keys of schema maps have no size (upstream's map key type has MaxElements 0): matches()
        // costs ceil(0.1) * ceil(8 * 0.25); (3 MiB - 2) / (2 + 6) values
        assert_eq!(
            cost(
                labels,
                "self.all(k, v, k.matches('^[a-z]+$') && v.size() < 10)"
            ),
            4 + 393_215 * 9
        );
        let unbounded_string = json!({"type": "object", "properties": {"s": {"type": "string"}}});
        assert!(cost(unbounded_string.clone(), "self.s.contains(self.s)") > 10_000_000_000);
        assert!(cost(unbounded_string, "self.s == 'a'") < 10);
    }
}
