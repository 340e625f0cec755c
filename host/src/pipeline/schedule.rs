//! Running a plan's shards, a bounded number of lanes at a time.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use tokio::task::JoinSet;

use crate::error::ExportError;
use crate::model::ShardPlan;
use crate::pipeline::capacity::CapacityBudget;
use crate::pipeline::shard::{self, ShardContext, ShardOutcome};
use crate::state::checkpoint::ShardCheckpoint;

/// The least read capacity per second a lane should have: below it, pages shrink to a few
/// items and the export spends its budget on request overhead.
pub const MIN_LANE_RCU: f64 = 20.0;

/// Segments run at once: `parallelism`, but no more than there are segments, nor than the read
/// budget can give [`MIN_LANE_RCU`] each.
pub(crate) fn lanes(parallelism: u32, segments: usize, budget: Option<&CapacityBudget>) -> u32 {
    let by_budget =
        budget.map_or(u32::MAX, |b| (b.limit() / MIN_LANE_RCU).floor().clamp(1.0, f64::from(u32::MAX)) as u32);
    parallelism.min(u32::try_from(segments).unwrap_or(u32::MAX)).min(by_budget).max(1)
}

/// Runs every shard, `ctx.lanes` at a time (a shard's task is only spawned when a lane is
/// free, so a plan of many segments costs no more memory than one of `ctx.lanes`). The first
/// failure stops the others and is returned; a stop with no failure is [`ExportError::Interrupted`].
pub(crate) async fn run_shards(
    ctx: &ShardContext,
    plan: &ShardPlan,
    mut resume: HashMap<u32, ShardCheckpoint>,
) -> Result<Vec<ShardOutcome>, ExportError> {
    let mut tasks = JoinSet::new();
    let mut pending = plan.shards.iter().copied();
    let mut outcomes: Vec<Option<ShardOutcome>> = vec![None; plan.shards.len()];
    let mut first_error: Option<ExportError> = None;
    loop {
        while tasks.len() < ctx.lanes as usize && !ctx.cancelled.load(Ordering::Relaxed) {
            let Some(shard) = pending.next() else { break };
            let ctx = ctx.clone();
            let from = resume.remove(&shard.id).unwrap_or_default();
            tasks.spawn(async move {
                let result = shard::run(ctx.clone(), shard, from).await;
                match &result {
                    Ok(outcome) => {
                        tracing::debug!(
                            shard = shard.id,
                            items = outcome.items,
                            files = outcome.files.len(),
                            "shard done"
                        )
                    }
                    Err(_) => ctx.cancelled.store(true, Ordering::Relaxed),
                }
                result.map(|outcome| (shard.id, outcome))
            });
        }
        let Some(joined) = tasks.join_next().await else { break };
        match joined {
            Ok(Ok((id, outcome))) => outcomes[id as usize] = Some(outcome),
            Ok(Err(error)) => {
                if first_error.as_ref().is_none_or(|e| matches!(e, ExportError::Cancelled)) {
                    first_error = Some(error);
                }
            }
            Err(join_error) => {
                ctx.cancelled.store(true, Ordering::Relaxed);
                first_error.get_or_insert(ExportError::Internal(format!("a shard task failed: {join_error}")));
            }
        }
    }
    match first_error {
        Some(ExportError::Cancelled) => return Err(ExportError::Interrupted),
        Some(error) => return Err(error),
        None if ctx.cancelled.load(Ordering::Relaxed) => return Err(ExportError::Interrupted),
        None => {}
    }
    outcomes
        .into_iter()
        .enumerate()
        .map(|(id, outcome)| outcome.ok_or_else(|| ExportError::Internal(format!("shard {id} reported nothing"))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lanes_are_bounded_by_segments_and_by_the_budget() {
        assert_eq!(lanes(8, 100, None), 8);
        assert_eq!(lanes(8, 3, None), 3);
        assert_eq!(lanes(8, 100, Some(&CapacityBudget::new(60.0))), 3);
        assert_eq!(lanes(8, 100, Some(&CapacityBudget::new(5.0))), 1);
        assert_eq!(lanes(8, 100, Some(&CapacityBudget::new(10_000.0))), 8);
    }
}
