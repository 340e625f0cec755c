//! A full export, end to end: describe, snapshot, plan, shards in parallel, manifests.
//!
//! Order of writes, so that a reader can trust what it sees: `_started` first, then the run's
//! saved state (`crate::checkpoint`), data files as shards finish them, then
//! `manifest-files.json` (+ `.md5`) and `manifest-summary.json` (+ `.md5`) last, and only when
//! every shard succeeded and every listed data file was found in the store as written. A failed
//! export has no summary.
//!
//! An export found again, by `--resume <id>` or by its client token, carries on from its
//! checkpoints: finished shards are not read again, unfinished ones scan on from their last
//! stored file, uploads the interrupted run left open are aborted, and data files it stored but
//! never recorded are deleted before the manifests list what is there.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::task::JoinSet;

use crate::aws::AwsClients;
use crate::checkpoint::{self, Fingerprint, RunState, ShardCheckpoint, TokenRecord};
use crate::component::ComponentRuntime;
use crate::description::ExportDescription;
use crate::destination::{Destination, S3Options, Target};
use crate::dynamodb::Table;
use crate::error::ExportError;
use crate::lease::{self, Lease, LeaseScope};
use crate::model::{
    Billing, CustomFormat, ExportFormat, ExportTotals, ExportViewType, IncrementalSpec, ManifestEntry, ShardPlan,
    Snapshot, SnapshotRequest, SseAlgorithm, TableInfo,
};
use crate::progress::{self, Progress, ProgressFigures, ProgressStyle};
use crate::read_budget::ReadBudget;
use crate::shard::{self, ShardContext, ShardOutcome};

/// Most shards run at once.
pub const MAX_PARALLELISM: u32 = 256;
/// Default size at which a data file is closed and the next one begun (compressed bytes).
pub const DEFAULT_TARGET_FILE_BYTES: u64 = 128 * 1024 * 1024;

/// What to export and how.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportRequest {
    /// A table name or a table ARN.
    pub table: String,
    pub target: Target,
    pub format: ExportFormat,
    /// Exact Scan segments; `None` lets the component plan them.
    pub segments: Option<u32>,
    /// Shards run at once.
    pub parallelism: u32,
    /// Idempotency token; a random one when `None`. An export this token started at the same
    /// destination is returned when complete, resumed when not, and refused
    /// ([`ExportError::TokenConflict`]) when its settings differ.
    pub client_token: Option<String>,
    /// Resume this export (an export id or export ARN) at the destination, from its checkpoints.
    pub resume: Option<String>,
    pub s3: S3Options,
    /// A data file is closed once it holds at least this many (compressed) bytes; 0: never.
    pub target_file_bytes: u64,
    /// gzip level 0-9.
    pub compression_level: u8,
    /// How fast the export may read the table.
    pub read_limit: ReadLimit,
    /// How progress is shown on stderr.
    pub progress: ProgressStyle,
    /// How often a progress line is logged when there is no live bar.
    pub progress_interval: Duration,
    /// `--incremental`: export the changes of this window from the table's stream instead of
    /// scanning the table (`crate::incremental`).
    pub incremental: Option<IncrementalWindow>,
    /// `--consistent`: the table exactly as it was at one moment, from a scan and the table's
    /// stream (`crate::consistent`).
    pub consistent: bool,
    /// Filter and projection passed to every Scan (refused with `consistent` and incremental
    /// exports, whose stream images are not filtered).
    pub scan_filter: Option<crate::dynamodb::ScanFilter>,
}

/// An incremental export's window and view as asked for (`--from`, `--to`, `--view`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IncrementalWindow {
    /// Inclusive start, ms since the epoch.
    pub from_ms: u64,
    /// Exclusive end, ms since the epoch; `None`: when the export starts.
    pub to_ms: Option<u64>,
    pub view: ExportViewType,
}

impl std::fmt::Display for IncrementalWindow {
    /// As the flags say it: `--from … --until … --view …`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let time = |ms: u64| humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string();
        let until = self.to_ms.map_or("(now)".to_string(), time);
        let view = match self.view {
            ExportViewType::NewImage => "new-image",
            ExportViewType::NewAndOldImages => "new-and-old-images",
        };
        write!(f, "--from {} --until {until} --view {view}", time(self.from_ms))
    }
}

impl IncrementalWindow {
    /// The window of an export that started at `start_time_ms` (the end, when not given).
    pub fn resolve(self, start_time_ms: u64) -> IncrementalSpec {
        IncrementalSpec {
            export_from_time_ms: self.from_ms,
            export_to_time_ms: self.to_ms.unwrap_or(start_time_ms),
            export_view_type: self.view,
        }
    }
}

/// How fast an export may read, in read capacity units (RCU) per second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ReadLimit {
    /// [`DEFAULT_READ_PERCENT`] of a provisioned table's read capacity; on an on-demand table,
    /// [`DEFAULT_ON_DEMAND_RCU`] (with a note on stderr).
    Default,
    /// At most this many RCU per second (`--max-rcu`).
    MaxRcu(f64),
    /// This percentage of the table's provisioned read capacity (`--read-percent`).
    ReadPercent(f64),
    /// As fast as the table serves (`--no-read-limit`).
    Unlimited,
}

/// Share of a provisioned table's read capacity an export uses by default, leaving the rest
/// to the application.
pub const DEFAULT_READ_PERCENT: f64 = 50.0;
/// Reads per second on an on-demand table when no budget is given (about 4 MB/s of items).
pub const DEFAULT_ON_DEMAND_RCU: f64 = 500.0;

impl ReadLimit {
    /// The budget in RCU per second for this table; `None` for no limit.
    pub fn budget(self, table: &TableInfo) -> Result<Option<f64>, ExportError> {
        Ok(match (self, table.billing) {
            (ReadLimit::Unlimited, _) => None,
            (ReadLimit::MaxRcu(rcu), _) => Some(rcu),
            (ReadLimit::ReadPercent(percent), Billing::Provisioned(rcu)) => Some(rcu as f64 * percent / 100.0),
            (ReadLimit::ReadPercent(_), Billing::OnDemand) => {
                return Err(ExportError::InvalidArgument {
                    what: "--read-percent",
                    message: format!(
                        "table {} is on-demand and has no provisioned read capacity; use --max-rcu",
                        table.table_name
                    ),
                });
            }
            (ReadLimit::Default, Billing::Provisioned(rcu)) => Some(rcu as f64 * DEFAULT_READ_PERCENT / 100.0),
            (ReadLimit::Default, Billing::OnDemand) => {
                tracing::warn!(
                    "table {} is on-demand: reading at most {DEFAULT_ON_DEMAND_RCU} RCU/s; \
                     use --max-rcu N or --no-read-limit to change that",
                    table.table_name
                );
                Some(DEFAULT_ON_DEMAND_RCU)
            }
        })
    }
}

impl ExportRequest {
    /// An export of `table` to `target` with every other setting at its default.
    pub fn new(table: impl Into<String>, target: Target) -> Self {
        Self {
            table: table.into(),
            target,
            format: ExportFormat::DynamodbJson,
            segments: None,
            parallelism: default_parallelism(),
            client_token: None,
            resume: None,
            s3: S3Options::default(),
            target_file_bytes: DEFAULT_TARGET_FILE_BYTES,
            compression_level: 6,
            read_limit: ReadLimit::Default,
            progress: ProgressStyle::Off,
            progress_interval: Duration::from_secs(10),
            incremental: None,
            consistent: false,
            scan_filter: None,
        }
    }

    /// Checks what can be checked before any request is sent.
    pub fn validate(&self) -> Result<(), ExportError> {
        let invalid = |what, message: String| Err(ExportError::InvalidArgument { what, message });
        check_table(&self.table).or_else(|m| invalid("--table", format!("{:?} {m}", self.table)))?;
        if let Some(segments) = self.segments
            && !(1..=crate::model::MAX_SEGMENTS).contains(&segments)
        {
            return invalid(
                "--segments",
                format!("{segments} is not between 1 and {} (ddb-export's limit)", crate::model::MAX_SEGMENTS),
            );
        }
        if !(1..=MAX_PARALLELISM).contains(&self.parallelism) {
            return invalid("--parallelism", format!("{} is not between 1 and {MAX_PARALLELISM}", self.parallelism));
        }
        if self.progress_interval.is_zero() {
            return invalid("--progress-interval-secs", "must be more than 0".into());
        }
        if self.target_file_bytes > crate::destination::MAX_OBJECT_BYTES {
            return invalid(
                "--file-size",
                format!(
                    "{} is more than one object can hold ({})",
                    self.target_file_bytes,
                    crate::destination::MAX_OBJECT_BYTES
                ),
            );
        }
        match self.read_limit {
            ReadLimit::MaxRcu(rcu) if !(rcu.is_finite() && rcu >= 1.0) => {
                return invalid("--max-rcu", format!("{rcu} is not a number of at least 1"));
            }
            ReadLimit::ReadPercent(p) if !(p.is_finite() && p > 0.0 && p <= 100.0) => {
                return invalid("--read-percent", format!("{p} is not a percentage above 0 and at most 100"));
            }
            _ => {}
        }
        if self.compression_level > 9 {
            return invalid("--compression-level", format!("{} is not between 0 and 9", self.compression_level));
        }
        if let Some(token) = &self.client_token
            && (token.is_empty() || token.len() > 64 || token.chars().any(char::is_control))
        {
            return invalid("--client-token", "must be 1 to 64 printable characters".into());
        }
        if let Some(owner) = &self.s3.expected_owner
            && (owner.len() != 12 || !owner.bytes().all(|b| b.is_ascii_digit()))
        {
            return invalid("--s3-bucket-owner", format!("{owner:?} is not a 12-digit AWS account id"));
        }
        if self.s3.kms_key_id.as_deref() == Some("") {
            return invalid("--s3-sse-kms-key-id", "is empty".into());
        }
        if matches!(self.target, Target::Dir(_)) && (self.s3.expected_owner.is_some() || self.s3.kms_key_id.is_some()) {
            return invalid(
                "--to",
                "--s3-bucket-owner and --s3-sse-kms-key-id only apply to s3:// destinations".into(),
            );
        }
        if let Some(filter) = &self.scan_filter {
            filter.check().map_err(|(what, message)| ExportError::InvalidArgument { what, message })?;
            if self.consistent || self.incremental.is_some() {
                return invalid(
                    "--filter",
                    "filters and projections apply to plain full exports only (the stream's images are whole)".into(),
                );
            }
        }
        if let Some(resume) = &self.resume {
            resume_export_id(resume).map_err(|message| ExportError::InvalidArgument { what: "--resume", message })?;
        }
        if let Some(window) = &self.incremental {
            self.validate_incremental(window, now_ms())?;
        }
        Ok(())
    }

    /// An incremental export reads the stream, not the table: the Scan's flags make no sense
    /// with it, and its window must be in the past.
    fn validate_incremental(&self, window: &IncrementalWindow, now_ms: u64) -> Result<(), ExportError> {
        let invalid = |what, message: String| Err(ExportError::InvalidArgument { what, message });
        if self.segments.is_some() {
            return invalid("--segments", "an incremental export reads the stream, not segments of the table".into());
        }
        if self.consistent {
            return invalid(
                "--consistent",
                "an incremental export is of a window of changes, not of one moment".into(),
            );
        }
        if self.read_limit != ReadLimit::Default {
            return invalid(
                "--max-rcu, --read-percent or --no-read-limit",
                "an incremental export reads the stream, which costs no read capacity".into(),
            );
        }
        let time = crate::description::cli_timestamp;
        if window.from_ms >= now_ms {
            return invalid(
                "--from",
                format!("{} is not in the past (it is now {})", time(window.from_ms), time(now_ms)),
            );
        }
        if let Some(to_ms) = window.to_ms {
            if to_ms <= window.from_ms {
                return invalid("--until", format!("{} is not after --from {}", time(to_ms), time(window.from_ms)));
            }
            if to_ms > now_ms {
                return invalid(
                    "--until",
                    format!(
                        "{} is in the future (it is now {}); leave it out to export up to now",
                        time(to_ms),
                        time(now_ms)
                    ),
                );
            }
        }
        Ok(())
    }
}

/// The least read capacity per second a lane should have: below it, pages shrink to a few
/// items and the export spends its budget on request overhead.
pub const MIN_LANE_RCU: f64 = 20.0;

/// Segments run at once: `parallelism`, but no more than there are segments, nor than the read
/// budget can give [`MIN_LANE_RCU`] each.
fn lanes(parallelism: u32, segments: usize, budget: Option<&ReadBudget>) -> u32 {
    let by_budget =
        budget.map_or(u32::MAX, |b| (b.limit() / MIN_LANE_RCU).floor().clamp(1.0, f64::from(u32::MAX)) as u32);
    parallelism.min(u32::try_from(segments).unwrap_or(u32::MAX)).min(by_budget).max(1)
}

/// Lanes by default: Scan is I/O-bound, so a few per core.
pub fn default_parallelism() -> u32 {
    let cores = std::thread::available_parallelism().map(|n| n.get() as u32).unwrap_or(2);
    (cores * 4).clamp(4, 32)
}

/// The export id `--resume` names: an id (`<14 digits>-<8 lowercase hex>`) or an export ARN.
pub fn resume_export_id(text: &str) -> Result<&str, String> {
    let id = match text.strip_prefix("arn:") {
        Some(_) => text.rsplit_once("/export/").map(|(_, id)| id).ok_or_else(|| {
            format!(
                "{text:?} is not an export ARN (arn:<partition>:dynamodb:<region>:<account>:table/<name>/export/<id>)"
            )
        })?,
        None => text,
    };
    if crate::component::is_export_id(id) {
        Ok(id)
    } else {
        Err(format!("{id:?} is not an export id (<14 digits>-<8 lowercase hex>)"))
    }
}

/// DynamoDB table names are 3-255 of `[A-Za-z0-9_.-]`; an ARN names `table/<name>`.
fn check_table(table: &str) -> Result<(), &'static str> {
    let name = match table.strip_prefix("arn:") {
        Some(_) => match table.split_once(":table/") {
            Some((head, name)) if head.split(':').nth(2) == Some("dynamodb") && !name.contains('/') => name,
            _ => return Err("is not a table ARN (arn:<partition>:dynamodb:<region>:<account>:table/<name>)"),
        },
        None => table,
    };
    if !(3..=255).contains(&name.len()) {
        return Err("is not a table name: names are 3 to 255 characters long");
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.') {
        return Err("is not a table name: names hold only letters, digits, '_', '-' and '.'");
    }
    Ok(())
}

/// A completed export.
#[derive(Debug, Clone)]
pub struct ExportReport {
    pub description: ExportDescription,
    pub snapshot: Snapshot,
    pub plan: ShardPlan,
    /// What the export did; also in the description's `DdbExportStatistics`.
    pub stats: ProgressFigures,
    /// Data files written.
    pub data_files: u64,
    /// Where the summary was written (`s3://…` or a path).
    pub summary_location: String,
}

/// A failed export: the error, and the FAILED description when the export had an identity.
#[derive(Debug)]
pub struct ExportFailure {
    pub error: ExportError,
    pub description: Option<ExportDescription>,
}

impl From<ExportError> for ExportFailure {
    fn from(error: ExportError) -> Self {
        Self { error, description: None }
    }
}

impl From<crate::component::ComponentError> for ExportFailure {
    fn from(error: crate::component::ComponentError) -> Self {
        ExportError::from(error).into()
    }
}

/// Milliseconds since the epoch, by this host's clock.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

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
/// With `request.incremental` set, runs an incremental export instead (`crate::incremental`).
pub async fn run_until_stopped(
    aws: &AwsClients,
    runtime: &ComponentRuntime,
    request: &ExportRequest,
    stop: Arc<AtomicBool>,
) -> Result<ExportReport, ExportFailure> {
    request.validate()?;
    check_encoder(request, runtime)?;
    if request.incremental.is_some() {
        return crate::incremental::run(aws, runtime, request, stop).await;
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
        true => match crate::consistent::prepare(aws, &table, &info).await {
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

/// An export this run writes: its state, and its lease on it.
struct Held {
    state: RunState,
    lease: Lease,
    /// Found unfinished (its checkpoints are read), rather than started by this run.
    resumed: bool,
}

/// A full export this run holds the lease of, from its checkpoints on.
#[allow(clippy::too_many_arguments)]
async fn write_export(
    request: &ExportRequest,
    table: &Table,
    info: &TableInfo,
    budget: Option<Arc<ReadBudget>>,
    destination: Destination,
    runtime: &ComponentRuntime,
    held: Held,
    consistent: Option<Arc<crate::consistent::ConsistentSource>>,
    stop: Arc<AtomicBool>,
) -> Result<ExportReport, ExportFailure> {
    let Held { state, lease, resumed } = held;
    let resume = match resumed {
        true => load_checkpoints(&destination, &state).await?,
        false => HashMap::new(),
    };
    let RunState { snapshot, plan, .. } = state;
    tracing::info!(
        export = %snapshot.export_arn,
        segments = plan.shards.len(),
        "exporting {} to {}: {}",
        info.table_name,
        destination.locate(&snapshot.keys.root),
        plan.rationale
    );

    let snapshot = Arc::new(snapshot);
    let lanes = lanes(request.parallelism, plan.shards.len(), budget.as_deref());
    if lanes < request.parallelism.min(plan.shards.len() as u32) {
        tracing::info!("running {lanes} segments at a time: the read budget gives each at least {MIN_LANE_RCU} RCU/s");
    }
    let progress = Arc::new(Progress::new(plan.shards.len() as u64, Some(info.item_count)));
    let shown = progress::show(progress.clone(), request.progress.clone(), request.progress_interval);
    let ctx = ShardContext {
        table: table.clone(),
        destination: destination.clone(),
        runtime: runtime.clone(),
        snapshot: snapshot.clone(),
        target_file_bytes: request.target_file_bytes,
        compression_level: request.compression_level,
        cancelled: stop,
        budget,
        lanes,
        progress: progress.clone(),
        key_hasher: consistent.as_ref().map(|c| Arc::new(c.hasher.clone())),
        lease: Some(lease),
        key_attributes: info.key_attributes.clone().into(),
    };
    let written = write(&ctx, &plan, resume, consistent.as_deref()).await;
    drop(shown);
    destination.tidy().await;
    conclude(&destination, snapshot, plan, progress.figures(), written).await
}

/// An encoder plugin writes a full export's data files in its own format, line-blind: it
/// cannot be combined with another format, an incremental export, or the consistent mode
/// (which rewrites files by line).
pub(crate) fn check_encoder(request: &ExportRequest, runtime: &ComponentRuntime) -> Result<(), ExportError> {
    let Some(plugin) = runtime.encoder_plugin() else { return Ok(()) };
    let conflict = if request.format != ExportFormat::DynamodbJson {
        Some("--format (the plugin decides the format)")
    } else if request.incremental.is_some() {
        Some("--incremental (a plugin writes full exports only)")
    } else if request.consistent {
        Some("--consistent (its cut rewrites data files line by line, and a plugin's files need not be lines)")
    } else {
        None
    };
    match conflict {
        Some(flag) => Err(ExportError::InvalidArgument {
            what: "--encoder",
            message: format!("{} cannot be combined with {flag}", plugin.name()),
        }),
        None => Ok(()),
    }
}

/// What a run wrote, once the manifests are stored.
pub(crate) struct Written {
    pub end_time_ms: u64,
    pub data_files: u64,
    pub items: u64,
    /// The instant the data reflects: the snapshot's, or the consistent mode's cut.
    pub export_time_ms: u64,
}

/// The end of a run of an export that has an identity: the report of what it wrote, or its
/// failure, recorded beside it (best effort, for `ddb-export describe`: the destination may be
/// what failed) with its FAILED description.
pub(crate) async fn conclude(
    destination: &Destination,
    snapshot: Arc<Snapshot>,
    plan: ShardPlan,
    stats: ProgressFigures,
    written: Result<Written, ExportError>,
) -> Result<ExportReport, ExportFailure> {
    let error = match written {
        Ok(Written { end_time_ms, data_files, items, export_time_ms }) => {
            let snapshot = Snapshot { export_time_ms, ..Arc::unwrap_or_clone(snapshot) };
            let description = ExportDescription::completed(&snapshot, end_time_ms, items, 0, stats.clone());
            return Ok(ExportReport {
                description,
                summary_location: destination.locate(&snapshot.keys.manifest_summary),
                snapshot,
                plan,
                stats,
                data_files,
            });
        }
        Err(error) => error,
    };
    let end_time_ms = now_ms();
    let record = checkpoint::FailureRecord {
        failure_code: error.code().to_string(),
        failure_message: error.to_string(),
        end_time_ms,
    };
    if let Err(e) = checkpoint::save(destination, &checkpoint::failure_key(&snapshot.keys.root), &record).await {
        tracing::debug!("could not record the failure: {e}");
    }
    let description = ExportDescription::failed(&snapshot, end_time_ms, &error, stats);
    Err(ExportFailure { error, description: Some(description) })
}

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
        format: request.format,
        segments: request.segments,
        target_file_bytes: request.target_file_bytes,
        compression_level: request.compression_level,
        bucket: destination.bucket_name(),
        prefix: destination.prefix(),
        bucket_owner: request.s3.expected_owner.clone(),
        kms_key_id: request.s3.kms_key_id.clone(),
        component: runtime.digest().to_string(),
        incremental: request.incremental,
        consistent: request.consistent,
        scan_filter: request.scan_filter.clone(),
        encoder: runtime.encoder_plugin().map(checkpoint::EncoderFingerprint::new),
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
        export_format: request.format,
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
    let prefix = destination.prefix();
    let (export_id, export_prefix) = match (&request.resume, &request.client_token) {
        (Some(resume), _) => {
            let id = resume_export_id(resume)
                .map_err(|message| ExportError::InvalidArgument { what: "--resume", message })?;
            (id.to_string(), prefix)
        }
        (None, Some(token)) => {
            let key = checkpoint::token_key(token);
            match checkpoint::load::<TokenRecord>(destination, &key).await? {
                Some(record) => {
                    resume_export_id(&record.export_id)
                        .map_err(|message| ExportError::CorruptState { location: destination.locate(&key), message })?;
                    (record.export_id, record.prefix)
                }
                None => return Ok(EarlierRun::None),
            }
        }
        (None, None) => return Ok(EarlierRun::None),
    };
    let by_token = request.resume.is_none();
    let root = checkpoint::export_root(export_prefix.as_deref(), &export_id);
    let run_key = checkpoint::run_key(&root);
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
                "{} does not exist (only exports written by ddb-export, at the same --to, can be resumed)",
                destination.locate(&run_key)
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
            differences.push(format!("--client-token: {:?} before, {token:?} now", state.snapshot.client_token));
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
    crate::component::check_saved_snapshot(table, &expected, &state.snapshot).map_err(corrupt)?;
    crate::component::check_saved_plan(&state.plan, state.fingerprint.segments).map_err(corrupt)?;
    if let Some(summary) = destination.get(&state.snapshot.keys.manifest_summary).await? {
        return Ok(EarlierRun::Complete(state, summary));
    }
    Ok(EarlierRun::Unfinished(state))
}

/// The report of an export that an earlier run completed: no item is read or written again
/// (checkpoints a run killed just after the summary left are removed).
pub(crate) async fn completed_earlier(
    destination: &Destination,
    state: RunState,
    summary: &[u8],
) -> Result<ExportReport, ExportFailure> {
    let snapshot = state.snapshot;
    let summary_key = &snapshot.keys.manifest_summary;
    let mut description =
        crate::catalog::from_summary(summary, summary_key, Some(&snapshot.client_token), destination)?;
    let items = description.item_count.unwrap_or_default();
    let files = destination.get(&snapshot.keys.manifest_files).await?.unwrap_or_default();
    let data_files = files.split(|b| *b == b'\n').filter(|line| !line.is_empty()).count() as u64;
    tracing::info!("export {} is already complete; nothing to do", snapshot.export_arn);
    remove_checkpoints(destination, &snapshot.keys.root).await;
    let stats = ProgressFigures { items, segments: state.plan.shards.len() as u64, ..ProgressFigures::default() };
    description.s3_bucket_owner = snapshot.s3_bucket_owner.clone();
    description.ddb_export_statistics = Some(stats.clone());
    Ok(ExportReport {
        description,
        summary_location: destination.locate(summary_key),
        snapshot,
        plan: state.plan,
        stats,
        data_files,
    })
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
                    let key = lease::export_lease_key(&state.snapshot.keys.root);
                    if let Some(lease) = export_lease.take_if(|lease| lease.key() == key) {
                        return Ok(Claim::Unfinished(state, lease));
                    }
                    let scope = LeaseScope::Export(state.snapshot.export_id.clone());
                    export_lease = Some(Lease::acquire(destination, key, scope).await?);
                }
                EarlierRun::None => match (&request.client_token, &token_lease) {
                    (Some(token), None) => {
                        let key = lease::token_lease_key(token);
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

/// The state of a new export: its identity and plan, fixed by the component, not yet recorded.
pub(crate) fn new_state(
    runtime: &ComponentRuntime,
    destination: &Destination,
    request: &ExportRequest,
    info: &TableInfo,
    fingerprint: Fingerprint,
    region: &str,
    fanout: bool,
) -> Result<RunState, ExportError> {
    let client_token = request.client_token.clone().unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let custom_format = runtime.encoder_plugin().map(|plugin| plugin.custom_format());
    let snapshot_request = snapshot_request(destination, request, client_token, now_ms(), region, custom_format);
    let (snapshot, plan) = {
        let mut session = runtime.session()?;
        let snapshot = session.snapshot(info, &snapshot_request)?;
        let plan = session.shard_plan(info, request.segments, request.parallelism)?;
        (snapshot, plan)
    };
    let table_key = info.key_attributes.clone();
    Ok(RunState { version: checkpoint::STATE_VERSION, fingerprint, snapshot, plan, fanout, table_key })
}

/// Starts a new export: its state from the component ([`new_state`]), recorded at the
/// destination ([`record_start`]). Returns it with this run's lease on it.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn start(
    runtime: &ComponentRuntime,
    destination: &Destination,
    request: &ExportRequest,
    info: &TableInfo,
    fingerprint: Fingerprint,
    region: &str,
    stop: &AtomicBool,
    fanout: bool,
) -> Result<(RunState, Lease), ExportFailure> {
    let state = new_state(runtime, destination, request, info, fingerprint, region, fanout)?;
    let lease = record_start(destination, &state, request.client_token.as_deref(), stop).await?;
    Ok((state, lease))
}

/// Records a new export at its destination before any data file: this run's lease on it,
/// the client token's record (when the token was given), then `_started`, then the saved
/// state. Returns the export's lease. Once `stop` is set (a Ctrl-C while the component fixed
/// the export), nothing is recorded.
pub(crate) async fn record_start(
    destination: &Destination,
    state: &RunState,
    client_token: Option<&str>,
    stop: &AtomicBool,
) -> Result<Lease, ExportError> {
    {
        if stop.load(Ordering::Relaxed) {
            return Err(ExportError::Interrupted);
        }
        // The export's id is this run's own until the token's record names it: no one else
        // can be after its lease yet.
        let root = &state.snapshot.keys.root;
        let scope = LeaseScope::Export(state.snapshot.export_id.clone());
        let lease = Lease::create(destination, lease::export_lease_key(root), scope).await?;
        let written = async {
            // The token's record first: a run killed from here on is found again by its
            // token, and what it left half-written is cleared (`find_earlier_run`).
            if let Some(token) = client_token {
                let key = checkpoint::token_key(token);
                destination.abort_stale_uploads(&key, &[]).await?;
                let record = TokenRecord {
                    version: checkpoint::STATE_VERSION,
                    export_id: state.snapshot.export_id.clone(),
                    prefix: state.snapshot.s3_prefix.clone(),
                };
                checkpoint::save(destination, &key, &record).await?;
            }
            destination.put(&state.snapshot.keys.started, Vec::new()).await?;
            checkpoint::save(destination, &checkpoint::run_key(root), state).await
        }
        .await;
        match written {
            Ok(()) => Ok(lease),
            Err(error) => {
                lease.release().await;
                Err(error)
            }
        }
    }
}

/// The checkpoints of an unfinished export, by shard id, after aborting the uploads its
/// interrupted run left open.
async fn load_checkpoints(
    destination: &Destination,
    state: &RunState,
) -> Result<HashMap<u32, ShardCheckpoint>, ExportError> {
    let snapshot = &state.snapshot;
    let mut checkpoints = read_checkpoints(destination, state).await?;
    // A recorded data file that is no longer as it was stored (deleted, or replaced) is
    // written again: its shard starts over.
    let listing = crate::stored::Listing::of(destination, &snapshot.keys.data_prefix).await?;
    let mut shards: Vec<u32> = checkpoints.keys().copied().collect();
    shards.sort();
    for shard in shards {
        if let Some((_, problem)) = listing.first_problem(destination, &checkpoints[&shard].files).await? {
            tracing::warn!("{problem}: segment {shard} is read again from its start");
            destination.delete(&checkpoint::shard_key(&snapshot.keys.root, shard)).await?;
            checkpoints.remove(&shard);
        }
    }
    let known: Vec<(String, String)> = checkpoints
        .values()
        .filter_map(|c| c.open_upload.as_ref().map(|u| (u.key.clone(), u.upload_id.clone())))
        .collect();
    // The whole export's folder: a directory also stages checkpoints and state.
    let aborted = destination.abort_stale_uploads(&format!("{}/", snapshot.keys.root), &known).await?;
    destination.delete(&checkpoint::failure_key(&snapshot.keys.root)).await?;
    let done = checkpoints.values().filter(|c| c.done).count();
    let items: u64 = checkpoints.values().map(|c| c.items).sum();
    tracing::info!(
        "resuming export {}: {done} of {} segments done, {items} items already stored; \
         {aborted} unfinished uploads aborted",
        snapshot.export_id,
        state.plan.shards.len()
    );
    Ok(checkpoints)
}

/// Every saved shard checkpoint of an export, by shard id, each checked: a shard of the plan,
/// under its own name, holding together, no data file in two of them.
pub(crate) async fn read_checkpoints(
    destination: &Destination,
    state: &RunState,
) -> Result<HashMap<u32, ShardCheckpoint>, ExportError> {
    let snapshot = &state.snapshot;
    let listed = destination.list(&checkpoint::shards_prefix(&snapshot.keys.root)).await?;
    let mut checkpoints = HashMap::new();
    let mut file_keys = HashSet::new();
    for object in listed {
        let Some(saved) = checkpoint::load::<ShardCheckpoint>(destination, &object.key).await? else { continue };
        let corrupt =
            |message: String| ExportError::CorruptState { location: destination.locate(&object.key), message };
        if !state.plan.shards.iter().any(|s| s.id == saved.shard) {
            return Err(corrupt(format!("shard {} is not in the export's plan", saved.shard)));
        }
        if object.key != checkpoint::shard_key(&snapshot.keys.root, saved.shard) {
            return Err(corrupt(format!("it holds the checkpoint of shard {}, under another name", saved.shard)));
        }
        check_checkpoint(snapshot, &saved, &mut file_keys).map_err(corrupt)?;
        checkpoints.insert(saved.shard, saved);
    }
    Ok(checkpoints)
}

/// A checkpoint must hold together: what a resumed shard does with it must neither lose nor
/// repeat an item. `file_keys` collects the data files of the checkpoints checked so far.
pub(crate) fn check_checkpoint(
    snapshot: &Snapshot,
    saved: &ShardCheckpoint,
    file_keys: &mut HashSet<String>,
) -> Result<(), String> {
    for file in &saved.files {
        crate::component::check_data_file_key(snapshot, &file.data_file_s3_key)?;
        if !file_keys.insert(file.data_file_s3_key.clone()) {
            return Err(format!("data file {:?} is recorded twice", file.data_file_s3_key));
        }
    }
    if let Some(upload) = &saved.open_upload {
        crate::component::check_data_file_key(snapshot, &upload.key)?;
    }
    if saved.items != saved.files.iter().map(|f| f.item_count).sum::<u64>() {
        return Err("its item count is not the sum of its files'".into());
    }
    if (saved.next_sequence as usize) < saved.files.len() {
        return Err(format!("its next file sequence {} is below its {} files", saved.next_sequence, saved.files.len()));
    }
    match (saved.done, &saved.resume_key) {
        (true, Some(_)) => Err("a finished shard has a resume key".into()),
        (true, None) if saved.open_upload.is_some() => Err("a finished shard has an open upload".into()),
        (false, None) if !saved.files.is_empty() => Err("it records files but no key to resume after them".into()),
        _ => Ok(()),
    }
}

/// Everything after the snapshot: the shards (from their checkpoints), a check of the stored
/// data files, the manifests. Returns what it wrote.
async fn write(
    ctx: &ShardContext,
    plan: &ShardPlan,
    resume: HashMap<u32, ShardCheckpoint>,
    consistent: Option<&crate::consistent::ConsistentSource>,
) -> Result<Written, ExportError> {
    let mut snapshot = ctx.snapshot.as_ref().clone();
    let stopped = || ctx.cancelled.load(Ordering::Relaxed);
    if stopped() {
        return Err(ExportError::Interrupted);
    }
    let outcomes = run_shards(ctx, plan, resume).await?;

    let mut files: Vec<ManifestEntry> = outcomes.iter().flat_map(|o| o.files.iter().cloned()).collect();
    let mut items: u64 = outcomes.iter().map(|o| o.items).sum();
    if let Some(source) = consistent {
        // One more shard id, after the plan's, for the files of the states at the cut.
        let images = crate::model::Shard { id: plan.shards.len() as u32, segment: 0, total_segments: 1 };
        let (at_cut, cut_ms) = crate::consistent::cut(ctx, source, images, files).await?;
        files = at_cut;
        items = files.iter().map(|f| f.item_count).sum();
        snapshot.export_time_ms = cut_ms;
    }
    publish(&ctx.destination, &ctx.runtime, &snapshot, &files, items, stopped, ctx.lease.as_ref()).await
}

/// Publishes an export whose data files are all stored: checks each one in the store, removes
/// every other file under `data/`, writes the manifests (the summary last) and removes the
/// checkpoints. `stopped` is asked one last time before the manifests, and this run's `lease`
/// on the export checked: only its one writer publishes it.
pub(crate) async fn publish(
    destination: &Destination,
    runtime: &ComponentRuntime,
    snapshot: &Snapshot,
    files: &[ManifestEntry],
    items: u64,
    stopped: impl Fn() -> bool,
    lease: Option<&Lease>,
) -> Result<Written, ExportError> {
    let mut keys = HashSet::new();
    if let Some(dup) = files.iter().find(|f| !keys.insert(f.data_file_s3_key.as_str())) {
        return Err(ExportError::BadOutput {
            component: runtime.name().to_string(),
            message: format!("two shards wrote the data file {:?}", dup.data_file_s3_key),
        });
    }

    // `data/` is this export's own: it ends holding exactly what the manifest lists.
    let removed = verify_data_files(destination, &snapshot.keys.data_prefix, files, |_| true).await?;
    if removed > 0 {
        tracing::info!(
            "removed {removed} data files the manifest does not list (left by an interrupted run, or replaced at the cut)"
        );
    }

    // The last moment a stop is honoured: after this the manifests are written.
    if stopped() {
        return Err(ExportError::Interrupted);
    }
    if let Some(lease) = lease {
        lease.check().await?;
    }
    let end_time_ms = now_ms().max(snapshot.start_time_ms);
    let totals = ExportTotals { end_time_ms, item_count: items, billed_size_bytes: 0 };
    let manifests = runtime.session()?.manifests(snapshot, files, &totals)?;
    for object in manifests {
        destination.put(&object.key, object.body).await?;
    }
    remove_checkpoints(destination, &snapshot.keys.root).await;
    Ok(Written { end_time_ms, data_files: files.len() as u64, items, export_time_ms: snapshot.export_time_ms })
}

/// Checks that each file the manifest will list is in the store as it was stored
/// ([`crate::stored`]); then deletes every other file in the data folder that `stale` picks
/// (one an interrupted run stored but never recorded, say). Returns how many it deleted.
pub(crate) async fn verify_data_files(
    destination: &Destination,
    data_prefix: &str,
    files: &[ManifestEntry],
    stale: impl Fn(&str) -> bool,
) -> Result<usize, ExportError> {
    let listing = crate::stored::Listing::of(destination, data_prefix).await?;
    if let Some((file, problem)) = listing.first_problem(destination, files).await? {
        return Err(ExportError::Verification {
            location: destination.locate(&file.data_file_s3_key),
            message: format!(
                "{problem}; run the export again (with the same --client-token or --resume) to write it again"
            ),
        });
    }
    let written: HashSet<&str> = files.iter().map(|f| f.data_file_s3_key.as_str()).collect();
    let mut removed = 0;
    let unlisted: Vec<String> =
        listing.keys().filter(|key| !written.contains(key) && stale(key)).map(str::to_string).collect();
    for key in unlisted {
        destination.delete(&key).await?;
        removed += 1;
    }
    Ok(removed)
}

/// Best effort: the shard checkpoints of a complete export (and the consistent mode's key
/// hashes and cut) are of no more use (`run.json` stays, so that the client token and
/// `--resume` still find the export).
pub(crate) async fn remove_checkpoints(destination: &Destination, export_root: &str) {
    let prefix = checkpoint::shards_prefix(export_root);
    let removed = async {
        let leases = crate::lease::leases_prefix(export_root);
        for folder in [prefix.clone(), crate::consistent::key_hashes_prefix(export_root), leases] {
            for object in destination.list(&folder).await? {
                destination.delete(&object.key).await?;
            }
        }
        for key in crate::consistent::cut_objects(export_root) {
            destination.delete(&key).await?;
        }
        Ok::<(), ExportError>(())
    }
    .await;
    if let Err(error) = removed {
        tracing::warn!("could not remove the checkpoints under {}: {error}", destination.locate(&prefix));
    }
}

/// Runs every shard, `ctx.lanes` at a time (a shard's task is only spawned when a lane is
/// free, so a plan of many segments costs no more memory than one of `ctx.lanes`). The first
/// failure stops the others and is returned; a stop with no failure is [`ExportError::Interrupted`].
async fn run_shards(
    ctx: &ShardContext,
    plan: &ShardPlan,
    mut resume: HashMap<u32, ShardCheckpoint>,
) -> Result<Vec<ShardOutcome>, ExportError> {
    let mut tasks = JoinSet::new();
    let mut pending = plan.shards.iter().copied();
    let mut outcomes: Vec<Option<ShardOutcome>> = vec![None; plan.shards.len()];
    let mut first_error: Option<ExportError> = None;
    loop {
        while tasks.len() < ctx.lanes as usize && !ctx.cancelled.load(Ordering::Relaxed) {
            let Some(shard) = pending.next() else { break };
            let ctx = ctx.clone();
            let from = resume.remove(&shard.id).unwrap_or_default();
            tasks.spawn(async move {
                let result = shard::run(ctx.clone(), shard, from).await;
                match &result {
                    Ok(outcome) => {
                        tracing::debug!(
                            shard = shard.id,
                            items = outcome.items,
                            files = outcome.files.len(),
                            "shard done"
                        )
                    }
                    Err(_) => ctx.cancelled.store(true, Ordering::Relaxed),
                }
                result.map(|outcome| (shard.id, outcome))
            });
        }
        let Some(joined) = tasks.join_next().await else { break };
        match joined {
            Ok(Ok((id, outcome))) => outcomes[id as usize] = Some(outcome),
            Ok(Err(error)) => {
                if first_error.as_ref().is_none_or(|e| matches!(e, ExportError::Cancelled)) {
                    first_error = Some(error);
                }
            }
            Err(join_error) => {
                ctx.cancelled.store(true, Ordering::Relaxed);
                first_error.get_or_insert(ExportError::Internal(format!("a shard task failed: {join_error}")));
            }
        }
    }
    match first_error {
        Some(ExportError::Cancelled) => return Err(ExportError::Interrupted),
        Some(error) => return Err(error),
        None if ctx.cancelled.load(Ordering::Relaxed) => return Err(ExportError::Interrupted),
        None => {}
    }
    outcomes
        .into_iter()
        .enumerate()
        .map(|(id, outcome)| outcome.ok_or_else(|| ExportError::Internal(format!("shard {id} reported nothing"))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> ExportRequest {
        ExportRequest::new("orders", Target::S3 { bucket: "b".repeat(3), prefix: None })
    }

    #[test]
    fn lanes_are_bounded_by_segments_and_by_the_budget() {
        assert_eq!(lanes(8, 100, None), 8);
        assert_eq!(lanes(8, 3, None), 3);
        assert_eq!(lanes(8, 100, Some(&ReadBudget::new(60.0))), 3);
        assert_eq!(lanes(8, 100, Some(&ReadBudget::new(5.0))), 1);
        assert_eq!(lanes(8, 100, Some(&ReadBudget::new(10_000.0))), 8);
    }

    #[test]
    fn accepts_names_and_arns() {
        assert!(request().validate().is_ok());
        assert!(ExportRequest { format: ExportFormat::Ion, ..request() }.validate().is_ok());
        let arn = ExportRequest { table: "arn:aws:dynamodb:us-east-1:123456789012:table/orders".into(), ..request() };
        assert!(arn.validate().is_ok());
    }

    #[test]
    fn an_incremental_window_must_be_past_and_refuses_the_scan_s_flags() {
        let now = 1_700_000_000_000;
        let window = IncrementalWindow { from_ms: now - 60_000, to_ms: None, view: ExportViewType::NewAndOldImages };
        let incremental = ExportRequest { incremental: Some(window), ..request() };
        assert!(incremental.validate_incremental(&window, now).is_ok());
        let cases = [
            (IncrementalWindow { from_ms: now, ..window }, None, "--from"),
            (IncrementalWindow { to_ms: Some(now - 60_000), ..window }, None, "--until"),
            (IncrementalWindow { to_ms: Some(now + 1), ..window }, None, "--until"),
            (window, Some(ExportRequest { segments: Some(2), ..incremental.clone() }), "--segments"),
            (
                window,
                Some(ExportRequest { read_limit: ReadLimit::Unlimited, ..incremental.clone() }),
                "--no-read-limit",
            ),
            (window, Some(ExportRequest { consistent: true, ..incremental.clone() }), "--consistent"),
        ];
        for (window, request, flag) in cases {
            let request = request.unwrap_or_else(|| incremental.clone());
            let message = request.validate_incremental(&window, now).unwrap_err().to_string();
            assert!(message.contains(flag), "{flag}: {message}");
        }
        assert_eq!(window.resolve(now).export_to_time_ms, now);
        assert_eq!(IncrementalWindow { to_ms: Some(now - 1), ..window }.resolve(now).export_to_time_ms, now - 1);
    }

    #[test]
    fn names_the_bad_flag() {
        let cases = [
            (ExportRequest { table: "x".into(), ..request() }, "--table"),
            (ExportRequest { table: "bad name!".into(), ..request() }, "--table"),
            (ExportRequest { table: "arn:aws:s3:::bucket".into(), ..request() }, "--table"),
            (ExportRequest { segments: Some(0), ..request() }, "--segments"),
            (ExportRequest { segments: Some(10_001), ..request() }, "--segments"),
            (ExportRequest { parallelism: 0, ..request() }, "--parallelism"),
            (ExportRequest { progress_interval: Duration::ZERO, ..request() }, "--progress-interval-secs"),
            (ExportRequest { compression_level: 10, ..request() }, "--compression-level"),
            (ExportRequest { client_token: Some(String::new()), ..request() }, "--client-token"),
        ];
        for (request, flag) in cases {
            let message = request.validate().unwrap_err().to_string();
            assert!(message.contains(flag), "{message}");
        }
    }
}
