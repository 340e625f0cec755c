//! `finalize`: a planned export completed once every shard is done, as `ddb-export finalize`
//! completes it: the recorded data files checked against the store, files no shard recorded
//! removed, the manifests written by the default component's own code (the summary last), the
//! checkpoints removed; all under the export's lease.

use std::collections::{BTreeMap, HashMap, HashSet};

use ddb_export_guest::wit::{ExportTotals, ManifestEntry as GuestEntry};
use ddb_export_model::summary::ManifestSummary;
use ddb_export_model::{ManifestEntry, checksum};
use ddb_export_state_format::export::ShardCheckpoint;
use ddb_export_state_format::keys;

use crate::export::Planned;
use crate::io::{Condition, Io, ListedObject};
use crate::lease::Lease;
use crate::{Error, ExportSummary, FinalizeRequest, Unfinished, convert};

/// Finalizes the export `request` names, or reports the one an earlier call finalized.
pub fn run(io: &impl Io, request: &FinalizeRequest) -> Result<ExportSummary, Error> {
    let planned = Planned::open(io, &request.export_location, request.expected_bucket_owner.as_deref())?;
    if let Some(summary) = completed(&planned)? {
        return Ok(summary);
    }
    let store = &planned.store;
    let root = &planned.state.snapshot.keys.root;
    let scope = format!("export {}", planned.at.export_id);
    let lease = Lease::acquire(store, keys::export_lease_key(root), scope, request.task.as_deref())?;
    let finalized = match completed(&planned) {
        Ok(Some(summary)) => Ok(summary),
        Ok(None) => finalize_held(&planned, &lease),
        Err(error) => Err(error),
    };
    lease.release(store);
    finalized
}

/// The summary of an export already complete (its leftover checkpoints removed), if it is.
fn completed<I: Io>(planned: &Planned<'_, I>) -> Result<Option<ExportSummary>, Error> {
    let store = &planned.store;
    let keys = &planned.state.snapshot.keys;
    let Some(object) = store.get(&keys.manifest_summary)? else { return Ok(None) };
    let summary =
        ManifestSummary::parse(&object.body).map_err(|message| store.corrupt(&keys.manifest_summary, message))?;
    let listing = store.get(&keys.manifest_files)?.map(|o| o.body).unwrap_or_default();
    let data_files = listing.split(|b| *b == b'\n').filter(|line| !line.is_empty()).count() as u64;
    remove_checkpoints(planned);
    Ok(Some(ExportSummary {
        export_arn: summary.export_arn,
        export_id: planned.at.export_id.clone(),
        manifest_summary_location: store.locate(&keys.manifest_summary),
        item_count: summary.item_count,
        data_files,
        already_complete: true,
    }))
}

/// [`run`], once the export's lease is held and the export is not complete.
fn finalize_held<I: Io>(planned: &Planned<'_, I>, lease: &Lease) -> Result<ExportSummary, Error> {
    let store = &planned.store;
    let state = &planned.state;
    let snapshot = &state.snapshot;
    let checkpoints = read_checkpoints(planned)?;
    let unfinished: Vec<u32> =
        state.plan.shards.iter().map(|s| s.id).filter(|id| !checkpoints.get(id).is_some_and(|c| c.done)).collect();
    if !unfinished.is_empty() {
        let message = format!(
            "{} of {} shards of export {} have not finished (shards {}); run `run-shard` for each, then `finalize` \
             again",
            unfinished.len(),
            state.plan.shards.len(),
            snapshot.export_id,
            list(&unfinished)
        );
        return Err(Error::PermanentShardsUnfinished(Unfinished { shards: unfinished, message }));
    }
    let mut shards: Vec<&ShardCheckpoint> = checkpoints.values().collect();
    shards.sort_by_key(|c| c.shard);

    // Every recorded file must be in the store as its shard stored it: one another writer
    // replaced (a worker that outlived its lease) resets its shard, to be run again.
    let listed: HashMap<String, ListedObject> =
        store.list(&snapshot.keys.data_prefix)?.into_iter().map(|o| (o.key.clone(), o)).collect();
    let found = problems(planned, &shards, &listed)?;
    if !found.is_empty() {
        let changed: Vec<u32> = found.keys().copied().collect();
        let reasons: Vec<String> = found.iter().map(|(shard, problem)| format!("shard {shard}: {problem}")).collect();
        for shard in &changed {
            store.delete(&keys::shard_key(&snapshot.keys.root, *shard))?;
        }
        let message = format!(
            "{}; the checkpoints of shards {} are reset: run `run-shard` for each again, then `finalize`",
            reasons.join("; "),
            list(&changed)
        );
        return Err(Error::PermanentShardsUnfinished(Unfinished { shards: changed, message }));
    }
    let recorded: HashSet<&str> =
        shards.iter().flat_map(|c| c.files.iter().map(|f| f.data_file_s3_key.as_str())).collect();
    // Stored by attempts killed before their checkpoints: not part of the export.
    let strays: Vec<String> = listed.keys().filter(|key| !recorded.contains(key.as_str())).cloned().collect();
    store.delete_many(&strays)?;
    store.delete(&keys::failure_key(&snapshot.keys.root))?;

    let files: Vec<&ManifestEntry> = shards.iter().flat_map(|c| c.files.iter()).collect();
    let items: u64 = shards.iter().map(|c| c.items).sum();
    let totals = ExportTotals {
        end_time_ms: store.io.now_ms().max(snapshot.start_time_ms),
        item_count: items,
        billed_size_bytes: 0,
    };
    let entries: Vec<GuestEntry> = files
        .iter()
        .map(|f| GuestEntry {
            data_file_s3_key: f.data_file_s3_key.clone(),
            item_count: f.item_count,
            md5_checksum: f.md5_checksum.clone(),
            etag: f.etag.clone(),
        })
        .collect();
    let manifests = ddb_export_guest::manifest::build(&convert::snapshot_for_encoder(snapshot), &entries, &totals)
        .map_err(|e| {
            Error::PermanentRefused(format!(
                "the manifests of export {} cannot be written: {}",
                snapshot.export_id,
                convert::write_error_text(&e)
            ))
        })?;
    // The last moment another writer is noticed: after this, the manifests are written.
    lease.check(store)?;
    for object in manifests {
        store.put(&object.key, &object.body, &Condition::Always)?;
    }
    remove_checkpoints(planned);
    Ok(ExportSummary {
        export_arn: snapshot.export_arn.clone(),
        export_id: snapshot.export_id.clone(),
        manifest_summary_location: store.locate(&snapshot.keys.manifest_summary),
        item_count: items,
        data_files: files.len() as u64,
        already_complete: false,
    })
}

/// Every shard's checkpoint, checked, each file recorded once across them all. One listing
/// names the checkpoints there are; they are read many at a time.
fn read_checkpoints<I: Io>(planned: &Planned<'_, I>) -> Result<HashMap<u32, ShardCheckpoint>, Error> {
    let root = &planned.state.snapshot.keys.root;
    let saved: HashSet<String> = planned.store.list(&keys::shards_prefix(root))?.into_iter().map(|o| o.key).collect();
    let (shards, keys): (Vec<u32>, Vec<String>) = planned
        .state
        .plan
        .shards
        .iter()
        .map(|s| (s.id, keys::shard_key(root, s.id)))
        .filter(|(_, key)| saved.contains(key))
        .unzip();
    let mut file_keys = HashSet::new();
    let mut checkpoints = HashMap::new();
    for (shard, object) in shards.into_iter().zip(planned.store.get_many(&keys)?) {
        if let Some(object) = object {
            checkpoints.insert(shard, planned.read_checkpoint(shard, &object.body, &mut file_keys)?);
        }
    }
    Ok(checkpoints)
}

/// Data files read to a call where the store lists no ETags: few, so that a call holds few
/// files' bytes (S3 always lists ETags; only some stand-ins take this path).
const READ_AT_ONCE: usize = 16;

/// Each shard with a recorded data file that is not in the store as the shard stored it, and
/// what is wrong with (one of) them. The listing's ETags judge; where the store lists none, the
/// bytes' MD5 does (the rule of the host's own check), [`READ_AT_ONCE`] files to a call.
fn problems<I: Io>(
    planned: &Planned<'_, I>,
    shards: &[&ShardCheckpoint],
    listed: &HashMap<String, ListedObject>,
) -> Result<BTreeMap<u32, String>, Error> {
    let missing = |key: &str| format!("data file {key} is not in the store");
    let mut found = BTreeMap::new();
    // A shard's first problem is the one named.
    let mut note = |shard: u32, problem: Option<String>| {
        if let Some(problem) = problem {
            found.entry(shard).or_insert(problem);
        }
    };
    let mut unjudged = Vec::new();
    for checkpoint in shards {
        for file in &checkpoint.files {
            let key = &file.data_file_s3_key;
            let problem = match listed.get(key) {
                None => Some(missing(key)),
                Some(object) if !object.etag.is_empty() => (object.etag != file.etag).then(|| {
                    format!(
                        "data file {key} was replaced since its shard stored it (ETag {}, recorded {})",
                        object.etag, file.etag
                    )
                }),
                Some(_) => {
                    unjudged.push((checkpoint.shard, file));
                    None
                }
            };
            note(checkpoint.shard, problem);
        }
    }
    for chunk in unjudged.chunks(READ_AT_ONCE) {
        let keys: Vec<String> = chunk.iter().map(|(_, file)| file.data_file_s3_key.clone()).collect();
        for ((shard, file), stored) in chunk.iter().zip(planned.store.get_many(&keys)?) {
            let key = &file.data_file_s3_key;
            let problem = match stored {
                None => Some(missing(key)),
                Some(stored) => {
                    let md5 = checksum::md5_base64(&stored.body);
                    (md5 != file.md5_checksum).then(|| {
                        format!(
                            "data file {key} was replaced since its shard stored it (MD5 {md5}, recorded {})",
                            file.md5_checksum
                        )
                    })
                }
            };
            note(*shard, problem);
        }
    }
    Ok(found)
}

/// Best effort: the checkpoints and leases of a complete export are of no more use (`run.json`
/// stays, so that the client token still finds the export). After the summary: a call that
/// times out here is harmless, and its retry (which finds the export complete) carries on.
fn remove_checkpoints<I: Io>(planned: &Planned<'_, I>) {
    let root = &planned.state.snapshot.keys.root;
    for prefix in [keys::shards_prefix(root), keys::leases_prefix(root)] {
        if let Ok(objects) = planned.store.list(&prefix) {
            let _ = planned.store.delete_many(&objects.into_iter().map(|o| o.key).collect::<Vec<_>>());
        }
    }
}

/// `1, 4, 7`.
fn list(shards: &[u32]) -> String {
    shards.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
}
