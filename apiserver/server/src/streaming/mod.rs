//! WebSocket streaming for `pods/exec`, `pods/attach` and `pods/portforward`, as upstream's
//! apiserver serves it (staging/src/k8s.io/apiserver/pkg/util/proxy: streamtranslator.go,
//! streamtunnel.go): kubectl 1.37 first asks for a WebSocket, and the kubelet speaks SPDY.
//! - exec/attach with the `v5.channel.k8s.io` subprotocol are translated: the WebSocket's
//!   channels become SPDY streams of `v4.channel.k8s.io` towards the kubelet
//!   ([`translator`]).
//! - port-forward with `SPDY/3.1+portforward.k8s.io` is tunnelled: the WebSocket's binary
//!   messages carry the client's SPDY frames, passed to the kubelet's SPDY connection as they
//!   are ([`tunnel`]).
//!
//! Any other WebSocket request is proxied to the kubelet unchanged by the upgrade-aware proxy.

pub mod reader;
pub mod spdy;
pub mod translator;
pub mod tunnel;

use axum::body::Body;
use axum::response::Response;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, StatusCode};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

/// The exec/attach subprotocol with the stream-close signal.
pub const STREAM_PROTOCOL_V5: &str = "v5.channel.k8s.io";
/// What the translator asks the kubelet for over SPDY.
pub const STREAM_PROTOCOL_V4: &str = "v4.channel.k8s.io";
/// WebSocket subprotocols of the port-forward tunnel: this prefix, then a SPDY protocol.
pub const TUNNELING_PREFIX: &str = "SPDY/3.1+";
const KUBERNETES_SUFFIX: &str = ".k8s.io";
pub const X_STREAM_PROTOCOL_VERSION: &str = "x-stream-protocol-version";

fn tokens(headers: &HeaderMap, name: &header::HeaderName) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect()
}

/// Upstream's wsstream.IsWebSocketRequest: `Upgrade: websocket` and a Connection header
/// naming `upgrade`.
pub fn is_websocket(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("websocket"))
        && tokens(headers, &header::CONNECTION)
            .iter()
            .any(|t| t.eq_ignore_ascii_case("upgrade"))
}

/// The subprotocols the client offers, in its order.
pub fn subprotocols(headers: &HeaderMap) -> Vec<String> {
    tokens(headers, &header::SEC_WEBSOCKET_PROTOCOL)
}

/// wsstream.IsWebSocketRequestWithStreamCloseProtocol.
pub fn wants_stream_translation(headers: &HeaderMap) -> bool {
    is_websocket(headers)
        && subprotocols(headers)
            .iter()
            .any(|p| p == STREAM_PROTOCOL_V5)
}

/// The SPDY protocols a port-forward client offers through `SPDY/3.1+…k8s.io` subprotocols.
pub fn tunneled_spdy_protocols(headers: &HeaderMap) -> Vec<String> {
    subprotocols(headers)
        .into_iter()
        .filter(|p| p.starts_with(TUNNELING_PREFIX) && p.ends_with(KUBERNETES_SUFFIX))
        .map(|p| p[TUNNELING_PREFIX.len()..].to_string())
        .collect()
}

/// wsstream.IsWebSocketRequestWithTunnelingProtocol.
pub fn wants_tunneling(headers: &HeaderMap) -> bool {
    is_websocket(headers) && !tunneled_spdy_protocols(headers).is_empty()
}

/// Checks the client's handshake as a WebSocket server must (RFC 6455 4.2.1) and returns the
/// Sec-WebSocket-Accept value; the error is the status and reason to refuse with.
pub fn accept_key(method: &Method, headers: &HeaderMap) -> Result<String, (StatusCode, String)> {
    let bad = |m: &str| (StatusCode::BAD_REQUEST, format!("websocket: {m}"));
    if method != Method::GET {
        return Err((
            StatusCode::METHOD_NOT_ALLOWED,
            "websocket: request method is not GET".into(),
        ));
    }
    if !tokens(headers, &header::SEC_WEBSOCKET_VERSION)
        .iter()
        .any(|v| v == "13")
    {
        return Err(bad(
            "unsupported version: 13 not found in 'Sec-Websocket-Version' header",
        ));
    }
    let key = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .unwrap_or("");
    use base64::Engine;
    match base64::engine::general_purpose::STANDARD.decode(key) {
        Ok(k) if k.len() == 16 => {
            Ok(tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes()))
        }
        _ => Err(bad(
            "not a websocket handshake: 'Sec-WebSocket-Key' header must be Base64 encoded value of 16-byte in length",
        )),
    }
}

/// [`accept_key`], with a refusal already turned into the plain-text answer Go's WebSocket
/// servers give (`what` names the request in the log).
pub fn handshake(req: &axum::extract::Request, what: &str) -> Result<String, Response> {
    accept_key(req.method(), req.headers()).map_err(|(status, msg)| {
        tracing::debug!(error = %msg, "refusing a WebSocket {what}");
        plain(status, status.canonical_reason().unwrap_or(""))
    })
}

/// The server side of an accepted WebSocket.
pub type ServerSocket =
    tokio_tungstenite::WebSocketStream<hyper_util::rt::TokioIo<hyper::upgrade::Upgraded>>;

/// Runs `f` in the background on the WebSocket once the client's upgrade completes (the
/// caller answers 101 meanwhile).
pub fn on_upgraded<F, Fut>(req: &mut axum::extract::Request, f: F)
where
    F: FnOnce(ServerSocket) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let upgrade = hyper::upgrade::on(req);
    tokio::spawn(async move {
        match upgrade.await {
            Ok(io) => {
                let ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
                    hyper_util::rt::TokioIo::new(io),
                    tokio_tungstenite::tungstenite::protocol::Role::Server,
                    None,
                )
                .await;
                f(ws).await;
            }
            Err(e) => tracing::debug!(error = %e, "WebSocket upgrade failed"),
        }
    });
}

/// The 101 that completes the server side of the handshake.
pub fn switching_protocols(accept: &str, protocol: Option<&str>) -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(v) = HeaderValue::from_str(accept) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    if let Some(v) = protocol.and_then(|p| HeaderValue::from_str(p).ok()) {
        h.insert(header::SEC_WEBSOCKET_PROTOCOL, v);
    }
    r
}

/// A plain-text refusal, as Go's http.Error writes it.
pub fn plain(status: StatusCode, msg: &str) -> Response {
    let mut r = Response::new(Body::from(format!("{msg}\n")));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r.headers_mut().insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    r
}

static TRANSLATOR_REQUESTS: Mutex<BTreeMap<u16, u64>> = Mutex::new(BTreeMap::new());
static TUNNEL_REQUESTS: Mutex<BTreeMap<u16, u64>> = Mutex::new(BTreeMap::new());

fn count(m: &Mutex<BTreeMap<u16, u64>>, code: u16) {
    *m.lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(code)
        .or_default() += 1;
}

/// `apiserver_stream_translator_requests_total` and `apiserver_stream_tunnel_requests_total`.
pub fn render_metrics(out: &mut String) {
    for (name, help, m) in [
        (
            "apiserver_stream_translator_requests_total",
            "Total number of requests that were handled by the StreamTranslatorProxy, which processes streaming RemoteCommand/V5",
            &TRANSLATOR_REQUESTS,
        ),
        (
            "apiserver_stream_tunnel_requests_total",
            "Total number of requests that were handled by the StreamTunnelProxy, which processes streaming PortForward/V2",
            &TUNNEL_REQUESTS,
        ),
    ] {
        let counts = m.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let _ = writeln!(out, "# HELP {name} [ALPHA] {help}");
        let _ = writeln!(out, "# TYPE {name} counter");
        for (code, n) in counts {
            let _ = writeln!(out, "{name}{{code=\"{code}\"}} {n}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn detection() {
        let ws = headers(&[
            ("connection", "keep-alive, Upgrade"),
            ("upgrade", "WebSocket"),
            (
                "sec-websocket-protocol",
                "v4.channel.k8s.io, v5.channel.k8s.io",
            ),
        ]);
        assert!(is_websocket(&ws));
        assert!(wants_stream_translation(&ws));
        assert!(!wants_tunneling(&ws));
        let v4 = headers(&[
            ("connection", "Upgrade"),
            ("upgrade", "websocket"),
            ("sec-websocket-protocol", "v4.channel.k8s.io"),
        ]);
        assert!(!wants_stream_translation(&v4));
        let spdy = headers(&[
            ("connection", "Upgrade"),
            ("upgrade", "SPDY/3.1"),
            ("sec-websocket-protocol", "v5.channel.k8s.io"),
        ]);
        assert!(!wants_stream_translation(&spdy));
        let pf = headers(&[
            ("connection", "Upgrade"),
            ("upgrade", "websocket"),
            ("sec-websocket-protocol", "SPDY/3.1+portforward.k8s.io"),
            ("sec-websocket-protocol", "SPDY/3.1+other.example.com"),
        ]);
        assert!(wants_tunneling(&pf));
        assert_eq!(tunneled_spdy_protocols(&pf), vec!["portforward.k8s.io"]);
    }

    #[test]
    fn handshake_checks() {
        // RFC 6455's example key.
        let good = headers(&[
            ("sec-websocket-version", "13"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ]);
        assert_eq!(
            accept_key(&Method::GET, &good).unwrap(),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        assert_eq!(
            accept_key(&Method::POST, &good).unwrap_err().0,
            StatusCode::METHOD_NOT_ALLOWED
        );
        let old = headers(&[
            ("sec-websocket-version", "8"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ]);
        assert!(
            accept_key(&Method::GET, &old)
                .unwrap_err()
                .1
                .contains("unsupported version")
        );
        let short = headers(&[
            ("sec-websocket-version", "13"),
            ("sec-websocket-key", "YWJj"),
        ]);
        assert_eq!(
            accept_key(&Method::GET, &short).unwrap_err().0,
            StatusCode::BAD_REQUEST
        );
    }

    #[test]
    fn metrics_render_by_code() {
        count(&TUNNEL_REQUESTS, 101);
        let mut s = String::new();
        render_metrics(&mut s);
        assert!(s.contains("# TYPE apiserver_stream_translator_requests_total counter"));
        assert!(s.contains("apiserver_stream_tunnel_requests_total{code=\"101\"}"));
    }
}
