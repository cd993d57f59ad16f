//! The one error type of weft-stage.

/// What failed while staging or reading a load, and where.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StageError {
    /// The stage URL could not be parsed or names an unsupported store.
    #[error("stage url `{url}`: {reason}")]
    InvalidUrl {
        /// The URL, with any credentials redacted.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Building the object store for a URL failed.
    #[error("stage url `{url}`: {source}")]
    Configure {
        /// The URL, with any credentials redacted.
        url: String,
        /// What object_store said.
        #[source]
        source: object_store::Error,
    },
    /// A local file or directory operation failed.
    #[error("stage {op} `{path}`: {source}")]
    Io {
        /// The operation (`create dir`, `write`...).
        op: &'static str,
        /// The local path.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// An object store operation failed.
    #[error("stage {op} `{path}`: {source}")]
    Store {
        /// The operation (`put`, `get`, `list`, `delete`).
        op: &'static str,
        /// The object's path relative to the store.
        path: String,
        /// What object_store said.
        #[source]
        source: object_store::Error,
    },
    /// Writing or reading a Parquet file failed.
    #[error("stage parquet `{path}`: {source}")]
    Parquet {
        /// The file's path.
        path: String,
        /// What parquet said.
        #[source]
        source: parquet::errors::ParquetError,
    },
    /// Building or reading an Arrow batch failed.
    #[error("stage arrow data in `{path}`: {source}")]
    Arrow {
        /// The file's path.
        path: String,
        /// What arrow said.
        #[source]
        source: arrow_schema::ArrowError,
    },
    /// A batch's schema conflicts with earlier batches of the same load
    /// (same column, different type).
    #[error("{pipeline}/{stream}: batch schema conflicts with the load's schema: {source}")]
    SchemaConflict {
        /// Pipeline name.
        pipeline: String,
        /// Stream name.
        stream: String,
        /// What arrow said about the merge.
        #[source]
        source: arrow_schema::ArrowError,
    },
    /// A manifest could not be encoded or decoded.
    #[error("manifest `{path}`: {source}")]
    Manifest {
        /// The manifest's path.
        path: String,
        /// What serde_json said.
        #[source]
        source: serde_json::Error,
    },
    /// A rejects file does not have the expected columns.
    #[error("rejects file `{path}`: {reason}")]
    RejectsFormat {
        /// The file's path.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The store's endpoint could not be reached (connection refused, DNS,
    /// TLS, or no answer in time), after retries.
    #[error("stage `{url}`: endpoint {endpoint} is unreachable ({op} `{path}`): {source}")]
    Unreachable {
        /// The stage URL, with any credentials redacted.
        url: String,
        /// The endpoint the store talks to (`local` for a local store).
        endpoint: String,
        /// The operation (`put`, `get`, `list`, `delete`, `head`).
        op: &'static str,
        /// The object's path relative to the store.
        path: String,
        /// What object_store said.
        #[source]
        source: Box<object_store::Error>,
    },
    /// The store refused the request: wrong or missing credentials, or no
    /// permission for the operation on the bucket.
    #[error(
        "stage `{url}` (bucket `{bucket}`, endpoint {endpoint}): access denied ({op} `{path}`), \
         check the credentials and the bucket's permissions: {source}"
    )]
    AccessDenied {
        /// The stage URL, with any credentials redacted.
        url: String,
        /// The bucket (or the local root directory).
        bucket: String,
        /// The endpoint the store talks to (`local` for a local store).
        endpoint: String,
        /// The operation (`put`, `get`, `list`, `delete`, `head`).
        op: &'static str,
        /// The object's path relative to the store.
        path: String,
        /// What object_store said (it never holds the secret key).
        #[source]
        source: Box<object_store::Error>,
    },
    /// The stage's bucket does not exist.
    #[error("stage `{url}`: bucket `{bucket}` does not exist at endpoint {endpoint}: {source}")]
    BucketNotFound {
        /// The stage URL, with any credentials redacted.
        url: String,
        /// The missing bucket.
        bucket: String,
        /// The endpoint the store talks to.
        endpoint: String,
        /// What object_store said.
        #[source]
        source: Box<object_store::Error>,
    },
    /// A load with this id is already staged (its manifest exists): loads
    /// are immutable, a load id is written once.
    #[error(
        "load `{load_id}` of {pipeline}/{stream} is already staged in `{url}` \
         (its manifest exists); staged loads are immutable, use a new load id"
    )]
    AlreadyExists {
        /// The stage URL, with any credentials redacted.
        url: String,
        /// Pipeline name.
        pipeline: String,
        /// Stream name.
        stream: String,
        /// The load id that is taken.
        load_id: String,
    },
    /// [`Stage::check`](crate::Stage::check) reached the store, but the
    /// probe object did not round-trip.
    #[error("stage `{url}` check: probe object `{path}`: {reason}")]
    CheckFailed {
        /// The stage URL, with any credentials redacted.
        url: String,
        /// The probe object's path relative to the store.
        path: String,
        /// What went wrong.
        reason: String,
    },
}

/// Where a stage lives, for error messages: never holds credentials.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// The stage URL, credentials redacted.
    pub(crate) url: String,
    /// The endpoint (`local` for local and in-memory stores).
    pub(crate) endpoint: String,
    /// The bucket, or the local root.
    pub(crate) bucket: String,
}

impl Target {
    /// Maps an object_store error of `op` on `path` to the most telling
    /// [`StageError`]: unreachable endpoint, access denied, missing bucket,
    /// else [`StageError::Store`].
    pub(crate) fn store_err(
        &self,
        op: &'static str,
        path: &object_store::path::Path,
        source: object_store::Error,
    ) -> StageError {
        let path = path.to_string();
        match classify(&source) {
            Kind::Unreachable => StageError::Unreachable {
                url: self.url.clone(),
                endpoint: self.endpoint.clone(),
                op,
                path,
                source: Box::new(source),
            },
            Kind::Denied => StageError::AccessDenied {
                url: self.url.clone(),
                bucket: self.bucket.clone(),
                endpoint: self.endpoint.clone(),
                op,
                path,
                source: Box::new(source),
            },
            Kind::NoBucket => StageError::BucketNotFound {
                url: self.url.clone(),
                bucket: self.bucket.clone(),
                endpoint: self.endpoint.clone(),
                source: Box::new(source),
            },
            Kind::Other => StageError::Store { op, path, source },
        }
    }
}

enum Kind {
    Unreachable,
    Denied,
    NoBucket,
    Other,
}

/// S3 error codes of refused credentials or permissions.
const DENIED_CODES: &[&str] = &[
    "AccessDenied",
    "SignatureDoesNotMatch",
    "InvalidAccessKeyId",
    "InvalidToken",
    "ExpiredToken",
    "AllAccessDisabled",
];

fn classify(e: &object_store::Error) -> Kind {
    use object_store::client::{HttpError, HttpErrorKind};
    if matches!(
        e,
        object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. }
    ) {
        return Kind::Denied;
    }
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = next {
        if let Some(http) = err.downcast_ref::<HttpError>()
            && matches!(http.kind(), HttpErrorKind::Connect | HttpErrorKind::Timeout)
        {
            return Kind::Unreachable;
        }
        // S3's error code in the response body, or the status: object_store
        // maps statuses to variants for object requests, but not for lists
        // (a generic error around the response).
        let text = err.to_string();
        if text.contains("<Code>NoSuchBucket</Code>") {
            return Kind::NoBucket;
        }
        if DENIED_CODES
            .iter()
            .any(|code| text.contains(&format!("<Code>{code}</Code>")))
            || text.contains("non-2xx status code: 401 ")
            || text.contains("non-2xx status code: 403 ")
        {
            return Kind::Denied;
        }
        next = err.source();
    }
    Kind::Other
}
