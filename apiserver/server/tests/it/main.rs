//! In-process apiserver tests over HTTP: the server runs on the in-memory backend (and one test on
//! a private etcd) and is driven with plain HTTP requests as a client would.

mod api;
mod apply;
mod crd;
mod crd_conversion;
mod fake_kubelet;
mod kubelet;
mod restart;
mod serviceaccounts;
mod watch;

use apiserver::Config;
use clap::Parser;
use serde_json::Value;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub struct Server {
    pub base: String,
    pub http: reqwest::Client,
    stop: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

pub async fn start(extra: &[&str]) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let addr_file = dir.path().join("addr");
    let mut args = vec!["kube-apiserver".to_string()];
    if !extra.iter().any(|a| a.starts_with("--storage-backend")) {
        args.push("--storage-backend=memory".into());
    }
    args.extend([
        "--secure-port=0".into(),
        format!("--address-file={}", addr_file.display()),
    ]);
    if !extra
        .iter()
        .any(|a| a.starts_with("--etcd-compaction-interval"))
    {
        args.push("--etcd-compaction-interval=0".into());
    }
    // As upstream's integration tests: pods need no service account unless a test asks for
    // the ServiceAccount admission plugin (with `--disable-admission-plugins=`).
    if !extra
        .iter()
        .any(|a| a.starts_with("--disable-admission-plugins"))
    {
        args.push("--disable-admission-plugins=ServiceAccount".into());
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    let config = Config::parse_from(args);
    let stop = CancellationToken::new();
    let s = stop.clone();
    tokio::spawn(async move {
        if let Err(e) = apiserver::run(config, s).await {
            panic!("server failed: {e:#}");
        }
    });
    for _ in 0..200 {
        if let Ok(a) = std::fs::read_to_string(&addr_file) {
            if !a.is_empty() {
                return Server {
                    base: format!("http://{a}"),
                    http: reqwest::Client::new(),
                    stop,
                    _dir: dir,
                };
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("server did not start");
}

impl Server {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }
    /// The `/metrics` text.
    pub async fn metrics(&self) -> String {
        let r = self.http.get(self.url("/metrics")).send().await.unwrap();
        r.text().await.unwrap()
    }
    pub async fn req(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut r = self.http.request(m, self.url(path));
        if let Some(b) = body {
            let ct = if method == "PATCH" {
                "application/merge-patch+json"
            } else {
                "application/json"
            };
            r = r
                .header("Content-Type", ct)
                .body(serde_json::to_vec(&b).unwrap());
        }
        let resp = r.send().await.unwrap();
        let code = resp.status().as_u16();
        let bytes = resp.bytes().await.unwrap();
        (code, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }
    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.req("GET", path, None).await
    }
    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.req("POST", path, Some(body)).await
    }
    pub async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        self.req("PUT", path, Some(body)).await
    }
    pub async fn delete(&self, path: &str) -> (u16, Value) {
        self.req("DELETE", path, None).await
    }
}

pub fn rv(v: &Value) -> i64 {
    v["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}
