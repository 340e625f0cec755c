//! The step component (`wit/step`, built from `step/`): an export's fan-out steps run inside a
//! component that does the work itself and reaches AWS only through the `dynamodb` and `s3`
//! imports. The host supplies those natively through [`StepIo`] (this crate knows no AWS), so
//! `ddb-export` runs the very component an engine such as Obelisk runs; a Rust engine that
//! embeds the host library links them into its own [`Linker`] with one call, [`add_to_linker`].
//!
//! Unlike the export components, a step component gets the real clocks and real randomness
//! (its leases are timed by the wall clock and named by a random id; its budget is time) and no
//! per-call deadline (a call is bounded by its own budget); it gets no files, network,
//! environment or arguments, and its memory is capped.

mod convert;

/// The wasmtime an embedding engine links the step imports into: the same one this crate uses.
pub use wasmtime;
pub use wasmtime_wasi;

use wasmtime::component::{HasData, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use ddb_export_model::TableInfo;
use ddb_export_model::step::{
    AwsFailure, StepBucket, StepFailure, StepFinalizeRequest, StepListedObject, StepPlan, StepPlanRequest, StepScan,
    StepScanPage, StepShardProgress, StepShardRequest, StepSummary, WriteCondition,
};

use crate::bindings::step::{Step, StepPre};
use crate::cache::{self, CacheDir};
use crate::limits::{GuestLimits, Limiter};
use crate::{ComponentError, STDERR_CAPACITY, sandboxed_wasi, stderr_tail};

/// The step component, built from `step/` by this crate's build script.
pub const STEP_COMPONENT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/ddb_export_step.wasm"));

/// The step component with its adapter composed in: one component importing only WASI and
/// `wasi:http` (it reaches AWS itself, with the credentials, region and endpoint its
/// environment names), what an engine such as Obelisk runs.
#[cfg(feature = "step-engine")]
pub const STEP_ENGINE_COMPONENT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/ddb_export_step_engine.wasm"));

/// An object's bytes and ETag, or `None` when there is no object.
pub type Found = Option<(Vec<u8>, String)>;

/// The DynamoDB and S3 calls a step component makes, as a host carries them out. Each is one
/// blocking call: the component waits for it.
pub trait StepIo: Send {
    /// DescribeTable, and the region of the endpoint that answered.
    fn describe_table(&mut self, table: &str) -> Result<(TableInfo, String), AwsFailure>;
    /// One Scan page, its items as the service sent them.
    fn scan(&mut self, request: StepScan) -> Result<StepScanPage, AwsFailure>;
    /// Checks that the bucket is there and may be used as `bucket` says (HeadBucket).
    fn check_bucket(&mut self, bucket: &StepBucket) -> Result<(), AwsFailure>;
    /// An object and its ETag; `None` when there is none.
    fn get_object(&mut self, bucket: &StepBucket, key: &str) -> Result<Found, AwsFailure>;
    /// Many objects (at most 1,000), read at once where the host can; `None` where there is none.
    fn get_objects(&mut self, bucket: &StepBucket, keys: &[String]) -> Result<Vec<Found>, AwsFailure>;
    /// Writes an object if `condition` holds: its ETag, or `None` when it did not hold.
    fn put_object(
        &mut self,
        bucket: &StepBucket,
        key: &str,
        body: Vec<u8>,
        condition: WriteCondition,
    ) -> Result<Option<String>, AwsFailure>;
    /// Deletes an object (one that is not there is no error).
    fn delete_object(&mut self, bucket: &StepBucket, key: &str) -> Result<(), AwsFailure>;
    /// Deletes many objects (at most 1,000), at once where the host can.
    fn delete_objects(&mut self, bucket: &StepBucket, keys: &[String]) -> Result<(), AwsFailure>;
    /// One page of the objects under `prefix`, and where the next begins.
    fn list_objects(
        &mut self,
        bucket: &StepBucket,
        prefix: &str,
        continuation: Option<String>,
    ) -> Result<(Vec<StepListedObject>, Option<String>), AwsFailure>;
}

/// A store's state that can lend the step imports their [`StepIo`], as `WasiView` lends WASI
/// its context.
pub trait StepView: Send {
    fn step_io(&mut self) -> &mut dyn StepIo;
}

/// Links the step world's imports (`dynamodb`, `s3`) into `linker`, carried out by each
/// store's [`StepView::step_io`]. WASI is the caller's to link.
pub fn add_to_linker<T: StepView + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    Step::add_to_linker::<T, StepImports>(linker, |state| convert::Imports(state.step_io()))
}

/// The [`HasData`] of the step imports: a store's [`StepIo`], borrowed for a call.
struct StepImports;

impl HasData for StepImports {
    type Data<'a> = convert::Imports<'a>;
}

/// A compiled step component, ready to run calls in fresh instances.
pub struct StepComponent {
    engine: Engine,
    pre: StepPre<StepState>,
    name: String,
    limits: GuestLimits,
}

struct StepState {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: Limiter,
    io: Box<dyn StepIo>,
}

impl WasiView for StepState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl StepView for StepState {
    fn step_io(&mut self) -> &mut dyn StepIo {
        self.io.as_mut()
    }
}

impl StepComponent {
    /// Compiles (or fetches from `cache`) the built-in step component and links it against
    /// WASI and the step imports. `limits.call_timeout` is not applied (see the module doc).
    pub fn load(limits: GuestLimits, cache: &CacheDir) -> Result<Self, ComponentError> {
        let name = "the built-in step component".to_string();
        let load_error =
            |e: wasmtime::Error| ComponentError::Load { component: name.clone(), message: format!("{e:#}") };
        let engine = Engine::new(&Config::new()).map_err(load_error)?;
        let (component, _) = cache::load(&engine, STEP_COMPONENT, cache).map_err(load_error)?;
        let mut linker: Linker<StepState> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(load_error)?;
        add_to_linker(&mut linker).map_err(load_error)?;
        let pre = linker.instantiate_pre(&component).map_err(load_error)?;
        let pre = StepPre::new(pre).map_err(load_error)?;
        Ok(Self { engine, pre, name, limits })
    }

    /// The component's name in messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `plan` in a fresh instance whose imports `io` carries out.
    pub fn plan(
        &self,
        io: Box<dyn StepIo>,
        request: &StepPlanRequest,
    ) -> Result<Result<StepPlan, StepFailure>, ComponentError> {
        let request = convert::plan_request(request);
        self.call(io, "plan", |steps, store| steps.call_plan(store, &request))
            .map(|answer| answer.map(convert::plan).map_err(convert::failure))
    }

    /// Runs `run-shard` in a fresh instance whose imports `io` carries out.
    pub fn run_shard(
        &self,
        io: Box<dyn StepIo>,
        request: &StepShardRequest,
    ) -> Result<Result<StepShardProgress, StepFailure>, ComponentError> {
        let request = convert::shard_request(request);
        self.call(io, "run-shard", |steps, store| steps.call_run_shard(store, &request))
            .map(|answer| answer.map(convert::progress).map_err(convert::failure))
    }

    /// Runs `finalize` in a fresh instance whose imports `io` carries out.
    pub fn finalize(
        &self,
        io: Box<dyn StepIo>,
        request: &StepFinalizeRequest,
    ) -> Result<Result<StepSummary, StepFailure>, ComponentError> {
        let request = convert::finalize_request(request);
        self.call(io, "finalize", |steps, store| steps.call_finalize(store, &request))
            .map(|answer| answer.map(convert::summary).map_err(convert::failure))
    }

    /// One call in a fresh store and instance. Blocks for the whole call. The outer error is
    /// the component's failure (a trap, its memory cap); the inner one is the step's answer.
    fn call<R>(
        &self,
        io: Box<dyn StepIo>,
        call: &'static str,
        run: impl FnOnce(
            &crate::bindings::step::exports::ddb_export::step::steps::Guest,
            &mut Store<StepState>,
        ) -> wasmtime::Result<R>,
    ) -> Result<R, ComponentError> {
        let stderr = MemoryOutputPipe::new(STDERR_CAPACITY);
        let wasi = sandboxed_wasi(&stderr).build();
        let state = StepState { wasi, table: ResourceTable::new(), limiter: Limiter::new(&self.limits), io };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limiter);
        let failed = |store: &Store<StepState>, error: wasmtime::Error| {
            let component = self.name.clone();
            if store.data().limiter.memory_refused {
                return ComponentError::MemoryLimit { component, call, limit_bytes: self.limits.memory_bytes };
            }
            let stderr = stderr_tail(&stderr.contents());
            let stderr = if stderr.is_empty() { stderr } else { format!("; its stderr: {stderr}") };
            ComponentError::Trap { component, call, message: format!("{error:#}{stderr}") }
        };
        let instance = match self.pre.instantiate(&mut store) {
            Ok(instance) => instance,
            Err(error) => return Err(failed(&store, error)),
        };
        match run(instance.ddb_export_step_steps(), &mut store) {
            Ok(answer) => Ok(answer),
            Err(error) => Err(failed(&store, error)),
        }
    }
}
