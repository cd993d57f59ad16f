//! End-to-end tests of the Salesforce simulator over loopback HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashSet;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use serde_json::{Value, json};
use weft_sandbox::{
    Api, DEFAULT_SALESFORCE_CLIENT_ID, DEFAULT_SALESFORCE_CLIENT_SECRET,
    DEFAULT_SALESFORCE_REFRESH_TOKEN, DEFAULT_SALESFORCE_USERNAME, Sandbox, SandboxConfig,
};

const V: &str = "v59.0";

async fn sandbox(size: usize) -> Sandbox {
    Sandbox::start(SandboxConfig {
        seed: 11,
        size,
        rate_limits: false,
        clock_start: Some(weft_sandbox::process_clock_start()),
        ..SandboxConfig::default()
    })
    .await
    .unwrap()
}

async fn token_request(sb: &Sandbox, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let resp = reqwest::Client::new()
        .post(format!(
            "{}/services/oauth2/token",
            sb.base_url(Api::Salesforce)
        ))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap())
}

async fn login(sb: &Sandbox) -> String {
    let (status, body) = token_request(
        sb,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", DEFAULT_SALESFORCE_CLIENT_ID),
            ("client_secret", DEFAULT_SALESFORCE_CLIENT_SECRET),
            ("refresh_token", DEFAULT_SALESFORCE_REFRESH_TOKEN),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

struct Client {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Client {
    async fn new(sb: &Sandbox) -> Self {
        Self {
            base: sb.base_url(Api::Salesforce),
            token: login(sb).await,
            http: reqwest::Client::new(),
        }
    }

    async fn get_raw(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap()
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let resp = self.get_raw(path).await;
        let status = resp.status();
        (status, resp.json().await.unwrap())
    }

    async fn query(&self, endpoint: &str, soql: &str) -> (StatusCode, Value) {
        let resp = self
            .http
            .get(format!("{}/services/data/{V}/{endpoint}", self.base))
            .query(&[("q", soql)])
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap())
    }

    /// Runs a query and follows `nextRecordsUrl` to the end.
    async fn query_all_pages(&self, endpoint: &str, soql: &str) -> (Vec<Value>, usize) {
        let (status, mut page) = self.query(endpoint, soql).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let mut records = Vec::new();
        let mut pages = 1;
        loop {
            records.extend(page["records"].as_array().unwrap().iter().cloned());
            if page["done"] == json!(true) {
                assert!(page.get("nextRecordsUrl").is_none());
                break;
            }
            let next = page["nextRecordsUrl"].as_str().unwrap().to_owned();
            assert!(
                next.starts_with(&format!("/services/data/{V}/query/01g")),
                "{next}"
            );
            let (status, body) = self.get(&next).await;
            assert_eq!(status, StatusCode::OK);
            page = body;
            pages += 1;
        }
        (records, pages)
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Value) -> (StatusCode, Value) {
        let resp = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap())
    }
}

fn jwt(claims: &Value) -> String {
    let head = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256"}"#);
    let body = URL_SAFE_NO_PAD.encode(claims.to_string());
    let sig = URL_SAFE_NO_PAD.encode([7u8; 256]);
    format!("{head}.{body}.{sig}")
}

#[tokio::test]
async fn token_flows() {
    let sb = sandbox(10).await;
    let base = sb.base_url(Api::Salesforce);
    let (status, body) = token_request(
        &sb,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", DEFAULT_SALESFORCE_CLIENT_ID),
            ("client_secret", DEFAULT_SALESFORCE_CLIENT_SECRET),
            ("refresh_token", DEFAULT_SALESFORCE_REFRESH_TOKEN),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let keys: HashSet<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        HashSet::from([
            "access_token",
            "instance_url",
            "id",
            "token_type",
            "issued_at",
            "signature"
        ])
    );
    assert_eq!(body["instance_url"], json!(base));
    assert_eq!(body["token_type"], "Bearer");
    assert!(
        body["id"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{base}/id/00D"))
    );
    assert!(body["issued_at"].as_str().unwrap().parse::<i64>().unwrap() > 1_700_000_000_000);

    let (status, body) = token_request(
        &sb,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", DEFAULT_SALESFORCE_CLIENT_ID),
            ("client_secret", DEFAULT_SALESFORCE_CLIENT_SECRET),
            ("refresh_token", "wrong"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({"error": "invalid_grant", "error_description": "expired access/refresh token"})
    );

    let (status, body) = token_request(
        &sb,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", DEFAULT_SALESFORCE_CLIENT_ID),
            ("client_secret", DEFAULT_SALESFORCE_CLIENT_SECRET),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["access_token"].as_str().unwrap().starts_with("00D"));

    let now = sb.control().now();
    let good = json!({"iss": DEFAULT_SALESFORCE_CLIENT_ID, "sub": DEFAULT_SALESFORCE_USERNAME,
        "aud": "https://login.salesforce.com", "exp": now + 300});
    let grant = "urn:ietf:params:oauth:grant-type:jwt-bearer";
    let (status, body) =
        token_request(&sb, &[("grant_type", grant), ("assertion", &jwt(&good))]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let jwt_token = body["access_token"].as_str().unwrap().to_owned();
    let cases = [
        (json!({"exp": now - 10}), "expired authorization code"),
        (json!({"aud": "https://example.com"}), "audience is invalid"),
        (
            json!({"sub": "someone@else.example.com"}),
            "user hasn't approved this consumer",
        ),
        (json!({"iss": "other"}), "client identifier invalid"),
    ];
    for (patch, description) in cases {
        let mut claims = good.clone();
        for (k, v) in patch.as_object().unwrap() {
            claims[k] = v.clone();
        }
        let (status, body) =
            token_request(&sb, &[("grant_type", grant), ("assertion", &jwt(&claims))]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error_description"], description, "{patch}");
    }
    let (status, body) =
        token_request(&sb, &[("grant_type", grant), ("assertion", "not.a-jwt")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");

    // The JWT-issued token works; no token or a bad one does not.
    let http = reqwest::Client::new();
    let url = format!("{base}/services/data/{V}/sobjects");
    let ok = http.get(&url).bearer_auth(&jwt_token).send().await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    for auth in [None, Some("bogus")] {
        let mut req = http.get(&url);
        if let Some(t) = auth {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(
            body,
            json!([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}])
        );
    }
    sb.shutdown().await;
}

#[tokio::test]
async fn query_pages_every_contact_exactly_once() {
    let sb = sandbox(2_050).await;
    let c = Client::new(&sb).await;
    let (records, pages) = c
        .query_all_pages(
            "query",
            "SELECT Id, FirstName, LastName, Email, SystemModstamp FROM Contact",
        )
        .await;
    assert_eq!(pages, 2);
    assert_eq!(records.len(), 2_050);
    let ids: HashSet<&str> = records.iter().map(|r| r["Id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 2_050);
    let first = &records[0];
    let id = first["Id"].as_str().unwrap();
    assert_eq!(id.len(), 18);
    assert!(id.starts_with("003"));
    assert_eq!(
        first["attributes"],
        json!({"type": "Contact", "url": format!("/services/data/{V}/sobjects/Contact/{id}")})
    );
    // Fields come in SELECT order, after `attributes`.
    let raw = c
        .get_raw(&format!("/services/data/{V}/query?q=SELECT+Id,FirstName,LastName,Email,SystemModstamp+FROM+Contact+LIMIT+1"))
        .await
        .text()
        .await
        .unwrap();
    let at = |k: &str| raw.find(&format!("\"{k}\":")).unwrap();
    assert!(at("attributes") < at("Id") && at("Id") < at("FirstName"));
    assert!(
        at("FirstName") < at("LastName")
            && at("LastName") < at("Email")
            && at("Email") < at("SystemModstamp")
    );
    // Contacts are people 0..size with the formal first name and the canonical email (case may vary).
    for (i, r) in records.iter().enumerate().take(50) {
        let p = weft_sandbox::people::person(11, i as u64);
        assert_eq!(r["FirstName"], p.first_name);
        assert_eq!(r["LastName"], p.last_name);
        assert_eq!(r["Email"].as_str().unwrap().to_lowercase(), p.email);
    }
    let stamp = first["SystemModstamp"].as_str().unwrap();
    assert!(stamp.ends_with(".000+0000") && stamp.len() == 28, "{stamp}");
    // Totals and LIMIT.
    let (_, page) = c.query("query", "SELECT Id FROM Contact LIMIT 5").await;
    assert_eq!(page["totalSize"], 5);
    assert_eq!(page["done"], true);
    let (_, page) = c.query("query", "SELECT Id FROM Contact").await;
    assert_eq!(page["totalSize"], 2_050);
    assert_eq!(page["records"].as_array().unwrap().len(), 2_000);
    // Determinism: a second sandbox with the same seed and size serves the same bytes.
    let sb2 = sandbox(2_050).await;
    let c2 = Client::new(&sb2).await;
    let path = format!(
        "/services/data/{V}/query?q=SELECT+Id,Name,Email,AccountId,CreatedDate+FROM+Contact+LIMIT+300"
    );
    let a = c.get_raw(&path).await.text().await.unwrap();
    let b = c2.get_raw(&path).await.text().await.unwrap();
    assert_eq!(a, b);
    sb.shutdown().await;
    sb2.shutdown().await;
}

#[tokio::test]
async fn incremental_where_and_query_all_deletions() {
    let sb = sandbox(300).await;
    let c = Client::new(&sb).await;
    let control = sb.control();
    control.advance_clock(60);
    let ids = control.salesforce_ids("Contact").unwrap();
    let (changed, deleted) = (&ids[10], &ids[20]);
    control
        .salesforce_update("Contact", changed, json!({"Title": "Chief Data Officer"}))
        .unwrap();
    control.salesforce_delete("Contact", deleted).unwrap();
    let created = control
        .salesforce_create(
            "Contact",
            json!({"LastName": "Newcomer", "Email": "new@example.com"}),
        )
        .unwrap();
    // Generated history ends before the clock start, so only the changes are after it.
    let epoch = chrono::DateTime::from_timestamp(control.epoch(), 0)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%SZ");
    let (_, page) = c
        .query(
            "query",
            &format!("SELECT Id, Title, IsDeleted FROM Contact WHERE SystemModstamp > {epoch} ORDER BY SystemModstamp ASC"),
        )
        .await;
    let got: Vec<&str> = page["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["Id"].as_str().unwrap())
        .collect();
    assert_eq!(got, [changed.as_str(), created.as_str()]);
    assert_eq!(page["records"][0]["Title"], "Chief Data Officer");
    let (_, page) = c
        .query(
            "queryAll",
            &format!("SELECT Id, IsDeleted FROM Contact WHERE SystemModstamp >= {epoch} AND IsDeleted = true"),
        )
        .await;
    assert_eq!(page["totalSize"], 1);
    assert_eq!(page["records"][0]["Id"], json!(deleted));
    assert_eq!(page["records"][0]["IsDeleted"], true);
    let (all, _) = c
        .query_all_pages("queryAll", "SELECT Id, IsDeleted FROM Contact")
        .await;
    let (live, _) = c
        .query_all_pages("query", "SELECT Id, IsDeleted FROM Contact")
        .await;
    assert_eq!(all.len(), 301);
    assert_eq!(live.len(), 300);
    // COUNT() answers with totalSize only; queryAll counts deleted rows too.
    let since = format!("SELECT COUNT() FROM Contact WHERE SystemModstamp >= {epoch}");
    let (status, body) = c.query("query", &since).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"totalSize": 2, "done": true, "records": []}));
    let (status, body) = c.query("queryAll", &since).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"totalSize": 3, "done": true, "records": []}));
    let (_, body) = c.query("queryAll", "SELECT COUNT() FROM Contact").await;
    assert_eq!(body["totalSize"], 301);
    let (_, body) = c
        .query("query", "SELECT COUNT() FROM Contact LIMIT 7")
        .await;
    assert_eq!(body["totalSize"], 7);
    let (status, body) = c
        .query("query", "SELECT COUNT() FROM Contact ORDER BY Id")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body[0]["errorCode"], "MALFORMED_QUERY");
    assert!(
        live.iter()
            .all(|r| r["Id"] != json!(deleted) && r["IsDeleted"] == false)
    );
    // Unknown fields and objects.
    let (status, body) = c.query("query", "SELECT Id, Foo FROM Contact").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body[0]["errorCode"], "INVALID_FIELD");
    assert!(
        body[0]["message"]
            .as_str()
            .unwrap()
            .contains("No such column 'Foo' on entity 'Contact'")
    );
    let (status, body) = c.query("query", "SELECT Id FROM Widget__c").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body[0]["errorCode"], "INVALID_TYPE");
    sb.shutdown().await;
}

#[tokio::test]
async fn describe_lists_typed_fields() {
    let sb = sandbox(20).await;
    let c = Client::new(&sb).await;
    let (status, d) = c
        .get(&format!("/services/data/{V}/sobjects/Contact/describe"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(d["name"], "Contact");
    assert_eq!(d["keyPrefix"], "003");
    let field = |name: &str| {
        d["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == name)
            .cloned()
            .unwrap()
    };
    for (name, ty) in [
        ("Id", "id"),
        ("IsDeleted", "boolean"),
        ("Email", "email"),
        ("Phone", "phone"),
        ("AccountId", "reference"),
        ("LeadSource", "picklist"),
        ("Birthdate", "date"),
        ("SystemModstamp", "datetime"),
        ("MailingStreet", "textarea"),
        ("Webinar_Source__c", "string"),
        ("External_Id__c", "string"),
    ] {
        assert_eq!(field(name)["type"], ty, "{name}");
    }
    assert_eq!(field("Webinar_Source__c")["custom"], true);
    assert_eq!(field("External_Id__c")["externalId"], true);
    assert_eq!(field("Id")["updateable"], false);
    assert_eq!(field("LastName")["nillable"], false);
    assert_eq!(field("AccountId")["referenceTo"], json!(["Account"]));
    for obj in [
        "Account",
        "Lead",
        "Opportunity",
        "Campaign",
        "CampaignMember",
        "User",
    ] {
        let (status, d) = c
            .get(&format!("/services/data/{V}/sobjects/{obj}/describe"))
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(d["name"], obj);
    }
    let (_, g) = c.get(&format!("/services/data/{V}/sobjects")).await;
    let names: Vec<&str> = g["sobjects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "Account",
            "Contact",
            "Lead",
            "Opportunity",
            "Campaign",
            "CampaignMember",
            "User"
        ]
    );
    let versions: Value = reqwest::get(format!("{}/services/data/", c.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        versions
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["version"] == "59.0" && v["url"] == "/services/data/v59.0")
    );
    sb.shutdown().await;
}

fn parse_csv(text: &str) -> Vec<Vec<String>> {
    // Bulk 2.0 quotes every field; fields may contain commas, quotes and newlines.
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(ch) = chars.next() {
        match (quoted, ch) {
            (true, '"') if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    rows
}

#[tokio::test]
async fn bulk_query_pages_csv_with_locators() {
    let sb = sandbox(1_050).await;
    let c = Client::new(&sb).await;
    let (status, body) = c
        .send(
            reqwest::Method::POST,
            &format!("/services/data/{V}/jobs/query"),
            json!({"operation": "query", "query": "SELECT COUNT() FROM Account"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body[0]["errorCode"], "API_ERROR");
    let (status, job) = c
        .send(
            reqwest::Method::POST,
            &format!("/services/data/{V}/jobs/query"),
            json!({"operation": "query", "query": "SELECT Id, Name, Description FROM Account"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(job["state"], "UploadComplete");
    assert_eq!(job["object"], "Account");
    assert_eq!(job["contentType"], "CSV");
    let id = job["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("750"));
    let mut state = String::new();
    for _ in 0..3 {
        let (_, info) = c.get(&format!("/services/data/{V}/jobs/query/{id}")).await;
        state = info["state"].as_str().unwrap().to_owned();
        if state == "JobComplete" {
            assert_eq!(info["numberRecordsProcessed"], 105);
            break;
        }
    }
    assert_eq!(state, "JobComplete");
    let mut locator = String::new();
    let mut rows = Vec::new();
    let mut pages = 0;
    loop {
        let mut path = format!("/services/data/{V}/jobs/query/{id}/results?maxRecords=40");
        if !locator.is_empty() {
            path.push_str(&format!("&locator={locator}"));
        }
        let resp = c.get_raw(&path).await;
        assert_eq!(resp.headers()["content-type"], "text/csv");
        let n: usize = resp.headers()["sforce-numberofrecords"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        locator = resp.headers()["sforce-locator"]
            .to_str()
            .unwrap()
            .to_owned();
        let parsed = parse_csv(&resp.text().await.unwrap());
        assert_eq!(parsed[0], ["Id", "Name", "Description"]);
        assert_eq!(parsed.len() - 1, n);
        rows.extend(parsed.into_iter().skip(1));
        pages += 1;
        if locator == "null" {
            break;
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(rows.len(), 105);
    let ids: HashSet<&String> = rows.iter().map(|r| &r[0]).collect();
    assert_eq!(ids.len(), 105);
    // Multi-line, quoted descriptions survive the CSV round trip.
    assert!(
        rows.iter()
            .any(|r| r[2].contains("\"quotes\", commas") && r[2].contains('\n'))
    );
    // The CSV rows equal the REST query's.
    let (rest, _) = c
        .query_all_pages("query", "SELECT Id, Name FROM Account")
        .await;
    let rest_ids: Vec<&str> = rest.iter().map(|r| r["Id"].as_str().unwrap()).collect();
    let csv_ids: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(rest_ids, csv_ids);
    sb.shutdown().await;
}

#[tokio::test]
async fn composite_upsert_creates_then_updates_by_external_id() {
    let sb = sandbox(50).await;
    let c = Client::new(&sb).await;
    let path = format!("/services/data/{V}/composite/sobjects/Contact/External_Id__c");
    let body = json!({"allOrNone": false, "records": [
        {"attributes": {"type": "Contact"}, "External_Id__c": "zoom-1", "LastName": "Okafor", "FirstName": "Segun", "Email": "segun@example.com"},
        {"attributes": {"type": "Contact"}, "External_Id__c": "zoom-2", "FirstName": "NoLast"},
        {"attributes": {"type": "Contact"}, "External_Id__c": "zoom-3", "LastName": "Bad", "Email": "not-an-email"},
    ]});
    let (status, res) = c.send(reqwest::Method::PATCH, &path, body).await;
    assert_eq!(status, StatusCode::OK);
    let id = res[0]["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("003"));
    assert_eq!(
        res[0],
        json!({"id": id, "success": true, "errors": [], "created": true})
    );
    assert_eq!(res[1]["success"], false);
    assert_eq!(res[1]["errors"][0]["statusCode"], "REQUIRED_FIELD_MISSING");
    assert_eq!(res[1]["errors"][0]["fields"], json!(["LastName"]));
    assert_eq!(res[2]["errors"][0]["statusCode"], "INVALID_EMAIL_ADDRESS");

    let body = json!({"allOrNone": false, "records": [
        {"attributes": {"type": "Contact"}, "External_Id__c": "ZOOM-1", "Title": "Speaker"},
    ]});
    let (_, res) = c.send(reqwest::Method::PATCH, &path, body).await;
    assert_eq!(
        res,
        json!([{"id": id, "success": true, "errors": [], "created": false}])
    );

    let upserted = sb.control().salesforce_upserted("Contact").unwrap();
    assert_eq!(upserted.len(), 1);
    assert_eq!(upserted[0]["Id"], json!(id));
    assert_eq!(upserted[0]["Title"], "Speaker");
    assert_eq!(upserted[0]["LastName"], "Okafor");
    assert_eq!(upserted[0]["Name"], "Segun Okafor");
    let (_, page) = c
        .query(
            "query",
            "SELECT Id, Title FROM Contact WHERE External_Id__c = 'zoom-1'",
        )
        .await;
    assert_eq!(page["records"][0]["Id"], json!(id));

    // allOrNone rolls everything back when one record fails.
    let body = json!({"allOrNone": true, "records": [
        {"External_Id__c": "zoom-9", "LastName": "Fine"},
        {"External_Id__c": "zoom-10"},
    ]});
    let (_, res) = c.send(reqwest::Method::PATCH, &path, body).await;
    assert_eq!(
        res[0]["errors"][0]["statusCode"],
        "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    );
    assert_eq!(
        sb.control().salesforce_upserted("Contact").unwrap().len(),
        1
    );
    let writes = sb.control().writes(Api::Salesforce);
    assert!(
        writes
            .iter()
            .any(|w| w.method == "PATCH" && w.body.contains("zoom-9"))
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn bulk_ingest_upsert() {
    let sb = sandbox(20).await;
    let c = Client::new(&sb).await;
    let (status, job) = c
        .send(
            reqwest::Method::POST,
            &format!("/services/data/{V}/jobs/ingest"),
            json!({"object": "Contact", "operation": "upsert", "externalIdFieldName": "External_Id__c", "contentType": "CSV", "lineEnding": "LF"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(job["state"], "Open");
    let id = job["id"].as_str().unwrap().to_owned();
    let csv =
        "External_Id__c,LastName,Email\nmc-1,\"Smith, Jr.\",a@example.com\nmc-2,,b@example.com\n";
    let resp = c
        .http
        .put(format!(
            "{}/services/data/{V}/jobs/ingest/{id}/batches",
            c.base
        ))
        .bearer_auth(&c.token)
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let (_, closed) = c
        .send(
            reqwest::Method::PATCH,
            &format!("/services/data/{V}/jobs/ingest/{id}"),
            json!({"state": "UploadComplete"}),
        )
        .await;
    assert_eq!(closed["state"], "UploadComplete");
    let (_, info) = c.get(&format!("/services/data/{V}/jobs/ingest/{id}")).await;
    assert_eq!(info["state"], "JobComplete");
    assert_eq!(info["numberRecordsProcessed"], 2);
    assert_eq!(info["numberRecordsFailed"], 1);
    let ok = c
        .get_raw(&format!(
            "/services/data/{V}/jobs/ingest/{id}/successfulResults/"
        ))
        .await
        .text()
        .await
        .unwrap();
    let ok = parse_csv(&ok);
    assert_eq!(
        ok[0],
        [
            "sf__Id",
            "sf__Created",
            "External_Id__c",
            "LastName",
            "Email"
        ]
    );
    assert_eq!(ok.len(), 2);
    assert_eq!(ok[1][1], "true");
    assert_eq!(ok[1][3], "Smith, Jr.");
    let failed = c
        .get_raw(&format!(
            "/services/data/{V}/jobs/ingest/{id}/failedResults/"
        ))
        .await
        .text()
        .await
        .unwrap();
    let failed = parse_csv(&failed);
    assert_eq!(failed.len(), 2);
    assert!(
        failed[1][1].starts_with("REQUIRED_FIELD_MISSING:"),
        "{:?}",
        failed[1]
    );
    let upserted = sb.control().salesforce_upserted("Contact").unwrap();
    assert_eq!(upserted.len(), 1);
    assert_eq!(upserted[0]["Id"].as_str().unwrap(), ok[1][0]);
    assert_eq!(upserted[0]["External_Id__c"], "mc-1");
    sb.shutdown().await;
}

#[tokio::test]
async fn limit_info_counts_and_allocation_is_enforced() {
    let sb = sandbox(10).await;
    let c = Client::new(&sb).await;
    let usage = |resp: &reqwest::Response| {
        resp.headers()["sforce-limit-info"]
            .to_str()
            .unwrap()
            .to_owned()
    };
    let path = format!("/services/data/{V}/query?q=SELECT+Id+FROM+User");
    let first = c.get_raw(&path).await;
    assert_eq!(usage(&first), "api-usage=1/100000");
    let second = c.get_raw(&path).await;
    assert_eq!(usage(&second), "api-usage=2/100000");
    sb.control().salesforce_set_daily_allocation(3);
    assert_eq!(c.get_raw(&path).await.status(), StatusCode::OK);
    let over = c.get_raw(&path).await;
    assert_eq!(over.status(), StatusCode::FORBIDDEN);
    assert_eq!(usage(&over), "api-usage=4/3");
    let body: Value = over.json().await.unwrap();
    assert_eq!(
        body,
        json!([{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}])
    );
    // Also over the control API.
    let resp = reqwest::Client::new()
        .post(format!("{}/__sandbox/salesforce/limits", c.base))
        .json(&json!({"daily_api_requests": 1000}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(c.get_raw(&path).await.status(), StatusCode::OK);
    assert_eq!(sb.control().salesforce_api_usage(), 5);
    sb.shutdown().await;
}

#[tokio::test]
async fn control_routes_update_delete_create() {
    let sb = sandbox(30).await;
    let c = Client::new(&sb).await;
    let http = reqwest::Client::new();
    let ids: Value = http
        .get(format!("{}/__sandbox/salesforce/Lead/ids", c.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids = ids["ids"].as_array().unwrap();
    assert_eq!(ids.len(), 15);
    let lead = ids[0].as_str().unwrap();
    assert!(lead.starts_with("00Q"));
    let resp = http
        .post(format!(
            "{}/__sandbox/salesforce/Lead/{lead}/update",
            c.base
        ))
        .json(&json!({"Status": "Working - Contacted"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = http
        .post(format!(
            "{}/__sandbox/salesforce/Lead/{lead}/delete",
            c.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = http
        .post(format!(
            "{}/__sandbox/salesforce/Lead/{lead}/delete",
            c.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let (_, page) = c
        .query(
            "queryAll",
            &format!("SELECT Id, Status, IsDeleted FROM Lead WHERE Id = '{lead}'"),
        )
        .await;
    assert_eq!(page["records"][0]["Status"], "Working - Contacted");
    assert_eq!(page["records"][0]["IsDeleted"], true);
    let created: Value = http
        .post(format!("{}/__sandbox/salesforce/Account/create", c.base))
        .json(&json!({"Name": "Weft Inc"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let account = created["id"].as_str().unwrap();
    let (_, rec) = c
        .get(&format!("/services/data/{V}/sobjects/Account/{account}"))
        .await;
    assert_eq!(rec["Name"], "Weft Inc");
    assert_eq!(rec["IsDeleted"], false);
    sb.shutdown().await;
}
