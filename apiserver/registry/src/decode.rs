//! Decoding request bodies into typed objects at the edge, with upstream's field validation:
//! unknown fields are errors (Strict), warnings (Warn) or ignored (Ignore).

use crate::context::FieldValidation;
use apiserver_apimachinery::ApiError;
use serde::de::DeserializeOwned;

/// A decoded body and the warnings to send back.
pub struct Decoded<K> {
    pub object: K,
    pub warnings: Vec<String>,
}

fn render(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    match path {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{}]", render(parent), index),
        Path::Map { parent, key } => {
            let p = render(parent);
            if p.is_empty() {
                key.to_string()
            } else {
                format!("{p}.{key}")
            }
        }
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => render(parent),
    }
}

/// Decodes JSON `body` into `K`, checking `apiVersion`/`kind` against the expected ones.
pub fn decode<K: DeserializeOwned>(
    body: &[u8],
    api_version: &str,
    kind: &str,
    validation: FieldValidation,
) -> Result<Decoded<K>, ApiError> {
    let mut unknown = Vec::new();
    let mut de = serde_json::Deserializer::from_slice(body);
    let object: K = serde_ignored::deserialize(&mut de, |path| {
        let p = render(&path);
        if p != "apiVersion" && p != "kind" {
            unknown.push(p);
        }
    })
    .map_err(|e| {
        // The typed decoder refuses a wrong apiVersion or kind; say so as upstream does.
        match check_type_meta(body, api_version, kind) {
            Err(mismatch) => mismatch,
            Ok(()) => decode_error(&e),
        }
    })?;
    let mut warnings = Vec::new();
    let dupes = if validation == FieldValidation::Ignore {
        Vec::new()
    } else {
        crate::dupes::duplicate_fields(body)
    };
    if !unknown.is_empty() || !dupes.is_empty() {
        let mut msgs: Vec<String> = unknown
            .iter()
            .map(|p| format!("unknown field \"{p}\""))
            .collect();
        msgs.extend(dupes.iter().map(|p| format!("duplicate field \"{p}\"")));
        match validation {
            FieldValidation::Strict => {
                return Err(ApiError::bad_request(format!(
                    "{kind} in version \"{}\" cannot be handled as a {kind}: strict decoding error: {}",
                    api_version.rsplit('/').next().unwrap_or(api_version),
                    msgs.join(", ")
                )));
            }
            FieldValidation::Warn => warnings = msgs,
            FieldValidation::Ignore => {}
        }
    }
    Ok(Decoded { object, warnings })
}

/// Upstream's messages for a body whose apiVersion or kind is not the endpoint's.
fn check_type_meta(body: &[u8], api_version: &str, kind: &str) -> Result<(), ApiError> {
    let tm: TypeMeta = serde_json::from_slice(body).map_err(|e| decode_error(&e))?;
    if let Some(k) = tm.kind.as_deref().filter(|k| !k.is_empty()) {
        if k != kind {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({k}) does not match the expected kind ({kind})"
            )));
        }
    }
    if let Some(v) = tm.api_version.as_deref().filter(|v| !v.is_empty()) {
        if v != api_version {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({v}) does not match the expected API version ({api_version})"
            )));
        }
    }
    Ok(())
}

#[derive(serde::Deserialize)]
struct TypeMeta {
    #[serde(rename = "apiVersion")]
    api_version: Option<String>,
    kind: Option<String>,
}

fn decode_error(e: &serde_json::Error) -> ApiError {
    ApiError::bad_request(format!("error decoding request body: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;

    #[test]
    fn unknown_fields_by_mode() {
        let body = br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","creationTimestamp":null,"bogus":1},"data":{"k":"v"},"extra":true}"#;
        let e = decode::<ConfigMap>(body, "v1", "ConfigMap", FieldValidation::Strict)
            .err()
            .unwrap();
        assert_eq!(e.http_code(), 400);
        assert!(
            e.message.contains("unknown field \"metadata.bogus\""),
            "{}",
            e.message
        );
        assert!(e.message.contains("unknown field \"extra\""));
        let d = decode::<ConfigMap>(body, "v1", "ConfigMap", FieldValidation::Warn).unwrap();
        assert_eq!(d.warnings.len(), 2);
        assert_eq!(d.object.metadata.name.as_deref(), Some("a"));
        let wrong = br#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"a"}}"#;
        assert!(decode::<ConfigMap>(wrong, "v1", "ConfigMap", FieldValidation::Strict).is_err());
    }
}
