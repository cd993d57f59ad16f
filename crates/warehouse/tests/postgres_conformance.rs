//! PostgreSQL behind [`StagedDestination`] under the shared destination
//! suite (weft-conformance), on a real server (weft-testsvc): every
//! destination the suite creates is a fresh database on one server.
#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use weft_conformance::Row;
use weft_conformance::destination::{DestinationHarness, run_suite};
use weft_core::{BoxError, LoadReceipt, LoadTarget};
use weft_stage::Stage;
use weft_testsvc::Postgres;
use weft_warehouse::{LoadSpec, PostgresWarehouse, StagedDestination, Warehouse, replay};

struct PostgresConformance {
    pg: Postgres,
    dir: tempfile::TempDir,
    created: AtomicU64,
}

#[async_trait::async_trait]
impl DestinationHarness for PostgresConformance {
    type Destination = StagedDestination;

    fn name(&self) -> &str {
        "postgres"
    }

    async fn create(&self) -> Result<StagedDestination, BoxError> {
        let n = self.created.fetch_add(1, Ordering::Relaxed);
        let url = self.pg.create_database(&format!("conformance_{n}"))?;
        let wh: Arc<dyn Warehouse> = Arc::new(PostgresWarehouse::connect(&url, None).await?);
        let dir = self.dir.path().join(format!("stage-{n}"));
        let stage = Stage::from_url(dir.to_str().ok_or("temp dir is not UTF-8")?)?;
        Ok(StagedDestination::new(stage, wh))
    }

    async fn rows(
        &self,
        d: &StagedDestination,
        pipeline: &str,
        stream: &str,
    ) -> Result<Vec<Row>, BoxError> {
        Ok(d.warehouse().table_rows(pipeline, stream).await?)
    }

    async fn replay(
        &self,
        d: &StagedDestination,
        target: &LoadTarget,
        load_id: &str,
    ) -> Result<Option<LoadReceipt>, BoxError> {
        let spec = LoadSpec::from_target(target);
        Ok(Some(
            replay(Arc::clone(d.warehouse()), d.stage(), &spec, load_id).await?,
        ))
    }
}

#[tokio::test]
async fn postgres_passes_the_destination_suite() {
    let pg = tokio::task::spawn_blocking(Postgres::start)
        .await
        .unwrap()
        .expect("a PostgreSQL >= 15 server (apt-get install -y postgresql)");
    let harness = PostgresConformance {
        pg,
        dir: tempfile::tempdir().unwrap(),
        created: AtomicU64::new(0),
    };
    let report = run_suite(&harness).await;
    println!("{report}");
    report.assert_passed();
    assert_eq!(
        report.checks.len(),
        weft_conformance::destination::CHECKS.len()
    );
}
