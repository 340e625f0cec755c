//! Carrying an unfinished export on: its checkpoints read back and checked, what its
//! interrupted run left half-done cleared.

use std::collections::{HashMap, HashSet};

use crate::error::ExportError;
use crate::io::destination::Destination;
use crate::state::checkpoint::{self, RunState, ShardCheckpoint};
use crate::state::keys;

/// The checkpoints of an unfinished export, by shard id, after aborting the uploads its
/// interrupted run left open.
pub(crate) async fn load_checkpoints(
    destination: &Destination,
    state: &RunState,
) -> Result<HashMap<u32, ShardCheckpoint>, ExportError> {
    let snapshot = &state.snapshot;
    let mut checkpoints = read_checkpoints(destination, state).await?;
    // A recorded data file that is no longer as it was stored (deleted, or replaced) is
    // written again: its shard starts over.
    let listing = crate::state::stored::Listing::of(destination, &snapshot.keys.data_prefix).await?;
    let mut shards: Vec<u32> = checkpoints.keys().copied().collect();
    shards.sort();
    for shard in shards {
        if let Some((_, problem)) = listing.first_problem(destination, &checkpoints[&shard].files).await? {
            tracing::warn!("{problem}: segment {shard} is read again from its start");
            destination.delete(&keys::shard_key(&snapshot.keys.root, shard)).await?;
            checkpoints.remove(&shard);
        }
    }
    let known: Vec<(String, String)> = checkpoints
        .values()
        .filter_map(|c| c.open_upload.as_ref().map(|u| (u.key.clone(), u.upload_id.clone())))
        .collect();
    // The whole export's folder: a directory also stages checkpoints and state.
    let aborted = destination.abort_stale_uploads(&format!("{}/", snapshot.keys.root), &known).await?;
    destination.delete(&keys::failure_key(&snapshot.keys.root)).await?;
    let done = checkpoints.values().filter(|c| c.done).count();
    let items: u64 = checkpoints.values().map(|c| c.items).sum();
    tracing::info!(
        "resuming export {}: {done} of {} segments done, {items} items already stored; \
         {aborted} unfinished uploads aborted",
        snapshot.export_id,
        state.plan.shards.len()
    );
    Ok(checkpoints)
}

/// Every saved shard checkpoint of an export, by shard id, each checked: a shard of the plan,
/// under its own name, holding together, no data file in two of them.
pub(crate) async fn read_checkpoints(
    destination: &Destination,
    state: &RunState,
) -> Result<HashMap<u32, ShardCheckpoint>, ExportError> {
    let snapshot = &state.snapshot;
    let listed = destination.list(&keys::shards_prefix(&snapshot.keys.root)).await?;
    let planned: HashSet<u32> = state.plan.shards.iter().map(|s| s.id).collect();
    // Read many at a time: an export of 10,000 shards has as many checkpoints.
    let keys: Vec<String> = listed.into_iter().map(|object| object.key).collect();
    let bodies = destination.get_many_tagged(&keys).await?;
    let mut checkpoints = HashMap::new();
    let mut file_keys = HashSet::new();
    for (key, body) in keys.iter().zip(bodies) {
        let Some((body, _)) = body else { continue };
        let saved: ShardCheckpoint = checkpoint::parse(destination, key, &body)?;
        let corrupt = |message: String| ExportError::CorruptState { location: destination.locate(key), message };
        if !planned.contains(&saved.shard) {
            return Err(corrupt(format!("shard {} is not in the export's plan", saved.shard)));
        }
        if *key != keys::shard_key(&snapshot.keys.root, saved.shard) {
            return Err(corrupt(format!("it holds the checkpoint of shard {}, under another name", saved.shard)));
        }
        saved.check(snapshot, &mut file_keys).map_err(corrupt)?;
        checkpoints.insert(saved.shard, saved);
    }
    Ok(checkpoints)
}
