//! Unit tests of the table and of message kinds no built-in object exercises end to end.

use serde_json::{Value, json};

use crate::schema::{self, MESSAGES, Shape, Special, Ty};
use crate::{decode, encode};

fn roundtrip_message(name: &str, value: Value) -> Vec<u8> {
    let msg = schema::message_by_name(name).expect("message in table");
    let mut bytes = Vec::new();
    encode::message(msg, &value, &mut bytes).expect("encode");
    let back = decode::message(msg, &bytes).expect("decode");
    assert_eq!(back, Some(value), "{name} round trip");
    bytes
}

#[test]
fn table_is_sorted_and_consistent() {
    assert!(MESSAGES.windows(2).all(|w| w[0].name < w[1].name));
    for msg in &MESSAGES {
        for (pos, &i) in msg.by_tag.iter().enumerate() {
            let f = &msg.fields[usize::from(i)];
            assert_eq!(
                msg.field_by_tag(f.tag).map(|(j, _)| j),
                Some(usize::from(i))
            );
            if pos > 0 {
                assert!(msg.fields[usize::from(msg.by_tag[pos - 1])].tag < f.tag);
            }
            if f.json.is_empty() {
                assert!(
                    matches!((f.ty, f.shape), (Ty::Message(_), Shape::Single)),
                    "{}",
                    msg.name
                );
            }
        }
    }
}

#[test]
fn json_names_come_from_k8s_openapi() {
    let field = |msg: &str, tag: u32| {
        schema::message_by_name(msg)
            .and_then(|m| m.field_by_tag(tag))
            .map(|(_, f)| f.json)
    };
    assert_eq!(field("api.core.v1.PodStatus", 6), Some("podIP"));
    assert_eq!(field("api.core.v1.PodStatus", 12), Some("podIPs"));
    assert_eq!(field("api.core.v1.ServiceSpec", 3), Some("clusterIP"));
    assert_eq!(field("api.core.v1.ContainerPort", 5), Some("hostIP"));
    assert_eq!(field("api.core.v1.Secret", 2), Some("data"));
    assert_eq!(
        field("api.core.v1.Probe", 1),
        Some(""),
        "ProbeHandler is inlined"
    );
    assert_eq!(
        field("api.core.v1.Volume", 2),
        Some(""),
        "VolumeSource is inlined"
    );
    let props = "apiextensions_apiserver.pkg.apis.apiextensions.v1.JsonSchemaProps";
    assert_eq!(field(props, 2), Some("$schema"));
    assert_eq!(field(props, 3), Some("$ref"));
    assert_eq!(
        field(props, 38),
        Some("x-kubernetes-preserve-unknown-fields")
    );
    let keep_zero = |msg: &str, tag: u32| {
        schema::message_by_name(msg)
            .and_then(|m| m.field_by_tag(tag))
            .map(|(_, f)| f.keep_zero)
    };
    // Container.name has no omitempty; image has; DeploymentSpec.replicas is a pointer.
    assert_eq!(keep_zero("api.core.v1.Container", 1), Some(true));
    assert_eq!(keep_zero("api.core.v1.Container", 2), Some(false));
    assert_eq!(keep_zero("api.apps.v1.DeploymentSpec", 1), Some(true));
    assert_eq!(keep_zero("api.apps.v1.DeploymentSpec", 5), Some(false));
    assert_eq!(
        keep_zero("api.core.v1.PodSpec", 11),
        Some(false),
        "hostNetwork"
    );
    assert_eq!(
        keep_zero("apimachinery.pkg.apis.meta.v1.APIResource", 2),
        Some(true)
    );
}

#[test]
fn special_messages_are_classified() {
    let special = |name: &str| schema::message_by_name(name).map(|m| m.special);
    assert_eq!(
        special("api.authentication.v1.ExtraValue"),
        Some(Special::StringList)
    );
    assert_eq!(
        special("apimachinery.pkg.apis.meta.v1.Verbs"),
        Some(Special::StringList)
    );
    assert_eq!(
        special("apimachinery.pkg.apis.meta.v1.Time"),
        Some(Special::Time)
    );
    assert_eq!(
        special("api.core.v1.LocalObjectReference"),
        Some(Special::Plain)
    );
}

#[test]
fn duration_and_micro_time() {
    let bytes = roundtrip_message("apimachinery.pkg.apis.meta.v1.Duration", json!("1h30m0s"));
    assert_eq!(bytes[0], 0x08, "duration is field 1, varint");
    roundtrip_message(
        "apimachinery.pkg.apis.meta.v1.MicroTime",
        json!("2024-01-02T03:04:05.123456Z"),
    );
    let msg = schema::message_by_name("apimachinery.pkg.apis.meta.v1.Time").unwrap();
    assert_eq!(
        decode::message(msg, &[]).unwrap(),
        None,
        "zero time is absent"
    );
}

#[test]
fn apiextensions_json_forms() {
    let props = "apiextensions_apiserver.pkg.apis.apiextensions.v1.JsonSchemaProps";
    roundtrip_message(
        props,
        json!({
            "type": "object",
            "default": {"a": [1, "x", null]},
            "enum": ["a", 3],
            "items": {"type": "string"},
            "additionalProperties": false,
            "properties": {
                "list": {"type": "array", "items": [{"type": "integer"}, {"type": "string"}]},
                "free": {"x-kubernetes-preserve-unknown-fields": true,
                         "additionalProperties": {"type": "number", "maximum": 1.5}},
            },
            "dependencies": {"a": ["b", "c"], "d": {"required": ["e"]}},
            "$ref": "#/definitions/x",
        }),
    );
}

#[test]
fn raw_extension_holds_json_or_an_envelope() {
    let name = "apimachinery.pkg.runtime.RawExtension";
    roundtrip_message(
        name,
        json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": "b"}}),
    );
    let inner = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}});
    let mut bytes = Vec::new();
    crate::wire::put_len(&mut bytes, 1, &crate::encode(&inner).unwrap());
    let msg = schema::message_by_name(name).unwrap();
    assert_eq!(decode::message(msg, &bytes).unwrap(), Some(inner));
}

#[test]
fn every_kind_decodes_an_empty_object() {
    let mut count = 0;
    for (api_version, kind) in crate::supported_kinds() {
        let v = crate::decode_object(api_version, kind, &[]).unwrap();
        assert_eq!(v, json!({"apiVersion": api_version, "kind": kind}));
        let bytes = crate::encode(&v).unwrap();
        assert_eq!(crate::decode(&bytes).unwrap(), v);
        count += 1;
    }
    assert!(count > 150, "only {count} kinds");
    for (av, kind) in [
        ("v1", "Pod"),
        ("apps/v1", "Deployment"),
        ("v1", "Status"),
        ("apps/v1", "DeleteOptions"),
        ("meta.k8s.io/v1", "WatchEvent"),
        ("authorization.k8s.io/v1", "SelfSubjectAccessReview"),
        ("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
        ("apidiscovery.k8s.io/v2", "APIGroupDiscoveryList"),
        ("v1", "List"),
    ] {
        assert!(crate::supports(av, kind), "{av} {kind}");
    }
    assert!(!crate::supports("v1", "Table"));
    assert!(!crate::supports("example.com/v1", "Widget"));
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    // JSONSchemaProps.not (tag 28) nested far beyond any real schema.
    let msg = schema::message_by_name(
        "apiextensions_apiserver.pkg.apis.apiextensions.v1.JsonSchemaProps",
    )
    .unwrap();
    let mut bytes = Vec::new();
    for _ in 0..5000 {
        let mut outer = Vec::new();
        crate::wire::put_len(&mut outer, 28, &bytes);
        bytes = outer;
    }
    let err = decode::message(msg, &bytes).unwrap_err();
    assert!(err.to_string().contains("too deep"), "{err}");
}
