//! The only stored Salesforce data: field overrides of updated records,
//! deletions, records created after start, the external-id index and the
//! list of records written through the API. Everything else is generated.

use std::collections::{HashMap, HashSet};

use super::data::{Org, Val};
use super::schema::{FieldType, SObject};

/// A per-record failure, as composite and Bulk 2.0 results report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RecordError {
    pub(crate) code: &'static str,
    pub(crate) message: String,
    pub(crate) fields: Vec<String>,
}

impl RecordError {
    fn new(code: &'static str, message: String, fields: Vec<String>) -> Self {
        Self {
            code,
            message,
            fields,
        }
    }
}

/// A field value as a client sent it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Raw<'a> {
    Json(&'a serde_json::Value),
    Text(&'a str),
}

/// Record mutations.
#[derive(Debug, Clone, Default)]
pub(crate) struct Store {
    overrides: HashMap<(SObject, u64), HashMap<usize, Val>>,
    deleted: HashSet<(SObject, u64)>,
    /// Creation times of records created after start, per object.
    created: HashMap<SObject, Vec<i64>>,
    /// Lower-cased `External_Id__c` value -> record index.
    external: HashMap<(SObject, String), u64>,
    upserted: Vec<(SObject, u64)>,
    upserted_set: HashSet<(SObject, u64)>,
}

impl Store {
    /// Number of records of `obj` (generated, then created), deleted ones included.
    pub(crate) fn total(&self, org: &Org, obj: SObject) -> u64 {
        org.count(obj) + self.created.get(&obj).map_or(0, |v| v.len() as u64)
    }

    pub(crate) fn is_deleted(&self, obj: SObject, i: u64) -> bool {
        self.deleted.contains(&(obj, i))
    }

    /// Whether `i` is an existing record (deleted or not).
    pub(crate) fn exists(&self, org: &Org, obj: SObject, i: u64) -> bool {
        i < self.total(org, obj)
    }

    /// Current value of field number `f` of record `i`.
    pub(crate) fn get(&self, org: &Org, obj: SObject, i: u64, f: usize) -> Val {
        let field = &obj.fields()[f];
        if let Some(v) = self.overrides.get(&(obj, i)).and_then(|m| m.get(&f)) {
            return v.clone();
        }
        match field.name {
            "IsDeleted" => return Val::Bool(self.is_deleted(obj, i)),
            "Name"
                if matches!(obj, SObject::Contact | SObject::Lead | SObject::User)
                    && self.overrides.contains_key(&(obj, i)) =>
            {
                let part =
                    |name: &str| match obj.field_index(name).map(|k| self.get(org, obj, i, k)) {
                        Some(Val::Str(s)) => s,
                        _ => String::new(),
                    };
                let full = format!("{} {}", part("FirstName"), part("LastName"));
                return Val::Str(full.trim().to_owned());
            }
            _ => {}
        }
        let base = org.count(obj);
        if i < base {
            return org.value(obj, i, field.name);
        }
        match field.name {
            "Id" => Val::Str(org.id(obj, i)),
            "CreatedDate" | "LastModifiedDate" | "SystemModstamp" => self
                .created
                .get(&obj)
                .and_then(|v| v.get((i - base) as usize))
                .map_or(Val::Null, |&t| Val::DateTime(t)),
            "CreatedById" | "LastModifiedById" | "OwnerId" => Val::Str(org.id(SObject::User, 0)),
            _ if field.ty == FieldType::Boolean => Val::Bool(false),
            _ => Val::Null,
        }
    }

    fn touch(&mut self, obj: SObject, i: u64, now: i64) {
        let entry = self.overrides.entry((obj, i)).or_default();
        for name in ["LastModifiedDate", "SystemModstamp"] {
            if let Some(k) = obj.field_index(name) {
                entry.insert(k, Val::DateTime(now));
            }
        }
    }

    /// Sets `values` on record `i` and bumps its modification stamps to `now`.
    pub(crate) fn update(
        &mut self,
        org: &Org,
        obj: SObject,
        i: u64,
        values: Vec<(usize, Val)>,
        now: i64,
    ) {
        let ext = obj.field_index("External_Id__c");
        for (k, v) in values {
            if Some(k) == ext {
                if let Val::Str(old) = self.get(org, obj, i, k) {
                    self.external.remove(&(obj, old.to_lowercase()));
                }
                if let Val::Str(new) = &v {
                    self.external.insert((obj, new.to_lowercase()), i);
                }
            }
            self.overrides.entry((obj, i)).or_default().insert(k, v);
        }
        self.touch(obj, i, now);
    }

    /// Marks record `i` deleted (visible only to `queryAll`).
    pub(crate) fn delete(&mut self, obj: SObject, i: u64, now: i64) {
        self.deleted.insert((obj, i));
        self.touch(obj, i, now);
    }

    /// Creates a record with `values` at `now`; returns its index.
    pub(crate) fn create(
        &mut self,
        org: &Org,
        obj: SObject,
        values: Vec<(usize, Val)>,
        now: i64,
    ) -> u64 {
        let list = self.created.entry(obj).or_default();
        let i = org.count(obj) + list.len() as u64;
        list.push(now);
        self.update(org, obj, i, values, now);
        i
    }

    /// Record `i` was written through the API (listed by the control API).
    fn mark_upserted(&mut self, obj: SObject, i: u64) {
        if self.upserted_set.insert((obj, i)) {
            self.upserted.push((obj, i));
        }
    }

    /// Records of `obj` written through the API, in first-write order.
    pub(crate) fn upserted(&self, obj: SObject) -> Vec<u64> {
        self.upserted
            .iter()
            .filter(|(o, _)| *o == obj)
            .map(|(_, i)| *i)
            .collect()
    }

    /// Finds a live record by an id-lookup field value (`Id` or an external id).
    pub(crate) fn lookup(&self, org: &Org, obj: SObject, field: usize, value: &str) -> Option<u64> {
        let i = if obj.fields()[field].name == "Id" {
            org.parse_id(obj, value)
                .filter(|&i| self.exists(org, obj, i))?
        } else {
            *self.external.get(&(obj, value.to_lowercase()))?
        };
        (!self.is_deleted(obj, i)).then_some(i)
    }

    /// Inserts (when `key` is None) or upserts by `key` (the id-lookup field) one record.
    /// Returns (index, created).
    pub(crate) fn write(
        &mut self,
        org: &Org,
        obj: SObject,
        key: Option<usize>,
        values: Vec<(usize, Val)>,
        now: i64,
        insert_allowed: bool,
    ) -> Result<(u64, bool), RecordError> {
        let existing = match key {
            None => None,
            Some(k) => {
                let name = obj.fields()[k].name;
                let value = values.iter().find(|(f, _)| *f == k).map(|(_, v)| v);
                match value {
                    Some(Val::Str(s)) if !s.is_empty() => {
                        let found = self.lookup(org, obj, k, s);
                        if found.is_none() && name == "Id" {
                            let existed = org
                                .parse_id(obj, s)
                                .is_some_and(|i| self.exists(org, obj, i));
                            return Err(if existed {
                                RecordError::new(
                                    "ENTITY_IS_DELETED",
                                    "entity is deleted".to_owned(),
                                    vec![],
                                )
                            } else {
                                RecordError::new(
                                    "INVALID_CROSS_REFERENCE_KEY",
                                    format!("invalid cross reference id: {s}"),
                                    vec![],
                                )
                            });
                        }
                        found
                    }
                    _ => {
                        return Err(RecordError::new(
                            "REQUIRED_FIELD_MISSING",
                            format!("Required fields are missing: [{name}]"),
                            vec![name.to_owned()],
                        ));
                    }
                }
            }
        };
        let values: Vec<(usize, Val)> = values
            .into_iter()
            .filter(|(f, _)| obj.fields()[*f].name != "Id")
            .collect();
        if let Some(i) = existing {
            self.update(org, obj, i, values, now);
            self.mark_upserted(obj, i);
            return Ok((i, false));
        }
        if !insert_allowed || !obj.createable() {
            return Err(RecordError::new(
                "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY",
                format!("{}: insufficient access rights on object", obj.name()),
                vec![],
            ));
        }
        let missing: Vec<String> = obj
            .fields()
            .iter()
            .enumerate()
            .filter(|(k, f)| {
                !f.nillable
                    && !f.system
                    && f.ty != FieldType::Boolean
                    && f.name != "OwnerId"
                    && !values.iter().any(|(v, val)| v == k && *val != Val::Null)
            })
            .map(|(_, f)| f.name.to_owned())
            .collect();
        if !missing.is_empty() {
            return Err(RecordError::new(
                "REQUIRED_FIELD_MISSING",
                format!("Required fields are missing: [{}]", missing.join(", ")),
                missing,
            ));
        }
        let i = self.create(org, obj, values, now);
        self.mark_upserted(obj, i);
        Ok((i, true))
    }
}

/// Validates and converts client-sent fields of `obj` (unknown, read-only or
/// ill-typed fields are per-record errors). `key` is the id-lookup field,
/// which may be `Id` even though `Id` is not writable.
pub(crate) fn convert<'a>(
    obj: SObject,
    key: Option<usize>,
    pairs: impl IntoIterator<Item = (&'a str, Raw<'a>)>,
) -> Result<Vec<(usize, Val)>, RecordError> {
    let mut out = Vec::new();
    for (name, raw) in pairs {
        if name == "attributes" {
            continue;
        }
        let Some(k) = obj.field_index(name) else {
            return Err(RecordError::new(
                "INVALID_FIELD",
                format!("No such column '{name}' on sobject of type {}", obj.name()),
                vec![name.to_owned()],
            ));
        };
        let field = &obj.fields()[k];
        if field.system && Some(k) != key {
            return Err(RecordError::new(
                "INVALID_FIELD_FOR_INSERT_UPDATE",
                format!(
                    "Unable to create/update fields: {}. Please check the security settings of this field and verify that it is read/write for your profile or permission set.",
                    field.name
                ),
                vec![field.name.to_owned()],
            ));
        }
        let val = match raw {
            Raw::Json(v) => Val::from_json(field.ty, v),
            Raw::Text(t) => Val::from_text(field.ty, t),
        };
        let Some(mut val) = val else {
            return Err(RecordError::new(
                "JSON_PARSER_ERROR",
                format!(
                    "Cannot deserialize value for field {} of type {}",
                    field.name,
                    field.ty.name()
                ),
                vec![field.name.to_owned()],
            ));
        };
        if field.ty == FieldType::Email
            && let Val::Str(s) = &val
        {
            let t = s.trim();
            let valid = t.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
            }) && !t.contains(char::is_whitespace);
            if !valid {
                return Err(RecordError::new(
                    "INVALID_EMAIL_ADDRESS",
                    format!("{}: invalid email address: {s}", field.label),
                    vec![field.name.to_owned()],
                ));
            }
            val = Val::Str(t.to_owned());
        }
        out.push((k, val));
    }
    Ok(out)
}
