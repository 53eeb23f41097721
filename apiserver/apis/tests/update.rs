//! Update validation (immutability rules) and the strategy helpers.

use apiserver_apis::ApiType;
use apiserver_apis::strategy;
use k8s_openapi::api::apps::v1 as apps;
use k8s_openapi::api::batch::v1 as batch;
use k8s_openapi::api::core::v1 as core;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

fn obj<T: DeserializeOwned + ApiType>(v: Value) -> T {
    let mut o: T = serde_json::from_value(v).expect("valid object");
    o.default_fields();
    o
}

fn update<T: DeserializeOwned + ApiType>(new: Value, old: Value) -> Vec<String> {
    let (new, old): (T, T) = (obj(new), obj(old));
    new.validate_update(&old)
        .iter()
        .map(|e| e.to_string())
        .collect()
}

fn pod(image: &str, restart: &str, extra: Option<Value>) -> Value {
    let mut containers = vec![json!({"name": "a", "image": image})];
    if let Some(e) = extra {
        containers.push(e);
    }
    json!({"metadata": {"name": "p"}, "spec": {"restartPolicy": restart, "containers": containers}})
}

#[test]
fn pod_updates() {
    let old = pod("nginx:1", "Always", None);
    assert!(update::<core::Pod>(pod("nginx:2", "Always", None), old.clone()).is_empty());
    let e = update::<core::Pod>(pod("nginx:1", "Never", None), old.clone());
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with(
            "spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)\n"
        ),
        "{e:?}"
    );
    assert!(e[0].contains("\"restartPolicy\""), "{e:?}");
    let e = update::<core::Pod>(
        pod(
            "nginx:1",
            "Always",
            Some(json!({"name": "b", "image": "x"})),
        ),
        old,
    );
    assert_eq!(
        e,
        vec![
            "spec.containers: Forbidden: pod updates may not add or remove containers".to_string()
        ]
    );
}

#[test]
fn pod_status_update_keeps_node_name() {
    let old: core::Pod = obj(
        json!({"metadata": {"name": "p"}, "spec": {"nodeName": "n1", "containers": [{"name": "a", "image": "b"}]}}),
    );
    let new: core::Pod = obj(
        json!({"metadata": {"name": "p"}, "spec": {"nodeName": "n2", "containers": [{"name": "a", "image": "b"}]}}),
    );
    let e: Vec<String> = new
        .validate_status_update(&old)
        .iter()
        .map(|e| e.to_string())
        .collect();
    assert_eq!(
        e,
        vec!["status.nodeName: Forbidden: may not be changed directly".to_string()]
    );
}

#[test]
fn service_cluster_ip_is_immutable() {
    let svc = |ip: &str| json!({"metadata": {"name": "s"}, "spec": {"clusterIP": ip, "clusterIPs": [ip], "ports": [{"port": 80}]}});
    assert!(update::<core::Service>(svc("10.0.0.1"), svc("10.0.0.1")).is_empty());
    let e = update::<core::Service>(svc("10.0.0.2"), svc("10.0.0.1"));
    assert_eq!(
        e,
        vec![
            "spec.clusterIPs[0]: Invalid value: [\"10.0.0.2\"]: may not change once set"
                .to_string()
        ]
    );
}

fn deployment(app: &str, image: &str) -> Value {
    json!({
        "metadata": {"name": "web"},
        "spec": {
            "selector": {"matchLabels": {"app": app}},
            "template": {"metadata": {"labels": {"app": app}}, "spec": {"containers": [{"name": "a", "image": image}]}}
        }
    })
}

#[test]
fn workload_updates() {
    assert!(
        update::<apps::Deployment>(deployment("web", "v2"), deployment("web", "v1")).is_empty()
    );
    let e = update::<apps::Deployment>(deployment("api", "v1"), deployment("web", "v1"));
    assert_eq!(
        e,
        vec![
            "spec.selector: Invalid value: {\"matchLabels\":{\"app\":\"api\"}}: field is immutable"
                .to_string()
        ]
    );
    let sts = |svc: &str, image: &str| {
        json!({
            "metadata": {"name": "db"},
            "spec": {
                "serviceName": svc,
                "selector": {"matchLabels": {"app": "db"}},
                "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "a", "image": image}]}}
            }
        })
    };
    assert!(update::<apps::StatefulSet>(sts("db", "v2"), sts("db", "v1")).is_empty());
    let e = update::<apps::StatefulSet>(sts("other", "v1"), sts("db", "v1"));
    assert_eq!(
        e,
        vec!["spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden".to_string()]
    );
}

fn job(image: &str, parallelism: i32) -> batch::Job {
    let mut j: batch::Job = obj(json!({
        "metadata": {"name": "j", "uid": "u"},
        "spec": {"parallelism": parallelism, "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "a", "image": image}]}}}
    }));
    strategy::job_generate_selector(&mut j);
    j
}

#[test]
fn job_template_is_immutable() {
    let old = job("v1", 1);
    assert!(job("v1", 3).validate_update(&old).is_empty());
    let e: Vec<String> = job("v2", 1)
        .validate_update(&old)
        .iter()
        .map(|e| e.to_string())
        .collect();
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].starts_with("spec.template: Invalid value: {"), "{e:?}");
    assert!(e[0].ends_with(": field is immutable"), "{e:?}");
}

#[test]
fn immutable_config_and_secret() {
    let cm = |immutable: bool, v: &str| json!({"metadata": {"name": "c"}, "immutable": immutable, "data": {"k": v}});
    assert!(update::<core::ConfigMap>(cm(false, "b"), cm(false, "a")).is_empty());
    let e = update::<core::ConfigMap>(cm(true, "b"), cm(true, "a"));
    assert_eq!(
        e,
        vec!["data: Forbidden: field is immutable when `immutable` is set".to_string()]
    );
    let e = update::<core::ConfigMap>(cm(false, "a"), cm(true, "a"));
    assert_eq!(
        e,
        vec!["immutable: Forbidden: field is immutable when `immutable` is set".to_string()]
    );
    let secret =
        |t: &str| json!({"metadata": {"name": "s"}, "type": t, "data": {"username": "YQ=="}});
    let e = update::<core::Secret>(secret("kubernetes.io/basic-auth"), secret("Opaque"));
    assert_eq!(
        e,
        vec!["type: Invalid value: \"kubernetes.io/basic-auth\": field is immutable".to_string()]
    );
}

#[test]
fn namespace_and_pod_strategy_helpers() {
    let mut ns: core::Namespace =
        obj(json!({"metadata": {"name": "n"}, "spec": {"finalizers": ["example.com/x"]}}));
    strategy::namespace_prepare_for_create(&mut ns);
    let v = serde_json::to_value(&ns).expect("serializable");
    assert_eq!(
        v["spec"],
        json!({"finalizers": ["example.com/x", "kubernetes"]})
    );
    assert_eq!(v["status"], json!({"phase": "Active"}));

    let mut p: core::Pod = obj(
        json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a", "image": "b", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]}}),
    );
    strategy::pod_prepare_for_create(&mut p);
    let status = p.status.expect("status set");
    assert_eq!(status.phase.as_deref(), Some("Pending"));
    assert_eq!(status.qos_class.as_deref(), Some("Guaranteed"));
}

#[test]
fn service_strategy_helpers() {
    let mut s: core::Service = obj(
        json!({"metadata": {"name": "s"}, "spec": {"clusterIP": "None", "selector": {"a": "b"}, "ports": [{"port": 80}]}}),
    );
    strategy::service_normalize_cluster_ips(&mut s, None);
    let errs = strategy::service_init_ip_family_fields(&mut s, None, &["IPv4"]);
    assert!(errs.is_empty());
    let spec = s.spec.clone().expect("spec");
    assert_eq!(spec.cluster_ips, Some(vec!["None".to_string()]));
    assert_eq!(spec.ip_family_policy.as_deref(), Some("SingleStack"));
    assert_eq!(spec.ip_families, Some(vec!["IPv4".to_string()]));
    assert!(s.validate().is_empty(), "{:?}", s.validate());

    let mut headless: core::Service =
        obj(json!({"metadata": {"name": "h"}, "spec": {"clusterIP": "None"}}));
    strategy::service_normalize_cluster_ips(&mut headless, None);
    strategy::service_init_ip_family_fields(&mut headless, None, &["IPv4"]);
    let spec = headless.spec.expect("spec");
    assert_eq!(spec.ip_family_policy.as_deref(), Some("RequireDualStack"));
    assert_eq!(
        spec.ip_families,
        Some(vec!["IPv4".to_string(), "IPv6".to_string()])
    );

    let mut dual: core::Service = obj(
        json!({"metadata": {"name": "d"}, "spec": {"ipFamilyPolicy": "RequireDualStack", "ports": [{"port": 80}]}}),
    );
    let errs: Vec<String> = strategy::service_init_ip_family_fields(&mut dual, None, &["IPv4"])
        .iter()
        .map(|e| e.to_string())
        .collect();
    assert_eq!(errs, vec!["spec.ipFamilyPolicy: Invalid value: \"RequireDualStack\": this cluster is not configured for dual-stack services".to_string()]);
}
