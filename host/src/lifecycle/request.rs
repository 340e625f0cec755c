//! What an export is asked for ([`ExportRequest`]), checked before any request is sent, and
//! what it ends with ([`ExportReport`], [`ExportFailure`]).

use std::time::Duration;

use crate::error::ExportError;
use crate::io::destination::{S3Options, Target};
use crate::model::time::now_ms;
use crate::model::{Billing, ExportFormat, Field, IncrementalWindow, ProgressFigures, ShardPlan, Snapshot, TableInfo};
use crate::pipeline::progress::ProgressStyle;
use crate::state::description::ExportDescription;

/// Most shards run at once.
pub const MAX_PARALLELISM: u32 = 256;
pub use crate::model::settings::{DEFAULT_COMPRESSION_LEVEL, DEFAULT_TARGET_FILE_BYTES};

/// What to export and how.
///
/// The settings that decide an export's bytes are `Option`s: one left out (`None`) is the
/// default for a new export, and the export's own when the request finds one it started
/// before (by `resume` or `client_token`); one given that differs from that export's is
/// refused ([`ExportError::ResumeConflict`], [`ExportError::TokenConflict`]), naming it.
/// Those settings: `format`, `segments`, `s3`'s owner and key, `target_file_bytes`,
/// `compression_level`, `incremental`, `consistent`, `scan_filter`.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportRequest {
    /// A table name or a table ARN.
    pub table: String,
    pub target: Target,
    /// DYNAMODB_JSON when left out.
    pub format: Option<ExportFormat>,
    /// Exact Scan segments; `None` lets the component plan them (for a new export).
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
    /// [`DEFAULT_TARGET_FILE_BYTES`] when left out.
    pub target_file_bytes: Option<u64>,
    /// gzip level 0-9; [`DEFAULT_COMPRESSION_LEVEL`] when left out.
    pub compression_level: Option<u8>,
    /// How fast the export may read the table.
    pub read_limit: ReadLimit,
    /// How progress is shown on stderr.
    pub progress: ProgressStyle,
    /// How often a progress line is logged when there is no live bar.
    pub progress_interval: Duration,
    /// `--incremental`: export the changes of this window from the table's stream instead of
    /// scanning the table (`crate::modes::incremental`).
    pub incremental: Option<IncrementalWindow>,
    /// `--consistent`: the table exactly as it was at one moment, from a scan and the table's
    /// stream (`crate::pipeline::cut`). Off when left out.
    pub consistent: Option<bool>,
    /// Filter and projection passed to every Scan (refused with `consistent` and incremental
    /// exports, whose stream images are not filtered).
    pub scan_filter: Option<crate::model::ScanFilter>,
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
                    field: Field::ReadPercent,
                    message: format!(
                        "table {} is on-demand and has no provisioned read capacity; use {}",
                        table.table_name,
                        Field::MaxRcu
                    ),
                });
            }
            (ReadLimit::Default, Billing::Provisioned(rcu)) => Some(rcu as f64 * DEFAULT_READ_PERCENT / 100.0),
            (ReadLimit::Default, Billing::OnDemand) => {
                tracing::warn!(
                    "table {} is on-demand: reading at most {DEFAULT_ON_DEMAND_RCU} RCU/s; \
                     use {} or {} to change that",
                    table.table_name,
                    Field::MaxRcu,
                    Field::NoReadLimit
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
            format: None,
            segments: None,
            parallelism: default_parallelism(),
            client_token: None,
            resume: None,
            s3: S3Options::default(),
            target_file_bytes: None,
            compression_level: None,
            read_limit: ReadLimit::Default,
            progress: ProgressStyle::Off,
            progress_interval: Duration::from_secs(10),
            incremental: None,
            consistent: None,
            scan_filter: None,
        }
    }

    /// The data files' format.
    pub fn format(&self) -> ExportFormat {
        self.format.unwrap_or(ExportFormat::DynamodbJson)
    }

    /// The size at which a data file is closed.
    pub fn target_file_bytes(&self) -> u64 {
        self.target_file_bytes.unwrap_or(DEFAULT_TARGET_FILE_BYTES)
    }

    /// The data files' gzip level.
    pub fn compression_level(&self) -> u8 {
        self.compression_level.unwrap_or(DEFAULT_COMPRESSION_LEVEL)
    }

    /// Whether the export is of one moment (`--consistent`).
    pub fn consistent(&self) -> bool {
        self.consistent.unwrap_or(false)
    }

    /// Checks what can be checked before any request is sent.
    pub fn validate(&self) -> Result<(), ExportError> {
        use crate::model::settings;
        let invalid = |field, message: String| Err(ExportError::InvalidArgument { field, message });
        let refused = |(field, message)| ExportError::InvalidArgument { field, message };
        settings::check_table(&self.table).map_err(refused)?;
        if let Some(segments) = self.segments {
            settings::check_segments(segments).map_err(refused)?;
        }
        if !(1..=MAX_PARALLELISM).contains(&self.parallelism) {
            return invalid(Field::Parallelism, format!("{} is not between 1 and {MAX_PARALLELISM}", self.parallelism));
        }
        if self.progress_interval.is_zero() {
            return invalid(Field::ProgressInterval, "must be more than 0".into());
        }
        settings::check_target_file_bytes(self.target_file_bytes(), crate::io::destination::MAX_OBJECT_BYTES)
            .map_err(refused)?;
        match self.read_limit {
            ReadLimit::MaxRcu(rcu) if !(rcu.is_finite() && rcu >= 1.0) => {
                return invalid(Field::MaxRcu, format!("{rcu} is not a number of at least 1"));
            }
            ReadLimit::ReadPercent(p) if !(p.is_finite() && p > 0.0 && p <= 100.0) => {
                return invalid(Field::ReadPercent, format!("{p} is not a percentage above 0 and at most 100"));
            }
            _ => {}
        }
        settings::check_compression_level(self.compression_level()).map_err(refused)?;
        if let Some(token) = &self.client_token {
            settings::check_client_token(token).map_err(refused)?;
        }
        if let Some(owner) = &self.s3.expected_owner {
            settings::check_bucket_owner(owner).map_err(refused)?;
        }
        if let Some(key) = &self.s3.kms_key_id {
            settings::check_kms_key_id(key).map_err(refused)?;
        }
        if matches!(self.target, Target::Dir(_)) && (self.s3.expected_owner.is_some() || self.s3.kms_key_id.is_some()) {
            return invalid(
                Field::Target,
                format!("{} and {} only apply to s3:// destinations", Field::S3BucketOwner, Field::S3SseKmsKeyId),
            );
        }
        if let Some(filter) = &self.scan_filter {
            crate::io::dynamodb::check_filter(filter).map_err(refused)?;
            if self.consistent() || self.incremental.is_some() {
                return invalid(
                    Field::Filter,
                    "filters and projections apply to plain full exports only (the stream's images are whole)".into(),
                );
            }
        }
        if let Some(resume) = &self.resume {
            resume_export_id(resume)
                .map_err(|message| ExportError::InvalidArgument { field: Field::Resume, message })?;
        }
        if let Some(window) = &self.incremental {
            self.validate_incremental(window, now_ms())?;
        }
        Ok(())
    }

    /// An incremental export reads the stream, not the table: the Scan's flags make no sense
    /// with it, and its window must be in the past.
    fn validate_incremental(&self, window: &IncrementalWindow, now_ms: u64) -> Result<(), ExportError> {
        let invalid = |field, message: String| Err(ExportError::InvalidArgument { field, message });
        if self.segments.is_some() {
            return invalid(
                Field::Segments,
                "an incremental export reads the stream, not segments of the table".into(),
            );
        }
        if self.consistent() {
            return invalid(
                Field::Consistent,
                "an incremental export is of a window of changes, not of one moment".into(),
            );
        }
        if self.read_limit != ReadLimit::Default {
            return invalid(
                Field::ReadLimit,
                "an incremental export reads the stream, which costs no read capacity".into(),
            );
        }
        let time = crate::model::time::cli_timestamp;
        if window.from_ms >= now_ms {
            return invalid(
                Field::From,
                format!("{} is not in the past (it is now {})", time(window.from_ms), time(now_ms)),
            );
        }
        if let Some(to_ms) = window.to_ms {
            if to_ms <= window.from_ms {
                let from = time(window.from_ms);
                return invalid(Field::Until, format!("{} is not after {} {from}", time(to_ms), Field::From));
            }
            if to_ms > now_ms {
                return invalid(
                    Field::Until,
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
    if crate::model::layout::is_export_id(id) {
        Ok(id)
    } else {
        Err(format!("{id:?} is not an export id (<14 digits>-<8 lowercase hex>)"))
    }
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

impl From<crate::runtime::ComponentError> for ExportFailure {
    fn from(error: crate::runtime::ComponentError) -> Self {
        ExportError::from(error).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ExportViewType;

    /// The field an invalid request is refused for.
    fn field_of(result: Result<(), ExportError>) -> Option<Field> {
        match result {
            Err(ExportError::InvalidArgument { field, .. }) => Some(field),
            _ => None,
        }
    }

    fn request() -> ExportRequest {
        ExportRequest::new("orders", Target::S3 { bucket: "b".repeat(3), prefix: None })
    }

    #[test]
    fn accepts_names_and_arns() {
        assert!(request().validate().is_ok());
        assert!(ExportRequest { format: Some(ExportFormat::Ion), ..request() }.validate().is_ok());
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
            (IncrementalWindow { from_ms: now, ..window }, None, Field::From),
            (IncrementalWindow { to_ms: Some(now - 60_000), ..window }, None, Field::Until),
            (IncrementalWindow { to_ms: Some(now + 1), ..window }, None, Field::Until),
            (window, Some(ExportRequest { segments: Some(2), ..incremental.clone() }), Field::Segments),
            (window, Some(ExportRequest { read_limit: ReadLimit::Unlimited, ..incremental.clone() }), Field::ReadLimit),
            (window, Some(ExportRequest { consistent: Some(true), ..incremental.clone() }), Field::Consistent),
        ];
        for (window, request, want) in cases {
            let request = request.unwrap_or_else(|| incremental.clone());
            assert_eq!(field_of(request.validate_incremental(&window, now)), Some(want));
        }
        assert_eq!(window.resolve(now).export_to_time_ms, now);
        assert_eq!(IncrementalWindow { to_ms: Some(now - 1), ..window }.resolve(now).export_to_time_ms, now - 1);
    }

    #[test]
    fn names_the_bad_flag() {
        let cases = [
            (ExportRequest { table: "x".into(), ..request() }, Field::Table),
            (ExportRequest { table: "bad name!".into(), ..request() }, Field::Table),
            (ExportRequest { table: "arn:aws:s3:::bucket".into(), ..request() }, Field::Table),
            (ExportRequest { segments: Some(0), ..request() }, Field::Segments),
            (ExportRequest { segments: Some(10_001), ..request() }, Field::Segments),
            (ExportRequest { parallelism: 0, ..request() }, Field::Parallelism),
            (ExportRequest { progress_interval: Duration::ZERO, ..request() }, Field::ProgressInterval),
            (ExportRequest { compression_level: Some(10), ..request() }, Field::CompressionLevel),
            (ExportRequest { client_token: Some(String::new()), ..request() }, Field::ClientToken),
        ];
        for (request, want) in cases {
            let error = request.validate();
            let message = error.as_ref().map_err(ToString::to_string).err().unwrap_or_default();
            assert_eq!(field_of(error), Some(want), "{message}");
            assert!(message.contains(&want.to_string()), "the message names the field: {message}");
        }
    }
}
