//! Node strategy (mirrors pkg/registry/core/node/strategy.go).

use crate::strategy::Strategy;
use apiserver_apimachinery::FieldError;
use apiserver_apis::ApiType;
use k8s_openapi::api::core::v1::Node;
use std::collections::BTreeMap;

pub struct NodeStrategy;

impl Strategy<Node> for NodeStrategy {
    fn has_status(&self) -> bool {
        true
    }
    fn reset_status_on_create(&self) -> bool {
        false
    }
    fn field_labels(&self) -> &'static [&'static str] {
        &["spec.unschedulable"]
    }
    fn validate(&self, n: &Node) -> Vec<FieldError> {
        n.validate()
    }
    fn validate_update(&self, new: &Node, old: &Node) -> Vec<FieldError> {
        new.validate_update(old)
    }
    fn fields(&self, n: &Node, out: &mut BTreeMap<String, String>) {
        out.insert(
            "spec.unschedulable".into(),
            n.spec
                .as_ref()
                .and_then(|s| s.unschedulable)
                .unwrap_or(false)
                .to_string(),
        );
    }
}
