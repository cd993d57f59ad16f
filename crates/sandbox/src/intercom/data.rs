//! The lazily generated Intercom workspace: contacts (from the shared people
//! generator), companies, conversations, admins and tags, rendered in the
//! shapes of the 2.16 OpenAPI components (`contact`, `company`,
//! `conversation_list_item`, `admin`, `tag`).
//!
//! Generated record `i` of a kind was last updated at `updated(kind, i)`,
//! which never decreases with `i` (see [`crate::timeline`]).

use crate::hash::h;
use crate::json::Obj;
use crate::people::person;

/// How far back generated history goes: about two years.
const HISTORY_SECS: i64 = 730 * 86_400;

/// The workspace (app) id.
pub(crate) const WORKSPACE_ID: &str = "wsbx1234";

/// Admins: (name, email, job title).
pub(crate) const ADMINS: &[(&str, &str, &str)] = &[
    (
        "Ada Support",
        "ada@weft-sandbox.example.com",
        "Support lead",
    ),
    (
        "Grace Success",
        "grace@weft-sandbox.example.com",
        "Customer success",
    ),
    (
        "Linus Sales",
        "linus@weft-sandbox.example.com",
        "Account executive",
    ),
    (
        "Barbara Ops",
        "barbara@weft-sandbox.example.com",
        "Support engineer",
    ),
];

/// Tag names.
pub(crate) const TAGS: &[&str] = &[
    "vip",
    "churn-risk",
    "beta",
    "enterprise",
    "trial",
    "partner",
];

const BROWSERS: &[(&str, &str, &str)] = &[
    ("chrome", "120.0.0.0", "Mac OS X"),
    ("firefox", "121.0", "Windows 10"),
    ("safari", "17.2", "iOS"),
    ("edge", "120.0.2210.91", "Windows 11"),
];
const TITLES: &[&str] = &[
    "Question about billing",
    "Cannot connect the integration",
    "Feedback on the new dashboard",
    "Upgrade to the annual plan",
    "Bug: export is empty",
];

/// The kinds with an update time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Contact,
    Company,
    Conversation,
}

impl Kind {
    fn salt(self) -> u64 {
        match self {
            Kind::Contact => 0x1C_0001,
            Kind::Company => 0x1C_0002,
            Kind::Conversation => 0x1C_0003,
        }
    }
}

/// The generated workspace for one (seed, size).
#[derive(Debug, Clone)]
pub(crate) struct Universe {
    /// Where the generated history ends: the sandbox clock's start (unix seconds).
    pub(crate) epoch: i64,
    pub(crate) seed: u64,
    /// Number of contacts.
    pub(crate) size: u64,
    tag: u32,
}

impl Universe {
    pub(crate) fn new(seed: u64, size: usize, epoch: i64) -> Self {
        Self {
            seed,
            epoch,
            size: size as u64,
            tag: (h(seed, 0x1C_7A6, 0) & 0x0FFF_FFFF) as u32 | 0x6000_0000,
        }
    }

    /// Whether generated contact `i` is a lead (one in ten), not a user.
    pub(crate) fn is_lead(&self, i: u64) -> bool {
        h(self.seed, 0x1C_0E0, i).is_multiple_of(10)
    }

    /// Number of generated records of `kind`.
    pub(crate) fn count(&self, kind: Kind) -> u64 {
        match kind {
            Kind::Contact => self.size,
            Kind::Company => (self.size / 10).max(5),
            Kind::Conversation => self.size / 2,
        }
    }

    /// Last update of generated record `i` (non-decreasing in `i`, before the epoch).
    pub(crate) fn updated(&self, kind: Kind, i: u64) -> i64 {
        let n = self.count(kind).max(1);
        let step = HISTORY_SECS as u64 / n;
        let base = (u128::from(i) * HISTORY_SECS as u128 / u128::from(n)) as i64;
        let jitter = if step > 1 {
            (h(self.seed, kind.salt(), i) % step) as i64
        } else {
            0
        };
        self.epoch - HISTORY_SECS + base + jitter
    }

    /// Creation time of generated record `i` (up to 90 days before its update).
    pub(crate) fn created(&self, kind: Kind, i: u64) -> i64 {
        let back = (h(self.seed, kind.salt() ^ 0xC0, i) % (90 * 86_400)) as i64;
        self.updated(kind, i) - back
    }

    /// The person behind contact `i`: contacts start half way into the
    /// population, so they overlap Stripe's customers and Zendesk's users.
    pub(crate) fn person_index(&self, i: u64) -> u64 {
        i + self.size / 2
    }

    /// Contact index of a person index, when that person is a generated contact.
    pub(crate) fn contact_of_person(&self, p: u64) -> Option<u64> {
        p.checked_sub(self.size / 2).filter(|&i| i < self.size)
    }

    /// The 24-hex-digit id of contact `i` (ids sort like indexes).
    pub(crate) fn contact_id(&self, i: u64) -> String {
        format!("{:08x}{:016x}", self.tag, i)
    }

    /// The contact index of an id (not checked against the count).
    pub(crate) fn parse_contact_id(&self, id: &str) -> Option<u64> {
        let (tag, index) = (id.get(..8)?, id.get(8..)?);
        (id.len() == 24 && u32::from_str_radix(tag, 16).ok()? == self.tag)
            .then(|| u64::from_str_radix(index, 16).ok())
            .flatten()
    }

    pub(crate) fn company_id(&self, k: u64) -> String {
        format!("{:08x}{:016x}", self.tag ^ 0x00C0_FFEE, k)
    }

    /// Company of contact `i`.
    fn contact_company(&self, i: u64) -> u64 {
        h(self.seed, 0x1C_0C0, i) % self.count(Kind::Company)
    }

    /// Contact of conversation `c`.
    fn conversation_contact(&self, c: u64) -> u64 {
        h(self.seed, 0x1C_0D0, c) % self.size.max(1)
    }
}

fn opt_time(o: &mut Obj<'_>, key: &str, t: Option<i64>) {
    match t {
        Some(t) => o.int(key, t),
        None => o.null(key),
    };
}

/// Renders generated contact `i` (mutations are merged by the caller).
pub(crate) fn contact(u: &Universe, i: u64, out: &mut String) {
    let p = person(u.seed, u.person_index(i));
    let id = u.contact_id(i);
    let v = h(u.seed, 0x1C_0E0, i);
    let lead = u.is_lead(i);
    let created = u.created(Kind::Contact, i);
    let updated = u.updated(Kind::Contact, i);
    let (browser, version, os) = BROWSERS[((v >> 8) % BROWSERS.len() as u64) as usize];
    let company = u.contact_company(i);
    let company_id = u.company_id(company);
    let mut o = Obj::new(out);
    o.str("type", "contact")
        .str("id", &id)
        .opt_str(
            "external_id",
            (!lead).then(|| format!("user-{}", p.index)).as_deref(),
        )
        .str("workspace_id", WORKSPACE_ID)
        .str("role", if lead { "lead" } else { "user" })
        .str("email", &p.email_variant(v >> 16))
        .str("email_domain", "example.com")
        .str("phone", &p.phone)
        .str("name", &p.informal_name())
        .null("owner_id")
        .bool("has_hard_bounced", false)
        .bool("marked_email_as_spam", false)
        .bool("unsubscribed_from_emails", v.is_multiple_of(13))
        .int("created_at", created)
        .int("updated_at", updated);
    opt_time(&mut o, "signed_up_at", (!lead).then_some(created));
    o.int("last_seen_at", updated);
    opt_time(
        &mut o,
        "last_replied_at",
        v.is_multiple_of(3).then_some(updated),
    );
    o.null("last_contacted_at")
        .null("last_email_opened_at")
        .null("last_email_clicked_at")
        .null("language_override")
        .str("browser", browser)
        .str("browser_version", version)
        .str("browser_language", "en")
        .str("os", os)
        .null("android_app_name")
        .null("android_app_version")
        .null("android_device")
        .null("android_os_version")
        .null("android_sdk_version")
        .null("android_last_seen_at")
        .null("ios_app_name")
        .null("ios_app_version")
        .null("ios_device")
        .null("ios_os_version")
        .null("ios_sdk_version")
        .null("ios_last_seen_at")
        .raw("custom_attributes", "{}")
        .raw("avatar", r#"{"type":"avatar","image_url":null}"#)
        .raw(
            "tags",
            &format!(
                r#"{{"data":[],"url":"/contacts/{id}/tags","total_count":0,"has_more":false}}"#
            ),
        )
        .raw(
            "notes",
            &format!(
                r#"{{"data":[],"url":"/contacts/{id}/notes","total_count":0,"has_more":false}}"#
            ),
        )
        .raw(
            "companies",
            &format!(
                r#"{{"data":[{{"id":"{company_id}","type":"company","url":"/companies/{company_id}"}}],"url":"/contacts/{id}/companies","total_count":1,"has_more":false}}"#
            ),
        );
    {
        let mut l = o.obj("location");
        l.str("type", "location")
            .str("country", p.address.country)
            .opt_str(
                "region",
                (!p.address.state.is_empty()).then_some(p.address.state),
            )
            .str("city", p.address.city);
        l.end();
    }
    o.raw("social_profiles", r#"{"data":[]}"#);
    o.end();
}

/// Renders company `k`.
pub(crate) fn company(u: &Universe, k: u64, out: &mut String) {
    let p = person(u.seed, k);
    let v = h(u.seed, 0x1C_0F0, k);
    let users = u.size / u.count(Kind::Company).max(1);
    let mut o = Obj::new(out);
    o.str("type", "company")
        .str("id", &u.company_id(k))
        .str("name", &format!("{} {}", p.company, k + 1))
        .str("app_id", WORKSPACE_ID)
        .raw("plan", "{}")
        .str("company_id", &format!("company-{k}"))
        .int("remote_created_at", u.created(Kind::Company, k))
        .int("created_at", u.created(Kind::Company, k))
        .int("updated_at", u.updated(Kind::Company, k))
        .int("last_request_at", u.updated(Kind::Company, k))
        .int("size", 5 + (v % 500) as i64)
        .str(
            "website",
            &format!(
                "https://{}{k}.example.com",
                p.company.to_ascii_lowercase().replace(' ', "-")
            ),
        )
        .str("industry", "Software")
        .int("monthly_spend", (v >> 16) as i64 % 5_000)
        .int("session_count", (v >> 32) as i64 % 1_000)
        .int("user_count", users as i64)
        .raw("custom_attributes", "{}")
        .raw("tags", r#"{"type":"tag.list","tags":[]}"#)
        .raw("segments", r#"{"type":"segment.list","segments":[]}"#);
    o.end();
}

/// Conversation `c`'s id is this plus `c`.
pub(crate) const CONVERSATION_ID_BASE: u64 = 100_000_000;

/// Intercom returns at most this many parts of a conversation.
pub(crate) const MAX_PARTS: usize = 500;

/// Renders conversation `c`, last updated at `updated`.
pub(crate) fn conversation(u: &Universe, c: u64, updated: i64, out: &mut String) {
    let v = h(u.seed, 0x1C_100, c);
    let contact = u.conversation_contact(c);
    let open = v.is_multiple_of(3);
    let mut o = Obj::new(out);
    o.str("type", "conversation")
        .str("id", &(CONVERSATION_ID_BASE + c).to_string())
        .str("title", TITLES[(v % TITLES.len() as u64) as usize])
        .int("created_at", u.created(Kind::Conversation, c))
        .int("updated_at", updated)
        .null("waiting_since")
        .null("snoozed_until")
        .bool("open", open)
        .str("state", if open { "open" } else { "closed" })
        .bool("read", !open)
        .str(
            "priority",
            if v.is_multiple_of(7) { "high" } else { "none" },
        )
        .int(
            "admin_assignee_id",
            1 + (v >> 8) as i64 % ADMINS.len() as i64,
        )
        .int("team_assignee_id", 0)
        .raw(
            "contacts",
            &format!(
                r#"{{"type":"contact.list","contacts":[{{"type":"contact","id":"{}"}}]}}"#,
                u.contact_id(contact)
            ),
        );
    o.end();
}

/// Renders admin `k`.
pub(crate) fn admin(k: usize, out: &mut String) {
    let (name, email, title) = ADMINS.get(k).copied().unwrap_or_default();
    let mut o = Obj::new(out);
    o.str("type", "admin")
        .str("id", &(k + 1).to_string())
        .str("name", name)
        .str("email", email)
        .str("job_title", title)
        .bool("away_mode_enabled", false)
        .bool("away_mode_reassign", false)
        .bool("has_inbox_seat", true)
        .raw("team_ids", "[]")
        .null("avatar");
    o.end();
}

/// Renders the admin the access token belongs to (`GET /me`): the first
/// admin, with the workspace it belongs to (`app`) created at the start of
/// the generated history before `epoch`.
pub(crate) fn me(epoch: i64, out: &mut String) {
    let (name, email, title) = ADMINS.first().copied().unwrap_or_default();
    let mut o = Obj::new(out);
    o.str("type", "admin")
        .str("id", "1")
        .str("name", name)
        .str("email", email)
        .str("job_title", title)
        .bool("away_mode_enabled", false)
        .bool("away_mode_reassign", false)
        .bool("has_inbox_seat", true)
        .raw("team_ids", "[]")
        .raw("avatar", r#"{"type":"avatar","image_url":null}"#)
        .bool("email_verified", true);
    {
        let mut app = o.obj("app");
        app.str("type", "app")
            .str("id_code", WORKSPACE_ID)
            .str("name", "Weft Sandbox")
            .str("region", "US")
            .str("timezone", "Etc/UTC")
            .int("created_at", epoch - HISTORY_SECS - 86_400)
            .bool("identity_verification", false);
        app.end();
    }
    o.end();
}

/// Renders tag `k`.
pub(crate) fn tag(k: usize, out: &mut String) {
    let mut o = Obj::new(out);
    o.str("type", "tag")
        .str("id", &(9_000 + k).to_string())
        .str("name", TAGS.get(k).copied().unwrap_or_default());
    o.end();
}

/// The workspace's teams: name and the admins (indexes into [`ADMINS`]) in it.
pub(crate) const TEAMS: &[(&str, &[usize])] =
    &[("Support", &[0, 3]), ("Success", &[1]), ("Sales", &[2, 3])];

/// Renders team `k` (ids 101, 102, ...; admin ids as [`admin`] numbers them).
pub(crate) fn team(k: usize, out: &mut String) {
    let (name, members) = TEAMS.get(k).copied().unwrap_or_default();
    let ids: Vec<String> = members.iter().map(|a| (a + 1).to_string()).collect();
    let mut o = Obj::new(out);
    o.str("type", "team")
        .str("id", &(101 + k).to_string())
        .str("name", name)
        .raw("admin_ids", &format!("[{}]", ids.join(",")))
        .null("admin_priority_level")
        .int("assignment_limit", 0)
        .str("distribution_method", "round_robin");
    o.end();
}

/// The segments: name and person type (`contact` for leads, `user`).
pub(crate) const SEGMENTS: &[(&str, &str)] = &[("All leads", "contact"), ("All users", "user")];

/// Renders segment `k` with the number of generated contacts of its person
/// type when `count` is given.
pub(crate) fn segment(u: &Universe, k: usize, count: Option<u64>, out: &mut String) {
    let (name, person_type) = SEGMENTS.get(k).copied().unwrap_or_default();
    let created = u.epoch - HISTORY_SECS + 86_400 * k as i64;
    let mut o = Obj::new(out);
    o.str("type", "segment")
        .str("id", &format!("5f0a1c0e0000000000000{k:03}"))
        .str("name", name)
        .int("created_at", created)
        .int("updated_at", created)
        .str("person_type", person_type);
    if let Some(n) = count {
        o.int("count", n as i64);
    }
    o.end();
}

/// A data attribute: name, label, data type, custom, archived.
type Attribute = (&'static str, &'static str, &'static str, bool, bool);

/// The data attributes of contacts: the standard ones the generated contacts
/// carry, and two custom ones (one archived).
pub(crate) const CONTACT_ATTRIBUTES: &[Attribute] = &[
    ("email", "Email", "string", false, false),
    ("name", "Name", "string", false, false),
    ("phone", "Phone", "string", false, false),
    ("external_id", "User ID", "string", false, false),
    ("created_at", "Signed up", "date", false, false),
    ("last_seen_at", "Last seen", "date", false, false),
    ("plan", "Plan", "string", true, false),
    ("legacy_score", "Legacy score", "integer", true, true),
];

/// The data attributes of companies.
pub(crate) const COMPANY_ATTRIBUTES: &[Attribute] = &[
    ("name", "Company name", "string", false, false),
    ("company_id", "Company ID", "string", false, false),
    ("size", "Company size", "integer", false, false),
    ("monthly_spend", "Monthly spend", "float", false, false),
    ("industry", "Industry", "string", true, false),
];

/// Renders data attribute `a` of `model` (`contact`, `company`); custom
/// attributes have an id (and a `custom_attributes.` full name).
pub(crate) fn data_attribute(u: &Universe, model: &str, k: usize, a: Attribute, out: &mut String) {
    let (name, label, data_type, custom, archived) = a;
    let created = u.epoch - HISTORY_SECS + 3_600 * k as i64;
    let full_name = if custom {
        format!("custom_attributes.{name}")
    } else {
        name.to_string()
    };
    let mut o = Obj::new(out);
    o.str("type", "data_attribute");
    if custom {
        o.int("id", 9_000 + k as i64);
    }
    o.str("model", model)
        .str("name", name)
        .str("full_name", &full_name)
        .str("label", label)
        .str("description", "")
        .str("data_type", data_type)
        .bool("api_writable", custom)
        .bool("messenger_writable", false)
        .bool("ui_writable", custom)
        .bool("custom", custom)
        .bool("archived", archived);
    if custom {
        o.int("created_at", created)
            .int("updated_at", created)
            .str("admin_id", "1");
    }
    o.end();
}

/// Generated parts of conversation `c` (1 to 3: the contact's opening
/// message, then admin replies and assignments, the last at its generated
/// `updated_at`).
pub(crate) fn generated_parts(u: &Universe, c: u64) -> u64 {
    1 + h(u.seed, 0x1C_1A7, c) % 3
}

/// The id of part `k` of conversation `c` (replies are parts 100, 101, ...).
fn part_id(c: u64, k: u64) -> String {
    (7_000_000_000 + c * 1_000 + k).to_string()
}

/// The ids of the parts conversation `c` serves with `replies` replies.
pub(crate) fn part_ids(u: &Universe, c: u64, replies: usize) -> Vec<String> {
    let ks: Vec<u64> = (0..generated_parts(u, c))
        .chain((0..replies as u64).map(|j| 100 + j))
        .collect();
    let skip = ks.len().saturating_sub(MAX_PARTS);
    ks[skip..].iter().map(|&k| part_id(c, k)).collect()
}

/// Renders conversation `c`'s `conversation_parts` list: the generated
/// parts, then one admin comment per time in `replies`; the newest
/// [`MAX_PARTS`] when there are more, `total_count` counting them all.
pub(crate) fn conversation_parts(u: &Universe, c: u64, replies: &[i64], out: &mut String) {
    let n = generated_parts(u, c);
    let created = u.created(Kind::Conversation, c);
    let updated = u.updated(Kind::Conversation, c);
    let contact = u.contact_id(u.conversation_contact(c));
    let mut parts: Vec<(u64, i64, &str, (&str, String))> = (0..n)
        .map(|k| {
            let at = created + (updated - created) * k as i64 / (n - 1).max(1) as i64;
            let at = if k + 1 == n { updated } else { at };
            let (kind, author) = match k {
                0 => ("comment", ("user", contact.clone())),
                k if k % 2 == 1 => ("comment", ("admin", (1 + k % 4).to_string())),
                _ => ("assignment", ("admin", "1".to_string())),
            };
            (k, at, kind, author)
        })
        .collect();
    parts.extend(
        replies
            .iter()
            .enumerate()
            .map(|(j, &at)| (100 + j as u64, at, "comment", ("admin", "1".to_string()))),
    );
    let total = parts.len();
    let skip = total.saturating_sub(MAX_PARTS);
    out.push_str(r#"{"type":"conversation_part.list","conversation_parts":["#);
    for (i, (k, at, kind, (author_type, author_id))) in parts.into_iter().skip(skip).enumerate() {
        if i > 0 {
            out.push(',');
        }
        let mut o = Obj::new(out);
        o.str("type", "conversation_part")
            .str("id", &part_id(c, k))
            .str("part_type", kind)
            .str("body", &format!("<p>Part {k} of conversation {c}</p>"))
            .int("created_at", at)
            .int("updated_at", at)
            .int("notified_at", at)
            .null("assigned_to")
            .raw(
                "author",
                &format!(
                    r#"{{"type":"{author_type}","id":"{author_id}","name":null,"email":null}}"#
                ),
            )
            .raw("attachments", "[]")
            .null("external_id")
            .bool("redacted", false);
        o.end();
    }
    out.push_str(&format!(r#"],"total_count":{total}}}"#));
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::state::TEST_EPOCH;

    #[test]
    fn ids_round_trip_and_json_is_valid() {
        let u = Universe::new(5, 300, TEST_EPOCH);
        let id = u.contact_id(77);
        assert_eq!(id.len(), 24);
        assert_eq!(u.parse_contact_id(&id), Some(77));
        assert!(u.contact_id(76) < id);
        assert_eq!(u.parse_contact_id("zz"), None);
        let mut s = String::new();
        contact(&u, 77, &mut s);
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["id"], id);
        assert_eq!(u.contact_of_person(u.person_index(77)), Some(77));
    }
}
