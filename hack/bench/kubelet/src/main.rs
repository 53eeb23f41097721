//! Benchmark (not a test) against a running cluster with our kubelet (hack/local-up.sh):
//! pods bound straight to the node (`spec.nodeName`, so only the kubelet and containerd are
//! measured) are created one after another; the latency is from the create call returning to
//! a watch seeing the pod Running. Then the kubelet's RSS is read with `--rss-pods` pods running.
//! Everything it creates lives in one namespace that it deletes at the end.

use clap::Parser;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, DeleteParams, ListParams, PostParams, WatchEvent, WatchParams};
use std::collections::HashMap;
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    #[arg(long)]
    kubeconfig: String,
    #[arg(long)]
    node: String,
    #[arg(long, default_value_t = 50)]
    pods: usize,
    #[arg(long, default_value_t = 30)]
    rss_pods: usize,
    #[arg(long, default_value = "docker.io/library/busybox:1.36")]
    image: String,
    /// The kubelet's pid (for its RSS).
    #[arg(long)]
    kubelet_pid: Option<u32>,
}

fn pod(name: &str, node: &str, image: &str) -> Pod {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"nodeName": node, "terminationGracePeriodSeconds": 0,
                 "containers": [{"name": "c", "image": image, "imagePullPolicy": "IfNotPresent",
                                 "command": ["sleep", "3600"]}]}}))
    .expect("pod")
}

fn rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

async fn wait_running(
    pods: &Api<Pod>,
    name: &str,
    rv: &str,
    deadline: Duration,
) -> anyhow::Result<()> {
    let wp = WatchParams::default()
        .fields(&format!("metadata.name={name}"))
        .timeout(deadline.as_secs() as u32);
    let mut stream = pods.watch(&wp, rv).await?.boxed();
    while let Some(ev) = stream.next().await {
        if let WatchEvent::Added(p) | WatchEvent::Modified(p) = ev?
            && p.status.and_then(|s| s.phase).as_deref() == Some("Running")
        {
            return Ok(());
        }
    }
    anyhow::bail!("pod {name} did not reach Running within {deadline:?}")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let kc = kube::config::Kubeconfig::read_from(&a.kubeconfig)?;
    let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?;
    let client = kube::Client::try_from(cfg)?;
    let ns_name = format!("bench-kubelet-{}", std::process::id());
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(serde_json::json!({"metadata": {"name": ns_name}}))?,
        )
        .await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns_name);
    let result = run(&a, &pods).await;
    let _ = namespaces.delete(&ns_name, &DeleteParams::default()).await;
    // Wait (bounded) for the kubelet to remove the pods.
    for _ in 0..120 {
        if pods
            .list(&ListParams::default())
            .await
            .map(|l| l.items.is_empty())
            .unwrap_or(true)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    result
}

async fn run(a: &Args, pods: &Api<Pod>) -> anyhow::Result<()> {
    // Warm up: the first pod pays for image unpacking checks and CNI setup caches.
    let mut latencies = Vec::new();
    let mut names = Vec::new();
    for i in 0..=a.pods {
        let name = format!("lat-{i}");
        let start = Instant::now();
        let created = pods
            .create(&PostParams::default(), &pod(&name, &a.node, &a.image))
            .await?;
        let rv = created
            .metadata
            .resource_version
            .clone()
            .unwrap_or_default();
        wait_running(pods, &name, &rv, Duration::from_secs(60)).await?;
        if i > 0 {
            latencies.push(start.elapsed());
        }
        names.push(name);
    }
    latencies.sort();
    let mean = latencies.iter().sum::<Duration>() / latencies.len() as u32;
    println!(
        "pod created -> Running, {} pods one after another (nodeName set, local image):",
        latencies.len()
    );
    println!(
        "  p50 {:.3}s  p90 {:.3}s  p99 {:.3}s  max {:.3}s  mean {:.3}s",
        pct(&latencies, 0.5).as_secs_f64(),
        pct(&latencies, 0.9).as_secs_f64(),
        pct(&latencies, 0.99).as_secs_f64(),
        latencies.last().copied().unwrap_or_default().as_secs_f64(),
        mean.as_secs_f64()
    );
    if let Some(pid) = a.kubelet_pid {
        // Keep exactly rss_pods running, let the kubelet settle, then read its RSS.
        let running: usize = names.len();
        let mut by_name: HashMap<String, ()> = names.iter().map(|n| (n.clone(), ())).collect();
        for n in names
            .iter()
            .skip(a.rss_pods)
            .take(running.saturating_sub(a.rss_pods))
        {
            pods.delete(n, &DeleteParams::default().grace_period(0))
                .await?;
            by_name.remove(n);
        }
        tokio::time::sleep(Duration::from_secs(15)).await;
        match rss_kib(pid) {
            Some(kib) => println!(
                "kubelet RSS with {} pods running: {:.1} MiB",
                by_name.len(),
                kib as f64 / 1024.0
            ),
            None => println!("kubelet RSS: pid {pid} not readable"),
        }
    }
    Ok(())
}
