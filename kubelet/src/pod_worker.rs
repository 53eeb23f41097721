//! One pod's worker: drives the runtime towards the pod's spec and reports its status (upstream
//! `pkg/kubelet/pod_workers.go`, `kubelet.go` SyncPod/SyncTerminatingPod/SyncTerminatedPod,
//! `kuberuntime/kuberuntime_manager.go` computePodActions/SyncPod). A worker owns its state and
//! runs whenever it is notified (pod changed, runtime changed, probe result) or a back-off ends.

use crate::backoff::{Backoff, go_duration};
use crate::kubelet::Kubelet;
use crate::pod_status::{self, StatusInputs, Waiting, is_sidecar};
use crate::runtime_config::{self as rc, pod_uid};
use crate::runtime_pod::{self, ContainerInfo, RuntimePod, State};
use k8s_openapi::api::core::v1::{Container, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

#[derive(Default)]
pub struct WorkerState {
    start_time: Option<Time>,
    backoff: Backoff,
    waiting: HashMap<String, Waiting>,
    failed: Option<(String, String)>,
    last_posted: Option<serde_json::Value>,
    wake_at: Option<Instant>,
    sandbox_warning_sent: bool,
    pod_ips: Vec<String>,
    first_seen: Option<Instant>,
    start_recorded: bool,
}

impl WorkerState {
    fn wake(&mut self, at: Instant) {
        self.wake_at = Some(self.wake_at.map_or(at, |w| w.min(at)));
    }
}

pub fn pod_full_name(pod: &Pod) -> String {
    format!(
        "{}_{}({})",
        pod.metadata.name.as_deref().unwrap_or(""),
        pod.metadata.namespace.as_deref().unwrap_or(""),
        pod_uid(pod)
    )
}

fn grace_period(pod: &Pod) -> i64 {
    if pod.metadata.deletion_timestamp.is_some() {
        if let Some(g) = pod.metadata.deletion_grace_period_seconds {
            return g;
        }
    }
    pod.spec
        .as_ref()
        .and_then(|s| s.termination_grace_period_seconds)
        .unwrap_or(30)
}

fn should_restart(policy: &str, c: &ContainerInfo) -> bool {
    match policy {
        "Always" => true,
        "OnFailure" => c.exit_code != 0,
        _ => false,
    }
}

/// Whether every app container exited and will not be restarted.
fn finished(spec: &k8s_openapi::api::core::v1::PodSpec, rp: &RuntimePod, policy: &str) -> bool {
    !spec.containers.is_empty()
        && spec.containers.iter().all(|c| match rp.latest(&c.name) {
            Some(l) if l.state == State::Exited => !should_restart(policy, l),
            _ => false,
        })
}

/// The worker loop for pod `uid` (named `ns/name`).
pub async fn run(
    kl: Arc<Kubelet>,
    uid: String,
    ns: String,
    name: String,
    notify: Arc<Notify>,
    shutdown: CancellationToken,
) {
    let mut st = WorkerState::default();
    loop {
        st.wake_at = None;
        let pod = kl.lookup(&uid, &ns, &name);
        let finished = match pod {
            Some(pod) => match {
                let started = Instant::now();
                let r = sync(&kl, &pod, &mut st).await;
                kl.metrics.observe_sync(started.elapsed().as_secs_f64());
                r
            } {
                Ok(done) => done,
                Err(e) => {
                    tracing::warn!(pod = %pod_full_name(&pod), error = %e, "error syncing pod, skipping");
                    st.wake(Instant::now() + Duration::from_secs(2));
                    false
                }
            },
            None => match cleanup_orphan(&kl, &uid).await {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!(%uid, error = %e, "cleaning up a removed pod failed; retrying");
                    st.wake(Instant::now() + Duration::from_secs(2));
                    false
                }
            },
        };
        if finished {
            kl.worker_done(&uid);
            return;
        }
        let sleep_until = st
            .wake_at
            .unwrap_or_else(|| Instant::now() + kl.sync_frequency);
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = notify.notified() => {}
            _ = tokio::time::sleep_until(sleep_until.into()) => {}
        }
    }
}

/// Returns true when the worker has nothing left to do (the pod was deleted from the API).
async fn sync(kl: &Kubelet, pod: &Pod, st: &mut WorkerState) -> anyhow::Result<bool> {
    let uid = pod_uid(pod);
    st.first_seen.get_or_insert_with(Instant::now);
    if st.start_time.is_none() {
        st.start_time = pod
            .status
            .as_ref()
            .and_then(|s| s.start_time.clone())
            .or_else(|| Some(Time(jiff::Timestamp::now())));
    }
    let rp = runtime_pod::get(&kl.runtime, &uid).await?;
    let api_phase = pod
        .status
        .as_ref()
        .and_then(|s| s.phase.clone())
        .unwrap_or_default();
    let deleting = pod.metadata.deletion_timestamp.is_some();
    // activeDeadlineSeconds.
    if st.failed.is_none() && !deleting {
        if let (Some(deadline), Some(start)) = (
            pod.spec.as_ref().and_then(|s| s.active_deadline_seconds),
            st.start_time.as_ref(),
        ) {
            let elapsed = jiff::Timestamp::now().as_second() - start.0.as_second();
            if elapsed >= deadline {
                let msg = "Pod was active on the node longer than the specified deadline";
                kl.event(pod, true, "DeadlineExceeded", msg.into());
                st.failed = Some(("DeadlineExceeded".into(), msg.into()));
            } else {
                st.wake(Instant::now() + Duration::from_secs((deadline - elapsed) as u64));
            }
        }
    }
    let terminal = matches!(api_phase.as_str(), "Succeeded" | "Failed") || st.failed.is_some();
    if deleting || terminal {
        if rp.running().next().is_some() || rp.sandboxes.iter().any(|s| s.ready) {
            kill_pod(kl, Some(pod), &rp, grace_period(pod), deleting).await;
        }
        let rp = runtime_pod::get(&kl.runtime, &uid).await?;
        kl.set_runtime_pod(&uid, &rp);
        post_status(kl, pod, &rp, st).await;
        if deleting && rp.running().next().is_none() {
            // Everything stopped: the pod can go (upstream status manager canBeDeleted).
            kl.delete_pod(pod).await;
        }
        return Ok(false);
    }
    let rp = sync_running(kl, pod, rp, st).await?;
    kl.set_runtime_pod(&uid, &rp);
    let first_seen = st.first_seen.unwrap_or_else(Instant::now);
    let all_running = pod.spec.as_ref().is_some_and(|s| {
        s.containers.iter().all(|c| {
            rp.latest(&c.name)
                .is_some_and(|l| l.state == State::Running)
        })
    });
    if all_running && !st.start_recorded {
        st.start_recorded = true;
        kl.metrics
            .pod_start
            .observe(first_seen.elapsed().as_secs_f64());
    }
    post_status(kl, pod, &rp, st).await;
    Ok(false)
}

async fn post_status(kl: &Kubelet, pod: &Pod, rp: &RuntimePod, st: &mut WorkerState) {
    let uid = pod_uid(pod);
    if let Some(sb) = rp.sandboxes.first().filter(|s| s.ip.is_some()) {
        st.pod_ips = sb
            .ip
            .iter()
            .chain(sb.additional_ips.iter())
            .cloned()
            .collect();
    }
    let ready = |c: &str, id: &str| kl.container_ready(&uid, c, id);
    let started = |c: &str, id: &str| kl.container_started(&uid, c, id);
    let generate = |st: &WorkerState| {
        pod_status::generate(
            pod,
            rp,
            &StatusInputs {
                host_ip: &kl.node_ip,
                waiting: &st.waiting,
                ready: &ready,
                started: &started,
                start_time: st.start_time.clone(),
                failed: st.failed.clone(),
                known_pod_ips: &st.pod_ips,
            },
        )
    };
    // The prober learns about new containers first, so a container with a readiness probe is
    // never reported ready before its probe has passed.
    kl.probes_update(pod, &generate(st));
    let status = generate(st);
    let sig = pod_status::significant(&status);
    let api_sig = kl.api_status(pod).as_ref().map(pod_status::significant);
    if api_sig.as_ref() == Some(&sig) {
        st.last_posted = Some(sig);
        return;
    }
    if st.last_posted.as_ref() == Some(&sig) && api_sig.is_none() {
        return;
    }
    match kl.patch_status(pod, &status).await {
        Ok(()) => st.last_posted = Some(sig),
        Err(e) => {
            tracing::info!(pod = %pod_full_name(pod), error = %e, "failed to update pod status; will retry");
            st.wake(Instant::now() + Duration::from_secs(1));
        }
    }
}

/// Brings a live pod's sandbox and containers in line with its spec; returns the new runtime state.
async fn sync_running(
    kl: &Kubelet,
    pod: &Pod,
    mut rp: RuntimePod,
    st: &mut WorkerState,
) -> anyhow::Result<RuntimePod> {
    let uid = pod_uid(pod);
    let spec = pod.spec.clone().unwrap_or_default();
    let policy = spec
        .restart_policy
        .clone()
        .unwrap_or_else(|| "Always".into());
    let volumes = match kl.mount_volumes(pod).await {
        Ok(v) => v,
        Err(msg) => {
            kl.event(pod, true, "FailedMount", msg);
            st.wake(Instant::now() + Duration::from_secs(2));
            return Ok(rp);
        }
    };
    if finished(&spec, &rp, &policy) {
        // Every container finished for good: release the sandbox (its IP) and run nothing.
        if rp.sandboxes.iter().any(|s| s.ready) {
            kill_pod(kl, Some(pod), &rp, grace_period(pod), false).await;
            rp = runtime_pod::get(&kl.runtime, &uid).await?;
        }
        return Ok(rp);
    }
    // Sandbox.
    let ran_before = !rp.containers.is_empty();
    let need_sandbox = rp.ready_sandbox().is_none();
    if need_sandbox {
        if ran_before && policy == "Never" && !rp.sandboxes.is_empty() {
            // The sandbox died after its containers ran: the pod is not restarted.
            return Ok(rp);
        }
        if !rp.sandboxes.is_empty() {
            kl.event(
                pod,
                false,
                "SandboxChanged",
                "Pod sandbox changed, it will be killed and re-created.".into(),
            );
            kill_pod(kl, Some(pod), &rp, grace_period(pod), false).await;
        }
        let attempt = rp.sandboxes.first().map(|s| s.attempt + 1).unwrap_or(0);
        let (cfg, warning) = rc::sandbox_config(pod, attempt, &kl.settings);
        if let Some(w) = warning {
            if !st.sandbox_warning_sent {
                kl.event(pod, true, "MissingClusterDNS", w);
                st.sandbox_warning_sent = true;
            }
        }
        std::fs::create_dir_all(&cfg.log_directory).ok();
        if let Err(e) = kl.runtime.run_pod_sandbox(cfg).await {
            kl.event(
                pod,
                true,
                "FailedCreatePodSandBox",
                format!("Failed to create pod sandbox: {e}"),
            );
            let d = st.backoff.next("sandbox", Instant::now(), e.to_string());
            st.wake(Instant::now() + d);
            return Ok(rp);
        }
        st.backoff.reset("sandbox");
        rp = runtime_pod::get(&kl.runtime, &uid).await?;
    }
    let Some(sandbox) = rp.ready_sandbox().cloned() else {
        return Ok(rp);
    };
    let (sandbox_cfg, _) = rc::sandbox_config(pod, sandbox.attempt, &kl.settings);
    let mut pod_ips: Vec<String> = sandbox.ip.iter().cloned().collect();
    pod_ips.extend(sandbox.additional_ips.clone());
    if rc::host_network(pod) {
        pod_ips = vec![kl.node_ip.clone()];
    } else if !pod_ips.is_empty() {
        st.pod_ips = pod_ips.clone();
    }
    let hosts_path = rc::pod_dir(&kl.settings.root_dir, &uid).join("etc-hosts");
    let hosts = rc::hosts_file(pod, &pod_ips, &kl.settings.cluster_domain);
    if std::fs::read_to_string(&hosts_path).ok().as_deref() != Some(hosts.as_str()) {
        std::fs::create_dir_all(hosts_path.parent().unwrap_or(&hosts_path))?;
        std::fs::write(&hosts_path, hosts)?;
    }
    let ctx = StartCtx {
        sandbox: &sandbox,
        sandbox_cfg: &sandbox_cfg,
        pod_ips: &pod_ips,
        volumes: &volumes,
        hosts_path: &hosts_path,
    };
    let mut changed = false;
    // Liveness restarts and spec changes: kill first, restart below.
    for c in rp.running().cloned().collect::<Vec<_>>() {
        let spec_c = spec
            .containers
            .iter()
            .chain(spec.init_containers.iter().flatten())
            .find(|s| s.name == c.name);
        let reason = if let Some(msg) = kl.restart_requested(&c.id) {
            Some(msg)
        } else {
            match spec_c {
                Some(s) if !c.hash.is_empty() && rc::container_hash(s) != c.hash => Some(format!(
                    "Container {} definition changed, will be restarted",
                    c.name
                )),
                None => Some(format!(
                    "Container {} is not in the pod's spec, will be killed",
                    c.name
                )),
                _ => None,
            }
        };
        if let Some(msg) = reason {
            kl.event_for(pod, &c.name, false, "Killing", msg);
            kill_container(kl, pod, &c, grace_period(pod), true).await;
            changed = true;
        }
    }
    if changed {
        rp = runtime_pod::get(&kl.runtime, &uid).await?;
    }
    // Init containers, in order; sidecars keep running.
    let mut init_done = true;
    for c in spec.init_containers.clone().unwrap_or_default() {
        let latest = rp.latest(&c.name).cloned();
        let sidecar = is_sidecar(&c);
        match latest {
            None => {
                start(kl, pod, &c, &rp, &ctx, st).await;
                changed = true;
                init_done = false;
                break;
            }
            Some(l) if l.state == State::Running || l.state == State::Created => {
                if sidecar && kl.container_started(&uid, &c.name, &l.id) {
                    continue;
                }
                init_done = false;
                break;
            }
            Some(l) => {
                if !sidecar && l.exit_code == 0 {
                    continue;
                }
                if !sidecar && policy == "Never" {
                    // A failed init container fails the pod.
                    init_done = false;
                    break;
                }
                if restart_with_backoff(kl, pod, &c, &l, &rp, &ctx, st).await {
                    changed = true;
                }
                init_done = false;
                break;
            }
        }
    }
    if init_done {
        for c in &spec.containers {
            match rp.latest(&c.name).cloned() {
                None => {
                    start(kl, pod, c, &rp, &ctx, st).await;
                    changed = true;
                }
                Some(l) if l.state == State::Exited || l.state == State::Unknown => {
                    if should_restart(&policy, &l)
                        && restart_with_backoff(kl, pod, c, &l, &rp, &ctx, st).await
                    {
                        changed = true;
                    }
                }
                Some(_) => {
                    st.waiting.remove(&c.name);
                }
            }
        }
    }
    if changed {
        rp = runtime_pod::get(&kl.runtime, &uid).await?;
    }
    if finished(&spec, &rp, &policy) && rp.sandboxes.iter().any(|s| s.ready) {
        kill_pod(kl, Some(pod), &rp, grace_period(pod), false).await;
        rp = runtime_pod::get(&kl.runtime, &uid).await?;
    }
    // Container GC: a restarting container leaves dead instances behind; keep the newest one.
    let surplus = runtime_pod::surplus_dead_containers(&rp);
    if !surplus.is_empty() {
        for id in &surplus {
            if let Err(e) = kl.runtime.remove_container(id).await {
                tracing::debug!(container = %id, error = %e, "removing a dead container");
            }
        }
        rp = runtime_pod::get(&kl.runtime, &uid).await?;
    }
    Ok(rp)
}

struct StartCtx<'a> {
    sandbox: &'a runtime_pod::SandboxInfo,
    sandbox_cfg: &'a crate::cri::v1::PodSandboxConfig,
    pod_ips: &'a [String],
    volumes: &'a crate::kubelet::Volumes,
    hosts_path: &'a std::path::Path,
}

/// Restarts an exited container unless it is backing off; true if it was started.
async fn restart_with_backoff(
    kl: &Kubelet,
    pod: &Pod,
    c: &Container,
    last: &ContainerInfo,
    rp: &RuntimePod,
    ctx: &StartCtx<'_>,
    st: &mut WorkerState,
) -> bool {
    let key = format!("crash:{}", c.name);
    let now = Instant::now();
    let finished_ago = Duration::from_nanos(
        (jiff::Timestamp::now().as_nanosecond() - i128::from(last.finished_at)).max(0) as u64,
    );
    let finished = now.checked_sub(finished_ago).unwrap_or(now);
    if let Some((delay, until)) = st.backoff.in_backoff_since(&key, finished, now) {
        let msg = format!(
            "back-off {} restarting failed container={} pod={}",
            go_duration(delay),
            c.name,
            pod_full_name(pod)
        );
        if st.waiting.get(&c.name).map(|w| w.reason.as_str()) != Some("CrashLoopBackOff") {
            kl.event_for(
                pod,
                &c.name,
                true,
                "BackOff",
                format!(
                    "Back-off restarting failed container {} in pod {}",
                    c.name,
                    pod_full_name(pod)
                ),
            );
        }
        st.waiting.insert(
            c.name.clone(),
            Waiting {
                reason: "CrashLoopBackOff".into(),
                message: msg,
            },
        );
        st.wake(until);
        return false;
    }
    st.backoff.next(&key, now, String::new());
    start(kl, pod, c, rp, ctx, st).await
}

/// Pulls, creates and starts one container (upstream startContainer); true if it started.
async fn start(
    kl: &Kubelet,
    pod: &Pod,
    c: &Container,
    rp: &RuntimePod,
    ctx: &StartCtx<'_>,
    st: &mut WorkerState,
) -> bool {
    let restart_count = rp.latest(&c.name).map(|l| l.restart_count + 1).unwrap_or(0);
    let mut notes = Vec::new();
    let image = crate::images::ensure_image(&kl.runtime, c, &mut st.backoff, &mut notes).await;
    for (warn, reason, msg) in notes {
        kl.event_for(pod, &c.name, warn, reason, msg);
    }
    let image_ref = match image {
        Ok(r) => r,
        Err(w) => {
            if let Some(until) = st
                .backoff
                .until(&format!("image:{}", c.image.as_deref().unwrap_or("")))
            {
                st.wake(until);
            }
            st.waiting.insert(c.name.clone(), w);
            return false;
        }
    };
    let config = match kl
        .container_config(
            pod,
            c,
            restart_count,
            image_ref,
            ctx.pod_ips,
            ctx.volumes,
            ctx.hosts_path,
        )
        .await
    {
        Ok(cfg) => cfg,
        Err(msg) => {
            kl.event_for(pod, &c.name, true, "Failed", format!("Error: {msg}"));
            st.waiting.insert(
                c.name.clone(),
                Waiting {
                    reason: "CreateContainerConfigError".into(),
                    message: msg,
                },
            );
            st.wake(Instant::now() + Duration::from_secs(2));
            return false;
        }
    };
    let id = match kl
        .runtime
        .create_container(&ctx.sandbox.id, config, ctx.sandbox_cfg.clone())
        .await
    {
        Ok(id) => id,
        Err(e) => {
            kl.event_for(pod, &c.name, true, "Failed", format!("Error: {e}"));
            st.waiting.insert(
                c.name.clone(),
                Waiting {
                    reason: "CreateContainerError".into(),
                    message: e.to_string(),
                },
            );
            st.wake(Instant::now() + Duration::from_secs(2));
            return false;
        }
    };
    kl.event_for(
        pod,
        &c.name,
        false,
        "Created",
        format!("Created container: {}", c.name),
    );
    if let Err(e) = kl.runtime.start_container(&id).await {
        kl.event_for(pod, &c.name, true, "Failed", format!("Error: {e}"));
        st.waiting.insert(
            c.name.clone(),
            Waiting {
                reason: "RunContainerError".into(),
                message: e.to_string(),
            },
        );
        return false;
    }
    kl.event_for(
        pod,
        &c.name,
        false,
        "Started",
        format!("Started container {}", c.name),
    );
    st.waiting.remove(&c.name);
    if let Some(hook) = c.lifecycle.as_ref().and_then(|l| l.post_start.as_ref()) {
        if let Err(msg) =
            crate::lifecycle::run_hook(kl, pod, c, &id, hook, Duration::from_secs(30)).await
        {
            kl.event_for(pod, &c.name, true, "FailedPostStartHook", msg);
            let info = ContainerInfo {
                id: id.clone(),
                name: c.name.clone(),
                ..placeholder()
            };
            kill_container(kl, pod, &info, grace_period(pod), false).await;
        }
    }
    true
}

fn placeholder() -> ContainerInfo {
    ContainerInfo {
        id: String::new(),
        name: String::new(),
        sandbox_id: String::new(),
        restart_count: 0,
        state: State::Running,
        created_at: 0,
        started_at: 0,
        finished_at: 0,
        exit_code: 0,
        reason: String::new(),
        message: String::new(),
        image: String::new(),
        image_ref: String::new(),
        hash: String::new(),
        termination_message_path: String::new(),
    }
}

/// Stops one container: the preStop hook (when asked), then SIGTERM and SIGKILL after the grace period.
async fn kill_container(kl: &Kubelet, pod: &Pod, c: &ContainerInfo, grace: i64, pre_stop: bool) {
    let started = Instant::now();
    let spec_c = pod.spec.as_ref().and_then(|s| {
        s.containers
            .iter()
            .chain(s.init_containers.iter().flatten())
            .find(|x| x.name == c.name)
            .cloned()
    });
    if pre_stop {
        if let Some(sc) = &spec_c {
            if let Some(hook) = sc.lifecycle.as_ref().and_then(|l| l.pre_stop.as_ref()) {
                let budget = Duration::from_secs(grace.max(0) as u64);
                if let Err(msg) = crate::lifecycle::run_hook(kl, pod, sc, &c.id, hook, budget).await
                {
                    kl.event_for(pod, &c.name, true, "FailedPreStopHook", msg);
                }
            }
        }
    }
    let remaining = (grace - started.elapsed().as_secs() as i64).max(2.min(grace.max(0)));
    if let Err(e) = kl.runtime.stop_container(&c.id, remaining).await {
        if !e.is_not_found() {
            tracing::warn!(container = %c.id, error = %e, "stopping container failed");
        }
    }
}

/// Stops every running container (in parallel) and then the pod's sandboxes.
pub async fn kill_pod(
    kl: &Kubelet,
    pod: Option<&Pod>,
    rp: &RuntimePod,
    grace: i64,
    pre_stop: bool,
) {
    let running: Vec<ContainerInfo> = rp.running().cloned().collect();
    let futs = running.iter().map(|c| async move {
        if let Some(pod) = pod {
            kl.event_for(
                pod,
                &c.name,
                false,
                "Killing",
                format!("Stopping container {}", c.name),
            );
            kill_container(kl, pod, c, grace, pre_stop).await;
        } else if let Err(e) = kl.runtime.stop_container(&c.id, grace).await {
            tracing::warn!(container = %c.id, error = %e, "stopping container failed");
        }
    });
    futures::future::join_all(futs).await;
    for sb in rp.sandboxes.iter().filter(|s| s.ready) {
        if let Err(e) = kl.runtime.stop_pod_sandbox(&sb.id).await {
            tracing::warn!(sandbox = %sb.id, error = %e, "stopping sandbox failed");
        }
    }
}

/// A pod that is gone from the API: stop and remove everything it left behind.
async fn cleanup_orphan(kl: &Kubelet, uid: &str) -> anyhow::Result<()> {
    let rp = runtime_pod::get(&kl.runtime, uid).await?;
    kill_pod(kl, None, &rp, 0, false).await;
    for c in &rp.containers {
        if let Err(e) = kl.runtime.remove_container(&c.id).await {
            if !e.is_not_found() {
                return Err(e.into());
            }
        }
    }
    for sb in &rp.sandboxes {
        if let Err(e) = kl.runtime.remove_pod_sandbox(&sb.id).await {
            if !e.is_not_found() {
                return Err(e.into());
            }
        }
    }
    kl.forget_pod(uid).await;
    Ok(())
}
