//! Zendesk organizations: the fields a mapping may fill, the external id
//! each record is matched by, and the organization object it becomes in
//! `organizations/create_many` and `update_many`.

use serde_json::{Map, Value};
use weft_core::{SyncAction, SyncRecord};

/// Organization fields a mapping may fill (besides `organization_fields.KEY`).
pub(super) const FIELDS: [&str; 9] = [
    "name",
    "external_id",
    "details",
    "notes",
    "domain_names",
    "tags",
    "group_id",
    "shared_tickets",
    "shared_comments",
];

/// Where custom organization fields go.
pub(super) const CUSTOM: &str = "organization_fields";

/// The external id `record` is matched by: its key for a delete, else its
/// mapped `external_id` (text or a number), trimmed.
pub(super) fn external_id(record: &SyncRecord) -> Result<String, String> {
    let id = if record.action == SyncAction::Delete {
        record.key.trim().to_string()
    } else {
        match record.fields.get("external_id") {
            Some(Value::String(s)) => s.trim().to_string(),
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::Null) | None => String::new(),
            Some(other) => return Err(format!("`external_id` is not text: {other}")),
        }
    };
    if id.is_empty() {
        return Err("`external_id` is missing or empty".into());
    }
    // show_many and destroy_many take comma-separated lists.
    if id.contains(',') {
        return Err(format!(
            "external id {id:?} has a comma, which Zendesk's lookups by external id cannot take"
        ));
    }
    Ok(id)
}

/// The organization object sent for upsert `record` matched by `external_id`.
pub(super) fn body(record: &SyncRecord, external_id: &str) -> Value {
    let mut org = Map::new();
    for (name, value) in &record.fields {
        if name != "external_id" {
            super::set_field(&mut org, CUSTOM, name, value.clone());
        }
    }
    org.insert("external_id".into(), Value::from(external_id));
    Value::Object(org)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;

    fn record(action: SyncAction, key: &str, fields: &[(&str, Value)]) -> SyncRecord {
        SyncRecord {
            key: key.into(),
            action,
            row_hash: "h".into(),
            fields: fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect::<BTreeMap<_, _>>(),
        }
    }

    #[test]
    fn organizations_are_matched_by_external_id_and_carry_their_fields() {
        let r = record(
            SyncAction::Create,
            "acme",
            &[
                ("external_id", json!(" acme ")),
                ("name", json!("Acme")),
                ("notes", Value::Null),
                ("domain_names", json!(["acme.example"])),
                ("organization_fields.tier", json!("gold")),
            ],
        );
        let id = external_id(&r).unwrap();
        assert_eq!(id, "acme");
        assert_eq!(
            body(&r, &id),
            json!({"external_id": "acme", "name": "Acme", "domain_names": ["acme.example"],
                   "organization_fields": {"tier": "gold"}})
        );
        let d = record(SyncAction::Delete, " gone ", &[]);
        assert_eq!(external_id(&d).unwrap(), "gone");
        let n = record(SyncAction::Update, "7", &[("external_id", json!(7))]);
        assert_eq!(external_id(&n).unwrap(), "7");
        let none = record(SyncAction::Create, "x", &[("name", json!("X"))]);
        assert_eq!(
            external_id(&none).unwrap_err(),
            "`external_id` is missing or empty"
        );
        let comma = record(SyncAction::Delete, "a,b", &[]);
        assert!(external_id(&comma).unwrap_err().contains("comma"));
    }
}
