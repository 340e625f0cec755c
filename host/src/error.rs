//! The errors an export can end with, each in words a user can act on.

use std::path::PathBuf;

use crate::model::Field;
use crate::runtime::ComponentError;

/// Why an export failed.
///
/// A message names the request setting it is about as a [`Field`] (`` `ExportRequest::segments` ``);
/// the command line shows the flag instead.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("invalid {field}: {message}")]
    InvalidArgument { field: Field, message: String },
    /// The environment's AWS settings (region, timeouts) are unusable.
    #[error("invalid {setting}: {message}")]
    Configuration { setting: &'static str, message: String },
    /// DynamoDB or its stream answered with something no export can hold (a key that is not
    /// a key, a write record without its image): not our bug, and not worth a retry.
    #[error("{service} answered with what ddb-export cannot read: {message}")]
    UnreadableResponse { service: &'static str, message: String },
    #[error("table {table:?} was not found (checked with DescribeTable in region {region})")]
    TableNotFound { table: String, region: String },
    #[error("bucket {bucket:?} does not exist or is not visible to these credentials")]
    BucketNotFound { bucket: String },
    #[error("access denied: {action}: {message}")]
    AccessDenied { action: String, message: String },
    #[error("AWS credentials are missing, invalid or expired: {message}")]
    Credentials { message: String },
    #[error("DynamoDB throttled {operation} on {table:?}: {message}")]
    Throttled { operation: &'static str, table: String, message: String },
    #[error("DynamoDB {operation} on {table:?} failed, and may succeed if tried again: {message}")]
    Transient { operation: &'static str, table: String, message: String },
    #[error("DynamoDB {operation} on {table:?} failed: {message}")]
    DynamoDb { operation: &'static str, table: String, message: String },
    #[error("S3 {operation} of {key:?} in bucket {bucket:?} failed: {message}")]
    S3 { operation: &'static str, bucket: String, key: String, message: String },
    #[error("{action} {}: {source}", path.display())]
    Io { action: &'static str, path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Component(#[from] ComponentError),
    #[error("{component} produced unusable output: {message}")]
    BadOutput { component: String, message: String },
    #[error("the export was stopped because another shard failed")]
    Cancelled,
    #[error("the export was interrupted")]
    Interrupted,
    #[error(
        "client token {client_token:?} already started export {export_id} with other settings \
         (IdempotentParameterMismatch): {}; use another token, or the same settings",
        differences.join("; ")
    )]
    TokenConflict { client_token: String, export_id: String, differences: Vec<String> },
    #[error("export {export_id} cannot be resumed with these settings: {}", differences.join("; "))]
    ResumeConflict { export_id: String, differences: Vec<String> },
    #[error("there is no export {export_id} to resume at {location}: {message}")]
    NotResumable { export_id: String, location: String, message: String },
    #[error("there is no export {export_id} at {location}: {message}")]
    NoSuchExport { export_id: String, location: String, message: String },
    #[error("the export's saved state at {location} is unreadable: {message}")]
    CorruptState { location: String, message: String },
    #[error("{location}: {message}")]
    Verification { location: String, message: String },
    #[error("table {table:?} cannot give {purpose}: {message}")]
    StreamUnavailable { table: String, purpose: &'static str, message: String },
    #[error("the incremental window {window} cannot be exported: {message}")]
    IncrementalWindow { window: String, message: String },
    #[error("shard {shard} is busy: {message}")]
    ShardBusy { shard: u32, message: String },
    #[error("{what} is busy: {message}")]
    ExportBusy { what: String, message: String },
    #[error("export {export_id} is not ready to finalize: {message}")]
    Unfinished { export_id: String, message: String },
    /// A restore step that must wait for others (a shard of a later export of the chain, or
    /// the finalize step): retry it once they have finished.
    #[error("the restore is not ready for this step: {message}")]
    RestoreUnfinished { message: String },
    /// The step component (`wit/step`) answered with an error of its own; `kind` is its WIT
    /// case (`execution-failed` may succeed when run again, a `permanent-…` one will not).
    #[error("the step component failed ({kind}): {message}")]
    Step { kind: &'static str, message: String },
    #[error("internal error: {0}")]
    Internal(String),
}

impl ExportError {
    /// The short code for an ExportDescription's `FailureCode`.
    pub fn code(&self) -> &'static str {
        match self {
            ExportError::InvalidArgument { .. } | ExportError::Configuration { .. } => "InvalidArgument",
            ExportError::UnreadableResponse { .. } => "UnreadableResponse",
            ExportError::ShardBusy { .. } => "ShardBusy",
            ExportError::ExportBusy { .. } => "ExportBusy",
            ExportError::Unfinished { .. } => "ShardsUnfinished",
            ExportError::RestoreUnfinished { .. } => "RestoreShardsUnfinished",
            ExportError::TableNotFound { .. } => "TableNotFoundException",
            ExportError::BucketNotFound { .. } => "S3NoSuchBucket",
            ExportError::AccessDenied { .. } => "AccessDenied",
            ExportError::Credentials { .. } => "InvalidCredentials",
            ExportError::Throttled { .. } => "ProvisionedThroughputExceeded",
            ExportError::Transient { .. } => "DynamoDBUnavailable",
            ExportError::DynamoDb { .. } => "DynamoDBError",
            ExportError::S3 { .. } => "S3Error",
            ExportError::Io { .. } => "IOError",
            ExportError::Component(_) => "ComponentError",
            ExportError::BadOutput { .. } => "ComponentContractViolation",
            ExportError::Cancelled => "Cancelled",
            ExportError::Interrupted => "Interrupted",
            ExportError::TokenConflict { .. } => "IdempotentParameterMismatch",
            ExportError::ResumeConflict { .. } => "ResumeConflict",
            ExportError::NotResumable { .. } => "ExportNotFound",
            ExportError::NoSuchExport { .. } => "ExportNotFound",
            ExportError::CorruptState { .. } => "CorruptState",
            ExportError::Verification { .. } => "VerificationFailed",
            ExportError::StreamUnavailable { .. } => "StreamUnavailable",
            ExportError::IncrementalWindow { .. } => "InvalidExportTimeException",
            ExportError::Step { .. } => "StepFailed",
            ExportError::Internal(_) => "InternalError",
        }
    }
}

/// An error and its causes in words: each one's message once, outermost first, without the
/// Debug dumps the SDK's own display of an error chain appends.
pub fn in_words(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(error);
    while let Some(error) = next {
        let text = error.to_string();
        if !text.is_empty() && !parts.iter().any(|part| part.contains(&text)) {
            parts.push(text);
        }
        next = error.source();
    }
    parts.join(": ")
}
