//! `--consistent`: the export equals the table at its cut time T exactly, while another process
//! keeps inserting, updating and deleting during the export. moto serves DynamoDB with Streams
//! and S3; `tests/consistent_writer.py` writes and logs what it wrote and when, and the state at
//! T is rebuilt from that log alone.

use std::collections::{BTreeMap, HashMap};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, UNIX_EPOCH};

use aws_sdk_dynamodb::types::{AttributeValue, StreamSpecification, StreamViewType};
use serde_json::Value;

use crate::util;

const KEYS: usize = 400;

/// The two states a key may have had at the cut, when a write was in flight then.
type InFlight = HashMap<String, (Option<Value>, Option<Value>)>;

/// The table's items as the writer's log says they were at `cut` (epoch seconds): writes that
/// answered before it are in, writes sent after it are out. A write in flight at the cut could
/// be either: its key is returned in the second map with both possible states.
fn state_at(initial: &BTreeMap<String, Value>, log: &str, cut: f64) -> (BTreeMap<String, Value>, InFlight) {
    let mut state = initial.clone();
    let mut in_flight = HashMap::new();
    for line in log.lines() {
        let entry: Value = serde_json::from_str(line).unwrap();
        let (t0, t1) = (entry["t0"].as_f64().unwrap(), entry["t1"].as_f64().unwrap());
        let pk = entry["pk"].as_str().unwrap().to_string();
        let after = match entry["op"].as_str().unwrap() {
            "put" => Some(entry["item"].clone()),
            _ => None,
        };
        if t1 < cut {
            match &after {
                Some(item) => state.insert(pk, item.clone()),
                None => state.remove(&pk),
            };
        } else if t0 < cut {
            in_flight.insert(pk.clone(), (state.get(&pk).cloned(), after));
        }
    }
    (state, in_flight)
}

fn canonical_item(item: &Value) -> String {
    // check_export.py's dump and the writer's typed JSON, in one shape: sorted keys.
    let sorted: BTreeMap<String, Value> =
        item.as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    serde_json::to_string(&sorted).unwrap()
}

#[tokio::test]
async fn a_consistent_export_is_the_table_at_its_cut_while_writers_keep_writing() {
    let moto = util::moto();
    let dynamodb = util::dynamodb_client(&moto.url);
    // Seeded before its stream is enabled: the stream then holds only the writer's changes.
    util::create_table_with_stream(&dynamodb, "live", None).await;
    let mut initial = BTreeMap::new();
    let seed: Vec<_> = (0..KEYS)
        .map(|i| {
            let item = HashMap::from([
                ("pk".to_string(), AttributeValue::S(format!("k{i}"))),
                ("version".to_string(), AttributeValue::N("0".into())),
                ("note".to_string(), AttributeValue::S("seeded".into())),
            ]);
            initial.insert(format!("k{i}"), util::canonical(&item));
            item
        })
        .collect();
    util::put_items(&dynamodb, "live", &seed).await;
    let stream =
        StreamSpecification::builder().stream_enabled(true).stream_view_type(StreamViewType::NewAndOldImages).build();
    dynamodb.update_table().table_name("live").stream_specification(stream.unwrap()).send().await.expect("stream on");
    std::thread::sleep(Duration::from_secs(3));
    let s3 = util::s3_client(&moto.url);
    s3.create_bucket().bucket("exports").send().await.expect("bucket created");

    // The writer runs before, during and after the export.
    let work = tempfile::tempdir().unwrap();
    let (log_path, stop_file) = (work.path().join("writes.jsonl"), work.path().join("stop"));
    let mut writer = Command::new(util::checker_python())
        .arg(util::workspace().join("tests/consistent_writer.py"))
        .args([&moto.url, "live", &KEYS.to_string()])
        .arg(&log_path)
        .arg(&stop_file)
        .stdout(Stdio::piped())
        .spawn()
        .expect("the writer starts");
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    let output = util::run(util::ddb_export(&[("AWS_ENDPOINT_URL", &moto.url)]).args([
        "export",
        "--table",
        "live",
        "--to",
        "s3://exports/at-t",
        "--consistent",
        "--segments",
        "4",
        "--file-size",
        "2000",
        "--no-read-limit",
    ]));
    let took = started.elapsed();
    std::thread::sleep(Duration::from_secs(1));
    std::fs::write(&stop_file, b"").unwrap();
    writer.wait().unwrap();
    assert!(output.status.success(), "the export failed: {}", String::from_utf8_lossy(&output.stderr));

    let json = util::stdout_json(&output);
    let d = &json["ExportDescription"];
    let summary_key = d["ExportManifest"].as_str().unwrap().to_string();
    let copy = tempfile::tempdir().unwrap();
    util::download(&s3, "exports", "at-t/", copy.path()).await;
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(copy.path().join(&summary_key)).unwrap()).unwrap();
    let cut_time = humantime::parse_rfc3339(summary["exportTime"].as_str().unwrap()).unwrap();
    let cut = cut_time.duration_since(UNIX_EPOCH).unwrap().as_secs_f64();
    assert_eq!(cut.fract(), 0.0, "the cut is a whole second: {cut}");
    let start = humantime::parse_rfc3339(summary["startTime"].as_str().unwrap()).unwrap();
    assert!(cut_time > start, "the cut comes after the scan");

    let log = std::fs::read_to_string(&log_path).unwrap();
    let during = log
        .lines()
        .filter(|l| {
            let t = serde_json::from_str::<Value>(l).unwrap()["t1"].as_f64().unwrap();
            t > start.duration_since(UNIX_EPOCH).unwrap().as_secs_f64() && t < cut
        })
        .count();
    assert!(during >= 20, "only {during} writes landed during the export ({took:?}); the test proves little");

    let (expected, in_flight) = state_at(&initial, &log, cut);
    let lines = util::independent_check(copy.path(), &summary_key);
    let exported: BTreeMap<String, String> = lines
        .iter()
        .map(|line| {
            let item: Value = serde_json::from_str(line).unwrap();
            (item["pk"]["S"].as_str().unwrap().to_string(), canonical_item(&item))
        })
        .collect();
    assert_eq!(exported.len(), lines.len(), "an item is in the export twice");
    let present_at_cut = (0..KEYS)
        .map(|i| format!("k{i}"))
        .filter(|pk| match in_flight.get(pk) {
            Some(_) => exported.contains_key(pk),
            None => expected.contains_key(pk),
        })
        .count();
    assert_eq!(summary["itemCount"].as_u64(), Some(present_at_cut as u64));
    let mut wrong = Vec::new();
    for pk in (0..KEYS).map(|i| format!("k{i}")) {
        let got = exported.get(&pk);
        let ok = match in_flight.get(&pk) {
            Some((before, after)) => {
                [before, after].iter().any(|state| state.as_ref().map(canonical_item).as_ref() == got)
            }
            None => expected.get(&pk).map(canonical_item).as_ref() == got,
        };
        if !ok {
            wrong.push(format!("{pk}: exported {got:?}, at the cut {:?}", expected.get(&pk)));
        }
    }
    assert!(wrong.is_empty(), "{} keys differ from the table at the cut:\n{}", wrong.len(), wrong.join("\n"));
    assert_eq!(
        d["ExportTime"].as_str().map(|t| t.starts_with(&summary["exportTime"].as_str().unwrap()[..19])),
        Some(true)
    );
    // What the cut needed is gone; the export verifies.
    let root = copy.path().join(summary_key.trim_end_matches("/manifest-summary.json"));
    assert!(
        util::keys_under(&root.join("_ddb-export"))
            .iter()
            .all(|k| !k.starts_with("keys/") && !k.contains("consistent"))
    );
    let verified = util::run(Command::new(env!("CARGO_BIN_EXE_ddb-export")).arg("verify").arg(&root));
    assert!(verified.status.success(), "{}", String::from_utf8_lossy(&verified.stdout));
    eprintln!("{during} writes during a {took:?} export; {} in flight at the cut", in_flight.len());
}

#[tokio::test]
async fn the_consistent_mode_refuses_a_table_without_a_usable_stream() {
    let moto = util::moto();
    let dynamodb = util::dynamodb_client(&moto.url);
    util::create_table_with_stream(&dynamodb, "plain", None).await;
    util::create_table_with_stream(&dynamodb, "keys-only", Some(StreamViewType::KeysOnly)).await;
    let s3 = util::s3_client(&moto.url);
    s3.create_bucket().bucket("exports").send().await.expect("bucket created");
    for (table, words) in [
        ("plain", "cannot give a consistent export: it has no DynamoDB stream"),
        ("keys-only", "cannot give a consistent export: its stream's view type is KEYS_ONLY"),
    ] {
        let output = util::run(util::ddb_export(&[("AWS_ENDPOINT_URL", &moto.url)]).args([
            "export",
            "--table",
            table,
            "--to",
            "s3://exports/x",
            "--consistent",
        ]));
        assert_eq!(output.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(words), "{table}: {stderr}");
    }
    let listed = s3.list_objects_v2().bucket("exports").send().await.unwrap();
    assert_eq!(listed.key_count(), Some(0), "a refused export wrote {:?}", listed.contents());
}
