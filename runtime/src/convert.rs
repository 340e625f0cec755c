//! Conversions between the host's model and the generated WIT types.

use super::bindings::{restore, shard_plan, snapshot, types, verify, write};
use ddb_export_model::{
    Billing, CustomFormat, DataFileFacts, EncoderEvent, EncoderOptions, ExportFormat, ExportKeys, ExportTotals,
    ExportViewType, FileReport, IncrementalSpec, KeyAttribute, KeyType, ListedFile, ManifestEntry, ManifestsCheck,
    Shard, ShardPlan, Snapshot, SnapshotRequest, SseAlgorithm, StoredObject, TableInfo, WriteBatch, WriteRequest,
};

/// A component's refusal, in words (never the generated enum's Debug text).
pub trait InWords {
    fn in_words(self) -> String;
}

impl InWords for write::Error {
    fn in_words(self) -> String {
        match self {
            write::Error::InvalidPage(m) => format!("invalid page: {m}"),
            write::Error::InvalidOptions(m) => format!("invalid options: {m}"),
            write::Error::Finished => "the encoder was used after it finished".into(),
            write::Error::Other(m) => m,
        }
    }
}

impl InWords for snapshot::Error {
    fn in_words(self) -> String {
        match self {
            snapshot::Error::InvalidRequest(m) => format!("invalid request: {m}"),
            snapshot::Error::InvalidTable(m) => format!("invalid table: {m}"),
            snapshot::Error::UnsupportedFormat(format) => {
                format!("it does not write the {} format", format_from_wit(format).aws_name())
            }
            snapshot::Error::Other(m) => m,
        }
    }
}

impl InWords for shard_plan::Error {
    fn in_words(self) -> String {
        match self {
            shard_plan::Error::InvalidRequest(m) => format!("invalid request: {m}"),
            shard_plan::Error::Other(m) => m,
        }
    }
}

impl InWords for verify::Error {
    fn in_words(self) -> String {
        match self {
            verify::Error::UnreadableSummary(m) => format!("the summary is unreadable: {m}"),
            verify::Error::Other(m) => m,
        }
    }
}

impl InWords for super::bindings::incremental::Error {
    fn in_words(self) -> String {
        use super::bindings::incremental::Error;
        match self {
            Error::InvalidRecords(m) => format!("invalid records: {m}"),
            Error::InvalidOptions(m) => format!("invalid options: {m}"),
            Error::Finished => "the change encoder was used after it finished".into(),
            Error::Other(m) => m,
        }
    }
}

impl InWords for String {
    fn in_words(self) -> String {
        self
    }
}

pub fn table(info: &TableInfo) -> types::TableDescription {
    types::TableDescription {
        table_name: info.table_name.clone(),
        table_arn: info.table_arn.clone(),
        table_id: info.table_id.clone(),
        item_count: info.item_count,
        table_size_bytes: info.table_size_bytes,
        billing: match info.billing {
            Billing::OnDemand => types::Billing::OnDemand,
            Billing::Provisioned(rcu) => types::Billing::Provisioned(rcu),
        },
    }
}

fn format_to_wit(format: ExportFormat) -> types::ExportFormat {
    match format {
        ExportFormat::DynamodbJson => types::ExportFormat::DynamodbJson,
        ExportFormat::Ion => types::ExportFormat::Ion,
    }
}

fn format_from_wit(format: types::ExportFormat) -> ExportFormat {
    match format {
        types::ExportFormat::DynamodbJson => ExportFormat::DynamodbJson,
        types::ExportFormat::Ion => ExportFormat::Ion,
    }
}

fn sse_to_wit(sse: SseAlgorithm) -> types::SseAlgorithm {
    match sse {
        SseAlgorithm::Aes256 => types::SseAlgorithm::Aes256,
        SseAlgorithm::Kms => types::SseAlgorithm::Kms,
    }
}

fn sse_from_wit(sse: types::SseAlgorithm) -> SseAlgorithm {
    match sse {
        types::SseAlgorithm::Aes256 => SseAlgorithm::Aes256,
        types::SseAlgorithm::Kms => SseAlgorithm::Kms,
    }
}

fn incremental_to_wit(spec: &IncrementalSpec) -> types::IncrementalExportSpecification {
    types::IncrementalExportSpecification {
        export_from_time_ms: spec.export_from_time_ms,
        export_to_time_ms: spec.export_to_time_ms,
        export_view_type: match spec.export_view_type {
            ExportViewType::NewImage => types::ExportViewType::NewImage,
            ExportViewType::NewAndOldImages => types::ExportViewType::NewAndOldImages,
        },
    }
}

fn incremental_from_wit(spec: types::IncrementalExportSpecification) -> IncrementalSpec {
    IncrementalSpec {
        export_from_time_ms: spec.export_from_time_ms,
        export_to_time_ms: spec.export_to_time_ms,
        export_view_type: match spec.export_view_type {
            types::ExportViewType::NewImage => ExportViewType::NewImage,
            types::ExportViewType::NewAndOldImages => ExportViewType::NewAndOldImages,
        },
    }
}

pub fn snapshot_request(request: &SnapshotRequest) -> snapshot::ExportRequest {
    snapshot::ExportRequest {
        s3_bucket: request.s3_bucket.clone(),
        s3_prefix: request.s3_prefix.clone(),
        s3_bucket_owner: request.s3_bucket_owner.clone(),
        s3_sse_algorithm: sse_to_wit(request.s3_sse_algorithm),
        s3_sse_kms_key_id: request.s3_sse_kms_key_id.clone(),
        export_format: format_to_wit(request.export_format),
        client_token: request.client_token.clone(),
        start_time_ms: request.start_time_ms,
        region: request.region.clone(),
        incremental: request.incremental.as_ref().map(incremental_to_wit),
        custom_format: request.custom_format.as_ref().map(custom_format_to_wit),
    }
}

fn custom_format_to_wit(custom: &CustomFormat) -> types::CustomFormat {
    types::CustomFormat { output_format: custom.output_format.clone(), file_extension: custom.file_extension.clone() }
}

fn custom_format_from_wit(custom: types::CustomFormat) -> CustomFormat {
    CustomFormat { output_format: custom.output_format, file_extension: custom.file_extension }
}

pub fn snapshot_from_wit(s: snapshot::ExportSnapshot) -> Snapshot {
    Snapshot {
        export_id: s.export_id,
        export_arn: s.export_arn,
        table_arn: s.table_arn,
        table_id: s.table_id,
        table_name: s.table_name,
        start_time_ms: s.start_time_ms,
        export_time_ms: s.export_time_ms,
        s3_bucket: s.s3_bucket,
        s3_prefix: s.s3_prefix,
        s3_bucket_owner: s.s3_bucket_owner,
        s3_sse_algorithm: sse_from_wit(s.s3_sse_algorithm),
        s3_sse_kms_key_id: s.s3_sse_kms_key_id,
        export_format: format_from_wit(s.export_format),
        client_token: s.client_token,
        keys: ExportKeys {
            root: s.keys.root,
            started: s.keys.started,
            data_prefix: s.keys.data_prefix,
            manifest_files: s.keys.manifest_files,
            manifest_files_md5: s.keys.manifest_files_md5,
            manifest_summary: s.keys.manifest_summary,
            manifest_summary_md5: s.keys.manifest_summary_md5,
        },
        data_file_extension: s.data_file_extension,
        incremental: s.incremental.map(incremental_from_wit),
        custom_format: s.custom_format.map(custom_format_from_wit),
    }
}

pub fn snapshot_to_wit(s: &Snapshot) -> snapshot::ExportSnapshot {
    snapshot::ExportSnapshot {
        export_id: s.export_id.clone(),
        export_arn: s.export_arn.clone(),
        table_arn: s.table_arn.clone(),
        table_id: s.table_id.clone(),
        table_name: s.table_name.clone(),
        start_time_ms: s.start_time_ms,
        export_time_ms: s.export_time_ms,
        s3_bucket: s.s3_bucket.clone(),
        s3_prefix: s.s3_prefix.clone(),
        s3_bucket_owner: s.s3_bucket_owner.clone(),
        s3_sse_algorithm: sse_to_wit(s.s3_sse_algorithm),
        s3_sse_kms_key_id: s.s3_sse_kms_key_id.clone(),
        export_format: format_to_wit(s.export_format),
        client_token: s.client_token.clone(),
        keys: snapshot::ExportKeys {
            root: s.keys.root.clone(),
            started: s.keys.started.clone(),
            data_prefix: s.keys.data_prefix.clone(),
            manifest_files: s.keys.manifest_files.clone(),
            manifest_files_md5: s.keys.manifest_files_md5.clone(),
            manifest_summary: s.keys.manifest_summary.clone(),
            manifest_summary_md5: s.keys.manifest_summary_md5.clone(),
        },
        data_file_extension: s.data_file_extension.clone(),
        incremental: s.incremental.as_ref().map(incremental_to_wit),
        custom_format: s.custom_format.as_ref().map(custom_format_to_wit),
    }
}

pub fn plan_from_wit(plan: shard_plan::Plan) -> ShardPlan {
    ShardPlan {
        shards: plan
            .shards
            .into_iter()
            .map(|s| Shard { id: s.id, segment: s.segment, total_segments: s.total_segments })
            .collect(),
        rationale: plan.rationale,
    }
}

pub fn encoder_options(options: &EncoderOptions) -> write::EncoderOptions {
    write::EncoderOptions {
        shard_id: options.shard_id,
        target_file_bytes: options.target_file_bytes,
        compression_level: options.compression_level,
        first_sequence: options.first_sequence,
    }
}

pub fn events_from_wit(output: Vec<write::Output>) -> Vec<EncoderEvent> {
    output
        .into_iter()
        .map(|event| match event {
            write::Output::FileStarted(key) => EncoderEvent::FileStarted(key),
            write::Output::Bytes(bytes) => EncoderEvent::Bytes(bytes),
            write::Output::FileFinished(f) => EncoderEvent::FileFinished(DataFileFacts {
                key: f.key,
                item_count: f.item_count,
                md5: f.md5,
                size_bytes: f.size_bytes,
            }),
        })
        .collect()
}

pub fn manifest_entry(entry: &ManifestEntry) -> write::ManifestEntry {
    write::ManifestEntry {
        data_file_s3_key: entry.data_file_s3_key.clone(),
        item_count: entry.item_count,
        md5_checksum: entry.md5_checksum.clone(),
        etag: entry.etag.clone(),
    }
}

pub fn totals(totals: &ExportTotals) -> write::ExportTotals {
    write::ExportTotals {
        end_time_ms: totals.end_time_ms,
        item_count: totals.item_count,
        billed_size_bytes: totals.billed_size_bytes,
    }
}

pub fn object_from_wit(object: write::Object) -> StoredObject {
    StoredObject { key: object.key, body: object.body }
}

pub fn manifests_from_wit(m: verify::Manifests) -> ManifestsCheck {
    ManifestsCheck {
        export_arn: m.export_arn,
        export_type: m.export_type,
        output_format: m.output_format,
        format: m.format.map(format_from_wit),
        item_count: m.item_count,
        manifest_files_key: m.manifest_files_key,
        files: m
            .files
            .into_iter()
            .map(|f| ListedFile { key: f.key, item_count: f.item_count, md5: f.md5, etag: f.etag })
            .collect(),
        problems: m.problems,
    }
}

/// A file's report, with the key hashes `feed` returned before (`earlier`) and `finish`'s.
pub fn file_report_from_wit(report: verify::FileReport, earlier: Vec<u8>) -> Result<FileReport, String> {
    let mut bytes = earlier;
    bytes.extend_from_slice(&report.key_hashes);
    if bytes.len() as u64 != report.lines.saturating_mul(16) {
        return Err(format!("it reported {} lines but {} bytes of key hashes (16 a line)", report.lines, bytes.len()));
    }
    let key_hashes = bytes.chunks_exact(16).map(|c| <[u8; 16]>::try_from(c).unwrap_or_default()).collect();
    Ok(FileReport { lines: report.lines, problems: report.problems, key_hashes })
}

pub fn format(format: ExportFormat) -> types::ExportFormat {
    format_to_wit(format)
}

pub fn key_to_wit(key: &[KeyAttribute]) -> Vec<types::KeyAttribute> {
    key.iter()
        .map(|k| types::KeyAttribute {
            name: k.name.clone(),
            attribute_type: k.key_type.map(|t| match t {
                KeyType::S => types::KeyType::S,
                KeyType::N => types::KeyType::N,
                KeyType::B => types::KeyType::B,
            }),
        })
        .collect()
}

/// The most requests one `BatchWriteItem` takes.
const MAX_BATCH: usize = 25;

/// A decoder's batches, checked: each 1 to [`MAX_BATCH`] requests, their lines following on
/// from `next_line` (advanced past them). A batch may skip ahead (never back): lines are not
/// all writes in every format to come.
pub fn write_batches_from_wit(
    batches: Vec<restore::WriteBatch>,
    next_line: &mut u64,
) -> Result<Vec<WriteBatch>, String> {
    batches
        .into_iter()
        .map(|batch| {
            let count = batch.requests.len();
            if count == 0 || count > MAX_BATCH {
                return Err(format!("it returned a batch of {count} requests (1 to {MAX_BATCH} are allowed)"));
            }
            if batch.first_line < *next_line {
                return Err(format!(
                    "it returned a batch starting at line {}, but line {} was next",
                    batch.first_line, *next_line
                ));
            }
            *next_line = batch.first_line.saturating_add(count as u64);
            let requests = batch
                .requests
                .into_iter()
                .map(|request| match request {
                    restore::WriteRequest::Put(item) => WriteRequest::Put(item),
                    restore::WriteRequest::Delete(key) => WriteRequest::Delete(key),
                })
                .collect();
            Ok(WriteBatch { requests, first_line: batch.first_line })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_decoder_s_batches_hold_1_to_25_requests_in_line_order() {
        let batch = |first_line: u64, count: usize| restore::WriteBatch {
            requests: (0..count).map(|_| restore::WriteRequest::Put(vec![0])).collect(),
            first_line,
        };
        let mut next = 1;
        let batches = write_batches_from_wit(vec![batch(1, 25), batch(26, 3), batch(40, 1)], &mut next).unwrap();
        assert_eq!((batches.len(), next), (3, 41), "a later batch may skip lines, never go back");
        for (bad, words) in [(batch(41, 0), "a batch of 0"), (batch(41, 26), "a batch of 26"), (batch(7, 1), "line 7")]
        {
            let mut at = 41;
            let error = write_batches_from_wit(vec![bad], &mut at).unwrap_err();
            assert!(error.contains(words), "{error}");
        }
    }

    #[test]
    fn a_snapshot_crosses_the_boundary_unchanged() {
        let snapshot = Snapshot {
            export_id: "01693467621041-a1b2c3d4".into(),
            export_arn: "arn".into(),
            table_arn: "t".into(),
            table_id: "id".into(),
            table_name: "orders".into(),
            start_time_ms: 1,
            export_time_ms: 2,
            s3_bucket: "b".into(),
            s3_prefix: Some("p".into()),
            s3_bucket_owner: Some("123456789012".into()),
            s3_sse_algorithm: SseAlgorithm::Kms,
            s3_sse_kms_key_id: Some("k".into()),
            export_format: ExportFormat::Ion,
            client_token: "c".into(),
            keys: ExportKeys {
                root: "r".into(),
                started: "s".into(),
                data_prefix: "d/".into(),
                manifest_files: "mf".into(),
                manifest_files_md5: "mfm".into(),
                manifest_summary: "ms".into(),
                manifest_summary_md5: "msm".into(),
            },
            data_file_extension: "ion.gz".into(),
            incremental: Some(IncrementalSpec {
                export_from_time_ms: 1,
                export_to_time_ms: 2,
                export_view_type: ExportViewType::NewAndOldImages,
            }),
            custom_format: Some(CustomFormat { output_format: "CSV".into(), file_extension: "csv.gz".into() }),
        };
        assert_eq!(snapshot_from_wit(snapshot_to_wit(&snapshot)), snapshot);
    }

    #[test]
    fn a_refusal_is_said_in_words() {
        let said = [
            write::Error::InvalidPage("item 3".into()).in_words(),
            write::Error::Finished.in_words(),
            snapshot::Error::UnsupportedFormat(types::ExportFormat::Ion).in_words(),
            shard_plan::Error::InvalidRequest("0 segments".into()).in_words(),
            verify::Error::UnreadableSummary("not JSON".into()).in_words(),
        ];
        assert_eq!(
            said,
            [
                "invalid page: item 3",
                "the encoder was used after it finished",
                "it does not write the ION format",
                "invalid request: 0 segments",
                "the summary is unreadable: not JSON",
            ]
        );
        for text in said {
            assert!(!text.contains('(') || text.contains("ION"), "no Debug text: {text}");
        }
    }

    #[test]
    fn a_file_report_must_carry_16_bytes_of_key_hash_a_line() {
        let report =
            |lines: u64, hashes: usize| verify::FileReport { lines, problems: Vec::new(), key_hashes: vec![7; hashes] };
        let checked = file_report_from_wit(report(3, 16), vec![1; 32]).unwrap();
        assert_eq!(checked.key_hashes, vec![[1; 16], [1; 16], [7; 16]]);
        let refused = file_report_from_wit(report(3, 15), vec![1; 32]).unwrap_err();
        assert!(refused.contains("3 lines but 47 bytes"), "{refused}");
    }
}
