//! core/v1: defaulting and validation entry points for the core group's types (mirrors
//! pkg/apis/core/v1/defaults.go and pkg/apis/core/validation/validation.go).

mod containers;
pub mod defaults;
pub mod objects;
mod pod;
mod podspec;
mod probes;
mod quota;
mod resources;
mod scheduling;
mod service;
mod volumes;

pub use pod::pod_qos_class;

use crate::ApiType;
use crate::util::{self, Errs};
use apiserver_apimachinery::{FieldError, FieldPath};
use k8s_openapi::api::core::v1 as api;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

const STANDARD_FINALIZERS: [&str; 3] = ["kubernetes", "orphan", "foregroundDeletion"];

/// `validateKubeFinalizerName`.
pub(crate) fn kube_finalizer_name(errs: &mut Errs, name: &str, path: &FieldPath) {
    if !name.contains('/') && !STANDARD_FINALIZERS.contains(&name) {
        errs.push(FieldError::invalid_str(
            path,
            name,
            "name is neither a standard finalizer name nor is it fully qualified",
        ));
    }
}

/// The finalizer-name rule core's `ValidateObjectMeta` adds to the generic metadata checks;
/// it applies to every object of the core, apps and batch groups.
pub(crate) fn kube_finalizers(errs: &mut Errs, meta: &ObjectMeta) {
    for (i, f) in meta.finalizers.iter().flatten().enumerate() {
        kube_finalizer_name(
            errs,
            f,
            &FieldPath::root("metadata").child("finalizers").index(i),
        );
    }
}

pub(crate) use podspec::pod_template_spec as validate_pod_template_spec;

impl ApiType for api::Pod {
    fn default_fields(&mut self) {
        defaults::default_pod(self);
    }
    fn validate(&self) -> Vec<FieldError> {
        pod::validate_pod(self)
    }
    fn validate_update(&self, old: &Self) -> Vec<FieldError> {
        pod::validate_pod_update(self, old)
    }
    fn validate_status_update(&self, old: &Self) -> Vec<FieldError> {
        pod::validate_pod_status_update(self, old)
    }
}

impl ApiType for api::PodTemplate {
    fn default_fields(&mut self) {
        defaults::default_pod_template_spec(self.template.get_or_insert_with(Default::default));
    }
    fn validate(&self) -> Vec<FieldError> {
        pod::validate_pod_template(self)
    }
}

impl ApiType for api::ReplicationController {
    fn default_fields(&mut self) {
        let spec = self.spec.get_or_insert_with(Default::default);
        let labels = spec
            .template
            .as_ref()
            .and_then(|t| t.metadata.as_ref())
            .and_then(|m| m.labels.clone());
        if let Some(labels) = labels {
            if spec.selector.as_ref().is_none_or(|s| s.is_empty()) {
                spec.selector = Some(labels.clone());
            }
            if self.metadata.labels.as_ref().is_none_or(|l| l.is_empty()) {
                self.metadata.labels = Some(labels);
            }
        }
        if spec.replicas.is_none() {
            spec.replicas = Some(1);
        }
        if let Some(t) = &mut spec.template {
            defaults::default_pod_template_spec(t);
        }
        // The status struct is a value type upstream, so it always serializes.
        self.status.get_or_insert_with(Default::default);
    }
    fn validate(&self) -> Vec<FieldError> {
        pod::validate_rc(self)
    }
    fn validate_status_update(&self, _old: &Self) -> Vec<FieldError> {
        pod::validate_rc_status(self)
    }
}

impl ApiType for api::Service {
    fn default_fields(&mut self) {
        defaults::default_service(self);
    }
    fn validate(&self) -> Vec<FieldError> {
        service::validate_service(self)
    }
    fn validate_update(&self, old: &Self) -> Vec<FieldError> {
        service::validate_service_update(self, old)
    }
}

impl ApiType for api::ConfigMap {
    fn validate(&self) -> Vec<FieldError> {
        objects::validate_config_map(self)
    }
    fn validate_update(&self, old: &Self) -> Vec<FieldError> {
        objects::validate_config_map_update(self, old)
    }
}

impl ApiType for api::Secret {
    /// `SetDefaults_Secret`, plus folding `stringData` into `data` as upstream's conversion does.
    fn default_fields(&mut self) {
        if self.type_.as_deref().unwrap_or("").is_empty() {
            self.type_ = Some("Opaque".to_string());
        }
        if let Some(sd) = self.string_data.take() {
            let data = self.data.get_or_insert_with(Default::default);
            for (k, v) in sd {
                data.insert(k, k8s_openapi::ByteString(v.into_bytes()));
            }
        }
    }
    fn validate(&self) -> Vec<FieldError> {
        objects::validate_secret(self)
    }
    fn validate_update(&self, old: &Self) -> Vec<FieldError> {
        objects::validate_secret_update(self, old)
    }
}

impl ApiType for api::Namespace {
    /// `SetDefaults_Namespace` and `SetDefaults_NamespaceStatus`.
    fn default_fields(&mut self) {
        if let Some(name) = self.metadata.name.clone().filter(|n| !n.is_empty()) {
            self.metadata
                .labels
                .get_or_insert_with(Default::default)
                .insert("kubernetes.io/metadata.name".to_string(), name);
        }
        let status = self.status.get_or_insert_with(Default::default);
        if status.phase.as_deref().unwrap_or("").is_empty() {
            status.phase = Some("Active".to_string());
        }
    }
    fn validate(&self) -> Vec<FieldError> {
        objects::validate_namespace(self)
    }
    fn validate_update(&self, _old: &Self) -> Vec<FieldError> {
        let mut errs = Vec::new();
        kube_finalizers(&mut errs, &self.metadata);
        errs
    }
    fn validate_status_update(&self, _old: &Self) -> Vec<FieldError> {
        objects::validate_namespace_status(self)
    }
}

impl ApiType for api::ServiceAccount {
    fn validate(&self) -> Vec<FieldError> {
        let mut errs = Vec::new();
        kube_finalizers(&mut errs, &self.metadata);
        errs
    }
}

impl ApiType for api::Endpoints {
    fn default_fields(&mut self) {
        for ss in self.subsets.iter_mut().flatten() {
            for p in ss.ports.iter_mut().flatten() {
                if p.protocol.as_deref().unwrap_or("").is_empty() {
                    p.protocol = Some("TCP".to_string());
                }
            }
        }
    }
    fn validate(&self) -> Vec<FieldError> {
        objects::validate_endpoints(self)
    }
}

impl ApiType for api::Node {
    fn default_fields(&mut self) {
        if let Some(status) = &mut self.status {
            if status.allocatable.is_none() && status.capacity.is_some() {
                status.allocatable = status.capacity.clone();
            }
            defaults::default_resource_list(&mut status.capacity);
            defaults::default_resource_list(&mut status.allocatable);
        }
    }
    fn validate(&self) -> Vec<FieldError> {
        let mut errs = Vec::new();
        kube_finalizers(&mut errs, &self.metadata);
        resources::node(&mut errs, self);
        errs
    }
    fn validate_update(&self, old: &Self) -> Vec<FieldError> {
        let mut errs = Vec::new();
        kube_finalizers(&mut errs, &self.metadata);
        let status = self.status.clone().unwrap_or_default();
        for (field, list) in [
            ("capacity", &status.capacity),
            ("allocatable", &status.allocatable),
        ] {
            for (k, v) in list.iter().flatten() {
                resources::quantity_value(
                    &mut errs,
                    k,
                    v,
                    &FieldPath::root("status").child(field).child(k),
                );
            }
        }
        let mut seen = Vec::new();
        for (i, a) in status.addresses.iter().flatten().enumerate() {
            if seen.contains(&a) {
                errs.push(FieldError::duplicate(
                    &FieldPath::root("status").child("addresses").index(i),
                    util::json(a),
                ));
            }
            seen.push(a);
        }
        resources::node_update(&mut errs, self, old);
        errs
    }
    fn validate_status_update(&self, old: &Self) -> Vec<FieldError> {
        self.validate_update(old)
    }
}

impl ApiType for api::PersistentVolumeClaim {
    fn default_fields(&mut self) {
        let status = self.status.get_or_insert_with(Default::default);
        if status.phase.as_deref().unwrap_or("").is_empty() {
            status.phase = Some("Pending".to_string());
        }
        defaults::default_resource_list(&mut status.capacity);
        defaults::default_resource_list(&mut status.allocated_resources);
        defaults::default_pvc_spec(self.spec.get_or_insert_with(Default::default));
    }
    fn validate(&self) -> Vec<FieldError> {
        let mut errs = Vec::new();
        kube_finalizers(&mut errs, &self.metadata);
        let spec = self.spec.clone().unwrap_or_default();
        resources::pvc_spec(&mut errs, &spec, &FieldPath::root("spec"));
        errs
    }
    fn validate_update(&self, old: &Self) -> Vec<FieldError> {
        let mut errs = self.validate();
        resources::pvc_update(&mut errs, self, old);
        if self.spec.as_ref().and_then(|s| s.volume_mode.clone())
            != old.spec.as_ref().and_then(|s| s.volume_mode.clone())
        {
            let vm = self.spec.as_ref().and_then(|s| s.volume_mode.as_ref());
            errs.push(FieldError::invalid(
                &FieldPath::root("volumeMode"),
                util::json_opt(vm),
                util::IMMUTABLE_MSG,
            ));
        }
        errs
    }
}

impl ApiType for api::PersistentVolume {
    /// `SetDefaults_PersistentVolume`.
    fn default_fields(&mut self) {
        let status = self.status.get_or_insert_with(Default::default);
        if status.phase.as_deref().unwrap_or("").is_empty() {
            status.phase = Some("Pending".to_string());
        }
        let spec = self.spec.get_or_insert_with(Default::default);
        if spec
            .persistent_volume_reclaim_policy
            .as_deref()
            .unwrap_or("")
            .is_empty()
        {
            spec.persistent_volume_reclaim_policy = Some("Retain".to_string());
        }
        if spec.volume_mode.is_none() {
            spec.volume_mode = Some("Filesystem".to_string());
        }
        defaults::default_resource_list(&mut spec.capacity);
        if let Some(h) = &mut spec.host_path
            && h.type_.is_none()
        {
            h.type_ = Some(String::new());
        }
    }
}

impl ApiType for api::ResourceQuota {
    fn default_fields(&mut self) {
        if let Some(spec) = &mut self.spec {
            defaults::default_resource_list(&mut spec.hard);
        }
        if let Some(status) = &mut self.status {
            defaults::default_resource_list(&mut status.hard);
            defaults::default_resource_list(&mut status.used);
        }
    }
    fn validate(&self) -> Vec<FieldError> {
        let mut errs = Vec::new();
        kube_finalizers(&mut errs, &self.metadata);
        let spec = self.spec.clone().unwrap_or_default();
        quota::quota_spec(&mut errs, &spec, &FieldPath::root("spec"));
        quota::quota_status(&mut errs, &self.status.clone().unwrap_or_default());
        errs
    }
    fn validate_update(&self, old: &Self) -> Vec<FieldError> {
        let mut errs = Vec::new();
        kube_finalizers(&mut errs, &self.metadata);
        let spec = self.spec.clone().unwrap_or_default();
        quota::quota_spec(&mut errs, &spec, &FieldPath::root("spec"));
        let scopes = |q: &api::ResourceQuota| -> std::collections::BTreeSet<String> {
            q.spec
                .iter()
                .flat_map(|s| s.scopes.iter().flatten().cloned())
                .collect()
        };
        if scopes(self) != scopes(old) {
            errs.push(FieldError::invalid(
                &FieldPath::root("spec").child("scopes"),
                util::json(&spec.scopes.clone().unwrap_or_default()),
                util::IMMUTABLE_MSG,
            ));
        }
        errs
    }
    fn validate_status_update(&self, _old: &Self) -> Vec<FieldError> {
        let mut errs = Vec::new();
        quota::quota_status(&mut errs, &self.status.clone().unwrap_or_default());
        errs
    }
}

impl ApiType for api::LimitRange {
    fn default_fields(&mut self) {
        if let Some(spec) = &mut self.spec {
            for item in spec.limits.iter_mut() {
                defaults::default_limit_range_item(item);
            }
        }
    }
    fn validate(&self) -> Vec<FieldError> {
        let mut errs = Vec::new();
        kube_finalizers(&mut errs, &self.metadata);
        quota::limit_range(&mut errs, self);
        errs
    }
}
