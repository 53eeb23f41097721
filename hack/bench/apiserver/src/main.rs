//! Benchmark (not a test), against one private etcd and one apiserver on loopback:
//! - ConfigMap creates/s through the apiserver over raw etcd create transactions/s for the same
//!   1 KiB payload and concurrency (1 and 64 clients);
//! - LIST of 10,000 objects (from the watch cache, and consistent);
//! - watch delivery latency with 1,000 concurrent watchers;
//! - the same creates through a pass-through HTTP-to-etcd proxy (`--serve-floor`, run by the
//!   script as its own process), the ceiling of any apiserver's ratio on the same machine;
//! - the CPU each process spends per create (etcd, apiserver or proxy, and this client).
//!
//! Creates alternate between raw etcd, proxy and apiserver in rounds. Bounded in count and time;
//! talks only to the given loopback addresses.

use clap::Parser;
use etcd_client::{Compare, CompareOp, Txn, TxnOp};
use futures::StreamExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    #[arg(long)]
    etcd: String,
    #[arg(long)]
    apiserver: String,
    /// Objects for the single-client phase.
    #[arg(long, default_value_t = 1000)]
    serial: usize,
    /// Objects for the 64-client phase (also the size of the listed collection).
    #[arg(long, default_value_t = 10_000)]
    parallel: usize,
    #[arg(long, default_value_t = 1000)]
    watchers: usize,
    /// Each create phase is split into this many rounds; raw etcd and apiserver rounds
    /// alternate (raw first, then apiserver first), so a slow spell of the machine or the disk
    /// hits both sides instead of one.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// The apiserver's pid, to report its CPU per create.
    #[arg(long)]
    apiserver_pid: Option<u32>,
    /// etcd's pid, to report its CPU per transaction.
    #[arg(long)]
    etcd_pid: Option<u32>,
    /// A pass-through HTTP-to-etcd proxy (see `floor_proxy`) to measure beside the apiserver.
    #[arg(long)]
    floor: Option<String>,
    #[arg(long)]
    floor_pid: Option<u32>,
    /// Run as that pass-through proxy on this loopback port instead of benchmarking.
    #[arg(long)]
    serve_floor: Option<u16>,
}

/// The least any apiserver must do per create, as a reference: read the HTTP request, parse
/// the JSON body, write it to etcd with a create-if-absent transaction, answer 201 with the
/// body. No decoding into a type, defaulting, validation, admission, managed fields, watch
/// cache or metrics. Its creates/s over raw etcd's is the ceiling of the apiserver's ratio on
/// this machine.
async fn floor_proxy(etcd: etcd_client::Client, port: u16) -> anyhow::Result<()> {
    use axum::body::Bytes;
    use axum::extract::{Path, State};
    use axum::http::StatusCode;
    async fn create(
        State(etcd): State<etcd_client::Client>,
        Path(ns): Path<String>,
        body: Bytes,
    ) -> (StatusCode, Bytes) {
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body) else {
            return (StatusCode::BAD_REQUEST, Bytes::new());
        };
        let name = v["metadata"]["name"].as_str().unwrap_or_default();
        let key = format!("/bench-floor/{ns}/{name}");
        let txn = Txn::new()
            .when([Compare::create_revision(key.as_str(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(key.as_str(), body.to_vec(), None)]);
        match etcd.kv_client().txn(txn).await {
            Ok(r) if r.succeeded() => (StatusCode::CREATED, body),
            Ok(_) => (StatusCode::CONFLICT, Bytes::new()),
            Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, Bytes::new()),
        }
    }
    let app = axum::Router::new()
        .route(
            "/api/v1/namespaces/{ns}/configmaps",
            axum::routing::post(create),
        )
        .route(
            "/api/v1/namespaces",
            axum::routing::post(|| async { StatusCode::CREATED }),
        )
        .route("/healthz", axum::routing::get(|| async { "ok" }))
        .with_state(etcd);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    axum::serve(listener, app).await?;
    Ok(())
}

/// CPU time (user + system) a process has used so far, in µs; 0 when it cannot be read.
fn cpu_us(pid: Option<u32>) -> f64 {
    let path = pid.map_or_else(
        || "/proc/self/stat".to_string(),
        |p| format!("/proc/{p}/stat"),
    );
    let Ok(stat) = std::fs::read_to_string(path) else {
        return 0.0;
    };
    // Fields after the command name (which is in parentheses and may contain spaces).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) * 1_000_000.0 / 100.0
}

/// The machine's (busy + idle, stolen) CPU ticks so far, from /proc/stat: the share the
/// hypervisor took from this virtual machine explains much of the run-to-run noise.
fn machine_ticks() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let f: Vec<f64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    (f.iter().sum(), f.get(7).copied().unwrap_or(0.0))
}

/// One side's totals over all rounds of a phase.
#[derive(Default)]
struct Side {
    ops: usize,
    secs: f64,
    etcd_us: f64,
    api_us: f64,
    client_us: f64,
    rates: Vec<f64>,
}

impl Side {
    fn rate(&self) -> f64 {
        self.ops as f64 / self.secs
    }
    fn per_op(&self, us: f64) -> f64 {
        us / self.ops as f64
    }
    /// This side's rate over `base`'s, round by round.
    fn ratios_over(&self, base: &Side) -> Vec<f64> {
        base.rates
            .iter()
            .zip(&self.rates)
            .map(|(b, s)| s / b)
            .collect()
    }
}

fn value(ns: &str, i: usize) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": format!("bench-{i}"), "namespace": ns},
        "data": {"key": "x".repeat(1024)}
    }))
    .unwrap_or_default()
}

async fn run_phase<F, Fut>(count: usize, concurrency: usize, f: F) -> anyhow::Result<f64>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let f = Arc::new(f);
    let start = Instant::now();
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
    Ok(count as f64 / start.elapsed().as_secs_f64())
}

async fn raw_etcd(
    etcd: &etcd_client::Client,
    prefix: &str,
    offset: usize,
    count: usize,
    concurrency: usize,
) -> anyhow::Result<f64> {
    let e = etcd.clone();
    let prefix = prefix.to_string();
    run_phase(count, concurrency, move |i| {
        let i = i + offset;
        let mut c = e.clone();
        let key = format!("{prefix}{i}");
        async move {
            let txn = Txn::new()
                .when([Compare::create_revision(key.as_str(), CompareOp::Equal, 0)])
                .and_then([TxnOp::put(key.as_str(), value("raw", i), None)]);
            c.txn(txn).await?;
            Ok(())
        }
    })
    .await
}

async fn api_creates(
    http: &reqwest::Client,
    base: &str,
    ns: &str,
    offset: usize,
    count: usize,
    concurrency: usize,
) -> anyhow::Result<f64> {
    let h = http.clone();
    let url = format!("{base}/api/v1/namespaces/{ns}/configmaps");
    let ns = ns.to_string();
    run_phase(count, concurrency, move |i| {
        let i = i + offset;
        let (h, url, body) = (h.clone(), url.clone(), value(&ns, i));
        async move {
            let r = h
                .post(url)
                .header("Content-Type", "application/json")
                .body(body)
                .send()
                .await?;
            anyhow::ensure!(r.status().as_u16() == 201, "create answered {}", r.status());
            Ok(())
        }
    })
    .await
}

/// Runs `count` raw etcd creates and `count` apiserver creates at the given concurrency, in
/// alternating rounds, and returns both sides' totals.
async fn compare(
    a: &Args,
    etcd: &etcd_client::Client,
    http: &reqwest::Client,
    phase: &str,
    count: usize,
    concurrency: usize,
) -> anyhow::Result<[Side; 3]> {
    let rounds = a.rounds.clamp(1, count.max(1));
    let per = count / rounds;
    let mut sides: [Side; 3] = Default::default();
    let prefix = format!("/bench-raw/{phase}/");
    let ns = format!("bench-{phase}");
    for r in 0..rounds {
        let n = if r + 1 == rounds {
            count - per * r
        } else {
            per
        };
        let mut order = vec![0, 1];
        if a.floor.is_some() {
            order.push(2);
        }
        if r % 2 == 1 {
            order.reverse();
        }
        for side in order {
            let pid = if side == 2 {
                a.floor_pid
            } else {
                a.apiserver_pid
            };
            let (e0, a0, c0) = (cpu_us(a.etcd_pid), cpu_us(pid), cpu_us(None));
            let t = Instant::now();
            let rate = match (side, &a.floor) {
                (0, _) => raw_etcd(etcd, &prefix, per * r, n, concurrency).await?,
                (2, Some(floor)) => api_creates(http, floor, &ns, per * r, n, concurrency).await?,
                _ => api_creates(http, &a.apiserver, &ns, per * r, n, concurrency).await?,
            };
            let s = &mut sides[side];
            s.secs += t.elapsed().as_secs_f64();
            s.ops += n;
            s.etcd_us += cpu_us(a.etcd_pid) - e0;
            s.api_us += cpu_us(pid) - a0;
            s.client_us += cpu_us(None) - c0;
            s.rates.push(rate);
        }
    }
    Ok(sides)
}

async fn create_ns(http: &reqwest::Client, base: &str, ns: &str) -> anyhow::Result<()> {
    let r = http
        .post(format!("{base}/api/v1/namespaces"))
        .header("Content-Type", "application/json")
        .body(serde_json::to_vec(
            &serde_json::json!({"metadata": {"name": ns}}),
        )?)
        .send()
        .await?;
    anyhow::ensure!(
        r.status().as_u16() == 201,
        "namespace create answered {}",
        r.status()
    );
    Ok(())
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

async fn watch_latency(base: &str, watchers: usize) -> anyhow::Result<(f64, f64, usize)> {
    let ns = "bench-watch";
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(watchers)
        .build()?;
    create_ns(&http, base, ns).await?;
    let origin = Instant::now();
    let created: Arc<Mutex<Vec<(String, f64)>>> = Arc::default();
    let received: Arc<Mutex<Vec<(String, f64)>>> = Arc::default();
    let ready = Arc::new(AtomicUsize::new(0));
    const EVENTS: usize = 20;
    let mut tasks = Vec::new();
    for _ in 0..watchers {
        let (http, received, ready) = (http.clone(), received.clone(), ready.clone());
        let url = format!(
            "{base}/api/v1/namespaces/{ns}/configmaps?watch=1&resourceVersion=0&timeoutSeconds=60"
        );
        tasks.push(tokio::spawn(async move {
            let resp = http.get(url).send().await?;
            ready.fetch_add(1, Ordering::Relaxed);
            let mut stream = resp.bytes_stream();
            let mut buf = Vec::new();
            let mut seen = 0;
            while seen < EVENTS {
                let Ok(Some(chunk)) =
                    tokio::time::timeout(Duration::from_secs(30), stream.next()).await
                else {
                    break;
                };
                buf.extend_from_slice(&chunk?);
                while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=pos).collect();
                    let v: serde_json::Value = serde_json::from_slice(&line)?;
                    let name = v["object"]["metadata"]["name"]
                        .as_str()
                        .unwrap_or("")
                        .to_string();
                    received
                        .lock()
                        .map_err(|_| anyhow::anyhow!("lock"))?
                        .push((name, origin.elapsed().as_secs_f64()));
                    seen += 1;
                }
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while ready.load(Ordering::Relaxed) < watchers && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    for i in 0..EVENTS {
        let t = origin.elapsed().as_secs_f64();
        let r = http
            .post(format!("{base}/api/v1/namespaces/{ns}/configmaps"))
            .header("Content-Type", "application/json")
            .body(value(ns, i))
            .send()
            .await?;
        anyhow::ensure!(r.status().as_u16() == 201, "create answered {}", r.status());
        created
            .lock()
            .map_err(|_| anyhow::anyhow!("lock"))?
            .push((format!("bench-{i}"), t));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(40), t).await;
    }
    let created = created.lock().map_err(|_| anyhow::anyhow!("lock"))?.clone();
    let received = received
        .lock()
        .map_err(|_| anyhow::anyhow!("lock"))?
        .clone();
    let mut lat: Vec<f64> = received
        .iter()
        .filter_map(|(n, at)| {
            created
                .iter()
                .find(|(c, _)| c == n)
                .map(|(_, t)| (at - t) * 1000.0)
        })
        .collect();
    let n = lat.len();
    Ok((pct(&mut lat, 0.5), pct(&mut lat, 0.99), n))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let etcd = etcd_client::Client::connect([a.etcd.trim_start_matches("http://")], None).await?;
    if let Some(port) = a.serve_floor {
        return floor_proxy(etcd, port).await;
    }
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()?;
    create_ns(&http, &a.apiserver, "bench-serial").await?;
    create_ns(&http, &a.apiserver, "bench-parallel").await?;

    let (all0, stolen0) = machine_ticks();
    let [raw1, api1, floor1] = compare(&a, &etcd, &http, "serial", a.serial, 1).await?;
    let [raw64, api64, floor64] = compare(&a, &etcd, &http, "parallel", a.parallel, 64).await?;
    let (all1, stolen1) = machine_ticks();
    let stolen = 100.0 * (stolen1 - stolen0) / (all1 - all0).max(1.0);

    let mut lists = Vec::new();
    for rv in ["0", ""] {
        let start = Instant::now();
        let r = http
            .get(format!(
                "{}/api/v1/namespaces/bench-parallel/configmaps?resourceVersion={rv}",
                a.apiserver
            ))
            .send()
            .await?;
        let body = r.bytes().await?;
        let items = serde_json::from_slice::<serde_json::Value>(&body)?["items"]
            .as_array()
            .map_or(0, Vec::len);
        lists.push((rv, start.elapsed(), items, body.len()));
    }
    let (p50, p99, delivered) = watch_latency(&a.apiserver, a.watchers).await?;
    let mut c = etcd.clone();
    c.delete(
        "/bench-floor/",
        Some(etcd_client::DeleteOptions::new().with_prefix()),
    )
    .await?;
    c.delete(
        "/bench-raw/",
        Some(etcd_client::DeleteOptions::new().with_prefix()),
    )
    .await?;

    println!("| measurement | value |");
    println!("| --- | --- |");
    for (clients, raw, api, floor) in [(1, &raw1, &api1, &floor1), (64, &raw64, &api64, &floor64)] {
        let c = if clients == 1 { "client" } else { "clients" };
        let mut ratios = api.ratios_over(raw);
        let rounds = ratios
            .iter()
            .map(|r| format!("{r:.2}"))
            .collect::<Vec<_>>()
            .join(" ");
        println!(
            "| raw etcd create txns/s, {clients} {c}, 1 KiB | {:.0} |",
            raw.rate()
        );
        println!(
            "| apiserver ConfigMap creates/s, {clients} {c}, 1 KiB | {:.0} |",
            api.rate()
        );
        println!(
            "| ratio apiserver/etcd, {clients} {c} (whole phase; median of rounds; rounds) | {:.2}; {:.2}; {rounds} |",
            api.rate() / raw.rate(),
            pct(&mut ratios, 0.5)
        );
        if floor.ops > 0 {
            let mut ratios = floor.ratios_over(raw);
            println!(
                "| pass-through proxy (ceiling) over raw etcd, {clients} {c} (whole phase; median of rounds) | {:.2}; {:.2} |",
                floor.rate() / raw.rate(),
                pct(&mut ratios, 0.5)
            );
            if a.floor_pid.is_some() && a.etcd_pid.is_some() {
                println!(
                    "| CPU µs per proxied create, {clients} {c}: etcd / proxy / bench client | {:.0} / {:.0} / {:.0} |",
                    floor.per_op(floor.etcd_us),
                    floor.per_op(floor.api_us),
                    floor.per_op(floor.client_us)
                );
            }
        }
        if a.apiserver_pid.is_some() && a.etcd_pid.is_some() {
            println!(
                "| CPU µs per raw txn, {clients} {c}: etcd / bench client | {:.0} / {:.0} |",
                raw.per_op(raw.etcd_us),
                raw.per_op(raw.client_us)
            );
            println!(
                "| CPU µs per create, {clients} {c}: etcd / apiserver / bench client | {:.0} / {:.0} / {:.0} |",
                api.per_op(api.etcd_us),
                api.per_op(api.api_us),
                api.per_op(api.client_us)
            );
        }
    }
    println!("| CPU time stolen by the hypervisor during the creates | {stolen:.1} % |");
    for (rv, d, items, bytes) in lists {
        println!(
            "| LIST {items} ConfigMaps (resourceVersion={rv:?}), {} KiB | {:.1} ms |",
            bytes / 1024,
            d.as_secs_f64() * 1000.0
        );
    }
    println!(
        "| watch delivery latency, {} watchers, 20 events ({delivered} deliveries) | p50 {p50:.1} ms, p99 {p99:.1} ms |",
        a.watchers
    );
    Ok(())
}
