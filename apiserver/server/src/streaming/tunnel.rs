//! port-forward over WebSocket (`SPDY/3.1+portforward.k8s.io`), tunnelled to the kubelet's SPDY
//! port-forward (upstream TunnelingHandler): the SPDY upgrade is made to the kubelet first; its
//! 101 turns into the WebSocket's 101 with the SPDY protocol the kubelet chose (prefixed with
//! `SPDY/3.1+`), and any other answer is passed back as it is. After that, each binary
//! message from the client is a piece of its SPDY byte stream and goes to the kubelet
//! unchanged, and what the kubelet sends goes back as binary messages.

use super::{TUNNELING_PREFIX, X_STREAM_PROTOCOL_VERSION};
use crate::kubelet_client::{KubeletClient, Location};
use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use futures::{SinkExt, StreamExt};
use http::StatusCode;
use http::header::{self, HeaderValue};
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::Role;

/// Makes the SPDY upgrade to the kubelet and answers the WebSocket handshake from its result.
pub async fn serve(
    kubelet: Arc<KubeletClient>,
    loc: Location,
    path_and_query: String,
    mut req: Request,
) -> Response {
    let protocols = super::tunneled_spdy_protocols(req.headers());
    if protocols.is_empty() {
        super::count(&super::TUNNEL_REQUESTS, 400);
        return super::plain(
            StatusCode::BAD_REQUEST,
            "unable to upgrade: no tunneling spdy protocols provided",
        );
    }
    let accept = match super::handshake(&req, "port-forward") {
        Ok(a) => a,
        Err(refusal) => {
            super::count(&super::TUNNEL_REQUESTS, 400);
            return refusal;
        }
    };
    // The SPDY request: the client's headers without the WebSocket ones, POST, no body.
    let mut headers = req.headers().clone();
    for h in [
        header::SEC_WEBSOCKET_PROTOCOL,
        header::SEC_WEBSOCKET_KEY,
        header::SEC_WEBSOCKET_VERSION,
        header::SEC_WEBSOCKET_EXTENSIONS,
        header::UPGRADE,
        header::CONTENT_LENGTH,
        header::TRANSFER_ENCODING,
    ] {
        headers.remove(h);
    }
    crate::upgradeaware::strip_credentials(&mut headers);
    headers.remove(X_STREAM_PROTOCOL_VERSION);
    for p in &protocols {
        if let Ok(v) = HeaderValue::from_str(p) {
            headers.append(X_STREAM_PROTOCOL_VERSION, v);
        }
    }
    headers.insert(header::UPGRADE, HeaderValue::from_static("SPDY/3.1"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(v) = HeaderValue::from_str(&loc.authority()) {
        headers.insert(header::HOST, v);
    }
    let mut kreq = match http::Request::builder()
        .method(http::Method::POST)
        .uri(&path_and_query)
        .body(Body::empty())
    {
        Ok(r) => r,
        Err(e) => return super::plain(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    *kreq.headers_mut() = headers;
    let mut resp = match kubelet.send(&loc, false, kreq).await {
        Ok(r) => r,
        Err(e) => {
            super::count(&super::TUNNEL_REQUESTS, 500);
            return super::plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("error dialing backend: {}", e.0),
            );
        }
    };
    if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
        // Not an upgrade: the kubelet's answer goes back as it is.
        super::count(&super::TUNNEL_REQUESTS, resp.status().as_u16());
        let (mut parts, body) = resp.into_parts();
        parts.headers.remove(header::TRANSFER_ENCODING);
        parts.headers.remove(header::CONNECTION);
        return Response::from_parts(parts, Body::new(body));
    }
    let has = |name: header::HeaderName, token: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.to_ascii_lowercase().contains(token))
    };
    if !has(header::CONNECTION, "upgrade") || !has(header::UPGRADE, "spdy/3.1") {
        super::count(&super::TUNNEL_REQUESTS, 500);
        return super::plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            "unable to upgrade: missing upgrade headers in response",
        );
    }
    let chosen = resp
        .headers()
        .get(X_STREAM_PROTOCOL_VERSION)
        .and_then(|v| v.to_str().ok())
        .map(|p| format!("{TUNNELING_PREFIX}{}", p.trim()))
        .filter(|p| p.len() > TUNNELING_PREFIX.len());
    let backend = hyper::upgrade::on(&mut resp);
    let client = hyper::upgrade::on(&mut req);
    super::count(&super::TUNNEL_REQUESTS, 101);
    tokio::spawn(async move {
        let (client, backend) = match tokio::join!(client, backend) {
            (Ok(c), Ok(b)) => (TokioIo::new(c), TokioIo::new(b)),
            (c, b) => {
                tracing::debug!(client = ?c.err(), backend = ?b.err(), "port-forward tunnel: upgrade failed");
                return;
            }
        };
        let ws = WebSocketStream::from_raw_socket(client, Role::Server, None).await;
        relay(ws, backend).await;
    });
    super::switching_protocols(&accept, chosen.as_deref())
}

/// Copies the WebSocket's binary payloads to `backend` and the backend's bytes back as binary
/// messages, until either side ends; then both are closed.
async fn relay<S, B>(mut ws: WebSocketStream<S>, mut backend: B)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    B: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        tokio::select! {
            msg = ws.next() => match msg {
                Some(Ok(Message::Binary(b))) => {
                    if backend.write_all(&b).await.is_err() || backend.flush().await.is_err() {
                        break;
                    }
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                // The tunnel carries binary messages only (client-go's TunnelingConnection).
                Some(Ok(Message::Text(_) | Message::Close(_))) | Some(Err(_)) | None => break,
            },
            n = backend.read(&mut buf) => match n {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if ws.send(Message::Binary(buf[..n].to_vec().into())).await.is_err() {
                        break;
                    }
                }
            },
        }
    }
    let _ = ws.close(None).await;
    let _ = backend.shutdown().await;
}
