//! The two kinds the replica controller drives, ReplicaSet and ReplicationController, behind one
//! trait (upstream shares pkg/controller/replicaset between them through a conversion layer,
//! pkg/controller/replication/conversion.go).

use crate::controller_utils::{selector_from_map, selector_of};
use apiserver_apimachinery::selector::LabelSelector as Selector;
use component_base::informer::Informable;
use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetCondition, ReplicaSetStatus};
use k8s_openapi::api::core::v1::{
    PodTemplateSpec, ReplicationController, ReplicationControllerCondition,
    ReplicationControllerStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::Resource;
use serde::Serialize;

/// A status condition of either kind.
#[derive(Clone, Debug, PartialEq)]
pub struct OwnerCondition {
    pub type_: String,
    pub status: String,
    pub reason: Option<String>,
    pub message: Option<String>,
    pub last_transition_time: Option<Time>,
}

/// The status both kinds share, with absent counters read as zero.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct OwnerStatus {
    pub replicas: i32,
    pub fully_labeled_replicas: i32,
    pub ready_replicas: i32,
    pub available_replicas: i32,
    /// Only ReplicaSets report it (feature DeploymentReplicaSetTerminatingReplicas, beta in
    /// 1.35 and on by default).
    pub terminating_replicas: Option<i32>,
    pub observed_generation: i64,
    pub conditions: Vec<OwnerCondition>,
}

fn nz(v: i32) -> Option<i32> {
    (v != 0).then_some(v)
}

/// What the replica controller needs from the object it drives.
pub trait ReplicaOwner:
    Informable + Serialize + Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
{
    /// The reporting controller name (`replicaset-controller`).
    const CONTROLLER_NAME: &'static str;
    /// Whether `status.terminatingReplicas` exists on this kind.
    const REPORTS_TERMINATING: bool;
    fn replicas(&self) -> i32;
    fn min_ready_seconds(&self) -> i32;
    /// `None` selects nothing.
    fn selector(&self) -> Option<Selector>;
    fn template(&self) -> Option<&PodTemplateSpec>;
    fn owner_status(&self) -> OwnerStatus;
    fn set_owner_status(&mut self, s: OwnerStatus);
}

impl ReplicaOwner for ReplicaSet {
    const CONTROLLER_NAME: &'static str = "replicaset-controller";
    const REPORTS_TERMINATING: bool = true;

    fn replicas(&self) -> i32 {
        self.spec.replicas.unwrap_or(1)
    }
    fn min_ready_seconds(&self) -> i32 {
        self.spec.min_ready_seconds.unwrap_or(0)
    }
    fn selector(&self) -> Option<Selector> {
        selector_of(Some(&self.spec.selector))
    }
    fn template(&self) -> Option<&PodTemplateSpec> {
        self.spec.template.as_ref()
    }
    fn owner_status(&self) -> OwnerStatus {
        let Some(s) = &self.status else {
            return OwnerStatus::default();
        };
        OwnerStatus {
            replicas: s.replicas,
            fully_labeled_replicas: s.fully_labeled_replicas.unwrap_or(0),
            ready_replicas: s.ready_replicas.unwrap_or(0),
            available_replicas: s.available_replicas.unwrap_or(0),
            terminating_replicas: s.terminating_replicas,
            observed_generation: s.observed_generation.unwrap_or(0),
            conditions: s
                .conditions
                .iter()
                .flatten()
                .map(|c| OwnerCondition {
                    type_: c.type_.clone().unwrap_or_default(),
                    status: c.status.clone().unwrap_or_default(),
                    reason: c.reason.clone(),
                    message: c.message.clone(),
                    last_transition_time: c.last_transition_time.clone(),
                })
                .collect(),
        }
    }
    fn set_owner_status(&mut self, s: OwnerStatus) {
        self.status = Some(ReplicaSetStatus {
            replicas: s.replicas,
            fully_labeled_replicas: nz(s.fully_labeled_replicas),
            ready_replicas: nz(s.ready_replicas),
            available_replicas: nz(s.available_replicas),
            terminating_replicas: s.terminating_replicas,
            observed_generation: (s.observed_generation != 0).then_some(s.observed_generation),
            conditions: (!s.conditions.is_empty()).then(|| {
                s.conditions
                    .into_iter()
                    .map(|c| ReplicaSetCondition {
                        type_: Some(c.type_),
                        status: Some(c.status),
                        reason: c.reason,
                        message: c.message,
                        last_transition_time: c.last_transition_time,
                    })
                    .collect()
            }),
        });
    }
}

impl ReplicaOwner for ReplicationController {
    const CONTROLLER_NAME: &'static str = "replication-controller";
    const REPORTS_TERMINATING: bool = false;

    fn replicas(&self) -> i32 {
        self.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
    }
    fn min_ready_seconds(&self) -> i32 {
        self.spec
            .as_ref()
            .and_then(|s| s.min_ready_seconds)
            .unwrap_or(0)
    }
    fn selector(&self) -> Option<Selector> {
        selector_from_map(self.spec.as_ref()?.selector.as_ref())
    }
    fn template(&self) -> Option<&PodTemplateSpec> {
        self.spec.as_ref()?.template.as_ref()
    }
    fn owner_status(&self) -> OwnerStatus {
        let Some(s) = &self.status else {
            return OwnerStatus::default();
        };
        OwnerStatus {
            replicas: s.replicas,
            fully_labeled_replicas: s.fully_labeled_replicas.unwrap_or(0),
            ready_replicas: s.ready_replicas.unwrap_or(0),
            available_replicas: s.available_replicas.unwrap_or(0),
            terminating_replicas: None,
            observed_generation: s.observed_generation.unwrap_or(0),
            conditions: s
                .conditions
                .iter()
                .flatten()
                .map(|c| OwnerCondition {
                    type_: c.type_.clone(),
                    status: c.status.clone(),
                    reason: c.reason.clone(),
                    message: c.message.clone(),
                    last_transition_time: c.last_transition_time.clone(),
                })
                .collect(),
        }
    }
    fn set_owner_status(&mut self, s: OwnerStatus) {
        self.status = Some(ReplicationControllerStatus {
            replicas: s.replicas,
            fully_labeled_replicas: nz(s.fully_labeled_replicas),
            ready_replicas: nz(s.ready_replicas),
            available_replicas: nz(s.available_replicas),
            observed_generation: (s.observed_generation != 0).then_some(s.observed_generation),
            conditions: (!s.conditions.is_empty()).then(|| {
                s.conditions
                    .into_iter()
                    .map(|c| ReplicationControllerCondition {
                        type_: c.type_,
                        status: c.status,
                        reason: c.reason,
                        message: c.message,
                        last_transition_time: c.last_transition_time,
                    })
                    .collect()
            }),
        });
    }
}
