//! What is already at a destination: one export's description (`ddb-export describe`) and the
//! exports under a prefix (`ddb-export list`), in the shapes `aws dynamodb describe-export` and
//! `list-exports` print. Exports AWS wrote are read from their `manifest-summary.json`; ours
//! also from the state a run keeps beside them (`crate::state::checkpoint`), which tells an unfinished
//! or failed export apart.

use std::time::UNIX_EPOCH;

use serde::Serialize;
use serde_json::Value;

use crate::error::ExportError;
use crate::io::destination::Destination;
use crate::state::checkpoint::{self, FailureRecord, RunState};
use crate::state::description::{ExportDescription, ExportStatus, IncrementalExportSpecification, cli_timestamp};

/// One export as `aws dynamodb list-exports` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ExportSummary {
    pub export_arn: String,
    pub export_status: ExportStatus,
    pub export_type: String,
}

/// `{"ExportSummaries": […]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListExportsOutput {
    pub export_summaries: Vec<ExportSummary>,
}

/// The description of export `export_id` under the destination's prefix: COMPLETED with its
/// summary's facts; FAILED or IN_PROGRESS (running, or stopped without a word: resumable)
/// from ddb-export's saved state when there is no summary.
pub async fn describe(destination: &Destination, export_id: &str) -> Result<ExportDescription, ExportError> {
    let root = checkpoint::export_root(destination.prefix().as_deref(), export_id);
    let state: Option<RunState> = checkpoint::load(destination, &checkpoint::run_key(&root)).await?;
    let summary_key = format!("{root}/manifest-summary.json");
    if let Some(summary) = destination.get(&summary_key).await? {
        let snapshot = state.as_ref().map(|s| &s.snapshot);
        return from_summary(&summary, &summary_key, snapshot.map(|s| s.client_token.as_str()), destination);
    }
    let not_found = |message: &str| ExportError::NoSuchExport {
        export_id: export_id.to_string(),
        location: destination.locate(&root),
        message: message.to_string(),
    };
    let Some(state) = state else {
        return Err(match destination.get(&format!("{root}/_started")).await? {
            Some(_) => not_found("it has begun, but has no summary and no ddb-export state to say more"),
            None => not_found("nothing is there"),
        });
    };
    let failure: Option<FailureRecord> = checkpoint::load(destination, &checkpoint::failure_key(&root)).await?;
    Ok(match failure {
        Some(failure) => ExportDescription::failed_as_recorded(&state.snapshot, &failure),
        None => ExportDescription::in_progress(&state.snapshot),
    })
}

/// The exports under the destination's prefix, oldest first. A folder that cannot be described
/// is skipped with a warning.
pub async fn list(destination: &Destination) -> Result<Vec<ExportSummary>, ExportError> {
    let exports = match destination.prefix() {
        Some(prefix) => format!("{prefix}/AWSDynamoDB/"),
        None => "AWSDynamoDB/".to_string(),
    };
    let mut summaries = Vec::new();
    for id in destination.folders(&exports).await? {
        if !crate::runtime::is_export_id(&id) {
            continue;
        }
        match describe(destination, &id).await {
            Ok(d) => summaries.push(ExportSummary {
                export_arn: d.export_arn,
                export_status: d.export_status,
                export_type: d.export_type,
            }),
            Err(error) => tracing::warn!("skipping {}: {error}", destination.locate(&format!("{exports}{id}"))),
        }
    }
    Ok(summaries)
}

/// A COMPLETED description from the bytes of a `manifest-summary.json` (AWS's or ours).
pub fn from_summary(
    summary: &[u8],
    summary_key: &str,
    client_token: Option<&str>,
    destination: &Destination,
) -> Result<ExportDescription, ExportError> {
    let corrupt = |message: String| ExportError::CorruptState { location: destination.locate(summary_key), message };
    let json: Value = serde_json::from_slice(summary).map_err(|e| corrupt(e.to_string()))?;
    let text = |field: &str| json[field].as_str().map(str::to_string);
    let required = |field: &str| text(field).ok_or_else(|| corrupt(format!("it has no {field}")));
    let time = |field: &str| -> Result<Option<String>, ExportError> {
        match json[field].as_str() {
            None => Ok(None),
            Some(t) => epoch_ms(t)
                .map(|ms| Some(cli_timestamp(ms)))
                .ok_or_else(|| corrupt(format!("its {field} {t:?} is not an RFC 3339 time"))),
        }
    };
    Ok(ExportDescription {
        export_arn: required("exportArn")?,
        export_status: ExportStatus::Completed,
        start_time: time("startTime")?.ok_or_else(|| corrupt("it has no startTime".into()))?,
        end_time: time("endTime")?,
        export_manifest: Some(summary_key.to_string()),
        table_arn: required("tableArn")?,
        table_id: required("tableId")?,
        export_time: time("exportTime")?,
        client_token: client_token.map(str::to_string),
        s3_bucket: required("s3Bucket")?,
        s3_bucket_owner: None,
        s3_prefix: text("s3Prefix"),
        s3_sse_algorithm: text("s3SseAlgorithm").unwrap_or_else(|| "AES256".into()),
        s3_sse_kms_key_id: text("s3SseKmsKeyId"),
        failure_code: None,
        failure_message: None,
        export_format: required("outputFormat")?,
        billed_size_bytes: json["billedSizeBytes"].as_u64(),
        item_count: Some(json["itemCount"].as_u64().ok_or_else(|| corrupt("it has no itemCount".into()))?),
        // Only incremental summaries name their type.
        export_type: text("exportType").unwrap_or_else(|| "FULL_EXPORT".into()),
        incremental_export_specification: match (time("exportFromTime")?, time("exportToTime")?) {
            (Some(export_from_time), Some(export_to_time)) => Some(IncrementalExportSpecification {
                export_from_time,
                export_to_time,
                export_view_type: text("outputView").unwrap_or_else(|| "NEW_AND_OLD_IMAGES".into()),
            }),
            _ => None,
        },
        ddb_export_statistics: None,
    })
}

/// Milliseconds since the epoch of an RFC 3339 time (`2020-11-04T07:28:34.028Z`).
fn epoch_ms(text: &str) -> Option<u64> {
    let time = humantime::parse_rfc3339(text).ok()?;
    Some(time.duration_since(UNIX_EPOCH).ok()?.as_millis() as u64)
}
