//! Where bytes live: a local directory or an S3/GCS/Azure bucket, behind `object_store`, with
//! the one commit protocol every write uses.

use std::fs::File;
use std::io::Read;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, WriteMultipart};

use crate::{Error, Result};

/// Files larger than this are uploaded to remote stores in parts.
const MULTIPART_THRESHOLD: u64 = 16 * 1024 * 1024;

/// A store root. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    inner: Arc<dyn ObjectStore>,
    /// The same objects seen from the root of their URL space (`/` of the file system, the
    /// bucket's root), with `root_url` pointing at the store root: what Delta's log store and
    /// kernel resolve table URLs against.
    url_space: Arc<dyn ObjectStore>,
    root_url: url::Url,
    /// Set for local stores: commits then use fsync + rename for crash safety.
    local_root: Option<PathBuf>,
    location: String,
}

impl Store {
    /// Open a store. A plain path or `file://` URL is a local directory (created if missing);
    /// `s3://`, `gs://`, `az://`/`abfs://` URLs use the cloud's usual environment variables for
    /// credentials (`AWS_*`, `GOOGLE_*`, `AZURE_*`).
    pub fn open(location: &str) -> Result<Self> {
        Self::open_with(location, &[])
    }

    /// [`Store::open`], with object-store options on top of the environment's (for a bucket:
    /// `("aws_endpoint", "http://127.0.0.1:9000")`, `("aws_allow_http", "true")`, ...; the
    /// keys `object_store`'s builders take). A local store takes none.
    pub fn open_with(location: &str, options: &[(&str, &str)]) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidStore { location: location.to_string(), reason };
        let scheme = location.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
        match scheme.as_deref() {
            None | Some("file") => {
                if let Some((k, _)) = options.first() {
                    return Err(invalid(format!("option {k:?} is for a bucket; a local store takes none")));
                }
                let raw = location.strip_prefix("file://").unwrap_or(location);
                let root = PathBuf::from(if raw.is_empty() { "." } else { raw });
                std::fs::create_dir_all(&root).map_err(|e| invalid(format!("cannot create directory: {e}")))?;
                let root = root.canonicalize().map_err(|e| invalid(e.to_string()))?;
                let fs = LocalFileSystem::new_with_prefix(&root).map_err(|e| invalid(e.to_string()))?;
                let root_url = url::Url::from_directory_path(&root)
                    .map_err(|()| invalid("not an absolute directory".to_string()))?;
                Ok(Self {
                    inner: Arc::new(fs),
                    url_space: Arc::new(LocalFileSystem::new()),
                    root_url,
                    local_root: Some(root),
                    location: location.to_string(),
                })
            }
            Some(scheme) => {
                let url = url::Url::parse(location).map_err(|e| invalid(e.to_string()))?;
                let prefix = Path::from(url.path().trim_matches('/'));
                let store: Arc<dyn ObjectStore> = match scheme {
                    "s3" | "s3a" => {
                        let mut b = AmazonS3Builder::from_env().with_url(location);
                        for (k, v) in options {
                            b = b.with_config(k.parse()?, *v);
                        }
                        Arc::new(b.build()?)
                    }
                    "gs" => {
                        let mut b = GoogleCloudStorageBuilder::from_env().with_url(location);
                        for (k, v) in options {
                            b = b.with_config(k.parse()?, *v);
                        }
                        Arc::new(b.build()?)
                    }
                    "az" | "abfs" | "abfss" | "azure" => {
                        let mut b = MicrosoftAzureBuilder::from_env().with_url(location);
                        for (k, v) in options {
                            b = b.with_config(k.parse()?, *v);
                        }
                        Arc::new(b.build()?)
                    }
                    other => {
                        return Err(invalid(format!(
                            "unsupported scheme {other:?}; use a path, file://, s3://, gs:// or az://"
                        )));
                    }
                };
                let inner: Arc<dyn ObjectStore> = if prefix.as_ref().is_empty() {
                    store.clone()
                } else {
                    Arc::new(PrefixStore::new(store.clone(), prefix.clone()))
                };
                let mut root_url = url.clone();
                root_url.set_path(&format!(
                    "/{}",
                    if prefix.as_ref().is_empty() { String::new() } else { format!("{prefix}/") }
                ));
                Ok(Self { inner, url_space: store, root_url, local_root: None, location: location.to_string() })
            }
        }
    }

    pub fn location(&self) -> &str {
        &self.location
    }

    pub fn object_store(&self) -> &Arc<dyn ObjectStore> {
        &self.inner
    }

    /// The store root as a URL (ends with `/`): `file:///srv/hr/`, `s3://bucket/prefix/`.
    pub fn root_url(&self) -> &url::Url {
        &self.root_url
    }

    /// The store's objects addressed from the root of `root_url`'s URL space.
    pub(crate) fn url_space(&self) -> &Arc<dyn ObjectStore> {
        &self.url_space
    }

    /// fsync a file the store wrote and its directory (local stores; a no-op for buckets,
    /// whose PUTs are durable when acknowledged).
    pub(crate) fn sync_path(&self, path: &Path) -> Result<()> {
        if let Some(root) = &self.local_root {
            let target = root.join(path.as_ref());
            File::open(&target).and_then(|f| f.sync_all()).map_err(Error::io("fsync", &target))?;
            let mut dir = target.parent();
            while let Some(d) = dir {
                File::open(d).and_then(|f| f.sync_all()).map_err(Error::io("fsync directory", d))?;
                if d == root.as_path() {
                    break;
                }
                dir = d.parent();
            }
        }
        Ok(())
    }

    /// The directory of a local store, `None` for a bucket.
    pub fn local_root(&self) -> Option<&FsPath> {
        self.local_root.as_deref()
    }

    /// Where files are written before they are committed. On a local store this is
    /// `<root>/_staging` (same file system, so the commit is a rename); otherwise a temp dir.
    pub fn staging_dir(&self) -> Result<PathBuf> {
        let dir = match &self.local_root {
            Some(root) => root.join("_staging"),
            None => std::env::temp_dir().join("hrloop-staging"),
        };
        std::fs::create_dir_all(&dir).map_err(Error::io("create staging directory", &dir))?;
        Ok(dir)
    }

    /// Remove staged files older than `max_age` that a crashed writer left behind.
    pub fn sweep_staging(&self, max_age: std::time::Duration) -> Result<usize> {
        let dir = self.staging_dir()?;
        let mut removed = 0;
        for entry in std::fs::read_dir(&dir).map_err(Error::io("read staging directory", &dir))?.flatten() {
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > max_age);
            if old && std::fs::remove_file(entry.path()).is_ok() {
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Move a fully written staged file to `dest`, durably and atomically: readers see either
    /// nothing or the whole file. Returns once the file would survive a crash.
    pub async fn commit_file(&self, staged: &FsPath, dest: &Path) -> Result<()> {
        match &self.local_root {
            Some(root) => {
                let staged = staged.to_path_buf();
                let target = root.join(dest.as_ref());
                let root = root.clone();
                tokio::task::spawn_blocking(move || commit_local(&root, &staged, &target))
                    .await
                    .map_err(|e| Error::Task(e.to_string()))?
            }
            None => {
                let len = std::fs::metadata(staged).map_err(Error::io("stat staged file", staged))?.len();
                if len <= MULTIPART_THRESHOLD {
                    let data = std::fs::read(staged).map_err(Error::io("read staged file", staged))?;
                    self.inner.put(dest, PutPayload::from(data)).await?;
                } else {
                    let mut upload = WriteMultipart::new(self.inner.put_multipart(dest).await?);
                    let mut file = File::open(staged).map_err(Error::io("open staged file", staged))?;
                    let mut buf = vec![0u8; 8 * 1024 * 1024];
                    loop {
                        let n = file.read(&mut buf).map_err(Error::io("read staged file", staged))?;
                        if n == 0 {
                            break;
                        }
                        upload.write(&buf[..n]);
                    }
                    upload.finish().await?;
                }
                std::fs::remove_file(staged).map_err(Error::io("remove staged file", staged))?;
                Ok(())
            }
        }
    }

    /// Write a small object atomically and durably (reports, manifests).
    pub async fn put_atomic(&self, dest: &Path, data: Bytes) -> Result<()> {
        let staged = self.staging_dir()?.join(format!("{}.tmp", uuid::Uuid::new_v4()));
        std::fs::write(&staged, &data).map_err(Error::io("write staged file", &staged))?;
        self.commit_file(&staged, dest).await
    }

    /// Create `dest` only if nothing is there yet: the compare-and-swap primitive the registry
    /// builds on. Returns `false` when it already exists. Durable when it returns `true`.
    pub async fn put_new(&self, dest: &Path, data: Bytes) -> Result<bool> {
        let opts = PutOptions { mode: PutMode::Create, ..PutOptions::default() };
        match self.inner.put_opts(dest, PutPayload::from(data), opts).await {
            Ok(_) => {
                if let Some(root) = &self.local_root {
                    let target = root.join(dest.as_ref());
                    File::open(&target).and_then(|f| f.sync_all()).map_err(Error::io("fsync", &target))?;
                    if let Some(dir) = target.parent() {
                        File::open(dir).and_then(|f| f.sync_all()).map_err(Error::io("fsync directory", dir))?;
                    }
                }
                Ok(true)
            }
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn get(&self, path: &Path) -> Result<Bytes> {
        Ok(self.inner.get(path).await?.bytes().await?)
    }

    /// Whether an object exists at `path`.
    pub async fn exists(&self, path: &Path) -> Result<bool> {
        match self.inner.head(path).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Every object under `prefix`, sorted by path.
    pub async fn list(&self, prefix: &Path) -> Result<Vec<ObjectMeta>> {
        let mut all: Vec<ObjectMeta> = match self.inner.list(Some(prefix)).try_collect().await {
            Ok(v) => v,
            Err(object_store::Error::NotFound { .. }) => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        all.sort_by(|a, b| a.location.cmp(&b.location));
        Ok(all)
    }

    pub async fn delete(&self, path: &Path) -> Result<()> {
        Ok(self.inner.delete(path).await?)
    }
}

/// fsync the staged file, rename it into place, fsync every directory from the target up to
/// the root so the new directory entries are durable too.
fn commit_local(root: &FsPath, staged: &FsPath, target: &FsPath) -> Result<()> {
    File::open(staged).and_then(|f| f.sync_all()).map_err(Error::io("fsync staged file", staged))?;
    let parent = target.parent().unwrap_or(root);
    std::fs::create_dir_all(parent).map_err(Error::io("create directory", parent))?;
    std::fs::rename(staged, target).map_err(Error::io("rename staged file to", target))?;
    let mut dir = Some(parent);
    while let Some(d) = dir {
        File::open(d).and_then(|f| f.sync_all()).map_err(Error::io("fsync directory", d))?;
        if d == root {
            break;
        }
        dir = d.parent();
    }
    Ok(())
}
