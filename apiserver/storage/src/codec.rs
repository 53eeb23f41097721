//! How objects are encoded in storage (mirrors the storage codec of
//! apiserver/pkg/storage/storagebackend): the registry works with an object's JSON form and the
//! codec turns it into stored bytes and back. JSON today; a protobuf codec (upstream's storage
//! format, for data compatibility) can replace it without touching the registry.

use bytes::Bytes;
use std::borrow::Cow;

pub trait Codec: Send + Sync + 'static {
    /// The media type of stored values.
    fn media_type(&self) -> &'static str;
    /// Turns an object's JSON into stored bytes.
    fn encode(&self, json: &[u8]) -> Result<Bytes, String>;
    /// Turns stored bytes back into the object's JSON. Every codec also accepts JSON (the watch
    /// cache re-stamps served JSON with new revisions through the same path).
    fn decode<'a>(&self, stored: &'a [u8]) -> Result<Cow<'a, [u8]>, String>;
}

/// Stores objects as their JSON (what this project writes today).
#[derive(Clone, Copy, Debug, Default)]
pub struct JsonCodec;

impl Codec for JsonCodec {
    fn media_type(&self) -> &'static str {
        "application/json"
    }
    fn encode(&self, json: &[u8]) -> Result<Bytes, String> {
        Ok(Bytes::copy_from_slice(json))
    }
    fn decode<'a>(&self, stored: &'a [u8]) -> Result<Cow<'a, [u8]>, String> {
        match stored.first() {
            Some(b'{') => Ok(Cow::Borrowed(stored)),
            Some(b'k') if stored.starts_with(b"k8s\0") => {
                Err("the stored value is protobuf; this apiserver stores and reads JSON".into())
            }
            _ => Err("the stored value is not a JSON object".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip_and_foreign_data() {
        let c = JsonCodec;
        let b = c.encode(br#"{"a":1}"#).unwrap();
        assert_eq!(c.decode(&b).unwrap().as_ref(), br#"{"a":1}"#);
        assert!(c.decode(b"k8s\0\x0a").unwrap_err().contains("protobuf"));
        assert!(c.decode(b"").is_err());
    }
}
