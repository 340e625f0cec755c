//! Time: now, and each form a time is written or read in. One module, so that every time an
//! export shows or parses is the same for the same instant.
//!
//! All times are milliseconds since the Unix epoch (`u64`), UTC.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Now, by this host's clock (0 if the clock is before 1970).
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// As `manifest-summary.json` writes times: `2023-08-31T07:40:21.041Z`.
pub use ddb_export_data_files::summary::timestamp as summary_time;

/// As the AWS CLI prints a time: `2023-08-31T07:40:21.041000+00:00` (clamped to the end of 9999).
pub fn cli_timestamp(epoch_ms: u64) -> String {
    let time = UNIX_EPOCH + Duration::from_millis(epoch_ms.min(LAST_MS_OF_9999));
    let text = humantime::format_rfc3339_micros(time).to_string();
    match text.strip_suffix('Z') {
        Some(stem) => format!("{stem}+00:00"),
        None => text,
    }
}

/// 9999-12-31T23:59:59.999Z.
const LAST_MS_OF_9999: u64 = 253_402_300_799_999;

/// An RFC 3339 time in UTC (`2020-11-04T07:28:34.028Z`, as summaries write them); `None` when
/// it is not one.
pub use ddb_export_data_files::summary::epoch_ms as parse_summary_time;

/// A time as a user writes one: RFC 3339 (`2024-05-01T12:00:00Z`, `…T12:00:00.250+02:00`) or
/// seconds since the Unix epoch (`1714564800`, `1714564800.25`), to the millisecond at most.
pub fn parse_user_time(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let too_precise = || format!("{text:?} is more precise than a millisecond");
    if let Some((seconds, fraction)) = text.split_once('.').or(Some((text, ""))).filter(|(s, f)| {
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && f.bytes().all(|b| b.is_ascii_digit())
    }) {
        if fraction.len() > 3 {
            return Err(too_precise());
        }
        let seconds: u64 = seconds.parse().map_err(|_| format!("{text:?} is too large"))?;
        let millis: u64 = format!("{fraction:0<3}").parse().unwrap_or(0);
        return seconds
            .checked_mul(1000)
            .and_then(|ms| ms.checked_add(millis))
            .ok_or_else(|| format!("{text:?} is too large"));
    }
    // An offset other than Z: humantime reads UTC only.
    let (utc, offset_ms) = match text.len().checked_sub(6).and_then(|at| text.get(at..).map(|tail| (at, tail))) {
        Some((at, tail))
            if (tail.starts_with('+') || tail.starts_with('-'))
                && tail.as_bytes()[3] == b':'
                && text.as_bytes().get(at.wrapping_sub(1)).is_some_and(u8::is_ascii_digit) =>
        {
            let hours: i64 = tail[1..3].parse().map_err(|_| format!("{text:?}: bad offset {tail:?}"))?;
            let minutes: i64 = tail[4..6].parse().map_err(|_| format!("{text:?}: bad offset {tail:?}"))?;
            let sign = if tail.starts_with('-') { -1 } else { 1 };
            (format!("{}Z", &text[..at]), sign * (hours * 60 + minutes) * 60_000)
        }
        _ => (text.to_string(), 0),
    };
    let time = humantime::parse_rfc3339(&utc.replace('z', "Z"))
        .map_err(|e| format!("{text:?} is neither an RFC 3339 time (2024-05-01T12:00:00Z) nor epoch seconds: {e}"))?;
    let since = time.duration_since(UNIX_EPOCH).map_err(|_| format!("{text:?} is before 1970"))?;
    if since.subsec_nanos() % 1_000_000 != 0 {
        return Err(too_precise());
    }
    let ms = i64::try_from(since.as_millis()).map_err(|_| format!("{text:?} is too large"))? - offset_ms;
    u64::try_from(ms).map_err(|_| format!("{text:?} is before 1970"))
}

/// A DynamoDB Streams `StreamLabel` (an ISO 8601 time without a zone, in UTC:
/// `2015-05-11T21:21:33.291`); `None` when it is not one.
pub fn parse_stream_label(label: &str) -> Option<u64> {
    let time = humantime::parse_rfc3339_weak(label).ok()?;
    u64::try_from(time.duration_since(UNIX_EPOCH).ok()?.as_millis()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_aws_cli_s_form_has_microseconds_and_an_offset() {
        assert_eq!(cli_timestamp(1_693_467_621_041), "2023-08-31T07:40:21.041000+00:00");
        assert_eq!(cli_timestamp(u64::MAX), "9999-12-31T23:59:59.999000+00:00");
        assert_eq!(summary_time(1_693_467_621_041), "2023-08-31T07:40:21.041Z");
        assert_eq!(parse_summary_time("2023-08-31T07:40:21.041Z"), Some(1_693_467_621_041));
        assert!(now_ms() > 1_700_000_000_000);
    }

    #[test]
    fn user_times_are_rfc_3339_or_epoch_seconds_to_the_millisecond() {
        assert_eq!(parse_user_time("1714564800"), Ok(1_714_564_800_000));
        assert_eq!(parse_user_time("1714564800.25"), Ok(1_714_564_800_250));
        assert_eq!(parse_user_time("2024-05-01T12:00:00Z"), Ok(1_714_564_800_000));
        assert_eq!(parse_user_time("2024-05-01T12:00:00.250Z"), Ok(1_714_564_800_250));
        assert_eq!(parse_user_time("2024-05-01T14:00:00.250+02:00"), Ok(1_714_564_800_250));
        assert_eq!(parse_user_time("2024-05-01T10:30:00-01:30"), Ok(1_714_564_800_000));
        for bad in ["", "yesterday", "1714564800.2501", "2024-05-01T12:00:00.0001Z", "2024-05-01", "-5", "1e9"] {
            assert!(parse_user_time(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_stream_label_is_a_utc_time() {
        assert_eq!(parse_stream_label("2024-05-01T12:00:00.250"), Some(1_714_564_800_250));
        assert_eq!(parse_stream_label("not a label"), None);
    }
}
