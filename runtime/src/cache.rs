//! A disk cache of compiled components.
//!
//! Compiling the component takes a fraction of a second in a release build and far longer in
//! a debug one; loading a compiled artifact takes under a millisecond. The key covers the
//! component's bytes, the wasmtime version and every engine setting that affects code, so a
//! stale artifact is never offered to `Component::deserialize`.
//!
//! Loading native code from disk is only as safe as the directory it comes from: the cache
//! directory is created private to the user (0700 on Unix) and artifacts are written to a
//! temporary name and renamed, so a reader never sees a partial file.

use std::hash::{Hash, Hasher};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Where compiled components are kept, if anywhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheDir {
    /// No cache: compile on every load.
    Disabled,
    /// This directory.
    At(PathBuf),
}

impl CacheDir {
    /// `$DDB_EXPORT_CACHE_DIR`, else `$XDG_CACHE_HOME/ddb-export`, else `$HOME/.cache/ddb-export`.
    pub fn from_env() -> Self {
        let var = |name| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        match var("DDB_EXPORT_CACHE_DIR")
            .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("ddb-export")))
            .or_else(|| var("HOME").map(|d| d.join(".cache").join("ddb-export")))
        {
            Some(dir) => CacheDir::At(dir),
            None => CacheDir::Disabled,
        }
    }
}

/// Feeds `Hash` output into SHA-256, whose value, unlike `DefaultHasher`'s, is stable across
/// Rust releases.
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn finish(&self) -> u64 {
        0
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

/// The file name an artifact of `wasm` compiled by `engine` is cached under.
pub fn artifact_name(engine: &Engine, wasm: &[u8]) -> String {
    let mut hasher = Sha256Hasher(Sha256::new());
    hasher.write(wasm);
    hasher.write(env!("CARGO_PKG_VERSION").as_bytes());
    engine.precompile_compatibility_hash().hash(&mut hasher);
    let digest = hasher.0.finalize();
    let hex: String = digest.iter().take(20).map(|b| format!("{b:02x}")).collect();
    format!("{hex}.cwasm")
}

/// How a component was obtained, for diagnostics and benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadedFrom {
    /// Compiled now (no cache, or a miss).
    Compiled,
    /// Deserialized from the cache.
    Cache,
}

/// Loads `wasm` from the cache or compiles it (then stores the artifact). Cache failures are
/// logged and never fail the load.
pub fn load(engine: &Engine, wasm: &[u8], cache: &CacheDir) -> wasmtime::Result<(Component, LoadedFrom)> {
    let CacheDir::At(dir) = cache else {
        return Ok((Component::new(engine, wasm)?, LoadedFrom::Compiled));
    };
    let path = dir.join(artifact_name(engine, wasm));
    if path.is_file() && is_private(dir) {
        // SAFETY: the file is in the user's private cache directory, was written by `store`
        // below from `Component::serialize` of this engine configuration (the name says so),
        // and is only ever replaced by rename. wasmtime checks its header and engine settings.
        match unsafe { Component::deserialize_file(engine, &path) } {
            Ok(component) => return Ok((component, LoadedFrom::Cache)),
            Err(e) => tracing::warn!("ignoring unusable cached component {}: {e}", path.display()),
        }
    }
    let component = Component::new(engine, wasm)?;
    match component.serialize() {
        Ok(bytes) => {
            if let Err(e) = store(dir, &path, &bytes) {
                tracing::warn!("could not cache the compiled component in {}: {e}", dir.display());
            }
        }
        Err(e) => tracing::warn!("could not serialize the compiled component: {e}"),
    }
    Ok((component, LoadedFrom::Compiled))
}

/// Whether `dir` belongs to this user and nobody else may write to it: only then is native
/// code in it trusted. (Elsewhere than Unix, the platform's defaults are relied on.)
fn is_private(dir: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        let Ok(meta) = std::fs::metadata(dir) else { return false };
        // SAFETY: geteuid has no preconditions and cannot fail.
        let me = unsafe { libc::geteuid() };
        let private = meta.uid() == me && meta.mode() & 0o022 == 0;
        if !private {
            tracing::warn!(
                "not using the component cache {}: it must be owned by you and not writable by others",
                dir.display()
            );
        }
        private
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        true
    }
}

fn store(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    create_private_dir(dir)?;
    if !is_private(dir) {
        return Ok(());
    }
    let temp = dir.join(format!(".{}.{}.tmp", std::process::id(), uuid::Uuid::new_v4()));
    let result = (|| {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder.create(dir)
}
