//! What must hold for a run from a scheduler at 3 a.m., through the real binary against the
//! stand-ins: one writer per export however many runs start; a filtered export reads what an
//! unfiltered one does; an endpoint that never answers fails the command in bounded time; a
//! lost data file heals on the rerun; signals stop a run cleanly; bad requests are refused,
//! with exit code 2, before anything is written.

use std::collections::HashMap;
use std::net::TcpListener;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::Value;

use crate::util::{self, Standins};

type Item = HashMap<String, AttributeValue>;

/// `count` small items: `pk` `k000000`…, a number, a short string.
fn small_items(count: usize) -> Vec<Item> {
    (0..count)
        .map(|i| {
            HashMap::from([
                ("pk".to_string(), AttributeValue::S(format!("k{i:06}"))),
                ("n".to_string(), AttributeValue::N(i.to_string())),
                ("s".to_string(), AttributeValue::S(format!("value {i} of the table"))),
            ])
        })
        .collect()
}

/// Writes `items` with several BatchWriteItem calls at once (dynalite is faster fed in parallel).
async fn seed(client: &aws_sdk_dynamodb::Client, table: &str, items: Vec<Item>) {
    util::create_table(client, table, &[]).await;
    let mut tasks = tokio::task::JoinSet::new();
    for chunk in items.chunks(items.len().div_ceil(8).max(1)) {
        let (client, table, chunk) = (client.clone(), table.to_string(), chunk.to_vec());
        tasks.spawn(async move { util::put_items(&client, &table, &chunk).await });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("a seeding task");
    }
}

/// Keeps inserting, updating and deleting items `k000000`… of `table` until `stop` is set.
fn keep_writing(
    client: aws_sdk_dynamodb::Client,
    table: &str,
    keys: usize,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> tokio::task::JoinHandle<u64> {
    let table = table.to_string();
    tokio::spawn(async move {
        let mut rng = fastrand::Rng::with_seed(11);
        let mut writes = 0u64;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let pk = AttributeValue::S(format!("k{:06}", rng.usize(..keys + keys / 10)));
            let result = if rng.u8(..4) == 0 {
                client.delete_item().table_name(&table).key("pk", pk).send().await.map(drop).map_err(|e| e.to_string())
            } else {
                let item = HashMap::from([
                    ("pk".to_string(), pk),
                    ("n".to_string(), AttributeValue::N(writes.to_string())),
                    ("s".to_string(), AttributeValue::S(format!("rewritten {writes}"))),
                ]);
                client
                    .put_item()
                    .table_name(&table)
                    .set_item(Some(item))
                    .send()
                    .await
                    .map(drop)
                    .map_err(|e| e.to_string())
            };
            result.expect("a concurrent write");
            writes += 1;
        }
        writes
    })
}

fn spawn(command: &mut Command) -> Child {
    command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("ddb-export starts")
}

fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `ddb-export verify` of an export's folder: its report, checked to say it verified.
fn verified(command: &mut Command) -> Value {
    let output = util::run(command);
    let report = util::stdout_json(&output);
    assert!(output.status.success() && report["Verified"] == true, "the export does not verify: {report}");
    report
}

// Multi-threaded: the writer task keeps writing while this one waits for the runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runs_of_one_export_at_once_never_publish_a_manifest_that_lies() {
    let standins = Standins::start();
    let dynamodb = standins.dynamodb();
    let keys = 50_000;
    seed(&dynamodb, "busy", small_items(keys)).await;
    standins.create_bucket("exports").await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = keep_writing(dynamodb.clone(), "busy", keys, stop.clone());

    for round in 0..5 {
        let token = format!("overlap-{round}");
        let run = || {
            let mut command = standins.command();
            command.args(["export", "--table", "busy", "--to", "s3://exports/p", "--client-token", &token]);
            command.args(["--segments", "16", "--max-rcu", "150", "--file-size", "100000"]);
            spawn(&mut command)
        };
        let first = run();
        std::thread::sleep(Duration::from_millis(300));
        let second = run();
        let outputs = [first.wait_with_output().unwrap(), second.wait_with_output().unwrap()];
        // The one that wrote it says how many items it exported; the other was refused while
        // the first held the export, or found it complete.
        let writers: Vec<&Output> = outputs.iter().filter(|o| stderr_of(o).contains("exported ")).collect();
        assert_eq!(writers.len(), 1, "round {round}: {:?}", outputs.iter().map(stderr_of).collect::<Vec<_>>());
        let (json, summary) = util::completed(writers[0]);
        for other in outputs.iter().filter(|o| !stderr_of(o).contains("exported ")) {
            let stderr = stderr_of(other);
            let busy =
                other.status.code() == Some(1) && stderr.contains("is busy") && stderr.contains("holds its lease");
            let returned = other.status.success() && stderr.contains("already complete");
            eprintln!("round {round}, the other run: {}", stderr.lines().last().unwrap_or_default());
            assert!(
                busy || returned,
                "round {round}: the second run neither waited its turn nor returned the export: {stderr}"
            );
            assert!(!stderr.contains("exported "), "round {round}: {stderr}");
        }
        let root = summary.trim_end_matches("/manifest-summary.json");
        let report = verified(standins.command().args(["verify", &format!("s3://exports/{root}")]));
        assert_eq!(report["Items"], json["ExportDescription"]["ItemCount"], "round {round}");
        // The independent checker agrees with the manifests, line by line.
        let items = util::independent_check(&standins.bucket_dir("exports"), &summary);
        assert_eq!(Some(items.len() as u64), json["ExportDescription"]["ItemCount"].as_u64(), "round {round}");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(writer.await.unwrap() > 100, "the table was being written all along");
}

/// The statistics an export reports.
fn statistics(output: &Output) -> (f64, u64, u64) {
    let (json, _) = util::completed(output);
    let stats = &json["ExportDescription"]["DdbExportStatistics"];
    (
        stats["ConsumedReadCapacityUnits"].as_f64().unwrap(),
        stats["ScanPages"].as_u64().unwrap(),
        json["ExportDescription"]["ItemCount"].as_u64().unwrap(),
    )
}

#[tokio::test]
async fn a_filtered_export_reads_what_an_unfiltered_one_reads() {
    let standins = Standins::start();
    let dynamodb = standins.dynamodb();
    // About 400 bytes an item; one in a thousand begins with "keep".
    let items: Vec<Item> = (0..20_000)
        .map(|i| {
            let pk = if i % 1000 == 7 { format!("keep-{i:06}") } else { format!("drop-{i:06}") };
            HashMap::from([
                ("pk".to_string(), AttributeValue::S(pk)),
                ("payload".to_string(), AttributeValue::S(format!("{i:0>390}"))),
            ])
        })
        .collect();
    seed(&dynamodb, "mostly", items).await;
    let out = tempfile::tempdir().unwrap();
    let export = |budget: &[&str], filtered: bool| {
        let mut command = standins.command();
        command.args(["export", "--table", "mostly", "--segments", "4"]).arg("--to").arg(out.path()).args(budget);
        if filtered {
            command.args(["--filter", "begins_with(pk, :v)", "--expression-values", r#"{":v":{"S":"keep"}}"#]);
        }
        statistics(&util::run(&mut command))
    };
    for budget in [&[][..], &["--max-rcu", "300"][..]] {
        let (all_rcu, all_pages, all_items) = export(budget, false);
        let (kept_rcu, kept_pages, kept_items) = export(budget, true);
        assert_eq!((all_items, kept_items), (20_000, 20), "{budget:?}");
        let ratio = kept_rcu / all_rcu;
        assert!((0.9..=1.1).contains(&ratio), "{budget:?}: {kept_rcu} RCU filtered vs {all_rcu} unfiltered");
        let pages = kept_pages as f64 / all_pages as f64;
        assert!((0.9..=1.1).contains(&pages), "{budget:?}: {kept_pages} pages filtered vs {all_pages} unfiltered");
    }
}

/// A listener on 127.0.0.1 that accepts connections and never answers (a firewall that drops,
/// a missing VPC endpoint), until dropped.
struct BlackHole {
    url: String,
    _thread: std::thread::JoinHandle<()>,
}

impl BlackHole {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let thread = std::thread::spawn(move || {
            let mut held = Vec::new();
            for stream in listener.incoming().flatten() {
                held.push(stream);
            }
        });
        Self { url, _thread: thread }
    }
}

#[tokio::test]
async fn an_endpoint_that_never_answers_fails_the_command_in_bounded_time_and_says_so() {
    let standins = Standins::start();
    util::create_table(&standins.dynamodb(), "orders", &small_items(10)).await;
    let hole = BlackHole::start();
    let out = tempfile::tempdir().unwrap();
    let cases = [
        (
            "DynamoDB DescribeTable",
            vec![("AWS_ENDPOINT_URL_DYNAMODB", hole.url.as_str())],
            out.path().display().to_string(),
        ),
        (
            "S3 HeadBucket",
            vec![("AWS_ENDPOINT_URL_DYNAMODB", standins.dynamodb_url()), ("AWS_ENDPOINT_URL_S3", hole.url.as_str())],
            "s3://exports/p".to_string(),
        ),
    ];
    for (operation, env, to) in cases {
        let started = Instant::now();
        let output = util::run(util::ddb_export(&env).args(["export", "--table", "orders", "--to", &to]));
        let took = started.elapsed();
        let stderr = stderr_of(&output);
        assert_eq!(output.status.code(), Some(1), "{operation}: {stderr}");
        assert!(took < Duration::from_secs(120), "{operation}: the command took {took:?}");
        let named = format!("no answer from {} to {operation}", hole.url);
        assert!(stderr.contains(&named), "{operation}: the error should say {named:?}: {stderr}");
        let retries = stderr.matches(&format!("retrying {operation} at {}", hole.url)).count();
        assert!(retries >= 2, "{operation}: each retried attempt is a warning: {stderr}");
        assert!(stderr.contains("timeout"), "{operation}: the cause of each attempt: {stderr}");
    }
}

/// Runs an export until one of its shards has recorded a data file, then kills it with SIGKILL.
fn export_killed_after_its_first_checkpoint(command: &mut Command, out: &std::path::Path) -> Value {
    let mut child = spawn(command);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let checkpoint =
            util::keys_under(out).into_iter().find(|key| key.contains("_ddb-export/shards/")).and_then(|key| {
                let saved: Value = serde_json::from_slice(&std::fs::read(out.join(&key)).ok()?).ok()?;
                saved["files"].as_array().filter(|files| files.len() >= 2)?;
                Some(saved)
            });
        if let Some(saved) = checkpoint {
            child.kill().unwrap();
            child.wait().unwrap();
            return saved;
        }
        assert!(child.try_wait().unwrap().is_none(), "the export ended before it could be interrupted");
        assert!(Instant::now() < deadline, "no shard recorded two data files within a minute");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn a_lost_or_replaced_data_file_heals_on_the_rerun_and_says_so() {
    let standins = Standins::start();
    let dynamodb = standins.dynamodb();
    seed(&dynamodb, "healing", small_items(6_000)).await;
    let expected = util::sorted_canonical(util::scan_all(&dynamodb, "healing").await.iter().map(util::canonical));
    for damage in ["deleted", "replaced"] {
        let out = tempfile::tempdir().unwrap();
        let export = |rcu: &str| {
            let mut command = standins.command();
            command.args(["export", "--table", "healing", "--client-token", damage]).arg("--to").arg(out.path());
            command.args(["--segments", "2", "--max-rcu", rcu, "--file-size", "1"]);
            command
        };
        let saved = export_killed_after_its_first_checkpoint(&mut export("1"), out.path());
        let lost = saved["files"][0]["data_file_s3_key"].as_str().unwrap().to_string();
        match damage {
            "deleted" => std::fs::remove_file(out.path().join(&lost)).unwrap(),
            _ => std::fs::write(out.path().join(&lost), b"other bytes").unwrap(),
        }
        let rerun = util::run(&mut export("100000"));
        let stderr = stderr_of(&rerun);
        let (_, summary) = util::completed(&rerun);
        let said = if damage == "deleted" { "is missing from the store" } else { "has MD5" };
        assert!(
            stderr.contains(&lost) && stderr.contains(said) && stderr.contains("is read again"),
            "{damage}: {stderr}"
        );
        assert_eq!(util::independent_check(out.path(), &summary), expected, "{damage}");
        let root = out.path().join(summary.trim_end_matches("/manifest-summary.json"));
        verified(util::ddb_export(&[]).arg("verify").arg(root));
    }
}

#[tokio::test]
async fn sigterm_and_sighup_stop_a_run_as_ctrl_c_does() {
    let standins = Standins::start();
    let dynamodb = standins.dynamodb();
    seed(&dynamodb, "slow", small_items(6_000)).await;
    let expected = util::sorted_canonical(util::scan_all(&dynamodb, "slow").await.iter().map(util::canonical));
    for (name, signal) in [("SIGTERM", libc::SIGTERM), ("SIGHUP", libc::SIGHUP), ("SIGINT", libc::SIGINT)] {
        let out = tempfile::tempdir().unwrap();
        let export = |rcu: &str| {
            let mut command = standins.command();
            command.args(["export", "--table", "slow", "--client-token", name]).arg("--to").arg(out.path());
            command.args(["--segments", "2", "--max-rcu", rcu, "--file-size", "1"]);
            command
        };
        let mut child = spawn(&mut export("1"));
        let deadline = Instant::now() + Duration::from_secs(60);
        while !util::keys_under(out.path()).iter().any(|k| k.contains("/data/")) {
            assert!(Instant::now() < deadline, "{name}: no data file within a minute");
            std::thread::sleep(Duration::from_millis(20));
        }
        // SAFETY: a plain kill(2) of our own child.
        assert_eq!(unsafe { libc::kill(child.id() as i32, signal) }, 0);
        let started = Instant::now();
        let output = loop {
            if child.try_wait().unwrap().is_some() {
                break child.wait_with_output().unwrap();
            }
            assert!(started.elapsed() < Duration::from_secs(30), "{name}: the run did not stop");
            std::thread::sleep(Duration::from_millis(20));
        };
        let stderr = stderr_of(&output);
        use std::os::unix::process::ExitStatusExt as _;
        assert_eq!((output.status.code(), output.status.signal()), (Some(1), None), "{name}: {stderr}");
        assert!(
            stderr.contains(&format!("({name})")) && stderr.contains("stopping the export cleanly"),
            "{name}: {stderr}"
        );
        let description = util::stdout_json(&output);
        assert_eq!(description["ExportDescription"]["ExportStatus"], "FAILED", "{name}");
        assert_eq!(description["ExportDescription"]["FailureCode"], "Interrupted", "{name}");
        assert!(!util::keys_under(out.path()).iter().any(|k| k.ends_with("manifest-summary.json")), "{name}");
        assert!(
            !util::keys_under(out.path()).iter().any(|k| k.contains(".ddb-export-staging")),
            "{name}: an upload left open"
        );
        // The rerun carries on from the checkpoints to exactly the table.
        let rerun = util::run(&mut export("100000"));
        let (_, summary) = util::completed(&rerun);
        assert_eq!(util::independent_check(out.path(), &summary), expected, "{name}");
    }
}

#[tokio::test]
async fn bad_requests_are_refused_with_exit_code_2_before_anything_is_written() {
    let standins = Standins::start();
    util::create_table(&standins.dynamodb(), "orders", &small_items(20)).await;
    standins.create_bucket("exports").await;
    let cases: [(&[&str], &str); 5] = [
        (&["--filter", "begins_with(pk", "--expression-values", r#"{":v":{"S":"k"}}"#], "--filter"),
        (&["--filter", "attribute_exists(#missing)"], "--filter"),
        (&["--segments", "10001"], "--segments: 10001 is not between 1 and 10000"),
        (&["--resume", "not-an-id"], "--resume"),
        (&["--read-percent", "50"], "--read-percent"),
    ];
    for (args, words) in cases {
        let output =
            util::run(standins.command().args(["export", "--table", "orders", "--to", "s3://exports/p"]).args(args));
        let stderr = stderr_of(&output);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(words), "{args:?} should say {words:?}: {stderr}");
        assert!(util::keys_under(&standins.bucket_dir("exports")).is_empty(), "{args:?} wrote something");
    }
    let describe = util::run(standins.command().args(["describe", "s3://exports/p"]));
    assert_eq!(describe.status.code(), Some(2), "{}", stderr_of(&describe));
    let keys = util::run(standins.command().args([
        "verify",
        "s3://exports/p/AWSDynamoDB/01700000000000-0123abcd",
        "--key-attributes",
        "a,b,c",
    ]));
    assert_eq!(keys.status.code(), Some(2), "{}", stderr_of(&keys));
}

#[tokio::test]
async fn a_plan_of_many_segments_is_saved_compactly_and_file_urls_name_local_paths() {
    let standins = Standins::start();
    util::create_table(&standins.dynamodb(), "orders", &small_items(20)).await;
    let out = tempfile::tempdir().unwrap();
    let url = format!("file://localhost{}", out.path().display());
    let planned =
        util::run(standins.command().args(["plan", "--table", "orders", "--to", &url, "--segments", "10000"]));
    assert!(planned.status.success(), "{}", stderr_of(&planned));
    let plan = util::stdout_json(&planned);
    assert_eq!(plan["shards"].as_array().unwrap().len(), 10_000);
    let run_json = util::keys_under(out.path())
        .into_iter()
        .find(|k| k.ends_with("_ddb-export/run.json"))
        .expect("run.json in the directory the URL names");
    let size = std::fs::metadata(out.path().join(&run_json)).unwrap().len();
    assert!(size < 8_000, "run.json is {size} bytes for 10,000 segments");
}

#[tokio::test]
async fn an_item_the_component_cannot_take_is_named_by_its_key_once() {
    let standins = Standins::start();
    let mut deep = AttributeValue::S("leaf".into());
    for _ in 0..33 {
        deep = AttributeValue::M(HashMap::from([("x".to_string(), deep)]));
    }
    let items = vec![
        HashMap::from([("pk".to_string(), AttributeValue::S("the-deep-one".into())), ("d".to_string(), deep)]),
        HashMap::from([("pk".to_string(), AttributeValue::S("plain".into()))]),
    ];
    util::create_table(&standins.dynamodb(), "deep", &items).await;
    let out = tempfile::tempdir().unwrap();
    let output = util::run(standins.command().args(["export", "--table", "deep"]).arg("--to").arg(out.path()));
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let error = stderr.lines().find(|l| l.starts_with("error:")).expect("an error line");
    assert!(error.contains(r#"pk "the-deep-one""#) && error.contains("deeper than 32 levels"), "{error}");
    assert_eq!(error.matches("deeper than 32 levels").count(), 1, "said once: {error}");
}

#[tokio::test]
async fn a_resume_while_the_first_run_lives_is_refused_and_a_killed_run_s_lease_is_taken_over_at_once() {
    let standins = Standins::start();
    let dynamodb = standins.dynamodb();
    seed(&dynamodb, "slow", small_items(6_000)).await;
    let expected = util::sorted_canonical(util::scan_all(&dynamodb, "slow").await.iter().map(util::canonical));
    let out = tempfile::tempdir().unwrap();
    let export = |rcu: &str, extra: &[&str]| {
        let mut command = standins.command();
        command.args(["export", "--table", "slow", "--segments", "2", "--file-size", "1", "--max-rcu", rcu]);
        command.arg("--to").arg(out.path()).args(extra);
        command
    };
    let mut first = spawn(&mut export("1", &["--client-token", "nightly"]));
    let deadline = Instant::now() + Duration::from_secs(60);
    let run_json = loop {
        if let Some(key) = util::keys_under(out.path()).into_iter().find(|k| k.ends_with("_ddb-export/run.json")) {
            break key;
        }
        assert!(Instant::now() < deadline, "no saved state within a minute");
        std::thread::sleep(Duration::from_millis(20));
    };
    let export_id = run_json.split('/').nth(1).unwrap().to_string();
    let resumed = util::run(&mut export("100000", &["--resume", &export_id]));
    let stderr = stderr_of(&resumed);
    assert_eq!(resumed.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&format!("export {export_id} is busy")) && stderr.contains("holds its lease"), "{stderr}");
    let again = util::run(&mut export("100000", &["--client-token", "nightly"]));
    assert!(stderr_of(&again).contains("is busy"), "{}", stderr_of(&again));

    // Killed, its lease stays behind; a run on this machine sees its process has ended.
    first.kill().unwrap();
    first.wait().unwrap();
    let started = Instant::now();
    let rerun = util::run(&mut export("100000", &["--client-token", "nightly"]));
    let (_, summary) = util::completed(&rerun);
    assert!(started.elapsed() < Duration::from_secs(30), "the rerun waited for the lease to expire");
    assert!(stderr_of(&rerun).contains("has ended"), "{}", stderr_of(&rerun));
    assert_eq!(util::independent_check(out.path(), &summary), expected);
}
