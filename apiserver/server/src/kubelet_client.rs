//! The apiserver's client for kubelets: where a node's kubelet listens (preferred address type,
//! `status.daemonEndpoints.kubeletEndpoint.port`), TLS towards it (client certificate, optional
//! CA) and one HTTP/1.1 request per connection, upgrades included. Mirrors
//! pkg/kubelet/client/kubelet_client.go and pkg/util/node GetPreferredNodeAddress.

use anyhow::Context;
use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::Node;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;

/// Upstream's default `--kubelet-preferred-address-types`.
pub const DEFAULT_PREFERRED_ADDRESS_TYPES: &str =
    "Hostname,InternalDNS,InternalIP,ExternalDNS,ExternalIP";
/// The kubelet port used when a node reports none.
pub const DEFAULT_KUBELET_PORT: u16 = 10250;
const VALID_ADDRESS_TYPES: &[&str] = &[
    "Hostname",
    "ExternalIP",
    "InternalIP",
    "ExternalDNS",
    "InternalDNS",
];
/// Go's http.Transport TLS handshake timeout (SetOldTransportDefaults).
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The `--kubelet-*` flags.
#[derive(Clone, Debug, Default)]
pub struct KubeletClientConfig {
    /// `--kubelet-client-certificate`: the certificate the apiserver presents to kubelets.
    pub client_certificate: Option<String>,
    /// `--kubelet-client-key`
    pub client_key: Option<String>,
    /// `--kubelet-certificate-authority`: verifies the kubelets' serving certificates; without
    /// it they are not verified (as upstream).
    pub certificate_authority: Option<String>,
    /// `--kubelet-preferred-address-types`, in order.
    pub preferred_address_types: Vec<String>,
    /// `--kubelet-timeout`: how long a dial may take.
    pub timeout: Duration,
}

/// Where to reach a kubelet (upstream's ConnectionInfo).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// `https` for kubelets; `http` or `https` for other node ports.
    pub scheme: String,
    pub host: String,
    pub port: u16,
}

impl Location {
    /// `host:port`, with IPv6 hosts in brackets.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
    /// `scheme://host:port` followed by `path_and_query`.
    pub fn url(&self, path_and_query: &str) -> String {
        format!("{}://{}{}", self.scheme, self.authority(), path_and_query)
    }
}

/// Why a request could not be sent; the text follows Go's net/http errors, which upstream
/// returns to clients as is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendError(pub String);

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

pub struct KubeletClient {
    verifying: Arc<rustls::ClientConfig>,
    insecure: Arc<rustls::ClientConfig>,
    preferred: Vec<String>,
    timeout: Duration,
}

/// Accepts any server certificate (no `--kubelet-certificate-authority`, or
/// `insecureSkipTLSVerifyBackend`) but still checks the handshake signatures.
#[derive(Debug)]
struct AcceptAnyServerCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn read_certs(path: &str, flag: &str) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("reading {flag} {path}"))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("parsing {path}"))?;
    if certs.is_empty() {
        anyhow::bail!("{flag} {path} holds no certificate");
    }
    Ok(certs)
}

impl KubeletClient {
    pub fn new(cfg: &KubeletClientConfig) -> anyhow::Result<Self> {
        for t in &cfg.preferred_address_types {
            if !VALID_ADDRESS_TYPES.contains(&t.as_str()) {
                anyhow::bail!(
                    "--kubelet-preferred-address-types contains invalid value: {t}; valid values are {VALID_ADDRESS_TYPES:?}"
                );
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let client_auth = match (&cfg.client_certificate, &cfg.client_key) {
            (Some(c), Some(k)) => Some((
                read_certs(c, "--kubelet-client-certificate")?,
                PrivateKeyDer::from_pem_file(k)
                    .with_context(|| format!("reading --kubelet-client-key {k}"))?,
            )),
            (None, None) => None,
            _ => anyhow::bail!(
                "--kubelet-client-certificate and --kubelet-client-key must be given together"
            ),
        };
        let build = |roots: Option<rustls::RootCertStore>| -> anyhow::Result<rustls::ClientConfig> {
            let b = rustls::ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()?;
            let b =
                match roots {
                    Some(r) => b.with_root_certificates(r),
                    None => b.dangerous().with_custom_certificate_verifier(Arc::new(
                        AcceptAnyServerCert(provider.clone()),
                    )),
                };
            let mut c = match &client_auth {
                Some((certs, key)) => b
                    .with_client_auth_cert(certs.clone(), key.clone_key())
                    .context("loading the kubelet client certificate")?,
                None => b.with_no_client_auth(),
            };
            c.alpn_protocols = vec![b"http/1.1".to_vec()];
            Ok(c)
        };
        let roots = match &cfg.certificate_authority {
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                for c in read_certs(ca, "--kubelet-certificate-authority")? {
                    roots.add(c).context("adding the kubelet CA")?;
                }
                Some(roots)
            }
            None => None,
        };
        Ok(KubeletClient {
            verifying: Arc::new(build(roots)?),
            insecure: Arc::new(build(None)?),
            preferred: cfg.preferred_address_types.clone(),
            timeout: cfg.timeout,
        })
    }

    /// The kubelet of `node` (upstream's NodeConnectionInfoGetter.GetConnectionInfo).
    pub fn connection_info(&self, node: &Node) -> Result<Location, String> {
        let host = preferred_address(node, &self.preferred)?;
        let port = node
            .status
            .as_ref()
            .and_then(|s| s.daemon_endpoints.as_ref())
            .and_then(|d| d.kubelet_endpoint.as_ref())
            .map(|e| e.port)
            .filter(|p| *p > 0 && *p <= i32::from(u16::MAX))
            .map_or(DEFAULT_KUBELET_PORT, |p| p as u16);
        Ok(Location {
            scheme: "https".into(),
            host,
            port,
        })
    }

    async fn dial(&self, loc: &Location) -> Result<TcpStream, SendError> {
        let addr = loc.authority();
        let resolved: Vec<std::net::SocketAddr> =
            match tokio::net::lookup_host((loc.host.as_str(), loc.port)).await {
                Ok(a) => a.collect(),
                Err(_) => {
                    return Err(SendError(format!(
                        "dial tcp: lookup {}: no such host",
                        loc.host
                    )));
                }
            };
        let connect = async {
            let mut last = None;
            for a in &resolved {
                match TcpStream::connect(a).await {
                    Ok(s) => return Ok(s),
                    Err(e) => last = Some(e),
                }
            }
            Err(last.unwrap_or_else(|| std::io::Error::other("no addresses")))
        };
        match tokio::time::timeout(self.timeout, connect).await {
            Err(_) => Err(SendError(format!("dial tcp {addr}: i/o timeout"))),
            Ok(Err(e)) => Err(SendError(format!(
                "dial tcp {addr}: connect: {}",
                io_error_text(&e)
            ))),
            Ok(Ok(s)) => {
                let _ = s.set_nodelay(true);
                Ok(s)
            }
        }
    }

    /// Sends one request (origin-form URI, headers as given) to `loc` on a new connection and
    /// returns the response head; its body streams, and an upgrade (101) can be taken over with
    /// `hyper::upgrade::on`. `insecure` skips certificate verification for this request.
    pub async fn send(
        &self,
        loc: &Location,
        insecure: bool,
        req: http::Request<Body>,
    ) -> Result<http::Response<Incoming>, SendError> {
        let tcp = self.dial(loc).await?;
        if loc.scheme == "http" {
            return exchange(TokioIo::new(tcp), req).await;
        }
        let cfg = if insecure {
            self.insecure.clone()
        } else {
            self.verifying.clone()
        };
        let name = ServerName::try_from(loc.host.clone())
            .map_err(|e| SendError(format!("tls: invalid server name {:?}: {e}", loc.host)))?;
        let connector = tokio_rustls::TlsConnector::from(cfg);
        let tls =
            match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, connector.connect(name, tcp)).await {
                Err(_) => return Err(SendError("net/http: TLS handshake timeout".into())),
                Ok(Err(e)) => return Err(SendError(tls_error_text(&e, &loc.host))),
                Ok(Ok(t)) => t,
            };
        exchange(TokioIo::new(tls), req).await
    }
}

async fn exchange<I>(io: I, req: http::Request<Body>) -> Result<http::Response<Incoming>, SendError>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake::<_, Body>(io)
        .await
        .map_err(|e| SendError(format!("net/http: {e}")))?;
    tokio::spawn(async move {
        if let Err(e) = conn.with_upgrades().await {
            tracing::debug!(error = %e, "kubelet connection ended");
        }
    });
    sender
        .send_request(req)
        .await
        .map_err(|e| SendError(hyper_error_text(&e)))
}

fn hyper_error_text(e: &hyper::Error) -> String {
    if e.is_incomplete_message() || e.is_closed() {
        "EOF".into()
    } else {
        format!("net/http: {e}")
    }
}

/// An io::Error as Go prints a syscall error: `connection refused`, `no route to host`...
fn io_error_text(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
        std::io::ErrorKind::ConnectionReset => "connection reset by peer".into(),
        std::io::ErrorKind::TimedOut => "connection timed out".into(),
        std::io::ErrorKind::HostUnreachable => "no route to host".into(),
        std::io::ErrorKind::NetworkUnreachable => "network is unreachable".into(),
        _ => {
            let s = e.to_string();
            let s = s.split(" (os error").next().unwrap_or(&s).to_string();
            let mut c = s.chars();
            match c.next() {
                Some(f) => f.to_lowercase().collect::<String>() + c.as_str(),
                None => s,
            }
        }
    }
}

/// A TLS handshake failure in the words of Go's crypto/tls and crypto/x509.
fn tls_error_text(e: &std::io::Error, host: &str) -> String {
    use rustls::CertificateError as C;
    let inner = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>());
    match inner {
        Some(rustls::Error::InvalidCertificate(c)) => {
            let why = match c {
                C::UnknownIssuer | C::BadSignature => {
                    "x509: certificate signed by unknown authority".to_string()
                }
                C::NotValidForName | C::NotValidForNameContext { .. } => {
                    format!("x509: certificate is not valid for {host}")
                }
                C::Expired | C::ExpiredContext { .. } | C::NotValidYet => {
                    "x509: certificate has expired or is not yet valid".to_string()
                }
                other => format!("x509: {other:?}"),
            };
            format!("tls: failed to verify certificate: {why}")
        }
        Some(other) => format!("remote error: tls: {other}"),
        None => io_error_text(e),
    }
}

/// The first address of `node` whose type comes first in `preferred` (upstream's
/// GetPreferredNodeAddress, including its error text).
pub fn preferred_address(node: &Node, preferred: &[String]) -> Result<String, String> {
    let addresses = node
        .status
        .as_ref()
        .and_then(|s| s.addresses.as_deref())
        .unwrap_or(&[]);
    for t in preferred {
        if let Some(a) = addresses.iter().find(|a| &a.type_ == t) {
            return Ok(a.address.clone());
        }
    }
    let shown: Vec<String> = addresses
        .iter()
        .map(|a| format!("{{{} {}}}", a.type_, a.address))
        .collect();
    Err(format!(
        "no preferred addresses found; known addresses: [{}]",
        shown.join(" ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(v: serde_json::Value) -> Node {
        serde_json::from_value(v).unwrap()
    }

    fn client(types: &str) -> KubeletClient {
        KubeletClient::new(&KubeletClientConfig {
            preferred_address_types: types.split(',').map(str::to_string).collect(),
            timeout: Duration::from_secs(1),
            ..Default::default()
        })
        .unwrap()
    }

    #[test]
    fn address_and_port_selection() {
        let n = node(json!({"metadata": {"name": "n1"}, "status": {
            "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}, {"type": "Hostname", "address": "n1.local"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10251}}}}));
        let c = client(DEFAULT_PREFERRED_ADDRESS_TYPES);
        assert_eq!(
            c.connection_info(&n).unwrap(),
            Location {
                scheme: "https".into(),
                host: "n1.local".into(),
                port: 10251
            }
        );
        let c = client("InternalIP,Hostname");
        assert_eq!(c.connection_info(&n).unwrap().host, "10.0.0.1");
        // No port reported: the default kubelet port.
        let n2 = node(
            json!({"metadata": {"name": "n2"}, "status": {"addresses": [{"type": "InternalIP", "address": "fd00::1"}]}}),
        );
        let loc = c.connection_info(&n2).unwrap();
        assert_eq!(loc.port, DEFAULT_KUBELET_PORT);
        assert_eq!(loc.authority(), "[fd00::1]:10250");
        let c = client("ExternalIP");
        assert_eq!(
            c.connection_info(&n).unwrap_err(),
            "no preferred addresses found; known addresses: [{InternalIP 10.0.0.1} {Hostname n1.local}]"
        );
    }

    #[test]
    fn flag_validation() {
        let bad = KubeletClient::new(&KubeletClientConfig {
            preferred_address_types: vec!["Bogus".into()],
            ..Default::default()
        });
        assert!(
            bad.err()
                .unwrap()
                .to_string()
                .contains("invalid value: Bogus")
        );
        let half = KubeletClient::new(&KubeletClientConfig {
            client_certificate: Some("/nonexistent".into()),
            ..Default::default()
        });
        assert!(half.is_err());
    }

    #[tokio::test]
    async fn refused_dial_reads_like_go() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        let c = client("InternalIP");
        let loc = Location {
            scheme: "https".into(),
            host: "127.0.0.1".into(),
            port,
        };
        let err = c
            .send(&loc, false, http::Request::new(Body::empty()))
            .await
            .unwrap_err();
        assert_eq!(
            err.0,
            format!("dial tcp 127.0.0.1:{port}: connect: connection refused")
        );
    }
}
