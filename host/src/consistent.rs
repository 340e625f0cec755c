//! The consistent (point-in-time) mode, `--consistent`: the export is the table exactly as it
//! was at a cut time T, on any table with a stream, without point-in-time recovery.
//!
//! How: the segments are scanned and written as usual, except that beside each data file goes
//! the list of its lines' key hashes (`_ddb-export/keys/<file>.keys`). Once every segment is
//! done, T is the next whole second; the stream is read up to T, and each key it recorded a
//! change for gets its state at T (its last image before T, or none if deleted). Data files
//! holding such keys are rewritten without those lines (the component's `rewrite` step, under
//! a new name, so the original stays readable until the manifests no longer list it), and the
//! states at T go to data files of their own. Items no write touched since the scan began are
//! as the scan read them, which is their state at T: the stream has every write since.
//!
//! Progress is saved in `_ddb-export/consistent.json` (T, and each file rewritten), so a
//! resumed run finishes the same cut.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::aws::AwsClients;
use crate::checkpoint;
use crate::destination::ObjectWriter;
use crate::dynamodb::Item;
use crate::error::ExportError;
use crate::model::{ManifestEntry, Shard};
use crate::shard::{self, ShardContext};
use crate::stream::{ChangeEvent, StreamReader};

/// The hash of an item's primary key: 16 bytes of SHA-256, so collisions are out of reach.
pub type KeyHash = [u8; 16];

/// Hashes items' primary keys the same way whether they come from a Scan or from the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyHasher {
    /// The table's key attributes: the partition key, then the sort key if any.
    attributes: Vec<String>,
}

impl KeyHasher {
    pub fn new(attributes: Vec<String>) -> Self {
        Self { attributes }
    }

    /// The hash of `item`'s key; an error if a key attribute is missing or not S, N or B.
    pub fn hash(&self, item: &Item) -> Result<KeyHash, ExportError> {
        let mut hasher = Sha256::new();
        for name in &self.attributes {
            let (tag, value) = match item.get(name) {
                Some(AttributeValue::S(s)) => ("S", s.clone()),
                Some(AttributeValue::N(n)) => ("N", n.clone()),
                Some(AttributeValue::B(b)) => ("B", STANDARD.encode(b.as_ref())),
                other => {
                    return Err(ExportError::Internal(format!("an item's key attribute {name:?} is {other:?}")));
                }
            };
            for part in [name.as_str(), tag, value.as_str()] {
                hasher.update((part.len() as u64).to_le_bytes());
                hasher.update(part.as_bytes());
            }
        }
        let digest = hasher.finalize();
        let mut hash = [0; 16];
        hash.copy_from_slice(&digest[..16]);
        Ok(hash)
    }
}

/// The folder of the data files' key hashes.
pub fn key_hashes_prefix(export_root: &str) -> String {
    format!("{export_root}/_ddb-export/keys/")
}

/// Where a data file's key hashes are kept.
fn key_hashes_key(export_root: &str, data_file_key: &str) -> String {
    let name = data_file_key.rsplit('/').next().unwrap_or(data_file_key);
    format!("{}{name}.keys", key_hashes_prefix(export_root))
}

/// Stores a data file's key hashes, in line order.
pub async fn save_key_hashes(ctx: &ShardContext, data_file_key: &str, hashes: &[KeyHash]) -> Result<(), ExportError> {
    let key = key_hashes_key(&ctx.snapshot.keys.root, data_file_key);
    ctx.destination.put(&key, hashes.concat()).await.map(drop)
}

/// A change the stream recorded, as far as the cut needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// The key's hash.
    pub key: KeyHash,
    /// The item after the change; `None` when it was deleted.
    pub new_image: Option<Item>,
}

/// `_ddb-export/consistent.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CutState {
    /// T, in milliseconds since the epoch (a whole second).
    pub cut_ms: u64,
    /// Each data file rewritten so far: its replacement, or `None` when no line was left.
    pub rewritten: BTreeMap<String, Option<ManifestEntry>>,
    /// The files holding the states at T, once written.
    pub images: Option<Vec<ManifestEntry>>,
}

pub fn cut_state_key(export_root: &str) -> String {
    format!("{export_root}/_ddb-export/consistent.json")
}

/// What the consistent mode needs beyond a normal export.
#[derive(Clone, Debug)]
pub struct ConsistentSource {
    pub hasher: KeyHasher,
    pub stream: StreamReader,
}

/// Checks that the table's stream can give the state at a cut (it must carry new images), and
/// sets up what reading it needs.
pub async fn prepare(aws: &AwsClients, table: &crate::dynamodb::Table) -> Result<ConsistentSource, ExportError> {
    let stream = crate::stream::table_stream(&aws.dynamodb, table.name(), crate::stream::StreamUse::Consistent).await?;
    let hasher = KeyHasher::new(table.key_attributes().await?);
    Ok(ConsistentSource {
        hasher,
        stream: StreamReader::new(aws.streams.clone(), stream.arn, table.name().to_string()),
    })
}

/// How far before the scan's start stream records are still read: a write a little before it
/// may carry a time after it (the stream's times are approximate), and applying one that the
/// scan already saw changes nothing.
const BEFORE_START_MS: u64 = 2_000;

/// Puts the export at its cut: picks T (the next whole second once every segment is scanned,
/// or the one an interrupted run picked), reads the stream's changes up to T, and applies them
/// to `files`. Returns the export's files and T.
pub async fn cut(
    ctx: &ShardContext,
    source: &ConsistentSource,
    images_shard: Shard,
    files: Vec<ManifestEntry>,
) -> Result<(Vec<ManifestEntry>, u64), ExportError> {
    let state_key = cut_state_key(&ctx.snapshot.keys.root);
    let mut state: CutState = checkpoint::load(&ctx.destination, &state_key).await?.unwrap_or_default();
    if state.cut_ms == 0 {
        state.cut_ms = (now_ms() / 1000 + 1) * 1000;
        checkpoint::save(&ctx.destination, &state_key, &state).await?;
    }
    let facts = source.stream.describe().await?;
    if let Some(created) = facts.created_ms
        && created > ctx.snapshot.start_time_ms
    {
        return Err(ExportError::InvalidArgument {
            what: "--consistent",
            message: format!(
                "table {}'s stream was created after the export began: it cannot say what changed during the scan",
                ctx.snapshot.table_name
            ),
        });
    }
    let from_ms = ctx.snapshot.start_time_ms.saturating_sub(BEFORE_START_MS);
    tracing::info!("reading the stream up to the cut at {}", crate::description::cli_timestamp(state.cut_ms));
    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    let cut_ms = state.cut_ms;
    let reading = async move {
        // The sender goes when reading ends, so the collector sees the end.
        source.stream.read(facts, from_ms, cut_ms, &tx, &ctx.cancelled).await
    };
    let collecting = async {
        let mut changes = Vec::new();
        while let Some(page) = rx.recv().await {
            for record in page {
                let key = source.hasher.hash(&record.keys)?;
                let new_image = match record.event {
                    ChangeEvent::Remove => None,
                    ChangeEvent::Insert | ChangeEvent::Modify => Some(record.new_image.ok_or_else(|| {
                        ExportError::Internal("a stream record of a write carries no new image".into())
                    })?),
                };
                changes.push(Change { key, new_image });
            }
        }
        Ok::<_, ExportError>(changes)
    };
    let (read, changes) = tokio::join!(reading, collecting);
    let stats = read?;
    let changes = changes?;
    tracing::info!(
        "the stream holds {} changes before the cut ({} records read from {} shards)",
        changes.len(),
        stats.records_read,
        stats.shards
    );
    let files = apply(ctx, images_shard, files, changes, &mut state).await?;
    Ok((files, state.cut_ms))
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// Applies the stream's `changes` (in stream order, all before the cut) to the scanned data
/// `files`: returns the files of the export at the cut.
pub async fn apply(
    ctx: &ShardContext,
    images_shard: Shard,
    files: Vec<ManifestEntry>,
    changes: Vec<Change>,
    state: &mut CutState,
) -> Result<Vec<ManifestEntry>, ExportError> {
    // The state at T of every key the stream touched: its last change wins.
    let mut at_cut: HashMap<KeyHash, Option<Item>> = HashMap::new();
    for change in changes {
        at_cut.insert(change.key, change.new_image);
    }
    let root = ctx.snapshot.keys.root.clone();
    let state_key = cut_state_key(&root);
    let mut result = Vec::with_capacity(files.len() + 1);
    for file in files {
        if let Some(done) = state.rewritten.get(&file.data_file_s3_key) {
            result.extend(done.clone());
            continue;
        }
        let hashes_key = key_hashes_key(&root, &file.data_file_s3_key);
        let corrupt =
            |message: String| ExportError::CorruptState { location: ctx.destination.locate(&hashes_key), message };
        let hashes = ctx.destination.get(&hashes_key).await?.ok_or_else(|| corrupt("missing".into()))?;
        if hashes.len() as u64 != file.item_count * 16 {
            return Err(corrupt(format!("{} bytes for {} items", hashes.len(), file.item_count)));
        }
        let drop: Vec<u64> = hashes
            .chunks(16)
            .enumerate()
            .filter(|(_, hash)| KeyHash::try_from(*hash).is_ok_and(|hash| at_cut.contains_key(&hash)))
            .map(|(line, _)| line as u64)
            .collect();
        if drop.is_empty() {
            result.push(file);
            continue;
        }
        let replacement = rewrite(ctx, &file, &drop).await?;
        state.rewritten.insert(file.data_file_s3_key.clone(), replacement.clone());
        checkpoint::save(&ctx.destination, &state_key, state).await?;
        result.extend(replacement);
    }
    let images = match &state.images {
        Some(images) => images.clone(),
        None => {
            let mut present: Vec<(KeyHash, Item)> =
                at_cut.into_iter().filter_map(|(key, image)| image.map(|item| (key, item))).collect();
            present.sort_by_key(|(key, _)| *key);
            let items = present.into_iter().map(|(_, item)| item).collect();
            let images = shard::encode_items(ctx, images_shard, items).await?;
            state.images = Some(images.clone());
            checkpoint::save(&ctx.destination, &state_key, state).await?;
            images
        }
    };
    result.extend(images);
    Ok(result)
}

/// `file` without the lines `drop` names, stored under a name derived from its own (the
/// original stays until the manifests are written; then it is unlisted and removed).
async fn rewrite(ctx: &ShardContext, file: &ManifestEntry, drop: &[u64]) -> Result<Option<ManifestEntry>, ExportError> {
    let original = ctx.destination.get(&file.data_file_s3_key).await?.ok_or_else(|| ExportError::Verification {
        location: ctx.destination.locate(&file.data_file_s3_key),
        message: "a data file the export recorded is missing".into(),
    })?;
    let key = rewritten_key(&file.data_file_s3_key);
    crate::component::check_data_file_key(&ctx.snapshot, &key).map_err(ExportError::Internal)?;
    let mut filter = ctx.runtime.session()?.line_filter(drop, ctx.compression_level)?;
    let mut writer = ObjectWriter::new(ctx.destination.clone(), key);
    for chunk in original.chunks(1 << 20) {
        let bytes = filter.feed(chunk)?;
        writer.write(&bytes).await?;
    }
    let (tail, kept) = filter.finish()?;
    if kept + drop.len() as u64 != file.item_count {
        writer.abort().await;
        return Err(ExportError::Internal(format!(
            "{}: kept {kept} and dropped {} lines of {}",
            file.data_file_s3_key,
            drop.len(),
            file.item_count
        )));
    }
    writer.write(&tail).await?;
    if kept == 0 {
        writer.abort().await;
        return Ok(None);
    }
    let written = writer.finish().await?;
    Ok(Some(ManifestEntry {
        data_file_s3_key: written.key,
        item_count: kept,
        md5_checksum: written.md5_base64,
        etag: written.etag,
    }))
}

/// `<data>/<name>.<ext>` -> `<data>/<another 26-character base32 name>.<ext>`, derived from it.
fn rewritten_key(key: &str) -> String {
    let (folder, file) = key.rsplit_once('/').map_or(("", key), |(folder, file)| (folder, file));
    let (name, extension) = file.split_once('.').unwrap_or((file, ""));
    let digest = Sha256::digest(format!("consistent:{name}").as_bytes());
    let new_name = data_encoding::BASE32_NOPAD.encode(&digest[..16]).to_ascii_lowercase();
    format!("{folder}/{new_name}.{extension}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_hashes_follow_the_key_not_the_rest_of_the_item() {
        let hasher = KeyHasher::new(vec!["pk".into(), "sk".into()]);
        let item = |pk: &str, sk: &str, extra: &str| {
            Item::from([
                ("pk".to_string(), AttributeValue::S(pk.into())),
                ("sk".to_string(), AttributeValue::N(sk.into())),
                ("x".to_string(), AttributeValue::S(extra.into())),
            ])
        };
        assert_eq!(hasher.hash(&item("a", "1", "one")).unwrap(), hasher.hash(&item("a", "1", "two")).unwrap());
        assert_ne!(hasher.hash(&item("a", "1", "")).unwrap(), hasher.hash(&item("a", "2", "")).unwrap());
        // Lengths are hashed too: ("ab","1") and ("a","b1") must differ.
        assert_ne!(hasher.hash(&item("ab", "1", "")).unwrap(), hasher.hash(&item("a", "b1", "")).unwrap());
        assert!(hasher.hash(&Item::from([("pk".to_string(), AttributeValue::S("a".into()))])).is_err());
    }

    #[test]
    fn rewritten_names_are_valid_and_stable() {
        let key = rewritten_key("p/AWSDynamoDB/01700000000000-0123abcd/data/abcdefghijklmnopqrstuvwxyz.json.gz");
        let name = key.rsplit('/').next().unwrap();
        assert_eq!(name.len(), 26 + ".json.gz".len());
        assert!(name[..26].bytes().all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b)));
        assert!(key.starts_with("p/AWSDynamoDB/01700000000000-0123abcd/data/"));
        assert_eq!(key, rewritten_key("p/AWSDynamoDB/01700000000000-0123abcd/data/abcdefghijklmnopqrstuvwxyz.json.gz"));
    }
}
