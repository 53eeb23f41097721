//! Resource names, quantities and requirements; Node, PersistentVolumeClaim, ResourceQuota and
//! LimitRange validation (mirrors the resource parts of pkg/apis/core/validation/validation.go
//! and pkg/apis/core/helper/helpers.go).

use crate::quantity::{self, Quantity};
use crate::util::{self, Errs};
use apiserver_apimachinery::{FieldError, FieldPath};
use k8s_openapi::api::core::v1 as api;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as KQuantity;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

pub(crate) fn is_hugepages(name: &str) -> bool {
    name.starts_with("hugepages-")
}

fn is_native(name: &str) -> bool {
    !name.contains('/') || name.contains("kubernetes.io/")
}

pub(crate) fn is_extended(name: &str) -> bool {
    if is_native(name) || name.starts_with("requests.") {
        return false;
    }
    apiserver_apimachinery::names::is_qualified_name(&format!("requests.{name}")).is_empty()
}

pub(crate) fn is_overcommit_allowed(name: &str) -> bool {
    is_native(name) && !is_hugepages(name)
}

const INTEGER_RESOURCES: [&str; 9] = [
    "pods",
    "services",
    "replicationcontrollers",
    "resourcequotas",
    "secrets",
    "configmaps",
    "persistentvolumeclaims",
    "services.nodeports",
    "services.loadbalancers",
];

fn is_integer_resource(name: &str) -> bool {
    INTEGER_RESOURCES.contains(&name) || is_extended(name)
}

const STANDARD_RESOURCES: [&str; 20] = [
    "cpu",
    "memory",
    "ephemeral-storage",
    "requests.cpu",
    "requests.memory",
    "requests.ephemeral-storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
    "pods",
    "services",
    "replicationcontrollers",
    "resourcequotas",
    "secrets",
    "persistentvolumeclaims",
    "configmaps",
    "storage",
    "requests.storage",
    "services.nodeports",
    "services.loadbalancers",
];

pub(crate) const STANDARD_QUOTA_RESOURCES: [&str; 19] = [
    "pods",
    "services",
    "replicationcontrollers",
    "resourcequotas",
    "secrets",
    "configmaps",
    "persistentvolumeclaims",
    "services.nodeports",
    "services.loadbalancers",
    "cpu",
    "memory",
    "ephemeral-storage",
    "requests.cpu",
    "requests.memory",
    "requests.storage",
    "requests.ephemeral-storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
];

pub(crate) fn is_quota_hugepages(name: &str) -> bool {
    name.starts_with("hugepages-") || name.starts_with("requests.hugepages-")
}

/// `validateResourceName`.
pub(crate) fn resource_name(errs: &mut Errs, name: &str, path: &FieldPath) -> bool {
    let before = errs.len();
    util::qualified_name(errs, name, path);
    if errs.len() != before {
        return false;
    }
    let standard = STANDARD_RESOURCES.contains(&name) || is_quota_hugepages(name);
    if !name.contains('/') && !standard {
        errs.push(FieldError::invalid_str(
            path,
            name,
            "must be a standard resource type or fully qualified",
        ));
        return false;
    }
    true
}

/// `validateContainerResourceName`.
pub(crate) fn container_resource_name(errs: &mut Errs, name: &str, path: &FieldPath) {
    resource_name(errs, name, path);
    if !name.contains('/') {
        if !matches!(name, "cpu" | "memory" | "ephemeral-storage") && !is_hugepages(name) {
            errs.push(FieldError::invalid_str(
                path,
                name,
                "must be a standard resource for containers",
            ));
        }
    } else if !is_native(name) && !is_extended(name) {
        errs.push(FieldError::invalid_str(
            path,
            name,
            "doesn't follow extended resource name standard",
        ));
    }
}

/// Parses a quantity, reporting upstream's decode message when it is malformed.
pub(crate) fn parse_q(errs: &mut Errs, q: &KQuantity, path: &FieldPath) -> Option<Quantity> {
    match quantity::parse(&q.0) {
        Ok(v) => Some(v),
        Err(e) => {
            errs.push(FieldError::invalid_str(path, &q.0, e));
            None
        }
    }
}

/// `ValidateResourceQuantityValue`.
pub(crate) fn quantity_value(
    errs: &mut Errs,
    name: &str,
    q: &KQuantity,
    path: &FieldPath,
) -> Option<Quantity> {
    let v = parse_q(errs, q, path)?;
    if v.nanos < 0 {
        errs.push(FieldError::invalid_str(
            path,
            &v.canonical(),
            util::NEGATIVE_MSG,
        ));
    }
    if is_integer_resource(name) && v.milli_value() % 1000 != 0 {
        errs.push(FieldError::invalid(
            path,
            v.canonical(),
            "must be an integer",
        ));
    }
    Some(v)
}

/// `ValidatePositiveQuantityValue`.
fn positive_quantity(errs: &mut Errs, v: &Quantity, path: &FieldPath) -> bool {
    if v.nanos <= 0 {
        errs.push(FieldError::invalid_str(
            path,
            &v.canonical(),
            "must be greater than zero",
        ));
        return false;
    }
    true
}

fn hugepage_divisible(errs: &mut Errs, name: &str, v: &Quantity, path: &FieldPath) {
    let Some(size) = name.strip_prefix("hugepages-") else {
        return;
    };
    let ok = quantity::parse(size)
        .is_ok_and(|page| page.nanos > 0 && v.nanos > 0 && v.nanos % page.nanos == 0);
    if !ok {
        errs.push(FieldError::invalid_str(
            path,
            &v.canonical(),
            format!(
                "{} is not positive integer multiple of {name}",
                v.canonical()
            ),
        ));
    }
}

/// `validateResourceRequirements` for containers.
pub(crate) fn container_requirements(
    errs: &mut Errs,
    req: &api::ResourceRequirements,
    claim_names: &BTreeSet<String>,
    path: &FieldPath,
) {
    let lim_path = path.child("limits");
    let req_path = path.child("requests");
    let empty = BTreeMap::new();
    let limits = req.limits.as_ref().unwrap_or(&empty);
    let requests = req.requests.as_ref().unwrap_or(&empty);
    let (mut qos_lim, mut qos_req, mut huge) = (false, false, false);
    let mut parsed_limits = BTreeMap::new();
    for (name, q) in limits {
        let p = lim_path.key(name);
        container_resource_name(errs, name, &p);
        if let Some(v) = quantity_value(errs, name, q, &p) {
            if is_hugepages(name) {
                huge = true;
                hugepage_divisible(errs, name, &v, &p);
            }
            parsed_limits.insert(name.clone(), v);
        }
        qos_lim |= name == "cpu" || name == "memory";
    }
    for (name, q) in requests {
        let p = req_path.key(name);
        container_resource_name(errs, name, &p);
        let Some(v) = quantity_value(errs, name, q, &p) else {
            continue;
        };
        if let Some(lim) = parsed_limits.get(name) {
            if v.cmp_value(lim) != Ordering::Equal && !is_overcommit_allowed(name) {
                errs.push(FieldError::invalid_str(
                    &req_path,
                    &v.canonical(),
                    format!("must be equal to {name} limit of {}", lim.canonical()),
                ));
            } else if v.cmp_value(lim) == Ordering::Greater {
                errs.push(FieldError::invalid_str(
                    &req_path,
                    &v.canonical(),
                    format!(
                        "must be less than or equal to {name} limit of {}",
                        lim.canonical()
                    ),
                ));
            }
        } else if !limits.contains_key(name) && !is_overcommit_allowed(name) {
            errs.push(FieldError::required(
                &lim_path,
                "Limit must be set for non overcommitable resources",
            ));
        }
        if is_hugepages(name) {
            huge = true;
            hugepage_divisible(errs, name, &v, &p);
        }
        qos_req |= name == "cpu" || name == "memory";
    }
    if !qos_lim && !qos_req && huge {
        errs.push(FieldError::forbidden(
            path,
            "HugePages require cpu or memory",
        ));
    }
    let mut seen = BTreeSet::new();
    for (i, claim) in req.claims.iter().flatten().enumerate() {
        let p = path.child("claims").index(i);
        if claim.name.is_empty() {
            errs.push(FieldError::required(&p, ""));
            continue;
        }
        let key = match claim.request.as_deref().filter(|r| !r.is_empty()) {
            Some(r) => {
                util::dns_label(errs, r, &p.child("request"));
                format!("{}/{r}", claim.name)
            }
            None => claim.name.clone(),
        };
        if seen.contains(&claim.name) || !seen.insert(key.clone()) {
            errs.push(util::duplicate_str(&p, &key));
        }
        if !claim_names.contains(&claim.name) {
            let mut e = util::not_found_str(&p, &claim.name);
            e.detail = if claim_names.is_empty() {
                "must be one of the names in pod.spec.resourceClaims which is empty".to_string()
            } else {
                let names: Vec<&str> = claim_names.iter().map(String::as_str).collect();
                format!(
                    "must be one of the names in pod.spec.resourceClaims: {}",
                    names.join(", ")
                )
            };
            errs.push(e);
        }
    }
}

const ACCESS_MODES: [&str; 4] = [
    "ReadOnlyMany",
    "ReadWriteMany",
    "ReadWriteOnce",
    "ReadWriteOncePod",
];

/// `ValidatePersistentVolumeClaimSpec`.
pub(crate) fn pvc_spec(errs: &mut Errs, spec: &api::PersistentVolumeClaimSpec, path: &FieldPath) {
    let modes = spec.access_modes.as_deref().unwrap_or(&[]);
    if modes.is_empty() {
        errs.push(FieldError::required(
            &path.child("accessModes"),
            "at least 1 access mode is required",
        ));
    }
    if let Some(sel) = &spec.selector {
        util::label_selector(errs, sel, &path.child("selector"), false);
    }
    let (mut rwop, mut other) = (false, false);
    for m in modes {
        if !ACCESS_MODES.contains(&m.as_str()) {
            errs.push(FieldError::not_supported(
                &path.child("accessModes"),
                m,
                &ACCESS_MODES,
            ));
        } else if m == "ReadWriteOncePod" {
            rwop = true;
        } else {
            other = true;
        }
    }
    if rwop && other {
        errs.push(FieldError::forbidden(
            &path.child("accessModes"),
            "may not use ReadWriteOncePod with other access modes",
        ));
    }
    let storage_path = path.child("resources").key("storage");
    match spec
        .resources
        .as_ref()
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"))
    {
        None => errs.push(FieldError::required(&storage_path, "")),
        Some(q) => {
            if let Some(v) = parse_q(errs, q, &storage_path)
                && positive_quantity(errs, &v, &storage_path)
            {
                quantity_value(errs, "storage", q, &storage_path);
            }
        }
    }
    if let Some(sc) = spec.storage_class_name.as_deref().filter(|s| !s.is_empty()) {
        util::dns_subdomain(errs, sc, &path.child("storageClassName"));
    }
    if let Some(vm) = &spec.volume_mode
        && vm != "Block"
        && vm != "Filesystem"
    {
        errs.push(FieldError::not_supported(
            &path.child("volumeMode"),
            vm,
            &["Block", "Filesystem"],
        ));
    }
    if let Some(ds) = &spec.data_source {
        data_source(
            errs,
            &ds.name,
            &ds.kind,
            ds.api_group.as_deref(),
            &path.child("dataSource"),
        );
    }
    if let Some(ds) = &spec.data_source_ref {
        data_source(
            errs,
            &ds.name,
            &ds.kind,
            ds.api_group.as_deref(),
            &path.child("dataSourceRef"),
        );
    }
    if let Some(vac) = spec
        .volume_attributes_class_name
        .as_deref()
        .filter(|s| !s.is_empty())
    {
        util::dns_subdomain(errs, vac, &path.child("volumeAttributesClassName"));
    }
}

fn data_source(errs: &mut Errs, name: &str, kind: &str, group: Option<&str>, path: &FieldPath) {
    if name.is_empty() {
        errs.push(FieldError::required(&path.child("name"), ""));
    }
    if kind.is_empty() {
        errs.push(FieldError::required(&path.child("kind"), ""));
    }
    let group = group.unwrap_or("");
    if group.is_empty() && kind != "PersistentVolumeClaim" {
        errs.push(FieldError::invalid_str(
            path,
            kind,
            "must be 'PersistentVolumeClaim' when referencing the default apiGroup",
        ));
    }
    if !group.is_empty() {
        util::dns_subdomain(errs, group, &path.child("apiGroup"));
    }
}

/// `ValidatePersistentVolumeClaimUpdate` (spec part).
pub(crate) fn pvc_update(
    errs: &mut Errs,
    new: &api::PersistentVolumeClaim,
    old: &api::PersistentVolumeClaim,
) {
    let (Some(ns), Some(os)) = (&new.spec, &old.spec) else {
        return;
    };
    let mut munged = ns.clone();
    if os.volume_name.as_deref().unwrap_or("").is_empty() {
        munged.volume_name = os.volume_name.clone();
    }
    let bound = new.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound");
    if bound {
        if let Some(reqs) = munged.resources.as_mut().and_then(|r| r.requests.as_mut()) {
            match os
                .resources
                .as_ref()
                .and_then(|r| r.requests.as_ref())
                .and_then(|r| r.get("storage"))
            {
                Some(q) => {
                    reqs.insert("storage".into(), q.clone());
                }
                None => {
                    reqs.remove("storage");
                }
            }
        }
        munged.volume_attributes_class_name = os.volume_attributes_class_name.clone();
    }
    if munged != *os {
        errs.push(FieldError::forbidden(
            &FieldPath::root("spec"),
            "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims",
        ));
    }
    let size = |s: &api::PersistentVolumeClaimSpec| {
        s.resources
            .as_ref()
            .and_then(|r| r.requests.as_ref())
            .and_then(|r| r.get("storage"))
            .and_then(|q| quantity::parse(&q.0).ok())
            .map_or(0, |q| q.nanos)
    };
    if size(ns) < size(os) {
        let capacity = old
            .status
            .as_ref()
            .and_then(|s| s.capacity.as_ref())
            .and_then(|c| c.get("storage"))
            .and_then(|q| quantity::parse(&q.0).ok())
            .map_or(0, |q| q.nanos);
        if size(ns) <= capacity {
            errs.push(FieldError::forbidden(
                &FieldPath::root("spec")
                    .child("resources")
                    .child("requests")
                    .child("storage"),
                "field can not be less than status.capacity",
            ));
        }
    }
}

/// `ValidateNodeResources` and the spec checks of `ValidateNode`.
pub(crate) fn node(errs: &mut Errs, n: &api::Node) {
    if let Some(status) = &n.status {
        for (field, list) in [
            ("capacity", &status.capacity),
            ("allocatable", &status.allocatable),
        ] {
            for (k, v) in list.iter().flatten() {
                let p = FieldPath::root("status").child(field).child(k);
                quantity_value(errs, k, v, &p);
            }
        }
    }
    let Some(spec) = &n.spec else { return };
    let mut unique: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (i, t) in spec.taints.iter().flatten().enumerate() {
        let p = FieldPath::root("metadata").child("taints").index(i);
        util::qualified_name(errs, &t.key, &p.child("key"));
        let v = util::s(&t.value);
        let msgs = apiserver_apimachinery::names::is_label_value(v);
        if !msgs.is_empty() {
            errs.push(FieldError::invalid_str(
                &p.child("value"),
                v,
                msgs.join(";"),
            ));
        }
        super::scheduling::taint_effect(errs, &t.effect, false, &p.child("effect"));
        if !unique
            .entry(t.effect.as_str())
            .or_default()
            .insert(t.key.as_str())
        {
            let mut e = FieldError::duplicate(&p, util::json(t));
            e.detail = "taints must be unique by key and effect pair".to_string();
            errs.push(e);
        }
    }
    let cidrs = spec.pod_cidrs.as_deref().unwrap_or(&[]);
    let cidr_path = FieldPath::root("spec").child("podCIDRs");
    for (i, c) in cidrs.iter().enumerate() {
        util::valid_cidr(errs, c, &cidr_path.index(i));
    }
    if cidrs.len() > 1 {
        let v4 = cidrs.iter().filter(|c| !c.contains(':')).count();
        if cidrs.len() > 2 || v4 != 1 {
            errs.push(FieldError::invalid(
                &cidr_path,
                util::json(cidrs),
                "may specify no more than one CIDR for each IP family",
            ));
        }
    }
}

/// `ValidateNodeUpdate` (spec part).
pub(crate) fn node_update(errs: &mut Errs, new: &api::Node, old: &api::Node) {
    let (ns, os) = (
        new.spec.clone().unwrap_or_default(),
        old.spec.clone().unwrap_or_default(),
    );
    let old_cidrs = os.pod_cidrs.unwrap_or_default();
    if !old_cidrs.is_empty() && ns.pod_cidrs.unwrap_or_default() != old_cidrs {
        errs.push(FieldError::forbidden(
            &FieldPath::root("spec").child("podCIDRs"),
            "node updates may not change podCIDR except from \"\" to valid",
        ));
    }
    let old_provider = os.provider_id.unwrap_or_default();
    if !old_provider.is_empty() && ns.provider_id.unwrap_or_default() != old_provider {
        errs.push(FieldError::forbidden(
            &FieldPath::root("spec").child("providerID"),
            "node updates may not change providerID except from \"\" to valid",
        ));
    }
    if ns.external_id != os.external_id {
        errs.push(FieldError::forbidden(
            &FieldPath::root("spec").child("externalID"),
            "may not be updated",
        ));
    }
}
