//! Zendesk users: the fields a mapping may fill and the user object each
//! record becomes in `users/create_or_update_many`.

use serde_json::{Map, Value};
use weft_core::{SyncAction, SyncRecord};

use crate::ZendeskMirror;

/// User fields a mapping may fill (besides `user_fields.KEY`).
pub(super) const FIELDS: [&str; 14] = [
    "name",
    "email",
    "external_id",
    "phone",
    "role",
    "organization_id",
    "tags",
    "verified",
    "time_zone",
    "locale",
    "details",
    "notes",
    "alias",
    "suspended",
];

/// Where custom user fields go (`user_fields.plan` -> `{"user_fields": {"plan": ..}}`).
pub(super) const CUSTOM: &str = "user_fields";

/// What one record becomes.
#[derive(Debug, PartialEq)]
pub(super) enum Write {
    /// This user object, in a `create_or_update_many` call.
    Send(Value),
    /// A mirror delete of kind `tag`: tag the user with this email.
    Tag(String),
}

/// The write for `record` under `mirror`, or why it cannot be sent.
pub(super) fn write(record: &SyncRecord, mirror: &ZendeskMirror) -> Result<Write, String> {
    if record.action == SyncAction::Delete {
        let email = record.key.trim();
        if !email.contains('@') {
            return Err(format!(
                "cannot {} key {:?}: a mirror sync to Zendesk users needs the email as its \
                 primary key",
                mirror.kind(),
                record.key
            ));
        }
        let mut user = Map::new();
        user.insert("email".into(), Value::from(email));
        return match mirror {
            ZendeskMirror::Suspend => {
                user.insert("suspended".into(), Value::Bool(true));
                Ok(Write::Send(Value::Object(user)))
            }
            ZendeskMirror::Field { field, value } => {
                super::set_field(&mut user, CUSTOM, field, value.clone());
                Ok(Write::Send(Value::Object(user)))
            }
            ZendeskMirror::Tag { .. } => Ok(Write::Tag(email.to_string())),
            ZendeskMirror::Delete => {
                Err("mirror kind `delete` is not available for Zendesk users".into())
            }
        };
    }
    match record.fields.get("email") {
        Some(Value::String(s)) if !s.trim().is_empty() => {}
        Some(Value::String(_)) | Some(Value::Null) | None => {
            return Err("`email` is missing or empty".into());
        }
        Some(other) => return Err(format!("`email` is not text: {other}")),
    }
    let mut user = Map::new();
    for (name, value) in &record.fields {
        match value {
            Value::String(s) if name == "email" => {
                user.insert(name.clone(), Value::from(s.trim()));
            }
            _ => super::set_field(&mut user, CUSTOM, name, value.clone()),
        }
    }
    Ok(Write::Send(Value::Object(user)))
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

    fn sent(w: Result<Write, String>) -> Value {
        match w.unwrap() {
            Write::Send(v) => v,
            other => panic!("expected a user object, got {other:?}"),
        }
    }

    #[test]
    fn users_carry_mapped_fields_and_deletes_follow_the_mirror_kind() {
        let r = record(
            SyncAction::Create,
            "ann@x.com",
            &[
                ("email", json!(" ann@x.com ")),
                ("name", json!("Ann")),
                ("phone", Value::Null),
                ("user_fields.plan", json!("pro")),
            ],
        );
        assert_eq!(
            sent(write(&r, &ZendeskMirror::Suspend)),
            json!({"email": "ann@x.com", "name": "Ann", "user_fields": {"plan": "pro"}})
        );
        let d = record(SyncAction::Delete, "ann@x.com", &[]);
        assert_eq!(
            sent(write(&d, &ZendeskMirror::Suspend)),
            json!({"email": "ann@x.com", "suspended": true})
        );
        let field = ZendeskMirror::Field {
            field: "user_fields.status".into(),
            value: json!("inactive"),
        };
        assert_eq!(
            sent(write(&d, &field)),
            json!({"email": "ann@x.com", "user_fields": {"status": "inactive"}})
        );
        let tag = ZendeskMirror::Tag {
            tags: vec!["churned".into()],
        };
        assert_eq!(write(&d, &tag).unwrap(), Write::Tag("ann@x.com".into()));
        let bad = record(SyncAction::Delete, "u-1", &[]);
        let e = write(&bad, &ZendeskMirror::Suspend).unwrap_err();
        assert!(e.starts_with("cannot suspend key \"u-1\""), "{e}");
        let no_email = record(SyncAction::Create, "k", &[("name", json!("X"))]);
        assert_eq!(
            write(&no_email, &ZendeskMirror::Suspend).unwrap_err(),
            "`email` is missing or empty"
        );
    }
}
