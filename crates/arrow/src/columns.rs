//! Column decoders plugged into arrow-json's tape reader.
//!
//! arrow-json parses a page of JSON into a tape; these decoders turn the tape
//! values of one column into an Arrow array under weft's logical types. They
//! are stricter than arrow-json's built-in ones (an integer column never
//! truncates `12.5`, a number column never parses `"1.5"`), say what they
//! expected and what they got, and turn any JSON value of an `arrow.json`
//! column into its compact JSON text.

use std::sync::Arc;

use arrow_array::ArrayRef;
use arrow_array::builder::{
    BooleanBuilder, Date32Builder, Float64Builder, Int64Builder, StringBuilder,
    TimestampMicrosecondBuilder, TimestampSecondBuilder,
};
use arrow_json::reader::{ArrayDecoder, DecoderContext, DecoderFactory, Tape, TapeElement};
use arrow_schema::{ArrowError, FieldRef};
use chrono::{DateTime, NaiveDate};

use crate::types::{FieldType, field_type_of, is_json_field};

/// Longest rendering of an offending value kept in an error message, in bytes.
const MAX_SHOWN: usize = 80;

/// The decoder factory weft hands to arrow-json's `ReaderBuilder`.
///
/// Fields built by [`FieldType::field`] get weft's strict decoders; JSON
/// fields (`arrow.json`) get the JSON-text decoder; any other field is left to
/// arrow-json's own decoder.
#[derive(Debug, Default)]
pub(crate) struct WeftDecoderFactory;

impl DecoderFactory for WeftDecoderFactory {
    fn make_default_decoder(
        &self,
        _ctx: &DecoderContext,
        field: &FieldRef,
        _is_nullable: bool,
    ) -> Result<Option<Box<dyn ArrayDecoder>>, ArrowError> {
        let ty = if is_json_field(field) {
            Some(FieldType::Json)
        } else {
            field_type_of(field)
        };
        match ty {
            Some(ty) if field.data_type() == &ty.data_type() => Ok(Some(Box::new(TypedDecoder {
                ty,
                scratch: String::new(),
            }))),
            _ => Ok(None),
        }
    }
}

/// How a logical type is described in reject reasons.
fn expected(ty: FieldType) -> &'static str {
    match ty {
        FieldType::String => "string",
        FieldType::Integer => "integer",
        FieldType::Number => "number",
        FieldType::Boolean => "boolean",
        FieldType::Money => "money (integer minor units)",
        FieldType::UnixSeconds => "unix_seconds (integer seconds, years 1 to 9999)",
        FieldType::Timestamp => "timestamp (RFC 3339 string)",
        FieldType::Date => "date (YYYY-MM-DD string)",
        FieldType::Json => "json",
    }
}

/// The error for a value at `idx` that does not fit `ty`, showing the value.
fn mismatch(tape: &Tape<'_>, idx: u32, ty: FieldType) -> ArrowError {
    let mut shown = String::new();
    write_json(tape, idx, &mut shown);
    if shown.len() > MAX_SHOWN {
        let mut cut = MAX_SHOWN;
        while !shown.is_char_boundary(cut) {
            cut -= 1;
        }
        shown.truncate(cut);
        shown.push('…');
    }
    ArrowError::JsonError(format!("expected {}, got {shown}", expected(ty)))
}

/// The 64-bit integer at `idx`, if the value there is a JSON integer that fits.
fn int_at(tape: &Tape<'_>, idx: u32) -> Option<i64> {
    match tape.get(idx) {
        TapeElement::Number(s) => tape.get_string(s).parse().ok(),
        TapeElement::I32(v) => Some(i64::from(v)),
        TapeElement::I64(high) => match tape.get(idx + 1) {
            TapeElement::I32(low) => Some((i64::from(high) << 32) | i64::from(low as u32)),
            _ => None,
        },
        _ => None,
    }
}

/// Unix seconds of 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z.
const UNIX_SECONDS: std::ops::RangeInclusive<i64> = -62_135_596_800..=253_402_300_799;

/// The Unix seconds at `idx`, if the value there is an integer within years
/// 1 to 9999 (a value in milliseconds or finer lands tens of thousands of
/// years ahead: it is rejected, not loaded as a far-future date).
fn unix_seconds_at(tape: &Tape<'_>, idx: u32) -> Option<i64> {
    int_at(tape, idx).filter(|s| UNIX_SECONDS.contains(s))
}

/// The float at `idx`, if the value there is any JSON number.
fn float_at(tape: &Tape<'_>, idx: u32) -> Option<f64> {
    match tape.get(idx) {
        TapeElement::Number(s) => tape.get_string(s).parse().ok(),
        TapeElement::F32(v) => Some(f64::from(f32::from_bits(v))),
        TapeElement::F64(high) => match tape.get(idx + 1) {
            TapeElement::F32(low) => Some(f64::from_bits((u64::from(high) << 32) | u64::from(low))),
            _ => None,
        },
        _ => int_at(tape, idx).map(|v| v as f64),
    }
}

/// The string at `idx`, if the value there is a JSON string.
fn str_at<'a>(tape: &Tape<'a>, idx: u32) -> Option<&'a str> {
    match tape.get(idx) {
        TapeElement::String(s) => Some(tape.get_string(s)),
        _ => None,
    }
}

/// Microseconds since the epoch of an RFC 3339 timestamp.
fn rfc3339_micros(s: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.timestamp_micros())
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date.
fn date_days(s: &str) -> Option<i32> {
    let date = NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
    let days = date.signed_duration_since(NaiveDate::default()).num_days();
    i32::try_from(days).ok()
}

/// Decodes one column of a logical type, rejecting values of other kinds.
///
/// A `json` column takes any JSON value and holds its compact JSON text.
struct TypedDecoder {
    ty: FieldType,
    /// Reused buffer for JSON text.
    scratch: String,
}

/// Appends each row's value to `$builder`: null for JSON null, `$convert` otherwise.
macro_rules! decode_rows {
    ($self:ident, $tape:ident, $pos:ident, $builder:expr, $convert:expr) => {{
        let mut builder = $builder;
        for &p in $pos {
            if matches!($tape.get(p), TapeElement::Null) {
                builder.append_null();
                continue;
            }
            let convert = $convert;
            match convert($tape, p) {
                Some(v) => builder.append_value(v),
                None => return Err(mismatch($tape, p, $self.ty)),
            }
        }
        Arc::new(builder.finish()) as ArrayRef
    }};
}

impl ArrayDecoder for TypedDecoder {
    fn decode(&mut self, tape: &Tape<'_>, pos: &[u32]) -> Result<ArrayRef, ArrowError> {
        let n = pos.len();
        Ok(match self.ty {
            FieldType::Json => self.json_text(tape, pos),
            FieldType::String => decode_rows!(
                self,
                tape,
                pos,
                StringBuilder::with_capacity(n, n * 16),
                str_at
            ),
            FieldType::Integer | FieldType::Money => {
                decode_rows!(self, tape, pos, Int64Builder::with_capacity(n), int_at)
            }
            FieldType::Number => {
                decode_rows!(self, tape, pos, Float64Builder::with_capacity(n), float_at)
            }
            FieldType::Boolean => decode_rows!(
                self,
                tape,
                pos,
                BooleanBuilder::with_capacity(n),
                |t: &Tape<'_>, p| match t.get(p) {
                    TapeElement::True => Some(true),
                    TapeElement::False => Some(false),
                    _ => None,
                }
            ),
            FieldType::UnixSeconds => decode_rows!(
                self,
                tape,
                pos,
                TimestampSecondBuilder::with_capacity(n).with_data_type(self.ty.data_type()),
                unix_seconds_at
            ),
            FieldType::Timestamp => decode_rows!(
                self,
                tape,
                pos,
                TimestampMicrosecondBuilder::with_capacity(n).with_data_type(self.ty.data_type()),
                |t: &Tape<'_>, p| str_at(t, p).and_then(rfc3339_micros)
            ),
            FieldType::Date => decode_rows!(
                self,
                tape,
                pos,
                Date32Builder::with_capacity(n),
                |t: &Tape<'_>, p| str_at(t, p).and_then(date_days)
            ),
        })
    }
}

impl TypedDecoder {
    /// Each value's compact JSON text; JSON null stays null.
    fn json_text(&mut self, tape: &Tape<'_>, pos: &[u32]) -> ArrayRef {
        let mut builder = StringBuilder::with_capacity(pos.len(), pos.len() * 32);
        for &p in pos {
            if matches!(tape.get(p), TapeElement::Null) {
                builder.append_null();
            } else {
                self.scratch.clear();
                write_json(tape, p, &mut self.scratch);
                builder.append_value(&self.scratch);
            }
        }
        Arc::new(builder.finish())
    }
}

/// Writes the value at `idx` as compact JSON text and returns the index after it.
///
/// Strings are re-escaped (the tape holds them unescaped); numbers keep the
/// text they had in the input. The tape is walked in order with an explicit
/// stack of open containers, so any nesting depth the tape holds is written
/// without recursion (a deeply nested value cannot overflow the thread's stack).
pub(crate) fn write_json(tape: &Tape<'_>, idx: u32, out: &mut String) -> u32 {
    /// An open container: whether it is an object, and the keys and values written so far.
    struct Open {
        object: bool,
        items: u32,
    }
    let mut open: Vec<Open> = Vec::new();
    let mut cur = idx;
    loop {
        let element = tape.get(cur);
        let closes = matches!(element, TapeElement::EndObject(_) | TapeElement::EndList(_));
        if let Some(parent) = open.last_mut()
            && !closes
        {
            // Objects alternate key, value: `:` before a value, `,` before a later key.
            match (parent.object, parent.items) {
                (true, n) if n % 2 == 1 => out.push(':'),
                (_, 0) => {}
                _ => out.push(','),
            }
            parent.items += 1;
        }
        cur = match element {
            TapeElement::StartObject(_) => {
                out.push('{');
                open.push(Open {
                    object: true,
                    items: 0,
                });
                cur + 1
            }
            TapeElement::StartList(_) => {
                out.push('[');
                open.push(Open {
                    object: false,
                    items: 0,
                });
                cur + 1
            }
            TapeElement::EndObject(_) | TapeElement::EndList(_) => {
                if let Some(closed) = open.pop() {
                    out.push(if closed.object { '}' } else { ']' });
                }
                cur + 1
            }
            TapeElement::String(s) => {
                write_escaped(tape.get_string(s), out);
                cur + 1
            }
            TapeElement::Number(s) => {
                out.push_str(tape.get_string(s));
                cur + 1
            }
            TapeElement::True => {
                out.push_str("true");
                cur + 1
            }
            TapeElement::False => {
                out.push_str("false");
                cur + 1
            }
            // The binary number forms only appear on tapes built by serializing Rust values.
            TapeElement::I64(_) | TapeElement::I32(_) => {
                out.push_str(&int_at(tape, cur).unwrap_or_default().to_string());
                tape.next(cur, "number").unwrap_or(cur + 1)
            }
            TapeElement::F64(_) | TapeElement::F32(_) => {
                match float_at(tape, cur) {
                    Some(v) if v.is_finite() => out.push_str(&v.to_string()),
                    _ => out.push_str("null"),
                }
                tape.next(cur, "number").unwrap_or(cur + 1)
            }
            // Null (and any element kind a later arrow-json adds).
            _ => {
                out.push_str("null");
                cur + 1
            }
        };
        if open.is_empty() {
            return cur;
        }
    }
}

/// Writes `s` as a JSON string literal, escaping quotes, backslashes and control characters.
fn write_escaped(s: &str, out: &mut String) {
    out.push('"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &str = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0x00..=0x1f => "",
            _ => continue,
        };
        // Every byte escaped is ASCII, so `i` is a char boundary.
        out.push_str(&s[start..i]);
        if escape.is_empty() {
            out.push_str("\\u00");
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// Hex digits for `\u00XX` escapes.
const HEX: &[u8; 16] = b"0123456789abcdef";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_match_serde_json() {
        for s in [
            "plain",
            "q\"uote",
            "back\\slash",
            "nl\ncr\rtab\t",
            "\u{1}\u{1f}\u{8}\u{c}",
            "ünï €",
            "",
        ] {
            let mut out = String::new();
            write_escaped(s, &mut out);
            assert_eq!(
                out,
                serde_json::to_string(s).unwrap_or_default(),
                "for {s:?}"
            );
        }
    }

    #[test]
    fn dates_count_days_from_epoch() {
        assert_eq!(date_days("1970-01-01"), Some(0));
        assert_eq!(date_days("1970-01-02"), Some(1));
        assert_eq!(date_days("1969-12-31"), Some(-1));
        assert_eq!(date_days("2024-02-30"), None);
    }
}
