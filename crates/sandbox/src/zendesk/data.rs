//! The lazily generated Zendesk account: users (from the shared people
//! generator), organizations, tickets, groups and ticket fields, rendered in
//! the shapes of `openapi-src.yaml` (`UserForAdmin`, `TicketObject`,
//! `OrganizationObject`, `GroupObject`, `TicketFieldObject`).
//!
//! Generated record `i` of a kind was last updated at `updated(kind, i)`,
//! which never decreases with `i` (see [`crate::timeline`]).

use crate::hash::h;
use crate::json::Obj;
use crate::people::person;

/// How far back generated history goes: about two years.
pub(crate) const HISTORY_SECS: i64 = 730 * 86_400;

/// First user id (users are `USER_BASE + index`).
pub(crate) const USER_BASE: u64 = 361_000_000_000;
/// Id of the admin the credentials authenticate as (`users/me`); not one of
/// the generated users the exports serve.
pub(crate) const AGENT_ID: u64 = USER_BASE - 1;
/// First organization id.
const ORG_BASE: u64 = 362_000_000_000;
/// First group id.
pub(crate) const GROUP_BASE: u64 = 363_000_000_000;
/// First ticket field id.
pub(crate) const FIELD_BASE: u64 = 364_000_000_000;
/// First brand id (the first brand is the default one every ticket has).
pub(crate) const BRAND_BASE: u64 = 365_000_000_000;
/// First ticket form id (the first form is the default one every ticket has).
pub(crate) const FORM_BASE: u64 = 366_000_000_000;

/// Number of groups (agents' teams).
pub(crate) const GROUPS: &[&str] = &[
    "Support",
    "Billing",
    "Escalations",
    "Onboarding",
    "Enterprise",
    "Tier 2",
];

const STATUSES: &[&str] = &["new", "open", "pending", "hold", "solved", "solved"];
const PRIORITIES: &[&str] = &["low", "normal", "normal", "high", "urgent"];
const TYPES: &[&str] = &["question", "incident", "problem", "task"];
const SUBJECTS: &[&str] = &[
    "Cannot log in",
    "Invoice is wrong",
    "Export fails with a timeout",
    "Feature request: dark mode",
    "Password reset email never arrives",
    "Charged twice this month",
    "API returns 500",
    "How do I add a teammate?",
];
const TIME_ZONES: &[(&str, &str)] = &[
    ("Pacific Time (US & Canada)", "America/Los_Angeles"),
    ("Eastern Time (US & Canada)", "America/New_York"),
    ("London", "Europe/London"),
    ("Berlin", "Europe/Berlin"),
];

/// The kinds whose records carry an update time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    User,
    Organization,
    Ticket,
}

impl Kind {
    fn salt(self) -> u64 {
        match self {
            Kind::User => 0x2E_0001,
            Kind::Organization => 0x2E_0002,
            Kind::Ticket => 0x2E_0003,
        }
    }
}

/// Unix seconds as Zendesk's ISO 8601 (`2026-11-01T00:00:00Z`).
pub(crate) fn iso(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// The generated account for one (seed, size).
#[derive(Debug, Clone)]
pub(crate) struct Universe {
    /// Where the generated history ends: the sandbox clock's start (unix seconds).
    pub(crate) epoch: i64,
    pub(crate) seed: u64,
    /// Users and tickets.
    pub(crate) size: u64,
}

impl Universe {
    pub(crate) fn new(seed: u64, size: usize, epoch: i64) -> Self {
        Self {
            seed,
            epoch,
            size: size as u64,
        }
    }

    /// Number of generated records of `kind`.
    pub(crate) fn count(&self, kind: Kind) -> u64 {
        match kind {
            Kind::User | Kind::Ticket => self.size,
            Kind::Organization => (self.size / 20).max(3),
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

    /// Creation time of generated record `i` (up to 60 days before its update).
    pub(crate) fn created(&self, kind: Kind, i: u64) -> i64 {
        let updated = self.updated(kind, i);
        let back = (h(self.seed, kind.salt() ^ 0xC0, i) % (60 * 86_400)) as i64;
        (updated - back).max(self.epoch - HISTORY_SECS - 60 * 86_400)
    }

    /// The shared-population person behind user `i`: users start a third of
    /// the way into the population, so they overlap Stripe's customers.
    pub(crate) fn person_index(&self, i: u64) -> u64 {
        i + self.size / 3
    }

    /// User index of a person index, when that person is a generated user.
    pub(crate) fn user_of_person(&self, p: u64) -> Option<u64> {
        p.checked_sub(self.size / 3).filter(|&i| i < self.size)
    }

    pub(crate) fn organization_id(&self, k: u64) -> u64 {
        ORG_BASE + k
    }

    /// Organization of user `i`, if any (most users have one).
    pub(crate) fn user_organization(&self, i: u64) -> Option<u64> {
        let v = h(self.seed, 0x2E_0A0, i);
        (!v.is_multiple_of(5)).then(|| self.organization_id(v % self.count(Kind::Organization)))
    }

    /// Requester (user index) of ticket `i`.
    pub(crate) fn ticket_requester(&self, i: u64) -> u64 {
        h(self.seed, 0x2E_0B0, i) % self.size.max(1)
    }

    /// Whether generated user `i` is an agent (one in fifty), and its default group.
    pub(crate) fn user_agent_group(&self, i: u64) -> Option<u64> {
        let v = h(self.seed, 0x2E_0C0, i);
        v.is_multiple_of(50)
            .then(|| GROUP_BASE + v % GROUPS.len() as u64)
    }

    /// The status generated ticket `i` was generated with.
    pub(crate) fn ticket_status(&self, i: u64) -> &'static str {
        let v = h(self.seed, 0x2E_0D0, i);
        STATUSES[((v >> 8) % STATUSES.len() as u64) as usize]
    }

    /// The group generated ticket `i` is assigned to.
    pub(crate) fn ticket_group(&self, i: u64) -> u64 {
        let v = h(self.seed, 0x2E_0D0, i);
        GROUP_BASE + (v >> 16) % GROUPS.len() as u64
    }

    /// The name of organization `k`.
    pub(crate) fn organization_name(&self, k: u64) -> String {
        format!("{} {}", person(self.seed, k).company, k + 1)
    }
}

/// Generated comments of ticket `i` (1 to 3: the requester's description,
/// then the agent's public reply and an internal note).
pub(crate) fn generated_comments(u: &Universe, i: u64) -> u64 {
    1 + h(u.seed, 0x2E_C0C, i) % 3
}

/// The id of comment `k` of ticket `i` (added comments are 100, 101, ...).
pub(crate) fn comment_id(i: u64, k: u64) -> u64 {
    20_000_000_000 + i * 1_000 + k
}

/// Renders comment `k` of ticket `i`, written at `at` with `body`
/// (generated ones: `None`, at times between the ticket's creation and its
/// generated `updated_at`); comments after the first are the agent's, the
/// third an internal note.
pub(crate) fn comment(u: &Universe, i: u64, k: u64, added: Option<(i64, &str)>, out: &mut String) {
    let n = generated_comments(u, i);
    let (created, updated) = (u.created(Kind::Ticket, i), u.updated(Kind::Ticket, i));
    let (at, body) = match added {
        Some((at, body)) => (at, body.to_string()),
        None => {
            let at = created + (updated - created) * k as i64 / (n - 1).max(1) as i64;
            let at = if k + 1 == n { updated } else { at };
            (at, format!("Comment {k} on ticket {}", i + 1))
        }
    };
    let author = if k == 0 {
        USER_BASE + u.ticket_requester(i)
    } else {
        AGENT_ID
    };
    let id = comment_id(i, k);
    let mut o = Obj::new(out);
    o.int("id", id as i64)
        .str("type", "Comment")
        .int("author_id", author as i64)
        .str("body", &body)
        .str(
            "html_body",
            &format!("<div class=\"zd-comment\"><p>{body}</p></div>"),
        )
        .str("plain_body", &body)
        .bool("public", k != 2)
        .raw("attachments", "[]")
        .int("audit_id", (id + 500) as i64)
        .raw(
            "via",
            r#"{"channel":"web","source":{"from":{},"to":{},"rel":null}}"#,
        )
        .str("created_at", &iso(at))
        .raw("metadata", r#"{"system":{},"custom":{}}"#);
    o.end();
}

fn push_strs(out: &mut String, items: &[&str]) {
    out.push('[');
    for (n, s) in items.iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        crate::json::push_str_lit(out, s);
    }
    out.push(']');
}

/// Renders generated user `i` (an end user, or an agent for one in fifty).
pub(crate) fn user(u: &Universe, base_url: &str, i: u64, out: &mut String) {
    let p = person(u.seed, u.person_index(i));
    let id = USER_BASE + i;
    let v = h(u.seed, 0x2E_0C0, i);
    let agent = v.is_multiple_of(50);
    let (tz, iana) = TIME_ZONES[(v % TIME_ZONES.len() as u64) as usize];
    let mut o = Obj::new(out);
    o.int("id", id as i64)
        .str("url", &format!("{base_url}/api/v2/users/{id}.json"))
        .str("name", &p.full_name())
        .str("email", &p.email_variant(v >> 8))
        .str("created_at", &iso(u.created(Kind::User, i)))
        .str("updated_at", &iso(u.updated(Kind::User, i)))
        .str("time_zone", tz)
        .str("iana_time_zone", iana)
        .str("phone", &p.phone)
        .bool("shared_phone_number", false)
        .null("photo")
        .int("locale_id", 1)
        .str("locale", "en-US");
    match u.user_organization(i) {
        Some(org) => o.int("organization_id", org as i64),
        None => o.null("organization_id"),
    };
    o.str("role", if agent { "agent" } else { "end-user" })
        .bool("verified", !v.is_multiple_of(7))
        .null("external_id")
        .raw("tags", "[]")
        .str("alias", "")
        .bool("active", true)
        .bool("shared", false)
        .bool("shared_agent", false);
    if agent {
        o.str("last_login_at", &iso(u.updated(Kind::User, i)));
    } else {
        o.null("last_login_at");
    }
    o.bool("two_factor_auth_enabled", false)
        .null("signature")
        .str("details", "")
        .str("notes", "");
    if agent {
        o.int("role_type", 0);
    } else {
        o.null("role_type");
    }
    o.null("custom_role_id")
        .bool("moderator", agent)
        .str(
            "ticket_restriction",
            if agent { "groups" } else { "requested" },
        )
        .bool("only_private_comments", false)
        .bool("restricted_agent", agent)
        .bool("suspended", false);
    if agent {
        o.int(
            "default_group_id",
            (GROUP_BASE + v % GROUPS.len() as u64) as i64,
        );
    } else {
        o.null("default_group_id");
    }
    o.bool("report_csv", agent).raw("user_fields", "{}");
    o.end();
}

/// Renders the admin the credentials act as (`GET /api/v2/users/me`), with
/// `email`, created at the start of the generated history.
pub(crate) fn agent(u: &Universe, base_url: &str, email: &str, out: &mut String) {
    let since = iso(u.epoch - HISTORY_SECS - 86_400);
    let mut o = Obj::new(out);
    o.int("id", AGENT_ID as i64)
        .str("url", &format!("{base_url}/api/v2/users/{AGENT_ID}.json"))
        .str("name", "Weft Sandbox Admin")
        .str("email", email)
        .str("created_at", &since)
        .str("updated_at", &since)
        .str("time_zone", "UTC")
        .str("iana_time_zone", "Etc/UTC")
        .null("phone")
        .null("shared_phone_number")
        .null("photo")
        .int("locale_id", 1)
        .str("locale", "en-US")
        .null("organization_id")
        .str("role", "admin")
        .bool("verified", true)
        .null("external_id")
        .raw("tags", "[]")
        .str("alias", "")
        .bool("active", true)
        .bool("shared", false)
        .bool("shared_agent", false)
        .str("last_login_at", &iso(u.epoch))
        .bool("two_factor_auth_enabled", false)
        .null("signature")
        .str("details", "")
        .str("notes", "")
        .int("role_type", 4)
        .null("custom_role_id")
        .bool("moderator", true)
        .null("ticket_restriction")
        .bool("only_private_comments", false)
        .bool("restricted_agent", false)
        .bool("suspended", false)
        .int("default_group_id", GROUP_BASE as i64)
        .bool("report_csv", true)
        .raw("user_fields", "{}")
        .str("authenticity_token", "weft-sandbox-authenticity-token");
    o.end();
}

/// Renders organization `k`.
pub(crate) fn organization(u: &Universe, base_url: &str, k: u64, out: &mut String) {
    let p = person(u.seed, k);
    let id = u.organization_id(k);
    let domain = format!(
        "{}{}.example.com",
        p.company.to_ascii_lowercase().replace(' ', "-"),
        k
    );
    let mut o = Obj::new(out);
    o.str("url", &format!("{base_url}/api/v2/organizations/{id}.json"))
        .int("id", id as i64)
        .str("name", &u.organization_name(k))
        .bool("shared_tickets", false)
        .bool("shared_comments", false)
        .null("external_id")
        .str("created_at", &iso(u.created(Kind::Organization, k)))
        .str("updated_at", &iso(u.updated(Kind::Organization, k)));
    push_strs(o.value("domain_names"), &[&domain]);
    o.str("details", "")
        .str("notes", "")
        .null("group_id")
        .raw("tags", "[]")
        .raw("organization_fields", "{}");
    o.end();
}

/// Renders generated ticket `i` as generated (mutations are merged by the caller).
pub(crate) fn ticket(u: &Universe, base_url: &str, i: u64, out: &mut String) {
    let id = i + 1;
    let v = h(u.seed, 0x2E_0D0, i);
    let requester = u.ticket_requester(i);
    let subject = SUBJECTS[(v % SUBJECTS.len() as u64) as usize];
    let status = u.ticket_status(i);
    let group = u.ticket_group(i);
    let updated = u.updated(Kind::Ticket, i);
    let mut o = Obj::new(out);
    o.str("url", &format!("{base_url}/api/v2/tickets/{id}.json"))
        .int("id", id as i64)
        .null("external_id")
        .raw(
            "via",
            r#"{"channel":"web","source":{"from":{},"to":{},"rel":null}}"#,
        )
        .str("created_at", &iso(u.created(Kind::Ticket, i)))
        .str("updated_at", &iso(updated))
        .int("generated_timestamp", updated)
        .str("type", TYPES[((v >> 24) % TYPES.len() as u64) as usize])
        .str("subject", subject)
        .str("raw_subject", subject)
        .str(
            "description",
            &format!("{subject}. Reported through the help center (ticket {id})."),
        )
        .str(
            "priority",
            PRIORITIES[((v >> 32) % PRIORITIES.len() as u64) as usize],
        )
        .str("status", status)
        .null("recipient")
        .int("requester_id", (USER_BASE + requester) as i64)
        .int("submitter_id", (USER_BASE + requester) as i64);
    if status == "new" {
        o.null("assignee_id");
    } else {
        o.int("assignee_id", USER_BASE as i64);
    }
    match u.user_organization(requester) {
        Some(org) => o.int("organization_id", org as i64),
        None => o.null("organization_id"),
    };
    o.int("group_id", group as i64)
        .raw("collaborator_ids", "[]")
        .raw("follower_ids", "[]")
        .raw("email_cc_ids", "[]")
        .null("forum_topic_id")
        .null("problem_id")
        .bool("has_incidents", false)
        .bool("is_public", true)
        .null("due_at")
        .raw(
            "tags",
            if v.is_multiple_of(3) {
                r#"["vip"]"#
            } else {
                "[]"
            },
        )
        .raw("custom_fields", "[]")
        .null("satisfaction_rating")
        .raw("sharing_agreement_ids", "[]")
        .raw("followup_ids", "[]")
        .int("ticket_form_id", FORM_BASE as i64)
        .int("brand_id", BRAND_BASE as i64)
        .bool("allow_channelback", false)
        .bool("allow_attachments", true)
        .bool("from_messaging_channel", false);
    o.end();
}

/// Renders group `k` (created the day before history begins, which ends at `epoch`).
pub(crate) fn group(base_url: &str, epoch: i64, k: usize, out: &mut String) {
    let id = GROUP_BASE + k as u64;
    let mut o = Obj::new(out);
    o.str("url", &format!("{base_url}/api/v2/groups/{id}.json"))
        .int("id", id as i64)
        .bool("is_public", true)
        .str("name", GROUPS.get(k).copied().unwrap_or_default())
        .str("description", "")
        .bool("default", k == 0)
        .bool("deleted", false)
        .str("created_at", &iso(epoch - HISTORY_SECS - 86_400))
        .str("updated_at", &iso(epoch - HISTORY_SECS - 86_400));
    o.end();
}

/// The ticket fields: (type, title, system field).
pub(crate) const TICKET_FIELDS: &[(&str, &str, bool)] = &[
    ("subject", "Subject", true),
    ("description", "Description", true),
    ("status", "Status", true),
    ("tickettype", "Type", true),
    ("priority", "Priority", true),
    ("group", "Group", true),
    ("assignee", "Assignee", true),
    ("text", "Order number", false),
    ("checkbox", "Refund requested", false),
];

/// Renders ticket field `k` (created the day before history begins, which ends at `epoch`).
pub(crate) fn ticket_field(base_url: &str, epoch: i64, k: usize, out: &mut String) {
    let (kind, title, system) = TICKET_FIELDS.get(k).copied().unwrap_or_default();
    let id = FIELD_BASE + k as u64;
    let at = iso(epoch - HISTORY_SECS - 86_400);
    let mut o = Obj::new(out);
    o.str("url", &format!("{base_url}/api/v2/ticket_fields/{id}.json"))
        .int("id", id as i64)
        .str("type", kind)
        .str("title", title)
        .str("raw_title", title)
        .str("description", "")
        .str("raw_description", "")
        .int("position", k as i64)
        .bool("active", true)
        .bool("required", kind == "subject")
        .bool("collapsed_for_agents", false)
        .null("regexp_for_validation")
        .str("title_in_portal", title)
        .str("raw_title_in_portal", title)
        .bool("visible_in_portal", system)
        .bool("editable_in_portal", system)
        .bool("required_in_portal", false)
        .null("tag")
        .str("created_at", &at)
        .str("updated_at", &at)
        .bool("removable", !system)
        .str("agent_description", "");
    o.end();
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::state::TEST_EPOCH;

    #[test]
    fn updates_never_decrease_and_stay_in_the_past() {
        let u = Universe::new(3, 5_000, TEST_EPOCH);
        let mut last = i64::MIN;
        for i in 0..5_000 {
            let t = u.updated(Kind::Ticket, i);
            assert!(t >= last && t < u.epoch);
            assert!(u.created(Kind::Ticket, i) <= t);
            last = t;
        }
        assert_eq!(iso(u.epoch), "2026-11-01T00:00:00Z");
    }

    #[test]
    fn renders_valid_json() {
        let u = Universe::new(3, 100, TEST_EPOCH);
        for i in 0..20 {
            let mut s = String::new();
            user(&u, "http://x", i, &mut s);
            let v: serde_json::Value = serde_json::from_str(&s).unwrap();
            assert_eq!(v["id"], USER_BASE + i);
            let mut s = String::new();
            ticket(&u, "http://x", i, &mut s);
            let v: serde_json::Value = serde_json::from_str(&s).unwrap();
            assert_eq!(v["id"], i + 1);
        }
    }
}
