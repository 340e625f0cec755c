//! One shard of an export, as a pipeline of three overlapping stages:
//!
//! ```text
//! scan (tokio task) --pages--> encode (blocking thread, component) --events--> store (this task)
//! ```
//!
//! The queues between the stages are short, so memory stays flat whatever the table's size.
//! Any stage that fails closes its queues, and the others stop at their next step; a data file
//! that was being written is abandoned, never completed.
//!
//! Each time the store stage has stored a data file and no other is open, it saves a
//! [`ShardCheckpoint`]: the files so far and the Scan key after the page that ended the last of
//! them. A resumed shard scans on from that key, and its encoder numbers files on from there,
//! so a file the interrupted run was writing is rewritten under the same name.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;

use crate::error::ExportError;
use crate::io::destination::Destination;
use crate::io::dynamodb::Table;
use crate::io::items::{self, Item, RawItems, key_in_words};
use crate::model::{EncoderEvent, EncoderOptions, ManifestEntry, Shard, Snapshot};
use crate::pipeline::capacity::CapacityBudget;
use crate::pipeline::cut::{self, KeyHash, KeyHasher};
use crate::pipeline::progress::Progress;
use crate::pipeline::retry::{Backoff, MAX_TRANSIENT_RETRIES};
use crate::pipeline::sink::{self, Sink};
use crate::runtime::{ComponentError, ComponentRuntime, Encoder};
use crate::state::checkpoint::{self, OpenUpload, ShardCheckpoint};
use crate::state::keys;
use ddb_export_data_files::json_page;

/// Scan pages allowed to wait for the encoder (a page is at most 1 MB of items).
const PAGE_QUEUE: usize = 2;
/// Encoder outputs allowed to wait for storage.
const EVENT_QUEUE: usize = 4;

/// What every shard of one export shares.
#[derive(Clone)]
pub struct ShardContext {
    pub table: Table,
    pub destination: Destination,
    pub runtime: ComponentRuntime,
    pub snapshot: Arc<Snapshot>,
    pub target_file_bytes: u64,
    pub compression_level: u8,
    /// Set when any shard fails (or the user stops the export), so the others stop early.
    pub cancelled: Arc<AtomicBool>,
    /// The shared read budget; `None` reads as fast as the table allows.
    pub budget: Option<Arc<CapacityBudget>>,
    /// Shards running at once (pages are sized to a lane's share of the budget).
    pub lanes: u32,
    /// In the consistent mode, how items' keys are hashed: each data file then gets a
    /// sidecar of its lines' key hashes (`crate::pipeline::cut`).
    pub key_hasher: Option<Arc<KeyHasher>>,
    pub progress: Arc<Progress>,
    /// This run's lease (on the export, or a fan-out worker's on its shard), checked before
    /// each checkpoint (`crate::state::lease`).
    pub lease: Option<crate::state::lease::Lease>,
    /// The table's key attributes, to name an item in a message.
    pub key_attributes: Arc<[String]>,
}

/// Saves a shard's checkpoint, after checking that this run still holds its lease: a run that
/// lost it must not record what another is rewriting.
async fn save_checkpoint(ctx: &ShardContext, key: &str, progress: &ShardCheckpoint) -> Result<(), ExportError> {
    if let Some(lease) = &ctx.lease {
        lease.check().await?;
    }
    checkpoint::save(&ctx.destination, key, progress).await
}

/// How often a waiting scan checks whether the export is stopping.
const STOP_POLL: Duration = Duration::from_millis(100);

/// What a finished shard wrote.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ShardOutcome {
    pub files: Vec<ManifestEntry>,
    pub items: u64,
}

enum ScanMessage {
    /// A page of items, as the service sent them, and the Scan key after it (`None` after the
    /// segment's last page).
    Page(RawItems, Option<Item>),
    /// The segment is done; without it, a closed queue means the scan failed.
    End,
}

/// Where in the segment a batch of encoder output leaves the shard.
enum Position {
    /// After a page of `items` items; the Scan key after it (`None` after the segment's last
    /// page); in the consistent mode, the page's key hashes, in order.
    AfterPage { next_key: Option<Item>, items: u64, keys: Vec<KeyHash> },
    /// After `finish`: every item is encoded.
    Finished,
}

/// Exports one shard, from where `resume` says it got to; returns every data file it stored
/// (those of earlier runs included).
pub async fn run(ctx: ShardContext, shard: Shard, resume: ShardCheckpoint) -> Result<ShardOutcome, ExportError> {
    ctx.progress.resumed(resume.items);
    if resume.done {
        ctx.progress.segment_done();
        return Ok(ShardOutcome { files: resume.files, items: resume.items });
    }
    let start_key = match &resume.resume_key {
        Some(json) => Some(items::key_from_json(json).map_err(|message| ExportError::CorruptState {
            location: ctx.destination.locate(&keys::shard_key(&ctx.snapshot.keys.root, shard.id)),
            message,
        })?),
        None => None,
    };
    let (page_tx, page_rx) = mpsc::channel(PAGE_QUEUE);
    let scanner = tokio::spawn(scan(ctx.clone(), shard, start_key, page_tx));
    let mut progress = pipeline(&ctx, shard, resume, scanner, page_rx, true).await?;
    progress.done = true;
    progress.resume_key = None;
    progress.open_upload = None;
    save_checkpoint(&ctx, &keys::shard_key(&ctx.snapshot.keys.root, shard.id), &progress).await?;
    ctx.progress.segment_done();
    Ok(ShardOutcome { files: progress.files, items: progress.items })
}

/// Items per page when encoding items held in memory.
const MEMORY_PAGE_ITEMS: usize = 500;

/// Encodes items already in memory as the data files of one more shard (the consistent mode's
/// final images), through the same encode and store stages, without checkpoints.
pub async fn encode_items(
    ctx: &ShardContext,
    shard: Shard,
    items: Vec<Item>,
) -> Result<Vec<ManifestEntry>, ExportError> {
    let (page_tx, page_rx) = mpsc::channel(PAGE_QUEUE);
    let source = tokio::spawn(async move {
        let count = items.len() as u64;
        for page in items.chunks(MEMORY_PAGE_ITEMS) {
            let page = RawItems::from_items(page);
            page_tx.send(ScanMessage::Page(page, None)).await.map_err(|_| ExportError::Cancelled)?;
        }
        page_tx.send(ScanMessage::End).await.map_err(|_| ExportError::Cancelled)?;
        Ok(count)
    });
    let resume = ShardCheckpoint { shard: shard.id, ..ShardCheckpoint::default() };
    Ok(pipeline(ctx, shard, resume, source, page_rx, false).await?.files)
}

/// Runs the encode and store stages on the pages `source` sends, and checks that every item
/// it sent is in a stored file. Returns the shard's progress, `resume` included.
async fn pipeline(
    ctx: &ShardContext,
    shard: Shard,
    resume: ShardCheckpoint,
    source: tokio::task::JoinHandle<Result<u64, ExportError>>,
    page_rx: mpsc::Receiver<ScanMessage>,
    save_checkpoints: bool,
) -> Result<ShardCheckpoint, ExportError> {
    let (event_tx, event_rx) = mpsc::channel(EVENT_QUEUE);
    let options = EncoderOptions {
        shard_id: shard.id,
        target_file_bytes: ctx.target_file_bytes,
        compression_level: ctx.compression_level,
        first_sequence: resume.next_sequence,
    };
    let runtime = ctx.runtime.clone();
    let snapshot = ctx.snapshot.clone();
    let hasher = ctx.key_hasher.clone();
    let key_attributes = ctx.key_attributes.clone();
    let encoder = tokio::task::spawn_blocking(move || -> Result<u64, ExportError> {
        let encoder = runtime.open_encoder(&snapshot, &options)?;
        encode(encoder, &key_attributes, hasher.as_deref(), page_rx, event_tx)
    });
    let stored = store(ctx, shard, resume.clone(), event_rx, save_checkpoints).await;

    let scanned = source.await.map_err(|e| ExportError::Internal(format!("the scan task failed: {e}")))?;
    let encoded = encoder.await.map_err(|e| ExportError::Internal(format!("the encoder thread failed: {e}")))?;
    let stored = sink::settle(ctx.runtime.name(), &encoded, stored);
    let (items, encoded_items, progress) = match (scanned, encoded, stored) {
        (Ok(items), Ok(encoded), Ok(progress)) => (items, encoded, progress),
        // A stage that failed is the cause; the others only saw their queue close.
        (scanned, encoded, stored) => return Err(sink::pipeline_failure([scanned.err(), encoded.err(), stored.err()])),
    };
    let stored_items = progress.items - resume.items;
    if encoded_items != items || stored_items != items {
        return Err(ExportError::BadOutput {
            component: ctx.runtime.name().to_string(),
            message: format!("shard {} scanned {items} items but the encoder's files hold {stored_items}", shard.id),
        });
    }
    Ok(progress)
}

/// Stage 1: Scan pages of the segment into the queue, within the read budget, retried as
/// [`retry`] says (throttling slows the budget). Every wait gives way at once when the export stops or the encoder goes away. Returns the
/// items scanned.
async fn scan(
    ctx: ShardContext,
    shard: Shard,
    mut start_key: Option<Item>,
    pages: mpsc::Sender<ScanMessage>,
) -> Result<u64, ExportError> {
    // `scanned` counts the items read, which the filter may have dropped: what a page's
    // `Limit` counts and its read capacity pays for.
    let (mut items, mut scanned, mut count, mut rcu) = (0u64, 0u64, 0u64, 0.0);
    let mut backoff = Backoff::default();
    loop {
        if stopping(&ctx, &pages) {
            return Err(ExportError::Cancelled);
        }
        let limit = match &ctx.budget {
            Some(budget) => {
                tokio::select! {
                    () = budget.acquire() => {}
                    () = stopped(&ctx, &pages) => return Err(ExportError::Cancelled),
                }
                Some(budget.page_limit(ctx.lanes, (scanned > 0).then(|| rcu / scanned as f64)))
            }
            None => None,
        };
        let page = match ctx.table.scan_page(&shard, start_key.clone(), limit).await {
            Ok(page) => page,
            Err(error) => {
                let Some(pause) = backoff.after(&error) else { return Err(error) };
                if let ExportError::Throttled { .. } = error {
                    if let Some(budget) = &ctx.budget {
                        budget.throttled();
                    }
                    ctx.progress.throttled();
                }
                match &error {
                    // Throttling is the read budget's signal, counted in the statistics; said
                    // now and then, not for every page.
                    ExportError::Throttled { .. } => {
                        if ctx.progress.should_say_throttled() {
                            tracing::warn!("{error}; slowing down (retrying the page in {pause:.2?})");
                        }
                    }
                    _ => tracing::warn!(
                        "retrying DynamoDB Scan of segment {} (attempt {} of {}) in {pause:.2?}: {error}",
                        shard.segment,
                        backoff.attempt(),
                        MAX_TRANSIENT_RETRIES + 1
                    ),
                }
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    () = stopped(&ctx, &pages) => return Err(ExportError::Cancelled),
                }
                continue;
            }
        };
        backoff.succeeded();
        if let Some(budget) = &ctx.budget {
            budget.consume(page.consumed_rcu);
        }
        ctx.progress.page(page.items.count, page.consumed_rcu);
        items += page.items.count;
        scanned += page.scanned;
        count += 1;
        rcu += page.consumed_rcu;
        start_key = page.last_evaluated_key;
        if page.items.count > 0 && pages.send(ScanMessage::Page(page.items, start_key.clone())).await.is_err() {
            return Err(ExportError::Cancelled);
        }
        if start_key.is_none() {
            break;
        }
    }
    pages.send(ScanMessage::End).await.map_err(|_| ExportError::Cancelled)?;
    tracing::debug!(shard = shard.id, items, scanned, pages = count, rcu, "segment scanned");
    Ok(items)
}

/// Whether the export is stopping or this shard's encoder has gone.
fn stopping(ctx: &ShardContext, pages: &mpsc::Sender<ScanMessage>) -> bool {
    ctx.cancelled.load(Ordering::Relaxed) || pages.is_closed()
}

/// Returns once [`stopping`] holds (checked every [`STOP_POLL`]).
async fn stopped(ctx: &ShardContext, pages: &mpsc::Sender<ScanMessage>) {
    while !stopping(ctx, pages) {
        tokio::time::sleep(STOP_POLL).await;
    }
}

/// Stage 2 (on a blocking thread): pages through the component. Returns the items encoded.
fn encode(
    mut encoder: Encoder,
    key_attributes: &[String],
    hasher: Option<&KeyHasher>,
    mut pages: mpsc::Receiver<ScanMessage>,
    events: mpsc::Sender<(Vec<EncoderEvent>, Position)>,
) -> Result<u64, ExportError> {
    let mut items = 0u64;
    loop {
        match pages.blocking_recv() {
            Some(ScanMessage::Page(page, next_key)) => {
                let count = page.count;
                items += count;
                let keys = match hasher {
                    Some(hasher) => hasher.hash_page(page.json())?,
                    None => Vec::new(),
                };
                let output = encoder.encode_json(page.json()).map_err(|mut error| {
                    // The item the component cannot take, named by its key.
                    if let ComponentError::UnsupportedItem { source, .. } = &mut error
                        && let Some(item) = source.index.and_then(|index| json_page::item_text(page.json(), index))
                    {
                        source.key = key_in_words(item, key_attributes);
                    }
                    error
                })?;
                drop(page);
                if events.blocking_send((output, Position::AfterPage { next_key, items: count, keys })).is_err() {
                    return Err(ExportError::Cancelled);
                }
            }
            Some(ScanMessage::End) => break,
            None => return Err(ExportError::Cancelled),
        }
    }
    let output = encoder.finish()?;
    events.blocking_send((output, Position::Finished)).map_err(|_| ExportError::Cancelled)?;
    Ok(items)
}

/// The key of a shard's data file number `sequence` (`encoder-options` in the WIT): an encoder
/// that names its files otherwise could collide with another shard's, or fail to replace the
/// file a resumed shard rewrites.
fn expected_key(snapshot: &Snapshot, shard_id: u32, sequence: u32) -> String {
    let data_prefix = &snapshot.keys.data_prefix;
    crate::model::layout::data_file_key(
        data_prefix,
        &snapshot.export_id,
        shard_id,
        sequence,
        &snapshot.data_file_extension,
    )
}

/// A shard's rules for a data file that starts: the page whose output it is in has not gone
/// to an earlier file (`split`), and its key is the one the shard's file `sequence` gives it.
fn check_file_start(snapshot: &Snapshot, shard_id: u32, sequence: u32, key: &str, split: bool) -> Result<(), String> {
    if split {
        return Err(format!("a page's items were split between two data files (at {key:?})"));
    }
    let expected = expected_key(snapshot, shard_id, sequence);
    if key != expected {
        return Err(format!(
            "data file {key:?} should be {expected:?} (shard {shard_id}, file {sequence}): names are a function \
             of the export, the shard and the sequence"
        ));
    }
    Ok(())
}

/// Stage 3: applies encoder events to storage through the [`Sink`] (which checks them against
/// the WIT's sequence rules and recomputes every size and MD5), checks that a page's items go
/// to exactly one data file, under the name its sequence gives it, with as many items as its
/// pages held, and checkpoints the shard after each file.
/// Returns the shard's progress: `resume` plus what this run stored.
async fn store(
    ctx: &ShardContext,
    shard: Shard,
    resume: ShardCheckpoint,
    mut events: mpsc::Receiver<(Vec<EncoderEvent>, Position)>,
    save_checkpoints: bool,
) -> Result<ShardCheckpoint, ExportError> {
    let checkpoint_key = keys::shard_key(&ctx.snapshot.keys.root, shard.id);
    let mut progress = ShardCheckpoint { shard: shard.id, open_upload: None, ..resume };
    let earlier = progress.files.iter().map(|f| f.data_file_s3_key.clone());
    let mut sink = Sink::new(ctx.destination.clone(), ctx.runtime.name().to_string(), earlier);
    let result = async {
        // Items of the pages the open file received, to check the item count it ends with, and
        // (consistent mode) their key hashes, line by line.
        let mut file_items = 0u64;
        let mut file_keys: Vec<KeyHash> = Vec::new();
        // How many of `progress.files` the last saved checkpoint holds.
        let mut files_saved = progress.files.len();
        while let Some((batch, position)) = events.recv().await {
            let (page_items, page_keys) = match &position {
                Position::AfterPage { items, keys, .. } => (*items, keys.as_slice()),
                Position::Finished => (0, &[][..]),
            };
            // The page goes to the file open when its output begins, or to the one it starts.
            let mut page_placed = sink.is_open();
            if page_placed {
                file_items += page_items;
                file_keys.extend_from_slice(page_keys);
            }
            let mut finished_a_file = false;
            for event in batch {
                match event {
                    EncoderEvent::FileStarted(key) => {
                        // (A file started while one is open is the sink's to refuse.)
                        if !sink.is_open() {
                            let split = page_placed && page_items > 0;
                            check_file_start(&ctx.snapshot, shard.id, progress.next_sequence, &key, split)
                                .map_err(|message| sink.bad_output(message))?;
                        }
                        sink.start(key)?;
                        page_placed = true;
                        file_items = page_items;
                        file_keys = page_keys.to_vec();
                    }
                    EncoderEvent::Bytes(bytes) => {
                        sink.write(&bytes).await?;
                        ctx.progress.bytes_written(bytes.len() as u64);
                        // A multipart upload just began: record it, so that a resumed run
                        // can abort it if this one never completes it.
                        // (Only while the files recorded match the saved resume key: after
                        // the segment's last page they may not, and nothing is saved.)
                        if let Some(writer) = sink.open_file()
                            && let Some(upload_id) = writer.upload_id()
                            && save_checkpoints
                            && progress.open_upload.is_none()
                            && progress.files.len() == files_saved
                        {
                            progress.open_upload =
                                Some(OpenUpload { key: writer.key().to_string(), upload_id: upload_id.to_string() });
                            save_checkpoint(ctx, &checkpoint_key, &progress).await?;
                        }
                    }
                    EncoderEvent::FileFinished(facts) => {
                        let written = sink.finish(&facts, Some(file_items)).await?;
                        // Before any checkpoint records the file: a resumed run never finds a
                        // recorded file without its key hashes.
                        if ctx.key_hasher.is_some() {
                            cut::save_key_hashes(ctx, &written.key, &std::mem::take(&mut file_keys)).await?;
                        }
                        progress.items += facts.item_count;
                        // Counted once stored: a file still open when the run stops is rewritten
                        // under its own sequence by the resumed run.
                        progress.next_sequence = progress.next_sequence.saturating_add(1);
                        progress.open_upload = None;
                        progress.files.push(written.entry(facts.item_count));
                        finished_a_file = true;
                        file_items = 0;
                    }
                }
            }
            if !page_placed && page_items > 0 {
                return Err(sink.bad_output(format!("{page_items} items were encoded with no data file open")));
            }
            // Checkpoint only between files, and only at a key the scan can resume from (after
            // the segment's last page, `finish` follows and the shard's end is recorded instead).
            if let (true, true, false, Position::AfterPage { next_key: Some(next_key), .. }) =
                (save_checkpoints, finished_a_file, sink.is_open(), &position)
            {
                progress.resume_key =
                    Some(items::key_to_json(next_key).map_err(|message| ExportError::UnreadableResponse {
                        service: "DynamoDB Scan",
                        message: format!("LastEvaluatedKey: {message}"),
                    })?);
                save_checkpoint(ctx, &checkpoint_key, &progress).await?;
                files_saved = progress.files.len();
            }
        }
        Ok(())
    }
    .await;
    match result {
        Ok(()) => sink.end().await.map(|()| progress),
        Err(error) => {
            sink.abort().await;
            Err(error)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot() -> Snapshot {
        let keys = crate::model::layout::export_keys(Some("p"), "01693467621041-a1b2c3d4", false);
        Snapshot {
            export_id: "01693467621041-a1b2c3d4".into(),
            export_arn: String::new(),
            table_arn: String::new(),
            table_id: String::new(),
            table_name: String::new(),
            start_time_ms: 0,
            export_time_ms: 0,
            s3_bucket: String::new(),
            s3_prefix: Some("p".into()),
            s3_bucket_owner: None,
            s3_sse_algorithm: crate::model::SseAlgorithm::Aes256,
            s3_sse_kms_key_id: None,
            export_format: crate::model::ExportFormat::DynamodbJson,
            client_token: String::new(),
            keys,
            data_file_extension: "json.gz".into(),
            incremental: None,
            custom_format: None,
        }
    }

    #[test]
    fn a_file_starts_under_the_name_its_sequence_gives_and_never_splits_a_page() {
        let s = snapshot();
        let third = expected_key(&s, 4, 2);
        assert!(third.starts_with("p/AWSDynamoDB/01693467621041-a1b2c3d4/data/") && third.ends_with(".json.gz"));
        assert_eq!(check_file_start(&s, 4, 2, &third, false), Ok(()));
        let another = expected_key(&s, 4, 3);
        assert!(check_file_start(&s, 4, 2, &another, false).unwrap_err().contains("shard 4, file 2"));
        assert!(check_file_start(&s, 5, 2, &third, false).is_err(), "another shard's name");
        assert!(check_file_start(&s, 4, 2, &third, true).unwrap_err().contains("split between two data files"));
    }
}
