//! The step component (`wit/step`, `step/`) run by the real binary (`run-shard --in-component`),
//! against the stand-ins: shards in bounded calls, a shard passed between the component and
//! the host's own pipeline in both directions, and the export equal, file for file, to a
//! single run's.

use std::process::Output;

use serde_json::Value;

use crate::items;
use crate::util::{self, Standins};

/// `run-shard --in-component` of `shard` with `budget` flags.
fn in_component(standins: &Standins, location: &str, shard: u64, budget: &[&str]) -> Output {
    util::run(
        standins
            .command()
            .args(["run-shard", "--in-component", "--no-read-limit", "--plan", location, "--shard"])
            .arg(shard.to_string())
            .args(budget),
    )
}

/// The report of a call that succeeded.
fn report(output: &Output) -> Value {
    assert!(output.status.success(), "the step failed: {}", String::from_utf8_lossy(&output.stderr));
    util::stdout_json(output)
}

#[tokio::test]
async fn shards_pass_between_the_step_component_and_the_cli_and_the_export_is_the_same() {
    let standins = Standins::start();
    let dynamodb = standins.dynamodb();
    let mut seeded = items::edge_cases();
    seeded.extend(items::ordinary(3000));
    // Items of ~390 KiB: a segment spans several Scan pages, and a data file closes after each.
    seeded.extend(items::incompressible(36, 0x5eed));
    util::create_table(&dynamodb, "orders", &seeded).await;
    standins.create_bucket("exports").await;
    let bucket_dir = standins.bucket_dir("exports");
    let settings = ["--table", "orders", "--segments", "6", "--file-size", "16384", "--no-read-limit"];
    let single = util::run(standins.command().arg("export").args(settings).args(["--to", "s3://exports/single"]));
    let single_summary = util::completed(&single).1;

    let planned = util::run(standins.command().arg("plan").args(settings).args(["--to", "s3://exports/fanned"]));
    let plan = report(&planned);
    let location = plan["exportLocation"].as_str().unwrap().to_string();
    let export_root = location.trim_start_matches("s3://exports/").to_string();
    let mut counts = std::collections::HashMap::new();

    // Shards 0 and 1: one data file per call, called again until done, as an engine would.
    for shard in [0, 1] {
        let mut calls = 0;
        let mut files = 0;
        loop {
            calls += 1;
            let answer = report(&in_component(&standins, &location, shard, &["--max-data-files", "1"]));
            assert_eq!(answer["exportArn"], plan["exportArn"]);
            let stored = answer["dataFiles"].as_u64().unwrap();
            assert!(stored <= files + 1, "a call stores at most its budget: {answer}");
            files = stored;
            if answer["status"] == "COMPLETED" {
                counts.insert(shard, answer["itemCount"].as_u64().unwrap());
                break;
            }
            assert_eq!(answer["status"], "IN_PROGRESS", "{answer}");
            assert!(calls < 200, "shard {shard} never finished");
        }
        assert!(calls >= 2, "shard {shard} took {calls} calls: its files roll over at 16 KiB");
        // Each call released its lease.
        let leases = util::keys_under(&bucket_dir.join(&export_root));
        assert!(!leases.iter().any(|k| k.contains("_ddb-export/leases/")), "{leases:?}");
    }

    // Shard 2: begun by the component, finished by the CLI's own pipeline.
    let begun = report(&in_component(&standins, &location, 2, &["--max-data-files", "1"]));
    assert_eq!((begun["status"].as_str(), begun["dataFiles"].as_u64()), (Some("IN_PROGRESS"), Some(1)), "{begun}");
    let finished = report(&util::run(standins.command().args([
        "run-shard",
        "--plan",
        &location,
        "--shard",
        "2",
        "--no-read-limit",
    ])));
    assert_eq!(finished["status"], "COMPLETED");
    assert!(finished["itemCount"].as_u64().unwrap() > begun["itemCount"].as_u64().unwrap());
    counts.insert(2, finished["itemCount"].as_u64().unwrap());

    // Shard 3: run by the CLI; the component then finds it done and reads nothing.
    let by_cli = report(&util::run(standins.command().args([
        "run-shard",
        "--plan",
        &location,
        "--shard",
        "3",
        "--no-read-limit",
    ])));
    let before = util::keys_under(&bucket_dir.join(&export_root));
    let again = report(&in_component(&standins, &location, 3, &[]));
    assert_eq!(again["status"], "ALREADY_COMPLETED");
    assert_eq!(again["itemCount"], by_cli["itemCount"]);
    assert_eq!(util::keys_under(&bucket_dir.join(&export_root)), before, "a done shard is not written again");
    counts.insert(3, by_cli["itemCount"].as_u64().unwrap());

    // Shards 4 and 5: the component, no budget, one call each.
    for shard in [4, 5] {
        let answer = report(&in_component(&standins, &location, shard, &["--max-millis", "600000"]));
        assert_eq!(answer["status"], "COMPLETED", "{answer}");
        counts.insert(shard, answer["itemCount"].as_u64().unwrap());
    }
    assert_eq!(counts.values().sum::<u64>(), seeded.len() as u64);

    let finalized = util::run(standins.command().args(["finalize", "--plan", &location]));
    let fanned_summary = util::completed(&finalized).1;
    let expected = util::sorted_canonical(util::scan_all(&dynamodb, "orders").await.iter().map(util::canonical));
    assert!(util::independent_check(&bucket_dir, &fanned_summary) == expected, "the export differs from the table");
    // The same data files, byte for byte (by MD5), as a single run of the host's own.
    let fanned = util::data_files(&bucket_dir, &fanned_summary);
    assert!(fanned.len() >= 12, "{fanned:?}");
    assert_eq!(fanned, util::data_files(&bucket_dir, &single_summary));

    // After finalize the component reports the shard done and writes nothing.
    let before = util::keys_under(&bucket_dir.join(&export_root));
    let late = report(&in_component(&standins, &location, 0, &[]));
    assert_eq!((late["status"].as_str(), late["itemCount"].as_u64()), (Some("ALREADY_COMPLETED"), None), "{late}");
    assert_eq!(util::keys_under(&bucket_dir.join(&export_root)), before);
}

#[tokio::test]
async fn the_step_component_refuses_what_it_cannot_run_by_name() {
    let standins = Standins::start();
    util::create_table(&standins.dynamodb(), "orders", &items::ordinary(10)).await;
    standins.create_bucket("exports").await;
    let planned = util::run(standins.command().args(["plan", "--table", "orders", "--to", "s3://exports/p"]));
    let plan = report(&planned);
    let location = plan["exportLocation"].as_str().unwrap();
    let shards = plan["shards"].as_array().unwrap().len() as u64;
    let unplanned = "s3://exports/p/AWSDynamoDB/01700000000000-0000abcd";
    let cases: [(&str, u64, &[&str], &str); 3] = [
        (location, shards, &[], "(permanent-refused): export"),
        (location, 0, &["--max-data-files", "0"], "a budget of 0 data files"),
        (unplanned, 0, &[], "(permanent-bad-destination)"),
    ];
    for (at, shard, budget, expected) in cases {
        let output = in_component(&standins, at, shard, budget);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{at} {shard} {budget:?}: {stderr}");
        assert!(stderr.contains(expected), "{at} {shard} {budget:?}: {stderr}");
    }
    let output = in_component(&standins, unplanned, 0, &[]);
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("was the export planned (by `plan` or `ddb-export plan`)?")
    );
    // Without --in-component, a budget is refused by the command line itself.
    let output = util::run(standins.command().args([
        "run-shard",
        "--plan",
        location,
        "--shard",
        "0",
        "--no-read-limit",
        "--max-data-files",
        "1",
    ]));
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--in-component"));
}

#[tokio::test]
async fn the_step_component_plans_and_finalizes_an_export_the_cli_helps_to_run() {
    let standins = Standins::start();
    let dynamodb = standins.dynamodb();
    let mut seeded = items::edge_cases();
    seeded.extend(items::ordinary(1500));
    util::create_table(&dynamodb, "orders", &seeded).await;
    standins.create_bucket("exports").await;
    let bucket_dir = standins.bucket_dir("exports");
    let settings = [
        "--table",
        "orders",
        "--to",
        "s3://exports/by-step",
        "--segments",
        "4",
        "--file-size",
        "16384",
        "--client-token",
        "engine-run-1",
    ];
    let plan_in_component = || util::run(standins.command().args(["plan", "--in-component"]).args(settings));
    let plan = report(&plan_in_component());
    assert_eq!(plan["exportStatus"], "IN_PROGRESS");
    assert_eq!(plan["shards"], serde_json::json!([0, 1, 2, 3]));
    // A retried plan (an engine's retry) is the same export.
    let again = report(&plan_in_component());
    assert_eq!(again["exportArn"], plan["exportArn"]);
    // The CLI's own plan of the same token and settings finds it too; other settings are refused.
    let by_cli = report(&util::run(standins.command().arg("plan").args(settings)));
    assert_eq!(by_cli["exportArn"], plan["exportArn"]);
    let conflict = util::run(
        standins.command().args(["plan", "--in-component"]).args(settings).args(["--compression-level", "1"]),
    );
    assert_eq!(conflict.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&conflict.stderr);
    assert!(
        stderr.contains("(permanent-refused)") && stderr.contains("compression-level: 6 before, 1 now"),
        "{stderr}"
    );

    let location = plan["exportLocation"].as_str().unwrap().to_string();
    // Shards 0 and 1 by the CLI's pipeline, 2 and 3 by the component.
    for shard in ["0", "1"] {
        let done = report(&util::run(standins.command().args([
            "run-shard",
            "--plan",
            &location,
            "--shard",
            shard,
            "--no-read-limit",
        ])));
        assert_eq!(done["status"], "COMPLETED");
    }
    for shard in [2, 3] {
        assert_eq!(report(&in_component(&standins, &location, shard, &[]))["status"], "COMPLETED");
    }
    let finalize = || util::run(standins.command().args(["finalize", "--in-component", "--plan", &location]));
    let summary = report(&finalize());
    assert_eq!(summary["itemCount"].as_u64(), Some(seeded.len() as u64), "{summary}");
    assert_eq!(summary["alreadyComplete"], false);
    let summary_key =
        summary["manifestSummaryLocation"].as_str().unwrap().trim_start_matches("s3://exports/").to_string();
    let expected = util::sorted_canonical(util::scan_all(&dynamodb, "orders").await.iter().map(util::canonical));
    assert!(util::independent_check(&bucket_dir, &summary_key) == expected, "the export differs from the table");
    // `verify` (the CLI's own check of a stored export) passes it.
    let verified = util::run(standins.command().args(["verify", &location]));
    assert!(verified.status.success(), "{}", String::from_utf8_lossy(&verified.stderr));
    // A retried finalize, and the CLI's own, find it complete.
    assert_eq!(report(&finalize())["alreadyComplete"], true);
    let by_cli = util::run(standins.command().args(["finalize", "--plan", &location]));
    assert_eq!(util::completed(&by_cli).1, summary_key);
    assert_eq!(report(&plan_in_component())["exportStatus"], "COMPLETED");
}
