//! The ceiling for an export on this machine: a parallel Scan of the table through the same
//! SDK client the exporter uses (its configuration, retries off as the exporter's Scans have
//! them), each page parsed by the SDK into its typed items as any SDK program's would be,
//! and every item thrown away.
//!
//! ```sh
//! cargo run --release -p ddb-export --example raw_scan -- --table sample --segments 8 --parallelism 8
//! ```
//!
//! Prints one JSON line: `{"items":…,"pages":…,"seconds":…,"items_per_second":…}`.

use std::time::Instant;

use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::types::ReturnConsumedCapacity;
use clap::Parser;
use ddb_export::AwsClients;

#[derive(Parser)]
struct Args {
    #[arg(long)]
    table: String,
    #[arg(long, default_value_t = 8)]
    segments: u32,
    #[arg(long, default_value_t = 8)]
    parallelism: u32,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let aws = AwsClients::from_env().await?;
    let started = Instant::now();
    let lanes = std::sync::Arc::new(tokio::sync::Semaphore::new(args.parallelism as usize));
    let mut tasks = tokio::task::JoinSet::new();
    for segment in 0..args.segments {
        let (client, table, lanes) = (aws.dynamodb.clone(), args.table.clone(), lanes.clone());
        tasks.spawn(async move {
            let _lane = lanes.acquire_owned().await?;
            let (mut items, mut pages, mut start) = (0u64, 0u64, None);
            loop {
                let page = client
                    .scan()
                    .table_name(&table)
                    .segment(segment as i32)
                    .total_segments(args.segments as i32)
                    .set_exclusive_start_key(start)
                    .return_consumed_capacity(ReturnConsumedCapacity::Total)
                    .customize()
                    .config_override(aws_sdk_dynamodb::config::Builder::default().retry_config(RetryConfig::disabled()))
                    .send()
                    .await?;
                items += page.items().len() as u64;
                pages += 1;
                start = page.last_evaluated_key.filter(|key| !key.is_empty());
                if start.is_none() {
                    return anyhow::Ok((items, pages));
                }
            }
        });
    }
    let (mut items, mut pages) = (0, 0);
    while let Some(result) = tasks.join_next().await {
        let (i, p) = result??;
        items += i;
        pages += p;
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({ "items": items, "pages": pages, "seconds": seconds, "items_per_second": items as f64 / seconds })
    );
    Ok(())
}
