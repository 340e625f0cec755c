//! The fast path writes the bytes the old one wrote. Before it, a Scan page was parsed by the
//! SDK into typed items, packed by the host (`wit/page-format.md`) and encoded by the component,
//! which compressed in WebAssembly; now the component reads the service's own JSON
//! (`encode-json-page`) and the host compresses natively (`wit/compression.wit`).
//!
//! A table of every attribute type (and plain items, and incompressible ones) is exported by
//! the real binary from dynalite; each segment is then scanned again through the SDK, page for
//! page as the export read it, and encoded the old way: typed items, packed, through the
//! guest's encoder compiled natively with flate2 compressing in process. Each data file must be
//! what the old way gives, byte for byte, in both formats and at two gzip levels.

use std::collections::BTreeMap;

use ddb_export::dynamodb::pack_page;
use ddb_export_guest::encoder::ShardEncoder;
use ddb_export_guest::wit as guest;
use serde_json::Value;

use crate::items;
use crate::util::{self, Standins};

/// The bytes of each data file, in order, of a shard's pages encoded the old way.
fn old_way(pages: &[Vec<items::Item>], shard: u32, format: guest::ExportFormat, level: u8) -> Vec<Vec<u8>> {
    let table = guest::TableDescription {
        table_name: "mixed".into(),
        table_arn: "arn:aws:dynamodb:us-east-1:000000000000:table/mixed".into(),
        table_id: None,
        item_count: 0,
        table_size_bytes: 0,
        billing: guest::Billing::OnDemand,
    };
    let request = guest::ExportRequest {
        s3_bucket: "b".into(),
        s3_prefix: None,
        s3_bucket_owner: None,
        s3_sse_algorithm: guest::SseAlgorithm::Aes256,
        s3_sse_kms_key_id: None,
        export_format: format,
        client_token: "t".into(),
        start_time_ms: 1_700_000_000_000,
        region: "us-east-1".into(),
        incremental: None,
        custom_format: None,
    };
    let snapshot = ddb_export_guest::snapshot::create(table, request).expect("a snapshot");
    let options =
        guest::EncoderOptions { shard_id: shard, target_file_bytes: 0, compression_level: level, first_sequence: 0 };
    let mut encoder = ShardEncoder::open(&snapshot, options).expect("an encoder");
    let mut events = Vec::new();
    let mut packed = Vec::new();
    for page in pages {
        pack_page(page, &mut packed).expect("packed");
        events.extend(encoder.encode_page(&packed).expect("encoded"));
    }
    events.extend(encoder.finish().expect("finished"));
    let mut files = Vec::new();
    for event in events {
        match event {
            guest::Output::FileStarted(_) => files.push(Vec::new()),
            guest::Output::Bytes(bytes) => files.last_mut().expect("a file is open").extend(bytes),
            guest::Output::FileFinished(_) => {}
        }
    }
    files
}

#[tokio::test]
async fn the_fast_path_writes_the_bytes_the_old_path_wrote() {
    let standins = Standins::start();
    let dynamodb = standins.dynamodb();
    let mut table = items::edge_cases();
    table.extend(items::ordinary(1200));
    table.extend(items::incompressible(120, 9));
    util::create_table(&dynamodb, "mixed", &table).await;
    let segments = 2;
    for (format, name, level) in [
        (guest::ExportFormat::DynamodbJson, "dynamodb-json", 6),
        (guest::ExportFormat::Ion, "ion", 6),
        (guest::ExportFormat::DynamodbJson, "dynamodb-json", 1),
    ] {
        let out = tempfile::tempdir().unwrap();
        let export = util::run(
            standins
                .command()
                .args(["export", "--table", "mixed", "--no-read-limit", "--file-size", "0", "--format", name])
                .args(["--segments", &segments.to_string(), "--compression-level", &level.to_string()])
                .arg("--to")
                .arg(out.path()),
        );
        let (_, summary) = util::completed(&export);
        // The export's files by shard (file names carry the shard: one file each here).
        let root = out.path().join(summary.trim_end_matches("/manifest-summary.json"));
        let listing = std::fs::read_to_string(root.join("manifest-files.json")).unwrap();
        let mut written = BTreeMap::new();
        for line in listing.lines() {
            let entry: Value = serde_json::from_str(line).unwrap();
            let key = entry["dataFileS3Key"].as_str().unwrap();
            let bytes = std::fs::read(out.path().join(key)).unwrap();
            written.insert(key.to_string(), bytes);
        }
        let mut expected = Vec::new();
        for segment in 0..segments {
            // dynalite pages the same way each time: the export read these pages.
            let pages = scan_pages(&dynamodb, segment as i32, segments as i32).await;
            expected.extend(old_way(&pages, segment, format, level));
        }
        let mut expected_sorted: Vec<&Vec<u8>> = expected.iter().filter(|f| !f.is_empty()).collect();
        let mut written_sorted: Vec<&Vec<u8>> = written.values().collect();
        expected_sorted.sort();
        written_sorted.sort();
        assert_eq!(written_sorted.len(), expected_sorted.len(), "{name} gzip {level}: data files");
        assert!(written_sorted == expected_sorted, "{name} gzip {level}: a data file differs from the old path's");
        assert_eq!(util::independent_check(out.path(), &summary).len(), table.len(), "{name} gzip {level}");
    }
}

/// A segment's Scan pages, each as the SDK returned it.
async fn scan_pages(client: &aws_sdk_dynamodb::Client, segment: i32, total: i32) -> Vec<Vec<items::Item>> {
    let mut pages = Vec::new();
    let mut start = None;
    loop {
        let page = client
            .scan()
            .table_name("mixed")
            .segment(segment)
            .total_segments(total)
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("a Scan page");
        if !page.items().is_empty() {
            pages.push(page.items.clone().unwrap_or_default());
        }
        start = page.last_evaluated_key.filter(|key| !key.is_empty());
        if start.is_none() {
            return pages;
        }
    }
}
