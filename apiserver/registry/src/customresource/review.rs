//! ConversionReview requests and the checks of their responses (mirrors apiextensions-apiserver
//! pkg/apiserver/conversion/webhook_converter.go: `createConversionReviewObjects`,
//! `getConvertedObjectsFromResponse`, the per-object checks of `Convert`,
//! `validateConvertedObject` and `restoreObjectMeta`). Errors carry upstream's messages.

use apiserver_apimachinery::FieldPath;
use apiserver_apimachinery::names::{validate_annotations, validate_labels};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// The ConversionReview version sent to a webhook.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReviewVersion {
    V1,
    V1beta1,
}

impl ReviewVersion {
    pub fn api_version(self) -> &'static str {
        match self {
            ReviewVersion::V1 => "apiextensions.k8s.io/v1",
            ReviewVersion::V1beta1 => "apiextensions.k8s.io/v1beta1",
        }
    }
}

/// The first version of `conversionReviewVersions` this server speaks.
pub fn pick_review_version(versions: &[String]) -> Result<ReviewVersion, String> {
    versions
        .iter()
        .find_map(|v| match v.as_str() {
            "v1" => Some(ReviewVersion::V1),
            "v1beta1" => Some(ReviewVersion::V1beta1),
            _ => None,
        })
        .ok_or_else(|| "no supported conversion review versions".to_string())
}

/// The ConversionReview sent for `objects` (upstream also sends an empty `response`).
pub fn review_request(
    version: ReviewVersion,
    uid: &str,
    desired: &str,
    objects: &[Value],
) -> Value {
    json!({
        "kind": "ConversionReview",
        "apiVersion": version.api_version(),
        "request": {"uid": uid, "desiredAPIVersion": desired, "objects": objects},
        "response": {"uid": "", "convertedObjects": null, "result": {"metadata": {}}},
    })
}

fn str_at<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

/// A group/version/kind as upstream prints it: `stable.example.com/v1, Kind=CronTab`.
pub fn gvk_string(api_version: &str, kind: &str) -> String {
    format!("{api_version}, Kind={kind}")
}

/// The GVK of an object's JSON, printed.
pub fn gvk_of(obj: &Value) -> String {
    gvk_string(str_at(obj, "apiVersion"), str_at(obj, "kind"))
}

/// The converted objects of a webhook's response, after upstream's checks of the review
/// (v1: kind, uid; both: a response with a successful result).
pub fn converted_objects(
    version: ReviewVersion,
    expected_uid: &str,
    review: &Value,
) -> Result<Vec<Value>, String> {
    if version == ReviewVersion::V1 {
        let (av, kind) = (str_at(review, "apiVersion"), str_at(review, "kind"));
        if av != version.api_version() || kind != "ConversionReview" {
            return Err(format!(
                "expected webhook response of {}, got {}",
                gvk_string(version.api_version(), "ConversionReview"),
                gvk_string(av, kind)
            ));
        }
    }
    let Some(response) = review.get("response").filter(|r| r.is_object()) else {
        return Err("no response provided".into());
    };
    if version == ReviewVersion::V1 {
        let uid = str_at(response, "uid");
        if uid != expected_uid {
            return Err(format!(
                "expected response.uid={expected_uid:?}, got {uid:?}"
            ));
        }
    }
    let result = response.get("result").cloned().unwrap_or(Value::Null);
    let status = str_at(&result, "status");
    if status != "Success" {
        let message = str_at(&result, "message");
        if !message.is_empty() {
            return Err(message.to_string());
        }
        return Err(format!(
            "response.result.status was '{status}', not 'Success'"
        ));
    }
    Ok(response
        .get("convertedObjects")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default())
}

/// Go's `%T` of a value decoded into an unstructured object.
fn go_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_i64() || n.is_u64() => "int64",
        Value::Number(_) => "float64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

fn meta_str<'a>(obj: &'a Value, k: &str) -> &'a str {
    obj.get("metadata")
        .and_then(|m| m.get(k))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// Upstream's `validateConvertedObject`: kind, name, namespace and uid are unchanged.
pub fn validate_converted(original: &Value, converted: &Value) -> Result<(), String> {
    let (ek, ak) = (str_at(original, "kind"), str_at(converted, "kind"));
    if ek != ak {
        return Err(format!("must have the same kind: {ek} != {ak}"));
    }
    for (field, what) in [("name", "name"), ("namespace", "namespace"), ("uid", "UID")] {
        let (e, a) = (meta_str(original, field), meta_str(converted, field));
        if e != a {
            return Err(format!("must have the same {what}: {e} != {a}"));
        }
    }
    Ok(())
}

/// Go's error aggregate: one message as is, several (deduplicated) in brackets.
fn aggregate(msgs: Vec<String>) -> String {
    let mut seen: Vec<String> = Vec::new();
    for m in msgs {
        if !seen.contains(&m) {
            seen.push(m);
        }
    }
    if seen.len() == 1 {
        seen.remove(0)
    } else {
        format!("[{}]", seen.join(", "))
    }
}

/// Upstream's `restoreObjectMeta`: the converted object gets the original's metadata, except
/// labels and annotations, which the webhook may change (and which are validated if it did).
pub fn restore_object_meta(original: &Value, converted: &mut Value) -> Result<(), String> {
    let response_meta = match converted.get("metadata") {
        None => return Err("missing metadata in converted object".into()),
        Some(Value::Object(m)) => m.clone(),
        Some(other) => {
            return Err(format!(
                "invalid metadata of type {} in converted object",
                go_type(other)
            ));
        }
    };
    let mut meta: Map<String, Value> = match original.get("metadata") {
        None => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(other) => {
            return Err(format!(
                "invalid metadata of type {} in input object",
                go_type(other)
            ));
        }
    };
    for field in ["labels", "annotations"] {
        let response_field = match response_meta.get(field) {
            None | Some(Value::Null) => {
                meta.remove(field);
                continue;
            }
            Some(Value::Object(m)) => m,
            Some(other) => {
                return Err(format!(
                    "invalid metadata.{field} of type {} in converted object",
                    go_type(other)
                ));
            }
        };
        let original_field = match meta.get(field) {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m.clone(),
            Some(other) => {
                return Err(format!(
                    "invalid metadata.{field} of type {} in original object",
                    go_type(other)
                ));
            }
        };
        let mut changed = original_field.len() != response_field.len();
        let mut strings = BTreeMap::new();
        for (k, v) in response_field {
            let Some(s) = v.as_str() else {
                return Err(format!(
                    "metadata.{field}[{k}] must be a string, but is {} in converted object",
                    go_type(v)
                ));
            };
            if original_field.get(k) != Some(v) {
                changed = true;
            }
            strings.insert(k.clone(), s.to_string());
        }
        if changed {
            let errs = if field == "labels" {
                validate_labels(&strings, &FieldPath::root("metadata").child("labels"))
            } else {
                // Upstream validates annotations at this (singular) path.
                validate_annotations(&strings, &FieldPath::root("metadata").child("annotation"))
            };
            if !errs.is_empty() {
                return Err(aggregate(errs.iter().map(ToString::to_string).collect()));
            }
        }
        meta.insert(field.to_string(), Value::Object(response_field.clone()));
    }
    if let Some(o) = converted.as_object_mut() {
        o.insert("metadata".into(), Value::Object(meta));
    }
    Ok(())
}

/// Checks the one object a webhook returned for `original` (upstream's single-object path) and
/// returns it with the original's metadata restored.
pub fn finish_single(
    original: &Value,
    desired: &str,
    mut converted: Vec<Value>,
) -> Result<Value, String> {
    let gvk = gvk_of(original);
    if converted.len() != 1 {
        return Err(format!(
            "conversion webhook for {gvk} returned {} objects, expected 1",
            converted.len()
        ));
    }
    let mut out = converted.remove(0);
    if !out.is_object() {
        return Err(format!("Object 'Kind' is missing in '{out}'"));
    }
    let got = str_at(&out, "apiVersion");
    if got != desired {
        return Err(format!(
            "conversion webhook for {gvk} returned invalid object at index 0: invalid groupVersion (expected {desired}, received {got})"
        ));
    }
    let (ek, ak) = (str_at(original, "kind"), str_at(&out, "kind"));
    if ek != ak {
        return Err(format!(
            "conversion webhook for {gvk} returned invalid object at index 0: invalid kind (expected {ek}, received {ak})"
        ));
    }
    validate_converted(original, &out)
        .map_err(|e| format!("conversion webhook for {gvk} returned invalid object: {e}"))?;
    restore_object_meta(original, &mut out)
        .map_err(|e| format!("conversion webhook for {gvk} returned invalid metadata: {e}"))?;
    Ok(out)
}

/// Checks the objects a webhook returned for `sent` (upstream's list path, with its indexes)
/// and returns them with the originals' metadata restored. `gvk` names the input in errors.
pub fn finish_list(
    gvk: &str,
    sent: &[Value],
    desired: &str,
    converted: Vec<Value>,
) -> Result<Vec<Value>, String> {
    if converted.len() != sent.len() {
        return Err(format!(
            "conversion webhook for {gvk} returned {} objects, expected {}",
            converted.len(),
            sent.len()
        ));
    }
    let mut out = Vec::with_capacity(sent.len());
    for (i, (original, mut c)) in sent.iter().zip(converted).enumerate() {
        if !c.is_object() {
            return Err(format!(
                "conversion webhook for {gvk} returned invalid converted object at index {i}: Object 'Kind' is missing in '{c}'"
            ));
        }
        // Upstream counts the object before these checks, so they name the next index.
        let n = i + 1;
        let got = str_at(&c, "apiVersion");
        if got != desired {
            return Err(format!(
                "conversion webhook for {gvk} returned invalid converted object at index {n}: invalid groupVersion (expected {desired}, received {got})"
            ));
        }
        let (ek, ak) = (str_at(original, "kind"), str_at(&c, "kind"));
        if ek != ak {
            return Err(format!(
                "conversion webhook for {gvk} returned invalid converted object at index {n}: invalid kind (expected {ek}, received {ak})"
            ));
        }
        validate_converted(original, &c).map_err(|e| {
            format!(
                "conversion webhook for {gvk} returned invalid converted object at index {n}: {e}"
            )
        })?;
        restore_object_meta(original, &mut c).map_err(|e| {
            format!(
                "conversion webhook for {gvk} returned invalid metadata in object at index {n}: {e}"
            )
        })?;
        out.push(c);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(av: &str) -> Value {
        json!({"apiVersion": av, "kind": "Widget", "metadata": {"name": "w", "namespace": "ns",
            "uid": "u1", "resourceVersion": "7", "labels": {"a": "1"}}, "spec": {"x": 1}})
    }

    #[test]
    fn request_and_review_version() {
        assert_eq!(
            pick_review_version(&["v2".into(), "v1beta1".into(), "v1".into()]),
            Ok(ReviewVersion::V1beta1)
        );
        assert_eq!(
            pick_review_version(&["v2".into()]),
            Err("no supported conversion review versions".into())
        );
        let r = review_request(ReviewVersion::V1, "id", "g/v2", &[obj("g/v1")]);
        assert_eq!(r["apiVersion"], "apiextensions.k8s.io/v1");
        assert_eq!(r["request"]["desiredAPIVersion"], "g/v2");
        assert_eq!(r["request"]["uid"], "id");
        assert_eq!(r["request"]["objects"][0]["apiVersion"], "g/v1");
    }

    #[test]
    fn response_checks() {
        let ok = |uid: &str, result: Value| {
            json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview",
                "response": {"uid": uid, "result": result, "convertedObjects": [obj("g/v2")]}})
        };
        let v1 = ReviewVersion::V1;
        assert_eq!(
            converted_objects(v1, "a", &ok("a", json!({"status": "Success"})))
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            converted_objects(v1, "a", &ok("b", json!({"status": "Success"}))),
            Err(r#"expected response.uid="a", got "b""#.into())
        );
        assert_eq!(
            converted_objects(
                v1,
                "a",
                &ok("a", json!({"status": "Failure", "message": "boom"}))
            ),
            Err("boom".into())
        );
        assert_eq!(
            converted_objects(v1, "a", &ok("a", json!({"status": "Failure"}))),
            Err("response.result.status was 'Failure', not 'Success'".into())
        );
        assert_eq!(
            converted_objects(v1, "a", &json!({"apiVersion": "v1", "kind": "Status"})),
            Err("expected webhook response of apiextensions.k8s.io/v1, Kind=ConversionReview, got v1, Kind=Status".into())
        );
        // v1beta1 does not check the kind or the uid.
        let beta = json!({"response": {"uid": "other", "result": {"status": "Success"}}});
        assert_eq!(
            converted_objects(ReviewVersion::V1beta1, "a", &beta),
            Ok(vec![])
        );
        assert_eq!(
            converted_objects(ReviewVersion::V1beta1, "a", &json!({})),
            Err("no response provided".into())
        );
    }

    #[test]
    fn single_object_checks_and_metadata_restore() {
        let orig = obj("g/v1");
        let mut c = obj("g/v2");
        c["metadata"]["labels"] = json!({"a": "2", "added": "yes"});
        c["metadata"]["annotations"] = json!({"note": "x"});
        c["metadata"]["generation"] = json!(42);
        c["metadata"]["finalizers"] = json!(["foo"]);
        let out = finish_single(&orig, "g/v2", vec![c.clone()]).unwrap();
        assert_eq!(out["metadata"]["labels"], json!({"a": "2", "added": "yes"}));
        assert_eq!(out["metadata"]["annotations"], json!({"note": "x"}));
        assert!(out["metadata"].get("generation").is_none());
        assert!(out["metadata"].get("finalizers").is_none());
        assert_eq!(out["metadata"]["resourceVersion"], "7");

        assert_eq!(
            finish_single(&orig, "g/v2", vec![]),
            Err("conversion webhook for g/v1, Kind=Widget returned 0 objects, expected 1".into())
        );
        assert_eq!(
            finish_single(&orig, "g/v2", vec![obj("g/v3")]),
            Err("conversion webhook for g/v1, Kind=Widget returned invalid object at index 0: invalid groupVersion (expected g/v2, received g/v3)".into())
        );
        let mut renamed = obj("g/v2");
        renamed["metadata"]["name"] = json!("other");
        assert_eq!(
            finish_single(&orig, "g/v2", vec![renamed]),
            Err("conversion webhook for g/v1, Kind=Widget returned invalid object: must have the same name: w != other".into())
        );
        let mut uid = obj("g/v2");
        uid["metadata"]["uid"] = json!("42");
        assert_eq!(
            finish_single(&orig, "g/v2", vec![uid]),
            Err("conversion webhook for g/v1, Kind=Widget returned invalid object: must have the same UID: u1 != 42".into())
        );
        let mut bad_label = obj("g/v2");
        bad_label["metadata"]["labels"] = json!({"a": 1});
        assert_eq!(
            finish_single(&orig, "g/v2", vec![bad_label]),
            Err("conversion webhook for g/v1, Kind=Widget returned invalid metadata: metadata.labels[a] must be a string, but is int64 in converted object".into())
        );
        let mut invalid_label = obj("g/v2");
        invalid_label["metadata"]["labels"] = json!({"a": "no spaces"});
        assert!(
            finish_single(&orig, "g/v2", vec![invalid_label])
                .unwrap_err()
                .starts_with("conversion webhook for g/v1, Kind=Widget returned invalid metadata: metadata.labels[a]: Invalid value: \"no spaces\"")
        );
        let mut no_meta = obj("g/v2");
        no_meta.as_object_mut().unwrap().remove("metadata");
        assert_eq!(
            finish_single(&orig, "g/v2", vec![no_meta.clone()]),
            Err("conversion webhook for g/v1, Kind=Widget returned invalid object: must have the same name: w != ".into())
        );
        let unnamed = json!({"apiVersion": "g/v1", "kind": "Widget", "metadata": {}, "spec": {}});
        assert_eq!(
            finish_single(&unnamed, "g/v2", vec![no_meta]),
            Err("conversion webhook for g/v1, Kind=Widget returned invalid metadata: missing metadata in converted object".into())
        );
    }

    #[test]
    fn list_checks_name_upstream_indexes() {
        let sent = vec![obj("g/v1"), obj("g/v1")];
        assert_eq!(
            finish_list("g/v1, Kind=Widget", &sent, "g/v2", vec![obj("g/v2")]),
            Err("conversion webhook for g/v1, Kind=Widget returned 1 objects, expected 2".into())
        );
        let mut wrong_kind = obj("g/v2");
        wrong_kind["kind"] = json!("Gadget");
        assert_eq!(
            finish_list("g/v1, Kind=Widget", &sent, "g/v2", vec![obj("g/v2"), wrong_kind]),
            Err("conversion webhook for g/v1, Kind=Widget returned invalid converted object at index 2: invalid kind (expected Widget, received Gadget)".into())
        );
        let out = finish_list(
            "g/v1, Kind=Widget",
            &sent,
            "g/v2",
            vec![obj("g/v2"), obj("g/v2")],
        )
        .unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(out[1]["apiVersion"], "g/v2");
    }
}
