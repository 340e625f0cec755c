//! DynamoDB through the AWS SDK, as ddb-export reads it, with no async runtime or HTTP client
//! of its own: the host runs it on tokio with its HTTPS client, the step adapter component
//! (`step-adapter/`) on `wasi:http`. One mapping of the SDK's answers, whoever calls.
//!
//! - [`describe`]: DescribeTable's table description as the model's `TableInfo`;
//! - [`scan`]: Scan pages with the service's body kept (an interceptor), their failures sorted
//!   by what a caller may do about them;
//! - [`json`]: AttributeValues as DynamoDB JSON, both ways, and the raw `Items` array.

pub mod describe;
pub mod json;
pub mod scan;
