//! AWS clients from the standard configuration chain, and SDK errors in plain words.

use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_dynamodb::error::ProvideErrorMetadata;

use crate::error::{ExportError, in_words};

/// Attempts per request (the SDK's standard retry mode: throttling and 5xx are retried with
/// jittered exponential backoff).
const MAX_ATTEMPTS: u32 = 8;
/// First retry delay (then doubling, jittered, up to 20 s).
const INITIAL_BACKOFF: Duration = Duration::from_millis(200);
/// Limit on opening a connection to an endpoint (TCP and TLS).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Limit on one attempt of a DynamoDB request, response body included (a Scan page is at most
/// 1 MB). A hung connection fails the attempt, which is then retried like any other transient
/// error (a Scan's by the export itself: `dynamodb::Table::scan_page` reports it as
/// [`ExportError::Transient`]).
const DYNAMODB_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);
/// Until an endpoint has answered once, each attempt of a request to it gets this long and a
/// request at most [`FIRST_CALL_ATTEMPTS`] attempts: an endpoint that accepts connections and
/// never answers (a firewall that drops, a missing VPC endpoint) fails the first call in about
/// 30 s instead of hanging for minutes.
const FIRST_CALL_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
const FIRST_CALL_ATTEMPTS: u32 = 3;
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
                return Err(ExportError::Configuration {
                    setting: "AWS configuration",
                    message: "no AWS region is configured: set AWS_REGION or a region in your AWS profile".into(),
                });
            }
            config = config.into_builder().region(Region::new(FALLBACK_REGION)).build();
        }
        let region = config.region().map(|r| r.to_string()).unwrap_or_else(|| FALLBACK_REGION.to_string());
        // Scan turns the SDK's retries off per call and retries in the export itself (throttling
        // without limit and feeding the read budget, other transient errors a bounded number
        // of times): see `dynamodb::Table::scan_page` and `shard::scan`.
        let dynamodb_config =
            aws_sdk_dynamodb::config::Builder::from(&config).interceptor(Watchdog::new("DynamoDB", timeouts)).build();
        let dynamodb = aws_sdk_dynamodb::Client::from_conf(dynamodb_config);
        // DynamoDB Streams is its own service (`AWS_ENDPOINT_URL_DYNAMODB_STREAMS`); where only
        // DynamoDB's endpoint is named (some stand-ins serve both on one port), it is used.
        let mut streams_config = aws_sdk_dynamodbstreams::config::Builder::from(&config);
        if let (Some(endpoint), false, None) = (&dynamodb_endpoint, streams_endpoint, config.endpoint_url()) {
            streams_config = streams_config.endpoint_url(endpoint);
        }
        let streams_config = streams_config.interceptor(Watchdog::new("DynamoDB Streams", timeouts));
        let streams = aws_sdk_dynamodbstreams::Client::from_conf(streams_config.build());
        // Bodies carry Content-MD5, which S3 checks. The SDK's default extra CRC32 on
        // UploadPart would have to be repeated in CompleteMultipartUpload, which some
        // S3-compatible servers (and SDK versions) get wrong.
        let s3_config = aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(custom_s3_endpoint)
            .request_checksum_calculation(aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired)
            .timeout_config(timeouts.config(timeouts.s3_attempt))
            .interceptor(Watchdog::new("S3", timeouts))
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
            ExportError::Configuration {
                setting: IO_TIMEOUT_ENV,
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

/// Watches one service's requests, so that no failure is silent (an interceptor of its client):
///
/// - until the service's endpoint has answered once, a request gets at most
///   [`FIRST_CALL_ATTEMPTS`] attempts of [`FIRST_CALL_ATTEMPT_TIMEOUT`] each (or the
///   configured attempt limit, if lower);
/// - every retried attempt logs a warning naming the operation, the endpoint and what went
///   wrong with the attempt before;
/// - a request that ends without an answer (a time limit, a connection that failed) fails with
///   an error naming the endpoint and the operation.
#[derive(Debug)]
struct Watchdog {
    service: &'static str,
    /// Whether the endpoint has answered a request yet.
    answered: std::sync::atomic::AtomicBool,
    attempt_timeout: Duration,
}

/// The endpoint of a request (`scheme://host:port`), kept for messages.
#[derive(Debug, Clone)]
struct Endpoint(String);

impl aws_smithy_types::config_bag::Storable for Endpoint {
    type Storer = aws_smithy_types::config_bag::StoreReplace<Self>;
}

/// What went wrong with a request's last attempt, for the warning of its retry.
#[derive(Debug, Clone)]
struct LastFailure(String);

impl aws_smithy_types::config_bag::Storable for LastFailure {
    type Storer = aws_smithy_types::config_bag::StoreReplace<Self>;
}

/// A request that ended without an answer, with the endpoint and operation named.
#[derive(Debug)]
struct NoAnswer {
    message: String,
    source: Box<dyn std::error::Error + Send + Sync>,
}

impl std::fmt::Display for NoAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for NoAnswer {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.source.as_ref())
    }
}

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeTransmitInterceptorContextMut, BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextMut,
    FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::{Metadata, OrchestratorError};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::retries::RequestAttempts;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

impl Watchdog {
    fn new(service: &'static str, timeouts: IoTimeouts) -> Self {
        let attempt_timeout = match service {
            "S3" => timeouts.s3_attempt,
            _ => timeouts.dynamodb_attempt,
        };
        Self { service, answered: std::sync::atomic::AtomicBool::new(false), attempt_timeout }
    }

    fn has_answered(&self) -> bool {
        self.answered.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// `DynamoDB Scan` (or the service alone, before the operation is known).
    fn operation(&self, cfg: &ConfigBag) -> String {
        match cfg.load::<Metadata>() {
            Some(metadata) => format!("{} {}", self.service, metadata.name()),
            None => self.service.to_string(),
        }
    }

    fn endpoint(cfg: &ConfigBag) -> String {
        cfg.load::<Endpoint>().map_or_else(|| "its endpoint".to_string(), |e| e.0.clone())
    }
}

impl Intercept for Watchdog {
    fn name(&self) -> &'static str {
        "ddb-export watchdog"
    }

    fn modify_before_retry_loop(
        &self,
        _context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if self.has_answered() {
            return Ok(());
        }
        let timeouts = cfg.load::<aws_smithy_types::timeout::TimeoutConfig>().map(|timeouts| {
            let attempt = timeouts.operation_attempt_timeout().unwrap_or(self.attempt_timeout);
            let mut timeouts = timeouts.to_builder();
            timeouts.set_operation_attempt_timeout(Some(attempt.min(FIRST_CALL_ATTEMPT_TIMEOUT)));
            timeouts.build()
        });
        let retry = cfg
            .load::<aws_smithy_types::retry::RetryConfig>()
            .map(|retry| retry.clone().with_max_attempts(retry.max_attempts().min(FIRST_CALL_ATTEMPTS)));
        let state = cfg.interceptor_state();
        if let Some(timeouts) = timeouts {
            state.store_put(timeouts);
        }
        if let Some(retry) = retry {
            state.store_put(retry);
        }
        Ok(())
    }

    fn read_before_attempt(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let attempt = cfg.load::<RequestAttempts>().map_or(1, |a| a.attempts());
        if attempt > 1 {
            let of = cfg.load::<aws_smithy_types::retry::RetryConfig>().map_or(0, |r| r.max_attempts());
            let cause = cfg.load::<LastFailure>().map_or("it failed".to_string(), |f| f.0.clone());
            tracing::warn!(
                "retrying {} at {} (attempt {attempt} of {of}): {cause}",
                self.operation(cfg),
                Self::endpoint(cfg)
            );
        }
        Ok(())
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if cfg.load::<Endpoint>().is_none() {
            cfg.interceptor_state().store_put(Endpoint(endpoint_of(context.request().uri())));
        }
        Ok(())
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let failure = match (context.response(), context.output_or_error()) {
            (Some(response), _) => {
                self.answered.store(true, std::sync::atomic::Ordering::Relaxed);
                let status = response.status().as_u16();
                (status >= 400).then(|| format!("the endpoint answered HTTP {status}"))
            }
            (None, Some(Err(error))) => Some(cause(error)),
            (None, _) => None,
        };
        if let Some(failure) = failure {
            cfg.interceptor_state().store_put(LastFailure(failure));
        }
        Ok(())
    }

    fn modify_before_completion(
        &self,
        context: &mut FinalizerInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let answered = self.has_answered();
        let (operation, endpoint) = (self.operation(cfg), Self::endpoint(cfg));
        let Some(Err(error)) = context.output_or_error_mut() else { return Ok(()) };
        let first_call = (FIRST_CALL_ATTEMPTS, FIRST_CALL_ATTEMPT_TIMEOUT.as_secs());
        let no_answer = |source: BoxError| -> BoxError {
            let hint = match answered {
                true => String::new(),
                false => format!(
                    " ({} attempts of {}s; it has not answered any request yet: check the endpoint, and that \
                     nothing on the way drops the connection, such as a firewall or a missing VPC endpoint)",
                    first_call.0, first_call.1
                ),
            };
            let message = format!("no answer from {endpoint} to {operation}{hint}");
            Box::new(NoAnswer { message, source })
        };
        // The error is replaced by one of the same kind (the export's own retries classify by
        // kind) whose message names the endpoint and the operation.
        if error.is_timeout_error() {
            *error = OrchestratorError::timeout(no_answer(cause(error).into()));
        } else if let Some(connector) = error.as_connector_error() {
            let wrapped = no_answer(cause_of(connector).into());
            *error = OrchestratorError::connector(if connector.is_timeout() {
                ConnectorError::timeout(wrapped)
            } else if connector.is_io() {
                ConnectorError::io(wrapped)
            } else {
                ConnectorError::other(wrapped, None)
            });
        }
        Ok(())
    }
}

/// `scheme://host:port` of a request's URI.
fn endpoint_of(uri: &str) -> String {
    let (scheme, rest) = uri.split_once("://").unwrap_or(("https", uri));
    let authority = rest.split(['/', '?']).next().unwrap_or(rest);
    format!("{scheme}://{authority}")
}

/// What an attempt's error says, in one line.
fn cause<E: std::error::Error + 'static>(error: &OrchestratorError<E>) -> String {
    in_words(error)
}

fn cause_of(error: &(dyn std::error::Error + Send + Sync + 'static)) -> String {
    in_words(error)
}

/// What an SDK error says, classified.
pub(crate) struct SdkFailure {
    pub code: Option<String>,
    pub message: String,
}

impl SdkFailure {
    pub fn of<E>(error: &E) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let code = error.code().map(str::to_string);
        let message = match (error.code(), error.message()) {
            (Some(code), Some(message)) => format!("{code}: {message}"),
            (Some(code), None) => code.to_string(),
            _ => in_words(error),
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
