//! The only place that builds requests to the template API (through weft-http).

use secrecy::ExposeSecret;
use url::Url;
use weft_http::{Auth, BudgetKey, BudgetRegistry, HttpClient, Limits};

use crate::config::DEFAULT_BASE_URL;
use crate::{TemplateConfig, TemplateError};

/// The HTTP client: bearer auth and the account's budget, taken from
/// `budgets` so every job on the same key shares it.
pub(crate) fn http_client(
    config: &TemplateConfig,
    budgets: &BudgetRegistry,
) -> Result<HttpClient, TemplateError> {
    config.validate()?;
    let key = config.api_key.resolve()?;
    let base = config.base_url.as_deref().unwrap_or(DEFAULT_BASE_URL);
    let base_url = Url::parse(base).map_err(|e| TemplateError::Config {
        field: "base_url",
        reason: format!("`{base}` is not a URL: {e}"),
    })?;
    let budget = budgets.budget(
        BudgetKey::for_credential("template", key.expose_secret()),
        Limits::per_second(config.requests_per_second),
    );
    let mut builder = HttpClient::builder("template", base_url)
        .auth(Auth::Bearer(key))
        .budget(budget);
    if let Some(settings) = &config.http {
        builder = builder.settings(settings.clone());
    }
    Ok(builder.build()?)
}
