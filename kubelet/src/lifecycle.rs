//! Container lifecycle hooks, postStart and preStop: exec, httpGet and sleep handlers (upstream
//! `pkg/kubelet/lifecycle/handlers.go`). Failure messages become the FailedPostStartHook and
//! FailedPreStopHook events.

use crate::kubelet::Kubelet;
use k8s_openapi::api::core::v1::{Container, LifecycleHandler, Pod};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn resolve_port(c: &Container, port: &IntOrString) -> Result<u16, String> {
    match port {
        IntOrString::Int(p) => u16::try_from(*p).map_err(|_| format!("invalid port {p}")),
        IntOrString::String(name) => c
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some(name.as_str()))
            .and_then(|p| u16::try_from(p.container_port).ok())
            .ok_or_else(|| format!("couldn't find port: {name} in {}", c.name)),
    }
}

/// A minimal HTTP/1.1 GET; success is a status in 200..400.
pub async fn http_get(
    host: &str,
    port: u16,
    path: &str,
    headers: &[(String, String)],
    timeout: Duration,
) -> Result<u16, String> {
    let run = async {
        let mut s = tokio::net::TcpStream::connect((host, port))
            .await
            .map_err(|e| format!("dial tcp {host}:{port}: {e}"))?;
        let mut req = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: kube-lifecycle/1.37\r\nConnection: close\r\n"
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut buf = vec![0u8; 256];
        let n = s.read(&mut buf).await.map_err(|e| e.to_string())?;
        let line = String::from_utf8_lossy(&buf[..n]);
        line.split_whitespace()
            .nth(1)
            .and_then(|c| c.parse::<u16>().ok())
            .ok_or_else(|| "malformed HTTP response".to_string())
    };
    tokio::time::timeout(timeout, run)
        .await
        .map_err(|_| "context deadline exceeded".to_string())?
}

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
        let host = get
            .host
            .clone()
            .or_else(|| pod.status.as_ref().and_then(|s| s.pod_ip.clone()))
            .unwrap_or_else(|| "127.0.0.1".into());
        let port = resolve_port(c, &get.port)?;
        let path = get.path.clone().unwrap_or_else(|| "/".into());
        let headers: Vec<(String, String)> = get
            .http_headers
            .iter()
            .flatten()
            .map(|h| (h.name.clone(), h.value.clone()))
            .collect();
        let code = http_get(&host, port, &path, &headers, budget).await.map_err(|e| {
            format!("HTTP lifecycle hook ({path}) for Container \"{}\" in Pod \"{}\" failed - error: {e}", c.name, crate::pod_worker::pod_full_name(pod))
        })?;
        if !(200..400).contains(&code) {
            return Err(format!(
                "HTTP lifecycle hook ({path}) for Container \"{}\" in Pod \"{}\" failed - error: HTTP lifecycle hook ({path}) failed with status code {code}",
                c.name,
                crate::pod_worker::pod_full_name(pod)
            ));
        }
        return Ok(());
    }
    if let Some(sleep) = &hook.sleep {
        tokio::time::sleep(Duration::from_secs(sleep.seconds.max(0) as u64).min(budget)).await;
        return Ok(());
    }
    Err("a lifecycle hook must have exec, httpGet or sleep".into())
}
