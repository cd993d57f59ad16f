//! Sliced reads: one stream read as windows of its key, concurrently, inside
//! the account's rate budget, with checkpoints that stay exact.
//!
//! A connector says how one window is listed ([`SlicedList`]: the records
//! whose key, e.g. `created`, is in `[lo, hi)`, page by page); [`read_sliced`]
//! does the rest, the same for every connector:
//!
//! - **Plan and split.** The read starts from the windows of a
//!   [`SliceState`] (one window for a new read). After each page, when the
//!   budget could take more requests than there are slices in flight, the
//!   slice splits its unread remainder: it keeps the part next to where it
//!   is, and the rest becomes new windows, narrow near the data just seen and
//!   doubling in width away from it (sized from the keys per page observed),
//!   so a first backfill fans out in one step and a dense window splits again
//!   later. A slice that has read [`SliceSettings::max_pages`] pages splits
//!   even without spare capacity; a window of one key value cannot split.
//! - **Concurrency from the budget.** Requests in flight follow
//!   [`ReaderShare::in_flight`]: rate x observed latency (Little's law),
//!   capped by the API's concurrency limit and shared fairly by every sliced
//!   reader on the account; the budget's limiter still spaces every request.
//!   Pages answered but not yet taken by the pipeline count against that
//!   target too, so a pipeline slower than the API holds at most the
//!   target's worth of pages, never the target plus a queue.
//! - **Exactly once.** Each slice emits only records whose key lies in its
//!   window, so the windows partition the range and a split never hands a
//!   record to two slices. After every page the checkpoint's
//!   [`SliceState`] lists what is left: each unfinished window narrowed to
//!   its unread part (a resumed window re-reads only records sharing the key
//!   it stopped at; loads merge by key), finished windows gone, with the
//!   largest key emitted and the cursor's ceiling.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use weft_core::{EventSender, JsonPage, ReadRequest, SourceEvent, StreamState, Watermark};

use crate::budget::{Budget, ReaderShare};

/// Which way a list pages through a window of its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Largest key first (Stripe lists, newest first).
    Descending,
    /// Smallest key first (searches sorted ascending, time-based exports).
    Ascending,
}

/// A half-open range `[lo, hi)` of a stream's slicing key, in the key's unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Window {
    /// Smallest key inside.
    pub lo: i64,
    /// First key past the end (`i64::MAX`: open-ended).
    pub hi: i64,
}

impl Window {
    /// `[lo, hi)`.
    pub fn new(lo: i64, hi: i64) -> Self {
        Window { lo, hi }
    }

    /// Whether `key` lies inside.
    pub fn contains(&self, key: i64) -> bool {
        self.lo <= key && key < self.hi
    }

    fn is_empty(&self) -> bool {
        self.lo >= self.hi
    }
}

/// One page of a window: each record with its slicing key, in API order, and
/// what fetches the next page (`None` on the window's last page).
#[derive(Debug, Default)]
pub struct SlicePage {
    /// The records, raw JSON, each with its key. A record whose key cannot be
    /// read (`None`) is emitted by the slice that fetched it and moves nothing
    /// (the pipeline's decoder quarantines it if the key is a declared column).
    pub records: Vec<(Option<i64>, Box<RawValue>)>,
    /// The cursor of the next page of the same window.
    pub next: Option<serde_json::Value>,
    /// The key the page listed up to when its records are not the listed
    /// objects themselves (the children of listed parents, keyed by their
    /// parent's key): it moves the slice even when no child came back, and
    /// a page without records but with a `reached` and a `next` is not the
    /// window's end. `None`: the records' own keys say it.
    pub reached: Option<i64>,
}

/// How a connector lists one window of a stream.
#[async_trait::async_trait]
pub trait SlicedList: Send + Sync {
    /// What a failed page ends the read with.
    type Error: Send;

    /// Which way pages move through a window.
    fn order(&self) -> Order;

    /// The step of the keys the API filters on, in key units: windows are
    /// only cut at its multiples. Keys in milliseconds on an API whose
    /// timestamps and filters have whole seconds (Salesforce) say 1,000, so
    /// a cut never falls inside a second the server cannot split. Default 1.
    fn granularity(&self) -> i64 {
        1
    }

    /// One page of the records whose key is in `window`, continuing after
    /// `after` (a `next` this window returned; `None` = its first page).
    /// Records outside the window may come back; they are dropped.
    async fn page(
        &self,
        window: Window,
        after: Option<&serde_json::Value>,
    ) -> Result<SlicePage, Self::Error>;
}

/// The version of [`SliceState`] written now.
pub const SLICE_STATE_VERSION: u32 = 1;

/// What is left of a sliced read: saved in the stream's state at every
/// checkpoint, so a stopped read resumes without re-reading finished slices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SliceState {
    /// Format version ([`SLICE_STATE_VERSION`]).
    pub v: u32,
    /// The windows not read yet, each narrowed to its unread part.
    pub windows: Vec<Window>,
    /// The largest key emitted so far (across runs of this read).
    pub max_seen: Option<i64>,
    /// The cursor's ceiling, fixed when the read was planned (its extraction
    /// start less the settle delay): the finished read's cursor never passes it.
    pub ceiling: i64,
}

impl SliceState {
    /// A new read of `range`, its cursor capped at `ceiling`.
    pub fn plan(range: Window, ceiling: i64) -> Self {
        SliceState {
            v: SLICE_STATE_VERSION,
            windows: if range.is_empty() {
                vec![]
            } else {
                vec![range]
            },
            max_seen: None,
            ceiling,
        }
    }

    /// Reads a saved state (`None` when `value` is absent or null); an
    /// unknown version is an error naming it.
    pub fn from_value(value: Option<&serde_json::Value>) -> Result<Option<Self>, String> {
        let Some(value) = value.filter(|v| !v.is_null()) else {
            return Ok(None);
        };
        let state: SliceState = serde_json::from_value(value.clone())
            .map_err(|e| format!("saved slices are not readable: {e}"))?;
        if state.v != SLICE_STATE_VERSION {
            return Err(format!(
                "saved slices have version {}, this weft reads version {SLICE_STATE_VERSION}",
                state.v
            ));
        }
        Ok(Some(state))
    }

    /// Whether every window has been read.
    pub fn is_done(&self) -> bool {
        self.windows.is_empty()
    }

    /// The cursor once the read is done: the largest key emitted, capped at
    /// the ceiling, never behind `previous`.
    pub fn cursor(&self, previous: Option<i64>) -> Option<i64> {
        let mut w = Watermark::new(previous, self.ceiling, 0);
        if let Some(m) = self.max_seen {
            w.observe(m);
        }
        w.value()
    }
}

/// What a user tunes about sliced reads (a connector's `slices` config).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SliceSettings {
    /// Read large windows in concurrent slices (`false`: one request at a time).
    pub enabled: bool,
    /// A slice that has read this many pages splits its remainder even when
    /// the budget has no spare capacity.
    pub max_pages: u32,
}

impl Default for SliceSettings {
    fn default() -> Self {
        SliceSettings {
            enabled: true,
            max_pages: 50,
        }
    }
}

/// Why a sliced read stopped early.
#[derive(Debug)]
pub enum SliceError<E> {
    /// A page failed.
    Source(E),
    /// The run was cancelled or the pipeline stopped listening.
    Stopped,
    /// A window's pagination handed back a cursor it had already given.
    Loop {
        /// The window being paged.
        window: Window,
        /// The cursor that came back.
        cursor: serde_json::Value,
    },
}

/// One slice being read.
#[derive(Debug)]
struct Slice {
    window: Window,
    /// The next page's cursor; `None` before the first page.
    after: Option<serde_json::Value>,
    /// The key the read has reached (smallest seen descending, largest ascending).
    reached: Option<i64>,
    /// The key at the other end of what this slice has read.
    start: Option<i64>,
    pages: u32,
    busy: bool,
    /// Every cursor this slice's pagination has handed out.
    seen: HashSet<String>,
}

impl Slice {
    fn new(window: Window) -> Self {
        Slice {
            window,
            after: None,
            reached: None,
            start: None,
            pages: 0,
            busy: false,
            seen: HashSet::new(),
        }
    }

    /// What is left to read: the window narrowed to the key reached.
    fn unread(&self, order: Order) -> Window {
        match (order, self.reached) {
            (_, None) => self.window,
            (Order::Descending, Some(r)) => {
                Window::new(self.window.lo, self.window.hi.min(r.saturating_add(1)))
            }
            (Order::Ascending, Some(r)) => Window::new(self.window.lo.max(r), self.window.hi),
        }
    }
}

type PageFuture<'a, E> = Pin<Box<dyn Future<Output = (usize, Result<SlicePage, E>)> + Send + 'a>>;

/// Reads every window of `state` concurrently (see the module docs), sending
/// pages and checkpoints to `tx`; `checkpoint` turns the slices left into the
/// stream's state. Returns the finished state (no windows left; its
/// [`SliceState::cursor`] is the stream's new cursor).
pub async fn read_sliced<L, C>(
    list: &L,
    budget: &Arc<Budget>,
    state: SliceState,
    settings: &SliceSettings,
    request: &ReadRequest,
    tx: &EventSender,
    checkpoint: C,
) -> Result<SliceState, SliceError<L::Error>>
where
    L: SlicedList,
    C: Fn(&SliceState) -> StreamState,
{
    let order = list.order();
    let share = budget.join_reader();
    let metrics = &request.metrics;
    metrics.set_budget_rps(budget.rate().unwrap_or(0.0));
    metrics.add_slices_planned(state.windows.len() as u64);
    let mut read = SlicedRead {
        order,
        slices: state
            .windows
            .iter()
            .copied()
            .map(Slice::new)
            .map(Some)
            .collect(),
        max_seen: state.max_seen,
        ceiling: state.ceiling,
        max_pages: if settings.enabled {
            settings.max_pages.max(1)
        } else {
            u32::MAX
        },
        granularity: list.granularity(),
    };
    let mut flight: FuturesUnordered<PageFuture<'_, L::Error>> = FuturesUnordered::new();
    // Events waiting for room in the channel: the requests in flight keep
    // moving while the pipeline takes a page, instead of idling on the send.
    let mut out = Outbox::default();
    loop {
        let target = in_flight(&share, settings, request);
        for (id, slot) in read.slices.iter_mut().enumerate() {
            // Pages not yet taken count against what is fetched: answers
            // waiting plus requests in flight stay within the target, so a
            // pipeline slower than the API bounds memory instead of queueing.
            if flight.len() + out.pages >= target {
                break;
            }
            let Some(slice) = slot.as_mut().filter(|s| !s.busy) else {
                continue;
            };
            slice.busy = true;
            let window = slice.window;
            let after = slice.after.clone();
            flight.push(Box::pin(async move {
                (id, list.page(window, after.as_ref()).await)
            }));
        }
        metrics.observe_in_flight(flight.len() as u64);
        if flight.is_empty() && out.is_empty() {
            return Ok(read.state());
        }
        let (id, page) = tokio::select! {
            biased;
            _ = request.cancel.cancelled() => return Err(SliceError::Stopped),
            permit = tx.reserve(), if !out.is_empty() => {
                let permit = permit.map_err(|_| SliceError::Stopped)?;
                if let Some(event) = out.pop() {
                    permit.send(Ok(event));
                }
                continue;
            }
            done = flight.next(), if !flight.is_empty() => match done {
                Some(done) => done,
                None => continue,
            },
        };
        let page = page.map_err(SliceError::Source)?;
        let emitted = read.absorb(id, page, metrics)?;
        let changed = emitted.changed;
        if let Some(records) = emitted.records {
            out.push(SourceEvent::Page(JsonPage { records }));
        }
        // The page just answered updated the latency the target follows.
        let spare = in_flight(&share, settings, request).saturating_sub(read.live());
        read.maybe_split(id, spare, metrics);
        if changed {
            out.push(SourceEvent::Checkpoint(checkpoint(&read.state())));
        }
    }
}

/// The events a sliced read has produced and the channel has not taken yet,
/// in order. A checkpoint queued right after another replaces it: each one
/// holds everything the earlier did.
#[derive(Default)]
struct Outbox {
    events: std::collections::VecDeque<SourceEvent>,
    pages: usize,
}

impl Outbox {
    fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    fn push(&mut self, event: SourceEvent) {
        match event {
            SourceEvent::Checkpoint(_)
                if matches!(self.events.back(), Some(SourceEvent::Checkpoint(_))) =>
            {
                if let Some(last) = self.events.back_mut() {
                    *last = event;
                }
            }
            SourceEvent::Page(_) => {
                self.pages += 1;
                self.events.push_back(event);
            }
            _ => self.events.push_back(event),
        }
    }

    fn pop(&mut self) -> Option<SourceEvent> {
        let event = self.events.pop_front()?;
        if matches!(event, SourceEvent::Page(_)) {
            self.pages -= 1;
        }
        Some(event)
    }
}

fn in_flight(share: &ReaderShare, settings: &SliceSettings, request: &ReadRequest) -> usize {
    if !settings.enabled {
        return 1;
    }
    let fair = share.in_flight();
    request
        .max_in_flight
        .map_or(fair, |cap| fair.min(cap.max(1)))
}

/// What one page changed.
struct Absorbed {
    /// The records to emit (those inside the slice's window), if any.
    records: Option<Vec<Box<RawValue>>>,
    /// Whether the state to checkpoint moved.
    changed: bool,
}

/// The slices of one read and what they have emitted.
struct SlicedRead {
    order: Order,
    slices: Vec<Option<Slice>>,
    max_seen: Option<i64>,
    ceiling: i64,
    max_pages: u32,
    /// [`SlicedList::granularity`].
    granularity: i64,
}

impl SlicedRead {
    fn live(&self) -> usize {
        self.slices.iter().flatten().count()
    }

    fn state(&self) -> SliceState {
        let mut windows: Vec<Window> = self
            .slices
            .iter()
            .flatten()
            .map(|s| s.unread(self.order))
            .filter(|w| !w.is_empty())
            .collect();
        windows.sort();
        SliceState {
            v: SLICE_STATE_VERSION,
            windows,
            max_seen: self.max_seen,
            ceiling: self.ceiling,
        }
    }

    /// Takes in a page of slice `id`: keeps the records inside its window,
    /// moves its position, and retires it when the window is read.
    fn absorb<E>(
        &mut self,
        id: usize,
        page: SlicePage,
        metrics: &weft_core::StreamMetrics,
    ) -> Result<Absorbed, SliceError<E>> {
        let order = self.order;
        let Some(slice) = self.slices.get_mut(id).and_then(Option::as_mut) else {
            return Ok(Absorbed {
                records: None,
                changed: false,
            });
        };
        if let Some(next) = &page.next
            && !slice.seen.insert(next.to_string())
        {
            return Err(SliceError::Loop {
                window: slice.window,
                cursor: next.clone(),
            });
        }
        let empty = page.records.is_empty() && page.reached.is_none();
        slice.busy = false;
        slice.pages += 1;
        let window = slice.window;
        let mut kept = Vec::with_capacity(page.records.len());
        let mut edge: Option<i64> = page.reached;
        // Listed parents count as read even when they had no children.
        if let Some(r) = page.reached.filter(|r| window.contains(*r)) {
            self.max_seen = Some(self.max_seen.map_or(r, |m| m.max(r)));
        }
        for (key, record) in page.records {
            let Some(key) = key else {
                kept.push(record);
                continue;
            };
            edge = Some(match (order, edge) {
                (_, None) => key,
                (Order::Descending, Some(e)) => e.min(key),
                (Order::Ascending, Some(e)) => e.max(key),
            });
            if window.contains(key) {
                self.max_seen = Some(self.max_seen.map_or(key, |m| m.max(key)));
                if slice.start.is_none() {
                    slice.start = Some(key);
                }
                kept.push(record);
            }
        }
        if let Some(e) = edge {
            slice.reached = Some(match (order, slice.reached) {
                (_, None) => e,
                (Order::Descending, Some(r)) => r.min(e),
                (Order::Ascending, Some(r)) => r.max(e),
            });
        }
        let passed = match (order, slice.reached) {
            (Order::Descending, Some(r)) => r < window.lo,
            (Order::Ascending, Some(r)) => r >= window.hi,
            (_, None) => false,
        };
        slice.after = page.next;
        let done = empty || slice.after.is_none() || passed;
        if done {
            self.slices[id] = None;
            metrics.add_slices_done(1);
        }
        // A read's last slice ending without records moves nothing the
        // caller's final checkpoint does not.
        let others_left = self.slices.iter().flatten().next().is_some();
        Ok(Absorbed {
            changed: !kept.is_empty() || (done && others_left),
            records: (!kept.is_empty()).then_some(kept),
        })
    }

    /// Splits slice `id`'s unread remainder when the budget has `spare`
    /// capacity or the slice has read `max_pages` pages.
    fn maybe_split(&mut self, id: usize, spare: usize, metrics: &weft_core::StreamMetrics) {
        let order = self.order;
        let max_pages = self.max_pages;
        let ceiling = self.ceiling;
        let granularity = self.granularity;
        let Some(slice) = self.slices.get_mut(id).and_then(Option::as_mut) else {
            return;
        };
        let forced = slice.pages >= max_pages;
        if spare == 0 && !forced {
            return;
        }
        let (Some(reached), Some(start)) = (slice.reached, slice.start) else {
            return;
        };
        // Keys one page covers, as read so far.
        let per_page =
            (i128::from(start) - i128::from(reached)).abs() / i128::from(slice.pages.max(1));
        let per_page = per_page.max(1);
        let pieces = spare.max(1);
        let cuts = match order {
            Order::Descending => cuts_down(slice.window.lo, reached, per_page, pieces),
            Order::Ascending => cuts_up(reached, slice.window.hi, ceiling, per_page, pieces),
        };
        let cuts = on_steps(cuts, order, slice.window, reached, granularity);
        if cuts.is_empty() {
            return;
        }
        // The slice keeps the part next to where it is; the rest become new slices.
        let mut windows = Vec::with_capacity(cuts.len());
        match order {
            Order::Descending => {
                let lo = slice.window.lo;
                slice.window.lo = cuts[0];
                for (i, &cut) in cuts.iter().enumerate() {
                    let below = cuts.get(i + 1).copied().unwrap_or(lo);
                    windows.push(Window::new(below, cut));
                }
            }
            Order::Ascending => {
                let hi = slice.window.hi;
                slice.window.hi = cuts[0];
                for (i, &cut) in cuts.iter().enumerate() {
                    let above = cuts.get(i + 1).copied().unwrap_or(hi);
                    windows.push(Window::new(cut, above));
                }
            }
        }
        slice.pages = 0;
        metrics.add_slices_split(1);
        metrics.add_slices_planned(windows.len() as u64);
        self.slices
            .extend(windows.into_iter().map(|w| Some(Slice::new(w))));
    }
}

/// Moves cut points onto multiples of `step` (up when ascending, down when
/// descending, so the part the slice keeps still holds `reached`), dropping
/// those that leave the window or coincide.
fn on_steps(cuts: Vec<i64>, order: Order, window: Window, reached: i64, step: i64) -> Vec<i64> {
    if step <= 1 {
        return cuts;
    }
    let mut out: Vec<i64> = Vec::with_capacity(cuts.len());
    for c in cuts {
        let down = c.div_euclid(step).saturating_mul(step);
        let moved = match order {
            Order::Ascending if down < c => down.saturating_add(step),
            _ => down,
        };
        let inside = match order {
            Order::Ascending => moved > reached && moved < window.hi,
            Order::Descending => moved > window.lo && moved <= reached,
        };
        if inside && out.last() != Some(&moved) {
            out.push(moved);
        }
    }
    out
}

/// Cut points below `reached` (descending read of `[lo, reached]` left):
/// the first `2 x per_page` under it, then doubling, at most `pieces`, all
/// above `lo`; the midpoint when even the first piece would reach `lo`.
fn cuts_down(lo: i64, reached: i64, per_page: i128, pieces: usize) -> Vec<i64> {
    let (lo, top) = (i128::from(lo), i128::from(reached) + 1);
    if top - lo < 2 {
        return vec![];
    }
    let mut cuts = Vec::new();
    let mut at = top;
    let mut width = per_page.saturating_mul(2);
    while cuts.len() < pieces {
        at -= width;
        if at <= lo {
            break;
        }
        cuts.push(at);
        width = width.saturating_mul(2);
    }
    if cuts.is_empty() {
        cuts.push(lo + (top - lo) / 2);
    }
    cuts.into_iter()
        .filter_map(|c| i64::try_from(c).ok())
        .collect()
}

/// Cut points above `reached` (ascending read of `[reached, hi)` left).
///
/// An ascending read knows where its data ends: no key is newer than the
/// read's start, so nothing lies far above the `ceiling`. The part up to it
/// is cut into equal widths, one per page it is expected to hold (from
/// `per_page`) up to `pieces + 1` parts, so every slice has about the same
/// work and they end together; the last part keeps whatever lies above the
/// ceiling. Less than a page left: no cut. Past the ceiling already (a clock
/// running ahead): the mirror of [`cuts_down`].
fn cuts_up(reached: i64, hi: i64, ceiling: i64, per_page: i128, pieces: usize) -> Vec<i64> {
    let (bottom, hi) = (i128::from(reached), i128::from(hi));
    if hi - bottom < 2 {
        return vec![];
    }
    let end = hi.min(i128::from(ceiling) + 1);
    if end - bottom >= 2 {
        let pages = (end - bottom) / per_page.max(1);
        let parts = pages.min(
            i128::try_from(pieces)
                .unwrap_or(i128::MAX)
                .saturating_add(1),
        );
        if parts < 2 {
            return vec![];
        }
        let width = (end - bottom) / parts;
        return (1..parts)
            .map(|k| bottom + width * k)
            .filter(|&c| c > bottom && c < hi)
            .filter_map(|c| i64::try_from(c).ok())
            .collect();
    }
    let mut cuts = Vec::new();
    let mut at = bottom;
    let mut width = per_page.saturating_mul(2);
    while cuts.len() < pieces {
        at += width;
        if at >= hi {
            break;
        }
        cuts.push(at);
        width = width.saturating_mul(2);
    }
    if cuts.is_empty() {
        cuts.push(bottom + (hi - bottom + 1) / 2);
    }
    cuts.into_iter()
        .filter_map(|c| i64::try_from(c).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn an_ascending_remainder_is_cut_evenly_up_to_the_ceiling() {
        // 1,000 keys left below the ceiling at 100 per page: 10 pages, cut
        // into 5 equal parts for 4 spare requests (the slice keeps the first).
        assert_eq!(cuts_up(0, i64::MAX, 999, 100, 4), vec![200, 400, 600, 800]);
        // Fewer pages than spare requests: one part per page.
        assert_eq!(cuts_up(0, i64::MAX, 299, 100, 8), vec![100, 200]);
        // A finite window is cut inside itself, not up to the ceiling.
        assert_eq!(cuts_up(0, 400, 10_000, 100, 8), vec![100, 200, 300]);
        // Less than a page left: the slice finishes it alone.
        assert!(cuts_up(0, i64::MAX, 50, 100, 4).is_empty());
    }

    #[test]
    fn past_the_ceiling_an_ascending_remainder_doubles_as_a_descending_one_does() {
        assert_eq!(cuts_up(1_000, 5_000, 10, 100, 2), vec![1_200, 1_600]);
        assert_eq!(cuts_down(0, 999, 100, 2), vec![800, 400]);
    }

    #[test]
    fn cuts_move_onto_the_keys_step_and_stay_inside_the_window() {
        let w = Window::new(0, 10_000);
        // Ascending, reached 1_200: up to the next second, past `reached`.
        assert_eq!(
            on_steps(
                vec![1_201, 1_999, 2_000, 4_500, 9_999],
                Order::Ascending,
                w,
                1_200,
                1_000
            ),
            [2_000, 5_000]
        );
        // Descending, reached 8_700: down, never above `reached` or at `lo`.
        assert_eq!(
            on_steps(
                vec![8_700, 8_100, 6_400, 600],
                Order::Descending,
                w,
                8_700,
                1_000
            ),
            [8_000, 6_000]
        );
        assert_eq!(on_steps(vec![3, 5], Order::Ascending, w, 1, 1), [3, 5]);
    }

    fn checkpoint(n: i64) -> SourceEvent {
        SourceEvent::Checkpoint(StreamState(serde_json::json!({ "n": n })))
    }

    fn page() -> SourceEvent {
        SourceEvent::Page(JsonPage { records: vec![] })
    }

    #[test]
    fn the_outbox_keeps_order_and_only_the_newest_of_adjacent_checkpoints() {
        let mut out = Outbox::default();
        out.push(page());
        out.push(checkpoint(1));
        out.push(checkpoint(2));
        out.push(page());
        out.push(checkpoint(3));
        assert_eq!(out.pages, 2);
        let mut seen = Vec::new();
        while let Some(event) = out.pop() {
            seen.push(match event {
                SourceEvent::Page(_) => "page".to_string(),
                SourceEvent::Checkpoint(s) => format!("checkpoint {}", s.0["n"]),
                _ => "other".to_string(),
            });
        }
        assert_eq!(seen, ["page", "checkpoint 2", "page", "checkpoint 3"]);
        assert_eq!(out.pages, 0);
        assert!(out.is_empty());
    }
}
