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

    /// Writes a whole object.
    pub async fn put(&self, key: &str, body: Vec<u8>) -> Result<(), ExportError> {
        let mut upload = self.begin(key).await?;
        if let Err(e) = self.upload_part(&mut upload, body).await {
            self.abort(upload).await;
            return Err(e);
        }
        self.complete(upload).await
    }

    pub async fn begin(&self, key: &str) -> Result<DirUpload, ExportError> {
        let target = self.path_of(key)?;
        let staging = self.root.join(STAGING_DIR).join(uuid::Uuid::new_v4().to_string());
        if let Some(parent) = staging.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(io("cannot create", parent))?;
        }
        let file = tokio::fs::File::create(&staging).await.map_err(io("cannot create", &staging))?;
        Ok(DirUpload { staging, target, file })
    }

    pub async fn upload_part(&self, upload: &mut DirUpload, body: Vec<u8>) -> Result<(), ExportError> {
        upload.file.write_all(&body).await.map_err(io("cannot write", &upload.staging))
    }

    /// Moves the file into place; on failure the staging file is removed.
    pub async fn complete(&self, mut upload: DirUpload) -> Result<(), ExportError> {
        let placed = async {
            upload.file.flush().await.map_err(io("cannot write", &upload.staging))?;
            upload.file.sync_all().await.map_err(io("cannot sync", &upload.staging))?;
            if let Some(parent) = upload.target.parent() {
                tokio::fs::create_dir_all(parent).await.map_err(io("cannot create", parent))?;
            }
            tokio::fs::rename(&upload.staging, &upload.target)
                .await
                .map_err(io("cannot move into place", &upload.target))
        }
        .await;
        match placed {
            Ok(()) => Ok(()),
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

    /// Removes the staging directory if nothing is left in it.
    pub async fn tidy(&self) {
        let _ = tokio::fs::remove_dir(self.root.join(STAGING_DIR)).await;
    }
}
