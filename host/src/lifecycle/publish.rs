//! The end of an export: its stored data files checked, the manifests written (the summary
//! last), the checkpoints removed; or its failure recorded.

use std::collections::HashSet;
use std::sync::Arc;

use super::*;
use crate::error::ExportError;
use crate::io::destination::Destination;
use crate::model::time::now_ms;
use crate::model::{ExportTotals, Field, ManifestEntry, ProgressFigures, ShardPlan, Snapshot};
use crate::runtime::ComponentRuntime;
use crate::state::checkpoint::{self, RunState};
use crate::state::description::ExportDescription;
use crate::state::keys;
use crate::state::lease::Lease;

/// What a run wrote, once the manifests are stored.
pub(crate) struct Published {
    pub end_time_ms: u64,
    pub data_files: u64,
    pub items: u64,
    /// The instant the data reflects: the snapshot's, or the consistent mode's cut.
    pub export_time_ms: u64,
}

/// The end of a run of an export that has an identity: the report of what it wrote, or its
/// failure, recorded beside it (best effort, for `ddb-export describe`: the destination may be
/// what failed) with its FAILED description.
pub(crate) async fn conclude(
    destination: &Destination,
    snapshot: Arc<Snapshot>,
    plan: ShardPlan,
    stats: ProgressFigures,
    written: Result<Published, ExportError>,
) -> Result<ExportReport, ExportFailure> {
    let error = match written {
        Ok(Published { end_time_ms, data_files, items, export_time_ms }) => {
            let snapshot = Snapshot { export_time_ms, ..Arc::unwrap_or_clone(snapshot) };
            let description = ExportDescription::completed(&snapshot, end_time_ms, items, 0, stats.clone());
            return Ok(ExportReport {
                description,
                summary_location: destination.locate(&snapshot.keys.manifest_summary),
                snapshot,
                plan,
                stats,
                data_files,
            });
        }
        Err(error) => error,
    };
    let end_time_ms = now_ms();
    let record = checkpoint::FailureRecord {
        failure_code: error.code().to_string(),
        failure_message: error.to_string(),
        end_time_ms,
    };
    if let Err(e) = checkpoint::save(destination, &keys::failure_key(&snapshot.keys.root), &record).await {
        tracing::debug!("could not record the failure: {e}");
    }
    let description = ExportDescription::failed(&snapshot, end_time_ms, &error, stats);
    Err(ExportFailure { error, description: Some(description) })
}

/// The report of an export that an earlier run completed: no item is read or written again
/// (checkpoints a run killed just after the summary left are removed).
pub(crate) async fn completed_earlier(
    destination: &Destination,
    state: RunState,
    summary: &[u8],
) -> Result<ExportReport, ExportFailure> {
    let snapshot = state.snapshot;
    let summary_key = &snapshot.keys.manifest_summary;
    let mut description =
        crate::state::catalog::from_summary(summary, summary_key, Some(&snapshot.client_token), destination)?;
    let items = description.item_count.unwrap_or_default();
    let files = destination.get(&snapshot.keys.manifest_files).await?.unwrap_or_default();
    let data_files = files.split(|b| *b == b'\n').filter(|line| !line.is_empty()).count() as u64;
    tracing::info!("export {} is already complete; nothing to do", snapshot.export_arn);
    remove_checkpoints(destination, &snapshot.keys.root).await;
    let stats = ProgressFigures { items, segments: state.plan.shards.len() as u64, ..ProgressFigures::default() };
    description.s3_bucket_owner = snapshot.s3_bucket_owner.clone();
    description.ddb_export_statistics = Some(stats.clone());
    Ok(ExportReport {
        description,
        summary_location: destination.locate(summary_key),
        snapshot,
        plan: state.plan,
        stats,
        data_files,
    })
}

/// What a run publishes: its export and the data files it recorded.
pub(crate) struct Publication<'a> {
    pub snapshot: &'a Snapshot,
    pub files: &'a [ManifestEntry],
    pub items: u64,
    pub unlisted: Unlisted<'a>,
}

/// Which files under the data folder that the manifest does not list are removed.
pub(crate) enum Unlisted<'a> {
    /// All: the folder is the export's own (a full export's `data/`), and ends holding
    /// exactly what the manifest lists.
    All,
    /// Only these (files an earlier run of this export stored): an incremental export shares
    /// its folder with every other incremental export under the prefix.
    These(&'a HashSet<&'a str>),
}

/// Publishes an export whose data files are all stored: checks each one in the store, removes
/// every other file under `data/`, writes the manifests (the summary last) and removes the
/// checkpoints. `stopped` is asked one last time before the manifests, and this run's `lease`
/// on the export checked: only its one writer publishes it.
pub(crate) async fn publish(
    destination: &Destination,
    runtime: &ComponentRuntime,
    publication: Publication<'_>,
    stopped: impl Fn() -> bool,
    lease: Option<&Lease>,
) -> Result<Published, ExportError> {
    let Publication { snapshot, files, items, unlisted } = publication;
    let mut keys = HashSet::new();
    if let Some(dup) = files.iter().find(|f| !keys.insert(f.data_file_s3_key.as_str())) {
        return Err(ExportError::BadOutput {
            component: runtime.name().to_string(),
            message: format!("two shards wrote the data file {:?}", dup.data_file_s3_key),
        });
    }

    let stale = |key: &str| match unlisted {
        Unlisted::All => true,
        Unlisted::These(earlier) => earlier.contains(key),
    };
    let removed = verify_data_files(destination, &snapshot.keys.data_prefix, files, stale).await?;
    if removed > 0 {
        tracing::info!(
            "removed {removed} data files the manifest does not list (left by an interrupted run, or replaced at the cut)"
        );
    }

    // The last moment a stop is honoured: after this the manifests are written.
    if stopped() {
        return Err(ExportError::Interrupted);
    }
    if let Some(lease) = lease {
        lease.check().await?;
    }
    let end_time_ms = now_ms().max(snapshot.start_time_ms);
    let totals = ExportTotals { end_time_ms, item_count: items, billed_size_bytes: 0 };
    let manifests = manifests(runtime, snapshot, files, &totals).await?;
    for object in manifests {
        destination.put(&object.key, object.body).await?;
    }
    remove_checkpoints(destination, &snapshot.keys.root).await;
    Ok(Published { end_time_ms, data_files: files.len() as u64, items, export_time_ms: snapshot.export_time_ms })
}

/// The manifests the component writes for `files` (checked by the runtime), on a blocking
/// thread.
pub(crate) async fn manifests(
    runtime: &ComponentRuntime,
    snapshot: &Snapshot,
    files: &[ManifestEntry],
    totals: &ExportTotals,
) -> Result<Vec<crate::model::StoredObject>, ExportError> {
    let (runtime, snapshot, files, totals) = (runtime.clone(), snapshot.clone(), files.to_vec(), *totals);
    crate::pipeline::offload::blocking(move || Ok(runtime.session()?.manifests(&snapshot, &files, &totals)?)).await
}

/// Checks that each file the manifest will list is in the store as it was stored
/// ([`crate::state::stored`]); then deletes every other file in the data folder that `stale` picks
/// (one an interrupted run stored but never recorded, say). Returns how many it deleted.
pub(crate) async fn verify_data_files(
    destination: &Destination,
    data_prefix: &str,
    files: &[ManifestEntry],
    stale: impl Fn(&str) -> bool,
) -> Result<usize, ExportError> {
    let listing = crate::state::stored::Listing::of(destination, data_prefix).await?;
    if let Some((file, problem)) = listing.first_problem(destination, files).await? {
        return Err(ExportError::Verification {
            location: destination.locate(&file.data_file_s3_key),
            message: format!(
                "{problem}; run the export again (with the same {} or {}) to write it again",
                Field::ClientToken,
                Field::Resume
            ),
        });
    }
    let written: HashSet<&str> = files.iter().map(|f| f.data_file_s3_key.as_str()).collect();
    let mut removed = 0;
    let unlisted: Vec<String> =
        listing.keys().filter(|key| !written.contains(key) && stale(key)).map(str::to_string).collect();
    for key in unlisted {
        destination.delete(&key).await?;
        removed += 1;
    }
    Ok(removed)
}

/// Best effort: the shard checkpoints of a complete export (and the consistent mode's key
/// hashes and cut) are of no more use (`run.json` stays, so that the client token and
/// `--resume` still find the export).
pub(crate) async fn remove_checkpoints(destination: &Destination, export_root: &str) {
    let prefix = keys::shards_prefix(export_root);
    let removed = async {
        let leases = keys::leases_prefix(export_root);
        for folder in [prefix.clone(), keys::key_hashes_prefix(export_root), leases] {
            let listed: Vec<String> = destination.list(&folder).await?.into_iter().map(|o| o.key).collect();
            destination.delete_many(&listed).await?;
        }
        for key in crate::pipeline::cut::cut_objects(export_root) {
            destination.delete(&key).await?;
        }
        Ok::<(), ExportError>(())
    }
    .await;
    if let Err(error) = removed {
        tracing::warn!("could not remove the checkpoints under {}: {error}", destination.locate(&prefix));
    }
}
