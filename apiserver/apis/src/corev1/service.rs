//! Service validation (mirrors ValidateService, ValidateServiceUpdate and the cluster IP
//! helpers of pkg/apis/core/validation/validation.go).

use super::containers;
use super::defaults::externally_accessible;
use crate::util::{self, Errs};
use apiserver_apimachinery::{FieldError, FieldPath};
use k8s_openapi::api::core::v1 as api;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeSet;

fn ty(spec: &api::ServiceSpec) -> &str {
    util::s(&spec.type_)
}

fn cluster_ips(spec: &api::ServiceSpec) -> &[String] {
    spec.cluster_ips.as_deref().unwrap_or(&[])
}

pub(crate) fn is_headless(spec: &api::ServiceSpec) -> bool {
    let ips = cluster_ips(spec);
    ips.len() == 1 && ips[0] == "None"
}

fn needs_health_check(spec: &api::ServiceSpec) -> bool {
    ty(spec) == "LoadBalancer" && util::s(&spec.external_traffic_policy) == "Local"
}

fn service_port(
    errs: &mut Errs,
    sp: &api::ServicePort,
    require_name: bool,
    names: &mut BTreeSet<String>,
    path: &FieldPath,
) {
    let name = util::s(&sp.name);
    if require_name && name.is_empty() {
        errs.push(FieldError::required(&path.child("name"), ""));
    } else if !name.is_empty() {
        util::dns_label(errs, name, &path.child("name"));
        if !names.insert(name.to_string()) {
            errs.push(util::duplicate_str(&path.child("name"), name));
        }
    }
    util::port_num(errs, i64::from(sp.port), &path.child("port"));
    containers::protocol(errs, &sp.protocol, &path.child("protocol"));
    let target = sp.target_port.clone().unwrap_or(IntOrString::Int(0));
    util::port_num_or_name(errs, &target, &path.child("targetPort"));
    if let Some(ap) = &sp.app_protocol {
        util::qualified_name(errs, ap, &path.child("appProtocol"));
    }
}

/// Renders a (protocol, port) key the way upstream prints its internal ServicePort.
fn port_key_json(protocol: &str, port: i32, node_port: i32) -> String {
    format!(
        "{{\"Name\":\"\",\"Protocol\":{},\"AppProtocol\":null,\"Port\":{port},\"TargetPort\":0,\"NodePort\":{node_port}}}",
        util::json(protocol)
    )
}

/// `ValidateServiceClusterIPsRelatedFields`.
fn cluster_ip_fields(errs: &mut Errs, spec: &api::ServiceSpec) {
    if ty(spec) == "ExternalName" {
        return;
    }
    let sp = FieldPath::root("spec");
    let ips_path = sp.child("clusterIPs");
    let ips = cluster_ips(spec);
    let cip = util::s(&spec.cluster_ip);
    if !cip.is_empty() {
        if ips.is_empty() {
            errs.push(FieldError::required(&ips_path, ""));
        } else if ips[0] != cip {
            errs.push(FieldError::invalid(
                &ips_path,
                util::json(ips),
                "first value must match `clusterIP`",
            ));
        }
    } else if !ips.is_empty() {
        errs.push(FieldError::invalid(
            &ips_path,
            util::json(ips),
            "must be empty when `clusterIP` is not specified",
        ));
    }
    let mut seen = BTreeSet::new();
    for (i, f) in spec.ip_families.iter().flatten().enumerate() {
        let fp = sp.child("ipFamilies").index(i);
        if f != "IPv4" && f != "IPv6" {
            errs.push(FieldError::not_supported(&fp, f, &["IPv4", "IPv6"]));
        }
        if !seen.insert(f.as_str()) {
            errs.push(util::duplicate_str(&fp, f));
        }
    }
    if let Some(p) = &spec.ip_family_policy {
        let valid = ["PreferDualStack", "RequireDualStack", "SingleStack"];
        if !valid.contains(&p.as_str()) {
            errs.push(FieldError::not_supported(
                &sp.child("ipFamilyPolicy"),
                p,
                &valid,
            ));
        }
    }
    let mut invalid = false;
    for (i, ip) in ips.iter().enumerate() {
        if i == 0 && ip == "None" {
            if ips.len() > 1 {
                invalid = true;
                errs.push(FieldError::invalid(
                    &ips_path,
                    util::json(ips),
                    "'None' must be the first and only value",
                ));
            }
            continue;
        }
        invalid |= !util::valid_ip(errs, ip, &ips_path.index(i));
    }
    if ips.len() > 2 {
        errs.push(FieldError::invalid(
            &ips_path,
            util::json(ips),
            "may only hold up to 2 values",
        ));
    }
    if invalid {
        return;
    }
    if ips.len() > 1 {
        let v6 = ips.iter().filter(|ip| ip.contains(':')).count();
        if v6 != 1 || ips.len() != 2 {
            errs.push(FieldError::invalid(
                &ips_path,
                util::json(ips),
                "may specify no more than one IP for each IP family",
            ));
        }
    }
    if !is_headless(spec) {
        for (i, (ip, fam)) in ips
            .iter()
            .zip(spec.ip_families.iter().flatten())
            .enumerate()
        {
            let v6 = ip.contains(':');
            if fam == "IPv4" && v6 {
                errs.push(FieldError::invalid_str(
                    &ips_path.index(i),
                    ip,
                    format!("expected an IPv4 value as indicated by `ipFamilies[{i}]`"),
                ));
            }
            if fam == "IPv6" && !v6 {
                errs.push(FieldError::invalid_str(
                    &ips_path.index(i),
                    ip,
                    format!("expected an IPv6 value as indicated by `ipFamilies[{i}]`"),
                ));
            }
        }
    }
}

/// `ValidateService` minus object metadata.
pub(crate) fn validate_service(svc: &api::Service) -> Errs {
    let mut errs = Vec::new();
    super::kube_finalizers(&mut errs, &svc.metadata);
    let spec = svc.spec.clone().unwrap_or_default();
    let sp = FieldPath::root("spec");
    let ann = util::map_or_empty(&svc.metadata.annotations);
    let (hints, mode) = (
        ann.get("service.kubernetes.io/topology-aware-hints"),
        ann.get("service.kubernetes.io/topology-mode"),
    );
    if let (Some(h), Some(m)) = (hints, mode)
        && h != m
    {
        errs.push(FieldError::invalid_str(
                &FieldPath::root("metadata").child("annotations").key("service.kubernetes.io/topology-mode"),
                m,
                "must match annotations[service.kubernetes.io/topology-aware-hints] when both are specified",
            ));
    }
    let ports = spec.ports.as_deref().unwrap_or(&[]);
    let headless = is_headless(&spec);
    let t = ty(&spec);
    if ports.is_empty() && !headless && t != "ExternalName" {
        errs.push(FieldError::required(&sp.child("ports"), ""));
    }
    match t {
        "LoadBalancer" | "NodePort" if headless => errs.push(FieldError::invalid_str(
            &sp.child("clusterIPs").index(0),
            "None",
            format!("may not be set to 'None' for {t} services"),
        )),
        "ExternalName" => {
            for (field, set) in [
                ("clusterIPs", !cluster_ips(&spec).is_empty()),
                (
                    "ipFamilies",
                    spec.ip_families.as_ref().is_some_and(|f| !f.is_empty()),
                ),
                ("ipFamilyPolicy", spec.ip_family_policy.is_some()),
            ] {
                if set {
                    errs.push(FieldError::forbidden(
                        &sp.child(field),
                        "may not be set for ExternalName services",
                    ));
                }
            }
            let cname = util::s(&spec.external_name);
            let cname = cname.strip_suffix('.').unwrap_or(cname);
            if cname.is_empty() {
                errs.push(FieldError::required(&sp.child("externalName"), ""));
            } else {
                util::dns_subdomain(&mut errs, cname, &sp.child("externalName"));
            }
        }
        _ => {}
    }
    let mut names = BTreeSet::new();
    for (i, p) in ports.iter().enumerate() {
        service_port(
            &mut errs,
            p,
            ports.len() > 1,
            &mut names,
            &sp.child("ports").index(i),
        );
    }
    util::labels(&mut errs, &spec.selector, &sp.child("selector"));
    let affinity = util::s(&spec.session_affinity);
    match affinity {
        "" => errs.push(FieldError::required(&sp.child("sessionAffinity"), "")),
        "ClientIP" => client_ip_config(
            &mut errs,
            spec.session_affinity_config.as_ref(),
            &sp.child("sessionAffinityConfig"),
        ),
        "None" => {
            if spec.session_affinity_config.is_some() {
                errs.push(FieldError::forbidden(
                    &sp.child("sessionAffinityConfig"),
                    "must not be set when session affinity is None",
                ));
            }
        }
        other => errs.push(FieldError::not_supported(
            &sp.child("sessionAffinity"),
            other,
            &["ClientIP", "None"],
        )),
    }
    cluster_ip_fields(&mut errs, &spec);
    for (i, ip) in spec.external_ips.iter().flatten().enumerate() {
        let p = sp.child("externalIPs").index(i);
        if util::valid_ip(&mut errs, ip, &p) {
            non_special_ip(&mut errs, ip, &p);
        }
    }
    match t {
        "" => errs.push(FieldError::required(&sp.child("type"), "")),
        "ClusterIP" | "NodePort" | "LoadBalancer" | "ExternalName" => {}
        other => errs.push(FieldError::not_supported(
            &sp.child("type"),
            other,
            &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"],
        )),
    }
    if t == "ClusterIP" {
        for (i, p) in ports.iter().enumerate() {
            if p.node_port.unwrap_or(0) != 0 {
                errs.push(FieldError::forbidden(
                    &sp.child("ports").index(i).child("nodePort"),
                    "may not be used when `type` is 'ClusterIP'",
                ));
            }
        }
    }
    let mut node_ports = BTreeSet::new();
    for (i, p) in ports.iter().enumerate() {
        let np = p.node_port.unwrap_or(0);
        if np != 0 && !node_ports.insert((util::s(&p.protocol).to_string(), np)) {
            errs.push(FieldError::duplicate(
                &sp.child("ports").index(i).child("nodePort"),
                np,
            ));
        }
    }
    let mut keys = BTreeSet::new();
    for (i, p) in ports.iter().enumerate() {
        if !keys.insert((util::s(&p.protocol).to_string(), p.port)) {
            errs.push(FieldError::duplicate(
                &sp.child("ports").index(i),
                port_key_json(util::s(&p.protocol), p.port, 0),
            ));
        }
    }
    load_balancer_fields(&mut errs, svc, &spec);
    traffic_policies(&mut errs, &spec);
    errs
}

fn client_ip_config(errs: &mut Errs, cfg: Option<&api::SessionAffinityConfig>, path: &FieldPath) {
    let msg = "when session affinity type is ClientIP";
    let Some(cfg) = cfg else {
        errs.push(FieldError::required(path, msg));
        return;
    };
    let Some(cip) = &cfg.client_ip else {
        errs.push(FieldError::required(&path.child("clientIP"), msg));
        return;
    };
    let tp = path.child("clientIP").child("timeoutSeconds");
    match cip.timeout_seconds {
        None => errs.push(FieldError::required(&tp, msg)),
        Some(t) if t <= 0 || t > 86400 => errs.push(FieldError::invalid(
            &tp,
            t,
            "must be greater than 0 and less than 86400",
        )),
        Some(_) => {}
    }
}

/// `ValidateNonSpecialIP`.
pub(crate) fn non_special_ip(errs: &mut Errs, ip: &str, path: &FieldPath) {
    let Some(addr) = util::parse_ip_sloppy(ip) else {
        errs.push(FieldError::invalid_str(
            path,
            ip,
            "must be a valid IP address",
        ));
        return;
    };
    if addr.is_unspecified() {
        errs.push(FieldError::invalid_str(
            path,
            ip,
            format!("may not be unspecified ({ip})"),
        ));
    }
    if addr.is_loopback() {
        errs.push(FieldError::invalid_str(
            path,
            ip,
            "may not be in the loopback range (127.0.0.0/8, ::1/128)",
        ));
    }
    let link_local = match addr {
        std::net::IpAddr::V4(a) => a.is_link_local(),
        std::net::IpAddr::V6(a) => (a.segments()[0] & 0xffc0) == 0xfe80,
    };
    if link_local {
        errs.push(FieldError::invalid_str(
            path,
            ip,
            "may not be in the link-local range (169.254.0.0/16, fe80::/10)",
        ));
    }
    let ll_multicast = match addr {
        std::net::IpAddr::V4(a) => a.octets()[0] == 224 && a.octets()[1] == 0 && a.octets()[2] == 0,
        std::net::IpAddr::V6(a) => (a.segments()[0] & 0xff0f) == 0xff02,
    };
    if ll_multicast {
        errs.push(FieldError::invalid_str(
            path,
            ip,
            "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)",
        ));
    }
}

fn load_balancer_fields(errs: &mut Errs, svc: &api::Service, spec: &api::ServiceSpec) {
    let sp = FieldPath::root("spec");
    let lb = ty(spec) == "LoadBalancer";
    let lb_only = "may only be used when `type` is 'LoadBalancer'";
    let ranges = spec.load_balancer_source_ranges.as_deref().unwrap_or(&[]);
    let ann_key = "service.beta.kubernetes.io/load-balancer-source-ranges";
    if !ranges.is_empty() {
        let fp = sp.child("LoadBalancerSourceRanges");
        if !lb {
            errs.push(FieldError::forbidden(&fp, lb_only));
        }
        for (i, r) in ranges.iter().enumerate() {
            util::valid_cidr(errs, r.trim(), &fp.index(i));
        }
    } else if let Some(v) = util::map_or_empty(&svc.metadata.annotations).get(ann_key) {
        let fp = FieldPath::root("metadata")
            .child("annotations")
            .key(ann_key);
        if !lb {
            errs.push(FieldError::forbidden(&fp, lb_only));
        }
        let v = v.trim();
        if !v.is_empty() {
            for c in v.split(',') {
                util::valid_cidr(errs, c.trim(), &fp);
            }
        }
    }
    if spec.allocate_load_balancer_node_ports.is_some() && !lb {
        errs.push(FieldError::forbidden(
            &sp.child("allocateLoadBalancerNodePorts"),
            lb_only,
        ));
    }
    if lb && spec.allocate_load_balancer_node_ports.is_none() {
        errs.push(FieldError::required(
            &FieldPath::root("allocateLoadBalancerNodePorts"),
            "",
        ));
    }
    if let Some(c) = &spec.load_balancer_class {
        if lb {
            util::qualified_name(errs, c, &sp.child("loadBalancerClass"));
        } else {
            errs.push(FieldError::forbidden(
                &sp.child("loadBalancerClass"),
                lb_only,
            ));
        }
    }
}

fn traffic_policies(errs: &mut Errs, spec: &api::ServiceSpec) {
    let sp = FieldPath::root("spec");
    let etp = util::s(&spec.external_traffic_policy);
    if !externally_accessible(spec) {
        if !etp.is_empty() {
            errs.push(FieldError::invalid_str(
                &sp.child("externalTrafficPolicy"),
                etp,
                "may only be set for externally-accessible services",
            ));
        }
    } else if etp.is_empty() {
        errs.push(FieldError::required(&sp.child("externalTrafficPolicy"), ""));
    } else if etp != "Cluster" && etp != "Local" {
        errs.push(FieldError::not_supported(
            &sp.child("externalTrafficPolicy"),
            etp,
            &["Cluster", "Local"],
        ));
    }
    let hc = spec.health_check_node_port.unwrap_or(0);
    if !needs_health_check(spec) {
        if hc != 0 {
            errs.push(FieldError::invalid(
                &sp.child("healthCheckNodePort"),
                hc,
                "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
            ));
        }
    } else if hc == 0 {
        errs.push(FieldError::required(&sp.child("healthCheckNodePort"), ""));
    } else {
        util::port_num(errs, i64::from(hc), &sp.child("healthCheckNodePort"));
    }
    match &spec.internal_traffic_policy {
        None => {
            if matches!(ty(spec), "NodePort" | "LoadBalancer" | "ClusterIP") {
                errs.push(FieldError::required(&sp.child("internalTrafficPolicy"), ""));
            }
        }
        Some(p) if p != "Cluster" && p != "Local" => {
            errs.push(FieldError::not_supported(
                &sp.child("internalTrafficPolicy"),
                p,
                &["Cluster", "Local"],
            ));
        }
        Some(_) => {}
    }
    if let Some(td) = &spec.traffic_distribution {
        let valid = ["PreferClose", "PreferSameZone", "PreferSameNode"];
        if !valid.contains(&td.as_str()) {
            errs.push(FieldError::not_supported(
                &sp.child("trafficDistribution"),
                td,
                &valid,
            ));
        }
    }
}

/// `ValidateServiceUpdate` minus object metadata.
pub(crate) fn validate_service_update(new: &api::Service, old: &api::Service) -> Errs {
    let mut errs = Vec::new();
    let (ns, os) = (
        new.spec.clone().unwrap_or_default(),
        old.spec.clone().unwrap_or_default(),
    );
    let ips_path = FieldPath::root("spec").child("clusterIPs");
    let external = ty(&ns) == "ExternalName" || ty(&os) == "ExternalName";
    let (nips, oips) = (cluster_ips(&ns), cluster_ips(&os));
    let both_headless = is_headless(&ns) && is_headless(&os);
    if !external && !both_headless {
        let json = util::json(nips);
        if nips.len() == oips.len() {
            for (i, ip) in oips.iter().enumerate() {
                if *ip != nips[i] {
                    errs.push(FieldError::invalid(
                        &ips_path.index(i),
                        &json,
                        "may not change once set",
                    ));
                }
            }
        } else if oips.len() > nips.len() {
            if nips.is_empty() {
                errs.push(FieldError::invalid(
                    &ips_path.index(0),
                    &json,
                    "primary clusterIP can not be unset",
                ));
            } else if nips[0] != oips[0] {
                errs.push(FieldError::invalid(
                    &ips_path.index(0),
                    &json,
                    "may not change once set",
                ));
            }
            if nips.len() == 1 && ns.ip_family_policy.as_deref() != Some("SingleStack") {
                errs.push(FieldError::invalid(
                    &FieldPath::root("spec").child("ipFamilyPolicy"),
                    util::json_opt(ns.ip_family_policy.as_ref()),
                    "must be set to 'SingleStack' when releasing the secondary clusterIP",
                ));
            }
        } else if !oips.is_empty() && nips[0] != oips[0] {
            errs.push(FieldError::invalid(
                &ips_path.index(0),
                &json,
                "may not change once set",
            ));
        }
    }
    if !external && is_headless(&ns) == is_headless(&os) && !is_headless(&ns) {
        let (nf, of) = (
            ns.ip_families.clone().unwrap_or_default(),
            os.ip_families.clone().unwrap_or_default(),
        );
        let fam_path = FieldPath::root("spec").child("ipFamilies").index(0);
        if nf.len() == of.len() && nf != of {
            errs.push(FieldError::invalid(
                &fam_path,
                util::json(&nf),
                "may not change once set",
            ));
        } else if nf.len() < of.len() {
            if nf.first().is_some_and(|f| *f != of[0]) {
                errs.push(FieldError::invalid(
                    &fam_path,
                    util::json(nips),
                    "may not change once set",
                ));
            }
            if nf.len() == 1 && ns.ip_family_policy.as_deref() != Some("SingleStack") {
                errs.push(FieldError::invalid(
                    &FieldPath::root("spec").child("ipFamilyPolicy"),
                    util::json_opt(ns.ip_family_policy.as_ref()),
                    "must be set to 'SingleStack' when releasing the secondary ipFamily",
                ));
            }
        } else if !of.is_empty() && !nf.is_empty() && nf[0] != of[0] {
            errs.push(FieldError::invalid(
                &fam_path,
                util::json(nips),
                "may not change once set",
            ));
        }
    }
    if ty(&ns) == "LoadBalancer"
        && ty(&os) == "LoadBalancer"
        && ns.load_balancer_class != os.load_balancer_class
    {
        errs.push(FieldError::invalid(
            &FieldPath::root("spec").child("loadBalancerClass"),
            util::json_opt(ns.load_balancer_class.as_ref()),
            "may not change once set",
        ));
    }
    if needs_health_check(&os)
        && needs_health_check(&ns)
        && ns.health_check_node_port != os.health_check_node_port
    {
        errs.push(FieldError::forbidden(
            &FieldPath::root("spec").child("healthCheckNodePort"),
            util::IMMUTABLE_MSG,
        ));
    }
    errs.extend(validate_service(new));
    errs
}
