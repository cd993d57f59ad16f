//! The connectors this runner knows, by name.

use std::sync::Arc;

use weft_core::{Catalog, Source};
use weft_http::BudgetRegistry;

use crate::RunnerError;

/// Names of the connectors built into this runner.
pub const CONNECTORS: &[&str] = &["stripe"];

fn unknown(name: &str) -> RunnerError {
    RunnerError::UnknownConnector {
        name: name.to_string(),
        available: CONNECTORS.join(", "),
    }
}

/// A connector's declared stream catalog.
pub fn catalog(connector: &str) -> Result<Catalog, RunnerError> {
    match connector {
        "stripe" => Ok(weft_stripe::catalog()?),
        other => Err(unknown(other)),
    }
}

/// Builds a connector's source from its `config` table; budgets are shared process-wide.
pub fn build_source(
    pipeline: &str,
    connector: &str,
    config: &toml::Table,
    budgets: &BudgetRegistry,
) -> Result<Arc<dyn Source>, RunnerError> {
    let wrap = |source: weft_core::BoxError| RunnerError::Connector {
        pipeline: pipeline.to_string(),
        connector: connector.to_string(),
        source,
    };
    match connector {
        "stripe" => {
            let cfg: weft_stripe::StripeConfig = toml::Value::Table(config.clone())
                .try_into()
                .map_err(|e: toml::de::Error| wrap(Box::new(e)))?;
            let source =
                weft_stripe::StripeSource::new(cfg, budgets).map_err(|e| wrap(Box::new(e)))?;
            Ok(Arc::new(source))
        }
        other => Err(unknown(other)),
    }
}
