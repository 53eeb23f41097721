//! gRPC probes: the standard `grpc.health.v1.Health/Check`, healthy when the service answers
//! SERVING (upstream `pkg/probe/grpc/grpc.go`).

use super::http::{USER_AGENT, insecure_tls_config};
use super::probe::{Outcome, go_duration, join_host_port};
use super::tcp;
use hyper_util::rt::TokioIo;
use std::time::Duration;
use tokio::time::Instant;
use tonic::transport::{Channel, Endpoint, Uri};

/// `grpc.health.v1.HealthCheckRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct HealthCheckRequest {
    #[prost(string, tag = "1")]
    pub(crate) service: String,
}

/// `grpc.health.v1.HealthCheckResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct HealthCheckResponse {
    #[prost(int32, tag = "1")]
    pub(crate) status: i32,
}

pub(crate) const SERVING: i32 = 1;
pub(crate) const CHECK_PATH: &str = "/grpc.health.v1.Health/Check";

fn status_name(s: i32) -> String {
    match s {
        0 => "UNKNOWN".into(),
        1 => "SERVING".into(),
        2 => "NOT_SERVING".into(),
        3 => "SERVICE_UNKNOWN".into(),
        n => n.to_string(),
    }
}

/// Connects (retrying, as a blocking grpc-go dial does) and asks for `service`'s health, all
/// within `timeout`. `tls` is the probe's `mode: TLS` (no certificate verification).
pub(crate) async fn probe(
    host: &str,
    port: u16,
    service: &str,
    timeout: Duration,
    tls: bool,
) -> Outcome {
    let deadline = Instant::now() + timeout;
    let addr = join_host_port(host, port);
    let connect_timeout = || {
        Outcome::failure(format!(
            "timeout: failed to connect service {addr:?} within {}: context deadline exceeded",
            go_duration(timeout)
        ))
    };
    let channel = loop {
        match tokio::time::timeout_at(deadline, connect(host, port, tls)).await {
            Err(_) => return connect_timeout(),
            Ok(Ok(ch)) => break ch,
            Ok(Err(e)) => {
                tracing::trace!(%addr, error = %e, "grpc probe dial failed");
                // grpc-go backs off (1 s at first) before dialing again.
                let retry = (Instant::now() + Duration::from_secs(1)).min(deadline);
                tokio::time::sleep_until(retry).await;
                if Instant::now() >= deadline {
                    return connect_timeout();
                }
            }
        }
    };

    let rpc_timeout = || {
        Outcome::failure(format!(
            "timeout: health rpc did not complete within {}",
            go_duration(timeout)
        ))
    };
    let mut client = tonic::client::Grpc::new(channel);
    let call = async {
        client
            .ready()
            .await
            .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
        let mut req = tonic::Request::new(HealthCheckRequest {
            service: service.to_string(),
        });
        req.set_timeout(deadline.saturating_duration_since(Instant::now()));
        client
            .unary(
                req,
                http::uri::PathAndQuery::from_static(CHECK_PATH),
                tonic_prost::ProstCodec::<HealthCheckRequest, HealthCheckResponse>::default(),
            )
            .await
    };
    match tokio::time::timeout_at(deadline, call).await {
        Err(_) => rpc_timeout(),
        Ok(Err(s)) => match s.code() {
            tonic::Code::Unimplemented => Outcome::failure(format!(
                "error: this server does not implement the grpc health protocol (grpc.health.v1.Health): {}",
                s.message()
            )),
            tonic::Code::DeadlineExceeded => rpc_timeout(),
            // tonic's own deadline (the grpc-timeout we sent).
            tonic::Code::Cancelled if s.message().contains("Timeout expired") => rpc_timeout(),
            _ => Outcome::failure(format!(
                "error: health rpc probe failed: {}",
                super::exec::go_grpc_error(&s)
            )),
        },
        Ok(Ok(resp)) => {
            let status = resp.into_inner().status;
            if status == SERVING {
                Outcome::success("service healthy")
            } else {
                Outcome::failure(format!(
                    "service unhealthy (responded with {:?})",
                    status_name(status)
                ))
            }
        }
    }
}

async fn connect(host: &str, port: u16, tls: bool) -> Result<Channel, String> {
    // The connector below does TLS itself: tonic sees a plain URI, and the origin tells the
    // server the scheme.
    let authority = join_host_port(host, port);
    let mut endpoint = Endpoint::from_shared(format!("http://{authority}"))
        .map_err(|e| e.to_string())?
        .user_agent(USER_AGENT)
        .map_err(|e| e.to_string())?;
    if tls {
        let origin: Uri = format!("https://{authority}")
            .parse()
            .map_err(|e: http::uri::InvalidUri| e.to_string())?;
        endpoint = endpoint.origin(origin);
    }
    let host = host.to_string();
    if !tls {
        let connector = tower::service_fn(move |_: Uri| {
            let host = host.clone();
            async move {
                let s = tcp::dial(&host, port)
                    .await
                    .map_err(std::io::Error::other)?;
                Ok::<_, std::io::Error>(TokioIo::new(s))
            }
        });
        return endpoint
            .connect_with_connector(connector)
            .await
            .map_err(|e| e.to_string());
    }
    let config = insecure_tls_config(vec![b"h2".to_vec()])
        .ok_or_else(|| "tls: no usable TLS configuration".to_string())?;
    let connector = tower::service_fn(move |_: Uri| {
        let host = host.clone();
        let config = config.clone();
        async move {
            let s = tcp::dial(&host, port)
                .await
                .map_err(std::io::Error::other)?;
            let name = rustls::pki_types::ServerName::try_from(host.clone())
                .map_err(std::io::Error::other)?;
            let s = tokio_rustls::TlsConnector::from(config)
                .connect(name, s)
                .await?;
            Ok::<_, std::io::Error>(TokioIo::new(s))
        }
    });
    endpoint
        .connect_with_connector(connector)
        .await
        .map_err(|e| e.to_string())
}

#[cfg(test)]
#[path = "grpc_tests.rs"]
mod tests;
