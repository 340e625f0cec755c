//! What is already at a destination: one export's description (`ddb-export describe`) and the
//! exports under a prefix (`ddb-export list`), in the shapes `aws dynamodb describe-export` and
//! `list-exports` print. Exports AWS wrote are read from their `manifest-summary.json`; ours
//! also from the state a run keeps beside them (`crate::state::checkpoint`), which tells an unfinished
//! or failed export apart.

use serde::Serialize;

use crate::error::ExportError;
use crate::io::destination::Destination;
use crate::model::summary::ManifestSummary;
use crate::model::time::parse_summary_time;
use crate::state::checkpoint::{self, FailureRecord, RunState};
use crate::state::description::{ExportDescription, ExportStatus, IncrementalExportSpecification, cli_timestamp};
use crate::state::keys;

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
    let root = crate::model::layout::export_root(destination.prefix().as_deref(), export_id);
    let state: Option<RunState> = checkpoint::load(destination, &keys::run_key(&root)).await?;
    let summary_key =
        crate::model::layout::export_keys(destination.prefix().as_deref(), export_id, false).manifest_summary;
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
    let failure: Option<FailureRecord> = checkpoint::load(destination, &keys::failure_key(&root)).await?;
    Ok(match failure {
        Some(failure) => ExportDescription::failed_as_recorded(&state.snapshot, &failure),
        None => ExportDescription::in_progress(&state.snapshot),
    })
}

/// The exports under the destination's prefix, oldest first. A folder that cannot be described
/// is skipped with a warning.
pub async fn list(destination: &Destination) -> Result<Vec<ExportSummary>, ExportError> {
    let exports = crate::model::layout::exports_prefix(destination.prefix().as_deref());
    let mut summaries = Vec::new();
    for id in destination.folders(&exports).await? {
        if !crate::model::layout::is_export_id(&id) {
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
    let summary = ManifestSummary::parse(summary).map_err(corrupt)?;
    let required =
        |field: &str, value: &Option<String>| value.clone().ok_or_else(|| corrupt(format!("it has no {field}")));
    let time = |field: &str, value: &Option<String>| -> Result<Option<String>, ExportError> {
        match value {
            None => Ok(None),
            Some(t) => parse_summary_time(t)
                .map(|ms| Some(cli_timestamp(ms)))
                .ok_or_else(|| corrupt(format!("its {field} {t:?} is not an RFC 3339 time"))),
        }
    };
    Ok(ExportDescription {
        export_arn: summary.export_arn.clone(),
        export_status: ExportStatus::Completed,
        start_time: time("startTime", &summary.start_time)?.ok_or_else(|| corrupt("it has no startTime".into()))?,
        end_time: time("endTime", &summary.end_time)?,
        export_manifest: Some(summary_key.to_string()),
        table_arn: required("tableArn", &summary.table_arn)?,
        table_id: required("tableId", &summary.table_id)?,
        export_time: time("exportTime", &summary.export_time)?,
        client_token: client_token.map(str::to_string),
        s3_bucket: required("s3Bucket", &summary.s3_bucket)?,
        s3_bucket_owner: None,
        s3_prefix: summary.s3_prefix.clone(),
        s3_sse_algorithm: summary.s3_sse_algorithm.clone().unwrap_or_else(|| "AES256".into()),
        s3_sse_kms_key_id: summary.s3_sse_kms_key_id.clone(),
        failure_code: None,
        failure_message: None,
        export_format: summary.output_format.clone(),
        billed_size_bytes: summary.billed_size_bytes,
        item_count: Some(summary.item_count),
        export_type: summary.export_type().to_string(),
        incremental_export_specification: match (
            time("exportFromTime", &summary.export_from_time)?,
            time("exportToTime", &summary.export_to_time)?,
        ) {
            (Some(export_from_time), Some(export_to_time)) => Some(IncrementalExportSpecification {
                export_from_time,
                export_to_time,
                export_view_type: summary.output_view.clone().unwrap_or_else(|| "NEW_AND_OLD_IMAGES".into()),
            }),
            _ => None,
        },
        ddb_export_statistics: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::destination::Directory;

    const FULL: &str = r#"{"version":"2020-06-30","exportArn":"arn:aws:dynamodb:us-east-1:123456789012:table/orders/export/01693467621041-a1b2c3d4","startTime":"2023-08-31T07:40:21.041Z","endTime":"2023-08-31T07:45:00.000Z","tableArn":"arn:aws:dynamodb:us-east-1:123456789012:table/orders","tableId":"12345678-1234-1234-1234-123456789012","exportTime":"2023-08-31T07:40:21.041Z","s3Bucket":"b","s3Prefix":"p","s3SseAlgorithm":"AES256","s3SseKmsKeyId":null,"manifestFilesS3Key":"p/AWSDynamoDB/01693467621041-a1b2c3d4/manifest-files.json","billedSizeBytes":0,"itemCount":7,"outputFormat":"DYNAMODB_JSON"}"#;

    async fn directory() -> (tempfile::TempDir, Destination) {
        let dir = tempfile::tempdir().unwrap();
        let destination = Destination::Dir(Directory::create(dir.path()).await.unwrap());
        (dir, destination)
    }

    #[tokio::test]
    async fn a_summary_aws_wrote_is_described_as_the_aws_cli_prints_it() {
        let (_dir, destination) = directory().await;
        let described = from_summary(FULL.as_bytes(), "k", Some("token"), &destination).unwrap();
        assert_eq!(described.export_status, ExportStatus::Completed);
        assert_eq!(described.start_time, "2023-08-31T07:40:21.041000+00:00");
        assert_eq!(described.end_time.as_deref(), Some("2023-08-31T07:45:00.000000+00:00"));
        assert_eq!((described.item_count, described.export_type.as_str()), (Some(7), "FULL_EXPORT"));
        assert_eq!(described.client_token.as_deref(), Some("token"));
        assert!(described.incremental_export_specification.is_none());

        let incremental = FULL
            .replace(r#""version":"2020-06-30""#, r#""version":"2023-08-01""#)
            .replace(
                r#""exportTime":"2023-08-31T07:40:21.041Z","#,
                r#""exportFromTime":"2023-08-30T07:40:21.041Z","exportToTime":"2023-08-31T07:40:21.041Z","#,
            )
            .replace(
                r#""outputFormat":"DYNAMODB_JSON"}"#,
                r#""outputFormat":"DYNAMODB_JSON","outputView":"NEW_IMAGE","exportType":"INCREMENTAL_EXPORT"}"#,
            );
        let described = from_summary(incremental.as_bytes(), "k", None, &destination).unwrap();
        let spec = described.incremental_export_specification.expect("an incremental export's window");
        assert_eq!(
            (spec.export_view_type.as_str(), described.export_type.as_str()),
            ("NEW_IMAGE", "INCREMENTAL_EXPORT")
        );
        assert_eq!(spec.export_from_time, "2023-08-30T07:40:21.041000+00:00");
    }

    #[tokio::test]
    async fn an_unusable_summary_is_refused_naming_what_is_wrong() {
        let (_dir, destination) = directory().await;
        let cases = [
            (FULL.replace(r#""tableArn":"arn:aws:dynamodb:us-east-1:123456789012:table/orders","#, ""), "tableArn"),
            (FULL.replace(r#""startTime":"2023-08-31T07:40:21.041Z""#, r#""startTime":"yesterday""#), "startTime"),
            (FULL.replace(r#""itemCount":7"#, r#""itemCount":"7""#), "itemCount"),
            ("[]".to_string(), "JSON object"),
        ];
        for (summary, words) in cases {
            match from_summary(summary.as_bytes(), "k", None, &destination) {
                Err(ExportError::CorruptState { message, .. }) => assert!(message.contains(words), "{message}"),
                other => panic!("{words}: {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn an_export_that_is_not_there_is_named() {
        let (_dir, destination) = directory().await;
        match describe(&destination, "01693467621041-a1b2c3d4").await {
            Err(ExportError::NoSuchExport { export_id, .. }) => assert_eq!(export_id, "01693467621041-a1b2c3d4"),
            other => panic!("{other:?}"),
        }
        destination.put("AWSDynamoDB/not-an-export/x", Vec::new()).await.unwrap();
        assert!(list(&destination).await.unwrap().is_empty(), "a folder that is not an export id is skipped");
    }
}
