//! Objects as files under a local directory, in the same layout as in a bucket.
//!
//! A file appears under its final name only when complete: it is written in a private
//! staging directory and renamed into place.

use std::path::{Path, PathBuf};

use tokio::io::AsyncWriteExt as _;

use crate::error::ExportError;

/// Staging directory for files being written, beside the export (same filesystem, so the
/// final rename is atomic).
const STAGING_DIR: &str = ".ddb-export-staging";

/// Ends the key part of a staging file's name (`<key, '/' as '!'>~<uuid>`), so the files an
/// interrupted run left can be found by their key's prefix.
const STAGING_SEPARATOR: char = '~';

fn staging_name(key: &str) -> String {
    key.replace('/', "!")
}

/// A file's stamp: its size and modification time, `<bytes>@<ns since the epoch>`. Writing the
/// file again (anything but a clock set back and a same-sized file in the same nanosecond)
/// changes it.
fn stamp(meta: &std::fs::Metadata) -> String {
    let modified = meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
    format!("{}@{}", meta.len(), modified.map_or(0, |d| d.as_nanos()))
}

/// A directory that receives an export.
#[derive(Clone, Debug)]
pub struct Directory {
    pub(crate) root: PathBuf,
}

/// A file being written.
pub struct DirUpload {
    staging: PathBuf,
    target: PathBuf,
    file: tokio::fs::File,
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> ExportError {
    let path = path.to_path_buf();
    move |source| ExportError::Io { action, path, source }
}

impl Directory {
    /// Creates the directory if needed and makes it absolute.
    pub async fn create(root: &Path) -> Result<Self, ExportError> {
        tokio::fs::create_dir_all(root).await.map_err(io("cannot create the destination directory", root))?;
        let root = tokio::fs::canonicalize(root).await.map_err(io("cannot resolve the destination directory", root))?;
        Ok(Self { root })
    }

    /// A directory that must exist already (to read an export from).
    pub async fn existing(root: &Path) -> Result<Self, ExportError> {
        let root = tokio::fs::canonicalize(root).await.map_err(io("cannot open the directory", root))?;
        Ok(Self { root })
    }

    /// Fails early when the directory is not writable.
    pub async fn check(&self) -> Result<(), ExportError> {
        let staging = self.root.join(STAGING_DIR);
        tokio::fs::create_dir_all(&staging).await.map_err(io("cannot write to the destination directory", &staging))?;
        let probe = staging.join(format!("probe-{}", uuid::Uuid::new_v4()));
        tokio::fs::write(&probe, b"").await.map_err(io("cannot write to the destination directory", &probe))?;
        let _ = tokio::fs::remove_file(&probe).await;
        self.tidy().await;
        Ok(())
    }

    /// The path of `key`. Keys come from the snapshot and checked encoder output, which hold
    /// no `..` or empty segments; this refuses them again rather than trust it.
    fn path_of(&self, key: &str) -> Result<PathBuf, ExportError> {
        if key.split('/').any(|part| part.is_empty() || part == "." || part == "..") {
            return Err(ExportError::Internal(format!("refusing to write the unsafe key {key:?}")));
        }
        Ok(self.root.join(key))
    }

    /// Writes a whole object; returns its stamp.
    pub async fn put(&self, key: &str, body: Vec<u8>) -> Result<String, ExportError> {
        let mut upload = self.begin(key).await?;
        if let Err(e) = self.upload_part(&mut upload, body).await {
            self.abort(upload).await;
            return Err(e);
        }
        self.complete(upload).await
    }

    /// Writes a whole object on a condition; `Ok(false)` when the condition does not hold.
    /// `Absent` is atomic (the file is linked into place, which fails if one is there);
    /// `Matches` compares the file's MD5 (a directory's ETag) first, and is not: a second
    /// guard only (`crate::state::lease`).
    pub async fn put_if(&self, key: &str, body: Vec<u8>, condition: &super::Condition) -> Result<bool, ExportError> {
        match condition {
            super::Condition::None => self.put(key, body).await.map(|_| true),
            super::Condition::Matches(etag) => match self.get(key).await? {
                Some(bytes) if crate::model::checksum::hex(&crate::model::checksum::md5(&bytes)) == *etag => {
                    self.put(key, body).await.map(|_| true)
                }
                _ => Ok(false),
            },
            super::Condition::Absent => {
                let mut upload = self.begin(key).await?;
                let written = async {
                    upload.file.write_all(&body).await.map_err(io("cannot write", &upload.staging))?;
                    upload.file.sync_all().await.map_err(io("cannot sync", &upload.staging))?;
                    if let Some(parent) = upload.target.parent() {
                        tokio::fs::create_dir_all(parent).await.map_err(io("cannot create", parent))?;
                    }
                    match tokio::fs::hard_link(&upload.staging, &upload.target).await {
                        Ok(()) => Ok(true),
                        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
                        Err(e) => Err(io("cannot move into place", &upload.target)(e)),
                    }
                }
                .await;
                self.abort(upload).await;
                written
            }
        }
    }

    pub async fn begin(&self, key: &str) -> Result<DirUpload, ExportError> {
        let target = self.path_of(key)?;
        let name = format!("{}{STAGING_SEPARATOR}{}", staging_name(key), uuid::Uuid::new_v4());
        let staging = self.root.join(STAGING_DIR).join(name);
        if let Some(parent) = staging.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(io("cannot create", parent))?;
        }
        let file = tokio::fs::File::create(&staging).await.map_err(io("cannot create", &staging))?;
        Ok(DirUpload { staging, target, file })
    }

    pub async fn upload_part(&self, upload: &mut DirUpload, body: Vec<u8>) -> Result<(), ExportError> {
        upload.file.write_all(&body).await.map_err(io("cannot write", &upload.staging))
    }

    /// Moves the file into place; on failure the staging file is removed. Returns the file's
    /// stamp ([`stamp`]).
    pub async fn complete(&self, mut upload: DirUpload) -> Result<String, ExportError> {
        let placed = async {
            upload.file.flush().await.map_err(io("cannot write", &upload.staging))?;
            upload.file.sync_all().await.map_err(io("cannot sync", &upload.staging))?;
            if let Some(parent) = upload.target.parent() {
                tokio::fs::create_dir_all(parent).await.map_err(io("cannot create", parent))?;
            }
            tokio::fs::rename(&upload.staging, &upload.target)
                .await
                .map_err(io("cannot move into place", &upload.target))?;
            // The rename lasts only once its directory is synced: a checkpoint written later
            // must never outlive the file it records.
            if let Some(parent) = upload.target.parent() {
                let dir = tokio::fs::File::open(parent).await.map_err(io("cannot open", parent))?;
                dir.sync_all().await.map_err(io("cannot sync", parent))?;
            }
            let meta = tokio::fs::metadata(&upload.target).await.map_err(io("cannot inspect", &upload.target))?;
            Ok(stamp(&meta))
        }
        .await;
        match placed {
            Ok(stamp) => Ok(stamp),
            Err(e) => {
                self.abort(upload).await;
                Err(e)
            }
        }
    }

    pub async fn abort(&self, upload: DirUpload) {
        drop(upload.file);
        let _ = tokio::fs::remove_file(&upload.staging).await;
    }

    /// The file's bytes, chunk by chunk as they are read; `None` when there is no such key.
    pub async fn open_chunks(&self, key: &str) -> Result<Option<DirChunks>, ExportError> {
        let path = self.path_of(key)?;
        match tokio::fs::File::open(&path).await {
            Ok(file) => Ok(Some(DirChunks { file, path, buffer: vec![0; CHUNK_BYTES] })),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io("cannot read", &path)(e)),
        }
    }

    /// The file's bytes, or `None` when there is no such key.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, ExportError> {
        let path = self.path_of(key)?;
        match tokio::fs::read(&path).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io("cannot read", &path)(e)),
        }
    }

    /// Every file whose key starts with `prefix`, with its stamp. The staging area is not
    /// listed.
    pub async fn list(&self, prefix: &str) -> Result<Vec<(String, String)>, ExportError> {
        // Walk from the deepest directory the prefix names; filter on the rest.
        let base = prefix.rsplit_once('/').map_or("", |(dir, _)| dir);
        let mut found = Vec::new();
        let mut pending =
            vec![(if base.is_empty() { self.root.clone() } else { self.path_of(base)? }, base.to_string())];
        while let Some((dir, key_dir)) = pending.pop() {
            let mut entries = match tokio::fs::read_dir(&dir).await {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io("cannot list", &dir)(e)),
            };
            while let Some(entry) = entries.next_entry().await.map_err(io("cannot list", &dir))? {
                let name = entry.file_name().to_string_lossy().into_owned();
                if key_dir.is_empty() && name == STAGING_DIR {
                    continue;
                }
                let key = if key_dir.is_empty() { name } else { format!("{key_dir}/{name}") };
                let meta = entry.metadata().await.map_err(io("cannot inspect", &entry.path()))?;
                if meta.is_dir() {
                    if prefix.starts_with(&format!("{key}/")) || key.starts_with(prefix) {
                        pending.push((entry.path(), key));
                    }
                } else if key.starts_with(prefix) {
                    found.push((key, stamp(&meta)));
                }
            }
        }
        found.sort();
        Ok(found)
    }

    /// The names of the directories right under `prefix` (which ends with `/`).
    pub async fn folders(&self, prefix: &str) -> Result<Vec<String>, ExportError> {
        let dir = match prefix.trim_end_matches('/') {
            "" => self.root.clone(),
            key => self.path_of(key)?,
        };
        let mut entries = match tokio::fs::read_dir(&dir).await {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io("cannot list", &dir)(e)),
        };
        let mut folders = Vec::new();
        while let Some(entry) = entries.next_entry().await.map_err(io("cannot list", &dir))? {
            if entry.file_type().await.map_err(io("cannot inspect", &entry.path()))?.is_dir() {
                folders.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        Ok(folders)
    }

    pub async fn delete(&self, key: &str) -> Result<(), ExportError> {
        let path = self.path_of(key)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io("cannot delete", &path)(e)),
        }
    }

    /// Removes the staging files of objects under `prefix` that an interrupted run left behind.
    pub async fn abort_stale(&self, prefix: &str) -> Result<usize, ExportError> {
        let staging = self.root.join(STAGING_DIR);
        let mut entries = match tokio::fs::read_dir(&staging).await {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(io("cannot list", &staging)(e)),
        };
        let wanted = staging_name(prefix);
        let mut removed = 0;
        while let Some(entry) = entries.next_entry().await.map_err(io("cannot list", &staging))? {
            let name = entry.file_name().to_string_lossy().into_owned();
            let key_part = name.rsplit_once(STAGING_SEPARATOR).map_or(name.as_str(), |(key, _)| key);
            if key_part.starts_with(&wanted) {
                tokio::fs::remove_file(entry.path()).await.map_err(io("cannot remove", &entry.path()))?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Removes the staging directory if nothing is left in it.
    pub async fn tidy(&self) {
        let _ = tokio::fs::remove_dir(self.root.join(STAGING_DIR)).await;
    }
}
/// Bytes read from a file at a time.
const CHUNK_BYTES: usize = 1 << 20;

/// A file's bytes, chunk by chunk.
pub struct DirChunks {
    file: tokio::fs::File,
    path: PathBuf,
    buffer: Vec<u8>,
}

impl DirChunks {
    /// The next chunk; `None` at the end.
    pub async fn next(&mut self) -> Result<Option<bytes::Bytes>, ExportError> {
        use tokio::io::AsyncReadExt as _;
        let read = self.file.read(&mut self.buffer).await.map_err(io("cannot read", &self.path))?;
        Ok((read > 0).then(|| bytes::Bytes::copy_from_slice(&self.buffer[..read])))
    }
}
