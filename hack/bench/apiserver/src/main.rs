//! Benchmark (not a test): creates/s through the apiserver over raw etcd create-if-absent
//! transactions/s on the same etcd, plus list latency served from the watch cache.
//! Bounded in count and time; talks only to loopback.

use clap::Parser;
use etcd_client::{Compare, CompareOp, Txn, TxnOp};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    /// etcd client URL (loopback).
    #[arg(long)]
    etcd: String,
    /// apiserver base URL (loopback, plain HTTP).
    #[arg(long)]
    apiserver: String,
    /// Objects per phase.
    #[arg(short = 'n', long, default_value_t = 2000)]
    count: usize,
    /// Concurrent clients.
    #[arg(short = 'c', long, default_value_t = 8)]
    concurrency: usize,
}

fn value(i: usize) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": format!("bench-{i}"), "namespace": "default", "labels": {"bench": "yes"}},
        "data": {"key": "x".repeat(200)}
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
        let next = next.clone();
        let f = f.clone();
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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let deadline = Duration::from_secs(300);
    let etcd = etcd_client::Client::connect([a.etcd.trim_start_matches("http://")], None).await?;
    let e = etcd.clone();
    let raw = tokio::time::timeout(
        deadline,
        run_phase(a.count, a.concurrency, move |i| {
            let mut c = e.clone();
            async move {
                let key = format!("/bench-raw/default/bench-{i}");
                let txn = Txn::new()
                    .when([Compare::create_revision(key.as_str(), CompareOp::Equal, 0)])
                    .and_then([TxnOp::put(key.as_str(), value(i), None)]);
                c.txn(txn).await?;
                Ok(())
            }
        }),
    )
    .await??;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(a.concurrency)
        .build()?;
    let base = a.apiserver.clone();
    let h = http.clone();
    let api = tokio::time::timeout(
        deadline,
        run_phase(a.count, a.concurrency, move |i| {
            let h = h.clone();
            let url = format!("{base}/api/v1/namespaces/default/configmaps");
            async move {
                let r = h
                    .post(url)
                    .header("Content-Type", "application/json")
                    .body(value(i))
                    .send()
                    .await?;
                anyhow::ensure!(r.status().as_u16() == 201, "create answered {}", r.status());
                Ok(())
            }
        }),
    )
    .await??;
    // List latency from the watch cache (resourceVersion=0) and consistent (unset).
    let mut lat = Vec::new();
    for rv in ["0", ""] {
        let start = Instant::now();
        let url = format!(
            "{}/api/v1/namespaces/default/configmaps?resourceVersion={rv}",
            a.apiserver
        );
        let r = http.get(url).send().await?;
        let body = r.bytes().await?;
        lat.push((rv, start.elapsed(), body.len()));
    }
    let mut c = etcd.clone();
    c.delete(
        "/bench-raw/",
        Some(etcd_client::DeleteOptions::new().with_prefix()),
    )
    .await?;
    println!("objects: {}  concurrency: {}", a.count, a.concurrency);
    println!("raw etcd create txns/s:   {raw:.0}");
    println!("apiserver creates/s:      {api:.0}");
    println!("ratio apiserver/etcd:     {:.2}", api / raw);
    for (rv, d, bytes) in lat {
        println!(
            "list {} objects (resourceVersion={rv:?}): {:.1} ms, {} KiB",
            a.count,
            d.as_secs_f64() * 1000.0,
            bytes / 1024
        );
    }
    Ok(())
}
