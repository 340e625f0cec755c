//! The host's own view of an export: plain data, serializable, independent of the generated
//! WIT bindings (which stay inside the runtime crate).

use serde::{Deserialize, Serialize};

/// The file format of the data files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ExportFormat {
    DynamodbJson,
    Ion,
}

impl ExportFormat {
    /// The name AWS uses: `DYNAMODB_JSON` or `ION`.
    pub fn aws_name(self) -> &'static str {
        match self {
            ExportFormat::DynamodbJson => "DYNAMODB_JSON",
            ExportFormat::Ion => "ION",
        }
    }
}

/// Server-side encryption of written objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SseAlgorithm {
    #[serde(rename = "AES256")]
    Aes256,
    #[serde(rename = "KMS")]
    Kms,
}

impl SseAlgorithm {
    /// The name AWS uses: `AES256` or `KMS`.
    pub fn aws_name(self) -> &'static str {
        match self {
            SseAlgorithm::Aes256 => "AES256",
            SseAlgorithm::Kms => "KMS",
        }
    }
}

/// Which images an incremental export's change records carry (`ExportViewType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExportViewType {
    #[serde(rename = "NEW_IMAGE")]
    NewImage,
    #[serde(rename = "NEW_AND_OLD_IMAGES")]
    NewAndOldImages,
}

impl ExportViewType {
    /// The name AWS uses: `NEW_IMAGE` or `NEW_AND_OLD_IMAGES`.
    pub fn aws_name(self) -> &'static str {
        match self {
            ExportViewType::NewImage => "NEW_IMAGE",
            ExportViewType::NewAndOldImages => "NEW_AND_OLD_IMAGES",
        }
    }
}

/// An incremental export's window and view (AWS's `IncrementalExportSpecification`), resolved:
/// the changes in `[export_from_time_ms, export_to_time_ms)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncrementalSpec {
    pub export_from_time_ms: u64,
    pub export_to_time_ms: u64,
    pub export_view_type: ExportViewType,
}

/// An incremental export's window and view as asked for (`from`, `until`, `view`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncrementalWindow {
    /// Inclusive start, ms since the epoch.
    pub from_ms: u64,
    /// Exclusive end, ms since the epoch; `None`: when the export starts.
    pub to_ms: Option<u64>,
    pub view: ExportViewType,
}

impl IncrementalWindow {
    /// The window of an export that started at `start_time_ms` (the end, when not given).
    pub fn resolve(self, start_time_ms: u64) -> IncrementalSpec {
        IncrementalSpec {
            export_from_time_ms: self.from_ms,
            export_to_time_ms: self.to_ms.unwrap_or(start_time_ms),
            export_view_type: self.view,
        }
    }
}

impl std::fmt::Display for IncrementalWindow {
    /// In words: `from 2024-05-01T12:00:00.000Z until (when the export starts), NEW_IMAGE`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let time = crate::time::summary_time;
        let until = self.to_ms.map_or("(when the export starts)".to_string(), time);
        write!(f, "from {} until {until}, {}", time(self.from_ms), self.view.aws_name())
    }
}

/// How the table is billed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Billing {
    OnDemand,
    /// Provisioned read capacity units per second.
    Provisioned(u64),
}

/// What DescribeTable said about the table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableInfo {
    pub table_name: String,
    pub table_arn: String,
    pub table_id: Option<String>,
    pub item_count: u64,
    pub table_size_bytes: u64,
    pub billing: Billing,
    /// The key attributes: the partition key, then the sort key if the table has one.
    #[serde(default)]
    pub key_attributes: Vec<String>,
    /// The table's DynamoDB stream, when one is enabled.
    #[serde(default)]
    pub stream: Option<StreamInfo>,
    /// Its key with types, billing and indexes (what a restore creates a table from), when
    /// DescribeTable reported every type.
    #[serde(default)]
    pub schema: Option<TableSchema>,
}

/// A table's DynamoDB stream, as DescribeTable reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamInfo {
    /// `LatestStreamArn`.
    pub arn: String,
    /// `StreamViewType` as AWS spells it (`NEW_AND_OLD_IMAGES`, …); `None` when not reported.
    pub view_type: Option<String>,
}

/// The validated parameters that identify an export (see `snapshot.export-request` in the WIT).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotRequest {
    pub s3_bucket: String,
    pub s3_prefix: Option<String>,
    pub s3_bucket_owner: Option<String>,
    pub s3_sse_algorithm: SseAlgorithm,
    pub s3_sse_kms_key_id: Option<String>,
    pub export_format: ExportFormat,
    pub client_token: String,
    pub start_time_ms: u64,
    pub region: String,
    /// Set for an incremental export.
    pub incremental: Option<IncrementalSpec>,
    /// Set when a plugin encoder writes the data files.
    pub custom_format: Option<CustomFormat>,
}

/// A plugin encoder's format: the summary's `outputFormat` and the data files' extension.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomFormat {
    pub output_format: String,
    pub file_extension: String,
}

/// Every key of one export ([`crate::layout::export_keys`] makes them).
pub use ddb_export_data_files::layout::ExportKeys;

/// The identity of one export, as the component fixed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub export_id: String,
    pub export_arn: String,
    pub table_arn: String,
    pub table_id: String,
    pub table_name: String,
    pub start_time_ms: u64,
    pub export_time_ms: u64,
    pub s3_bucket: String,
    pub s3_prefix: Option<String>,
    pub s3_bucket_owner: Option<String>,
    pub s3_sse_algorithm: SseAlgorithm,
    pub s3_sse_kms_key_id: Option<String>,
    pub export_format: ExportFormat,
    pub client_token: String,
    pub keys: ExportKeys,
    pub data_file_extension: String,
    /// Set for an incremental export (absent in the state of runs before incremental exports).
    #[serde(default)]
    pub incremental: Option<IncrementalSpec>,
    /// Set when a plugin encoder writes the data files.
    #[serde(default)]
    pub custom_format: Option<CustomFormat>,
}

impl Snapshot {
    /// The summary's `outputFormat`: `DYNAMODB_JSON`, `ION` or a plugin's.
    pub fn output_format(&self) -> &str {
        match &self.custom_format {
            Some(custom) => &custom.output_format,
            None => self.export_format.aws_name(),
        }
    }
}

/// One Scan segment to export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub id: u32,
    pub segment: u32,
    pub total_segments: u32,
}

/// Most Scan segments an export may have (DynamoDB takes up to 1,000,000). Each segment is a
/// unit of checkpointing and, in a fan-out, a worker's task: 10,000 segments of 128 MiB cover
/// over a TiB; more only add requests (and `dynalite`, a stand-in, maps segments onto 4,096
/// buckets, so more than that read items twice there).
pub const MAX_SEGMENTS: u32 = 10_000;

/// The segments of an export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardPlan {
    /// Saved as `{"totalSegments": N}` when shard `i` is segment `i` of `N` (every plan the
    /// default component makes), so that a plan of many segments stays a small object.
    #[serde(with = "compact_shards")]
    pub shards: Vec<Shard>,
    pub rationale: String,
}

/// [`ShardPlan::shards`] as saved: compact when regular, listed otherwise.
mod compact_shards {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::{MAX_SEGMENTS, Shard};

    #[derive(Serialize, Deserialize)]
    #[serde(untagged)]
    enum Saved {
        #[serde(rename_all = "camelCase")]
        Regular {
            total_segments: u32,
        },
        Listed(Vec<Shard>),
    }

    pub fn serialize<S: Serializer>(shards: &[Shard], serializer: S) -> Result<S::Ok, S::Error> {
        let total = shards.len() as u32;
        let regular = shards
            .iter()
            .enumerate()
            .all(|(i, shard)| *shard == Shard { id: i as u32, segment: i as u32, total_segments: total });
        match regular && !shards.is_empty() {
            true => Saved::Regular { total_segments: total }.serialize(serializer),
            false => shards.serialize(serializer),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Shard>, D::Error> {
        match Saved::deserialize(deserializer)? {
            Saved::Regular { total_segments } if total_segments > MAX_SEGMENTS => Err(serde::de::Error::custom(
                format!("a plan of {total_segments} segments; at most {MAX_SEGMENTS} are allowed"),
            )),
            Saved::Regular { total_segments: total } => {
                Ok((0..total).map(|i| Shard { id: i, segment: i, total_segments: total }).collect())
            }
            Saved::Listed(shards) => Ok(shards),
        }
    }
}

/// How a shard's encoder lays out its files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncoderOptions {
    pub shard_id: u32,
    pub target_file_bytes: u64,
    pub compression_level: u8,
    /// Sequence number of the encoder's first data file (non-zero when a shard resumes).
    pub first_sequence: u32,
}

/// A data file as its encoder described it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataFileFacts {
    pub key: String,
    pub item_count: u64,
    pub md5: String,
    pub size_bytes: u64,
}

/// One step of an encoder's output, applied in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EncoderEvent {
    FileStarted(String),
    Bytes(Vec<u8>),
    FileFinished(DataFileFacts),
}

/// A stored data file, as listed in `manifest-files.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    pub data_file_s3_key: String,
    pub item_count: u64,
    pub md5_checksum: String,
    pub etag: String,
    /// In a directory (which has no ETags), the file's size and modification time when it
    /// was stored: how `stored` tells it is unchanged without reading it again. Not in
    /// `manifest-files.json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stamp: Option<String>,
}

/// What the host knows when every shard is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportTotals {
    pub end_time_ms: u64,
    pub item_count: u64,
    pub billed_size_bytes: u64,
}

/// An object to store whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    pub key: String,
    pub body: Vec<u8>,
}

/// A data file as an export's `manifest-files.json` lists it (read back by `verify`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListedFile {
    pub key: String,
    pub item_count: u64,
    /// base64 MD5 of the object's bytes.
    pub md5: String,
    /// Without quotes.
    pub etag: String,
}

/// What an export's manifests say, and what is wrong with them (see `wit/verify.wit`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestsCheck {
    pub export_arn: String,
    pub export_type: String,
    /// `outputFormat` as written.
    pub output_format: String,
    /// The format's line reader; `None` for a plugin's format (contents not checked).
    pub format: Option<ExportFormat>,
    pub item_count: u64,
    pub manifest_files_key: String,
    pub files: Vec<ListedFile>,
    pub problems: Vec<String>,
}

/// What one data file held, as the component read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileReport {
    pub lines: u64,
    pub problems: Vec<String>,
    /// The key hash of each line, in order (the checker's `feed` results and its last ones).
    pub key_hashes: Vec<KeyHash>,
}

/// The type of a key attribute, as DynamoDB's `AttributeDefinitions` name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyType {
    S,
    N,
    B,
}

impl KeyType {
    /// `S`, `N` or `B`.
    pub fn aws_name(self) -> &'static str {
        match self {
            KeyType::S => "S",
            KeyType::N => "N",
            KeyType::B => "B",
        }
    }

    /// From `S`, `N` or `B`.
    pub fn from_aws_name(name: &str) -> Option<Self> {
        match name {
            "S" => Some(KeyType::S),
            "N" => Some(KeyType::N),
            "B" => Some(KeyType::B),
            _ => None,
        }
    }
}

/// One of a table's key attributes (see `key-attribute` in `wit/types.wit`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyAttribute {
    pub name: String,
    /// `None`: any of the three key types.
    pub key_type: Option<KeyType>,
}

impl KeyAttribute {
    /// A key attribute of any type (a key known by its names only).
    pub fn untyped(name: impl Into<String>) -> Self {
        Self { name: name.into(), key_type: None }
    }
}

/// What it takes to create a table like another (`restore --create-table`): its key, billing
/// and secondary indexes, as DescribeTable reports them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableSchema {
    /// The partition key, then the sort key if there is one; typed.
    pub key: Vec<KeyAttribute>,
    pub billing: SchemaBilling,
    #[serde(default)]
    pub indexes: Vec<IndexSchema>,
}

/// How a table is billed, with both capacities of a provisioned one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SchemaBilling {
    OnDemand,
    Provisioned { read_capacity_units: u64, write_capacity_units: u64 },
}

/// A secondary index of a [`TableSchema`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexSchema {
    pub name: String,
    /// A global secondary index (else a local one).
    pub global: bool,
    /// Its partition key, then its sort key; typed.
    pub key: Vec<KeyAttribute>,
    /// `ALL`, `KEYS_ONLY` or `INCLUDE`.
    pub projection: String,
    /// With `INCLUDE`: the attributes projected besides the keys.
    #[serde(default)]
    pub non_key_attributes: Vec<String>,
}

/// One write a restore decoded from a data file (see `wit/restore.wit`): the item or key,
/// packed as a `map` of `wit/page-format.md`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteRequest {
    Put(Vec<u8>),
    Delete(Vec<u8>),
}

/// One `BatchWriteItem` call's worth of writes, checked by the runtime: 1 to 25 requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteBatch {
    pub requests: Vec<WriteRequest>,
    /// The data file's line of the first request; the others follow, one a line.
    pub first_line: u64,
}

/// Why a data file could not be decoded: the line (0: the file as a whole) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", if *line == 0 { String::new() } else { format!("line {line}: ") })]
pub struct DecodeError {
    pub line: u64,
    pub message: String,
}

/// What an export did, counted as it went: the progress line's figures, and the
/// `DdbExportStatistics` of its final description.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProgressFigures {
    pub items: u64,
    /// Compressed bytes of data files written.
    pub bytes: u64,
    pub scan_pages: u64,
    pub consumed_read_capacity_units: f64,
    pub throttles: u64,
    pub segments_done: u64,
    pub segments: u64,
    pub seconds: f64,
    pub items_per_second: f64,
}

/// An item the host cannot hand to a component.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {}", self.item(), self.what())]
pub struct UnsupportedItem {
    pub path: String,
    pub reason: String,
    /// The item's place in its page, when it is one item's fault.
    pub index: Option<usize>,
    /// The item's key, in words (`pk "a", sk 5`), once the caller has named it.
    pub key: Option<String>,
}

impl UnsupportedItem {
    /// A page reader's refusal (`item N: …`, as `ddb-export-data-files` words them), with the
    /// item's place taken from it.
    pub fn of_page(message: &str) -> Self {
        let numbered = message
            .strip_prefix("item ")
            .and_then(|rest| rest.split_once(": "))
            .and_then(|(index, rest)| Some((index.parse::<usize>().ok()?, rest)));
        let (index, reason) = match numbered {
            Some((index, rest)) => (Some(index), rest),
            None => (None, message),
        };
        Self { path: String::new(), reason: reason.to_string(), index, key: None }
    }

    fn what(&self) -> String {
        match self.path.as_str() {
            "" => self.reason.clone(),
            path => format!("attribute {path}: {}", self.reason),
        }
    }

    fn item(&self) -> String {
        match (&self.key, self.index) {
            (Some(key), _) => format!("the item {key}"),
            (None, Some(index)) => format!("item {index} of its page"),
            (None, None) => "a page".into(),
        }
    }
}

/// An item's identity in an export, as `verify`'s data file checker computes it.
pub type KeyHash = [u8; 16];

#[cfg(test)]
mod tests {
    use super::*;

    fn regular(total: u32) -> ShardPlan {
        let shards = (0..total).map(|i| Shard { id: i, segment: i, total_segments: total }).collect();
        ShardPlan { shards, rationale: "r".into() }
    }

    #[test]
    fn a_regular_plan_is_saved_in_a_few_bytes_and_read_back_whole() {
        let plan = regular(MAX_SEGMENTS);
        let saved = serde_json::to_string(&plan).unwrap();
        assert_eq!(saved, format!(r#"{{"shards":{{"totalSegments":{MAX_SEGMENTS}}},"rationale":"r"}}"#));
        assert_eq!(serde_json::from_str::<ShardPlan>(&saved).unwrap(), plan);

        // Any other plan is listed, shard by shard.
        let mut shuffled = regular(3);
        shuffled.shards.swap(0, 2);
        let saved = serde_json::to_string(&shuffled).unwrap();
        assert!(saved.contains(r#""shards":[{"id":2"#), "{saved}");
        assert_eq!(serde_json::from_str::<ShardPlan>(&saved).unwrap(), shuffled);
    }

    #[test]
    fn a_saved_plan_of_too_many_segments_is_refused_before_it_is_built() {
        let saved = r#"{"shards":{"totalSegments":4000000000},"rationale":"r"}"#;
        let error = serde_json::from_str::<ShardPlan>(saved).unwrap_err().to_string();
        assert!(error.contains("4000000000 segments"), "{error}");
    }
}
