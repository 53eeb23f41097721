//! The Kubernetes quantity CEL library (mirrors apiserver pkg/cel/library/quantity.go):
//! `quantity()`, `isQuantity()`, `sign()`, `isInteger()`, `asInteger()`,
//! `asApproximateFloat()`, `add()`/`sub()` (of quantities or ints), `isGreaterThan()`,
//! `isLessThan()`, `compareTo()`. Values are the apis crate's exact nano-unit quantities.

use apiserver_apis::quantity::{self, Format, Quantity};
use cel::common::types::{INT_TYPE, STRING_TYPE, Type};
use cel::common::value::{CowVal, Val};
use cel::objects::Opaque;
use cel::{Env, ExecutionError, Value};
use std::sync::Arc;

const QUANTITY_TYPE: &str = "kubernetes.Quantity";
const NANO: i128 = 1_000_000_000;

#[derive(Debug)]
struct Q(Quantity);

/// Quantities are equal when their values are (`1Gi == 1073741824`).
impl PartialEq for Q {
    fn eq(&self, other: &Self) -> bool {
        self.0.nanos == other.0.nanos
    }
}

impl Eq for Q {}

impl Opaque for Q {
    fn runtime_type_name(&self) -> &str {
        QUANTITY_TYPE
    }
}

type Res<'b, 'v> = Result<CowVal<'b, 'v>, ExecutionError>;
type Function = for<'b, 'v> fn(Vec<CowVal<'b, 'v>>) -> Res<'b, 'v>;

/// Registers the quantity library.
pub fn register(env: &mut Env) -> Result<(), cel::DeclarationError> {
    let q = || Type::new_opaque_type(QUANTITY_TYPE);
    env.add_overload("quantity", "string_to_quantity", vec![STRING_TYPE], parse)?;
    env.add_overload(
        "isQuantity",
        "is_quantity_string",
        vec![STRING_TYPE],
        is_quantity,
    )?;
    env.add_overload("sign", "quantity_sign", vec![q()], sign)?;
    let members: [(&str, &str, Vec<Type>, Function); 11] = [
        ("sign", "quantity_sign_member", vec![], sign),
        (
            "isGreaterThan",
            "quantity_is_greater_than",
            vec![q()],
            greater,
        ),
        ("isLessThan", "quantity_is_less_than", vec![q()], less),
        ("compareTo", "quantity_compare_to", vec![q()], compare_to),
        ("asApproximateFloat", "quantity_get_float", vec![], as_float),
        ("asInteger", "quantity_get_int", vec![], as_integer),
        ("isInteger", "quantity_is_integer", vec![], is_integer),
        ("add", "quantity_add", vec![q()], add),
        ("add", "quantity_add_int", vec![INT_TYPE], add),
        ("sub", "quantity_sub", vec![q()], sub),
        ("sub", "quantity_sub_int", vec![INT_TYPE], sub),
    ];
    for (name, id, args, f) in members {
        env.add_member_overload(name, id, q(), args, f)?;
    }
    Ok(())
}

fn out<'b, 'v>(v: Value) -> Res<'b, 'v> {
    let boxed: Box<dyn Val> = v.try_into()?;
    Ok(CowVal::Owned(boxed))
}

fn value(args: &[CowVal<'_, '_>], i: usize) -> Result<Value, ExecutionError> {
    match args.get(i) {
        Some(a) => Value::try_from(a.as_ref()),
        None => Err(ExecutionError::invalid_argument_count(i + 1, args.len())),
    }
}

/// A quantity argument, or an int one as a quantity.
fn arg(args: &[CowVal<'_, '_>], i: usize) -> Result<Quantity, ExecutionError> {
    match value(args, i)? {
        Value::Opaque(o) => o
            .downcast_ref::<Q>()
            .map(|q| q.0)
            .ok_or_else(|| ExecutionError::function_error("quantity", "not a quantity")),
        Value::Int(n) => Ok(Quantity {
            nanos: i128::from(n) * NANO,
            format: Format::DecimalSI,
        }),
        other => Err(ExecutionError::function_error(
            "quantity",
            format!("not a quantity: {other:?}"),
        )),
    }
}

fn string_arg(args: &[CowVal<'_, '_>]) -> Result<String, ExecutionError> {
    match value(args, 0)? {
        Value::String(s) => Ok(s.to_string()),
        other => Err(ExecutionError::function_error(
            "quantity",
            format!("not a string: {other:?}"),
        )),
    }
}

fn parse<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Res<'b, 'v> {
    let q = quantity::parse(&string_arg(&args)?)
        .map_err(|e| ExecutionError::function_error("quantity", e))?;
    out(Value::Opaque(Arc::new(Q(q))))
}

fn is_quantity<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Res<'b, 'v> {
    out(Value::Bool(quantity::parse(&string_arg(&args)?).is_ok()))
}

fn sign<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Res<'b, 'v> {
    out(Value::Int(arg(&args, 0)?.nanos.signum() as i64))
}

fn cmp(args: &[CowVal<'_, '_>]) -> Result<std::cmp::Ordering, ExecutionError> {
    Ok(arg(args, 0)?.nanos.cmp(&arg(args, 1)?.nanos))
}

fn greater<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Res<'b, 'v> {
    out(Value::Bool(cmp(&args)?.is_gt()))
}

fn less<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Res<'b, 'v> {
    out(Value::Bool(cmp(&args)?.is_lt()))
}

fn compare_to<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Res<'b, 'v> {
    out(Value::Int(cmp(&args)? as i64))
}

fn as_float<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Res<'b, 'v> {
    out(Value::Float(arg(&args, 0)?.nanos as f64 / NANO as f64))
}

/// The value as an int64 when it is a whole number that fits (`AsInt64`).
fn whole(q: &Quantity) -> Option<i64> {
    if q.nanos % NANO != 0 {
        return None;
    }
    i64::try_from(q.nanos / NANO).ok()
}

fn as_integer<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Res<'b, 'v> {
    match whole(&arg(&args, 0)?) {
        Some(v) => out(Value::Int(v)),
        None => Err(ExecutionError::function_error(
            "asInteger",
            "cannot convert value to integer",
        )),
    }
}

fn is_integer<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Res<'b, 'v> {
    out(Value::Bool(whole(&arg(&args, 0)?).is_some()))
}

fn combine<'b, 'v>(args: Vec<CowVal<'b, 'v>>, negate: bool) -> Res<'b, 'v> {
    let (a, b) = (arg(&args, 0)?, arg(&args, 1)?);
    let b = if negate {
        b.nanos.checked_neg()
    } else {
        Some(b.nanos)
    };
    let nanos = b
        .and_then(|b| a.nanos.checked_add(b))
        .ok_or_else(|| ExecutionError::function_error("quantity", "quantity is too large"))?;
    out(Value::Opaque(Arc::new(Q(Quantity { nanos, ..a }))))
}

fn add<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Res<'b, 'v> {
    combine(args, false)
}

fn sub<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Res<'b, 'v> {
    combine(args, true)
}

#[cfg(test)]
mod tests {
    use crate::cel::library::test_eval as eval;
    use cel::Value;

    #[test]
    fn quantity_library() {
        for src in [
            "isQuantity('1Gi') && isQuantity('500m') && !isQuantity('1.5.0')",
            "quantity('1Gi') == quantity('1073741824')",
            "quantity('1Gi').isGreaterThan(quantity('1G')) && quantity('1m').isLessThan(quantity('1'))",
            "quantity('2').compareTo(quantity('3')) == -1 && quantity('-1').sign() == -1",
            "quantity('1.5').asApproximateFloat() == 1.5 && !quantity('1.5').isInteger()",
            "quantity('2k').asInteger() == 2000 && quantity('2k').isInteger()",
            "quantity('1').add(quantity('500m')) == quantity('1500m') && quantity('5').sub(2) == quantity('3')",
        ] {
            assert_eq!(eval(src), Ok(Value::Bool(true)), "{src}");
        }
        assert!(
            eval("quantity('1.5').asInteger()")
                .unwrap_err()
                .contains("cannot convert value to integer")
        );
    }
}
