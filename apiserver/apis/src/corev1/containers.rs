//! Container validation: names, images, ports, env, mounts, probes, lifecycle, security
//! context (mirrors the container parts of pkg/apis/core/validation/validation.go).

use super::probes;
use super::resources;
use crate::util::{self, Errs};
use apiserver_apimachinery::field::show_str;
use apiserver_apimachinery::{FieldError, FieldPath};
use k8s_openapi::api::core::v1 as api;
use std::collections::{BTreeMap, BTreeSet};

/// What container validation needs to know about the enclosing pod spec.
pub(crate) struct PodCtx<'a> {
    pub volumes: BTreeMap<&'a str, &'a api::Volume>,
    pub claim_names: BTreeSet<String>,
    pub grace: Option<i64>,
    pub restart_policy: &'a str,
    pub host_users: bool,
}

const PROTOCOLS: [&str; 3] = ["SCTP", "TCP", "UDP"];

pub(crate) fn protocol(errs: &mut Errs, p: &Option<String>, path: &FieldPath) {
    match p.as_deref().unwrap_or("") {
        "" => errs.push(FieldError::required(path, "")),
        "TCP" | "UDP" | "SCTP" => {}
        other => errs.push(FieldError::not_supported(path, other, &PROTOCOLS)),
    }
}

fn ports(errs: &mut Errs, ports: &[api::ContainerPort], path: &FieldPath) {
    let mut names = BTreeSet::new();
    for (i, port) in ports.iter().enumerate() {
        let p = path.index(i);
        if let Some(name) = port.name.as_deref().filter(|n| !n.is_empty()) {
            let msgs = util::port_name_msgs(name);
            if !msgs.is_empty() {
                for m in msgs {
                    errs.push(FieldError::invalid_str(&p.child("name"), name, m));
                }
            } else if !names.insert(name) {
                errs.push(util::duplicate_str(&p.child("name"), name));
            }
        }
        if port.container_port == 0 {
            errs.push(FieldError::required(&p.child("containerPort"), ""));
        } else {
            util::port_num(
                errs,
                i64::from(port.container_port),
                &p.child("containerPort"),
            );
        }
        if let Some(hp) = port.host_port.filter(|hp| *hp != 0) {
            util::port_num(errs, i64::from(hp), &p.child("hostPort"));
        }
        protocol(errs, &port.protocol, &p.child("protocol"));
    }
}

/// `IsRelaxedEnvVarName` (RelaxedEnvironmentVariableValidation is GA).
fn env_name_msgs(name: &str) -> Vec<String> {
    let mut out = Vec::new();
    if name.is_empty() {
        out.push("environment variable name must be non-empty".to_string());
    }
    if name
        .chars()
        .any(|c| !c.is_ascii() || c.is_ascii_control() || c == '=')
    {
        out.push("a valid environment variable name must consist only of printable ASCII characters other than '='".to_string());
    }
    out
}

const ENV_FIELD_PATHS: [&str; 9] = [
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
];

pub(crate) const VOLUME_FIELD_PATHS: [&str; 5] = [
    "metadata.annotations",
    "metadata.labels",
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
];

const RESOURCE_FIELD_PATHS: [&str; 6] = [
    "limits.cpu",
    "limits.ephemeral-storage",
    "limits.memory",
    "requests.cpu",
    "requests.ephemeral-storage",
    "requests.memory",
];

/// `validateObjectFieldSelector`.
pub(crate) fn field_selector(
    errs: &mut Errs,
    fs: &api::ObjectFieldSelector,
    allowed: &[&str],
    path: &FieldPath,
) {
    if fs.api_version.as_deref().unwrap_or("").is_empty() {
        errs.push(FieldError::required(&path.child("apiVersion"), ""));
        return;
    }
    if fs.field_path.is_empty() {
        errs.push(FieldError::required(&path.child("fieldPath"), ""));
        return;
    }
    let fp = fs.field_path.as_str();
    if let Some((base, rest)) = fp.split_once('[') {
        let sub = rest.strip_suffix(']').unwrap_or(rest).trim_matches('\'');
        match base {
            "metadata.annotations" => util::qualified_name(errs, &sub.to_lowercase(), path),
            "metadata.labels" => util::qualified_name(errs, sub, path),
            _ => errs.push(FieldError::invalid_str(
                path,
                base,
                "does not support subscript",
            )),
        }
    } else if !allowed.contains(&fp) {
        errs.push(FieldError::not_supported(
            &path.child("fieldPath"),
            fp,
            allowed,
        ));
    }
}

/// `validateContainerResourceFieldSelector`.
pub(crate) fn resource_field_selector(
    errs: &mut Errs,
    fs: &api::ResourceFieldSelector,
    volume: bool,
    path: &FieldPath,
) {
    if volume && fs.container_name.as_deref().unwrap_or("").is_empty() {
        errs.push(FieldError::required(&path.child("containerName"), ""));
    } else if fs.resource.is_empty() {
        errs.push(FieldError::required(&path.child("resource"), ""));
    } else if !RESOURCE_FIELD_PATHS.contains(&fs.resource.as_str())
        && !fs.resource.starts_with("requests.hugepages-")
        && !fs.resource.starts_with("limits.hugepages-")
    {
        errs.push(FieldError::not_supported(
            &path.child("resource"),
            &fs.resource,
            &RESOURCE_FIELD_PATHS,
        ));
    }
}

fn key_selector(errs: &mut Errs, name: &str, key: &str, path: &FieldPath) {
    util::dns_subdomain(errs, name, &path.child("name"));
    if key.is_empty() {
        errs.push(FieldError::required(&path.child("key"), ""));
    } else {
        for m in super::objects::config_key_msgs(key) {
            errs.push(FieldError::invalid_str(&path.child("key"), key, m));
        }
    }
}

fn env(errs: &mut Errs, vars: &[api::EnvVar], path: &FieldPath) {
    for (i, ev) in vars.iter().enumerate() {
        let p = path.index(i);
        if ev.name.is_empty() {
            errs.push(FieldError::required(&p.child("name"), ""));
        } else {
            for m in env_name_msgs(&ev.name) {
                errs.push(FieldError::invalid_str(&p.child("name"), &ev.name, m));
            }
        }
        let Some(vf) = &ev.value_from else { continue };
        let vp = p.child("valueFrom");
        let mut n = 0;
        if let Some(f) = &vf.field_ref {
            n += 1;
            field_selector(errs, f, &ENV_FIELD_PATHS, &vp.child("fieldRef"));
        }
        if let Some(r) = &vf.resource_field_ref {
            n += 1;
            resource_field_selector(errs, r, false, &vp.child("resourceFieldRef"));
        }
        if let Some(c) = &vf.config_map_key_ref {
            n += 1;
            key_selector(errs, &c.name, &c.key, &vp.child("configMapKeyRef"));
        }
        if let Some(s) = &vf.secret_key_ref {
            n += 1;
            key_selector(errs, &s.name, &s.key, &vp.child("secretKeyRef"));
        }
        if let Some(f) = &vf.file_key_ref {
            n += 1;
            let fp = vp.child("fileKeyRef");
            if f.volume_name.is_empty() {
                errs.push(FieldError::required(&fp.child("volumeName"), ""));
            }
            if f.path.is_empty() {
                errs.push(FieldError::required(&fp.child("path"), ""));
            }
            if f.key.is_empty() {
                errs.push(FieldError::required(&fp.child("key"), ""));
            }
        }
        if n == 0 {
            errs.push(FieldError::invalid_str(
                &vp,
                "",
                "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
            ));
        } else if !ev.value.as_deref().unwrap_or("").is_empty() {
            errs.push(FieldError::invalid_str(
                &vp,
                "",
                "may not be specified when `value` is not empty",
            ));
        } else if n > 1 {
            errs.push(FieldError::invalid_str(
                &vp,
                "",
                "may not have more than one field specified at a time",
            ));
        }
    }
}

fn env_from(errs: &mut Errs, sources: &[api::EnvFromSource], path: &FieldPath) {
    for (i, ev) in sources.iter().enumerate() {
        let p = path.index(i);
        if let Some(prefix) = ev.prefix.as_deref().filter(|s| !s.is_empty()) {
            for m in env_name_msgs(prefix) {
                errs.push(FieldError::invalid_str(&p.child("prefix"), prefix, m));
            }
        }
        let mut n = 0;
        for (field, name) in [
            ("configMapRef", ev.config_map_ref.as_ref().map(|r| &r.name)),
            ("secretRef", ev.secret_ref.as_ref().map(|r| &r.name)),
        ] {
            let Some(name) = name else { continue };
            n += 1;
            let np = p.child(field).child("name");
            if name.is_empty() {
                errs.push(FieldError::required(&np, ""));
            } else {
                // Names are validated as prefixes here upstream (a trailing '-' is allowed).
                let masked = match name.strip_suffix('-') {
                    Some(head) if !head.is_empty() => format!("{head}a"),
                    _ => name.clone(),
                };
                for m in apiserver_apimachinery::names::is_dns1123_subdomain(&masked) {
                    errs.push(FieldError::invalid_str(&np, name, m));
                }
            }
        }
        if n == 0 {
            errs.push(FieldError::invalid_str(
                path,
                "",
                "must specify one of: `configMapRef` or `secretRef`",
            ));
        } else if n > 1 {
            errs.push(FieldError::invalid_str(
                path,
                "",
                "may not have more than one field specified at a time",
            ));
        }
    }
}

fn volume_mounts(errs: &mut Errs, c: &api::Container, ctx: &PodCtx<'_>, cpath: &FieldPath) {
    let path = &cpath.child("volumeMounts");
    let devices: BTreeMap<&str, &str> = c
        .volume_devices
        .iter()
        .flatten()
        .map(|d| (d.name.as_str(), d.device_path.as_str()))
        .collect();
    let mut mount_points = BTreeSet::new();
    for (i, m) in c.volume_mounts.iter().flatten().enumerate() {
        let p = path.index(i);
        if m.name.is_empty() {
            errs.push(FieldError::required(&p.child("name"), ""));
        }
        if !ctx.volumes.contains_key(m.name.as_str()) {
            errs.push(util::not_found_str(&p.child("name"), &m.name));
        }
        if m.mount_path.is_empty() {
            errs.push(FieldError::required(&p.child("mountPath"), ""));
        }
        if !mount_points.insert(m.mount_path.as_str()) {
            errs.push(FieldError::invalid_str(
                &p.child("mountPath"),
                &m.mount_path,
                "must be unique",
            ));
        }
        if devices.contains_key(m.name.as_str()) {
            errs.push(FieldError::invalid_str(
                &p.child("name"),
                &m.name,
                "must not already exist in volumeDevices",
            ));
        }
        if devices.values().any(|d| *d == m.mount_path) {
            errs.push(FieldError::invalid_str(
                &p.child("mountPath"),
                &m.mount_path,
                "must not already exist as a path in volumeDevices",
            ));
        }
        let sub_path = util::s(&m.sub_path);
        let sub_expr = util::s(&m.sub_path_expr);
        if ctx
            .volumes
            .get(m.name.as_str())
            .is_some_and(|v| v.image.is_some())
        {
            if !sub_path.is_empty() {
                errs.push(FieldError::invalid_str(
                    &p.child("subPath"),
                    sub_path,
                    "not allowed in image volume sources",
                ));
            }
            if !sub_expr.is_empty() {
                errs.push(FieldError::invalid_str(
                    &p.child("subPathExpr"),
                    sub_expr,
                    "not allowed in image volume sources",
                ));
            }
        }
        if !sub_path.is_empty() {
            util::local_descending_path(errs, sub_path, &path.child("subPath"));
        }
        if !sub_expr.is_empty() {
            if !sub_path.is_empty() {
                errs.push(FieldError::invalid_str(
                    &p.child("subPathExpr"),
                    sub_expr,
                    "subPathExpr and subPath are mutually exclusive",
                ));
            }
            util::local_descending_path(errs, sub_expr, &path.child("subPathExpr"));
        }
        if let Some(prop) = &m.mount_propagation {
            let mp = path.child("mountPropagation");
            let valid = ["Bidirectional", "HostToContainer", "None"];
            if !valid.contains(&prop.as_str()) {
                errs.push(FieldError::not_supported(&mp, prop, &valid));
            }
            let privileged = c.security_context.as_ref().and_then(|s| s.privileged) == Some(true);
            if prop == "Bidirectional" && !privileged {
                errs.push(FieldError::forbidden(
                    &mp,
                    "Bidirectional mount propagation is available only to privileged containers",
                ));
            }
        }
        if let Some(rro) = &m.recursive_read_only {
            let rp = path.child("recursiveReadOnly");
            match rro.as_str() {
                "Disabled" => {}
                "Enabled" | "IfPossible" => {
                    if m.read_only != Some(true) {
                        errs.push(FieldError::forbidden(
                            &rp,
                            "may only be specified when readOnly is true",
                        ));
                    }
                    if m.mount_propagation.as_deref().is_some_and(|p| p != "None") {
                        errs.push(FieldError::forbidden(
                            &rp,
                            "may only be specified when mountPropagation is None or not specified",
                        ));
                    }
                }
                other => errs.push(FieldError::not_supported(
                    &rp,
                    other,
                    &["Disabled", "Enabled", "IfPossible"],
                )),
            }
        }
    }
    let mounts: BTreeMap<&str, &str> = c
        .volume_mounts
        .iter()
        .flatten()
        .map(|m| (m.name.as_str(), m.mount_path.as_str()))
        .collect();
    let dpath = cpath.child("volumeDevices");
    let (mut dev_paths, mut dev_names) = (BTreeSet::new(), BTreeSet::new());
    for (i, d) in c.volume_devices.iter().flatten().enumerate() {
        let p = dpath.index(i);
        let vol = ctx.volumes.get(d.name.as_str());
        if d.name.is_empty() {
            errs.push(FieldError::required(&p.child("name"), ""));
        }
        if dev_names.contains(d.name.as_str()) {
            errs.push(FieldError::invalid_str(
                &p.child("name"),
                &d.name,
                "must be unique",
            ));
        }
        match vol {
            Some(v) if v.persistent_volume_claim.is_none() && v.ephemeral.is_none() => errs.push(FieldError::invalid_str(
                &p.child("name"),
                &d.name,
                "can only use volume source type of PersistentVolumeClaim or Ephemeral for block mode",
            )),
            Some(_) => {}
            None => errs.push(util::not_found_str(&p.child("name"), &d.name)),
        }
        if d.device_path.is_empty() {
            errs.push(FieldError::required(&p.child("devicePath"), ""));
        }
        if dev_paths.contains(d.device_path.as_str()) {
            errs.push(FieldError::invalid_str(
                &p.child("devicePath"),
                &d.device_path,
                "must be unique",
            ));
        }
        if d.device_path.split('/').any(|s| s == "..") {
            errs.push(FieldError::invalid_str(
                &p.child("devicePath"),
                &d.device_path,
                "can not contain backsteps ('..')",
            ));
        } else {
            dev_paths.insert(d.device_path.as_str());
        }
        if mounts.contains_key(d.name.as_str()) {
            errs.push(FieldError::invalid_str(
                &p.child("name"),
                &d.name,
                "must not already exist in volumeMounts",
            ));
        }
        if mounts.values().any(|m| *m == d.device_path) {
            errs.push(FieldError::invalid_str(
                &p.child("devicePath"),
                &d.device_path,
                "must not already exist as a path in volumeMounts",
            ));
        }
        if !d.name.is_empty() {
            dev_names.insert(d.name.as_str());
        }
    }
}

/// `validateContainerCommon`.
pub(crate) fn container_common(
    errs: &mut Errs,
    c: &api::Container,
    ctx: &PodCtx<'_>,
    path: &FieldPath,
) {
    if c.name.is_empty() {
        errs.push(FieldError::required(&path.child("name"), ""));
    } else {
        util::dns_label(errs, &c.name, &path.child("name"));
    }
    if c.image.as_deref().unwrap_or("").is_empty() {
        errs.push(FieldError::required(&path.child("image"), ""));
    }
    match c.termination_message_policy.as_deref().unwrap_or("") {
        "File" | "FallbackToLogsOnError" => {}
        "" => errs.push(FieldError::required(
            &path.child("terminationMessagePolicy"),
            "",
        )),
        other => errs.push(FieldError::not_supported(
            &path.child("terminationMessagePolicy"),
            other,
            &["File", "FallbackToLogsOnError"],
        )),
    }
    ports(
        errs,
        c.ports.as_deref().unwrap_or(&[]),
        &path.child("ports"),
    );
    env(errs, c.env.as_deref().unwrap_or(&[]), &path.child("env"));
    env_from(
        errs,
        c.env_from.as_deref().unwrap_or(&[]),
        &path.child("envFrom"),
    );
    volume_mounts(errs, c, ctx, path);
    let pp = path.child("imagePullPolicy");
    match c.image_pull_policy.as_deref().unwrap_or("") {
        "Always" | "IfNotPresent" | "Never" => {}
        "" => errs.push(FieldError::required(&pp, "")),
        other => errs.push(FieldError::not_supported(
            &pp,
            other,
            &["Always", "IfNotPresent", "Never"],
        )),
    }
    if let Some(r) = &c.resources {
        resources::container_requirements(errs, r, &ctx.claim_names, &path.child("resources"));
    }
    resize_policy(
        errs,
        c.resize_policy.as_deref().unwrap_or(&[]),
        ctx.restart_policy,
        &path.child("resizePolicy"),
    );
    if let Some(sc) = &c.security_context {
        probes::security_context(errs, sc, ctx.host_users, &path.child("securityContext"));
    }
}

fn resize_policy(
    errs: &mut Errs,
    list: &[api::ContainerResizePolicy],
    restart: &str,
    path: &FieldPath,
) {
    let mut seen = BTreeSet::new();
    for (i, p) in list.iter().enumerate() {
        if !seen.insert(p.resource_name.as_str()) {
            errs.push(util::duplicate_str(&path.index(i), &p.resource_name));
        }
        match p.resource_name.as_str() {
            "cpu" | "memory" => {}
            "" => errs.push(FieldError::required(path, "")),
            other => errs.push(FieldError::not_supported(path, other, &["cpu", "memory"])),
        }
        match p.restart_policy.as_str() {
            "NotRequired" | "RestartContainer" => {}
            "" => errs.push(FieldError::required(path, "")),
            other => errs.push(FieldError::not_supported(
                path,
                other,
                &["NotRequired", "RestartContainer"],
            )),
        }
        if restart == "Never" && p.restart_policy != "NotRequired" {
            errs.push(FieldError::invalid_str(
                path,
                &p.restart_policy,
                "must be 'NotRequired' when `restartPolicy` is 'Never'",
            ));
        }
    }
}

/// `AccumulateUniqueHostPorts`.
pub(crate) fn host_port_conflicts(
    errs: &mut Errs,
    containers: &[&api::Container],
    path: &FieldPath,
    start: usize,
) {
    let mut seen = BTreeSet::new();
    for (ci, c) in containers.iter().enumerate() {
        for (pi, p) in c.ports.iter().flatten().enumerate() {
            let hp = p.host_port.unwrap_or(0);
            if hp == 0 {
                continue;
            }
            let key = format!("{}/{}/{hp}", util::s(&p.protocol), util::s(&p.host_ip));
            if !seen.insert(key.clone()) {
                let pp = path
                    .index(start + ci)
                    .child("ports")
                    .index(pi)
                    .child("hostPort");
                errs.push(FieldError::duplicate(&pp, show_str(&key)));
            }
        }
    }
}
