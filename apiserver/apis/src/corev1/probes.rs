//! Security contexts, probes, lifecycle handlers (mirrors ValidateSecurityContext, validateProbe,
//! validateHandler and validateLifecycle in pkg/apis/core/validation/validation.go).

use crate::util::{self, Errs};
use apiserver_apimachinery::{FieldError, FieldPath};
use k8s_openapi::api::core::v1 as api;

fn id_range(errs: &mut Errs, v: Option<i64>, path: &FieldPath) {
    if let Some(v) = v
        && !(0..=0xffff_ffff).contains(&v)
    {
        errs.push(FieldError::invalid(path, v, util::range_msg(0, 4294967295)));
    }
}

pub(crate) fn seccomp(errs: &mut Errs, sp: &Option<api::SeccompProfile>, path: &FieldPath) {
    let Some(sp) = sp else { return };
    let tp = path.child("type");
    match sp.type_.as_str() {
        "Localhost" | "RuntimeDefault" | "Unconfined" => {}
        "" => errs.push(FieldError::required(
            &tp,
            "type is required when seccompProfile is set",
        )),
        other => errs.push(FieldError::not_supported(
            &tp,
            other,
            &["Localhost", "RuntimeDefault", "Unconfined"],
        )),
    }
    let lp = path.child("localhostProfile");
    if sp.type_ == "Localhost" {
        match &sp.localhost_profile {
            None => errs.push(FieldError::required(
                &lp,
                "must be set when seccomp type is Localhost",
            )),
            Some(p) => util::local_descending_path(errs, p, &lp),
        }
    } else if sp.localhost_profile.is_some() {
        errs.push(FieldError::invalid(
            &lp,
            util::json(sp),
            "can only be set when seccomp type is Localhost",
        ));
    }
}

/// `ValidateSecurityContext`.
pub(crate) fn security_context(
    errs: &mut Errs,
    sc: &api::SecurityContext,
    host_users: bool,
    path: &FieldPath,
) {
    id_range(errs, sc.run_as_user, &path.child("runAsUser"));
    id_range(errs, sc.run_as_group, &path.child("runAsGroup"));
    if let Some(pm) = &sc.proc_mount {
        if pm != "Default" && pm != "Unmasked" {
            errs.push(FieldError::not_supported(
                &path.child("procMount"),
                pm,
                &["Default", "Unmasked"],
            ));
        }
        if host_users && pm == "Unmasked" {
            errs.push(FieldError::invalid_str(
                &path.child("procMount"),
                pm,
                "`hostUsers` must be false to use `Unmasked`",
            ));
        }
    }
    seccomp(errs, &sc.seccomp_profile, &path.child("seccompProfile"));
    if sc.allow_privilege_escalation == Some(false) {
        if sc.privileged == Some(true) {
            errs.push(FieldError::invalid(
                path,
                util::json(sc),
                "cannot set `allowPrivilegeEscalation` to false and `privileged` to true",
            ));
        }
        let adds_sys_admin = sc
            .capabilities
            .as_ref()
            .and_then(|c| c.add.as_ref())
            .is_some_and(|a| a.iter().any(|c| c == "CAP_SYS_ADMIN"));
        if adds_sys_admin {
            errs.push(FieldError::invalid(
                path,
                util::json(sc),
                "cannot set `allowPrivilegeEscalation` to false and `capabilities.Add` CAP_SYS_ADMIN",
            ));
        }
    }
}

pub(crate) fn pod_id_range(errs: &mut Errs, v: Option<i64>, path: &FieldPath) {
    id_range(errs, v, path);
}

fn exec(errs: &mut Errs, e: &api::ExecAction, path: &FieldPath) {
    if e.command.as_ref().is_none_or(Vec::is_empty) {
        errs.push(FieldError::required(&path.child("command"), ""));
    }
}

fn http_get(errs: &mut Errs, h: &api::HTTPGetAction, path: &FieldPath) {
    if h.path.as_deref().unwrap_or("").is_empty() {
        errs.push(FieldError::required(&path.child("path"), ""));
    }
    util::port_num_or_name(errs, &h.port, &path.child("port"));
    let scheme = h.scheme.as_deref().unwrap_or("");
    if scheme != "HTTP" && scheme != "HTTPS" {
        errs.push(FieldError::not_supported(
            &path.child("scheme"),
            scheme,
            &["HTTP", "HTTPS"],
        ));
    }
    for header in h.http_headers.iter().flatten() {
        let ok = !header.name.is_empty()
            && header
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !ok {
            errs.push(FieldError::invalid_str(
                &path.child("httpHeaders"),
                &header.name,
                "a valid HTTP header must consist of alphanumeric characters or '-' (e.g. 'X-Header-Name', regex used for validation is '[-A-Za-z0-9]+')",
            ));
        }
    }
}

/// The handler kinds a probe or lifecycle hook may set.
struct Handlers<'a> {
    exec: Option<&'a api::ExecAction>,
    http: Option<&'a api::HTTPGetAction>,
    tcp: Option<&'a api::TCPSocketAction>,
    grpc: Option<&'a api::GRPCAction>,
    sleep: Option<&'a api::SleepAction>,
}

/// `validateHandler` over the handler kinds that are set.
fn handler(errs: &mut Errs, h: Handlers<'_>, grace: Option<i64>, path: &FieldPath) {
    let Handlers {
        exec: exec_a,
        http,
        tcp,
        grpc,
        sleep,
    } = h;
    let mut n = 0;
    let mut one = |errs: &mut Errs, name: &str| -> bool {
        if n > 0 {
            errs.push(FieldError::forbidden(
                &path.child(name),
                "may not specify more than 1 handler type",
            ));
            false
        } else {
            n += 1;
            true
        }
    };
    if let Some(e) = exec_a
        && one(errs, "exec")
    {
        exec(errs, e, &path.child("exec"));
    }
    if let Some(h) = http
        && one(errs, "httpGet")
    {
        http_get(errs, h, &path.child("httpGet"));
    }
    if let Some(t) = tcp
        && one(errs, "tcpSocket")
    {
        util::port_num_or_name(errs, &t.port, &path.child("tcpSocket").child("port"));
    }
    if let Some(g) = grpc
        && one(errs, "grpc")
    {
        util::port_num(errs, i64::from(g.port), &path.child("grpc").child("port"));
    }
    if let Some(s) = sleep
        && one(errs, "sleep")
        && let Some(g) = grace
        && (s.seconds < 0 || s.seconds > g)
    {
        errs.push(FieldError::invalid(
            &path.child("sleep"),
            s.seconds,
            format!("must be non-negative and less than terminationGracePeriodSeconds ({g})"),
        ));
    }
    if n == 0 {
        errs.push(FieldError::required(path, "must specify a handler type"));
    }
}

pub(crate) fn lifecycle(errs: &mut Errs, l: &api::Lifecycle, grace: Option<i64>, path: &FieldPath) {
    for (name, h) in [("postStart", &l.post_start), ("preStop", &l.pre_stop)] {
        if let Some(h) = h {
            let hs = Handlers {
                exec: h.exec.as_ref(),
                http: h.http_get.as_ref(),
                tcp: h.tcp_socket.as_ref(),
                grpc: None,
                sleep: h.sleep.as_ref(),
            };
            handler(errs, hs, grace, &path.child(name));
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProbeKind {
    Liveness,
    Readiness,
    Startup,
}

pub(crate) fn probe(
    errs: &mut Errs,
    p: &Option<api::Probe>,
    kind: ProbeKind,
    grace: Option<i64>,
    path: &FieldPath,
) {
    let Some(p) = p else { return };
    let hs = Handlers {
        exec: p.exec.as_ref(),
        http: p.http_get.as_ref(),
        tcp: p.tcp_socket.as_ref(),
        grpc: p.grpc.as_ref(),
        sleep: None,
    };
    handler(errs, hs, grace, path);
    for (name, v) in [
        ("initialDelaySeconds", p.initial_delay_seconds),
        ("timeoutSeconds", p.timeout_seconds),
        ("periodSeconds", p.period_seconds),
        ("successThreshold", p.success_threshold),
        ("failureThreshold", p.failure_threshold),
    ] {
        util::nonneg(errs, i64::from(v.unwrap_or(0)), &path.child(name));
    }
    if let Some(t) = p.termination_grace_period_seconds
        && t <= 0
    {
        errs.push(FieldError::invalid(
            &path.child("terminationGracePeriodSeconds"),
            t,
            "must be greater than 0",
        ));
    }
    match kind {
        ProbeKind::Liveness | ProbeKind::Startup => {
            let st = p.success_threshold.unwrap_or(0);
            if st != 1 {
                errs.push(FieldError::invalid(
                    &path.child("successThreshold"),
                    st,
                    "must be 1",
                ));
            }
        }
        ProbeKind::Readiness => {
            if let Some(t) = p.termination_grace_period_seconds {
                errs.push(FieldError::invalid(
                    &path.child("terminationGracePeriodSeconds"),
                    t,
                    "must not be set for readinessProbes",
                ));
            }
        }
    }
}

pub(crate) fn probes_and_lifecycle(
    errs: &mut Errs,
    c: &api::Container,
    grace: Option<i64>,
    path: &FieldPath,
) {
    if let Some(l) = &c.lifecycle {
        lifecycle(errs, l, grace, &path.child("lifecycle"));
    }
    probe(
        errs,
        &c.liveness_probe,
        ProbeKind::Liveness,
        grace,
        &path.child("livenessProbe"),
    );
    probe(
        errs,
        &c.readiness_probe,
        ProbeKind::Readiness,
        grace,
        &path.child("readinessProbe"),
    );
    probe(
        errs,
        &c.startup_probe,
        ProbeKind::Startup,
        grace,
        &path.child("startupProbe"),
    );
}
