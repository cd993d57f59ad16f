//! The example API (the template connector's): paging, the inclusive
//! `updated_since` filter, renames through the control API, auth and errors.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::{Value, json};
use weft_sandbox::{Api, DEFAULT_EXAMPLE_KEY, Sandbox, SandboxConfig};

async fn get(sb: &Sandbox, query: &str, key: &str) -> (StatusCode, Value) {
    let resp = reqwest::Client::new()
        .get(format!("{}/v1/widgets?{query}", sb.base_url(Api::Example)))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    (resp.status(), resp.json().await.unwrap())
}

/// Every page from `query`, following `next_page_token`.
async fn all(sb: &Sandbox, query: &str) -> (Vec<Value>, usize) {
    let (mut records, mut pages) = (Vec::new(), 0);
    let mut q = query.to_string();
    loop {
        let (status, body) = get(sb, &q, DEFAULT_EXAMPLE_KEY).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        records.extend(body["data"].as_array().unwrap().iter().cloned());
        pages += 1;
        match body["next_page_token"].as_str() {
            Some(t) => q = format!("{query}&page_token={t}"),
            None => return (records, pages),
        }
    }
}

#[tokio::test]
async fn widgets_page_in_cursor_order_and_renames_move_them_to_the_end() {
    let sb = Sandbox::start(SandboxConfig {
        size: 45,
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let control = sb.control();
    let (records, pages) = all(&sb, "limit=10").await;
    assert_eq!(pages, 5);
    let ids: BTreeSet<String> = records
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, control.example_widget_ids().into_iter().collect());
    assert_eq!(ids.len(), 45);
    let at: Vec<i64> = records
        .iter()
        .map(|r| r["updated_at"].as_i64().unwrap())
        .collect();
    assert!(at.windows(2).all(|w| w[0] <= w[1]), "{at:?}");
    assert!(
        at.windows(2).any(|w| w[0] == w[1]),
        "some widgets share a second"
    );
    assert!(at.iter().all(|&t| t <= control.epoch()));

    // `updated_since` is inclusive.
    let boundary = at[30];
    let (since, _) = all(&sb, &format!("limit=7&updated_since={boundary}")).await;
    assert_eq!(since.len(), at.iter().filter(|&&t| t >= boundary).count());

    // A rename moves the widget's updated_at to the sandbox's now.
    control.advance_clock(60);
    let first = records[0]["id"].as_str().unwrap().to_owned();
    control.example_rename_widget(&first, "Renamed").unwrap();
    let (after, _) = all(&sb, &format!("updated_since={}", at[44] + 1)).await;
    assert_eq!(after.len(), 1);
    assert_eq!(after[0]["id"], first.as_str());
    assert_eq!(after[0]["name"], "Renamed");
    assert!(after[0]["updated_at"].as_i64().unwrap() >= control.now() - 1);
    assert!(control.example_rename_widget("wgt_999999", "x").is_err());

    // Wrong key, bad limit, foreign token: the API's error shape.
    let (status, body) = get(&sb, "limit=10", "wrong").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["type"], "unauthorized");
    let (status, body) = get(&sb, "limit=500", DEFAULT_EXAMPLE_KEY).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"]["message"].as_str().unwrap().contains("limit"));
    let (status, _) = get(&sb, "page_token=zz", DEFAULT_EXAMPLE_KEY).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // The control routes over HTTP.
    let ids: Value = reqwest::get(format!(
        "{}/__sandbox/example/widgets",
        sb.base_url(Api::Example)
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(ids["ids"].as_array().unwrap().len(), 45);
    assert_eq!(ids["ids"][0], json!("wgt_000001"));
    sb.shutdown().await;
}
