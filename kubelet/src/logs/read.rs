//! Reading a container's log file with the PodLogOptions semantics (upstream `ReadLogs` in
//! `pkg/kubelet/kuberuntime/logs/logs.go`): tail, since, timestamps, limitBytes, stream
//! selection, and follow — streaming new records until the container stops and the file is
//! drained, or the client goes away. Upstream waits on fsnotify; this polls the file every
//! 100 ms, asks the runtime whether the container still runs at most once a second, and when the
//! path is renamed away by rotation finishes the old file before reopening the path.

use super::options::{LogOptions, LogStream};
use super::parse::{LogFormat, StreamType, format_fixed_timestamp};
use super::{LogRuntime, cri_error_string};
use crate::cri;
use bytes::Bytes;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

const POLL: Duration = Duration::from_millis(100);
/// Upstream's logForceCheckPeriod: re-check at least this often.
const FORCE_CHECK: Duration = Duration::from_secs(1);
/// Output is sent in chunks of about this size.
const CHUNK: usize = 32 * 1024;

/// Opening failed; the message is what upstream answers (400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct OpenError(pub String);

/// An open log file positioned at the first record to return.
pub struct LogReader {
    path: PathBuf,
    file: BufReader<tokio::fs::File>,
    ino: u64,
    offset: u64,
    opts: LogOptions,
    follow: Option<(String, Arc<dyn LogRuntime>)>,
}

/// The offset where the last `n` lines start; a final line without a newline does not count.
pub(crate) fn find_tail_start<F: Read + Seek>(f: &mut F, n: u64) -> std::io::Result<u64> {
    let size = f.seek(SeekFrom::End(0))?;
    let mut seen = 0u64;
    let mut right = size;
    let mut buf = vec![0u8; 4096];
    while right > 0 {
        let left = right.saturating_sub(buf.len() as u64);
        let len = (right - left) as usize;
        f.seek(SeekFrom::Start(left))?;
        f.read_exact(&mut buf[..len])?;
        for i in (0..len).rev() {
            if buf[i] == b'\n' {
                seen += 1;
                if seen == n + 1 {
                    return Ok(left + i as u64 + 1);
                }
            }
        }
        right = left;
    }
    Ok(0)
}

enum Waited {
    /// Something may have changed: read again.
    Again,
    /// The container is not running: drain the file and stop.
    Stopped,
    ClientGone,
}

impl LogReader {
    /// Resolves symlinks, opens the file and seeks to the tail start.
    pub fn open(path: &Path, opts: LogOptions) -> Result<LogReader, OpenError> {
        let resolved = std::fs::canonicalize(path).map_err(|e| {
            OpenError(format!(
                "failed to try resolving symlinks in path {:?}: {e}",
                path.display().to_string()
            ))
        })?;
        let mut f = std::fs::File::open(&resolved).map_err(|e| {
            OpenError(format!(
                "failed to open log file {:?}: {e}",
                resolved.display().to_string()
            ))
        })?;
        let ino = f
            .metadata()
            .map_err(|e| OpenError(format!("failed to stat log file: {e}")))?
            .ino();
        let start = match opts.tail {
            Some(n) => find_tail_start(&mut f, n).map_err(|e| {
                OpenError(format!(
                    "failed to tail {n} lines of log file {:?}: {e}",
                    resolved.display().to_string()
                ))
            })?,
            None => 0,
        };
        f.seek(SeekFrom::Start(start)).map_err(|e| {
            OpenError(format!(
                "failed to seek {start} in log file {:?}: {e}",
                resolved.display().to_string()
            ))
        })?;
        Ok(LogReader {
            path: resolved,
            file: BufReader::new(tokio::fs::File::from_std(f)),
            ino,
            offset: start,
            opts,
            follow: None,
        })
    }

    /// With `follow`, the container whose state ends the stream. Without it, following stops
    /// only when the client goes away.
    pub fn container(mut self, id: &str, runtime: Arc<dyn LogRuntime>) -> LogReader {
        self.follow = Some((id.to_string(), runtime));
        self
    }

    fn reopen(&mut self) -> std::io::Result<()> {
        let f = std::fs::File::open(&self.path)?;
        self.ino = f.metadata()?.ino();
        self.file = BufReader::new(tokio::fs::File::from_std(f));
        self.offset = 0;
        Ok(())
    }

    /// Whether the path now names another file (rotated away) or ours shrank (truncated).
    async fn replaced(&self) -> bool {
        let renamed = std::fs::metadata(&self.path).is_ok_and(|m| m.ino() != self.ino);
        let truncated = self
            .file
            .get_ref()
            .metadata()
            .await
            .is_ok_and(|m| m.len() < self.offset);
        renamed || truncated
    }

    async fn wait(
        &self,
        out: &mpsc::Sender<Bytes>,
        last_check: &mut Option<Instant>,
    ) -> Result<Waited, String> {
        if let Some((id, rt)) = &self.follow
            && last_check.is_none_or(|t| t.elapsed() >= FORCE_CHECK)
        {
            *last_check = Some(Instant::now());
            let st = rt
                .container_status(id)
                .await
                .map_err(|e| cri_error_string(&e))?;
            if st.state != cri::v1::ContainerState::ContainerRunning as i32 {
                return Ok(Waited::Stopped);
            }
        }
        let started = Instant::now();
        while started.elapsed() < FORCE_CHECK {
            if out.is_closed() {
                return Ok(Waited::ClientGone);
            }
            tokio::select! {
                _ = tokio::time::sleep(POLL) => {}
                _ = out.closed() => return Ok(Waited::ClientGone),
            }
            let grown = self
                .file
                .get_ref()
                .metadata()
                .await
                .is_ok_and(|m| m.len() > self.offset);
            if grown || self.replaced().await {
                return Ok(Waited::Again);
            }
        }
        Ok(Waited::Again)
    }

    /// Streams the selected records into `out` until done; a closed `out` ends it quietly.
    pub async fn run(mut self, out: mpsc::Sender<Bytes>) -> Result<(), String> {
        let mut w = Writer {
            opts: self.opts.clone(),
            remain: self.opts.limit_bytes,
            buf: Vec::new(),
            out: &out,
        };
        // Without follow, tail also bounds how many records are read (the file may grow).
        let mut left = self.opts.tail.filter(|_| !self.opts.follow);
        let mut format: Option<LogFormat> = None;
        let mut pending = Vec::new();
        let mut stopped = false;
        let mut draining_old = false;
        let mut last_check = None;
        loop {
            if left == Some(0) {
                return w.flush().await.map(|_| ());
            }
            let n = self
                .file
                .read_until(b'\n', &mut pending)
                .await
                .map_err(|e| {
                    format!(
                        "failed to read log file {:?}: {e}",
                        self.path.display().to_string()
                    )
                })?;
            self.offset += n as u64;
            let mut last = false;
            if pending.last() != Some(&b'\n') {
                // End of file, possibly inside a line still being written.
                if self.opts.follow && !stopped {
                    if draining_old {
                        // The rotated file is finished: go on with the new one.
                        draining_old = false;
                        if !pending.is_empty() {
                            let line = std::mem::take(&mut pending);
                            if !w.record(&line, &mut format).await? {
                                return Ok(());
                            }
                        }
                        if let Err(e) = self.reopen()
                            && e.kind() != std::io::ErrorKind::NotFound
                        {
                            return Err(format!(
                                "failed to open log file {:?}: {e}",
                                self.path.display().to_string()
                            ));
                        }
                        continue;
                    }
                    if self.replaced().await {
                        draining_old = true;
                        continue;
                    }
                    if !w.flush().await? {
                        return Ok(());
                    }
                    match self.wait(&out, &mut last_check).await? {
                        Waited::Again => continue,
                        Waited::Stopped => {
                            stopped = true;
                            continue;
                        }
                        Waited::ClientGone => return Ok(()),
                    }
                }
                if pending.is_empty() {
                    return w.flush().await.map(|_| ());
                }
                tracing::debug!(path = %self.path.display(), "incomplete line at the end of the log file");
                last = true;
            }
            let line = std::mem::take(&mut pending);
            if !w.record(&line, &mut format).await? {
                return Ok(());
            }
            if let Some(l) = left.as_mut() {
                *l -= 1;
            }
            if last {
                return w.flush().await.map(|_| ());
            }
        }
    }
}

struct Writer<'a> {
    opts: LogOptions,
    remain: Option<u64>,
    buf: Vec<u8>,
    out: &'a mpsc::Sender<Bytes>,
}

impl Writer<'_> {
    /// Sends what is buffered; false when the client is gone.
    async fn flush(&mut self) -> Result<bool, String> {
        if self.buf.is_empty() {
            return Ok(!self.out.is_closed());
        }
        let chunk = Bytes::from(std::mem::take(&mut self.buf));
        Ok(self.out.send(chunk).await.is_ok())
    }

    /// Handles one record; false when output must stop (byte limit reached, client gone).
    async fn record(
        &mut self,
        line: &[u8],
        format: &mut Option<LogFormat>,
    ) -> Result<bool, String> {
        let fmt = match format {
            Some(f) => *f,
            None => {
                let f = LogFormat::detect(line).ok_or_else(|| {
                    format!(
                        "failed to get parse function: unsupported log format: {:?}",
                        String::from_utf8_lossy(line)
                    )
                })?;
                *format = Some(f);
                f
            }
        };
        let msg = match fmt.parse(line) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "failed to parse a container log line");
                return Ok(true);
            }
        };
        if self.opts.since.is_some_and(|s| msg.timestamp < s) {
            return Ok(true);
        }
        let wanted = match (self.opts.stream, msg.stream) {
            (LogStream::All, _) => true,
            (LogStream::Stdout, s) => s == StreamType::Stdout,
            (LogStream::Stderr, s) => s == StreamType::Stderr,
        };
        if !wanted {
            return Ok(true);
        }
        let start = self.buf.len();
        if self.opts.timestamps {
            self.buf
                .extend_from_slice(format_fixed_timestamp(&msg.raw_time, msg.timestamp).as_bytes());
            self.buf.push(b' ');
        }
        self.buf.extend_from_slice(&msg.log);
        if let Some(r) = self.remain.as_mut() {
            let written = (self.buf.len() - start) as u64;
            if written >= *r {
                self.buf.truncate(start + *r as usize);
                *r = 0;
                self.flush().await?;
                return Ok(false);
            }
            *r -= written;
        }
        if self.buf.len() >= CHUNK {
            return self.flush().await;
        }
        Ok(true)
    }
}
