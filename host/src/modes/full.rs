//! A full export (plain or consistent), from its claim on: shards in parallel, the
//! consistent mode's cut, the manifests.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::ExportError;
use crate::io::aws::AwsClients;
use crate::io::destination::Destination;
use crate::io::dynamodb::Table;
use crate::lifecycle::*;
use crate::model::Field;
use crate::model::time::now_ms;
use crate::model::{ManifestEntry, ShardPlan, TableInfo};
use crate::pipeline::capacity::CapacityBudget;
use crate::pipeline::progress::{self, Progress};
use crate::pipeline::schedule::*;
use crate::pipeline::shard::ShardContext;
use crate::runtime::ComponentRuntime;
use crate::state::checkpoint::{RunState, ShardCheckpoint};
use crate::state::lease::Lease;

/// A full export (plain, or consistent with `request.consistent`), once the request is
/// checked: the table described, the export claimed (returned when complete), started or
/// resumed, written.
pub(super) async fn run(
    aws: &AwsClients,
    runtime: &ComponentRuntime,
    request: &ExportRequest,
    stop: Arc<AtomicBool>,
) -> Result<ExportReport, ExportFailure> {
    let table = Table::new(aws.dynamodb.clone(), aws.region.clone(), request.table.clone())
        .with_filter(request.scan_filter.clone());
    let info = table.describe().await?;
    let budget = request.read_limit.budget(&info)?.map(|rcu| Arc::new(CapacityBudget::new(rcu)));
    table.check_filter().await?;
    let destination = Destination::open(&request.target, &aws.s3, &request.s3).await?;
    destination.check().await?;

    let fingerprint = fingerprint(request, &info, &destination, runtime);
    let claimed = match claim(&destination, request, &info, &fingerprint, &aws.region).await? {
        Claim::Complete(state, summary) => return completed_earlier(&destination, state, &summary).await,
        claimed => claimed,
    };
    // After that check (a complete export is returned whatever the stream is now), and before
    // anything is written: a consistent export's stream must serve it.
    let consistent = match request.consistent() {
        true => match crate::pipeline::cut::prepare(aws, &table, &info).await {
            Ok(consistent) => Some(Arc::new(consistent)),
            Err(error) => {
                claimed.release().await;
                return Err(error.into());
            }
        },
        false => None,
    };
    let (state, lease, resumed) = match claimed {
        Claim::Unfinished(state, lease) if state.fanout => {
            lease.release().await;
            return Err(ExportError::InvalidArgument {
                field: if request.resume.is_some() { Field::Resume } else { Field::ClientToken },
                message: format!(
                    "export {} was planned for fan-out (`ddb-export plan`): run its unfinished shards with \
                     `ddb-export run-shard`, then `ddb-export finalize`",
                    state.snapshot.export_id
                ),
            }
            .into());
        }
        Claim::Unfinished(state, lease) => (state, lease, true),
        Claim::New(token_lease) => {
            let starting = Starting {
                runtime,
                destination: &destination,
                request,
                info: &info,
                fingerprint,
                region: &aws.region,
                start_time_ms: now_ms(),
                plan: Planning::Segments { fanout: false },
            };
            let started = start(starting, &stop).await;
            // The token's lease is held until the new export is recorded (or failed to be).
            if let Some(lease) = token_lease {
                lease.release().await;
            }
            let (state, lease) = started?;
            (state, lease, false)
        }
        Claim::Complete(..) => unreachable!("returned above"),
    };
    let keep_alive = lease.keep_alive(stop.clone());
    let held = Held { state, lease: lease.clone(), resumed };
    let report = write_export(request, &table, &info, budget, destination, runtime, held, consistent, stop).await;
    drop(keep_alive);
    lease.release().await;
    report
}

/// An export this run writes: its state, and its lease on it.
struct Held {
    state: RunState,
    lease: Lease,
    /// Found unfinished (its checkpoints are read), rather than started by this run.
    resumed: bool,
}

/// A full export this run holds the lease of, from its checkpoints on.
#[allow(clippy::too_many_arguments)]
async fn write_export(
    request: &ExportRequest,
    table: &Table,
    info: &TableInfo,
    budget: Option<Arc<CapacityBudget>>,
    destination: Destination,
    runtime: &ComponentRuntime,
    held: Held,
    consistent: Option<Arc<crate::pipeline::cut::ConsistentSource>>,
    stop: Arc<AtomicBool>,
) -> Result<ExportReport, ExportFailure> {
    let Held { state, lease, resumed } = held;
    let resume = match resumed {
        true => load_checkpoints(&destination, &state).await?,
        false => HashMap::new(),
    };
    let RunState { snapshot, plan, .. } = state;
    tracing::info!(
        export = %snapshot.export_arn,
        segments = plan.shards.len(),
        "exporting {} to {}: {}",
        info.table_name,
        destination.locate(&snapshot.keys.root),
        plan.rationale
    );

    let snapshot = Arc::new(snapshot);
    let lanes = lanes(request.parallelism, plan.shards.len(), budget.as_deref());
    if lanes < request.parallelism.min(plan.shards.len() as u32) {
        tracing::info!("running {lanes} segments at a time: the read budget gives each at least {MIN_LANE_RCU} RCU/s");
    }
    let progress = Arc::new(Progress::new(plan.shards.len() as u64, Some(info.item_count)));
    let shown = progress::show(progress.clone(), request.progress.clone(), request.progress_interval);
    let ctx = ShardContext {
        table: table.clone(),
        destination: destination.clone(),
        runtime: runtime.clone(),
        snapshot: snapshot.clone(),
        target_file_bytes: request.target_file_bytes(),
        compression_level: request.compression_level(),
        cancelled: stop,
        budget,
        lanes,
        progress: progress.clone(),
        key_hasher: consistent.as_ref().map(|c| Arc::new(c.hasher.clone())),
        lease: Some(lease),
        key_attributes: info.key_attributes.clone().into(),
    };
    let written = write(&ctx, &plan, resume, consistent.as_deref()).await;
    drop(shown);
    destination.tidy().await;
    conclude(&destination, snapshot, plan, progress.figures(), written).await
}

/// Everything after the snapshot: the shards (from their checkpoints), a check of the stored
/// data files, the manifests. Returns what it wrote.
async fn write(
    ctx: &ShardContext,
    plan: &ShardPlan,
    resume: HashMap<u32, ShardCheckpoint>,
    consistent: Option<&crate::pipeline::cut::ConsistentSource>,
) -> Result<Published, ExportError> {
    let mut snapshot = ctx.snapshot.as_ref().clone();
    let stopped = || ctx.cancelled.load(Ordering::Relaxed);
    if stopped() {
        return Err(ExportError::Interrupted);
    }
    let outcomes = run_shards(ctx, plan, resume).await?;

    let mut files: Vec<ManifestEntry> = outcomes.iter().flat_map(|o| o.files.iter().cloned()).collect();
    let mut items: u64 = outcomes.iter().map(|o| o.items).sum();
    if let Some(source) = consistent {
        // One more shard id, after the plan's, for the files of the states at the cut.
        let images = crate::model::Shard { id: plan.shards.len() as u32, segment: 0, total_segments: 1 };
        let (at_cut, cut_ms) = crate::pipeline::cut::cut(ctx, source, images, files).await?;
        files = at_cut;
        items = files.iter().map(|f| f.item_count).sum();
        snapshot.export_time_ms = cut_ms;
    }
    let publication = Publication { snapshot: &snapshot, files: &files, items, unlisted: Unlisted::All };
    publish(&ctx.destination, &ctx.runtime, publication, stopped, ctx.lease.as_ref()).await
}
