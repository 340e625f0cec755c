//! Parsing and checking `--to`: `s3://bucket[/prefix]` or a local directory.

use std::path::PathBuf;

use crate::error::ExportError;

/// Longest prefix accepted: S3 keys stop at 1,024 bytes and the export adds about 100.
const MAX_PREFIX_BYTES: usize = 900;

/// Where an export goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// An S3 (or S3-compatible) bucket and an optional key prefix without outer slashes.
    S3 { bucket: String, prefix: Option<String> },
    /// A local directory; the layout below it is the same as in a bucket.
    Dir(PathBuf),
}

impl Target {
    /// Parses `s3://bucket[/prefix]`, `file:///path` (or `file://localhost/path`) or a plain path.
    pub fn parse(text: &str) -> Result<Self, ExportError> {
        let invalid = |message: String| ExportError::InvalidArgument { field: crate::model::Field::Target, message };
        if let Some(rest) = text.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            check_bucket(bucket).map_err(|m| invalid(format!("{text:?}: bucket name {bucket:?} {m}")))?;
            let prefix = prefix.trim_end_matches('/');
            let prefix = if prefix.is_empty() {
                None
            } else {
                check_prefix(prefix).map_err(|m| invalid(format!("{text:?}: prefix {prefix:?} {m}")))?;
                Some(prefix.to_string())
            };
            return Ok(Target::S3 { bucket: bucket.to_string(), prefix });
        }
        let path = match text.strip_prefix("file://") {
            // RFC 8089: `file:///path`, or `file://localhost/path`; another host is not ours.
            Some(rest) if rest.starts_with('/') => rest,
            Some(rest) => match rest.strip_prefix("localhost") {
                Some(path) if path.starts_with('/') => path,
                _ => {
                    let host = rest.split('/').next().unwrap_or(rest);
                    return Err(invalid(format!(
                        "{text:?}: a file:// URL names a path on this machine (file:///path or \
                         file://localhost/path), not on {host:?}"
                    )));
                }
            },
            None => text,
        };
        if let Some((scheme, _)) = path.split_once("://") {
            return Err(invalid(format!(
                "{text:?}: unsupported scheme {scheme:?}; use s3://bucket/prefix or a directory"
            )));
        }
        if path.is_empty() {
            return Err(invalid("the destination is empty".into()));
        }
        Ok(Target::Dir(PathBuf::from(path)))
    }
}

impl Target {
    /// Splits `…/AWSDynamoDB/<export id>` into the destination and the export id; anything else
    /// is the destination alone.
    pub fn parse_export_location(text: &str) -> Result<(Self, Option<String>), ExportError> {
        let trimmed = text.trim_end_matches('/');
        if let Some((head, id)) = trimmed.rsplit_once('/')
            && let Some(destination) = head.strip_suffix("AWSDynamoDB")
            && crate::model::layout::is_export_id(id)
        {
            let destination = match destination.trim_end_matches('/') {
                "" if text.starts_with('/') => "/",
                "" => ".",
                destination => destination,
            };
            return Ok((Self::parse(destination)?, Some(id.to_string())));
        }
        Ok((Self::parse(text)?, None))
    }
}

/// S3's bucket naming rules (general purpose buckets).
fn check_bucket(bucket: &str) -> Result<(), &'static str> {
    if !(3..=63).contains(&bucket.len()) {
        return Err("must be 3 to 63 characters long");
    }
    if !bucket.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-') {
        return Err("may only hold lowercase letters, digits, dots and hyphens");
    }
    let edge = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if !edge(bucket.bytes().next()) || !edge(bucket.bytes().last()) {
        return Err("must begin and end with a letter or a digit");
    }
    if bucket.contains("..") {
        return Err("must not hold two adjacent dots");
    }
    if bucket.split('.').count() == 4 && bucket.split('.').all(|p| p.parse::<u8>().is_ok()) {
        return Err("must not look like an IP address");
    }
    Ok(())
}

fn check_prefix(prefix: &str) -> Result<(), &'static str> {
    if prefix.len() > MAX_PREFIX_BYTES {
        return Err("is longer than 900 bytes");
    }
    if prefix.starts_with('/') {
        return Err("must not start with '/'");
    }
    if prefix.chars().any(char::is_control) {
        return Err("must not hold control characters");
    }
    if prefix.split('/').any(|part| part.is_empty() || part == "." || part == "..") {
        return Err("must not hold empty, '.' or '..' path segments");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_buckets_prefixes_and_directories() {
        assert_eq!(Target::parse("s3://my-bucket").unwrap(), Target::S3 { bucket: "my-bucket".into(), prefix: None });
        assert_eq!(Target::parse("s3://my-bucket/").unwrap(), Target::S3 { bucket: "my-bucket".into(), prefix: None });
        assert_eq!(
            Target::parse("s3://my.bucket/a/b/").unwrap(),
            Target::S3 { bucket: "my.bucket".into(), prefix: Some("a/b".into()) }
        );
        assert_eq!(Target::parse("out/dir").unwrap(), Target::Dir("out/dir".into()));
        assert_eq!(Target::parse("file:///tmp/x").unwrap(), Target::Dir("/tmp/x".into()));
        assert_eq!(Target::parse("file://localhost/srv/x").unwrap(), Target::Dir("/srv/x".into()));
    }

    #[test]
    fn an_export_folder_names_its_destination_and_id() {
        let id = "01700000000000-0123abcd";
        let parse = |text: &str| Target::parse_export_location(text).unwrap();
        assert_eq!(
            parse(&format!("s3://b1x/p/q/AWSDynamoDB/{id}/")),
            (Target::parse("s3://b1x/p/q").unwrap(), Some(id.into()))
        );
        assert_eq!(parse(&format!("s3://b1x/AWSDynamoDB/{id}")), (Target::parse("s3://b1x").unwrap(), Some(id.into())));
        assert_eq!(parse(&format!("/tmp/x/AWSDynamoDB/{id}")), (Target::Dir("/tmp/x".into()), Some(id.into())));
        assert_eq!(parse(&format!("AWSDynamoDB/{id}")), (Target::Dir(".".into()), Some(id.into())));
        assert_eq!(parse("s3://b1x/p"), (Target::parse("s3://b1x/p").unwrap(), None));
        assert_eq!(
            parse("s3://b1x/AWSDynamoDB/not-an-id"),
            (Target::parse("s3://b1x/AWSDynamoDB/not-an-id").unwrap(), None)
        );
    }

    #[test]
    fn refuses_bad_names_with_the_reason() {
        for (text, reason) in [
            ("s3://ab", "3 to 63"),
            ("s3://My-Bucket", "lowercase"),
            ("s3://-bucket", "begin and end"),
            ("s3://a..b", "adjacent dots"),
            ("s3://192.168.1.1", "IP address"),
            ("s3://bucket//x", "'/'"),
            ("s3://bucket/a//b", "empty"),
            ("s3://bucket/a/../b", "'..'"),
            ("gs://bucket", "unsupported scheme"),
            ("file://otherhost/srv/x", "not on \"otherhost\""),
            ("file://localhostess/x", "a path on this machine"),
            ("file://relative/x", "a path on this machine"),
            ("", "empty"),
        ] {
            let message = Target::parse(text).unwrap_err().to_string();
            assert!(message.contains(reason), "{text:?}: {message}");
        }
    }
}
