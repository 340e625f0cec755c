//! Encoder plugins through the real binary (`--encoder`), against the stand-ins: the example
//! plugins' files are read back by independent readers (Python's csv module, pyarrow) and
//! compared with the table; plugins the host must not run are refused before anything is written.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::items::Item;
use crate::util::{self, Standins};

fn csv_plugin() -> &'static Path {
    util::test_component("csv-encoder")
}

fn parquet_plugin() -> &'static Path {
    util::test_component("parquet-encoder")
}

/// Items with every type, and fields CSV must quote.
fn table_items() -> Vec<Item> {
    (0..300)
        .map(|i| {
            let mut item = HashMap::from([
                ("pk".to_string(), AttributeValue::S(format!("order-{i:04}"))),
                ("sk".to_string(), AttributeValue::N(i.to_string())),
                ("price".to_string(), AttributeValue::N(format!("{}.{:02}", i * 3, i % 100))),
                ("flag".to_string(), AttributeValue::Bool(i % 3 == 0)),
                ("tags".to_string(), AttributeValue::Ss(vec![format!("t{}", i % 5), "all".into()])),
            ]);
            let note = match i % 4 {
                0 => "plain".to_string(),
                1 => "comma, and \"quotes\"".to_string(),
                2 => "line\r\nbreak and ünïcödé".to_string(),
                _ => " padded ".to_string(),
            };
            if i % 7 != 0 {
                item.insert("note".into(), AttributeValue::S(note));
            }
            if i % 10 == 0 {
                item.insert("blob".into(), AttributeValue::B(vec![0, 1, 2, 255].into()));
                item.insert(
                    "meta".into(),
                    AttributeValue::M(HashMap::from([("k".into(), AttributeValue::Null(true))])),
                );
            }
            item
        })
        .collect()
}

/// Runs `tests/read_plugin_files.py` on every data file of the export.
fn read_back(kind: &str, bucket_dir: &Path, summary_key: &str) -> Vec<Value> {
    let summary: Value = serde_json::from_slice(&std::fs::read(bucket_dir.join(summary_key)).unwrap()).unwrap();
    let listing = std::fs::read_to_string(bucket_dir.join(summary["manifestFilesS3Key"].as_str().unwrap())).unwrap();
    let files: Vec<PathBuf> = listing
        .lines()
        .map(|line| {
            let entry: Value = serde_json::from_str(line).unwrap();
            bucket_dir.join(entry["dataFileS3Key"].as_str().unwrap())
        })
        .collect();
    assert!(!files.is_empty());
    let output = Command::new(util::checker_python())
        .arg(util::workspace().join("tests/read_plugin_files.py"))
        .arg(kind)
        .args(&files)
        .output()
        .expect("python runs");
    assert!(output.status.success(), "the independent reader failed: {}", String::from_utf8_lossy(&output.stderr));
    let read: Value = serde_json::from_slice(&output.stdout).unwrap();
    read["files"].as_array().unwrap().clone()
}

fn completed(output: &Output, format: &str) -> String {
    let (json, summary_key) = util::completed(output);
    assert_eq!(json["ExportDescription"]["ExportFormat"], format);
    summary_key
}

/// The CSV plugin's documented rendering of one attribute (its README).
fn csv_field(value: Option<&AttributeValue>) -> String {
    match value {
        None | Some(AttributeValue::Null(_)) => String::new(),
        Some(AttributeValue::S(s)) | Some(AttributeValue::N(s)) => s.clone(),
        Some(AttributeValue::Bool(b)) => b.to_string(),
        Some(AttributeValue::B(b)) => STANDARD.encode(b.as_ref()),
        Some(other) => plain_json(other).to_string(),
    }
}

/// A value as plain JSON (the CSV plugin's rendering of sets, lists and maps).
fn plain_json(value: &AttributeValue) -> Value {
    match value {
        AttributeValue::S(s) => json!(s),
        AttributeValue::N(n) => serde_json::from_str(n).unwrap(),
        AttributeValue::B(b) => json!(STANDARD.encode(b.as_ref())),
        AttributeValue::Bool(b) => json!(b),
        AttributeValue::Null(_) => Value::Null,
        AttributeValue::Ss(v) => json!(v),
        AttributeValue::Ns(v) => Value::Array(v.iter().map(|n| serde_json::from_str(n).unwrap()).collect()),
        AttributeValue::Bs(v) => json!(v.iter().map(|b| STANDARD.encode(b.as_ref())).collect::<Vec<_>>()),
        AttributeValue::L(v) => Value::Array(v.iter().map(plain_json).collect()),
        AttributeValue::M(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), plain_json(v))).collect()),
        _ => panic!("an unknown attribute type"),
    }
}

#[tokio::test]
async fn the_csv_plugin_writes_rfc_4180_files_pythons_csv_module_reads_back_as_the_table() {
    let standins = Standins::start();
    let dynamodb = standins.dynamodb();
    util::create_table(&dynamodb, "orders", &table_items()).await;
    standins.create_bucket("exports").await;
    let columns = ["pk", "sk", "price", "note", "tags", "flag", "blob", "meta"];
    let output =
        util::run(standins.command().args(["export", "--table", "orders", "--to", "s3://exports/csv"]).args([
            "--segments".as_ref(),
            "3".as_ref(),
            "--file-size".as_ref(),
            "2048".as_ref(),
            "--encoder".as_ref(),
            csv_plugin().as_os_str(),
            "--encoder-arg".as_ref(),
            format!("columns={}", columns.join(",")).as_ref(),
        ]));
    let summary_key = completed(&output, "CSV");
    let bucket_dir = standins.bucket_dir("exports");
    let summary: Value = serde_json::from_slice(&std::fs::read(bucket_dir.join(&summary_key)).unwrap()).unwrap();
    assert_eq!(summary["outputFormat"], "CSV");
    assert_eq!(summary["itemCount"], 300);
    // A plugin's format has no decoder: a restore is refused, in words, and creates nothing.
    let root = format!("s3://exports/{}", summary_key.trim_end_matches("/manifest-summary.json"));
    let restore = util::run(standins.command().args(["restore", "--from", &root, "--table", "back", "--create-table"]));
    assert_eq!(restore.status.code(), Some(1));
    let said = String::from_utf8_lossy(&restore.stderr);
    assert!(said.contains("outputFormat CSV is an encoder plugin's"), "{said}");
    assert!(dynamodb.describe_table().table_name("back").send().await.is_err(), "no table was created");

    let files = read_back("csv", &bucket_dir, &summary_key);
    assert!(files.len() >= 3, "one file per segment at least: {} files", files.len());
    let mut rows: Vec<Vec<String>> = Vec::new();
    for file in &files {
        assert!(file["path"].as_str().unwrap().ends_with(".csv.gz"));
        assert_eq!(file["columns"], json!(columns), "every file starts with the header");
        for row in file["rows"].as_array().unwrap() {
            rows.push(row.as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect());
        }
    }
    let mut expected: Vec<Vec<String>> = util::scan_all(&dynamodb, "orders")
        .await
        .iter()
        .map(|item| columns.iter().map(|c| csv_field(item.get(*c))).collect())
        .collect();
    rows.sort();
    expected.sort();
    assert_eq!(rows.len(), 300);
    assert!(rows == expected, "the CSV rows differ from the table: first row {:?} vs {:?}", rows[0], expected[0]);

    // `verify` checks a plugin export's manifests, files, ETags and MD5s (not its contents).
    let root = summary_key.trim_end_matches("/manifest-summary.json");
    let verify = || util::run(standins.command().args(["verify", &format!("s3://exports/{root}")]));
    let verified = verify();
    assert!(verified.status.success(), "{}", String::from_utf8_lossy(&verified.stderr));
    let report = util::stdout_json(&verified);
    assert_eq!((report["Verified"].clone(), report["ContentsChecked"].clone()), (json!(true), json!(false)));
    assert_eq!(report["Items"], 300);
    let damaged = PathBuf::from(files[0]["path"].as_str().unwrap());
    let mut bytes = std::fs::read(&damaged).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&damaged, bytes).unwrap();
    let report = util::stdout_json(&verify());
    assert_eq!(report["Verified"], false);
    assert!(report["Problems"].to_string().contains("MD5"), "{report}");
}

#[tokio::test]
async fn the_parquet_plugin_writes_files_pyarrow_reads_back_as_the_table() {
    let standins = Standins::start();
    let dynamodb = standins.dynamodb();
    util::create_table(&dynamodb, "orders", &table_items()).await;
    standins.create_bucket("exports").await;
    let output = util::run(standins.command().args(["export", "--table", "orders", "--to", "s3://exports/pq"]).args([
        "--segments".as_ref(),
        "2".as_ref(),
        "--file-size".as_ref(),
        "4096".as_ref(),
        "--encoder".as_ref(),
        parquet_plugin().as_os_str(),
        "--encoder-arg".as_ref(),
        "columns=pk:string,sk:int64,price:double,flag:boolean,tags:json,note".as_ref(),
    ]));
    let summary_key = completed(&output, "PARQUET");
    let bucket_dir = standins.bucket_dir("exports");
    let files = read_back("parquet", &bucket_dir, &summary_key);
    let mut rows: Vec<String> = Vec::new();
    for file in &files {
        assert!(file["path"].as_str().unwrap().ends_with(".parquet"));
        assert_eq!(file["columns"], json!(["pk", "sk", "price", "flag", "tags", "note"]));
        assert_eq!(file["types"], json!(["string", "int64", "double", "bool", "string", "string"]));
        for row in file["rows"].as_array().unwrap() {
            rows.push(row.to_string());
        }
    }
    let mut expected: Vec<String> = util::scan_all(&dynamodb, "orders")
        .await
        .iter()
        .map(|item| {
            let number = |name: &str| match item.get(name) {
                Some(AttributeValue::N(n)) => n.clone(),
                other => panic!("{name}: {other:?}"),
            };
            let string = |name: &str| match item.get(name) {
                Some(AttributeValue::S(s)) => json!(s),
                _ => Value::Null,
            };
            json!([
                string("pk"),
                number("sk").parse::<i64>().unwrap(),
                number("price").parse::<f64>().unwrap(),
                matches!(item.get("flag"), Some(AttributeValue::Bool(true))),
                plain_json(&item["tags"]).to_string(),
                string("note"),
            ])
            .to_string()
        })
        .collect();
    rows.sort();
    expected.sort();
    assert_eq!(rows.len(), 300);
    assert!(rows == expected, "the Parquet rows differ from the table: {} vs {}", rows[0], expected[0]);
}

#[tokio::test]
async fn plugins_the_host_cannot_run_are_refused_before_anything_is_written() {
    let standins = Standins::start();
    util::create_table(&standins.dynamodb(), "orders", &table_items()[..5]).await;
    standins.create_bucket("exports").await;
    let future = util::test_component("ddb-export-future-plugin");
    let default_component = Path::new(env!("CARGO_BIN_EXE_ddb-export")).with_file_name("ddb_export_guest.wasm");
    let csv = csv_plugin().to_str().unwrap();
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (vec!["--encoder", future.to_str().unwrap()], vec!["plugin API 0.2.0", "plugin API 0.1.0"]),
        (vec!["--encoder", default_component.to_str().unwrap()], vec!["not an encoder plugin"]),
        (vec!["--encoder", csv], vec!["columns"]),
        (vec!["--encoder", csv, "--encoder-arg", "columns=pk", "--encoder-arg", "colums=sk"], vec!["colums"]),
        (vec!["--encoder", csv, "--encoder-arg", "columns=pk", "--format", "ion"], vec!["--encoder", "--format"]),
    ];
    for (args, words) in cases {
        let output = util::run(
            standins.command().args(["export", "--table", "orders", "--to", "s3://exports/refused"]).args(&args),
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        // Flags that cannot go together are a usage error (2); a plugin that cannot run, or
        // that refuses its arguments, a failure (1).
        let code = if args.contains(&"--format") { 2 } else { 1 };
        assert_eq!(output.status.code(), Some(code), "{args:?}: {stderr}");
        for word in words {
            assert!(stderr.contains(word), "{args:?} should say {word:?}: {stderr}");
        }
        assert!(util::keys_under(&standins.bucket_dir("exports")).is_empty(), "{args:?} wrote something");
    }

    // A client token binds the plugin and its arguments: other arguments are a conflict.
    let token_run = |columns: &str| {
        util::run(standins.command().args(["export", "--table", "orders", "--to", "s3://exports/t"]).args([
            "--client-token",
            "nightly",
            "--encoder",
            csv,
            "--encoder-arg",
            columns,
        ]))
    };
    completed(&token_run("columns=pk"), "CSV");
    let conflict = token_run("columns=pk,sk");
    let stderr = String::from_utf8_lossy(&conflict.stderr);
    assert_eq!(conflict.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("IdempotentParameterMismatch") || stderr.contains("--encoder/--encoder-arg"), "{stderr}");
    assert!(stderr.contains("--encoder"), "{stderr}");
}
