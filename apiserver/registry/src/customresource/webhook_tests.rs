//! Tests of the conversion webhook client against a local HTTPS server on 127.0.0.1: TLS
//! verified against the caBundle with the service's DNS name, kept-alive connections, the
//! request line and host, and client-go's wording of TLS, timeout and status errors.

use super::resolver::ServiceResolver;
use super::webhook::WebhookClient;
use async_trait::async_trait;
use base64::Engine;
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

struct To(String);

#[async_trait]
impl ServiceResolver for To {
    async fn resolve(&self, _: &str, _: &str, _: i32) -> Result<String, String> {
        Ok(self.0.clone())
    }
}

/// What the server answers: status, content type, body; `None` never answers.
type Answer = Option<(u16, &'static str, &'static str)>;

struct TestServer {
    port: u16,
    /// PEM of the CA that signed the serving certificate.
    ca: String,
    connections: Arc<AtomicUsize>,
    /// (path and query, Host header) of each request.
    seen: Arc<Mutex<Vec<(String, String)>>>,
}

/// A CA and a serving certificate for `names`.
fn pki(names: &[&str]) -> (String, Vec<u8>, Vec<u8>) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);
    let srv =
        CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = srv.signed_by(&key, &issuer).unwrap();
    (ca.pem(), cert.der().to_vec(), key.serialize_der())
}

async fn serve(names: &[&str], answer: Answer) -> TestServer {
    let (ca, cert, key) = pki(names);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.into()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let connections = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (c, s) = (connections.clone(), seen.clone());
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            c.fetch_add(1, Ordering::SeqCst);
            let (acceptor, s) = (acceptor.clone(), s.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let s = s.clone();
                    async move {
                        let host = req
                            .headers()
                            .get("host")
                            .and_then(|h| h.to_str().ok())
                            .unwrap_or("")
                            .to_string();
                        s.lock().unwrap().push((req.uri().to_string(), host));
                        let Some((code, ct, body)) = answer else {
                            tokio::time::sleep(Duration::from_secs(3600)).await;
                            return Ok::<_, std::convert::Infallible>(Response::new(Full::new(
                                Bytes::new(),
                            )));
                        };
                        let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
                        *r.status_mut() = http::StatusCode::from_u16(code).unwrap();
                        r.headers_mut().insert("content-type", ct.parse().unwrap());
                        Ok(r)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    TestServer {
        port,
        ca,
        connections,
        seen,
    }
}

fn service_client(s: &TestServer, ca_pem: &str) -> WebhookClient {
    let cc = json!({"service": {"namespace": "ns", "name": "conv", "port": 443, "path": "/convert"},
        "caBundle": base64::engine::general_purpose::STANDARD.encode(ca_pem)});
    WebhookClient::new(&cc, Arc::new(To(format!("127.0.0.1:{}", s.port)))).unwrap()
}

#[tokio::test]
async fn service_webhook_is_verified_as_the_service_name_and_reuses_connections() {
    let s = serve(
        &["conv.ns.svc"],
        Some((200, "application/json", r#"{"ok":true}"#)),
    )
    .await;
    let c = service_client(&s, &s.ca);
    for _ in 0..3 {
        assert_eq!(c.post_json(b"{}".to_vec()).await, Ok(json!({"ok": true})));
    }
    assert_eq!(s.connections.load(Ordering::SeqCst), 1);
    let seen = s.seen.lock().unwrap().clone();
    assert_eq!(
        seen[0],
        (
            "/convert?timeout=30s".to_string(),
            "conv.ns.svc:443".to_string()
        )
    );
}

#[tokio::test]
async fn tls_failures_are_worded_as_go_does() {
    let s = serve(&["conv.ns.svc"], Some((200, "application/json", "{}"))).await;
    let (other_ca, _, _) = pki(&["conv.ns.svc"]);
    assert_eq!(
        service_client(&s, &other_ca).post_json(b"{}".to_vec()).await,
        Err("Post \"https://conv.ns.svc:443/convert?timeout=30s\": tls: failed to verify certificate: x509: certificate signed by unknown authority".into())
    );
    let wrong_name = serve(&["other.ns.svc"], Some((200, "application/json", "{}"))).await;
    assert_eq!(
        service_client(&wrong_name, &wrong_name.ca).post_json(b"{}".to_vec()).await,
        Err("Post \"https://conv.ns.svc:443/convert?timeout=30s\": tls: failed to verify certificate: x509: certificate is not valid for conv.ns.svc".into())
    );
}

#[tokio::test]
async fn timeouts_and_error_statuses() {
    let silent = serve(&["127.0.0.1"], None).await;
    let cc = json!({"url": format!("https://127.0.0.1:{}/c", silent.port),
        "caBundle": base64::engine::general_purpose::STANDARD.encode(&silent.ca)});
    let c = WebhookClient::new(&cc, Arc::new(To(String::new())))
        .unwrap()
        .with_timeout(Duration::from_millis(300));
    assert_eq!(
        c.post_json(b"{}".to_vec()).await,
        Err(format!(
            "Post \"https://127.0.0.1:{}/c?timeout=300ms\": context deadline exceeded",
            silent.port
        ))
    );
    let cases: [(Answer, Result<Value, String>); 4] = [
        (
            Some((400, "text/plain", "bad")),
            Err("the server rejected our request for an unknown reason".into()),
        ),
        (
            Some((
                500,
                "application/json",
                r#"{"kind":"Status","apiVersion":"v1","message":"webhook exploded"}"#,
            )),
            Err("webhook exploded".into()),
        ),
        (
            Some((503, "text/plain", "down")),
            Err("the server is currently unable to handle the request".into()),
        ),
        (
            Some((200, "application/json", "")),
            Err(
                "0-length response with status code: 200 and content type: application/json".into(),
            ),
        ),
    ];
    for (answer, want) in cases {
        let s = serve(&["127.0.0.1"], answer).await;
        let cc = json!({"url": format!("https://127.0.0.1:{}/c", s.port),
            "caBundle": base64::engine::general_purpose::STANDARD.encode(&s.ca)});
        let c = WebhookClient::new(&cc, Arc::new(To(String::new()))).unwrap();
        assert_eq!(c.post_json(b"{}".to_vec()).await, want);
    }
}
