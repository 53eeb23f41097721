//! DefaultBinder: binds the pod with `POST pods/<name>/binding` carrying the pod's UID, so a
//! pod deleted and re-created under the same name is never bound by mistake (mirrors upstream
//! `plugins/defaultbinder/default_binder.go`).

use crate::framework::*;
use async_trait::async_trait;
use k8s_openapi::api::core::v1::{Binding, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};
use std::sync::Arc;

pub const NAME: &str = "DefaultBinder";

pub struct DefaultBinder {
    pub client: Option<kube::Client>,
}

/// The Binding object upstream sends.
pub fn binding_for(pod: &PodInfo, node: &str) -> Binding {
    Binding {
        metadata: ObjectMeta {
            name: Some(pod.name.clone()),
            namespace: Some(pod.namespace.clone()),
            uid: Some(pod.uid.clone()).filter(|u| !u.is_empty()),
            ..Default::default()
        },
        target: ObjectReference {
            kind: Some("Node".into()),
            name: Some(node.to_string()),
            ..Default::default()
        },
    }
}

impl Plugin for DefaultBinder {
    fn name(&self) -> &'static str {
        NAME
    }
    fn bind(self: Arc<Self>) -> Option<Arc<dyn BindPlugin>> {
        Some(self)
    }
}

#[async_trait]
impl BindPlugin for DefaultBinder {
    fn name(&self) -> &'static str {
        NAME
    }
    async fn bind(&self, pod: &PodInfo, node: &str) -> Status {
        let Some(client) = self.client.clone() else {
            return Status::error("DefaultBinder has no API client");
        };
        let api: Api<Pod> = Api::namespaced(client, &pod.namespace);
        let body = binding_for(pod, node);
        match api
            .create_subresource::<_, serde_json::Value>(
                "binding",
                &pod.name,
                &PostParams::default(),
                &body,
            )
            .await
        {
            Ok(_) => Status::success(),
            Err(e) => Status::error(format!("binding rejected: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::*;

    #[test]
    fn binding_carries_the_uid_and_node() {
        let mut p = pod("p");
        p.metadata.uid = Some("u-1".into());
        let b = binding_for(&PodInfo::new(Arc::new(p)), "n1");
        let v = serde_json::to_value(&b).unwrap();
        assert_eq!(v["metadata"]["uid"], "u-1");
        assert_eq!(v["metadata"]["namespace"], "default");
        assert_eq!(v["target"]["kind"], "Node");
        assert_eq!(v["target"]["name"], "n1");
    }

    #[tokio::test]
    async fn no_client_is_an_error() {
        let st = DefaultBinder { client: None }
            .bind(&PodInfo::new(Arc::new(pod("p"))), "n")
            .await;
        assert_eq!(st.code, Code::Error);
    }
}
