//! The real component under the host's limits, through the library API (no servers).

use std::io::Read as _;
use std::time::Duration;

use ddb_export::model::{
    Billing, EncoderEvent, EncoderOptions, ExportFormat, SnapshotRequest, SseAlgorithm, TableInfo,
};
use ddb_export::runtime::Session;
use ddb_export::{CacheDir, ComponentError, ComponentRuntime, ComponentSource, GuestLimits};

use crate::items;

/// A table description for driving the component without a server (also used by `roundtrip`).
pub(crate) fn table() -> TableInfo {
    TableInfo {
        stream: None,
        schema: None,
        table_name: "orders".into(),
        table_arn: "arn:aws:dynamodb:eu-west-1:123456789012:table/orders".into(),
        table_id: None,
        item_count: 0,
        table_size_bytes: 0,
        billing: Billing::OnDemand,
        key_attributes: vec!["pk".into()],
    }
}

pub(crate) fn request() -> SnapshotRequest {
    SnapshotRequest {
        s3_bucket: "bucket".into(),
        s3_prefix: Some("p".into()),
        s3_bucket_owner: None,
        s3_sse_algorithm: SseAlgorithm::Aes256,
        s3_sse_kms_key_id: None,
        export_format: ExportFormat::DynamodbJson,
        client_token: "token".into(),
        start_time_ms: 1_700_000_000_000,
        region: "eu-west-1".into(),
        incremental: None,
        custom_format: None,
    }
}

fn session(limits: GuestLimits) -> Result<Session, ComponentError> {
    ComponentRuntime::load(&ComponentSource::Default, limits, &CacheDir::Disabled)?.session()
}

#[test]
fn the_default_component_runs_every_step_under_the_default_limits() {
    let mut session = session(GuestLimits::default()).expect("the default component loads");
    let snapshot = session.snapshot(&table(), &request()).expect("snapshot");
    assert_eq!(snapshot.export_arn, format!("{}/export/{}", table().table_arn, snapshot.export_id));
    let plan = session.shard_plan(&table(), Some(3), 8).expect("plan");
    assert_eq!(plan.shards.len(), 3);

    let mut encoder = session
        .open_encoder(
            &snapshot,
            &EncoderOptions { shard_id: 0, target_file_bytes: 0, compression_level: 6, first_sequence: 0 },
        )
        .expect("encoder");
    let mut events =
        encoder.encode_json(&ddb_export::dynamodb::items_json(&items::edge_cases())).expect("encode the edge cases");
    events.extend(encoder.finish().expect("finish"));
    let bytes: Vec<u8> = events
        .iter()
        .filter_map(|e| match e {
            EncoderEvent::Bytes(b) => Some(b.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    let mut text = String::new();
    flate2::read::GzDecoder::new(&bytes[..]).read_to_string(&mut text).expect("gzip");
    assert_eq!(text.lines().count(), items::edge_cases().len());
    assert!(matches!(events.first(), Some(EncoderEvent::FileStarted(_))));
    assert!(
        matches!(events.last(), Some(EncoderEvent::FileFinished(f)) if f.item_count == items::edge_cases().len() as u64)
    );
}

#[test]
fn a_memory_cap_too_small_stops_the_component_with_an_error_naming_it() {
    let limits = GuestLimits { memory_bytes: 64 * 1024, call_timeout: Duration::from_secs(10) };
    match session(limits) {
        Err(error) => {
            let message = error.to_string();
            assert!(message.contains("built-in component"), "{message}");
        }
        Ok(mut session) => {
            // Instantiation fit; a 390 KB item cannot.
            let snapshot = session.snapshot(&table(), &request()).expect("a snapshot is small");
            let mut encoder = session
                .open_encoder(
                    &snapshot,
                    &EncoderOptions { shard_id: 0, target_file_bytes: 0, compression_level: 6, first_sequence: 0 },
                )
                .expect("encoder");
            let error = encoder
                .encode_json(&ddb_export::dynamodb::items_json(&items::edge_cases()))
                .expect_err("the page must not fit");
            assert!(matches!(error, ComponentError::MemoryLimit { .. }), "{error}");
        }
    }
}

#[test]
fn a_trapped_instance_refuses_further_calls_and_the_runtime_makes_fresh_ones() {
    let limits = GuestLimits { memory_bytes: 2 * 1024 * 1024, call_timeout: Duration::from_secs(10) };
    let runtime = ComponentRuntime::load(&ComponentSource::Default, limits, &CacheDir::Disabled).expect("loads");
    let mut session = runtime.session().expect("an instance fits in 2 MiB");
    let snapshot = session.snapshot(&table(), &request()).expect("snapshot");
    let options = EncoderOptions { shard_id: 0, target_file_bytes: 0, compression_level: 6, first_sequence: 0 };
    let mut encoder = session.open_encoder(&snapshot, &options).expect("encoder");
    let error = encoder
        .encode_json(&ddb_export::dynamodb::items_json(&items::edge_cases()))
        .expect_err("a 390 KB item twice over does not fit in 2 MiB");
    assert!(matches!(error, ComponentError::MemoryLimit { .. }), "{error}");
    assert!(encoder.finish().is_err(), "the trapped instance must refuse further calls");
    // The runtime itself is unharmed.
    let mut fresh = runtime.session().expect("a fresh instance");
    assert!(fresh.snapshot(&table(), &request()).is_ok());
}

#[test]
fn the_compiled_component_is_cached_and_a_corrupt_cache_entry_is_recompiled() {
    use ddb_export::runtime::LoadedFrom;
    let dir = tempfile::tempdir().unwrap();
    let cache = CacheDir::At(dir.path().join("cache"));
    let load = || ComponentRuntime::load(&ComponentSource::Default, GuestLimits::default(), &cache).expect("loads");
    assert_eq!(load().load_stats().0, LoadedFrom::Compiled);
    assert_eq!(load().load_stats().0, LoadedFrom::Cache);

    let entries: Vec<_> = std::fs::read_dir(dir.path().join("cache")).unwrap().flatten().collect();
    assert_eq!(entries.len(), 1, "one artifact, no temporary files left");
    std::fs::write(entries[0].path(), b"garbage").unwrap();
    let runtime = load();
    assert_eq!(runtime.load_stats().0, LoadedFrom::Compiled, "a corrupt artifact is not trusted");
    assert!(runtime.session().expect("instantiates").snapshot(&table(), &request()).is_ok());
    assert_eq!(load().load_stats().0, LoadedFrom::Cache, "the artifact was rewritten");
}
