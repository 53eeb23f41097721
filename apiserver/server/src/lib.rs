//! kube-apiserver: flags, start-up (storage, watch cache, install table, bootstrap objects),
//! and the HTTP(S) server. `run` is a library function so tests start it in-process.

pub mod authn;
pub mod bootstrap;
pub mod crds;
pub mod discovery;
pub mod handlers;
pub mod health;
pub mod kubelet_client;
pub mod metrics;
pub mod negotiate;
pub mod pod_options;
pub mod proxy;
pub mod request_info;
pub mod server;
pub mod state;
pub mod streaming;
pub mod tls;
pub mod upgradeaware;
pub mod watch;
pub mod yamlstrict;

use anyhow::Context;
use apiserver_registry::install::{Config as InstallConfig, install};
use apiserver_storage::Storage;
use apiserver_storage::cacher::CacheSet;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Flags, named as upstream's kube-apiserver flags.
#[derive(clap::Parser, Clone, Debug)]
#[command(
    name = "kube-apiserver",
    about = "Kubernetes API server (Rust implementation)"
)]
pub struct Config {
    /// etcd servers to connect to (scheme://ip:port), comma separated.
    #[arg(
        long = "etcd-servers",
        value_delimiter = ',',
        default_value = "http://127.0.0.1:2379"
    )]
    pub etcd_servers: Vec<String>,
    /// The prefix of every key in etcd.
    #[arg(long = "etcd-prefix", default_value = "/registry")]
    pub etcd_prefix: String,
    /// Storage backend: etcd3, or memory (embedded, for tests).
    #[arg(long = "storage-backend", default_value = "etcd3")]
    pub storage_backend: String,
    /// The IP address on which to listen for the --secure-port port.
    #[arg(long = "bind-address", default_value = "127.0.0.1")]
    pub bind_address: String,
    /// The port on which to serve HTTPS (0 picks a free port).
    #[arg(long = "secure-port", default_value_t = 6443)]
    pub secure_port: u16,
    /// File containing the default x509 certificate for HTTPS. Without it the server speaks
    /// plain HTTP (for tests) and treats every request as the admin user.
    #[arg(long = "tls-cert-file")]
    pub tls_cert_file: Option<String>,
    #[arg(long = "tls-private-key-file")]
    pub tls_private_key_file: Option<String>,
    /// CA bundle used to verify client certificates (CN = user, O = groups).
    #[arg(long = "client-ca-file")]
    pub client_ca_file: Option<String>,
    /// CIDR range from which to assign service cluster IPs.
    #[arg(long = "service-cluster-ip-range", default_value = "10.0.0.0/24")]
    pub service_cluster_ip_range: String,
    /// Amount of time to retain events.
    #[arg(long = "event-ttl", default_value = "1h", value_parser = parse_duration)]
    pub event_ttl: std::time::Duration,
    /// Interval of requests to compact storage (0 disables).
    #[arg(long = "etcd-compaction-interval", default_value = "5m", value_parser = parse_duration)]
    pub etcd_compaction_interval: std::time::Duration,
    /// Log verbosity (0-10), as upstream's -v.
    #[arg(short = 'v', long = "v", default_value_t = 2)]
    pub v: u8,
    /// Path to a client certificate file the apiserver presents to kubelets.
    #[arg(long = "kubelet-client-certificate")]
    pub kubelet_client_certificate: Option<String>,
    /// Path to the key of --kubelet-client-certificate.
    #[arg(long = "kubelet-client-key")]
    pub kubelet_client_key: Option<String>,
    /// Path to a CA bundle verifying the kubelets' serving certificates (not verified without).
    #[arg(long = "kubelet-certificate-authority")]
    pub kubelet_certificate_authority: Option<String>,
    /// List of the preferred NodeAddressTypes to use for kubelet connections.
    #[arg(
        long = "kubelet-preferred-address-types",
        value_delimiter = ',',
        default_value = kubelet_client::DEFAULT_PREFERRED_ADDRESS_TYPES
    )]
    pub kubelet_preferred_address_types: Vec<String>,
    /// Timeout for kubelet operations (dialing a kubelet).
    #[arg(long = "kubelet-timeout", default_value = "5s", value_parser = parse_duration)]
    pub kubelet_timeout: std::time::Duration,
    /// Writes the chosen listen address to this file once serving (for tests and scripts).
    #[arg(long = "address-file")]
    pub address_file: Option<String>,
    /// Identifier of the service account token issuer, asserted in the "iss" claim of issued
    /// tokens. Repeatable: the first is used to generate tokens and all are accepted.
    #[arg(long = "service-account-issuer")]
    pub service_account_issuer: Vec<String>,
    /// File containing PEM-encoded RSA or ECDSA private or public keys used to verify service
    /// account tokens. Repeatable. Defaults to --tls-private-key-file.
    #[arg(long = "service-account-key-file")]
    pub service_account_key_file: Vec<String>,
    /// Path to the file that contains the current private key of the service account token
    /// issuer. Without it (and the issuer) no tokens are issued or accepted.
    #[arg(long = "service-account-signing-key-file")]
    pub service_account_signing_key_file: Option<String>,
    /// Identifiers of the API; tokens used against the API must be bound to at least one of
    /// them. Defaults to the issuers.
    #[arg(long = "api-audiences", value_delimiter = ',')]
    pub api_audiences: Vec<String>,
    /// The maximum validity duration of an issued token (0: no maximum); longer requests are
    /// shortened to it.
    #[arg(long = "service-account-max-token-expiration", default_value = "0", value_parser = parse_duration)]
    pub service_account_max_token_expiration: std::time::Duration,
    /// Extend admission-injected (pod-bound, 3607 s) tokens to one year, reporting the requested
    /// expiry and warning after it.
    #[arg(
        long = "service-account-extend-token-expiration",
        default_value = "true",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = parse_bool
    )]
    pub service_account_extend_token_expiration: bool,
    /// Admission plugins that should be disabled although they are on by default (only
    /// ServiceAccount can be).
    #[arg(long = "disable-admission-plugins", value_delimiter = ',')]
    pub disable_admission_plugins: Vec<String>,
}

/// Go's `strconv.ParseBool`, as boolean flags accept.
pub fn parse_bool(s: &str) -> Result<bool, String> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(format!("invalid boolean {s:?}")),
    }
}

/// Parses Go-style durations: `1h`, `5m`, `30s`, `1h30m`, `0`.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    if s == "0" {
        return Ok(std::time::Duration::ZERO);
    }
    let mut total = 0f64;
    let mut num = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        let mut unit = c.to_string();
        if c == 'm' && chars.peek() == Some(&'s') {
            unit.push('s');
            chars.next();
        }
        let n: f64 = num.parse().map_err(|_| format!("invalid duration {s:?}"))?;
        num.clear();
        total += n * match unit.as_str() {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            _ => return Err(format!("invalid duration unit in {s:?}")),
        };
    }
    if !num.is_empty() {
        return Err(format!("missing unit in duration {s:?}"));
    }
    Ok(std::time::Duration::from_secs_f64(total))
}

/// Structured logs; `RUST_LOG` overrides the level derived from `-v`.
pub fn init_tracing(v: u8) {
    let level = match v {
        0 => "warn",
        1..=2 => "info",
        3..=5 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!("{level},h2=warn,hyper=warn,tower=warn"))
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .try_init();
}

/// Starts everything and serves until `shutdown` is cancelled.
pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let kubelet = Arc::new(kubelet_client::KubeletClient::new(
        &kubelet_client::KubeletClientConfig {
            client_certificate: config.kubelet_client_certificate.clone(),
            client_key: config.kubelet_client_key.clone(),
            certificate_authority: config.kubelet_certificate_authority.clone(),
            preferred_address_types: config.kubelet_preferred_address_types.clone(),
            timeout: config.kubelet_timeout,
        },
    )?);
    let storage: Arc<dyn Storage> = match config.storage_backend.as_str() {
        "memory" => Arc::new(apiserver_storage::memory::MemoryStorage::new()),
        "etcd3" | "" => Arc::new(
            apiserver_storage::etcd::EtcdStorage::connect(&config.etcd_servers)
                .await
                .with_context(|| format!("connecting to etcd at {:?}", config.etcd_servers))?,
        ),
        other => anyhow::bail!("unknown --storage-backend {other:?}"),
    };
    let etcd_durations = Arc::new(metrics::HistogramVec::default());
    let storage: Arc<dyn Storage> = Arc::new(metrics::InstrumentedStorage {
        inner: storage,
        durations: etcd_durations.clone(),
    });
    let root = format!("{}/", config.etcd_prefix.trim_end_matches('/'));
    if !root.starts_with('/') || root == "/" {
        anyhow::bail!(
            "--etcd-prefix must be an absolute key prefix like /registry, got {:?}",
            config.etcd_prefix
        );
    }
    let service_accounts = authn::token_options(&config)?;
    let service_account_admission = authn::service_account_admission(&config)?;
    let caches = CacheSet::new(storage.clone(), &root);
    let installed = install(InstallConfig {
        storage: storage.clone(),
        caches: caches.clone(),
        service_cidr: config.service_cluster_ip_range.clone(),
        event_ttl_seconds: config.event_ttl.as_secs() as i64,
        codec: Arc::new(apiserver_storage::codec::JsonCodec),
        service_accounts,
        service_account_admission,
    })
    .map_err(|e| anyhow::anyhow!(e))?;
    tokio::spawn(caches.clone().run(shutdown.clone()));
    tokio::time::timeout(std::time::Duration::from_secs(60), caches.wait_ready())
        .await
        .context("watch cache did not load within 60s")?;
    let state = state::AppState::new(
        installed,
        storage.clone(),
        caches.clone(),
        etcd_durations,
        kubelet,
    );
    bootstrap::run(&state)
        .await
        .context("creating bootstrap objects")?;
    tokio::spawn(state.crds.clone().run(shutdown.clone()));
    state.set_ready();
    if !config.etcd_compaction_interval.is_zero() {
        tokio::spawn(bootstrap::compaction_loop(
            storage.clone(),
            config.etcd_compaction_interval,
            shutdown.clone(),
        ));
    }
    let addr: SocketAddr = format!("{}:{}", config.bind_address, config.secure_port)
        .parse()
        .with_context(|| format!("invalid --bind-address {}", config.bind_address))?;
    server::serve(state, &config, addr, shutdown).await
}

/// An in-process kube-apiserver for other components' tests: in-memory storage, plain HTTP on a
/// free loopback port (every request is treated as the admin), stopped when dropped. As in
/// upstream's integration tests, the ServiceAccount admission plugin is disabled unless `extra`
/// names admission plugins itself (pods need no service account to exist).
pub struct TestServer {
    /// `http://127.0.0.1:<port>`
    pub url: String,
    stop: CancellationToken,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl TestServer {
    /// Starts a server with extra flags (e.g. `--service-cluster-ip-range=...`).
    pub async fn start(extra: &[&str]) -> anyhow::Result<TestServer> {
        let dir = std::env::temp_dir().join(format!("apiserver-test-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir)?;
        let addr_file = dir.join("addr");
        let mut args: Vec<String> = vec![
            "kube-apiserver".into(),
            "--storage-backend=memory".into(),
            "--secure-port=0".into(),
            "--etcd-compaction-interval=0".into(),
            format!("--address-file={}", addr_file.display()),
        ];
        if !extra
            .iter()
            .any(|a| a.starts_with("--disable-admission-plugins"))
        {
            args.push("--disable-admission-plugins=ServiceAccount".into());
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let config = <Config as clap::Parser>::try_parse_from(args)?;
        let stop = CancellationToken::new();
        let s = stop.clone();
        let handle = tokio::spawn(async move { run(config, s).await });
        for _ in 0..400 {
            if let Ok(a) = std::fs::read_to_string(&addr_file) {
                if !a.trim().is_empty() {
                    let _ = std::fs::remove_dir_all(&dir);
                    return Ok(TestServer {
                        url: format!("http://{}", a.trim()),
                        stop,
                    });
                }
            }
            if handle.is_finished() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        let _ = std::fs::remove_dir_all(&dir);
        stop.cancel();
        anyhow::bail!("the test apiserver did not start")
    }

    /// Stops the server (also done on drop).
    pub fn stop(&self) {
        self.stop.cancel();
    }
}
