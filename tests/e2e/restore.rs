//! `ddb-export restore`, through the real binary, on the stand-ins: exports (ours in
//! DYNAMODB_JSON and ION, and one laid out by hand as AWS writes it) back into new and live
//! tables, compared item for item with a plain Scan; refusals that leave the table as it was;
//! a restore killed at random moments and carried on; a chain of a full and two incremental
//! exports (moto); faults on the writes.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::Path;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine as _;
use md5::{Digest, Md5};
use serde_json::Value;

use crate::items;
use crate::util::{self, Standins};

type Item = HashMap<String, AttributeValue>;

/// The root (`…/AWSDynamoDB/<id>`) of the export a successful `export` printed.
fn export_root(output: &std::process::Output, destination: &str) -> String {
    let (json, _) = util::completed(output);
    let arn = json["ExportDescription"]["ExportArn"].as_str().expect("ExportArn");
    let id = arn.rsplit('/').next().unwrap();
    format!("{}/AWSDynamoDB/{id}", destination.trim_end_matches('/'))
}

/// The table's items, canonical and sorted.
async fn table_items(client: &aws_sdk_dynamodb::Client, table: &str) -> Vec<String> {
    util::sorted_canonical(util::scan_all(client, table).await.iter().map(util::canonical))
}

fn report(output: &std::process::Output) -> Value {
    assert!(output.status.success(), "the restore failed: {}", String::from_utf8_lossy(&output.stderr));
    util::stdout_json(output)
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test]
async fn exports_restore_into_new_tables_item_for_item_in_both_formats() {
    let standins = Standins::start();
    let dynamodb = standins.dynamodb();
    let mut source = items::edge_cases();
    source.extend(items::ordinary(1200));
    util::create_table(&dynamodb, "source", &source).await;
    standins.create_bucket("exports").await;
    let want = table_items(&dynamodb, "source").await;

    // DYNAMODB_JSON in a bucket, several data files.
    let exported = util::run(standins.command().args([
        "export",
        "--table",
        "source",
        "--to",
        "s3://exports/p",
        "--segments",
        "3",
        "--file-size",
        "100000",
    ]));
    let root = export_root(&exported, "s3://exports/p");
    let restore = || {
        let mut command = standins.command();
        command.args(["restore", "--from", &root, "--table", "copy", "--create-table", "--progress", "off"]);
        command
    };
    let first = report(&util::run(&mut restore()));
    assert_eq!(table_items(&dynamodb, "copy").await, want, "the restored table is the source, item for item");
    assert_eq!(first["ItemsPut"].as_u64(), Some(source.len() as u64), "{first}");
    assert_eq!((first["ItemsDeleted"].as_u64(), first["Skipped"].as_u64()), (Some(0), Some(0)), "{first}");
    assert!(first["DataFiles"].as_u64().unwrap() >= 3, "{first}");
    assert_eq!(first["CreatedTable"], true);
    // The new table has the source's key, from the export's saved description.
    let described = dynamodb.describe_table().table_name("copy").send().await.unwrap().table.unwrap();
    assert_eq!(described.key_schema()[0].attribute_name, "pk");

    // The same request again: the finished restore's report, nothing written again.
    let again = util::run(&mut restore());
    assert_eq!(report(&again), first, "the same token returns the same report");
    assert!(stderr(&again).contains("finished earlier"), "{}", stderr(&again));

    // ION, in a directory.
    let dir = tempfile::tempdir().unwrap();
    let to = dir.path().to_str().unwrap().to_string();
    let exported = util::run(standins.command().args(["export", "--table", "source", "--to", &to, "--format", "ion"]));
    let root = export_root(&exported, &to);
    let output = util::run(standins.command().args([
        "restore",
        "--from",
        &root,
        "--table",
        "from_ion",
        "--create-table",
        "--progress",
        "off",
    ]));
    let restored = report(&output);
    assert_eq!(table_items(&dynamodb, "from_ion").await, want, "the ION export restores item for item");
    assert_eq!(restored["ItemsPut"].as_u64(), Some(source.len() as u64));
}

/// One `{"Item":…}` line as the DynamoDB API writes an item, by hand (not by our writer).
fn json_line(item: &Item) -> String {
    format!("{{\"Item\":{}}}\n", util::canonical(item))
}

fn gzip(text: &str) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(text.as_bytes()).unwrap();
    encoder.finish().unwrap()
}

fn md5_base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Md5::digest(bytes))
}

/// An export laid out as `../shared/FORMAT.md` says AWS writes one, under `dir`: data files of
/// 26 base32 characters (one empty, as AWS writes for an empty partition), the listing, the
/// summary in AWS's key order, their `.md5` files, `_started`. Returns the export's root.
fn aws_export(dir: &Path, items: &[Item]) -> std::path::PathBuf {
    let id = "01693467621041-a1b2c3d4";
    let root = dir.join("AWSDynamoDB").join(id);
    std::fs::create_dir_all(root.join("data")).unwrap();
    std::fs::write(root.join("_started"), b"").unwrap();
    let (first, second) = items.split_at(items.len() / 2);
    let files = [
        ("ehm3lpyw6e4zfbjpwt3xkivzty", first),
        ("q7dz4aqlmqyhbkfp2rqc5ns7mu", second),
        ("a2b3c4d5e6f7g2h3i4j5k6l7m2", &[][..]),
    ];
    let mut listing = String::new();
    for (name, part) in files {
        let body = gzip(&part.iter().map(json_line).collect::<String>());
        let key = format!("AWSDynamoDB/{id}/data/{name}.json.gz");
        std::fs::write(dir.join(&key), &body).unwrap();
        let md5 = md5_base64(&body);
        let etag = hex(&Md5::digest(&body));
        listing.push_str(&format!(
            "{{\"itemCount\":{},\"md5Checksum\":\"{md5}\",\"etag\":\"{etag}\",\"dataFileS3Key\":\"{key}\"}}\n",
            part.len()
        ));
    }
    std::fs::write(root.join("manifest-files.json"), &listing).unwrap();
    std::fs::write(root.join("manifest-files.md5"), md5_base64(listing.as_bytes())).unwrap();
    let table = "arn:aws:dynamodb:us-east-1:123456789012:table/orders";
    let summary = format!(
        "{{\"version\":\"2020-06-30\",\"exportArn\":\"{table}/export/{id}\",\"startTime\":\"2023-08-31T07:40:21.041Z\",\
         \"endTime\":\"2023-08-31T07:45:03.118Z\",\"tableArn\":\"{table}\",\"tableId\":\"8f1a2c3e-5b6d-4e7f-9a0b-1c2d3e4f5a6b\",\
         \"exportTime\":\"2023-08-31T07:40:21.041Z\",\"s3Bucket\":\"backups\",\"s3Prefix\":null,\"s3SseAlgorithm\":\"AES256\",\
         \"s3SseKmsKeyId\":null,\"manifestFilesS3Key\":\"AWSDynamoDB/{id}/manifest-files.json\",\"billedSizeBytes\":0,\
         \"itemCount\":{},\"outputFormat\":\"DYNAMODB_JSON\"}}",
        items.len()
    );
    std::fs::write(root.join("manifest-summary.json"), &summary).unwrap();
    std::fs::write(root.join("manifest-summary.md5"), md5_base64(summary.as_bytes())).unwrap();
    root
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn an_export_as_aws_writes_it_restores_and_a_key_mismatch_writes_nothing() {
    let standins = Standins::start();
    let dynamodb = standins.dynamodb();
    let mut source = items::edge_cases();
    source.extend(items::ordinary(200));
    // The fixture's items are what dynalite returns for them, so the comparison is exact.
    util::create_table(&dynamodb, "reference", &source).await;
    let scanned = util::scan_all(&dynamodb, "reference").await;
    let dir = tempfile::tempdir().unwrap();
    let root = aws_export(dir.path(), &scanned);
    let root = root.to_str().unwrap();

    // An AWS export holds no description of its table: --create-table needs the key.
    let refused = util::run(standins.command().args(["restore", "--from", root, "--table", "aws", "--create-table"]));
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(stderr(&refused).contains("--key"), "{}", stderr(&refused));

    let output = util::run(standins.command().args([
        "restore",
        "--from",
        root,
        "--table",
        "aws",
        "--create-table",
        "--key",
        "pk:S",
        "--progress",
        "off",
    ]));
    let restored = report(&output);
    assert_eq!(restored["ItemsPut"].as_u64(), Some(scanned.len() as u64));
    assert_eq!(table_items(&dynamodb, "aws").await, table_items(&dynamodb, "reference").await);

    // A key of another type: refused before the table is even created, naming the attribute.
    let wrong = util::run(standins.command().args([
        "restore",
        "--from",
        root,
        "--table",
        "numbered",
        "--create-table",
        "--key",
        "pk:N",
    ]));
    assert_eq!(wrong.status.code(), Some(1), "{}", stderr(&wrong));
    assert!(stderr(&wrong).contains("key attribute \"pk\" is S, but the table's \"pk\" is N"), "{}", stderr(&wrong));
    assert!(stderr(&wrong).contains("nothing was written"), "{}", stderr(&wrong));
    assert!(dynamodb.describe_table().table_name("numbered").send().await.is_err(), "no table was created");

    // An existing table keyed by another attribute: refused, naming it; the table stays empty.
    create_keyed_table(&dynamodb, "by_id", "id").await;
    let other = util::run(standins.command().args(["restore", "--from", root, "--table", "by_id"]));
    assert_eq!(other.status.code(), Some(1), "{}", stderr(&other));
    assert!(stderr(&other).contains("no key attribute \"id\""), "{}", stderr(&other));
    assert!(util::scan_all(&dynamodb, "by_id").await.is_empty());

    // A data file cut short (its manifest updated to match, as a careless copy would): refused,
    // naming the file; nothing written.
    let listing = std::fs::read_to_string(Path::new(root).join("manifest-files.json")).unwrap();
    let first: Value = serde_json::from_str(listing.lines().next().unwrap()).unwrap();
    let data = dir.path().join(first["dataFileS3Key"].as_str().unwrap());
    let bytes = std::fs::read(&data).unwrap();
    std::fs::write(&data, &bytes[..bytes.len() - 10]).unwrap();
    create_keyed_table(&dynamodb, "cut", "pk").await;
    let cut = util::run(standins.command().args(["restore", "--from", root, "--table", "cut"]));
    assert_eq!(cut.status.code(), Some(1), "{}", stderr(&cut));
    let name = data.file_name().unwrap().to_str().unwrap();
    assert!(stderr(&cut).contains(name), "the file is named: {}", stderr(&cut));
    assert!(util::scan_all(&dynamodb, "cut").await.is_empty(), "nothing was written");
}

async fn create_keyed_table(client: &aws_sdk_dynamodb::Client, table: &str, key: &str) {
    use aws_sdk_dynamodb::types::{AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType};
    client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder().attribute_name(key).attribute_type(ScalarAttributeType::S).build().unwrap(),
        )
        .key_schema(KeySchemaElement::builder().attribute_name(key).key_type(KeyType::Hash).build().unwrap())
        .send()
        .await
        .expect("table created");
}

fn versioned(pk: &str, version: u64, note: &str) -> Item {
    HashMap::from([
        ("pk".to_string(), AttributeValue::S(pk.into())),
        ("version".to_string(), AttributeValue::N(version.to_string())),
        ("note".to_string(), AttributeValue::S(note.into())),
    ])
}

#[tokio::test]
async fn a_live_table_keeps_its_newer_items_unless_told_otherwise() {
    let standins = Standins::start();
    let dynamodb = standins.dynamodb();
    let backup: Vec<Item> = (0..40).map(|i| versioned(&format!("k{i:02}"), 3, "backup")).collect();
    util::create_table(&dynamodb, "source", &backup).await;
    let dir = tempfile::tempdir().unwrap();
    let to = dir.path().to_str().unwrap().to_string();
    let root = export_root(&util::run(standins.command().args(["export", "--table", "source", "--to", &to])), &to);

    // The live table: k00-k09 newer than the backup, k10-k14 older, k99 not in the backup.
    let mut live: Vec<Item> = (0..10).map(|i| versioned(&format!("k{i:02}"), 5, "newer")).collect();
    live.extend((10..15).map(|i| versioned(&format!("k{i:02}"), 1, "older")));
    live.push(versioned("k99", 1, "only live"));
    util::create_table(&dynamodb, "live", &live).await;
    let before = table_items(&dynamodb, "live").await;

    let refused = util::run(standins.command().args(["restore", "--from", &root, "--table", "live"]));
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(stderr(&refused).contains("--overwrite, --if-absent or --if-older"), "{}", stderr(&refused));
    assert_eq!(table_items(&dynamodb, "live").await, before, "a refusal writes nothing");

    let output = util::run(standins.command().args([
        "restore",
        "--from",
        &root,
        "--table",
        "live",
        "--if-absent",
        "--client-token",
        "absent",
        "--progress",
        "off",
    ]));
    let absent = report(&output);
    assert_eq!((absent["ItemsPut"].as_u64(), absent["Skipped"].as_u64()), (Some(25), Some(15)), "{absent}");
    let note = |items: &[Item], pk: &str| {
        let item = items.iter().find(|i| i["pk"] == AttributeValue::S(pk.into())).expect("the item");
        item["note"].as_s().unwrap().clone()
    };
    let now = util::scan_all(&dynamodb, "live").await;
    assert_eq!(now.len(), 41);
    assert_eq!(
        (note(&now, "k00"), note(&now, "k12"), note(&now, "k30")),
        ("newer".into(), "older".into(), "backup".into())
    );
    assert_eq!(note(&now, "k99"), "only live");

    let output = util::run(standins.command().args([
        "restore",
        "--from",
        &root,
        "--table",
        "live",
        "--if-older",
        "version",
        "--client-token",
        "older",
        "--progress",
        "off",
    ]));
    let older = report(&output);
    // k10-k14 were older than the backup; k00-k09 are newer, and the rest already the backup's.
    assert_eq!((older["ItemsPut"].as_u64(), older["Skipped"].as_u64()), (Some(5), Some(35)), "{older}");
    let now = util::scan_all(&dynamodb, "live").await;
    assert_eq!(
        (note(&now, "k00"), note(&now, "k12"), note(&now, "k99")),
        ("newer".into(), "backup".into(), "only live".into())
    );

    let output = util::run(standins.command().args([
        "restore",
        "--from",
        &root,
        "--table",
        "live",
        "--overwrite",
        "--progress",
        "off",
    ]));
    report(&output);
    let now = util::scan_all(&dynamodb, "live").await;
    assert_eq!((note(&now, "k00"), note(&now, "k99")), ("backup".into(), "only live".into()));
}

#[tokio::test]
async fn a_restore_killed_at_random_moments_ends_equal_to_the_export() {
    let standins = Standins::start();
    let dynamodb = standins.dynamodb();
    util::create_table(&dynamodb, "source", &items::ordinary(3000)).await;
    let want = table_items(&dynamodb, "source").await;
    standins.create_bucket("exports").await;
    let exported =
        util::run(standins.command().args(["export", "--table", "source", "--to", "s3://exports", "--segments", "16"]));
    let root = export_root(&exported, "s3://exports");
    let restore = || {
        let mut command = standins.command();
        command.args([
            "restore",
            "--from",
            &root,
            "--table",
            "copy",
            "--create-table",
            "--max-wcu",
            "400",
            "--parallelism",
            "4",
            "--progress",
            "off",
        ]);
        command.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
        command
    };
    let mut random = 0x2545_f491_4f6c_dd1du64;
    let mut kills = 0;
    for _ in 0..10 {
        random ^= random << 13;
        random ^= random >> 7;
        random ^= random << 17;
        let wait = Duration::from_millis(300 + random % 2200);
        let mut child = restore().spawn().expect("the restore starts");
        std::thread::sleep(wait);
        match child.try_wait().expect("the restore's status") {
            Some(status) => {
                let output = child.wait_with_output().unwrap();
                assert!(status.success(), "a run failed: {}", String::from_utf8_lossy(&output.stderr));
                break;
            }
            None => {
                child.kill().expect("SIGKILL");
                child.wait().unwrap();
                kills += 1;
            }
        }
    }
    assert!(kills >= 3, "the restore was killed mid-way at least a few times ({kills})");
    let finished = report(&util::run(&mut restore()));
    assert_eq!(table_items(&dynamodb, "copy").await, want, "after {kills} kills the table is the export");
    assert_eq!(finished["DataFiles"].as_u64(), Some(16), "{finished}");
    assert!(finished["ResumedDataFiles"].as_u64().unwrap() > 0, "the last run carried on: {finished}");
}

#[tokio::test]
async fn throttling_and_server_errors_on_the_writes_slow_the_restore_but_it_is_exact() {
    let standins = Standins::start();
    let dynamodb = standins.dynamodb();
    util::create_table(&dynamodb, "source", &items::ordinary(800)).await;
    let want = table_items(&dynamodb, "source").await;
    let dir = tempfile::tempdir().unwrap();
    let to = dir.path().to_str().unwrap().to_string();
    let root = export_root(&util::run(standins.command().args(["export", "--table", "source", "--to", &to])), &to);
    let proxy = util::fault_proxy(
        standins.dynamodb_url(),
        &["--seed", "11", "--throttle", "0.25", "--error500", "0.1", "--dynamodb-ops", "BatchWriteItem"],
    );
    let mut command =
        util::ddb_export(&[("AWS_ENDPOINT_URL_DYNAMODB", &proxy.url), ("AWS_ENDPOINT_URL_S3", standins.s3_url())]);
    command.args(["restore", "--from", &root, "--table", "copy", "--create-table", "--progress", "off"]);
    let restored = report(&util::run(&mut command));
    assert_eq!(table_items(&dynamodb, "copy").await, want);
    let faults = util::fault_counts(&proxy);
    assert!(faults["throttle"].as_u64().unwrap() > 0 && faults["error500"].as_u64().unwrap() > 0, "{faults}");
    assert!(restored["Throttles"].as_u64().unwrap() > 0, "{restored}");
}

fn v(pk: &str, value: u64) -> Item {
    HashMap::from([
        ("pk".to_string(), AttributeValue::S(pk.into())),
        ("v".to_string(), AttributeValue::N(value.to_string())),
        ("tags".to_string(), AttributeValue::Ss(vec![format!("t{value}")])),
    ])
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

fn iso(ms: u64) -> String {
    humantime::format_rfc3339_millis(std::time::UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// Long enough that moto's millisecond stream times fall on one side of a boundary.
async fn gap() {
    tokio::time::sleep(Duration::from_millis(40)).await;
}

#[tokio::test]
async fn a_full_export_and_two_incremental_ones_restore_the_table_as_of_the_last_one_s_end() {
    let moto = util::moto();
    let dynamodb = util::dynamodb_client(&moto.url);
    util::s3_client(&moto.url).create_bucket().bucket("backups").send().await.expect("bucket created");
    util::create_table_with_stream(&dynamodb, "orders", Some(aws_sdk_dynamodb::types::StreamViewType::NewAndOldImages))
        .await;
    let put = async |item: Item| {
        dynamodb.put_item().table_name("orders").set_item(Some(item)).send().await.expect("put");
    };
    let delete = async |pk: &str| {
        let key = HashMap::from([("pk".to_string(), AttributeValue::S(pk.into()))]);
        dynamodb.delete_item().table_name("orders").set_key(Some(key)).send().await.expect("delete");
    };
    let ddb_export = |args: &[&str]| {
        let mut command = util::ddb_export(&[("AWS_ENDPOINT_URL", &moto.url)]);
        command.args(args);
        util::run(&mut command)
    };
    for i in 0..30 {
        put(v(&format!("k{i:02}"), 0)).await;
    }
    gap().await;
    let full = ddb_export(&["export", "--table", "orders", "--to", "s3://backups/daily"]);
    let full_root = export_root(&full, "s3://backups/daily");
    let export_time = util::completed(&full).0["ExportDescription"]["ExportTime"].as_str().unwrap().to_string();

    // The first window: updates, deletes, inserts.
    for i in 0..10 {
        put(v(&format!("k{i:02}"), 1)).await;
    }
    for i in 10..15 {
        delete(&format!("k{i:02}")).await;
    }
    put(v("new1", 1)).await;
    gap().await;
    let t1 = now_ms();
    gap().await;
    // The second: some of the first's changes changed again, a deleted item back.
    for i in 0..5 {
        put(v(&format!("k{i:02}"), 2)).await;
    }
    put(v("k10", 2)).await;
    delete("new1").await;
    delete("k20").await;
    put(v("new2", 2)).await;
    gap().await;
    let t2 = now_ms();
    gap().await;
    let want = table_items(&dynamodb, "orders").await;

    let incremental = |from: &str, until: &str| {
        let output = ddb_export(&[
            "export",
            "--table",
            "orders",
            "--to",
            "s3://backups/daily",
            "--incremental",
            "--from",
            from,
            "--until",
            until,
        ]);
        export_root(&output, "s3://backups/daily")
    };
    let first = incremental(&export_time, &iso(t1));
    let second = incremental(&iso(t1), &iso(t2));

    let restored = report(&ddb_export(&[
        "restore",
        "--from",
        &full_root,
        "--from",
        &first,
        "--from",
        &second,
        "--table",
        "copy",
        "--create-table",
        "--progress",
        "off",
    ]));
    assert_eq!(table_items(&dynamodb, "copy").await, want, "the chain restores the table as of its end");
    assert_eq!(restored["Exports"].as_array().unwrap().len(), 3);
    assert!(restored["ItemsDeleted"].as_u64().unwrap() >= 6, "{restored}");

    // Found under the prefix: the same chain.
    let found = report(&ddb_export(&[
        "restore",
        "--from",
        "s3://backups/daily",
        "--table",
        "found",
        "--create-table",
        "--progress",
        "off",
    ]));
    assert_eq!(found["Exports"], restored["Exports"], "{found}");
    assert_eq!(table_items(&dynamodb, "found").await, want);

    // A gap: the first incremental left out. Refused, naming both exports; nothing created.
    let gapped =
        ddb_export(&["restore", "--from", &full_root, "--from", &second, "--table", "gapped", "--create-table"]);
    assert_eq!(gapped.status.code(), Some(2), "{}", stderr(&gapped));
    let text = stderr(&gapped);
    assert!(text.contains("a gap") && text.contains(&full_root) && text.contains(&second), "{text}");
    assert!(dynamodb.describe_table().table_name("gapped").send().await.is_err(), "no table was created");
}

#[tokio::test]
async fn a_fanned_out_restore_runs_its_shards_anywhere_in_stage_order_and_finalizes_once_all_are_done() {
    let moto = util::moto();
    let dynamodb = util::dynamodb_client(&moto.url);
    util::s3_client(&moto.url).create_bucket().bucket("backups").send().await.expect("bucket created");
    util::create_table_with_stream(&dynamodb, "orders", Some(aws_sdk_dynamodb::types::StreamViewType::NewAndOldImages))
        .await;
    let ddb_export = |args: &[&str]| {
        let mut command = util::ddb_export(&[("AWS_ENDPOINT_URL", &moto.url)]);
        command.args(args);
        util::run(&mut command)
    };
    util::put_items(&dynamodb, "orders", &(0..60).map(|i| v(&format!("k{i:02}"), 0)).collect::<Vec<_>>()).await;
    gap().await;
    let full = ddb_export(&["export", "--table", "orders", "--to", "s3://backups/f", "--segments", "4"]);
    let full_root = export_root(&full, "s3://backups/f");
    let export_time = util::completed(&full).0["ExportDescription"]["ExportTime"].as_str().unwrap().to_string();
    util::put_items(&dynamodb, "orders", &(0..20).map(|i| v(&format!("k{i:02}"), 1)).collect::<Vec<_>>()).await;
    gap().await;
    let until = iso(now_ms());
    gap().await;
    let incremental = ddb_export(&[
        "export",
        "--table",
        "orders",
        "--to",
        "s3://backups/f",
        "--incremental",
        "--from",
        &export_time,
        "--until",
        &until,
    ]);
    let incremental_root = export_root(&incremental, "s3://backups/f");
    let want = table_items(&dynamodb, "orders").await;

    let planned = ddb_export(&[
        "restore-plan",
        "--from",
        &full_root,
        "--from",
        &incremental_root,
        "--table",
        "fanned",
        "--create-table",
        "--files-per-shard",
        "1",
    ]);
    assert!(planned.status.success(), "{}", stderr(&planned));
    let plan = util::stdout_json(&planned);
    let location = plan["RestoreLocation"].as_str().unwrap().to_string();
    let stages: Vec<Vec<u64>> = serde_json::from_value(plan["Stages"].clone()).unwrap();
    assert_eq!(stages.len(), 2, "the full export's shards, then the incremental one's: {plan}");
    assert!(stages[0].len() >= 2, "one shard a data file: {plan}");
    assert!(util::scan_all(&dynamodb, "fanned").await.is_empty(), "planning writes no item");

    let shard =
        |id: u64| ddb_export(&["restore-shard", "--plan", &location, "--shard", &id.to_string(), "--progress", "off"]);
    let finalize = || ddb_export(&["restore-finalize", "--plan", &location]);
    // The incremental export's shard first: refused, to be retried once the full export's are done.
    let early = shard(stages[1][0]);
    assert_eq!(early.status.code(), Some(1), "{}", stderr(&early));
    assert!(stderr(&early).contains("unfinished"), "{}", stderr(&early));
    // The first stage, in reverse order, one shard twice (a retried worker).
    for id in stages[0].iter().rev() {
        assert!(shard(*id).status.success());
    }
    let again = shard(stages[0][0]);
    assert_eq!(util::stdout_json(&again)["ResumedDataFiles"], 1, "a finished shard is not written again");
    let not_yet = finalize();
    assert_eq!(not_yet.status.code(), Some(1), "{}", stderr(&not_yet));
    assert!(stderr(&not_yet).contains(&format!("unfinished: {}", stages[1][0])), "{}", stderr(&not_yet));
    for id in &stages[1] {
        assert!(shard(*id).status.success());
    }
    let report = util::stdout_json(&finalize());
    assert_eq!(table_items(&dynamodb, "fanned").await, want, "the fanned-out restore is the table");
    assert_eq!(report["ItemsPut"].as_u64(), Some(80), "{report}");
    assert_eq!(util::stdout_json(&finalize()), report, "finalize again: the same report");
}
