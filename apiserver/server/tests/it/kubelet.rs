//! Subresources proxied to the kubelet (pods/log, exec, attach, portforward, nodes/proxy),
//! against the fake kubelet of `fake_kubelet`.

use crate::fake_kubelet::{self, FakeKubelet};
use crate::{Server, start};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PODS: &str = "/api/v1/namespaces/default/pods";

fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

async fn node(s: &Server, name: &str, addresses: Value, port: u16) {
    let (code, body) = s
        .post(
            "/api/v1/nodes",
            json!({"metadata": {"name": name}, "status": {"addresses": addresses,
                "daemonEndpoints": {"kubeletEndpoint": {"Port": port}}}}),
        )
        .await;
    assert_eq!(code, 201, "{body}");
}

async fn pod(s: &Server, name: &str, node: Option<&str>, spec: Value) {
    let mut spec = spec;
    if let Some(n) = node {
        spec["nodeName"] = json!(n);
    }
    let (code, body) = s
        .post(PODS, json!({"metadata": {"name": name}, "spec": spec}))
        .await;
    assert_eq!(code, 201, "{body}");
}

fn one_container() -> Value {
    json!({"containers": [{"name": "c1", "image": "busybox"}]})
}

/// An apiserver trusting the fake kubelet's CA, a node `n1` for the fake kubelet and pods.
async fn setup() -> (FakeKubelet, Server) {
    let fake = fake_kubelet::start().await;
    let mut flags = fake.pki.apiserver_flags();
    flags.push("--kubelet-preferred-address-types=InternalIP,Hostname".into());
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let s = start(&flags).await;
    // Hostname would not resolve: the flag puts InternalIP first.
    node(
        &s,
        "n1",
        json!([{"type": "Hostname", "address": "n1.invalid"}, {"type": "InternalIP", "address": "127.0.0.1"}]),
        fake.port,
    )
    .await;
    pod(&s, "one", Some("n1"), one_container()).await;
    pod(
        &s,
        "two",
        Some("n1"),
        json!({"initContainers": [{"name": "init", "image": "busybox"}],
            "containers": [{"name": "a", "image": "busybox"}, {"name": "b", "image": "busybox"}]}),
    )
    .await;
    pod(&s, "pending", None, one_container()).await;
    pod(&s, "gone", Some("n1"), one_container()).await;
    pod(&s, "broken", Some("n1"), one_container()).await;
    (fake, s)
}

/// Sends an upgrade request over a raw HTTP/1.1 connection to the (plain HTTP) apiserver.
async fn upgrade_request(
    s: &Server,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> http::Response<Incoming> {
    let addr = s.base.trim_start_matches("http://").to_string();
    let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn.with_upgrades());
    let mut b = http::Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    sender
        .send_request(b.body(Empty::<Bytes>::new()).unwrap())
        .await
        .unwrap()
}

const SPDY: &[(&str, &str)] = &[
    ("connection", "Upgrade"),
    ("upgrade", "SPDY/3.1"),
    ("x-stream-protocol-version", "v4.channel.k8s.io"),
    ("x-stream-protocol-version", "v3.channel.k8s.io"),
];

/// Completes the upgrade and checks that bytes come back through the tunnel.
async fn assert_echo(mut resp: http::Response<Incoming>) {
    let up = tokio::time::timeout(Duration::from_secs(10), hyper::upgrade::on(&mut resp))
        .await
        .expect("upgrade in time")
        .expect("upgraded");
    let mut io = TokioIo::new(up);
    for msg in [&b"ping"[..], &b"second message"[..]] {
        io.write_all(msg).await.unwrap();
        let mut buf = vec![0u8; msg.len()];
        tokio::time::timeout(Duration::from_secs(10), io.read_exact(&mut buf))
            .await
            .expect("echo in time")
            .unwrap();
        assert_eq!(buf, msg);
    }
}

#[tokio::test]
async fn log_options_are_validated_before_the_kubelet_is_asked() {
    let (fake, s) = setup().await;
    let (code, st) = s.get(&format!("{PODS}/one/log?tailLines=-1")).await;
    assert_eq!(code, 422);
    assert_eq!(
        st,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "PodLogOptions \"one\" is invalid: tailLines: Invalid value: -1: must be greater than or equal to 0",
            "reason": "Invalid", "details": {"name": "one", "kind": "PodLogOptions", "causes": [
                {"reason": "FieldValueInvalid", "message": "Invalid value: -1: must be greater than or equal to 0", "field": "tailLines"}]},
            "code": 422})
    );
    let (code, st) = s
        .get(&format!("{PODS}/one/log?sinceSeconds=0&limitBytes=0"))
        .await;
    assert_eq!(code, 422);
    assert_eq!(
        st["message"],
        "PodLogOptions \"one\" is invalid: [limitBytes: Invalid value: 0: must be greater than 0, sinceSeconds: Invalid value: 0: must be greater than 0]"
    );
    let (code, st) = s.get(&format!("{PODS}/two/log")).await;
    assert_eq!(code, 400);
    assert_eq!(
        st,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "a container name must be specified for pod two, choose one of: [init a b]",
            "reason": "BadRequest", "code": 400})
    );
    let (code, st) = s.get(&format!("{PODS}/two/log?container=zz")).await;
    assert_eq!(
        (code, st["message"].as_str()),
        (400, Some("container zz is not valid for pod two"))
    );
    let (code, st) = s.get(&format!("{PODS}/one/log?tailLines=ten")).await;
    assert_eq!(
        (code, st["message"].as_str()),
        (
            400,
            Some("strconv.ParseInt: parsing \"ten\": invalid syntax")
        )
    );
    let (code, st) = s.get(&format!("{PODS}/missing/log")).await;
    assert_eq!(
        (code, st["message"].as_str()),
        (404, Some("pods \"missing\" not found"))
    );
    // An unscheduled pod has no logs yet: 204, nothing asked of any kubelet.
    let r = s
        .http
        .get(s.url(&format!("{PODS}/pending/log")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert!(r.bytes().await.unwrap().is_empty());
    assert!(fake.requests().is_empty(), "{:?}", fake.requests());
}

#[tokio::test]
async fn logs_stream_from_the_kubelet() {
    let (fake, s) = setup().await;
    let mut r = s
        .http
        .get(s.url(&format!("{PODS}/one/log?follow=true&timestamps=true")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/plain");
    // The kubelet holds its second chunk until the first one reached the client.
    let first = tokio::time::timeout(Duration::from_secs(10), r.chunk())
        .await
        .expect("the first chunk arrives while the stream is still open")
        .unwrap()
        .unwrap();
    assert_eq!(&first[..], b"line 1\n");
    fake.release.notify_one();
    let mut rest = Vec::new();
    while let Some(c) = r.chunk().await.unwrap() {
        rest.extend_from_slice(&c);
    }
    assert_eq!(rest, b"line 2\n");
    let seen = fake.requests();
    assert_eq!(seen[0].method, "GET");
    assert_eq!(
        seen[0].uri,
        "/containerLogs/default/one/c1?follow=true&timestamps=true"
    );
    assert_eq!(
        seen[0].client_cn.as_deref(),
        Some("kube-apiserver-kubelet-client")
    );

    let r = s
        .http
        .get(s.url(&format!(
            "{PODS}/two/log?container=b&tailLines=5&limitBytes=100&sinceTime=2024-05-01T10:00:00Z&previous=true"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "line 1\nline 2\n");
    assert_eq!(
        fake.requests()[1].uri,
        "/containerLogs/default/two/b?limitBytes=100&previous=true&sinceTime=2024-05-01T10%3A00%3A00Z&tailLines=5"
    );

    // Kubelet errors become Statuses as upstream's response checker makes them.
    let (code, st) = s.get(&format!("{PODS}/gone/log")).await;
    assert_eq!(code, 404);
    assert_eq!(
        st,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "the server could not find the requested resource ( pods/log gone)",
            "reason": "NotFound", "details": {"name": "gone", "kind": "pods/log"}, "code": 404})
    );
    let (code, st) = s.get(&format!("{PODS}/broken/log")).await;
    assert_eq!(code, 500);
    assert_eq!(st["message"], "Internal error occurred: runtime is down");
    assert_eq!(st["reason"], "InternalError");

    let metrics = s.metrics().await;
    assert!(
        metrics.contains(
            "apiserver_request_total{code=\"200\",resource=\"pods/log\",verb=\"connect\"} 2"
        ),
        "{metrics}"
    );
}

#[tokio::test]
async fn exec_attach_and_portforward_tunnel_to_the_kubelet() {
    let (fake, s) = setup().await;
    let resp = upgrade_request(
        &s,
        "POST",
        &format!("{PODS}/two/exec?container=a&command=sh&command=-c&command=echo%20hi&stdin=true&stdout=true&stderr=true&tty=false"),
        SPDY,
    )
    .await;
    assert_eq!(resp.status(), 101);
    assert_eq!(resp.headers()["upgrade"], "SPDY/3.1");
    assert_eq!(
        resp.headers()["x-stream-protocol-version"],
        "v4.channel.k8s.io"
    );
    assert_echo(resp).await;
    let seen = fake.requests();
    assert_eq!(seen[0].method, "POST");
    assert_eq!(
        seen[0].uri,
        "/exec/default/two/a?command=sh&command=-c&command=echo+hi&error=1&input=1&output=1"
    );
    let versions: Vec<&str> = seen[0]
        .headers
        .get_all("x-stream-protocol-version")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(versions, ["v4.channel.k8s.io", "v3.channel.k8s.io"]);
    assert_eq!(seen[0].headers["x-forwarded-for"], "127.0.0.1");

    // A WebSocket without the v5 subprotocol goes to the kubelet as it is (v5 is translated,
    // see websocket_v5_exec_is_translated_to_spdy).
    let resp = upgrade_request(
        &s,
        "GET",
        &format!("{PODS}/one/attach?stdout=true&stderr=true"),
        &[
            ("connection", "Upgrade"),
            ("upgrade", "websocket"),
            ("sec-websocket-version", "13"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("sec-websocket-protocol", "v4.channel.k8s.io"),
        ],
    )
    .await;
    assert_eq!(resp.status(), 101);
    assert_eq!(
        resp.headers()["sec-websocket-protocol"],
        "v4.channel.k8s.io"
    );
    assert_echo(resp).await;
    let seen = fake.requests();
    assert_eq!(seen[1].uri, "/attach/default/one/c1?error=1&output=1");
    assert_eq!(
        seen[1].headers["sec-websocket-key"],
        "dGhlIHNhbXBsZSBub25jZQ=="
    );

    let resp = upgrade_request(
        &s,
        "POST",
        &format!("{PODS}/one/portforward?ports=8080&ports=9090"),
        SPDY,
    )
    .await;
    assert_eq!(resp.status(), 101);
    assert_echo(resp).await;
    assert_eq!(
        fake.requests()[2].uri,
        "/portForward/default/one?port=8080%2C9090"
    );
}

type Ws = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// A WebSocket client handshake to the (plain HTTP) apiserver offering `protocol`.
async fn websocket(
    s: &Server,
    path: &str,
    protocol: &str,
) -> Result<(Ws, http::Response<Option<Vec<u8>>>), tokio_tungstenite::tungstenite::Error> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let addr = s.base.trim_start_matches("http://").to_string();
    let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let mut req = format!("ws://{addr}{path}").into_client_request().unwrap();
    req.headers_mut()
        .insert("sec-websocket-protocol", protocol.parse().unwrap());
    tokio_tungstenite::client_async(req, tcp).await
}

/// The next data message (binary), or the close frame as `Err`.
async fn next_message(
    ws: &mut Ws,
) -> Result<Vec<u8>, Option<tokio_tungstenite::tungstenite::protocol::CloseFrame>> {
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    loop {
        let m = tokio::time::timeout(Duration::from_secs(20), ws.next())
            .await
            .expect("a message in time");
        match m {
            Some(Ok(Message::Binary(b))) => return Ok(b.to_vec()),
            Some(Ok(Message::Close(c))) => return Err(c),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[tokio::test]
async fn websocket_v5_exec_is_translated_to_spdy() {
    use futures::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    let (fake, s) = setup().await;
    pod(&s, "sp", Some("n1"), one_container()).await;
    let (mut ws, resp) = websocket(
        &s,
        &format!("{PODS}/sp/exec?command=sh&stdin=true&stdout=true&stderr=true"),
        "v5.channel.k8s.io",
    )
    .await
    .unwrap();
    assert_eq!(
        resp.headers()["sec-websocket-protocol"],
        "v5.channel.k8s.io"
    );
    // The kubelet's stdout and stderr arrive on channels 1 and 2.
    assert_eq!(next_message(&mut ws).await.unwrap(), b"\x01hello\n");
    assert_eq!(next_message(&mut ws).await.unwrap(), b"\x02warn\n");
    // Channel 0 is stdin (echoed by the script).
    ws.send(Message::Binary(b"\x00abc"[..].into()))
        .await
        .unwrap();
    assert_eq!(next_message(&mut ws).await.unwrap(), b"\x01abc");
    // The v5 close signal for stdin becomes its FIN; the command's exit code comes back on
    // the error channel (3) as upstream's translator words it, then a normal close.
    ws.send(Message::Binary(b"\xff\x00"[..].into()))
        .await
        .unwrap();
    let status = next_message(&mut ws).await.unwrap();
    assert_eq!(status[0], 3);
    let status: Value = serde_json::from_slice(&status[1..]).unwrap();
    assert_eq!(
        status,
        json!({"metadata": {}, "status": "Failure", "reason": "NonZeroExitCode",
            "message": "command terminated with non-zero exit code: command terminated with exit code 3",
            "details": {"causes": [{"reason": "ExitCode", "message": "3"}]}})
    );
    let close = next_message(&mut ws).await.unwrap_err().unwrap();
    assert_eq!(u16::from(close.code), 1000);

    // The kubelet saw a SPDY upgrade, not the client's WebSocket.
    let seen = fake.requests();
    let req = seen.last().unwrap();
    assert_eq!(req.method, "POST");
    assert_eq!(
        req.uri,
        "/exec/default/sp/c1?command=sh&error=1&input=1&output=1"
    );
    assert_eq!(req.headers["upgrade"], "SPDY/3.1");
    assert_eq!(
        req.headers["x-stream-protocol-version"],
        "v4.channel.k8s.io"
    );
    assert!(req.headers.get("sec-websocket-key").is_none());

    // A refused upgrade (the fake kubelet wants at least one stream) is reported on the
    // error channel of the accepted WebSocket.
    let (mut ws, _) = websocket(
        &s,
        &format!("{PODS}/one/exec?command=ls"),
        "v5.channel.k8s.io",
    )
    .await
    .unwrap();
    let status = next_message(&mut ws).await.unwrap();
    assert_eq!(status[0], 3);
    let status: Value = serde_json::from_slice(&status[1..]).unwrap();
    assert_eq!(status["reason"], "InternalError");
    assert_eq!(status["code"], 500);
    assert_eq!(
        status["message"],
        "Internal error occurred: unable to upgrade connection: you must specify at least 1 of stdin, stdout, stderr"
    );
    assert!(next_message(&mut ws).await.is_err());

    // A client offering v5 with a broken handshake is refused before anything is proxied.
    let before = fake.requests().len();
    let resp = upgrade_request(
        &s,
        "GET",
        &format!("{PODS}/sp/exec?command=sh&stdout=true"),
        &[
            ("connection", "Upgrade"),
            ("upgrade", "websocket"),
            ("sec-websocket-version", "13"),
            ("sec-websocket-key", "short"),
            ("sec-websocket-protocol", "v5.channel.k8s.io"),
        ],
    )
    .await;
    assert_eq!(resp.status(), 400);
    assert_eq!(fake.requests().len(), before);

    let metrics = s.metrics().await;
    for code in ["200", "500", "400"] {
        assert!(
            metrics.contains(&format!(
                "apiserver_stream_translator_requests_total{{code=\"{code}\"}}"
            )),
            "{metrics}"
        );
    }
}

#[tokio::test]
async fn logs_stream_over_websocket() {
    use base64::Engine;
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let (_fake, s) = setup().await;
    for protocol in ["binary.k8s.io", "base64.binary.k8s.io"] {
        let (mut ws, resp) = websocket(&s, &format!("{PODS}/one/log"), protocol)
            .await
            .unwrap();
        assert_eq!(resp.headers()["sec-websocket-protocol"], protocol);
        let (mut got, mut messages) = (Vec::new(), 0);
        loop {
            let m = tokio::time::timeout(Duration::from_secs(20), ws.next())
                .await
                .expect("a message in time");
            match m {
                Some(Ok(Message::Binary(b))) if protocol == "binary.k8s.io" => got.extend(b),
                Some(Ok(Message::Text(t))) if protocol != "binary.k8s.io" => got.extend(
                    base64::engine::general_purpose::STANDARD
                        .decode(t.as_str())
                        .unwrap(),
                ),
                Some(Ok(Message::Close(c))) => {
                    assert_eq!(u16::from(c.unwrap().code), 1000);
                    break;
                }
                other => panic!("unexpected {other:?}"),
            }
            messages += 1;
        }
        assert_eq!(got, b"line 1\nline 2\n");
        // The first message is the empty one that opens the stream.
        assert!(messages >= 2);
    }
    // Only unknown subprotocols: refused.
    assert!(
        websocket(&s, &format!("{PODS}/one/log"), "v4.channel.k8s.io")
            .await
            .is_err()
    );
    // Errors before the stream starts are ordinary statuses.
    let resp = upgrade_request(
        &s,
        "GET",
        &format!("{PODS}/nope/log"),
        &[
            ("connection", "Upgrade"),
            ("upgrade", "websocket"),
            ("sec-websocket-version", "13"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ],
    )
    .await;
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn websocket_portforward_tunnels_spdy() {
    use futures::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    let (fake, s) = setup().await;
    let (mut ws, resp) = websocket(
        &s,
        &format!("{PODS}/one/portforward"),
        "SPDY/3.1+portforward.k8s.io",
    )
    .await
    .unwrap();
    // The kubelet's chosen SPDY protocol, prefixed, is the WebSocket's subprotocol.
    assert_eq!(
        resp.headers()["sec-websocket-protocol"],
        "SPDY/3.1+portforward.k8s.io"
    );
    // Binary messages are the SPDY byte stream (the fake kubelet echoes it).
    for chunk in [&b"\x80\x03\x00\x01"[..], &b"more bytes"[..]] {
        ws.send(Message::Binary(chunk.to_vec().into()))
            .await
            .unwrap();
        let mut got = Vec::new();
        while got.len() < chunk.len() {
            got.extend(next_message(&mut ws).await.unwrap());
        }
        assert_eq!(got, chunk);
    }
    let seen = fake.requests();
    let req = seen.last().unwrap();
    assert_eq!(req.method, "POST");
    assert_eq!(req.uri, "/portForward/default/one");
    assert_eq!(req.headers["upgrade"], "SPDY/3.1");
    assert_eq!(
        req.headers["x-stream-protocol-version"],
        "portforward.k8s.io"
    );
    assert!(req.headers.get("sec-websocket-key").is_none());
    assert!(req.headers.get("sec-websocket-protocol").is_none());
}

#[tokio::test]
async fn failed_upgrades_and_bad_stream_requests() {
    let (fake, s) = setup().await;
    // The kubelet refuses (no stream requested): its answer reaches the client as is.
    let resp = upgrade_request(&s, "POST", &format!("{PODS}/one/exec?command=ls"), SPDY).await;
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.headers()["content-type"], "text/plain; charset=utf-8");
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(
        &body[..],
        b"you must specify at least 1 of stdin, stdout, stderr"
    );
    assert_eq!(fake.requests()[0].uri, "/exec/default/one/c1?command=ls");

    // Not an upgrade request.
    let (code, st) = s
        .post(
            &format!("{PODS}/one/exec?command=ls&stdout=true"),
            json!({}),
        )
        .await;
    assert_eq!(
        (code, st["message"].as_str()),
        (400, Some("Upgrade request required"))
    );
    let resp = upgrade_request(
        &s,
        "POST",
        &format!("{PODS}/pending/exec?command=ls&stdout=1"),
        SPDY,
    )
    .await;
    assert_eq!(resp.status(), 400);
    let st: Value =
        serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(st["message"], "pod pending does not have a host assigned");
    let resp = upgrade_request(&s, "GET", &format!("{PODS}/two/attach?stdout=1"), SPDY).await;
    assert_eq!(resp.status(), 400);
    let resp = upgrade_request(
        &s,
        "GET",
        &format!("{PODS}/one/portforward?ports=http"),
        SPDY,
    )
    .await;
    assert_eq!(resp.status(), 400);
    let (code, _) = s
        .put(&format!("{PODS}/one/exec?command=ls"), json!({}))
        .await;
    assert_eq!(code, 405);
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn node_proxy_maps_paths_to_the_kubelet() {
    let (fake, s) = setup().await;
    let (code, got) = s
        .get("/api/v1/nodes/n1/proxy/stats/summary?only_cpu_and_memory=true")
        .await;
    assert_eq!(code, 200, "{got}");
    assert_eq!(got["uri"], "/stats/summary?only_cpu_and_memory=true");
    assert_eq!(got["method"], "GET");
    assert_eq!(got["xff"], "127.0.0.1");
    let r = s
        .http
        .post(s.url("/api/v1/nodes/n1/proxy/configz/"))
        // Client credentials stay with the apiserver (a bearer token would be checked and refused).
        .header("authorization", "Basic c2VjcmV0")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-kubelet"], "fake");
    assert!(
        r.headers().get("keep-alive").is_none(),
        "hop-by-hop headers are dropped"
    );
    let got: Value = r.json().await.unwrap();
    assert_eq!(
        (
            got["method"].as_str(),
            got["uri"].as_str(),
            got["body"].as_str()
        ),
        (Some("POST"), Some("/configz/"), Some("hello"))
    );
    assert!(fake.requests()[1].headers.get("authorization").is_none());
    let (code, got) = s.get("/api/v1/nodes/n1/proxy/").await;
    assert_eq!((code, got["uri"].as_str()), (200, Some("/")));

    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = no_redirects
        .get(s.url("/api/v1/nodes/n1/proxy?x=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 301);
    assert_eq!(r.headers()["location"], "/api/v1/nodes/n1/proxy/?x=1");

    let (code, st) = s.get("/api/v1/nodes/n1:4194/proxy/metrics").await;
    assert_eq!(
        (code, st["message"].as_str()),
        (400, Some("address not allowed"))
    );
    let (code, st) = s.get("/api/v1/nodes/ftp:n1:21/proxy/").await;
    assert_eq!(
        (code, st["message"].as_str()),
        (400, Some("invalid node request \"ftp:n1:21\""))
    );
    let (code, st) = s.get("/api/v1/nodes/nope/proxy/x").await;
    assert_eq!(
        (code, st["message"].as_str()),
        (404, Some("nodes \"nope\" not found"))
    );

    let resp = upgrade_request(&s, "GET", "/api/v1/nodes/n1/proxy/some/stream", SPDY).await;
    assert_eq!(resp.status(), 101);
    assert_echo(resp).await;
    assert_eq!(fake.requests().last().unwrap().uri, "/some/stream");
}

#[tokio::test]
async fn unreachable_or_unverified_kubelets_give_error_statuses() {
    let (fake, s) = setup().await;
    let dead = closed_port();
    node(
        &s,
        "dead",
        json!([{"type": "InternalIP", "address": "127.0.0.1"}]),
        dead,
    )
    .await;
    node(
        &s,
        "noaddr",
        json!([{"type": "ExternalIP", "address": "1.2.3.4"}]),
        10250,
    )
    .await;
    pod(&s, "orphan", Some("dead"), one_container()).await;
    pod(&s, "lost", Some("noaddr"), one_container()).await;

    let (code, st) = s.get(&format!("{PODS}/orphan/log?tailLines=1")).await;
    assert_eq!(code, 500);
    assert_eq!(
        st,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": format!("Get \"https://127.0.0.1:{dead}/containerLogs/default/orphan/c1?tailLines=1\": dial tcp 127.0.0.1:{dead}: connect: connection refused"),
            "code": 500})
    );
    let resp = upgrade_request(
        &s,
        "POST",
        &format!("{PODS}/orphan/exec?command=ls&stdout=1"),
        SPDY,
    )
    .await;
    assert_eq!(resp.status(), 500);
    let st: Value =
        serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(
        st["message"],
        format!("error dialing backend: dial tcp 127.0.0.1:{dead}: connect: connection refused")
    );
    let (code, st) = s.get("/api/v1/nodes/dead/proxy/healthz").await;
    assert_eq!(code, 500);
    assert_eq!(
        st["message"],
        format!("dial tcp 127.0.0.1:{dead}: connect: connection refused")
    );
    let (code, st) = s.get(&format!("{PODS}/lost/log")).await;
    assert_eq!(code, 500);
    assert_eq!(
        st["message"],
        "no preferred addresses found; known addresses: [{ExternalIP 1.2.3.4}]"
    );
    assert!(fake.requests().is_empty());

    // An apiserver that trusts another CA refuses the kubelet's certificate, unless the
    // request asks to skip verification.
    let other = fake_kubelet::Pki::new();
    let ca = format!("--kubelet-certificate-authority={}", other.ca.display());
    let cert = format!(
        "--kubelet-client-certificate={}",
        fake.pki.client_cert.display()
    );
    let key = format!("--kubelet-client-key={}", fake.pki.client_key.display());
    let s2 = start(&[&ca, &cert, &key]).await;
    node(
        &s2,
        "n1",
        json!([{"type": "InternalIP", "address": "127.0.0.1"}]),
        fake.port,
    )
    .await;
    pod(&s2, "one", Some("n1"), one_container()).await;
    let (code, st) = s2.get(&format!("{PODS}/one/log")).await;
    assert_eq!(code, 500);
    assert_eq!(
        st["message"],
        format!(
            "Get \"https://127.0.0.1:{}/containerLogs/default/one/c1\": tls: failed to verify certificate: x509: certificate signed by unknown authority",
            fake.port
        )
    );
    let r = s2
        .http
        .get(s2.url(&format!("{PODS}/one/log?insecureSkipTLSVerifyBackend=true")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "line 1\nline 2\n");
}

#[tokio::test]
async fn discovery_and_openapi_list_the_proxied_subresources() {
    let s = start(&[]).await;
    let (_, list) = s.get("/api/v1").await;
    let find = |name: &str| {
        list["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .cloned()
            .unwrap_or(Value::Null)
    };
    assert_eq!(find("pods/log")["kind"], "Pod");
    assert_eq!(find("pods/log")["verbs"], json!(["get"]));
    assert_eq!(find("pods/exec")["kind"], "PodExecOptions");
    assert_eq!(find("pods/exec")["verbs"], json!(["create", "get"]));
    assert_eq!(find("pods/portforward")["kind"], "PodPortForwardOptions");
    assert_eq!(find("nodes/proxy")["kind"], "NodeProxyOptions");
    let (code, doc) = s.get("/openapi/v2").await;
    assert_eq!(code, 200);
    assert!(doc["paths"]["/api/v1/namespaces/{namespace}/pods/{name}/exec"]["post"].is_object());
    assert!(doc["paths"]["/api/v1/nodes/{name}/proxy/{path}"]["get"].is_object());
}
