//! Cluster-level and API-extension rows (printers.go printRoleBinding,
//! printClusterRoleBinding, printCertificateSigningRequest, printClusterTrustBundle,
//! printLease, printPriorityClass, printRuntimeClass, printFlowSchema,
//! printPriorityLevelConfiguration, the DRA printers, and the aggregator's APIService table);
//! RBAC roles and CRDs use the default table.

use std::cmp::Ordering;

use jiff::Timestamp;
use k8s_openapi::api::certificates::v1::{CertificateSigningRequest, ClusterTrustBundle};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::flowcontrol::v1::{FlowSchema, PriorityLevelConfiguration};
use k8s_openapi::api::node::v1::RuntimeClass;
use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, Role, RoleBinding, RoleRef, Subject,
};
use k8s_openapi::api::resource::v1::{
    DeviceClass, ResourceClaim, ResourceClaimTemplate, ResourceSlice,
};
use k8s_openapi::api::scheduling::v1::PriorityClass;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService;
use serde_json::{Value, json};

use crate::duration::human_duration_signed;
use crate::format::{age, name, s};
use crate::{AGE, ColumnDef, NAME, TablePrinter, col, default_printer, wide};

default_printer!(Role, ClusterRole, CustomResourceDefinition);

fn binding_columns(what: &'static str) -> Vec<ColumnDef> {
    let (users, groups, sas) = match what {
        "roleBinding" => (
            "Users in the roleBinding",
            "Groups in the roleBinding",
            "ServiceAccounts in the roleBinding",
        ),
        _ => (
            "Users in the clusterRoleBinding",
            "Groups in the clusterRoleBinding",
            "ServiceAccounts in the clusterRoleBinding",
        ),
    };
    vec![
        NAME,
        col(
            "Role",
            "string",
            "RoleRef can only reference a ClusterRole in the global namespace.",
        ),
        AGE,
        wide("Users", "string", users),
        wide("Groups", "string", groups),
        wide("ServiceAccounts", "string", sas),
    ]
}

/// Cells shared by RoleBinding and ClusterRoleBinding (`rbac.SubjectsStrings`).
fn binding_cells(
    meta: &ObjectMeta,
    role: &RoleRef,
    subjects: Option<&Vec<Subject>>,
    now: Timestamp,
) -> Vec<Value> {
    let mut users = Vec::new();
    let mut groups = Vec::new();
    let mut sas = Vec::new();
    for subject in subjects.into_iter().flatten() {
        match subject.kind.as_str() {
            "ServiceAccount" => sas.push(format!(
                "{}/{}",
                s(subject.namespace.as_ref()),
                subject.name
            )),
            "User" => users.push(subject.name.clone()),
            "Group" => groups.push(subject.name.clone()),
            _ => {}
        }
    }
    vec![
        name(meta),
        json!(format!("{}/{}", role.kind, role.name)),
        age(meta, now),
        json!(users.join(", ")),
        json!(groups.join(", ")),
        json!(sas.join(", ")),
    ]
}

impl TablePrinter for RoleBinding {
    fn columns() -> Option<Vec<ColumnDef>> {
        Some(binding_columns("roleBinding"))
    }
    fn cells(&self, now: Timestamp) -> Vec<Value> {
        binding_cells(&self.metadata, &self.role_ref, self.subjects.as_ref(), now)
    }
}

impl TablePrinter for ClusterRoleBinding {
    fn columns() -> Option<Vec<ColumnDef>> {
        Some(binding_columns("clusterRoleBinding"))
    }
    fn cells(&self, now: Timestamp) -> Vec<Value> {
        binding_cells(&self.metadata, &self.role_ref, self.subjects.as_ref(), now)
    }
}

impl TablePrinter for CertificateSigningRequest {
    fn columns() -> Option<Vec<ColumnDef>> {
        Some(vec![
            NAME,
            AGE,
            col(
                "SignerName",
                "string",
                "signerName indicates the requested signer, and is a qualified name.",
            ),
            col(
                "Requestor",
                "string",
                "request contains an x509 certificate signing request encoded in a \"CERTIFICATE REQUEST\" PEM block.",
            ),
            col(
                "RequestedDuration",
                "string",
                "expirationSeconds is the requested duration of validity of the issued certificate.",
            ),
            col(
                "Condition",
                "string",
                "conditions applied to the request. Known conditions are \"Approved\", \"Denied\", and \"Failed\".",
            ),
        ])
    }

    fn cells(&self, now: Timestamp) -> Vec<Value> {
        let spec = &self.spec;
        let signer = if spec.signer_name.is_empty() {
            "<none>".to_string()
        } else {
            spec.signer_name.clone()
        };
        let duration = spec
            .expiration_seconds
            .map_or("<none>".to_string(), |secs| {
                human_duration_signed(jiff::SignedDuration::from_secs(i64::from(secs)))
            });
        vec![
            name(&self.metadata),
            age(&self.metadata, now),
            json!(signer),
            json!(s(spec.username.as_ref())),
            json!(duration),
            json!(csr_condition(self)),
        ]
    }
}

/// `extractCSRStatus`: Denied / Approved / Pending, plus ",Failed" and ",Issued".
fn csr_condition(csr: &CertificateSigningRequest) -> String {
    let status = csr.status.clone().unwrap_or_default();
    let conditions = status.conditions.unwrap_or_default();
    let has = |t: &str| conditions.iter().any(|c| c.type_ == t);
    let mut out = if has("Denied") {
        "Denied".to_string()
    } else if has("Approved") {
        "Approved".to_string()
    } else {
        "Pending".to_string()
    };
    if has("Failed") {
        out.push_str(",Failed");
    }
    if status.certificate.is_some_and(|c| !c.0.is_empty()) {
        out.push_str(",Issued");
    }
    out
}

impl TablePrinter for ClusterTrustBundle {
    fn columns() -> Option<Vec<ColumnDef>> {
        Some(vec![
            NAME,
            col(
                "SignerName",
                "string",
                "signerName indicates the associated signer, if any.",
            ),
        ])
    }

    fn cells(&self, _now: Timestamp) -> Vec<Value> {
        let signer = s(self.spec.signer_name.as_ref());
        let signer = if signer.is_empty() {
            "<none>".to_string()
        } else {
            signer
        };
        vec![name(&self.metadata), json!(signer)]
    }
}

impl TablePrinter for Lease {
    fn columns() -> Option<Vec<ColumnDef>> {
        Some(vec![
            NAME,
            col(
                "Holder",
                "string",
                "holderIdentity contains the identity of the holder of a current lease.",
            ),
            AGE,
        ])
    }

    fn cells(&self, now: Timestamp) -> Vec<Value> {
        let holder = self.spec.as_ref().and_then(|s| s.holder_identity.clone());
        vec![
            name(&self.metadata),
            json!(holder.unwrap_or_default()),
            age(&self.metadata, now),
        ]
    }
}

impl TablePrinter for PriorityClass {
    fn columns() -> Option<Vec<ColumnDef>> {
        Some(vec![
            NAME,
            col(
                "Value",
                "integer",
                "value represents the integer value of this priority class.",
            ),
            col(
                "Global-Default",
                "boolean",
                "globalDefault specifies whether this PriorityClass should be considered as the default priority for pods that do not have any priority class.",
            ),
            AGE,
            col(
                "PreemptionPolicy",
                "string",
                "preemptionPolicy is the Policy for preempting pods with lower priority.",
            ),
        ])
    }

    fn cells(&self, now: Timestamp) -> Vec<Value> {
        vec![
            name(&self.metadata),
            json!(i64::from(self.value.unwrap_or(0))),
            json!(self.global_default.unwrap_or(false)),
            age(&self.metadata, now),
            json!(s(self.preemption_policy.as_ref())),
        ]
    }
}

impl TablePrinter for RuntimeClass {
    fn columns() -> Option<Vec<ColumnDef>> {
        Some(vec![
            NAME,
            col(
                "Handler",
                "string",
                "handler specifies the underlying runtime and configuration that the CRI implementation will use to handle pods of this class.",
            ),
            AGE,
        ])
    }

    fn cells(&self, now: Timestamp) -> Vec<Value> {
        vec![
            name(&self.metadata),
            json!(self.handler),
            age(&self.metadata, now),
        ]
    }
}

/// Default `matchingPrecedence` of a FlowSchema.
const DEFAULT_MATCHING_PRECEDENCE: i32 = 1000;

impl TablePrinter for FlowSchema {
    fn columns() -> Option<Vec<ColumnDef>> {
        Some(vec![
            NAME,
            col(
                "PriorityLevel",
                "string",
                "`name` is the name of the priority level configuration being referenced Required.",
            ),
            col(
                "MatchingPrecedence",
                "string",
                "`matchingPrecedence` is used to choose among the FlowSchemas that match a given request.",
            ),
            col(
                "DistinguisherMethod",
                "string",
                "`distinguisherMethod` defines how to compute the flow distinguisher for requests that match this schema.",
            ),
            AGE,
            col(
                "MissingPL",
                "string",
                "references a broken or non-existent PriorityLevelConfiguration",
            ),
        ])
    }

    fn cells(&self, now: Timestamp) -> Vec<Value> {
        let spec = self.spec.clone();
        let distinguisher = spec
            .distinguisher_method
            .map_or("<none>".to_string(), |d| d.type_);
        let dangling = self
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == "Dangling"))
            .map_or("?".to_string(), |c| s(c.status.as_ref()));
        vec![
            name(&self.metadata),
            json!(spec.priority_level_configuration.name),
            json!(i64::from(
                spec.matching_precedence
                    .unwrap_or(DEFAULT_MATCHING_PRECEDENCE)
            )),
            json!(distinguisher),
            age(&self.metadata, now),
            json!(dangling),
        ]
    }
}

/// The order upstream lists FlowSchemas in (`FlowSchemaSequence`): by matching precedence,
/// then by name.
pub fn flow_schema_order(a: &FlowSchema, b: &FlowSchema) -> Ordering {
    let precedence = |f: &FlowSchema| {
        f.spec
            .matching_precedence
            .unwrap_or(DEFAULT_MATCHING_PRECEDENCE)
    };
    precedence(a)
        .cmp(&precedence(b))
        .then_with(|| a.metadata.name.cmp(&b.metadata.name))
}

impl TablePrinter for PriorityLevelConfiguration {
    fn columns() -> Option<Vec<ColumnDef>> {
        Some(vec![
            NAME,
            col(
                "Type",
                "string",
                "`type` indicates whether this priority level is subject to limitation on request execution.",
            ),
            col(
                "NominalConcurrencyShares",
                "string",
                "`nominalConcurrencyShares` (NCS) contributes to the computation of the NominalConcurrencyLimit (NominalCL) of this level.",
            ),
            col(
                "Queues",
                "string",
                "`queues` is the number of queues for this priority level.",
            ),
            col(
                "HandSize",
                "string",
                "`handSize` is a small positive number that configures the shuffle sharding of requests into queues.",
            ),
            col(
                "QueueLengthLimit",
                "string",
                "`queueLengthLimit` is the maximum number of requests allowed to be waiting in a given queue of this priority level at a time.",
            ),
            AGE,
        ])
    }

    fn cells(&self, now: Timestamp) -> Vec<Value> {
        let spec = self.spec.clone();
        let none = || json!("<none>");
        let (mut ncs, mut queues, mut hand, mut qll) = (none(), none(), none(), none());
        if let Some(limited) = &spec.limited {
            // v1 defaults: 30 shares; 64 queues, hand size 8, queue length limit 50.
            ncs = json!(limited.nominal_concurrency_shares.unwrap_or(30));
            if let Some(q) = &limited.limit_response.queuing {
                queues = json!(q.queues.unwrap_or(64));
                hand = json!(q.hand_size.unwrap_or(8));
                qll = json!(q.queue_length_limit.unwrap_or(50));
            }
        }
        vec![
            name(&self.metadata),
            json!(spec.type_),
            ncs,
            queues,
            hand,
            qll,
            age(&self.metadata, now),
        ]
    }
}

impl TablePrinter for DeviceClass {
    fn columns() -> Option<Vec<ColumnDef>> {
        Some(vec![NAME, AGE])
    }
    fn cells(&self, now: Timestamp) -> Vec<Value> {
        vec![name(&self.metadata), age(&self.metadata, now)]
    }
}

impl TablePrinter for ResourceClaim {
    fn columns() -> Option<Vec<ColumnDef>> {
        Some(vec![
            NAME,
            col(
                "State",
                "string",
                "A summary of the current state (allocated, pending, reserved, etc.).",
            ),
            AGE,
        ])
    }
    fn cells(&self, now: Timestamp) -> Vec<Value> {
        let deleted = self.metadata.deletion_timestamp.is_some();
        let status = self.status.clone().unwrap_or_default();
        let mut states = Vec::new();
        if deleted {
            states.push("deleted");
        }
        if status.allocation.is_none() {
            if !deleted {
                states.push("pending");
            }
        } else {
            states.push("allocated");
            if status.reserved_for.is_some_and(|r| !r.is_empty()) {
                states.push("reserved");
            }
        }
        vec![
            name(&self.metadata),
            json!(states.join(",")),
            age(&self.metadata, now),
        ]
    }
}

impl TablePrinter for ResourceClaimTemplate {
    fn columns() -> Option<Vec<ColumnDef>> {
        Some(vec![NAME, AGE])
    }
    fn cells(&self, now: Timestamp) -> Vec<Value> {
        vec![name(&self.metadata), age(&self.metadata, now)]
    }
}

impl TablePrinter for ResourceSlice {
    fn columns() -> Option<Vec<ColumnDef>> {
        Some(vec![
            NAME,
            col(
                "Node",
                "string",
                "NodeName identifies the node which provides the resources in this pool.",
            ),
            col(
                "Driver",
                "string",
                "Driver identifies the DRA driver providing the capacity information.",
            ),
            col("Pool", "string", "Name is used to identify the pool."),
            AGE,
        ])
    }
    fn cells(&self, now: Timestamp) -> Vec<Value> {
        // The node name is optional; a nil pointer serializes as null.
        vec![
            name(&self.metadata),
            json!(self.spec.node_name),
            json!(self.spec.driver),
            json!(self.spec.pool.name),
            age(&self.metadata, now),
        ]
    }
}

impl TablePrinter for APIService {
    fn columns() -> Option<Vec<ColumnDef>> {
        Some(vec![
            NAME,
            col(
                "Service",
                "string",
                "The reference to the service that hosts this API endpoint.",
            ),
            col("Available", "string", "Whether this service is available."),
            AGE,
        ])
    }
    fn cells(&self, now: Timestamp) -> Vec<Value> {
        let spec = self.spec.clone().unwrap_or_default();
        let service = spec.service.as_ref().map_or("Local".to_string(), |svc| {
            format!("{}/{}", s(svc.namespace.as_ref()), s(svc.name.as_ref()))
        });
        let available = self
            .status
            .as_ref()
            .and_then(|st| st.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == "Available"));
        let available = match available {
            None => "Unknown".to_string(),
            Some(c) if c.status == "True" => c.status.clone(),
            Some(c) => match c.reason.as_deref() {
                Some(r) if !r.is_empty() => format!("{} ({r})", c.status),
                _ => c.status.clone(),
            },
        };
        vec![
            name(&self.metadata),
            json!(service),
            json!(available),
            age(&self.metadata, now),
        ]
    }
}
