//! Replays what stock kubectl reads from the documents: the v3 index
//! (client-go/openapi), `kubectl explain` (kubectl/pkg/explain/v2/templates/plaintext.tmpl)
//! and the fieldValidation support check (cli-runtime query_param_verifier_v3.go).

mod common;

use serde_json::{Value, json};

/// client-go's `PathsWithContext` + `GroupVersionToAPIPath`: find the document of a GV.
fn gv_doc(docs: &apiserver_openapi::OpenApiDocuments, group: &str, version: &str) -> Value {
    let index = docs.v3_index();
    let key = if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    };
    let url = index["paths"][&key]["serverRelativeURL"]
        .as_str()
        .unwrap_or_else(|| panic!("{key} missing from index {index}"))
        .to_string();
    let (path, query) = url.split_once('?').expect("url has a query");
    assert_eq!(path, format!("/openapi/v3/{key}"));
    let hash = query.strip_prefix("hash=").expect("hash parameter");
    let resp = docs.serve(&apiserver_openapi::OpenApiRequest {
        path,
        hash: Some(hash),
        accept: Some("application/json"),
        if_none_match: None,
    });
    match resp {
        apiserver_openapi::OpenApiResponse::Ok {
            body, immutable, ..
        } => {
            assert!(immutable, "a hashed URL is served as immutable");
            serde_json::from_slice(&body).expect("valid JSON")
        }
        other => panic!("unexpected response {other:?}"),
    }
}

/// `resolveRef` of the explain templates.
fn resolve<'a>(doc: &'a Value, r: &str) -> Option<&'a Value> {
    let frag = r.strip_prefix('#')?;
    let mut cur = doc;
    for part in frag.split('/').filter(|p| !p.is_empty()) {
        cur = cur.get(part)?;
        if !cur.is_object() {
            return None;
        }
    }
    Some(cur)
}

/// The template's GVK search over the resource's paths.
fn explain_gvk(doc: &Value, group: &str, version: &str, resource: &str) -> Option<Value> {
    let prefix = if group.is_empty() {
        "/api".to_string()
    } else {
        format!("/apis/{group}")
    };
    let candidates = [
        format!("{prefix}/{version}/{resource}"),
        format!("{prefix}/{version}/{resource}/{{name}}"),
        format!("{prefix}/{version}/namespaces/{{namespace}}/{resource}"),
        format!("{prefix}/{version}/namespaces/{{namespace}}/{resource}/{{name}}"),
    ];
    for path in &candidates {
        let Some(item) = doc["paths"].get(path) else {
            continue;
        };
        for method in ["get", "post", "put", "patch", "delete"] {
            if let Some(gvk) = item
                .get(method)
                .and_then(|op| op.get("x-kubernetes-group-version-kind"))
            {
                return Some(gvk.clone());
            }
        }
    }
    None
}

/// The template's "output" walk: follow a field path through properties, items,
/// additionalProperties and allOf; returns the schema reached (resolved).
fn explain_field<'a>(doc: &'a Value, gvk: &Value, fields: &[&str]) -> Option<&'a Value> {
    let schemas = doc["components"]["schemas"].as_object()?;
    let root = schemas.values().find(|s| {
        s.get("x-kubernetes-group-version-kind")
            .and_then(Value::as_array)
            .is_some_and(|l| l.contains(gvk))
    })?;
    walk(doc, root, fields)
}

fn walk<'a>(doc: &'a Value, schema: &'a Value, fields: &[&str]) -> Option<&'a Value> {
    let resolved = match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => resolve(doc, r)?,
        None => schema,
    };
    let Some((first, rest)) = fields.split_first() else {
        // fieldList descends into allOf to list the fields of a wrapped reference.
        if resolved.get("properties").is_none()
            && let Some(inner) = resolved.get("allOf").and_then(|a| a.get(0))
        {
            return walk(doc, inner, fields);
        }
        return Some(resolved);
    };
    if let Some(sub) = resolved.get("properties").and_then(|p| p.get(*first)) {
        return walk(doc, sub, rest);
    }
    if let Some(items) = resolved.get("items") {
        return walk(doc, items, fields);
    }
    if let Some(ap) = resolved
        .get("additionalProperties")
        .filter(|a| a.is_object())
    {
        return walk(doc, ap, fields);
    }
    resolved
        .get("allOf")
        .and_then(Value::as_array)
        .and_then(|all| all.iter().find_map(|s| walk(doc, s, fields)))
}

/// The template's typeGuess for a property schema.
fn type_guess(doc: &Value, s: &Value) -> String {
    if let Some(items) = s.get("items") {
        return format!("[]{}", type_guess(doc, items));
    }
    if let Some(ap) = s.get("additionalProperties").filter(|a| a.is_object()) {
        return format!("map[string]{}", type_guess(doc, ap));
    }
    if let (Some(all), None) = (
        s.get("allOf").and_then(Value::as_array),
        s.get("properties"),
    ) && all.len() == 1
    {
        return type_guess(doc, &all[0]);
    }
    if let Some(r) = s.get("$ref").and_then(Value::as_str) {
        let target = resolve(doc, r);
        return match target.and_then(|t| t.get("type")).and_then(Value::as_str) {
            Some(t) if t != "object" => t.to_string(),
            _ => r.rsplit('.').next().unwrap_or("Object").to_string(),
        };
    }
    match s.get("type").and_then(Value::as_str) {
        Some("object") | None => "Object".into(),
        Some(t) => t.into(),
    }
}

#[test]
fn explain_finds_kinds_and_fields() {
    let docs = common::small().build();
    let core = gv_doc(&docs, "", "v1");
    let apps = gv_doc(&docs, "apps", "v1");

    for (doc, g, res, kind) in [
        (&core, "", "pods", "Pod"),
        (&core, "", "configmaps", "ConfigMap"),
        (&core, "", "namespaces", "Namespace"),
        (&apps, "apps", "deployments", "Deployment"),
    ] {
        let gvk = explain_gvk(doc, g, "v1", res).unwrap_or_else(|| panic!("no GVK for {res}"));
        assert_eq!(gvk, json!({"group": g, "kind": kind, "version": "v1"}));
        let top = explain_field(doc, &gvk, &[]).unwrap_or_else(|| panic!("no schema for {kind}"));
        assert!(
            top["properties"]["metadata"].is_object(),
            "{kind} has metadata"
        );
    }

    let pod = explain_gvk(&core, "", "v1", "pods").unwrap_or_default();
    let name =
        explain_field(&core, &pod, &["spec", "containers", "name"]).expect("spec.containers.name");
    assert_eq!(name["type"], "string");
    let containers =
        explain_field(&core, &pod, &["spec"]).expect("spec")["properties"]["containers"].clone();
    assert_eq!(type_guess(&core, &containers), "[]Container");
    let spec_prop = &explain_field(&core, &pod, &[]).expect("pod")["properties"]["spec"];
    assert_eq!(type_guess(&core, spec_prop), "PodSpec");
    let created = &explain_field(&core, &pod, &["metadata"]).expect("metadata")["properties"]["creationTimestamp"];
    assert_eq!(type_guess(&core, created), "string", "Time is a string");
    let limits = &explain_field(&core, &pod, &["spec", "containers", "resources"])
        .expect("resources")["properties"]["limits"];
    assert_eq!(type_guess(&core, limits), "map[string]Quantity");

    let deploy = explain_gvk(&apps, "apps", "v1", "deployments").unwrap_or_default();
    let surge = &explain_field(&apps, &deploy, &["spec", "strategy", "rollingUpdate"])
        .expect("rollingUpdate")["properties"]["maxSurge"];
    assert_eq!(type_guess(&apps, surge), "IntOrString");
    assert!(
        explain_field(
            &apps,
            &deploy,
            &["spec", "template", "spec", "containers", "image"]
        )
        .is_some()
    );
    assert!(explain_field(&apps, &deploy, &["spec", "nosuchfield"]).is_none());
}

/// cli-runtime's supportsQueryParamV3: the first PATCH operation carrying the GVK decides, and
/// Go iterates paths in random order, so every such operation must list the parameter.
fn supports_field_validation(doc: &Value, gvk: &Value) -> bool {
    let mut found = false;
    for item in doc["paths"]
        .as_object()
        .into_iter()
        .flat_map(|p| p.values())
    {
        let Some(op) = item.get("patch") else {
            continue;
        };
        if op.get("x-kubernetes-group-version-kind") != Some(gvk) {
            continue;
        }
        let has = op["parameters"]
            .as_array()
            .is_some_and(|ps| ps.iter().any(|p| p["name"] == "fieldValidation"));
        if !has {
            return false;
        }
        found = true;
    }
    found
}

#[test]
fn field_validation_is_advertised_on_every_patch() {
    let docs = common::small().build();
    let core = gv_doc(&docs, "", "v1");
    let apps = gv_doc(&docs, "apps", "v1");
    for (doc, g, kind) in [
        (&core, "", "Pod"),
        (&core, "", "ConfigMap"),
        (&core, "", "Namespace"),
        (&apps, "apps", "Deployment"),
        (&apps, "autoscaling", "Scale"),
    ] {
        let gvk = json!({"group": g, "kind": kind, "version": "v1"});
        assert!(supports_field_validation(doc, &gvk), "{kind}");
    }
    // Create (POST) and update (PUT) carry it too; `kubectl create` relies on the same check.
    let item = &core["paths"]["/api/v1/namespaces/{namespace}/pods"]["post"]["parameters"];
    assert!(
        item.as_array()
            .is_some_and(|ps| ps.iter().any(|p| p["name"] == "fieldValidation"))
    );
    // A kind that is not served has no support.
    assert!(!supports_field_validation(
        &core,
        &json!({"group": "", "kind": "Secret", "version": "v1"})
    ));
}

#[test]
fn index_lists_group_versions_with_content_hashes() {
    let docs = common::small().build();
    let index = docs.v3_index();
    let paths = index["paths"].as_object().expect("paths object");
    let keys: Vec<&str> = paths.keys().map(String::as_str).collect();
    assert_eq!(keys, ["api/v1", "apis/apps/v1"]);
    for (key, entry) in paths {
        let url = entry["serverRelativeURL"].as_str().expect("url");
        let (body, etag) = docs.v3_group_version_json(key).expect("document");
        assert_eq!(url, format!("/openapi/v3/{key}?hash={etag}"));
        assert_eq!(etag, apiserver_openapi::etag(body));
        assert_eq!(etag.len(), 128);
        assert!(
            etag.chars()
                .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
        );
    }
    // The hash changes with the content.
    let mut more = common::small();
    more.add_resource::<k8s_openapi::api::core::v1::Secret>(&common::info(
        "",
        "v1",
        "secrets",
        "Secret",
        apiserver_apimachinery::Scope::Namespaced,
        vec![],
    ));
    let more = more.build();
    assert_ne!(
        more.v3_group_version_json("api/v1")
            .map(|x| x.1.to_string()),
        docs.v3_group_version_json("api/v1")
            .map(|x| x.1.to_string())
    );
    assert_eq!(
        more.v3_group_version_json("apis/apps/v1")
            .map(|x| x.1.to_string()),
        docs.v3_group_version_json("apis/apps/v1")
            .map(|x| x.1.to_string()),
        "unchanged group versions keep their hash"
    );
}
