//! cel-go's two-variable comprehensions (ext/comprehensions.go, in the Kubernetes environment
//! since 1.32): `all`, `exists`, `existsOne`/`exists_one` with `(k, v, predicate)`, and
//! `transformList`, `transformMap`, `transformMapEntry`. The `cel` crate's interpreter runs
//! one-variable comprehensions only, so the macros expand to one over the target's indices or
//! keys (`@k8s_keys`), binding the second variable to the element (`t[k]`) with a comprehension
//! over nothing (a bind); maps are built from lists of entries afterwards.

use cel::common::ast::{
    CallExpr, ComprehensionExpr, Expr, IdedExpr, ListExpr, LiteralValue, operators,
};
use cel::common::types::DYN_TYPE;
use cel::common::value::CowVal;
use cel::parser::{Macro, MacroExprHelper, ParseError};
use cel::{Env, ExecutionError, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// The indices of a list or the keys of a map.
pub const KEYS: &str = "@k8s_keys";
/// A map from a list of `[key, value]` pairs.
pub const PAIRS_TO_MAP: &str = "@k8s_pairs_to_map";
/// The union of a list of maps, failing on a repeated key.
pub const MERGE_MAPS: &str = "@k8s_merge_maps";
/// The prefix of the variable holding a two-variable comprehension's target.
pub const TARGET_PREFIX: &str = "@k8s_t";
const ACCU: &str = "@result";

#[derive(Clone, Copy)]
enum Form {
    All,
    Exists,
    ExistsOne,
    TransformList,
    TransformMap,
    TransformMapEntry,
}

/// Registers the macros and their helper functions.
pub fn register(env: &mut Env) -> Result<(), cel::DeclarationError> {
    let macros = [
        ("all", 3, Form::All),
        ("exists", 3, Form::Exists),
        ("existsOne", 3, Form::ExistsOne),
        ("exists_one", 3, Form::ExistsOne),
        ("transformList", 3, Form::TransformList),
        ("transformList", 4, Form::TransformList),
        ("transformMap", 3, Form::TransformMap),
        ("transformMap", 4, Form::TransformMap),
        ("transformMapEntry", 3, Form::TransformMapEntry),
        ("transformMapEntry", 4, Form::TransformMapEntry),
    ];
    for (name, arity, form) in macros {
        env.add_macro(Macro::receiver(name, arity, move |h, t, a| {
            expand(form, h, t, a)
        }))?;
    }
    env.add_overload(KEYS, "k8s_keys", vec![DYN_TYPE], keys)?;
    env.add_overload(
        PAIRS_TO_MAP,
        "k8s_pairs_to_map",
        vec![DYN_TYPE],
        pairs_to_map,
    )?;
    env.add_overload(MERGE_MAPS, "k8s_merge_maps", vec![DYN_TYPE], merge_maps)
}

fn node(h: &mut MacroExprHelper<'_>, expr: Expr) -> IdedExpr {
    h.next_expr(expr)
}

fn ident(h: &mut MacroExprHelper<'_>, name: &str) -> IdedExpr {
    node(h, Expr::Ident(name.to_string()))
}

fn call(h: &mut MacroExprHelper<'_>, name: &str, args: Vec<IdedExpr>) -> IdedExpr {
    node(
        h,
        Expr::Call(CallExpr {
            func_name: name.to_string(),
            target: None,
            args,
        }),
    )
}

fn literal(h: &mut MacroExprHelper<'_>, v: LiteralValue) -> IdedExpr {
    node(h, Expr::Literal(v))
}

fn list(h: &mut MacroExprHelper<'_>, elements: Vec<IdedExpr>) -> IdedExpr {
    node(h, Expr::List(ListExpr::new(elements)))
}

/// Whether a comprehension is a bind: one over an empty list literal that never loops.
pub fn is_bind(c: &ComprehensionExpr) -> bool {
    matches!(&c.iter_range.expr, Expr::List(l) if l.elements.is_empty())
        && matches!(c.loop_cond.expr, Expr::Literal(LiteralValue::Boolean(ref b)) if !*b.inner())
}

/// Whether a bind's value is the element of a two-variable comprehension (`t[k]`), which
/// upstream reads for free.
pub fn is_element(init: &IdedExpr) -> bool {
    matches!(&init.expr, Expr::Call(c) if c.func_name == operators::INDEX
        && matches!(c.args.first().map(|a| &a.expr), Some(Expr::Ident(t)) if t.starts_with(TARGET_PREFIX)))
}

fn bind(h: &mut MacroExprHelper<'_>, var: &str, init: IdedExpr, result: IdedExpr) -> IdedExpr {
    let range = list(h, Vec::new());
    let cond = literal(h, LiteralValue::Boolean(false.into()));
    let step = ident(h, var);
    node(
        h,
        Expr::Comprehension(Box::new(ComprehensionExpr {
            iter_range: range,
            iter_var: "@k8s_unused".to_string(),
            iter_var2: None,
            accu_var: var.to_string(),
            accu_init: init,
            loop_cond: cond,
            loop_step: step,
            result,
        })),
    )
}

fn mentions(e: &IdedExpr, name: &str) -> bool {
    let mut found = false;
    crate::cel::compile::walk(e, &mut |x| {
        found |= matches!(&x.expr, Expr::Ident(n) if n == name);
    });
    found
}

fn expand(
    form: Form,
    h: &mut MacroExprHelper<'_>,
    target: &mut Option<IdedExpr>,
    args: &mut Vec<IdedExpr>,
) -> Result<Option<IdedExpr>, ParseError> {
    let name = |e: &IdedExpr| match &e.expr {
        Expr::Ident(n) => Some(n.clone()),
        _ => None,
    };
    let (Some(k), Some(v)) = (name(&args[0]), name(&args[1])) else {
        let bad = if name(&args[0]).is_none() {
            &args[0]
        } else {
            &args[1]
        };
        return Err(h.new_error(bad.id, "argument must be a simple name"));
    };
    if k == v {
        return Err(h.new_error(args[1].id, format!("duplicate variable name: {k}")));
    }
    if k == ACCU || v == ACCU {
        return Err(h.new_error(
            args[0].id,
            "iteration variable overwrites accumulator variable",
        ));
    }
    let Some(t) = target.take() else {
        return Ok(None);
    };
    let body: Vec<IdedExpr> = args.drain(2..).collect();
    let tvar = format!("{TARGET_PREFIX}{}", t.id);
    // each part of the body sees `v` bound to the element
    let bound = |h: &mut MacroExprHelper<'_>, e: IdedExpr| {
        if !mentions(&e, &v) {
            return e;
        }
        let (tv, kv) = (ident(h, &tvar), ident(h, &k));
        let element = call(h, operators::INDEX, vec![tv, kv]);
        bind(h, &v, element, e)
    };
    let mut body: Vec<IdedExpr> = body.into_iter().map(|e| bound(h, e)).collect();
    let last = body.pop().unwrap_or_default();
    let filter = body.pop();
    let accu = |h: &mut MacroExprHelper<'_>| ident(h, ACCU);
    let (init, cond, step, result) = match form {
        Form::All | Form::Exists => {
            let all = matches!(form, Form::All);
            let init = literal(h, LiteralValue::Boolean(all.into()));
            let a = accu(h);
            let tested = if all {
                a
            } else {
                call(h, operators::LOGICAL_NOT, vec![a])
            };
            let cond = call(h, operators::NOT_STRICTLY_FALSE, vec![tested]);
            let a = accu(h);
            let op = if all {
                operators::LOGICAL_AND
            } else {
                operators::LOGICAL_OR
            };
            let step = call(h, op, vec![a, last]);
            (init, cond, step, accu(h))
        }
        Form::ExistsOne => {
            let init = literal(h, LiteralValue::Int(0.into()));
            let cond = literal(h, LiteralValue::Boolean(true.into()));
            let (a, one) = (accu(h), literal(h, LiteralValue::Int(1.into())));
            let inc = call(h, operators::ADD, vec![a, one]);
            let a = accu(h);
            let step = call(h, operators::CONDITIONAL, vec![last, inc, a]);
            let (a, one) = (accu(h), literal(h, LiteralValue::Int(1.into())));
            let result = call(h, operators::EQUALS, vec![a, one]);
            (init, cond, step, result)
        }
        Form::TransformList | Form::TransformMap | Form::TransformMapEntry => {
            let init = list(h, Vec::new());
            let cond = literal(h, LiteralValue::Boolean(true.into()));
            let item = match form {
                Form::TransformMap => {
                    let key = ident(h, &k);
                    list(h, vec![key, last])
                }
                _ => last,
            };
            let (a, items) = (accu(h), list(h, vec![item]));
            let mut step = call(h, operators::ADD, vec![a, items]);
            if let Some(f) = filter {
                let a = accu(h);
                step = call(h, operators::CONDITIONAL, vec![f, step, a]);
            }
            (init, cond, step, accu(h))
        }
    };
    let tv = ident(h, &tvar);
    let range = call(h, KEYS, vec![tv]);
    let mut out = node(
        h,
        Expr::Comprehension(Box::new(ComprehensionExpr {
            iter_range: range,
            iter_var: k,
            iter_var2: None,
            accu_var: ACCU.to_string(),
            accu_init: init,
            loop_cond: cond,
            loop_step: step,
            result,
        })),
    );
    match form {
        Form::TransformMap => out = call(h, PAIRS_TO_MAP, vec![out]),
        Form::TransformMapEntry => out = call(h, MERGE_MAPS, vec![out]),
        _ => {}
    }
    Ok(Some(bind(h, &tvar, t, out)))
}

type Res<'b, 'v> = Result<CowVal<'b, 'v>, ExecutionError>;

fn arg(args: &[CowVal<'_, '_>]) -> Result<Value, ExecutionError> {
    match args.first() {
        Some(a) => Value::try_from(a.as_ref()),
        None => Err(ExecutionError::invalid_argument_count(1, 0)),
    }
}

fn out<'b, 'v>(v: Value) -> Res<'b, 'v> {
    let boxed: Box<dyn cel::common::value::Val> = v.try_into()?;
    Ok(CowVal::Owned(boxed))
}

fn keys<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Res<'b, 'v> {
    let keys = match arg(&args)? {
        Value::List(l) => (0..l.len() as i64).map(Value::Int).collect(),
        Value::Map(m) => m.map.keys().map(Value::from).collect(),
        other => {
            return Err(ExecutionError::UnexpectedType {
                got: format!("{other:?}"),
                want: "list or map".into(),
            });
        }
    };
    out(Value::List(Arc::new(keys)))
}

fn insert(
    map: &mut HashMap<cel::objects::Key, Value>,
    k: &Value,
    v: Value,
) -> Result<(), ExecutionError> {
    let key = match k {
        Value::String(s) => cel::objects::Key::String(s.clone()),
        Value::Int(i) => cel::objects::Key::Int(*i),
        Value::UInt(u) => cel::objects::Key::Uint(*u),
        Value::Bool(b) => cel::objects::Key::Bool(*b),
        other => return Err(ExecutionError::UnsupportedKeyType(other.clone())),
    };
    if map.contains_key(&key) {
        return Err(ExecutionError::function_error(
            "transformMapEntry",
            format!("insert failed: key {} already exists", render_key(k)),
        ));
    }
    map.insert(key, v);
    Ok(())
}

fn render_key(k: &Value) -> String {
    match k {
        Value::String(s) => s.to_string(),
        Value::Int(i) => i.to_string(),
        Value::UInt(u) => u.to_string(),
        Value::Bool(b) => b.to_string(),
        other => format!("{other:?}"),
    }
}

fn pairs_to_map<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Res<'b, 'v> {
    let Value::List(pairs) = arg(&args)? else {
        return Err(ExecutionError::function_error("transformMap", "not a list"));
    };
    let mut map = HashMap::new();
    for p in pairs.iter() {
        if let Value::List(kv) = p
            && let [k, v] = kv.as_slice()
        {
            insert(&mut map, k, v.clone())?;
        }
    }
    out(Value::Map(map.into()))
}

fn merge_maps<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Res<'b, 'v> {
    let Value::List(maps) = arg(&args)? else {
        return Err(ExecutionError::function_error(
            "transformMapEntry",
            "not a list",
        ));
    };
    let mut map = HashMap::new();
    for m in maps.iter() {
        let Value::Map(m) = m else {
            return Err(ExecutionError::function_error(
                "transformMapEntry",
                "the transformation must produce a map",
            ));
        };
        for (k, v) in m.map.iter() {
            insert(&mut map, &Value::from(k), v.clone())?;
        }
    }
    out(Value::Map(map.into()))
}

#[cfg(test)]
mod tests {
    use crate::cel::library::test_eval as eval;
    use cel::Value;

    #[test]
    fn two_variable_comprehensions() {
        let t = |src: &str| assert_eq!(eval(src), Ok(Value::Bool(true)), "{src}");
        t("[10, 20].all(i, v, v == (i + 1) * 10)");
        t("!{'a': 1, 'b': 2}.all(k, v, v == 1)");
        t("{'a': 1, 'b': 2}.exists(k, v, k == 'b' && v == 2)");
        t("[1, 2, 1].existsOne(i, v, v == 2) && [1, 2, 1].exists_one(i, v, i == 0)");
        t("[1, 2, 3].transformList(i, v, v * i) == [0, 2, 6]");
        t("[1, 2, 3].transformList(i, v, i > 0, v) == [2, 3]");
        t("{'a': 1, 'b': 2}.transformMap(k, v, v + 1) == {'a': 2, 'b': 3}");
        t("{'a': 1, 'b': 2}.transformMap(k, v, k == 'a', v) == {'a': 1}");
        t("{'a': 'x'}.transformMapEntry(k, v, {v: k}) == {'x': 'a'}");
        t("[[1, 2], [3]].all(i, l, l.all(j, x, x > i))");
        let dup = eval("{'a': 'x', 'b': 'x'}.transformMapEntry(k, v, {v: k})").unwrap_err();
        assert!(dup.contains("insert failed: key x already exists"), "{dup}");
        assert!(
            eval("[1].all(i, i, true)")
                .unwrap_err()
                .contains("duplicate variable name: i")
        );
    }
}
