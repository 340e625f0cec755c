//! The step engine component (the step component with the adapter composed in: it imports only
//! WASI and `wasi:http`) run by engines other than ddb-export: a plain wasmtime +
//! wasmtime-wasi-http host that calls its exports with JSON, as a workflow engine does
//! (`tests/plain-engine`), and Obelisk (`obelisk.rs`).

use serde_json::{Value, json};

use ddb_export_plain_engine::PlainEngine;

use crate::items;
use crate::util::{self, Standins};

const STEPS: &str = "ddb-export:step/steps@0.1.0";

/// A step's answer: its `ok` payload, or a panic naming its error.
fn ok(answer: Result<Value, String>) -> Value {
    let answer = answer.unwrap_or_else(|e| panic!("the engine failed: {e}"));
    match answer.get("ok") {
        Some(ok) => ok.clone(),
        None => panic!("the step failed: {answer}"),
    }
}

fn engine(standins: &Standins) -> PlainEngine {
    let component = ddb_export::runtime::step::STEP_ENGINE_COMPONENT;
    PlainEngine::new(component, standins.aws_env()).expect("the step engine component loads")
}

#[tokio::test]
async fn a_plain_wasi_http_engine_runs_the_export_and_it_matches_the_cli_s() {
    let standins = Standins::start();
    let dynamodb = standins.dynamodb();
    let mut seeded = items::edge_cases();
    seeded.extend(items::ordinary(2000));
    seeded.extend(items::incompressible(12, 0xe6e));
    util::create_table(&dynamodb, "orders", &seeded).await;
    standins.create_bucket("exports").await;
    let bucket_dir = standins.bucket_dir("exports");
    let engine = engine(&standins);

    let request = json!({
        "table": "orders", "s3-bucket": "exports", "s3-prefix": "engine", "export-format": "dynamodb-json",
        "client-token": "plain-engine-1", "segments": 4, "target-file-bytes": 16384,
    });
    let plan = ok(engine.call(STEPS, "plan", &json!([request])));
    assert_eq!(plan["shards"], json!([0, 1, 2, 3]));
    // A retried plan is the same export.
    assert_eq!(ok(engine.call(STEPS, "plan", &json!([request])))["export-id"], plan["export-id"]);
    let location = plan["export-location"].as_str().unwrap().to_string();

    // Every shard as an engine drives it: bounded calls, again until done.
    let (mut items, mut all_calls) = (0, 0);
    for shard in 0..4 {
        let mut calls = 0;
        loop {
            calls += 1;
            let call = json!([{
                "export-location": location, "shard": shard, "budget": {"max-data-files": 1}, "task": format!("test/{shard}"),
            }]);
            let progress = ok(engine.call(STEPS, "run-shard", &call));
            assert!(progress["data-files-this-call"].as_u64().unwrap() <= 1, "{progress}");
            if progress["done"] == true {
                items += progress["item-count"].as_u64().unwrap();
                break;
            }
            assert!(calls < 100, "shard {shard} never finished");
        }
        all_calls += calls;
    }
    assert!(all_calls >= 8, "one data file per call: {all_calls} calls");
    assert_eq!(items, seeded.len() as u64);
    let summary = ok(engine.call(STEPS, "finalize", &json!([{"export-location": location}])));
    assert_eq!(summary["item-count"].as_u64(), Some(seeded.len() as u64));
    let summary_key = summary["manifest-summary-location"].as_str().unwrap().trim_start_matches("s3://exports/");
    let expected = util::sorted_canonical(util::scan_all(&dynamodb, "orders").await.iter().map(util::canonical));
    assert!(util::independent_check(&bucket_dir, summary_key) == expected, "the export differs from the table");
    // The CLI's own finalize and verify accept it.
    let verified = util::run(standins.command().args(["verify", &location]));
    assert!(verified.status.success(), "{}", String::from_utf8_lossy(&verified.stderr));
    let by_cli = util::run(standins.command().args(["finalize", "--plan", &location]));
    assert_eq!(util::completed(&by_cli).1, summary_key);
    // The same data files, byte for byte (by MD5), as the CLI's own export of the settings.
    let single = util::run(standins.command().args([
        "export",
        "--table",
        "orders",
        "--segments",
        "4",
        "--file-size",
        "16384",
        "--no-read-limit",
        "--to",
        "s3://exports/single",
    ]));
    let single_summary = util::completed(&single).1;
    assert_eq!(util::data_files(&bucket_dir, summary_key), util::data_files(&bucket_dir, &single_summary));
}

#[tokio::test]
async fn the_engine_component_names_what_is_wrong_in_its_own_error_cases() {
    let standins = Standins::start();
    util::create_table(&standins.dynamodb(), "orders", &items::ordinary(5)).await;
    let engine = engine(&standins);
    let plan = |request: Value| engine.call(STEPS, "plan", &json!([request])).expect("the engine runs the call");
    let base = json!({
        "table": "orders", "s3-bucket": "no-such-bucket", "export-format": "ion", "client-token": "t",
    });
    // No bucket: S3 refuses, a case no retry fixes.
    let answer = plan(base.clone());
    let message = answer["err"]["permanent-bad-destination"].as_str().unwrap_or_else(|| panic!("{answer}"));
    assert!(message.contains("no-such-bucket"), "{message}");
    // No table.
    let mut missing = base.clone();
    missing["table"] = json!("missing");
    let answer = plan(missing);
    let message = answer["err"]["permanent-bad-table"].as_str().unwrap_or_else(|| panic!("{answer}"));
    assert!(message.contains("DescribeTable of missing") && message.contains("ResourceNotFound"), "{message}");
    // A setting out of range.
    let mut bad = base.clone();
    bad["segments"] = json!(0);
    let answer = plan(bad);
    assert!(answer["err"]["permanent-refused"].as_str().is_some_and(|m| m.contains("segments 0")), "{answer}");

    // An endpoint the engine does not allow (anything but loopback): a transient failure, named.
    let mut env = standins.aws_env();
    env.retain(|(key, _)| key != "AWS_ENDPOINT_URL_DYNAMODB");
    env.push(("AWS_ENDPOINT_URL_DYNAMODB".into(), "http://192.0.2.1:8000".into()));
    let denied = PlainEngine::new(ddb_export::runtime::step::STEP_ENGINE_COMPONENT, env).unwrap();
    let answer = denied.call(STEPS, "plan", &json!([base])).unwrap();
    let message = answer["err"]["transient"].as_str().unwrap_or_else(|| panic!("{answer}"));
    assert!(message.contains("DescribeTable of orders"), "{message}");
}
