//! Renders generated Stripe objects as JSON, straight into a buffer, in the
//! shapes of the 2023-08-16 OpenAPI components (field names as in
//! `fixtures3.json`, limited to the component's properties).

use crate::config::Drift;
use crate::hash::h;
use crate::json::{Obj, push_int, push_padded};
use crate::people::{Address, Parts, parts, person};

use super::data::{Kind, Universe};

/// Seconds in a billing month.
const MONTH: i64 = 30 * 86_400;

/// The field added by [`Drift::AddedField`].
pub(crate) const DRIFT_FIELD: &str = "weft_drift_field";

/// What rendering needs besides the index.
#[derive(Clone, Copy)]
pub(crate) struct Ctx<'a> {
    pub(crate) u: &'a Universe,
    pub(crate) drift: Option<Drift>,
}

impl Ctx<'_> {
    fn changed_type(&self) -> bool {
        self.drift == Some(Drift::ChangedType)
    }

    fn finish(&self, mut o: Obj<'_>) {
        if self.drift == Some(Drift::AddedField) {
            o.str(DRIFT_FIELD, "x");
        }
        o.end();
    }
}

/// Renders generated object `i` of `kind` (customers and subscriptions: as
/// generated, without mutations).
pub(crate) fn render(ctx: Ctx<'_>, kind: Kind, i: u64, out: &mut String) {
    match kind {
        Kind::Customer => customer(ctx, i, ctx.u.created(kind, i), false, out),
        Kind::Product => product(ctx, i, out),
        Kind::Price => price(ctx, i, out),
        Kind::Subscription => subscription(ctx, i, ctx.u.subscription_canceled_at(i), out),
        Kind::Invoice => invoice(ctx, i, out),
        Kind::PaymentIntent => payment_intent(ctx, i, out),
        Kind::Charge => charge(ctx, i, out),
        Kind::Refund => refund(ctx, i, out),
        Kind::BalanceTransaction => balance_transaction(ctx, i, out),
        Kind::Coupon => coupon(ctx, i, out),
        Kind::Payout => payout(ctx, i, out),
        Kind::Dispute => dispute(ctx, i, out),
        Kind::TaxRate => tax_rate(ctx, i, out),
        Kind::PromotionCode => promotion_code(ctx, i, out),
    }
}

fn address(o: &mut Obj<'_>, key: &str, a: &Address) {
    let mut x = o.obj(key);
    x.str("city", a.city)
        .str("country", a.country)
        .str("line1", &a.line1)
        .null("line2")
        .str("postal_code", &a.postal_code)
        .opt_str("state", (!a.state.is_empty()).then_some(a.state));
    x.end();
}

fn invoice_prefix(u: &Universe, i: u64) -> String {
    let mut s = String::with_capacity(8);
    push_invoice_prefix(&mut s, u, i);
    s
}

/// Appends the 8 upper-case hex digits of customer `i`'s invoice prefix.
fn push_invoice_prefix(out: &mut String, u: &Universe, i: u64) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let v = h(u.seed, 0x1F1, i) & 0xFFFF_FFFF;
    for shift in (0..8).rev() {
        out.push(char::from(HEX[((v >> (shift * 4)) & 0xF) as usize]));
    }
}

/// A customer; `blank` renders one created through the API (only what was sent is set).
pub(crate) fn customer(ctx: Ctx<'_>, i: u64, created: i64, blank: bool, out: &mut String) {
    let u = ctx.u;
    if !blank {
        out.push_str("{\"id\":\"");
        u.push_id(out, Kind::Customer, i);
        out.push_str("\",\"object\":\"customer\",\"address\":");
        customer_fields(ctx, &parts(u.seed, i), created, out);
        return;
    }
    let prefix = invoice_prefix(u, i);
    let mut o = Obj::new(out);
    o.str("id", &u.id(Kind::Customer, i))
        .str("object", "customer");
    o.null("address")
        .int_or_str("balance", 0, ctx.changed_type())
        .int("created", created)
        .null("currency")
        .null("default_source")
        .bool("delinquent", false)
        .null("description")
        .null("discount")
        .null("email")
        .str("invoice_prefix", &prefix);
    invoice_settings(&mut o);
    o.bool("livemode", false)
        .raw("metadata", "{}")
        .null("name")
        .int("next_invoice_sequence", 1)
        .null("phone")
        .raw("preferred_locales", "[]")
        .null("shipping")
        .str("tax_exempt", "none")
        .null("test_clock");
    ctx.finish(o);
}

/// The fields of a generated customer after `"id"` and `"object"`, and the
/// closing brace: fixed text is copied in runs, values are written in place
/// (the people's texts need no escaping: `people` tests its tables).
fn customer_fields(ctx: Ctx<'_>, p: &Parts, created: i64, out: &mut String) {
    let n = h(ctx.u.seed, 0xC05, p.index);
    let us = p.country == "US";
    let balance = if n.is_multiple_of(10) {
        -(((n >> 8) % 50) as i64) * 100
    } else {
        0
    };
    let name = |out: &mut String| {
        out.push_str(p.first_name);
        out.push(' ');
        out.push_str(p.last_name);
    };
    push_address(out, p);
    out.push_str(",\"balance\":");
    if ctx.changed_type() {
        out.push('"');
        push_int(out, balance);
        out.push('"');
    } else {
        push_int(out, balance);
    }
    out.push_str(",\"created\":");
    push_int(out, created);
    out.push_str(if us {
        ",\"currency\":\"usd\",\"default_source\":null,\"delinquent\":"
    } else {
        ",\"currency\":\"eur\",\"default_source\":null,\"delinquent\":"
    });
    out.push_str(if n.is_multiple_of(37) {
        "true"
    } else {
        "false"
    });
    out.push_str(",\"description\":\"");
    name(out);
    out.push_str(" at ");
    out.push_str(p.company);
    out.push_str("\",\"discount\":null,\"email\":\"");
    p.push_email(out);
    out.push_str("\",\"invoice_prefix\":\"");
    push_invoice_prefix(out, ctx.u, p.index);
    out.push_str("\",\"invoice_settings\":");
    out.push_str(INVOICE_SETTINGS);
    out.push_str(",\"livemode\":false,\"metadata\":{\"company\":\"");
    out.push_str(p.company);
    out.push_str("\",\"person_index\":\"");
    push_padded(out, p.index, 1);
    out.push_str("\",\"plan_tier\":\"");
    out.push_str(["free", "starter", "growth", "enterprise"][(n >> 4) as usize % 4]);
    out.push_str("\",\"signup_source\":\"");
    out.push_str(["web", "sales", "partner"][(n >> 6) as usize % 3]);
    out.push_str("\"},\"name\":\"");
    name(out);
    out.push_str("\",\"next_invoice_sequence\":");
    push_int(out, 1 + ((n >> 12) % 40) as i64);
    out.push_str(",\"phone\":\"");
    p.push_phone(out);
    out.push_str(if us {
        "\",\"preferred_locales\":[\"en-US\"],\"shipping\":{\"address\":"
    } else {
        "\",\"preferred_locales\":[\"en\"],\"shipping\":{\"address\":"
    });
    push_address(out, p);
    out.push_str(",\"carrier\":null,\"name\":\"");
    name(out);
    out.push_str("\",\"phone\":\"");
    p.push_phone(out);
    out.push_str("\",\"tracking_number\":null},\"tax_exempt\":\"none\",\"test_clock\":null");
    if ctx.drift == Some(Drift::AddedField) {
        out.push_str(",\"");
        out.push_str(DRIFT_FIELD);
        out.push_str("\":\"x\"");
    }
    out.push('}');
}

/// A customer's address object (what [`address`] writes, in one pass).
fn push_address(out: &mut String, p: &Parts) {
    out.push_str("{\"city\":\"");
    out.push_str(p.city);
    out.push_str("\",\"country\":\"");
    out.push_str(p.country);
    out.push_str("\",\"line1\":\"");
    p.push_line1(out);
    out.push_str("\",\"line2\":null,\"postal_code\":\"");
    p.push_postal_code(out);
    if p.state.is_empty() {
        out.push_str("\",\"state\":null}");
    } else {
        out.push_str("\",\"state\":\"");
        out.push_str(p.state);
        out.push_str("\"}");
    }
}

/// The `invoice_settings` of every customer.
const INVOICE_SETTINGS: &str = r#"{"custom_fields":null,"default_payment_method":null,"footer":null,"rendering_options":null}"#;

fn invoice_settings(o: &mut Obj<'_>) {
    o.raw("invoice_settings", INVOICE_SETTINGS);
}

const PRODUCTS: [&str; 10] = [
    "Starter plan",
    "Growth plan",
    "Scale plan",
    "Enterprise plan",
    "Analytics add-on",
    "Extra seats",
    "Priority support",
    "Data retention",
    "Onboarding package",
    "API access",
];

fn product(ctx: Ctx<'_>, p: u64, out: &mut String) {
    let u = ctx.u;
    let created = u.created(Kind::Product, p);
    let name = format!("{} {}", PRODUCTS[(p % 10) as usize], p / 10 + 1);
    let mut o = Obj::new(out);
    o.str("id", &u.id(Kind::Product, p))
        .str("object", "product")
        .bool("active", true)
        .int("created", created)
        .str("default_price", &u.id(Kind::Price, p * 2 + 1))
        .str("description", &format!("{name}, billed monthly"))
        .raw("features", "[]")
        .raw("images", "[]")
        .bool("livemode", false)
        .raw("metadata", "{}")
        .str("name", &name)
        .null("package_dimensions")
        .null("shippable")
        .null("statement_descriptor")
        .null("tax_code")
        .null("unit_label")
        .int("updated", created)
        .null("url");
    ctx.finish(o);
}

fn price_fields(ctx: Ctx<'_>, o: &mut Obj<'_>, p: u64) {
    let u = ctx.u;
    let amount = u.price_amount(p);
    let recurring = p % 2 == 1;
    o.str("id", &u.id(Kind::Price, p))
        .str("object", "price")
        .bool("active", true)
        .str("billing_scheme", "per_unit")
        .int("created", u.created(Kind::Price, p))
        .str("currency", "usd")
        .null("custom_unit_amount")
        .bool("livemode", false)
        .null("lookup_key")
        .raw("metadata", "{}")
        .null("nickname")
        .str("product", &u.id(Kind::Product, p / 2));
    if recurring {
        o.raw(
            "recurring",
            r#"{"aggregate_usage":null,"interval":"month","interval_count":1,"usage_type":"licensed"}"#,
        );
    } else {
        o.null("recurring");
    }
    o.str("tax_behavior", "unspecified")
        .null("tiers_mode")
        .null("transform_quantity")
        .str("type", if recurring { "recurring" } else { "one_time" })
        .int("unit_amount", amount)
        .str("unit_amount_decimal", &amount.to_string());
}

fn price(ctx: Ctx<'_>, p: u64, out: &mut String) {
    let mut o = Obj::new(out);
    price_fields(ctx, &mut o, p);
    ctx.finish(o);
}

/// Renders subscription `j`, canceled at `canceled_at` if it was (then its
/// last period is the one the cancellation fell in).
pub(crate) fn subscription(ctx: Ctx<'_>, j: u64, canceled_at: Option<i64>, out: &mut String) {
    let u = ctx.u;
    let created = u.created(Kind::Subscription, j);
    let id = u.id(Kind::Subscription, j);
    let until = canceled_at.unwrap_or(u.epoch);
    let periods = (until - created).max(0) / MONTH;
    let period_start = created + periods * MONTH;
    let mut o = Obj::new(out);
    o.str("id", &id)
        .str("object", "subscription")
        .null("application")
        .null("application_fee_percent")
        .raw("automatic_tax", r#"{"enabled":false}"#)
        .int("billing_cycle_anchor", created)
        .null("billing_thresholds")
        .null("cancel_at")
        .bool("cancel_at_period_end", false);
    match canceled_at {
        Some(t) => o.int("canceled_at", t).raw(
            "cancellation_details",
            r#"{"comment":null,"feedback":null,"reason":"cancellation_requested"}"#,
        ),
        None => o.null("canceled_at").raw(
            "cancellation_details",
            r#"{"comment":null,"feedback":null,"reason":null}"#,
        ),
    };
    o.str("collection_method", "charge_automatically")
        .int("created", created)
        .str("currency", "usd")
        .int("current_period_end", period_start + MONTH)
        .int("current_period_start", period_start)
        .str(
            "customer",
            &u.id(Kind::Customer, u.subscription_customer(j)),
        )
        .null("days_until_due")
        .null("default_payment_method")
        .null("default_source")
        .raw("default_tax_rates", "[]")
        .null("description")
        .null("discount");
    match canceled_at {
        Some(t) => o.int("ended_at", t),
        None => o.null("ended_at"),
    };
    {
        let mut items = o.obj("items");
        items.str("object", "list");
        push_items(ctx, items.value("data"), j, created, &id);
        items
            .bool("has_more", false)
            .str("url", &format!("/v1/subscription_items?subscription={id}"));
        items.end();
    }
    o.str("latest_invoice", &u.id(Kind::Invoice, j * 2))
        .bool("livemode", false)
        .raw("metadata", "{}")
        .null("next_pending_invoice_item_invoice")
        .null("on_behalf_of")
        .null("pause_collection")
        .raw(
            "payment_settings",
            r#"{"payment_method_options":null,"payment_method_types":null,"save_default_payment_method":"off"}"#,
        )
        .null("pending_invoice_item_interval")
        .null("pending_setup_intent")
        .null("pending_update")
        .null("schedule")
        .int("start_date", created)
        .str(
            "status",
            if canceled_at.is_some() {
                "canceled"
            } else {
                u.subscription_billing_status(j)
            },
        )
        .null("test_clock")
        .null("transfer_data")
        .null("trial_end")
        .raw(
            "trial_settings",
            r#"{"end_behavior":{"missing_payment_method":"create_invoice"}}"#,
        )
        .null("trial_start");
    ctx.finish(o);
}

/// Writes the `[subscription_item]` array of subscription `j`.
fn push_items(ctx: Ctx<'_>, out: &mut String, j: u64, created: i64, sub_id: &str) {
    let u = ctx.u;
    out.push('[');
    let mut it = Obj::new(out);
    it.str("id", &format!("si_{}", &sub_id[4..]))
        .str("object", "subscription_item")
        .null("billing_thresholds")
        .int("created", created)
        .raw("metadata", "{}");
    {
        let mut p = it.obj("price");
        price_fields(Ctx { drift: None, ..ctx }, &mut p, u.subscription_price(j));
        p.end();
    }
    it.int("quantity", 1)
        .str("subscription", sub_id)
        .raw("tax_rates", "[]");
    it.end();
    out.push(']');
}

fn invoice(ctx: Ctx<'_>, i: u64, out: &mut String) {
    let u = ctx.u;
    let created = u.created(Kind::Invoice, i);
    let id = u.id(Kind::Invoice, i);
    let cust = u.payment_customer(i);
    let p = person(u.seed, cust);
    let amount = u.payment_amount(i);
    let sub = u
        .payment_subscription(i)
        .map(|j| u.id(Kind::Subscription, j));
    let mut o = Obj::new(out);
    o.str("id", &id)
        .str("object", "invoice")
        .str("account_country", "US")
        .str("account_name", "Weft Sandbox")
        .null("account_tax_ids")
        .int("amount_due", amount)
        .int("amount_paid", amount)
        .int("amount_remaining", 0)
        .int("amount_shipping", 0)
        .null("application")
        .null("application_fee_amount")
        .int("attempt_count", 1)
        .bool("attempted", true)
        .bool("auto_advance", false)
        .raw("automatic_tax", r#"{"enabled":false,"status":null}"#)
        .str(
            "billing_reason",
            if sub.is_some() {
                "subscription_cycle"
            } else {
                "manual"
            },
        )
        .str("charge", &u.id(Kind::Charge, i))
        .str("collection_method", "charge_automatically")
        .int("created", created)
        .str("currency", "usd")
        .null("custom_fields")
        .str("customer", &u.id(Kind::Customer, cust));
    address(&mut o, "customer_address", &p.address);
    o.str("customer_email", &p.email)
        .str("customer_name", &p.full_name())
        .str("customer_phone", &p.phone)
        .null("customer_shipping")
        .str("customer_tax_exempt", "none")
        .raw("customer_tax_ids", "[]")
        .null("default_payment_method")
        .null("default_source")
        .raw("default_tax_rates", "[]")
        .null("description")
        .null("discount")
        .raw("discounts", "[]")
        .null("due_date")
        .int("effective_at", created)
        .int("ending_balance", 0)
        .null("footer")
        .null("from_invoice")
        .str(
            "hosted_invoice_url",
            &format!("https://invoice.stripe.com/i/{id}"),
        )
        .str(
            "invoice_pdf",
            &format!("https://pay.stripe.com/invoice/{id}/pdf"),
        )
        .null("last_finalization_error")
        .null("latest_revision");
    {
        let mut lines = o.obj("lines");
        lines.str("object", "list");
        let out = lines.value("data");
        out.push('[');
        let mut line = Obj::new(out);
        line.str("id", &format!("il_{}", &id[3..]))
            .str("object", "line_item")
            .int("amount", amount)
            .int("amount_excluding_tax", amount)
            .str("currency", "usd")
            .str(
                "description",
                if sub.is_some() {
                    "1 × Subscription (at $/month)"
                } else {
                    "One-time purchase"
                },
            )
            .raw("discount_amounts", "[]")
            .bool("discountable", true)
            .raw("discounts", "[]")
            .bool("livemode", false)
            .raw("metadata", "{}");
        {
            let mut period = line.obj("period");
            period.int("end", created).int(
                "start",
                if sub.is_some() {
                    created - MONTH
                } else {
                    created
                },
            );
            period.end();
        }
        line.null("price")
            .bool("proration", false)
            .null("proration_details")
            .int("quantity", 1)
            .opt_str("subscription", sub.as_deref())
            .raw("tax_amounts", "[]")
            .raw("tax_rates", "[]")
            .str(
                "type",
                if sub.is_some() {
                    "subscription"
                } else {
                    "invoiceitem"
                },
            )
            .str("unit_amount_excluding_tax", &amount.to_string());
        line.end();
        out.push(']');
        lines
            .bool("has_more", false)
            .str("url", &format!("/v1/invoices/{id}/lines"));
        lines.end();
    }
    o.bool("livemode", false)
        .raw("metadata", "{}")
        .null("next_payment_attempt")
        .str(
            "number",
            &format!("{}-{:04}", invoice_prefix(u, cust), 1 + i % 9_999),
        )
        .null("on_behalf_of")
        .bool("paid", true)
        .bool("paid_out_of_band", false)
        .str("payment_intent", &u.id(Kind::PaymentIntent, i))
        .raw(
            "payment_settings",
            r#"{"default_mandate":null,"payment_method_options":null,"payment_method_types":null}"#,
        )
        .int("period_end", created)
        .int(
            "period_start",
            if sub.is_some() {
                created - MONTH
            } else {
                created
            },
        )
        .int("post_payment_credit_notes_amount", 0)
        .int("pre_payment_credit_notes_amount", 0)
        .null("quote")
        .null("receipt_number")
        .null("rendering_options")
        .null("shipping_cost")
        .null("shipping_details")
        .int("starting_balance", 0)
        .null("statement_descriptor")
        .str("status", "paid");
    {
        let mut st = o.obj("status_transitions");
        st.int("finalized_at", created)
            .null("marked_uncollectible_at")
            .int("paid_at", created)
            .null("voided_at");
        st.end();
    }
    o.opt_str("subscription", sub.as_deref())
        .int("subtotal", amount)
        .int("subtotal_excluding_tax", amount)
        .null("tax")
        .null("test_clock")
        .int("total", amount)
        .raw("total_discount_amounts", "[]")
        .int("total_excluding_tax", amount)
        .raw("total_tax_amounts", "[]")
        .null("transfer_data")
        .int("webhooks_delivered_at", created);
    ctx.finish(o);
}

fn card_last4(u: &Universe, i: u64) -> &'static str {
    ["4242", "4444", "0005", "1117", "3220"][(h(u.seed, 0xCA4D, i) % 5) as usize]
}

fn payment_intent(ctx: Ctx<'_>, i: u64, out: &mut String) {
    let u = ctx.u;
    let id = u.id(Kind::PaymentIntent, i);
    let amount = u.payment_amount(i);
    let cust = u.payment_customer(i);
    let sub = u.payment_subscription(i);
    let mut o = Obj::new(out);
    o.str("id", &id)
        .str("object", "payment_intent")
        .int_or_str("amount", amount, ctx.changed_type())
        .int("amount_capturable", 0)
        .int("amount_received", amount)
        .null("application")
        .null("application_fee_amount")
        .null("automatic_payment_methods")
        .null("canceled_at")
        .null("cancellation_reason")
        .str("capture_method", "automatic")
        .str(
            "client_secret",
            &format!("{id}_secret_{:016x}", h(u.seed, 0x5EC, i)),
        )
        .str("confirmation_method", "automatic")
        .int("created", u.created(Kind::PaymentIntent, i))
        .str("currency", "usd")
        .str("customer", &u.id(Kind::Customer, cust))
        .str(
            "description",
            if sub.is_some() {
                "Subscription update"
            } else {
                "One-time purchase"
            },
        )
        .str("invoice", &u.id(Kind::Invoice, i))
        .null("last_payment_error")
        .str("latest_charge", &u.id(Kind::Charge, i))
        .bool("livemode", false)
        .raw("metadata", "{}")
        .null("next_action")
        .null("on_behalf_of")
        .str("payment_method", &format!("pm_{}", &id[3..]))
        .raw("payment_method_options", "{}")
        .raw("payment_method_types", "[\"card\"]")
        .null("processing")
        .str("receipt_email", &person(u.seed, cust).email)
        .null("review")
        .null("setup_future_usage")
        .null("shipping")
        .null("statement_descriptor")
        .null("statement_descriptor_suffix")
        .str("status", "succeeded")
        .null("transfer_data")
        .null("transfer_group");
    ctx.finish(o);
}

fn charge(ctx: Ctx<'_>, i: u64, out: &mut String) {
    let u = ctx.u;
    let id = u.id(Kind::Charge, i);
    let amount = u.payment_amount(i);
    let cust = u.payment_customer(i);
    let p = person(u.seed, cust);
    let refunded = u.charge_refund(i).is_some();
    let n = h(u.seed, 0xC4A6, i);
    let mut o = Obj::new(out);
    o.str("id", &id)
        .str("object", "charge")
        .int_or_str("amount", amount, ctx.changed_type())
        .int("amount_captured", amount)
        .int("amount_refunded", if refunded { amount } else { 0 })
        .null("application")
        .null("application_fee")
        .null("application_fee_amount")
        .str("balance_transaction", &u.id(Kind::BalanceTransaction, i));
    {
        let mut b = o.obj("billing_details");
        address(&mut b, "address", &p.address);
        b.str("email", &p.email)
            .str("name", &p.full_name())
            .str("phone", &p.phone);
        b.end();
    }
    o.str("calculated_statement_descriptor", "WEFT SANDBOX")
        .bool("captured", true)
        .int("created", u.created(Kind::Charge, i))
        .str("currency", "usd")
        .str("customer", &u.id(Kind::Customer, cust))
        .str("description", "Payment for invoice")
        .bool("disputed", u.charge_dispute(i).is_some())
        .null("failure_balance_transaction")
        .null("failure_code")
        .null("failure_message")
        .raw("fraud_details", "{}")
        .str("invoice", &u.id(Kind::Invoice, i))
        .bool("livemode", false)
        .raw("metadata", "{}")
        .null("on_behalf_of");
    {
        let mut oc = o.obj("outcome");
        oc.str("network_status", "approved_by_network")
            .null("reason")
            .str("risk_level", "normal")
            .int("risk_score", (n % 60) as i64)
            .str("seller_message", "Payment complete.")
            .str("type", "authorized");
        oc.end();
    }
    o.bool("paid", true)
        .str("payment_intent", &u.id(Kind::PaymentIntent, i))
        .str("payment_method", &format!("pm_{}", &id[3..]));
    {
        let mut pmd = o.obj("payment_method_details");
        {
            let mut card = pmd.obj("card");
            card.str("brand", if n.is_multiple_of(3) { "mastercard" } else { "visa" })
                .raw(
                    "checks",
                    r#"{"address_line1_check":null,"address_postal_code_check":null,"cvc_check":"pass"}"#,
                )
                .str("country", "US")
                .int("exp_month", 1 + (n >> 8) as i64 % 12)
                .int("exp_year", 2027 + (n >> 12) as i64 % 5)
                .str("fingerprint", &format!("{:016x}", h(u.seed, 0xF1, cust)))
                .str("funding", "credit")
                .null("installments")
                .str("last4", card_last4(u, i))
                .null("mandate")
                .str("network", if n.is_multiple_of(3) { "mastercard" } else { "visa" })
                .null("three_d_secure")
                .null("wallet");
            card.end();
        }
        pmd.str("type", "card");
        pmd.end();
    }
    o.str("receipt_email", &p.email)
        .null("receipt_number")
        .str(
            "receipt_url",
            &format!("https://pay.stripe.com/receipts/payment/{id}"),
        )
        .bool("refunded", refunded)
        .null("review")
        .null("shipping")
        .null("source_transfer")
        .null("statement_descriptor")
        .null("statement_descriptor_suffix")
        .str("status", "succeeded")
        .null("transfer_data")
        .null("transfer_group");
    ctx.finish(o);
}

fn refund(ctx: Ctx<'_>, k: u64, out: &mut String) {
    let u = ctx.u;
    let ch = u.refund_charge(k);
    let mut o = Obj::new(out);
    o.str("id", &u.id(Kind::Refund, k))
        .str("object", "refund")
        .int_or_str("amount", u.payment_amount(ch), ctx.changed_type())
        .null("balance_transaction")
        .str("charge", &u.id(Kind::Charge, ch))
        .int("created", u.created(Kind::Refund, k))
        .str("currency", "usd")
        .raw("metadata", "{}")
        .str("payment_intent", &u.id(Kind::PaymentIntent, ch))
        .str("reason", "requested_by_customer")
        .null("receipt_number")
        .null("source_transfer_reversal")
        .str("status", "succeeded")
        .null("transfer_reversal");
    ctx.finish(o);
}

fn balance_transaction(ctx: Ctx<'_>, i: u64, out: &mut String) {
    let u = ctx.u;
    let amount = u.payment_amount(i);
    let fee = amount * 29 / 1_000 + 30;
    let created = u.created(Kind::BalanceTransaction, i);
    let mut o = Obj::new(out);
    o.str("id", &u.id(Kind::BalanceTransaction, i))
        .str("object", "balance_transaction")
        .int_or_str("amount", amount, ctx.changed_type())
        .int("available_on", created + 2 * 86_400)
        .int("created", created)
        .str("currency", "usd")
        .str("description", "Payment for invoice")
        .null("exchange_rate")
        .int("fee", fee);
    {
        let out = o.value("fee_details");
        out.push('[');
        let mut f = Obj::new(out);
        f.int("amount", fee)
            .null("application")
            .str("currency", "usd")
            .str("description", "Stripe processing fees")
            .str("type", "stripe_fee");
        f.end();
        out.push(']');
    }
    o.int("net", amount - fee)
        .str("reporting_category", "charge")
        .str("source", &u.id(Kind::Charge, i))
        .str("status", "available")
        .str("type", "charge");
    ctx.finish(o);
}

/// A coupon: every third is an amount off (once), the others a percentage
/// off (forever, or for 3 months every second).
fn coupon(ctx: Ctx<'_>, k: u64, out: &mut String) {
    let u = ctx.u;
    let n = h(u.seed, 0xC09, k);
    let mut o = Obj::new(out);
    o.str("id", &u.id(Kind::Coupon, k)).str("object", "coupon");
    if k.is_multiple_of(3) {
        o.int_or_str(
            "amount_off",
            500 + (n % 10) as i64 * 500,
            ctx.changed_type(),
        )
        .int("created", u.created(Kind::Coupon, k))
        .str("currency", "usd")
        .str("duration", "once")
        .null("duration_in_months");
    } else {
        o.null("amount_off")
            .int("created", u.created(Kind::Coupon, k))
            .null("currency");
        if k.is_multiple_of(2) {
            o.str("duration", "repeating").int("duration_in_months", 3);
        } else {
            o.str("duration", "forever").null("duration_in_months");
        }
    }
    o.bool("livemode", false)
        .null("max_redemptions")
        .raw("metadata", "{}")
        .str("name", &format!("Sandbox coupon {k}"));
    if k.is_multiple_of(3) {
        o.null("percent_off");
    } else {
        o.raw("percent_off", &format!("{}.0", 5 + (n % 8) * 5));
    }
    o.null("redeem_by")
        .int("times_redeemed", ((n >> 8) % 40) as i64)
        .bool("valid", true);
    ctx.finish(o);
}

/// An automatic payout to the account's bank account, two days in transit.
fn payout(ctx: Ctx<'_>, k: u64, out: &mut String) {
    let u = ctx.u;
    let created = u.created(Kind::Payout, k);
    let arrival = created + 2 * 86_400;
    let paid = arrival <= u.epoch;
    let mut o = Obj::new(out);
    o.str("id", &u.id(Kind::Payout, k))
        .str("object", "payout")
        .int_or_str(
            "amount",
            10_000 + (h(u.seed, 0x9A7, k) % 500_000) as i64,
            ctx.changed_type(),
        )
        .int("arrival_date", arrival)
        .bool("automatic", true)
        .null("balance_transaction")
        .int("created", created)
        .str("currency", "usd")
        .str("description", "STRIPE PAYOUT")
        .null("destination")
        .null("failure_balance_transaction")
        .null("failure_code")
        .null("failure_message")
        .bool("livemode", false)
        .raw("metadata", "{}")
        .str("method", "standard")
        .null("original_payout")
        .str(
            "reconciliation_status",
            if paid { "completed" } else { "in_progress" },
        )
        .null("reversed_by")
        .str("source_type", "card")
        .null("statement_descriptor")
        .str("status", if paid { "paid" } else { "in_transit" })
        .str("type", "bank_account");
    ctx.finish(o);
}

/// A dispute of a charge: old ones are decided (won or lost), those of the
/// last three weeks still need a response.
fn dispute(ctx: Ctx<'_>, k: u64, out: &mut String) {
    let u = ctx.u;
    let ch = u.dispute_charge(k);
    let created = u.created(Kind::Dispute, k);
    let due_by = created + 21 * 86_400;
    let open = due_by > u.epoch;
    let status = if open {
        "needs_response"
    } else if k.is_multiple_of(3) {
        "lost"
    } else {
        "won"
    };
    const REASONS: [&str; 4] = ["fraudulent", "product_not_received", "duplicate", "general"];
    let mut o = Obj::new(out);
    o.str("id", &u.id(Kind::Dispute, k))
        .str("object", "dispute")
        .int_or_str("amount", u.payment_amount(ch), ctx.changed_type())
        .raw("balance_transactions", "[]")
        .str("charge", &u.id(Kind::Charge, ch))
        .int("created", created)
        .str("currency", "usd");
    {
        let mut e = o.obj("evidence");
        for key in [
            "access_activity_log",
            "billing_address",
            "cancellation_policy",
            "cancellation_policy_disclosure",
            "cancellation_rebuttal",
            "customer_communication",
            "customer_email_address",
            "customer_name",
            "customer_purchase_ip",
            "customer_signature",
            "duplicate_charge_documentation",
            "duplicate_charge_explanation",
            "duplicate_charge_id",
            "product_description",
            "receipt",
            "refund_policy",
            "refund_policy_disclosure",
            "refund_refusal_explanation",
            "service_date",
            "service_documentation",
            "shipping_address",
            "shipping_carrier",
            "shipping_date",
            "shipping_documentation",
            "shipping_tracking_number",
            "uncategorized_file",
            "uncategorized_text",
        ] {
            e.null(key);
        }
        e.end();
    }
    {
        let mut d = o.obj("evidence_details");
        d.int("due_by", due_by)
            .bool("has_evidence", !open)
            .bool("past_due", false)
            .int("submission_count", i64::from(!open));
        d.end();
    }
    o.bool("is_charge_refundable", false)
        .bool("livemode", false)
        .raw("metadata", "{}")
        .str("payment_intent", &u.id(Kind::PaymentIntent, ch))
        .str(
            "reason",
            REASONS[(h(u.seed, 0xD15, k) % REASONS.len() as u64) as usize],
        )
        .str("status", status);
    ctx.finish(o);
}

/// One of four tax rates: US sales taxes and EU VATs, the last one inactive.
fn tax_rate(ctx: Ctx<'_>, k: u64, out: &mut String) {
    const RATES: [(&str, Option<&str>, &str, &str, bool); 4] = [
        ("US", Some("CA"), "Sales Tax", "sales_tax", false),
        ("DE", None, "VAT", "vat", true),
        ("US", Some("NY"), "Sales Tax", "sales_tax", false),
        ("FR", None, "TVA", "vat", true),
    ];
    const PERCENT: [&str; 4] = ["7.25", "19.0", "8.875", "20.0"];
    let u = ctx.u;
    let at = (k % RATES.len() as u64) as usize;
    let (country, state, name, tax_type, inclusive) = RATES[at];
    let mut o = Obj::new(out);
    o.str("id", &u.id(Kind::TaxRate, k))
        .str("object", "tax_rate")
        .bool("active", k + 1 < u.count(Kind::TaxRate))
        .str("country", country)
        .int("created", u.created(Kind::TaxRate, k))
        .null("description")
        .str("display_name", name)
        .raw("effective_percentage", PERCENT[at])
        .bool("inclusive", inclusive)
        .str("jurisdiction", state.unwrap_or(country))
        .bool("livemode", false)
        .raw("metadata", "{}");
    if ctx.changed_type() {
        o.str("percentage", PERCENT[at]);
    } else {
        o.raw("percentage", PERCENT[at]);
    }
    o.opt_str("state", state).str("tax_type", tax_type);
    ctx.finish(o);
}

/// A customer-facing code for a coupon (two per coupon); the coupon is
/// embedded, as Stripe embeds it.
fn promotion_code(ctx: Ctx<'_>, k: u64, out: &mut String) {
    let u = ctx.u;
    let c = u.promotion_code_coupon(k);
    let n = h(u.seed, 0x960, k);
    let mut o = Obj::new(out);
    o.str("id", &u.id(Kind::PromotionCode, k))
        .str("object", "promotion_code")
        .bool("active", !k.is_multiple_of(5))
        .str("code", &format!("SAVE{c}X{}", k % 2));
    coupon(Ctx { u, drift: None }, c, o.value("coupon"));
    o.int("created", u.created(Kind::PromotionCode, k))
        .null("customer")
        .null("expires_at")
        .bool("livemode", false)
        .null("max_redemptions")
        .raw("metadata", "{}");
    {
        let mut r = o.obj("restrictions");
        r.raw("currency_options", "{}")
            .bool("first_time_transaction", k % 2 == 1)
            .null("minimum_amount")
            .null("minimum_amount_currency");
        r.end();
    }
    o.int_or_str("times_redeemed", (n % 20) as i64, ctx.changed_type());
    ctx.finish(o);
}
