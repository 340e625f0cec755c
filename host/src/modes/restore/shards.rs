//! Writing a planned restore's shards: the files of each export in parallel lanes, the
//! exports one after the other (an incremental export's changes land only once every file
//! before it is restored), each file recorded when all its writes went through; and the report
//! summed from those records, the same for a restore run in one process and one fanned out.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::request::{RestoreReport, WriteMode};
use crate::error::ExportError;
use crate::io::destination::{Destination, Target};
use crate::io::table_writer::TableWriter;
use crate::model::Field;
use crate::pipeline::capacity::CapacityBudget;
use crate::pipeline::restore::{FileCounts, FileToRestore, RestoreContext, RestoreFigures, RestoreTally, restore_file};
use crate::runtime::ComponentRuntime;
use crate::state::checkpoint;
use crate::state::keys;
use crate::state::restore::{RestoreRun, RestoredFile};
use crate::state::stored::{Depth, Listing, Record};

/// Data files restored at once, at most.
const MAX_FILE_LANES: usize = 16;

/// How shards are written.
pub struct Writing {
    pub runtime: ComponentRuntime,
    pub writer: TableWriter,
    pub writes: WriteMode,
    pub budget: Option<Arc<CapacityBudget>>,
    /// Write requests in flight.
    pub requests: u32,
    /// Check each file against what was verified before reading it: for a worker, which runs
    /// long after the plan (a run in one process has just verified every byte).
    pub check_unchanged: bool,
    pub tally: Arc<RestoreTally>,
    pub cancelled: Arc<AtomicBool>,
}

/// The records of the files restored so far (their keys in the state).
pub async fn recorded(state: &Destination, prefix: &str) -> Result<HashSet<String>, ExportError> {
    Ok(state.list(&format!("{prefix}files/")).await?.into_iter().map(|listed| listed.key).collect())
}

/// Restores the files of `shards` not yet recorded; returns how many were recorded already.
pub async fn restore_shards(
    writing: &Writing,
    state: &Destination,
    prefix: &str,
    run: &RestoreRun,
    shards: &[u32],
) -> Result<u64, ExportError> {
    let mut done = recorded(state, prefix).await?;
    // The requested files, by export.
    let mut by_export: Vec<Vec<usize>> = vec![Vec::new(); run.plan.len()];
    for id in shards {
        let shard = run.shards.get(*id as usize).ok_or_else(|| ExportError::InvalidArgument {
            field: Field::Shard,
            message: format!("the plan has shards 0 to {}, not {id}", run.shards.len().saturating_sub(1)),
        })?;
        by_export[shard.export].extend(&shard.files);
    }
    let mut resumed = 0;
    for (export, files) in by_export.iter().enumerate().filter(|(_, files)| !files.is_empty()) {
        // Every file of the exports before this one must be restored first.
        let waiting: Vec<String> = run
            .shards
            .iter()
            .filter(|s| s.export < export)
            .filter(|s| s.files.iter().any(|f| !done.contains(&keys::restored_file_key(prefix, s.export, *f))))
            .map(|s| s.id.to_string())
            .collect();
        if !waiting.is_empty() {
            return Err(ExportError::RestoreUnfinished {
                message: format!(
                    "its files are of export {} of the chain, which restores once the shards of the exports before \
                     it have finished; unfinished: {}",
                    export + 1,
                    waiting.join(", ")
                ),
            });
        }
        resumed += restore_files(writing, state, prefix, run, export, files, &mut done).await?;
    }
    Ok(resumed)
}

/// One export's `files` (indexes in its plan), `MAX_FILE_LANES` at a time.
async fn restore_files(
    writing: &Writing,
    state: &Destination,
    prefix: &str,
    run: &RestoreRun,
    export: usize,
    files: &[usize],
    done: &mut HashSet<String>,
) -> Result<u64, ExportError> {
    let planned = &run.plan[export];
    let (target, _) = Target::parse_export_location(&planned.location)?;
    let destination = Destination::open_for_reading(&target).await?;
    let ctx = RestoreContext {
        destination: destination.clone(),
        runtime: writing.runtime.clone(),
        writer: writing.writer.clone(),
        key: run.key.clone(),
        condition: writing.writes.condition(),
        budget: writing.budget.clone(),
        requests: Arc::new(Semaphore::new(writing.requests as usize)),
        tally: writing.tally.clone(),
        cancelled: writing.cancelled.clone(),
    };
    let mut resumed = 0;
    let mut pending = Vec::new();
    for &index in files {
        let record_key = keys::restored_file_key(prefix, export, index);
        if done.contains(&record_key)
            && let Some(record) = checkpoint::load::<RestoredFile>(state, &record_key).await?
        {
            writing.tally.file_done(Some(counts_of(&record)));
            resumed += 1;
            continue;
        }
        pending.push((record_key, &planned.files[index]));
    }
    if writing.check_unchanged && !pending.is_empty() {
        let folders: HashSet<String> =
            pending.iter().filter_map(|(_, f)| f.key.rsplit_once('/').map(|(d, _)| format!("{d}/"))).collect();
        let listing = Listing::of_all(&destination, folders.iter().map(String::as_str)).await?;
        for (_, file) in &pending {
            let record = Record { key: &file.key, etag: &file.etag, md5: &file.md5, stamp: None };
            if let Some(problem) = listing.problem(&destination, record, Depth::Unchanged).await? {
                return Err(ExportError::Verification {
                    location: planned.location.clone(),
                    message: format!("{problem}: it changed since the restore was planned and verified"),
                });
            }
        }
    }
    let lanes = (writing.requests as usize).clamp(1, MAX_FILE_LANES).min(pending.len().max(1));
    let mut tasks = JoinSet::new();
    let mut pending = pending.into_iter();
    let mut first_error = None;
    loop {
        while tasks.len() < lanes && first_error.is_none() && !ctx.cancelled.load(Ordering::Relaxed) {
            let Some((record_key, file)) = pending.next() else { break };
            let (ctx, state) = (ctx.clone(), state.clone());
            let to_restore = FileToRestore {
                key: file.key.clone(),
                format: planned.format,
                export_type: planned.export_type.clone(),
            };
            let etag = file.etag.clone();
            tasks.spawn(async move {
                let counts = restore_file(&ctx, &to_restore).await?;
                let record = RestoredFile {
                    key: to_restore.key,
                    etag,
                    puts: counts.puts,
                    deletes: counts.deletes,
                    skipped: counts.skipped,
                    wcu: counts.wcu,
                    throttles: counts.throttles,
                };
                checkpoint::save(&state, &record_key, &record).await?;
                ctx.tally.file_done(None);
                Ok::<String, ExportError>(record_key)
            });
        }
        let Some(joined) = tasks.join_next().await else { break };
        match joined.map_err(|e| ExportError::Internal(format!("a restore task failed: {e}"))).and_then(|r| r) {
            Ok(record_key) => {
                done.insert(record_key);
            }
            Err(error) => {
                ctx.cancelled.store(true, Ordering::Relaxed);
                if first_error.as_ref().is_none_or(|e| matches!(e, ExportError::Cancelled)) {
                    first_error = Some(error);
                }
            }
        }
    }
    match first_error {
        Some(error) => Err(error),
        None if ctx.cancelled.load(Ordering::Relaxed) => Err(ExportError::Cancelled),
        None => Ok(resumed),
    }
}

fn counts_of(record: &RestoredFile) -> FileCounts {
    FileCounts {
        puts: record.puts,
        deletes: record.deletes,
        skipped: record.skipped,
        wcu: record.wcu,
        throttles: record.throttles,
    }
}

/// The counts of those of `files` (export, file) that `done` lists, summed from their records,
/// and how many there were: the one sum behind a shard's report and the restore's.
pub async fn recorded_counts(
    state: &Destination,
    prefix: &str,
    done: &HashSet<String>,
    files: impl IntoIterator<Item = (usize, usize)>,
) -> Result<(FileCounts, u64), ExportError> {
    let mut total = FileCounts::default();
    let mut counted = 0;
    for (export, file) in files {
        let key = keys::restored_file_key(prefix, export, file);
        if !done.contains(&key) {
            continue;
        }
        let record = checkpoint::load::<RestoredFile>(state, &key).await?.ok_or_else(|| ExportError::CorruptState {
            location: state.locate(&key),
            message: "listed, but not there".into(),
        })?;
        total += counts_of(&record);
        counted += 1;
    }
    Ok((total, counted))
}

/// The report of a restore whose every file is recorded, summed from the records; refused,
/// naming the unfinished shards, when some are not.
pub async fn report(
    state: &Destination,
    prefix: &str,
    token: &str,
    state_location: &str,
    run: &RestoreRun,
    resumed: u64,
) -> Result<RestoreReport, ExportError> {
    let done = recorded(state, prefix).await?;
    let unfinished: Vec<String> = run
        .shards
        .iter()
        .filter(|s| s.files.iter().any(|f| !done.contains(&keys::restored_file_key(prefix, s.export, *f))))
        .map(|s| s.id.to_string())
        .collect();
    if !unfinished.is_empty() {
        return Err(ExportError::RestoreUnfinished {
            message: format!(
                "{} of {} shards are unfinished: {}",
                unfinished.len(),
                run.shards.len(),
                unfinished.join(", ")
            ),
        });
    }
    let all = run.shards.iter().flat_map(|s| s.files.iter().map(|f| (s.export, *f)));
    let (total, files) = recorded_counts(state, prefix, &done, all).await?;
    let seconds = crate::model::time::now_ms().saturating_sub(run.started_ms) as f64 / 1000.0;
    Ok(RestoreReport {
        client_token: token.to_string(),
        table: run.table.clone(),
        exports: run.plan.iter().map(|p| p.location.clone()).collect(),
        writes: run.writes.clone(),
        created_table: run.created_table,
        state: state_location.to_string(),
        resumed_data_files: resumed,
        figures: RestoreFigures::of_records(total, files, files, seconds).into(),
    })
}
