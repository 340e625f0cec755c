//! Builds the default component from `../guest` for `wasm32-wasip2` and hands it to the host.
//!
//! The component lands in `$OUT_DIR/ddb_export_guest.wasm` (embedded in the binary with
//! `include_bytes!`) and, as a file users can load or ship, beside the binary as
//! `target/<profile>/ddb_export_guest.wasm`.
//!
//! `DDB_EXPORT_COMPONENT=/path/to.wasm` skips the nested build and embeds that file instead
//! (for CI jobs that build the component once, or for packagers).
//!
//! The step component (`../step`, `wit/step`) is built next, told the default component's
//! SHA-256 (`DDB_EXPORT_GUEST_SHA256`): it links that component's encoder, so it writes the
//! same bytes, and runs the shards of exports planned with it. It lands beside it as
//! `ddb_export_step.wasm`.
//!
//! With the feature `step-engine`, the step adapter (`../step-adapter`: the AWS SDK over
//! `wasi:http`) is built too and composed with the step component (wac) into
//! `ddb_export_step_engine.wasm`: one component that imports only WASI and `wasi:http`, what an
//! engine such as Obelisk runs. The composition is checked: an import left unplugged fails the
//! build.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

const COMPONENT_FILE: &str = "ddb_export_guest.wasm";
const STEP_FILE: &str = "ddb_export_step.wasm";
#[cfg(feature = "step-engine")]
const ADAPTER_FILE: &str = "ddb_export_step_adapter.wasm";
#[cfg(feature = "step-engine")]
const ENGINE_FILE: &str = "ddb_export_step_engine.wasm";

fn main() {
    if let Err(message) = run() {
        eprintln!("error: {message}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    println!("cargo:rerun-if-env-changed=DDB_EXPORT_COMPONENT");
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").ok_or("OUT_DIR is not set")?);
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").ok_or("CARGO_MANIFEST_DIR is not set")?);
    let workspace = manifest_dir.parent().ok_or("runtime/ has no parent directory")?.to_path_buf();

    let built = match env::var_os("DDB_EXPORT_COMPONENT") {
        Some(path) => {
            let path = PathBuf::from(path);
            println!("cargo:rerun-if-changed={}", path.display());
            path
        }
        None => build_component(&workspace, &out_dir, "ddb-export-guest", COMPONENT_FILE, &[])?,
    };
    // Read now: the step's build compiles the guest again as its library (without the
    // component feature), and that cdylib lands under the same name.
    let guest = read(&built)?;
    let digest: String = Sha256::digest(&guest).iter().map(|b| format!("{b:02x}")).collect();
    let step =
        build_component(&workspace, &out_dir, "ddb-export-step", STEP_FILE, &[("DDB_EXPORT_GUEST_SHA256", &digest)])?;
    let step = read(&step)?;
    #[cfg(feature = "step-engine")]
    let engine = {
        let adapter = read(&build_component(&workspace, &out_dir, "ddb-export-step-adapter", ADAPTER_FILE, &[])?)?;
        Some((compose(&step, &adapter)?, ENGINE_FILE))
    };
    #[cfg(not(feature = "step-engine"))]
    let engine = None;
    for (bytes, name) in [(guest, COMPONENT_FILE), (step, STEP_FILE)].iter().chain(&engine) {
        write(&out_dir.join(name), bytes)?;
        // target/<profile>/build/<pkg>-<hash>/out -> target/<profile>
        if let Some(profile_dir) = out_dir.ancestors().nth(3) {
            write(&profile_dir.join(name), bytes)?;
        }
    }
    Ok(())
}

/// Builds `package` for wasm32-wasip2 (release, LTO) with `env` set; returns the component.
fn build_component(
    workspace: &Path,
    out_dir: &Path,
    package: &str,
    file: &str,
    env: &[(&str, &str)],
) -> Result<PathBuf, String> {
    for input in [
        "guest/src",
        "guest/Cargo.toml",
        "data-files/src",
        "data-files/Cargo.toml",
        "step/src",
        "step/Cargo.toml",
        "step-adapter/src",
        "step-adapter/Cargo.toml",
        "dynamodb-sdk/src",
        "state-format/src",
        "model/src",
        "wit",
        "Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={}", workspace.join(input).display());
    }
    // A target directory of its own: the outer cargo holds a lock on the normal one.
    let target_dir = match out_dir.ancestors().nth(4) {
        Some(target) => target.join("guest"),
        None => workspace.join("target").join("guest"),
    };
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    // SIMD is a standard wasm feature every current runtime has; it speeds the guest's deflate
    // up by 10-13% (BENCHMARKS.md).
    let mut flags = vec![
        "-Ctarget-feature=+simd128".to_string(),
        format!("--remap-path-prefix={}=/ddb-export", workspace.display()),
    ];
    for (var, alias) in [("CARGO_HOME", "/cargo"), ("RUSTUP_HOME", "/rustup")] {
        if let Some(dir) = env::var_os(var) {
            flags.push(format!("--remap-path-prefix={}={alias}", PathBuf::from(dir).display()));
        }
    }
    let status = Command::new(cargo)
        .current_dir(workspace)
        .args(["build", "--package", package, "--target", "wasm32-wasip2", "--release"])
        .envs(env.iter().copied())
        .arg("--target-dir")
        .arg(&target_dir)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("CARGO_TARGET_DIR")
        .env("CARGO_ENCODED_RUSTFLAGS", flags.join("\x1f"))
        // One codegen unit and LTO: the guest's hot loops (deflate, the JSON reader and
        // writer) inline across crates; measured in BENCHMARKS.md.
        .env("CARGO_PROFILE_RELEASE_LTO", "true")
        .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "1")
        .status()
        .map_err(|e| format!("could not run cargo to build {package}: {e}"))?;
    if !status.success() {
        return Err(format!(
            "building {package} failed ({status}); is the wasm32-wasip2 target installed? \
             (`rustup target add wasm32-wasip2`)"
        ));
    }
    Ok(target_dir.join("wasm32-wasip2").join("release").join(file))
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    std::fs::write(path, bytes).map_err(|e| format!("writing {}: {e}", path.display()))
}

/// The step component with the adapter plugged into its `dynamodb` and `s3` imports: one
/// component exporting `steps` and importing only WASI and `wasi:http`.
#[cfg(feature = "step-engine")]
fn compose(step: &[u8], adapter: &[u8]) -> Result<Vec<u8>, String> {
    use wac_graph::types::Package;
    use wac_graph::{CompositionGraph, EncodeOptions};
    const STEPS: &str = "ddb-export:step/steps@0.1.0";
    let failed = |what: &str, e: &dyn std::fmt::Display| format!("composing the step engine component: {what}: {e}");
    let mut graph = CompositionGraph::new();
    let package = |graph: &mut CompositionGraph, name: &str, bytes: &[u8]| {
        let package =
            Package::from_bytes(name, None, bytes.to_vec(), graph.types_mut()).map_err(|e| failed(name, &e))?;
        graph.register_package(package).map_err(|e| failed(name, &e))
    };
    let step = package(&mut graph, "ddb-export:step-component", step)?;
    let adapter = package(&mut graph, "ddb-export:step-adapter", adapter)?;
    let (step, adapter) = (graph.instantiate(step), graph.instantiate(adapter));
    for name in ["ddb-export:step/dynamodb@0.1.0", "ddb-export:step/s3@0.1.0"] {
        let export = graph.alias_instance_export(adapter, name).map_err(|e| failed(name, &e))?;
        graph.set_instantiation_argument(step, name, export).map_err(|e| failed(name, &e))?;
    }
    let steps = graph.alias_instance_export(step, STEPS).map_err(|e| failed(STEPS, &e))?;
    graph.export(steps, STEPS).map_err(|e| failed(STEPS, &e))?;
    let composed = graph.encode(EncodeOptions::default()).map_err(|e| failed("encoding", &e))?;
    // What an engine must supply: WASI and wasi:http, nothing of ours.
    let mut check = CompositionGraph::new();
    let checked = Package::from_bytes("composed", None, composed.clone(), check.types_mut())
        .map_err(|e| failed("reading it back", &e))?;
    if let Some(name) = check.types()[checked.ty()].imports.keys().find(|name| !name.starts_with("wasi:")) {
        return Err(failed("an import is left unplugged", &name));
    }
    Ok(composed)
}
