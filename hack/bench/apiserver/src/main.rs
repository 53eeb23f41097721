//! Benchmark (not a test), against one private etcd and one apiserver on loopback:
//! - ConfigMap creates/s through the apiserver over raw etcd create transactions/s for the same
//!   1 KiB payload and concurrency (1 and 64 clients);
//! - LIST of 10,000 objects (from the watch cache, and consistent);
//! - watch delivery latency with 1,000 concurrent watchers.
//! Bounded in count and time; talks only to the given loopback addresses.

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
    count: usize,
    concurrency: usize,
) -> anyhow::Result<f64> {
    let e = etcd.clone();
    let prefix = prefix.to_string();
    run_phase(count, concurrency, move |i| {
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
    count: usize,
    concurrency: usize,
) -> anyhow::Result<f64> {
    let h = http.clone();
    let url = format!("{base}/api/v1/namespaces/{ns}/configmaps");
    let ns = ns.to_string();
    run_phase(count, concurrency, move |i| {
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
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()?;
    create_ns(&http, &a.apiserver, "bench-serial").await?;
    create_ns(&http, &a.apiserver, "bench-parallel").await?;

    let raw1 = raw_etcd(&etcd, "/bench-raw/serial/", a.serial, 1).await?;
    let api1 = api_creates(&http, &a.apiserver, "bench-serial", a.serial, 1).await?;
    let raw64 = raw_etcd(&etcd, "/bench-raw/parallel/", a.parallel, 64).await?;
    let api64 = api_creates(&http, &a.apiserver, "bench-parallel", a.parallel, 64).await?;

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
        "/bench-raw/",
        Some(etcd_client::DeleteOptions::new().with_prefix()),
    )
    .await?;

    println!("| measurement | value |");
    println!("| --- | --- |");
    println!("| raw etcd create txns/s, 1 client, 1 KiB | {raw1:.0} |");
    println!("| apiserver ConfigMap creates/s, 1 client, 1 KiB | {api1:.0} |");
    println!("| ratio apiserver/etcd, 1 client | {:.2} |", api1 / raw1);
    println!("| raw etcd create txns/s, 64 clients, 1 KiB | {raw64:.0} |");
    println!("| apiserver ConfigMap creates/s, 64 clients, 1 KiB | {api64:.0} |");
    println!(
        "| ratio apiserver/etcd, 64 clients | {:.2} |",
        api64 / raw64
    );
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
