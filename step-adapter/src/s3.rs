//! The `s3` interface: objects read, written on a condition (with their Content-MD5, the
//! expected bucket owner and the bucket's encryption), deleted and listed.

use aws_sdk_s3::error::{DisplayErrorContext, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ServerSideEncryption;

use crate::Component;
use crate::bindings::exports::ddb_export::step::s3::{
    Bucket, Condition, Error, Guest, ListedObject, ObjectListing, StoredObject,
};
use crate::clients::{self, block_on};
use crate::dynamodb::is_transient;

impl Guest for Component {
    fn check_bucket(bucket: Bucket) -> Result<(), Error> {
        let client = clients::s3().map_err(Error::Refused)?;
        let request = client.head_bucket().bucket(&bucket.name).set_expected_bucket_owner(bucket.expected_owner);
        match block_on(request.send()) {
            Ok(_) => Ok(()),
            Err(error) => Err(failed("HeadBucket", &bucket.name, "", &error)),
        }
    }

    fn get_object(bucket: Bucket, key: String) -> Result<Option<StoredObject>, Error> {
        let client = clients::s3().map_err(Error::Refused)?;
        let request =
            client.get_object().bucket(&bucket.name).key(&key).set_expected_bucket_owner(bucket.expected_owner);
        let output = match block_on(request.send()) {
            Ok(output) => output,
            Err(error) if error.as_service_error().is_some_and(|e| e.is_no_such_key()) => return Ok(None),
            Err(error) => return Err(failed("GetObject", &bucket.name, &key, &error)),
        };
        let etag = unquote(output.e_tag());
        let body = block_on(output.body.collect()).map_err(|e| {
            Error::Transient(format!("S3 GetObject s3://{}/{key}: the body was cut off: {e}", bucket.name))
        })?;
        Ok(Some(StoredObject { body: body.into_bytes().to_vec(), etag }))
    }

    /// The objects read [`AT_ONCE`] at a time (wstd's reactor runs the requests together).
    fn get_objects(bucket: Bucket, keys: Vec<String>) -> Result<Vec<Option<StoredObject>>, Error> {
        use futures_util::StreamExt as _;
        let reads =
            futures_util::stream::iter(keys).map(|key| read(bucket.clone(), key)).buffered(AT_ONCE).collect::<Vec<_>>();
        block_on(reads).into_iter().collect()
    }

    fn put_object(bucket: Bucket, key: String, body: Vec<u8>, condition: Condition) -> Result<Option<String>, Error> {
        let client = clients::s3().map_err(Error::Refused)?;
        let (if_none_match, if_match) = match condition {
            Condition::Always => (None, None),
            Condition::Absent => (Some("*".to_string()), None),
            Condition::Matches(etag) => (None, Some(format!("\"{etag}\""))),
        };
        let encryption = match bucket.kms_key_id.is_some() {
            true => ServerSideEncryption::AwsKms,
            false => ServerSideEncryption::Aes256,
        };
        let request = client
            .put_object()
            .bucket(&bucket.name)
            .key(&key)
            .content_md5(ddb_export_model::checksum::md5_base64(&body))
            .server_side_encryption(encryption)
            .set_ssekms_key_id(bucket.kms_key_id.clone())
            .set_expected_bucket_owner(bucket.expected_owner.clone())
            .set_if_none_match(if_none_match)
            .set_if_match(if_match)
            .body(ByteStream::from(body));
        match block_on(request.send()) {
            Ok(output) => Ok(Some(unquote(output.e_tag()))),
            // The condition did not hold (412), or another conditional write to the key was
            // under way (409): nothing was written.
            Err(error) if error.raw_response().is_some_and(|r| matches!(r.status().as_u16(), 409 | 412)) => Ok(None),
            Err(error) => Err(failed("PutObject", &bucket.name, &key, &error)),
        }
    }

    fn delete_object(bucket: Bucket, key: String) -> Result<(), Error> {
        block_on(delete(bucket, key))
    }

    /// The deletes run [`AT_ONCE`] at a time.
    fn delete_objects(bucket: Bucket, keys: Vec<String>) -> Result<(), Error> {
        use futures_util::StreamExt as _;
        let deletes = futures_util::stream::iter(keys)
            .map(|key| delete(bucket.clone(), key))
            .buffered(AT_ONCE)
            .collect::<Vec<_>>();
        block_on(deletes).into_iter().collect()
    }

    fn list_objects(bucket: Bucket, prefix: String, continuation: Option<String>) -> Result<ObjectListing, Error> {
        let client = clients::s3().map_err(Error::Refused)?;
        let request = client
            .list_objects_v2()
            .bucket(&bucket.name)
            .prefix(&prefix)
            .set_continuation_token(continuation)
            .set_expected_bucket_owner(bucket.expected_owner);
        let output =
            block_on(request.send()).map_err(|error| failed("ListObjectsV2", &bucket.name, &prefix, &error))?;
        let objects = output
            .contents()
            .iter()
            .filter_map(|object| Some(ListedObject { key: object.key()?.to_string(), etag: unquote(object.e_tag()) }))
            .collect();
        let continuation = output.next_continuation_token().filter(|_| output.is_truncated() == Some(true));
        Ok(ObjectListing { objects, continuation: continuation.map(str::to_string) })
    }
}

/// Requests `get-objects` and `delete-objects` have in flight.
const AT_ONCE: usize = 32;

/// GetObject: the object and its ETag, or `None` when there is none.
async fn read(bucket: Bucket, key: String) -> Result<Option<StoredObject>, Error> {
    let client = clients::s3().map_err(Error::Refused)?;
    let request = client.get_object().bucket(&bucket.name).key(&key).set_expected_bucket_owner(bucket.expected_owner);
    let output = match request.send().await {
        Ok(output) => output,
        Err(error) if error.as_service_error().is_some_and(|e| e.is_no_such_key()) => return Ok(None),
        Err(error) => return Err(failed("GetObject", &bucket.name, &key, &error)),
    };
    let etag = unquote(output.e_tag());
    let body =
        output.body.collect().await.map_err(|e| {
            Error::Transient(format!("S3 GetObject s3://{}/{key}: the body was cut off: {e}", bucket.name))
        })?;
    Ok(Some(StoredObject { body: body.into_bytes().to_vec(), etag }))
}

/// DeleteObject; a missing object is no error.
async fn delete(bucket: Bucket, key: String) -> Result<(), Error> {
    let client = clients::s3().map_err(Error::Refused)?;
    let request = client
        .delete_object()
        .bucket(&bucket.name)
        .key(&key)
        .set_expected_bucket_owner(bucket.expected_owner)
        .customize()
        // wasi:http sends an empty body without a length; a strict S3 (s3s) refuses a
        // DELETE that does not say it has none.
        .mutate_request(|request| {
            request.headers_mut().insert("content-length", "0");
        });
    match request.send().await {
        Ok(_) => Ok(()),
        Err(error) if error.raw_response().is_some_and(|r| r.status().as_u16() == 404) => Ok(()),
        Err(error) => Err(failed("DeleteObject", &bucket.name, &key, &error)),
    }
}

/// A failed call on `s3://bucket/key`, in words, worth a retry or not.
fn failed<E: std::error::Error + 'static>(
    call: &str,
    bucket: &str,
    key: &str,
    error: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> Error {
    let message = format!("S3 {call} s3://{bucket}/{key}: {}", DisplayErrorContext(error));
    match is_transient(error) {
        true => Error::Transient(message),
        false => Error::Refused(message),
    }
}

/// An ETag without its quotes.
fn unquote(etag: Option<&str>) -> String {
    etag.unwrap_or_default().trim_matches('"').to_string()
}
