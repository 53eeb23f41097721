//! The CEL environment of `x-kubernetes-validations` rules: the standard library, cel-go's
//! strings extension and the Kubernetes libraries (mirrors apiserver pkg/cel/environment/base.go
//! and pkg/cel/library/{lists,regex}.go, cel-go ext/sets.go; two-variable comprehensions are in
//! [`crate::cel::comprehensions`], IP/CIDR in [`crate::cel::net`], URLs in
//! [`crate::cel::url`],
//! quantities in [`crate::cel::quantity`], named formats in
//! [`crate::cel::format`]): `isSorted`, `sum`, `min`, `max`,
//! `indexOf`/`lastIndexOf` on lists, `find`/`findAll` on strings and `sets.contains`,
//! `sets.equivalent`, `sets.intersects`.

use cel::common::types::{DYN_TYPE, INT_TYPE, LIST_TYPE, STRING_TYPE};
use cel::common::value::CowVal;
use cel::{Env, ExecutionError, Value};
use std::cmp::Ordering;
use std::sync::{Arc, LazyLock};

/// The shared environment every rule is compiled and evaluated with.
pub static ENV: LazyLock<Arc<Env>> = LazyLock::new(|| {
    // The declarations are static: a conflict is a programming error the tests catch; the
    // standard library alone still evaluates most rules.
    Arc::new(build().unwrap_or_else(|_| Env::stdlib()))
});

fn build() -> Result<Env, cel::DeclarationError> {
    let mut env = Env::stdlib();
    env.add_extension(cel::extensions::strings)
        .and_then(|()| env.add_extension(register))
        .and_then(|()| env.add_extension(crate::cel::comprehensions::register))
        .and_then(|()| env.add_extension(crate::cel::net::register))
        .and_then(|()| env.add_extension(crate::cel::url::register))
        .and_then(|()| env.add_extension(crate::cel::quantity::register))
        .and_then(|()| env.add_extension(crate::cel::format::register))
        .and_then(|()| env.add_extension(crate::cel::runtime_cost::register))?;
    Ok(env)
}

fn register(env: &mut Env) -> Result<(), cel::DeclarationError> {
    env.add_member_overload(
        "isSorted",
        "list_is_sorted_bool",
        LIST_TYPE,
        vec![],
        is_sorted,
    )?;
    env.add_member_overload("sum", "list_sum", LIST_TYPE, vec![], sum)?;
    env.add_member_overload("min", "list_min", LIST_TYPE, vec![], min)?;
    env.add_member_overload("max", "list_max", LIST_TYPE, vec![], max)?;
    env.add_member_overload(
        "indexOf",
        "list_a_index_of_int",
        LIST_TYPE,
        vec![DYN_TYPE],
        index_of,
    )?;
    env.add_member_overload(
        "lastIndexOf",
        "list_a_last_index_of_int",
        LIST_TYPE,
        vec![DYN_TYPE],
        last_index_of,
    )?;
    env.add_member_overload(
        "find",
        "string_find_string",
        STRING_TYPE,
        vec![STRING_TYPE],
        find,
    )?;
    env.add_member_overload(
        "findAll",
        "string_find_all_string",
        STRING_TYPE,
        vec![STRING_TYPE],
        find_all,
    )?;
    env.add_member_overload(
        "findAll",
        "string_find_all_string_int",
        STRING_TYPE,
        vec![STRING_TYPE, INT_TYPE],
        find_all,
    )?;
    env.add_overload(
        "sets.contains",
        "list_sets_contains_list",
        vec![LIST_TYPE, LIST_TYPE],
        sets_contains,
    )?;
    env.add_overload(
        "sets.equivalent",
        "list_sets_equivalent_list",
        vec![LIST_TYPE, LIST_TYPE],
        sets_equivalent,
    )?;
    env.add_overload(
        "sets.intersects",
        "list_sets_intersects_list",
        vec![LIST_TYPE, LIST_TYPE],
        sets_intersects,
    )?;
    Ok(())
}

type List = Arc<Vec<Value>>;
type Res<'b, 'v> = Result<CowVal<'b, 'v>, ExecutionError>;

fn values(args: &[CowVal<'_, '_>]) -> Result<Vec<Value>, ExecutionError> {
    args.iter().map(|a| Value::try_from(a.as_ref())).collect()
}

fn out<'b, 'v>(v: Value) -> Res<'b, 'v> {
    let boxed: Box<dyn cel::common::value::Val> = v.try_into()?;
    Ok(CowVal::Owned(boxed))
}

fn list_arg(v: &Value, function: &str) -> Result<Arc<Vec<Value>>, ExecutionError> {
    match v {
        Value::List(l) => Ok(l.clone()),
        other => Err(no_overload(function, &[other])),
    }
}

fn type_name(v: &Value) -> String {
    match v {
        Value::List(_) => "list".into(),
        Value::Map(_) => "map".into(),
        Value::Int(_) => "int".into(),
        Value::UInt(_) => "uint".into(),
        Value::Float(_) => "double".into(),
        Value::String(_) => "string".into(),
        Value::Bytes(_) => "bytes".into(),
        Value::Bool(_) => "bool".into(),
        Value::Duration(_) => "google.protobuf.Duration".into(),
        Value::Timestamp(_) => "google.protobuf.Timestamp".into(),
        Value::Null => "null_type".into(),
        _ => "dyn".into(),
    }
}

fn no_overload(function: &str, args: &[&Value]) -> ExecutionError {
    ExecutionError::no_such_member_overload(function, args.iter().map(|v| type_name(v)).collect())
}

/// `a` compared to `b`; values of different types (other than numbers) are not comparable.
fn compare(a: &Value, b: &Value, function: &str) -> Result<Ordering, ExecutionError> {
    match (a, b) {
        (Value::List(_) | Value::Map(_), _) | (_, Value::List(_) | Value::Map(_)) => {
            Err(no_overload(function, &[a, b]))
        }
        _ => a
            .partial_cmp(b)
            .ok_or_else(|| no_overload(function, &[a, b])),
    }
}

fn is_sorted<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Res<'b, 'v> {
    let vals = values(&args)?;
    let list = list_arg(vals.first().unwrap_or(&Value::Null), "isSorted")?;
    for pair in list.windows(2) {
        if compare(&pair[0], &pair[1], "isSorted")? == Ordering::Greater {
            return out(Value::Bool(false));
        }
    }
    out(Value::Bool(true))
}

fn add(acc: Value, next: &Value) -> Result<Value, ExecutionError> {
    let overflow = || ExecutionError::function_error("sum", "integer overflow");
    Ok(match (&acc, next) {
        (Value::Int(a), Value::Int(b)) => Value::Int(a.checked_add(*b).ok_or_else(overflow)?),
        (Value::UInt(a), Value::UInt(b)) => Value::UInt(a.checked_add(*b).ok_or_else(overflow)?),
        (Value::Float(a), Value::Float(b)) => Value::Float(a + b),
        (Value::Duration(a), Value::Duration(b)) => {
            Value::Duration(a.checked_add(b).ok_or_else(overflow)?)
        }
        _ => return Err(no_overload("sum", &[&acc, next])),
    })
}

/// The sum of a list of numbers or durations; an empty list sums to `0`.
fn sum<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Res<'b, 'v> {
    let vals = values(&args)?;
    let list = list_arg(vals.first().unwrap_or(&Value::Null), "sum")?;
    let mut items = list.iter();
    let Some(first) = items.next() else {
        return out(Value::Int(0));
    };
    if !matches!(
        first,
        Value::Int(_) | Value::UInt(_) | Value::Float(_) | Value::Duration(_)
    ) {
        return Err(no_overload("sum", &[first]));
    }
    let mut acc = first.clone();
    for next in items {
        acc = add(acc, next)?;
    }
    out(acc)
}

fn extreme<'b, 'v>(args: Vec<CowVal<'b, 'v>>, name: &str, prefer: Ordering) -> Res<'b, 'v> {
    let vals = values(&args)?;
    let list = list_arg(vals.first().unwrap_or(&Value::Null), name)?;
    let mut best: Option<&Value> = None;
    for next in list.iter() {
        best = Some(match best {
            None => {
                // a single element must still be comparable
                compare(next, next, name)?;
                next
            }
            Some(b) if compare(b, next, name)? == prefer => next,
            Some(b) => b,
        });
    }
    match best {
        Some(b) => out(b.clone()),
        None => Err(ExecutionError::function_error(
            name,
            format!("{name} called on empty list"),
        )),
    }
}

fn min<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Res<'b, 'v> {
    extreme(args, "min", Ordering::Greater)
}

fn max<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Res<'b, 'v> {
    extreme(args, "max", Ordering::Less)
}

fn position<'b, 'v>(args: Vec<CowVal<'b, 'v>>, name: &str, last: bool) -> Res<'b, 'v> {
    let vals = values(&args)?;
    let (Some(list), Some(item)) = (vals.first(), vals.get(1)) else {
        return Err(ExecutionError::invalid_argument_count(2, vals.len()));
    };
    let list = list_arg(list, name)?;
    let found = if last {
        list.iter().rposition(|v| v == item)
    } else {
        list.iter().position(|v| v == item)
    };
    out(Value::Int(found.map_or(-1, |i| i as i64)))
}

fn index_of<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Res<'b, 'v> {
    position(args, "indexOf", false)
}

fn last_index_of<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Res<'b, 'v> {
    position(args, "lastIndexOf", true)
}

fn string_args(vals: &[Value], function: &str) -> Result<(String, regex::Regex), ExecutionError> {
    match (vals.first(), vals.get(1)) {
        (Some(Value::String(s)), Some(Value::String(re))) => {
            let re = regex::Regex::new(re).map_err(|e| {
                ExecutionError::function_error(function, format!("Illegal regex: {e}"))
            })?;
            Ok((s.to_string(), re))
        }
        _ => Err(no_overload(function, &vals.iter().collect::<Vec<_>>())),
    }
}

/// The first match of a regex in the string, `""` when none.
fn find<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Res<'b, 'v> {
    let vals = values(&args)?;
    let (s, re) = string_args(&vals, "find")?;
    let m = re
        .find(&s)
        .map(|m| m.as_str().to_string())
        .unwrap_or_default();
    out(Value::String(Arc::new(m)))
}

/// All (or the first `n`, when `n >= 0`) matches of a regex in the string.
fn find_all<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Res<'b, 'v> {
    let vals = values(&args)?;
    let (s, re) = string_args(&vals, "findAll")?;
    let limit = match vals.get(2) {
        Some(Value::Int(n)) if *n >= 0 => usize::try_from(*n).unwrap_or(usize::MAX),
        _ => usize::MAX,
    };
    let found = re
        .find_iter(&s)
        .take(limit)
        .map(|m| Value::String(Arc::new(m.as_str().to_string())))
        .collect();
    out(Value::List(Arc::new(found)))
}

fn two_lists(args: &[CowVal<'_, '_>], function: &str) -> Result<(List, List), ExecutionError> {
    let vals = values(args)?;
    match (vals.first(), vals.get(1)) {
        (Some(a), Some(b)) => Ok((list_arg(a, function)?, list_arg(b, function)?)),
        _ => Err(ExecutionError::invalid_argument_count(2, vals.len())),
    }
}

fn contains_all(list: &[Value], sub: &[Value]) -> bool {
    sub.iter().all(|s| list.contains(s))
}

fn sets_contains<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Res<'b, 'v> {
    let (a, b) = two_lists(&args, "sets.contains")?;
    out(Value::Bool(contains_all(&a, &b)))
}

fn sets_equivalent<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Res<'b, 'v> {
    let (a, b) = two_lists(&args, "sets.equivalent")?;
    out(Value::Bool(contains_all(&a, &b) && contains_all(&b, &a)))
}

fn sets_intersects<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Res<'b, 'v> {
    let (a, b) = two_lists(&args, "sets.intersects")?;
    out(Value::Bool(b.iter().any(|x| a.contains(x))))
}

/// Compiles and runs `src` in the shared environment (for the library modules' tests).
#[cfg(test)]
pub(crate) fn test_eval(src: &str) -> Result<cel::Value, String> {
    let program = ENV.compile(src).map_err(|e| e.to_string())?;
    let ctx = cel::Context::with_env(ENV.clone());
    program.execute(&ctx).map_err(|e| e.to_string())
}

/// Asserts that `src` evaluates to `true` (for the library modules' tests).
#[cfg(test)]
pub(crate) fn assert_true(src: &str) {
    assert_eq!(test_eval(src), Ok(cel::Value::Bool(true)), "{src}");
}

#[cfg(test)]
mod tests {
    use super::test_eval as eval;
    use super::*;

    fn ok(src: &str) -> Value {
        eval(src).unwrap_or_else(|e| panic!("{src}: {e}"))
    }

    #[test]
    fn every_library_registers() {
        assert!(build().is_ok());
    }

    #[test]
    fn list_library() {
        assert_eq!(ok("[1, 2, 3].isSorted()"), Value::Bool(true));
        assert_eq!(ok("['a', 'b', 'b', 'c'].isSorted()"), Value::Bool(true));
        assert_eq!(ok("[2.0, 1.0].isSorted()"), Value::Bool(false));
        assert_eq!(ok("[].isSorted()"), Value::Bool(true));
        assert_eq!(ok("[1, 3].sum()"), Value::Int(4));
        assert_eq!(ok("[1.0, 3.5].sum()"), Value::Float(4.5));
        assert_eq!(ok("[].sum()"), Value::Int(0));
        assert_eq!(ok("[3, 4].sum() + [5, 10].sum()"), Value::Int(22));
        assert_eq!(ok("[1, 3].min()"), Value::Int(1));
        assert_eq!(ok("[1, 3].max()"), Value::Int(3));
        assert_eq!(ok("['b', 'a'].min()"), Value::String(Arc::new("a".into())));
        assert_eq!(ok("[1, 2, 2, 3].indexOf(2)"), Value::Int(1));
        assert_eq!(ok("['a', 'b', 'b', 'c'].lastIndexOf('b')"), Value::Int(2));
        assert_eq!(ok("[1.0].indexOf(1.1)"), Value::Int(-1));
        assert_eq!(ok("[].indexOf('string')"), Value::Int(-1));
        let empty = eval("[].min()").unwrap_err();
        assert!(empty.contains("min called on empty list"), "{empty}");
        assert!(eval("[9223372036854775807, 1].sum()").is_err());
        assert!(eval("[1, 'a'].isSorted()").is_err());
    }

    #[test]
    fn string_and_regex_libraries() {
        assert_eq!(
            ok("'TacoCat'.lowerAscii()"),
            Value::String(Arc::new("tacocat".into()))
        );
        assert_eq!(ok("'abc'.upperAscii() == 'ABC'"), Value::Bool(true));
        assert_eq!(ok("'  x '.trim() == 'x'"), Value::Bool(true));
        assert_eq!(
            ok("'a-b-c'.replace('-', '.') == 'a.b.c'"),
            Value::Bool(true)
        );
        assert_eq!(ok("'a,b'.split(',') == ['a', 'b']"), Value::Bool(true));
        assert_eq!(ok("['a', 'b'].join('-') == 'a-b'"), Value::Bool(true));
        assert_eq!(ok("'hello'.substring(1, 3) == 'el'"), Value::Bool(true));
        assert_eq!(ok("'hello'.indexOf('l')"), Value::Int(2));
        assert_eq!(ok("'hello'.lastIndexOf('l')"), Value::Int(3));
        assert_eq!(ok("'hello'.charAt(1) == 'e'"), Value::Bool(true));
        assert_eq!(ok("'abc 123'.find('[0-9]+') == '123'"), Value::Bool(true));
        assert_eq!(ok("'abc'.find('[0-9]+') == ''"), Value::Bool(true));
        assert_eq!(
            ok("'123 abc 456'.findAll('[0-9]+') == ['123', '456']"),
            Value::Bool(true)
        );
        assert_eq!(
            ok("'123 abc 456'.findAll('[0-9]+', 1) == ['123']"),
            Value::Bool(true)
        );
        assert!(eval("'x'.find('[')").unwrap_err().contains("Illegal regex"));
    }

    #[test]
    fn sets_library() {
        assert_eq!(ok("sets.contains([1, 2, 3], [2, 3])"), Value::Bool(true));
        assert_eq!(ok("sets.contains([1], [2])"), Value::Bool(false));
        assert_eq!(ok("sets.equivalent([1, 2], [2, 1, 1])"), Value::Bool(true));
        assert_eq!(ok("sets.intersects([1, 2], [3, 2])"), Value::Bool(true));
        assert_eq!(ok("sets.intersects([1], [])"), Value::Bool(false));
    }
}
