//! What PostgreSQL cannot store, found before a value is sent.
//!
//! PostgreSQL refuses a whole `COPY` for one bad value, so each staged
//! column is scanned first and the rows it cannot hold are quarantined with
//! a reason naming the column: text with a NUL byte (JSON with the escape
//! `\u0000`), a text or bytea value over the 1 GB field limit, and dates,
//! timestamps and times outside PostgreSQL's ranges (Arrow's are wider).
//! Scans are cheap in the common case: a value buffer with no NUL byte, no
//! backslash and under the limit is passed without looking at each value.

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Time32MillisecondType, Time32SecondType, Time64MicrosecondType,
    TimestampMicrosecondType, TimestampMillisecondType, TimestampSecondType,
};
use arrow_array::{Array, GenericListArray, OffsetSizeTrait, PrimitiveArray};
use arrow_schema::{DataType, TimeUnit};

/// The largest value PostgreSQL stores in one field (`MaxAllocSize`, 1 GB - 1).
pub(crate) const MAX_FIELD_BYTES: usize = 0x3fff_ffff;

/// Microseconds between 1970-01-01 (Arrow's epoch) and 2000-01-01 (PostgreSQL's).
const PG_EPOCH_US: i128 = 946_684_800_000_000;
/// PostgreSQL's first timestamp (4713-11-24 BC), in microseconds since its epoch.
const PG_MIN_TIMESTAMP: i128 = -211_813_488_000_000_000;
/// PostgreSQL's end of timestamps (294277-01-01 AD), in microseconds since its epoch.
const PG_END_TIMESTAMP: i128 = 9_223_371_331_200_000_000;
/// PostgreSQL's first date (Julian day 0, 4714-11-24 BC), in days since 1970.
const PG_MIN_DATE: i64 = -2_440_588;
/// PostgreSQL's end of dates (5874898-01-01 AD), in days since 1970.
const PG_END_DATE: i64 = 2_145_042_906;
/// Microseconds in a day: `TIME` holds 00:00:00 to 24:00:00.
const DAY_US: i128 = 86_400_000_000;

/// What a column's values are scanned for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    /// Nothing PostgreSQL could refuse.
    None,
    /// `TEXT`: a NUL byte, or over the field limit.
    Text,
    /// `JSONB`: a NUL byte or the escape `\u0000`, or over the field limit.
    Json,
    /// `TEXT[]`: an element with a NUL byte.
    TextList,
    /// `BYTEA`: over the field limit.
    Bytes,
    /// `DATE`: outside 4713 BC to 5874897 AD.
    Date,
    /// `TIMESTAMP`/`TIMESTAMPTZ`: outside 4713 BC to 294276 AD.
    Timestamp,
    /// `TIME`: outside 00:00:00 to 24:00:00.
    Time,
}

/// Why PostgreSQL cannot store a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unstorable {
    /// Text with a NUL byte.
    Nul,
    /// JSON with a NUL byte or `\u0000`.
    JsonNul,
    /// A text array element with a NUL byte.
    ElementNul,
    /// A value of this many bytes, over [`MAX_FIELD_BYTES`].
    TooLarge(usize),
    /// A date outside PostgreSQL's range.
    Date,
    /// A timestamp outside PostgreSQL's range.
    Timestamp,
    /// A time of day outside 00:00:00 to 24:00:00.
    Time,
}

impl Unstorable {
    /// The reject reason, naming the column.
    pub(crate) fn reason(self, column: &str) -> String {
        match self {
            Unstorable::Nul => {
                format!(
                    "column \"{column}\" contains a NUL byte, which PostgreSQL text cannot store"
                )
            }
            Unstorable::JsonNul => format!(
                "column \"{column}\" holds JSON with a NUL character (\\u0000), which PostgreSQL jsonb cannot store"
            ),
            Unstorable::ElementNul => format!(
                "column \"{column}\" has an element with a NUL byte, which PostgreSQL text cannot store"
            ),
            Unstorable::TooLarge(bytes) => format!(
                "column \"{column}\" holds a value of {bytes} bytes; PostgreSQL stores at most {MAX_FIELD_BYTES} bytes in one field"
            ),
            Unstorable::Date => format!(
                "column \"{column}\" holds a date outside PostgreSQL's range (4713 BC to 5874897 AD)"
            ),
            Unstorable::Timestamp => format!(
                "column \"{column}\" holds a timestamp outside PostgreSQL's range (4713 BC to 294276 AD)"
            ),
            Unstorable::Time => {
                format!("column \"{column}\" holds a time of day outside 00:00:00 to 24:00:00")
            }
        }
    }
}

/// Per row, why `array`'s value cannot be stored, if it cannot; `None` when
/// every value can (the common case).
pub(crate) fn unstorable(array: &dyn Array, check: Check) -> Option<Vec<Option<Unstorable>>> {
    let flags = match check {
        Check::None => return None,
        Check::Text => string_flags(array, false)?,
        Check::Json => string_flags(array, true)?,
        Check::TextList => match array.data_type() {
            DataType::List(_) => list_flags(array.as_list::<i32>())?,
            DataType::LargeList(_) => list_flags(array.as_list::<i64>())?,
            _ => return None,
        },
        Check::Bytes => binary_flags(array)?,
        Check::Date => temporal_flags(array, Unstorable::Date, |days| {
            (i128::from(PG_MIN_DATE)..i128::from(PG_END_DATE)).contains(&days)
        })?,
        Check::Timestamp => temporal_flags(array, Unstorable::Timestamp, |us| {
            (PG_MIN_TIMESTAMP..PG_END_TIMESTAMP).contains(&(us - PG_EPOCH_US))
        })?,
        Check::Time => temporal_flags(array, Unstorable::Time, |us| (0..=DAY_US).contains(&us))?,
    };
    flags.iter().any(Option::is_some).then_some(flags)
}

/// Per value of a date or time array, `bad` when `valid` refuses it — in
/// days for dates, in microseconds for timestamps and times (nanoseconds
/// are cast to microseconds before the scan); `None` for other types.
fn temporal_flags(
    array: &dyn Array,
    bad: Unstorable,
    valid: impl Fn(i128) -> bool,
) -> Option<Vec<Option<Unstorable>>> {
    use DataType as D;
    use TimeUnit as U;
    Some(match array.data_type() {
        D::Date32 => range_flags(array.as_primitive::<Date32Type>(), 1, bad, valid),
        D::Timestamp(U::Second, _) => range_flags(
            array.as_primitive::<TimestampSecondType>(),
            1_000_000,
            bad,
            valid,
        ),
        D::Timestamp(U::Millisecond, _) => range_flags(
            array.as_primitive::<TimestampMillisecondType>(),
            1_000,
            bad,
            valid,
        ),
        D::Timestamp(U::Microsecond, _) => range_flags(
            array.as_primitive::<TimestampMicrosecondType>(),
            1,
            bad,
            valid,
        ),
        D::Time32(U::Second) => range_flags(
            array.as_primitive::<Time32SecondType>(),
            1_000_000,
            bad,
            valid,
        ),
        D::Time32(U::Millisecond) => range_flags(
            array.as_primitive::<Time32MillisecondType>(),
            1_000,
            bad,
            valid,
        ),
        D::Time64(U::Microsecond) => {
            range_flags(array.as_primitive::<Time64MicrosecondType>(), 1, bad, valid)
        }
        _ => return None,
    })
}

/// Per value of `array`, `bad` when `value x scale` is not `valid`.
fn range_flags<T>(
    array: &PrimitiveArray<T>,
    scale: i128,
    bad: Unstorable,
    valid: impl Fn(i128) -> bool,
) -> Vec<Option<Unstorable>>
where
    T: arrow_array::ArrowPrimitiveType,
    T::Native: Into<i64>,
{
    array
        .iter()
        .map(|v| v.and_then(|v| (!valid(i128::from(v.into()) * scale)).then_some(bad)))
        .collect()
}

fn list_flags<O: OffsetSizeTrait>(list: &GenericListArray<O>) -> Option<Vec<Option<Unstorable>>> {
    let items = string_flags(list.values().as_ref(), false)?;
    let offsets = list.value_offsets();
    Some(
        (0..list.len())
            .map(|row| {
                let (start, end) = (offsets[row].as_usize(), offsets[row + 1].as_usize());
                let bad = !list.is_null(row) && items[start..end].iter().any(Option::is_some);
                bad.then_some(Unstorable::ElementNul)
            })
            .collect(),
    )
}

/// Per value of a string array, a NUL byte (or, for JSON, the escape
/// `\u0000`) or a size over the field limit; `None` when no value can have
/// either, judged on the value buffer alone.
fn string_flags(array: &dyn Array, json: bool) -> Option<Vec<Option<Unstorable>>> {
    let suspicious = |bytes: &[u8]| {
        bytes.len() > MAX_FIELD_BYTES || bytes.contains(&0) || (json && bytes.contains(&b'\\'))
    };
    let nul = if json {
        Unstorable::JsonNul
    } else {
        Unstorable::Nul
    };
    let judge = |s: &str| {
        if s.len() > MAX_FIELD_BYTES {
            Some(Unstorable::TooLarge(s.len()))
        } else if s.contains('\0') || (json && has_nul_escape(s)) {
            Some(nul)
        } else {
            None
        }
    };
    match array.data_type() {
        DataType::Utf8 => {
            let a = array.as_string::<i32>();
            suspicious(a.value_data()).then(|| a.iter().map(|v| v.and_then(judge)).collect())
        }
        DataType::LargeUtf8 => {
            let a = array.as_string::<i64>();
            suspicious(a.value_data()).then(|| a.iter().map(|v| v.and_then(judge)).collect())
        }
        DataType::Utf8View => {
            let a = array.as_string_view();
            Some(a.iter().map(|v| v.and_then(judge)).collect())
        }
        _ => None,
    }
}

/// Per value of a binary array, a size over the field limit.
fn binary_flags(array: &dyn Array) -> Option<Vec<Option<Unstorable>>> {
    let judge = |b: &[u8]| (b.len() > MAX_FIELD_BYTES).then_some(Unstorable::TooLarge(b.len()));
    match array.data_type() {
        DataType::Binary => {
            let a = array.as_binary::<i32>();
            (a.value_data().len() > MAX_FIELD_BYTES)
                .then(|| a.iter().map(|v| v.and_then(judge)).collect())
        }
        DataType::LargeBinary => {
            let a = array.as_binary::<i64>();
            (a.value_data().len() > MAX_FIELD_BYTES)
                .then(|| a.iter().map(|v| v.and_then(judge)).collect())
        }
        _ => None,
    }
}

/// Whether JSON text holds the escape `\u0000` (an escaped backslash
/// followed by `u0000` does not count).
pub(crate) fn has_nul_escape(json: &str) -> bool {
    let b = json.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            if b[i + 1..].starts_with(b"u0000") {
                return true;
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;

    use arrow_array::{
        ArrayRef, BinaryArray, Date32Array, StringArray, Time64MicrosecondArray,
        TimestampMicrosecondArray, TimestampSecondArray,
    };

    use super::*;

    fn scan(array: ArrayRef, check: Check) -> Option<Vec<Option<Unstorable>>> {
        unstorable(array.as_ref(), check)
    }

    #[test]
    fn dates_outside_postgres_range_are_found_at_both_edges() {
        let days = Date32Array::from(vec![
            Some(0),
            Some(PG_MIN_DATE as i32),
            Some(PG_MIN_DATE as i32 - 1),
            Some(PG_END_DATE as i32 - 1),
            Some(PG_END_DATE as i32),
            Some(i32::MAX),
            Some(i32::MIN),
            None,
        ]);
        let d = Some(Unstorable::Date);
        assert_eq!(
            scan(Arc::new(days), Check::Date),
            Some(vec![None, None, d, None, d, d, d, None])
        );
        assert_eq!(
            scan(Arc::new(Date32Array::from(vec![0, 20_000])), Check::Date),
            None
        );
    }

    #[test]
    fn timestamps_outside_postgres_range_are_found_in_every_unit() {
        // 4713-11-24 BC 00:00 is the first timestamp; one microsecond before is not.
        let first_us = (PG_MIN_TIMESTAMP + PG_EPOCH_US) as i64;
        let us = TimestampMicrosecondArray::from(vec![
            Some(first_us),
            Some(first_us - 1),
            Some(i64::MIN),
            Some(i64::MAX),
            Some(1_700_000_000_000_000),
            None,
        ]);
        let t = Some(Unstorable::Timestamp);
        assert_eq!(
            scan(Arc::new(us), Check::Timestamp),
            Some(vec![None, t, t, None, None, None])
        );
        // Seconds reach far past 294276 AD.
        let secs = TimestampSecondArray::from(vec![1_700_000_000, i64::MAX / 2, -i64::MAX / 2]);
        assert_eq!(
            scan(Arc::new(secs), Check::Timestamp),
            Some(vec![None, t, t])
        );
    }

    #[test]
    fn times_of_day_past_midnight_are_found() {
        let times = Time64MicrosecondArray::from(vec![0, DAY_US as i64, DAY_US as i64 + 1, -1]);
        let t = Some(Unstorable::Time);
        assert_eq!(
            scan(Arc::new(times), Check::Time),
            Some(vec![None, None, t, t])
        );
    }

    #[test]
    fn values_over_the_field_limit_are_found_with_their_size() {
        let big = "a".repeat(MAX_FIELD_BYTES + 1);
        let text = StringArray::from(vec![Some("small"), Some(big.as_str()), None]);
        assert_eq!(
            scan(Arc::new(text), Check::Text),
            Some(vec![
                None,
                Some(Unstorable::TooLarge(MAX_FIELD_BYTES + 1)),
                None
            ])
        );
        drop(big);
        let bytes = vec![7u8; MAX_FIELD_BYTES + 2];
        let binary = BinaryArray::from(vec![Some(&b"x"[..]), Some(bytes.as_slice())]);
        assert_eq!(
            scan(Arc::new(binary), Check::Bytes),
            Some(vec![None, Some(Unstorable::TooLarge(MAX_FIELD_BYTES + 2))])
        );
        // Many values adding up past the limit, each under it: nothing to quarantine.
        let half = "b".repeat(MAX_FIELD_BYTES / 2 + 1);
        let two = StringArray::from(vec![half.as_str(), half.as_str()]);
        assert_eq!(scan(Arc::new(two), Check::Text), None);
    }

    #[test]
    fn nul_bytes_and_escapes_are_found() {
        let text = StringArray::from(vec!["ok", "bad\0", r#"{"a":"\u0000"}"#]);
        assert_eq!(
            scan(Arc::new(text.clone()), Check::Text),
            Some(vec![None, Some(Unstorable::Nul), None])
        );
        assert_eq!(
            scan(Arc::new(text), Check::Json),
            Some(vec![
                None,
                Some(Unstorable::JsonNul),
                Some(Unstorable::JsonNul)
            ])
        );
        assert!(has_nul_escape(r#"{"a":"x\u0000y"}"#));
        assert!(!has_nul_escape(r#"{"a":"x\\u0000y"}"#));
        assert!(has_nul_escape(r#"{"a":"\\\u0000"}"#));
        assert!(!has_nul_escape(r#"{"a":"\u0001"}"#));
    }
}
