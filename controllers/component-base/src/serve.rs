//! The components' HTTP endpoint: `/healthz`, `/livez`, `/readyz` (with `?verbose`) and
//! `/metrics` in the Prometheus text format. Served on loopback by default.
//!
//! Upstream serves these over HTTPS on `--secure-port` with delegated authentication; here they
//! are plain HTTP (no secrets are exposed: health and metrics only).

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use prometheus_client::registry::Registry;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Named health checks; all must pass for `/healthz` and `/readyz`.
type Check = Arc<dyn Fn() -> bool + Send + Sync>;

#[derive(Clone, Default)]
pub struct Health {
    checks: Arc<Mutex<BTreeMap<String, Check>>>,
}

impl Health {
    pub fn add(&self, name: &str, check: impl Fn() -> bool + Send + Sync + 'static) {
        self.checks
            .lock()
            .expect("health checks")
            .insert(name.to_string(), Arc::new(check));
    }

    fn report(&self, verbose: bool) -> (bool, String) {
        let checks = self.checks.lock().expect("health checks").clone();
        let mut ok = true;
        let mut out = String::new();
        for (name, check) in checks {
            let pass = check();
            ok &= pass;
            out.push_str(&format!(
                "[{}]{name} {}\n",
                if pass { "+" } else { "-" },
                if pass { "ok" } else { "failed" }
            ));
        }
        if verbose || !ok {
            out.push_str(if ok {
                "healthz check passed\n"
            } else {
                "healthz check failed\n"
            });
            (ok, out)
        } else {
            (ok, "ok".to_string())
        }
    }
}

fn respond(code: StatusCode, ct: &str, body: String) -> Response<Full<Bytes>> {
    Response::builder()
        .status(code)
        .header(http::header::CONTENT_TYPE, ct)
        .body(Full::new(Bytes::from(body)))
        .expect("response")
}

/// Binds `addr` and serves until shut down; returns the bound address.
pub async fn serve(
    addr: SocketAddr,
    health: Health,
    registry: Arc<Registry>,
    shutdown: CancellationToken,
) -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let (stream, _) = tokio::select! {
                _ = shutdown.cancelled() => return,
                r = listener.accept() => match r { Ok(s) => s, Err(_) => continue },
            };
            let health = health.clone();
            let registry = registry.clone();
            let svc = service_fn(move |req: Request<Incoming>| {
                let health = health.clone();
                let registry = registry.clone();
                async move {
                    let verbose = req.uri().query().is_some_and(|q| q.contains("verbose"));
                    let resp = match req.uri().path() {
                        "/healthz" | "/livez" | "/readyz" => {
                            let (ok, body) = health.report(verbose);
                            let code = if ok {
                                StatusCode::OK
                            } else {
                                StatusCode::INTERNAL_SERVER_ERROR
                            };
                            respond(code, "text/plain; charset=utf-8", body)
                        }
                        "/metrics" => {
                            let mut out = String::new();
                            let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
                            respond(
                                StatusCode::OK,
                                "text/plain; version=0.0.4; charset=utf-8",
                                out,
                            )
                        }
                        _ => respond(
                            StatusCode::NOT_FOUND,
                            "text/plain; charset=utf-8",
                            "404 page not found\n".into(),
                        ),
                    };
                    Ok::<_, std::convert::Infallible>(resp)
                }
            });
            tokio::spawn(async move {
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Ok(local)
}
