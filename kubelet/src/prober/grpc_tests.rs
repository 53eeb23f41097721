//! Tests of the gRPC probe against a tiny grpc.health.v1 server on 127.0.0.1.

use super::*;
use futures::future::BoxFuture;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Health/Check: "" is SERVING, "down" NOT_SERVING, "slow" answers after 5 s, anything else
/// is unknown.
#[derive(Clone)]
struct Health;

struct Check;

impl tonic::server::UnaryService<HealthCheckRequest> for Check {
    type Response = HealthCheckResponse;
    type Future = BoxFuture<'static, Result<tonic::Response<HealthCheckResponse>, tonic::Status>>;

    fn call(&mut self, req: tonic::Request<HealthCheckRequest>) -> Self::Future {
        Box::pin(async move {
            let status = match req.into_inner().service.as_str() {
                "" => SERVING,
                "down" => 2,
                "slow" => {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    SERVING
                }
                _ => return Err(tonic::Status::not_found("unknown service")),
            };
            Ok(tonic::Response::new(HealthCheckResponse { status }))
        })
    }
}

impl tower::Service<http::Request<tonic::body::Body>> for Health {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
        Box::pin(async move {
            if req.uri().path() != CHECK_PATH {
                return Ok(tonic::Status::unimplemented("no such method").into_http());
            }
            let mut grpc = tonic::server::Grpc::new(tonic_prost::ProstCodec::<
                HealthCheckResponse,
                HealthCheckRequest,
            >::default());
            Ok(grpc.unary(Check, req).await)
        })
    }
}

impl tonic::server::NamedService for Health {
    const NAME: &'static str = "grpc.health.v1.Health";
}

/// The same handler under another name: a server without the health service.
#[derive(Clone)]
struct Other(Health);

impl tower::Service<http::Request<tonic::body::Body>> for Other {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
        self.0.call(req)
    }
}

impl tonic::server::NamedService for Other {
    const NAME: &'static str = "test.Other";
}

/// A TLS connection the tonic server can take.
struct Tls(tokio_rustls::server::TlsStream<tokio::net::TcpStream>);

impl tonic::transport::server::Connected for Tls {
    type ConnectInfo = ();
    fn connect_info(&self) {}
}

impl AsyncRead for Tls {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Tls {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

async fn listener() -> (tokio::net::TcpListener, u16) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    (l, port)
}

fn incoming(
    l: tokio::net::TcpListener,
) -> impl futures::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    futures::stream::unfold(l, |l| async move {
        let r = l.accept().await.map(|(s, _)| s);
        Some((r, l))
    })
}

async fn serve_health() -> u16 {
    let (l, port) = listener().await;
    let router = tonic::transport::Server::builder().add_service(Health);
    tokio::spawn(router.serve_with_incoming(incoming(l)));
    port
}

const SECOND: Duration = Duration::from_secs(1);

#[tokio::test]
async fn serving_not_serving_and_unknown_services() {
    let port = serve_health().await;
    assert_eq!(
        probe("127.0.0.1", port, "", SECOND, false).await,
        Outcome::success("service healthy")
    );
    assert_eq!(
        probe("127.0.0.1", port, "down", SECOND, false).await,
        Outcome::failure("service unhealthy (responded with \"NOT_SERVING\")")
    );
    assert_eq!(
        probe("127.0.0.1", port, "web", SECOND, false).await,
        Outcome::failure(
            "error: health rpc probe failed: rpc error: code = NotFound desc = unknown service"
        )
    );
}

#[tokio::test]
async fn slow_answers_time_out() {
    let port = serve_health().await;
    let started = Instant::now();
    assert_eq!(
        probe("127.0.0.1", port, "slow", SECOND, false).await,
        Outcome::failure("timeout: health rpc did not complete within 1s")
    );
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn servers_without_the_health_service() {
    let (l, port) = listener().await;
    let router = tonic::transport::Server::builder().add_service(Other(Health));
    tokio::spawn(router.serve_with_incoming(incoming(l)));
    let o = probe("127.0.0.1", port, "", SECOND, false).await;
    assert!(
        o.output.starts_with(
            "error: this server does not implement the grpc health protocol (grpc.health.v1.Health):"
        ),
        "{o:?}"
    );
}

#[tokio::test]
async fn nothing_listening_is_a_connect_timeout() {
    let (l, port) = listener().await;
    drop(l);
    assert_eq!(
        probe("127.0.0.1", port, "", SECOND, false).await,
        Outcome::failure(format!(
            "timeout: failed to connect service \"127.0.0.1:{port}\" within 1s: context deadline exceeded"
        ))
    );
}

#[tokio::test]
async fn tls_mode_skips_certificate_verification() {
    let (l, port) = listener().await;
    let acceptor =
        tokio_rustls::TlsAcceptor::from(super::super::http::tests::test_tls_server(vec![
            b"h2".to_vec(),
        ]));
    let tls_incoming = futures::stream::unfold((l, acceptor), |(l, acceptor)| async move {
        let r = match l.accept().await {
            Ok((s, _)) => acceptor.accept(s).await.map(Tls),
            Err(e) => Err(e),
        };
        Some((r, (l, acceptor)))
    });
    let router = tonic::transport::Server::builder().add_service(Health);
    tokio::spawn(router.serve_with_incoming(tls_incoming));
    assert_eq!(
        probe("127.0.0.1", port, "", SECOND, true).await,
        Outcome::success("service healthy")
    );
}
