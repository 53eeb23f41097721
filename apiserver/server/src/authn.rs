//! Request authentication beyond client certificates: the service account flags (mirrors
//! pkg/kubeapiserver/options/authentication.go and the service account parts of
//! pkg/controlplane/apiserver/options and cmd/kube-apiserver/app/options/validation.go) and the
//! bearer token authenticator (mirrors apiserver/pkg/authentication/request/bearertoken).

use crate::Config;
use crate::server::Identity;
use apiserver_registry::context::UserInfo;
use apiserver_registry::serviceaccount::TokenOptions;
use apiserver_registry::serviceaccount::authenticator::TokenAuthenticator;
use apiserver_registry::serviceaccount::keys;
use apiserver_registry::serviceaccount::{
    EXPIRATION_EXTENSION_SECONDS, WARN_ONLY_BOUND_TOKEN_EXPIRATION_SECONDS,
};
use http::HeaderMap;
use std::collections::BTreeMap;

/// The admission plugins `--disable-admission-plugins` may name.
const DISABLEABLE_ADMISSION_PLUGINS: &[&str] = &["ServiceAccount"];

/// Whether the ServiceAccount admission plugin runs, from `--disable-admission-plugins`.
pub fn service_account_admission(config: &Config) -> anyhow::Result<bool> {
    for p in config
        .disable_admission_plugins
        .iter()
        .filter(|p| !p.is_empty())
    {
        if !DISABLEABLE_ADMISSION_PLUGINS.contains(&p.as_str()) {
            anyhow::bail!(
                "disable-admission-plugins plugin {p:?} is unknown or cannot be disabled here (only {})",
                DISABLEABLE_ADMISSION_PLUGINS.join(", ")
            );
        }
    }
    Ok(!config
        .disable_admission_plugins
        .iter()
        .any(|p| p == "ServiceAccount"))
}

fn validate_issuers(issuers: &[String]) -> Vec<String> {
    let mut errs = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for issuer in issuers {
        if issuer.contains(':')
            && let Err(e) = url::Url::parse(issuer)
        {
            errs.push(format!(
                "service-account-issuer {issuer:?} contained a ':' but was not a valid URL: {e}"
            ));
            continue;
        }
        if issuer.is_empty() {
            errs.push("service-account-issuer should not be an empty string".into());
            continue;
        }
        if !seen.insert(issuer.clone()) {
            errs.push(format!(
                "service-account-issuer {issuer:?} is already specified"
            ));
        }
    }
    errs
}

/// The token configuration from the flags, or None when none of them is given (upstream
/// requires them; this server then serves no tokens, as upstream does without a signer).
pub fn token_options(config: &Config) -> anyhow::Result<Option<TokenOptions>> {
    let issuers = &config.service_account_issuer;
    let attempted = config.service_account_signing_key_file.is_some()
        || issuers.first().is_some_and(|i| !i.is_empty())
        || !config.api_audiences.is_empty();
    let mut errs = validate_issuers(issuers);
    let max = config.service_account_max_token_expiration.as_secs() as i64;
    if max != 0 && !(3600..=1i64 << 32).contains(&max) {
        errs.push(
            "the service-account-max-token-expiration must be between 1 hour and 2^32 seconds"
                .into(),
        );
    }
    if !attempted {
        if !config.service_account_key_file.is_empty() {
            errs.push("service-account-issuer is a required flag".into());
        }
        if !errs.is_empty() {
            anyhow::bail!(errs.join("; "));
        }
        return Ok(None);
    }
    let (Some(signing_file), false) =
        (&config.service_account_signing_key_file, issuers.is_empty())
    else {
        errs.push("--service-account-signing-key-file, --service-account-issuer, and --api-audiences should be specified together".into());
        anyhow::bail!(errs.join("; "));
    };
    let mut key_files = config.service_account_key_file.clone();
    if key_files.is_empty() {
        // Upstream falls back to the serving key.
        match &config.tls_private_key_file {
            Some(k) => key_files.push(k.clone()),
            None => errs.push(
                "either `--service-account-key-file` or `--service-account-signing-endpoint` must be set"
                    .into(),
            ),
        }
    }
    if !errs.is_empty() {
        anyhow::bail!(errs.join("; "));
    }
    let signing_key = keys::signing_key_from_file(signing_file)
        .map_err(|e| anyhow::anyhow!("failed to parse service-account-issuer-key-file: {e}"))?;
    let mut verifying_keys = Vec::new();
    for f in &key_files {
        verifying_keys.extend(keys::verifying_keys_from_file(f).map_err(anyhow::Error::msg)?);
    }
    let api_audiences = if config.api_audiences.is_empty() {
        issuers.clone()
    } else {
        config.api_audiences.clone()
    };
    let extend = config.service_account_extend_token_expiration;
    if extend && max != 0 {
        if max < WARN_ONLY_BOUND_TOKEN_EXPIRATION_SECONDS {
            tracing::warn!(
                "service-account-extend-token-expiration is true, in order to correctly trigger safe transition logic, service-account-max-token-expiration must be set longer than {WARN_ONLY_BOUND_TOKEN_EXPIRATION_SECONDS} seconds (currently {max}s)"
            );
        }
        if max < EXPIRATION_EXTENSION_SECONDS {
            tracing::warn!(
                "service-account-extend-token-expiration is true, enabling tokens valid up to {EXPIRATION_EXTENSION_SECONDS} seconds, which is longer than service-account-max-token-expiration set to {max}s"
            );
        }
    }
    Ok(Some(TokenOptions {
        issuers: issuers.clone(),
        signing_key,
        verifying_keys,
        api_audiences,
        max_expiration_seconds: max,
        extend_expiration: extend,
    }))
}

/// The bearer token of a request (`Authorization: Bearer <token>`), if any.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let auth = headers
        .get(http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .trim();
    let mut parts = auth.splitn(3, ' ');
    let scheme = parts.next()?;
    let token = parts.next()?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// An authenticated request's user and the extra attributes of its credential.
pub struct Authenticated {
    pub user: UserInfo,
    pub extra: BTreeMap<String, Vec<String>>,
}

/// Authenticates a request: a verified client certificate first (x509 comes first in upstream's
/// union), then a bearer token, then the connection's default (the plain-HTTP test admin).
/// Err is a failed authentication (401): a bearer token that is not valid.
pub async fn authenticate(
    authenticator: Option<&TokenAuthenticator>,
    identity: &Identity,
    headers: &HeaderMap,
) -> Result<Option<Authenticated>, String> {
    let plain = |u: &UserInfo| Authenticated {
        user: u.clone(),
        extra: BTreeMap::new(),
    };
    if let (Some(u), false) = (&identity.user, identity.test_admin) {
        return Ok(Some(plain(u)));
    }
    if let Some(token) = bearer_token(headers) {
        let Some(a) = authenticator else {
            return Err("invalid bearer token".into());
        };
        let ok = a.authenticate(token, None).await?;
        return Ok(Some(Authenticated {
            user: UserInfo {
                name: ok.user.name,
                uid: ok.user.uid,
                groups: ok.user.groups,
            },
            extra: ok.user.extra,
        }));
    }
    Ok(identity.user.as_ref().map(plain))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(auth: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(http::header::AUTHORIZATION, auth.parse().unwrap());
        h
    }

    #[test]
    fn bearer_tokens_as_upstream_parses_them() {
        assert_eq!(bearer_token(&headers("Bearer abc")), Some("abc"));
        assert_eq!(bearer_token(&headers("  bearer abc extra")), Some("abc"));
        assert_eq!(bearer_token(&headers("Basic abc")), None);
        assert_eq!(bearer_token(&headers("Bearer")), None);
        assert_eq!(bearer_token(&headers("Bearer  abc")), None);
        assert_eq!(bearer_token(&HeaderMap::new()), None);
    }

    fn config(extra: &[&str]) -> Config {
        let mut args = vec!["kube-apiserver"];
        args.extend(extra);
        <Config as clap::Parser>::try_parse_from(args).unwrap()
    }

    #[test]
    fn flags_go_together() {
        assert!(token_options(&config(&[])).unwrap().is_none());
        let e = token_options(&config(&["--service-account-key-file=/p"]))
            .err()
            .unwrap();
        assert_eq!(e.to_string(), "service-account-issuer is a required flag");
        let e = token_options(&config(&["--service-account-issuer=https://x"]))
            .err()
            .unwrap();
        assert_eq!(
            e.to_string(),
            "--service-account-signing-key-file, --service-account-issuer, and --api-audiences should be specified together"
        );
        let e = token_options(&config(&[
            "--service-account-issuer=https://x",
            "--service-account-issuer=https://x",
            "--service-account-max-token-expiration=10m",
            "--service-account-signing-key-file=/k",
            "--service-account-key-file=/p",
        ]))
        .err()
        .unwrap();
        assert_eq!(
            e.to_string(),
            "service-account-issuer \"https://x\" is already specified; the service-account-max-token-expiration must be between 1 hour and 2^32 seconds"
        );
        let c = config(&["--service-account-extend-token-expiration=false"]);
        assert!(!c.service_account_extend_token_expiration);
        assert!(config(&[]).service_account_extend_token_expiration);
        let c = config(&["--api-audiences=a,b", "--api-audiences=c"]);
        assert_eq!(c.api_audiences, vec!["a", "b", "c"]);
    }

    #[test]
    fn admission_plugins() {
        assert!(service_account_admission(&config(&[])).unwrap());
        assert!(
            !service_account_admission(&config(&["--disable-admission-plugins=ServiceAccount"]))
                .unwrap()
        );
        assert!(service_account_admission(&config(&["--disable-admission-plugins=Foo"])).is_err());
    }
}
