//! A benchmark source that is not the bottleneck: a DynamoDB stand-in serving `DescribeTable`
//! and `Scan` for tables held in memory, fast enough that a client scanning it is bound by its
//! own CPU. Benchmark-only (`scripts/bench`); the tests use the real stand-ins.
//!
//! ```sh
//! cargo run --release -p ddb-export --example fast_dynamodb -- --port 8765 \
//!     --table real:realistic:50000 --table sample:sample:50000
//! ```
//!
//! What it honours: `Segment`/`TotalSegments` (an item's segment follows from a hash of its
//! key, as DynamoDB's does), `Limit`, `ExclusiveStartKey`, the 1 MB a page holds (by DynamoDB's
//! item size), `ReturnConsumedCapacity` (0.5 RCU per 4 KB read, eventually consistent),
//! `Count`/`ScannedCount`/`LastEvaluatedKey`. Items are answered as DynamoDB's API writes them
//! (DynamoDB JSON, attributes in the item's own order), each serialized once at start-up, so a
//! page costs the stand-in little more than a copy. Filters and projections are refused.
//! `GET /stats` answers `{"pages":…,"items":…,"cpu_seconds":…}`: its own CPU so far.
//!
//! A minimal HTTP/1.1 server (keep-alive, Content-Length bodies): all the SDK speaks to it.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context as _;
use clap::Parser;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

#[path = "bench_data.rs"]
mod bench_data;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// A table to serve: NAME:KIND:ITEMS, KIND `realistic` or `sample` (repeatable).
    #[arg(long = "table", required = true)]
    tables: Vec<String>,
}

/// DynamoDB's limit on the items one Scan page reads.
const PAGE_BYTES: usize = 1024 * 1024;

struct Table {
    name: String,
    /// Each item's DynamoDB JSON, ordered by key hash (the scan order).
    items: Vec<Box<[u8]>>,
    /// Each item's size by DynamoDB's rules, in the same order.
    sizes: Vec<usize>,
    /// Each item's key hash, ascending.
    hashes: Vec<u64>,
    /// Each item's partition key, and its position in the order.
    positions: HashMap<String, usize>,
    keys: Vec<String>,
    total_bytes: u64,
}

impl Table {
    fn build(spec: &str) -> anyhow::Result<Self> {
        let mut parts = spec.splitn(3, ':');
        let (name, kind, count) = (parts.next(), parts.next(), parts.next());
        let (Some(name), Some(kind), Some(count)) = (name, kind, count) else {
            anyhow::bail!("--table {spec:?} is not NAME:KIND:ITEMS");
        };
        let kind: bench_data::Kind = kind.parse().map_err(anyhow::Error::msg)?;
        let count: u64 = count.parse().with_context(|| format!("--table {spec:?}: ITEMS"))?;
        let mut rows: Vec<(u64, String, Box<[u8]>, usize)> = (0..count)
            .map(|i| {
                let item = bench_data::item(kind, i);
                let key = bench_data::partition_key(&item).to_string();
                let mut json = Vec::new();
                bench_data::dynamodb_json(&item, &mut json);
                (key_hash(&key), key, json.into_boxed_slice(), bench_data::item_size(&item))
            })
            .collect();
        rows.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        let total_bytes = rows.iter().map(|r| r.3 as u64).sum();
        let mut table = Table {
            name: name.to_string(),
            items: Vec::with_capacity(rows.len()),
            sizes: Vec::with_capacity(rows.len()),
            hashes: Vec::with_capacity(rows.len()),
            positions: HashMap::with_capacity(rows.len()),
            keys: Vec::with_capacity(rows.len()),
            total_bytes,
        };
        for (position, (hash, key, json, size)) in rows.into_iter().enumerate() {
            table.positions.insert(key.clone(), position);
            table.keys.push(key);
            table.hashes.push(hash);
            table.items.push(json);
            table.sizes.push(size);
        }
        Ok(table)
    }

    /// The positions `[start, end)` of segment `segment` of `total`.
    fn segment(&self, segment: u64, total: u64) -> (usize, usize) {
        let bound = |s: u64| {
            let from = ((u128::from(s) << 64) / u128::from(total)).min(u128::from(u64::MAX) + 1);
            self.hashes.partition_point(|h| u128::from(*h) < from)
        };
        (bound(segment), if segment + 1 >= total { self.hashes.len() } else { bound(segment + 1) })
    }

    fn describe(&self) -> Value {
        json!({"Table": {
            "TableName": self.name,
            "TableArn": format!("arn:aws:dynamodb:us-east-1:000000000000:table/{}", self.name),
            "TableId": "6f1e5a34-0000-4000-8000-000000000000",
            "TableStatus": "ACTIVE",
            "ItemCount": self.items.len(),
            "TableSizeBytes": self.total_bytes,
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "BillingModeSummary": {"BillingMode": "PAY_PER_REQUEST"},
            "ProvisionedThroughput": {"ReadCapacityUnits": 0, "WriteCapacityUnits": 0, "NumberOfDecreasesToday": 0},
            "CreationDateTime": 1_700_000_000.0,
        }})
    }
}

/// FNV-1a of the key, mixed: spreads keys evenly over the segments.
fn key_hash(key: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in key.bytes() {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^ (hash >> 33)
}

#[derive(Default)]
struct Stats {
    pages: AtomicU64,
    items: AtomicU64,
}

struct Response {
    status: &'static str,
    body: Vec<u8>,
}

fn error(kind: &str, message: &str) -> Response {
    let body = json!({"__type": format!("com.amazonaws.dynamodb.v20120810#{kind}"), "message": message});
    Response { status: "400 Bad Request", body: body.to_string().into_bytes() }
}

fn scan(tables: &HashMap<String, Table>, request: &Value, stats: &Stats) -> Response {
    let Some(table) = request["TableName"].as_str().and_then(|name| tables.get(name)) else {
        return error("ResourceNotFoundException", "Requested resource not found");
    };
    if ["FilterExpression", "ProjectionExpression", "ScanFilter", "AttributesToGet"]
        .iter()
        .any(|f| !request[f].is_null())
    {
        return error("ValidationException", "this stand-in serves whole items only");
    }
    let total = request["TotalSegments"].as_u64().unwrap_or(1).max(1);
    let segment = request["Segment"].as_u64().unwrap_or(0);
    if segment >= total {
        return error("ValidationException", "Segment must be less than TotalSegments");
    }
    let (start, end) = table.segment(segment, total);
    let from = match request["ExclusiveStartKey"]["pk"]["S"].as_str() {
        Some(key) => match table.positions.get(key) {
            Some(position) => position + 1,
            None => return error("ValidationException", "The provided starting key is invalid"),
        },
        None => start,
    }
    .max(start);
    let limit = request["Limit"].as_u64().map_or(usize::MAX, |l| l.max(1) as usize);
    let (mut at, mut bytes) = (from, 0usize);
    while at < end && at - from < limit && (at == from || bytes + table.sizes[at] <= PAGE_BYTES) {
        bytes += table.sizes[at];
        at += 1;
    }
    let count = at - from;
    let mut body = Vec::with_capacity(bytes * 2 + 256);
    body.extend_from_slice(format!("{{\"Count\":{count},\"Items\":[").as_bytes());
    for (position, item) in table.items[from..at].iter().enumerate() {
        if position > 0 {
            body.push(b',');
        }
        body.extend_from_slice(item);
    }
    body.extend_from_slice(format!("],\"ScannedCount\":{count}").as_bytes());
    if at < end {
        let key = json!({"pk": {"S": table.keys[at - 1]}});
        body.extend_from_slice(format!(",\"LastEvaluatedKey\":{key}").as_bytes());
    }
    if request["ReturnConsumedCapacity"].as_str().is_some_and(|r| r != "NONE") {
        let units = 0.5 * bytes.div_ceil(4096).max(1) as f64;
        body.extend_from_slice(
            format!(",\"ConsumedCapacity\":{{\"TableName\":\"{}\",\"CapacityUnits\":{units}}}", table.name).as_bytes(),
        );
    }
    body.push(b'}');
    stats.pages.fetch_add(1, Ordering::Relaxed);
    stats.items.fetch_add(count as u64, Ordering::Relaxed);
    Response { status: "200 OK", body }
}

fn cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

fn answer(tables: &HashMap<String, Table>, stats: &Stats, target: &str, path: &str, body: &[u8]) -> Response {
    if path == "/stats" {
        let stats = json!({
            "pages": stats.pages.load(Ordering::Relaxed),
            "items": stats.items.load(Ordering::Relaxed),
            "cpu_seconds": cpu_seconds(),
        });
        return Response { status: "200 OK", body: stats.to_string().into_bytes() };
    }
    let Ok(request) = serde_json::from_slice::<Value>(body) else {
        return error("SerializationException", "the request is not JSON");
    };
    match target.rsplit('.').next() {
        Some("Scan") => scan(tables, &request, stats),
        Some("DescribeTable") => match request["TableName"].as_str().and_then(|name| tables.get(name)) {
            Some(table) => Response { status: "200 OK", body: table.describe().to_string().into_bytes() },
            None => error("ResourceNotFoundException", "Requested resource not found"),
        },
        _ => error("UnknownOperationException", "this stand-in serves DescribeTable and Scan only"),
    }
}

/// Serves one connection: requests one after another (keep-alive).
async fn serve(mut stream: tokio::net::TcpStream, tables: Arc<HashMap<String, Table>>, stats: Arc<Stats>) {
    let mut buffer: Vec<u8> = Vec::with_capacity(64 * 1024);
    loop {
        let head_end = loop {
            if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            let mut chunk = [0u8; 16 * 1024];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let path = lines.next().and_then(|l| l.split(' ').nth(1)).unwrap_or("/").to_string();
        let (mut length, mut target) = (0usize, String::new());
        for line in lines {
            if let Some((name, value)) = line.split_once(':') {
                match name.trim().to_ascii_lowercase().as_str() {
                    "content-length" => length = value.trim().parse().unwrap_or(0),
                    "x-amz-target" => target = value.trim().to_string(),
                    _ => {}
                }
            }
        }
        while buffer.len() < head_end + length {
            let mut chunk = [0u8; 64 * 1024];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        }
        let response = answer(&tables, &stats, &target, &path, &buffer[head_end..head_end + length]);
        buffer.drain(..head_end + length);
        let head = format!(
            "HTTP/1.1 {}\r\nContent-Type: application/x-amz-json-1.0\r\nContent-Length: {}\r\nx-amzn-RequestId: bench\r\n\r\n",
            response.status,
            response.body.len()
        );
        if stream.write_all(head.as_bytes()).await.is_err() || stream.write_all(&response.body).await.is_err() {
            return;
        }
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let tables: HashMap<String, Table> = args
        .tables
        .iter()
        .map(|spec| Table::build(spec).map(|t| (t.name.clone(), t)))
        .collect::<anyhow::Result<_>>()?;
    let tables = Arc::new(tables);
    let stats = Arc::new(Stats::default());
    // One thread: the stand-in must leave the machine's other core to what it measures.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port)).await?;
        eprintln!("fast_dynamodb: listening on http://{} ({} tables)", listener.local_addr()?, tables.len());
        loop {
            let (stream, _) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            tokio::spawn(serve(stream, tables.clone(), stats.clone()));
        }
    })
}
