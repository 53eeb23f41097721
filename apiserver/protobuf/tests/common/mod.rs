//! Shared test helpers: prost (k8s-pb) envelopes as ground truth for the wire format.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fmt::Debug;

use k8s_pb::apimachinery::pkg::api::resource::Quantity;
use k8s_pb::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_pb::apimachinery::pkg::runtime::{TypeMeta, Unknown};
use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
use prost::Message;
use serde::de::DeserializeOwned;
use serde_json::Value;

pub fn s(v: &str) -> Option<String> {
    Some(v.to_string())
}

pub fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub fn quantity(v: &str) -> Quantity {
    Quantity { string: s(v) }
}

pub fn int_or_string_int(v: i32) -> IntOrString {
    IntOrString {
        r#type: Some(0),
        int_val: Some(v),
        str_val: s(""),
    }
}

pub fn int_or_string_str(v: &str) -> IntOrString {
    IntOrString {
        r#type: Some(1),
        int_val: Some(0),
        str_val: s(v),
    }
}

/// 2024-01-02T03:04:05Z as metav1.Time is written by Go (seconds plus a zero nanos field).
pub fn time() -> Time {
    Time {
        seconds: Some(1_704_164_645),
        nanos: Some(0),
    }
}

pub fn meta(name: &str, namespace: Option<&str>) -> ObjectMeta {
    ObjectMeta {
        name: s(name),
        namespace: namespace.map(str::to_string),
        uid: s("0f3c2c5e-7a1b-4b1e-9c55-1d7f0f5b1a11"),
        resource_version: s("42"),
        generation: Some(1),
        creation_timestamp: Some(time()),
        labels: map(&[("app", "web"), ("tier", "frontend")]),
        annotations: map(&[("note", "hello")]),
        ..ObjectMeta::default()
    }
}

/// JSON of [`meta`].
pub fn meta_json(name: &str, namespace: Option<&str>) -> Value {
    let mut v = serde_json::json!({
        "name": name,
        "uid": "0f3c2c5e-7a1b-4b1e-9c55-1d7f0f5b1a11",
        "resourceVersion": "42",
        "generation": 1,
        "creationTimestamp": "2024-01-02T03:04:05Z",
        "labels": {"app": "web", "tier": "frontend"},
        "annotations": {"note": "hello"},
    });
    if let Some(ns) = namespace {
        v["namespace"] = Value::String(ns.to_string());
    }
    v
}

/// Wraps a prost message in the `k8s\0` + runtime.Unknown envelope, as Go clients send it.
pub fn envelope<M: Message>(api_version: &str, kind: &str, msg: &M) -> Vec<u8> {
    let unknown = Unknown {
        type_meta: Some(TypeMeta {
            api_version: s(api_version),
            kind: s(kind),
        }),
        raw: Some(msg.encode_to_vec()),
        content_encoding: s(""),
        content_type: s(""),
    };
    let mut out = b"k8s\0".to_vec();
    out.extend(unknown.encode_to_vec());
    out
}

/// Opens an envelope with prost: (apiVersion, kind, message).
pub fn open<M: Message + Default>(body: &[u8]) -> (String, String, M) {
    assert_eq!(&body[..4], b"k8s\0", "missing magic prefix");
    let unknown = Unknown::decode(&body[4..]).expect("envelope decodes with prost");
    let type_meta = unknown.type_meta.expect("type meta");
    let msg = M::decode(unknown.raw.unwrap_or_default().as_slice()).expect("object decodes");
    (
        type_meta.api_version.unwrap_or_default(),
        type_meta.kind.unwrap_or_default(),
        msg,
    )
}

/// The core check: prost bytes decode to exactly `want` (also as the k8s-openapi type `K`),
/// and encoding that JSON yields bytes prost decodes back to the same message.
pub fn check<M, K>(api_version: &str, kind: &str, pb: &M, want: Value)
where
    M: Message + Default + PartialEq + Debug,
    K: DeserializeOwned + serde::Serialize + PartialEq + Debug,
{
    let body = envelope(api_version, kind, pb);
    let got = apiserver_protobuf::decode(&body).expect("decode");
    assert_eq!(got, want, "decoded JSON differs");

    let got_typed: K = serde_json::from_value(got.clone()).expect("decoded JSON fits k8s-openapi");
    let want_typed: K =
        serde_json::from_value(want.clone()).expect("expected JSON fits k8s-openapi");
    assert_eq!(got_typed, want_typed);

    // What k8s-openapi itself serializes must encode to the same message.
    let from_openapi = serde_json::to_value(&want_typed).expect("serialize");
    for json in [&got, &from_openapi] {
        let bytes = apiserver_protobuf::encode(json).expect("encode");
        let (av, k, back): (String, String, M) = open(&bytes);
        assert_eq!((av.as_str(), k.as_str()), (api_version, kind));
        assert_eq!(&back, pb, "re-encoded message differs");
        assert_eq!(
            apiserver_protobuf::decode(&bytes).expect("decode again"),
            want
        );
    }
}
