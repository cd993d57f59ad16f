//! Stream specs discovered from `sobjects/{Object}/describe`.
//!
//! Every queryable field of the object becomes a column typed from its
//! describe type, so custom objects and fields need no declaration. Compound
//! fields (`address`, `location`) are left out: their parts (`MailingStreet`,
//! `MailingCity`...) are fields of their own, and Bulk API 2.0 cannot query
//! them. `base64` fields (file bodies) are left out too.

use std::collections::HashMap;

use serde::Deserialize;
use weft_arrow::{FieldType, Schema};
use weft_core::{DELETED_AT, StreamSpec, WriteDisposition};

/// Cursor candidates, best first.
const CURSORS: [&str; 3] = ["SystemModstamp", "LastModifiedDate", "CreatedDate"];

/// One object's stream: spec, the fields to select, the cursor.
#[derive(Debug, Clone)]
pub(crate) struct ObjectStream {
    /// The engine-facing spec (named after the object's API name).
    pub(crate) spec: StreamSpec,
    /// The fields to select, in describe order, with their column types.
    pub(crate) fields: Vec<(String, FieldType)>,
    /// Field types by name.
    pub(crate) types: HashMap<String, FieldType>,
    /// The cursor field (`SystemModstamp`, else `LastModifiedDate`, else `CreatedDate`).
    pub(crate) cursor: Option<String>,
}

impl ObjectStream {
    /// The object's API name.
    pub(crate) fn object(&self) -> &str {
        &self.spec.name
    }

    /// `SELECT <fields> FROM <Object>`.
    pub(crate) fn select(&self) -> String {
        let names: Vec<&str> = self.fields.iter().map(|(n, _)| n.as_str()).collect();
        format!("SELECT {} FROM {}", names.join(","), self.spec.name)
    }
}

#[derive(Deserialize)]
struct Describe {
    name: String,
    #[serde(default)]
    label: String,
    fields: Vec<DescribeField>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DescribeField {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    label: String,
    #[serde(default = "yes")]
    nillable: bool,
}

fn yes() -> bool {
    true
}

/// The column type of a describe field type; `None` for fields left out.
pub(crate) fn field_type(kind: &str) -> Option<FieldType> {
    Some(match kind {
        "id" | "string" | "email" | "phone" | "url" | "textarea" | "picklist" | "multipicklist"
        | "reference" | "combobox" | "encryptedstring" => FieldType::String,
        "boolean" => FieldType::Boolean,
        "int" | "long" => FieldType::Integer,
        "double" | "percent" | "currency" => FieldType::Number,
        "date" => FieldType::Date,
        "datetime" => FieldType::Timestamp,
        "address" | "location" | "base64" => return None,
        _ => FieldType::Json,
    })
}

/// Builds an object's stream from its describe JSON.
pub(crate) fn object_stream(body: &[u8]) -> Result<ObjectStream, String> {
    let d: Describe = serde_json::from_slice(body)
        .map_err(|e| format!("describe is not the expected JSON: {e}"))?;
    let mut fields = Vec::with_capacity(d.fields.len());
    let mut arrow_fields = Vec::with_capacity(d.fields.len() + 1);
    for f in &d.fields {
        let Some(ty) = field_type(&f.kind) else {
            continue;
        };
        if !crate::config::is_api_name(&f.name) {
            return Err(format!("field name `{}` is not an API name", f.name));
        }
        let nullable = f.nillable && f.name != "Id";
        arrow_fields.push(ty.field(&f.name, nullable, &f.label));
        fields.push((f.name.clone(), ty));
    }
    let types: HashMap<String, FieldType> = fields.iter().cloned().collect();
    if types.get("Id") != Some(&FieldType::String) {
        return Err(format!("object {} has no `Id` field", d.name));
    }
    let cursor = CURSORS
        .iter()
        .find(|c| types.get(**c) == Some(&FieldType::Timestamp))
        .map(|c| c.to_string());
    let has_is_deleted = types.get("IsDeleted") == Some(&FieldType::Boolean);
    if has_is_deleted {
        arrow_fields.push(FieldType::Timestamp.field(
            DELETED_AT,
            true,
            "When Salesforce reported this record deleted; null while it exists.",
        ));
    }
    let mut spec = StreamSpec::new(d.name.clone(), Schema::new(arrow_fields))
        .with_primary_key(["Id"])
        .with_disposition(WriteDisposition::Merge);
    spec.description = if d.label.is_empty() {
        format!("Salesforce {} records.", d.name)
    } else {
        format!("Salesforce {} records ({}).", d.label, d.name)
    };
    if let Some(c) = &cursor {
        spec = spec.with_cursor(c.clone());
    }
    Ok(ObjectStream {
        spec,
        fields,
        types,
        cursor,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use weft_arrow::field_type_of;

    #[test]
    fn describe_types_become_columns() {
        let body = serde_json::json!({
            "name": "Invoice__c", "label": "Invoice",
            "fields": [
                {"name": "Id", "type": "id", "nillable": false},
                {"name": "Amount__c", "type": "currency"},
                {"name": "Paid__c", "type": "boolean"},
                {"name": "Lines__c", "type": "int"},
                {"name": "Due__c", "type": "date"},
                {"name": "BillingAddress", "type": "address"},
                {"name": "Meta__c", "type": "anyType"},
                {"name": "LastModifiedDate", "type": "datetime"},
                {"name": "IsDeleted", "type": "boolean"}
            ]
        });
        let s = object_stream(body.to_string().as_bytes()).unwrap();
        assert_eq!(s.object(), "Invoice__c");
        assert_eq!(s.cursor.as_deref(), Some("LastModifiedDate"));
        let schema = &s.spec.schema;
        let ty = |n: &str| field_type_of(schema.field_with_name(n).unwrap());
        assert_eq!(ty("Amount__c"), Some(FieldType::Number));
        assert_eq!(ty("Paid__c"), Some(FieldType::Boolean));
        assert_eq!(ty("Lines__c"), Some(FieldType::Integer));
        assert_eq!(ty("Due__c"), Some(FieldType::Date));
        assert_eq!(ty("Meta__c"), Some(FieldType::Json));
        assert_eq!(ty(DELETED_AT), Some(FieldType::Timestamp));
        assert!(schema.field_with_name("BillingAddress").is_err());
        assert!(!schema.field_with_name("Id").unwrap().is_nullable());
        assert_eq!(
            s.select(),
            "SELECT Id,Amount__c,Paid__c,Lines__c,Due__c,Meta__c,LastModifiedDate,IsDeleted FROM Invoice__c"
        );
        assert_eq!(s.spec.primary_key, vec!["Id".to_string()]);
    }
}
