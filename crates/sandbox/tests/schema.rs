//! Every object the Stripe simulator serves is checked against the OpenAPI
//! component schema in `specs/vendor/stripe/spec3.json` (Stripe's `spec3.yaml`, cut down): each emitted
//! field must be a documented property (recursively, through `$ref` and
//! `anyOf`), each required property present, types and enums respected.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/openapi.rs"]
mod openapi;

use serde_json::Value;
use weft_sandbox::{Api, Sandbox, SandboxConfig};

fn spec() -> Value {
    openapi::load("stripe/spec3.json")
}

fn resolve<'a>(spec: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let name = r.trim_start_matches("#/components/schemas/");
            &spec["components"]["schemas"][name]
        }
        None => schema,
    }
}

fn check(spec: &Value, schema: &Value, value: &Value, path: &str, errors: &mut Vec<String>) {
    let schema = resolve(spec, schema);
    if value.is_null() {
        if schema["nullable"] != Value::Bool(true) {
            errors.push(format!("{path}: null but not nullable"));
        }
        return;
    }
    if let Some(variants) = schema.get("anyOf").and_then(Value::as_array) {
        let mut all = Vec::new();
        for v in variants {
            let mut errs = Vec::new();
            check(spec, v, value, path, &mut errs);
            if errs.is_empty() {
                return;
            }
            all.extend(errs);
        }
        errors.push(format!("{path}: matches no anyOf variant: {all:?}"));
        return;
    }
    match schema.get("type").and_then(Value::as_str) {
        Some("object") => {
            let Some(obj) = value.as_object() else {
                errors.push(format!("{path}: expected object, got {value}"));
                return;
            };
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (k, v) in obj {
                    match props.get(k) {
                        Some(p) => check(spec, p, v, &format!("{path}.{k}"), errors),
                        None => errors.push(format!("{path}.{k}: not a documented property")),
                    }
                }
            }
            for r in schema
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let r = r.as_str().unwrap();
                if !obj.contains_key(r) {
                    errors.push(format!("{path}.{r}: required property missing"));
                }
            }
        }
        Some("array") => match value.as_array() {
            Some(items) => {
                for (i, item) in items.iter().enumerate() {
                    check(
                        spec,
                        &schema["items"],
                        item,
                        &format!("{path}[{i}]"),
                        errors,
                    );
                }
            }
            None => errors.push(format!("{path}: expected array")),
        },
        Some("string") => match value.as_str() {
            Some(s) => {
                if let Some(options) = schema.get("enum").and_then(Value::as_array)
                    && !options.iter().any(|o| o == s)
                {
                    errors.push(format!("{path}: {s:?} not in enum {options:?}"));
                }
            }
            None => errors.push(format!("{path}: expected string, got {value}")),
        },
        Some("integer") if !value.is_i64() => {
            errors.push(format!("{path}: expected integer, got {value}"));
        }
        Some("number") if !value.is_number() => errors.push(format!("{path}: expected number")),
        Some("boolean") if !value.is_boolean() => {
            errors.push(format!("{path}: expected boolean"));
        }
        _ => {}
    }
}

fn validate(spec: &Value, component: &str, value: &Value) -> Vec<String> {
    let schema = openapi::component(spec, component);
    let mut errors = Vec::new();
    check(spec, schema, value, component, &mut errors);
    errors
}

async fn fetch(sb: &Sandbox, path: &str) -> Value {
    reqwest::Client::new()
        .get(format!("{}{}", sb.base_url(Api::Stripe), path))
        .bearer_auth("sk_test_weft_sandbox")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn served_objects_match_the_openapi_components() {
    let spec = spec();
    let sb = Sandbox::start(SandboxConfig {
        size: 400,
        rate_limits: false,
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let control = sb.control();
    let ids = control.stripe_customer_ids();
    control
        .stripe_update_customer(&ids[0], serde_json::json!({"name": "Renamed"}))
        .unwrap();
    control.stripe_delete_customer(&ids[1]).unwrap();
    let subscription = control.stripe_subscription_ids()[0].clone();
    control.stripe_cancel_subscription(&subscription).unwrap();
    // `coupon.deleted` joins the events checked below.
    let coupon = control.stripe_coupon_ids()[0].clone();
    control.stripe_delete_coupon(&coupon).unwrap();

    let mut errors = Vec::new();
    let mut checked = 0;
    for (path, component) in [
        ("customers", "customer"),
        ("charges", "charge"),
        ("invoices", "invoice"),
        ("subscriptions", "subscription"),
        ("products", "product"),
        ("prices", "price"),
        ("payment_intents", "payment_intent"),
        ("refunds", "refund"),
        ("balance_transactions", "balance_transaction"),
        ("coupons", "coupon"),
        ("payouts", "payout"),
        ("disputes", "dispute"),
        ("tax_rates", "tax_rate"),
        ("promotion_codes", "promotion_code"),
        ("events", "event"),
    ] {
        let page = fetch(&sb, &format!("/v1/{path}?limit=100")).await;
        assert_eq!(page["object"], "list");
        assert_eq!(page["url"], format!("/v1/{path}"));
        assert!(page["has_more"].is_boolean());
        let data = page["data"].as_array().unwrap();
        assert!(!data.is_empty(), "{path} is empty");
        for object in data {
            errors.extend(validate(&spec, component, object));
            checked += 1;
            if component == "event" {
                let inner = &object["data"]["object"];
                let kind = inner["object"].as_str().unwrap();
                let kind = if inner["deleted"] == true {
                    "customer"
                } else {
                    kind
                };
                let mut inner = inner.clone();
                inner.as_object_mut().unwrap().remove("deleted");
                errors.extend(validate(&spec, kind, &inner));
            }
        }
    }
    // Canceled subscriptions (generated and canceled since) are listed only
    // when asked for.
    let canceled = fetch(&sb, "/v1/subscriptions?limit=100&status=canceled").await;
    let canceled = canceled["data"].as_array().unwrap();
    assert_eq!(canceled.len(), 24);
    for object in canceled {
        errors.extend(validate(&spec, "subscription", object));
    }
    let events = fetch(&sb, "/v1/events?type=coupon.deleted").await;
    let events = events["data"].as_array().unwrap();
    assert_eq!(events.len(), 1);
    errors.extend(validate(&spec, "event", &events[0]));
    errors.extend(validate(&spec, "coupon", &events[0]["data"]["object"]));
    let deleted = fetch(&sb, &format!("/v1/customers/{}", ids[1])).await;
    errors.extend(validate(&spec, "deleted_customer", &deleted));
    errors.extend(validate(&spec, "account", &fetch(&sb, "/v1/account").await));
    errors.extend(validate(
        &spec,
        "error",
        &fetch(&sb, "/v1/customers?limit=500").await,
    ));
    errors.sort();
    errors.dedup();
    assert!(
        errors.is_empty(),
        "{} schema violations, e.g.:\n{}",
        errors.len(),
        errors
            .iter()
            .take(40)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(checked > 600, "checked {checked}");
    sb.shutdown().await;
}
