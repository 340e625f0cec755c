//! Objects in an S3 (or S3-compatible) bucket. Every body is sent with `Content-MD5`, so the
//! store refuses anything that was corrupted on the way.

use aws_sdk_s3::operation::head_bucket::HeadBucketError;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, ServerSideEncryption};

use crate::aws::SdkFailure;
use crate::checksum;
use crate::error::ExportError;

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
        self.client
            .head_bucket()
            .bucket(&self.bucket)
            .set_expected_bucket_owner(self.expected_owner.clone())
            .send()
            .await
            .map(drop)
            .map_err(|error| {
                let not_found = matches!(error.as_service_error(), Some(HeadBucketError::NotFound(_)))
                    || error.raw_response().is_some_and(|r| r.status().as_u16() == 404);
                if not_found {
                    return ExportError::BucketNotFound { bucket: self.bucket.clone() };
                }
                let forbidden = error.raw_response().is_some_and(|r| r.status().as_u16() == 403);
                if forbidden {
                    return ExportError::AccessDenied {
                        action: format!("s3:ListBucket on s3://{}", self.bucket),
                        message: "HeadBucket was refused (403); check the bucket policy and --s3-bucket-owner".into(),
                    };
                }
                self.error("HeadBucket", "", SdkFailure::of(&error))
            })
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

    pub async fn complete(&self, upload: &S3Upload) -> Result<String, ExportError> {
        let output = self
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(&upload.key)
            .upload_id(&upload.upload_id)
            .set_expected_bucket_owner(self.expected_owner.clone())
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(upload.parts.clone())).build())
            .send()
            .await
            .map_err(|e| self.error("CompleteMultipartUpload", &upload.key, SdkFailure::of(&e)))?;
        Ok(unquote(output.e_tag()))
    }

    /// Best effort: an upload left behind is only storage, never a visible object.
    pub async fn abort(&self, upload: S3Upload) {
        let result = self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(&upload.key)
            .upload_id(&upload.upload_id)
            .set_expected_bucket_owner(self.expected_owner.clone())
            .send()
            .await;
        if let Err(e) = result {
            tracing::warn!("could not abort the multipart upload of {}: {}", upload.key, SdkFailure::of(&e).message);
        }
    }
}

fn unquote(etag: Option<&str>) -> String {
    etag.unwrap_or_default().trim_matches('"').to_string()
}
