//! Structure of the documents: definitions resolvable, upstream shapes of special types,
//! kube-openapi's proto-model parse rules for v2 (kubectl's validator and `apply` load v2 and
//! fail on any violation), the protobuf encoding, HTTP semantics and build time.

mod common;

use std::collections::BTreeSet;
use std::time::Instant;

use apiserver_openapi::{OpenApiRequest, OpenApiResponse};
use serde_json::{Map, Value, json};

fn refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("$ref", Value::String(r)) => out.push(r.clone()),
                    _ => refs(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

#[test]
fn every_reference_resolves() {
    let docs = common::large().build();
    let v2 = docs.v2();
    let defs = v2["definitions"].as_object().expect("definitions");
    let mut all = Vec::new();
    refs(&v2, &mut all);
    assert!(all.len() > 1000);
    for r in &all {
        let name = r
            .strip_prefix("#/definitions/")
            .unwrap_or_else(|| panic!("v2 ref {r}"));
        assert!(defs.contains_key(name), "v2 dangling {r}");
    }
    for gv in docs.v3_paths().map(str::to_string).collect::<Vec<_>>() {
        let doc = docs.v3_group_version(&gv).expect("doc");
        let schemas = doc["components"]["schemas"].as_object().expect("schemas");
        let mut all = Vec::new();
        refs(&doc, &mut all);
        for r in &all {
            let name = r
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("v3 ref {r}"));
            assert!(schemas.contains_key(name), "{gv}: dangling {r}");
        }
        assert_eq!(doc["openapi"], "3.0.0");
    }
}

/// OpenAPI 3.0 ignores siblings of `$ref`; upstream wraps such references in `allOf`.
fn assert_no_ref_siblings(v: &Value, at: &str) {
    match v {
        Value::Object(m) => {
            if m.get("$ref").is_some_and(Value::is_string) {
                assert_eq!(m.len(), 1, "$ref with siblings at {at}: {v}");
            }
            for (k, x) in m {
                assert_no_ref_siblings(x, &format!("{at}/{k}"));
            }
        }
        Value::Array(a) => a.iter().for_each(|x| assert_no_ref_siblings(x, at)),
        _ => {}
    }
}

#[test]
fn v3_shapes_match_upstream() {
    let docs = common::small().build();
    let core = docs.v3_group_version("api/v1").expect("api/v1");
    assert_no_ref_siblings(&core, "");
    let s = &core["components"]["schemas"];
    assert_eq!(
        s["io.k8s.api.core.v1.Pod"]["properties"]["metadata"]["allOf"],
        json!([{"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}])
    );
    let ios = &s["io.k8s.apimachinery.pkg.util.intstr.IntOrString"];
    assert_eq!(ios["format"], "int-or-string");
    assert_eq!(
        ios["oneOf"],
        json!([{"type": "integer"}, {"type": "string"}])
    );
    assert_eq!(ios["x-kubernetes-int-or-string"], true);
    assert_eq!(
        s["io.k8s.apimachinery.pkg.api.resource.Quantity"]["oneOf"],
        json!([{"type": "string"}, {"type": "number"}])
    );
    let time = &s["io.k8s.apimachinery.pkg.apis.meta.v1.Time"];
    assert_eq!(
        (time["type"].as_str(), time["format"].as_str()),
        (Some("string"), Some("date-time"))
    );
    assert_eq!(
        s["io.k8s.api.core.v1.PodList"]["x-kubernetes-group-version-kind"],
        json!([{"group": "", "kind": "PodList", "version": "v1"}])
    );
    // DeleteOptions and WatchEvent name every served group version, as upstream does.
    let del =
        s["io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions"]["x-kubernetes-group-version-kind"]
            .as_array()
            .cloned()
            .unwrap_or_default();
    assert!(del.contains(&json!({"group": "apps", "kind": "DeleteOptions", "version": "v1"})));
    assert!(del.contains(&json!({"group": "", "kind": "DeleteOptions", "version": "v1"})));
    // Only what api/v1's paths reach is in its document.
    assert!(s.get("io.k8s.api.apps.v1.Deployment").is_none());
    // k8s-openapi marks metadata/spec required; upstream does not for these kinds.
    assert!(s["io.k8s.api.core.v1.Pod"].get("required").is_none());
    let apps = docs.v3_group_version("apis/apps/v1").expect("apps");
    let dep = &apps["components"]["schemas"]["io.k8s.api.apps.v1.Deployment"];
    assert!(dep.get("required").is_none(), "{}", dep["required"]);
    assert_eq!(
        apps["components"]["schemas"]["io.k8s.api.apps.v1.DeploymentSpec"]["required"],
        json!(["selector", "template"])
    );
    // Paths carry actions and GVKs.
    let p =
        &apps["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"]["patch"];
    assert_eq!(p["x-kubernetes-action"], "patch");
    assert_eq!(
        p["x-kubernetes-group-version-kind"],
        json!({"group": "autoscaling", "kind": "Scale", "version": "v1"})
    );
    let list = &core["paths"]["/api/v1/namespaces/{namespace}/pods"]["get"];
    assert_eq!(list["x-kubernetes-action"], "list");
    let names: Vec<&str> = list["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["name"].as_str())
        .collect();
    for n in [
        "labelSelector",
        "fieldSelector",
        "watch",
        "limit",
        "continue",
        "resourceVersion",
    ] {
        assert!(names.contains(&n), "list lacks {n}");
    }
    let exec = &core["paths"]["/api/v1/namespaces/{namespace}/pods/{name}/exec"]["post"];
    assert_eq!(exec["x-kubernetes-action"], "connect");
    assert_eq!(
        exec["x-kubernetes-group-version-kind"]["kind"],
        "PodExecOptions"
    );
    assert!(core["paths"]["/api/v1/watch/namespaces/{namespace}/pods/{name}"]["get"].is_object());
    assert!(core["paths"]["/api/v1/pods"]["get"].is_object());
    assert!(core["paths"]["/api/v1/namespaces/{name}/finalize"]["put"].is_object());
    assert!(
        core["paths"]["/api/v1/namespaces/{name}/finalize"]
            .get("patch")
            .is_none()
    );
}

/// kube-openapi/pkg/util/proto `NewOpenAPIData`: every definition of the v2 document must
/// parse, or kubectl's `Validator`/`OpenAPISchema` fail.
fn check_proto_model(s: &Value, defs: &Map<String, Value>, at: &str) {
    let obj = s
        .as_object()
        .unwrap_or_else(|| panic!("{at}: schema is not an object"));
    if let Some(r) = obj.get("$ref").and_then(Value::as_str) {
        assert!(
            obj.get("properties").is_none(),
            "{at}: $ref with properties"
        );
        assert!(obj.get("type").is_none(), "{at}: $ref with a type");
        let target = r
            .strip_prefix("#/definitions/")
            .unwrap_or_else(|| panic!("{at}: ref {r}"));
        assert!(defs.contains_key(target), "{at}: unknown model {target}");
        return;
    }
    let types: Vec<&str> = match obj.get("type") {
        None => vec![],
        Some(Value::String(t)) => vec![t.as_str()],
        Some(other) => panic!("{at}: type {other}"),
    };
    let props = obj.get("properties").and_then(Value::as_object);
    match types.as_slice() {
        [] | ["object"] => {
            if let Some(props) = props {
                for (k, p) in props {
                    check_proto_model(p, defs, &format!("{at}.{k}"));
                }
            } else if let Some(ap) = obj.get("additionalProperties").filter(|a| a.is_object()) {
                check_proto_model(ap, defs, &format!("{at}[*]"));
            }
        }
        ["array"] => {
            let items = obj
                .get("items")
                .unwrap_or_else(|| panic!("{at}: array without items"));
            assert!(
                items.is_object(),
                "{at}: array should have exactly one sub-item"
            );
            check_proto_model(items, defs, &format!("{at}[]"));
        }
        [t] => assert!(
            ["string", "number", "integer", "boolean"].contains(t),
            "{at}: unknown primitive type {t}"
        ),
        _ => unreachable!(),
    }
}

#[test]
fn v2_definitions_parse_as_kube_openapi_proto_models() {
    let v2 = common::large().build().v2();
    let defs = v2["definitions"].as_object().expect("definitions");
    assert!(defs.len() > 300, "{}", defs.len());
    for (name, s) in defs {
        check_proto_model(s, defs, name);
    }
    assert_eq!(v2["swagger"], "2.0");
    assert_eq!(
        defs["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]["type"],
        "string"
    );
    assert_eq!(
        defs["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]["format"],
        "int-or-string"
    );
    assert_eq!(
        defs["io.k8s.apimachinery.pkg.api.resource.Quantity"]["type"],
        "string"
    );
    // kubectl maps GVKs to models through this extension.
    assert_eq!(
        defs["io.k8s.api.apps.v1.Deployment"]["x-kubernetes-group-version-kind"],
        json!([{"group": "apps", "kind": "Deployment", "version": "v1"}])
    );
    let pod_meta = &defs["io.k8s.api.core.v1.Pod"]["properties"]["metadata"];
    assert_eq!(
        pod_meta["$ref"],
        "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    );
    // The same PATCH check as in v3, for the v2 fallback verifier.
    let patch = &v2["paths"]["/api/v1/namespaces/{namespace}/configmaps/{name}"]["patch"];
    let names: BTreeSet<&str> = patch["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert!(names.is_superset(&BTreeSet::from([
        "body",
        "dryRun",
        "fieldManager",
        "fieldValidation",
        "force"
    ])));
}

/// A protobuf wire-format reader: (field, wire type, payload) triples of one message.
fn fields(mut b: &[u8]) -> Vec<(u64, u8, Vec<u8>)> {
    fn varint(b: &mut &[u8]) -> u64 {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = b[0];
            *b = &b[1..];
            v |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                break;
            }
        }
        v
    }
    let mut out = Vec::new();
    while !b.is_empty() {
        let key = varint(&mut b);
        let wire = (key & 7) as u8;
        let payload = match wire {
            0 => varint(&mut b).to_le_bytes().to_vec(),
            1 => {
                let (h, t) = b.split_at(8);
                b = t;
                h.to_vec()
            }
            2 => {
                let n = varint(&mut b) as usize;
                let (h, t) = b.split_at(n);
                b = t;
                h.to_vec()
            }
            w => panic!("unexpected wire type {w}"),
        };
        out.push((key >> 3, wire, payload));
    }
    out
}

fn field(b: &[u8], n: u64) -> Vec<Vec<u8>> {
    fields(b)
        .into_iter()
        .filter(|f| f.0 == n)
        .map(|f| f.2)
        .collect()
}

#[test]
fn v2_protobuf_is_a_gnostic_document() {
    let docs = common::small().build();
    let pb = docs.v2_protobuf();
    assert_eq!(field(pb, 1), vec![b"2.0".to_vec()], "swagger");
    let v2 = docs.v2();
    let defs = &field(pb, 9)[0];
    let named = field(defs, 1);
    assert_eq!(
        named.len(),
        v2["definitions"].as_object().map_or(0, |d| d.len())
    );
    let pod = named
        .iter()
        .find(|n| field(n, 1) == vec![b"io.k8s.api.core.v1.Pod".to_vec()])
        .expect("Pod definition");
    let schema = &field(pod, 2)[0];
    // Schema.vendor_extension (31) → NamedAny{name, Any{yaml}}.
    let ext = &field(schema, 31)[0];
    assert_eq!(
        field(ext, 1),
        vec![b"x-kubernetes-group-version-kind".to_vec()]
    );
    let yaml = String::from_utf8(field(&field(ext, 2)[0], 2)[0].clone()).expect("utf8");
    let parsed: Value = serde_json::from_str(yaml.trim()).expect("yaml text is JSON");
    assert_eq!(
        parsed,
        json!([{"group": "", "kind": "Pod", "version": "v1"}])
    );
    // Schema.type (22) → TypeItem{value: ["object"]}; Schema.properties (25).
    assert_eq!(field(&field(schema, 22)[0], 1), vec![b"object".to_vec()]);
    assert_eq!(field(&field(schema, 25)[0], 1).len(), 5);
    // Paths (8) → NamedPathItem (2); the configmap item's PATCH (8) lists fieldValidation as a
    // query parameter (ParametersItem.parameter.non_body_parameter.query_parameter_sub_schema.name).
    let paths = field(&field(pb, 8)[0], 2);
    let item = paths
        .iter()
        .find(|p| field(p, 1) == vec![b"/api/v1/namespaces/{namespace}/configmaps/{name}".to_vec()])
        .expect("configmap item path");
    let patch = &field(&field(item, 2)[0], 8)[0];
    let query_names: Vec<Vec<u8>> = field(patch, 8)
        .iter()
        .flat_map(|pi| field(pi, 1))
        .flat_map(|p| field(&p, 2))
        .flat_map(|nb| field(&nb, 3))
        .flat_map(|q| field(&q, 4))
        .collect();
    assert!(query_names.contains(&b"fieldValidation".to_vec()));
}

#[test]
fn serving_negotiates_and_caches() {
    let docs = common::small().build();
    let req = |path, hash, accept, inm| OpenApiRequest {
        path,
        hash,
        accept,
        if_none_match: inm,
    };
    // client-go's OpenAPISchema asks for protobuf only.
    let pb = docs.serve(&req(
        "/openapi/v2",
        None,
        Some("application/com.github.proto-openapi.spec.v2@v1.0+protobuf"),
        None,
    ));
    match &pb {
        OpenApiResponse::Ok {
            body, content_type, ..
        } => {
            assert_eq!(body, docs.v2_protobuf());
            assert_eq!(
                *content_type,
                "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
            );
        }
        other => panic!("{other:?}"),
    }
    let json = docs.serve(&req("/openapi/v2", None, None, None));
    let OpenApiResponse::Ok {
        etag, content_type, ..
    } = &json
    else {
        panic!("{json:?}")
    };
    assert_eq!(*content_type, "application/json");
    let quoted = format!("\"{etag}\"");
    assert_eq!(
        docs.serve(&req("/openapi/v2", None, None, Some(&quoted)))
            .status(),
        304
    );
    assert_eq!(
        docs.serve(&req("/openapi/v2", None, Some("text/html"), None))
            .status(),
        406
    );
    assert_eq!(
        docs.serve(&req(
            "/openapi/v2",
            None,
            Some(
                "application/json;q=0.5, application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
            ),
            None
        ))
        .headers()[0]
            .1,
        "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
    );

    let (_, hash) = docs.v3_group_version_json("apis/apps/v1").expect("apps");
    let hash = hash.to_string();
    let ok = docs.serve(&req(
        "/openapi/v3/apis/apps/v1",
        Some(&hash),
        Some("application/json"),
        None,
    ));
    assert!(ok.headers().contains(&(
        "Cache-Control",
        "public, immutable, max-age=31536000".into()
    )));
    let stale = docs.serve(&req("/openapi/v3/apis/apps/v1", Some("0123"), None, None));
    assert_eq!(
        stale,
        OpenApiResponse::MovedPermanently {
            location: format!("/openapi/v3/apis/apps/v1?hash={hash}")
        }
    );
    let plain = docs.serve(&req("/openapi/v3/apis/apps/v1", None, None, None));
    assert!(matches!(
        plain,
        OpenApiResponse::Ok {
            immutable: false,
            ..
        }
    ));
    let pb3 = docs.serve(&req(
        "/openapi/v3/apis/apps/v1",
        None,
        Some("application/com.github.proto-openapi.spec.v3@v1.0+protobuf"),
        None,
    ));
    assert_eq!(pb3.status(), 406);
    assert_eq!(
        docs.serve(&req("/openapi/v3/apis/batch/v1", None, None, None))
            .status(),
        404
    );
    let index = docs.serve(&req("/openapi/v3", None, Some("application/json"), None));
    let OpenApiResponse::Ok { body, .. } = index else {
        panic!("index")
    };
    assert_eq!(&body, docs.v3_index_json());
}

#[test]
fn field_meta_hook_reaches_both_formats() {
    let b = common::small().with_field_meta(|def, field| {
        (def == "io.k8s.api.core.v1.PodSpec" && field == "containers").then(|| {
            let mut m = Map::new();
            m.insert("x-kubernetes-patch-strategy".into(), "merge".into());
            m.insert("x-kubernetes-patch-merge-key".into(), "name".into());
            m.insert("x-kubernetes-list-type".into(), "map".into());
            m.insert("x-kubernetes-list-map-keys".into(), json!(["name"]));
            m
        })
    });
    let docs = b.build();
    let v2 = docs.v2();
    let c = &v2["definitions"]["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
    assert_eq!(c["x-kubernetes-patch-merge-key"], "name");
    assert_eq!(c["type"], "array");
    let v3 = docs.v3_group_version("api/v1").expect("v1");
    let c = &v3["components"]["schemas"]["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
    assert_eq!(c["x-kubernetes-list-map-keys"], json!(["name"]));
    assert_eq!(c["x-kubernetes-patch-strategy"], "merge");
    let untouched = &v2["definitions"]["io.k8s.api.core.v1.PodSpec"]["properties"]["volumes"];
    assert!(untouched.get("x-kubernetes-patch-strategy").is_none());
}

#[test]
fn building_everything_is_fast() {
    let start = Instant::now();
    let b = common::large();
    let registered = start.elapsed();
    let docs = b.build();
    let built = start.elapsed();
    docs.warm();
    let total = start.elapsed();
    eprintln!(
        "openapi: registered in {registered:?}, built in {built:?}, all documents rendered in {total:?}: \
         v2 {} bytes JSON / {} bytes protobuf, {} v3 documents",
        docs.v2_json().len(),
        docs.v2_protobuf().len(),
        docs.v3_paths().count()
    );
    // Generous for unoptimised test builds on a shared 2-core machine.
    assert!(built.as_secs_f64() < 2.0, "{built:?}");
    assert!(total.as_secs_f64() < 10.0, "{total:?}");
    if let Ok(dir) = std::env::var("OPENAPI_DUMP_DIR") {
        let dir = std::path::Path::new(&dir);
        std::fs::write(dir.join("v2.json"), docs.v2_json()).expect("write");
        std::fs::write(dir.join("v2.pb"), docs.v2_protobuf()).expect("write");
        std::fs::write(dir.join("v3-index.json"), docs.v3_index_json()).expect("write");
        for gv in docs.v3_paths() {
            if let Some((body, _)) = docs.v3_group_version_json(gv) {
                std::fs::write(dir.join(format!("v3-{}.json", gv.replace('/', "_"))), body)
                    .expect("write");
            }
        }
    }
}
