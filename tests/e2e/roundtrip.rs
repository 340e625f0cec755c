//! Property tests through the host's real packer: arbitrary items -> `AttributeValue` ->
//! `pack_page` -> the encoder (the guest's natively, many cases; the real component, fewer) ->
//! gunzip -> serde_json -> the item we started from.
//!
//! The generators (items within DynamoDB's limits, as an owned value type), the cases and the
//! independent checker of an encoder's output live in `tests/support/dynamodb_values.rs`, shared
//! with the guest's unit tests (`guest/src/roundtrip_tests.rs`, which run the same property from
//! the guest's test-only page writer). That file is included by `#[path]` because the guest's
//! side is a `#[cfg(test)]` module, which no other crate can import. What stays here is the
//! host's part: turning the owned values into `AttributeValue` items for `pack_page` and the
//! component, and driving the two encoders.

use std::collections::HashMap;
use std::time::Instant;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use ddb_export::dynamodb::pack_page;
use ddb_export::model::{EncoderEvent, EncoderOptions, Snapshot};
use ddb_export::runtime::{Session, check_data_file_key};
use ddb_export::{CacheDir, ComponentRuntime, ComponentSource, GuestLimits};
use ddb_export_guest::encoder::ShardEncoder;
use ddb_export_guest::wit as guest;
use proptest::test_runner::TestCaseError;

#[path = "../support/dynamodb_values.rs"]
pub(crate) mod dynamodb_values;

use dynamodb_values::{Av, Case, Event, Item, case, check_output, pages, runner, shrunk};

// ---------------------------------------------------------------------------------------------
// The host's item type

fn attribute_value(value: &Av) -> AttributeValue {
    match value {
        Av::S(s) => AttributeValue::S(s.clone()),
        Av::N(n) => AttributeValue::N(n.clone()),
        Av::B(b) => AttributeValue::B(Blob::new(b.clone())),
        Av::Bool(b) => AttributeValue::Bool(*b),
        Av::Null => AttributeValue::Null(true),
        Av::Ss(set) => AttributeValue::Ss(set.clone()),
        Av::Ns(set) => AttributeValue::Ns(set.clone()),
        Av::Bs(set) => AttributeValue::Bs(set.iter().cloned().map(Blob::new).collect()),
        Av::L(list) => AttributeValue::L(list.iter().map(attribute_value).collect()),
        Av::M(map) => AttributeValue::M(attribute_item(map)),
    }
}

/// A `HashMap`, as the SDK returns it: its entries come in no particular order. (Also used by
/// `ion`, which writes generated items to a real table.)
pub(crate) fn attribute_item(item: &Item) -> HashMap<String, AttributeValue> {
    item.iter().map(|(name, value)| (name.clone(), attribute_value(value))).collect()
}

fn attribute_page(page: &[Item]) -> Vec<HashMap<String, AttributeValue>> {
    page.iter().map(attribute_item).collect()
}

impl From<guest::Output> for Event {
    fn from(output: guest::Output) -> Self {
        match output {
            guest::Output::FileStarted(key) => Event::Started(key),
            guest::Output::Bytes(bytes) => Event::Bytes(bytes),
            guest::Output::FileFinished(f) => {
                Event::Finished { key: f.key, item_count: f.item_count, md5: f.md5, size_bytes: f.size_bytes }
            }
        }
    }
}

impl From<EncoderEvent> for Event {
    fn from(event: EncoderEvent) -> Self {
        match event {
            EncoderEvent::FileStarted(key) => Event::Started(key),
            EncoderEvent::Bytes(bytes) => Event::Bytes(bytes),
            EncoderEvent::FileFinished(f) => {
                Event::Finished { key: f.key, item_count: f.item_count, md5: f.md5, size_bytes: f.size_bytes }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// (a) the host's packer and the guest's encoder, natively

fn guest_snapshot() -> guest::ExportSnapshot {
    let table = guest::TableDescription {
        table_name: "orders".into(),
        table_arn: "arn:aws:dynamodb:eu-west-1:123456789012:table/orders".into(),
        table_id: None,
        item_count: 0,
        table_size_bytes: 0,
        billing: guest::Billing::OnDemand,
    };
    let request = guest::ExportRequest {
        s3_bucket: "bucket".into(),
        s3_prefix: Some("p".into()),
        s3_bucket_owner: None,
        s3_sse_algorithm: guest::SseAlgorithm::Aes256,
        s3_sse_kms_key_id: None,
        export_format: guest::ExportFormat::DynamodbJson,
        client_token: "token".into(),
        start_time_ms: 1_700_000_000_000,
        region: "eu-west-1".into(),
        incremental: None,
        custom_format: None,
    };
    ddb_export_guest::snapshot::create(table, request).expect("a valid request")
}

#[test]
fn roundtrip_packed_pages_through_the_native_encoder() {
    let snapshot = guest_snapshot();
    let started = Instant::now();
    shrunk(runner(512).run(&case(), |case| {
        let options = guest::EncoderOptions {
            shard_id: 2,
            target_file_bytes: case.target_file_bytes,
            compression_level: case.compression_level,
            first_sequence: 0,
        };
        let mut encoder = ShardEncoder::open(&snapshot, options).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
        let mut packed = Vec::new();
        let mut events: Vec<Event> = Vec::new();
        for page in pages(&case) {
            pack_page(&attribute_page(page), &mut packed).map_err(|e| TestCaseError::fail(format!("pack: {e}")))?;
            let output = encoder.encode_page(&packed).map_err(|e| TestCaseError::fail(format!("encode: {e:?}")))?;
            events.extend(output.into_iter().map(Event::from));
        }
        events
            .extend(encoder.finish().map_err(|e| TestCaseError::fail(format!("{e:?}")))?.into_iter().map(Event::from));
        let prefix = snapshot.keys.data_prefix.clone();
        check_output(&case, events, |key| {
            if key.starts_with(&prefix) && key.ends_with(".json.gz") { Ok(()) } else { Err(format!("key {key}")) }
        })
    }));
    eprintln!("512 cases through the native encoder in {:?}", started.elapsed());
}

// ---------------------------------------------------------------------------------------------
// (b) the real component under the host's limits

use crate::component::{request, table};

fn through_component(session: Session, snapshot: &Snapshot, case: &Case) -> Result<Vec<Event>, String> {
    let options = EncoderOptions {
        shard_id: 2,
        target_file_bytes: case.target_file_bytes,
        compression_level: case.compression_level,
        first_sequence: 0,
    };
    let mut encoder = session.open_encoder(snapshot, &options).map_err(|e| e.to_string())?;
    let mut events = Vec::new();
    for page in pages(case) {
        events.extend(
            encoder
                .encode_json(&ddb_export::dynamodb::items_json(&attribute_page(page)))
                .map_err(|e| e.to_string())?
                .into_iter()
                .map(Event::from),
        );
    }
    events.extend(encoder.finish().map_err(|e| e.to_string())?.into_iter().map(Event::from));
    Ok(events)
}

#[test]
fn roundtrip_packed_pages_through_the_real_component() {
    let runtime = ComponentRuntime::load(&ComponentSource::Default, GuestLimits::default(), &CacheDir::Disabled)
        .expect("the default component loads");
    let started = Instant::now();
    shrunk(runner(64).run(&case(), |case| {
        let mut session = runtime.session().map_err(|e| TestCaseError::fail(e.to_string()))?;
        let snapshot = session.snapshot(&table(), &request()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let events = through_component(session, &snapshot, &case).map_err(TestCaseError::fail)?;
        check_output(&case, events, |key| check_data_file_key(&snapshot, key))
    }));
    eprintln!("64 cases through the component in {:?}", started.elapsed());
}
