//! End to end against the sandbox's Zoom simulator.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use weft_conformance::read::read_stream;
use weft_core::Source;
use weft_http::BudgetRegistry;
use weft_sandbox::{Api, Sandbox, SandboxConfig};
use weft_zoom::{ZoomConfig, ZoomSource};

async fn read_all(src: &ZoomSource, stream: &str) -> (Vec<Value>, u64) {
    let r = read_stream(src, stream).await.into_result().unwrap();
    assert_eq!(
        (r.batches, r.notices.len()),
        (0, 0),
        "{stream}: {:?}",
        r.notices
    );
    assert_eq!(r.states.len(), 1, "{stream}");
    // Every listing's `total_records`, summed: what the completeness check
    // compares with the records read.
    assert_eq!(
        r.metrics.source_count.unwrap_or(0),
        r.records.len() as u64,
        "{stream}: the source count"
    );
    (r.records, r.metrics.expected_errors)
}

#[tokio::test]
async fn registrants_and_participants_match_what_the_sandbox_holds() {
    let sandbox = Sandbox::start(SandboxConfig {
        size: 100,
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let secret = weft_conformance::secret_file(weft_sandbox::DEFAULT_ZOOM_CLIENT_SECRET).unwrap();
    let base = sandbox.base_url(Api::Zoom);
    let mut config = ZoomConfig::new(
        weft_sandbox::DEFAULT_ZOOM_ACCOUNT_ID,
        weft_sandbox::DEFAULT_ZOOM_CLIENT_ID,
        secret,
    );
    config.base_url = Some(base.clone());
    config.token_url = Some(format!("{base}/oauth/token"));
    config.page_size = 30;
    let src = ZoomSource::new(config, &BudgetRegistry::new()).unwrap();
    src.check().await.unwrap();
    let control = sandbox.control();

    // Registrants: every approved registrant of every webinar (Zoom's default
    // `status`), keyed by (webinar_id, id), exactly as the control API lists them.
    let (records, _) = read_all(&src, "webinar_registrants").await;
    let mut got: BTreeMap<i64, BTreeSet<String>> = BTreeMap::new();
    for r in &records {
        let inserted = got
            .entry(r["webinar_id"].as_i64().unwrap())
            .or_default()
            .insert(r["id"].as_str().unwrap().to_string());
        assert!(inserted, "duplicate registrant {r}");
    }
    let webinars = control.zoom_webinar_ids();
    assert!(!webinars.is_empty());
    let mut expected_total = 0;
    for w in &webinars {
        let held = control.zoom_registrants(*w).unwrap();
        let approved: BTreeSet<String> = held
            .iter()
            .filter(|r| r["status"] == "approved")
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect();
        expected_total += approved.len();
        assert_eq!(
            got.get(w).cloned().unwrap_or_default(),
            approved,
            "webinar {w}"
        );
    }
    assert_eq!(records.len(), expected_total);
    assert!(expected_total > 100, "{expected_total}");

    // Participants: upcoming webinars have no past instance (expected 404s).
    let (participants, expected_404) = read_all(&src, "past_webinar_participants").await;
    let keys: BTreeSet<(i64, String)> = participants
        .iter()
        .map(|p| {
            (
                p["webinar_id"].as_i64().unwrap(),
                p["user_id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(keys.len(), participants.len());
    assert!(!participants.is_empty());
    // Three webinars per host, the third upcoming.
    assert_eq!(expected_404 as usize, webinars.len() / 3);

    let (webinar_records, _) = read_all(&src, "webinars").await;
    let listed: BTreeSet<i64> = webinar_records
        .iter()
        .map(|w| w["id"].as_i64().unwrap())
        .collect();
    assert_eq!(listed, webinars.iter().copied().collect());
    sandbox.shutdown().await;
}
