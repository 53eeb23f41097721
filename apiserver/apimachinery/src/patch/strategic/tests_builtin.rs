//! Strategic merge patch on built-in Kubernetes types, with the generated metadata table and the
//! k8s-openapi type graph: the patches kubectl sends (`apply`, `patch`, `edit`, `scale`).

use super::*;
use serde_json::json;

const DEPLOYMENT: &str = "io.k8s.api.apps.v1.Deployment";
const POD: &str = "io.k8s.api.core.v1.Pod";

fn smp(original: Value, patch: Value, definition: &str) -> Value {
    apply_strategic_merge_patch(&original, &serde_json::to_vec(&patch).unwrap(), definition)
        .unwrap()
}

fn deployment() -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"},
                     "annotations": {"deployment.kubernetes.io/revision": "1"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate",
                         "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {"name": "app", "image": "nginx:1.25",
                         "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                         "ports": [{"containerPort": 80, "protocol": "TCP"}]},
                        {"name": "sidecar", "image": "envoy:1", "args": ["--a", "--b"]}
                    ],
                    "volumes": [{"name": "data", "emptyDir": {}}],
                    "tolerations": [{"key": "k1", "operator": "Exists"}]
                }
            }
        },
        "status": {"conditions": [
            {"type": "Available", "status": "True"},
            {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}
        ]}
    })
}

#[test]
fn kubectl_apply_patch_on_a_deployment() {
    // What `kubectl apply` sends after editing the manifest: new image, env C added, env B
    // removed, a label added; ordering directives for every merging list it touches.
    let patch = json!({
        "metadata": {
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{...}"},
            "labels": {"tier": "frontend"}
        },
        "spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "app"}, {"name": "sidecar"}],
            "containers": [{
                "$setElementOrder/env": [{"name": "A"}, {"name": "C"}],
                "env": [{"name": "C", "value": "3"}, {"$patch": "delete", "name": "B"}],
                "image": "nginx:1.27",
                "name": "app"
            }]
        }}}
    });
    let got = smp(deployment(), patch, DEPLOYMENT);
    assert_eq!(
        got["metadata"]["labels"],
        json!({"app": "web", "tier": "frontend"})
    );
    assert_eq!(
        got["metadata"]["annotations"],
        json!({"deployment.kubernetes.io/revision": "1",
               "kubectl.kubernetes.io/last-applied-configuration": "{...}"})
    );
    let containers = &got["spec"]["template"]["spec"]["containers"];
    assert_eq!(
        containers[0],
        json!({"name": "app", "image": "nginx:1.27",
               "env": [{"name": "A", "value": "1"}, {"name": "C", "value": "3"}],
               "ports": [{"containerPort": 80, "protocol": "TCP"}]})
    );
    assert_eq!(
        containers[1],
        json!({"name": "sidecar", "image": "envoy:1", "args": ["--a", "--b"]})
    );
    assert_eq!(containers.as_array().unwrap().len(), 2);
    // Untouched parts stay as they were.
    assert_eq!(got["spec"]["replicas"], 2);
    assert_eq!(got["status"], deployment()["status"]);
}

#[test]
fn kubectl_patch_containers_merge_by_name() {
    let patch = json!({"spec": {"template": {"spec": {"containers": [
        {"name": "sidecar", "image": "envoy:2"}
    ]}}}});
    let got = smp(deployment(), patch, DEPLOYMENT);
    let containers = got["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap();
    assert_eq!(containers.len(), 2);
    let sidecar = containers.iter().find(|c| c["name"] == "sidecar").unwrap();
    assert_eq!(sidecar["image"], "envoy:2");
    assert_eq!(sidecar["args"], json!(["--a", "--b"]));
    let app = containers.iter().find(|c| c["name"] == "app").unwrap();
    assert_eq!(app["image"], "nginx:1.25");

    // `$patch: delete` removes a container; scalars lists inside a container are replaced.
    let patch = json!({"spec": {"template": {"spec": {"containers": [
        {"name": "app", "$patch": "delete"},
        {"name": "sidecar", "args": ["--c"]}
    ]}}}});
    let got = smp(deployment(), patch, DEPLOYMENT);
    assert_eq!(
        got["spec"]["template"]["spec"]["containers"],
        json!([{"name": "sidecar", "image": "envoy:1", "args": ["--c"]}])
    );
}

#[test]
fn typed_entry_point_uses_the_schemars_definition_name() {
    let pod = json!({"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b"}]}});
    let patch = br#"{"spec":{"containers":[{"name":"b","image":"y"}]}}"#;
    let got =
        apply_strategic_merge_patch_for::<k8s_openapi::api::core::v1::Pod>(&pod, patch).unwrap();
    assert_eq!(
        got["spec"]["containers"],
        json!([{"name": "a", "image": "x"}, {"name": "b", "image": "y"}])
    );
}

#[test]
fn scale_and_label_edits() {
    let got = smp(
        deployment(),
        json!({"spec": {"replicas": 5}, "metadata": {"labels": {"app": null, "v": "2"}}}),
        DEPLOYMENT,
    );
    assert_eq!(got["spec"]["replicas"], 5);
    assert_eq!(got["metadata"]["labels"], json!({"v": "2"}));
}

#[test]
fn container_ports_env_and_mounts_merge_by_their_keys() {
    let pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [{
        "name": "c", "image": "i",
        "ports": [{"containerPort": 80, "name": "http"}, {"containerPort": 443}],
        "env": [{"name": "X", "value": "1"}],
        "volumeMounts": [{"name": "data", "mountPath": "/data"}]
    }]}});
    let patch = json!({"spec": {"containers": [{
        "name": "c",
        "ports": [{"containerPort": 80, "name": "web"}],
        "env": [{"name": "X", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}},
                 "value": null}],
        "volumeMounts": [{"mountPath": "/data", "readOnly": true},
                         {"mountPath": "/cache", "name": "cache"}]
    }]}});
    let got = smp(pod, patch, POD);
    let c = &got["spec"]["containers"][0];
    assert_eq!(
        c["ports"],
        json!([{"containerPort": 80, "name": "web"}, {"containerPort": 443}])
    );
    assert_eq!(
        c["env"],
        json!([{"name": "X", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}])
    );
    let mounts = c["volumeMounts"].as_array().unwrap();
    assert_eq!(mounts.len(), 2);
    assert!(mounts.contains(&json!({"name": "data", "mountPath": "/data", "readOnly": true})));
    assert!(mounts.contains(&json!({"mountPath": "/cache", "name": "cache"})));
}

#[test]
fn finalizers_union_and_delete_from_primitive_list() {
    let pod = json!({"metadata": {"name": "p", "finalizers": ["a.example/x", "b.example/y"]}});
    let got = smp(
        pod.clone(),
        json!({"metadata": {"finalizers": ["c.example/z", "a.example/x"]}}),
        POD,
    );
    let fins = got["metadata"]["finalizers"].as_array().unwrap();
    assert_eq!(fins.len(), 3);
    for f in ["a.example/x", "b.example/y", "c.example/z"] {
        assert!(fins.contains(&json!(f)), "{f} missing from {fins:?}");
    }
    let got = smp(
        pod,
        json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a.example/x"]}}),
        POD,
    );
    assert_eq!(got["metadata"]["finalizers"], json!(["b.example/y"]));
}

#[test]
fn owner_references_merge_by_uid() {
    let pod = json!({"metadata": {"name": "p", "ownerReferences": [
        {"apiVersion": "v1", "kind": "ReplicaSet", "name": "rs", "uid": "u1"}
    ]}});
    let got = smp(
        pod,
        json!({"metadata": {"ownerReferences": [
            {"uid": "u1", "controller": true},
            {"apiVersion": "v1", "kind": "Node", "name": "n", "uid": "u2"}
        ]}}),
        POD,
    );
    let refs = got["metadata"]["ownerReferences"].as_array().unwrap();
    assert_eq!(refs.len(), 2);
    let rs = refs.iter().find(|r| r["uid"] == "u1").unwrap();
    assert_eq!(rs["controller"], true);
    assert_eq!(rs["name"], "rs");
}

#[test]
fn volumes_retain_keys_switches_the_volume_source() {
    let patch = json!({"spec": {"template": {"spec": {
        "$setElementOrder/volumes": [{"name": "data"}],
        "volumes": [{"$retainKeys": ["configMap", "name"], "name": "data",
                     "configMap": {"name": "settings"}}]
    }}}});
    let got = smp(deployment(), patch, DEPLOYMENT);
    assert_eq!(
        got["spec"]["template"]["spec"]["volumes"],
        json!([{"name": "data", "configMap": {"name": "settings"}}])
    );
}

#[test]
fn deployment_strategy_retain_keys() {
    let patch = json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}});
    let got = smp(deployment(), patch, DEPLOYMENT);
    assert_eq!(got["spec"]["strategy"], json!({"type": "Recreate"}));
    // Setting a field that is not retained is a malformed patch.
    let patch =
        br#"{"spec":{"strategy":{"$retainKeys":["type"],"type":"Recreate","rollingUpdate":{}}}}"#;
    let e = apply_strategic_merge_patch(&deployment(), patch, DEPLOYMENT).unwrap_err();
    assert_eq!(
        (e.reason, e.message.as_str()),
        (Reason::BadRequest, ERR_RETAIN_KEYS)
    );
}

#[test]
fn lists_without_merge_strategy_are_replaced() {
    let patch = json!({"spec": {"template": {"spec": {
        "tolerations": [{"key": "k2", "operator": "Exists"}]
    }}}});
    let got = smp(deployment(), patch, DEPLOYMENT);
    assert_eq!(
        got["spec"]["template"]["spec"]["tolerations"],
        json!([{"key": "k2", "operator": "Exists"}])
    );
}

#[test]
fn pdb_selector_is_replaced_not_merged() {
    let pdb = json!({"metadata": {"name": "b"},
                     "spec": {"minAvailable": 1, "selector": {"matchLabels": {"a": "1"}}}});
    let got = smp(
        pdb,
        json!({"spec": {"selector": {"matchLabels": {"b": "2"}}}}),
        "io.k8s.api.policy.v1.PodDisruptionBudget",
    );
    assert_eq!(
        got["spec"],
        json!({"minAvailable": 1, "selector": {"matchLabels": {"b": "2"}}})
    );
}

#[test]
fn status_conditions_merge_by_type() {
    let patch = json!({"status": {
        "$setElementOrder/conditions": [{"type": "Available"}, {"type": "Progressing"}],
        "conditions": [{"type": "Progressing", "reason": "ReplicaSetUpdated"}]
    }});
    let got = smp(deployment(), patch, DEPLOYMENT);
    assert_eq!(
        got["status"]["conditions"],
        json!([{"type": "Available", "status": "True"},
               {"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated"}])
    );
}

#[test]
fn service_ports_merge_by_port() {
    let svc = json!({"spec": {"ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"},
                                        {"port": 443, "targetPort": 8443}]}});
    let got = smp(
        svc,
        json!({"spec": {"$setElementOrder/ports": [{"port": 80}, {"port": 443}],
                        "ports": [{"port": 443, "targetPort": 9443}]}}),
        "io.k8s.api.core.v1.Service",
    );
    assert_eq!(
        got["spec"]["ports"],
        json!([{"port": 80, "targetPort": 8080, "protocol": "TCP"},
               {"port": 443, "targetPort": 9443}])
    );
}

#[test]
fn schemaless_values_follow_merge_patch_semantics() {
    // An unknown root definition: maps merge, lists are replaced, null deletes.
    let got = smp(
        json!({"spec": {"items": [{"name": "a"}], "m": {"x": 1, "y": 2}}}),
        json!({"spec": {"items": [{"name": "b"}], "m": {"x": null, "z": 3}}}),
        "com.example.v1.Widget",
    );
    assert_eq!(
        got,
        json!({"spec": {"items": [{"name": "b"}], "m": {"y": 2, "z": 3}}})
    );
    // A free-form field of a built-in type (RawExtension) behaves the same.
    let rev = json!({"metadata": {"name": "r"}, "revision": 1,
                     "data": {"spec": {"template": {"list": [1, 2]}, "keep": true}}});
    let got = smp(
        rev,
        json!({"data": {"spec": {"template": {"list": [3]}}}}),
        "io.k8s.api.apps.v1.ControllerRevision",
    );
    assert_eq!(
        got["data"],
        json!({"spec": {"template": {"list": [3]}, "keep": true}})
    );
}

#[test]
fn malformed_patch_errors() {
    let e = apply_strategic_merge_patch(&deployment(), b"{", DEPLOYMENT).unwrap_err();
    assert_eq!(e.reason, Reason::BadRequest);
    let e = apply_strategic_merge_patch(&deployment(), br#""spec""#, DEPLOYMENT).unwrap_err();
    assert_eq!(e.reason, Reason::BadRequest);
    let patch = br#"{"spec":{"template":{"spec":{"containers":[{"image":"x"}]}}}}"#;
    let e = apply_strategic_merge_patch(&deployment(), patch, DEPLOYMENT).unwrap_err();
    assert_eq!(
        e.message,
        "map: map[image:x] does not contain declared merge key: name"
    );
    assert_eq!(e.to_status().code, Some(400));
}
