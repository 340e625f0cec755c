//! Writing a table (`restore`): CreateTable, the empty-table check, BatchWriteItem and
//! conditional PutItem. One request per call, classified; retrying is the caller's
//! (`crate::pipeline::retry`), so the SDK's own retries are off, as for Scans.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType as SdkKeyType,
    LocalSecondaryIndex, Projection, ProjectionType, ProvisionedThroughput, ReturnConsumedCapacity,
    ScalarAttributeType, WriteRequest,
};

use crate::error::ExportError;
use crate::io::aws::SdkFailure;
use crate::io::items::Item;
use crate::model::{KeyAttribute, KeyType, SchemaBilling, TableSchema};

/// How long a new table may take to become ACTIVE.
const CREATE_TIMEOUT: Duration = Duration::from_secs(300);
const CREATE_POLL: Duration = Duration::from_millis(250);

/// What a put must find in the table to go ahead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutCondition {
    /// No item with the key (`--if-absent`).
    Absent,
    /// No item with the key, or one whose `attribute` is less than the new item's
    /// (`--if-older ATTRIBUTE`). A new item without the attribute is put only where absent.
    Older(String),
}

/// One BatchWriteItem call's result.
#[derive(Debug)]
pub struct BatchWritten {
    /// What DynamoDB left unprocessed, to send again.
    pub unprocessed: Vec<WriteRequest>,
    /// Consumed write capacity, when the server reports it.
    pub wcu: Option<f64>,
}

/// One conditional PutItem's result.
#[derive(Debug)]
pub struct PutWritten {
    /// `false`: the condition did not hold, nothing was written.
    pub written: bool,
    pub wcu: Option<f64>,
}

/// The table a restore writes.
#[derive(Debug, Clone)]
pub struct TableWriter {
    client: aws_sdk_dynamodb::Client,
    name: String,
}

impl TableWriter {
    pub fn new(client: aws_sdk_dynamodb::Client, name: String) -> Self {
        Self { client, name }
    }

    /// CreateTable with `schema` (its indexes when `with_indexes`), then waits until the
    /// table is ACTIVE.
    pub async fn create(&self, schema: &TableSchema, with_indexes: bool) -> Result<(), ExportError> {
        let indexes: &[_] = if with_indexes { &schema.indexes } else { &[] };
        let mut definitions: Vec<&KeyAttribute> = Vec::new();
        for attribute in schema.key.iter().chain(indexes.iter().flat_map(|i| i.key.iter())) {
            if !definitions.iter().any(|d| d.name == attribute.name) {
                definitions.push(attribute);
            }
        }
        let definitions = definitions
            .into_iter()
            .map(|attribute| {
                let key_type = attribute.key_type.ok_or_else(|| self.refused("CreateTable", untyped(attribute)))?;
                AttributeDefinition::builder()
                    .attribute_name(&attribute.name)
                    .attribute_type(match key_type {
                        KeyType::S => ScalarAttributeType::S,
                        KeyType::N => ScalarAttributeType::N,
                        KeyType::B => ScalarAttributeType::B,
                    })
                    .build()
                    .map_err(|e| self.refused("CreateTable", e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let throughput = match schema.billing {
            SchemaBilling::OnDemand => None,
            SchemaBilling::Provisioned { read_capacity_units, write_capacity_units } => Some(
                ProvisionedThroughput::builder()
                    .read_capacity_units(read_capacity_units as i64)
                    .write_capacity_units(write_capacity_units as i64)
                    .build()
                    .map_err(|e| self.refused("CreateTable", e.to_string()))?,
            ),
        };
        let mut create = self
            .client
            .create_table()
            .table_name(&self.name)
            .set_attribute_definitions(Some(definitions))
            .set_key_schema(Some(self.key_schema(&schema.key)?))
            .billing_mode(if throughput.is_some() { BillingMode::Provisioned } else { BillingMode::PayPerRequest })
            .set_provisioned_throughput(throughput.clone());
        for index in indexes {
            let projection = Projection::builder()
                .projection_type(ProjectionType::from(index.projection.as_str()))
                .set_non_key_attributes(
                    (!index.non_key_attributes.is_empty()).then(|| index.non_key_attributes.clone()),
                )
                .build();
            if index.global {
                let gsi = GlobalSecondaryIndex::builder()
                    .index_name(&index.name)
                    .set_key_schema(Some(self.key_schema(&index.key)?))
                    .projection(projection)
                    .set_provisioned_throughput(throughput.clone())
                    .build()
                    .map_err(|e| self.refused("CreateTable", e.to_string()))?;
                create = create.global_secondary_indexes(gsi);
            } else {
                let lsi = LocalSecondaryIndex::builder()
                    .index_name(&index.name)
                    .set_key_schema(Some(self.key_schema(&index.key)?))
                    .projection(projection)
                    .build()
                    .map_err(|e| self.refused("CreateTable", e.to_string()))?;
                create = create.local_secondary_indexes(lsi);
            }
        }
        create.send().await.map_err(|e| self.failed("CreateTable", &e))?;
        self.wait_active().await
    }

    /// Waits until the table is ACTIVE (a new table is CREATING for a while, and takes no
    /// writes until it is).
    pub async fn wait_active(&self) -> Result<(), ExportError> {
        let deadline = tokio::time::Instant::now() + CREATE_TIMEOUT;
        loop {
            let described = self
                .client
                .describe_table()
                .table_name(&self.name)
                .send()
                .await
                .map_err(|e| self.failed("DescribeTable", &e))?;
            let active = described
                .table
                .and_then(|t| t.table_status)
                .is_some_and(|status| status == aws_sdk_dynamodb::types::TableStatus::Active);
            if active {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(self.refused("CreateTable", format!("the table was not ACTIVE within {CREATE_TIMEOUT:?}")));
            }
            tokio::time::sleep(CREATE_POLL).await;
        }
    }

    /// Whether the table holds any item (one Scan of at most one item).
    pub async fn holds_items(&self) -> Result<bool, ExportError> {
        let output =
            self.client.scan().table_name(&self.name).limit(1).send().await.map_err(|e| self.failed("Scan", &e))?;
        Ok(output.count > 0 || output.last_evaluated_key.is_some())
    }

    /// One BatchWriteItem of at most 25 requests.
    pub async fn batch_write(&self, requests: Vec<WriteRequest>) -> Result<BatchWritten, ExportError> {
        let output = self
            .client
            .batch_write_item()
            .request_items(&self.name, requests)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .customize()
            .config_override(aws_sdk_dynamodb::config::Builder::default().retry_config(RetryConfig::disabled()))
            .send()
            .await
            .map_err(|e| self.failed("BatchWriteItem", &e))?;
        let wcu = output.consumed_capacity.as_ref().map(|c| c.iter().filter_map(|c| c.capacity_units).sum());
        let unprocessed = output.unprocessed_items.and_then(|mut items| items.remove(&self.name)).unwrap_or_default();
        Ok(BatchWritten { unprocessed, wcu })
    }

    /// One PutItem under `condition`; `key` names the table's key attributes.
    pub async fn put_if(
        &self,
        item: Item,
        key: &[String],
        condition: &PutCondition,
    ) -> Result<PutWritten, ExportError> {
        let mut names = HashMap::from([("#k".to_string(), key.first().cloned().unwrap_or_default())]);
        let mut values = HashMap::new();
        let expression = match condition {
            PutCondition::Absent => "attribute_not_exists(#k)".to_string(),
            PutCondition::Older(attribute) => match item.get(attribute) {
                Some(value) => {
                    names.insert("#a".into(), attribute.clone());
                    values.insert(":a".to_string(), value.clone());
                    "attribute_not_exists(#k) OR #a < :a".to_string()
                }
                None => "attribute_not_exists(#k)".to_string(),
            },
        };
        let sent = self
            .client
            .put_item()
            .table_name(&self.name)
            .set_item(Some(item))
            .condition_expression(expression)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values((!values.is_empty()).then_some(values))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .customize()
            .config_override(aws_sdk_dynamodb::config::Builder::default().retry_config(RetryConfig::disabled()))
            .send()
            .await;
        match sent {
            Ok(output) => {
                Ok(PutWritten { written: true, wcu: output.consumed_capacity.and_then(|c| c.capacity_units) })
            }
            Err(error) if error.code() == Some("ConditionalCheckFailedException") => {
                Ok(PutWritten { written: false, wcu: None })
            }
            Err(error) => Err(self.failed("PutItem", &error)),
        }
    }

    fn key_schema(&self, key: &[KeyAttribute]) -> Result<Vec<KeySchemaElement>, ExportError> {
        key.iter()
            .zip([SdkKeyType::Hash, SdkKeyType::Range])
            .map(|(attribute, key_type)| {
                KeySchemaElement::builder()
                    .attribute_name(&attribute.name)
                    .key_type(key_type)
                    .build()
                    .map_err(|e| self.refused("CreateTable", e.to_string()))
            })
            .collect()
    }

    fn refused(&self, operation: &'static str, message: String) -> ExportError {
        ExportError::DynamoDb { operation, table: self.name.clone(), message }
    }

    fn failed<E>(&self, operation: &'static str, error: &SdkError<E, HttpResponse>) -> ExportError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        request_error(operation, &self.name, error)
    }
}

fn untyped(attribute: &KeyAttribute) -> String {
    format!("the type of key attribute {:?} is unknown", attribute.name)
}

/// A failed DynamoDB request, classified: throttling ([`ExportError::Throttled`]), transient
/// (5xx, timeouts, resets: [`ExportError::Transient`]), access and credentials, or else
/// [`ExportError::DynamoDb`].
pub(crate) fn request_error<E>(operation: &'static str, table: &str, error: &SdkError<E, HttpResponse>) -> ExportError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let code = error.code();
    let throttled =
        matches!(code, Some("ProvisionedThroughputExceededException" | "ThrottlingException" | "RequestLimitExceeded"));
    let transient =
        matches!(error, SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_))
            || matches!(code, Some("InternalServerError" | "ServiceUnavailable" | "InternalFailure"))
            || error.raw_response().is_some_and(|r| r.status().is_server_error());
    let failure = SdkFailure::of(error);
    let table = table.to_string();
    if throttled {
        return ExportError::Throttled { operation, table, message: failure.message };
    }
    if transient {
        return ExportError::Transient { operation, table, message: failure.message };
    }
    failure.into_export_error(format!("dynamodb:{operation} on {table}"), |message| ExportError::DynamoDb {
        operation,
        table: table.clone(),
        message,
    })
}
