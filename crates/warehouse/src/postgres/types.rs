//! Arrow -> PostgreSQL: column types, and batches made ready for pgpq.
//!
//! [`plan_columns`] maps each staged field to a PostgreSQL type (the table in
//! the module doc of [`super`]) and to what must happen to its arrays before
//! pgpq encodes them: a cast (nanoseconds to microseconds, dictionaries to
//! plain text, ...) or, for decimals, weft's own `NUMERIC` encoding (pgpq
//! 0.11 drops leading zero digit groups of a fraction: 12.00005 would arrive
//! as 12.5). PostgreSQL's binary `COPY` reads each field with the *column's*
//! receive function, so a field pre-encoded as bytes goes through pgpq's
//! `bytea` encoder (a length and the bytes) and lands in a `NUMERIC` column
//! as the number those bytes spell.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::compute::cast;
use arrow_array::cast::AsArray;
use arrow_array::types::{Decimal32Type, Decimal64Type, Decimal128Type, Decimal256Type};
use arrow_array::{Array, ArrayRef, BinaryArray};
use arrow_schema::{ArrowError, DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use pgpq::encoders::{EncoderBuilder, LargeStringEncoderBuilder, StringEncoderBuilder};
use pgpq::pg_schema::PostgresType;
use weft_arrow::is_json_field;

use super::limits::Check;

use crate::WarehouseError;

/// What happens to a column's arrays before pgpq encodes them.
#[derive(Debug, Clone, PartialEq)]
enum Prep {
    /// Encoded as they are.
    None,
    /// Cast to this type first.
    Cast(DataType),
    /// Decimals, encoded by weft as `NUMERIC` binary values.
    Numeric,
}

/// One staged column: its PostgreSQL type and how its values are encoded.
#[derive(Debug, Clone)]
pub(crate) struct Column {
    /// The Arrow field as staged.
    pub(crate) field: Field,
    /// The PostgreSQL column type, e.g. `NUMERIC(12,2)` or `TEXT[]`.
    pub(crate) pg_type: String,
    /// What its values are scanned for before they are sent.
    pub(crate) check: Check,
    prep: Prep,
}

impl Column {
    /// The column's name.
    pub(crate) fn name(&self) -> &str {
        self.field.name()
    }

    /// The Arrow type its arrays have after [`Column::cast`] (before encoding).
    fn cast_type(&self) -> &DataType {
        match &self.prep {
            Prep::Cast(to) => to,
            Prep::None | Prep::Numeric => self.field.data_type(),
        }
    }

    /// Applies the column's cast (so NUL scans and rejects see plain values).
    pub(crate) fn cast(&self, array: &ArrayRef) -> Result<ArrayRef, ArrowError> {
        match &self.prep {
            Prep::Cast(to) if array.data_type() != to => cast(array, to),
            _ => Ok(Arc::clone(array)),
        }
    }

    /// The array pgpq encodes (decimals become `NUMERIC` binary values).
    pub(crate) fn encode_input(&self, array: &ArrayRef) -> Result<ArrayRef, ArrowError> {
        match self.prep {
            Prep::Numeric => Ok(Arc::new(numeric_payloads(array.as_ref())?)),
            _ => Ok(Arc::clone(array)),
        }
    }

    /// The field pgpq sees.
    fn encoded_field(&self) -> Field {
        let data_type = match self.prep {
            Prep::Numeric => DataType::Binary,
            _ => self.cast_type().clone(),
        };
        Field::new(self.name(), data_type, true)
    }

    /// The pgpq encoder of this column.
    fn encoder(&self) -> Result<EncoderBuilder, pgpq::error::ErrorKind> {
        let field = Arc::new(self.encoded_field());
        if self.check == Check::Json {
            return match field.data_type() {
                DataType::LargeUtf8 => {
                    LargeStringEncoderBuilder::new_with_output(field, PostgresType::Jsonb)
                        .map(EncoderBuilder::LargeString)
                }
                _ => StringEncoderBuilder::new_with_output(field, PostgresType::Jsonb)
                    .map(EncoderBuilder::String),
            };
        }
        EncoderBuilder::try_new(field)
    }
}

/// The element type of a PostgreSQL array column for an Arrow list item,
/// and whether it is text. Only items whose pgpq encoding names the same
/// element type as the column (binary arrays carry an element OID).
fn list_item(data_type: &DataType) -> Option<(&'static str, bool)> {
    use DataType as D;
    Some(match data_type {
        D::Boolean => ("BOOLEAN", false),
        D::Int8 | D::Int16 | D::UInt8 => ("SMALLINT", false),
        D::Int32 | D::UInt16 => ("INTEGER", false),
        D::Int64 | D::UInt32 => ("BIGINT", false),
        D::Float32 => ("REAL", false),
        D::Float64 => ("DOUBLE PRECISION", false),
        D::Utf8 | D::LargeUtf8 | D::Utf8View => ("TEXT", true),
        D::Binary | D::LargeBinary => ("BYTEA", false),
        D::Date32 => ("DATE", false),
        D::Timestamp(TimeUnit::Second | TimeUnit::Millisecond | TimeUnit::Microsecond, None) => {
            ("TIMESTAMP", false)
        }
        _ => return None,
    })
}

/// The PostgreSQL type, cast and value scan of a field; `None` when unsupported.
fn map_field(field: &Field) -> Option<(String, Prep, Check)> {
    use DataType as D;
    let plain = |t: &str| Some((t.to_string(), Prep::None, Check::None));
    let checked = |t: &str, check| Some((t.to_string(), Prep::None, check));
    let text = |prep: Prep| {
        if is_json_field(field) {
            Some(("JSONB".to_string(), prep, Check::Json))
        } else {
            Some(("TEXT".to_string(), prep, Check::Text))
        }
    };
    match field.data_type() {
        D::Boolean => plain("BOOLEAN"),
        D::Int8 | D::Int16 | D::UInt8 => plain("SMALLINT"),
        D::Int32 | D::UInt16 => plain("INTEGER"),
        D::Int64 | D::UInt32 => plain("BIGINT"),
        D::UInt64 => plain("NUMERIC(20,0)"),
        D::Float16 | D::Float32 => plain("REAL"),
        D::Float64 => plain("DOUBLE PRECISION"),
        D::Decimal32(p, s) | D::Decimal64(p, s) | D::Decimal128(p, s) | D::Decimal256(p, s) => {
            Some((format!("NUMERIC({p},{s})"), Prep::Numeric, Check::None))
        }
        D::Utf8 | D::LargeUtf8 | D::Utf8View => text(Prep::None),
        D::Dictionary(_, value) => match value.as_ref() {
            D::Utf8 | D::Utf8View => text(Prep::Cast(D::Utf8)),
            D::LargeUtf8 => text(Prep::Cast(D::LargeUtf8)),
            _ => None,
        },
        D::Binary | D::LargeBinary => checked("BYTEA", Check::Bytes),
        D::FixedSizeBinary(_) => Some(("BYTEA".to_string(), Prep::Cast(D::Binary), Check::Bytes)),
        D::Date32 => checked("DATE", Check::Date),
        D::Date64 => Some(("DATE".to_string(), Prep::Cast(D::Date32), Check::Date)),
        D::Time32(_) | D::Time64(TimeUnit::Microsecond) => checked("TIME", Check::Time),
        D::Time64(_) => Some((
            "TIME".to_string(),
            Prep::Cast(D::Time64(TimeUnit::Microsecond)),
            Check::Time,
        )),
        D::Timestamp(unit, tz) => {
            let pg = if tz.is_some() {
                "TIMESTAMPTZ"
            } else {
                "TIMESTAMP"
            };
            let prep = match unit {
                TimeUnit::Nanosecond => Prep::Cast(D::Timestamp(TimeUnit::Microsecond, tz.clone())),
                _ => Prep::None,
            };
            Some((pg.to_string(), prep, Check::Timestamp))
        }
        D::Duration(TimeUnit::Nanosecond) => Some((
            "INTERVAL".to_string(),
            Prep::Cast(D::Duration(TimeUnit::Microsecond)),
            Check::None,
        )),
        D::Duration(_) => plain("INTERVAL"),
        D::List(item) | D::LargeList(item) => {
            let (elem, is_text) = list_item(item.data_type())?;
            let check = if is_text {
                Check::TextList
            } else {
                Check::None
            };
            Some((format!("{elem}[]"), Prep::None, check))
        }
        _ => None,
    }
}

/// The PostgreSQL type of one field, or [`WarehouseError::UnsupportedType`].
#[cfg(test)]
pub(crate) fn column_type(field: &Field, table: &str) -> Result<String, WarehouseError> {
    plan_column(field, table).map(|c| c.pg_type)
}

fn plan_column(field: &Field, table: &str) -> Result<Column, WarehouseError> {
    let (pg_type, prep, check) =
        map_field(field).ok_or_else(|| WarehouseError::UnsupportedType {
            table: table.to_string(),
            column: field.name().clone(),
            data_type: field.data_type().clone(),
        })?;
    Ok(Column {
        field: field.clone(),
        pg_type,
        check,
        prep,
    })
}

/// The columns of a load's schema, each mapped (errors name table and column).
pub(crate) fn plan_columns(fields: &Fields, table: &str) -> Result<Vec<Column>, WarehouseError> {
    fields.iter().map(|f| plan_column(f, table)).collect()
}

/// The pgpq encoders of `columns` plus a trailing Int64 `seq` column, and
/// the schema of the batches they encode.
pub(crate) fn encoders(
    columns: &[Column],
    seq: &str,
    table: &str,
) -> Result<(SchemaRef, HashMap<String, EncoderBuilder>), WarehouseError> {
    let encode_err = |source| WarehouseError::Encode {
        table: table.to_string(),
        source,
    };
    let mut fields: Vec<Field> = columns.iter().map(Column::encoded_field).collect();
    let mut builders = HashMap::with_capacity(columns.len() + 1);
    for c in columns {
        builders.insert(c.name().to_string(), c.encoder().map_err(encode_err)?);
    }
    let seq_field = Field::new(seq, DataType::Int64, false);
    builders.insert(
        seq.to_string(),
        EncoderBuilder::try_new(Arc::new(seq_field.clone())).map_err(encode_err)?,
    );
    fields.push(seq_field);
    Ok((Arc::new(Schema::new(fields)), builders))
}

/// PostgreSQL's binary `NUMERIC` value of a decimal: `|value|` as decimal
/// digits, its sign and its scale (digits after the point; negative scales
/// multiply by a power of ten).
pub(crate) fn numeric_binary(negative: bool, digits: &str, scale: i8) -> Vec<u8> {
    let digits = digits.trim_start_matches('0');
    let (int_part, frac_part): (String, String) = if scale >= 0 {
        let s = scale as usize;
        let padded = format!("{digits:0>width$}", width = s + 1);
        let (i, f) = padded.split_at(padded.len() - s);
        (i.to_string(), f.to_string())
    } else {
        let zeros = "0".repeat(usize::from(scale.unsigned_abs()));
        (format!("{digits}{zeros}"), String::new())
    };
    let int_part = int_part.trim_start_matches('0');
    let group = |chunk: &[u8]| -> i16 {
        chunk
            .iter()
            .fold(0i16, |acc, d| acc * 10 + i16::from(d - b'0'))
    };
    let mut groups: Vec<i16> = Vec::new();
    let lead = (4 - int_part.len() % 4) % 4;
    let int_padded = format!("{}{int_part}", "0".repeat(lead));
    groups.extend(int_padded.as_bytes().chunks(4).map(group));
    let mut weight = groups.len() as i16 - 1;
    let trail = (4 - frac_part.len() % 4) % 4;
    let frac_padded = format!("{frac_part}{}", "0".repeat(trail));
    groups.extend(frac_padded.as_bytes().chunks(4).map(group));
    let first = groups.iter().position(|g| *g != 0);
    let (sign, weight, groups) = match first {
        None => (0u16, 0i16, Vec::new()),
        Some(first) => {
            weight -= first as i16;
            let last = groups.iter().rposition(|g| *g != 0).unwrap_or(first);
            let sign = if negative { 0x4000 } else { 0 };
            (sign, weight, groups[first..=last].to_vec())
        }
    };
    let dscale = i16::from(scale.max(0));
    let mut out = Vec::with_capacity(8 + 2 * groups.len());
    out.extend_from_slice(&(groups.len() as i16).to_be_bytes());
    out.extend_from_slice(&weight.to_be_bytes());
    out.extend_from_slice(&sign.to_be_bytes());
    out.extend_from_slice(&dscale.to_be_bytes());
    for g in groups {
        out.extend_from_slice(&g.to_be_bytes());
    }
    out
}

/// A decimal array as `NUMERIC` binary values (NULLs stay NULL).
fn numeric_payloads(array: &dyn Array) -> Result<BinaryArray, ArrowError> {
    fn collect<T: Copy>(
        values: impl Iterator<Item = Option<T>>,
        scale: i8,
        abs: impl Fn(T) -> (bool, String),
    ) -> BinaryArray {
        values
            .map(|v| {
                v.map(|v| {
                    let (negative, digits) = abs(v);
                    numeric_binary(negative, &digits, scale)
                })
            })
            .collect()
    }
    let int = |v: i128| (v < 0, v.unsigned_abs().to_string());
    Ok(match array.data_type() {
        DataType::Decimal32(_, s) => collect(
            array.as_primitive::<Decimal32Type>().iter(),
            *s,
            |v: i32| int(i128::from(v)),
        ),
        DataType::Decimal64(_, s) => collect(
            array.as_primitive::<Decimal64Type>().iter(),
            *s,
            |v: i64| int(i128::from(v)),
        ),
        DataType::Decimal128(_, s) => {
            collect(array.as_primitive::<Decimal128Type>().iter(), *s, int)
        }
        DataType::Decimal256(_, s) => collect(
            array.as_primitive::<Decimal256Type>().iter(),
            *s,
            |v: arrow::datatypes::i256| {
                let text = v.to_string();
                match text.strip_prefix('-') {
                    Some(abs) => (true, abs.to_string()),
                    None => (false, text),
                }
            },
        ),
        other => {
            return Err(ArrowError::CastError(format!(
                "expected a decimal array, got {other}"
            )));
        }
    })
}
