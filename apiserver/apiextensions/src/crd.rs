//! CustomResourceDefinition object validation on create and update: metadata name, group,
//! scope, names, versions, schemas, subresources, printer columns, selectable fields,
//! conversion, stored versions and immutable fields (mirrors apiextensions-apiserver
//! pkg/apis/apiextensions/validation/validation.go). v1 per-version fields that are identical
//! in every version are reported at their hoisted `spec.validation`/`spec.subresources`/...
//! paths, as upstream's conversion to the internal type moves them there.

use crate::cel::crd_rules::schema_unchanged;
use crate::crd_schema::validate_crd_schema;
use crate::structural::Structural;
use apiserver_apimachinery::names::{
    NameRule, is_dns1035_label, is_dns1123_subdomain, validate_object_meta,
    validate_object_meta_update,
};
use apiserver_apimachinery::{FieldError, FieldPath};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::Value;

const PRINTER_TYPES: &str = "boolean,date,integer,number,string";
const PRINTER_FORMATS: [&str; 9] = [
    "byte",
    "date",
    "date-time",
    "double",
    "float",
    "int32",
    "int64",
    "password",
    "uri",
];
const MAX_SELECTABLE_FIELDS: usize = 8;

fn s<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr).and_then(Value::as_str).unwrap_or("")
}

fn meta_of(v: &Value) -> Result<ObjectMeta, FieldError> {
    serde_json::from_value(v.get("metadata").cloned().unwrap_or(Value::Null))
        .or_else(|_| serde_json::from_value(serde_json::json!({})))
        .map_err(|e| FieldError::invalid_str(&FieldPath::root("metadata"), "", e.to_string()))
}

/// Validates a v1 CRD on create (after [`crate::helpers::prepare_for_create`]).
pub fn validate_crd(crd: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    match meta_of(crd) {
        Ok(meta) => {
            errs.extend(validate_object_meta(&meta, false, NameRule::Subdomain));
            let name = meta.name.as_deref().unwrap_or("");
            let want = format!("{}.{}", s(crd, "/spec/names/plural"), s(crd, "/spec/group"));
            if !name.is_empty() && name != want {
                errs.push(FieldError::invalid_str(
                    &FieldPath::root("metadata").child("name"),
                    name,
                    r#"must be spec.names.plural+"."+spec.group"#,
                ));
            }
        }
        Err(e) => errs.push(e),
    }
    errs.extend(validate_spec(crd, None));
    errs.extend(validate_status(crd));
    errs.extend(validate_stored_versions(crd));
    errs.extend(validate_preserve_unknown_fields(crd, None));
    errs
}

/// Validates a v1 CRD update: everything [`validate_crd`] checks plus immutability of
/// `spec.group`, `spec.names.plural`, and (once Established) `spec.scope` and `spec.names.kind`.
pub fn validate_crd_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let (Ok(n), Ok(o)) = (meta_of(new), meta_of(old)) {
        errs.extend(validate_object_meta_update(
            &n,
            &o,
            false,
            NameRule::Subdomain,
        ));
    }
    errs.extend(validate_spec(new, Some(old)));
    let established = crate::naming::condition_true(old, "Established");
    let spec = FieldPath::root("spec");
    let mut immutable = |ptr: &str, p: FieldPath| {
        if s(new, ptr) != s(old, ptr) {
            errs.push(FieldError::invalid_str(
                &p,
                s(new, ptr),
                "field is immutable",
            ));
        }
    };
    if established {
        immutable("/spec/scope", spec.child("scope"));
        immutable("/spec/names/kind", spec.child("names").child("kind"));
    }
    immutable("/spec/group", spec.child("group"));
    immutable("/spec/names/plural", spec.child("names").child("plural"));
    errs.extend(validate_status(new));
    errs.extend(validate_stored_versions(new));
    errs.extend(validate_preserve_unknown_fields(new, Some(old)));
    errs
}

/// Validates a `/status` update (upstream `ValidateUpdateCustomResourceDefinitionStatus`).
pub fn validate_crd_status_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let (Ok(n), Ok(o)) = (meta_of(new), meta_of(old)) {
        errs.extend(validate_object_meta_update(
            &n,
            &o,
            false,
            NameRule::Subdomain,
        ));
    }
    errs.extend(validate_status(new));
    errs
}

fn validate_preserve_unknown_fields(crd: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let on = |v: &Value| {
        v.pointer("/spec/preserveUnknownFields")
            .and_then(Value::as_bool)
            == Some(true)
    };
    if old.is_some_and(on) || !on(crd) {
        return Vec::new();
    }
    vec![FieldError::invalid(
        &FieldPath::root("spec").child("preserveUnknownFields"),
        true,
        "cannot set to true, set x-kubernetes-preserve-unknown-fields to true in spec.versions[*].schema instead",
    )]
}

fn validate_stored_versions(crd: &Value) -> Vec<FieldError> {
    let p = FieldPath::root("status").child("storedVersions");
    let stored = crate::structural::string_list(crd.pointer("/status/storedVersions"));
    let shown = Value::from(stored.clone()).to_string();
    if stored.is_empty() {
        return vec![FieldError::invalid(
            &p,
            "[]",
            "must have at least one stored version",
        )];
    }
    let mut errs = Vec::new();
    let vs = crate::helpers::versions(crd);
    for v in vs {
        let name = s(v, "/name");
        if v.get("storage").and_then(Value::as_bool) == Some(true)
            && !stored.iter().any(|x| x == name)
        {
            errs.push(FieldError::invalid(
                &p,
                &shown,
                format!("must have the storage version {name}"),
            ));
        }
    }
    for (i, sv) in stored.iter().enumerate() {
        if !vs.iter().any(|v| s(v, "/name") == sv) {
            errs.push(FieldError::invalid_str(&p.index(i), sv, format!("missing from spec.versions; {sv} was previously a storage version, and must remain in spec.versions until a storage migration ensures no data remains persisted in {sv} and removes {sv} from status.storedVersions")));
        }
    }
    errs
}

fn validate_status(crd: &Value) -> Vec<FieldError> {
    match crd.pointer("/status/acceptedNames") {
        Some(n) => validate_names(n, &FieldPath::root("status").child("acceptedNames")),
        None => Vec::new(),
    }
}

/// Upstream `ValidateCustomResourceDefinitionNames`.
pub fn validate_names(names: &Value, p: &FieldPath) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let get = |k: &str| names.get(k).and_then(Value::as_str).unwrap_or("");
    for k in ["plural", "singular"] {
        let v = get(k);
        let e = is_dns1035_label(v);
        if !v.is_empty() && !e.is_empty() {
            errs.push(FieldError::invalid_str(&p.child(k), v, e.join(",")));
        }
    }
    for k in ["kind", "listKind"] {
        let v = get(k);
        let e = is_dns1035_label(&v.to_lowercase());
        if !v.is_empty() && !e.is_empty() {
            errs.push(FieldError::invalid_str(
                &p.child(k),
                v,
                format!(
                    "may have mixed case, but should otherwise match: {}",
                    e.join(",")
                ),
            ));
        }
    }
    for (i, sn) in crate::structural::string_list(names.get("shortNames"))
        .iter()
        .enumerate()
    {
        let e = is_dns1035_label(sn);
        if !e.is_empty() {
            errs.push(FieldError::invalid_str(
                &p.child("shortNames").index(i),
                sn,
                e.join(","),
            ));
        }
    }
    if !get("kind").is_empty() && get("kind") == get("listKind") {
        errs.push(FieldError::invalid_str(
            &p.child("listKind"),
            get("listKind"),
            "kind and listKind may not be the same",
        ));
    }
    for (i, c) in crate::structural::string_list(names.get("categories"))
        .iter()
        .enumerate()
    {
        let e = is_dns1035_label(c);
        if !e.is_empty() {
            errs.push(FieldError::invalid_str(
                &p.child("categories").index(i),
                c,
                e.join(","),
            ));
        }
    }
    errs
}

/// Whether the per-version field `k` is identical (and so hoisted) across all versions.
fn hoisted(versions: &[Value], k: &str) -> bool {
    versions
        .first()
        .is_some_and(|f| versions.iter().all(|v| v.get(k) == f.get(k)))
}

/// `old` is the stored CRD on update (None on create).
fn validate_spec(crd: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let allow_invalid_ca_bundle =
        old.is_none_or(crate::conversion::allow_invalid_ca_bundle_on_update);
    let p = FieldPath::root("spec");
    let mut errs = Vec::new();
    let group = s(crd, "/spec/group");
    if group.is_empty() {
        errs.push(FieldError::required(&p.child("group"), ""));
    } else if !is_dns1123_subdomain(group).is_empty() {
        errs.push(FieldError::invalid_str(
            &p.child("group"),
            group,
            is_dns1123_subdomain(group).join(","),
        ));
    } else if group.split('.').count() < 2 {
        errs.push(FieldError::invalid_str(
            &p.child("group"),
            group,
            "should be a domain with at least one dot",
        ));
    }
    match s(crd, "/spec/scope") {
        "" => errs.push(FieldError::required(&p.child("scope"), "")),
        "Cluster" | "Namespaced" => {}
        other => errs.push(FieldError::not_supported(
            &p.child("scope"),
            other,
            &["Cluster", "Namespaced"],
        )),
    }
    let versions = crate::helpers::versions(crd);
    let schema_hoisted = hoisted(versions, "schema");
    let sub_hoisted = hoisted(versions, "subresources");
    let cols_hoisted = hoisted(versions, "additionalPrinterColumns");
    let sel_hoisted = hoisted(versions, "selectableFields");
    let any_status = versions
        .iter()
        .any(|v| v.pointer("/subresources/status").is_some());
    let mut storage = 0;
    let mut seen = std::collections::HashSet::new();
    let mut unique = true;
    for (i, v) in versions.iter().enumerate() {
        let vp = p.child("versions").index(i);
        let name = s(v, "/name");
        if v.get("storage").and_then(Value::as_bool) == Some(true) {
            storage += 1;
        }
        unique &= seen.insert(name.to_string());
        let e = is_dns1035_label(name);
        if !e.is_empty() {
            errs.push(FieldError::invalid_str(
                &vp.child("name"),
                name,
                e.join(","),
            ));
        }
        if v.pointer("/schema/openAPIV3Schema").is_none() {
            errs.push(FieldError::required(
                &vp.child("schema").child("openAPIV3Schema"),
                "",
            ));
        }
        if let Some(w) = v.get("deprecationWarning").and_then(Value::as_str) {
            let mut msgs = Vec::new();
            if v.get("deprecated").and_then(Value::as_bool) != Some(true) {
                msgs.push("can only be set for deprecated versions".to_string());
            } else {
                if w.len() > 256 {
                    msgs.push("must be <= 256 characters long".into());
                }
                if w.is_empty() {
                    msgs.push("must not be an empty string".into());
                }
                if let Some((i, _)) = w.char_indices().find(|(_, c)| c.is_control()) {
                    msgs.push(format!("must only contain printable UTF-8 characters; control character found at index {i}"));
                }
            }
            for m in msgs {
                errs.push(FieldError::invalid_str(
                    &vp.child("deprecationWarning"),
                    w,
                    m,
                ));
            }
        }
        let status = if sub_hoisted {
            any_status
        } else {
            v.pointer("/subresources/status").is_some()
        };
        if !schema_hoisted && let Some(sc) = v.pointer("/schema/openAPIV3Schema") {
            let unchanged = schema_unchanged(crd, old, name);
            errs.extend(validate_crd_schema(
                sc,
                status,
                &vp.child("schema"),
                unchanged,
            ));
        }
        if !sub_hoisted && let Some(sr) = v.get("subresources") {
            errs.extend(validate_subresources(sr, &vp.child("subresources")));
        }
        if !cols_hoisted {
            errs.extend(validate_columns(v, &vp.child("additionalPrinterColumns")));
        }
        if !sel_hoisted {
            errs.extend(validate_selectable_fields(v, &vp.child("selectableFields")));
        }
    }
    if !unique {
        errs.push(FieldError::invalid(
            &p.child("versions"),
            "[...]",
            "must contain unique version names",
        ));
    }
    if storage != 1 {
        errs.push(FieldError::invalid(
            &p.child("versions"),
            "[...]",
            "must have exactly one version marked as storage version",
        ));
    }
    let names = crd.pointer("/spec/names").cloned().unwrap_or(Value::Null);
    for k in ["plural", "singular", "kind", "listKind"] {
        if names
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .is_empty()
        {
            errs.push(FieldError::required(&p.child("names").child(k), ""));
        }
    }
    errs.extend(validate_names(&names, &p.child("names")));
    if let Some(first) = versions.first() {
        if schema_hoisted && let Some(sc) = first.pointer("/schema/openAPIV3Schema") {
            let (unchanged, vp) = (
                schema_unchanged(crd, old, s(first, "/name")),
                p.child("validation"),
            );
            errs.extend(validate_crd_schema(sc, any_status, &vp, unchanged));
        }
        if sub_hoisted && let Some(sr) = first.get("subresources") {
            errs.extend(validate_subresources(sr, &p.child("subresources")));
        }
        if cols_hoisted {
            errs.extend(validate_columns(
                first,
                &p.child("additionalPrinterColumns"),
            ));
        }
        if sel_hoisted {
            errs.extend(validate_selectable_fields(
                first,
                &p.child("selectableFields"),
            ));
        }
    }
    errs.extend(crate::conversion::validate_conversion(
        crd,
        &p.child("conversion"),
        allow_invalid_ca_bundle,
    ));
    errs
}

fn simple_json_path(v: &str, p: &FieldPath) -> Option<FieldError> {
    if v.is_empty() {
        Some(FieldError::invalid_str(p, v, "must not be empty"))
    } else if !v.starts_with('.') {
        Some(FieldError::invalid_str(
            p,
            v,
            "must be a simple json path starting with .",
        ))
    } else {
        None
    }
}

fn validate_subresources(sr: &Value, p: &FieldPath) -> Vec<FieldError> {
    let Some(scale) = sr.get("scale") else {
        return Vec::new();
    };
    let mut errs = Vec::new();
    for (k, prefix, msg) in [
        (
            "specReplicasPath",
            &[".spec."][..],
            "should be a json path under .spec",
        ),
        (
            "statusReplicasPath",
            &[".status."][..],
            "should be a json path under .status",
        ),
    ] {
        let fp = p.child(&format!("scale.{k}"));
        let v = s(scale, &format!("/{k}"));
        if v.is_empty() {
            errs.push(FieldError::required(&fp, ""));
        } else if let Some(e) = simple_json_path(v, &fp) {
            errs.push(e);
        } else if !prefix.iter().any(|pre| v.starts_with(pre)) {
            errs.push(FieldError::invalid_str(&fp, v, msg));
        }
    }
    let ls = s(scale, "/labelSelectorPath");
    if !ls.is_empty() {
        let fp = p.child("scale.labelSelectorPath");
        if let Some(e) = simple_json_path(ls, &fp) {
            errs.push(e);
        } else if !ls.starts_with(".spec.") && !ls.starts_with(".status.") {
            errs.push(FieldError::invalid_str(
                &fp,
                ls,
                "should be a json path under either .spec or .status",
            ));
        }
    }
    errs
}

fn validate_columns(v: &Value, p: &FieldPath) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, c) in v
        .get("additionalPrinterColumns")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let cp = p.index(i);
        if s(c, "/name").is_empty() {
            errs.push(FieldError::required(&cp.child("name"), ""));
        }
        let t = s(c, "/type");
        let msg = format!("must be one of {PRINTER_TYPES}");
        if t.is_empty() {
            errs.push(FieldError::required(&cp.child("type"), msg));
        } else if !PRINTER_TYPES.split(',').any(|x| x == t) {
            errs.push(FieldError::invalid_str(&cp.child("type"), t, msg));
        }
        let f = s(c, "/format");
        if !f.is_empty() && !PRINTER_FORMATS.contains(&f) {
            errs.push(FieldError::invalid_str(
                &cp.child("format"),
                f,
                format!("must be one of {}", PRINTER_FORMATS.join(",")),
            ));
        }
        let jp = s(c, "/jsonPath");
        if jp.is_empty() {
            errs.push(FieldError::required(&cp.child("JSONPath"), ""));
        } else if let Some(e) = simple_json_path(jp, &cp.child("JSONPath")) {
            errs.push(e);
        }
    }
    errs
}

fn validate_selectable_fields(v: &Value, p: &FieldPath) -> Vec<FieldError> {
    let Some(fields) = v
        .get("selectableFields")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty())
    else {
        return Vec::new();
    };
    let Some(schema) = v.pointer("/schema/openAPIV3Schema") else {
        return vec![FieldError::invalid_str(
            p,
            "",
            "may only be set when `version.schema.openAPIV3Schema` is not included",
        )];
    };
    let Ok(st) = Structural::convert(schema) else {
        return Vec::new();
    };
    let mut errs = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, f) in fields.iter().enumerate() {
        let jp = s(f, "/jsonPath");
        let fp = p.index(i).child("jsonPath");
        if jp.is_empty() {
            errs.push(FieldError::required(&fp, ""));
            continue;
        }
        let norm = jp.trim_start_matches('.');
        let Some(node) = st.lookup_path(jp).filter(|_| jp.starts_with('.')) else {
            errs.push(FieldError::invalid_str(
                &fp,
                jp,
                "is an invalid path: does not refer to a valid field",
            ));
            continue;
        };
        if norm.split('.').next() == Some("metadata") {
            errs.push(FieldError::invalid_str(
                &fp,
                jp,
                "must not point to fields in metadata",
            ));
        }
        if !["string", "boolean", "integer"].contains(&node.type_.as_str()) {
            errs.push(FieldError::invalid_str(&fp, jp, "must point to a field of type string, boolean or integer. Enum string fields and strings with formats are allowed."));
        }
        if !seen.insert(norm.to_string()) {
            errs.push(FieldError::duplicate(
                &fp,
                apiserver_apimachinery::field::show_str(jp),
            ));
        }
    }
    if seen.len() > MAX_SELECTABLE_FIELDS {
        errs.push(FieldError::too_many(p, seen.len(), MAX_SELECTABLE_FIELDS));
    }
    errs
}
