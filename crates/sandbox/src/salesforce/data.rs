//! The lazily generated org: record counts per object for a (seed, size),
//! Salesforce-style ids, and every generated field value, computed from the
//! record's index. Nothing here is stored.

use std::fmt::Write as _;

use chrono::{DateTime, NaiveDate, Utc};

use crate::hash::{h, parse_base62, pick, push_base62};
use crate::people::person;

use super::schema::{FieldType, SObject};

/// How far back generated history goes: about two years.
const HISTORY_SECS: i64 = 730 * 86_400;

/// A field value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Val {
    Null,
    Str(String),
    Bool(bool),
    Int(i64),
    Num(f64),
    /// Unix seconds.
    DateTime(i64),
    /// Days since 1970-01-01.
    Date(i64),
}

impl Val {
    /// Writes the value as JSON (the REST API's representation).
    pub(crate) fn push_json(&self, out: &mut String) {
        match self {
            Val::Null => out.push_str("null"),
            Val::Str(s) => crate::json::push_str_lit(out, s),
            Val::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Val::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Val::Num(n) => push_num(out, *n),
            Val::DateTime(t) => {
                out.push('"');
                push_datetime(out, *t, "+0000");
                out.push('"');
            }
            Val::Date(d) => {
                out.push('"');
                push_date(out, *d);
                out.push('"');
            }
        }
    }

    /// The value as Bulk API 2.0 CSV text (unquoted; empty for null).
    pub(crate) fn csv_text(&self) -> String {
        let mut out = String::new();
        match self {
            Val::Null => {}
            Val::Str(s) => out.push_str(s),
            Val::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Val::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Val::Num(n) => push_num(&mut out, *n),
            Val::DateTime(t) => push_datetime(&mut out, *t, "Z"),
            Val::Date(d) => push_date(&mut out, *d),
        }
        out
    }

    /// Converts a JSON value sent by a client into a value of type `ty`.
    pub(crate) fn from_json(ty: FieldType, v: &serde_json::Value) -> Option<Val> {
        use serde_json::Value as J;
        Some(match (ty, v) {
            (_, J::Null) => Val::Null,
            (FieldType::Boolean, J::Bool(b)) => Val::Bool(*b),
            (FieldType::Int, J::Number(n)) => Val::Int(n.as_i64()?),
            (FieldType::Double | FieldType::Currency, J::Number(n)) => Val::Num(n.as_f64()?),
            (_, J::String(s)) => Val::from_text(ty, s)?,
            _ => return None,
        })
    }

    /// Parses a CSV or JSON-string value of type `ty` (empty text is null).
    pub(crate) fn from_text(ty: FieldType, s: &str) -> Option<Val> {
        if s.is_empty() {
            return Some(Val::Null);
        }
        Some(match ty {
            FieldType::Boolean => match s.to_ascii_lowercase().as_str() {
                "true" | "1" => Val::Bool(true),
                "false" | "0" => Val::Bool(false),
                _ => return None,
            },
            FieldType::Int => Val::Int(s.trim().parse().ok()?),
            FieldType::Double | FieldType::Currency => Val::Num(s.trim().parse().ok()?),
            FieldType::Date => Val::Date(parse_date(s)?),
            FieldType::DateTime => Val::DateTime(parse_datetime(s)?),
            _ => Val::Str(s.to_owned()),
        })
    }
}

fn push_num(out: &mut String, n: f64) {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        let _ = write!(out, "{n:.1}");
    } else {
        let _ = write!(out, "{n}");
    }
}

/// Writes `2024-01-15T10:20:30.000` followed by `zone` (`+0000` or `Z`).
pub(crate) fn push_datetime(out: &mut String, t: i64, zone: &str) {
    let dt = DateTime::<Utc>::from_timestamp(t, 0).unwrap_or_default();
    let _ = write!(out, "{}.000{zone}", dt.format("%Y-%m-%dT%H:%M:%S"));
}

fn push_date(out: &mut String, days: i64) {
    let dt = DateTime::<Utc>::from_timestamp(days * 86_400, 0).unwrap_or_default();
    let _ = write!(out, "{}", dt.format("%Y-%m-%d"));
}

/// Parses a SOQL/ISO date-time literal (`2024-01-01T00:00:00Z`,
/// `2024-01-01T00:00:00.000+0000`, `...+01:00`) to unix seconds (the
/// fraction dropped; see [`parse_datetime_nanos`]).
pub(crate) fn parse_datetime(s: &str) -> Option<i64> {
    parse_datetime_nanos(s).map(|(secs, _)| secs)
}

/// Parses a date-time literal to unix seconds and the nanoseconds past them.
pub(crate) fn parse_datetime_nanos(s: &str) -> Option<(i64, u32)> {
    let s = s.trim();
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f%#z", "%Y-%m-%dT%H:%M:%S%#z"] {
        if let Ok(dt) = DateTime::parse_from_str(s, fmt) {
            return Some((dt.timestamp(), dt.timestamp_subsec_nanos()));
        }
    }
    let z = s.strip_suffix('Z')?;
    chrono::NaiveDateTime::parse_from_str(z, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|n| {
            let t = n.and_utc();
            (t.timestamp(), t.timestamp_subsec_nanos())
        })
}

/// Parses `YYYY-MM-DD` to days since the epoch.
pub(crate) fn parse_date(s: &str) -> Option<i64> {
    let d = NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok()?;
    Some(
        d.and_hms_opt(0, 0, 0)?
            .and_utc()
            .timestamp()
            .div_euclid(86_400),
    )
}

/// Object counts and value generation for one (seed, size).
#[derive(Debug, Clone)]
pub(crate) struct Org {
    pub(crate) seed: u64,
    size: u64,
    /// Where the generated history ends: the sandbox clock's start (unix seconds).
    pub(crate) epoch: i64,
}

/// Record-number offset so generated ids look like a real org's.
const ID_BASE: u64 = 0x2_0000_0000;
const SALT_TIME: u64 = 0x5F_0001;
const SALT_MOD: u64 = 0x5F_0002;
const SALT_VAL: u64 = 0x5F_0003;
const SALT_EMAIL: u64 = 0x5F_0004;

impl Org {
    pub(crate) fn new(seed: u64, size: usize, epoch: i64) -> Self {
        Self {
            seed,
            size: size as u64,
            epoch,
        }
    }

    /// Number of generated records of `obj`.
    pub(crate) fn count(&self, obj: SObject) -> u64 {
        let s = self.size;
        match obj {
            SObject::Account => (s / 10).max(1),
            SObject::Contact => s,
            SObject::Lead => s / 2,
            SObject::Opportunity => (s / 5).max(1),
            SObject::Campaign => (s / 100).clamp(1, 500),
            SObject::CampaignMember => s,
            SObject::User => (5 + s / 1_000).min(200),
        }
    }

    /// The 18-character id of record `i` of `obj`.
    pub(crate) fn id(&self, obj: SObject, i: u64) -> String {
        make_id(obj.key_prefix(), i)
    }

    /// The record index of a 15- or 18-character id of `obj`.
    pub(crate) fn parse_id(&self, obj: SObject, id: &str) -> Option<u64> {
        if (id.len() != 15 && id.len() != 18) || !id.is_ascii() {
            return None;
        }
        if !id.starts_with(obj.key_prefix()) || &id[3..6] != "5g0" {
            return None;
        }
        if id.len() == 18 && checksum(&id[..15]) != id[15..] {
            return None;
        }
        parse_base62(&id[6..15])?.checked_sub(ID_BASE)
    }

    /// `CreatedDate` of generated record `i` (never decreases with `i`).
    pub(crate) fn created(&self, obj: SObject, i: u64) -> i64 {
        let n = self.count(obj).max(1) as i64;
        let start = self.epoch - HISTORY_SECS;
        let step = HISTORY_SECS / (n + 1);
        let jitter = (h(self.seed, SALT_TIME ^ obj as u64, i) % step.max(1) as u64) as i64;
        start + step * i as i64 + jitter / 2
    }

    /// `LastModifiedDate`/`SystemModstamp` of generated record `i`.
    pub(crate) fn modified(&self, obj: SObject, i: u64) -> i64 {
        let created = self.created(obj, i);
        let span = (self.epoch - 60 - created).max(1);
        let r = h(self.seed, SALT_MOD ^ obj as u64, i);
        if r.is_multiple_of(3) {
            created
        } else {
            created + (r >> 8) as i64 % span
        }
    }

    fn user_id(&self, k: u64) -> Val {
        Val::Str(self.id(SObject::User, k % self.count(SObject::User)))
    }

    /// Generated value of field number `f` (in [`SObject::fields`] order) of record `i`.
    pub(crate) fn value(&self, obj: SObject, i: u64, field: &str) -> Val {
        let seed = self.seed;
        let r = |salt: &str| h(seed, SALT_VAL ^ fx(salt) ^ obj as u64, i);
        let s = |v: &str| Val::Str(v.to_owned());
        match field {
            "Id" => return Val::Str(self.id(obj, i)),
            "IsDeleted" => return Val::Bool(false),
            "CreatedDate" => return Val::DateTime(self.created(obj, i)),
            "LastModifiedDate" | "SystemModstamp" => return Val::DateTime(self.modified(obj, i)),
            "CreatedById" | "LastModifiedById" | "OwnerId" => return self.user_id(r(field)),
            "External_Id__c" => return Val::Null,
            _ => {}
        }
        let p = match obj {
            SObject::Contact => person(seed, i),
            SObject::Lead => person(seed, self.size + i),
            SObject::User => person(seed ^ 0x05E2, i),
            _ => person(seed, r("person") % self.size.max(1)),
        };
        let days = |t: i64| t.div_euclid(86_400);
        match (obj, field) {
            (SObject::Account, "Name") => Val::Str(account_name(seed, i)),
            (_, "Type") => Val::Str(pick_value(obj, field, r(field))),
            (_, "Industry" | "LeadSource" | "Status" | "StageName" | "TimeZoneSidKey") => {
                Val::Str(pick_value(obj, field, r(field)))
            }
            (SObject::Account, "BillingStreet") | (SObject::Contact, "MailingStreet") => {
                Val::Str(p.address.line1.clone())
            }
            (SObject::Account, "BillingCity")
            | (SObject::Contact, "MailingCity")
            | (SObject::Lead, "City") => s(p.address.city),
            (SObject::Account, "BillingState")
            | (SObject::Contact, "MailingState")
            | (SObject::Lead, "State") => {
                if p.address.state.is_empty() {
                    Val::Null
                } else {
                    s(p.address.state)
                }
            }
            (SObject::Account, "BillingPostalCode") | (SObject::Contact, "MailingPostalCode") => {
                Val::Str(p.address.postal_code.clone())
            }
            (SObject::Account, "BillingCountry")
            | (SObject::Contact, "MailingCountry")
            | (SObject::Lead, "Country") => s(p.address.country),
            (_, "Phone") => Val::Str(p.phone.clone()),
            (SObject::Account, "Website") => Val::Str(format!(
                "https://www.{}.example.com",
                account_name(seed, i).to_ascii_lowercase().replace(' ', "-")
            )),
            (SObject::Account, "NumberOfEmployees") => Val::Int(10 + (r(field) % 5_000) as i64),
            (SObject::Account, "AnnualRevenue") => {
                Val::Num((100_000 + r(field) % 50_000_000) as f64)
            }
            (_, "Description") => {
                if r(field).is_multiple_of(2) {
                    Val::Null
                } else {
                    s("Generated by the weft sandbox.\nSecond line, with \"quotes\", commas.")
                }
            }
            (SObject::Contact, "AccountId") | (SObject::Opportunity, "AccountId") => {
                Val::Str(self.id(SObject::Account, r(field) % self.count(SObject::Account)))
            }
            (_, "FirstName") => s(p.first_name),
            (_, "LastName") => s(p.last_name),
            (_, "Name") => match obj {
                SObject::Opportunity => Val::Str(format!(
                    "{} - {}",
                    account_name(seed, r("AccountId") % self.count(SObject::Account)),
                    pick(&["Renewal", "Expansion", "New Deal", "Pilot"], seed, 7, i)
                )),
                SObject::Campaign => Val::Str(format!("Webinar {:03}: weft in practice", i + 1)),
                _ => Val::Str(p.full_name()),
            },
            (_, "Title") => s(pick(
                &[
                    "CTO",
                    "VP Engineering",
                    "Data Engineer",
                    "Analyst",
                    "Head of Growth",
                ],
                seed,
                fx("title"),
                i + obj as u64 * 1_000_003,
            )),
            (SObject::User, "Email") => Val::Str(format!(
                "{}.{}@weft-sandbox.example.com",
                p.first_name.to_ascii_lowercase(),
                p.last_name.to_ascii_lowercase()
            )),
            (SObject::User, "Username") => Val::Str(format!(
                "{}.{}{i}@weft-sandbox.example.com",
                p.first_name.to_ascii_lowercase(),
                p.last_name.to_ascii_lowercase()
            )),
            (SObject::User, "Alias") => Val::Str(
                format!("{}{}", &p.first_name[..1], p.last_name)
                    .chars()
                    .take(8)
                    .collect::<String>()
                    .to_ascii_lowercase(),
            ),
            (_, "Email") => {
                let e = h(seed, SALT_EMAIL, i);
                let variant = if e.is_multiple_of(5) {
                    1
                } else if e.is_multiple_of(11) {
                    2
                } else {
                    0
                };
                Val::Str(p.email_variant(variant))
            }
            (SObject::Lead, "Company") => s(p.company),
            (_, "HasOptedOutOfEmail") => Val::Bool(r(field).is_multiple_of(10)),
            (_, "Birthdate") => Val::Date(days(self.epoch) - 8_000 - (r(field) % 15_000) as i64),
            (_, "Webinar_Source__c") => {
                if r(field).is_multiple_of(3) {
                    Val::Str(format!(
                        "Webinar {:03}",
                        1 + r("web") % self.count(SObject::Campaign)
                    ))
                } else {
                    Val::Null
                }
            }
            (_, "IsConverted") => Val::Bool(false),
            (_, "Amount") => Val::Num((1_000 + r(field) % 200_000) as f64),
            (_, "Probability") => Val::Num((r(field) % 11 * 10) as f64),
            (_, "CloseDate") => {
                Val::Date(days(self.created(obj, i)) + 30 + (r(field) % 120) as i64)
            }
            (_, "IsClosed") => {
                let st = pick_value(obj, "StageName", r("StageName"));
                Val::Bool(st.starts_with("Closed"))
            }
            (_, "IsWon") => Val::Bool(pick_value(obj, "StageName", r("StageName")) == "Closed Won"),
            (_, "StartDate") => Val::Date(days(self.created(obj, i)) + 14),
            (_, "EndDate") => Val::Date(days(self.created(obj, i)) + 15),
            (_, "IsActive") => Val::Bool(!r(field).is_multiple_of(4)),
            (_, "BudgetedCost") => Val::Num((500 + r(field) % 20_000) as f64),
            (SObject::CampaignMember, "CampaignId") => {
                Val::Str(self.id(SObject::Campaign, r(field) % self.count(SObject::Campaign)))
            }
            (SObject::CampaignMember, "ContactId") => Val::Str(self.id(SObject::Contact, i)),
            (SObject::CampaignMember, "LeadId") => Val::Null,
            (_, "HasResponded") => Val::Bool(r("Status") % 4 >= 2),
            (_, "FirstRespondedDate") => {
                if r("Status") % 4 >= 2 {
                    Val::Date(days(self.created(obj, i)))
                } else {
                    Val::Null
                }
            }
            _ => Val::Null,
        }
    }
}

/// An 18-character Salesforce id with key prefix `prefix` and record number `n`.
pub(crate) fn make_id(prefix: &str, n: u64) -> String {
    let mut id = String::with_capacity(18);
    id.push_str(prefix);
    id.push_str("5g0");
    push_base62(&mut id, ID_BASE + n, 9);
    let suffix = checksum(&id);
    id.push_str(&suffix);
    id
}

/// A small stable hash of a field name (for salts).
fn fx(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |acc, b| {
        (acc ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

fn pick_value(obj: SObject, field: &str, r: u64) -> String {
    let values = obj
        .field_index(field)
        .map(|k| obj.fields()[k].values)
        .unwrap_or_default();
    if values.is_empty() {
        return String::new();
    }
    values[(r % values.len() as u64) as usize].to_owned()
}

fn account_name(seed: u64, i: u64) -> String {
    const PARTS: &[&str] = &[
        "Northwind",
        "Contoso",
        "Fabrikam",
        "Tailspin",
        "Litware",
        "Adatum",
        "Proseware",
        "Lucerne",
        "Woodgrove",
        "Fourth Coffee",
    ];
    const KINDS: &[&str] = &["Labs", "Group", "Systems", "Partners", "Holdings"];
    format!(
        "{} {} {}",
        pick(PARTS, seed, 0xACC0, i),
        pick(KINDS, seed, 0xACC1, i),
        i + 1
    )
}

/// Salesforce's 18-character id suffix: one character per 5-character chunk,
/// encoding which of its characters are upper case.
fn checksum(id15: &str) -> String {
    const MAP: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
    id15.as_bytes()
        .chunks(5)
        .map(|chunk| {
            let bits = chunk
                .iter()
                .enumerate()
                .filter(|(_, c)| c.is_ascii_uppercase())
                .fold(0usize, |acc, (k, _)| acc | (1 << k));
            char::from(MAP[bits & 31])
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::TEST_EPOCH;

    #[test]
    fn ids_round_trip_with_known_checksum() {
        assert_eq!(checksum("001A0000006Vm9r"), "IAC");
        let org = Org::new(1, 100, TEST_EPOCH);
        let id = org.id(SObject::Contact, 42);
        assert_eq!(id.len(), 18);
        assert!(id.starts_with("0035g0"));
        assert_eq!(org.parse_id(SObject::Contact, &id), Some(42));
        assert_eq!(org.parse_id(SObject::Contact, &id[..15]), Some(42));
        assert_eq!(org.parse_id(SObject::Lead, &id), None);
        assert!(org.id(SObject::Contact, 9) < org.id(SObject::Contact, 10));
    }

    #[test]
    fn datetimes_parse_and_render() {
        let t = parse_datetime("2024-01-01T00:00:00Z");
        assert_eq!(t, Some(1_704_067_200));
        assert_eq!(parse_datetime("2024-01-01T00:00:00.000+0000"), t);
        assert_eq!(parse_datetime("2024-01-01T01:00:00+01:00"), t);
        let mut s = String::new();
        push_datetime(&mut s, 1_704_067_200, "+0000");
        assert_eq!(s, "2024-01-01T00:00:00.000+0000");
        assert_eq!(parse_date("1970-01-02"), Some(1));
    }
}
