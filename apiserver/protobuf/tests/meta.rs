//! Reviews, Status, discovery, CRD schemas, MicroTime, FieldsV1, watch frames and errors.

mod common;

use common::*;
use k8s_pb::api::authorization::v1 as authz;
use k8s_pb::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiext;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta_pb;
use prost::Message;
use serde_json::json;

#[test]
fn self_subject_access_review() {
    let pb = authz::SelfSubjectAccessReview {
        metadata: Some(meta_pb::ObjectMeta::default()),
        spec: Some(authz::SelfSubjectAccessReviewSpec {
            resource_attributes: Some(authz::ResourceAttributes {
                namespace: s("default"),
                verb: s("create"),
                group: s("apps"),
                resource: s("deployments"),
                ..Default::default()
            }),
            non_resource_attributes: None,
        }),
        // `allowed` has no omitempty in Go, so false stays in JSON.
        status: Some(authz::SubjectAccessReviewStatus {
            allowed: Some(false),
            denied: None,
            reason: s("RBAC: allowed by ClusterRoleBinding"),
            evaluation_error: None,
        }),
    };
    let want = json!({
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "metadata": {},
        "spec": {"resourceAttributes": {"namespace": "default", "verb": "create",
                                        "group": "apps", "resource": "deployments"}},
        "status": {"allowed": false,
                   "reason": "RBAC: allowed by ClusterRoleBinding"},
    });
    check::<_, k8s_openapi::api::authorization::v1::SelfSubjectAccessReview>(
        "authorization.k8s.io/v1",
        "SelfSubjectAccessReview",
        &pb,
        want,
    );
}

#[test]
fn subject_access_review_extra_values() {
    let pb = authz::SubjectAccessReview {
        // k8s-openapi always serializes `metadata`, as Go does.
        metadata: Some(meta_pb::ObjectMeta::default()),
        spec: Some(authz::SubjectAccessReviewSpec {
            non_resource_attributes: Some(authz::NonResourceAttributes {
                path: s("/healthz"),
                verb: s("get"),
            }),
            user: s("alice"),
            groups: vec!["devs".to_string(), "system:authenticated".to_string()],
            extra: [(
                "scopes".to_string(),
                authz::ExtraValue {
                    items: vec!["a".to_string(), "b".to_string()],
                },
            )]
            .into_iter()
            .collect(),
            uid: s("u-1"),
            ..Default::default()
        }),
        status: None,
    };
    let want = json!({
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "metadata": {},
        "spec": {
            "nonResourceAttributes": {"path": "/healthz", "verb": "get"},
            "user": "alice",
            "groups": ["devs", "system:authenticated"],
            "extra": {"scopes": ["a", "b"]},
            "uid": "u-1",
        },
    });
    check::<_, k8s_openapi::api::authorization::v1::SubjectAccessReview>(
        "authorization.k8s.io/v1",
        "SubjectAccessReview",
        &pb,
        want,
    );
}

#[test]
fn status() {
    let pb = meta_pb::Status {
        metadata: Some(meta_pb::ListMeta::default()),
        status: s("Failure"),
        message: s("pods \"x\" not found"),
        reason: s("NotFound"),
        details: Some(meta_pb::StatusDetails {
            name: s("x"),
            kind: s("pods"),
            causes: vec![meta_pb::StatusCause {
                reason: s("FieldValueRequired"),
                message: s("Required value"),
                field: s("spec.containers"),
            }],
            ..Default::default()
        }),
        code: Some(404),
    };
    let want = json!({
        "apiVersion": "v1",
        "kind": "Status",
        "metadata": {},
        "status": "Failure",
        "message": "pods \"x\" not found",
        "reason": "NotFound",
        "details": {"name": "x", "kind": "pods", "causes": [
            {"reason": "FieldValueRequired", "message": "Required value", "field": "spec.containers"}]},
        "code": 404,
    });
    check::<_, k8s_openapi::apimachinery::pkg::apis::meta::v1::Status>("v1", "Status", &pb, want);
}

#[test]
fn api_resource_list_verbs() {
    let pb = meta_pb::APIResourceList {
        group_version: s("apps/v1"),
        resources: vec![meta_pb::APIResource {
            name: s("deployments"),
            singular_name: s("deployment"),
            namespaced: Some(true),
            kind: s("Deployment"),
            verbs: Some(meta_pb::Verbs {
                items: vec!["get".to_string(), "list".to_string()],
            }),
            short_names: vec!["deploy".to_string()],
            categories: vec!["all".to_string()],
            ..Default::default()
        }],
    };
    let want = json!({
        "apiVersion": "v1",
        "kind": "APIResourceList",
        "groupVersion": "apps/v1",
        "resources": [{"name": "deployments", "singularName": "deployment", "namespaced": true,
                       "kind": "Deployment", "verbs": ["get", "list"],
                       "shortNames": ["deploy"], "categories": ["all"]}],
    });
    check::<_, k8s_openapi::apimachinery::pkg::apis::meta::v1::APIResourceList>(
        "v1",
        "APIResourceList",
        &pb,
        want,
    );
}

#[test]
fn lease_micro_time_and_managed_fields() {
    let micro = meta_pb::MicroTime {
        seconds: Some(1_704_164_645),
        nanos: Some(123_456_000),
    };
    let mut metadata = meta("node-1", Some("kube-node-lease"));
    metadata.managed_fields = vec![meta_pb::ManagedFieldsEntry {
        manager: s("kubelet"),
        operation: s("Update"),
        api_version: s("coordination.k8s.io/v1"),
        time: Some(time()),
        fields_type: s("FieldsV1"),
        fields_v1: Some(meta_pb::FieldsV1 {
            raw: Some(br#"{"f:spec":{"f:holderIdentity":{}}}"#.to_vec()),
        }),
        subresource: None,
    }];
    let pb = k8s_pb::api::coordination::v1::Lease {
        metadata: Some(metadata),
        spec: Some(k8s_pb::api::coordination::v1::LeaseSpec {
            holder_identity: s("node-1"),
            lease_duration_seconds: Some(40),
            acquire_time: Some(micro),
            renew_time: Some(micro),
            lease_transitions: Some(0),
            ..Default::default()
        }),
    };
    let mut metadata_json = meta_json("node-1", Some("kube-node-lease"));
    metadata_json["managedFields"] = json!([{
        "manager": "kubelet", "operation": "Update", "apiVersion": "coordination.k8s.io/v1",
        "time": "2024-01-02T03:04:05Z", "fieldsType": "FieldsV1",
        "fieldsV1": {"f:spec": {"f:holderIdentity": {}}},
    }]);
    let want = json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": metadata_json,
        "spec": {"holderIdentity": "node-1", "leaseDurationSeconds": 40,
                 "acquireTime": "2024-01-02T03:04:05.123456Z",
                 "renewTime": "2024-01-02T03:04:05.123456Z", "leaseTransitions": 0},
    });
    check::<_, k8s_openapi::api::coordination::v1::Lease>(
        "coordination.k8s.io/v1",
        "Lease",
        &pb,
        want,
    );
}

#[test]
fn custom_resource_definition_schema() {
    let string_schema = apiext::JsonSchemaProps {
        r#type: s("string"),
        ..Default::default()
    };
    let spec_schema = apiext::JsonSchemaProps {
        r#type: s("object"),
        x_kubernetes_preserve_unknown_fields: Some(true),
        additional_properties: Some(Box::new(apiext::JsonSchemaPropsOrBool {
            allows: Some(true),
            schema: Some(Box::new(string_schema.clone())),
        })),
        ..Default::default()
    };
    let root = apiext::JsonSchemaProps {
        r#type: s("object"),
        properties: [
            ("spec".to_string(), spec_schema),
            (
                "tags".to_string(),
                apiext::JsonSchemaProps {
                    r#type: s("array"),
                    items: Some(Box::new(apiext::JsonSchemaPropsOrArray {
                        schema: Some(Box::new(string_schema)),
                        j_son_schemas: vec![],
                    })),
                    default: Some(apiext::Json {
                        raw: Some(br#"["a"]"#.to_vec()),
                    }),
                    ..Default::default()
                },
            ),
            (
                "closed".to_string(),
                apiext::JsonSchemaProps {
                    r#type: s("object"),
                    additional_properties: Some(Box::new(apiext::JsonSchemaPropsOrBool {
                        allows: Some(false),
                        schema: None,
                    })),
                    ..Default::default()
                },
            ),
        ]
        .into_iter()
        .collect(),
        ..Default::default()
    };
    let pb = apiext::CustomResourceDefinition {
        metadata: Some(meta_pb::ObjectMeta {
            name: s("widgets.example.com"),
            ..Default::default()
        }),
        spec: Some(apiext::CustomResourceDefinitionSpec {
            group: s("example.com"),
            names: Some(apiext::CustomResourceDefinitionNames {
                plural: s("widgets"),
                singular: s("widget"),
                kind: s("Widget"),
                list_kind: s("WidgetList"),
                ..Default::default()
            }),
            scope: s("Namespaced"),
            versions: vec![apiext::CustomResourceDefinitionVersion {
                name: s("v1"),
                served: Some(true),
                storage: Some(true),
                schema: Some(apiext::CustomResourceValidation {
                    open_apiv3_schema: Some(root),
                }),
                ..Default::default()
            }],
            ..Default::default()
        }),
        status: None,
    };
    let want = json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget",
                      "listKind": "WidgetList"},
            "scope": "Namespaced",
            "versions": [{"name": "v1", "served": true, "storage": true, "schema": {
                "openAPIV3Schema": {"type": "object", "properties": {
                    "closed": {"type": "object", "additionalProperties": false},
                    "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true,
                             "additionalProperties": {"type": "string"}},
                    "tags": {"type": "array", "items": {"type": "string"}, "default": ["a"]},
                }},
            }}],
        },
    });
    check::<_, k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition>(
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        &pb,
        want,
    );
}

#[test]
fn watch_event_frame() {
    let ns = k8s_pb::api::core::v1::Namespace {
        metadata: Some(meta("team-a", None)),
        ..Default::default()
    };
    let object = apiserver_protobuf::decode(&envelope("v1", "Namespace", &ns)).unwrap();
    let frame = apiserver_protobuf::encode_watch_event("ADDED", &object).unwrap();

    // Ground truth: the frame upstream writes, built from prost messages.
    let event = meta_pb::WatchEvent {
        r#type: s("ADDED"),
        object: Some(k8s_pb::apimachinery::pkg::runtime::RawExtension {
            raw: Some(envelope("v1", "Namespace", &ns)),
        }),
    };
    let body = event.encode_to_vec();
    let mut want = (body.len() as u32).to_be_bytes().to_vec();
    want.extend(&body);
    assert_eq!(frame, want);

    let decoded = meta_pb::WatchEvent::decode(&frame[4..]).unwrap();
    let raw = decoded.object.unwrap().raw.unwrap();
    let (av, kind, back): (String, String, k8s_pb::api::core::v1::Namespace) = open(&raw);
    assert_eq!((av.as_str(), kind.as_str(), back), ("v1", "Namespace", ns));

    let (event_type, obj) = apiserver_protobuf::decode_watch_event(&frame).unwrap();
    assert_eq!((event_type.as_str(), obj), ("ADDED", object));
    assert!(apiserver_protobuf::decode_watch_event(&frame[..frame.len() - 1]).is_err());
}

#[test]
fn decode_errors() {
    use apiserver_protobuf::{ProtoError, decode};
    assert_eq!(decode(b""), Err(ProtoError::Empty));
    assert_eq!(decode(b"k8s\0"), Err(ProtoError::Empty));
    assert_eq!(decode(br#"{"kind":"Pod"}"#), Err(ProtoError::NotProtobuf));
    let widget = envelope("example.com/v1", "Widget", &meta_pb::Status::default());
    let err = decode(&widget).unwrap_err();
    assert!(err.is_unsupported_kind());
    assert_eq!(
        err.to_string(),
        r#"no protobuf schema for kind "Widget" in version "example.com/v1""#
    );
    assert_eq!(
        decode(&envelope("v1", "", &meta_pb::Status::default())),
        Err(ProtoError::MissingKind)
    );

    let full = envelope(
        "v1",
        "Namespace",
        &k8s_pb::api::core::v1::Namespace {
            metadata: Some(meta("x", None)),
            ..Default::default()
        },
    );
    assert!(matches!(
        decode(&full[..full.len() - 3]),
        Err(ProtoError::Malformed { .. })
    ));

    // metadata (field 1) sent as a varint instead of a message.
    let unknown = k8s_pb::apimachinery::pkg::runtime::Unknown {
        type_meta: Some(k8s_pb::apimachinery::pkg::runtime::TypeMeta {
            api_version: s("v1"),
            kind: s("Namespace"),
        }),
        raw: Some(vec![0x08, 0x01]),
        ..Default::default()
    };
    let mut body = b"k8s\0".to_vec();
    body.extend(unknown.encode_to_vec());
    let err = decode(&body).unwrap_err();
    assert!(
        matches!(&err, ProtoError::Malformed { path, .. } if path == "metadata"),
        "{err}"
    );
}

#[test]
fn encode_errors_name_the_field() {
    use apiserver_protobuf::{ProtoError, encode};
    let err = encode(&json!({"apiVersion": "v1", "kind": "Pod",
        "spec": {"containers": [{"name": "a"}, {"name": 5}]}}))
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot encode at spec.containers[1].name as protobuf: expected a string, got a number"
    );
    assert_eq!(
        encode(&json!({"apiVersion": "v1"})),
        Err(ProtoError::MissingKind)
    );
    assert!(
        encode(&json!({"apiVersion": "v1", "kind": "Nope"}))
            .unwrap_err()
            .is_unsupported_kind()
    );
    let bad_time = json!({"apiVersion": "v1", "kind": "Namespace",
                          "metadata": {"creationTimestamp": "yesterday"}});
    assert!(
        matches!(encode(&bad_time), Err(ProtoError::Invalid { path, .. }) if path == "metadata.creationTimestamp")
    );
    let bad_port = json!({"apiVersion": "v1", "kind": "Service",
                          "spec": {"ports": [{"port": 4294967296u64}]}});
    assert!(encode(&bad_port).is_err());
    let bad_bytes = json!({"apiVersion": "v1", "kind": "Secret", "data": {"a": "***"}});
    assert!(encode(&bad_bytes).is_err());
}
