//! The only stored Stripe data: mutations of customers (updates, deletions,
//! creations), subscription cancellations, and the events they emit.
//! Everything else is generated.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use crate::config::Drift;
use crate::json::Obj;

use super::data::{Kind, Universe};
use super::form::merge_field;
use super::list::{ListParams, Source, SubscriptionStatus};
use super::render::{self, Ctx, DRIFT_FIELD};

/// Stripe API version the sandbox speaks (the spec's version).
pub(crate) const API_VERSION: &str = "2023-08-16";

/// Events are listed for this long after they happen.
pub(crate) const EVENT_WINDOW_SECS: i64 = 30 * 86_400;

/// A customer created after start (through the API or the control API).
#[derive(Debug, Clone)]
pub(crate) struct NewCustomer {
    pub(crate) created: i64,
    /// Created through `POST /v1/customers`: only the fields sent are set.
    pub(crate) blank: bool,
}

/// An event emitted by a mutation, rendered when it happened.
#[derive(Debug, Clone)]
pub(crate) struct StoredEvent {
    pub(crate) created: i64,
    pub(crate) event_type: &'static str,
    pub(crate) body: String,
}

/// Customer mutations, subscription cancellations and stored events.
#[derive(Debug, Default)]
pub(crate) struct Store {
    overrides: HashMap<u64, Map<String, Value>>,
    deleted: HashSet<u64>,
    /// Subscriptions canceled after start: index -> when.
    canceled_subscriptions: HashMap<u64, i64>,
    /// Generated coupons deleted since start.
    deleted_coupons: HashSet<u64>,
    new_customers: Vec<NewCustomer>,
    pub(crate) events: Vec<StoredEvent>,
    /// `POST /v1/customers` creates per (lower-cased) email sent.
    creates_by_email: HashMap<String, usize>,
}

/// What a customer lookup found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Found {
    Live(u64),
    Deleted(u64),
    Missing,
}

impl Store {
    pub(crate) fn customer_count(&self, u: &Universe) -> u64 {
        u.size + self.new_customers.len() as u64
    }

    pub(crate) fn customer_created(&self, u: &Universe, i: u64) -> i64 {
        match i.checked_sub(u.size) {
            Some(k) => self
                .new_customers
                .get(k as usize)
                .map_or(i64::MAX, |c| c.created),
            None => u.created(Kind::Customer, i),
        }
    }

    pub(crate) fn is_deleted(&self, i: u64) -> bool {
        self.deleted.contains(&i)
    }

    /// Whether generated coupon `k` was deleted.
    pub(crate) fn is_coupon_deleted(&self, k: u64) -> bool {
        self.deleted_coupons.contains(&k)
    }

    /// Deletes generated coupon `k` (no longer listed or retrievable) and
    /// emits `coupon.deleted` with the coupon as it was; `false` when it
    /// already was deleted.
    pub(crate) fn delete_coupon(&mut self, u: &Universe, k: u64, now: i64) -> bool {
        if !self.deleted_coupons.insert(k) {
            return false;
        }
        let mut body = String::with_capacity(512);
        render::render(Ctx { u, drift: None }, Kind::Coupon, k, &mut body);
        self.emit(u, now, "coupon.deleted", &body, None, None);
        true
    }

    pub(crate) fn find_customer(&self, u: &Universe, id: &str) -> Found {
        match u.parse_id(Kind::Customer, id) {
            Some(i) if i < self.customer_count(u) => {
                if self.deleted.contains(&i) {
                    Found::Deleted(i)
                } else {
                    Found::Live(i)
                }
            }
            _ => Found::Missing,
        }
    }

    /// Renders customer `i` as it is now.
    pub(crate) fn render_customer(
        &self,
        u: &Universe,
        i: u64,
        drift: Option<Drift>,
        out: &mut String,
    ) {
        let created = self.customer_created(u, i);
        let blank = i
            .checked_sub(u.size)
            .and_then(|k| self.new_customers.get(k as usize))
            .is_some_and(|c| c.blank);
        let Some(fields) = self.overrides.get(&i) else {
            render::customer(Ctx { u, drift }, i, created, blank, out);
            return;
        };
        let mut base = String::with_capacity(1_200);
        render::customer(Ctx { u, drift: None }, i, created, blank, &mut base);
        let mut value: Map<String, Value> = serde_json::from_str(&base).unwrap_or_default();
        for (k, v) in fields {
            value.insert(k.clone(), v.clone());
        }
        match drift {
            Some(Drift::AddedField) => {
                value.insert(DRIFT_FIELD.to_owned(), Value::from("x"));
            }
            Some(Drift::ChangedType) => {
                if let Some(b) = value.get("balance").and_then(Value::as_i64) {
                    value.insert("balance".to_owned(), Value::from(b.to_string()));
                }
            }
            None => {}
        }
        out.push_str(&Value::Object(value).to_string());
    }

    fn customer_value(&self, u: &Universe, i: u64) -> Map<String, Value> {
        let mut s = String::with_capacity(1_200);
        self.render_customer(u, i, None, &mut s);
        serde_json::from_str(&s).unwrap_or_default()
    }

    /// Applies `fields` to live customer `i` and emits `customer.updated`.
    /// Returns the updated customer (undrifted JSON).
    pub(crate) fn update_customer(
        &mut self,
        u: &Universe,
        i: u64,
        fields: Map<String, Value>,
        now: i64,
        request: Option<&str>,
    ) -> String {
        let before = self.customer_value(u, i);
        let mut previous = Map::new();
        let stored = self.overrides.entry(i).or_default();
        for (key, update) in fields {
            let old = before.get(&key).cloned().unwrap_or(Value::Null);
            let new = merge_field(&key, Some(&old), update);
            if new != old {
                previous.insert(key.clone(), old);
            }
            stored.insert(key, new);
        }
        let after = self.customer_value(u, i);
        let body = Value::Object(after.clone()).to_string();
        self.emit(u, now, "customer.updated", &body, Some(&previous), request);
        body
    }

    /// Deletes live customer `i`, emits `customer.deleted`, and returns the
    /// `deleted_customer` body.
    pub(crate) fn delete_customer(
        &mut self,
        u: &Universe,
        i: u64,
        now: i64,
        request: Option<&str>,
    ) -> String {
        let mut object = self.customer_value(u, i);
        object.insert("deleted".to_owned(), Value::Bool(true));
        self.deleted.insert(i);
        self.emit(
            u,
            now,
            "customer.deleted",
            &Value::Object(object).to_string(),
            None,
            request,
        );
        let mut s = String::new();
        let mut o = Obj::new(&mut s);
        o.str("id", &u.id(Kind::Customer, i))
            .str("object", "customer")
            .bool("deleted", true);
        o.end();
        s
    }

    /// Creates a customer at `now` (generated like the others unless `fields`
    /// are given, in which case only they are set) and emits `customer.created`.
    pub(crate) fn create_customer(
        &mut self,
        u: &Universe,
        now: i64,
        fields: Option<Map<String, Value>>,
        request: Option<&str>,
    ) -> (u64, String) {
        let i = self.customer_count(u);
        self.new_customers.push(NewCustomer {
            created: now,
            blank: fields.is_some(),
        });
        if let Some(fields) = fields {
            let mut stored = Map::new();
            for (k, v) in fields {
                let merged = merge_field(&k, None, v);
                stored.insert(k, merged);
            }
            self.overrides.insert(i, stored);
        }
        let mut body = String::with_capacity(1_200);
        self.render_customer(u, i, None, &mut body);
        self.emit(u, now, "customer.created", &body, None, request);
        (i, body)
    }

    fn emit(
        &mut self,
        u: &Universe,
        now: i64,
        event_type: &'static str,
        object: &str,
        previous: Option<&Map<String, Value>>,
        request: Option<&str>,
    ) {
        let id = u.event_id('m', self.events.len() as u64);
        let mut body = String::with_capacity(object.len() + 300);
        let mut o = Obj::new(&mut body);
        o.str("id", &id)
            .str("object", "event")
            .str("api_version", API_VERSION)
            .int("created", now);
        {
            let mut d = o.obj("data");
            d.raw("object", object);
            if let Some(prev) = previous {
                d.raw(
                    "previous_attributes",
                    &Value::Object(prev.clone()).to_string(),
                );
            }
            d.end();
        }
        o.bool("livemode", false).int("pending_webhooks", 0);
        {
            let mut r = o.obj("request");
            r.opt_str("id", request).null("idempotency_key");
            r.end();
        }
        o.str("type", event_type);
        o.end();
        self.events.push(StoredEvent {
            created: now,
            event_type,
            body,
        });
    }

    /// When subscription `j` was canceled (after start, or in the generated
    /// history), if it was.
    pub(crate) fn subscription_canceled_at(&self, u: &Universe, j: u64) -> Option<i64> {
        self.canceled_subscriptions
            .get(&j)
            .copied()
            .or_else(|| u.subscription_canceled_at(j))
    }

    /// The `status` subscription `j` has now.
    pub(crate) fn subscription_status(&self, u: &Universe, j: u64) -> &'static str {
        if self.subscription_canceled_at(u, j).is_some() {
            "canceled"
        } else {
            u.subscription_billing_status(j)
        }
    }

    /// Renders subscription `j` as it is now.
    pub(crate) fn render_subscription(
        &self,
        u: &Universe,
        j: u64,
        drift: Option<Drift>,
        out: &mut String,
    ) {
        render::subscription(
            Ctx { u, drift },
            j,
            self.subscription_canceled_at(u, j),
            out,
        );
    }

    /// Cancels subscription `j` at `now` and emits
    /// `customer.subscription.deleted`; returns the canceled subscription
    /// (undrifted JSON), or `None` when it was already canceled.
    pub(crate) fn cancel_subscription(
        &mut self,
        u: &Universe,
        j: u64,
        now: i64,
        request: Option<&str>,
    ) -> Option<String> {
        if self.subscription_canceled_at(u, j).is_some() {
            return None;
        }
        self.canceled_subscriptions.insert(j, now);
        let mut body = String::with_capacity(2_048);
        self.render_subscription(u, j, None, &mut body);
        self.emit(
            u,
            now,
            "customer.subscription.deleted",
            &body,
            None,
            request,
        );
        Some(body)
    }

    /// The email customer `i` holds now (`None` when unset).
    pub(crate) fn customer_email(&self, u: &Universe, i: u64) -> Option<String> {
        if let Some(v) = self.overrides.get(&i).and_then(|o| o.get("email")) {
            return v.as_str().map(str::to_owned);
        }
        let blank = i
            .checked_sub(u.size)
            .and_then(|k| self.new_customers.get(k as usize))
            .is_some_and(|c| c.blank);
        if blank {
            return None;
        }
        // As `render::customer` writes it, without rendering the rest.
        let mut email = String::with_capacity(40);
        crate::people::parts(u.seed, i).push_email(&mut email);
        Some(email)
    }

    /// Customers (generated or written) whose email equals `email`,
    /// case-insensitively, newest first; `live` leaves deleted ones out.
    pub(crate) fn customers_by_email(&self, u: &Universe, email: &str, live: bool) -> Vec<u64> {
        let mut found: Vec<u64> = (0..self.customer_count(u))
            .filter(|&i| !(live && self.deleted.contains(&i)))
            .filter(|&i| {
                self.customer_email(u, i)
                    .is_some_and(|e| e.eq_ignore_ascii_case(email))
            })
            .collect();
        found.sort_by_key(|&i| std::cmp::Reverse((self.customer_created(u, i), i)));
        found
    }

    /// Counts a `POST /v1/customers` that set `email`.
    pub(crate) fn count_create(&mut self, email: &str) {
        *self
            .creates_by_email
            .entry(email.to_lowercase())
            .or_default() += 1;
    }

    /// `POST /v1/customers` creates that set `email` (case-insensitively).
    pub(crate) fn creates_of(&self, email: &str) -> usize {
        self.creates_by_email
            .get(&email.to_lowercase())
            .copied()
            .unwrap_or(0)
    }

    /// Ids of live customers, oldest first.
    pub(crate) fn live_customer_ids(&self, u: &Universe) -> Vec<String> {
        (0..self.customer_count(u))
            .filter(|i| !self.deleted.contains(i))
            .map(|i| u.id(Kind::Customer, i))
            .collect()
    }
}

/// Customers as a list source (generated plus created, minus deleted).
pub(crate) struct Customers<'a> {
    pub(crate) u: &'a Universe,
    pub(crate) store: &'a Store,
    pub(crate) drift: Option<Drift>,
}

impl Source for Customers<'_> {
    fn len(&self) -> u64 {
        self.store.customer_count(self.u)
    }
    fn created(&self, i: u64) -> i64 {
        self.store.customer_created(self.u, i)
    }
    fn id(&self, i: u64) -> String {
        self.u.id(Kind::Customer, i)
    }
    fn visible(&self, i: u64) -> bool {
        !self.store.is_deleted(i)
    }
    fn render(&self, i: u64, out: &mut String) {
        self.store.render_customer(self.u, i, self.drift, out);
    }
}

/// Subscriptions as a list source: generated, with cancellations, filtered
/// by the list's `status`.
pub(crate) struct Subscriptions<'a> {
    pub(crate) ctx: Ctx<'a>,
    pub(crate) store: &'a Store,
    pub(crate) status: SubscriptionStatus,
}

impl Source for Subscriptions<'_> {
    fn len(&self) -> u64 {
        self.ctx.u.count(Kind::Subscription)
    }
    fn created(&self, i: u64) -> i64 {
        self.ctx.u.created(Kind::Subscription, i)
    }
    fn id(&self, i: u64) -> String {
        self.ctx.u.id(Kind::Subscription, i)
    }
    fn visible(&self, i: u64) -> bool {
        self.status
            .matches(self.store.subscription_status(self.ctx.u, i))
    }
    fn render(&self, i: u64, out: &mut String) {
        self.store
            .render_subscription(self.ctx.u, i, self.ctx.drift, out);
    }
}

/// Any other generated kind as a list source (deleted coupons left out).
pub(crate) struct Generated<'a> {
    pub(crate) ctx: Ctx<'a>,
    pub(crate) kind: Kind,
    pub(crate) store: &'a Store,
}

impl Source for Generated<'_> {
    fn len(&self) -> u64 {
        self.ctx.u.count(self.kind)
    }
    fn created(&self, i: u64) -> i64 {
        self.ctx.u.created(self.kind, i)
    }
    fn id(&self, i: u64) -> String {
        self.ctx.u.id(self.kind, i)
    }
    fn visible(&self, i: u64) -> bool {
        self.kind != Kind::Coupon || !self.store.is_coupon_deleted(i)
    }
    fn render(&self, i: u64, out: &mut String) {
        render::render(self.ctx, self.kind, i, out);
    }
}

/// The creation events of one generated kind.
pub(crate) struct CreationEvents<'a> {
    pub(crate) u: &'a Universe,
    pub(crate) kind: Kind,
    pub(crate) event_type: &'static str,
}

impl Source for CreationEvents<'_> {
    fn len(&self) -> u64 {
        self.u.count(self.kind)
    }
    fn created(&self, i: u64) -> i64 {
        self.u.created(self.kind, i)
    }
    fn id(&self, i: u64) -> String {
        self.u.event_id(self.kind.code(), i)
    }
    fn visible(&self, _i: u64) -> bool {
        true
    }
    fn render(&self, i: u64, out: &mut String) {
        let mut o = Obj::new(out);
        o.str("id", &self.id(i))
            .str("object", "event")
            .str("api_version", API_VERSION)
            .int("created", self.created(i));
        {
            let mut d = o.obj("data");
            render::render(
                Ctx {
                    u: self.u,
                    drift: None,
                },
                self.kind,
                i,
                d.value("object"),
            );
            d.end();
        }
        o.bool("livemode", false)
            .int("pending_webhooks", 0)
            .raw("request", r#"{"id":null,"idempotency_key":null}"#)
            .str("type", self.event_type);
        o.end();
    }
}

/// Events stored by mutations, filtered by the list's type filter.
pub(crate) struct MutationEvents<'a> {
    pub(crate) u: &'a Universe,
    pub(crate) store: &'a Store,
    pub(crate) params: &'a ListParams,
}

impl Source for MutationEvents<'_> {
    fn len(&self) -> u64 {
        self.store.events.len() as u64
    }
    fn created(&self, i: u64) -> i64 {
        self.store
            .events
            .get(i as usize)
            .map_or(i64::MAX, |e| e.created)
    }
    fn id(&self, i: u64) -> String {
        self.u.event_id('m', i)
    }
    fn visible(&self, i: u64) -> bool {
        self.store
            .events
            .get(i as usize)
            .is_some_and(|e| self.params.type_matches(e.event_type))
    }
    fn render(&self, i: u64, out: &mut String) {
        if let Some(e) = self.store.events.get(i as usize) {
            out.push_str(&e.body);
        }
    }
}
