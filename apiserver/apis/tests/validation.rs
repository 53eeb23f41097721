//! Validation messages and field paths for invalid objects, checked against upstream's wording.

use apiserver_apis::ApiType;
use k8s_openapi::api::apps::v1 as apps;
use k8s_openapi::api::batch::v1 as batch;
use k8s_openapi::api::core::v1 as core;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// Defaults then validates an object, returning the rendered messages.
fn errors<T: DeserializeOwned + ApiType>(v: Value) -> Vec<String> {
    let mut o: T = serde_json::from_value(v).expect("valid object");
    o.default_fields();
    o.validate().iter().map(|e| e.to_string()).collect()
}

fn assert_has(errs: &[String], want: &str) {
    assert!(
        errs.iter().any(|e| e == want),
        "missing {want:?} in {errs:#?}"
    );
}

fn pod(spec: Value) -> Vec<String> {
    errors::<core::Pod>(json!({"metadata": {"name": "p", "namespace": "default"}, "spec": spec}))
}

#[test]
fn valid_objects_have_no_errors() {
    let p = pod(json!({
        "containers": [{
            "name": "web", "image": "nginx",
            "ports": [{"name": "http", "containerPort": 80}],
            "volumeMounts": [{"name": "data", "mountPath": "/data"}],
            "resources": {"requests": {"cpu": "100m"}, "limits": {"cpu": "1", "memory": "128Mi"}},
            "readinessProbe": {"httpGet": {"port": "http"}}
        }],
        "volumes": [{"name": "data", "emptyDir": {}}]
    }));
    assert!(p.is_empty(), "{p:#?}");
    let d = errors::<apps::Deployment>(json!({
        "metadata": {"name": "web"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "a", "image": "b"}]}}
        }
    }));
    assert!(d.is_empty(), "{d:#?}");
    let s = errors::<core::Service>(
        json!({"metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]}}),
    );
    assert!(s.is_empty(), "{s:#?}");
}

#[test]
fn pod_spec_errors() {
    assert_has(
        &pod(json!({"containers": []})),
        "spec.containers: Required value",
    );
    let e = pod(json!({"containers": [{"name": "a"}]}));
    assert_has(&e, "spec.containers[0].image: Required value");
    let e = pod(json!({"containers": [{"name": "a", "image": "x"}, {"name": "a", "image": "y"}]}));
    assert_has(&e, "spec.containers[1].name: Duplicate value: \"a\"");
    let e = pod(json!({"containers": [{"name": "Bad_Name", "image": "x"}]}));
    assert_has(
        &e,
        "spec.containers[0].name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
    );
    let e = pod(json!({"restartPolicy": "Sometimes", "containers": [{"name": "a", "image": "x"}]}));
    assert_has(
        &e,
        "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"",
    );
    let e = pod(json!({"dnsPolicy": "Weird", "containers": [{"name": "a", "image": "x"}]}));
    assert_has(
        &e,
        "spec.dnsPolicy: Unsupported value: \"Weird\": supported values: \"ClusterFirstWithHostNet\", \"ClusterFirst\", \"Default\", \"None\"",
    );
    let e = pod(
        json!({"containers": [{"name": "a", "image": "x", "ports": [{"containerPort": 70000, "protocol": "HTTP"}]}]}),
    );
    assert_has(
        &e,
        "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
    );
    assert_has(
        &e,
        "spec.containers[0].ports[0].protocol: Unsupported value: \"HTTP\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
    );
    let e = pod(json!({"containers": [{"name": "a", "image": "x", "env": [{"name": "A=B"}]}]}));
    assert_has(
        &e,
        "spec.containers[0].env[0].name: Invalid value: \"A=B\": a valid environment variable name must consist only of printable ASCII characters other than '='",
    );
}

#[test]
fn pod_volume_and_resource_errors() {
    let e = pod(json!({
        "containers": [{"name": "a", "image": "x", "volumeMounts": [{"name": "data", "mountPath": "/d"}]}],
        "volumes": [{"name": "v1", "emptyDir": {}}, {"name": "v1", "emptyDir": {}}, {"name": "two", "emptyDir": {}, "hostPath": {"path": "/x"}}]
    }));
    assert_has(
        &e,
        "spec.containers[0].volumeMounts[0].name: Not found: \"data\"",
    );
    assert_has(&e, "spec.volumes[1].name: Duplicate value: \"v1\"");
    assert_has(
        &e,
        "spec.volumes[2].hostPath: Forbidden: may not specify more than 1 volume type",
    );
    let e = pod(
        json!({"containers": [{"name": "a", "image": "x", "resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}}]}),
    );
    assert_has(
        &e,
        "spec.containers[0].resources.requests: Invalid value: \"2\": must be less than or equal to cpu limit of 1",
    );
    let e = pod(
        json!({"containers": [{"name": "a", "image": "x", "resources": {"limits": {"gpu": "1"}}}]}),
    );
    assert_has(
        &e,
        "spec.containers[0].resources.limits[gpu]: Invalid value: \"gpu\": must be a standard resource type or fully qualified",
    );
    let e = pod(
        json!({"containers": [{"name": "a", "image": "x", "livenessProbe": {"exec": {"command": ["true"]}, "successThreshold": 2}}]}),
    );
    assert_has(
        &e,
        "spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1",
    );
    let e = pod(json!({"containers": [{"name": "a", "image": "x", "readinessProbe": {}}]}));
    assert_has(
        &e,
        "spec.containers[0].readinessProbe: Required value: must specify a handler type",
    );
}

fn deployment(selector: Value, labels: Value) -> Vec<String> {
    errors::<apps::Deployment>(json!({
        "metadata": {"name": "web"},
        "spec": {
            "selector": selector,
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "a", "image": "b"}]}}
        }
    }))
}

#[test]
fn workload_selector_errors() {
    let e = deployment(
        json!({"matchLabels": {"app": "api"}}),
        json!({"app": "web"}),
    );
    assert_eq!(
        e,
        vec![
            "spec.template.metadata.labels: Invalid value: {\"app\":\"web\"}: `selector` does not match template `labels`"
        ]
    );
    let mut d: apps::Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "a", "image": "b"}]}}}
    }))
    .expect("valid");
    d.default_fields();
    let e: Vec<String> = d.validate().iter().map(|e| e.to_string()).collect();
    assert_eq!(
        e,
        vec![
            "spec.selector: Required value".to_string(),
            "spec.template.metadata.labels: Invalid value: {\"app\":\"web\"}: `selector` does not match template `labels`".to_string(),
        ]
    );
    let e = errors::<apps::Deployment>(json!({
        "metadata": {"name": "web"},
        "spec": {
            "replicas": -1,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 0}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"restartPolicy": "Never", "containers": [{"name": "a", "image": "b"}]}}
        }
    }));
    assert_has(
        &e,
        "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
    );
    assert_has(
        &e,
        "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 0: may not be 0 when `maxSurge` is 0",
    );
    assert_has(
        &e,
        "spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\"",
    );
    let e = errors::<apps::StatefulSet>(json!({
        "metadata": {"name": "db"},
        "spec": {"selector": {"matchLabels": {"app": "db"}}, "template": {"metadata": {"labels": {"app": "other"}}}}
    }));
    assert_has(
        &e,
        "spec.template.metadata.labels: Invalid value: {\"app\":\"other\"}: `selector` does not match template `labels`",
    );
    let e = errors::<apps::DaemonSet>(json!({
        "metadata": {"name": "d"},
        "spec": {"selector": {"matchLabels": {"app": "d"}}, "template": {"metadata": {"labels": {"app": "d"}}, "spec": {"containers": [{"name": "a"}]}}}
    }));
    assert_has(&e, "spec.template.spec.containers[0].image: Required value");
}

fn job(spec: Value) -> Vec<String> {
    let mut j: batch::Job =
        serde_json::from_value(json!({"metadata": {"name": "j", "uid": "u"}, "spec": spec}))
            .expect("valid");
    j.default_fields();
    apiserver_apis::strategy::job_generate_selector(&mut j);
    j.validate().iter().map(|e| e.to_string()).collect()
}

#[test]
fn batch_errors() {
    let e = job(json!({"template": {"spec": {"containers": [{"name": "a", "image": "b"}]}}}));
    assert_eq!(
        e,
        vec!["spec.template.spec.restartPolicy: Required value: valid values: \"OnFailure\", \"Never\"".to_string()]
    );
    let e = job(
        json!({"parallelism": -1, "completions": -2, "template": {"spec": {"restartPolicy": "Always", "containers": [{"name": "a", "image": "b"}]}}}),
    );
    assert_has(
        &e,
        "spec.parallelism: Invalid value: -1: must be greater than or equal to 0",
    );
    assert_has(
        &e,
        "spec.completions: Invalid value: -2: must be greater than or equal to 0",
    );
    let e = errors::<batch::CronJob>(json!({
        "metadata": {"name": "c"},
        "spec": {"schedule": "61 * * * *", "timeZone": "Mars/Olympus", "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "OnFailure", "containers": [{"name": "a", "image": "b"}]}}}}}
    }));
    assert_has(
        &e,
        "spec.schedule: Invalid value: \"61 * * * *\": end of range (61) above maximum (59): 61",
    );
    assert_has(
        &e,
        "spec.timeZone: Invalid value: \"Mars/Olympus\": unknown time zone Mars/Olympus",
    );
    let e = errors::<batch::CronJob>(json!({
        "metadata": {"name": "c"},
        "spec": {"schedule": "@hourly", "timeZone": "Europe/Berlin", "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "OnFailure", "containers": [{"name": "a", "image": "b"}]}}}}}
    }));
    assert!(e.is_empty(), "{e:#?}");
}

#[test]
fn service_errors() {
    let svc =
        |spec: Value| errors::<core::Service>(json!({"metadata": {"name": "s"}, "spec": spec}));
    assert_eq!(
        svc(json!({})),
        vec!["spec.ports: Required value".to_string()]
    );
    assert!(svc(json!({"clusterIP": "None", "clusterIPs": ["None"]})).is_empty());
    assert!(svc(json!({"type": "ExternalName", "externalName": "example.com"})).is_empty());
    let e = svc(json!({"type": "Magic", "ports": [{"port": 0, "protocol": "ICMP"}, {"port": 80}]}));
    assert_has(
        &e,
        "spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive",
    );
    assert_has(
        &e,
        "spec.ports[0].protocol: Unsupported value: \"ICMP\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
    );
    assert_has(&e, "spec.ports[0].name: Required value");
    assert_has(
        &e,
        "spec.type: Unsupported value: \"Magic\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\"",
    );
    let e = svc(json!({"ports": [{"name": "a", "port": 80}, {"name": "b", "port": 80}]}));
    assert_has(
        &e,
        "spec.ports[1]: Duplicate value: {\"Name\":\"\",\"Protocol\":\"TCP\",\"AppProtocol\":null,\"Port\":80,\"TargetPort\":0,\"NodePort\":0}",
    );
    let e =
        svc(json!({"clusterIP": "10.0.0.1", "clusterIPs": ["10.0.0.2"], "ports": [{"port": 80}]}));
    assert_has(
        &e,
        "spec.clusterIPs: Invalid value: [\"10.0.0.2\"]: first value must match `clusterIP`",
    );
}

#[test]
fn config_and_secret_errors() {
    let e = errors::<core::ConfigMap>(
        json!({"metadata": {"name": "c"}, "data": {"bad key": "v", "ok.key": "v"}}),
    );
    assert_eq!(
        e,
        vec!["data[bad key]: Invalid value: \"bad key\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')".to_string()]
    );
    let big = "x".repeat(1024 * 1024 + 1);
    let e = errors::<core::ConfigMap>(json!({"metadata": {"name": "c"}, "data": {"k": big}}));
    assert_eq!(
        e,
        vec!["Too long: may not be more than 1048576 bytes".to_string()]
    );
    let secret = |v: Value| errors::<core::Secret>(v);
    let e = secret(json!({"metadata": {"name": "s"}, "type": "kubernetes.io/tls", "data": {}}));
    assert_eq!(
        e,
        vec![
            "data[tls.crt]: Required value".to_string(),
            "data[tls.key]: Required value".to_string()
        ]
    );
    let e =
        secret(json!({"metadata": {"name": "s"}, "type": "kubernetes.io/service-account-token"}));
    assert_eq!(
        e,
        vec![
            "metadata.annotations[kubernetes.io/service-account.name]: Required value".to_string()
        ]
    );
    let e = secret(
        json!({"metadata": {"name": "s"}, "type": "kubernetes.io/dockerconfigjson", "stringData": {".dockerconfigjson": "{not json"}}),
    );
    assert_eq!(e.len(), 1);
    assert!(
        e[0].starts_with(
            "data[.dockerconfigjson]: Invalid value: \"<secret contents redacted>\": "
        ),
        "{e:?}"
    );
    let e = secret(
        json!({"metadata": {"name": "s"}, "type": "kubernetes.io/dockerconfigjson", "data": {}}),
    );
    assert_eq!(
        e,
        vec!["data[.dockerconfigjson]: Required value".to_string()]
    );
}

#[test]
fn other_core_errors() {
    let e = errors::<core::PersistentVolumeClaim>(json!({"metadata": {"name": "c"}, "spec": {}}));
    assert_eq!(
        e,
        vec![
            "spec.accessModes: Required value: at least 1 access mode is required".to_string(),
            "spec.resources[storage]: Required value".to_string(),
        ]
    );
    let e = errors::<core::Namespace>(
        json!({"metadata": {"name": "n"}, "spec": {"finalizers": ["custom"]}}),
    );
    assert_eq!(
        e,
        vec!["spec.finalizers: Invalid value: \"custom\": name is neither a standard finalizer name nor is it fully qualified".to_string()]
    );
    let e = errors::<core::ResourceQuota>(
        json!({"metadata": {"name": "q"}, "spec": {"hard": {"pods": "1.5", "widgets": "1"}}}),
    );
    assert_has(
        &e,
        "spec.hard[pods]: Invalid value: 1500m: must be an integer",
    );
    assert_has(
        &e,
        "spec.hard[widgets]: Invalid value: \"widgets\": must be a standard resource type or fully qualified",
    );
    let e = errors::<core::LimitRange>(
        json!({"metadata": {"name": "l"}, "spec": {"limits": [{"type": "Container", "min": {"cpu": "2"}, "max": {"cpu": "1"}}]}}),
    );
    assert_has(
        &e,
        "spec.limits[0].min[cpu]: Invalid value: 2: min value 2 is greater than max value 1",
    );
    let e = errors::<core::Endpoints>(
        json!({"metadata": {"name": "e"}, "subsets": [{"addresses": [{"ip": "127.0.0.1"}]}]}),
    );
    assert_eq!(
        e,
        vec!["subsets[0].addresses[0].ip: Invalid value: \"127.0.0.1\": may not be in the loopback range (127.0.0.0/8, ::1/128)".to_string()]
    );
}
