//! Hostile components (`tests/hostile`) under the real binary, against the stand-ins.
//!
//! A component that loops, hoards memory, traps, reaches for files, sockets or the environment,
//! or hands back output that breaks the WIT contract must be stopped with an error that names
//! it (and the limit it hit); the export fails cleanly (exit 1, no `manifest-summary.json`,
//! nothing written outside the destination, the table untouched) and the host survives to
//! report it. The hostile component is the default one except for tables named `hostile-…`,
//! so one build serves every case, and an ordinary table still exports correctly through it.

use std::io::{ErrorKind, Read as _};
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::items;
use crate::util::{self, Standins};

/// The hostile component, built for wasm32-wasip2 on first use in a target directory of its
/// own (the outer cargo holds a lock on the normal one). Never built by `host/build.rs`: it is
/// a test fixture, not part of the binary.
fn hostile_component() -> &'static Path {
    util::test_component("ddb-export-hostile")
}

/// Longest any run may take: a host that hangs on a hostile component fails the test instead
/// of hanging it.
const RUN_LIMIT: Duration = Duration::from_secs(120);

/// Runs `command` to completion within [`RUN_LIMIT`], or kills it and fails.
fn run_bounded(command: &mut Command) -> (Output, Duration) {
    let started = Instant::now();
    let mut child =
        command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("the binary starts");
    let drain = |mut pipe: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("stdout")));
    let stderr = drain(Box::new(child.stderr.take().expect("stderr")));
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the binary") {
            break status;
        }
        if started.elapsed() > RUN_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = stderr.join().unwrap_or_default();
            panic!("{command:?} still ran after {RUN_LIMIT:?}: the host hung\n{}", String::from_utf8_lossy(&stderr));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let output = Output { status, stdout: stdout.join().unwrap(), stderr: stderr.join().unwrap() };
    let stderr = String::from_utf8_lossy(&output.stderr);
    let shown: String = stderr.chars().take(8 * 1024).collect();
    let cut = if shown.len() < stderr.len() { "\n[…]" } else { "" };
    eprintln!("--- stderr of {command:?}:\n{shown}{cut}");
    (output, started.elapsed())
}

/// Items in every hostile table.
const ITEMS: usize = 5;

/// One export of a hostile table with the hostile component, into a directory `out` inside a
/// scratch directory that is also the process's working directory, so anything written
/// outside the destination shows.
struct Run {
    output: Output,
    elapsed: Duration,
    scratch: tempfile::TempDir,
}

impl Run {
    fn export(standins: &Standins, table: &str, extra: &[&str]) -> Self {
        let scratch = tempfile::tempdir().expect("a scratch directory");
        let (output, elapsed) = run_bounded(
            standins
                .command()
                .current_dir(scratch.path())
                .args(["export", "--table", table, "--to", "out", "--component"])
                .arg(hostile_component())
                .args(extra),
        );
        Run { output, elapsed, scratch }
    }

    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    /// Stopped cleanly: exit 1 (not a signal, not a host panic's 101), an error naming the
    /// component and each of `expected`, no escape reported, no summary, nothing outside `out/`.
    fn assert_stopped(&self, expected: &[&str]) {
        let status = self.output.status;
        let stderr = self.stderr();
        assert_eq!(status.signal(), None, "the host was killed by a signal ({status}):\n{stderr}");
        assert_eq!(status.code(), Some(1), "a failed export exits with 1:\n{stderr}");
        let component = hostile_component().display().to_string();
        assert!(stderr.contains(&component), "stderr should name the component {component}:\n{stderr}");
        for expected in expected {
            assert!(stderr.contains(expected), "stderr should say {expected:?}:\n{stderr}");
        }
        assert!(!stderr.contains("ESCAPED"), "the component escaped its sandbox:\n{stderr}");
        let files = util::keys_under(self.scratch.path());
        let summaries: Vec<&String> = files.iter().filter(|k| k.ends_with("manifest-summary.json")).collect();
        assert!(summaries.is_empty(), "a failed export left a summary: {summaries:?}");
        let outside: Vec<&String> = files.iter().filter(|k| !k.starts_with("out/")).collect();
        assert!(outside.is_empty(), "files written outside the destination: {outside:?}");
        if !self.output.stdout.is_empty() {
            let json = util::stdout_json(&self.output);
            let description = &json["ExportDescription"];
            assert_eq!(description["ExportStatus"], "FAILED", "{json}");
            let code = description["FailureCode"].as_str().unwrap_or_default();
            assert!(["ComponentError", "ComponentContractViolation"].contains(&code), "{json}");
        }
    }

    /// The data files the failed export had finished.
    fn data_files(&self) -> Vec<String> {
        util::keys_under(&self.scratch.path().join("out")).into_iter().filter(|k| k.ends_with(".json.gz")).collect()
    }
}

/// Runs each case, and fails with every case that failed (not just the first), by `name`.
fn each_case<C>(cases: &[C], name: impl Fn(&C) -> &str, mut run: impl FnMut(&C)) {
    let mut failures = Vec::new();
    for case in cases {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(case)));
        if let Err(panic) = result {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failures.push(format!("{}: {message}", name(case)));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n\n{}", failures.len(), cases.len(), failures.join("\n\n"));
}

/// Creates each table with [`ITEMS`] items.
async fn create_tables(standins: &Standins, tables: &[String]) {
    let dynamodb = standins.dynamodb();
    for table in tables {
        util::create_table(&dynamodb, table, &items::ordinary(ITEMS)).await;
    }
}

/// No data lost: the hostile runs only read the tables.
async fn assert_tables_intact(standins: &Standins, tables: &[String]) {
    let dynamodb = standins.dynamodb();
    for table in tables {
        assert_eq!(util::scan_all(&dynamodb, table).await.len(), ITEMS, "table {table} lost items");
    }
}

#[tokio::test]
async fn an_ordinary_table_exports_correctly_through_the_wrapped_default_component() {
    let standins = Standins::start();
    let dynamodb = standins.dynamodb();
    let mut seeded = items::edge_cases();
    seeded.extend(items::ordinary(300));
    util::create_table(&dynamodb, "ordinary", &seeded).await;
    standins.create_bucket("exports").await;
    let expected = util::sorted_canonical(util::scan_all(&dynamodb, "ordinary").await.iter().map(util::canonical));

    let (output, _) = run_bounded(
        standins
            .command()
            .args(["export", "--table", "ordinary", "--to", "s3://exports/sanity", "--segments", "3", "--component"])
            .arg(hostile_component()),
    );
    assert!(output.status.success(), "the export failed:\n{}", String::from_utf8_lossy(&output.stderr));
    let json = util::stdout_json(&output);
    assert_eq!(json["ExportDescription"]["ExportStatus"], "COMPLETED", "{json}");
    let summary_key = json["ExportDescription"]["ExportManifest"].as_str().expect("ExportManifest");
    assert_eq!(util::independent_check(&standins.bucket_dir("exports"), summary_key), expected);
}

#[tokio::test]
async fn runaway_components_are_stopped_at_their_limits() {
    struct Case {
        table: &'static str,
        args: &'static [&'static str],
        expected: &'static [&'static str],
    }
    const TIMEOUT: &[&str] = &["--component-timeout-secs", "2"];
    let cases = [
        Case { table: "hostile-loop", args: TIMEOUT, expected: &["time limit of 2s", "`encoder.encode-json-page`"] },
        Case { table: "hostile-loop-snapshot", args: TIMEOUT, expected: &["time limit of 2s", "`snapshot.create`"] },
        Case {
            table: "hostile-alloc",
            args: &["--component-memory-mib", "64"],
            expected: &["memory limit", "`encoder.encode-json-page`"],
        },
        Case {
            table: "hostile-trap",
            args: &[],
            expected: &["trapped in `encoder.encode-json-page`", "a deliberate panic"],
        },
        Case { table: "hostile-stderr-flood", args: &[], expected: &["trapped in `encoder.encode-json-page`"] },
    ];
    let standins = Standins::start();
    let tables: Vec<String> = cases.iter().map(|c| c.table.to_string()).collect();
    create_tables(&standins, &tables).await;

    each_case(
        &cases,
        |case| case.table,
        |case| {
            let run = Run::export(&standins, case.table, case.args);
            run.assert_stopped(case.expected);
            let stderr = run.stderr();
            match case.table {
                "hostile-loop" | "hostile-loop-snapshot" => {
                    assert!(run.elapsed < Duration::from_secs(30), "stopping a 2 s loop took {:?}", run.elapsed);
                    assert!(stderr.contains("(--component-timeout-secs)"), "the limit's flag: {stderr}");
                }
                "hostile-alloc" => assert!(
                    stderr.contains("64 MiB (--component-memory-mib)"),
                    "stderr should name the 64 MiB limit and its flag:\n{stderr}"
                ),
                "hostile-stderr-flood" => {
                    assert!(stderr.len() < 16 * 1024, "a component's stderr flooded the host's: {} bytes", stderr.len())
                }
                _ => {}
            }
        },
    );

    // The same trap into a bucket: no summary there either.
    standins.create_bucket("exports").await;
    let (output, _) = run_bounded(
        standins
            .command()
            .args(["export", "--table", "hostile-trap", "--to", "s3://exports/trap", "--component"])
            .arg(hostile_component()),
    );
    assert_eq!(output.status.code(), Some(1), "{}", String::from_utf8_lossy(&output.stderr));
    let summaries: Vec<String> = util::keys_under(&standins.bucket_dir("exports"))
        .into_iter()
        .filter(|k| k.ends_with("manifest-summary.json"))
        .collect();
    assert!(summaries.is_empty(), "a failed export left a summary: {summaries:?}");
    assert_tables_intact(&standins, &tables).await;
}

#[tokio::test]
async fn components_reach_no_files_sockets_or_environment() {
    let standins = Standins::start();
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
    let token = format!("{}-{nanos}", std::process::id());
    let escape_file = PathBuf::from(format!("/tmp/ddb-export-hostile-{token}"));
    let _ = std::fs::remove_file(&escape_file);
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").expect("a TCP port");
    tcp.set_nonblocking(true).unwrap();
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("a UDP port");
    udp.set_nonblocking(true).unwrap();
    let (tcp_port, udp_port) = (tcp.local_addr().unwrap().port(), udp.local_addr().unwrap().port());

    let fs = format!("hostile-fs.{token}");
    let socket = format!("hostile-socket.{tcp_port}-{udp_port}");
    let env = "hostile-env".to_string();
    let tables = vec![fs.clone(), socket.clone(), env.clone()];
    create_tables(&standins, &tables).await;

    each_case(
        &tables,
        |table| table,
        |table| {
            let run = Run::export(&standins, table, &[]);
            run.assert_stopped(&[
                "refused `encoder.encode-json-page`",
                &format!("{} contained", table.split('.').next().unwrap()),
            ]);
            let stderr = run.stderr();
            if *table == fs {
                assert!(!escape_file.exists(), "the component wrote {}", escape_file.display());
                for attempt in ["read /etc/passwd", "write /tmp/ddb-export-hostile-", "list /"] {
                    assert!(stderr.contains(attempt), "the attempt {attempt:?} was not reported:\n{stderr}");
                }
            } else if *table == socket {
                match tcp.accept() {
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    other => panic!("the component reached a TCP listener on the host: {other:?}"),
                }
                let mut buf = [0u8; 64];
                match udp.recv_from(&mut buf) {
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    other => panic!("the component sent a datagram to the host: {other:?}"),
                }
                for attempt in ["tcp connect", "udp send", "resolve localhost"] {
                    assert!(stderr.contains(attempt), "the attempt {attempt:?} was not reported:\n{stderr}");
                }
            } else {
                assert!(stderr.contains("no variables") && stderr.contains("no arguments"), "{stderr}");
            }
        },
    );
    assert_tables_intact(&standins, &tables).await;
}

#[tokio::test]
async fn output_that_breaks_the_contract_is_rejected() {
    const UNUSABLE: &str = "produced unusable output";
    const SNAPSHOT: &str = "broke the WIT contract in `snapshot.create`";
    const PLAN: &str = "broke the WIT contract in `shard-plan.create`";
    const MANIFESTS: &str = "broke the WIT contract in `write.manifests`";
    let more = format!("claims {} items, but the pages it received hold {ITEMS}", ITEMS + 1);
    let fewer = format!("claims {} items, but the pages it received hold {ITEMS}", ITEMS - 1);
    let cases: &[(&str, &[&str])] = &[
        ("hostile-bad-key.traversal", &[UNUSABLE, "escaped.json.gz\" should be", "names are a function of the export"]),
        ("hostile-bad-key.absolute", &[UNUSABLE, "/tmp/ddb-export-hostile-absolute.json.gz\" should be"]),
        ("hostile-bad-md5", &[UNUSABLE, "claims MD5 AAAAAAAAAAAAAAAAAAAAAA=="]),
        ("hostile-bad-count.more", &[UNUSABLE, &more]),
        ("hostile-bad-count.fewer", &[UNUSABLE, &fewer]),
        ("hostile-bad-sequence.bytes-outside", &[UNUSABLE, "bytes arrived outside a data file"]),
        ("hostile-bad-sequence.finished-twice", &[UNUSABLE, "a data file finished that never started"]),
        ("hostile-bad-sequence.started-while-open", &[UNUSABLE, "a data file started while another was open"]),
        ("hostile-bad-sequence.left-open", &[UNUSABLE, "the encoder finished with a data file still open"]),
        ("hostile-bad-sequence.key-twice", &[UNUSABLE, "should be", "(shard 0, file 1)"]),
        ("hostile-bad-utf8", &["broke the WIT contract in `encoder.encode-json-page`", "invalid utf-8"]),
        ("hostile-bad-plan.skip", &[PLAN, "says 3 total segments in a plan of 2"]),
        ("hostile-bad-plan.repeat", &[PLAN, "segment 0 is out of range or planned twice"]),
        ("hostile-bad-plan.empty", &[PLAN, "the plan has 0 shards"]),
        ("hostile-bad-snapshot.outside", &[SNAPSHOT, "../outside"]),
        ("hostile-bad-snapshot.export-id", &[SNAPSHOT, "export id"]),
        ("hostile-bad-snapshot.echo", &[SNAPSHOT, "s3-bucket differs from the request's"]),
        ("hostile-bad-manifest.order", &[MANIFESTS, "in that order"]),
        ("hostile-bad-manifest.count", &[MANIFESTS, "manifest-summary.json has a wrong itemCount"]),
        ("hostile-bad-manifest.listing", &[MANIFESTS, "which was not stored"]),
    ];
    let absolute = Path::new("/tmp/ddb-export-hostile-absolute.json.gz");
    let _ = std::fs::remove_file(absolute);
    let standins = Standins::start();
    let tables: Vec<String> = cases.iter().map(|(table, _)| table.to_string()).collect();
    create_tables(&standins, &tables).await;

    each_case(
        cases,
        |(table, _)| table,
        |(table, expected)| {
            // One segment: a shard's item count is the table's.
            let segments: &[&str] = if table.starts_with("hostile-bad-plan") { &[] } else { &["--segments", "1"] };
            let run = Run::export(&standins, table, segments);
            run.assert_stopped(expected);
            if table.starts_with("hostile-bad-manifest") {
                assert!(!run.data_files().is_empty(), "the stored data files must stay when the manifests are refused");
            }
        },
    );
    assert!(!absolute.exists(), "the component wrote {}", absolute.display());
    assert_tables_intact(&standins, &tables).await;
}
