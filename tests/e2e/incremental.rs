//! `ddb-export export --incremental`, through the real binary, against moto (DynamoDB, DynamoDB
//! Streams and S3 on one endpoint): a known sequence of writes before, inside and after a
//! window; the change records of each export are exactly what the rules give from the test's own
//! log of writes (read back by the independent checker, as a set); the summary, the shared data
//! folder, `describe` and `verify`. And the refusals: no stream, a stream of the wrong view, a
//! window older than the stream.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue, StreamViewType};
use serde_json::{Value, json};

use crate::util::{self, Server};

type Item = HashMap<String, AttributeValue>;

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

/// `2024-05-01T12:00:00.250Z`, as `--from`/`--until` take it and the summary writes it.
fn iso(ms: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

fn streams_client(endpoint: &str) -> aws_sdk_dynamodbstreams::Client {
    let credentials =
        aws_sdk_dynamodb::config::Credentials::new(util::ACCESS_KEY, util::SECRET_KEY, None, None, "test");
    let config = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(util::REGION))
        .credentials_provider(aws_sdk_dynamodb::config::SharedCredentialsProvider::new(credentials))
        .endpoint_url(endpoint)
        .build();
    aws_sdk_dynamodbstreams::Client::new(&config)
}

/// An item: `pk` and the attributes given.
fn item(pk: &str, attrs: &[(&str, AttributeValue)]) -> Item {
    let mut item: Item = attrs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
    item.insert("pk".into(), AttributeValue::S(pk.into()));
    item
}

fn n(text: &str) -> AttributeValue {
    AttributeValue::N(text.into())
}

/// An item with every attribute type (numbers spelled as DynamoDB spells them, so an ION
/// export's numbers read back the same).
fn rich(pk: &str) -> Item {
    item(
        pk,
        &[
            ("s", AttributeValue::S("é\"\n".into())),
            ("n", n("-12.5")),
            ("big", n("12345678901234567890123456789012345678")),
            ("b", AttributeValue::B(Blob::new(vec![0, 255, 7]))),
            ("t", AttributeValue::Bool(true)),
            ("z", AttributeValue::Null(true)),
            ("ss", AttributeValue::Ss(vec!["x".into(), "a".into()])),
            ("ns", AttributeValue::Ns(vec!["3".into(), "1.5".into()])),
            ("bs", AttributeValue::Bs(vec![Blob::new(vec![1]), Blob::new(vec![])])),
            ("l", AttributeValue::L(vec![n("1"), AttributeValue::S("two".into()), AttributeValue::L(vec![])])),
            ("m", AttributeValue::M(HashMap::from([("inner".to_string(), AttributeValue::Bool(false))]))),
            ("weird name.with:chars", AttributeValue::S("x".into())),
        ],
    )
}

/// One write the test made, with the item before and after it.
#[derive(Debug, Clone)]
struct Write {
    pk: String,
    before: Option<Item>,
    after: Option<Item>,
    /// The stream record's time, µs (filled in from the stream).
    micros: u64,
}

/// The table as the test wrote it, and every write in order.
struct Writer {
    client: aws_sdk_dynamodb::Client,
    table: String,
    state: HashMap<String, Item>,
    log: Vec<Write>,
}

impl Writer {
    async fn put(&mut self, item: Item) {
        let pk = match &item["pk"] {
            AttributeValue::S(s) => s.clone(),
            other => panic!("{other:?}"),
        };
        self.client.put_item().table_name(&self.table).set_item(Some(item.clone())).send().await.expect("put");
        let before = self.state.insert(pk.clone(), item.clone());
        assert_ne!(before.as_ref(), Some(&item), "a put that changes nothing writes no stream record");
        self.log.push(Write { pk, before, after: Some(item), micros: 0 });
    }

    async fn delete(&mut self, pk: &str) {
        let key = HashMap::from([("pk".to_string(), AttributeValue::S(pk.into()))]);
        self.client.delete_item().table_name(&self.table).set_key(Some(key)).send().await.expect("delete");
        let before = self.state.remove(pk);
        assert!(before.is_some(), "deleting {pk}, which is not there, writes no stream record");
        self.log.push(Write { pk: pk.into(), before, after: None, micros: 0 });
    }
}

/// Reads the table's stream with the SDK (not through ddb-export) and sets each write's time
/// from its record, checking that the stream holds exactly the test's writes, in order.
async fn stream_times(endpoint: &str, dynamodb: &aws_sdk_dynamodb::Client, table: &str, log: &mut [Write]) {
    let streams = streams_client(endpoint);
    let arn =
        dynamodb.describe_table().table_name(table).send().await.unwrap().table.unwrap().latest_stream_arn.unwrap();
    let description = streams.describe_stream().stream_arn(&arn).send().await.unwrap().stream_description.unwrap();
    let mut records = Vec::new();
    for shard in description.shards.unwrap_or_default() {
        let mut iterator = streams
            .get_shard_iterator()
            .stream_arn(&arn)
            .shard_id(shard.shard_id.unwrap())
            .shard_iterator_type(aws_sdk_dynamodbstreams::types::ShardIteratorType::TrimHorizon)
            .send()
            .await
            .unwrap()
            .shard_iterator;
        while let Some(current) = iterator {
            let output = streams.get_records().shard_iterator(current).send().await.unwrap();
            let page = output.records.unwrap_or_default();
            if page.is_empty() {
                break;
            }
            records.extend(page);
            iterator = output.next_shard_iterator;
        }
    }
    assert_eq!(records.len(), log.len(), "one stream record per write");
    for (record, write) in records.iter().zip(log.iter_mut()) {
        let stream_record = record.dynamodb.as_ref().unwrap();
        let keys = stream_record.keys.as_ref().unwrap();
        assert_eq!(keys.get("pk"), Some(&aws_sdk_dynamodbstreams::types::AttributeValue::S(write.pk.clone())));
        let time = stream_record.approximate_creation_date_time.unwrap();
        // To the nearest µs: the SDK reads the epoch seconds through an f64.
        write.micros = time.secs() as u64 * 1_000_000 + (u64::from(time.subsec_nanos()) + 500) / 1000;
    }
}

/// What the rules give for the writes whose time is in `[from_ms, to_ms)`: per item, one change
/// record with its last write's time, `Keys`, the final image (when it exists at the end) and,
/// with NEW_AND_OLD_IMAGES, the image before its first write in the window (when it existed);
/// none for an item inserted and deleted inside the window. Canonical typed JSON, sorted.
fn expected(log: &[Write], from_ms: u64, to_ms: u64, new_and_old: bool) -> Vec<String> {
    let mut by_item: HashMap<&str, Vec<&Write>> = HashMap::new();
    for write in log.iter().filter(|w| (from_ms * 1000..to_ms * 1000).contains(&w.micros)) {
        by_item.entry(&write.pk).or_default().push(write);
    }
    let records = by_item.into_iter().filter_map(|(pk, writes)| {
        let (first, last) = (writes[0], writes[writes.len() - 1]);
        if first.before.is_none() && last.after.is_none() {
            return None;
        }
        let mut record = json!({
            "Metadata": {"WriteTimestampMicros": {"N": last.micros.to_string()}},
            "Keys": {"pk": {"S": pk}},
        });
        if let Some(after) = &last.after {
            record["NewImage"] = util::canonical(after);
        }
        if let (true, Some(before)) = (new_and_old, &first.before) {
            record["OldImage"] = util::canonical(before);
        }
        Some(record)
    });
    util::sorted_canonical(records)
}

/// The export's description on stdout, checked for the incremental shape.
fn completed(output: &std::process::Output, from_ms: u64, to_ms: Option<u64>, view: &str, format: &str) -> Value {
    assert!(output.status.success(), "the export failed: {}", String::from_utf8_lossy(&output.stderr));
    let json = util::stdout_json(output);
    let d = &json["ExportDescription"];
    assert_eq!(d["ExportStatus"], "COMPLETED", "{d}");
    assert_eq!(d["ExportType"], "INCREMENTAL_EXPORT", "{d}");
    assert_eq!(d["ExportFormat"], format, "{d}");
    assert!(d.get("ExportTime").is_none(), "an incremental export has no ExportTime: {d}");
    let spec = &d["IncrementalExportSpecification"];
    assert_eq!(spec["ExportViewType"], view, "{d}");
    let cli_time = |ms: u64| iso(ms).replace('Z', "000+00:00");
    assert_eq!(spec["ExportFromTime"], cli_time(from_ms), "{d}");
    if let Some(to_ms) = to_ms {
        assert_eq!(spec["ExportToTime"], cli_time(to_ms), "{d}");
    }
    json
}

struct Exported {
    export_id: String,
    summary_key: String,
    summary: Value,
    /// The data file keys its manifest lists.
    files: Vec<String>,
    /// Change records as the independent checker read them, canonical and sorted.
    records: Vec<String>,
}

/// Downloads the bucket, checks the export with `tests/check_export.py` and reads its records.
async fn read_back(s3: &aws_sdk_s3::Client, description: &Value) -> Exported {
    let d = &description["ExportDescription"];
    let summary_key = d["ExportManifest"].as_str().unwrap().to_string();
    let export_id = d["ExportArn"].as_str().unwrap().rsplit('/').next().unwrap().to_string();
    let copy = tempfile::tempdir().unwrap();
    util::download(s3, "changes", "", copy.path()).await;
    let records = util::independent_check(copy.path(), &summary_key);
    let summary: Value = serde_json::from_slice(&std::fs::read(copy.path().join(&summary_key)).unwrap()).unwrap();
    let root = summary_key.trim_end_matches("/manifest-summary.json");
    let listing = std::fs::read_to_string(copy.path().join(root).join("manifest-files.json")).unwrap();
    let files = listing
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["dataFileS3Key"].as_str().unwrap().to_string())
        .collect();
    Exported { export_id, summary_key, summary, files, records }
}

fn check_summary(exported: &Exported, from_ms: u64, to_ms: u64, view: &str, format: &str, items: usize) {
    let s = &exported.summary;
    assert_eq!(s["version"], "2023-08-01");
    assert_eq!(s["exportType"], "INCREMENTAL_EXPORT");
    assert_eq!(s["outputView"], view);
    assert_eq!(s["outputFormat"], format);
    assert_eq!(s["exportFromTime"], iso(from_ms));
    assert_eq!(s["exportToTime"], iso(to_ms));
    assert!(s.get("exportTime").is_none());
    assert_eq!(s["itemCount"].as_u64(), Some(items as u64));
    assert_eq!(s["s3Prefix"], "inc");
    assert_eq!(s["manifestFilesS3Key"], format!("inc/AWSDynamoDB/{}/manifest-files.json", exported.export_id));
    assert!(!exported.files.is_empty());
    for file in &exported.files {
        assert!(file.starts_with("inc/AWSDynamoDB/data/"), "{file} is not in the shared data folder");
    }
}

/// `ddb-export verify` on the export, in moto's bucket.
fn verify(moto: &Server, export_id: &str, items: usize) {
    let output = util::run(
        util::ddb_export(&[("AWS_ENDPOINT_URL", &moto.url)])
            .args(["verify", &format!("s3://changes/inc/AWSDynamoDB/{export_id}")]),
    );
    let report = util::stdout_json(&output);
    assert!(output.status.success(), "verify failed: {report}");
    assert_eq!(report["Verified"], true, "{report}");
    assert_eq!(report["Items"].as_u64(), Some(items as u64), "{report}");
}

/// Sleeps long enough that moto's millisecond stream times fall on one side of a boundary.
async fn gap() {
    tokio::time::sleep(Duration::from_millis(40)).await;
}

#[tokio::test]
async fn the_change_records_are_the_window_s_writes_compacted_per_item() {
    let moto = util::moto();
    let dynamodb = util::dynamodb_client(&moto.url);
    let s3 = util::s3_client(&moto.url);
    s3.create_bucket().bucket("changes").send().await.expect("bucket created");
    util::create_table_with_stream(&dynamodb, "orders", Some(StreamViewType::NewAndOldImages)).await;
    let mut w = Writer { client: dynamodb.clone(), table: "orders".into(), state: HashMap::new(), log: Vec::new() };
    let v = |pk: &str, value: &str| item(pk, &[("v", n(value))]);

    // Before the window.
    for pk in ["a", "b", "e", "f", "h", "j"] {
        w.put(v(pk, "0")).await;
    }
    w.put(v("j", "1")).await; // j is updated before the window: its OldImage is this.
    w.put(v("k", "0")).await;
    w.delete("k").await; // k is gone before the window, and comes back in it.
    gap().await;
    let from_ms = now_ms();
    gap().await;

    // Inside the window.
    w.put(v("a", "1")).await; // a: several updates.
    w.delete("b").await; // b: deleted.
    w.put(rich("c")).await; // c: inserted, every attribute type.
    w.put(v("d", "1")).await; // d: inserted and deleted: no record.
    w.put(v("a", "2")).await;
    w.delete("d").await;
    w.delete("f").await; // f: deleted and inserted again: an update.
    w.put(v("f", "9")).await;
    w.put(v("g", "1")).await; // g: inserted, then updated: an insert.
    w.put(item("g", &[("v", n("2")), ("more", AttributeValue::Ss(vec!["x".into()]))])).await;
    w.put(v("h", "1")).await; // h: updated, then deleted after the window.
    w.put(v("j", "2")).await;
    w.put(v("k", "1")).await; // k: inserted (it did not exist when the window began).
    w.put(v("a", "3")).await;
    gap().await;
    let to_ms = now_ms();
    gap().await;

    // After the window.
    w.put(v("a", "4")).await;
    w.put(v("e", "1")).await;
    w.delete("h").await;
    w.put(v("i", "1")).await;

    stream_times(&moto.url, &dynamodb, "orders", &mut w.log).await;
    // The stream's times put each write on the side of the window the test wrote it on.
    let in_window: Vec<bool> = w.log.iter().map(|x| (from_ms * 1000..to_ms * 1000).contains(&x.micros)).collect();
    assert_eq!(in_window, [vec![false; 9], vec![true; 14], vec![false; 4]].concat(), "{:?}", w.log);

    let export = |args: &[&str]| {
        let mut command = util::ddb_export(&[("AWS_ENDPOINT_URL", &moto.url)]);
        command.args(["export", "--table", "orders", "--to", "s3://changes/inc", "--incremental"]).args(args);
        util::run(&mut command)
    };
    let (from, to) = (iso(from_ms), iso(to_ms));

    // NEW_AND_OLD_IMAGES (the default view), DYNAMODB_JSON.
    let output = export(&["--from", &from, "--until", &to]);
    let description = completed(&output, from_ms, Some(to_ms), "NEW_AND_OLD_IMAGES", "DYNAMODB_JSON");
    let first = read_back(&s3, &description).await;
    let want = expected(&w.log, from_ms, to_ms, true);
    assert_eq!(want.len(), 8, "a b c f g h j k (not d): {want:#?}");
    assert_eq!(first.records, want, "the change records differ from the rules");
    check_summary(&first, from_ms, to_ms, "NEW_AND_OLD_IMAGES", "DYNAMODB_JSON", want.len());
    verify(&moto, &first.export_id, want.len());

    // NEW_IMAGE, ION, the window's times as epoch seconds.
    let epoch = |ms: u64| format!("{}.{:03}", ms / 1000, ms % 1000);
    let output =
        export(&["--from", &epoch(from_ms), "--until", &epoch(to_ms), "--view", "new-image", "--format", "ion"]);
    let description = completed(&output, from_ms, Some(to_ms), "NEW_IMAGE", "ION");
    let second = read_back(&s3, &description).await;
    let want = expected(&w.log, from_ms, to_ms, false);
    assert_eq!(second.records, want, "the ION change records differ from the rules");
    check_summary(&second, from_ms, to_ms, "NEW_IMAGE", "ION", want.len());
    verify(&moto, &second.export_id, want.len());

    // Empty GetRecords pages (as AWS may return before a shard's records): nothing is missed.
    let empties = util::fault_proxy(&moto.url, &["--seed", "3", "--empty-records", "0.3"]);
    let mut command =
        util::ddb_export(&[("AWS_ENDPOINT_URL", &moto.url), ("AWS_ENDPOINT_URL_DYNAMODB_STREAMS", &empties.url)]);
    command.args(["export", "--table", "orders", "--to", "s3://changes/empties", "--incremental"]);
    let output = util::run(command.args(["--from", &from, "--until", &to]));
    let description = completed(&output, from_ms, Some(to_ms), "NEW_AND_OLD_IMAGES", "DYNAMODB_JSON");
    assert_eq!(read_back(&s3, &description).await.records, expected(&w.log, from_ms, to_ms, true));
    let counts = util::fault_counts(&empties);
    assert!(counts["empty_records"].as_u64().unwrap() >= 1, "{counts}");

    // Up to now (no --until): the writes after the window too; the stream is read until caught up.
    let output = export(&["--from", &from, "--client-token", "nightly"]);
    let description = completed(&output, from_ms, None, "NEW_AND_OLD_IMAGES", "DYNAMODB_JSON");
    let third = read_back(&s3, &description).await;
    let end_ms = humantime::parse_rfc3339(third.summary["exportToTime"].as_str().unwrap()).unwrap();
    let end_ms = end_ms.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
    assert!(end_ms > to_ms);
    let want = expected(&w.log, from_ms, end_ms, true);
    assert_eq!(want.len(), 10, "now with e and i: {want:#?}");
    assert_eq!(third.records, want, "the change records up to now differ from the rules");
    verify(&moto, &third.export_id, want.len());

    // The same token again: the same export, nothing written.
    let again = export(&["--from", &from, "--client-token", "nightly"]);
    assert!(again.status.success());
    assert_eq!(
        util::stdout_json(&again)["ExportDescription"]["ExportArn"],
        description["ExportDescription"]["ExportArn"]
    );
    // Another window with that token is refused.
    let conflict = export(&["--from", &from, "--until", &to, "--client-token", "nightly"]);
    assert!(!conflict.status.success());
    assert!(String::from_utf8_lossy(&conflict.stderr).contains("IdempotentParameterMismatch"));

    // A run that fails (every data file PUT refused) is carried on by the same command: the same
    // export, started over, its failure forgotten.
    let proxy = util::fault_proxy(
        &moto.url,
        &["--only", "s3-put", "--path-contains", "/data/", "--always", "--error-response", "403:AccessDenied"],
    );
    let retry = ["--from", from.as_str(), "--until", to.as_str(), "--client-token", "retry"];
    let mut command = util::ddb_export(&[("AWS_ENDPOINT_URL", &moto.url), ("AWS_ENDPOINT_URL_S3", &proxy.url)]);
    command.args(["export", "--table", "orders", "--to", "s3://changes/inc", "--incremental"]).args(retry);
    let failed = util::run(&mut command);
    assert!(!failed.status.success());
    let failed = util::stdout_json(&failed);
    assert_eq!(failed["ExportDescription"]["ExportStatus"], "FAILED", "{failed}");
    drop(proxy);
    let output = export(&retry);
    let description = completed(&output, from_ms, Some(to_ms), "NEW_AND_OLD_IMAGES", "DYNAMODB_JSON");
    assert_eq!(description["ExportDescription"]["ExportArn"], failed["ExportDescription"]["ExportArn"]);
    let fourth = read_back(&s3, &description).await;
    assert_eq!(fourth.records, first.records);
    verify(&moto, &fourth.export_id, first.records.len());

    // The shared data folder holds the exports' files, and no export has a data/ of its own.
    let copy = tempfile::tempdir().unwrap();
    util::download(&s3, "changes", "inc/", copy.path()).await;
    let mut data: Vec<String> = util::keys_under(copy.path()).into_iter().filter(|k| k.contains("/data/")).collect();
    data.sort();
    let mut listed: Vec<String> =
        [&first.files, &second.files, &third.files, &fourth.files].into_iter().flatten().cloned().collect();
    listed.sort();
    assert_eq!(data, listed);

    // `describe` reads the summary back in the AWS CLI's shape.
    let described = util::run(util::ddb_export(&[("AWS_ENDPOINT_URL", &moto.url)]).args([
        "describe",
        "s3://changes/inc",
        "--export-id",
        &second.export_id,
    ]));
    let d = &util::stdout_json(&described)["ExportDescription"];
    assert_eq!(d["ExportType"], "INCREMENTAL_EXPORT");
    assert_eq!(d["ExportManifest"], second.summary_key.as_str());
    assert_eq!(d["IncrementalExportSpecification"]["ExportViewType"], "NEW_IMAGE");
    assert!(d.get("ExportTime").is_none());
}

#[tokio::test]
async fn windows_the_stream_cannot_serve_are_refused_before_anything_is_written() {
    let moto = util::moto();
    let dynamodb = util::dynamodb_client(&moto.url);
    let s3 = util::s3_client(&moto.url);
    s3.create_bucket().bucket("changes").send().await.expect("bucket created");
    util::create_table_with_stream(&dynamodb, "nostream", None).await;
    util::create_table_with_stream(&dynamodb, "keysonly", Some(StreamViewType::KeysOnly)).await;
    util::create_table_with_stream(&dynamodb, "newimage", Some(StreamViewType::NewImage)).await;
    util::create_table_with_stream(&dynamodb, "streamed", Some(StreamViewType::NewAndOldImages)).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let now = now_ms();
    let export = |table: &str, args: &[&str]| {
        let mut command = util::ddb_export(&[("AWS_ENDPOINT_URL", &moto.url)]);
        command.args(["export", "--table", table, "--to", "s3://changes/refused", "--incremental"]).args(args);
        let output = util::run(&mut command);
        // A window that is no window (its end before its start, or in the future) is a usage
        // error (2); one the table's stream cannot serve, a failure (1).
        let usage = args.contains(&"--until");
        assert_eq!(output.status.code(), Some(if usage { 2 } else { 1 }), "{table} {args:?} was not refused");
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let recent = iso(now - 1000);

    let message = export("nostream", &["--from", &recent]);
    assert!(message.contains("has no DynamoDB stream"), "{message}");
    let message = export("keysonly", &["--from", &recent]);
    assert!(message.contains("KEYS_ONLY") && message.contains("NEW_AND_OLD_IMAGES"), "{message}");
    let message = export("newimage", &["--from", &recent]);
    assert!(message.contains("--view new-image works"), "{message}");

    // Older than the stream: it was created a moment ago.
    let message = export("streamed", &["--from", &iso(now - 3_600_000)]);
    assert!(message.contains("was created at") && message.contains("can serve windows from"), "{message}");
    // Older than any stream keeps.
    let message = export("streamed", &["--from", &((now / 1000) - 2 * 86_400).to_string()]);
    assert!(message.contains("24 hours"), "{message}");
    // Not a window.
    let message = export("streamed", &["--from", &recent, "--until", &iso(now - 2000)]);
    assert!(message.contains("--until"), "{message}");
    let message = export("streamed", &["--from", &recent, "--until", &iso(now + 3_600_000)]);
    assert!(message.contains("in the future"), "{message}");

    // Nothing was written for any of them.
    let listed = s3.list_objects_v2().bucket("changes").send().await.unwrap();
    assert_eq!(listed.key_count(), Some(0), "{:?}", listed.contents());

    // Flags that make no sense with a stream are usage errors.
    let mut command = util::ddb_export(&[("AWS_ENDPOINT_URL", &moto.url)]);
    command.args(["export", "--table", "streamed", "--to", "s3://changes/x", "--incremental", "--from", &recent]);
    let output = util::run(command.args(["--segments", "2"]));
    assert_eq!(output.status.code(), Some(2));
}
