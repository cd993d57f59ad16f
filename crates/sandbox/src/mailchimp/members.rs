//! The audience's members: stored in insertion order (the order list pages
//! are served in), keyed by subscriber hash (MD5 of the lowercased email).

use std::collections::{HashMap, HashSet};

use md5::{Digest, Md5};
use serde::Deserialize as _;
use serde_json::{Map, Value, json};

use crate::hash::h;
use crate::people::person;

/// Merge fields every member has (empty string when not set).
pub(crate) const MERGE_TAGS: [&str; 4] = ["FNAME", "LNAME", "ADDRESS", "PHONE"];

const SALT_UNIQUE: u64 = 0x3A11_0001;

/// Statuses a member can be written with.
pub(crate) const WRITABLE_STATUSES: [&str; 5] = [
    "subscribed",
    "unsubscribed",
    "cleaned",
    "pending",
    "transactional",
];

/// `secs` as Mailchimp writes times: `2026-11-01T00:00:00+00:00`.
pub(crate) fn iso(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%S+00:00").to_string())
        .unwrap_or_default()
}

/// Subscriber hash: MD5 hex of the lowercased, trimmed email.
pub(crate) fn subscriber_hash(email: &str) -> String {
    let digest = Md5::digest(email.trim().to_lowercase().as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether Mailchimp would accept `email` (already trimmed) as real.
pub(crate) fn looks_real(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    let labels: Vec<&str> = domain.split('.').collect();
    !local.is_empty()
        && !email.contains(char::is_whitespace)
        && !domain.contains('@')
        && labels.len() >= 2
        && labels.iter().all(|l| !l.is_empty())
        && labels.last().is_some_and(|tld| tld.len() >= 2)
        && !matches!(domain, "test.com" | "fake.com" | "mailinator.com")
}

/// One list member.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Member {
    pub(crate) email: String,
    pub(crate) hash: String,
    pub(crate) unique_email_id: String,
    pub(crate) web_id: i64,
    pub(crate) status: String,
    pub(crate) merge_fields: Map<String, Value>,
    pub(crate) timestamp_signup: i64,
    pub(crate) timestamp_opt: i64,
    pub(crate) last_changed: i64,
}

/// The members of one audience.
#[derive(Default)]
pub(crate) struct Members {
    pub(crate) all: Vec<Member>,
    by_hash: HashMap<String, usize>,
    /// Hashes permanently deleted: they cannot be re-imported.
    pub(crate) erased: HashSet<String>,
}

/// What [`Members::save`] writes: every member in list order, and the
/// permanently deleted hashes.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Saved {
    members: Vec<Member>,
    erased: Vec<String>,
}

impl Members {
    /// The whole audience as JSON (see [`Members::restore`]).
    pub(crate) fn save(&self) -> Value {
        let mut erased: Vec<String> = self.erased.iter().cloned().collect();
        erased.sort_unstable();
        serde_json::to_value(Saved {
            members: self.all.clone(),
            erased,
        })
        .unwrap_or(Value::Null)
    }

    /// An audience from what [`Members::save`] wrote; an error says what
    /// does not fit (a malformed member, two members with one hash).
    pub(crate) fn restore(saved: &Value) -> Result<Members, String> {
        let saved = Saved::deserialize(saved).map_err(|e| e.to_string())?;
        let mut by_hash = HashMap::with_capacity(saved.members.len());
        for (i, m) in saved.members.iter().enumerate() {
            if m.hash != subscriber_hash(&m.email) {
                return Err(format!(
                    "member {i}: hash {} is not that of its email",
                    m.hash
                ));
            }
            if by_hash.insert(m.hash.clone(), i).is_some() {
                return Err(format!("member {i}: {} appears twice", m.email));
            }
        }
        Ok(Members {
            all: saved.members,
            by_hash,
            erased: saved.erased.into_iter().collect(),
        })
    }

    /// `n` subscribed members from the shared people, changed over the 30
    /// days before `epoch` (where generated history ends).
    pub(crate) fn seeded(seed: u64, n: usize, epoch: i64) -> Self {
        let mut m = Self::default();
        for i in 0..n as u64 {
            let p = person(seed, i);
            let at = epoch - 86_400 * 30 + (i as i64 * 86_400 * 30) / (n as i64).max(1);
            let mut fields = Map::new();
            fields.insert("FNAME".into(), Value::from(p.nickname));
            fields.insert("LNAME".into(), Value::from(p.last_name));
            let status = if h(seed, SALT_UNIQUE ^ 1, i).is_multiple_of(10) {
                "unsubscribed"
            } else {
                "subscribed"
            };
            m.insert(seed, p.email.clone(), status, fields, at);
        }
        m
    }

    pub(crate) fn get(&self, hash: &str) -> Option<&Member> {
        self.by_hash.get(hash).map(|&i| &self.all[i])
    }

    pub(crate) fn get_mut(&mut self, hash: &str) -> Option<&mut Member> {
        self.by_hash.get(hash).map(|&i| &mut self.all[i])
    }

    /// Adds a new member; `email` is stored trimmed.
    pub(crate) fn insert(
        &mut self,
        seed: u64,
        email: String,
        status: &str,
        merge: Map<String, Value>,
        now: i64,
    ) -> &Member {
        let email = email.trim().to_owned();
        let hash = subscriber_hash(&email);
        let n = self.all.len() as u64;
        let mut merge_fields = Map::new();
        for tag in MERGE_TAGS {
            merge_fields.insert(tag.to_owned(), Value::from(""));
        }
        merge_fields.extend(merge);
        let unique = h(seed, SALT_UNIQUE, n) & 0xFF_FFFF_FFFF;
        let member = Member {
            email,
            hash: hash.clone(),
            unique_email_id: format!("{unique:010x}"),
            web_id: 100_000_000 + (unique % 900_000_000) as i64,
            status: status.to_owned(),
            merge_fields,
            timestamp_signup: now,
            timestamp_opt: now,
            last_changed: now,
        };
        self.by_hash.insert(hash, self.all.len());
        self.all.push(member);
        &self.all[self.all.len() - 1]
    }

    /// Removes a member for good.
    pub(crate) fn erase(&mut self, hash: &str) -> bool {
        let Some(i) = self.by_hash.remove(hash) else {
            return false;
        };
        self.all.remove(i);
        for (k, m) in self.all.iter().enumerate().skip(i) {
            self.by_hash.insert(m.hash.clone(), k);
        }
        self.erased.insert(hash.to_owned());
        true
    }
}

impl Member {
    /// Applies a status and merge fields; bumps `last_changed` when anything changed.
    pub(crate) fn apply(
        &mut self,
        status: Option<&str>,
        merge: &Map<String, Value>,
        now: i64,
    ) -> bool {
        let mut changed = false;
        if let Some(s) = status
            && s != self.status
        {
            s.clone_into(&mut self.status);
            changed = true;
        }
        for (k, v) in merge {
            if self.merge_fields.get(k) != Some(v) {
                self.merge_fields.insert(k.clone(), v.clone());
                changed = true;
            }
        }
        if changed {
            self.last_changed = now;
        }
        changed
    }

    /// The member as Mailchimp returns it; `full` adds the fields the batch
    /// response does not carry (`contact_id`, `full_name`, `web_id`, ...).
    pub(crate) fn to_json(&self, list_id: &str, full: bool) -> Value {
        let name = |k: &str| {
            self.merge_fields
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let mut v = json!({
            "id": self.hash,
            "email_address": self.email,
            "unique_email_id": self.unique_email_id,
            "email_type": "html",
            "status": self.status,
            "merge_fields": self.merge_fields,
            "stats": {"avg_open_rate": 0, "avg_click_rate": 0},
            "ip_signup": "",
            "timestamp_signup": iso(self.timestamp_signup),
            "ip_opt": "",
            "timestamp_opt": iso(self.timestamp_opt),
            "member_rating": 2,
            "last_changed": iso(self.last_changed),
            "language": "",
            "vip": false,
            "email_client": "",
            "location": {"latitude": 0, "longitude": 0, "gmtoff": 0, "dstoff": 0, "country_code": "", "timezone": ""},
            "tags_count": 0,
            "tags": [],
            "list_id": list_id,
            "_links": [{
                "rel": "self",
                "href": format!("/3.0/lists/{list_id}/members/{}", self.hash),
                "method": "GET",
                "targetSchema": "https://us6.api.mailchimp.com/schema/3.0/Definitions/Lists/Members/Response.json",
            }],
        });
        if full && let Value::Object(m) = &mut v {
            let full_name = format!("{} {}", name("FNAME"), name("LNAME"))
                .trim()
                .to_owned();
            m.insert(
                "contact_id".into(),
                Value::from(self.unique_email_id.clone() + "c0"),
            );
            m.insert("full_name".into(), Value::from(full_name));
            m.insert("web_id".into(), Value::from(self.web_id));
            m.insert("consents_to_one_to_one_messaging".into(), Value::from(true));
            m.insert("source".into(), Value::from("API - Generic"));
            if let Some(Value::Object(loc)) = m.get_mut("location") {
                loc.insert("region".into(), Value::from(""));
            }
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_and_email_checks() {
        assert_eq!(
            subscriber_hash(" Urist.McVankab@FreddieMacGregor.com "),
            subscriber_hash("urist.mcvankab@freddiemacgregor.com")
        );
        assert_eq!(
            subscriber_hash("Urist.McVankab@freddiemacgregor.com"),
            "3abccf17d9d4b2b3bd09c31ab79cc453"
        );
        assert!(looks_real("bart.smith1@example.com"));
        assert!(!looks_real("not-an-email"));
        assert!(!looks_real("a@b"));
        assert!(!looks_real("someone@test.com"));
        let mut m = Members::seeded(1, 3, crate::state::TEST_EPOCH);
        let hash = m.all[1].hash.clone();
        assert!(m.erase(&m.all[0].hash.clone()));
        assert_eq!(m.get(&hash).map(|x| x.hash.clone()), Some(hash));
        assert_eq!(m.erased.len(), 1);
    }
}
