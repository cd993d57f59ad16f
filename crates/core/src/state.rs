//! Saved cursors: what a stream's state is, where it lives, and how it moves.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::CoreError;

/// A stream's saved state: an opaque JSON value the connector defines
/// (for example `{"created": 1700000000, "events_created": 1700000500}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StreamState(pub serde_json::Value);

impl StreamState {
    /// Reads one field of the state as `T`, `None` when absent or of another shape.
    pub fn get<T: serde::de::DeserializeOwned>(&self, key: &str) -> Option<T> {
        self.0
            .get(key)
            .and_then(|v| serde_json::from_value(v.clone()).ok())
    }
}

/// A safe incremental watermark.
///
/// The cursor saved after a run is `min(max cursor seen, extraction start -
/// settle)`, and never below the previous cursor. Records that change while a
/// read is in progress (or arrive late with an older cursor) are therefore read
/// again next time: the next run re-reads the boundary inclusively and the
/// primary-key merge absorbs the overlap.
///
/// Values are integers in the cursor's own unit (seconds, microseconds...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watermark {
    previous: Option<i64>,
    ceiling: i64,
    max_seen: Option<i64>,
}

impl Watermark {
    /// Starts a watermark from the previous cursor; `extraction_start` and
    /// `settle` are in the cursor's unit.
    pub fn new(previous: Option<i64>, extraction_start: i64, settle: i64) -> Self {
        Watermark {
            previous,
            ceiling: extraction_start.saturating_sub(settle.max(0)),
            max_seen: None,
        }
    }

    /// Records a cursor value seen in a record.
    pub fn observe(&mut self, value: i64) {
        self.max_seen = Some(self.max_seen.map_or(value, |m| m.max(value)));
    }

    /// The largest value observed so far.
    pub fn max_seen(&self) -> Option<i64> {
        self.max_seen
    }

    /// The cursor to save now: never behind the previous one.
    pub fn value(&self) -> Option<i64> {
        let candidate = self.max_seen.map(|m| m.min(self.ceiling));
        match (self.previous, candidate) {
            (Some(p), Some(c)) => Some(p.max(c)),
            (p, c) => p.or(c),
        }
    }
}

/// Where cursors live when the destination cannot hold them in its own
/// transaction (SaaS destinations, or a standalone runner).
///
/// Implementations must make `save` atomic: after a crash, `load` returns
/// either the old or the new state, never a mix.
#[async_trait]
pub trait StateStore: Send + Sync {
    /// The saved state of a stream, if any.
    async fn load(&self, pipeline: &str, stream: &str) -> Result<Option<StreamState>, CoreError>;
    /// Saves a stream's state, replacing the previous one.
    async fn save(
        &self,
        pipeline: &str,
        stream: &str,
        state: &StreamState,
    ) -> Result<(), CoreError>;
    /// Forgets a stream's state (or every stream of the pipeline with `None`).
    async fn clear(&self, pipeline: &str, stream: Option<&str>) -> Result<(), CoreError>;
}

type StateMap = BTreeMap<String, BTreeMap<String, StreamState>>;

/// A [`StateStore`] in one JSON file, replaced atomically (write + rename).
#[derive(Debug)]
pub struct FileStateStore {
    path: PathBuf,
    lock: Mutex<()>,
}

impl FileStateStore {
    /// A store at `path` (created on first save).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FileStateStore {
            path: path.into(),
            lock: Mutex::new(()),
        }
    }

    fn err(&self, reason: impl ToString) -> CoreError {
        CoreError::State {
            location: self.path.display().to_string(),
            reason: reason.to_string(),
        }
    }

    async fn read_all(&self) -> Result<StateMap, CoreError> {
        match tokio::fs::read(&self.path).await {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| self.err(e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(StateMap::new()),
            Err(e) => Err(self.err(e)),
        }
    }

    async fn write_all(&self, map: &StateMap) -> Result<(), CoreError> {
        let bytes = serde_json::to_vec_pretty(map).map_err(|e| self.err(e))?;
        let tmp = tmp_path(&self.path);
        tokio::fs::write(&tmp, bytes)
            .await
            .map_err(|e| self.err(e))?;
        tokio::fs::rename(&tmp, &self.path)
            .await
            .map_err(|e| self.err(e))
    }
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

#[async_trait]
impl StateStore for FileStateStore {
    async fn load(&self, pipeline: &str, stream: &str) -> Result<Option<StreamState>, CoreError> {
        let _guard = self.lock.lock().await;
        Ok(self
            .read_all()
            .await?
            .get(pipeline)
            .and_then(|p| p.get(stream))
            .cloned())
    }

    async fn save(
        &self,
        pipeline: &str,
        stream: &str,
        state: &StreamState,
    ) -> Result<(), CoreError> {
        let _guard = self.lock.lock().await;
        let mut all = self.read_all().await?;
        all.entry(pipeline.to_string())
            .or_default()
            .insert(stream.to_string(), state.clone());
        self.write_all(&all).await
    }

    async fn clear(&self, pipeline: &str, stream: Option<&str>) -> Result<(), CoreError> {
        let _guard = self.lock.lock().await;
        let mut all = self.read_all().await?;
        match stream {
            Some(s) => {
                if let Some(p) = all.get_mut(pipeline) {
                    p.remove(s);
                }
            }
            None => {
                all.remove(pipeline);
            }
        }
        self.write_all(&all).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The saved cursor never moves backwards and never passes the settle ceiling
        /// (unless the previous cursor was already past it).
        #[test]
        fn watermark_is_monotonic_and_capped(
            previous in proptest::option::of(0i64..1_000_000),
            start in 0i64..1_000_000,
            settle in 0i64..1_000,
            seen in proptest::collection::vec(0i64..1_000_000, 0..50),
        ) {
            let mut w = Watermark::new(previous, start, settle);
            let mut last = w.value();
            for v in &seen {
                w.observe(*v);
                let now = w.value();
                prop_assert!(now >= last, "moved back: {last:?} -> {now:?}");
                if let Some(p) = previous { prop_assert!(now.unwrap() >= p); }
                let ceiling = (start - settle).max(previous.unwrap_or(i64::MIN));
                prop_assert!(now.unwrap() <= ceiling);
                last = now;
            }
            if let Some(max) = seen.iter().max() {
                let expected = (*max).min(start - settle);
                prop_assert_eq!(w.value(), Some(previous.map_or(expected, |p| p.max(expected))));
            } else {
                prop_assert_eq!(w.value(), previous);
            }
        }
    }

    #[test]
    fn watermark_holds_back_by_settle() {
        let mut w = Watermark::new(Some(100), 1_000, 60);
        w.observe(990);
        assert_eq!(w.value(), Some(940));
        w.observe(500);
        assert_eq!(w.max_seen(), Some(990));
        assert_eq!(w.value(), Some(940));
    }

    #[tokio::test]
    async fn file_store_round_trips_and_clears() {
        let dir = std::env::temp_dir().join(format!("weft-state-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let store = FileStateStore::new(dir.join("state.json"));
        assert_eq!(store.load("p", "s").await.unwrap(), None);
        let st = StreamState(serde_json::json!({"created": 42}));
        store.save("p", "s", &st).await.unwrap();
        store.save("p", "t", &st).await.unwrap();
        assert_eq!(
            store
                .load("p", "s")
                .await
                .unwrap()
                .unwrap()
                .get::<i64>("created"),
            Some(42)
        );
        store.clear("p", Some("s")).await.unwrap();
        assert_eq!(store.load("p", "s").await.unwrap(), None);
        assert!(store.load("p", "t").await.unwrap().is_some());
        store.clear("p", None).await.unwrap();
        assert_eq!(store.load("p", "t").await.unwrap(), None);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
