//! Pure helpers for the registry strategies that shape objects before validation (mirrors the
//! PrepareForCreate/PrepareForUpdate parts of pkg/registry/core/{namespace,pod,service} and
//! pkg/registry/batch/job, plus the ipFamily defaulting of pkg/registry/core/service/storage/alloc.go).

use crate::corev1::pod_qos_class;
use apiserver_apimachinery::{FieldError, FieldPath};
use k8s_openapi::api::core::v1 as api;

pub use crate::batch::job_generate_selector;

/// Namespace create: status phase `Active` and the `kubernetes` finalizer in `spec.finalizers`.
pub fn namespace_prepare_for_create(ns: &mut api::Namespace) {
    ns.status = Some(api::NamespaceStatus {
        phase: Some("Active".to_string()),
        conditions: None,
    });
    let spec = ns.spec.get_or_insert_with(Default::default);
    let finalizers = spec.finalizers.get_or_insert_with(Vec::new);
    if !finalizers.iter().any(|f| f == "kubernetes") {
        finalizers.push("kubernetes".to_string());
    }
}

/// Namespace update through the main resource: finalizers and status are kept from `old`.
pub fn namespace_prepare_for_update(new: &mut api::Namespace, old: &api::Namespace) {
    let finalizers = old.spec.as_ref().and_then(|s| s.finalizers.clone());
    new.spec.get_or_insert_with(Default::default).finalizers = finalizers;
    new.status = old.status.clone();
}

/// Pod create: status is reset to phase `Pending` with the computed QoS class.
pub fn pod_prepare_for_create(pod: &mut api::Pod) {
    let qos = pod.spec.as_ref().map_or("BestEffort", pod_qos_class);
    pod.status = Some(api::PodStatus {
        phase: Some("Pending".to_string()),
        qos_class: Some(qos.to_string()),
        ..Default::default()
    });
}

fn same(a: &Option<Vec<String>>, b: &Option<Vec<String>>) -> bool {
    a.as_deref().unwrap_or(&[]) == b.as_deref().unwrap_or(&[])
}

/// `NormalizeClusterIPs`: keeps `spec.clusterIP` and `spec.clusterIPs` in step for clients that
/// only set one of them. Call before validation, with `old` on update.
pub fn service_normalize_cluster_ips(new: &mut api::Service, old: Option<&api::Service>) {
    let ns = new.spec.get_or_insert_with(Default::default);
    let cip = ns.cluster_ip.clone().unwrap_or_default();
    let Some(old) = old else {
        if !cip.is_empty() && ns.cluster_ips.as_ref().is_none_or(Vec::is_empty) {
            ns.cluster_ips = Some(vec![cip]);
        }
        return;
    };
    let os = old.spec.clone().unwrap_or_default();
    let old_cip = os.cluster_ip.clone().unwrap_or_default();
    if os.cluster_ips.as_ref().is_some_and(|v| !v.is_empty())
        && ns.cluster_ips.as_ref().is_none_or(Vec::is_empty)
        && old_cip == cip
    {
        ns.cluster_ips = os.cluster_ips.clone();
    }
    if old_cip != cip {
        if !old_cip.is_empty() && cip.is_empty() && same(&os.cluster_ips, &ns.cluster_ips) {
            ns.cluster_ips = None;
        }
        if !cip.is_empty() && same(&os.cluster_ips, &ns.cluster_ips) {
            ns.cluster_ips = Some(vec![cip]);
        }
    }
}

fn family_of(ip: &str) -> &'static str {
    if ip.contains(':') { "IPv6" } else { "IPv4" }
}

/// `initIPFamilyFields` for the allocator: defaults `spec.ipFamilyPolicy` (SingleStack, or
/// RequireDualStack for headless services without a selector, or the old policy on update) and
/// `spec.ipFamilies` from the cluster IPs and the cluster's service families (primary first).
pub fn service_init_ip_family_fields(
    new: &mut api::Service,
    old: Option<&api::Service>,
    cluster_families: &[&str],
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let spec = new.spec.get_or_insert_with(Default::default);
    if spec.type_.as_deref() == Some("ExternalName") {
        return errs;
    }
    let headless_selectorless = spec.cluster_ip.as_deref() == Some("None")
        && spec.selector.as_ref().is_none_or(|s| s.is_empty());
    if spec.ip_family_policy.is_none() {
        let old_policy = old
            .and_then(|o| o.spec.as_ref())
            .and_then(|s| s.ip_family_policy.clone());
        spec.ip_family_policy = Some(match old_policy {
            Some(p) => p,
            None if headless_selectorless => "RequireDualStack".to_string(),
            None => "SingleStack".to_string(),
        });
    }
    let policy = spec.ip_family_policy.clone().unwrap_or_default();
    let policy_path = FieldPath::root("spec").child("ipFamilyPolicy");
    let quoted = serde_json::to_string(&policy).unwrap_or_default();
    let families = spec.ip_families.get_or_insert_with(Vec::new);
    if policy == "SingleStack" {
        if spec.cluster_ips.as_ref().is_some_and(|c| c.len() == 2) {
            errs.push(FieldError::invalid(&policy_path, &quoted, "must be 'RequireDualStack' or 'PreferDualStack' when multiple cluster IPs are specified"));
        }
        if families.len() == 2 {
            errs.push(FieldError::invalid(&policy_path, &quoted, "must be 'RequireDualStack' or 'PreferDualStack' when multiple IP families are specified"));
        }
    }
    for (i, ip) in spec.cluster_ips.iter().flatten().enumerate() {
        if ip == "None" {
            break;
        }
        if i >= families.len() {
            let fam = family_of(ip);
            if cluster_families.contains(&fam) {
                families.push(fam.to_string());
            } else {
                let ips = serde_json::to_string(&spec.cluster_ips).unwrap_or_default();
                errs.push(FieldError::invalid(
                    &FieldPath::root("spec").child("clusterIPs").index(i),
                    ips,
                    format!("{fam} is not configured on this cluster"),
                ));
            }
        }
    }
    if !errs.is_empty() {
        return errs;
    }
    let primary = cluster_families.first().copied().unwrap_or("IPv4");
    let other = |f: &str| if f == "IPv4" { "IPv6" } else { "IPv4" };
    if headless_selectorless {
        if families.is_empty() {
            families.push(primary.to_string());
        }
        if families.len() < 2 && policy != "SingleStack" {
            let alt = other(&families[0]).to_string();
            families.push(alt);
        }
        return errs;
    }
    if policy == "RequireDualStack" && cluster_families.len() < 2 {
        errs.push(FieldError::invalid(
            &policy_path,
            &quoted,
            "this cluster is not configured for dual-stack services",
        ));
    }
    for (i, f) in families.iter().enumerate() {
        if !cluster_families.contains(&f.as_str()) {
            errs.push(FieldError::invalid_str(
                &FieldPath::root("spec").child("ipFamilies").index(i),
                f,
                "not configured on this cluster",
            ));
        }
    }
    if !errs.is_empty() {
        return errs;
    }
    if families.is_empty() {
        families.push(primary.to_string());
    }
    if policy != "SingleStack" && families.len() == 1 && cluster_families.len() == 2 {
        let alt = other(&families[0]).to_string();
        families.push(alt);
    }
    errs
}
