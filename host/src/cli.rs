//! Command-line flags.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use ddb_export::ExportFormat;

/// Export a DynamoDB table to S3 in the layout of AWS's "Export to S3".
#[derive(Debug, Parser)]
#[command(name = "ddb-export", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// More logging on stderr (-v: debug, -vv: trace). RUST_LOG overrides it.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Only errors on stderr.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
}

// Parsed once per run: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Export a table; prints the ExportDescription as JSON on stdout.
    Export(ExportArgs),
    /// Describe an export found at a destination (written by ddb-export or by AWS), as
    /// `aws dynamodb describe-export` prints it.
    Describe(DescribeArgs),
    /// List the exports under a destination's prefix, as `aws dynamodb list-exports` prints them.
    List(ListArgs),
    /// Check an export (written by ddb-export or by AWS): every listed file there with its
    /// ETag and MD5, counts that add up, every line parsing for its format, nothing unlisted
    /// under data/. Prints a report; exits 0 only when everything holds.
    Verify(DescribeArgs),
}

#[derive(Debug, Args)]
pub struct DescribeArgs {
    /// Where the export is: s3://bucket[/prefix] or a directory (with --export-id), or the
    /// export's own folder (…/AWSDynamoDB/<export id>).
    pub location: String,

    /// The export's id (or its ARN), when LOCATION is the destination rather than the export.
    #[arg(long)]
    pub export_id: Option<String>,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// The destination: s3://bucket[/prefix] or a directory.
    pub location: String,
}

/// Data file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// `{"Item":{...}}` lines, gzip (`.json.gz`).
    DynamodbJson,
    /// `$ion_1_0 {Item:{...}}` lines of Amazon Ion text, gzip (`.ion.gz`).
    Ion,
}

impl From<FormatArg> for ExportFormat {
    fn from(format: FormatArg) -> Self {
        match format {
            FormatArg::DynamodbJson => ExportFormat::DynamodbJson,
            FormatArg::Ion => ExportFormat::Ion,
        }
    }
}

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProgressArg {
    Auto,
    Lines,
    Off,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The table: a name, or a table ARN.
    #[arg(long)]
    pub table: String,

    /// Destination: s3://bucket[/prefix] or a local directory.
    #[arg(long)]
    pub to: String,

    /// Format of the data files.
    #[arg(long, value_enum, default_value_t = FormatArg::DynamodbJson)]
    pub format: FormatArg,

    /// Scan segments (1-1000000). Default: planned from the table's size.
    #[arg(long)]
    pub segments: Option<u32>,

    /// Segments exported at once. Default: 4 per core, between 4 and 32.
    #[arg(long)]
    pub parallelism: Option<u32>,

    /// Idempotency token (default: a random UUID). Run again with the same token and settings,
    /// an export returns the completed export, or resumes it if it was interrupted; with other
    /// settings it is refused.
    #[arg(long)]
    pub client_token: Option<String>,

    /// Resume an interrupted export (its export id or ARN) at the destination, from its
    /// checkpoints. The other settings must be the ones it was started with.
    #[arg(long, value_name = "EXPORT_ID")]
    pub resume: Option<String>,

    /// The 12-digit account id that must own the bucket.
    #[arg(long)]
    pub s3_bucket_owner: Option<String>,

    /// Encrypt objects with this KMS key (SSE-KMS) instead of the bucket's default.
    #[arg(long)]
    pub s3_sse_kms_key_id: Option<String>,

    /// Start a new data file once one holds this many compressed bytes (0: one file per segment).
    #[arg(long, default_value_t = ddb_export::export::DEFAULT_TARGET_FILE_BYTES)]
    pub file_size: u64,

    /// gzip level, 0-9.
    #[arg(long, default_value_t = 6)]
    pub compression_level: u8,

    /// Read at most this many read capacity units per second (shared by all segments).
    #[arg(long, value_name = "RCU", group = "read_limit")]
    pub max_rcu: Option<f64>,

    /// Read at most this percentage of a provisioned table's read capacity. Default: 50 on a
    /// provisioned table; on an on-demand table, 500 RCU/s unless --max-rcu says otherwise.
    #[arg(long, value_name = "PERCENT", group = "read_limit")]
    pub read_percent: Option<f64>,

    /// Read as fast as the table serves (throttling still slows the export down, never fails it).
    #[arg(long, group = "read_limit")]
    pub no_read_limit: bool,

    /// Progress on stderr: a live bar on a terminal (auto), periodic log lines, or none.
    #[arg(long, value_enum, default_value_t = ProgressArg::Auto)]
    pub progress: ProgressArg,

    /// Seconds between progress lines when there is no live bar.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub progress_interval_secs: u64,

    /// Run this component instead of the built-in one.
    #[arg(long, value_name = "PATH")]
    pub component: Option<PathBuf>,

    /// Memory cap of each component instance (all its linear memories together), in MiB.
    #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u32).range(1..=65_536))]
    pub component_memory_mib: u32,

    /// Time limit of one call into the component, in seconds.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub component_timeout_secs: u64,

    /// Do not read or write the compiled-component cache.
    #[arg(long)]
    pub no_cache: bool,
}
