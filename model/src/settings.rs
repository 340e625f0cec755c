//! The rules an export's settings keep, whoever plans the export (the host's request, the step
//! component's `plan`): their defaults and their checks, each naming its [`Field`]. Checks that
//! need a service (does the table exist, does DynamoDB take the filter) are the callers'.

use crate::{Field, MAX_SEGMENTS, ScanFilter};

/// Default size at which a data file is closed and the next one begun (compressed bytes).
pub const DEFAULT_TARGET_FILE_BYTES: u64 = 128 * 1024 * 1024;
/// Default gzip level of the data files.
pub const DEFAULT_COMPRESSION_LEVEL: u8 = 6;

/// A setting that breaks a rule: which one, and why, in words.
pub type Refusal = (Field, String);

/// DynamoDB table names are 3-255 of `[A-Za-z0-9_.-]`; an ARN names `table/<name>`.
pub fn check_table(table: &str) -> Result<(), Refusal> {
    let refused = |why: &str| Err((Field::Table, format!("{table:?} {why}")));
    let name = match table.strip_prefix("arn:") {
        Some(_) => match table.split_once(":table/") {
            Some((head, name)) if head.split(':').nth(2) == Some("dynamodb") && !name.contains('/') => name,
            _ => return refused("is not a table ARN (arn:<partition>:dynamodb:<region>:<account>:table/<name>)"),
        },
        None => table,
    };
    if !(3..=255).contains(&name.len()) {
        return refused("is not a table name: names are 3 to 255 characters long");
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.') {
        return refused("is not a table name: names hold only letters, digits, '_', '-' and '.'");
    }
    Ok(())
}

/// Scan segments: 1 to [`MAX_SEGMENTS`].
pub fn check_segments(segments: u32) -> Result<(), Refusal> {
    if (1..=MAX_SEGMENTS).contains(&segments) {
        return Ok(());
    }
    Err((Field::Segments, format!("{segments} is not between 1 and {MAX_SEGMENTS} (ddb-export's limit)")))
}

/// A data file's size: at most `max_object`, the most one object can hold where it is stored.
pub fn check_target_file_bytes(bytes: u64, max_object: u64) -> Result<(), Refusal> {
    if bytes <= max_object {
        return Ok(());
    }
    Err((Field::TargetFileBytes, format!("{bytes} is more than one object can hold ({max_object})")))
}

/// gzip levels are 0 to 9.
pub fn check_compression_level(level: u8) -> Result<(), Refusal> {
    if level <= 9 {
        return Ok(());
    }
    Err((Field::CompressionLevel, format!("{level} is not between 0 and 9")))
}

/// A client token: 1 to 64 printable characters, as AWS takes them.
pub fn check_client_token(token: &str) -> Result<(), Refusal> {
    if token.is_empty() || token.len() > 64 || token.chars().any(char::is_control) {
        return Err((Field::ClientToken, "must be 1 to 64 printable characters".into()));
    }
    Ok(())
}

/// The expected bucket owner: a 12-digit account id.
pub fn check_bucket_owner(owner: &str) -> Result<(), Refusal> {
    if owner.len() == 12 && owner.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(());
    }
    Err((Field::S3BucketOwner, format!("{owner:?} is not a 12-digit AWS account id")))
}

/// A KMS key id is not empty.
pub fn check_kms_key_id(key: &str) -> Result<(), Refusal> {
    if key.is_empty() {
        return Err((Field::S3SseKmsKeyId, "is empty".into()));
    }
    Ok(())
}

/// A filter's names start with `#`, its values' names with `:`, and its expressions are not
/// empty. `value` checks each value (DynamoDB JSON), saying what is wrong with it.
pub fn check_filter(
    filter: &ScanFilter,
    value: impl Fn(&serde_json::Value) -> Result<(), String>,
) -> Result<(), Refusal> {
    if let Some(name) = filter.names.keys().find(|n| !n.starts_with('#') || n.len() < 2) {
        return Err((Field::ExpressionNames, format!("{name:?} does not start with '#'")));
    }
    for (name, json) in &filter.values {
        if !name.starts_with(':') || name.len() < 2 {
            return Err((Field::ExpressionValues, format!("{name:?} does not start with ':'")));
        }
        value(json).map_err(|why| (Field::ExpressionValues, format!("{name}: {why}")))?;
    }
    if filter.filter.as_deref().is_some_and(str::is_empty) || filter.projection.as_deref().is_some_and(str::is_empty) {
        return Err((Field::Filter, "an expression is empty".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field<T>(checked: Result<T, Refusal>) -> Option<Field> {
        checked.err().map(|(field, _)| field)
    }

    #[test]
    fn table_names_and_arns() {
        for good in ["orders", "a.b-c_d", "arn:aws:dynamodb:us-east-1:123456789012:table/orders"] {
            assert!(check_table(good).is_ok(), "{good}");
        }
        for bad in ["ab", "has space", "arn:aws:s3:::bucket", "arn:aws:dynamodb:us-east-1:1:table/a/b"] {
            let (field, message) = check_table(bad).unwrap_err();
            assert_eq!(field, Field::Table);
            assert!(message.contains(&format!("{bad:?}")), "{message}");
        }
    }

    #[test]
    fn numbers_in_their_ranges() {
        assert_eq!(field(check_segments(0)), Some(Field::Segments));
        assert_eq!(field(check_segments(MAX_SEGMENTS + 1)), Some(Field::Segments));
        assert!(check_segments(MAX_SEGMENTS).is_ok());
        assert_eq!(field(check_compression_level(10)), Some(Field::CompressionLevel));
        assert!(check_compression_level(0).is_ok());
        assert_eq!(field(check_target_file_bytes(11, 10)), Some(Field::TargetFileBytes));
        assert!(check_target_file_bytes(10, 10).is_ok());
    }

    #[test]
    fn tokens_owners_and_keys() {
        assert!(check_client_token("run-1").is_ok());
        for bad in [String::new(), "x".repeat(65), "a\nb".into()] {
            assert_eq!(field(check_client_token(&bad)), Some(Field::ClientToken));
        }
        assert!(check_bucket_owner("123456789012").is_ok());
        assert_eq!(field(check_bucket_owner("12345")), Some(Field::S3BucketOwner));
        assert_eq!(field(check_kms_key_id("")), Some(Field::S3SseKmsKeyId));
    }

    #[test]
    fn a_filter_s_mistakes_name_their_field() {
        let ok = |_: &serde_json::Value| Ok(());
        let filter = |names: &[(&str, &str)], values: &[&str]| ScanFilter {
            filter: Some("#s = :v".into()),
            projection: None,
            names: names.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            values: values.iter().map(|k| (k.to_string(), serde_json::json!({"S": "x"}))).collect(),
        };
        assert!(check_filter(&filter(&[("#s", "status")], &[":v"]), ok).is_ok());
        assert_eq!(field(check_filter(&filter(&[("s", "status")], &[]), ok)), Some(Field::ExpressionNames));
        assert_eq!(field(check_filter(&filter(&[], &["v"]), ok)), Some(Field::ExpressionValues));
        let refuse = |_: &serde_json::Value| Err("no".to_string());
        assert_eq!(field(check_filter(&filter(&[], &[":v"]), refuse)), Some(Field::ExpressionValues));
        let empty = ScanFilter { filter: Some(String::new()), ..ScanFilter::default() };
        assert_eq!(field(check_filter(&empty, ok)), Some(Field::Filter));
    }
}
