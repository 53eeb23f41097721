//! Runs the stock kubectl binary against the cluster under test. Mirrors upstream's
//! `test/e2e/framework/kubectl` helpers (RunKubectl, RunKubectlOrDie, RunKubectlInput).

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use crate::kubeconfig_path;

/// Environment variable naming the kubectl binary (default: `kubectl` on PATH).
pub const KUBECTL_ENV: &str = "KUBECTL";

/// kubectl bound to the cluster's kubeconfig.
#[derive(Clone, Debug)]
pub struct Kubectl {
    pub bin: PathBuf,
    pub kubeconfig: PathBuf,
}

/// Exit status and output of one kubectl run.
#[derive(Debug)]
pub struct KubectlOutput {
    pub args: Vec<String>,
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl KubectlOutput {
    pub fn success(&self) -> bool {
        self.code == 0
    }

    /// "kubectl <args> exited <code>\nstdout: ...\nstderr: ..." for assertion messages.
    pub fn describe(&self) -> String {
        format!(
            "kubectl {} exited {}\n--- stdout:\n{}\n--- stderr:\n{}",
            self.args.join(" "),
            self.code,
            self.stdout,
            self.stderr
        )
    }
}

impl Kubectl {
    /// kubectl from `$KUBECTL` (or PATH) with the kubeconfig from `CONFORMANCE_KUBECONFIG`.
    pub fn from_env() -> Self {
        let bin = std::env::var_os(KUBECTL_ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("kubectl"));
        Kubectl {
            bin,
            kubeconfig: kubeconfig_path(),
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.arg(format!("--kubeconfig={}", self.kubeconfig.display()));
        cmd.args(args);
        // Keep kubectl's discovery cache per run, never in the user's home.
        cmd.env("KUBECACHEDIR", self.kubeconfig.with_extension("kubecache"));
        cmd.env_remove("KUBECONFIG");
        cmd
    }

    /// Runs kubectl with `args` (and `stdin`, if any) and returns whatever happened.
    pub fn run(&self, args: &[&str], stdin: Option<&str>) -> KubectlOutput {
        let mut cmd = self.command(args);
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.bin.display()));
        if let Some(input) = stdin {
            let mut pipe = child.stdin.take().expect("stdin is piped");
            pipe.write_all(input.as_bytes())
                .expect("writing kubectl stdin");
        }
        let out = child.wait_with_output().expect("waiting for kubectl");
        KubectlOutput {
            args: args.iter().map(|s| s.to_string()).collect(),
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs kubectl and returns stdout; panics with the full output when it fails.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args, None);
        assert!(out.success(), "{}", out.describe());
        out.stdout
    }

    /// Like [`Kubectl::ok`] with `input` on stdin.
    pub fn ok_input(&self, args: &[&str], input: &str) -> String {
        let out = self.run(args, Some(input));
        assert!(out.success(), "{}", out.describe());
        out.stdout
    }

    /// Creates namespace `<base>-<random>` with `kubectl create namespace`; it is deleted
    /// (without waiting) when the returned guard is dropped.
    pub fn create_namespace(&self, base: &str) -> KubectlNamespace {
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        let name = format!("{base}-{}", &suffix[..8]);
        let out = self.ok(&["create", "namespace", &name]);
        assert_eq!(
            out.trim(),
            format!("namespace/{name} created"),
            "kubectl create namespace output"
        );
        KubectlNamespace {
            name,
            kubectl: self.clone(),
        }
    }

    /// Starts kubectl in the background with stdout piped (for `get -w`).
    pub fn spawn(&self, args: &[&str]) -> Child {
        let mut cmd = self.command(args);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd.spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.bin.display()))
    }
}

/// A namespace created with kubectl; deleted (without waiting) on drop.
pub struct KubectlNamespace {
    pub name: String,
    kubectl: Kubectl,
}

impl Drop for KubectlNamespace {
    fn drop(&mut self) {
        let _ = self.kubectl.run(
            &[
                "delete",
                "namespace",
                &self.name,
                "--wait=false",
                "--ignore-not-found",
            ],
            None,
        );
    }
}
