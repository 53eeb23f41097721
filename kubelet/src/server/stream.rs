//! exec, attach and port-forward (upstream `getExec`, `getAttach`, `getPortForward` of
//! `pkg/kubelet/server/server.go`, the options of cri-streaming's `remotecommand.NewOptions` and
//! `portforward.NewV4Options`, its `WriteError`): the runtime hands out a URL on its own
//! streaming server, and the client's upgrade request is proxied there as apimachinery's
//! UpgradeAwareHandler does — forwarded over plain HTTP with its upgrade headers, the runtime's
//! 101 and headers passed back, then bytes copied both ways; any other answer is passed through
//! unchanged. The apiserver turns kubectl's WebSocket requests (`v5.channel.k8s.io`, and
//! port-forward tunnelled as `SPDY/3.1+portforward.k8s.io`) into SPDY before they get here;
//! older WebSocket subprotocols come through as they are and the runtime serves them.

use super::State;
use super::routes::{Body, query_pairs, text};
use crate::cri;
use crate::logs::cri_error_string;
use http_body_util::{BodyExt, Empty};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode, header};
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::Pod;
use std::time::Duration;

fn flag(query: &[(String, String)], name: &str) -> bool {
    query
        .iter()
        .find(|(k, _)| k == name)
        .is_some_and(|(_, v)| v == "1" || v.eq_ignore_ascii_case("true"))
}

fn header_has_token(req: &Request<Incoming>, name: header::HeaderName, token: &str) -> bool {
    req.headers().get_all(name).iter().any(|v| {
        v.to_str()
            .unwrap_or("")
            .split(',')
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    })
}

fn is_upgrade(req: &Request<Incoming>) -> bool {
    header_has_token(req, header::CONNECTION, "upgrade")
        && req.headers().contains_key(header::UPGRADE)
}

fn is_websocket(req: &Request<Incoming>) -> bool {
    header_has_token(req, header::CONNECTION, "upgrade")
        && header_has_token(req, header::UPGRADE, "websocket")
}

/// The running container's id, honouring a uid in the path (a different pod is not found).
pub(crate) fn running_container(
    state: &State,
    pod: &Pod,
    uid: Option<&str>,
    container: &str,
) -> Option<String> {
    let pod_uid = state.pods.runtime_uid(pod, uid)?;
    state.pods.container_id(&pod_uid, container)
}

/// cri-streaming's WriteError: NotFound→404, ResourceExhausted→429, else 500.
fn cri_error(e: &cri::CriError) -> Response<Body> {
    let (status, retry) = match e {
        cri::CriError::Status(s) if s.code() == tonic::Code::NotFound => {
            (StatusCode::NOT_FOUND, false)
        }
        cri::CriError::Status(s) if s.code() == tonic::Code::ResourceExhausted => {
            (StatusCode::TOO_MANY_REQUESTS, true)
        }
        _ => (StatusCode::INTERNAL_SERVER_ERROR, false),
    };
    let mut r = text(status, cri_error_string(e));
    if retry {
        r.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("60"));
    }
    r
}

pub(crate) async fn exec_or_attach(
    state: &State,
    exec: bool,
    segs: &[String],
    req: Request<Incoming>,
) -> Response<Body> {
    if req.method() != Method::GET && req.method() != Method::POST {
        return text(StatusCode::METHOD_NOT_ALLOWED, "405: Method Not Allowed");
    }
    let (ns, name, uid, container) = match segs {
        [ns, name, container] => (ns, name, None, container),
        [ns, name, uid, container] => (ns, name, Some(uid.as_str()), container),
        _ => return text(StatusCode::NOT_FOUND, "404 page not found\n"),
    };
    let query = query_pairs(&req);
    let tty = flag(&query, "tty");
    let stdin = flag(&query, "input");
    let stdout = flag(&query, "output");
    // A terminal merges stderr into stdout.
    let stderr = flag(&query, "error") && !tty;
    if !stdin && !stdout && !stderr {
        return text(
            StatusCode::BAD_REQUEST,
            "you must specify at least 1 of stdin, stdout, stderr",
        );
    }
    let Some(pod) = state.pods.pod(ns, name) else {
        return text(StatusCode::NOT_FOUND, "pod does not exist");
    };
    let Some(id) = running_container(state, &pod, uid, container) else {
        return text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("container not found ({container:?})"),
        );
    };
    let url = if exec {
        let cmd = query
            .iter()
            .filter(|(k, _)| k == "command")
            .map(|(_, v)| v.clone())
            .collect();
        state
            .runtime
            .exec(cri::v1::ExecRequest {
                container_id: id,
                cmd,
                tty,
                stdin,
                stdout,
                stderr,
            })
            .await
    } else {
        state
            .runtime
            .attach(cri::v1::AttachRequest {
                container_id: id,
                stdin,
                tty,
                stdout,
                stderr,
            })
            .await
    };
    match url {
        Ok(url) => proxy(&url, req).await,
        Err(e) => cri_error(&e),
    }
}

pub(crate) async fn port_forward(
    state: &State,
    segs: &[String],
    req: Request<Incoming>,
) -> Response<Body> {
    if req.method() != Method::GET && req.method() != Method::POST {
        return text(StatusCode::METHOD_NOT_ALLOWED, "405: Method Not Allowed");
    }
    let (ns, name, uid) = match segs {
        [ns, name] => (ns, name, None),
        [ns, name, uid] => (ns, name, Some(uid.as_str())),
        _ => return text(StatusCode::NOT_FOUND, "404 page not found\n"),
    };
    // Ports come in the query only for plain WebSocket clients; SPDY clients name them per
    // stream, and the WebSocket tunnel of SPDY carries SPDY.
    let tunnel = is_websocket(&req)
        && header_has_token(
            &req,
            header::SEC_WEBSOCKET_PROTOCOL,
            "SPDY/3.1+portforward.k8s.io",
        );
    let mut ports = Vec::new();
    if is_websocket(&req) && !tunnel {
        for (k, v) in query_pairs(&req) {
            if k != "port" {
                continue;
            }
            match v.parse::<u16>() {
                Ok(0) => return text(StatusCode::BAD_REQUEST, format!("port {v:?} must be > 0")),
                Ok(p) => ports.push(i32::from(p)),
                Err(e) => {
                    return text(
                        StatusCode::BAD_REQUEST,
                        format!("unable to parse {v:?} as a port: {e}"),
                    );
                }
            }
        }
        if ports.is_empty() {
            return text(
                StatusCode::BAD_REQUEST,
                "query parameter \"port\" is required",
            );
        }
    }
    let Some(pod) = state.pods.pod(ns, name) else {
        return text(StatusCode::NOT_FOUND, "pod does not exist");
    };
    let Some(pod_uid) = state.pods.runtime_uid(&pod, uid) else {
        return text(StatusCode::NOT_FOUND, "pod not found");
    };
    let Some(sandbox) = state.pods.sandbox_id(&pod_uid) else {
        return text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("pod not found ({pod_uid:?})"),
        );
    };
    match state
        .runtime
        .port_forward(cri::v1::PortForwardRequest {
            pod_sandbox_id: sandbox,
            port: ports,
        })
        .await
    {
        Ok(url) => proxy(&url, req).await,
        Err(e) => cri_error(&e),
    }
}

fn proxy_error(msg: String) -> Response<Body> {
    tracing::warn!(error = %msg, "error while proxying a streaming request");
    text(StatusCode::INTERNAL_SERVER_ERROR, msg)
}

/// Proxies an upgrade request to `location` (an `http://` URL on the runtime's streaming
/// server) and, on 101, splices the two upgraded connections together.
pub(crate) async fn proxy(location: &str, mut req: Request<Incoming>) -> Response<Body> {
    if !is_upgrade(&req) {
        return proxy_error("Upgrade request required".into());
    }
    let uri: hyper::Uri = match location.parse() {
        Ok(u) => u,
        Err(e) => return proxy_error(format!("invalid streaming URL {location:?}: {e}")),
    };
    if uri.scheme_str() != Some("http") {
        return proxy_error(format!("unsupported streaming URL {location:?}"));
    }
    let Some(authority) = uri.authority().cloned() else {
        return proxy_error(format!("invalid streaming URL {location:?}"));
    };
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = authority.port_u16().unwrap_or(80);
    let tcp = match tokio::time::timeout(
        Duration::from_secs(30),
        tokio::net::TcpStream::connect((host.as_str(), port)),
    )
    .await
    {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return proxy_error(format!("error dialing backend: {e}")),
        Err(_) => return proxy_error("error dialing backend: timeout".into()),
    };
    let _ = tcp.set_nodelay(true);
    let (mut sender, conn) = match hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await {
        Ok(x) => x,
        Err(e) => return proxy_error(format!("error dialing backend: {e}")),
    };
    tokio::spawn(async move {
        if let Err(e) = conn.with_upgrades().await {
            tracing::debug!(error = %e, "streaming backend connection");
        }
    });

    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut builder = Request::builder().method(req.method().clone()).uri(path);
    for (k, v) in req.headers() {
        if k == header::HOST || k == header::CONTENT_LENGTH || k == header::TRANSFER_ENCODING {
            continue;
        }
        builder = builder.header(k, v);
    }
    builder = builder.header(header::HOST, authority.as_str());
    let backend_req = match builder.body(Empty::<Bytes>::new()) {
        Ok(r) => r,
        Err(e) => return proxy_error(e.to_string()),
    };
    let client_upgrade = hyper::upgrade::on(&mut req);
    let mut resp = match sender.send_request(backend_req).await {
        Ok(r) => r,
        Err(e) => return proxy_error(format!("error proxying to the streaming server: {e}")),
    };
    if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
        // Refused (e.g. an unsupported subprotocol): hand the answer back unchanged.
        let (parts, body) = resp.into_parts();
        return Response::from_parts(parts, body.map_err(std::io::Error::other).boxed());
    }
    let backend_upgrade = hyper::upgrade::on(&mut resp);
    tokio::spawn(async move {
        let (backend, client) = tokio::join!(backend_upgrade, client_upgrade);
        match (backend, client) {
            (Ok(b), Ok(c)) => {
                let mut b = TokioIo::new(b);
                let mut c = TokioIo::new(c);
                if let Err(e) = tokio::io::copy_bidirectional(&mut c, &mut b).await {
                    tracing::debug!(error = %e, "streaming connection ended");
                }
            }
            (b, c) => {
                tracing::warn!(backend = ?b.err(), client = ?c.err(), "upgrading a streaming connection failed");
            }
        }
    });
    let mut out = Response::new(
        Empty::<Bytes>::new()
            .map_err(|never| match never {})
            .boxed(),
    );
    *out.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    *out.headers_mut() = resp.headers().clone();
    out
}
