//! Prometheus metrics with upstream's names: `apiserver_request_total`,
//! `apiserver_request_duration_seconds` and `etcd_request_duration_seconds` (the latter through
//! a storage decorator), rendered in the text exposition format.

use apiserver_storage::{EventStream, KeyValue, ListResult, Result, Storage};
use async_trait::async_trait;
use bytes::Bytes;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Arc, Mutex};
use std::time::Instant;

const BUCKETS: &[f64] = &[
    0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0,
    10.0, 15.0, 20.0, 30.0, 45.0, 60.0,
];

#[derive(Clone, Default)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, v: f64) {
        if self.counts.is_empty() {
            self.counts = vec![0; BUCKETS.len()];
        }
        for (i, b) in BUCKETS.iter().enumerate() {
            if v <= *b {
                self.counts[i] += 1;
            }
        }
        self.sum += v;
        self.count += 1;
    }
}

/// A family of histograms keyed by label values.
#[derive(Default)]
pub struct HistogramVec {
    inner: Mutex<BTreeMap<Vec<(&'static str, String)>, Histogram>>,
}

impl HistogramVec {
    pub fn observe(&self, labels: Vec<(&'static str, String)>, seconds: f64) {
        let mut m = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        m.entry(labels).or_default().observe(seconds);
    }

    pub fn render(&self, name: &str, help: &str, out: &mut String) {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} histogram");
        let m = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        for (labels, h) in m.iter() {
            let base: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
            for (i, b) in BUCKETS.iter().enumerate() {
                let mut l = base.clone();
                l.push(format!("le=\"{b}\""));
                let _ = writeln!(
                    out,
                    "{name}_bucket{{{}}} {}",
                    l.join(","),
                    h.counts.get(i).copied().unwrap_or(0)
                );
            }
            let mut l = base.clone();
            l.push("le=\"+Inf\"".into());
            let _ = writeln!(out, "{name}_bucket{{{}}} {}", l.join(","), h.count);
            let _ = writeln!(out, "{name}_sum{{{}}} {}", base.join(","), h.sum);
            let _ = writeln!(out, "{name}_count{{{}}} {}", base.join(","), h.count);
        }
    }
}

/// Storage wrapper recording `etcd_request_duration_seconds{operation,type}`.
pub struct InstrumentedStorage {
    pub inner: Arc<dyn Storage>,
    pub durations: Arc<HistogramVec>,
}

/// The resource a key belongs to (`/registry/pods/ns/x` -> `pods`).
fn key_type(key: &str) -> String {
    key.trim_start_matches('/')
        .split('/')
        .nth(1)
        .unwrap_or("")
        .to_string()
}

impl InstrumentedStorage {
    fn record(&self, op: &str, key: &str, start: Instant) {
        self.durations.observe(
            vec![("operation", op.to_string()), ("type", key_type(key))],
            start.elapsed().as_secs_f64(),
        );
    }
}

#[async_trait]
impl Storage for InstrumentedStorage {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let t = Instant::now();
        let r = self.inner.get(key).await;
        self.record("get", key, t);
        r
    }
    async fn list(
        &self,
        prefix: &str,
        start: &str,
        limit: i64,
        revision: i64,
    ) -> Result<ListResult> {
        let t = Instant::now();
        let r = self.inner.list(prefix, start, limit, revision).await;
        self.record("list", prefix, t);
        r
    }
    async fn create(&self, key: &str, value: Bytes, ttl: Option<i64>) -> Result<i64> {
        let t = Instant::now();
        let r = self.inner.create(key, value, ttl).await;
        self.record("create", key, t);
        r
    }
    async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected: i64,
        ttl: Option<i64>,
    ) -> Result<i64> {
        let t = Instant::now();
        let r = self.inner.update(key, value, expected, ttl).await;
        self.record("update", key, t);
        r
    }
    async fn delete(&self, key: &str, expected: i64) -> Result<i64> {
        let t = Instant::now();
        let r = self.inner.delete(key, expected).await;
        self.record("delete", key, t);
        r
    }
    async fn watch(&self, prefix: &str, from: i64) -> Result<EventStream> {
        self.inner.watch(prefix, from).await
    }

    async fn request_progress(&self) -> Result<()> {
        self.inner.request_progress().await
    }
    async fn current_revision(&self) -> Result<i64> {
        let t = Instant::now();
        let r = self.inner.current_revision().await;
        self.record("current_revision", "", t);
        r
    }
    async fn compact(&self, revision: i64) -> Result<()> {
        let t = Instant::now();
        let r = self.inner.compact(revision).await;
        self.record("compact", "", t);
        r
    }
}
