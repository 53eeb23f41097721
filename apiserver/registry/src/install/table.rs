//! The rows of the install table: one per served resource.

use super::*;
use crate::lifecycle::Lifecycle;
use crate::reviews;
use crate::serviceaccount::authenticator::{Getter, TokenAuthenticator};
use crate::serviceaccount::jwt::{JwtAuthenticator, TokenGenerator};
use crate::serviceaccount::token::TokenRest;
use crate::strategies::{
    events::EventStrategy, jobs::JobStrategy, namespaces::NamespaceStrategy, nodes::NodeStrategy,
    pods::PodStrategy, secrets::SecretStrategy, services::ServiceStrategy,
};
use crate::subresources::{BindingRest, FinalizeRest};
use k8s_openapi::api as a;

/// Builds every store and endpoint.
pub fn install(mut cfg: Config) -> Result<Installed, String> {
    let tokens = cfg.service_accounts.take();
    let service_account_admission = cfg.service_account_admission;
    let svc_strategy = Arc::new(
        ServiceStrategy::new(&cfg.service_cidr)
            .ok_or_else(|| format!("invalid --service-cluster-ip-range {:?}", cfg.service_cidr))?,
    );
    let kubernetes_service_ip = svc_strategy.first_ip();
    let event_ttl = cfg.event_ttl_seconds;
    let mut b = Builder {
        cfg,
        lifecycle: None,
        endpoints: HashMap::new(),
        resources: Vec::new(),
        openapi: OpenApiBuilder::new().with_version("v1.37.0"),
    };
    b.openapi = std::mem::take(&mut b.openapi).with_field_meta(crate::openapi_meta::field_meta);

    // core/v1
    let namespaces = b.store::<a::core::v1::Namespace>(
        row(
            "",
            "v1",
            "namespaces",
            "Namespace",
            CL,
            &["ns"],
            "namespaces",
        )
        .subs(&["status", "finalize"]),
        Arc::new(NamespaceStrategy),
    );
    b.endpoints.insert(
        key(&namespaces.info, "finalize"),
        Arc::new(FinalizeRest {
            namespaces: namespaces.clone(),
        }),
    );
    b.lifecycle = Some(Arc::new(Lifecycle {
        namespaces: namespaces.clone(),
    }));
    let priority_classes = b.add::<a::scheduling::v1::PriorityClass>(row(
        "scheduling.k8s.io",
        "v1",
        "priorityclasses",
        "PriorityClass",
        CL,
        &["pc"],
        "priorityclasses",
    ));
    let pod_strategy = Arc::new(PodStrategy::new(
        priority_classes.clone(),
        service_account_admission,
    ));
    let pods = b.store::<a::core::v1::Pod>(
        row("", "v1", "pods", "Pod", NS, &["po"], "pods")
            .cat(ALL)
            // log, exec, attach and portforward are served by the apiserver's kubelet proxy.
            .subs(&["attach", "binding", "exec", "log", "portforward", "status"]),
        pod_strategy.clone(),
    );
    let binding_info = row("", "v1", "bindings", "Binding", NS, &[], "bindings").info(CREATE_ONLY);
    let binding: Arc<dyn Rest> = Arc::new(BindingRest {
        pods: pods.clone(),
        info: binding_info.clone(),
    });
    b.endpoints
        .insert(key(&pods.info, "binding"), binding.clone());
    b.endpoints.insert(key(&binding_info, ""), binding);
    b.openapi
        .add_resource::<a::core::v1::Binding>(&binding_info);
    b.resources.push(binding_info);
    let services = b.store::<a::core::v1::Service>(
        row(
            "",
            "v1",
            "services",
            "Service",
            NS,
            &["svc"],
            "services/specs",
        )
        .cat(ALL)
        .subs(&["status"]),
        svc_strategy.clone(),
    );
    svc_strategy.attach(services.cache.clone());
    b.add::<a::core::v1::PodTemplate>(row(
        "",
        "v1",
        "podtemplates",
        "PodTemplate",
        NS,
        &[],
        "podtemplates",
    ));
    b.add::<a::core::v1::ReplicationController>(
        row(
            "",
            "v1",
            "replicationcontrollers",
            "ReplicationController",
            NS,
            &["rc"],
            "controllers",
        )
        .cat(ALL)
        .subs(&["status", "scale"]),
    );
    b.add::<a::core::v1::Endpoints>(row(
        "",
        "v1",
        "endpoints",
        "Endpoints",
        NS,
        &["ep"],
        "services/endpoints",
    ));
    let nodes = b.store::<a::core::v1::Node>(
        // proxy is served by the apiserver's kubelet proxy.
        row("", "v1", "nodes", "Node", CL, &["no"], "minions").subs(&["proxy", "status"]),
        Arc::new(NodeStrategy),
    );
    b.add::<a::core::v1::ConfigMap>(row(
        "",
        "v1",
        "configmaps",
        "ConfigMap",
        NS,
        &["cm"],
        "configmaps",
    ));
    let secrets = b.store::<a::core::v1::Secret>(
        row("", "v1", "secrets", "Secret", NS, &[], "secrets"),
        Arc::new(SecretStrategy),
    );
    // serviceaccounts/token is served only with a token signer, as upstream.
    let service_accounts = b.add::<a::core::v1::ServiceAccount>(
        row(
            "",
            "v1",
            "serviceaccounts",
            "ServiceAccount",
            NS,
            &["sa"],
            "serviceaccounts",
        )
        .subs(if tokens.is_some() { &["token"] } else { &[] }),
    );
    pod_strategy.attach_service_accounts(service_accounts.clone());
    let getter = Getter {
        service_accounts: service_accounts.clone(),
        pods: pods.clone(),
        secrets,
        nodes,
    };
    let token_authenticator = tokens.map(|t| {
        b.endpoints.insert(
            key(&service_accounts.info, "token"),
            Arc::new(TokenRest {
                info: service_accounts.info.clone(),
                getter: getter.clone(),
                issuer: TokenGenerator {
                    issuer: t.issuers.first().cloned().unwrap_or_default(),
                    key: t.signing_key,
                },
                audiences: t.api_audiences.clone(),
                max_expiration_seconds: t.max_expiration_seconds,
                extend_expiration: t.extend_expiration,
            }),
        );
        Arc::new(TokenAuthenticator {
            jwt: JwtAuthenticator {
                issuers: t.issuers.into_iter().collect(),
                keys: t.verifying_keys,
                implicit_audiences: t.api_audiences,
            },
            getter,
        })
    });
    b.add::<a::core::v1::PersistentVolume>(
        row(
            "",
            "v1",
            "persistentvolumes",
            "PersistentVolume",
            CL,
            &["pv"],
            "persistentvolumes",
        )
        .subs(&["status"]),
    );
    b.add::<a::core::v1::PersistentVolumeClaim>(
        row(
            "",
            "v1",
            "persistentvolumeclaims",
            "PersistentVolumeClaim",
            NS,
            &["pvc"],
            "persistentvolumeclaims",
        )
        .subs(&["status"]),
    );
    let events = b.store::<a::core::v1::Event>(
        row("", "v1", "events", "Event", NS, &["ev"], "events"),
        Arc::new(EventStrategy {
            ttl_seconds: event_ttl,
        }),
    );
    b.add::<a::core::v1::LimitRange>(row(
        "",
        "v1",
        "limitranges",
        "LimitRange",
        NS,
        &["limits"],
        "limitranges",
    ));
    b.add::<a::core::v1::ResourceQuota>(
        row(
            "",
            "v1",
            "resourcequotas",
            "ResourceQuota",
            NS,
            &["quota"],
            "resourcequotas",
        )
        .subs(&["status"]),
    );

    // apps/v1
    b.add::<a::apps::v1::Deployment>(
        row(
            "apps",
            "v1",
            "deployments",
            "Deployment",
            NS,
            &["deploy"],
            "deployments",
        )
        .cat(ALL)
        .subs(&["status", "scale"]),
    );
    b.add::<a::apps::v1::ReplicaSet>(
        row(
            "apps",
            "v1",
            "replicasets",
            "ReplicaSet",
            NS,
            &["rs"],
            "replicasets",
        )
        .cat(ALL)
        .subs(&["status", "scale"]),
    );
    b.add::<a::apps::v1::StatefulSet>(
        row(
            "apps",
            "v1",
            "statefulsets",
            "StatefulSet",
            NS,
            &["sts"],
            "statefulsets",
        )
        .cat(ALL)
        .subs(&["status", "scale"]),
    );
    b.add::<a::apps::v1::DaemonSet>(
        row(
            "apps",
            "v1",
            "daemonsets",
            "DaemonSet",
            NS,
            &["ds"],
            "daemonsets",
        )
        .cat(ALL)
        .subs(&["status"]),
    );
    b.add::<a::apps::v1::ControllerRevision>(row(
        "apps",
        "v1",
        "controllerrevisions",
        "ControllerRevision",
        NS,
        &[],
        "controllerrevisions",
    ));

    // batch/v1
    b.store::<a::batch::v1::Job>(
        row("batch", "v1", "jobs", "Job", NS, &[], "jobs")
            .cat(ALL)
            .subs(&["status"]),
        Arc::new(JobStrategy),
    );
    b.add::<a::batch::v1::CronJob>(
        row(
            "batch",
            "v1",
            "cronjobs",
            "CronJob",
            NS,
            &["cj"],
            "cronjobs",
        )
        .cat(ALL)
        .subs(&["status"]),
    );

    // autoscaling/v2 (stored) and v1 (converted)
    let hpa = b.add::<a::autoscaling::v2::HorizontalPodAutoscaler>(
        row(
            "autoscaling",
            "v2",
            "horizontalpodautoscalers",
            "HorizontalPodAutoscaler",
            NS,
            &["hpa"],
            "horizontalpodautoscalers",
        )
        .cat(ALL)
        .subs(&["status"]),
    );
    b.versioned::<_, a::autoscaling::v1::HorizontalPodAutoscaler>(
        row(
            "autoscaling",
            "v1",
            "horizontalpodautoscalers",
            "HorizontalPodAutoscaler",
            NS,
            &["hpa"],
            "horizontalpodautoscalers",
        )
        .cat(ALL),
        hpa,
        crate::conversions::hpa_v2_to_v1,
        crate::conversions::hpa_v1_to_v2,
        crate::versioned::metadata_field_labels,
    );
    b.versioned::<_, a::events::v1::Event>(
        row(
            "events.k8s.io",
            "v1",
            "events",
            "Event",
            NS,
            &["ev"],
            "events",
        ),
        events,
        crate::conversions::event_to_events_v1,
        crate::conversions::events_v1_to_event,
        crate::conversions::events_v1_field_labels,
    );

    // rbac.authorization.k8s.io/v1
    b.add::<a::rbac::v1::Role>(row(
        "rbac.authorization.k8s.io",
        "v1",
        "roles",
        "Role",
        NS,
        &[],
        "roles",
    ));
    b.add::<a::rbac::v1::RoleBinding>(row(
        "rbac.authorization.k8s.io",
        "v1",
        "rolebindings",
        "RoleBinding",
        NS,
        &[],
        "rolebindings",
    ));
    b.add::<a::rbac::v1::ClusterRole>(row(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterroles",
        "ClusterRole",
        CL,
        &[],
        "clusterroles",
    ));
    b.add::<a::rbac::v1::ClusterRoleBinding>(row(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterrolebindings",
        "ClusterRoleBinding",
        CL,
        &[],
        "clusterrolebindings",
    ));

    // coordination, discovery, networking, policy
    b.add::<a::coordination::v1::Lease>(row(
        "coordination.k8s.io",
        "v1",
        "leases",
        "Lease",
        NS,
        &[],
        "leases",
    ));
    b.add::<a::discovery::v1::EndpointSlice>(row(
        "discovery.k8s.io",
        "v1",
        "endpointslices",
        "EndpointSlice",
        NS,
        &[],
        "endpointslices",
    ));
    b.add::<a::networking::v1::Ingress>(
        row(
            "networking.k8s.io",
            "v1",
            "ingresses",
            "Ingress",
            NS,
            &["ing"],
            "ingress",
        )
        .subs(&["status"]),
    );
    b.add::<a::networking::v1::IngressClass>(row(
        "networking.k8s.io",
        "v1",
        "ingressclasses",
        "IngressClass",
        CL,
        &[],
        "ingressclasses",
    ));
    b.add::<a::networking::v1::NetworkPolicy>(row(
        "networking.k8s.io",
        "v1",
        "networkpolicies",
        "NetworkPolicy",
        NS,
        &["netpol"],
        "networkpolicies",
    ));
    b.add::<a::networking::v1::IPAddress>(row(
        "networking.k8s.io",
        "v1",
        "ipaddresses",
        "IPAddress",
        CL,
        &["ip"],
        "ipaddresses",
    ));
    b.add::<a::networking::v1::ServiceCIDR>(
        row(
            "networking.k8s.io",
            "v1",
            "servicecidrs",
            "ServiceCIDR",
            CL,
            &[],
            "servicecidrs",
        )
        .subs(&["status"]),
    );
    b.add::<a::policy::v1::PodDisruptionBudget>(
        row(
            "policy",
            "v1",
            "poddisruptionbudgets",
            "PodDisruptionBudget",
            NS,
            &["pdb"],
            "poddisruptionbudgets",
        )
        .subs(&["status"]),
    );

    // storage, scheduling, node, certificates
    b.add::<a::storage::v1::StorageClass>(row(
        "storage.k8s.io",
        "v1",
        "storageclasses",
        "StorageClass",
        CL,
        &["sc"],
        "storageclasses",
    ));
    b.add::<a::storage::v1::CSIDriver>(row(
        "storage.k8s.io",
        "v1",
        "csidrivers",
        "CSIDriver",
        CL,
        &[],
        "csidrivers",
    ));
    b.add::<a::storage::v1::CSINode>(row(
        "storage.k8s.io",
        "v1",
        "csinodes",
        "CSINode",
        CL,
        &[],
        "csinodes",
    ));
    b.add::<a::storage::v1::CSIStorageCapacity>(row(
        "storage.k8s.io",
        "v1",
        "csistoragecapacities",
        "CSIStorageCapacity",
        NS,
        &[],
        "csistoragecapacities",
    ));
    b.add::<a::storage::v1::VolumeAttachment>(
        row(
            "storage.k8s.io",
            "v1",
            "volumeattachments",
            "VolumeAttachment",
            CL,
            &[],
            "volumeattachments",
        )
        .subs(&["status"]),
    );
    b.add::<a::storage::v1::VolumeAttributesClass>(row(
        "storage.k8s.io",
        "v1",
        "volumeattributesclasses",
        "VolumeAttributesClass",
        CL,
        &["vac"],
        "volumeattributesclasses",
    ));
    b.add::<a::node::v1::RuntimeClass>(row(
        "node.k8s.io",
        "v1",
        "runtimeclasses",
        "RuntimeClass",
        CL,
        &[],
        "runtimeclasses",
    ));
    b.add::<a::certificates::v1::CertificateSigningRequest>(
        row(
            "certificates.k8s.io",
            "v1",
            "certificatesigningrequests",
            "CertificateSigningRequest",
            CL,
            &["csr"],
            "certificatesigningrequests",
        )
        .subs(&["status"]),
    );

    // admissionregistration, flowcontrol
    b.add::<a::admissionregistration::v1::ValidatingWebhookConfiguration>(
        row(
            "admissionregistration.k8s.io",
            "v1",
            "validatingwebhookconfigurations",
            "ValidatingWebhookConfiguration",
            CL,
            &[],
            "validatingwebhookconfigurations",
        )
        .cat(EXT),
    );
    b.add::<a::admissionregistration::v1::MutatingWebhookConfiguration>(
        row(
            "admissionregistration.k8s.io",
            "v1",
            "mutatingwebhookconfigurations",
            "MutatingWebhookConfiguration",
            CL,
            &[],
            "mutatingwebhookconfigurations",
        )
        .cat(EXT),
    );
    b.add::<a::admissionregistration::v1::ValidatingAdmissionPolicy>(
        row(
            "admissionregistration.k8s.io",
            "v1",
            "validatingadmissionpolicies",
            "ValidatingAdmissionPolicy",
            CL,
            &[],
            "validatingadmissionpolicies",
        )
        .cat(EXT)
        .subs(&["status"]),
    );
    b.add::<a::admissionregistration::v1::ValidatingAdmissionPolicyBinding>(
        row(
            "admissionregistration.k8s.io",
            "v1",
            "validatingadmissionpolicybindings",
            "ValidatingAdmissionPolicyBinding",
            CL,
            &[],
            "validatingadmissionpolicybindings",
        )
        .cat(EXT),
    );
    b.add::<a::flowcontrol::v1::FlowSchema>(
        row(
            "flowcontrol.apiserver.k8s.io",
            "v1",
            "flowschemas",
            "FlowSchema",
            CL,
            &[],
            "flowschemas",
        )
        .subs(&["status"]),
    );
    b.add::<a::flowcontrol::v1::PriorityLevelConfiguration>(
        row(
            "flowcontrol.apiserver.k8s.io",
            "v1",
            "prioritylevelconfigurations",
            "PriorityLevelConfiguration",
            CL,
            &[],
            "prioritylevelconfigurations",
        )
        .subs(&["status"]),
    );

    // apiextensions, apiregistration
    let crds = b.store::<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition>(
        row("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", CL, &["crd", "crds"], "apiextensions.k8s.io/customresourcedefinitions").cat(EXT).subs(&["status"]),
        Arc::new(crate::strategies::crds::CrdStrategy),
    );
    b.add::<k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService>(
        row(
            "apiregistration.k8s.io",
            "v1",
            "apiservices",
            "APIService",
            CL,
            &[],
            "apiregistration.k8s.io/apiservices",
        )
        .cat(EXT)
        .subs(&["status"]),
    );

    // resource.k8s.io/v1
    b.add::<a::resource::v1::DeviceClass>(row(
        "resource.k8s.io",
        "v1",
        "deviceclasses",
        "DeviceClass",
        CL,
        &[],
        "deviceclasses",
    ));
    b.add::<a::resource::v1::ResourceClaim>(
        row(
            "resource.k8s.io",
            "v1",
            "resourceclaims",
            "ResourceClaim",
            NS,
            &[],
            "resourceclaims",
        )
        .subs(&["status"]),
    );
    b.add::<a::resource::v1::ResourceClaimTemplate>(row(
        "resource.k8s.io",
        "v1",
        "resourceclaimtemplates",
        "ResourceClaimTemplate",
        NS,
        &[],
        "resourceclaimtemplates",
    ));
    b.add::<a::resource::v1::ResourceSlice>(row(
        "resource.k8s.io",
        "v1",
        "resourceslices",
        "ResourceSlice",
        CL,
        &[],
        "resourceslices",
    ));

    // reviews
    let authenticator = token_authenticator.clone();
    b.create_only::<a::authentication::v1::TokenReview>(
        row(
            "authentication.k8s.io",
            "v1",
            "tokenreviews",
            "TokenReview",
            CL,
            &[],
            "",
        ),
        |info| {
            Arc::new(reviews::TokenReviewRest {
                info,
                authenticator,
            })
        },
    );
    b.review::<a::authentication::v1::SelfSubjectReview>(
        row(
            "authentication.k8s.io",
            "v1",
            "selfsubjectreviews",
            "SelfSubjectReview",
            CL,
            &[],
            "",
        ),
        reviews::self_subject_review,
    );
    b.review::<a::authorization::v1::SubjectAccessReview>(
        row(
            "authorization.k8s.io",
            "v1",
            "subjectaccessreviews",
            "SubjectAccessReview",
            CL,
            &[],
            "",
        ),
        reviews::subject_access_review,
    );
    b.review::<a::authorization::v1::SelfSubjectAccessReview>(
        row(
            "authorization.k8s.io",
            "v1",
            "selfsubjectaccessreviews",
            "SelfSubjectAccessReview",
            CL,
            &[],
            "",
        ),
        reviews::self_subject_access_review,
    );
    b.review::<a::authorization::v1::LocalSubjectAccessReview>(
        row(
            "authorization.k8s.io",
            "v1",
            "localsubjectaccessreviews",
            "LocalSubjectAccessReview",
            NS,
            &[],
            "",
        ),
        reviews::local_subject_access_review,
    );
    b.review::<a::authorization::v1::SelfSubjectRulesReview>(
        row(
            "authorization.k8s.io",
            "v1",
            "selfsubjectrulesreviews",
            "SelfSubjectRulesReview",
            CL,
            &[],
            "",
        ),
        reviews::self_subject_rules_review,
    );

    Ok(Installed {
        endpoints: b.endpoints,
        resources: b.resources,
        openapi: b.openapi,
        namespaces,
        services,
        priority_classes,
        crds,
        lifecycle: b.lifecycle,
        kubernetes_service_ip,
        token_authenticator,
    })
}
