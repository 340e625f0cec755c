//! `ddb-export describe` and `list`, through the real binary: exports found at a destination,
//! completed, failed, killed, and one written by AWS (its files, in FORMAT.md's shape).

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::items;
use crate::util::{self, Standins};

fn json_of(output: &std::process::Output) -> Value {
    assert!(output.status.success(), "the command failed: {}", String::from_utf8_lossy(&output.stderr));
    util::stdout_json(output)
}

#[tokio::test]
async fn describe_and_list_tell_completed_failed_and_unfinished_exports() {
    let standins = Standins::start();
    util::create_table(&standins.dynamodb(), "orders", &items::ordinary(400)).await;
    standins.create_bucket("exports").await;
    let bucket_dir = standins.bucket_dir("exports");
    let ddb_export = |args: &[&str]| util::run(standins.command().args(args));

    // Completed: `describe` says what the export itself printed (without its run statistics).
    let completed = json_of(&ddb_export(&["export", "--table", "orders", "--to", "s3://exports/p"]));
    let arn = completed["ExportDescription"]["ExportArn"].as_str().unwrap().to_string();
    let id = arn.rsplit('/').next().unwrap().to_string();
    let mut expected = completed.clone();
    expected["ExportDescription"].as_object_mut().unwrap().remove("DdbExportStatistics");
    assert_eq!(json_of(&ddb_export(&["describe", "s3://exports/p", "--export-id", &id])), expected);
    assert_eq!(json_of(&ddb_export(&["describe", &format!("s3://exports/p/AWSDynamoDB/{id}/")])), expected);
    assert_eq!(json_of(&ddb_export(&["describe", "s3://exports/p", "--export-id", &arn])), expected);

    // Failed: every data file PUT refused; the failure is recorded beside the export.
    let proxy = util::fault_proxy(standins.s3_url(), &["--only", "s3-put", "--path-contains", "/data/", "--always"]);
    let mut command = util::ddb_export(&[
        ("AWS_ENDPOINT_URL_DYNAMODB", standins.dynamodb_url()),
        ("AWS_ENDPOINT_URL_S3", &proxy.url),
    ]);
    let failed = util::run(command.args(["export", "--table", "orders", "--to", "s3://exports/p"]));
    assert!(!failed.status.success());
    let failed_arn = util::stdout_json(&failed)["ExportDescription"]["ExportArn"].as_str().unwrap().to_string();
    let failed_id = failed_arn.rsplit('/').next().unwrap().to_string();
    let described = json_of(&ddb_export(&["describe", "s3://exports/p", "--export-id", &failed_id]));
    let d = &described["ExportDescription"];
    assert_eq!(d["ExportStatus"], "FAILED");
    assert_eq!(d["FailureCode"], "S3Error");
    assert!(d["FailureMessage"].as_str().unwrap().contains("PutObject"), "{d}");
    assert!(d.get("ExportManifest").is_none() && d.get("ItemCount").is_none(), "{d}");

    // Killed: no summary, no failure recorded: in progress (and resumable).
    let mut child = standins
        .command()
        .args(["export", "--table", "orders", "--to", "s3://exports/p", "--max-rcu", "1", "--segments", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let killed_id = loop {
        let started: Vec<String> = util::keys_under(&bucket_dir.join("p/AWSDynamoDB"))
            .into_iter()
            .filter(|k| k.ends_with("_ddb-export/run.json"))
            .filter_map(|k| k.split('/').next().map(str::to_string))
            .filter(|k| *k != id && *k != failed_id)
            .collect();
        if let Some(killed) = started.into_iter().next() {
            break killed;
        }
        assert!(Instant::now() < deadline, "the slow export never saved its state");
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = child.kill();
    child.wait().unwrap();
    let described = json_of(&ddb_export(&["describe", "s3://exports/p", "--export-id", &killed_id]));
    assert_eq!(described["ExportDescription"]["ExportStatus"], "IN_PROGRESS");
    assert!(described["ExportDescription"].get("EndTime").is_none());

    // `list`: all three, oldest first.
    let listed = json_of(&ddb_export(&["list", "s3://exports/p"]));
    let summaries = listed["ExportSummaries"].as_array().unwrap();
    let statuses: Vec<(&str, &str)> = summaries
        .iter()
        .map(|s| (s["ExportArn"].as_str().unwrap().rsplit('/').next().unwrap(), s["ExportStatus"].as_str().unwrap()))
        .collect();
    assert_eq!(
        statuses,
        [(id.as_str(), "COMPLETED"), (failed_id.as_str(), "FAILED"), (killed_id.as_str(), "IN_PROGRESS")]
    );
    assert!(summaries.iter().all(|s| s["ExportType"] == "FULL_EXPORT"));
    assert_eq!(json_of(&ddb_export(&["list", "s3://exports/elsewhere"]))["ExportSummaries"], json!([]));

    // Nothing there: exit 1, saying so.
    let missing = ddb_export(&["describe", "s3://exports/p", "--export-id", "01700000000000-0123abcd"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("there is no export 01700000000000-0123abcd"));
    let no_id = ddb_export(&["describe", "s3://exports/p"]);
    assert_eq!(no_id.status.code(), Some(2), "a usage error");
    assert!(String::from_utf8_lossy(&no_id.stderr).contains("--export-id"));
}

/// An export AWS wrote carries only its files: `describe` reads its summary, in a directory
/// too, with no AWS credentials needed for that.
#[test]
fn describe_reads_an_export_aws_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let id = "01693467621041-4f1a9c2e";
    let root = dir.path().join("AWSDynamoDB").join(id);
    std::fs::create_dir_all(root.join("data")).unwrap();
    let table = "arn:aws:dynamodb:eu-west-1:123456789012:table/orders";
    let summary = json!({
        "version": "2020-06-30",
        "exportArn": format!("{table}/export/{id}"),
        "startTime": "2023-08-31T07:40:21.041Z",
        "endTime": "2023-08-31T07:45:02.509Z",
        "tableArn": table,
        "tableId": "0b4d0a3c-1f2e-4d5c-8b7a-6e5f4d3c2b1a",
        "exportTime": "2023-08-31T07:40:21.041Z",
        "s3Bucket": "my-exports",
        "s3Prefix": null,
        "s3SseAlgorithm": "AES256",
        "s3SseKmsKeyId": null,
        "manifestFilesS3Key": format!("AWSDynamoDB/{id}/manifest-files.json"),
        "billedSizeBytes": 0,
        "itemCount": 1520,
        "outputFormat": "DYNAMODB_JSON",
    });
    std::fs::write(root.join("manifest-summary.json"), summary.to_string()).unwrap();
    let output = util::run(
        std::process::Command::new(env!("CARGO_BIN_EXE_ddb-export"))
            .env_clear()
            .arg("describe")
            .arg(dir.path().join("AWSDynamoDB").join(id)),
    );
    let d = json_of(&output)["ExportDescription"].clone();
    assert_eq!(d["ExportArn"], format!("{table}/export/{id}"));
    assert_eq!(d["ExportStatus"], "COMPLETED");
    assert_eq!(d["StartTime"], "2023-08-31T07:40:21.041000+00:00");
    assert_eq!(d["EndTime"], "2023-08-31T07:45:02.509000+00:00");
    assert_eq!(d["ExportManifest"], format!("AWSDynamoDB/{id}/manifest-summary.json"));
    assert_eq!(d["ItemCount"], 1520);
    assert_eq!(d["ExportFormat"], "DYNAMODB_JSON");
    assert_eq!(d["ExportType"], "FULL_EXPORT");
    assert!(d.get("ClientToken").is_none() && d.get("S3Prefix").is_none(), "{d}");
}
