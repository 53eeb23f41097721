//! NamespaceLifecycle admission (mirrors plugin/pkg/admission/namespace/lifecycle): objects may
//! only be created in namespaces that exist and are not terminating.

use crate::store::{GenericStore, NamespaceLifecycle};
use apiserver_apimachinery::{ApiError, Reason};
use async_trait::async_trait;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::StatusCause;
use std::sync::Arc;

pub struct Lifecycle {
    pub namespaces: Arc<GenericStore<Namespace>>,
}

#[async_trait]
impl NamespaceLifecycle for Lifecycle {
    async fn check_create(&self, namespace: &str) -> Result<(), ApiError> {
        // The watch cache answers without a storage round trip (upstream uses an informer);
        // a namespace too new for the cache is looked up in storage.
        let cached = self
            .namespaces
            .cache
            .get(&self.namespaces.key(None, namespace));
        let ns: Namespace = match cached.and_then(|o| serde_json::from_slice(&o.json).ok()) {
            Some(ns) => ns,
            None => match self.namespaces.get(None, namespace).await {
                Ok(ns) => ns,
                Err(e) if e.reason == Reason::NotFound => {
                    return Err(ApiError::not_found("", "namespaces", namespace));
                }
                Err(e) => return Err(e),
            },
        };
        let terminating = ns.metadata.deletion_timestamp.is_some()
            || ns.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Terminating");
        if terminating {
            let msg = format!(
                "unable to create new content in namespace {namespace} because it is being terminated"
            );
            let mut e = ApiError::forbidden("", "", "", &msg);
            e.message = msg.clone();
            e.causes.push(StatusCause {
                reason: Some("NamespaceTerminating".into()),
                message: Some(msg),
                field: Some("metadata.namespace".into()),
            });
            return Err(e);
        }
        Ok(())
    }
}
