//! ddb-export's step component: the fan-out steps of an export (`plan`, `run-shard`,
//! `finalize`) run inside a component (`wit/step`), for engines that run components as steps.
//!
//! The component does the work the host's `plan`, `run-shard` and `finalize` do, on the same
//! objects: the state formats of [`ddb_export_state_format`] (so a shard begun by `ddb-export
//! run-shard` is finished by this component and the other way round, and either's finalize
//! publishes), the default component's own code linked in for the export's identity, its shard
//! plan, its data files and its manifests ([`ddb_export_guest`], so the bytes are the same
//! whoever writes them). Its only I/O is the `dynamodb` and `s3` imports ([`io`]); everything
//! else here is pure, and runs natively in unit tests against a fake.
//!
//! - [`plan`]: an export fixed at its destination, idempotent by its client token;
//! - [`shard`]: one bounded run of one shard, from its checkpoint;
//! - [`finalize`]: the manifests, once every shard is done;
//! - [`export`]: a planned export opened (its saved state read and checked);
//! - [`lease`]: leases, under the rules every holder keeps;
//! - [`location`]: an export's location, parsed; [`convert`]: between the model and the linked
//!   code's types.

mod bindings;
pub mod convert;
pub mod export;
pub mod finalize;
pub mod io;
pub mod lease;
pub mod location;
pub mod plan;
pub mod shard;
#[cfg(test)]
mod tests;

pub use bindings::exports::ddb_export::step::steps::{
    Budget, Error, ExportFormat, ExportPlan, ExportSummary, FinalizeRequest, PlanRequest, ScanFilter, ShardProgress,
    ShardRequest, Unfinished,
};

/// SHA-256 (hex) of the default component whose code this one links: an export planned with
/// that component is one this component writes the same bytes for. Set by the build
/// (`runtime/build.rs`, which builds both); a build without it refuses every export.
#[cfg(not(test))]
pub const ENCODER_COMPONENT_SHA256: Option<&str> = option_env!("DDB_EXPORT_GUEST_SHA256");
#[cfg(test)]
pub const ENCODER_COMPONENT_SHA256: Option<&str> = Some(tests::COMPONENT_DIGEST);

/// The component's exports.
struct Component;

impl bindings::exports::ddb_export::step::steps::Guest for Component {
    fn plan(request: PlanRequest) -> Result<ExportPlan, Error> {
        plan::run(&io::Imports, &request)
    }

    fn run_shard(request: ShardRequest) -> Result<ShardProgress, Error> {
        shard::run(&io::Imports, &request)
    }

    fn finalize(request: FinalizeRequest) -> Result<ExportSummary, Error> {
        finalize::run(&io::Imports, &request)
    }
}

#[cfg(target_arch = "wasm32")]
bindings::export!(Component with_types_in bindings);
