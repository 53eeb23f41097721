//! CustomResourceDefinitions (mirrors apiextensions-apiserver pkg/registry/customresourcedefinition
//! {strategy,etcd}.go and the v1 defaulting): names and conversion defaulted, validation of the
//! whole definition (schemas, versions, names, subresources), the status reset on create with
//! `storedVersions`, the storage version added to `storedVersions` on update, and deletion that
//! only marks the CRD (finalizer `customresourcecleanup.apiextensions.k8s.io`, Terminating
//! condition) until its custom resources are gone.

use crate::strategy::Strategy;
use apiserver_apiextensions::{helpers, naming};
use apiserver_apimachinery::FieldError;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::{Value, json};

pub const CLEANUP_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";

pub struct CrdStrategy;

fn to_json(crd: &CustomResourceDefinition) -> Value {
    serde_json::to_value(crd).unwrap_or(Value::Null)
}

fn from_json(v: Value, fallback: &mut CustomResourceDefinition) {
    if let Ok(c) = serde_json::from_value(v) {
        *fallback = c;
    }
}

/// Upstream's `SetDefaults_CustomResourceDefinitionSpec` and `SetDefaults_ServiceReference`.
pub fn default_crd(crd: &mut CustomResourceDefinition) {
    let names = &mut crd.spec.names;
    if names.singular.as_deref().is_none_or(str::is_empty) {
        names.singular = Some(names.kind.to_lowercase());
    }
    if names.list_kind.as_deref().is_none_or(str::is_empty) && !names.kind.is_empty() {
        names.list_kind = Some(format!("{}List", names.kind));
    }
    let conversion = crd.spec.conversion.get_or_insert_with(Default::default);
    if conversion.strategy.is_empty() {
        conversion.strategy = "None".into();
    }
    if let Some(svc) = conversion
        .webhook
        .as_mut()
        .and_then(|w| w.client_config.as_mut())
        .and_then(|c| c.service.as_mut())
    {
        svc.port.get_or_insert(443);
    }
}

impl Strategy<CustomResourceDefinition> for CrdStrategy {
    fn has_status(&self) -> bool {
        true
    }
    fn tracks_generation(&self) -> bool {
        true
    }
    fn prepare_for_create(&self, crd: &mut CustomResourceDefinition) {
        default_crd(crd);
        let mut v = to_json(crd);
        helpers::prepare_for_create(&mut v);
        from_json(v, crd);
    }
    fn prepare_for_update(
        &self,
        new: &mut CustomResourceDefinition,
        _old: &CustomResourceDefinition,
    ) {
        default_crd(new);
        let storage = new
            .spec
            .versions
            .iter()
            .find(|v| v.storage)
            .map(|v| v.name.clone());
        if let Some(storage) = storage {
            let status = new.status.get_or_insert_with(Default::default);
            let stored = status.stored_versions.get_or_insert_with(Vec::new);
            if !stored.contains(&storage) {
                stored.push(storage);
            }
        }
    }
    fn validate(&self, crd: &CustomResourceDefinition) -> Vec<FieldError> {
        apiserver_apiextensions::validate_crd(&to_json(crd))
    }
    fn validate_update(
        &self,
        new: &CustomResourceDefinition,
        old: &CustomResourceDefinition,
    ) -> Vec<FieldError> {
        apiserver_apiextensions::validate_crd_update(&to_json(new), &to_json(old))
    }
    fn validate_status_update(
        &self,
        new: &CustomResourceDefinition,
        old: &CustomResourceDefinition,
    ) -> Vec<FieldError> {
        apiserver_apiextensions::validate_crd_status_update(&to_json(new), &to_json(old))
    }
    fn delete_marks_only(&self, crd: &CustomResourceDefinition) -> bool {
        crd.metadata.deletion_timestamp.is_none()
    }
    fn prepare_for_delete_mark(&self, crd: &mut CustomResourceDefinition) {
        let finalizers = crd.metadata.finalizers.get_or_insert_with(Vec::new);
        if !finalizers.iter().any(|f| f == CLEANUP_FINALIZER) {
            finalizers.push(CLEANUP_FINALIZER.to_string());
        }
        let mut v = to_json(crd);
        naming::set_condition(
            &mut v,
            json!({"type": "Terminating", "status": "True", "reason": "InstanceDeletionPending",
                "message": "CustomResourceDefinition marked for deletion; CustomResource deletion will begin soon"}),
            &jiff::Timestamp::now()
                .strftime("%Y-%m-%dT%H:%M:%SZ")
                .to_string(),
        );
        from_json(v, crd);
    }
}
