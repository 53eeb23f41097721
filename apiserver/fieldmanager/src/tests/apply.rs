//! Server-side apply: creation, pruning, list/map semantics, conflicts and force.

use serde_json::{Value, json};

use super::{configmaps, deployments, entries, fields_of, nginx, services, t};
use crate::Path;
use apiserver_apimachinery::Reason;

#[test]
fn create_by_apply_records_upstream_fields() {
    let applied = nginx(
        3,
        json!({"ports": [{"containerPort": 80, "protocol": "TCP"}]}),
    );
    let obj = deployments()
        .apply(None, &applied, "kubectl", false, t(0))
        .unwrap();
    let managed = entries(&obj);
    assert_eq!(managed.len(), 1, "{managed:?}");
    assert_eq!(
        serde_json::to_string(&managed[0]).unwrap(),
        concat!(
            r#"{"manager":"kubectl","operation":"Apply","apiVersion":"apps/v1","time":"2023-11-14T22:13:20Z","#,
            r#""fieldsType":"FieldsV1","fieldsV1":{"f:metadata":{"f:labels":{"f:app":{}}},"#,
            r#""f:spec":{"f:replicas":{},"f:selector":{},"f:template":{"f:metadata":{"f:labels":{"f:app":{}}},"#,
            r#""f:spec":{"f:containers":{"k:{\"name\":\"nginx\"}":{".":{},"f:image":{},"f:name":{},"#,
            r#""f:ports":{"k:{\"containerPort\":80,\"protocol\":\"TCP\"}":{".":{},"f:containerPort":{},"f:protocol":{}}}}}}}}}}"#
        )
    );
    assert_eq!(obj["spec"]["replicas"], 3);
    assert_eq!(
        obj["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.25"
    );
}

#[test]
fn reapply_without_a_field_removes_it() {
    // Upstream TestApplyRemoveContainerPort.
    let fm = deployments();
    let first = nginx(
        3,
        json!({"ports": [{"containerPort": 80, "protocol": "TCP"}], "args": ["-a"]}),
    );
    let obj = fm.apply(None, &first, "apply_test", false, t(0)).unwrap();
    let second = nginx(3, json!({}));
    let obj = fm
        .apply(Some(&obj), &second, "apply_test", false, t(1))
        .unwrap();
    let container = &obj["spec"]["template"]["spec"]["containers"][0];
    assert!(container.get("ports").is_none(), "{container}");
    assert!(container.get("args").is_none(), "{container}");
    assert_eq!(container["image"], "nginx:1.25");
    let fields = fields_of(&obj, "apply_test", "Apply");
    assert!(!fields.to_string().contains("f:ports"), "{fields}");
}

#[test]
fn ports_without_protocol_are_keyed_by_the_default() {
    let fm = services();
    let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
                     "spec": {"ports": [{"port": 80, "targetPort": 8080}]}});
    let obj = fm.apply(None, &svc, "m", false, t(0)).unwrap();
    assert_eq!(
        fields_of(&obj, "m", "Apply"),
        json!({"f:spec": {"f:ports": {"k:{\"port\":80,\"protocol\":\"TCP\"}":
            {".": {}, "f:port": {}, "f:targetPort": {}}}}})
    );
}

#[test]
fn two_appliers_conflict_only_on_different_values() {
    let fm = deployments();
    let obj = fm
        .apply(None, &nginx(3, json!({})), "alice", false, t(0))
        .unwrap();
    // Same value: no conflict, both own replicas.
    let mut same = nginx(3, json!({}));
    same["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:1.25");
    let obj = fm.apply(Some(&obj), &same, "bob", false, t(1)).unwrap();
    assert!(fields_of(&obj, "alice", "Apply")["f:spec"]["f:replicas"].is_object());
    assert!(fields_of(&obj, "bob", "Apply")["f:spec"]["f:replicas"].is_object());
    // Different value: a conflict with alice, as a 409 Status.
    let err = fm
        .apply(Some(&obj), &nginx(5, json!({})), "bob", false, t(2))
        .unwrap_err();
    assert_eq!(err.reason, Reason::Conflict);
    assert_eq!(err.to_status().code, Some(409));
    assert_eq!(
        err.message,
        "Apply failed with 1 conflict: conflict with \"alice\": .spec.replicas"
    );
    assert_eq!(err.causes.len(), 1);
    assert_eq!(
        err.causes[0].reason.as_deref(),
        Some("FieldManagerConflict")
    );
    assert_eq!(
        err.causes[0].message.as_deref(),
        Some("conflict with \"alice\"")
    );
    assert_eq!(err.causes[0].field.as_deref(), Some(".spec.replicas"));
    let status = serde_json::to_value(err.to_status()).unwrap();
    assert_eq!(
        status["details"],
        json!({"causes": [{"reason": "FieldManagerConflict", "message": "conflict with \"alice\"",
                           "field": ".spec.replicas"}]})
    );
}

#[test]
fn several_conflicts_are_grouped_by_manager() {
    let fm = deployments();
    let obj = fm
        .apply(None, &nginx(3, json!({})), "alice", false, t(0))
        .unwrap();
    let mut mine = nginx(4, json!({}));
    mine["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:2");
    let err = fm.apply(Some(&obj), &mine, "bob", false, t(1)).unwrap_err();
    assert_eq!(
        err.message,
        "Apply failed with 2 conflicts: conflicts with \"alice\":\n- .spec.replicas\n- .spec.template.spec.containers[name=\"nginx\"].image"
    );
    assert_eq!(err.causes.len(), 2);
}

#[test]
fn force_takes_ownership() {
    let fm = deployments();
    let obj = fm
        .apply(None, &nginx(3, json!({})), "alice", false, t(0))
        .unwrap();
    let bob = json!({"apiVersion": "apps/v1", "kind": "Deployment",
                     "metadata": {"name": "web"}, "spec": {"replicas": 5}});
    let obj = fm.apply(Some(&obj), &bob, "bob", true, t(1)).unwrap();
    assert_eq!(obj["spec"]["replicas"], 5);
    assert_eq!(
        fields_of(&obj, "bob", "Apply"),
        json!({"f:spec": {"f:replicas": {}}})
    );
    assert!(
        fields_of(&obj, "alice", "Apply")["f:spec"]
            .get("f:replicas")
            .is_none()
    );
    // Alice re-applying her old value now conflicts with bob.
    let err = fm
        .apply(Some(&obj), &nginx(3, json!({})), "alice", false, t(2))
        .unwrap_err();
    assert_eq!(
        err.message,
        "Apply failed with 1 conflict: conflict with \"bob\": .spec.replicas"
    );
    // Alice dropping replicas from her config leaves bob's value in place.
    let mut without = nginx(3, json!({}));
    without["spec"].as_object_mut().unwrap().remove("replicas");
    let obj = fm
        .apply(Some(&obj), &without, "alice", false, t(3))
        .unwrap();
    assert_eq!(obj["spec"]["replicas"], 5);
}

#[test]
fn update_then_apply_conflicts_with_the_updater() {
    let fm = deployments();
    let obj = fm
        .apply(None, &nginx(3, json!({})), "kubectl", false, t(0))
        .unwrap();
    let mut scaled = obj.clone();
    scaled["spec"]["replicas"] = json!(7);
    let obj = fm
        .update(Some(&obj), &scaled, "kube-controller-manager", t(1))
        .unwrap();
    assert_eq!(
        fields_of(&obj, "kube-controller-manager", "Update"),
        json!({"f:spec": {"f:replicas": {}}})
    );
    assert!(
        fields_of(&obj, "kubectl", "Apply")["f:spec"]
            .get("f:replicas")
            .is_none()
    );
    let err = fm
        .apply(Some(&obj), &nginx(3, json!({})), "kubectl", false, t(2))
        .unwrap_err();
    assert_eq!(
        err.message,
        "Apply failed with 1 conflict: conflict with \"kube-controller-manager\" using apps/v1: .spec.replicas"
    );
    assert_eq!(
        err.causes[0].message.as_deref(),
        Some("conflict with \"kube-controller-manager\" using apps/v1")
    );
}

#[test]
fn granular_labels_and_list_maps_merge_per_manager() {
    let fm = deployments();
    let obj = fm
        .apply(
            None,
            &nginx(
                1,
                json!({"env": [{"name": "A", "value": "1"}], "args": ["x"]}),
            ),
            "alice",
            false,
            t(0),
        )
        .unwrap();
    let bob = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"team": "b"}},
        "spec": {"template": {"spec": {"containers": [
            {"name": "nginx", "env": [{"name": "B", "value": "2"}]},
            {"name": "sidecar", "image": "busybox"}]}}}});
    let obj = fm.apply(Some(&obj), &bob, "bob", false, t(1)).unwrap();
    assert_eq!(
        obj["metadata"]["labels"],
        json!({"app": "nginx", "team": "b"})
    );
    let containers = &obj["spec"]["template"]["spec"]["containers"];
    assert_eq!(containers.as_array().unwrap().len(), 2);
    assert_eq!(
        containers[0]["env"],
        json!([{"name": "A", "value": "1"}, {"name": "B", "value": "2"}])
    );
    assert_eq!(containers[0]["image"], "nginx:1.25");
    assert_eq!(containers[1]["name"], "sidecar");
    // args is atomic: bob replacing it conflicts with alice as one field.
    let mut bob_args = bob.clone();
    bob_args["spec"]["template"]["spec"]["containers"][0]["args"] = json!(["y"]);
    let err = fm
        .apply(Some(&obj), &bob_args, "bob", false, t(2))
        .unwrap_err();
    assert_eq!(
        err.message,
        "Apply failed with 1 conflict: conflict with \"alice\": .spec.template.spec.containers[name=\"nginx\"].args"
    );
    // Bob dropping his label and env var removes only those.
    let bob2 = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"template": {"spec": {"containers": [{"name": "sidecar", "image": "busybox"}]}}}});
    let obj = fm.apply(Some(&obj), &bob2, "bob", false, t(3)).unwrap();
    assert_eq!(obj["metadata"]["labels"], json!({"app": "nginx"}));
    let containers = &obj["spec"]["template"]["spec"]["containers"];
    assert_eq!(containers[0]["env"], json!([{"name": "A", "value": "1"}]));
    assert_eq!(containers[1]["name"], "sidecar");
}

#[test]
fn shared_fields_survive_one_owner_dropping_them() {
    let fm = configmaps();
    let cm = |data: Value| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": data});
    let obj = fm
        .apply(None, &cm(json!({"a": "1", "b": "2"})), "alice", false, t(0))
        .unwrap();
    let obj = fm
        .apply(Some(&obj), &cm(json!({"a": "1"})), "bob", false, t(1))
        .unwrap();
    let obj = fm
        .apply(Some(&obj), &cm(json!({})), "alice", false, t(2))
        .unwrap();
    assert_eq!(obj["data"], json!({"a": "1"}));
    assert_eq!(fields_of(&obj, "alice", "Apply"), json!({"f:data": {}}));
    let obj = fm
        .apply(
            Some(&obj),
            &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}),
            "alice",
            false,
            t(3),
        )
        .unwrap();
    assert_eq!(obj["data"], json!({"a": "1"}));
    assert_eq!(
        entries(&obj).len(),
        1,
        "alice owns nothing any more: {:?}",
        entries(&obj)
    );
}

#[test]
fn noop_apply_keeps_the_time_and_empty_applies_leave_no_entry() {
    let fm = configmaps();
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}});
    let obj = fm.apply(None, &cm, "m", false, t(0)).unwrap();
    let again = fm.apply(Some(&obj), &cm, "m", false, t(60)).unwrap();
    assert_eq!(entries(&again)[0]["time"], entries(&obj)[0]["time"]);
    assert_eq!(again, obj);
    // Upstream TestApplyRemovesEmptyManagedFields.
    let bare = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "default"}});
    let obj = fm.apply(None, &bare, "apply_test", false, t(0)).unwrap();
    let obj = fm
        .apply(Some(&obj), &bare, "apply_test", false, t(1))
        .unwrap();
    assert!(obj["metadata"].get("managedFields").is_none(), "{obj}");
}

#[test]
fn bad_requests() {
    let fm = deployments();
    let mut wrong = nginx(1, json!({}));
    wrong["apiVersion"] = json!("extensions/v1beta1");
    let err = fm.apply(None, &wrong, "m", false, t(0)).unwrap_err();
    assert_eq!(err.reason, Reason::BadRequest);
    assert_eq!(
        err.message,
        "invalid object type: extensions/v1beta1, Kind=Deployment"
    );
    let mut with_mf = nginx(1, json!({}));
    with_mf["metadata"]["managedFields"] = json!([]);
    let err = fm.apply(None, &with_mf, "m", false, t(0)).unwrap_err();
    assert_eq!(err.message, "metadata.managedFields must be nil");
    let mut dup = nginx(1, json!({}));
    dup["spec"]["template"]["spec"]["containers"] = json!([{"name": "a"}, {"name": "a"}]);
    let err = fm.apply(None, &dup, "m", false, t(0)).unwrap_err();
    assert_eq!(err.to_status().code, Some(500));
    assert_eq!(
        err.message,
        "failed to create typed patch object (default/web; apps/v1, Kind=Deployment): .spec.template.spec.containers: duplicate entries for key [name=\"a\"]"
    );
    let mut unknown = nginx(1, json!({}));
    unknown["spec"]["replica"] = json!(2);
    let err = fm.apply(None, &unknown, "m", false, t(0)).unwrap_err();
    assert_eq!(
        err.message,
        "failed to create typed patch object (default/web; apps/v1, Kind=Deployment): .spec.replica: field not declared in schema"
    );
}

#[test]
fn reset_fields_are_never_owned() {
    let fm = deployments().with_reset_fields(&[Path::fields(&["status"])]);
    let mut applied = nginx(1, json!({}));
    applied["status"] = json!({"replicas": 1});
    let obj = fm.apply(None, &applied, "m", false, t(0)).unwrap();
    assert!(fields_of(&obj, "m", "Apply").get("f:status").is_none());
}

#[test]
fn before_first_apply_owns_untracked_fields() {
    let fm = configmaps();
    let live = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "c", "uid": "u1"}, "data": {"a": "1"}});
    let err = fm
        .apply(Some(&live), &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "2"}}), "m", false, t(0))
        .unwrap_err();
    assert_eq!(
        err.message,
        "Apply failed with 1 conflict: conflict with \"before-first-apply\" using v1: .data.a"
    );
    let obj = fm
        .apply(Some(&live), &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"b": "2"}}), "m", false, t(0))
        .unwrap();
    assert_eq!(
        fields_of(&obj, "before-first-apply", "Update"),
        json!({"f:data": {".": {}, "f:a": {}}})
    );
    assert_eq!(
        fields_of(&obj, "m", "Apply"),
        json!({"f:data": {"f:b": {}}})
    );
}
