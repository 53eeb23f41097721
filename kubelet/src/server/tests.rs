//! Tests of the kubelet server over real TLS on loopback, with a fake runtime whose streaming
//! URLs point at a fake streaming server.

use super::*;
use crate::cri::v1 as criv1;
use crate::logs::tests::{FakeRuntime, TempDir};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::{Request, Response, StatusCode};
use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStateRunning, ContainerStatus, PodSpec, PodStatus,
};
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct FakePods(Pod);

impl PodSource for FakePods {
    fn pods(&self) -> Vec<Pod> {
        vec![self.0.clone()]
    }
    fn pod(&self, ns: &str, name: &str) -> Option<Pod> {
        (self.0.metadata.namespace.as_deref() == Some(ns)
            && self.0.metadata.name.as_deref() == Some(name))
        .then(|| self.0.clone())
    }
    fn container_id(&self, uid: &str, c: &str) -> Option<String> {
        (uid == "uid-1" && c == "c").then(|| "cid1".to_string())
    }
    fn sandbox_id(&self, uid: &str) -> Option<String> {
        (uid == "uid-1").then(|| "sb1".to_string())
    }
}

fn pod() -> Pod {
    let mut p = Pod::default();
    p.metadata.namespace = Some("ns".into());
    p.metadata.name = Some("web".into());
    p.metadata.uid = Some("uid-1".into());
    p.spec = Some(PodSpec {
        containers: vec![Container {
            name: "c".into(),
            ..Default::default()
        }],
        ..Default::default()
    });
    p.status = Some(PodStatus {
        container_statuses: Some(vec![ContainerStatus {
            name: "c".into(),
            container_id: Some("containerd://cid1".into()),
            state: Some(ContainerState {
                running: Some(ContainerStateRunning::default()),
                ..Default::default()
            }),
            ..Default::default()
        }]),
        ..Default::default()
    });
    p
}

/// The fake runtime plus streaming calls that answer with the fake streaming server's URLs.
struct Runtime {
    logs: FakeRuntime,
    streaming: String,
    execs: Mutex<Vec<criv1::ExecRequest>>,
}

#[async_trait::async_trait]
impl crate::logs::LogRuntime for Runtime {
    async fn container_status(&self, id: &str) -> crate::cri::Result<criv1::ContainerStatus> {
        self.logs.container_status(id).await
    }
    async fn list_containers(&self) -> crate::cri::Result<Vec<criv1::Container>> {
        self.logs.list_containers().await
    }
    async fn reopen_container_log(&self, id: &str) -> crate::cri::Result<()> {
        self.logs.reopen_container_log(id).await
    }
}

#[async_trait::async_trait]
impl StreamingRuntime for Runtime {
    async fn exec(&self, r: criv1::ExecRequest) -> crate::cri::Result<String> {
        self.execs.lock().unwrap().push(r);
        Ok(format!("{}/exec/tok", self.streaming))
    }
    async fn attach(&self, _: criv1::AttachRequest) -> crate::cri::Result<String> {
        Err(tonic::Status::not_found("no such container").into())
    }
    async fn port_forward(&self, r: criv1::PortForwardRequest) -> crate::cri::Result<String> {
        assert_eq!(r.pod_sandbox_id, "sb1");
        Ok(format!("{}/portforward/tok", self.streaming))
    }
    async fn exec_sync(
        &self,
        _: &str,
        cmd: Vec<String>,
        _: Duration,
    ) -> crate::cri::Result<criv1::ExecSyncResponse> {
        Ok(criv1::ExecSyncResponse {
            stdout: cmd.join("+").into_bytes(),
            stderr: b"!".to_vec(),
            exit_code: 0,
        })
    }
}

/// A streaming server: SPDY upgrades are accepted and echoed; WebSocket ones refused (403) as
/// containerd 1.6 refuses `v5.channel.k8s.io`. Records what it was asked.
async fn fake_streaming_server() -> (String, Arc<Mutex<Vec<(String, hyper::HeaderMap)>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let seen2 = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = l.accept().await else {
                return;
            };
            let seen = seen2.clone();
            let svc = hyper::service::service_fn(move |mut req: Request<Incoming>| {
                let seen = seen.clone();
                async move {
                    seen.lock()
                        .unwrap()
                        .push((req.uri().to_string(), req.headers().clone()));
                    let ws = req
                        .headers()
                        .get("upgrade")
                        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
                    if ws {
                        let mut r = Response::new(http_body_util::Full::new(Bytes::from(
                            "requested protocol(s) are not supported",
                        )));
                        *r.status_mut() = StatusCode::FORBIDDEN;
                        return Ok::<_, std::convert::Infallible>(r);
                    }
                    let up = hyper::upgrade::on(&mut req);
                    tokio::spawn(async move {
                        let mut io = TokioIo::new(up.await.unwrap());
                        let mut buf = [0u8; 64];
                        loop {
                            match io.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => io.write_all(&buf[..n]).await.unwrap(),
                            }
                        }
                    });
                    let mut r = Response::new(http_body_util::Full::new(Bytes::new()));
                    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
                    r.headers_mut()
                        .insert("connection", "Upgrade".parse().unwrap());
                    r.headers_mut()
                        .insert("upgrade", "SPDY/3.1".parse().unwrap());
                    r.headers_mut().insert(
                        "x-stream-protocol-version",
                        "v4.channel.k8s.io".parse().unwrap(),
                    );
                    Ok(r)
                }
            });
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), svc)
                    .with_upgrades()
                    .await;
            });
        }
    });
    (url, seen)
}

struct Harness {
    dir: TempDir,
    addrs: ServerAddrs,
    runtime: Arc<Runtime>,
    seen: Arc<Mutex<Vec<(String, hyper::HeaderMap)>>>,
    client_cert: (String, String),
    stop: CancellationToken,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A client CA (written as the server's --client-ca-file) and a client certificate it signed.
fn client_pki(dir: &std::path::Path) -> (String, String) {
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = rcgen::CertifiedIssuer::self_signed(ca, rcgen::KeyPair::generate().unwrap()).unwrap();
    std::fs::write(dir.join("client-ca.crt"), ca.pem()).unwrap();
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name
        .push(rcgen::DnType::CommonName, "kube-apiserver-kubelet-client");
    p.distinguished_name
        .push(rcgen::DnType::OrganizationName, "system:masters");
    p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = p.signed_by(&key, &ca).unwrap();
    (cert.pem(), key.serialize_pem())
}

async fn start(anonymous: bool) -> Harness {
    let dir = TempDir::new("kserver");
    let client_cert = client_pki(&dir.0);
    let (streaming, seen) = fake_streaming_server().await;
    let runtime = Arc::new(Runtime {
        logs: FakeRuntime::default(),
        streaming,
        execs: Mutex::new(Vec::new()),
    });
    let mut registry = Registry::default();
    let c = prometheus_client::metrics::counter::Counter::<u64>::default();
    c.inc();
    registry.register("kubelet_test_things", "Things", c);
    let cfg = ServerConfig {
        address: "127.0.0.1".parse().unwrap(),
        port: 0,
        healthz_address: "127.0.0.1".parse().unwrap(),
        healthz_port: free_port(),
        tls_cert_file: None,
        tls_private_key_file: None,
        cert_dir: dir.0.join("pki"),
        client_ca_file: Some(dir.0.join("client-ca.crt")),
        anonymous_auth: anonymous,
        node_name: "node-a".into(),
        node_ips: vec!["127.0.0.1".parse().unwrap()],
    };
    let stop = CancellationToken::new();
    let addrs = serve(
        cfg,
        runtime.clone(),
        Arc::new(FakePods(pod())),
        Arc::new(registry),
        stop.clone(),
    )
    .await
    .unwrap();
    Harness {
        dir,
        addrs,
        runtime,
        seen,
        client_cert,
        stop,
    }
}

type Sender = hyper::client::conn::http1::SendRequest<Empty<Bytes>>;

impl Harness {
    /// A TLS connection that verifies the kubelet's self-signed certificate for 127.0.0.1.
    async fn connect(&self, with_cert: bool) -> Sender {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(self.dir.0.join("pki/kubelet.crt")).unwrap() {
            roots.add(c.unwrap()).unwrap();
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let b = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
        let cfg = if with_cert {
            let chain =
                vec![CertificateDer::from_pem_slice(self.client_cert.0.as_bytes()).unwrap()];
            let key = PrivateKeyDer::from_pem_slice(self.client_cert.1.as_bytes()).unwrap();
            b.with_client_auth_cert(chain, key).unwrap()
        } else {
            b.with_no_client_auth()
        };
        let tcp = tokio::net::TcpStream::connect(self.addrs.https)
            .await
            .unwrap();
        let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
            .connect("127.0.0.1".try_into().unwrap(), tcp)
            .await
            .unwrap();
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .unwrap();
        tokio::spawn(conn.with_upgrades());
        sender
    }

    async fn get(&self, path: &str, with_cert: bool) -> (StatusCode, String) {
        let mut s = self.connect(with_cert).await;
        let r = s
            .send_request(
                Request::get(path)
                    .header("host", "kubelet")
                    .body(Empty::new())
                    .unwrap(),
            )
            .await
            .unwrap();
        let status = r.status();
        let body = r.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }
}

#[tokio::test]
async fn client_certificates_authenticate_and_anonymous_is_refused() {
    let h = start(false).await;
    assert_eq!(h.get("/healthz", true).await, (StatusCode::OK, "ok".into()));
    assert_eq!(
        h.get("/healthz", false).await,
        (StatusCode::UNAUTHORIZED, "Unauthorized".into())
    );
    let (st, body) = h.get("/healthz?verbose", true).await;
    assert_eq!(st, StatusCode::OK);
    assert!(
        body.contains("[+]syncloop ok\nhealthz check passed"),
        "{body}"
    );
    let (st, body) = h.get("/pods", true).await;
    assert_eq!(st, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["kind"], "PodList");
    assert_eq!(v["items"][0]["metadata"]["name"], "web");
    let (st, body) = h.get("/metrics", true).await;
    assert_eq!(st, StatusCode::OK);
    assert!(body.contains("kubelet_test_things_total 1"), "{body}");
    assert_eq!(h.get("/nothing", true).await.0, StatusCode::NOT_FOUND);
    // The generated serving key is private.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(h.dir.0.join("pki/kubelet.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    // The plain healthz port answers without TLS.
    let tcp = tokio::net::TcpStream::connect(h.addrs.healthz.unwrap())
        .await
        .unwrap();
    let (mut s, conn) = hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    let r = s
        .send_request(Request::get("/healthz").body(Empty::new()).unwrap())
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn anonymous_requests_pass_when_enabled() {
    let h = start(true).await;
    assert_eq!(
        h.get("/healthz", false).await,
        (StatusCode::OK, "ok".into())
    );
}

#[tokio::test]
async fn container_logs_read_the_runtime_log_path() {
    let h = start(false).await;
    let log = h.dir.0.join("0.log");
    std::fs::write(
        &log,
        "2024-01-01T00:00:00Z stdout F one\n2024-01-01T00:00:01Z stderr F two\n",
    )
    .unwrap();
    h.runtime
        .logs
        .log_paths
        .lock()
        .unwrap()
        .insert("cid1".into(), log.display().to_string());
    assert_eq!(
        h.get("/containerLogs/ns/web/c", true).await,
        (StatusCode::OK, "one\ntwo\n".into())
    );
    assert_eq!(
        h.get("/containerLogs/ns/web/c?tailLines=1&timestamps=true", true)
            .await,
        (
            StatusCode::OK,
            "2024-01-01T00:00:01.000000000Z two\n".into()
        )
    );
    assert_eq!(
        h.get("/containerLogs/ns/web/c?stream=Stdout&limitBytes=2", true)
            .await,
        (StatusCode::OK, "on".into())
    );
    assert_eq!(
        h.get("/containerLogs/ns/nope/c", true).await,
        (StatusCode::NOT_FOUND, "pod \"nope\" does not exist".into())
    );
    assert_eq!(
        h.get("/containerLogs/ns/web/x", true).await,
        (
            StatusCode::NOT_FOUND,
            "container \"x\" not found in pod \"web\"".into()
        )
    );
    assert_eq!(
        h.get("/containerLogs/ns/web/c?tailLines=abc", true).await,
        (
            StatusCode::BAD_REQUEST,
            "{\"message\": \"Unable to decode query.\"}".into()
        )
    );
    assert_eq!(
        h.get("/containerLogs/ns/web/c?limitBytes=0", true).await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        h.get("/containerLogs/ns/web/c?previous=true", true).await,
        (
            StatusCode::BAD_REQUEST,
            "previous terminated container \"c\" in pod \"web\" not found".into()
        )
    );
    // Follow ends once the container is not running and the file is drained.
    h.runtime.logs.running.store(false, Ordering::SeqCst);
    assert_eq!(
        h.get("/containerLogs/ns/web/c?follow=true", true).await,
        (StatusCode::OK, "one\ntwo\n".into())
    );
}

async fn upgrade_request(s: &mut Sender, path: &str, upgrade: &str) -> Response<Incoming> {
    s.send_request(
        Request::post(path)
            .header("host", "kubelet")
            .header("connection", "Upgrade")
            .header("upgrade", upgrade)
            .header("x-stream-protocol-version", "v4.channel.k8s.io")
            .header("sec-websocket-protocol", "v5.channel.k8s.io")
            .body(Empty::new())
            .unwrap(),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn exec_is_proxied_to_the_streaming_server() {
    let h = start(false).await;
    let mut s = h.connect(true).await;
    let resp = upgrade_request(
        &mut s,
        "/exec/ns/web/c?command=sh&command=-c&command=echo%20hi&input=1&output=1&tty=1&error=1",
        "SPDY/3.1",
    )
    .await;
    assert_eq!(resp.status(), StatusCode::SWITCHING_PROTOCOLS);
    assert_eq!(
        resp.headers()["x-stream-protocol-version"],
        "v4.channel.k8s.io"
    );
    let mut io = TokioIo::new(hyper::upgrade::on(resp).await.unwrap());
    io.write_all(b"ping through").await.unwrap();
    let mut buf = [0u8; 12];
    io.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"ping through");

    let execs = h.runtime.execs.lock().unwrap().clone();
    assert_eq!(execs.len(), 1);
    assert_eq!(execs[0].container_id, "cid1");
    assert_eq!(execs[0].cmd, vec!["sh", "-c", "echo hi"]);
    assert!(execs[0].stdin && execs[0].stdout && execs[0].tty);
    assert!(!execs[0].stderr, "a tty has no separate stderr");
    let seen = h.seen.lock().unwrap().clone();
    assert_eq!(seen[0].0, "/exec/tok");
    assert_eq!(seen[0].1["upgrade"], "SPDY/3.1");
    assert_eq!(seen[0].1["x-stream-protocol-version"], "v4.channel.k8s.io");
}

#[tokio::test]
async fn a_refused_upgrade_is_passed_through() {
    let h = start(false).await;
    let mut s = h.connect(true).await;
    let resp = upgrade_request(
        &mut s,
        "/exec/ns/web/uid-1/c?command=ls&output=1",
        "websocket",
    )
    .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"requested protocol(s) are not supported");
}

#[tokio::test]
async fn streaming_request_errors() {
    let h = start(false).await;
    let mut s = h.connect(true).await;
    let r = upgrade_request(&mut s, "/exec/ns/web/c?command=ls", "SPDY/3.1").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = upgrade_request(&mut s, "/exec/ns/nope/c?output=1", "SPDY/3.1").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = upgrade_request(&mut s, "/exec/ns/web/other-uid/c?output=1", "SPDY/3.1").await;
    assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    // The runtime's NotFound becomes 404.
    let r = upgrade_request(&mut s, "/attach/ns/web/c?output=1", "SPDY/3.1").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // Port-forward over SPDY goes to the sandbox's URL; a wrong uid is 404.
    let r = upgrade_request(&mut s, "/portForward/ns/web", "SPDY/3.1").await;
    assert_eq!(r.status(), StatusCode::SWITCHING_PROTOCOLS);
    let mut s = h.connect(true).await;
    let r = upgrade_request(&mut s, "/portForward/ns/web/uid-2", "SPDY/3.1").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // A plain WebSocket port-forward must name its ports.
    let r = upgrade_request(&mut s, "/portForward/ns/web", "websocket").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // Without an upgrade there is nothing to proxy.
    let r = s
        .send_request(
            Request::post("/exec/ns/web/c?output=1")
                .header("host", "kubelet")
                .body(Empty::new())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    // /run returns the command's output.
    let r = s
        .send_request(
            Request::post("/run/ns/web/c?cmd=echo%20a")
                .header("host", "kubelet")
                .body(Empty::new())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body = r.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"echo+a!");
}
