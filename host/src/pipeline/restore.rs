//! One data file back into the table: read (streamed, never whole) → decode (the component's
//! `data-file-decoder`, on a blocking thread) → write, many requests in flight at once, within
//! the write budget, retried as [`crate::pipeline::retry`] says.
//!
//! Without a condition a batch goes to BatchWriteItem as it is, and what DynamoDB leaves
//! unprocessed is sent again after a jittered backoff (the budget slows, as for throttling).
//! Under a condition (`--if-absent`, `--if-older`) each put is a conditional PutItem, and
//! deletes are skipped: a restore into a live table under a condition never removes an item.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{DeleteRequest, PutRequest, WriteRequest as SdkWriteRequest};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use crate::error::ExportError;
use crate::io::destination::Destination;
use crate::io::pack::unpack_map;
use crate::io::table_writer::{PutCondition, TableWriter};
use crate::model::{DecodeError, ExportFormat, KeyAttribute, WriteBatch, WriteRequest};
use crate::pipeline::capacity::CapacityBudget;
use crate::pipeline::offload;
use crate::pipeline::retry::{Backoff, MAX_TRANSIENT_RETRIES};
use crate::runtime::ComponentRuntime;

/// What every file of a restore shares.
#[derive(Clone)]
pub struct RestoreContext {
    pub destination: Destination,
    pub runtime: ComponentRuntime,
    pub writer: TableWriter,
    /// The table's key attributes, typed.
    pub key: Vec<KeyAttribute>,
    /// `None`: overwrite.
    pub condition: Option<PutCondition>,
    pub budget: Option<Arc<CapacityBudget>>,
    /// Write requests in flight, across every file.
    pub requests: Arc<Semaphore>,
    pub tally: Arc<RestoreTally>,
    pub cancelled: Arc<AtomicBool>,
}

/// A data file to restore.
#[derive(Debug, Clone)]
pub struct FileToRestore {
    pub key: String,
    pub format: ExportFormat,
    /// `FULL_EXPORT` or `INCREMENTAL_EXPORT`.
    pub export_type: String,
}

/// What a file's writes did.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FileCounts {
    pub puts: u64,
    pub deletes: u64,
    pub skipped: u64,
    /// Write capacity consumed.
    pub wcu: f64,
    /// Requests DynamoDB throttled, or whose items it left unprocessed.
    pub throttles: u64,
}

impl std::ops::AddAssign for FileCounts {
    fn add_assign(&mut self, other: Self) {
        self.puts += other.puts;
        self.deletes += other.deletes;
        self.skipped += other.skipped;
        self.wcu += other.wcu;
        self.throttles += other.throttles;
    }
}

/// Restores one data file; returns what its writes did once every one went through.
pub async fn restore_file(ctx: &RestoreContext, file: &FileToRestore) -> Result<FileCounts, ExportError> {
    let location = ctx.destination.locate(&file.key);
    let decoder = {
        let (runtime, file, key) = (ctx.runtime.clone(), file.clone(), ctx.key.clone());
        offload::blocking(move || Ok(runtime.session()?.data_file_decoder(file.format, &file.export_type, &key)?))
            .await?
    };
    // Shared with the output closure, whose futures may not borrow it.
    let writes = Arc::new(tokio::sync::Mutex::new(Writes {
        ctx: ctx.clone(),
        tasks: JoinSet::new(),
        counts: FileCounts::default(),
    }));
    let read = {
        let (location, writes) = (location.clone(), writes.clone());
        offload::stream_file(
            &ctx.destination,
            &file.key,
            decoder,
            move |decoder, chunk| decoded(decoder.feed(chunk)?, &location),
            move |batches| {
                let writes = writes.clone();
                async move { writes.lock().await.send(batches).await }
            },
        )
        .await?
    };
    let Some(decoder) = read else {
        return Err(ExportError::Verification { location, message: "the data file is missing".into() });
    };
    let last = {
        let location = location.clone();
        offload::blocking(move || decoded(decoder.finish()?, &location)).await?
    };
    let mut writes = Arc::try_unwrap(writes)
        .map_err(|_| ExportError::Internal("a file's writes outlived its read".into()))?
        .into_inner();
    writes.send(last).await?;
    writes.finish().await
}

/// A decode error as the file's failure, naming it and the line.
fn decoded(result: Result<Vec<WriteBatch>, DecodeError>, location: &str) -> Result<Vec<WriteBatch>, ExportError> {
    result.map_err(|error| ExportError::Verification { location: location.to_string(), message: error.to_string() })
}

/// One file's writes in flight.
struct Writes {
    ctx: RestoreContext,
    tasks: JoinSet<Result<FileCounts, ExportError>>,
    counts: FileCounts,
}

impl Writes {
    /// Starts a write of each batch, as request slots free up; fails with the first write
    /// that failed.
    async fn send(&mut self, batches: Vec<WriteBatch>) -> Result<(), ExportError> {
        for batch in batches {
            if self.ctx.cancelled.load(Ordering::Relaxed) {
                return Err(ExportError::Cancelled);
            }
            while let Some(done) = self.tasks.try_join_next() {
                self.counts += joined(done)?;
            }
            let permit = self
                .ctx
                .requests
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| ExportError::Internal("the write slots were closed".into()))?;
            let ctx = self.ctx.clone();
            self.tasks.spawn(async move { write_batch(&ctx, batch, permit).await });
        }
        Ok(())
    }

    /// Waits for every write; the file's counts.
    async fn finish(mut self) -> Result<FileCounts, ExportError> {
        while let Some(done) = self.tasks.join_next().await {
            let counts = joined(done);
            match counts {
                Ok(counts) => self.counts += counts,
                Err(error) => {
                    self.tasks.abort_all();
                    return Err(error);
                }
            }
        }
        Ok(self.counts)
    }
}

fn joined(done: Result<Result<FileCounts, ExportError>, tokio::task::JoinError>) -> Result<FileCounts, ExportError> {
    done.map_err(|e| ExportError::Internal(format!("a write task failed: {e}")))?
}

/// One batch, written until every request went through (or failed for good).
async fn write_batch(
    ctx: &RestoreContext,
    batch: WriteBatch,
    _permit: OwnedSemaphorePermit,
) -> Result<FileCounts, ExportError> {
    let mut counts = FileCounts::default();
    let unpacked = |bytes: &[u8]| {
        unpack_map(bytes).map_err(|message| ExportError::BadOutput {
            component: "the restore's data-file-decoder".into(),
            message: format!("line {}: a write's item is not a packed map: {message}", batch.first_line),
        })
    };
    match &ctx.condition {
        None => {
            for request in &batch.requests {
                match request {
                    WriteRequest::Put(_) => counts.puts += 1,
                    WriteRequest::Delete(_) => counts.deletes += 1,
                }
            }
            // Built from the packed batch for each attempt (cheaper than keeping a copy of
            // every item for a retry that seldom comes).
            let build = || -> Result<Vec<SdkWriteRequest>, ExportError> {
                batch
                    .requests
                    .iter()
                    .map(|request| match request {
                        WriteRequest::Put(item) => {
                            let put = PutRequest::builder().set_item(Some(unpacked(item)?)).build();
                            Ok(SdkWriteRequest::builder().put_request(put.map_err(internal)?).build())
                        }
                        WriteRequest::Delete(key) => {
                            let delete = DeleteRequest::builder().set_key(Some(unpacked(key)?)).build();
                            Ok(SdkWriteRequest::builder().delete_request(delete.map_err(internal)?).build())
                        }
                    })
                    .collect()
            };
            write_all(ctx, build, &mut counts).await?;
        }
        Some(condition) => {
            let key: Vec<String> = ctx.key.iter().map(|k| k.name.clone()).collect();
            for request in &batch.requests {
                match request {
                    WriteRequest::Put(item) => {
                        let item = unpacked(item)?;
                        let written = retried(ctx, "PutItem", &mut counts, || {
                            let (item, key) = (item.clone(), &key);
                            async move {
                                let put = ctx.writer.put_if(item, key, condition).await?;
                                Ok((put.wcu.unwrap_or(1.0), put.written))
                            }
                        })
                        .await?;
                        if written {
                            counts.puts += 1;
                        } else {
                            counts.skipped += 1;
                        }
                    }
                    WriteRequest::Delete(_) => counts.skipped += 1,
                }
            }
        }
    }
    ctx.tally.written(counts);
    Ok(counts)
}

/// BatchWriteItem of what `build` makes, until DynamoDB has processed every request.
async fn write_all(
    ctx: &RestoreContext,
    build: impl Fn() -> Result<Vec<SdkWriteRequest>, ExportError>,
    counts: &mut FileCounts,
) -> Result<(), ExportError> {
    let mut backoff = Backoff::default();
    // `None`: the whole batch, built for each attempt; then what DynamoDB left unprocessed.
    let mut left: Option<Vec<SdkWriteRequest>> = None;
    loop {
        let sent = left.as_ref().map_or(usize::MAX, Vec::len);
        if sent == 0 {
            return Ok(());
        }
        let unprocessed = retried(ctx, "BatchWriteItem", counts, || {
            let requests = match &left {
                Some(left) => Ok(left.clone()),
                None => build(),
            };
            async move {
                let requests = requests?;
                let sent = requests.len();
                let written = ctx.writer.batch_write(requests).await?;
                let done = sent - written.unprocessed.len().min(sent);
                // A server that reports no capacity: at least one unit a write.
                Ok((written.wcu.unwrap_or(done as f64), written.unprocessed))
            }
        })
        .await?;
        if !unprocessed.is_empty() {
            counts.throttles += 1;
            if let Some(budget) = &ctx.budget {
                budget.throttled();
            }
            pause(ctx, backoff.after_unprocessed()).await?;
        } else {
            backoff.succeeded();
        }
        left = Some(unprocessed);
    }
}

/// One request, within the budget, tried again after throttling and transient failures.
/// `send` returns the capacity the request consumed with its result; both are counted.
async fn retried<T, F, Sent>(
    ctx: &RestoreContext,
    operation: &'static str,
    counts: &mut FileCounts,
    mut send: F,
) -> Result<T, ExportError>
where
    F: FnMut() -> Sent,
    Sent: std::future::Future<Output = Result<(f64, T), ExportError>>,
{
    let mut backoff = Backoff::default();
    loop {
        if let Some(budget) = &ctx.budget {
            budget.acquire().await;
        }
        match send().await {
            Ok((wcu, value)) => {
                if let Some(budget) = &ctx.budget {
                    budget.consume(wcu);
                }
                counts.wcu += if wcu.is_finite() { wcu.max(0.0) } else { 0.0 };
                return Ok(value);
            }
            Err(error) => {
                let Some(wait) = backoff.after(&error) else { return Err(error) };
                if let ExportError::Throttled { .. } = error {
                    counts.throttles += 1;
                    if let Some(budget) = &ctx.budget {
                        budget.throttled();
                    }
                } else {
                    tracing::warn!(
                        "retrying DynamoDB {operation} (attempt {} of {}) in {wait:.2?}: {error}",
                        backoff.attempt(),
                        MAX_TRANSIENT_RETRIES + 1
                    );
                }
                pause(ctx, wait).await?;
            }
        }
    }
}

/// Sleeps, giving way at once when the restore stops.
async fn pause(ctx: &RestoreContext, wait: Duration) -> Result<(), ExportError> {
    let deadline = tokio::time::Instant::now() + wait;
    while tokio::time::Instant::now() < deadline {
        if ctx.cancelled.load(Ordering::Relaxed) {
            return Err(ExportError::Cancelled);
        }
        tokio::time::sleep_until(deadline.min(tokio::time::Instant::now() + Duration::from_millis(100))).await;
    }
    Ok(())
}

fn internal(error: impl std::fmt::Display) -> ExportError {
    ExportError::Internal(format!("building a write request: {error}"))
}

/// What a restore has done so far, shared by its files.
#[derive(Debug)]
pub struct RestoreTally {
    started: Instant,
    puts: AtomicU64,
    deletes: AtomicU64,
    skipped: AtomicU64,
    /// Consumed write capacity, in thousandths of a WCU.
    milli_wcu: AtomicU64,
    throttles: AtomicU64,
    files_done: AtomicU64,
    files: u64,
    /// Items the export holds (its manifests' counts).
    expected: u64,
}

/// A [`RestoreTally`]'s figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RestoreFigures {
    pub items_put: u64,
    pub items_deleted: u64,
    /// Puts a condition kept out, and deletes it skipped.
    pub skipped: u64,
    pub consumed_write_capacity_units: f64,
    pub throttles: u64,
    pub data_files_done: u64,
    pub data_files: u64,
    pub seconds: f64,
    pub items_per_second: f64,
}

impl RestoreFigures {
    /// The figures of `counts` (summed from the records of `done` of `files` data files), over
    /// `seconds` (0: no rate).
    pub fn of_records(counts: FileCounts, done: u64, files: u64, seconds: f64) -> Self {
        let items = counts.puts + counts.deletes + counts.skipped;
        RestoreFigures {
            items_put: counts.puts,
            items_deleted: counts.deletes,
            skipped: counts.skipped,
            consumed_write_capacity_units: counts.wcu,
            throttles: counts.throttles,
            data_files_done: done,
            data_files: files,
            seconds,
            items_per_second: if seconds > 0.0 { items as f64 / seconds } else { 0.0 },
        }
    }
}

impl RestoreTally {
    pub fn new(files: u64, expected: u64) -> Self {
        Self {
            started: Instant::now(),
            puts: AtomicU64::new(0),
            deletes: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            milli_wcu: AtomicU64::new(0),
            throttles: AtomicU64::new(0),
            files_done: AtomicU64::new(0),
            files,
            expected,
        }
    }

    fn written(&self, counts: FileCounts) {
        self.puts.fetch_add(counts.puts, Ordering::Relaxed);
        self.deletes.fetch_add(counts.deletes, Ordering::Relaxed);
        self.skipped.fetch_add(counts.skipped, Ordering::Relaxed);
        self.milli_wcu.fetch_add((counts.wcu * 1000.0) as u64, Ordering::Relaxed);
        self.throttles.fetch_add(counts.throttles, Ordering::Relaxed);
    }

    /// A data file finished: by this run, or (`earlier`) by one before it.
    pub fn file_done(&self, earlier: Option<FileCounts>) {
        if let Some(counts) = earlier {
            self.written(counts);
        }
        self.files_done.fetch_add(1, Ordering::Relaxed);
    }

    pub fn figures(&self) -> RestoreFigures {
        let seconds = self.started.elapsed().as_secs_f64();
        let (puts, deletes, skipped) = (
            self.puts.load(Ordering::Relaxed),
            self.deletes.load(Ordering::Relaxed),
            self.skipped.load(Ordering::Relaxed),
        );
        let done = puts + deletes + skipped;
        RestoreFigures {
            items_put: puts,
            items_deleted: deletes,
            skipped,
            consumed_write_capacity_units: self.milli_wcu.load(Ordering::Relaxed) as f64 / 1000.0,
            throttles: self.throttles.load(Ordering::Relaxed),
            data_files_done: self.files_done.load(Ordering::Relaxed),
            data_files: self.files,
            seconds,
            items_per_second: if seconds > 0.0 { done as f64 / seconds } else { 0.0 },
        }
    }
}

impl crate::pipeline::progress::Shown for RestoreTally {
    fn line(&self) -> String {
        let f = self.figures();
        format!(
            "{} put, {} deleted, {} skipped, {:.0} items/s, {:.1} WCU, {} throttled, {}/{} data files",
            f.items_put,
            f.items_deleted,
            f.skipped,
            f.items_per_second,
            f.consumed_write_capacity_units,
            f.throttles,
            f.data_files_done,
            f.data_files
        )
    }

    fn done(&self) -> u64 {
        let f = self.figures();
        f.items_put + f.items_deleted + f.skipped
    }

    fn expected(&self) -> Option<u64> {
        (self.expected > 0).then_some(self.expected)
    }
}
