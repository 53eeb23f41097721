//! Patches applied to an object's JSON form: JSON patch (RFC 6902) and JSON merge patch
//! (RFC 7386). The patch engine is the one place where `serde_json::Value` is the working type.

pub mod strategic;

use crate::error::ApiError;
use serde_json::Value;

/// Applies an RFC 6902 JSON patch.
pub fn apply_json_patch(original: &Value, patch: &[u8]) -> Result<Value, ApiError> {
    let ops: json_patch::Patch = serde_json::from_slice(patch)
        .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
    let mut doc = original.clone();
    json_patch::patch(&mut doc, &ops).map_err(|e| {
        ApiError::new(
            crate::Reason::Invalid,
            format!("the server rejected our request due to an error in our request: {e}"),
        )
        .with_code(422)
    })?;
    Ok(doc)
}

/// Applies an RFC 7386 JSON merge patch.
pub fn apply_merge_patch(original: &Value, patch: &[u8]) -> Result<Value, ApiError> {
    let p: Value = serde_json::from_slice(patch)
        .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
    if !p.is_object() {
        return Err(ApiError::bad_request(
            "error decoding patch: a merge patch must be a JSON object",
        ));
    }
    let mut doc = original.clone();
    json_patch::merge(&mut doc, &p);
    Ok(doc)
}

impl ApiError {
    pub fn with_code(mut self, code: u16) -> Self {
        self.code = Some(code);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_and_merge() {
        let o = json!({"a": 1, "b": {"c": 2}});
        let p = apply_json_patch(&o, br#"[{"op":"replace","path":"/a","value":5}]"#).unwrap();
        assert_eq!(p["a"], 5);
        let m = apply_merge_patch(&o, br#"{"b":{"c":null,"d":3}}"#).unwrap();
        assert_eq!(m, json!({"a": 1, "b": {"d": 3}}));
        assert!(apply_json_patch(&o, br#"[{"op":"test","path":"/a","value":9}]"#).is_err());
    }
}
