//! Defaulting and validation per API group (mirrors pkg/apis/<group>/{v1/defaults.go,validation}).
//!
//! Every installed type implements [`ApiType`]. The registry calls, in order,
//! [`ApiType::default_fields`] on decoded input, then [`ApiType::validate`] on create or
//! [`ApiType::validate_update`] on update. Object metadata is validated generically by the caller
//! (`apiserver_apimachinery::names::validate_object_meta`); the methods here cover spec, status
//! and data only (plus core's extra finalizer-name rule for core/apps/batch objects).
//!
//! Besides the trait: [`strategy`] holds the pure registry-strategy steps that upstream performs
//! around validation (job selector generation, namespace finalizer/phase, pod status on create,
//! service clusterIP normalization and ipFamily defaulting), [`quantity`] parses and canonicalizes
//! resource quantities, and [`cron`] validates CronJob schedules.

pub mod apps;
pub mod batch;
pub mod corev1;
pub mod cron;
pub mod quantity;
pub mod strategy;
mod util;

pub use apiserver_apimachinery::{FieldError, FieldPath};

/// Defaulting and validation hooks for one API type.
pub trait ApiType {
    /// Applies upstream's scheme defaulting (`SetObjectDefaults_<Kind>`).
    fn default_fields(&mut self) {}

    /// Validates a new object (`Validate<Kind>` minus object metadata).
    fn validate(&self) -> Vec<FieldError> {
        Vec::new()
    }

    /// Validates an update of `old` to `self` (`Validate<Kind>Update` minus object metadata).
    fn validate_update(&self, old: &Self) -> Vec<FieldError>
    where
        Self: Sized,
    {
        let _ = old;
        self.validate()
    }

    /// Validates a write to the status subresource (`Validate<Kind>StatusUpdate`).
    fn validate_status_update(&self, old: &Self) -> Vec<FieldError>
    where
        Self: Sized,
    {
        let _ = old;
        Vec::new()
    }
}

/// Implements [`ApiType`] with all-default (no-op) methods for the listed types.
macro_rules! no_op_api_types {
    ($($ty:path),* $(,)?) => {
        $(impl ApiType for $ty {})*
    };
}

mod no_op {
    use super::ApiType;
    use k8s_openapi::api as k8s;
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiextensions_v1;
    use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1 as apiregistration_v1;

    no_op_api_types!(
        // core/v1 types without (implemented) type-specific rules
        k8s::core::v1::Binding,
        k8s::core::v1::ComponentStatus,
        k8s::core::v1::Event,
        // apps/v1
        // (all implemented in crate::apps)
        // autoscaling
        k8s::autoscaling::v1::HorizontalPodAutoscaler,
        k8s::autoscaling::v1::Scale,
        k8s::autoscaling::v2::HorizontalPodAutoscaler,
        // rbac/v1
        k8s::rbac::v1::ClusterRole,
        k8s::rbac::v1::ClusterRoleBinding,
        k8s::rbac::v1::Role,
        k8s::rbac::v1::RoleBinding,
        // coordination/v1
        k8s::coordination::v1::Lease,
        // discovery/v1
        k8s::discovery::v1::EndpointSlice,
        // networking/v1
        k8s::networking::v1::Ingress,
        k8s::networking::v1::IngressClass,
        k8s::networking::v1::IPAddress,
        k8s::networking::v1::NetworkPolicy,
        k8s::networking::v1::ServiceCIDR,
        // policy/v1
        k8s::policy::v1::Eviction,
        k8s::policy::v1::PodDisruptionBudget,
        // storage/v1
        k8s::storage::v1::CSIDriver,
        k8s::storage::v1::CSINode,
        k8s::storage::v1::CSIStorageCapacity,
        k8s::storage::v1::StorageClass,
        k8s::storage::v1::VolumeAttachment,
        k8s::storage::v1::VolumeAttributesClass,
        // scheduling/v1
        k8s::scheduling::v1::PriorityClass,
        // node/v1
        k8s::node::v1::RuntimeClass,
        // certificates/v1
        k8s::certificates::v1::CertificateSigningRequest,
        k8s::certificates::v1::ClusterTrustBundle,
        k8s::certificates::v1::PodCertificateRequest,
        // events/v1
        k8s::events::v1::Event,
        // admissionregistration/v1
        k8s::admissionregistration::v1::MutatingAdmissionPolicy,
        k8s::admissionregistration::v1::MutatingAdmissionPolicyBinding,
        k8s::admissionregistration::v1::MutatingWebhookConfiguration,
        k8s::admissionregistration::v1::ValidatingAdmissionPolicy,
        k8s::admissionregistration::v1::ValidatingAdmissionPolicyBinding,
        k8s::admissionregistration::v1::ValidatingWebhookConfiguration,
        // flowcontrol/v1
        k8s::flowcontrol::v1::FlowSchema,
        k8s::flowcontrol::v1::PriorityLevelConfiguration,
        // resource.k8s.io/v1
        k8s::resource::v1::DeviceClass,
        k8s::resource::v1::DeviceTaintRule,
        k8s::resource::v1::ResourceClaim,
        k8s::resource::v1::ResourceClaimTemplate,
        k8s::resource::v1::ResourceSlice,
        // storagemigration/v1
        k8s::storagemigration::v1::StorageVersionMigration,
        // authentication/v1 and authorization/v1 review types
        k8s::authentication::v1::SelfSubjectReview,
        k8s::authentication::v1::TokenRequest,
        k8s::authentication::v1::TokenReview,
        k8s::authorization::v1::LocalSubjectAccessReview,
        k8s::authorization::v1::SelfSubjectAccessReview,
        k8s::authorization::v1::SelfSubjectRulesReview,
        k8s::authorization::v1::SubjectAccessReview,
        // apiextensions.k8s.io/v1 and apiregistration.k8s.io/v1
        apiextensions_v1::CustomResourceDefinition,
        apiregistration_v1::APIService,
    );
}
