//! Pod spec and pod template validation (mirrors ValidatePodSpec, ValidatePodTemplateSpec and
//! their helpers in pkg/apis/core/validation/validation.go).

use super::containers::{self, PodCtx};
use super::defaults::ephemeral_as_container;
use super::probes;
use super::scheduling::{affinity, dns_config, pod_security_context, tolerations, topology_spread};
use super::{resources, volumes};
use crate::util::{self, Errs};
use apiserver_apimachinery::{FieldError, FieldPath};
use k8s_openapi::api::core::v1 as api;
use std::collections::BTreeSet;

/// Validation options that differ between pods and pod templates.
pub(crate) struct SpecOpts<'a> {
    /// The owning pod's name, for ephemeral volume claim names.
    pub pod_name: Option<&'a str>,
    pub is_pod: bool,
}

/// `ValidatePodSpec`.
pub(crate) fn pod_spec(
    errs: &mut Errs,
    spec: &api::PodSpec,
    opts: &SpecOpts<'_>,
    path: &FieldPath,
) {
    if spec.termination_grace_period_seconds.is_none() {
        errs.push(FieldError::required(
            &path.child("terminationGracePeriodSeconds"),
            "",
        ));
    }
    let host_users = spec.host_users != Some(false);
    let vols = volumes::volumes(
        errs,
        spec.volumes.as_deref().unwrap_or(&[]),
        opts.pod_name,
        &path.child("volumes"),
    );
    let mut claim_names = BTreeSet::new();
    for (i, c) in spec.resource_claims.iter().flatten().enumerate() {
        let p = path.child("resourceClaims").index(i);
        if c.name.is_empty() {
            errs.push(FieldError::required(&p.child("name"), ""));
        } else if !claim_names.insert(c.name.clone()) {
            errs.push(util::duplicate_str(&p.child("name"), &c.name));
        } else {
            util::dns_label(errs, &c.name, &p.child("name"));
        }
        match (&c.resource_claim_name, &c.resource_claim_template_name) {
            (Some(_), Some(_)) => errs.push(FieldError::invalid(&p, util::json(c), "at most one of `resourceClaimName` or `resourceClaimTemplateName` may be specified")),
            (None, None) => errs.push(FieldError::invalid(&p, util::json(c), "must specify one of: `resourceClaimName`, `resourceClaimTemplateName`")),
            _ => {}
        }
    }
    let restart = util::s(&spec.restart_policy);
    let ctx = PodCtx {
        volumes: vols,
        claim_names,
        grace: spec.termination_grace_period_seconds,
        restart_policy: restart,
        host_users,
    };
    let cpath = path.child("containers");
    if spec.containers.is_empty() {
        errs.push(FieldError::required(&cpath, ""));
    } else {
        let mut names = BTreeSet::new();
        for (i, c) in spec.containers.iter().enumerate() {
            let p = cpath.index(i);
            containers::container_common(errs, c, &ctx, &p);
            if !names.insert(c.name.as_str()) {
                errs.push(util::duplicate_str(&p.child("name"), &c.name));
            }
            probes::probes_and_lifecycle(errs, c, ctx.grace, &p);
            if c.restart_policy.is_some() {
                errs.push(FieldError::forbidden(
                    &p.child("restartPolicy"),
                    "may not be set for non-init containers",
                ));
            }
        }
        let all: Vec<&api::Container> = spec.containers.iter().collect();
        containers::host_port_conflicts(errs, &all, &cpath, 0);
    }
    let ipath = path.child("initContainers");
    let mut names: BTreeSet<&str> = spec.containers.iter().map(|c| c.name.as_str()).collect();
    for (i, c) in spec.init_containers.iter().flatten().enumerate() {
        let p = ipath.index(i);
        containers::container_common(errs, c, &ctx, &p);
        let restart_always = match c.restart_policy.as_deref() {
            None => false,
            Some("Always") => true,
            Some(other) => {
                errs.push(FieldError::not_supported(
                    &p.child("restartPolicy"),
                    other,
                    &["Always"],
                ));
                false
            }
        };
        if names.contains(c.name.as_str()) {
            errs.push(util::duplicate_str(&p.child("name"), &c.name));
        } else if !c.name.is_empty() {
            names.insert(c.name.as_str());
        }
        containers::host_port_conflicts(errs, &[c], &ipath, 0);
        if restart_always {
            probes::probes_and_lifecycle(errs, c, ctx.grace, &p);
        } else {
            for (field, set) in [
                ("lifecycle", c.lifecycle.is_some()),
                ("livenessProbe", c.liveness_probe.is_some()),
                ("readinessProbe", c.readiness_probe.is_some()),
                ("startupProbe", c.startup_probe.is_some()),
            ] {
                if set {
                    errs.push(FieldError::forbidden(
                        &p.child(field),
                        "may not be set for init containers without restartPolicy=Always",
                    ));
                }
            }
        }
    }
    ephemeral_containers(errs, spec, &ctx, &path.child("ephemeralContainers"));
    if let Some(res) = &spec.resources
        && res.claims.is_some()
    {
        errs.push(FieldError::forbidden(
            &path.child("resources").child("claims"),
            "claims cannot be set for Resources at pod-level",
        ));
    }
    if spec.host_network == Some(true) {
        for (i, c) in spec.containers.iter().enumerate() {
            for (j, port) in c.ports.iter().flatten().enumerate() {
                let hp = port.host_port.unwrap_or(0);
                if (opts.is_pod || hp != 0) && hp != port.container_port {
                    errs.push(FieldError::invalid(
                        &cpath.index(i).child("ports").index(j).child("hostPort"),
                        hp,
                        "must match `containerPort` when `hostNetwork` is true",
                    ));
                }
            }
        }
    }
    let rp = path.child("restartPolicy");
    match restart {
        "Always" | "OnFailure" | "Never" => {}
        "" => errs.push(FieldError::required(&rp, "")),
        other => errs.push(FieldError::not_supported(
            &rp,
            other,
            &["Always", "OnFailure", "Never"],
        )),
    }
    let dns = util::s(&spec.dns_policy);
    let dp = path.child("dnsPolicy");
    match dns {
        "ClusterFirstWithHostNet" | "ClusterFirst" | "Default" | "None" => {}
        "" => errs.push(FieldError::required(&dp, "")),
        other => errs.push(FieldError::not_supported(
            &dp,
            other,
            &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"],
        )),
    }
    util::labels(errs, &spec.node_selector, &path.child("nodeSelector"));
    if let Some(sc) = &spec.security_context {
        pod_security_context(errs, sc, &path.child("securityContext"));
    }
    if spec.share_process_namespace == Some(true) && spec.host_pid == Some(true) {
        errs.push(FieldError::invalid(
            &path.child("securityContext").child("shareProcessNamespace"),
            true,
            "ShareProcessNamespace and HostPID cannot both be enabled",
        ));
    }
    if let Some(a) = &spec.affinity {
        affinity(errs, a, &path.child("affinity"));
    }
    dns_config(
        errs,
        spec.dns_config.as_ref(),
        dns,
        &path.child("dnsConfig"),
    );
    for (i, g) in spec.readiness_gates.iter().flatten().enumerate() {
        util::qualified_name(
            errs,
            &g.condition_type,
            &path.child("readinessGates").index(i).child("conditionType"),
        );
    }
    let mut gates = BTreeSet::new();
    for (i, g) in spec.scheduling_gates.iter().flatten().enumerate() {
        let gp = path.child("schedulingGates").index(i);
        util::qualified_name(errs, &g.name, &gp);
        if !gates.insert(g.name.as_str()) {
            errs.push(util::duplicate_str(&gp, &g.name));
        }
    }
    topology_spread(
        errs,
        spec.topology_spread_constraints.as_deref().unwrap_or(&[]),
        &path.child("topologySpreadConstraints"),
    );
    if spec.host_users == Some(false) {
        for (field, set) in [
            ("hostNetwork", spec.host_network),
            ("HostPID", spec.host_pid),
            ("HostIPC", spec.host_ipc),
        ] {
            if set == Some(true) {
                errs.push(FieldError::forbidden(
                    &path.child(field),
                    "when `pod.Spec.HostUsers` is false",
                ));
            }
        }
    }
    names_and_misc(errs, spec, path);
}

fn names_and_misc(errs: &mut Errs, spec: &api::PodSpec, path: &FieldPath) {
    if let Some(sa) = spec
        .service_account_name
        .as_deref()
        .filter(|s| !s.is_empty())
    {
        util::dns_subdomain(errs, sa, &path.child("serviceAccountName"));
    }
    if let Some(n) = spec.node_name.as_deref().filter(|s| !s.is_empty()) {
        util::dns_subdomain(errs, n, &path.child("nodeName"));
    }
    if let Some(v) = spec.active_deadline_seconds
        && !(1..=i64::from(i32::MAX)).contains(&v)
    {
        errs.push(FieldError::invalid(
            &path.child("activeDeadlineSeconds"),
            v,
            util::range_msg(1, i64::from(i32::MAX)),
        ));
    }
    if let Some(h) = spec.hostname.as_deref().filter(|s| !s.is_empty()) {
        util::dns_label(errs, h, &path.child("hostname"));
    }
    if let Some(s) = spec.subdomain.as_deref().filter(|s| !s.is_empty()) {
        util::dns_label(errs, s, &path.child("subdomain"));
    }
    tolerations(
        errs,
        spec.tolerations.as_deref().unwrap_or(&[]),
        &path.child("tolerations"),
    );
    for (i, a) in spec.host_aliases.iter().flatten().enumerate() {
        let ap = path.child("hostAliases").index(i);
        util::valid_ip(errs, &a.ip, &ap.child("ip"));
        for (j, h) in a.hostnames.iter().flatten().enumerate() {
            util::dns_subdomain(errs, h, &ap.child("hostnames").index(j));
        }
    }
    if let Some(p) = spec
        .priority_class_name
        .as_deref()
        .filter(|s| !s.is_empty())
    {
        util::dns_subdomain(errs, p, &path.child("priorityClassName"));
    }
    if let Some(r) = &spec.runtime_class_name {
        util::dns_subdomain(errs, r, &path.child("runtimeClassName"));
    }
    if let Some(p) = &spec.preemption_policy {
        let pp = path.child("preemptionPolicy");
        match p.as_str() {
            "PreemptLowerPriority" | "Never" => {}
            "" => errs.push(FieldError::required(&pp, "")),
            other => errs.push(FieldError::not_supported(
                &pp,
                other,
                &["PreemptLowerPriority", "Never"],
            )),
        }
    }
    if let Some(o) = &spec.overhead {
        let req = api::ResourceRequirements {
            limits: Some(o.clone()),
            ..Default::default()
        };
        resources::container_requirements(errs, &req, &BTreeSet::new(), &path.child("overhead"));
    }
    if let Some(os) = &spec.os {
        if os.name.is_empty() {
            errs.push(FieldError::required(
                &path.child("os").child("name"),
                "cannot be empty",
            ));
        } else if os.name != "linux" && os.name != "windows" {
            errs.push(FieldError::not_supported(
                &path.child("os"),
                &os.name,
                &["linux", "windows"],
            ));
        }
    }
}

fn ephemeral_containers(errs: &mut Errs, spec: &api::PodSpec, ctx: &PodCtx<'_>, path: &FieldPath) {
    let Some(ecs) = &spec.ephemeral_containers else {
        return;
    };
    let others: BTreeSet<&str> = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .map(|c| c.name.as_str())
        .collect();
    let mut all = others.clone();
    for (i, ec) in ecs.iter().enumerate() {
        let p = path.index(i);
        let c = ephemeral_as_container(ec);
        containers::container_common(errs, &c, ctx, &p);
        image_whitespace(errs, &c, &p);
        if !all.insert(ec.name.as_str()) {
            errs.push(util::duplicate_str(&p.child("name"), &ec.name));
        }
        if let Some(t) = ec
            .target_container_name
            .as_deref()
            .filter(|t| !t.is_empty())
            && !others.contains(t)
        {
            errs.push(util::not_found_str(&p.child("targetContainerName"), t));
        }
        for (field, set) in [
            ("ports", ec.ports.is_some()),
            (
                "resources",
                ec.resources
                    .as_ref()
                    .is_some_and(|r| *r != Default::default()),
            ),
            ("livenessProbe", ec.liveness_probe.is_some()),
            ("readinessProbe", ec.readiness_probe.is_some()),
            ("startupProbe", ec.startup_probe.is_some()),
            ("lifecycle", ec.lifecycle.is_some()),
        ] {
            if set {
                errs.push(FieldError::forbidden(
                    &p.child(field),
                    "cannot be set for an Ephemeral Container",
                ));
            }
        }
        for (j, vm) in ec.volume_mounts.iter().flatten().enumerate() {
            let vp = p.child("volumeMounts").index(j);
            if !util::s(&vm.sub_path).is_empty() {
                errs.push(FieldError::forbidden(
                    &vp.child("subPath"),
                    "cannot be set for an Ephemeral Container",
                ));
            }
            if !util::s(&vm.sub_path_expr).is_empty() {
                errs.push(FieldError::forbidden(
                    &vp.child("subPathExpr"),
                    "cannot be set for an Ephemeral Container",
                ));
            }
        }
    }
}

/// `validateContainerOnlyForPod`.
pub(crate) fn image_whitespace(errs: &mut Errs, c: &api::Container, path: &FieldPath) {
    let image = c.image.as_deref().unwrap_or("");
    if image.trim() != image {
        errs.push(FieldError::invalid_str(
            &path.child("image"),
            image,
            "must not have leading or trailing whitespace",
        ));
    }
}

/// `ValidatePodTemplateSpec`.
pub(crate) fn pod_template_spec(errs: &mut Errs, t: &api::PodTemplateSpec, path: &FieldPath) {
    if let Some(m) = &t.metadata {
        util::labels(errs, &m.labels, &path.child("labels"));
        util::annotations(errs, &m.annotations, &path.child("annotations"));
    }
    let default_spec = api::PodSpec::default();
    let spec = t.spec.as_ref().unwrap_or(&default_spec);
    let opts = SpecOpts {
        pod_name: None,
        is_pod: false,
    };
    pod_spec(errs, spec, &opts, &path.child("spec"));
    if spec
        .ephemeral_containers
        .as_ref()
        .is_some_and(|e| !e.is_empty())
    {
        errs.push(FieldError::forbidden(
            &path.child("spec").child("ephemeralContainers"),
            "ephemeral containers not allowed in pod template",
        ));
    }
}
