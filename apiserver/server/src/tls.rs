//! TLS serving and x509 client-certificate authentication (mirrors
//! apiserver/pkg/authentication/request/x509): the verified client certificate's CommonName is
//! the user and its Organizations are the groups.

use anyhow::Context;
use apiserver_registry::context::UserInfo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::sync::Arc;

pub fn server_config(
    cert: &str,
    key: &str,
    client_ca: Option<&str>,
) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("reading --tls-cert-file {cert}"))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("parsing {cert}"))?;
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("reading --tls-private-key-file {key}"))?;
    let builder = rustls::ServerConfig::builder();
    let mut cfg = match client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in CertificateDer::pem_file_iter(ca)
                .with_context(|| format!("reading --client-ca-file {ca}"))?
            {
                roots
                    .add(c.with_context(|| format!("parsing {ca}"))?)
                    .context("adding client CA")?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots))
                .allow_unauthenticated()
                .build()
                .context("building the client certificate verifier")?;
            builder
                .with_client_cert_verifier(verifier)
                .with_single_cert(certs, key)?
        }
        None => builder.with_no_client_auth().with_single_cert(certs, key)?,
    };
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// The user of a verified client certificate chain.
pub fn user_from_certs(certs: Option<&[CertificateDer<'_>]>) -> Option<UserInfo> {
    let leaf = certs?.first()?;
    let (_, cert) = x509_parser::parse_x509_certificate(leaf.as_ref()).ok()?;
    let subject = cert.subject();
    let name = subject
        .iter_common_name()
        .next()?
        .as_str()
        .ok()?
        .to_string();
    let groups = subject
        .iter_organization()
        .filter_map(|o| o.as_str().ok().map(str::to_string))
        .collect::<Vec<_>>();
    let mut groups = groups;
    groups.push("system:authenticated".into());
    Some(UserInfo {
        name,
        uid: String::new(),
        groups,
    })
}

/// The identity of requests on a plain-HTTP (test) server.
pub fn test_admin() -> UserInfo {
    UserInfo {
        name: "system:admin".into(),
        uid: String::new(),
        groups: vec!["system:masters".into(), "system:authenticated".into()],
    }
}
