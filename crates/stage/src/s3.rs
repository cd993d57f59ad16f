//! The `s3://` stage: settings from the environment, overridden by explicit
//! [`S3Options`].

use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey, AwsCredential};
use object_store::{BackoffConfig, ClientConfigKey, RetryConfig, StaticCredentialProvider};
use secrecy::{ExposeSecret, SecretString};

use crate::StageError;

/// Retries of one request (5xx, 429, connection errors and resets).
const MAX_RETRIES: usize = 5;

/// No retry starts later than this after a request's first attempt.
const RETRY_TIMEOUT: Duration = Duration::from_secs(60);

/// Explicit settings of an `s3://` stage ([`Stage::s3`](crate::Stage::s3)).
///
/// Every field left `None` comes from the environment as with
/// [`Stage::from_url`](crate::Stage::from_url) (`AWS_ENDPOINT_URL`,
/// `AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
/// `AWS_ALLOW_HTTP`...); a field that is set overrides it. The keys are
/// [`SecretString`]s: `Debug` shows them redacted, and no [`StageError`]
/// ever contains them.
#[derive(Debug, Clone, Default)]
pub struct S3Options {
    /// The S3 endpoint, e.g. `http://127.0.0.1:8333` for SeaweedFS or MinIO
    /// (requests are path-style: `{endpoint}/{bucket}/{key}`). Unset: the
    /// environment's, else AWS's regional endpoint.
    pub endpoint: Option<String>,
    /// The region requests are signed for (default `us-east-1`).
    pub region: Option<String>,
    /// The access key id. When both keys are set they are used as static
    /// credentials (an `AWS_SESSION_TOKEN` in the environment is ignored).
    pub access_key_id: Option<SecretString>,
    /// The secret access key.
    pub secret_access_key: Option<SecretString>,
    /// Allows plain `http://` endpoints (required for one; default: no).
    pub allow_http: Option<bool>,
    /// Part files larger than this are uploaded with multipart upload, in
    /// chunks of this size; smaller ones in one `PUT`. Default
    /// [`DEFAULT_MULTIPART_THRESHOLD`](crate::DEFAULT_MULTIPART_THRESHOLD),
    /// at least [`MIN_MULTIPART_CHUNK`](crate::MIN_MULTIPART_CHUNK).
    pub multipart_threshold_bytes: Option<usize>,
}

/// A built S3 store and what error messages show of it.
pub(crate) struct S3Store {
    pub(crate) store: AmazonS3,
    /// The endpoint, redacted.
    pub(crate) endpoint: String,
    /// The bucket.
    pub(crate) bucket: String,
}

/// Builds the store for `url` (`s3://bucket/prefix`): the environment
/// first, then `options`. `shown` is the redacted URL for errors.
pub(crate) fn build(url: &str, shown: &str, options: &S3Options) -> Result<S3Store, StageError> {
    let mut builder = AmazonS3Builder::from_env()
        .with_url(url)
        .with_retry(RetryConfig {
            backoff: BackoffConfig::default(),
            max_retries: MAX_RETRIES,
            retry_timeout: RETRY_TIMEOUT,
        });
    if let Some(endpoint) = &options.endpoint {
        // `AWS_ENDPOINT_URL_S3` takes precedence over the generic endpoint:
        // set both so the explicit one wins.
        builder = builder
            .with_endpoint(endpoint)
            .with_config(AmazonS3ConfigKey::S3Endpoint, endpoint);
    }
    if let Some(region) = &options.region {
        builder = builder.with_region(region);
    }
    match (&options.access_key_id, &options.secret_access_key) {
        (Some(id), Some(secret)) => {
            let credential = AwsCredential {
                key_id: id.expose_secret().to_string(),
                secret_key: secret.expose_secret().to_string(),
                token: None,
            };
            builder = builder.with_credentials(Arc::new(StaticCredentialProvider::new(credential)));
        }
        (Some(id), None) => builder = builder.with_access_key_id(id.expose_secret()),
        (None, Some(secret)) => builder = builder.with_secret_access_key(secret.expose_secret()),
        (None, None) => {}
    }
    if let Some(allow) = options.allow_http {
        builder = builder.with_allow_http(allow);
    }

    let bucket = url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default();
    let region = builder
        .get_config_value(&AmazonS3ConfigKey::Region)
        .unwrap_or_else(|| "us-east-1".to_string());
    let endpoint = builder
        .get_config_value(&AmazonS3ConfigKey::S3Endpoint)
        .or_else(|| builder.get_config_value(&AmazonS3ConfigKey::Endpoint));
    if let Some(e) = &endpoint {
        let allow_http = builder
            .get_config_value(&AmazonS3ConfigKey::Client(ClientConfigKey::AllowHttp))
            .is_some_and(|v| {
                matches!(
                    v.to_ascii_lowercase().as_str(),
                    "1" | "true" | "on" | "yes" | "y"
                )
            });
        if e.to_ascii_lowercase().starts_with("http://") && !allow_http {
            return Err(StageError::InvalidUrl {
                url: shown.to_string(),
                reason: format!(
                    "endpoint {} is plain http: enable allow_http (or AWS_ALLOW_HTTP=true)",
                    crate::stage::redact(e)
                ),
            });
        }
    }
    let endpoint = match endpoint {
        Some(e) => crate::stage::redact(&e).trim_end_matches('/').to_string(),
        None => format!("https://s3.{region}.amazonaws.com"),
    };
    let store = builder.build().map_err(|source| StageError::Configure {
        url: shown.to_string(),
        source,
    })?;
    Ok(S3Store {
        store,
        endpoint,
        bucket,
    })
}
