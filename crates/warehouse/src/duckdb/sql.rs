//! SQL text for DuckDB: Arrow -> DuckDB types (quoting and the merge's shared
//! text are in `crate::sql`).

use arrow_schema::{DataType, Field, TimeUnit};
use weft_arrow::is_json_field;

use crate::WarehouseError;

/// The DuckDB column type for an Arrow field.
///
/// JSON-extension text columns become `JSON` when `json_type` is available.
pub(crate) fn column_type(
    field: &Field,
    json_type: bool,
    table: &str,
) -> Result<String, WarehouseError> {
    let t = match field.data_type() {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            if json_type && is_json_field(field) {
                "JSON"
            } else {
                "VARCHAR"
            }
        }
        DataType::Boolean => "BOOLEAN",
        DataType::Int8 => "TINYINT",
        DataType::Int16 => "SMALLINT",
        DataType::Int32 => "INTEGER",
        DataType::Int64 => "BIGINT",
        DataType::UInt8 => "UTINYINT",
        DataType::UInt16 => "USMALLINT",
        DataType::UInt32 => "UINTEGER",
        DataType::UInt64 => "UBIGINT",
        DataType::Float32 => "FLOAT",
        DataType::Float64 => "DOUBLE",
        DataType::Timestamp(_, Some(_)) => "TIMESTAMPTZ",
        DataType::Timestamp(TimeUnit::Second, None) => "TIMESTAMP_S",
        DataType::Timestamp(TimeUnit::Millisecond, None) => "TIMESTAMP_MS",
        DataType::Timestamp(TimeUnit::Microsecond, None) => "TIMESTAMP",
        DataType::Timestamp(TimeUnit::Nanosecond, None) => "TIMESTAMP_NS",
        DataType::Date32 | DataType::Date64 => "DATE",
        DataType::Binary | DataType::LargeBinary => "BLOB",
        DataType::Decimal128(p, s) if *p <= 38 => return Ok(format!("DECIMAL({p},{s})")),
        other => {
            return Err(WarehouseError::UnsupportedType {
                table: table.to_string(),
                column: field.name().clone(),
                data_type: other.clone(),
            });
        }
    };
    Ok(t.to_string())
}
