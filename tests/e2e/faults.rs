//! The real binary against stand-ins behind `tests/fault_proxy.py`: throttling, 500s, dropped
//! and slow connections on DynamoDB and S3 at once, hung requests, and persistent failures.
//!
//! The proxies draw faults from a seeded generator, one draw per request they may fail, so the
//! first draws are the same on every run: the seeds below were chosen so that every fault kind
//! is drawn within the first [`DRAWS_FOR_EVERY_KIND`] requests, and the tests check the export
//! made at least that many (with fewer, a missing kind would be bad luck, not a bug).

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::items;
use crate::util::{self, Server, Standins};

/// Fault rates for both services: 10% throttled, 6% 500, 5% dropped, 10% slowed by 300 ms.
const RANDOM_FAULTS: &[&str] =
    &["--throttle", "0.1", "--error500", "0.06", "--drop", "0.05", "--slow", "0.1", "--slow-ms", "300"];
/// Seeds for which, at `RANDOM_FAULTS`, the first eight draws hold every kind.
const DYNAMODB_SEED: &str = "8";
const S3_SEED: &str = "44";
const DRAWS_FOR_EVERY_KIND: u64 = 8;

/// The ExportDescription and its summary key, after checking the run completed with `items` items.
fn completed(output: &Output, items: usize) -> (Value, String) {
    let (json, summary_key) = util::completed(output);
    assert_eq!(json["ExportDescription"]["ItemCount"].as_u64(), Some(items as u64), "{json}");
    (json, summary_key)
}

/// A failed run: exit code 1, stderr naming every one of `names`, and no summary in `bucket_dir`.
fn failed_cleanly(output: &Output, names: &[&str], bucket_dir: &Path) {
    assert_eq!(output.status.code(), Some(1), "a failed export exits with 1");
    let stderr = String::from_utf8_lossy(&output.stderr);
    for name in names {
        assert!(stderr.contains(name), "stderr should name {name:?}:\n{stderr}");
    }
    let summaries: Vec<String> =
        util::keys_under(bucket_dir).into_iter().filter(|k| k.contains("manifest-summary.json")).collect();
    assert!(summaries.is_empty(), "a failed export left a summary: {summaries:?}");
    if !output.stdout.is_empty() {
        assert_eq!(util::stdout_json(output)["ExportDescription"]["ExportStatus"], "FAILED");
    }
}

/// The real binary, DynamoDB and S3 reached through `dynamodb` and `s3`, with `env`.
fn through(dynamodb: &Server, s3: &Server, env: &[(&str, &str)]) -> std::process::Command {
    let mut vars = vec![("AWS_ENDPOINT_URL_DYNAMODB", dynamodb.url.as_str()), ("AWS_ENDPOINT_URL_S3", s3.url.as_str())];
    vars.extend_from_slice(env);
    util::ddb_export(&vars)
}

fn count(counts: &Value, key: &str) -> u64 {
    counts[key].as_u64().unwrap_or_else(|| panic!("no {key:?} in {counts}"))
}

/// Checks a proxy drew at least [`DRAWS_FOR_EVERY_KIND`] times and injected each of `kinds`.
fn injected_every_kind(name: &str, proxy: &Server, kinds: &[&str]) -> Value {
    let counts = util::fault_counts(proxy);
    eprintln!("{name} proxy: {counts}");
    assert!(
        count(&counts, "selected") >= DRAWS_FOR_EVERY_KIND,
        "{name}: too few requests to draw every fault: {counts}"
    );
    for kind in kinds {
        assert!(count(&counts, kind) >= 1, "{name}: no {kind} fault was injected: {counts}");
    }
    counts
}

#[tokio::test]
async fn random_faults_on_both_services_still_export_every_item_exactly() {
    let standins = Standins::start();
    let dynamodb = standins.dynamodb();
    let mut seeded = items::edge_cases();
    seeded.extend(items::ordinary(4000));
    util::create_table(&dynamodb, "faulty", &seeded).await;
    standins.create_bucket("exports").await;
    let expected = util::sorted_canonical(util::scan_all(&dynamodb, "faulty").await.iter().map(util::canonical));

    let dynamodb_proxy = util::fault_proxy(
        standins.dynamodb_url(),
        &[&["--seed", DYNAMODB_SEED, "--dynamodb-ops", "Scan,DescribeTable"], RANDOM_FAULTS].concat(),
    );
    let s3_proxy = util::fault_proxy(standins.s3_url(), &[&["--seed", S3_SEED], RANDOM_FAULTS].concat());
    // A small read budget makes small Scan pages (many requests), and small files many PUTs.
    let started = Instant::now();
    let output = util::run(through(&dynamodb_proxy, &s3_proxy, &[]).args([
        "export",
        "--table",
        "faulty",
        "--to",
        "s3://exports/faults",
        "--segments",
        "4",
        "--file-size",
        "4096",
        "--max-rcu",
        "200",
    ]));
    eprintln!("the export took {:.1?}", started.elapsed());
    let (json, summary_key) = completed(&output, seeded.len());
    let bucket_dir = standins.bucket_dir("exports");
    assert_eq!(util::independent_check(&bucket_dir, &summary_key), expected, "the export differs from the table");

    let all = ["throttle", "error500", "drop", "slow"];
    let dynamodb_counts = injected_every_kind("DynamoDB", &dynamodb_proxy, &all);
    let s3_counts = injected_every_kind("S3", &s3_proxy, &all);
    // The export counted every throttled Scan it saw, and nothing else as one.
    let scan_throttles = dynamodb_counts["by_operation"]["Scan"]["throttle"].as_u64().unwrap_or(0);
    assert_eq!(json["ExportDescription"]["DdbExportStatistics"]["Throttles"].as_u64(), Some(scan_throttles), "{json}");
    assert!(s3_counts["by_operation"]["s3:PutObject"].is_object(), "PutObject got faults: {s3_counts}");
}

#[tokio::test]
async fn multipart_uploads_survive_faults_on_their_parts() {
    let standins = Standins::start();
    let dynamodb = standins.dynamodb();
    // ~9.5 MB in one data file: a two-part upload (8 MiB parts).
    let seeded = items::incompressible(25, 0x9e37_79b9_7f4a_7c15);
    util::create_table(&dynamodb, "large", &seeded).await;
    standins.create_bucket("exports").await;
    let expected = util::sorted_canonical(util::scan_all(&dynamodb, "large").await.iter().map(util::canonical));

    // Faults on the upload's parts and its completion only: with seed 9 the first three
    // attempts (part 1) are dropped, refused with a 500, and throttled.
    let dynamodb_proxy = util::fault_proxy(standins.dynamodb_url(), &[]);
    let s3_proxy = util::fault_proxy(
        standins.s3_url(),
        &["--seed", "9", "--path-contains", "uploadId", "--throttle", "0.2", "--error500", "0.2", "--drop", "0.2"],
    );
    let output = util::run(through(&dynamodb_proxy, &s3_proxy, &[]).args([
        "export",
        "--table",
        "large",
        "--to",
        "s3://exports/large",
        "--segments",
        "1",
        "--file-size",
        "0",
    ]));
    let (_, summary_key) = completed(&output, seeded.len());
    let bucket_dir = standins.bucket_dir("exports");
    assert_eq!(util::independent_check(&bucket_dir, &summary_key), expected);
    let root = summary_key.trim_end_matches("/manifest-summary.json");
    let listing = std::fs::read_to_string(bucket_dir.join(root).join("manifest-files.json")).unwrap();
    let entry: Value = serde_json::from_str(listing.lines().next().expect("one data file")).unwrap();
    assert!(entry["etag"].as_str().unwrap().ends_with("-2"), "expected a two-part upload: {entry}");
    let counts = util::fault_counts(&s3_proxy);
    eprintln!("S3 proxy: {counts}");
    let part_faults = &counts["by_operation"]["s3:UploadPart"];
    for kind in ["throttle", "error500", "drop"] {
        assert!(part_faults[kind].as_u64().unwrap_or(0) >= 1, "no UploadPart got a {kind}: {counts}");
    }
}

#[tokio::test]
async fn hung_requests_time_out_and_are_retried() {
    let standins = Standins::start();
    let dynamodb = standins.dynamodb();
    let seeded = items::ordinary(1500);
    util::create_table(&dynamodb, "hung", &seeded).await;
    standins.create_bucket("exports").await;
    let expected = util::sorted_canonical(util::scan_all(&dynamodb, "hung").await.iter().map(util::canonical));

    // Seed 1 hangs the very first request each proxy may fail: a Scan, and HeadBucket.
    let hang = ["--seed", "1", "--hang", "0.2", "--hang-ms", "120000"];
    let dynamodb_proxy = util::fault_proxy(standins.dynamodb_url(), &hang);
    let s3_proxy = util::fault_proxy(standins.s3_url(), &hang);
    let started = Instant::now();
    let output = util::run(through(&dynamodb_proxy, &s3_proxy, &[("DDB_EXPORT_IO_TIMEOUT_SECS", "2")]).args([
        "export",
        "--table",
        "hung",
        "--to",
        "s3://exports/hung",
        "--segments",
        "4",
        "--file-size",
        "4096",
    ]));
    let took = started.elapsed();
    let (_, summary_key) = completed(&output, seeded.len());
    assert_eq!(util::independent_check(&standins.bucket_dir("exports"), &summary_key), expected);
    for (name, proxy) in [("DynamoDB", &dynamodb_proxy), ("S3", &s3_proxy)] {
        let counts = util::fault_counts(proxy);
        eprintln!("{name} proxy: {counts}");
        assert!(count(&counts, "hang") >= 1, "{name}: no request was hung: {counts}");
    }
    assert!(took < Duration::from_secs(60), "hung requests should cost 2 s each, not {took:?}");
}

#[tokio::test]
async fn persistent_s3_put_failures_fail_the_export_without_a_summary() {
    let standins = Standins::start();
    util::create_table(&standins.dynamodb(), "doomed", &items::ordinary(2000)).await;
    standins.create_bucket("exports").await;
    let dynamodb_proxy = util::fault_proxy(standins.dynamodb_url(), &[]);
    let export = |s3_proxy: &Server, prefix: &str| {
        util::run(through(&dynamodb_proxy, s3_proxy, &[]).args([
            "export",
            "--table",
            "doomed",
            "--to",
            &format!("s3://exports/{prefix}"),
            "--segments",
            "4",
            "--file-size",
            "4096",
        ]))
    };

    // Every PUT fails: the first object the export writes.
    let s3_proxy = util::fault_proxy(standins.s3_url(), &["--only", "s3-put", "--always", "--error500", "1"]);
    let output = export(&s3_proxy, "every-put");
    failed_cleanly(&output, &["S3", "PutObject", "exports", "InternalError"], &standins.bucket_dir("exports"));
    let counts = util::fault_counts(&s3_proxy);
    assert!(count(&counts, "error500") >= 1, "{counts}");
    assert_eq!(count(&counts, "error500"), count(&counts, "selected"), "every PUT failed: {counts}");

    // Only data files fail, while four segments are being written: the run stops, no summary.
    let s3_proxy = util::fault_proxy(
        standins.s3_url(),
        &["--only", "s3-put", "--path-contains", "/data/", "--always", "--error500", "1"],
    );
    let output = export(&s3_proxy, "data-puts");
    failed_cleanly(&output, &["S3", "PutObject", "/data/", "InternalError"], &standins.bucket_dir("exports"));
    let data_files: Vec<String> =
        util::keys_under(&standins.bucket_dir("exports")).into_iter().filter(|k| k.contains("/data/")).collect();
    assert!(data_files.is_empty(), "no data file can have been stored: {data_files:?}");
    let counts = util::fault_counts(&s3_proxy);
    assert!(count(&counts, "forwarded") >= 1, "the export began (e.g. _started) before a data file: {counts}");
}

#[tokio::test]
async fn persistent_scan_errors_fail_the_export_without_a_summary() {
    let standins = Standins::start();
    util::create_table(&standins.dynamodb(), "doomed", &items::ordinary(200)).await;
    standins.create_bucket("exports").await;
    let dynamodb_proxy = util::fault_proxy(standins.dynamodb_url(), &["--only", "scan", "--always", "--error500", "1"]);
    let s3_proxy = util::fault_proxy(standins.s3_url(), &[]);
    let output = util::run(through(&dynamodb_proxy, &s3_proxy, &[]).args([
        "export",
        "--table",
        "doomed",
        "--to",
        "s3://exports/doomed",
        "--segments",
        "2",
    ]));
    failed_cleanly(&output, &["DynamoDB", "Scan", "doomed"], &standins.bucket_dir("exports"));
    let counts = util::fault_counts(&dynamodb_proxy);
    assert!(count(&counts, "error500") >= 1, "{counts}");
    assert_eq!(count(&counts, "forwarded") + count(&counts, "error500"), count(&counts, "requests"), "{counts}");
}

/// A CompleteMultipartUpload that succeeded but whose response was lost is retried by the SDK.
/// AWS answers a repeated Complete with the same result; s3s-fs (like MinIO) no longer knows
/// the upload and refuses it (s3s-fs says AccessDenied). The host then accepts the stored
/// object because its ETag is exactly the one the parts it uploaded give.
#[tokio::test]
async fn a_lost_complete_multipart_upload_response_is_not_fatal() {
    let standins = Standins::start();
    let dynamodb = standins.dynamodb();
    let seeded = items::incompressible(25, 0x9e37_79b9_7f4a_7c15);
    util::create_table(&dynamodb, "large", &seeded).await;
    standins.create_bucket("exports").await;
    let expected = util::sorted_canonical(util::scan_all(&dynamodb, "large").await.iter().map(util::canonical));
    // Seed 1 draws 0.13 then 0.85: the first Complete is carried out and its response lost,
    // the retry goes through.
    let dynamodb_proxy = util::fault_proxy(standins.dynamodb_url(), &[]);
    let s3_proxy = util::fault_proxy(
        standins.s3_url(),
        &["--seed", "1", "--path-contains", "uploadId", "--method", "POST", "--lose", "0.5"],
    );
    let output = util::run(through(&dynamodb_proxy, &s3_proxy, &[]).args([
        "export",
        "--table",
        "large",
        "--to",
        "s3://exports/large",
        "--segments",
        "1",
        "--file-size",
        "0",
    ]));
    let counts = util::fault_counts(&s3_proxy);
    assert_eq!(counts["by_operation"]["s3:CompleteMultipartUpload"]["lose"], 1, "{counts}");
    let (_, summary_key) = completed(&output, seeded.len());
    assert_eq!(util::independent_check(&standins.bucket_dir("exports"), &summary_key), expected);
}
