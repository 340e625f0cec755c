//! An Obelisk workflow that runs a ddb-export export with the step engine component's
//! activities (`plan`, `run-shard`, `finalize`; `wit/step`):
//!
//! 1. `plan` (a child execution; Obelisk retries it, and the client token makes a retry the
//!    same export);
//! 2. every shard at once in one join set, each as repeated `run-shard` calls of at most
//!    `max-data-files` files: a call that returns `done: false` is submitted again for its
//!    shard. Each call names its task (`<this execution>/shard-<n>`), so that Obelisk's retry of a
//!    call that timed out takes the shard's lease over at once;
//! 3. `finalize`; shards it finds unfinished (a file another writer replaced) are run again, and
//!    it is called again, a few rounds at most.
//!
//! A workflow must be deterministic (Obelisk replays it): no clocks, no randomness, ordered maps.

use std::collections::BTreeMap;

mod generated {
    #![allow(clippy::all)]
    wit_bindgen::generate!({
        path: "wit",
        world: "workflow",
        generate_all,
    });
}

use generated::ddb_export::step::steps::{self, Error, ExportSummary, PlanRequest, ShardRequest};
use generated::ddb_export::step_obelisk_ext::steps::{run_shard_await_next, run_shard_submit};
use generated::exports::ddb_export::obelisk_workflow::export_workflow::Guest;
use generated::obelisk::log::log;
use generated::obelisk::types::execution::AwaitNextExtensionError;
use generated::obelisk::workflow::workflow_support::{execution_id_current, join_set_create};

/// Rounds of finalize before the workflow gives up on shards that keep changing.
const FINALIZE_ROUNDS: u32 = 3;

struct Component;
generated::export!(Component with_types_in generated);

impl Guest for Component {
    fn run(request: PlanRequest, max_data_files: u32) -> Result<ExportSummary, Error> {
        if max_data_files == 0 {
            return Err(Error::PermanentRefused("max-data-files must be at least 1".into()));
        }
        let plan = steps::plan(&request)?;
        log::info(&format!("export {}: {} shards at {}", plan.export_id, plan.shards.len(), plan.export_location));
        let call = |shard: u32| ShardRequest {
            export_location: plan.export_location.clone(),
            expected_bucket_owner: plan.s3_bucket_owner.clone(),
            shard,
            budget: steps::Budget { max_data_files: Some(max_data_files), max_millis: None },
            task: Some(format!("{}/shard-{shard}", execution_id_current().id)),
        };
        let finalize = steps::FinalizeRequest {
            export_location: plan.export_location.clone(),
            expected_bucket_owner: plan.s3_bucket_owner.clone(),
            task: Some(format!("{}/finalize", execution_id_current().id)),
        };
        let mut shards = if plan.completed { Vec::new() } else { plan.shards.clone() };
        for round in 1..=FINALIZE_ROUNDS {
            run_shards(&shards, &call)?;
            match steps::finalize(&finalize) {
                Err(Error::PermanentShardsUnfinished(unfinished)) if round < FINALIZE_ROUNDS => {
                    log::warn(&format!("finalize, round {round}: {}", unfinished.message));
                    shards = unfinished.shards;
                }
                outcome => return outcome,
            }
        }
        unreachable!("the last round returns finalize's outcome")
    }
}

/// Runs `shards` to their end, all at once: each call that leaves its shard unfinished is
/// submitted again. Returns the first error a call ended with (after Obelisk's retries).
fn run_shards(shards: &[u32], call: &impl Fn(u32) -> ShardRequest) -> Result<(), Error> {
    let join_set = join_set_create();
    let mut running: BTreeMap<String, u32> = BTreeMap::new();
    for &shard in shards {
        running.insert(run_shard_submit(&join_set, &call(shard)).id, shard);
    }
    let mut calls = shards.len();
    while !running.is_empty() {
        let (id, outcome) = match run_shard_await_next(&join_set) {
            Ok(next) => next,
            Err(AwaitNextExtensionError::AllProcessed) => break,
            Err(AwaitNextExtensionError::FunctionMismatch(_)) => {
                return Err(Error::Transient("a response of another function came back to the shards' join set".into()));
            }
        };
        let shard = running.remove(&id.id).unwrap_or(u32::MAX);
        match outcome {
            Ok(progress) if progress.done => {
                log::info(&format!("shard {shard}: done, {} items", progress.item_count.unwrap_or(0)));
            }
            Ok(progress) => {
                calls += 1;
                running.insert(run_shard_submit(&join_set, &call(progress.shard)).id, progress.shard);
            }
            Err(error) => {
                log::error(&format!("shard {shard} failed"));
                return Err(error);
            }
        }
    }
    log::info(&format!("{} shards done in {calls} run-shard calls", shards.len()));
    Ok(())
}
