//! The Stripe part of the control API: update, delete and create customers,
//! cancel subscriptions (emitting the matching events), list customer and
//! subscription, coupon, payout, dispute, tax rate and promotion code ids,
//! the account's id.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::config::Api;
use crate::error::SandboxError;
use crate::room::{Control, control_error};

use super::StripeState;
use super::data::Kind;

impl Control {
    /// Updates a Stripe customer with JSON `fields` (a JSON object of customer
    /// fields, merged like the API merges them) and emits `customer.updated`.
    pub fn stripe_update_customer(&self, id: &str, fields: Value) -> Result<(), SandboxError> {
        let Value::Object(fields) = fields else {
            return Err(SandboxError::InvalidUpdate {
                api: Api::Stripe,
                object: "customer",
                id: id.to_owned(),
                reason: "fields must be a JSON object".to_owned(),
            });
        };
        self.served::<StripeState>(Api::Stripe)?
            .update_customer(id, fields)
            .map(|_| ())
            .ok_or_else(|| not_found("customer", id))
    }

    /// Deletes a Stripe customer and emits `customer.deleted`.
    pub fn stripe_delete_customer(&self, id: &str) -> Result<(), SandboxError> {
        if self.served::<StripeState>(Api::Stripe)?.delete_customer(id) {
            Ok(())
        } else {
            Err(not_found("customer", id))
        }
    }

    /// Creates `n` Stripe customers at the current time (emitting
    /// `customer.created`) and returns their ids.
    pub fn stripe_create_customers(&self, n: usize) -> Vec<String> {
        self.room::<StripeState>()
            .map(|s| s.create_customers(n))
            .unwrap_or_default()
    }

    /// The Stripe customer holding `email` (case-insensitively) as JSON: the
    /// most recently created live one, else the most recently deleted one
    /// (with `"deleted": true`); `None` when no customer ever held it.
    pub fn stripe_customer_by_email(&self, email: &str) -> Option<Value> {
        self.room::<StripeState>()?.customer_by_email(email)
    }

    /// How many `POST /v1/customers` created a customer with `email`
    /// (case-insensitively; idempotent replays not counted).
    pub fn stripe_customer_creates(&self, email: &str) -> usize {
        self.room::<StripeState>()
            .map_or(0, |s| s.customer_creates(email))
    }

    /// Cancels a Stripe subscription now, as `DELETE /v1/subscriptions/{id}`
    /// does: it is `canceled` (with `canceled_at` and `ended_at`), listed only
    /// with `status=all` or `status=canceled`, and `customer.subscription.deleted`
    /// is emitted. An unknown or already canceled subscription is
    /// [`SandboxError::NotFound`].
    pub fn stripe_cancel_subscription(&self, id: &str) -> Result<(), SandboxError> {
        match self
            .served::<StripeState>(Api::Stripe)?
            .cancel_subscription(id)
        {
            Ok(true) => Ok(()),
            Ok(false) | Err(()) => Err(not_found("live subscription", id)),
        }
    }

    /// Ids of every Stripe subscription, canceled ones included, oldest first
    /// (what `GET /v1/subscriptions?status=all` lists).
    pub fn stripe_subscription_ids(&self) -> Vec<String> {
        self.room::<StripeState>()
            .map(|s| s.subscription_ids(false))
            .unwrap_or_default()
    }

    /// Ids of the canceled Stripe subscriptions, oldest first: one in eight
    /// of those generated over 61 days before the clock's start, and those
    /// canceled by [`Control::stripe_cancel_subscription`].
    pub fn stripe_canceled_subscription_ids(&self) -> Vec<String> {
        self.room::<StripeState>()
            .map(|s| s.subscription_ids(true))
            .unwrap_or_default()
    }

    /// The id of the Stripe account the sandbox's key belongs to (what
    /// `GET /v1/account` answers; the same for every sandbox with this seed).
    pub fn stripe_account_id(&self) -> Option<String> {
        self.room::<StripeState>().map(StripeState::account_id)
    }

    /// Ids of every live Stripe coupon, oldest first (what `GET /v1/coupons` lists).
    pub fn stripe_coupon_ids(&self) -> Vec<String> {
        self.generated_ids(Kind::Coupon)
    }

    /// Ids of every Stripe payout, oldest first (what `GET /v1/payouts` lists).
    pub fn stripe_payout_ids(&self) -> Vec<String> {
        self.generated_ids(Kind::Payout)
    }

    /// Ids of every Stripe dispute, oldest first (what `GET /v1/disputes`
    /// lists): one charge in fifty is disputed, never a refunded one.
    pub fn stripe_dispute_ids(&self) -> Vec<String> {
        self.generated_ids(Kind::Dispute)
    }

    /// Ids of every Stripe tax rate, oldest first (four, whatever the size).
    pub fn stripe_tax_rate_ids(&self) -> Vec<String> {
        self.generated_ids(Kind::TaxRate)
    }

    /// Ids of every Stripe promotion code, oldest first: two per coupon.
    pub fn stripe_promotion_code_ids(&self) -> Vec<String> {
        self.generated_ids(Kind::PromotionCode)
    }

    /// Deletes a Stripe coupon now, as `DELETE /v1/coupons/{id}` does: it is
    /// no longer listed or retrievable, and `coupon.deleted` is emitted. An
    /// unknown or already deleted coupon is [`SandboxError::NotFound`].
    pub fn stripe_delete_coupon(&self, id: &str) -> Result<(), SandboxError> {
        if self.served::<StripeState>(Api::Stripe)?.delete_coupon(id) {
            Ok(())
        } else {
            Err(not_found("coupon", id))
        }
    }

    fn generated_ids(&self, kind: Kind) -> Vec<String> {
        self.room::<StripeState>()
            .map(|s| {
                let store = s.read();
                (0..s.u.count(kind))
                    .filter(|&i| kind != Kind::Coupon || !store.is_coupon_deleted(i))
                    .map(|i| s.u.id(kind, i))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Ids of every live Stripe customer, oldest first (`size` entries and more:
    /// meant for small sandboxes).
    pub fn stripe_customer_ids(&self) -> Vec<String> {
        self.room::<StripeState>()
            .map(StripeState::customer_ids)
            .unwrap_or_default()
    }
}

fn not_found(object: &'static str, id: &str) -> SandboxError {
    SandboxError::NotFound {
        api: Api::Stripe,
        object,
        id: id.to_owned(),
    }
}

#[derive(Deserialize)]
struct CreateMany {
    n: usize,
}

/// The `/__sandbox/stripe/` routes.
pub(super) fn routes() -> Router<Control> {
    Router::new()
        .route("/__sandbox/stripe/customers/create", post(create))
        .route("/__sandbox/stripe/customers/{id}/update", post(update))
        .route("/__sandbox/stripe/customers/{id}/delete", post(delete))
        .route(
            "/__sandbox/stripe/subscriptions/{id}/cancel",
            post(cancel_subscription),
        )
}

async fn create(State(c): State<Control>, Json(m): Json<CreateMany>) -> Json<Value> {
    Json(json!({"ids": c.stripe_create_customers(m.n)}))
}

async fn update(
    State(c): State<Control>,
    Path(id): Path<String>,
    Json(fields): Json<Value>,
) -> Response {
    match c.stripe_update_customer(&id, fields) {
        Ok(()) => Json(json!({"ok": true})).into_response(),
        Err(e) => control_error(&e),
    }
}

async fn delete(State(c): State<Control>, Path(id): Path<String>) -> Response {
    match c.stripe_delete_customer(&id) {
        Ok(()) => Json(json!({"ok": true})).into_response(),
        Err(e) => control_error(&e),
    }
}

async fn cancel_subscription(State(c): State<Control>, Path(id): Path<String>) -> Response {
    match c.stripe_cancel_subscription(&id) {
        Ok(()) => Json(json!({"ok": true})).into_response(),
        Err(e) => control_error(&e),
    }
}
