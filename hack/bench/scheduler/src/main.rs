//! Benchmark (not a test), SchedulingBasic-like (upstream `test/integration/scheduler_perf`):
//! starts `kube-apiserver --storage-backend=memory` and, once N fake nodes and M pending pods
//! exist, `kube-scheduler`, both as subprocesses on loopback; reports how fast the pods get
//! bound. Variants: `basic` (requests only), `spread` (zone topology spread, DoNotSchedule,
//! and hostname ScheduleAnyway), `affinity` (preferred pod anti-affinity on the hostname).
//! Bounded in count and time; talks only to the processes it started.

use clap::Parser;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, PostParams};
use kube::runtime::watcher;
use std::collections::HashSet;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    /// The kube-apiserver binary.
    #[arg(long)]
    apiserver_bin: PathBuf,
    /// The kube-scheduler binary.
    #[arg(long)]
    scheduler_bin: PathBuf,
    #[arg(long, default_value_t = 5000)]
    nodes: usize,
    #[arg(long, default_value_t = 10_000)]
    pods: usize,
    /// basic, spread or affinity.
    #[arg(long, default_value = "basic")]
    variant: String,
    /// Zones the nodes are spread over.
    #[arg(long, default_value_t = 10)]
    zones: usize,
    /// Give up after this many seconds of scheduling.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
}

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn rss_mib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map(|kb| kb / 1024)
        .unwrap_or(0)
}

fn node(i: usize, zones: usize) -> anyhow::Result<Node> {
    Ok(serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": format!("node-{i}"), "labels": {
            "kubernetes.io/hostname": format!("node-{i}"),
            "topology.kubernetes.io/zone": format!("zone-{}", i % zones.max(1)),
        }},
        "status": {
            "capacity": {"cpu": "4", "memory": "32Gi", "pods": "110"},
            "allocatable": {"cpu": "4", "memory": "32Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True"}]
        }
    }))?)
}

fn pod(i: usize, variant: &str) -> anyhow::Result<Pod> {
    let mut spec = serde_json::json!({
        "containers": [{"name": "pause", "image": "registry.k8s.io/pause:3.10",
            "resources": {"requests": {"cpu": "100m", "memory": "500Mi"}}}]
    });
    let sel = serde_json::json!({"matchLabels": {"app": "bench"}});
    match variant {
        "basic" => {}
        "spread" => {
            spec["topologySpreadConstraints"] = serde_json::json!([
                {"maxSkew": 5, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "DoNotSchedule", "labelSelector": sel},
                {"maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": sel}
            ]);
        }
        "affinity" => {
            spec["affinity"] = serde_json::json!({"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 100, "podAffinityTerm": {"labelSelector": sel, "topologyKey": "kubernetes.io/hostname"}}]}});
        }
        other => anyhow::bail!("unknown variant {other:?}"),
    }
    Ok(serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("pod-{i}"), "namespace": "default", "labels": {"app": "bench"}},
        "spec": spec
    }))?)
}

/// Runs `f(i)` for i in 0..count with `concurrency` workers.
async fn parallel<F, Fut>(count: usize, concurrency: usize, f: F) -> anyhow::Result<()>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let f = Arc::new(f);
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (next, f) = (next.clone(), f.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    return Ok::<_, anyhow::Error>(());
                }
                f(i).await?;
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = std::env::temp_dir().join(format!("bench-scheduler-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let addr_file = dir.join("addr");
    let api_log = std::fs::File::create(dir.join("apiserver.log"))?;
    let _api = Proc(
        Command::new(&args.apiserver_bin)
            .args([
                "--storage-backend=memory",
                "--secure-port=0",
                "--etcd-compaction-interval=0",
                "--v=0",
            ])
            .arg(format!("--address-file={}", addr_file.display()))
            .stdout(Stdio::null())
            .stderr(api_log)
            .spawn()?,
    );
    let mut url = String::new();
    for _ in 0..600 {
        if let Ok(a) = std::fs::read_to_string(&addr_file)
            && !a.trim().is_empty()
        {
            url = format!("http://{}", a.trim());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::ensure!(
        !url.is_empty(),
        "the apiserver did not start (see {})",
        dir.display()
    );
    let client = kube::Client::try_from(kube::Config::new(url.parse()?))?;
    let t = Instant::now();
    let nodes: Api<Node> = Api::all(client.clone());
    let zones = args.zones;
    parallel(args.nodes, 32, move |i| {
        let nodes = nodes.clone();
        async move {
            nodes
                .create(&PostParams::default(), &node(i, zones)?)
                .await?;
            Ok(())
        }
    })
    .await?;
    let nodes_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let variant = args.variant.clone();
    let p2 = pods.clone();
    parallel(args.pods, 32, move |i| {
        let pods = p2.clone();
        let v = variant.clone();
        async move {
            pods.create(&PostParams::default(), &pod(i, &v)?).await?;
            Ok(())
        }
    })
    .await?;
    let pods_s = t.elapsed().as_secs_f64();
    // Watch bindings before the scheduler starts.
    let want = args.pods;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Instant>();
    let watch = tokio::spawn(async move {
        let mut bound = HashSet::new();
        let mut stream = watcher(pods, watcher::Config::default()).boxed();
        while let Ok(Some(ev)) = stream.try_next().await {
            let objs: Vec<Pod> = match ev {
                watcher::Event::Apply(p) | watcher::Event::InitApply(p) => vec![p],
                _ => vec![],
            };
            for p in objs {
                let has_node = p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some();
                if has_node && bound.insert(p.metadata.name.clone().unwrap_or_default()) {
                    let _ = tx.send(Instant::now());
                }
            }
            if bound.len() >= want {
                return;
            }
        }
    });
    let sched_log = std::fs::File::create(dir.join("scheduler.log"))?;
    let start = Instant::now();
    let sched = Proc(
        Command::new(&args.scheduler_bin)
            .args(["--leader-elect=false", "--secure-port=0", "--v=0"])
            .arg(format!("--master={url}"))
            .stdout(Stdio::null())
            .stderr(sched_log)
            .spawn()?,
    );
    let mut first: Option<Instant> = None;
    let mut last = start;
    let mut count = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(args.timeout);
    while count < want {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(at)) => {
                first.get_or_insert(at);
                last = at;
                count += 1;
            }
            _ => break,
        }
    }
    watch.abort();
    let rss = rss_mib(sched.0.id());
    let first = first.unwrap_or(start);
    let steady = last.duration_since(first).as_secs_f64();
    println!(
        "| scheduler bench ({} variant) | {} nodes, {} pods |",
        args.variant, args.nodes, args.pods
    );
    println!("|---|---|");
    println!("| setup: nodes created | {:.1} s |", nodes_s);
    println!(
        "| setup: pods created (scheduler not running) | {:.1} s |",
        pods_s
    );
    println!("| pods bound | {count} / {want} |");
    println!(
        "| scheduler start to first binding | {:.2} s |",
        first.duration_since(start).as_secs_f64()
    );
    println!(
        "| throughput, first to last binding | {:.0} pods/s |",
        if steady > 0.0 {
            (count.saturating_sub(1)) as f64 / steady
        } else {
            0.0
        }
    );
    println!(
        "| throughput, scheduler start to last binding | {:.0} pods/s |",
        count as f64 / last.duration_since(start).as_secs_f64().max(1e-9)
    );
    println!("| scheduler RSS at the end | {rss} MiB |");
    drop(sched);
    let _ = std::fs::remove_dir_all(&dir);
    anyhow::ensure!(
        count == want,
        "only {count} of {want} pods were bound within {}s",
        args.timeout
    );
    Ok(())
}
