//! The kubelet running real containers (containerd, runc, the CNI bridge) on the node
//! `conformance/run.sh` starts after the fake-node tests (phase 2). Mirrors upstream
//! `test/e2e/common/node/{pods,init_container,runtime,expansion,downwardapi,lifecycle_hook}.go`
//! and `test/e2e/apps/job.go`. Every test is in `real_node` so phase 1 can skip them.

mod real_node {
    use conformance::{Cluster, cluster, poll_until};
    use k8s_openapi::api::batch::v1::Job;
    use k8s_openapi::api::core::v1::{Event, Node, Pod};
    use kube::api::{Api, DeleteParams, ListParams, PostParams};
    use serde_json::json;
    use std::time::Duration;

    const WAIT: Duration = Duration::from_secs(60);
    const TICK: Duration = Duration::from_millis(250);
    const BUSYBOX: &str = "registry.k8s.io/e2e-test-images/busybox:1.36.1-1";

    /// The real node's name (`conformance/run.sh` exports it).
    fn node_name() -> String {
        std::env::var("CONFORMANCE_NODE_NAME")
            .expect("CONFORMANCE_NODE_NAME is not set: run these tests with conformance/run.sh")
    }

    /// A pod pinned (by nodeSelector, through the scheduler) to the real node.
    fn pod(name: &str, spec: serde_json::Value) -> Pod {
        let mut spec = spec;
        spec["nodeSelector"] = json!({"kubernetes.io/hostname": node_name()});
        if spec.get("terminationGracePeriodSeconds").is_none() {
            spec["terminationGracePeriodSeconds"] = json!(1);
        }
        serde_json::from_value(json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name}, "spec": spec}))
        .unwrap()
    }

    async fn wait_phase(api: &Api<Pod>, name: &str, phases: &[&str]) -> Pod {
        poll_until(
            &format!("pod {name} to reach {phases:?}"),
            TICK,
            WAIT,
            || async {
                let p = api.get(name).await.ok()?;
                let phase = p.status.as_ref()?.phase.clone()?;
                phases.contains(&phase.as_str()).then_some(p)
            },
        )
        .await
    }

    async fn setup(base: &str) -> (Cluster, conformance::TestNamespace, Api<Pod>) {
        let c = cluster().await;
        let ns = c.create_namespace(base).await;
        let pods: Api<Pod> = c.ns_api(&ns.name);
        (c, ns, pods)
    }

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

    /// [sig-apps] Job should run a job to completion when tasks succeed [Conformance]
    #[tokio::test]
    async fn job_should_run_a_job_to_completion_when_tasks_succeed() {
        let c = cluster().await;
        let ns = c.create_namespace("job-real").await;
        let jobs: Api<Job> = c.ns_api(&ns.name);
        let job: Job = serde_json::from_value(json!({"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "all-succeed"},
            "spec": {"completions": 2, "parallelism": 2, "backoffLimit": 6, "template": {"spec": {
                "restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
                "nodeSelector": {"kubernetes.io/hostname": node_name()},
                "containers": [{"name": "c", "image": BUSYBOX, "command": ["sh", "-c", "sleep 1"]}]}}}}))
        .unwrap();
        jobs.create(&PostParams::default(), &job).await.unwrap();
        poll_until(
            "the job to complete",
            TICK,
            Duration::from_secs(90),
            || async {
                let j = jobs.get("all-succeed").await.ok()?;
                (j.status?.succeeded? == 2).then_some(())
            },
        )
        .await;
    }

    /// [sig-node] Probing container should be restarted with a exec "cat /tmp/health" liveness probe [NodeConformance] [Conformance]
    #[tokio::test]
    async fn probing_container_should_be_restarted_with_an_exec_liveness_probe() {
        let (c, ns, pods) = setup("liveness").await;
        pods.create(&PostParams::default(), &pod("liveness-exec", json!({
            "containers": [{"name": "busybox", "image": BUSYBOX,
                "command": ["sh", "-c", "echo ok >/tmp/health; sleep 3; rm -f /tmp/health; sleep 600"],
                "livenessProbe": {"exec": {"command": ["cat", "/tmp/health"]},
                    "initialDelaySeconds": 1, "periodSeconds": 1, "failureThreshold": 1}}]})))
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

    /// [sig-storage] ConfigMap should be consumable from pods in volume with mappings [NodeConformance] [Conformance]
    /// and [sig-storage] Projected downwardAPI should provide podname only [NodeConformance] [Conformance]
    #[tokio::test]
    async fn configmap_and_downward_api_volumes_are_consumable() {
        let (c, ns, pods) = setup("volumes").await;
        let cms: Api<k8s_openapi::api::core::v1::ConfigMap> = c.ns_api(&ns.name);
        cms.create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "cm"},
            "data": {"data-1": "value-1", "data-2": "value-2"}}))
            .unwrap(),
        )
        .await
        .unwrap();
        pods.create(&PostParams::default(), &pod("volumes", json!({
            "restartPolicy": "Never",
            "volumes": [
                {"name": "cm", "configMap": {"name": "cm", "items": [{"key": "data-2", "path": "path/to/data-2", "mode": 256}]}},
                {"name": "podinfo", "projected": {"sources": [{"downwardAPI": {"items": [
                    {"path": "podname", "fieldRef": {"fieldPath": "metadata.name"}}]}}]}},
                {"name": "scratch", "emptyDir": {}}],
            "containers": [{"name": "c", "image": BUSYBOX, "command": ["sh", "-c",
                "echo scratch > /scratch/f && { cat /etc/cm/path/to/data-2; echo; cat /etc/podinfo/podname; echo; stat -c %a /etc/cm/path/to/data-2; cat /scratch/f; ls /etc/cm; } > /dev/termination-log"],
                "volumeMounts": [{"name": "cm", "mountPath": "/etc/cm"}, {"name": "podinfo", "mountPath": "/etc/podinfo"},
                    {"name": "scratch", "mountPath": "/scratch"}]}]})))
            .await
            .unwrap();
        let p = wait_phase(&pods, "volumes", &["Succeeded", "Failed"]).await;
        let st = p.status.unwrap();
        let t = st.container_statuses.unwrap()[0]
            .state
            .clone()
            .unwrap()
            .terminated
            .unwrap();
        assert_eq!(st.phase.as_deref(), Some("Succeeded"), "{t:?}");
        assert_eq!(
            t.message.as_deref(),
            Some("value-2\nvolumes\n400\nscratch\npath\n")
        );
    }

    fn kubectl() -> conformance::Kubectl {
        conformance::Kubectl::from_env()
    }

    /// A long-running busybox pod in a new namespace, Running; returns (namespace guard, name).
    async fn running_busybox(base: &str, command: &str) -> (conformance::TestNamespace, Api<Pod>) {
        let (_c, ns, pods) = setup(base).await;
        pods.create(&PostParams::default(), &pod("busybox", json!({
            "containers": [{"name": "busybox", "image": BUSYBOX, "command": ["sh", "-c", command]}]})))
            .await
            .unwrap();
        wait_phase(&pods, "busybox", &["Running"]).await;
        (ns, pods)
    }

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

    /// [sig-cli] Kubectl Port forwarding With a server listening on localhost that expects a client request should support a client that connects, sends DATA, and disconnects
    #[tokio::test]
    async fn kubectl_port_forwarding_to_a_pod() {
        let (ns, _pods) = running_busybox(
            "port-forward",
            "mkdir -p /www && echo hello-from-httpd > /www/index.html && httpd -f -p 8080 -h /www",
        )
        .await;
        let k = kubectl();
        let mut child = k.spawn(&["port-forward", "-n", &ns.name, "pod/busybox", ":8080"]);
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
        assert!(
            body.starts_with("HTTP/1.") && body.contains("hello-from-httpd"),
            "{body}"
        );
    }

    /// [sig-apps] Deployment RollingUpdateDeployment should delete old pods and create new ones [Conformance]
    /// (here: a Deployment's pods run in real containers, and a deleted pod is replaced)
    #[tokio::test]
    async fn deployment_pods_run_and_are_replaced() {
        let c = cluster().await;
        let ns = c.create_namespace("deploy-real").await;
        let deps: Api<k8s_openapi::api::apps::v1::Deployment> = c.ns_api(&ns.name);
        let pods: Api<Pod> = c.ns_api(&ns.name);
        deps.create(&PostParams::default(), &serde_json::from_value(json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "nodeSelector": {"kubernetes.io/hostname": node_name()},
                    "containers": [{"name": "c", "image": BUSYBOX, "command": ["sleep", "3600"]}]}}}})).unwrap())
            .await
            .unwrap();
        let running = |pods: Api<Pod>| async move {
            let l = pods
                .list(&ListParams::default().labels("app=web"))
                .await
                .ok()?;
            let names: Vec<String> = l
                .items
                .iter()
                .filter(|p| {
                    p.metadata.deletion_timestamp.is_none()
                        && p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
                })
                .filter_map(|p| p.metadata.name.clone())
                .collect();
            (names.len() == 2).then_some(names)
        };
        let first = poll_until("2 running pods", TICK, WAIT, || running(pods.clone())).await;
        pods.delete(&first[0], &DeleteParams::default())
            .await
            .unwrap();
        let second = poll_until("a replacement pod running", TICK, WAIT, || {
            let pods = pods.clone();
            let gone = first[0].clone();
            async move { running(pods).await.filter(|n| !n.contains(&gone)) }
        })
        .await;
        assert!(
            second.contains(&first[1]),
            "the other pod kept running: {first:?} -> {second:?}"
        );
        let d = deps.get("web").await.unwrap();
        poll_until(
            "the deployment to report 2 available",
            TICK,
            WAIT,
            || async {
                let d = deps.get("web").await.ok()?;
                (d.status?.available_replicas? == 2).then_some(())
            },
        )
        .await;
        drop(d);
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
        let pods: serde_json::Value = serde_json::from_str(&k.ok(&[
            "get",
            "--raw",
            &format!("/api/v1/nodes/{node}/proxy/pods"),
        ]))
        .unwrap();
        assert_eq!(pods["kind"], "PodList");
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
        std::fs::remove_file(&file).unwrap();
        poll_until("the mirror pod to be gone", TICK, WAIT, || async {
            matches!(pods.get_opt(&mirror_name).await, Ok(None)).then_some(())
        })
        .await;
    }
}
