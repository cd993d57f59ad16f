//! The bad-input corpus: Stripe-shaped list pages with something wrong in
//! them, served by wiremock to the real Stripe source, run through the real
//! pipeline (`weft_runner::run`: stage + DuckDB).
//!
//! Every case either lands its good records and quarantines the bad ones in
//! `_weft._weft_rejects` with a reason naming the field, or fails the stream
//! with an error naming the stream, the page (its URL, cursor or number) and
//! the field or position at fault, committing nothing. No case panics, and no
//! record is silently dropped: every record sent is in the table or in the
//! rejects (a key sent twice is one row, the later version).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use futures::StreamExt;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use weft_core::{CancellationToken, StreamStatus};
use weft_runner::{RunOptions, WeftConfig};
use wiremock::matchers::{method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// `created` of the three records most cases serve (newest first, as Stripe lists).
const T1: i64 = 1_700_000_300;
const T2: i64 = 1_700_000_200;
const T3: i64 = 1_700_000_100;

/// One HTTP answer, served for the request whose `starting_after` is `after`
/// (`None`: the first page).
struct Served {
    after: Option<String>,
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

/// What a case must end in.
enum Expect {
    /// The stream succeeds with exactly these ids in `stripe.customers`, these
    /// rejects (field, a fragment of the reason) and, optionally, a query whose
    /// single text value must equal the given one.
    Loaded {
        ids: Vec<String>,
        rejects: Vec<(Option<&'static str>, &'static str)>,
        check: Option<(&'static str, String)>,
    },
    /// The stream fails, nothing is committed, and its error contains
    /// `stripe/customers` and each of these fragments.
    Failed(Vec<&'static str>),
}

/// One corpus entry.
struct Case {
    name: &'static str,
    pages: Vec<Served>,
    expect: Expect,
}

impl Case {
    /// Adds a query whose single text value must equal `expected`.
    fn check(mut self, sql: &'static str, expected: impl Into<String>) -> Case {
        if let Expect::Loaded { check, .. } = &mut self.expect {
            *check = Some((sql, expected.into()));
        }
        self
    }
}

fn ids(ids: &[&str]) -> Vec<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

/// The good records load, nothing is rejected.
fn loads(name: &'static str, pages: Vec<Served>, loaded: &[&str]) -> Case {
    Case {
        name,
        pages,
        expect: Expect::Loaded {
            ids: ids(loaded),
            rejects: Vec::new(),
            check: None,
        },
    }
}

/// `cus_1` and `cus_3` load; one record is rejected for `field` with `reason` in its reason.
fn quarantines(
    name: &'static str,
    pages: Vec<Served>,
    field: Option<&'static str>,
    reason: &'static str,
) -> Case {
    Case {
        name,
        pages,
        expect: Expect::Loaded {
            ids: ids(&["cus_1", "cus_3"]),
            rejects: vec![(field, reason)],
            check: None,
        },
    }
}

/// The stream fails with an error containing each of `names`.
fn fails(name: &'static str, pages: Vec<Served>, names: &[&'static str]) -> Case {
    Case {
        name,
        pages,
        expect: Expect::Failed(names.to_vec()),
    }
}

/// A well-formed customer.
fn rec(id: &str, created: i64) -> Value {
    json!({
        "id": id,
        "object": "customer",
        "created": created,
        "email": format!("{id}@example.com"),
        "name": format!("Name {id}"),
        "balance": 0,
        "delinquent": false,
        "livemode": false,
        "metadata": {"k": "v"},
        "description": null,
    })
}

fn g1() -> String {
    rec("cus_1", T1).to_string()
}

fn g3() -> String {
    rec("cus_3", T3).to_string()
}

/// `cus_2` with `field` set to `value`.
fn with(field: &str, value: Value) -> String {
    let mut r = rec("cus_2", T2);
    r[field] = value;
    r.to_string()
}

/// `cus_2` without `field`.
fn without(field: &str) -> String {
    let mut r = rec("cus_2", T2);
    r.as_object_mut().unwrap().remove(field);
    r.to_string()
}

/// A Stripe list body around raw record texts.
fn list(records: &[String], has_more: bool) -> Vec<u8> {
    format!(
        r#"{{"object":"list","url":"/v1/customers","has_more":{has_more},"data":[{}]}}"#,
        records.join(",")
    )
    .into_bytes()
}

/// A 200 JSON answer.
fn answer(after: Option<&str>, body: Vec<u8>) -> Served {
    Served {
        after: after.map(str::to_string),
        status: 200,
        headers: vec![("content-type", "application/json".into())],
        body,
    }
}

/// One last page holding these records.
fn page(records: &[String]) -> Vec<Served> {
    vec![answer(None, list(records, false))]
}

/// One page: `cus_1`, then `bad` (raw JSON text), then `cus_3`.
fn middle(bad: &str) -> Vec<Served> {
    page(&[g1(), bad.to_string(), g3()])
}

/// Two pages: `first` (has_more), then `second` served after `after`.
fn two_pages(first: &[String], after: &str, second: &[String]) -> Vec<Served> {
    vec![
        answer(None, list(first, true)),
        answer(Some(after), list(second, false)),
    ]
}

/// The first page answers `status` with `body` and these headers.
fn raw(status: u16, headers: &[(&'static str, &str)], body: impl Into<Vec<u8>>) -> Vec<Served> {
    vec![Served {
        after: None,
        status,
        headers: headers.iter().map(|(k, v)| (*k, v.to_string())).collect(),
        body: body.into(),
    }]
}

const JSON: (&str, &str) = ("content-type", "application/json");

/// `depth` nested arrays around `1`.
fn nested(depth: usize) -> String {
    format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
}

/// The corpus.
fn corpus() -> Vec<Case> {
    let good = || [g1(), rec("cus_2", T2).to_string(), g3()];
    let good_body = || list(&good(), false);
    let ten_mb = "x".repeat(10 * 1024 * 1024);
    let many: Vec<String> = (0..5000)
        .map(|i| rec(&format!("cus_{i:05}"), T1 - i).to_string())
        .collect();
    let many_ids: Vec<String> = (0..5000).map(|i| format!("cus_{i:05}")).collect();
    let all3 = &["cus_1", "cus_2", "cus_3"];
    vec![
        // Wrong types.
        quarantines(
            "integer field holds a numeric string",
            middle(&with("balance", json!("12"))),
            Some("balance"),
            "expected integer",
        ),
        quarantines(
            "integer field holds a float",
            middle(&with("balance", json!(12.5))),
            Some("balance"),
            "expected integer",
        ),
        quarantines(
            "integer above i64::MAX",
            middle(&with("balance", json!(u64::MAX))),
            Some("balance"),
            "expected integer",
        ),
        quarantines(
            "integer below i64::MIN",
            middle(&with("balance", "-99999999999999999999".parse().unwrap())),
            Some("balance"),
            "expected integer",
        ),
        quarantines(
            "number literal beyond f64 (1e400)",
            middle(&with("balance", json!(0)).replace(r#""balance":0"#, r#""balance":1e400"#)),
            Some("balance"),
            "expected integer",
        ),
        quarantines(
            "integer field holds \"NaN\"",
            middle(&with("balance", json!("NaN"))),
            Some("balance"),
            "expected integer",
        ),
        quarantines(
            "integer field holds \"Infinity\"",
            middle(&with("balance", json!("Infinity"))),
            Some("balance"),
            "expected integer",
        ),
        quarantines(
            "integer field holds an object",
            middle(&with("balance", json!({"amount": 1}))),
            Some("balance"),
            "expected integer",
        ),
        quarantines(
            "boolean field holds \"true\"",
            middle(&with("livemode", json!("true"))),
            Some("livemode"),
            "expected boolean",
        ),
        quarantines(
            "boolean field holds 1",
            middle(&with("delinquent", json!(1))),
            Some("delinquent"),
            "expected boolean",
        ),
        quarantines(
            "string field holds a number",
            middle(&with("email", json!(42))),
            Some("email"),
            "expected string",
        ),
        quarantines(
            "string field holds an object",
            middle(&with("name", json!({"first": "A"}))),
            Some("name"),
            "expected string",
        ),
        quarantines(
            "string field holds an array",
            middle(&with("phone", json!(["+1"]))),
            Some("phone"),
            "expected string",
        ),
        quarantines(
            "unix_seconds field holds an RFC 3339 string",
            middle(&with("created", json!("2023-11-14T22:13:20Z"))),
            Some("created"),
            "expected unix_seconds",
        ),
        quarantines(
            "unix_seconds field holds a float",
            middle(&with("created", json!(1_700_000_200.5))),
            Some("created"),
            "expected unix_seconds",
        ),
        loads(
            "json field holds a scalar",
            middle(&with("metadata", json!(5))),
            all3,
        )
        .check(
            "SELECT metadata::VARCHAR FROM stripe.customers WHERE id = 'cus_2'",
            "5",
        ),
        // Primary keys.
        quarantines(
            "primary key missing",
            middle(&without("id")),
            Some("id"),
            "missing primary key field `id`",
        ),
        quarantines(
            "primary key null",
            middle(&with("id", Value::Null)),
            Some("id"),
            "missing primary key field `id`",
        ),
        quarantines(
            "primary key is a number",
            middle(&with("id", json!(2))),
            Some("id"),
            "expected string",
        ),
        quarantines(
            "primary key spelled with the wrong case (ID)",
            middle(&without("id").replacen('{', r#"{"ID":"cus_2","#, 1)),
            Some("id"),
            "missing primary key field `id`",
        ),
        quarantines(
            "empty object record",
            middle("{}"),
            Some("id"),
            "missing primary key field `id`",
        ),
        loads(
            "primary key duplicated within a page: the later version wins",
            page(&[
                g1(),
                with("name", json!("older")),
                with("name", json!("newer")),
                g3(),
            ]),
            all3,
        )
        .check(
            "SELECT name FROM stripe.customers WHERE id = 'cus_2'",
            "newer",
        ),
        loads(
            "primary key duplicated across pages",
            two_pages(
                &[g1(), with("name", json!("page one"))],
                "cus_2",
                &[with("name", json!("page two")), g3()],
            ),
            all3,
        )
        .check(
            "SELECT name FROM stripe.customers WHERE id = 'cus_2'",
            "page two",
        ),
        // Records that are not objects.
        quarantines(
            "record is a number",
            middle("42"),
            None,
            "not a JSON object",
        ),
        quarantines(
            "record is null",
            middle("null"),
            None,
            "not a JSON object",
        ),
        quarantines(
            "record is an array",
            middle(r#"[{"id":"cus_2"}]"#),
            None,
            "not a JSON object",
        ),
        quarantines(
            "record is a string",
            middle(r#""cus_2""#),
            None,
            "not a JSON object",
        ),
        // Duplicate JSON keys and key spelling.
        loads(
            "duplicate JSON key in a record: the last value wins",
            middle(&with("name", json!("first")).replacen('{', r#"{"name":"zeroth","#, 1)),
            all3,
        )
        .check(
            "SELECT name FROM stripe.customers WHERE id = 'cus_2'",
            "first",
        ),
        Case {
            name: "field spelled with the wrong case (EMAIL)",
            pages: middle(&without("email").replacen('{', r#"{"EMAIL":"upper@example.com","#, 1)),
            expect: Expect::Loaded {
                ids: ids(all3),
                rejects: vec![(Some("EMAIL"), "differs from column `email` only in case")],
                check: Some((
                    "SELECT count(*)::VARCHAR FROM stripe.customers WHERE email IS NULL",
                    "1".into(),
                )),
            },
        },
        // Nulls.
        loads(
            "unexpected null in every field but the key",
            middle(r#"{"id":"cus_2","object":null,"created":null,"email":null,"name":null,"balance":null,"delinquent":null,"livemode":null,"metadata":null}"#),
            all3,
        )
        .check(
            "SELECT count(*)::VARCHAR FROM stripe.customers WHERE created IS NULL",
            "1",
        ),
        fails(
            "first record of a page has no `created`",
            page(&[without("created"), g3()]),
            &["page 1", "/v1/customers", "`created`"],
        ),
        fails(
            "first record's `created` is a string",
            page(&[with("created", json!("yesterday")), g3()]),
            &["page 1", "/v1/customers", "`created`"],
        ),
        // Timestamps in the wrong unit: not loaded as dates thousands of years ahead.
        quarantines(
            "created in milliseconds",
            middle(&with("created", json!(1_700_000_200_000_i64))),
            Some("created"),
            "years 1 to 9999",
        ),
        quarantines(
            "created in microseconds",
            middle(&with("created", json!(1_700_000_200_000_000_i64))),
            Some("created"),
            "years 1 to 9999",
        ),
        quarantines(
            "created in nanoseconds",
            middle(&with("created", json!(1_700_000_200_000_000_000_i64))),
            Some("created"),
            "years 1 to 9999",
        ),
        loads(
            "created before 1970",
            middle(&with("created", json!(-86_400))),
            all3,
        ),
        // Big and deep values.
        loads(
            "10 MB string",
            middle(&with("description", json!(ten_mb))),
            all3,
        )
        .check(
            "SELECT length(description)::VARCHAR FROM stripe.customers WHERE id = 'cus_2'",
            (10 * 1024 * 1024).to_string(),
        ),
        loads(
            "1 MB primary key",
            page(&[g1(), rec(&"k".repeat(1024 * 1024), T2).to_string(), g3()]),
            &["cus_1", &"k".repeat(1024 * 1024), "cus_3"],
        ),
        loads(
            "json field nested 100 deep",
            middle(&with("metadata", serde_json::from_str(&nested(100)).unwrap())),
            all3,
        )
        .check(
            "SELECT length(metadata::VARCHAR)::VARCHAR FROM stripe.customers WHERE id = 'cus_2'",
            "201",
        ),
        loads(
            "json field nested 10,000 deep",
            middle(&with("metadata", json!(0)).replace(r#""metadata":0"#, &format!(r#""metadata":{}"#, nested(10_000)))),
            all3,
        )
        .check(
            "SELECT length(metadata::VARCHAR)::VARCHAR FROM stripe.customers WHERE id = 'cus_2'",
            "20001",
        ),
        loads(
            "5,000 records on one page",
            page(&many),
            &many_ids.iter().map(String::as_str).collect::<Vec<_>>(),
        ),
        // Text.
        loads(
            "emoji, right-to-left and combining characters",
            middle(&with("name", json!("Zoë 👩‍💻 مرحبا e\u{301}"))),
            all3,
        )
        .check(
            "SELECT name FROM stripe.customers WHERE id = 'cus_2'",
            "Zoë 👩‍💻 مرحبا e\u{301}",
        ),
        loads(
            "NUL character in a string",
            middle(&with("name", json!("a\u{0}b"))),
            all3,
        )
        .check(
            "SELECT length(name)::VARCHAR FROM stripe.customers WHERE id = 'cus_2'",
            "3",
        ),
        loads(
            "SQL in values",
            middle(&with("name", json!("'); DROP TABLE stripe.customers; --"))),
            all3,
        )
        .check(
            "SELECT name FROM stripe.customers WHERE id = 'cus_2'",
            "'); DROP TABLE stripe.customers; --",
        ),
        quarantines(
            "lone UTF-16 surrogate escape",
            middle(&with("name", json!("PLACEHOLDER")).replace("PLACEHOLDER", r"\ud800")),
            Some("name"),
            "surrogate",
        ),
        // Schema drift.
        loads(
            "new field appears (evolves a column)",
            middle(&with("tier", json!("gold"))),
            all3,
        )
        .check(
            "SELECT tier FROM stripe.customers WHERE id = 'cus_2'",
            "gold",
        ),
        loads(
            "new field only ever null",
            middle(&with("tier", Value::Null)),
            all3,
        ),
        loads(
            "new field with a 5,000-character name",
            middle(&with(&"f".repeat(5000), json!(1))),
            all3,
        ),
        loads(
            "new field with quotes and dots in its name",
            middle(&with("we\"ird.name 'x'", json!("v"))),
            all3,
        ),
        Case {
            name: "new field named like an engine column (_weft_load_id)",
            pages: middle(&with("_weft_load_id", json!("evil"))),
            expect: Expect::Loaded {
                ids: ids(all3),
                rejects: vec![(
                    Some("_weft_load_id"),
                    "named like a column weft writes itself",
                )],
                check: None,
            },
        }
        .check(
            "SELECT count(*)::VARCHAR FROM stripe.customers WHERE _weft_load_id = 'evil'",
            "0",
        ),
        Case {
            name: "new field named with the empty string",
            pages: middle(&with("", json!("v"))),
            expect: Expect::Loaded {
                ids: ids(all3),
                rejects: vec![(Some(""), "empty name")],
                check: None,
            },
        },
        loads(
            "deleted-object stub in a list",
            middle(r#"{"id":"cus_2","object":"customer","deleted":true}"#),
            all3,
        ),
        Case {
            name: "schema drift mid-stream: a new column and a type change on page 2",
            pages: two_pages(
                &[g1(), rec("cus_2", T2).to_string()],
                "cus_2",
                &[
                    {
                        let mut r = rec("cus_3", T3);
                        r["tier"] = json!("gold");
                        r.to_string()
                    },
                    {
                        let mut r = rec("cus_4", T3 - 1);
                        r["balance"] = json!("100.00");
                        r.to_string()
                    },
                ],
            ),
            expect: Expect::Loaded {
                ids: ids(all3),
                rejects: vec![(Some("balance"), "expected integer")],
                check: Some((
                    "SELECT tier FROM stripe.customers WHERE id = 'cus_3'",
                    "gold".into(),
                )),
            },
        },
        // The envelope.
        fails(
            "`data` is an object, not an array",
            raw(
                200,
                &[JSON],
                format!(r#"{{"object":"list","has_more":false,"data":{}}}"#, g1()),
            ),
            &["/v1/customers?limit=100", "\"/data\"", "not an array"],
        ),
        fails(
            "`data` is a string",
            raw(200, &[JSON], r#"{"object":"list","has_more":false,"data":"[]"}"#),
            &["/v1/customers?limit=100", "\"/data\"", "not an array"],
        ),
        loads(
            "`data` is null on the last page",
            raw(200, &[JSON], r#"{"object":"list","has_more":false,"data":null}"#),
            &[],
        ),
        fails(
            "wrong envelope: records under `items`",
            raw(
                200,
                &[JSON],
                format!(r#"{{"object":"list","has_more":false,"items":[{}]}}"#, g1()),
            ),
            &["/v1/customers?limit=100", "no items at \"/data\"", "keys: has_more, items, object"],
        ),
        fails(
            "an error object with status 200",
            raw(
                200,
                &[JSON],
                r#"{"error":{"type":"api_error","message":"Something went wrong"}}"#,
            ),
            &["/v1/customers?limit=100", "no items at \"/data\"", "keys: error"],
        ),
        fails(
            "body is a bare array of records",
            raw(200, &[JSON], format!("[{}]", good().join(","))),
            &["/v1/customers?limit=100", "no items at \"/data\"", "not an object"],
        ),
        fails(
            "body is a JSON string",
            raw(200, &[JSON], r#""ok""#),
            &["/v1/customers?limit=100", "no items at \"/data\"", "not an object"],
        ),
        fails(
            "body is an empty object",
            raw(200, &[JSON], "{}"),
            &["/v1/customers?limit=100", "no items at \"/data\"", "keys: none"],
        ),
        fails(
            "`has_more` is the string \"true\"",
            raw(
                200,
                &[JSON],
                String::from_utf8(good_body())
                    .unwrap()
                    .replace(r#""has_more":false"#, r#""has_more":"true""#),
            ),
            &["/v1/customers?limit=100", "\"/has_more\"", "not a boolean"],
        ),
        loads(
            "`has_more` missing",
            raw(
                200,
                &[JSON],
                format!(r#"{{"object":"list","data":[{}]}}"#, good().join(",")),
            ),
            all3,
        ),
        fails(
            "empty page with has_more: true",
            vec![answer(None, list(&[], true))],
            &["/v1/customers?limit=100", "\"/has_more\" is true", "no `id`", "0 items"],
        ),
        fails(
            "last record has no id and has_more: true",
            vec![answer(None, list(&[g1(), without("id")], true))],
            &["/v1/customers?limit=100", "\"/has_more\" is true", "no `id` in the last item"],
        ),
        fails(
            "the same cursor comes back (pagination loop)",
            vec![
                answer(None, list(&[g1(), g3()], true)),
                answer(Some("cus_3"), list(&[g3()], true)),
            ],
            &["starting_after=cus_3", "pagination loop", "cus_3"],
        ),
        // Bodies that are not JSON.
        fails(
            "truncated JSON",
            raw(200, &[JSON], good_body()[..120].to_vec()),
            &["/v1/customers?limit=100", "not valid JSON", "EOF"],
        ),
        fails(
            "truncated JSON on page 2",
            vec![
                answer(None, list(&[g1(), g3()], true)),
                answer(Some("cus_3"), good_body()[..60].to_vec()),
            ],
            &["starting_after=cus_3", "not valid JSON", "EOF"],
        ),
        fails(
            "HTML error page with status 200",
            raw(
                200,
                &[("content-type", "text/html")],
                "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>",
            ),
            &["/v1/customers?limit=100", "not valid JSON", "line 1 column 1"],
        ),
        fails(
            "empty body with status 200",
            raw(200, &[JSON], ""),
            &["/v1/customers?limit=100", "not valid JSON", "EOF"],
        ),
        fails(
            "status 204 without a body",
            raw(204, &[], ""),
            &["/v1/customers?limit=100", "not valid JSON"],
        ),
        fails(
            "non-UTF-8 bytes inside a string",
            raw(200, &[JSON], {
                let mut b = good_body();
                let at = b.windows(6).position(|w| w == b"Name c").unwrap();
                b[at + 1] = 0xff;
                b
            }),
            &["/v1/customers?limit=100", "not UTF-8", "index 224"],
        ),
        fails(
            "Latin-1 body declared as charset=iso-8859-1",
            raw(
                200,
                &[("content-type", "application/json; charset=iso-8859-1")],
                {
                    let mut b = list(&[with("name", json!("ZoeX"))], false);
                    let at = b.windows(4).position(|w| w == b"ZoeX").unwrap();
                    b[at + 3] = 0xeb; // ë in Latin-1
                    b
                },
            ),
            &["/v1/customers?limit=100", "not UTF-8"],
        ),
        // RFC 8259 lets a receiver ignore a byte order mark: the page loads.
        loads(
            "UTF-8 byte order mark before the body",
            raw(200, &[JSON], {
                let mut b = b"\xef\xbb\xbf".to_vec();
                b.extend(good_body());
                b
            }),
            all3,
        ),
        fails(
            "trailing garbage after the body",
            raw(200, &[JSON], {
                let mut b = good_body();
                b.extend(b"<!-- cache -->");
                b
            }),
            &["/v1/customers?limit=100", "not valid JSON", "trailing characters"],
        ),
        fails(
            "two JSON documents back to back",
            raw(200, &[JSON], [good_body(), good_body()].concat()),
            &["/v1/customers?limit=100", "not valid JSON", "trailing characters"],
        ),
        fails(
            "trailing comma in the data array",
            raw(
                200,
                &[JSON],
                format!(r#"{{"has_more":false,"data":[{},]}}"#, g1()),
            ),
            &["/v1/customers?limit=100", "not valid JSON"],
        ),
        fails(
            "single-quoted JSON",
            raw(200, &[JSON], "{'has_more': false, 'data': []}"),
            &["/v1/customers?limit=100", "not valid JSON"],
        ),
        fails(
            "bare NaN literal",
            raw(
                200,
                &[JSON],
                format!(r#"{{"has_more":false,"data":[{}]}}"#, with("balance", json!(0)))
                    .replace(r#""balance":0"#, r#""balance":NaN"#),
            ),
            &["/v1/customers?limit=100", "not valid JSON"],
        ),
        fails(
            "raw control character inside a string",
            raw(
                200,
                &[JSON],
                format!(r#"{{"has_more":false,"data":[{}]}}"#, with("name", json!("A")))
                    .replace(r#""name":"A""#, "\"name\":\"A\nB\""),
            ),
            &["/v1/customers?limit=100", "not valid JSON", "control character"],
        ),
        fails(
            "invalid escape sequence",
            raw(
                200,
                &[JSON],
                format!(r#"{{"has_more":false,"data":[{}]}}"#, with("name", json!("A")))
                    .replace(r#""name":"A""#, r#""name":"\x41""#),
            ),
            &["/v1/customers?limit=100", "not valid JSON", "escape"],
        ),
        // Headers that lie.
        loads(
            "Content-Type text/html on a JSON body",
            raw(200, &[("content-type", "text/html")], good_body()),
            all3,
        ),
        loads(
            "no Content-Type at all",
            raw(200, &[], good_body()),
            all3,
        ),
        loads(
            "pretty-printed body with CRLF line ends",
            raw(
                200,
                &[JSON],
                serde_json::to_string_pretty(
                    &serde_json::from_slice::<Value>(&good_body()).unwrap(),
                )
                .unwrap()
                .replace('\n', "\r\n"),
            ),
            all3,
        ),
        fails(
            "Content-Encoding gzip on a plain body",
            raw(200, &[JSON, ("content-encoding", "gzip")], good_body()),
            &["/v1/customers?limit=100"],
        ),
        // Error statuses.
        fails(
            "status 500 with an HTML page, every time",
            raw(
                500,
                &[("content-type", "text/html")],
                "<html>Internal Server Error</html>",
            ),
            &["/v1/customers?limit=100", "500"],
        ),
        fails(
            "status 404",
            raw(
                404,
                &[JSON],
                r#"{"error":{"type":"invalid_request_error","message":"Unrecognized request URL"}}"#,
            ),
            &["/v1/customers?limit=100", "404", "Unrecognized request URL"],
        ),
    ]
}

/// Serves a case's pages on a fresh wiremock server.
async fn serve(case: &Case) -> MockServer {
    let server = MockServer::start().await;
    for p in &case.pages {
        let mut response = ResponseTemplate::new(p.status).set_body_bytes(p.body.clone());
        for (k, v) in &p.headers {
            response = response.insert_header(*k, v.as_str());
        }
        let mock = Mock::given(method("GET")).and(path("/v1/customers"));
        let mock = match &p.after {
            None => mock.and(query_param_is_missing("starting_after")),
            Some(after) => mock.and(query_param("starting_after", after.as_str())),
        };
        mock.respond_with(response).mount(&server).await;
    }
    server
}

/// A weft config reading `customers` from `base_url` into DuckDB, quick to give up.
fn config(dir: &Path, base_url: &str) -> WeftConfig {
    let key = dir.join("stripe.key");
    std::fs::write(&key, "sk_test_bad_input").unwrap();
    let path = dir.join("weft.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[warehouse]
kind = "duckdb"
path = "weft.duckdb"

[stage]
url = "stage"

[[pipelines]]
name = "stripe"
connector = "stripe"
streams = ["customers"]

[pipelines.config]
base_url = "{base_url}"
api_key = {{ file = "{}" }}
requests_per_second = 10000.0

[pipelines.config.http]
max_attempts = 2
initial_backoff_ms = 1
max_backoff_ms = 2
min_retry_after_ms = 1
request_timeout_secs = 30
"#,
            key.display()
        ),
    )
    .unwrap();
    WeftConfig::load(&path).unwrap()
}

/// The records of every 2xx page whose body parses, as raw texts (what was sent).
fn records_sent(case: &Case) -> Vec<String> {
    case.pages
        .iter()
        .filter(|p| (200..300).contains(&p.status))
        // A leading byte order mark may be ignored (RFC 8259), and weft does.
        .map(|p| p.body.strip_prefix(b"\xef\xbb\xbf").unwrap_or(&p.body))
        .filter_map(|body| serde_json::from_slice::<BTreeMap<String, &RawValue>>(body).ok())
        .filter_map(|body| serde_json::from_str::<Vec<&RawValue>>(body.get("data")?.get()).ok())
        .flatten()
        .map(|r| r.get().to_string())
        .collect()
}

/// The string `id` of a raw record, if it has one.
fn id_of(raw: &str) -> Option<String> {
    let map: BTreeMap<String, &RawValue> = serde_json::from_str(raw).ok()?;
    serde_json::from_str::<String>(map.get("id")?.get()).ok()
}

/// Opens the DuckDB file without extension auto-install.
fn open(db: &Path) -> Result<duckdb::Connection, String> {
    let conn = duckdb::Connection::open(db).map_err(|e| format!("open {}: {e}", db.display()))?;
    conn.execute_batch(
        "SET autoinstall_known_extensions = false; SET autoload_known_extensions = false;",
    )
    .map_err(|e| e.to_string())?;
    Ok(conn)
}

/// Every row of `sql`, each column as text (NULL as an empty string).
#[allow(clippy::let_and_return)] // the rows borrow `stmt`: they must be collected before it drops
fn rows(conn: &duckdb::Connection, sql: &str) -> Result<Vec<Vec<String>>, String> {
    let mut stmt = conn.prepare(sql).map_err(|e| format!("{sql}: {e}"))?;
    let out = stmt
        .query_map([], |r| {
            (0..r.as_ref().column_count())
                .map(|i| r.get::<_, Option<String>>(i).map(Option::unwrap_or_default))
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(|e| format!("{sql}: {e}"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{sql}: {e}"));
    out
}

macro_rules! ensure {
    ($cond:expr, $($arg:tt)*) => {
        if !$cond {
            return Err(format!($($arg)*));
        }
    };
}

/// Runs one case end to end and checks its outcome.
async fn run_case(case: &Case) -> Result<(), String> {
    let server = serve(case).await;
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &server.uri());
    let outcome = weft_runner::run(
        &config,
        &RunOptions::default(),
        CancellationToken::new(),
        None,
    )
    .await
    .map_err(|e| format!("the run could not start: {e}"))?;
    let report = outcome.pipelines[0]
        .stream("customers")
        .ok_or("no report for customers")?
        .clone();
    let db = open(&dir.path().join("weft.duckdb"))?;
    let table_exists = rows(
        &db,
        "SELECT count(*)::VARCHAR FROM information_schema.tables \
         WHERE table_schema = 'stripe' AND table_name = 'customers'",
    )?[0][0]
        == "1";
    let loaded: Vec<String> = if table_exists {
        rows(&db, "SELECT id FROM stripe.customers ORDER BY id")?
            .into_iter()
            .map(|r| r[0].clone())
            .collect()
    } else {
        Vec::new()
    };
    let rejects = rows(
        &db,
        "SELECT coalesce(field, '<none>'), reason, row_loaded::VARCHAR, record \
         FROM _weft._weft_rejects ORDER BY field, reason",
    )?;
    let states = rows(
        &db,
        "SELECT state FROM _weft._weft_state WHERE stream = 'customers'",
    )?;
    match &case.expect {
        Expect::Loaded {
            ids: want,
            rejects: want_rejects,
            check,
        } => {
            ensure!(
                report.status == StreamStatus::Succeeded,
                "expected success, got {:?}: {:?}",
                report.status,
                report.error
            );
            let want: BTreeSet<&str> = want.iter().map(String::as_str).collect();
            let got: BTreeSet<&str> = loaded.iter().map(String::as_str).collect();
            ensure!(
                loaded.len() == got.len(),
                "duplicated keys in the table: {loaded:?}"
            );
            ensure!(got == want, "ids loaded {got:?}, expected {want:?}");
            ensure!(
                report.rows == loaded.len() as u64,
                "report says {} rows, the table holds {}",
                report.rows,
                loaded.len()
            );
            ensure!(
                rejects.len() == want_rejects.len(),
                "rejects {rejects:?}, expected {want_rejects:?}"
            );
            ensure!(
                report.rejected == rejects.len() as u64,
                "report says {} rejected, _weft_rejects holds {}",
                report.rejected,
                rejects.len()
            );
            for (field, fragment) in want_rejects {
                let field = field.unwrap_or("<none>");
                ensure!(
                    rejects
                        .iter()
                        .any(|r| r[0] == field && r[1].contains(fragment)),
                    "no reject for field {field} with reason containing {fragment:?}: {:?}",
                    rejects
                        .iter()
                        .map(|r| (&r[0], &r[1], &r[2]))
                        .collect::<Vec<_>>()
                );
                if field != "<none>" && !field.is_empty() {
                    ensure!(
                        rejects.iter().any(|r| r[1].contains(field)),
                        "the reason does not name field {field}"
                    );
                }
            }
            // Nothing silently dropped: every record sent is a row (a key sent
            // twice is one row) or a whole-record reject.
            let sent = records_sent(case);
            let mut seen = BTreeSet::new();
            let repeats = sent
                .iter()
                .filter_map(|r| id_of(r))
                .filter(|id| !seen.insert(id.clone()) && got.contains(id.as_str()))
                .count();
            let whole_rejects = rejects.iter().filter(|r| r[2] == "false").count();
            ensure!(
                loaded.len() + whole_rejects + repeats == sent.len(),
                "{} records sent, {} rows + {whole_rejects} rejects + {repeats} repeated keys",
                sent.len(),
                loaded.len()
            );
            for r in rejects.iter().filter(|r| r[2] == "false") {
                ensure!(
                    sent.iter().any(|s| *s == r[3]),
                    "a reject's record is not one that was sent: {:.200}",
                    r[3]
                );
            }
            if !sent.is_empty() {
                ensure!(states.len() == 1, "no state committed: {states:?}");
            }
            if let Some((sql, expected)) = check {
                let got = rows(&db, sql)?;
                ensure!(
                    got.len() == 1 && got[0][0] == *expected,
                    "{sql}: got {:.200?}, expected {expected:.200}",
                    got
                );
            }
        }
        Expect::Failed(names) => {
            ensure!(
                report.status == StreamStatus::Failed,
                "expected a failure, got {:?} with {} rows",
                report.status,
                loaded.len()
            );
            let error = report.error.clone().unwrap_or_default();
            for name in std::iter::once(&"stripe/customers").chain(names) {
                ensure!(
                    error.contains(name),
                    "the error does not name {name:?}: {error}"
                );
            }
            ensure!(
                loaded.is_empty() && states.is_empty() && rejects.is_empty(),
                "a failed stream committed something: {} rows, state {states:?}, {} rejects",
                loaded.len(),
                rejects.len()
            );
        }
    }
    Ok(())
}

/// Every corpus case; the failure message lists each case that went wrong and why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_quarantined_or_named_never_dropped() {
    let corpus = corpus();
    assert!(corpus.len() >= 50, "the corpus has {} cases", corpus.len());
    let names: BTreeSet<&str> = corpus.iter().map(|c| c.name).collect();
    assert_eq!(names.len(), corpus.len(), "case names are unique");
    // Cases run a few at a time, each with its own server, stage and warehouse.
    let failures: Vec<String> = futures::stream::iter(corpus)
        .map(|case| async move {
            let name = case.name;
            let started = std::time::Instant::now();
            // A panic anywhere in weft fails this case, not the whole corpus.
            let result = tokio::spawn(async move { run_case(&case).await }).await;
            eprintln!("bad input: {name} ({:.1?})", started.elapsed());
            match result {
                Ok(Ok(())) => None,
                Ok(Err(why)) => Some(format!("{name}: {why:.2000}")),
                Err(e) => Some(format!("{name}: PANICKED: {e}")),
            }
        })
        .buffer_unordered(4)
        .filter_map(std::future::ready)
        .collect()
        .await;
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
