//! The workflow definitions of `examples/workflows/`, each run or checked by its own engine's
//! tools: the Airflow DAG run by Airflow 3.3.2 (`airflow dags test`) against the stand-ins, with
//! a plan, a shard and a finalize task each failing once and retried by Airflow; the Step
//! Functions state machine by `asl-validator`; the Argo workflow against Argo's schema
//! (`tests/check_argo_workflow.py`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use aws_sdk_dynamodb::types::AttributeValue;

use crate::util::{self, Standins};

fn example(name: &str) -> PathBuf {
    util::workspace().join("examples/workflows").join(name)
}

fn installed(path: &str) -> PathBuf {
    let path = util::workspace().join(path);
    assert!(path.is_file(), "{} not found; run `scripts/install-standins`", path.display());
    path
}

/// The export folders under `prefix` (each `AWSDynamoDB/<export id>`).
fn exports_under(bucket_dir: &Path, prefix: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(bucket_dir.join(prefix).join("AWSDynamoDB")) else { return Vec::new() };
    let mut ids: Vec<String> = entries.flatten().map(|e| e.file_name().to_string_lossy().to_string()).collect();
    ids.retain(|id| id != "data");
    ids.sort();
    ids
}

#[tokio::test]
async fn airflow_runs_the_fan_out_dag_and_its_retries_are_harmless() {
    let standins = Standins::start();
    let dynamodb = standins.dynamodb();
    let items: Vec<HashMap<String, AttributeValue>> = (0..600)
        .map(|i| {
            HashMap::from([
                ("pk".to_string(), AttributeValue::S(format!("order-{i:04}"))),
                ("total".to_string(), AttributeValue::N(format!("{}.{:02}", i * 7, i % 100))),
                ("note".to_string(), AttributeValue::S("x".repeat(200 + i % 50))),
            ])
        })
        .collect();
    util::create_table(&dynamodb, "orders", &items).await;
    standins.create_bucket("exports").await;
    let expected = util::sorted_canonical(util::scan_all(&dynamodb, "orders").await.iter().map(util::canonical));

    let airflow = installed(".standins/airflow/bin/airflow");
    let home = tempfile::tempdir().expect("a temporary directory");
    let dags = home.path().join("dags");
    let failed = home.path().join("failed");
    std::fs::create_dir_all(&dags).expect("the DAGs folder");
    std::fs::create_dir_all(&failed).expect("the failures' folder");
    std::fs::copy(example("airflow_dag.py"), dags.join("airflow_dag.py")).expect("the DAG copied");
    let run = |args: &[&str]| {
        let mut command = Command::new(&airflow);
        command
            .args(args)
            .env("AIRFLOW_HOME", home.path())
            .env("AIRFLOW__CORE__DAGS_FOLDER", &dags)
            .env("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
            .env("AWS_ACCESS_KEY_ID", util::ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", util::SECRET_KEY)
            .env("AWS_REGION", util::REGION)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_ENDPOINT_URL_DYNAMODB", standins.dynamodb_url())
            .env("AWS_ENDPOINT_URL_S3", standins.s3_url())
            .env("DDB_EXPORT_CACHE_DIR", Path::new(env!("CARGO_TARGET_TMPDIR")).join("component-cache"))
            // Every step through a ddb-export that dies once: the plan after it ran, shard 2
            // before it ran, finalize after it ran. Airflow's retries must carry the export on.
            .env("DDB_EXPORT_BIN", util::workspace().join("tests/flaky_ddb_export.sh"))
            .env("DDB_EXPORT_REAL_BIN", env!("CARGO_BIN_EXE_ddb-export"))
            .env("DDB_EXPORT_FAIL_ONCE", "plan-after run-shard-2 finalize-after")
            .env("DDB_EXPORT_FAIL_DIR", &failed)
            .env("DDB_EXPORT_RETRY_DELAY_SECS", "1");
        util::run(&mut command)
    };
    let migrated = run(&["db", "migrate"]);
    assert!(migrated.status.success(), "airflow db migrate failed");
    // The DAG loads, with no deprecation warning from Airflow 3.
    let listed = run(&["dags", "list-import-errors"]);
    let errors = String::from_utf8_lossy(&listed.stdout).to_string() + &String::from_utf8_lossy(&listed.stderr);
    assert!(!errors.contains("airflow_dag.py |") && !errors.contains("deprecated"), "{errors}");

    let conf = r#"{"table": "orders", "destination": "s3://exports/airflow", "segments": 6}"#;
    let tested = run(&["dags", "test", "ddb_export_fanout", "-c", conf]);
    let log = String::from_utf8_lossy(&tested.stdout).to_string() + &String::from_utf8_lossy(&tested.stderr);
    assert!(tested.status.success(), "airflow dags test failed:\n{log}");
    for step in ["plan-after", "run-shard-2", "finalize-after"] {
        assert!(failed.join(step).exists(), "the {step} failure never fired:\n{log}");
    }
    for said in ["failing plan after it ran", "failing run-shard-2 before it runs", "failing finalize after it ran"] {
        assert!(log.contains(said), "the task log does not show {said:?}");
    }
    assert!(log.contains("up_for_retry"), "Airflow retried nothing:\n{log}");
    for shard in 0..6 {
        assert!(log.contains(&format!("--shard {shard} ")), "shard {shard} never ran:\n{log}");
    }

    // One export, though plan and finalize each ran twice: the same client token, the same export.
    let bucket_dir = standins.bucket_dir("exports");
    let exports = exports_under(&bucket_dir, "airflow");
    assert_eq!(exports.len(), 1, "a retried step started another export: {exports:?}");
    let summary_key = format!("airflow/AWSDynamoDB/{}/manifest-summary.json", exports[0]);
    assert_eq!(util::independent_check(&bucket_dir, &summary_key), expected);
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bucket_dir.join(&summary_key)).expect("the summary")).expect("JSON");
    assert_eq!(summary["itemCount"], 600);
}

#[test]
fn the_step_functions_state_machine_passes_the_asl_validator() {
    let validator = installed("tests/standins/node_modules/.bin/asl-validator");
    let check =
        |path: &Path| Command::new(&validator).arg("--json-path").arg(path).output().expect("asl-validator runs");
    let definition = example("step-functions.asl.json");
    let valid = check(&definition);
    assert!(
        valid.status.success(),
        "{}{}",
        String::from_utf8_lossy(&valid.stdout),
        String::from_utf8_lossy(&valid.stderr)
    );

    // The validator is not a rubber stamp: a state that names no next state is refused.
    let mut broken: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&definition).expect("the definition")).expect("JSON");
    let start = broken["StartAt"].as_str().expect("StartAt").to_string();
    broken["States"][&start]["Next"] = "NoSuchState".into();
    let file = tempfile::NamedTempFile::new().expect("a temporary file");
    std::fs::write(file.path(), serde_json::to_vec(&broken).expect("JSON")).expect("written");
    let refused = check(file.path());
    let said = String::from_utf8_lossy(&refused.stdout).to_string() + &String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{said}");
    assert!(said.contains("Missing 'StartAt'|'Next'|'Default' target: NoSuchState"), "{said}");
}

#[test]
fn the_argo_workflow_matches_argo_s_schema() {
    let check = |path: &Path| {
        Command::new(util::checker_python())
            .arg(util::workspace().join("tests/check_argo_workflow.py"))
            .arg(path)
            .output()
            .expect("check_argo_workflow.py runs")
    };
    let workflow = example("argo-workflow.yaml");
    let valid = check(&workflow);
    assert!(
        valid.status.success(),
        "{}{}",
        String::from_utf8_lossy(&valid.stdout),
        String::from_utf8_lossy(&valid.stderr)
    );

    // A misspelt field and a value of the wrong type are refused, naming where they are.
    let text = std::fs::read_to_string(&workflow).expect("the workflow");
    assert!(text.contains("retryStrategy:") && text.contains("parallelism: 8"));
    for (from, to, said) in [
        ("retryStrategy:", "retryStrategi:", "retryStrategi: Argo's Template has no such field"),
        ("parallelism: 8", "parallelism: eight", "parallelism"),
    ] {
        let file = tempfile::NamedTempFile::new().expect("a temporary file");
        std::fs::write(file.path(), text.replacen(from, to, 1)).expect("written");
        let refused = check(file.path());
        assert!(!refused.status.success(), "{to} was accepted");
        assert!(
            String::from_utf8_lossy(&refused.stdout).contains(said),
            "{}",
            String::from_utf8_lossy(&refused.stdout)
        );
    }
}
