//! Container lifecycle hooks, postStart and preStop: exec, httpGet and sleep handlers (upstream
//! `pkg/kubelet/lifecycle/handlers.go`). Failure messages become the FailedPostStartHook and
//! FailedPreStopHook events.

use crate::kubelet::Kubelet;
use k8s_openapi::api::core::v1::{Container, LifecycleHandler, Pod};
use std::time::Duration;

/// Runs a hook; Err is upstream's failure message.
pub async fn run_hook(
    kl: &Kubelet,
    pod: &Pod,
    c: &Container,
    container_id: &str,
    hook: &LifecycleHandler,
    budget: Duration,
) -> Result<(), String> {
    if let Some(exec) = &hook.exec {
        let cmd = exec.command.clone().unwrap_or_default();
        let r = kl
            .runtime
            .exec_sync(container_id, cmd.clone(), budget)
            .await
            .map_err(|e| format!("Exec lifecycle hook ({cmd:?}) for Container \"{}\" in Pod \"{}\" failed - error: {e}, message: \"\"", c.name, crate::pod_worker::pod_full_name(pod)))?;
        if r.exit_code != 0 {
            let out = String::from_utf8_lossy(&r.stdout).to_string()
                + &String::from_utf8_lossy(&r.stderr);
            return Err(format!(
                "Exec lifecycle hook ({cmd:?}) for Container \"{}\" in Pod \"{}\" failed - error: command '{}' exited with {}: {out}, message: \"{out}\"",
                c.name,
                crate::pod_worker::pod_full_name(pod),
                cmd.join(" "),
                r.exit_code
            ));
        }
        return Ok(());
    }
    if let Some(get) = &hook.http_get {
        // The same HTTP client as httpGet probes (scheme, named ports, headers, redirects).
        let pod_ip = pod
            .status
            .as_ref()
            .and_then(|s| s.pod_ip.clone())
            .unwrap_or_default();
        let path = get.path.clone().unwrap_or_else(|| "/".into());
        let fail = |e: String| {
            format!(
                "HTTP lifecycle hook ({path}) for Container \"{}\" in Pod \"{}\" failed - error: {e}",
                c.name,
                crate::pod_worker::pod_full_name(pod)
            )
        };
        let req = crate::prober::http::request_for(get, c, &pod_ip).map_err(&fail)?;
        let out = crate::prober::http::HttpProber::new()
            .probe(&req, budget)
            .await;
        return match out.verdict {
            crate::prober::probe::Verdict::Success | crate::prober::probe::Verdict::Warning => {
                Ok(())
            }
            _ => Err(fail(out.error.unwrap_or(out.output))),
        };
    }
    if let Some(sleep) = &hook.sleep {
        tokio::time::sleep(Duration::from_secs(sleep.seconds.max(0) as u64).min(budget)).await;
        return Ok(());
    }
    Err("a lifecycle hook must have exec, httpGet or sleep".into())
}
