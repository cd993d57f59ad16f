//! The stage: an object store, a root prefix, and the load layout under it.

use std::collections::BTreeMap;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use futures::TryStreamExt;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutPayload};
use url::Url;

use crate::StageError;
use crate::error::Target;
use crate::manifest::{MANIFEST_FILE, Manifest};
use crate::read::LocalLoad;
use crate::s3::{self, S3Options};
use crate::writer::{
    DEFAULT_MULTIPART_THRESHOLD, DEFAULT_PART_BYTES, MIN_MULTIPART_CHUNK, StageWriter,
};

/// The directory under a stage's root that [`Stage::check`] writes its
/// probe objects to (and deletes them from).
pub const CHECK_DIR: &str = "_weft_check";

/// Where loads are staged: an object store plus a root prefix.
///
/// Cheap to clone; clones share the store (a `memory://` stage is shared by
/// its clones only).
#[derive(Debug, Clone)]
pub struct Stage {
    store: Arc<dyn ObjectStore>,
    root: Path,
    target: Target,
    local_dir: Option<PathBuf>,
    part_bytes: usize,
    multipart_bytes: usize,
}

impl Stage {
    /// Builds a stage from a URL or path.
    ///
    /// Accepts a plain local path (relative or absolute; created if missing),
    /// `file:///abs/path`, `memory://` (a fresh in-memory store), and
    /// `s3://bucket/prefix` (credentials and endpoint from the environment:
    /// `AWS_ACCESS_KEY_ID`, `AWS_ENDPOINT`, `AWS_ALLOW_HTTP`...; this is
    /// [`Stage::s3`] with no explicit options).
    pub fn from_url(url: &str) -> Result<Stage, StageError> {
        Stage::build(url, None)
    }

    /// Builds an `s3://bucket/prefix` (or `s3a://`) stage: settings from the
    /// environment as with [`Stage::from_url`], overridden by every field set
    /// in `options`.
    ///
    /// Requests are retried on 5xx, 429 and connection errors (at most 5
    /// retries, none started later than 60 s after the first attempt).
    /// Building does not contact the store: call [`Stage::check`] for that.
    pub fn s3(url: &str, options: &S3Options) -> Result<Stage, StageError> {
        Stage::build(url, Some(options))
    }

    /// [`Stage::from_url`] (`options` `None`) or [`Stage::s3`].
    fn build(url: &str, options: Option<&S3Options>) -> Result<Stage, StageError> {
        if options.is_some() && !(url.starts_with("s3://") || url.starts_with("s3a://")) {
            return Err(StageError::InvalidUrl {
                url: redact(url),
                reason: "S3 options need an s3://bucket/prefix url".to_string(),
            });
        }
        if !url.contains("://") {
            return Stage::local(FsPath::new(url), url);
        }
        let shown = redact(url);
        let parsed = Url::parse(url).map_err(|e| StageError::InvalidUrl {
            url: shown.clone(),
            reason: e.to_string(),
        })?;
        let configure = |source| StageError::Configure {
            url: shown.clone(),
            source,
        };
        match parsed.scheme() {
            "file" => {
                let path = parsed.to_file_path().map_err(|()| StageError::InvalidUrl {
                    url: shown.clone(),
                    reason: "not an absolute local path".to_string(),
                })?;
                Stage::local(&path, &shown)
            }
            "memory" => Ok(Stage {
                store: Arc::new(InMemory::new()),
                root: Path::from_url_path(parsed.path()).map_err(|e| configure(e.into()))?,
                target: Target {
                    url: shown.clone(),
                    endpoint: "local".to_string(),
                    bucket: "memory".to_string(),
                },
                local_dir: None,
                part_bytes: DEFAULT_PART_BYTES,
                multipart_bytes: DEFAULT_MULTIPART_THRESHOLD,
            }),
            "s3" | "s3a" => {
                let options = options.cloned().unwrap_or_default();
                let root = Path::from_url_path(parsed.path()).map_err(|e| configure(e.into()))?;
                let built = s3::build(url, &shown, &options)?;
                let stage = Stage {
                    store: Arc::new(built.store),
                    root,
                    target: Target {
                        url: shown.clone(),
                        endpoint: built.endpoint,
                        bucket: built.bucket,
                    },
                    local_dir: None,
                    part_bytes: DEFAULT_PART_BYTES,
                    multipart_bytes: DEFAULT_MULTIPART_THRESHOLD,
                };
                Ok(match options.multipart_threshold_bytes {
                    Some(bytes) => stage.with_multipart_threshold(bytes),
                    None => stage,
                })
            }
            other => Err(StageError::InvalidUrl {
                url: shown.clone(),
                reason: format!(
                    "unsupported scheme `{other}` (use a path, file://, memory:// or s3://)"
                ),
            }),
        }
    }

    fn local(path: &FsPath, shown: &str) -> Result<Stage, StageError> {
        let io = |op, source| StageError::Io {
            op,
            path: path.display().to_string(),
            source,
        };
        std::fs::create_dir_all(path).map_err(|e| io("create dir", e))?;
        let abs = std::fs::canonicalize(path).map_err(|e| io("resolve", e))?;
        let store = LocalFileSystem::new_with_prefix(&abs)
            .map_err(|source| StageError::Configure {
                url: shown.to_string(),
                source,
            })?
            .with_automatic_cleanup(true);
        Ok(Stage {
            store: Arc::new(store),
            root: Path::default(),
            target: Target {
                url: format!("file://{}", abs.display()),
                endpoint: "local".to_string(),
                bucket: abs.display().to_string(),
            },
            local_dir: Some(abs),
            part_bytes: DEFAULT_PART_BYTES,
            multipart_bytes: DEFAULT_MULTIPART_THRESHOLD,
        })
    }

    /// Sets the uncompressed size at which a writer rolls to a new part file.
    pub fn with_part_bytes(mut self, bytes: usize) -> Self {
        self.part_bytes = bytes.max(1);
        self
    }

    /// Sets the size above which a part file is uploaded with multipart
    /// upload, in chunks of this size (smaller parts go in one `PUT`).
    /// Raised to [`MIN_MULTIPART_CHUNK`], S3's minimum part size.
    pub fn with_multipart_threshold(mut self, bytes: usize) -> Self {
        self.multipart_bytes = bytes.max(MIN_MULTIPART_CHUNK);
        self
    }

    /// The size above which part files are uploaded with multipart upload.
    pub fn multipart_threshold(&self) -> usize {
        self.multipart_bytes
    }

    /// The stage's URL for display (credentials redacted).
    pub fn url(&self) -> &str {
        &self.target.url
    }

    /// The endpoint the stage's store talks to, for display (`local` for
    /// local and in-memory stages; AWS's regional endpoint for an `s3://`
    /// stage without one).
    pub fn endpoint(&self) -> &str {
        &self.target.endpoint
    }

    /// The stage's absolute root directory, for local stages.
    pub fn local_dir(&self) -> Option<PathBuf> {
        self.local_dir.clone()
    }

    /// The object store the stage lives in, for warehouses that stream the
    /// staged files themselves (see [`Stage::object_path`]).
    pub fn object_store(&self) -> Arc<dyn ObjectStore> {
        Arc::clone(&self.store)
    }

    /// The object store path of a file a [`Manifest`] names (a part file's
    /// `path` or the `rejects_file`, relative to the stage root).
    pub fn object_path(&self, rel: &str) -> Path {
        self.relative(rel)
    }

    /// Opens a writer for a new load of `pipeline`/`stream`.
    pub fn writer(&self, pipeline: &str, stream: &str, load_id: &str) -> StageWriter {
        StageWriter::new(
            Arc::clone(&self.store),
            self.root.clone(),
            self.target.clone(),
            [pipeline, stream, load_id].map(str::to_string),
            [self.part_bytes, self.multipart_bytes],
        )
    }

    /// Reads the manifest of a complete load.
    pub async fn manifest(
        &self,
        pipeline: &str,
        stream: &str,
        load_id: &str,
    ) -> Result<Manifest, StageError> {
        let path = self.object(&[pipeline, stream, load_id, MANIFEST_FILE]);
        let bytes = self
            .store
            .get(&path)
            .await
            .map_err(|source| self.target.store_err("get", &path, source))?
            .bytes()
            .await
            .map_err(|source| self.target.store_err("get", &path, source))?;
        serde_json::from_slice(&bytes).map_err(|source| StageError::Manifest {
            path: path.to_string(),
            source,
        })
    }

    /// Ids of the complete loads (those with a manifest) of a stream, sorted.
    pub async fn list_loads(
        &self,
        pipeline: &str,
        stream: &str,
    ) -> Result<Vec<String>, StageError> {
        let loads = self.scan(pipeline, stream).await?;
        Ok(loads
            .into_iter()
            .filter(|(_, l)| l.complete)
            .map(|(id, _)| id)
            .collect())
    }

    /// Makes a load's files readable from local disk.
    ///
    /// Files of a local stage are returned in place; files of a remote stage
    /// are downloaded into `dir` (keeping their relative paths).
    pub async fn fetch_to_local(
        &self,
        manifest: &Manifest,
        dir: &FsPath,
    ) -> Result<LocalLoad, StageError> {
        let mut parts = Vec::with_capacity(manifest.files.len());
        for file in &manifest.files {
            parts.push(self.fetch_one(&file.path, dir).await?);
        }
        let rejects = match &manifest.rejects_file {
            Some(rel) => Some(self.fetch_one(rel, dir).await?),
            None => None,
        };
        Ok(LocalLoad { parts, rejects })
    }

    async fn fetch_one(&self, rel: &str, dir: &FsPath) -> Result<PathBuf, StageError> {
        if let Some(root) = &self.local_dir {
            return Ok(root.join(rel));
        }
        let path = self.relative(rel);
        let target = dir.join(rel);
        let io = |op, source| StageError::Io {
            op,
            path: target.display().to_string(),
            source,
        };
        if let Some(parent) = target.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| io("create dir", e))?;
        }
        let mut file = tokio::fs::File::create(&target)
            .await
            .map_err(|e| io("create", e))?;
        let mut chunks = self
            .store
            .get(&path)
            .await
            .map_err(|source| self.target.store_err("get", &path, source))?
            .into_stream();
        while let Some(chunk) = chunks
            .try_next()
            .await
            .map_err(|source| self.target.store_err("get", &path, source))?
        {
            tokio::io::AsyncWriteExt::write_all(&mut file, &chunk)
                .await
                .map_err(|e| io("write", e))?;
        }
        tokio::io::AsyncWriteExt::flush(&mut file)
            .await
            .map_err(|e| io("write", e))?;
        Ok(target)
    }

    /// Deletes old loads of a stream, keeping the newest `keep_last` complete ones.
    ///
    /// Incomplete loads (no manifest) older than the newest complete load are
    /// orphans of crashed runs and are deleted too; newer ones may still be
    /// in progress and are kept. Returns the ids of the deleted loads.
    pub async fn prune(
        &self,
        pipeline: &str,
        stream: &str,
        keep_last: usize,
    ) -> Result<Vec<String>, StageError> {
        let loads = self.scan(pipeline, stream).await?;
        let complete: Vec<&String> = loads
            .iter()
            .filter(|(_, l)| l.complete)
            .map(|(id, _)| id)
            .collect();
        let Some(newest) = complete.last().map(|s| s.to_string()) else {
            return Ok(Vec::new());
        };
        let keep_from = complete.len().saturating_sub(keep_last);
        let kept: Vec<String> = complete[keep_from..]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let mut deleted = Vec::new();
        for (id, load) in loads {
            let drop = if load.complete {
                !kept.contains(&id)
            } else {
                id < newest
            };
            if !drop {
                continue;
            }
            for path in &load.objects {
                self.store
                    .delete(path)
                    .await
                    .map_err(|source| self.target.store_err("delete", path, source))?;
            }
            deleted.push(id);
        }
        Ok(deleted)
    }

    /// Checks that the stage is usable: lists `{root}/_weft_check/` (so a
    /// missing bucket is reported, not auto-created by stores that create
    /// buckets on upload), writes a small probe object
    /// `{root}/_weft_check/{random}` (create-only, like a manifest), lists
    /// it, reads it back and deletes it.
    ///
    /// Fails with [`StageError::Unreachable`] when the endpoint cannot be
    /// reached, [`StageError::AccessDenied`] for wrong credentials or missing
    /// permissions, [`StageError::BucketNotFound`] when the bucket does not
    /// exist, and [`StageError::CheckFailed`] when the probe does not
    /// round-trip; errors name the stage URL, bucket and endpoint, never the
    /// credentials. The probe is deleted even when reading it back fails.
    /// Logs a warning when the store accepts a second create-only put of the
    /// probe (it does not enforce `If-None-Match`).
    pub async fn check(&self) -> Result<(), StageError> {
        let dir = self.object(&[CHECK_DIR]);
        self.store
            .list_with_delimiter(Some(&dir))
            .await
            .map_err(|source| self.target.store_err("list", &dir, source))?;
        let token = format!("{:016x}", rand::random::<u64>());
        let path = self.object(&[CHECK_DIR, &token]);
        let body = format!("weft stage check {token}\n").into_bytes();
        if !put_new(self.store.as_ref(), &self.target, &path, body.clone()).await? {
            return Err(self.check_failed(&path, "an object with the probe's random name exists"));
        }
        let verified = self.verify_probe(&path, &body).await;
        let deleted = self
            .store
            .delete(&path)
            .await
            .map_err(|source| self.target.store_err("delete", &path, source));
        verified?;
        deleted?;
        tracing::debug!(stage = %self.target.url, endpoint = %self.target.endpoint, "stage check passed");
        Ok(())
    }

    async fn verify_probe(&self, path: &Path, body: &[u8]) -> Result<(), StageError> {
        let got = self
            .store
            .get(path)
            .await
            .map_err(|source| self.target.store_err("get", path, source))?
            .bytes()
            .await
            .map_err(|source| self.target.store_err("get", path, source))?;
        if got.as_ref() != body {
            return Err(self.check_failed(
                path,
                &format!(
                    "read back {} bytes that differ from the {} written",
                    got.len(),
                    body.len()
                ),
            ));
        }
        let dir = self.object(&[CHECK_DIR]);
        let listed: Vec<_> = self
            .store
            .list(Some(&dir))
            .try_collect()
            .await
            .map_err(|source| self.target.store_err("list", &dir, source))?;
        if !listed.iter().any(|meta| meta.location == *path) {
            return Err(self.check_failed(path, "written but not listed"));
        }
        if put_new(self.store.as_ref(), &self.target, path, body.to_vec()).await? {
            tracing::warn!(
                stage = %self.target.url,
                endpoint = %self.target.endpoint,
                "the store does not enforce create-only puts (If-None-Match): \
                 a load's manifest is protected from overwrites only by a check before writing it"
            );
        }
        Ok(())
    }

    fn check_failed(&self, path: &Path, reason: &str) -> StageError {
        StageError::CheckFailed {
            url: self.target.url.clone(),
            path: path.to_string(),
            reason: reason.to_string(),
        }
    }

    async fn scan(
        &self,
        pipeline: &str,
        stream: &str,
    ) -> Result<BTreeMap<String, ScannedLoad>, StageError> {
        let prefix = self.object(&[pipeline, stream]);
        let objects: Vec<_> = self
            .store
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(|source| self.target.store_err("list", &prefix, source))?;
        let mut loads: BTreeMap<String, ScannedLoad> = BTreeMap::new();
        for meta in objects {
            let (id, depth) = match meta.location.prefix_match(&prefix) {
                Some(mut rest) => match rest.next() {
                    Some(id) => (id.as_ref().to_string(), rest.count()),
                    None => continue,
                },
                None => continue,
            };
            let load = loads.entry(id).or_default();
            if depth == 1 && meta.location.filename() == Some(MANIFEST_FILE) {
                load.complete = true;
            }
            load.objects.push(meta.location);
        }
        Ok(loads)
    }

    fn object(&self, parts: &[&str]) -> Path {
        let mut path = self.root.clone();
        for p in parts {
            path = path.join(*p);
        }
        path
    }

    fn relative(&self, rel: &str) -> Path {
        let parts: Vec<&str> = rel.split('/').filter(|p| !p.is_empty()).collect();
        self.object(&parts)
    }
}

#[derive(Debug, Default)]
struct ScannedLoad {
    complete: bool,
    objects: Vec<Path>,
}

/// Writes `bytes` to `path` in one put, only if nothing is there yet
/// (`PutMode::Create`). Returns `false`, writing nothing, when the object
/// exists. A store without conditional puts (`NotImplemented`) gets a plain
/// put: callers check existence first ([`exists`]).
pub(crate) async fn put_new(
    store: &dyn ObjectStore,
    target: &Target,
    path: &Path,
    bytes: Vec<u8>,
) -> Result<bool, StageError> {
    let payload = PutPayload::from(bytes);
    match store
        .put_opts(path, payload.clone(), PutMode::Create.into())
        .await
    {
        Ok(_) => Ok(true),
        Err(
            object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. },
        ) => Ok(false),
        Err(object_store::Error::NotImplemented { .. }) => {
            tracing::debug!(
                stage = %target.url,
                path = %path,
                "store has no conditional put: plain put"
            );
            store
                .put(path, payload)
                .await
                .map_err(|source| target.store_err("put", path, source))?;
            Ok(true)
        }
        Err(source) => Err(target.store_err("put", path, source)),
    }
}

/// Whether an object exists at `path`.
pub(crate) async fn exists(
    store: &dyn ObjectStore,
    target: &Target,
    path: &Path,
) -> Result<bool, StageError> {
    match store.head(path).await {
        Ok(_) => Ok(true),
        Err(object_store::Error::NotFound { .. }) => Ok(false),
        Err(source) => Err(target.store_err("head", path, source)),
    }
}

/// The URL without userinfo or query (which may carry credentials).
pub(crate) fn redact(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_password(None);
            let _ = u.set_username("");
            u.set_query(None);
            u.to_string()
        }
        Err(_) => "<unparseable url>".to_string(),
    }
}
