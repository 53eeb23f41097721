//! Service-account token cache (upstream `pkg/kubelet/token/token_manager.go`): tokens are
//! requested through the TokenRequest API bound to the pod and reused until 80% of their
//! lifetime (or 24h) has passed; if a refresh fails the cached token is used while it is still
//! valid. Upstream's random refresh jitter (up to 10s) is left out.

use super::{ObjectSource, SourceError};
use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use std::collections::HashMap;
use std::sync::Mutex;

const MAX_TTL_SECONDS: i64 = 24 * 60 * 60;

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct Key {
    namespace: String,
    service_account: String,
    audiences: Vec<String>,
    expiration_seconds: i64,
    pod_name: String,
    pod_uid: String,
}

#[derive(Clone, Debug)]
struct Cached {
    token: String,
    expiration: jiff::Timestamp,
    /// The lifetime the apiserver granted (`spec.expirationSeconds` of the response).
    ttl_seconds: i64,
}

/// What the projected volume asks for.
pub struct Request<'a> {
    pub namespace: &'a str,
    pub service_account: &'a str,
    pub audience: Option<&'a str>,
    pub expiration_seconds: i64,
    pub pod_name: &'a str,
    pub pod_uid: &'a str,
}

#[derive(Default)]
pub struct TokenManager {
    cache: Mutex<HashMap<Key, Cached>>,
}

impl Cached {
    fn expired(&self, now: jiff::Timestamp) -> bool {
        now >= self.expiration
    }

    /// Refresh once 80% of the lifetime (or 24h since issue) has passed.
    fn requires_refresh(&self, now: jiff::Timestamp) -> bool {
        let exp = self.expiration.as_second();
        let issued = exp - self.ttl_seconds;
        let now = now.as_second();
        now > issued + MAX_TTL_SECONDS || now > exp - self.ttl_seconds * 20 / 100
    }
}

impl TokenManager {
    /// The token for `req`, from the cache or a new TokenRequest. Errors read like upstream:
    /// `failed to fetch token: ...`.
    pub async fn get(
        &self,
        source: &dyn ObjectSource,
        req: &Request<'_>,
        now: jiff::Timestamp,
    ) -> Result<String, String> {
        let key = Key {
            namespace: req.namespace.to_string(),
            service_account: req.service_account.to_string(),
            audiences: req
                .audience
                .map(|a| vec![a.to_string()])
                .unwrap_or_default(),
            expiration_seconds: req.expiration_seconds,
            pod_name: req.pod_name.to_string(),
            pod_uid: req.pod_uid.to_string(),
        };
        let cached = {
            let mut cache = self.lock();
            cache.retain(|_, c| !c.expired(now));
            cache.get(&key).cloned()
        };
        if let Some(c) = &cached
            && !c.requires_refresh(now)
        {
            return Ok(c.token.clone());
        }
        match request_token(source, &key).await {
            Ok(fresh) => {
                let token = fresh.token.clone();
                self.lock().insert(key, fresh);
                Ok(token)
            }
            Err(e) => match cached {
                None => Err(format!("failed to fetch token: {}", e.message)),
                Some(c) => {
                    tracing::warn!(namespace = %key.namespace, service_account = %key.service_account,
                        error = %e.message, "couldn't refresh service account token; using the cached one");
                    Ok(c.token)
                }
            },
        }
    }

    /// Drops every token bound to the pod.
    pub fn forget_pod(&self, pod_uid: &str) {
        self.lock().retain(|k, _| k.pod_uid != pod_uid);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Cached>> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

async fn request_token(source: &dyn ObjectSource, key: &Key) -> Result<Cached, SourceError> {
    let request = TokenRequest {
        metadata: ObjectMeta::default(),
        spec: Some(TokenRequestSpec {
            audiences: Some(key.audiences.clone()),
            expiration_seconds: Some(key.expiration_seconds),
            bound_object_ref: Some(BoundObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                name: Some(key.pod_name.clone()),
                uid: Some(key.pod_uid.clone()),
            }),
            ..Default::default()
        }),
        status: None,
    };
    let resp = source
        .create_token(&key.namespace, &key.service_account, &request)
        .await?;
    let status = resp
        .status
        .ok_or_else(|| SourceError::other("token request returned no status"))?;
    let token = status
        .token
        .filter(|t| !t.is_empty())
        .ok_or_else(|| SourceError::other("token request returned no token"))?;
    let expiration = status
        .expiration_timestamp
        .map(|t| t.0)
        .ok_or_else(|| SourceError::other("token request returned no expiration"))?;
    Ok(Cached {
        token,
        expiration,
        ttl_seconds: resp
            .spec
            .and_then(|s| s.expiration_seconds)
            .unwrap_or(key.expiration_seconds),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volumes::test_support::FakeSource;

    fn req<'a>() -> Request<'a> {
        Request {
            namespace: "ns",
            service_account: "default",
            audience: None,
            expiration_seconds: 3600,
            pod_name: "p",
            pod_uid: "uid-1",
        }
    }

    #[tokio::test]
    async fn refreshes_after_80_percent_of_lifetime() {
        let src = FakeSource::default();
        let tm = TokenManager::default();
        let t0 = jiff::Timestamp::now();
        let secs = |s: i64| t0 + jiff::SignedDuration::from_secs(s);
        src.set_now(t0);
        let first = tm.get(&src, &req(), t0).await.unwrap();
        assert_eq!(first, "token-1");
        let sent = src.token_requests();
        assert_eq!(sent.len(), 1);
        let spec = sent[0].2.spec.as_ref().unwrap();
        let bound = spec.bound_object_ref.as_ref().unwrap();
        assert_eq!(bound.kind.as_deref(), Some("Pod"));
        assert_eq!(bound.name.as_deref(), Some("p"));
        assert_eq!(bound.uid.as_deref(), Some("uid-1"));
        assert_eq!(spec.expiration_seconds, Some(3600));
        assert_eq!((sent[0].0.as_str(), sent[0].1.as_str()), ("ns", "default"));

        // 79% of 3600s: cached.
        assert_eq!(tm.get(&src, &req(), secs(2844)).await.unwrap(), "token-1");
        assert_eq!(src.token_requests().len(), 1);
        // Past 80%: a new token.
        assert_eq!(tm.get(&src, &req(), secs(2881)).await.unwrap(), "token-2");
        assert_eq!(src.token_requests().len(), 2);
        tm.forget_pod("uid-1");
        assert_eq!(tm.len(), 0);
    }

    #[tokio::test]
    async fn failed_refresh_keeps_valid_token_and_reports_first_failure() {
        let src = FakeSource::default();
        let tm = TokenManager::default();
        let t0 = jiff::Timestamp::now();
        src.set_now(t0);
        tm.get(&src, &req(), t0).await.unwrap();
        src.fail_tokens("serviceaccounts \"default\" not found");
        let later = t0 + jiff::SignedDuration::from_secs(3000);
        assert_eq!(tm.get(&src, &req(), later).await.unwrap(), "token-1");
        let other = Request {
            pod_uid: "uid-2",
            ..req()
        };
        assert_eq!(
            tm.get(&src, &other, t0).await.unwrap_err(),
            "failed to fetch token: serviceaccounts \"default\" not found"
        );
        // Once expired the cached token is gone too.
        let expired = t0 + jiff::SignedDuration::from_secs(3601);
        assert!(tm.get(&src, &req(), expired).await.is_err());
    }
}
