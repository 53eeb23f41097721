//! The HTTP server: accept loop (TLS or plain), authentication, routing of non-resource paths
//! (discovery, OpenAPI, health, version, metrics) and resource paths to the handlers.

use crate::handlers::{self, Query, error_response, parse_query, raw_response};
use crate::negotiate::{self, Format};
use crate::state::AppState;
use crate::{Config, discovery, health, request_info};
use apiserver_apimachinery::{ApiError, Reason};
use apiserver_registry::context::{RequestContext, UserInfo};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use bytes::Bytes;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::net::SocketAddr;
use std::time::Instant;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// Who the connection says the client is: the user of a verified client certificate, or on a
/// plain-HTTP (test) server the admin, whom a bearer token replaces.
#[derive(Clone, Default)]
pub struct Identity {
    pub user: Option<UserInfo>,
    pub test_admin: bool,
}

const MAX_BODY: usize = 3 * 1024 * 1024;

pub fn router(state: AppState) -> axum::Router {
    axum::Router::new().fallback(route).with_state(state)
}

fn json_response(v: &serde_json::Value) -> Response {
    raw_response(
        200,
        negotiate::JSON,
        Bytes::from(serde_json::to_vec(v).unwrap_or_default()),
    )
}

fn not_found() -> Response {
    let mut e = ApiError::new(
        Reason::NotFound,
        "the server could not find the requested resource",
    );
    e.code = Some(404);
    error_response(&e, Format::Json)
}

async fn route(State(state): State<AppState>, req: Request) -> Response {
    let start = Instant::now();
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let q: Query = parse_query(parts.uri.query());
    let mut parts = parts;
    let identity = parts
        .extensions
        .get::<Identity>()
        .cloned()
        .unwrap_or_default();
    let public = matches!(
        path.as_str(),
        "/healthz" | "/livez" | "/readyz" | "/version" | "/version/"
    ) || path.starts_with("/healthz/")
        || path.starts_with("/livez/")
        || path.starts_with("/readyz/");
    if public {
        return serve_public(&state, &path, &q);
    }
    let authenticated = crate::authn::authenticate(
        state.token_authenticator.as_deref(),
        &identity,
        &parts.headers,
    )
    .await;
    let (user, extra) = match authenticated {
        Ok(Some(a)) => (a.user, a.extra),
        failed => {
            if let Err(e) = failed {
                tracing::debug!(error = %e, "unable to authenticate the request");
            }
            let mut e = ApiError::new(Reason::Unauthorized, "Unauthorized");
            e.code = Some(401);
            return error_response(&e, Format::Json);
        }
    };
    // A bearer token that authenticated the request is not passed on (e.g. to kubelets), as
    // upstream removes it.
    let by_certificate = identity.user.is_some() && !identity.test_admin;
    if !by_certificate && crate::authn::bearer_token(&parts.headers).is_some() {
        parts.headers.remove(http::header::AUTHORIZATION);
    }
    let watch_param = matches!(q.get("watch").map(String::as_str), Some("true" | "1"));
    if let Some(info) = request_info::parse(&parts.method, &path, watch_param) {
        if crate::proxy::handles(&info) {
            // Served by a kubelet: the request keeps its body and upgrade extension.
            let ctx = RequestContext {
                user,
                namespace: info.namespace.clone(),
            };
            let resp =
                crate::proxy::serve(&state, &info, ctx, Request::from_parts(parts, body)).await;
            let resource = format!("{}/{}", info.resource, info.subresource);
            state.count("connect", &resource, resp.status().as_u16());
            tracing::debug!(verb = "connect", %resource, code = resp.status().as_u16(), elapsed_ms = start.elapsed().as_millis() as u64, "request");
            return resp;
        }
        let body = match axum::body::to_bytes(body, MAX_BODY).await {
            Ok(b) => b,
            Err(_) => {
                return error_response(
                    &ApiError::too_large("the request body is too large"),
                    Format::Json,
                );
            }
        };
        let ctx = RequestContext {
            user,
            namespace: info.namespace.clone(),
        };
        let resp = apiserver_registry::context::with_user_extra(
            extra,
            handlers::serve_resource(&state, &info, ctx, &q, &parts.headers, body),
        )
        .await;
        let resource = if info.subresource.is_empty() {
            info.resource.clone()
        } else {
            format!("{}/{}", info.resource, info.subresource)
        };
        state.count(&info.verb, &resource, resp.status().as_u16());
        if info.verb != "watch" {
            state.request_durations.observe(
                vec![
                    ("resource", resource.clone()),
                    ("verb", info.verb.to_uppercase()),
                ],
                start.elapsed().as_secs_f64(),
            );
        }
        tracing::debug!(verb = %info.verb, %resource, code = resp.status().as_u16(), elapsed_ms = start.elapsed().as_millis() as u64, "request");
        return resp;
    }
    let accept = parts
        .headers
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok());
    serve_non_resource(
        &state,
        &path,
        accept,
        &q,
        parts
            .headers
            .get(http::header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok()),
    )
}

fn serve_public(state: &AppState, path: &str, q: &Query) -> Response {
    if path.starts_with("/version") {
        return json_response(&health::version());
    }
    let (code, body) = health::check(state, path, q.contains_key("verbose"));
    raw_response(code, "text/plain; charset=utf-8", Bytes::from(body))
}

fn discovery_response(
    doc: Option<serde_json::Value>,
    accept: Option<&str>,
    aggregated_ok: bool,
) -> Response {
    let Some(doc) = doc else { return not_found() };
    let out = match negotiate::negotiate(accept, false, false, aggregated_ok) {
        Ok(o) => o,
        Err(e) => return error_response(&e, Format::Json),
    };
    match discovery::respond(&doc, out) {
        Ok((ct, body)) => raw_response(200, &ct, body),
        Err(e) => error_response(&e, Format::Json),
    }
}

fn serve_non_resource(
    state: &AppState,
    path: &str,
    accept: Option<&str>,
    q: &Query,
    if_none_match: Option<&str>,
) -> Response {
    let p = path.trim_end_matches('/');
    let aggregated = |core: bool| -> Response {
        let out = match negotiate::negotiate(accept, false, false, true) {
            Ok(o) => o,
            Err(e) => return error_response(&e, Format::Json),
        };
        let doc = match out {
            negotiate::Output::Discovery { v2beta1, .. } => {
                discovery::aggregated(state, core, v2beta1)
            }
            _ if core => discovery::api_versions(),
            _ => discovery::api_group_list(state),
        };
        match discovery::respond(&doc, out) {
            Ok((ct, body)) => raw_response(200, &ct, body),
            Err(e) => error_response(&e, Format::Json),
        }
    };
    match p {
        "/api" => return aggregated(true),
        "/apis" => return aggregated(false),
        "/api/v1" => {
            return discovery_response(discovery::resource_list(state, "", "v1"), accept, false);
        }
        "/metrics" => {
            return raw_response(
                200,
                "text/plain; version=0.0.4",
                Bytes::from(health::metrics(state)),
            );
        }
        "" => {
            let paths: Vec<String> = [
                "/api",
                "/api/v1",
                "/apis",
                "/healthz",
                "/livez",
                "/metrics",
                "/openapi/v2",
                "/openapi/v3",
                "/readyz",
                "/version",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            return json_response(&serde_json::json!({"paths": paths}));
        }
        _ => {}
    }
    if p.starts_with("/openapi/") {
        let req = apiserver_openapi::OpenApiRequest {
            path: p,
            hash: q.get("hash").map(String::as_str),
            accept,
            if_none_match,
        };
        let r = state.openapi().serve(&req);
        let code = r.status();
        let headers = r.headers();
        let body = match r {
            apiserver_openapi::OpenApiResponse::Ok { body, .. } => body,
            _ => Bytes::new(),
        };
        let mut resp = Response::new(Body::from(body));
        *resp.status_mut() = http::StatusCode::from_u16(code).unwrap_or(http::StatusCode::OK);
        for (k, v) in headers {
            if let Ok(v) = http::HeaderValue::from_str(&v) {
                resp.headers_mut().insert(k, v);
            }
        }
        return resp;
    }
    if let Some(rest) = p.strip_prefix("/apis/") {
        let parts: Vec<&str> = rest.split('/').collect();
        return match parts.as_slice() {
            [g] => discovery_response(discovery::group(state, g), accept, false),
            [g, v] => discovery_response(discovery::resource_list(state, g, v), accept, false),
            _ => not_found(),
        };
    }
    not_found()
}

async fn serve_plain(app: axum::Router, listener: TcpListener, shutdown: CancellationToken) {
    loop {
        let (tcp, peer) = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = listener.accept() => match r { Ok(x) => x, Err(_) => continue },
        };
        let app = app.clone();
        let sd = shutdown.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(
                move |mut req: hyper::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(Identity {
                        user: Some(crate::tls::test_admin()),
                        test_admin: true,
                    });
                    req.extensions_mut()
                        .insert(crate::upgradeaware::PeerAddr(peer));
                    app.clone().oneshot(req.map(Body::new))
                },
            );
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(tcp), svc);
            tokio::select! {
                _ = conn => {}
                _ = sd.cancelled() => {}
            }
        });
    }
}

async fn serve_tls(
    app: axum::Router,
    listener: TcpListener,
    cfg: std::sync::Arc<rustls::ServerConfig>,
    shutdown: CancellationToken,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(cfg);
    loop {
        let (tcp, peer) = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = listener.accept() => match r { Ok(x) => x, Err(_) => continue },
        };
        let app = app.clone();
        let acceptor = acceptor.clone();
        let sd = shutdown.clone();
        tokio::spawn(async move {
            let tls = match acceptor.accept(tcp).await {
                Ok(t) => t,
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
            };
            let user = crate::tls::user_from_certs(tls.get_ref().1.peer_certificates());
            let svc = hyper::service::service_fn(
                move |mut req: hyper::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(Identity {
                        user: user.clone(),
                        test_admin: false,
                    });
                    req.extensions_mut()
                        .insert(crate::upgradeaware::PeerAddr(peer));
                    app.clone().oneshot(req.map(Body::new))
                },
            );
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(tls), svc);
            tokio::select! {
                _ = conn => {}
                _ = sd.cancelled() => {}
            }
        });
    }
}

pub async fn serve(
    state: AppState,
    config: &Config,
    addr: SocketAddr,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let app = router(state);
    let tls = match (&config.tls_cert_file, &config.tls_private_key_file) {
        (Some(c), Some(k)) => Some(crate::tls::server_config(
            c,
            k,
            config.client_ca_file.as_deref(),
        )?),
        _ => None,
    };
    tracing::info!(address = %local, tls = tls.is_some(), "serving");
    if let Some(f) = &config.address_file {
        std::fs::write(f, local.to_string())?;
    }
    match tls {
        Some(cfg) => serve_tls(app, listener, cfg, shutdown).await,
        None => serve_plain(app, listener, shutdown).await,
    }
    Ok(())
}
