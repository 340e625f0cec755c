//! Scan pages read through the SDK with the service's body kept: the items are read once, by
//! the encoder, never parsed into SDK types first. The request carries the export's filter; the
//! SDK's own retries are off (the caller has its policy); a failure says whether it is worth a
//! retry.

use std::collections::HashMap;

use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::scan::ScanError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnConsumedCapacity};
use ddb_export_model::{ScanFilter, Shard};

use crate::json::{Item, RawItems, attribute_from_json};

/// A failed Scan, by what a caller may do about it.
#[derive(Debug)]
pub enum ScanFailure {
    /// Throttled (provisioned throughput, request limits): wait, then ask again.
    Throttled(SdkError<ScanError>),
    /// A timeout, a dropped connection, a 5xx: ask again.
    Transient(SdkError<ScanError>),
    /// Refused as it stands (no such table, a bad expression, access denied).
    Refused(SdkError<ScanError>),
    /// A response that is not a Scan page; the words say why.
    Unreadable(String),
}

/// One Scan page of `shard`, after `start_key`: at most `limit` items read (a page stops at 1
/// MB anyway), filtered and projected as `filter` says.
pub async fn scan_page(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    shard: &Shard,
    start_key: Option<Item>,
    limit: Option<u32>,
    filter: Option<&ScanFilter>,
) -> Result<ScanPage, ScanFailure> {
    let kept = KeepBody::default();
    let output = client
        .scan()
        .table_name(table)
        .segment(shard.segment as i32)
        .total_segments(shard.total_segments as i32)
        .set_exclusive_start_key(start_key)
        .set_limit(limit.map(|n| n.min(i32::MAX as u32) as i32))
        .set_filter_expression(filter.and_then(|f| f.filter.clone()))
        .set_projection_expression(filter.and_then(|f| f.projection.clone()))
        .set_expression_attribute_names(
            filter.filter(|f| !f.names.is_empty()).map(|f| f.names.clone().into_iter().collect()),
        )
        .set_expression_attribute_values(filter.and_then(filter_values))
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
            let transient =
                matches!(error, SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_))
                    || matches!(error.as_service_error(), Some(ScanError::InternalServerError(_)))
                    || error.raw_response().is_some_and(|r| r.status().is_server_error());
            match (throttled, transient) {
                (true, _) => ScanFailure::Throttled(error),
                (_, true) => ScanFailure::Transient(error),
                _ => ScanFailure::Refused(error),
            }
        })?;
    drop(output);
    let body = kept.body.lock().unwrap_or_else(|p| p.into_inner()).take();
    let body = body.ok_or_else(|| ScanFailure::Unreadable("the Scan response's body was not kept".into()))?;
    scan_page_of(body.into()).map_err(ScanFailure::Unreadable)
}

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

/// A filter's values, as the SDK takes them (the caller has checked them).
fn filter_values(filter: &ScanFilter) -> Option<HashMap<String, AttributeValue>> {
    (!filter.values.is_empty())
        .then(|| filter.values.iter().filter_map(|(k, v)| Some((k.clone(), attribute_from_json(v).ok()?))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
