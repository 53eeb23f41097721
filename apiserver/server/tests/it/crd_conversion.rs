//! Webhook conversion of custom resources (as upstream's conformance test
//! e2e/apimachinery/crd_conversion_webhook.go): a local HTTPS conversion webhook on 127.0.0.1
//! converts between v1 (`spec.hostPort: "host:port"`) and v2 (`spec.host`, `spec.port`); objects
//! are stored in the storage version and served converted by get, list (mixed stored versions)
//! and watch; writes in another version are converted to the storage version; a failing
//! webhook answers upstream's errors.

use crate::Server;
use axum::body::Body;
use base64::Engine;
use bytes::Bytes;
use futures::StreamExt;
use http::{Request, Response};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const GROUP: &str = "conv.example.com";
const V1: &str = "conv.example.com/v1";
const V2: &str = "conv.example.com/v2";
const BASE: &str = "/apis/conv.example.com";

#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    Convert,
    Fail,
    Empty,
}

/// One ConversionReview the webhook answered: desired version and the sent objects' versions
/// and names.
#[derive(Clone, Debug)]
struct Seen {
    desired: String,
    versions: Vec<String>,
    names: Vec<String>,
}

struct Hook {
    mode: Mutex<Mode>,
    seen: Mutex<Vec<Seen>>,
}

impl Hook {
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
    fn set(&self, m: Mode) {
        *self.mode.lock().unwrap() = m;
    }
}

/// v1 `hostPort` <-> v2 `host` + `port`.
fn convert(obj: &Value, desired: &str) -> Value {
    let mut o = obj.clone();
    let spec = o["spec"].clone();
    match (obj["apiVersion"].as_str().unwrap_or(""), desired) {
        (V1, V2) => {
            let hp = spec["hostPort"].as_str().unwrap_or("");
            let (host, port) = hp.split_once(':').unwrap_or((hp, "0"));
            o["spec"] = json!({"host": host, "port": port.parse::<i64>().unwrap_or(0)});
        }
        (V2, V1) => {
            let hp = format!(
                "{}:{}",
                spec["host"].as_str().unwrap_or(""),
                spec["port"].as_i64().unwrap_or(0)
            );
            o["spec"] = json!({"hostPort": hp});
        }
        _ => {}
    }
    o["apiVersion"] = Value::from(desired);
    o
}

async fn handle(
    req: Request<Incoming>,
    hook: Arc<Hook>,
) -> Result<Response<Body>, std::convert::Infallible> {
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let review: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let request = &review["request"];
    let desired = request["desiredAPIVersion"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let objects = request["objects"].as_array().cloned().unwrap_or_default();
    hook.seen.lock().unwrap().push(Seen {
        desired: desired.clone(),
        versions: objects
            .iter()
            .map(|o| o["apiVersion"].as_str().unwrap_or("").to_string())
            .collect(),
        names: objects
            .iter()
            .map(|o| o["metadata"]["name"].as_str().unwrap_or("").to_string())
            .collect(),
    });
    let mode = *hook.mode.lock().unwrap();
    let response = match mode {
        Mode::Convert => json!({"uid": request["uid"], "result": {"status": "Success"},
            "convertedObjects": objects.iter().map(|o| convert(o, &desired)).collect::<Vec<_>>()}),
        Mode::Empty => {
            json!({"uid": request["uid"], "result": {"status": "Success"}, "convertedObjects": []})
        }
        Mode::Fail => json!({"uid": request["uid"], "convertedObjects": [],
            "result": {"status": "Failure", "message": "custom webhook conversion error"}}),
    };
    let out = json!({"apiVersion": review["apiVersion"], "kind": "ConversionReview", "response": response});
    let mut r = Response::new(Body::from(serde_json::to_vec(&out).unwrap()));
    r.headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    Ok(r)
}

/// Starts the webhook on 127.0.0.1 with a serving certificate of a fresh CA; returns the port
/// and the CA's PEM.
async fn start_webhook(hook: Arc<Hook>) -> (u16, String) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "conversion-webhook-ca");
    let ca_key = KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);
    let mut srv = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    srv.distinguished_name
        .push(DnType::CommonName, "conversion-webhook");
    let srv_key = KeyPair::generate().unwrap();
    let srv_cert = srv.signed_by(&srv_key, &issuer).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![srv_cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(srv_key.serialize_der())),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let (acceptor, hook) = (acceptor.clone(), hook.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let svc = hyper::service::service_fn(move |req| handle(req, hook.clone()));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    (port, ca.pem())
}

fn crd(port: u16, ca_pem: &str, storage: &str) -> Value {
    let v1 = json!({"type": "object", "properties": {"spec": {"type": "object",
        "properties": {"hostPort": {"type": "string"}}}}});
    let v2 = json!({"type": "object", "properties": {"spec": {"type": "object",
        "properties": {"host": {"type": "string"}, "port": {"type": "integer"}}}}});
    json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("backends.{GROUP}")},
        "spec": {"group": GROUP, "scope": "Namespaced",
            "names": {"plural": "backends", "singular": "backend", "kind": "Backend"},
            "versions": [
                {"name": "v1", "served": true, "storage": storage == "v1", "schema": {"openAPIV3Schema": v1}},
                {"name": "v2", "served": true, "storage": storage == "v2", "schema": {"openAPIV3Schema": v2}}],
            "conversion": {"strategy": "Webhook", "webhook": {
                "conversionReviewVersions": ["v1", "v1beta1"],
                "clientConfig": {"url": format!("https://127.0.0.1:{port}/convert"),
                    "caBundle": base64::engine::general_purpose::STANDARD.encode(ca_pem)}}}}})
}

fn path(version: &str, name: &str) -> String {
    if name.is_empty() {
        format!("{BASE}/{version}/namespaces/default/backends")
    } else {
        format!("{BASE}/{version}/namespaces/default/backends/{name}")
    }
}

fn v1_obj(name: &str, hp: &str) -> Value {
    json!({"apiVersion": V1, "kind": "Backend", "metadata": {"name": name}, "spec": {"hostPort": hp}})
}

fn v2_obj(name: &str, host: &str, port: i64) -> Value {
    json!({"apiVersion": V2, "kind": "Backend", "metadata": {"name": name},
        "spec": {"host": host, "port": port}})
}

async fn wait_served(s: &Server) {
    for _ in 0..200 {
        if s.get(&path("v2", "")).await.0 == 200 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("backends were not served");
}

/// Reads `n` watch events (newline-delimited JSON) from a streaming response.
async fn read_events(
    stream: &mut (impl futures::Stream<Item = reqwest::Result<Bytes>> + Unpin),
    buf: &mut Vec<u8>,
    n: usize,
) -> Vec<Value> {
    let mut out = Vec::new();
    while out.len() < n {
        if let Some(i) = buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buf.drain(..=i).collect();
            out.push(serde_json::from_slice(&line).unwrap());
            continue;
        }
        let chunk = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("watch event in time")
            .expect("watch stream open")
            .unwrap();
        buf.extend_from_slice(&chunk);
    }
    out
}

#[tokio::test]
async fn crd_webhook_conversion_serves_and_stores_every_version() {
    let hook = Arc::new(Hook {
        mode: Mutex::new(Mode::Convert),
        seen: Mutex::new(Vec::new()),
    });
    let (port, ca) = start_webhook(hook.clone()).await;
    let s = crate::start(&[]).await;
    let (code, body) = s
        .post(
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            crd(port, &ca, "v1"),
        )
        .await;
    assert_eq!(code, 201, "{body}");
    wait_served(&s).await;

    // Created at the storage version: no conversion.
    let (code, a) = s.post(&path("v1", ""), v1_obj("a", "localhost:8080")).await;
    assert_eq!(code, 201, "{a}");
    assert!(hook.seen().is_empty(), "{:?}", hook.seen());

    // Read at v2: converted by the webhook.
    let (code, got) = s.get(&path("v2", "a")).await;
    assert_eq!(code, 200, "{got}");
    assert_eq!(got["apiVersion"], V2);
    assert_eq!(got["spec"], json!({"host": "localhost", "port": 8080}));
    assert_eq!(got["metadata"]["uid"], a["metadata"]["uid"]);
    assert_eq!(
        got["metadata"]["resourceVersion"],
        a["metadata"]["resourceVersion"]
    );
    let seen = hook.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        (seen[0].desired.as_str(), seen[0].versions.clone()),
        (V2, vec![V1.to_string()])
    );

    // Watch at v2: the existing object and a new one created at v1 arrive converted.
    let resp = s
        .http
        .get(s.url(&format!("{}?watch=true", path("v2", ""))))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let mut stream = resp.bytes_stream();
    let mut buf = Vec::new();
    let first = read_events(&mut stream, &mut buf, 1).await;
    assert_eq!(first[0]["type"], "ADDED");
    assert_eq!(first[0]["object"]["apiVersion"], V2);
    assert_eq!(
        first[0]["object"]["spec"],
        json!({"host": "localhost", "port": 8080})
    );
    let (code, _) = s.post(&path("v1", ""), v1_obj("w", "watched:1")).await;
    assert_eq!(code, 201);
    let ev = read_events(&mut stream, &mut buf, 1).await;
    assert_eq!(ev[0]["type"], "ADDED");
    assert_eq!(ev[0]["object"]["metadata"]["name"], "w");
    assert_eq!(ev[0]["object"]["apiVersion"], V2);
    assert_eq!(
        ev[0]["object"]["spec"],
        json!({"host": "watched", "port": 1})
    );
    drop(stream);

    // Update at v2: the current object converts to v2, the result to the storage version v1.
    let before = hook.seen().len();
    let mut upd = got.clone();
    upd["spec"] = json!({"host": "example.com", "port": 9090});
    let (code, out) = s.put(&path("v2", "a"), upd).await;
    assert_eq!(code, 200, "{out}");
    assert_eq!(out["apiVersion"], V2);
    assert_eq!(out["spec"], json!({"host": "example.com", "port": 9090}));
    let writes: Vec<Seen> = hook.seen()[before..].to_vec();
    assert!(
        writes
            .iter()
            .any(|r| r.desired == V1 && r.versions == vec![V2.to_string()]),
        "{writes:?}"
    );
    // Stored at v1: a read at v1 needs no conversion.
    let before = hook.seen().len();
    let (code, v1got) = s.get(&path("v1", "a")).await;
    assert_eq!(code, 200);
    assert_eq!(v1got["spec"], json!({"hostPort": "example.com:9090"}));
    assert_eq!(hook.seen().len(), before);

    // A merge patch at v2 works the same way.
    let (code, out) = s
        .req(
            "PATCH",
            &path("v2", "a"),
            Some(json!({"spec": {"port": 9191}})),
        )
        .await;
    assert_eq!(code, 200, "{out}");
    assert_eq!(out["spec"], json!({"host": "example.com", "port": 9191}));
    assert_eq!(
        s.get(&path("v1", "a")).await.1["spec"],
        json!({"hostPort": "example.com:9191"})
    );

    // Storage version v2: new objects are stored at v2, old ones stay at v1.
    let (_, cur) = s
        .get(&format!(
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/backends.{GROUP}"
        ))
        .await;
    let mut next = crd(port, &ca, "v2");
    next["metadata"]["resourceVersion"] = cur["metadata"]["resourceVersion"].clone();
    let (code, body) = s
        .put(
            &format!("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/backends.{GROUP}"),
            next,
        )
        .await;
    assert_eq!(code, 200, "{body}");
    let mut stored_v2 = false;
    for i in 0..200 {
        let before = hook.seen().len();
        let name = format!("probe-{i}");
        let (code, _) = s.post(&path("v2", ""), v2_obj(&name, "p", 1)).await;
        if code != 201 {
            // The CRD's storage is being rebuilt.
            tokio::time::sleep(Duration::from_millis(25)).await;
            continue;
        }
        let converted = hook.seen().len() > before;
        s.delete(&path("v2", &name)).await;
        if !converted {
            stored_v2 = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(stored_v2, "the storage version did not change to v2");
    let (code, _) = s.post(&path("v2", ""), v2_obj("b", "bhost", 7)).await;
    assert_eq!(code, 201);

    // List at v2 with objects stored at v1 (a, w) and v2 (b): one review, only v1 objects sent.
    let before = hook.seen().len();
    let (code, list) = s.get(&path("v2", "")).await;
    assert_eq!(code, 200, "{list}");
    let items = list["items"].as_array().unwrap();
    let names: Vec<&str> = items
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["a", "b", "w"]);
    assert!(items.iter().all(|i| i["apiVersion"] == V2));
    assert_eq!(
        items[0]["spec"],
        json!({"host": "example.com", "port": 9191})
    );
    assert_eq!(items[1]["spec"], json!({"host": "bhost", "port": 7}));
    let reviews: Vec<Seen> = hook.seen()[before..].to_vec();
    assert_eq!(reviews.len(), 1, "{reviews:?}");
    assert_eq!(reviews[0].desired, V2);
    assert_eq!(reviews[0].names, vec!["a", "w"]);
    // And at v1: only b is sent.
    let before = hook.seen().len();
    let (code, list) = s.get(&path("v1", "")).await;
    assert_eq!(code, 200);
    assert_eq!(list["items"][1]["spec"], json!({"hostPort": "bhost:7"}));
    assert_eq!(
        hook.seen()[before..]
            .iter()
            .map(|r| r.names.clone())
            .collect::<Vec<_>>(),
        vec![vec!["b".to_string()]]
    );

    // A failing webhook: upstream's messages, 500.
    hook.set(Mode::Fail);
    let (code, st) = s.get(&path("v2", "a")).await;
    assert_eq!(code, 500, "{st}");
    assert_eq!(st["reason"], "InternalError");
    assert_eq!(
        st["message"],
        "Internal error occurred: conversion webhook for conv.example.com/v1, Kind=Backend failed: custom webhook conversion error"
    );
    let (code, st) = s.get(&path("v2", "")).await;
    assert_eq!(code, 500);
    assert!(
        st["message"]
            .as_str()
            .unwrap()
            .contains("failed: custom webhook conversion error"),
        "{st}"
    );
    let (code, st) = s.post(&path("v1", ""), v1_obj("c", "c:1")).await;
    assert_eq!(code, 500);
    assert_eq!(
        st["message"],
        "Internal error occurred: conversion webhook for conv.example.com/v1, Kind=Backend failed: custom webhook conversion error"
    );
    // Objects in the requested version need no webhook.
    assert_eq!(s.get(&path("v2", "b")).await.0, 200);
    hook.set(Mode::Empty);
    let (code, st) = s.get(&path("v2", "a")).await;
    assert_eq!(code, 500);
    assert_eq!(
        st["message"],
        "Internal error occurred: conversion webhook for conv.example.com/v1, Kind=Backend returned 0 objects, expected 1"
    );
    hook.set(Mode::Convert);
    assert_eq!(s.get(&path("v2", "a")).await.0, 200);
}

#[tokio::test]
async fn crd_webhook_conversion_unreachable_webhook_names_the_url() {
    // Nothing listens on this loopback port.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    let hook = Arc::new(Hook {
        mode: Mutex::new(Mode::Convert),
        seen: Mutex::new(Vec::new()),
    });
    let (_, ca) = start_webhook(hook).await;
    let s = crate::start(&[]).await;
    let (code, body) = s
        .post(
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            crd(port, &ca, "v1"),
        )
        .await;
    assert_eq!(code, 201, "{body}");
    wait_served(&s).await;
    let (code, _) = s.post(&path("v1", ""), v1_obj("a", "h:1")).await;
    assert_eq!(code, 201);
    let (code, st) = s.get(&path("v2", "a")).await;
    assert_eq!(code, 500);
    assert_eq!(
        st["message"],
        format!(
            "Internal error occurred: conversion webhook for conv.example.com/v1, Kind=Backend failed: Post \"https://127.0.0.1:{port}/convert?timeout=30s\": dial tcp 127.0.0.1:{port}: connect: connection refused"
        )
    );
}
