//! Shared fixtures: resource descriptions as the server registers them, and a builder with
//! a representative set of resources.

#![allow(dead_code)]

use apiserver_apimachinery::resource::ALL_VERBS;
use apiserver_apimachinery::{ResourceInfo, Scope};
use apiserver_openapi::OpenApiBuilder;
use k8s_openapi::api;

pub fn info(
    group: &'static str,
    version: &'static str,
    resource: &'static str,
    kind: &'static str,
    scope: Scope,
    subresources: Vec<&'static str>,
) -> ResourceInfo {
    ResourceInfo {
        group,
        version,
        resource,
        singular: "",
        kind,
        list_kind: format!("{kind}List"),
        scope,
        short_names: &[],
        categories: &[],
        verbs: ALL_VERBS,
        subresources,
        etcd_prefix: resource,
    }
}

pub fn pods() -> ResourceInfo {
    info(
        "",
        "v1",
        "pods",
        "Pod",
        Scope::Namespaced,
        vec![
            "status",
            "log",
            "exec",
            "attach",
            "portforward",
            "proxy",
            "binding",
            "eviction",
            "ephemeralcontainers",
            "resize",
        ],
    )
}
pub fn deployments() -> ResourceInfo {
    info(
        "apps",
        "v1",
        "deployments",
        "Deployment",
        Scope::Namespaced,
        vec!["status", "scale"],
    )
}
pub fn configmaps() -> ResourceInfo {
    info(
        "",
        "v1",
        "configmaps",
        "ConfigMap",
        Scope::Namespaced,
        vec![],
    )
}
pub fn namespaces() -> ResourceInfo {
    let mut i = info(
        "",
        "v1",
        "namespaces",
        "Namespace",
        Scope::Cluster,
        vec!["status", "finalize"],
    );
    i.verbs = &[
        "create", "delete", "get", "list", "patch", "update", "watch",
    ];
    i
}

/// Pod, Deployment, ConfigMap, Namespace.
pub fn small() -> OpenApiBuilder {
    let mut b = OpenApiBuilder::new();
    b.add_resource::<api::core::v1::Pod>(&pods());
    b.add_resource::<api::apps::v1::Deployment>(&deployments());
    b.add_resource::<api::core::v1::ConfigMap>(&configmaps());
    b.add_resource::<api::core::v1::Namespace>(&namespaces());
    b
}

/// Roughly what a full server registers.
pub fn large() -> OpenApiBuilder {
    use Scope::{Cluster, Namespaced};
    let mut b = small();
    macro_rules! add {
        ($t:ty, $g:expr, $v:expr, $r:expr, $k:expr, $s:expr, $subs:expr) => {
            b.add_resource::<$t>(&info($g, $v, $r, $k, $s, $subs));
        };
    }
    add!(
        api::core::v1::Service,
        "",
        "v1",
        "services",
        "Service",
        Namespaced,
        vec!["status", "proxy"]
    );
    add!(
        api::core::v1::Secret,
        "",
        "v1",
        "secrets",
        "Secret",
        Namespaced,
        vec![]
    );
    add!(
        api::core::v1::ServiceAccount,
        "",
        "v1",
        "serviceaccounts",
        "ServiceAccount",
        Namespaced,
        vec!["token"]
    );
    add!(
        api::core::v1::Node,
        "",
        "v1",
        "nodes",
        "Node",
        Cluster,
        vec!["status", "proxy"]
    );
    add!(
        api::core::v1::Event,
        "",
        "v1",
        "events",
        "Event",
        Namespaced,
        vec![]
    );
    add!(
        api::core::v1::Endpoints,
        "",
        "v1",
        "endpoints",
        "Endpoints",
        Namespaced,
        vec![]
    );
    add!(
        api::core::v1::PersistentVolume,
        "",
        "v1",
        "persistentvolumes",
        "PersistentVolume",
        Cluster,
        vec!["status"]
    );
    add!(
        api::core::v1::PersistentVolumeClaim,
        "",
        "v1",
        "persistentvolumeclaims",
        "PersistentVolumeClaim",
        Namespaced,
        vec!["status"]
    );
    add!(
        api::core::v1::ReplicationController,
        "",
        "v1",
        "replicationcontrollers",
        "ReplicationController",
        Namespaced,
        vec!["status", "scale"]
    );
    add!(
        api::core::v1::ResourceQuota,
        "",
        "v1",
        "resourcequotas",
        "ResourceQuota",
        Namespaced,
        vec!["status"]
    );
    add!(
        api::core::v1::LimitRange,
        "",
        "v1",
        "limitranges",
        "LimitRange",
        Namespaced,
        vec![]
    );
    add!(
        api::core::v1::PodTemplate,
        "",
        "v1",
        "podtemplates",
        "PodTemplate",
        Namespaced,
        vec![]
    );
    add!(
        api::apps::v1::StatefulSet,
        "apps",
        "v1",
        "statefulsets",
        "StatefulSet",
        Namespaced,
        vec!["status", "scale"]
    );
    add!(
        api::apps::v1::DaemonSet,
        "apps",
        "v1",
        "daemonsets",
        "DaemonSet",
        Namespaced,
        vec!["status"]
    );
    add!(
        api::apps::v1::ReplicaSet,
        "apps",
        "v1",
        "replicasets",
        "ReplicaSet",
        Namespaced,
        vec!["status", "scale"]
    );
    add!(
        api::apps::v1::ControllerRevision,
        "apps",
        "v1",
        "controllerrevisions",
        "ControllerRevision",
        Namespaced,
        vec![]
    );
    add!(
        api::batch::v1::Job,
        "batch",
        "v1",
        "jobs",
        "Job",
        Namespaced,
        vec!["status"]
    );
    add!(
        api::batch::v1::CronJob,
        "batch",
        "v1",
        "cronjobs",
        "CronJob",
        Namespaced,
        vec!["status"]
    );
    add!(
        api::rbac::v1::Role,
        "rbac.authorization.k8s.io",
        "v1",
        "roles",
        "Role",
        Namespaced,
        vec![]
    );
    add!(
        api::rbac::v1::RoleBinding,
        "rbac.authorization.k8s.io",
        "v1",
        "rolebindings",
        "RoleBinding",
        Namespaced,
        vec![]
    );
    add!(
        api::rbac::v1::ClusterRole,
        "rbac.authorization.k8s.io",
        "v1",
        "clusterroles",
        "ClusterRole",
        Cluster,
        vec![]
    );
    add!(
        api::rbac::v1::ClusterRoleBinding,
        "rbac.authorization.k8s.io",
        "v1",
        "clusterrolebindings",
        "ClusterRoleBinding",
        Cluster,
        vec![]
    );
    add!(
        api::networking::v1::Ingress,
        "networking.k8s.io",
        "v1",
        "ingresses",
        "Ingress",
        Namespaced,
        vec!["status"]
    );
    add!(
        api::networking::v1::NetworkPolicy,
        "networking.k8s.io",
        "v1",
        "networkpolicies",
        "NetworkPolicy",
        Namespaced,
        vec![]
    );
    add!(
        api::policy::v1::PodDisruptionBudget,
        "policy",
        "v1",
        "poddisruptionbudgets",
        "PodDisruptionBudget",
        Namespaced,
        vec!["status"]
    );
    add!(
        api::coordination::v1::Lease,
        "coordination.k8s.io",
        "v1",
        "leases",
        "Lease",
        Namespaced,
        vec![]
    );
    add!(
        api::discovery::v1::EndpointSlice,
        "discovery.k8s.io",
        "v1",
        "endpointslices",
        "EndpointSlice",
        Namespaced,
        vec![]
    );
    add!(
        api::storage::v1::StorageClass,
        "storage.k8s.io",
        "v1",
        "storageclasses",
        "StorageClass",
        Cluster,
        vec![]
    );
    add!(
        api::scheduling::v1::PriorityClass,
        "scheduling.k8s.io",
        "v1",
        "priorityclasses",
        "PriorityClass",
        Cluster,
        vec![]
    );
    add!(
        api::autoscaling::v2::HorizontalPodAutoscaler,
        "autoscaling",
        "v2",
        "horizontalpodautoscalers",
        "HorizontalPodAutoscaler",
        Namespaced,
        vec!["status"]
    );
    add!(
        api::certificates::v1::CertificateSigningRequest,
        "certificates.k8s.io",
        "v1",
        "certificatesigningrequests",
        "CertificateSigningRequest",
        Cluster,
        vec!["status", "approval"]
    );
    add!(
        api::admissionregistration::v1::ValidatingWebhookConfiguration,
        "admissionregistration.k8s.io",
        "v1",
        "validatingwebhookconfigurations",
        "ValidatingWebhookConfiguration",
        Cluster,
        vec![]
    );
    add!(
        api::flowcontrol::v1::FlowSchema,
        "flowcontrol.apiserver.k8s.io",
        "v1",
        "flowschemas",
        "FlowSchema",
        Cluster,
        vec!["status"]
    );
    add!(k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition, "apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", Cluster, vec!["status"]);
    let mut review = info(
        "authentication.k8s.io",
        "v1",
        "tokenreviews",
        "TokenReview",
        Cluster,
        vec![],
    );
    review.verbs = apiserver_apimachinery::resource::CREATE_ONLY;
    b.add_resource::<api::authentication::v1::TokenReview>(&review);
    b
}
