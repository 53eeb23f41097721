//! `additionalPrinterColumns` as Table columns and cells, with the JSONPath subset CRDs use
//! (mirrors apiextensions-apiserver pkg/registry/customresource/tableconvertor and client-go
//! util/jsonpath for `.a.b`, `['a']`, `[0]`, `[*]`, `[?(@.k=="v")]`).

use crate::validation::fmt_num;
use serde_json::{Value, json};

/// One step of a parsed JSONPath.
#[derive(Clone, Debug, PartialEq)]
enum Step {
    Field(String),
    Index(i64),
    All,
    Filter {
        path: Vec<String>,
        op: String,
        value: Value,
    },
}

/// Parses the JSONPath subset; `Err` carries a message for unsupported syntax.
fn parse(path: &str) -> Result<Vec<Step>, String> {
    let p = path.trim().trim_start_matches('{').trim_end_matches('}');
    let b = p.as_bytes();
    let mut i = 0;
    let mut steps = Vec::new();
    while i < b.len() {
        match b[i] {
            b'.' => {
                i += 1;
                let start = i;
                while i < b.len() && b[i] != b'.' && b[i] != b'[' {
                    i += 1;
                }
                if i > start {
                    steps.push(Step::Field(p[start..i].to_string()));
                }
            }
            b'[' => {
                let end = p[i..].find(']').map(|e| e + i).ok_or("unterminated [")?;
                let mut inner = &p[i + 1..end];
                if inner.starts_with("?(") {
                    // Filters may contain ']' inside quotes; find the closing ")]".
                    let close = p[i..]
                        .find(")]")
                        .map(|e| e + i)
                        .ok_or("unterminated filter")?;
                    inner = &p[i + 3..close];
                    steps.push(parse_filter(inner)?);
                    i = close + 2;
                    continue;
                }
                inner = inner.trim();
                if inner == "*" {
                    steps.push(Step::All);
                } else if let Some(q) = inner.strip_prefix('\'').and_then(|s| s.strip_suffix('\''))
                {
                    steps.push(Step::Field(q.to_string()));
                } else if let Some(q) = inner.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
                    steps.push(Step::Field(q.to_string()));
                } else {
                    steps.push(Step::Index(
                        inner
                            .parse()
                            .map_err(|_| format!("invalid array index {inner}"))?,
                    ));
                }
                i = end + 1;
            }
            _ => {
                let start = i;
                while i < b.len() && b[i] != b'.' && b[i] != b'[' {
                    i += 1;
                }
                steps.push(Step::Field(p[start..i].to_string()));
            }
        }
    }
    Ok(steps)
}

fn parse_filter(expr: &str) -> Result<Step, String> {
    for op in ["==", "!=", "<=", ">=", "<", ">"] {
        if let Some((l, r)) = expr.split_once(op) {
            let l = l
                .trim()
                .strip_prefix('@')
                .ok_or("filter must start with @")?;
            let path = l
                .split('.')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
            let r = r.trim();
            let value = if let Some(s) = r
                .strip_prefix('"')
                .and_then(|s| s.strip_suffix('"'))
                .or_else(|| r.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')))
            {
                Value::from(s)
            } else {
                serde_json::from_str(r).map_err(|_| format!("unsupported filter value {r}"))?
            };
            return Ok(Step::Filter {
                path,
                op: op.to_string(),
                value,
            });
        }
    }
    let l = expr
        .trim()
        .strip_prefix('@')
        .ok_or("filter must start with @")?;
    let path = l
        .split('.')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    Ok(Step::Filter {
        path,
        op: "exists".into(),
        value: Value::Null,
    })
}

fn filter_match(v: &Value, path: &[String], op: &str, want: &Value) -> bool {
    let mut cur = v;
    for seg in path {
        match cur.get(seg) {
            Some(n) => cur = n,
            None => return false,
        }
    }
    let cmp = || match (cur.as_f64(), want.as_f64()) {
        (Some(a), Some(b)) => a.partial_cmp(&b),
        _ => None,
    };
    match op {
        "exists" => true,
        "==" => crate::validation::json_eq(cur, want),
        "!=" => !crate::validation::json_eq(cur, want),
        "<" => cmp() == Some(std::cmp::Ordering::Less),
        ">" => cmp() == Some(std::cmp::Ordering::Greater),
        "<=" => matches!(
            cmp(),
            Some(std::cmp::Ordering::Less | std::cmp::Ordering::Equal)
        ),
        ">=" => matches!(
            cmp(),
            Some(std::cmp::Ordering::Greater | std::cmp::Ordering::Equal)
        ),
        _ => false,
    }
}

/// Evaluates a JSONPath (subset) on `obj`; missing keys yield no results, as with
/// `AllowMissingKeys(true)`.
pub fn find_results<'a>(obj: &'a Value, path: &str) -> Result<Vec<&'a Value>, String> {
    let mut cur = vec![obj];
    for step in parse(path)? {
        let mut next = Vec::new();
        for v in cur {
            match &step {
                Step::Field(f) => next.extend(v.get(f)),
                Step::Index(i) => {
                    if let Some(a) = v.as_array() {
                        let idx = if *i < 0 { a.len() as i64 + i } else { *i };
                        next.extend(usize::try_from(idx).ok().and_then(|i| a.get(i)));
                    }
                }
                Step::All => match v {
                    Value::Array(a) => next.extend(a.iter()),
                    Value::Object(m) => next.extend(m.values()),
                    _ => {}
                },
                Step::Filter { path, op, value } => {
                    if let Some(a) = v.as_array() {
                        next.extend(a.iter().filter(|x| filter_match(x, path, op, value)));
                    }
                }
            }
        }
        cur = next;
    }
    Ok(cur)
}

/// The printer columns of a version (`additionalPrinterColumns`, or the default Age column).
pub fn printer_columns(crd_version: &Value) -> Vec<Value> {
    match crd_version
        .get("additionalPrinterColumns")
        .and_then(Value::as_array)
    {
        Some(c) if !c.is_empty() => c.clone(),
        _ => {
            vec![json!({"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"})]
        }
    }
}

/// Table `columnDefinitions` for a version: Name, then the printer columns.
pub fn column_definitions(crd_version: &Value) -> Vec<Value> {
    let mut out = vec![json!({"name": "Name", "type": "string", "format": "name",
        "description": "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names",
        "priority": 0})];
    for c in printer_columns(crd_version) {
        let s = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let desc = if s("description").is_empty() {
            format!(
                "Custom resource definition column (in JSONPath format): {}",
                s("jsonPath")
            )
        } else {
            s("description")
        };
        out.push(json!({"name": s("name"), "type": s("type"), "format": s("format"),
            "description": desc, "priority": c.get("priority").and_then(Value::as_i64).unwrap_or(0)}));
    }
    out
}

/// Table cells for `obj`: the name, then one cell per printer column (`null` when absent).
/// `now` is used for `date` columns (rendered as an age, e.g. `5m`).
pub fn printer_cells(crd_version: &Value, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
    let name = obj
        .pointer("/metadata/name")
        .cloned()
        .unwrap_or(Value::from(""));
    let mut cells = vec![name];
    for c in printer_columns(crd_version) {
        let typ = c.get("type").and_then(Value::as_str).unwrap_or("");
        let path = c.get("jsonPath").and_then(Value::as_str).unwrap_or("");
        let first = find_results(obj, path)
            .ok()
            .and_then(|r| r.first().copied().cloned());
        cells.push(match first {
            None => Value::Null,
            Some(v) if typ == "string" => Value::from(print_value(&v)),
            Some(v) => cell_for(typ, &v, now),
        });
    }
    cells
}

/// How client-go's jsonpath prints a value: strings raw, numbers/bools as text, JSON otherwise.
fn print_value(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n
            .as_i64()
            .map(|i| i.to_string())
            .unwrap_or_else(|| fmt_num(n.as_f64().unwrap_or(0.0))),
        Value::Bool(b) => b.to_string(),
        Value::Null => "<nil>".into(),
        other => other.to_string(),
    }
}

fn cell_for(typ: &str, v: &Value, now: jiff::Timestamp) -> Value {
    match (typ, v) {
        ("integer", Value::Number(n)) => Value::from(
            n.as_i64()
                .unwrap_or_else(|| n.as_f64().unwrap_or(0.0) as i64),
        ),
        ("number", Value::Number(n)) => json!(n.as_f64().unwrap_or(0.0)),
        ("boolean", Value::Bool(b)) => Value::Bool(*b),
        ("date", Value::String(s)) => match s.parse::<jiff::Timestamp>() {
            Ok(t) => Value::from(human_duration(now.as_second() - t.as_second())),
            Err(_) => Value::from("<invalid>"),
        },
        _ => Value::Null,
    }
}

/// apimachinery's `duration.HumanDuration` on a number of seconds.
pub fn human_duration(secs: i64) -> String {
    if secs < -1 {
        return "<invalid>".into();
    }
    if secs < 0 {
        return "0s".into();
    }
    if secs < 120 {
        return format!("{secs}s");
    }
    let minutes = secs / 60;
    if minutes < 10 {
        let s = secs % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = secs / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonpath_subset() {
        let o = json!({"spec": {"replicas": 3, "containers": [{"name": "a"}, {"name": "b"}], "m": {"k.x": 1}},
            "status": {"conditions": [{"type": "Synced", "status": "False"}, {"type": "Ready", "status": "True"}]}});
        let r = |p: &str| {
            find_results(&o, p)
                .unwrap()
                .into_iter()
                .cloned()
                .collect::<Vec<_>>()
        };
        assert_eq!(r(".spec.replicas"), vec![json!(3)]);
        assert_eq!(
            r(".status.conditions[?(@.type==\"Ready\")].status"),
            vec![json!("True")]
        );
        assert_eq!(r(".spec.containers[*].name"), vec![json!("a"), json!("b")]);
        assert_eq!(r(".spec.containers[-1].name"), vec![json!("b")]);
        assert_eq!(r(".spec.m['k.x']"), vec![json!(1)]);
        assert!(r(".spec.nope.deeper").is_empty());
    }

    #[test]
    fn cells_by_column_type() {
        let v = json!({"name": "v1", "additionalPrinterColumns": [
            {"name": "Spec", "type": "string", "jsonPath": ".spec.cronSpec"},
            {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
            {"name": "Ready", "type": "boolean", "jsonPath": ".status.ready"},
            {"name": "Ratio", "type": "number", "jsonPath": ".spec.ratio"},
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
            {"name": "Missing", "type": "string", "jsonPath": ".spec.none"}]});
        let obj = json!({"metadata": {"name": "c1", "creationTimestamp": "2024-01-01T00:00:00Z"},
            "spec": {"cronSpec": "* * * * */5", "replicas": 2.0, "ratio": 1}, "status": {"ready": true}});
        let now: jiff::Timestamp = "2024-01-01T00:05:00Z".parse().unwrap();
        assert_eq!(
            printer_cells(&v, &obj, now),
            vec![
                json!("c1"),
                json!("* * * * */5"),
                json!(2),
                json!(true),
                json!(1.0),
                json!("5m"),
                Value::Null
            ]
        );
        assert_eq!(
            column_definitions(&v)[1]["description"],
            "Custom resource definition column (in JSONPath format): .spec.cronSpec"
        );
        assert_eq!(printer_columns(&json!({"name": "v1"}))[0]["name"], "Age");
        assert_eq!(human_duration(3 * 3600 + 120), "3h2m");
        assert_eq!(human_duration(3 * 86400), "3d");
    }
}
