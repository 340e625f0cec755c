//! `ddb-export restore`: exports (ours or AWS's, DYNAMODB_JSON or ION; a full export, then
//! incremental ones) back into a table, new or existing.
//!
//! In order, so that nothing is written from an export that is not what its manifests say:
//! 1. the exports are found ([`chain::locate`]) and the table described (or, with
//!    `create_table`, created from the source's saved description or the given key);
//! 2. every export is verified as `verify` does it (ETags, MD5s, counts, every line parsing,
//!    every item with the table's key attributes of the table's types, no key twice), and the
//!    chain checked ([`chain::check`]): a problem is refused naming the file, and nothing is
//!    written;
//! 3. into a table that holds items, only with a write mode that says what to do with them;
//! 4. the restore's state is saved (`crate::state::restore`), then every data file is
//!    restored (`crate::pipeline::restore`), the exports one after the other, each one's files
//!    in parallel, each file recorded once all its writes went through;
//! 5. the report is saved: the same request (its client token) returns it from then on.

mod chain;
mod request;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

pub use request::*;

use crate::error::ExportError;
use crate::io::aws::AwsClients;
use crate::io::destination::{Destination, S3Options};
use crate::io::dynamodb::Table;
use crate::io::table_writer::TableWriter;
use crate::lifecycle::verify::{self, VerifiedExport};
use crate::model::{Field, KeyAttribute, SchemaBilling, TableSchema};
use crate::pipeline::capacity::CapacityBudget;
use crate::pipeline::progress;
use crate::pipeline::restore::{FileCounts, FileToRestore, RestoreContext, RestoreTally, restore_file};
use crate::runtime::ComponentRuntime;
use crate::state::checkpoint::{self, RunState};
use crate::state::restore::{RESTORE_STATE_VERSION, RestoreRun, RestoredFile};
use chain::Link;

/// Runs a restore to the end (or until `stop` is set: the files in flight stop, and a run
/// with the same request carries on from the recorded ones).
pub async fn run(
    aws: &AwsClients,
    runtime: &ComponentRuntime,
    request: &RestoreRequest,
    stop: Arc<AtomicBool>,
) -> Result<RestoreReport, ExportError> {
    request.validate()?;
    let links = chain::locate(&request.from).await?;
    // The exports' identities, for the token and the state: their ARNs from their summaries.
    let mut arns = Vec::new();
    for link in &links {
        arns.push(export_arn(link).await?);
    }
    let token = match &request.client_token {
        Some(token) => token.clone(),
        None => derived_token(&arns, &request.table),
    };
    let (state, base) = match &request.state {
        Some(target) => {
            let destination = Destination::open(target, &aws.s3, &S3Options::default()).await?;
            let base = destination.prefix().unwrap_or_default();
            (destination, base)
        }
        None => {
            let first = &links[0];
            let root = crate::model::layout::export_root(first.destination.prefix().as_deref(), &first.export_id);
            (first.destination.clone(), root)
        }
    };
    let prefix = checkpoint::restore_prefix(&base, &token);
    let state_location = state.locate(&prefix);
    if let Some(report) = checkpoint::load::<RestoreReport>(&state, &checkpoint::restore_report_key(&prefix)).await? {
        tracing::info!("restore {token} finished earlier (its report is at {state_location}); nothing to do");
        return Ok(report);
    }
    let earlier = checkpoint::load::<RestoreRun>(&state, &checkpoint::restore_run_key(&prefix)).await?;

    let writer = TableWriter::new(aws.dynamodb.clone(), request.table.clone());
    let created_earlier = earlier.as_ref().is_some_and(|run| run.created_table);
    let described = Table::new(aws.dynamodb.clone(), aws.region.clone(), request.table.clone());
    let existing = match described.describe().await {
        Ok(_) if request.create_table && !created_earlier => {
            return Err(ExportError::InvalidArgument {
                field: Field::CreateTable,
                message: format!("table {} exists; leave out {} to restore into it", request.table, Field::CreateTable),
            });
        }
        Ok(info) => Some(info),
        Err(ExportError::TableNotFound { .. }) if request.create_table => None,
        Err(ExportError::TableNotFound { table, region }) => {
            return Err(ExportError::InvalidArgument {
                field: Field::Table,
                message: format!("table {table} does not exist in {region}; give {} to create it", Field::CreateTable),
            });
        }
        Err(other) => return Err(other),
    };
    // The table's schema: as it is, or as it will be created.
    let schema = match &existing {
        Some(info) => info.schema.clone(),
        None => Some(new_table_schema(request, &links[0]).await?),
    };
    let key: Vec<KeyAttribute> = match (&schema, &existing) {
        (Some(schema), _) => schema.key.clone(),
        (None, Some(info)) => info.key_attributes.iter().cloned().map(KeyAttribute::untyped).collect(),
        (None, None) => Vec::new(),
    };

    let mut verified = Vec::new();
    for link in &links {
        verified.push(verified_export(runtime, link, &key).await?);
    }
    let chain: Vec<(&str, &VerifiedExport)> = links.iter().map(|l| l.location.as_str()).zip(verified.iter()).collect();
    chain::check(&chain)?;

    let writes = match (&request.writes, &earlier) {
        (WriteMode::Default, Some(run)) => recorded_mode(&run.writes),
        (WriteMode::Default, None) if existing.is_some() && writer.holds_items().await? => {
            return Err(ExportError::InvalidArgument {
                field: Field::Writes,
                message: format!(
                    "table {} holds items, which a restore would overwrite; say how to treat them: {}",
                    request.table,
                    Field::Writes
                ),
            });
        }
        (mode, _) => mode.clone(),
    };
    // Saved before the table is created: a run that carries on after a crash in between
    // finds the table it made, and knows it.
    let run = RestoreRun {
        version: RESTORE_STATE_VERSION,
        exports: arns,
        table: request.table.clone(),
        writes: writes.in_words(),
        created_table: existing.is_none() || created_earlier,
        started_ms: crate::model::time::now_ms(),
    };
    match &earlier {
        Some(before) => {
            let differences = before.differences(&run);
            if !differences.is_empty() {
                return Err(ExportError::InvalidArgument {
                    field: Field::ClientToken,
                    message: format!(
                        "restore {token} was started with other settings ({}); give another {} to start a new one",
                        differences.join("; "),
                        Field::ClientToken
                    ),
                });
            }
        }
        None => checkpoint::save(&state, &checkpoint::restore_run_key(&prefix), &run).await?,
    }
    if existing.is_none()
        && let Some(schema) = &schema
    {
        tracing::info!("creating table {} (key {})", request.table, key_in_words(&schema.key));
        writer.create(schema, request.indexes).await?;
    }

    let billing = schema.as_ref().map_or(SchemaBilling::OnDemand, |s| s.billing);
    let budget = request.write_limit.budget(&request.table, billing)?.map(|wcu| Arc::new(CapacityBudget::new(wcu)));
    let files: u64 = verified.iter().map(|v| v.files.len() as u64).sum();
    let items: u64 = verified.iter().map(|v| v.summary.item_count).sum();
    let tally = Arc::new(RestoreTally::new(files, items));
    let requests = request.parallelism.unwrap_or(DEFAULT_REQUESTS);
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
    let _shown = progress::show_counters(tally.clone(), request.progress.clone(), request.progress_interval);
    let mut resumed = 0;
    let mut outcome = Ok(());
    for (index, (link, export)) in links.iter().zip(&verified).enumerate() {
        let ctx = RestoreContext {
            destination: link.destination.clone(),
            runtime: runtime.clone(),
            writer: writer.clone(),
            key: key.clone(),
            condition: writes.condition(),
            budget: budget.clone(),
            requests: Arc::new(Semaphore::new(requests as usize)),
            tally: tally.clone(),
            cancelled: cancelled.clone(),
        };
        match restore_export(&ctx, &state, &prefix, index, export, requests).await {
            Ok(found) => resumed += found,
            Err(error) => {
                outcome = Err(error);
                break;
            }
        }
    }
    watcher.abort();
    drop(_shown);
    match outcome {
        Err(ExportError::Cancelled) if stop.load(Ordering::Relaxed) => return Err(ExportError::Interrupted),
        Err(error) => return Err(error),
        Ok(()) => {}
    }
    let report = RestoreReport {
        client_token: token,
        table: request.table.clone(),
        exports: links.iter().map(|l| l.location.clone()).collect(),
        writes: writes.in_words(),
        created_table: run.created_table,
        state: state_location,
        resumed_data_files: resumed,
        figures: tally.figures().into(),
    };
    checkpoint::save(&state, &checkpoint::restore_report_key(&prefix), &report).await?;
    Ok(report)
}

/// The export's ARN, from its summary (an export without one is not complete).
async fn export_arn(link: &Link) -> Result<String, ExportError> {
    let keys = crate::model::layout::export_keys(link.destination.prefix().as_deref(), &link.export_id, false);
    let summary = link.destination.get(&keys.manifest_summary).await?.ok_or_else(|| ExportError::Verification {
        location: link.location.clone(),
        message: "it has no manifest-summary.json: the export is not complete (or not there)".into(),
    })?;
    crate::model::summary::ManifestSummary::parse(&summary).map(|s| s.export_arn).map_err(|message| {
        ExportError::Verification { location: link.destination.locate(&keys.manifest_summary), message }
    })
}

/// A token for the request that names none: the same exports into the same table are the same
/// restore, which a rerun carries on.
fn derived_token(arns: &[String], table: &str) -> String {
    let mut hash = Sha256::new();
    for arn in arns {
        hash.update(arn.as_bytes());
        hash.update([0]);
    }
    hash.update(table.as_bytes());
    format!("restore-{}", &crate::model::checksum::hex(&hash.finalize())[..32])
}

fn recorded_mode(words: &str) -> WriteMode {
    match words.split_once(' ') {
        Some(("if-older", attribute)) => WriteMode::IfOlder(attribute.to_string()),
        _ if words == "if-absent" => WriteMode::IfAbsent,
        _ => WriteMode::Overwrite,
    }
}

/// The schema a new table gets: the given key, else the source table's as the export's saved
/// state records it; the given billing, else the source's.
async fn new_table_schema(request: &RestoreRequest, first: &Link) -> Result<TableSchema, ExportError> {
    let root = crate::model::layout::export_root(first.destination.prefix().as_deref(), &first.export_id);
    let saved = checkpoint::load::<RunState>(&first.destination, &checkpoint::run_key(&root))
        .await
        .ok()
        .flatten()
        .and_then(|state| state.table_schema);
    let mut schema = match (&request.key, saved) {
        (Some(key), saved) => TableSchema {
            key: key.clone(),
            billing: saved.as_ref().map_or(SchemaBilling::OnDemand, |s| s.billing),
            indexes: Vec::new(),
        },
        (None, Some(saved)) => saved,
        (None, None) => {
            return Err(ExportError::InvalidArgument {
                field: Field::Key,
                message: format!(
                    "{} holds no description of its table (an export by AWS, or by an older ddb-export); give the \
                     new table's key with {}",
                    first.location,
                    Field::Key
                ),
            });
        }
    };
    if let Some(billing) = request.billing {
        schema.billing = billing;
    }
    Ok(schema)
}

fn key_in_words(key: &[KeyAttribute]) -> String {
    key.iter()
        .map(|k| format!("{}:{}", k.name, k.key_type.map_or("?", |t| t.aws_name())))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Verifies one export against the table's key; refused, naming what is wrong, unless it holds.
async fn verified_export(
    runtime: &ComponentRuntime,
    link: &Link,
    key: &[KeyAttribute],
) -> Result<VerifiedExport, ExportError> {
    let (report, verified) = verify::check(&link.destination, runtime, &link.export_id, Some(key.to_vec())).await?;
    let Some(verified) = verified else {
        let shown: Vec<&str> = report.problems.iter().take(5).map(String::as_str).collect();
        let more = report.problems.len().saturating_sub(shown.len());
        let more = if more > 0 { format!(" (and {more} more: run `ddb-export verify`)") } else { String::new() };
        return Err(ExportError::Verification {
            location: link.location.clone(),
            message: format!("the export does not verify, so nothing was written: {}{more}", shown.join("; ")),
        });
    };
    if verified.format.is_none() {
        return Err(ExportError::Verification {
            location: link.location.clone(),
            message: format!(
                "its outputFormat {} is an encoder plugin's; restore reads DYNAMODB_JSON and ION (plugins have no \
                 decoder yet)",
                verified.summary.output_format
            ),
        });
    }
    Ok(verified)
}

/// Restores one export's data files, `requests` writes in flight; returns how many of them an
/// earlier run had finished.
async fn restore_export(
    ctx: &RestoreContext,
    state: &Destination,
    prefix: &str,
    index: usize,
    export: &VerifiedExport,
    requests: u32,
) -> Result<u64, ExportError> {
    let Some(format) = export.format else { return Ok(0) };
    let export_type = export.summary.export_type().to_string();
    let done_prefix = format!("{prefix}files/");
    let recorded: std::collections::HashSet<String> =
        state.list(&done_prefix).await?.into_iter().map(|listed| listed.key).collect();
    let mut resumed = 0;
    let mut pending = Vec::new();
    for (number, (key, listed)) in export.files.iter().enumerate() {
        let record_key = checkpoint::restored_file_key(prefix, index, number);
        if recorded.contains(&record_key)
            && let Some(record) = checkpoint::load::<RestoredFile>(state, &record_key).await?
            && record.key == *key
            && record.etag == listed.etag
        {
            ctx.tally.file_done(Some(FileCounts {
                puts: record.puts,
                deletes: record.deletes,
                skipped: record.skipped,
            }));
            resumed += 1;
            continue;
        }
        pending.push((
            record_key,
            FileToRestore { key: key.clone(), format, export_type: export_type.clone() },
            listed.etag.clone(),
        ));
    }
    // Files at once: enough to keep the requests busy, no more than there are.
    let lanes = (requests as usize).clamp(1, 16).min(pending.len().max(1));
    let mut tasks = JoinSet::new();
    let mut pending = pending.into_iter();
    let mut first_error = None;
    loop {
        while tasks.len() < lanes && first_error.is_none() && !ctx.cancelled.load(Ordering::Relaxed) {
            let Some((record_key, file, etag)) = pending.next() else { break };
            let (ctx, state) = (ctx.clone(), state.clone());
            tasks.spawn(async move {
                let counts = restore_file(&ctx, &file).await?;
                let record = RestoredFile {
                    key: file.key.clone(),
                    etag,
                    puts: counts.puts,
                    deletes: counts.deletes,
                    skipped: counts.skipped,
                };
                checkpoint::save(&state, &record_key, &record).await?;
                ctx.tally.file_done(None);
                Ok::<(), ExportError>(())
            });
        }
        let Some(joined) = tasks.join_next().await else { break };
        let result = joined.map_err(|e| ExportError::Internal(format!("a restore task failed: {e}"))).and_then(|r| r);
        if let Err(error) = result {
            ctx.cancelled.store(true, Ordering::Relaxed);
            if first_error.as_ref().is_none_or(|e| matches!(e, ExportError::Cancelled)) {
                first_error = Some(error);
            }
        }
    }
    match first_error {
        Some(error) => Err(error),
        None if ctx.cancelled.load(Ordering::Relaxed) => Err(ExportError::Cancelled),
        None => Ok(resumed),
    }
}
