//! Pod lifecycle on the real node: registration, host and pod IPs, graceful deletion, static pods, the kubelet's own endpoints (upstream `test/e2e/common/node/pods.go`, `test/e2e_node/mirror_pod_test.go`).

use super::*;

/// [sig-node] Node registration: the kubelet's Node is Ready with capacity and node info.
#[tokio::test]
async fn kubelet_registers_a_ready_node() {
    let c = cluster().await;
    let nodes: Api<Node> = c.all_api();
    let n = nodes.get(&node_name()).await.unwrap();
    let status = n.status.unwrap();
    let ready = status
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(ready.status, "True", "{ready:?}");
    assert_eq!(ready.reason.as_deref(), Some("KubeletReady"));
    let cap = status.capacity.unwrap();
    assert_eq!(cap["pods"].0, "110");
    let info = status.node_info.unwrap();
    assert!(
        info.container_runtime_version.starts_with("containerd://"),
        "{info:?}"
    );
    assert_eq!(info.operating_system, "linux");
    let images: Vec<String> = status
        .images
        .unwrap()
        .into_iter()
        .flat_map(|i| i.names.unwrap_or_default())
        .collect();
    assert!(images.iter().any(|i| i == BUSYBOX), "{images:?}");
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> = c.ns_api("kube-node-lease");
    let lease = leases.get(&node_name()).await.unwrap();
    assert_eq!(
        lease.spec.unwrap().holder_identity.as_deref(),
        Some(node_name().as_str())
    );
}

/// [sig-node] Pods should get a host IP [NodeConformance] [Conformance]
#[tokio::test]
async fn pods_should_get_a_host_ip() {
    let (_c, _ns, pods) = setup("pods-hostip").await;
    pods.create(
        &PostParams::default(),
        &pod(
            "pod-hostip",
            json!({
        "containers": [{"name": "test", "image": BUSYBOX, "command": ["sleep", "3600"]}]}),
        ),
    )
    .await
    .unwrap();
    let p = wait_phase(&pods, "pod-hostip", &["Running"]).await;
    let st = p.status.unwrap();
    assert_eq!(st.host_ip.as_deref(), Some("127.0.0.1"));
    let ip = st.pod_ip.expect("pod IP");
    let prefix = std::env::var("CONFORMANCE_POD_PREFIX").unwrap_or_default();
    assert!(
        !prefix.is_empty() && ip.starts_with(&prefix),
        "pod IP {ip} is on the node's bridge ({prefix}*)"
    );
    let cs = &st.container_statuses.unwrap()[0];
    assert!(
        cs.container_id
            .as_deref()
            .unwrap()
            .starts_with("containerd://")
    );
    assert!(cs.state.as_ref().unwrap().running.is_some());
    assert_eq!(st.qos_class.as_deref(), Some("BestEffort"));
}

/// [sig-node] Pods should be submitted and removed [NodeConformance] [Conformance]
/// (graceful deletion: the kubelet stops the containers and removes the pod object)
#[tokio::test]
async fn pods_should_be_submitted_and_removed() {
    let (_c, _ns, pods) = setup("pods-delete").await;
    pods.create(&PostParams::default(), &pod("deleted", json!({
        "terminationGracePeriodSeconds": 30,
        "containers": [{"name": "c", "image": BUSYBOX, "command": ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done"]}]})))
        .await
        .unwrap();
    wait_phase(&pods, "deleted", &["Running"]).await;
    let start = std::time::Instant::now();
    pods.delete("deleted", &DeleteParams::default())
        .await
        .unwrap();
    poll_until("the pod to be gone", TICK, WAIT, || async {
        match pods.get_opt("deleted").await {
            Ok(None) => Some(()),
            _ => None,
        }
    })
    .await;
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "SIGTERM ended it well within the grace period: {:?}",
        start.elapsed()
    );
}

/// The kubelet's own endpoints through the apiserver's nodes/proxy (as `kubectl get --raw`
/// and metrics scrapers use them): /healthz, /metrics with upstream's kubelet_* names, /pods.
#[tokio::test]
async fn kubelet_endpoints_through_nodes_proxy() {
    let k = kubectl();
    let node = node_name();
    let health = k.ok(&[
        "get",
        "--raw",
        &format!("/api/v1/nodes/{node}/proxy/healthz"),
    ]);
    assert_eq!(health, "ok");
    let metrics = k.ok(&[
        "get",
        "--raw",
        &format!("/api/v1/nodes/{node}/proxy/metrics"),
    ]);
    for name in [
        "kubelet_node_name",
        "kubelet_running_pods",
        "kubelet_running_containers",
        "kubelet_pod_start_duration_seconds",
        "kubelet_pod_worker_duration_seconds",
    ] {
        assert!(metrics.contains(name), "{name} missing from:\n{metrics}");
    }
    let pods: serde_json::Value =
        serde_json::from_str(&k.ok(&["get", "--raw", &format!("/api/v1/nodes/{node}/proxy/pods")]))
            .unwrap();
    assert_eq!(pods["kind"], "PodList");
}

/// Static pods (upstream test/e2e_node/mirror_pod_test.go "should be updated when static pod
/// updated" / "should be recreated when mirror pod gracefully deleted"): a manifest in the
/// kubelet's staticPodPath runs, shows up as a mirror pod with its status, and goes away with
/// its file.
#[tokio::test]
async fn static_pod_runs_and_has_a_mirror_pod() {
    let dir = std::env::var("CONFORMANCE_STATIC_POD_DIR").expect("CONFORMANCE_STATIC_POD_DIR");
    let c = cluster().await;
    let ns = c.create_namespace("static-pod").await;
    let pods: Api<Pod> = c.ns_api(&ns.name);
    let file = std::path::Path::new(&dir).join(format!("{}.yaml", ns.name));
    std::fs::write(&file, format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: static-web\n  namespace: {}\nspec:\n  containers:\n  - name: c\n    image: {BUSYBOX}\n    command: [sleep, \"600\"]\n", ns.name)).unwrap();
    let mirror_name = format!("static-web-{}", node_name());
    let mirror = poll_until("the mirror pod to be Running", TICK, WAIT, || async {
        let p = pods.get(&mirror_name).await.ok()?;
        (p.status.as_ref()?.phase.as_deref() == Some("Running")).then_some(p)
    })
    .await;
    let ann = mirror.metadata.annotations.clone().unwrap();
    assert!(ann.contains_key("kubernetes.io/config.mirror"), "{ann:?}");
    assert_eq!(
        ann.get("kubernetes.io/config.source").map(String::as_str),
        Some("file")
    );
    let owner = &mirror.metadata.owner_references.clone().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("Node", node_name().as_str())
    );
    assert!(mirror.status.unwrap().pod_ip.is_some());
    // exec reaches the static pod's container through its mirror pod (the apiserver names the
    // mirror's uid; the kubelet translates it to the static pod's).
    let out = kubectl().run(
        &[
            "-n",
            &ns.name,
            "exec",
            &mirror_name,
            "--",
            "echo",
            "from-static",
        ],
        None,
    );
    assert!(out.success(), "{}", out.describe());
    assert_eq!(out.stdout.trim(), "from-static");
    std::fs::remove_file(&file).unwrap();
    poll_until("the mirror pod to be gone", TICK, WAIT, || async {
        matches!(pods.get_opt(&mirror_name).await, Ok(None)).then_some(())
    })
    .await;
}

/// Reads a WebSocket until the server closes it; returns the data messages (text as bytes).
async fn read_until_close(ws: &mut conformance::WebSocket) -> Vec<Vec<u8>> {
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let mut out = Vec::new();
    loop {
        let m = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("the server closes the WebSocket in time");
        match m {
            Some(Ok(Message::Binary(b))) => out.push(b.to_vec()),
            Some(Ok(Message::Text(t))) => out.push(t.as_bytes().to_vec()),
            Some(Ok(Message::Close(_))) | None => return out,
            Some(Ok(_)) => {}
            Some(Err(e)) => panic!("reading the WebSocket: {e}"),
        }
    }
}

/// [sig-node] Pods should support remote command execution over websockets [NodeConformance] [Conformance]
///
/// The old `channel.k8s.io` subprotocol: the apiserver passes it to the kubelet, whose runtime
/// answers; stdout arrives on channel 1.
#[tokio::test]
async fn pods_should_support_remote_command_execution_over_websockets() {
    let (c, ns, pods) = setup("pods-ws-exec").await;
    pods.create(
        &PostParams::default(),
        &pod(
            "pod-exec-websocket",
            json!({"containers": [{"name": "main", "image": BUSYBOX,
                "command": ["/bin/sh", "-c", "echo container is alive; sleep 600"]}]}),
        ),
    )
    .await
    .unwrap();
    wait_phase(&pods, "pod-exec-websocket", &["Running"]).await;
    let path = format!(
        "/api/v1/namespaces/{}/pods/pod-exec-websocket/exec?stdout=1&stderr=1&container=main&command=echo&command={}",
        ns.name,
        conformance::query_escape("remote execution test")
    );
    let (mut ws, protocol) = c
        .websocket(&path, &["channel.k8s.io"])
        .await
        .unwrap_or_else(|e| panic!("opening the exec WebSocket: {e:?}"));
    assert_eq!(protocol.as_deref(), Some("channel.k8s.io"));
    let mut stdout = Vec::new();
    for msg in read_until_close(&mut ws).await {
        match msg.split_first() {
            Some((1, rest)) => stdout.extend_from_slice(rest),
            // An empty message on another channel is allowed.
            Some((_, [])) | None => {}
            Some((ch, rest)) => panic!(
                "a message on channel {ch}: {:?}",
                String::from_utf8_lossy(rest)
            ),
        }
    }
    let stdout = String::from_utf8_lossy(&stdout);
    assert!(stdout.contains("remote execution test"), "{stdout:?}");
}

/// [sig-node] Pods should support retrieving logs from the container over websockets [NodeConformance] [Conformance]
#[tokio::test]
async fn pods_should_support_retrieving_logs_from_the_container_over_websockets() {
    let (c, ns, pods) = setup("pods-ws-logs").await;
    pods.create(
        &PostParams::default(),
        &pod(
            "pod-logs-websocket",
            json!({"containers": [{"name": "main", "image": BUSYBOX,
                "command": ["/bin/sh", "-c", "echo container is alive; sleep 10000"]}]}),
        ),
    )
    .await
    .unwrap();
    wait_phase(&pods, "pod-logs-websocket", &["Running"]).await;
    let path = format!(
        "/api/v1/namespaces/{}/pods/pod-logs-websocket/log?container=main",
        ns.name
    );
    // The container may not have written its line yet when it is Running.
    let logs = poll_until("the log line over a WebSocket", TICK, WAIT, || async {
        let (mut ws, protocol) = c.websocket(&path, &["binary.k8s.io"]).await.ok()?;
        assert_eq!(protocol.as_deref(), Some("binary.k8s.io"));
        let text: Vec<u8> = read_until_close(&mut ws)
            .await
            .into_iter()
            .filter(|m| !String::from_utf8_lossy(m).trim().is_empty())
            .flatten()
            .collect();
        (!text.is_empty()).then(|| String::from_utf8_lossy(&text).into_owned())
    })
    .await;
    assert_eq!(logs, "container is alive\n");
}
