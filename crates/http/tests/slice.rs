//! Sliced reads against an in-memory list: every record exactly once, dense
//! and empty windows, resumes from any checkpoint, the rate never exceeded,
//! concurrency sized by the budget.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use weft_core::{
    CancellationToken, MetricsSnapshot, ReadRequest, SourceEvent, StreamMetrics, StreamSpec,
    StreamState,
};
use weft_http::{
    Budget, BudgetKey, Limits, Order, SliceError, SlicePage, SliceSettings, SliceState, SlicedList,
    Window, read_sliced,
};

/// A list of records `{id, key}`, paged through windows of `key` the way
/// Stripe pages (`after` = the last id), with a fixed latency per page.
struct FakeList {
    order: Order,
    /// (key, id), in list order.
    records: Vec<(i64, u64)>,
    page_size: usize,
    latency: Duration,
    budget: Arc<Budget>,
    /// When each page request was sent (after the budget let it go).
    sent: Mutex<Vec<Instant>>,
    /// Pages answered with records so far (each one page the read emits).
    answered: std::sync::atomic::AtomicUsize,
}

impl FakeList {
    fn new(
        order: Order,
        keys: &[i64],
        page_size: usize,
        latency: Duration,
        budget: Arc<Budget>,
    ) -> Self {
        let mut records: Vec<(i64, u64)> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (*k, i as u64))
            .collect();
        records.sort_unstable();
        if order == Order::Descending {
            records.reverse();
        }
        FakeList {
            order,
            records,
            page_size,
            latency,
            budget,
            sent: Mutex::new(Vec::new()),
            answered: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    fn requests(&self) -> usize {
        self.sent.lock().unwrap().len()
    }
}

#[async_trait::async_trait]
impl SlicedList for FakeList {
    type Error = String;

    fn order(&self) -> Order {
        self.order
    }

    async fn page(&self, window: Window, after: Option<&Value>) -> Result<SlicePage, String> {
        let permit = self.budget.acquire().await.map_err(|e| e.to_string())?;
        self.sent.lock().unwrap().push(Instant::now());
        let started = Instant::now();
        tokio::time::sleep(self.latency).await;
        self.budget.observe_latency(started.elapsed());
        drop(permit);
        let start = match after {
            None => 0,
            Some(id) => {
                let id = id.as_u64().ok_or("bad cursor")?;
                1 + self
                    .records
                    .iter()
                    .position(|(_, i)| *i == id)
                    .ok_or("unknown cursor")?
            }
        };
        let matching: Vec<&(i64, u64)> = self.records[start..]
            .iter()
            .filter(|(k, _)| window.contains(*k))
            .take(self.page_size + 1)
            .collect();
        let more = matching.len() > self.page_size;
        let records: Vec<(Option<i64>, Box<RawValue>)> = matching
            .iter()
            .take(self.page_size)
            .map(|(k, i)| {
                (
                    Some(*k),
                    RawValue::from_string(json!({"id": i, "key": k}).to_string()).unwrap(),
                )
            })
            .collect();
        if !records.is_empty() {
            self.answered
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        let next = if more {
            records
                .last()
                .map(|_| json!(matching[self.page_size - 1].1))
        } else {
            None
        };
        Ok(SlicePage {
            records,
            next,
            reached: None,
        })
    }
}

/// What one read emitted.
#[derive(Default)]
struct Read {
    /// Ids in emission order.
    ids: Vec<u64>,
    /// Each checkpoint's slice state, with how many ids came before it.
    checkpoints: Vec<(usize, SliceState)>,
    finished: Option<SliceState>,
    metrics: MetricsSnapshot,
}

/// Reads `state` from `list`; stops (as a crash would) after checkpoint `stop`.
async fn read(
    list: Arc<FakeList>,
    state: SliceState,
    max_in_flight: Option<usize>,
    stop: Option<usize>,
) -> Read {
    let metrics = Arc::new(StreamMetrics::default());
    let request = ReadRequest {
        spec: StreamSpec::new("things", arrow_schema::Schema::empty()),
        state: None,
        started_at: chrono::Utc::now(),
        metrics: Arc::clone(&metrics),
        cancel: CancellationToken::new(),
        max_in_flight,
    };
    let finished = Arc::new(Mutex::new(None));
    let out = Arc::clone(&finished);
    let budget = Arc::clone(&list.budget);
    let mut events = weft_core::spawn_events(move |tx| async move {
        let done = read_sliced(
            list.as_ref(),
            &budget,
            state,
            &SliceSettings::default(),
            &request,
            &tx,
            |left| StreamState(json!({"slices": left})),
        )
        .await;
        match done {
            Ok(done) => {
                *out.lock().unwrap() = Some(done);
                Ok(())
            }
            Err(SliceError::Source(e)) => Err(e.into()),
            Err(SliceError::Stopped) => Err("stopped".into()),
            Err(SliceError::Loop { cursor, .. }) => Err(format!("loop at {cursor}").into()),
        }
    });
    let mut r = Read::default();
    while let Some(event) = events.next().await {
        match event.unwrap() {
            SourceEvent::Page(page) => {
                for rec in page.records {
                    let v: Value = serde_json::from_str(rec.get()).unwrap();
                    r.ids.push(v["id"].as_u64().unwrap());
                }
            }
            SourceEvent::Checkpoint(s) => {
                let state = SliceState::from_value(s.0.get("slices")).unwrap().unwrap();
                r.checkpoints.push((r.ids.len(), state));
                if stop.is_some_and(|n| r.checkpoints.len() >= n) {
                    break;
                }
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    drop(events);
    r.finished = finished.lock().unwrap().take();
    r.metrics = metrics.snapshot();
    r
}

fn budget(rps: f64) -> Arc<Budget> {
    Arc::new(Budget::new(
        BudgetKey::new("fake", "acct"),
        Limits::per_second(rps),
    ))
}

/// `n` keys spread over `[lo, lo + span)` by a fixed LCG, with some repeats.
fn spread(n: usize, lo: i64, span: i64, seed: u64) -> Vec<i64> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            lo + ((x >> 33) as i64).rem_euclid(span)
        })
        .collect()
}

fn sorted(ids: &[u64]) -> Vec<u64> {
    let mut s = ids.to_vec();
    s.sort_unstable();
    s
}

const ALL: Window = Window {
    lo: 0,
    hi: i64::MAX,
};

#[tokio::test]
async fn a_sliced_read_emits_every_record_once_like_a_sequential_one() {
    for order in [Order::Descending, Order::Ascending] {
        let keys = spread(3_000, 1_000_000, 1_000_000, 7);
        let range = Window::new(1_000_000, 2_000_000);
        let fast = Arc::new(FakeList::new(
            order,
            &keys,
            50,
            Duration::from_millis(20),
            budget(400.0),
        ));
        let sliced = read(
            Arc::clone(&fast),
            SliceState::plan(range, i64::MAX),
            None,
            None,
        )
        .await;
        assert_eq!(sliced.ids.len(), 3_000, "{order:?}: each record once");
        assert_eq!(
            sorted(&sliced.ids),
            (0..3_000).collect::<Vec<_>>(),
            "{order:?}"
        );
        let done = sliced.finished.unwrap();
        assert!(done.is_done());
        assert_eq!(done.max_seen, keys.iter().copied().max());
        let m = sliced.metrics;
        assert!(
            m.slices_split >= 1 && m.slices_planned > 2,
            "{order:?}: {m:?}"
        );
        assert_eq!(m.slices_done, m.slices_planned, "{order:?}: {m:?}");
        // 400/s x ~20 ms: about 8 in flight.
        assert!(m.peak_in_flight >= 4, "{order:?}: {m:?}");

        let one = Arc::new(FakeList::new(
            order,
            &keys,
            50,
            Duration::ZERO,
            budget(10_000.0),
        ));
        let sequential = read(
            Arc::clone(&one),
            SliceState::plan(range, i64::MAX),
            Some(1),
            None,
        )
        .await;
        assert_eq!(sorted(&sequential.ids), sorted(&sliced.ids), "{order:?}");
        assert_eq!(sequential.metrics.peak_in_flight, 1);
        // 60 full pages; a slice split after `max_pages` may end on a short page.
        let planned = sequential.metrics.slices_planned as usize;
        assert!(
            one.requests() < 60 + planned,
            "{order:?}: {} requests",
            one.requests()
        );
    }
}

#[tokio::test]
async fn a_window_of_one_key_is_read_whole_and_empty_ranges_cost_one_request() {
    // Every record in one second: the window cannot split; exact count.
    let dense = Arc::new(FakeList::new(
        Order::Descending,
        &[42; 500],
        50,
        Duration::from_millis(5),
        budget(1_000.0),
    ));
    let r = read(
        Arc::clone(&dense),
        SliceState::plan(ALL, i64::MAX),
        None,
        None,
    )
    .await;
    assert_eq!(sorted(&r.ids), (0..500).collect::<Vec<_>>());
    // Ten pages of key 42; every window split off below it is empty: one request each.
    assert_eq!(dense.requests() as u64, 10 + r.metrics.slices_planned - 1);
    assert_eq!(r.finished.unwrap().max_seen, Some(42));
    // Two clusters far apart with nothing between: windows that find nothing
    // end after one request each.
    let mut keys = spread(400, 1_000, 100, 3);
    keys.extend(spread(400, 1_000_000_000, 100, 4));
    let gaps = Arc::new(FakeList::new(
        Order::Descending,
        &keys,
        50,
        Duration::from_millis(5),
        budget(1_000.0),
    ));
    let r = read(
        Arc::clone(&gaps),
        SliceState::plan(ALL, i64::MAX),
        None,
        None,
    )
    .await;
    assert_eq!(sorted(&r.ids), (0..800).collect::<Vec<_>>());
    let m = r.metrics;
    assert!(m.slices_planned > 2, "{m:?}");
    // 16 full pages, plus at most one request per other slice.
    assert!(
        gaps.requests() as u64 <= 16 + m.slices_planned,
        "{} requests, {m:?}",
        gaps.requests()
    );
    // An empty range: one request, nothing emitted.
    let none = Arc::new(FakeList::new(
        Order::Ascending,
        &keys,
        50,
        Duration::ZERO,
        budget(1_000.0),
    ));
    let r = read(
        Arc::clone(&none),
        SliceState::plan(Window::new(5_000, 6_000), i64::MAX),
        None,
        None,
    )
    .await;
    assert!(r.ids.is_empty());
    assert_eq!(none.requests(), 1);
    assert_eq!(r.finished.unwrap().max_seen, None);
}

#[tokio::test]
async fn resuming_from_any_checkpoint_loses_nothing_and_rereads_no_finished_slice() {
    for order in [Order::Descending, Order::Ascending] {
        let keys = spread(1_200, 0, 50_000, 11);
        let key_of: BTreeMap<u64, i64> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (i as u64, *k))
            .collect();
        let range = Window::new(0, 50_000);
        let full = read(
            Arc::new(FakeList::new(
                order,
                &keys,
                40,
                Duration::from_millis(2),
                budget(2_000.0),
            )),
            SliceState::plan(range, i64::MAX),
            None,
            None,
        )
        .await;
        let n = full.checkpoints.len();
        assert!(n > 10, "{order:?}: {n} checkpoints");
        for stop in [1, 2, n / 3, n / 2, n - 1] {
            let list = Arc::new(FakeList::new(
                order,
                &keys,
                40,
                Duration::from_millis(2),
                budget(2_000.0),
            ));
            let partial = read(
                Arc::clone(&list),
                SliceState::plan(range, i64::MAX),
                None,
                Some(stop),
            )
            .await;
            let (before, state) = partial.checkpoints.last().cloned().unwrap();
            let committed = &partial.ids[..before];
            // Through JSON, as the warehouse stores it.
            let state: SliceState =
                serde_json::from_value(serde_json::to_value(&state).unwrap()).unwrap();
            let resumed = read(Arc::clone(&list), state.clone(), None, None).await;
            let mut union = committed.to_vec();
            union.extend(&resumed.ids);
            union.sort_unstable();
            union.dedup();
            assert_eq!(union.len(), 1_200, "{order:?} stop {stop}: records lost");
            // A record committed before the stop is read again only when it
            // lies in a window left unfinished, at the key where it stopped.
            for id in committed.iter().filter(|id| resumed.ids.contains(id)) {
                let k = key_of[id];
                let at_edge = state.windows.iter().any(|w| match order {
                    Order::Descending => k == w.hi - 1,
                    Order::Ascending => k == w.lo,
                });
                assert!(
                    at_edge,
                    "{order:?} stop {stop}: id {id} (key {k}) re-read outside {:?}",
                    state.windows
                );
            }
            assert_eq!(
                resumed.finished.unwrap().max_seen,
                keys.iter().copied().max(),
                "{order:?}"
            );
        }
    }
}

#[tokio::test]
async fn the_rate_is_never_exceeded_and_readers_share_the_budget() {
    let keys = spread(1_000, 0, 1_000_000, 5);
    let shared = budget(50.0);
    let list = Arc::new(FakeList::new(
        Order::Descending,
        &keys,
        10,
        Duration::from_millis(60),
        Arc::clone(&shared),
    ));
    let r = read(
        Arc::clone(&list),
        SliceState::plan(ALL, i64::MAX),
        None,
        None,
    )
    .await;
    assert_eq!(r.ids.len(), 1_000);
    let mut sent = list.sent.lock().unwrap().clone();
    sent.sort_unstable();
    let busiest = (0..sent.len())
        .map(|i| {
            sent[i..]
                .iter()
                .take_while(|t| t.duration_since(sent[i]) < Duration::from_secs(1))
                .count()
        })
        .max()
        .unwrap();
    assert!(
        busiest <= 50,
        "{busiest} requests in one second under a 50/s budget"
    );
    // 50/s x 60 ms: three in flight fill the budget.
    assert!(r.metrics.peak_in_flight >= 3, "{:?}", r.metrics);

    // Little's law, then a fair share per reader.
    let b = budget(100.0);
    assert_eq!(b.in_flight_target(), 1, "no latency observed yet");
    b.observe_latency(Duration::from_millis(200));
    assert_eq!(b.in_flight_target(), 30, "100/s x 200 ms x 1.5 headroom");
    let one = b.join_reader();
    assert_eq!(one.in_flight(), 30);
    let two = b.join_reader();
    assert_eq!((one.in_flight(), two.in_flight()), (15, 15));
    drop(two);
    assert_eq!(one.in_flight(), 30);
    let capped = Arc::new(Budget::new(
        BudgetKey::new("fake", "mc"),
        Limits::per_second(100.0).with_max_concurrent(10),
    ));
    capped.observe_latency(Duration::from_millis(500));
    assert_eq!(
        capped.in_flight_target(),
        10,
        "the API's concurrency limit caps it"
    );
    let fast = budget(10_000.0);
    fast.observe_latency(Duration::from_millis(800));
    assert_eq!(
        fast.in_flight_target(),
        64,
        "never more than 64 in flight on one budget"
    );
}

/// A pipeline slower than the API: answers waiting to be taken count against
/// the requests in flight, so what is held never exceeds the in-flight target
/// plus the channel's two events and the page in hand.
#[tokio::test]
async fn a_slow_consumer_bounds_the_pages_held_by_the_in_flight_target() {
    let keys = spread(2_000, 0, 1_000_000, 11);
    let list = Arc::new(FakeList::new(
        Order::Descending,
        &keys,
        10,
        Duration::from_millis(5),
        budget(10_000.0),
    ));
    let request = ReadRequest {
        spec: StreamSpec::new("things", arrow_schema::Schema::empty()),
        state: None,
        started_at: chrono::Utc::now(),
        metrics: Arc::new(StreamMetrics::default()),
        cancel: CancellationToken::new(),
        max_in_flight: Some(8),
    };
    let reader = Arc::clone(&list);
    let mut events = weft_core::spawn_events(move |tx| async move {
        let budget = Arc::clone(&reader.budget);
        read_sliced(
            reader.as_ref(),
            &budget,
            SliceState::plan(ALL, i64::MAX),
            &SliceSettings::default(),
            &request,
            &tx,
            |left| StreamState(json!({"slices": left})),
        )
        .await
        .map(|_| ())
        .map_err(|e| format!("{e:?}").into())
    });
    let (mut ids, mut taken, mut held) = (Vec::new(), 0usize, 0usize);
    while let Some(event) = events.next().await {
        if let SourceEvent::Page(page) = event.unwrap() {
            taken += 1;
            let answered = list.answered.load(std::sync::atomic::Ordering::SeqCst);
            held = held.max(answered - taken + 1);
            for rec in page.records {
                let v: Value = serde_json::from_str(rec.get()).unwrap();
                ids.push(v["id"].as_u64().unwrap());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    assert_eq!(sorted(&ids), (0..2_000).collect::<Vec<u64>>());
    assert!(held >= 4, "the API is faster: pages wait ({held})");
    assert!(held <= 8 + 3, "{held} pages held with 8 in flight");
}

#[test]
fn saved_slices_are_versioned() {
    let s = SliceState::plan(Window::new(1, 9), 5);
    let v = serde_json::to_value(&s).unwrap();
    assert_eq!(
        v,
        json!({"v": 1, "windows": [{"lo": 1, "hi": 9}], "max_seen": null, "ceiling": 5})
    );
    assert_eq!(SliceState::from_value(Some(&v)).unwrap(), Some(s.clone()));
    assert_eq!(SliceState::from_value(None).unwrap(), None);
    let future = json!({"v": 2, "windows": [], "max_seen": null, "ceiling": 5});
    assert!(
        SliceState::from_value(Some(&future))
            .unwrap_err()
            .contains("version 2")
    );
    // The cursor of a finished read: the largest key, capped, never behind.
    let done = SliceState {
        windows: vec![],
        max_seen: Some(7),
        ..s
    };
    assert_eq!(done.cursor(None), Some(5));
    assert_eq!(done.cursor(Some(6)), Some(6));
    assert_eq!(
        SliceState {
            ceiling: 100,
            ..done
        }
        .cursor(Some(3)),
        Some(7)
    );
}

/// A list whose every page says "more after cursor 1".
struct Looping;

#[async_trait::async_trait]
impl SlicedList for Looping {
    type Error = String;

    fn order(&self) -> Order {
        Order::Descending
    }

    async fn page(&self, _: Window, _: Option<&Value>) -> Result<SlicePage, String> {
        let record = RawValue::from_string(r#"{"id": 1}"#.to_string()).unwrap();
        Ok(SlicePage {
            records: vec![(Some(5), record)],
            next: Some(json!("cur_1")),
            reached: None,
        })
    }
}

#[tokio::test]
async fn a_cursor_that_comes_back_ends_the_read_and_keyless_records_are_kept() {
    let request = ReadRequest {
        spec: StreamSpec::new("things", arrow_schema::Schema::empty()),
        state: None,
        started_at: chrono::Utc::now(),
        metrics: Arc::new(StreamMetrics::default()),
        cancel: CancellationToken::new(),
        max_in_flight: Some(1),
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    let done = read_sliced(
        &Looping,
        &budget(1_000.0),
        SliceState::plan(ALL, i64::MAX),
        &SliceSettings::default(),
        &request,
        &tx,
        |left| StreamState(json!({ "slices": left })),
    )
    .await;
    let Err(SliceError::Loop { cursor, window }) = done else {
        panic!("expected a loop, got {done:?}");
    };
    assert_eq!((cursor, window), (json!("cur_1"), ALL));
    // The first page's record went out before the loop was seen.
    assert!(matches!(rx.recv().await, Some(Ok(SourceEvent::Page(p))) if p.records.len() == 1));
}

/// One page: a record without a key, then one with key 5.
struct Keyless;

#[async_trait::async_trait]
impl SlicedList for Keyless {
    type Error = String;

    fn order(&self) -> Order {
        Order::Descending
    }

    async fn page(&self, _: Window, _: Option<&Value>) -> Result<SlicePage, String> {
        let raw = |t: &str| RawValue::from_string(t.to_string()).unwrap();
        Ok(SlicePage {
            records: vec![(None, raw(r#"{"id": 0}"#)), (Some(5), raw(r#"{"id": 1}"#))],
            next: None,
            reached: None,
        })
    }
}

#[tokio::test]
async fn a_record_without_a_key_is_emitted_by_the_slice_that_read_it() {
    let request = ReadRequest {
        spec: StreamSpec::new("things", arrow_schema::Schema::empty()),
        state: None,
        started_at: chrono::Utc::now(),
        metrics: Arc::new(StreamMetrics::default()),
        cancel: CancellationToken::new(),
        max_in_flight: None,
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    let done = read_sliced(
        &Keyless,
        &budget(1_000.0),
        SliceState::plan(ALL, i64::MAX),
        &SliceSettings::default(),
        &request,
        &tx,
        |left| StreamState(json!({ "slices": left })),
    )
    .await
    .unwrap();
    assert_eq!(done.max_seen, Some(5));
    let Some(Ok(SourceEvent::Page(page))) = rx.recv().await else {
        panic!("no page");
    };
    assert_eq!(page.records.len(), 2);
}
