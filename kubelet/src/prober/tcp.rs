//! TCP probes: healthy when a connection opens within the timeout; also the dialer the HTTP and
//! gRPC probes use, with Go's error wording (upstream `pkg/probe/tcp/tcp.go`, `pkg/probe/dialer_others.go`).

use super::probe::{Outcome, join_host_port};
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;
use tokio::net::TcpStream;

/// Connects to `host:port` (an empty host is the local system, as Go's dialer has it);
/// errors read like Go's (`dial tcp 10.0.0.1:80: connect: connection refused`).
pub(crate) async fn dial(host: &str, port: u16) -> Result<TcpStream, String> {
    let addrs: Vec<SocketAddr> = if host.is_empty() {
        vec![SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)]
    } else if let Ok(ip) = host.parse::<IpAddr>() {
        vec![SocketAddr::new(ip, port)]
    } else {
        match tokio::net::lookup_host((host, port)).await {
            Ok(a) => a.collect(),
            Err(_) => return Err(format!("dial tcp: lookup {host}: no such host")),
        }
    };
    let shown = join_host_port(host, port);
    let mut last = format!("dial tcp: lookup {host}: no such host");
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Err(e) => {
                let at = if host.is_empty() {
                    shown.clone()
                } else {
                    addr.to_string()
                };
                last = format!("dial tcp {at}: connect: {}", errno_text(&e));
            }
        }
    }
    Err(last)
}

/// An OS error as Go's `syscall.Errno` prints it.
pub(crate) fn errno_text(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(111) => "connection refused".into(),
        Some(113) => "no route to host".into(),
        Some(101) => "network is unreachable".into(),
        Some(110) => "connection timed out".into(),
        Some(104) => "connection reset by peer".into(),
        Some(99) => "cannot assign requested address".into(),
        _ => {
            let s = e.to_string();
            let s = match s.find(" (os error") {
                Some(i) => s[..i].to_string(),
                None => s,
            };
            let mut chars = s.chars();
            match chars.next() {
                Some(first) => first.to_lowercase().chain(chars).collect(),
                None => s,
            }
        }
    }
}

/// The TCP probe: open a connection within `timeout`, then close it.
pub(crate) async fn probe(host: &str, port: u16, timeout: Duration) -> Outcome {
    match tokio::time::timeout(timeout, dial(host, port)).await {
        Ok(Ok(conn)) => {
            drop(conn);
            Outcome::success("")
        }
        Ok(Err(e)) => Outcome::failure(e),
        Err(_) => Outcome::failure(format!(
            "dial tcp {}: i/o timeout",
            join_host_port(host, port)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prober::probe::Verdict;

    #[tokio::test]
    async fn open_port_succeeds_closed_port_fails() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let o = probe("127.0.0.1", port, Duration::from_secs(1)).await;
        assert_eq!(o, Outcome::success(""));
        drop(l);
        let o = probe("127.0.0.1", port, Duration::from_secs(1)).await;
        assert_eq!(o.verdict, Verdict::Failure);
        assert_eq!(
            o.output,
            format!("dial tcp 127.0.0.1:{port}: connect: connection refused")
        );
    }

    #[tokio::test]
    async fn empty_host_is_the_local_system() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        assert_eq!(
            probe("", port, Duration::from_secs(1)).await,
            Outcome::success("")
        );
    }
}
