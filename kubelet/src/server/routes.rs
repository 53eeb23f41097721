//! Request routing and the non-streaming handlers of the kubelet server (upstream
//! `pkg/kubelet/server/server.go`: the auth filter, healthz, metrics, getPods,
//! getContainerLogs, getRun; `validateContainerLogStatus` of `pkg/kubelet/kubelet_pods.go`).

use super::State;
use super::tls::User;
use crate::logs::{LogOptions, LogReader, PodLogOptions, cri_error_string};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode, header};
use k8s_openapi::api::core::v1::Pod;
use std::sync::Arc;
use std::time::Duration;

pub(crate) type Body = BoxBody<Bytes, std::io::Error>;

pub(crate) fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).map_err(|never| match never {}).boxed()
}

pub(crate) fn text(status: StatusCode, msg: impl Into<String>) -> Response<Body> {
    let mut r = Response::new(full(msg.into()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn not_found() -> Response<Body> {
    text(StatusCode::NOT_FOUND, "404 page not found\n")
}

fn method_not_allowed(allow: &'static str) -> Response<Body> {
    let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
    r.headers_mut()
        .insert(header::ALLOW, header::HeaderValue::from_static(allow));
    r
}

/// The path's segments, percent-decoded; a trailing slash adds no segment.
pub(crate) fn segments(path: &str) -> Vec<String> {
    let mut segs: Vec<String> = path
        .trim_start_matches('/')
        .split('/')
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    if segs.len() > 1 && segs.last().is_some_and(|s| s.is_empty()) {
        segs.pop();
    }
    segs
}

/// The decoded query pairs, in order.
pub(crate) fn query_pairs(req: &Request<Incoming>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The plain-HTTP healthz server: `/healthz` with the ping check only.
pub(crate) fn healthz_only(req: &Request<Incoming>) -> Response<Body> {
    let segs = segments(req.uri().path());
    if segs.first().map(String::as_str) != Some("healthz") {
        return not_found();
    }
    let verbose = query_pairs(req).iter().any(|(k, _)| k == "verbose");
    healthz(&segs[1..], verbose, &[("ping", Ok(()))])
}

/// apiserver-style healthz over named checks.
fn healthz(sub: &[String], verbose: bool, checks: &[(&str, Result<(), String>)]) -> Response<Body> {
    if let Some(name) = sub.first() {
        return match checks.iter().find(|(n, _)| n == name) {
            Some((_, Ok(()))) => text(StatusCode::OK, "ok"),
            Some((_, Err(e))) => text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("internal server error: {e}\n"),
            ),
            None => not_found(),
        };
    }
    let failed = checks.iter().any(|(_, r)| r.is_err());
    if !failed && !verbose {
        return text(StatusCode::OK, "ok");
    }
    let mut out = String::new();
    for (name, r) in checks {
        match r {
            Ok(()) => out.push_str(&format!("[+]{name} ok\n")),
            Err(_) => out.push_str(&format!("[-]{name} failed: reason withheld\n")),
        }
    }
    if failed {
        out.push_str("healthz check failed\n");
        text(StatusCode::INTERNAL_SERVER_ERROR, out)
    } else {
        out.push_str("healthz check passed\n");
        text(StatusCode::OK, out)
    }
}

/// The HTTPS server: authentication, then routing.
pub(crate) async fn secure(
    state: Arc<State>,
    user: Option<User>,
    req: Request<Incoming>,
) -> Response<Body> {
    let user = match user {
        Some(u) => u,
        None if state.anonymous_auth => User::anonymous(),
        None => return text(StatusCode::UNAUTHORIZED, "Unauthorized"),
    };
    tracing::debug!(user = %user.name, method = %req.method(), path = %req.uri().path(), "kubelet request");
    let segs = segments(req.uri().path());
    let get_only = |req: &Request<Incoming>| req.method() != Method::GET;
    match segs[0].as_str() {
        "healthz" => {
            let verbose = query_pairs(&req).iter().any(|(k, _)| k == "verbose");
            let checks = [
                ("ping", Ok(())),
                ("log", Ok(())),
                ("syncloop", state.pods.sync_loop_healthy()),
            ];
            healthz(&segs[1..], verbose, &checks)
        }
        "metrics" if segs.len() == 1 => metrics(&state),
        "pods" if segs.len() == 1 => {
            if get_only(&req) {
                return method_not_allowed("GET");
            }
            pods(&state)
        }
        "containerLogs" => {
            if get_only(&req) {
                return method_not_allowed("GET");
            }
            let query = req.uri().query().unwrap_or("").to_string();
            container_logs(&state, &segs[1..], &query).await
        }
        "run" => {
            if req.method() != Method::POST {
                return method_not_allowed("POST");
            }
            run(&state, &segs[1..], &query_pairs(&req)).await
        }
        "exec" => super::stream::exec_or_attach(&state, true, &segs[1..], req).await,
        "attach" => super::stream::exec_or_attach(&state, false, &segs[1..], req).await,
        "portForward" => super::stream::port_forward(&state, &segs[1..], req).await,
        _ => not_found(),
    }
}

fn metrics(state: &State) -> Response<Body> {
    let mut out = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &state.metrics) {
        return text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
    }
    let mut r = text(StatusCode::OK, out);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        ),
    );
    r
}

fn json(status: StatusCode, body: Vec<u8>) -> Response<Body> {
    let mut r = Response::new(full(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    r
}

fn pods(state: &State) -> Response<Body> {
    let list = k8s_openapi::List::<Pod> {
        items: state.pods.pods(),
        metadata: Default::default(),
    };
    match serde_json::to_vec(&list) {
        Ok(b) => json(StatusCode::OK, b),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

fn has_container(pod: &Pod, name: &str) -> bool {
    let Some(spec) = &pod.spec else { return false };
    spec.containers.iter().any(|c| c.name == name)
        || spec
            .init_containers
            .iter()
            .flatten()
            .any(|c| c.name == name)
        || spec
            .ephemeral_containers
            .iter()
            .flatten()
            .any(|c| c.name == name)
}

/// The CRI id of the container instance whose log to read: the last terminated one for
/// `previous`, else the running one, else the last that ran (upstream
/// `validateContainerLogStatus`, with its messages).
pub(crate) fn log_container_id(
    pod: &Pod,
    container: &str,
    previous: bool,
) -> Result<String, String> {
    let pod_name = pod.metadata.name.as_deref().unwrap_or("");
    let status = pod.status.as_ref();
    let cs = status
        .into_iter()
        .flat_map(|s| {
            s.container_statuses
                .iter()
                .flatten()
                .chain(s.init_container_statuses.iter().flatten())
                .chain(s.ephemeral_container_statuses.iter().flatten())
        })
        .find(|c| c.name == container)
        .ok_or_else(|| format!("container {container:?} in pod {pod_name:?} is not available"))?;
    let last = cs.last_state.as_ref().and_then(|s| s.terminated.as_ref());
    let state = cs.state.as_ref();
    let terminated_msg = || format!("container {container:?} in pod {pod_name:?} is terminated");
    let id = if previous {
        match last
            .and_then(|t| t.container_id.clone())
            .filter(|i| !i.is_empty())
        {
            Some(i) => i,
            None => {
                return Err(format!(
                    "previous terminated container {container:?} in pod {pod_name:?} not found"
                ));
            }
        }
    } else if state.and_then(|s| s.running.as_ref()).is_some() {
        cs.container_id.clone().unwrap_or_default()
    } else if let Some(t) = state.and_then(|s| s.terminated.as_ref()) {
        match t.container_id.clone().filter(|i| !i.is_empty()) {
            Some(i) => i,
            None => last
                .and_then(|t| t.container_id.clone())
                .filter(|i| !i.is_empty())
                .ok_or_else(terminated_msg)?,
        }
    } else if let Some(t) = last {
        t.container_id
            .clone()
            .filter(|i| !i.is_empty())
            .ok_or_else(terminated_msg)?
    } else if let Some(w) = state.and_then(|s| s.waiting.as_ref()) {
        let reason = w.reason.as_deref().unwrap_or("");
        let why = match reason {
            "ErrImagePull" => "image can't be pulled".to_string(),
            "ImagePullBackOff" => "trying and failing to pull image".to_string(),
            r => r.to_string(),
        };
        return Err(format!(
            "container {container:?} in pod {pod_name:?} is waiting to start: {why}"
        ));
    } else {
        return Err(format!(
            "container {container:?} in pod {pod_name:?} is waiting to start - no logs yet"
        ));
    };
    Ok(id
        .split_once("://")
        .map(|(_, i)| i.to_string())
        .unwrap_or(id))
}

async fn container_logs(state: &State, segs: &[String], query: &str) -> Response<Body> {
    if segs.len() != 3 {
        return not_found();
    }
    let (ns, pod_name, container) = (&segs[0], &segs[1], &segs[2]);
    for (v, what) in [
        (pod_name, "Missing podID."),
        (container, "Missing container name."),
        (ns, "Missing podNamespace."),
    ] {
        if v.is_empty() {
            return text(
                StatusCode::BAD_REQUEST,
                format!("{{\"message\": \"{what}\"}}"),
            );
        }
    }
    let Ok(api) = PodLogOptions::from_query(query) else {
        return text(
            StatusCode::BAD_REQUEST,
            "{\"message\": \"Unable to decode query.\"}",
        );
    };
    if !api.validate().is_empty() {
        return text(
            StatusCode::UNPROCESSABLE_ENTITY,
            "{\"message\": \"Invalid request.\"}",
        );
    }
    let Some(pod) = state.pods.pod(ns, pod_name) else {
        return text(
            StatusCode::NOT_FOUND,
            format!("pod {pod_name:?} does not exist"),
        );
    };
    if !has_container(&pod, container) {
        return text(
            StatusCode::NOT_FOUND,
            format!("container {container:?} not found in pod {pod_name:?}"),
        );
    }
    let id = match log_container_id(&pod, container, api.previous) {
        Ok(id) => id,
        Err(e) => return text(StatusCode::BAD_REQUEST, e),
    };
    let status = match state.runtime.container_status(&id).await {
        Ok(s) => s,
        Err(e) => return text(StatusCode::BAD_REQUEST, cri_error_string(&e)),
    };
    let opts = LogOptions::new(&api, jiff::Timestamp::now());
    let reader = match LogReader::open(std::path::Path::new(&status.log_path), opts) {
        Ok(r) => r,
        Err(e) => return text(StatusCode::BAD_REQUEST, e.0),
    };
    let runtime: Arc<dyn crate::logs::LogRuntime> = state.runtime.clone();
    let reader = reader.container(&id, runtime);
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(16);
    tokio::spawn(async move {
        if let Err(e) = reader.run(tx).await {
            tracing::warn!(container = %id, error = %e, "streaming container logs");
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, std::io::Error>(Frame::data(b)), rx))
    });
    let mut r = Response::new(StreamBody::new(stream).boxed());
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// `/run/{ns}/{pod}[/{uid}]/{container}?cmd=...`: runs a command and returns its output.
async fn run(state: &State, segs: &[String], query: &[(String, String)]) -> Response<Body> {
    let (ns, name, uid, container) = match segs {
        [ns, name, container] => (ns, name, None, container),
        [ns, name, uid, container] => (ns, name, Some(uid), container),
        _ => return not_found(),
    };
    let Some(pod) = state.pods.pod(ns, name) else {
        return text(StatusCode::NOT_FOUND, "pod does not exist");
    };
    let Some(id) =
        super::stream::running_container(state, &pod, uid.map(String::as_str), container)
    else {
        return text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("container not found ({container:?})"),
        );
    };
    let cmd: Vec<String> = query
        .iter()
        .find(|(k, _)| k == "cmd")
        .map(|(_, v)| v.split(' ').map(str::to_string).collect())
        .unwrap_or_default();
    match state
        .runtime
        .exec_sync(&id, cmd.clone(), Duration::from_secs(120))
        .await
    {
        Ok(r) => {
            let mut out = r.stdout;
            out.extend_from_slice(&r.stderr);
            if r.exit_code != 0 {
                return text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!(
                        "command '{}' exited with {}: {}",
                        cmd.join(" "),
                        r.exit_code,
                        String::from_utf8_lossy(&r.stderr)
                    ),
                );
            }
            json(StatusCode::OK, out)
        }
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, cri_error_string(&e)),
    }
}
