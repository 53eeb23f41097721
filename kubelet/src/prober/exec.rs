//! Exec probes: a command run in the container through the CRI's ExecSync, healthy when it
//! exits 0 (upstream `pkg/probe/exec/exec.go`, the kubelet's `RunInContainer` and
//! `ExpandContainerCommandOnlyStatic`).

use super::probe::{Outcome, Verdict, go_duration};
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::Container;
use std::collections::HashMap;
use std::time::Duration;

/// Upstream keeps at most 10 KiB of a probe's combined output.
pub(crate) const MAX_OUTPUT: usize = 10 * 1024;

/// The result of a command run in a container.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExecOutput {
    pub exit_code: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ExecError {
    /// The command did not finish within the probe's timeout.
    #[error("command timed out")]
    TimedOut,
    /// The command could not be run (as the runtime said it).
    #[error("{0}")]
    Other(String),
}

/// Runs commands in containers; `crate::cri::Runtime` does it through ExecSync.
pub trait CommandRunner: Send + Sync + 'static {
    fn run_in_container<'a>(
        &'a self,
        container_id: &'a str,
        cmd: &'a [String],
        timeout: Duration,
    ) -> BoxFuture<'a, Result<ExecOutput, ExecError>>;
}

impl CommandRunner for crate::cri::Runtime {
    fn run_in_container<'a>(
        &'a self,
        container_id: &'a str,
        cmd: &'a [String],
        timeout: Duration,
    ) -> BoxFuture<'a, Result<ExecOutput, ExecError>> {
        Box::pin(async move {
            match self.exec_sync(container_id, cmd.to_vec(), timeout).await {
                Ok(r) => Ok(ExecOutput {
                    exit_code: r.exit_code,
                    stdout: r.stdout,
                    stderr: r.stderr,
                }),
                Err(crate::cri::CriError::Status(s)) => {
                    // The runtime's own deadline, or ours running out first.
                    let ours = s.code() == tonic::Code::Cancelled
                        && s.message().contains("Timeout expired");
                    if s.code() == tonic::Code::DeadlineExceeded || ours {
                        Err(ExecError::TimedOut)
                    } else {
                        Err(ExecError::Other(go_grpc_error(&s)))
                    }
                }
                Err(e) => Err(ExecError::Other(e.to_string())),
            }
        })
    }
}

/// A gRPC error as grpc-go prints it (`rpc error: code = NotFound desc = ...`).
pub(crate) fn go_grpc_error(s: &tonic::Status) -> String {
    use tonic::Code::*;
    let code = match s.code() {
        Ok => "OK",
        Cancelled => "Canceled",
        Unknown => "Unknown",
        InvalidArgument => "InvalidArgument",
        DeadlineExceeded => "DeadlineExceeded",
        NotFound => "NotFound",
        AlreadyExists => "AlreadyExists",
        PermissionDenied => "PermissionDenied",
        ResourceExhausted => "ResourceExhausted",
        FailedPrecondition => "FailedPrecondition",
        Aborted => "Aborted",
        OutOfRange => "OutOfRange",
        Unimplemented => "Unimplemented",
        Internal => "Internal",
        Unavailable => "Unavailable",
        DataLoss => "DataLoss",
        Unauthenticated => "Unauthenticated",
    };
    format!("rpc error: code = {code} desc = {}", s.message())
}

/// Runs the probe command: exit 0 is success, another exit code a failure with the command's
/// output (stdout then stderr, at most 10 KiB), a timeout a failure.
pub(crate) async fn probe(
    runner: &dyn CommandRunner,
    container_id: &str,
    cmd: Vec<String>,
    timeout: Duration,
) -> Outcome {
    match runner.run_in_container(container_id, &cmd, timeout).await {
        Ok(out) => {
            let mut data = out.stdout;
            data.extend_from_slice(&out.stderr);
            data.truncate(MAX_OUTPUT);
            let output = String::from_utf8_lossy(&data).into_owned();
            if out.exit_code == 0 {
                Outcome::success(output)
            } else {
                Outcome::failure(output)
            }
        }
        Err(ExecError::TimedOut) => Outcome::failure(format!(
            "command timed out: {:?} timed out after {}",
            cmd.join(" "),
            go_duration(timeout)
        )),
        Err(ExecError::Other(e)) => Outcome::error(Verdict::Unknown, e),
    }
}

/// Expands `$(VAR)` in the probe command with the container's literal env values (not those
/// from valueFrom, which the kubelet does not resolve for probes). `$$` is a literal `$`;
/// unknown variables stay as written.
pub(crate) fn expand_command(cmd: &[String], container: &Container) -> Vec<String> {
    let mut env: HashMap<&str, &str> = HashMap::new();
    for e in container.env.iter().flatten() {
        env.insert(e.name.as_str(), e.value.as_deref().unwrap_or(""));
    }
    cmd.iter().map(|arg| expand(arg, &env)).collect()
}

fn expand(input: &str, env: &HashMap<&str, &str>) -> String {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        let Some(next) = after.chars().next() else {
            // A trailing `$` stays.
            out.push('$');
            rest = after;
            break;
        };
        match next {
            '$' => {
                out.push('$');
                rest = &after[1..];
            }
            '(' => match after.find(')') {
                Some(close) => {
                    let name = &after[1..close];
                    match env.get(name) {
                        Some(v) => out.push_str(v),
                        None => {
                            out.push_str("$(");
                            out.push_str(name);
                            out.push(')');
                        }
                    }
                    rest = &after[close + 1..];
                }
                None => {
                    out.push_str("$(");
                    rest = &after[1..];
                }
            },
            c => {
                out.push('$');
                out.push(c);
                rest = &after[c.len_utf8()..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource};
    use std::sync::Mutex;

    /// Answers every command with the next scripted result, and records the commands.
    pub(crate) struct Scripted {
        pub(crate) answers: Mutex<Vec<Result<ExecOutput, ExecError>>>,
        pub(crate) seen: Mutex<Vec<(String, Vec<String>, Duration)>>,
    }

    impl CommandRunner for Scripted {
        fn run_in_container<'a>(
            &'a self,
            container_id: &'a str,
            cmd: &'a [String],
            timeout: Duration,
        ) -> BoxFuture<'a, Result<ExecOutput, ExecError>> {
            self.seen
                .lock()
                .unwrap()
                .push((container_id.to_string(), cmd.to_vec(), timeout));
            let r = self.answers.lock().unwrap().remove(0);
            Box::pin(async move { r })
        }
    }

    fn scripted(answers: Vec<Result<ExecOutput, ExecError>>) -> Scripted {
        Scripted {
            answers: Mutex::new(answers),
            seen: Mutex::new(vec![]),
        }
    }

    fn out(code: i32, stdout: &str, stderr: &str) -> Result<ExecOutput, ExecError> {
        Ok(ExecOutput {
            exit_code: code,
            stdout: stdout.as_bytes().to_vec(),
            stderr: stderr.as_bytes().to_vec(),
        })
    }

    #[tokio::test]
    async fn exit_codes_output_and_timeouts() {
        let r = scripted(vec![
            out(0, "ok\n", ""),
            out(1, "out ", "err"),
            Err(ExecError::TimedOut),
            Err(ExecError::Other(
                "rpc error: code = NotFound desc = gone".into(),
            )),
        ]);
        let cmd = || vec!["sh".to_string(), "-c".into(), "exit 1".into()];
        let t = Duration::from_secs(1);
        assert_eq!(probe(&r, "abc", cmd(), t).await, Outcome::success("ok\n"));
        assert_eq!(
            probe(&r, "abc", cmd(), t).await,
            Outcome::failure("out err")
        );
        assert_eq!(
            probe(&r, "abc", cmd(), t).await,
            Outcome::failure("command timed out: \"sh -c exit 1\" timed out after 1s")
        );
        assert_eq!(
            probe(&r, "abc", cmd(), t).await,
            Outcome::error(Verdict::Unknown, "rpc error: code = NotFound desc = gone")
        );
        let seen = r.seen.lock().unwrap();
        assert_eq!(seen[0].0, "abc");
        assert_eq!(seen[0].2, t);
    }

    #[tokio::test]
    async fn output_is_cut_at_10_kib() {
        let big = "x".repeat(MAX_OUTPUT + 500);
        let r = scripted(vec![out(1, &big, "tail")]);
        let o = probe(&r, "abc", vec!["true".into()], Duration::from_secs(1)).await;
        assert_eq!(o.verdict, Verdict::Failure);
        assert_eq!(o.output.len(), MAX_OUTPUT);
        assert!(!o.output.contains("tail"));
    }

    #[test]
    fn commands_expand_static_env_only() {
        let c = Container {
            name: "c".into(),
            env: Some(vec![
                EnvVar {
                    name: "PORT".into(),
                    value: Some("8080".into()),
                    ..Default::default()
                },
                EnvVar {
                    name: "SECRET".into(),
                    value_from: Some(EnvVarSource::default()),
                    ..Default::default()
                },
            ]),
            ..Default::default()
        };
        let cmd: Vec<String> = [
            "curl localhost:$(PORT)/$(SECRET)",
            "$(MISSING) $$(PORT) $x $(open",
            "end$",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            expand_command(&cmd, &c),
            vec![
                "curl localhost:8080/".to_string(),
                "$(MISSING) $(PORT) $x $(open".to_string(),
                "end$".to_string(),
            ]
        );
    }

    #[test]
    fn grpc_errors_read_like_grpc_go() {
        let s = tonic::Status::not_found("container \"x\" not found");
        assert_eq!(
            go_grpc_error(&s),
            "rpc error: code = NotFound desc = container \"x\" not found"
        );
        assert!(go_grpc_error(&tonic::Status::cancelled("c")).contains("code = Canceled"));
    }
}

/// Against a real containerd: `PROBER_CRI_ENDPOINT=unix:///tmp/.../containerd.sock cargo test
/// -p kubelet --lib cri_exec -- --ignored` (busybox imported in the k8s.io namespace).
#[cfg(test)]
mod cri_tests {
    use super::*;
    use crate::cri::{Runtime, v1};

    #[tokio::test]
    #[ignore = "needs a containerd with busybox; see the doc comment"]
    async fn cri_exec_probes() {
        let Ok(endpoint) = std::env::var("PROBER_CRI_ENDPOINT") else {
            return;
        };
        let rt = Runtime::connect(&endpoint, Duration::from_secs(60)).unwrap();
        let logs = std::env::temp_dir().join("prober-cri-test");
        std::fs::create_dir_all(&logs).unwrap();
        let sandbox = v1::PodSandboxConfig {
            metadata: Some(v1::PodSandboxMetadata {
                name: "probe".into(),
                uid: "probe-uid".into(),
                namespace: "default".into(),
                attempt: 0,
            }),
            log_directory: logs.display().to_string(),
            linux: Some(v1::LinuxPodSandboxConfig {
                security_context: Some(v1::LinuxSandboxSecurityContext {
                    namespace_options: Some(v1::NamespaceOption {
                        network: v1::NamespaceMode::Node as i32,
                        pid: v1::NamespaceMode::Container as i32,
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let sid = rt.run_pod_sandbox(sandbox.clone()).await.unwrap();
        let config = v1::ContainerConfig {
            metadata: Some(v1::ContainerMetadata {
                name: "app".into(),
                attempt: 0,
            }),
            image: Some(v1::ImageSpec {
                image: "docker.io/library/busybox:latest".into(),
                ..Default::default()
            }),
            command: vec!["sleep".into(), "3600".into()],
            log_path: "app.log".into(),
            ..Default::default()
        };
        let cid = Box::pin(rt.create_container(&sid, config, sandbox))
            .await
            .unwrap();
        rt.start_container(&cid).await.unwrap();

        let sh = |s: &str| vec!["sh".to_string(), "-c".into(), s.to_string()];
        let t = Duration::from_secs(1);
        let ok = probe(&rt, &cid, sh("echo hi"), t).await;
        let failed = probe(&rt, &cid, sh("echo out; echo err >&2; exit 3"), t).await;
        let started = std::time::Instant::now();
        let slow = probe(&rt, &cid, sh("sleep 5"), t).await;
        let slow_took = started.elapsed();
        let missing = probe(&rt, &cid, vec!["no-such-binary".into()], t).await;

        let _ = rt.stop_container(&cid, 0).await;
        let _ = rt.remove_container(&cid).await;
        let _ = rt.stop_pod_sandbox(&sid).await;
        let _ = rt.remove_pod_sandbox(&sid).await;

        assert_eq!(ok, Outcome::success("hi\n"));
        assert_eq!(failed, Outcome::failure("out\nerr\n"));
        assert_eq!(
            slow,
            Outcome::failure("command timed out: \"sh -c sleep 5\" timed out after 1s")
        );
        assert!(slow_took < Duration::from_secs(4), "{slow_took:?}");
        assert_eq!(missing.verdict, Verdict::Unknown, "{missing:?}");
        eprintln!("missing binary: {missing:?}");
    }
}
