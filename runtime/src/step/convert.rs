//! Between the step world's generated types and the model's (`ddb_export_model::step`), in
//! both directions: the one place the step bindings are spelled outside `bindings.rs`.

use ddb_export_model::step::{
    AwsFailure, MAX_KEYS_PER_CALL, StepBucket, StepFailure, StepFinalizeRequest, StepListedObject, StepPlan,
    StepPlanRequest, StepScan, StepShardProgress, StepShardRequest, StepSummary, WriteCondition,
};
use ddb_export_model::{ExportFormat, KeyAttribute, KeyType, ScanFilter, SchemaBilling, Shard, TableInfo};

use crate::bindings::step::{dynamodb, s3, steps};

use super::StepIo;

/// A store's [`StepIo`], borrowed for one import call: what the generated `Host` traits are
/// implemented for.
pub struct Imports<'a>(pub &'a mut dyn StepIo);

impl dynamodb::Host for Imports<'_> {
    fn describe_table(&mut self, table: String) -> Result<dynamodb::TableFacts, dynamodb::Error> {
        let (info, region) = self.0.describe_table(&table).map_err(dynamodb_error)?;
        Ok(table_facts(info, region))
    }

    fn scan(&mut self, request: dynamodb::ScanRequest) -> Result<dynamodb::ScanPage, dynamodb::Error> {
        let page = self.0.scan(scan(request)?).map_err(dynamodb_error)?;
        Ok(dynamodb::ScanPage {
            items: page.items,
            count: page.count,
            last_evaluated_key: page.last_evaluated_key.map(|key| key.to_string()),
            consumed_capacity: page.consumed_rcu,
        })
    }
}

impl s3::Host for Imports<'_> {
    fn check_bucket(&mut self, bucket: s3::Bucket) -> Result<(), s3::Error> {
        self.0.check_bucket(&step_bucket(bucket)).map_err(s3_error)
    }

    fn get_object(&mut self, bucket: s3::Bucket, key: String) -> Result<Option<s3::StoredObject>, s3::Error> {
        let found = self.0.get_object(&step_bucket(bucket), &key).map_err(s3_error)?;
        Ok(found.map(|(body, etag)| s3::StoredObject { body, etag }))
    }

    fn get_objects(
        &mut self,
        bucket: s3::Bucket,
        keys: Vec<String>,
    ) -> Result<Vec<Option<s3::StoredObject>>, s3::Error> {
        within_bound("get-objects", &keys)?;
        let found = self.0.get_objects(&step_bucket(bucket), &keys).map_err(s3_error)?;
        Ok(found.into_iter().map(|object| object.map(|(body, etag)| s3::StoredObject { body, etag })).collect())
    }

    fn put_object(
        &mut self,
        bucket: s3::Bucket,
        key: String,
        body: Vec<u8>,
        condition: s3::Condition,
    ) -> Result<Option<String>, s3::Error> {
        let condition = match condition {
            s3::Condition::Always => WriteCondition::Always,
            s3::Condition::Absent => WriteCondition::Absent,
            s3::Condition::Matches(etag) => WriteCondition::Matches(etag),
        };
        self.0.put_object(&step_bucket(bucket), &key, body, condition).map_err(s3_error)
    }

    fn delete_object(&mut self, bucket: s3::Bucket, key: String) -> Result<(), s3::Error> {
        self.0.delete_object(&step_bucket(bucket), &key).map_err(s3_error)
    }

    fn delete_objects(&mut self, bucket: s3::Bucket, keys: Vec<String>) -> Result<(), s3::Error> {
        within_bound("delete-objects", &keys)?;
        self.0.delete_objects(&step_bucket(bucket), &keys).map_err(s3_error)
    }

    fn list_objects(
        &mut self,
        bucket: s3::Bucket,
        prefix: String,
        continuation: Option<String>,
    ) -> Result<s3::ObjectListing, s3::Error> {
        let (objects, continuation) =
            self.0.list_objects(&step_bucket(bucket), &prefix, continuation).map_err(s3_error)?;
        let objects =
            objects.into_iter().map(|StepListedObject { key, etag }| s3::ListedObject { key, etag }).collect();
        Ok(s3::ObjectListing { objects, continuation })
    }
}

fn dynamodb_error(failure: AwsFailure) -> dynamodb::Error {
    match failure {
        AwsFailure::Transient(message) => dynamodb::Error::Transient(message),
        AwsFailure::Refused(message) => dynamodb::Error::Refused(message),
    }
}

fn s3_error(failure: AwsFailure) -> s3::Error {
    match failure {
        AwsFailure::Transient(message) => s3::Error::Transient(message),
        AwsFailure::Refused(message) => s3::Error::Refused(message),
    }
}

/// Refuses a many-object `call` that names more keys than the WIT allows.
fn within_bound(call: &str, keys: &[String]) -> Result<(), s3::Error> {
    match keys.len() > MAX_KEYS_PER_CALL {
        true => Err(s3::Error::Refused(format!(
            "{call} takes at most {MAX_KEYS_PER_CALL} keys at once, not {}",
            keys.len()
        ))),
        false => Ok(()),
    }
}

fn step_bucket(bucket: s3::Bucket) -> StepBucket {
    StepBucket { name: bucket.name, expected_owner: bucket.expected_owner, kms_key_id: bucket.kms_key_id }
}

/// What the component asked to Scan; its JSON read (a request that is not JSON is refused, as
/// the service would refuse it).
fn scan(request: dynamodb::ScanRequest) -> Result<StepScan, dynamodb::Error> {
    let json = |what: &str, text: &str| {
        serde_json::from_str::<serde_json::Value>(text)
            .map_err(|e| dynamodb::Error::Refused(format!("Scan of table {}: {what} is not JSON: {e}", request.table)))
    };
    let start_key = request.exclusive_start_key.as_deref().map(|key| json("ExclusiveStartKey", key)).transpose()?;
    let filter = ScanFilter::from_request_parts(
        request.filter_expression.as_deref(),
        request.projection_expression.as_deref(),
        &request.expression_attribute_names,
        &request.expression_attribute_values,
    )
    .map_err(|why| {
        dynamodb::Error::Refused(format!("Scan of table {}: ExpressionAttributeValues {why}", request.table))
    })?;
    Ok(StepScan {
        shard: Shard { id: request.segment, segment: request.segment, total_segments: request.total_segments },
        table: request.table,
        start_key,
        limit: request.limit,
        filter,
    })
}

/// What DescribeTable said, as the import carries it: typed keys and indexes when the table's
/// schema is known, names only otherwise.
fn table_facts(info: TableInfo, region: String) -> dynamodb::TableFacts {
    let key = |key: &[KeyAttribute]| -> Vec<dynamodb::KeyAttribute> {
        key.iter()
            .map(|k| dynamodb::KeyAttribute { name: k.name.clone(), attribute_type: k.key_type.map(key_type) })
            .collect()
    };
    let (key_attributes, indexes, billing) = match &info.schema {
        Some(schema) => (
            key(&schema.key),
            schema
                .indexes
                .iter()
                .map(|index| dynamodb::Index {
                    name: index.name.clone(),
                    global: index.global,
                    key: key(&index.key),
                    projection: index.projection.clone(),
                    non_key_attributes: index.non_key_attributes.clone(),
                })
                .collect(),
            match schema.billing {
                SchemaBilling::OnDemand => dynamodb::Billing::OnDemand,
                SchemaBilling::Provisioned { read_capacity_units, write_capacity_units } => {
                    dynamodb::Billing::Provisioned(dynamodb::Capacity {
                        read: read_capacity_units,
                        write: write_capacity_units,
                    })
                }
            },
        ),
        None => (
            info.key_attributes
                .iter()
                .map(|name| dynamodb::KeyAttribute { name: name.clone(), attribute_type: None })
                .collect(),
            Vec::new(),
            match info.billing {
                ddb_export_model::Billing::OnDemand => dynamodb::Billing::OnDemand,
                ddb_export_model::Billing::Provisioned(rcu) => {
                    dynamodb::Billing::Provisioned(dynamodb::Capacity { read: rcu, write: 0 })
                }
            },
        ),
    };
    dynamodb::TableFacts {
        table_name: info.table_name,
        table_arn: info.table_arn,
        table_id: info.table_id,
        item_count: info.item_count,
        size_bytes: info.table_size_bytes,
        billing,
        key: key_attributes,
        indexes,
        region,
    }
}

fn key_type(key_type: KeyType) -> dynamodb::KeyType {
    match key_type {
        KeyType::S => dynamodb::KeyType::S,
        KeyType::N => dynamodb::KeyType::N,
        KeyType::B => dynamodb::KeyType::B,
    }
}

pub fn plan_request(request: &StepPlanRequest) -> steps::PlanRequest {
    steps::PlanRequest {
        table: request.table.clone(),
        s3_bucket: request.s3_bucket.clone(),
        s3_prefix: request.s3_prefix.clone(),
        s3_bucket_owner: request.s3_bucket_owner.clone(),
        s3_sse_kms_key_id: request.s3_sse_kms_key_id.clone(),
        export_format: match request.format {
            ExportFormat::DynamodbJson => steps::ExportFormat::DynamodbJson,
            ExportFormat::Ion => steps::ExportFormat::Ion,
        },
        client_token: request.client_token.clone(),
        segments: request.segments,
        parallelism: request.parallelism,
        target_file_bytes: request.target_file_bytes,
        compression_level: request.compression_level,
        filter: request.filter.as_ref().map(|filter| {
            let (names, values) = filter.request_parts();
            steps::ScanFilter {
                filter_expression: filter.filter.clone(),
                projection_expression: filter.projection.clone(),
                expression_attribute_names: names,
                expression_attribute_values: values,
            }
        }),
    }
}

pub fn plan(plan: steps::ExportPlan) -> StepPlan {
    StepPlan {
        export_arn: plan.export_arn,
        export_id: plan.export_id,
        export_location: plan.export_location,
        table_arn: plan.table_arn,
        s3_bucket_owner: plan.s3_bucket_owner,
        shards: plan.shards,
        completed: plan.completed,
    }
}

pub fn shard_request(request: &StepShardRequest) -> steps::ShardRequest {
    steps::ShardRequest {
        export_location: request.export_location.clone(),
        expected_bucket_owner: request.expected_bucket_owner.clone(),
        shard: request.shard,
        budget: steps::Budget { max_data_files: request.max_data_files, max_millis: request.max_millis },
        task: request.task.clone(),
    }
}

pub fn progress(progress: steps::ShardProgress) -> StepShardProgress {
    StepShardProgress {
        export_arn: progress.export_arn,
        shard: progress.shard,
        done: progress.done,
        item_count: progress.item_count,
        data_files: progress.data_files,
        data_files_this_call: progress.data_files_this_call,
        item_count_this_call: progress.item_count_this_call,
    }
}

pub fn finalize_request(request: &StepFinalizeRequest) -> steps::FinalizeRequest {
    steps::FinalizeRequest {
        export_location: request.export_location.clone(),
        expected_bucket_owner: request.expected_bucket_owner.clone(),
        task: request.task.clone(),
    }
}

pub fn summary(summary: steps::ExportSummary) -> StepSummary {
    StepSummary {
        export_arn: summary.export_arn,
        export_id: summary.export_id,
        manifest_summary_location: summary.manifest_summary_location,
        item_count: summary.item_count,
        data_files: summary.data_files,
        already_complete: summary.already_complete,
    }
}

pub fn failure(error: steps::Error) -> StepFailure {
    match error {
        steps::Error::ExecutionFailed => StepFailure::ExecutionFailed,
        steps::Error::Transient(message) => StepFailure::Transient(message),
        steps::Error::PermanentBadTable(message) => StepFailure::BadTable(message),
        steps::Error::PermanentBadDestination(message) => StepFailure::BadDestination(message),
        steps::Error::PermanentRefused(message) => StepFailure::Refused(message),
        steps::Error::PermanentShardsUnfinished(unfinished) => {
            StepFailure::ShardsUnfinished { shards: unfinished.shards, message: unfinished.message }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_many_object_call_naming_more_keys_than_the_wit_allows_is_refused_by_name() {
        let keys = vec![String::from("k"); MAX_KEYS_PER_CALL];
        assert!(within_bound("get-objects", &keys).is_ok());
        let over = vec![String::from("k"); MAX_KEYS_PER_CALL + 1];
        match within_bound("delete-objects", &over) {
            Err(s3::Error::Refused(message)) => {
                assert_eq!(message, "delete-objects takes at most 1000 keys at once, not 1001")
            }
            other => panic!("not refused: {other:?}"),
        }
    }
}
