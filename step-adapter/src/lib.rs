//! ddb-export's step adapter: the `dynamodb` and `s3` interfaces of `ddb-export:step`
//! (`wit/step`, world `adapter`) as a component, carried out over `wasi:http` by the AWS SDK for
//! Rust (`aws-smithy-wasm`'s client, SigV4 signing inside). Composed with the step component, it
//! gives one component that needs nothing but WASI 0.2 and `wasi:http`: what an engine such as
//! Obelisk runs.
//!
//! Credentials, region and endpoints come from the component's environment, as the AWS SDKs
//! read them: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`,
//! `AWS_ENDPOINT_URL` (or `AWS_ENDPOINT_URL_DYNAMODB` / `AWS_ENDPOINT_URL_S3`).
//!
//! DynamoDB is read by the host's own code (`ddb-export-dynamodb`: Scan pages with the service's
//! body kept, DescribeTable mapped once); this crate adds the S3 calls and the classification of
//! failures into the WIT's `transient` and `refused`.

#[cfg(target_arch = "wasm32")]
mod bindings;
#[cfg(target_arch = "wasm32")]
mod clients;
#[cfg(target_arch = "wasm32")]
mod dynamodb;
#[cfg(target_arch = "wasm32")]
mod s3;

#[cfg(target_arch = "wasm32")]
struct Component;

#[cfg(target_arch = "wasm32")]
bindings::export!(Component with_types_in bindings);
