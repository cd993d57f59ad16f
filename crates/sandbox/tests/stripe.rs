//! End-to-end tests of the Stripe simulator over loopback HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;

use reqwest::StatusCode;
use serde_json::{Value, json};
use weft_sandbox::{Api, Drift, Faults, Sandbox, SandboxConfig};

const KEY: &str = "sk_test_weft_sandbox";

async fn sandbox(size: usize) -> Sandbox {
    Sandbox::start(SandboxConfig {
        seed: 7,
        size,
        rate_limits: false,
        clock_start: Some(weft_sandbox::process_clock_start()),
        ..SandboxConfig::default()
    })
    .await
    .unwrap()
}

async fn get(sb: &Sandbox, path_and_query: &str) -> (StatusCode, Value) {
    let resp = reqwest::Client::new()
        .get(format!("{}{}", sb.base_url(Api::Stripe), path_and_query))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap())
}

async fn get_text(sb: &Sandbox, path_and_query: &str) -> String {
    reqwest::Client::new()
        .get(format!("{}{}", sb.base_url(Api::Stripe), path_and_query))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

fn ids(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Pages through a whole list with `starting_after`, returning every object.
async fn all(sb: &Sandbox, path: &str, query: &str) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut q = format!("{path}?limit=100{query}");
        if let Some(a) = &after {
            q.push_str(&format!("&starting_after={a}"));
        }
        let (status, page) = get(sb, &q).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let data = page["data"].as_array().unwrap().clone();
        after = data.last().map(|o| o["id"].as_str().unwrap().to_owned());
        out.extend(data);
        if !page["has_more"].as_bool().unwrap() {
            return out;
        }
    }
}

#[tokio::test]
async fn pages_through_1050_customers_exactly_once_newest_first() {
    let sb = sandbox(1_050).await;
    let all = all(&sb, "/v1/customers", "").await;
    assert_eq!(all.len(), 1_050);
    let unique: HashSet<&str> = all.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(unique.len(), 1_050);
    for pair in all.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        let key = |c: &Value| {
            (
                c["created"].as_i64().unwrap(),
                c["id"].as_str().unwrap().to_owned(),
            )
        };
        assert!(
            key(a) > key(b),
            "not created desc, id desc: {} then {}",
            a["id"],
            b["id"]
        );
    }
    assert_eq!(all[0]["object"], "customer");
    assert!(
        all.iter()
            .all(|c| c["created"].as_i64().unwrap() < sb.control().now())
    );
    // ending_before walks back towards the newest.
    let (_, page) = get(
        &sb,
        &format!(
            "/v1/customers?limit=3&ending_before={}",
            all[5]["id"].as_str().unwrap()
        ),
    )
    .await;
    assert_eq!(
        ids(&page),
        vec![
            all[2]["id"].as_str().unwrap(),
            all[3]["id"].as_str().unwrap(),
            all[4]["id"].as_str().unwrap()
        ]
    );
    assert_eq!(page["has_more"], true);
    assert_eq!(page["url"], "/v1/customers");
    // Default limit is 10.
    let (_, page) = get(&sb, "/v1/customers").await;
    assert_eq!(page["data"].as_array().unwrap().len(), 10);
    sb.shutdown().await;
}

#[tokio::test]
async fn created_filters_count_like_a_scan() {
    let sb = sandbox(500).await;
    let everything = all(&sb, "/v1/customers", "").await;
    let created: Vec<i64> = everything
        .iter()
        .map(|c| c["created"].as_i64().unwrap())
        .collect();
    let pivot = created[250];
    let count = |f: &dyn Fn(i64) -> bool| created.iter().filter(|&&c| f(c)).count();
    let gte = all(&sb, "/v1/customers", &format!("&created[gte]={pivot}")).await;
    assert_eq!(gte.len(), count(&|c| c >= pivot));
    assert!(gte.iter().all(|c| c["created"].as_i64().unwrap() >= pivot));
    let gt = all(&sb, "/v1/customers", &format!("&created%5Bgt%5D={pivot}")).await;
    assert_eq!(gt.len(), count(&|c| c > pivot));
    let lt = all(&sb, "/v1/customers", &format!("&created[lt]={pivot}")).await;
    assert_eq!(lt.len(), count(&|c| c < pivot));
    assert_eq!(gt.len() + lt.len() + count(&|c| c == pivot), 500);
    let exact = all(&sb, "/v1/customers", &format!("&created={pivot}")).await;
    assert_eq!(exact.len(), count(&|c| c == pivot));
    assert!(!exact.is_empty());
    let both = all(
        &sb,
        "/v1/charges",
        &format!(
            "&created[gte]={}&created[lte]={}",
            created[400], created[100]
        ),
    )
    .await;
    assert!(both.iter().all(|c| {
        let t = c["created"].as_i64().unwrap();
        t >= created[400] && t <= created[100]
    }));
    assert!(!both.is_empty());
    sb.shutdown().await;
}

#[tokio::test]
async fn other_collections_scale_from_size_and_reference_each_other() {
    let sb = sandbox(200).await;
    let counts = [
        ("/v1/charges", 200),
        ("/v1/payment_intents", 200),
        ("/v1/invoices", 200),
        ("/v1/balance_transactions", 200),
        ("/v1/products", 5),
        ("/v1/prices", 10),
        ("/v1/refunds", 10),
    ];
    for (path, n) in counts {
        let objects = all(&sb, path, "").await;
        assert_eq!(objects.len(), n, "{path}");
    }
    // Subscriptions: 100, of which 11 canceled and listed only when asked for.
    assert_eq!(
        all(&sb, "/v1/subscriptions", "&status=all").await.len(),
        100
    );
    assert_eq!(all(&sb, "/v1/subscriptions", "").await.len(), 89);
    let (_, charges) = get(&sb, "/v1/charges?limit=1").await;
    let charge = &charges["data"][0];
    let (status, cust) = get(
        &sb,
        &format!("/v1/customers/{}", charge["customer"].as_str().unwrap()),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(cust["object"], "customer");
    assert!(cust["created"].as_i64().unwrap() <= charge["created"].as_i64().unwrap());
    let (status, txn) = get(
        &sb,
        &format!(
            "/v1/balance_transactions/{}",
            charge["balance_transaction"].as_str().unwrap()
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(txn["source"], charge["id"]);
    let (status, missing) = get(&sb, "/v1/charges/ch_nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(missing["error"]["code"], "resource_missing");
    assert_eq!(missing["error"]["message"], "No such charge: 'ch_nope'");
    let (status, account) = get(&sb, "/v1/account").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(account["object"], "account");
    sb.shutdown().await;
}

#[tokio::test]
async fn events_follow_updates_and_deletes_and_filter_by_type() {
    let sb = sandbox(300).await;
    let control = sb.control();
    let ids = control.stripe_customer_ids();
    assert_eq!(ids.len(), 300);
    control.advance_clock(60);
    control
        .stripe_update_customer(
            &ids[10],
            json!({"email": "new@example.com", "metadata": {"tier": "gold"}}),
        )
        .unwrap();
    control.advance_clock(60);
    control.stripe_delete_customer(&ids[11]).unwrap();
    control.advance_clock(60);
    let created = control.stripe_create_customers(2);
    assert_eq!(created.len(), 2);

    let (_, page) = get(
        &sb,
        "/v1/events?types[]=customer.updated&types[]=customer.deleted",
    )
    .await;
    let events = page["data"].as_array().unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["type"], "customer.deleted");
    assert_eq!(events[0]["data"]["object"]["id"], ids[11].as_str());
    assert_eq!(events[0]["data"]["object"]["deleted"], true);
    assert_eq!(events[1]["type"], "customer.updated");
    assert_eq!(events[1]["data"]["object"]["email"], "new@example.com");
    assert_eq!(events[1]["data"]["object"]["metadata"]["tier"], "gold");
    assert!(events[1]["data"]["previous_attributes"]["email"].is_string());
    assert!((control.now() - 120 - events[1]["created"].as_i64().unwrap()).abs() <= 2);

    let (_, page) = get(&sb, "/v1/events?type=customer.*&limit=100").await;
    let types: Vec<&str> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        &types[..4],
        &[
            "customer.created",
            "customer.created",
            "customer.deleted",
            "customer.updated"
        ]
    );
    assert!(types.iter().all(|t| t.starts_with("customer.")));

    // The customer reflects the update; the deleted one is gone from lists.
    let (_, cust) = get(&sb, &format!("/v1/customers/{}", ids[10])).await;
    assert_eq!(cust["email"], "new@example.com");
    let (_, gone) = get(&sb, &format!("/v1/customers/{}", ids[11])).await;
    assert_eq!(
        gone,
        json!({"id": ids[11], "object": "customer", "deleted": true})
    );
    let listed = all(&sb, "/v1/customers", "").await;
    assert_eq!(listed.len(), 301);
    assert_eq!(listed[0]["id"], created[1].as_str());
    assert!(listed.iter().all(|c| c["id"] != ids[11].as_str()));
    assert!(control.stripe_delete_customer(&ids[11]).is_err());
    sb.shutdown().await;
}

#[tokio::test]
async fn events_only_go_back_30_days() {
    let sb = sandbox(730).await;
    let control = sb.control();
    let customers = all(&sb, "/v1/customers", "").await;
    let recent_since = |since: i64| {
        customers
            .iter()
            .filter(|c| c["created"].as_i64().unwrap() >= since)
            .count()
    };
    let created_events = || all(&sb, "/v1/events", "&types[]=customer.created");
    // Generated creation events exist exactly for the last 30 days of customers.
    let base = recent_since(control.now() - 30 * 86_400);
    assert_eq!(created_events().await.len(), base);

    let old = control.stripe_create_customers(3);
    control.advance_clock(20 * 86_400);
    let young = control.stripe_create_customers(2);
    let events = created_events().await;
    assert_eq!(events.len(), recent_since(control.now() - 30 * 86_400) + 5);
    assert_eq!(events[0]["data"]["object"]["id"], young[1].as_str());
    assert_eq!(events[4]["data"]["object"]["id"], old[0].as_str());
    assert!(
        events
            .iter()
            .all(|e| e["data"]["object"]["object"] == "customer")
    );

    // Eleven days later the first three are 31 days old and no longer listed.
    control.advance_clock(11 * 86_400);
    let window_start = control.now() - 30 * 86_400;
    let later = created_events().await;
    assert_eq!(later.len(), recent_since(window_start) + 2);
    let listed: HashSet<&str> = later
        .iter()
        .map(|e| e["data"]["object"]["id"].as_str().unwrap())
        .collect();
    assert!(young.iter().all(|id| listed.contains(id.as_str())));
    assert!(old.iter().all(|id| !listed.contains(id.as_str())));
    assert!(
        later
            .iter()
            .all(|e| e["created"].as_i64().unwrap() >= window_start)
    );
    let (status, v) = get(
        &sb,
        &format!(
            "/v1/events?starting_after={}",
            events[4]["id"].as_str().unwrap()
        ),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "an aged-out event is no cursor"
    );
    assert_eq!(v["error"]["code"], "resource_missing");

    // Every kind's events page exactly once, newest first, across merged sources.
    control
        .stripe_update_customer(&young[0], json!({"name": "X"}))
        .unwrap();
    let every = all(&sb, "/v1/events", "").await;
    let unique: HashSet<&str> = every.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(unique.len(), every.len());
    assert_eq!(every[0]["type"], "customer.updated");
    for pair in every.windows(2) {
        let key = |e: &Value| {
            (
                e["created"].as_i64().unwrap(),
                e["id"].as_str().unwrap().to_owned(),
            )
        };
        assert!(key(&pair[0]) > key(&pair[1]));
    }
    let (status, one) = get(
        &sb,
        &format!("/v1/events/{}", every[0]["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one, every[0]);
    sb.shutdown().await;
}

#[tokio::test]
async fn same_seed_and_size_give_byte_identical_pages() {
    let a = sandbox(400).await;
    let b = sandbox(400).await;
    for q in [
        "/v1/customers?limit=100",
        "/v1/charges?limit=50",
        "/v1/invoices?limit=20",
        "/v1/subscriptions?limit=20",
        "/v1/events?limit=100",
    ] {
        let (x, y) = (get_text(&a, q).await, get_text(&b, q).await);
        assert_eq!(x, y, "{q}");
        assert!(x.len() > 1_000);
    }
    let c = Sandbox::start(SandboxConfig {
        seed: 8,
        size: 400,
        rate_limits: false,
        clock_start: Some(weft_sandbox::process_clock_start()),
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    assert_ne!(
        get_text(&a, "/v1/customers?limit=5").await,
        get_text(&c, "/v1/customers?limit=5").await
    );
    a.shutdown().await;
    b.shutdown().await;
    c.shutdown().await;
}

#[tokio::test]
async fn customers_are_about_a_kilobyte_with_the_shared_people() {
    let sb = sandbox(50).await;
    let body = get_text(&sb, "/v1/customers?limit=50").await;
    let per = body.len() / 50;
    assert!((700..1_500).contains(&per), "{per} bytes per customer");
    let page: Value = serde_json::from_str(&body).unwrap();
    let c = &page["data"][0];
    let index: u64 = c["metadata"]["person_index"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let person = weft_sandbox::people::person(7, index);
    assert_eq!(c["email"], person.email.as_str());
    assert_eq!(c["name"], person.full_name().as_str());
    sb.shutdown().await;
}

#[tokio::test]
async fn bad_requests_get_stripe_errors() {
    let sb = sandbox(20).await;
    let url = sb.base_url(Api::Stripe);
    let client = reqwest::Client::new();
    let resp = client
        .get(format!("{url}/v1/customers"))
        .bearer_auth("sk_test_wrongwrongwrong1234")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let body = resp.text().await.unwrap();
    assert!(!body.contains("wrongwrongwrong"), "key echoed: {body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert_eq!(
        v["error"]["message"],
        "Invalid API Key provided: sk_test_***************1234"
    );
    let resp = client
        .get(format!("{url}/v1/customers"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    // Basic auth with the key as user works.
    let resp = client
        .get(format!("{url}/v1/customers"))
        .basic_auth(KEY, Some(""))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);

    let (status, v) = get(&sb, "/v1/customers?limit=101").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(v["error"]["param"], "limit");
    assert_eq!(v["error"]["type"], "invalid_request_error");
    let (status, v) = get(&sb, "/v1/customers?starting_after=cus_doesnotexist").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(v["error"]["code"], "resource_missing");
    assert_eq!(v["error"]["param"], "starting_after");
    assert_eq!(
        v["error"]["message"],
        "No such customer: 'cus_doesnotexist'"
    );
    let (status, v) = get(&sb, "/v1/customers?colour=blue").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(v["error"]["message"], "Received unknown parameter: colour");
    let (status, v) = get(&sb, "/v1/widgets").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(v["error"]["type"], "invalid_request_error");
    sb.shutdown().await;
}

#[tokio::test]
async fn documented_rate_limit_answers_429() {
    let sb = Sandbox::start(SandboxConfig {
        size: 10,
        clock_start: Some(weft_sandbox::process_clock_start()),
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let client = reqwest::Client::new();
    let url = format!("{}/v1/customers?limit=1", sb.base_url(Api::Stripe));
    let started = std::time::Instant::now();
    let responses = burst(&client, &url, 80).await;
    let windows = started.elapsed().as_secs() as usize + 2;
    let limited: Vec<_> = responses
        .iter()
        .filter(|(s, _, _)| *s == StatusCode::TOO_MANY_REQUESTS)
        .collect();
    let ok = responses
        .iter()
        .filter(|(s, _, _)| *s == StatusCode::OK)
        .count();
    assert_eq!(ok + limited.len(), 80);
    assert!(ok >= 25, "{ok} succeeded");
    assert!(
        ok <= 25 * windows,
        "{ok} succeeded within {windows} one-second windows"
    );
    assert!(!limited.is_empty());
    let (_, retry_after, body) = limited[0];
    assert_eq!(retry_after.as_deref(), Some("1"));
    assert_eq!(body["error"]["code"], "rate_limit");
    // Switched off, the same burst passes.
    sb.control().set_rate_limits(Api::Stripe, false);
    let responses = burst(&client, &url, 80).await;
    assert!(responses.iter().all(|(s, _, _)| *s == StatusCode::OK));
    sb.shutdown().await;
}

/// Sends `n` concurrent GETs; returns (status, Retry-After, body) of each.
async fn burst(
    client: &reqwest::Client,
    url: &str,
    n: usize,
) -> Vec<(StatusCode, Option<String>, Value)> {
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let req = client.get(url).bearer_auth(KEY);
            tokio::spawn(async move {
                let r = req.send().await.unwrap();
                let status = r.status();
                let ra = r
                    .headers()
                    .get("retry-after")
                    .map(|v| v.to_str().unwrap().to_owned());
                (status, ra, r.json::<Value>().await.unwrap())
            })
        })
        .collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test]
async fn injected_faults() {
    let sb = sandbox(20).await;
    let control = sb.control();
    control.set_faults(
        Api::Stripe,
        Faults {
            error_rate: 1.0,
            ..Faults::default()
        },
    );
    for _ in 0..3 {
        let (status, v) = get(&sb, "/v1/customers").await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(v["error"]["type"], "api_error");
    }
    control.set_faults(
        Api::Stripe,
        Faults {
            rate_limit_rate: 1.0,
            retry_after: weft_sandbox::RetryAfterStyle::Zero,
            ..Faults::default()
        },
    );
    let resp = reqwest::Client::new()
        .get(format!("{}/v1/customers", sb.base_url(Api::Stripe)))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(resp.headers()["retry-after"], "0");
    control.set_faults(
        Api::Stripe,
        Faults {
            bad_auth: true,
            ..Faults::default()
        },
    );
    let (status, _) = get(&sb, "/v1/customers").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    control.set_faults(
        Api::Stripe,
        Faults {
            drift: Some(Drift::AddedField),
            ..Faults::default()
        },
    );
    let (_, page) = get(&sb, "/v1/customers?limit=2").await;
    assert_eq!(page["data"][0]["weft_drift_field"], "x");
    control.set_faults(
        Api::Stripe,
        Faults {
            drift: Some(Drift::ChangedType),
            ..Faults::default()
        },
    );
    let (_, page) = get(&sb, "/v1/customers?limit=2").await;
    assert!(page["data"][0]["balance"].is_string());
    for fault in [
        Faults {
            reset_rate: 1.0,
            ..Faults::default()
        },
        Faults {
            truncate_rate: 1.0,
            ..Faults::default()
        },
    ] {
        control.set_faults(Api::Stripe, fault);
        let result = async {
            reqwest::Client::new()
                .get(format!(
                    "{}/v1/customers?limit=100",
                    sb.base_url(Api::Stripe)
                ))
                .bearer_auth(KEY)
                .send()
                .await?
                .text()
                .await
        }
        .await;
        assert!(result.is_err(), "body should fail to arrive whole");
    }
    // Faults can be set over HTTP too.
    let client = reqwest::Client::new();
    let resp = client
        .post(format!(
            "{}/__sandbox/faults?api=stripe",
            sb.base_url(Api::Stripe)
        ))
        .json(&json!({"error_rate": 0.0}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let (status, _) = get(&sb, "/v1/customers").await;
    assert_eq!(status, StatusCode::OK);
    sb.shutdown().await;
}

#[tokio::test]
async fn updates_honour_idempotency_keys_and_are_recorded() {
    let sb = sandbox(20).await;
    let control = sb.control();
    let id = control.stripe_customer_ids()[3].clone();
    let url = format!("{}/v1/customers/{id}", sb.base_url(Api::Stripe));
    let client = reqwest::Client::new();
    let send = |body: &'static str, key: &'static str| {
        client
            .post(&url)
            .bearer_auth(KEY)
            .header("Idempotency-Key", key)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    let first = send("name=Barry+Smith&metadata[crm_id]=42", "k1")
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["name"], "Barry Smith");
    assert_eq!(first["metadata"]["crm_id"], "42");
    let again = send("name=Barry+Smith&metadata[crm_id]=42", "k1")
        .await
        .unwrap();
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.json::<Value>().await.unwrap(), first);
    let clash = send("name=Other", "k1").await.unwrap();
    assert_eq!(clash.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        clash.json::<Value>().await.unwrap()["error"]["type"],
        "idempotency_error"
    );
    // One update event despite the replay.
    let (_, events) = get(&sb, "/v1/events?type=customer.updated").await;
    assert_eq!(events["data"].as_array().unwrap().len(), 1);
    let writes = control.writes(Api::Stripe);
    assert_eq!(writes.len(), 3);
    assert_eq!(writes[0].method, "POST");
    assert_eq!(writes[0].path, format!("/v1/customers/{id}"));
    assert_eq!(writes[0].body, "name=Barry+Smith&metadata[crm_id]=42");
    assert!((control.now() - writes[0].at).abs() <= 2);
    let reqs = control.requests(Api::Stripe);
    assert_eq!(control.request_count(Api::Stripe), 4);
    assert_eq!(reqs[3].path, "/v1/events");
    assert_eq!(reqs[3].query, "type=customer.updated");
    // Create through the API: only what was sent is set.
    let resp = client
        .post(format!("{}/v1/customers", sb.base_url(Api::Stripe)))
        .bearer_auth(KEY)
        .form(&[("email", "fresh@example.com")])
        .send()
        .await
        .unwrap();
    let created: Value = resp.json().await.unwrap();
    assert_eq!(created["email"], "fresh@example.com");
    assert_eq!(created["name"], Value::Null);
    assert!((control.now() - created["created"].as_i64().unwrap()).abs() <= 2);
    sb.shutdown().await;
}

#[tokio::test]
async fn http_control_api() {
    let sb = sandbox(20).await;
    let base = sb.base_url(Api::Stripe);
    let client = reqwest::Client::new();
    let start = sb.control().now();
    let v: Value = client
        .post(format!("{base}/__sandbox/clock/advance"))
        .json(&json!({"secs": 90}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!((v["now"].as_i64().unwrap() - start - 90).abs() <= 2);
    let id = sb.control().stripe_customer_ids()[0].clone();
    let resp = client
        .post(format!("{base}/__sandbox/stripe/customers/{id}/update"))
        .json(&json!({"name": "Control Name"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let (_, cust) = get(&sb, &format!("/v1/customers/{id}")).await;
    assert_eq!(cust["name"], "Control Name");
    let resp = client
        .post(format!("{base}/__sandbox/stripe/customers/{id}/delete"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = client
        .post(format!("{base}/__sandbox/stripe/customers/cus_nope/delete"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let v: Value = client
        .get(format!("{base}/__sandbox/requests?api=stripe"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["count"], 1);
    assert_eq!(v["requests"][0]["path"], format!("/v1/customers/{id}"));
    let v: Value = client
        .get(format!("{base}/__sandbox/writes?api=stripe"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v, json!([]));
    let resp = client
        .get(format!("{base}/__sandbox/writes?api=nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    sb.shutdown().await;
}

#[tokio::test]
async fn subscriptions_leave_canceled_ones_out_unless_asked_like_stripe() {
    let sb = sandbox(200).await;
    let control = sb.control();
    let every = control.stripe_subscription_ids();
    let canceled = control.stripe_canceled_subscription_ids();
    // 100 subscriptions; one in eight of those older than 61 days is canceled.
    assert_eq!((every.len(), canceled.len()), (100, 11));
    let listed = |objects: &[Value]| -> HashSet<String> {
        objects
            .iter()
            .map(|o| o["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let default = all(&sb, "/v1/subscriptions", "").await;
    let with_all = all(&sb, "/v1/subscriptions", "&status=all").await;
    let only_canceled = all(&sb, "/v1/subscriptions", "&status=canceled").await;
    let ended = all(&sb, "/v1/subscriptions", "&status=ended").await;
    let active = all(&sb, "/v1/subscriptions", "&status=active").await;
    let past_due = all(&sb, "/v1/subscriptions", "&status=past_due").await;
    let canceled_set: HashSet<String> = canceled.iter().cloned().collect();
    let every_set: HashSet<String> = every.iter().cloned().collect();
    assert_eq!(listed(&with_all), every_set);
    assert_eq!(with_all.len(), 100);
    assert_eq!(listed(&only_canceled), canceled_set);
    assert_eq!(listed(&ended), canceled_set);
    assert_eq!(default.len(), 89);
    assert_eq!(
        listed(&default),
        every_set.difference(&canceled_set).cloned().collect()
    );
    assert_eq!(active.len() + past_due.len(), 89);
    assert!(active.iter().all(|s| s["status"] == "active"));
    assert!(past_due.iter().all(|s| s["status"] == "past_due"));
    for s in &only_canceled {
        assert_eq!(s["status"], "canceled");
        let at = s["canceled_at"].as_i64().unwrap();
        assert_eq!(s["ended_at"].as_i64(), Some(at));
        assert!(at > s["created"].as_i64().unwrap() && at < control.now() - 30 * 86_400);
        assert_eq!(
            s["cancellation_details"]["reason"],
            "cancellation_requested"
        );
    }
    assert!(default.iter().all(|s| s["canceled_at"].is_null()));
    // Pages of the filtered list hold `limit` objects and continue after the last.
    let (_, page) = get(&sb, "/v1/subscriptions?status=canceled&limit=5").await;
    assert_eq!(
        (ids(&page).len(), &page["has_more"]),
        (5, &Value::Bool(true))
    );
    let (status, bad) = get(&sb, "/v1/subscriptions?status=gone").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(bad["error"]["param"], "status");

    // Canceling one now: gone from the default list, in `status=canceled`,
    // retrieved canceled, and a `customer.subscription.deleted` event.
    control.advance_clock(60);
    let live = listed(&default).into_iter().min().unwrap();
    control.stripe_cancel_subscription(&live).unwrap();
    assert!(
        control.stripe_cancel_subscription(&live).is_err(),
        "only once"
    );
    assert!(control.stripe_cancel_subscription("sub_nope").is_err());
    assert_eq!(control.stripe_canceled_subscription_ids().len(), 12);
    assert_eq!(all(&sb, "/v1/subscriptions", "").await.len(), 88);
    assert_eq!(
        all(&sb, "/v1/subscriptions", "&status=all").await.len(),
        100
    );
    let (_, one) = get(&sb, &format!("/v1/subscriptions/{live}")).await;
    assert_eq!(one["status"], "canceled");
    assert_eq!(one["canceled_at"].as_i64(), Some(control.now()));
    let (_, events) = get(&sb, "/v1/events?type=customer.subscription.deleted").await;
    let events = events["data"].as_array().unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["data"]["object"], one);
    // Over the control API too.
    let next = listed(&all(&sb, "/v1/subscriptions", "").await)
        .into_iter()
        .min()
        .unwrap();
    let resp = reqwest::Client::new()
        .post(format!(
            "{}/__sandbox/stripe/subscriptions/{next}/cancel",
            sb.base_url(Api::Stripe)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(all(&sb, "/v1/subscriptions", "").await.len(), 87);
    sb.shutdown().await;
}

#[tokio::test]
async fn coupons_payouts_disputes_tax_rates_and_promotion_codes_list_page_filter_and_retrieve() {
    let sb = sandbox(500).await;
    let control = sb.control();
    for (collection, object, ids_of, n) in [
        ("coupons", "coupon", control.stripe_coupon_ids(), 5),
        ("payouts", "payout", control.stripe_payout_ids(), 20),
        ("disputes", "dispute", control.stripe_dispute_ids(), 10),
        ("tax_rates", "tax_rate", control.stripe_tax_rate_ids(), 4),
        (
            "promotion_codes",
            "promotion_code",
            control.stripe_promotion_code_ids(),
            10,
        ),
    ] {
        let path = format!("/v1/{collection}");
        // Newest first, every id of the control API once, over pages of 3.
        let mut listed: Vec<String> = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut q = format!("{path}?limit=3");
            if let Some(a) = &after {
                q.push_str(&format!("&starting_after={a}"));
            }
            let (status, page) = get(&sb, &q).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            assert_eq!(page["url"], path.as_str());
            let got = ids(&page);
            assert!(got.len() <= 3);
            after = got.last().cloned();
            listed.extend(got);
            if !page["has_more"].as_bool().unwrap() {
                break;
            }
        }
        let mut oldest_first = ids_of.clone();
        oldest_first.reverse();
        assert_eq!(listed, oldest_first, "{collection}");
        assert_eq!(listed.len(), n, "{collection}");

        let every = all(&sb, &path, "").await;
        let created: Vec<i64> = every
            .iter()
            .map(|o| o["created"].as_i64().unwrap())
            .collect();
        assert!(created.windows(2).all(|w| w[0] >= w[1]), "{collection}");
        let pivot = created[n / 2];
        let gte = all(&sb, &path, &format!("&created[gte]={pivot}")).await;
        assert_eq!(
            gte.len(),
            created.iter().filter(|&&c| c >= pivot).count(),
            "{collection}"
        );
        assert!(gte.iter().all(|o| o["created"].as_i64().unwrap() >= pivot));

        let (status, one) = get(&sb, &format!("{path}/{}", ids_of[0])).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(one["object"], object);
        assert_eq!(one["id"], ids_of[0].as_str());
        let (status, missing) = get(&sb, &format!("{path}/nope")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(
            missing["error"]["message"],
            format!("No such {object}: 'nope'")
        );
    }
    // A deleted coupon is no longer listed or retrievable; `coupon.deleted`
    // carries it.
    let coupons = control.stripe_coupon_ids();
    control.stripe_delete_coupon(&coupons[1]).unwrap();
    assert!(control.stripe_delete_coupon(&coupons[1]).is_err());
    assert!(control.stripe_delete_coupon("co_nope").is_err());
    let live = control.stripe_coupon_ids();
    assert_eq!(live.len(), 4);
    assert!(!live.contains(&coupons[1]));
    let mut listed: Vec<String> = all(&sb, "/v1/coupons", "")
        .await
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect();
    listed.reverse();
    assert_eq!(listed, live);
    let (status, _) = get(&sb, &format!("/v1/coupons/{}", coupons[1])).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, events) = get(&sb, "/v1/events?type=coupon.deleted").await;
    let events = events["data"].as_array().unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["type"], "coupon.deleted");
    assert_eq!(events[0]["data"]["object"]["id"], coupons[1].as_str());
    assert_eq!(events[0]["data"]["object"]["object"], "coupon");

    // Each dispute is of a charge that says it is disputed.
    let dispute = get(&sb, "/v1/disputes?limit=1").await.1["data"][0].clone();
    let (_, charge) = get(
        &sb,
        &format!("/v1/charges/{}", dispute["charge"].as_str().unwrap()),
    )
    .await;
    assert_eq!(charge["disputed"], true);
    assert_eq!(charge["amount"], dispute["amount"]);
    sb.shutdown().await;
}
