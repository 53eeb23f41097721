//! Shared server state: the endpoints from the install table, derived documents (discovery,
//! OpenAPI), storage handles, readiness and request metrics.

use apiserver_openapi::OpenApiDocuments;
use apiserver_registry::install::{Endpoints, Installed};
use apiserver_registry::rest::Rest;
use apiserver_registry::store::GenericStore;
use apiserver_storage::Storage;
use apiserver_storage::cacher::CacheSet;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

pub struct AppStateInner {
    /// Endpoints of the install table.
    pub endpoints: Endpoints,
    /// Custom resources and the documents that include them.
    pub crds: Arc<crate::crds::Crds>,
    pub storage: Arc<dyn Storage>,
    pub caches: Arc<CacheSet>,
    pub namespaces: Arc<GenericStore<k8s_openapi::api::core::v1::Namespace>>,
    pub services: Arc<GenericStore<k8s_openapi::api::core::v1::Service>>,
    pub priority_classes: Arc<GenericStore<k8s_openapi::api::scheduling::v1::PriorityClass>>,
    pub kubernetes_service_ip: std::net::Ipv4Addr,
    ready: AtomicBool,
    /// apiserver_request_total{verb,resource,code}
    pub request_counts: Mutex<BTreeMap<(String, String, u16), u64>>,
    /// apiserver_request_duration_seconds{verb,resource}
    pub request_durations: crate::metrics::HistogramVec,
    /// etcd_request_duration_seconds{operation,type}
    pub etcd_durations: Arc<crate::metrics::HistogramVec>,
    pub started: std::time::Instant,
    /// The client for kubelets (logs, exec, attach, port-forward, node proxy).
    pub kubelet: Arc<crate::kubelet_client::KubeletClient>,
    /// The service account token authenticator (bearer tokens), when tokens are configured.
    pub token_authenticator:
        Option<Arc<apiserver_registry::serviceaccount::authenticator::TokenAuthenticator>>,
}

#[derive(Clone)]
pub struct AppState(pub Arc<AppStateInner>);

impl std::ops::Deref for AppState {
    type Target = AppStateInner;
    fn deref(&self) -> &AppStateInner {
        &self.0
    }
}

impl AppState {
    pub fn new(
        mut installed: Installed,
        storage: Arc<dyn Storage>,
        caches: Arc<CacheSet>,
        etcd_durations: Arc<crate::metrics::HistogramVec>,
        kubelet: Arc<crate::kubelet_client::KubeletClient>,
    ) -> Self {
        let crds = crate::crds::Crds::new(
            installed.resources.clone(),
            std::mem::take(&mut installed.openapi),
            installed.crds.clone(),
            apiserver_registry::customresource::ServingContext {
                storage: storage.clone(),
                caches: caches.clone(),
                namespaces: installed.lifecycle.clone(),
            },
        );
        AppState(Arc::new(AppStateInner {
            endpoints: installed.endpoints.clone(),
            crds,
            storage,
            caches,
            namespaces: installed.namespaces.clone(),
            services: installed.services.clone(),
            priority_classes: installed.priority_classes.clone(),
            kubernetes_service_ip: installed.kubernetes_service_ip,
            ready: AtomicBool::new(false),
            request_counts: Mutex::new(BTreeMap::new()),
            request_durations: Default::default(),
            etcd_durations,
            started: std::time::Instant::now(),
            kubelet,
            token_authenticator: installed.token_authenticator.clone(),
        }))
    }

    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::SeqCst);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst) && self.caches.is_ready()
    }

    pub fn endpoint(
        &self,
        group: &str,
        version: &str,
        resource: &str,
        sub: &str,
    ) -> Option<Arc<dyn Rest>> {
        let key = (
            group.to_string(),
            version.to_string(),
            resource.to_string(),
            sub.to_string(),
        );
        self.endpoints
            .get(&key)
            .cloned()
            .or_else(|| self.crds.current().endpoints.get(&key).cloned())
    }

    /// Every served resource (built-in and custom), for discovery.
    pub fn resources(&self) -> Arc<crate::crds::DynamicApi> {
        self.crds.current()
    }

    /// The OpenAPI documents, custom resources included.
    pub fn openapi(&self) -> OpenApiDocuments {
        self.crds.current().openapi.clone()
    }

    pub fn count(&self, verb: &str, resource: &str, code: u16) {
        let mut m = self
            .request_counts
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        *m.entry((verb.to_string(), resource.to_string(), code))
            .or_insert(0) += 1;
    }
}
