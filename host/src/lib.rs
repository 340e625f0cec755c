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

pub mod aws;
pub mod catalog;
pub mod checkpoint;
mod checksum;
pub mod component;
pub mod consistent;
pub mod description;
pub mod destination;
mod duplicates;
pub mod dynamodb;
pub mod error;
pub mod export;
pub mod fanout;
pub mod incremental;
pub mod lease;
pub mod model;
pub mod progress;
pub mod read_budget;
mod shard;
mod stored;
pub mod stream;
pub mod verify;

pub use aws::AwsClients;
pub use component::{CacheDir, ComponentError, ComponentRuntime, ComponentSource, GuestLimits};
pub use description::{DescribeExportOutput, ExportDescription, ExportStatus};
pub use destination::{S3Options, Target};
pub use error::ExportError;
pub use export::{ExportFailure, ExportReport, ExportRequest};
pub use model::ExportFormat;
