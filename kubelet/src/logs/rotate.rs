//! Container log rotation (upstream `pkg/kubelet/logs/container_log_manager.go`): every
//! monitor interval each running container's current log is checked; one that reached the
//! maximum size is renamed `<log>.<YYYYMMDD-hhmmss>` and the runtime is asked to reopen the
//! log; older rotated files are gzipped (`.gz`) and the oldest removed so that at most
//! `max_files` files (the current one included) remain.

use super::{LogRuntime, cri_error_string};
use crate::cri;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Upstream's defaults (`containerLogMaxSize`, `containerLogMaxFiles`,
/// `containerLogMonitorInterval`).
pub const DEFAULT_MAX_SIZE: &str = "10Mi";
pub const DEFAULT_MAX_FILES: i32 = 5;
pub const DEFAULT_MONITOR_INTERVAL: Duration = Duration::from_secs(10);

const COMPRESS_SUFFIX: &str = ".gz";
const TMP_SUFFIX: &str = ".tmp";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogRotatePolicy {
    /// Bytes a current log may reach before it is rotated.
    pub max_size: u64,
    /// Log files a container may have, the current one included.
    pub max_files: usize,
}

/// A resource quantity (`10Mi`, `500k`, `1G`, `2048`) as a whole number of bytes.
pub fn parse_quantity(s: &str) -> Result<i64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(t.len());
    let (num, suffix) = t.split_at(split);
    let mult: f64 = match suffix {
        "" => 1.0,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        _ => {
            return Err(format!(
                "quantities must match the regular expression: {s:?}"
            ));
        }
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("quantities must match the regular expression: {s:?}"))?;
    let v = n * mult;
    if v.fract() != 0.0 || v.abs() > i64::MAX as f64 {
        return Err("invalid max log size".into());
    }
    Ok(v as i64)
}

/// Files matching `<log>.*` in the log's directory, sorted by name.
fn rotated_files(log: &Path) -> std::io::Result<Vec<PathBuf>> {
    let (Some(dir), Some(name)) = (log.parent(), log.file_name().and_then(|n| n.to_str())) else {
        return Ok(Vec::new());
    };
    let prefix = format!("{name}.");
    let mut out = Vec::new();
    match std::fs::read_dir(dir) {
        Ok(rd) => {
            for e in rd {
                let e = e?;
                if e.file_name()
                    .to_str()
                    .is_some_and(|n| n.starts_with(&prefix))
                {
                    out.push(e.path());
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    out.sort();
    Ok(out)
}

fn has_suffix(p: &Path, suffix: &str) -> bool {
    p.to_str().is_some_and(|s| s.ends_with(suffix))
}

/// Splits rotated files into in-use and leftovers of an interrupted rotation (temporaries, and
/// uncompressed files whose `.gz` exists).
fn filter_unused(logs: &[PathBuf]) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let mut inuse = Vec::new();
    let mut unused = Vec::new();
    for l in logs {
        let compressed_twin = {
            let mut s = l.clone().into_os_string();
            s.push(COMPRESS_SUFFIX);
            PathBuf::from(s)
        };
        let is_used = if has_suffix(l, TMP_SUFFIX) {
            false
        } else {
            has_suffix(l, COMPRESS_SUFFIX) || !logs.contains(&compressed_twin)
        };
        if is_used {
            inuse.push(l.clone());
        } else {
            unused.push(l.clone());
        }
    }
    (inuse, unused)
}

/// All of a container's logs, oldest first, the current one last (upstream `GetAllLogs`).
pub fn all_logs(log: &Path) -> std::io::Result<Vec<PathBuf>> {
    let (mut inuse, _) = filter_unused(&rotated_files(log)?);
    inuse.sort();
    inuse.push(log.to_path_buf());
    Ok(inuse)
}

fn compress(log: &Path) -> std::io::Result<()> {
    let mut tmp = log.as_os_str().to_owned();
    tmp.push(TMP_SUFFIX);
    let tmp = PathBuf::from(tmp);
    let mut gz = log.as_os_str().to_owned();
    gz.push(COMPRESS_SUFFIX);
    let result = (|| {
        let mut src = std::fs::File::open(log)?;
        let mode = src.metadata()?.permissions();
        let dst = std::fs::File::create(&tmp)?;
        std::fs::set_permissions(&tmp, mode)?;
        let mut enc = flate2::write::GzEncoder::new(dst, flate2::Compression::default());
        std::io::copy(&mut src, &mut enc)?;
        enc.finish()?.flush()?;
        std::fs::rename(&tmp, &gz)?;
        std::fs::remove_file(log)
    })();
    let _ = std::fs::remove_file(&tmp);
    result
}

/// Rotates the logs of running containers.
pub struct ContainerLogManager {
    runtime: Arc<dyn LogRuntime>,
    policy: LogRotatePolicy,
    lock: tokio::sync::Mutex<()>,
}

impl ContainerLogManager {
    /// `Ok(None)` when rotation is disabled (a negative max size), as upstream's stub manager.
    pub fn new(
        runtime: Arc<dyn LogRuntime>,
        max_size: &str,
        max_files: i32,
    ) -> Result<Option<ContainerLogManager>, String> {
        if max_files <= 1 {
            return Err(format!("invalid MaxFiles {max_files}, must be > 1"));
        }
        let size = parse_quantity(max_size)
            .map_err(|e| format!("failed to parse container log max size {max_size:?}: {e}"))?;
        if size < 0 {
            return Ok(None);
        }
        Ok(Some(ContainerLogManager {
            runtime,
            policy: LogRotatePolicy {
                max_size: size as u64,
                max_files: max_files as usize,
            },
            lock: tokio::sync::Mutex::new(()),
        }))
    }

    pub fn policy(&self) -> LogRotatePolicy {
        self.policy
    }

    /// Rotates every `interval` until `shutdown`.
    pub async fn run(self: Arc<Self>, interval: Duration, shutdown: CancellationToken) {
        tracing::info!(?interval, "initializing container log rotation");
        loop {
            if let Err(e) = self.rotate_logs().await {
                tracing::error!(error = %e, "failed to rotate container logs");
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(interval) => {}
            }
        }
    }

    /// One pass over the running containers; a failure on one container is logged and the
    /// others go on.
    pub async fn rotate_logs(&self) -> Result<(), String> {
        let containers = self
            .runtime
            .list_containers()
            .await
            .map_err(|e| format!("failed to list containers: {}", cri_error_string(&e)))?;
        for c in containers {
            // A stopped container writes nothing more; an empty fresh log would be useless.
            if c.state != cri::v1::ContainerState::ContainerRunning as i32 {
                continue;
            }
            if let Err(e) = self.process_container(&c.id).await {
                tracing::error!(container = %c.id, error = %e, "failed to rotate container log");
            }
        }
        Ok(())
    }

    async fn process_container(&self, id: &str) -> Result<(), String> {
        let _guard = self.lock.lock().await;
        let status = self
            .runtime
            .container_status(id)
            .await
            .map_err(|e| format!("failed to get container status: {}", cri_error_string(&e)))?;
        let path = PathBuf::from(&status.log_path);
        if status.log_path.is_empty() {
            return Ok(());
        }
        let size = match std::fs::metadata(&path) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // The log vanished (removed by hand?): have the runtime create it again.
                self.runtime.reopen_container_log(id).await.map_err(|e| {
                    format!(
                        "container log doesn't exist, reopen container log failed: {}",
                        cri_error_string(&e)
                    )
                })?;
                std::fs::metadata(&path)
                    .map_err(|e| format!("failed to stat container log after reopen: {e}"))?
                    .len()
            }
            Err(e) => return Err(format!("failed to stat container log {path:?}: {e}")),
        };
        if size < self.policy.max_size {
            return Ok(());
        }
        self.rotate_log(id, &path).await
    }

    async fn rotate_log(&self, id: &str, log: &Path) -> Result<(), String> {
        let logs = rotated_files(log)
            .map_err(|e| format!("failed to list all log files of {log:?}: {e}"))?;
        let (mut inuse, unused) = filter_unused(&logs);
        for l in unused {
            std::fs::remove_file(&l)
                .map_err(|e| format!("failed to remove unused log {l:?}: {e}"))?;
        }
        // The runtime's new file and the one rotated now make two: keep max_files-2 others,
        // removing the oldest first so that readers of newer files are not disturbed.
        inuse.sort();
        let keep = self.policy.max_files.saturating_sub(2);
        let excess = inuse.len().saturating_sub(keep);
        for l in inuse.drain(..excess) {
            std::fs::remove_file(&l).map_err(|e| format!("failed to remove old log {l:?}: {e}"))?;
        }
        for l in inuse
            .into_iter()
            .filter(|l| !has_suffix(l, COMPRESS_SUFFIX))
        {
            let lp = l.clone();
            tokio::task::spawn_blocking(move || compress(&lp))
                .await
                .map_err(|e| format!("compressing {l:?}: {e}"))?
                .map_err(|e| format!("failed to compress log {l:?}: {e}"))?;
        }
        self.rotate_latest(id, log).await
    }

    /// Renames the current log (uncompressed, so that the runtime may finish writing and
    /// readers finish reading) and has the runtime reopen its log; renames it back when that
    /// fails so that the next pass retries.
    async fn rotate_latest(&self, id: &str, log: &Path) -> Result<(), String> {
        let stamp = jiff::Zoned::now().strftime("%Y%m%d-%H%M%S").to_string();
        let mut rotated = log.as_os_str().to_owned();
        rotated.push(format!(".{stamp}"));
        let rotated = PathBuf::from(rotated);
        std::fs::rename(log, &rotated)
            .map_err(|e| format!("failed to rotate log {log:?} to {rotated:?}: {e}"))?;
        if let Err(e) = self.runtime.reopen_container_log(id).await {
            if let Err(re) = std::fs::rename(&rotated, log) {
                tracing::error!(error = %re, rotated = %rotated.display(), "failed to rename the rotated log back");
            }
            return Err(format!(
                "failed to reopen container log {id:?}: {}",
                cri_error_string(&e)
            ));
        }
        Ok(())
    }

    /// Removes all logs of a container, rotated ones included (upstream `Clean`).
    pub async fn clean(&self, id: &str) -> Result<(), String> {
        let _guard = self.lock.lock().await;
        let status = self.runtime.container_status(id).await.map_err(|e| {
            format!(
                "failed to get container status {id:?}: {}",
                cri_error_string(&e)
            )
        })?;
        if status.log_path.is_empty() {
            return Ok(());
        }
        let log = PathBuf::from(&status.log_path);
        let mut files = rotated_files(&log).map_err(|e| e.to_string())?;
        files.push(log);
        for f in files {
            match std::fs::remove_file(&f) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(format!("failed to remove container {id:?} log {f:?}: {e}")),
            }
        }
        Ok(())
    }
}
