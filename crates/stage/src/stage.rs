//! The stage: an object store, a root prefix, and the load layout under it.

use std::collections::BTreeMap;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use url::Url;

use crate::StageError;
use crate::manifest::{MANIFEST_FILE, Manifest};
use crate::read::LocalLoad;
use crate::writer::{DEFAULT_PART_BYTES, StageWriter};

/// Where loads are staged: an object store plus a root prefix.
///
/// Cheap to clone; clones share the store (a `memory://` stage is shared by
/// its clones only).
#[derive(Debug, Clone)]
pub struct Stage {
    store: Arc<dyn ObjectStore>,
    root: Path,
    url: String,
    local_dir: Option<PathBuf>,
    part_bytes: usize,
}

impl Stage {
    /// Builds a stage from a URL or path.
    ///
    /// Accepts a plain local path (relative or absolute; created if missing),
    /// `file:///abs/path`, `memory://` (a fresh in-memory store), and
    /// `s3://bucket/prefix` (credentials and endpoint from the environment:
    /// `AWS_ACCESS_KEY_ID`, `AWS_ENDPOINT`, `AWS_ALLOW_HTTP`...).
    pub fn from_url(url: &str) -> Result<Stage, StageError> {
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
                url: shown,
                local_dir: None,
                part_bytes: DEFAULT_PART_BYTES,
            }),
            "s3" | "s3a" => {
                let store = AmazonS3Builder::from_env()
                    .with_url(url)
                    .build()
                    .map_err(configure)?;
                Ok(Stage {
                    store: Arc::new(store),
                    root: Path::from_url_path(parsed.path()).map_err(|e| configure(e.into()))?,
                    url: shown,
                    local_dir: None,
                    part_bytes: DEFAULT_PART_BYTES,
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
            url: format!("file://{}", abs.display()),
            local_dir: Some(abs),
            part_bytes: DEFAULT_PART_BYTES,
        })
    }

    /// Sets the uncompressed size at which a writer rolls to a new part file.
    pub fn with_part_bytes(mut self, bytes: usize) -> Self {
        self.part_bytes = bytes.max(1);
        self
    }

    /// The stage's URL for display (credentials redacted).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The stage's absolute root directory, for local stages.
    pub fn local_dir(&self) -> Option<PathBuf> {
        self.local_dir.clone()
    }

    /// Opens a writer for a new load of `pipeline`/`stream`.
    pub fn writer(&self, pipeline: &str, stream: &str, load_id: &str) -> StageWriter {
        StageWriter::new(
            Arc::clone(&self.store),
            self.root.clone(),
            [pipeline, stream, load_id].map(str::to_string),
            self.part_bytes,
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
            .map_err(|source| store_err("get", &path, source))?
            .bytes()
            .await
            .map_err(|source| store_err("get", &path, source))?;
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
            .map_err(|source| store_err("get", &path, source))?
            .into_stream();
        while let Some(chunk) = chunks
            .try_next()
            .await
            .map_err(|source| store_err("get", &path, source))?
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
                    .map_err(|source| store_err("delete", path, source))?;
            }
            deleted.push(id);
        }
        Ok(deleted)
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
            .map_err(|source| store_err("list", &prefix, source))?;
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

pub(crate) fn store_err(op: &'static str, path: &Path, source: object_store::Error) -> StageError {
    StageError::Store {
        op,
        path: path.to_string(),
        source,
    }
}

/// Writes `bytes` to `path` in one put.
pub(crate) async fn put_bytes(
    store: &dyn ObjectStore,
    path: &Path,
    bytes: Vec<u8>,
) -> Result<u64, StageError> {
    let len = bytes.len() as u64;
    store
        .put(path, PutPayload::from(bytes))
        .await
        .map_err(|source| store_err("put", path, source))?;
    Ok(len)
}

/// The URL without userinfo or query (which may carry credentials).
fn redact(url: &str) -> String {
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
