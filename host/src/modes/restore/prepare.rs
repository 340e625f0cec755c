//! A restore's first step, whatever runs the rest: the exports found and verified, the chain
//! checked, the table described (or created), the write mode settled, and the plan saved
//! (`restore.json`: the verified data files and their shards) before the first write.

use sha2::{Digest, Sha256};

use super::chain::{self, Link};
use super::request::{RestoreReport, RestoreRequest, WriteMode};
use crate::error::ExportError;
use crate::io::aws::AwsClients;
use crate::io::destination::{Destination, S3Options};
use crate::io::dynamodb::Table;
use crate::io::table_writer::TableWriter;
use crate::lifecycle::verify::{self, VerifiedExport};
use crate::model::{Field, KeyAttribute, SchemaBilling, TableSchema};
use crate::runtime::ComponentRuntime;
use crate::state::checkpoint::{self, RunState};
use crate::state::keys;
use crate::state::restore::{PlannedExport, PlannedFile, PlannedShard, RESTORE_STATE_VERSION, RestoreRun};

/// Data files a shard holds when the request does not say.
pub const DEFAULT_FILES_PER_SHARD: usize = 8;

/// A restore, prepared.
pub enum Prepared {
    /// It finished earlier: its report, and its plan.
    Finished(RestoreReport, Box<Planned>),
    /// Ready to write.
    Ready(Box<Planned>),
}

/// What the steps after the first need.
pub struct Planned {
    /// Where the restore's state is, and its folder's prefix there.
    pub state: Destination,
    pub prefix: String,
    pub state_location: String,
    pub token: String,
    pub run: RestoreRun,
    /// The table's billing (for the default write budget).
    pub billing: SchemaBilling,
}

/// The first step. `files_per_shard`: how many data files a shard of the plan holds.
pub async fn prepare(
    aws: &AwsClients,
    runtime: &ComponentRuntime,
    request: &RestoreRequest,
    files_per_shard: usize,
) -> Result<Prepared, ExportError> {
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
    let prefix = keys::restore_prefix(&base, &token);
    let state_location = state.locate(&prefix);
    if let Some(report) = checkpoint::load::<RestoreReport>(&state, &keys::restore_report_key(&prefix)).await? {
        tracing::info!("restore {token} finished earlier (its report is at {state_location}); nothing to do");
        let run = load_run(&state, &prefix).await?;
        let billing = SchemaBilling::OnDemand;
        return Ok(Prepared::Finished(
            report,
            Box::new(Planned { state, prefix, state_location, token, run, billing }),
        ));
    }
    let earlier = checkpoint::load::<RestoreRun>(&state, &keys::restore_run_key(&prefix)).await?;

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
        (WriteMode::Default, Some(run)) => WriteMode::from_words(&run.writes),
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
    let plan: Vec<PlannedExport> = links
        .iter()
        .zip(&verified)
        .filter_map(|(link, export)| {
            Some(PlannedExport {
                location: link.location.clone(),
                format: export.format?,
                export_type: export.summary.export_type().to_string(),
                files: export
                    .files
                    .iter()
                    .map(|(key, listed)| PlannedFile {
                        key: key.clone(),
                        etag: listed.etag.clone(),
                        md5: listed.md5.clone(),
                        items: listed.item_count,
                    })
                    .collect(),
            })
        })
        .collect();
    let shards = shard_plan(&plan, files_per_shard);
    let run = RestoreRun {
        version: RESTORE_STATE_VERSION,
        client_token: token.clone(),
        exports: arns,
        table: request.table.clone(),
        writes: writes.in_words(),
        created_table: existing.is_none() || created_earlier,
        started_ms: crate::model::time::now_ms(),
        key: key.clone(),
        plan,
        shards,
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
        None => checkpoint::save(&state, &keys::restore_run_key(&prefix), &run).await?,
    }
    // What a run carries on with is what was planned (its verified files and shards).
    let run = earlier.unwrap_or(run);
    if existing.is_none()
        && let Some(schema) = &schema
    {
        tracing::info!("creating table {} (key {})", request.table, key_in_words(&schema.key));
        writer.create(schema, request.indexes).await?;
    } else if created_earlier {
        // Made by an earlier run, which may have stopped while it was still being created.
        writer.wait_active().await?;
    }
    let billing = schema.as_ref().map_or(SchemaBilling::OnDemand, |s| s.billing);
    Ok(Prepared::Ready(Box::new(Planned { state, prefix, state_location, token, run, billing })))
}

/// Each export's files in groups of `files_per_shard`, in order; a shard never spans exports.
fn shard_plan(plan: &[PlannedExport], files_per_shard: usize) -> Vec<PlannedShard> {
    let mut shards = Vec::new();
    for (export, planned) in plan.iter().enumerate() {
        let indexes: Vec<usize> = (0..planned.files.len()).collect();
        for group in indexes.chunks(files_per_shard.max(1)) {
            shards.push(PlannedShard { id: shards.len() as u32, export, files: group.to_vec() });
        }
    }
    shards
}

/// The export's ARN, from its summary (an export without one is not complete).
async fn export_arn(link: &Link) -> Result<String, ExportError> {
    let layout = crate::model::layout::export_keys(link.destination.prefix().as_deref(), &link.export_id, false);
    let summary = link.destination.get(&layout.manifest_summary).await?.ok_or_else(|| ExportError::Verification {
        location: link.location.clone(),
        message: "it has no manifest-summary.json: the export is not complete (or not there)".into(),
    })?;
    crate::model::summary::ManifestSummary::parse(&summary).map(|s| s.export_arn).map_err(|message| {
        ExportError::Verification { location: link.destination.locate(&layout.manifest_summary), message }
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

/// The `restore.json` at a restore's state folder; refused, naming it, when there is none.
pub async fn load_run(state: &Destination, prefix: &str) -> Result<RestoreRun, ExportError> {
    let key = keys::restore_run_key(prefix);
    checkpoint::load::<RestoreRun>(state, &key).await?.ok_or_else(|| ExportError::InvalidArgument {
        field: Field::Plan,
        message: format!("{} holds no restore (no restore.json)", state.locate(prefix)),
    })
}

/// The schema a new table gets: the given key, else the source table's as the export's saved
/// state records it; the given billing, else the source's.
async fn new_table_schema(request: &RestoreRequest, first: &Link) -> Result<TableSchema, ExportError> {
    let root = crate::model::layout::export_root(first.destination.prefix().as_deref(), &first.export_id);
    let saved = checkpoint::load::<RunState>(&first.destination, &keys::run_key(&root))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ExportFormat;

    #[test]
    fn shards_group_one_export_s_files_in_order() {
        let export = |files: usize| PlannedExport {
            location: "x".into(),
            format: ExportFormat::DynamodbJson,
            export_type: "FULL_EXPORT".into(),
            files: (0..files)
                .map(|i| PlannedFile { key: format!("k{i}"), etag: String::new(), md5: String::new(), items: 1 })
                .collect(),
        };
        let shards = shard_plan(&[export(5), export(0), export(2)], 2);
        let groups: Vec<(u32, usize, Vec<usize>)> = shards.into_iter().map(|s| (s.id, s.export, s.files)).collect();
        assert_eq!(groups, vec![(0, 0, vec![0, 1]), (1, 0, vec![2, 3]), (2, 0, vec![4]), (3, 2, vec![0, 1])]);
    }
}
