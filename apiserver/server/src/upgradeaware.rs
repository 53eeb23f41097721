//! The upgrade-aware proxy towards kubelets: upgrade requests get the backend's 101 and a
//! byte tunnel between the two upgraded connections (any error answer is passed through so the
//! client can fall back), other requests are forwarded with their bodies streamed both ways.
//! Mirrors apimachinery/pkg/util/proxy/upgradeaware.go and Go's httputil.ReverseProxy.

use crate::kubelet_client::{KubeletClient, Location};
use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use http::StatusCode;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use tokio::io::AsyncWriteExt;

/// The client's address, attached to each request by the connection (for X-Forwarded-For).
#[derive(Clone, Copy, Debug)]
pub struct PeerAddr(pub SocketAddr);

/// Upstream's httpstream.IsUpgradeRequest: a Connection header mentioning "upgrade".
pub fn is_upgrade_request(headers: &HeaderMap) -> bool {
    headers.get_all(header::CONNECTION).iter().any(|v| {
        String::from_utf8_lossy(v.as_bytes())
            .to_ascii_lowercase()
            .contains("upgrade")
    })
}

/// Credentials of the client are not passed on (upstream's authentication and impersonation
/// filters drop them once they have been used).
pub fn strip_credentials(h: &mut HeaderMap) {
    h.remove(header::AUTHORIZATION);
    let impersonation: Vec<HeaderName> = h
        .keys()
        .filter(|k| k.as_str().starts_with("impersonate-"))
        .cloned()
        .collect();
    for k in impersonation {
        h.remove(k);
    }
}

pub fn append_forwarded_for(h: &mut HeaderMap, peer: Option<SocketAddr>) {
    let Some(peer) = peer else { return };
    let ip = peer.ip().to_string();
    let value = match h.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(prior) => format!("{prior}, {ip}"),
        None => ip,
    };
    if let Ok(v) = HeaderValue::from_str(&value) {
        h.insert("x-forwarded-for", v);
    }
}

/// Hop-by-hop headers (and those the Connection header names), dropped by a reverse proxy.
pub fn remove_hop_by_hop(h: &mut HeaderMap) {
    let named: Vec<String> = h
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|s| s.trim().to_ascii_lowercase()))
        .filter(|s| !s.is_empty())
        .collect();
    for n in named {
        h.remove(n.as_str());
    }
    for n in [
        "connection",
        "proxy-connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    ] {
        h.remove(n);
    }
}

/// Sends an upgrade request to `loc`; a 101 is returned to the client with the kubelet's
/// headers and the two upgraded connections are then joined; an error answer (>= 400) is passed
/// through as is so the client can fall back (e.g. from WebSocket to SPDY).
pub async fn proxy_upgrade(
    kubelet: &KubeletClient,
    loc: &Location,
    insecure: bool,
    path_and_query: &str,
    mut req: Request,
) -> Result<Response, String> {
    let client_upgrade = hyper::upgrade::on(&mut req);
    let peer = req.extensions().get::<PeerAddr>().map(|p| p.0);
    let mut headers = req.headers().clone();
    strip_credentials(&mut headers);
    headers.remove(header::CONTENT_LENGTH);
    headers.remove(header::TRANSFER_ENCODING);
    append_forwarded_for(&mut headers, peer);
    if !headers.contains_key(header::HOST) {
        if let Ok(v) = HeaderValue::from_str(&loc.authority()) {
            headers.insert(header::HOST, v);
        }
    }
    let mut kreq = http::Request::builder()
        .method(req.method().clone())
        .uri(path_and_query)
        .body(Body::empty())
        .map_err(|e| e.to_string())?;
    *kreq.headers_mut() = headers;
    let mut resp = kubelet
        .send(loc, insecure, kreq)
        .await
        .map_err(|e| format!("error dialing backend: {e}"))?;
    let status = resp.status();
    if status == StatusCode::SWITCHING_PROTOCOLS {
        let backend_upgrade = hyper::upgrade::on(&mut resp);
        let mut out = Response::new(Body::empty());
        *out.status_mut() = status;
        *out.headers_mut() = resp.headers().clone();
        tokio::spawn(tunnel(client_upgrade, backend_upgrade));
        return Ok(out);
    }
    if status.as_u16() < 400 {
        return Err(format!(
            "invalid upgrade response: status code {}",
            status.as_u16()
        ));
    }
    let (mut parts, body) = resp.into_parts();
    parts.headers.remove(header::TRANSFER_ENCODING);
    parts.headers.remove(header::CONNECTION);
    Ok(Response::from_parts(parts, Body::new(body)))
}

/// Copies bytes both ways until either side is done, then closes both (as upstream).
async fn tunnel(client: OnUpgrade, backend: OnUpgrade) {
    let (client, backend) = match tokio::join!(client, backend) {
        (Ok(c), Ok(b)) => (c, b),
        (c, b) => {
            tracing::debug!(
                client_ok = c.is_ok(),
                backend_ok = b.is_ok(),
                "upgrade failed"
            );
            return;
        }
    };
    let (mut cr, mut cw) = tokio::io::split(TokioIo::new(client));
    let (mut br, mut bw) = tokio::io::split(TokioIo::new(backend));
    tokio::select! {
        _ = tokio::io::copy(&mut cr, &mut bw) => {}
        _ = tokio::io::copy(&mut br, &mut cw) => {}
    }
    let _ = cw.shutdown().await;
    let _ = bw.shutdown().await;
}

/// Forwards a non-upgrade request to `path_and_query` at `loc` (hop-by-hop headers and client
/// credentials dropped, X-Forwarded-For appended) and streams the answer back. The error is
/// the Go-style text of a failed exchange.
pub async fn forward(
    kubelet: &KubeletClient,
    loc: &Location,
    insecure: bool,
    path_and_query: &str,
    req: Request,
) -> Result<Response, String> {
    let peer = req.extensions().get::<PeerAddr>().map(|p| p.0);
    let (parts, body) = req.into_parts();
    let mut headers = parts.headers;
    remove_hop_by_hop(&mut headers);
    strip_credentials(&mut headers);
    append_forwarded_for(&mut headers, peer);
    if !headers.contains_key(header::HOST) {
        if let Ok(v) = HeaderValue::from_str(&loc.authority()) {
            headers.insert(header::HOST, v);
        }
    }
    let mut kreq = http::Request::builder()
        .method(parts.method)
        .uri(path_and_query)
        .body(body)
        .map_err(|e| e.to_string())?;
    *kreq.headers_mut() = headers;
    let resp = kubelet.send(loc, insecure, kreq).await.map_err(|e| e.0)?;
    let (mut parts, body) = resp.into_parts();
    remove_hop_by_hop(&mut parts.headers);
    Ok(Response::from_parts(parts, Body::new(body)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upgrade_detection_and_header_hygiene() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, Upgrade"),
        );
        assert!(is_upgrade_request(&h));
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("close, x-custom"),
        );
        h.insert("x-custom", HeaderValue::from_static("1"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer t"));
        h.insert("impersonate-user", HeaderValue::from_static("bob"));
        h.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        assert!(!is_upgrade_request(&h));
        remove_hop_by_hop(&mut h);
        strip_credentials(&mut h);
        append_forwarded_for(&mut h, Some("10.0.0.9:5555".parse().unwrap()));
        append_forwarded_for(&mut h, Some("10.0.0.8:5555".parse().unwrap()));
        let mut names: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        names.sort();
        assert_eq!(names, vec!["accept", "x-forwarded-for"]);
        assert_eq!(h["x-forwarded-for"], "10.0.0.9, 10.0.0.8");
    }
}
