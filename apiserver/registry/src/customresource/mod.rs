//! Serving custom resources from a CustomResourceDefinition (mirrors the per-CRD storage that
//! apiextensions-apiserver's customresource_handler.go builds in `getOrCreateServingInfo`):
//! one watch cache per CRD under `/registry/<group>/<plural>/`, objects stored in the storage
//! version, and for every served version a generic store with that version's strategy
//! (schema validation), type support (pruning, defaulting, printer columns, apply schema) and
//! its `status` and `scale` subresources. Versions convert as the CRD's `spec.conversion` says
//! ([`converter`]): `None` rewrites `apiVersion` in the storage codec; `Webhook` converts
//! asynchronously around the storage ([`storage`]) and in the REST layer ([`convert`]).

pub mod convert;
pub mod converter;
pub mod object;
pub mod resolver;
pub mod review;
pub mod storage;
pub mod strategy;
pub mod support;
pub mod webhook;
#[cfg(test)]
mod webhook_tests;

pub use object::{CustomResource, intern, intern_all};

use crate::install::Endpoints;
use crate::rest::{MainRest, Rest};
use crate::store::{GenericStore, NamespaceLifecycle};
use crate::subresources::{ScaleRest, StatusRest};
use apiserver_apiextensions::Structural;
use apiserver_apiextensions::helpers;
use apiserver_apimachinery::resource::ALL_VERBS;
use apiserver_apimachinery::{ResourceInfo, Scope};
use apiserver_storage::Storage;
use apiserver_storage::cacher::{CacheSet, WatchCache};
use apiserver_storage::codec::Codec;
use convert::{ConvertRest, CrCodec, has_defaults};
use resolver::EndpointSliceResolver;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use storage::ConvertingStorage;
use strategy::CustomResourceStrategy;
use support::CustomResourceSupport;

/// What serving custom resources needs from the server.
#[derive(Clone)]
pub struct ServingContext {
    pub storage: Arc<dyn Storage>,
    pub caches: Arc<CacheSet>,
    pub namespaces: Option<Arc<dyn NamespaceLifecycle>>,
}

/// One served version: its description and OpenAPI definitions.
pub struct ServedVersion {
    pub info: ResourceInfo,
    /// The definition name of the kind (`com.example.v1.Widget`), its schema as the OpenAPI 3
    /// documents show it (written with Swagger 2.0 refs), and its Swagger 2.0 schema.
    pub definition: String,
    pub schema: Value,
    pub schema_v2: Value,
}

/// Everything served for one CRD.
pub struct ServedCrd {
    pub versions: Vec<ServedVersion>,
    pub endpoints: Endpoints,
    pub cache: Arc<WatchCache>,
}

fn s<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr).and_then(Value::as_str).unwrap_or("")
}

fn strings(v: &Value, ptr: &str) -> Vec<String> {
    v.pointer(ptr)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// The structural schema of a version (none: everything is kept, as with
/// `x-kubernetes-preserve-unknown-fields` at the root).
fn structural_of(crd: &Value, version: &str) -> Result<Option<Arc<Structural>>, String> {
    match helpers::schema_for_version(crd, version) {
        None => Ok(None),
        Some(schema) => Structural::from_json(schema)
            .map(|s| Some(Arc::new(s)))
            .map_err(|errs| {
                errs.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            }),
    }
}

fn selectable(crd: &Value, version: &str) -> Vec<&'static str> {
    helpers::selectable_fields(crd, version)
        .iter()
        .map(|p| intern(p.trim_start_matches('.')))
        .collect()
}

/// The resource description of a served version, from the CRD's accepted names.
pub fn resource_info(crd: &Value, version: &str) -> ResourceInfo {
    let group = s(crd, "/spec/group");
    let plural = s(crd, "/status/acceptedNames/plural");
    let kind = s(crd, "/status/acceptedNames/kind");
    let mut singular = s(crd, "/status/acceptedNames/singular").to_string();
    if singular.is_empty() {
        singular = kind.to_lowercase();
    }
    let mut list_kind = s(crd, "/status/acceptedNames/listKind").to_string();
    if list_kind.is_empty() {
        list_kind = format!("{kind}List");
    }
    let mut subresources = Vec::new();
    if helpers::has_status_subresource(crd, version) {
        subresources.push("status");
    }
    if helpers::scale_for_version(crd, version).is_some() {
        subresources.push("scale");
    }
    ResourceInfo {
        group: intern(group),
        version: intern(version),
        resource: intern(plural),
        singular: intern(&singular),
        kind: intern(kind),
        list_kind,
        scope: if s(crd, "/spec/scope") == "Cluster" {
            Scope::Cluster
        } else {
            Scope::Namespaced
        },
        short_names: intern_all(&strings(crd, "/status/acceptedNames/shortNames")),
        categories: intern_all(&strings(crd, "/status/acceptedNames/categories")),
        verbs: ALL_VERBS,
        subresources,
        etcd_prefix: intern(&format!("{group}/{plural}")),
    }
}

/// Builds the storage and endpoints of an established CRD. The watch cache is registered on
/// the running cache set; call [`CacheSet::unregister`] with [`ServedCrd::cache`] when the CRD
/// stops being served.
pub async fn serve(crd: &Value, ctx: &ServingContext) -> Result<ServedCrd, String> {
    let group = s(crd, "/spec/group").to_string();
    let storage_version = helpers::storage_version(crd).ok_or("the CRD has no storage version")?;
    let storage_api_version = format!("{group}/{storage_version}");
    let served = helpers::served_versions(crd);
    let mut all_selectable: Vec<&'static str> = Vec::new();
    for v in helpers::versions(crd) {
        for f in selectable(crd, v.get("name").and_then(Value::as_str).unwrap_or("")) {
            if !all_selectable.contains(&f) {
                all_selectable.push(f);
            }
        }
    }
    let storage_info = resource_info(crd, &storage_version);
    // The cache holds objects as stored; its selectable fields are every version's.
    let cache_strategy: Arc<dyn crate::strategy::Strategy<CustomResource>> =
        Arc::new(CustomResourceStrategy {
            group: group.clone(),
            version: storage_version.clone(),
            kind: storage_info.kind.to_string(),
            schema: None,
            has_status: false,
            scale: None,
            selectable: all_selectable,
        });
    // Schemas (pruning of webhook output) and defaults (on read) of every version.
    let mut schemas = BTreeMap::new();
    let mut by_version = BTreeMap::new();
    for v in helpers::versions(crd) {
        let name = v.get("name").and_then(Value::as_str).unwrap_or("");
        if let Ok(Some(st)) = structural_of(crd, name) {
            let av = format!("{group}/{name}");
            if helpers::schema_for_version(crd, name).is_some_and(has_defaults) {
                by_version.insert(av.clone(), st.clone());
            }
            schemas.insert(av, st);
        }
    }
    // The defaults of one version only (`None` strategy: objects are read in one version).
    let only = |av: &str| -> convert::DefaultsByVersion {
        Arc::new(
            by_version
                .get(av)
                .map(|d| BTreeMap::from([(av.to_string(), d.clone())]))
                .unwrap_or_default(),
        )
    };
    let storage_defaults = only(&storage_api_version);
    let defaults: convert::DefaultsByVersion = Arc::new(by_version.clone());
    let resolver = Arc::new(EndpointSliceResolver {
        storage: ctx.storage.clone(),
        root: ctx.caches.root().to_string(),
    });
    let converter = Arc::new(converter::for_crd(crd, schemas, resolver));
    let webhook = converter.is_webhook();
    // With a webhook, stored objects keep their apiVersion until they are converted.
    let reader: Arc<dyn Codec> = Arc::new(CrCodec {
        stored: (!webhook).then(|| storage_api_version.clone()),
        served: (!webhook).then(|| storage_api_version.clone()),
        defaults: if webhook {
            defaults.clone()
        } else {
            storage_defaults
        },
    });
    let cache_codec = reader.clone();
    let prefix = format!("{}{}/", ctx.caches.root(), storage_info.etcd_prefix);
    let cache = ctx
        .caches
        .register_live(
            &prefix,
            GenericStore::<CustomResource>::transform(cache_strategy, cache_codec),
        )
        .await
        .map_err(|e| format!("loading {prefix}: {e}"))?;
    let mut versions = Vec::new();
    let mut endpoints = Endpoints::new();
    for version in &served {
        let built = (|| -> Result<(), String> {
            let info = resource_info(crd, version);
            let api_version = info.api_version();
            let schema = structural_of(crd, version)?;
            let crd_version = helpers::version(crd, version).cloned().unwrap_or_default();
            let definition =
                apiserver_apiextensions::openapi::definition_name(&group, version, info.kind);
            let apply_schema = apiserver_fieldmanager::crd_schema(
                helpers::schema_for_version(crd, version).unwrap_or(
                    &serde_json::json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
                ),
                &definition,
                false,
            )?;
            let scale = helpers::scale_for_version(crd, version);
            let strategy = CustomResourceStrategy {
                group: group.clone(),
                version: version.clone(),
                kind: info.kind.to_string(),
                schema: schema.clone(),
                has_status: helpers::has_status_subresource(crd, version),
                scale: scale.clone(),
                selectable: selectable(crd, version),
            };
            let support = CustomResourceSupport {
                api_version: api_version.clone(),
                kind: info.kind.to_string(),
                schema,
                crd_version,
                apply_schema,
                definition: definition.clone(),
            };
            let (storage, codec): (Arc<dyn Storage>, Arc<dyn Codec>) = if webhook {
                let storage = ConvertingStorage::new(
                    ctx.storage.clone(),
                    converter.clone(),
                    reader.clone(),
                    api_version.clone(),
                    storage_api_version.clone(),
                );
                let codec = CrCodec {
                    stored: None,
                    served: None,
                    defaults: Arc::default(),
                };
                (Arc::new(storage), Arc::new(codec))
            } else {
                let codec = CrCodec {
                    stored: Some(storage_api_version.clone()),
                    served: Some(api_version.clone()),
                    defaults: only(&api_version),
                };
                (ctx.storage.clone(), Arc::new(codec))
            };
            let store = Arc::new(GenericStore {
                info: info.clone(),
                strategy: Arc::new(strategy),
                storage,
                cache: cache.clone(),
                namespaces: if info.namespaced() {
                    ctx.namespaces.clone()
                } else {
                    None
                },
                root: ctx.caches.root().to_string(),
                codec,
                support: Arc::new(support),
            });
            // Objects stored in another version are converted when served; with a webhook,
            // objects stored before a storage version change may be in any version.
            let convert = webhook || api_version != storage_api_version;
            let wrap = |r: Arc<dyn Rest>| -> Arc<dyn Rest> {
                if convert {
                    Arc::new(ConvertRest {
                        inner: r,
                        api_version: api_version.clone(),
                        converter: converter.clone(),
                    })
                } else {
                    r
                }
            };
            let key = |sub: &str| {
                (
                    group.clone(),
                    version.clone(),
                    info.resource.to_string(),
                    sub.to_string(),
                )
            };
            endpoints.insert(
                key(""),
                wrap(Arc::new(MainRest {
                    store: store.clone(),
                })),
            );
            if info.subresources.contains(&"status") {
                endpoints.insert(
                    key("status"),
                    wrap(Arc::new(StatusRest {
                        store: store.clone(),
                    })),
                );
            }
            if let Some(paths) = scale {
                endpoints.insert(
                    key("scale"),
                    Arc::new(ScaleRest {
                        store: store.clone(),
                        paths,
                    }),
                );
            }
            use apiserver_apiextensions::openapi::{Flavor, version_schemas};
            let v2 = version_schemas(crd, version, Flavor::V2);
            let v3 = version_schemas(crd, version, Flavor::V3WithV2Refs);
            versions.push(ServedVersion {
                schema_v2: v2.get(&definition).cloned().unwrap_or_default(),
                schema: v3.get(&definition).cloned().unwrap_or_default(),
                definition,
                info,
            });
            Ok(())
        })();
        if let Err(e) = built {
            ctx.caches.unregister(&cache);
            return Err(format!("version {version}: {e}"));
        }
    }
    Ok(ServedCrd {
        versions,
        endpoints,
        cache,
    })
}
