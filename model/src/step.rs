//! The step component's calls and answers (`wit/step`, `ddb-export:step`), as the host holds
//! them: its exports' requests and results, and what its `dynamodb` and `s3` imports carry.
//! The runtime converts between these and the generated bindings; nothing else sees those.

use serde::{Deserialize, Serialize};

use crate::{ExportFormat, ScanFilter, Shard};

/// Most keys one `s3.get-objects` or `s3.delete-objects` call may name (the WIT's bound, as
/// S3's DeleteObjects has it): the step component sends no more, a host refuses more.
pub const MAX_KEYS_PER_CALL: usize = 1000;

/// `plan`'s request: a full export for fan-out, as `ddb-export plan` takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepPlanRequest {
    pub table: String,
    pub s3_bucket: String,
    pub s3_prefix: Option<String>,
    pub s3_bucket_owner: Option<String>,
    pub s3_sse_kms_key_id: Option<String>,
    pub format: ExportFormat,
    pub client_token: String,
    pub segments: Option<u32>,
    pub parallelism: Option<u32>,
    pub target_file_bytes: Option<u64>,
    pub compression_level: Option<u8>,
    pub filter: Option<ScanFilter>,
}

/// `plan`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepPlan {
    pub export_arn: String,
    pub export_id: String,
    pub export_location: String,
    pub table_arn: String,
    pub s3_bucket_owner: Option<String>,
    pub shards: Vec<u32>,
    /// The client token's export is already finalized.
    pub completed: bool,
}

/// `run-shard`'s request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepShardRequest {
    pub export_location: String,
    pub expected_bucket_owner: Option<String>,
    pub shard: u32,
    /// Stop once this many data files are stored by the call.
    pub max_data_files: Option<u32>,
    /// Stop at the first data file boundary after this many milliseconds.
    pub max_millis: Option<u64>,
    /// The calling task's name, stable across its retries.
    pub task: Option<String>,
}

/// `run-shard`'s answer: where the shard stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepShardProgress {
    pub export_arn: String,
    pub shard: u32,
    pub done: bool,
    /// `None` once the whole export is complete (its checkpoints are gone).
    pub item_count: Option<u64>,
    pub data_files: Option<u32>,
    pub data_files_this_call: u32,
    pub item_count_this_call: u64,
}

/// `finalize`'s request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepFinalizeRequest {
    pub export_location: String,
    pub expected_bucket_owner: Option<String>,
    pub task: Option<String>,
}

/// `finalize`'s answer: the complete export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepSummary {
    pub export_arn: String,
    pub export_id: String,
    pub manifest_summary_location: String,
    pub item_count: u64,
    pub data_files: u64,
    pub already_complete: bool,
}

/// A step's own error (`steps.error`), its case kept: an engine retries only `Transient`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepFailure {
    #[error("{0}")]
    Transient(String),
    #[error("{0}")]
    BadTable(String),
    #[error("{0}")]
    BadDestination(String),
    #[error("{0}")]
    Refused(String),
    #[error("{message}")]
    ShardsUnfinished { shards: Vec<u32>, message: String },
    /// `execution-failed`, which the component never returns itself.
    #[error("the step component reported a failed execution")]
    ExecutionFailed,
}

impl StepFailure {
    /// The WIT case: `transient`, `permanent-bad-table`, …
    pub fn case(&self) -> &'static str {
        match self {
            StepFailure::Transient(_) => "transient",
            StepFailure::BadTable(_) => "permanent-bad-table",
            StepFailure::BadDestination(_) => "permanent-bad-destination",
            StepFailure::Refused(_) => "permanent-refused",
            StepFailure::ShardsUnfinished { .. } => "permanent-shards-unfinished",
            StepFailure::ExecutionFailed => "execution-failed",
        }
    }
}

/// Why an import's AWS call failed (`aws-types.aws-error`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AwsFailure {
    /// It may succeed later.
    #[error("{0}")]
    Transient(String),
    /// Refused as it stands.
    #[error("{0}")]
    Refused(String),
}

/// One Scan page asked for by a step.
#[derive(Debug, Clone, PartialEq)]
pub struct StepScan {
    pub table: String,
    pub shard: Shard,
    /// `ExclusiveStartKey`, DynamoDB JSON.
    pub start_key: Option<serde_json::Value>,
    pub limit: Option<u32>,
    pub filter: Option<ScanFilter>,
}

/// One Scan page for a step: `Items` as the service sent it.
#[derive(Debug, Clone, PartialEq)]
pub struct StepScanPage {
    pub items: Vec<u8>,
    pub count: u32,
    /// `LastEvaluatedKey`, DynamoDB JSON.
    pub last_evaluated_key: Option<serde_json::Value>,
    pub consumed_rcu: f64,
}

/// The bucket a step's S3 call is on, and how it writes there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepBucket {
    pub name: String,
    pub expected_owner: Option<String>,
    pub kms_key_id: Option<String>,
}

/// When a step's write goes ahead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteCondition {
    Always,
    /// `If-None-Match: *`.
    Absent,
    /// `If-Match`: the ETag, without quotes.
    Matches(String),
}

/// One object of a listing a step asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepListedObject {
    pub key: String,
    /// Without quotes.
    pub etag: String,
}
