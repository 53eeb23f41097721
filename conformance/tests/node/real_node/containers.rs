//! Containers: init containers, sidecars, termination messages, environment, image pulls, restarts, lifecycle hooks (upstream `test/e2e/common/node/{init_container,runtime,expansion,downwardapi,lifecycle_hook}.go`).

use super::*;

/// [sig-node] InitContainer [NodeConformance] should invoke init containers on a RestartNever pod [Conformance]
#[tokio::test]
async fn init_container_should_invoke_init_containers_on_a_restart_never_pod() {
    let (_c, _ns, pods) = setup("init-container").await;
    pods.create(
        &PostParams::default(),
        &pod(
            "pod-init",
            json!({
        "restartPolicy": "Never",
        "initContainers": [
            {"name": "init1", "image": BUSYBOX, "command": ["/bin/true"]},
            {"name": "init2", "image": BUSYBOX, "command": ["/bin/true"]}],
        "containers": [{"name": "run1", "image": BUSYBOX, "command": ["/bin/true"]}]}),
        ),
    )
    .await
    .unwrap();
    let p = wait_phase(&pods, "pod-init", &["Succeeded", "Failed"]).await;
    let st = p.status.unwrap();
    assert_eq!(st.phase.as_deref(), Some("Succeeded"));
    let inits = st.init_container_statuses.unwrap();
    assert_eq!(inits.len(), 2);
    for s in &inits {
        let t = s.state.as_ref().unwrap().terminated.as_ref().unwrap();
        assert_eq!(t.exit_code, 0);
        assert_eq!(t.reason.as_deref(), Some("Completed"));
    }
    let init = st
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Initialized")
        .unwrap();
    assert_eq!(init.status, "True");
}

/// [sig-node] InitContainer [NodeConformance] should not start app containers and fail the pod if init containers fail on a RestartNever pod [Conformance]
#[tokio::test]
async fn init_container_should_fail_the_pod_if_init_containers_fail_on_a_restart_never_pod() {
    let (_c, _ns, pods) = setup("init-fail").await;
    pods.create(
        &PostParams::default(),
        &pod(
            "pod-init-fail",
            json!({
        "restartPolicy": "Never",
        "initContainers": [
            {"name": "init1", "image": BUSYBOX, "command": ["/bin/false"]},
            {"name": "init2", "image": BUSYBOX, "command": ["/bin/true"]}],
        "containers": [{"name": "run1", "image": BUSYBOX, "command": ["/bin/true"]}]}),
        ),
    )
    .await
    .unwrap();
    let p = wait_phase(&pods, "pod-init-fail", &["Failed", "Succeeded"]).await;
    let st = p.status.unwrap();
    assert_eq!(st.phase.as_deref(), Some("Failed"));
    let inits = st.init_container_statuses.unwrap();
    assert_eq!(
        inits[0]
            .state
            .as_ref()
            .unwrap()
            .terminated
            .as_ref()
            .unwrap()
            .exit_code,
        1
    );
    assert!(
        inits[1].state.as_ref().unwrap().waiting.is_some(),
        "init2 never ran: {:?}",
        inits[1]
    );
    let app = &st.container_statuses.unwrap()[0];
    assert!(
        app.state.as_ref().unwrap().waiting.is_some(),
        "run1 never ran: {app:?}"
    );
}

async fn termination_message(base: &str, container: serde_json::Value, phase: &str) -> String {
    let (_c, _ns, pods) = setup(base).await;
    pods.create(
        &PostParams::default(),
        &pod(
            "termination",
            json!({
        "restartPolicy": "Never", "containers": [container]}),
        ),
    )
    .await
    .unwrap();
    let p = wait_phase(&pods, "termination", &["Succeeded", "Failed"]).await;
    let st = p.status.unwrap();
    assert_eq!(st.phase.as_deref(), Some(phase));
    let t = st.container_statuses.unwrap()[0]
        .state
        .clone()
        .unwrap()
        .terminated
        .unwrap();
    t.message.unwrap_or_default()
}

/// [sig-node] Container Runtime blackbox test on terminated container should report termination message from log output if TerminationMessagePolicy FallbackToLogsOnError is set [NodeConformance] [Conformance]
#[tokio::test]
async fn container_runtime_should_report_termination_message_from_log_output() {
    let msg = termination_message(
        "termination-log",
        json!({"name": "c", "image": BUSYBOX,
        "command": ["/bin/sh", "-c"], "args": ["/bin/echo -n DONE; /bin/false"],
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "FallbackToLogsOnError"}),
        "Failed",
    )
    .await;
    assert_eq!(msg, "DONE");
}

/// [sig-node] Container Runtime blackbox test on terminated container should report termination message from file when pod succeeds and TerminationMessagePolicy FallbackToLogsOnError is set [NodeConformance] [Conformance]
#[tokio::test]
async fn container_runtime_should_report_termination_message_from_file() {
    let msg = termination_message(
        "termination-file",
        json!({"name": "c", "image": BUSYBOX,
        "command": ["/bin/sh", "-c"], "args": ["/bin/echo -n OK > /dev/termination-custom-log"],
        "terminationMessagePath": "/dev/termination-custom-log",
        "terminationMessagePolicy": "FallbackToLogsOnError"}),
        "Succeeded",
    )
    .await;
    assert_eq!(msg, "OK");
}

/// [sig-node] Container Runtime blackbox test on terminated container should report termination message as empty when pod succeeds and TerminationMessagePolicy FallbackToLogsOnError is set [NodeConformance] [Conformance]
#[tokio::test]
async fn container_runtime_should_report_termination_message_as_empty_when_pod_succeeds() {
    let msg = termination_message(
        "termination-empty",
        json!({"name": "c", "image": BUSYBOX,
        "command": ["/bin/sh", "-c"], "args": ["/bin/echo DONE; /bin/true"],
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "FallbackToLogsOnError"}),
        "Succeeded",
    )
    .await;
    assert_eq!(msg, "");
}

/// [sig-node] Downward API should provide pod name, namespace and IP address as env vars [NodeConformance] [Conformance]
/// and [sig-node] Variable Expansion should allow composing env vars into new env vars [NodeConformance] [Conformance]
#[tokio::test]
async fn downward_api_should_provide_pod_name_namespace_and_ip_as_env_vars() {
    let (_c, ns, pods) = setup("downward-env").await;
    pods.create(&PostParams::default(), &pod("downward", json!({
        "restartPolicy": "Never",
        "containers": [{"name": "c", "image": BUSYBOX, "command": ["sh", "-c", "env > /dev/termination-log"],
            "env": [
                {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                {"name": "HOST_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
                {"name": "FOOBAR", "value": "$(POD_NAME)-in-$(POD_NAMESPACE)"},
                {"name": "ESCAPED", "value": "$$(POD_NAME)"}]}]})))
        .await
        .unwrap();
    let p = wait_phase(&pods, "downward", &["Succeeded", "Failed"]).await;
    let st = p.status.unwrap();
    let env = st.container_statuses.unwrap()[0]
        .state
        .clone()
        .unwrap()
        .terminated
        .unwrap()
        .message
        .unwrap_or_default();
    assert!(env.contains("POD_NAME=downward\n"), "{env}");
    assert!(
        env.contains(&format!("POD_NAMESPACE={}\n", ns.name)),
        "{env}"
    );
    assert!(
        env.contains(&format!("POD_IP={}\n", st.pod_ip.unwrap())),
        "{env}"
    );
    assert!(env.contains("HOST_IP=127.0.0.1\n"), "{env}");
    assert!(
        env.contains(&format!("FOOBAR=downward-in-{}\n", ns.name)),
        "{env}"
    );
    assert!(env.contains("ESCAPED=$(POD_NAME)\n"), "{env}");
    assert!(
        env.contains("KUBERNETES_SERVICE_HOST="),
        "service links: {env}"
    );
}

/// [sig-node] Container Runtime blackbox test when running a container with a new image should not be able to pull image from invalid registry [NodeConformance]
#[tokio::test]
async fn container_runtime_should_not_be_able_to_pull_image_from_invalid_registry() {
    let (c, ns, pods) = setup("image-pull").await;
    pods.create(
        &PostParams::default(),
        &pod(
            "image-pull",
            json!({
        "containers": [{"name": "c", "image": "invalid.registry.example/nope:1.0"}]}),
        ),
    )
    .await
    .unwrap();
    // ErrImagePull first, then ImagePullBackOff, as upstream.
    let seen = std::sync::Mutex::new(Vec::<String>::new()); // for the timeout message
    poll_until("ImagePullBackOff", TICK, WAIT, || async {
        let p = pods.get("image-pull").await.ok()?;
        let w = p
            .status?
            .container_statuses?
            .first()?
            .state
            .clone()?
            .waiting?;
        let reason = w.reason.unwrap_or_default();
        let mut seen = seen.lock().unwrap();
        if seen.last() != Some(&reason) {
            seen.push(reason.clone());
        }
        (reason == "ImagePullBackOff").then_some(())
    })
    .await;
    let seen = seen.into_inner().unwrap();
    // ErrImagePull may be replaced by ImagePullBackOff before a poll sees it (the next sync
    // finds the pull backing off); the events say it happened.
    let _ = seen;
    let p = pods.get("image-pull").await.unwrap();
    assert_eq!(p.status.unwrap().phase.as_deref(), Some("Pending"));
    let events: Api<Event> = c.ns_api(&ns.name);
    let evs = events.list(&ListParams::default()).await.unwrap().items;
    assert!(
        evs.iter().any(|e| e.reason.as_deref() == Some("Failed")
            && e.message
                .as_deref()
                .unwrap_or("")
                .contains("Failed to pull image \"invalid.registry.example/nope:1.0\"")),
        "{:?}",
        evs.iter()
            .map(|e| (&e.reason, &e.message))
            .collect::<Vec<_>>()
    );
    assert!(
        evs.iter().any(|e| e.reason.as_deref() == Some("Failed")
            && e.message.as_deref() == Some("Error: ErrImagePull")),
        "an ErrImagePull happened before the back-off"
    );
}

/// [sig-node] Container Runtime blackbox test when starting a container that exits should run with the expected status [NodeConformance] [Conformance]
/// (restartPolicy Always: the container is restarted and the restart count grows, with CrashLoopBackOff in between)
#[tokio::test]
async fn container_runtime_should_restart_a_container_that_exits() {
    let (_c, _ns, pods) = setup("restart").await;
    pods.create(
        &PostParams::default(),
        &pod(
            "restarter",
            json!({
        "containers": [{"name": "c", "image": BUSYBOX, "command": ["sh", "-c", "exit 3"]}]}),
        ),
    )
    .await
    .unwrap();
    let cs = poll_until("a restart and CrashLoopBackOff", TICK, WAIT, || async {
        let p = pods.get("restarter").await.ok()?;
        let cs = p.status?.container_statuses?.into_iter().next()?;
        let waiting = cs.state.as_ref()?.waiting.as_ref()?.reason.clone()?;
        (cs.restart_count >= 1 && waiting == "CrashLoopBackOff").then_some(cs)
    })
    .await;
    let last = cs.last_state.unwrap().terminated.unwrap();
    assert_eq!(last.exit_code, 3);
    assert_eq!(last.reason.as_deref(), Some("Error"));
    let p = pods.get("restarter").await.unwrap();
    assert_eq!(p.status.unwrap().phase.as_deref(), Some("Running"));
}

/// [sig-node] Container Lifecycle Hook when create a pod with lifecycle hook should execute poststart exec hook properly [NodeConformance] [Conformance]
/// (the hook's effect is read back with exec instead of a separate handler pod)
#[tokio::test]
async fn lifecycle_hook_should_execute_poststart_exec_hook() {
    let (_c, ns, pods) = setup("poststart").await;
    pods.create(&PostParams::default(), &pod("hooked", json!({
        "containers": [{"name": "c", "image": BUSYBOX, "command": ["sleep", "600"],
            "lifecycle": {"postStart": {"exec": {"command": ["sh", "-c", "echo poststart-ran > /tmp/hook"]}}}}]})))
        .await
        .unwrap();
    wait_phase(&pods, "hooked", &["Running"]).await;
    let k = kubectl();
    let out = poll_until("the hook's file", TICK, WAIT, || async {
        let o = k.run(
            &["exec", "-n", &ns.name, "hooked", "--", "cat", "/tmp/hook"],
            None,
        );
        o.success().then_some(o.stdout)
    })
    .await;
    assert_eq!(out, "poststart-ran\n");
}

/// [sig-node] Containers Lifecycle should launch init container serially before a regular container (sidecar:
/// a restartable init container keeps running next to the app container)
#[tokio::test]
async fn sidecar_init_container_runs_alongside_the_app() {
    let (_c, _ns, pods) = setup("sidecar").await;
    pods.create(&PostParams::default(), &pod("sidecar", json!({
        "initContainers": [{"name": "side", "image": BUSYBOX, "restartPolicy": "Always", "command": ["sleep", "600"]}],
        "containers": [{"name": "app", "image": BUSYBOX, "command": ["sleep", "600"]}]})))
        .await
        .unwrap();
    let p = poll_until("both containers running", TICK, WAIT, || async {
        let p = pods.get("sidecar").await.ok()?;
        let st = p.status.clone()?;
        let side = st.init_container_statuses?.into_iter().next()?;
        let app = st.container_statuses?.into_iter().next()?;
        (side.state?.running.is_some() && app.state?.running.is_some()).then_some(p)
    })
    .await;
    let st = p.status.unwrap();
    assert_eq!(st.phase.as_deref(), Some("Running"));
    let init = st
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Initialized")
        .unwrap();
    assert_eq!(init.status, "True");
}
