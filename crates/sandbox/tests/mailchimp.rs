//! End-to-end tests of the Mailchimp simulator over loopback HTTP: batch
//! subscribe, upserts by subscriber hash, filters and paging, errors, the
//! connection limit and member shapes against Mailchimp's spec.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "support/openapi.rs"]
mod openapi;

use std::collections::HashSet;

use md5::{Digest, Md5};
use reqwest::{Method, StatusCode};
use serde_json::{Map, Value, json};
use weft_sandbox::{Api, DEFAULT_MAILCHIMP_KEY, Faults, Sandbox, SandboxConfig};

async fn sandbox(members: usize, rate_limits: bool) -> Sandbox {
    Sandbox::start(SandboxConfig {
        seed: 5,
        size: 100,
        rate_limits,
        mailchimp_members: members,
        clock_start: Some(weft_sandbox::process_clock_start()),
        ..SandboxConfig::default()
    })
    .await
    .unwrap()
}

async fn call(
    sb: &Sandbox,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut rb = reqwest::Client::new()
        .request(method, format!("{}{path}", sb.base_url(Api::Mailchimp)))
        .basic_auth("anystring", Some(DEFAULT_MAILCHIMP_KEY));
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let resp = rb.send().await.unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn md5_hex(email: &str) -> String {
    Md5::digest(email.to_lowercase().as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test]
async fn batch_subscribe_creates_rejects_and_updates() {
    let sb = sandbox(0, false).await;
    let list = sb.control().mailchimp_list_id();
    assert!(
        sb.control().mailchimp_members(&list).is_empty(),
        "starts empty"
    );
    let members = |fname: &str| {
        json!([
            {"email_address": "ada.lovelace@example.com", "status": "subscribed", "merge_fields": {"FNAME": fname, "LNAME": "Lovelace"}},
            {"email_address": "Grace.Hopper@Example.com", "status": "subscribed", "merge_fields": {"FNAME": "Grace"}},
            {"email_address": " alan.turing@example.com ", "status_if_new": "pending"},
            {"email_address": "not-an-email", "status": "subscribed"},
        ])
    };
    let path = format!("/3.0/lists/{list}");
    let (status, body) = call(
        &sb,
        Method::POST,
        &path,
        Some(json!({"members": members("Ada")})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["total_created"], 3);
    assert_eq!(body["total_updated"], 0);
    assert_eq!(body["error_count"], 1);
    assert_eq!(body["errors"][0]["email_address"], "not-an-email");
    assert_eq!(
        body["errors"][0]["error"],
        "not-an-email looks fake or invalid, please enter a real email address."
    );
    assert_eq!(body["errors"][0]["error_code"], "ERROR_GENERIC");
    let created: Vec<&str> = body["new_members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        created,
        vec![
            md5_hex("ada.lovelace@example.com"),
            md5_hex("grace.hopper@example.com"),
            md5_hex("alan.turing@example.com"),
        ]
    );
    assert_eq!(body["new_members"][2]["status"], "pending");
    let spec = openapi::load("mailchimp/mailchimp.com.json");
    openapi::assert_matches(&spec, "/lists/{list_id}", "post", "200", &body);

    // Existing members without update_existing are errors.
    let (_, body) = call(
        &sb,
        Method::POST,
        &path,
        Some(json!({"members": members("Ada")})),
    )
    .await;
    assert_eq!(body["total_created"], 0);
    assert_eq!(body["error_count"], 4);
    assert_eq!(body["errors"][0]["error_code"], "ERROR_CONTACT_EXISTS");
    assert!(
        body["errors"][0]["error"]
            .as_str()
            .unwrap()
            .starts_with("ada.lovelace@example.com is already a list member")
    );

    // With update_existing the changed FNAME is applied.
    let (_, body) = call(
        &sb,
        Method::POST,
        &path,
        Some(json!({"members": members("Augusta"), "update_existing": true})),
    )
    .await;
    assert_eq!(body["total_created"], 0);
    assert_eq!(body["total_updated"], 3);
    assert_eq!(body["error_count"], 1);
    assert_eq!(
        body["updated_members"][0]["merge_fields"]["FNAME"],
        "Augusta"
    );
    let stored = sb.control().mailchimp_members(&list);
    assert_eq!(stored.len(), 3);
    assert_eq!(stored[0]["merge_fields"]["FNAME"], "Augusta");
    assert_eq!(stored[0]["full_name"], "Augusta Lovelace");
    assert_eq!(stored[1]["email_address"], "Grace.Hopper@Example.com");
    assert_eq!(sb.control().writes(Api::Mailchimp).len(), 3);

    // More than 500 members is refused whole.
    let many: Vec<Value> = (0..501)
        .map(|i| json!({"email_address": format!("p{i}@example.com"), "status": "subscribed"}))
        .collect();
    let (status, body) = call(&sb, Method::POST, &path, Some(json!({"members": many}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["status"], 400);
    assert_eq!(body["title"], "Invalid Resource");
    assert_eq!(sb.control().mailchimp_members(&list).len(), 3);
    sb.shutdown().await;
}

#[tokio::test]
async fn put_by_subscriber_hash_upserts_and_deletes() {
    let sb = sandbox(0, false).await;
    let list = sb.control().mailchimp_list_id();
    let email = "Barry.Smith7@Example.com";
    let hash = md5_hex(email);
    let path = format!("/3.0/lists/{list}/members/{hash}");
    let (status, body) = call(
        &sb,
        Method::PUT,
        &path,
        Some(json!({"email_address": email, "status_if_new": "subscribed", "merge_fields": {"FNAME": "Barry"}})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["id"], hash.as_str());
    assert_eq!(body["status"], "subscribed");
    assert_eq!(body["merge_fields"]["FNAME"], "Barry");
    let spec = openapi::load("mailchimp/mailchimp.com.json");
    openapi::assert_matches(
        &spec,
        "/lists/{list_id}/members/{subscriber_hash}",
        "put",
        "200",
        &body,
    );

    // A second PUT updates the same member.
    let (status, body) = call(
        &sb,
        Method::PUT,
        &path,
        Some(json!({"email_address": email, "status_if_new": "subscribed", "status": "unsubscribed"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "unsubscribed");
    assert_eq!(body["merge_fields"]["FNAME"], "Barry");
    assert_eq!(sb.control().mailchimp_members(&list).len(), 1);

    // The hash must be the body email's.
    let (status, body) = call(
        &sb,
        Method::PUT,
        &path,
        Some(json!({"email_address": "someone.else@example.com", "status_if_new": "subscribed"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["type"],
        "https://mailchimp.com/developer/marketing/docs/errors/"
    );

    let (status, body) = call(
        &sb,
        Method::PATCH,
        &path,
        Some(json!({"merge_fields": {"LNAME": "Smith"}})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["merge_fields"]["LNAME"], "Smith");
    let (status, body) = call(&sb, Method::GET, &path, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["email_address"], email);

    // DELETE archives; delete-permanent erases and blocks re-import.
    let (status, _) = call(&sb, Method::DELETE, &path, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, body) = call(&sb, Method::GET, &path, None).await;
    assert_eq!(body["status"], "archived");
    let (_, listed) = call(
        &sb,
        Method::GET,
        &format!("/3.0/lists/{list}/members"),
        None,
    )
    .await;
    assert_eq!(listed["total_items"], 0);
    let (_, listed) = call(
        &sb,
        Method::GET,
        &format!("/3.0/lists/{list}/members?status=archived"),
        None,
    )
    .await;
    assert_eq!(listed["total_items"], 1);
    let (status, _) = call(
        &sb,
        Method::POST,
        &format!("{path}/actions/delete-permanent"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = call(&sb, Method::GET, &path, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["title"], "Resource Not Found");
    let (status, body) = call(
        &sb,
        Method::PUT,
        &path,
        Some(json!({"email_address": email, "status_if_new": "subscribed"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["title"], "Forgotten Email Not Subscribed");
    sb.shutdown().await;
}

#[tokio::test]
async fn members_page_with_count_offset_and_filter_by_last_changed() {
    let sb = sandbox(1_050, false).await;
    let control = sb.control();
    let list = control.mailchimp_list_id();
    let path = format!("/3.0/lists/{list}/members");
    let mut ids = HashSet::new();
    let mut offset = 0;
    loop {
        let (status, page) = call(
            &sb,
            Method::GET,
            &format!("{path}?count=100&offset={offset}"),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(page["total_items"], 1_050);
        let members = page["members"].as_array().unwrap();
        for m in members {
            assert!(ids.insert(m["id"].as_str().unwrap().to_owned()));
        }
        if members.len() < 100 {
            break;
        }
        offset += 100;
    }
    assert_eq!(ids.len(), 1_050);
    let (_, page) = call(&sb, Method::GET, &format!("{path}?count=5000"), None).await;
    assert_eq!(page["members"].as_array().unwrap().len(), 1_000);
    let (_, page) = call(&sb, Method::GET, &path, None).await;
    assert_eq!(page["members"].as_array().unwrap().len(), 10);
    let spec = openapi::load("mailchimp/mailchimp.com.json");
    openapi::assert_matches(&spec, "/lists/{list_id}/members", "get", "200", &page);
    let first = &page["members"][0];
    let p = weft_sandbox::people::person(5, 0);
    assert_eq!(first["email_address"], p.email.as_str());
    assert_eq!(first["merge_fields"]["FNAME"], p.nickname);

    // Only members changed after the filter time come back.
    let before = control.now();
    let changed = page["members"][3]["id"].as_str().unwrap().to_owned();
    let (status, _) = call(
        &sb,
        Method::PATCH,
        &format!("{path}/{changed}"),
        Some(json!({"merge_fields": {"FNAME": "Changed"}})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let since = chrono::DateTime::from_timestamp(before - 1, 0)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%S+00:00")
        .to_string();
    let (status, page) = call(
        &sb,
        Method::GET,
        &format!("{path}?since_last_changed={}", since.replace('+', "%2B")),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["total_items"], 1);
    assert_eq!(page["members"][0]["id"], changed.as_str());
    assert_eq!(page["members"][0]["merge_fields"]["FNAME"], "Changed");
    let (status, _) = call(
        &sb,
        Method::GET,
        &format!("{path}?since_last_changed=yesterday"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Subscribed-only filter.
    let (_, subscribed) = call(
        &sb,
        Method::GET,
        &format!("{path}?status=subscribed&count=1"),
        None,
    )
    .await;
    let (_, unsubscribed) = call(
        &sb,
        Method::GET,
        &format!("{path}?status=unsubscribed&count=1"),
        None,
    )
    .await;
    assert_eq!(
        subscribed["total_items"].as_u64().unwrap() + unsubscribed["total_items"].as_u64().unwrap(),
        1_050
    );
    assert!(unsubscribed["total_items"].as_u64().unwrap() > 0);
    sb.shutdown().await;
}

#[tokio::test]
async fn lists_campaigns_and_auth_errors() {
    let sb = sandbox(20, false).await;
    let spec = openapi::load("mailchimp/mailchimp.com.json");
    let (status, lists) = call(&sb, Method::GET, "/3.0/lists", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(lists["total_items"], 1);
    assert_eq!(
        lists["lists"][0]["id"],
        sb.control().mailchimp_list_id().as_str()
    );
    openapi::assert_matches(&spec, "/lists", "get", "200", &lists);
    let (_, campaigns) = call(&sb, Method::GET, "/3.0/campaigns?count=2", None).await;
    assert_eq!(campaigns["total_items"], 3);
    assert_eq!(campaigns["campaigns"].as_array().unwrap().len(), 2);
    openapi::assert_matches(&spec, "/campaigns", "get", "200", &campaigns);

    let resp = reqwest::Client::new()
        .get(format!("{}/3.0/lists", sb.base_url(Api::Mailchimp)))
        .basic_auth("anystring", Some("0000-us6"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["title"], "API Key Invalid");
    assert_eq!(body["status"], 401);
    assert_eq!(
        body["type"],
        "https://mailchimp.com/developer/marketing/docs/errors/"
    );
    assert!(body["detail"].as_str().unwrap().contains("API key"));
    assert!(body["instance"].as_str().is_some_and(|s| !s.is_empty()));
    sb.shutdown().await;
}

#[tokio::test]
async fn more_than_ten_simultaneous_connections_get_429() {
    let sb = sandbox(0, true).await;
    sb.control().set_faults(
        Api::Mailchimp,
        Faults {
            latency_ms: 400,
            ..Faults::default()
        },
    );
    let client = reqwest::Client::new();
    let url = format!("{}/3.0/ping", sb.base_url(Api::Mailchimp));
    let burst = (0..16).map(|_| {
        client
            .get(&url)
            .basic_auth("anystring", Some(DEFAULT_MAILCHIMP_KEY))
            .send()
    });
    let mut ok = 0;
    let mut limited = 0;
    for resp in futures::future::join_all(burst).await {
        let resp = resp.unwrap();
        match resp.status() {
            StatusCode::OK => ok += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                limited += 1;
                let body: Value = resp.json().await.unwrap();
                assert_eq!(body["title"], "Too Many Requests");
                assert_eq!(body["status"], 429);
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(ok >= 10 && limited >= 1, "ok {ok}, limited {limited}");
    assert_eq!(ok + limited, 16);
    // Finished requests free their connection slot.
    sb.control().set_faults(Api::Mailchimp, Faults::default());
    let (status, body) = call(&sb, Method::GET, "/3.0/ping", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["health_status"], "Everything's Chimpy!");
    sb.shutdown().await;
}

#[tokio::test]
async fn a_saved_audience_is_served_again_by_a_restored_sandbox() {
    let sb = sandbox(2, false).await;
    let list = sb.control().mailchimp_list_id();
    for (email, first) in [("ada@example.com", "Ada"), ("grace@example.com", "Grace")] {
        let path = format!("/3.0/lists/{list}/members/{}", md5_hex(email));
        let (status, body) = call(
            &sb,
            Method::PUT,
            &path,
            Some(json!({"email_address": email, "status_if_new": "subscribed", "merge_fields": {"FNAME": first}})),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let erased = format!(
        "/3.0/lists/{list}/members/{}/actions/delete-permanent",
        md5_hex("ada@example.com")
    );
    let (status, _) = call(&sb, Method::POST, &erased, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let before = sb.control().mailchimp_members(&list);
    assert_eq!(before.len(), 3);
    let saved = sb.control().save_state();
    assert_eq!(
        saved.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["mailchimp"]
    );
    assert!(!saved.to_string().contains(DEFAULT_MAILCHIMP_KEY));
    sb.shutdown().await;

    // A fresh sandbox (no seeded members) restored from it serves the same
    // members, and still refuses the erased one.
    let fresh = sandbox(0, false).await;
    assert!(fresh.control().mailchimp_members(&list).is_empty());
    fresh.control().restore_state(&saved).unwrap();
    assert_eq!(fresh.control().mailchimp_members(&list), before);
    let (status, body) = call(
        &fresh,
        Method::PUT,
        &format!("/3.0/lists/{list}/members/{}", md5_hex("ada@example.com")),
        Some(json!({"email_address": "ada@example.com", "status_if_new": "subscribed"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // Malformed or foreign states are errors naming what is wrong, and
    // change nothing.
    let err = |v: Value| fresh.control().restore_state(&v).unwrap_err().to_string();
    assert!(err(json!([1])).contains("JSON object"));
    assert!(err(json!({"nosuch": {}})).contains("nosuch"));
    assert!(err(json!({"mailchimp": {"members": 3, "erased": []}})).contains("mailchimp"));
    let mut twice = saved["mailchimp"].clone();
    let first = twice["members"][0].clone();
    twice["members"].as_array_mut().unwrap().push(first);
    assert!(err(json!({"mailchimp": twice})).contains("appears twice"));
    assert_eq!(fresh.control().mailchimp_members(&list), before);
    fresh.shutdown().await;
}

#[tokio::test]
async fn campaigns_filter_and_sort_by_create_time() {
    let sb = sandbox(5, false).await;
    let spec = openapi::load("mailchimp/mailchimp.com.json");
    let control = sb.control();
    let ids = control.mailchimp_campaign_ids();
    assert_eq!(ids.len(), 3);
    let (status, all) = call(&sb, Method::GET, "/3.0/campaigns", None).await;
    assert_eq!(status, StatusCode::OK);
    let got: Vec<&str> = all["campaigns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(got, ids);
    // Newest first.
    let (_, desc) = call(
        &sb,
        Method::GET,
        "/3.0/campaigns?sort_field=create_time&sort_dir=DESC",
        None,
    )
    .await;
    openapi::assert_matches(&spec, "/campaigns", "get", "200", &desc);
    let desc: Vec<&str> = desc["campaigns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(desc, [ids[2].as_str(), ids[1].as_str(), ids[0].as_str()]);
    // Created after the second's create time: the third only (the filter is exclusive).
    let second = all["campaigns"][1]["create_time"].as_str().unwrap();
    let (status, since) = call(
        &sb,
        Method::GET,
        &format!(
            "/3.0/campaigns?since_create_time={}",
            second.replace('+', "%2B")
        ),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{since}");
    assert_eq!(since["total_items"], 1);
    assert_eq!(since["campaigns"][0]["id"], ids[2].as_str());
    let (status, before) = call(
        &sb,
        Method::GET,
        &format!(
            "/3.0/campaigns?before_create_time={}",
            second.replace('+', "%2B")
        ),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(before["total_items"], 1);
    assert_eq!(before["campaigns"][0]["id"], ids[0].as_str());
    let (status, _) = call(&sb, Method::GET, "/3.0/campaigns?sort_field=title", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = call(
        &sb,
        Method::GET,
        "/3.0/campaigns?since_create_time=soon",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    sb.shutdown().await;
}

#[tokio::test]
async fn control_lists_member_ids_and_changes_a_member_with_a_newer_last_changed() {
    let sb = sandbox(6, false).await;
    let control = sb.control();
    let list = control.mailchimp_list_id();
    let ids = control.mailchimp_member_ids(&list);
    assert_eq!(ids.len(), 6);
    let held: Vec<String> = control
        .mailchimp_members(&list)
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, held);
    assert!(control.mailchimp_member_ids("nope").is_empty());
    let base = sb.base_url(Api::Mailchimp);
    let over_http: Value = reqwest::get(format!(
        "{base}/__sandbox/mailchimp/lists/{list}/member_ids"
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(over_http, json!(ids));
    let campaigns: Value = reqwest::get(format!("{base}/__sandbox/mailchimp/campaigns/ids"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(campaigns, json!(control.mailchimp_campaign_ids()));

    // A change moves last_changed to the sandbox's now; the API shows it.
    let path = format!("/3.0/lists/{list}/members");
    let (_, before) = call(&sb, Method::GET, &format!("{path}/{}", ids[2]), None).await;
    control.advance_clock(10);
    let mut merge = Map::new();
    merge.insert("LNAME".into(), Value::from("Changed"));
    let changed = control
        .mailchimp_update_member(&list, &ids[2], None, &merge)
        .unwrap();
    assert_eq!(changed["merge_fields"]["LNAME"], "Changed");
    let t = |v: &Value| chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap();
    assert!(t(&changed["last_changed"]) > t(&before["last_changed"]));
    // The sandbox's now (at least the advanced clock; a second may tick in between).
    let at = t(&changed["last_changed"]).timestamp();
    assert!(at > t(&before["last_changed"]).timestamp() + 9 && at <= control.now());
    let since = before["last_changed"].as_str().unwrap().replace('+', "%2B");
    let (_, page) = call(
        &sb,
        Method::GET,
        &format!("{path}?since_last_changed={since}&sort_field=last_changed&sort_dir=DESC"),
        None,
    )
    .await;
    let newer: Vec<&str> = page["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert!(newer.contains(&ids[2].as_str()));
    assert_eq!(newer[0], ids[2].as_str(), "newest first");
    // Nothing changed: last_changed stays.
    let same = control
        .mailchimp_update_member(&list, &ids[2], None, &merge)
        .unwrap();
    assert_eq!(same["last_changed"], changed["last_changed"]);
    assert!(
        control
            .mailchimp_update_member(&list, "0000", None, &merge)
            .is_none()
    );

    // Archived over the control API (HTTP): gone from the default listing,
    // listed with status=archived.
    control.advance_clock(10);
    let resp = reqwest::Client::new()
        .patch(format!(
            "{base}/__sandbox/mailchimp/lists/{list}/members/{}",
            ids[4]
        ))
        .json(&json!({"status": "archived"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let (_, default) = call(&sb, Method::GET, &path, None).await;
    assert_eq!(default["total_items"], 5);
    let (_, archived) = call(&sb, Method::GET, &format!("{path}?status=archived"), None).await;
    assert_eq!(archived["total_items"], 1);
    assert_eq!(archived["members"][0]["id"], ids[4].as_str());
    assert_eq!(archived["members"][0]["status"], "archived");
    let missing = reqwest::Client::new()
        .patch(format!(
            "{base}/__sandbox/mailchimp/lists/{list}/members/ffff"
        ))
        .json(&json!({"status": "archived"}))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    sb.shutdown().await;
}

#[tokio::test]
async fn segments_and_interest_categories_page_in_mailchimps_shapes() {
    let sb = sandbox(40, false).await;
    let spec = openapi::load("mailchimp/mailchimp.com.json");
    let control = sb.control();
    let list = control.mailchimp_list_id();
    let ids = control.mailchimp_segment_ids(&list);
    assert_eq!(ids.len(), 4);
    let path = format!("/3.0/lists/{list}/segments");
    let (status, first) = call(&sb, Method::GET, &format!("{path}?count=3&offset=0"), None).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    openapi::assert_matches(&spec, "/lists/{list_id}/segments", "get", "200", &first);
    assert_eq!(first["total_items"], 4);
    let (_, rest) = call(&sb, Method::GET, &format!("{path}?count=3&offset=3"), None).await;
    let got: Vec<i64> = first["segments"]
        .as_array()
        .unwrap()
        .iter()
        .chain(rest["segments"].as_array().unwrap())
        .map(|s| s["id"].as_i64().unwrap())
        .collect();
    assert_eq!(got, ids);
    // The saved segment "Unsubscribed" counts the unsubscribed members.
    let unsubscribed = control
        .mailchimp_members(&list)
        .iter()
        .filter(|m| m["status"] == "unsubscribed")
        .count();
    assert_eq!(first["segments"][2]["member_count"], unsubscribed);
    assert_eq!(first["segments"][2]["type"], "saved");
    let (_, tags) = call(&sb, Method::GET, &format!("{path}?type=static"), None).await;
    assert_eq!(tags["total_items"], 2);
    let (status, _) = call(&sb, Method::GET, "/3.0/lists/nope/segments", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let path = format!("/3.0/lists/{list}/interest-categories");
    let (status, cats) = call(&sb, Method::GET, &path, None).await;
    assert_eq!(status, StatusCode::OK);
    openapi::assert_matches(
        &spec,
        "/lists/{list_id}/interest-categories",
        "get",
        "200",
        &cats,
    );
    let got: Vec<&str> = cats["categories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(got, control.mailchimp_interest_category_ids(&list));
    assert_eq!(cats["total_items"], 2);
    sb.shutdown().await;
}

#[tokio::test]
async fn campaign_unsubscribes_follow_the_unsubscribed_members() {
    let sb = sandbox(60, false).await;
    let spec = openapi::load("mailchimp/mailchimp.com.json");
    let control = sb.control();
    let list = control.mailchimp_list_id();
    let campaigns = control.mailchimp_campaign_ids();
    let mut all = Vec::new();
    for c in &campaigns {
        let path = format!("/3.0/reports/{c}/unsubscribed");
        let (status, page) = call(&sb, Method::GET, &format!("{path}?count=1000"), None).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        openapi::assert_matches(
            &spec,
            "/reports/{campaign_id}/unsubscribed",
            "get",
            "200",
            &page,
        );
        let ids: Vec<String> = page["unsubscribes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| {
                assert_eq!(u["campaign_id"], c.as_str());
                assert_eq!(u["list_id"], list.as_str());
                u["email_id"].as_str().unwrap().to_string()
            })
            .collect();
        assert_eq!(page["total_items"], ids.len());
        assert_eq!(Some(ids.clone()), control.mailchimp_unsubscribe_ids(c));
        all.extend(ids);
    }
    // Every unsubscribed member unsubscribed through exactly one campaign.
    let mut unsubscribed: Vec<String> = control
        .mailchimp_members(&list)
        .iter()
        .filter(|m| m["status"] == "unsubscribed")
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect();
    unsubscribed.sort();
    all.sort();
    assert!(!all.is_empty());
    assert_eq!(all, unsubscribed);
    let (status, _) = call(&sb, Method::GET, "/3.0/reports/nope/unsubscribed", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(control.mailchimp_unsubscribe_ids("nope"), None);
    sb.shutdown().await;
}
