//! Protobuf -> JSON: walks the generated schema table to turn an encoded message into the JSON
//! value Go's `encoding/json` would produce for the same Go struct (k8s-openapi's serde form).

use std::collections::BTreeMap;

use base64::Engine as _;
use serde_json::{Map, Number, Value};

use crate::error::ProtoError;
use crate::schema::{self, Field, Message, Scalar, Shape, Special, Ty};
use crate::special;
use crate::wire::{Reader, WireValue, as_len, as_str, as_varint};

/// Raw occurrences of each field of a message, indexed like `Message::fields`.
struct Slots<'a> {
    msg: &'static Message,
    /// Nesting depth of this message, bounded by [`MAX_DEPTH`].
    depth: usize,
    values: Vec<Vec<WireValue<'a>>>,
}

impl<'a> Slots<'a> {
    fn read(msg: &'static Message, data: &'a [u8], depth: usize) -> Result<Self, ProtoError> {
        if depth > MAX_DEPTH {
            return Err(ProtoError::malformed("message nesting is too deep"));
        }
        let mut values = vec![Vec::new(); msg.fields.len()];
        let mut reader = Reader::new(data);
        while let Some((tag, value)) = reader.next_field()? {
            // Unknown fields are skipped, as gogo-protobuf does.
            if let Some((i, _)) = msg.field_by_tag(tag) {
                values[i].push(value);
            }
        }
        Ok(Slots { msg, depth, values })
    }

    fn by_tag(&self, tag: u32) -> Option<(&'static Field, &[WireValue<'a>])> {
        self.msg
            .field_by_tag(tag)
            .map(|(i, f)| (f, self.values[i].as_slice()))
    }

    /// The (merged) sub-message bytes of a singular message field.
    fn message_bytes(values: &[WireValue<'a>]) -> Result<Option<Vec<u8>>, ProtoError> {
        let mut out: Option<Vec<u8>> = None;
        for v in values {
            // Repeated occurrences of a message field merge, which concatenation achieves.
            out.get_or_insert_with(Vec::new)
                .extend_from_slice(as_len(*v)?);
        }
        Ok(out)
    }
}

/// Deepest message nesting accepted (guards the stack against hostile input).
const MAX_DEPTH: usize = 100;

/// Decodes one top-level message (see [`message_at`]).
#[cfg(test)]
pub(crate) fn message(msg: &'static Message, data: &[u8]) -> Result<Option<Value>, ProtoError> {
    message_at(msg, data, 0)
}

/// Decodes one message `depth` levels deep; `None` when its JSON form is absent (e.g. a zero
/// metav1.Time).
pub(crate) fn message_at(
    msg: &'static Message,
    data: &[u8],
    depth: usize,
) -> Result<Option<Value>, ProtoError> {
    let slots = Slots::read(msg, data, depth)?;
    match msg.special {
        Special::Plain => plain(&slots).map(|m| Some(Value::Object(m))),
        Special::Time => {
            if data.is_empty() {
                return Ok(None);
            }
            let seconds = last_int(&slots, 1)?.unwrap_or(0);
            special::format_time(seconds).map(|s| Some(Value::String(s)))
        }
        Special::MicroTime => {
            if data.is_empty() {
                return Ok(None);
            }
            let seconds = last_int(&slots, 1)?.unwrap_or(0);
            let nanos = last_int(&slots, 2)?.unwrap_or(0) as i32;
            special::format_micro_time(seconds, nanos).map(|s| Some(Value::String(s)))
        }
        Special::Duration => {
            let nanos = last_int(&slots, 1)?.unwrap_or(0);
            Ok(Some(Value::String(special::format_duration(nanos))))
        }
        Special::Quantity => {
            let s = last_string(&slots, 1)?.unwrap_or_default();
            Ok(Some(Value::String(if s.is_empty() {
                "0".to_string()
            } else {
                s
            })))
        }
        Special::IntOrString => {
            if last_int(&slots, 1)? == Some(1) {
                Ok(Some(Value::String(
                    last_string(&slots, 3)?.unwrap_or_default(),
                )))
            } else {
                Ok(Some(Value::from(last_int(&slots, 2)?.unwrap_or(0) as i32)))
            }
        }
        Special::RawExtension => match last_bytes(&slots, 1)? {
            None => Ok(None),
            Some([]) => Ok(None),
            Some(raw) if raw.starts_with(crate::MAGIC) => {
                crate::decode_at(raw, depth + 1).map(Some)
            }
            Some(raw) => serde_json::from_slice(raw)
                .map(Some)
                .map_err(|e| ProtoError::malformed(format!("embedded object is not JSON: {e}"))),
        },
        Special::RawJson => match last_bytes(&slots, 1)? {
            None => Ok(None),
            Some(raw) => serde_json::from_slice(raw)
                .map(Some)
                .map_err(|e| ProtoError::malformed(format!("embedded value is not JSON: {e}"))),
        },
        Special::SchemaOrArray => {
            let list = field_json(&slots, 2)?;
            if list
                .as_ref()
                .is_some_and(|v| v.as_array().is_some_and(|a| !a.is_empty()))
            {
                return Ok(list);
            }
            field_json(&slots, 1)
        }
        Special::SchemaOrBool => match field_json(&slots, 2)? {
            Some(schema) => Ok(Some(schema)),
            None => Ok(Some(Value::Bool(last_int(&slots, 1)?.unwrap_or(0) != 0))),
        },
        Special::SchemaOrStringArray => {
            let list = field_json(&slots, 2)?;
            if list
                .as_ref()
                .is_some_and(|v| v.as_array().is_some_and(|a| !a.is_empty()))
            {
                return Ok(list);
            }
            field_json(&slots, 1)
        }
        Special::StringList => Ok(Some(
            field_json(&slots, 1)?.unwrap_or_else(|| Value::Array(Vec::new())),
        )),
    }
}

fn last_value<'a>(slots: &Slots<'a>, tag: u32) -> Option<WireValue<'a>> {
    slots.by_tag(tag).and_then(|(_, v)| v.last().copied())
}

fn last_int(slots: &Slots<'_>, tag: u32) -> Result<Option<i64>, ProtoError> {
    last_value(slots, tag)
        .map(|v| as_varint(v).map(|u| u as i64))
        .transpose()
}

fn last_string(slots: &Slots<'_>, tag: u32) -> Result<Option<String>, ProtoError> {
    last_value(slots, tag)
        .map(|v| as_str(v).map(str::to_string))
        .transpose()
}

fn last_bytes<'a>(slots: &Slots<'a>, tag: u32) -> Result<Option<&'a [u8]>, ProtoError> {
    last_value(slots, tag).map(as_len).transpose()
}

/// The JSON of the field with this tag, as it would appear in a plain object.
fn field_json(slots: &Slots<'_>, tag: u32) -> Result<Option<Value>, ProtoError> {
    match slots.by_tag(tag) {
        Some((field, values)) => field_value(field, values, slots.depth),
        None => Ok(None),
    }
}

/// A plain message: an object of its fields in Go struct order.
fn plain(slots: &Slots<'_>) -> Result<Map<String, Value>, ProtoError> {
    let mut out = Map::new();
    for (field, values) in slots.msg.fields.iter().zip(&slots.values) {
        if values.is_empty() {
            continue;
        }
        if field.json.is_empty() {
            // Go embedded struct: its fields are inlined into this object.
            inline(field, values, slots.depth, &mut out)?;
            continue;
        }
        if let Some(v) = field_value(field, values, slots.depth).map_err(|e| e.at(field.json))? {
            out.insert(field.json.to_string(), v);
        }
    }
    Ok(out)
}

fn inline(
    field: &Field,
    values: &[WireValue<'_>],
    depth: usize,
    out: &mut Map<String, Value>,
) -> Result<(), ProtoError> {
    let Ty::Message(index) = field.ty else {
        return Err(ProtoError::malformed("inlined field is not a message"));
    };
    let bytes = Slots::message_bytes(values)?.unwrap_or_default();
    match message_at(schema::message(index), &bytes, depth + 1)? {
        Some(Value::Object(inner)) => out.extend(inner),
        Some(_) => return Err(ProtoError::malformed("inlined message is not an object")),
        None => {}
    }
    Ok(())
}

/// The JSON for one field given all of its occurrences; `None` means "omit the key".
fn field_value(
    field: &Field,
    values: &[WireValue<'_>],
    depth: usize,
) -> Result<Option<Value>, ProtoError> {
    match field.shape {
        Shape::Single => match field.ty {
            Ty::Message(index) => match Slots::message_bytes(values)? {
                Some(bytes) => message_at(schema::message(index), &bytes, depth + 1),
                None => Ok(None),
            },
            Ty::Scalar(s) => {
                let Some(last) = values.last() else {
                    return Ok(None);
                };
                let v = scalar(s, *last)?;
                Ok(if !field.keep_zero && is_zero(&v) {
                    None
                } else {
                    Some(v)
                })
            }
        },
        Shape::Repeated => {
            let mut items = Vec::new();
            for (i, v) in values.iter().enumerate() {
                match field.ty {
                    Ty::Message(index) => {
                        let item = message_at(schema::message(index), as_len(*v)?, depth + 1)
                            .map_err(|e| e.at(&format!("[{i}]")))?;
                        items.push(item.unwrap_or(Value::Null));
                    }
                    Ty::Scalar(s) => repeated_scalar(s, *v, &mut items)?,
                }
            }
            Ok(Some(Value::Array(items)))
        }
        Shape::Map(key_type) => {
            let mut entries = BTreeMap::new();
            for v in values {
                let (k, val) = map_entry(key_type, field.ty, as_len(*v)?, depth)?;
                entries.insert(k, val);
            }
            Ok(Some(Value::Object(entries.into_iter().collect())))
        }
    }
}

fn repeated_scalar(s: Scalar, v: WireValue<'_>, items: &mut Vec<Value>) -> Result<(), ProtoError> {
    let numeric = !matches!(s, Scalar::String | Scalar::Bytes);
    match v {
        WireValue::Len(packed) if numeric => {
            let mut reader = Reader::new(packed);
            while !reader.is_done() {
                let one = match s {
                    Scalar::Double | Scalar::Fixed64 | Scalar::Sfixed64 => {
                        WireValue::Fixed64(read_fixed::<8>(&mut reader)?)
                    }
                    Scalar::Float | Scalar::Fixed32 | Scalar::Sfixed32 => {
                        WireValue::Fixed32(read_fixed::<4>(&mut reader)? as u32)
                    }
                    _ => WireValue::Varint(reader.varint()?),
                };
                items.push(scalar(s, one)?);
            }
        }
        other => items.push(scalar(s, other)?),
    }
    Ok(())
}

fn read_fixed<const N: usize>(reader: &mut Reader<'_>) -> Result<u64, ProtoError> {
    let bytes = reader.take_bytes(N)?;
    Ok(bytes
        .iter()
        .rev()
        .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
}

fn map_entry(
    key_type: Scalar,
    value_ty: Ty,
    data: &[u8],
    depth: usize,
) -> Result<(String, Value), ProtoError> {
    let mut key = None;
    let mut value = None;
    let mut reader = Reader::new(data);
    while let Some((tag, v)) = reader.next_field()? {
        match tag {
            1 => key = Some(v),
            2 => value = Some(v),
            _ => {}
        }
    }
    let key = match key {
        Some(k) => match scalar(key_type, k)? {
            Value::String(s) => s,
            other => other.to_string(),
        },
        None => String::new(),
    };
    let value = match value_ty {
        Ty::Scalar(s) => match value {
            Some(v) => scalar(s, v)?,
            None => default_scalar(s),
        },
        Ty::Message(index) => {
            let bytes = match value {
                Some(v) => as_len(v)?,
                None => &[],
            };
            message_at(schema::message(index), bytes, depth + 1)
                .map_err(|e| e.at(&key))?
                .unwrap_or(Value::Null)
        }
    };
    Ok((key, value))
}

fn is_zero(v: &Value) -> bool {
    match v {
        Value::String(s) => s.is_empty(),
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        _ => false,
    }
}

fn default_scalar(s: Scalar) -> Value {
    match s {
        Scalar::String | Scalar::Bytes => Value::String(String::new()),
        Scalar::Bool => Value::Bool(false),
        _ => Value::from(0),
    }
}

/// One scalar wire value as JSON (int64 as numbers, bytes as base64, like Go).
fn scalar(s: Scalar, v: WireValue<'_>) -> Result<Value, ProtoError> {
    let mismatch = || ProtoError::malformed(format!("wire type does not match {s:?} field"));
    Ok(match (s, v) {
        (Scalar::String, v) => Value::String(as_str(v)?.to_string()),
        (Scalar::Bytes, v) => {
            Value::String(base64::engine::general_purpose::STANDARD.encode(as_len(v)?))
        }
        (Scalar::Bool, WireValue::Varint(u)) => Value::Bool(u != 0),
        (Scalar::Int32, WireValue::Varint(u)) => Value::from(u as i64 as i32),
        (Scalar::Int64, WireValue::Varint(u)) => Value::from(u as i64),
        (Scalar::Uint32, WireValue::Varint(u)) => Value::from(u as u32),
        (Scalar::Uint64, WireValue::Varint(u)) => Value::from(u),
        (Scalar::Sint32, WireValue::Varint(u)) => Value::from(zigzag(u) as i32),
        (Scalar::Sint64, WireValue::Varint(u)) => Value::from(zigzag(u)),
        (Scalar::Fixed32, WireValue::Fixed32(u)) => Value::from(u),
        (Scalar::Sfixed32, WireValue::Fixed32(u)) => Value::from(u as i32),
        (Scalar::Fixed64, WireValue::Fixed64(u)) => Value::from(u),
        (Scalar::Sfixed64, WireValue::Fixed64(u)) => Value::from(u as i64),
        (Scalar::Float, WireValue::Fixed32(u)) => float(f64::from(f32::from_bits(u)))?,
        (Scalar::Double, WireValue::Fixed64(u)) => float(f64::from_bits(u))?,
        _ => return Err(mismatch()),
    })
}

fn zigzag(u: u64) -> i64 {
    ((u >> 1) as i64) ^ -((u & 1) as i64)
}

fn float(f: f64) -> Result<Value, ProtoError> {
    Number::from_f64(f)
        .map(Value::Number)
        .ok_or_else(|| ProtoError::malformed("non-finite number cannot be represented in JSON"))
}
