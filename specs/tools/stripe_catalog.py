#!/usr/bin/env python3
"""Regenerates specs/stripe.toml from Stripe's OpenAPI (../shared/upstream-api-specs/stripe/spec3.yaml).

Usage: python3 specs/tools/stripe_catalog.py ../shared/upstream-api-specs/stripe/spec3.yaml > specs/stripe.toml
The catalog is checked in; a test in connectors/stripe checks it against the spec.
"""
import html, json, re, sys
import yaml

# Query parameters a stream's list requests always send: without `status`
# Stripe lists only subscriptions that are not canceled.
LIST_PARAMS = {"subscriptions": {"status": "all"}}
# A field that marks a listed object deleted (Unix seconds), as its `*.deleted`
# event does: a subscription ends (`ended_at`) when `customer.subscription.deleted` fires.
DELETED_AT_FIELD = {"subscriptions": "ended_at"}

STREAMS = [
    # name, component, endpoint, events that update/delete it, deletes?
    # (True exactly when the events include a `*.deleted`)
    ("customers", "customer", "/v1/customers", ["customer.created", "customer.updated", "customer.deleted"], True,
     "Customers: the people and companies you bill."),
    ("charges", "charge", "/v1/charges", ["charge.captured", "charge.expired", "charge.failed", "charge.pending", "charge.refunded", "charge.succeeded", "charge.updated"], False,
     "Charges: attempts to move money into your account."),
    ("invoices", "invoice", "/v1/invoices", ["invoice.created", "invoice.deleted", "invoice.finalized", "invoice.marked_uncollectible", "invoice.paid", "invoice.payment_failed", "invoice.payment_succeeded", "invoice.sent", "invoice.updated", "invoice.voided"], True,
     "Invoices: statements of amounts owed by a customer."),
    ("subscriptions", "subscription", "/v1/subscriptions", ["customer.subscription.created", "customer.subscription.deleted", "customer.subscription.paused", "customer.subscription.resumed", "customer.subscription.updated"], True,
     "Subscriptions: recurring charges for a customer."),
    ("products", "product", "/v1/products", ["product.created", "product.deleted", "product.updated"], True,
     "Products: the goods and services you sell."),
    ("prices", "price", "/v1/prices", ["price.created", "price.deleted", "price.updated"], True,
     "Prices: how much and how often to charge for products."),
    ("payment_intents", "payment_intent", "/v1/payment_intents", ["payment_intent.amount_capturable_updated", "payment_intent.canceled", "payment_intent.created", "payment_intent.partially_funded", "payment_intent.payment_failed", "payment_intent.processing", "payment_intent.requires_action", "payment_intent.succeeded"], False,
     "PaymentIntents: the lifecycle of collecting a payment."),
    ("refunds", "refund", "/v1/refunds", ["charge.refund.updated"], False,
     "Refunds: money returned from a charge."),
    ("balance_transactions", "balance_transaction", "/v1/balance_transactions", [], False,
     "Balance transactions: every movement of funds in the balance (immutable)."),
    ("events", "event", "/v1/events", [], False,
     "Events: the account's change log (Stripe keeps 30 days)."),
    ("coupons", "coupon", "/v1/coupons", ["coupon.created", "coupon.deleted", "coupon.updated"], True,
     "Coupons: discounts applied to customers, subscriptions or invoices."),
    ("payouts", "payout", "/v1/payouts", ["payout.canceled", "payout.created", "payout.failed", "payout.paid", "payout.reconciliation_completed", "payout.updated"], False,
     "Payouts: funds sent from the Stripe balance to a bank account or card."),
    ("disputes", "dispute", "/v1/disputes", ["charge.dispute.closed", "charge.dispute.created", "charge.dispute.funds_reinstated", "charge.dispute.funds_withdrawn", "charge.dispute.updated"], False,
     "Disputes: customers questioning charges with their card issuer."),
    ("tax_rates", "tax_rate", "/v1/tax_rates", ["tax_rate.created", "tax_rate.updated"], False,
     "Tax rates: the rates applied to invoices, subscriptions and Checkout sessions."),
    ("promotion_codes", "promotion_code", "/v1/promotion_codes", ["promotion_code.created", "promotion_code.updated"], False,
     "Promotion codes: customer-facing codes for coupons."),
]

MONEY_HINT = re.compile(r"smallest currency unit|in cents|\bcents\b|minor unit", re.I)


def doc(text):
    text = html.unescape(re.sub(r"<[^>]+>", "", text or "")).strip().replace("\n", " ")
    text = re.sub(r"\s+", " ", text)
    first = re.split(r"(?<=[.])\s", text)[0]
    return first[:300]


def field_type(name, prop):
    alts = prop.get("anyOf") or prop.get("oneOf")
    if alts:
        if any(a.get("type") == "string" for a in alts):
            return "string"
        return "json"
    t = prop.get("type")
    if "$ref" in prop or t in ("object", "array"):
        return "json"
    if t == "integer":
        if prop.get("format") == "unix-time":
            return "unix_seconds"
        if MONEY_HINT.search(prop.get("description", "")):
            return "money"
        return "integer"
    if t == "number":
        return "number"
    if t == "boolean":
        return "boolean"
    return "string"


def q(s):
    return json.dumps(s, ensure_ascii=False)


def main(path):
    spec = yaml.load(open(path), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    schemas = spec["components"]["schemas"]
    out = ['# Stripe stream catalog. Generated by specs/tools/stripe_catalog.py from Stripe\'s',
           '# OpenAPI (API 2023-08-16); checked against it by connectors/stripe/tests/catalog.rs.',
           'connector = "stripe"',
           'description = "Stripe payments: customers, billing and the balance."', '']
    for name, comp, endpoint, events, deletes, desc in STREAMS:
        props = schemas[comp]["properties"]
        out += ["[[streams]]", f"name = {q(name)}", f"description = {q(desc)}", f"endpoint = {q(endpoint)}",
                'pagination = "stripe_list"', 'primary_key = ["id"]', 'cursor = "created"',
                'write_disposition = "merge"']
        if deletes:
            out.append("deletes = true")
        out += ["", "[streams.options]", f"object = {q(comp)}", "events = [" + ", ".join(q(e) for e in events) + "]"]
        params = LIST_PARAMS.get(name)
        if params:
            out.append("list_params = { " + ", ".join(f"{k} = {q(v)}" for k, v in params.items()) + " }")
        if name in DELETED_AT_FIELD:
            out.append(f"deleted_at_field = {q(DELETED_AT_FIELD[name])}")
        out.append("")
        for fname in sorted(props, key=lambda f: (f != "id", f)):
            prop = props[fname]
            out += ["[[streams.fields]]", f"name = {q(fname)}", f"type = {q(field_type(fname, prop))}",
                    f"doc = {q(doc(prop.get('description', '')))}", ""]
    print("\n".join(out))


if __name__ == "__main__":
    main(sys.argv[1])
