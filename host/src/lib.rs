//! ddb-export: export a DynamoDB table to S3 (or a directory) in the layout of AWS's
//! "Export to S3", computed by a sandboxed WebAssembly component.
//!
//! The host does all I/O; the component (the default one is built from `guest/`) decides what
//! the export is and encodes it, through the WIT contract in `wit/`. Embedding in a few lines:
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use ddb_export::{AwsClients, CacheDir, ComponentRuntime, ComponentSource, ExportRequest, GuestLimits, Target};
//!
//! let aws = AwsClients::from_env().await?;
//! let runtime = ComponentRuntime::load(&ComponentSource::Default, GuestLimits::default(), &CacheDir::from_env())?;
//! let request = ExportRequest::new("orders", Target::parse("s3://my-bucket/backups")?);
//! let report = ddb_export::export::run(&aws, &runtime, &request).await.map_err(|f| f.error)?;
//! println!("{}", report.description.export_arn);
//! # Ok(()) }
//! ```
//!
//! Progress reaches an embedding program through [`progress::ProgressStyle::Observe`]; an
//! encoder plugin is added with [`ComponentRuntime::with_encoder`]; an engine with its own
//! scheduling runs an export as separate steps with [`fanout`] (`plan`, `run_shard` on any
//! machine, `finalize`): see `examples/pipeline_engine.rs`.
//!
//! # The layers
//!
//! This crate's modules are private; what is public is the facade below. Inside, each layer
//! imports only the layers under it (`ARCHITECTURE.md` draws them; a unit test in this file
//! checks the rule):
//!
//! ```text
//! modes      full · incremental · fan-out · restore (never each other)
//! lifecycle  request · claim · start · resume · publish · verify
//! pipeline   shard (scan → encode → store) · restore (read → decode → write) · schedule ·
//!            capacity budget · retry · progress · cut
//! state      checkpoints · leases · tokens · catalog · descriptions · stored-file check
//! io         AWS clients · DynamoDB table and stream · destinations      runtime (crate)
//! error      ExportError                                                 model (crate)
//! ```

pub mod error;
mod io;
mod lifecycle;
mod modes;
mod pipeline;
mod state;

/// The plain model of an export, its settings' names ([`model::Field`]), time, checksums and
/// AWS's layout.
pub use ddb_export_model as model;
/// The wasmtime runtime: components and encoder plugins, sandboxed and checked.
pub use ddb_export_runtime as runtime;

pub use error::ExportError;
pub use io::aws::AwsClients;
pub use io::destination::{S3Options, Target};
pub use lifecycle::{ExportFailure, ExportReport, ExportRequest};
pub use model::ExportFormat;
pub use runtime::{CacheDir, ComponentError, ComponentRuntime, ComponentSource, GuestLimits};
pub use state::description::{DescribeExportOutput, ExportDescription, ExportStatus};

/// Running an export in one call: [`export::run`] (or [`export::run_until_stopped`] with a stop
/// flag), with its request's settings.
pub mod export {
    pub use crate::lifecycle::{
        DEFAULT_ON_DEMAND_RCU, DEFAULT_READ_PERCENT, DEFAULT_TARGET_FILE_BYTES, ExportFailure, ExportReport,
        ExportRequest, MAX_PARALLELISM, ReadLimit, default_parallelism, resume_export_id,
    };
    pub use crate::model::IncrementalWindow;
    pub use crate::modes::{run, run_until_stopped};
    pub use crate::pipeline::schedule::MIN_LANE_RCU;
}

/// An export as separate steps for an engine with its own scheduling: [`fanout::plan`] once,
/// [`fanout::run_shard`] for each shard on any machine, [`fanout::finalize`] once.
pub mod fanout {
    pub use crate::modes::fanout::{
        ExportPlan, PLAN_VERSION, PlanLocation, ShardReport, ShardRun, finalize, plan, run_shard,
    };

    /// The same steps run by the step component (`wit/step`), this host carrying out its
    /// DynamoDB and S3 calls: `plan`, `run-shard` and `finalize --in-component`.
    pub mod in_component {
        pub use crate::modes::fanout::component::{StepBudget, StepRun, finalize, plan, run_shard};
    }
}

/// The step component (`wit/step`) for a Rust engine that embeds it: the built-in component,
/// the one-call linker of its `dynamodb` and `s3` imports ([`step::add_to_linker`], carried out
/// by a store's [`step::StepView`]), and this host's native implementation of them
/// ([`step::NativeStepIo`]; its calls block, so call the component on a blocking thread of the
/// tokio runtime it was made with).
pub mod step {
    pub use crate::model::step::*;
    pub use crate::pipeline::step_io::NativeStepIo;
    pub use crate::runtime::step::{
        STEP_COMPONENT, StepComponent, StepIo, StepView, add_to_linker, wasmtime, wasmtime_wasi,
    };
}

/// Checking a stored export against its manifests, each item once.
pub mod verify {
    pub use crate::lifecycle::verify::{VerifyReport, verify};
}

/// An export (a full one, then incremental ones; ours or AWS's) back into a table: in one call
/// ([`restore::run`]), or fanned out ([`restore::plan`], [`restore::run_shard`] on any
/// machine, [`restore::finalize`]).
pub mod restore {
    pub use crate::model::{KeyAttribute, KeyType, SchemaBilling};
    pub use crate::modes::restore::{
        DEFAULT_FILES_PER_SHARD, DEFAULT_ON_DEMAND_WCU, DEFAULT_REQUESTS, DEFAULT_WRITE_PERCENT, MAX_REQUESTS,
        RestoreFiguresRecord, RestorePlan, RestoreReport, RestoreRequest, RestoreShardReport, WriteLimit, WriteMode,
        WriterOptions, finalize, plan, run, run_shard,
    };
    pub use crate::pipeline::restore::RestoreFigures;
}

/// The exports at a destination: listed, or one described, as the AWS CLI prints them.
pub mod catalog {
    pub use crate::state::catalog::{ExportSummary, ListExportsOutput, describe, list};
}

/// How an export shows its progress, and its figures.
pub mod progress {
    pub use crate::model::ProgressFigures;
    pub use crate::pipeline::progress::{ProgressObserver, ProgressStyle};
}

/// Where an export is written.
pub mod destination {
    pub use crate::io::destination::{Destination, S3Options, Target};
}

/// Reading a DynamoDB table: the filter a Scan may carry, and the packed page the WIT's
/// `encode-page` takes, made from SDK items (for tests and embedders that hold SDK items).
pub mod dynamodb {
    pub use crate::io::pack::pack as pack_page;
    pub use crate::model::ScanFilter;

    /// SDK items as the JSON array a Scan response holds (what
    /// [`Encoder::encode_json`](crate::runtime::Encoder::encode_json) takes).
    pub fn items_json(items: &[std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>]) -> Vec<u8> {
        crate::io::items::RawItems::from_items(items).json().to_vec()
    }
}

#[cfg(test)]
mod layers {
    //! The import rule of `ARCHITECTURE.md`, checked on the source: a module refers only to
    //! the layers under its own (and to the model and runtime crates), io never to the
    //! runtime, and no mode to another mode.

    use std::path::{Path, PathBuf};

    /// The host's layers, low to high.
    const LAYERS: [&str; 6] = ["error", "io", "state", "pipeline", "lifecycle", "modes"];

    fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("read the source folder").flatten() {
            let path = entry.path();
            if path.is_dir() {
                rust_files(&path, found);
            } else if path.extension().is_some_and(|e| e == "rs") {
                found.push(path);
            }
        }
    }

    /// Every `crate::<module>` path outside comments, with its next segment.
    fn references(code: &str) -> Vec<(String, String)> {
        let mut found = Vec::new();
        for line in code.lines().map(str::trim_start).filter(|l| !l.starts_with("//")) {
            for (at, _) in line.match_indices("crate::") {
                let mut segments = line[at + "crate::".len()..]
                    .split("::")
                    .map(|s| s.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect::<String>());
                let top = segments.next().unwrap_or_default();
                found.push((top, segments.next().unwrap_or_default()));
            }
        }
        found
    }

    #[test]
    fn layers_import_only_downward() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        let mut wrong = Vec::new();
        for file in &files {
            let relative = file.strip_prefix(&src).expect("under src").to_string_lossy().replace('\\', "/");
            let top = relative.split('/').next().unwrap_or_default().trim_end_matches(".rs").to_string();
            let Some(rank) = LAYERS.iter().position(|l| *l == top) else { continue };
            let code = std::fs::read_to_string(file).expect("read a source file");
            let own_mode = relative.strip_prefix("modes/").and_then(|r| r.split(['/', '.']).next()).unwrap_or("");
            for (module, next) in references(&code) {
                let allowed = match LAYERS.iter().position(|l| *l == module) {
                    Some(theirs) if theirs < rank => true,
                    Some(theirs) if theirs == rank => {
                        top != "modes" || own_mode == "mod" || next == own_mode || next.is_empty()
                    }
                    Some(_) => false,
                    None => module == "model" || (module == "runtime" && top != "io"),
                };
                if !allowed {
                    wrong.push(format!("{relative} refers to crate::{module}::{next}"));
                }
            }
            if top == "io" && (code.contains("ddb_export_runtime") || code.contains("wasmtime::")) {
                wrong.push(format!("{relative} refers to the wasmtime runtime"));
            }
        }
        assert!(wrong.is_empty(), "imports against the layers:\n{}", wrong.join("\n"));
    }

    #[test]
    fn the_rule_catches_an_upward_import() {
        assert_eq!(references("use crate::modes::fanout::plan;"), [("modes".to_string(), "fanout".to_string())]);
        assert!(references("// crate::modes in a comment").is_empty());
    }
}
