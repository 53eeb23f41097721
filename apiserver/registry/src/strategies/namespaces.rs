//! Namespace strategy (mirrors pkg/registry/core/namespace/strategy.go and storage.go): the
//! `kubernetes` spec finalizer, phase Terminating on delete, deletion once finalized.

use crate::strategy::Strategy;
use apiserver_apimachinery::FieldError;
use apiserver_apimachinery::names::NameRule;
use apiserver_apis::ApiType;
use k8s_openapi::api::core::v1::Namespace;
use std::collections::BTreeMap;

pub struct NamespaceStrategy;

impl Strategy<Namespace> for NamespaceStrategy {
    fn name_rule(&self) -> NameRule {
        NameRule::Label
    }
    fn has_status(&self) -> bool {
        true
    }
    fn prepare_for_create(&self, ns: &mut Namespace) {
        apiserver_apis::strategy::namespace_prepare_for_create(ns);
    }
    fn prepare_for_update(&self, new: &mut Namespace, old: &Namespace) {
        apiserver_apis::strategy::namespace_prepare_for_update(new, old);
    }
    fn validate(&self, ns: &Namespace) -> Vec<FieldError> {
        ns.validate()
    }
    fn validate_update(&self, new: &Namespace, old: &Namespace) -> Vec<FieldError> {
        new.validate_update(old)
    }
    fn fields(&self, ns: &Namespace, out: &mut BTreeMap<String, String>) {
        out.insert(
            "status.phase".into(),
            ns.status
                .as_ref()
                .and_then(|s| s.phase.clone())
                .unwrap_or_default(),
        );
    }
    fn field_labels(&self) -> &'static [&'static str] {
        &["status.phase"]
    }
    fn check_delete(&self, ns: &Namespace) -> Result<(), apiserver_apimachinery::ApiError> {
        let name = ns.metadata.name.as_deref().unwrap_or("");
        if matches!(name, "default" | "kube-system" | "kube-public") {
            return Err(apiserver_apimachinery::ApiError::forbidden(
                "",
                "namespaces",
                name,
                "this namespace may not be deleted",
            ));
        }
        Ok(())
    }
    fn delete_marks_only(&self, ns: &Namespace) -> bool {
        ns.spec
            .as_ref()
            .and_then(|s| s.finalizers.as_ref())
            .is_some_and(|f| !f.is_empty())
    }
    fn prepare_for_delete_mark(&self, ns: &mut Namespace) {
        ns.status.get_or_insert_with(Default::default).phase = Some("Terminating".into());
    }
}
