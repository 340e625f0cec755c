//! Is a stored data file still what was recorded of it? One check for every step that trusts
//! a record (publish, resume and finalize their own checkpoints, verify the manifest), as strict
//! in a directory as in a bucket, to the [`Depth`] the caller asks.
//!
//! In a bucket the listing's ETag is compared with the one the upload returned (S3 computes it
//! from the stored bytes). A directory has no ETags: a file's size and modification time as
//! stored are recorded with it (its stamp); a file the listing shows with the same stamp is
//! unchanged, and any other (a rewrite changes the stamp; an older record has none) is read
//! again and its MD5 compared with the recorded one. Nothing stored changes unnoticed, and a
//! check of an untouched export costs a listing, not a read of every file.

use std::collections::HashMap;

use crate::error::ExportError;
use crate::io::destination::{Destination, Listed};
use crate::model::checksum::{self, RunningMd5};
use crate::model::{ListedFile, ManifestEntry};

/// How far a stored file is checked against its record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    /// Listed, with the ETag it was stored with (a directory lists none): for a caller that
    /// reads every byte next anyway (verify: MD5 and contents, in one read).
    Listed,
    /// Listed and unchanged: in a bucket its ETag, in a directory its stamp, or when that
    /// differs its bytes' MD5. What publish, resume and finalize trust.
    Unchanged,
}

/// What was recorded of a stored file: a manifest entry's facts.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    pub key: &'a str,
    pub etag: &'a str,
    /// base64.
    pub md5: &'a str,
    /// A directory's stamp, when it was recorded.
    pub stamp: Option<&'a str>,
}

impl<'a> From<&'a ManifestEntry> for Record<'a> {
    fn from(file: &'a ManifestEntry) -> Self {
        Record { key: &file.data_file_s3_key, etag: &file.etag, md5: &file.md5_checksum, stamp: file.stamp.as_deref() }
    }
}

impl<'a> From<&'a ListedFile> for Record<'a> {
    fn from(file: &'a ListedFile) -> Self {
        Record { key: &file.key, etag: &file.etag, md5: &file.md5, stamp: None }
    }
}

/// The objects under some folders, with their ETags (in a bucket) or stamps (in a directory).
pub struct Listing {
    objects: HashMap<String, Listed>,
}

impl Listing {
    /// Lists `prefix`.
    pub async fn of(destination: &Destination, prefix: &str) -> Result<Self, ExportError> {
        Self::of_all(destination, [prefix]).await
    }

    /// Lists each of `prefixes`.
    pub async fn of_all(
        destination: &Destination,
        prefixes: impl IntoIterator<Item = &str>,
    ) -> Result<Self, ExportError> {
        let mut objects = HashMap::new();
        for prefix in prefixes {
            objects.extend(destination.list(prefix).await?.into_iter().map(|o| (o.key.clone(), o)));
        }
        Ok(Self { objects })
    }

    /// Whether `key` is listed.
    pub fn contains(&self, key: &str) -> bool {
        self.objects.contains_key(key)
    }

    /// Every listed key.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.objects.keys().map(String::as_str)
    }

    /// What is wrong with `file` in the store, checked to `depth`, in words naming it (`None`:
    /// it is as recorded).
    pub async fn problem<'r>(
        &self,
        destination: &Destination,
        file: impl Into<Record<'r>>,
        depth: Depth,
    ) -> Result<Option<String>, ExportError> {
        let file = file.into();
        let key = file.key;
        let location = destination.locate(key);
        Ok(match self.objects.get(key) {
            None => Some(format!("data file {location} is missing from the store")),
            Some(Listed { etag, .. }) if !etag.is_empty() => (*etag != file.etag).then(|| {
                format!("data file {location} has ETag {etag} in the store, not the {} it was stored with", file.etag)
            }),
            Some(_) if depth == Depth::Listed => None,
            // A directory whose file has the size and time it was stored with: unchanged. Any
            // other (or an older record, without a stamp) is judged by its bytes.
            Some(Listed { stamp: Some(stamp), .. }) if file.stamp == Some(stamp.as_str()) => None,
            Some(_) => {
                let mut md5 = RunningMd5::default();
                let found = destination
                    .read_chunks(key, |chunk| {
                        md5.update(chunk);
                        Ok(())
                    })
                    .await?;
                let actual = checksum::base64(&md5.finish());
                match found {
                    false => Some(format!("data file {location} is missing from the store")),
                    true => (actual != file.md5).then(|| {
                        format!("data file {location} has MD5 {actual}, not the {} it was stored with", file.md5)
                    }),
                }
            }
        })
    }

    /// The first of `files` that is not as recorded ([`Depth::Unchanged`]), with what is wrong.
    pub async fn first_problem<'f>(
        &self,
        destination: &Destination,
        files: impl IntoIterator<Item = &'f ManifestEntry>,
    ) -> Result<Option<(&'f ManifestEntry, String)>, ExportError> {
        for file in files {
            if let Some(problem) = self.problem(destination, file, Depth::Unchanged).await? {
                return Ok(Some((file, problem)));
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str, body: &[u8], etag: &str) -> ManifestEntry {
        ManifestEntry {
            data_file_s3_key: key.into(),
            item_count: 1,
            md5_checksum: checksum::md5_base64(body),
            etag: etag.into(),
            stamp: None,
        }
    }

    #[tokio::test]
    async fn a_directory_s_files_are_checked_by_their_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let destination = Destination::Dir(crate::io::destination::Directory::create(dir.path()).await.unwrap());
        let written = destination.put("e/data/a.json.gz", b"first".to_vec()).await.unwrap();
        destination.put("e/data/b.json.gz", b"second".to_vec()).await.unwrap();
        let a = entry("e/data/a.json.gz", b"first", &written.etag);
        let b = entry("e/data/b.json.gz", b"second", "whatever");
        let listing = Listing::of(&destination, "e/data/").await.unwrap();
        assert_eq!(listing.first_problem(&destination, [&a, &b]).await.unwrap(), None);

        // Replaced with other bytes behind the run's back, and one deleted.
        std::fs::write(dir.path().join("e/data/b.json.gz"), b"other").unwrap();
        // Listed only: a directory's file is there, whatever its bytes (the caller reads them).
        assert_eq!(listing.problem(&destination, &b, Depth::Listed).await.unwrap(), None);
        let problem = listing.problem(&destination, &b, Depth::Unchanged).await.unwrap().unwrap();
        assert!(problem.contains("b.json.gz has MD5") && problem.contains("not the"), "{problem}");
        std::fs::remove_file(dir.path().join("e/data/a.json.gz")).unwrap();
        let listing = Listing::of(&destination, "e/data/").await.unwrap();
        let (file, problem) = listing.first_problem(&destination, [&a, &b]).await.unwrap().unwrap();
        assert_eq!(file.data_file_s3_key, "e/data/a.json.gz");
        assert!(problem.contains("is missing"), "{problem}");
    }

    #[tokio::test]
    async fn a_directory_s_recorded_stamp_spares_reading_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let destination = Destination::Dir(crate::io::destination::Directory::create(dir.path()).await.unwrap());
        let written = destination.put("e/data/a.json.gz", b"first".to_vec()).await.unwrap();
        let recorded = written.entry(1);
        assert!(recorded.stamp.as_deref().is_some_and(|s| s.starts_with("5@")), "{recorded:?}");
        let listing = Listing::of(&destination, "e/data/").await.unwrap();
        assert_eq!(listing.problem(&destination, &recorded, Depth::Unchanged).await.unwrap(), None);
        let path = dir.path().join("e/data/a.json.gz");
        // Written again, with other bytes of the same length: the stamp changed, the bytes tell.
        std::thread::sleep(std::time::Duration::from_millis(10));
        std::fs::write(&path, b"other").unwrap();
        let listing = Listing::of(&destination, "e/data/").await.unwrap();
        let problem = listing.problem(&destination, &recorded, Depth::Unchanged).await.unwrap().unwrap();
        assert!(problem.contains("has MD5"), "{problem}");
        // Written again with the same bytes (touched): unchanged.
        std::fs::write(&path, b"first").unwrap();
        let listing = Listing::of(&destination, "e/data/").await.unwrap();
        assert_eq!(listing.problem(&destination, &recorded, Depth::Unchanged).await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_bucket_s_files_are_checked_by_their_etags() {
        let dir = tempfile::tempdir().unwrap();
        let destination = Destination::Dir(crate::io::destination::Directory::create(dir.path()).await.unwrap());
        let listed = Listed { key: "k".into(), etag: "abc".into(), stamp: None };
        let listing = Listing { objects: HashMap::from([("k".to_string(), listed)]) };
        assert_eq!(listing.problem(&destination, &entry("k", b"", "abc"), Depth::Unchanged).await.unwrap(), None);
        let problem = listing.problem(&destination, &entry("k", b"", "def"), Depth::Unchanged).await.unwrap().unwrap();
        assert!(problem.contains("has ETag abc in the store, not the def"), "{problem}");
    }
}
