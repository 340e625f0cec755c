//! The plain engine as a command:
//!
//! - `plain-engine [--component FILE] call <interface> <function> '<params as a JSON array>'`:
//!   one call of a component's export, as an engine makes it; the result printed as JSON (exit
//!   code 1 when it is an `err`).
//! - `plain-engine [--component FILE] drive '<plan-request>' [--workers N] [--max-data-files N]
//!   [--no-finalize]`: a whole export through the step engine component's `steps`, as a workflow
//!   engine runs it: plan, every shard on N threads (each as repeated bounded calls), finalize;
//!   prints what each phase took, as JSON (the benchmarks' driver).
//!
//! The component is the step engine component unless `--component` names another; its
//! environment is this process's `AWS_*` variables.

use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Instant;

use serde_json::{Value, json};

use ddb_export_plain_engine::PlainEngine;

const STEPS: &str = "ddb-export:step/steps@0.1.0";

fn main() -> ExitCode {
    match run() {
        Ok(result) => {
            println!("{result}");
            // A step's own error is a result too: the exit code says which it was.
            match result.get("err") {
                Some(_) => ExitCode::from(1),
                None => ExitCode::SUCCESS,
            }
        }
        Err(message) => {
            eprintln!("plain-engine: {message}");
            ExitCode::from(2)
        }
    }
}

const USAGE: &str = "usage: plain-engine [--component FILE] call <interface> <function> '<JSON array of parameters>'\n       \
                     plain-engine [--component FILE] drive '<plan-request JSON>' [--workers N] [--max-data-files N] [--no-finalize]";

fn run() -> Result<Value, String> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let component = match take_value(&mut args, "--component")? {
        Some(path) => std::fs::read(&path).map_err(|e| format!("reading {path}: {e}"))?,
        None => ddb_export_runtime::step::STEP_ENGINE_COMPONENT.to_vec(),
    };
    let env = std::env::vars().filter(|(key, _)| key.starts_with("AWS_")).collect();
    let compiling = Instant::now();
    let engine = PlainEngine::new(&component, env)?;
    let compiled = compiling.elapsed().as_secs_f64();
    eprintln!("plain-engine: compiled in {compiled:.3}s");
    match args.first().map(String::as_str) {
        Some("call") => {
            let [_, interface, function, params] = args.as_slice() else { return Err(USAGE.into()) };
            let params: Value = serde_json::from_str(params).map_err(|e| format!("the parameters: {e}"))?;
            engine.call(interface, function, &params)
        }
        Some("drive") => {
            let workers: usize = take_value(&mut args, "--workers")?
                .map_or(Ok(8), |n| n.parse().map_err(|e| format!("--workers: {e}")))?;
            let files: u32 = take_value(&mut args, "--max-data-files")?
                .map_or(Ok(4), |n| n.parse().map_err(|e| format!("--max-data-files: {e}")))?;
            let finalize = match args.iter().position(|a| a == "--no-finalize") {
                Some(at) => {
                    args.remove(at);
                    false
                }
                None => true,
            };
            let [_, request] = args.as_slice() else { return Err(USAGE.into()) };
            let request: Value = serde_json::from_str(request).map_err(|e| format!("the plan request: {e}"))?;
            let mut report = drive(&engine, &request, workers.max(1), files, finalize)?;
            report["compile_seconds"] = json!(compiled);
            Ok(report)
        }
        _ => Err(USAGE.into()),
    }
}

/// Removes `--flag VALUE` from `args`, returning the value.
fn take_value(args: &mut Vec<String>, flag: &str) -> Result<Option<String>, String> {
    match args.iter().position(|a| a == flag) {
        Some(at) if at + 1 < args.len() => {
            let value = args.remove(at + 1);
            args.remove(at);
            Ok(Some(value))
        }
        Some(_) => Err(format!("{flag} needs a value")),
        None => Ok(None),
    }
}

/// A call's `ok` payload, or the error it answered with.
fn ok(answer: Value) -> Result<Value, String> {
    match answer.get("ok") {
        Some(ok) => Ok(ok.clone()),
        None => Err(format!("the step failed: {answer}")),
    }
}

/// Plan, every shard on `workers` threads, finalize; what each took.
fn drive(engine: &PlainEngine, request: &Value, workers: usize, files: u32, finalize: bool) -> Result<Value, String> {
    let started = Instant::now();
    let plan = ok(engine.call(STEPS, "plan", &json!([request]))?)?;
    let planned = started.elapsed().as_secs_f64();
    let location = plan["export-location"].as_str().ok_or("the plan has no location")?.to_string();
    let queue = Mutex::new(plan["shards"].as_array().cloned().unwrap_or_default());
    let calls = Mutex::new(0u64);
    let items = Mutex::new(0u64);
    let failure: Mutex<Option<String>> = Mutex::new(None);
    let shards_started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    // Taken in a statement of its own: the queue's lock is not held for the call.
                    let next = queue.lock().unwrap_or_else(|p| p.into_inner()).pop();
                    let Some(shard) = next else { break };
                    let call = json!([{
                        "export-location": location, "shard": shard, "budget": {"max-data-files": files},
                        "task": format!("drive/{shard}"),
                    }]);
                    loop {
                        *calls.lock().unwrap_or_else(|p| p.into_inner()) += 1;
                        match engine.call(STEPS, "run-shard", &call).and_then(ok) {
                            Ok(progress) if progress["done"] == true => {
                                *items.lock().unwrap_or_else(|p| p.into_inner()) +=
                                    progress["item-count"].as_u64().unwrap_or(0);
                                break;
                            }
                            Ok(_) => continue,
                            Err(error) => {
                                failure.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(error);
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    if let Some(error) = failure.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(error);
    }
    let shards_seconds = shards_started.elapsed().as_secs_f64();
    let mut report = json!({
        "export_location": location,
        "shards": plan["shards"].as_array().map_or(0, Vec::len),
        "run_shard_calls": calls.into_inner().unwrap_or_else(|p| p.into_inner()),
        "items": items.into_inner().unwrap_or_else(|p| p.into_inner()),
        "plan_seconds": planned,
        "shards_seconds": shards_seconds,
    });
    if finalize {
        let finalizing = Instant::now();
        let summary = ok(engine.call(STEPS, "finalize", &json!([{"export-location": location}]))?)?;
        report["finalize_seconds"] = json!(finalizing.elapsed().as_secs_f64());
        report["summary"] = summary;
    }
    Ok(report)
}
