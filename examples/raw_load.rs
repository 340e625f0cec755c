//! The ceiling for a restore on this machine: a parallel BatchWriteItem loader through the same
//! SDK client the restore uses, as a short script would write one. It reads the data files a
//! `manifest-files.json` lists (DYNAMODB_JSON, gzip) into SDK items with serde_json, and sends
//! them 25 at a time, `--parallelism` requests in flight, what DynamoDB leaves unprocessed sent
//! again. No verification, no checkpoints, no budget.
//!
//! ```sh
//! cargo run --release -p ddb-export --example raw_load -- --export DIR/AWSDynamoDB/ID --table copy
//! ```
//!
//! Prints one JSON line: `{"items":…,"requests":…,"seconds":…,"items_per_second":…}`.

use std::collections::HashMap;
use std::io::BufRead as _;
use std::path::PathBuf;
use std::time::Instant;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use base64::Engine as _;
use clap::Parser;
use ddb_export::AwsClients;
use serde_json::Value;

#[derive(Parser)]
struct Args {
    /// The export's folder in a directory (`…/AWSDynamoDB/<id>`).
    #[arg(long)]
    export: PathBuf,
    #[arg(long)]
    table: String,
    #[arg(long, default_value_t = 16)]
    parallelism: usize,
}

fn attribute(value: &Value) -> anyhow::Result<AttributeValue> {
    let (kind, inner) = value.as_object().and_then(|o| o.iter().next()).ok_or_else(|| anyhow::anyhow!("not typed"))?;
    let strings = |v: &Value| -> Vec<String> {
        v.as_array().into_iter().flatten().filter_map(|s| s.as_str().map(str::to_string)).collect()
    };
    let bytes = |s: &str| base64::engine::general_purpose::STANDARD.decode(s);
    Ok(match kind.as_str() {
        "S" => AttributeValue::S(inner.as_str().unwrap_or_default().into()),
        "N" => AttributeValue::N(inner.as_str().unwrap_or_default().into()),
        "B" => AttributeValue::B(Blob::new(bytes(inner.as_str().unwrap_or_default())?)),
        "BOOL" => AttributeValue::Bool(inner.as_bool().unwrap_or_default()),
        "NULL" => AttributeValue::Null(true),
        "SS" => AttributeValue::Ss(strings(inner)),
        "NS" => AttributeValue::Ns(strings(inner)),
        "BS" => AttributeValue::Bs(strings(inner).iter().map(|s| bytes(s).map(Blob::new)).collect::<Result<_, _>>()?),
        "L" => AttributeValue::L(inner.as_array().into_iter().flatten().map(attribute).collect::<Result<_, _>>()?),
        "M" => AttributeValue::M(item(inner)?),
        other => anyhow::bail!("unknown type {other}"),
    })
}

fn item(value: &Value) -> anyhow::Result<HashMap<String, AttributeValue>> {
    let object = value.as_object().ok_or_else(|| anyhow::anyhow!("not an object"))?;
    object.iter().map(|(name, value)| Ok((name.clone(), attribute(value)?))).collect()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let aws = AwsClients::from_env().await?;
    let started = Instant::now();
    let base = args.export.parent().and_then(|p| p.parent()).ok_or_else(|| anyhow::anyhow!("not an export folder"))?;
    let listing = std::fs::read_to_string(args.export.join("manifest-files.json"))?;
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(args.parallelism));
    let mut tasks = tokio::task::JoinSet::new();
    let (mut items, mut requests) = (0u64, 0u64);
    for line in listing.lines() {
        let entry: Value = serde_json::from_str(line)?;
        let key = entry["dataFileS3Key"].as_str().unwrap_or_default();
        let file = std::fs::File::open(base.join(key))?;
        let mut batch = Vec::new();
        let mut lines = std::io::BufReader::new(flate2::read::MultiGzDecoder::new(file)).lines();
        loop {
            let next = lines.next().transpose()?;
            if let Some(text) = &next {
                let parsed: Value = serde_json::from_str(text)?;
                let put = PutRequest::builder().set_item(Some(item(&parsed["Item"])?)).build()?;
                batch.push(WriteRequest::builder().put_request(put).build());
                items += 1;
            }
            if batch.len() == 25 || (next.is_none() && !batch.is_empty()) {
                let permit = slots.clone().acquire_owned().await?;
                let (client, table, mut pending) =
                    (aws.dynamodb.clone(), args.table.clone(), std::mem::take(&mut batch));
                requests += 1;
                tasks.spawn(async move {
                    let _permit = permit;
                    while !pending.is_empty() {
                        let output = client.batch_write_item().request_items(&table, pending).send().await?;
                        pending = output.unprocessed_items.and_then(|mut u| u.remove(&table)).unwrap_or_default();
                    }
                    anyhow::Ok(())
                });
                while let Some(done) = tasks.try_join_next() {
                    done??;
                }
            }
            if next.is_none() {
                break;
            }
        }
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({"items": items, "requests": requests, "seconds": seconds, "items_per_second": items as f64 / seconds})
    );
    Ok(())
}
