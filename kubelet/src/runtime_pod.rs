//! What the container runtime has for one pod: its sandboxes and every container instance,
//! newest first (upstream `pkg/kubecontainer` PodStatus, `kuberuntime_manager.go` GetPodStatus).

use crate::cri::{self, Runtime};
use crate::runtime_config::{
    ANN_HASH, ANN_RESTART_COUNT, ANN_TERMINATION_MESSAGE_PATH, ANN_TERMINATION_MESSAGE_POLICY,
    LABEL_CONTAINER_NAME, LABEL_POD_UID,
};

#[cfg(test)]
mod tests {
    use super::*;

    fn c(id: &str, name: &str, state: State, created: i64) -> ContainerInfo {
        ContainerInfo {
            id: id.into(),
            name: name.into(),
            sandbox_id: String::new(),
            restart_count: 0,
            state,
            created_at: created,
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

    #[test]
    fn keeps_one_dead_instance_per_container() {
        let rp = RuntimePod {
            sandboxes: vec![],
            containers: vec![
                c("a4", "a", State::Running, 4),
                c("a3", "a", State::Exited, 3),
                c("b2", "b", State::Exited, 2),
                c("a2", "a", State::Exited, 2),
                c("a1", "a", State::Exited, 1),
                c("b1", "b", State::Exited, 1),
            ],
        };
        assert_eq!(surplus_dead_containers(&rp), vec!["a2", "a1", "b1"]);
    }

    #[test]
    fn log_tail_joins_partial_records() {
        let dir = std::env::temp_dir().join(format!("kubelet-logtail-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("0.log");
        std::fs::write(&f, "2026-01-01T00:00:00Z stdout F one\n2026-01-01T00:00:00Z stdout P tw\n2026-01-01T00:00:00Z stderr F o\n2026-01-01T00:00:01Z stdout P DONE\n").unwrap();
        assert_eq!(super::log_tail(f.to_str().unwrap()), "one\ntwo\nDONE");
        std::fs::remove_dir_all(&dir).ok();
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct SandboxInfo {
    pub id: String,
    pub attempt: u32,
    pub ready: bool,
    pub created_at: i64,
    pub ip: Option<String>,
    pub additional_ips: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum State {
    Created,
    Running,
    Exited,
    Unknown,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ContainerInfo {
    pub id: String,
    pub name: String,
    pub sandbox_id: String,
    pub restart_count: i32,
    pub state: State,
    pub created_at: i64,
    pub started_at: i64,
    pub finished_at: i64,
    pub exit_code: i32,
    pub reason: String,
    pub message: String,
    pub image: String,
    pub image_ref: String,
    pub hash: String,
    pub termination_message_path: String,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct RuntimePod {
    /// Newest first.
    pub sandboxes: Vec<SandboxInfo>,
    /// Every instance of every container, newest first.
    pub containers: Vec<ContainerInfo>,
}

impl RuntimePod {
    pub fn latest(&self, name: &str) -> Option<&ContainerInfo> {
        self.containers.iter().find(|c| c.name == name)
    }

    /// The instance before the latest one.
    pub fn previous(&self, name: &str) -> Option<&ContainerInfo> {
        self.containers.iter().filter(|c| c.name == name).nth(1)
    }

    pub fn running(&self) -> impl Iterator<Item = &ContainerInfo> {
        self.containers.iter().filter(|c| c.state == State::Running)
    }

    pub fn ready_sandbox(&self) -> Option<&SandboxInfo> {
        self.sandboxes.first().filter(|s| s.ready)
    }

    pub fn is_empty(&self) -> bool {
        self.sandboxes.is_empty() && self.containers.is_empty()
    }
}

/// Dead container instances beyond the newest dead one per container name (upstream's container
/// GC default `MaxPerPodContainer: 1`): what a live pod no longer needs, even for `--previous`.
pub fn surplus_dead_containers(rp: &RuntimePod) -> Vec<String> {
    let mut dead_seen: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    let mut out = Vec::new();
    for c in &rp.containers {
        if c.state != State::Exited {
            continue;
        }
        let n = dead_seen.entry(c.name.as_str()).or_default();
        *n += 1;
        if *n > 1 {
            out.push(c.id.clone());
        }
    }
    out
}

fn state_of(s: i32) -> State {
    match cri::v1::ContainerState::try_from(s) {
        Ok(cri::v1::ContainerState::ContainerCreated) => State::Created,
        Ok(cri::v1::ContainerState::ContainerRunning) => State::Running,
        Ok(cri::v1::ContainerState::ContainerExited) => State::Exited,
        _ => State::Unknown,
    }
}

const MAX_MESSAGE_BYTES: usize = 4096;
const FALLBACK_LINES: usize = 80;
const FALLBACK_BYTES: usize = 2048;

/// The container's termination message: the file mounted at terminationMessagePath, or with
/// FallbackToLogsOnError and a failure, the end of its log (upstream getTerminationMessage).
fn termination_message(st: &cri::v1::ContainerStatus, path: &str, policy: &str) -> String {
    let file = st
        .mounts
        .iter()
        .find(|m| !path.is_empty() && m.container_path == path)
        .and_then(|m| std::fs::read(&m.host_path).ok())
        .unwrap_or_default();
    let mut msg = String::from_utf8_lossy(&file[..file.len().min(MAX_MESSAGE_BYTES)]).into_owned();
    if msg.is_empty() && policy == "FallbackToLogsOnError" && st.exit_code != 0 {
        msg = log_tail(&st.log_path);
    }
    msg
}

/// The last lines of a CRI-format log file, without the timestamp/stream/tag prefixes.
pub fn log_tail(path: &str) -> String {
    let Ok(data) = std::fs::read(path) else {
        return String::new();
    };
    let text = String::from_utf8_lossy(&data);
    // Each record is `<time> <stream> <P|F> <content>`; a full (F) record ends a line.
    let mut out = String::new();
    for line in text.lines() {
        let mut parts = line.splitn(4, ' ');
        let (_, _, tag, content) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next().unwrap_or(""),
        );
        out.push_str(content);
        if tag != Some("P") {
            out.push('\n');
        }
    }
    let newlines: Vec<usize> = out.match_indices('\n').map(|(i, _)| i).collect();
    if newlines.len() > FALLBACK_LINES {
        let cut = newlines[newlines.len() - FALLBACK_LINES - 1] + 1;
        out = out[cut..].to_string();
    }
    if out.len() > FALLBACK_BYTES {
        let mut cut = out.len() - FALLBACK_BYTES;
        while !out.is_char_boundary(cut) {
            cut += 1;
        }
        out = out[cut..].to_string();
    }
    out
}

/// Reads the pod's sandboxes and containers from the runtime.
pub async fn get(runtime: &Runtime, uid: &str) -> cri::Result<RuntimePod> {
    let mut sandboxes = Vec::new();
    for sb in runtime
        .list_pod_sandboxes_labelled(LABEL_POD_UID, uid)
        .await?
    {
        let ready = sb.state == cri::v1::PodSandboxState::SandboxReady as i32;
        // A stopped sandbox still reports the address it had (terminated pods keep their IP).
        let (ip, additional_ips) = {
            match runtime.pod_sandbox_status(&sb.id).await {
                Ok(st) => {
                    let net = st.network.unwrap_or_default();
                    (
                        (!net.ip.is_empty()).then_some(net.ip),
                        net.additional_ips.into_iter().map(|i| i.ip).collect(),
                    )
                }
                Err(_) => (None, vec![]),
            }
        };
        sandboxes.push(SandboxInfo {
            id: sb.id,
            attempt: sb.metadata.map(|m| m.attempt).unwrap_or(0),
            ready,
            created_at: sb.created_at,
            ip,
            additional_ips,
        });
    }
    sandboxes.sort_by(|a, b| b.created_at.cmp(&a.created_at));
    let mut containers = Vec::new();
    for c in runtime.list_containers_labelled(LABEL_POD_UID, uid).await? {
        let st = match runtime.container_status(&c.id).await {
            Ok(s) => s,
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(e),
        };
        let ann = |k: &str| st.annotations.get(k).cloned().unwrap_or_default();
        let mut message = st.message.clone();
        if st.state == cri::v1::ContainerState::ContainerExited as i32 && message.is_empty() {
            message = termination_message(
                &st,
                &ann(ANN_TERMINATION_MESSAGE_PATH),
                &ann(ANN_TERMINATION_MESSAGE_POLICY),
            );
        }
        containers.push(ContainerInfo {
            id: c.id.clone(),
            name: st
                .labels
                .get(LABEL_CONTAINER_NAME)
                .cloned()
                .or_else(|| st.metadata.as_ref().map(|m| m.name.clone()))
                .unwrap_or_default(),
            sandbox_id: c.pod_sandbox_id.clone(),
            restart_count: ann(ANN_RESTART_COUNT).parse().unwrap_or(0),
            state: state_of(st.state),
            created_at: st.created_at,
            started_at: st.started_at,
            finished_at: st.finished_at,
            exit_code: st.exit_code,
            reason: st.reason.clone(),
            message,
            image: st
                .image
                .as_ref()
                .map(|i| i.image.clone())
                .unwrap_or_default(),
            image_ref: st.image_ref.clone(),
            hash: ann(ANN_HASH),
            termination_message_path: ann(ANN_TERMINATION_MESSAGE_PATH),
        });
    }
    containers.sort_by(|a, b| b.created_at.cmp(&a.created_at));
    Ok(RuntimePod {
        sandboxes,
        containers,
    })
}

/// A fingerprint of every pod's runtime state, for the relist that wakes pod workers (PLEG).
pub async fn relist(runtime: &Runtime) -> cri::Result<std::collections::HashMap<String, String>> {
    let mut out: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    for sb in runtime.list_pod_sandboxes().await? {
        if let Some(uid) = sb.labels.get(LABEL_POD_UID) {
            let e = out.entry(uid.clone()).or_default();
            e.push_str(&format!("s{}:{};", sb.id, sb.state));
        }
    }
    for c in runtime.list_containers().await? {
        if let Some(uid) = c.labels.get(LABEL_POD_UID) {
            let e = out.entry(uid.clone()).or_default();
            e.push_str(&format!("c{}:{};", c.id, c.state));
        }
    }
    for v in out.values_mut() {
        let mut parts: Vec<&str> = v.split(';').collect();
        parts.sort_unstable();
        *v = parts.join(";");
    }
    Ok(out)
}
