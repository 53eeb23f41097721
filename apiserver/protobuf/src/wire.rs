//! Protobuf wire primitives: varints, field keys, length-delimited values (the encoding that
//! gogo-protobuf generated code in k8s.io/api produces and consumes).

use crate::error::ProtoError;

pub(crate) const WIRE_VARINT: u8 = 0;
pub(crate) const WIRE_FIXED64: u8 = 1;
pub(crate) const WIRE_LEN: u8 = 2;
pub(crate) const WIRE_FIXED32: u8 = 5;

/// One raw field value as found on the wire.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum WireValue<'a> {
    Varint(u64),
    Fixed64(u64),
    Len(&'a [u8]),
    Fixed32(u32),
}

/// Iterates over the fields of one encoded message.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub(crate) fn varint(&mut self) -> Result<u64, ProtoError> {
        let mut value: u64 = 0;
        for shift in (0..70).step_by(7) {
            let Some(&byte) = self.buf.get(self.pos) else {
                return Err(ProtoError::malformed("unexpected end of data in varint"));
            };
            self.pos += 1;
            if shift == 63 && byte > 1 {
                return Err(ProtoError::malformed("varint overflows 64 bits"));
            }
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(ProtoError::malformed("varint overflows 64 bits"))
    }

    pub(crate) fn is_done(&self) -> bool {
        self.pos >= self.buf.len()
    }

    pub(crate) fn take_bytes(&mut self, n: usize) -> Result<&'a [u8], ProtoError> {
        self.take(n)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ProtoError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.buf.len())
            .ok_or_else(|| ProtoError::malformed("unexpected end of data"))?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    /// The next (tag, value), or `None` at the end of the message.
    pub(crate) fn next_field(&mut self) -> Result<Option<(u32, WireValue<'a>)>, ProtoError> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let tag = u32::try_from(key >> 3)
            .ok()
            .filter(|&t| t > 0)
            .ok_or_else(|| ProtoError::malformed(format!("invalid field key {key}")))?;
        let value = match (key & 7) as u8 {
            WIRE_VARINT => WireValue::Varint(self.varint()?),
            WIRE_FIXED64 => {
                let b = self.take(8)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                WireValue::Fixed64(u64::from_le_bytes(a))
            }
            WIRE_LEN => {
                let len = usize::try_from(self.varint()?)
                    .map_err(|_| ProtoError::malformed("length does not fit in memory"))?;
                WireValue::Len(self.take(len)?)
            }
            WIRE_FIXED32 => {
                let b = self.take(4)?;
                let mut a = [0u8; 4];
                a.copy_from_slice(b);
                WireValue::Fixed32(u32::from_le_bytes(a))
            }
            other => {
                return Err(ProtoError::malformed(format!(
                    "unsupported wire type {other} for field {tag}"
                )));
            }
        };
        Ok(Some((tag, value)))
    }
}

pub(crate) fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

pub(crate) fn put_key(out: &mut Vec<u8>, tag: u32, wire: u8) {
    put_varint(out, (u64::from(tag) << 3) | u64::from(wire));
}

pub(crate) fn put_len(out: &mut Vec<u8>, tag: u32, bytes: &[u8]) {
    put_key(out, tag, WIRE_LEN);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

pub(crate) fn put_uvarint_field(out: &mut Vec<u8>, tag: u32, value: u64) {
    put_key(out, tag, WIRE_VARINT);
    put_varint(out, value);
}

/// Reads the string/bytes of a length-delimited value.
pub(crate) fn as_len<'a>(value: WireValue<'a>) -> Result<&'a [u8], ProtoError> {
    match value {
        WireValue::Len(b) => Ok(b),
        _ => Err(ProtoError::malformed("expected a length-delimited value")),
    }
}

pub(crate) fn as_varint(value: WireValue<'_>) -> Result<u64, ProtoError> {
    match value {
        WireValue::Varint(v) => Ok(v),
        _ => Err(ProtoError::malformed("expected a varint value")),
    }
}

pub(crate) fn as_str(value: WireValue<'_>) -> Result<&str, ProtoError> {
    std::str::from_utf8(as_len(value)?)
        .map_err(|_| ProtoError::malformed("invalid UTF-8 in string"))
}
