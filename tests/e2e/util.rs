//! Shared helpers: real stand-in servers on 127.0.0.1, the real binary, an independent checker.

use std::collections::HashMap;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

pub const ACCESS_KEY: &str = "ddbexporttest";
pub const SECRET_KEY: &str = "ddbexporttestsecret";
pub const REGION: &str = "us-east-1";

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("host/ has a parent").to_path_buf()
}

pub fn locate(env: &str, default: PathBuf, install_hint: &str) -> PathBuf {
    let path = std::env::var_os(env).map(PathBuf::from).unwrap_or(default);
    assert!(
        path.is_file(),
        "{} not found; run `scripts/install-standins` (or set {env}): {install_hint}",
        path.display()
    );
    path
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port on 127.0.0.1").port()
}

/// A server process on 127.0.0.1 for one test, killed when dropped.
pub struct Server {
    child: Child,
    pub url: String,
}

impl Server {
    /// Runs `command` (which must listen on `port`) and waits until it does.
    fn spawn(name: &str, mut command: Command, port: u16) -> Self {
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{name} does not start: {e}"));
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Self { child, url: format!("http://127.0.0.1:{port}") };
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("{name} exited before listening: {status}");
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("{name} did not listen on 127.0.0.1:{port} within 30s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A DynamoDB stand-in (dynalite) and an S3 stand-in (s3s-fs), private to one test.
pub struct Standins {
    dynalite: Server,
    s3s: Server,
    s3_root: tempfile::TempDir,
}

impl Standins {
    pub fn start() -> Self {
        let root = workspace();
        let dynalite_bin =
            locate("DDB_EXPORT_DYNALITE", root.join("tests/standins/node_modules/.bin/dynalite"), "npm dynalite");
        let s3s_bin = locate("DDB_EXPORT_S3S_FS", root.join(".standins/bin/s3s-fs"), "cargo install s3s-fs@0.14.1");
        let s3_root = tempfile::tempdir().expect("a temporary directory");

        let port = free_port();
        let mut dynalite = Command::new(dynalite_bin);
        dynalite.args([
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--createTableMs",
            "0",
            "--deleteTableMs",
            "0",
        ]);
        let dynalite = Server::spawn("dynalite", dynalite, port);

        let port = free_port();
        let mut s3s = Command::new(s3s_bin);
        s3s.args([
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--access-key",
            ACCESS_KEY,
            "--secret-key",
            SECRET_KEY,
        ])
        .arg(s3_root.path());
        let s3s = Server::spawn("s3s-fs", s3s, port);
        Self { dynalite, s3s, s3_root }
    }

    pub fn dynamodb_url(&self) -> &str {
        &self.dynalite.url
    }

    pub fn s3_url(&self) -> &str {
        &self.s3s.url
    }

    /// The real `ddb-export` binary, pointed at these servers.
    /// The `AWS_*` environment a component engine passes the step engine component: the
    /// stand-ins' endpoints and credentials.
    pub fn aws_env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
            ("AWS_REGION", REGION),
            ("AWS_ENDPOINT_URL_DYNAMODB", self.dynamodb_url()),
            ("AWS_ENDPOINT_URL_S3", self.s3_url()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    pub fn command(&self) -> Command {
        ddb_export(&[("AWS_ENDPOINT_URL_DYNAMODB", self.dynamodb_url()), ("AWS_ENDPOINT_URL_S3", self.s3_url())])
    }

    pub fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        dynamodb_client(self.dynamodb_url())
    }

    pub fn s3(&self) -> aws_sdk_s3::Client {
        s3_client(self.s3_url())
    }

    /// Where s3s-fs keeps a bucket's objects, as plain files named by key.
    pub fn bucket_dir(&self, bucket: &str) -> PathBuf {
        self.s3_root.path().join(bucket)
    }

    pub async fn create_bucket(&self, bucket: &str) {
        self.s3().create_bucket().bucket(bucket).send().await.expect("bucket created");
    }
}

/// moto in server mode: DynamoDB and S3 on one endpoint, private to one test.
pub fn moto() -> Server {
    let bin = locate("DDB_EXPORT_MOTO", workspace().join(".standins/moto/bin/moto_server"), "pip install moto[server]");
    let port = free_port();
    let mut command = Command::new(bin);
    command.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
    Server::spawn("moto_server", command, port)
}

/// `tests/throttle_proxy.py` in front of the DynamoDB endpoint `upstream`: throttles the first
/// `scans` Scan requests and forwards everything else.
pub fn throttle_proxy(upstream: &str, scans: u32) -> Server {
    let port = free_port();
    let mut command = Command::new("python3");
    command.arg(workspace().join("tests/throttle_proxy.py")).args([&port.to_string(), upstream, &scans.to_string()]);
    Server::spawn("throttle_proxy.py", command, port)
}

/// `tests/fault_proxy.py` in front of `upstream` (a DynamoDB or S3 endpoint), with `args`
/// choosing the faults (`--seed 7 --throttle 0.1 --drop 0.05 ...`, `--only s3-put --always ...`).
pub fn fault_proxy(upstream: &str, args: &[&str]) -> Server {
    let port = free_port();
    let mut command = Command::new("python3");
    command
        .arg(workspace().join("tests/fault_proxy.py"))
        .args(["--port", &port.to_string(), "--upstream", upstream])
        .args(args);
    Server::spawn("fault_proxy.py", command, port)
}

/// What a `fault_proxy` has done so far (its `GET /__faults` JSON): `requests`, `selected`,
/// `forwarded`, a count per fault kind (`throttle`, `error500`, `drop`, `slow`, `hang`), and
/// `by_operation`.
pub fn fault_counts(proxy: &Server) -> Value {
    use std::io::{Read, Write};
    let address = proxy.url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).expect("the fault proxy accepts a connection");
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(stream, "GET /__faults HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("the fault proxy answers");
    let body = response.split_once("\r\n\r\n").map(|(_, body)| body).unwrap_or_default();
    serde_json::from_str(body).unwrap_or_else(|e| panic!("the fault counts are not JSON ({e}): {response}"))
}

/// The real `ddb-export` binary with test credentials, no ambient AWS configuration, and `env`.
pub fn ddb_export(env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ddb-export"));
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("AWS_REGION", REGION)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("DDB_EXPORT_CACHE_DIR", Path::new(env!("CARGO_TARGET_TMPDIR")).join("component-cache"))
        .envs(env.iter().copied());
    command
}

fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    let credentials = aws_sdk_dynamodb::config::Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "test");
    aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(REGION))
        .credentials_provider(aws_sdk_dynamodb::config::SharedCredentialsProvider::new(credentials))
        .endpoint_url(endpoint)
        .build()
}

pub fn dynamodb_client(endpoint: &str) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(&sdk_config(endpoint))
}

pub fn s3_client(endpoint: &str) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::config::Builder::from(&sdk_config(endpoint)).force_path_style(true).build();
    aws_sdk_s3::Client::from_conf(config)
}

/// Downloads every object under `prefix` into `dir`, as files named by key.
pub async fn download(s3: &aws_sdk_s3::Client, bucket: &str, prefix: &str, dir: &Path) {
    let mut token = None;
    loop {
        let page = s3
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .set_continuation_token(token)
            .send()
            .await
            .expect("list objects");
        for object in page.contents() {
            let key = object.key().expect("a key");
            let body = s3.get_object().bucket(bucket).key(key).send().await.expect("get object").body;
            let bytes = body.collect().await.expect("object body").into_bytes();
            let path = dir.join(key);
            std::fs::create_dir_all(path.parent().expect("a parent")).unwrap();
            std::fs::write(path, bytes).unwrap();
        }
        token = page.next_continuation_token().map(str::to_string);
        if token.is_none() {
            return;
        }
    }
}

/// Runs a command and returns its output, with stderr echoed for failing tests.
pub fn run(command: &mut Command) -> Output {
    let output = command.output().expect("the command runs");
    eprintln!("--- stderr of {command:?}:\n{}", String::from_utf8_lossy(&output.stderr));
    output
}

/// The JSON printed on stdout.
/// The description a successful export (or finalize) printed, checked to say `COMPLETED`, and
/// the key of its `manifest-summary.json`.
pub fn completed(output: &Output) -> (Value, String) {
    assert!(output.status.success(), "the export failed: {}", String::from_utf8_lossy(&output.stderr));
    let json = stdout_json(output);
    assert_eq!(json["ExportDescription"]["ExportStatus"], "COMPLETED", "{json}");
    let summary_key = json["ExportDescription"]["ExportManifest"].as_str().expect("ExportManifest").to_string();
    (json, summary_key)
}

pub fn stdout_json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", String::from_utf8_lossy(&output.stdout)))
}

/// Creates a table keyed by the string `pk` and writes `items` into it.
pub async fn create_table(client: &aws_sdk_dynamodb::Client, table: &str, items: &[HashMap<String, AttributeValue>]) {
    create_table_with_stream(client, table, None).await;
    wait_until_active(client, table).await;
    put_items(client, table, items).await;
}

/// Creates an on-demand table keyed by the string `pk`, with a stream of `view` if given.
pub async fn create_table_with_stream(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    view: Option<aws_sdk_dynamodb::types::StreamViewType>,
) {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, StreamSpecification,
    };
    let mut request = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder().attribute_name("pk").attribute_type(ScalarAttributeType::S).build().unwrap(),
        )
        .key_schema(KeySchemaElement::builder().attribute_name("pk").key_type(KeyType::Hash).build().unwrap());
    if let Some(view) = view {
        let stream = StreamSpecification::builder().stream_enabled(true).stream_view_type(view).build().unwrap();
        request = request.stream_specification(stream);
    }
    request.send().await.expect("table created");
}

/// Writes `items` with BatchWriteItem, retrying what the server leaves unprocessed.
pub async fn put_items(client: &aws_sdk_dynamodb::Client, table: &str, items: &[HashMap<String, AttributeValue>]) {
    use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
    for chunk in items.chunks(25) {
        let mut requests: Vec<WriteRequest> = chunk
            .iter()
            .map(|item| {
                WriteRequest::builder()
                    .put_request(PutRequest::builder().set_item(Some(item.clone())).build().unwrap())
                    .build()
            })
            .collect();
        while !requests.is_empty() {
            let output = client.batch_write_item().request_items(table, requests).send().await.expect("items written");
            requests = output.unprocessed_items.and_then(|mut u| u.remove(table)).unwrap_or_default();
        }
    }
}

/// Waits for a new table to be ACTIVE: dynalite answers CreateTable with a table still
/// CREATING and refuses writes to it (ResourceNotFoundException) until a moment later.
async fn wait_until_active(client: &aws_sdk_dynamodb::Client, table: &str) {
    use aws_sdk_dynamodb::types::TableStatus;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let described = client.describe_table().table_name(table).send().await.expect("table described");
        if described.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
            return;
        }
        assert!(Instant::now() < deadline, "table {table} was not ACTIVE within 30s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Every item of the table, read with a plain paginated Scan.
pub async fn scan_all(client: &aws_sdk_dynamodb::Client, table: &str) -> Vec<HashMap<String, AttributeValue>> {
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let page = client.scan().table_name(table).set_exclusive_start_key(start).send().await.expect("scan");
        items.extend(page.items.unwrap_or_default());
        start = page.last_evaluated_key;
        if start.is_none() {
            return items;
        }
    }
}

/// DynamoDB JSON with sets sorted: the form `check_export.py --dump-items` writes.
pub fn canonical(item: &HashMap<String, AttributeValue>) -> Value {
    fn value(v: &AttributeValue) -> Value {
        let sorted = |mut v: Vec<String>| {
            v.sort();
            v
        };
        match v {
            AttributeValue::S(s) => json!({ "S": s }),
            AttributeValue::N(n) => json!({ "N": n }),
            AttributeValue::B(b) => json!({ "B": STANDARD.encode(b.as_ref()) }),
            AttributeValue::Bool(b) => json!({ "BOOL": b }),
            AttributeValue::Null(_) => json!({ "NULL": true }),
            AttributeValue::Ss(s) => json!({ "SS": sorted(s.clone()) }),
            AttributeValue::Ns(s) => json!({ "NS": sorted(s.clone()) }),
            AttributeValue::Bs(s) => json!({ "BS": sorted(s.iter().map(|b| STANDARD.encode(b.as_ref())).collect()) }),
            AttributeValue::L(l) => json!({ "L": l.iter().map(value).collect::<Vec<_>>() }),
            AttributeValue::M(m) => {
                json!({ "M": m.iter().map(|(k, v)| (k.clone(), value(v))).collect::<serde_json::Map<_, _>>() })
            }
            other => panic!("unexpected attribute value {other:?}"),
        }
    }
    Value::Object(item.iter().map(|(k, v)| (k.clone(), value(v))).collect())
}

/// Items as sorted canonical strings, for a multiset comparison with a readable diff.
pub fn sorted_canonical(items: impl IntoIterator<Item = Value>) -> Vec<String> {
    let mut lines: Vec<String> = items.into_iter().map(|v| v.to_string()).collect();
    lines.sort();
    lines
}

/// The Python that runs `tests/check_export.py`: `$DDB_EXPORT_CHECK_PYTHON`, else the venv
/// `scripts/install-standins` makes (`.standins/moto`, which has `amazon.ion`, the Ion reader the
/// checker needs for ION exports), else `python3`, which checks DYNAMODB_JSON exports only.
pub fn checker_python() -> PathBuf {
    if let Some(python) = std::env::var_os("DDB_EXPORT_CHECK_PYTHON") {
        return PathBuf::from(python);
    }
    let venv = workspace().join(".standins/moto/bin/python");
    if venv.is_file() {
        return venv;
    }
    eprintln!(
        "{} not found: check_export.py runs with python3, which reads no ION export unless it has \
         amazon.ion; run `scripts/install-standins`",
        venv.display()
    );
    PathBuf::from("python3")
}

/// Runs `tests/check_export.py` on an export (of either format) and returns the items it read,
/// canonical.
pub fn independent_check(bucket_dir: &Path, summary_key: &str) -> Vec<String> {
    let dump = tempfile::NamedTempFile::new().expect("a temporary file");
    let python = checker_python();
    let output = Command::new(&python)
        .arg(workspace().join("tests/check_export.py"))
        .arg(bucket_dir)
        .arg(summary_key)
        .arg("--dump-items")
        .arg(dump.path())
        .output()
        .unwrap_or_else(|e| panic!("{} does not run: {e}", python.display()));
    assert!(
        output.status.success(),
        "the independent format check failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let text = std::fs::read_to_string(dump.path()).expect("the item dump");
    sorted_canonical(text.lines().map(|line| serde_json::from_str::<Value>(line).expect("a JSON line")))
}

/// All files under `dir`, as keys relative to it.
pub fn keys_under(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(base, &path, out);
            } else if let Ok(rel) = path.strip_prefix(base) {
                out.push(rel.to_string_lossy().into_owned());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// A test-only (or example) component crate of the workspace, built for `wasm32-wasip2` on
/// first use into `target/test-components` (never by `host/build.rs`); its `.wasm` file.
pub fn test_component(package: &'static str) -> &'static Path {
    static BUILT: std::sync::Mutex<Vec<(&'static str, &'static Path)>> = std::sync::Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((_, wasm)) = built.iter().find(|(name, _)| *name == package) {
        return wasm;
    }
    let target_dir =
        Path::new(env!("CARGO_TARGET_TMPDIR")).parent().expect("target/tmp has a parent").join("test-components");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
    let output = Command::new(cargo)
        .current_dir(workspace())
        .args(["build", "--package", package, "--target", "wasm32-wasip2", "--release"])
        .arg("--target-dir")
        .arg(&target_dir)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "building {package} failed ({}); is the wasm32-wasip2 target installed?\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let wasm = target_dir.join("wasm32-wasip2/release").join(format!("{}.wasm", package.replace('-', "_")));
    assert!(wasm.is_file(), "{} was not built", wasm.display());
    let wasm: &'static Path = Box::leak(wasm.into_boxed_path());
    built.push((package, wasm));
    wasm
}

/// `(md5, itemCount)` of every line of an export's `manifest-files.json`, sorted: data files
/// are named after their export's id, so two exports of the same table compare by content.
pub fn data_files(bucket_dir: &Path, summary_key: &str) -> Vec<(String, u64)> {
    let summary: Value = serde_json::from_slice(&std::fs::read(bucket_dir.join(summary_key)).unwrap()).unwrap();
    let listing = std::fs::read_to_string(bucket_dir.join(summary["manifestFilesS3Key"].as_str().unwrap())).unwrap();
    let mut files: Vec<(String, u64)> = listing
        .lines()
        .map(|line| {
            let entry: Value = serde_json::from_str(line).unwrap();
            (entry["md5Checksum"].as_str().unwrap().to_string(), entry["itemCount"].as_u64().unwrap())
        })
        .collect();
    files.sort();
    files
}
