//! Running export components under wasmtime.
//!
//! [`ComponentRuntime`] compiles a component once (through the [`cache`]) and keeps one
//! `InstancePre`; every unit of work gets a fresh [`Session`]: its own `Store`, WASI context,
//! memory cap and per-call deadline. A component gets no files, no network, no environment
//! variables and no arguments; its clocks stand still and its random numbers come from a fixed
//! seed (the contract's functions are deterministic by their WIT: a shard rerun on another
//! machine must write the same bytes under the same names); its stderr is captured so a panic
//! message reaches the error report.
//!
//! Everything a component returns is checked here before the rest of the host sees it.

mod bindings;
mod cache;
mod compression;
mod convert;
mod limits;
mod plugin;
mod resources;
pub mod step;
mod validate;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store, Trap};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use bindings::{Exporter, ExporterPre, logging};
pub use cache::{CacheDir, LoadedFrom};
pub use ddb_export_model::UnsupportedItem;
pub use limits::GuestLimits;
use limits::Limiter;
pub use plugin::{EncoderPlugin, PLUGIN_API_VERSION, PluginInfo};
pub use resources::{ChangeEncoder, Encoder, FileChecker, FileDecoder, LineFilter};

use ddb_export_model::{
    EncoderOptions, ExportTotals, Field, ManifestEntry, ManifestsCheck, ShardPlan, Snapshot, SnapshotRequest,
    StoredObject, TableInfo,
};

/// The default component, built from `guest/` by this crate's build script.
pub const DEFAULT_COMPONENT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/ddb_export_guest.wasm"));

/// How often the epoch ticker advances; the resolution of the per-call deadline.
const EPOCH_TICK: Duration = Duration::from_millis(10);
/// Bytes of a component's stderr kept for error reports (more makes the write trap).
pub(crate) const STDERR_CAPACITY: usize = 64 * 1024;

/// Which component to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ComponentSource {
    /// The component built into this binary.
    Default,
    /// A component file (`--component PATH`).
    File(PathBuf),
}

impl fmt::Display for ComponentSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ComponentSource::Default => f.write_str("the built-in component"),
            ComponentSource::File(path) => write!(f, "component {}", path.display()),
        }
    }
}

/// Why a component could not do what was asked. Every case names the component.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum ComponentError {
    #[error("could not read {component}: {source}")]
    Read { component: String, source: std::io::Error },
    #[error("{component} is not a usable component: {message}")]
    Load { component: String, message: String },
    #[error("{component} exceeded its time limit of {limit:?} per call ({}) in `{call}`", Field::ComponentTimeout)]
    Timeout { component: String, call: &'static str, limit: Duration },
    #[error(
        "{component} exceeded its memory limit of {} MiB ({}) in `{call}`",
        limit_bytes / (1024 * 1024),
        Field::ComponentMemory
    )]
    MemoryLimit { component: String, call: &'static str, limit_bytes: usize },
    #[error("{component} trapped in `{call}`: {message}")]
    Trap { component: String, call: &'static str, message: String },
    #[error("{component} refused `{call}`: {message}")]
    Refused { component: String, call: &'static str, message: String },
    #[error("{component} broke the WIT contract in `{call}`: {message}")]
    Contract { component: String, call: &'static str, message: String },
    #[error("{component} cannot take {source}")]
    UnsupportedItem { component: String, source: UnsupportedItem },
}

/// A compiled component, ready to instantiate many times, with the encoder plugin (if any)
/// that writes its data files in place of its own encoder.
#[derive(Clone)]
pub struct ComponentRuntime {
    inner: Arc<RuntimeInner>,
}

#[derive(Clone)]
struct RuntimeInner {
    sandbox: Arc<Sandbox>,
    pre: ExporterPre<HostState>,
    loaded_from: LoadedFrom,
    load_time: Duration,
    encoder: Option<EncoderPlugin>,
}

/// What every instance of one compiled component shares: its engine (and epoch ticker), its
/// name in messages, its limits and its digest.
pub(crate) struct Sandbox {
    engine: Engine,
    name: String,
    limits: GuestLimits,
    /// SHA-256 of the component's bytes, hex.
    digest: String,
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        // Lets the ticker thread notice the engine is gone sooner.
        self.engine.increment_epoch();
    }
}

impl Sandbox {
    /// Reads `source` and compiles it (or fetches its compiled code from `cache`).
    fn compile(
        source: &ComponentSource,
        name: String,
        limits: GuestLimits,
        cache: &CacheDir,
    ) -> Result<(Arc<Sandbox>, Component, LoadedFrom), ComponentError> {
        let wasm = match source {
            ComponentSource::Default => std::borrow::Cow::Borrowed(DEFAULT_COMPONENT),
            ComponentSource::File(path) => std::borrow::Cow::Owned(
                std::fs::read(path).map_err(|source| ComponentError::Read { component: name.clone(), source })?,
            ),
        };
        let load_error =
            |e: wasmtime::Error| ComponentError::Load { component: name.clone(), message: format!("{e:#}") };
        let digest = ddb_export_model::checksum::hex(&<sha2::Sha256 as sha2::Digest>::digest(&wasm));
        let mut config = Config::new();
        config.epoch_interruption(true);
        let engine = Engine::new(&config).map_err(load_error)?;
        let (component, loaded_from) = cache::load(&engine, &wasm, cache).map_err(load_error)?;
        spawn_epoch_ticker(&engine);
        Ok((Arc::new(Sandbox { engine, name, limits, digest }), component, loaded_from))
    }

    /// A linker holding WASI (with nothing granted: see `instance`).
    fn linker(&self) -> Result<Linker<HostState>, ComponentError> {
        let mut linker: Linker<HostState> = Linker::new(&self.engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(|e| self.load_error(e))?;
        Ok(linker)
    }

    fn load_error(&self, error: wasmtime::Error) -> ComponentError {
        ComponentError::Load { component: self.name.clone(), message: format!("{error:#}") }
    }

    /// A fresh instance in its own store: no files, network, environment or arguments; its
    /// stderr captured; clocks that stand still and randomness from a fixed seed, so that
    /// every step is as deterministic as the WIT says it is, whatever the component.
    fn instance<E>(
        self: &Arc<Self>,
        instantiate: impl FnOnce(&mut Store<HostState>) -> wasmtime::Result<E>,
    ) -> Result<Session<E>, ComponentError> {
        let stderr = MemoryOutputPipe::new(STDERR_CAPACITY);
        let wasi = sandboxed_wasi(&stderr)
            .wall_clock(StillClock)
            .monotonic_clock(StillClock)
            .secure_random(<rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(0))
            .insecure_random(<rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(1))
            .insecure_random_seed(0)
            .build();
        let state = HostState {
            wasi,
            table: ResourceTable::new(),
            limiter: Limiter::new(&self.limits),
            component: self.name.clone(),
            open_gzip_streams: 0,
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limiter);
        let exports = guarded(self, &mut store, &stderr, "instantiate", instantiate)?;
        Ok(Session { runtime: self.clone(), store, exports: Arc::new(exports), stderr, poisoned: false })
    }
}

impl ComponentRuntime {
    /// Loads and compiles (or fetches from `cache`) the component, and links it against the
    /// host's imports. Fails if it is not a component of the `exporter` world.
    pub fn load(source: &ComponentSource, limits: GuestLimits, cache: &CacheDir) -> Result<Self, ComponentError> {
        let started = Instant::now();
        let (sandbox, component, loaded_from) = Sandbox::compile(source, source.to_string(), limits, cache)?;
        let mut linker = sandbox.linker()?;
        Exporter::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |state| state)
            .map_err(|e| sandbox.load_error(e))?;
        let pre = linker.instantiate_pre(&component).map_err(|e| sandbox.load_error(e))?;
        let pre = ExporterPre::new(pre).map_err(|e| sandbox.load_error(e))?;
        let load_time = started.elapsed();
        Ok(Self { inner: Arc::new(RuntimeInner { sandbox, pre, loaded_from, load_time, encoder: None }) })
    }

    /// This runtime with `plugin` writing the data files of full exports (`--encoder`).
    pub fn with_encoder(self, plugin: EncoderPlugin) -> Self {
        Self { inner: Arc::new(RuntimeInner { encoder: Some(plugin), ..(*self.inner).clone() }) }
    }

    /// The encoder plugin, if one writes the data files.
    pub fn encoder_plugin(&self) -> Option<&EncoderPlugin> {
        self.inner.encoder.as_ref()
    }

    /// The component's name in messages.
    pub fn name(&self) -> &str {
        &self.inner.sandbox.name
    }

    /// SHA-256 of the component's bytes (hex): a resumed export must run the same component.
    pub fn digest(&self) -> &str {
        &self.inner.sandbox.digest
    }

    /// Whether the compiled code came from the cache, and how long loading took.
    pub fn load_stats(&self) -> (LoadedFrom, Duration) {
        (self.inner.loaded_from, self.inner.load_time)
    }

    /// A fresh instance in its own store.
    pub fn session(&self) -> Result<Session, ComponentError> {
        let pre = self.inner.pre.clone();
        self.inner.sandbox.instance(|store| pre.instantiate(store))
    }

    /// Step 3a: an encoder for one shard: the plugin's, when there is one, else the
    /// component's own. Each lives in a fresh instance.
    pub fn open_encoder(&self, snapshot: &Snapshot, options: &EncoderOptions) -> Result<Encoder, ComponentError> {
        match &self.inner.encoder {
            Some(plugin) => plugin.open_encoder(snapshot, options),
            None => self.session()?.open_encoder(snapshot, options),
        }
    }
}

/// The clocks a component sees: they stand still at the Unix epoch (the contract's steps take
/// every time they need as arguments; the per-call deadline is the host's, not the guest's).
struct StillClock;

impl wasmtime_wasi::HostWallClock for StillClock {
    fn resolution(&self) -> Duration {
        Duration::from_nanos(1)
    }

    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl wasmtime_wasi::HostMonotonicClock for StillClock {
    fn resolution(&self) -> u64 {
        1
    }

    fn now(&self) -> u64 {
        0
    }
}

/// Runs one call into a store under the per-call deadline and memory cap, and turns a failure
/// into the [`ComponentError`] that names its cause.
fn guarded<R>(
    runtime: &Sandbox,
    store: &mut Store<HostState>,
    stderr: &MemoryOutputPipe,
    call: &'static str,
    f: impl FnOnce(&mut Store<HostState>) -> wasmtime::Result<R>,
) -> Result<R, ComponentError> {
    let limit = runtime.limits.call_timeout;
    let ticks = u64::try_from(limit.as_millis() / EPOCH_TICK.as_millis()).unwrap_or(u64::MAX).max(1);
    store.set_epoch_deadline(ticks);
    store.data_mut().limiter.memory_refused = false;
    f(store).map_err(|error| {
        let component = runtime.name.clone();
        if error.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
            return ComponentError::Timeout { component, call, limit };
        }
        if store.data().limiter.memory_refused {
            return ComponentError::MemoryLimit { component, call, limit_bytes: runtime.limits.memory_bytes };
        }
        // Not a trap: the host could not lift what the call returned (a string that is not
        // UTF-8, a pointer out of bounds, a bad resource handle): the component's fault.
        let stderr = stderr_tail(&stderr.contents());
        let stderr = if stderr.is_empty() { stderr } else { format!("; its stderr: {stderr}") };
        if call != "instantiate" && error.downcast_ref::<Trap>().is_none() {
            let message =
                format!("it failed without a trap (its result could not be read, or it exited): {error:#}{stderr}");
            return ComponentError::Contract { component, call, message };
        }
        ComponentError::Trap { component, call, message: format!("{error:#}{stderr}") }
    })
}

/// Bytes of a component's stderr quoted in an error: its end, where a panic message is.
const STDERR_QUOTED: usize = 2048;

/// WASI as every component here gets it: its stderr captured in `stderr` (for error reports),
/// no network, no files, no environment, no arguments. Callers add clocks and randomness.
pub(crate) fn sandboxed_wasi(stderr: &MemoryOutputPipe) -> wasmtime_wasi::WasiCtxBuilder {
    let mut builder = WasiCtx::builder();
    builder.stderr(stderr.clone()).allow_tcp(false).allow_udp(false).allow_ip_name_lookup(false);
    builder
}

/// The end of a component's stderr, trimmed, for an error message.
pub(crate) fn stderr_tail(captured: &[u8]) -> String {
    let text = String::from_utf8_lossy(captured);
    let text = text.trim();
    if text.len() <= STDERR_QUOTED {
        return text.to_string();
    }
    let mut start = text.len() - STDERR_QUOTED;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!("…{}", &text[start..])
}

/// Checks that an encoder's data file key follows AWS's layout for this export (the shard
/// pipeline applies it to every `file-started` event).
pub fn check_data_file_key(snapshot: &Snapshot, key: &str) -> Result<(), String> {
    validate::data_file_key(snapshot, key)
}

/// Checks a snapshot read back from an export's saved state as strictly as one fresh from a
/// component, against what this run was asked for (`request`, with the saved export's token
/// and start time): it is data from the destination, which anyone with write access could change.
pub fn check_saved_snapshot(table: &TableInfo, request: &SnapshotRequest, snapshot: &Snapshot) -> Result<(), String> {
    validate::snapshot(table, request, snapshot)
}

/// Checks a shard plan read back from an export's saved state.
pub fn check_saved_plan(plan: &ShardPlan, requested_segments: Option<u32>) -> Result<(), String> {
    validate::plan(plan, requested_segments)
}

/// Advances the engine's epoch every [`EPOCH_TICK`] until the engine is dropped.
fn spawn_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::spawn(move || {
        while let Some(engine) = weak.upgrade() {
            engine.increment_epoch();
            drop(engine);
            std::thread::sleep(EPOCH_TICK);
        }
    });
}

/// Per-store state: the WASI context the component's standard library needs, the resource
/// table, the limiter.
struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: Limiter,
    component: String,
    /// Gzip streams of the `compression` import open now (`compression::MAX_OPEN_STREAMS`).
    open_gzip_streams: usize,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// `types` only holds type definitions; nothing to implement.
impl bindings::types::Host for HostState {}

/// Longest log message accepted from a component; longer ones are cut.
const MAX_LOG_MESSAGE: usize = 4096;

impl logging::Host for HostState {
    fn log(&mut self, level: logging::Level, message: String) {
        let mut message = message;
        if message.len() > MAX_LOG_MESSAGE {
            let mut cut = MAX_LOG_MESSAGE;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push('…');
        }
        let component = &self.component;
        match level {
            logging::Level::Error => tracing::error!(target: "component", %component, "{message}"),
            logging::Level::Warn => tracing::warn!(target: "component", %component, "{message}"),
            logging::Level::Info => tracing::info!(target: "component", %component, "{message}"),
            logging::Level::Debug => tracing::debug!(target: "component", %component, "{message}"),
            logging::Level::Trace => tracing::trace!(target: "component", %component, "{message}"),
        }
    }
}

/// One instance of a component in its own store (of the `exporter` world unless said
/// otherwise). After a trap the store is unusable, and every later call fails at once.
pub struct Session<E = Exporter> {
    runtime: Arc<Sandbox>,
    store: Store<HostState>,
    exports: Arc<E>,
    stderr: MemoryOutputPipe,
    poisoned: bool,
}

impl<E> Session<E> {
    fn component(&self) -> String {
        self.runtime.name.clone()
    }

    /// Runs one call; after any failure the store is poisoned and refuses further calls.
    fn call<R>(
        &mut self,
        call: &'static str,
        f: impl FnOnce(&mut Store<HostState>) -> wasmtime::Result<R>,
    ) -> Result<R, ComponentError> {
        if self.poisoned {
            return Err(ComponentError::Trap {
                component: self.component(),
                call,
                message: "the instance already trapped and cannot be used again".into(),
            });
        }
        let result = guarded(&self.runtime, &mut self.store, &self.stderr, call, f);
        self.poisoned = result.is_err();
        result
    }

    fn refused(&self, call: &'static str, refusal: impl convert::InWords) -> ComponentError {
        ComponentError::Refused { component: self.component(), call, message: refusal.in_words() }
    }

    fn contract(&self, call: &'static str, message: String) -> ComponentError {
        ComponentError::Contract { component: self.component(), call, message }
    }
}

impl Session {
    /// Step 1: the export's identity. The result is checked against the request.
    pub fn snapshot(&mut self, table: &TableInfo, request: &SnapshotRequest) -> Result<Snapshot, ComponentError> {
        let exports = self.exports.clone();
        let wit_table = convert::table(table);
        let wit_request = convert::snapshot_request(request);
        let result = self.call("snapshot.create", |store| {
            exports.ddb_export_core_snapshot().call_create(store, &wit_table, &wit_request)
        })?;
        let snapshot = convert::snapshot_from_wit(result.map_err(|e| self.refused("snapshot.create", e))?);
        validate::snapshot(table, request, &snapshot).map_err(|m| self.contract("snapshot.create", m))?;
        Ok(snapshot)
    }

    /// Step 2: the shard plan. The result is checked to cover every segment exactly once.
    pub fn shard_plan(
        &mut self,
        table: &TableInfo,
        segments: Option<u32>,
        parallelism: u32,
    ) -> Result<ShardPlan, ComponentError> {
        let exports = self.exports.clone();
        let wit_table = convert::table(table);
        let request = bindings::shard_plan::PlanRequest { segments, parallelism };
        let result = self.call("shard-plan.create", |store| {
            exports.ddb_export_core_shard_plan().call_create(store, &wit_table, request)
        })?;
        let plan = convert::plan_from_wit(result.map_err(|e| self.refused("shard-plan.create", e))?);
        validate::plan(&plan, segments).map_err(|m| self.contract("shard-plan.create", m))?;
        Ok(plan)
    }

    /// Step 3b: the manifests, checked against what the host stored.
    pub fn manifests(
        &mut self,
        snapshot: &Snapshot,
        files: &[ManifestEntry],
        totals: &ExportTotals,
    ) -> Result<Vec<StoredObject>, ComponentError> {
        let exports = self.exports.clone();
        let wit_snapshot = convert::snapshot_to_wit(snapshot);
        let wit_files: Vec<_> = files.iter().map(convert::manifest_entry).collect();
        let wit_totals = convert::totals(totals);
        let result = self.call("write.manifests", |store| {
            exports.ddb_export_core_write().call_manifests(store, &wit_snapshot, &wit_files, wit_totals)
        })?;
        let objects: Vec<StoredObject> =
            result.map_err(|e| self.refused("write.manifests", e))?.into_iter().map(convert::object_from_wit).collect();
        validate::manifests(snapshot, files, totals, &objects).map_err(|m| self.contract("write.manifests", m))?;
        Ok(objects)
    }

    /// `verify`: the manifests of an export, parsed and cross-checked by the component. The
    /// inner `Err` is the component's word that the summary is unreadable.
    pub fn check_manifests(
        &mut self,
        summary: &[u8],
        summary_md5: Option<&[u8]>,
        files: &[u8],
        files_md5: Option<&[u8]>,
    ) -> Result<Result<ManifestsCheck, String>, ComponentError> {
        let exports = self.exports.clone();
        let result = self.call("verify.check-manifests", |store| {
            exports.ddb_export_core_verify().call_check_manifests(store, summary, summary_md5, files, files_md5)
        })?;
        Ok(match result {
            Ok(manifests) => Ok(convert::manifests_from_wit(manifests)),
            Err(bindings::verify::Error::UnreadableSummary(why)) => Err(why),
            Err(e) => return Err(self.refused("verify.check-manifests", e)),
        })
    }
}
