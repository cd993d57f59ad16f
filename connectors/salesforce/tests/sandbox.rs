//! End to end against the sandbox's Salesforce simulator.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeSet;

use serde_json::{Value, json};
use weft_conformance::read::read_stream;
use weft_core::{SecretRef, Source, StreamState};
use weft_http::BudgetRegistry;
use weft_salesforce::{SalesforceAuth, SalesforceConfig, SalesforceSource};
use weft_sandbox::{Api, Sandbox, SandboxConfig};

fn secret(value: &str) -> SecretRef {
    weft_conformance::secret_file(value).unwrap()
}

fn config(sandbox: &Sandbox) -> SalesforceConfig {
    let mut c = SalesforceConfig::new(
        sandbox.base_url(Api::Salesforce),
        SalesforceAuth::RefreshToken {
            client_id: weft_sandbox::DEFAULT_SALESFORCE_CLIENT_ID.into(),
            client_secret: secret(weft_sandbox::DEFAULT_SALESFORCE_CLIENT_SECRET),
            refresh_token: secret(weft_sandbox::DEFAULT_SALESFORCE_REFRESH_TOKEN),
        },
    );
    c.objects = vec!["Contact".into()];
    c.settle_secs = 0;
    c.bulk_poll_ms = 1;
    c
}

async fn read(src: &SalesforceSource, state: Option<Value>) -> (Vec<Value>, Vec<Value>) {
    let at = chrono::Utc::now() + chrono::Duration::days(3650);
    let r = read_stream(src, "Contact")
        .state(state.map(StreamState))
        .started_at(at)
        .await;
    let r = r.into_result().unwrap();
    assert_eq!(r.batches, 0);
    let checkpoints = r.state_values();
    (r.records, checkpoints)
}

fn live_ids(records: &[Value]) -> BTreeSet<String> {
    records
        .iter()
        .filter(|r| r["IsDeleted"] == json!(false))
        .map(|r| r["Id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn contacts_read_in_full_then_incrementally_rest_and_bulk() {
    let sandbox = Sandbox::start(SandboxConfig {
        size: 60,
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let control = sandbox.control();
    let held: BTreeSet<String> = control
        .salesforce_ids("Contact")
        .unwrap()
        .into_iter()
        .collect();
    assert!(!held.is_empty());

    let src = SalesforceSource::connect(config(&sandbox), &BudgetRegistry::new())
        .await
        .unwrap();
    let spec = &src.streams()[0];
    assert_eq!(spec.cursor_field.as_deref(), Some("SystemModstamp"));
    assert!(spec.schema.field_with_name("Email").is_ok());

    let (records, checkpoints) = read(&src, None).await;
    assert_eq!(live_ids(&records), held);
    // The last checkpoint holds the cursor and no slice is left.
    let last = checkpoints.last().unwrap().clone();
    assert!(last.get("slices").is_none(), "{last}");
    let cursor = last["cursor_us"].as_i64().unwrap();

    // Change one contact; the incremental read returns it plus, at most,
    // records sharing the saved cursor value (the inclusive boundary).
    control.advance_clock(60);
    let target = held.iter().next().unwrap().clone();
    control
        .salesforce_update("Contact", &target, json!({"LastName": "Changed"}))
        .unwrap();
    let (changed, next) = read(&src, Some(last.clone())).await;
    let updated: Vec<&Value> = changed
        .iter()
        .filter(|r| r["Id"] == json!(target))
        .collect();
    assert_eq!(updated.len(), 1);
    assert_eq!(updated[0]["LastName"], "Changed");
    for r in changed.iter().filter(|r| r["Id"] != json!(target)) {
        let stamp = chrono::DateTime::parse_from_rfc3339(r["SystemModstamp"].as_str().unwrap())
            .unwrap()
            .timestamp_micros();
        assert_eq!(
            stamp, cursor,
            "only boundary re-reads besides the change: {r}"
        );
    }
    assert!(next.last().unwrap()["cursor_us"].as_i64().unwrap() > cursor);

    // Above the threshold the same full read goes through a Bulk API 2.0 job.
    let mut bulk = config(&sandbox);
    bulk.bulk_threshold = 5;
    let src = SalesforceSource::connect(bulk, &BudgetRegistry::new())
        .await
        .unwrap();
    let (records, checkpoints) = read(&src, None).await;
    assert_eq!(live_ids(&records), held);
    // The bulk read ends at the same cursor (it checkpoints once, at the end).
    assert_eq!(checkpoints.len(), 1);
    assert_eq!(checkpoints.last(), next.last());
    let jobs = control
        .requests(Api::Salesforce)
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/jobs/query"))
        .count();
    assert_eq!(jobs, 1);
}
