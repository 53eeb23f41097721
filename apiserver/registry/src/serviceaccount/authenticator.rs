//! The service account token authenticator: the JWT checks of `jwt.rs`, then the validator of
//! pkg/serviceaccount/claims.go (times, and the service account and bound pod, secret or node
//! must still exist with the same uid and not be deleted). Objects are read from the watch
//! caches and, when a cache does not have them, from storage (upstream's informer listers with a
//! live fallback, pkg/controller/serviceaccount/tokengetter.go).

use super::claims::{ServiceAccountInfo, User, credential_id_for_jti, validate_times};
use super::jwt::JwtAuthenticator;
use crate::store::{GenericStore, Object};
use apiserver_apimachinery::ApiError;
use k8s_openapi::api::core::v1::{Node, Pod, Secret, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use std::sync::Arc;

/// The stores tokens are checked against.
#[derive(Clone)]
pub struct Getter {
    pub service_accounts: Arc<GenericStore<ServiceAccount>>,
    pub pods: Arc<GenericStore<Pod>>,
    pub secrets: Arc<GenericStore<Secret>>,
    pub nodes: Arc<GenericStore<Node>>,
}

/// An object from the watch cache, else from storage.
pub(crate) async fn cached_get<K: Object>(
    store: &GenericStore<K>,
    namespace: Option<&str>,
    name: &str,
) -> Result<K, ApiError> {
    if let Some(o) = store.cache.get(&store.key(namespace, name))
        && let Ok(obj) = serde_json::from_slice::<K>(&o.json)
    {
        return Ok(obj);
    }
    store.get(namespace, name).await
}

/// An authenticated request's user and the audiences its credential is valid for.
#[derive(Clone, Debug, PartialEq)]
pub struct Authenticated {
    pub user: User,
    pub audiences: Vec<String>,
}

pub struct TokenAuthenticator {
    pub jwt: JwtAuthenticator,
    pub getter: Getter,
}

const INVALIDATED: &str = "service account token has been invalidated";

fn uid(meta: &ObjectMeta) -> &str {
    meta.uid.as_deref().unwrap_or("")
}

/// Whether the object was deleted before `before` (seconds since the epoch).
fn deleted_before(meta: &ObjectMeta, before: i64) -> bool {
    meta.deletion_timestamp
        .as_ref()
        .is_some_and(|t| t.0.as_second() < before)
}

impl TokenAuthenticator {
    /// Authenticates a bearer token (upstream's bearer token authenticator over the service
    /// account token authenticator): a token that is not one of ours is "invalid bearer token".
    /// `audiences` are those the caller asks for; None means the API audiences.
    pub async fn authenticate(
        &self,
        token: &str,
        audiences: Option<&[String]>,
    ) -> Result<Authenticated, String> {
        let Some((claims, audiences)) = self.jwt.verify(token, audiences)? else {
            return Err("invalid bearer token".into());
        };
        let info = self.validate(&claims).await?;
        let mut user = info.user();
        user.groups.push("system:authenticated".into());
        Ok(Authenticated { user, audiences })
    }

    /// Upstream `validator.Validate`.
    async fn validate(&self, claims: &super::claims::Claims) -> Result<ServiceAccountInfo, String> {
        let now = jiff::Timestamp::now().as_second();
        validate_times(claims, now)?;
        let invalid_if_deleted_before = now - super::claims::LEEWAY_SECONDS;
        let k = &claims.kubernetes;
        let ns = k.namespace.as_str();
        let sa_ref = &k.serviceaccount;
        let g = &self.getter;
        let sa = cached_get(&g.service_accounts, Some(ns), &sa_ref.name)
            .await
            .map_err(|e| e.message)?;
        if uid(&sa.metadata) != sa_ref.uid {
            return Err(format!(
                "service account UID ({}) does not match claim ({})",
                uid(&sa.metadata),
                sa_ref.uid
            ));
        }
        if deleted_before(&sa.metadata, invalid_if_deleted_before) {
            return Err(format!(
                "service account {ns}/{} has been deleted",
                sa_ref.name
            ));
        }
        if let Some(sref) = &k.secret {
            let secret = cached_get(&g.secrets, Some(ns), &sref.name)
                .await
                .map_err(|_| INVALIDATED.to_string())?;
            if sref.uid != uid(&secret.metadata) {
                return Err(format!(
                    "secret UID ({}) does not match service account secret ref claim ({})",
                    uid(&secret.metadata),
                    sref.uid
                ));
            }
            if deleted_before(&secret.metadata, invalid_if_deleted_before) {
                return Err(INVALIDATED.into());
            }
        }
        let mut info = ServiceAccountInfo {
            namespace: ns.to_string(),
            name: sa_ref.name.clone(),
            uid: sa_ref.uid.clone(),
            credential_id: credential_id_for_jti(&claims.jti),
            ..Default::default()
        };
        if let Some(pref) = &k.pod {
            let pod = cached_get(&g.pods, Some(ns), &pref.name)
                .await
                .map_err(|_| INVALIDATED.to_string())?;
            if pref.uid != uid(&pod.metadata) {
                return Err(format!(
                    "pod UID ({}) does not match service account pod ref claim ({})",
                    uid(&pod.metadata),
                    pref.uid
                ));
            }
            if deleted_before(&pod.metadata, invalid_if_deleted_before) {
                return Err(INVALIDATED.into());
            }
            info.pod_name = pref.name.clone();
            info.pod_uid = pref.uid.clone();
            // For pod-bound tokens the node claims are taken as they are.
            if let Some(nref) = &k.node {
                info.node_name = nref.name.clone();
                info.node_uid = nref.uid.clone();
            }
        } else if let Some(nref) = &k.node {
            let node = cached_get(&g.nodes, None, &nref.name)
                .await
                .map_err(|_| INVALIDATED.to_string())?;
            if nref.uid != uid(&node.metadata) {
                return Err(format!(
                    "node UID ({}) does not match service account node ref claim ({})",
                    uid(&node.metadata),
                    nref.uid
                ));
            }
            if deleted_before(&node.metadata, invalid_if_deleted_before) {
                return Err(INVALIDATED.into());
            }
            info.node_name = nref.name.clone();
            info.node_uid = nref.uid.clone();
        }
        Ok(info)
    }
}
