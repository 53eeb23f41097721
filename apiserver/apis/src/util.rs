//! Shared validation helpers with upstream's messages (mirrors the small helpers of
//! apimachinery/pkg/util/validation, apimachinery/pkg/api/validation and
//! pkg/apis/core/validation that every group reuses).

use apiserver_apimachinery::field::show_str;
use apiserver_apimachinery::names;
use apiserver_apimachinery::{FieldError, FieldErrorType, FieldPath};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::LazyLock;

pub(crate) type Errs = Vec<FieldError>;

/// Renders a composite bad value the way upstream does since v1.34 (JSON).
pub(crate) fn json<T: Serialize + ?Sized>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".to_string())
}

/// Renders an optional value: `null` when absent, JSON otherwise.
pub(crate) fn json_opt<T: Serialize>(v: Option<&T>) -> String {
    match v {
        Some(v) => json(v),
        None => "null".to_string(),
    }
}

pub(crate) fn s(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("")
}

pub(crate) fn raw(
    kind: FieldErrorType,
    path: &FieldPath,
    value: String,
    detail: &str,
) -> FieldError {
    FieldError {
        kind,
        field: path.clone(),
        value: Some(value),
        detail: detail.to_string(),
    }
}

/// `Unsupported value` with an already rendered (non-string) value.
pub(crate) fn not_supported_raw(path: &FieldPath, value: String, valid: &[&str]) -> FieldError {
    let list: Vec<String> = valid.iter().map(|v| show_str(v)).collect();
    let detail = if list.is_empty() {
        String::new()
    } else {
        format!("supported values: {}", list.join(", "))
    };
    raw(FieldErrorType::NotSupported, path, value, &detail)
}

pub(crate) fn duplicate_str(path: &FieldPath, value: &str) -> FieldError {
    FieldError::duplicate(path, show_str(value))
}

pub(crate) fn not_found_str(path: &FieldPath, value: &str) -> FieldError {
    FieldError::not_found(path, show_str(value))
}

pub(crate) const NEGATIVE_MSG: &str = "must be greater than or equal to 0";
pub(crate) const IMMUTABLE_MSG: &str = "field is immutable";

/// `ValidateNonnegativeField`.
pub(crate) fn nonneg(errs: &mut Errs, value: i64, path: &FieldPath) {
    if value < 0 {
        errs.push(FieldError::invalid(path, value, NEGATIVE_MSG));
    }
}

/// `ValidateImmutableField` for values rendered as JSON.
pub(crate) fn immutable<T: PartialEq + Serialize>(
    errs: &mut Errs,
    new: &T,
    old: &T,
    path: &FieldPath,
) {
    if new != old {
        errs.push(FieldError::invalid(path, json(new), IMMUTABLE_MSG));
    }
}

static SUBDOMAIN: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
        .expect("static regex")
});

/// `IsDNS1123Label` including upstream's "must not contain dots" special case.
pub(crate) fn dns_label_msgs(v: &str) -> Vec<String> {
    let mut msgs = names::is_dns1123_label(v);
    if v.len() <= 63 && SUBDOMAIN.is_match(v) {
        for m in msgs.iter_mut() {
            if m.starts_with("a lowercase RFC 1123 label") {
                *m = "must not contain dots".to_string();
            }
        }
    }
    msgs
}

pub(crate) fn dns_label(errs: &mut Errs, v: &str, path: &FieldPath) {
    for m in dns_label_msgs(v) {
        errs.push(FieldError::invalid_str(path, v, m));
    }
}

pub(crate) fn dns_subdomain(errs: &mut Errs, v: &str, path: &FieldPath) {
    for m in names::is_dns1123_subdomain(v) {
        errs.push(FieldError::invalid_str(path, v, m));
    }
}

pub(crate) fn qualified_name(errs: &mut Errs, v: &str, path: &FieldPath) {
    for m in names::is_qualified_name(v) {
        errs.push(FieldError::invalid_str(path, v, m));
    }
}

pub(crate) fn labels(errs: &mut Errs, l: &Option<BTreeMap<String, String>>, path: &FieldPath) {
    if let Some(l) = l {
        errs.extend(names::validate_labels(l, path));
    }
}

pub(crate) fn annotations(errs: &mut Errs, a: &Option<BTreeMap<String, String>>, path: &FieldPath) {
    if let Some(a) = a {
        errs.extend(names::validate_annotations(a, path));
    }
}

pub(crate) fn range_msg(lo: i64, hi: i64) -> String {
    format!("must be between {lo} and {hi}, inclusive")
}

/// `IsValidPortNum`.
pub(crate) fn port_num(errs: &mut Errs, port: i64, path: &FieldPath) {
    if !(1..=65535).contains(&port) {
        errs.push(FieldError::invalid(path, port, range_msg(1, 65535)));
    }
}

/// `IsValidPortName`.
pub(crate) fn port_name_msgs(port: &str) -> Vec<String> {
    let mut out = Vec::new();
    if port.len() > 15 {
        out.push("must be no more than 15 characters".to_string());
    }
    if port.is_empty()
        || !port
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        out.push(
            "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".to_string(),
        );
    }
    if !port.bytes().any(|b| b.is_ascii_lowercase()) {
        out.push("must contain at least one letter (a-z)".to_string());
    }
    if port.contains("--") {
        out.push("must not contain consecutive hyphens".to_string());
    }
    if port.starts_with('-') || port.ends_with('-') {
        out.push("must not begin or end with a hyphen".to_string());
    }
    out
}

/// `ValidatePortNumOrName`.
pub(crate) fn port_num_or_name(errs: &mut Errs, port: &IntOrString, path: &FieldPath) {
    match port {
        IntOrString::Int(i) => port_num(errs, i64::from(*i), path),
        IntOrString::String(s) => {
            for m in port_name_msgs(s) {
                errs.push(FieldError::invalid_str(path, s, m));
            }
        }
    }
}

/// IntOrString renders through its `String()` method upstream: unquoted.
pub(crate) fn int_or_string_str(v: &IntOrString) -> String {
    match v {
        IntOrString::Int(i) => i.to_string(),
        IntOrString::String(s) => s.clone(),
    }
}

/// Returns the percent value if `v` is a valid percent string.
fn percent_value(v: &IntOrString) -> Option<i64> {
    match v {
        IntOrString::String(s) => {
            let digits = s.strip_suffix('%')?;
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            digits.parse::<i64>().ok()
        }
        IntOrString::Int(_) => None,
    }
}

/// `getIntOrPercentValue` (a non-numeric string counts as 0, as upstream's IntValue does).
pub(crate) fn int_or_percent_value(v: &IntOrString) -> i64 {
    if let Some(p) = percent_value(v) {
        return p;
    }
    match v {
        IntOrString::Int(i) => i64::from(*i),
        IntOrString::String(s) => s.parse::<i64>().unwrap_or(0),
    }
}

/// `ValidatePositiveIntOrPercent`.
pub(crate) fn positive_int_or_percent(errs: &mut Errs, v: &IntOrString, path: &FieldPath) {
    match v {
        IntOrString::String(s) => {
            if !is_percent_syntax(s) {
                errs.push(FieldError::invalid(
                    path,
                    int_or_string_str(v),
                    "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')",
                ));
            }
        }
        IntOrString::Int(i) => nonneg(errs, i64::from(*i), path),
    }
}

fn is_percent_syntax(s: &str) -> bool {
    s.strip_suffix('%')
        .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
}

/// `IsNotMoreThan100Percent`.
pub(crate) fn not_more_than_100_percent(errs: &mut Errs, v: &IntOrString, path: &FieldPath) {
    if let Some(p) = percent_value(v)
        && p > 100
    {
        errs.push(FieldError::invalid(
            path,
            int_or_string_str(v),
            "must not be greater than 100%",
        ));
    }
}

/// `IsValidIP` (accepts IPv4 with leading zeros, as Go's sloppy parser does).
pub(crate) fn parse_ip_sloppy(v: &str) -> Option<std::net::IpAddr> {
    if let Ok(ip) = v.parse::<std::net::IpAddr>() {
        return Some(ip);
    }
    let parts: Vec<&str> = v.split('.').collect();
    if parts.len() != 4 {
        return None;
    }
    let mut octets = [0u8; 4];
    for (i, p) in parts.iter().enumerate() {
        if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        octets[i] = p.parse::<u8>().ok()?;
    }
    Some(std::net::IpAddr::from(octets))
}

pub(crate) fn valid_ip(errs: &mut Errs, v: &str, path: &FieldPath) -> bool {
    if parse_ip_sloppy(v).is_none() {
        errs.push(FieldError::invalid_str(
            path,
            v,
            "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
        ));
        return false;
    }
    true
}

pub(crate) fn valid_cidr(errs: &mut Errs, v: &str, path: &FieldPath) {
    let ok = v.split_once('/').is_some_and(|(ip, bits)| {
        parse_ip_sloppy(ip).is_some_and(|ip| {
            let max = if ip.is_ipv4() { 32 } else { 128 };
            bits.parse::<u32>().is_ok_and(|b| b <= max) && !bits.starts_with('+')
        })
    });
    if !ok {
        errs.push(FieldError::invalid_str(
            path,
            v,
            "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
        ));
    }
}

/// `validatePathNoBacksteps`.
pub(crate) fn path_no_backsteps(errs: &mut Errs, p: &str, path: &FieldPath) {
    if p.replace('\\', "/").split('/').any(|item| item == "..") {
        errs.push(FieldError::invalid_str(path, p, "must not contain '..'"));
    }
}

/// `validateLocalDescendingPath`.
pub(crate) fn local_descending_path(errs: &mut Errs, p: &str, path: &FieldPath) {
    if p.starts_with('/') {
        errs.push(FieldError::invalid_str(path, p, "must be a relative path"));
    }
    path_no_backsteps(errs, p, path);
}

/// `ValidateLocalNonReservedPath`.
pub(crate) fn local_non_reserved_path(errs: &mut Errs, p: &str, path: &FieldPath) {
    local_descending_path(errs, p, path);
    if p.starts_with("..") && !p.starts_with("../") {
        errs.push(FieldError::invalid_str(path, p, "must not start with '..'"));
    }
}

/// `ValidateLabelSelector` (metav1 validation).
pub(crate) fn label_selector(
    errs: &mut Errs,
    sel: &LabelSelector,
    path: &FieldPath,
    allow_invalid_values: bool,
) {
    labels(errs, &sel.match_labels, &path.child("matchLabels"));
    for (i, expr) in sel.match_expressions.iter().flatten().enumerate() {
        let p = path.child("matchExpressions").index(i);
        let values = expr.values.as_deref().unwrap_or(&[]);
        match expr.operator.as_str() {
            "In" | "NotIn" => {
                if values.is_empty() {
                    errs.push(FieldError::required(
                        &p.child("values"),
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    ));
                }
            }
            "Exists" | "DoesNotExist" => {
                if !values.is_empty() {
                    errs.push(FieldError::forbidden(
                        &p.child("values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    ));
                }
            }
            other => errs.push(FieldError::invalid_str(
                &p.child("operator"),
                other,
                "not a valid selector operator",
            )),
        }
        qualified_name(errs, &expr.key, &p.child("key"));
        if !allow_invalid_values {
            for (vi, v) in values.iter().enumerate() {
                for m in names::is_label_value(v) {
                    errs.push(FieldError::invalid_str(&p.child("values").index(vi), v, m));
                }
            }
        }
    }
}

/// The outcome of converting a `metav1.LabelSelector` to a selector (`LabelSelectorAsSelector`).
pub(crate) enum Selector {
    /// A nil selector: matches nothing.
    Nothing,
    /// Conversion failed.
    Invalid,
    Parsed(apiserver_apimachinery::selector::LabelSelector),
}

impl Selector {
    pub(crate) fn from_meta(sel: Option<&LabelSelector>) -> Self {
        let Some(sel) = sel else {
            return Selector::Nothing;
        };
        for expr in sel.match_expressions.iter().flatten() {
            let n = expr.values.as_ref().map_or(0, Vec::len);
            let bad = match expr.operator.as_str() {
                "In" | "NotIn" => n == 0,
                "Exists" | "DoesNotExist" => n != 0,
                _ => true,
            };
            if bad || !names::is_qualified_name(&expr.key).is_empty() {
                return Selector::Invalid;
            }
            if expr
                .values
                .iter()
                .flatten()
                .any(|v| !names::is_label_value(v).is_empty())
            {
                return Selector::Invalid;
            }
        }
        for (k, v) in sel.match_labels.iter().flatten() {
            if !names::is_qualified_name(k).is_empty() || !names::is_label_value(v).is_empty() {
                return Selector::Invalid;
            }
        }
        match apiserver_apimachinery::selector::LabelSelector::from_meta(sel) {
            Ok(s) => Selector::Parsed(s),
            Err(_) => Selector::Invalid,
        }
    }

    /// `selector.Empty()`: true only for a selector without requirements.
    pub(crate) fn is_empty(&self) -> bool {
        matches!(self, Selector::Parsed(s) if s.is_empty())
    }

    pub(crate) fn matches(&self, l: &BTreeMap<String, String>) -> bool {
        match self {
            Selector::Parsed(s) => s.matches(l),
            _ => false,
        }
    }
}

/// Selector given as a plain map (`labels.Set(...).AsSelector()`).
pub(crate) fn map_selector_matches(
    sel: &BTreeMap<String, String>,
    l: &BTreeMap<String, String>,
) -> bool {
    sel.iter().all(|(k, v)| l.get(k) == Some(v))
}

/// Treats a `LabelSelector` decoded from an absent field (all parts unset) as nil.
pub(crate) fn present_selector(sel: &LabelSelector) -> Option<&LabelSelector> {
    if sel.match_labels.is_none() && sel.match_expressions.is_none() {
        None
    } else {
        Some(sel)
    }
}

pub(crate) fn selector_is_empty(sel: &LabelSelector) -> bool {
    sel.match_labels.as_ref().map_or(0, BTreeMap::len)
        + sel.match_expressions.as_ref().map_or(0, Vec::len)
        == 0
}

static EMPTY_MAP: BTreeMap<String, String> = BTreeMap::new();

pub(crate) fn map_or_empty(m: &Option<BTreeMap<String, String>>) -> &BTreeMap<String, String> {
    m.as_ref().unwrap_or(&EMPTY_MAP)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_label_dots_message() {
        assert_eq!(
            dns_label_msgs("a.b"),
            vec!["must not contain dots".to_string()]
        );
        assert!(dns_label_msgs("Ab")[0].starts_with("a lowercase RFC 1123 label"));
        assert!(dns_label_msgs("abc").is_empty());
    }

    #[test]
    fn ports_and_percent() {
        assert!(port_name_msgs("http").is_empty());
        assert_eq!(
            port_name_msgs("1234"),
            vec!["must contain at least one letter (a-z)".to_string()]
        );
        assert_eq!(int_or_percent_value(&IntOrString::String("25%".into())), 25);
        let mut errs = Vec::new();
        not_more_than_100_percent(
            &mut errs,
            &IntOrString::String("150%".into()),
            &FieldPath::root("x"),
        );
        assert_eq!(
            errs[0].to_string(),
            "x: Invalid value: 150%: must not be greater than 100%"
        );
    }

    #[test]
    fn ip_and_paths() {
        assert!(parse_ip_sloppy("010.1.1.1").is_some());
        assert!(parse_ip_sloppy("1.2.3").is_none());
        let mut errs = Vec::new();
        local_non_reserved_path(&mut errs, "../x", &FieldPath::root("p"));
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].detail, "must not contain '..'");
    }
}
