//! `ddb-export restore`: exports (ours or AWS's, DYNAMODB_JSON or ION; a full export, then
//! incremental ones) back into a table, new or existing; in one process ([`run`]) or fanned
//! out like an export ([`plan`], [`run_shard`], [`finalize`]).
//!
//! In order, so that nothing is written from an export that is not what its manifests say:
//! 1. [`prepare`]: the exports found ([`chain::locate`]) and every one verified as `verify`
//!    does it (ETags, MD5s, counts, every line parsing, every item with the table's key
//!    attributes of the table's types, no key twice), the chain checked ([`chain::check`]), the
//!    write mode settled (a table that holds items needs one), the plan saved (`restore.json`:
//!    the verified files in shards), the table created if asked; a problem is refused naming
//!    the file, and nothing is written;
//! 2. [`shards`]: every data file restored (`crate::pipeline::restore`), the exports one after
//!    the other, each file recorded once all its writes went through;
//! 3. the report, summed from the records, saved: the same request (its client token) returns
//!    it from then on.

mod chain;
mod prepare;
mod request;
mod shards;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;

pub use prepare::DEFAULT_FILES_PER_SHARD;
pub use request::*;

use crate::error::ExportError;
use crate::io::aws::AwsClients;
use crate::io::destination::{Destination, S3Options, Target};
use crate::io::dynamodb::Table;
use crate::io::table_writer::TableWriter;
use crate::model::{Field, SchemaBilling};
use crate::pipeline::capacity::CapacityBudget;
use crate::pipeline::progress::{self, ProgressStyle};
use crate::pipeline::restore::{RestoreFigures, RestoreTally};
use crate::runtime::ComponentRuntime;
use crate::state::checkpoint;
use crate::state::keys;
use crate::state::restore::RestoreRun;
use prepare::{Planned, Prepared, prepare};
use shards::Writing;

/// Runs a restore to the end (or until `stop` is set: the files in flight stop, and a run
/// with the same request carries on from the recorded ones).
pub async fn run(
    aws: &AwsClients,
    runtime: &ComponentRuntime,
    request: &RestoreRequest,
    stop: Arc<AtomicBool>,
) -> Result<RestoreReport, ExportError> {
    request.validate()?;
    let planned = match prepare(aws, runtime, request, DEFAULT_FILES_PER_SHARD).await? {
        Prepared::Finished(report, _) => return Ok(report),
        Prepared::Ready(planned) => planned,
    };
    let Planned { state, prefix, state_location, token, run, billing } = *planned;
    let all: Vec<u32> = run.shards.iter().map(|s| s.id).collect();
    let options = WriterOptions {
        write_limit: request.write_limit,
        requests: request.parallelism,
        progress: request.progress.clone(),
        progress_interval: request.progress_interval,
    };
    let resumed = write(aws, runtime, &state, &prefix, &run, &all, billing, &options, false, stop).await?;
    let report = shards::report(&state, &prefix, &token, &state_location, &run, resumed).await?;
    checkpoint::save(&state, &keys::restore_report_key(&prefix), &report).await?;
    Ok(report)
}

/// How a run or a worker writes.
#[derive(Debug, Clone)]
pub struct WriterOptions {
    pub write_limit: WriteLimit,
    /// Write requests in flight. Default: [`DEFAULT_REQUESTS`].
    pub requests: Option<u32>,
    pub progress: ProgressStyle,
    pub progress_interval: std::time::Duration,
}

/// Writes `shards` of the plan; returns the data files an earlier run had recorded.
#[allow(clippy::too_many_arguments)]
async fn write(
    aws: &AwsClients,
    runtime: &ComponentRuntime,
    state: &Destination,
    prefix: &str,
    run: &RestoreRun,
    shards: &[u32],
    billing: SchemaBilling,
    options: &WriterOptions,
    check_unchanged: bool,
    stop: Arc<AtomicBool>,
) -> Result<u64, ExportError> {
    let budget = options.write_limit.budget(&run.table, billing)?.map(|wcu| Arc::new(CapacityBudget::new(wcu)));
    let chosen: Vec<_> = run.shards.iter().filter(|s| shards.contains(&s.id)).collect();
    let files: u64 = chosen.iter().map(|s| s.files.len() as u64).sum();
    let items: u64 = chosen.iter().flat_map(|s| s.files.iter().map(|f| run.plan[s.export].files[*f].items)).sum();
    let tally = Arc::new(RestoreTally::new(files, items));
    let cancelled = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (stop, cancelled) = (stop.clone(), cancelled.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            cancelled.store(true, Ordering::Relaxed);
        })
    };
    let writing = Writing {
        runtime: runtime.clone(),
        writer: TableWriter::new(aws.dynamodb.clone(), run.table.clone()),
        writes: WriteMode::from_words(&run.writes),
        budget,
        requests: options.requests.unwrap_or(DEFAULT_REQUESTS),
        check_unchanged,
        tally: tally.clone(),
        cancelled,
    };
    let shown = progress::show_counters(tally, options.progress.clone(), options.progress_interval);
    let written = shards::restore_shards(&writing, state, prefix, run, shards).await;
    watcher.abort();
    drop(shown);
    match written {
        Err(ExportError::Cancelled) if stop.load(Ordering::Relaxed) => Err(ExportError::Interrupted),
        other => other,
    }
}

/// What [`plan`] fixed: where the restore's state is, and its shards in the order they may
/// run (every shard of a stage at once; a stage once the ones before it have finished).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RestorePlan {
    pub client_token: String,
    pub table: String,
    /// The restore's state folder: what `restore-shard --plan` and `restore-finalize --plan`
    /// take.
    pub restore_location: String,
    /// Each export's shards: stage 1 is the full export's, then one stage per incremental one.
    pub stages: Vec<Vec<u32>>,
    pub shards: Vec<u32>,
    /// Whether the restore has finished already (its report is there).
    pub finished: bool,
}

/// Fan-out, step 1: prepares a restore (verified, chained, its table created if asked, its
/// plan saved) and writes nothing; `files_per_shard` data files to a shard.
pub async fn plan(
    aws: &AwsClients,
    runtime: &ComponentRuntime,
    request: &RestoreRequest,
    files_per_shard: usize,
) -> Result<RestorePlan, ExportError> {
    request.validate()?;
    if files_per_shard == 0 {
        return Err(ExportError::InvalidArgument {
            field: Field::Shard,
            message: "a shard holds at least one file".into(),
        });
    }
    let (planned, finished) = match prepare(aws, runtime, request, files_per_shard).await? {
        Prepared::Finished(_, planned) => (planned, true),
        Prepared::Ready(planned) => (planned, false),
    };
    let run = &planned.run;
    let mut stages: Vec<Vec<u32>> = vec![Vec::new(); run.plan.len()];
    for shard in &run.shards {
        stages[shard.export].push(shard.id);
    }
    stages.retain(|stage| !stage.is_empty());
    Ok(RestorePlan {
        client_token: planned.token.clone(),
        table: run.table.clone(),
        restore_location: planned.state_location.clone(),
        stages,
        shards: run.shards.iter().map(|s| s.id).collect(),
        finished,
    })
}

/// What one [`run_shard`] did.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RestoreShardReport {
    pub shard: u32,
    /// Data files an earlier run of the shard had finished.
    pub resumed_data_files: u64,
    #[serde(flatten)]
    pub figures: RestoreFigures,
}

/// Fan-out, step 2: restores one shard of a planned restore, on any machine; files an earlier
/// run finished are not written again, and each file is checked to be as it was verified.
/// Refused while the shards of an earlier export of the chain are unfinished.
pub async fn run_shard(
    aws: &AwsClients,
    runtime: &ComponentRuntime,
    restore_location: &str,
    shard: u32,
    options: &WriterOptions,
    stop: Arc<AtomicBool>,
) -> Result<RestoreShardReport, ExportError> {
    let (state, prefix) = open_state(aws, restore_location).await?;
    let run = prepare::load_run(&state, &prefix).await?;
    let table = Table::new(aws.dynamodb.clone(), aws.region.clone(), run.table.clone()).describe().await?;
    let billing = table.schema.map_or(SchemaBilling::OnDemand, |s| s.billing);
    let resumed = write(aws, runtime, &state, &prefix, &run, &[shard], billing, options, true, stop).await?;
    let done = shards::recorded(&state, &prefix).await?;
    let mut figures = RestoreFigures::default();
    if let Some(planned) = run.shards.iter().find(|s| s.id == shard) {
        let files = planned.files.iter().map(|f| (planned.export, *f));
        let (counts, counted) = shards::recorded_counts(&state, &prefix, &done, files).await?;
        figures = RestoreFigures::of_records(counts, counted, planned.files.len() as u64, 0.0);
    }
    Ok(RestoreShardReport { shard, resumed_data_files: resumed, figures })
}

/// Fan-out, step 3: once every shard has finished, the restore's report (saved, so that the
/// same request returns it); refused, naming them, while shards are unfinished.
pub async fn finalize(aws: &AwsClients, restore_location: &str) -> Result<RestoreReport, ExportError> {
    let (state, prefix) = open_state(aws, restore_location).await?;
    let report_key = keys::restore_report_key(&prefix);
    if let Some(report) = checkpoint::load::<RestoreReport>(&state, &report_key).await? {
        return Ok(report);
    }
    let run = prepare::load_run(&state, &prefix).await?;
    let location = state.locate(&prefix);
    let report = shards::report(&state, &prefix, &run.client_token, &location, &run, 0).await?;
    checkpoint::save(&state, &report_key, &report).await?;
    Ok(report)
}

/// The restore state folder `location` names (a plan's `RestoreLocation`), and its prefix.
async fn open_state(aws: &AwsClients, location: &str) -> Result<(Destination, String), ExportError> {
    let target = Target::parse(location).map_err(|e| match e {
        ExportError::InvalidArgument { message, .. } => ExportError::InvalidArgument { field: Field::Plan, message },
        other => other,
    })?;
    let state = Destination::open_existing(&target, &aws.s3, &S3Options::default()).await?;
    let prefix = match state.prefix() {
        Some(prefix) if !prefix.is_empty() => format!("{}/", prefix.trim_end_matches('/')),
        _ => String::new(),
    };
    Ok((state, prefix))
}
