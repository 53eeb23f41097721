//! A fake kubelet for the proxy tests: HTTPS with a test CA (client certificates required),
//! records every request, streams `/containerLogs` (the last chunk of a `follow` stream waits
//! for the test), answers upgrades with 101 and echoes bytes, and answers anything else with a
//! JSON description of the request.

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// One request the fake kubelet received.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    /// Path and query as received.
    pub uri: String,
    pub headers: HeaderMap,
    /// CommonName of the client certificate the apiserver presented.
    pub client_cn: Option<String>,
}

/// PEM files of a test PKI.
pub struct Pki {
    _dir: tempfile::TempDir,
    pub ca: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    server_cert: CertificateDer<'static>,
    server_key: PrivateKeyDer<'static>,
    ca_der: CertificateDer<'static>,
}

impl Pki {
    /// A CA, a serving certificate for 127.0.0.1 and a client certificate for the apiserver.
    pub fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "fake-kubelet-ca");
        let ca_key = KeyPair::generate().unwrap();
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);

        let mut srv = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
        srv.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        srv.distinguished_name
            .push(DnType::CommonName, "fake-kubelet");
        let srv_key = KeyPair::generate().unwrap();
        let srv_cert = srv.signed_by(&srv_key, &issuer).unwrap();

        let mut cli = CertificateParams::new(Vec::<String>::new()).unwrap();
        cli.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        cli.distinguished_name
            .push(DnType::CommonName, "kube-apiserver-kubelet-client");
        let cli_key = KeyPair::generate().unwrap();
        let cli_cert = cli.signed_by(&cli_key, &issuer).unwrap();

        let write = |name: &str, pem: String| {
            let p = dir.path().join(name);
            std::fs::write(&p, pem).unwrap();
            p
        };
        Pki {
            ca: write("ca.crt", ca.pem()),
            client_cert: write("client.crt", cli_cert.pem()),
            client_key: write("client.key", cli_key.serialize_pem()),
            server_cert: srv_cert.der().clone(),
            server_key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(srv_key.serialize_der())),
            ca_der: ca.der().clone(),
            _dir: dir,
        }
    }

    /// The apiserver flags that trust this CA and present its client certificate.
    pub fn apiserver_flags(&self) -> Vec<String> {
        vec![
            format!("--kubelet-certificate-authority={}", self.ca.display()),
            format!(
                "--kubelet-client-certificate={}",
                self.client_cert.display()
            ),
            format!("--kubelet-client-key={}", self.client_key.display()),
        ]
    }
}

pub struct FakeKubelet {
    pub port: u16,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    /// Lets a `follow` log stream send its last chunk.
    pub release: Arc<Notify>,
    pub pki: Pki,
}

impl FakeKubelet {
    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn text(code: u16, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(Body::from(body.into()));
    *r.status_mut() = StatusCode::from_u16(code).unwrap();
    r.headers_mut()
        .insert("content-type", "text/plain; charset=utf-8".parse().unwrap());
    r
}

fn is_upgrade(h: &HeaderMap) -> bool {
    h.get_all("connection").iter().any(|v| {
        v.to_str()
            .unwrap_or("")
            .to_ascii_lowercase()
            .contains("upgrade")
    })
}

async fn handle(
    mut req: Request<Incoming>,
    seen: Arc<Mutex<Vec<Seen>>>,
    release: Arc<Notify>,
    client_cn: Option<String>,
) -> Result<Response<Body>, std::convert::Infallible> {
    let uri = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    seen.lock().unwrap().push(Seen {
        method: req.method().to_string(),
        uri: uri.clone(),
        headers: req.headers().clone(),
        client_cn,
    });
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    if is_upgrade(req.headers()) {
        let streams = ["input=1", "output=1", "error=1"];
        if (path.starts_with("/exec/") || path.starts_with("/attach/"))
            && !query.split('&').any(|kv| streams.contains(&kv))
        {
            return Ok(text(
                400,
                "you must specify at least 1 of stdin, stdout, stderr",
            ));
        }
        let on_upgrade = hyper::upgrade::on(&mut req);
        // The pod `sp` gets a remote command over SPDY; every other upgrade echoes bytes.
        let remote_command = path.starts_with("/exec/default/sp/");
        tokio::spawn(async move {
            if let Ok(up) = on_upgrade.await {
                if remote_command {
                    spdy_remote_command(TokioIo::new(up)).await;
                    return;
                }
                let (mut r, mut w) = tokio::io::split(TokioIo::new(up));
                let _ = tokio::io::copy(&mut r, &mut w).await;
            }
        });
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let h = r.headers_mut();
        h.insert("connection", "Upgrade".parse().unwrap());
        if let Some(u) = req.headers().get("upgrade") {
            h.insert("upgrade", u.clone());
        }
        if let Some(v) = req.headers().get("x-stream-protocol-version") {
            h.insert("x-stream-protocol-version", v.clone());
        }
        if let Some(v) = req.headers().get("sec-websocket-protocol") {
            let first = v
                .to_str()
                .unwrap_or("")
                .split(',')
                .next()
                .unwrap_or("")
                .trim();
            h.insert("sec-websocket-protocol", first.parse().unwrap());
        }
        return Ok(r);
    }
    if let Some(rest) = path.strip_prefix("/containerLogs/") {
        if rest.split('/').nth(1) == Some("gone") {
            return Ok(text(404, "pod does not exist"));
        }
        if rest.split('/').nth(1) == Some("broken") {
            return Ok(text(500, "runtime is down"));
        }
        if query.split('&').any(|kv| kv == "follow=true") {
            let (tx, rx) = futures::channel::mpsc::unbounded::<Result<Bytes, std::io::Error>>();
            tokio::spawn(async move {
                let _ = tx.unbounded_send(Ok(Bytes::from_static(b"line 1\n")));
                release.notified().await;
                let _ = tx.unbounded_send(Ok(Bytes::from_static(b"line 2\n")));
            });
            let mut r = Response::new(Body::from_stream(rx));
            r.headers_mut()
                .insert("content-type", "text/plain".parse().unwrap());
            return Ok(r);
        }
        return Ok(text(200, "line 1\nline 2\n"));
    }
    let method = req.method().to_string();
    let xff = req
        .headers()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = req
        .into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let desc = serde_json::json!({"method": method, "uri": uri, "xff": xff,
        "body": String::from_utf8_lossy(&body)});
    let mut r = Response::new(Body::from(desc.to_string()));
    r.headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    r.headers_mut()
        .insert("keep-alive", "timeout=5".parse().unwrap());
    r.headers_mut().insert("x-kubelet", "fake".parse().unwrap());
    Ok(r)
}

fn cn_of(certs: Option<&[CertificateDer<'_>]>) -> Option<String> {
    let leaf = certs?.first()?;
    let (_, c) = x509_parser::parse_x509_certificate(leaf.as_ref()).ok()?;
    let cn = c
        .subject()
        .iter_common_name()
        .next()?
        .as_str()
        .ok()?
        .to_string();
    Some(cn)
}

/// Starts a fake kubelet on a free loopback port; it runs until the test's runtime ends.
pub async fn start() -> FakeKubelet {
    let pki = Pki::new();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.ca_der.clone()).unwrap();
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![pki.server_cert.clone()], pki.server_key.clone_key())
        .unwrap();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let release = Arc::new(Notify::new());
    let (s, r) = (seen.clone(), release.clone());
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            let (seen, release) = (s.clone(), r.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let cn = cn_of(tls.get_ref().1.peer_certificates());
                let svc = hyper::service::service_fn(move |req| {
                    handle(req, seen.clone(), release.clone(), cn.clone())
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), svc)
                    .with_upgrades()
                    .await;
            });
        }
    });
    FakeKubelet {
        port,
        seen,
        release,
        pki,
    }
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn control_frame(kind: u16, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x80, 0x03];
    f.extend(kind.to_be_bytes());
    f.extend(((u32::from(flags) << 24) | payload.len() as u32).to_be_bytes());
    f.extend_from_slice(payload);
    f
}

fn data_frame(id: u32, flags: u8, data: &[u8]) -> Vec<u8> {
    let mut f = id.to_be_bytes().to_vec();
    f.extend(((u32::from(flags) << 24) | data.len() as u32).to_be_bytes());
    f.extend_from_slice(data);
    f
}

/// The kubelet's side of a `v4.channel.k8s.io` remote command, scripted: once the error,
/// stdin, stdout and stderr streams exist it writes "hello\n" to stdout and "warn\n" to
/// stderr, echoes stdin to stdout until stdin's FIN, then reports exit code 3 on the error
/// stream and resets every stream, as the Go server does when the command ends.
async fn spdy_remote_command(io: TokioIo<hyper::upgrade::Upgraded>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut r, mut w) = tokio::io::split(io);
    let mut inflate = flate2::Decompress::new(true);
    let mut streams: std::collections::HashMap<String, u32> = Default::default();
    let mut started = false;
    let mut head = [0u8; 8];
    while r.read_exact(&mut head).await.is_ok() {
        let len = (be32(&head, 4) & 0xff_ffff) as usize;
        let mut p = vec![0u8; len];
        if r.read_exact(&mut p).await.is_err() {
            return;
        }
        let mut out = Vec::new();
        if head[0] & 0x80 != 0 && head[3] == 1 {
            // SYN_STREAM: the header block continues one zlib stream.
            let id = be32(&p, 0);
            let mut block = Vec::with_capacity(1024);
            inflate
                .decompress_vec(&p[10..], &mut block, flate2::FlushDecompress::Sync)
                .unwrap();
            let (mut at, mut kind) = (4, String::new());
            for _ in 0..be32(&block, 0) {
                let l = be32(&block, at) as usize;
                let name = String::from_utf8_lossy(&block[at + 4..at + 4 + l]).to_string();
                at += 4 + l;
                let l = be32(&block, at) as usize;
                if name == "streamtype" {
                    kind = String::from_utf8_lossy(&block[at + 4..at + 4 + l]).to_string();
                }
                at += 4 + l;
            }
            streams.insert(kind, id);
            out.extend(control_frame(2, 0, &id.to_be_bytes()));
        } else if head[0] & 0x80 == 0 {
            let id = be32(&head, 0);
            let fin = head[4] & 1 != 0;
            let (Some(&stdin), Some(&stdout), Some(&error)) = (
                streams.get("stdin"),
                streams.get("stdout"),
                streams.get("error"),
            ) else {
                continue;
            };
            if id == stdin && !p.is_empty() {
                out.extend(data_frame(stdout, 0, &p));
            }
            if id == stdin && fin {
                let status = br#"{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: error executing command [sh], exit code 3","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}}"#;
                out.extend(data_frame(error, 0, status));
                for id in streams.values() {
                    let mut rst = id.to_be_bytes().to_vec();
                    rst.extend(5u32.to_be_bytes()); // CANCEL
                    out.extend(control_frame(3, 0, &rst));
                }
                let _ = w.write_all(&out).await;
                let _ = w.shutdown().await;
                return;
            }
        }
        if !started && streams.len() == 4 {
            started = true;
            out.extend(data_frame(streams["stdout"], 0, b"hello\n"));
            out.extend(data_frame(streams["stderr"], 0, b"warn\n"));
        }
        if w.write_all(&out).await.is_err() {
            return;
        }
    }
}
