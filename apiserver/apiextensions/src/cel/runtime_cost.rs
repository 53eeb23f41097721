//! Runtime cost of evaluating a rule (mirrors cel-go interpreter/runtimecost.go with the
//! Kubernetes `CallCost`s of apiserver pkg/cel/library/cost.go). The `cel` crate does not meter
//! evaluation, so [`instrument`] rewrites a rule's AST: each place that is evaluated a variable
//! number of times (a comprehension's loop, a branch of `&&`, `||`, `?:`) is wrapped in a call
//! to `@k8s_cost(value, n)` charging the fixed cost of that part (identifiers and selections 1,
//! calls 1, list/map literals 10/30), and each call whose cost depends on its operands' sizes
//! (string comparison and concatenation, `in`, `matches`, `contains`, the list and string
//! libraries) binds its operands and calls `@k8s_cost_sized`, which charges cel-go's size-based
//! cost (see [`crate::cel::instrument`]). The charges go to a per-thread meter ([`metered`]) that fails the evaluation once the
//! per-call limit is exceeded.

use crate::cel::cost::{REGEX_FACTOR, STRING_FACTOR};
use cel::common::types::{CelBytes, CelString, DYN_TYPE, INT_TYPE, Kind};
use cel::common::value::{CowVal, Val};
use cel::{Env, ExecutionError, Value};
use std::cell::Cell;

/// Upstream `PerCallLimit`: the most one evaluation of a rule may cost.
pub const PER_CALL_LIMIT: u64 = 1_000_000;
/// Upstream `RuntimeCELCostBudget`: the most all rules of one object may cost together.
pub const RUNTIME_BUDGET: i64 = 10_000_000;
/// cel-go's error when the per-call limit is exceeded.
pub const LIMIT_EXCEEDED: &str = "operation cancelled: actual cost limit exceeded";

pub(crate) const TICK: &str = "@k8s_cost";
pub(crate) const SIZED: &str = "@k8s_cost_sized";

#[derive(Clone, Copy, Default)]
struct Meter {
    cost: u64,
    limit: u64,
    exceeded: bool,
    active: bool,
}

thread_local! {
    static METER: Cell<Meter> = const { Cell::new(Meter { cost: 0, limit: 0, exceeded: false, active: false }) };
}

/// The cost one evaluation took, and whether it exceeded the limit (and was cancelled).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Usage {
    pub cost: u64,
    pub exceeded: bool,
}

/// Runs `f`, metering the instrumented expressions it evaluates against `limit`.
pub fn metered<T>(limit: u64, f: impl FnOnce() -> T) -> (T, Usage) {
    let fresh = Meter {
        cost: 0,
        limit,
        exceeded: false,
        active: true,
    };
    let saved = METER.with(|m| m.replace(fresh));
    let out = f();
    let m = METER.with(|m| m.replace(saved));
    (
        out,
        Usage {
            cost: m.cost,
            exceeded: m.exceeded,
        },
    )
}

fn charge(n: u64) -> Result<(), ExecutionError> {
    METER.with(|m| {
        let mut v = m.get();
        if !v.active {
            return Ok(());
        }
        v.cost = v.cost.saturating_add(n);
        if v.cost > v.limit {
            v.exceeded = true;
        }
        m.set(v);
        if v.exceeded {
            Err(ExecutionError::function_error("cost", LIMIT_EXCEEDED))
        } else {
            Ok(())
        }
    })
}

/// Registers the metering functions on the rules' environment.
pub fn register(env: &mut Env) -> Result<(), cel::DeclarationError> {
    env.add_overload(TICK, "k8s_cost_tick", vec![DYN_TYPE, INT_TYPE], tick)?;
    env.add_overload(SIZED, "k8s_cost_sized0", vec![DYN_TYPE, INT_TYPE], sized)?;
    env.add_overload(
        SIZED,
        "k8s_cost_sized1",
        vec![DYN_TYPE, INT_TYPE, DYN_TYPE],
        sized,
    )?;
    env.add_overload(
        SIZED,
        "k8s_cost_sized2",
        vec![DYN_TYPE, INT_TYPE, DYN_TYPE, DYN_TYPE],
        sized,
    )
}

fn int_arg(v: Option<&CowVal<'_, '_>>) -> u64 {
    match v.map(|v| Value::try_from(v.as_ref())) {
        Some(Ok(Value::Int(n))) => u64::try_from(n).unwrap_or(0),
        _ => 0,
    }
}

fn first<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    args.into_iter()
        .next()
        .ok_or_else(|| ExecutionError::invalid_argument_count(2, 0))
}

fn tick<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    charge(int_arg(args.get(1)))?;
    first(args)
}

/// cel-go's `actualSize`: characters of a string, bytes, items or entries; 1 for the rest.
fn size(v: &dyn Val) -> u64 {
    if let Some(s) = v.downcast_ref::<CelString>() {
        return s.chars().count() as u64;
    }
    if let Some(b) = v.downcast_ref::<CelBytes>() {
        return b.inner().len() as u64;
    }
    if let Some(s) = v.as_sizer() {
        return u64::try_from(*s.size().inner()).unwrap_or(0);
    }
    1
}

fn textual(v: &dyn Val) -> bool {
    v.downcast_ref::<CelString>().is_some() || v.downcast_ref::<CelBytes>().is_some()
}

fn scaled(n: u64, f: f64) -> u64 {
    (n as f64 * f).ceil() as u64
}

/// The Kubernetes library's `traversalCost`: a tenth per byte of strings, 1 per other element.
fn traversal(v: &Value) -> u64 {
    match v {
        Value::String(s) => (s.len() as f64 * STRING_FACTOR) as u64,
        Value::Bytes(b) => (b.len() as f64 * STRING_FACTOR) as u64,
        Value::List(l) => l.iter().map(traversal).sum(),
        Value::Map(m) => m
            .map
            .iter()
            .map(|(k, v)| traversal(&Value::from(k)) + traversal(v))
            .sum(),
        _ => 1,
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(i64)]
pub(crate) enum Sized {
    Equals = 0,
    Compare,
    Add,
    Prefix,
    In,
    Regex,
    Contains,
    Traversal,
    String1,
    String2,
    Join,
}

const ALL: [Sized; 11] = [
    Sized::Equals,
    Sized::Compare,
    Sized::Add,
    Sized::Prefix,
    Sized::In,
    Sized::Regex,
    Sized::Contains,
    Sized::Traversal,
    Sized::String1,
    Sized::String2,
    Sized::Join,
];

fn sized_cost(kind: Sized, result: &dyn Val, a: Option<&dyn Val>, b: Option<&dyn Val>) -> u64 {
    let sa = a.map_or(1, size);
    let sb = b.map_or(1, size);
    let both_textual = a.is_some_and(textual) && b.is_some_and(textual);
    match kind {
        Sized::Equals => scaled(sa.min(sb), STRING_FACTOR),
        Sized::Compare if both_textual => scaled(sa.min(sb), STRING_FACTOR),
        Sized::Add if both_textual => scaled(sa.saturating_add(sb), STRING_FACTOR),
        Sized::Prefix | Sized::String1 => scaled(sa, STRING_FACTOR),
        Sized::In if a.is_some_and(|a| a.get_type().kind() == Kind::List) => sa,
        Sized::Regex => {
            scaled(sa.saturating_add(1), STRING_FACTOR).saturating_mul(scaled(sb, REGEX_FACTOR))
        }
        Sized::Contains if a.is_some_and(textual) => {
            scaled(sa, STRING_FACTOR).saturating_mul(scaled(sb, STRING_FACTOR))
        }
        Sized::Traversal => a
            .and_then(|a| Value::try_from(a).ok())
            .map_or(1, |v| traversal(&v)),
        Sized::String2 => scaled(sa, 2.0 * STRING_FACTOR),
        Sized::Join => scaled(size(result), 2.0 * STRING_FACTOR),
        _ => 1,
    }
}

fn sized<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let kind = int_arg(args.get(1));
    let kind = ALL
        .iter()
        .copied()
        .find(|k| *k as i64 as u64 == kind)
        .unwrap_or(Sized::Equals);
    let a = args.get(2).map(|v| v.as_ref());
    let b = args.get(3).map(|v| v.as_ref());
    let result = args
        .first()
        .ok_or_else(|| ExecutionError::invalid_argument_count(2, 0))?;
    charge(sized_cost(kind, result.as_ref(), a, b))?;
    first(args)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cel::instrument::instrument;
    use crate::cel::library::ENV;
    use std::sync::Arc;

    fn run(src: &str, vars: &[(&str, Value)]) -> (Result<Value, ExecutionError>, Usage) {
        let program = ENV.compile(src).expect("parses");
        let expr = instrument(program.expression());
        let mut ctx = cel::Context::with_env(ENV.clone());
        for (n, v) in vars {
            ctx.add_variable_from_value(*n, v.clone());
        }
        metered(PER_CALL_LIMIT, || Value::resolve(&expr, &ctx))
    }

    fn ints(n: usize) -> Value {
        Value::List(Arc::new((0..n).map(|_| Value::Int(20)).collect()))
    }

    #[test]
    fn costs_follow_cel_go() {
        // ident 1 + ident 1 + equality of scalars 1
        assert_eq!(run("x == y", &[("x", 1.into()), ("y", 1.into())]).1.cost, 3);
        // self.a (2) + literal + ceil(min(3, 3) * 0.1)
        let key = cel::objects::Key::String(Arc::new("a".into()));
        let s = Value::Map(
            std::collections::HashMap::from([(key, Value::String(Arc::new("abc".into())))]).into(),
        );
        assert_eq!(run("self.a == 'abc'", &[("self", s)]).1.cost, 3);
        // all() over n items: range 1 + result 1 + n * (cond 2 + step ident 1 + body 2)
        let (r, u) = run("l.all(x, x == 20)", &[("l", ints(10))]);
        assert_eq!(r, Ok(Value::Bool(true)));
        assert_eq!(u.cost, 2 + 10 * 5);
        // map and filter keep their results
        let (r, _) = run(
            "l.map(x, x + 1).filter(x, x > 20).size()",
            &[("l", ints(3))],
        );
        assert_eq!(r, Ok(Value::Int(3)));
        let (r, _) = run("l.exists_one(x, x == 20)", &[("l", ints(2))]);
        assert_eq!(r, Ok(Value::Bool(false)));
        // `in` costs the list size
        let (_, small) = run("20 in l", &[("l", ints(1))]);
        let (_, big) = run("20 in l", &[("l", ints(101))]);
        assert_eq!(big.cost - small.cost, 100);
    }

    #[test]
    fn nested_loops_over_a_large_list_exceed_the_per_call_limit() {
        let rule = "l.all(x, l.all(y, y == x))";
        let (r, u) = run(rule, &[("l", ints(725))]);
        assert!(u.exceeded && r.is_err(), "{r:?} {u:?}");
        // stopped right after the limit
        assert!(
            u.cost > PER_CALL_LIMIT && u.cost < PER_CALL_LIMIT + 10_000,
            "{u:?}"
        );
        let (r, u) = run(rule, &[("l", ints(100))]);
        assert_eq!(r, Ok(Value::Bool(true)));
        assert!(!u.exceeded && u.cost > 10_000, "{u:?}");
        // short-circuiting stops early, as upstream
        let distinct = Value::List(Arc::new((0..725).map(Value::Int).collect()));
        let (r, u) = run(rule, &[("l", distinct)]);
        assert_eq!(r, Ok(Value::Bool(false)));
        assert!(!u.exceeded, "{u:?}");
    }

    #[test]
    fn errors_and_short_circuits_are_preserved() {
        let (r, _) = run("false && 1/0 == 1", &[]);
        assert_eq!(r, Ok(Value::Bool(false)));
        let (r, _) = run("[1, 0].all(x, 1/x > 0) || true", &[]);
        assert_eq!(r, Ok(Value::Bool(true)));
        let (r, _) = run("'abc'.startsWith('a') && 'a' + 'b' == 'ab'", &[]);
        assert_eq!(r, Ok(Value::Bool(true)));
        let (r, _) = run("[1, 2].map(x, x * 2) == [2, 4]", &[]);
        assert_eq!(r, Ok(Value::Bool(true)));
    }
}
