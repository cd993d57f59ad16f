//! Request shapes, paging, bulk jobs and errors against a wiremock Salesforce.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use serde_json::{Value, json};
use weft_arrow::{FieldType, field_type_of};
use weft_conformance::read::{StreamRead, read_stream};
use weft_core::{DELETED_AT, SecretRef, Source, StreamState};
use weft_http::BudgetRegistry;
use weft_salesforce::{SalesforceAuth, SalesforceConfig, SalesforceError, SalesforceSource};
use wiremock::matchers::{body_json, body_string_contains, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const V: &str = "/services/data/v59.0";

fn secret_file(value: &str) -> SecretRef {
    weft_conformance::secret_file(value).unwrap()
}

fn config(server: &MockServer) -> SalesforceConfig {
    let mut c = SalesforceConfig::new(
        server.uri(),
        SalesforceAuth::RefreshToken {
            client_id: "app-id".into(),
            client_secret: secret_file("CLIENT_SECRET_SENTINEL"),
            refresh_token: secret_file("REFRESH_SENTINEL"),
        },
    );
    c.objects = vec!["Contact".into()];
    c.settle_secs = 0;
    c.bulk_poll_ms = 1;
    c
}

async fn mount_token(server: &MockServer, token: &str) {
    Mock::given(method("POST"))
        .and(path("/services/oauth2/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": token, "instance_url": server.uri(), "token_type": "Bearer"
        })))
        .mount(server)
        .await;
}

fn describe() -> Value {
    json!({"name": "Contact", "label": "Contact", "fields": [
        {"name": "Id", "type": "id", "nillable": false, "label": "Contact ID"},
        {"name": "Email", "type": "email", "label": "Email"},
        {"name": "Score__c", "type": "double", "label": "Score"},
        {"name": "MailingAddress", "type": "address", "label": "Mailing Address"},
        {"name": "IsDeleted", "type": "boolean", "label": "Deleted"},
        {"name": "SystemModstamp", "type": "datetime", "label": "System Modstamp"}
    ]})
}

async fn mount_describe(server: &MockServer) {
    Mock::given(method("GET"))
        .and(path(format!("{V}/sobjects/Contact/describe")))
        .respond_with(ResponseTemplate::new(200).set_body_json(describe()))
        .mount(server)
        .await;
}

async fn mount_count(server: &MockServer, soql: &str, n: u64) {
    Mock::given(method("GET"))
        .and(path(format!("{V}/queryAll")))
        .and(query_param("q", soql))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"totalSize": n, "done": true, "records": []})),
        )
        .mount(server)
        .await;
}

fn contact(id: &str, stamp: &str, deleted: bool) -> Value {
    json!({
        "attributes": {"type": "Contact", "url": format!("{V}/sobjects/Contact/{id}")},
        "Id": id, "Email": format!("{id}@example.com"), "Score__c": 1.5,
        "IsDeleted": deleted, "SystemModstamp": stamp
    })
}

async fn read(src: &SalesforceSource, state: Option<Value>) -> StreamRead {
    // One request at a time: the mocks answer exactly the pages asked.
    let r = read_stream(src, "Contact")
        .state(state.map(StreamState))
        .max_in_flight(1)
        .await;
    assert_eq!(r.batches, 0);
    r
}

/// 2024-01-15T10:00:00Z in microseconds.
const T0_US: i64 = 1_705_312_800_000_000;

#[tokio::test]
async fn token_request_shape_and_describe_schema() {
    let server = MockServer::start().await;
    mount_token(&server, "tok1").await;
    mount_describe(&server).await;
    let src = SalesforceSource::connect(config(&server), &BudgetRegistry::new())
        .await
        .unwrap();
    let received = server.received_requests().await.unwrap();
    let token: Vec<_> = received
        .iter()
        .filter(|r| r.url.path() == "/services/oauth2/token")
        .collect();
    assert_eq!(token.len(), 1);
    let form: Vec<(String, String)> = serde_urlencoded_pairs(&token[0].body);
    assert_eq!(
        form,
        vec![
            ("grant_type".to_string(), "refresh_token".to_string()),
            ("client_id".into(), "app-id".into()),
            ("client_secret".into(), "CLIENT_SECRET_SENTINEL".into()),
            ("refresh_token".into(), "REFRESH_SENTINEL".into()),
        ]
    );
    let describe_req = received
        .iter()
        .find(|r| r.url.path().ends_with("/describe"))
        .unwrap();
    assert_eq!(
        describe_req.headers.get("authorization").unwrap(),
        "Bearer tok1"
    );

    let streams = src.streams();
    assert_eq!(streams.len(), 1);
    let s = &streams[0];
    assert_eq!(s.name, "Contact");
    assert_eq!(s.primary_key, vec!["Id".to_string()]);
    assert_eq!(s.cursor_field.as_deref(), Some("SystemModstamp"));
    let ty = |n: &str| field_type_of(s.schema.field_with_name(n).unwrap()).unwrap();
    assert_eq!(ty("Id"), FieldType::String);
    assert_eq!(ty("Email"), FieldType::String);
    assert_eq!(ty("Score__c"), FieldType::Number);
    assert_eq!(ty("IsDeleted"), FieldType::Boolean);
    assert_eq!(ty("SystemModstamp"), FieldType::Timestamp);
    assert_eq!(ty(DELETED_AT), FieldType::Timestamp);
    assert!(s.schema.field_with_name("MailingAddress").is_err());
    assert_eq!(s.schema.fields().len(), 6);
}

fn serde_urlencoded_pairs(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

#[tokio::test]
async fn incremental_query_follows_next_records_url_and_marks_deletions() {
    let server = MockServer::start().await;
    mount_token(&server, "tok1").await;
    mount_describe(&server).await;
    let filter = " WHERE SystemModstamp >= 2024-01-15T10:00:00.000Z";
    mount_count(&server, &format!("SELECT COUNT() FROM Contact{filter}"), 3).await;
    let soql = format!(
        "SELECT Id,Email,Score__c,IsDeleted,SystemModstamp FROM Contact{filter} ORDER BY SystemModstamp ASC"
    );
    Mock::given(method("GET"))
        .and(path(format!("{V}/queryAll")))
        .and(query_param("q", soql.as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "totalSize": 3, "done": false,
            "nextRecordsUrl": format!("{V}/queryAll/01gNEXT-2000"),
            "records": [
                contact("003A", "2024-01-15T10:00:00.000+0000", false),
                contact("003B", "2024-01-15T11:00:00.000+0000", false)
            ]
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{V}/queryAll/01gNEXT-2000")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "totalSize": 3, "done": true,
            "records": [contact("003C", "2024-01-15T12:00:00.000+0000", true)]
        })))
        .expect(1)
        .mount(&server)
        .await;
    let src = SalesforceSource::connect(config(&server), &BudgetRegistry::new())
        .await
        .unwrap();
    let r = read(&src, Some(json!({"cursor_us": T0_US}))).await;
    assert_eq!(r.error_text(), None);
    let ids: Vec<&str> = r
        .records
        .iter()
        .map(|v| v["Id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["003A", "003B", "003C"]);
    assert!(r.records.iter().all(|v| v.get("attributes").is_none()));
    assert_eq!(
        r.records[0]["SystemModstamp"],
        "2024-01-15T10:00:00.000000Z"
    );
    assert_eq!(r.records[0]["Score__c"], 1.5);
    assert!(r.records[0].get(DELETED_AT).is_none());
    assert_eq!(r.records[2][DELETED_AT], "2024-01-15T12:00:00.000000Z");
    // Mid-read checkpoints keep the saved cursor and list the window left;
    // the last moves the cursor.
    let states = r.state_values();
    assert_eq!(
        states.last(),
        Some(&json!({"cursor_us": T0_US + 2 * 3_600_000_000}))
    );
    for mid in &states[..states.len() - 1] {
        assert_eq!(mid["cursor_us"], T0_US, "{mid}");
        assert!(mid["slices"]["windows"].is_array(), "{mid}");
    }
    assert!(r.notices.is_empty());
}

#[tokio::test]
async fn first_run_reads_everything_and_401_refreshes_once() {
    let server = MockServer::start().await;
    mount_token(&server, "tok1").await;
    mount_describe(&server).await;
    mount_count(&server, "SELECT COUNT() FROM Contact", 1).await;
    let soql = "SELECT Id,Email,Score__c,IsDeleted,SystemModstamp FROM Contact ORDER BY SystemModstamp ASC";
    Mock::given(method("GET"))
        .and(path(format!("{V}/queryAll")))
        .and(query_param("q", soql))
        .respond_with(ResponseTemplate::new(401).set_body_json(
            json!([{"errorCode": "INVALID_SESSION_ID", "message": "Session expired or invalid"}]),
        ))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{V}/queryAll")))
        .and(query_param("q", soql))
        .and(header("authorization", "Bearer tok1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "totalSize": 1, "done": true,
            "records": [contact("003A", "2024-01-15T10:00:00.000+0000", false)]
        })))
        .with_priority(2)
        .mount(&server)
        .await;
    let src = SalesforceSource::connect(config(&server), &BudgetRegistry::new())
        .await
        .unwrap();
    let r = read(&src, None).await;
    assert_eq!(r.error_text(), None);
    assert_eq!(r.records.len(), 1);
    assert_eq!(r.state_values().last(), Some(&json!({"cursor_us": T0_US})));
    let token_requests = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == "/services/oauth2/token")
        .count();
    assert_eq!(
        token_requests, 2,
        "one token at connect, one refresh after the 401"
    );
}

#[tokio::test]
async fn above_the_threshold_a_bulk_job_is_read_by_locator() {
    let server = MockServer::start().await;
    mount_token(&server, "tok1").await;
    mount_describe(&server).await;
    mount_count(&server, "SELECT COUNT() FROM Contact", 3).await;
    let soql = "SELECT Id,Email,Score__c,IsDeleted,SystemModstamp FROM Contact";
    Mock::given(method("POST"))
        .and(path(format!("{V}/jobs/query")))
        .and(body_json(
            json!({"operation": "queryAll", "query": soql, "contentType": "CSV"}),
        ))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"id": "750J", "state": "UploadComplete"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{V}/jobs/query/750J")))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"id": "750J", "state": "InProgress"})),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{V}/jobs/query/750J")))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"id": "750J", "state": "JobComplete"})),
        )
        .with_priority(2)
        .mount(&server)
        .await;
    let header_row = "\"Id\",\"Email\",\"Score__c\",\"IsDeleted\",\"SystemModstamp\"\n";
    Mock::given(method("GET"))
        .and(path(format!("{V}/jobs/query/750J/results")))
        .and(query_param("locator", "LOC2"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("Sforce-Locator", "null")
                .set_body_string(format!(
                    "{header_row}\"003C\",\"\",\"\",\"true\",\"2024-01-15T12:00:00.000Z\"\n"
                )),
        )
        .with_priority(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{V}/jobs/query/750J/results")))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("Sforce-Locator", "LOC2")
                .set_body_string(format!(
                    "{header_row}\"003A\",\"a@example.com\",\"2.5\",\"false\",\"2024-01-15T10:00:00.000Z\"\n\
                     \"003B\",\"say \"\"hi\"\",\nbye\",\"-1\",\"false\",\"2024-01-15T11:00:00.000Z\"\n"
                )),
        )
        .with_priority(2)
        .expect(1)
        .mount(&server)
        .await;
    let mut c = config(&server);
    c.bulk_threshold = 2;
    let src = SalesforceSource::connect(c, &BudgetRegistry::new())
        .await
        .unwrap();
    let r = read(&src, None).await;
    assert_eq!(r.error_text(), None);
    assert_eq!(r.records.len(), 3);
    assert_eq!(
        r.records[0],
        json!({"Id": "003A", "Email": "a@example.com", "Score__c": 2.5, "IsDeleted": false,
               "SystemModstamp": "2024-01-15T10:00:00.000000Z"})
    );
    assert_eq!(r.records[1]["Email"], "say \"hi\",\nbye");
    assert_eq!(r.records[1]["Score__c"], -1.0);
    assert_eq!(r.records[2]["Email"], Value::Null);
    assert_eq!(r.records[2][DELETED_AT], "2024-01-15T12:00:00.000000Z");
    // Mid-read checkpoints keep the saved cursor and list the window left;
    // the last moves the cursor.
    let states = r.state_values();
    assert_eq!(
        states.last(),
        Some(&json!({"cursor_us": T0_US + 2 * 3_600_000_000}))
    );
    for mid in &states[..states.len() - 1] {
        assert_eq!(mid["cursor_us"], T0_US, "{mid}");
        assert!(mid["slices"]["windows"].is_array(), "{mid}");
    }
    assert_eq!(r.notices.len(), 1);
    assert!(r.notices[0].contains("Bulk API 2.0"), "{}", r.notices[0]);
    let polls = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == format!("{V}/jobs/query/750J"))
        .count();
    assert_eq!(polls, 2);
}

#[tokio::test]
async fn request_limit_exceeded_stops_with_a_clear_error() {
    let server = MockServer::start().await;
    mount_token(&server, "tok1").await;
    Mock::given(method("GET"))
        .and(path(format!("{V}/sobjects/Contact/describe")))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("Sforce-Limit-Info", "api-usage=100/15000")
                .set_body_json(describe()),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{V}/queryAll")))
        .respond_with(ResponseTemplate::new(403).set_body_json(json!([{
            "errorCode": "REQUEST_LIMIT_EXCEEDED",
            "message": "TotalRequests Limit exceeded."
        }])))
        .expect(1)
        .mount(&server)
        .await;
    let src = SalesforceSource::connect(config(&server), &BudgetRegistry::new())
        .await
        .unwrap();
    let r = read(&src, Some(json!({"cursor_us": T0_US}))).await;
    let e = r.error_text().unwrap();
    assert!(e.contains("DailyApiRequests"), "{e}");
    assert!(e.contains("101 of 15000"), "{e}");
    assert!(r.records.is_empty() && r.states.is_empty());
}

#[tokio::test]
async fn jwt_bearer_token_request_carries_a_signed_assertion() {
    use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
    use aws_lc_rs::rsa::KeySize;
    use aws_lc_rs::signature::{
        KeyPair, RSA_PKCS1_2048_8192_SHA256, RsaKeyPair, UnparsedPublicKey,
    };
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

    let key = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
    let der = AsDer::<Pkcs8V1Der<'_>>::as_der(&key).unwrap();
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        STANDARD.encode(der.as_ref())
    );
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/services/oauth2/token"))
        .and(body_string_contains(
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "jwt-tok", "instance_url": server.uri()
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{V}/sobjects/Contact/describe")))
        .and(header("authorization", "Bearer jwt-tok"))
        .respond_with(ResponseTemplate::new(200).set_body_json(describe()))
        .expect(1)
        .mount(&server)
        .await;
    let mut c = config(&server);
    c.auth = SalesforceAuth::JwtBearer {
        client_id: "app-id".into(),
        username: "etl@example.com".into(),
        private_key: secret_file(&pem),
    };
    SalesforceSource::connect(c, &BudgetRegistry::new())
        .await
        .unwrap();
    let received = server.received_requests().await.unwrap();
    let form = serde_urlencoded_pairs(&received[0].body);
    assert_eq!(form.len(), 2);
    let assertion = &form.iter().find(|(k, _)| k == "assertion").unwrap().1;
    let parts: Vec<&str> = assertion.split('.').collect();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    assert_eq!(claims["iss"], "app-id");
    assert_eq!(claims["sub"], "etl@example.com");
    assert_eq!(claims["aud"], server.uri());
    UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, key.public_key().as_ref())
        .verify(
            format!("{}.{}", parts[0], parts[1]).as_bytes(),
            &URL_SAFE_NO_PAD.decode(parts[2]).unwrap(),
        )
        .unwrap();
}

#[test]
fn request_limit_message_names_the_quota() {
    let e = SalesforceError::RequestLimitExceeded {
        object: "Contact".into(),
        used: None,
        quota: Some(15_000),
    };
    assert_eq!(
        e.to_string(),
        "salesforce Contact: the org's daily API request limit (DailyApiRequests) is used up \
         (REQUEST_LIMIT_EXCEEDED, quota 15000); stopping, the cursor is kept"
    );
}

#[tokio::test]
async fn long_reads_checkpoint_every_page_with_the_window_left() {
    let server = MockServer::start().await;
    mount_token(&server, "tok1").await;
    mount_describe(&server).await;
    mount_count(&server, "SELECT COUNT() FROM Contact", 11).await;
    let page = |n: u64| {
        let stamp = format!("2024-01-15T10:{n:02}:00.000+0000");
        let mut body = json!({
            "totalSize": 11, "done": n == 11,
            "records": [contact(&format!("003{n:02}"), &stamp, false)]
        });
        if n < 11 {
            body["nextRecordsUrl"] = json!(format!("{V}/queryAll/01gQ-{}", n + 1));
        }
        ResponseTemplate::new(200).set_body_json(body)
    };
    Mock::given(method("GET"))
        .and(path(format!("{V}/queryAll")))
        .and(query_param(
            "q",
            "SELECT Id,Email,Score__c,IsDeleted,SystemModstamp FROM Contact ORDER BY SystemModstamp ASC",
        ))
        .respond_with(page(1))
        .mount(&server)
        .await;
    for n in 2..=11 {
        Mock::given(method("GET"))
            .and(path(format!("{V}/queryAll/01gQ-{n}")))
            .respond_with(page(n))
            .expect(1)
            .mount(&server)
            .await;
    }
    let src = SalesforceSource::connect(config(&server), &BudgetRegistry::new())
        .await
        .unwrap();
    let r = read(&src, None).await;
    assert_eq!(r.error_text(), None);
    assert_eq!(r.records.len(), 11);
    // After page n the window left starts at page n's `SystemModstamp`
    // (milliseconds): a resumed read re-reads only that millisecond.
    let minute_ms = 60_000;
    let states = r.state_values();
    assert_eq!(states.len(), 12, "{states:?}");
    for (n, mid) in states[..10].iter().enumerate() {
        let lo = T0_US / 1_000 + (n as i64 + 1) * minute_ms;
        assert_eq!(
            mid["slices"]["windows"],
            json!([{"lo": lo, "hi": i64::MAX}]),
            "after page {}",
            n + 1
        );
    }
    assert_eq!(states[10]["slices"]["windows"], json!([]));
    assert_eq!(
        states[11],
        json!({"cursor_us": T0_US + 11 * minute_ms * 1_000})
    );
}
