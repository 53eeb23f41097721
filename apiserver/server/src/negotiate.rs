//! Content negotiation (mirrors apiserver/pkg/endpoints/handlers/negotiation): the first
//! acceptable media type of `Accept` wins; request bodies are converted to JSON at the edge.

use apiserver_apimachinery::ApiError;
use bytes::Bytes;

pub const JSON: &str = "application/json";
pub const YAML: &str = "application/yaml";
pub const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Json,
    Yaml,
    Protobuf,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IncludeObject {
    None,
    Metadata,
    Object,
}

/// What the client wants back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    Plain(Format),
    /// meta.k8s.io Table (v1 or v1beta1), JSON only.
    Table {
        v1beta1: bool,
    },
    /// PartialObjectMetadata / PartialObjectMetadataList.
    PartialMetadata {
        list: bool,
        format: Format,
    },
    /// Aggregated discovery (apidiscovery.k8s.io/v2 APIGroupDiscoveryList).
    Discovery {
        v2beta1: bool,
        format: Format,
    },
}

impl Output {
    pub fn format(&self) -> Format {
        match self {
            Output::Plain(f)
            | Output::PartialMetadata { format: f, .. }
            | Output::Discovery { format: f, .. } => *f,
            Output::Table { .. } => Format::Json,
        }
    }
}

struct MediaRange<'a> {
    ty: &'a str,
    params: Vec<(&'a str, &'a str)>,
}

impl<'a> MediaRange<'a> {
    fn param(&self, k: &str) -> Option<&'a str> {
        self.params
            .iter()
            .find(|(pk, _)| pk.eq_ignore_ascii_case(k))
            .map(|(_, v)| *v)
    }
}

fn parse_accept(accept: &str) -> Vec<MediaRange<'_>> {
    accept
        .split(',')
        .filter_map(|part| {
            let mut it = part.split(';');
            let ty = it.next()?.trim();
            if ty.is_empty() {
                return None;
            }
            let params = it
                .filter_map(|p| p.split_once('='))
                .map(|(k, v)| (k.trim(), v.trim().trim_matches('"')))
                .collect();
            Some(MediaRange { ty, params })
        })
        .collect()
}

fn format_of(ty: &str) -> Option<Format> {
    match ty {
        "application/json"
        | "application/*"
        | "*/*"
        | "application/json-patch+json"
        | "application/merge-patch+json" => Some(Format::Json),
        "application/yaml" => Some(Format::Yaml),
        "application/vnd.kubernetes.protobuf" => Some(Format::Protobuf),
        _ => None,
    }
}

/// Chooses the output for a request; `what` says which special forms the endpoint offers.
pub fn negotiate(
    accept: Option<&str>,
    table_ok: bool,
    list: bool,
    discovery_ok: bool,
) -> Result<Output, ApiError> {
    negotiate_for(accept, table_ok, list, discovery_ok, true)
}

/// As [`negotiate`]; without `protobuf_ok` (custom resources) protobuf is only acceptable for
/// PartialObjectMetadata, whose type is built in.
pub fn negotiate_for(
    accept: Option<&str>,
    table_ok: bool,
    list: bool,
    discovery_ok: bool,
    protobuf_ok: bool,
) -> Result<Output, ApiError> {
    let accept = accept.unwrap_or("").trim();
    if accept.is_empty() {
        return Ok(Output::Plain(Format::Json));
    }
    for r in parse_accept(accept) {
        let Some(format) = format_of(r.ty) else {
            continue;
        };
        if format == Format::Protobuf && !protobuf_ok && r.param("as").is_none() {
            continue;
        }
        match r.param("as") {
            None => return Ok(Output::Plain(format)),
            Some("Table")
                if table_ok && format == Format::Json && r.param("g") == Some("meta.k8s.io") =>
            {
                match r.param("v") {
                    Some("v1") => return Ok(Output::Table { v1beta1: false }),
                    Some("v1beta1") => return Ok(Output::Table { v1beta1: true }),
                    _ => continue,
                }
            }
            // Either form is accepted on any endpoint (watches use the single-object form); the
            // verb decides whether a list or an object is sent.
            Some("PartialObjectMetadata" | "PartialObjectMetadataList")
                if r.param("g") == Some("meta.k8s.io") && format != Format::Yaml =>
            {
                return Ok(Output::PartialMetadata { list, format });
            }
            Some("APIGroupDiscoveryList")
                if discovery_ok && r.param("g") == Some("apidiscovery.k8s.io") =>
            {
                match r.param("v") {
                    Some("v2") => {
                        return Ok(Output::Discovery {
                            v2beta1: false,
                            format,
                        });
                    }
                    Some("v2beta1") => {
                        return Ok(Output::Discovery {
                            v2beta1: true,
                            format,
                        });
                    }
                    _ => continue,
                }
            }
            _ => continue,
        }
    }
    Err(ApiError::not_acceptable(format!(
        "only the following media types are accepted: application/json, application/yaml, application/vnd.kubernetes.protobuf{}",
        if table_ok {
            ", application/json;as=Table;v=v1;g=meta.k8s.io"
        } else {
            ""
        }
    )))
}

/// Converts a request body to JSON bytes according to its Content-Type.
pub fn body_to_json(content_type: Option<&str>, body: Bytes) -> Result<Bytes, ApiError> {
    let ct = content_type.unwrap_or("application/json");
    let base = ct.split(';').next().unwrap_or("").trim();
    match base {
        ""
        | "application/json"
        | "application/json-patch+json"
        | "application/merge-patch+json"
        | "application/strategic-merge-patch+json"
        | "application/apply-patch+json" => Ok(body),
        "application/yaml" | "application/apply-patch+yaml" | "text/yaml" => yaml_to_json(&body),
        "application/vnd.kubernetes.protobuf" => {
            let v = apiserver_protobuf::decode(&body).map_err(|e| {
                if e.is_unsupported_kind() {
                    ApiError::unsupported_media_type(&format!("{ct}: {e}"))
                } else {
                    ApiError::bad_request(format!("error decoding protobuf body: {e}"))
                }
            })?;
            serde_json::to_vec(&v)
                .map(Bytes::from)
                .map_err(|e| ApiError::internal(e.to_string()))
        }
        _ => Err(ApiError::unsupported_media_type(ct)),
    }
}

pub fn yaml_to_json(body: &[u8]) -> Result<Bytes, ApiError> {
    let v: serde_json::Value = serde_yaml::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("error converting YAML to JSON: {e}")))?;
    serde_json::to_vec(&v)
        .map(Bytes::from)
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// Encodes a JSON document in the chosen format; returns (content type, body).
pub fn encode(format: Format, json: &[u8]) -> Result<(&'static str, Bytes), ApiError> {
    match format {
        Format::Json => Ok((JSON, Bytes::copy_from_slice(json))),
        Format::Yaml => {
            let v: serde_json::Value =
                serde_json::from_slice(json).map_err(|e| ApiError::internal(e.to_string()))?;
            let y = serde_yaml::to_string(&v).map_err(|e| ApiError::internal(e.to_string()))?;
            Ok((YAML, Bytes::from(y)))
        }
        Format::Protobuf => {
            let v: serde_json::Value =
                serde_json::from_slice(json).map_err(|e| ApiError::internal(e.to_string()))?;
            let b = apiserver_protobuf::encode(&v).map_err(|e| {
                if e.is_unsupported_kind() {
                    ApiError::not_acceptable(format!(
                        "the object cannot be encoded as protobuf: {e}"
                    ))
                } else {
                    ApiError::internal(format!("encoding protobuf: {e}"))
                }
            })?;
            Ok((PROTOBUF, Bytes::from(b)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_acceptable_wins() {
        let kubectl_get = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert_eq!(
            negotiate(Some(kubectl_get), true, true, false).unwrap(),
            Output::Table { v1beta1: false }
        );
        assert_eq!(
            negotiate(Some(kubectl_get), false, true, false).unwrap(),
            Output::Plain(Format::Json)
        );
        let pb = "application/vnd.kubernetes.protobuf,application/json";
        assert_eq!(
            negotiate(Some(pb), true, false, false).unwrap(),
            Output::Plain(Format::Protobuf)
        );
        let disc =
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json";
        assert_eq!(
            negotiate(Some(disc), false, false, true).unwrap(),
            Output::Discovery {
                v2beta1: false,
                format: Format::Json
            }
        );
        assert_eq!(
            negotiate(Some(disc), false, false, false).unwrap(),
            Output::Plain(Format::Json)
        );
        assert!(negotiate(Some("text/html"), true, true, false).is_err());
        assert_eq!(
            negotiate(None, true, true, false).unwrap(),
            Output::Plain(Format::Json)
        );
    }
}
