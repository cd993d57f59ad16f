//! End to end: the Stripe sandbox -> weft -> stage -> DuckDB, incremental
//! re-runs. (The `weft run` child killed mid-run lives in the runner's
//! `tests/crash.rs`, where cargo builds the binary.)
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashSet;

use weft_core::{CancellationToken, StreamStatus};
use weft_e2e::{Harness, max_unix_seconds, query_i64, query_strings};
use weft_runner::RunOptions;
use weft_sandbox::{Api, Faults, SandboxConfig};

const STREAMS: [&str; 15] = [
    "customers",
    "charges",
    "invoices",
    "subscriptions",
    "products",
    "prices",
    "payment_intents",
    "refunds",
    "balance_transactions",
    "events",
    "coupons",
    "payouts",
    "disputes",
    "tax_rates",
    "promotion_codes",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stripe_full_then_incremental_run_lands_exact_rows() {
    let h = Harness::stripe(
        SandboxConfig {
            size: 300,
            ..Default::default()
        },
        "",
    )
    .await;
    let db = h.warehouse_path();
    let control = h.sandbox.control();

    let first = h.run_one().await;
    assert!(first.succeeded(), "{}", first.to_table());
    assert_eq!(first.streams.len(), STREAMS.len());

    // Every customer exactly once, with the sandbox's ids.
    let expected: HashSet<String> = control.stripe_customer_ids().into_iter().collect();
    assert_eq!(expected.len(), 300);
    let loaded: Vec<String> = query_strings(&db, "SELECT id FROM stripe.customers");
    assert_eq!(loaded.len(), 300, "no duplicates");
    assert_eq!(loaded.into_iter().collect::<HashSet<_>>(), expected);
    assert_eq!(first.stream("customers").unwrap().rows, 300);

    // Every stream landed its table, one load each, and a cursor.
    for s in STREAMS {
        let n = query_i64(&db, &format!("SELECT count(*) FROM stripe.{s}"));
        let distinct = query_i64(&db, &format!("SELECT count(DISTINCT id) FROM stripe.{s}"));
        assert_eq!(n, distinct, "{s}: duplicated keys");
        assert_eq!(
            first.stream(s).unwrap().rows as i64,
            n,
            "{s}: report rows vs table"
        );
    }
    assert_eq!(
        query_i64(
            &db,
            "SELECT count(*) FROM _weft._weft_loads WHERE pipeline = 'stripe'"
        ),
        first.streams.iter().filter(|s| s.loads > 0).count() as i64
    );
    let max_created = max_unix_seconds(&db, "stripe.customers", "created");
    let cursor = first.stream("customers").unwrap().cursor.clone().unwrap();
    assert_eq!(
        cursor["created"].as_i64().unwrap(),
        max_created,
        "cursor = newest created"
    );
    let saved = query_strings(
        &db,
        "SELECT state FROM _weft._weft_state WHERE pipeline='stripe' AND stream='customers'",
    );
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&saved[0]).unwrap(),
        cursor
    );
    assert_eq!(
        query_i64(
            &db,
            "SELECT count(*) FROM stripe.customers WHERE _weft_load_id IS NULL OR _weft_extracted_at IS NULL"
        ),
        0
    );

    // Change the world: rename one, delete one, create three.
    let ids = control.stripe_customer_ids();
    let (renamed, deleted) = (ids[10].clone(), ids[20].clone());
    control.advance_clock(600);
    control
        .stripe_update_customer(&renamed, serde_json::json!({"name": "Renamed Person"}))
        .unwrap();
    control.stripe_delete_customer(&deleted).unwrap();
    let created = control.stripe_create_customers(3);
    control.advance_clock(600);

    let before = control.request_count(Api::Stripe);
    let second = h.run_one().await;
    assert!(second.succeeded(), "{}", second.to_table());
    let customers = second.stream("customers").unwrap();
    assert!(
        customers.rows >= 5 && customers.rows <= 10,
        "only changes are loaded: {}",
        customers.rows
    );
    assert!(
        control.request_count(Api::Stripe) - before < 40,
        "an incremental run makes few requests"
    );

    assert_eq!(query_i64(&db, "SELECT count(*) FROM stripe.customers"), 303);
    assert_eq!(
        query_i64(&db, "SELECT count(DISTINCT id) FROM stripe.customers"),
        303
    );
    assert_eq!(
        query_strings(
            &db,
            &format!("SELECT name FROM stripe.customers WHERE id = '{renamed}'")
        ),
        vec!["Renamed Person".to_string()]
    );
    assert_eq!(
        query_strings(
            &db,
            "SELECT id FROM stripe.customers WHERE _weft_deleted_at IS NOT NULL"
        ),
        vec![deleted.clone()]
    );
    for id in &created {
        assert_eq!(
            query_i64(
                &db,
                &format!("SELECT count(*) FROM stripe.customers WHERE id = '{id}'")
            ),
            1
        );
    }
    let new_cursor = second.stream("customers").unwrap().cursor.clone().unwrap();
    assert!(
        new_cursor["created"].as_i64() > cursor["created"].as_i64(),
        "{new_cursor} vs {cursor}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_errors_fail_the_stream_with_a_clear_error_and_keep_state() {
    let h = Harness::stripe(
        SandboxConfig {
            size: 50,
            ..Default::default()
        },
        r#"streams = ["customers"]"#,
    )
    .await;
    let first = h.run_one().await;
    assert!(first.succeeded());
    h.sandbox.control().set_faults(
        Api::Stripe,
        Faults {
            bad_auth: true,
            ..Default::default()
        },
    );
    let second = h.run_one().await;
    let s = second.stream("customers").unwrap();
    assert_eq!(s.status, StreamStatus::Failed);
    let err = s.error.clone().unwrap();
    assert!(
        err.contains("stripe/customers") && err.contains("401"),
        "{err}"
    );
    assert!(
        !err.contains(&SandboxConfig::default().api_key),
        "no secret in errors: {err}"
    );
    // The committed cursor is untouched.
    assert_eq!(s.cursor, first.stream("customers").unwrap().cursor);
}

/// A pipeline whose source cannot be built fails alone: the others still run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_that_cannot_start_fails_its_pipeline_only() {
    let h = Harness::stripe(
        SandboxConfig {
            size: 30,
            ..Default::default()
        },
        r#"streams = ["customers"]"#,
    )
    .await;
    // A Zoom pipeline first whose config lacks its credentials.
    let text = std::fs::read_to_string(&h.config_path).unwrap();
    let text = text.replacen(
        "[[pipelines]]",
        "[[pipelines]]\nname = \"zoom\"\nconnector = \"zoom\"\n[pipelines.config]\naccount_id = \"a\"\n\n[[pipelines]]",
        1,
    );
    std::fs::write(&h.config_path, text).unwrap();
    let outcome = weft_runner::run(
        &h.config(),
        &RunOptions::default(),
        CancellationToken::new(),
        None,
    )
    .await
    .unwrap();
    assert!(!outcome.succeeded());
    let names: Vec<&str> = outcome
        .pipelines
        .iter()
        .map(|r| r.pipeline.as_str())
        .collect();
    assert_eq!(names, ["zoom", "stripe"]);
    let zoom = &outcome.pipelines[0];
    let err = zoom.error.clone().unwrap();
    assert!(err.contains("pipeline `zoom`"), "{err}");
    assert!(zoom.streams.is_empty() && !zoom.succeeded());
    assert!(
        zoom.to_table().contains("not started"),
        "{}",
        zoom.to_table()
    );
    let stripe = &outcome.pipelines[1];
    assert!(stripe.succeeded(), "{}", stripe.to_table());
    assert_eq!(
        stripe.stream("customers").unwrap().rows as usize,
        h.sandbox.control().stripe_customer_ids().len()
    );
}
