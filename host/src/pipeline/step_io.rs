//! The step component's `dynamodb` and `s3` imports (`wit/step`), carried out natively by this
//! host's own I/O: [`Table`] for DescribeTable and Scan pages (the service's bytes, as the
//! export's own pipeline reads them), [`Destination`] for objects (Content-MD5 on every write,
//! the expected bucket owner on every call, conditional writes for leases).
//!
//! A component's call blocks; these run it on the tokio runtime the host already has, so a
//! component that uses them must run on a blocking thread of that runtime.

use crate::error::ExportError;
use crate::io::aws::AwsClients;
use crate::io::destination::{Condition, Destination, S3Options, Target};
use crate::io::dynamodb::Table;
use crate::io::items;
use crate::model::TableInfo;
use crate::model::step::{AwsFailure, StepBucket, StepListedObject, StepScan, StepScanPage, WriteCondition};
use crate::runtime::step::{Found, StepIo};

/// This host's AWS clients, behind the step imports.
pub struct NativeStepIo {
    aws: AwsClients,
    tokio: tokio::runtime::Handle,
}

impl NativeStepIo {
    /// For a component run on a blocking thread of `tokio`.
    pub fn new(aws: AwsClients, tokio: tokio::runtime::Handle) -> Self {
        Self { aws, tokio }
    }

    fn table(&self, name: &str) -> Table {
        Table::new(self.aws.dynamodb.clone(), self.aws.region.clone(), name.to_string())
    }

    fn destination(&self, bucket: &StepBucket) -> Result<Destination, AwsFailure> {
        let options =
            S3Options { expected_owner: bucket.expected_owner.clone(), kms_key_id: bucket.kms_key_id.clone() };
        let target = Target::S3 { bucket: bucket.name.clone(), prefix: None };
        self.tokio.block_on(Destination::open(&target, &self.aws.s3, &options)).map_err(aws_failure)
    }

    async fn scan_page(&self, request: StepScan) -> Result<StepScanPage, ExportError> {
        let start_key = match &request.start_key {
            Some(json) => Some(items::key_from_json(json).map_err(|message| ExportError::InvalidArgument {
                field: crate::model::Field::ScanFilter,
                message: format!("the step component's ExclusiveStartKey: {message}"),
            })?),
            None => None,
        };
        let table = self.table(&request.table).with_filter(request.filter);
        let page = table.scan_page(&request.shard, start_key, request.limit).await?;
        let last_evaluated_key = match &page.last_evaluated_key {
            Some(key) => Some(items::key_to_json(key).map_err(|message| ExportError::UnreadableResponse {
                service: "DynamoDB Scan",
                message: format!("LastEvaluatedKey: {message}"),
            })?),
            None => None,
        };
        Ok(StepScanPage {
            items: page.items.json().to_vec(),
            count: u32::try_from(page.items.count).unwrap_or(u32::MAX),
            last_evaluated_key,
            consumed_rcu: page.consumed_rcu,
        })
    }
}

/// An error of this host's I/O as the step component sees it: worth a retry, or not.
fn aws_failure(error: ExportError) -> AwsFailure {
    let message = crate::error::in_words(&error);
    match error {
        // What S3 said beyond a missing bucket or refused access (their own cases) is a 5xx or
        // a dropped connection the SDK's retries did not get past.
        ExportError::Throttled { .. } | ExportError::Transient { .. } | ExportError::S3 { .. } => {
            AwsFailure::Transient(message)
        }
        _ => AwsFailure::Refused(message),
    }
}

impl StepIo for NativeStepIo {
    fn describe_table(&mut self, table: &str) -> Result<(TableInfo, String), AwsFailure> {
        let info = self.tokio.block_on(self.table(table).describe()).map_err(aws_failure)?;
        Ok((info, self.aws.region.clone()))
    }

    fn scan(&mut self, request: StepScan) -> Result<StepScanPage, AwsFailure> {
        self.tokio.block_on(self.scan_page(request)).map_err(aws_failure)
    }

    fn check_bucket(&mut self, bucket: &StepBucket) -> Result<(), AwsFailure> {
        let destination = self.destination(bucket)?;
        self.tokio.block_on(destination.check()).map_err(aws_failure)
    }

    fn get_object(&mut self, bucket: &StepBucket, key: &str) -> Result<Found, AwsFailure> {
        let destination = self.destination(bucket)?;
        self.tokio.block_on(destination.get_tagged(key)).map_err(aws_failure)
    }

    /// The objects, read many at a time ([`Destination::get_many_tagged`]).
    fn get_objects(&mut self, bucket: &StepBucket, keys: &[String]) -> Result<Vec<Found>, AwsFailure> {
        let destination = self.destination(bucket)?;
        self.tokio.block_on(destination.get_many_tagged(keys)).map_err(aws_failure)
    }

    fn put_object(
        &mut self,
        bucket: &StepBucket,
        key: &str,
        body: Vec<u8>,
        condition: WriteCondition,
    ) -> Result<Option<String>, AwsFailure> {
        let destination = self.destination(bucket)?;
        let condition = match condition {
            WriteCondition::Always => Condition::None,
            WriteCondition::Absent => Condition::Absent,
            WriteCondition::Matches(etag) => Condition::Matches(etag),
        };
        let written = self.tokio.block_on(destination.put_if(key, body, condition)).map_err(aws_failure)?;
        Ok(written.map(|written| written.etag))
    }

    fn delete_object(&mut self, bucket: &StepBucket, key: &str) -> Result<(), AwsFailure> {
        let destination = self.destination(bucket)?;
        self.tokio.block_on(destination.delete(key)).map_err(aws_failure)
    }

    fn delete_objects(&mut self, bucket: &StepBucket, keys: &[String]) -> Result<(), AwsFailure> {
        let destination = self.destination(bucket)?;
        self.tokio.block_on(destination.delete_many(keys)).map_err(aws_failure)
    }

    /// The whole listing in one page (the destination pages through S3 itself).
    fn list_objects(
        &mut self,
        bucket: &StepBucket,
        prefix: &str,
        _continuation: Option<String>,
    ) -> Result<(Vec<StepListedObject>, Option<String>), AwsFailure> {
        let destination = self.destination(bucket)?;
        let listed = self.tokio.block_on(destination.list(prefix)).map_err(aws_failure)?;
        Ok((listed.into_iter().map(|o| StepListedObject { key: o.key, etag: o.etag }).collect(), None))
    }
}
