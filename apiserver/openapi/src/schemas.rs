//! Schema definitions: k8s-openapi's schemars impls collected under their upstream definition
//! names (`io.k8s.api.core.v1.Pod`), normalised to what kube-openapi publishes, plus the
//! synthesized `<Kind>List` and `WatchEvent` definitions. Mirrors
//! `k8s.io/kube-openapi/pkg/builder` (definition collection) and
//! `k8s.io/apiserver/pkg/endpoints/openapi` (GVK extensions, list/watch types).
//!
//! Definitions are held in the Swagger 2.0 form (`#/definitions/...` references, Quantity and
//! IntOrString as strings); `v3.rs` converts them for OpenAPI 3.

use std::collections::{BTreeMap, BTreeSet};

use schemars::generate::{SchemaGenerator, SchemaSettings};
use serde_json::{Map, Value, json};

use crate::Gvk;

pub(crate) const V2_PREFIX: &str = "#/definitions/";
pub(crate) const LIST_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";
pub(crate) const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
pub(crate) const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";
pub(crate) const PATCH: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";
pub(crate) const WATCH_EVENT: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent";
pub(crate) const API_RESOURCE_LIST: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.APIResourceList";
pub(crate) const RAW_EXTENSION: &str = "io.k8s.apimachinery.pkg.runtime.RawExtension";
pub(crate) const INT_OR_STRING: &str = "io.k8s.apimachinery.pkg.util.intstr.IntOrString";
pub(crate) const QUANTITY: &str = "io.k8s.apimachinery.pkg.api.resource.Quantity";

/// Kinds whose `spec` upstream marks required (k8s-openapi makes `spec` a required,
/// non-optional field on many more kinds than upstream does).
const SPEC_REQUIRED_KINDS: &[&str] = &[
    "CSIDriver",
    "CSINode",
    "CertificateSigningRequest",
    "ClusterTrustBundle",
    "CustomResourceDefinition",
    "DeviceClass",
    "DeviceTaintRule",
    "LocalSubjectAccessReview",
    "PodCertificateRequest",
    "ResourceClaim",
    "ResourceClaimTemplate",
    "ResourceSlice",
    "SelfSubjectAccessReview",
    "SelfSubjectRulesReview",
    "StorageVersion",
    "SubjectAccessReview",
    "TokenRequest",
    "TokenReview",
    "VolumeAttachment",
];

/// Collects definitions while resources are registered.
#[derive(Clone)]
pub(crate) struct Definitions {
    generator: SchemaGenerator,
    /// Definitions not produced by schemars (lists, custom resources, WatchEvent).
    extra: BTreeMap<String, Value>,
    /// `x-kubernetes-group-version-kind` entries per definition.
    gvks: BTreeMap<String, BTreeSet<Gvk>>,
    /// Definitions of top-level kinds (their `required` lists get upstream's shape).
    kinds: BTreeMap<String, String>,
    /// Definitions whose Swagger 2.0 form differs from the one the v3 documents are made from
    /// (custom resources: v2 drops what it cannot express).
    v2_only: BTreeMap<String, Value>,
}

impl Definitions {
    pub(crate) fn new() -> Self {
        let mut settings = SchemaSettings::draft07();
        settings.definitions_path = "/definitions".into();
        settings.meta_schema = None;
        settings.transforms = Vec::new();
        let mut defs = Definitions {
            generator: SchemaGenerator::new(settings),
            extra: BTreeMap::new(),
            gvks: BTreeMap::new(),
            kinds: BTreeMap::new(),
            v2_only: BTreeMap::new(),
        };
        use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
        defs.add_type::<meta::Status>();
        defs.add_type::<meta::DeleteOptions>();
        defs.add_type::<meta::Patch>();
        defs.add_type::<meta::APIResourceList>();
        defs.add_type::<meta::ListMeta>();
        defs.extra
            .insert(WATCH_EVENT.to_string(), watch_event_schema());
        defs.add_gvk(STATUS, Gvk::new("", "v1", "Status"));
        defs.add_gvk(API_RESOURCE_LIST, Gvk::new("", "v1", "APIResourceList"));
        defs
    }

    /// Generates `T`'s definition (and everything it references); returns its name.
    pub(crate) fn add_type<T: schemars::JsonSchema>(&mut self) -> String {
        let _ = self.generator.subschema_for::<T>();
        T::schema_name().into_owned()
    }

    /// Registers a definition given as a ready schema (custom resources).
    pub(crate) fn add_schema(&mut self, name: &str, schema: Value) {
        self.extra.insert(name.to_string(), schema);
    }

    /// Registers the Swagger 2.0 form of a definition added with [`Definitions::add_schema`].
    pub(crate) fn add_schema_v2(&mut self, name: &str, schema: Value) {
        self.v2_only.insert(name.to_string(), schema);
    }

    /// The Swagger 2.0 definitions: `finished` (from [`Definitions::finish`]) with the v2-only
    /// forms in place (keeping the group-version-kinds `finish` attached), or None when there
    /// are none.
    pub(crate) fn v2_definitions(
        &self,
        finished: &BTreeMap<String, Value>,
    ) -> Option<BTreeMap<String, Value>> {
        if self.v2_only.is_empty() {
            return None;
        }
        let mut out = finished.clone();
        for (name, schema) in &self.v2_only {
            let mut schema = schema.clone();
            let gvk = finished
                .get(name)
                .and_then(|s| s.get("x-kubernetes-group-version-kind"))
                .cloned();
            if let (Value::Object(m), Some(gvk)) = (&mut schema, gvk) {
                m.insert("x-kubernetes-group-version-kind".into(), gvk);
            }
            out.insert(name.clone(), schema);
        }
        Some(out)
    }

    /// Marks `name` as the definition of a served top-level kind.
    pub(crate) fn add_kind(&mut self, name: &str, gvk: Gvk) {
        self.kinds.insert(name.to_string(), gvk.kind.clone());
        self.add_gvk(name, gvk);
    }

    pub(crate) fn add_gvk(&mut self, name: &str, gvk: Gvk) {
        self.gvks.entry(name.to_string()).or_default().insert(gvk);
    }

    /// Adds `<definition>List` for the kind defined as `item` (GVK kind `list_kind`), returning
    /// the list's definition name.
    pub(crate) fn add_list(&mut self, item: &str, gvk: &Gvk, list_kind: &str) -> String {
        let list_name = format!("{item}List");
        if !self.extra.contains_key(&list_name) {
            self.extra
                .insert(list_name.clone(), list_schema(item, &gvk.kind));
        }
        self.add_gvk(&list_name, Gvk::new(&gvk.group, &gvk.version, list_kind));
        list_name
    }

    /// Produces the final Swagger 2.0 definitions, sorted by name.
    pub(crate) fn finish(
        &self,
        group_versions: &BTreeSet<(String, String)>,
        field_meta: Option<&crate::FieldMetaFn>,
    ) -> BTreeMap<String, Value> {
        let mut out: BTreeMap<String, Value> = self
            .generator
            .definitions()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (k, v) in &self.extra {
            out.insert(k.clone(), v.clone());
        }
        normalize_scalars(&mut out);
        for (name, kind) in &self.kinds {
            if let Some(schema) = out.get_mut(name) {
                fix_required(schema, kind);
            }
        }
        // DeleteOptions and WatchEvent belong to every served group version, as upstream.
        let mut gvks = self.gvks.clone();
        for (group, version) in group_versions {
            for (def, kind) in [
                (DELETE_OPTIONS, "DeleteOptions"),
                (WATCH_EVENT, "WatchEvent"),
            ] {
                gvks.entry(def.to_string())
                    .or_default()
                    .insert(Gvk::new(group, version, kind));
            }
        }
        for (name, list) in &gvks {
            if let Some(Value::Object(schema)) = out.get_mut(name) {
                let list: Vec<Value> = list.iter().map(Gvk::to_json).collect();
                schema.insert("x-kubernetes-group-version-kind".into(), Value::Array(list));
            }
        }
        if let Some(hook) = field_meta {
            for (name, schema) in out.iter_mut() {
                apply_field_meta(name, schema, hook);
            }
        }
        out
    }
}

/// Upstream's published forms of the scalar wrapper types (Swagger 2.0 flavour).
fn normalize_scalars(defs: &mut BTreeMap<String, Value>) {
    if let Some(Value::Object(s)) = defs.get_mut(INT_OR_STRING) {
        s.insert("type".into(), "string".into());
        s.insert("format".into(), "int-or-string".into());
        s.insert("x-kubernetes-int-or-string".into(), true.into());
    }
    if let Some(Value::Object(s)) = defs.get_mut(QUANTITY) {
        // A Quantity may be a JSON number too, so it is not an int-or-string.
        s.remove("x-kubernetes-int-or-string");
        s.insert("type".into(), "string".into());
    }
}

/// Drops the `metadata`/`spec` entries k8s-openapi adds to `required` of top-level kinds.
fn fix_required(schema: &mut Value, kind: &str) {
    let Some(obj) = schema.as_object_mut() else {
        return;
    };
    let keep_metadata = kind == "Event" && is_core_event(obj);
    let keep_spec = SPEC_REQUIRED_KINDS.contains(&kind);
    if let Some(Value::Array(req)) = obj.get_mut("required") {
        req.retain(|f| match f.as_str() {
            Some("metadata") => keep_metadata,
            Some("spec") => keep_spec,
            _ => true,
        });
        if req.is_empty() {
            obj.remove("required");
        }
    }
}

/// core/v1 Event has `involvedObject`; events.k8s.io Event does not and does not require metadata.
fn is_core_event(obj: &Map<String, Value>) -> bool {
    obj.get("properties")
        .and_then(Value::as_object)
        .is_some_and(|p| p.contains_key("involvedObject"))
}

fn apply_field_meta(name: &str, schema: &mut Value, hook: &crate::FieldMetaFn) {
    let Some(props) = schema.get_mut("properties").and_then(Value::as_object_mut) else {
        return;
    };
    for (field, prop) in props.iter_mut() {
        if let (Some(extra), Value::Object(prop)) = (hook(name, field), prop) {
            for (k, v) in extra {
                prop.insert(k, v);
            }
        }
    }
}

fn list_schema(item: &str, kind: &str) -> Value {
    json!({
        "description": format!("{kind}List is a list of {kind} objects."),
        "type": "object",
        "properties": {
            "apiVersion": {
                "description": "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources",
                "type": "string",
            },
            "items": {
                "description": format!("List of {kind} objects."),
                "type": "array",
                "items": { "$ref": format!("{V2_PREFIX}{item}") },
            },
            "kind": {
                "description": "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds",
                "type": "string",
            },
            "metadata": {
                "$ref": format!("{V2_PREFIX}{LIST_META}"),
                "description": "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata",
            },
        },
        "required": ["items"],
    })
}

fn watch_event_schema() -> Value {
    json!({
        "description": "Event represents a single event to a watched resource.",
        "type": "object",
        "properties": {
            "object": {
                "$ref": format!("{V2_PREFIX}{RAW_EXTENSION}"),
                "description": "Object is the object the event is about: for ADDED and MODIFIED its new state, for DELETED its state before deletion, for ERROR a Status, for BOOKMARK an object carrying only the resourceVersion.",
            },
            "type": {
                "description": "The kind of event: ADDED, MODIFIED, DELETED, BOOKMARK or ERROR.",
                "type": "string",
            },
        },
        "required": ["type", "object"],
    })
}

/// Calls `f` with every `$ref` string in `schema` and the schemas nested in it (properties,
/// items, additionalProperties, allOf/oneOf/anyOf, not). Values under `default`, `enum` or
/// `example` are data and are not walked.
pub(crate) fn for_each_ref(schema: &Value, f: &mut dyn FnMut(&str)) {
    let Value::Object(obj) = schema else {
        return;
    };
    if let Some(Value::String(r)) = obj.get("$ref") {
        f(r);
    }
    for_each_subschema(obj, &mut |s| for_each_ref(s, f));
}

fn for_each_subschema(obj: &Map<String, Value>, f: &mut dyn FnMut(&Value)) {
    if let Some(Value::Object(props)) = obj.get("properties") {
        props.values().for_each(&mut *f);
    }
    for key in ["items", "additionalProperties", "not"] {
        match obj.get(key) {
            Some(v @ Value::Object(_)) => f(v),
            Some(Value::Array(a)) => a.iter().for_each(&mut *f),
            _ => {}
        }
    }
    for key in ["allOf", "oneOf", "anyOf"] {
        if let Some(Value::Array(a)) = obj.get(key) {
            a.iter().for_each(&mut *f);
        }
    }
}

/// Like [`for_each_ref`], but lets `f` rewrite each schema object, children first.
pub(crate) fn rewrite_schemas(schema: &mut Value, f: &mut dyn FnMut(&mut Map<String, Value>)) {
    let Value::Object(obj) = schema else {
        return;
    };
    if let Some(Value::Object(props)) = obj.get_mut("properties") {
        for v in props.values_mut() {
            rewrite_schemas(v, f);
        }
    }
    for key in ["items", "additionalProperties", "not"] {
        match obj.get_mut(key) {
            Some(v @ Value::Object(_)) => rewrite_schemas(v, f),
            Some(Value::Array(a)) => a.iter_mut().for_each(|v| rewrite_schemas(v, f)),
            _ => {}
        }
    }
    for key in ["allOf", "oneOf", "anyOf"] {
        if let Some(Value::Array(a)) = obj.get_mut(key) {
            a.iter_mut().for_each(|v| rewrite_schemas(v, f));
        }
    }
    f(obj);
}

/// Names of all definitions reachable from `roots` (themselves included).
pub(crate) fn closure(
    defs: &BTreeMap<String, Value>,
    roots: impl IntoIterator<Item = String>,
) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut stack: Vec<String> = roots.into_iter().collect();
    while let Some(name) = stack.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        if let Some(schema) = defs.get(&name) {
            for_each_ref(schema, &mut |r| {
                if let Some(target) = r.strip_prefix(V2_PREFIX)
                    && !seen.contains(target)
                {
                    stack.push(target.to_string());
                }
            });
        }
    }
    seen
}
