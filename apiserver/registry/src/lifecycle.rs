//! NamespaceLifecycle admission (mirrors plugin/pkg/admission/namespace/lifecycle): objects may
//! only be created in namespaces that exist and are not terminating.

use crate::store::{GenericStore, NamespaceLifecycle};
use apiserver_apimachinery::{ApiError, Reason};
use async_trait::async_trait;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::StatusCause;
use std::sync::Arc;

/// The only parts of a cached Namespace the check reads; deserializing just these skips the
/// rest of the object (managedFields and all), which matters on every namespaced create.
#[derive(serde::Deserialize, Default)]
struct NamespaceState {
    #[serde(default)]
    metadata: StateMeta,
    #[serde(default)]
    status: Option<StateStatus>,
}

#[derive(serde::Deserialize, Default)]
struct StateMeta {
    #[serde(rename = "deletionTimestamp", default)]
    deletion_timestamp: Option<serde::de::IgnoredAny>,
}

#[derive(serde::Deserialize, Default)]
struct StateStatus {
    #[serde(default)]
    phase: Option<String>,
}

impl NamespaceState {
    fn terminating(&self) -> bool {
        terminating(
            self.metadata.deletion_timestamp.is_some(),
            self.status.as_ref().and_then(|s| s.phase.as_deref()),
        )
    }
}

/// A namespace being deleted refuses new content: marked for deletion, or in phase Terminating.
fn terminating(marked: bool, phase: Option<&str>) -> bool {
    marked || phase == Some("Terminating")
}

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
        let terminating =
            match cached.and_then(|o| serde_json::from_slice::<NamespaceState>(&o.json).ok()) {
                Some(state) => state.terminating(),
                None => match self.namespaces.get(None, namespace).await {
                    Ok(ns) => terminating(
                        ns.metadata.deletion_timestamp.is_some(),
                        ns.status.as_ref().and_then(|s| s.phase.as_deref()),
                    ),
                    Err(e) if e.reason == Reason::NotFound => {
                        return Err(ApiError::not_found("", "namespaces", namespace));
                    }
                    Err(e) => return Err(e),
                },
            };
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

#[cfg(test)]
mod tests {
    use super::NamespaceState;

    fn state(json: &str) -> bool {
        serde_json::from_str::<NamespaceState>(json)
            .unwrap()
            .terminating()
    }

    #[test]
    fn terminating_from_the_cached_json() {
        assert!(!state(
            r#"{"metadata":{"name":"a","managedFields":[{"manager":"x"}]},"status":{"phase":"Active"}}"#
        ));
        assert!(!state(r#"{"metadata":{"deletionTimestamp":null}}"#));
        assert!(state(
            r#"{"metadata":{"deletionTimestamp":"2026-11-22T00:00:00Z"},"status":{"phase":"Active"}}"#
        ));
        assert!(state(r#"{"status":{"phase":"Terminating"}}"#));
        assert!(!state(r#"{}"#));
    }
}
