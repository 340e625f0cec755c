//! Reading the table: DescribeTable and parallel Scan pages.

use std::collections::HashMap;

use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::describe_table::DescribeTableError;
use aws_sdk_dynamodb::operation::scan::ScanError;
use aws_sdk_dynamodb::types::{
    AttributeValue, BillingMode, KeySchemaElement, Projection, ReturnConsumedCapacity, TableDescription,
};

use crate::error::ExportError;
use crate::io::aws::SdkFailure;
use crate::model::{
    Billing, Field, IndexSchema, KeyAttribute, KeyType, ScanFilter, SchemaBilling, Shard, StreamInfo, TableInfo,
    TableSchema,
};

use super::items::{Item, RawItems, attribute_from_json};

/// One Scan page of one segment, its items as the service sent them.
#[derive(Debug, Default)]
pub struct ScanPage {
    pub items: RawItems,
    /// Where the next page starts; `None` when the segment is done.
    pub last_evaluated_key: Option<Item>,
    /// Read capacity units the page consumed, when the server reports it.
    pub consumed_rcu: f64,
    /// Items the page read (`ScannedCount`): more than it holds when a filter dropped some.
    /// `Limit` counts these, and they are what the read capacity pays for.
    pub scanned: u64,
}

/// The parts of a Scan response the host reads itself; `Items` is left as it came.
#[derive(serde::Deserialize)]
struct ScanEnvelope<'a> {
    /// Each item's text, left as it came: where the array is, and how many it holds.
    #[serde(rename = "Items", borrow, default)]
    items: Vec<&'a serde_json::value::RawValue>,
    #[serde(rename = "Count", default)]
    count: u64,
    #[serde(rename = "ScannedCount", default)]
    scanned_count: u64,
    #[serde(rename = "LastEvaluatedKey", default)]
    last_evaluated_key: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(rename = "ConsumedCapacity", default)]
    consumed_capacity: Option<ConsumedCapacity>,
}

#[derive(serde::Deserialize)]
struct ConsumedCapacity {
    #[serde(rename = "CapacityUnits", default)]
    capacity_units: Option<f64>,
}

/// Reads a Scan response's envelope; `Err` says what is wrong with it.
fn scan_page_of(body: bytes::Bytes) -> Result<ScanPage, String> {
    let envelope: ScanEnvelope<'_> =
        serde_json::from_slice(&body).map_err(|e| format!("the Scan response is not DynamoDB's JSON: {e}"))?;
    let count = envelope.items.len() as u64;
    // The array, brackets included, from its first item to its last (the items are slices of
    // the body; only whitespace can lie between them and the brackets).
    let range = match (envelope.items.first(), envelope.items.last()) {
        (Some(first), Some(last)) => {
            let offset = |text: &str| text.as_ptr() as usize - body.as_ptr() as usize;
            let (start, end) = (offset(first.get()), offset(last.get()) + last.get().len());
            let open = body[..start].iter().rposition(|b| !b.is_ascii_whitespace()).filter(|&at| body[at] == b'[');
            let close = body[end..]
                .iter()
                .position(|b| !b.is_ascii_whitespace())
                .map(|at| end + at)
                .filter(|&at| body[at] == b']');
            match (open, close) {
                (Some(open), Some(close)) => open..close + 1,
                _ => return Err("the Scan response's Items is not an array of items".into()),
            }
        }
        _ => 0..0,
    };
    if count != envelope.count {
        return Err(format!("the Scan response says Count {} but its Items holds {count}", envelope.count));
    }
    let last_evaluated_key = match envelope.last_evaluated_key.filter(|key| !key.is_empty()) {
        Some(key) => Some(
            key.iter()
                .map(|(name, value)| Ok((name.clone(), attribute_from_json(value)?)))
                .collect::<Result<Item, String>>()
                .map_err(|e| format!("the Scan response's LastEvaluatedKey: {e}"))?,
        ),
        None => None,
    };
    Ok(ScanPage {
        consumed_rcu: envelope.consumed_capacity.and_then(|c| c.capacity_units).unwrap_or(0.0),
        last_evaluated_key,
        scanned: envelope.scanned_count.max(count),
        items: RawItems { body: body.clone(), range, count },
    })
}

/// Keeps a Scan response's body for the host, and gives the SDK an empty object to parse
/// instead: the items are read once, by the encoder, not into SDK types first (an interceptor
/// of one Scan call; error responses are left to the SDK).
#[derive(Debug, Clone, Default)]
struct KeepBody {
    body: std::sync::Arc<std::sync::Mutex<Option<Vec<u8>>>>,
}

impl aws_smithy_runtime_api::client::interceptors::Intercept for KeepBody {
    fn name(&self) -> &'static str {
        "ddb-export keep the Scan body"
    }

    fn modify_before_deserialization(
        &self,
        context: &mut aws_smithy_runtime_api::client::interceptors::context::BeforeDeserializationInterceptorContextMut<
            '_,
        >,
        _runtime_components: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
        _cfg: &mut aws_smithy_types::config_bag::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        let response = context.response_mut();
        if response.status().as_u16() != 200 {
            return Ok(());
        }
        let length = response.headers().get("content-length").and_then(|l| l.parse::<usize>().ok()).unwrap_or(0);
        let inner = std::mem::replace(response.body_mut(), aws_smithy_types::body::SdkBody::taken());
        *self.body.lock().unwrap_or_else(|p| p.into_inner()) = None;
        let kept = KeptBody { inner, buffer: Some(Vec::with_capacity(length.min(8 << 20))), slot: self.body.clone() };
        *response.body_mut() = aws_smithy_types::body::SdkBody::from_body_1_x(kept);
        Ok(())
    }
}

/// The body the SDK reads (within its time limits): the service's bytes, kept in `slot`, then
/// `{}` for the SDK's own parser.
struct KeptBody {
    inner: aws_smithy_types::body::SdkBody,
    /// The bytes so far; `None` once handed over.
    buffer: Option<Vec<u8>>,
    slot: std::sync::Arc<std::sync::Mutex<Option<Vec<u8>>>>,
}

impl http_body::Body for KeptBody {
    type Data = bytes::Bytes;
    type Error = aws_smithy_types::body::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
        use std::task::Poll;
        loop {
            if self.buffer.is_none() {
                return Poll::Ready(None);
            }
            match std::pin::Pin::new(&mut self.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(Some(Ok(frame))) => {
                    if let (Ok(data), Some(buffer)) = (frame.into_data(), self.buffer.as_mut()) {
                        buffer.extend_from_slice(&data);
                    }
                }
                Poll::Ready(None) => {
                    let body = self.buffer.take();
                    *self.slot.lock().unwrap_or_else(|p| p.into_inner()) = body;
                    return Poll::Ready(Some(Ok(http_body::Frame::data(bytes::Bytes::from_static(b"{}")))));
                }
            }
        }
    }
}

/// A table to export, by name or ARN.
#[derive(Clone, Debug)]
pub struct Table {
    client: aws_sdk_dynamodb::Client,
    region: String,
    /// What the user named: a table name or a table ARN (DynamoDB accepts both).
    name_or_arn: String,
    /// Passed to every Scan.
    filter: Option<std::sync::Arc<ScanFilter>>,
}

/// Checks a filter's names and values (each value must be an attribute the SDK can send),
/// naming the flag at fault.
pub fn check_filter(filter: &ScanFilter) -> Result<(), (Field, String)> {
    crate::model::settings::check_filter(filter, |value| attribute_from_json(value).map(drop))
}

/// A checked filter's values, as the SDK takes them.
fn filter_values(filter: &ScanFilter) -> Option<HashMap<String, AttributeValue>> {
    (!filter.values.is_empty())
        .then(|| filter.values.iter().filter_map(|(k, v)| Some((k.clone(), attribute_from_json(v).ok()?))).collect())
}

impl Table {
    pub fn new(client: aws_sdk_dynamodb::Client, region: String, name_or_arn: String) -> Self {
        Self { client, region, name_or_arn, filter: None }
    }

    /// The same table, every Scan of it filtered and projected as `filter` says.
    pub fn with_filter(self, filter: Option<ScanFilter>) -> Self {
        Self { filter: filter.map(std::sync::Arc::new), ..self }
    }

    /// What the user named.
    pub fn name(&self) -> &str {
        &self.name_or_arn
    }

    /// DescribeTable. A missing table is [`ExportError::TableNotFound`].
    pub async fn describe(&self) -> Result<TableInfo, ExportError> {
        let output = self.client.describe_table().table_name(&self.name_or_arn).send().await.map_err(|error| {
            if matches!(error.as_service_error(), Some(DescribeTableError::ResourceNotFoundException(_))) {
                return ExportError::TableNotFound { table: self.name_or_arn.clone(), region: self.region.clone() };
            }
            let failure = SdkFailure::of(&error);
            failure.into_export_error(format!("dynamodb:DescribeTable on {}", self.name_or_arn), |message| {
                ExportError::DynamoDb { operation: "DescribeTable", table: self.name_or_arn.clone(), message }
            })
        })?;
        let table = output.table.ok_or_else(|| ExportError::DynamoDb {
            operation: "DescribeTable",
            table: self.name_or_arn.clone(),
            message: "the response has no table description".into(),
        })?;
        let on_demand = table
            .billing_mode_summary
            .as_ref()
            .and_then(|s| s.billing_mode.as_ref())
            .is_some_and(|mode| *mode == BillingMode::PayPerRequest);
        let provisioned_rcu = table.provisioned_throughput.as_ref().and_then(|t| t.read_capacity_units).unwrap_or(0);
        let billing = if on_demand || provisioned_rcu <= 0 {
            Billing::OnDemand
        } else {
            Billing::Provisioned(provisioned_rcu as u64)
        };
        let schema = schema_of(&table);
        let table_name = table.table_name.unwrap_or_else(|| self.name_or_arn.clone());
        let mut schema_keys = table.key_schema.unwrap_or_default();
        // HASH first, then RANGE.
        schema_keys.sort_by_key(|k| k.key_type != aws_sdk_dynamodb::types::KeyType::Hash);
        let key_attributes: Vec<String> = schema_keys.into_iter().map(|k| k.attribute_name).collect();
        if key_attributes.is_empty() {
            return Err(ExportError::DynamoDb {
                operation: "DescribeTable",
                table: self.name_or_arn.clone(),
                message: "the table description has no key schema".into(),
            });
        }
        let enabled = table.stream_specification.as_ref().is_some_and(|s| s.stream_enabled);
        let stream = match (table.latest_stream_arn, enabled) {
            (Some(arn), true) => Some(StreamInfo {
                arn,
                view_type: table
                    .stream_specification
                    .and_then(|s| s.stream_view_type)
                    .map(|view| view.as_str().to_string()),
            }),
            _ => None,
        };
        Ok(TableInfo {
            stream,
            schema,
            table_arn: table.table_arn.unwrap_or_default(),
            table_id: table.table_id,
            item_count: table.item_count.unwrap_or(0).max(0) as u64,
            table_size_bytes: table.table_size_bytes.unwrap_or(0).max(0) as u64,
            billing,
            table_name,
            key_attributes,
        })
    }

    /// Asks the server to judge the filter and projection (one Scan of at most one item, of
    /// the first segment of one): DynamoDB checks an expression only when it runs it, and a bad
    /// one must be refused before anything is written, not at the first page of the export.
    pub async fn check_filter(&self) -> Result<(), ExportError> {
        if self.filter.is_none() {
            return Ok(());
        }
        let whole = Shard { id: 0, segment: 0, total_segments: 1 };
        match self.scan_page(&whole, None, Some(1)).await {
            Err(ExportError::DynamoDb { message, .. }) if message.starts_with("ValidationException") => {
                Err(ExportError::InvalidArgument {
                    field: Field::ScanFilter,
                    message: format!("DynamoDB refused them: {message}"),
                })
            }
            other => other.map(drop),
        }
    }

    /// One Scan page of `shard`, starting after `start_key`.
    /// With `limit`, the page reads at most that many items (a page stops at 1 MB anyway); with a
    /// filter it may hold fewer.
    pub async fn scan_page(
        &self,
        shard: &Shard,
        start_key: Option<Item>,
        limit: Option<u32>,
    ) -> Result<ScanPage, ExportError> {
        let kept = KeepBody::default();
        let output = self
            .client
            .scan()
            .table_name(&self.name_or_arn)
            .segment(shard.segment as i32)
            .total_segments(shard.total_segments as i32)
            .set_exclusive_start_key(start_key)
            .set_limit(limit.map(|n| n.min(i32::MAX as u32) as i32))
            .set_filter_expression(self.filter.as_ref().and_then(|f| f.filter.clone()))
            .set_projection_expression(self.filter.as_ref().and_then(|f| f.projection.clone()))
            .set_expression_attribute_names(
                self.filter.as_ref().filter(|f| !f.names.is_empty()).map(|f| f.names.clone().into_iter().collect()),
            )
            .set_expression_attribute_values(self.filter.as_deref().and_then(filter_values))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .customize()
            .config_override(aws_sdk_dynamodb::config::Builder::default().retry_config(RetryConfig::disabled()))
            .interceptor(kept.clone())
            .send()
            .await
            .map_err(|error| {
                let throttled = matches!(
                    error.as_service_error(),
                    Some(
                        ScanError::ProvisionedThroughputExceededException(_)
                            | ScanError::ThrottlingException(_)
                            | ScanError::RequestLimitExceeded(_)
                    )
                );
                let transient = matches!(
                    error,
                    SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_)
                ) || matches!(error.as_service_error(), Some(ScanError::InternalServerError(_)))
                    || error.raw_response().is_some_and(|r| r.status().is_server_error());
                let failure = SdkFailure::of(&error);
                let table = self.name_or_arn.clone();
                if throttled {
                    return ExportError::Throttled { operation: "Scan", table, message: failure.message };
                }
                if transient {
                    return ExportError::Transient { operation: "Scan", table, message: failure.message };
                }
                failure.into_export_error(format!("dynamodb:Scan on {}", self.name_or_arn), |message| {
                    ExportError::DynamoDb { operation: "Scan", table: self.name_or_arn.clone(), message }
                })
            })?;
        drop(output);
        let body = kept.body.lock().unwrap_or_else(|p| p.into_inner()).take();
        let body = body.ok_or_else(|| ExportError::DynamoDb {
            operation: "Scan",
            table: self.name_or_arn.clone(),
            message: "the Scan response's body was not kept (internal)".into(),
        })?;
        scan_page_of(body.into()).map_err(|message| ExportError::UnreadableResponse {
            service: "DynamoDB Scan",
            message: format!("table {}: {message}", self.name_or_arn),
        })
    }
}

/// A table's key with types, billing and indexes, from its description; `None` when a key
/// attribute's type is not in `AttributeDefinitions` (a server's odd answer).
fn schema_of(table: &TableDescription) -> Option<TableSchema> {
    let definitions = table.attribute_definitions();
    let typed = |elements: &[KeySchemaElement]| -> Option<Vec<KeyAttribute>> {
        let mut elements = elements.to_vec();
        elements.sort_by_key(|k| k.key_type != aws_sdk_dynamodb::types::KeyType::Hash);
        elements
            .iter()
            .map(|element| {
                let definition = definitions.iter().find(|d| d.attribute_name == element.attribute_name)?;
                let key_type = KeyType::from_aws_name(definition.attribute_type.as_str())?;
                Some(KeyAttribute { name: element.attribute_name.clone(), key_type: Some(key_type) })
            })
            .collect()
    };
    let key = typed(table.key_schema())?;
    let on_demand = table
        .billing_mode_summary
        .as_ref()
        .and_then(|s| s.billing_mode.as_ref())
        .is_some_and(|mode| *mode == BillingMode::PayPerRequest);
    let throughput = table.provisioned_throughput.as_ref();
    let capacity = |units: Option<i64>| units.unwrap_or(0).max(0) as u64;
    let (read, write) = (
        capacity(throughput.and_then(|t| t.read_capacity_units)),
        capacity(throughput.and_then(|t| t.write_capacity_units)),
    );
    let billing = if on_demand || read == 0 || write == 0 {
        SchemaBilling::OnDemand
    } else {
        SchemaBilling::Provisioned { read_capacity_units: read, write_capacity_units: write }
    };
    let projection = |p: Option<&Projection>| {
        (
            p.and_then(|p| p.projection_type.as_ref()).map_or("ALL".to_string(), |t| t.as_str().to_string()),
            p.map(|p| p.non_key_attributes().to_vec()).unwrap_or_default(),
        )
    };
    let mut indexes = Vec::new();
    for index in table.global_secondary_indexes() {
        let (projection, non_key_attributes) = projection(index.projection.as_ref());
        indexes.push(IndexSchema {
            name: index.index_name.clone().unwrap_or_default(),
            global: true,
            key: typed(index.key_schema())?,
            projection,
            non_key_attributes,
        });
    }
    for index in table.local_secondary_indexes() {
        let (projection, non_key_attributes) = projection(index.projection.as_ref());
        indexes.push(IndexSchema {
            name: index.index_name.clone().unwrap_or_default(),
            global: false,
            key: typed(index.key_schema())?,
            projection,
            non_key_attributes,
        });
    }
    Some(TableSchema { key, billing, indexes })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_scan_response_is_read_without_parsing_its_items() {
        let body = br#"{"Count":2,"Items":[ {"pk":{"S":"a"}} , {"pk":{"S":"b"}} ],"ScannedCount":5,
            "LastEvaluatedKey":{"pk":{"S":"b"}},"ConsumedCapacity":{"CapacityUnits":1.5}}"#;
        let page = scan_page_of(bytes::Bytes::from_static(body)).unwrap();
        assert_eq!(page.items.json(), br#"[ {"pk":{"S":"a"}} , {"pk":{"S":"b"}} ]"#);
        assert_eq!((page.items.count, page.scanned, page.consumed_rcu), (2, 5, 1.5));
        assert_eq!(page.last_evaluated_key, Some(Item::from([("pk".to_string(), AttributeValue::S("b".into()))])));
        let empty = scan_page_of(bytes::Bytes::from_static(br#"{"Count":0,"Items":[],"ScannedCount":3}"#)).unwrap();
        assert_eq!((empty.items.json(), empty.items.count, empty.scanned), (&b"[]"[..], 0, 3));
        for bad in
            [&br#"{"Count":3,"Items":[{"pk":{"S":"a"}}]}"#[..], b"<html>", br#"{"LastEvaluatedKey":{"pk":{"Q":"1"}}}"#]
        {
            assert!(scan_page_of(bytes::Bytes::from_static(bad)).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn a_filter_s_mistakes_name_their_field() {
        let filter = |names: &[(&str, &str)], values: &[(&str, serde_json::Value)]| ScanFilter {
            filter: Some("#s = :v".into()),
            projection: None,
            names: names.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            values: values.iter().map(|(k, v)| (k.to_string(), v.clone())).collect(),
        };
        assert!(check_filter(&filter(&[("#s", "status")], &[(":v", json!({"S": "x"}))])).is_ok());
        let field = |f: ScanFilter| check_filter(&f).map_err(|(field, _)| field).err();
        assert_eq!(field(filter(&[("s", "status")], &[])), Some(Field::ExpressionNames));
        assert_eq!(field(filter(&[], &[("v", json!({"S": "x"}))])), Some(Field::ExpressionValues));
        assert_eq!(field(filter(&[], &[(":v", json!({"Q": "x"}))])), Some(Field::ExpressionValues));
        assert_eq!(field(ScanFilter { filter: Some(String::new()), ..ScanFilter::default() }), Some(Field::Filter));
        let shown = filter(&[("#s", "status")], &[(":v", json!({"S": "x"}))]).to_string();
        assert_eq!(shown, r#"filter #s = :v, names #s=status, values :v={"S":"x"}"#);
        assert_eq!(ScanFilter::default().to_string(), "none");
    }
}
