//! The consistent (point-in-time) mode, `--consistent`: the export is the table exactly as it
//! was at a cut time T, on any table with a stream, without point-in-time recovery.
//!
//! How: the segments are scanned and written as usual, except that beside each data file goes
//! the list of its lines' key hashes (`_ddb-export/keys/<file>.keys`). Once every segment is
//! done, T is a whole second just after; the stream is read from a minute before the scan began
//! up to T, and each key it recorded a change for gets its state at T (its last image before T,
//! or none if deleted). Those states go to data files of their own, and the set of changed keys
//! to `_ddb-export/cut-keys`; then the data files holding such keys are rewritten without those
//! lines (the component's `rewrite` step, under a new name, so the original stays readable until
//! the manifests no longer list it). Items no write touched since the scan began are as the scan
//! read them, which is their state at T: the stream has every write since.
//!
//! Progress is saved in `_ddb-export/consistent.json` (T, the states' files, each file
//! rewritten), so a resumed run finishes the same cut without reading the stream again once the
//! states are written.

use std::collections::{HashMap, HashSet};

use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

use crate::error::ExportError;
use crate::io::aws::AwsClients;
use crate::io::destination::ObjectWriter;
use crate::io::items::Item;
use crate::io::stream::{ChangeEvent, RETENTION, RETENTION_MARGIN, StreamReader, StreamUse, table_stream};
use crate::model::time::now_ms;
use crate::model::{ManifestEntry, Shard};
use crate::pipeline::offload;
use crate::pipeline::shard::{self, ShardContext};
use crate::state::checkpoint::{self, CutState};
use crate::state::keys;

/// What DynamoDB (or its stream) sent that the cut cannot use.
fn unreadable(service: &'static str, message: String) -> ExportError {
    ExportError::UnreadableResponse { service, message }
}

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
        self.digest(|name| match item.get(name) {
            Some(AttributeValue::S(s)) => Ok(("S", s.clone())),
            Some(AttributeValue::N(n)) => Ok(("N", n.clone())),
            Some(AttributeValue::B(b)) => Ok(("B", STANDARD.encode(b.as_ref()))),
            Some(_) => Err(format!("an item's key attribute {name:?} is not a string, number or binary")),
            None => Err(format!("an item has no key attribute {name:?}")),
        })
    }

    /// The key hashes of a Scan page's items (DynamoDB JSON, as the service sent them), in
    /// order: the same hashes [`Self::hash`] gives for the same items.
    pub fn hash_page(&self, items: &[u8]) -> Result<Vec<KeyHash>, ExportError> {
        use ddb_export_data_files::page::{Value, attribute};
        let arena = ddb_export_data_files::json_page::Arena::new();
        let page = ddb_export_data_files::json_page::read(items, &arena)
            .map_err(|e| unreadable("DynamoDB Scan", format!("a page the consistent mode cannot read: {e}")))?;
        page.iter()
            .map(|item| {
                self.digest(|name| match attribute(item, name) {
                    Some(Value::S(s)) => Ok(("S", s.to_string())),
                    Some(Value::N(n)) => Ok(("N", n.to_string())),
                    Some(Value::B(b)) => Ok(("B", STANDARD.encode(b))),
                    Some(_) => Err(format!("an item's key attribute {name:?} is not a string, number or binary")),
                    None => Err(format!("an item has no key attribute {name:?}")),
                })
            })
            .collect()
    }

    /// The hash of a key whose attributes `part` gives, by name: (type, value in text).
    fn digest(&self, part: impl Fn(&str) -> Result<(&'static str, String), String>) -> Result<KeyHash, ExportError> {
        let mut hasher = Sha256::new();
        for name in &self.attributes {
            let (tag, value) = part(name).map_err(|message| unreadable("DynamoDB", message))?;
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

/// Stores a data file's key hashes, in line order.
pub async fn save_key_hashes(ctx: &ShardContext, data_file_key: &str, hashes: &[KeyHash]) -> Result<(), ExportError> {
    let key = keys::key_hashes_key(&ctx.snapshot.keys.root, data_file_key);
    ctx.destination.put(&key, hashes.concat()).await.map(drop)
}

/// The objects of the cut's own, besides the key hashes: its state and the changed keys.
pub fn cut_objects(export_root: &str) -> [String; 2] {
    [keys::cut_state_key(export_root), keys::changed_keys_key(export_root)]
}

/// What the consistent mode needs beyond a normal export.
#[derive(Clone, Debug)]
pub struct ConsistentSource {
    pub hasher: KeyHasher,
    /// The stream's ARN when the export began: at the cut it must still be the table's.
    pub stream_arn: String,
    pub stream: StreamReader,
}

/// Checks that the table's stream can give the state at a cut (it must carry new images), and
/// sets up what reading it needs.
pub async fn prepare(
    aws: &AwsClients,
    table: &crate::io::dynamodb::Table,
    info: &crate::model::TableInfo,
) -> Result<ConsistentSource, ExportError> {
    let stream = table_stream(info, StreamUse::Consistent)?;
    let hasher = KeyHasher::new(info.key_attributes.clone());
    Ok(ConsistentSource {
        hasher,
        stream_arn: stream.arn.clone(),
        stream: StreamReader::new(aws.streams.clone(), stream.arn, table.name().to_string()),
    })
}

/// How far before the scan's start the stream is read. Stream times are the server's, rounded
/// down to the second, and this host's clock may differ a little: a write the scan might have
/// missed must not fall before the lead-in. Applying a change the scan already saw is harmless.
const LEAD_IN_MS: u64 = 60_000;
/// T is at least this far after the scan's end by this host's clock: the scan never read a
/// write whose stream time is T or later, as long as this clock is within this of the server's.
const CUT_MARGIN_MS: u64 = 2_000;

/// Puts the export at its cut. T is the first whole second [`CUT_MARGIN_MS`] after the last
/// segment is scanned (or the one an interrupted run chose). The stream's changes before T
/// give the state at T of every key they touched; those states are written first, with the set
/// of keys, so that a resumed run need not read the stream again; then the data files holding
/// those keys are rewritten without them. Returns the export's files and T.
pub async fn cut(
    ctx: &ShardContext,
    source: &ConsistentSource,
    images_shard: Shard,
    files: Vec<ManifestEntry>,
) -> Result<(Vec<ManifestEntry>, u64), ExportError> {
    let root = ctx.snapshot.keys.root.clone();
    let state_key = keys::cut_state_key(&root);
    let mut state: CutState = checkpoint::load(&ctx.destination, &state_key).await?.unwrap_or_default();
    if state.images.is_none() {
        if state.cut_ms == 0 {
            state.cut_ms = (now_ms() + CUT_MARGIN_MS) / 1000 * 1000 + 1000;
            checkpoint::save(&ctx.destination, &state_key, &state).await?;
        }
        let at_cut = read_changes(ctx, source, state.cut_ms).await?;
        let mut changed: Vec<KeyHash> = at_cut.keys().copied().collect();
        changed.sort_unstable();
        let mut present: Vec<(KeyHash, Item)> =
            at_cut.into_iter().filter_map(|(key, image)| image.map(|item| (key, item))).collect();
        present.sort_by_key(|(key, _)| *key);
        let items = present.into_iter().map(|(_, item)| item).collect();
        let images = shard::encode_items(ctx, images_shard, items).await?;
        ctx.destination.put(&keys::changed_keys_key(&root), changed.concat()).await?;
        state.images = Some(images);
        checkpoint::save(&ctx.destination, &state_key, &state).await?;
    }
    let changed_key = keys::changed_keys_key(&root);
    let corrupt = |message: &str| ExportError::CorruptState {
        location: ctx.destination.locate(&changed_key),
        message: message.to_string(),
    };
    let changed = ctx.destination.get(&changed_key).await?.ok_or_else(|| corrupt("missing"))?;
    if changed.len() % 16 != 0 {
        return Err(corrupt("not a list of 16-byte key hashes"));
    }
    let changed: HashSet<KeyHash> = changed.chunks(16).filter_map(|hash| KeyHash::try_from(hash).ok()).collect();
    let mut result = rewrite_files(ctx, files, &changed, &mut state).await?;
    result.extend(state.images.clone().unwrap_or_default());
    Ok((result, state.cut_ms))
}

/// The state at `cut_ms` of every key the stream changed since just before the scan began:
/// its last change before the cut wins (`None`: deleted).
async fn read_changes(
    ctx: &ShardContext,
    source: &ConsistentSource,
    cut_ms: u64,
) -> Result<HashMap<KeyHash, Option<Item>>, ExportError> {
    let unusable = |message: String| ExportError::StreamUnavailable {
        table: ctx.snapshot.table_name.clone(),
        purpose: "a consistent export",
        message,
    };
    let facts = source.stream.describe().await?;
    let from_ms = ctx.snapshot.start_time_ms.saturating_sub(LEAD_IN_MS);
    // Writes before the stream existed came before the scan, which saw them.
    if facts.created_ms.is_some_and(|created| created + CUT_MARGIN_MS > ctx.snapshot.start_time_ms) {
        return Err(unusable(format!(
            "its stream {} was created as the export began, so it may lack changes made during the scan; \
             run the export again",
            source.stream_arn
        )));
    }
    let retained_from = now_ms().saturating_sub((RETENTION - RETENTION_MARGIN).as_millis() as u64);
    if from_ms < retained_from {
        return Err(unusable(format!(
            "the export began at {}, too long ago: its stream keeps 24 hours of changes, and those of the \
             scan's start are (or are about to be) gone; start a new export",
            crate::model::time::cli_timestamp(ctx.snapshot.start_time_ms)
        )));
    }
    tracing::info!("reading the stream up to the cut at {}", crate::model::time::cli_timestamp(cut_ms));
    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    let reading = async move {
        // The sender goes when reading ends, so the collector sees the end.
        source.stream.read(facts, from_ms, cut_ms, &tx, &ctx.cancelled).await
    };
    let collecting = async {
        let mut at_cut = HashMap::new();
        while let Some(page) = rx.recv().await {
            for record in page {
                let key = source.hasher.hash(&record.keys)?;
                let image = match record.event {
                    ChangeEvent::Remove => None,
                    ChangeEvent::Insert | ChangeEvent::Modify => Some(record.new_image.ok_or_else(|| {
                        unreadable("DynamoDB Streams", "a record of a write carries no new image".into())
                    })?),
                };
                at_cut.insert(key, image);
            }
        }
        Ok::<_, ExportError>(at_cut)
    };
    let (read, at_cut) = tokio::join!(reading, collecting);
    // A collector that failed closed the channel: its error is the cause.
    let at_cut = at_cut?;
    let stats = read?;
    // The stream read must be the table's stream still: one disabled or replaced meanwhile
    // lacks the changes made since.
    // A second DescribeTable, on purpose: the stream is checked for a change during the run.
    let now = table_stream(&ctx.table.describe().await?, StreamUse::Consistent)?;
    if now.arn != source.stream_arn {
        return Err(unusable(format!(
            "its stream changed during the export ({} then, {} now): the changes in between are in neither",
            source.stream_arn, now.arn
        )));
    }
    tracing::info!(
        "the stream changed {} items before the cut ({} records read from {} shards)",
        at_cut.len(),
        stats.records_read,
        stats.shards
    );
    Ok(at_cut)
}

/// The scanned data `files`, each holding a key in `changed` rewritten without it.
async fn rewrite_files(
    ctx: &ShardContext,
    files: Vec<ManifestEntry>,
    changed: &HashSet<KeyHash>,
    state: &mut CutState,
) -> Result<Vec<ManifestEntry>, ExportError> {
    if changed.is_empty() {
        return Ok(files);
    }
    let root = ctx.snapshot.keys.root.clone();
    let state_key = keys::cut_state_key(&root);
    let mut result = Vec::with_capacity(files.len());
    for file in files {
        if let Some(done) = state.rewritten.get(&file.data_file_s3_key) {
            result.extend(done.clone());
            continue;
        }
        let hashes_key = keys::key_hashes_key(&root, &file.data_file_s3_key);
        let corrupt =
            |message: String| ExportError::CorruptState { location: ctx.destination.locate(&hashes_key), message };
        let hashes = ctx.destination.get(&hashes_key).await?.ok_or_else(|| corrupt("missing".into()))?;
        if hashes.len() as u64 != file.item_count * 16 {
            return Err(corrupt(format!("{} bytes for {} items", hashes.len(), file.item_count)));
        }
        let drop: Vec<u64> = hashes
            .chunks(16)
            .enumerate()
            .filter(|(_, hash)| KeyHash::try_from(*hash).is_ok_and(|hash| changed.contains(&hash)))
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
    Ok(result)
}

/// `file` without the lines `drop` names, stored under a name derived from its own (the
/// original stays until the manifests are written; then it is unlisted and removed).
///
/// The file streams through the component's line filter on a blocking thread, as it is read.
async fn rewrite(ctx: &ShardContext, file: &ManifestEntry, drop: &[u64]) -> Result<Option<ManifestEntry>, ExportError> {
    let key = crate::model::layout::rewritten_data_file_key(&file.data_file_s3_key);
    crate::runtime::check_data_file_key(&ctx.snapshot, &key).map_err(ExportError::Internal)?;
    let (runtime, lines, level) = (ctx.runtime.clone(), drop.to_vec(), ctx.compression_level);
    let filter = offload::blocking(move || Ok(runtime.session()?.line_filter(&lines, level)?)).await?;
    let mut writer = ObjectWriter::new(ctx.destination.clone(), key);
    let filtered = offload::stream_file(
        &ctx.destination,
        &file.data_file_s3_key,
        filter,
        |filter, chunk| Ok(filter.feed(chunk)?),
        async |bytes: Vec<u8>| writer.write(&bytes).await,
    )
    .await;
    let filter = match filtered {
        Ok(Some(filter)) => filter,
        Ok(None) => {
            writer.abort().await;
            return Err(ExportError::Verification {
                location: ctx.destination.locate(&file.data_file_s3_key),
                message: "a data file the export recorded is missing".into(),
            });
        }
        Err(error) => {
            writer.abort().await;
            return Err(error);
        }
    };
    let (tail, kept) = match offload::blocking(move || Ok(filter.finish()?)).await {
        Ok(finished) => finished,
        Err(error) => {
            writer.abort().await;
            return Err(error);
        }
    };
    if kept + drop.len() as u64 != file.item_count {
        writer.abort().await;
        return Err(ExportError::BadOutput {
            component: ctx.runtime.name().to_string(),
            message: format!(
                "{}: the line filter kept {kept} and dropped {} lines of {}",
                file.data_file_s3_key,
                drop.len(),
                file.item_count
            ),
        });
    }
    writer.write(&tail).await?;
    if kept == 0 {
        writer.abort().await;
        return Ok(None);
    }
    let written = writer.finish().await?;
    Ok(Some(written.entry(kept)))
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
        let key = crate::model::layout::rewritten_data_file_key(
            "p/AWSDynamoDB/01700000000000-0123abcd/data/abcdefghijklmnopqrstuvwxyz.json.gz",
        );
        let name = key.rsplit('/').next().unwrap();
        assert_eq!(name.len(), 26 + ".json.gz".len());
        assert!(name[..26].bytes().all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b)));
        assert!(key.starts_with("p/AWSDynamoDB/01700000000000-0123abcd/data/"));
        // The name the consistent mode has always given it: a resumed cut must find its files.
        assert_eq!(key, "p/AWSDynamoDB/01700000000000-0123abcd/data/egj3ih6allgacyipdxdxhjq7by.json.gz");
    }
}
