//! Fan-out through the real binary: `plan`, then every shard as a separate process (in
//! parallel, in random order, one of them twice), then `finalize`, against the stand-ins. The
//! export must equal a single-run export of the same table, item for item and file for file.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Output, Stdio};

use serde_json::Value;

use crate::items;
use crate::util::{self, Standins};

fn summary_key(output: &Output) -> String {
    util::completed(output).1
}

fn spawn(standins: &Standins, args: &[&str]) -> Child {
    standins.command().args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("ddb-export runs")
}

#[tokio::test]
async fn a_fanned_out_export_equals_a_single_run_export() {
    let standins = Standins::start();
    let dynamodb = standins.dynamodb();
    let mut seeded = items::edge_cases();
    seeded.extend(items::ordinary(4000));
    util::create_table(&dynamodb, "orders", &seeded).await;
    standins.create_bucket("exports").await;
    let bucket_dir = standins.bucket_dir("exports");
    let settings = ["--table", "orders", "--segments", "6", "--file-size", "65536", "--no-read-limit"];

    let single = util::run(standins.command().arg("export").args(settings).args(["--to", "s3://exports/single"]));
    let single_summary = summary_key(&single);

    let work = tempfile::tempdir().unwrap();
    let plan_file = work.path().join("plan.json");
    let planned = util::run(
        standins
            .command()
            .arg("plan")
            .args(settings)
            .args(["--to", "s3://exports/fanned"])
            .args(["--out".as_ref(), plan_file.as_os_str()]),
    );
    assert!(planned.status.success(), "plan failed: {}", String::from_utf8_lossy(&planned.stderr));
    let plan = util::stdout_json(&planned);
    assert_eq!(plan, serde_json::from_slice::<Value>(&std::fs::read(&plan_file).unwrap()).unwrap());
    let shards: Vec<u64> = plan["shards"].as_array().unwrap().iter().map(|s| s.as_u64().unwrap()).collect();
    assert_eq!(shards, (0..6).collect::<Vec<u64>>());
    let location = plan["exportLocation"].as_str().unwrap().to_string();
    assert!(location.starts_with("s3://exports/fanned/AWSDynamoDB/"), "{location}");
    let export_root = location.trim_start_matches("s3://exports/").to_string();
    assert!(bucket_dir.join(&export_root).join("_started").exists(), "plan records the export's start");
    assert!(util::keys_under(&bucket_dir.join(&export_root)).iter().all(|k| !k.starts_with("data/")));

    // Finalizing before the shards ran is refused, naming them, and publishes nothing.
    let early = util::run(standins.command().args(["finalize", "--plan", &location]));
    assert_eq!(early.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&early.stderr);
    assert!(stderr.contains("6 of 6 shards") && stderr.contains("0, 1, 2, 3, 4, 5"), "{stderr}");
    assert!(!bucket_dir.join(&export_root).join("manifest-summary.json").exists());

    // Every shard in its own process, all at once, in a random order, one of them twice at
    // the same time (a task a workflow engine ran twice); half of them name the plan file,
    // half the export's location.
    let mut order = shards.clone();
    fastrand::Rng::with_seed(7).shuffle(&mut order);
    let twice = order[2];
    order.insert(4, twice);
    let plan_arg = plan_file.to_string_lossy().to_string();
    let workers: Vec<(u64, Child)> = order
        .iter()
        .map(|&shard| {
            let plan = if shard % 2 == 0 { plan_arg.as_str() } else { location.as_str() };
            (shard, spawn(&standins, &["run-shard", "--plan", plan, "--shard", &shard.to_string(), "--no-read-limit"]))
        })
        .collect();
    let mut stored: HashMap<u64, u64> = HashMap::new();
    let mut twins = Vec::new();
    for (shard, worker) in workers {
        let output = worker.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr).to_string();
        if shard == twice {
            // One of the two runs the shard; the other finds it busy (its lease) or done.
            twins.push(match output.status.success() {
                true => util::stdout_json(&output)["status"].as_str().unwrap().to_string(),
                false if stderr.contains("holds its lease") => "BUSY".to_string(),
                false => panic!("shard {shard}'s twin failed otherwise: {stderr}"),
            });
            if !output.status.success() {
                continue;
            }
        } else {
            assert!(output.status.success(), "shard {shard} failed: {stderr}");
        }
        let report = util::stdout_json(&output);
        assert_eq!(report["shard"].as_u64(), Some(shard));
        assert!(report["status"] == "COMPLETED" || shard == twice, "{report}");
        stored.insert(shard, report["itemCount"].as_u64().unwrap());
    }
    let completed = twins.iter().filter(|t| *t == "COMPLETED").count();
    let other_ok = twins.iter().all(|t| ["COMPLETED", "ALREADY_COMPLETED", "BUSY"].contains(&t.as_str()));
    assert!(twins.len() == 2 && completed == 1 && other_ok, "one twin runs the shard: {twins:?}");
    assert_eq!(stored.values().sum::<u64>(), seeded.len() as u64);

    // A shard run again (a retried task) reads nothing and changes nothing.
    let before = util::keys_under(&bucket_dir.join(&export_root));
    let again =
        util::run(standins.command().args(["run-shard", "--plan", &location, "--shard", "3", "--max-rcu", "100"]));
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    let report = util::stdout_json(&again);
    assert_eq!(report["status"], "ALREADY_COMPLETED");
    assert_eq!(report["itemCount"].as_u64(), stored.get(&3).copied());
    assert_eq!(util::keys_under(&bucket_dir.join(&export_root)), before);

    let finalized = util::run(standins.command().args(["finalize", "--plan", &plan_arg]));
    let fanned_summary = summary_key(&finalized);
    let description = util::stdout_json(&finalized);
    assert_eq!(description["ExportDescription"]["ExportArn"], plan["exportArn"]);
    assert_eq!(description["ExportDescription"]["ItemCount"].as_u64(), Some(seeded.len() as u64));

    // The same items, in the same data files byte for byte, as the single run.
    let expected = util::sorted_canonical(util::scan_all(&dynamodb, "orders").await.iter().map(util::canonical));
    assert_eq!(expected.len(), seeded.len());
    assert!(util::independent_check(&bucket_dir, &fanned_summary) == expected, "the fanned-out export differs");
    assert!(util::independent_check(&bucket_dir, &single_summary) == expected, "the single-run export differs");
    let (fanned, single) =
        (util::data_files(&bucket_dir, &fanned_summary), util::data_files(&bucket_dir, &single_summary));
    assert!(fanned.len() >= 6, "files roll over: {fanned:?}");
    assert_eq!(fanned, single);
    // Checkpoints are gone; a second finalize returns the complete export unchanged.
    assert!(!util::keys_under(&bucket_dir.join(&export_root)).iter().any(|k| k.contains("_ddb-export/shards")));
    let again = util::run(standins.command().args(["finalize", "--plan", &location]));
    assert_eq!(summary_key(&again), fanned_summary);
}

#[tokio::test]
async fn fan_out_refuses_what_it_cannot_run() {
    let standins = Standins::start();
    util::create_table(&standins.dynamodb(), "orders", &items::ordinary(10)).await;
    standins.create_bucket("exports").await;
    let planned = util::run(standins.command().args(["plan", "--table", "orders", "--to", "s3://exports/p"]));
    assert!(planned.status.success(), "{}", String::from_utf8_lossy(&planned.stderr));
    let plan = util::stdout_json(&planned);
    let location = plan["exportLocation"].as_str().unwrap();
    let shards = plan["shards"].as_array().unwrap().len();

    let cases: Vec<(Vec<String>, String)> = vec![
        (
            vec![
                "run-shard".into(),
                "--plan".into(),
                location.into(),
                "--shard".into(),
                shards.to_string(),
                "--no-read-limit".into(),
            ],
            "--shard".into(),
        ),
        (
            vec![
                "run-shard".into(),
                "--plan".into(),
                "s3://exports/p".into(),
                "--shard".into(),
                "0".into(),
                "--no-read-limit".into(),
            ],
            "--plan".into(),
        ),
        (
            vec![
                "run-shard".into(),
                "--plan".into(),
                "s3://exports/p/AWSDynamoDB/01700000000000-0000abcd".into(),
                "--shard".into(),
                "0".into(),
                "--no-read-limit".into(),
            ],
            "does not exist".into(),
        ),
        (
            vec![
                "plan".into(),
                "--table".into(),
                "orders".into(),
                "--to".into(),
                "s3://exports/p".into(),
                "--consistent".into(),
            ],
            "--consistent".into(),
        ),
    ];
    for (args, words) in cases {
        let output = util::run(standins.command().args(&args));
        let stderr = String::from_utf8_lossy(&output.stderr);
        // A request wrong as it stands is a usage error (2); a missing export a failure (1).
        let code = if words == "does not exist" { 1 } else { 2 };
        assert_eq!(output.status.code(), Some(code), "{args:?}: {stderr}");
        assert!(stderr.contains(&words), "{args:?} should mention {words:?}: {stderr}");
    }

    // A directory that holds no export is not created by a worker or by finalize.
    let nowhere = tempfile::tempdir().unwrap();
    let missing = nowhere.path().join("exports");
    let no_export = missing.join("AWSDynamoDB/01700000000000-0000abcd");
    for step in [&["run-shard", "--shard", "0", "--no-read-limit"][..], &["finalize"]] {
        let output = util::run(standins.command().args(step).arg("--plan").arg(&no_export));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{step:?}: {stderr}");
        assert!(stderr.contains("cannot open the directory"), "{step:?}: {stderr}");
        assert!(!missing.exists(), "{step:?} created {}", missing.display());
    }

    // What the worker was given pins the saved state: another owner, or a plan file that
    // disagrees with it, is refused before anything is read.
    let work = tempfile::tempdir().unwrap();
    let plan_file = work.path().join("plan.json");
    let mut edited = plan.clone();
    edited["tableArn"] = "arn:aws:dynamodb:us-east-1:000000000000:table/other".into();
    std::fs::write(&plan_file, edited.to_string()).unwrap();
    let pinned: [(Vec<&str>, &str); 2] = [
        (vec!["--plan", location, "--s3-bucket-owner", "123456789012"], "planned with --s3-bucket-owner"),
        (vec!["--plan", plan_file.to_str().unwrap()], "its table is not the plan file's"),
    ];
    for (args, words) in pinned {
        let output = util::run(standins.command().args(["run-shard", "--shard", "0", "--no-read-limit"]).args(&args));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(words), "{args:?} should mention {words:?}: {stderr}");
    }
    let export_root = location.trim_start_matches("s3://exports/");
    assert!(!util::keys_under(&standins.bucket_dir("exports").join(export_root)).iter().any(|k| k.contains("data/")));
}

#[tokio::test]
async fn every_step_of_a_plugin_export_must_run_the_same_plugin() {
    let standins = Standins::start();
    util::create_table(&standins.dynamodb(), "orders", &items::ordinary(50)).await;
    standins.create_bucket("exports").await;
    let csv = util::test_component("csv-encoder").to_str().unwrap();
    let plugin = ["--encoder", csv, "--encoder-arg", "columns=pk,n"];
    let planned = util::run(
        standins
            .command()
            .args(["plan", "--table", "orders", "--to", "s3://exports/csv", "--segments", "2"])
            .args(plugin),
    );
    assert!(planned.status.success(), "{}", String::from_utf8_lossy(&planned.stderr));
    let location = util::stdout_json(&planned)["exportLocation"].as_str().unwrap().to_string();

    // Without the plugin, or with other arguments: refused, naming the flag; nothing written.
    for other in [vec![], vec!["--encoder", csv, "--encoder-arg", "columns=pk"]] {
        let output = util::run(
            standins.command().args(["run-shard", "--plan", &location, "--shard", "0", "--no-read-limit"]).args(&other),
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{other:?}: {stderr}");
        assert!(stderr.contains("--encoder/--encoder-arg"), "{other:?}: {stderr}");
    }
    let export_root = location.trim_start_matches("s3://exports/").to_string();
    let bucket_dir = standins.bucket_dir("exports");
    assert!(!util::keys_under(&bucket_dir.join(&export_root)).iter().any(|k| k.starts_with("data/")));

    for shard in ["0", "1"] {
        let output = util::run(
            standins
                .command()
                .args(["run-shard", "--plan", &location, "--shard", shard, "--no-read-limit"])
                .args(plugin),
        );
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    }
    let finalized = util::run(standins.command().args(["finalize", "--plan", &location]).args(plugin));
    let summary = summary_key(&finalized);
    assert_eq!(util::stdout_json(&finalized)["ExportDescription"]["ExportFormat"], "CSV");
    assert!(util::data_files(&bucket_dir, &summary).iter().map(|(_, n)| n).sum::<u64>() == 50);
}

#[tokio::test]
async fn one_live_worker_per_shard_and_a_shard_whose_files_changed_is_run_again() {
    let standins = Standins::start();
    let dynamodb = standins.dynamodb();
    util::create_table(&dynamodb, "orders", &items::ordinary(2000)).await;
    let work = tempfile::tempdir().unwrap();
    let destination = work.path().join("exports");
    let to = destination.to_str().unwrap();
    let planned = util::run(standins.command().args(["plan", "--table", "orders", "--to", to, "--segments", "1"]));
    assert!(planned.status.success(), "{}", String::from_utf8_lossy(&planned.stderr));
    let plan = util::stdout_json(&planned);
    let location = plan["exportLocation"].as_str().unwrap().to_string();

    // A slow worker holds the shard (its read budget stretches it over seconds); a second
    // started meanwhile is refused, and writes nothing.
    let slow = spawn(&standins, &["run-shard", "--plan", &location, "--shard", "0", "--max-rcu", "20"]);
    std::thread::sleep(std::time::Duration::from_millis(2000));
    let busy =
        util::run(standins.command().args(["run-shard", "--plan", &location, "--shard", "0", "--no-read-limit"]));
    let stderr = String::from_utf8_lossy(&busy.stderr);
    assert_eq!(busy.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("shard 0 is busy") && stderr.contains("holds its lease"), "{stderr}");
    let slow = slow.wait_with_output().unwrap();
    assert!(slow.status.success(), "{}", String::from_utf8_lossy(&slow.stderr));
    assert_eq!(util::stdout_json(&slow)["status"], "COMPLETED");
    let leases: Vec<String> =
        util::keys_under(Path::new(&location)).into_iter().filter(|k| k.contains("_ddb-export/leases")).collect();
    assert!(leases.is_empty(), "the lease is released: {leases:?}");

    // A data file changed after its shard recorded it (a worker that outlived its lease, say):
    // finalize refuses, naming it, and resets the shard, which runs again.
    let data = Path::new(&location).join("data");
    let file = std::fs::read_dir(&data).unwrap().next().unwrap().unwrap().path();
    let mut bytes = std::fs::read(&file).unwrap();
    bytes.extend_from_slice(b"junk");
    std::fs::write(&file, bytes).unwrap();
    let refused = util::run(standins.command().args(["finalize", "--plan", &location]));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("has MD5") && stderr.contains("run-shard --shard 0"), "{stderr}");
    assert!(!Path::new(&location).join("manifest-summary.json").exists());
    let again =
        util::run(standins.command().args(["run-shard", "--plan", &location, "--shard", "0", "--no-read-limit"]));
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    assert_eq!(util::stdout_json(&again)["status"], "COMPLETED");
    let finalized = util::run(standins.command().args(["finalize", "--plan", &location]));
    let summary = summary_key(&finalized);
    let expected = util::sorted_canonical(util::scan_all(&dynamodb, "orders").await.iter().map(util::canonical));
    assert!(util::independent_check(&destination, &summary) == expected, "the export differs from the table");

    // A planned export is not resumed by `export`: its shards run under leases.
    let token = util::run(standins.command().args(["plan", "--table", "orders", "--to", to, "--client-token", "fan"]));
    assert!(token.status.success(), "{}", String::from_utf8_lossy(&token.stderr));
    let export =
        util::run(standins.command().args(["export", "--table", "orders", "--to", to, "--client-token", "fan"]));
    let stderr = String::from_utf8_lossy(&export.stderr);
    assert_eq!(export.status.code(), Some(2), "the wrong command for this export: {stderr}");
    assert!(stderr.contains("planned for fan-out"), "{stderr}");
}
