//! Creates a sample table (and optionally a bucket) on whatever endpoint the AWS environment
//! names, for the demo and the benchmark:
//!
//! ```sh
//! cargo run --example seed_sample_table -- --table sample --items 1000 --bucket demo
//! ```
//!
//! Items carry every AttributeValue type, so an export of the table shows them all.

use std::collections::HashMap;

use anyhow::Context as _;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, PutRequest, ScalarAttributeType,
    WriteRequest,
};
use clap::Parser;

/// Seed a sample DynamoDB table.
#[derive(Parser)]
struct Args {
    /// Table to create (deleted first if it exists).
    #[arg(long, default_value = "sample")]
    table: String,
    /// Items to write.
    #[arg(long, default_value_t = 1000)]
    items: u32,
    /// Approximate size of each item's filler attribute, in bytes.
    #[arg(long, default_value_t = 200)]
    item_bytes: usize,
    /// Also create this S3 bucket (ignored if it exists).
    #[arg(long)]
    bucket: Option<String>,
}

fn sample_item(i: u32, filler: usize) -> HashMap<String, AttributeValue> {
    let s = |v: &str| AttributeValue::S(v.to_string());
    let n = |v: String| AttributeValue::N(v);
    HashMap::from([
        ("pk".to_string(), s(&format!("item#{i:08}"))),
        ("price".to_string(), n(format!("{}.{:02}", i % 1000, i % 100))),
        ("name".to_string(), s(&format!("Ünïcode \"quoted\" item {i} ✓"))),
        ("active".to_string(), AttributeValue::Bool(i.is_multiple_of(2))),
        ("nothing".to_string(), AttributeValue::Null(true)),
        ("blob".to_string(), AttributeValue::B(Blob::new(i.to_be_bytes().to_vec()))),
        ("tags".to_string(), AttributeValue::Ss(vec!["a".into(), format!("t{}", i % 7)])),
        ("scores".to_string(), AttributeValue::Ns(vec!["1".into(), format!("{}", i + 2)])),
        (
            "details".to_string(),
            AttributeValue::M(HashMap::from([
                ("list".to_string(), AttributeValue::L(vec![n(i.to_string()), s("x")])),
                ("filler".to_string(), s(&"f".repeat(filler))),
            ])),
        ),
    ])
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
                            .set_item(Some(sample_item(i, args.item_bytes)))
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
