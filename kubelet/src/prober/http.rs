//! HTTP probes: a GET healthy on 200..400, HTTPS without certificate checks, redirects followed
//! on the same host only (upstream `pkg/probe/http/http.go` and `request.go`).

use super::probe::{Outcome, Verdict, join_host_port, resolve_port};
use super::tcp;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::{Container, HTTPGetAction};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;
use url::Url;

/// Upstream keeps at most 10 KiB of a response body.
pub(crate) const MAX_BODY: usize = 10 * 1024;
/// `kube-probe/<major>.<minor>`, unless the probe sets its own User-Agent.
pub(crate) const USER_AGENT: &str = "kube-probe/1.37";
const MAX_REDIRECTS: usize = 10;

/// A probe request built from an httpGet action.
#[derive(Clone, Debug)]
pub(crate) struct ProbeRequest {
    /// None when the host is empty (no pod IP yet): the request fails as Go's does.
    url: Option<Url>,
    /// The URL as Go prints it in errors.
    shown: String,
    /// The Host header of the first request.
    host: Option<String>,
    /// Headers in order (User-Agent and Accept defaults applied, Host taken out).
    headers: Vec<(String, String)>,
}

/// Builds the request: scheme (default HTTP), host (default the pod IP), named ports,
/// path and headers, with upstream's User-Agent and `Accept: */*` defaults.
pub(crate) fn request_for(
    action: &HTTPGetAction,
    container: &Container,
    pod_ip: &str,
) -> Result<ProbeRequest, String> {
    let scheme = action
        .scheme
        .as_deref()
        .filter(|s| !s.is_empty())
        .unwrap_or("HTTP")
        .to_ascii_lowercase();
    let host = action
        .host
        .as_deref()
        .filter(|h| !h.is_empty())
        .unwrap_or(pod_ip);
    let port = resolve_port(&action.port, container)?;
    let mut path = action.path.clone().unwrap_or_default();
    if !path.is_empty() && !path.starts_with('/') && !path.starts_with('?') {
        path.insert(0, '/');
    }
    let shown = format!("{scheme}://{}{path}", join_host_port(host, port));
    let url = if host.is_empty() {
        None
    } else {
        Some(Url::parse(&shown).map_err(|e| format!("parse {shown:?}: {e}"))?)
    };

    let mut headers: Vec<(String, String)> = action
        .http_headers
        .iter()
        .flatten()
        .map(|h| (h.name.clone(), h.value.clone()))
        .collect();
    let first = |headers: &[(String, String)], name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    // Only the first User-Agent is sent, and none when it is empty.
    let agent = first(&headers, "User-Agent").unwrap_or_else(|| USER_AGENT.to_string());
    match first(&headers, "Accept") {
        None => headers.push(("Accept".into(), "*/*".into())),
        Some(v) if v.is_empty() => headers.retain(|(n, _)| !n.eq_ignore_ascii_case("Accept")),
        Some(_) => {}
    }
    // Go sends the URL's host:port (port included even when it is the scheme's default)
    // unless the probe sets a Host header.
    let host_header = first(&headers, "Host")
        .filter(|h| !h.is_empty())
        .or_else(|| (!host.is_empty()).then(|| join_host_port(host, port)));
    headers
        .retain(|(n, _)| !n.eq_ignore_ascii_case("Host") && !n.eq_ignore_ascii_case("User-Agent"));
    if !agent.is_empty() {
        headers.insert(0, ("User-Agent".into(), agent));
    }
    Ok(ProbeRequest {
        url,
        shown,
        host: host_header,
        headers,
    })
}

pub(crate) struct HttpProber {
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl HttpProber {
    pub(crate) fn new() -> HttpProber {
        HttpProber {
            tls: insecure_tls_config(vec![]),
        }
    }

    /// GETs the URL, following same-host redirects, all within `timeout`.
    pub(crate) async fn probe(&self, req: &ProbeRequest, timeout: Duration) -> Outcome {
        let deadline = Instant::now() + timeout;
        let Some(first) = req.url.clone() else {
            return Outcome::failure(format!("Get {:?}: http: no Host in request URL", req.shown));
        };
        let mut url = first.clone();
        let mut shown = req.shown.clone();
        let mut host = req.host.clone();
        let mut hops = 0;
        let resp = loop {
            let resp = match self
                .send(&url, host.as_deref(), &req.headers, deadline)
                .await
            {
                Ok(r) => r,
                Err(e) => return Outcome::failure(format!("Get {shown:?}: {e}")),
            };
            let code = resp.status().as_u16();
            let location = resp
                .headers()
                .get(hyper::header::LOCATION)
                .map(|l| String::from_utf8_lossy(l.as_bytes()).into_owned());
            let Some(loc) = location.filter(|_| matches!(code, 301 | 302 | 303 | 307 | 308)) else {
                break resp;
            };
            let next = match url.join(&loc) {
                Ok(u) => u,
                Err(e) => {
                    return Outcome::failure(format!(
                        "Get {shown:?}: failed to parse Location header {loc:?}: {e}"
                    ));
                }
            };
            // A redirect elsewhere ends here: the 3xx is the answer (a warning).
            if next.host_str() != first.host_str() {
                break resp;
            }
            hops += 1;
            if hops >= MAX_REDIRECTS {
                return Outcome::failure(format!("Get {loc:?}: stopped after 10 redirects"));
            }
            // A Host header set by the probe is kept only through relative redirects.
            if Url::parse(&loc).is_ok() {
                host = None;
            } else {
                host = req.host.clone();
            }
            shown = next.as_str().to_string();
            url = next;
        };

        let code = resp.status().as_u16();
        let body = match tokio::time::timeout_at(deadline, read_body(resp.into_body())).await {
            Ok(Ok(b)) => b,
            Ok(Err(e)) => return Outcome::error(Verdict::Failure, e),
            Err(_) => {
                return Outcome::error(
                    Verdict::Failure,
                    "context deadline exceeded (Client.Timeout or context cancellation while reading body)",
                );
            }
        };
        let body = String::from_utf8_lossy(&body).into_owned();
        match code {
            200..=299 => Outcome::success(body),
            300..=399 => {
                Outcome::warning(format!("Probe terminated redirects, Response body: {body}"))
            }
            _ => Outcome::failure(format!("HTTP probe failed with statuscode: {code}")),
        }
    }

    /// One request on a fresh connection; errors read like Go's transport errors.
    async fn send(
        &self,
        url: &Url,
        host: Option<&str>,
        headers: &[(String, String)],
        deadline: Instant,
    ) -> Result<hyper::Response<Incoming>, String> {
        let hostname = match url.host() {
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            Some(h) => h.to_string(),
            None => return Err("http: no Host in request URL".into()),
        };
        let port = url.port_or_known_default().unwrap_or(80);
        let authority = match url.port() {
            Some(p) => join_host_port(&hostname, p),
            None if hostname.contains(':') => format!("[{hostname}]"),
            None => hostname.clone(),
        };
        let mut target = url.path().to_string();
        if let Some(q) = url.query() {
            target.push('?');
            target.push_str(q);
        }
        let mut b =
            hyper::Request::get(target).header(hyper::header::HOST, host.unwrap_or(&authority));
        for (n, v) in headers {
            let name = hyper::header::HeaderName::from_bytes(n.as_bytes())
                .map_err(|_| format!("net/http: invalid header field name {n:?}"))?;
            let value = hyper::header::HeaderValue::from_str(v)
                .map_err(|_| format!("net/http: invalid header field value for {n:?}"))?;
            b = b.header(name, value);
        }
        let request = b
            .header(hyper::header::CONNECTION, "close")
            .body(Empty::<Bytes>::new())
            .map_err(|e| e.to_string())?;

        let connected = AtomicBool::new(false);
        let exchange = async {
            let stream = tcp::dial(&hostname, port).await?;
            if url.scheme() == "https" {
                let Some(tls) = &self.tls else {
                    return Err("tls: no usable TLS configuration".to_string());
                };
                let name =
                    ServerName::try_from(hostname.clone()).map_err(|e| format!("tls: {e}"))?;
                let stream = tokio_rustls::TlsConnector::from(tls.clone())
                    .connect(name, stream)
                    .await
                    .map_err(|e| tls_error(&e))?;
                connected.store(true, Ordering::Relaxed);
                roundtrip(stream, request).await
            } else {
                connected.store(true, Ordering::Relaxed);
                roundtrip(stream, request).await
            }
        };
        match tokio::time::timeout_at(deadline, exchange).await {
            Ok(r) => r,
            Err(_) if connected.load(Ordering::Relaxed) => Err(
                "context deadline exceeded (Client.Timeout exceeded while awaiting headers)".into(),
            ),
            Err(_) => Err(format!(
                "dial tcp {}: i/o timeout (Client.Timeout exceeded while awaiting headers)",
                join_host_port(&hostname, port)
            )),
        }
    }
}

async fn roundtrip<IO>(
    io: IO,
    request: hyper::Request<Empty<Bytes>>,
) -> Result<hyper::Response<Incoming>, String>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::Builder::new()
        .title_case_headers(true)
        .handshake::<_, Empty<Bytes>>(TokioIo::new(io))
        .await
        .map_err(|e| hyper_error(&e))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    sender
        .send_request(request)
        .await
        .map_err(|e| hyper_error(&e))
}

fn hyper_error(e: &hyper::Error) -> String {
    if e.is_incomplete_message() || e.is_closed() {
        "EOF".into()
    } else if e.is_parse() {
        format!("net/http: HTTP/1.x transport connection broken: malformed HTTP response: {e}")
    } else {
        e.to_string()
    }
}

fn tls_error(e: &std::io::Error) -> String {
    let msg = e.to_string();
    if msg.contains("InvalidContentType") || msg.contains("corrupt message") {
        "http: server gave HTTP response to HTTPS client".into()
    } else {
        format!("tls: {msg}")
    }
}

/// Reads at most `MAX_BODY` bytes of the body; a longer body is cut, not an error.
async fn read_body(mut body: Incoming) -> Result<Vec<u8>, String> {
    let mut buf = Vec::new();
    while buf.len() < MAX_BODY {
        match body.frame().await {
            None => break,
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    buf.extend_from_slice(&data);
                }
            }
            Some(Err(e)) => return Err(hyper_error(&e)),
        }
    }
    buf.truncate(MAX_BODY);
    Ok(buf)
}

/// A TLS client that accepts any server certificate (Go's `InsecureSkipVerify`; the handshake
/// signature is still checked). `alpn` is e.g. `[b"h2"]` for gRPC.
pub(crate) fn insecure_tls_config(alpn: Vec<Vec<u8>>) -> Option<Arc<rustls::ClientConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .ok()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(provider)))
        .with_no_client_auth();
    config.alpn_protocols = alpn;
    Some(Arc::new(config))
}

#[derive(Debug)]
struct AcceptAnyCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
#[path = "http_tests.rs"]
pub(crate) mod tests;
