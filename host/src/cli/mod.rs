//! Command-line flags, and ([`flags`]) the flag of each request field a library error names.

pub mod flags;
pub mod restore;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use ddb_export::ExportFormat;
use ddb_export::model::ExportViewType;

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
    /// Fan-out, step 1: fix an export's identity and shard plan at its destination, write no
    /// data; prints the plan (exportLocation, shards) as JSON. Takes `export`'s flags.
    Plan(PlanArgs),
    /// Fan-out, step 2: run one shard of a planned export, on any machine; a shard already
    /// finished is not read again. Prints a JSON report.
    RunShard(RunShardArgs),
    /// Fan-out, step 3: once every shard has finished, check the data files and write the
    /// manifests; prints the ExportDescription. Refuses, naming them, while shards are unfinished.
    Finalize(FinalizeArgs),
    /// Describe an export found at a destination (written by ddb-export or by AWS), as
    /// `aws dynamodb describe-export` prints it.
    Describe(DescribeArgs),
    /// List the exports under a destination's prefix, as `aws dynamodb list-exports` prints them.
    List(ListArgs),
    /// Check an export (written by ddb-export or by AWS): every listed file there with its
    /// ETag and MD5, counts that add up, every line parsing for its format, nothing unlisted
    /// under data/. Prints a report; exits 0 only when everything holds.
    Verify(VerifyArgs),
    /// Restore exports (written by ddb-export or by AWS) into a table, new or existing: a full
    /// export, then any incremental exports that continue it. Verifies every export before the
    /// first write; resumable; prints a JSON report.
    Restore(restore::RestoreArgs),
    /// Restore, fan-out step 1: verify the exports, create the table if asked, and save the
    /// restore's plan (data files in shards), writing no item; prints the plan (RestoreLocation,
    /// Stages, Shards) as JSON. Takes `restore`'s flags.
    RestorePlan(restore::RestorePlanArgs),
    /// Restore, fan-out step 2: restore one shard of a planned restore, on any machine; a file
    /// already restored is not written again. A stage's shards run once the earlier stages'
    /// have finished (refused before, to be retried). Prints a JSON report.
    RestoreShard(restore::RestoreShardArgs),
    /// Restore, fan-out step 3: once every shard has finished, the restore's report (JSON);
    /// refused, naming them, while shards are unfinished.
    RestoreFinalize(restore::RestoreFinalizeArgs),
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub at: DescribeArgs,

    /// The table's key attributes (partition key, then sort key), e.g. `pk,sk`: every item
    /// must have them, and no key may be exported twice. Default: what the export's saved state
    /// records (exports by ddb-export); without either (an export by AWS), items written twice
    /// are looked for instead.
    #[arg(long, value_name = "NAMES", value_delimiter = ',')]
    pub key_attributes: Option<Vec<String>>,
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

/// Which images an incremental export's change records carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ViewArg {
    /// `NEW_IMAGE`: Keys and the item's final image (NewImage).
    NewImage,
    /// `NEW_AND_OLD_IMAGES`: also the item as it was before the window (OldImage).
    NewAndOldImages,
}

impl From<ViewArg> for ExportViewType {
    fn from(view: ViewArg) -> Self {
        match view {
            ViewArg::NewImage => ExportViewType::NewImage,
            ViewArg::NewAndOldImages => ExportViewType::NewAndOldImages,
        }
    }
}

/// A time for `--from` and `--until`, as `ddb_export::model::time` reads a user's (RFC 3339 or
/// epoch seconds, to the millisecond). Returns milliseconds since the epoch.
pub fn parse_time(text: &str) -> Result<u64, String> {
    ddb_export::model::time::parse_user_time(text)
}

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProgressArg {
    Auto,
    Lines,
    Off,
}

impl ProgressArg {
    /// The style the flag asks for; `quiet` turns the automatic bar off.
    pub fn style(self, quiet: bool) -> ddb_export::progress::ProgressStyle {
        use ddb_export::progress::ProgressStyle;
        match self {
            ProgressArg::Auto if quiet => ProgressStyle::Off,
            ProgressArg::Auto => ProgressStyle::Auto,
            ProgressArg::Lines => ProgressStyle::Lines,
            ProgressArg::Off => ProgressStyle::Off,
        }
    }
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The table: a name, or a table ARN.
    #[arg(long)]
    pub table: String,

    /// Destination: s3://bucket[/prefix] or a local directory.
    #[arg(long)]
    pub to: String,

    /// Format of the data files. Default: dynamodb-json (an export resumed, by --resume or
    /// its --client-token, keeps its own, as it keeps each setting below that is left out).
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,

    /// Export the changes made in a time window (--from, --until), read from the table's
    /// DynamoDB stream and compacted to one change record per item, in AWS's incremental
    /// export layout, instead of the whole table.
    #[arg(long, requires = "from", conflicts_with_all = ["segments", "max_rcu", "read_percent", "no_read_limit"])]
    pub incremental: bool,

    /// With --incremental: the window's start (inclusive), RFC 3339 or epoch seconds.
    #[arg(long, value_name = "TIME", requires = "incremental", value_parser = parse_time)]
    pub from: Option<u64>,

    /// With --incremental: the window's end (exclusive), RFC 3339 or epoch seconds. Default: now.
    #[arg(long, value_name = "TIME", requires = "incremental", value_parser = parse_time, alias = "to-time")]
    pub until: Option<u64>,

    /// With --incremental: the images each change record carries. Default: new-and-old-images.
    #[arg(long, value_enum, requires = "incremental")]
    pub view: Option<ViewArg>,

    /// The table exactly as it was at one moment (the export's ExportTime: the first whole
    /// second after the scan), from the scan and the table's stream, which must carry new
    /// images. Without it, items written during the scan may or may not be in the export.
    #[arg(long, conflicts_with = "incremental")]
    pub consistent: bool,

    /// Export only the items this Scan FilterExpression keeps (e.g. `#s = :paid`). DynamoDB
    /// filters after reading: every item is still read, and paid for.
    #[arg(long, value_name = "EXPRESSION", conflicts_with_all = ["consistent", "incremental"])]
    pub filter: Option<String>,

    /// Export only these attributes (a Scan ProjectionExpression, e.g. `pk, #s, total`).
    #[arg(long, value_name = "EXPRESSION", conflicts_with_all = ["consistent", "incremental"])]
    pub projection: Option<String>,

    /// ExpressionAttributeNames for --filter/--projection, as JSON: `{"#s":"status"}`.
    #[arg(long, value_name = "JSON", value_parser = parse_json_object)]
    pub expression_names: Option<serde_json::Map<String, serde_json::Value>>,

    /// ExpressionAttributeValues for --filter, as DynamoDB JSON: `{":paid":{"S":"PAID"}}`.
    #[arg(long, value_name = "JSON", value_parser = parse_json_object)]
    pub expression_values: Option<serde_json::Map<String, serde_json::Value>>,

    /// Scan segments (1-10000). Default: planned from the table's size.
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
    /// checkpoints. Settings left out are the ones it was started with; one given must be
    /// the same.
    #[arg(long, value_name = "EXPORT_ID")]
    pub resume: Option<String>,

    /// The 12-digit account id that must own the bucket.
    #[arg(long)]
    pub s3_bucket_owner: Option<String>,

    /// Encrypt objects with this KMS key (SSE-KMS) instead of the bucket's default.
    #[arg(long)]
    pub s3_sse_kms_key_id: Option<String>,

    /// Start a new data file once one holds this many compressed bytes (0: one file per
    /// segment). Default: 134217728 (128 MiB).
    #[arg(long)]
    pub file_size: Option<u64>,

    /// gzip level, 0-9. Default: 6.
    #[arg(long)]
    pub compression_level: Option<u8>,

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

    #[command(flatten)]
    pub components: ComponentArgs,
}

/// Which components run, and under what limits.
#[derive(Debug, Args)]
pub struct ComponentArgs {
    /// Run this component instead of the built-in one.
    #[arg(long, value_name = "PATH")]
    pub component: Option<PathBuf>,

    /// Write the data files with this encoder plugin (a component of the `ddb-export:plugin`
    /// world, e.g. examples/csv-encoder) instead of in DynamoDB JSON. Full exports only; every step of a fan-out must name the same plugin.
    #[arg(long, value_name = "PLUGIN.wasm")]
    pub encoder: Option<PathBuf>,

    /// An argument for the encoder plugin, KEY=VALUE (repeatable, passed in order), e.g.
    /// `--encoder-arg columns=pk,sk,price`.
    #[arg(long = "encoder-arg", value_name = "KEY=VALUE", requires = "encoder", value_parser = parse_encoder_arg)]
    pub encoder_args: Vec<(String, String)>,

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

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub export: ExportArgs,

    /// Also write the plan to this file (workers take it, or its exportLocation, as --plan).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,

    /// Plan in the step component (`wit/step`), the one workflow engines run, with this host
    /// carrying out its DynamoDB and S3 calls: the same plan, for a full export to S3 in the
    /// built-in format.
    #[arg(long)]
    pub in_component: bool,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("worker_read_limit").required(true).args(["max_rcu", "no_read_limit"])))]
pub struct RunShardArgs {
    /// The plan: a file `ddb-export plan --out` wrote, or the export's location
    /// (s3://bucket/prefix/AWSDynamoDB/<export id>, its `exportLocation`).
    #[arg(long)]
    pub plan: String,

    /// The shard to run (one of the plan's `shards`).
    #[arg(long)]
    pub shard: u32,

    /// Refuse the export unless the bucket is owned by this account (also taken from the plan
    /// file, when --plan names one).
    #[arg(long, value_name = "ACCOUNT")]
    pub s3_bucket_owner: Option<String>,

    /// Read at most this many RCU per second. Required (or --no-read-limit): each worker
    /// applies its own limit, so divide the table's budget by the workers running at once.
    #[arg(long, value_name = "RCU")]
    pub max_rcu: Option<f64>,

    /// Read as fast as the table serves.
    #[arg(long)]
    pub no_read_limit: bool,

    /// Run the shard in the step component (`wit/step`), the one workflow engines run, with this
    /// host carrying out its DynamoDB and S3 calls; S3 only, no read limit (--no-read-limit).
    /// Prints `IN_PROGRESS` once a budget (--max-data-files, --max-millis) is spent: run it again.
    #[arg(long)]
    pub in_component: bool,

    /// With --in-component: stop once this many data files are stored by this run.
    #[arg(long, value_name = "N", requires = "in_component")]
    pub max_data_files: Option<u32>,

    /// With --in-component: stop at the first data file boundary after this many milliseconds.
    #[arg(long, value_name = "MS", requires = "in_component")]
    pub max_millis: Option<u64>,

    #[command(flatten)]
    pub components: ComponentArgs,
}

#[derive(Debug, Args)]
pub struct FinalizeArgs {
    /// The plan: a file `ddb-export plan --out` wrote, or the export's location.
    #[arg(long)]
    pub plan: String,

    /// Refuse the export unless the bucket is owned by this account (also taken from the plan
    /// file, when --plan names one).
    #[arg(long, value_name = "ACCOUNT")]
    pub s3_bucket_owner: Option<String>,

    /// Finalize in the step component (`wit/step`), with this host carrying out its DynamoDB
    /// and S3 calls; prints the component's summary of the export.
    #[arg(long)]
    pub in_component: bool,

    #[command(flatten)]
    pub components: ComponentArgs,
}

/// A JSON object, for the --expression-* flags.
fn parse_json_object(text: &str) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    match serde_json::from_str(text) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        Ok(_) => Err("not a JSON object".into()),
        Err(e) => Err(format!("not JSON: {e}")),
    }
}

/// `KEY=VALUE`, split at the first `=`; the key must not be empty.
fn parse_encoder_arg(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
        _ => Err(format!("{text:?} is not KEY=VALUE")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoder_args_are_key_value_split_at_the_first_equals_sign() {
        assert_eq!(parse_encoder_arg("columns=a,b"), Ok(("columns".into(), "a,b".into())));
        assert_eq!(parse_encoder_arg("x=a=b"), Ok(("x".into(), "a=b".into())));
        assert_eq!(parse_encoder_arg("x="), Ok(("x".into(), String::new())));
        assert!(parse_encoder_arg("=a").is_err());
        assert!(parse_encoder_arg("columns").is_err());
    }

    #[test]
    fn times_are_rfc_3339_or_epoch_seconds_to_the_millisecond() {
        assert_eq!(parse_time("1714564800"), Ok(1_714_564_800_000));
        assert_eq!(parse_time("1714564800.25"), Ok(1_714_564_800_250));
        assert_eq!(parse_time("2024-05-01T12:00:00Z"), Ok(1_714_564_800_000));
        assert_eq!(parse_time("2024-05-01T12:00:00.250Z"), Ok(1_714_564_800_250));
        assert_eq!(parse_time("2024-05-01T14:00:00.250+02:00"), Ok(1_714_564_800_250));
        assert_eq!(parse_time("2024-05-01T10:30:00-01:30"), Ok(1_714_564_800_000));
        for bad in ["", "yesterday", "1714564800.2501", "2024-05-01T12:00:00.0001Z", "2024-05-01", "-5", "1e9"] {
            assert!(parse_time(bad).is_err(), "{bad:?}");
        }
    }
}
