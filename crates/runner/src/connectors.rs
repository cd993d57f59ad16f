//! The connectors this runner knows, by name.

use std::sync::Arc;

use weft_core::{Catalog, Source};
use weft_http::BudgetRegistry;

use crate::RunnerError;

/// Names of the source connectors built into this runner.
pub const CONNECTORS: &[&str] = &[
    "stripe",
    "zoom",
    "salesforce",
    "zendesk",
    "intercom",
    "mailchimp",
];

/// Names of the reverse-sync destinations built into this runner.
pub const SYNC_TARGETS: &[&str] = &[
    "mailchimp",
    "intercom",
    "zendesk",
    "stripe",
    "salesforce",
    "zoom",
];

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
        "zoom" => Ok(weft_zoom::catalog()?),
        "salesforce" => Ok(weft_salesforce::catalog()?),
        "zendesk" => Ok(weft_zendesk::catalog()?),
        "intercom" => Ok(weft_intercom::catalog()?),
        "mailchimp" => Ok(weft_mailchimp::catalog()?),
        other => Err(unknown(other)),
    }
}

/// Builds a connector's source from its `config` table; budgets are shared process-wide.
///
/// Salesforce describes its objects while connecting (one request per object).
pub async fn build_source(
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
        "zoom" => {
            let cfg: weft_zoom::ZoomConfig = toml::Value::Table(config.clone())
                .try_into()
                .map_err(|e: toml::de::Error| wrap(Box::new(e)))?;
            let source = weft_zoom::ZoomSource::new(cfg, budgets).map_err(|e| wrap(Box::new(e)))?;
            Ok(Arc::new(source))
        }
        "salesforce" => {
            let cfg: weft_salesforce::SalesforceConfig = toml::Value::Table(config.clone())
                .try_into()
                .map_err(|e: toml::de::Error| wrap(Box::new(e)))?;
            let source = weft_salesforce::SalesforceSource::connect(cfg, budgets)
                .await
                .map_err(|e| wrap(Box::new(e)))?;
            Ok(Arc::new(source))
        }
        "zendesk" => {
            let cfg: weft_zendesk::ZendeskConfig = toml::Value::Table(config.clone())
                .try_into()
                .map_err(|e: toml::de::Error| wrap(Box::new(e)))?;
            let source =
                weft_zendesk::ZendeskSource::new(cfg, budgets).map_err(|e| wrap(Box::new(e)))?;
            Ok(Arc::new(source))
        }
        "intercom" => {
            let cfg: weft_intercom::IntercomConfig = toml::Value::Table(config.clone())
                .try_into()
                .map_err(|e: toml::de::Error| wrap(Box::new(e)))?;
            let source =
                weft_intercom::IntercomSource::new(&cfg, budgets).map_err(|e| wrap(Box::new(e)))?;
            Ok(Arc::new(source))
        }
        "mailchimp" => {
            let cfg: weft_mailchimp::MailchimpConfig = toml::Value::Table(config.clone())
                .try_into()
                .map_err(|e: toml::de::Error| wrap(Box::new(e)))?;
            let source = weft_mailchimp::MailchimpSource::new(&cfg, budgets)
                .map_err(|e| wrap(Box::new(e)))?;
            Ok(Arc::new(source))
        }
        other => Err(unknown(other)),
    }
}

/// Builds a reverse-sync destination from a sync's `config` table and checks
/// that it can take the sync ([`weft_core::check_sync`]: mapping, mode, the
/// destination's own rules) before anything is sent.
///
/// Salesforce describes the sync's object while connecting (a token and one
/// describe request), so it can check the mapping against it.
pub async fn build_sync_target(
    sync: &crate::SyncConfig,
    budgets: &BudgetRegistry,
) -> Result<Arc<dyn weft_core::SyncTarget>, RunnerError> {
    let wrap = |source: weft_core::BoxError| RunnerError::Connector {
        pipeline: sync.name.clone(),
        connector: sync.connector.clone(),
        source,
    };
    fn parse<T: serde::de::DeserializeOwned>(
        table: &toml::Table,
    ) -> Result<T, weft_core::BoxError> {
        Ok(toml::Value::Table(table.clone()).try_into()?)
    }
    let built: Result<Arc<dyn weft_core::SyncTarget>, weft_core::BoxError> =
        match sync.connector.as_str() {
            "mailchimp" => parse(&sync.config).and_then(|cfg| {
                Ok(Arc::new(weft_mailchimp::MailchimpTarget::new(&cfg, budgets)?) as Arc<_>)
            }),
            "intercom" => parse(&sync.config).and_then(|cfg| {
                Ok(Arc::new(weft_intercom::IntercomTarget::new(&cfg, budgets)?) as Arc<_>)
            }),
            "zendesk" => parse(&sync.config).and_then(|cfg| {
                Ok(Arc::new(weft_zendesk::ZendeskTarget::new(&cfg, budgets)?) as Arc<_>)
            }),
            "stripe" => parse(&sync.config).and_then(|cfg| {
                Ok(Arc::new(weft_stripe::StripeTarget::new(&cfg, budgets)?) as Arc<_>)
            }),
            "zoom" => parse(&sync.config)
                .and_then(|cfg| Ok(Arc::new(weft_zoom::ZoomTarget::new(&cfg, budgets)?) as Arc<_>)),
            "salesforce" => match parse::<weft_salesforce::SalesforceConfig>(&sync.config) {
                Ok(cfg) => weft_salesforce::SalesforceTarget::connect(&cfg, budgets)
                    .await
                    .map(|t| Arc::new(t) as Arc<_>)
                    .map_err(|e| Box::new(e) as weft_core::BoxError),
                Err(e) => Err(e),
            },
            other => {
                return Err(RunnerError::UnknownConnector {
                    name: other.to_string(),
                    available: SYNC_TARGETS.join(", "),
                });
            }
        };
    let target = built.map_err(wrap)?;
    weft_core::check_sync(&*target, &sync.spec()).map_err(|e| wrap(Box::new(e)))?;
    Ok(target)
}
