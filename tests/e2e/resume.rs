//! Idempotency and resumption, through the real binary against the stand-ins: the same client
//! token returns (or resumes) its export and refuses other settings; an export killed at
//! random points and run again ends exactly equal to the table.

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Instant;

use crate::util::{self, Standins};
use aws_sdk_dynamodb::types::AttributeValue;

/// `n` items of about `bytes` bytes each; the payload is pseudo-random so it compresses little.
fn sized_items(n: usize, bytes: usize, seed: u64) -> Vec<HashMap<String, AttributeValue>> {
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..n)
        .map(|i| {
            let payload: String = (0..bytes).map(|_| rng.alphanumeric()).collect();
            HashMap::from([
                ("pk".to_string(), AttributeValue::S(format!("item-{i:06}"))),
                ("n".to_string(), AttributeValue::N(i.to_string())),
                ("payload".to_string(), AttributeValue::S(payload)),
            ])
        })
        .collect()
}

fn export_arn(output: &std::process::Output) -> String {
    let (json, _) = util::completed(output);
    json["ExportDescription"]["ExportArn"].as_str().expect("ExportArn").to_string()
}

fn summary_key(output: &std::process::Output) -> String {
    util::completed(output).1
}

fn failed_with(output: &std::process::Output, words: &[&str]) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(!output.status.success(), "expected a failure, got success: {stderr}");
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    for word in words {
        assert!(stderr.contains(word), "stderr does not mention {word:?}: {stderr}");
    }
    stderr
}

/// Every file under `dir` with its bytes, by relative path.
fn files_under(dir: &Path) -> HashMap<String, Vec<u8>> {
    util::keys_under(dir).into_iter().map(|key| (key.clone(), std::fs::read(dir.join(&key)).unwrap())).collect()
}

#[tokio::test]
async fn a_client_token_returns_its_export_and_refuses_other_settings() {
    let standins = Standins::start();
    let dynamodb = standins.dynamodb();
    util::create_table(&dynamodb, "orders", &sized_items(300, 200, 1)).await;
    standins.create_bucket("exports").await;
    let expected = util::sorted_canonical(util::scan_all(&dynamodb, "orders").await.iter().map(util::canonical));
    let export = |to: &str, extra: &[&str]| {
        let mut command = standins.command();
        command.args(["export", "--table", "orders", "--to", to, "--client-token", "nightly-2026-11-25"]);
        command.args(["--segments", "3"]).args(extra);
        util::run(&mut command)
    };

    let first = export("s3://exports/a", &[]);
    let arn = export_arn(&first);
    let bucket_dir = standins.bucket_dir("exports");
    assert_eq!(util::independent_check(&bucket_dir, &summary_key(&first)), expected);
    let before = files_under(&bucket_dir);

    // The same token and settings: the same export, and nothing read or written again.
    let second = export("s3://exports/a", &[]);
    assert_eq!(export_arn(&second), arn);
    assert_eq!(util::stdout_json(&second)["ExportDescription"]["ItemCount"], 300);
    assert!(String::from_utf8_lossy(&second.stderr).contains("already complete"));
    assert_eq!(files_under(&bucket_dir), before, "a repeated token changed the bucket");

    // The same token with another prefix, or another file size: refused, nothing written.
    let stderr = failed_with(&export("s3://exports/b", &[]), &["IdempotentParameterMismatch", "prefix of --to"]);
    assert!(stderr.contains(arn.rsplit('/').next().unwrap()), "the conflict names the export: {stderr}");
    failed_with(&export("s3://exports/a", &["--file-size", "1000"]), &["IdempotentParameterMismatch", "--file-size"]);
    // Or another table: a conflict naming --table, not a complaint about the saved state.
    util::create_table(&dynamodb, "returns", &sized_items(3, 20, 9)).await;
    let mut command = standins.command();
    command.args(["export", "--table", "returns", "--to", "s3://exports/a", "--client-token", "nightly-2026-11-25"]);
    let output = util::run(command.args(["--segments", "3"]));
    failed_with(&output, &["IdempotentParameterMismatch", "--table: arn:", "table/orders before"]);
    assert_eq!(files_under(&bucket_dir), before, "a refused token changed the bucket");

    // The same token at a directory is another store: a new export there.
    let dir = tempfile::tempdir().unwrap();
    let third = export(dir.path().to_str().unwrap(), &[]);
    assert_ne!(export_arn(&third), arn);
    assert_eq!(util::independent_check(dir.path(), &summary_key(&third)), expected);
}

#[tokio::test]
async fn resume_refuses_what_it_cannot_resume() {
    let standins = Standins::start();
    let dynamodb = standins.dynamodb();
    util::create_table(&dynamodb, "orders", &sized_items(20, 50, 2)).await;
    standins.create_bucket("exports").await;
    let resume = |id: &str, extra: &[&str]| {
        let mut command = standins.command();
        command.args(["export", "--table", "orders", "--to", "s3://exports/p", "--resume", id]).args(extra);
        util::run(&mut command)
    };

    let output = resume("not-an-id", &[]);
    assert_eq!(output.status.code(), Some(2), "a usage error");
    assert!(String::from_utf8_lossy(&output.stderr).contains("invalid --resume"));

    failed_with(&resume("01764000000000-0123abcd", &[]), &["no export 01764000000000-0123abcd to resume", "run.json"]);

    // A complete export resumed is returned as it is; with other settings it is refused.
    let mut command = standins.command();
    let first = util::run(command.args(["export", "--table", "orders", "--to", "s3://exports/p"]));
    let arn = export_arn(&first);
    assert_eq!(export_arn(&resume(&arn, &[])), arn, "resume by ARN");
    let id = arn.rsplit('/').next().unwrap();
    failed_with(
        &resume(id, &["--compression-level", "1"]),
        &["cannot be resumed", "--compression-level: 6 before, 1 now"],
    );
    // `--resume ID` takes the settings it leaves out from the export: one started with
    // `--segments 4 --compression-level 1` is found again without them; given otherwise, each
    // difference is named with its flag and both values in words.
    let mut command = standins.command();
    command.args(["export", "--table", "orders", "--to", "s3://exports/p", "--segments", "4"]);
    let tuned = util::run(command.args(["--compression-level", "1", "--format", "ion"]));
    let tuned_arn = export_arn(&tuned);
    let tuned_id = tuned_arn.rsplit('/').next().unwrap();
    let again = resume(tuned_id, &[]);
    assert_eq!(export_arn(&again), tuned_arn, "{}", String::from_utf8_lossy(&again.stderr));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already complete"));
    let stderr = failed_with(
        &resume(tuned_id, &["--segments", "2", "--format", "dynamodb-json"]),
        &["cannot be resumed", "--segments: 4 before, 2 now", "--format: ION before, DYNAMODB_JSON now"],
    );
    assert!(!stderr.contains("Some(") && !stderr.contains("None"), "in words: {stderr}");
    // A complete export keeps no shard checkpoints (s3s-fs may leave their empty folder).
    assert!(dir_is_empty(&standins.bucket_dir("exports").join("p/AWSDynamoDB").join(id).join("_ddb-export/shards")));
}

/// Kills the export with SIGKILL at ten random moments, then runs the same command again
/// (same client token): each run must end with an export equal to the table, item for item,
/// with a valid manifest and no unlisted data file. Half the runs write to S3, half to a
/// directory.
#[tokio::test]
async fn exports_killed_at_random_points_resume_to_exactly_the_table() {
    let standins = Standins::start();
    let dynamodb = standins.dynamodb();
    util::create_table(&dynamodb, "orders", &sized_items(3000, 1500, 3)).await;
    standins.create_bucket("exports").await;
    let expected = util::sorted_canonical(util::scan_all(&dynamodb, "orders").await.iter().map(util::canonical));
    let dirs: Vec<tempfile::TempDir> = (0..10).map(|_| tempfile::tempdir().unwrap()).collect();
    let command = |run: usize| {
        let to = if run.is_multiple_of(2) {
            format!("s3://exports/run{run}")
        } else {
            dirs[run % dirs.len()].path().display().to_string()
        };
        let mut command = standins.command();
        command.args(["export", "--table", "orders", "--to", &to, "--client-token", &format!("kill-{run}")]);
        // Small files: a run stores dozens, so a kill lands between, during and after files.
        command.args(["--segments", "4", "--parallelism", "4", "--file-size", "65536", "--progress", "off"]);
        command
    };

    // How long an undisturbed export takes, and how long before it has recorded its start
    // (`_started`: its lease, then its state), to spread the kills over it: from late in
    // that start to nearly the end, so that most land while data is written.
    let started = Instant::now();
    let mut reference = command(98).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("ddb-export starts");
    let recorded = loop {
        let started_key = util::keys_under(&standins.bucket_dir("exports").join("run98"));
        if started_key.iter().any(|k| k.ends_with("/_started")) || reference.try_wait().unwrap().is_some() {
            break started.elapsed();
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    let reference = reference.wait_with_output().unwrap();
    let full = started.elapsed();
    export_arn(&reference);
    assert_eq!(util::independent_check(&standins.bucket_dir("exports"), &summary_key(&reference)), expected);

    let mut rng = fastrand::Rng::with_seed(20261125);
    let mut resumed = 0;
    for run in 0..10 {
        let from = recorded.mul_f64(0.9);
        let kill_after = from + (full.saturating_sub(from)).mul_f64(0.05 + 0.9 * rng.f64());
        let mut child = command(run).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("ddb-export starts");
        std::thread::sleep(kill_after);
        let _ = child.kill(); // SIGKILL
        let status = child.wait().unwrap();

        let output = util::run(&mut command(run));
        let stderr = String::from_utf8_lossy(&output.stderr).to_string();
        assert!(
            output.status.success(),
            "run {run} (killed after {kill_after:?}, {status}) failed to resume: {stderr}"
        );
        if stderr.contains("resuming export") {
            resumed += 1;
        }
        let root = if run.is_multiple_of(2) {
            standins.bucket_dir("exports")
        } else {
            dirs[run % dirs.len()].path().to_path_buf()
        };
        let items = util::independent_check(&root, &summary_key(&output));
        assert_eq!(items.len(), expected.len(), "run {run}, killed after {kill_after:?}: wrong item count");
        assert_eq!(items, expected, "run {run}, killed after {kill_after:?}: items differ from the table");
        // Nothing is left of the run's checkpoints, and no staging file of a directory.
        let export_root = Path::new(&summary_key(&output)).parent().unwrap().to_path_buf();
        assert!(dir_is_empty(&root.join(&export_root).join("_ddb-export/shards")), "run {run} left checkpoints");
        if !run.is_multiple_of(2) {
            let staging = root.join(".ddb-export-staging");
            assert!(dir_is_empty(&staging), "run {run} left staging files: {:?}", util::keys_under(&staging));
        }
    }
    eprintln!(
        "an undisturbed export took {full:?} (its start recorded after {recorded:?}); {resumed} of 10 killed runs \
         resumed an unfinished export"
    );
    assert!(
        resumed >= 3,
        "only {resumed} of 10 runs were killed mid-export and resumed; the test does not test resumption"
    );
}

fn dir_is_empty(dir: &Path) -> bool {
    std::fs::read_dir(dir).map(|mut entries| entries.next().is_none()).unwrap_or(true)
}

/// A run killed while a data file is a multipart upload leaves parts in the store; the
/// resumed run aborts that upload (by the id its checkpoint recorded: s3s-fs cannot list
/// uploads) and rewrites the file.
#[tokio::test]
async fn a_multipart_upload_left_by_a_killed_run_is_aborted_on_resume() {
    let standins = Standins::start();
    let dynamodb = standins.dynamodb();
    // ~10 MB stored uncompressed in one file: an 8 MiB part, then the rest.
    util::create_table(&dynamodb, "orders", &sized_items(7000, 1500, 4)).await;
    standins.create_bucket("exports").await;
    let expected = util::sorted_canonical(util::scan_all(&dynamodb, "orders").await.iter().map(util::canonical));
    let command = || {
        let mut command = standins.command();
        command.args(["export", "--table", "orders", "--to", "s3://exports/big", "--client-token", "multipart"]);
        command.args(["--segments", "1", "--file-size", "0", "--compression-level", "0", "--max-rcu", "400"]);
        command
    };
    let s3_root = standins.bucket_dir("exports").parent().unwrap().to_path_buf();
    let upload_files = || -> Vec<String> {
        std::fs::read_dir(&s3_root)
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|name| name.starts_with(".upload"))
            .collect()
    };

    let mut child = command().stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("ddb-export starts");
    let deadline = Instant::now() + std::time::Duration::from_secs(60);
    let recorded = loop {
        let checkpoint = util::keys_under(&standins.bucket_dir("exports"))
            .into_iter()
            .find(|key| key.contains("/_ddb-export/shards/"))
            .and_then(|key| std::fs::read_to_string(standins.bucket_dir("exports").join(key)).ok());
        if let Some(text) = checkpoint.filter(|t| t.contains("\"open_upload\": {")) {
            break text;
        }
        assert!(Instant::now() < deadline, "no multipart upload was recorded within 60 s");
        assert!(child.try_wait().unwrap().is_none(), "the export ended before a multipart upload began");
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    let _ = child.kill();
    child.wait().unwrap();
    assert!(!upload_files().is_empty(), "the killed run left no upload behind to abort");
    let json: serde_json::Value = serde_json::from_str(&recorded).unwrap();
    let upload_id = json["open_upload"]["upload_id"].as_str().unwrap().to_string();
    let upload_key = json["open_upload"]["key"].as_str().unwrap().to_string();

    let output = util::run(&mut command());
    export_arn(&output);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("1 unfinished uploads aborted"), "{stderr}");
    assert!(
        !upload_files().iter().any(|f| f.contains(&upload_id)),
        "upload {upload_id} was not aborted: {:?}",
        upload_files()
    );
    assert!(upload_files().is_empty(), "uploads left in the store: {:?}", upload_files());
    assert_eq!(util::independent_check(&standins.bucket_dir("exports"), &summary_key(&output)), expected);
    // The file the killed run was writing was rewritten under its own name.
    let root = summary_key(&output).trim_end_matches("manifest-summary.json").to_string();
    let listing =
        std::fs::read_to_string(standins.bucket_dir("exports").join(root).join("manifest-files.json")).unwrap();
    assert!(listing.contains(&upload_key), "{upload_key} is not in the manifest:\n{listing}");
}

/// The saved state lives where others can write: what does not hold together is refused with
/// the file named, never acted on.
#[tokio::test]
async fn tampered_saved_state_is_refused_not_trusted() {
    let standins = Standins::start();
    util::create_table(&standins.dynamodb(), "orders", &sized_items(50, 100, 5)).await;
    let dir = tempfile::tempdir().unwrap();
    let export = || {
        let mut command = standins.command();
        command.args(["export", "--table", "orders", "--to"]).arg(dir.path());
        command.args(["--client-token", "tamper", "--segments", "2"]);
        util::run(&mut command)
    };
    let first = export();
    export_arn(&first);
    let root = dir.path().join(Path::new(&summary_key(&first)).parent().unwrap());
    // Make it look interrupted: no manifests, and a checkpoint of shard 0.
    for name in ["manifest-summary.json", "manifest-summary.md5", "manifest-files.json", "manifest-files.md5"] {
        std::fs::remove_file(root.join(name)).unwrap();
    }
    let data_file = util::keys_under(&root.join("data")).into_iter().next().expect("a data file");
    let key = Path::new(&summary_key(&first)).parent().unwrap().join("data").join(&data_file);
    let checkpoint = |shard: u32, resume_key: serde_json::Value| {
        serde_json::json!({
            "shard": shard, "done": false, "items": 1, "next_sequence": 1, "resume_key": resume_key, "open_upload": null,
            "files": [{"data_file_s3_key": key.to_str().unwrap(), "item_count": 1, "md5_checksum": "x", "etag": "y"}],
        })
    };
    let shards = root.join("_ddb-export/shards");
    std::fs::create_dir_all(&shards).unwrap();
    std::fs::write(shards.join("0000000.json"), checkpoint(0, serde_json::Value::Null).to_string()).unwrap();
    failed_with(&export(), &["0000000.json", "is unreadable", "records files but no key to resume after them"]);

    std::fs::write(
        shards.join("0000000.json"),
        checkpoint(0, serde_json::json!({"pk": {"S": "item-000001"}})).to_string(),
    )
    .unwrap();
    std::fs::write(
        shards.join("0000001.json"),
        checkpoint(1, serde_json::json!({"pk": {"S": "item-000002"}})).to_string(),
    )
    .unwrap();
    failed_with(&export(), &["is recorded twice"]);
    std::fs::remove_file(shards.join("0000001.json")).unwrap();

    // run.json whose snapshot says another prefix than its settings.
    let run = root.join("_ddb-export/run.json");
    let original = std::fs::read_to_string(&run).unwrap();
    let mut state: serde_json::Value = serde_json::from_str(&original).unwrap();
    state["snapshot"]["s3_prefix"] = serde_json::json!("elsewhere");
    std::fs::write(&run, state.to_string()).unwrap();
    failed_with(&export(), &["run.json", "is unreadable", "s3-prefix"]);
    std::fs::write(&run, original).unwrap();

    // Without the bogus checkpoint the export resumes: both shards from the start, rewriting
    // the same file names.
    std::fs::remove_file(shards.join("0000000.json")).unwrap();
    let output = export();
    export_arn(&output);
    let expected =
        util::sorted_canonical(util::scan_all(&standins.dynamodb(), "orders").await.iter().map(util::canonical));
    assert_eq!(util::independent_check(dir.path(), &summary_key(&output)), expected);
}
