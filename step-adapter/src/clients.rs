//! The SDK clients, made once per instance from the component's environment, and the one way
//! their futures run (wstd's reactor: `aws-smithy-wasm`'s client is wstd's).

use std::sync::OnceLock;

use aws_credential_types::Credentials;
use aws_sdk_dynamodb::config::{BehaviorVersion, Region};
use aws_smithy_wasm::wasi::{WasiHttpClientBuilder, WasiSleep};

/// What the environment says about where and as whom to call.
struct Settings {
    region: Region,
    credentials: Credentials,
}

/// The settings, or which variable is missing (a failure no retry fixes).
fn settings() -> Result<Settings, String> {
    let var = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
    let required = |name: &str| {
        var(name).ok_or_else(|| format!("{name} is not set in the component's environment (the engine must pass it)"))
    };
    Ok(Settings {
        region: Region::new(var("AWS_REGION").or_else(|| var("AWS_DEFAULT_REGION")).unwrap_or("us-east-1".into())),
        credentials: Credentials::new(
            required("AWS_ACCESS_KEY_ID")?,
            required("AWS_SECRET_ACCESS_KEY")?,
            var("AWS_SESSION_TOKEN"),
            None,
            "the component's environment",
        ),
    })
}

/// `AWS_ENDPOINT_URL_<SERVICE>`, else `AWS_ENDPOINT_URL`, as the AWS SDKs read them.
fn endpoint(service: &str) -> Option<String> {
    let var = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
    var(&format!("AWS_ENDPOINT_URL_{service}")).or_else(|| var("AWS_ENDPOINT_URL"))
}

static DYNAMODB: OnceLock<aws_sdk_dynamodb::Client> = OnceLock::new();
static S3: OnceLock<aws_sdk_s3::Client> = OnceLock::new();

/// The DynamoDB client; the region it calls.
pub fn dynamodb() -> Result<(&'static aws_sdk_dynamodb::Client, String), String> {
    if let Some(client) = DYNAMODB.get() {
        return Ok((client, region_of(client.config().region())));
    }
    let settings = settings()?;
    let mut config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(settings.region)
        .credentials_provider(settings.credentials)
        .http_client(WasiHttpClientBuilder::new().build())
        .sleep_impl(WasiSleep);
    if let Some(url) = endpoint("DYNAMODB") {
        config = config.endpoint_url(url);
    }
    let client = DYNAMODB.get_or_init(|| aws_sdk_dynamodb::Client::from_conf(config.build()));
    Ok((client, region_of(client.config().region())))
}

fn region_of(region: Option<&Region>) -> String {
    region.map(|r| r.to_string()).unwrap_or_default()
}

/// The S3 client: path-style at a custom endpoint; checksums only where S3 requires them (every
/// write carries a Content-MD5 of its own).
pub fn s3() -> Result<&'static aws_sdk_s3::Client, String> {
    if let Some(client) = S3.get() {
        return Ok(client);
    }
    use aws_sdk_s3::config::{RequestChecksumCalculation, ResponseChecksumValidation};
    let settings = settings()?;
    let mut config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(settings.region)
        .credentials_provider(settings.credentials)
        .http_client(WasiHttpClientBuilder::new().build())
        .sleep_impl(WasiSleep)
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
    if let Some(url) = endpoint("S3") {
        config = config.endpoint_url(url).force_path_style(true);
    }
    Ok(S3.get_or_init(|| aws_sdk_s3::Client::from_conf(config.build())))
}

/// Runs an SDK future to its end (each import call is one).
pub fn block_on<T>(future: impl Future<Output = T>) -> T {
    wstd::runtime::block_on(future)
}
