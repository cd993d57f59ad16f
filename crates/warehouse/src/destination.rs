//! The staged destination: stage batches, commit each checkpoint as one load.

use std::sync::Arc;

use arrow_array::RecordBatch;
use async_trait::async_trait;
use weft_core::{
    Checkpoint, CoreError, Destination, LoadReceipt, LoadSink, LoadTarget, Reject, StreamState,
    new_load_id,
};
use weft_stage::{Manifest, Stage, StageWriter};

use crate::{LoadSpec, Warehouse, WarehouseError};

/// A [`Destination`] that stages Parquet in a [`Stage`] and bulk-loads it into
/// a [`Warehouse`], committing rows and state together.
#[derive(Clone)]
pub struct StagedDestination {
    stage: Stage,
    warehouse: Arc<dyn Warehouse>,
}

impl StagedDestination {
    /// A destination staging in `stage` and loading into `warehouse`.
    pub fn new(stage: Stage, warehouse: Arc<dyn Warehouse>) -> Self {
        StagedDestination { stage, warehouse }
    }

    /// The stage loads are written to.
    pub fn stage(&self) -> &Stage {
        &self.stage
    }

    /// The warehouse loads are committed into.
    pub fn warehouse(&self) -> &Arc<dyn Warehouse> {
        &self.warehouse
    }
}

fn core_err(warehouse: &dyn Warehouse, stream: &str, e: WarehouseError) -> CoreError {
    CoreError::Destination {
        destination: warehouse.name().to_string(),
        stream: stream.to_string(),
        source: Box::new(e),
    }
}

#[async_trait]
impl Destination for StagedDestination {
    fn name(&self) -> &str {
        self.warehouse.name()
    }

    async fn state(&self, pipeline: &str, stream: &str) -> Result<Option<StreamState>, CoreError> {
        let state = self
            .warehouse
            .state(pipeline, stream)
            .await
            .map_err(|e| core_err(self.warehouse.as_ref(), stream, e))?;
        Ok(state.map(StreamState))
    }

    async fn open(&self, target: LoadTarget) -> Result<Box<dyn LoadSink>, CoreError> {
        let spec = LoadSpec::from_target(&target);
        let writer = self
            .stage
            .writer(&spec.pipeline, &spec.stream, &new_load_id());
        Ok(Box::new(StagedSink {
            stage: self.stage.clone(),
            warehouse: Arc::clone(&self.warehouse),
            spec,
            writer,
            applying: None,
        }))
    }
}

/// A staged load being committed on its own task.
type Applying = tokio::task::JoinHandle<Result<LoadReceipt, WarehouseError>>;

/// One stream's sink: a stage writer for the current load, and at most one
/// sealed load being committed in the background.
struct StagedSink {
    stage: Stage,
    warehouse: Arc<dyn Warehouse>,
    spec: LoadSpec,
    writer: StageWriter,
    /// The sealed load committing now. Dropping the sink detaches it: the load
    /// is complete in the stage and commits atomically, or not at all.
    applying: Option<Applying>,
}

impl StagedSink {
    fn err(&self, e: impl Into<WarehouseError>) -> CoreError {
        core_err(self.warehouse.as_ref(), &self.spec.stream, e.into())
    }

    /// Finishes the current load's files and manifest (the load is then
    /// complete in the stage) and starts writing a new load.
    async fn seal(&mut self, checkpoint: Checkpoint) -> Result<Manifest, CoreError> {
        // The next load gets a fresh id whatever happens to this one.
        let next = self
            .stage
            .writer(&self.spec.pipeline, &self.spec.stream, &new_load_id());
        let writer = std::mem::replace(&mut self.writer, next);
        writer
            .finish(Some(checkpoint.state.0))
            .await
            .map_err(|e| self.err(e))
    }

    /// Waits for the load committing in the background.
    async fn wait(&mut self) -> Result<Option<LoadReceipt>, CoreError> {
        let Some(task) = self.applying.take() else {
            return Ok(None);
        };
        let receipt = task
            .await
            .map_err(|source| WarehouseError::Task {
                target: format!(
                    "background load of {}/{}",
                    self.spec.pipeline, self.spec.stream
                ),
                source,
            })
            .and_then(|r| r)
            .map_err(|e| self.err(e))?;
        Ok(Some(receipt))
    }
}

#[async_trait]
impl LoadSink for StagedSink {
    fn load_id(&self) -> &str {
        self.writer.load_id()
    }

    async fn write(&mut self, batch: RecordBatch) -> Result<(), CoreError> {
        let result = self.writer.write(batch).await;
        result.map_err(|e| self.err(e))
    }

    async fn reject(&mut self, rejects: Vec<Reject>) -> Result<(), CoreError> {
        let result = self.writer.reject(rejects).await;
        result.map_err(|e| self.err(e))
    }

    async fn commit(&mut self, checkpoint: Checkpoint) -> Result<LoadReceipt, CoreError> {
        if let Some(earlier) = self.wait().await? {
            tracing::debug!(load_id = %earlier.load_id, "background load committed");
        }
        let manifest = self.seal(checkpoint).await?;
        self.warehouse
            .commit_load(&self.stage, &manifest, &self.spec)
            .await
            .map_err(|e| self.err(e))
    }

    async fn commit_background(
        &mut self,
        checkpoint: Checkpoint,
    ) -> Result<Vec<LoadReceipt>, CoreError> {
        let earlier = self.wait().await?;
        let manifest = self.seal(checkpoint).await?;
        let (warehouse, stage, spec) = (
            Arc::clone(&self.warehouse),
            self.stage.clone(),
            self.spec.clone(),
        );
        self.applying = Some(tokio::spawn(async move {
            warehouse.commit_load(&stage, &manifest, &spec).await
        }));
        Ok(earlier.into_iter().collect())
    }

    async fn finish_background(&mut self) -> Result<Option<LoadReceipt>, CoreError> {
        self.wait().await
    }
}

/// Re-commits one staged load from its manifest, without calling any API.
///
/// Idempotent: a load the warehouse already holds is a no-op.
pub async fn replay(
    warehouse: Arc<dyn Warehouse>,
    stage: &Stage,
    spec: &LoadSpec,
    load_id: &str,
) -> Result<LoadReceipt, WarehouseError> {
    let manifest = stage
        .manifest(&spec.pipeline, &spec.stream, load_id)
        .await?;
    warehouse.commit_load(stage, &manifest, spec).await
}

/// Re-commits every complete staged load of a stream, oldest first.
pub async fn replay_stream(
    warehouse: Arc<dyn Warehouse>,
    stage: &Stage,
    spec: &LoadSpec,
) -> Result<Vec<LoadReceipt>, WarehouseError> {
    let mut receipts = Vec::new();
    for id in stage.list_loads(&spec.pipeline, &spec.stream).await? {
        receipts.push(replay(Arc::clone(&warehouse), stage, spec, &id).await?);
    }
    Ok(receipts)
}
