//! kubectl against real containers: logs, exec, cp, port-forward, attach (upstream `test/e2e/kubectl/{kubectl,logs,portforward}.go`).

use super::*;

/// [sig-cli] Kubectl logs logs should be able to retrieve and filter logs [Conformance]
#[tokio::test]
async fn kubectl_logs_should_be_able_to_retrieve_and_filter_logs() {
    let (ns, _pods) = running_busybox(
        "kubectl-logs",
        "for i in 1 2 3; do echo line-$i; done; sleep 0.5; echo to-stderr >&2; sleep 600",
    )
    .await;
    let k = kubectl();
    let n = ns.name.as_str();
    let all = poll_until("the logs", TICK, WAIT, || async {
        let out = k.run(&["logs", "-n", n, "busybox"], None);
        (out.success() && out.stdout.contains("to-stderr")).then_some(out.stdout)
    })
    .await;
    assert_eq!(all, "line-1\nline-2\nline-3\nto-stderr\n");
    assert_eq!(
        k.ok(&["logs", "-n", n, "busybox", "--tail=1"]),
        "to-stderr\n"
    );
    assert_eq!(
        k.ok(&["logs", "-n", n, "busybox", "--limit-bytes=3"]),
        "lin"
    );
    let ts = k.ok(&["logs", "-n", n, "busybox", "--timestamps", "--tail=1"]);
    let (stamp, rest) = ts.split_once(' ').unwrap();
    assert!(
        jiff::Timestamp::strptime("%Y-%m-%dT%H:%M:%S%.fZ", stamp).is_ok()
            || stamp.parse::<jiff::Timestamp>().is_ok(),
        "{ts}"
    );
    assert_eq!(rest, "to-stderr\n");
    let out = k.run(&["logs", "-n", n, "busybox", "-c", "nope"], None);
    assert!(!out.success());
    assert!(
        out.stderr
            .contains("container nope is not valid for pod busybox"),
        "{}",
        out.describe()
    );
}

/// [sig-cli] Kubectl client Simple pod should support exec
/// and [sig-cli] Kubectl client Simple pod should support exec through an HTTP proxy (stdin)
#[tokio::test]
async fn kubectl_simple_pod_should_support_exec() {
    let (ns, _pods) = running_busybox("kubectl-exec", "sleep 600").await;
    let k = kubectl();
    let n = ns.name.as_str();
    assert_eq!(
        k.ok(&[
            "exec",
            "-n",
            n,
            "busybox",
            "--",
            "sh",
            "-c",
            "echo running in container; hostname"
        ]),
        "running in container\nbusybox\n"
    );
    let out = k.run(
        &["exec", "-n", n, "-i", "busybox", "--", "cat"],
        Some("abcd1234"),
    );
    assert!(out.success(), "{}", out.describe());
    assert_eq!(out.stdout, "abcd1234");
    let out = k.run(
        &["exec", "-n", n, "busybox", "--", "sh", "-c", "exit 42"],
        None,
    );
    assert_eq!(out.code, 42, "{}", out.describe());
}

/// [sig-cli] Kubectl client Kubectl copy should copy a file to and from a pod (kubectl cp)
#[tokio::test]
async fn kubectl_cp_copies_files_in_and_out() {
    let (ns, _pods) = running_busybox("kubectl-cp", "sleep 600").await;
    let k = kubectl();
    let n = ns.name.as_str();
    let dir = std::env::temp_dir().join(format!("conformance-cp-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("in.txt");
    std::fs::write(&src, "copied in\n").unwrap();
    k.ok(&[
        "cp",
        src.to_str().unwrap(),
        &format!("{n}/busybox:/tmp/in.txt"),
    ]);
    assert_eq!(
        k.ok(&["exec", "-n", n, "busybox", "--", "cat", "/tmp/in.txt"]),
        "copied in\n"
    );
    let back = dir.join("back.txt");
    k.ok(&[
        "cp",
        &format!("{n}/busybox:/tmp/in.txt"),
        back.to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read_to_string(&back).unwrap(), "copied in\n");
    std::fs::remove_dir_all(&dir).ok();
}

/// Runs `kubectl port-forward pod/busybox :8080` in `ns`, GETs /index.html through the local
/// port it prints, stops kubectl and returns the raw HTTP answer. kubectl's output is read
/// throughout: it prints a line per connection and would die of a closed pipe.
async fn get_through_port_forward(ns: &str) -> String {
    let mut child = kubectl().spawn(&["port-forward", "-n", ns, "pod/busybox", ":8080"]);
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let line = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("port-forward printed its port");
    // "Forwarding from 127.0.0.1:PORT -> 8080"
    let port: u16 = line
        .split("127.0.0.1:")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("unexpected port-forward output {line:?}"));
    let body = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s.write_all(b"GET /index.html HTTP/1.0\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    })
    .await
    .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    body
}

/// [sig-cli] Kubectl Port forwarding With a server listening on localhost that expects a client request should support a client that connects, sends DATA, and disconnects
#[tokio::test]
async fn kubectl_port_forwarding_to_a_pod() {
    let (ns, _pods) = running_busybox(
        "port-forward",
        "mkdir -p /www && echo hello-from-httpd > /www/index.html && httpd -f -p 8080 -h /www",
    )
    .await;
    let body = get_through_port_forward(&ns.name).await;
    assert!(
        body.starts_with("HTTP/1.") && body.contains("hello-from-httpd"),
        "{body}"
    );
}

/// [sig-cli] Kubectl logs should be able to retrieve and filter logs: `kubectl logs -f` streams
#[tokio::test]
async fn kubectl_logs_follow_streams_new_lines() {
    let (ns, _pods) = running_busybox(
        "logs-follow",
        "i=0; while true; do echo tick-$i; i=$((i+1)); sleep 0.3; done",
    )
    .await;
    let mut child = kubectl().spawn(&["logs", "-f", "-n", &ns.name, "busybox"]);
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = vec![];
    while seen.len() < 8 {
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(l) => seen.push(l),
            Err(_) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(seen.len() >= 8, "followed lines: {seen:?}");
    let nums: Vec<u32> = seen
        .iter()
        .filter_map(|l| l.strip_prefix("tick-")?.parse().ok())
        .collect();
    assert_eq!(nums.len(), seen.len(), "{seen:?}");
    assert!(
        nums.windows(2).all(|w| w[1] == w[0] + 1),
        "in order, none lost: {seen:?}"
    );
}

/// [sig-cli] Kubectl client Simple pod should support inline execution and attach (attach part)
#[tokio::test]
async fn kubectl_attach_reaches_the_container_stdin() {
    let (_c, ns, pods) = setup("kubectl-attach").await;
    pods.create(
        &PostParams::default(),
        &pod(
            "attach",
            json!({
        "containers": [{"name": "c", "image": BUSYBOX, "stdin": true,
            "command": ["sh", "-c", "while read l; do echo got:$l; done"]}]}),
        ),
    )
    .await
    .unwrap();
    wait_phase(&pods, "attach", &["Running"]).await;
    let out = kubectl().run(
        &["attach", "-i", "-n", &ns.name, "attach", "-c", "c"],
        Some("hello\n"),
    );
    assert!(out.success(), "{}", out.describe());
    // kubectl ends when its stdin does; what the container made of the line is in its log.
    let k = kubectl();
    let n = ns.name.clone();
    poll_until("the attached line in the log", TICK, WAIT, || async {
        let logs = k.run(&["logs", "-n", &n, "attach"], None);
        logs.stdout.contains("got:hello").then_some(())
    })
    .await;
}

/// The value of one series in the apiserver's /metrics (0 when absent).
fn apiserver_metric(series: &str) -> f64 {
    kubectl()
        .ok(&["get", "--raw", "/metrics"])
        .lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// kubectl 1.37 tries WebSockets first (KEP-4006): `exec`, `attach` and `cp` with the
/// `v5.channel.k8s.io` subprotocol, which the apiserver translates to SPDY towards the
/// kubelet, and `port-forward` with `SPDY/3.1+portforward.k8s.io`, which it tunnels. The
/// apiserver's `apiserver_stream_translator_requests_total` and
/// `apiserver_stream_tunnel_requests_total` show these paths were taken (a fallback to SPDY
/// would leave them unchanged), and exit codes, stdin and its end come through them.
/// (upstream test/e2e/kubectl/kubectl.go "should support exec" run with WebSockets on.)
#[tokio::test]
async fn kubectl_exec_attach_and_port_forward_over_websockets() {
    let (ns, _pods) = running_busybox(
        "kubectl-websockets",
        "mkdir -p /www && echo hello-over-ws > /www/index.html && httpd -f -p 8080 -h /www",
    )
    .await;
    let k = kubectl();
    let n = ns.name.as_str();
    let translated = r#"apiserver_stream_translator_requests_total{code="200"}"#;
    let tunneled = r#"apiserver_stream_tunnel_requests_total{code="101"}"#;
    let before = apiserver_metric(translated);
    assert_eq!(
        k.ok(&[
            "exec",
            "-n",
            n,
            "busybox",
            "--",
            "sh",
            "-c",
            "echo out; echo err >&2"
        ]),
        "out\n"
    );
    // stdin, and its end (the v5 close signal) so that `wc` can finish.
    let out = k.run(
        &["exec", "-i", "-n", n, "busybox", "--", "wc", "-c"],
        Some("12345"),
    );
    assert!(out.success(), "{}", out.describe());
    assert_eq!(out.stdout.trim(), "5");
    let out = k.run(
        &["exec", "-n", n, "busybox", "--", "sh", "-c", "exit 7"],
        None,
    );
    assert_eq!(out.code, 7, "{}", out.describe());
    assert!(
        out.stderr.contains("command terminated with exit code 7"),
        "{}",
        out.describe()
    );
    let out = k.run(&["exec", "-n", n, "busybox", "--", "/no/such/binary"], None);
    assert!(!out.success(), "{}", out.describe());
    let after = apiserver_metric(translated);
    assert!(
        after >= before + 3.0,
        "exec did not go through the WebSocket translator: {before} -> {after}"
    );

    let before = apiserver_metric(tunneled);
    let body = get_through_port_forward(n).await;
    assert!(body.contains("hello-over-ws"), "{body}");
    let after = apiserver_metric(tunneled);
    assert!(
        after > before,
        "port-forward did not go through the WebSocket tunnel: {before} -> {after}"
    );
}
