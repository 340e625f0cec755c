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
use crate::io::destination::{AT_ONCE, Destination, Listed, at_once};
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
        match self.judged_by_listing(destination, file, depth) {
            Some(verdict) => Ok(verdict),
            None => bytes_problem(destination, file.key, file.md5).await,
        }
    }

    /// The first of `files` that is not as recorded ([`Depth::Unchanged`]), with what is wrong.
    /// Files the listing cannot judge are read [`AT_ONCE`] at a time: a directory (or a store
    /// that lists no ETags) holding a big fan-out's thousands of files is checked in minutes,
    /// not hours.
    pub async fn first_problem<'f>(
        &self,
        destination: &Destination,
        files: impl IntoIterator<Item = &'f ManifestEntry>,
    ) -> Result<Option<(&'f ManifestEntry, String)>, ExportError> {
        let files: Vec<&ManifestEntry> = files.into_iter().collect();
        // A round at a time, so that reading stops at the round with a problem.
        for chunk in files.chunks(AT_ONCE) {
            let judged: Vec<Option<Option<String>>> = chunk
                .iter()
                .map(|file| self.judged_by_listing(destination, (*file).into(), Depth::Unchanged))
                .collect();
            let unjudged = chunk.iter().zip(&judged).filter(|(_, verdict)| verdict.is_none());
            let reads: Vec<(String, String)> =
                unjudged.map(|(file, _)| (file.data_file_s3_key.clone(), file.md5_checksum.clone())).collect();
            let mut read = at_once(reads, |(key, md5)| {
                let destination = destination.clone();
                async move { bytes_problem(&destination, &key, &md5).await }
            })
            .await?
            .into_iter();
            let problems = judged.into_iter().map(|verdict| verdict.unwrap_or_else(|| read.next().flatten()));
            if let Some(found) = chunk.iter().zip(problems).find_map(|(file, problem)| Some((*file, problem?))) {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// What the listing alone says of `file` (`Some(None)`: as recorded), or `None` when only
    /// its bytes can tell.
    fn judged_by_listing(&self, destination: &Destination, file: Record<'_>, depth: Depth) -> Option<Option<String>> {
        let location = || destination.locate(file.key);
        match self.objects.get(file.key) {
            None => Some(Some(format!("data file {} is missing from the store", location()))),
            Some(Listed { etag, .. }) if !etag.is_empty() => Some((*etag != file.etag).then(|| {
                format!(
                    "data file {} has ETag {etag} in the store, not the {} it was stored with",
                    location(),
                    file.etag
                )
            })),
            Some(_) if depth == Depth::Listed => Some(None),
            // A directory whose file has the size and time it was stored with: unchanged. Any
            // other (or an older record, without a stamp) is judged by its bytes.
            Some(Listed { stamp: Some(stamp), .. }) if file.stamp == Some(stamp.as_str()) => Some(None),
            Some(_) => None,
        }
    }
}

/// What is wrong with the stored bytes of `key`, whose MD5 (base64) was recorded as `md5`.
async fn bytes_problem(destination: &Destination, key: &str, md5: &str) -> Result<Option<String>, ExportError> {
    let mut running = RunningMd5::default();
    let found = destination
        .read_chunks(key, |chunk| {
            running.update(chunk);
            Ok(())
        })
        .await?;
    let actual = checksum::base64(&running.finish());
    let location = destination.locate(key);
    Ok(match found {
        false => Some(format!("data file {location} is missing from the store")),
        true => {
            (actual != md5).then(|| format!("data file {location} has MD5 {actual}, not the {md5} it was stored with"))
        }
    })
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
    async fn of_many_files_read_many_at_a_time_the_first_problem_in_their_order_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let destination = Destination::Dir(crate::io::destination::Directory::create(dir.path()).await.unwrap());
        let count = AT_ONCE * 2 + 5;
        let mut files = Vec::new();
        for n in 0..count {
            let (key, body) = (format!("e/data/{n:03}.json.gz"), format!("file {n}"));
            destination.put(&key, body.clone().into_bytes()).await.unwrap();
            // Recorded without a stamp: only the bytes can tell.
            files.push(entry(&key, body.as_bytes(), ""));
        }
        let listing = Listing::of(&destination, "e/data/").await.unwrap();
        assert_eq!(listing.first_problem(&destination, &files).await.unwrap(), None);
        // Two files of the second chunk replaced: the earlier one is named.
        let (first, later) = (AT_ONCE + 3, AT_ONCE + 1 + AT_ONCE / 2);
        for n in [later, first] {
            std::fs::write(dir.path().join(format!("e/data/{n:03}.json.gz")), b"other").unwrap();
        }
        let (file, problem) = listing.first_problem(&destination, &files).await.unwrap().unwrap();
        assert_eq!(file.data_file_s3_key, format!("e/data/{first:03}.json.gz"));
        assert!(problem.contains("has MD5"), "{problem}");
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
