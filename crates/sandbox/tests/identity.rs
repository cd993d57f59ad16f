//! The account and identity endpoints real clients call first (Stripe's
//! account, Zendesk's `users/me`, Intercom's `/me`, Mailchimp's API root and
//! ping, Salesforce's versions and limits), and Zendesk's OAuth bearer
//! tokens, over loopback HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "support/openapi.rs"]
mod openapi;

use reqwest::{RequestBuilder, StatusCode};
use serde_json::Value;
use weft_sandbox::{
    Api, DEFAULT_INTERCOM_TOKEN, DEFAULT_MAILCHIMP_KEY, DEFAULT_SALESFORCE_CLIENT_ID,
    DEFAULT_SALESFORCE_CLIENT_SECRET, DEFAULT_SALESFORCE_REFRESH_TOKEN, DEFAULT_STRIPE_KEY,
    DEFAULT_ZENDESK_EMAIL, DEFAULT_ZENDESK_OAUTH_TOKEN, DEFAULT_ZENDESK_TOKEN, Faults, Sandbox,
    SandboxConfig,
};

async fn sandbox(config: SandboxConfig) -> Sandbox {
    Sandbox::start(SandboxConfig {
        rate_limits: false,
        clock_start: Some(weft_sandbox::process_clock_start()),
        ..config
    })
    .await
    .unwrap()
}

fn get(sb: &Sandbox, api: Api, path: &str) -> RequestBuilder {
    reqwest::Client::new().get(format!("{}{path}", sb.base_url(api)))
}

async fn json(req: RequestBuilder) -> (StatusCode, Value) {
    let resp = req.send().await.unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap())
}

#[tokio::test]
async fn stripe_account_and_accounts_by_id_answer_the_keys_account() {
    let sb = sandbox(SandboxConfig {
        seed: 5,
        size: 10,
        ..SandboxConfig::default()
    })
    .await;
    let id = sb.control().stripe_account_id().unwrap();
    let (status, account) =
        json(get(&sb, Api::Stripe, "/v1/account").bearer_auth(DEFAULT_STRIPE_KEY)).await;
    assert_eq!(status, StatusCode::OK, "{account}");
    assert_eq!(account["id"], id.as_str());
    assert!(
        id.starts_with("acct_") && id.len() == "acct_".len() + 14,
        "{id}"
    );
    assert_eq!(account["object"], "account");
    assert_eq!(account["email"], "owner@weft-sandbox.example.com");
    assert_eq!(account["country"], "US");
    assert_eq!(account["default_currency"], "usd");
    assert_eq!(account["type"], "standard");
    assert_eq!(account["business_profile"]["name"], "Weft Sandbox");
    assert_eq!(
        account["settings"]["dashboard"]["display_name"],
        "Weft Sandbox"
    );
    assert_eq!(
        account["settings"]["payouts"]["schedule"]["interval"],
        "daily"
    );
    let spec = openapi::load("stripe/spec3.json");
    openapi::assert_matches(&spec, "/v1/account", "get", "200", &account);

    // The same account by id, basic auth as well as bearer.
    let path = format!("/v1/accounts/{id}");
    let (status, by_id) =
        json(get(&sb, Api::Stripe, &path).basic_auth(DEFAULT_STRIPE_KEY, Some(""))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(by_id, account);
    openapi::assert_matches(&spec, "/v1/accounts/{account}", "get", "200", &by_id);

    // Another account is missing, in Stripe's error shape.
    let (status, missing) = json(
        get(&sb, Api::Stripe, "/v1/accounts/acct_1Other000000000").bearer_auth(DEFAULT_STRIPE_KEY),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(missing["error"]["type"], "invalid_request_error");
    assert_eq!(missing["error"]["code"], "resource_missing");
    assert_eq!(missing["error"]["param"], "account");
    assert_eq!(
        missing["error"]["message"],
        "No such account: 'acct_1Other000000000'"
    );

    // Without a key, or with a wrong one: 401.
    for req in [
        get(&sb, Api::Stripe, "/v1/account"),
        get(&sb, Api::Stripe, &path),
        get(&sb, Api::Stripe, &path).bearer_auth("sk_test_wrong"),
    ] {
        let (status, body) = json(req).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["error"]["type"], "invalid_request_error");
    }

    // Stable from the seed: the same id for the same seed, another for another.
    let same = sandbox(SandboxConfig {
        seed: 5,
        size: 300,
        ..SandboxConfig::default()
    })
    .await;
    let other = sandbox(SandboxConfig {
        seed: 6,
        size: 10,
        ..SandboxConfig::default()
    })
    .await;
    assert_eq!(same.control().stripe_account_id(), Some(id.clone()));
    assert_ne!(other.control().stripe_account_id(), Some(id));
    sb.shutdown().await;
    same.shutdown().await;
    other.shutdown().await;
}

fn zendesk_basic(req: RequestBuilder) -> RequestBuilder {
    req.basic_auth(
        format!("{DEFAULT_ZENDESK_EMAIL}/token"),
        Some(DEFAULT_ZENDESK_TOKEN),
    )
}

#[tokio::test]
async fn zendesk_users_me_is_the_agent_of_either_credential() {
    let sb = sandbox(SandboxConfig {
        size: 20,
        ..SandboxConfig::default()
    })
    .await;
    let spec = openapi::load("zendesk/openapi-src.json");
    let mut seen = Vec::new();
    for path in ["/api/v2/users/me", "/api/v2/users/me.json"] {
        for req in [
            zendesk_basic(get(&sb, Api::Zendesk, path)),
            get(&sb, Api::Zendesk, path).bearer_auth(DEFAULT_ZENDESK_OAUTH_TOKEN),
        ] {
            let (status, body) = json(req).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            let me = &body["user"];
            assert_eq!(me["id"], 360_999_999_999_u64);
            assert_eq!(me["email"], DEFAULT_ZENDESK_EMAIL);
            assert_eq!(me["role"], "admin");
            assert_eq!(me["active"], true);
            assert_eq!(me["name"], "Weft Sandbox Admin");
            let url = me["url"].as_str().unwrap();
            assert!(url.ends_with("/api/v2/users/360999999999.json"), "{url}");
            // Zendesk's description marks no field nullable: field names only.
            let documented = openapi::component(&spec, "UserForAdmin")["properties"]
                .as_object()
                .unwrap();
            let undocumented: Vec<&String> = me
                .as_object()
                .unwrap()
                .keys()
                .filter(|k| !documented.contains_key(*k) && *k != "authenticity_token")
                .collect();
            assert!(undocumented.is_empty(), "{undocumented:?}");
            assert!(openapi::response_schema(&spec, "/api/v2/users/me", "get", "200").is_object());
            seen.push(body);
        }
    }
    assert!(seen.iter().all(|b| *b == seen[0]));
    let (status, body) = json(get(&sb, Api::Zendesk, "/api/v2/users/me.json")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "Couldn't authenticate you");
    sb.shutdown().await;
}

/// Every user of the incremental export, read with `auth`.
async fn export_users(sb: &Sandbox, auth: impl Fn(RequestBuilder) -> RequestBuilder) -> Vec<Value> {
    let mut out = Vec::new();
    let mut path = "/api/v2/incremental/users/cursor.json?start_time=0&per_page=40".to_owned();
    loop {
        let (status, page) = json(auth(get(sb, Api::Zendesk, &path))).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        out.extend(page["users"].as_array().unwrap().iter().cloned());
        if page["end_of_stream"] == true {
            return out;
        }
        let next = page["after_url"].as_str().unwrap();
        path = format!("/api/{}", next.split_once("/api/").unwrap().1);
    }
}

#[tokio::test]
async fn zendesk_bearer_token_reads_what_basic_auth_reads_and_nothing_else_passes() {
    let sb = sandbox(SandboxConfig {
        size: 100,
        ..SandboxConfig::default()
    })
    .await;
    let basic = export_users(&sb, zendesk_basic).await;
    let bearer = export_users(&sb, |r| r.bearer_auth(DEFAULT_ZENDESK_OAUTH_TOKEN)).await;
    assert_eq!(basic.len(), 100);
    assert_eq!(bearer, basic);

    let refused = [
        get(&sb, Api::Zendesk, "/api/v2/groups.json").bearer_auth("zd_wrong_oauth_token"),
        // The API token is not an OAuth token, nor the reverse.
        get(&sb, Api::Zendesk, "/api/v2/groups.json").bearer_auth(DEFAULT_ZENDESK_TOKEN),
        get(&sb, Api::Zendesk, "/api/v2/groups.json").basic_auth(
            format!("{DEFAULT_ZENDESK_EMAIL}/token"),
            Some(DEFAULT_ZENDESK_OAUTH_TOKEN),
        ),
        get(&sb, Api::Zendesk, "/api/v2/users/me.json").bearer_auth(""),
    ];
    for req in refused {
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            resp.text().await.unwrap(),
            r#"{"error":"Couldn't authenticate you"}"#
        );
    }

    // The `bad_auth` fault refuses both credentials.
    sb.control().set_faults(
        Api::Zendesk,
        Faults {
            bad_auth: true,
            ..Faults::default()
        },
    );
    for req in [
        zendesk_basic(get(&sb, Api::Zendesk, "/api/v2/groups.json")),
        get(&sb, Api::Zendesk, "/api/v2/groups.json").bearer_auth(DEFAULT_ZENDESK_OAUTH_TOKEN),
    ] {
        let (status, body) = json(req).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["error"], "Couldn't authenticate you");
    }
    sb.shutdown().await;

    // A configured OAuth token replaces the default one.
    let custom = sandbox(SandboxConfig {
        size: 5,
        zendesk_oauth_token: "zd_custom_oauth".to_owned(),
        ..SandboxConfig::default()
    })
    .await;
    let groups = |token: &str| {
        get(&custom, Api::Zendesk, "/api/v2/groups.json").bearer_auth(token.to_owned())
    };
    assert_eq!(
        groups("zd_custom_oauth").send().await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        groups(DEFAULT_ZENDESK_OAUTH_TOKEN)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    custom.shutdown().await;
}

#[tokio::test]
async fn intercom_me_is_the_tokens_admin_with_its_app() {
    let sb = sandbox(SandboxConfig {
        size: 10,
        ..SandboxConfig::default()
    })
    .await;
    let (status, me) =
        json(get(&sb, Api::Intercom, "/me").bearer_auth(DEFAULT_INTERCOM_TOKEN)).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["type"], "admin");
    assert_eq!(me["id"], "1");
    assert_eq!(me["email"], "ada@weft-sandbox.example.com");
    assert_eq!(me["name"], "Ada Support");
    assert_eq!(me["email_verified"], true);
    assert_eq!(me["app"]["type"], "app");
    assert_eq!(me["app"]["id_code"], "wsbx1234");
    assert_eq!(me["app"]["name"], "Weft Sandbox");
    assert!(me["app"]["created_at"].as_i64().unwrap() < sb.control().epoch());
    // The same admin as the first of `/admins`.
    let (_, admins) =
        json(get(&sb, Api::Intercom, "/admins").bearer_auth(DEFAULT_INTERCOM_TOKEN)).await;
    assert_eq!(admins["admins"][0]["id"], me["id"]);
    assert_eq!(admins["admins"][0]["email"], me["email"]);
    let spec = openapi::load("intercom/2.16/api.intercom.io.json");
    openapi::assert_matches(&spec, "/me", "get", "200", &me);
    for req in [
        get(&sb, Api::Intercom, "/me"),
        get(&sb, Api::Intercom, "/me").bearer_auth("ic_wrong"),
    ] {
        let (status, body) = json(req).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["type"], "error.list");
        assert_eq!(body["errors"][0]["code"], "unauthorized");
    }
    sb.shutdown().await;
}

#[tokio::test]
async fn mailchimp_root_is_the_account_and_ping_is_chimpy() {
    let sb = sandbox(SandboxConfig {
        seed: 9,
        mailchimp_members: 30,
        ..SandboxConfig::default()
    })
    .await;
    let auth = |req: RequestBuilder| req.basic_auth("anystring", Some(DEFAULT_MAILCHIMP_KEY));
    let (status, root) = json(auth(get(&sb, Api::Mailchimp, "/3.0/"))).await;
    assert_eq!(status, StatusCode::OK, "{root}");
    let account_id = root["account_id"].as_str().unwrap();
    assert_eq!(account_id.len(), 25);
    assert!(
        account_id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{account_id}"
    );
    assert_eq!(root["login_id"].as_str().unwrap().len(), 8);
    assert_eq!(root["account_name"], "Weft Sandbox");
    assert_eq!(root["email"], "owner@weft-sandbox.example.com");
    assert_eq!(root["role"], "owner");
    // `total_subscribers` agrees with the audience's subscribed members.
    let (_, lists) = json(auth(get(&sb, Api::Mailchimp, "/3.0/lists"))).await;
    let subscribed = &lists["lists"][0]["stats"]["member_count"];
    assert!(subscribed.as_u64().unwrap() > 20, "{subscribed}");
    assert_eq!(&root["total_subscribers"], subscribed);
    let spec = openapi::load("mailchimp/mailchimp.com.json");
    openapi::assert_matches(&spec, "/", "get", "200", &root);
    // Without the trailing slash: the same; same seed, same ids.
    let (_, again) = json(auth(get(&sb, Api::Mailchimp, "/3.0"))).await;
    assert_eq!(again["account_id"], root["account_id"]);
    assert_eq!(again["login_id"], root["login_id"]);

    let (status, ping) = json(auth(get(&sb, Api::Mailchimp, "/3.0/ping"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        ping,
        serde_json::json!({"health_status": "Everything's Chimpy!"})
    );
    openapi::assert_matches(&spec, "/ping", "get", "200", &ping);

    for path in ["/3.0/", "/3.0/ping"] {
        let (status, body) = json(get(&sb, Api::Mailchimp, path)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(body["title"], "API Key Missing");
        let (status, body) =
            json(get(&sb, Api::Mailchimp, path).basic_auth("x", Some("bad-us6"))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(body["title"], "API Key Invalid");
    }
    sb.shutdown().await;
}

async fn salesforce_token(sb: &Sandbox) -> String {
    let resp = reqwest::Client::new()
        .post(format!(
            "{}/services/oauth2/token",
            sb.base_url(Api::Salesforce)
        ))
        .form(&[
            ("grant_type", "refresh_token"),
            ("client_id", DEFAULT_SALESFORCE_CLIENT_ID),
            ("client_secret", DEFAULT_SALESFORCE_CLIENT_SECRET),
            ("refresh_token", DEFAULT_SALESFORCE_REFRESH_TOKEN),
        ])
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn salesforce_versions_and_limits_count_the_daily_quota() {
    let sb = sandbox(SandboxConfig {
        size: 10,
        salesforce_daily_api_requests: 5_000,
        ..SandboxConfig::default()
    })
    .await;
    // Versions need no session, as on Salesforce; weft's 59.0 is listed.
    let (status, versions) = json(get(&sb, Api::Salesforce, "/services/data/")).await;
    assert_eq!(status, StatusCode::OK);
    let versions = versions.as_array().unwrap();
    assert_eq!(versions.len(), 6);
    assert!(versions.iter().all(|v| {
        let n = v["version"].as_str().unwrap();
        v["url"] == format!("/services/data/v{n}").as_str() && v["label"].is_string()
    }));
    assert!(versions.iter().any(|v| v["version"] == "59.0"));

    let token = sb.control();
    let session = salesforce_token(&sb).await;
    let query = "/services/data/v59.0/query?q=SELECT+Id+FROM+User";
    for _ in 0..3 {
        let resp = get(&sb, Api::Salesforce, query)
            .bearer_auth(&session)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
    }
    let limits = |session: &str| {
        get(&sb, Api::Salesforce, "/services/data/v59.0/limits").bearer_auth(session.to_owned())
    };
    let (status, body) = json(limits(&session)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Three queries and this request count against the allocation.
    assert_eq!(token.salesforce_api_usage(), 4);
    assert_eq!(body["DailyApiRequests"]["Max"], 5_000);
    assert_eq!(body["DailyApiRequests"]["Remaining"], 4_996);
    // A changed allocation shows at once.
    token.salesforce_set_daily_allocation(10);
    let (_, body) = json(limits(&session)).await;
    assert_eq!(body["DailyApiRequests"]["Max"], 10);
    assert_eq!(body["DailyApiRequests"]["Remaining"], 5);

    // Limits need a session.
    let (status, body) = json(get(&sb, Api::Salesforce, "/services/data/v59.0/limits")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body[0]["errorCode"], "INVALID_SESSION_ID");
    let (status, _) = json(limits("00Dwrong!session")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    sb.shutdown().await;
}
