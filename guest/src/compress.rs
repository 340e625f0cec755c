//! Where the default component's gzip is made: by the host, natively (`wit/compression.wit`),
//! when it runs as a component; by flate2 in this process when it runs natively (its tests, the
//! benchmarks) or inside a component that links this crate and has no host to compress for it
//! (feature `in-process-gzip`: the step component, `step/`). All give zlib-rs's bytes for a
//! level, so the data files are the same.

use ddb_export_data_files::framing::{Flate2Gzip, FramingError, Gzip, GzipLevel, NewGzip};

/// The maker of this build's gzip streams.
pub fn gzip() -> NewGzip {
    if cfg!(all(target_arch = "wasm32", not(feature = "in-process-gzip"))) { host } else { Flate2Gzip::boxed }
}

fn host(level: GzipLevel) -> Box<dyn Gzip> {
    Box::new(HostGzip(crate::bindings::ddb_export::core::compression::GzipStream::new(level.get())))
}

/// A gzip member the host compresses.
struct HostGzip(crate::bindings::ddb_export::core::compression::GzipStream);

impl Gzip for HostGzip {
    fn append(&mut self, bytes: &[u8]) -> Result<Vec<u8>, FramingError> {
        Ok(self.0.append(bytes))
    }

    fn finish(&mut self) -> Result<Vec<u8>, FramingError> {
        Ok(self.0.finish())
    }
}
