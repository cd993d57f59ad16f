//! End to end against the sandbox's Zendesk simulator: exact counts, then an
//! incremental re-run that returns exactly what changed.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeSet;

use serde_json::{Value, json};
use weft_conformance::read::{StreamRead, read_stream};
use weft_core::{DELETED_AT, Source, StreamState};
use weft_http::BudgetRegistry;
use weft_sandbox::{Api, Sandbox, SandboxConfig};
use weft_zendesk::{ZendeskConfig, ZendeskSource};

/// Reads `stream` from `state`, the extraction starting at the sandbox's `now`
/// (the client's clock agrees with the vendor's, as in production).
async fn read(
    src: &ZendeskSource,
    stream: &str,
    state: Option<StreamState>,
    now: i64,
) -> StreamRead {
    let at = chrono::DateTime::from_timestamp(now, 0).unwrap();
    let r = read_stream(src, stream)
        .state(state)
        .started_at(at)
        .await
        .into_result()
        .unwrap();
    assert_eq!(
        (r.batches, r.notices.len()),
        (0, 0),
        "{stream}: {:?}",
        r.notices
    );
    assert!(r.last_state().is_some(), "{stream}: no checkpoint");
    r
}

fn ids(records: &[Value]) -> Vec<u64> {
    records.iter().map(|r| r["id"].as_u64().unwrap()).collect()
}

fn unique(records: &[Value]) -> BTreeSet<u64> {
    let set: BTreeSet<u64> = ids(records).into_iter().collect();
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
    // Default seed and size (100), documented rate limits on (10 exports/min).
    let sandbox = Sandbox::start(SandboxConfig {
        clock_start,
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let token = weft_conformance::secret_file(weft_sandbox::DEFAULT_ZENDESK_TOKEN).unwrap();
    let mut config = ZendeskConfig::new("unused", weft_sandbox::DEFAULT_ZENDESK_EMAIL, token);
    config.base_url = Some(sandbox.base_url(Api::Zendesk));
    config.requests_per_minute = 700;
    let src = ZendeskSource::new(config, &BudgetRegistry::new()).unwrap();
    src.check().await.unwrap();

    // Tickets and users: `size` each (ids 1..=size and 361000000000 + index).
    let tickets = read(&src, "tickets", None, sandbox.control().now()).await;
    assert_eq!(unique(&tickets.records), (1..=100).collect());
    assert_eq!(tickets.states.len(), 1, "one export page of up to 1,000");
    assert!(tickets.records.iter().all(|t| t.get(DELETED_AT).is_none()));
    let users = read(&src, "users", None, sandbox.control().now()).await;
    assert_eq!(
        unique(&users.records),
        (0..100).map(|i| 361_000_000_000 + i).collect()
    );
    // Organizations: max(size / 20, 3); ticket fields 9; groups 6.
    let orgs = read(&src, "organizations", None, sandbox.control().now()).await;
    assert_eq!(unique(&orgs.records).len(), 5);
    let fields = read(&src, "ticket_fields", None, sandbox.control().now()).await;
    assert_eq!(unique(&fields.records).len(), 9);
    let groups = read(&src, "groups", None, sandbox.control().now()).await;
    assert_eq!(unique(&groups.records).len(), 6);
    assert_eq!((fields.states.len(), groups.states.len()), (1, 1));

    // Change things, then re-run from the saved states.
    let control = sandbox.control();
    control.advance_clock(120);
    control
        .zendesk_update_ticket(5, json!({"subject": "Changed", "status": "solved"}))
        .unwrap();
    control.zendesk_delete_ticket(7).unwrap();
    let created = control.zendesk_create_users(2);

    let again = read(
        &src,
        "tickets",
        tickets.last_state().cloned(),
        sandbox.control().now(),
    )
    .await;
    assert_eq!(ids(&again.records), [5, 7]);
    assert_eq!(again.records[0]["subject"], "Changed");
    assert!(again.records[0].get(DELETED_AT).is_none());
    assert_eq!(again.records[1]["status"], "deleted");
    assert_eq!(again.records[1][DELETED_AT], again.records[1]["updated_at"]);
    assert_ne!(again.last_state(), tickets.last_state());
    let none = read(
        &src,
        "tickets",
        again.last_state().cloned(),
        sandbox.control().now(),
    )
    .await;
    assert!(none.records.is_empty());
    assert_eq!(none.last_state(), again.last_state());

    let new_users = read(
        &src,
        "users",
        users.last_state().cloned(),
        sandbox.control().now(),
    )
    .await;
    assert_eq!(ids(&new_users.records), created);

    // The time-based export re-reads its boundary second: exactly the
    // organizations updated at the saved start time, nothing else.
    let start: i64 = orgs.last_state().unwrap().get("start_time").unwrap();
    let at_boundary: Vec<u64> = orgs
        .records
        .iter()
        .filter(|o| {
            chrono::DateTime::parse_from_rfc3339(o["updated_at"].as_str().unwrap())
                .unwrap()
                .timestamp()
                == start
        })
        .map(|o| o["id"].as_u64().unwrap())
        .collect();
    assert_eq!(at_boundary.len(), 1);
    let orgs_again = read(
        &src,
        "organizations",
        orgs.last_state().cloned(),
        sandbox.control().now(),
    )
    .await;
    assert_eq!(ids(&orgs_again.records), at_boundary);

    // The check, 5 first reads and 4 re-reads, one page each: nothing retried.
    assert_eq!(control.request_count(Api::Zendesk), 10);
    sandbox.shutdown().await;
}

/// A mirror sync with `mirror = { kind = "tag", tags = ["weft_removed"] }`:
/// the person who left the model keeps their user, name and other tags,
/// gains the tag, and is not suspended.
#[tokio::test]
async fn a_tag_mirror_tags_the_user_who_left_keeping_their_tags_unsuspended() {
    use std::collections::BTreeMap;
    use weft_conformance::MemorySyncStore;
    use weft_core::{SyncOptions, SyncSpec, SyncWriteMode, run_sync};

    let sandbox = Sandbox::start(SandboxConfig {
        size: 20,
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let control = sandbox.control();
    let token = weft_conformance::secret_file(weft_sandbox::DEFAULT_ZENDESK_TOKEN).unwrap();
    let mut config = ZendeskConfig::new("unused", weft_sandbox::DEFAULT_ZENDESK_EMAIL, token);
    config.base_url = Some(sandbox.base_url(Api::Zendesk));
    config.requests_per_minute = 600_000;
    config.mirror = Some(weft_zendesk::ZendeskMirror::Tag {
        tags: vec!["weft_removed".into()],
    });
    let target = weft_zendesk::ZendeskTarget::new(&config, &BudgetRegistry::new())
        .unwrap()
        .with_poll_policy(weft_http::PollPolicy {
            first: std::time::Duration::from_millis(1),
            max: std::time::Duration::from_millis(5),
            limit: std::time::Duration::from_secs(10),
        });
    let email = |i: usize| format!("tag.person{i}@example.com");
    let store = MemorySyncStore::new();
    for i in 0..3 {
        store.put(
            &email(i),
            BTreeMap::from([
                ("key".to_string(), json!(email(i))),
                ("name".to_string(), json!(format!("Person {i}"))),
                ("tags".to_string(), json!(["vip", format!("cohort{i}")])),
            ]),
        );
    }
    let spec = SyncSpec {
        name: "zendesk_tagged".into(),
        model: "models.people".into(),
        primary_key: "key".into(),
        mode: SyncWriteMode::Mirror,
        mapping: BTreeMap::from([
            ("email".to_string(), "key".to_string()),
            ("name".to_string(), "name".to_string()),
            ("tags".to_string(), "tags".to_string()),
        ]),
    };
    weft_core::check_sync(&target, &spec).unwrap();
    let first = run_sync(&store, &target, &spec, SyncOptions::default())
        .await
        .unwrap();
    assert_eq!((first.created, first.rejected), (3, 0));

    store.remove(&email(1));
    let writes_before = control.writes(Api::Zendesk).len();
    let mirror = run_sync(&store, &target, &spec, SyncOptions::default())
        .await
        .unwrap();
    assert_eq!(
        (
            mirror.deleted,
            mirror.created,
            mirror.updated,
            mirror.rejected
        ),
        (1, 0, 0, 0)
    );
    // One tag addition and nothing else written: no create_or_update_many.
    let writes: Vec<String> = control.writes(Api::Zendesk)[writes_before..]
        .iter()
        .map(|w| format!("{} {}", w.method, w.path))
        .collect();
    let id = control.zendesk_user_by_email(&email(1)).unwrap()["id"].clone();
    assert_eq!(writes, [format!("PUT /api/v2/users/{id}/tags.json")]);
    let gone = control.zendesk_user_by_email(&email(1)).unwrap();
    assert_eq!(gone["tags"], json!(["vip", "cohort1", "weft_removed"]));
    assert_eq!(gone["suspended"], json!(false));
    assert_eq!(gone["name"], json!("Person 1"));
    for i in [0, 2] {
        let kept = control.zendesk_user_by_email(&email(i)).unwrap();
        assert_eq!(kept["tags"], json!(["vip", format!("cohort{i}")]));
    }
    // Nothing left to send.
    let again = run_sync(&store, &target, &spec, SyncOptions::default())
        .await
        .unwrap();
    assert_eq!((again.batches, again.deleted), (0, 0));
    sandbox.shutdown().await;
}

/// `ticket_comments`: every comment of every live ticket exactly once, each
/// stamped with its ticket; a re-run reads only the comments of the tickets
/// that changed since (a new comment touches its ticket), and a deleted
/// ticket's comments are not fetched.
#[tokio::test]
async fn ticket_comments_are_read_once_and_rereads_fetch_only_changed_tickets() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let token = weft_conformance::secret_file(weft_sandbox::DEFAULT_ZENDESK_TOKEN).unwrap();
    let mut config = ZendeskConfig::new("unused", weft_sandbox::DEFAULT_ZENDESK_EMAIL, token);
    config.base_url = Some(sandbox.base_url(Api::Zendesk));
    config.requests_per_minute = 700;
    let src = ZendeskSource::new(config, &BudgetRegistry::new()).unwrap();
    let control = sandbox.control();

    let first = read(&src, "ticket_comments", None, control.now()).await;
    let expected: BTreeSet<u64> = control.zendesk_comment_ids().into_iter().collect();
    assert!(expected.len() > 100, "1 to 3 comments per ticket");
    assert_eq!(unique(&first.records), expected);
    let tickets: BTreeSet<u64> = first
        .records
        .iter()
        .map(|c| c["ticket_id"].as_u64().unwrap())
        .collect();
    assert_eq!(tickets, (1..=100).collect());
    assert!(
        first
            .records
            .iter()
            .all(|c| c["ticket_updated_at"].is_string())
    );
    // The export (1 page) and one comment list per ticket.
    assert_eq!(control.request_count(Api::Zendesk), 1 + 100);

    control.advance_clock(120);
    control.zendesk_add_comment(5, "A follow-up").unwrap();
    control.zendesk_add_comment(9, "Another").unwrap();
    control.zendesk_delete_ticket(12).unwrap();
    let before = control.request_count(Api::Zendesk);
    let again = read(
        &src,
        "ticket_comments",
        first.last_state().cloned(),
        control.now(),
    )
    .await;
    let touched: BTreeSet<u64> = again
        .records
        .iter()
        .map(|c| c["ticket_id"].as_u64().unwrap())
        .collect();
    assert_eq!(touched, BTreeSet::from([5, 9]));
    let of = |t: u64| -> BTreeSet<u64> {
        first
            .records
            .iter()
            .filter(|c| c["ticket_id"] == t)
            .map(|c| c["id"].as_u64().unwrap())
            .collect()
    };
    let mut want = of(5);
    want.extend(of(9));
    // The added comments: index 100 of tickets 5 and 9 (0-based 4 and 8).
    want.extend([20_000_000_000 + 4_000 + 100, 20_000_000_000 + 8_000 + 100]);
    assert_eq!(unique(&again.records), want);
    let bodies: BTreeSet<&str> = again
        .records
        .iter()
        .filter_map(|c| c["body"].as_str())
        .filter(|b| !b.starts_with("Comment "))
        .collect();
    assert_eq!(bodies, BTreeSet::from(["A follow-up", "Another"]));
    // The export page, then tickets 5 and 9 only (12 is deleted: not fetched).
    assert_eq!(control.request_count(Api::Zendesk) - before, 1 + 2);

    let none = read(
        &src,
        "ticket_comments",
        again.last_state().cloned(),
        control.now(),
    )
    .await;
    assert!(none.records.is_empty());
    sandbox.shutdown().await;
}

/// The lists read in full (brands, ticket forms, custom fields, memberships,
/// macros, satisfaction ratings, ticket metrics): exactly the records the
/// sandbox serves, once each and in its order, 100 per page (ticket forms in
/// one unpaginated page), one checkpoint per read; a re-run reads everything
/// again, without what was deleted since.
#[tokio::test]
async fn lists_read_exactly_what_the_sandbox_holds_100_per_page() {
    let sandbox = Sandbox::start(SandboxConfig {
        size: 250,
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let token = weft_conformance::secret_file(weft_sandbox::DEFAULT_ZENDESK_TOKEN).unwrap();
    let mut config = ZendeskConfig::new("unused", weft_sandbox::DEFAULT_ZENDESK_EMAIL, token);
    config.base_url = Some(sandbox.base_url(Api::Zendesk));
    config.requests_per_minute = 700;
    let src = ZendeskSource::new(config, &BudgetRegistry::new()).unwrap();
    let control = sandbox.control();

    // (stream, its exact count when fixed by the account's configuration).
    let lists = [
        ("brands", Some(2)),
        ("ticket_forms", Some(2)),
        ("user_fields", Some(3)),
        ("organization_fields", Some(2)),
        ("group_memberships", None),
        ("organization_memberships", None),
        ("macros", Some(4)),
        ("satisfaction_ratings", None),
        ("ticket_metrics", Some(250)),
    ];
    for (name, count) in lists {
        let want = control.zendesk_list_ids(name).unwrap();
        if let Some(n) = count {
            assert_eq!(want.len(), n, "{name}");
        }
        let before = control.request_count(Api::Zendesk);
        let r = read(&src, name, None, control.now()).await;
        assert_eq!(ids(&r.records), want, "{name}");
        unique(&r.records);
        assert_eq!(r.states.len(), 1, "{name}");
        let pages: Vec<usize> = want
            .chunks(100)
            .map(<[u64]>::len)
            .filter(|&n| n > 0)
            .collect();
        assert_eq!(r.pages, pages, "{name}");
        let requests = control.request_count(Api::Zendesk) - before;
        assert_eq!(requests, want.len().div_ceil(100).max(1) as u64, "{name}");
    }
    // Memberships and ratings follow the generated users and tickets.
    let memberships = control.zendesk_list_ids("group_memberships").unwrap();
    assert!(memberships.len() > 6, "the admin's 6 and the agents'");
    let orgs = control
        .zendesk_list_ids("organization_memberships")
        .unwrap();
    assert!(orgs.len() > 100 && orgs.len() < 250, "{}", orgs.len());
    let ratings = control.zendesk_list_ids("satisfaction_ratings").unwrap();
    assert!(!ratings.is_empty() && ratings.len() < 250);

    // Deleting a ticket: the next full read lacks its metrics.
    let metrics = read(&src, "ticket_metrics", None, control.now()).await;
    control.advance_clock(120);
    control.zendesk_delete_ticket(250).unwrap();
    let again = read(
        &src,
        "ticket_metrics",
        metrics.last_state().cloned(),
        control.now(),
    )
    .await;
    assert_eq!(again.records.len(), 249);
    assert!(again.records.iter().all(|m| m["ticket_id"] != 250));
    assert_eq!(metrics.records[0]["ticket_id"], 250, "newest ticket first");
    assert_eq!(again.records[0]["ticket_id"], 249);
    sandbox.shutdown().await;
}
