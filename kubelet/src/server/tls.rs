//! The kubelet's serving certificate and TLS configuration (upstream `InitializeTLS` in
//! `cmd/kubelet/app/server.go`, `GenerateSelfSignedCertKey` in client-go's `util/cert`) and
//! x509 client-certificate authentication (apiserver's `authentication/request/x509`): a
//! verified certificate's CommonName is the user and its Organizations the groups.

use anyhow::Context;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// An authenticated requester.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub groups: Vec<String>,
}

impl User {
    pub fn anonymous() -> User {
        User {
            name: "system:anonymous".into(),
            groups: vec!["system:unauthenticated".into()],
        }
    }
}

/// The user of a client certificate chain that the TLS layer verified.
pub fn user_from_certs(certs: Option<&[CertificateDer<'_>]>) -> Option<User> {
    let leaf = certs?.first()?;
    let (_, cert) = x509_parser::parse_x509_certificate(leaf.as_ref()).ok()?;
    let subject = cert.subject();
    let name = subject
        .iter_common_name()
        .next()?
        .as_str()
        .ok()?
        .to_string();
    let mut groups: Vec<String> = subject
        .iter_organization()
        .filter_map(|o| o.as_str().ok().map(str::to_string))
        .collect();
    groups.push("system:authenticated".into());
    Some(User { name, groups })
}

/// The UTC date `days` from now as (year, month, day).
fn days_from_now(days: i64) -> anyhow::Result<(i32, u8, u8)> {
    let d = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_hours(24 * days))?
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date();
    Ok((i32::from(d.year()), d.month() as u8, d.day() as u8))
}

/// A serving certificate for `host` (and `ips`) signed by a fresh CA, as PEM: the certificate
/// followed by its CA, and the serving key. Valid for a year, as upstream's.
pub fn generate_self_signed(host: &str, ips: &[IpAddr]) -> anyhow::Result<(String, String)> {
    let stamp = jiff::Timestamp::now().as_second();
    let (by, bm, bd) = days_from_now(-1)?;
    let (ay, am, ad) = days_from_now(365)?;
    let not_before = rcgen::date_time_ymd(by, bm, bd);
    let not_after = rcgen::date_time_ymd(ay, am, ad);

    let mut ca = rcgen::CertificateParams::default();
    ca.distinguished_name = rcgen::DistinguishedName::new();
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, format!("{host}-ca@{stamp}"));
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
        rcgen::KeyUsagePurpose::KeyEncipherment,
    ];
    ca.not_before = not_before;
    ca.not_after = not_after;
    let ca_key = rcgen::KeyPair::generate()?;
    let issuer = rcgen::CertifiedIssuer::self_signed(ca, ca_key)?;

    let mut sans = vec![host.to_string()];
    sans.extend(ips.iter().map(|ip| ip.to_string()));
    sans.dedup();
    let mut params = rcgen::CertificateParams::new(sans)?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, format!("{host}@{stamp}"));
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::DigitalSignature,
        rcgen::KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    params.not_before = not_before;
    params.not_after = not_after;
    let key = rcgen::KeyPair::generate()?;
    let cert = params.signed_by(&key, &issuer)?;
    Ok((
        format!("{}{}", cert.pem(), issuer.pem()),
        key.serialize_pem(),
    ))
}

/// The serving certificate and key files: the given pair, or `<cert_dir>/kubelet.crt` and
/// `kubelet.key`, generated (self-signed) when they cannot be read.
pub fn serving_files(
    cert_file: Option<&Path>,
    key_file: Option<&Path>,
    cert_dir: &Path,
    host: &str,
    ips: &[IpAddr],
) -> anyhow::Result<(PathBuf, PathBuf)> {
    match (cert_file, key_file) {
        (Some(c), Some(k)) => return Ok((c.to_path_buf(), k.to_path_buf())),
        (None, None) => {}
        _ => anyhow::bail!("--tls-cert-file and --tls-private-key-file must be given together"),
    }
    let cert = cert_dir.join("kubelet.crt");
    let key = cert_dir.join("kubelet.key");
    let readable = CertificateDer::pem_file_iter(&cert)
        .map(|mut it| it.next().is_some_and(|c| c.is_ok()))
        .unwrap_or(false)
        && PrivateKeyDer::from_pem_file(&key).is_ok();
    if readable {
        return Ok((cert, key));
    }
    let (cert_pem, key_pem) = generate_self_signed(host, ips)?;
    std::fs::create_dir_all(cert_dir)
        .with_context(|| format!("creating the certificate directory {}", cert_dir.display()))?;
    std::fs::write(&cert, cert_pem).with_context(|| format!("writing {}", cert.display()))?;
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&key)
            .with_context(|| format!("writing {}", key.display()))?;
        f.write_all(key_pem.as_bytes())?;
    }
    tracing::info!(cert = %cert.display(), "generated a self-signed serving certificate");
    Ok((cert, key))
}

/// rustls configuration: the serving pair, and client certificates verified against
/// `client_ca` when given. Clients without a certificate still complete the handshake (as Go's
/// VerifyClientCertIfGiven); authentication decides about them.
pub fn server_config(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("reading --tls-cert-file {}", cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("parsing {}", cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("reading --tls-private-key-file {}", key.display()))?;
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let mut cfg = match client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in CertificateDer::pem_file_iter(ca)
                .with_context(|| format!("reading --client-ca-file {}", ca.display()))?
            {
                roots
                    .add(c.with_context(|| format!("parsing {}", ca.display()))?)
                    .context("adding a client CA")?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
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
