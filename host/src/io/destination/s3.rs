//! Objects in an S3 (or S3-compatible) bucket. Every body is sent with `Content-MD5`, so the
//! store refuses anything that was corrupted on the way.

use aws_sdk_s3::operation::get_object::GetObjectError;
use aws_sdk_s3::operation::head_bucket::HeadBucketError;
use aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Output;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, ServerSideEncryption};

use crate::error::ExportError;
use crate::io::aws::SdkFailure;
use crate::io::destination::Listed;
use crate::model::checksum;

/// A bucket and how objects are written to it.
#[derive(Clone, Debug)]
pub struct S3Bucket {
    pub(crate) client: aws_sdk_s3::Client,
    pub(crate) bucket: String,
    pub(crate) expected_owner: Option<String>,
    pub(crate) kms_key_id: Option<String>,
}

/// A multipart upload in progress.
#[derive(Debug)]
pub struct S3Upload {
    key: String,
    upload_id: String,
    parts: Vec<CompletedPart>,
}

impl S3Upload {
    pub fn id(&self) -> &str {
        &self.upload_id
    }
}

impl S3Bucket {
    fn error(&self, operation: &'static str, key: &str, failure: SdkFailure) -> ExportError {
        let action = format!("s3:{operation} on s3://{}/{key}", self.bucket);
        failure.into_export_error(action, |message| ExportError::S3 {
            operation,
            bucket: self.bucket.clone(),
            key: key.to_string(),
            message,
        })
    }

    /// Fails early, and in words, when the bucket is missing or not ours to read.
    pub async fn check(&self) -> Result<(), ExportError> {
        let error = match self
            .client
            .head_bucket()
            .bucket(&self.bucket)
            .set_expected_bucket_owner(self.expected_owner.clone())
            .send()
            .await
        {
            Ok(_) => return Ok(()),
            Err(error) => error,
        };
        let not_found = matches!(error.as_service_error(), Some(HeadBucketError::NotFound(_)))
            || error.raw_response().is_some_and(|r| r.status().as_u16() == 404);
        if not_found {
            return Err(ExportError::BucketNotFound { bucket: self.bucket.clone() });
        }
        if error.raw_response().is_some_and(|r| r.status().as_u16() == 403) {
            return Err(self.why_forbidden().await);
        }
        Err(self.error("HeadBucket", "", SdkFailure::of(&error)))
    }

    /// A HEAD response has no body, so a 403 does not say whether the credentials are wrong or
    /// only not allowed: a listing of no keys answers with an error code that does.
    async fn why_forbidden(&self) -> ExportError {
        let action = format!("s3:ListBucket on s3://{}", self.bucket);
        let listed = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .max_keys(0)
            .set_expected_bucket_owner(self.expected_owner.clone())
            .send()
            .await;
        let message =
            format!("HeadBucket was refused (403); check the bucket policy and {}", crate::model::Field::S3BucketOwner);
        match listed {
            Err(e) if SdkFailure::of(&e).code.is_some() => SdkFailure::of(&e).into_export_error(action.clone(), |m| {
                ExportError::AccessDenied { action, message: format!("{message} ({m})") }
            }),
            _ => ExportError::AccessDenied { action, message },
        }
    }

    /// Always explicit, so the summary's `s3SseAlgorithm` is true whatever the bucket's default.
    fn sse(&self) -> Option<ServerSideEncryption> {
        Some(match self.kms_key_id {
            Some(_) => ServerSideEncryption::AwsKms,
            None => ServerSideEncryption::Aes256,
        })
    }

    /// PutObject with the body's base64 MD5 as `Content-MD5`; returns the ETag without quotes.
    pub async fn put(&self, key: &str, body: Vec<u8>, content_md5: String) -> Result<String, ExportError> {
        let output = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_md5(content_md5)
            .set_expected_bucket_owner(self.expected_owner.clone())
            .set_server_side_encryption(self.sse())
            .set_ssekms_key_id(self.kms_key_id.clone())
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| self.error("PutObject", key, SdkFailure::of(&e)))?;
        Ok(unquote(output.e_tag()))
    }

    /// PutObject on a condition (`If-None-Match: *` / `If-Match: "<etag>"`); `Ok(None)` when the
    /// store refused it (412). A store that does not implement conditional writes (501, or a
    /// 400 naming the header) gets the write unconditionally: the condition is a second guard
    /// only (`crate::state::lease`).
    pub async fn put_if(
        &self,
        key: &str,
        body: Vec<u8>,
        content_md5: String,
        condition: &super::Condition,
    ) -> Result<Option<String>, ExportError> {
        let (if_none_match, if_match) = match condition {
            super::Condition::None => return self.put(key, body, content_md5).await.map(Some),
            super::Condition::Absent => (Some("*".to_string()), None),
            super::Condition::Matches(etag) => (None, Some(format!("\"{etag}\""))),
        };
        let output = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_md5(content_md5.clone())
            .set_if_none_match(if_none_match)
            .set_if_match(if_match)
            .set_expected_bucket_owner(self.expected_owner.clone())
            .set_server_side_encryption(self.sse())
            .set_ssekms_key_id(self.kms_key_id.clone())
            .body(ByteStream::from(body.clone()))
            .send()
            .await;
        match output {
            Ok(output) => Ok(Some(unquote(output.e_tag()))),
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 412) => Ok(None),
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 501) => {
                tracing::debug!("this store has no conditional writes: {}", SdkFailure::of(&e).message);
                self.put(key, body, content_md5).await.map(Some)
            }
            Err(e) => Err(self.error("PutObject", key, SdkFailure::of(&e))),
        }
    }

    pub async fn begin(&self, key: &str) -> Result<S3Upload, ExportError> {
        let output = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .set_expected_bucket_owner(self.expected_owner.clone())
            .set_server_side_encryption(self.sse())
            .set_ssekms_key_id(self.kms_key_id.clone())
            .send()
            .await
            .map_err(|e| self.error("CreateMultipartUpload", key, SdkFailure::of(&e)))?;
        let upload_id = output.upload_id.ok_or_else(|| ExportError::S3 {
            operation: "CreateMultipartUpload",
            bucket: self.bucket.clone(),
            key: key.to_string(),
            message: "the response has no UploadId".into(),
        })?;
        Ok(S3Upload { key: key.to_string(), upload_id, parts: Vec::new() })
    }

    pub async fn upload_part(&self, upload: &mut S3Upload, body: Vec<u8>) -> Result<(), ExportError> {
        let part_number = upload.parts.len() as i32 + 1;
        let output = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(&upload.key)
            .upload_id(&upload.upload_id)
            .part_number(part_number)
            .content_md5(checksum::md5_base64(&body))
            .set_expected_bucket_owner(self.expected_owner.clone())
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| self.error("UploadPart", &upload.key, SdkFailure::of(&e)))?;
        upload.parts.push(CompletedPart::builder().part_number(part_number).set_e_tag(output.e_tag).build());
        Ok(())
    }

    /// Completes the upload. When the request fails, the upload may still have completed (the
    /// response was lost, and a retry found the upload gone: AWS repeats its answer, MinIO and
    /// s3s-fs refuse): the object is then accepted if it has exactly the ETag the parts' ETags
    /// give (an object the store stored some other way does not), and the upload is aborted in
    /// case it is still pending.
    pub async fn complete(&self, upload: &S3Upload) -> Result<String, ExportError> {
        let completed = self
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(&upload.key)
            .upload_id(&upload.upload_id)
            .set_expected_bucket_owner(self.expected_owner.clone())
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(upload.parts.clone())).build())
            .send()
            .await;
        let error = match completed {
            Ok(output) => return Ok(unquote(output.e_tag())),
            Err(e) => self.error("CompleteMultipartUpload", &upload.key, SdkFailure::of(&e)),
        };
        let Some(expected) = multipart_etag(&upload.parts) else { return Err(error) };
        let stored = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(&upload.key)
            .set_expected_bucket_owner(self.expected_owner.clone())
            .send()
            .await;
        match stored {
            Ok(head) if unquote(head.e_tag()) == expected => {
                tracing::debug!("{} was completed although its CompleteMultipartUpload failed ({error})", upload.key);
                self.abort_by_id(&upload.key, &upload.upload_id).await;
                Ok(expected)
            }
            _ => Err(error),
        }
    }

    /// Best effort: an upload left behind is only storage, never a visible object.
    pub async fn abort(&self, upload: S3Upload) {
        self.abort_by_id(&upload.key, &upload.upload_id).await;
    }

    /// Aborts a multipart upload, also one another (interrupted) run began. Best effort:
    /// returns whether the store confirmed it.
    pub async fn abort_by_id(&self, key: &str, upload_id: &str) -> bool {
        let result = self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .set_expected_bucket_owner(self.expected_owner.clone())
            .send()
            .await;
        match result {
            Ok(_) => true,
            Err(e) => {
                tracing::debug!("could not abort the multipart upload of {key}: {}", SdkFailure::of(&e).message);
                false
            }
        }
    }

    /// The multipart uploads in progress under `prefix`, as (key, upload id). Stores that do
    /// not implement ListMultipartUploads (some S3-compatible servers) give an empty list.
    pub async fn uploads_in_progress(&self, prefix: &str) -> Result<Vec<(String, String)>, ExportError> {
        let mut uploads = Vec::new();
        let (mut key_marker, mut id_marker) = (None, None);
        loop {
            let output = match self
                .client
                .list_multipart_uploads()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_key_marker(key_marker.take())
                .set_upload_id_marker(id_marker.take())
                .set_expected_bucket_owner(self.expected_owner.clone())
                .send()
                .await
            {
                Ok(output) => output,
                Err(e) if e.raw_response().is_some_and(|r| matches!(r.status().as_u16(), 400 | 405 | 501)) => {
                    tracing::debug!("this store cannot list multipart uploads: {}", SdkFailure::of(&e).message);
                    return Ok(uploads);
                }
                // Only a clean-up: the uploads a run recorded are aborted by their ids anyway.
                Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 403) => {
                    tracing::warn!(
                        "not allowed to list the multipart uploads under s3://{}/{prefix} \
                         (s3:ListBucketMultipartUploads); only the ones the interrupted run recorded are aborted",
                        self.bucket
                    );
                    return Ok(uploads);
                }
                Err(e) => return Err(self.error("ListMultipartUploads", prefix, SdkFailure::of(&e))),
            };
            for upload in output.uploads() {
                if let (Some(key), Some(id)) = (upload.key(), upload.upload_id()) {
                    uploads.push((key.to_string(), id.to_string()));
                }
            }
            if output.is_truncated() != Some(true) {
                return Ok(uploads);
            }
            key_marker = output.next_key_marker().map(str::to_string);
            id_marker = output.next_upload_id_marker().map(str::to_string);
            if key_marker.is_none() && id_marker.is_none() {
                return Ok(uploads);
            }
        }
    }

    /// The object's bytes and ETag (without quotes), or `None` when there is no such key.
    pub async fn get_tagged(&self, key: &str) -> Result<Option<(Vec<u8>, String)>, ExportError> {
        let mut body = Vec::new();
        let etag = self.read_tagged(key, |chunk| {
            body.extend_from_slice(chunk);
            Ok(())
        });
        Ok(etag.await?.map(|etag| (body, etag)))
    }

    /// The object's body as it arrives, with its ETag (without quotes); `None` when there is
    /// no such key.
    pub async fn open_chunks(&self, key: &str) -> Result<Option<(S3Chunks, String)>, ExportError> {
        let output = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .set_expected_bucket_owner(self.expected_owner.clone())
            .send()
            .await
        {
            Ok(output) => output,
            Err(e) if matches!(e.as_service_error(), Some(GetObjectError::NoSuchKey(_))) => return Ok(None),
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => return Ok(None),
            Err(e) => return Err(self.error("GetObject", key, SdkFailure::of(&e))),
        };
        let etag = unquote(output.e_tag());
        let chunks = S3Chunks { body: output.body, bucket: self.bucket.clone(), key: key.to_string() };
        Ok(Some((chunks, etag)))
    }

    /// As [`Self::open_chunks`], each chunk handed to `each`; the ETag, or `None` when there
    /// is no such key.
    async fn read_tagged(
        &self,
        key: &str,
        mut each: impl FnMut(&[u8]) -> Result<(), ExportError>,
    ) -> Result<Option<String>, ExportError> {
        let Some((mut chunks, etag)) = self.open_chunks(key).await? else { return Ok(None) };
        while let Some(chunk) = chunks.next().await? {
            each(&chunk)?;
        }
        Ok(Some(etag))
    }

    /// Every object under `prefix`.
    pub async fn list(&self, prefix: &str) -> Result<Vec<Listed>, ExportError> {
        let mut objects = Vec::new();
        self.list_pages(prefix, None, |page| {
            for object in page.contents() {
                if let Some(key) = object.key() {
                    objects.push(Listed { key: key.to_string(), etag: unquote(object.e_tag()), stamp: None });
                }
            }
        })
        .await?;
        Ok(objects)
    }

    /// The names of the "folders" right under `prefix` (which ends with `/`).
    pub async fn folders(&self, prefix: &str) -> Result<Vec<String>, ExportError> {
        let mut folders = Vec::new();
        self.list_pages(prefix, Some("/"), |page| {
            for common in page.common_prefixes() {
                if let Some(name) = common.prefix().and_then(|p| p.strip_prefix(prefix)) {
                    folders.push(name.trim_end_matches('/').to_string());
                }
            }
        })
        .await?;
        Ok(folders)
    }

    /// Every page of ListObjectsV2 under `prefix`, handed to `each`.
    async fn list_pages(
        &self,
        prefix: &str,
        delimiter: Option<&str>,
        mut each: impl FnMut(&ListObjectsV2Output),
    ) -> Result<(), ExportError> {
        let mut token = None;
        loop {
            let output = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_delimiter(delimiter.map(str::to_string))
                .set_continuation_token(token.take())
                .set_expected_bucket_owner(self.expected_owner.clone())
                .send()
                .await
                .map_err(|e| self.error("ListObjectsV2", prefix, SdkFailure::of(&e)))?;
            each(&output);
            match output.next_continuation_token() {
                Some(next) if output.is_truncated() == Some(true) => token = Some(next.to_string()),
                _ => return Ok(()),
            }
        }
    }

    pub async fn delete(&self, key: &str) -> Result<(), ExportError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .set_expected_bucket_owner(self.expected_owner.clone())
            .send()
            .await
            .map(drop)
            .map_err(|e| self.error("DeleteObject", key, SdkFailure::of(&e)))
    }
}

/// The ETag S3 gives the object a multipart upload of these parts completes: the MD5 of the
/// parts' binary ETags, a dash, and the number of parts. `None` if a part's ETag is not hex.
fn multipart_etag(parts: &[CompletedPart]) -> Option<String> {
    let mut digests = Vec::with_capacity(parts.len() * 16);
    for part in parts {
        let hex = part.e_tag()?.trim_matches('"');
        if hex.len() % 2 != 0 {
            return None;
        }
        for pair in hex.as_bytes().chunks(2) {
            digests.push(u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?);
        }
    }
    Some(format!("{}-{}", checksum::hex(&checksum::md5(&digests)), parts.len()))
}

fn unquote(etag: Option<&str>) -> String {
    etag.unwrap_or_default().trim_matches('"').to_string()
}

/// An object's body, chunk by chunk as it arrives.
pub struct S3Chunks {
    body: ByteStream,
    bucket: String,
    key: String,
}

impl S3Chunks {
    /// The next chunk; `None` at the end.
    pub async fn next(&mut self) -> Result<Option<bytes::Bytes>, ExportError> {
        self.body.try_next().await.map_err(|e| ExportError::S3 {
            operation: "GetObject",
            bucket: self.bucket.clone(),
            key: self.key.clone(),
            message: format!("reading the body: {e}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_etags_are_the_md5_of_the_parts_binary_etags() {
        let part = |n: i32, body: &[u8]| {
            CompletedPart::builder()
                .part_number(n)
                .e_tag(format!("\"{}\"", checksum::hex(&checksum::md5(body))))
                .build()
        };
        let parts = [part(1, b"first"), part(2, b"second")];
        let mut joined = checksum::md5(b"first").to_vec();
        joined.extend_from_slice(&checksum::md5(b"second"));
        assert_eq!(multipart_etag(&parts), Some(format!("{}-2", checksum::hex(&checksum::md5(&joined)))));
        assert_eq!(multipart_etag(&[CompletedPart::builder().e_tag("not hex").build()]), None);
    }
}
