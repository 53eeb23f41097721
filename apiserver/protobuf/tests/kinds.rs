//! Built-in object kinds: prost-encoded (k8s-pb) bodies decode to the JSON k8s-openapi uses and
//! encode back to the same messages.

mod common;

use common::*;
use k8s_pb::api::apps::v1 as apps;
use k8s_pb::api::core::v1 as core;
use k8s_pb::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde_json::json;

#[test]
fn namespace() {
    let pb = core::Namespace {
        metadata: Some(meta("team-a", None)),
        spec: Some(core::NamespaceSpec {
            finalizers: vec!["kubernetes".to_string()],
        }),
        status: Some(core::NamespaceStatus {
            phase: s("Active"),
            conditions: vec![],
        }),
    };
    let want = json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": meta_json("team-a", None),
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    });
    check::<_, k8s_openapi::api::core::v1::Namespace>("v1", "Namespace", &pb, want);
}

#[test]
fn zero_values_follow_go_json_rules() {
    // Go clients write every non-pointer field, zero or not. encoding/json drops zero values of
    // non-pointer `omitempty` fields only: pointers (replicas) and fields without omitempty
    // (Container.name) keep them.
    let pb = apps::Deployment {
        metadata: Some(k8s_pb::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            name: s("web"),
            generate_name: s(""),
            namespace: s(""),
            uid: s(""),
            resource_version: s(""),
            generation: Some(0),
            creation_timestamp: Some(k8s_pb::apimachinery::pkg::apis::meta::v1::Time::default()),
            ..Default::default()
        }),
        spec: Some(apps::DeploymentSpec {
            replicas: Some(0),
            template: Some(core::PodTemplateSpec {
                metadata: Some(Default::default()),
                spec: Some(core::PodSpec {
                    containers: vec![core::Container {
                        name: s(""),
                        image: s("nginx"),
                        termination_message_path: s(""),
                        stdin: Some(false),
                        tty: Some(false),
                        resources: Some(Default::default()),
                        ..Default::default()
                    }],
                    restart_policy: s(""),
                    host_network: Some(false),
                    automount_service_account_token: Some(false),
                    ..Default::default()
                }),
            }),
            strategy: Some(apps::DeploymentStrategy {
                r#type: s(""),
                rolling_update: None,
            }),
            min_ready_seconds: Some(0),
            paused: Some(false),
            ..Default::default()
        }),
        status: Some(apps::DeploymentStatus {
            observed_generation: Some(0),
            replicas: Some(0),
            ..Default::default()
        }),
    };
    let body = envelope("apps/v1", "Deployment", &pb);
    let got = apiserver_protobuf::decode(&body).unwrap();
    let want = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 0,
            "template": {"metadata": {}, "spec": {
                "containers": [{"name": "", "image": "nginx", "resources": {}}],
                "automountServiceAccountToken": false,
            }},
            "strategy": {},
        },
        "status": {},
    });
    assert_eq!(got, want);
    let typed: k8s_openapi::api::apps::v1::Deployment = serde_json::from_value(got).unwrap();
    assert_eq!(typed.spec.replicas, Some(0));
}

#[test]
fn config_map() {
    let pb = core::ConfigMap {
        metadata: Some(meta("settings", Some("default"))),
        immutable: Some(false),
        data: map(&[("mode", "fast"), ("empty", "")]),
        binary_data: [("blob".to_string(), vec![0u8, 1, 2, 255])]
            .into_iter()
            .collect(),
    };
    let want = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta_json("settings", Some("default")),
        "immutable": false,
        "data": {"empty": "", "mode": "fast"},
        "binaryData": {"blob": "AAEC/w=="},
    });
    check::<_, k8s_openapi::api::core::v1::ConfigMap>("v1", "ConfigMap", &pb, want);
}

#[test]
fn secret_bytes_map() {
    let pb = core::Secret {
        metadata: Some(meta("creds", Some("default"))),
        data: [
            ("password".to_string(), b"s3cr3t".to_vec()),
            ("token".to_string(), vec![0xfe]),
        ]
        .into_iter()
        .collect(),
        string_data: Default::default(),
        r#type: s("Opaque"),
        immutable: None,
    };
    let want = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": meta_json("creds", Some("default")),
        "data": {"password": "czNjcjN0", "token": "/g=="},
        "type": "Opaque",
    });
    check::<_, k8s_openapi::api::core::v1::Secret>("v1", "Secret", &pb, want);
}

fn container() -> core::Container {
    core::Container {
        name: s("web"),
        image: s("nginx:1.27"),
        args: vec!["--port".to_string(), "8080".to_string()],
        ports: vec![core::ContainerPort {
            name: s("http"),
            container_port: Some(8080),
            protocol: s("TCP"),
            ..Default::default()
        }],
        env: vec![core::EnvVar {
            name: s("MODE"),
            value: None,
            value_from: Some(core::EnvVarSource {
                config_map_key_ref: Some(core::ConfigMapKeySelector {
                    local_object_reference: Some(core::LocalObjectReference {
                        name: s("settings"),
                    }),
                    key: s("mode"),
                    optional: Some(true),
                }),
                ..Default::default()
            }),
        }],
        resources: Some(core::ResourceRequirements {
            limits: [
                ("cpu".to_string(), quantity("500m")),
                ("memory".to_string(), quantity("128Mi")),
            ]
            .into_iter()
            .collect(),
            requests: [("cpu".to_string(), quantity("250m"))]
                .into_iter()
                .collect(),
            claims: vec![],
        }),
        readiness_probe: Some(core::Probe {
            handler: Some(core::ProbeHandler {
                http_get: Some(core::HttpGetAction {
                    path: s("/healthz"),
                    port: Some(int_or_string_str("http")),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            initial_delay_seconds: Some(5),
            period_seconds: Some(10),
            ..Default::default()
        }),
        volume_mounts: vec![core::VolumeMount {
            name: s("cache"),
            mount_path: s("/cache"),
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn container_json() -> serde_json::Value {
    json!({
        "name": "web",
        "image": "nginx:1.27",
        "args": ["--port", "8080"],
        "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
        "env": [{"name": "MODE", "valueFrom": {"configMapKeyRef":
            {"name": "settings", "key": "mode", "optional": true}}}],
        "resources": {
            "limits": {"cpu": "500m", "memory": "128Mi"},
            "requests": {"cpu": "250m"},
        },
        "volumeMounts": [{"name": "cache", "mountPath": "/cache"}],
        "readinessProbe": {
            "httpGet": {"path": "/healthz", "port": "http"},
            "initialDelaySeconds": 5,
            "periodSeconds": 10,
        },
    })
}

fn pod_spec() -> core::PodSpec {
    core::PodSpec {
        containers: vec![container()],
        volumes: vec![core::Volume {
            name: s("cache"),
            volume_source: Some(core::VolumeSource {
                empty_dir: Some(core::EmptyDirVolumeSource {
                    medium: None,
                    size_limit: Some(quantity("1Gi")),
                }),
                ..Default::default()
            }),
        }],
        restart_policy: s("Always"),
        termination_grace_period_seconds: Some(30),
        node_selector: map(&[("disk", "ssd")]),
        ..Default::default()
    }
}

fn pod_spec_json() -> serde_json::Value {
    json!({
        "volumes": [{"name": "cache", "emptyDir": {"sizeLimit": "1Gi"}}],
        "containers": [container_json()],
        "restartPolicy": "Always",
        "terminationGracePeriodSeconds": 30,
        "nodeSelector": {"disk": "ssd"},
    })
}

#[test]
fn pod_with_resources_probes_and_status() {
    let pb = core::Pod {
        metadata: Some(meta("web-0", Some("default"))),
        spec: Some(pod_spec()),
        status: Some(core::PodStatus {
            phase: s("Running"),
            conditions: vec![core::PodCondition {
                r#type: s("Ready"),
                status: s("True"),
                last_transition_time: Some(time()),
                ..Default::default()
            }],
            host_ip: s("10.0.0.1"),
            pod_ip: s("10.1.0.7"),
            pod_ips: vec![core::PodIp { ip: s("10.1.0.7") }],
            start_time: Some(time()),
            qos_class: s("Burstable"),
            ..Default::default()
        }),
    };
    let want = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta_json("web-0", Some("default")),
        "spec": pod_spec_json(),
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True",
                            "lastTransitionTime": "2024-01-02T03:04:05Z"}],
            "hostIP": "10.0.0.1",
            "podIP": "10.1.0.7",
            "podIPs": [{"ip": "10.1.0.7"}],
            "startTime": "2024-01-02T03:04:05Z",
            "qosClass": "Burstable",
        },
    });
    check::<_, k8s_openapi::api::core::v1::Pod>("v1", "Pod", &pb, want);
}

#[test]
fn deployment_keeps_zero_replicas_and_int_or_string() {
    let pb = apps::Deployment {
        metadata: Some(meta("web", Some("default"))),
        spec: Some(apps::DeploymentSpec {
            replicas: Some(0),
            selector: Some(LabelSelector {
                match_labels: map(&[("app", "web")]),
                match_expressions: vec![],
            }),
            template: Some(core::PodTemplateSpec {
                metadata: Some(k8s_pb::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                    labels: map(&[("app", "web")]),
                    ..Default::default()
                }),
                spec: Some(pod_spec()),
            }),
            strategy: Some(apps::DeploymentStrategy {
                r#type: s("RollingUpdate"),
                rolling_update: Some(apps::RollingUpdateDeployment {
                    max_unavailable: Some(int_or_string_int(1)),
                    max_surge: Some(int_or_string_str("25%")),
                }),
            }),
            revision_history_limit: Some(10),
            progress_deadline_seconds: Some(600),
            ..Default::default()
        }),
        status: Some(apps::DeploymentStatus {
            observed_generation: Some(1),
            replicas: Some(3),
            ..Default::default()
        }),
    };
    let want = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta_json("web", Some("default")),
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": pod_spec_json()},
            "strategy": {"type": "RollingUpdate",
                         "rollingUpdate": {"maxUnavailable": 1, "maxSurge": "25%"}},
            "revisionHistoryLimit": 10,
            "progressDeadlineSeconds": 600,
        },
        "status": {"observedGeneration": 1, "replicas": 3},
    });
    check::<_, k8s_openapi::api::apps::v1::Deployment>("apps/v1", "Deployment", &pb, want);
}

#[test]
fn service_target_ports() {
    let pb = core::Service {
        metadata: Some(meta("web", Some("default"))),
        spec: Some(core::ServiceSpec {
            ports: vec![
                core::ServicePort {
                    name: s("http"),
                    protocol: s("TCP"),
                    port: Some(80),
                    target_port: Some(int_or_string_int(8080)),
                    ..Default::default()
                },
                core::ServicePort {
                    name: s("admin"),
                    protocol: s("TCP"),
                    port: Some(9090),
                    target_port: Some(int_or_string_str("admin")),
                    ..Default::default()
                },
            ],
            selector: map(&[("app", "web")]),
            cluster_ip: s("10.96.0.10"),
            cluster_ips: vec!["10.96.0.10".to_string()],
            r#type: s("ClusterIP"),
            ..Default::default()
        }),
        status: None,
    };
    let want = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta_json("web", Some("default")),
        "spec": {
            "ports": [
                {"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080},
                {"name": "admin", "protocol": "TCP", "port": 9090, "targetPort": "admin"},
            ],
            "selector": {"app": "web"},
            "clusterIP": "10.96.0.10",
            "clusterIPs": ["10.96.0.10"],
            "type": "ClusterIP",
        },
    });
    check::<_, k8s_openapi::api::core::v1::Service>("v1", "Service", &pb, want);
}

#[test]
fn pod_list_items() {
    let pb = core::PodList {
        metadata: Some(k8s_pb::apimachinery::pkg::apis::meta::v1::ListMeta {
            resource_version: s("77"),
            r#continue: s("abc"),
            remaining_item_count: Some(3),
            ..Default::default()
        }),
        items: vec![core::Pod {
            metadata: Some(meta("a", Some("ns"))),
            ..Default::default()
        }],
    };
    let body = envelope("v1", "PodList", &pb);
    let got = apiserver_protobuf::decode(&body).unwrap();
    let want = json!({
        "apiVersion": "v1",
        "kind": "PodList",
        "metadata": {"resourceVersion": "77", "continue": "abc", "remainingItemCount": 3},
        "items": [{"metadata": meta_json("a", Some("ns"))}],
    });
    assert_eq!(got, want);
    let list: k8s_openapi::List<k8s_openapi::api::core::v1::Pod> =
        serde_json::from_value(got.clone()).unwrap();
    assert_eq!(list.items[0].metadata.name.as_deref(), Some("a"));
    let (_, _, back): (String, String, core::PodList) =
        open(&apiserver_protobuf::encode(&got).unwrap());
    assert_eq!(back, pb);
}

#[test]
fn encode_matches_prost_bytes() {
    // Field order (ascending tags) and sorted map keys match prost's canonical output.
    let pb = core::ConfigMap {
        metadata: Some(meta("settings", Some("default"))),
        immutable: Some(true),
        data: map(&[("b", "2"), ("a", "1")]),
        binary_data: Default::default(),
    };
    let json = apiserver_protobuf::decode(&envelope("v1", "ConfigMap", &pb)).unwrap();
    let raw = apiserver_protobuf::encode_object(&json, "v1", "ConfigMap").unwrap();
    assert_eq!(raw, prost::Message::encode_to_vec(&pb));
}
