//! Subresources served by a node's kubelet through the apiserver: `pods/log` (streamed),
//! `pods/exec`, `pods/attach`, `pods/portforward` (upgrade-aware tunnels) and `nodes/proxy`.
//! Mirrors pkg/registry/core/pod/rest/{log,subresources}.go, pkg/registry/core/node/rest/proxy.go
//! with the node ResourceLocation, and apiserver's LocationStreamer and
//! GenericHttpResponseChecker; the tunnelling itself is in `upgradeaware`.

use crate::handlers::error_response;
use crate::kubelet_client::Location;
use crate::negotiate::Format;
use crate::pod_options::{
    LogOptions, PortForwardOptions, StreamKind, StreamOptions, escape_segment, parse_params,
    select_container,
};
use crate::request_info::RequestInfo;
use crate::state::AppState;
use crate::streaming;
use crate::upgradeaware;
use apiserver_apimachinery::{ApiError, Reason};
use apiserver_registry::context::RequestContext;
use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use http::header::{self, HeaderValue};
use http::{Method, StatusCode};
use http_body_util::BodyExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::StatusCause;
use serde_json::{Value, json};
use std::net::{IpAddr, SocketAddr};

/// How much of a failed kubelet answer becomes the error message (upstream's maxReadLength).
const MAX_ERROR_BODY: usize = 50_000;
const NODE_PROXY_METHODS: &[Method] = &[
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
    Method::HEAD,
    Method::OPTIONS,
];

/// Whether `info` is one of the subresources this module serves.
pub fn handles(info: &RequestInfo) -> bool {
    info.group.is_empty()
        && info.version == "v1"
        && info.name.is_some()
        && match (info.resource.as_str(), info.subresource.as_str()) {
            ("pods", "log" | "exec" | "attach" | "portforward") => {
                info.namespace.is_some() && info.rest.is_empty()
            }
            ("nodes", "proxy") => info.namespace.is_none(),
            _ => false,
        }
}

/// An error answer: an API error, or an error upstream reports as a Status without reason
/// (plain Go errors such as dial failures), or a Status built from a kubelet answer.
enum Failure {
    Api(ApiError),
    Plain(u16, String),
    Status(u16, Value),
}

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Self {
        Failure::Api(e)
    }
}

fn status_response(code: u16, status: Value) -> Response {
    let mut r = Response::new(Body::from(serde_json::to_vec(&status).unwrap_or_default()));
    *r.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

impl Failure {
    fn into_response(self) -> Response {
        match self {
            Failure::Api(e) => error_response(&e, Format::Json),
            Failure::Plain(code, message) => status_response(
                code,
                json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": message, "code": code}),
            ),
            Failure::Status(code, status) => status_response(code, status),
        }
    }
}

fn method_not_allowed() -> Failure {
    Failure::Api(ApiError::new(
        Reason::MethodNotAllowed,
        "the server does not allow this method on the requested resource",
    ))
}

/// Serves one request `handles` accepted. The request keeps its upgrade extension.
pub async fn serve(
    state: &AppState,
    info: &RequestInfo,
    ctx: RequestContext,
    req: Request,
) -> Response {
    let r = match (info.resource.as_str(), info.subresource.as_str()) {
        ("pods", "log") => {
            let (method, uri) = (req.method().clone(), req.uri().clone());
            // A WebSocket client gets the stream as messages (upstream's StreamObject).
            let ws = streaming::is_websocket(req.headers()).then_some(req);
            serve_log(state, info, &ctx, &method, &uri, ws).await
        }
        ("pods", sub) => serve_pod_stream(state, info, &ctx, sub, req).await,
        _ => serve_node_proxy(state, info, &ctx, req).await,
    };
    r.unwrap_or_else(Failure::into_response)
}

async fn get_json<T: serde::de::DeserializeOwned>(
    state: &AppState,
    ctx: &RequestContext,
    resource: &str,
    name: &str,
) -> Result<T, Failure> {
    let rest = state
        .endpoint("", "v1", resource, "")
        .ok_or_else(|| ApiError::internal(format!("no storage for {resource}")))?;
    let bytes = rest.get(ctx, name).await?;
    serde_json::from_slice(&bytes).map_err(|e| Failure::Api(ApiError::internal(e.to_string())))
}

/// The kubelet of node `node_name` (a missing node is its NotFound).
async fn kubelet_of(
    state: &AppState,
    ctx: &RequestContext,
    node_name: &str,
) -> Result<Location, Failure> {
    let node_ctx = RequestContext {
        user: ctx.user.clone(),
        namespace: None,
    };
    let node: Node = get_json(state, &node_ctx, "nodes", node_name).await?;
    state
        .kubelet
        .connection_info(&node)
        .map_err(|m| Failure::Plain(500, m))
}

fn node_name_of(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or("")
}

fn with_query(path: String, query: &str) -> String {
    if query.is_empty() {
        path
    } else {
        format!("{path}?{query}")
    }
}

/// `pods/{name}/log`: validated options, then the kubelet's `/containerLogs` streamed back.
async fn serve_log(
    state: &AppState,
    info: &RequestInfo,
    ctx: &RequestContext,
    method: &Method,
    uri: &http::Uri,
    websocket: Option<Request>,
) -> Result<Response, Failure> {
    if method != Method::GET {
        return Err(method_not_allowed());
    }
    let name = info.name.as_deref().unwrap_or("");
    let ns = info.namespace.as_deref().unwrap_or("");
    let opts = LogOptions::parse(&parse_params(uri.query()))?;
    opts.validate(name)?;
    let pod: Pod = get_json(state, ctx, "pods", name).await?;
    let container = select_container(&pod, &opts.container)?;
    if node_name_of(&pod).is_empty() {
        // Not scheduled: upstream streams nothing (204).
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::NO_CONTENT;
        return Ok(r);
    }
    let loc = kubelet_of(state, ctx, node_name_of(&pod)).await?;
    let path_and_query = with_query(
        format!(
            "/containerLogs/{}/{}/{}",
            escape_segment(ns),
            escape_segment(name),
            escape_segment(&container)
        ),
        &opts.kubelet_query(),
    );
    let url = loc.url(&path_and_query);
    let kreq = http::Request::get(&path_and_query)
        .header(header::HOST, loc.authority())
        .body(Body::empty())
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let resp = state
        .kubelet
        .send(&loc, opts.insecure_skip_tls_verify_backend, kreq)
        .await
        .map_err(|e| Failure::Plain(500, format!("Get \"{url}\": {e}")))?;
    let code = resp.status().as_u16();
    if matches!(code, 301 | 302 | 303 | 307 | 308) {
        if let Some(l) = resp.headers().get(header::LOCATION) {
            let l = String::from_utf8_lossy(l.as_bytes()).into_owned();
            return Err(Failure::Plain(
                500,
                format!("Get \"{l}\": redirects forbidden"),
            ));
        }
    }
    if !(200..=206).contains(&code) {
        let body = read_prefix(resp.into_body(), MAX_ERROR_BODY).await;
        return Err(kubelet_failure(code, &body, "pods/log", name));
    }
    if let Some(req) = websocket {
        return Ok(streaming::reader::serve(req, resp.into_body()));
    }
    let mut r = Response::new(Body::new(resp.into_body()));
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    Ok(r)
}

/// Up to `limit` bytes of a body, as text.
async fn read_prefix(mut body: hyper::body::Incoming, limit: usize) -> String {
    let mut buf = Vec::new();
    while buf.len() < limit {
        match body.frame().await {
            Some(Ok(f)) => {
                if let Ok(d) = f.into_data() {
                    let take = d.len().min(limit - buf.len());
                    buf.extend_from_slice(&d[..take]);
                }
            }
            _ => break,
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// A failed kubelet answer as upstream's GenericHttpResponseChecker reports it.
fn kubelet_failure(code: u16, body: &str, resource: &str, name: &str) -> Failure {
    match code {
        500 => {
            let mut e = ApiError::internal(body);
            e.causes = vec![StatusCause {
                message: Some(body.to_string()),
                ..Default::default()
            }];
            Failure::Api(e)
        }
        400 => Failure::Api(ApiError::bad_request(body)),
        _ => {
            let (reason, message) = match code {
                409 => ("Conflict", "the server reported a conflict".to_string()),
                404 => (
                    "NotFound",
                    "the server could not find the requested resource".to_string(),
                ),
                401 => (
                    "Unauthorized",
                    "the server has asked for the client to provide credentials".to_string(),
                ),
                403 => ("Forbidden", body.to_string()),
                406 if body.is_empty() || body == "unknown" => (
                    "NotAcceptable",
                    "the server was unable to respond with a content type that the client supports"
                        .to_string(),
                ),
                406 => ("NotAcceptable", body.to_string()),
                415 => ("UnsupportedMediaType", body.to_string()),
                405 => (
                    "MethodNotAllowed",
                    "the server does not allow this method on the requested resource".to_string(),
                ),
                422 => (
                    "Invalid",
                    "the server rejected our request due to an error in our request".to_string(),
                ),
                503 => (
                    "ServiceUnavailable",
                    "the server is currently unable to handle the request".to_string(),
                ),
                504 => (
                    "Timeout",
                    "the server was unable to return a response in the time allotted, but may still be processing the request".to_string(),
                ),
                429 => (
                    "TooManyRequests",
                    "the server has received too many requests and has asked us to try again later"
                        .to_string(),
                ),
                c if c >= 500 => (
                    "InternalError",
                    format!(
                        "an error on the server ({body:?}) has prevented the request from succeeding"
                    ),
                ),
                c => (
                    "",
                    format!(
                        "the server responded with the status code {c} but did not return more information"
                    ),
                ),
            };
            let mut status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
                "status": "Failure", "message": format!("{message} ( {resource} {name})")});
            if !reason.is_empty() {
                status["reason"] = Value::from(reason);
            }
            status["details"] = json!({"name": name, "kind": resource});
            status["code"] = Value::from(code);
            Failure::Status(code, status)
        }
    }
}

/// `pods/{name}/exec|attach|portforward`: the kubelet URL, then an upgrade-aware tunnel.
async fn serve_pod_stream(
    state: &AppState,
    info: &RequestInfo,
    ctx: &RequestContext,
    sub: &str,
    req: Request,
) -> Result<Response, Failure> {
    if req.method() != Method::GET && req.method() != Method::POST {
        return Err(method_not_allowed());
    }
    let name = info.name.as_deref().unwrap_or("");
    let ns = info.namespace.as_deref().unwrap_or("");
    let params = parse_params(req.uri().query());
    let pf = if sub == "portforward" {
        Some(PortForwardOptions::parse(&params)?)
    } else {
        None
    };
    let kind = if sub == "exec" {
        StreamKind::Exec
    } else {
        StreamKind::Attach
    };
    let stream = StreamOptions::parse(&params, kind);
    let pod: Pod = get_json(state, ctx, "pods", name).await?;
    let container = match pf {
        Some(_) => None,
        None => Some(select_container(&pod, &stream.container)?),
    };
    if node_name_of(&pod).is_empty() {
        return Err(Failure::Api(ApiError::bad_request(format!(
            "pod {name} does not have a host assigned"
        ))));
    }
    let loc = kubelet_of(state, ctx, node_name_of(&pod)).await?;
    let (ns, pod_name) = (escape_segment(ns), escape_segment(name));
    let path_and_query = match (&pf, &container) {
        (Some(pf), _) => with_query(format!("/portForward/{ns}/{pod_name}"), &pf.kubelet_query()),
        (None, c) => with_query(
            format!(
                "/{sub}/{ns}/{pod_name}/{}",
                escape_segment(c.as_deref().unwrap_or(""))
            ),
            &stream.kubelet_query(),
        ),
    };
    if !upgradeaware::is_upgrade_request(req.headers()) {
        return Err(Failure::Api(ApiError::bad_request(
            "Upgrade request required",
        )));
    }
    if pf.is_some() && streaming::wants_tunneling(req.headers()) {
        return Ok(streaming::tunnel::serve(state.kubelet.clone(), loc, path_and_query, req).await);
    }
    if pf.is_none() && streaming::wants_stream_translation(req.headers()) {
        let streams = streaming::translator::Streams {
            stdin: stream.stdin,
            stdout: stream.stdout,
            stderr: stream.stderr,
            tty: stream.tty,
        };
        return Ok(streaming::translator::serve(
            state.kubelet.clone(),
            loc,
            path_and_query,
            streams,
            req,
        ));
    }
    upgradeaware::proxy_upgrade(&state.kubelet, &loc, false, &path_and_query, req)
        .await
        .map_err(|m| Failure::Plain(500, m))
}

/// Upstream's SplitSchemeNamePort: `name`, `name:port` or `scheme:name:port`.
fn split_scheme_name_port(id: &str) -> Option<(&str, &str, &str)> {
    let parts: Vec<&str> = id.split(':').collect();
    let (scheme, name, port) = match parts.as_slice() {
        [n] => ("", *n, ""),
        [n, p] => ("", *n, *p),
        [s, n, p] => (*s, *n, *p),
        _ => return None,
    };
    (!name.is_empty() && matches!(scheme, "" | "http" | "https")).then_some((scheme, name, port))
}

fn is_global_unicast(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            !(v4.is_loopback()
                || v4.is_link_local()
                || v4.is_multicast()
                || v4.is_unspecified()
                || v4.is_broadcast())
        }
        IpAddr::V6(v6) => {
            let link_local = (v6.segments()[0] & 0xffc0) == 0xfe80;
            !(v6.is_loopback() || v6.is_multicast() || v6.is_unspecified() || link_local)
        }
    }
}

/// Upstream's IsProxyableHostname: every address of `host` must be global unicast.
async fn check_proxyable(host: &str) -> Result<(), String> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, 0))
        .await
        .map_err(|_| format!("lookup {host}: no such host"))?
        .collect();
    if addrs.is_empty() {
        return Err("No addresses for hostname".into());
    }
    if addrs.iter().all(|a| is_global_unicast(a.ip())) {
        Ok(())
    } else {
        Err("address not allowed".into())
    }
}

/// The sub-path of `/api/v1/nodes/{name}/proxy[/...]`, joined as upstream's
/// JoinPreservingTrailingSlash does (cleaned, trailing slash kept).
fn node_proxy_path(raw_path: &str) -> String {
    let parts: Vec<&str> = raw_path.trim_start_matches('/').split('/').collect();
    if parts.len() <= 5 {
        return String::new();
    }
    let rest = &parts[5..];
    let mut out: Vec<&str> = Vec::new();
    for seg in rest {
        match *seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    let mut p = format!("/{}", out.join("/"));
    if raw_path.ends_with('/') && !p.ends_with('/') {
        p.push('/');
    }
    p
}

/// `nodes/{name}/proxy/{path}`: any method, to the node's kubelet (or, for `name:port`, that
/// port of the node), upgrade-aware.
async fn serve_node_proxy(
    state: &AppState,
    info: &RequestInfo,
    ctx: &RequestContext,
    req: Request,
) -> Result<Response, Failure> {
    if !NODE_PROXY_METHODS.contains(req.method()) {
        return Err(method_not_allowed());
    }
    let id = info.name.as_deref().unwrap_or("");
    let (scheme, node_name, port) = split_scheme_name_port(id).ok_or_else(|| {
        Failure::Api(ApiError::bad_request(format!(
            "invalid node request {id:?}"
        )))
    })?;
    let mut loc = kubelet_of(state, ctx, node_name).await?;
    let mut insecure = false;
    if !port.is_empty() && port != loc.port.to_string() {
        check_proxyable(&loc.host)
            .await
            .map_err(|m| Failure::Api(ApiError::bad_request(m)))?;
        let port: u16 = port
            .parse()
            .map_err(|_| Failure::Plain(500, format!("dial tcp: address {port}: invalid port")))?;
        loc = Location {
            scheme: if scheme.is_empty() { "http" } else { scheme }.to_string(),
            host: loc.host,
            port,
        };
        insecure = true;
    }
    let path = node_proxy_path(req.uri().path());
    if upgradeaware::is_upgrade_request(req.headers()) {
        return upgradeaware::proxy_upgrade(&state.kubelet, &loc, insecure, &path, req)
            .await
            .map_err(|m| Failure::Plain(500, m));
    }
    let query = req.uri().query().unwrap_or("").to_string();
    if path.is_empty() && (req.method() == Method::GET || req.method() == Method::HEAD) {
        let target = with_query(format!("{}/", req.uri().path()), &query);
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::MOVED_PERMANENTLY;
        if let Ok(v) = HeaderValue::from_str(&target) {
            r.headers_mut().insert(header::LOCATION, v);
        }
        return Ok(r);
    }
    let path_and_query = with_query(if path.is_empty() { "/".into() } else { path }, &query);
    upgradeaware::forward(&state.kubelet, &loc, insecure, &path_and_query, req)
        .await
        .map_err(|m| Failure::Plain(500, m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_proxy_paths_and_ids() {
        assert_eq!(node_proxy_path("/api/v1/nodes/n1/proxy"), "");
        assert_eq!(node_proxy_path("/api/v1/nodes/n1/proxy/"), "/");
        assert_eq!(
            node_proxy_path("/api/v1/nodes/n1/proxy/stats/summary"),
            "/stats/summary"
        );
        assert_eq!(
            node_proxy_path("/api/v1/nodes/n1/proxy/a//b/../c/"),
            "/a/c/"
        );
        assert_eq!(split_scheme_name_port("n1"), Some(("", "n1", "")));
        assert_eq!(split_scheme_name_port("n1:4194"), Some(("", "n1", "4194")));
        assert_eq!(
            split_scheme_name_port("https:n1:443"),
            Some(("https", "n1", "443"))
        );
        assert_eq!(split_scheme_name_port("ftp:n1:21"), None);
        assert_eq!(split_scheme_name_port(":80"), None);
        assert!(!is_global_unicast("127.0.0.1".parse().unwrap()));
        assert!(!is_global_unicast("169.254.1.1".parse().unwrap()));
        assert!(!is_global_unicast("fe80::1".parse().unwrap()));
        assert!(is_global_unicast("10.1.2.3".parse().unwrap()));
    }
}
