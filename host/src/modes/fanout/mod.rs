//! Fan-out: one export as separate steps that run as separate processes, on any machines, in
//! any order, under a workflow engine (Argo, Step Functions, Airflow; `examples/workflows`).
//!
//! - [`plan`] runs the component's `snapshot` and `shard-plan` steps and records the export at
//!   its destination (`_started` and the saved state, as a normal export does), and returns an
//!   [`ExportPlan`]: the export's location and its shard ids, for a workflow's map step.
//! - [`run_shard`] runs one shard of it, from its checkpoint; a shard already finished is not
//!   read again, so a retried or duplicated task is harmless.
//! - [`finalize`] checks that every shard finished, checks the stored data files, and writes
//!   the manifests (the summary last), as a single-run export ends.
//!
//! The destination is the only thing the steps share: a worker needs the plan's location (or
//! the plan file), the same component and encoder plugin, and credentials; nothing else. The
//! export is the same, object for object, as a single run of the same settings would write.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use serde::{Deserialize, Serialize};

use crate::error::ExportError;
use crate::io::aws::AwsClients;
use crate::io::destination::{Destination, S3Options};
use crate::io::dynamodb::Table;
use crate::lifecycle::{self, Claim, EarlierRun, ExportFailure, ExportReport, ExportRequest, ReadLimit};
use crate::model::{Field, Snapshot};
use crate::pipeline::capacity::CapacityBudget;
use crate::pipeline::progress::{Progress, ProgressStyle};
use crate::pipeline::shard::{self, ShardContext};
use crate::runtime::ComponentRuntime;
use crate::state::checkpoint::{self, RunState, ShardCheckpoint};
use crate::state::keys;
use crate::state::lease::{Lease, LeaseScope};

pub mod component;
mod location;

pub use location::PlanLocation;

/// Version of [`ExportPlan`]'s layout.
pub const PLAN_VERSION: u32 = 1;

/// What `ddb-export plan` prints: where the export is and which shards it has. Workers take
/// this file, or just its `exportLocation`, as `--plan`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportPlan {
    pub plan_version: u32,
    pub export_arn: String,
    pub export_id: String,
    /// The export's folder: `s3://bucket/prefix/AWSDynamoDB/<export id>` or a directory.
    pub export_location: String,
    /// The table's ARN.
    pub table_arn: String,
    /// `--s3-bucket-owner` and `--s3-sse-kms-key-id` as planned: a worker given this file
    /// checks the export's saved state against them (and sends the owner with every request).
    #[serde(default)]
    pub s3_bucket_owner: Option<String>,
    #[serde(default)]
    pub s3_sse_kms_key_id: Option<String>,
    /// The shard ids to pass to `run-shard --shard`, one task each.
    pub shards: Vec<u32>,
    /// `IN_PROGRESS`, or `COMPLETED` when the client token names an export already complete.
    pub export_status: String,
}

/// What one `run-shard` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShardReport {
    pub export_arn: String,
    pub shard: u32,
    /// `COMPLETED` (by this run) or `ALREADY_COMPLETED` (by an earlier one: nothing was read).
    pub status: String,
    /// The shard's items and data files; `None` when the whole export is already complete
    /// (its checkpoints are gone; the summary has the totals).
    pub item_count: Option<u64>,
    pub data_files: Option<usize>,
}

/// Plans an export for fan-out: the same checks, identity and saved state as `lifecycle::run`,
/// and no data file. With a client token that started this export before, the same plan is
/// returned (and a conflict of settings refused). The consistent mode and incremental exports
/// are refused: their steps span every shard.
pub async fn plan(
    aws: &AwsClients,
    runtime: &ComponentRuntime,
    request: &ExportRequest,
) -> Result<ExportPlan, ExportFailure> {
    request.validate()?;
    if request.resume.is_some() {
        return Err(ExportError::InvalidArgument {
            field: Field::Resume,
            message: "a planned export resumes by running its unfinished shards again".into(),
        }
        .into());
    }
    let request = &*lifecycle::resolve_settings(aws, request).await?;
    lifecycle::check_encoder(request, runtime)?;
    if request.incremental.is_some() || request.consistent() {
        let field = if request.consistent() { Field::Consistent } else { Field::Incremental };
        return Err(ExportError::InvalidArgument {
            field,
            message: "is not available for fan-out (plan/run-shard/finalize); run `ddb-export export`".into(),
        }
        .into());
    }
    let table = Table::new(aws.dynamodb.clone(), aws.region.clone(), request.table.clone())
        .with_filter(request.scan_filter.clone());
    let info = table.describe().await?;
    table.check_filter().await?;
    let destination = Destination::open(&request.target, &aws.s3, &request.s3).await?;
    destination.check().await?;
    let fingerprint = lifecycle::fingerprint(request, &info, &destination, runtime);
    let (state, status) = match lifecycle::claim(&destination, request, &info, &fingerprint, &aws.region).await? {
        Claim::Complete(state, _) => (state, "COMPLETED"),
        Claim::Unfinished(state, lease) => {
            lease.release().await;
            if !state.fanout {
                return Err(ExportError::InvalidArgument {
                    field: Field::ClientToken,
                    message: format!(
                        "it started export {} with `ddb-export export`, which resumes it (run the same command \
                         again)",
                        state.snapshot.export_id
                    ),
                }
                .into());
            }
            (state, "IN_PROGRESS")
        }
        Claim::New(token_lease) => {
            let stop = AtomicBool::new(false);
            let started = lifecycle::start(
                lifecycle::Starting {
                    runtime,
                    destination: &destination,
                    request,
                    info: &info,
                    fingerprint,
                    region: &aws.region,
                    start_time_ms: crate::model::time::now_ms(),
                    plan: lifecycle::Planning::Segments { fanout: true },
                },
                &stop,
            )
            .await;
            if let Some(lease) = token_lease {
                lease.release().await;
            }
            // The workers take their shards' leases; the export's is finalize's.
            let (state, lease) = started?;
            lease.release().await;
            (state, "IN_PROGRESS")
        }
    };
    tracing::info!(
        export = %state.snapshot.export_arn,
        "planned {} shards: {}",
        state.plan.shards.len(),
        state.plan.rationale
    );
    Ok(ExportPlan {
        plan_version: PLAN_VERSION,
        export_arn: state.snapshot.export_arn.clone(),
        export_id: state.snapshot.export_id.clone(),
        export_location: destination.locate(&state.snapshot.keys.root),
        table_arn: state.snapshot.table_arn.clone(),
        s3_bucket_owner: state.snapshot.s3_bucket_owner.clone(),
        s3_sse_kms_key_id: state.snapshot.s3_sse_kms_key_id.clone(),
        shards: state.plan.shards.iter().map(|s| s.id).collect(),
        export_status: status.to_string(),
    })
}

/// A planned export, opened by a worker: its state checked against this worker's component
/// and plugin exactly as a resumed export's is.
struct Opened {
    destination: Destination,
    table: Table,
    info: crate::model::TableInfo,
    earlier: EarlierRun,
    request: ExportRequest,
}

async fn open(aws: &AwsClients, runtime: &ComponentRuntime, at: &PlanLocation) -> Result<Opened, ExportError> {
    let owner = S3Options { expected_owner: at.expected_owner.clone(), kms_key_id: None };
    let reader = Destination::open_existing(&at.target, &aws.s3, &owner).await?;
    let prefix = reader.prefix();
    let root = crate::model::layout::export_root(prefix.as_deref(), &at.export_id);
    let run_key = keys::run_key(&root);
    let Some(state) = checkpoint::load::<RunState>(&reader, &run_key).await? else {
        return Err(ExportError::NotResumable {
            export_id: at.export_id.clone(),
            location: reader.locate(&root),
            message: format!(
                "{} does not exist: was the export planned with `ddb-export plan`?",
                reader.locate(&run_key)
            ),
        });
    };
    at.check(&state).map_err(|message| ExportError::CorruptState { location: reader.locate(&run_key), message })?;
    let saved = &state.fingerprint;
    let asked = ExportRequest {
        resume: Some(at.export_id.clone()),
        client_token: Some(state.snapshot.client_token.clone()),
        progress: ProgressStyle::Off,
        // The table's name: some servers (dynalite) take no ARN. The saved ARN is then
        // checked against the one the server describes, so another account's table of the
        // same name is refused rather than read.
        ..ExportRequest::new(state.snapshot.table_name.clone(), at.target.clone())
    };
    let request = lifecycle::fill_in(&asked, saved);
    if saved.consistent || saved.incremental.is_some() {
        return Err(ExportError::InvalidArgument {
            field: Field::Plan,
            message: format!("export {} was not planned for fan-out; resume it with `ddb-export export`", at.export_id),
        });
    }
    let destination = Destination::open_existing(&request.target, &aws.s3, &request.s3).await?;
    let table = Table::new(aws.dynamodb.clone(), aws.region.clone(), request.table.clone())
        .with_filter(request.scan_filter.clone());
    let info = table.describe().await?;
    let fingerprint = lifecycle::fingerprint(&request, &info, &destination, runtime);
    // Checks the settings this worker runs with (component, plugin, table) against the saved
    // ones, naming each difference, and the saved state against what they give.
    let earlier = lifecycle::find_earlier_run(&destination, &request, &info, &fingerprint, &aws.region, false).await?;
    Ok(Opened { destination, table, info, earlier, request })
}

/// How a worker runs its shard.
#[derive(Debug, Clone)]
pub struct ShardRun {
    /// This worker's own read limit (workers do not share a budget).
    pub read_limit: ReadLimit,
    /// How progress is shown, or handed to an embedding program
    /// (`ProgressStyle::Observe`).
    pub progress: ProgressStyle,
    pub progress_interval: std::time::Duration,
    /// Once set (by a signal handler, say), the shard stops cleanly at its next page: its open
    /// upload aborted, nothing more recorded; run again, it resumes from its checkpoint.
    pub stop: Arc<AtomicBool>,
}

impl ShardRun {
    /// No progress shown, at most `read_limit`.
    pub fn new(read_limit: ReadLimit) -> Self {
        Self {
            read_limit,
            progress: ProgressStyle::Off,
            progress_interval: std::time::Duration::from_secs(10),
            stop: Arc::new(AtomicBool::new(false)),
        }
    }
}

/// Runs one shard of a planned export (`ddb-export run-shard`), from its checkpoint.
pub async fn run_shard(
    aws: &AwsClients,
    runtime: &ComponentRuntime,
    at: &PlanLocation,
    shard_id: u32,
    how: &ShardRun,
) -> Result<ShardReport, ExportError> {
    if how.progress_interval.is_zero() {
        return Err(ExportError::InvalidArgument {
            field: Field::ProgressInterval,
            message: "must be more than 0".into(),
        });
    }
    let opened = open(aws, runtime, at).await?;
    let state = match opened.earlier {
        EarlierRun::Unfinished(state) => state,
        EarlierRun::Complete(state, _) => {
            return Ok(ShardReport {
                export_arn: state.snapshot.export_arn,
                shard: shard_id,
                status: "ALREADY_COMPLETED".into(),
                item_count: None,
                data_files: None,
            });
        }
        EarlierRun::None => return Err(ExportError::Internal("a planned export was not found".into())),
    };
    let Some(shard) = state.plan.shards.iter().find(|s| s.id == shard_id).copied() else {
        return Err(ExportError::InvalidArgument {
            field: Field::Shard,
            message: format!("export {} has shards 0 to {}, not {shard_id}", at.export_id, state.plan.shards.len() - 1),
        });
    };
    if !state.fanout {
        return Err(ExportError::InvalidArgument {
            field: Field::Plan,
            message: format!("export {} was started by `ddb-export export`, which resumes it", at.export_id),
        });
    }
    let destination = opened.destination;
    let snapshot = Arc::new(state.snapshot);
    if let Some(done) = load_checkpoint(&destination, &snapshot, shard.id).await?.filter(|c| c.done) {
        return Ok(already_completed(&snapshot, &done));
    }
    // One live worker per shard; the checkpoint is read again once the lease is held, as
    // another worker may have moved the shard on meanwhile.
    let key = keys::shard_lease_key(&snapshot.keys.root, shard.id);
    let lease = Lease::acquire(&destination, key, LeaseScope::Shard(shard.id)).await?;
    let resume = match load_checkpoint(&destination, &snapshot, shard.id).await {
        Ok(Some(done)) if done.done => {
            lease.release().await;
            return Ok(already_completed(&snapshot, &done));
        }
        Ok(saved) => saved.unwrap_or(ShardCheckpoint { shard: shard.id, ..ShardCheckpoint::default() }),
        Err(error) => {
            lease.release().await;
            return Err(error);
        }
    };
    let request = ExportRequest { read_limit: how.read_limit, ..opened.request };
    let progress = Arc::new(Progress::new(1, None));
    let shown = crate::pipeline::progress::show(progress.clone(), how.progress.clone(), how.progress_interval);
    let cancelled = how.stop.clone();
    let keep_alive = lease.keep_alive(cancelled.clone());
    let outcome = async {
        // Only this shard's own unfinished upload: other workers' uploads are alive.
        if let Some(upload) = &resume.open_upload {
            destination.abort_stale_uploads(&upload.key, &[(upload.key.clone(), upload.upload_id.clone())]).await?;
        }
        let budget = request.read_limit.budget(&opened.info)?.map(|rcu| Arc::new(CapacityBudget::new(rcu)));
        let ctx = ShardContext {
            table: opened.table,
            destination: destination.clone(),
            runtime: runtime.clone(),
            snapshot: snapshot.clone(),
            target_file_bytes: request.target_file_bytes(),
            compression_level: request.compression_level(),
            cancelled,
            budget,
            lanes: 1,
            key_hasher: None,
            progress,
            lease: Some(lease.clone()),
            key_attributes: opened.info.key_attributes.clone().into(),
        };
        shard::run(ctx, shard, resume).await
    }
    .await;
    drop(keep_alive);
    drop(shown);
    let lost = lease.is_lost();
    let taken_over = lease.taken_over();
    lease.release().await;
    let outcome = match outcome {
        Err(ExportError::Cancelled | ExportError::Interrupted) if lost => return Err(taken_over),
        Err(ExportError::Cancelled) => return Err(ExportError::Interrupted),
        outcome => outcome?,
    };
    Ok(ShardReport {
        export_arn: snapshot.export_arn.clone(),
        shard: shard.id,
        status: "COMPLETED".into(),
        item_count: Some(outcome.items),
        data_files: Some(outcome.files.len()),
    })
}

/// The first shard (and what is wrong) whose recorded data files are not in the store as its
/// worker wrote them ([`crate::state::stored`]). A file differs when a worker outlived its lease and
/// wrote on.
async fn overwritten(
    destination: &Destination,
    snapshot: &Snapshot,
    shards: &[&ShardCheckpoint],
) -> Result<Option<(u32, String)>, ExportError> {
    let listing = crate::state::stored::Listing::of(destination, &snapshot.keys.data_prefix).await?;
    // All shards' files in one check (its reads run many at a time), in shard order.
    let files = shards.iter().flat_map(|checkpoint| &checkpoint.files);
    let Some((file, problem)) = listing.first_problem(destination, files).await? else { return Ok(None) };
    let owner = shards.iter().find(|checkpoint| checkpoint.files.iter().any(|f| std::ptr::eq(f, file)));
    Ok(owner.map(|checkpoint| (checkpoint.shard, problem)))
}

/// Shard `shard`'s checkpoint, checked.
async fn load_checkpoint(
    destination: &Destination,
    snapshot: &Snapshot,
    shard: u32,
) -> Result<Option<ShardCheckpoint>, ExportError> {
    let key = keys::shard_key(&snapshot.keys.root, shard);
    let Some(saved) = checkpoint::load::<ShardCheckpoint>(destination, &key).await? else { return Ok(None) };
    let corrupt = |message: String| ExportError::CorruptState { location: destination.locate(&key), message };
    if saved.shard != shard {
        return Err(corrupt(format!("it holds the checkpoint of shard {}", saved.shard)));
    }
    saved.check(snapshot, &mut Default::default()).map_err(corrupt)?;
    Ok(Some(saved))
}

fn already_completed(snapshot: &Snapshot, done: &ShardCheckpoint) -> ShardReport {
    tracing::info!("shard {} of export {} is already complete; nothing to do", done.shard, snapshot.export_id);
    ShardReport {
        export_arn: snapshot.export_arn.clone(),
        shard: done.shard,
        status: "ALREADY_COMPLETED".into(),
        item_count: Some(done.items),
        data_files: Some(done.files.len()),
    }
}

/// Completes a planned export (`ddb-export finalize`) once every shard has finished: checks
/// the stored data files, writes the manifests. Refuses, writing nothing, while any shard has
/// not finished, naming them. An export already complete is returned as it is.
pub async fn finalize(
    aws: &AwsClients,
    runtime: &ComponentRuntime,
    at: &PlanLocation,
) -> Result<ExportReport, ExportFailure> {
    let opened = open(aws, runtime, at).await?;
    let state = match opened.earlier {
        EarlierRun::Complete(state, summary) => {
            return lifecycle::completed_earlier(&opened.destination, state, &summary).await;
        }
        EarlierRun::Unfinished(state) => state,
        EarlierRun::None => return Err(ExportError::Internal("a planned export was not found".into()).into()),
    };
    let destination = opened.destination;
    // One finalize at a time: the export's one writer now.
    let scope = LeaseScope::Export(state.snapshot.export_id.clone());
    let lease = Lease::acquire(&destination, keys::export_lease_key(&state.snapshot.keys.root), scope).await?;
    let report = finalize_held(&destination, runtime, state, &lease).await;
    lease.release().await;
    report
}

/// [`finalize`], once it holds the export's lease.
async fn finalize_held(
    destination: &Destination,
    runtime: &ComponentRuntime,
    state: RunState,
    lease: &Lease,
) -> Result<ExportReport, ExportFailure> {
    let destination = destination.clone();
    let snapshot = &state.snapshot;
    let checkpoints = lifecycle::read_checkpoints(&destination, &state).await?;
    let unfinished: Vec<String> = state
        .plan
        .shards
        .iter()
        .filter(|s| !checkpoints.get(&s.id).is_some_and(|c| c.done))
        .map(|s| s.id.to_string())
        .collect();
    if !unfinished.is_empty() {
        return Err(ExportError::Unfinished {
            export_id: snapshot.export_id.clone(),
            message: format!(
                "{} of {} shards of export {} have not finished (shards {}); run `ddb-export run-shard` for each, \
                 then finalize again",
                unfinished.len(),
                state.plan.shards.len(),
                snapshot.export_id,
                unfinished.join(", ")
            ),
        }
        .into());
    }
    // What killed workers left: uploads they had not recorded, a directory's staging files, the
    // failure record of an earlier finalize.
    let aborted = destination.abort_stale_uploads(&format!("{}/", snapshot.keys.root), &[]).await?;
    if aborted > 0 {
        tracing::info!("aborted {aborted} unfinished uploads left by workers");
    }
    destination.tidy().await;
    destination.delete(&keys::failure_key(&snapshot.keys.root)).await?;
    let mut shards: Vec<&ShardCheckpoint> = checkpoints.values().collect();
    shards.sort_by_key(|c| c.shard);
    if let Some((shard, problem)) = overwritten(&destination, snapshot, &shards).await? {
        // Its files no longer are what its checkpoint says: the shard is to be run again.
        destination.delete(&keys::shard_key(&snapshot.keys.root, shard)).await?;
        return Err(ExportError::Verification {
            location: destination.locate(&snapshot.keys.root),
            message: format!(
                "{problem}; shard {shard}'s checkpoint is reset: run `ddb-export run-shard --shard {shard}` again, \
                 then finalize"
            ),
        }
        .into());
    }
    let files: Vec<_> = shards.iter().flat_map(|c| c.files.iter().cloned()).collect();
    let items = shards.iter().map(|c| c.items).sum();
    let segments = state.plan.shards.len() as u64;
    let publication = lifecycle::Publication { snapshot, files: &files, items, unlisted: lifecycle::Unlisted::All };
    let written = lifecycle::publish(&destination, runtime, publication, || false, Some(lease)).await;
    let stats = crate::pipeline::progress::ProgressFigures { items, segments, ..Default::default() };
    let snapshot = Arc::new(state.snapshot);
    lifecycle::conclude(&destination, snapshot, state.plan, stats, written).await
}
