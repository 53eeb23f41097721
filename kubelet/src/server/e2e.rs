//! A manual end-to-end check against a real containerd (ignored by default): set
//! `KSERVER_E2E_SOCK` to the socket of a private containerd that has busybox loaded
//! (`hack/lib/containerd.sh`) and run `cargo test -p kubelet --lib e2e -- --ignored`. It runs a
//! host-network pod whose container prints a line a second, then reads its logs through the
//! server, execs `echo` over a `v4.channel.k8s.io` WebSocket proxied to containerd's streaming
//! server, checks that a `v5.channel.k8s.io` request is refused with containerd's own answer,
//! and rotates the log.

use super::*;
use crate::cri::v1 as criv1;
use crate::logs::ContainerLogManager;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::{Request, StatusCode};
use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStateRunning, ContainerStatus, PodSpec, PodStatus,
};
use tokio::io::{AsyncRead, AsyncReadExt};

struct OnePod {
    pod: Pod,
    cid: String,
    sandbox: String,
}

impl PodSource for OnePod {
    fn pods(&self) -> Vec<Pod> {
        vec![self.pod.clone()]
    }
    fn pod(&self, ns: &str, name: &str) -> Option<Pod> {
        (ns == "ns" && name == "web").then(|| self.pod.clone())
    }
    fn container_id(&self, _: &str, c: &str) -> Option<String> {
        (c == "c").then(|| self.cid.clone())
    }
    fn sandbox_id(&self, _: &str) -> Option<String> {
        Some(self.sandbox.clone())
    }
}

fn host_net() -> criv1::NamespaceOption {
    criv1::NamespaceOption {
        network: criv1::NamespaceMode::Node as i32,
        pid: criv1::NamespaceMode::Container as i32,
        ipc: criv1::NamespaceMode::Pod as i32,
        ..Default::default()
    }
}

/// Reads one WebSocket frame (server frames are unmasked): (opcode, payload).
async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> std::io::Result<(u8, Vec<u8>)> {
    let mut h = [0u8; 2];
    r.read_exact(&mut h).await?;
    let mut len = u64::from(h[1] & 0x7f);
    if len == 126 {
        let mut b = [0u8; 2];
        r.read_exact(&mut b).await?;
        len = u64::from(u16::from_be_bytes(b));
    } else if len == 127 {
        let mut b = [0u8; 8];
        r.read_exact(&mut b).await?;
        len = u64::from_be_bytes(b);
    }
    let mut payload = vec![0u8; len as usize];
    r.read_exact(&mut payload).await?;
    Ok((h[0] & 0x0f, payload))
}

async fn connect(
    addr: SocketAddr,
    cert_dir: &std::path::Path,
) -> hyper::client::conn::http1::SendRequest<Empty<Bytes>> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(cert_dir.join("kubelet.crt")).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect("127.0.0.1".try_into().unwrap(), tcp)
        .await
        .unwrap();
    let (s, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn.with_upgrades());
    s
}

fn ws_request(path: &str, protocol: &str) -> Request<Empty<Bytes>> {
    Request::get(path)
        .header("host", "kubelet")
        .header("connection", "Upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .header("sec-websocket-protocol", protocol)
        .body(Empty::new())
        .unwrap()
}

#[tokio::test]
#[ignore = "needs a private containerd: KSERVER_E2E_SOCK"]
async fn e2e_real_containerd() {
    let Ok(sock) = std::env::var("KSERVER_E2E_SOCK") else {
        return;
    };
    let dir = crate::logs::tests::TempDir::new("kserver-e2e");
    let rt = crate::cri::Runtime::connect(&sock, Duration::from_secs(60)).unwrap();
    let uid = format!("uid-e2e-{}", jiff::Timestamp::now().as_millisecond());
    let pod_dir = crate::logs::pod_log_dir(&dir.0.join("pods"), "ns", "web", &uid);
    let sandbox_cfg = criv1::PodSandboxConfig {
        metadata: Some(criv1::PodSandboxMetadata {
            name: "web".into(),
            uid: uid.clone(),
            namespace: "ns".into(),
            attempt: 0,
        }),
        log_directory: pod_dir.display().to_string(),
        linux: Some(criv1::LinuxPodSandboxConfig {
            security_context: Some(criv1::LinuxSandboxSecurityContext {
                namespace_options: Some(host_net()),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let sandbox = rt.run_pod_sandbox(sandbox_cfg.clone()).await.unwrap();
    let ccfg = criv1::ContainerConfig {
        metadata: Some(criv1::ContainerMetadata {
            name: "c".into(),
            attempt: 0,
        }),
        image: Some(criv1::ImageSpec {
            image: "docker.io/library/busybox:latest".into(),
            ..Default::default()
        }),
        command: vec![
            "sh".into(),
            "-c".into(),
            "i=0; while true; do echo line $i; i=$((i+1)); sleep 0.2; done".into(),
        ],
        log_path: crate::logs::container_log_relative_path("c", 0)
            .display()
            .to_string(),
        linux: Some(criv1::LinuxContainerConfig {
            security_context: Some(criv1::LinuxContainerSecurityContext {
                namespace_options: Some(host_net()),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let cid = Box::pin(rt.create_container(&sandbox, ccfg, sandbox_cfg))
        .await
        .unwrap();
    rt.start_container(&cid).await.unwrap();

    let mut pod = Pod::default();
    pod.metadata.namespace = Some("ns".into());
    pod.metadata.name = Some("web".into());
    pod.metadata.uid = Some(uid.clone());
    pod.spec = Some(PodSpec {
        containers: vec![Container {
            name: "c".into(),
            ..Default::default()
        }],
        ..Default::default()
    });
    pod.status = Some(PodStatus {
        container_statuses: Some(vec![ContainerStatus {
            name: "c".into(),
            container_id: Some(format!("containerd://{cid}")),
            state: Some(ContainerState {
                running: Some(ContainerStateRunning::default()),
                ..Default::default()
            }),
            ..Default::default()
        }]),
        ..Default::default()
    });
    let cfg = ServerConfig {
        address: "127.0.0.1".parse().unwrap(),
        port: 0,
        healthz_address: "127.0.0.1".parse().unwrap(),
        healthz_port: 0,
        tls_cert_file: None,
        tls_private_key_file: None,
        cert_dir: dir.0.join("pki"),
        client_ca_file: None,
        anonymous_auth: true,
        node_name: "node-e2e".into(),
        node_ips: vec!["127.0.0.1".parse().unwrap()],
    };
    let stop = CancellationToken::new();
    let runtime: Arc<dyn StreamingRuntime> = Arc::new(rt.clone());
    let addrs = serve(
        cfg,
        runtime.clone(),
        Arc::new(OnePod {
            pod,
            cid: cid.clone(),
            sandbox: sandbox.clone(),
        }),
        Arc::new(Registry::default()),
        stop.clone(),
    )
    .await
    .unwrap();
    let pki = dir.0.join("pki");
    tokio::time::sleep(Duration::from_secs(1)).await;

    // Logs.
    let mut s = connect(addrs.https, &pki).await;
    let r = s
        .send_request(
            Request::get("/containerLogs/ns/web/c?tailLines=2&timestamps=true")
                .header("host", "kubelet")
                .body(Empty::new())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body =
        String::from_utf8(r.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    eprintln!("logs:\n{body}");
    assert_eq!(body.lines().count(), 2);
    assert!(body.lines().all(|l| l.contains(" line ")), "{body}");

    // exec over WebSocket v4, proxied to containerd's streaming server.
    let mut s = connect(addrs.https, &pki).await;
    let r = s
        .send_request(ws_request(
            "/exec/ns/web/c?command=sh&command=-c&command=echo%20hi%20from%20$HOSTNAME&output=1&error=1",
            "v4.channel.k8s.io",
        ))
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::SWITCHING_PROTOCOLS,
        "{:?}",
        r.headers()
    );
    eprintln!("exec 101 headers: {:?}", r.headers());
    let mut io = TokioIo::new(hyper::upgrade::on(r).await.unwrap());
    let mut stdout = Vec::new();
    let mut status = Vec::new();
    loop {
        let Ok((op, payload)) = tokio::time::timeout(Duration::from_secs(10), read_frame(&mut io))
            .await
            .unwrap()
        else {
            break;
        };
        if op == 8 {
            break;
        }
        match payload.first() {
            Some(1) => stdout.extend_from_slice(&payload[1..]),
            Some(3) => status.extend_from_slice(&payload[1..]),
            _ => {}
        }
    }
    eprintln!(
        "exec stdout {:?} status {:?}",
        String::from_utf8_lossy(&stdout),
        String::from_utf8_lossy(&status)
    );
    assert!(String::from_utf8_lossy(&stdout).starts_with("hi from"));
    assert!(String::from_utf8_lossy(&status).contains("Success"));

    // v5 is refused by containerd 1.6; its answer comes back unchanged.
    let mut s = connect(addrs.https, &pki).await;
    let r = s
        .send_request(ws_request(
            "/exec/ns/web/c?command=true&output=1",
            "v5.channel.k8s.io",
        ))
        .await
        .unwrap();
    let st = r.status();
    let body = r.into_body().collect().await.unwrap().to_bytes();
    eprintln!("v5: {st} {:?}", String::from_utf8_lossy(&body));
    assert_ne!(st, StatusCode::SWITCHING_PROTOCOLS);

    // SPDY upgrades (kubectl's fallback) are accepted by containerd through the proxy.
    for path in [
        "/exec/ns/web/c?command=true&output=1",
        "/portForward/ns/web",
    ] {
        let mut s = connect(addrs.https, &pki).await;
        let r = s
            .send_request(
                Request::post(path)
                    .header("host", "kubelet")
                    .header("connection", "Upgrade")
                    .header("upgrade", "SPDY/3.1")
                    .header("x-stream-protocol-version", "v4.channel.k8s.io")
                    .header("x-stream-protocol-version", "portforward.k8s.io")
                    .body(Empty::new())
                    .unwrap(),
            )
            .await
            .unwrap();
        eprintln!("SPDY {path}: {} {:?}", r.status(), r.headers());
        assert_eq!(r.status(), StatusCode::SWITCHING_PROTOCOLS);
        assert!(r.headers().contains_key("x-stream-protocol-version"));
    }

    // Rotation: the runtime reopens its log and keeps writing to the new file.
    let m = ContainerLogManager::new(Arc::new(rt.clone()), "100", 3)
        .unwrap()
        .unwrap();
    m.rotate_logs().await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let names: Vec<String> = std::fs::read_dir(pod_dir.join("c"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    eprintln!("after rotation: {names:?}");
    assert_eq!(names.len(), 2);
    let fresh = std::fs::read_to_string(pod_dir.join("c/0.log")).unwrap();
    assert!(
        fresh.contains(" line "),
        "the runtime writes to the reopened log: {fresh:?}"
    );

    // A follow stream ends once the container stops.
    let mut s = connect(addrs.https, &pki).await;
    let r = s
        .send_request(
            Request::get("/containerLogs/ns/web/c?follow=true&tailLines=1")
                .header("host", "kubelet")
                .body(Empty::new())
                .unwrap(),
        )
        .await
        .unwrap();
    let mut body = r.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert!(
        String::from_utf8_lossy(&first).starts_with("line "),
        "{first:?}"
    );
    rt.stop_container(&cid, 0).await.unwrap();
    let rest = tokio::time::timeout(Duration::from_secs(15), body.collect())
        .await
        .expect("the follow stream ends after the container stopped")
        .unwrap()
        .to_bytes();
    eprintln!(
        "follow: {:?} then {} more bytes",
        String::from_utf8_lossy(&first),
        rest.len()
    );

    stop.cancel();
    rt.remove_container(&cid).await.unwrap();
    rt.stop_pod_sandbox(&sandbox).await.unwrap();
    rt.remove_pod_sandbox(&sandbox).await.unwrap();
}
