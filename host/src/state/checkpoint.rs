//! What an export keeps at its destination so that an interrupted run can be resumed, and a
//! client token found again. The destination is the only state there is: a resumed run may
//! start on another machine.
//!
//! Beside the export's own objects, under `<root>/_ddb-export/`:
//! - `run.json`: a [`RunState`]: the export's settings, its snapshot and its shard plan.
//!   Written once, after `_started` and before any data file.
//! - `shards/<id>.json`: a [`ShardCheckpoint`] per shard, rewritten whenever the shard has
//!   stored a data file: the files stored so far and the Scan key after their last item.
//!   Deleted once the export is complete.
//! - `failed.json`: a [`FailureRecord`], when a run ended with an error (not when it was
//!   killed); removed when a run resumes the export.
//! - `incremental.json`: an [`IncrementalFiles`], for an incremental export: the data files its
//!   runs started (they are in the shared `data/` folder, beside other exports' files).
//!
//! and, at the bucket's (or directory's) root, `_ddb-export/client-tokens/<sha256 of the
//! token>.json`: a [`TokenRecord`] naming the export a client token started. A token is scoped
//! to the bucket, not the prefix, so that the same token with another prefix is refused, as AWS
//! refuses it. AWS's layout has none of these objects; readers of an export go by
//! `manifest-files.json`, which never lists them.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::error::ExportError;
use crate::io::destination::Destination;
use crate::io::dynamodb::ScanFilter;
use crate::model::{ExportFormat, Field, IncrementalWindow, ManifestEntry, ShardPlan, Snapshot};

/// Version of the state objects' layout; a run refuses state of another version.
pub const STATE_VERSION: u32 = 1;

/// Folder of the state objects, under an export's root or under `AWSDynamoDB/`.
const STATE_DIR: &str = "_ddb-export";

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
    pub incremental: Option<crate::model::IncrementalWindow>,
    /// `--consistent`.
    #[serde(default)]
    pub consistent: bool,
    /// `--filter`, `--projection` and their names and values.
    #[serde(default)]
    pub scan_filter: Option<crate::io::dynamodb::ScanFilter>,
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
    pub format: crate::model::CustomFormat,
}

impl EncoderFingerprint {
    pub fn new(plugin: &crate::runtime::EncoderPlugin) -> Self {
        let args = serde_json::to_vec(plugin.args()).unwrap_or_default();
        Self {
            sha256: plugin.digest().to_string(),
            args_sha256: crate::model::checksum::hex(&Sha256::digest(&args)),
            format: plugin.custom_format(),
        }
    }
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
    pub table_schema: Option<crate::model::TableSchema>,
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

/// `<root>/_ddb-export/`: the folder of an export's own state, every key of which is made here
/// (and the leases' in [`crate::state::lease`], the cut's in the pipeline's `cut`, from this).
pub fn state_prefix(snapshot_root: &str) -> String {
    format!("{snapshot_root}/{STATE_DIR}/")
}

pub fn run_key(snapshot_root: &str) -> String {
    format!("{}run.json", state_prefix(snapshot_root))
}

pub fn failure_key(snapshot_root: &str) -> String {
    format!("{}failed.json", state_prefix(snapshot_root))
}

/// `<root>/_ddb-export/incremental.json`: an [`IncrementalFiles`].
pub fn incremental_key(snapshot_root: &str) -> String {
    format!("{}incremental.json", state_prefix(snapshot_root))
}

pub fn shards_prefix(snapshot_root: &str) -> String {
    format!("{}shards/", state_prefix(snapshot_root))
}

pub fn shard_key(snapshot_root: &str, shard: u32) -> String {
    format!("{}{shard:07}.json", shards_prefix(snapshot_root))
}

/// The token is hashed: it may be anything printable, and a key should not reveal it.
pub fn token_key(client_token: &str) -> String {
    let digest = crate::model::checksum::hex(&Sha256::digest(client_token.as_bytes()));
    format!("{STATE_DIR}/client-tokens/{digest}.json")
}

/// `<base>/_ddb-export/restores/<sha256 of the token>/`: the state of one restore (see
/// `crate::state::restore`), kept beside the export it restores (`base` is its root) or under
/// `--state` (`base` is that location's prefix, empty for a bucket's or directory's root).
pub fn restore_prefix(base: &str, client_token: &str) -> String {
    let digest = crate::model::checksum::hex(&Sha256::digest(client_token.as_bytes()));
    let base = base.trim_end_matches('/');
    if base.is_empty() {
        format!("{STATE_DIR}/restores/{digest}/")
    } else {
        format!("{base}/{STATE_DIR}/restores/{digest}/")
    }
}

/// `<restore>/restore.json`: a [`crate::state::restore::RestoreRun`].
pub fn restore_run_key(restore_prefix: &str) -> String {
    format!("{restore_prefix}restore.json")
}

/// `<restore>/report.json`: the finished restore's report.
pub fn restore_report_key(restore_prefix: &str) -> String {
    format!("{restore_prefix}report.json")
}

/// `<restore>/files/<export>-<file>.json`: one restored data file (the chain's `export`-th
/// export, its listing's `file`-th data file).
pub fn restored_file_key(restore_prefix: &str, export: usize, file: usize) -> String {
    format!("{restore_prefix}files/{export:04}-{file:07}.json")
}

/// Reads a state object; `None` when it does not exist.
pub async fn load<T: DeserializeOwned>(destination: &Destination, key: &str) -> Result<Option<T>, ExportError> {
    let Some(bytes) = destination.get(key).await? else { return Ok(None) };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| ExportError::CorruptState { location: destination.locate(key), message: e.to_string() })
}

/// Writes a state object.
pub async fn save<T: Serialize>(destination: &Destination, key: &str, value: &T) -> Result<(), ExportError> {
    let body = serde_json::to_vec_pretty(value).map_err(|e| ExportError::Internal(format!("encoding {key}: {e}")))?;
    destination.put(key, body).await.map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restore_keys_hide_the_token_and_sit_under_their_base() {
        let beside = restore_prefix("p/AWSDynamoDB/01", "secret");
        assert!(beside.starts_with("p/AWSDynamoDB/01/_ddb-export/restores/") && beside.ends_with('/'), "{beside}");
        assert!(!beside.contains("secret"));
        assert!(restore_prefix("", "secret").starts_with("_ddb-export/restores/"));
        assert_eq!(restore_prefix("q/", "t"), restore_prefix("q", "t"));
        assert_eq!(restored_file_key("r/", 1, 12), "r/files/0001-0000012.json");
    }

    #[test]
    fn token_keys_hide_the_token() {
        let key = token_key("my secret token");
        assert!(key.starts_with("_ddb-export/client-tokens/"));
        assert!(!key.contains("secret"));
        assert_ne!(key, token_key("another token"));
    }

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
