//! CustomResourceDefinitions: creating one serves its resources (REST, discovery, OpenAPI),
//! with schema validation, pruning, defaulting, status and scale subresources, printer columns,
//! selectable fields, several versions, server-side apply; deleting it removes its resources.

use crate::Server;
use serde_json::{Value, json};
use std::time::Duration;

fn widget_crd() -> Value {
    let schema = json!({"type": "object", "properties": {
        "spec": {"type": "object", "properties": {
            "color": {"type": "string", "enum": ["red", "blue", "green"]},
            "size": {"type": "integer", "minimum": 1, "default": 3},
            "replicas": {"type": "integer"},
            "tags": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"}},
            "x-kubernetes-validations": [{"rule": "self.size <= 10", "message": "size must be at most 10"}]},
        "status": {"type": "object", "properties": {
            "replicas": {"type": "integer"}, "selector": {"type": "string"}, "phase": {"type": "string"}}}}});
    let version = |name: &str, storage: bool| {
        json!({"name": name, "served": true, "storage": storage,
            "schema": {"openAPIV3Schema": schema},
            "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas",
                "statusReplicasPath": ".status.replicas", "labelSelectorPath": ".status.selector"}},
            "selectableFields": [{"jsonPath": ".spec.color"}],
            "additionalPrinterColumns": [
                {"name": "Color", "type": "string", "jsonPath": ".spec.color"},
                {"name": "Size", "type": "integer", "jsonPath": ".spec.size"}]})
    };
    json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wd"], "categories": ["all"]},
            "versions": [version("v1", true), version("v1beta1", false)]}})
}

async fn wait_established(s: &Server, name: &str) -> Value {
    for _ in 0..100 {
        let (_, crd) = s
            .get(&format!(
                "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"
            ))
            .await;
        let established = crd["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Established" && c["status"] == "True");
        if established {
            return crd;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{name} was not established");
}

async fn wait_code(s: &Server, path: &str, want: u16) {
    for _ in 0..100 {
        if s.get(path).await.0 == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("GET {path} never answered {want}");
}

async fn send(s: &Server, method: &str, path: &str, ct: &str, body: &str) -> (u16, Value) {
    let r = s
        .http
        .request(
            reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
            s.url(path),
        )
        .header("Content-Type", ct)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let code = r.status().as_u16();
    (code, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn crd_serves_validates_and_cleans_up_custom_resources() {
    let s = crate::start(&[]).await;
    let (code, crd) = s
        .post(
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            widget_crd(),
        )
        .await;
    assert_eq!(code, 201, "{crd}");
    assert_eq!(crd["status"]["storedVersions"], json!(["v1"]));
    assert_eq!(crd["spec"]["names"]["listKind"], "WidgetList");
    let crd = wait_established(&s, "widgets.example.com").await;
    assert_eq!(crd["status"]["acceptedNames"]["shortNames"], json!(["wd"]));
    let names = crd["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "NamesAccepted")
        .unwrap()
        .clone();
    assert_eq!(names["reason"], "NoConflicts");

    // Discovery.
    let base = "/apis/example.com/v1/namespaces/default/widgets";
    wait_code(&s, base, 200).await;
    let (_, rl) = s.get("/apis/example.com/v1").await;
    let widgets = rl["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "widgets")
        .unwrap()
        .clone();
    assert_eq!(widgets["kind"], "Widget");
    assert_eq!(widgets["namespaced"], true);
    assert_eq!(widgets["shortNames"], json!(["wd"]));
    assert_eq!(widgets["categories"], json!(["all"]));
    let subs: Vec<&str> = rl["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert!(subs.contains(&"widgets/status") && subs.contains(&"widgets/scale"));
    let (_, group) = s.get("/apis/example.com").await;
    assert_eq!(group["preferredVersion"]["version"], "v1");
    assert_eq!(group["versions"].as_array().unwrap().len(), 2);

    // Create: defaulted, unknown fields refused in Strict mode and pruned otherwise.
    let (code, w) = s
        .post(
            base,
            json!({"apiVersion": "example.com/v1", "kind": "Widget",
                "metadata": {"name": "w1", "labels": {"app": "x"}},
                "spec": {"color": "red", "replicas": 2}, "status": {"phase": "ignored"}}),
        )
        .await;
    assert_eq!(code, 201, "{w}");
    assert_eq!(w["spec"]["size"], 3, "defaulted: {w}");
    assert!(w.get("status").is_none(), "status is reset on create: {w}");
    assert_eq!(w["metadata"]["generation"], 1);
    let body = r#"{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w2"},"spec":{"color":"blue","bogus":1}}"#;
    let (code, e) = send(
        &s,
        "POST",
        &format!("{base}?fieldValidation=Strict"),
        "application/json",
        body,
    )
    .await;
    assert_eq!(code, 400, "{e}");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("unknown field \"spec.bogus\""),
        "{e}"
    );
    let (code, w2) = send(
        &s,
        "POST",
        &format!("{base}?fieldValidation=Ignore"),
        "application/json",
        body,
    )
    .await;
    assert_eq!(code, 201, "{w2}");
    assert!(w2["spec"].get("bogus").is_none(), "pruned: {w2}");

    // Validation: schema, enum and CEL with upstream's field paths.
    let (code, e) = s
        .post(
            base,
            json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "bad"},
                "spec": {"color": "pink", "size": 20}}),
        )
        .await;
    assert_eq!(code, 422, "{e}");
    assert_eq!(e["reason"], "Invalid");
    let fields: Vec<&str> = e["details"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["field"].as_str())
        .collect();
    assert!(fields.contains(&"spec.color"), "{e}");
    assert!(fields.contains(&"spec"), "CEL rule on spec: {e}");
    let (code, e) = s
        .post(
            base,
            json!({"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": "k"}}),
        )
        .await;
    assert_eq!(code, 400, "{e}");

    // Selectable fields and label selectors.
    let (_, l) = s
        .get(&format!("{base}?fieldSelector=spec.color%3Dblue"))
        .await;
    let names: Vec<&str> = l["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["metadata"]["name"].as_str())
        .collect();
    assert_eq!(names, vec!["w2"]);
    assert_eq!(l["kind"], "WidgetList");
    let (code, _) = s.get(&format!("{base}?fieldSelector=spec.size%3D3")).await;
    assert_eq!(code, 400, "spec.size is not selectable");
    let (_, l) = s.get(&format!("{base}?labelSelector=app%3Dx")).await;
    assert_eq!(l["items"].as_array().unwrap().len(), 1);

    // Table output with the printer columns.
    let t: Value = s
        .http
        .get(s.url(base))
        .header("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let cols: Vec<&str> = t["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(cols, vec!["Name", "Color", "Size"]);
    assert_eq!(t["rows"][0]["cells"], json!(["w1", "red", 3]));

    // Custom resources are JSON only: protobuf-first clients (client-go) get JSON.
    let r = s
        .http
        .get(s.url(base))
        .header(
            "Accept",
            "application/vnd.kubernetes.protobuf, application/json",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    let r = s
        .http
        .get(s.url(base))
        .header("Accept", "application/vnd.kubernetes.protobuf")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 406);

    // Status subresource: the main resource keeps the old status, /status keeps the old spec.
    let mut upd = w.clone();
    upd["status"] = json!({"phase": "Ready", "replicas": 2, "selector": "app=x"});
    upd["spec"]["color"] = json!("green");
    let (code, out) = s.put(&format!("{base}/w1"), upd.clone()).await;
    assert_eq!(code, 200, "{out}");
    assert!(out.get("status").is_none());
    assert_eq!(out["spec"]["color"], "green");
    assert_eq!(out["metadata"]["generation"], 2);
    upd["metadata"]["resourceVersion"] = out["metadata"]["resourceVersion"].clone();
    upd["spec"]["color"] = json!("blue");
    let (code, out) = s.put(&format!("{base}/w1/status"), upd).await;
    assert_eq!(code, 200, "{out}");
    assert_eq!(out["status"]["phase"], "Ready");
    assert_eq!(out["spec"]["color"], "green");
    assert_eq!(out["metadata"]["generation"], 2);

    // Scale subresource.
    let (code, sc) = s.get(&format!("{base}/w1/scale")).await;
    assert_eq!(code, 200, "{sc}");
    assert_eq!(sc["kind"], "Scale");
    assert_eq!(sc["spec"]["replicas"], 2);
    assert_eq!(sc["status"]["replicas"], 2);
    assert_eq!(sc["status"]["selector"], "app=x");
    let (code, sc) = s
        .req(
            "PATCH",
            &format!("{base}/w1/scale"),
            Some(json!({"spec": {"replicas": 5}})),
        )
        .await;
    assert_eq!(code, 200, "{sc}");
    assert_eq!(sc["spec"]["replicas"], 5);
    let (_, w1) = s.get(&format!("{base}/w1")).await;
    assert_eq!(w1["spec"]["replicas"], 5);

    // Patches: merge and JSON patch work, strategic merge is refused with 415.
    let (code, out) = s
        .req(
            "PATCH",
            &format!("{base}/w1"),
            Some(json!({"spec": {"tags": ["a", "b"]}})),
        )
        .await;
    assert_eq!(code, 200, "{out}");
    assert_eq!(out["spec"]["tags"], json!(["a", "b"]));
    let (code, e) = send(
        &s,
        "PATCH",
        &format!("{base}/w1"),
        "application/strategic-merge-patch+json",
        r#"{"spec":{"size":4}}"#,
    )
    .await;
    assert_eq!(code, 415, "{e}");
    let (code, e) = send(
        &s,
        "PATCH",
        &format!("{base}/w1"),
        "application/json-patch+json",
        r#"[{"op":"replace","path":"/spec/tags","value":["a","a"]}]"#,
    )
    .await;
    assert_eq!(code, 422, "duplicate set item: {e}");

    // Server-side apply creates and records the manager.
    let (code, out) = send(
        &s,
        "PATCH",
        &format!("{base}/w3?fieldManager=tester"),
        "application/apply-patch+yaml",
        "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w3\nspec:\n  color: red\n",
    )
    .await;
    assert_eq!(code, 201, "{out}");
    assert_eq!(out["metadata"]["managedFields"][0]["manager"], "tester");
    assert_eq!(
        out["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"]["f:color"],
        json!({})
    );
    let (code, e) = send(
        &s,
        "PATCH",
        &format!("{base}/w3?fieldManager=other"),
        "application/apply-patch+yaml",
        "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w3\nspec:\n  color: blue\n",
    )
    .await;
    assert_eq!(code, 409, "{e}");

    // The other served version: same objects, its own apiVersion.
    let (code, old) = s
        .get("/apis/example.com/v1beta1/namespaces/default/widgets/w1")
        .await;
    assert_eq!(code, 200, "{old}");
    assert_eq!(old["apiVersion"], "example.com/v1beta1");
    let (_, l) = s
        .get("/apis/example.com/v1beta1/namespaces/default/widgets")
        .await;
    assert!(
        l["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["apiVersion"] == "example.com/v1beta1")
    );
    let (code, b) = s
        .post(
            "/apis/example.com/v1beta1/namespaces/default/widgets",
            json!({"apiVersion": "example.com/v1beta1", "kind": "Widget", "metadata": {"name": "wb"}, "spec": {"color": "red"}}),
        )
        .await;
    assert_eq!(code, 201, "{b}");
    let (_, b1) = s.get(&format!("{base}/wb")).await;
    assert_eq!(b1["apiVersion"], "example.com/v1");

    // OpenAPI v3 publishes the schema.
    let (code, doc) = s.get("/openapi/v3/apis/example.com/v1").await;
    assert_eq!(code, 200);
    let def = &doc["components"]["schemas"]["com.example.v1.Widget"];
    assert_eq!(
        def["properties"]["spec"]["properties"]["color"]["enum"],
        json!(["red", "blue", "green"]),
        "{def}"
    );
    // metadata as upstream publishes it in v3: allOf + description (kubectl explain shows it).
    assert_eq!(
        def["properties"]["metadata"]["allOf"][0]["$ref"],
        "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "{def}"
    );
    assert!(
        def["properties"]["metadata"]["description"]
            .as_str()
            .is_some_and(|d| d.starts_with("Standard object's metadata.")),
        "{def}"
    );

    // Deleting the CRD deletes its resources, then the CRD, then stops serving.
    let (code, del) = s
        .delete("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com")
        .await;
    assert_eq!(code, 200, "{del}");
    wait_code(
        &s,
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com",
        404,
    )
    .await;
    wait_code(&s, base, 404).await;
    let (_, apis) = s.get("/apis").await;
    assert!(
        !apis.to_string().contains("example.com"),
        "group still discovered"
    );
}

#[tokio::test]
async fn crd_names_conflict_and_cluster_scope() {
    let s = crate::start(&[]).await;
    let crd = |name: &str, plural: &str, kind: &str| {
        json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": name},
            "spec": {"group": "conflict.io", "scope": "Cluster",
                "names": {"plural": plural, "kind": kind, "shortNames": ["cf"]},
                "versions": [{"name": "v1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}})
    };
    let (code, e) = s
        .post(
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            crd("wrong.conflict.io", "things", "Thing"),
        )
        .await;
    assert_eq!(code, 422, "name must be <plural>.<group>: {e}");
    let (code, _) = s
        .post(
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            crd("things.conflict.io", "things", "Thing"),
        )
        .await;
    assert_eq!(code, 201);
    wait_established(&s, "things.conflict.io").await;
    let (code, _) = s
        .post(
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            crd("others.conflict.io", "others", "Other"),
        )
        .await;
    assert_eq!(code, 201);
    let mut reason = Value::Null;
    for _ in 0..100 {
        let (_, c) = s
            .get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/others.conflict.io")
            .await;
        if let Some(cond) = c["status"]["conditions"]
            .as_array()
            .and_then(|a| a.iter().find(|c| c["type"] == "NamesAccepted"))
        {
            reason = cond["reason"].clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(reason, "ShortNamesConflict");
    // Cluster-scoped resources keep whatever the schema preserves.
    let (code, t) = s
        .post(
            "/apis/conflict.io/v1/things",
            json!({"apiVersion": "conflict.io/v1", "kind": "Thing", "metadata": {"name": "t"}, "anything": {"x": 1}}),
        )
        .await;
    assert_eq!(code, 201, "{t}");
    assert_eq!(t["anything"], json!({"x": 1}));
    assert!(t["metadata"].get("namespace").is_none());
    assert_eq!(t["metadata"]["generation"], 1);
    // Without a status subresource, status is part of the object: changing it bumps the
    // generation (upstream's custom resource strategy).
    let mut t2 = t.clone();
    t2["status"] = json!({"phase": "Ready"});
    let (code, t2) = s.put("/apis/conflict.io/v1/things/t", t2).await;
    assert_eq!(code, 200, "{t2}");
    assert_eq!(t2["status"]["phase"], "Ready");
    assert_eq!(t2["metadata"]["generation"], 2, "{t2}");
    // A schema preserving unknown fields at the root is only `type: object` in OpenAPI v2 (so
    // kubectl's v2 validation lets every field through); v3 keeps the properties.
    let (_, v2) = s.get("/openapi/v2").await;
    let def = &v2["definitions"]["io.conflict.v1.Thing"];
    assert_eq!(def["type"], "object", "{def}");
    assert!(def.get("properties").is_none(), "{def}");
    assert_eq!(def["x-kubernetes-group-version-kind"][0]["kind"], "Thing");
    let (_, v3) = s.get("/openapi/v3/apis/conflict.io/v1").await;
    let def = &v3["components"]["schemas"]["io.conflict.v1.Thing"];
    assert_eq!(def["x-kubernetes-preserve-unknown-fields"], true, "{def}");
    assert!(def["properties"]["metadata"]["allOf"].is_array(), "{def}");
}

#[tokio::test]
async fn crd_schema_updates_apply_and_defaults_show_on_stored_objects() {
    let s = crate::start(&[]).await;
    let mut crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "gizmos.defaults.io"},
        "spec": {"group": "defaults.io", "scope": "Namespaced",
            "names": {"plural": "gizmos", "kind": "Gizmo"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "properties": {"a": {"type": "string"}}}}}}}]}});
    let (code, created) = s
        .post(
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            crd.clone(),
        )
        .await;
    assert_eq!(code, 201, "{created}");
    let established = wait_established(&s, "gizmos.defaults.io").await;
    let base = "/apis/defaults.io/v1/namespaces/default/gizmos";
    wait_code(&s, base, 200).await;
    let (code, g) = s
        .post(
            base,
            json!({"apiVersion": "defaults.io/v1", "kind": "Gizmo", "metadata": {"name": "g"}, "spec": {"a": "x"}}),
        )
        .await;
    assert_eq!(code, 201, "{g}");
    assert!(g["spec"].get("b").is_none());
    // A new field with a default: old objects read back with it, without being rewritten.
    crd["metadata"]["resourceVersion"] = established["metadata"]["resourceVersion"].clone();
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["b"] =
        json!({"type": "string", "default": "from-schema"});
    let (code, out) = s
        .put(
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/gizmos.defaults.io",
            crd,
        )
        .await;
    assert_eq!(code, 200, "{out}");
    assert_eq!(out["metadata"]["generation"], 2);
    let mut got = Value::Null;
    for _ in 0..100 {
        let (_, g) = s.get(&format!("{base}/g")).await;
        if g["spec"]["b"] == "from-schema" {
            got = g;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(got["spec"]["b"], "from-schema", "defaulted on read");
    assert_eq!(
        got["metadata"]["resourceVersion"],
        g["metadata"]["resourceVersion"]
    );
    let (_, l) = s.get(base).await;
    assert_eq!(l["items"][0]["spec"]["b"], "from-schema", "lists too");

    // Ratcheting: after `a` is restricted (the stored "x" is now too long), updates that leave
    // `a` alone still succeed; changing `a` to another invalid value does not.
    let (_, mut crd) = s
        .get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/gizmos.defaults.io")
        .await;
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["a"]
        ["maxLength"] = json!(0);
    let (code, out) = s
        .put(
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/gizmos.defaults.io",
            crd,
        )
        .await;
    assert_eq!(code, 200, "{out}");
    let mut last = Value::Null;
    for _ in 0..100 {
        let (code, b) = s
            .post(
                base,
                json!({"apiVersion": "defaults.io/v1", "kind": "Gizmo", "metadata": {"name": "probe"}, "spec": {"a": "y"}}),
            )
            .await;
        last = b;
        if code == 422 {
            break;
        }
        if code == 201 {
            s.delete(&format!("{base}/probe")).await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(last["reason"], "Invalid", "new schema in force: {last}");
    let (_, mut g) = s.get(&format!("{base}/g")).await;
    g["spec"]["b"] = json!("changed");
    let (code, out) = s.put(&format!("{base}/g"), g.clone()).await;
    assert_eq!(code, 200, "unchanged invalid field is ratcheted: {out}");
    let mut g = out;
    g["spec"]["a"] = json!("xy");
    let (code, out) = s.put(&format!("{base}/g"), g).await;
    assert_eq!(code, 422, "{out}");
    assert!(
        out["message"].as_str().unwrap_or("").contains("spec.a"),
        "{out}"
    );
}
