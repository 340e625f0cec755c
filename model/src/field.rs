//! The settings a request has, by name, for errors that say which one is wrong.

use std::fmt;

/// A setting of a request (an export's, a fan-out worker's, `verify`'s, the sandbox's),
/// named in an error about it.
///
/// Its `Display` is the name a library user knows, in backticks: `` `ExportRequest::segments` ``.
/// The command line shows the flag instead (`--segments`): it maps each field to its flag
/// and replaces the name wherever an error mentions it ([`Field::ALL`] lists them).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    Table,
    Target,
    ClientToken,
    Resume,
    Parallelism,
    ReadLimit,
    MaxRcu,
    ReadPercent,
    NoReadLimit,
    ProgressInterval,
    Format,
    Segments,
    TargetFileBytes,
    CompressionLevel,
    S3BucketOwner,
    S3SseKmsKeyId,
    Incremental,
    From,
    Until,
    View,
    Consistent,
    ScanFilter,
    Filter,
    Projection,
    ExpressionNames,
    ExpressionValues,
    Component,
    Encoder,
    EncoderArgs,
    ComponentMemory,
    ComponentTimeout,
    Plan,
    Shard,
    ExportId,
    KeyAttributes,
    /// The exports a restore reads.
    RestoreFrom,
    /// Whether a restore creates its table.
    CreateTable,
    /// The key a restore creates its table with.
    Key,
    /// The billing a restore creates its table with.
    Billing,
    /// How a restore treats the items a table holds.
    Writes,
    /// How fast a restore writes.
    WriteLimit,
    /// A restore's write budget in WCU per second.
    MaxWcu,
    /// A restore's share of a provisioned table's write capacity.
    WritePercent,
    /// Where a restore keeps its state.
    State,
}

impl Field {
    /// Every field, for a caller that maps them all (the command line, to its flags).
    pub const ALL: [Field; 44] = [
        Field::Table,
        Field::Target,
        Field::ClientToken,
        Field::Resume,
        Field::Parallelism,
        Field::ReadLimit,
        Field::MaxRcu,
        Field::ReadPercent,
        Field::NoReadLimit,
        Field::ProgressInterval,
        Field::Format,
        Field::Segments,
        Field::TargetFileBytes,
        Field::CompressionLevel,
        Field::S3BucketOwner,
        Field::S3SseKmsKeyId,
        Field::Incremental,
        Field::From,
        Field::Until,
        Field::View,
        Field::Consistent,
        Field::ScanFilter,
        Field::Filter,
        Field::Projection,
        Field::ExpressionNames,
        Field::ExpressionValues,
        Field::Component,
        Field::Encoder,
        Field::EncoderArgs,
        Field::ComponentMemory,
        Field::ComponentTimeout,
        Field::Plan,
        Field::Shard,
        Field::ExportId,
        Field::KeyAttributes,
        Field::RestoreFrom,
        Field::CreateTable,
        Field::Key,
        Field::Billing,
        Field::Writes,
        Field::WriteLimit,
        Field::MaxWcu,
        Field::WritePercent,
        Field::State,
    ];

    /// The field's name in the library's API, without backticks.
    pub fn name(self) -> &'static str {
        match self {
            Field::Table => "ExportRequest::table",
            Field::Target => "ExportRequest::target",
            Field::ClientToken => "ExportRequest::client_token",
            Field::Resume => "ExportRequest::resume",
            Field::Parallelism => "ExportRequest::parallelism",
            Field::ReadLimit => "ExportRequest::read_limit",
            Field::MaxRcu => "ReadLimit::MaxRcu",
            Field::ReadPercent => "ReadLimit::ReadPercent",
            Field::NoReadLimit => "ReadLimit::Unlimited",
            Field::ProgressInterval => "ExportRequest::progress_interval",
            Field::Format => "ExportRequest::format",
            Field::Segments => "ExportRequest::segments",
            Field::TargetFileBytes => "ExportRequest::target_file_bytes",
            Field::CompressionLevel => "ExportRequest::compression_level",
            Field::S3BucketOwner => "S3Options::expected_owner",
            Field::S3SseKmsKeyId => "S3Options::kms_key_id",
            Field::Incremental => "ExportRequest::incremental",
            Field::From => "IncrementalWindow::from_ms",
            Field::Until => "IncrementalWindow::to_ms",
            Field::View => "IncrementalWindow::view",
            Field::Consistent => "ExportRequest::consistent",
            Field::ScanFilter => "ExportRequest::scan_filter",
            Field::Filter => "ScanFilter::filter",
            Field::Projection => "ScanFilter::projection",
            Field::ExpressionNames => "ScanFilter::names",
            Field::ExpressionValues => "ScanFilter::values",
            Field::Component => "ComponentSource",
            Field::Encoder => "EncoderPlugin",
            Field::EncoderArgs => "EncoderPlugin::args",
            Field::ComponentMemory => "GuestLimits::memory_bytes",
            Field::ComponentTimeout => "GuestLimits::call_timeout",
            Field::Plan => "PlanLocation",
            Field::Shard => "ShardRun::shard",
            Field::ExportId => "export_id",
            Field::KeyAttributes => "key_attributes",
            Field::RestoreFrom => "RestoreRequest::from",
            Field::CreateTable => "RestoreRequest::create_table",
            Field::Key => "RestoreRequest::key",
            Field::Billing => "RestoreRequest::billing",
            Field::Writes => "RestoreRequest::writes",
            Field::WriteLimit => "RestoreRequest::write_limit",
            Field::MaxWcu => "WriteLimit::MaxWcu",
            Field::WritePercent => "WriteLimit::WritePercent",
            Field::State => "RestoreRequest::state",
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`", self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_has_its_own_name() {
        let mut names: Vec<String> = Field::ALL.iter().map(|f| f.to_string()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), Field::ALL.len());
        // No name is part of another's, so replacing one in a message never touches another.
        for a in &names {
            for b in &names {
                assert!(a == b || !b.contains(a.as_str()), "{a} is inside {b}");
            }
        }
        assert_eq!(Field::Segments.to_string(), "`ExportRequest::segments`");
    }
}
