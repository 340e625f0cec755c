//! A hostile component of the `exporter` world, for the sandbox tests (`tests/e2e/sandbox.rs`).
//!
//! It is the default component (`ddb-export-guest`) in every respect, except when the table's
//! name selects a [`Mode`]: `hostile-<mode>` or `hostile-<mode>.<argument>`. Every exported
//! function sees the table's name (in the table description or in the snapshot), so one build
//! serves every case, and any other table exports normally.
//!
//! | table name | what the component does |
//! |---|---|
//! | `hostile-loop` | loops forever in `encode-page` |
//! | `hostile-loop-snapshot` | loops forever in `snapshot.create` |
//! | `hostile-alloc` | allocates (and writes) memory without bound in `encode-page` |
//! | `hostile-trap` | panics in `encode-page` |
//! | `hostile-stderr-flood` | writes 1 MiB to stderr, then panics |
//! | `hostile-fs.<token>` | reads `/etc/passwd`, lists `/` and `.`, writes `/tmp/ddb-export-hostile-<token>` |
//! | `hostile-socket.<tcp>-<udp>` | connects to 127.0.0.1:`<tcp>`, sends a datagram to 127.0.0.1:`<udp>`, resolves `localhost` |
//! | `hostile-env` | reads its environment variables and arguments |
//! | `hostile-bad-key.<traversal\|absolute>` | names its data file outside the export's data prefix |
//! | `hostile-bad-md5` | claims a wrong MD5 for its data file |
//! | `hostile-bad-count.<more\|fewer>` | claims one item more (fewer) than its data file holds |
//! | `hostile-bad-sequence.<fault>` | breaks the event sequence (see [`SequenceFault`]) |
//! | `hostile-bad-utf8` | names its data file with bytes that are not UTF-8 |
//! | `hostile-bad-plan.<skip\|repeat\|empty>` | a plan that skips a segment, repeats one, or has none |
//! | `hostile-bad-snapshot.<outside\|export-id\|echo>` | keys outside the prefix, an export id not from the start time, a bucket not the requested one |
//! | `hostile-bad-manifest.<order\|count\|listing>` | manifests out of order, a summary whose itemCount lies, a listing naming a file never stored |
//!
//! The sandbox modes (`fs`, `socket`, `env`) return an error that says `contained` and what
//! each attempt got when the host stopped them all, and one that says `ESCAPED` and what the
//! component saw when any attempt worked. The contract modes encode normally and falsify their
//! output as it goes out ([`Falsifier`]): apart from the one fault, every call's events are the
//! default encoder's, so the host's rejection names that fault and no other.

use std::cell::RefCell;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ddb_export_guest::bindings::exports::ddb_export::core::{
    incremental, restore, rewrite, shard_plan, snapshot, verify, write,
};
use ddb_export_guest::component::{
    ChangeEncoderResource, CheckerResource, Component, DecoderResource, LineFilterResource,
};
use ddb_export_guest::encoder::ShardEncoder;
use ddb_export_guest::wit::{
    EncoderOptions, ExportSnapshot, ExportTotals, ManifestEntry, Object, Output, Plan, PlanRequest, Shard,
    TableDescription,
};
use md5::{Digest, Md5};

/// What a table's name asks the component to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Not a hostile table: behave exactly like the default component.
    Normal,
    Loop,
    LoopSnapshot,
    Alloc,
    Trap,
    StderrFlood,
    Fs {
        token: String,
    },
    Socket {
        tcp_port: u16,
        udp_port: u16,
    },
    Env,
    BadKey(KeyFault),
    BadMd5,
    BadCount {
        more: bool,
    },
    BadSequence(SequenceFault),
    BadUtf8,
    BadPlan(PlanFault),
    BadSnapshot(SnapshotFault),
    BadManifest(ManifestFault),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFault {
    /// `<data-prefix>../../../../escaped.json.gz`: above the destination.
    Traversal,
    /// `/tmp/ddb-export-hostile-absolute.json.gz`.
    Absolute,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceFault {
    /// `bytes` before any `file-started`.
    BytesOutside,
    /// The `file-finished` event twice.
    FinishedTwice,
    /// A second `file-started` while the first file is open.
    StartedWhileOpen,
    /// No `file-finished`: the file is left open when the encoder finishes.
    LeftOpen,
    /// The whole file twice, under the same key.
    KeyTwice,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanFault {
    /// Two shards that say three segments: segment 1 is never scanned.
    Skip,
    /// Segment 0 twice.
    Repeat,
    /// No shards at all.
    Empty,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotFault {
    /// Every key moved to `../outside/...`, out of the requested prefix.
    Outside,
    /// An export id (and ARN and keys, consistently) whose time is not the start time.
    ExportId,
    /// A bucket other than the requested one.
    Echo,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestFault {
    /// The summary before its `.md5`.
    Order,
    /// The summary's itemCount one more than the items stored (its `.md5` recomputed).
    Count,
    /// manifest-files.json names a data file that was never stored (its `.md5` recomputed).
    Listing,
}

impl Mode {
    /// The mode a table's name selects. An unknown `hostile-` name is an error, so that a typo in
    /// a test does not quietly export normally.
    pub fn of(table_name: &str) -> Result<Self, String> {
        let Some(rest) = table_name.strip_prefix("hostile-") else { return Ok(Mode::Normal) };
        let (name, arg) = rest.split_once('.').unwrap_or((rest, ""));
        let unknown = || format!("hostile component: unknown mode {table_name:?}");
        let mode = match (name, arg) {
            ("loop", "") => Mode::Loop,
            ("loop-snapshot", "") => Mode::LoopSnapshot,
            ("alloc", "") => Mode::Alloc,
            ("trap", "") => Mode::Trap,
            ("stderr-flood", "") => Mode::StderrFlood,
            ("fs", token) if !token.is_empty() => Mode::Fs { token: token.to_string() },
            ("socket", ports) => {
                let (tcp, udp) = ports.split_once('-').ok_or_else(unknown)?;
                Mode::Socket {
                    tcp_port: tcp.parse().map_err(|_| unknown())?,
                    udp_port: udp.parse().map_err(|_| unknown())?,
                }
            }
            ("env", "") => Mode::Env,
            ("bad-key", "traversal") => Mode::BadKey(KeyFault::Traversal),
            ("bad-key", "absolute") => Mode::BadKey(KeyFault::Absolute),
            ("bad-md5", "") => Mode::BadMd5,
            ("bad-count", "more") => Mode::BadCount { more: true },
            ("bad-count", "fewer") => Mode::BadCount { more: false },
            ("bad-sequence", "bytes-outside") => Mode::BadSequence(SequenceFault::BytesOutside),
            ("bad-sequence", "finished-twice") => Mode::BadSequence(SequenceFault::FinishedTwice),
            ("bad-sequence", "started-while-open") => Mode::BadSequence(SequenceFault::StartedWhileOpen),
            ("bad-sequence", "left-open") => Mode::BadSequence(SequenceFault::LeftOpen),
            ("bad-sequence", "key-twice") => Mode::BadSequence(SequenceFault::KeyTwice),
            ("bad-utf8", "") => Mode::BadUtf8,
            ("bad-plan", "skip") => Mode::BadPlan(PlanFault::Skip),
            ("bad-plan", "repeat") => Mode::BadPlan(PlanFault::Repeat),
            ("bad-plan", "empty") => Mode::BadPlan(PlanFault::Empty),
            ("bad-snapshot", "outside") => Mode::BadSnapshot(SnapshotFault::Outside),
            ("bad-snapshot", "export-id") => Mode::BadSnapshot(SnapshotFault::ExportId),
            ("bad-snapshot", "echo") => Mode::BadSnapshot(SnapshotFault::Echo),
            ("bad-manifest", "order") => Mode::BadManifest(ManifestFault::Order),
            ("bad-manifest", "count") => Mode::BadManifest(ManifestFault::Count),
            ("bad-manifest", "listing") => Mode::BadManifest(ManifestFault::Listing),
            _ => return Err(unknown()),
        };
        Ok(mode)
    }
}

/// Runs until the host interrupts it.
fn spin() -> ! {
    let mut n = 0u64;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

/// Allocates and writes 1 MiB after 1 MiB until the allocator fails.
fn hoard() -> ! {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        hoard.push(std::hint::black_box(vec![0xa5u8; 1 << 20]));
    }
}

/// What an escape attempt got: the outcome of each, and whether any worked.
#[derive(Default)]
struct Attempts {
    escaped: Vec<String>,
    contained: Vec<String>,
}

impl Attempts {
    fn record<T>(&mut self, what: &str, result: std::io::Result<T>, seen: impl FnOnce(T) -> String) {
        match result {
            Ok(value) => self.escaped.push(format!("{what}: {}", seen(value))),
            Err(error) => self.contained.push(format!("{what}: {error}")),
        }
    }

    fn into_error(self, mode: &str) -> write::Error {
        if self.escaped.is_empty() {
            write::Error::Other(format!("hostile-{mode} contained: {}", self.contained.join("; ")))
        } else {
            write::Error::Other(format!("hostile-{mode} ESCAPED: {}", self.escaped.join("; ")))
        }
    }
}

fn short(text: &str) -> String {
    text.chars().take(60).collect()
}

fn try_files(token: &str) -> write::Error {
    let mut attempts = Attempts::default();
    attempts.record("read /etc/passwd", std::fs::read_to_string("/etc/passwd"), |text| short(&text));
    let path = format!("/tmp/ddb-export-hostile-{token}");
    attempts.record(&format!("write {path}"), std::fs::write(&path, b"escaped\n"), |()| "written".into());
    for dir in ["/", "."] {
        attempts.record(&format!("list {dir}"), std::fs::read_dir(dir), |entries| {
            let names: Vec<String> =
                entries.flatten().take(8).map(|e| e.file_name().to_string_lossy().into()).collect();
            names.join(",")
        });
    }
    attempts.record("open ./escape", std::fs::File::create("escape"), |_| "created".into());
    // Only a report: the cwd is emulated inside the component's libc and proves no access.
    let cwd = std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_else(|e| e.to_string());
    attempts.contained.push(format!("cwd: {cwd}"));
    attempts.into_error("fs")
}

fn try_sockets(tcp_port: u16, udp_port: u16) -> write::Error {
    use std::net::{TcpStream, ToSocketAddrs, UdpSocket};
    use std::time::Duration;
    let mut attempts = Attempts::default();
    let target = std::net::SocketAddr::from(([127, 0, 0, 1], tcp_port));
    attempts.record(
        &format!("tcp connect {target}"),
        TcpStream::connect_timeout(&target, Duration::from_secs(1)),
        |stream| format!("connected from {:?}", stream.local_addr()),
    );
    attempts.record(
        &format!("udp send to 127.0.0.1:{udp_port}"),
        UdpSocket::bind("127.0.0.1:0").and_then(|socket| socket.send_to(b"escaped", ("127.0.0.1", udp_port))),
        |sent| format!("sent {sent} bytes"),
    );
    attempts.record("resolve localhost", ("localhost", tcp_port).to_socket_addrs(), |addrs| {
        format!("{:?}", addrs.collect::<Vec<_>>())
    });
    attempts.into_error("socket")
}

fn try_environment() -> write::Error {
    let mut attempts = Attempts::default();
    let vars: Vec<String> = std::env::vars_os().map(|(name, _)| name.to_string_lossy().into_owned()).collect();
    let args: Vec<String> = std::env::args_os().map(|a| a.to_string_lossy().into_owned()).collect();
    let found = |what: &str, names: Vec<String>| {
        if names.is_empty() { Err(std::io::Error::other(format!("no {what}"))) } else { Ok(names.join(",")) }
    };
    attempts.record("environment variables", found("variables", vars), |names| names);
    attempts.record("arguments", found("arguments", args), |args| args);
    attempts.into_error("env")
}

/// The component: the default one, made hostile by the table's name.
pub struct Hostile;

impl snapshot::Guest for Hostile {
    fn create(table: TableDescription, request: snapshot::ExportRequest) -> Result<ExportSnapshot, snapshot::Error> {
        let mode = Mode::of(&table.table_name).map_err(snapshot::Error::InvalidTable)?;
        if mode == Mode::LoopSnapshot {
            spin();
        }
        let mut snapshot = <Component as snapshot::Guest>::create(table, request)?;
        if let Mode::BadSnapshot(fault) = mode {
            falsify_snapshot(&mut snapshot, fault);
        }
        Ok(snapshot)
    }
}

/// Rewrites a correct snapshot so that it breaks the contract in one way.
pub fn falsify_snapshot(s: &mut ExportSnapshot, fault: SnapshotFault) {
    match fault {
        SnapshotFault::Outside => {
            let root = s.keys.root.clone();
            for key in [
                &mut s.keys.root,
                &mut s.keys.started,
                &mut s.keys.data_prefix,
                &mut s.keys.manifest_files,
                &mut s.keys.manifest_files_md5,
                &mut s.keys.manifest_summary,
                &mut s.keys.manifest_summary_md5,
            ] {
                *key = key.replacen(&root, "../outside", 1);
            }
        }
        SnapshotFault::ExportId => {
            let old = s.export_id.clone();
            let day_later = format!("{:014}{}", s.start_time_ms + 86_400_000, &old[14..]);
            s.export_id = day_later.clone();
            s.export_arn = s.export_arn.replace(&old, &day_later);
            for key in [
                &mut s.keys.root,
                &mut s.keys.started,
                &mut s.keys.data_prefix,
                &mut s.keys.manifest_files,
                &mut s.keys.manifest_files_md5,
                &mut s.keys.manifest_summary,
                &mut s.keys.manifest_summary_md5,
            ] {
                *key = key.replace(&old, &day_later);
            }
        }
        SnapshotFault::Echo => s.s3_bucket = format!("{}-elsewhere", s.s3_bucket),
    }
}

impl shard_plan::Guest for Hostile {
    fn create(table: TableDescription, request: PlanRequest) -> Result<Plan, shard_plan::Error> {
        let mode = Mode::of(&table.table_name).map_err(shard_plan::Error::InvalidRequest)?;
        let plan = <Component as shard_plan::Guest>::create(table, request)?;
        let Mode::BadPlan(fault) = mode else { return Ok(plan) };
        let shard = |id, segment, total_segments| Shard { id, segment, total_segments };
        let shards = match fault {
            PlanFault::Skip => vec![shard(0, 0, 3), shard(1, 2, 3)],
            PlanFault::Repeat => vec![shard(0, 0, 2), shard(1, 0, 2)],
            PlanFault::Empty => Vec::new(),
        };
        Ok(Plan { shards, rationale: format!("hostile plan ({fault:?})") })
    }
}

/// `incremental` is the default component's, unchanged.
impl incremental::Guest for Hostile {
    type ChangeEncoder = ChangeEncoderResource;
}

/// `rewrite` is the default component's, unchanged.
impl rewrite::Guest for Hostile {
    type LineFilter = LineFilterResource;
}

/// `restore` is the default component's, unchanged.
impl restore::Guest for Hostile {
    type DataFileDecoder = DecoderResource;
}

/// `verify` is the default component's, unchanged.
impl verify::Guest for Hostile {
    type DataFileChecker = CheckerResource;

    fn check_manifests(
        summary: Vec<u8>,
        summary_md5: Option<Vec<u8>>,
        files: Vec<u8>,
        files_md5: Option<Vec<u8>>,
    ) -> Result<verify::Manifests, verify::Error> {
        <Component as verify::Guest>::check_manifests(summary, summary_md5, files, files_md5)
    }
}

impl write::Guest for Hostile {
    type Encoder = HostileEncoder;

    fn manifests(
        snapshot: ExportSnapshot,
        files: Vec<ManifestEntry>,
        totals: ExportTotals,
    ) -> Result<Vec<Object>, write::Error> {
        let mode = Mode::of(&snapshot.table_name).map_err(write::Error::Other)?;
        let mut objects = <Component as write::Guest>::manifests(snapshot, files, totals)?;
        if let Mode::BadManifest(fault) = mode {
            falsify_manifests(&mut objects, fault)?;
        }
        Ok(objects)
    }
}

fn md5_base64(bytes: &[u8]) -> Vec<u8> {
    STANDARD.encode(Md5::digest(bytes)).into_bytes()
}

/// Rewrites the four correct manifest objects so that they break the contract in one way; the
/// `.md5` files stay true to what they describe, so only the one fault is wrong.
pub fn falsify_manifests(objects: &mut [Object], fault: ManifestFault) -> Result<(), write::Error> {
    // In order: manifest-files.json, manifest-files.md5, manifest-summary.md5, manifest-summary.json.
    if objects.len() != 4 {
        return Err(write::Error::Other(format!("expected four manifest objects, got {}", objects.len())));
    }
    match fault {
        ManifestFault::Order => objects.swap(2, 3),
        ManifestFault::Count => {
            let mut json: serde_json::Value =
                serde_json::from_slice(&objects[3].body).map_err(|e| write::Error::Other(e.to_string()))?;
            let count = json["itemCount"].as_u64().unwrap_or(0);
            json["itemCount"] = (count + 1).into();
            objects[3].body = serde_json::to_vec(&json).map_err(|e| write::Error::Other(e.to_string()))?;
            objects[2].body = md5_base64(&objects[3].body);
        }
        ManifestFault::Listing => {
            let root = objects[0].key.strip_suffix("/manifest-files.json").unwrap_or(&objects[0].key);
            let line = serde_json::json!({
                "itemCount": 1,
                "md5Checksum": "1B2M2Y8AsgTpgAmY7PhCfg==",
                "etag": "d41d8cd98f00b204e9800998ecf8427e",
                "dataFileS3Key": format!("{root}/data/aaaaaaaaaaaaaaaaaaaaaaaaaa.json.gz"),
            });
            objects[0].body.extend_from_slice(line.to_string().as_bytes());
            objects[0].body.push(b'\n');
            objects[1].body = md5_base64(&objects[0].body);
        }
    }
    Ok(())
}

/// The `encoder` resource: the default encoder, with the mode chosen when it was opened.
pub struct HostileEncoder {
    mode: Mode,
    inner: RefCell<ShardEncoder>,
    falsifier: RefCell<Falsifier>,
}

impl write::GuestEncoder for HostileEncoder {
    fn open(snapshot: ExportSnapshot, options: EncoderOptions) -> Result<write::Encoder, write::Error> {
        let mode = Mode::of(&snapshot.table_name).map_err(write::Error::Other)?;
        let inner = RefCell::new(ShardEncoder::open(&snapshot, options)?);
        let falsifier = RefCell::new(Falsifier::new(mode.clone()));
        Ok(write::Encoder::new(HostileEncoder { mode, inner, falsifier }))
    }

    fn encode_page(&self, page: Vec<u8>) -> Result<Vec<Output>, write::Error> {
        self.misbehave(|encoder| encoder.encode_page(&page))
    }

    fn encode_json_page(&self, items: Vec<u8>) -> Result<Vec<Output>, write::Error> {
        self.misbehave(|encoder| encoder.encode_json_page(&items))
    }

    fn finish(&self) -> Result<Vec<Output>, write::Error> {
        let output = self.inner.borrow_mut().finish()?;
        Ok(self.falsifier.borrow_mut().apply(output))
    }
}

impl HostileEncoder {
    /// A page, whichever way it comes: the mode's misbehaviour, or the default encoder's output
    /// rewritten by the falsifier.
    fn misbehave(
        &self,
        encode: impl FnOnce(&mut ShardEncoder) -> Result<Vec<Output>, write::Error>,
    ) -> Result<Vec<Output>, write::Error> {
        match &self.mode {
            Mode::Loop => spin(),
            Mode::Alloc => hoard(),
            Mode::Trap => panic!("hostile-trap: a deliberate panic in encode-page"),
            Mode::StderrFlood => {
                let line = "hostile-stderr-flood ".repeat(50);
                for _ in 0..1000 {
                    eprintln!("{line}");
                }
                panic!("hostile-stderr-flood: a deliberate panic after 1 MiB of stderr");
            }
            Mode::Fs { token } => return Err(try_files(token)),
            Mode::Socket { tcp_port, udp_port } => return Err(try_sockets(*tcp_port, *udp_port)),
            Mode::Env => return Err(try_environment()),
            _ => {}
        }
        let output = encode(&mut self.inner.borrow_mut())?;
        Ok(self.falsifier.borrow_mut().apply(output))
    }
}

/// Rewrites an encoder's correct events, call by call, so that they break the contract in the
/// one way the mode says; in any other mode it passes them through.
pub struct Falsifier {
    mode: Mode,
    /// Whether any event went out yet.
    started: bool,
    /// The events of the open file so far (for [`SequenceFault::KeyTwice`]).
    file: Vec<Output>,
}

impl Falsifier {
    pub fn new(mode: Mode) -> Self {
        Self { mode, started: false, file: Vec::new() }
    }

    /// The events to return instead of `events`, the output of one call.
    pub fn apply(&mut self, events: Vec<Output>) -> Vec<Output> {
        let mut out = Vec::with_capacity(events.len());
        if self.mode == Mode::BadSequence(SequenceFault::BytesOutside) && !self.started && !events.is_empty() {
            out.push(Output::Bytes(b"stray bytes".to_vec()));
        }
        self.started |= !events.is_empty();
        for event in events {
            self.one(event, &mut out);
        }
        out
    }

    fn one(&mut self, event: Output, out: &mut Vec<Output>) {
        match (&self.mode, event) {
            (Mode::BadKey(fault), Output::FileStarted(key)) => out.push(Output::FileStarted(bad_key(*fault, &key))),
            (Mode::BadKey(fault), Output::FileFinished(mut file)) => {
                file.key = bad_key(*fault, &file.key);
                out.push(Output::FileFinished(file));
            }
            (Mode::BadMd5, Output::FileFinished(mut file)) => {
                file.md5 = "AAAAAAAAAAAAAAAAAAAAAA==".into();
                out.push(Output::FileFinished(file));
            }
            (Mode::BadCount { more }, Output::FileFinished(mut file)) => {
                file.item_count = if *more { file.item_count + 1 } else { file.item_count.saturating_sub(1) };
                out.push(Output::FileFinished(file));
            }
            // SAFETY: none; a `string` that is not UTF-8 is the point. It is only handed across
            // the component boundary, which must refuse it.
            (Mode::BadUtf8, Output::FileStarted(_)) => {
                out.push(Output::FileStarted(unsafe { String::from_utf8_unchecked(vec![0xff, 0xfe, b'k']) }))
            }
            (Mode::BadSequence(SequenceFault::FinishedTwice), Output::FileFinished(file)) => {
                out.push(Output::FileFinished(file.clone()));
                out.push(Output::FileFinished(file));
            }
            (Mode::BadSequence(SequenceFault::StartedWhileOpen), Output::FileStarted(key)) => {
                out.push(Output::FileStarted(key.clone()));
                out.push(Output::FileStarted(key));
            }
            (Mode::BadSequence(SequenceFault::LeftOpen), Output::FileFinished(_)) => {}
            (Mode::BadSequence(SequenceFault::KeyTwice), event) => {
                let finished = matches!(event, Output::FileFinished(_));
                self.file.push(event.clone());
                out.push(event);
                if finished {
                    out.append(&mut self.file);
                }
            }
            (_, event) => out.push(event),
        }
    }
}

fn bad_key(fault: KeyFault, key: &str) -> String {
    match fault {
        KeyFault::Traversal => {
            let root = key.rsplit_once("/data/").map_or(key, |(root, _)| root);
            format!("{root}/data/../../../../escaped.json.gz")
        }
        KeyFault::Absolute => "/tmp/ddb-export-hostile-absolute.json.gz".to_string(),
    }
}

#[cfg(target_arch = "wasm32")]
ddb_export_guest::bindings::export!(Hostile with_types_in ddb_export_guest::bindings);

#[cfg(test)]
mod tests {
    use ddb_export_guest::wit::DataFile;

    use super::*;

    #[test]
    fn a_table_name_selects_a_mode_and_ordinary_names_export_normally() {
        assert_eq!(Mode::of("orders"), Ok(Mode::Normal));
        assert_eq!(Mode::of("hostile-loop"), Ok(Mode::Loop));
        assert_eq!(Mode::of("hostile-fs.42"), Ok(Mode::Fs { token: "42".into() }));
        assert_eq!(Mode::of("hostile-socket.1000-1001"), Ok(Mode::Socket { tcp_port: 1000, udp_port: 1001 }));
        assert_eq!(Mode::of("hostile-bad-plan.repeat"), Ok(Mode::BadPlan(PlanFault::Repeat)));
        assert!(Mode::of("hostile-typo").is_err());
        assert!(Mode::of("hostile-fs").is_err(), "fs needs a token");
    }

    fn file(key: &str) -> Vec<Output> {
        vec![
            Output::FileStarted(key.into()),
            Output::Bytes(b"abc".to_vec()),
            Output::FileFinished(DataFile { key: key.into(), item_count: 2, md5: "m".into(), size_bytes: 3 }),
        ]
    }

    #[test]
    fn each_fault_changes_only_what_it_names() {
        let key = "p/AWSDynamoDB/x/data/aaaaaaaaaaaaaaaaaaaaaaaaaa.json.gz";
        let falsify = |mode: Mode| {
            let mut falsifier = Falsifier::new(mode);
            let [started, bytes, finished] = <[Output; 3]>::try_from(file(key)).ok().unwrap();
            let mut out = falsifier.apply(vec![started]);
            out.extend(falsifier.apply(vec![bytes, finished]));
            out
        };
        let out = falsify(Mode::BadKey(KeyFault::Traversal));
        assert!(matches!(&out[0], Output::FileStarted(k) if k == "p/AWSDynamoDB/x/data/../../../../escaped.json.gz"));
        let out = falsify(Mode::BadCount { more: true });
        assert!(matches!(&out[2], Output::FileFinished(f) if f.item_count == 3 && f.md5 == "m"));
        assert!(matches!(
            &falsify(Mode::BadSequence(SequenceFault::BytesOutside))[..2],
            [Output::Bytes(_), Output::FileStarted(_)]
        ));
        assert_eq!(falsify(Mode::BadSequence(SequenceFault::LeftOpen)).len(), 2);
        assert_eq!(falsify(Mode::BadSequence(SequenceFault::KeyTwice)).len(), 6);
        assert_eq!(falsify(Mode::Normal).len(), 3);
    }
}
