//! The `ddb-export` command.

mod cli;

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser as _;
use tracing_subscriber::EnvFilter;

use ddb_export::destination::Destination;
use ddb_export::runtime::{EncoderPlugin, LoadedFrom};
use ddb_export::{
    AwsClients, CacheDir, ComponentRuntime, ComponentSource, ExportRequest, GuestLimits, S3Options, Target,
};

use cli::{
    Cli, Command, ComponentArgs, DescribeArgs, ExportArgs, FinalizeArgs, ListArgs, PlanArgs, RunShardArgs, VerifyArgs,
};
use ddb_export::export::{IncrementalWindow, ReadLimit};
use ddb_export::model::Field;
use ddb_export::progress::ProgressStyle;

/// Exit code of a failed export.
const EXIT_FAILED: u8 = 1;
/// Exit code of a request refused as it stands (clap's own usage errors exit 2 too).
const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    keep_large_allocations();
    let cli = Cli::parse();
    init_logging(&cli);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Export(args) => export(args, cli.quiet).await,
            Command::Plan(args) => plan(args).await,
            Command::RunShard(args) => run_shard(args, cli.quiet).await,
            Command::Finalize(args) => finalize(args).await,
            Command::Describe(args) => describe(args).await,
            Command::List(args) => list(args).await,
            Command::Verify(args) => verify(args).await,
            Command::Restore(args) => restore(args, cli.quiet).await,
            Command::RestorePlan(args) => restore_plan(args).await,
            Command::RestoreShard(args) => restore_shard(args, cli.quiet).await,
            Command::RestoreFinalize(args) => restore_finalize(args).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(error) => {
            // Each cause once: an error that quotes its source is not followed by it again.
            eprintln!("error: {}", cli::flags::in_flags(&ddb_export::error::in_words(error.as_ref())));
            ExitCode::from(exit_code(&error))
        }
    }
}

/// [`EXIT_USAGE`] when what failed is the request itself (a bad or conflicting flag, whoever
/// found it: clap, the request's own checks, or the table or export the flags name), else
/// [`EXIT_FAILED`].
fn exit_code(error: &anyhow::Error) -> u8 {
    let refused = error.chain().any(|cause| {
        matches!(
            cause.downcast_ref::<ddb_export::ExportError>(),
            Some(ddb_export::ExportError::InvalidArgument { .. } | ddb_export::ExportError::Configuration { .. })
        )
    });
    if refused { EXIT_USAGE } else { EXIT_FAILED }
}

/// A usage error found here, naming the flag (exit [`EXIT_USAGE`]).
fn usage(field: Field, message: String) -> anyhow::Error {
    ddb_export::ExportError::InvalidArgument { field, message }.into()
}

fn init_logging(cli: &Cli) {
    let default = match (cli.quiet, cli.verbose) {
        (true, _) => "error",
        (false, 0) => "info,aws_config=warn,aws_smithy_runtime=warn",
        (false, 1) => "debug,aws_config=info,aws_smithy_runtime=info,hyper=info,h2=info,rustls=info",
        (false, _) => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(|| cli::flags::Stderr).with_target(false).init();
}

/// Lets glibc's allocator reuse large blocks instead of handing each back to the kernel: an
/// export allocates a few MiB-sized buffers per Scan page (the response, the encoder's
/// output), and with the default threshold (128 KiB) each one is a fresh mapping, faulted in
/// and zeroed page by page.
fn keep_large_allocations() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 16 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 128 << 20);
    }
}

/// A flag that SIGINT (Ctrl-C), SIGTERM (what a scheduler or container runtime sends) and
/// SIGHUP (a closed terminal) set, so that the work stops cleanly: its uploads aborted, its
/// failure recorded, no manifest written. A second signal quits at once.
fn stop_on_signals(what: &'static str) -> anyhow::Result<Arc<AtomicBool>> {
    use tokio::signal::unix::{SignalKind, signal};
    let stop = Arc::new(AtomicBool::new(false));
    let mut terminate = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
    let mut hangup = signal(SignalKind::hangup()).context("listening for SIGHUP")?;
    let on_signal = stop.clone();
    tokio::spawn(async move {
        let mut next = async || -> Option<&'static str> {
            tokio::select! {
                interrupted = tokio::signal::ctrl_c() => interrupted.ok().map(|()| "interrupted (SIGINT)"),
                terminated = terminate.recv() => terminated.map(|()| "terminated (SIGTERM)"),
                hung_up = hangup.recv() => hung_up.map(|()| "hung up (SIGHUP)"),
            }
        };
        if let Some(how) = next().await {
            tracing::warn!("{how}: stopping {what} cleanly (a second signal quits at once)");
            on_signal.store(true, Ordering::Relaxed);
        }
        if let Some(how) = next().await {
            eprintln!("error: {how} again; unfinished multipart uploads are left to the bucket's lifecycle rules");
            std::process::exit(130);
        }
    });
    Ok(stop)
}

/// Loads the component (and the encoder plugin) the flags name.
async fn load_components(args: ComponentArgs) -> anyhow::Result<ComponentRuntime> {
    let source = match args.component {
        Some(path) => ComponentSource::File(path),
        None => ComponentSource::Default,
    };
    let limits = GuestLimits {
        memory_bytes: (args.component_memory_mib as usize).saturating_mul(1024 * 1024),
        call_timeout: Duration::from_secs(args.component_timeout_secs),
    };
    let cache = if args.no_cache { CacheDir::Disabled } else { CacheDir::from_env() };
    let (encoder, encoder_args) = (args.encoder, args.encoder_args);
    let runtime = tokio::task::spawn_blocking(move || -> anyhow::Result<ComponentRuntime> {
        let runtime = ComponentRuntime::load(&source, limits, &cache)?;
        Ok(match encoder {
            Some(path) => runtime.with_encoder(EncoderPlugin::load(&path, encoder_args, limits, &cache)?),
            None => runtime,
        })
    })
    .await
    .context("loading the component")??;
    let (from, took) = runtime.load_stats();
    let how = if from == LoadedFrom::Cache { "from the cache" } else { "compiled" };
    tracing::debug!("{} loaded ({how}) in {took:.2?}", runtime.name());
    Ok(runtime)
}

/// The export request `export` and `plan` build from their flags.
fn export_request(args: ExportArgs, quiet: bool) -> anyhow::Result<(ExportRequest, ComponentArgs)> {
    let request = ExportRequest {
        table: args.table,
        target: Target::parse(&args.to)?,
        format: args.format.map(Into::into),
        segments: args.segments,
        parallelism: args.parallelism.unwrap_or_else(ddb_export::export::default_parallelism),
        client_token: args.client_token,
        resume: args.resume,
        s3: S3Options { expected_owner: args.s3_bucket_owner, kms_key_id: args.s3_sse_kms_key_id },
        target_file_bytes: args.file_size,
        compression_level: args.compression_level,
        read_limit: match (args.max_rcu, args.read_percent, args.no_read_limit) {
            (Some(rcu), _, _) => ReadLimit::MaxRcu(rcu),
            (_, Some(percent), _) => ReadLimit::ReadPercent(percent),
            (_, _, true) => ReadLimit::Unlimited,
            _ => ReadLimit::Default,
        },
        progress: args.progress.style(quiet),
        progress_interval: Duration::from_secs(args.progress_interval_secs),
        incremental: match (args.incremental, args.from) {
            (true, Some(from_ms)) => Some(IncrementalWindow {
                from_ms,
                to_ms: args.until,
                view: args.view.unwrap_or(cli::ViewArg::NewAndOldImages).into(),
            }),
            _ => None,
        },
        consistent: args.consistent.then_some(true),
        scan_filter: scan_filter(args.filter, args.projection, args.expression_names, args.expression_values)?,
    };
    request.validate()?;
    Ok((request, args.components))
}

async fn export(args: ExportArgs, quiet: bool) -> anyhow::Result<ExitCode> {
    let (request, components) = export_request(args, quiet)?;
    let runtime = load_components(components).await?;
    let aws = AwsClients::from_env().await?;
    let stop = stop_on_signals("the export")?;
    match ddb_export::export::run_until_stopped(&aws, &runtime, &request, stop).await {
        Ok(report) => {
            print_json(&report.description.clone().into_output())?;
            let s = &report.stats;
            tracing::info!(
                "exported {} items in {} data files ({} scan pages, {:.1} RCU, {} throttled) in {:.2}s; summary: {}",
                report.description.item_count.unwrap_or(s.items),
                report.data_files,
                s.scan_pages,
                s.consumed_read_capacity_units,
                s.throttles,
                s.seconds,
                report.summary_location
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(failure) => {
            if let Some(description) = failure.description {
                print_json(&description.into_output())?;
            }
            Err(anyhow::Error::new(failure.error).context("the export failed"))
        }
    }
}

async fn plan(args: PlanArgs) -> anyhow::Result<ExitCode> {
    let (request, components) = export_request(args.export, true)?;
    let plan = if args.in_component {
        let how = step_run(&components)?;
        let aws = AwsClients::from_env().await?;
        ddb_export::fanout::in_component::plan(&aws, &how, &request).await.context("planning the export failed")?
    } else {
        let runtime = load_components(components).await?;
        let aws = AwsClients::from_env().await?;
        match ddb_export::fanout::plan(&aws, &runtime, &request).await {
            Ok(plan) => plan,
            Err(failure) => return Err(anyhow::Error::new(failure.error).context("planning the export failed")),
        }
    };
    if let Some(path) = &args.out {
        let text = serde_json::to_vec_pretty(&plan).context("encoding the plan")?;
        std::fs::write(path, text).with_context(|| format!("writing the plan to {}", path.display()))?;
    }
    print_json(&plan)?;
    Ok(ExitCode::SUCCESS)
}

async fn run_shard(args: RunShardArgs, quiet: bool) -> anyhow::Result<ExitCode> {
    let at = ddb_export::fanout::PlanLocation::parse(&args.plan)?.with_expected_owner(args.s3_bucket_owner.clone());
    // clap requires one of the two.
    let read_limit = match args.max_rcu {
        Some(rcu) if rcu.is_finite() && rcu >= 1.0 => ReadLimit::MaxRcu(rcu),
        Some(rcu) => return Err(usage(Field::MaxRcu, format!("{rcu} is not a number of at least 1"))),
        None => ReadLimit::Unlimited,
    };
    if args.in_component {
        return run_shard_in_component(args, at, read_limit).await;
    }
    let runtime = load_components(args.components).await?;
    let aws = AwsClients::from_env().await?;
    // A worker's log is a file or a console: a progress line every 10 s.
    let progress = if quiet { ProgressStyle::Off } else { ProgressStyle::Lines };
    let stop = stop_on_signals("the shard")?;
    let how = ddb_export::fanout::ShardRun { progress, stop, ..ddb_export::fanout::ShardRun::new(read_limit) };
    let report = ddb_export::fanout::run_shard(&aws, &runtime, &at, args.shard, &how)
        .await
        .with_context(|| format!("shard {} failed", args.shard))?;
    let count = |n: Option<u64>| n.map_or_else(|| "?".to_string(), |n| n.to_string());
    tracing::info!(
        "shard {}: {} ({} items, {} data files)",
        report.shard,
        report.status,
        count(report.item_count),
        count(report.data_files.map(|n| n as u64))
    );
    print_json(&report)?;
    Ok(ExitCode::SUCCESS)
}

/// `run-shard --in-component`: the shard run by the step component.
async fn run_shard_in_component(
    args: RunShardArgs,
    at: ddb_export::fanout::PlanLocation,
    read_limit: ReadLimit,
) -> anyhow::Result<ExitCode> {
    if read_limit != ReadLimit::Unlimited {
        return Err(usage(Field::MaxRcu, "the step component has no read limit: give --no-read-limit".into()));
    }
    let how = step_run(&args.components)?;
    let aws = AwsClients::from_env().await?;
    let budget = ddb_export::fanout::in_component::StepBudget {
        max_data_files: args.max_data_files,
        max_millis: args.max_millis,
    };
    let report = ddb_export::fanout::in_component::run_shard(&aws, &how, &at, args.shard, budget)
        .await
        .with_context(|| format!("shard {} failed", args.shard))?;
    tracing::info!("shard {}: {}", report.shard, report.status);
    print_json(&report)?;
    Ok(ExitCode::SUCCESS)
}

/// The step component's sandbox, from the component flags (which may not name another
/// component or a plugin: the step component links the built-in encoder).
fn step_run(components: &ComponentArgs) -> anyhow::Result<ddb_export::fanout::in_component::StepRun> {
    if components.component.is_some() || components.encoder.is_some() {
        return Err(usage(
            Field::Component,
            "--in-component runs the built-in step component, which links the built-in encoder".into(),
        ));
    }
    Ok(ddb_export::fanout::in_component::StepRun {
        limits: GuestLimits {
            memory_bytes: (components.component_memory_mib as usize).saturating_mul(1024 * 1024),
            call_timeout: Duration::from_secs(components.component_timeout_secs),
        },
        cache: if components.no_cache { CacheDir::Disabled } else { CacheDir::from_env() },
    })
}

async fn finalize(args: FinalizeArgs) -> anyhow::Result<ExitCode> {
    let at = ddb_export::fanout::PlanLocation::parse(&args.plan)?.with_expected_owner(args.s3_bucket_owner);
    if args.in_component {
        let how = step_run(&args.components)?;
        let aws = AwsClients::from_env().await?;
        let summary = ddb_export::fanout::in_component::finalize(&aws, &how, &at)
            .await
            .context("finalizing the export failed")?;
        tracing::info!(
            "export complete: {} data files; summary: {}",
            summary.data_files,
            summary.manifest_summary_location
        );
        print_json(&summary)?;
        return Ok(ExitCode::SUCCESS);
    }
    let runtime = load_components(args.components).await?;
    let aws = AwsClients::from_env().await?;
    match ddb_export::fanout::finalize(&aws, &runtime, &at).await {
        Ok(report) => {
            print_json(&report.description.clone().into_output())?;
            tracing::info!("export complete: {} data files; summary: {}", report.data_files, report.summary_location);
            Ok(ExitCode::SUCCESS)
        }
        Err(failure) => {
            if let Some(description) = failure.description {
                print_json(&description.into_output())?;
            }
            Err(anyhow::Error::new(failure.error).context("finalizing the export failed"))
        }
    }
}

/// The destination and export id `describe` and `verify` name.
async fn located_export(args: &DescribeArgs) -> anyhow::Result<(Destination, String)> {
    let (target, id_in_location) = Target::parse_export_location(&args.location)?;
    let id = match (args.export_id.as_deref(), id_in_location) {
        (Some(given), _) => {
            ddb_export::export::resume_export_id(given).map_err(|message| usage(Field::ExportId, message))?.to_string()
        }
        (None, Some(id)) => id,
        (None, None) => {
            return Err(usage(
                Field::ExportId,
                "which export? give --export-id, or a location ending in AWSDynamoDB/<export id> (see `ddb-export \
                 list`)"
                    .into(),
            ));
        }
    };
    Ok((Destination::open_for_reading(&target).await?, id))
}

async fn describe(args: DescribeArgs) -> anyhow::Result<ExitCode> {
    let (destination, id) = located_export(&args).await?;
    let description = ddb_export::catalog::describe(&destination, &id).await?;
    print_json(&description.into_output())?;
    Ok(ExitCode::SUCCESS)
}

async fn verify(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    if let Some(keys) = &args.key_attributes
        && (keys.is_empty() || keys.len() > 2 || keys.iter().any(String::is_empty))
    {
        return Err(usage(Field::KeyAttributes, "names a partition key, and a sort key if the table has one".into()));
    }
    let (destination, id) = located_export(&args.at).await?;
    let runtime = default_component().await?;
    let report = ddb_export::verify::verify(
        &destination,
        &runtime,
        &id,
        args.key_attributes.map(|names| names.into_iter().map(ddb_export::model::KeyAttribute::untyped).collect()),
    )
    .await?;
    print_json(&report)?;
    if report.verified && !report.contents_checked {
        tracing::info!(
            "{}: verified ({} data files, {} items by the manifest): manifests, files, ETags and MD5s; the files' \
             contents were not read (a plugin's format)",
            report.export,
            report.data_files,
            report.items
        );
        Ok(ExitCode::SUCCESS)
    } else if report.verified {
        tracing::info!("{}: verified ({} data files, {} items)", report.export, report.data_files, report.items);
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("error: {} does not verify: {} problems (listed on stdout)", report.export, report.problems.len());
        Ok(ExitCode::from(EXIT_FAILED))
    }
}

/// The default component, which restore's steps decode with.
async fn default_component() -> anyhow::Result<ComponentRuntime> {
    let cache = CacheDir::from_env();
    tokio::task::spawn_blocking(move || {
        ComponentRuntime::load(&ComponentSource::Default, GuestLimits::default(), &cache)
    })
    .await
    .context("loading the component")?
    .map_err(Into::into)
}

async fn restore_plan(args: cli::restore::RestorePlanArgs) -> anyhow::Result<ExitCode> {
    let request = args.restore.request(true)?;
    let runtime = default_component().await?;
    let aws = AwsClients::from_env().await?;
    let plan = ddb_export::restore::plan(&aws, &runtime, &request, args.files_per_shard)
        .await
        .context("planning the restore failed")?;
    print_json(&plan)?;
    Ok(ExitCode::SUCCESS)
}

async fn restore_shard(args: cli::restore::RestoreShardArgs, quiet: bool) -> anyhow::Result<ExitCode> {
    let options = args.writing.options(quiet);
    let runtime = default_component().await?;
    let aws = AwsClients::from_env().await?;
    let stop = stop_on_signals("the restore shard")?;
    let report = ddb_export::restore::run_shard(&aws, &runtime, &args.plan, args.shard, &options, stop)
        .await
        .with_context(|| format!("restoring shard {} failed", args.shard))?;
    print_json(&report)?;
    Ok(ExitCode::SUCCESS)
}

async fn restore_finalize(args: cli::restore::RestoreFinalizeArgs) -> anyhow::Result<ExitCode> {
    let aws = AwsClients::from_env().await?;
    let report = ddb_export::restore::finalize(&aws, &args.plan).await.context("finalizing the restore failed")?;
    print_json(&report)?;
    Ok(ExitCode::SUCCESS)
}

async fn restore(args: cli::restore::RestoreArgs, quiet: bool) -> anyhow::Result<ExitCode> {
    let request = args.request(quiet)?;
    let runtime = default_component().await?;
    let aws = AwsClients::from_env().await?;
    let stop = stop_on_signals("the restore")?;
    let report = ddb_export::restore::run(&aws, &runtime, &request, stop).await.context("the restore failed")?;
    print_json(&report)?;
    let f = &report.figures;
    tracing::info!(
        "restored {} into {}: {} put, {} deleted, {} skipped, {:.1} WCU, {} throttled, in {:.2}s",
        report.exports.join(" + "),
        report.table,
        f.items_put,
        f.items_deleted,
        f.skipped,
        f.consumed_write_capacity_units,
        f.throttles,
        f.seconds
    );
    Ok(ExitCode::SUCCESS)
}

async fn list(args: ListArgs) -> anyhow::Result<ExitCode> {
    let destination = Destination::open_for_reading(&Target::parse(&args.location)?).await?;
    let export_summaries = ddb_export::catalog::list(&destination).await?;
    print_json(&ddb_export::catalog::ListExportsOutput { export_summaries })?;
    Ok(ExitCode::SUCCESS)
}

/// The Scan filter the flags name, if any; names must map to attribute names (strings).
fn scan_filter(
    filter: Option<String>,
    projection: Option<String>,
    names: Option<serde_json::Map<String, serde_json::Value>>,
    values: Option<serde_json::Map<String, serde_json::Value>>,
) -> anyhow::Result<Option<ddb_export::dynamodb::ScanFilter>> {
    if filter.is_none() && projection.is_none() {
        if names.is_some() || values.is_some() {
            return Err(usage(
                Field::ExpressionNames,
                "--expression-names and --expression-values need --filter or --projection".into(),
            ));
        }
        return Ok(None);
    }
    let names = names
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| match v {
            serde_json::Value::String(name) => Ok((k, name)),
            other => Err(usage(Field::ExpressionNames, format!("{k} maps to {other}, not a name"))),
        })
        .collect::<anyhow::Result<_>>()?;
    let values = values.unwrap_or_default().into_iter().collect();
    Ok(Some(ddb_export::dynamodb::ScanFilter { filter, projection, names, values }))
}

fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value).context("encoding the export description")?;
    println!("{text}");
    Ok(())
}
