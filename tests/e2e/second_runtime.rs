//! The default component outside our host: jco (Node.js) runs the same component file, with
//! its own WASI, its own implementation of our `logging` import and our `compression` import
//! served by the `compressor` component (`compression/`), which jco runs too
//! (`tests/second_runtime/run_component.mjs`), on the same inputs. Every output must be the
//! same, byte for byte: the snapshot, the plan, each data file, the manifests.

use std::collections::BTreeMap;
use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use md5::{Digest, Md5};
use serde_json::{Value, json};

use ddb_export::dynamodb::pack_page;
use ddb_export::model::{EncoderEvent, EncoderOptions, ExportFormat, ExportTotals, ManifestEntry, SnapshotRequest};
use ddb_export::runtime::DEFAULT_COMPONENT;
use ddb_export::{CacheDir, ComponentRuntime, ComponentSource, GuestLimits};

use crate::component::{request, table};
use crate::items::{self, Item};
use crate::util;

const END_TIME_MS: u64 = 1_700_000_123_456;

/// Data files by key: (item count, base64 MD5, bytes).
type Files = BTreeMap<String, (u64, String, Vec<u8>)>;

/// What our host's wasmtime runtime makes of the inputs.
fn ours(
    request: &SnapshotRequest,
    options: &EncoderOptions,
    pages: &[Vec<Item>],
) -> (Value, Files, Vec<(String, Vec<u8>)>) {
    let runtime =
        ComponentRuntime::load(&ComponentSource::Default, GuestLimits::default(), &CacheDir::Disabled).unwrap();
    let mut session = runtime.session().unwrap();
    let snapshot = session.snapshot(&table(), request).unwrap();
    let plan = session.shard_plan(&table(), None, 4).unwrap();
    let mut encoder = runtime.session().unwrap().open_encoder(&snapshot, options).unwrap();
    let mut events = Vec::new();
    for page in pages {
        events.extend(encoder.encode_json(&ddb_export::dynamodb::items_json(page)).unwrap());
    }
    events.extend(encoder.finish().unwrap());
    let (mut files, mut open) = (Files::new(), None);
    for event in events {
        match event {
            EncoderEvent::FileStarted(key) => open = Some((key, Vec::new())),
            EncoderEvent::Bytes(bytes) => open.as_mut().unwrap().1.extend(bytes),
            EncoderEvent::FileFinished(facts) => {
                let (key, bytes) = open.take().unwrap();
                assert_eq!(key, facts.key);
                files.insert(key, (facts.item_count, facts.md5, bytes));
            }
        }
    }
    let entries: Vec<ManifestEntry> = files
        .iter()
        .map(|(key, (count, md5, bytes))| ManifestEntry {
            data_file_s3_key: key.clone(),
            item_count: *count,
            md5_checksum: md5.clone(),
            etag: format!("{:x}", Md5::digest(bytes)),
            stamp: None,
        })
        .collect();
    let totals =
        ExportTotals { end_time_ms: END_TIME_MS, item_count: files.values().map(|f| f.0).sum(), billed_size_bytes: 0 };
    let manifests = session.manifests(&snapshot, &entries, &totals).unwrap();
    let shards: Vec<Value> = plan
        .shards
        .iter()
        .map(|s| json!({"id": s.id, "segment": s.segment, "totalSegments": s.total_segments}))
        .collect();
    let identity = json!({
        "exportId": snapshot.export_id, "exportArn": snapshot.export_arn, "tableId": snapshot.table_id,
        "root": snapshot.keys.root, "dataFileExtension": snapshot.data_file_extension, "shards": shards,
    });
    (identity, files, manifests.into_iter().map(|o| (o.key, o.body)).collect())
}

/// What jco makes of the same inputs.
fn theirs(
    request: &SnapshotRequest,
    options: &EncoderOptions,
    pages: &[Vec<Item>],
) -> (Value, Files, Vec<(String, Vec<u8>)>) {
    let work = tempfile::tempdir().unwrap();
    let component = work.path().join("component.wasm");
    std::fs::write(&component, DEFAULT_COMPONENT).unwrap();
    let table = table();
    let packed: Vec<String> = pages
        .iter()
        .map(|page| {
            let mut bytes = Vec::new();
            pack_page(page, &mut bytes).unwrap();
            STANDARD.encode(bytes)
        })
        .collect();
    let format = match request.export_format {
        ExportFormat::DynamodbJson => "dynamodb-json",
        ExportFormat::Ion => "ion",
    };
    let scenario = json!({
        "component": component, "workDir": work.path().join("jco"),
        "compressor": util::test_component("ddb-export-compression"),
        "table": {"tableName": table.table_name, "tableArn": table.table_arn, "tableId": table.table_id,
                  "itemCount": table.item_count, "tableSizeBytes": table.table_size_bytes, "billing": {"tag": "on-demand"}},
        "request": {"s3Bucket": request.s3_bucket, "s3Prefix": request.s3_prefix, "s3BucketOwner": null,
                    "s3SseAlgorithm": "aes256", "s3SseKmsKeyId": null, "exportFormat": format,
                    "clientToken": request.client_token, "startTimeMs": request.start_time_ms.to_string(),
                    "region": request.region, "incremental": null, "customFormat": null},
        "planRequest": {"segments": null, "parallelism": 4},
        "encoderOptions": {"shardId": options.shard_id, "targetFileBytes": options.target_file_bytes.to_string(),
                           "compressionLevel": options.compression_level, "firstSequence": options.first_sequence},
        "pages": packed,
        "endTimeMs": END_TIME_MS.to_string(),
    });
    let scenario_file = work.path().join("scenario.json");
    std::fs::write(&scenario_file, scenario.to_string()).unwrap();
    let output = Command::new("node")
        .arg(util::workspace().join("tests/second_runtime/run_component.mjs"))
        .arg(&scenario_file)
        .output()
        .expect("node runs (Node.js 18+ and `scripts/install-standins` for jco)");
    assert!(output.status.success(), "jco failed: {}", String::from_utf8_lossy(&output.stderr));
    let result: Value = serde_json::from_slice(&output.stdout).expect("one JSON document");
    let s = &result["snapshot"];
    let shards: Vec<Value> = result["plan"]["shards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| json!({"id": s["id"], "segment": s["segment"], "totalSegments": s["totalSegments"]}))
        .collect();
    let identity = json!({
        "exportId": s["exportId"], "exportArn": s["exportArn"], "tableId": s["tableId"],
        "root": s["keys"]["root"], "dataFileExtension": s["dataFileExtension"], "shards": shards,
    });
    let decode = |v: &Value| STANDARD.decode(v.as_str().unwrap()).unwrap();
    let files = result["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let count: u64 = f["itemCount"].as_str().unwrap().parse().unwrap();
            (
                f["key"].as_str().unwrap().to_string(),
                (count, f["md5"].as_str().unwrap().to_string(), decode(&f["bytes"])),
            )
        })
        .collect();
    let manifests = result["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["key"].as_str().unwrap().to_string(), decode(&m["body"])))
        .collect();
    (identity, files, manifests)
}

#[test]
fn jco_runs_the_component_to_the_same_bytes_as_our_host() {
    let mut second = items::ordinary(400);
    second.extend(items::incompressible(50, 3));
    let pages = vec![items::edge_cases(), second, items::ordinary(3)];
    for format in [ExportFormat::DynamodbJson, ExportFormat::Ion] {
        let request = SnapshotRequest { export_format: format, ..request() };
        let options =
            EncoderOptions { shard_id: 2, target_file_bytes: 8 * 1024, compression_level: 6, first_sequence: 1 };
        let (our_identity, our_files, our_manifests) = ours(&request, &options, &pages);
        let (their_identity, their_files, their_manifests) = theirs(&request, &options, &pages);
        assert_eq!(our_identity, their_identity, "{format:?}: the snapshot and plan");
        assert!(our_files.len() >= 2, "{format:?}: files roll over");
        assert_eq!(
            our_files.keys().collect::<Vec<_>>(),
            their_files.keys().collect::<Vec<_>>(),
            "{format:?}: data file names"
        );
        for (key, ours) in &our_files {
            assert!(ours == &their_files[key], "{format:?}: {key} differs between wasmtime and jco");
        }
        assert_eq!(our_manifests.len(), 4);
        assert!(our_manifests == their_manifests, "{format:?}: the manifests differ");
    }
}
