//! Resource versions and list continue tokens (mirrors apiserver/pkg/storage/continue.go).

use crate::error::ApiError;
use base64::Engine;
use serde::{Deserialize, Serialize};

/// Parses a `resourceVersion` parameter: empty means "unset".
pub fn parse_resource_version(s: &str) -> Result<Option<i64>, ApiError> {
    if s.is_empty() {
        return Ok(None);
    }
    s.parse::<i64>()
        .ok()
        .filter(|v| *v >= 0)
        .map(Some)
        .ok_or_else(|| ApiError::bad_request(format!("invalid resource version: {s}")))
}

#[derive(Serialize, Deserialize)]
struct Token {
    v: String,
    rv: i64,
    start: String,
}

/// A continue token holds the revision of the list and the key to resume after
/// (relative to the resource's key prefix).
pub fn encode_continue(rv: i64, start_key: &str) -> String {
    let t = Token {
        v: "meta.k8s.io/v1".into(),
        rv,
        start: format!("{start_key}\u{0}"),
    };
    let json = serde_json::to_vec(&t).unwrap_or_default();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
}

/// Returns (revision, key to start from, inclusive).
pub fn decode_continue(tok: &str) -> Result<(i64, String), ApiError> {
    let bad = || {
        ApiError::bad_request(
            "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
        )
    };
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(tok.trim_end_matches('='))
        .map_err(|_| bad())?;
    let t: Token = serde_json::from_slice(&raw).map_err(|_| bad())?;
    if t.v != "meta.k8s.io/v1" || t.start.contains("..") || t.start.starts_with('/') {
        return Err(bad());
    }
    Ok((t.rv, t.start))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_round_trip() {
        let t = encode_continue(42, "default/foo");
        let (rv, start) = decode_continue(&t).unwrap();
        assert_eq!(rv, 42);
        assert_eq!(start, "default/foo\u{0}");
        assert!(decode_continue("!!").is_err());
        assert_eq!(parse_resource_version("").unwrap(), None);
        assert!(parse_resource_version("abc").is_err());
    }
}
