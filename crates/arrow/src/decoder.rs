//! Page decoding: raw JSON records in, one record batch and the rejects out.
//!
//! A page is first decoded whole by arrow-json (strict mode, weft's column
//! decoders). Only when that fails does the decoder look at records one by
//! one: it evolves the schema for unknown fields (contract `evolve`), finds the
//! records and values at fault, applies the [`SchemaContract`], and decodes
//! the rows that remain, in their original order.

use std::borrow::Cow;
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_json::ReaderBuilder;
use arrow_json::reader::Decoder;
use arrow_schema::{ArrowError, Field, FieldRef, Schema, SchemaRef};
use serde_json::value::RawValue;

use crate::columns::WeftDecoderFactory;
use crate::{ArrowConvError, FieldType, Reject, SchemaContract};

/// Smallest batch size a page decoder is built with, so that typical pages
/// (up to 1000 records) reuse one decoder.
const MIN_BATCH_SIZE: usize = 1024;

/// The result of decoding one page.
#[derive(Debug, Default)]
pub struct DecodedPage {
    /// The rows that fit, under [`JsonDecoder::schema`]; `None` when none did.
    pub batch: Option<RecordBatch>,
    /// Records (or values) quarantined, with reasons.
    pub rejects: Vec<Reject>,
    /// Columns added by schema evolution while decoding this page.
    pub new_fields: Vec<FieldRef>,
}

/// Converts pages of JSON records to record batches under a declared schema.
///
/// The schema only grows: columns added by evolution stay for later pages.
#[derive(Debug)]
pub struct JsonDecoder {
    schema: SchemaRef,
    primary_key: Vec<String>,
    /// Column positions of the primary key fields.
    pk_indices: Vec<usize>,
    contract: SchemaContract,
    factory: Arc<WeftDecoderFactory>,
    /// A decoder for the current schema with its batch size, kept between
    /// pages; dropped after an error or a schema change.
    page_decoder: Option<(Decoder, usize)>,
    /// A one-record decoder for the current schema, for the per-record path.
    record_decoder: Option<Decoder>,
    /// One-value decoders by field name, for finding the values at fault.
    value_decoders: HashMap<String, Decoder>,
    /// The records of a page joined by newlines.
    buf: Vec<u8>,
}

/// An object record, its keys mapped to their raw values.
type Object<'a> = BTreeMap<String, &'a RawValue>;

/// What becomes of one record that did not decode as it was.
enum Verdict<'a> {
    /// The row loads from `text` (the record, or a cleaned copy); `notes` are
    /// the values dropped on the way.
    Keep {
        text: Cow<'a, str>,
        notes: Vec<Reject>,
    },
    /// The whole record is quarantined.
    Reject(Reject),
}

impl JsonDecoder {
    /// A decoder for `schema`; records missing a `primary_key` field are rejected.
    ///
    /// Fails if a primary key field is not in the schema, a field name is
    /// repeated, or arrow-json cannot decode one of the field types.
    pub fn new(
        schema: SchemaRef,
        primary_key: Vec<String>,
        contract: SchemaContract,
    ) -> Result<Self, ArrowConvError> {
        let mut seen = HashSet::new();
        if let Some(dup) = schema.fields().iter().find(|f| !seen.insert(f.name())) {
            return Err(ArrowConvError::InvalidSchema(format!(
                "field `{}` is declared twice",
                dup.name()
            )));
        }
        let pk_indices = primary_key
            .iter()
            .map(|key| {
                schema
                    .index_of(key)
                    .map_err(|_| ArrowConvError::UnknownPrimaryKey { field: key.clone() })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut decoder = JsonDecoder {
            schema,
            primary_key,
            pk_indices,
            contract,
            factory: Arc::new(WeftDecoderFactory),
            page_decoder: None,
            record_decoder: None,
            value_decoders: HashMap::new(),
            buf: Vec::new(),
        };
        let page_decoder = decoder.build_decoder(MIN_BATCH_SIZE)?;
        decoder.page_decoder = Some((page_decoder, MIN_BATCH_SIZE));
        Ok(decoder)
    }

    /// The current schema: declared fields plus any evolved ones.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Decodes one page.
    ///
    /// The batch holds every row that fits, in page order, under
    /// [`Self::schema`] as it is after the call. Fails only for the `freeze`
    /// contract (a record that does not fit) or when Arrow itself fails.
    pub fn decode_page(
        &mut self,
        records: &[Box<RawValue>],
    ) -> Result<DecodedPage, ArrowConvError> {
        if records.is_empty() {
            return Ok(DecodedPage::default());
        }
        if let Some(batch) = self.decode_whole(records) {
            return Ok(DecodedPage {
                batch: Some(batch),
                ..DecodedPage::default()
            });
        }
        self.decode_slow(records)
    }

    /// The whole page as one batch, if every record fits as it is.
    fn decode_whole(&mut self, records: &[Box<RawValue>]) -> Option<RecordBatch> {
        let batch = self
            .decode_texts(records.iter().map(|r| r.get()), records.len())
            .ok()??;
        (batch.num_rows() == records.len() && !self.pk_has_nulls(&batch)).then_some(batch)
    }

    /// Record by record: evolve, find the culprits, apply the contract.
    fn decode_slow(&mut self, records: &[Box<RawValue>]) -> Result<DecodedPage, ArrowConvError> {
        let objects: Vec<Option<Object<'_>>> = records
            .iter()
            .map(|r| serde_json::from_str(r.get()).ok())
            .collect();
        let new_fields = if self.contract == SchemaContract::Evolve {
            self.evolve(&objects)
        } else {
            Vec::new()
        };
        if !new_fields.is_empty()
            && let Some(batch) = self.decode_whole(records)
        {
            return Ok(DecodedPage {
                batch: Some(batch),
                rejects: Vec::new(),
                new_fields,
            });
        }

        let mut kept: Vec<Cow<'_, str>> = Vec::with_capacity(records.len());
        let mut rejects = Vec::new();
        for (index, (record, object)) in records.iter().zip(&objects).enumerate() {
            let raw = record.get();
            let Some(object) = object else {
                rejects.push(self.fault(index, raw, None, "record is not a JSON object".into())?);
                continue;
            };
            if self.fits(raw) {
                kept.push(Cow::Borrowed(raw));
                continue;
            }
            match self.check_record(index, raw, object)? {
                Verdict::Keep { text, notes } => {
                    if self.fits(&text) {
                        kept.push(text);
                        rejects.extend(notes);
                    } else {
                        let reason = match self.decode_texts([text.as_ref()], 1) {
                            Err(e) => format!("record does not fit the schema: {}", message(e)),
                            Ok(_) => "record does not fit the schema".to_string(),
                        };
                        rejects.push(self.fault(index, raw, None, reason)?);
                    }
                }
                Verdict::Reject(reject) => rejects.push(reject),
            }
        }

        let batch = if kept.is_empty() {
            None
        } else {
            let batch = self.decode_texts(kept.iter().map(|t| t.as_ref()), kept.len())?;
            match batch {
                Some(b) if b.num_rows() == kept.len() => Some(b),
                other => {
                    return Err(ArrowConvError::RowCount {
                        expected: kept.len(),
                        got: other.map_or(0, |b| b.num_rows()),
                    });
                }
            }
        };
        Ok(DecodedPage {
            batch,
            rejects,
            new_fields,
        })
    }

    /// Adds a nullable column for each unknown field with a non-null value.
    ///
    /// The type is inferred from the page's values; fields seen only as null
    /// wait for a later page.
    fn evolve(&mut self, objects: &[Option<Object<'_>>]) -> Vec<FieldRef> {
        let known: HashSet<&str> = self
            .schema
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        let mut found: Vec<(&str, FieldType)> = Vec::new();
        for (key, value) in objects.iter().flatten().flatten() {
            if known.contains(key.as_str()) {
                continue;
            }
            // Warehouses match column names without case and need a name: such
            // a field cannot become a column (its values are dropped with a note).
            if key.is_empty()
                || is_engine_column(key)
                || known
                    .iter()
                    .chain(found.iter().map(|(k, _)| k))
                    .any(|k| k != key && k.eq_ignore_ascii_case(key))
            {
                continue;
            }
            let Some(ty) = infer_type(value) else {
                continue;
            };
            match found.iter_mut().find(|(k, _)| *k == key.as_str()) {
                Some((_, seen)) => *seen = widen(*seen, ty),
                None => found.push((key.as_str(), ty)),
            }
        }
        if found.is_empty() {
            return Vec::new();
        }
        let new_fields: Vec<FieldRef> = found
            .into_iter()
            .map(|(name, ty)| Arc::new(ty.field(name, true, "")))
            .collect();
        let fields: Vec<FieldRef> = self
            .schema
            .fields()
            .iter()
            .chain(&new_fields)
            .cloned()
            .collect();
        self.schema = Arc::new(Schema::new_with_metadata(
            fields,
            self.schema.metadata().clone(),
        ));
        self.page_decoder = None;
        self.record_decoder = None;
        new_fields
    }

    /// Finds what is wrong with a record that did not decode, and applies the contract.
    fn check_record<'a>(
        &mut self,
        index: usize,
        raw: &'a str,
        object: &Object<'a>,
    ) -> Result<Verdict<'a>, ArrowConvError> {
        for field in self.schema.fields() {
            let is_pk = self.primary_key.contains(field.name());
            if (is_pk || !field.is_nullable())
                && object.get(field.name()).is_none_or(|v| is_null(v))
            {
                let reason = if is_pk {
                    format!("missing primary key field `{}`", field.name())
                } else {
                    format!("missing required field `{}`", field.name())
                };
                return Ok(Verdict::Reject(self.fault(
                    index,
                    raw,
                    Some(field.name()),
                    reason,
                )?));
            }
        }

        let mut cleaned: BTreeMap<&str, Option<&RawValue>> = BTreeMap::new();
        let mut changed = false;
        let mut notes = Vec::new();
        for (key, &value) in object {
            let Some(field) = self
                .schema
                .index_of(key)
                .ok()
                .map(|i| self.schema.field(i).clone())
            else {
                changed = true;
                // Under `evolve` the fields still unknown are null-only ones (they
                // wait for a value) and names no column can take (empty, or
                // another column's name in other case): their values are dropped.
                if self.contract == SchemaContract::DiscardValue {
                    notes.push(note(raw, key, format!("unknown field `{key}` dropped")));
                } else if self.contract == SchemaContract::Evolve && !is_null(value) {
                    notes.push(note(raw, key, unloadable_name(&self.schema, key)));
                } else if self.contract != SchemaContract::Evolve {
                    let reason = format!("unknown field `{key}`");
                    return Ok(Verdict::Reject(self.fault(
                        index,
                        raw,
                        Some(key),
                        reason,
                    )?));
                }
                continue;
            };
            let Err(why) = self.check_value(&field, value) else {
                cleaned.insert(key, Some(value));
                continue;
            };
            let reason = format!("field `{key}`: {why}");
            let nullable = field.is_nullable() && !self.primary_key.contains(key);
            if self.contract == SchemaContract::DiscardValue && nullable {
                changed = true;
                cleaned.insert(key, None);
                notes.push(note(raw, key, format!("{reason}; value set to null")));
            } else {
                return Ok(Verdict::Reject(self.fault(
                    index,
                    raw,
                    Some(key),
                    reason,
                )?));
            }
        }
        let text = if changed {
            Cow::Owned(
                serde_json::to_string(&cleaned)
                    .map_err(|source| ArrowConvError::Reencode { index, source })?,
            )
        } else {
            Cow::Borrowed(raw)
        };
        Ok(Verdict::Keep { text, notes })
    }

    /// Whether one raw value fits `field` (null always does: nullability is checked apart).
    fn check_value(&mut self, field: &Field, value: &RawValue) -> Result<(), String> {
        if is_null(value) {
            return Ok(());
        }
        let decoder = match self.value_decoders.entry(field.name().clone()) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => {
                let field = Arc::new(field.clone().with_nullable(true));
                let decoder = ReaderBuilder::new_with_field(field)
                    .with_batch_size(1)
                    .with_decoder_factory(self.factory.clone())
                    .build_decoder()
                    .map_err(message)?;
                e.insert(decoder)
            }
        };
        self.buf.clear();
        self.buf.extend_from_slice(value.get().as_bytes());
        self.buf.push(b'\n');
        let result = decoder.decode(&self.buf).and_then(|_| decoder.flush());
        match result {
            Ok(_) => Ok(()),
            Err(e) => {
                // A decoder that failed may hold half a value: start afresh next time.
                self.value_decoders.remove(field.name());
                Err(message(e))
            }
        }
    }

    /// A rejected whole record, or under `freeze` the error that stops the stream.
    fn fault(
        &self,
        index: usize,
        raw: &str,
        field: Option<&str>,
        reason: String,
    ) -> Result<Reject, ArrowConvError> {
        if self.contract == SchemaContract::Freeze {
            return Err(ArrowConvError::Frozen { index, reason });
        }
        Ok(Reject {
            record: raw.to_string(),
            reason,
            field: field.map(str::to_string),
            row_loaded: false,
        })
    }

    /// Whether one record decodes alone, primary key included.
    fn fits(&mut self, text: &str) -> bool {
        matches!(
            self.decode_texts([text], 1),
            Ok(Some(b)) if b.num_rows() == 1 && !self.pk_has_nulls(&b)
        )
    }

    /// Whether a primary key column of `batch` holds a null.
    fn pk_has_nulls(&self, batch: &RecordBatch) -> bool {
        self.pk_indices
            .iter()
            .any(|&i| batch.column(i).null_count() > 0)
    }

    /// Decodes `n` JSON texts into one batch under the current schema.
    fn decode_texts<'a>(
        &mut self,
        texts: impl IntoIterator<Item = &'a str>,
        n: usize,
    ) -> Result<Option<RecordBatch>, ArrowError> {
        // One record at a time goes through its own small decoder.
        let single = n == 1;
        let cached = if single {
            self.record_decoder.take().map(|d| (d, 1))
        } else {
            self.page_decoder.take()
        };
        let (mut decoder, size) = match cached {
            Some((decoder, size)) if size >= n => (decoder, size),
            _ => {
                let size = if single { 1 } else { n.max(MIN_BATCH_SIZE) };
                (self.build_decoder(size)?, size)
            }
        };
        self.buf.clear();
        for text in texts {
            self.buf.extend_from_slice(text.as_bytes());
            self.buf.push(b'\n');
        }
        let read = decoder.decode(&self.buf)?;
        if read != self.buf.len() {
            return Err(ArrowError::JsonError(format!(
                "decoder stopped after {read} of {} bytes",
                self.buf.len()
            )));
        }
        let batch = decoder.flush()?;
        // Only a decoder that finished cleanly is reused.
        if single {
            self.record_decoder = Some(decoder);
        } else {
            self.page_decoder = Some((decoder, size));
        }
        Ok(batch)
    }

    /// A strict arrow-json decoder for the current schema.
    fn build_decoder(&self, batch_size: usize) -> Result<Decoder, ArrowError> {
        ReaderBuilder::new(self.schema.clone())
            .with_strict_mode(true)
            .with_batch_size(batch_size)
            .with_decoder_factory(self.factory.clone())
            .build_decoder()
    }
}

/// A value dropped from a row that still loads (`discard_value`).
fn note(raw: &str, field: &str, reason: String) -> Reject {
    Reject {
        record: raw.to_string(),
        reason,
        field: Some(field.to_string()),
        row_loaded: true,
    }
}

/// Why a field's value was dropped under `evolve`: its name cannot be a column.
fn unloadable_name(schema: &Schema, key: &str) -> String {
    match schema
        .fields()
        .iter()
        .find(|f| f.name().eq_ignore_ascii_case(key))
    {
        _ if key.is_empty() => {
            "a field with an empty name cannot be a column; value dropped".into()
        }
        _ if is_engine_column(key) => {
            format!("field `{key}` is named like a column weft writes itself; value dropped")
        }
        Some(f) => format!(
            "field `{key}` differs from column `{}` only in case and cannot be a column; value dropped",
            f.name()
        ),
        None => format!("field `{key}` cannot be a column; value dropped"),
    }
}

/// Whether `key` is (in any case) one of the columns the pipeline stamps.
fn is_engine_column(key: &str) -> bool {
    key.eq_ignore_ascii_case(crate::LOAD_ID) || key.eq_ignore_ascii_case(crate::EXTRACTED_AT)
}

/// Whether a raw value is JSON null.
fn is_null(value: &RawValue) -> bool {
    value.get().trim() == "null"
}

/// The logical type a new column gets from one value; `None` for null.
fn infer_type(value: &RawValue) -> Option<FieldType> {
    let text = value.get().trim();
    match text.as_bytes().first()? {
        b'n' => None,
        b't' | b'f' => Some(FieldType::Boolean),
        b'"' => Some(FieldType::String),
        b'{' | b'[' => Some(FieldType::Json),
        _ if text.parse::<i64>().is_ok() => Some(FieldType::Integer),
        _ => Some(FieldType::Number),
    }
}

/// The type that holds values of both `a` and `b`: integers widen to
/// numbers, any other conflict becomes JSON.
fn widen(a: FieldType, b: FieldType) -> FieldType {
    match (a, b) {
        _ if a == b => a,
        (FieldType::Integer, FieldType::Number) | (FieldType::Number, FieldType::Integer) => {
            FieldType::Number
        }
        _ => FieldType::Json,
    }
}

/// The text of an Arrow error, without the variant prefix for JSON errors.
fn message(e: ArrowError) -> String {
    match e {
        ArrowError::JsonError(m) => m,
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> Box<RawValue> {
        RawValue::from_string(s.to_string()).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn infers_types_from_values() {
        assert_eq!(infer_type(&raw("null")), None);
        assert_eq!(infer_type(&raw("true")), Some(FieldType::Boolean));
        assert_eq!(infer_type(&raw("\"x\"")), Some(FieldType::String));
        assert_eq!(infer_type(&raw("[1]")), Some(FieldType::Json));
        assert_eq!(infer_type(&raw("{}")), Some(FieldType::Json));
        assert_eq!(infer_type(&raw("-12")), Some(FieldType::Integer));
        assert_eq!(infer_type(&raw("1.5")), Some(FieldType::Number));
        assert_eq!(infer_type(&raw("1e3")), Some(FieldType::Number));
        assert_eq!(
            infer_type(&raw("99999999999999999999")),
            Some(FieldType::Number)
        );
    }

    #[test]
    fn widening_rules() {
        use FieldType::*;
        assert_eq!(widen(Integer, Integer), Integer);
        assert_eq!(widen(Integer, Number), Number);
        assert_eq!(widen(Number, Integer), Number);
        assert_eq!(widen(String, Integer), Json);
        assert_eq!(widen(Boolean, String), Json);
    }
}
