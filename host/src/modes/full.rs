//! A full export (plain or consistent), from its claim on: shards in parallel, the
//! consistent mode's cut, the manifests.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::ExportError;
use crate::io::destination::Destination;
use crate::io::dynamodb::Table;
use crate::lifecycle::*;
use crate::model::{ManifestEntry, ShardPlan, TableInfo};
use crate::pipeline::progress::{self, Progress};
use crate::pipeline::read_budget::ReadBudget;
use crate::pipeline::schedule::*;
use crate::pipeline::shard::ShardContext;
use crate::runtime::ComponentRuntime;
use crate::state::checkpoint::{RunState, ShardCheckpoint};
use crate::state::lease::Lease;

/// An export this run writes: its state, and its lease on it.
pub(super) struct Held {
    pub state: RunState,
    pub lease: Lease,
    /// Found unfinished (its checkpoints are read), rather than started by this run.
    pub resumed: bool,
}

/// A full export this run holds the lease of, from its checkpoints on.
#[allow(clippy::too_many_arguments)]
pub(super) async fn write_export(
    request: &ExportRequest,
    table: &Table,
    info: &TableInfo,
    budget: Option<Arc<ReadBudget>>,
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
        target_file_bytes: request.target_file_bytes,
        compression_level: request.compression_level,
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
) -> Result<Written, ExportError> {
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
    publish(&ctx.destination, &ctx.runtime, &snapshot, &files, items, stopped, ctx.lease.as_ref()).await
}
