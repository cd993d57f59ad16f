//! End-to-end tests of the Intercom simulator over loopback HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "support/openapi.rs"]
mod openapi;

use std::collections::HashSet;

use reqwest::StatusCode;
use serde_json::{Value, json};
use weft_sandbox::{Api, DEFAULT_INTERCOM_TOKEN, Sandbox, SandboxConfig};

async fn sandbox(size: usize, config: SandboxConfig) -> Sandbox {
    Sandbox::start(SandboxConfig {
        seed: 5,
        size,
        ..config
    })
    .await
    .unwrap()
}

fn no_limits() -> SandboxConfig {
    SandboxConfig {
        rate_limits: false,
        clock_start: Some(weft_sandbox::process_clock_start()),
        ..SandboxConfig::default()
    }
}

fn req(sb: &Sandbox, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
    reqwest::Client::new()
        .request(method, format!("{}{}", sb.base_url(Api::Intercom), path))
        .bearer_auth(DEFAULT_INTERCOM_TOKEN)
        .header("Intercom-Version", "2.16")
}

async fn send(r: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let resp = r.send().await.unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap())
}

async fn get(sb: &Sandbox, path: &str) -> (StatusCode, Value) {
    send(req(sb, reqwest::Method::GET, path)).await
}

async fn post(sb: &Sandbox, path: &str, body: Value) -> (StatusCode, Value) {
    send(req(sb, reqwest::Method::POST, path).json(&body)).await
}

fn ids(list: &[Value]) -> Vec<String> {
    list.iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn all_contacts(sb: &Sandbox) -> Vec<Value> {
    let mut out = Vec::new();
    let mut path = "/contacts?per_page=150".to_owned();
    let mut page_no = 1;
    loop {
        let (status, page) = get(sb, &path).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert_eq!(page["type"], "list");
        assert_eq!(page["pages"]["page"], page_no);
        out.extend(page["data"].as_array().unwrap().iter().cloned());
        match page["pages"]["next"]["starting_after"].as_str() {
            Some(after) => path = format!("/contacts?per_page=150&starting_after={after}"),
            None => return out,
        }
        page_no += 1;
    }
}

#[tokio::test]
async fn lists_every_contact_once_with_starting_after() {
    let sb = sandbox(1_100, no_limits()).await;
    let contacts = all_contacts(&sb).await;
    assert_eq!(contacts.len(), 1_100);
    let unique: HashSet<String> = ids(&contacts).into_iter().collect();
    assert_eq!(unique.len(), 1_100);
    let (_, first) = get(&sb, "/contacts?per_page=150").await;
    assert_eq!(first["total_count"], 1_100);
    assert_eq!(first["pages"]["total_pages"], 8);
    assert_eq!(first["pages"]["per_page"], 150);
    let (status, _) = get(&sb, "/contacts?per_page=151").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // Conversations page the same way.
    let mut seen = 0;
    let mut path = "/conversations?per_page=100".to_owned();
    loop {
        let (_, page) = get(&sb, &path).await;
        assert_eq!(page["type"], "conversation.list");
        seen += page["conversations"].as_array().unwrap().len();
        match page["pages"]["next"]["starting_after"].as_str() {
            Some(a) => path = format!("/conversations?per_page=100&starting_after={a}"),
            None => break,
        }
    }
    assert_eq!(seen, 550);
    sb.shutdown().await;
}

#[tokio::test]
async fn search_updated_after_returns_exactly_the_changed_contacts() {
    let sb = sandbox(400, no_limits()).await;
    let c = sb.control();
    let t = c.now();
    let contacts = all_contacts(&sb).await;
    let changed: Vec<String> = [3usize, 150, 399]
        .iter()
        .map(|&i| contacts[i]["id"].as_str().unwrap().to_owned())
        .collect();
    c.advance_clock(10);
    for id in &changed {
        c.intercom_update_contact(id, json!({"name": "Changed"}))
            .unwrap();
    }
    let created = c.intercom_create_contacts(1);
    let query = json!({"field": "updated_at", "operator": ">", "value": t});
    let (status, page) = post(&sb, "/contacts/search", json!({"query": query, "pagination": {"per_page": 2}, "sort": {"field": "updated_at", "order": "ascending"}})).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["total_count"], 4);
    assert_eq!(page["pages"]["total_pages"], 2);
    let mut found = ids(page["data"].as_array().unwrap());
    let after = page["pages"]["next"]["starting_after"].as_str().unwrap();
    let (_, page2) = post(
        &sb,
        "/contacts/search",
        json!({"query": query, "pagination": {"per_page": 2, "starting_after": after}}),
    )
    .await;
    assert_eq!(page2["pages"]["page"], 2);
    assert!(page2["pages"]["next"].is_null());
    found.extend(ids(page2["data"].as_array().unwrap()));
    let mut expected = changed.clone();
    expected.extend(created);
    assert_eq!(found, expected);
    assert!(
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["updated_at"].as_i64().unwrap() > t)
    );

    // AND with a created_at range, and an email lookup in another case.
    let early = contacts[10]["created_at"].as_i64().unwrap();
    let (_, both) = post(
        &sb,
        "/contacts/search",
        json!({"query": {"operator": "AND", "value": [
            query, {"field": "created_at", "operator": "<", "value": t},
        ]}}),
    )
    .await;
    assert_eq!(ids(both["data"].as_array().unwrap()), changed);
    let email = contacts[10]["email"]
        .as_str()
        .unwrap()
        .trim()
        .to_lowercase();
    let (_, by_email) = post(
        &sb,
        "/contacts/search",
        json!({"query": {"field": "email", "operator": "=", "value": email.to_uppercase()}}),
    )
    .await;
    assert_eq!(
        ids(by_email["data"].as_array().unwrap()),
        vec![contacts[10]["id"].as_str().unwrap()]
    );
    assert_eq!(by_email["data"][0]["created_at"], early);
    let (status, err) = post(
        &sb,
        "/contacts/search",
        json!({"query": {"operator": "OR", "value": [query]}}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(err["type"], "error.list");
    sb.shutdown().await;
}

#[tokio::test]
async fn one_company_scroll_per_app() {
    let sb = sandbox(300, no_limits()).await;
    let (status, first) = get(&sb, "/companies/scroll").await;
    assert_eq!(status, StatusCode::OK);
    let param = first["scroll_param"].as_str().unwrap().to_owned();
    let (status, err) = get(&sb, "/companies/scroll").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(err["errors"][0]["code"], "scroll_exists");
    let mut seen: Vec<String> = ids(first["data"].as_array().unwrap());
    loop {
        let (status, page) = get(&sb, &format!("/companies/scroll?scroll_param={param}")).await;
        assert_eq!(status, StatusCode::OK);
        let data = page["data"].as_array().unwrap();
        if data.is_empty() {
            break;
        }
        seen.extend(ids(data));
    }
    assert_eq!(seen.len(), 30);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 30);
    let (status, _) = get(&sb, &format!("/companies/scroll?scroll_param={param}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "an ended scroll expires");
    let (status, _) = get(&sb, "/companies/scroll").await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a new scroll opens once the last ended"
    );
    // Page-based list.
    let (_, list) = get(&sb, "/companies?page=2&per_page=20").await;
    assert_eq!(list["total_count"], 30);
    assert_eq!(list["pages"]["total_pages"], 2);
    assert_eq!(list["data"].as_array().unwrap().len(), 10);
    let (_, admins) = get(&sb, "/admins").await;
    assert_eq!(admins["type"], "admin.list");
    assert_eq!(admins["admins"].as_array().unwrap().len(), 4);
    let (_, tags) = get(&sb, "/tags").await;
    assert_eq!(tags["data"][0]["name"], "vip");
    sb.shutdown().await;
}

#[tokio::test]
async fn create_conflicts_on_duplicate_email_and_put_updates() {
    let sb = sandbox(50, no_limits()).await;
    let contacts = all_contacts(&sb).await;
    let existing = contacts[4]["email"].as_str().unwrap().trim().to_uppercase();
    let (status, err) = post(&sb, "/contacts", json!({"email": existing})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(err["errors"][0]["code"], "conflict");
    assert!(
        err["errors"][0]["message"]
            .as_str()
            .unwrap()
            .ends_with(contacts[4]["id"].as_str().unwrap())
    );

    let (status, created) = post(
        &sb,
        "/contacts",
        json!({"email": "Fresh.Person@Example.com", "name": "Fresh Person"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    assert_eq!(created["role"], "user");
    assert_eq!(created["email_domain"], "example.com");
    assert_eq!(created["phone"], Value::Null);
    let id = created["id"].as_str().unwrap().to_owned();
    let (status, _) = post(
        &sb,
        "/contacts",
        json!({"email": "fresh.person@example.com"}),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);

    sb.control().advance_clock(30);
    let (status, updated) = send(
        req(&sb, reqwest::Method::PUT, &format!("/contacts/{id}"))
            .json(&json!({"name": "Fresh P.", "phone": "+15550001"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(updated["name"], "Fresh P.");
    assert_eq!(updated["email"], "Fresh.Person@Example.com");
    assert!(updated["updated_at"].as_i64().unwrap() > created["updated_at"].as_i64().unwrap());
    let (_, fetched) = get(&sb, &format!("/contacts/{id}")).await;
    assert_eq!(fetched, updated);
    let (status, _) = send(
        req(
            &sb,
            reqwest::Method::PUT,
            "/contacts/000000000000000000000000",
        )
        .json(&json!({"name": "x"})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = send(
        req(&sb, reqwest::Method::PUT, &format!("/contacts/{id}"))
            .json(&json!({"email": existing})),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);

    let written = sb.control().intercom_written_contacts();
    assert_eq!(written, vec![updated]);
    assert_eq!(sb.control().writes(Api::Intercom).len(), 6);
    let (_, list) = get(&sb, "/contacts?per_page=1").await;
    assert_eq!(list["total_count"], 51);
    sb.shutdown().await;
}

#[tokio::test]
async fn rate_limit_headers_count_down_to_429() {
    let sb = sandbox(
        20,
        SandboxConfig {
            intercom_requests_per_min: 60,
            clock_start: Some(weft_sandbox::process_clock_start()),
            ..SandboxConfig::default()
        },
    )
    .await;
    let mut remaining = Vec::new();
    for _ in 0..10 {
        let resp = req(&sb, reqwest::Method::GET, "/tags")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["x-ratelimit-limit"], "10");
        assert_eq!(resp.headers()["intercom-version"], "2.16");
        let reset: i64 = resp.headers()["x-ratelimit-reset"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(reset > sb.control().now() - 1 && reset <= sb.control().now() + 10);
        remaining.push(
            resp.headers()["x-ratelimit-remaining"]
                .to_str()
                .unwrap()
                .parse::<u32>()
                .unwrap(),
        );
    }
    assert_eq!(remaining, (0..10).rev().collect::<Vec<u32>>());
    let resp = req(&sb, reqwest::Method::GET, "/tags")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(resp.headers()["x-ratelimit-remaining"], "0");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["type"], "error.list");
    assert_eq!(body["errors"][0]["code"], "rate_limit_exceeded");
    sb.shutdown().await;
}

#[tokio::test]
async fn bad_token_gets_intercom_401() {
    let sb = sandbox(20, no_limits()).await;
    let resp = reqwest::Client::new()
        .get(format!("{}/contacts", sb.base_url(Api::Intercom)))
        .bearer_auth("wrong")
        .header("Intercom-Version", "2.11")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(resp.headers()["intercom-version"], "2.11");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["type"], "error.list");
    assert!(body["request_id"].is_string());
    assert_eq!(
        body["errors"],
        json!([{"code": "unauthorized", "message": "Access Token Invalid"}])
    );
    sb.shutdown().await;
}

fn spec() -> Value {
    openapi::load("intercom/2.16/api.intercom.io.json")
}

fn resolve<'a>(spec: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => &spec["components"]["schemas"][r.trim_start_matches("#/components/schemas/")],
        None => schema,
    }
}

/// Names, required properties, nullability and JSON types, through `$ref`s.
fn check(spec: &Value, schema: &Value, value: &Value, path: &str, errors: &mut Vec<String>) {
    let schema = resolve(spec, schema);
    if value.is_null() {
        if schema["nullable"] != Value::Bool(true) {
            errors.push(format!("{path}: null but not nullable"));
        }
        return;
    }
    match schema["type"].as_str() {
        Some("object") => {
            let obj = value.as_object().unwrap();
            if let Some(props) = schema["properties"].as_object() {
                for (k, v) in obj {
                    match props.get(k) {
                        Some(p) => check(spec, p, v, &format!("{path}.{k}"), errors),
                        None => errors.push(format!("{path}.{k}: not a documented property")),
                    }
                }
            }
            for r in schema["required"].as_array().into_iter().flatten() {
                if !obj.contains_key(r.as_str().unwrap()) {
                    errors.push(format!("{path}.{r}: required but missing"));
                }
            }
        }
        Some("array") => {
            for (i, item) in value.as_array().unwrap().iter().enumerate() {
                check(
                    spec,
                    &schema["items"],
                    item,
                    &format!("{path}[{i}]"),
                    errors,
                );
            }
        }
        Some("string") if !value.is_string() => errors.push(format!("{path}: expected string")),
        Some("integer") if !value.is_i64() => errors.push(format!("{path}: expected integer")),
        Some("boolean") if !value.is_boolean() => errors.push(format!("{path}: expected boolean")),
        _ => {}
    }
}

#[tokio::test]
async fn contacts_companies_and_conversations_match_the_openapi_schemas() {
    let spec = spec();
    let sb = sandbox(200, no_limits()).await;
    let (_, created) = post(
        &sb,
        "/contacts",
        json!({"email": "schema.check@example.com"}),
    )
    .await;
    let mut contacts = all_contacts(&sb).await;
    assert_eq!(contacts.last().unwrap(), &created);
    contacts.push(created);
    let (_, companies) = get(&sb, "/companies?per_page=60").await;
    let (_, conversations) = get(&sb, "/conversations?per_page=50").await;
    let (_, list) = get(&sb, "/contacts?per_page=5").await;
    let mut errors = Vec::new();
    for c in &contacts {
        check(
            &spec,
            openapi::component(&spec, "contact"),
            c,
            "contact",
            &mut errors,
        );
    }
    check(
        &spec,
        openapi::component(&spec, "contact_list"),
        &list,
        "contact_list",
        &mut errors,
    );
    check(
        &spec,
        openapi::component(&spec, "company_list"),
        &companies,
        "company_list",
        &mut errors,
    );
    for c in conversations["conversations"].as_array().unwrap() {
        for k in [
            "type",
            "id",
            "title",
            "created_at",
            "updated_at",
            "state",
            "priority",
            "contacts",
        ] {
            assert!(c.get(k).is_some(), "{k}");
        }
        let props = openapi::component(&spec, "conversation_list_item")["properties"]
            .as_object()
            .unwrap();
        errors.extend(
            c.as_object()
                .unwrap()
                .keys()
                .filter(|k| !props.contains_key(*k))
                .map(|k| format!("conversation.{k}")),
        );
    }
    errors.sort();
    errors.dedup();
    assert!(errors.is_empty(), "{errors:#?}");
    sb.shutdown().await;
}
