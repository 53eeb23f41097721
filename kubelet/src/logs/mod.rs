//! Container logs: the on-disk layout, reading CRI-format log files with the PodLogOptions
//! semantics (upstream `pkg/kubelet/kuberuntime/logs/logs.go`, the log paths of
//! `pkg/kubelet/kuberuntime/kuberuntime_container.go` and `pkg/kubelet/kuberuntime/helpers.go`)
//! and rotating them (upstream `pkg/kubelet/logs/container_log_manager.go`).
//!
//! Layout: `<pod-logs-dir>/<namespace>_<pod-name>_<pod-uid>/<container>/<restartCount>.log`. The
//! kubelet gives the runtime the pod directory as the sandbox's `log_directory` and
//! `<container>/<restartCount>.log` as the container's `log_path`; the runtime writes one record a
//! line: `<RFC3339Nano time> <stdout|stderr> <P|F> <content>`.

mod options;
mod parse;
mod read;
mod rotate;

#[cfg(test)]
pub(crate) mod tests;

pub use options::{LogOptions, LogStream, PodLogOptions, QueryError};
pub use parse::{LogMessage, StreamType, format_fixed_timestamp, parse_log_line};
pub use read::{LogReader, OpenError};
pub use rotate::{
    ContainerLogManager, DEFAULT_MAX_FILES, DEFAULT_MAX_SIZE, DEFAULT_MONITOR_INTERVAL,
    LogRotatePolicy, all_logs, parse_quantity,
};

use crate::cri;
use std::path::{Path, PathBuf};

/// The pod's log directory: `<root>/<namespace>_<name>_<uid>` (upstream
/// `BuildPodLogsDirectory`); the sandbox's `log_directory`.
pub fn pod_log_dir(root: &Path, namespace: &str, name: &str, uid: &str) -> PathBuf {
    root.join(format!("{namespace}_{name}_{uid}"))
}

/// The container's log path relative to the pod directory, `<container>/<restart>.log`
/// (upstream `buildContainerLogsPath`); the container config's `log_path`.
pub fn container_log_relative_path(container: &str, restart_count: u32) -> PathBuf {
    Path::new(container).join(format!("{restart_count}.log"))
}

/// The absolute path of a container instance's log.
pub fn container_log_path(
    root: &Path,
    namespace: &str,
    name: &str,
    uid: &str,
    container: &str,
    restart_count: u32,
) -> PathBuf {
    pod_log_dir(root, namespace, name, uid)
        .join(container_log_relative_path(container, restart_count))
}

/// What log reading and rotation need from the container runtime (implemented by
/// [`cri::Runtime`]; tests use fakes).
#[async_trait::async_trait]
pub trait LogRuntime: Send + Sync + 'static {
    async fn container_status(&self, id: &str) -> cri::Result<cri::v1::ContainerStatus>;
    async fn list_containers(&self) -> cri::Result<Vec<cri::v1::Container>>;
    async fn reopen_container_log(&self, id: &str) -> cri::Result<()>;
}

#[async_trait::async_trait]
impl LogRuntime for cri::Runtime {
    async fn container_status(&self, id: &str) -> cri::Result<cri::v1::ContainerStatus> {
        cri::Runtime::container_status(self, id).await
    }
    async fn list_containers(&self) -> cri::Result<Vec<cri::v1::Container>> {
        cri::Runtime::list_containers(self).await
    }
    async fn reopen_container_log(&self, id: &str) -> cri::Result<()> {
        cri::Runtime::reopen_container_log(self, id).await
    }
}

/// Go's rendering of a gRPC error (`rpc error: code = NotFound desc = ...`), which upstream
/// hands to clients verbatim.
pub fn cri_error_string(e: &cri::CriError) -> String {
    match e {
        cri::CriError::Status(s) => {
            format!("rpc error: code = {:?} desc = {}", s.code(), s.message())
        }
        other => other.to_string(),
    }
}
