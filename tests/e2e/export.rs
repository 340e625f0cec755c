//! `ddb-export export`, through the real binary, against the stand-ins.

use std::path::Path;

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::Value;

use crate::items;
use crate::util::{self, Standins};

/// The summary key named by an ExportDescription on stdout, after checking its shape.
fn completed(output: &std::process::Output, expected_items: usize) -> (Value, String) {
    let (json, manifest) = util::completed(output);
    let d = &json["ExportDescription"];
    assert_eq!(d["ExportFormat"], "DYNAMODB_JSON");
    assert_eq!(d["ExportType"], "FULL_EXPORT");
    assert_eq!(d["ItemCount"].as_u64(), Some(expected_items as u64));
    let arn = d["ExportArn"].as_str().expect("ExportArn");
    let table_arn = d["TableArn"].as_str().expect("TableArn");
    let export_id = arn.rsplit('/').next().expect("an export id");
    assert_eq!(arn, format!("{table_arn}/export/{export_id}"));
    assert!(manifest.ends_with(&format!("AWSDynamoDB/{export_id}/manifest-summary.json")), "{manifest}");
    (json, manifest)
}

fn table_items_canonical(items: &[items::Item]) -> Vec<String> {
    util::sorted_canonical(items.iter().map(util::canonical))
}

#[tokio::test]
async fn every_attribute_type_exports_exactly_to_s3_and_to_a_directory() {
    let standins = Standins::start();
    let dynamodb = standins.dynamodb();
    let mut seeded = items::edge_cases();
    // ~3 MB: each of the two segments spans several Scan pages, so files roll over.
    seeded.extend(items::ordinary(6000));
    util::create_table(&dynamodb, "edge-cases", &seeded).await;
    standins.create_bucket("exports").await;
    let table = util::scan_all(&dynamodb, "edge-cases").await;
    assert_eq!(table.len(), seeded.len());
    let expected = table_items_canonical(&table);

    // The number edge cases come back from the server exactly as written.
    let numbers =
        table.iter().find(|i| i.get("pk") == Some(&AttributeValue::S("numbers".into()))).expect("numbers item");
    assert_eq!(numbers["digits38"], AttributeValue::N("12345678901234567890123456789012345678".into()));

    // To S3, under a prefix, in several segments, with files rolled over small.
    let output = util::run(standins.command().args([
        "export",
        "--table",
        "edge-cases",
        "--to",
        "s3://exports/daily/backups/",
        "--segments",
        "2",
        "--file-size",
        "4096",
    ]));
    let (json, summary_key) = completed(&output, table.len());
    assert_eq!(json["ExportDescription"]["S3Bucket"], "exports");
    assert_eq!(json["ExportDescription"]["S3Prefix"], "daily/backups");
    assert!(summary_key.starts_with("daily/backups/AWSDynamoDB/"));
    let bucket_dir = standins.bucket_dir("exports");
    assert_eq!(util::independent_check(&bucket_dir, &summary_key), expected, "the S3 export differs from the table");

    // The manifests the host wrote agree with the objects S3 stored.
    let root = summary_key.trim_end_matches("/manifest-summary.json");
    let listing = std::fs::read_to_string(bucket_dir.join(root).join("manifest-files.json")).unwrap();
    assert!(listing.lines().count() > 2, "expected roll-over into more files than segments:\n{listing}");
    let s3 = standins.s3();
    for line in listing.lines() {
        let entry: Value = serde_json::from_str(line).unwrap();
        let key = entry["dataFileS3Key"].as_str().unwrap();
        let head = s3.head_object().bucket("exports").key(key).send().await.expect("the data file exists in S3");
        assert_eq!(head.e_tag().map(|e| e.trim_matches('"')), entry["etag"].as_str(), "{key}");
    }

    // To a directory: the same layout, the same items.
    let out_dir = tempfile::tempdir().unwrap();
    let output = util::run(standins.command().args(["export", "--table", "edge-cases", "--to"]).arg(out_dir.path()));
    let (json, summary_key) = completed(&output, table.len());
    let canonical_dir = out_dir.path().canonicalize().unwrap();
    assert_eq!(json["ExportDescription"]["S3Bucket"].as_str(), canonical_dir.to_str());
    assert!(json["ExportDescription"].get("S3Prefix").is_none());
    assert_eq!(
        util::independent_check(out_dir.path(), &summary_key),
        expected,
        "the directory export differs from the table"
    );
    let leftovers: Vec<String> =
        util::keys_under(out_dir.path()).into_iter().filter(|k| !k.starts_with("AWSDynamoDB/")).collect();
    assert!(leftovers.is_empty(), "files outside the export: {leftovers:?}");
}

#[tokio::test]
async fn large_data_files_go_up_as_multipart_uploads_with_s3_etags() {
    let standins = Standins::start();
    let dynamodb = standins.dynamodb();
    // ~11 MB of incompressible bytes in one segment: more than one 8 MiB part.
    let items = items::incompressible(28, 0x2545_f491_4f6c_dd1d);
    util::create_table(&dynamodb, "large", &items).await;
    standins.create_bucket("exports").await;
    let expected = table_items_canonical(&util::scan_all(&dynamodb, "large").await);

    let output = util::run(standins.command().args([
        "export",
        "--table",
        "large",
        "--to",
        "s3://exports",
        "--segments",
        "1",
        "--file-size",
        "0",
    ]));
    let (_, summary_key) = completed(&output, items.len());
    let bucket_dir = standins.bucket_dir("exports");
    assert_eq!(util::independent_check(&bucket_dir, &summary_key), expected);
    let root = summary_key.trim_end_matches("/manifest-summary.json");
    let listing = std::fs::read_to_string(bucket_dir.join(root).join("manifest-files.json")).unwrap();
    let entry: Value = serde_json::from_str(listing.lines().next().expect("one data file")).unwrap();
    assert!(entry["etag"].as_str().unwrap().ends_with("-2"), "expected a two-part upload: {entry}");
}

#[tokio::test]
async fn an_empty_table_exports_a_complete_manifest_without_data_files() {
    let standins = Standins::start();
    util::create_table(&standins.dynamodb(), "empty", &[]).await;
    let out_dir = tempfile::tempdir().unwrap();
    let output = util::run(standins.command().args(["export", "--table", "empty", "--to"]).arg(out_dir.path()));
    let (_, summary_key) = completed(&output, 0);
    assert!(util::independent_check(out_dir.path(), &summary_key).is_empty());
    let root = summary_key.trim_end_matches("/manifest-summary.json");
    assert_eq!(std::fs::read(out_dir.path().join(root).join("manifest-files.json")).unwrap(), b"");
}

#[tokio::test]
async fn moto_serves_dynamodb_and_s3_on_the_one_endpoint_aws_endpoint_url_names() {
    let moto = util::moto();
    let dynamodb = util::dynamodb_client(&moto.url);
    let mut seeded = items::edge_cases();
    seeded.extend(items::ordinary(100));
    util::create_table(&dynamodb, "moto-table", &seeded).await;
    let s3 = util::s3_client(&moto.url);
    s3.create_bucket().bucket("moto-bucket").send().await.expect("bucket created");
    let expected = table_items_canonical(&util::scan_all(&dynamodb, "moto-table").await);

    let output = util::run(util::ddb_export(&[("AWS_ENDPOINT_URL", &moto.url)]).args([
        "export",
        "--table",
        "moto-table",
        "--to",
        "s3://moto-bucket/exports",
        "--segments",
        "3",
    ]));
    let (_, summary_key) = completed(&output, seeded.len());
    let copy = tempfile::tempdir().unwrap();
    util::download(&s3, "moto-bucket", "exports/", copy.path()).await;
    assert_eq!(util::independent_check(copy.path(), &summary_key), expected, "the export differs from the table");
}

/// The `DdbExportStatistics` of a description.
fn statistics(json: &Value) -> &Value {
    &json["ExportDescription"]["DdbExportStatistics"]
}

#[tokio::test]
async fn the_read_budget_holds_and_throttling_slows_the_export_without_failing_it() {
    let standins = Standins::start();
    let dynamodb = standins.dynamodb();
    let seeded = items::ordinary(4000);
    util::create_table(&dynamodb, "budget", &seeded).await;
    standins.create_bucket("exports").await;
    let expected = table_items_canonical(&util::scan_all(&dynamodb, "budget").await);

    // A budget well below what the table costs to read: the export takes as long as it must.
    let limit = 60.0;
    let output = util::run(standins.command().args([
        "export",
        "--table",
        "budget",
        "--to",
        "s3://exports/budget",
        "--segments",
        "4",
        "--max-rcu",
        "60",
    ]));
    let (json, summary_key) = completed(&output, seeded.len());
    assert_eq!(util::independent_check(&standins.bucket_dir("exports"), &summary_key), expected);
    let stats = statistics(&json);
    let rcu = stats["ConsumedReadCapacityUnits"].as_f64().expect("consumed RCU");
    let seconds = stats["Seconds"].as_f64().expect("seconds");
    let pages = stats["ScanPages"].as_u64().expect("pages");
    assert!(rcu > 3.0 * limit, "the table must cost several seconds of budget, not {rcu} RCU");
    assert!(pages > 8, "a small budget should mean small pages, not {pages}");
    // One second's allowance up front, and each lane (3 at 60 RCU/s) may be one page into debt.
    let largest_page = rcu / pages as f64 * 4.0;
    assert!(
        rcu <= limit * seconds + limit + largest_page,
        "read {rcu} RCU in {seconds}s, over the budget of {limit} RCU/s"
    );

    // The first 12 Scan requests throttled, with the default (on-demand) budget: the export
    // backs off, slows its budget, and still completes with every item.
    let proxy = util::throttle_proxy(standins.dynamodb_url(), 12);
    let output = util::run(
        util::ddb_export(&[("AWS_ENDPOINT_URL_DYNAMODB", &proxy.url), ("AWS_ENDPOINT_URL_S3", standins.s3_url())])
            .args([
                "export",
                "--table",
                "budget",
                "--to",
                "s3://exports/throttled",
                "--segments",
                "2",
                "--no-read-limit",
            ]),
    );
    let (json, summary_key) = completed(&output, seeded.len());
    assert_eq!(util::independent_check(&standins.bucket_dir("exports"), &summary_key), expected);
    assert!(statistics(&json)["Throttles"].as_u64().expect("throttles") >= 1, "{json}");
}

/// A failed run: non-zero exit, a message naming `names`, and no summary anywhere.
fn assert_failed_cleanly(output: &std::process::Output, names: &[&str], searched: &Path) {
    assert!(!output.status.success(), "expected a failure");
    assert_eq!(output.status.code(), Some(1), "a failed export exits with 1");
    let stderr = String::from_utf8_lossy(&output.stderr);
    for name in names {
        assert!(stderr.contains(name), "stderr should name {name:?}:\n{stderr}");
    }
    let summaries: Vec<String> =
        util::keys_under(searched).into_iter().filter(|k| k.ends_with("manifest-summary.json")).collect();
    assert!(summaries.is_empty(), "a failed export left a summary: {summaries:?}");
}

#[tokio::test]
async fn a_missing_table_fails_naming_it_and_writes_nothing() {
    let standins = Standins::start();
    standins.create_bucket("exports").await;
    let output = util::run(standins.command().args(["export", "--table", "no-such-table", "--to", "s3://exports/p"]));
    assert_failed_cleanly(&output, &["no-such-table", "not found"], &standins.bucket_dir("exports"));
    assert!(util::keys_under(&standins.bucket_dir("exports")).is_empty(), "nothing may be written");
    assert!(output.stdout.is_empty(), "no description without an export");
}

#[tokio::test]
async fn a_missing_bucket_or_an_unwritable_directory_fails_naming_it() {
    let standins = Standins::start();
    util::create_table(&standins.dynamodb(), "t1x", &items::ordinary(3)).await;
    let output = util::run(standins.command().args(["export", "--table", "t1x", "--to", "s3://no-such-bucket/x"]));
    assert_failed_cleanly(&output, &["no-such-bucket", "does not exist"], &standins.bucket_dir("no-such-bucket"));

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"not a directory").unwrap();
    let output = util::run(standins.command().args(["export", "--table", "t1x", "--to"]).arg(file.join("sub")));
    assert_failed_cleanly(&output, &["a-file/sub", "destination directory"], dir.path());
}

#[test]
fn bad_arguments_are_refused_before_any_request() {
    // Nothing listens on these endpoints: a request would fail differently.
    let run = |args: &[&str]| {
        let output = util::run(
            std::process::Command::new(env!("CARGO_BIN_EXE_ddb-export"))
                .args(args)
                .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
                .env("AWS_REGION", util::REGION),
        );
        assert!(!output.status.success(), "{args:?} should fail");
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let cases: &[(&[&str], &str)] = &[
        (&["export", "--table", "t1x", "--to", "s3://Bad_Bucket"], "bucket name"),
        (&["export", "--table", "t1x", "--to", "s3://bucket/a//b"], "prefix"),
        (&["export", "--table", "t1x", "--to", "gs://bucket"], "unsupported scheme"),
        (&["export", "--table", "x", "--to", "s3://bucket"], "--table"),
        (&["export", "--table", "t1x", "--to", "s3://bucket", "--segments", "0"], "--segments"),
        (&["export", "--table", "t1x", "--to", "s3://bucket", "--parallelism", "0"], "--parallelism"),
        (&["export", "--table", "t1x", "--to", "s3://bucket", "--format", "csv"], "--format"),
        (&["export", "--table", "t1x", "--to", "s3://bucket", "--s3-bucket-owner", "me"], "12-digit"),
        (
            &["export", "--table", "t1x", "--to", "s3://bucket", "--component", "/nonexistent/c.wasm"],
            "/nonexistent/c.wasm",
        ),
        (&["export", "--table", "arn:aws:dynamodb:us-east-1:1:tab/t1x", "--to", "s3://bucket"], "not a table ARN"),
        (&["export", "--table", "t1x", "--to", "s3://bucket", "--max-rcu", "5", "--no-read-limit"], "cannot be used"),
        (&["export", "--table", "t1x", "--to", "s3://bucket", "--read-percent", "0"], "--read-percent"),
        (&["export", "--table", "t1x", "--to", "s3://bucket", "--compression-level", "12"], "--compression-level"),
        (&["export", "--table", "t1x", "--to", "s3://bucket", "--file-size", "999999999999999"], "--file-size"),
        (&["export", "--table", "t1x", "--to", "/tmp/x", "--s3-sse-kms-key-id", "k"], "only apply to s3://"),
        (&["export", "--table", "t1x", "--to", "s3://bucket", "--resume", "yesterday"], "--resume"),
        (&["export", "--table", "t1x", "--to", "s3://bucket", "--client-token", &"t".repeat(65)], "--client-token"),
    ];
    for (args, expected) in cases {
        let stderr = run(args);
        assert!(stderr.contains(expected), "{args:?}: stderr should mention {expected:?}:\n{stderr}");
    }
}

#[test]
fn a_file_that_is_not_a_component_is_refused_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("fake.wasm");
    std::fs::write(&fake, b"\0asm not really").unwrap();
    let output = util::run(
        std::process::Command::new(env!("CARGO_BIN_EXE_ddb-export"))
            .args(["export", "--table", "t1x", "--to", "s3://bucket", "--no-cache", "--component"])
            .arg(&fake)
            .env("AWS_REGION", util::REGION),
    );
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("fake.wasm") && stderr.contains("not a usable component"), "{stderr}");
}

/// AWS's refusals, told so a user knows what to fix: a wrong secret key (s3s-fs checks
/// signatures), and AccessDenied / expired credentials answered through tests/fault_proxy.py
/// in front of the real stand-ins.
#[tokio::test]
async fn aws_errors_are_reported_in_words_a_user_can_act_on() {
    let standins = Standins::start();
    util::create_table(&standins.dynamodb(), "orders", &items::ordinary(5)).await;
    standins.create_bucket("exports").await;
    let bucket_dir = standins.bucket_dir("exports");
    let export = |dynamodb: &str, s3: &str, env: &[(&str, &str)]| {
        let mut command = util::ddb_export(&[("AWS_ENDPOINT_URL_DYNAMODB", dynamodb), ("AWS_ENDPOINT_URL_S3", s3)]);
        command.envs(env.iter().copied()).args(["export", "--table", "orders", "--to", "s3://exports/p"]);
        util::run(&mut command)
    };

    let output = export(standins.dynamodb_url(), standins.s3_url(), &[("AWS_SECRET_ACCESS_KEY", "wrong")]);
    assert_failed_cleanly(
        &output,
        &["credentials are missing, invalid or expired", "SignatureDoesNotMatch"],
        &bucket_dir,
    );

    let denied =
        util::fault_proxy(standins.s3_url(), &["--only", "s3-put", "--always", "--error-response", "403:AccessDenied"]);
    let output = export(standins.dynamodb_url(), &denied.url, &[]);
    assert_failed_cleanly(&output, &["access denied: s3:PutObject on s3://exports/p/AWSDynamoDB/"], &bucket_dir);

    let expired = util::fault_proxy(
        standins.dynamodb_url(),
        &[
            "--only",
            "dynamodb",
            "--dynamodb-ops",
            "DescribeTable",
            "--always",
            "--error-response",
            "400:ExpiredTokenException",
        ],
    );
    let output = export(&expired.url, standins.s3_url(), &[]);
    assert_failed_cleanly(
        &output,
        &["credentials are missing, invalid or expired", "ExpiredTokenException"],
        &bucket_dir,
    );

    let scan_denied = util::fault_proxy(
        standins.dynamodb_url(),
        &["--only", "scan", "--always", "--error-response", "400:AccessDeniedException"],
    );
    let output = export(&scan_denied.url, standins.s3_url(), &[]);
    assert_failed_cleanly(&output, &["access denied: dynamodb:Scan on orders"], &bucket_dir);
}

/// `--filter` and `--projection` go to every Scan: the export holds exactly the items the
/// filter keeps, with only the projected attributes; bad expression values are refused.
#[tokio::test]
async fn filters_and_projections_are_passed_to_the_scan() {
    let standins = Standins::start();
    let dynamodb = standins.dynamodb();
    util::create_table(&dynamodb, "orders", &items::ordinary(300)).await;
    standins.create_bucket("exports").await;
    let output = util::run(standins.command().args([
        "export",
        "--table",
        "orders",
        "--to",
        "s3://exports/filtered",
        "--segments",
        "3",
        "--filter",
        "contains(tags, :t) AND #n < :max",
        "--projection",
        "pk, #n, nested.i",
        "--expression-names",
        r##"{"#n":"n"}"##,
        "--expression-values",
        r#"{":t":{"S":"t2"},":max":{"N":"200"}}"#,
    ]));
    // Items 2, 7, 12, … below 200: forty of them, each with pk, n and nested.i only.
    let expected: Vec<items::Item> = items::ordinary(300)
        .into_iter()
        .enumerate()
        .filter(|(i, _)| i % 5 == 2 && *i < 200)
        .map(|(i, item)| {
            let nested = AttributeValue::M(std::collections::HashMap::from([(
                "i".to_string(),
                AttributeValue::N(i.to_string()),
            )]));
            std::collections::HashMap::from([
                ("pk".to_string(), item["pk"].clone()),
                ("n".to_string(), item["n"].clone()),
                ("nested".to_string(), nested),
            ])
        })
        .collect();
    let (_, summary_key) = completed(&output, expected.len());
    assert_eq!(
        util::independent_check(&standins.bucket_dir("exports"), &summary_key),
        table_items_canonical(&expected),
        "the export is not the filtered, projected table"
    );

    let refused = |args: &[&str]| {
        let output =
            util::run(standins.command().args(["export", "--table", "orders", "--to", "s3://exports/x"]).args(args));
        assert!(!output.status.success(), "{args:?} should be refused");
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let stderr = refused(&["--filter", "#n < :v", "--expression-values", r#"{":v":{"X":"1"}}"#]);
    assert!(stderr.contains("--expression-values") && stderr.contains("\"X\""), "{stderr}");
    assert!(refused(&["--filter", "a = b", "--consistent"]).contains("cannot be used with"));
    assert!(refused(&["--expression-names", r##"{"#n":"n"}"##]).contains("need --filter or --projection"));
}
