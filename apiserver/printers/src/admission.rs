//! Admission configuration rows (printers.go printMutatingWebhook, printValidatingWebhook,
//! printValidatingAdmissionPolicy(Binding), printMutatingAdmissionPolicy(Binding)).

use jiff::Timestamp;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingAdmissionPolicy, MutatingAdmissionPolicyBinding, MutatingWebhookConfiguration,
    ParamKind, ParamRef, ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
    ValidatingWebhookConfiguration,
};
use serde_json::{Value, json};

use crate::format::{age, go_label_selector_debug, name, s};
use crate::{AGE, ColumnDef, NAME, TablePrinter, col};

fn webhook_columns() -> Vec<ColumnDef> {
    vec![
        NAME,
        col(
            "Webhooks",
            "integer",
            "Webhooks indicates the number of webhooks registered in this configuration",
        ),
        AGE,
    ]
}

impl TablePrinter for MutatingWebhookConfiguration {
    fn columns() -> Option<Vec<ColumnDef>> {
        Some(webhook_columns())
    }
    fn cells(&self, now: Timestamp) -> Vec<Value> {
        let n = self.webhooks.as_ref().map_or(0, Vec::len) as i64;
        vec![name(&self.metadata), json!(n), age(&self.metadata, now)]
    }
}

impl TablePrinter for ValidatingWebhookConfiguration {
    fn columns() -> Option<Vec<ColumnDef>> {
        Some(webhook_columns())
    }
    fn cells(&self, now: Timestamp) -> Vec<Value> {
        let n = self.webhooks.as_ref().map_or(0, Vec::len) as i64;
        vec![name(&self.metadata), json!(n), age(&self.metadata, now)]
    }
}

const PARAM_KIND_DESC: &str =
    "ParamKind specifies the kind of resources used to parameterize this policy";

fn param_kind(p: Option<&ParamKind>) -> String {
    p.map_or("<unset>".to_string(), |p| {
        format!("{}/{}", s(p.api_version.as_ref()), s(p.kind.as_ref()))
    })
}

fn policy_binding_columns() -> Vec<ColumnDef> {
    vec![
        NAME,
        col(
            "PolicyName",
            "string",
            "PolicyName indicates the policy definition which the policy binding binded to",
        ),
        col(
            "ParamRef",
            "string",
            "ParamRef indicates the param resource which sets the configration param",
        ),
        AGE,
    ]
}

/// The ParamRef cell of policy bindings: `ns/name`, `*/name`, or the selector.
fn param_ref(p: Option<&ParamRef>) -> String {
    let Some(p) = p else {
        return "<unset>".to_string();
    };
    let name = s(p.name.as_ref());
    let ns = s(p.namespace.as_ref());
    if !name.is_empty() {
        if ns.is_empty() {
            // Cannot tell here whether the param is cluster-scoped.
            format!("*/{name}")
        } else {
            format!("{ns}/{name}")
        }
    } else if let Some(sel) = &p.selector {
        go_label_selector_debug(sel)
    } else {
        "<unset>".to_string()
    }
}

impl TablePrinter for ValidatingAdmissionPolicy {
    fn columns() -> Option<Vec<ColumnDef>> {
        Some(vec![
            NAME,
            col(
                "Validations",
                "integer",
                "Validations indicates the number of validation rules defined in this configuration",
            ),
            col("ParamKind", "string", PARAM_KIND_DESC),
            AGE,
        ])
    }
    fn cells(&self, now: Timestamp) -> Vec<Value> {
        let spec = self.spec.clone().unwrap_or_default();
        vec![
            name(&self.metadata),
            json!(spec.validations.map_or(0, |v| v.len() as i64)),
            json!(param_kind(spec.param_kind.as_ref())),
            age(&self.metadata, now),
        ]
    }
}

impl TablePrinter for ValidatingAdmissionPolicyBinding {
    fn columns() -> Option<Vec<ColumnDef>> {
        Some(policy_binding_columns())
    }
    fn cells(&self, now: Timestamp) -> Vec<Value> {
        let spec = self.spec.clone();
        vec![
            name(&self.metadata),
            json!(spec.policy_name),
            json!(param_ref(spec.param_ref.as_ref())),
            age(&self.metadata, now),
        ]
    }
}

impl TablePrinter for MutatingAdmissionPolicy {
    fn columns() -> Option<Vec<ColumnDef>> {
        Some(vec![
            NAME,
            col(
                "Mutations",
                "integer",
                "Mutation indicates the number of mutations rules defined in this configuration",
            ),
            col("ParamKind", "string", PARAM_KIND_DESC),
            AGE,
        ])
    }
    fn cells(&self, now: Timestamp) -> Vec<Value> {
        let spec = self.spec.clone().unwrap_or_default();
        vec![
            name(&self.metadata),
            json!(spec.mutations.map_or(0, |v| v.len() as i64)),
            json!(param_kind(spec.param_kind.as_ref())),
            age(&self.metadata, now),
        ]
    }
}

impl TablePrinter for MutatingAdmissionPolicyBinding {
    fn columns() -> Option<Vec<ColumnDef>> {
        Some(policy_binding_columns())
    }
    fn cells(&self, now: Timestamp) -> Vec<Value> {
        let spec = self.spec.clone().unwrap_or_default();
        vec![
            name(&self.metadata),
            json!(spec.policy_name.unwrap_or_default()),
            json!(param_ref(spec.param_ref.as_ref())),
            age(&self.metadata, now),
        ]
    }
}
