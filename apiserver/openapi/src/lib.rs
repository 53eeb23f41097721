//! The apiserver's OpenAPI documents: `/openapi/v2` (Swagger 2.0, as JSON and as gnostic
//! protobuf), the `/openapi/v3` index and one OpenAPI 3.0 document per group version.
//! Mirrors `k8s.io/apiserver/pkg/endpoints/openapi`, `k8s.io/kube-openapi/pkg/builder{,3}`
//! and the handlers in `k8s.io/kube-openapi/pkg/handler{,3}`.
//!
//! The server fills an [`OpenApiBuilder`] with its resources once at startup
//! ([`OpenApiBuilder::add_resource`] per served resource), calls [`OpenApiBuilder::build`] and
//! answers `/openapi/*` requests with [`OpenApiDocuments::serve`].
//!
//! ```
//! use apiserver_apimachinery::{ResourceInfo, Scope, resource::ALL_VERBS};
//! use apiserver_openapi::{OpenApiBuilder, OpenApiRequest, OpenApiResponse};
//!
//! let pods = ResourceInfo {
//!     group: "", version: "v1", resource: "pods", singular: "pod", kind: "Pod",
//!     list_kind: "PodList".into(), scope: Scope::Namespaced, short_names: &["po"],
//!     categories: &["all"], verbs: ALL_VERBS, subresources: vec!["status"], etcd_prefix: "pods",
//! };
//! let mut builder = OpenApiBuilder::new().with_version("v1.37.0");
//! builder.add_resource::<k8s_openapi::api::core::v1::Pod>(&pods);
//! let docs = builder.build(); // cheap; documents render on first use
//!
//! // In the HTTP handler for GET /openapi/v2, /openapi/v3 and /openapi/v3/*:
//! let resp = docs.serve(&OpenApiRequest {
//!     path: "/openapi/v2",
//!     hash: None, // the `hash` query parameter
//!     accept: Some("application/com.github.proto-openapi.spec.v2@v1.0+protobuf"),
//!     if_none_match: None,
//! });
//! assert_eq!(resp.status(), 200);
//! for (name, value) in resp.headers() {
//!     // set header `name: value`
//!     # let _ = (name, value);
//! }
//! if let OpenApiResponse::Ok { body, .. } = resp {
//!     assert_eq!(&body, docs.v2_protobuf());
//! }
//! ```

mod params;
mod paths;
mod proto;
mod render;
mod schemas;
mod serve;
mod subresources;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, OnceLock};

use apiserver_apimachinery::ResourceInfo;
use bytes::Bytes;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha512};

use crate::paths::Resource;
use crate::subresources::Subresource;

pub use crate::serve::{OpenApiRequest, OpenApiResponse};

/// Extra schema keywords for one property: called with a definition name
/// (`io.k8s.api.core.v1.PodSpec`) and a property (`containers`); whatever map it returns is
/// merged into that property's schema (`x-kubernetes-patch-strategy`,
/// `x-kubernetes-patch-merge-key`, `x-kubernetes-list-type`, `x-kubernetes-list-map-keys`...).
pub type FieldMetaFn = dyn Fn(&str, &str) -> Option<Map<String, Value>> + Send + Sync;

/// A group/version/kind as the `x-kubernetes-group-version-kind` extension lists it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Gvk {
    pub group: String,
    pub version: String,
    pub kind: String,
}

impl Gvk {
    pub fn new(group: &str, version: &str, kind: &str) -> Gvk {
        Gvk {
            group: group.to_string(),
            version: version.to_string(),
            kind: kind.to_string(),
        }
    }
    /// `{"group": ..., "kind": ..., "version": ...}`: exactly these three keys, which
    /// `kubectl explain` compares by deep equality.
    pub fn to_json(&self) -> Value {
        json!({ "group": self.group, "kind": self.kind, "version": self.version })
    }
}

/// Collects the served resources; [`build`](Self::build) renders every document.
#[derive(Clone)]
pub struct OpenApiBuilder {
    defs: schemas::Definitions,
    resources: Vec<Resource>,
    field_meta: Option<Arc<FieldMetaFn>>,
    version: String,
}

impl Default for OpenApiBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl OpenApiBuilder {
    pub fn new() -> Self {
        OpenApiBuilder {
            defs: schemas::Definitions::new(),
            resources: Vec::new(),
            field_meta: None,
            version: "unversioned".into(),
        }
    }

    /// The `info.version` of the documents (upstream: the server's git version, `v1.37.0`).
    pub fn with_version(mut self, version: &str) -> Self {
        self.version = version.to_string();
        self
    }

    /// Installs the hook that adds patch/list metadata to properties; see [`FieldMetaFn`].
    pub fn with_field_meta(
        mut self,
        hook: impl Fn(&str, &str) -> Option<Map<String, Value>> + Send + Sync + 'static,
    ) -> Self {
        self.field_meta = Some(Arc::new(hook));
        self
    }

    /// Registers a served resource whose objects are `K`: its definition (and everything it
    /// references), `<Kind>List`, paths for its verbs and subresources.
    pub fn add_resource<K: schemars::JsonSchema + k8s_openapi::Resource>(
        &mut self,
        info: &ResourceInfo,
    ) {
        let name = self.defs.add_type::<K>();
        self.register(info, name);
    }

    /// Registers a resource whose schema is given directly (e.g. a custom resource), under
    /// the definition name `definition` (upstream uses the reversed group: `com.example.v1.Foo`).
    /// `schema` is in Swagger 2.0 form (`#/definitions/...` references).
    pub fn add_resource_schema(&mut self, info: &ResourceInfo, definition: &str, schema: Value) {
        self.defs.add_schema(definition, schema);
        self.register(info, definition.to_string());
    }

    /// Like [`add_resource_schema`](Self::add_resource_schema), with a different Swagger 2.0
    /// form for `/openapi/v2` (`schema` is still written with `#/definitions/` refs; the v3
    /// documents are made from it).
    pub fn add_resource_schemas(
        &mut self,
        info: &ResourceInfo,
        definition: &str,
        schema: Value,
        schema_v2: Value,
    ) {
        self.defs.add_schema_v2(definition, schema_v2);
        self.add_resource_schema(info, definition, schema);
    }

    fn register(&mut self, info: &ResourceInfo, definition: String) {
        let gvk = Gvk::new(info.group, info.version, info.kind);
        self.defs.add_kind(&definition, gvk.clone());
        let list_definition = info.verbs.contains(&"list").then(|| {
            let list_kind = if info.list_kind.is_empty() {
                format!("{}List", info.kind)
            } else {
                info.list_kind.clone()
            };
            self.defs.add_list(&definition, &gvk, &list_kind)
        });
        let subresources = info
            .subresources
            .iter()
            .map(|sub| Subresource {
                name: sub.to_string(),
                kind: subresources::kind_of(&mut self.defs, sub, &definition, &gvk),
            })
            .collect();
        self.resources.push(Resource {
            info: info.clone(),
            definition,
            list_definition,
            subresources,
        });
    }

    /// Resolves paths and definitions. The documents themselves are rendered, serialised and
    /// hashed on first use (or by [`OpenApiDocuments::warm`]), so a server that is never asked
    /// for OpenAPI does not pay for it.
    pub fn build(&self) -> OpenApiDocuments {
        let mut by_gv: BTreeMap<String, paths::Paths> = BTreeMap::new();
        let mut group_versions = BTreeSet::new();
        for r in &self.resources {
            let (g, v) = (r.info.group, r.info.version);
            group_versions.insert((g.to_string(), v.to_string()));
            let gv_paths = by_gv.entry(paths::group_version_key(g, v)).or_default();
            if gv_paths.is_empty() {
                paths::add_discovery(gv_paths, g, v);
            }
            paths::add_resource(gv_paths, r);
        }
        let definitions = self
            .defs
            .finish(&group_versions, self.field_meta.as_deref());
        let v2_definitions = self.defs.v2_definitions(&definitions);
        OpenApiDocuments {
            inner: Arc::new(Inner {
                v2_definitions,
                definitions,
                by_gv,
                version: self.version.clone(),
                v2: OnceLock::new(),
                v3: OnceLock::new(),
            }),
        }
    }

    /// The Swagger 2.0 document (renders everything; prefer [`build`](Self::build)).
    pub fn v2(&self) -> Value {
        self.build().v2()
    }
    /// The `/openapi/v3` index.
    pub fn v3_index(&self) -> Value {
        self.build().v3_index()
    }
    /// The OpenAPI 3 document of `path` (`api/v1`, `apis/apps/v1`).
    pub fn v3_group_version(&self, path: &str) -> Option<Value> {
        self.build().v3_group_version(path)
    }
}

/// A serialised document and its ETag.
#[derive(Clone, Debug)]
pub(crate) struct Served {
    pub body: Bytes,
    pub etag: String,
}

impl Served {
    fn new(body: impl Into<Bytes>) -> Served {
        let body = body.into();
        let etag = etag(&body);
        Served { body, etag }
    }
}

/// The content hash upstream uses as ETag and as the index's `hash` parameter: the SHA-512
/// of the bytes, upper-case hex.
pub fn etag(body: &[u8]) -> String {
    let digest = Sha512::digest(body);
    let mut s = String::with_capacity(128);
    for b in digest {
        s.push_str(&format!("{b:02X}"));
    }
    s
}

/// Every OpenAPI document; immutable and cheap to clone and share between threads. Each
/// document is rendered, serialised and hashed once, on first use.
#[derive(Clone)]
pub struct OpenApiDocuments {
    inner: Arc<Inner>,
}

struct Inner {
    definitions: BTreeMap<String, Value>,
    /// The Swagger 2.0 definitions when some differ from `definitions`.
    v2_definitions: Option<BTreeMap<String, Value>>,
    by_gv: BTreeMap<String, paths::Paths>,
    version: String,
    v2: OnceLock<V2>,
    v3: OnceLock<V3>,
}

pub(crate) struct V2 {
    pub json: Served,
    pub proto: Served,
}

pub(crate) struct V3 {
    pub index: Served,
    pub docs: BTreeMap<String, Served>,
}

impl std::fmt::Debug for OpenApiDocuments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenApiDocuments")
            .field("definitions", &self.inner.definitions.len())
            .field("group_versions", &self.inner.by_gv.keys())
            .finish()
    }
}

impl OpenApiDocuments {
    pub(crate) fn v2_docs(&self) -> &V2 {
        self.inner.v2.get_or_init(|| {
            let i = &self.inner;
            let mut all_paths = paths::Paths::new();
            for p in i.by_gv.values() {
                all_paths.extend(p.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
            let defs = i.v2_definitions.as_ref().unwrap_or(&i.definitions);
            let (json, proto) = render::v2_document(&all_paths, defs, &i.version);
            V2 {
                json: Served::new(json),
                proto: Served::new(proto),
            }
        })
    }

    pub(crate) fn v3_docs(&self) -> &V3 {
        self.inner.v3.get_or_init(|| {
            let i = &self.inner;
            // Each definition is converted and serialised once, then shared by the documents.
            let schemas: BTreeMap<&str, String> = i
                .definitions
                .iter()
                .map(|(n, s)| (n.as_str(), render::v3_schema(n, s).to_string()))
                .collect();
            let docs: BTreeMap<String, Served> = i
                .by_gv
                .iter()
                .map(|(key, p)| {
                    let doc = render::v3_document(p, &i.definitions, &schemas, &i.version);
                    (key.clone(), Served::new(doc))
                })
                .collect();
            let index: Map<String, Value> = docs
                .iter()
                .map(|(key, served)| {
                    let url = format!("/openapi/v3/{key}?hash={}", served.etag);
                    (key.clone(), json!({ "serverRelativeURL": url }))
                })
                .collect();
            let index = json!({ "paths": index }).to_string();
            V3 {
                index: Served::new(index),
                docs,
            }
        })
    }

    /// Renders every document now (otherwise each is rendered on first use).
    pub fn warm(&self) {
        self.v2_docs();
        self.v3_docs();
    }
    /// `/openapi/v2` as JSON bytes.
    pub fn v2_json(&self) -> &Bytes {
        &self.v2_docs().json.body
    }
    /// `/openapi/v2` as gnostic `openapi.v2.Document` protobuf bytes.
    pub fn v2_protobuf(&self) -> &Bytes {
        &self.v2_docs().proto.body
    }
    /// `/openapi/v3` as JSON bytes.
    pub fn v3_index_json(&self) -> &Bytes {
        &self.v3_docs().index.body
    }
    /// One group version's OpenAPI 3 document (`api/v1`, `apis/apps/v1`) and its hash.
    pub fn v3_group_version_json(&self, path: &str) -> Option<(&Bytes, &str)> {
        self.v3_docs()
            .docs
            .get(path)
            .map(|s| (&s.body, s.etag.as_str()))
    }
    /// The group-version keys of the v3 documents (`api/v1`, `apis/apps/v1`...).
    pub fn v3_paths(&self) -> impl Iterator<Item = &str> {
        self.inner.by_gv.keys().map(String::as_str)
    }
    pub fn v2(&self) -> Value {
        serde_json::from_slice(self.v2_json()).unwrap_or(Value::Null)
    }
    pub fn v3_index(&self) -> Value {
        serde_json::from_slice(self.v3_index_json()).unwrap_or(Value::Null)
    }
    pub fn v3_group_version(&self, path: &str) -> Option<Value> {
        self.v3_group_version_json(path)
            .and_then(|(body, _)| serde_json::from_slice(body).ok())
    }
}
