//! What the sandbox costs: the same encoder (`guest/`) run natively and as the component, on
//! the same pages, in one run, reported as ratios.
//!
//! ```sh
//! cargo run --release -p ddb-export --example encoder_cost -- --pages 40 --items-per-page 1000
//! ```
//!
//! Pages are what a Scan response's `Items` holds (DynamoDB JSON, `bench_data`'s items, the
//! kind `--kind` says). Native: the guest's `ShardEncoder::encode_json_page`, compiled
//! natively. Component: the host's `Encoder::encode_json` on the same bytes: the crossing into
//! the component, the guest's work in wasm, and the output back. The ratio is the sandbox's
//! cost for the export's CPU work.

use std::time::{Duration, Instant};

use clap::Parser;

use ddb_export::model::{EncoderOptions, ExportFormat, SnapshotRequest, SseAlgorithm, TableInfo};
use ddb_export::{CacheDir, ComponentRuntime, ComponentSource, GuestLimits};
use ddb_export_guest::encoder::ShardEncoder;
use ddb_export_guest::wit;

#[path = "bench_data.rs"]
mod bench_data;

#[derive(Parser)]
struct Args {
    /// Pages per measurement.
    #[arg(long, default_value_t = 40)]
    pages: usize,
    /// Items per page (a DynamoDB Scan page holds up to 1 MB).
    #[arg(long, default_value_t = 700)]
    items_per_page: usize,
    /// Repetitions; the fastest is reported.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// The gzip levels to measure.
    #[arg(long, value_delimiter = ',', default_values_t = [0u8, 1, 6])]
    levels: Vec<u8>,
    /// Which items: `realistic` (compresses like real tables) or `sample`.
    #[arg(long, default_value = "realistic")]
    kind: bench_data::Kind,
    /// Measure this build of the component instead of the built-in one (e.g. one built with
    /// `-C target-feature=+simd128`).
    #[arg(long)]
    component: Option<std::path::PathBuf>,
}

/// The data-file bytes in an encoder's output.
fn bytes_of(output: Vec<wit::Output>) -> usize {
    output.iter().map(|event| if let wit::Output::Bytes(bytes) = event { bytes.len() } else { 0 }).sum()
}

/// The fastest of `repeat` runs; any failure fails the benchmark.
fn best(repeat: usize, mut run: impl FnMut() -> anyhow::Result<Duration>) -> anyhow::Result<Duration> {
    let mut best = Duration::MAX;
    for _ in 0..repeat {
        best = best.min(run()?);
    }
    Ok(best)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // Each page as a Scan response's `Items` holds it.
    let pages: Vec<Vec<u8>> = (0..args.pages)
        .map(|p| {
            let mut json = b"[".to_vec();
            for i in 0..args.items_per_page {
                if i > 0 {
                    json.push(b',');
                }
                bench_data::dynamodb_json(
                    &bench_data::item(args.kind, (p * args.items_per_page + i) as u64),
                    &mut json,
                );
            }
            json.push(b']');
            json
        })
        .collect();
    let items = (args.pages * args.items_per_page) as f64;
    let raw_bytes: usize = pages.iter().map(Vec::len).sum();
    let lines_bytes: usize = {
        let arena = ddb_export_data_files::json_page::Arena::new();
        let mut lines = Vec::new();
        for page in &pages {
            for item in ddb_export_data_files::json_page::read(page, &arena).map_err(|e| anyhow::anyhow!("{e}"))? {
                ddb_export_guest::dynamodb_json::write_line(&mut lines, &item);
            }
        }
        lines.len()
    };

    let table = TableInfo {
        stream: None,
        schema: None,
        table_name: "bench".into(),
        table_arn: "arn:aws:dynamodb:us-east-1:123456789012:table/bench".into(),
        table_id: None,
        item_count: 0,
        table_size_bytes: 0,
        billing: ddb_export::model::Billing::OnDemand,
        key_attributes: vec!["pk".into()],
    };
    let request = SnapshotRequest {
        s3_bucket: "bench".into(),
        s3_prefix: None,
        s3_bucket_owner: None,
        s3_sse_algorithm: SseAlgorithm::Aes256,
        s3_sse_kms_key_id: None,
        export_format: ExportFormat::DynamodbJson,
        client_token: "bench".into(),
        start_time_ms: 1_700_000_000_000,
        region: "us-east-1".into(),
        incremental: None,
        custom_format: None,
    };
    let source = match &args.component {
        Some(path) => ComponentSource::File(path.clone()),
        None => ComponentSource::Default,
    };
    let runtime = ComponentRuntime::load(&source, GuestLimits::default(), &CacheDir::from_env())?;
    let snapshot = runtime.session()?.snapshot(&table, &request)?;
    let guest_snapshot = ddb_export_guest::snapshot::create(
        wit::TableDescription {
            table_name: table.table_name.clone(),
            table_arn: table.table_arn.clone(),
            table_id: None,
            item_count: 0,
            table_size_bytes: 0,
            billing: wit::Billing::OnDemand,
        },
        wit::ExportRequest {
            s3_bucket: "bench".into(),
            s3_prefix: None,
            s3_bucket_owner: None,
            s3_sse_algorithm: wit::SseAlgorithm::Aes256,
            s3_sse_kms_key_id: None,
            export_format: wit::ExportFormat::DynamodbJson,
            client_token: "bench".into(),
            start_time_ms: 1_700_000_000_000,
            region: "us-east-1".into(),
            incremental: None,
            custom_format: None,
        },
    )
    .map_err(|e| anyhow::anyhow!("{e:?}"))?;

    println!(
        "{} pages x {} {:?} items ({:.0} bytes of DynamoDB JSON per item), best of {}",
        args.pages,
        args.items_per_page,
        args.kind,
        raw_bytes as f64 / items,
        args.repeat
    );
    let mut sizes = Vec::new();
    println!("{:>6} {:>16} {:>16} {:>18}", "gzip", "native items/s", "component items/s", "component/native");
    for &level in &args.levels {
        let guest_error = |e: wit::WriteError| anyhow::anyhow!("{e:?}");
        let native = best(args.repeat, || {
            let options =
                wit::EncoderOptions { shard_id: 0, target_file_bytes: 0, compression_level: level, first_sequence: 0 };
            let mut encoder = ShardEncoder::open(&guest_snapshot, options).map_err(guest_error)?;
            let started = Instant::now();
            let mut compressed = 0usize;
            for page in &pages {
                compressed += bytes_of(encoder.encode_json_page(page).map_err(guest_error)?);
            }
            sizes.push((level, compressed));
            encoder.finish().map_err(guest_error)?;
            Ok(started.elapsed())
        })?;
        let component = best(args.repeat, || {
            let options =
                EncoderOptions { shard_id: 0, target_file_bytes: 0, compression_level: level, first_sequence: 0 };
            let mut encoder = runtime.session()?.open_encoder(&snapshot, &options)?;
            let started = Instant::now();
            for page in &pages {
                encoder.encode_json(page)?;
            }
            encoder.finish()?;
            Ok(started.elapsed())
        })?;
        // Outside the timed runs: the component writes what the same encoder writes natively.
        let native_bytes = {
            let options =
                wit::EncoderOptions { shard_id: 0, target_file_bytes: 0, compression_level: level, first_sequence: 0 };
            let mut encoder = ShardEncoder::open(&guest_snapshot, options).map_err(guest_error)?;
            let mut all = Vec::new();
            for page in &pages {
                all.extend(encoder.encode_json_page(page).map_err(guest_error)?);
            }
            all.extend(encoder.finish().map_err(guest_error)?);
            all.into_iter()
                .filter_map(|e| if let wit::Output::Bytes(b) = e { Some(b) } else { None })
                .flatten()
                .collect::<Vec<u8>>()
        };
        let component_bytes = {
            let options =
                EncoderOptions { shard_id: 0, target_file_bytes: 0, compression_level: level, first_sequence: 0 };
            let mut encoder = runtime.session()?.open_encoder(&snapshot, &options)?;
            let mut all = Vec::new();
            for page in &pages {
                all.extend(encoder.encode_json(page)?);
            }
            all.extend(encoder.finish()?);
            all.into_iter()
                .filter_map(|e| if let ddb_export::model::EncoderEvent::Bytes(b) = e { Some(b) } else { None })
                .flatten()
                .collect::<Vec<u8>>()
        };
        println!(
            "{:>6} {:>16.0} {:>17.0} {:>18.2}   {}",
            level,
            items / native.as_secs_f64(),
            items / component.as_secs_f64(),
            native.as_secs_f64() / component.as_secs_f64(),
            if native_bytes == component_bytes { "same bytes" } else { "DIFFERENT BYTES" }
        );
        anyhow::ensure!(native_bytes == component_bytes, "gzip {level}: the component's bytes differ from native");
    }
    println!("component/native is the component's throughput as a share of native (1.00 = no cost).");
    for (level, compressed) in sizes.iter().step_by(args.repeat) {
        println!("gzip {level}: {:.2}x smaller than the JSON lines", lines_bytes as f64 / *compressed as f64);
    }

    // Start-up: compiling the component vs loading it from the cache, then one instance.
    let cache_dir = tempfile::tempdir()?;
    let cache = CacheDir::At(cache_dir.path().join("cache"));
    let timed_load = || -> anyhow::Result<Duration> {
        let started = Instant::now();
        let runtime = ComponentRuntime::load(&source, GuestLimits::default(), &cache)?;
        runtime.session()?;
        Ok(started.elapsed())
    };
    let cold = timed_load()?;
    let cached = (0..args.repeat)
        .map(|_| timed_load())
        .collect::<anyhow::Result<Vec<_>>>()?
        .into_iter()
        .min()
        .unwrap_or_default();
    println!(
        "component start: {:.1} ms compiling, {:.2} ms from the cache ({:.0}x faster)",
        cold.as_secs_f64() * 1e3,
        cached.as_secs_f64() * 1e3,
        cold.as_secs_f64() / cached.as_secs_f64()
    );
    Ok(())
}
