//! Shallow edits of an object's JSON without decoding it into its type: setting
//! `metadata.resourceVersion` on stored bytes and reading name, namespace and labels. The watch
//! cache uses this for every event of resources whose only selectable fields are metadata, so an
//! event costs one shallow parse instead of a typed decode and re-encode (upstream's cacher
//! decodes once too; it stores the decoded object).

use serde::Deserialize;
use serde::de::{MapAccess, Visitor};
use serde_json::value::RawValue;
use std::collections::BTreeMap;
use std::fmt;

/// The members of one JSON object, in order, values left raw.
struct Members<'a>(Vec<(String, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for Members<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Members<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = m.next_entry::<String, &'de RawValue>()? {
                    out.push((k, v));
                }
                Ok(Members(out))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

/// What the watch cache needs of an object.
#[derive(Debug, Default, PartialEq)]
pub struct MetaView {
    pub name: String,
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
}

fn write_key(out: &mut Vec<u8>, k: &str) -> Result<(), serde_json::Error> {
    serde_json::to_writer(&mut *out, k)?;
    out.push(b':');
    Ok(())
}

/// Returns `json` with `metadata.resourceVersion` set to `rev` (inserted in field order), and the
/// object's name, namespace and labels.
pub fn stamp_resource_version(
    json: &[u8],
    rev: i64,
) -> Result<(Vec<u8>, MetaView), serde_json::Error> {
    let top: Members = serde_json::from_slice(json)?;
    let mut out = Vec::with_capacity(json.len() + 32);
    let mut view = MetaView::default();
    let rv = rev.to_string();
    let mut saw_meta = false;
    out.push(b'{');
    for (i, (k, v)) in top.0.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_key(&mut out, k)?;
        if k != "metadata" {
            out.extend_from_slice(v.get().as_bytes());
            continue;
        }
        saw_meta = true;
        let meta: Members = serde_json::from_str(v.get())?;
        out.push(b'{');
        let mut first = true;
        let mut placed = false;
        let mut sep = |out: &mut Vec<u8>| {
            if !first {
                out.push(b',');
            }
            first = false;
        };
        for (mk, mv) in &meta.0 {
            match mk.as_str() {
                "resourceVersion" => continue,
                "name" => view.name = serde_json::from_str(mv.get()).unwrap_or_default(),
                "namespace" => view.namespace = serde_json::from_str(mv.get()).unwrap_or_default(),
                "labels" => view.labels = serde_json::from_str(mv.get()).unwrap_or_default(),
                _ => {}
            }
            if !placed && mk.as_str() > "resourceVersion" {
                sep(&mut out);
                write_key(&mut out, "resourceVersion")?;
                serde_json::to_writer(&mut out, &rv)?;
                placed = true;
            }
            sep(&mut out);
            write_key(&mut out, mk)?;
            out.extend_from_slice(mv.get().as_bytes());
        }
        if !placed {
            sep(&mut out);
            write_key(&mut out, "resourceVersion")?;
            serde_json::to_writer(&mut out, &rv)?;
        }
        out.push(b'}');
    }
    if !saw_meta {
        if !top.0.is_empty() {
            out.push(b',');
        }
        write_key(&mut out, "metadata")?;
        out.extend_from_slice(b"{\"resourceVersion\":");
        serde_json::to_writer(&mut out, &rv)?;
        out.push(b'}');
    }
    out.push(b'}');
    Ok((out, view))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    #[test]
    fn stamps_in_field_order_and_reads_labels() {
        let src = br#"{"apiVersion":"v1","data":{"a":"b"},"kind":"ConfigMap","metadata":{"labels":{"x":"y"},"name":"n","namespace":"ns","resourceVersion":"1","uid":"u"}}"#;
        let (out, view) = stamp_resource_version(src, 42).unwrap();
        let s = std::str::from_utf8(&out).unwrap();
        assert_eq!(
            s,
            r#"{"apiVersion":"v1","data":{"a":"b"},"kind":"ConfigMap","metadata":{"labels":{"x":"y"},"name":"n","namespace":"ns","resourceVersion":"42","uid":"u"}}"#
        );
        assert_eq!(view.name, "n");
        assert_eq!(view.namespace, "ns");
        assert_eq!(view.labels.get("x").map(String::as_str), Some("y"));
    }

    #[test]
    fn adds_metadata_when_missing_and_appends_last() {
        let (out, _) = stamp_resource_version(br#"{"kind":"X"}"#, 7).unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v, json!({"kind":"X","metadata":{"resourceVersion":"7"}}));
        let (out, _) = stamp_resource_version(br#"{"metadata":{"name":"a"}}"#, 8).unwrap();
        assert_eq!(out, br#"{"metadata":{"name":"a","resourceVersion":"8"}}"#);
        assert!(stamp_resource_version(b"[1]", 1).is_err());
        assert!(stamp_resource_version(b"{", 1).is_err());
    }
}
