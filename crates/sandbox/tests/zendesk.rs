//! End-to-end tests of the Zendesk Support simulator over loopback HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "support/openapi.rs"]
mod openapi;

use std::collections::HashSet;

use reqwest::StatusCode;
use serde_json::{Value, json};
use weft_sandbox::{Api, DEFAULT_ZENDESK_EMAIL, DEFAULT_ZENDESK_TOKEN, Sandbox, SandboxConfig};

async fn sandbox(size: usize, rate_limits: bool) -> Sandbox {
    Sandbox::start(SandboxConfig {
        seed: 11,
        size,
        rate_limits,
        clock_start: Some(weft_sandbox::process_clock_start()),
        ..SandboxConfig::default()
    })
    .await
    .unwrap()
}

fn client(sb: &Sandbox, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
    reqwest::Client::new()
        .request(method, format!("{}{}", sb.base_url(Api::Zendesk), path))
        .basic_auth(
            format!("{DEFAULT_ZENDESK_EMAIL}/token"),
            Some(DEFAULT_ZENDESK_TOKEN),
        )
}

async fn get(sb: &Sandbox, path: &str) -> (StatusCode, Value) {
    let resp = client(sb, reqwest::Method::GET, path).send().await.unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap())
}

/// Follows `after_url` from `first` until `end_of_stream`; returns the records and the last cursor.
async fn export(sb: &Sandbox, name: &str, first: &str) -> (Vec<Value>, String) {
    let mut out = Vec::new();
    let mut path = first.to_owned();
    loop {
        let (status, page) = get(sb, &path).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        out.extend(page[name].as_array().unwrap().iter().cloned());
        let after_url = page["after_url"].as_str().unwrap();
        let cursor = page["after_cursor"].as_str().unwrap().to_owned();
        assert!(
            after_url.contains(&format!("?cursor={cursor}")),
            "{after_url}"
        );
        // The page size asked for carries over to the next page.
        if let Some((_, size)) = first.split_once("per_page=") {
            assert!(
                after_url.ends_with(&format!("&per_page={size}")),
                "{after_url}"
            );
        }
        if page["end_of_stream"].as_bool().unwrap() {
            return (out, cursor);
        }
        path = after_url
            .split_once("/api/")
            .map(|(_, p)| format!("/api/{p}"))
            .unwrap();
    }
}

fn ids(records: &[Value]) -> Vec<u64> {
    records.iter().map(|r| r["id"].as_u64().unwrap()).collect()
}

#[tokio::test]
async fn ticket_export_pages_through_every_ticket_once_in_update_order() {
    let sb = sandbox(1_100, false).await;
    let (tickets, _) = export(
        &sb,
        "tickets",
        "/api/v2/incremental/tickets/cursor.json?start_time=0&per_page=250",
    )
    .await;
    assert_eq!(tickets.len(), 1_100);
    let unique: HashSet<u64> = ids(&tickets).into_iter().collect();
    assert_eq!(unique.len(), 1_100);
    assert_eq!(unique, (1..=1_100).collect());
    let updated: Vec<&str> = tickets
        .iter()
        .map(|t| t["updated_at"].as_str().unwrap())
        .collect();
    assert!(
        updated.windows(2).all(|w| w[0] <= w[1]),
        "ordered by updated_at"
    );
    // Default page is 1,000: two pages.
    let (status, page) = get(&sb, "/api/v2/incremental/tickets/cursor.json?start_time=0").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["tickets"].as_array().unwrap().len(), 1_000);
    assert_eq!(page["end_of_stream"], false);
    assert_eq!(page["before_cursor"], Value::Null);
    // Same seed and size: byte-identical pages.
    let a = client(
        &sb,
        reqwest::Method::GET,
        "/api/v2/incremental/users/cursor?start_time=0&per_page=50",
    )
    .send()
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    let sb2 = sandbox(1_100, false).await;
    let b = client(
        &sb2,
        reqwest::Method::GET,
        "/api/v2/incremental/users/cursor?start_time=0&per_page=50",
    )
    .send()
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    assert_eq!(
        a.replace(&sb.base_url(Api::Zendesk), ""),
        b.replace(&sb2.base_url(Api::Zendesk), "")
    );
    sb.shutdown().await;
    sb2.shutdown().await;
}

fn unix(iso: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(iso)
        .unwrap()
        .timestamp()
}

#[tokio::test]
async fn start_time_filters_by_updated_at() {
    let sb = sandbox(300, false).await;
    let (all, _) = export(
        &sb,
        "tickets",
        "/api/v2/incremental/tickets/cursor.json?start_time=0",
    )
    .await;
    let t = unix(all[120]["updated_at"].as_str().unwrap());
    let expected: HashSet<u64> = all
        .iter()
        .filter(|r| unix(r["updated_at"].as_str().unwrap()) >= t)
        .map(|r| r["id"].as_u64().unwrap())
        .collect();
    let (since, _) = export(
        &sb,
        "tickets",
        &format!("/api/v2/incremental/tickets/cursor.json?start_time={t}&per_page=40"),
    )
    .await;
    assert_eq!(ids(&since).into_iter().collect::<HashSet<_>>(), expected);
    assert_eq!(since.len(), expected.len());
    // Too recent, and neither start_time nor cursor.
    let now = sb.control().now();
    let (status, body) = get(
        &sb,
        &format!("/api/v2/incremental/tickets/cursor.json?start_time={now}"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "InvalidValue");
    let (status, _) = get(&sb, "/api/v2/incremental/tickets/cursor.json").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    sb.shutdown().await;
}

#[tokio::test]
async fn updated_and_deleted_tickets_reappear_after_the_cursor() {
    let sb = sandbox(200, false).await;
    let (all, cursor) = export(
        &sb,
        "tickets",
        "/api/v2/incremental/tickets/cursor.json?start_time=0",
    )
    .await;
    assert_eq!(all.len(), 200);
    let resume = format!("/api/v2/incremental/tickets/cursor.json?cursor={cursor}");
    let (nothing, same) = export(&sb, "tickets", &resume).await;
    assert!(nothing.is_empty());
    assert_eq!(same, cursor);

    let c = sb.control();
    c.advance_clock(120);
    c.zendesk_update_ticket(
        5,
        json!({"subject": "Changed by the sandbox", "status": "solved"}),
    )
    .unwrap();
    c.zendesk_delete_ticket(7).unwrap();
    assert!(
        c.zendesk_update_ticket(7, json!({"subject": "x"})).is_err(),
        "deleted"
    );
    assert!(
        c.zendesk_update_ticket(5, json!({"requester_id": 1}))
            .is_err(),
        "not updatable"
    );
    assert!(c.zendesk_delete_ticket(9_999).is_err());

    let (changed, cursor2) = export(&sb, "tickets", &resume).await;
    assert_eq!(ids(&changed), vec![5, 7]);
    assert_eq!(changed[0]["subject"], "Changed by the sandbox");
    assert_eq!(changed[0]["status"], "solved");
    assert!(unix(changed[0]["updated_at"].as_str().unwrap()) >= c.now() - 5);
    assert_eq!(
        changed[0]["generated_timestamp"],
        unix(changed[0]["updated_at"].as_str().unwrap())
    );
    assert_eq!(changed[1]["status"], "deleted");
    let (again, _) = export(
        &sb,
        "tickets",
        &format!("/api/v2/incremental/tickets/cursor.json?cursor={cursor2}"),
    )
    .await;
    assert!(again.is_empty());

    let (status, deleted) = get(&sb, "/api/v2/deleted_tickets.json").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(deleted["count"], 1);
    let d = &deleted["deleted_tickets"][0];
    assert_eq!(d["id"], 7);
    assert_eq!(
        d["previous_state"],
        all.iter().find(|t| t["id"] == 7).unwrap()["status"]
    );
    assert_eq!(
        d["subject"],
        all.iter().find(|t| t["id"] == 7).unwrap()["subject"]
    );
    sb.shutdown().await;
}

async fn job(sb: &Sandbox, users: Value) -> Value {
    let resp = client(
        sb,
        reqwest::Method::POST,
        "/api/v2/users/create_or_update_many.json",
    )
    .json(&json!({"users": users}))
    .send()
    .await
    .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let queued: Value = resp.json().await.unwrap();
    assert_eq!(queued["job_status"]["status"], "queued");
    let url = queued["job_status"]["url"].as_str().unwrap();
    let path = url
        .split_once("/api/")
        .map(|(_, p)| format!("/api/{p}"))
        .unwrap();
    let (status, done) = get(sb, &path).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(done["job_status"]["status"], "completed");
    assert_eq!(done["job_status"]["id"], queued["job_status"]["id"]);
    done["job_status"].clone()
}

#[tokio::test]
async fn create_or_update_many_reports_created_then_updated() {
    let sb = sandbox(100, false).await;
    let (users, cursor) = export(
        &sb,
        "users",
        "/api/v2/incremental/users/cursor.json?start_time=0",
    )
    .await;
    assert_eq!(users.len(), 100);
    let existing = &users[10];
    let existing_email = existing["email"].as_str().unwrap().trim().to_uppercase();
    let first = job(
        &sb,
        json!([
            {"name": "Nova Newperson", "email": "nova.newperson@example.com"},
            {"name": "Renamed", "email": existing_email},
            {"name": "Bad", "email": "not-an-email"},
        ]),
    )
    .await;
    assert_eq!(first["total"], 3);
    let r = first["results"].as_array().unwrap();
    assert_eq!(r[0]["status"], "Created");
    assert_eq!(r[0]["email"], "nova.newperson@example.com");
    assert_eq!(r[1]["status"], "Updated");
    assert_eq!(r[1]["id"], existing["id"]);
    assert_eq!(r[2]["success"], false);
    assert_eq!(r[2]["error"], "InvalidValue");
    let new_id = r[0]["id"].as_u64().unwrap();

    let second = job(
        &sb,
        json!([{"name": "Nova N.", "email": " NOVA.NEWPERSON@example.com "}]),
    )
    .await;
    assert_eq!(second["results"][0]["status"], "Updated");
    assert_eq!(second["results"][0]["id"], new_id);
    assert_eq!(
        sb.control()
            .zendesk_job_status(second["id"].as_str().unwrap())
            .unwrap(),
        second
    );

    let (written, _) = export(
        &sb,
        "users",
        &format!("/api/v2/incremental/users/cursor.json?cursor={cursor}"),
    )
    .await;
    assert_eq!(
        ids(&written),
        vec![existing["id"].as_u64().unwrap(), new_id]
    );
    assert_eq!(written[0]["name"], "Renamed");
    assert_eq!(written[1]["name"], "Nova N.");
    assert_eq!(sb.control().writes(Api::Zendesk).len(), 2);

    let too_many: Vec<Value> = (0..101)
        .map(|i| json!({"name": "x", "email": format!("x{i}@example.com")}))
        .collect();
    let resp = client(
        &sb,
        reqwest::Method::POST,
        "/api/v2/users/create_or_update_many",
    )
    .json(&json!({"users": too_many}))
    .send()
    .await
    .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let created = sb.control().zendesk_create_users(2);
    assert_eq!(created, vec![new_id + 1, new_id + 2]);
    sb.shutdown().await;
}

#[tokio::test]
async fn wrong_credentials_get_401() {
    let sb = sandbox(10, false).await;
    for auth in [
        None,
        Some(("someone@example.com/token", "nope")),
        Some((DEFAULT_ZENDESK_EMAIL, DEFAULT_ZENDESK_TOKEN)),
    ] {
        let mut req =
            reqwest::Client::new().get(format!("{}/api/v2/groups.json", sb.base_url(Api::Zendesk)));
        if let Some((user, pass)) = auth {
            req = req.basic_auth(user, Some(pass));
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            resp.text().await.unwrap(),
            r#"{"error":"Couldn't authenticate you"}"#
        );
    }
    sb.shutdown().await;
}

#[tokio::test]
async fn eleventh_incremental_request_in_a_minute_gets_429() {
    let sb = sandbox(10, true).await;
    for n in 0..10 {
        let (status, _) = get(&sb, "/api/v2/incremental/users/cursor.json?start_time=0").await;
        assert_eq!(status, StatusCode::OK, "request {n}");
    }
    let resp = client(
        &sb,
        reqwest::Method::GET,
        "/api/v2/incremental/tickets/cursor.json?start_time=0",
    )
    .send()
    .await
    .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "APIRateLimitExceeded");
    // Other endpoints still answer, with the plan's limit in the headers.
    let resp = client(&sb, reqwest::Method::GET, "/api/v2/groups.json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["x-rate-limit"], "700");
    assert_eq!(resp.headers()["x-rate-limit-remaining"], "688");
    sb.shutdown().await;
}

#[tokio::test]
async fn groups_fields_and_organizations() {
    let sb = sandbox(100, false).await;
    let (_, first) = get(&sb, "/api/v2/groups.json?page[size]=4").await;
    assert_eq!(first["groups"].as_array().unwrap().len(), 4);
    assert_eq!(first["meta"]["has_more"], true);
    let next = first["links"]["next"].as_str().unwrap();
    let path = next
        .split_once("/api/")
        .map(|(_, p)| format!("/api/{p}"))
        .unwrap();
    let (_, second) = get(&sb, &path).await;
    assert_eq!(second["groups"].as_array().unwrap().len(), 2);
    assert_eq!(second["meta"]["has_more"], false);
    assert_eq!(second["links"]["next"], Value::Null);
    let all: HashSet<u64> = ids(first["groups"].as_array().unwrap())
        .into_iter()
        .chain(ids(second["groups"].as_array().unwrap()))
        .collect();
    assert_eq!(all.len(), 6);

    let (_, fields) = get(&sb, "/api/v2/ticket_fields").await;
    let types: Vec<&str> = fields["ticket_fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["type"].as_str().unwrap())
        .collect();
    assert_eq!(types[..3], ["subject", "description", "status"]);

    let (_, orgs) = get(
        &sb,
        "/api/v2/incremental/organizations.json?start_time=0&per_page=3",
    )
    .await;
    assert_eq!(orgs["count"], 3);
    assert_eq!(orgs["end_of_stream"], false);
    let end_time = orgs["end_time"].as_i64().unwrap();
    assert_eq!(
        end_time,
        unix(orgs["organizations"][2]["updated_at"].as_str().unwrap())
    );
    assert!(
        orgs["next_page"]
            .as_str()
            .unwrap()
            .ends_with(&format!("start_time={end_time}"))
    );
    let (_, rest) = get(
        &sb,
        &format!("/api/v2/incremental/organizations?start_time={end_time}"),
    )
    .await;
    assert_eq!(rest["end_of_stream"], true);
    assert_eq!(
        rest["count"], 3,
        "5 organizations: the third again (time-based overlap) and two more"
    );
    sb.shutdown().await;
}

fn spec() -> Value {
    openapi::load("zendesk/openapi-src.json")
}

/// Every field a documented property of `component`; every required one present.
fn check_names(spec: &Value, component: &str, record: &Value) -> Vec<String> {
    let schema = openapi::component(spec, component);
    let props = schema["properties"].as_object().unwrap();
    let obj = record.as_object().unwrap();
    let mut errors: Vec<String> = obj
        .keys()
        .filter(|k| !props.contains_key(*k))
        .map(|k| format!("{component}.{k}: not a property"))
        .collect();
    for r in schema["required"].as_array().into_iter().flatten() {
        if !obj.contains_key(r.as_str().unwrap()) {
            errors.push(format!("{component}.{r}: required but missing"));
        }
    }
    errors
}

#[tokio::test]
async fn tickets_users_and_organizations_use_the_spec_field_names() {
    let spec = spec();
    let sb = sandbox(200, false).await;
    sb.control().zendesk_delete_ticket(3).unwrap();
    job(
        &sb,
        json!([{"name": "Spec Check", "email": "spec.check@example.com"}]),
    )
    .await;
    let (tickets, _) = export(
        &sb,
        "tickets",
        "/api/v2/incremental/tickets/cursor.json?start_time=0",
    )
    .await;
    let (users, _) = export(
        &sb,
        "users",
        "/api/v2/incremental/users/cursor.json?start_time=0",
    )
    .await;
    assert_eq!(users.len(), 201);
    let (_, orgs) = get(&sb, "/api/v2/incremental/organizations.json?start_time=0").await;
    let (_, groups) = get(&sb, "/api/v2/groups").await;
    let (_, fields) = get(&sb, "/api/v2/ticket_fields").await;
    let mut errors = Vec::new();
    for t in &tickets {
        errors.extend(check_names(&spec, "TicketObject", t));
    }
    for u in &users {
        errors.extend(check_names(&spec, "UserForAdmin", u));
    }
    for o in orgs["organizations"].as_array().unwrap() {
        errors.extend(check_names(&spec, "OrganizationObject", o));
    }
    for g in groups["groups"].as_array().unwrap() {
        errors.extend(check_names(&spec, "GroupObject", g));
    }
    for f in fields["ticket_fields"].as_array().unwrap() {
        errors.extend(check_names(&spec, "TicketFieldObject", f));
    }
    errors.sort();
    errors.dedup();
    assert!(errors.is_empty(), "{errors:#?}");
    // End users carry only UserForEndUser's fields plus UserForAdmin's: check the schema's required too.
    assert!(users.iter().all(|u| u["name"].is_string()));
    sb.shutdown().await;
}

/// Sends a bulk write and returns its completed job status.
async fn bulk(sb: &Sandbox, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
    let mut req = client(sb, method, path);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "{path}");
    let queued: Value = resp.json().await.unwrap();
    assert_eq!(queued["job_status"]["status"], "queued");
    let id = queued["job_status"]["id"].as_str().unwrap();
    let (status, done) = get(sb, &format!("/api/v2/job_statuses/{id}.json")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(done["job_status"]["status"], "completed");
    done["job_status"].clone()
}

#[tokio::test]
async fn organizations_are_created_updated_tagged_and_deleted_in_the_vendors_shapes() {
    let sb = sandbox(100, false).await;
    let created = bulk(
        &sb,
        reqwest::Method::POST,
        "/api/v2/organizations/create_many.json",
        Some(json!({"organizations": [
            {"name": "Acme", "external_id": "acme", "tags": ["vip"]},
            {"name": "ACME", "external_id": "acme-2"},
            {"external_id": "nameless"},
            {"name": "Beta", "external_id": "beta"},
        ]})),
    )
    .await;
    assert_eq!(created["job_type"], "Bulk Create Organizations");
    let r = created["results"].as_array().unwrap();
    assert_eq!(r.len(), 4);
    assert_eq!(
        (r[0]["index"].clone(), r[0]["status"].clone()),
        (json!(0), json!("Created"))
    );
    assert_eq!(
        (
            r[1]["index"].clone(),
            r[1]["error"].clone(),
            r[1]["details"].clone()
        ),
        (
            json!(1),
            json!("DuplicateValue"),
            json!("Name: ACME has already been taken")
        )
    );
    assert_eq!(r[2]["details"], "Name: cannot be blank");
    assert_eq!(r[3]["status"], "Created");
    let acme = r[0]["id"].as_u64().unwrap();
    let beta = r[3]["id"].as_u64().unwrap();

    // Looked up by external id (any case); unknown ones are left out.
    let (status, shown) = get(
        &sb,
        "/api/v2/organizations/show_many.json?external_ids=ACME%2Cbeta%2Cnone",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let found: Vec<u64> = shown["organizations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_u64().unwrap())
        .collect();
    assert_eq!(found, [acme, beta]);
    assert_eq!(shown["count"], 2);

    // Update results carry ids (no index); a missing id fails alone.
    let updated = bulk(
        &sb,
        reqwest::Method::PUT,
        "/api/v2/organizations/update_many.json",
        Some(json!({"organizations": [
            {"id": beta, "notes": "renewing", "organization_fields": {"tier": "gold"}},
            {"id": 1, "notes": "nobody"},
        ]})),
    )
    .await;
    let r = updated["results"].as_array().unwrap();
    assert_eq!(
        r[0],
        json!({"id": beta, "action": "update", "success": true, "status": "Updated"})
    );
    assert_eq!(
        (r[1]["id"].clone(), r[1]["error"].clone()),
        (json!(1), json!("RecordNotFound"))
    );
    let b = sb
        .control()
        .zendesk_organization_by_external_id("beta")
        .unwrap();
    assert_eq!(
        (b["notes"].clone(), b["organization_fields"]["tier"].clone()),
        (json!("renewing"), json!("gold"))
    );

    // Adding tags keeps the others.
    let resp = client(
        &sb,
        reqwest::Method::PUT,
        &format!("/api/v2/organizations/{acme}/tags.json"),
    )
    .json(&json!({"tags": ["churned", "vip"]}))
    .send()
    .await
    .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let tags: Value = resp.json().await.unwrap();
    assert_eq!(tags, json!({"tags": ["vip", "churned"]}));
    assert_eq!(
        sb.control()
            .zendesk_organization_by_external_id("acme")
            .unwrap()["tags"],
        json!(["vip", "churned"])
    );

    // Deleted by id: results carry ids; the organization is gone.
    let deleted = bulk(
        &sb,
        reqwest::Method::DELETE,
        &format!("/api/v2/organizations/destroy_many.json?ids={beta},1"),
        None,
    )
    .await;
    let r = deleted["results"].as_array().unwrap();
    assert_eq!(
        r[0],
        json!({"id": beta, "action": "delete", "success": true, "status": "Deleted"})
    );
    assert_eq!(r[1]["success"], false);
    assert!(
        sb.control()
            .zendesk_organization_by_external_id("beta")
            .is_none()
    );

    // The incremental export serves the written organizations (the deleted one left).
    let (_, export) = get(&sb, "/api/v2/incremental/organizations.json?start_time=0").await;
    let names: Vec<&str> = export["organizations"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o["external_id"].as_str())
        .collect();
    assert_eq!(names, ["acme"]);
    sb.shutdown().await;
}

#[tokio::test]
async fn users_are_found_by_email_and_gain_tags_keeping_their_others() {
    let sb = sandbox(20, false).await;
    let done = job(
        &sb,
        json!([{"name": "Tess Tagged", "email": "tess@example.com", "tags": ["vip"]}]),
    )
    .await;
    let id = done["results"][0]["id"].as_u64().unwrap();
    let (status, found) = get(
        &sb,
        "/api/v2/users/search.json?query=email:TESS@example.com",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(found["count"], 1);
    assert_eq!(found["users"][0]["id"], id);
    let (_, none) = get(
        &sb,
        "/api/v2/users/search.json?query=email:nobody@example.com",
    )
    .await;
    assert_eq!(none["users"], json!([]));
    let resp = client(
        &sb,
        reqwest::Method::PUT,
        &format!("/api/v2/users/{id}/tags.json"),
    )
    .json(&json!({"tags": ["weft_removed"]}))
    .send()
    .await
    .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let user = sb
        .control()
        .zendesk_user_by_email("tess@example.com")
        .unwrap();
    assert_eq!(user["tags"], json!(["vip", "weft_removed"]));
    assert_eq!(user["suspended"], false);
    let resp = client(&sb, reqwest::Method::PUT, "/api/v2/users/1/tags.json")
        .json(&json!({"tags": ["x"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    sb.shutdown().await;
}

/// What Singer's tap-zendesk sends first: a decimal `start_time`, the
/// custom-field lists, and links in the client's `https` form when it comes
/// through a TLS-terminating proxy.
#[tokio::test]
async fn clients_sending_decimal_start_times_and_proxied_hosts_are_served() {
    let sb = sandbox(40, false).await;
    let start = weft_sandbox::process_clock_start() - 400 * 86_400;
    let (status, whole) = get(
        &sb,
        &format!("/api/v2/incremental/tickets/cursor.json?start_time={start}&per_page=5"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{whole}");
    let (status, decimal) = get(
        &sb,
        &format!("/api/v2/incremental/tickets/cursor.json?start_time={start}.0&per_page=5"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{decimal}");
    assert_eq!(
        ids(decimal["tickets"].as_array().unwrap()),
        ids(whole["tickets"].as_array().unwrap())
    );
    assert_eq!(decimal["tickets"].as_array().unwrap().len(), 5);
    let (status, bad) = get(
        &sb,
        "/api/v2/incremental/tickets/cursor.json?start_time=soon",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");

    // The custom fields, every one in one page without `page[size]`.
    for (path, key, keys) in [
        (
            "/api/v2/user_fields.json",
            "user_fields",
            &["plan", "account_manager", "beta_tester"][..],
        ),
        (
            "/api/v2/organization_fields.json",
            "organization_fields",
            &["tier", "renewal_date"][..],
        ),
    ] {
        let (status, body) = get(&sb, path).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let fields: Vec<&str> = body[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["key"].as_str().unwrap())
            .collect();
        assert_eq!(fields, keys);
        assert_eq!(
            (body["next_page"].clone(), body["count"].clone()),
            (Value::Null, json!(keys.len()))
        );
        let anonymous = reqwest::get(format!("{}{path}", sb.base_url(Api::Zendesk)))
            .await
            .unwrap();
        assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    }

    let proxied: Value = client(
        &sb,
        reqwest::Method::GET,
        &format!("/api/v2/incremental/tickets/cursor.json?start_time={start}&per_page=5"),
    )
    .header("Host", "acme.zendesk.com")
    .header("X-Forwarded-Proto", "https")
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let after = proxied["after_url"].as_str().unwrap();
    assert!(
        after
            .starts_with("https://acme.zendesk.com/api/v2/incremental/tickets/cursor.json?cursor="),
        "{after}"
    );
    sb.shutdown().await;
}

/// Every record of a plain list, following `links.next` from `page[size]`
/// pages (ticket forms: one page whatever is asked); the ids and the number of pages.
async fn list(sb: &Sandbox, name: &str, size: usize) -> (Vec<Value>, usize) {
    let base = sb.base_url(Api::Zendesk);
    let mut path = format!("/api/v2/{name}.json?page%5Bsize%5D={size}");
    let (mut out, mut pages) = (Vec::new(), 0);
    loop {
        let (status, page) = get(sb, &path).await;
        assert_eq!(status, StatusCode::OK, "{name}: {page}");
        out.extend(page[name].as_array().unwrap().iter().cloned());
        pages += 1;
        match page["links"]["next"].as_str() {
            Some(next) => path = next.strip_prefix(&base).unwrap().to_owned(),
            None => break,
        }
    }
    (out, pages)
}

/// The plain lists page by cursor (`page[size]`, `links.next`) as groups
/// do, serve what the control API lists, and agree with the tickets and
/// users: a rating for every ticket generated `solved`, metrics for every
/// live ticket (newest first), an organization membership for every user
/// with an organization, a group membership for every agent and six for the admin.
#[tokio::test]
async fn lists_page_by_cursor_and_agree_with_tickets_and_users() {
    let sb = sandbox(100, false).await;
    let control = sb.control();
    let id_of = |records: &[Value]| -> Vec<u64> {
        records.iter().map(|r| r["id"].as_u64().unwrap()).collect()
    };
    let spec = openapi::load("zendesk/openapi-src.json");
    let mut errors = Vec::new();
    for (name, count, schema) in [
        ("brands", Some(2), "BrandObject"),
        ("ticket_forms", Some(2), "TicketFormObject"),
        ("user_fields", Some(3), "UserFieldObject"),
        ("organization_fields", Some(2), "OrganizationFieldObject"),
        ("macros", Some(4), "MacroObject"),
        ("group_memberships", None, "GroupMembershipObject"),
        (
            "organization_memberships",
            None,
            "OrganizationMembershipObject",
        ),
        ("satisfaction_ratings", None, "SatisfactionRatingObject"),
        ("ticket_metrics", Some(100), "TicketMetricObject"),
    ] {
        let (records, pages) = list(&sb, name, 7).await;
        // Every record has the shape of Zendesk's own description of it.
        for (n, record) in records.iter().enumerate() {
            let at = format!("{name}[{n}]");
            openapi::check(
                &spec,
                openapi::component(&spec, schema),
                record,
                &at,
                &mut errors,
            );
        }
        let want = control.zendesk_list_ids(name).unwrap();
        assert_eq!(id_of(&records), want, "{name}");
        if let Some(n) = count {
            assert_eq!(records.len(), n, "{name}");
        }
        let expected_pages = if name == "ticket_forms" {
            1
        } else {
            records.len().div_ceil(7).max(1)
        };
        assert_eq!(pages, expected_pages, "{name}");
    }
    assert!(errors.is_empty(), "{errors:#?}");
    assert_eq!(control.zendesk_list_ids("tickets"), None);

    let (tickets, _) = export(
        &sb,
        "tickets",
        "/api/v2/incremental/tickets/cursor.json?start_time=0",
    )
    .await;
    let solved: Vec<u64> = tickets
        .iter()
        .filter(|t| t["status"] == "solved")
        .map(|t| t["id"].as_u64().unwrap())
        .collect();
    let (ratings, _) = list(&sb, "satisfaction_ratings", 100).await;
    let rated: Vec<u64> = ratings
        .iter()
        .map(|r| r["ticket_id"].as_u64().unwrap())
        .collect();
    assert!(!solved.is_empty());
    assert_eq!(rated, solved);
    let (metrics, _) = list(&sb, "ticket_metrics", 100).await;
    let measured: Vec<u64> = metrics
        .iter()
        .map(|m| m["ticket_id"].as_u64().unwrap())
        .collect();
    assert_eq!(measured, (1..=100).rev().collect::<Vec<u64>>());
    assert!(metrics.iter().all(|m| m["solved_at"].is_null()
        == (tickets[m["ticket_id"].as_u64().unwrap() as usize - 1]["status"] != "solved")));

    let (users, _) = export(
        &sb,
        "users",
        "/api/v2/incremental/users/cursor.json?start_time=0",
    )
    .await;
    let with_org: Vec<(u64, u64)> = users
        .iter()
        .filter(|u| !u["organization_id"].is_null())
        .map(|u| {
            (
                u["id"].as_u64().unwrap(),
                u["organization_id"].as_u64().unwrap(),
            )
        })
        .collect();
    let (members, _) = list(&sb, "organization_memberships", 100).await;
    let membership: Vec<(u64, u64)> = members
        .iter()
        .map(|m| {
            (
                m["user_id"].as_u64().unwrap(),
                m["organization_id"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(membership, with_org);
    let agents: Vec<(u64, u64)> = users
        .iter()
        .filter(|u| u["role"] == "agent")
        .map(|u| {
            (
                u["id"].as_u64().unwrap(),
                u["default_group_id"].as_u64().unwrap(),
            )
        })
        .collect();
    let (groups, _) = list(&sb, "group_memberships", 100).await;
    let (admin, others): (Vec<&Value>, Vec<&Value>) = groups
        .iter()
        .partition(|m| m["user_id"] == 360_999_999_999u64);
    assert_eq!(admin.len(), 6);
    let in_groups: Vec<(u64, u64)> = others
        .iter()
        .map(|m| {
            (
                m["user_id"].as_u64().unwrap(),
                m["group_id"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(in_groups, agents);

    // A deleted ticket loses its metrics (and its rating).
    control.zendesk_delete_ticket(100).unwrap();
    let (metrics, _) = list(&sb, "ticket_metrics", 100).await;
    assert_eq!(metrics.len(), 99);
    assert_eq!(metrics[0]["ticket_id"], 99);
    // Unauthenticated: 401.
    let anonymous = reqwest::get(format!("{}/api/v2/brands.json", sb.base_url(Api::Zendesk)))
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let (status, _) = get(&sb, "/api/v2/macros.json?page%5Bsize%5D=101").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
