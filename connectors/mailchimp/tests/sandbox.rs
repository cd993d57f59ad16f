//! The Mailchimp source end to end against the sandbox's Mailchimp: exact
//! counts and keys, every record fitting the declared schema, and
//! incremental re-runs that read only the members changed since.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};
use weft_conformance::read::{StreamRead, read_stream};
use weft_core::{Source, StreamState};
use weft_http::BudgetRegistry;
use weft_mailchimp::{MailchimpConfig, MailchimpSource};
use weft_sandbox::{Api, Control, DEFAULT_MAILCHIMP_KEY, Sandbox, SandboxConfig};

/// Members the audience is seeded with.
const MEMBERS: usize = 25;

async fn start() -> (Sandbox, MailchimpSource) {
    let sandbox = Sandbox::start(SandboxConfig {
        seed: 11,
        mailchimp_members: MEMBERS,
        clock_start: Some(weft_sandbox::process_clock_start()),
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let mut config =
        MailchimpConfig::source(weft_conformance::secret_file(DEFAULT_MAILCHIMP_KEY).unwrap());
    config.base_url = Some(format!("{}/3.0", sandbox.base_url(Api::Mailchimp)));
    config.page_size = 10;
    let source = MailchimpSource::new(&config, &BudgetRegistry::new()).unwrap();
    source.check().await.unwrap();
    (sandbox, source)
}

/// Reads `stream` from `state`, the extraction starting an hour past the
/// sandbox's now (so the settle margin does not hold the cursor back).
async fn read(
    src: &MailchimpSource,
    control: &Control,
    stream: &str,
    state: Option<&StreamState>,
) -> StreamRead {
    let at = chrono::DateTime::from_timestamp(control.now() + 3600, 0).unwrap();
    let r = read_stream(src, stream)
        .state(state.cloned())
        .started_at(at)
        .await
        .into_result()
        .unwrap();
    assert_eq!((r.batches, r.notices.len()), (0, 0), "{stream}");
    r
}

fn ids(r: &StreamRead) -> Vec<String> {
    r.records
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect()
}

/// Every record decodes under the stream's declared schema, frozen: no
/// field Mailchimp sends is undeclared or of another type.
fn fits_the_schema(src: &MailchimpSource, stream: &str, records: &[Value]) {
    let spec = src
        .streams()
        .into_iter()
        .find(|s| s.name == stream)
        .unwrap();
    let mut decoder = weft_arrow::JsonDecoder::new(
        spec.schema.clone(),
        spec.primary_key.clone(),
        weft_core::SchemaContract::Freeze,
    )
    .unwrap();
    let raws: Vec<_> = records
        .iter()
        .map(|v| serde_json::value::to_raw_value(v).unwrap())
        .collect();
    let decoded = decoder.decode_page(&raws).unwrap();
    assert!(
        decoded.rejects.is_empty(),
        "{stream}: {:?}",
        decoded.rejects
    );
    assert_eq!(
        decoded.batch.map_or(0, |b| b.num_rows()),
        records.len(),
        "{stream}"
    );
}

#[tokio::test]
async fn lists_segments_interest_categories_campaigns_and_unsubscribes_are_read_exactly() {
    let (sandbox, src) = start().await;
    let control = sandbox.control();
    let lists = read(&src, &control, "lists", None).await;
    assert_eq!(ids(&lists), [control.mailchimp_list_id()]);
    let subscribed = control
        .mailchimp_members(&control.mailchimp_list_id())
        .iter()
        .filter(|m| m["status"] == "subscribed")
        .count();
    assert_eq!(lists.records[0]["stats"]["member_count"], subscribed);
    fits_the_schema(&src, "lists", &lists.records);

    // Segments and interest categories of the audience, keyed (list_id, id).
    let list = control.mailchimp_list_id();
    let segments = read(&src, &control, "segments", None).await;
    let got: Vec<i64> = segments
        .records
        .iter()
        .map(|s| s["id"].as_i64().unwrap())
        .collect();
    assert_eq!(got, control.mailchimp_segment_ids(&list));
    assert!(
        segments
            .records
            .iter()
            .all(|s| s["list_id"] == list.as_str())
    );
    assert_eq!(segments.states.len(), 1);
    fits_the_schema(&src, "segments", &segments.records);
    let categories = read(&src, &control, "interest_categories", None).await;
    assert_eq!(
        ids(&categories),
        control.mailchimp_interest_category_ids(&list)
    );
    fits_the_schema(&src, "interest_categories", &categories.records);

    let campaigns = read(&src, &control, "campaigns", None).await;
    // Newest first.
    let mut expected = control.mailchimp_campaign_ids();
    expected.reverse();
    assert_eq!(ids(&campaigns), expected);
    assert_eq!(expected.len(), 3);
    fits_the_schema(&src, "campaigns", &campaigns.records);
    // Nothing created since: the re-run reads nothing and keeps its cursor.
    // Unsubscribes of every campaign, keyed (campaign_id, email_id).
    let unsubscribes = read(&src, &control, "unsubscribes", None).await;
    let got: BTreeSet<(String, String)> = unsubscribes
        .records
        .iter()
        .map(|u| {
            (
                u["campaign_id"].as_str().unwrap().to_string(),
                u["email_id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let held: BTreeSet<(String, String)> = control
        .mailchimp_campaign_ids()
        .into_iter()
        .flat_map(|c| {
            control
                .mailchimp_unsubscribe_ids(&c)
                .unwrap()
                .into_iter()
                .map(move |e| (c.clone(), e))
        })
        .collect();
    assert_eq!(got.len(), unsubscribes.records.len());
    assert_eq!(got, held);
    assert!(!held.is_empty());
    fits_the_schema(&src, "unsubscribes", &unsubscribes.records);

    let state = campaigns.last_state().unwrap().clone();
    let newest = campaigns.records[0]["create_time"].clone();
    assert_eq!(state.0, json!({ "create_time": newest }));
    let again = read(&src, &control, "campaigns", Some(&state)).await;
    assert_eq!(again.records.len(), 0);
    assert_eq!(again.last_state(), Some(&state));
    sandbox.shutdown().await;
}

#[tokio::test]
async fn members_are_read_once_then_only_as_they_change() {
    let (sandbox, src) = start().await;
    let control = sandbox.control();
    let list = control.mailchimp_list_id();

    // First run: every member once, 10 per page, newest change first.
    let first = read(&src, &control, "list_members", None).await;
    assert_eq!(first.records.len(), MEMBERS);
    assert_eq!(first.pages, [10, 10, 5]);
    let got: BTreeSet<String> = ids(&first).into_iter().collect();
    let held: BTreeSet<String> = control.mailchimp_member_ids(&list).into_iter().collect();
    assert_eq!(got, held);
    assert!(first.records.iter().all(|m| m["list_id"] == list.as_str()));
    let times: Vec<&str> = first
        .records
        .iter()
        .map(|m| m["last_changed"].as_str().unwrap())
        .collect();
    let mut sorted = times.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(times, sorted, "newest first");
    let unsubscribed = first
        .records
        .iter()
        .filter(|m| m["status"] == "unsubscribed")
        .count();
    let held_unsubscribed = control
        .mailchimp_members(&list)
        .iter()
        .filter(|m| m["status"] == "unsubscribed")
        .count();
    assert_eq!(unsubscribed, held_unsubscribed);
    fits_the_schema(&src, "list_members", &first.records);
    // Checkpoints: after pages 1 and 2 (the next offset), after the list, after its archived members.
    assert_eq!(first.states.len(), 4);
    assert_eq!(first.states[0].0["progress"]["offset"], 10);
    assert_eq!(first.states[1].0["progress"]["offset"], 20);
    let state = first.last_state().unwrap().clone();
    assert_eq!(state.0, json!({"last_changed": {list.as_str(): times[0]}}));

    // Nothing changed: nothing read.
    let idle = read(&src, &control, "list_members", Some(&state)).await;
    assert_eq!(idle.records.len(), 0);
    assert_eq!(idle.last_state(), Some(&state));

    // One member changed: only that member is read, with its change.
    control.advance_clock(5);
    let changed = ids(&first)[7].clone();
    let mut merge = Map::new();
    merge.insert("FNAME".into(), Value::from("Renamed"));
    let after = control
        .mailchimp_update_member(&list, &changed, None, &merge)
        .unwrap();
    let second = read(&src, &control, "list_members", Some(&state)).await;
    assert_eq!(ids(&second), [changed.as_str()]);
    assert_eq!(second.records[0]["merge_fields"]["FNAME"], "Renamed");
    assert_eq!(second.records[0]["last_changed"], after["last_changed"]);
    let state = second.last_state().unwrap().clone();
    assert_eq!(
        state.0["last_changed"][list.as_str()],
        after["last_changed"]
    );

    // Unsubscribed and archived members keep their row with that status.
    control.advance_clock(5);
    // A subscribed member unsubscribes; another member is archived.
    let unsub = first
        .records
        .iter()
        .filter(|m| m["status"] == "subscribed" && m["id"] != changed.as_str())
        .map(|m| m["id"].as_str().unwrap().to_string())
        .nth(2)
        .unwrap();
    let archived = ids(&first)[12].clone();
    assert_ne!(archived, unsub);
    control
        .mailchimp_update_member(&list, &unsub, Some("unsubscribed"), &Map::new())
        .unwrap();
    control
        .mailchimp_update_member(&list, &archived, Some("archived"), &Map::new())
        .unwrap();
    let third = read(&src, &control, "list_members", Some(&state)).await;
    let statuses: Vec<(String, String)> = third
        .records
        .iter()
        .map(|m| {
            (
                m["id"].as_str().unwrap().to_string(),
                m["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        [
            (unsub.clone(), "unsubscribed".to_string()),
            (archived.clone(), "archived".to_string())
        ]
    );
    let state = third.last_state().unwrap().clone();
    let cursors = state.0["last_changed"].as_object().unwrap();
    assert_eq!(cursors.len(), 2, "{state:?}");
    assert!(cursors.contains_key(&format!("{list}/archived")));
    // And a run after that reads nothing again.
    let quiet = read(&src, &control, "list_members", Some(&state)).await;
    assert_eq!(quiet.records.len(), 0);
    sandbox.shutdown().await;
}
