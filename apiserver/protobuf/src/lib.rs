//! Kubernetes' protobuf wire format (`application/vnd.kubernetes.protobuf`) for every built-in
//! type, transcoded to and from the JSON form k8s-openapi's serde uses. Mirrors upstream
//! `apimachinery/pkg/runtime/serializer/protobuf/protobuf.go` (envelope), the watch stream
//! framing of `apiserver/pkg/endpoints/handlers/watch.go`, and the `generated.proto` schemas,
//! which reach this crate through the sources of the `k8s-pb` crate (see build.rs).
//!
//! The transcoder is generic: a build-time table lists every message's fields (tag, wire type,
//! shape, JSON name) and [`decode`]/[`encode`] walk it; no code is written per kind.

mod decode;
mod encode;
mod error;
mod schema;
mod special;
mod wire;

use serde_json::{Map, Value};

pub use error::ProtoError;
use wire::{Reader, as_len, as_str, put_len};

/// The protobuf media type served and accepted by the apiserver.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// The media type of a protobuf watch stream.
pub const WATCH_MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf;stream=watch";

/// Magic prefix of every enveloped object: `k8s` and the encoding style byte 0 (runtime.Unknown).
pub const MAGIC: &[u8; 4] = b"k8s\x00";

/// Decodes an enveloped protobuf body into the object's JSON, including the envelope's
/// `apiVersion` and `kind`.
pub fn decode(body: &[u8]) -> Result<Value, ProtoError> {
    decode_at(body, 0)
}

/// [`decode`] of an envelope nested `depth` messages deep (inside a RawExtension).
pub(crate) fn decode_at(body: &[u8], depth: usize) -> Result<Value, ProtoError> {
    let (api_version, kind, raw) = open_envelope(body)?;
    object_at(&api_version, &kind, raw, depth)
}

/// Decodes an object's message bytes (no envelope) given its type.
pub fn decode_object(api_version: &str, kind: &str, raw: &[u8]) -> Result<Value, ProtoError> {
    object_at(api_version, kind, raw, 0)
}

fn object_at(api_version: &str, kind: &str, raw: &[u8], depth: usize) -> Result<Value, ProtoError> {
    let msg = schema::message_for_kind(api_version, kind)
        .ok_or_else(|| unsupported(api_version, kind))?;
    let mut out = Map::new();
    out.insert(
        "apiVersion".to_string(),
        Value::String(api_version.to_string()),
    );
    out.insert("kind".to_string(), Value::String(kind.to_string()));
    match decode::message_at(msg, raw, depth)? {
        Some(Value::Object(fields)) => out.extend(fields),
        Some(_) => return Err(ProtoError::malformed(format!("{kind} is not an object"))),
        None => {}
    }
    Ok(Value::Object(out))
}

/// Encodes a JSON object carrying `apiVersion` and `kind` as an enveloped protobuf body.
pub fn encode(obj: &Value) -> Result<Vec<u8>, ProtoError> {
    let api_version = obj
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or_default();
    if !obj.is_object() {
        return Err(ProtoError::invalid("expected a JSON object"));
    }
    if kind.is_empty() {
        return Err(ProtoError::MissingKind);
    }
    if api_version.is_empty() {
        return Err(ProtoError::MissingApiVersion);
    }
    let raw = encode_object(obj, api_version, kind)?;
    Ok(envelope(api_version, kind, &raw))
}

/// Encodes a JSON object as the message of the given type (no envelope).
pub fn encode_object(obj: &Value, api_version: &str, kind: &str) -> Result<Vec<u8>, ProtoError> {
    let msg = schema::message_for_kind(api_version, kind)
        .ok_or_else(|| unsupported(api_version, kind))?;
    let mut raw = Vec::new();
    encode::message(msg, obj, &mut raw)?;
    Ok(raw)
}

/// Encodes one watch event as a frame of a protobuf watch stream: a 4-byte big-endian length
/// followed by a `meta.k8s.io/v1` WatchEvent message (not enveloped) whose `object.raw` holds
/// the object's full envelope.
pub fn encode_watch_event(event_type: &str, object: &Value) -> Result<Vec<u8>, ProtoError> {
    let inner = encode(object)?;
    let mut raw_extension = Vec::new();
    put_len(&mut raw_extension, 1, &inner);
    let mut event = Vec::new();
    put_len(&mut event, 1, event_type.as_bytes());
    put_len(&mut event, 2, &raw_extension);
    let len =
        u32::try_from(event.len()).map_err(|_| ProtoError::invalid("watch event too large"))?;
    let mut frame = Vec::with_capacity(event.len() + 4);
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(&event);
    Ok(frame)
}

/// Decodes one frame written by [`encode_watch_event`] into (event type, object JSON).
pub fn decode_watch_event(frame: &[u8]) -> Result<(String, Value), ProtoError> {
    let (len_bytes, event) = frame
        .split_first_chunk::<4>()
        .ok_or_else(|| ProtoError::malformed("watch frame shorter than its length prefix"))?;
    if u32::from_be_bytes(*len_bytes) as usize != event.len() {
        return Err(ProtoError::malformed(
            "watch frame length does not match its data",
        ));
    }
    let mut event_type = String::new();
    let mut raw: &[u8] = &[];
    let mut reader = Reader::new(event);
    while let Some((tag, value)) = reader.next_field()? {
        match tag {
            1 => event_type = as_str(value)?.to_string(),
            2 => {
                let mut ext = Reader::new(as_len(value)?);
                while let Some((tag, value)) = ext.next_field()? {
                    if tag == 1 {
                        raw = as_len(value)?;
                    }
                }
            }
            _ => {}
        }
    }
    Ok((event_type, decode(raw)?))
}

/// Whether objects of this apiVersion and kind have a protobuf form.
pub fn supports(api_version: &str, kind: &str) -> bool {
    schema::message_for_kind(api_version, kind).is_some()
}

/// Every (apiVersion, kind) with a dedicated protobuf message. The `meta.k8s.io/v1` kinds that
/// every group version carries (Status, WatchEvent, DeleteOptions, ...) are not listed; they are
/// accepted under any apiVersion.
pub fn supported_kinds() -> impl Iterator<Item = (&'static str, &'static str)> {
    schema::kinds()
}

/// Reads the envelope: (apiVersion, kind, raw message bytes).
fn open_envelope(body: &[u8]) -> Result<(String, String, &[u8]), ProtoError> {
    if body.is_empty() {
        return Err(ProtoError::Empty);
    }
    let data = body
        .strip_prefix(MAGIC.as_slice())
        .ok_or(ProtoError::NotProtobuf)?;
    if data.is_empty() {
        return Err(ProtoError::Empty);
    }
    let (mut api_version, mut kind, mut raw) = (String::new(), String::new(), &[][..]);
    let mut reader = Reader::new(data);
    while let Some((tag, value)) = reader.next_field()? {
        match tag {
            1 => {
                let mut type_meta = Reader::new(as_len(value)?);
                while let Some((tag, value)) = type_meta.next_field()? {
                    match tag {
                        1 => api_version = as_str(value)?.to_string(),
                        2 => kind = as_str(value)?.to_string(),
                        _ => {}
                    }
                }
            }
            2 => raw = as_len(value)?,
            _ => {}
        }
    }
    if kind.is_empty() {
        return Err(ProtoError::MissingKind);
    }
    if api_version.is_empty() {
        return Err(ProtoError::MissingApiVersion);
    }
    Ok((api_version, kind, raw))
}

/// Writes the envelope the way gogo-protobuf marshals runtime.Unknown (all four fields).
fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
    let mut type_meta = Vec::new();
    put_len(&mut type_meta, 1, api_version.as_bytes());
    put_len(&mut type_meta, 2, kind.as_bytes());
    let mut out = Vec::with_capacity(raw.len() + type_meta.len() + 16);
    out.extend_from_slice(MAGIC);
    put_len(&mut out, 1, &type_meta);
    put_len(&mut out, 2, raw);
    put_len(&mut out, 3, b"");
    put_len(&mut out, 4, b"");
    out
}

fn unsupported(api_version: &str, kind: &str) -> ProtoError {
    ProtoError::UnsupportedKind {
        api_version: api_version.to_string(),
        kind: kind.to_string(),
    }
}

#[cfg(test)]
mod tests;
