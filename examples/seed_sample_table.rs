//! Creates a sample table (and optionally a bucket) on whatever endpoint the AWS environment
//! names, for the demo and the benchmark:
//!
//! ```sh
//! cargo run --example seed_sample_table -- --table sample --items 1000 --bucket demo
//! ```
//!
//! Sample items carry every AttributeValue type, so an export of the table shows them all;
//! `--kind realistic` writes the benchmark's items that compress like real tables instead
//! (`bench_data.rs`).

use anyhow::Context as _;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, PutRequest, ScalarAttributeType, WriteRequest,
};
use clap::Parser;

#[path = "bench_data.rs"]
mod bench_data;

/// Seed a sample DynamoDB table.
#[derive(Parser)]
struct Args {
    /// Table to create (deleted first if it exists).
    #[arg(long, default_value = "sample")]
    table: String,
    /// Items to write.
    #[arg(long, default_value_t = 1000)]
    items: u32,
    /// Approximate size of each sample item's filler attribute, in bytes.
    #[arg(long, default_value_t = 200)]
    item_bytes: usize,
    /// `sample` (every type, a compressible filler) or `realistic` (compresses like real data).
    #[arg(long, default_value = "sample")]
    kind: bench_data::Kind,
    /// Also create this S3 bucket (ignored if it exists).
    #[arg(long)]
    bucket: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);

    let _ = dynamodb.delete_table().table_name(&args.table).send().await;
    dynamodb
        .create_table()
        .table_name(&args.table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder().attribute_name("pk").attribute_type(ScalarAttributeType::S).build()?,
        )
        .key_schema(KeySchemaElement::builder().attribute_name("pk").key_type(KeyType::Hash).build()?)
        .send()
        .await
        .with_context(|| format!("creating table {}", args.table))?;
    wait_active(&dynamodb, &args.table).await?;

    let items: Vec<u32> = (0..args.items).collect();
    for chunk in items.chunks(25) {
        let mut requests: Vec<WriteRequest> = chunk
            .iter()
            .map(|&i| {
                WriteRequest::builder()
                    .put_request(
                        PutRequest::builder()
                            .set_item(Some(bench_data::attribute_values(&match args.kind {
                                bench_data::Kind::Sample => bench_data::sample(u64::from(i), args.item_bytes),
                                kind => bench_data::item(kind, u64::from(i)),
                            })))
                            .build()
                            .expect("item is set"),
                    )
                    .build()
            })
            .collect();
        while !requests.is_empty() {
            let output = dynamodb
                .batch_write_item()
                .request_items(&args.table, requests)
                .send()
                .await
                .context("writing items")?;
            requests = output.unprocessed_items.and_then(|mut u| u.remove(&args.table)).unwrap_or_default();
        }
    }
    eprintln!("table {} holds {} items", args.table, args.items);

    if let Some(bucket) = args.bucket {
        let s3_config = aws_sdk_s3::config::Builder::from(&config).force_path_style(true).build();
        let s3 = aws_sdk_s3::Client::from_conf(s3_config);
        match s3.create_bucket().bucket(&bucket).send().await {
            Ok(_) => eprintln!("bucket {bucket} created"),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_bucket_already_owned_by_you() || e.is_bucket_already_exists()) => {}
            Err(e) => return Err(anyhow::Error::new(e).context(format!("creating bucket {bucket}"))),
        }
    }
    Ok(())
}

async fn wait_active(dynamodb: &aws_sdk_dynamodb::Client, table: &str) -> anyhow::Result<()> {
    for _ in 0..100 {
        let out = dynamodb.describe_table().table_name(table).send().await?;
        if out.table().and_then(|t| t.table_status()).is_some_and(|s| s.as_str() == "ACTIVE") {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    anyhow::bail!("table {table} did not become ACTIVE")
}
