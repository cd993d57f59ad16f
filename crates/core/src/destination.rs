//! The write side: where batches go and how a checkpoint is committed.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicI64, Ordering};

use arrow_array::RecordBatch;
use async_trait::async_trait;
use serde::Serialize;
use weft_arrow::Reject;

use crate::{CoreError, StreamSpec, StreamState, WriteDisposition};

/// What a load writes to: a pipeline's stream, with its spec and disposition.
#[derive(Debug, Clone)]
pub struct LoadTarget {
    /// Pipeline name (the target schema in a warehouse).
    pub pipeline: String,
    /// The stream's spec (its schema may have evolved since: see batches).
    pub spec: StreamSpec,
    /// How rows are applied.
    pub disposition: WriteDisposition,
}

/// A checkpoint to commit: the state that all rows written so far lead to.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    /// The cursor to save with the rows.
    pub state: StreamState,
}

/// What a commit did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LoadReceipt {
    /// The load's id (recorded in `_weft_loads` and in `_weft_load_id`).
    pub load_id: String,
    /// Rows applied.
    pub rows: u64,
    /// Rejects recorded.
    pub rejects: u64,
    /// Staged files the load read.
    pub files: u64,
    /// Staged bytes.
    pub bytes: u64,
    /// True when this load id had been committed before (the commit was a no-op).
    pub already_committed: bool,
}

/// A destination: a warehouse (stage + bulk load) or a SaaS write API.
///
/// Contract: state returned by [`Destination::state`] is exactly the state of
/// the last successful [`LoadSink::commit`]; rows and state become visible
/// together or not at all.
#[async_trait]
pub trait Destination: Send + Sync {
    /// Destination name (`duckdb`, `mailchimp`...), used in errors and reports.
    fn name(&self) -> &str;

    /// The last committed state of a stream.
    async fn state(&self, pipeline: &str, stream: &str) -> Result<Option<StreamState>, CoreError>;

    /// Opens a sink for one stream's run.
    async fn open(&self, target: LoadTarget) -> Result<Box<dyn LoadSink>, CoreError>;
}

/// One stream's writer. Rows written since the last commit form one load.
#[async_trait]
pub trait LoadSink: Send {
    /// The id of the load being written now; stamped into `_weft_load_id`.
    fn load_id(&self) -> &str;

    /// Adds a batch to the current load (its schema may add columns).
    async fn write(&mut self, batch: RecordBatch) -> Result<(), CoreError>;

    /// Adds quarantined records to the current load.
    async fn reject(&mut self, rejects: Vec<Reject>) -> Result<(), CoreError>;

    /// Commits the current load with `checkpoint` atomically, then starts a new load.
    ///
    /// Waits first for a load still being applied by [`LoadSink::commit_background`].
    async fn commit(&mut self, checkpoint: Checkpoint) -> Result<LoadReceipt, CoreError>;

    /// Seals the current load with `checkpoint` and starts a new one, applying
    /// the sealed load in the background while the next is written.
    ///
    /// At most one load is in the background: sealing another waits for it.
    /// Rows and state still become visible together; the receipts returned are
    /// those of loads applied since the last call, oldest first. A background
    /// failure surfaces from the next call or from
    /// [`LoadSink::finish_background`]. The default commits in the foreground.
    async fn commit_background(
        &mut self,
        checkpoint: Checkpoint,
    ) -> Result<Vec<LoadReceipt>, CoreError> {
        self.commit(checkpoint).await.map(|r| vec![r])
    }

    /// Waits for the load being applied in the background, if any.
    async fn finish_background(&mut self) -> Result<Option<LoadReceipt>, CoreError> {
        Ok(None)
    }
}

/// A new, unique, time-ordered load id such as `20261122T230102Z-4f2a10c0ffee`.
///
/// The id is the UTC second, then the microsecond within it (5 hex digits),
/// then a salt drawn once per process (7 hex digits). Ids made by one process
/// sort in the order they were made, even within one microsecond or when the
/// clock steps back; ids of two processes differ by their salt.
pub fn new_load_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    static LAST_MICROS: AtomicI64 = AtomicI64::new(i64::MIN);
    static SALT: OnceLock<u64> = OnceLock::new();
    let salt = *SALT.get_or_init(|| {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        h.finish() & 0x0fff_ffff
    });
    let now = chrono::Utc::now().timestamp_micros();
    let prev = LAST_MICROS
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |last| {
            Some(now.max(last.saturating_add(1)))
        })
        .unwrap_or(now);
    let micros = now.max(prev.saturating_add(1));
    let (secs, sub) = (micros.div_euclid(1_000_000), micros.rem_euclid(1_000_000));
    let stamp = chrono::DateTime::from_timestamp(secs, 0).unwrap_or_default();
    format!("{}-{sub:05x}{salt:07x}", stamp.format("%Y%m%dT%H%M%SZ"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn load_ids_are_unique_and_ordered_by_time_prefix() {
        let ids: Vec<_> = (0..1000).map(|_| super::new_load_id()).collect();
        let set: std::collections::HashSet<_> = ids.iter().collect();
        assert_eq!(set.len(), ids.len());
        assert!(ids.iter().all(|i| i.len() == 29 && i.as_bytes()[8] == b'T'));
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(
            sorted, ids,
            "ids of one process sort in the order they were made"
        );
    }
}
