//! Logical field types, schema contracts and rejects.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use arrow_schema::extension::EXTENSION_TYPE_NAME_KEY;
use arrow_schema::{DataType, Field, TimeUnit};
use serde::{Deserialize, Serialize};

use crate::ArrowConvError;

/// Canonical Arrow extension name for JSON text columns.
pub const JSON_EXTENSION: &str = "arrow.json";

/// Field metadata key holding the field's documentation.
pub const DOC_KEY: &str = "doc";

/// Field metadata key holding the field's logical [`FieldType`] name.
const TYPE_KEY: &str = "weft.type";

/// The logical types a stream declares, each with one Arrow representation.
///
/// Ids are strings, money is integer minor units, timestamps are UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    /// UTF-8 text (`Utf8`).
    String,
    /// 64-bit signed integer (`Int64`).
    Integer,
    /// 64-bit float (`Float64`).
    Number,
    /// Boolean.
    Boolean,
    /// Money in integer minor units (`Int64`), e.g. cents.
    Money,
    /// A UTC timestamp given by the API as Unix seconds (`Timestamp(Second, UTC)`).
    UnixSeconds,
    /// A UTC timestamp given as an RFC 3339 string (`Timestamp(Microsecond, UTC)`).
    Timestamp,
    /// A calendar date given as `YYYY-MM-DD` (`Date32`).
    Date,
    /// Any JSON value kept as text (`Utf8` with the `arrow.json` extension).
    Json,
}

impl FieldType {
    /// Every logical type, in declaration order.
    pub const ALL: [FieldType; 9] = [
        FieldType::String,
        FieldType::Integer,
        FieldType::Number,
        FieldType::Boolean,
        FieldType::Money,
        FieldType::UnixSeconds,
        FieldType::Timestamp,
        FieldType::Date,
        FieldType::Json,
    ];

    /// The type's name as written in stream specs.
    pub fn name(self) -> &'static str {
        match self {
            FieldType::String => "string",
            FieldType::Integer => "integer",
            FieldType::Number => "number",
            FieldType::Boolean => "boolean",
            FieldType::Money => "money",
            FieldType::UnixSeconds => "unix_seconds",
            FieldType::Timestamp => "timestamp",
            FieldType::Date => "date",
            FieldType::Json => "json",
        }
    }

    /// The Arrow data type this logical type is stored as.
    pub fn data_type(self) -> DataType {
        match self {
            FieldType::String | FieldType::Json => DataType::Utf8,
            FieldType::Integer | FieldType::Money => DataType::Int64,
            FieldType::Number => DataType::Float64,
            FieldType::Boolean => DataType::Boolean,
            FieldType::UnixSeconds => DataType::Timestamp(TimeUnit::Second, Some("UTC".into())),
            FieldType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            FieldType::Date => DataType::Date32,
        }
    }

    /// An Arrow field of this type, carrying the doc and logical type as metadata.
    pub fn field(self, name: &str, nullable: bool, doc: &str) -> Field {
        let mut metadata = HashMap::from([(TYPE_KEY.to_string(), self.name().to_string())]);
        if !doc.is_empty() {
            metadata.insert(DOC_KEY.to_string(), doc.to_string());
        }
        if self == FieldType::Json {
            metadata.insert(
                EXTENSION_TYPE_NAME_KEY.to_string(),
                JSON_EXTENSION.to_string(),
            );
        }
        Field::new(name, self.data_type(), nullable).with_metadata(metadata)
    }
}

impl fmt::Display for FieldType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for FieldType {
    type Err = ArrowConvError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FieldType::ALL
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| ArrowConvError::InvalidSchema(format!("unknown field type `{s}`")))
    }
}

/// The logical type recorded on a field, if it was built by [`FieldType::field`].
pub fn field_type_of(field: &Field) -> Option<FieldType> {
    field.metadata().get(TYPE_KEY).and_then(|t| t.parse().ok())
}

/// Whether a field holds JSON text (`arrow.json` extension).
pub fn is_json_field(field: &Field) -> bool {
    field
        .metadata()
        .get(EXTENSION_TYPE_NAME_KEY)
        .is_some_and(|n| n == JSON_EXTENSION)
}

/// The documentation recorded on a field, or `""`.
pub fn field_doc(field: &Field) -> &str {
    field.metadata().get(DOC_KEY).map_or("", String::as_str)
}

/// What happens when records do not match the declared schema.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SchemaContract {
    /// Unknown fields become new nullable columns; bad values are quarantined.
    #[default]
    Evolve,
    /// Any unknown field or bad value fails the stream.
    Freeze,
    /// Records with unknown fields or bad values are quarantined whole.
    DiscardRow,
    /// Unknown fields are dropped and bad values become null, each noted as a reject.
    DiscardValue,
}

impl fmt::Display for SchemaContract {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SchemaContract::Evolve => "evolve",
            SchemaContract::Freeze => "freeze",
            SchemaContract::DiscardRow => "discard_row",
            SchemaContract::DiscardValue => "discard_value",
        })
    }
}

/// A record (or a value of one) that did not make it into a batch, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reject {
    /// The raw record as received (lossy UTF-8 if it was not valid UTF-8).
    pub record: String,
    /// Why it was quarantined, naming the field where one is at fault.
    pub reason: String,
    /// The field at fault, when known.
    pub field: Option<String>,
    /// Whether the row itself was still loaded (true for `discard_value`).
    pub row_loaded: bool,
}
