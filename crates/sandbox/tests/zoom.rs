//! End-to-end tests of the Zoom simulator over loopback HTTP: OAuth, paging
//! with `next_page_token`, registrant writes, per-category rate limits,
//! determinism and response shapes against Zoom's published spec.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "support/openapi.rs"]
mod openapi;

use std::collections::HashSet;

use reqwest::StatusCode;
use serde_json::{Value, json};
use weft_sandbox::{
    Api, DEFAULT_ZOOM_ACCOUNT_ID, DEFAULT_ZOOM_CLIENT_ID, DEFAULT_ZOOM_CLIENT_SECRET, Sandbox,
    SandboxConfig,
};

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

async fn token_response(sb: &Sandbox, account: &str, secret: &str) -> (StatusCode, Value) {
    let resp = reqwest::Client::new()
        .post(format!(
            "{}/oauth/token?grant_type=account_credentials&account_id={account}",
            sb.base_url(Api::Zoom)
        ))
        .basic_auth(DEFAULT_ZOOM_CLIENT_ID, Some(secret))
        .send()
        .await
        .unwrap();
    (resp.status(), resp.json().await.unwrap())
}

async fn token(sb: &Sandbox) -> String {
    let (status, body) =
        token_response(sb, DEFAULT_ZOOM_ACCOUNT_ID, DEFAULT_ZOOM_CLIENT_SECRET).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

async fn get(sb: &Sandbox, token: &str, path_and_query: &str) -> (StatusCode, Value) {
    let resp = reqwest::Client::new()
        .get(format!("{}{path_and_query}", sb.base_url(Api::Zoom)))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (resp.status(), resp.json().await.unwrap())
}

/// Every item of a Zoom list, following `next_page_token`.
async fn all(sb: &Sandbox, token: &str, path: &str, query: &str, key: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut next = String::new();
    loop {
        let (status, page) = get(
            sb,
            token,
            &format!("{path}?page_size=300&next_page_token={next}{query}"),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let items = page[key].as_array().unwrap();
        assert!(items.len() <= 300);
        out.extend(items.iter().cloned());
        next = page["next_page_token"].as_str().unwrap().to_owned();
        if next.is_empty() {
            assert_eq!(page["total_records"].as_u64().unwrap() as usize, out.len());
            return out;
        }
    }
}

#[tokio::test]
async fn oauth_token_flow_and_bad_credentials() {
    let sb = sandbox(100, false).await;
    let (status, body) =
        token_response(&sb, DEFAULT_ZOOM_ACCOUNT_ID, DEFAULT_ZOOM_CLIENT_SECRET).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 3600);
    assert!(
        body["scope"]
            .as_str()
            .unwrap()
            .contains("webinar:read:admin")
    );
    let token = body["access_token"].as_str().unwrap();

    let (status, body) = token_response(&sb, DEFAULT_ZOOM_ACCOUNT_ID, "wrong").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body,
        json!({"reason": "Invalid client_id or client_secret", "error": "invalid_client"})
    );
    let (status, body) = token_response(&sb, "other", DEFAULT_ZOOM_CLIENT_SECRET).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_request");

    let (status, body) = get(&sb, "not-a-token", "/v2/users").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body,
        json!({"code": 124, "message": "Invalid access token."})
    );
    let (status, body) = get(&sb, token, "/v2/users").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["total_records"], 3);
    assert_eq!(body["users"].as_array().unwrap().len(), 3);
    // The token outlives neither its hour nor the sandbox clock.
    sb.control().advance_clock(3_601);
    let (status, body) = get(&sb, token, "/v2/users").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["message"], "Access token is expired.");
    sb.shutdown().await;
}

#[tokio::test]
async fn registrants_page_through_next_page_token_exactly_once() {
    let sb = sandbox(1_200, false).await;
    let token = token(&sb).await;
    let control = sb.control();
    let webinar = control.zoom_webinar_ids()[0];
    let path = format!("/v2/webinars/{webinar}/registrants");
    let approved = all(&sb, &token, &path, "", "registrants").await;
    assert!(approved.len() >= 1_050, "{}", approved.len());
    assert!(approved.iter().all(|r| r["status"] == "approved"));
    let mut ids = HashSet::new();
    for status in ["approved", "pending", "denied"] {
        for r in all(
            &sb,
            &token,
            &path,
            &format!("&status={status}"),
            "registrants",
        )
        .await
        {
            assert_eq!(r["status"], status);
            assert!(ids.insert(r["id"].as_str().unwrap().to_owned()), "{r}");
        }
    }
    assert_eq!(ids.len(), 1_200);
    assert_eq!(control.zoom_registrant_count(webinar).unwrap(), 1_200);
    let by_control: HashSet<String> = control
        .zoom_registrants(webinar)
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(by_control, ids);

    // Page metadata and the opaque token.
    let (_, first) = get(&sb, &token, &format!("{path}?page_size=300")).await;
    assert_eq!(first["page_size"], 300);
    assert_eq!(first["page_number"], 1);
    assert_eq!(
        first["page_count"].as_u64().unwrap(),
        (approved.len() as u64).div_ceil(300)
    );
    let (status, body) = get(&sb, &token, &format!("{path}?next_page_token=bogus")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], 300);
    // page_size is capped at 300.
    let (_, big) = get(&sb, &token, &format!("{path}?page_size=1000")).await;
    assert_eq!(big["registrants"].as_array().unwrap().len(), 300);

    // The same people register under their nickname, with email variants.
    let emails: HashSet<String> = approved
        .iter()
        .map(|r| r["email"].as_str().unwrap().to_owned())
        .collect();
    assert!(emails.iter().any(|e| e.chars().any(char::is_uppercase)));
    assert!(emails.iter().any(|e| e.starts_with(' ')));
    let p = weft_sandbox::people::person(11, 120);
    let r = control
        .zoom_registrants(webinar)
        .unwrap()
        .into_iter()
        .find(|r| r["email"].as_str().unwrap().trim().to_lowercase() == p.email)
        .unwrap();
    assert_eq!(r["first_name"], p.nickname);
    assert_eq!(r["last_name"], p.last_name);
    sb.shutdown().await;
}

#[tokio::test]
async fn added_registrant_is_listed_and_renamed() {
    let sb = sandbox(100, false).await;
    let token = token(&sb).await;
    let control = sb.control();
    // The third webinar of each host is upcoming: registration is open.
    let webinar = control.zoom_webinar_ids()[2];
    let before = control.zoom_registrant_count(webinar).unwrap();
    let body =
        json!({"email": "new.person@example.org", "first_name": "New", "last_name": "Person"});
    let resp = reqwest::Client::new()
        .post(format!(
            "{}/v2/webinars/{webinar}/registrants",
            sb.base_url(Api::Zoom)
        ))
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let created: Value = resp.json().await.unwrap();
    assert_eq!(created["id"], webinar);
    assert_eq!(created["occurrences"], json!([]));
    let rid = created["registrant_id"].as_str().unwrap().to_owned();
    assert!(created["join_url"].as_str().unwrap().contains(&rid));
    assert_eq!(control.zoom_registrant_count(webinar).unwrap(), before + 1);

    let path = format!("/v2/webinars/{webinar}/registrants");
    let listed = all(&sb, &token, &path, "", "registrants").await;
    let mine: Vec<&Value> = listed.iter().filter(|r| r["id"] == rid.as_str()).collect();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0]["email"], "new.person@example.org");
    assert_eq!(mine[0]["first_name"], "New");

    // Registering the same email again returns the same registration.
    let again = control
        .zoom_add_registrant(
            webinar,
            json!({"email": "New.Person@example.org", "first_name": "N"}),
        )
        .unwrap();
    assert_eq!(again, rid);
    control
        .zoom_rename_registrant(&rid, "Renamed", "Person")
        .unwrap();
    let listed = all(&sb, &token, &path, "", "registrants").await;
    let mine = listed.iter().find(|r| r["id"] == rid.as_str()).unwrap();
    assert_eq!(mine["first_name"], "Renamed");
    assert!(control.zoom_rename_registrant("nope", "a", "b").is_err());

    // Invalid body, past webinar, unknown webinar.
    let client = reqwest::Client::new();
    let post = |id: i64, body: Value| {
        client
            .post(format!(
                "{}/v2/webinars/{id}/registrants",
                sb.base_url(Api::Zoom)
            ))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    let resp = post(webinar, json!({"first_name": "x"})).await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["errors"][0]["field"],
        "email"
    );
    let resp = post(control.zoom_webinar_ids()[0], body.clone())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let resp = post(1, body.clone()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(resp.json::<Value>().await.unwrap()["code"], 3001);

    let writes = control.writes(Api::Zoom);
    assert!(writes.iter().any(|w| w.method == "POST"
        && w.path == path
        && w.body.contains("new.person@example.org")));
    sb.shutdown().await;
}

#[tokio::test]
async fn registrant_statuses_change_by_email_or_id_30_at_a_time() {
    let sb = sandbox(100, false).await;
    let token = token(&sb).await;
    let control = sb.control();
    let webinar = control.zoom_webinar_ids()[2];
    let rid = control
        .zoom_add_registrant(
            webinar,
            json!({"email": "a@example.org", "first_name": "A"}),
        )
        .unwrap();
    control
        .zoom_add_registrant(
            webinar,
            json!({"email": "b@example.org", "first_name": "B"}),
        )
        .unwrap();
    let client = reqwest::Client::new();
    let put = |body: Value| {
        client
            .put(format!(
                "{}/v2/webinars/{webinar}/registrants/status",
                sb.base_url(Api::Zoom)
            ))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    let status = |email: &str| {
        control
            .zoom_registrant_by_email(webinar, email)
            .unwrap()
            .map(|r| r["status"].as_str().unwrap().to_owned())
    };
    assert_eq!(status("A@Example.org").as_deref(), Some("approved"));
    assert_eq!(status("nobody@example.org"), None);
    // Cancel by email (any case) and by id; an unknown registrant is ignored.
    let resp = put(json!({"action": "cancel", "registrants": [
        {"email": " B@EXAMPLE.org"}, {"id": rid}, {"email": "nobody@example.org"}
    ]}))
    .await
    .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(status("a@example.org").as_deref(), Some("denied"));
    assert_eq!(status("b@example.org").as_deref(), Some("denied"));
    let path = format!("/v2/webinars/{webinar}/registrants");
    let denied = all(&sb, &token, &path, "&status=denied", "registrants").await;
    assert_eq!(
        denied
            .iter()
            .filter(|r| r["email"] == "a@example.org" || r["email"] == "b@example.org")
            .count(),
        2
    );
    let approved = all(&sb, &token, &path, "", "registrants").await;
    assert!(!approved.iter().any(|r| r["email"] == "a@example.org"));
    let resp = put(json!({"action": "approve", "registrants": [{"email": "a@example.org"}]}))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(status("a@example.org").as_deref(), Some("approved"));
    assert_eq!(status("b@example.org").as_deref(), Some("denied"));

    // A bad action, more than 30 registrants, an unknown webinar.
    let resp = put(json!({"action": "remove", "registrants": []}))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let many: Vec<Value> = (0..31)
        .map(|i| json!({"email": format!("p{i}@example.org")}))
        .collect();
    let resp = put(json!({"action": "approve", "registrants": many}))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let resp = client
        .put(format!(
            "{}/v2/webinars/1/registrants/status",
            sb.base_url(Api::Zoom)
        ))
        .bearer_auth(&token)
        .json(&json!({"action": "approve", "registrants": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    sb.shutdown().await;
}

#[tokio::test]
async fn users_me_is_the_account_owner() {
    let sb = sandbox(100, false).await;
    let token = token(&sb).await;
    let (status, me) = get(&sb, &token, "/v2/users/me").await;
    assert_eq!(status, StatusCode::OK, "{me}");
    let users = all(&sb, &token, "/v2/users", "", "users").await;
    assert_eq!(me["id"], users[0]["id"]);
    assert_eq!(me["email"], users[0]["email"]);
    let (status, _) = get(&sb, "not-a-token", "/v2/users/me").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    sb.shutdown().await;
}

#[tokio::test]
async fn bursts_get_zoom_429_with_category_headers() {
    let sb = sandbox(100, true).await;
    let token = token(&sb).await;
    let client = reqwest::Client::new();
    let url = format!("{}/v2/users", sb.base_url(Api::Zoom));
    let burst = (0..100).map(|_| client.get(&url).bearer_auth(&token).send());
    let responses = futures::future::join_all(burst).await;
    let mut limited = 0;
    for resp in responses {
        let resp = resp.unwrap();
        if resp.status() == StatusCode::TOO_MANY_REQUESTS {
            limited += 1;
            assert_eq!(resp.headers()["x-ratelimit-category"], "Medium");
            assert_eq!(resp.headers()["x-ratelimit-type"], "QPS");
            assert_eq!(resp.headers()["retry-after"], "1");
            let body: Value = resp.json().await.unwrap();
            assert_eq!(
                body,
                json!({"code": 429, "message": "You have reached the maximum per-second rate limit for this API. Try again later."})
            );
        } else {
            assert_eq!(resp.status(), StatusCode::OK);
        }
    }
    assert!(limited >= 1, "a burst of 100 Medium requests exceeds 20/s");
    assert!(
        limited <= 80,
        "at most 20 per second pass, got {limited} limited"
    );
    sb.control().set_rate_limits(Api::Zoom, false);
    let (status, _) = get(&sb, &token, "/v2/users").await;
    assert_eq!(status, StatusCode::OK);
    sb.shutdown().await;
}

async fn bodies(sb: &Sandbox) -> Vec<String> {
    let token = token(sb).await;
    let ids = sb.control().zoom_webinar_ids();
    let mut out = Vec::new();
    let client = reqwest::Client::new();
    let (_, users) = get(sb, &token, "/v2/users").await;
    let user = users["users"][1]["id"].as_str().unwrap().to_owned();
    for path in [
        "/v2/users?page_size=2".to_owned(),
        format!("/v2/users/{user}/webinars"),
        format!("/v2/users/{user}/meetings"),
        format!("/v2/webinars/{}/registrants?page_size=50", ids[0]),
        format!("/v2/past_webinars/{}/participants", ids[0]),
    ] {
        out.push(
            client
                .get(format!("{}{path}", sb.base_url(Api::Zoom)))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap(),
        );
    }
    out
}

#[tokio::test]
async fn same_seed_and_size_serve_identical_bodies() {
    let a = sandbox(300, false).await;
    let b = sandbox(300, false).await;
    let (x, y) = (bodies(&a).await, bodies(&b).await);
    assert_eq!(x.len(), 5);
    assert_eq!(x, y);
    assert!(x[3].contains("\"registrants\":[{"));
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn responses_match_zoom_spec_schemas() {
    let meetings = openapi::load("zoom/Meetings.json");
    let users_spec = openapi::load("zoom/Users.json");
    let sb = sandbox(200, false).await;
    let token = token(&sb).await;
    let ids = sb.control().zoom_webinar_ids();

    let (_, users) = get(&sb, &token, "/v2/users").await;
    openapi::assert_matches(&users_spec, "/users", "get", "200", &users);
    let user = users["users"][0]["id"].as_str().unwrap().to_owned();
    let (_, me) = get(&sb, &token, "/v2/users/me/webinars").await;
    let (_, webinars) = get(&sb, &token, &format!("/v2/users/{user}/webinars")).await;
    assert_eq!(me, webinars);
    assert_eq!(webinars["webinars"].as_array().unwrap().len(), 3);
    openapi::assert_matches(
        &meetings,
        "/users/{userId}/webinars",
        "get",
        "200",
        &webinars,
    );
    let (_, list) = get(&sb, &token, &format!("/v2/users/{user}/meetings")).await;
    assert_eq!(list["meetings"].as_array().unwrap().len(), 4);
    openapi::assert_matches(&meetings, "/users/{userId}/meetings", "get", "200", &list);

    let (_, regs) = get(&sb, &token, &format!("/v2/webinars/{}/registrants", ids[0])).await;
    assert_eq!(regs["registrants"].as_array().unwrap().len(), 30);
    openapi::assert_matches(
        &meetings,
        "/webinars/{webinarId}/registrants",
        "get",
        "200",
        &regs,
    );

    let (status, parts) = get(
        &sb,
        &token,
        &format!("/v2/past_webinars/{}/participants", ids[0]),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(parts["total_records"].as_u64().unwrap() > 0);
    assert!(parts.get("page_number").is_none());
    openapi::assert_matches(
        &meetings,
        "/past_webinars/{webinarId}/participants",
        "get",
        "200",
        &parts,
    );
    let (status, _) = get(
        &sb,
        &token,
        &format!("/v2/past_webinars/{}/participants", ids[2]),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let created = reqwest::Client::new()
        .post(format!(
            "{}/v2/webinars/{}/registrants",
            sb.base_url(Api::Zoom),
            ids[2]
        ))
        .bearer_auth(&token)
        .json(&json!({"email": "schema@example.org", "first_name": "Schema"}))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    openapi::assert_matches(
        &meetings,
        "/webinars/{webinarId}/registrants",
        "post",
        "201",
        &created,
    );
    sb.shutdown().await;
}
