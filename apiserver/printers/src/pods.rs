//! Pod and PodTemplate rows (printPod / printPodTemplate in printers.go): the Ready count,
//! the aggregate Status reason (Init:x/y, CrashLoopBackOff, Completed, Terminating, ...),
//! restarts with the time of the last restart, and the wide IP/Node/Nominated/Gates cells.

use std::collections::HashMap;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{
    Container, ContainerStatus, Pod, PodCondition, PodSpec, PodStatus, PodTemplate,
};
use serde_json::{Value, json};

use crate::duration::{since, time};
use crate::format::{age, format_labels, layout_containers, name, s};
use crate::{AGE, ColumnDef, NAME, TablePrinter, col, wide};

/// Pod.status.reason set by the node lifecycle controller for unreachable nodes.
const NODE_UNREACHABLE_POD_REASON: &str = "NodeLost";

impl TablePrinter for Pod {
    fn columns() -> Option<Vec<ColumnDef>> {
        Some(vec![
            NAME,
            col(
                "Ready",
                "string",
                "The aggregate readiness state of this pod for accepting traffic.",
            ),
            col(
                "Status",
                "string",
                "The aggregate status of the containers in this pod.",
            ),
            col(
                "Restarts",
                "string",
                "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
            ),
            AGE,
            wide(
                "IP",
                "string",
                "podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.",
            ),
            wide(
                "Node",
                "string",
                "NodeName indicates in which node this pod is scheduled.",
            ),
            wide(
                "Nominated Node",
                "string",
                "nominatedNodeName is set only when this pod preempts other pods on the node, but it cannot be scheduled right away as preemption victims receive their graceful termination periods.",
            ),
            wide(
                "Readiness Gates",
                "string",
                "If specified, all readiness gates will be evaluated for pod readiness.",
            ),
        ])
    }

    fn cells(&self, now: Timestamp) -> Vec<Value> {
        let summary = summarize(self);
        let status = self.status.clone().unwrap_or_default();
        let spec = self.spec.clone().unwrap_or_default();
        let restarts = match summary.last_restart {
            Some(t) if summary.restarts != 0 => {
                format!("{} ({} ago)", summary.restarts, since(Some(t), now))
            }
            _ => summary.restarts.to_string(),
        };
        let non_empty = |v: String| {
            if v.is_empty() {
                "<none>".to_string()
            } else {
                v
            }
        };
        vec![
            name(&self.metadata),
            json!(format!("{}/{}", summary.ready, summary.total)),
            json!(summary.reason),
            json!(restarts),
            age(&self.metadata, now),
            json!(non_empty(pod_ip(&status))),
            json!(non_empty(s(spec.node_name.as_ref()))),
            json!(non_empty(s(status.nominated_node_name.as_ref()))),
            json!(readiness_gates(&spec, &status)),
        ]
    }

    fn row_conditions(&self) -> Vec<Value> {
        let phase = self.status.as_ref().and_then(|s| s.phase.as_deref());
        let (reason, message) = match phase {
            Some("Succeeded") => ("Succeeded", "The pod has completed successfully."),
            Some("Failed") => ("Failed", "The pod failed."),
            _ => return Vec::new(),
        };
        vec![json!({"type": "Completed", "status": "True", "reason": reason, "message": message})]
    }
}

/// The aggregate pod state computed by printPod.
#[derive(Debug)]
struct Summary {
    ready: usize,
    total: usize,
    reason: String,
    restarts: i64,
    last_restart: Option<Timestamp>,
}

fn is_restartable(c: Option<&&Container>) -> bool {
    c.is_some_and(|c| c.restart_policy.as_deref() == Some("Always"))
}

fn condition_true(conditions: &[PodCondition], type_: &str) -> bool {
    conditions
        .iter()
        .any(|c| c.type_ == type_ && c.status == "True")
}

/// `isPodInitializedConditionTrue`: the first Initialized condition decides.
fn initialized(conditions: &[PodCondition]) -> bool {
    conditions
        .iter()
        .find(|c| c.type_ == "Initialized")
        .is_some_and(|c| c.status == "True")
}

/// Finish time of the container's last termination, if any.
fn last_termination(c: &ContainerStatus) -> Option<Timestamp> {
    let t = c.last_state.as_ref()?.terminated.as_ref()?;
    time(t.finished_at.as_ref())
}

fn summarize(pod: &Pod) -> Summary {
    let empty_spec = PodSpec::default();
    let empty_status = PodStatus::default();
    let spec = pod.spec.as_ref().unwrap_or(&empty_spec);
    let status = pod.status.as_ref().unwrap_or(&empty_status);
    let conditions = status.conditions.as_deref().unwrap_or_default();
    let init_specs = spec.init_containers.as_deref().unwrap_or_default();

    let mut restarts: i64 = 0;
    let mut sidecar_restarts: i64 = 0;
    let mut total = spec.containers.len();
    let mut ready = 0;
    let mut last_restart: Option<Timestamp> = None;
    let mut last_sidecar_restart: Option<Timestamp> = None;

    let phase = s(status.phase.as_ref());
    let mut reason = match status.reason.as_deref() {
        Some(r) if !r.is_empty() => r.to_string(),
        _ => phase.clone(),
    };
    if conditions
        .iter()
        .any(|c| c.type_ == "PodScheduled" && c.reason.as_deref() == Some("SchedulingGated"))
    {
        reason = "SchedulingGated".to_string();
    }

    let mut init_by_name: HashMap<&str, &Container> = HashMap::new();
    for c in init_specs {
        init_by_name.insert(c.name.as_str(), c);
        if c.restart_policy.as_deref() == Some("Always") {
            total += 1;
        }
    }

    let mut initializing = false;
    for (i, c) in status.init_container_statuses.iter().flatten().enumerate() {
        let state = c.state.clone().unwrap_or_default();
        let restartable = is_restartable(init_by_name.get(c.name.as_str()));
        restarts += i64::from(c.restart_count);
        let finished = last_termination(c);
        if last_restart < finished {
            last_restart = finished;
        }
        if restartable {
            sidecar_restarts += i64::from(c.restart_count);
            if last_sidecar_restart < finished {
                last_sidecar_restart = finished;
            }
        }
        if state.terminated.as_ref().is_some_and(|t| t.exit_code == 0) {
            continue;
        }
        if restartable && c.started == Some(true) {
            if c.ready {
                ready += 1;
            }
            continue;
        }
        if let Some(t) = &state.terminated {
            // Initialization failed.
            reason = match t.reason.as_deref() {
                Some(r) if !r.is_empty() => format!("Init:{r}"),
                _ => match t.signal {
                    Some(sig) if sig != 0 => format!("Init:Signal:{sig}"),
                    _ => format!("Init:ExitCode:{}", t.exit_code),
                },
            };
        } else if let Some(r) = state
            .waiting
            .as_ref()
            .and_then(|w| w.reason.as_deref())
            .filter(|r| !r.is_empty() && *r != "PodInitializing")
        {
            reason = format!("Init:{r}");
        } else {
            reason = format!("Init:{}/{}", i, init_specs.len());
        }
        initializing = true;
        break;
    }

    if !initializing || initialized(conditions) {
        restarts = sidecar_restarts;
        last_restart = last_sidecar_restart;
        let mut has_running = false;
        for c in status.container_statuses.iter().flatten().rev() {
            let state = c.state.clone().unwrap_or_default();
            restarts += i64::from(c.restart_count);
            let finished = last_termination(c);
            if last_restart < finished {
                last_restart = finished;
            }
            let waiting = state.waiting.as_ref().and_then(|w| w.reason.as_deref());
            if let Some(r) = waiting.filter(|r| !r.is_empty()) {
                reason = r.to_string();
            } else if let Some(t) = &state.terminated {
                reason = match t.reason.as_deref() {
                    Some(r) if !r.is_empty() => r.to_string(),
                    _ => match t.signal {
                        Some(sig) if sig != 0 => format!("Signal:{sig}"),
                        _ => format!("ExitCode:{}", t.exit_code),
                    },
                };
            } else if c.ready && state.running.is_some() {
                has_running = true;
                ready += 1;
            }
        }
        // A "Completed" pod with a container still running is back to Running (or NotReady).
        if reason == "Completed" && has_running {
            reason = if condition_true(conditions, "Ready") {
                "Running".to_string()
            } else {
                "NotReady".to_string()
            };
        }
    }

    if pod.metadata.deletion_timestamp.is_some() {
        if status.reason.as_deref() == Some(NODE_UNREACHABLE_POD_REASON) {
            reason = "Unknown".to_string();
        } else if phase != "Failed" && phase != "Succeeded" {
            reason = "Terminating".to_string();
        }
    }

    Summary {
        ready,
        total,
        reason,
        restarts,
        last_restart,
    }
}

/// The first pod IP as the internal type holds it: `podIP` wins over `podIPs[0]`.
fn pod_ip(status: &PodStatus) -> String {
    match status.pod_ip.as_deref() {
        Some(ip) if !ip.is_empty() => ip.to_string(),
        _ => status
            .pod_ips
            .iter()
            .flatten()
            .next()
            .map(|p| p.ip.clone())
            .unwrap_or_default(),
    }
}

fn readiness_gates(spec: &PodSpec, status: &PodStatus) -> String {
    let gates = spec.readiness_gates.as_deref().unwrap_or_default();
    if gates.is_empty() {
        return "<none>".to_string();
    }
    let conditions = status.conditions.as_deref().unwrap_or_default();
    let true_count = gates
        .iter()
        .filter(|g| {
            conditions
                .iter()
                .find(|c| c.type_ == g.condition_type)
                .is_some_and(|c| c.status == "True")
        })
        .count();
    format!("{}/{}", true_count, gates.len())
}

impl TablePrinter for PodTemplate {
    fn columns() -> Option<Vec<ColumnDef>> {
        Some(vec![
            NAME,
            col(
                "Containers",
                "string",
                "Names of each container in the template.",
            ),
            col(
                "Images",
                "string",
                "Images referenced by each container in the template.",
            ),
            col("Pod Labels", "string", "The labels for the pod template."),
        ])
    }

    fn cells(&self, _now: Timestamp) -> Vec<Value> {
        let template = self.template.clone().unwrap_or_default();
        let containers = template.spec.map(|s| s.containers).unwrap_or_default();
        let (names, images) = layout_containers(&containers);
        let labels = template.metadata.and_then(|m| m.labels);
        vec![
            name(&self.metadata),
            json!(names),
            json!(images),
            json!(format_labels(labels.as_ref())),
        ]
    }
}
