//! AWS clients from the standard configuration chain, and SDK errors in plain words.

use aws_config::{BehaviorVersion, Region};
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata};

use crate::error::ExportError;

/// Attempts per request (the SDK's standard retry mode: throttling and 5xx are retried with
/// jittered exponential backoff).
const MAX_ATTEMPTS: u32 = 8;
/// First retry delay (then doubling, jittered, up to 20 s).
const INITIAL_BACKOFF: std::time::Duration = std::time::Duration::from_millis(200);
/// Region used when none is configured but an endpoint is (local stand-ins don't care).
const FALLBACK_REGION: &str = "us-east-1";

/// The DynamoDB and S3 clients of one run.
#[derive(Clone, Debug)]
pub struct AwsClients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub s3: aws_sdk_s3::Client,
    pub region: String,
}

impl AwsClients {
    /// Loads profiles, credentials, `AWS_REGION` and the `AWS_ENDPOINT_URL*` variables the
    /// way every AWS tool does. With a custom S3 endpoint, S3 uses path-style addressing so any
    /// S3-compatible server works.
    pub async fn from_env() -> Result<Self, ExportError> {
        let retry = aws_config::retry::RetryConfig::standard()
            .with_max_attempts(MAX_ATTEMPTS)
            .with_initial_backoff(INITIAL_BACKOFF);
        let mut config = aws_config::defaults(BehaviorVersion::latest()).retry_config(retry).load().await;
        let custom_s3_endpoint = config.endpoint_url().is_some() || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some();
        let custom_endpoint = custom_s3_endpoint || std::env::var_os("AWS_ENDPOINT_URL_DYNAMODB").is_some();
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
        // Bodies carry Content-MD5, which S3 checks. The SDK's default extra CRC32 on
        // UploadPart would have to be repeated in CompleteMultipartUpload, which some
        // S3-compatible servers (and SDK versions) get wrong.
        let s3_config = aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(custom_s3_endpoint)
            .request_checksum_calculation(aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired)
            .build();
        let s3 = aws_sdk_s3::Client::from_conf(s3_config);
        Ok(Self { dynamodb, s3, region })
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
