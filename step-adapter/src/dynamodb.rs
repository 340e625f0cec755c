//! The `dynamodb` interface: DescribeTable and Scan through the host's own DynamoDB code
//! (`ddb-export-dynamodb`), so the pages and descriptions are read as `ddb-export` reads them.

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::describe_table::DescribeTableError;
use ddb_export_dynamodb::json::{key_from_json, key_to_json};
use ddb_export_dynamodb::scan::{ScanFailure, scan_page};
use ddb_export_model::{
    KeyAttribute as ModelKey, KeyType as ModelKeyType, ScanFilter, SchemaBilling, Shard, TableInfo,
};

use crate::Component;
use crate::bindings::exports::ddb_export::step::dynamodb::{
    Billing, Capacity, Error, Guest, Index, KeyAttribute, KeyType, ScanPage, ScanRequest, TableFacts,
};
use crate::clients::{self, block_on};

impl Guest for Component {
    fn describe_table(table: String) -> Result<TableFacts, Error> {
        let (client, region) = clients::dynamodb().map_err(Error::Refused)?;
        let output = block_on(client.describe_table().table_name(&table).send()).map_err(|error| {
            let message = format!("DynamoDB DescribeTable of {table}: {}", DisplayErrorContext(&error));
            let not_found = matches!(error.as_service_error(), Some(DescribeTableError::ResourceNotFoundException(_)));
            match not_found || !is_transient(&error) {
                true => Error::Refused(message),
                false => Error::Transient(message),
            }
        })?;
        let description = output.table.ok_or_else(|| {
            Error::Refused(format!("DynamoDB DescribeTable of {table}: the response has no table description"))
        })?;
        let info = ddb_export_dynamodb::describe::table_info(description, &table)
            .map_err(|message| Error::Refused(format!("DynamoDB DescribeTable of {table}: {message}")))?;
        Ok(table_facts(info, region))
    }

    fn scan(request: ScanRequest) -> Result<ScanPage, Error> {
        let (client, _) = clients::dynamodb().map_err(Error::Refused)?;
        let refused = |what: &str, why: String| Error::Refused(format!("Scan of {}: {what}: {why}", request.table));
        let start_key = match &request.exclusive_start_key {
            Some(text) => Some(
                serde_json::from_str(text)
                    .map_err(|e| e.to_string())
                    .and_then(|json| key_from_json(&json))
                    .map_err(|why| refused("ExclusiveStartKey", why))?,
            ),
            None => None,
        };
        let filter = ScanFilter::from_request_parts(
            request.filter_expression.as_deref(),
            request.projection_expression.as_deref(),
            &request.expression_attribute_names,
            &request.expression_attribute_values,
        )
        .map_err(|why| refused("ExpressionAttributeValues", why))?;
        let shard = Shard { id: request.segment, segment: request.segment, total_segments: request.total_segments };
        let page = block_on(scan_page(client, &request.table, &shard, start_key, request.limit, filter.as_ref()))
            .map_err(|failure| {
                let on = format!(
                    "DynamoDB Scan of {} (segment {} of {})",
                    request.table, shard.segment, shard.total_segments
                );
                match failure {
                    ScanFailure::Throttled(error) | ScanFailure::Transient(error) => {
                        Error::Transient(format!("{on}: {}", DisplayErrorContext(&error)))
                    }
                    ScanFailure::Refused(error) => Error::Refused(format!("{on}: {}", DisplayErrorContext(&error))),
                    ScanFailure::Unreadable(message) => Error::Transient(format!("{on}: {message}")),
                }
            })?;
        let last_evaluated_key = match &page.last_evaluated_key {
            Some(key) => Some(key_to_json(key).map_err(|why| refused("LastEvaluatedKey", why))?.to_string()),
            None => None,
        };
        Ok(ScanPage {
            items: page.items.json().to_vec(),
            count: u32::try_from(page.items.count).unwrap_or(u32::MAX),
            last_evaluated_key,
            consumed_capacity: page.consumed_rcu,
        })
    }
}

/// A timeout, a dropped connection, a 5xx or throttling (429, S3's 503 SlowDown): worth asking
/// again. The SDK has already retried it as its standard policy says.
pub fn is_transient<E>(error: &SdkError<E, HttpResponse>) -> bool {
    matches!(error, SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_))
        || error.raw_response().is_some_and(|r| r.status().is_server_error() || r.status().as_u16() == 429)
}

/// What DescribeTable said, as the interface carries it: typed keys and indexes when the
/// table's schema is known, names only otherwise.
fn table_facts(info: TableInfo, region: String) -> TableFacts {
    let key = |key: &[ModelKey]| -> Vec<KeyAttribute> {
        key.iter().map(|k| KeyAttribute { name: k.name.clone(), attribute_type: k.key_type.map(key_type) }).collect()
    };
    let (key_attributes, indexes, billing) = match &info.schema {
        Some(schema) => (
            key(&schema.key),
            schema
                .indexes
                .iter()
                .map(|index| Index {
                    name: index.name.clone(),
                    global: index.global,
                    key: key(&index.key),
                    projection: index.projection.clone(),
                    non_key_attributes: index.non_key_attributes.clone(),
                })
                .collect(),
            match schema.billing {
                SchemaBilling::OnDemand => Billing::OnDemand,
                SchemaBilling::Provisioned { read_capacity_units, write_capacity_units } => {
                    Billing::Provisioned(Capacity { read: read_capacity_units, write: write_capacity_units })
                }
            },
        ),
        None => (
            info.key_attributes.iter().map(|name| KeyAttribute { name: name.clone(), attribute_type: None }).collect(),
            Vec::new(),
            match info.billing {
                ddb_export_model::Billing::OnDemand => Billing::OnDemand,
                ddb_export_model::Billing::Provisioned(rcu) => Billing::Provisioned(Capacity { read: rcu, write: 0 }),
            },
        ),
    };
    TableFacts {
        table_name: info.table_name,
        table_arn: info.table_arn,
        table_id: info.table_id,
        item_count: info.item_count,
        size_bytes: info.table_size_bytes,
        billing,
        key: key_attributes,
        indexes,
        region,
    }
}

fn key_type(key_type: ModelKeyType) -> KeyType {
    match key_type {
        ModelKeyType::S => KeyType::S,
        ModelKeyType::N => KeyType::N,
        ModelKeyType::B => KeyType::B,
    }
}
