//! Starting a new export: its identity and plan from the component, recorded at the
//! destination before any data file.

use std::sync::atomic::{AtomicBool, Ordering};

use super::*;
use crate::error::ExportError;
use crate::io::destination::Destination;
use crate::model::{ExportFormat, Field, Shard, ShardPlan, TableInfo};
use crate::pipeline::offload;
use crate::runtime::ComponentRuntime;
use crate::state::checkpoint::{self, Fingerprint, RunState, TokenRecord};
use crate::state::keys;
use crate::state::lease::{Lease, LeaseScope};

/// An encoder plugin writes a full export's data files in its own format, line-blind: it
/// cannot be combined with another format, an incremental export, or the consistent mode
/// (which rewrites files by line).
pub(crate) fn check_encoder(request: &ExportRequest, runtime: &ComponentRuntime) -> Result<(), ExportError> {
    let Some(plugin) = runtime.encoder_plugin() else { return Ok(()) };
    let conflict = if request.format() != ExportFormat::DynamodbJson {
        Some((Field::Format, "the plugin decides the format"))
    } else if request.incremental.is_some() {
        Some((Field::Incremental, "a plugin writes full exports only"))
    } else if request.consistent() {
        Some((Field::Consistent, "its cut rewrites data files line by line, and a plugin's files need not be lines"))
    } else {
        None
    };
    match conflict {
        Some((field, why)) => Err(ExportError::InvalidArgument {
            field: Field::Encoder,
            message: format!("{} cannot be combined with {field} ({why})", plugin.name()),
        }),
        None => Ok(()),
    }
}

/// What a new export is started from: the run's request and what it found.
pub(crate) struct Starting<'a> {
    pub runtime: &'a ComponentRuntime,
    pub destination: &'a Destination,
    pub request: &'a ExportRequest,
    pub info: &'a TableInfo,
    pub fingerprint: Fingerprint,
    pub region: &'a str,
    /// When the export starts, ms since the epoch (an incremental export's window may end then).
    pub start_time_ms: u64,
    pub plan: Planning,
}

/// How a new export's shards are planned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Planning {
    /// By the component's shard-plan step; `fanout`: for `plan`/`run-shard`/`finalize`.
    Segments { fanout: bool },
    /// One shard, one encoder: an incremental export reads the stream, not segments.
    OneEncoder,
}

/// The state of a new export: its identity (and plan) fixed by the component, on a blocking
/// thread; not yet recorded.
pub(crate) async fn new_state(starting: &Starting<'_>) -> Result<RunState, ExportError> {
    let Starting { runtime, destination, request, info, region, start_time_ms, plan, .. } = *starting;
    let client_token = request.client_token.clone().unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let custom_format = runtime.encoder_plugin().map(|plugin| plugin.custom_format());
    let snapshot_request = snapshot_request(destination, request, client_token, start_time_ms, region, custom_format);
    let (runtime, table) = (runtime.clone(), info.clone());
    let (segments, parallelism) = (request.segments, request.parallelism);
    let (snapshot, shard_plan) = offload::blocking(move || {
        let mut session = runtime.session()?;
        let snapshot = session.snapshot(&table, &snapshot_request)?;
        let shard_plan = match plan {
            Planning::Segments { .. } => session.shard_plan(&table, segments, parallelism)?,
            Planning::OneEncoder => ShardPlan {
                shards: vec![Shard { id: 0, segment: 0, total_segments: 1 }],
                rationale: "an incremental export reads the table's stream, through one encoder".into(),
            },
        };
        Ok((snapshot, shard_plan))
    })
    .await?;
    Ok(RunState {
        version: checkpoint::STATE_VERSION,
        fingerprint: starting.fingerprint.clone(),
        snapshot,
        plan: shard_plan,
        fanout: plan == Planning::Segments { fanout: true },
        table_key: info.key_attributes.clone(),
        table_schema: info.schema.clone(),
    })
}

/// Starts a new export: its state from the component ([`new_state`]), recorded at the
/// destination ([`record_start`]). Returns it with this run's lease on it.
pub(crate) async fn start(starting: Starting<'_>, stop: &AtomicBool) -> Result<(RunState, Lease), ExportFailure> {
    let state = new_state(&starting).await?;
    let lease = record_start(starting.destination, &state, starting.request.client_token.as_deref(), stop).await?;
    Ok((state, lease))
}

/// Records a new export at its destination before any data file: this run's lease on it,
/// the client token's record (when the token was given), then `_started`, then the saved
/// state. Returns the export's lease. Once `stop` is set (a Ctrl-C while the component fixed
/// the export), nothing is recorded.
pub(crate) async fn record_start(
    destination: &Destination,
    state: &RunState,
    client_token: Option<&str>,
    stop: &AtomicBool,
) -> Result<Lease, ExportError> {
    {
        if stop.load(Ordering::Relaxed) {
            return Err(ExportError::Interrupted);
        }
        // The export's id is this run's own until the token's record names it: no one else
        // can be after its lease yet.
        let root = &state.snapshot.keys.root;
        let scope = LeaseScope::Export(state.snapshot.export_id.clone());
        let lease = Lease::create(destination, keys::export_lease_key(root), scope).await?;
        let written = async {
            // The token's record first: a run killed from here on is found again by its
            // token, and what it left half-written is cleared (`find_earlier_run`).
            if let Some(token) = client_token {
                let key = keys::token_key(token);
                destination.abort_stale_uploads(&key, &[]).await?;
                let record = TokenRecord {
                    version: checkpoint::STATE_VERSION,
                    export_id: state.snapshot.export_id.clone(),
                    prefix: state.snapshot.s3_prefix.clone(),
                };
                checkpoint::save(destination, &key, &record).await?;
            }
            destination.put(&state.snapshot.keys.started, Vec::new()).await?;
            checkpoint::save(destination, &keys::run_key(root), state).await
        }
        .await;
        match written {
            Ok(()) => Ok(lease),
            Err(error) => {
                lease.release().await;
                Err(error)
            }
        }
    }
}
