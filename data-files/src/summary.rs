//! `manifest-summary.json`: one typed record for whoever writes or reads it. The default
//! component writes it (`write.manifests`) and checks it (`verify`); the host checks a
//! component's before storing it, and reads stored ones (`describe`, a completed export
//! found again). AWS's summaries read the same way.

use std::time::{Duration, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// The `version` of a full export's summary.
pub const FULL_EXPORT_VERSION: &str = "2020-06-30";
/// The `version` of an incremental export's summary.
pub const INCREMENTAL_EXPORT_VERSION: &str = "2023-08-01";
/// The `exportType` of an incremental export's summary (a full export's names none).
pub const INCREMENTAL_EXPORT: &str = "INCREMENTAL_EXPORT";
/// What an export without `exportType` is.
pub const FULL_EXPORT: &str = "FULL_EXPORT";

/// A summary, field for field, in AWS's order. Written, every field a full (or an
/// incremental) export has is set; read, a field may be missing (a summary not ours, or
/// edited): [`ManifestSummary::parse`] requires only what identifies the export and its
/// listing, and [`ManifestSummary::missing`] names the rest that is absent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestSummary {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    pub export_arn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table_id: Option<String>,
    /// A full export's point in time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export_time: Option<String>,
    /// An incremental export's window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export_from_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export_to_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_bucket: Option<String>,
    /// Written as `null` when there is no prefix, as AWS does.
    #[serde(default)]
    pub s3_prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_sse_algorithm: Option<String>,
    /// Written as `null` without a KMS key, as AWS does.
    #[serde(default)]
    pub s3_sse_kms_key_id: Option<String>,
    pub manifest_files_s3_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billed_size_bytes: Option<u64>,
    pub item_count: u64,
    pub output_format: String,
    /// An incremental export's view.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_view: Option<String>,
    /// `INCREMENTAL_EXPORT`; absent for a full export.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export_type: Option<String>,
}

impl ManifestSummary {
    /// Reads a summary. Refused (in words) when it is not JSON, or lacks a string `exportArn`,
    /// `manifestFilesS3Key` or `outputFormat` or a count `itemCount`, or has a field of the
    /// wrong type.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let json: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
        if !json.is_object() {
            return Err("not a JSON object".into());
        }
        for field in ["exportArn", "manifestFilesS3Key", "outputFormat"] {
            if !json.get(field).is_some_and(serde_json::Value::is_string) {
                return Err(format!("it has no string {field:?}"));
            }
        }
        if !json.get("itemCount").is_some_and(serde_json::Value::is_u64) {
            return Err("it has no itemCount".into());
        }
        serde_json::from_value(json).map_err(|e| format!("a field has the wrong type: {e}"))
    }

    /// The summary's bytes, as written (compact JSON, AWS's field order).
    pub fn to_bytes(&self) -> Vec<u8> {
        // A struct of strings and numbers always serializes.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// `exportType`, `FULL_EXPORT` when absent (only incremental summaries name their type).
    pub fn export_type(&self) -> &str {
        self.export_type.as_deref().unwrap_or(FULL_EXPORT)
    }

    /// Whether it is an incremental export's summary.
    pub fn is_incremental(&self) -> bool {
        self.export_type() == INCREMENTAL_EXPORT
    }

    /// The fields every summary has that this one lacks, by their JSON names.
    pub fn missing(&self) -> Vec<&'static str> {
        let fields = [
            ("startTime", self.start_time.is_some()),
            ("endTime", self.end_time.is_some()),
            ("tableArn", self.table_arn.is_some()),
            ("tableId", self.table_id.is_some()),
            ("s3Bucket", self.s3_bucket.is_some()),
            ("s3SseAlgorithm", self.s3_sse_algorithm.is_some()),
        ];
        fields.into_iter().filter(|(_, present)| !present).map(|(name, _)| name).collect()
    }
}

/// A time as summaries write them: `2023-08-31T07:40:21.041Z` (clamped to the end of 9999).
pub fn timestamp(epoch_ms: u64) -> String {
    let time = UNIX_EPOCH + Duration::from_millis(epoch_ms.min(LAST_MS_OF_9999));
    humantime::format_rfc3339_millis(time).to_string()
}

/// Milliseconds since the epoch of a summary's (RFC 3339) time; `None` when it is not one.
pub fn epoch_ms(text: &str) -> Option<u64> {
    let time = humantime::parse_rfc3339(text).ok()?;
    u64::try_from(time.duration_since(UNIX_EPOCH).ok()?.as_millis()).ok()
}

/// 9999-12-31T23:59:59.999Z.
const LAST_MS_OF_9999: u64 = 253_402_300_799_999;

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> ManifestSummary {
        ManifestSummary {
            version: Some(FULL_EXPORT_VERSION.into()),
            export_arn: "arn:aws:dynamodb:us-east-1:123456789012:table/t/export/01693467621041-a1b2c3d4".into(),
            start_time: Some(timestamp(1_693_467_621_041)),
            end_time: Some(timestamp(1_693_467_622_000)),
            table_arn: Some("arn:aws:dynamodb:us-east-1:123456789012:table/t".into()),
            table_id: Some("3f9c1a2e-0000-4000-8000-000000000001".into()),
            export_time: Some(timestamp(1_693_467_621_041)),
            s3_bucket: Some("b".into()),
            s3_sse_algorithm: Some("AES256".into()),
            manifest_files_s3_key: "AWSDynamoDB/01693467621041-a1b2c3d4/manifest-files.json".into(),
            billed_size_bytes: Some(0),
            item_count: 2,
            output_format: "DYNAMODB_JSON".into(),
            ..ManifestSummary::default()
        }
    }

    #[test]
    fn a_full_summary_is_written_in_aws_s_order_with_nulls_for_no_prefix_and_no_key() {
        let text = String::from_utf8(full().to_bytes()).unwrap();
        assert!(text.starts_with(r#"{"version":"2020-06-30","exportArn":"#), "{text}");
        assert!(text.contains(r#""exportTime":"2023-08-31T07:40:21.041Z","s3Bucket":"b","s3Prefix":null,"#), "{text}");
        assert!(text.contains(r#""s3SseKmsKeyId":null,"manifestFilesS3Key""#), "{text}");
        assert!(text.ends_with(r#""billedSizeBytes":0,"itemCount":2,"outputFormat":"DYNAMODB_JSON"}"#), "{text}");
        assert_eq!(ManifestSummary::parse(text.as_bytes()).unwrap(), full());
        assert_eq!(full().export_type(), FULL_EXPORT);
    }

    #[test]
    fn reading_requires_what_identifies_the_export_and_names_what_else_is_missing() {
        let cases = [
            (b"[1]".to_vec(), "not a JSON object"),
            (b"{".to_vec(), "not JSON"),
            (br#"{"manifestFilesS3Key":"k","outputFormat":"ION","itemCount":1}"#.to_vec(), "exportArn"),
            (br#"{"exportArn":"a","manifestFilesS3Key":"k","outputFormat":"ION"}"#.to_vec(), "itemCount"),
            (
                br#"{"exportArn":"a","manifestFilesS3Key":"k","outputFormat":"ION","itemCount":-1}"#.to_vec(),
                "itemCount",
            ),
            (
                br#"{"exportArn":"a","manifestFilesS3Key":"k","outputFormat":"ION","itemCount":1,"startTime":5}"#
                    .to_vec(),
                "wrong type",
            ),
        ];
        for (bytes, word) in cases {
            let why = ManifestSummary::parse(&bytes).unwrap_err();
            assert!(why.contains(word), "{word}: {why}");
        }
        let bare = br#"{"exportArn":"a","manifestFilesS3Key":"k","outputFormat":"ION","itemCount":1}"#;
        let summary = ManifestSummary::parse(bare).unwrap();
        assert_eq!(summary.missing(), ["startTime", "endTime", "tableArn", "tableId", "s3Bucket", "s3SseAlgorithm"]);
        assert!(full().missing().is_empty());
    }

    #[test]
    fn times_are_milliseconds_in_utc() {
        assert_eq!(timestamp(1_693_467_621_041), "2023-08-31T07:40:21.041Z");
        assert_eq!(timestamp(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(timestamp(u64::MAX), "9999-12-31T23:59:59.999Z");
        assert_eq!(epoch_ms("2023-08-31T07:40:21.041Z"), Some(1_693_467_621_041));
        assert_eq!(epoch_ms("yesterday"), None);
    }
}
