//! The `compression` import (`wit/compression.wit`): a component's gzip streams compressed
//! here, natively, by the very code the component would otherwise run in WebAssembly (flate2
//! with zlib-rs, through `ddb-export-data-files`' [`Flate2Gzip`]), so the bytes are the same and
//! deflate runs at native speed.
//!
//! The component controls how many streams it opens and what it feeds them: open streams are
//! capped ([`MAX_OPEN_STREAMS`]; each holds up to about half a MiB of compressor state outside
//! the component's memory cap), and using a stream after its `finish` traps.

use ddb_export_data_files::framing::{Flate2Gzip, Gzip as _, GzipLevel};
use wasmtime::component::Resource;

use super::HostState;
use super::bindings::compression;

/// Most gzip streams one instance may hold open at once (an encoder writes one file at a time).
pub const MAX_OPEN_STREAMS: usize = 16;

/// A gzip stream the host compresses; `None` once finished.
pub struct GzipStream(Option<Flate2Gzip>);

impl compression::Host for HostState {}

impl compression::HostGzipStream for HostState {
    fn new(&mut self, level: u8) -> wasmtime::Result<Resource<GzipStream>> {
        if self.open_gzip_streams >= MAX_OPEN_STREAMS {
            wasmtime::bail!("it opened more than {MAX_OPEN_STREAMS} gzip streams at once");
        }
        let level = GzipLevel::new(level.min(9)).map_err(|e| wasmtime::format_err!("{e}"))?;
        let stream = self.table.push(GzipStream(Some(Flate2Gzip::new(level))))?;
        self.open_gzip_streams += 1;
        Ok(stream)
    }

    fn append(&mut self, stream: Resource<GzipStream>, bytes: Vec<u8>) -> wasmtime::Result<Vec<u8>> {
        let gzip = self.table.get_mut(&stream)?.0.as_mut();
        let gzip = gzip.ok_or_else(|| wasmtime::format_err!("it appended to a gzip stream after its finish"))?;
        Ok(gzip.append(&bytes)?)
    }

    fn finish(&mut self, stream: Resource<GzipStream>) -> wasmtime::Result<Vec<u8>> {
        let gzip = self.table.get_mut(&stream)?.0.take();
        let mut gzip = gzip.ok_or_else(|| wasmtime::format_err!("it finished a gzip stream twice"))?;
        Ok(gzip.finish()?)
    }

    fn drop(&mut self, stream: Resource<GzipStream>) -> wasmtime::Result<()> {
        self.table.delete(stream)?;
        self.open_gzip_streams = self.open_gzip_streams.saturating_sub(1);
        Ok(())
    }
}
