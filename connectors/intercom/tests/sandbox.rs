//! The source end to end against the sandbox's Intercom simulator: exact
//! counts, the scroll fallback, and an incremental re-run.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeSet;

use serde_json::{Value, json};
use weft_conformance::read::{StreamRead, read_stream};
use weft_core::{Source, StreamMetrics, StreamState};
use weft_http::{Auth, BudgetRegistry, HttpClient, RequestSpec, SecretString};
use weft_intercom::{IntercomConfig, IntercomSource};
use weft_sandbox::{Api, Sandbox, SandboxConfig};

async fn read(
    src: &IntercomSource,
    stream: &str,
    state: Option<StreamState>,
    now: i64,
) -> StreamRead {
    let at = chrono::DateTime::from_timestamp(now, 0).unwrap();
    let r = read_stream(src, stream).state(state).started_at(at).await;
    let r = r.into_result().unwrap();
    assert!(
        r.batches == 0 && r.last_state().is_some(),
        "{stream}: {r:?}"
    );
    r
}

fn unique(records: &[Value]) -> BTreeSet<String> {
    let set: BTreeSet<String> = records
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(set.len(), records.len(), "duplicates");
    set
}

#[tokio::test]
async fn every_stream_has_exact_counts_and_reruns_read_only_changes() {
    counts_then_incremental(None).await;
}

/// History is generated relative to the sandbox's clock, so the same run
/// passes whatever day it is: here the clock starts a year from now.
#[tokio::test]
async fn the_same_holds_with_the_clock_a_year_ahead() {
    counts_then_incremental(Some(weft_sandbox::a_year_ahead())).await;
}

async fn counts_then_incremental(clock_start: Option<i64>) {
    // Default seed and size (100), documented rate limits on.
    let sandbox = Sandbox::start(SandboxConfig {
        clock_start,
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let token = weft_conformance::secret_file(weft_sandbox::DEFAULT_INTERCOM_TOKEN).unwrap();
    let mut config = IntercomConfig::new(token);
    config.base_url = Some(sandbox.base_url(Api::Intercom));
    config.page_size = 40;
    let src = IntercomSource::new(&config, &BudgetRegistry::new()).unwrap();
    src.check().await.unwrap();
    let control = sandbox.control();
    let now = control.now();

    // contacts = size, companies = max(size / 10, 5), conversations = size / 2,
    // admins 4, tags 6.
    let contacts = read(&src, "contacts", None, now).await;
    assert_eq!(unique(&contacts.records).len(), 100);
    let companies = read(&src, "companies", None, now).await;
    assert_eq!(unique(&companies.records).len(), 10);
    assert!(companies.notices.is_empty());
    let conversations = read(&src, "conversations", None, now).await;
    assert_eq!(unique(&conversations.records).len(), 50);
    assert_eq!(
        unique(&read(&src, "admins", None, now).await.records).len(),
        4
    );
    assert_eq!(
        unique(&read(&src, "tags", None, now).await.records).len(),
        6
    );
    // teams 3 (their admins among the 4), segments: leads and users adding
    // up to the contacts, data attributes 8 of contacts (one archived) and 5
    // of companies, keyed by name.
    let teams = read(&src, "teams", None, now).await.records;
    assert_eq!(unique(&teams).len(), 3);
    assert!(teams.iter().all(|t| {
        t["admin_ids"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| (1..=4).contains(&a.as_i64().unwrap()))
    }));
    let segments = read(&src, "segments", None, now).await.records;
    let counted: i64 = segments.iter().map(|s| s["count"].as_i64().unwrap()).sum();
    assert_eq!((segments.len(), counted), (2, 100));
    let leads = contacts
        .records
        .iter()
        .filter(|c| c["role"] == "lead")
        .count() as i64;
    let lead_segment = segments
        .iter()
        .find(|s| s["person_type"] == "contact")
        .unwrap();
    assert_eq!(lead_segment["count"].as_i64(), Some(leads));
    for (stream, model, n) in [
        ("contact_attributes", "contact", 8),
        ("company_attributes", "company", 5),
    ] {
        let attributes = read(&src, stream, None, now).await.records;
        let names: std::collections::BTreeSet<&str> = attributes
            .iter()
            .map(|a| a["name"].as_str().unwrap())
            .collect();
        assert_eq!(names.len(), n, "{stream}");
        assert!(attributes.iter().all(|a| a["model"] == model), "{stream}");
    }
    // Searches come back in `updated_at` order; the state is the largest.
    let updated: Vec<i64> = contacts
        .records
        .iter()
        .map(|c| c["updated_at"].as_i64().unwrap())
        .collect();
    assert!(updated.windows(2).all(|w| w[0] <= w[1]));
    let saved: i64 = contacts.last_state().unwrap().get("updated_at").unwrap();
    assert_eq!(saved, *updated.last().unwrap());

    // Another scroll open on the app: the paged list serves the same companies.
    let open = HttpClient::builder(
        "intercom",
        url::Url::parse(&sandbox.base_url(Api::Intercom)).unwrap(),
    )
    .auth(Auth::Bearer(SecretString::from(
        weft_sandbox::DEFAULT_INTERCOM_TOKEN.to_string(),
    )))
    .build()
    .unwrap();
    open.send(
        &RequestSpec::get("companies/scroll"),
        &StreamMetrics::default(),
    )
    .await
    .unwrap();
    let listed = read(&src, "companies", None, now).await;
    assert_eq!(unique(&listed.records), unique(&companies.records));
    assert_eq!(listed.notices.len(), 1, "{:?}", listed.notices);
    assert!(
        listed.notices[0].contains("/companies"),
        "{}",
        listed.notices[0]
    );

    // Change two contacts later on; the re-run reads them plus the boundary second.
    control.advance_clock(300);
    let changed = [
        contacts.records[3]["id"].as_str().unwrap().to_string(),
        contacts.records[50]["id"].as_str().unwrap().to_string(),
    ];
    for id in &changed {
        control
            .intercom_update_contact(id, json!({"name": "Changed Name"}))
            .unwrap();
    }
    let boundary: BTreeSet<String> = contacts
        .records
        .iter()
        .filter(|c| c["updated_at"] == saved)
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    let again = read(
        &src,
        "contacts",
        contacts.last_state().cloned(),
        control.now(),
    )
    .await;
    let expected: BTreeSet<String> = boundary.iter().cloned().chain(changed.clone()).collect();
    assert_eq!(unique(&again.records), expected);
    assert_eq!(again.records.len(), boundary.len() + 2);
    for r in &again.records {
        if changed.contains(&r["id"].as_str().unwrap().to_string()) {
            assert_eq!(r["name"], "Changed Name");
        }
    }
    let conv_saved: i64 = conversations
        .last_state()
        .unwrap()
        .get("updated_at")
        .unwrap();
    let conv_boundary = conversations
        .records
        .iter()
        .filter(|c| c["updated_at"] == conv_saved)
        .count();
    let conv_again = read(
        &src,
        "conversations",
        conversations.last_state().cloned(),
        control.now(),
    )
    .await;
    assert_eq!(conv_again.records.len(), conv_boundary);
    sandbox.shutdown().await;
}

/// Conversation parts: every part of every conversation exactly once, each
/// naming its conversation; a re-run after replies to three conversations
/// reads exactly those conversations' parts (and the boundary second's).
#[tokio::test]
async fn conversation_parts_are_read_once_each_and_rereads_follow_the_conversations() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let token = weft_conformance::secret_file(weft_sandbox::DEFAULT_INTERCOM_TOKEN).unwrap();
    let mut config = IntercomConfig::new(token);
    config.base_url = Some(sandbox.base_url(Api::Intercom));
    config.page_size = 20;
    let src = IntercomSource::new(&config, &BudgetRegistry::new()).unwrap();
    let control = sandbox.control();
    let now = control.now();

    let conversations = read(&src, "conversations", None, now).await;
    let ids: Vec<String> = unique(&conversations.records).into_iter().collect();
    assert_eq!(ids.len(), 50);
    let parts = read(&src, "conversation_parts", None, now).await;
    let expected: u64 = ids
        .iter()
        .map(|id| control.intercom_conversation_parts(id).unwrap())
        .sum();
    assert_eq!(unique(&parts.records).len() as u64, expected);
    assert!(expected > 50, "{expected}");
    // Each part names its conversation and carries its `updated_at`.
    let updated: std::collections::BTreeMap<&str, &Value> = conversations
        .records
        .iter()
        .map(|c| (c["id"].as_str().unwrap(), &c["updated_at"]))
        .collect();
    for p in &parts.records {
        let conversation = p["conversation_id"].as_str().unwrap();
        assert_eq!(
            Some(&p["conversation_updated_at"]),
            updated.get(conversation).copied()
        );
    }
    let saved: i64 = parts
        .last_state()
        .unwrap()
        .get("conversation_updated_at")
        .unwrap();
    let newest = updated.values().map(|v| v.as_i64().unwrap()).max().unwrap();
    assert_eq!(saved, newest);
    // One search page per 20 conversations, then one request per conversation.
    assert_eq!(parts.metrics.requests, 3 + 50, "{:?}", parts.metrics);

    // Replies to three conversations later on.
    control.advance_clock(300);
    let replied = [&ids[0], &ids[10], &ids[49]];
    for id in replied {
        control.intercom_reply_to_conversation(id).unwrap();
    }
    let boundary: Vec<&str> = updated
        .iter()
        .filter(|(_, t)| t.as_i64() == Some(saved))
        .map(|(id, _)| *id)
        .collect();
    let again = read(
        &src,
        "conversation_parts",
        parts.last_state().cloned(),
        control.now(),
    )
    .await;
    let touched: BTreeSet<&str> = again
        .records
        .iter()
        .map(|p| p["conversation_id"].as_str().unwrap())
        .collect();
    let want: BTreeSet<&str> = replied
        .iter()
        .map(|s| s.as_str())
        .chain(boundary.iter().copied())
        .collect();
    assert_eq!(touched, want);
    let want_parts: u64 = want
        .iter()
        .map(|id| control.intercom_conversation_parts(id).unwrap())
        .sum();
    assert_eq!(unique(&again.records).len() as u64, want_parts);
    // The replies are new parts, written at the new time.
    let new_parts = again
        .records
        .iter()
        .filter(|p| p["created_at"].as_i64() == Some(control.now()))
        .count();
    assert_eq!(new_parts, 3);
    sandbox.shutdown().await;
}
