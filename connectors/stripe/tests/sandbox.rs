//! End to end against the sandbox's Stripe simulator: exact counts, the events
//! feed, then an incremental re-run that returns exactly what changed — on
//! today's clock and on a clock a year ahead (history is generated relative to
//! the sandbox's start, so the suite passes whatever day it runs).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeSet;

use serde_json::{Value, json};
use weft_conformance::read::{StreamRead, read_stream};
use weft_core::{SecretRef, StreamState};
use weft_http::BudgetRegistry;
use weft_sandbox::{Api, DEFAULT_STRIPE_KEY, Sandbox, SandboxConfig};
use weft_stripe::{StripeConfig, StripeSource};

/// Reads `stream` from `state`, the extraction starting at the sandbox's `now`
/// (the client's clock agrees with the vendor's, as in production).
async fn read(
    src: &StripeSource,
    stream: &str,
    state: Option<StreamState>,
    now: i64,
) -> StreamRead {
    let at = chrono::DateTime::from_timestamp(now, 0).unwrap();
    let r = read_stream(src, stream).state(state).started_at(at).await;
    let r = r.into_result().unwrap();
    assert_eq!(r.batches, 0, "{stream}: {:?}", r.notices);
    assert!(r.last_state().is_some(), "{stream}: no checkpoint");
    r
}

fn ids(records: &[Value]) -> BTreeSet<String> {
    records
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn customers_and_events_then_only_changes() {
    counts_then_incremental(None).await;
}

#[tokio::test]
async fn the_same_holds_with_the_clock_a_year_ahead() {
    counts_then_incremental(Some(weft_sandbox::a_year_ahead())).await;
}

async fn counts_then_incremental(clock_start: Option<i64>) {
    let sandbox = Sandbox::start(SandboxConfig {
        size: 200,
        rate_limits: false,
        clock_start,
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let control = sandbox.control();
    let key = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(key.path(), DEFAULT_STRIPE_KEY).unwrap();
    let mut config = StripeConfig::new(
        Some(sandbox.base_url(Api::Stripe)),
        SecretRef::File {
            file: key.path().to_path_buf(),
        },
    );
    config.page_size = 100;
    config.settle_secs = 0;
    let src = StripeSource::new(config, &BudgetRegistry::new()).unwrap();

    let customers = read(&src, "customers", None, control.now()).await;
    let expected: BTreeSet<String> = control.stripe_customer_ids().into_iter().collect();
    assert_eq!(expected.len(), 200);
    assert_eq!(ids(&customers.records), expected);
    assert_eq!(customers.records.len(), 200, "a full read lists each once");
    // Stripe keeps 30 days of events: the generated history's last month is
    // always inside that window, whatever the clock says.
    let events = read(&src, "events", None, control.now()).await;
    assert!(
        events.records.len() > 10,
        "events in the last 30 days: {}",
        events.records.len()
    );
    let newest = events
        .records
        .iter()
        .map(|e| e["created"].as_i64().unwrap())
        .max()
        .unwrap();
    assert!(newest <= control.now() && newest > control.now() - 30 * 86_400);

    // Change one customer and create two, then re-read from the saved state:
    // exactly those three (a new customer comes from both its `customer.created`
    // event and the list; the warehouse merges them by key).
    control.advance_clock(120);
    let changed = customers.records[17]["id"].as_str().unwrap().to_owned();
    control
        .stripe_update_customer(&changed, json!({"name": "Changed Name"}))
        .unwrap();
    let created = control.stripe_create_customers(2);
    control.advance_clock(5);
    let again = read(
        &src,
        "customers",
        customers.last_state().cloned(),
        control.now(),
    )
    .await;
    // Without a settle delay the cursor's own second is listed again.
    let cursor: i64 = customers.last_state().unwrap().get("created").unwrap();
    let mut want: BTreeSet<String> = created.into_iter().collect();
    want.insert(changed.clone());
    want.extend(
        customers
            .records
            .iter()
            .filter(|r| r["created"].as_i64() == Some(cursor))
            .map(|r| r["id"].as_str().unwrap().to_owned()),
    );
    assert_eq!(ids(&again.records), want);
    let renamed = again.records.iter().find(|r| r["id"] == changed.as_str());
    assert_eq!(renamed.unwrap()["name"], "Changed Name");
    // Nothing changed since: the next re-run reads only the cursor's second.
    let cursor: i64 = again.last_state().unwrap().get("created").unwrap();
    let none = read(
        &src,
        "customers",
        again.last_state().cloned(),
        control.now(),
    )
    .await;
    assert!(
        none.records
            .iter()
            .all(|r| r["created"].as_i64() == Some(cursor)),
        "{:?}",
        none.records
    );
    assert!(none.records.len() <= 2, "{:?}", none.records);
    sandbox.shutdown().await;
}

/// Builds a source on `sandbox` allowed `rps` requests per second.
fn source_at(sandbox: &Sandbox, rps: f64) -> StripeSource {
    let key = weft_conformance::secret_file(DEFAULT_STRIPE_KEY).unwrap();
    let mut config = StripeConfig::new(Some(sandbox.base_url(Api::Stripe)), key);
    config.settle_secs = 0;
    config.requests_per_second = Some(rps);
    StripeSource::new(config, &BudgetRegistry::new()).unwrap()
}

#[tokio::test]
async fn a_sliced_backfill_reads_every_customer_once_within_the_rate_limit() {
    // Every request answered after 100 ms; the account allows 100 requests/s.
    const RATE: u32 = 100;
    let sandbox = Sandbox::start(SandboxConfig {
        size: 5_000,
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let control = sandbox.control();
    control.set_rate_limit_per_sec(Api::Stripe, Some(RATE));
    control.set_faults(
        Api::Stripe,
        weft_sandbox::Faults {
            latency_ms: 100,
            ..Default::default()
        },
    );
    let expected: BTreeSet<String> = control.stripe_customer_ids().into_iter().collect();
    let at = chrono::DateTime::from_timestamp(control.now(), 0).unwrap();

    let sequential = read_stream(&source_at(&sandbox, f64::from(RATE)), "customers")
        .started_at(at)
        .max_in_flight(1)
        .await
        .into_result()
        .unwrap();
    assert_eq!(ids(&sequential.records), expected);
    assert_eq!(sequential.metrics.peak_in_flight, 1);

    let before = control.requests(Api::Stripe).len();
    let sliced = read_stream(&source_at(&sandbox, f64::from(RATE)), "customers")
        .started_at(at)
        .await
        .into_result()
        .unwrap();
    let requests = control.requests(Api::Stripe);
    let requests = &requests[before..];
    // Every customer exactly once, the same as the sequential read.
    assert_eq!(sliced.records.len(), expected.len());
    assert_eq!(ids(&sliced.records), ids(&sequential.records));
    // The same cursor at the end.
    assert_eq!(sliced.last_state(), sequential.last_state());
    assert!(sliced.last_state().unwrap().0.get("slices").is_none());
    // Concurrent, inside the budget: ~100/s x 100 ms = 10 in flight, no one
    // second holding more than the limit, no 429.
    let m = sliced.metrics;
    assert!(m.peak_in_flight >= 8, "{m:?}");
    assert!(
        m.slices_split >= 1 && m.slices_done == m.slices_planned,
        "{m:?}"
    );
    assert_eq!(m.rate_limited, 0, "{m:?}");
    let busiest = weft_sandbox::busiest_second(requests);
    assert!(busiest <= RATE as usize, "{busiest} requests in one second");
    // Every list request filtered a window of `created`, or continued one.
    assert!(
        requests
            .iter()
            .all(|r| r.path == "/v1/customers" && r.query.contains("limit=100")),
        "{:?}",
        requests.first()
    );
    sandbox.shutdown().await;
}

#[tokio::test]
async fn subscriptions_read_canceled_ones_too_and_a_cancellation_as_a_delete() {
    let sandbox = Sandbox::start(SandboxConfig {
        size: 200,
        rate_limits: false,
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let control = sandbox.control();
    let key = weft_conformance::secret_file(DEFAULT_STRIPE_KEY).unwrap();
    let mut config = StripeConfig::new(Some(sandbox.base_url(Api::Stripe)), key);
    config.settle_secs = 0;
    let src = StripeSource::new(config, &BudgetRegistry::new()).unwrap();

    // Every subscription, the 11 canceled ones (which Stripe lists only with
    // `status=all`) included, each once.
    let full = read(&src, "subscriptions", None, control.now()).await;
    let every: BTreeSet<String> = control.stripe_subscription_ids().into_iter().collect();
    let canceled: BTreeSet<String> = control
        .stripe_canceled_subscription_ids()
        .into_iter()
        .collect();
    assert_eq!((every.len(), canceled.len()), (100, 11));
    assert_eq!(full.records.len(), 100);
    assert_eq!(ids(&full.records), every);
    let read_canceled: BTreeSet<String> = ids(&full.records)
        .into_iter()
        .filter(|id| {
            full.records
                .iter()
                .any(|r| r["id"] == id.as_str() && r["status"] == "canceled")
        })
        .collect();
    assert_eq!(read_canceled, canceled);
    // A canceled subscription is deleted as of its end, as its
    // `customer.subscription.deleted` event would say; the others are not.
    for r in &full.records {
        match r["ended_at"].as_i64() {
            Some(ended) => {
                let at = chrono::DateTime::from_timestamp(ended, 0).unwrap();
                assert_eq!(
                    r[weft_core::DELETED_AT],
                    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                );
            }
            None => assert!(r.get(weft_core::DELETED_AT).is_none(), "{r}"),
        }
    }
    let marked = full
        .records
        .iter()
        .filter(|r| r.get(weft_core::DELETED_AT).is_some())
        .count();
    assert_eq!(marked, 11);
    let requests = control.requests(Api::Stripe);
    assert!(
        requests
            .iter()
            .filter(|r| r.path == "/v1/subscriptions")
            .all(|r| r.query.contains("status=all")),
        "{requests:?}"
    );

    // A subscription canceled since (`customer.subscription.deleted`) comes
    // back from the incremental re-run marked deleted at its cancellation.
    control.advance_clock(120);
    let victim = every.difference(&canceled).next().unwrap().clone();
    control.stripe_cancel_subscription(&victim).unwrap();
    control.advance_clock(5);
    let again = read(
        &src,
        "subscriptions",
        full.last_state().cloned(),
        control.now(),
    )
    .await;
    let cursor: i64 = full.last_state().unwrap().get("created").unwrap();
    let mut want: BTreeSet<String> = full
        .records
        .iter()
        .filter(|r| r["created"].as_i64() == Some(cursor))
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    want.insert(victim.clone());
    assert_eq!(ids(&again.records), want);
    let gone = again.records.iter().find(|r| r["id"] == victim.as_str());
    let gone = gone.unwrap();
    assert_eq!(gone["status"], "canceled");
    let at = chrono::DateTime::from_timestamp(gone["canceled_at"].as_i64().unwrap(), 0).unwrap();
    assert_eq!(
        gone[weft_core::DELETED_AT],
        at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    sandbox.shutdown().await;
}

#[tokio::test]
async fn new_streams_are_read_in_full_then_from_created() {
    coupons_payouts_and_disputes(None).await;
}

#[tokio::test]
async fn new_streams_the_same_with_the_clock_a_year_ahead() {
    coupons_payouts_and_disputes(Some(weft_sandbox::a_year_ahead())).await;
}

async fn coupons_payouts_and_disputes(clock_start: Option<i64>) {
    let sandbox = Sandbox::start(SandboxConfig {
        size: 500,
        rate_limits: false,
        clock_start,
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let control = sandbox.control();
    let key = weft_conformance::secret_file(DEFAULT_STRIPE_KEY).unwrap();
    let mut config = StripeConfig::new(Some(sandbox.base_url(Api::Stripe)), key);
    config.settle_secs = 0;
    config.page_size = 7;
    let src = StripeSource::new(config, &BudgetRegistry::new()).unwrap();

    let streams = [
        ("coupons", control.stripe_coupon_ids(), 5),
        ("payouts", control.stripe_payout_ids(), 20),
        ("disputes", control.stripe_dispute_ids(), 10),
        ("tax_rates", control.stripe_tax_rate_ids(), 4),
        ("promotion_codes", control.stripe_promotion_code_ids(), 10),
    ];
    for (stream, expected, count) in streams {
        // Every object exactly once, over several pages of 7.
        let full = read(&src, stream, None, control.now()).await;
        let expected: BTreeSet<String> = expected.into_iter().collect();
        assert_eq!(expected.len(), count, "{stream}");
        assert_eq!(full.records.len(), count, "{stream}");
        assert_eq!(ids(&full.records), expected, "{stream}");
        let object = &stream[..stream.len() - 1];
        for r in &full.records {
            assert_eq!(r["object"], object, "{r}");
            assert!(r["created"].as_i64().unwrap() < control.now(), "{r}");
            assert!(r.get(weft_core::DELETED_AT).is_none(), "{r}");
        }
        let cursor: i64 = full.last_state().unwrap().get("created").unwrap();
        let newest = full
            .records
            .iter()
            .map(|r| r["created"].as_i64().unwrap())
            .max()
            .unwrap();
        assert_eq!(cursor, newest, "{stream}");

        // Nothing changed: the re-run asks for `created[gte]` the cursor and
        // reads only the cursor's own second again.
        control.advance_clock(60);
        let before = control.requests(Api::Stripe).len();
        let again = read(&src, stream, full.last_state().cloned(), control.now()).await;
        let want: BTreeSet<String> = full
            .records
            .iter()
            .filter(|r| r["created"].as_i64() == Some(cursor))
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(ids(&again.records), want, "{stream}");
        let requests = control.requests(Api::Stripe);
        let listed: Vec<_> = requests[before..]
            .iter()
            .filter(|r| r.path == format!("/v1/{stream}"))
            .collect();
        assert_eq!(listed.len(), 1, "{requests:?}");
        let gte = format!("created%5Bgte%5D={cursor}");
        let gte_raw = format!("created[gte]={cursor}");
        assert!(
            listed[0].query.contains(&gte) || listed[0].query.contains(&gte_raw),
            "{:?}",
            listed[0]
        );
    }

    // A dispute's charge is one of the disputed charges, and each disputed
    // charge has exactly one dispute.
    let disputes = read(&src, "disputes", None, control.now()).await;
    let charges = read(&src, "charges", None, control.now()).await;
    assert_eq!(charges.records.len(), 500);
    let disputed: BTreeSet<String> = charges
        .records
        .iter()
        .filter(|c| c["disputed"] == true)
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect();
    let of_disputes: BTreeSet<String> = disputes
        .records
        .iter()
        .map(|d| d["charge"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(disputed.len(), 10);
    assert_eq!(of_disputes, disputed);
    for d in &disputes.records {
        let charge = charges.records.iter().find(|c| c["id"] == d["charge"]);
        let charge = charge.unwrap();
        assert_eq!(d["amount"], charge["amount"], "{d}");
        assert!(d["created"].as_i64() >= charge["created"].as_i64(), "{d}");
        assert_eq!(charge["refunded"], false, "{charge}");
    }
    // A coupon deleted since (`coupon.deleted`) comes back from the re-run
    // marked deleted at the event's time; a full read no longer lists it.
    let full = read(&src, "coupons", None, control.now()).await;
    control.advance_clock(120);
    let victim = control.stripe_coupon_ids()[2].clone();
    control.stripe_delete_coupon(&victim).unwrap();
    let deleted_at = control.now();
    control.advance_clock(5);
    let again = read(&src, "coupons", full.last_state().cloned(), control.now()).await;
    let gone = again.records.iter().find(|r| r["id"] == victim.as_str());
    let at = chrono::DateTime::from_timestamp(deleted_at, 0).unwrap();
    assert_eq!(
        gone.unwrap()[weft_core::DELETED_AT],
        at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    let marked = again
        .records
        .iter()
        .filter(|r| r.get(weft_core::DELETED_AT).is_some_and(|v| !v.is_null()))
        .count();
    assert_eq!(marked, 1, "{:?}", again.records);
    let after = read(&src, "coupons", None, control.now()).await;
    assert_eq!(after.records.len(), 4);
    assert!(!ids(&after.records).contains(&victim));

    // Two promotion codes per coupon, each embedding its coupon as listed.
    let coupons = read(&src, "coupons", None, control.now()).await;
    let codes = read(&src, "promotion_codes", None, control.now()).await;
    for coupon in &coupons.records {
        let of: Vec<&Value> = codes
            .records
            .iter()
            .filter(|p| p["coupon"]["id"] == coupon["id"])
            .collect();
        assert_eq!(of.len(), 2, "{coupon}");
        for p in of {
            assert_eq!(p["coupon"]["percent_off"], coupon["percent_off"], "{p}");
            assert!(p["created"].as_i64() >= coupon["created"].as_i64(), "{p}");
        }
    }
    sandbox.shutdown().await;
}
