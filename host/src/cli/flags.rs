//! The flag of each request field. The library names the setting an error is about by its
//! [`Field`] (`` `ExportRequest::segments` ``); the command line says `--segments`, in error
//! messages and in log lines alike.

use std::io::Write;

use ddb_export::model::Field;

/// The flag (or flags) that set `field`.
pub fn flag(field: Field) -> &'static str {
    match field {
        Field::Table => "--table",
        Field::Target => "--to",
        Field::ClientToken => "--client-token",
        Field::Resume => "--resume",
        Field::Parallelism => "--parallelism",
        Field::ReadLimit => "--max-rcu, --read-percent or --no-read-limit",
        Field::MaxRcu => "--max-rcu",
        Field::ReadPercent => "--read-percent",
        Field::NoReadLimit => "--no-read-limit",
        Field::ProgressInterval => "--progress-interval-secs",
        Field::Format => "--format",
        Field::Segments => "--segments",
        Field::TargetFileBytes => "--file-size",
        Field::CompressionLevel => "--compression-level",
        Field::S3BucketOwner => "--s3-bucket-owner",
        Field::S3SseKmsKeyId => "--s3-sse-kms-key-id",
        Field::Incremental => "--incremental",
        Field::From => "--from",
        Field::Until => "--until",
        Field::View => "--view",
        Field::Consistent => "--consistent",
        Field::ScanFilter => "--filter/--projection/--expression-*",
        Field::Filter => "--filter",
        Field::Projection => "--projection",
        Field::ExpressionNames => "--expression-names",
        Field::ExpressionValues => "--expression-values",
        Field::Component => "--component",
        Field::Encoder => "--encoder",
        Field::EncoderArgs => "--encoder-arg",
        Field::ComponentMemory => "--component-memory-mib",
        Field::ComponentTimeout => "--component-timeout-secs",
        Field::Plan => "--plan",
        Field::Shard => "--shard",
        Field::ExportId => "--export-id",
        Field::KeyAttributes => "--key-attributes",
        Field::RestoreFrom => "--from",
        Field::CreateTable => "--create-table",
        Field::Key => "--key",
        Field::Billing => "--billing",
        Field::Writes => "--overwrite, --if-absent or --if-older",
        Field::WriteLimit => "--max-wcu, --write-percent or --no-write-limit",
        Field::MaxWcu => "--max-wcu",
        Field::WritePercent => "--write-percent",
        Field::State => "--state",
        // A field added to the library before a flag was: its name, which says what it is.
        _ => field.name(),
    }
}

/// `text` with every field's name replaced by its flag.
pub fn in_flags(text: &str) -> String {
    if !text.contains('`') {
        return text.to_string();
    }
    Field::ALL.iter().fold(text.to_string(), |text, field| text.replace(&field.to_string(), flag(*field)))
}

/// Standard error, with field names said as flags: the log lines' writer.
pub struct Stderr;

impl Write for Stderr {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        // The formatter writes each event whole; a line cut in two keeps its bytes as they are.
        match std::str::from_utf8(bytes) {
            Ok(text) => std::io::stderr().write_all(in_flags(text).as_bytes())?,
            Err(_) => std::io::stderr().write_all(bytes)?,
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_has_a_flag_and_a_message_says_flags() {
        for field in Field::ALL {
            assert!(flag(field).starts_with("--"), "{field} has no flag");
        }
        let message = format!("invalid {}: 10001 is not between 1 and 10000", Field::Segments);
        assert_eq!(in_flags(&message), "invalid --segments: 10001 is not between 1 and 10000");
        let both = format!("{} and {} only apply to s3:// destinations", Field::S3BucketOwner, Field::S3SseKmsKeyId);
        assert_eq!(in_flags(&both), "--s3-bucket-owner and --s3-sse-kms-key-id only apply to s3:// destinations");
        assert_eq!(in_flags("`code` stays"), "`code` stays");
    }
}
