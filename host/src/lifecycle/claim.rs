//! Finding the export a run's request names (by `--resume` or by its client token) and making
//! this run its one writer.

use super::*;
use crate::error::ExportError;
use crate::io::destination::Destination;
use crate::model::{CustomFormat, Field, SnapshotRequest, SseAlgorithm, TableInfo};
use crate::runtime::ComponentRuntime;
use crate::state::checkpoint::{self, Fingerprint, RunState};
use crate::state::keys;
use crate::state::lease::{Lease, LeaseScope};

/// An export found at the destination by `--resume` or by the client token.
pub(crate) enum EarlierRun {
    None,
    Unfinished(RunState),
    /// With the bytes of its `manifest-summary.json`.
    Complete(RunState, Vec<u8>),
}

/// The settings of this run that an earlier run of the same export must have had.
pub(crate) fn fingerprint(
    request: &ExportRequest,
    info: &TableInfo,
    destination: &Destination,
    runtime: &ComponentRuntime,
) -> Fingerprint {
    Fingerprint {
        table_arn: info.table_arn.clone(),
        table_id: info.table_id.clone(),
        format: request.format(),
        segments: request.segments,
        target_file_bytes: request.target_file_bytes(),
        compression_level: request.compression_level(),
        bucket: destination.bucket_name(),
        prefix: destination.prefix(),
        bucket_owner: request.s3.expected_owner.clone(),
        kms_key_id: request.s3.kms_key_id.clone(),
        component: runtime.digest().to_string(),
        incremental: request.incremental,
        consistent: request.consistent(),
        scan_filter: request.scan_filter.clone(),
        encoder: runtime.encoder_plugin().map(checkpoint::encoder_fingerprint),
    }
}

/// What the component's snapshot step is asked for: the destination and settings of this run,
/// and the export's token and start time.
pub(crate) fn snapshot_request(
    destination: &Destination,
    request: &ExportRequest,
    client_token: String,
    start_time_ms: u64,
    region: &str,
    custom_format: Option<CustomFormat>,
) -> SnapshotRequest {
    SnapshotRequest {
        s3_bucket: destination.bucket_name(),
        s3_prefix: destination.prefix(),
        s3_bucket_owner: request.s3.expected_owner.clone(),
        s3_sse_algorithm: if request.s3.kms_key_id.is_some() { SseAlgorithm::Kms } else { SseAlgorithm::Aes256 },
        s3_sse_kms_key_id: request.s3.kms_key_id.clone(),
        export_format: request.format(),
        client_token,
        start_time_ms,
        region: region.to_string(),
        incremental: request.incremental.map(|window| window.resolve(start_time_ms)),
        custom_format,
    }
}

/// Finds the export `--resume` names, or the one the client token started, and checks that
/// it was made with the same settings (a conflict names each difference), then that its saved
/// state is what those settings give (else the state is corrupt).
///
/// A client token whose export has no saved state (its run was killed before it saved one)
/// finds nothing; with `clear`, what that run began (its `_started`, its uploads) is also
/// cleared, which only the holder of the token's lease may do ([`claim`]).
pub(crate) async fn find_earlier_run(
    destination: &Destination,
    request: &ExportRequest,
    table: &TableInfo,
    fingerprint: &Fingerprint,
    region: &str,
    clear: bool,
) -> Result<EarlierRun, ExportError> {
    let Some((export_id, root)) = super::settings::locate(destination, request).await? else {
        return Ok(EarlierRun::None);
    };
    let by_token = request.resume.is_none();
    let run_key = keys::run_key(&root);
    let Some(state) = checkpoint::load::<RunState>(destination, &run_key).await? else {
        if by_token {
            // Killed before its state was saved (or deleted since): what it began is cleared.
            if clear {
                destination.abort_stale_uploads(&format!("{root}/"), &[]).await?;
                destination.delete(&format!("{root}/_started")).await?;
                tracing::warn!(
                    "client token's export {export_id} has no saved state at {}; starting a new export",
                    destination.locate(&root)
                );
            }
            return Ok(EarlierRun::None);
        }
        return Err(ExportError::NotResumable {
            export_id,
            location: destination.locate(&root),
            message: format!(
                "{} does not exist (only exports written by ddb-export, at the same {}, can be resumed)",
                destination.locate(&run_key),
                Field::Target
            ),
        });
    };
    let corrupt = |message: String| ExportError::CorruptState { location: destination.locate(&run_key), message };
    if state.version != checkpoint::STATE_VERSION {
        return Err(corrupt(format!("state version {} is not {}", state.version, checkpoint::STATE_VERSION)));
    }
    if state.snapshot.export_id != export_id {
        return Err(corrupt(format!("it describes export {}", state.snapshot.export_id)));
    }
    if by_token && request.client_token.as_deref() != Some(state.snapshot.client_token.as_str()) {
        return Err(corrupt("the client token's record names an export another token started".into()));
    }
    let mut differences = state.fingerprint.differences(fingerprint);
    if by_token {
        if !differences.is_empty() {
            return Err(ExportError::TokenConflict {
                client_token: request.client_token.clone().unwrap_or_default(),
                export_id,
                differences,
            });
        }
    } else {
        if let Some(token) = &request.client_token
            && *token != state.snapshot.client_token
        {
            let then = &state.snapshot.client_token;
            differences.push(format!("{}: {then:?} before, {token:?} now", Field::ClientToken));
        }
        if !differences.is_empty() {
            return Err(ExportError::ResumeConflict { export_id, differences });
        }
    }
    // The same settings: the saved snapshot must be exactly what they give.
    if state.snapshot.keys.root != root {
        return Err(corrupt(format!("its keys are under {:?}, not {root:?}", state.snapshot.keys.root)));
    }
    let expected = snapshot_request(
        destination,
        request,
        state.snapshot.client_token.clone(),
        state.snapshot.start_time_ms,
        region,
        fingerprint.encoder.as_ref().map(|e| e.format.clone()),
    );
    crate::runtime::check_saved_snapshot(table, &expected, &state.snapshot).map_err(corrupt)?;
    crate::runtime::check_saved_plan(&state.plan, state.fingerprint.segments).map_err(corrupt)?;
    if let Some(summary) = destination.get(&state.snapshot.keys.manifest_summary).await? {
        return Ok(EarlierRun::Complete(state, summary));
    }
    Ok(EarlierRun::Unfinished(state))
}

/// What a run may do with the export its request names, once [`claim`] has looked.
// Made once per run: the size of its largest variant does not matter.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Claim {
    /// Complete: returned as it is, nothing written.
    Complete(RunState, Vec<u8>),
    /// Unfinished, and this run now holds its lease: it may carry it on.
    Unfinished(RunState, Lease),
    /// Nothing to carry on: a new export may start ([`record_start`]), under the client
    /// token's lease when the request has a token.
    New(Option<Lease>),
}

impl Claim {
    /// Lets go of the leases this claim holds (the run will not go on).
    pub(crate) async fn release(self) {
        match self {
            Claim::Unfinished(_, lease) | Claim::New(Some(lease)) => lease.release().await,
            Claim::Complete(..) | Claim::New(None) => {}
        }
    }
}

/// Finds the export `--resume` or the client token names (as [`find_earlier_run`]) and makes
/// this run its one writer: an unfinished export's lease is taken (refused with
/// [`ExportError::ExportBusy`] while another run holds it), and so is the client token's before
/// a new export starts under it, so that two runs of one token never start two exports.
pub(crate) async fn claim(
    destination: &Destination,
    request: &ExportRequest,
    table: &TableInfo,
    fingerprint: &Fingerprint,
    region: &str,
) -> Result<Claim, ExportError> {
    let mut token_lease: Option<Lease> = None;
    let mut export_lease: Option<Lease> = None;
    let claimed = async {
        loop {
            // Looked at again once a lease is held: the export may have moved on meanwhile.
            match find_earlier_run(destination, request, table, fingerprint, region, token_lease.is_some()).await? {
                EarlierRun::Complete(state, summary) => return Ok(Claim::Complete(state, summary)),
                EarlierRun::Unfinished(state) => {
                    let key = keys::export_lease_key(&state.snapshot.keys.root);
                    if let Some(lease) = export_lease.take_if(|lease| lease.key() == key) {
                        return Ok(Claim::Unfinished(state, lease));
                    }
                    let scope = LeaseScope::Export(state.snapshot.export_id.clone());
                    export_lease = Some(Lease::acquire(destination, key, scope).await?);
                }
                EarlierRun::None => match (&request.client_token, &token_lease) {
                    (Some(token), None) => {
                        let key = keys::token_lease_key(token);
                        token_lease = Some(Lease::acquire(destination, key, LeaseScope::ClientToken).await?);
                    }
                    _ => return Ok(Claim::New(token_lease.take())),
                },
            }
        }
    }
    .await;
    for lease in [token_lease, export_lease].into_iter().flatten() {
        lease.release().await;
    }
    claimed
}
