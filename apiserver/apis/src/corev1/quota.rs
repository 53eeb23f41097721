//! ResourceQuota and LimitRange validation (mirrors ValidateResourceQuota*, ValidateLimitRange and
//! their helpers in pkg/apis/core/validation/validation.go).

use super::resources::{
    STANDARD_QUOTA_RESOURCES, container_resource_name, is_overcommit_allowed, is_quota_hugepages,
    parse_q, quantity_value, resource_name,
};
use crate::quantity::Quantity;
use crate::util::{self, Errs};
use apiserver_apimachinery::{FieldError, FieldPath};
use k8s_openapi::api::core::v1 as api;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as KQuantity;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

/// `ValidateResourceQuotaResourceName`.
fn quota_resource_name(errs: &mut Errs, name: &str, path: &FieldPath) {
    resource_name(errs, name, path);
    let standard = STANDARD_QUOTA_RESOURCES.contains(&name) || is_quota_hugepages(name);
    if !name.contains('/') && !standard {
        errs.push(FieldError::invalid_str(
            path,
            name,
            "must be a standard resource for quota",
        ));
    }
}

const QUOTA_SCOPES: [&str; 7] = [
    "Terminating",
    "NotTerminating",
    "BestEffort",
    "NotBestEffort",
    "PriorityClass",
    "CrossNamespacePodAffinity",
    "VolumeAttributesClass",
];

fn conflicting(scopes: &BTreeSet<&str>) -> bool {
    (scopes.contains("BestEffort") && scopes.contains("NotBestEffort"))
        || (scopes.contains("Terminating") && scopes.contains("NotTerminating"))
}

/// `ValidateResourceQuotaSpec`.
pub(crate) fn quota_spec(errs: &mut Errs, spec: &api::ResourceQuotaSpec, path: &FieldPath) {
    for (k, v) in spec.hard.iter().flatten() {
        let p = path.child("hard").key(k);
        quota_resource_name(errs, k, &p);
        quantity_value(errs, k, v, &p);
    }
    let scopes = spec.scopes.as_deref().unwrap_or(&[]);
    let scopes_path = path.child("scopes");
    let mut set = BTreeSet::new();
    for s in scopes {
        if !QUOTA_SCOPES.contains(&s.as_str()) {
            errs.push(FieldError::invalid(
                &scopes_path,
                util::json(scopes),
                "unsupported scope",
            ));
        }
        set.insert(s.as_str());
    }
    if conflicting(&set) {
        errs.push(FieldError::invalid(
            &scopes_path,
            util::json(scopes),
            "conflicting scopes",
        ));
    }
    let Some(sel) = &spec.scope_selector else {
        return;
    };
    let p = path.child("scopeSelector").child("matchExpressions");
    let mut set = BTreeSet::new();
    for req in sel.match_expressions.iter().flatten() {
        if !QUOTA_SCOPES.contains(&req.scope_name.as_str()) {
            errs.push(FieldError::invalid_str(
                &p.child("scopeName"),
                &req.scope_name,
                "unsupported scope",
            ));
        }
        let exists_only = matches!(
            req.scope_name.as_str(),
            "BestEffort"
                | "NotBestEffort"
                | "Terminating"
                | "NotTerminating"
                | "CrossNamespacePodAffinity"
        );
        if exists_only && req.operator != "Exists" {
            errs.push(FieldError::invalid_str(
                &p.child("operator"),
                &req.operator,
                "must be 'Exists' when scope is any of ResourceQuotaScopeTerminating, ResourceQuotaScopeNotTerminating, ResourceQuotaScopeBestEffort, ResourceQuotaScopeNotBestEffort or ResourceQuotaScopeCrossNamespacePodAffinity",
            ));
        }
        let values = req.values.as_deref().unwrap_or(&[]);
        match req.operator.as_str() {
            "In" | "NotIn" if values.is_empty() => errs.push(FieldError::required(
                &p.child("values"),
                "must be at least one value when `operator` is 'In' or 'NotIn' for scope selector",
            )),
            "In" | "NotIn" => {}
            "Exists" | "DoesNotExist" if !values.is_empty() => errs.push(FieldError::invalid(
                &p.child("values"),
                util::json(values),
                "must be no value when `operator` is 'Exist' or 'DoesNotExist' for scope selector",
            )),
            "Exists" | "DoesNotExist" => {}
            other => errs.push(FieldError::invalid_str(
                &p.child("operator"),
                other,
                "not a valid selector operator",
            )),
        }
        set.insert(req.scope_name.as_str());
    }
    if conflicting(&set) {
        errs.push(FieldError::invalid(
            &p,
            util::json(scopes),
            "conflicting scopes",
        ));
    }
}

/// `ValidateResourceQuotaStatus`.
pub(crate) fn quota_status(errs: &mut Errs, status: &api::ResourceQuotaStatus) {
    for (field, list) in [("hard", &status.hard), ("used", &status.used)] {
        for (k, v) in list.iter().flatten() {
            let p = FieldPath::root("status").child(field).key(k);
            quota_resource_name(errs, k, &p);
            quantity_value(errs, k, v, &p);
        }
    }
}

fn limit_range_resource_name(errs: &mut Errs, ty: &str, name: &str, path: &FieldPath) {
    if ty == "Pod" || ty == "Container" {
        container_resource_name(errs, name, path);
    } else {
        resource_name(errs, name, path);
    }
}

/// `ValidateLimitRange` (spec part).
pub(crate) fn limit_range(errs: &mut Errs, lr: &api::LimitRange) {
    let path = FieldPath::root("spec").child("limits");
    let mut types = BTreeSet::new();
    let items = lr.spec.as_ref().map(|s| s.limits.as_slice()).unwrap_or(&[]);
    for (i, item) in items.iter().enumerate() {
        let p = path.index(i);
        let ty = item.type_.as_str();
        let before = errs.len();
        util::qualified_name(errs, ty, &p.child("type"));
        if errs.len() == before
            && !ty.contains('/')
            && !matches!(ty, "Pod" | "Container" | "PersistentVolumeClaim")
        {
            errs.push(FieldError::invalid_str(
                &p.child("type"),
                ty,
                "must be a standard limit type or fully qualified",
            ));
        }
        if !types.insert(ty) {
            errs.push(util::duplicate_str(&p.child("type"), ty));
        }
        let mut parsed: BTreeMap<&str, BTreeMap<String, Quantity>> = BTreeMap::new();
        let mut lists = vec![("max", &item.max), ("min", &item.min)];
        if ty == "Pod" {
            if item.default.as_ref().is_some_and(|d| !d.is_empty()) {
                errs.push(FieldError::forbidden(
                    &p.child("default"),
                    "may not be specified when `type` is 'Pod'",
                ));
            }
            if item.default_request.as_ref().is_some_and(|d| !d.is_empty()) {
                errs.push(FieldError::forbidden(
                    &p.child("defaultRequest"),
                    "may not be specified when `type` is 'Pod'",
                ));
            }
        } else {
            lists.push(("default", &item.default));
            lists.push(("defaultRequest", &item.default_request));
        }
        lists.push(("maxLimitRequestRatio", &item.max_limit_request_ratio));
        for (field, list) in lists {
            for (k, v) in list.iter().flatten() {
                let kp = p.child(field).key(k);
                limit_range_resource_name(errs, ty, k, &kp);
                if let Some(q) = parse_q(errs, v, &kp) {
                    parsed.entry(field).or_default().insert(k.clone(), q);
                }
            }
        }
        if ty == "PersistentVolumeClaim" {
            let has = |l: &Option<BTreeMap<String, KQuantity>>| {
                l.as_ref().is_some_and(|l| l.contains_key("storage"))
            };
            if !has(&item.min) && !has(&item.max) {
                errs.push(FieldError::required(
                    &p.child("limits"),
                    "either minimum or maximum storage value is required, but neither was provided",
                ));
            }
        }
        limit_range_relations(errs, &parsed, &p);
    }
}

fn limit_range_relations(
    errs: &mut Errs,
    parsed: &BTreeMap<&str, BTreeMap<String, Quantity>>,
    p: &FieldPath,
) {
    let keys: BTreeSet<&String> = parsed.values().flat_map(|m| m.keys()).collect();
    let get = |f: &str, k: &str| parsed.get(f).and_then(|m| m.get(k)).copied();
    for k in keys {
        let (min, max, def, defreq, ratio) = (
            get("min", k),
            get("max", k),
            get("default", k),
            get("defaultRequest", k),
            get("maxLimitRequestRatio", k),
        );
        let gt = |a: &Quantity, b: &Quantity| a.cmp_value(b) == Ordering::Greater;
        let inv = |field: &str, v: &Quantity, msg: String| {
            FieldError::invalid(&p.child(field).key(k), v.canonical(), msg)
        };
        if let (Some(min), Some(max)) = (&min, &max)
            && gt(min, max)
        {
            errs.push(inv(
                "min",
                min,
                format!(
                    "min value {} is greater than max value {}",
                    min.canonical(),
                    max.canonical()
                ),
            ));
        }
        if let (Some(dr), Some(min)) = (&defreq, &min)
            && gt(min, dr)
        {
            errs.push(inv(
                "defaultRequest",
                dr,
                format!(
                    "min value {} is greater than default request value {}",
                    min.canonical(),
                    dr.canonical()
                ),
            ));
        }
        if let (Some(dr), Some(max)) = (&defreq, &max)
            && gt(dr, max)
        {
            errs.push(inv(
                "defaultRequest",
                dr,
                format!(
                    "default request value {} is greater than max value {}",
                    dr.canonical(),
                    max.canonical()
                ),
            ));
        }
        if let (Some(dr), Some(d)) = (&defreq, &def)
            && gt(dr, d)
        {
            errs.push(inv(
                "defaultRequest",
                dr,
                format!(
                    "default request value {} is greater than default limit value {}",
                    dr.canonical(),
                    d.canonical()
                ),
            ));
        }
        if let (Some(d), Some(min)) = (&def, &min)
            && gt(min, d)
        {
            errs.push(inv(
                "default",
                min,
                format!(
                    "min value {} is greater than default value {}",
                    min.canonical(),
                    d.canonical()
                ),
            ));
        }
        if let (Some(d), Some(max)) = (&def, &max)
            && gt(d, max)
        {
            errs.push(inv(
                "default",
                max,
                format!(
                    "default value {} is greater than max value {}",
                    d.canonical(),
                    max.canonical()
                ),
            ));
        }
        if let Some(r) = &ratio
            && r.nanos < 1_000_000_000
        {
            errs.push(inv(
                "maxLimitRequestRatio",
                r,
                format!("ratio {} is less than 1", r.canonical()),
            ));
        }
        if !is_overcommit_allowed(k)
            && let (Some(d), Some(dr)) = (&def, &defreq)
            && d.cmp_value(dr) != Ordering::Equal
        {
            errs.push(inv(
                "defaultRequest",
                dr,
                format!(
                    "default value {} must equal to defaultRequest value {} in {k}",
                    d.canonical(),
                    dr.canonical()
                ),
            ));
        }
    }
}
