//! Rows of non-pod resources, and a column/cell count check over every printer.

use apiserver_printers::{TablePrinter, default_columns};
use jiff::Timestamp;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{
    Endpoints, Event, Node, PersistentVolumeClaim, ResourceQuota, Service,
};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::api::rbac::v1::{ClusterRole, RoleBinding};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::serde::de::DeserializeOwned;
use serde_json::{Value, json};

fn now() -> Timestamp {
    "2024-06-01T12:00:00Z".parse().unwrap()
}

fn obj<T: DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).unwrap()
}

#[test]
fn deployment_row() {
    let d: Deployment = obj(json!({
        "metadata": {"name": "web", "creationTimestamp": "2024-05-22T12:00:00Z"},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["front", "edge"]}]},
            "template": {"spec": {"containers": [
                {"name": "nginx", "image": "nginx:1.25"},
                {"name": "sidecar", "image": "busybox"}
            ]}}
        },
        "status": {"replicas": 3, "readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}
    }));
    assert_eq!(
        d.cells(now()),
        vec![
            json!("web"),
            json!("2/3"),
            json!(3),
            json!(2),
            json!("10d"),
            json!("nginx,sidecar"),
            json!("nginx:1.25,busybox"),
            json!("app=web,tier in (edge,front)"),
        ]
    );
    let cols = Deployment::columns().unwrap();
    let names: Vec<_> = cols.iter().map(|c| (c.name, c.priority)).collect();
    assert_eq!(
        names,
        vec![
            ("Name", 0),
            ("Ready", 0),
            ("Up-to-date", 0),
            ("Available", 0),
            ("Age", 0),
            ("Containers", 1),
            ("Images", 1),
            ("Selector", 1)
        ]
    );
    assert_eq!(cols[0].format, "name");
}

#[test]
fn service_rows() {
    let svc: Service = obj(json!({
        "metadata": {"name": "web", "creationTimestamp": "2024-06-01T11:00:00Z"},
        "spec": {
            "type": "NodePort",
            "clusterIP": "10.96.0.20",
            "clusterIPs": ["10.96.0.20"],
            "selector": {"app": "web"},
            "ports": [
                {"name": "http", "port": 80, "protocol": "TCP"},
                {"name": "https", "port": 443, "nodePort": 30443, "protocol": "TCP"}
            ]
        }
    }));
    assert_eq!(
        svc.cells(now()),
        vec![
            json!("web"),
            json!("NodePort"),
            json!("10.96.0.20"),
            json!("<none>"),
            json!("80/TCP,443:30443/TCP"),
            json!("60m"),
            json!("app=web"),
        ]
    );

    let lb: Service = obj(json!({
        "metadata": {"name": "lb"},
        "spec": {"type": "LoadBalancer", "clusterIP": "None", "ports": [{"port": 53, "protocol": "UDP", "nodePort": 31000}]},
        "status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.9"}, {"hostname": "a.example.com"}]}}
    }));
    let cells = lb.cells(now());
    assert_eq!(cells[2], json!("None"));
    assert_eq!(cells[3], json!("203.0.113.9,a.example.com"));
    assert_eq!(cells[4], json!("53:31000/UDP"));
    assert_eq!(cells[5], json!("<unknown>"));
    assert_eq!(cells[6], json!("<none>"));

    let pending: Service =
        obj(json!({"metadata": {"name": "p"}, "spec": {"type": "LoadBalancer"}}));
    let cells = pending.cells(now());
    assert_eq!(
        (&cells[2], &cells[3], &cells[4]),
        (&json!("<none>"), &json!("<pending>"), &json!("<none>"))
    );

    let ext: Service = obj(
        json!({"metadata": {"name": "e"}, "spec": {"type": "ExternalName", "externalName": "db.example.com"}}),
    );
    assert_eq!(ext.cells(now())[3], json!("db.example.com"));
}

#[test]
fn endpoints_and_ingress_lists() {
    let ep: Endpoints = obj(json!({
        "metadata": {"name": "web"},
        "subsets": [{
            "addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}, {"ip": "fd00::3"}, {"ip": "10.0.0.4"}],
            "ports": [{"port": 8080}]
        }]
    }));
    assert_eq!(
        ep.cells(now())[1],
        json!("10.0.0.1:8080,10.0.0.2:8080,[fd00::3]:8080 + 1 more...")
    );
    let empty: Endpoints = obj(json!({"metadata": {"name": "none"}}));
    assert_eq!(empty.cells(now())[1], json!("<none>"));

    let ing: Ingress = obj(json!({
        "metadata": {"name": "ing"},
        "spec": {"ingressClassName": "nginx", "tls": [{"hosts": ["a.example.com"]}],
            "rules": [{"host": "a.example.com"}, {"host": "b.example.com"}, {}, {"host": "c.example.com"}, {"host": "d.example.com"}]},
        "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}]}}
    }));
    let cells = ing.cells(now());
    assert_eq!(
        cells[1..5],
        [
            json!("nginx"),
            json!("a.example.com,b.example.com,c.example.com + 2 more..."),
            json!("192.0.2.1"),
            json!("80, 443")
        ]
    );
}

#[test]
fn job_and_cronjob_rows() {
    let job: Job = obj(json!({
        "metadata": {"name": "pi", "creationTimestamp": "2024-06-01T11:50:00Z"},
        "spec": {"completions": 1, "parallelism": 1, "template": {"spec": {"containers": [{"name": "pi", "image": "perl"}]}}},
        "status": {"succeeded": 1, "startTime": "2024-06-01T11:50:00Z", "completionTime": "2024-06-01T11:50:42Z",
            "conditions": [{"type": "SuccessCriteriaMet", "status": "True"}, {"type": "Complete", "status": "True"}]}
    }));
    assert_eq!(
        job.cells(now())[..5],
        [
            json!("pi"),
            json!("Complete"),
            json!("1/1"),
            json!("42s"),
            json!("10m")
        ]
    );
    assert_eq!(job.cells(now())[7], json!("<none>"));

    let running: Job = obj(json!({
        "metadata": {"name": "w"},
        "spec": {"parallelism": 3, "template": {}},
        "status": {"succeeded": 0, "startTime": "2024-06-01T11:57:00Z"}
    }));
    assert_eq!(
        running.cells(now())[1..4],
        [json!("Running"), json!("0/1 of 3"), json!("3m")]
    );

    let cj: CronJob = obj(json!({
        "metadata": {"name": "hourly"},
        "spec": {"schedule": "0 * * * *", "suspend": false, "jobTemplate": {"spec": {"template": {}}}},
        "status": {"lastScheduleTime": "2024-06-01T11:00:00Z", "active": [{"name": "hourly-1"}]}
    }));
    assert_eq!(
        cj.cells(now())[..7],
        [
            json!("hourly"),
            json!("0 * * * *"),
            json!("<none>"),
            json!("False"),
            json!(1),
            json!("60m"),
            json!("<unknown>")
        ]
    );
}

#[test]
fn node_event_pvc_quota_rows() {
    let node: Node = obj(json!({
        "metadata": {"name": "cp-1", "labels": {"node-role.kubernetes.io/control-plane": "", "kubernetes.io/role": "master"}},
        "spec": {"unschedulable": true},
        "status": {
            "conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "True"}],
            "addresses": [{"type": "InternalIP", "address": "172.18.0.2"}],
            "nodeInfo": {"kubeletVersion": "v1.37.0", "osImage": "Debian", "kernelVersion": "", "containerRuntimeVersion": "containerd://2.0",
                "architecture": "", "bootID": "", "kubeProxyVersion": "", "machineID": "", "operatingSystem": "", "systemUUID": ""}
        }
    }));
    assert_eq!(
        node.cells(now()),
        vec![
            json!("cp-1"),
            json!("Ready,SchedulingDisabled"),
            json!("control-plane,master"),
            json!("<unknown>"),
            json!("v1.37.0"),
            json!("172.18.0.2"),
            json!("<none>"),
            json!("Debian"),
            json!("<unknown>"),
            json!("containerd://2.0"),
        ]
    );

    let ev: Event = obj(json!({
        "metadata": {"name": "web.17a"},
        "involvedObject": {"kind": "Pod", "name": "web-1", "fieldPath": "spec.containers{nginx}"},
        "reason": "Pulled", "type": "Normal", "message": "  Pulled image  \n",
        "source": {"component": "kubelet", "host": "node-1"},
        "firstTimestamp": "2024-06-01T11:00:00Z", "lastTimestamp": "2024-06-01T11:58:00Z", "count": 4
    }));
    assert_eq!(
        ev.cells(now()),
        vec![
            json!("2m"),
            json!("Normal"),
            json!("Pulled"),
            json!("pod/web-1"),
            json!("spec.containers{nginx}"),
            json!("kubelet, node-1"),
            json!("Pulled image"),
            json!("60m"),
            json!(4),
            json!("web.17a"),
        ]
    );

    let pvc: PersistentVolumeClaim = obj(json!({
        "metadata": {"name": "data"},
        "spec": {"volumeName": "pv-1", "storageClassName": "standard", "volumeMode": "Filesystem"},
        "status": {"phase": "Bound", "accessModes": ["ReadWriteOnce"], "capacity": {"storage": "2048Mi"}}
    }));
    assert_eq!(
        pvc.cells(now()),
        vec![
            json!("data"),
            json!("Bound"),
            json!("pv-1"),
            json!("2Gi"),
            json!("RWO"),
            json!("standard"),
            json!("<unset>"),
            json!("<unknown>"),
            json!("Filesystem"),
        ]
    );

    let rq: ResourceQuota = obj(json!({
        "metadata": {"name": "quota"},
        "status": {"hard": {"requests.cpu": "2", "limits.memory": "2Gi", "pods": "10"},
                   "used": {"requests.cpu": "500m", "limits.memory": "1Gi"}}
    }));
    assert_eq!(
        rq.cells(now())[1..3],
        [
            json!("pods: 0/10, requests.cpu: 500m/2"),
            json!("limits.memory: 1Gi/2Gi")
        ]
    );
}

#[test]
fn rbac_and_storage_class_rows() {
    let rb: RoleBinding = obj(json!({
        "metadata": {"name": "rb"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
        "subjects": [
            {"kind": "User", "name": "alice"}, {"kind": "Group", "name": "devs"},
            {"kind": "ServiceAccount", "name": "ci", "namespace": "tools"}, {"kind": "User", "name": "bob"}
        ]
    }));
    assert_eq!(
        rb.cells(now())[..],
        [
            json!("rb"),
            json!("ClusterRole/view"),
            json!("<unknown>"),
            json!("alice, bob"),
            json!("devs"),
            json!("tools/ci")
        ]
    );

    let role: ClusterRole =
        obj(json!({"metadata": {"name": "admin", "creationTimestamp": "2024-01-02T03:04:05Z"}}));
    assert!(ClusterRole::columns().is_none());
    assert_eq!(
        role.cells(now()),
        vec![json!("admin"), json!("2024-01-02T03:04:05Z")]
    );
    assert_eq!(default_columns()[1].type_, "date");

    let sc: StorageClass = obj(json!({
        "metadata": {"name": "standard", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
        "provisioner": "rancher.io/local-path", "volumeBindingMode": "WaitForFirstConsumer"
    }));
    assert_eq!(
        sc.cells(now())[..5],
        [
            json!("standard (default)"),
            json!("rancher.io/local-path"),
            json!("Delete"),
            json!("WaitForFirstConsumer"),
            json!(false)
        ]
    );
}

/// Every printer emits one cell per column (the default table has two), even for empty objects.
#[test]
fn cells_match_columns_for_every_type() {
    use k8s_openapi::api::{
        admissionregistration::v1 as adm, apps::v1 as apps, autoscaling::v1 as as1,
        autoscaling::v2 as as2, batch::v1 as batch, certificates::v1 as cert,
        coordination::v1 as coord, core::v1 as core, discovery::v1 as disc, events::v1 as ev,
        flowcontrol::v1 as fc, networking::v1 as net, node::v1 as nodev1, policy::v1 as pol,
        rbac::v1 as rbac, resource::v1 as dra, scheduling::v1 as sched, storage::v1 as st,
    };
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService;

    fn check<T: TablePrinter + Default>(label: &str) {
        let columns = T::columns().map_or(2, |c| c.len());
        let cells = T::default().cells(now()).len();
        assert_eq!(columns, cells, "{label}");
    }
    macro_rules! all {
        ($($t:ty),* $(,)?) => { $( check::<$t>(stringify!($t)); )* };
    }
    all!(
        core::Pod,
        core::PodTemplate,
        core::ReplicationController,
        core::Service,
        core::Endpoints,
        core::Node,
        core::Namespace,
        core::Secret,
        core::ServiceAccount,
        core::ConfigMap,
        core::Event,
        core::ComponentStatus,
        core::ResourceQuota,
        core::LimitRange,
        core::PersistentVolume,
        core::PersistentVolumeClaim,
        apps::Deployment,
        apps::ReplicaSet,
        apps::DaemonSet,
        apps::StatefulSet,
        apps::ControllerRevision,
        batch::Job,
        batch::CronJob,
        as1::HorizontalPodAutoscaler,
        as2::HorizontalPodAutoscaler,
        pol::PodDisruptionBudget,
        disc::EndpointSlice,
        ev::Event,
        net::Ingress,
        net::IngressClass,
        net::NetworkPolicy,
        net::ServiceCIDR,
        rbac::Role,
        rbac::ClusterRole,
        rbac::RoleBinding,
        rbac::ClusterRoleBinding,
        cert::CertificateSigningRequest,
        cert::ClusterTrustBundle,
        coord::Lease,
        st::StorageClass,
        st::CSIDriver,
        st::CSINode,
        st::CSIStorageCapacity,
        st::VolumeAttachment,
        st::VolumeAttributesClass,
        sched::PriorityClass,
        nodev1::RuntimeClass,
        fc::FlowSchema,
        fc::PriorityLevelConfiguration,
        adm::MutatingWebhookConfiguration,
        adm::ValidatingWebhookConfiguration,
        adm::ValidatingAdmissionPolicy,
        adm::ValidatingAdmissionPolicyBinding,
        adm::MutatingAdmissionPolicy,
        adm::MutatingAdmissionPolicyBinding,
        dra::DeviceClass,
        dra::ResourceClaim,
        dra::ResourceClaimTemplate,
        dra::ResourceSlice,
        APIService,
        CustomResourceDefinition,
    );
    // Upstream's IPAddress printer emits an Age cell without an Age column.
    assert_eq!(
        net::IPAddress::columns().unwrap().len() + 1,
        net::IPAddress::default().cells(now()).len()
    );
}

#[test]
fn hpa_targets() {
    use k8s_openapi::api::autoscaling::{v1 as as1, v2 as as2};
    let hpa: as2::HorizontalPodAutoscaler = obj(json!({
        "metadata": {"name": "web"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 2, "maxReplicas": 10,
            "metrics": [
                {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}},
                {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "1024Mi"}}},
                {"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "1000m"}}}
            ]
        },
        "status": {"currentReplicas": 3, "desiredReplicas": 3, "currentMetrics": [
            {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 45}}}
        ]}
    }));
    assert_eq!(
        hpa.cells(now())[1..6],
        [
            json!("Deployment/web"),
            json!("cpu: 45%/80%, memory: <unknown>/1Gi + 1 more..."),
            json!("2"),
            json!(10),
            json!(3)
        ]
    );
    let v1: as1::HorizontalPodAutoscaler = obj(json!({
        "metadata": {"name": "old"},
        "spec": {"scaleTargetRef": {"kind": "ReplicaSet", "name": "rs"}, "maxReplicas": 4, "targetCPUUtilizationPercentage": 50},
        "status": {"currentReplicas": 1, "desiredReplicas": 1}
    }));
    assert_eq!(
        v1.cells(now())[1..5],
        [
            json!("ReplicaSet/rs"),
            json!("cpu: <unknown>/50%"),
            json!("<unset>"),
            json!(4)
        ]
    );
}
