//! Tests of the HTTP probe against a local server on 127.0.0.1.

use super::*;
use http_body_util::Full;
use k8s_openapi::api::core::v1::HTTPHeader;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::convert::Infallible;
use std::sync::atomic::AtomicUsize;

type Resp = hyper::Response<Full<Bytes>>;

fn resp(code: u16, body: impl Into<Bytes>) -> Resp {
    let mut r = hyper::Response::new(Full::new(body.into()));
    *r.status_mut() = hyper::StatusCode::from_u16(code).unwrap();
    r
}

fn redirect(code: u16, location: &str, body: &str) -> Resp {
    let mut r = resp(code, body.to_string());
    r.headers_mut()
        .insert(hyper::header::LOCATION, location.parse().unwrap());
    r
}

async fn handle(port: u16, hits: Arc<AtomicUsize>, req: hyper::Request<Incoming>) -> Resp {
    hits.fetch_add(1, Ordering::SeqCst);
    let path = req.uri().path().to_string();
    let header = |n: &str| {
        req.headers()
            .get_all(n)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    match path.as_str() {
        "/ok" => resp(200, "ok body"),
        "/echo" => resp(
            200,
            format!(
                "ua={};accept={};host={};x-custom={};query={}",
                header("user-agent"),
                header("accept"),
                header("host"),
                header("x-custom"),
                req.uri().query().unwrap_or("")
            ),
        ),
        "/big" => resp(200, "y".repeat(MAX_BODY * 2)),
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            resp(200, "late")
        }
        "/redirect-local" => redirect(302, "/ok", ""),
        "/redirect-absolute" => redirect(301, &format!("http://127.0.0.1:{port}/status/500"), ""),
        "/redirect-echo" => redirect(307, "/echo", ""),
        "/redirect-away" => redirect(
            302,
            "http://0.0.0.0/",
            "<a href=\"http://0.0.0.0/\">Found</a>.",
        ),
        "/loop" => redirect(302, "/loop", ""),
        "/no-location" => resp(302, "moved"),
        p if p.starts_with("/status/") => resp(p[8..].parse().unwrap(), "status body"),
        _ => resp(404, "not found"),
    }
}

/// Serves `handle` over plain HTTP (or HTTPS with `tls`) on 127.0.0.1; returns the port and
/// a request counter.
pub(crate) async fn serve(tls: Option<tokio_rustls::TlsAcceptor>) -> (u16, Arc<AtomicUsize>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else { return };
            let hits = h.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| {
                    let hits = hits.clone();
                    async move { Ok::<_, Infallible>(handle(port, hits, req).await) }
                });
                let http = hyper::server::conn::http1::Builder::new();
                match tls {
                    Some(acceptor) => {
                        if let Ok(s) = acceptor.accept(s).await {
                            let _ = http.serve_connection(TokioIo::new(s), svc).await;
                        }
                    }
                    None => {
                        let _ = http.serve_connection(TokioIo::new(s), svc).await;
                    }
                }
            });
        }
    });
    (port, hits)
}

fn action(path: &str, port: u16) -> HTTPGetAction {
    HTTPGetAction {
        path: Some(path.to_string()),
        port: IntOrString::Int(i32::from(port)),
        ..Default::default()
    }
}

async fn get(a: &HTTPGetAction, timeout: Duration) -> Outcome {
    let req = request_for(a, &Container::default(), "127.0.0.1").unwrap();
    HttpProber::new().probe(&req, timeout).await
}

const SECOND: Duration = Duration::from_secs(1);

#[tokio::test]
async fn status_codes_decide() {
    let (port, _) = serve(None).await;
    assert_eq!(
        get(&action("/ok", port), SECOND).await,
        Outcome::success("ok body")
    );
    for code in [200, 201, 204, 299] {
        let o = get(&action(&format!("/status/{code}"), port), SECOND).await;
        assert_eq!(o.verdict, Verdict::Success, "{code}");
    }
    for code in [400, 404, 500, 503] {
        let o = get(&action(&format!("/status/{code}"), port), SECOND).await;
        assert_eq!(
            o,
            Outcome::failure(format!("HTTP probe failed with statuscode: {code}"))
        );
    }
    // A 3xx that is not followed is a success with a warning.
    assert_eq!(
        get(&action("/no-location", port), SECOND).await,
        Outcome::warning("Probe terminated redirects, Response body: moved")
    );
}

#[tokio::test]
async fn default_and_custom_headers() {
    let (port, _) = serve(None).await;
    let o = get(&action("/echo?a=b", port), SECOND).await;
    assert_eq!(
        o.output,
        format!("ua=kube-probe/1.37;accept=*/*;host=127.0.0.1:{port};x-custom=;query=a=b")
    );
    let mut a = action("echo", port);
    let h = |n: &str, v: &str| HTTPHeader {
        name: n.into(),
        value: v.into(),
    };
    a.http_headers = Some(vec![
        h("X-Custom", "one"),
        h("x-custom", "two"),
        h("Host", "example.test"),
        h("User-Agent", "mine/1"),
        h("Accept", ""),
    ]);
    let o = get(&a, SECOND).await;
    assert_eq!(
        o.output,
        "ua=mine/1;accept=;host=example.test;x-custom=one,two;query="
    );
}

#[tokio::test]
async fn named_ports_and_hosts_resolve() {
    let (port, _) = serve(None).await;
    let c = Container {
        ports: Some(vec![k8s_openapi::api::core::v1::ContainerPort {
            name: Some("web".into()),
            container_port: i32::from(port),
            ..Default::default()
        }]),
        ..Default::default()
    };
    let a = HTTPGetAction {
        path: Some("/ok".into()),
        port: IntOrString::String("web".into()),
        scheme: Some("HTTP".into()),
        ..Default::default()
    };
    let req = request_for(&a, &c, "127.0.0.1").unwrap();
    assert_eq!(req.shown, format!("http://127.0.0.1:{port}/ok"));
    assert_eq!(
        HttpProber::new().probe(&req, SECOND).await,
        Outcome::success("ok body")
    );
    // No pod IP yet: Go's error.
    let req = request_for(&a, &c, "").unwrap();
    assert_eq!(
        HttpProber::new().probe(&req, SECOND).await,
        Outcome::failure(format!(
            "Get \"http://:{port}/ok\": http: no Host in request URL"
        ))
    );
    let missing = HTTPGetAction {
        port: IntOrString::String("nope".into()),
        ..Default::default()
    };
    assert!(request_for(&missing, &c, "127.0.0.1").is_err());
}

#[tokio::test]
async fn redirects_on_the_same_host_are_followed() {
    let (port, hits) = serve(None).await;
    assert_eq!(
        get(&action("/redirect-local", port), SECOND).await,
        Outcome::success("ok body")
    );
    assert_eq!(
        get(&action("/redirect-absolute", port), SECOND).await,
        Outcome::failure("HTTP probe failed with statuscode: 500")
    );
    // A relative redirect keeps the probe's Host header.
    let mut a = action("/redirect-echo", port);
    a.http_headers = Some(vec![HTTPHeader {
        name: "Host".into(),
        value: "example.test".into(),
    }]);
    assert!(get(&a, SECOND).await.output.contains("host=example.test;"));

    hits.store(0, Ordering::SeqCst);
    assert_eq!(
        get(&action("/loop", port), SECOND).await,
        Outcome::failure("Get \"/loop\": stopped after 10 redirects")
    );
    assert_eq!(hits.load(Ordering::SeqCst), 10);
}

#[tokio::test]
async fn redirect_to_another_host_is_a_warning() {
    let (port, hits) = serve(None).await;
    let o = get(&action("/redirect-away", port), SECOND).await;
    assert_eq!(
        o,
        Outcome::warning(
            "Probe terminated redirects, Response body: <a href=\"http://0.0.0.0/\">Found</a>."
        )
    );
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn bodies_are_cut_at_10_kib() {
    let (port, _) = serve(None).await;
    let o = get(&action("/big", port), SECOND).await;
    assert_eq!(o.verdict, Verdict::Success);
    assert_eq!(o.output.len(), MAX_BODY);
}

#[tokio::test]
async fn timeouts_and_refused_connections_fail() {
    let (port, _) = serve(None).await;
    let started = Instant::now();
    let o = get(&action("/slow", port), SECOND).await;
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(
        o,
        Outcome::failure(format!(
            "Get \"http://127.0.0.1:{port}/slow\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
        ))
    );

    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closed = l.local_addr().unwrap().port();
    drop(l);
    assert_eq!(
        get(&action("/", closed), SECOND).await,
        Outcome::failure(format!(
            "Get \"http://127.0.0.1:{closed}/\": dial tcp 127.0.0.1:{closed}: connect: connection refused"
        ))
    );
}

const TEST_CERT: &str = "MIIBgjCCASegAwIBAgIUEIktawE2S19tNssbCzYEajubVF0wCgYIKoZIzj0EAwIw
FTETMBEGA1UEAwwKcHJvYmUtdGVzdDAgFw0yNjExMjIxMjA3MzZaGA8yMTI2MTAy
OTEyMDczNlowFTETMBEGA1UEAwwKcHJvYmUtdGVzdDBZMBMGByqGSM49AgEGCCqG
SM49AwEHA0IABPIgTXir8A2QA6qXiMzbeya3E1Tn+NvZGLsBzxU4wE2+Hqwmf+Fy
LoqXgcZJwRVlvpKZJFKpW/vrwCIC6y7y7e+jUzBRMB0GA1UdDgQWBBQFSPXDWXHu
MM2waKP2XtzT2jldejAfBgNVHSMEGDAWgBQFSPXDWXHuMM2waKP2XtzT2jldejAP
BgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0kAMEYCIQCnmk1nH+zKisdV56gb
Hv2xbLhDqwQSMJYlmJ2u88zGwQIhAKYDlDGaWOs+c4j5VooQP+HXkmwFeBE+oVJG
G0tm6aFl";

const TEST_KEY: &str = "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgMJE09KURrBWpcjfX
qQ0Vj0E8e2lNzJfekmkihJPEWQyhRANCAATyIE14q/ANkAOql4jM23smtxNU5/jb
2Ri7Ac8VOMBNvh6sJn/hci6Kl4HGScEVZb6SmSRSqVv768AiAusu8u3v";

/// A TLS server config with a self-signed certificate; `alpn` e.g. `[b"h2"]`.
pub(crate) fn test_tls_server(alpn: Vec<Vec<u8>>) -> Arc<rustls::ServerConfig> {
    use base64::Engine;
    let der = |s: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(s.replace('\n', ""))
            .unwrap()
    };
    let cert = CertificateDer::from(der(TEST_CERT));
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(der(TEST_KEY).into());
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert], key)
    .unwrap();
    config.alpn_protocols = alpn;
    Arc::new(config)
}

#[tokio::test]
async fn https_skips_certificate_verification() {
    let acceptor = tokio_rustls::TlsAcceptor::from(test_tls_server(vec![]));
    let (port, _) = serve(Some(acceptor)).await;
    let mut a = action("/echo", port);
    a.scheme = Some("HTTPS".into());
    let o = get(&a, SECOND).await;
    assert_eq!(o.verdict, Verdict::Success, "{o:?}");
    assert!(o.output.starts_with("ua=kube-probe/1.37;"));

    // HTTPS against a plain HTTP server fails.
    let (plain, _) = serve(None).await;
    let mut a = action("/ok", plain);
    a.scheme = Some("HTTPS".into());
    assert_eq!(get(&a, SECOND).await.verdict, Verdict::Failure);
}

#[test]
fn requests_name_the_host_and_port_as_go_does() {
    let a = action("healthz?x=1", 80);
    let req = request_for(&a, &Container::default(), "10.0.0.1").unwrap();
    assert_eq!(req.shown, "http://10.0.0.1:80/healthz?x=1");
    assert_eq!(req.host.as_deref(), Some("10.0.0.1:80"));
    let req = request_for(&action("", 8443), &Container::default(), "fd00::1").unwrap();
    assert_eq!(req.shown, "http://[fd00::1]:8443");
    assert_eq!(req.host.as_deref(), Some("[fd00::1]:8443"));
    assert_eq!(
        req.headers,
        vec![
            ("User-Agent".to_string(), "kube-probe/1.37".to_string()),
            ("Accept".to_string(), "*/*".to_string()),
        ]
    );
}
