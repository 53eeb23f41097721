//! CRUD, errors, subresources, negotiation and discovery.

use crate::{rv, start};
use serde_json::{Value, json};

fn cm(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "creationTimestamp": null}, "data": {"a": "1"}})
}

#[tokio::test]
async fn crud_conflicts_and_status_bodies() {
    let s = start(&[]).await;
    let base = "/api/v1/namespaces/default/configmaps";
    let (code, created) = s.post(base, cm("one")).await;
    assert_eq!(code, 201, "{created}");
    assert!(created["metadata"]["uid"].is_string());
    assert!(created["metadata"]["creationTimestamp"].is_string());
    let (code, dup) = s.post(base, cm("one")).await;
    assert_eq!(code, 409);
    assert_eq!(dup["reason"], "AlreadyExists");
    assert_eq!(dup["message"], "configmaps \"one\" already exists");
    assert_eq!(dup["details"]["kind"], "configmaps");

    // stale update -> 409 Conflict with upstream's message
    let mut stale = created.clone();
    stale["data"]["a"] = json!("2");
    let (code, updated) = s.put(&format!("{base}/one"), stale.clone()).await;
    assert_eq!(code, 200, "{updated}");
    assert!(rv(&updated) > rv(&created));
    let (code, conflict) = s.put(&format!("{base}/one"), stale).await;
    assert_eq!(code, 409);
    assert_eq!(conflict["reason"], "Conflict");
    assert_eq!(
        conflict["message"],
        "Operation cannot be fulfilled on configmaps \"one\": the object has been modified; please apply your changes to the latest version and try again"
    );
    // an unchanged update writes nothing
    let (code, same) = s.put(&format!("{base}/one"), updated.clone()).await;
    assert_eq!(code, 200);
    assert_eq!(
        rv(&same),
        rv(&updated),
        "no-op update keeps the resourceVersion"
    );

    // 404 as a Status
    let (code, nf) = s.get(&format!("{base}/missing")).await;
    assert_eq!(code, 404);
    assert_eq!(nf["kind"], "Status");
    assert_eq!(nf["message"], "configmaps \"missing\" not found");

    // invalid -> 422 with causes
    let (code, inv) = s.post(base, cm("Bad_Name")).await;
    assert_eq!(code, 422);
    assert_eq!(inv["reason"], "Invalid");
    assert_eq!(inv["details"]["causes"][0]["field"], "metadata.name");
    assert_eq!(inv["details"]["causes"][0]["reason"], "FieldValueInvalid");

    // delete answers a Success Status and the object is gone
    let (code, del) = s.delete(&format!("{base}/one")).await;
    assert_eq!(code, 200);
    assert_eq!(del["status"], "Success");
    assert_eq!(s.get(&format!("{base}/one")).await.0, 404);
}

#[tokio::test]
async fn list_revision_paging_and_selectors() {
    let s = start(&[]).await;
    let base = "/api/v1/namespaces/default/configmaps";
    for i in 0..5 {
        let mut o = cm(&format!("c{i}"));
        o["metadata"]["labels"] = json!({"parity": if i % 2 == 0 { "even" } else { "odd" }});
        assert_eq!(s.post(base, o).await.0, 201);
    }
    // A write to another resource advances the store revision; a list reports the store revision.
    let (_, other) = s
        .post(
            "/api/v1/namespaces/default/secrets",
            json!({"metadata": {"name": "s"}}),
        )
        .await;
    let (code, list) = s.get(base).await;
    assert_eq!(code, 200);
    assert_eq!(list["kind"], "ConfigMapList");
    assert_eq!(list["items"].as_array().unwrap().len(), 5);
    assert!(
        rv(&list) >= rv(&other),
        "list resourceVersion is the store revision, not the newest item's"
    );

    let (_, page1) = s.get(&format!("{base}?limit=2")).await;
    assert_eq!(page1["items"].as_array().unwrap().len(), 2);
    assert_eq!(page1["metadata"]["remainingItemCount"], 3);
    let cont = page1["metadata"]["continue"].as_str().unwrap().to_string();
    let (_, page2) = s.get(&format!("{base}?limit=2&continue={cont}")).await;
    assert_eq!(page2["items"][0]["metadata"]["name"], "c2");
    assert_eq!(
        rv(&page2),
        rv(&page1),
        "every page is read at the first page's revision"
    );
    let (code, bad) = s.get(&format!("{base}?continue=garbage")).await;
    assert_eq!(code, 400, "{bad}");

    let (_, even) = s.get(&format!("{base}?labelSelector=parity%3Deven")).await;
    assert_eq!(even["items"].as_array().unwrap().len(), 3);
    let (_, by_name) = s
        .get(&format!("{base}?fieldSelector=metadata.name%3Dc1"))
        .await;
    assert_eq!(by_name["items"].as_array().unwrap().len(), 1);
    let (code, _) = s.get(&format!("{base}?labelSelector=a%20in%20(")).await;
    assert_eq!(code, 400);

    // resourceVersion far in the future times out with 504 and reason Timeout
    let (code, too_new) = s
        .get(&format!(
            "{base}?resourceVersion=999999&resourceVersionMatch=NotOlderThan"
        ))
        .await;
    assert_eq!(code, 504, "{too_new}");
    assert_eq!(too_new["reason"], "Timeout");

    // all-namespaces list
    let (code, all) = s.get("/api/v1/configmaps").await;
    assert_eq!(code, 200);
    assert_eq!(all["items"].as_array().unwrap().len(), 5);
}

#[tokio::test]
async fn namespaces_lifecycle_and_generate_name() {
    let s = start(&[]).await;
    let (code, e) = s.post("/api/v1/namespaces/nope/configmaps", cm("x")).await;
    assert_eq!(code, 404);
    assert_eq!(e["message"], "namespaces \"nope\" not found");
    assert_eq!(
        s.post(
            "/api/v1/namespaces",
            json!({"metadata": {"name": "doomed"}})
        )
        .await
        .0,
        201
    );
    let (code, ns) = s.delete("/api/v1/namespaces/doomed").await;
    assert_eq!(code, 200);
    assert_eq!(
        ns["status"]["phase"], "Terminating",
        "namespaces with spec finalizers are only marked"
    );
    let (code, e) = s
        .post("/api/v1/namespaces/doomed/configmaps", cm("x"))
        .await;
    assert_eq!(code, 403);
    assert_eq!(e["details"]["causes"][0]["reason"], "NamespaceTerminating");
    // finalize removes the spec finalizer; the namespace is then deleted
    let mut fin = ns.clone();
    fin["spec"]["finalizers"] = json!([]);
    let (code, _) = s.put("/api/v1/namespaces/doomed/finalize", fin).await;
    assert_eq!(code, 200);
    assert_eq!(s.get("/api/v1/namespaces/doomed").await.0, 404);

    let (code, g) = s
        .post(
            "/api/v1/namespaces/default/configmaps",
            json!({"metadata": {"generateName": "gen-"}}),
        )
        .await;
    assert_eq!(code, 201);
    let name = g["metadata"]["name"].as_str().unwrap();
    assert!(name.starts_with("gen-") && name.len() == 9, "{name}");
}

#[tokio::test]
async fn finalizers_dry_run_and_field_validation() {
    let s = start(&[]).await;
    let base = "/api/v1/namespaces/default/configmaps";
    let mut o = cm("held");
    o["metadata"]["finalizers"] = json!(["example.com/hold"]);
    let (_, created) = s.post(base, o).await;
    let (code, marked) = s.delete(&format!("{base}/held")).await;
    assert_eq!(code, 200);
    assert!(marked["metadata"]["deletionTimestamp"].is_string());
    let (code, _) = s.get(&format!("{base}/held")).await;
    assert_eq!(code, 200, "an object with finalizers is only marked");
    let mut cur = s.get(&format!("{base}/held")).await.1;
    cur["metadata"]["finalizers"] = json!([]);
    assert_eq!(s.put(&format!("{base}/held"), cur).await.0, 200);
    assert_eq!(
        s.get(&format!("{base}/held")).await.0,
        404,
        "removing the last finalizer deletes it"
    );
    let _ = created;

    let (code, _) = s.post(&format!("{base}?dryRun=All"), cm("dry")).await;
    assert_eq!(code, 201);
    assert_eq!(
        s.get(&format!("{base}/dry")).await.0,
        404,
        "dry run stores nothing"
    );

    let mut unknown = cm("u");
    unknown["spec"] = json!({"x": 1});
    let (code, e) = s
        .post(&format!("{base}?fieldValidation=Strict"), unknown.clone())
        .await;
    assert_eq!(code, 400);
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("unknown field \"spec\""),
        "{e}"
    );
    let resp = s
        .http
        .post(s.url(&format!("{base}?fieldValidation=Warn")))
        .header("Content-Type", "application/json")
        .body(serde_json::to_vec(&unknown).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let warning = resp
        .headers()
        .get("Warning")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        warning.starts_with("299 - ") && warning.contains("unknown field"),
        "{warning}"
    );
}

#[tokio::test]
async fn pods_status_binding_graceful_delete_and_scale() {
    let s = start(&[]).await;
    let pods = "/api/v1/namespaces/default/pods";
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}});
    let (code, p) = s.post(pods, pod).await;
    assert_eq!(code, 201, "{p}");
    assert_eq!(p["status"]["phase"], "Pending");
    assert_eq!(p["status"]["qosClass"], "BestEffort");
    assert_eq!(p["spec"]["containers"][0]["imagePullPolicy"], "Always");
    // status writes cannot change spec
    let mut st = p.clone();
    st["status"]["phase"] = json!("Running");
    st["spec"]["activeDeadlineSeconds"] = json!(5);
    let (code, after) = s.put(&format!("{pods}/p/status"), st).await;
    assert_eq!(code, 200, "{after}");
    assert_eq!(after["status"]["phase"], "Running");
    assert!(after["spec"]["activeDeadlineSeconds"].is_null());
    // bind, then bind again -> 409
    let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p"}, "target": {"kind": "Node", "name": "n1"}});
    let (code, b) = s.post(&format!("{pods}/p/binding"), binding.clone()).await;
    assert_eq!(code, 201, "{b}");
    let (code, e) = s.post(&format!("{pods}/p/binding"), binding).await;
    assert_eq!(code, 409, "{e}");
    // a scheduled pod is deleted gracefully
    let (code, del) = s.delete(&format!("{pods}/p")).await;
    assert_eq!(code, 200);
    assert_eq!(del["metadata"]["deletionGracePeriodSeconds"], 30);
    assert_eq!(s.get(&format!("{pods}/p")).await.0, 200);
    let (code, _) = s
        .req(
            "DELETE",
            &format!("{pods}/p"),
            Some(json!({"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0})),
        )
        .await;
    assert_eq!(code, 200);
    assert_eq!(s.get(&format!("{pods}/p")).await.0, 404);

    let deploy = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"selector": {"matchLabels": {"app": "d"}}, "template": {"metadata": {"labels": {"app": "d"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}});
    let (code, d) = s
        .post("/apis/apps/v1/namespaces/default/deployments", deploy)
        .await;
    assert_eq!(code, 201, "{d}");
    assert_eq!(d["metadata"]["generation"], 1);
    let (code, scale) = s
        .get("/apis/apps/v1/namespaces/default/deployments/d/scale")
        .await;
    assert_eq!(code, 200);
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["spec"]["replicas"], 1);
    assert_eq!(scale["status"]["selector"], "app=d");
    let (code, _) = s
        .req(
            "PATCH",
            "/apis/apps/v1/namespaces/default/deployments/d/scale",
            Some(json!({"spec": {"replicas": 4}})),
        )
        .await;
    assert_eq!(code, 200);
    let (_, d2) = s
        .get("/apis/apps/v1/namespaces/default/deployments/d")
        .await;
    assert_eq!(d2["spec"]["replicas"], 4);
    assert_eq!(
        d2["metadata"]["generation"], 2,
        "a spec change bumps generation"
    );
}

#[tokio::test]
async fn negotiation_protobuf_tables_and_discovery() {
    let s = start(&[]).await;
    // protobuf request and response bodies
    let body = apiserver_protobuf::encode(&json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "pb"}, "data": {"k": "v"}})).unwrap();
    let resp = s
        .http
        .post(s.url("/api/v1/namespaces/default/configmaps"))
        .header("Content-Type", "application/vnd.kubernetes.protobuf")
        .header(
            "Accept",
            "application/vnd.kubernetes.protobuf,application/json",
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    assert_eq!(
        resp.headers()["content-type"],
        "application/vnd.kubernetes.protobuf"
    );
    let back = apiserver_protobuf::decode(&resp.bytes().await.unwrap()).unwrap();
    assert_eq!(back["data"]["k"], "v");

    // Table output with upstream's pod columns
    s.post("/api/v1/namespaces/default/pods", json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}})).await;
    let resp = s
        .http
        .get(s.url("/api/v1/namespaces/default/pods"))
        .header(
            "Accept",
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
        )
        .send()
        .await
        .unwrap();
    let t: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(t["kind"], "Table");
    let cols: Vec<&str> = t["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(&cols[..5], &["Name", "Ready", "Status", "Restarts", "Age"]);
    assert_eq!(t["rows"][0]["cells"][0], "p");
    assert_eq!(t["rows"][0]["cells"][2], "Pending");
    assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
    let resp = s
        .http
        .get(s.url("/api/v1/pods"))
        .header("Accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 406);

    // aggregated discovery answers with its own content type
    let resp = s
        .http
        .get(s.url("/apis"))
        .header(
            "Accept",
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.headers()["content-type"],
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    );
    let d: serde_json::Value = resp.json().await.unwrap();
    let apps = d["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["metadata"]["name"] == "apps")
        .unwrap();
    let deploy = apps["versions"][0]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["resource"] == "deployments")
        .unwrap();
    assert_eq!(deploy["shortNames"], json!(["deploy"]));
    assert!(
        deploy["subresources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|sr| sr["subresource"] == "scale" && sr["responseKind"]["kind"] == "Scale")
    );
    let (_, core) = s.get("/api/v1").await;
    let pods = core["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "pods")
        .unwrap();
    assert_eq!(pods["shortNames"], json!(["po"]));
    assert_eq!(pods["categories"], json!(["all"]));
    let (code, _) = s.get("/openapi/v2").await;
    assert_eq!(code, 200);
    let (code, idx) = s.get("/openapi/v3").await;
    assert_eq!(code, 200);
    assert!(idx["paths"]["apis/apps/v1"]["serverRelativeURL"].is_string());
    let (code, v) = s.get("/version").await;
    assert_eq!((code, v["major"].as_str()), (200, Some("1")));
}

#[tokio::test]
async fn expired_continue_offers_an_inconsistent_continuation() {
    let s = start(&["--etcd-compaction-interval=1s"]).await;
    let base = "/api/v1/namespaces/default/configmaps";
    for i in 0..5 {
        assert_eq!(s.post(base, cm(&format!("c{i}"))).await.0, 201);
    }
    let (_, page1) = s.get(&format!("{base}?limit=2")).await;
    let cont = page1["metadata"]["continue"].as_str().unwrap().to_string();
    // Move the store on and let two compaction ticks pass, so the list's revision is compacted.
    s.post(base, cm("later")).await;
    tokio::time::sleep(std::time::Duration::from_millis(2600)).await;
    s.post(base, cm("later2")).await;
    let (code, gone) = s.get(&format!("{base}?limit=2&continue={cont}")).await;
    assert_eq!(code, 410, "{gone}");
    assert_eq!(gone["reason"], "Expired");
    let next = gone["metadata"]["continue"]
        .as_str()
        .expect("a continue token is offered")
        .to_string();
    let (code, rest) = s.get(&format!("{base}?limit=10&continue={next}")).await;
    assert_eq!(code, 200, "{rest}");
    let names: Vec<&str> = rest["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["c2", "c3", "c4", "later", "later2"]);
}

/// Built-in pod admission: Priority, DefaultTolerationSeconds and ServiceAccount defaults.
#[tokio::test]
async fn pod_admission_priority_tolerations_service_account() {
    // With the ServiceAccount plugin, whose account must exist.
    let s = start(&["--disable-admission-plugins="]).await;
    let (code, sa) = s
        .post(
            "/api/v1/namespaces/default/serviceaccounts",
            json!({"metadata": {"name": "default"}}),
        )
        .await;
    assert_eq!(code, 201, "{sa}");
    let pod = |name: &str, extra: Value| {
        let mut p = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}});
        if let (Some(spec), Some(e)) = (p["spec"].as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                spec.insert(k.clone(), v.clone());
            }
        }
        p
    };
    let (code, p) = s
        .req(
            "POST",
            "/api/v1/namespaces/default/pods",
            Some(pod("plain", json!({}))),
        )
        .await;
    assert_eq!(code, 201, "{p}");
    assert_eq!(p["spec"]["priority"], 0);
    assert_eq!(p["spec"]["preemptionPolicy"], "PreemptLowerPriority");
    assert_eq!(p["spec"]["serviceAccountName"], "default");
    let tols = p["spec"]["tolerations"].as_array().unwrap();
    for key in [
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
    ] {
        assert!(
            tols.iter().any(|t| t["key"] == key
                && t["effect"] == "NoExecute"
                && t["tolerationSeconds"] == 300),
            "{tols:?}"
        );
    }
    // A pod that tolerates everything gets no extra tolerations.
    let (_, p) = s
        .req(
            "POST",
            "/api/v1/namespaces/default/pods",
            Some(pod(
                "tolerant",
                json!({"tolerations": [{"operator": "Exists"}]}),
            )),
        )
        .await;
    assert_eq!(p["spec"]["tolerations"].as_array().unwrap().len(), 1);
    let (code, p) = s
        .req(
            "POST",
            "/api/v1/namespaces/default/pods",
            Some(pod(
                "critical",
                json!({"priorityClassName": "system-node-critical"}),
            )),
        )
        .await;
    assert_eq!(code, 201, "{p}");
    assert_eq!(p["spec"]["priority"], 2_000_001_000);
    let (code, st) = s
        .req(
            "POST",
            "/api/v1/namespaces/default/pods",
            Some(pod("nope", json!({"priorityClassName": "no-such-class"}))),
        )
        .await;
    assert_eq!(code, 403, "{st}");
    assert_eq!(
        st["message"],
        "pods \"nope\" is forbidden: no PriorityClass with name no-such-class was found"
    );
}
