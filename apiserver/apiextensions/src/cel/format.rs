//! The Kubernetes format CEL library (mirrors apiserver pkg/cel/library/format.go):
//! `format.dns1123Label()`, `format.dns1123Subdomain()`, `format.dns1035Label()`,
//! `format.qualifiedName()`, the `...Prefix()` variants, `format.labelValue()`, `format.uri()`,
//! `format.uuid()`, `format.byte()`, `format.date()`, `format.datetime()`,
//! `format.named(name)` and `<format>.validate(s)`, an optional list of the errors.

use apiserver_apimachinery::names;
use cel::common::types::{STRING_TYPE, Type};
use cel::common::value::{CowVal, Val};
use cel::objects::{Opaque, OptionalValue};
use cel::{Env, ExecutionError, Value};
use std::sync::Arc;

const FORMAT_TYPE: &str = "kubernetes.NamedFormat";

/// The formats, by the name `format.named()` takes.
const FORMATS: [&str; 13] = [
    "dns1123Label",
    "dns1123Subdomain",
    "dns1035Label",
    "qualifiedName",
    "dns1123LabelPrefix",
    "dns1123SubdomainPrefix",
    "dns1035LabelPrefix",
    "labelValue",
    "uri",
    "uuid",
    "byte",
    "date",
    "datetime",
];

#[derive(Debug, PartialEq, Eq)]
struct Format(&'static str);

impl Opaque for Format {
    fn runtime_type_name(&self) -> &str {
        FORMAT_TYPE
    }
}

type Res<'b, 'v> = Result<CowVal<'b, 'v>, ExecutionError>;
type Function = for<'b, 'v> fn(Vec<CowVal<'b, 'v>>) -> Res<'b, 'v>;

/// One zero-argument constructor per format (overloads are plain functions).
macro_rules! constructors {
    ($($f:ident => $i:expr),* $(,)?) => {
        $(fn $f<'b, 'v>(_: Vec<CowVal<'b, 'v>>) -> Res<'b, 'v> {
            out(Value::Opaque(Arc::new(Format(FORMATS[$i]))))
        })*
        const CONSTRUCTORS: [Function; 13] = [$($f),*];
    };
}

constructors!(
    dns1123_label => 0, dns1123_subdomain => 1, dns1035_label => 2, qualified_name => 3,
    dns1123_label_prefix => 4, dns1123_subdomain_prefix => 5, dns1035_label_prefix => 6,
    label_value => 7, uri => 8, uuid => 9, byte => 10, date => 11, datetime => 12,
);

/// Registers the format library.
pub fn register(env: &mut Env) -> Result<(), cel::DeclarationError> {
    for (name, f) in FORMATS.iter().zip(CONSTRUCTORS) {
        let qualified = format!("format.{name}");
        env.add_overload(&qualified, &qualified, vec![], f)?;
    }
    env.add_overload("format.named", "format-named", vec![STRING_TYPE], named)?;
    env.add_member_overload(
        "validate",
        "format-validate",
        Type::new_opaque_type(FORMAT_TYPE),
        vec![STRING_TYPE],
        validate,
    )
}

fn out<'b, 'v>(v: Value) -> Res<'b, 'v> {
    let boxed: Box<dyn Val> = v.try_into()?;
    Ok(CowVal::Owned(boxed))
}

fn optional(v: Option<Value>) -> Value {
    Value::Opaque(Arc::new(match v {
        Some(v) => OptionalValue::of(v),
        None => OptionalValue::none(),
    }))
}

fn string_arg(args: &[CowVal<'_, '_>], i: usize) -> Result<String, ExecutionError> {
    match args.get(i).map(|a| Value::try_from(a.as_ref())) {
        Some(Ok(Value::String(s))) => Ok(s.to_string()),
        Some(Err(e)) => Err(e),
        _ => Err(ExecutionError::invalid_argument_count(i + 1, args.len())),
    }
}

fn named<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Res<'b, 'v> {
    let name = string_arg(&args, 0)?;
    let found = FORMATS.iter().find(|f| **f == name);
    out(optional(found.map(|f| Value::Opaque(Arc::new(Format(f))))))
}

/// Upstream `maskTrailingDash`: a prefix may end with `-`.
fn mask_trailing_dash(s: &str) -> String {
    match s.strip_suffix('-') {
        Some(head) if s.len() > 1 => format!("{head}a"),
        _ => s.to_string(),
    }
}

fn errors(format: &str, s: &str) -> Vec<String> {
    let check = |ok: bool, msg: &str| {
        if ok {
            Vec::new()
        } else {
            vec![msg.to_string()]
        }
    };
    match format {
        "dns1123Label" => names::is_dns1123_label(s),
        "dns1123Subdomain" => names::is_dns1123_subdomain(s),
        "dns1035Label" => names::is_dns1035_label(s),
        "qualifiedName" => names::is_qualified_name(s),
        "dns1123LabelPrefix" => names::is_dns1123_label(&mask_trailing_dash(s)),
        "dns1123SubdomainPrefix" => names::is_dns1123_subdomain(&mask_trailing_dash(s)),
        "dns1035LabelPrefix" => names::is_dns1035_label(&mask_trailing_dash(s)),
        "labelValue" => names::is_label_value(s),
        "uri" => check(
            crate::formats::check_format("uri", s),
            "invalid URI for request",
        ),
        "uuid" => check(
            crate::formats::check_format("uuid", s),
            "does not match the UUID format",
        ),
        "byte" => check(crate::formats::check_format("byte", s), "invalid base64"),
        "date" => check(crate::formats::check_format("date", s), "invalid date"),
        _ => check(
            crate::formats::check_format("datetime", s),
            "invalid datetime",
        ),
    }
}

fn validate<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Res<'b, 'v> {
    let format = match args.first().map(|a| Value::try_from(a.as_ref())) {
        Some(Ok(Value::Opaque(o))) => o.downcast_ref::<Format>().map(|f| f.0),
        _ => None,
    }
    .ok_or_else(|| ExecutionError::function_error("validate", "not a format"))?;
    let errs = errors(format, &string_arg(&args, 1)?);
    let list = (!errs.is_empty()).then(|| {
        Value::List(Arc::new(
            errs.into_iter()
                .map(|e| Value::String(Arc::new(e)))
                .collect(),
        ))
    });
    out(optional(list))
}

#[cfg(test)]
mod tests {
    use crate::cel::library::test_eval as eval;
    use cel::Value;

    #[test]
    fn format_library() {
        for src in [
            "!format.dns1123Label().validate('my-name').hasValue()",
            "format.dns1123Label().validate('My_Name').hasValue()",
            "format.dns1123Label().validate('My_Name').value()[0].startsWith('a lowercase RFC 1123 label')",
            "!format.dns1123LabelPrefix().validate('my-prefix-').hasValue()",
            "format.named('dns1123Subdomain').hasValue() && !format.named('nope').hasValue()",
            "!format.named('uuid').value().validate('123e4567-e89b-12d3-a456-426614174000').hasValue()",
            "format.datetime().validate('yesterday').value() == ['invalid datetime']",
        ] {
            assert_eq!(eval(src), Ok(Value::Bool(true)), "{src}");
        }
    }
}
