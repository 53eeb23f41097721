//! Label and field selectors: parsing with upstream's grammar and matching
//! (mirrors apimachinery/pkg/labels/selector.go and pkg/fields/selector.go).

use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    Equals,
    NotEquals,
    In,
    NotIn,
    Exists,
    DoesNotExist,
    GreaterThan,
    LessThan,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requirement {
    pub key: String,
    pub op: Op,
    pub values: Vec<String>,
}

impl Requirement {
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let v = labels.get(&self.key);
        match self.op {
            Op::Equals | Op::In => v.is_some_and(|v| self.values.iter().any(|x| x == v)),
            Op::NotEquals | Op::NotIn => v.is_none_or(|v| !self.values.iter().any(|x| x == v)),
            Op::Exists => v.is_some(),
            Op::DoesNotExist => v.is_none(),
            Op::GreaterThan | Op::LessThan => {
                let (Some(v), Some(want)) = (v, self.values.first()) else {
                    return false;
                };
                let (Ok(v), Ok(w)) = (v.parse::<i64>(), want.parse::<i64>()) else {
                    return false;
                };
                if self.op == Op::GreaterThan {
                    v > w
                } else {
                    v < w
                }
            }
        }
    }
}

/// A parsed label selector; empty matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelSelector {
    pub requirements: Vec<Requirement>,
}

impl LabelSelector {
    pub fn everything() -> Self {
        Self::default()
    }
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }

    /// Parses `a=b,c!=d,e in (x,y),f notin (z),g,!h,i>1`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut reqs = Vec::new();
        let s = s.trim();
        if s.is_empty() {
            return Ok(Self::default());
        }
        for part in split_top_level(s) {
            let part = part.trim();
            if part.is_empty() {
                return Err(format!(
                    "unable to parse requirement: found '', expected: identifier in {s:?}"
                ));
            }
            reqs.push(parse_requirement(part)?);
        }
        Ok(LabelSelector { requirements: reqs })
    }

    /// Builds a selector from a `metav1.LabelSelector`.
    pub fn from_meta(
        sel: &k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector,
    ) -> Result<Self, String> {
        let mut reqs = Vec::new();
        if let Some(m) = &sel.match_labels {
            for (k, v) in m {
                reqs.push(Requirement {
                    key: k.clone(),
                    op: Op::Equals,
                    values: vec![v.clone()],
                });
            }
        }
        if let Some(exprs) = &sel.match_expressions {
            for e in exprs {
                let values = e.values.clone().unwrap_or_default();
                let op = match e.operator.as_str() {
                    "In" => Op::In,
                    "NotIn" => Op::NotIn,
                    "Exists" => Op::Exists,
                    "DoesNotExist" => Op::DoesNotExist,
                    other => {
                        return Err(format!("{other:?} is not a valid label selector operator"));
                    }
                };
                reqs.push(Requirement {
                    key: e.key.clone(),
                    op,
                    values,
                });
            }
        }
        Ok(LabelSelector { requirements: reqs })
    }
}

fn split_top_level(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn check_key(k: &str) -> Result<(), String> {
    let errs = crate::names::is_qualified_name(k);
    if errs.is_empty() {
        Ok(())
    } else {
        Err(format!("key: Invalid value: {:?}: {}", k, errs.join("; ")))
    }
}

fn check_value(v: &str) -> Result<(), String> {
    let errs = crate::names::is_label_value(v);
    if errs.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "values[0]: Invalid value: {:?}: {}",
            v,
            errs.join("; ")
        ))
    }
}

fn parse_requirement(p: &str) -> Result<Requirement, String> {
    if let Some(k) = p.strip_prefix('!') {
        let k = k.trim();
        check_key(k)?;
        return Ok(Requirement {
            key: k.into(),
            op: Op::DoesNotExist,
            values: vec![],
        });
    }
    for (tok, op) in [
        ("!=", Op::NotEquals),
        ("==", Op::Equals),
        ("=", Op::Equals),
        (">", Op::GreaterThan),
        ("<", Op::LessThan),
    ] {
        if let Some((k, v)) = p.split_once(tok) {
            let (k, v) = (k.trim(), v.trim());
            check_key(k)?;
            check_value(v)?;
            return Ok(Requirement {
                key: k.into(),
                op,
                values: vec![v.into()],
            });
        }
    }
    let words: Vec<&str> = p.splitn(2, char::is_whitespace).collect();
    if words.len() == 2 {
        let rest = words[1].trim();
        let (op, rest) = if let Some(r) = rest.strip_prefix("notin") {
            (Op::NotIn, r)
        } else if let Some(r) = rest.strip_prefix("in") {
            (Op::In, r)
        } else {
            return Err(format!(
                "unable to parse requirement: found '{rest}', expected: in, notin, =, ==, !=, gt, lt"
            ));
        };
        let rest = rest.trim();
        let inner = rest
            .strip_prefix('(')
            .and_then(|r| r.strip_suffix(')'))
            .ok_or_else(|| format!("unable to parse requirement: found '{rest}', expected: '('"))?;
        let key = words[0].trim();
        check_key(key)?;
        let values: Vec<String> = inner.split(',').map(|v| v.trim().to_string()).collect();
        for v in &values {
            check_value(v)?;
        }
        return Ok(Requirement {
            key: key.into(),
            op,
            values,
        });
    }
    check_key(p)?;
    Ok(Requirement {
        key: p.into(),
        op: Op::Exists,
        values: vec![],
    })
}

/// A field selector term: `key=value` or `key!=value`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldRequirement {
    pub field: String,
    pub value: String,
    pub negate: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSelector {
    pub requirements: Vec<FieldRequirement>,
}

impl FieldSelector {
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        let mut reqs = Vec::new();
        for part in s.split(',') {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let (field, value, negate) = if let Some((k, v)) = part.split_once("!=") {
                (k, v, true)
            } else if let Some((k, v)) = part.split_once("==") {
                (k, v, false)
            } else if let Some((k, v)) = part.split_once('=') {
                (k, v, false)
            } else {
                return Err(format!(
                    "invalid selector: '{s}'; can't understand '{part}'"
                ));
            };
            reqs.push(FieldRequirement {
                field: field.trim().to_string(),
                value: unescape(value.trim()),
                negate,
            });
        }
        Ok(FieldSelector { requirements: reqs })
    }

    /// Matches against an object's selectable fields. A field the object does not expose
    /// compares as the empty string.
    pub fn matches(&self, fields: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| {
            let v = fields.get(&r.field).map(String::as_str).unwrap_or("");
            (v == r.value) != r.negate
        })
    }

    /// The value this selector pins a field to, if it does (for index-like shortcuts).
    pub fn exact(&self, field: &str) -> Option<&str> {
        self.requirements
            .iter()
            .find(|r| r.field == field && !r.negate)
            .map(|r| r.value.as_str())
    }
}

fn unescape(v: &str) -> String {
    v.replace("\\,", ",")
        .replace("\\=", "=")
        .replace("\\\\", "\\")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parse_and_match_labels() {
        let s =
            LabelSelector::parse("app=web,tier!=db,env in (prod, staging),!legacy,team").unwrap();
        assert_eq!(s.requirements.len(), 5);
        assert!(s.matches(&labels(&[("app", "web"), ("env", "prod"), ("team", "x")])));
        assert!(!s.matches(&labels(&[("app", "web"), ("env", "dev"), ("team", "x")])));
        assert!(!s.matches(&labels(&[
            ("app", "web"),
            ("env", "prod"),
            ("team", "x"),
            ("legacy", "1")
        ])));
        assert!(LabelSelector::parse("a in (b").is_err());
        assert!(LabelSelector::parse("-bad=x").is_err());
        let s = LabelSelector::parse("x notin (a)").unwrap();
        assert!(s.matches(&labels(&[])));
    }

    #[test]
    fn field_selectors() {
        let s = FieldSelector::parse("metadata.name=a,status.phase!=Running").unwrap();
        let mut f = BTreeMap::new();
        f.insert("metadata.name".to_string(), "a".to_string());
        f.insert("status.phase".to_string(), "Pending".to_string());
        assert!(s.matches(&f));
        f.insert("status.phase".to_string(), "Running".to_string());
        assert!(!s.matches(&f));
        assert!(FieldSelector::parse("garbage").is_err());
    }
}
