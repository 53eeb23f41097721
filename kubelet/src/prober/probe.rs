//! Runs one probe of a container with the handler its spec names (exec, httpGet, tcpSocket,
//! grpc), retrying errors, and words the resulting events (upstream
//! `pkg/kubelet/prober/prober.go` and `pkg/probe/util.go`).

use super::exec::{self, CommandRunner};
use super::results::ProbeResult;
use super::worker::{DEFAULT_TIMEOUT_SECONDS, setting};
use super::{ProbeType, grpc, http, tcp};
use k8s_openapi::api::core::v1::{Container, Pod, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::sync::Arc;
use std::time::Duration;

/// How many times a probe that errors (rather than fails) is run before giving up.
const MAX_PROBE_RETRIES: usize = 3;

/// The outcome of one probe run (upstream `probe.Result`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Success,
    /// Success, but worth an event (an HTTP redirect that was not followed).
    Warning,
    Failure,
    Unknown,
}

impl Verdict {
    fn as_str(self) -> &'static str {
        match self {
            Verdict::Success => "success",
            Verdict::Warning => "warning",
            Verdict::Failure => "failure",
            Verdict::Unknown => "unknown",
        }
    }
}

/// What a handler returns: a verdict, its output, and an error when the probe could not be
/// run at all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Outcome {
    pub(crate) verdict: Verdict,
    pub(crate) output: String,
    pub(crate) error: Option<String>,
}

impl Outcome {
    pub(crate) fn success(output: impl Into<String>) -> Outcome {
        Outcome {
            verdict: Verdict::Success,
            output: output.into(),
            error: None,
        }
    }
    pub(crate) fn warning(output: impl Into<String>) -> Outcome {
        Outcome {
            verdict: Verdict::Warning,
            output: output.into(),
            error: None,
        }
    }
    pub(crate) fn failure(output: impl Into<String>) -> Outcome {
        Outcome {
            verdict: Verdict::Failure,
            output: output.into(),
            error: None,
        }
    }
    pub(crate) fn error(verdict: Verdict, error: impl Into<String>) -> Outcome {
        Outcome {
            verdict,
            output: String::new(),
            error: Some(error.into()),
        }
    }
}

/// The container a probe is aimed at.
pub(crate) struct Target<'a> {
    pub(crate) pod: &'a Pod,
    pub(crate) container: &'a Container,
    pub(crate) pod_ip: &'a str,
    /// The runtime's container ID (no `containerd://` prefix).
    pub(crate) container_id: &'a str,
}

/// An event to record on the pod: (warning, reason, message).
pub(crate) type PodEvent = (bool, &'static str, String);

pub(crate) struct Prober {
    runner: Arc<dyn CommandRunner>,
    http: http::HttpProber,
}

impl Prober {
    pub(crate) fn new(runner: Arc<dyn CommandRunner>) -> Prober {
        Prober {
            runner,
            http: http::HttpProber::new(),
        }
    }

    /// Probes once (retrying errors); Err when the probe errored, whose result the worker
    /// throws away. Failures and warnings come with the events upstream records.
    pub(crate) async fn probe(
        &self,
        t: ProbeType,
        spec: &Probe,
        target: &Target<'_>,
    ) -> (Result<ProbeResult, ()>, Vec<PodEvent>) {
        let mut outcome = self.run(spec, target).await;
        for _ in 1..MAX_PROBE_RETRIES {
            if outcome.error.is_none() {
                break;
            }
            outcome = self.run(spec, target).await;
        }
        let name = t.name();
        if let Some(err) = outcome.error {
            let msg = format!(
                "{name} probe errored and resulted in {} state: {err}",
                outcome.verdict.as_str()
            );
            tracing::debug!(container = %target.container.name, "{msg}");
            return (Err(()), vec![(true, "Unhealthy", msg)]);
        }
        match outcome.verdict {
            Verdict::Success => (Ok(ProbeResult::Success), vec![]),
            Verdict::Warning => {
                let msg = format!("{name} probe warning: {}", outcome.output);
                (Ok(ProbeResult::Success), vec![(true, "ProbeWarning", msg)])
            }
            Verdict::Failure => {
                let msg = format!("{name} probe failed: {}", outcome.output);
                tracing::debug!(container = %target.container.name, "{msg}");
                (Ok(ProbeResult::Failure), vec![(true, "Unhealthy", msg)])
            }
            Verdict::Unknown => (Ok(ProbeResult::Failure), vec![]),
        }
    }

    /// One run of the probe's handler.
    async fn run(&self, spec: &Probe, t: &Target<'_>) -> Outcome {
        let timeout = Duration::from_secs(
            setting(spec.timeout_seconds, DEFAULT_TIMEOUT_SECONDS).unsigned_abs() as u64,
        );
        if let Some(e) = &spec.exec {
            let cmd = exec::expand_command(e.command.as_deref().unwrap_or_default(), t.container);
            return exec::probe(&*self.runner, t.container_id, cmd, timeout).await;
        }
        if let Some(h) = &spec.http_get {
            return match http::request_for(h, t.container, t.pod_ip) {
                Ok(req) => self.http.probe(&req, timeout).await,
                Err(e) => Outcome::error(Verdict::Unknown, e),
            };
        }
        if let Some(s) = &spec.tcp_socket {
            let port = match resolve_port(&s.port, t.container) {
                Ok(p) => p,
                Err(e) => return Outcome::error(Verdict::Unknown, e),
            };
            let host = s
                .host
                .as_deref()
                .filter(|h| !h.is_empty())
                .unwrap_or(t.pod_ip);
            return tcp::probe(host, port, timeout).await;
        }
        if let Some(g) = &spec.grpc {
            let Ok(port) = u16::try_from(g.port) else {
                return Outcome::error(
                    Verdict::Unknown,
                    format!("invalid port number: {}", g.port),
                );
            };
            let tls = g.mode.as_deref() == Some("TLS");
            let service = g.service.as_deref().unwrap_or("");
            return grpc::probe(t.pod_ip, port, service, timeout, tls).await;
        }
        let m = &t.pod.metadata;
        Outcome::error(
            Verdict::Unknown,
            format!(
                "missing probe handler for {}_{}({}):{}",
                m.name.as_deref().unwrap_or(""),
                m.namespace.as_deref().unwrap_or(""),
                m.uid.as_deref().unwrap_or(""),
                t.container.name
            ),
        )
    }
}

/// A probe's port: a number, the name of one of the container's ports, or a number written
/// as a string (upstream `ResolveContainerPort`).
pub(crate) fn resolve_port(port: &IntOrString, container: &Container) -> Result<u16, String> {
    let n: i64 = match port {
        IntOrString::Int(n) => i64::from(*n),
        IntOrString::String(name) => {
            let named = container
                .ports
                .iter()
                .flatten()
                .find(|p| p.name.as_deref() == Some(name.as_str()));
            match named {
                Some(p) => i64::from(p.container_port),
                None => name.parse::<i64>().map_err(|e| {
                    let why = if matches!(
                        e.kind(),
                        std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow
                    ) {
                        "value out of range"
                    } else {
                        "invalid syntax"
                    };
                    format!("strconv.Atoi: parsing {name:?}: {why}")
                })?,
            }
        }
    };
    match u16::try_from(n) {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(format!("invalid port number: {n}")),
    }
}

/// `host:port`, with IPv6 addresses in brackets (Go's `net.JoinHostPort`).
pub(crate) fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// A duration as Go prints it (`1s`, `1m30s`, `1h0m0s`, `500ms`).
pub(crate) fn go_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let sub = d.subsec_nanos();
    if secs == 0 && sub != 0 {
        return if sub.is_multiple_of(1_000_000) {
            format!("{}ms", sub / 1_000_000)
        } else {
            format!("{}µs", sub / 1000)
        };
    }
    let frac = if sub == 0 {
        String::new()
    } else {
        let s = format!("{:09}", sub);
        format!(".{}", s.trim_end_matches('0'))
    };
    let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
    if h > 0 {
        format!("{h}h{m}m{s}{frac}s")
    } else if m > 0 {
        format!("{m}m{s}{frac}s")
    } else {
        format!("{s}{frac}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ContainerPort;

    fn container() -> Container {
        Container {
            name: "c".into(),
            ports: Some(vec![ContainerPort {
                name: Some("http".into()),
                container_port: 8080,
                ..Default::default()
            }]),
            ..Default::default()
        }
    }

    #[test]
    fn ports_resolve_by_number_name_or_numeric_string() {
        let c = container();
        assert_eq!(resolve_port(&IntOrString::Int(80), &c), Ok(80));
        assert_eq!(
            resolve_port(&IntOrString::String("http".into()), &c),
            Ok(8080)
        );
        assert_eq!(
            resolve_port(&IntOrString::String("9090".into()), &c),
            Ok(9090)
        );
        assert_eq!(
            resolve_port(&IntOrString::String("grpc".into()), &c),
            Err("strconv.Atoi: parsing \"grpc\": invalid syntax".to_string())
        );
        assert_eq!(
            resolve_port(&IntOrString::Int(70000), &c),
            Err("invalid port number: 70000".to_string())
        );
        assert_eq!(
            resolve_port(&IntOrString::Int(0), &c),
            Err("invalid port number: 0".to_string())
        );
    }

    #[test]
    fn go_durations() {
        assert_eq!(go_duration(Duration::from_secs(1)), "1s");
        assert_eq!(go_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(go_duration(Duration::from_secs(3600)), "1h0m0s");
        assert_eq!(go_duration(Duration::from_millis(500)), "500ms");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
    }

    #[test]
    fn join_host_port_brackets_ipv6() {
        assert_eq!(join_host_port("10.0.0.1", 80), "10.0.0.1:80");
        assert_eq!(join_host_port("fd00::1", 80), "[fd00::1]:80");
    }

    struct NoExec;

    impl CommandRunner for NoExec {
        fn run_in_container<'a>(
            &'a self,
            _: &'a str,
            _: &'a [String],
            _: Duration,
        ) -> futures::future::BoxFuture<'a, Result<exec::ExecOutput, exec::ExecError>> {
            Box::pin(async { Err(exec::ExecError::Other("no exec here".into())) })
        }
    }

    fn http_probe(path: &str, port: u16) -> Probe {
        Probe {
            http_get: Some(k8s_openapi::api::core::v1::HTTPGetAction {
                path: Some(path.into()),
                port: IntOrString::Int(i32::from(port)),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn events_read_as_upstream_words_them() {
        let (port, _) = crate::prober::http::tests::serve(None).await;
        let pod = Pod {
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                name: Some("web".into()),
                namespace: Some("default".into()),
                uid: Some("u1".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let c = container();
        let t = Target {
            pod: &pod,
            container: &c,
            pod_ip: "127.0.0.1",
            container_id: "abc",
        };
        let p = Prober::new(Arc::new(NoExec));
        let ev = |msg: &str, reason: &'static str| vec![(true, reason, msg.to_string())];

        let (r, e) = p
            .probe(ProbeType::Liveness, &http_probe("/status/500", port), &t)
            .await;
        assert_eq!(r, Ok(ProbeResult::Failure));
        assert_eq!(
            e,
            ev(
                "Liveness probe failed: HTTP probe failed with statuscode: 500",
                "Unhealthy"
            )
        );

        let (r, e) = p
            .probe(
                ProbeType::Readiness,
                &http_probe("/redirect-away", port),
                &t,
            )
            .await;
        assert_eq!(r, Ok(ProbeResult::Success));
        assert_eq!(
            e,
            ev(
                "Readiness probe warning: Probe terminated redirects, Response body: <a href=\"http://0.0.0.0/\">Found</a>.",
                "ProbeWarning"
            )
        );

        let (r, e) = p
            .probe(ProbeType::Startup, &http_probe("/ok", port), &t)
            .await;
        assert_eq!((r, e), (Ok(ProbeResult::Success), vec![]));

        let tcp = Probe {
            tcp_socket: Some(k8s_openapi::api::core::v1::TCPSocketAction {
                port: IntOrString::String("web".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let (r, e) = p.probe(ProbeType::Liveness, &tcp, &t).await;
        assert_eq!(r, Err(()));
        assert_eq!(
            e,
            ev(
                "Liveness probe errored and resulted in unknown state: strconv.Atoi: parsing \"web\": invalid syntax",
                "Unhealthy"
            )
        );

        let exec = Probe {
            exec: Some(k8s_openapi::api::core::v1::ExecAction {
                command: Some(vec!["true".into()]),
            }),
            ..Default::default()
        };
        let (r, e) = p.probe(ProbeType::Liveness, &exec, &t).await;
        assert_eq!(r, Err(()));
        assert_eq!(
            e,
            ev(
                "Liveness probe errored and resulted in unknown state: no exec here",
                "Unhealthy"
            )
        );

        let (r, e) = p.probe(ProbeType::Readiness, &Probe::default(), &t).await;
        assert_eq!(r, Err(()));
        assert_eq!(
            e,
            ev(
                "Readiness probe errored and resulted in unknown state: missing probe handler for web_default(u1):c",
                "Unhealthy"
            )
        );
    }
}
