//! Scheduling-related pod spec validation: tolerations, affinity, topology spread, DNS config and
//! the pod security context (mirrors those helpers in pkg/apis/core/validation/validation.go).

use super::probes;
use crate::util::{self, Errs};
use apiserver_apimachinery::{FieldError, FieldPath};
use k8s_openapi::api::core::v1 as api;
use std::collections::BTreeSet;

pub(crate) fn taint_effect(errs: &mut Errs, effect: &str, allow_empty: bool, path: &FieldPath) {
    if !allow_empty && effect.is_empty() {
        errs.push(FieldError::required(path, ""));
        return;
    }
    if !matches!(effect, "NoSchedule" | "PreferNoSchedule" | "NoExecute") {
        errs.push(FieldError::not_supported(
            path,
            effect,
            &["NoSchedule", "PreferNoSchedule", "NoExecute"],
        ));
    }
}

/// `ValidateTolerations`.
pub(crate) fn tolerations(errs: &mut Errs, tols: &[api::Toleration], path: &FieldPath) {
    for (i, t) in tols.iter().enumerate() {
        let p = path.index(i);
        let key = util::s(&t.key);
        let op = util::s(&t.operator);
        let value = util::s(&t.value);
        let effect = util::s(&t.effect);
        if !key.is_empty() {
            util::qualified_name(errs, key, &p.child("key"));
        }
        if key.is_empty() && op != "Exists" {
            errs.push(FieldError::invalid_str(
                &p.child("operator"),
                op,
                "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
            ));
        }
        if t.toleration_seconds.is_some() && effect != "NoExecute" {
            errs.push(FieldError::invalid_str(
                &p.child("effect"),
                effect,
                "effect must be 'NoExecute' when `tolerationSeconds` is set",
            ));
        }
        match op {
            "Equal" | "" => {
                let msgs = apiserver_apimachinery::names::is_label_value(value);
                if !msgs.is_empty() {
                    errs.push(FieldError::invalid_str(
                        &p.child("operator"),
                        value,
                        msgs.join(";"),
                    ));
                }
            }
            "Exists" => {
                if !value.is_empty() {
                    errs.push(FieldError::invalid_str(
                        &p.child("operator"),
                        value,
                        "value must be empty when `operator` is 'Exists'",
                    ));
                }
            }
            other => errs.push(FieldError::not_supported(
                &p.child("operator"),
                other,
                &["Equal", "Exists"],
            )),
        }
        if !effect.is_empty() {
            taint_effect(errs, effect, true, &p.child("effect"));
        }
    }
}

fn node_selector_requirement(
    errs: &mut Errs,
    r: &api::NodeSelectorRequirement,
    check_values: bool,
    path: &FieldPath,
) {
    let values = r.values.as_deref().unwrap_or(&[]);
    match r.operator.as_str() {
        "In" | "NotIn" if values.is_empty() => errs.push(FieldError::required(
            &path.child("values"),
            "must be specified when `operator` is 'In' or 'NotIn'",
        )),
        "Exists" | "DoesNotExist" if !values.is_empty() => errs.push(FieldError::forbidden(
            &path.child("values"),
            "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
        )),
        "Gt" | "Lt" if values.len() != 1 => errs.push(FieldError::required(
            &path.child("values"),
            "must be specified single value when `operator` is 'Lt' or 'Gt'",
        )),
        "In" | "NotIn" | "Exists" | "DoesNotExist" | "Gt" | "Lt" => {}
        other => errs.push(FieldError::invalid_str(
            &path.child("operator"),
            other,
            "not a valid selector operator",
        )),
    }
    util::qualified_name(errs, &r.key, &path.child("key"));
    if check_values {
        for (i, v) in values.iter().enumerate() {
            for m in apiserver_apimachinery::names::is_label_value(v) {
                errs.push(FieldError::invalid_str(
                    &path.child("values").index(i),
                    v,
                    m,
                ));
            }
        }
    }
}

fn node_selector_term(
    errs: &mut Errs,
    t: &api::NodeSelectorTerm,
    check_values: bool,
    path: &FieldPath,
) {
    for (j, r) in t.match_expressions.iter().flatten().enumerate() {
        node_selector_requirement(
            errs,
            r,
            check_values,
            &path.child("matchExpressions").index(j),
        );
    }
    for (j, r) in t.match_fields.iter().flatten().enumerate() {
        let p = path.child("matchFields").index(j);
        match r.operator.as_str() {
            "In" | "NotIn" => {
                if r.values.as_ref().map_or(0, Vec::len) != 1 {
                    errs.push(FieldError::required(
                        &p.child("values"),
                        "must be only one value when `operator` is 'In' or 'NotIn' for node field selector",
                    ));
                }
            }
            other => errs.push(FieldError::invalid_str(
                &p.child("operator"),
                other,
                "not a valid selector operator",
            )),
        }
        if r.key != "metadata.name" {
            errs.push(FieldError::invalid_str(
                &p.child("key"),
                &r.key,
                "not a valid field selector key",
            ));
        } else {
            for (i, v) in r.values.iter().flatten().enumerate() {
                util::dns_subdomain(errs, v, &p.child("values").index(i));
            }
        }
    }
}

fn pod_affinity_terms(
    errs: &mut Errs,
    terms: &[api::PodAffinityTerm],
    path: &FieldPath,
    weighted: Option<&[i32]>,
) {
    for (i, t) in terms.iter().enumerate() {
        let p = match weighted {
            Some(ws) => {
                let wp = path.index(i);
                if !(1..=100).contains(&ws[i]) {
                    errs.push(FieldError::invalid(
                        &wp.child("weight"),
                        ws[i],
                        "must be in the range 1-100",
                    ));
                }
                wp.child("podAffinityTerm")
            }
            None => path.index(i),
        };
        if let Some(sel) = &t.label_selector {
            util::label_selector(errs, sel, &p.child("labelSelector"), false);
        }
        if let Some(sel) = &t.namespace_selector {
            util::label_selector(errs, sel, &p.child("namespaceSelector"), false);
        }
        for ns in t.namespaces.iter().flatten() {
            util::dns_label(errs, ns, &p.child("namespace"));
        }
        if t.topology_key.is_empty() {
            errs.push(FieldError::required(
                &p.child("topologyKey"),
                "can not be empty",
            ));
        }
        util::qualified_name(errs, &t.topology_key, &p.child("topologyKey"));
    }
}

pub(crate) fn affinity(errs: &mut Errs, a: &api::Affinity, path: &FieldPath) {
    if let Some(na) = &a.node_affinity {
        let np = path.child("nodeAffinity");
        if let Some(req) = &na.required_during_scheduling_ignored_during_execution {
            let rp = np
                .child("requiredDuringSchedulingIgnoredDuringExecution")
                .child("nodeSelectorTerms");
            if req.node_selector_terms.is_empty() {
                errs.push(FieldError::required(
                    &rp,
                    "must have at least one node selector term",
                ));
            }
            for (i, t) in req.node_selector_terms.iter().enumerate() {
                node_selector_term(errs, t, true, &rp.index(i));
            }
        }
        for (i, t) in na
            .preferred_during_scheduling_ignored_during_execution
            .iter()
            .flatten()
            .enumerate()
        {
            let pp = np
                .child("preferredDuringSchedulingIgnoredDuringExecution")
                .index(i);
            if !(1..=100).contains(&t.weight) {
                errs.push(FieldError::invalid(
                    &pp.child("weight"),
                    t.weight,
                    "must be in the range 1-100",
                ));
            }
            node_selector_term(errs, &t.preference, false, &pp.child("preference"));
        }
    }
    let pairs = [
        (
            "podAffinity",
            a.pod_affinity.as_ref().map(|p| {
                (
                    &p.required_during_scheduling_ignored_during_execution,
                    &p.preferred_during_scheduling_ignored_during_execution,
                )
            }),
        ),
        (
            "podAntiAffinity",
            a.pod_anti_affinity.as_ref().map(|p| {
                (
                    &p.required_during_scheduling_ignored_during_execution,
                    &p.preferred_during_scheduling_ignored_during_execution,
                )
            }),
        ),
    ];
    for (field, v) in pairs {
        let Some((required, preferred)) = v else {
            continue;
        };
        let fp = path.child(field);
        if let Some(r) = required {
            pod_affinity_terms(
                errs,
                r,
                &fp.child("requiredDuringSchedulingIgnoredDuringExecution"),
                None,
            );
        }
        if let Some(p) = preferred {
            let terms: Vec<api::PodAffinityTerm> =
                p.iter().map(|w| w.pod_affinity_term.clone()).collect();
            let weights: Vec<i32> = p.iter().map(|w| w.weight).collect();
            pod_affinity_terms(
                errs,
                &terms,
                &fp.child("preferredDuringSchedulingIgnoredDuringExecution"),
                Some(&weights),
            );
        }
    }
}

pub(crate) fn dns_config(
    errs: &mut Errs,
    cfg: Option<&api::PodDNSConfig>,
    policy: &str,
    path: &FieldPath,
) {
    if policy == "None" {
        match cfg {
            None => {
                errs.push(FieldError::required(
                    path,
                    "must provide `dnsConfig` when `dnsPolicy` is None",
                ));
                return;
            }
            Some(c) if c.nameservers.as_ref().is_none_or(Vec::is_empty) => {
                errs.push(FieldError::required(
                    &path.child("nameservers"),
                    "must provide at least one DNS nameserver when `dnsPolicy` is None",
                ));
                return;
            }
            _ => {}
        }
    }
    let Some(c) = cfg else { return };
    let ns = c.nameservers.as_deref().unwrap_or(&[]);
    if ns.len() > 3 {
        errs.push(FieldError::invalid(
            &path.child("nameservers"),
            util::json(ns),
            "must not have more than 3 nameservers",
        ));
    }
    for (i, n) in ns.iter().enumerate() {
        util::valid_ip(errs, n, &path.child("nameservers").index(i));
    }
    let searches = c.searches.as_deref().unwrap_or(&[]);
    if searches.len() > 32 {
        errs.push(FieldError::invalid(
            &path.child("searches"),
            util::json(searches),
            "must not have more than 32 search paths",
        ));
    }
    if searches.join(" ").len() > 2048 {
        errs.push(FieldError::invalid(
            &path.child("searches"),
            util::json(searches),
            "must not have more than 2048 characters (including spaces) in the search list",
        ));
    }
    for (i, s) in searches.iter().enumerate() {
        if s == "." {
            continue;
        }
        let s = s.strip_suffix('.').unwrap_or(s);
        let ok = !s.is_empty()
            && s.len() <= 253
            && s.split('.').all(|l| {
                let l = l.strip_prefix('_').unwrap_or(l);
                !l.is_empty()
                    && l.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_'
                    })
                    && l.as_bytes()[0].is_ascii_alphanumeric()
                    && l.as_bytes()[l.len() - 1].is_ascii_alphanumeric()
            });
        if !ok {
            errs.push(FieldError::invalid_str(
                &path.child("searches").index(i),
                s,
                "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '_', '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '_?[a-z0-9]([-_a-z0-9]*[a-z0-9])?(\\._?[a-z0-9]([-_a-z0-9]*[a-z0-9])?)*')",
            ));
        }
    }
    for (i, o) in c.options.iter().flatten().enumerate() {
        if o.name.as_deref().unwrap_or("").is_empty() {
            errs.push(FieldError::required(
                &path.child("options").index(i),
                "must not be empty",
            ));
        }
    }
}

pub(crate) fn pod_security_context(
    errs: &mut Errs,
    sc: &api::PodSecurityContext,
    path: &FieldPath,
) {
    probes::pod_id_range(errs, sc.fs_group, &path.child("fsGroup"));
    probes::pod_id_range(errs, sc.run_as_user, &path.child("runAsUser"));
    probes::pod_id_range(errs, sc.run_as_group, &path.child("runAsGroup"));
    for (i, g) in sc.supplemental_groups.iter().flatten().enumerate() {
        probes::pod_id_range(errs, Some(*g), &path.child("supplementalGroups").index(i));
    }
    let mut names = BTreeSet::new();
    for (i, s) in sc.sysctls.iter().flatten().enumerate() {
        let np = path.child("sysctls").index(i).child("name");
        if s.name.is_empty() {
            errs.push(FieldError::required(&np, ""));
        } else if !names.insert(s.name.as_str()) {
            errs.push(util::duplicate_str(&np, &s.name));
        }
    }
    if let Some(p) = &sc.fs_group_change_policy
        && p != "OnRootMismatch"
        && p != "Always"
    {
        errs.push(FieldError::not_supported(
            &path.child("fsGroupChangePolicy"),
            p,
            &["Always", "OnRootMismatch"],
        ));
    }
    probes::seccomp(errs, &sc.seccomp_profile, &path.child("seccompProfile"));
    if let Some(p) = &sc.supplemental_groups_policy
        && p != "Merge"
        && p != "Strict"
    {
        errs.push(FieldError::not_supported(
            &path.child("supplementalGroupsPolicy"),
            p,
            &["Merge", "Strict"],
        ));
    }
    if let Some(p) = &sc.se_linux_change_policy
        && p != "Recursive"
        && p != "MountOption"
    {
        errs.push(FieldError::not_supported(
            &path.child("seLinuxChangePolicy"),
            p,
            &["MountOption", "Recursive"],
        ));
    }
}

pub(crate) fn topology_spread(
    errs: &mut Errs,
    cs: &[api::TopologySpreadConstraint],
    path: &FieldPath,
) {
    for (i, c) in cs.iter().enumerate() {
        let p = path.index(i);
        if c.max_skew <= 0 {
            errs.push(FieldError::invalid(
                &p.child("maxSkew"),
                c.max_skew,
                "must be greater than zero",
            ));
        }
        if c.topology_key.is_empty() {
            errs.push(FieldError::required(
                &p.child("topologyKey"),
                "can not be empty",
            ));
        }
        if !matches!(
            c.when_unsatisfiable.as_str(),
            "DoNotSchedule" | "ScheduleAnyway"
        ) {
            errs.push(FieldError::not_supported(
                &p.child("whenUnsatisfiable"),
                &c.when_unsatisfiable,
                &["DoNotSchedule", "ScheduleAnyway"],
            ));
        }
        let dup = cs[i + 1..].iter().any(|o| {
            o.topology_key == c.topology_key && o.when_unsatisfiable == c.when_unsatisfiable
        });
        if dup {
            errs.push(FieldError::duplicate(
                &p.child("{topologyKey, whenUnsatisfiable}"),
                format!("\"{{{}, {}}}\"", c.topology_key, c.when_unsatisfiable),
            ));
        }
        if let Some(md) = c.min_domains {
            if md <= 0 {
                errs.push(FieldError::invalid(
                    &p.child("minDomains"),
                    md,
                    "must be greater than zero",
                ));
            }
            if c.when_unsatisfiable != "DoNotSchedule" {
                errs.push(FieldError::invalid(
                    &p.child("minDomains"),
                    md,
                    format!(
                        "can only use minDomains if whenUnsatisfiable=DoNotSchedule, not {}",
                        c.when_unsatisfiable
                    ),
                ));
            }
        }
        for (field, v) in [
            ("nodeAffinityPolicy", &c.node_affinity_policy),
            ("nodeTaintsPolicy", &c.node_taints_policy),
        ] {
            if let Some(v) = v
                && v != "Honor"
                && v != "Ignore"
            {
                errs.push(FieldError::not_supported(
                    &p.child(field),
                    v,
                    &["Honor", "Ignore"],
                ));
            }
        }
        if let Some(sel) = &c.label_selector {
            util::label_selector(errs, sel, &p.child("labelSelector"), false);
        }
    }
}
