//! An export's state: its run state and the fingerprint of the settings that decide its bytes,
//! the checkpoint of each shard, the record of a failed run, the record of a client token, and
//! the consistent mode's cut. Their keys are in [`crate::keys`].

use std::collections::{BTreeMap, HashSet};

use ddb_export_model::layout;
use ddb_export_model::{
    CustomFormat, ExportFormat, Field, IncrementalWindow, ManifestEntry, ScanFilter, ShardPlan, Snapshot, TableSchema,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Version of the state objects' layout; a run refuses state of another version.
pub const STATE_VERSION: u32 = 1;

/// The settings that decide an export's bytes. A client token or `--resume` continues an
/// export only when they are all the same; parallelism, read limits and progress may differ.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    pub table_arn: String,
    /// The server's `TableId`, when it reports one: a table deleted and created again under
    /// the same name has another.
    pub table_id: Option<String>,
    pub format: ExportFormat,
    /// `--segments` as given (`None`: planned).
    pub segments: Option<u32>,
    pub target_file_bytes: u64,
    pub compression_level: u8,
    pub bucket: String,
    pub prefix: Option<String>,
    pub bucket_owner: Option<String>,
    pub kms_key_id: Option<String>,
    /// SHA-256 of the component that encodes the data files (hex).
    pub component: String,
    /// `--incremental`'s window and view, as given (an end left out stays `None`: the same
    /// command run again finds the same export); `None` for a full export.
    #[serde(default)]
    pub incremental: Option<IncrementalWindow>,
    /// `--consistent`.
    #[serde(default)]
    pub consistent: bool,
    /// `--filter`, `--projection` and their names and values.
    #[serde(default)]
    pub scan_filter: Option<ScanFilter>,
    /// `--encoder` and `--encoder-arg`s: the plugin that writes the data files.
    #[serde(default)]
    pub encoder: Option<EncoderFingerprint>,
}

/// The encoder plugin of an export: which one (its SHA-256), with which arguments, writing
/// which format. The arguments are kept as a digest: they may hold a secret (a key to
/// pseudonymise a column with), and this state is stored beside the exported data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncoderFingerprint {
    pub sha256: String,
    /// SHA-256 (hex) of the `--encoder-arg` pairs, in order, as a JSON array of pairs.
    pub args_sha256: String,
    pub format: CustomFormat,
}

impl Fingerprint {
    /// Each setting that differs from `now`, in words: `<setting>: <then> before, <now> now`,
    /// the setting named by its [`Field`].
    pub fn differences(&self, now: &Fingerprint) -> Vec<String> {
        let or_none = |v: &Option<String>| v.clone().unwrap_or_else(|| "none".into());
        let segments = |s: Option<u32>| s.map_or("planned by the component".into(), |n| n.to_string());
        let window = |w: &Option<IncrementalWindow>| w.map_or("off (a full export)".into(), |w| w.to_string());
        let filter = |f: &Option<ScanFilter>| f.as_ref().map_or("none".into(), ToString::to_string);
        let encoder = |e: &Option<EncoderFingerprint>| e.as_ref().map_or("none".into(), ToString::to_string);
        let fields: [(String, String, String); 15] = [
            (Field::Table.to_string(), self.table_arn.clone(), now.table_arn.clone()),
            ("the table's TableId (was it created again?)".into(), or_none(&self.table_id), or_none(&now.table_id)),
            (Field::Format.to_string(), self.format.aws_name().into(), now.format.aws_name().into()),
            (Field::Segments.to_string(), segments(self.segments), segments(now.segments)),
            (Field::TargetFileBytes.to_string(), self.target_file_bytes.to_string(), now.target_file_bytes.to_string()),
            (
                Field::CompressionLevel.to_string(),
                self.compression_level.to_string(),
                now.compression_level.to_string(),
            ),
            (format!("the bucket of {}", Field::Target), self.bucket.clone(), now.bucket.clone()),
            (format!("the prefix of {}", Field::Target), or_none(&self.prefix), or_none(&now.prefix)),
            (Field::S3BucketOwner.to_string(), or_none(&self.bucket_owner), or_none(&now.bucket_owner)),
            (Field::S3SseKmsKeyId.to_string(), or_none(&self.kms_key_id), or_none(&now.kms_key_id)),
            ("the component (SHA-256)".into(), self.component.clone(), now.component.clone()),
            (Field::Incremental.to_string(), window(&self.incremental), window(&now.incremental)),
            (Field::Consistent.to_string(), on_off(self.consistent), on_off(now.consistent)),
            (Field::ScanFilter.to_string(), filter(&self.scan_filter), filter(&now.scan_filter)),
            (format!("{}/{}", Field::Encoder, Field::EncoderArgs), encoder(&self.encoder), encoder(&now.encoder)),
        ];
        fields
            .into_iter()
            .filter(|(_, then, now)| then != now)
            .map(|(what, then, now)| format!("{what}: {then} before, {now} now"))
            .collect()
    }
}

fn on_off(on: bool) -> String {
    if on { "on" } else { "off" }.into()
}

impl std::fmt::Display for EncoderFingerprint {
    /// `plugin <SHA-256> writing <FORMAT> (.ext), arguments <SHA-256>`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "plugin {} writing {} (.{}), arguments {}",
            self.sha256, self.format.output_format, self.format.file_extension, self.args_sha256
        )
    }
}

/// `<root>/_ddb-export/run.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunState {
    pub version: u32,
    pub fingerprint: Fingerprint,
    pub snapshot: Snapshot,
    pub plan: ShardPlan,
    /// Planned for fan-out (`ddb-export plan`): its shards run as `run-shard`, each under a
    /// lease, and `export --resume` refuses it.
    #[serde(default)]
    pub fanout: bool,
    /// The table's key attributes (partition key, then sort key): `verify` checks every item
    /// against them.
    #[serde(default)]
    pub table_key: Vec<String>,
    /// The table's key with types, billing and indexes: what `restore --create-table` makes
    /// a table from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table_schema: Option<TableSchema>,
}

/// An upload an interrupted run may have left unfinished.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenUpload {
    pub key: String,
    pub upload_id: String,
}

/// `<root>/_ddb-export/shards/<id>.json`: how far one shard got.
///
/// Invariant: `files` hold exactly the segment's items up to `resume_key` (all of them when
/// `done`), and `next_sequence` is the sequence of the next data file the shard's encoder opens.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardCheckpoint {
    pub shard: u32,
    pub done: bool,
    pub files: Vec<ManifestEntry>,
    pub items: u64,
    pub next_sequence: u32,
    /// The Scan's `LastEvaluatedKey` after the last stored item, in DynamoDB JSON.
    pub resume_key: Option<Value>,
    /// A multipart upload begun after the last stored file.
    pub open_upload: Option<OpenUpload>,
}

impl ShardCheckpoint {
    /// A checkpoint must hold together: what a resumed shard does with it must neither lose
    /// nor repeat an item. `file_keys` collects the data files of the checkpoints checked so
    /// far (a file recorded by two is refused). It is data from the destination, which anyone
    /// with write access could change.
    pub fn check(&self, snapshot: &Snapshot, file_keys: &mut HashSet<String>) -> Result<(), String> {
        let data_file_key =
            |key: &str| layout::check_data_file_key(&snapshot.keys.data_prefix, &snapshot.data_file_extension, key);
        for file in &self.files {
            data_file_key(&file.data_file_s3_key)?;
            if !file_keys.insert(file.data_file_s3_key.clone()) {
                return Err(format!("data file {:?} is recorded twice", file.data_file_s3_key));
            }
        }
        if let Some(upload) = &self.open_upload {
            data_file_key(&upload.key)?;
        }
        if self.items != self.files.iter().map(|f| f.item_count).sum::<u64>() {
            return Err("its item count is not the sum of its files'".into());
        }
        if (self.next_sequence as usize) < self.files.len() {
            return Err(format!(
                "its next file sequence {} is below its {} files",
                self.next_sequence,
                self.files.len()
            ));
        }
        match (self.done, &self.resume_key) {
            (true, Some(_)) => Err("a finished shard has a resume key".into()),
            (true, None) if self.open_upload.is_some() => Err("a finished shard has an open upload".into()),
            (false, None) if !self.files.is_empty() => Err("it records files but no key to resume after them".into()),
            _ => Ok(()),
        }
    }
}

/// `<root>/_ddb-export/incremental.json`: the data files the runs of an incremental export
/// started (saved before each file's first byte), so that a run carrying on after an
/// interrupted one can abort their uploads and delete those it does not write again.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncrementalFiles {
    pub started: Vec<String>,
}

/// `<root>/_ddb-export/failed.json`: why the last run of an export failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureRecord {
    pub failure_code: String,
    pub failure_message: String,
    pub end_time_ms: u64,
}

/// `_ddb-export/client-tokens/<sha256>.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    pub version: u32,
    pub export_id: String,
    /// The prefix the export was written under.
    pub prefix: Option<String>,
}

/// `<root>/_ddb-export/consistent.json`: how far the consistent mode's cut got.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CutState {
    /// T, in milliseconds since the epoch (a whole second).
    pub cut_ms: u64,
    /// Each data file rewritten so far: its replacement, or `None` when no line was left.
    pub rewritten: BTreeMap<String, Option<ManifestEntry>>,
    /// The files holding the states at T, once written.
    pub images: Option<Vec<ManifestEntry>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_name_each_flag() {
        let before = Fingerprint {
            table_arn: "arn:aws:dynamodb:us-east-1:123456789012:table/t".into(),
            table_id: None,
            format: ExportFormat::DynamodbJson,
            segments: None,
            target_file_bytes: 1000,
            compression_level: 6,
            bucket: "b".into(),
            prefix: Some("p".into()),
            bucket_owner: None,
            kms_key_id: None,
            component: "abc".into(),
            incremental: None,
            consistent: false,
            scan_filter: None,
            encoder: None,
        };
        assert!(before.differences(&before).is_empty());
        let now = Fingerprint { target_file_bytes: 2000, prefix: Some("q".into()), ..before.clone() };
        let differences = before.differences(&now);
        assert_eq!(differences.len(), 2, "{differences:?}");
        assert_eq!(differences[0], "`ExportRequest::target_file_bytes`: 1000 before, 2000 now");
        assert_eq!(differences[1], "the prefix of `ExportRequest::target`: p before, q now");
        let now = Fingerprint { segments: Some(4), ..before.clone() };
        assert_eq!(before.differences(&now), ["`ExportRequest::segments`: planned by the component before, 4 now"]);
    }
}
