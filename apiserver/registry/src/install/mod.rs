//! The install table: every served resource, one row each, with its strategy and subresources.
//! Discovery, OpenAPI and routing are all derived from it. The rows are in `table.rs`.

mod table;
pub use table::install;

use crate::rest::{MainRest, Rest};
use crate::reviews::ReviewRest;
use crate::store::{BuiltinObject, GenericStore, NamespaceLifecycle};
use crate::strategy::{DefaultStrategy, Strategy};
use crate::subresources::{ScaleRest, StatusRest};
use apiserver_apimachinery::names::NameRule;
use apiserver_apimachinery::resource::{ALL_VERBS, CREATE_ONLY};
use apiserver_apimachinery::{ResourceInfo, Scope};
use apiserver_openapi::OpenApiBuilder;
use apiserver_storage::Storage;
use apiserver_storage::cacher::CacheSet;
use k8s_openapi::api as a;
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::Arc;

/// (group, version, resource, subresource) -> endpoint.
pub type Endpoints = HashMap<(String, String, String, String), Arc<dyn Rest>>;

pub struct Config {
    pub storage: Arc<dyn Storage>,
    pub caches: Arc<CacheSet>,
    pub service_cidr: String,
    pub event_ttl_seconds: i64,
    /// How objects are encoded in storage.
    pub codec: Arc<dyn apiserver_storage::codec::Codec>,
    /// Service account tokens: the `serviceaccounts/token` subresource and the token
    /// authenticator are served only with them (a signing key and issuer).
    pub service_accounts: Option<crate::serviceaccount::TokenOptions>,
    /// Whether the ServiceAccount admission plugin runs (`--disable-admission-plugins`).
    pub service_account_admission: bool,
}

pub struct Installed {
    pub endpoints: Endpoints,
    pub resources: Vec<ResourceInfo>,
    pub openapi: OpenApiBuilder,
    pub namespaces: Arc<GenericStore<a::core::v1::Namespace>>,
    pub services: Arc<GenericStore<a::core::v1::Service>>,
    pub priority_classes: Arc<GenericStore<a::scheduling::v1::PriorityClass>>,
    pub crds: Arc<
        GenericStore<
            k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
        >,
    >,
    /// NamespaceLifecycle admission, for stores created later (custom resources).
    pub lifecycle: Option<Arc<dyn NamespaceLifecycle>>,
    pub kubernetes_service_ip: Ipv4Addr,
    /// The service account token authenticator, when tokens are configured.
    pub token_authenticator: Option<Arc<crate::serviceaccount::authenticator::TokenAuthenticator>>,
}

pub(crate) struct Builder {
    pub(crate) cfg: Config,
    pub(crate) lifecycle: Option<Arc<dyn NamespaceLifecycle>>,
    pub(crate) endpoints: Endpoints,
    pub(crate) resources: Vec<ResourceInfo>,
    pub(crate) openapi: OpenApiBuilder,
}

/// Describes one resource row.
pub(crate) struct Row {
    group: &'static str,
    version: &'static str,
    resource: &'static str,
    singular: &'static str,
    kind: &'static str,
    scope: Scope,
    short: &'static [&'static str],
    categories: &'static [&'static str],
    prefix: &'static str,
    subs: &'static [&'static str],
}

pub(crate) const NS: Scope = Scope::Namespaced;
pub(crate) const CL: Scope = Scope::Cluster;
pub(crate) const ALL: &[&str] = &["all"];
pub(crate) const EXT: &[&str] = &["api-extensions"];

pub(crate) fn row(
    group: &'static str,
    version: &'static str,
    resource: &'static str,
    kind: &'static str,
    scope: Scope,
    short: &'static [&'static str],
    prefix: &'static str,
) -> Row {
    let singular: &'static str = Box::leak(kind.to_lowercase().into_boxed_str());
    Row {
        group,
        version,
        resource,
        singular,
        kind,
        scope,
        short,
        categories: &[],
        prefix,
        subs: &[],
    }
}

impl Row {
    pub(crate) fn cat(mut self, c: &'static [&'static str]) -> Self {
        self.categories = c;
        self
    }
    pub(crate) fn subs(mut self, s: &'static [&'static str]) -> Self {
        self.subs = s;
        self
    }
    fn info(&self, verbs: &'static [&'static str]) -> ResourceInfo {
        ResourceInfo {
            group: self.group,
            version: self.version,
            resource: self.resource,
            singular: self.singular,
            kind: self.kind,
            list_kind: format!("{}List", self.kind),
            scope: self.scope,
            short_names: self.short,
            categories: self.categories,
            verbs,
            subresources: self.subs.to_vec(),
            etcd_prefix: self.prefix,
        }
    }
}

pub(crate) fn key(info: &ResourceInfo, sub: &str) -> (String, String, String, String) {
    (
        info.group.to_string(),
        info.version.to_string(),
        info.resource.to_string(),
        sub.to_string(),
    )
}

impl Builder {
    pub(crate) fn store<K: BuiltinObject>(
        &mut self,
        r: Row,
        strategy: Arc<dyn Strategy<K>>,
    ) -> Arc<GenericStore<K>> {
        // Namespaces cannot be deleted as a collection (upstream serves no deletecollection).
        const NS_VERBS: &[&str] = &[
            "create", "delete", "get", "list", "patch", "update", "watch",
        ];
        let info = r.info(if r.resource == "namespaces" {
            NS_VERBS
        } else {
            ALL_VERBS
        });
        let store = Arc::new(GenericStore::new(
            info.clone(),
            strategy,
            self.cfg.storage.clone(),
            &self.cfg.caches,
            if info.namespaced() {
                self.lifecycle.clone()
            } else {
                None
            },
            self.cfg.codec.clone(),
        ));
        self.openapi.add_resource::<K>(&info);
        self.endpoints.insert(
            key(&info, ""),
            Arc::new(MainRest {
                store: store.clone(),
            }),
        );
        for sub in r.subs {
            let ep: Option<Arc<dyn Rest>> = match *sub {
                "status" => Some(Arc::new(StatusRest {
                    store: store.clone(),
                })),
                "scale" => Some(Arc::new(ScaleRest {
                    store: store.clone(),
                    paths: crate::subresources::workload_scale_paths(),
                })),
                _ => None,
            };
            if let Some(ep) = ep {
                self.endpoints.insert(key(&info, sub), ep);
            }
        }
        self.resources.push(info);
        store
    }

    pub(crate) fn add<K: BuiltinObject>(&mut self, r: Row) -> Arc<GenericStore<K>> {
        let has_status = r.subs.contains(&"status");
        let mut s = DefaultStrategy::new();
        if has_status {
            s = s.with_status();
        }
        if r.group == "rbac.authorization.k8s.io" {
            s = s.names(NameRule::PathSegment);
        }
        if matches!(r.resource, "statefulsets") {
            s = s.names(NameRule::Label);
        }
        if matches!(r.resource, "leases" | "endpoints" | "endpointslices") {
            s = s.create_on_update();
        }
        self.store::<K>(r, Arc::new(s))
    }

    pub(crate) fn versioned<I, E>(
        &mut self,
        r: Row,
        store: Arc<GenericStore<I>>,
        to_ext: fn(I) -> E,
        to_int: fn(E) -> I,
        field_labels: fn(&str) -> Option<&'static str>,
    ) where
        I: BuiltinObject,
        E: serde::Serialize
            + serde::de::DeserializeOwned
            + schemars::JsonSchema
            + k8s_openapi::Resource
            + apiserver_printers::TablePrinter
            + k8s_openapi::Metadata<Ty = k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta>
            + Send
            + Sync
            + 'static,
    {
        let info = r.info(ALL_VERBS);
        self.openapi.add_resource::<E>(&info);
        self.endpoints.insert(
            key(&info, ""),
            Arc::new(crate::versioned::Versioned {
                info: info.clone(),
                inner: MainRest { store },
                to_ext,
                to_int,
                field_labels,
            }),
        );
        self.resources.push(info);
    }

    pub(crate) fn review<K>(
        &mut self,
        r: Row,
        answer: fn(&crate::RequestContext, K) -> Result<K, apiserver_apimachinery::ApiError>,
    ) where
        K: serde::de::DeserializeOwned
            + serde::Serialize
            + schemars::JsonSchema
            + k8s_openapi::Resource
            + Send
            + Sync
            + 'static,
    {
        self.create_only::<K>(r, |info| Arc::new(ReviewRest { info, answer }));
    }

    /// A create-only resource served by the endpoint `make` builds from its info.
    pub(crate) fn create_only<K>(
        &mut self,
        r: Row,
        make: impl FnOnce(ResourceInfo) -> Arc<dyn Rest>,
    ) where
        K: schemars::JsonSchema + k8s_openapi::Resource,
    {
        let info = r.info(CREATE_ONLY);
        self.openapi.add_resource::<K>(&info);
        self.endpoints.insert(key(&info, ""), make(info.clone()));
        self.resources.push(info);
    }
}
