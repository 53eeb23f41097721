//! Where a webhook service is reached: a ready endpoint of the service's EndpointSlices, read
//! in-process from storage (mirrors apiserver pkg/util/proxy ResolveEndpoint, which the
//! aggregator's `--enable-aggregator-routing` resolver uses; this cluster has no kube-proxy to
//! route a ClusterIP).

use apiserver_storage::Storage;
use apiserver_storage::codec::{Codec, JsonCodec};
use async_trait::async_trait;
use k8s_openapi::api::core::v1::{Service, ServicePort};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use rand::Rng;
use std::sync::Arc;

/// The label that ties an EndpointSlice to its service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// Resolves `namespace/name:port` of a service to a `host:port` to dial.
#[async_trait]
pub trait ServiceResolver: Send + Sync {
    async fn resolve(&self, namespace: &str, name: &str, port: i32) -> Result<String, String>;
}

/// Resolves services from the Services and EndpointSlices in storage.
pub struct EndpointSliceResolver {
    pub storage: Arc<dyn Storage>,
    /// The storage key prefix (`/registry/`).
    pub root: String,
}

fn decode<T: serde::de::DeserializeOwned>(value: &[u8]) -> Result<T, String> {
    let json = JsonCodec.decode(value)?;
    serde_json::from_slice(&json).map_err(|e| e.to_string())
}

/// `host:port`, with IPv6 hosts in brackets (Go's `net.JoinHostPort`).
pub fn join_host_port(host: &str, port: i32) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Every ready `host:port` of `slices` for the service port `svc_port`.
pub fn ready_endpoints(slices: &[EndpointSlice], svc_port: &ServicePort) -> Vec<String> {
    let want = svc_port.name.as_deref().unwrap_or("");
    let mut out = Vec::new();
    for slice in slices {
        if !matches!(slice.address_type.as_str(), "IPv4" | "IPv6") {
            continue;
        }
        let port = slice.ports.iter().flatten().find_map(|p| {
            (p.name.as_deref().unwrap_or("") == want)
                .then_some(p.port)
                .flatten()
        });
        let Some(port) = port else { continue };
        for ep in slice.endpoints.iter().flatten() {
            let ready = ep.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true);
            if !ready {
                continue;
            }
            out.extend(ep.addresses.iter().map(|a| join_host_port(a, port)));
        }
    }
    out
}

impl EndpointSliceResolver {
    async fn service(&self, namespace: &str, name: &str) -> Result<Service, String> {
        let key = format!("{}services/specs/{namespace}/{name}", self.root);
        match self.storage.get(&key).await.map_err(|e| e.to_string())? {
            Some(kv) => decode(&kv.value),
            None => Err(format!("service \"{name}\" not found")),
        }
    }

    async fn slices(&self, namespace: &str, name: &str) -> Result<Vec<EndpointSlice>, String> {
        let prefix = format!("{}endpointslices/{namespace}/", self.root);
        let page = self
            .storage
            .list(&prefix, "", 0, 0)
            .await
            .map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        for kv in page.items {
            let slice: EndpointSlice = decode(&kv.value)?;
            let owned = slice
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(SERVICE_NAME_LABEL))
                .is_some_and(|n| n == name);
            if owned {
                out.push(slice);
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl ServiceResolver for EndpointSliceResolver {
    async fn resolve(&self, namespace: &str, name: &str, port: i32) -> Result<String, String> {
        let svc = self.service(namespace, name).await?;
        let spec = svc.spec.unwrap_or_default();
        let svc_port = spec
            .ports
            .iter()
            .flatten()
            .find(|p| p.port == port)
            .cloned()
            .ok_or_else(|| format!("no service port {port} found for service \"{name}\""))?;
        let ty = spec.type_.as_deref().unwrap_or("ClusterIP");
        if !matches!(ty, "ClusterIP" | "LoadBalancer" | "NodePort") {
            return Err(format!("unsupported service type \"{ty}\""));
        }
        let slices = self.slices(namespace, name).await?;
        let all = ready_endpoints(&slices, &svc_port);
        if all.is_empty() {
            return Err(format!("no endpoints available for service \"{name}\""));
        }
        let i = rand::rng().random_range(0..all.len());
        Ok(all[i].clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use apiserver_storage::memory::MemoryStorage;
    use bytes::Bytes;
    use serde_json::{Value, json};

    async fn put(s: &MemoryStorage, key: &str, v: Value) {
        s.create(key, Bytes::from(serde_json::to_vec(&v).unwrap()), None)
            .await
            .unwrap();
    }

    fn slice(name: &str, svc: &str, port_name: Option<&str>, port: i32, eps: Value) -> Value {
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": name, "namespace": "ns", "labels": {SERVICE_NAME_LABEL: svc}},
            "addressType": "IPv4", "ports": [{"name": port_name, "port": port}], "endpoints": eps})
    }

    #[tokio::test]
    async fn resolves_a_ready_endpoint_of_the_service_port() {
        let s = Arc::new(MemoryStorage::new());
        put(&s, "/registry/services/specs/ns/conv", json!({"metadata": {"name": "conv", "namespace": "ns"},
            "spec": {"type": "ClusterIP", "ports": [{"name": "https", "port": 443, "targetPort": 9443}]}})).await;
        put(&s, "/registry/services/specs/ns/ext", json!({"metadata": {"name": "ext", "namespace": "ns"},
            "spec": {"type": "ExternalName", "externalName": "x.example.com", "ports": [{"port": 443}]}})).await;
        put(
            &s,
            "/registry/services/specs/ns/empty",
            json!({"metadata": {"name": "empty", "namespace": "ns"},
            "spec": {"ports": [{"port": 443}]}}),
        )
        .await;
        // Not ready, another port name, another service: none of them may be chosen.
        put(
            &s,
            "/registry/endpointslices/ns/conv-a",
            slice(
                "conv-a",
                "conv",
                Some("https"),
                9443,
                json!([{"addresses": ["10.0.0.1"], "conditions": {"ready": false}},
                   {"addresses": ["127.0.0.1"], "conditions": {"ready": true}}]),
            ),
        )
        .await;
        put(
            &s,
            "/registry/endpointslices/ns/conv-b",
            slice(
                "conv-b",
                "conv",
                Some("metrics"),
                8080,
                json!([{"addresses": ["10.0.0.2"]}]),
            ),
        )
        .await;
        put(
            &s,
            "/registry/endpointslices/ns/other",
            slice(
                "other",
                "other",
                Some("https"),
                9443,
                json!([{"addresses": ["10.0.0.3"]}]),
            ),
        )
        .await;
        put(
            &s,
            "/registry/endpointslices/ns/empty-a",
            slice(
                "empty-a",
                "empty",
                None,
                1,
                json!([{"addresses": ["10.0.0.4"], "conditions": {"ready": false}}]),
            ),
        )
        .await;
        let r = EndpointSliceResolver {
            storage: s.clone(),
            root: "/registry/".into(),
        };
        for _ in 0..5 {
            assert_eq!(
                r.resolve("ns", "conv", 443).await,
                Ok("127.0.0.1:9443".into())
            );
        }
        assert_eq!(
            r.resolve("ns", "conv", 8443).await,
            Err("no service port 8443 found for service \"conv\"".into())
        );
        assert_eq!(
            r.resolve("ns", "missing", 443).await,
            Err("service \"missing\" not found".into())
        );
        assert_eq!(
            r.resolve("ns", "ext", 443).await,
            Err("unsupported service type \"ExternalName\"".into())
        );
        assert_eq!(
            r.resolve("ns", "empty", 443).await,
            Err("no endpoints available for service \"empty\"".into())
        );
    }

    #[test]
    fn ipv6_hosts_are_bracketed() {
        assert_eq!(join_host_port("::1", 443), "[::1]:443");
        assert_eq!(join_host_port("10.0.0.1", 443), "10.0.0.1:443");
    }
}
