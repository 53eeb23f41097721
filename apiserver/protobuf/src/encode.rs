//! JSON -> protobuf: walks the generated schema table to encode a JSON value (k8s-openapi's
//! serde form) as the message gogo-protobuf would write for the same Go struct.

use base64::Engine as _;
use serde_json::Value;

use crate::error::ProtoError;
use crate::schema::{self, Field, Message, Scalar, Shape, Special, Ty};
use crate::special;
use crate::wire::{
    WIRE_FIXED32, WIRE_FIXED64, WIRE_VARINT, put_key, put_len, put_uvarint_field, put_varint,
};

/// Encodes `value` as the body of message `msg` (without tag or length).
pub(crate) fn message(
    msg: &'static Message,
    value: &Value,
    out: &mut Vec<u8>,
) -> Result<(), ProtoError> {
    match msg.special {
        Special::Plain => plain(msg, value, out),
        Special::Time => {
            let (seconds, _) = special::parse_time(expect_str(value)?)?;
            // metav1.Time keeps whole seconds; gogo writes both Timestamp fields.
            put_uvarint_field(out, 1, seconds as u64);
            put_uvarint_field(out, 2, 0);
            Ok(())
        }
        Special::MicroTime => {
            let (seconds, nanos) = special::parse_time(expect_str(value)?)?;
            put_uvarint_field(out, 1, seconds as u64);
            put_uvarint_field(out, 2, i64::from(nanos) as u64);
            Ok(())
        }
        Special::Duration => {
            let nanos = special::parse_duration(expect_str(value)?)?;
            put_uvarint_field(out, 1, nanos as u64);
            Ok(())
        }
        Special::Quantity => {
            let s = match value {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => return Err(ProtoError::invalid("quantity must be a string or a number")),
            };
            put_len(out, 1, s.as_bytes());
            Ok(())
        }
        Special::IntOrString => {
            // gogo writes all three fields: type, intVal, strVal.
            match value {
                Value::Number(_) => {
                    let n = int_in_range(value, i64::from(i32::MIN), i64::from(i32::MAX))?;
                    put_uvarint_field(out, 1, 0);
                    put_uvarint_field(out, 2, n as u64);
                    put_len(out, 3, b"");
                }
                Value::String(s) => {
                    put_uvarint_field(out, 1, 1);
                    put_uvarint_field(out, 2, 0);
                    put_len(out, 3, s.as_bytes());
                }
                _ => return Err(ProtoError::invalid("expected an integer or a string")),
            }
            Ok(())
        }
        Special::RawExtension | Special::RawJson => {
            let raw = serde_json::to_vec(value).map_err(|e| ProtoError::invalid(e.to_string()))?;
            put_len(out, 1, &raw);
            Ok(())
        }
        Special::SchemaOrArray => match value {
            Value::Array(_) => field(msg, 2, value, out),
            _ => field(msg, 1, value, out),
        },
        Special::SchemaOrBool => match value {
            Value::Bool(b) => {
                put_uvarint_field(out, 1, u64::from(*b));
                Ok(())
            }
            _ => {
                put_uvarint_field(out, 1, 1);
                field(msg, 2, value, out)
            }
        },
        Special::SchemaOrStringArray => match value {
            Value::Array(_) => field(msg, 2, value, out),
            _ => field(msg, 1, value, out),
        },
        Special::StringList => field(msg, 1, value, out),
    }
}

/// Encodes the field with `tag` of `msg` from `value`.
fn field(
    msg: &'static Message,
    tag: u32,
    value: &Value,
    out: &mut Vec<u8>,
) -> Result<(), ProtoError> {
    let (_, f) = msg
        .field_by_tag(tag)
        .ok_or_else(|| ProtoError::invalid(format!("{} has no field {tag}", msg.name)))?;
    field_value(f, value, out)
}

fn plain(msg: &'static Message, value: &Value, out: &mut Vec<u8>) -> Result<(), ProtoError> {
    let Value::Object(obj) = value else {
        return Err(ProtoError::invalid(format!(
            "expected an object, got {}",
            kind_of(value)
        )));
    };
    for &i in msg.by_tag {
        let f = &msg.fields[usize::from(i)];
        if f.json.is_empty() {
            // Go embedded struct: encoded from the same JSON object, always present.
            let Ty::Message(index) = f.ty else {
                return Err(ProtoError::invalid("inlined field is not a message"));
            };
            let mut inner = Vec::new();
            message(schema::message(index), value, &mut inner)?;
            put_len(out, f.tag, &inner);
            continue;
        }
        match obj.get(f.json) {
            None | Some(Value::Null) => {}
            Some(v) => field_value(f, v, out).map_err(|e| e.at(f.json))?,
        }
    }
    Ok(())
}

fn field_value(f: &Field, value: &Value, out: &mut Vec<u8>) -> Result<(), ProtoError> {
    match f.shape {
        Shape::Single => single(f.tag, f.ty, value, out),
        Shape::Repeated => {
            let Value::Array(items) = value else {
                return Err(ProtoError::invalid(format!(
                    "expected an array, got {}",
                    kind_of(value)
                )));
            };
            if let (true, Ty::Scalar(s)) = (f.packed, f.ty) {
                let mut packed = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    scalar_payload(s, item, &mut packed).map_err(|e| e.at(&format!("[{i}]")))?;
                }
                put_len(out, f.tag, &packed);
                return Ok(());
            }
            for (i, item) in items.iter().enumerate() {
                single(f.tag, f.ty, item, out).map_err(|e| e.at(&format!("[{i}]")))?;
            }
            Ok(())
        }
        Shape::Map(key_type) => {
            let Value::Object(map) = value else {
                return Err(ProtoError::invalid(format!(
                    "expected an object, got {}",
                    kind_of(value)
                )));
            };
            // Go writes map entries sorted by key.
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            for key in keys {
                let mut entry = Vec::new();
                let key_value = match key_type {
                    Scalar::String => Value::String(key.clone()),
                    _ => serde_json::from_str(key)
                        .map_err(|_| ProtoError::invalid(format!("invalid map key {key:?}")))?,
                };
                single(1, Ty::Scalar(key_type), &key_value, &mut entry).map_err(|e| e.at(key))?;
                single(2, f.ty, &map[key], &mut entry).map_err(|e| e.at(key))?;
                put_len(out, f.tag, &entry);
            }
            Ok(())
        }
    }
}

/// One field occurrence: key plus value. JSON null writes the type's empty value.
fn single(tag: u32, ty: Ty, value: &Value, out: &mut Vec<u8>) -> Result<(), ProtoError> {
    match ty {
        Ty::Message(index) => {
            let mut inner = Vec::new();
            if !value.is_null() {
                message(schema::message(index), value, &mut inner)?;
            }
            put_len(out, tag, &inner);
        }
        Ty::Scalar(s) => {
            let wire = match s {
                Scalar::String | Scalar::Bytes => 2,
                Scalar::Double | Scalar::Fixed64 | Scalar::Sfixed64 => WIRE_FIXED64,
                Scalar::Float | Scalar::Fixed32 | Scalar::Sfixed32 => WIRE_FIXED32,
                _ => WIRE_VARINT,
            };
            put_key(out, tag, wire);
            scalar_payload(s, value, out)?;
        }
    }
    Ok(())
}

/// The value part of a scalar (for strings and bytes including the length).
fn scalar_payload(s: Scalar, value: &Value, out: &mut Vec<u8>) -> Result<(), ProtoError> {
    if value.is_null() {
        return scalar_payload(s, &null_default(s), out);
    }
    match s {
        Scalar::String => {
            let v = expect_str(value)?;
            put_varint(out, v.len() as u64);
            out.extend_from_slice(v.as_bytes());
        }
        Scalar::Bytes => {
            let text = expect_str(value)?;
            let v = base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|e| ProtoError::invalid(format!("invalid base64 data: {e}")))?;
            put_varint(out, v.len() as u64);
            out.extend_from_slice(&v);
        }
        Scalar::Bool => {
            let b = value
                .as_bool()
                .ok_or_else(|| type_error("a boolean", value))?;
            put_varint(out, u64::from(b));
        }
        Scalar::Int32 => put_varint(
            out,
            int_in_range(value, i32::MIN.into(), i32::MAX.into())? as u64,
        ),
        Scalar::Int64 => put_varint(out, int_in_range(value, i64::MIN, i64::MAX)? as u64),
        Scalar::Uint32 => put_varint(out, int_in_range(value, 0, u32::MAX.into())? as u64),
        Scalar::Uint64 => put_varint(out, uint(value)?),
        Scalar::Sint32 => {
            let n = int_in_range(value, i32::MIN.into(), i32::MAX.into())?;
            put_varint(out, ((n << 1) ^ (n >> 63)) as u64);
        }
        Scalar::Sint64 => {
            let n = int_in_range(value, i64::MIN, i64::MAX)?;
            put_varint(out, ((n << 1) ^ (n >> 63)) as u64);
        }
        Scalar::Fixed32 => {
            let n = int_in_range(value, 0, u32::MAX.into())? as u32;
            out.extend_from_slice(&n.to_le_bytes());
        }
        Scalar::Sfixed32 => {
            let n = int_in_range(value, i32::MIN.into(), i32::MAX.into())? as i32;
            out.extend_from_slice(&n.to_le_bytes());
        }
        Scalar::Fixed64 => out.extend_from_slice(&uint(value)?.to_le_bytes()),
        Scalar::Sfixed64 => {
            out.extend_from_slice(&int_in_range(value, i64::MIN, i64::MAX)?.to_le_bytes());
        }
        Scalar::Float => {
            let f = value
                .as_f64()
                .ok_or_else(|| type_error("a number", value))? as f32;
            out.extend_from_slice(&f.to_le_bytes());
        }
        Scalar::Double => {
            let f = value
                .as_f64()
                .ok_or_else(|| type_error("a number", value))?;
            out.extend_from_slice(&f.to_le_bytes());
        }
    }
    Ok(())
}

fn null_default(s: Scalar) -> Value {
    match s {
        Scalar::String | Scalar::Bytes => Value::String(String::new()),
        Scalar::Bool => Value::Bool(false),
        _ => Value::from(0),
    }
}

fn int_in_range(value: &Value, min: i64, max: i64) -> Result<i64, ProtoError> {
    let n = match value {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9.2e18)
                .map(|f| f as i64)
        }),
        _ => None,
    }
    .ok_or_else(|| type_error("an integer", value))?;
    if n < min || n > max {
        return Err(ProtoError::invalid(format!("integer {n} out of range")));
    }
    Ok(n)
}

fn uint(value: &Value) -> Result<u64, ProtoError> {
    match value {
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
    .ok_or_else(|| type_error("a non-negative integer", value))
}

fn expect_str(value: &Value) -> Result<&str, ProtoError> {
    value.as_str().ok_or_else(|| type_error("a string", value))
}

fn type_error(want: &str, got: &Value) -> ProtoError {
    ProtoError::invalid(format!("expected {want}, got {}", kind_of(got)))
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
