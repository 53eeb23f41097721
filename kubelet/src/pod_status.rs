//! Generating a pod's API status from what the runtime has (upstream `pkg/kubelet/kubelet_pods.go`
//! generateAPIPodStatus, getPhase, convertToAPIContainerStatuses; `pkg/kubelet/status/generate.go`
//! for the conditions; `pkg/apis/core/helper/qos` for the QoS class).

use crate::runtime_pod::{ContainerInfo, RuntimePod, State};
use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStateRunning, ContainerStateTerminated,
    ContainerStateWaiting, ContainerStatus, HostIP, Pod, PodCondition, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use std::collections::HashMap;

/// Why a container is waiting, when the kubelet knows better than the runtime (image pulls,
/// config errors, crash-loop back-off).
#[derive(Clone, Debug, PartialEq)]
pub struct Waiting {
    pub reason: String,
    pub message: String,
}

/// Inputs besides the pod and the runtime state.
pub struct StatusInputs<'a> {
    pub host_ip: &'a str,
    pub waiting: &'a HashMap<String, Waiting>,
    pub ready: &'a dyn Fn(&str, &str) -> bool,
    pub started: &'a dyn Fn(&str, &str) -> bool,
    pub start_time: Option<Time>,
    /// Set when the kubelet decided the pod failed (deadline exceeded, init failure...).
    pub failed: Option<(String, String)>,
    /// The pod's addresses as last seen (a stopped sandbox no longer reports them).
    pub known_pod_ips: &'a [String],
}

fn ts(nanos: i64) -> Option<Time> {
    if nanos <= 0 {
        return None;
    }
    jiff::Timestamp::from_nanosecond(i128::from(nanos))
        .ok()
        .map(Time)
}

pub fn is_sidecar(c: &Container) -> bool {
    c.restart_policy.as_deref() == Some("Always")
}

fn terminated(c: &ContainerInfo) -> ContainerStateTerminated {
    let reason = if !c.reason.is_empty() {
        c.reason.clone()
    } else if c.exit_code == 0 {
        "Completed".into()
    } else {
        "Error".into()
    };
    ContainerStateTerminated {
        exit_code: c.exit_code,
        signal: None,
        reason: Some(reason),
        message: (!c.message.is_empty()).then(|| c.message.clone()),
        started_at: ts(c.started_at),
        finished_at: ts(c.finished_at),
        container_id: Some(format!("containerd://{}", c.id)),
    }
}

fn container_status(
    spec: &Container,
    rp: &RuntimePod,
    inp: &StatusInputs<'_>,
    default_waiting: &str,
) -> ContainerStatus {
    let name = &spec.name;
    let latest = rp.latest(name);
    let waiting = inp.waiting.get(name);
    let image = latest
        .map(|c| c.image.clone())
        .filter(|i| !i.is_empty())
        .unwrap_or_else(|| spec.image.clone().unwrap_or_default());
    let mut st = ContainerStatus {
        name: name.clone(),
        image,
        image_id: latest.map(|c| c.image_ref.clone()).unwrap_or_default(),
        container_id: latest.map(|c| format!("containerd://{}", c.id)),
        restart_count: latest.map(|c| c.restart_count).unwrap_or(0),
        ready: false,
        started: Some(false),
        ..Default::default()
    };
    let waiting_state = |w: Option<&Waiting>| ContainerState {
        waiting: Some(ContainerStateWaiting {
            reason: Some(
                w.map(|w| w.reason.clone())
                    .unwrap_or_else(|| default_waiting.to_string()),
            ),
            message: w.map(|w| w.message.clone()).filter(|m| !m.is_empty()),
        }),
        ..Default::default()
    };
    let uid = "";
    let _ = uid;
    match latest {
        None => {
            st.state = Some(waiting_state(waiting));
        }
        Some(c) => match c.state {
            State::Running => {
                st.state = Some(ContainerState {
                    running: Some(ContainerStateRunning {
                        started_at: ts(c.started_at),
                    }),
                    ..Default::default()
                });
                let started = (inp.started)(name, &c.id);
                st.started = Some(started);
                st.ready = started && (inp.ready)(name, &c.id);
                if let Some(prev) = rp.previous(name) {
                    st.last_state = Some(ContainerState {
                        terminated: Some(terminated(prev)),
                        ..Default::default()
                    });
                }
            }
            State::Exited | State::Unknown => {
                if let Some(w) = waiting {
                    // Waiting to restart (back-off, pulling...): the exit is the last state.
                    st.state = Some(waiting_state(Some(w)));
                    st.last_state = Some(ContainerState {
                        terminated: Some(terminated(c)),
                        ..Default::default()
                    });
                } else {
                    st.state = Some(ContainerState {
                        terminated: Some(terminated(c)),
                        ..Default::default()
                    });
                    if let Some(prev) = rp.previous(name) {
                        st.last_state = Some(ContainerState {
                            terminated: Some(terminated(prev)),
                            ..Default::default()
                        });
                    }
                }
            }
            State::Created => {
                st.state = Some(waiting_state(waiting.or(Some(&Waiting {
                    reason: "ContainerCreating".into(),
                    message: String::new(),
                }))));
            }
        },
    }
    if st.last_state.is_none() {
        st.last_state = Some(ContainerState::default());
    }
    st
}

/// Upstream getPhase.
fn phase(pod: &Pod, init: &[ContainerStatus], app: &[ContainerStatus]) -> &'static str {
    let spec = pod.spec.clone().unwrap_or_default();
    let policy = spec.restart_policy.as_deref().unwrap_or("Always");
    let inits = spec.init_containers.clone().unwrap_or_default();
    let mut pending_init = 0;
    let mut failed_init = 0;
    for (c, s) in inits.iter().zip(init) {
        if is_sidecar(c) {
            if s.state.as_ref().and_then(|x| x.running.as_ref()).is_none()
                && s.state
                    .as_ref()
                    .and_then(|x| x.terminated.as_ref())
                    .is_none()
                && s.last_state
                    .as_ref()
                    .and_then(|x| x.terminated.as_ref())
                    .is_none()
            {
                pending_init += 1;
            }
            continue;
        }
        match s.state.as_ref().and_then(|x| x.terminated.as_ref()) {
            Some(t) if t.exit_code == 0 => {}
            Some(_) => {
                failed_init += 1;
                pending_init += 1;
            }
            None => pending_init += 1,
        }
    }
    if failed_init > 0 && policy == "Never" {
        return "Failed";
    }
    let (mut running, mut waiting, mut stopped, mut succeeded) = (0, 0, 0, 0);
    for s in app {
        let state = s.state.clone().unwrap_or_default();
        if state.running.is_some() {
            running += 1;
        } else if let Some(t) = &state.terminated {
            stopped += 1;
            if t.exit_code == 0 {
                succeeded += 1;
            }
        } else if state.waiting.is_some() {
            if s.last_state
                .as_ref()
                .and_then(|l| l.terminated.as_ref())
                .is_some()
            {
                stopped += 1;
            } else {
                waiting += 1;
            }
        }
    }
    if pending_init > 0 && running == 0 && stopped == 0 {
        return "Pending";
    }
    if waiting > 0 {
        return "Pending";
    }
    if running > 0 {
        return "Running";
    }
    if stopped > 0 {
        return match policy {
            "Always" => "Running",
            "OnFailure" if succeeded == stopped => "Succeeded",
            "OnFailure" => "Running",
            _ if succeeded == stopped => "Succeeded",
            _ => "Failed",
        };
    }
    "Pending"
}

fn cond(type_: &str, ok: bool, reason: Option<&str>, message: Option<String>) -> PodCondition {
    PodCondition {
        type_: type_.to_string(),
        status: if ok { "True" } else { "False" }.to_string(),
        reason: reason.map(str::to_string),
        message,
        last_probe_time: None,
        last_transition_time: Some(Time(jiff::Timestamp::now())),
        observed_generation: None,
    }
}

/// Upstream's QoS class.
pub fn qos_class(pod: &Pod) -> String {
    let spec = pod.spec.clone().unwrap_or_default();
    let all: Vec<Container> = spec
        .containers
        .iter()
        .cloned()
        .chain(spec.init_containers.clone().unwrap_or_default())
        .collect();
    let mut any = false;
    let mut guaranteed = true;
    for c in &all {
        let r = c.resources.clone().unwrap_or_default();
        let req = r.requests.clone().unwrap_or_default();
        let lim = r.limits.clone().unwrap_or_default();
        if !req.is_empty() || !lim.is_empty() {
            any = true;
        }
        for k in ["cpu", "memory"] {
            match (req.get(k).or(lim.get(k)), lim.get(k)) {
                (Some(a), Some(b))
                    if crate::env::parse_quantity(&a.0) == crate::env::parse_quantity(&b.0) => {}
                _ => guaranteed = false,
            }
        }
    }
    if !any {
        "BestEffort".into()
    } else if guaranteed {
        "Guaranteed".into()
    } else {
        "Burstable".into()
    }
}

pub fn generate(pod: &Pod, rp: &RuntimePod, inp: &StatusInputs<'_>) -> PodStatus {
    let spec = pod.spec.clone().unwrap_or_default();
    let old = pod.status.clone().unwrap_or_default();
    let inits = spec.init_containers.clone().unwrap_or_default();
    let init_statuses: Vec<ContainerStatus> = inits
        .iter()
        .map(|c| container_status(c, rp, inp, "PodInitializing"))
        .collect();
    let mut init_done = true;
    let mut incomplete = vec![];
    for (c, s) in inits.iter().zip(&init_statuses) {
        let ok = if is_sidecar(c) {
            s.started == Some(true)
        } else {
            s.state
                .as_ref()
                .and_then(|x| x.terminated.as_ref())
                .map(|t| t.exit_code)
                == Some(0)
        };
        if !ok {
            init_done = false;
            incomplete.push(c.name.clone());
        }
    }
    let app_waiting = if init_done {
        "ContainerCreating"
    } else {
        "PodInitializing"
    };
    let app_statuses: Vec<ContainerStatus> = spec
        .containers
        .iter()
        .map(|c| container_status(c, rp, inp, app_waiting))
        .collect();
    let mut phase = phase(pod, &init_statuses, &app_statuses).to_string();
    let (mut reason, mut message) = (None, None);
    if let Some((r, m)) = &inp.failed {
        phase = "Failed".into();
        reason = Some(r.clone());
        message = Some(m.clone());
    }
    // A terminal phase never goes back.
    if matches!(old.phase.as_deref(), Some("Succeeded" | "Failed")) {
        phase = old.phase.clone().unwrap_or_default();
        reason = reason.or(old.reason.clone());
        message = message.or(old.message.clone());
    }
    let unready: Vec<String> = app_statuses
        .iter()
        .filter(|s| !s.ready)
        .map(|s| s.name.clone())
        .collect();
    let sandbox_ready = rp
        .ready_sandbox()
        .is_some_and(|s| s.ip.is_some() || crate::runtime_config::host_network(pod));
    let terminal = matches!(phase.as_str(), "Succeeded" | "Failed");
    let mut conditions = vec![cond(
        "PodReadyToStartContainers",
        sandbox_ready && !terminal,
        None,
        None,
    )];
    conditions.push(if init_done {
        cond("Initialized", true, None, None)
    } else {
        cond(
            "Initialized",
            false,
            Some("ContainersNotInitialized"),
            Some(format!(
                "containers with incomplete status: [{}]",
                incomplete.join(" ")
            )),
        )
    });
    let ready_cond = |t: &str| {
        if terminal && phase == "Succeeded" {
            cond(t, false, Some("PodCompleted"), None)
        } else if !init_done {
            cond(
                t,
                false,
                Some("ContainersNotInitialized"),
                Some(format!(
                    "containers with incomplete status: [{}]",
                    incomplete.join(" ")
                )),
            )
        } else if unready.is_empty() {
            cond(t, true, None, None)
        } else {
            cond(
                t,
                false,
                Some("ContainersNotReady"),
                Some(format!(
                    "containers with unready status: [{}]",
                    unready.join(" ")
                )),
            )
        }
    };
    conditions.push(ready_cond("ContainersReady"));
    conditions.push(ready_cond("Ready"));
    let owned = [
        "PodReadyToStartContainers",
        "Initialized",
        "ContainersReady",
        "Ready",
    ];
    let old_conds = old.conditions.clone().unwrap_or_default();
    for c in &mut conditions {
        if let Some(prev) = old_conds.iter().find(|p| p.type_ == c.type_) {
            if prev.status == c.status {
                c.last_transition_time = prev.last_transition_time.clone();
            }
        }
    }
    // Conditions other components own (PodScheduled, DisruptionTarget...) are kept.
    let mut all: Vec<PodCondition> = old_conds
        .into_iter()
        .filter(|c| !owned.contains(&c.type_.as_str()))
        .collect();
    all.extend(conditions);
    let mut ips: Vec<String> = vec![];
    if crate::runtime_config::host_network(pod) {
        if !inp.host_ip.is_empty() {
            ips.push(inp.host_ip.to_string());
        }
    } else if let Some(sb) = rp.sandboxes.first() {
        ips.extend(sb.ip.clone());
        ips.extend(sb.additional_ips.clone());
    }
    if ips.is_empty() {
        ips = inp.known_pod_ips.to_vec();
    }
    if ips.is_empty() {
        // Keep the address a pod had once its sandbox is gone (terminated pods), as upstream.
        ips = old
            .pod_ips
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|p| p.ip)
            .collect();
    }
    PodStatus {
        phase: Some(phase),
        reason,
        message,
        conditions: Some(all),
        host_ip: (!inp.host_ip.is_empty()).then(|| inp.host_ip.to_string()),
        host_ips: (!inp.host_ip.is_empty()).then(|| {
            vec![HostIP {
                ip: inp.host_ip.to_string(),
            }]
        }),
        pod_ip: ips.first().cloned(),
        pod_ips: (!ips.is_empty()).then(|| ips.iter().map(|ip| PodIP { ip: ip.clone() }).collect()),
        start_time: old.start_time.clone().or(inp.start_time.clone()),
        qos_class: old.qos_class.clone().or_else(|| Some(qos_class(pod))),
        init_container_statuses: (!inits.is_empty()).then_some(init_statuses),
        container_statuses: Some(app_statuses),
        nominated_node_name: old.nominated_node_name.clone(),
        ephemeral_container_statuses: old.ephemeral_container_statuses.clone(),
        resize: old.resize.clone(),
        resource_claim_statuses: old.resource_claim_statuses.clone(),
        ..Default::default()
    }
}

/// The status without the times that change on every generation, to decide whether to post.
pub fn significant(s: &PodStatus) -> serde_json::Value {
    let mut v = serde_json::to_value(s).unwrap_or_default();
    if let Some(conds) = v.get_mut("conditions").and_then(|c| c.as_array_mut()) {
        for c in conds {
            if let Some(o) = c.as_object_mut() {
                o.remove("lastTransitionTime");
                o.remove("lastProbeTime");
            }
        }
    }
    v
}

#[cfg(test)]
mod tests;
