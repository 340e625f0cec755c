//! Where an export is written: an S3 bucket or a local directory, behind one interface.
//!
//! [`ObjectWriter`] streams an object of unknown length: it buffers up to [`PART_SIZE`] and
//! stores a small object with one PUT, a larger one as a multipart upload, and computes the
//! MD5 of everything it wrote on the way.

mod dir;
mod s3;
mod target;

pub use dir::{DirChunks, Directory};
pub use s3::{S3Bucket, S3Chunks};
pub use target::Target;

use crate::error::ExportError;
use crate::model::checksum::{self, RunningMd5};

/// Requests [`at_once`] has in flight: a many-object read, delete or check.
pub(crate) const AT_ONCE: usize = 32;

/// Runs `task` on each of `inputs`, [`AT_ONCE`] at a time: the answers in the order of
/// `inputs`, or the first error.
pub(crate) async fn at_once<I, T, F>(inputs: Vec<I>, task: impl Fn(I) -> F) -> Result<Vec<T>, ExportError>
where
    T: Send + 'static,
    F: std::future::Future<Output = Result<T, ExportError>> + Send + 'static,
{
    let mut answers = Vec::with_capacity(inputs.len());
    let mut inputs = inputs.into_iter().peekable();
    while inputs.peek().is_some() {
        let mut running = tokio::task::JoinSet::new();
        for (at, input) in inputs.by_ref().take(AT_ONCE).enumerate() {
            let request = task(input);
            running.spawn(async move { (at, request.await) });
        }
        let mut round: Vec<Option<T>> = std::iter::repeat_with(|| None).take(running.len()).collect();
        while let Some(done) = running.join_next().await {
            let (at, answer) =
                done.map_err(|e| ExportError::Internal(format!("one of many concurrent requests failed: {e}")))?;
            round[at] = Some(answer?);
        }
        answers.extend(round.into_iter().flatten());
    }
    Ok(answers)
}

/// Size of a multipart upload part (S3's minimum is 5 MiB for all but the last).
pub const PART_SIZE: usize = 8 * 1024 * 1024;
/// S3's limit on the parts of one upload.
const MAX_PARTS: usize = 10_000;
/// Parts per size tier: parts 1-1000 are 8 MiB, 1001-2000 16 MiB, 2001-3000 32 MiB, the rest
/// 64 MiB, so one object can reach [`MAX_OBJECT_BYTES`] while a writer buffers at most 64 MiB.
const PARTS_PER_TIER: usize = 1_000;
/// The largest object an [`ObjectWriter`] can store (about 492 GiB).
pub const MAX_OBJECT_BYTES: u64 =
    (PARTS_PER_TIER * (8 + 16 + 32) + (MAX_PARTS - 3 * PARTS_PER_TIER) * 64) as u64 * 1024 * 1024;

/// The size of the part after `parts_done` parts.
fn part_size(parts_done: usize) -> usize {
    PART_SIZE << (parts_done / PARTS_PER_TIER).min(3)
}

/// Settings of the objects written to S3.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct S3Options {
    /// `--s3-bucket-owner`: the account that must own the bucket.
    pub expected_owner: Option<String>,
    /// `--s3-sse-kms-key-id`: encrypt with this KMS key instead of the bucket's default.
    pub kms_key_id: Option<String>,
}

/// When a conditional write ([`Destination::put_if`]) may replace what is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// Always.
    None,
    /// Only when there is no object under the key (`If-None-Match: *`).
    Absent,
    /// Only when the stored object has this ETag (`If-Match`).
    Matches(String),
}

/// An export's destination.
#[derive(Clone, Debug)]
pub enum Destination {
    S3 { bucket: S3Bucket, prefix: Option<String> },
    Dir(Directory),
}

/// An object found by a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub key: String,
    /// Without quotes; empty where the store has none (a directory).
    pub etag: String,
    /// A directory's file: its size and modification time (see [`Written::stamp`]).
    pub stamp: Option<String>,
}

/// The result of storing one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub key: String,
    /// The ETag the store returned, without quotes.
    pub etag: String,
    /// base64 MD5 of the bytes written.
    pub md5_base64: String,
    pub size_bytes: u64,
    /// In a directory, the stored file's size and modification time (`<size>@<ns since the
    /// epoch>`): it changes whenever the file is written again, so a check of a file against
    /// its record need not read it. `None` in a bucket, whose ETag does that.
    pub stamp: Option<String>,
}

impl Written {
    /// The stored data file as its manifest line (and its record) has it.
    pub fn entry(self, item_count: u64) -> crate::model::ManifestEntry {
        crate::model::ManifestEntry {
            data_file_s3_key: self.key,
            item_count,
            md5_checksum: self.md5_base64,
            etag: self.etag,
            stamp: self.stamp,
        }
    }
}

enum Upload {
    S3(s3::S3Upload),
    Dir(dir::DirUpload),
}

impl Destination {
    /// Opens the destination `target` names. A directory is created if missing.
    pub async fn open(target: &Target, s3: &aws_sdk_s3::Client, options: &S3Options) -> Result<Self, ExportError> {
        Ok(match target {
            Target::S3 { bucket, prefix } => Destination::S3 {
                bucket: S3Bucket {
                    client: s3.clone(),
                    bucket: bucket.clone(),
                    expected_owner: options.expected_owner.clone(),
                    kms_key_id: options.kms_key_id.clone(),
                },
                prefix: prefix.clone(),
            },
            Target::Dir(path) => Destination::Dir(Directory::create(path).await?),
        })
    }

    /// Opens `target` where an export must already be (a planned export's workers): as
    /// [`Self::open`], except that a directory must exist rather than being created.
    pub async fn open_existing(
        target: &Target,
        s3: &aws_sdk_s3::Client,
        options: &S3Options,
    ) -> Result<Self, ExportError> {
        match target {
            Target::Dir(path) => Ok(Destination::Dir(Directory::existing(path).await?)),
            Target::S3 { .. } => Self::open(target, s3, options).await,
        }
    }

    /// Opens `target` to read exports from: a directory must exist, and AWS clients are
    /// only made for a bucket.
    pub async fn open_for_reading(target: &Target) -> Result<Self, ExportError> {
        match target {
            Target::Dir(path) => Ok(Destination::Dir(Directory::existing(path).await?)),
            Target::S3 { .. } => {
                let aws = crate::io::aws::AwsClients::from_env().await?;
                let destination = Self::open(target, &aws.s3, &S3Options::default()).await?;
                destination.check().await?;
                Ok(destination)
            }
        }
    }

    /// The `s3Bucket` of the summary: the bucket, or the directory's absolute path.
    pub fn bucket_name(&self) -> String {
        match self {
            Destination::S3 { bucket, .. } => bucket.bucket.clone(),
            Destination::Dir(dir) => dir.root.display().to_string(),
        }
    }

    /// The key prefix; a directory has none.
    pub fn prefix(&self) -> Option<String> {
        match self {
            Destination::S3 { prefix, .. } => prefix.clone(),
            Destination::Dir(_) => None,
        }
    }

    /// Where a key ends up, for messages: `s3://bucket/key` or a path.
    pub fn locate(&self, key: &str) -> String {
        match self {
            Destination::S3 { bucket, .. } => format!("s3://{}/{key}", bucket.bucket),
            Destination::Dir(dir) => dir.root.join(key).display().to_string(),
        }
    }

    /// Fails early, naming the problem, when the destination cannot be written.
    pub async fn check(&self) -> Result<(), ExportError> {
        match self {
            Destination::S3 { bucket, .. } => bucket.check().await,
            Destination::Dir(dir) => dir.check().await,
        }
    }

    /// Stores a whole object. Its MD5 is computed once: it is the `Content-MD5` sent to S3,
    /// the `md5_base64` returned, and a directory's ETag (as S3 computes one for a single PUT).
    pub async fn put(&self, key: &str, body: Vec<u8>) -> Result<Written, ExportError> {
        let digest = checksum::md5(&body);
        self.put_digested(key, body, digest).await
    }

    /// [`Self::put`] of a body whose MD5 the caller computed as it made the body.
    async fn put_digested(&self, key: &str, body: Vec<u8>, digest: [u8; 16]) -> Result<Written, ExportError> {
        let md5_base64 = checksum::base64(&digest);
        let size_bytes = body.len() as u64;
        let (etag, stamp) = match self {
            Destination::S3 { bucket, .. } => (bucket.put(key, body, md5_base64.clone()).await?, None),
            Destination::Dir(dir) => (checksum::hex(&digest), Some(dir.put(key, body).await?)),
        };
        Ok(Written { key: key.to_string(), etag, md5_base64, size_bytes, stamp })
    }

    /// Stores a whole object if `condition` holds; `None` when it does not (someone else wrote
    /// the key meanwhile). Where the store cannot write conditionally, it writes anyway.
    pub async fn put_if(&self, key: &str, body: Vec<u8>, condition: Condition) -> Result<Option<Written>, ExportError> {
        let digest = checksum::md5(&body);
        let md5_base64 = checksum::base64(&digest);
        let size_bytes = body.len() as u64;
        let etag = match self {
            Destination::S3 { bucket, .. } => bucket.put_if(key, body, md5_base64.clone(), &condition).await?,
            Destination::Dir(dir) => dir.put_if(key, body, &condition).await?.then(|| checksum::hex(&digest)),
        };
        Ok(etag.map(|etag| Written { key: key.to_string(), etag, md5_base64, size_bytes, stamp: None }))
    }

    /// The object's bytes, or `None` when there is no such key.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, ExportError> {
        Ok(self.get_tagged(key).await?.map(|(bytes, _)| bytes))
    }

    /// The object's bytes and its ETag (a directory's: the MD5 in hex, as S3 gives for one PUT),
    /// or `None` when there is no such key.
    pub async fn get_tagged(&self, key: &str) -> Result<Option<(Vec<u8>, String)>, ExportError> {
        match self {
            Destination::S3 { bucket, .. } => bucket.get_tagged(key).await,
            Destination::Dir(dir) => Ok(dir.get(key).await?.map(|bytes| {
                let etag = checksum::hex(&checksum::md5(&bytes));
                (bytes, etag)
            })),
        }
    }

    /// Many small objects (state objects: checkpoints), read [`AT_ONCE`] at a time: one answer
    /// per key, in order, as [`Self::get_tagged`] gives it.
    pub async fn get_many_tagged(&self, keys: &[String]) -> Result<Vec<Option<(Vec<u8>, String)>>, ExportError> {
        at_once(keys.to_vec(), |key| {
            let destination = self.clone();
            async move { destination.get_tagged(&key).await }
        })
        .await
    }

    /// Deletes many objects, [`AT_ONCE`] at a time; missing ones are not an error.
    pub async fn delete_many(&self, keys: &[String]) -> Result<(), ExportError> {
        at_once(keys.to_vec(), |key| {
            let destination = self.clone();
            async move { destination.delete(&key).await }
        })
        .await
        .map(drop)
    }

    /// The object's bytes, chunk by chunk as they are read (never the whole object in
    /// memory); `None` when there is no such key.
    pub async fn open_chunks(&self, key: &str) -> Result<Option<Chunks>, ExportError> {
        Ok(match self {
            Destination::S3 { bucket, .. } => bucket.open_chunks(key).await?.map(|(chunks, _)| Chunks::S3(chunks)),
            Destination::Dir(dir) => dir.open_chunks(key).await?.map(Chunks::Dir),
        })
    }

    /// Hands the object's bytes to `each` as they are read; `false` when there is no such key.
    pub async fn read_chunks(
        &self,
        key: &str,
        mut each: impl FnMut(&[u8]) -> Result<(), ExportError>,
    ) -> Result<bool, ExportError> {
        let Some(mut chunks) = self.open_chunks(key).await? else { return Ok(false) };
        while let Some(chunk) = chunks.next().await? {
            each(&chunk)?;
        }
        Ok(true)
    }

    /// Every object whose key starts with `prefix`.
    pub async fn list(&self, prefix: &str) -> Result<Vec<Listed>, ExportError> {
        match self {
            Destination::S3 { bucket, .. } => bucket.list(prefix).await,
            Destination::Dir(dir) => Ok(dir
                .list(prefix)
                .await?
                .into_iter()
                .map(|(key, stamp)| Listed { key, etag: String::new(), stamp: Some(stamp) })
                .collect()),
        }
    }

    /// The names of the folders right under `prefix` (which ends with `/`), sorted.
    pub async fn folders(&self, prefix: &str) -> Result<Vec<String>, ExportError> {
        let mut folders = match self {
            Destination::S3 { bucket, .. } => bucket.folders(prefix).await?,
            Destination::Dir(dir) => dir.folders(prefix).await?,
        };
        folders.sort();
        Ok(folders)
    }

    /// Deletes an object; a missing one is not an error.
    pub async fn delete(&self, key: &str) -> Result<(), ExportError> {
        match self {
            Destination::S3 { bucket, .. } => bucket.delete(key).await,
            Destination::Dir(dir) => dir.delete(key).await,
        }
    }

    /// Aborts the uploads an interrupted run left unfinished under `prefix`: the ones it
    /// recorded (`known`, as key and upload id), and any others the store can list. Returns how
    /// many were aborted.
    pub async fn abort_stale_uploads(&self, prefix: &str, known: &[(String, String)]) -> Result<usize, ExportError> {
        match self {
            Destination::S3 { bucket, .. } => {
                let mut uploads = bucket.uploads_in_progress(prefix).await?;
                uploads.extend(known.iter().cloned());
                uploads.sort();
                uploads.dedup();
                let mut aborted = 0;
                for (key, upload_id) in &uploads {
                    aborted += usize::from(bucket.abort_by_id(key, upload_id).await);
                }
                Ok(aborted)
            }
            Destination::Dir(dir) => dir.abort_stale(prefix).await,
        }
    }

    /// Removes what a failed run left in the way (a directory's staging area).
    pub async fn tidy(&self) {
        if let Destination::Dir(dir) = self {
            dir.tidy().await;
        }
    }
}

/// Streams one object of unknown length to a destination.
pub struct ObjectWriter {
    destination: Destination,
    key: String,
    buffer: Vec<u8>,
    upload: Option<Upload>,
    parts: usize,
    md5: RunningMd5,
}

impl ObjectWriter {
    pub fn new(destination: Destination, key: String) -> Self {
        Self { destination, key, buffer: Vec::new(), upload: None, parts: 0, md5: RunningMd5::default() }
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    /// The S3 multipart upload this object is being written by, once one has begun; an
    /// interrupted run's checkpoint records it so that a resumed run can abort it.
    pub fn upload_id(&self) -> Option<&str> {
        match &self.upload {
            Some(Upload::S3(upload)) => Some(upload.id()),
            _ => None,
        }
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.md5.len()
    }

    /// base64 MD5 of the bytes written so far.
    pub fn md5_base64(&self) -> String {
        checksum::base64(&self.md5.clone().finish())
    }

    /// Appends bytes; uploads a part whenever a full one is buffered.
    pub async fn write(&mut self, bytes: &[u8]) -> Result<(), ExportError> {
        if self.md5.len() + bytes.len() as u64 > MAX_OBJECT_BYTES {
            return Err(ExportError::InvalidArgument {
                field: crate::model::Field::TargetFileBytes,
                message: format!("{} would exceed {MAX_OBJECT_BYTES} bytes, the most one object can hold", self.key),
            });
        }
        self.md5.update(bytes);
        // The buffer never holds more than one part: it grows (doubling) up to a part's size
        // exactly, goes up as that part, and the next starts empty. (Growing past a part and
        // splitting it off left each writer a buffer of twice a part, all lanes together
        // hundreds of MiB.)
        let mut rest = bytes;
        while !rest.is_empty() {
            let part = part_size(self.parts);
            let take = (part - self.buffer.len()).min(rest.len());
            let needed = self.buffer.len() + take;
            if self.buffer.capacity() < needed {
                let grown = (self.buffer.capacity() * 2).clamp(needed, part);
                self.buffer.reserve_exact(grown - self.buffer.len());
            }
            self.buffer.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.buffer.len() == part {
                let full = std::mem::take(&mut self.buffer);
                self.upload_part(full).await?;
            }
        }
        Ok(())
    }

    async fn upload_part(&mut self, part: Vec<u8>) -> Result<(), ExportError> {
        let mut upload = match self.upload.take() {
            Some(upload) => upload,
            None => match &self.destination {
                Destination::S3 { bucket, .. } => Upload::S3(bucket.begin(&self.key).await?),
                Destination::Dir(dir) => Upload::Dir(dir.begin(&self.key).await?),
            },
        };
        let result = match (&self.destination, &mut upload) {
            (Destination::S3 { bucket, .. }, Upload::S3(u)) => bucket.upload_part(u, part).await,
            (Destination::Dir(dir), Upload::Dir(u)) => dir.upload_part(u, part).await,
            _ => Err(ExportError::Internal("an upload does not match its destination".into())),
        };
        self.upload = Some(upload);
        self.parts += 1;
        result
    }

    /// Stores what is left and makes the object visible under its key.
    pub async fn finish(mut self) -> Result<Written, ExportError> {
        if self.upload.is_none() {
            // One object: its MD5 is the one counted as it was written.
            let body = std::mem::take(&mut self.buffer);
            let digest = self.md5.clone().finish();
            return self.destination.put_digested(&self.key, body, digest).await;
        }
        if !self.buffer.is_empty() {
            let last = std::mem::take(&mut self.buffer);
            if let Err(e) = self.upload_part(last).await {
                self.abort().await;
                return Err(e);
            }
        }
        let size_bytes = self.md5.len();
        let digest = self.md5.clone().finish();
        let md5_base64 = checksum::base64(&digest);
        let (etag, stamp) = match (&self.destination, self.upload.take()) {
            (Destination::S3 { bucket, .. }, Some(Upload::S3(u))) => match bucket.complete(&u).await {
                Ok(etag) => (etag, None),
                Err(e) => {
                    bucket.abort(u).await;
                    return Err(e);
                }
            },
            // A directory's ETag is the single-PUT one: the MD5 of the whole file.
            (Destination::Dir(dir), Some(Upload::Dir(u))) => (checksum::hex(&digest), Some(dir.complete(u).await?)),
            _ => return Err(ExportError::Internal("an upload does not match its destination".into())),
        };
        Ok(Written { key: self.key, etag, md5_base64, size_bytes, stamp })
    }

    /// Abandons the object: nothing appears under its key.
    pub async fn abort(mut self) {
        match (&self.destination, self.upload.take()) {
            (Destination::S3 { bucket, .. }, Some(Upload::S3(u))) => bucket.abort(u).await,
            (Destination::Dir(dir), Some(Upload::Dir(u))) => dir.abort(u).await,
            _ => {}
        }
    }
}

/// A stored object's bytes, chunk by chunk ([`Destination::open_chunks`]).
pub enum Chunks {
    S3(S3Chunks),
    Dir(DirChunks),
}

impl Chunks {
    /// The next chunk; `None` at the end.
    pub async fn next(&mut self) -> Result<Option<bytes::Bytes>, ExportError> {
        match self {
            Chunks::S3(chunks) => chunks.next().await,
            Chunks::Dir(chunks) => chunks.next().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_grow_so_one_object_fits_in_the_part_limit() {
        assert_eq!(part_size(0), 8 << 20);
        assert_eq!(part_size(999), 8 << 20);
        assert_eq!(part_size(1000), 16 << 20);
        assert_eq!(part_size(2000), 32 << 20);
        assert_eq!(part_size(9999), 64 << 20);
        let total: u64 = (0..MAX_PARTS).map(|p| part_size(p) as u64).sum();
        assert_eq!(total, MAX_OBJECT_BYTES);
        const { assert!(MAX_OBJECT_BYTES > 400 << 30) };
    }
}
