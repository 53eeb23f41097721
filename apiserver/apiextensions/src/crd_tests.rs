//! Tests of CRD object validation with upstream-like CRDs (mirrors the cases of
//! apiextensions-apiserver pkg/apis/apiextensions/validation/validation_test.go).

use crate::helpers::prepare_for_create;
use crate::{validate_crd, validate_crd_update};
use serde_json::{Value, json};

fn crontab() -> Value {
    let schema = json!({"type": "object", "properties": {
        "spec": {"type": "object",
            "x-kubernetes-validations": [{"rule": "self.minReplicas <= self.replicas"}],
            "properties": {
                "cronSpec": {"type": "string", "pattern": "^(\\d+|\\*)(/\\d+)?(\\s+(\\d+|\\*)(/\\d+)?){4}$"},
                "image": {"type": "string"},
                "replicas": {"type": "integer", "minimum": 1, "maximum": 10, "default": 1},
                "minReplicas": {"type": "integer", "default": 1},
                "mode": {"type": "string", "enum": ["a", "b"]},
                "ports": {"type": "array", "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["name"],
                    "items": {"type": "object", "required": ["name"], "properties": {
                        "name": {"type": "string"}, "port": {"type": "integer"}}}}}},
        "status": {"type": "object", "properties": {"replicas": {"type": "integer"}}}}});
    let mut c = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "crontabs.stable.example.com"},
        "spec": {"group": "stable.example.com", "scope": "Namespaced",
            "names": {"plural": "crontabs", "singular": "crontab", "kind": "CronTab",
                "listKind": "CronTabList", "shortNames": ["ct"]},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": schema},
                "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas",
                    "statusReplicasPath": ".status.replicas"}},
                "additionalPrinterColumns": [{"name": "Spec", "type": "string", "jsonPath": ".spec.cronSpec"}]}]}});
    prepare_for_create(&mut c);
    c
}

fn msgs(c: &Value) -> Vec<String> {
    validate_crd(c).iter().map(ToString::to_string).collect()
}

#[test]
fn valid_crontab_passes() {
    assert_eq!(msgs(&crontab()), Vec::<String>::new());
}

#[test]
fn names_group_and_versions() {
    let mut c = crontab();
    c["metadata"]["name"] = json!("crontab.stable.example.com");
    c["spec"]["group"] = json!("example");
    c["spec"]["scope"] = json!("Galaxy");
    c["spec"]["names"]["kind"] = json!("CronTabList");
    c["spec"]["versions"][0]["storage"] = json!(false);
    prepare_for_create(&mut c);
    assert_eq!(
        msgs(&c),
        vec![
            r#"metadata.name: Invalid value: "crontab.stable.example.com": must be spec.names.plural+"."+spec.group"#,
            r#"spec.group: Invalid value: "example": should be a domain with at least one dot"#,
            r#"spec.scope: Unsupported value: "Galaxy": supported values: "Cluster", "Namespaced""#,
            "spec.versions: Invalid value: [...]: must have exactly one version marked as storage version",
            r#"spec.names.listKind: Invalid value: "CronTabList": kind and listKind may not be the same"#,
            "status.storedVersions: Invalid value: []: must have at least one stored version",
        ]
    );
}

#[test]
fn schema_errors_use_hoisted_paths() {
    let mut c = crontab();
    c["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["image"] =
        json!({"description": "no type"});
    c["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["replicas"]
        ["default"] = json!("one");
    let got = msgs(&c);
    assert_eq!(
        got,
        vec![
            "spec.validation.openAPIV3Schema.properties[spec].properties[image].type: Required value: must not be empty for specified object fields"
        ]
    );
    c["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["image"] =
        json!({"type": "string"});
    assert_eq!(
        msgs(&c),
        vec![
            r#"spec.validation.openAPIV3Schema.properties[spec].properties[replicas].default: Invalid value: "string":  in body must be of type integer: "string""#
        ]
    );
}

#[test]
fn list_map_rules_and_cel_compilation() {
    let mut c = crontab();
    let sp = &mut c["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
    sp["properties"]["ports"]["items"]["required"] = json!([]);
    sp["x-kubernetes-validations"] = json!([{"rule": "self.replicas >", "reason": "Bogus"}]);
    let got = msgs(&c);
    assert_eq!(
        got[0],
        "spec.validation.openAPIV3Schema.properties[spec].properties[ports].items.properties[name].default: Required value: this property is in x-kubernetes-list-map-keys, so it must have a default or be a required property"
    );
    assert!(got[1].starts_with(r#"spec.validation.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].reason: Unsupported value: "Bogus""#));
    assert_eq!(got.len(), 2);
    let mut c = crontab();
    c["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["x-kubernetes-validations"] =
        json!([{"rule": "self.replicas >"}]);
    let got = msgs(&c);
    assert!(got[0].starts_with("spec.validation.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule: Invalid value: "), "{got:?}");
    assert!(got[0].contains("compilation failed"));
}

#[test]
fn per_version_schema_paths_and_status_root() {
    let mut c = crontab();
    let mut v2 = c["spec"]["versions"][0].clone();
    v2["name"] = json!("v2");
    v2["storage"] = json!(false);
    v2["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["image"] = json!({});
    v2["schema"]["openAPIV3Schema"]["nullable"] = json!(true);
    c["spec"]["versions"].as_array_mut().unwrap().push(v2);
    let got = msgs(&c);
    assert!(got.contains(&"spec.versions[1].schema.openAPIV3Schema.nullable: Forbidden: nullable cannot be true at the root".to_string()), "{got:?}");
    assert!(
        got.iter().any(|e| e
            .starts_with("spec.versions[1].schema.openAPIV3Schema: Invalid value: ")
            && e.ends_with(
                "fields are allowed at the root of the schema if the status subresource is enabled"
            )),
        "{got:?}"
    );
    assert!(got.contains(&"spec.versions[1].schema.openAPIV3Schema.properties[spec].properties[image].type: Required value: must not be empty for specified object fields".to_string()), "{got:?}");
}

#[test]
fn immutable_fields_on_update() {
    let mut old = crontab();
    crate::naming::set_condition(&mut old, crate::naming::established_condition(), "t");
    let mut new = old.clone();
    new["spec"]["scope"] = json!("Cluster");
    new["spec"]["names"]["plural"] = json!("crons");
    new["spec"]["names"]["kind"] = json!("Cron");
    new["spec"]["names"]["listKind"] = json!("CronList");
    let got: Vec<String> = validate_crd_update(&new, &old)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        got,
        vec![
            r#"spec.scope: Invalid value: "Cluster": field is immutable"#,
            r#"spec.names.kind: Invalid value: "Cron": field is immutable"#,
            r#"spec.names.plural: Invalid value: "crons": field is immutable"#,
        ]
    );
}
