//! The ExportDescription printed on stdout, in the shape `aws dynamodb describe-export` prints.

use serde::Serialize;

use crate::error::ExportError;
use crate::model::ProgressFigures;
use crate::model::{IncrementalSpec, Snapshot};

/// `IN_PROGRESS`, `COMPLETED` or `FAILED`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ExportStatus {
    InProgress,
    Completed,
    Failed,
}

/// AWS's ExportDescription, field for field (absent fields are omitted, as the AWS CLI does).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ExportDescription {
    pub export_arn: String,
    pub export_status: ExportStatus,
    pub start_time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub export_manifest: Option<String>,
    pub table_arn: String,
    pub table_id: String,
    /// Absent for an incremental export.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub export_time: Option<String>,
    /// Absent when unknown (an export AWS wrote, read back from its files).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_token: Option<String>,
    pub s3_bucket: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s3_bucket_owner: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s3_prefix: Option<String>,
    pub s3_sse_algorithm: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s3_sse_kms_key_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_message: Option<String>,
    pub export_format: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub billed_size_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item_count: Option<u64>,
    pub export_type: String,
    /// Set for an incremental export.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incremental_export_specification: Option<IncrementalExportSpecification>,
    /// ddb-export's own figures (not in AWS's shape; consumers of it ignore unknown keys).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ddb_export_statistics: Option<ProgressFigures>,
}

/// AWS's `IncrementalExportSpecification`, as the AWS CLI prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct IncrementalExportSpecification {
    pub export_from_time: String,
    pub export_to_time: String,
    /// `NEW_IMAGE` or `NEW_AND_OLD_IMAGES`.
    pub export_view_type: String,
}

impl From<&IncrementalSpec> for IncrementalExportSpecification {
    fn from(spec: &IncrementalSpec) -> Self {
        Self {
            export_from_time: cli_timestamp(spec.export_from_time_ms),
            export_to_time: cli_timestamp(spec.export_to_time_ms),
            export_view_type: spec.export_view_type.aws_name().to_string(),
        }
    }
}

/// `{"ExportDescription": …}`, as the CLI wraps it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeExportOutput {
    pub export_description: ExportDescription,
}

pub use crate::model::time::cli_timestamp;

impl ExportDescription {
    fn base(snapshot: &Snapshot, status: ExportStatus) -> Self {
        Self {
            export_arn: snapshot.export_arn.clone(),
            export_status: status,
            start_time: cli_timestamp(snapshot.start_time_ms),
            end_time: None,
            export_manifest: None,
            table_arn: snapshot.table_arn.clone(),
            table_id: snapshot.table_id.clone(),
            // An incremental export reflects a window, not an instant.
            export_time: snapshot.incremental.is_none().then(|| cli_timestamp(snapshot.export_time_ms)),
            client_token: Some(snapshot.client_token.clone()),
            s3_bucket: snapshot.s3_bucket.clone(),
            s3_bucket_owner: snapshot.s3_bucket_owner.clone(),
            s3_prefix: snapshot.s3_prefix.clone(),
            s3_sse_algorithm: snapshot.s3_sse_algorithm.aws_name().to_string(),
            s3_sse_kms_key_id: snapshot.s3_sse_kms_key_id.clone(),
            failure_code: None,
            failure_message: None,
            export_format: snapshot.output_format().to_string(),
            billed_size_bytes: None,
            item_count: None,
            export_type: if snapshot.incremental.is_some() { "INCREMENTAL_EXPORT" } else { "FULL_EXPORT" }.to_string(),
            incremental_export_specification: snapshot.incremental.as_ref().map(IncrementalExportSpecification::from),
            ddb_export_statistics: None,
        }
    }

    /// An export without a summary and without a recorded failure: running, or stopped
    /// without a word (killed), and resumable.
    pub fn in_progress(snapshot: &Snapshot) -> Self {
        Self::base(snapshot, ExportStatus::InProgress)
    }

    /// An export whose last run recorded its failure.
    pub fn failed_as_recorded(snapshot: &Snapshot, failure: &crate::state::checkpoint::FailureRecord) -> Self {
        Self {
            end_time: Some(cli_timestamp(failure.end_time_ms)),
            failure_code: Some(failure.failure_code.clone()),
            failure_message: Some(failure.failure_message.clone()),
            ..Self::base(snapshot, ExportStatus::Failed)
        }
    }

    /// A finished export.
    pub fn completed(
        snapshot: &Snapshot,
        end_time_ms: u64,
        item_count: u64,
        billed_size_bytes: u64,
        statistics: ProgressFigures,
    ) -> Self {
        Self {
            ddb_export_statistics: Some(statistics),
            end_time: Some(cli_timestamp(end_time_ms)),
            export_manifest: Some(snapshot.keys.manifest_summary.clone()),
            billed_size_bytes: Some(billed_size_bytes),
            item_count: Some(item_count),
            ..Self::base(snapshot, ExportStatus::Completed)
        }
    }

    /// An export that stopped: no manifest was written.
    pub fn failed(snapshot: &Snapshot, end_time_ms: u64, error: &ExportError, statistics: ProgressFigures) -> Self {
        Self {
            ddb_export_statistics: Some(statistics),
            end_time: Some(cli_timestamp(end_time_ms)),
            failure_code: Some(error.code().to_string()),
            failure_message: Some(format!("{error}")),
            ..Self::base(snapshot, ExportStatus::Failed)
        }
    }

    /// Wrapped as the CLI prints it.
    pub fn into_output(self) -> DescribeExportOutput {
        DescribeExportOutput { export_description: self }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_look_like_the_cli() {
        assert_eq!(cli_timestamp(1_693_467_621_041), "2023-08-31T07:40:21.041000+00:00");
        assert_eq!(cli_timestamp(u64::MAX), "9999-12-31T23:59:59.999000+00:00");
    }
}
