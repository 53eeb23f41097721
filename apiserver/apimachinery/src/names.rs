//! Name and label validation with upstream's messages
//! (mirrors apimachinery/pkg/util/validation/validation.go and api/validation/objectmeta.go).

use crate::field::{FieldError, FieldPath};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use std::collections::BTreeMap;
use std::sync::LazyLock;

const DNS1123_LABEL_MAX: usize = 63;
const DNS1123_SUBDOMAIN_MAX: usize = 253;

static DNS1123_LABEL: LazyLock<regex::Regex> =
    LazyLock::new(|| regex::Regex::new(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$").expect("static regex"));
static DNS1123_SUBDOMAIN: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
        .expect("static regex")
});
static QUALIFIED_NAME: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$").expect("static regex")
});
static LABEL_VALUE: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$").expect("static regex")
});
static C_IDENTIFIER: LazyLock<regex::Regex> =
    LazyLock::new(|| regex::Regex::new(r"^[A-Za-z_][A-Za-z0-9_]*$").expect("static regex"));

/// Returns upstream's messages for a value that is not a DNS-1123 label.
pub fn is_dns1123_label(v: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if v.len() > DNS1123_LABEL_MAX {
        errs.push(format!(
            "must be no more than {DNS1123_LABEL_MAX} characters"
        ));
    }
    if !DNS1123_LABEL.is_match(v) {
        errs.push("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')".to_string());
    }
    errs
}

pub fn is_dns1123_subdomain(v: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if v.len() > DNS1123_SUBDOMAIN_MAX {
        errs.push(format!(
            "must be no more than {DNS1123_SUBDOMAIN_MAX} characters"
        ));
    }
    if !DNS1123_SUBDOMAIN.is_match(v) {
        errs.push("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')".to_string());
    }
    errs
}

/// RFC 1035 label (Service names).
pub fn is_dns1035_label(v: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if v.len() > DNS1123_LABEL_MAX {
        errs.push(format!(
            "must be no more than {DNS1123_LABEL_MAX} characters"
        ));
    }
    let ok = v.chars().next().is_some_and(|c| c.is_ascii_lowercase()) && DNS1123_LABEL.is_match(v);
    if !ok {
        errs.push("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')".to_string());
    }
    errs
}

pub fn is_c_identifier(v: &str) -> bool {
    C_IDENTIFIER.is_match(v)
}

/// Qualified names (label and annotation keys): `[prefix/]name`.
pub fn is_qualified_name(v: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let (prefix, name) = match v.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, v),
    };
    if let Some(p) = prefix {
        if p.is_empty() {
            errs.push("prefix part must be non-empty".to_string());
        } else {
            for m in is_dns1123_subdomain(p) {
                errs.push(format!("prefix part {m}"));
            }
        }
        if name.contains('/') {
            errs.push("a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')".to_string());
            return errs;
        }
    }
    if name.is_empty() {
        errs.push("name part must be non-empty".to_string());
    } else if name.len() > 63 {
        errs.push("name part must be no more than 63 characters".to_string());
    }
    if !name.is_empty() && !QUALIFIED_NAME.is_match(name) {
        errs.push("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')".to_string());
    }
    errs
}

pub fn is_label_value(v: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if v.len() > 63 {
        errs.push("must be no more than 63 characters".to_string());
    }
    if !LABEL_VALUE.is_match(v) {
        errs.push("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')".to_string());
    }
    errs
}

pub fn validate_labels(labels: &BTreeMap<String, String>, path: &FieldPath) -> Vec<FieldError> {
    let mut out = Vec::new();
    for (k, v) in labels {
        for m in is_qualified_name(k) {
            out.push(FieldError::invalid_str(path, k, m));
        }
        for m in is_label_value(v) {
            out.push(FieldError::invalid_str(&path.key(k), v, m));
        }
    }
    out
}

const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;

pub fn validate_annotations(
    annotations: &BTreeMap<String, String>,
    path: &FieldPath,
) -> Vec<FieldError> {
    let mut out = Vec::new();
    let mut total = 0;
    for (k, v) in annotations {
        for m in is_qualified_name(&k.to_lowercase()) {
            out.push(FieldError::invalid_str(path, k, m));
        }
        total += k.len() + v.len();
    }
    if total > TOTAL_ANNOTATION_SIZE_LIMIT {
        out.push(FieldError::too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT));
    }
    out
}

/// How a resource's names are validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameRule {
    Subdomain,
    Label,
    Dns1035,
    /// Path-segment names (RBAC objects): anything without `/` or `%`, not `.` or `..`.
    PathSegment,
}

pub fn validate_name(rule: NameRule, name: &str) -> Vec<String> {
    match rule {
        NameRule::Subdomain => is_dns1123_subdomain(name),
        NameRule::Label => is_dns1123_label(name),
        NameRule::Dns1035 => is_dns1035_label(name),
        NameRule::PathSegment => {
            if name == "." || name == ".." {
                vec![format!("may not be '{name}'")]
            } else if name.contains('/') {
                vec!["may not contain '/'".to_string()]
            } else if name.contains('%') {
                vec!["may not contain '%'".to_string()]
            } else {
                vec![]
            }
        }
    }
}

/// Validates an object's metadata on create (upstream `ValidateObjectMeta`).
pub fn validate_object_meta(
    meta: &ObjectMeta,
    namespaced: bool,
    rule: NameRule,
) -> Vec<FieldError> {
    let path = FieldPath::root("metadata");
    let mut out = Vec::new();
    let name = meta.name.as_deref().unwrap_or("");
    let generate = meta.generate_name.as_deref().unwrap_or("");
    if name.is_empty() {
        if generate.is_empty() {
            out.push(FieldError::required(
                &path.child("name"),
                "name or generateName is required",
            ));
        }
    } else {
        for m in validate_name(rule, name) {
            out.push(FieldError::invalid_str(&path.child("name"), name, m));
        }
    }
    if !generate.is_empty() {
        // A generated name gets 5 random characters; validate the prefix as a name would be.
        let probe = format!("{generate}a");
        for m in validate_name(rule, &probe) {
            out.push(FieldError::invalid_str(
                &path.child("generateName"),
                generate,
                m,
            ));
        }
    }
    let ns = meta.namespace.as_deref().unwrap_or("");
    if namespaced {
        if ns.is_empty() {
            out.push(FieldError::required(&path.child("namespace"), ""));
        } else {
            for m in is_dns1123_label(ns) {
                out.push(FieldError::invalid_str(&path.child("namespace"), ns, m));
            }
        }
    } else if !ns.is_empty() {
        out.push(FieldError::forbidden(
            &path.child("namespace"),
            "not allowed on this type",
        ));
    }
    if let Some(l) = &meta.labels {
        out.extend(validate_labels(l, &path.child("labels")));
    }
    if let Some(a) = &meta.annotations {
        out.extend(validate_annotations(a, &path.child("annotations")));
    }
    if let Some(f) = &meta.finalizers {
        for (i, fin) in f.iter().enumerate() {
            for m in is_qualified_name(fin) {
                out.push(FieldError::invalid_str(
                    &path.child("finalizers").index(i),
                    fin,
                    m,
                ));
            }
        }
    }
    if let Some(refs) = &meta.owner_references {
        let controllers = refs.iter().filter(|r| r.controller == Some(true)).count();
        if controllers > 1 {
            out.push(FieldError::invalid(
                &path.child("ownerReferences"),
                "[...]",
                "Only one reference can have Controller set to true",
            ));
        }
        for (i, r) in refs.iter().enumerate() {
            let p = path.child("ownerReferences").index(i);
            if r.api_version.is_empty() {
                out.push(FieldError::invalid_str(
                    &p.child("apiVersion"),
                    "",
                    "version must not be empty",
                ));
            }
            if r.kind.is_empty() {
                out.push(FieldError::invalid_str(
                    &p.child("kind"),
                    "",
                    "kind must not be empty",
                ));
            }
            if r.name.is_empty() {
                out.push(FieldError::invalid_str(
                    &p.child("name"),
                    "",
                    "name must not be empty",
                ));
            }
            if r.uid.is_empty() {
                out.push(FieldError::invalid_str(
                    &p.child("uid"),
                    "",
                    "uid must not be empty",
                ));
            }
        }
    }
    out
}

/// Validates metadata changes on update (upstream `ValidateObjectMetaUpdate`).
pub fn validate_object_meta_update(
    new: &ObjectMeta,
    old: &ObjectMeta,
    namespaced: bool,
    rule: NameRule,
) -> Vec<FieldError> {
    let path = FieldPath::root("metadata");
    let mut out = Vec::new();
    // Names are checked only if they changed (they cannot), so skip name validation on update
    // beyond immutability, as upstream does for labels and annotations.
    let _ = rule;
    let _ = namespaced;
    if new.name != old.name {
        out.push(FieldError::invalid_str(
            &path.child("name"),
            new.name.as_deref().unwrap_or(""),
            "field is immutable",
        ));
    }
    if new.namespace != old.namespace {
        out.push(FieldError::invalid_str(
            &path.child("namespace"),
            new.namespace.as_deref().unwrap_or(""),
            "field is immutable",
        ));
    }
    if new.uid != old.uid {
        out.push(FieldError::invalid_str(
            &path.child("uid"),
            new.uid.as_deref().unwrap_or(""),
            "field is immutable",
        ));
    }
    if new.creation_timestamp != old.creation_timestamp {
        out.push(FieldError::invalid(
            &path.child("creationTimestamp"),
            "...",
            "field is immutable",
        ));
    }
    if let Some(l) = &new.labels {
        out.extend(validate_labels(l, &path.child("labels")));
    }
    if let Some(a) = &new.annotations {
        out.extend(validate_annotations(a, &path.child("annotations")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(is_dns1123_subdomain("a.b-c").is_empty());
        assert!(!is_dns1123_subdomain("A").is_empty());
        assert!(is_dns1123_label("abc").is_empty());
        assert!(!is_dns1123_label("a.b").is_empty());
        assert!(!is_dns1035_label("1abc").is_empty());
        assert!(is_qualified_name("app.kubernetes.io/name").is_empty());
        assert!(!is_qualified_name("-x").is_empty());
        assert!(is_label_value("").is_empty());
        assert!(!is_label_value("a b").is_empty());
    }

    #[test]
    fn meta_requires_name() {
        let m = ObjectMeta {
            namespace: Some("default".into()),
            ..Default::default()
        };
        let errs = validate_object_meta(&m, true, NameRule::Subdomain);
        assert_eq!(
            errs[0].to_string(),
            "metadata.name: Required value: name or generateName is required"
        );
    }
}
