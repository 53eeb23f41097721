//! Secret strategy (mirrors pkg/registry/core/secret/strategy.go): selectable by `type`.

use crate::strategy::Strategy;
use apiserver_apimachinery::FieldError;
use apiserver_apis::ApiType;
use k8s_openapi::api::core::v1::Secret;
use std::collections::BTreeMap;

pub struct SecretStrategy;

impl Strategy<Secret> for SecretStrategy {
    fn validate(&self, s: &Secret) -> Vec<FieldError> {
        s.validate()
    }
    fn validate_update(&self, new: &Secret, old: &Secret) -> Vec<FieldError> {
        new.validate_update(old)
    }
    fn field_labels(&self) -> &'static [&'static str] {
        &["type"]
    }
    fn fields(&self, s: &Secret, out: &mut BTreeMap<String, String>) {
        out.insert("type".into(), s.type_.clone().unwrap_or_default());
    }
}
