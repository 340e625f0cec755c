//! The embedding example (`examples/pipeline_engine.rs`) runs in the test suite: a pipeline
//! engine of its own, calling the library's plan, run-shard and finalize steps in-process
//! against the stand-ins. Also the one-call library API with a progress observer.

use std::sync::{Arc, Mutex};

use ddb_export::progress::{ProgressObserver, ProgressStyle};
use ddb_export::{AwsClients, CacheDir, ComponentRuntime, ComponentSource, ExportRequest, GuestLimits, Target};

use crate::items;
use crate::util::{self, Standins};

#[allow(dead_code)]
#[path = "../../examples/pipeline_engine.rs"]
mod pipeline_engine;

fn clients(standins: &Standins) -> AwsClients {
    // Not used by full exports; pointed at the stand-in all the same.
    let streams = aws_sdk_dynamodbstreams::Client::from_conf(
        aws_sdk_dynamodbstreams::config::Builder::new()
            .behavior_version(aws_sdk_dynamodbstreams::config::BehaviorVersion::latest())
            .region(aws_sdk_dynamodbstreams::config::Region::new(util::REGION))
            .endpoint_url(standins.dynamodb_url())
            .build(),
    );
    AwsClients { dynamodb: standins.dynamodb(), streams, s3: standins.s3(), region: util::REGION.into() }
}

fn runtime() -> ComponentRuntime {
    let cache = CacheDir::At(std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("component-cache"));
    ComponentRuntime::load(&ComponentSource::Default, GuestLimits::default(), &cache).expect("the default component")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pipeline_engine_example_runs_an_export_as_separate_steps() {
    let standins = Standins::start();
    let dynamodb = standins.dynamodb();
    util::create_table(&dynamodb, "orders", &items::ordinary(1500)).await;
    standins.create_bucket("exports").await;
    let pipeline = pipeline_engine::Pipeline {
        table: "orders".into(),
        destination: "s3://exports/engine".into(),
        segments: Some(5),
        workers: 2,
        max_attempts: 2,
    };
    let outcome = pipeline_engine::run(&clients(&standins), &runtime(), &pipeline).await.expect("the pipeline");

    assert!(outcome.events[0].starts_with("plan: export "), "{:?}", outcome.events);
    assert!(outcome.events.last().unwrap().starts_with("finalize: 1500 items"), "{:?}", outcome.events);
    let writes: Vec<&String> = outcome.events.iter().filter(|e| e.starts_with("write: ")).collect();
    assert_eq!(writes.len(), 5, "{:?}", outcome.events);
    // The engine observed each shard's progress, and its last figures are the shard's items.
    for event in &writes {
        let (reported, observed) = event.split_once(" items (").expect("items and observed");
        let reported = reported.rsplit(' ').next().unwrap();
        assert_eq!(format!("{reported} observed)"), observed, "{event}");
    }
    assert_eq!(outcome.shards.iter().map(|r| r.shard).collect::<Vec<_>>(), vec![0, 1, 2, 3, 4]);
    assert_eq!(outcome.shards.iter().map(|r| r.item_count.unwrap()).sum::<u64>(), 1500);
    let description = outcome.description;
    assert_eq!(description.item_count, Some(1500));
    let summary_key = description.export_manifest.clone().expect("a manifest");
    let expected = util::sorted_canonical(util::scan_all(&dynamodb, "orders").await.iter().map(util::canonical));
    assert!(util::independent_check(&standins.bucket_dir("exports"), &summary_key) == expected);

    // Run again: the client token finds the complete export; nothing is written again.
    let again = pipeline_engine::run(&clients(&standins), &runtime(), &pipeline).await.expect("the pipeline again");
    assert_eq!(again.description.export_arn, description.export_arn);
    assert!(
        again.shards.iter().all(|r| r.status == "ALREADY_COMPLETED" && r.item_count.is_none()),
        "{:?}",
        again.shards
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_library_runs_an_export_in_one_call_and_reports_progress() {
    let standins = Standins::start();
    util::create_table(&standins.dynamodb(), "orders", &items::ordinary(800)).await;
    standins.create_bucket("exports").await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let observed = seen.clone();
    let request = ExportRequest {
        progress: ProgressStyle::Observe(ProgressObserver::new(move |figures| {
            observed.lock().unwrap().push(figures.items);
        })),
        progress_interval: std::time::Duration::from_millis(1),
        segments: Some(3),
        ..ExportRequest::new("orders", Target::parse("s3://exports/lib").unwrap())
    };
    let report = ddb_export::export::run(&clients(&standins), &runtime(), &request).await.map_err(|f| f.error).unwrap();
    assert_eq!(report.description.item_count, Some(800));
    let seen = seen.lock().unwrap().clone();
    assert!(!seen.is_empty(), "the observer was called");
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "counters only grow: {seen:?}");
    assert_eq!(seen.last(), Some(&800), "the last call has the final counters: {seen:?}");
}

/// A Rust engine of its own (its own wasmtime `Linker` and store state, the component's exports
/// called dynamically) links the step component's `dynamodb` and `s3` imports with one call
/// (`ddb_export::step::add_to_linker`), carried out by the host's `NativeStepIo`, and runs a
/// shard of an export the CLI planned; the CLI's finalize then publishes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rust_engine_links_the_step_imports_in_one_call_and_runs_the_steps() {
    use ddb_export::step::wasmtime::component::{Component, Linker, ResourceTable, Val};
    use ddb_export::step::wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
    use ddb_export::step::{NativeStepIo, STEP_COMPONENT, StepIo, StepView, wasmtime, wasmtime_wasi};

    struct State {
        wasi: WasiCtx,
        table: ResourceTable,
        aws: NativeStepIo,
    }
    impl WasiView for State {
        fn ctx(&mut self) -> WasiCtxView<'_> {
            WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
        }
    }
    impl StepView for State {
        fn step_io(&mut self) -> &mut dyn StepIo {
            &mut self.aws
        }
    }

    let standins = Standins::start();
    util::create_table(&standins.dynamodb(), "orders", &items::ordinary(400)).await;
    standins.create_bucket("exports").await;
    let planned = util::run(standins.command().args([
        "plan",
        "--table",
        "orders",
        "--to",
        "s3://exports/embedded",
        "--segments",
        "1",
    ]));
    assert!(planned.status.success(), "{}", String::from_utf8_lossy(&planned.stderr));
    let location = util::stdout_json(&planned)["exportLocation"].as_str().unwrap().to_string();

    let aws = NativeStepIo::new(clients(&standins), tokio::runtime::Handle::current());
    let at = location.clone();
    let call = tokio::task::spawn_blocking(move || -> wasmtime::Result<Val> {
        let engine = wasmtime::Engine::default();
        let component = Component::new(&engine, STEP_COMPONENT)?;
        let mut linker: Linker<State> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        ddb_export::step::add_to_linker(&mut linker)?;
        let state = State { wasi: WasiCtx::builder().build(), table: ResourceTable::new(), aws };
        let mut store = wasmtime::Store::new(&engine, state);
        let instance = linker.instantiate(&mut store, &component)?;
        let steps = instance.get_export_index(&mut store, None, "ddb-export:step/steps@0.1.0").expect("steps");
        let run_shard = instance.get_export_index(&mut store, Some(&steps), "run-shard").expect("run-shard");
        let run_shard = instance.get_func(&mut store, run_shard).expect("a function");
        let none = || Val::Option(None);
        let request = Val::Record(vec![
            ("export-location".into(), Val::String(at)),
            ("expected-bucket-owner".into(), none()),
            ("shard".into(), Val::U32(0)),
            ("budget".into(), Val::Record(vec![("max-data-files".into(), none()), ("max-millis".into(), none())])),
            ("task".into(), none()),
        ]);
        let mut results = [Val::Bool(false)];
        run_shard.call(&mut store, &[request], &mut results)?;
        let [result] = results;
        Ok(result)
    });
    let result = call.await.unwrap().expect("the engine runs run-shard");
    let Val::Result(Ok(Some(progress))) = result else { panic!("run-shard failed: {result:?}") };
    let Val::Record(fields) = *progress else { panic!("not a record: {progress:?}") };
    let field = |name: &str| fields.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
    assert_eq!(field("done"), Some(Val::Bool(true)));
    assert_eq!(field("item-count"), Some(Val::Option(Some(Box::new(Val::U64(400))))));
    let finalized = util::run(standins.command().args(["finalize", "--plan", &location]));
    let summary_key = util::completed(&finalized).1;
    let expected =
        util::sorted_canonical(util::scan_all(&standins.dynamodb(), "orders").await.iter().map(util::canonical));
    assert!(util::independent_check(&standins.bucket_dir("exports"), &summary_key) == expected);
}
