//! Liveness and readiness probes (upstream `test/e2e/common/node/container_probe.go`).

use super::*;

/// [sig-node] Probing container should be restarted with a exec "cat /tmp/health" liveness probe [NodeConformance] [Conformance]
#[tokio::test]
async fn probing_container_should_be_restarted_with_an_exec_liveness_probe() {
    let (c, ns, pods) = setup("liveness").await;
    pods.create(
        &PostParams::default(),
        &pod(
            "liveness-exec",
            json!({
        "containers": [{"name": "busybox", "image": BUSYBOX,
            "command": ["sh", "-c", "echo ok >/tmp/health; sleep 3; rm -f /tmp/health; sleep 600"],
            "livenessProbe": {"exec": {"command": ["cat", "/tmp/health"]},
                "initialDelaySeconds": 1, "periodSeconds": 1, "failureThreshold": 1}}]}),
        ),
    )
    .await
    .unwrap();
    poll_until("the container to be restarted", TICK, WAIT, || async {
        let p = pods.get("liveness-exec").await.ok()?;
        let cs = p.status?.container_statuses?.into_iter().next()?;
        (cs.restart_count >= 1).then_some(())
    })
    .await;
    let events: Api<Event> = c.ns_api(&ns.name);
    let evs = events.list(&ListParams::default()).await.unwrap().items;
    assert!(
        evs.iter().any(|e| e.reason.as_deref() == Some("Unhealthy")
            && e.message
                .as_deref()
                .unwrap_or("")
                .starts_with("Liveness probe failed:")),
        "{:?}",
        evs.iter()
            .map(|e| (&e.reason, &e.message))
            .collect::<Vec<_>>()
    );
}

/// [sig-node] Probing container with readiness probe should not be ready before initial delay and never restart [NodeConformance] [Conformance]
#[tokio::test]
async fn probing_container_readiness_should_not_be_ready_before_initial_delay() {
    let (_c, _ns, pods) = setup("readiness").await;
    pods.create(&PostParams::default(), &pod("readiness", json!({
        "containers": [{"name": "c", "image": BUSYBOX, "command": ["sleep", "600"],
            "readinessProbe": {"exec": {"command": ["true"]}, "initialDelaySeconds": 4, "periodSeconds": 1}}]})))
        .await
        .unwrap();
    let running = wait_phase(&pods, "readiness", &["Running"]).await;
    let started = running
        .status
        .as_ref()
        .unwrap()
        .container_statuses
        .as_ref()
        .unwrap()[0]
        .state
        .as_ref()
        .unwrap()
        .running
        .as_ref()
        .unwrap()
        .started_at
        .clone()
        .unwrap();
    let ready_at = poll_until("the pod to be Ready", TICK, WAIT, || async {
        let p = pods.get("readiness").await.ok()?;
        let c = p
            .status?
            .conditions?
            .into_iter()
            .find(|c| c.type_ == "Ready")?;
        (c.status == "True").then(|| c.last_transition_time.unwrap())
    })
    .await;
    let delay = ready_at.0.as_second() - started.0.as_second();
    assert!(
        delay >= 4,
        "Ready {delay}s after the container started, before initialDelaySeconds"
    );
    let p = pods.get("readiness").await.unwrap();
    assert_eq!(
        p.status.unwrap().container_statuses.unwrap()[0].restart_count,
        0
    );
}
