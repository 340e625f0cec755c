//! The component's only I/O: the `dynamodb` and `s3` imports, and WASI's clocks. Behind
//! [`Io`] so that [`crate::shard`] runs against a fake in native unit tests.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Error;
pub use crate::bindings::ddb_export::step::dynamodb::{ScanPage, ScanRequest, TableFacts};
pub use crate::bindings::ddb_export::step::s3::{Bucket, Condition, ListedObject, ObjectListing, StoredObject};
use crate::bindings::ddb_export::step::{dynamodb, s3};

/// Why an AWS call failed: the `error` of the `dynamodb` and `s3` imports alike.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AwsError {
    /// It may succeed later.
    Transient(String),
    /// Refused as it stands.
    Refused(String),
}

impl From<dynamodb::Error> for AwsError {
    fn from(error: dynamodb::Error) -> Self {
        match error {
            dynamodb::Error::Transient(message) => AwsError::Transient(message),
            dynamodb::Error::Refused(message) => AwsError::Refused(message),
        }
    }
}

impl From<s3::Error> for AwsError {
    fn from(error: s3::Error) -> Self {
        match error {
            s3::Error::Transient(message) => AwsError::Transient(message),
            s3::Error::Refused(message) => AwsError::Refused(message),
        }
    }
}

/// Most keys one `get-objects` or `delete-objects` call names.
pub use ddb_export_model::step::MAX_KEYS_PER_CALL as GET_MANY;

/// What a step needs of the world.
pub trait Io {
    fn describe_table(&self, table: &str) -> Result<TableFacts, AwsError>;
    fn scan(&self, request: &ScanRequest) -> Result<ScanPage, AwsError>;
    fn check_bucket(&self, bucket: &Bucket) -> Result<(), AwsError>;
    fn get(&self, bucket: &Bucket, key: &str) -> Result<Option<StoredObject>, AwsError>;
    /// At most [`GET_MANY`] keys.
    fn get_many(&self, bucket: &Bucket, keys: &[String]) -> Result<Vec<Option<StoredObject>>, AwsError>;
    /// The ETag written, or `None` when `condition` did not hold.
    fn put(&self, bucket: &Bucket, key: &str, body: &[u8], condition: &Condition) -> Result<Option<String>, AwsError>;
    fn delete(&self, bucket: &Bucket, key: &str) -> Result<(), AwsError>;
    /// At most [`GET_MANY`] keys.
    fn delete_many(&self, bucket: &Bucket, keys: &[String]) -> Result<(), AwsError>;
    fn list(&self, bucket: &Bucket, prefix: &str, continuation: Option<&str>) -> Result<ObjectListing, AwsError>;
    /// Milliseconds since the epoch (a lease's clock).
    fn now_ms(&self) -> u64;
    /// Time since some fixed instant (budgets).
    fn elapsed(&self) -> Duration;
    fn sleep(&self, duration: Duration);
}

/// The imports the component is linked against.
pub struct Imports;

impl Io for Imports {
    fn describe_table(&self, table: &str) -> Result<TableFacts, AwsError> {
        Ok(dynamodb::describe_table(table)?)
    }

    fn scan(&self, request: &ScanRequest) -> Result<ScanPage, AwsError> {
        Ok(dynamodb::scan(request)?)
    }

    fn check_bucket(&self, bucket: &Bucket) -> Result<(), AwsError> {
        Ok(s3::check_bucket(bucket)?)
    }

    fn get(&self, bucket: &Bucket, key: &str) -> Result<Option<StoredObject>, AwsError> {
        Ok(s3::get_object(bucket, key)?)
    }

    fn get_many(&self, bucket: &Bucket, keys: &[String]) -> Result<Vec<Option<StoredObject>>, AwsError> {
        Ok(s3::get_objects(bucket, keys)?)
    }

    fn put(&self, bucket: &Bucket, key: &str, body: &[u8], condition: &Condition) -> Result<Option<String>, AwsError> {
        Ok(s3::put_object(bucket, key, body, condition)?)
    }

    fn delete(&self, bucket: &Bucket, key: &str) -> Result<(), AwsError> {
        Ok(s3::delete_object(bucket, key)?)
    }

    fn delete_many(&self, bucket: &Bucket, keys: &[String]) -> Result<(), AwsError> {
        Ok(s3::delete_objects(bucket, keys)?)
    }

    fn list(&self, bucket: &Bucket, prefix: &str, continuation: Option<&str>) -> Result<ObjectListing, AwsError> {
        Ok(s3::list_objects(bucket, prefix, continuation)?)
    }

    fn now_ms(&self) -> u64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
    }

    fn elapsed(&self) -> Duration {
        static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        START.get_or_init(std::time::Instant::now).elapsed()
    }

    fn sleep(&self, duration: Duration) {
        std::thread::sleep(duration);
    }
}

/// A Scan request of one segment, filtered as `filter` says.
pub fn scan_request(
    table: &str,
    shard: &ddb_export_model::Shard,
    start_key: Option<String>,
    limit: Option<u32>,
    filter: Option<&ddb_export_model::ScanFilter>,
) -> ScanRequest {
    let (names, values) = filter.map(|f| f.request_parts()).unwrap_or_default();
    ScanRequest {
        table: table.to_string(),
        segment: shard.segment,
        total_segments: shard.total_segments,
        exclusive_start_key: start_key,
        limit,
        filter_expression: filter.and_then(|f| f.filter.clone()),
        projection_expression: filter.and_then(|f| f.projection.clone()),
        expression_attribute_names: names,
        expression_attribute_values: values,
    }
}

/// What a failed call said, in words (the generated `Display` is a debug dump).
pub fn describe(error: &AwsError) -> String {
    match error {
        AwsError::Transient(message) => format!("{message} (transient)"),
        AwsError::Refused(message) => message.clone(),
    }
}

/// The export's bucket, as this step reads and writes it: every failure becomes the step's
/// [`Error`], naming the object.
pub struct Store<'a, I: Io> {
    pub io: &'a I,
    pub bucket: Bucket,
}

impl<I: Io> Store<'_, I> {
    /// `s3://bucket/key`, for messages.
    pub fn locate(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket.name)
    }

    /// A failed call on `key`: worth a retry when the store said so.
    pub fn failed(&self, call: &str, key: &str, error: AwsError) -> Error {
        let message = format!("S3 {call} {}: {}", self.locate(key), describe(&error));
        match error {
            AwsError::Transient(_) => Error::Transient(message),
            AwsError::Refused(_) => Error::PermanentBadDestination(message),
        }
    }

    /// Checks that the bucket is there and the expected owner's.
    pub fn check(&self) -> Result<(), Error> {
        self.io.check_bucket(&self.bucket).map_err(|e| self.failed("HeadBucket", "", e))
    }

    /// An object and its ETag; `None` when there is none.
    pub fn get(&self, key: &str) -> Result<Option<StoredObject>, Error> {
        self.io.get(&self.bucket, key).map_err(|e| self.failed("GetObject", key, e))
    }

    /// The objects at `keys`, in order, read [`GET_MANY`] to a call.
    pub fn get_many(&self, keys: &[String]) -> Result<Vec<Option<StoredObject>>, Error> {
        let mut found = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(GET_MANY) {
            let read = self.io.get_many(&self.bucket, chunk).map_err(|e| self.failed("GetObject", &chunk[0], e))?;
            if read.len() != chunk.len() {
                return Err(Error::Transient(format!(
                    "S3 get-objects answered {} objects for {} keys",
                    read.len(),
                    chunk.len()
                )));
            }
            found.extend(read);
        }
        Ok(found)
    }

    /// Writes an object if `condition` holds: its ETag, or `None` when it did not hold.
    pub fn put(&self, key: &str, body: &[u8], condition: &Condition) -> Result<Option<String>, Error> {
        self.io.put(&self.bucket, key, body, condition).map_err(|e| self.failed("PutObject", key, e))
    }

    pub fn delete(&self, key: &str) -> Result<(), Error> {
        self.io.delete(&self.bucket, key).map_err(|e| self.failed("DeleteObject", key, e))
    }

    /// Deletes the objects at `keys`, [`GET_MANY`] to a call.
    pub fn delete_many(&self, keys: &[String]) -> Result<(), Error> {
        for chunk in keys.chunks(GET_MANY) {
            self.io.delete_many(&self.bucket, chunk).map_err(|e| self.failed("DeleteObject", &chunk[0], e))?;
        }
        Ok(())
    }

    /// Every object under `prefix`, in key order (all pages of the listing).
    pub fn list(&self, prefix: &str) -> Result<Vec<ListedObject>, Error> {
        let mut objects = Vec::new();
        let mut continuation: Option<String> = None;
        loop {
            let page = self
                .io
                .list(&self.bucket, prefix, continuation.as_deref())
                .map_err(|e| self.failed("ListObjectsV2", prefix, e))?;
            objects.extend(page.objects);
            match page.continuation {
                Some(next) if Some(&next) != continuation.as_ref() => continuation = Some(next),
                Some(_) => {
                    return Err(Error::Transient(format!(
                        "S3 ListObjectsV2 {}: the listing handed back the continuation it was given",
                        self.locate(prefix)
                    )));
                }
                None => return Ok(objects),
            }
        }
    }

    /// Reads a state object (JSON) and its ETag; `None` when there is none.
    pub fn load<T: DeserializeOwned>(&self, key: &str) -> Result<Option<(T, String)>, Error> {
        let Some(object) = self.get(key)? else { return Ok(None) };
        serde_json::from_slice(&object.body)
            .map(|value| Some((value, object.etag)))
            .map_err(|e| self.corrupt(key, e.to_string()))
    }

    /// Writes a state object as the host writes it (pretty JSON), if `condition` holds.
    pub fn save<T: Serialize>(&self, key: &str, value: &T, condition: &Condition) -> Result<Option<String>, Error> {
        let body =
            serde_json::to_vec_pretty(value).map_err(|e| self.corrupt(key, format!("cannot be encoded: {e}")))?;
        self.put(key, &body, condition)
    }

    /// State at `key` that cannot be used.
    pub fn corrupt(&self, key: &str, message: String) -> Error {
        Error::PermanentBadDestination(format!("the saved state {} is not usable: {message}", self.locate(key)))
    }
}
