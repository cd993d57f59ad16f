//! The account's plain lists, read in full by clients: brands, ticket forms,
//! custom user and organization fields, group and organization memberships,
//! macros, satisfaction ratings and ticket metrics (`BrandObject`,
//! `TicketFormObject`, `UserFieldObject`, `OrganizationFieldObject`,
//! `GroupMembershipObject`, `OrganizationMembershipObject`, `MacroObject`,
//! `SatisfactionRatingObject`, `TicketMetricObject` of `openapi-src.yaml`).
//!
//! Each is served as Zendesk serves it: cursor pagination with `page[size]`
//! (up to 100) and `page[after]`, `meta.has_more` and `links.next`; without
//! `page[size]`, every record in one offset-style page (`next_page: null`).
//! Ticket forms are never paginated. The configuration lists (brands,
//! forms, fields, macros) are fixed and created the day before history
//! begins; memberships follow the generated users (each agent is a member of
//! its default group, the admin of every group; each user with an
//! organization is its member); every generated ticket generated as `solved`
//! has a satisfaction rating, and every live (undeleted) ticket its metrics,
//! newest ticket first. These follow the records as generated: writes
//! (ticket updates, new users, bulk user and organization calls) do not
//! change them, except that a deleted ticket loses its rating and metrics.
//! Generated users and organizations leave the custom fields unset
//! (`user_fields` and `organization_fields` stay `{}`).

use axum::extract::{RawQuery, State};
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use super::data::{
    self, AGENT_ID, BRAND_BASE, FIELD_BASE, FORM_BASE, GROUP_BASE, GROUPS, HISTORY_SECS, Kind,
    USER_BASE, iso,
};
use super::{Shared, ZendeskState, base_url, cursor_page, query, respond};
use crate::json::Obj;

/// First custom user field id.
const USER_FIELD_BASE: u64 = 367_000_000_000;
/// First custom organization field id.
const ORG_FIELD_BASE: u64 = 368_000_000_000;
/// First group membership id (the admin's are the first `GROUPS.len()`;
/// agent `i`'s is `GROUP_MEMBERSHIP_BASE + 100 + i`).
const GROUP_MEMBERSHIP_BASE: u64 = 369_000_000_000;
/// Organization membership of user `i`: this plus `i`.
const ORG_MEMBERSHIP_BASE: u64 = 370_000_000_000;
/// First macro id.
const MACRO_BASE: u64 = 371_000_000_000;
/// Satisfaction rating of ticket index `i`: this plus `i`.
const RATING_BASE: u64 = 372_000_000_000;
/// Metrics of ticket index `i`: this plus `i`.
const METRIC_BASE: u64 = 373_000_000_000;

/// The brands: (name, subdomain).
const BRANDS: &[(&str, &str)] = &[
    ("Weft Sandbox", "weft-sandbox"),
    ("Acme Billing", "acme-billing"),
];
/// The ticket forms: (name, the ticket fields it shows by index, the brand
/// it is restricted to by index, or `None` for every brand).
const TICKET_FORMS: &[(&str, &[usize], Option<usize>)] = &[
    ("Default Ticket Form", &[0, 1, 2, 3, 4, 5, 6, 7, 8], None),
    ("Billing request", &[0, 1, 2, 4, 7, 8], Some(1)),
];
/// Custom fields: (type, key, title, dropdown options).
type CustomField = (
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
);
/// The custom user fields.
const USER_FIELDS: &[CustomField] = &[
    ("dropdown", "plan", "Plan", &["free", "pro", "enterprise"]),
    ("text", "account_manager", "Account manager", &[]),
    ("checkbox", "beta_tester", "Beta tester", &[]),
];
/// The custom organization fields.
const ORGANIZATION_FIELDS: &[CustomField] = &[
    ("dropdown", "tier", "Tier", &["silver", "gold", "platinum"]),
    ("date", "renewal_date", "Renewal date", &[]),
];
/// The macros: (title, active, personal to the admin).
const MACROS: &[(&str, bool, bool)] = &[
    ("Close and thank the requester", true, false),
    ("Escalate to Tier 2", true, false),
    ("Ask for more details", true, true),
    ("Billing: refund issued", false, false),
];

/// One of the lists, by its endpoint's name (`/api/v2/{name}.json`), which
/// is also the key of its records in a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum List {
    Brands,
    TicketForms,
    UserFields,
    OrganizationFields,
    GroupMemberships,
    OrganizationMemberships,
    Macros,
    SatisfactionRatings,
    TicketMetrics,
}

impl List {
    /// Every list.
    pub(crate) const ALL: [List; 9] = [
        List::Brands,
        List::TicketForms,
        List::UserFields,
        List::OrganizationFields,
        List::GroupMemberships,
        List::OrganizationMemberships,
        List::Macros,
        List::SatisfactionRatings,
        List::TicketMetrics,
    ];

    /// The endpoint's name and the records' key.
    pub(crate) fn name(self) -> &'static str {
        match self {
            List::Brands => "brands",
            List::TicketForms => "ticket_forms",
            List::UserFields => "user_fields",
            List::OrganizationFields => "organization_fields",
            List::GroupMemberships => "group_memberships",
            List::OrganizationMemberships => "organization_memberships",
            List::Macros => "macros",
            List::SatisfactionRatings => "satisfaction_ratings",
            List::TicketMetrics => "ticket_metrics",
        }
    }

    /// The list named `name`.
    pub(crate) fn named(name: &str) -> Option<List> {
        List::ALL.into_iter().find(|l| l.name() == name)
    }
}

/// When the configuration lists were created: the day before history begins.
fn configured_at(epoch: i64) -> String {
    iso(epoch - HISTORY_SECS - 86_400)
}

impl ZendeskState {
    /// The items `list` serves now, in order: an index whose meaning is the
    /// list's (a brand, a user, a ticket, ...).
    fn list_items(&self, list: List) -> Vec<u64> {
        let u = &self.u;
        let fixed = |n: usize| -> Vec<u64> { (0..n as u64).collect() };
        let store = self.read();
        let live = |i: &u64| !store.deleted.iter().any(|d| d.0 == *i);
        match list {
            List::Brands => fixed(BRANDS.len()),
            List::TicketForms => fixed(TICKET_FORMS.len()),
            List::UserFields => fixed(USER_FIELDS.len()),
            List::OrganizationFields => fixed(ORGANIZATION_FIELDS.len()),
            List::Macros => fixed(MACROS.len()),
            // The admin's (0..GROUPS), then each agent's (100 + user index).
            List::GroupMemberships => (0..GROUPS.len() as u64)
                .chain(
                    (0..u.count(Kind::User))
                        .filter(|&i| u.user_agent_group(i).is_some())
                        .map(|i| 100 + i),
                )
                .collect(),
            List::OrganizationMemberships => (0..u.count(Kind::User))
                .filter(|&i| u.user_organization(i).is_some())
                .collect(),
            List::SatisfactionRatings => (0..u.count(Kind::Ticket))
                .filter(|&i| u.ticket_status(i) == "solved")
                .filter(live)
                .collect(),
            List::TicketMetrics => (0..u.count(Kind::Ticket)).rev().filter(live).collect(),
        }
    }

    /// The id of every record `list` serves now, in the order it serves them.
    pub(crate) fn list_ids(&self, list: List) -> Vec<u64> {
        self.list_items(list)
            .into_iter()
            .map(|k| list_id(list, k))
            .collect()
    }

    /// Renders item `k` of `list`.
    fn render_item(&self, list: List, base: &str, k: u64, out: &mut String) {
        let u = &self.u;
        let at = configured_at(u.epoch);
        let id = list_id(list, k);
        let url = format!("{base}/api/v2/{}/{id}.json", list.name());
        let idx = k as usize;
        let mut o = Obj::new(out);
        o.str("url", &url).int("id", id as i64);
        match list {
            List::Brands => {
                let (name, subdomain) = BRANDS.get(idx).copied().unwrap_or_default();
                let forms: Vec<u64> = TICKET_FORMS
                    .iter()
                    .enumerate()
                    .filter(|(_, (_, _, only))| only.is_none_or(|b| b == idx))
                    .map(|(f, _)| FORM_BASE + f as u64)
                    .collect();
                o.str("name", name)
                    .str("brand_url", &format!("https://{subdomain}.zendesk.com"))
                    .str("subdomain", subdomain)
                    .bool("has_help_center", idx == 0)
                    .str(
                        "help_center_state",
                        if idx == 0 { "enabled" } else { "disabled" },
                    )
                    .bool("active", true)
                    .bool("default", idx == 0)
                    .bool("is_deleted", false)
                    .raw("ticket_form_ids", &json!(forms).to_string())
                    .str("signature_template", "{{agent.signature}}");
            }
            List::TicketForms => {
                let (name, fields, only) = TICKET_FORMS.get(idx).copied().unwrap_or_default();
                let fields: Vec<u64> = fields.iter().map(|f| FIELD_BASE + *f as u64).collect();
                let brands: Vec<u64> = only.map(|b| BRAND_BASE + b as u64).into_iter().collect();
                o.str("name", name)
                    .str("raw_name", name)
                    .str("display_name", name)
                    .str("raw_display_name", name)
                    .bool("end_user_visible", true)
                    .int("position", idx as i64)
                    .raw("ticket_field_ids", &json!(fields).to_string())
                    .bool("active", true)
                    .bool("default", idx == 0)
                    .bool("in_all_brands", only.is_none())
                    .raw("restricted_brand_ids", &json!(brands).to_string())
                    .raw("agent_conditions", "[]")
                    .raw("end_user_conditions", "[]");
            }
            List::UserFields | List::OrganizationFields => {
                let (fields, base_id) = if list == List::UserFields {
                    (USER_FIELDS, USER_FIELD_BASE)
                } else {
                    (ORGANIZATION_FIELDS, ORG_FIELD_BASE)
                };
                let (kind, key, title, options) = fields.get(idx).copied().unwrap_or_default();
                o.str("key", key)
                    .str("type", kind)
                    .str("title", title)
                    .str("raw_title", title)
                    .str("description", "")
                    .str("raw_description", "")
                    .int("position", idx as i64)
                    .bool("active", true)
                    .bool("system", false)
                    .null("regexp_for_validation");
                if kind == "checkbox" {
                    o.str("tag", key);
                }
                if !options.is_empty() {
                    let options: Vec<Value> = options
                        .iter()
                        .enumerate()
                        .map(|(n, v)| {
                            json!({
                                "id": base_id * 10 + idx as u64 * 100 + n as u64,
                                "name": capitalized(v),
                                "raw_name": capitalized(v),
                                "value": v,
                            })
                        })
                        .collect();
                    o.raw("custom_field_options", &json!(options).to_string());
                }
            }
            List::GroupMemberships => {
                let (user, group, default, since) = match k.checked_sub(100) {
                    None => (AGENT_ID, GROUP_BASE + k, k == 0, at.clone()),
                    Some(i) => (
                        USER_BASE + i,
                        u.user_agent_group(i).unwrap_or(GROUP_BASE),
                        true,
                        iso(u.created(Kind::User, i)),
                    ),
                };
                o.int("user_id", user as i64)
                    .int("group_id", group as i64)
                    .bool("default", default)
                    .str("created_at", &since)
                    .str("updated_at", &since);
                o.end();
                return;
            }
            List::OrganizationMemberships => {
                let org = u.user_organization(k).unwrap_or_default();
                let since = iso(u.created(Kind::User, k));
                o.int("user_id", (USER_BASE + k) as i64)
                    .int("organization_id", org as i64)
                    .str(
                        "organization_name",
                        &u.organization_name(org.saturating_sub(u.organization_id(0))),
                    )
                    .bool("default", true)
                    .bool("view_tickets", false)
                    .str("created_at", &since)
                    .str("updated_at", &since);
                o.end();
                return;
            }
            List::Macros => {
                let (title, active, personal) = MACROS.get(idx).copied().unwrap_or_default();
                let actions = match idx {
                    0 => json!([
                        {"field": "status", "value": "solved"},
                        {"field": "comment_value", "value": "Thanks for reaching out!"},
                    ]),
                    1 => json!([
                        {"field": "group_id", "value": (GROUP_BASE + 5).to_string()},
                        {"field": "priority", "value": "high"},
                    ]),
                    2 => json!([
                        {"field": "status", "value": "pending"},
                        {"field": "comment_value", "value": "Could you tell us more?"},
                    ]),
                    _ => json!([{"field": "set_tags", "value": "refunded"}]),
                };
                let restriction = if personal {
                    json!({"type": "User", "id": AGENT_ID, "ids": [AGENT_ID]})
                } else {
                    Value::Null
                };
                o.str("title", title)
                    .str("description", "")
                    .bool("active", active)
                    .bool("default", false)
                    .int("position", idx as i64)
                    .raw("actions", &actions.to_string())
                    .raw("restriction", &restriction.to_string());
            }
            List::SatisfactionRatings => {
                let good = !crate::hash::h(u.seed, 0x2E_5A7, k).is_multiple_of(4);
                let at = iso(u.updated(Kind::Ticket, k));
                o.int("ticket_id", (k + 1) as i64)
                    .int("requester_id", (USER_BASE + u.ticket_requester(k)) as i64)
                    .int("assignee_id", USER_BASE as i64)
                    .int("group_id", u.ticket_group(k) as i64)
                    .str("score", if good { "good" } else { "bad" });
                if good {
                    o.str("comment", "Quick and helpful, thanks!")
                        .str("reason", "No reason provided")
                        .int("reason_code", 0);
                } else {
                    o.str("comment", "Took too long.")
                        .str("reason", "The issue took too long to resolve")
                        .int("reason_code", 5);
                }
                o.str("created_at", &at).str("updated_at", &at);
                o.end();
                return;
            }
            List::TicketMetrics => {
                metrics(u, k, &mut o);
                o.end();
                return;
            }
        }
        o.str("created_at", &at).str("updated_at", &at);
        o.end();
    }
}

/// Ticket index `i`'s metrics, from its generated times and status. What a
/// ticket has not reached yet (an assignment, a reply, a solve) is left out:
/// Zendesk's description has no `null` for these fields.
fn metrics(u: &data::Universe, i: u64, o: &mut Obj<'_>) {
    let (created, updated) = (u.created(Kind::Ticket, i), u.updated(Kind::Ticket, i));
    let status = u.ticket_status(i);
    let assigned = (status != "new").then(|| (created + 3_600).min(updated));
    let solved = (status == "solved").then_some(updated);
    let replies = data::generated_comments(u, i).saturating_sub(1);
    let first_reply = (replies > 0).then(|| (created + 1_800).min(updated));
    let minutes = |t: i64| {
        let m = (t - created) / 60;
        json!({"calendar": m, "business": m * 2 / 3}).to_string()
    };
    o.int("ticket_id", (i + 1) as i64)
        .int("group_stations", 1)
        .int("assignee_stations", i64::from(assigned.is_some()))
        .int("reopens", 0)
        .int("replies", replies as i64)
        .str("requester_updated_at", &iso(created))
        .str("status_updated_at", &iso(updated))
        .str("custom_status_updated_at", &iso(updated))
        .str("latest_comment_added_at", &iso(updated))
        .raw("on_hold_time_in_minutes", r#"{"calendar":0,"business":0}"#);
    if let Some(at) = assigned {
        o.str("assignee_updated_at", &iso(at))
            .str("initially_assigned_at", &iso(at))
            .str("assigned_at", &iso(at));
    }
    if let Some(at) = first_reply {
        o.raw("reply_time_in_minutes", &minutes(at))
            .raw(
                "reply_time_in_seconds",
                &json!({"calendar": at - created}).to_string(),
            )
            .raw("requester_wait_time_in_minutes", &minutes(at));
    }
    if let Some(at) = solved {
        o.str("solved_at", &iso(at))
            .raw("first_resolution_time_in_minutes", &minutes(at))
            .raw("full_resolution_time_in_minutes", &minutes(at))
            .raw("agent_wait_time_in_minutes", &minutes(at));
    }
    o.str("created_at", &iso(created))
        .str("updated_at", &iso(updated));
}

/// The id of item `k` of `list`.
fn list_id(list: List, k: u64) -> u64 {
    match list {
        List::Brands => BRAND_BASE + k,
        List::TicketForms => FORM_BASE + k,
        List::UserFields => USER_FIELD_BASE + k,
        List::OrganizationFields => ORG_FIELD_BASE + k,
        List::GroupMemberships => GROUP_MEMBERSHIP_BASE + k,
        List::OrganizationMemberships => ORG_MEMBERSHIP_BASE + k,
        List::Macros => MACRO_BASE + k,
        List::SatisfactionRatings => RATING_BASE + k,
        List::TicketMetrics => METRIC_BASE + k,
    }
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// `GET /api/v2/{list}.json`, authenticated like every route.
pub(crate) async fn serve(
    list: List,
    State(st): State<Shared>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    if let Err(e) = st.authorize(&headers) {
        return *e;
    }
    let q = match query(raw.as_deref()) {
        Ok(q) => q,
        Err(e) => return *e,
    };
    let base = base_url(&headers);
    let items = st.list_items(list);
    let n = items.len();
    let key = list.name();
    let render = |range: std::ops::Range<usize>| {
        let mut s = String::from("[");
        for (pos, k) in items[range].iter().enumerate() {
            if pos > 0 {
                s.push(',');
            }
            st.render_item(list, &base, *k, &mut s);
        }
        s.push(']');
        s
    };
    let paged = if list == List::TicketForms {
        // Ticket forms are one list, whatever the query asks.
        Ok(None)
    } else {
        cursor_page(&q, n, &format!("{base}/api/v2/{key}.json"))
    };
    match paged {
        Ok(None) => respond(
            StatusCode::OK,
            format!(
                r#"{{"{key}":{},"next_page":null,"previous_page":null,"count":{n}}}"#,
                render(0..n)
            ),
        ),
        Ok(Some((range, tail))) => respond(
            StatusCode::OK,
            format!(r#"{{"{key}":{},{tail}"#, render(range)),
        ),
        Err(e) => *e,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn every_list_has_a_name_of_its_own_and_distinct_ids() {
        let mut ids = std::collections::BTreeSet::new();
        for list in List::ALL {
            assert_eq!(List::named(list.name()), Some(list));
            for k in 0..1_000 {
                assert!(ids.insert(list_id(list, k)), "{list:?} {k}");
            }
        }
        assert_eq!(List::named("tickets"), None);
    }
}
