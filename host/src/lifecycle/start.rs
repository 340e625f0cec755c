//! Starting a new export: its identity and plan from the component, recorded at the
//! destination before any data file.

use std::sync::atomic::{AtomicBool, Ordering};

use super::*;
use crate::error::ExportError;
use crate::io::destination::Destination;
use crate::model::time::now_ms;
use crate::model::{ExportFormat, TableInfo};
use crate::runtime::ComponentRuntime;
use crate::state::checkpoint::{self, Fingerprint, RunState, TokenRecord};
use crate::state::lease::{self, Lease, LeaseScope};

/// An encoder plugin writes a full export's data files in its own format, line-blind: it
/// cannot be combined with another format, an incremental export, or the consistent mode
/// (which rewrites files by line).
pub(crate) fn check_encoder(request: &ExportRequest, runtime: &ComponentRuntime) -> Result<(), ExportError> {
    let Some(plugin) = runtime.encoder_plugin() else { return Ok(()) };
    let conflict = if request.format != ExportFormat::DynamodbJson {
        Some("--format (the plugin decides the format)")
    } else if request.incremental.is_some() {
        Some("--incremental (a plugin writes full exports only)")
    } else if request.consistent {
        Some("--consistent (its cut rewrites data files line by line, and a plugin's files need not be lines)")
    } else {
        None
    };
    match conflict {
        Some(flag) => Err(ExportError::InvalidArgument {
            what: "--encoder",
            message: format!("{} cannot be combined with {flag}", plugin.name()),
        }),
        None => Ok(()),
    }
}

/// The state of a new export: its identity and plan, fixed by the component, not yet recorded.
pub(crate) fn new_state(
    runtime: &ComponentRuntime,
    destination: &Destination,
    request: &ExportRequest,
    info: &TableInfo,
    fingerprint: Fingerprint,
    region: &str,
    fanout: bool,
) -> Result<RunState, ExportError> {
    let client_token = request.client_token.clone().unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let custom_format = runtime.encoder_plugin().map(|plugin| plugin.custom_format());
    let snapshot_request = snapshot_request(destination, request, client_token, now_ms(), region, custom_format);
    let (snapshot, plan) = {
        let mut session = runtime.session()?;
        let snapshot = session.snapshot(info, &snapshot_request)?;
        let plan = session.shard_plan(info, request.segments, request.parallelism)?;
        (snapshot, plan)
    };
    let table_key = info.key_attributes.clone();
    Ok(RunState { version: checkpoint::STATE_VERSION, fingerprint, snapshot, plan, fanout, table_key })
}

/// Starts a new export: its state from the component ([`new_state`]), recorded at the
/// destination ([`record_start`]). Returns it with this run's lease on it.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn start(
    runtime: &ComponentRuntime,
    destination: &Destination,
    request: &ExportRequest,
    info: &TableInfo,
    fingerprint: Fingerprint,
    region: &str,
    stop: &AtomicBool,
    fanout: bool,
) -> Result<(RunState, Lease), ExportFailure> {
    let state = new_state(runtime, destination, request, info, fingerprint, region, fanout)?;
    let lease = record_start(destination, &state, request.client_token.as_deref(), stop).await?;
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
        let lease = Lease::create(destination, lease::export_lease_key(root), scope).await?;
        let written = async {
            // The token's record first: a run killed from here on is found again by its
            // token, and what it left half-written is cleared (`find_earlier_run`).
            if let Some(token) = client_token {
                let key = checkpoint::token_key(token);
                destination.abort_stale_uploads(&key, &[]).await?;
                let record = TokenRecord {
                    version: checkpoint::STATE_VERSION,
                    export_id: state.snapshot.export_id.clone(),
                    prefix: state.snapshot.s3_prefix.clone(),
                };
                checkpoint::save(destination, &key, &record).await?;
            }
            destination.put(&state.snapshot.keys.started, Vec::new()).await?;
            checkpoint::save(destination, &checkpoint::run_key(root), state).await
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
