//! Shared helpers for the conformance tests: cluster access (kube client and kubectl), per-test
//! namespaces, raw HTTP requests and watch assertions. Mirrors the parts of upstream's
//! `test/e2e/framework` (framework.go, namespace handling, kubectl helpers) that the tests use.
//!
//! The tests only run against a live cluster: `conformance/run.sh` starts etcd and
//! kube-apiserver, then exports `CONFORMANCE_KUBECONFIG` (admin kubeconfig) and `KUBECTL`.

pub mod fakenode;
pub mod kubectl;
pub mod watch;

use std::path::PathBuf;
use std::time::Duration;

use http::{HeaderMap, Method, StatusCode};
use http_body_util::BodyExt;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

pub use kubectl::{Kubectl, KubectlNamespace, KubectlOutput};
pub use watch::EventStream;

/// Environment variable naming the admin kubeconfig of the cluster under test.
pub const KUBECONFIG_ENV: &str = "CONFORMANCE_KUBECONFIG";

/// Label put on every namespace a test creates (upstream's framework uses the same key).
pub const FRAMEWORK_LABEL: &str = "e2e-framework";

/// Path of the kubeconfig of the cluster under test. Panics with instructions when unset:
/// these tests need a running cluster and are run by `conformance/run.sh`.
pub fn kubeconfig_path() -> PathBuf {
    match std::env::var_os(KUBECONFIG_ENV) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => panic!(
            "{KUBECONFIG_ENV} is not set: the conformance tests need a running cluster; \
             run them with conformance/run.sh"
        ),
    }
}

/// A WebSocket to the apiserver (see [`Cluster::websocket`]).
pub type WebSocket =
    tokio_tungstenite::WebSocketStream<hyper_util::rt::TokioIo<hyper::upgrade::Upgraded>>;

/// A connection to the cluster under test.
#[derive(Clone)]
pub struct Cluster {
    pub client: Client,
}

/// Connects to the cluster named by `CONFORMANCE_KUBECONFIG` (panics if unset or unusable).
pub async fn cluster() -> Cluster {
    let path = kubeconfig_path();
    let kubeconfig = Kubeconfig::read_from(&path)
        .unwrap_or_else(|e| panic!("reading kubeconfig {}: {e}", path.display()));
    let mut config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap_or_else(|e| panic!("loading kubeconfig {}: {e}", path.display()));
    config.read_timeout = Some(Duration::from_secs(120));
    let client = Client::try_from(config).unwrap_or_else(|e| panic!("building client: {e}"));
    Cluster { client }
}

impl Cluster {
    /// Typed API for a namespaced resource in `ns`.
    pub fn ns_api<K>(&self, ns: &str) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), ns)
    }

    /// Typed API across all namespaces (or for a cluster-scoped resource).
    pub fn all_api<K>(&self) -> Api<K>
    where
        K: kube::Resource,
        <K as kube::Resource>::DynamicType: Default,
    {
        Api::all(self.client.clone())
    }

    /// Creates a namespace named `<base>-<random>` via generateName, labelled like upstream's
    /// framework does. It is deleted (without waiting) when the returned guard is dropped.
    pub async fn create_namespace(&self, base: &str) -> TestNamespace {
        let api: Api<Namespace> = self.all_api();
        let ns = Namespace {
            metadata: ObjectMeta {
                generate_name: Some(format!("{base}-")),
                labels: Some([(FRAMEWORK_LABEL.to_string(), base.to_string())].into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let created = api
            .create(&PostParams::default(), &ns)
            .await
            .unwrap_or_else(|e| panic!("creating namespace {base}-*: {e}"));
        let name = created
            .metadata
            .name
            .clone()
            .expect("created namespace has a name");
        TestNamespace {
            name,
            object: created,
        }
    }

    /// Sends a raw request (path relative to the server root) and returns status, headers and
    /// body, whatever the status.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> RawResponse {
        let mut builder = http::Request::builder().method(method.clone()).uri(path);
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        let req = builder
            .body(kube::client::Body::from(body))
            .expect("valid request");
        let resp = self
            .client
            .send(req)
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: transport error: {e}"));
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: reading body: {e}"))
            .to_bytes();
        RawResponse {
            status,
            headers,
            body: bytes.to_vec(),
        }
    }

    /// Opens a WebSocket to `path` (relative to the server root) offering `protocols`, with
    /// the kubeconfig's credentials, as upstream's e2e `OpenWebSocketForURL`. Returns the
    /// stream and the negotiated subprotocol, or the refusal's status and body.
    pub async fn websocket(
        &self,
        path: &str,
        protocols: &[&str],
    ) -> Result<(WebSocket, Option<String>), (u16, String)> {
        use tokio_tungstenite::tungstenite::handshake::client::generate_key;
        let key = generate_key();
        let mut builder = http::Request::builder()
            .method(Method::GET)
            .uri(path)
            .header("connection", "Upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-version", "13")
            .header("sec-websocket-key", &key);
        if !protocols.is_empty() {
            builder = builder.header("sec-websocket-protocol", protocols.join(", "));
        }
        let req = builder
            .body(kube::client::Body::from(Vec::new()))
            .expect("valid request");
        let resp = self
            .client
            .send(req)
            .await
            .unwrap_or_else(|e| panic!("GET {path} (WebSocket): transport error: {e}"));
        if resp.status() != http::StatusCode::SWITCHING_PROTOCOLS {
            let code = resp.status().as_u16();
            let body = resp
                .into_body()
                .collect()
                .await
                .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
                .unwrap_or_default();
            return Err((code, body));
        }
        let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
        assert_eq!(
            resp.headers()
                .get("sec-websocket-accept")
                .and_then(|v| v.to_str().ok()),
            Some(accept.as_str()),
            "Sec-WebSocket-Accept of {path}"
        );
        let protocol = resp
            .headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let upgraded = hyper::upgrade::on(resp)
            .await
            .unwrap_or_else(|e| panic!("GET {path} (WebSocket): upgrade: {e}"));
        let ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
            hyper_util::rt::TokioIo::new(upgraded),
            tokio_tungstenite::tungstenite::protocol::Role::Client,
            None,
        )
        .await;
        Ok((ws, protocol))
    }

    /// GET `path` with the given Accept header and decode the JSON body; panics on non-2xx.
    pub async fn get_json(&self, path: &str, accept: &str) -> serde_json::Value {
        let resp = self
            .raw(Method::GET, path, &[("Accept", accept)], Vec::new())
            .await;
        assert!(
            resp.status.is_success(),
            "GET {path} (Accept: {accept}): {}",
            resp.describe()
        );
        resp.json()
    }
}

/// A namespace created for one test. Dropping it requests its deletion (namespace deletion stays
/// Terminating until a namespace controller exists, so nothing waits for it to go away).
pub struct TestNamespace {
    pub name: String,
    /// The namespace as returned by the create call.
    pub object: Namespace,
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        if std::env::var_os(KUBECONFIG_ENV).is_none() {
            return;
        }
        // Best effort: a failure here must not hide the test's own result.
        let _ = Kubectl::from_env().run(
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

/// Status, headers and body of a raw request.
pub struct RawResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl RawResponse {
    /// Body as (lossy) UTF-8 text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Body parsed as JSON; panics with the body when it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("response is not JSON ({e}): {}", self.describe()))
    }

    /// The Content-Type header, or "".
    pub fn content_type(&self) -> String {
        self.headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    }

    /// "HTTP <code>, Content-Type <ct>: <body>" for assertion messages (body cut at 2000 bytes).
    pub fn describe(&self) -> String {
        let text = self.text();
        let cut: String = text.chars().take(2000).collect();
        format!(
            "HTTP {}, Content-Type {:?}: {cut}",
            self.status,
            self.content_type()
        )
    }
}

/// Polls `f` every `interval` until it returns `Some`, or panics with `what` after `timeout`.
pub async fn poll_until<T, F, Fut>(what: &str, interval: Duration, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(interval).await;
    }
}

/// Percent-encodes a query parameter value.
pub fn query_escape(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// Compares two resource versions as upstream's `resourceversion.CompareResourceVersion` does for
/// etcd-backed ones (decimal integers): returns `a.cmp(b)`. Panics if either is not a number.
pub fn compare_resource_versions(a: &str, b: &str) -> std::cmp::Ordering {
    let pa: u128 = a
        .parse()
        .unwrap_or_else(|_| panic!("resourceVersion {a:?} is not a number"));
    let pb: u128 = b
        .parse()
        .unwrap_or_else(|_| panic!("resourceVersion {b:?} is not a number"));
    pa.cmp(&pb)
}
