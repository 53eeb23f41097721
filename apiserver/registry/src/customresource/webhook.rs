//! The HTTPS client of a conversion webhook (mirrors apiserver pkg/util/webhook client.go
//! `HookClient` and the client-go REST client it builds): `clientConfig.url`, or
//! `clientConfig.service` (port 443 by default) dialed at a ready endpoint and verified as
//! `<name>.<namespace>.svc`; the server verified against `caBundle` (the system roots without
//! one); HTTP/1.1 with kept-alive connections; a 30 s timeout sent as `?timeout=30s`; errors
//! worded as client-go words them (`Post "<url>": ...`, status errors by code).

use super::resolver::{ServiceResolver, join_host_port};
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::OnceCell;

/// Upstream's default webhook request timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Idle connections kept per webhook.
const MAX_IDLE: usize = 4;

/// Where requests go.
enum Endpoint {
    Url {
        /// `host:port` to dial.
        addr: String,
        /// The TLS server name (host of the URL).
        server_name: String,
        /// `scheme://host[:port]` as written, for the request URL.
        base: String,
        path: String,
    },
    Service {
        namespace: String,
        name: String,
        port: i32,
        path: String,
    },
}

pub struct WebhookClient {
    endpoint: Endpoint,
    ca: Option<Vec<CertificateDer<'static>>>,
    tls: OnceCell<Arc<rustls::ClientConfig>>,
    resolver: Arc<dyn ServiceResolver>,
    timeout: Duration,
    idle: Mutex<Vec<(String, SendRequest<Full<Bytes>>)>>,
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

/// Go's `%q` of a string (close enough for messages).
fn quote(s: &str) -> String {
    format!("{s:?}")
}

/// The message client-go gives a non-2xx answer that is not a `Status`
/// (apimachinery's `NewGenericServerResponse`).
pub fn status_error(code: u16, server_message: &str) -> String {
    match code {
        409 => "the server reported a conflict".into(),
        404 => "the server could not find the requested resource".into(),
        400 => "the server rejected our request for an unknown reason".into(),
        401 => "the server has asked for the client to provide credentials".into(),
        403 | 415 => server_message.into(),
        406 if server_message.is_empty() || server_message == "unknown" => {
            "the server was unable to respond with a content type that the client supports".into()
        }
        406 => server_message.into(),
        405 => "the server does not allow this method on the requested resource".into(),
        422 => "the server rejected our request due to an error in our request".into(),
        503 => "the server is currently unable to handle the request".into(),
        504 => "the server was unable to return a response in the time allotted, but may still be processing the request".into(),
        429 => "the server has received too many requests and has asked us to try again later".into(),
        c if c >= 500 => format!(
            "an error on the server ({}) has prevented the request from succeeding",
            quote(server_message)
        ),
        c => format!("the server responded with the status code {c} but did not return more information"),
    }
}

/// A duration as Go's `time.Duration.String` prints it (`30s`, `1m30s`, `300ms`).
fn go_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let secs = d.as_secs();
    let frac = d.subsec_millis();
    let s = if frac == 0 {
        format!("{}s", secs % 60)
    } else {
        let n = format!("{}.{:03}", secs % 60, frac);
        format!("{}s", n.trim_end_matches('0'))
    };
    match (secs / 3600, (secs / 60) % 60) {
        (0, 0) => s,
        (0, m) => format!("{m}m{s}"),
        (h, m) => format!("{h}h{m}m{s}"),
    }
}

fn dial_error(addr: &str, e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => {
            format!("dial tcp {addr}: connect: connection refused")
        }
        _ => format!("dial tcp {addr}: {e}"),
    }
}

fn tls_error(server_name: &str, e: &std::io::Error) -> String {
    use rustls::CertificateError as C;
    let verify = |why: &str| format!("tls: failed to verify certificate: x509: {why}");
    match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        Some(rustls::Error::InvalidCertificate(c)) => match c {
            // A CA of the same name that did not sign the certificate is unknown too.
            C::UnknownIssuer | C::BadSignature => verify("certificate signed by unknown authority"),
            C::NotValidForName | C::NotValidForNameContext { .. } => {
                verify(&format!("certificate is not valid for {server_name}"))
            }
            C::Expired
            | C::NotValidYet
            | C::ExpiredContext { .. }
            | C::NotValidYetContext { .. } => verify("certificate has expired or is not yet valid"),
            other => verify(&format!("{other:?}")),
        },
        Some(other) => format!("remote error: tls: {other}"),
        None => e.to_string(),
    }
}

/// The system trust store, loaded once (off the async threads).
async fn native_roots() -> Arc<rustls::RootCertStore> {
    static ROOTS: OnceCell<Arc<rustls::RootCertStore>> = OnceCell::const_new();
    ROOTS
        .get_or_init(|| async {
            let certs =
                tokio::task::spawn_blocking(|| rustls_native_certs::load_native_certs().certs)
                    .await
                    .unwrap_or_default();
            let mut roots = rustls::RootCertStore::empty();
            let _ = roots.add_parsable_certificates(certs);
            Arc::new(roots)
        })
        .await
        .clone()
}

impl WebhookClient {
    /// A client for a CRD's `spec.conversion.webhook.clientConfig`.
    pub fn new(client_config: &Value, resolver: Arc<dyn ServiceResolver>) -> Result<Self, String> {
        let ca = match apiserver_apiextensions::conversion::ca_bundle(client_config) {
            Some(pem) if !pem.is_empty() => {
                let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
                    .filter_map(Result::ok)
                    .collect();
                if certs.is_empty() {
                    return Err(apiserver_apiextensions::conversion::ca_bundle_error(&pem)
                        .unwrap_or_else(|| "unable to load root certificates".into()));
                }
                Some(certs)
            }
            _ => None,
        };
        let endpoint = match (
            client_config.get("url").and_then(Value::as_str),
            client_config.get("service"),
        ) {
            (Some(u), _) => {
                let url = url::Url::parse(u).map_err(|e| format!("Unparsable URL: {e}"))?;
                if url.scheme() != "https" {
                    return Err(format!("unsupported protocol scheme {:?}", url.scheme()));
                }
                let written = url.host_str().ok_or("webhook URL has no host")?;
                let host = written
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_string();
                let port = url.port_or_known_default().unwrap_or(443);
                let base = match url.port() {
                    Some(p) => format!("https://{written}:{p}"),
                    None => format!("https://{written}"),
                };
                Endpoint::Url {
                    addr: join_host_port(&host, i32::from(port)),
                    server_name: host,
                    base,
                    path: url.path().to_string(),
                }
            }
            (None, Some(svc)) if svc.is_object() => Endpoint::Service {
                namespace: s(svc, "namespace").into(),
                name: s(svc, "name").into(),
                port: svc
                    .get("port")
                    .and_then(Value::as_i64)
                    .and_then(|p| i32::try_from(p).ok())
                    .unwrap_or(443),
                path: s(svc, "path").into(),
            },
            _ => return Err("webhook configuration must have either service or URL".into()),
        };
        Ok(WebhookClient {
            endpoint,
            ca,
            tls: OnceCell::new(),
            resolver,
            timeout: DEFAULT_TIMEOUT,
            idle: Mutex::new(Vec::new()),
        })
    }

    /// Overrides the request timeout (tests).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    fn server_name(&self) -> String {
        match &self.endpoint {
            Endpoint::Url { server_name, .. } => server_name.clone(),
            Endpoint::Service {
                namespace, name, ..
            } => format!("{name}.{namespace}.svc"),
        }
    }

    fn path_and_query(&self) -> String {
        let path = match &self.endpoint {
            Endpoint::Url { path, .. } | Endpoint::Service { path, .. } => path.as_str(),
        };
        let path = if path.is_empty() { "/" } else { path };
        format!("{path}?timeout={}", go_duration(self.timeout))
    }

    fn authority(&self) -> String {
        match &self.endpoint {
            Endpoint::Url { base, .. } => base.trim_start_matches("https://").to_string(),
            Endpoint::Service { port, .. } => join_host_port(&self.server_name(), *port),
        }
    }

    /// The URL requests are sent to, as errors print it.
    pub fn url(&self) -> String {
        format!("https://{}{}", self.authority(), self.path_and_query())
    }

    async fn tls_config(&self) -> Arc<rustls::ClientConfig> {
        self.tls
            .get_or_init(|| async {
                let roots = match &self.ca {
                    Some(certs) => {
                        let mut r = rustls::RootCertStore::empty();
                        let _ = r.add_parsable_certificates(certs.iter().cloned());
                        r
                    }
                    None => native_roots().await.as_ref().clone(),
                };
                let provider = Arc::new(rustls::crypto::ring::default_provider());
                let mut cfg = match rustls::ClientConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                {
                    Ok(b) => b.with_root_certificates(roots).with_no_client_auth(),
                    Err(_) => rustls::ClientConfig::builder()
                        .with_root_certificates(rustls::RootCertStore::empty())
                        .with_no_client_auth(),
                };
                cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
                Arc::new(cfg)
            })
            .await
            .clone()
    }

    async fn dial_addr(&self) -> Result<String, String> {
        match &self.endpoint {
            Endpoint::Url { addr, .. } => Ok(addr.clone()),
            Endpoint::Service {
                namespace,
                name,
                port,
                ..
            } => self.resolver.resolve(namespace, name, *port).await,
        }
    }

    async fn connect(&self, addr: &str) -> Result<SendRequest<Full<Bytes>>, String> {
        let tcp = TcpStream::connect(addr)
            .await
            .map_err(|e| dial_error(addr, &e))?;
        let server_name = self.server_name();
        let name = ServerName::try_from(server_name.clone()).map_err(|e| e.to_string())?;
        let tls = tokio_rustls::TlsConnector::from(self.tls_config().await)
            .connect(name, tcp)
            .await
            .map_err(|e| tls_error(&server_name, &e))?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender)
    }

    fn take_idle(&self, addr: &str) -> Option<SendRequest<Full<Bytes>>> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        while let Some(i) = idle.iter().position(|(a, _)| a == addr) {
            let (_, sender) = idle.swap_remove(i);
            if sender.is_ready() {
                return Some(sender);
            }
        }
        None
    }

    fn put_idle(&self, addr: String, sender: SendRequest<Full<Bytes>>) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < MAX_IDLE && !sender.is_closed() {
            idle.push((addr, sender));
        }
    }

    fn request(&self, body: &Bytes) -> Result<Request<Full<Bytes>>, String> {
        Request::builder()
            .method(Method::POST)
            .uri(self.path_and_query())
            .header(http::header::HOST, self.authority())
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::ACCEPT, "application/json, */*")
            .header(http::header::USER_AGENT, "kube-apiserver")
            .body(Full::new(body.clone()))
            .map_err(|e| e.to_string())
    }

    /// Sends one request; a kept-alive connection that turns out closed is replaced once.
    async fn exchange(&self, body: Bytes) -> Result<(StatusCode, String, Bytes), String> {
        let addr = self.dial_addr().await?;
        let mut pooled = self.take_idle(&addr);
        loop {
            let reused = pooled.is_some();
            let mut sender = match pooled.take() {
                Some(s) => s,
                None => self.connect(&addr).await?,
            };
            let resp = match sender.send_request(self.request(&body)?).await {
                Ok(r) => r,
                Err(_) if reused => continue,
                Err(e) => return Err(e.to_string()),
            };
            let status = resp.status();
            let ct = resp
                .headers()
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            let bytes = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes();
            self.put_idle(addr, sender);
            return Ok((status, ct, bytes));
        }
    }

    /// POSTs `body` (JSON) and returns the decoded JSON answer of a 2xx response.
    pub async fn post_json(&self, body: Vec<u8>) -> Result<Value, String> {
        let sent = tokio::time::timeout(self.timeout, self.exchange(Bytes::from(body))).await;
        let (status, ct, bytes) = match sent {
            Err(_) => {
                return Err(format!(
                    "Post {}: context deadline exceeded",
                    quote(&self.url())
                ));
            }
            Ok(Err(e)) => return Err(format!("Post {}: {e}", quote(&self.url()))),
            Ok(Ok(r)) => r,
        };
        if !status.is_success() {
            if let Ok(v) = serde_json::from_slice::<Value>(&bytes)
                && s(&v, "kind") == "Status"
            {
                return Err(s(&v, "message").to_string());
            }
            let media = ct.split(';').next().unwrap_or("").trim();
            let message = if media == "text/plain" {
                String::from_utf8_lossy(&bytes).trim().to_string()
            } else {
                "unknown".to_string()
            };
            return Err(status_error(status.as_u16(), &message));
        }
        if bytes.is_empty() {
            return Err(format!(
                "0-length response with status code: {} and content type: {ct}",
                status.as_u16()
            ));
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| format!("couldn't get version/kind; json parse error: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use serde_json::json;

    struct Fixed(Result<String, String>);

    #[async_trait]
    impl ServiceResolver for Fixed {
        async fn resolve(&self, _: &str, _: &str, _: i32) -> Result<String, String> {
            self.0.clone()
        }
    }

    #[test]
    fn urls_follow_the_client_config() {
        let r: Arc<dyn ServiceResolver> = Arc::new(Fixed(Err("x".into())));
        let c = WebhookClient::new(&json!({"url": "https://127.0.0.1:9443/convert"}), r.clone())
            .unwrap();
        assert_eq!(c.url(), "https://127.0.0.1:9443/convert?timeout=30s");
        assert_eq!(c.server_name(), "127.0.0.1");
        let c = WebhookClient::new(
            &json!({"service": {"namespace": "ns", "name": "conv", "path": "/crd"}}),
            r.clone(),
        )
        .unwrap();
        assert_eq!(c.url(), "https://conv.ns.svc:443/crd?timeout=30s");
        assert_eq!(c.server_name(), "conv.ns.svc");
        assert_eq!(
            WebhookClient::new(&json!({}), r.clone()).err().as_deref(),
            Some("webhook configuration must have either service or URL")
        );
        assert_eq!(
            WebhookClient::new(&json!({"url": "https://a", "caBundle": "bm8="}), r)
                .err()
                .as_deref(),
            Some("unable to load root certificates: unable to parse bytes as PEM block")
        );
    }

    #[tokio::test]
    async fn resolution_and_dial_errors_name_the_url() {
        let r: Arc<dyn ServiceResolver> = Arc::new(Fixed(Err(
            "no endpoints available for service \"conv\"".into(),
        )));
        let c = WebhookClient::new(&json!({"service": {"namespace": "ns", "name": "conv"}}), r)
            .unwrap();
        assert_eq!(
            c.post_json(b"{}".to_vec()).await,
            Err(r#"Post "https://conv.ns.svc:443/?timeout=30s": no endpoints available for service "conv""#.into())
        );
        // A loopback port nothing listens on.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        let r: Arc<dyn ServiceResolver> = Arc::new(Fixed(Ok(format!("127.0.0.1:{port}"))));
        let c = WebhookClient::new(
            &json!({"service": {"namespace": "ns", "name": "conv", "port": 8443}}),
            r,
        )
        .unwrap();
        assert_eq!(
            c.post_json(b"{}".to_vec()).await,
            Err(format!(
                "Post \"https://conv.ns.svc:8443/?timeout=30s\": dial tcp 127.0.0.1:{port}: connect: connection refused"
            ))
        );
    }

    #[test]
    fn durations_print_as_go() {
        assert_eq!(go_duration(Duration::from_secs(30)), "30s");
        assert_eq!(go_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(go_duration(Duration::from_millis(300)), "300ms");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(go_duration(Duration::from_secs(3600)), "1h0m0s");
    }

    #[test]
    fn status_errors_follow_client_go() {
        assert_eq!(
            status_error(400, "x"),
            "the server rejected our request for an unknown reason"
        );
        assert_eq!(
            status_error(500, "boom"),
            "an error on the server (\"boom\") has prevented the request from succeeding"
        );
        assert_eq!(status_error(403, "denied"), "denied");
    }
}
