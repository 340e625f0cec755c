//! The export's modes, each built from the lifecycle (claim, start, resume, publish) and
//! the pipeline: a full export (plain or consistent), an incremental export, the fan-out steps,
//! restore. Modes never import each other; [`run_until_stopped`] picks one.

pub mod fanout;
mod full;
pub mod incremental;
pub mod restore;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use crate::io::aws::AwsClients;
use crate::lifecycle::*;
use crate::runtime::ComponentRuntime;

/// Runs a full export.
pub async fn run(
    aws: &AwsClients,
    runtime: &ComponentRuntime,
    request: &ExportRequest,
) -> Result<ExportReport, ExportFailure> {
    run_until_stopped(aws, runtime, request, Arc::new(AtomicBool::new(false))).await
}

/// Runs a full export that stops, cleanly and without a manifest, once `stop` is set (by a
/// Ctrl-C handler, say): shards finish their current page, abort their open uploads and end.
/// With `request.incremental` set, runs an incremental export instead (`crate::modes::incremental`).
///
/// A request that names an export it started before (`resume`, `client_token`) takes the
/// settings it leaves out from that export ([`resolve_settings`]) before the mode is chosen.
pub async fn run_until_stopped(
    aws: &AwsClients,
    runtime: &ComponentRuntime,
    request: &ExportRequest,
    stop: Arc<AtomicBool>,
) -> Result<ExportReport, ExportFailure> {
    request.validate()?;
    let request = &*resolve_settings(aws, request).await?;
    check_encoder(request, runtime)?;
    match request.incremental {
        Some(_) => incremental::run(aws, runtime, request, stop).await,
        None => full::run(aws, runtime, request, stop).await,
    }
}
