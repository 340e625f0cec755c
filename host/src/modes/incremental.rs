//! An incremental export (`--incremental --from T1 [--to T2] [--view …]`), end to end: the
//! table's stream and the window checked against it, the snapshot, the stream's records of the
//! window through the component's change encoder (`wit/incremental.wit`), the data files into
//! the `data/` folder every incremental export under the prefix shares, the manifests.
//!
//! ```text
//! stream (this task) --record pages--> change encoder (blocking thread, component)
//!                                          --events, once every record is in--> store (this task)
//! ```
//!
//! The host checks what the component returns as for a full export (each file's key under the
//! shared folder, event order, sizes, MD5s), and counts the change records itself: one per
//! item the window's records touch, less those it inserted and then deleted.
//!
//! `DdbExportStatistics`: `Items` counts the change records written (`ItemCount`), `ScanPages`
//! the `GetRecords` pages that held records of the window.
//!
//! Resumption: an interrupted incremental export is carried on by the same command (same
//! `--client-token`) or by `--resume <id>`, which starts its work over under the same export
//! id, window and file names: it reads no table, only the stream again (while the window is
//! still in the stream's retention). The data files each run starts are recorded beside the
//! export (`checkpoint::IncrementalFiles`) before their first byte, so the run that carries on
//! aborts their uploads and deletes the ones it does not write again.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::{mpsc, oneshot};

use crate::error::ExportError;
use crate::io::aws::AwsClients;
use crate::io::destination::Destination;
use crate::io::dynamodb::Table;
use crate::io::stream::{self, ChangeEvent, ChangeRecord, StreamFacts, StreamReader};
use crate::lifecycle::{self, Claim, ExportFailure, ExportReport, ExportRequest, Published};
use crate::model::time::cli_timestamp;
use crate::model::{EncoderEvent, EncoderOptions, IncrementalSpec, ManifestEntry, Snapshot};
use crate::pipeline::progress::{self, Progress};
use crate::pipeline::sink::Sink;
use crate::runtime::{self, ComponentError, ComponentRuntime};
use crate::state::checkpoint::{self, Fingerprint, IncrementalFiles, RunState};
use crate::state::keys;
use crate::state::lease::Lease;

/// Pages of stream records allowed to wait for the component.
const PAGE_QUEUE: usize = 4;
/// Encoder outputs allowed to wait for storage.
const EVENT_QUEUE: usize = 4;

/// Runs an incremental export (`request.incremental` is set).
pub async fn run(
    aws: &AwsClients,
    runtime: &ComponentRuntime,
    request: &ExportRequest,
    stop: Arc<AtomicBool>,
) -> Result<ExportReport, ExportFailure> {
    let window = request.incremental.ok_or_else(|| ExportError::Internal("not an incremental export".into()))?;
    let table = Table::new(aws.dynamodb.clone(), aws.region.clone(), request.table.clone());
    let info = table.describe().await?;
    let destination = Destination::open(&request.target, &aws.s3, &request.s3).await?;
    destination.check().await?;
    let fingerprint = Fingerprint {
        segments: None,
        incremental: Some(window),
        consistent: false,
        ..lifecycle::fingerprint(request, &info, &destination, runtime)
    };
    let claimed = match lifecycle::claim(&destination, request, &info, &fingerprint, &aws.region).await? {
        Claim::Complete(state, summary) => return lifecycle::completed_earlier(&destination, state, &summary).await,
        claimed => claimed,
    };
    // Only now the stream: a completed export is returned whatever the stream has become.
    let reading = async {
        let table_stream = stream::table_stream(&info, stream::StreamUse::Incremental(window.view))?;
        let reader = StreamReader::new(aws.streams.clone(), table_stream.arn.clone(), info.table_name.clone());
        let facts = reader.describe().await?;
        Ok::<_, ExportError>((table_stream, reader, facts))
    };
    let (table_stream, reader, facts) = match reading.await {
        Ok(reading) => reading,
        Err(error) => {
            claimed.release().await;
            return Err(error.into());
        }
    };
    let (state, lease, earlier_files) = match claimed {
        Claim::Unfinished(state, lease) => {
            let restarted = async {
                let spec = spec_of(&state.snapshot)?;
                check_window(&spec, crate::model::time::now_ms(), &facts)?;
                restart(&destination, &state.snapshot).await
            };
            match restarted.await {
                Ok(earlier_files) => (state, lease, earlier_files),
                Err(error) => {
                    lease.release().await;
                    return Err(error.into());
                }
            }
        }
        Claim::New(token_lease) => {
            let start_time_ms = crate::model::time::now_ms();
            let started = async {
                check_window(&window.resolve(start_time_ms), start_time_ms, &facts)?;
                let starting = lifecycle::Starting {
                    runtime,
                    destination: &destination,
                    request,
                    info: &info,
                    fingerprint,
                    region: &aws.region,
                    start_time_ms,
                    plan: lifecycle::Planning::OneEncoder,
                };
                lifecycle::start(starting, &stop).await
            };
            let started = started.await;
            if let Some(lease) = token_lease {
                lease.release().await;
            }
            let (state, lease) = started?;
            (state, lease, Vec::new())
        }
        Claim::Complete(..) => unreachable!("returned above"),
    };
    let RunState { snapshot, plan, .. } = state;
    let spec = spec_of(&snapshot)?;
    tracing::info!(
        export = %snapshot.export_arn,
        "exporting the changes to {} in [{}, {}) ({}) from its stream {} to {}",
        info.table_name,
        cli_timestamp(spec.export_from_time_ms),
        cli_timestamp(spec.export_to_time_ms),
        spec.export_view_type.aws_name(),
        table_stream.arn,
        destination.locate(&snapshot.keys.root)
    );

    let snapshot = Arc::new(snapshot);
    let progress = Arc::new(Progress::new(1, None));
    let shown = progress::show(progress.clone(), request.progress.clone(), request.progress_interval);
    let ctx = Context {
        destination: destination.clone(),
        runtime: runtime.clone(),
        snapshot: snapshot.clone(),
        target_file_bytes: request.target_file_bytes(),
        compression_level: request.compression_level(),
        stop,
        progress: progress.clone(),
    };
    let keep_alive = lease.keep_alive(ctx.stop.clone());
    let written = write(&ctx, &reader, facts, earlier_files, &lease).await;
    drop(shown);
    destination.tidy().await;
    let report = lifecycle::conclude(&destination, snapshot, plan, progress.figures(), written).await;
    drop(keep_alive);
    lease.release().await;
    report
}

/// The window of an incremental export's snapshot.
fn spec_of(snapshot: &Snapshot) -> Result<IncrementalSpec, ExportError> {
    snapshot
        .incremental
        .ok_or_else(|| ExportError::Internal(format!("export {} is not an incremental export", snapshot.export_id)))
}

/// Refuses a window the stream cannot serve, saying what it can.
fn check_window(spec: &IncrementalSpec, now_ms: u64, facts: &StreamFacts) -> Result<(), ExportError> {
    stream::check_window(spec.export_from_time_ms, spec.export_to_time_ms, now_ms, facts.created_ms).map_err(
        |message| ExportError::IncrementalWindow {
            window: format!("[{}, {})", cli_timestamp(spec.export_from_time_ms), cli_timestamp(spec.export_to_time_ms)),
            message,
        },
    )
}

/// Before an unfinished export starts over: the data files its earlier runs started (checked to
/// be this export's), their unfinished uploads aborted, its recorded failure removed.
async fn restart(destination: &Destination, snapshot: &Snapshot) -> Result<Vec<String>, ExportError> {
    let key = keys::incremental_key(&snapshot.keys.root);
    let files: IncrementalFiles = checkpoint::load(destination, &key).await?.unwrap_or_default();
    for file in &files.started {
        runtime::check_data_file_key(snapshot, file)
            .map_err(|message| ExportError::CorruptState { location: destination.locate(&key), message })?;
    }
    let mut aborted = 0;
    for file in &files.started {
        aborted += destination.abort_stale_uploads(file, &[]).await?;
    }
    destination.delete(&keys::failure_key(&snapshot.keys.root)).await?;
    tracing::info!(
        "export {} did not complete: starting it over ({} data files started before, {aborted} unfinished uploads aborted)",
        snapshot.export_id,
        files.started.len()
    );
    Ok(files.started)
}

/// What every stage of one run shares.
#[derive(Clone)]
struct Context {
    destination: Destination,
    runtime: ComponentRuntime,
    snapshot: Arc<Snapshot>,
    target_file_bytes: u64,
    compression_level: u8,
    stop: Arc<AtomicBool>,
    progress: Arc<Progress>,
}

impl Context {
    fn bad_output(&self, message: String) -> ExportError {
        ExportError::BadOutput { component: self.runtime.name().to_string(), message }
    }
}

/// The stream's records through the component into data files, a check of the stored files,
/// the manifests.
async fn write(
    ctx: &Context,
    reader: &StreamReader,
    facts: StreamFacts,
    earlier_files: Vec<String>,
    lease: &Lease,
) -> Result<Published, ExportError> {
    let spec = spec_of(&ctx.snapshot)?;
    let (page_tx, page_rx) = mpsc::channel(PAGE_QUEUE);
    let (go_tx, go_rx) = oneshot::channel();
    let (event_tx, event_rx) = mpsc::channel(EVENT_QUEUE);
    let options = EncoderOptions {
        shard_id: 0,
        target_file_bytes: ctx.target_file_bytes,
        compression_level: ctx.compression_level,
        first_sequence: 0,
    };
    let (runtime, snapshot, progress) = (ctx.runtime.clone(), ctx.snapshot.clone(), ctx.progress.clone());
    let encoder =
        tokio::task::spawn_blocking(move || encode(&runtime, &snapshot, &options, page_rx, go_rx, event_tx, &progress));

    let read = reader.read(facts, spec.export_from_time_ms, spec.export_to_time_ms, &page_tx, &ctx.stop).await;
    drop(page_tx);
    let _ = go_tx.send(read.is_ok());
    let stored = store(ctx, earlier_files.clone(), event_rx).await;
    let encoded = encoder.await.map_err(|e| ExportError::Internal(format!("the encoder thread failed: {e}")))?;
    let stored = crate::pipeline::sink::settle(ctx.runtime.name(), &encoded, stored);
    let (read, expected, files) = match (read, encoded, stored) {
        (Ok(read), Ok(expected), Ok(files)) => (read, expected, files),
        // A stage that failed is the cause; the others only saw their queue close.
        (read, encoded, stored) => {
            return Err(match crate::pipeline::sink::pipeline_failure([read.err(), encoded.err(), stored.err()]) {
                ExportError::Cancelled if ctx.stop.load(Ordering::Relaxed) => ExportError::Interrupted,
                cause => cause,
            });
        }
    };
    let items: u64 = files.iter().map(|f| f.item_count).sum();
    tracing::debug!(
        shards = read.shards,
        requests = read.requests,
        records = read.records_read,
        in_window = read.records_kept,
        change_records = items,
        "stream read"
    );
    if items != expected {
        return Err(ctx.bad_output(format!(
            "the window's stream records change {expected} items, but the data files hold {items} change records"
        )));
    }
    ctx.progress.segment_done();
    // The data folder is shared: only the files an earlier run of this export started and
    // this one did not write are removed (other exports' files are left alone).
    let earlier: HashSet<&str> = earlier_files.iter().map(String::as_str).collect();
    let publication = lifecycle::Publication {
        snapshot: &ctx.snapshot,
        files: &files,
        items,
        unlisted: lifecycle::Unlisted::These(&earlier),
    };
    lifecycle::publish(&ctx.destination, &ctx.runtime, publication, || ctx.stop.load(Ordering::Relaxed), Some(lease))
        .await
}

/// The component's side (on a blocking thread): every page of records into the change encoder,
/// then, once the stream was read to the end (`go`), its output to `events`. Returns the number
/// of change records the host expects.
fn encode(
    runtime: &ComponentRuntime,
    snapshot: &Snapshot,
    options: &EncoderOptions,
    mut pages: mpsc::Receiver<Vec<ChangeRecord>>,
    go: oneshot::Receiver<bool>,
    events: mpsc::Sender<Vec<EncoderEvent>>,
    progress: &Progress,
) -> Result<u64, ExportError> {
    let mut encoder = runtime.session()?.open_change_encoder(snapshot, options)?;
    let mut expected = ExpectedChanges::default();
    let mut packed = Vec::new();
    while let Some(page) = pages.blocking_recv() {
        expected.observe(&page)?;
        progress.page(0, 0.0);
        crate::io::pack::pack_records(&page, &mut packed)
            .map_err(|source| ComponentError::UnsupportedItem { component: encoder.component(), source })?;
        encoder.add_records(&packed)?;
    }
    if !go.blocking_recv().unwrap_or(false) {
        return Err(ExportError::Cancelled);
    }
    loop {
        let output = encoder.encode_next()?;
        if output.is_empty() {
            return Ok(expected.count());
        }
        events.blocking_send(output).map_err(|_| ExportError::Cancelled)?;
    }
}

/// What the host knows of compaction without the images: per item, whether its first record
/// in the window is an `INSERT` and its last a `REMOVE` (then it has no change record).
#[derive(Default)]
struct ExpectedChanges {
    items: HashMap<String, (bool, bool)>,
}

impl ExpectedChanges {
    fn observe(&mut self, page: &[ChangeRecord]) -> Result<(), ExportError> {
        for record in page {
            let key = crate::io::items::key_to_json(&record.keys)
                .map_err(|why| ExportError::UnreadableResponse {
                    service: "DynamoDB Streams",
                    message: format!("a record's Keys: {why}"),
                })?
                .to_string();
            let removed = record.event == ChangeEvent::Remove;
            self.items
                .entry(key)
                .and_modify(|(_, last)| *last = removed)
                .or_insert((record.event == ChangeEvent::Insert, removed));
        }
        Ok(())
    }

    fn count(&self) -> u64 {
        self.items.values().filter(|(inserted, removed)| !(*inserted && *removed)).count() as u64
    }
}

/// Applies the change encoder's events to storage through the [`Sink`] (order, sizes and MD5s
/// checked there); checks each file's key against the layout and, the data folder being shared
/// by every incremental export under the prefix, that a name this export did not start before
/// is new; records each file in `IncrementalFiles` before its first byte. Returns the stored
/// files.
async fn store(
    ctx: &Context,
    earlier_files: Vec<String>,
    mut events: mpsc::Receiver<Vec<EncoderEvent>>,
) -> Result<Vec<ManifestEntry>, ExportError> {
    let state_key = keys::incremental_key(&ctx.snapshot.keys.root);
    let mut started = IncrementalFiles { started: earlier_files };
    let mut sink = Sink::new(ctx.destination.clone(), ctx.runtime.name().to_string(), []);
    let mut files = Vec::new();
    let result = async {
        while let Some(batch) = events.recv().await {
            for event in batch {
                match event {
                    EncoderEvent::FileStarted(key) => {
                        if !sink.is_open() {
                            runtime::check_data_file_key(&ctx.snapshot, &key).map_err(|m| sink.bad_output(m))?;
                            if !started.started.contains(&key) {
                                if ctx.destination.list(&key).await?.iter().any(|object| object.key == key) {
                                    return Err(sink.bad_output(format!(
                                        "data file {key:?} already exists in the shared data folder; refusing \
                                         to overwrite another export's file"
                                    )));
                                }
                                started.started.push(key.clone());
                                checkpoint::save(&ctx.destination, &state_key, &started).await?;
                            }
                        }
                        sink.start(key)?;
                    }
                    EncoderEvent::Bytes(bytes) => {
                        sink.write(&bytes).await?;
                        ctx.progress.bytes_written(bytes.len() as u64);
                    }
                    EncoderEvent::FileFinished(facts) => {
                        let written = sink.finish(&facts, None).await?;
                        ctx.progress.items_stored(facts.item_count);
                        files.push(written.entry(facts.item_count));
                    }
                }
            }
        }
        Ok(())
    }
    .await;
    match result {
        Ok(()) => sink.end().await.map(|()| files),
        Err(error) => {
            sink.abort().await;
            Err(error)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::types::AttributeValue;

    fn record(event: ChangeEvent, pk: &str) -> ChangeRecord {
        ChangeRecord {
            event,
            micros: 1,
            keys: HashMap::from([("pk".to_string(), AttributeValue::S(pk.into()))]),
            new_image: None,
            old_image: None,
        }
    }

    #[test]
    fn the_host_expects_a_change_record_per_item_but_those_inserted_and_deleted() {
        use ChangeEvent::*;
        let mut expected = ExpectedChanges::default();
        expected
            .observe(&[record(Insert, "a"), record(Modify, "b"), record(Remove, "c"), record(Insert, "d")])
            .unwrap();
        expected
            .observe(&[record(Remove, "d"), record(Remove, "e"), record(Insert, "e"), record(Modify, "a")])
            .unwrap();
        // a inserted (then updated), b updated, c deleted, d inserted and deleted, e replaced.
        assert_eq!(expected.count(), 4);
    }
}
