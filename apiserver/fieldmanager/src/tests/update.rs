//! Update tracking, managedFields bookkeeping and the client-side apply migration.

use serde_json::json;

use super::{configmaps, deployments, entries, fields_of, nginx, services, t};
use crate::{FieldManager, LAST_APPLIED_ANNOTATION, builtin_schema, crd_schema};

#[test]
fn upstream_apply_managed_fields_fixture() {
    // Upstream TestApplyManagedFields: apply, then two merge patches by "updater".
    let fm = configmaps();
    let applied = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "test-cm", "namespace": "default", "labels": {"test-label": "test"}},
        "data": {"key": "value"}});
    let obj = fm.apply(None, &applied, "apply_test", false, t(0)).unwrap();
    let mut patched = obj.clone();
    patched["data"]["new-key"] = json!("value");
    let obj = fm.update(Some(&obj), &patched, "updater", t(1)).unwrap();
    let mut patched = obj.clone();
    patched["data"]["key"] = json!("new value");
    let obj = fm.update(Some(&obj), &patched, "updater", t(2)).unwrap();
    assert_eq!(
        serde_json::to_string(&obj["metadata"]["managedFields"]).unwrap(),
        concat!(
            r#"[{"manager":"apply_test","operation":"Apply","apiVersion":"v1","time":"2023-11-14T22:13:20Z","#,
            r#""fieldsType":"FieldsV1","fieldsV1":{"f:metadata":{"f:labels":{"f:test-label":{}}}}},"#,
            r#"{"manager":"updater","operation":"Update","apiVersion":"v1","time":"2023-11-14T22:13:22Z","#,
            r#""fieldsType":"FieldsV1","fieldsV1":{"f:data":{"f:key":{},"f:new-key":{}}}}]"#
        )
    );
    assert_eq!(obj["data"], json!({"key": "new value", "new-key": "value"}));
}

#[test]
fn create_by_update_and_unchanged_updates() {
    let fm = configmaps();
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "c", "labels": {"a": "b"}}, "data": {"k": "v"}});
    let obj = fm.update(None, &cm, "kubectl-create", t(0)).unwrap();
    assert_eq!(
        fields_of(&obj, "kubectl-create", "Update"),
        json!({"f:data": {".": {}, "f:k": {}}, "f:metadata": {"f:labels": {".": {}, "f:a": {}}}})
    );
    // An update that changes nothing keeps the entry and its time.
    let mut stored = obj.clone();
    stored["metadata"]["uid"] = json!("u1");
    let again = fm.update(Some(&stored), &stored, "other", t(5)).unwrap();
    assert_eq!(entries(&again), entries(&obj));
    // An empty manager name is recorded as "unknown".
    let mut changed = stored.clone();
    changed["data"]["k"] = json!("w");
    let obj = fm.update(Some(&stored), &changed, "", t(6)).unwrap();
    assert_eq!(
        fields_of(&obj, "unknown", "Update"),
        json!({"f:data": {"f:k": {}}})
    );
    assert_eq!(
        fields_of(&obj, "kubectl-create", "Update"),
        json!({"f:data": {}, "f:metadata": {"f:labels": {".": {}, "f:a": {}}}})
    );
}

#[test]
fn untracked_objects_stay_untracked_and_resets_clear() {
    let fm = configmaps();
    let live = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "uid": "u"}, "data": {"k": "v"}});
    let mut new = live.clone();
    new["data"]["k"] = json!("w");
    let out = fm.update(Some(&live), &new, "m", t(0)).unwrap();
    assert!(out["metadata"].get("managedFields").is_none());
    // Upstream TestClearManagedFieldsWithMergePatch: `[{}]` clears managedFields.
    let tracked = fm.apply(None, &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "v"}}), "a", false, t(0)).unwrap();
    let mut stored = tracked.clone();
    stored["metadata"]["uid"] = json!("u");
    let mut reset = stored.clone();
    reset["metadata"]["managedFields"] = json!([{}]);
    let out = fm.update(Some(&stored), &reset, "m", t(1)).unwrap();
    assert!(out["metadata"].get("managedFields").is_none(), "{out}");
    // Without managedFields in the request the stored ones are kept.
    let mut plain = stored.clone();
    plain["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("managedFields");
    let out = fm.update(Some(&stored), &plain, "m", t(1)).unwrap();
    assert_eq!(entries(&out), entries(&tracked));
}

#[test]
fn update_managers_are_capped_into_ancient_changes() {
    let fm = configmaps().with_max_update_managers(3);
    let mut obj = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "uid": "u"}, "data": {}});
    obj = fm
        .apply(
            Some(&obj),
            &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}),
            "applier",
            false,
            t(0),
        )
        .unwrap();
    for i in 0..5 {
        let mut next = obj.clone();
        next["data"][format!("k{i}")] = json!("v");
        obj = fm
            .update(Some(&obj), &next, &format!("m{i}"), t(i + 1))
            .unwrap();
    }
    let names: Vec<String> = entries(&obj)
        .iter()
        .map(|e| e["manager"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        names,
        vec!["ancient-changes", "m3", "m4"],
        "{:?}",
        entries(&obj)
    );
    let ancient = fields_of(&obj, "ancient-changes", "Update");
    // The oldest entry (before-first-apply, owning `data`) became the bucket.
    assert_eq!(
        ancient,
        json!({"f:data": {".": {}, "f:k0": {}, "f:k1": {}, "f:k2": {}}})
    );
    assert_eq!(entries(&obj)[0]["time"], "2023-11-14T22:13:23Z");
}

#[test]
fn subresource_entries_carry_the_subresource() {
    let fm = deployments().with_subresource("status");
    let live = deployments()
        .apply(None, &nginx(1, json!({})), "kubectl", false, t(0))
        .unwrap();
    let mut new = live.clone();
    new["status"] = json!({"replicas": 1});
    let out = fm
        .update(Some(&live), &new, "kube-controller-manager", t(1))
        .unwrap();
    let e = entries(&out)
        .into_iter()
        .find(|e| e["manager"] == "kube-controller-manager")
        .unwrap();
    assert_eq!(e["subresource"], "status");
    assert_eq!(
        e["fieldsV1"],
        json!({"f:status": {".": {}, "f:replicas": {}}})
    );
    let keys: Vec<&String> = e.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "manager",
            "operation",
            "apiVersion",
            "time",
            "fieldsType",
            "fieldsV1",
            "subresource"
        ]
    );
}

#[test]
fn kubectl_migrates_from_client_side_apply() {
    let fm = deployments();
    // kubectl apply (client-side) created the object: an Update entry and the annotation.
    let mut created = nginx(3, json!({}));
    let last = crate::value::to_go_json(&created, true) + "\n";
    created["metadata"]["annotations"] = json!({LAST_APPLIED_ANNOTATION: last});
    let obj = fm
        .update(None, &created, "kubectl-client-side-apply", t(0))
        .unwrap();
    let mut stored = obj.clone();
    stored["metadata"]["uid"] = json!("u");
    // kubectl apply --server-side with a new replica count: the conflict with the client-side
    // manager is allowed because the annotation still matches the live object.
    let applied = nginx(4, json!({}));
    let out = fm
        .apply(Some(&stored), &applied, "kubectl", false, t(1))
        .unwrap();
    assert_eq!(out["spec"]["replicas"], 4);
    assert!(fields_of(&out, "kubectl", "Apply")["f:spec"]["f:replicas"].is_object());
    let annotation = out["metadata"]["annotations"][LAST_APPLIED_ANNOTATION]
        .as_str()
        .unwrap();
    assert!(annotation.contains("\"replicas\":4"), "{annotation}");
    assert!(annotation.ends_with('\n'));
    // Another manager as well: no migration, a real conflict.
    let err = fm
        .apply(Some(&stored), &applied, "helm", false, t(1))
        .unwrap_err();
    assert!(
        err.message
            .contains("\"kubectl-client-side-apply\" using apps/v1: .spec.replicas"),
        "{}",
        err.message
    );
    // Once someone else changed the field, kubectl conflicts too.
    let mut scaled = stored.clone();
    scaled["spec"]["replicas"] = json!(9);
    let scaled = fm.update(Some(&stored), &scaled, "hpa", t(2)).unwrap();
    let err = fm
        .apply(Some(&scaled), &applied, "kubectl", false, t(3))
        .unwrap_err();
    assert_eq!(
        err.message,
        "Apply failed with 1 conflict: conflict with \"hpa\" using apps/v1: .spec.replicas"
    );
}

#[test]
fn custom_resources_apply_with_their_schema() {
    let schema = crd_schema(
        &json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "size": {"type": "integer"},
            "items": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                      "items": {"type": "object", "properties": {"name": {"type": "string"}, "v": {"type": "string"}}}},
            "blob": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}}),
        "com.example.v1.Widget",
        false,
    )
    .unwrap();
    let fm = FieldManager::new(&schema, "com.example.v1.Widget", "example.com/v1", "Widget");
    let w = |spec: serde_json::Value| json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": spec});
    let obj = fm
        .apply(
            None,
            &w(json!({"size": 1, "items": [{"name": "a", "v": "1"}], "blob": {"x": {"y": 1}}})),
            "a",
            false,
            t(0),
        )
        .unwrap();
    assert_eq!(
        fields_of(&obj, "a", "Apply"),
        json!({"f:spec": {"f:blob": {"f:x": {".": {}, "f:y": {}}}, "f:items": {"k:{\"name\":\"a\"}": {".": {}, "f:name": {}, "f:v": {}}}, "f:size": {}}})
    );
    let obj = fm
        .apply(
            Some(&obj),
            &w(json!({"items": [{"name": "b", "v": "2"}]})),
            "b",
            false,
            t(1),
        )
        .unwrap();
    assert_eq!(
        obj["spec"]["items"],
        json!([{"name": "a", "v": "1"}, {"name": "b", "v": "2"}])
    );
    let obj = fm
        .apply(Some(&obj), &w(json!({"size": 1})), "a", false, t(2))
        .unwrap();
    assert_eq!(
        obj["spec"],
        json!({"size": 1, "items": [{"name": "b", "v": "2"}]})
    );
    // The built-in schema has every definition.
    assert!(builtin_schema().contains("io.k8s.api.apps.v1.Deployment"));
}

/// `create_entries` (the create fast path) records exactly what the general
/// `update_no_errors(None, ..)` records: ConfigMaps, Deployments with list maps, Services with
/// defaulted ports, reset fields, subresources, an empty manager, and objects with nothing
/// to own or that do not fit the schema.
#[test]
fn create_entries_match_the_general_update() {
    use crate::Path;
    let deploy = nginx(
        3,
        json!({"ports": [{"containerPort": 80, "protocol": "TCP"}],
            "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}),
    );
    let cases = vec![
        (
            configmaps(),
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "c", "namespace": "d", "labels": {"a": "b"},
                    "uid": "u", "creationTimestamp": "2024-01-01T00:00:00Z"},
                "data": {"k": "v", "x": ""}}),
        ),
        (deployments(), deploy.clone()),
        (
            deployments().with_reset_fields(&[Path::fields(&["status"])]),
            {
                let mut d = deploy.clone();
                d["status"] = json!({"replicas": 1});
                d
            },
        ),
        (
            deployments()
                .with_subresource("status")
                .with_reset_fields(&[Path::fields(&["spec"])]),
            {
                let mut d = deploy;
                d["status"] = json!({"replicas": 1});
                d
            },
        ),
        (
            services(),
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
                "spec": {"ports": [{"port": 80, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}],
                    "selector": {"app": "x"}, "type": "ClusterIP"}}),
        ),
        // Nothing but stripped metadata: no entry.
        (
            configmaps(),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}),
        ),
        // Does not fit the schema: no entry either way.
        (
            configmaps(),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": 5}),
        ),
    ];
    for (fm, obj) in cases {
        for manager in ["kubectl-create", ""] {
            let general = fm.update_no_errors(None, &obj, manager, t(7));
            let fast = fm.create_entries(&obj, manager, t(7));
            let fast = serde_json::to_value(fast).unwrap();
            let general = general["metadata"]
                .get("managedFields")
                .cloned()
                .unwrap_or(serde_json::Value::Null);
            assert_eq!(fast, general, "{obj} by {manager:?}");
        }
    }
}
