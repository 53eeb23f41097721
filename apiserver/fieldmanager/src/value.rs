//! JSON value helpers with structured-merge-diff's semantics (mirrors
//! sigs.k8s.io/structured-merge-diff value/value.go and value/fields.go): a total ordering across
//! kinds, numeric equality of ints and floats, the `ToString` rendering used in paths, and JSON
//! text as Go's encoding/json writes it (HTML-safe escaping, optionally sorted object keys).

use std::cmp::Ordering;

use serde_json::{Number, Value};

/// Rank of a value's kind in the total order: floats/ints, strings, bools, lists, maps, null.
fn kind_rank(v: &Value) -> u8 {
    match v {
        Value::Number(_) => 0,
        Value::String(_) => 2,
        Value::Bool(_) => 3,
        Value::Array(_) => 4,
        Value::Object(_) => 5,
        Value::Null => 6,
    }
}

fn is_float(n: &Number) -> bool {
    n.is_f64()
}

fn as_f64(n: &Number) -> f64 {
    n.as_f64().unwrap_or(0.0)
}

fn as_i128(n: &Number) -> i128 {
    if let Some(i) = n.as_i64() {
        i128::from(i)
    } else if let Some(u) = n.as_u64() {
        i128::from(u)
    } else {
        0
    }
}

fn float_cmp(a: f64, b: f64) -> Ordering {
    a.partial_cmp(&b).unwrap_or(Ordering::Equal)
}

fn number_cmp(a: &Number, b: &Number) -> Ordering {
    match (is_float(a), is_float(b)) {
        (false, false) => as_i128(a).cmp(&as_i128(b)),
        _ => float_cmp(as_f64(a), as_f64(b)),
    }
}

/// Total ordering of values (upstream `value.Compare`): numbers (ints and floats compared
/// numerically; a float sorts before an int only when numerically smaller), then strings, bools,
/// lists (lexically), maps (by sorted keys, then values) and null last.
pub fn compare(a: &Value, b: &Value) -> Ordering {
    let (ra, rb) = (kind_rank(a), kind_rank(b));
    if ra != rb {
        return ra.cmp(&rb);
    }
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => number_cmp(x, y),
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Array(x), Value::Array(y)) => {
            for (l, r) in x.iter().zip(y.iter()) {
                let c = compare(l, r);
                if c != Ordering::Equal {
                    return c;
                }
            }
            x.len().cmp(&y.len())
        }
        (Value::Object(x), Value::Object(y)) => {
            let mut xk: Vec<&String> = x.keys().collect();
            let mut yk: Vec<&String> = y.keys().collect();
            xk.sort();
            yk.sort();
            for (l, r) in xk.iter().zip(yk.iter()) {
                let c = l.cmp(r);
                if c != Ordering::Equal {
                    return c;
                }
                let c = compare(&x[l.as_str()], &y[r.as_str()]);
                if c != Ordering::Equal {
                    return c;
                }
            }
            xk.len().cmp(&yk.len())
        }
        _ => Ordering::Equal,
    }
}

/// Deep equality where `1` equals `1.0` (upstream `value.Equals`).
pub fn equals(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => number_cmp(x, y) == Ordering::Equal,
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y.iter()).all(|(l, r)| equals(l, r))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|other| equals(v, other)))
        }
        _ => a == b,
    }
}

/// The rendering of a value inside a path string (upstream `value.ToString`): strings quoted,
/// lists as `[a,b]`, maps as `k=v` pairs.
pub fn to_path_string(v: &Value) -> String {
    match v {
        Value::Null => "null".to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => go_quote(s),
        Value::Bool(b) => b.to_string(),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(to_path_string).collect();
            format!("[{}]", parts.join(","))
        }
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| format!("{k}={}", to_path_string(v)))
            .collect::<Vec<_>>()
            .concat(),
    }
}

/// Go's `%q` for a string: JSON-like escaping, non-printable characters as `\x..`/`\u....`.
fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// JSON text as Go's encoding/json writes it: `<`, `>`, `&`, U+2028 and U+2029 escaped; object
/// keys sorted when `sort_keys` (Go's encoding of maps), else in their stored order.
pub fn to_go_json(v: &Value, sort_keys: bool) -> String {
    let mut out = String::new();
    write_go_json(&mut out, v, sort_keys);
    out
}

fn write_go_json(out: &mut String, v: &Value, sort_keys: bool) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => write_go_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_go_json(out, item, sort_keys);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            if sort_keys {
                keys.sort();
            }
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_go_string(out, k);
                out.push(':');
                write_go_json(out, &map[k.as_str()], sort_keys);
            }
            out.push('}');
        }
    }
}

/// A JSON string literal with Go's HTML-safe escaping.
pub fn write_go_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ordering_across_kinds() {
        assert_eq!(compare(&json!(1), &json!(1.0)), Ordering::Equal);
        assert_eq!(compare(&json!(1.5), &json!(2)), Ordering::Less);
        assert_eq!(compare(&json!(3), &json!("a")), Ordering::Less);
        assert_eq!(compare(&json!("b"), &json!(true)), Ordering::Less);
        assert_eq!(compare(&json!(null), &json!({})), Ordering::Greater);
        assert!(equals(&json!({"a": [1, 2]}), &json!({"a": [1.0, 2]})));
        assert!(!equals(&json!({"a": 1}), &json!({"a": 1, "b": 2})));
    }

    #[test]
    fn renders_like_go() {
        assert_eq!(to_path_string(&json!("nginx")), "\"nginx\"");
        assert_eq!(to_path_string(&json!(80)), "80");
        assert_eq!(
            to_go_json(&json!({"b": "<x>", "a": 1}), true),
            r#"{"a":1,"b":"\u003cx\u003e"}"#
        );
    }
}
