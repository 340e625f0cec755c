//! A minimal pipeline engine that embeds ddb-export's library and runs an export as separate
//! steps under its own scheduling, as a workflow engine would:
//!
//! 1. **plan**: the component's `snapshot` and `shard-plan` steps, recorded at the destination
//!    (`ddb_export::fanout::plan`);
//! 2. **write**: every shard as a task of the engine's own queue, a few at a time, each retried
//!    on failure (`fanout::run_shard`; a retried shard resumes from its checkpoint);
//! 3. **finalize**: the manifests, once every shard is done (`fanout::finalize`).
//!
//! ```text
//! cargo run --example pipeline_engine -- TABLE s3://bucket/prefix [SEGMENTS] [WORKERS]
//! ```
//!
//! with the usual AWS environment (or `AWS_ENDPOINT_URL_DYNAMODB` / `AWS_ENDPOINT_URL_S3` for
//! local stand-ins). The test suite runs [`run`] against the stand-ins (`tests/e2e/embedding.rs`).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use ddb_export::export::ReadLimit;
use ddb_export::fanout::{self, PlanLocation, ShardReport, ShardRun};
use ddb_export::progress::{ProgressObserver, ProgressStyle};
use ddb_export::{
    AwsClients, CacheDir, ComponentRuntime, ComponentSource, ExportDescription, ExportRequest, GuestLimits, Target,
};

/// What to export, and how the engine schedules it.
pub struct Pipeline {
    pub table: String,
    pub destination: String,
    pub segments: Option<u32>,
    /// Shard tasks running at once.
    pub workers: usize,
    /// Attempts per shard task before the pipeline fails.
    pub max_attempts: u32,
}

/// What the engine did: one line per step event, and the export's description.
pub struct Outcome {
    pub events: Vec<String>,
    pub shards: Vec<ShardReport>,
    pub description: ExportDescription,
}

/// Runs the three steps. Shards are queued last first, to show that order does not matter.
pub async fn run(aws: &AwsClients, runtime: &ComponentRuntime, pipeline: &Pipeline) -> anyhow::Result<Outcome> {
    let events = Arc::new(Mutex::new(Vec::new()));
    let log = |events: &Mutex<Vec<String>>, line: String| {
        eprintln!("engine: {line}");
        if let Ok(mut events) = events.lock() {
            events.push(line);
        }
    };

    // Step 1: plan. A client token makes a retried plan step return the same export.
    let request = ExportRequest {
        segments: pipeline.segments,
        client_token: Some(format!("pipeline-{}-{}", pipeline.table, pipeline.destination.replace('/', "_"))),
        ..ExportRequest::new(pipeline.table.clone(), Target::parse(&pipeline.destination)?)
    };
    let plan = fanout::plan(aws, runtime, &request).await.map_err(|failure| failure.error).context("plan")?;
    log(&events, format!("plan: export {} with {} shards", plan.export_id, plan.shards.len()));
    let at = PlanLocation::parse(&plan.export_location)?;

    // Step 2: write, on the engine's own queue.
    let queue: Arc<Mutex<VecDeque<(u32, u32)>>> =
        Arc::new(Mutex::new(plan.shards.iter().rev().map(|&shard| (shard, 1)).collect()));
    let reports = Arc::new(Mutex::new(Vec::new()));
    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..pipeline.workers.max(1) {
        let (aws, runtime, at) = (aws.clone(), runtime.clone(), at.clone());
        let (queue, reports, events) = (queue.clone(), reports.clone(), events.clone());
        let max_attempts = pipeline.max_attempts;
        workers.spawn(async move {
            loop {
                let next = queue.lock().map_err(|_| anyhow::anyhow!("queue poisoned"))?.pop_front();
                let Some((shard, attempt)) = next else { return Ok::<(), anyhow::Error>(()) };
                // The engine's own progress reporting: the shard's final counters.
                let seen = Arc::new(Mutex::new(None));
                let observed = seen.clone();
                let how = ShardRun {
                    progress: ProgressStyle::Observe(ProgressObserver::new(move |figures| {
                        if let Ok(mut last) = observed.lock() {
                            *last = Some(figures.items);
                        }
                    })),
                    ..ShardRun::new(ReadLimit::Unlimited)
                };
                let result = fanout::run_shard(&aws, &runtime, &at, shard, &how).await;
                let observed_items = seen.lock().ok().and_then(|last| *last);
                match result {
                    Ok(report) => {
                        let items = report.item_count.map_or("?".into(), |n| n.to_string());
                        let observed = observed_items.map_or("?".into(), |n| n.to_string());
                        log(
                            &events,
                            format!("write: worker {worker} ran shard {shard}: {items} items ({observed} observed)"),
                        );
                        reports.lock().map_err(|_| anyhow::anyhow!("reports poisoned"))?.push(report);
                    }
                    Err(error) if attempt < max_attempts => {
                        log(&events, format!("write: shard {shard} attempt {attempt} failed ({error}); requeued"));
                        queue.lock().map_err(|_| anyhow::anyhow!("queue poisoned"))?.push_back((shard, attempt + 1));
                    }
                    Err(error) => return Err(anyhow::Error::new(error).context(format!("shard {shard}"))),
                }
            }
        });
    }
    while let Some(joined) = workers.join_next().await {
        joined.context("a worker panicked")??;
    }

    // Step 3: finalize.
    let report = fanout::finalize(aws, runtime, &at).await.map_err(|failure| failure.error).context("finalize")?;
    log(&events, format!("finalize: {} items in {} data files", report.stats.items, report.data_files));
    let events = events.lock().map_err(|_| anyhow::anyhow!("events poisoned"))?.clone();
    let mut shards = reports.lock().map_err(|_| anyhow::anyhow!("reports poisoned"))?.clone();
    shards.sort_by_key(|r| r.shard);
    Ok(Outcome { events, shards, description: report.description })
}

#[allow(dead_code)]
#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [table, destination, rest @ ..] = args.as_slice() else {
        anyhow::bail!("usage: pipeline_engine TABLE DESTINATION [SEGMENTS] [WORKERS]");
    };
    let number = |i: usize, name: &str| -> anyhow::Result<Option<u32>> {
        rest.get(i).map(|text| text.parse().with_context(|| format!("{name} {text:?} is not a number"))).transpose()
    };
    let pipeline = Pipeline {
        table: table.clone(),
        destination: destination.clone(),
        segments: number(0, "SEGMENTS")?,
        workers: number(1, "WORKERS")?.unwrap_or(4) as usize,
        max_attempts: 3,
    };
    let aws = AwsClients::from_env().await?;
    let runtime = ComponentRuntime::load(&ComponentSource::Default, GuestLimits::default(), &CacheDir::from_env())?;
    let outcome = run(&aws, &runtime, &pipeline).await?;
    println!("{}", serde_json::to_string_pretty(&outcome.description.into_output())?);
    Ok(())
}
