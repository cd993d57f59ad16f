//! Every pagination style, with 1,050 items where cheap, and loop detection.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use futures::TryStreamExt;
use serde_json::{Value, json};
use url::Url;
use weft_core::StreamMetrics;
use weft_http::{CursorFrom, HttpClient, HttpError, Page, Pagination, RequestSpec, paginate};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const N: usize = 1050;

fn id(i: usize) -> String {
    format!("obj_{i:04}")
}

fn item(i: usize) -> Value {
    json!({"id": id(i), "amount": 1.10, "n": i})
}

fn q(req: &Request, name: &str) -> Option<String> {
    req.url
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn client(uri: &str) -> HttpClient {
    HttpClient::builder("test", Url::parse(uri).unwrap())
        .build()
        .unwrap()
}

async fn collect(
    c: HttpClient,
    first: RequestSpec,
    style: Pagination,
) -> Result<Vec<Page>, HttpError> {
    paginate(c, first, style, Arc::new(StreamMetrics::default()))
        .try_collect()
        .await
}

fn ids(pages: &[Page]) -> Vec<String> {
    pages
        .iter()
        .flat_map(|p| p.records.iter())
        .map(|r| {
            serde_json::from_str::<Value>(r.get()).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

fn expected_ids() -> Vec<String> {
    (0..N).map(id).collect()
}

/// Start index and limit from a Stripe-style request.
fn slice(start: usize, limit: usize) -> (Vec<Value>, bool) {
    let end = (start + limit).min(N);
    ((start..end).map(item).collect(), end < N)
}

fn index_after(cursor: Option<String>) -> usize {
    cursor.map_or(0, |c| {
        c.trim_start_matches("obj_").parse::<usize>().unwrap() + 1
    })
}

#[tokio::test]
async fn stripe_body_cursor() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/customers"))
        .respond_with(|req: &Request| {
            let limit: usize = q(req, "limit").unwrap().parse().unwrap();
            let (data, has_more) = slice(index_after(q(req, "starting_after")), limit);
            ResponseTemplate::new(200).set_body_json(json!({"object": "list", "url": "/v1/customers", "has_more": has_more, "data": data}))
        })
        .mount(&server)
        .await;
    let style = Pagination::BodyCursor {
        items: "/data".into(),
        has_more: Some("/has_more".into()),
        param: "starting_after".into(),
        cursor_from: CursorFrom::LastItemField("id".into()),
    };
    let metrics = Arc::new(StreamMetrics::default());
    let pages: Vec<Page> = paginate(
        client(&format!("{}/v1", server.uri())),
        RequestSpec::get("customers").query("limit", "100"),
        style,
        metrics.clone(),
    )
    .try_collect()
    .await
    .unwrap();
    assert_eq!(pages.len(), 11);
    assert_eq!(
        pages.iter().map(|p| p.number).collect::<Vec<_>>(),
        (1..=11).collect::<Vec<_>>()
    );
    assert_eq!(ids(&pages), expected_ids());
    assert_eq!(pages[0].next_cursor.as_deref(), Some("obj_0099"));
    assert_eq!(pages[10].next_cursor, None);
    assert_eq!(pages[10].records.len(), 50);
    assert_eq!(pages[0].body_fields["object"], json!("list"));
    assert!(!pages[0].body_fields.contains_key("data"));
    // Raw records keep the exact JSON text.
    assert_eq!(
        pages[0].records[0].get(),
        r#"{"amount":1.1,"id":"obj_0000","n":0}"#
    );
    assert_eq!(metrics.snapshot().requests, 11);
    let reqs = server.received_requests().await.unwrap();
    assert_eq!(q(&reqs[1], "starting_after").as_deref(), Some("obj_0099"));
    assert!(reqs.iter().all(|r| q(r, "limit").as_deref() == Some("100")));
    assert_eq!(
        reqs[1]
            .url
            .query_pairs()
            .filter(|(k, _)| k == "starting_after")
            .count(),
        1
    );
}

#[tokio::test]
async fn intercom_cursor_from_pointer() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(|req: &Request| {
            let start =
                q(req, "starting_after").map_or(0, |c| c.trim_start_matches("c").parse().unwrap());
            let (data, more) = slice(start, 150);
            let pages = if more {
                json!({"next": {"starting_after": format!("c{}", start + 150)}})
            } else {
                json!({"next": null})
            };
            ResponseTemplate::new(200)
                .set_body_json(json!({"type": "list", "data": data, "pages": pages}))
        })
        .mount(&server)
        .await;
    let style = Pagination::BodyCursor {
        items: "/data".into(),
        has_more: None,
        param: "starting_after".into(),
        cursor_from: CursorFrom::Pointer("/pages/next/starting_after".into()),
    };
    let pages = collect(
        client(&server.uri()),
        RequestSpec::get("contacts").query("per_page", "150"),
        style,
    )
    .await
    .unwrap();
    assert_eq!(pages.len(), 7);
    assert_eq!(ids(&pages), expected_ids());
    assert_eq!(pages[0].next_cursor.as_deref(), Some("c150"));
}

#[tokio::test]
async fn zendesk_next_url_with_end_of_stream() {
    let server = MockServer::start().await;
    let uri = server.uri();
    Mock::given(method("GET"))
        .and(path("/api/v2/incremental/tickets/cursor.json"))
        .respond_with(move |req: &Request| {
            let start: usize = q(req, "cursor").map_or(0, |c| c.parse().unwrap());
            let (data, more) = slice(start, 100);
            let after_url = format!(
                "{uri}/api/v2/incremental/tickets/cursor.json?cursor={}",
                start + 100
            );
            ResponseTemplate::new(200).set_body_json(
                json!({"tickets": data, "after_url": after_url, "end_of_stream": !more}),
            )
        })
        .mount(&server)
        .await;
    let style = Pagination::NextUrl {
        items: "/tickets".into(),
        next_url: "/after_url".into(),
        end_flag: Some("/end_of_stream".into()),
    };
    let first = RequestSpec::get("incremental/tickets/cursor.json").query("start_time", "0");
    let pages = collect(client(&format!("{}/api/v2", server.uri())), first, style)
        .await
        .unwrap();
    assert_eq!(pages.len(), 11);
    assert_eq!(ids(&pages), expected_ids());
    assert_eq!(pages[10].next_cursor, None);
    assert_eq!(pages[10].body_fields["end_of_stream"], json!(true));
    let reqs = server.received_requests().await.unwrap();
    // The next URL carries its own query; the first page's start_time is not repeated.
    assert_eq!(q(&reqs[1], "start_time"), None);
    assert_eq!(q(&reqs[1], "cursor").as_deref(), Some("100"));
}

#[tokio::test]
async fn salesforce_relative_next_records_url() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(|req: &Request| {
            let p = req.url.path();
            let start: usize = match p.rsplit_once('-') {
                Some((_, n)) if p.contains("/query/01g") => n.parse().unwrap(),
                _ => 0,
            };
            let (data, more) = slice(start, 500);
            let mut body = json!({"totalSize": N, "done": !more, "records": data});
            if more {
                body["nextRecordsUrl"] =
                    json!(format!("/services/data/v60.0/query/01gxx-{}", start + 500));
            }
            ResponseTemplate::new(200).set_body_json(body)
        })
        .mount(&server)
        .await;
    let style = Pagination::NextUrl {
        items: "/records".into(),
        next_url: "/nextRecordsUrl".into(),
        end_flag: None,
    };
    let first = RequestSpec::get("query").query("q", "SELECT Id FROM Account");
    let pages = collect(
        client(&format!("{}/services/data/v60.0", server.uri())),
        first,
        style,
    )
    .await
    .unwrap();
    assert_eq!(pages.len(), 3);
    assert_eq!(ids(&pages), expected_ids());
    let paths: Vec<String> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| r.url.path().to_string())
        .collect();
    assert_eq!(
        paths,
        [
            "/services/data/v60.0/query",
            "/services/data/v60.0/query/01gxx-500",
            "/services/data/v60.0/query/01gxx-1000"
        ]
    );
}

#[tokio::test]
async fn zoom_page_token() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(|req: &Request| {
            let start: usize = q(req, "next_page_token")
                .map_or(0, |t| t.trim_start_matches("tok").parse().unwrap());
            let (data, more) = slice(start, 300);
            let token = if more {
                format!("tok{}", start + 300)
            } else {
                String::new()
            };
            ResponseTemplate::new(200)
                .set_body_json(json!({"page_size": 300, "next_page_token": token, "users": data}))
        })
        .mount(&server)
        .await;
    let style = Pagination::PageToken {
        items: "/users".into(),
        token: "/next_page_token".into(),
        param: "next_page_token".into(),
    };
    let pages = collect(
        client(&server.uri()),
        RequestSpec::get("users").query("page_size", "300"),
        style,
    )
    .await
    .unwrap();
    assert_eq!(pages.len(), 4);
    assert_eq!(ids(&pages), expected_ids());
    assert_eq!(pages[3].next_cursor, None);
}

#[tokio::test]
async fn mailchimp_offset_with_total() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(|req: &Request| {
            let offset: usize = q(req, "offset").unwrap().parse().unwrap();
            let count: usize = q(req, "count").unwrap().parse().unwrap();
            let (data, _) = slice(offset, count);
            ResponseTemplate::new(200).set_body_json(json!({"members": data, "total_items": N}))
        })
        .mount(&server)
        .await;
    let style = Pagination::Offset {
        items: "/members".into(),
        offset_param: "offset".into(),
        count_param: "count".into(),
        page_size: 1000,
        total: Some("/total_items".into()),
    };
    let pages = collect(
        client(&server.uri()),
        RequestSpec::get("lists/l1/members"),
        style,
    )
    .await
    .unwrap();
    assert_eq!(pages.len(), 2);
    assert_eq!(ids(&pages), expected_ids());
    assert_eq!(pages[0].next_cursor.as_deref(), Some("1000"));
    let offsets: Vec<Option<String>> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| q(r, "offset"))
        .collect();
    assert_eq!(offsets, [Some("0".to_string()), Some("1000".to_string())]);
}

#[tokio::test]
async fn offset_without_total_stops_on_a_short_page() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(|req: &Request| {
            let offset: usize = q(req, "offset").unwrap().parse().unwrap();
            let (data, _) = slice(offset, 500);
            ResponseTemplate::new(200).set_body_json(json!({"members": data}))
        })
        .mount(&server)
        .await;
    let style = Pagination::Offset {
        items: "/members".into(),
        offset_param: "offset".into(),
        count_param: "count".into(),
        page_size: 500,
        total: None,
    };
    let pages = collect(client(&server.uri()), RequestSpec::get("m"), style)
        .await
        .unwrap();
    assert_eq!(
        pages.iter().map(|p| p.records.len()).collect::<Vec<_>>(),
        [500, 500, 50]
    );
}

#[tokio::test]
async fn link_header_rel_next() {
    let server = MockServer::start().await;
    let uri = server.uri();
    Mock::given(method("GET"))
        .respond_with(move |req: &Request| {
            let page: usize = q(req, "page").map_or(0, |p| p.parse().unwrap());
            let (data, more) = slice(page * 350, 350);
            let mut t = ResponseTemplate::new(200).set_body_json(Value::Array(data));
            if more {
                t = t.insert_header(
                    "Link",
                    format!(
                        "<{uri}/items?page={}>; rel=\"next\", <{uri}/items?page=0>; rel=\"first\"",
                        page + 1
                    )
                    .as_str(),
                );
            }
            t
        })
        .mount(&server)
        .await;
    let pages = collect(
        client(&server.uri()),
        RequestSpec::get("items"),
        Pagination::LinkHeader {
            items: String::new(),
        },
    )
    .await
    .unwrap();
    assert_eq!(pages.len(), 3);
    assert_eq!(ids(&pages), expected_ids());
}

#[tokio::test]
async fn repeating_cursor_is_a_pagination_loop() {
    let server = MockServer::start().await;
    // A broken API: always the same page with has_more = true.
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"has_more": true, "data": [item(1), item(2)]})),
        )
        .mount(&server)
        .await;
    let style = Pagination::BodyCursor {
        items: "/data".into(),
        has_more: Some("/has_more".into()),
        param: "starting_after".into(),
        cursor_from: CursorFrom::LastItemField("id".into()),
    };
    let mut stream = paginate(
        client(&server.uri()),
        RequestSpec::get("x"),
        style,
        Arc::new(StreamMetrics::default()),
    );
    let p1 = stream.try_next().await.unwrap().unwrap();
    assert_eq!(p1.next_cursor.as_deref(), Some("obj_0002"));
    let err = stream.try_next().await.unwrap_err();
    let HttpError::PaginationLoop { cursor, url } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(cursor, "obj_0002");
    assert!(url.ends_with("/x?starting_after=obj_0002"), "{url}");
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn repeating_next_url_and_token_are_loops() {
    let server = MockServer::start().await;
    let uri = server.uri();
    Mock::given(method("GET"))
        .and(path("/url"))
        .respond_with(move |_: &Request| {
            ResponseTemplate::new(200)
                .set_body_json(json!({"items": [item(0)], "next": format!("{uri}/url?page=2")}))
        })
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/token"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"items": [item(0)], "next_page_token": "same"})),
        )
        .mount(&server)
        .await;
    let err = collect(
        client(&server.uri()),
        RequestSpec::get("url"),
        Pagination::NextUrl {
            items: "/items".into(),
            next_url: "/next".into(),
            end_flag: None,
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(err, HttpError::PaginationLoop { .. }), "{err:?}");
    let err = collect(
        client(&server.uri()),
        RequestSpec::get("token"),
        Pagination::PageToken {
            items: "/items".into(),
            token: "/next_page_token".into(),
            param: "next_page_token".into(),
        },
    )
    .await
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "pagination loop at {}/token?next_page_token=same: cursor same was already seen",
            server.uri()
        )
    );
}

#[tokio::test]
async fn has_more_without_a_cursor_is_an_error() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"has_more": true, "data": []})),
        )
        .mount(&server)
        .await;
    let style = Pagination::BodyCursor {
        items: "/data".into(),
        has_more: Some("/has_more".into()),
        param: "starting_after".into(),
        cursor_from: CursorFrom::LastItemField("id".into()),
    };
    let err = collect(client(&server.uri()), RequestSpec::get("x"), style)
        .await
        .unwrap_err();
    assert!(matches!(err, HttpError::Decode { .. }), "{err:?}");
}

#[tokio::test]
async fn json_body_cursor_pages_a_search() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/contacts/search"))
        .respond_with(|req: &Request| {
            let body: Value = serde_json::from_slice(&req.body).unwrap();
            // The query is kept on every page; only the cursor changes.
            assert_eq!(body["query"]["field"], "updated_at");
            assert_eq!(body["pagination"]["per_page"], 150);
            let start = body["pagination"]["starting_after"]
                .as_str()
                .map_or(0, |c| c.trim_start_matches('c').parse().unwrap());
            let (data, more) = slice(start, 150);
            let pages = if more {
                json!({"next": {"starting_after": format!("c{}", start + 150)}})
            } else {
                json!({})
            };
            ResponseTemplate::new(200)
                .set_body_json(json!({"type": "list", "data": data, "pages": pages}))
        })
        .expect(7)
        .mount(&server)
        .await;
    let first = RequestSpec::post_json(
        "contacts/search",
        json!({"query": {"field": "updated_at", "operator": ">", "value": 0},
               "pagination": {"per_page": 150}}),
    )
    .idempotent(true);
    let style = Pagination::JsonBodyCursor {
        items: "/data".into(),
        cursor: "/pages/next/starting_after".into(),
        body_field: "/pagination/starting_after".into(),
    };
    let pages = collect(client(&server.uri()), first, style).await.unwrap();
    assert_eq!(pages.len(), 7);
    assert_eq!(ids(&pages), expected_ids());
    assert_eq!(pages[5].next_cursor.as_deref(), Some("c900"));
    assert_eq!(pages[6].next_cursor, None);
}

#[tokio::test]
async fn scroll_repeats_its_id_until_an_empty_page() {
    let server = MockServer::start().await;
    // The position lives server-side, as in a real scroll.
    let position = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let pos = Arc::clone(&position);
    Mock::given(method("GET"))
        .and(path("/companies/scroll"))
        .respond_with(move |req: &Request| {
            if let Some(p) = q(req, "scroll_param") {
                assert_eq!(p, "scroll-1");
            }
            let start = pos.fetch_add(500, std::sync::atomic::Ordering::SeqCst);
            let (data, _) = if start < N {
                slice(start, 500)
            } else {
                (vec![], false)
            };
            ResponseTemplate::new(200).set_body_json(
                json!({"type": "list", "data": data, "pages": null, "scroll_param": "scroll-1"}),
            )
        })
        .mount(&server)
        .await;
    let style = Pagination::Scroll {
        items: "/data".into(),
        scroll_id: "/scroll_param".into(),
        param: "scroll_param".into(),
    };
    let pages = collect(
        client(&server.uri()),
        RequestSpec::get("companies/scroll"),
        style,
    )
    .await
    .unwrap();
    // 500 + 500 + 50, then the empty page that ends it; the repeated id is no loop.
    let sizes: Vec<usize> = pages.iter().map(|p| p.records.len()).collect();
    assert_eq!(sizes, [500, 500, 50, 0]);
    assert_eq!(ids(&pages), expected_ids());
    assert_eq!(pages[2].next_cursor.as_deref(), Some("scroll-1"));
    assert_eq!(pages[3].next_cursor, None);
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 4);
    assert_eq!(q(&requests[0], "scroll_param"), None);
    assert_eq!(q(&requests[3], "scroll_param").as_deref(), Some("scroll-1"));
}

#[tokio::test]
async fn page_numbers_stop_at_total_pages_or_an_empty_page() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/companies"))
        .respond_with(|req: &Request| {
            let page: usize = q(req, "page").map_or(1, |p| p.parse().unwrap());
            let per: usize = q(req, "per_page").unwrap().parse().unwrap();
            let (data, _) = slice((page - 1) * per, per);
            ResponseTemplate::new(200).set_body_json(json!({
                "type": "list", "data": data,
                "pages": {"page": page, "per_page": per, "total_pages": N.div_ceil(per)},
            }))
        })
        .mount(&server)
        .await;
    let with_total = Pagination::PageNumber {
        items: "/data".into(),
        param: "page".into(),
        first_page: 1,
        total_pages: Some("/pages/total_pages".into()),
    };
    let pages = collect(
        client(&server.uri()),
        RequestSpec::get("companies").query("per_page", "60"),
        with_total,
    )
    .await
    .unwrap();
    assert_eq!(pages.len(), 18);
    assert_eq!(ids(&pages), expected_ids());
    assert_eq!(pages[0].next_cursor.as_deref(), Some("2"));
    // Without a total, one empty page more.
    let until_empty = Pagination::PageNumber {
        items: "/data".into(),
        param: "page".into(),
        first_page: 1,
        total_pages: None,
    };
    let pages = collect(
        client(&server.uri()),
        RequestSpec::get("companies").query("per_page", "525"),
        until_empty,
    )
    .await
    .unwrap();
    assert_eq!(pages.len(), 3);
    assert_eq!(pages[2].records.len(), 0);
    assert_eq!(ids(&pages), expected_ids());
}
