//! The export's modes, each built from the lifecycle (claim, start, resume, publish) and
//! the pipeline: a full export (plain or consistent), an incremental export, the fan-out steps,
//! verify. Modes never import each other; [`run_until_stopped`] picks one.

pub mod fanout;
mod full;
pub mod incremental;
pub mod verify;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use crate::error::ExportError;
use crate::io::aws::AwsClients;
use crate::io::destination::Destination;
use crate::io::dynamodb::Table;
use crate::lifecycle::*;
use crate::pipeline::read_budget::ReadBudget;
use crate::runtime::ComponentRuntime;
use full::{Held, write_export};

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
pub async fn run_until_stopped(
    aws: &AwsClients,
    runtime: &ComponentRuntime,
    request: &ExportRequest,
    stop: Arc<AtomicBool>,
) -> Result<ExportReport, ExportFailure> {
    request.validate()?;
    check_encoder(request, runtime)?;
    if request.incremental.is_some() {
        return crate::modes::incremental::run(aws, runtime, request, stop).await;
    }
    let table = Table::new(aws.dynamodb.clone(), aws.region.clone(), request.table.clone())
        .with_filter(request.scan_filter.clone());
    let info = table.describe().await?;
    let budget = request.read_limit.budget(&info)?.map(|rcu| Arc::new(ReadBudget::new(rcu)));
    table.check_filter().await?;
    let destination = Destination::open(&request.target, &aws.s3, &request.s3).await?;
    destination.check().await?;

    let fingerprint = fingerprint(request, &info, &destination, runtime);
    let claimed = match claim(&destination, request, &info, &fingerprint, &aws.region).await? {
        Claim::Complete(state, summary) => return completed_earlier(&destination, state, &summary).await,
        claimed => claimed,
    };
    // After that check (a complete export is returned whatever the stream is now), and before
    // anything is written: a consistent export's stream must serve it.
    let consistent = match request.consistent {
        true => match crate::pipeline::cut::prepare(aws, &table, &info).await {
            Ok(consistent) => Some(Arc::new(consistent)),
            Err(error) => {
                claimed.release().await;
                return Err(error.into());
            }
        },
        false => None,
    };
    let (state, lease, resumed) = match claimed {
        Claim::Unfinished(state, lease) if state.fanout => {
            lease.release().await;
            return Err(ExportError::InvalidArgument {
                what: if request.resume.is_some() { "--resume" } else { "--client-token" },
                message: format!(
                    "export {} was planned for fan-out (`ddb-export plan`): run its unfinished shards with \
                     `ddb-export run-shard`, then `ddb-export finalize`",
                    state.snapshot.export_id
                ),
            }
            .into());
        }
        Claim::Unfinished(state, lease) => (state, lease, true),
        Claim::New(token_lease) => {
            let started = start(runtime, &destination, request, &info, fingerprint, &aws.region, &stop, false).await;
            // The token's lease is held until the new export is recorded (or failed to be).
            if let Some(lease) = token_lease {
                lease.release().await;
            }
            let (state, lease) = started?;
            (state, lease, false)
        }
        Claim::Complete(..) => unreachable!("returned above"),
    };
    let keep_alive = lease.keep_alive(stop.clone());
    let held = Held { state, lease: lease.clone(), resumed };
    let report = write_export(request, &table, &info, budget, destination, runtime, held, consistent, stop).await;
    drop(keep_alive);
    lease.release().await;
    report
}
