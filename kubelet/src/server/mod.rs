//! The kubelet's HTTPS server on `--address:--port` (upstream `pkg/kubelet/server/server.go`,
//! `auth.go`) and the plain-HTTP healthz server on `--healthz-bind-address:--healthz-port`.
//!
//! Authentication: client certificates verified against `--client-ca-file` (x509), else
//! `system:anonymous` when `--anonymous-auth` is on, else 401. Authorization is AlwaysAllow
//! for now: upstream's Webhook mode (SubjectAccessReviews against the apiserver) is not done.
//!
//! Endpoints: `/healthz`, `/metrics`, `/pods`, `/containerLogs/{ns}/{pod}/{container}`,
//! `/run/...`, and `/exec/...`, `/attach/...`, `/portForward/...`, which ask the runtime for a
//! URL on its streaming server and proxy the client's upgrade request to it.

mod routes;
mod stream;
pub mod tls;

#[cfg(test)]
mod e2e;
#[cfg(test)]
mod tests;

use crate::cri;
use crate::logs::LogRuntime;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use k8s_openapi::api::core::v1::Pod;
use prometheus_client::registry::Registry;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use tls::User;

/// The kubelet's pods as the server needs them (implemented by the pod manager).
pub trait PodSource: Send + Sync + 'static {
    /// The pods bound to this kubelet, with their current status (`/pods`).
    fn pods(&self) -> Vec<Pod>;
    /// A pod by namespace and name, with its current status (container statuses carry the
    /// `containerd://<id>` ids that container logs are read from).
    fn pod(&self, namespace: &str, name: &str) -> Option<Pod>;
    /// The CRI id of the container's running instance (exec, attach).
    fn container_id(&self, pod_uid: &str, container: &str) -> Option<String>;
    /// The CRI id of the pod's sandbox (port-forward).
    fn sandbox_id(&self, pod_uid: &str) -> Option<String>;
    /// The uid the runtime knows `pod` by, given the uid of the request path (empty: none):
    /// the pod's own, or for a mirror pod its static pod's (upstream `TranslatePodUID`); None
    /// when the path names another pod.
    fn runtime_uid(&self, pod: &Pod, uid: Option<&str>) -> Option<String> {
        let pod_uid = pod.metadata.uid.clone().unwrap_or_default();
        match uid {
            Some(u) if !u.is_empty() && u != pod_uid => None,
            _ => Some(pod_uid),
        }
    }
    /// The `syncloop` health check of `/healthz`.
    fn sync_loop_healthy(&self) -> Result<(), String> {
        Ok(())
    }
}

/// The runtime calls the server makes (implemented by [`cri::Runtime`]; tests use fakes).
#[async_trait::async_trait]
pub trait StreamingRuntime: LogRuntime {
    async fn exec(&self, r: cri::v1::ExecRequest) -> cri::Result<String>;
    async fn attach(&self, r: cri::v1::AttachRequest) -> cri::Result<String>;
    async fn port_forward(&self, r: cri::v1::PortForwardRequest) -> cri::Result<String>;
    async fn exec_sync(
        &self,
        id: &str,
        cmd: Vec<String>,
        timeout: Duration,
    ) -> cri::Result<cri::v1::ExecSyncResponse>;
}

#[async_trait::async_trait]
impl StreamingRuntime for cri::Runtime {
    async fn exec(&self, r: cri::v1::ExecRequest) -> cri::Result<String> {
        cri::Runtime::exec(self, r).await
    }
    async fn attach(&self, r: cri::v1::AttachRequest) -> cri::Result<String> {
        cri::Runtime::attach(self, r).await
    }
    async fn port_forward(&self, r: cri::v1::PortForwardRequest) -> cri::Result<String> {
        cri::Runtime::port_forward(self, r).await
    }
    async fn exec_sync(
        &self,
        id: &str,
        cmd: Vec<String>,
        timeout: Duration,
    ) -> cri::Result<cri::v1::ExecSyncResponse> {
        cri::Runtime::exec_sync(self, id, cmd, timeout).await
    }
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub address: IpAddr,
    pub port: u16,
    pub healthz_address: IpAddr,
    /// 0 disables the healthz server.
    pub healthz_port: u16,
    pub tls_cert_file: Option<PathBuf>,
    pub tls_private_key_file: Option<PathBuf>,
    /// Where the self-signed pair is kept when no pair is given.
    pub cert_dir: PathBuf,
    pub client_ca_file: Option<PathBuf>,
    pub anonymous_auth: bool,
    pub node_name: String,
    /// Extra subject alternative names of a self-signed certificate.
    pub node_ips: Vec<IpAddr>,
}

impl ServerConfig {
    /// From the kubelet's flags; `--cert-dir` defaults to `<root-dir>/pki`, as upstream.
    pub fn from_config(c: &crate::Config, node_ips: Vec<IpAddr>) -> ServerConfig {
        ServerConfig {
            address: c.address,
            port: c.port,
            healthz_address: c.healthz_bind_address,
            healthz_port: c.healthz_port,
            tls_cert_file: c.tls_cert_file.clone(),
            tls_private_key_file: c.tls_private_key_file.clone(),
            cert_dir: c.cert_dir.clone().unwrap_or_else(|| c.root_dir.join("pki")),
            client_ca_file: c.client_ca_file.clone(),
            anonymous_auth: c.anonymous_auth,
            node_name: c.node_name(),
            node_ips,
        }
    }
}

/// Where the servers listen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerAddrs {
    pub https: SocketAddr,
    pub healthz: Option<SocketAddr>,
}

pub(crate) struct State {
    pub runtime: Arc<dyn StreamingRuntime>,
    pub pods: Arc<dyn PodSource>,
    pub metrics: Arc<Registry>,
    pub anonymous_auth: bool,
}

/// Binds both servers and serves them in the background until `shutdown`.
pub async fn serve(
    cfg: ServerConfig,
    runtime: Arc<dyn StreamingRuntime>,
    pods: Arc<dyn PodSource>,
    metrics: Arc<Registry>,
    shutdown: CancellationToken,
) -> anyhow::Result<ServerAddrs> {
    let (cert, key) = tls::serving_files(
        cfg.tls_cert_file.as_deref(),
        cfg.tls_private_key_file.as_deref(),
        &cfg.cert_dir,
        &cfg.node_name,
        &cfg.node_ips,
    )?;
    let tls_cfg = tls::server_config(&cert, &key, cfg.client_ca_file.as_deref())?;
    let acceptor = tokio_rustls::TlsAcceptor::from(tls_cfg);
    let listener = TcpListener::bind((cfg.address, cfg.port))
        .await
        .map_err(|e| anyhow::anyhow!("listening on {}:{}: {e}", cfg.address, cfg.port))?;
    let https = listener.local_addr()?;
    let state = Arc::new(State {
        runtime,
        pods,
        metrics,
        anonymous_auth: cfg.anonymous_auth,
    });
    tracing::info!(address = %https, "starting to listen");
    tokio::spawn(accept_loop(listener, shutdown.clone(), move |tcp, stop| {
        let acceptor = acceptor.clone();
        let state = state.clone();
        async move {
            let tls =
                match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        tracing::debug!(error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => return,
                };
            let user = tls::user_from_certs(tls.get_ref().1.peer_certificates());
            let svc = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                let state = state.clone();
                let user = user.clone();
                async move { Ok::<_, std::convert::Infallible>(routes::secure(state, user, req).await) }
            });
            serve_conn(TokioIo::new(tls), svc, stop).await;
        }
    }));

    let healthz = if cfg.healthz_port > 0 {
        let l = TcpListener::bind((cfg.healthz_address, cfg.healthz_port))
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "listening on {}:{}: {e}",
                    cfg.healthz_address,
                    cfg.healthz_port
                )
            })?;
        let addr = l.local_addr()?;
        tokio::spawn(accept_loop(l, shutdown, |tcp, stop| async move {
            let svc = hyper::service::service_fn(|req: hyper::Request<Incoming>| async move {
                Ok::<_, std::convert::Infallible>(routes::healthz_only(&req))
            });
            serve_conn(TokioIo::new(tcp), svc, stop).await;
        }));
        Some(addr)
    } else {
        None
    };
    Ok(ServerAddrs { https, healthz })
}

async fn accept_loop<F, Fut>(listener: TcpListener, shutdown: CancellationToken, on_conn: F)
where
    F: Fn(tokio::net::TcpStream, CancellationToken) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((tcp, _)) => {
                let _ = tcp.set_nodelay(true);
                tokio::spawn(on_conn(tcp, shutdown.clone()));
            }
            Err(e) => {
                tracing::warn!(error = %e, "accepting a connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn serve_conn<I, S>(io: TokioIo<I>, svc: S, stop: CancellationToken)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::Service<
            hyper::Request<Incoming>,
            Response = hyper::Response<routes::Body>,
            Error = std::convert::Infallible,
        > + Send
        + 'static,
    S::Future: Send + 'static,
{
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    let conn = builder.serve_connection_with_upgrades(io, svc);
    tokio::select! {
        r = conn => if let Err(e) = r {
            tracing::debug!(error = %e, "serving a connection");
        },
        _ = stop.cancelled() => {}
    }
}
