//! AWS clients from the standard configuration chain, and SDK errors in plain words.

use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata};

use crate::error::ExportError;

/// Attempts per request (the SDK's standard retry mode: throttling and 5xx are retried with
/// jittered exponential backoff).
const MAX_ATTEMPTS: u32 = 8;
/// First retry delay (then doubling, jittered, up to 20 s).
const INITIAL_BACKOFF: Duration = Duration::from_millis(200);
/// Limit on opening a connection to an endpoint (TCP and TLS).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Limit on one attempt of a DynamoDB request, response body included (a Scan page is at most
/// 1 MB). A hung connection fails the attempt, which is then retried like any other transient
/// error (a Scan's by the export itself: `dynamodb::Table::scan_page` reports it as
/// [`ExportError::Transient`]).
const DYNAMODB_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(60);
/// Limit on one attempt of an S3 request. The attempt includes sending the body, and a part can
/// be 64 MiB: this allows for about 220 KiB/s.
const S3_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(300);
/// `DDB_EXPORT_IO_TIMEOUT_SECS=N` (1-86400): every attempt of every DynamoDB and S3 request,
/// whatever its service, is limited to N seconds, and opening a connection to at most N (and
/// 5) seconds, instead of [`DYNAMODB_ATTEMPT_TIMEOUT`] and [`S3_ATTEMPT_TIMEOUT`]. For slow
/// links (raise it), and for tests (which lower it to see hung requests retried quickly).
pub const IO_TIMEOUT_ENV: &str = "DDB_EXPORT_IO_TIMEOUT_SECS";
/// The endpoint of DynamoDB Streams alone (the SDK's name for it, from the service id).
pub const STREAMS_ENDPOINT_ENV: &str = "AWS_ENDPOINT_URL_DYNAMODB_STREAMS";
/// Region used when none is configured but an endpoint is (local stand-ins don't care).
const FALLBACK_REGION: &str = "us-east-1";

/// The DynamoDB, DynamoDB Streams and S3 clients of one run.
#[derive(Clone, Debug)]
pub struct AwsClients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    /// Reads a table's stream, for incremental exports.
    pub streams: aws_sdk_dynamodbstreams::Client,
    pub s3: aws_sdk_s3::Client,
    pub region: String,
}

impl AwsClients {
    /// Loads profiles, credentials, `AWS_REGION` and the `AWS_ENDPOINT_URL*` variables the
    /// way every AWS tool does. With a custom S3 endpoint, S3 uses path-style addressing so any
    /// S3-compatible server works.
    ///
    /// Every request attempt has a time limit (see [`IO_TIMEOUT_ENV`]), so a connection that
    /// hangs fails that attempt, which is retried, instead of stalling the export.
    pub async fn from_env() -> Result<Self, ExportError> {
        let timeouts = IoTimeouts::from_env()?;
        let retry = aws_config::retry::RetryConfig::standard()
            .with_max_attempts(MAX_ATTEMPTS)
            .with_initial_backoff(INITIAL_BACKOFF);
        let mut config = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(retry)
            .timeout_config(timeouts.config(timeouts.dynamodb_attempt))
            .load()
            .await;
        let custom_s3_endpoint = config.endpoint_url().is_some() || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some();
        let dynamodb_endpoint = std::env::var("AWS_ENDPOINT_URL_DYNAMODB").ok();
        let streams_endpoint = std::env::var_os(STREAMS_ENDPOINT_ENV).is_some();
        let custom_endpoint = custom_s3_endpoint || dynamodb_endpoint.is_some() || streams_endpoint;
        if config.region().is_none() {
            if !custom_endpoint {
                return Err(ExportError::InvalidArgument {
                    what: "AWS configuration",
                    message: "no AWS region is configured: set AWS_REGION or a region in your AWS profile".into(),
                });
            }
            config = config.into_builder().region(Region::new(FALLBACK_REGION)).build();
        }
        let region = config.region().map(|r| r.to_string()).unwrap_or_else(|| FALLBACK_REGION.to_string());
        // Scan turns the SDK's retries off per call and retries in the export itself (throttling
        // without limit and feeding the read budget, other transient errors a bounded number
        // of times): see `dynamodb::Table::scan_page` and `shard::scan`.
        let dynamodb = aws_sdk_dynamodb::Client::new(&config);
        // DynamoDB Streams is its own service (`AWS_ENDPOINT_URL_DYNAMODB_STREAMS`); where only
        // DynamoDB's endpoint is named (some stand-ins serve both on one port), it is used.
        let mut streams_config = aws_sdk_dynamodbstreams::config::Builder::from(&config);
        if let (Some(endpoint), false, None) = (&dynamodb_endpoint, streams_endpoint, config.endpoint_url()) {
            streams_config = streams_config.endpoint_url(endpoint);
        }
        let streams = aws_sdk_dynamodbstreams::Client::from_conf(streams_config.build());
        // Bodies carry Content-MD5, which S3 checks. The SDK's default extra CRC32 on
        // UploadPart would have to be repeated in CompleteMultipartUpload, which some
        // S3-compatible servers (and SDK versions) get wrong.
        let s3_config = aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(custom_s3_endpoint)
            .request_checksum_calculation(aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired)
            .timeout_config(timeouts.config(timeouts.s3_attempt))
            .build();
        let s3 = aws_sdk_s3::Client::from_conf(s3_config);
        Ok(Self { dynamodb, streams, s3, region })
    }
}

/// The time limits of one run's requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct IoTimeouts {
    connect: Duration,
    dynamodb_attempt: Duration,
    s3_attempt: Duration,
}

impl IoTimeouts {
    fn from_env() -> Result<Self, ExportError> {
        Self::parse(std::env::var_os(IO_TIMEOUT_ENV).as_deref().map(|v| v.to_string_lossy()).as_deref())
    }

    /// The defaults, or all limits set from the value of [`IO_TIMEOUT_ENV`].
    fn parse(value: Option<&str>) -> Result<Self, ExportError> {
        let Some(value) = value else {
            return Ok(Self {
                connect: CONNECT_TIMEOUT,
                dynamodb_attempt: DYNAMODB_ATTEMPT_TIMEOUT,
                s3_attempt: S3_ATTEMPT_TIMEOUT,
            });
        };
        let seconds = value.trim().parse::<u64>().ok().filter(|s| (1..=86_400).contains(s)).ok_or_else(|| {
            ExportError::InvalidArgument {
                what: IO_TIMEOUT_ENV,
                message: format!("{value:?} is not a number of seconds from 1 to 86400"),
            }
        })?;
        let limit = Duration::from_secs(seconds);
        Ok(Self { connect: CONNECT_TIMEOUT.min(limit), dynamodb_attempt: limit, s3_attempt: limit })
    }

    fn config(&self, attempt: Duration) -> TimeoutConfig {
        TimeoutConfig::builder().connect_timeout(self.connect).operation_attempt_timeout(attempt).build()
    }
}

/// What an SDK error says, classified.
pub(crate) struct SdkFailure {
    pub code: Option<String>,
    pub message: String,
}

impl SdkFailure {
    pub fn of<E>(error: &E) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error,
    {
        let code = error.code().map(str::to_string);
        let message = match (error.code(), error.message()) {
            (Some(code), Some(message)) => format!("{code}: {message}"),
            (Some(code), None) => code.to_string(),
            _ => DisplayErrorContext(error).to_string(),
        };
        Self { code, message }
    }

    pub fn is_access_denied(&self) -> bool {
        matches!(self.code.as_deref(), Some("AccessDenied" | "AccessDeniedException"))
    }

    pub fn is_credentials(&self) -> bool {
        matches!(
            self.code.as_deref(),
            Some(
                "UnrecognizedClientException"
                    | "InvalidClientTokenId"
                    | "InvalidAccessKeyId"
                    | "SignatureDoesNotMatch"
                    | "ExpiredToken"
                    | "ExpiredTokenException"
                    | "InvalidSignatureException"
                    | "MissingAuthenticationToken"
            )
        ) || self.message.contains("no credentials")
            || self.message.contains("failed to load credentials")
    }

    /// The access and credential cases, which need the same words whatever the operation.
    pub fn into_export_error(self, action: String, otherwise: impl FnOnce(String) -> ExportError) -> ExportError {
        if self.is_access_denied() {
            ExportError::AccessDenied { action, message: self.message }
        } else if self.is_credentials() {
            ExportError::Credentials { message: self.message }
        } else {
            otherwise(self.message)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_timeouts_default_per_service_and_the_variable_sets_them_all() {
        let defaults = IoTimeouts::parse(None).unwrap();
        assert_eq!(defaults.connect, CONNECT_TIMEOUT);
        assert_eq!(defaults.dynamodb_attempt, DYNAMODB_ATTEMPT_TIMEOUT);
        assert_eq!(defaults.s3_attempt, S3_ATTEMPT_TIMEOUT);
        let two = IoTimeouts::parse(Some("2")).unwrap();
        assert_eq!(
            (two.connect, two.dynamodb_attempt, two.s3_attempt),
            (Duration::from_secs(2), Duration::from_secs(2), Duration::from_secs(2))
        );
        let long = IoTimeouts::parse(Some(" 600 ")).unwrap();
        assert_eq!((long.connect, long.s3_attempt), (CONNECT_TIMEOUT, Duration::from_secs(600)));
        let config = long.config(long.dynamodb_attempt);
        assert_eq!(config.operation_attempt_timeout(), Some(Duration::from_secs(600)));
        assert_eq!(config.connect_timeout(), Some(CONNECT_TIMEOUT));
        for bad in ["0", "-1", "1.5", "soon", "", "86401"] {
            let error = IoTimeouts::parse(Some(bad)).unwrap_err().to_string();
            assert!(error.contains(IO_TIMEOUT_ENV), "{bad:?}: {error}");
        }
    }
}
