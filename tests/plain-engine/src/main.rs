//! `plain-engine [--component FILE] <interface> <function> '<params as a JSON array>'`: one
//! call of a component's export, as an engine makes it, the result printed as JSON. The
//! component is the step engine component unless `--component` names another; its
//! environment is this process's `AWS_*` variables.

use std::process::ExitCode;

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

fn run() -> Result<serde_json::Value, String> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let component = match args.iter().position(|a| a == "--component") {
        Some(at) if at + 1 < args.len() => {
            let path = args.remove(at + 1);
            args.remove(at);
            std::fs::read(&path).map_err(|e| format!("reading {path}: {e}"))?
        }
        Some(_) => return Err("--component needs a file".into()),
        None => ddb_export_runtime::step::STEP_ENGINE_COMPONENT.to_vec(),
    };
    let [interface, function, params] = args.as_slice() else {
        return Err("usage: plain-engine [--component FILE] <interface> <function> '<JSON array of parameters>'".into());
    };
    let params: serde_json::Value = serde_json::from_str(params).map_err(|e| format!("the parameters: {e}"))?;
    let env = std::env::vars().filter(|(key, _)| key.starts_with("AWS_")).collect();
    let engine = ddb_export_plain_engine::PlainEngine::new(&component, env)?;
    engine.call(interface, function, &params)
}
