//! Shared rate budgets: clients of one account never exceed it together; 429 pauses everyone.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::fast_settings;
use serde_json::json;
use url::Url;
use weft_core::StreamMetrics;
use weft_http::{BudgetKey, BudgetRegistry, HttpClient, HttpError, Limits, RequestSpec};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

/// Records the arrival time of every request.
fn recording(
    times: Arc<Mutex<Vec<Instant>>>,
) -> impl Fn(&Request) -> ResponseTemplate + Send + Sync {
    move |_: &Request| {
        times.lock().unwrap().push(Instant::now());
        ResponseTemplate::new(200).set_body_json(json!({}))
    }
}

/// Most requests seen in any window of `window` starting at a request.
fn max_in_window(times: &[Instant], window: Duration) -> usize {
    let mut t = times.to_vec();
    t.sort();
    (0..t.len())
        .map(|i| t[i..].iter().take_while(|x| **x - t[i] < window).count())
        .max()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_sharing_a_budget_never_exceed_it() {
    let server = MockServer::start().await;
    let times = Arc::new(Mutex::new(Vec::new()));
    Mock::given(wiremock::matchers::method("GET"))
        .respond_with(recording(times.clone()))
        .mount(&server)
        .await;
    let registry = BudgetRegistry::new();
    let key = BudgetKey::new("stripe", "acct_shared");
    let a = registry.budget(key.clone(), Limits::per_second(20.0));
    let b = registry.budget(key, Limits::per_second(1000.0));
    assert!(Arc::ptr_eq(&a, &b));
    let base = Url::parse(&server.uri()).unwrap();
    let clients = [
        HttpClient::builder("stripe", base.clone())
            .budget(a)
            .build()
            .unwrap(),
        HttpClient::builder("stripe", base)
            .budget(b)
            .build()
            .unwrap(),
    ];
    let metrics = Arc::new(StreamMetrics::default());
    let deadline = Instant::now() + Duration::from_millis(1500);
    let mut tasks = Vec::new();
    for c in &clients {
        for _ in 0..4 {
            let (c, m) = (c.clone(), metrics.clone());
            tasks.push(tokio::spawn(async move {
                let mut n = 0u32;
                while Instant::now() < deadline {
                    c.send(&RequestSpec::get("x"), &m).await.unwrap();
                    n += 1;
                }
                n
            }));
        }
    }
    let mut sent = 0;
    for t in tasks {
        sent += t.await.unwrap();
    }
    let times = times.lock().unwrap().clone();
    assert_eq!(times.len(), sent as usize);
    // 20/s with a burst of 1: any one-second window holds at most 21 requests
    // (+1 for arrival jitter at the server).
    let max = max_in_window(&times, Duration::from_secs(1));
    assert!(
        max <= 22,
        "{max} requests in one second against a 20/s budget"
    );
    // Over the whole run: never more than rate * elapsed + burst (+1 jitter).
    let first = *times.iter().min().unwrap();
    let last = *times.iter().max().unwrap();
    let allowed = (20.0 * (last - first).as_secs_f64()).floor() as usize + 2;
    assert!(times.len() >= 25, "only {} requests", times.len());
    assert!(
        times.len() <= allowed,
        "{} requests in {:?}",
        times.len(),
        last - first
    );
    assert!(metrics.snapshot().wait_ms > 0);
}

#[tokio::test]
async fn a_429_pauses_every_client_of_the_budget() {
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::path("/limited"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(wiremock::matchers::method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .mount(&server)
        .await;
    let budget =
        BudgetRegistry::new().budget(BudgetKey::new("intercom", "ws"), Limits::unlimited());
    let base = Url::parse(&server.uri()).unwrap();
    let a = HttpClient::builder("intercom", base.clone())
        .settings(fast_settings())
        .budget(budget.clone())
        .build()
        .unwrap();
    let b = HttpClient::builder("intercom", base)
        .budget(budget.clone())
        .build()
        .unwrap();
    let ma = StreamMetrics::default();
    let mb = StreamMetrics::default();
    // a gets the 429 (and pauses the budget); b's next request must wait too.
    let (limited, other) = (RequestSpec::get("limited"), RequestSpec::get("other"));
    let (ra, rb) = tokio::join!(a.send(&limited, &ma), async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        b.send(&other, &mb).await
    });
    assert_eq!(ra.unwrap().status, 200);
    assert_eq!(rb.unwrap().status, 200);
    assert_eq!(ma.snapshot().rate_limited, 1);
    assert_eq!(mb.snapshot().rate_limited, 0);
    // b started 300 ms into a 1 s pause.
    assert!(
        mb.snapshot().wait_ms >= 500,
        "b waited {} ms",
        mb.snapshot().wait_ms
    );
}

#[tokio::test]
async fn ratelimit_remaining_zero_pauses_until_reset() {
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::method("GET"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("X-RateLimit-Limit", "10000")
                .insert_header("X-RateLimit-Remaining", "0")
                .insert_header("X-RateLimit-Reset", "1"),
        )
        .mount(&server)
        .await;
    let c = HttpClient::builder("intercom", Url::parse(&server.uri()).unwrap())
        .build()
        .unwrap();
    let m = StreamMetrics::default();
    c.send(&RequestSpec::get("a"), &m).await.unwrap();
    assert!(c.budget().paused_for().is_some());
    c.send(&RequestSpec::get("b"), &m).await.unwrap();
    assert!(
        m.snapshot().wait_ms >= 500,
        "waited {} ms",
        m.snapshot().wait_ms
    );
}

#[tokio::test]
async fn concurrency_limit_is_a_budget() {
    let server = MockServer::start().await;
    let seen = Arc::new(Mutex::new(0usize));
    let f = seen.clone();
    Mock::given(wiremock::matchers::method("GET"))
        .respond_with(move |_: &Request| {
            *f.lock().unwrap() += 1;
            ResponseTemplate::new(200).set_delay(Duration::from_millis(50))
        })
        .mount(&server)
        .await;
    // 3 slots, 12 requests of 50 ms each => at least 4 rounds.
    let budget =
        BudgetRegistry::new().budget(BudgetKey::new("mailchimp", "us1"), Limits::concurrent(3));
    let c = HttpClient::builder("mailchimp", Url::parse(&server.uri()).unwrap())
        .budget(budget)
        .build()
        .unwrap();
    let m = Arc::new(StreamMetrics::default());
    let start = Instant::now();
    let tasks: Vec<_> = (0..12)
        .map(|_| {
            let (c, m) = (c.clone(), m.clone());
            tokio::spawn(async move { c.send(&RequestSpec::get("x"), &m).await.unwrap().status })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    assert!(
        start.elapsed() >= Duration::from_millis(200),
        "12 requests of 50 ms through 3 slots took {:?}",
        start.elapsed()
    );
    assert_eq!(*seen.lock().unwrap(), 12);
    assert!(m.snapshot().wait_ms > 0);
}

#[tokio::test]
async fn daily_quota_stops_before_headroom() {
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::method("GET"))
        .respond_with(
            ResponseTemplate::new(200).insert_header("Sforce-Limit-Info", "api-usage=89/100"),
        )
        .mount(&server)
        .await;
    let budget = BudgetRegistry::new().budget(
        BudgetKey::new("salesforce", "org"),
        Limits::unlimited().with_daily_quota(100, 0.1),
    );
    let c = HttpClient::builder("salesforce", Url::parse(&server.uri()).unwrap())
        .budget(budget)
        .build()
        .unwrap();
    let m = StreamMetrics::default();
    c.send(&RequestSpec::get("a"), &m).await.unwrap();
    assert_eq!(c.budget().quota_used(), 89);
    c.send(&RequestSpec::get("b"), &m).await.unwrap();
    // The API reports 89 again; local counting would have said 90. Salesforce's number wins.
    assert_eq!(c.budget().quota_used(), 89);
    c.budget().record_requests(1);
    let err = c.send(&RequestSpec::get("c"), &m).await.unwrap_err();
    assert!(err.is_quota_reached());
    assert!(!err.is_retryable());
    assert!(matches!(
        &err,
        HttpError::QuotaReached(weft_core::QuotaReached {
            used: 90,
            quota: 100,
            ..
        })
    ));
    // The pipeline recognises it by type through the error's source chain.
    assert!(weft_core::QuotaReached::in_chain(&err).is_some());
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}
