//! A native harness for plugins' unit tests: it drives [`ShardWriter`], the very code behind
//! the WIT resource, without a WebAssembly runtime, and checks what comes out against the
//! contract the host enforces.
//!
//! ```
//! use ddb_export_plugin_sdk::testing::{self, page};
//! use ddb_export_plugin_sdk::{Args, Encoder, Error, Item, Value};
//!
//! /// One line per item: its attribute names.
//! struct Names;
//!
//! impl Encoder for Names {
//!     const NAME: &'static str = "names";
//!     const VERSION: &'static str = "0.1.0";
//!     const FILE_EXTENSION: &'static str = "txt.gz";
//!     const OUTPUT_FORMAT: &'static str = "NAMES";
//!
//!     fn open(_: &Args) -> Result<Self, Error> {
//!         Ok(Names)
//!     }
//!
//!     fn write_items(&mut self, items: &[Item<'_>], out: &mut Vec<u8>) -> Result<(), Error> {
//!         for item in items {
//!             let names: Vec<&str> = item.iter().map(|(name, _)| *name).collect();
//!             out.extend_from_slice(format!("{}\n", names.join(" ")).as_bytes());
//!         }
//!         Ok(())
//!     }
//! }
//!
//! let pages = [page(&[vec![("pk", Value::S("a")), ("n", Value::N("1"))]])];
//! let files = testing::run::<Names>(&[], &testing::options(), &pages).unwrap();
//! assert_eq!(files.len(), 1);
//! assert_eq!(files[0].gunzip().unwrap(), b"n pk\n");
//! ```

use std::io::Read as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ddb_export_data_files::framing::Event;
use md5::{Digest, Md5};

/// Packs items into a page, as the host does (`wit/page-format.md`).
pub use ddb_export_data_files::page::writer::page;

use crate::{Encoder, Error, Options, ShardWriter};

/// Options for tests: shard 0 of export `01700000000000-0123abcd`, data under
/// `AWSDynamoDB/01700000000000-0123abcd/data/`, one file per shard, gzip level 6, first
/// sequence 0. Change fields with struct update syntax.
pub fn options() -> Options {
    Options {
        export_id: "01700000000000-0123abcd".into(),
        data_prefix: "AWSDynamoDB/01700000000000-0123abcd/data/".into(),
        shard_id: 0,
        target_file_bytes: 0,
        compression_level: 6,
        first_sequence: 0,
    }
}

/// One data file as the host would store it, with the facts the plugin reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    pub key: String,
    /// The file's bytes: gzip when the encoder's `GZIP`.
    pub bytes: Vec<u8>,
    pub item_count: u64,
    /// base64 of the MD5 of `bytes`.
    pub md5: String,
    pub size_bytes: u64,
}

impl File {
    /// The bytes inside the gzip framing.
    pub fn gunzip(&self) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&self.bytes[..]).read_to_end(&mut out)?;
        Ok(out)
    }
}

/// Encodes `pages` with the encoder `E` opened with `args` and `options`, then finishes, and
/// returns the data files; or the first error. It runs everything twice and requires the same
/// bytes both times (an encoder must be deterministic).
///
/// # Panics
///
/// When the output breaks the contract the host enforces: the event order, a key outside the
/// data prefix or without the extension, an MD5, size or item count that does not match.
pub fn run<E: Encoder>(args: &[(&str, &str)], options: &Options, pages: &[Vec<u8>]) -> Result<Vec<File>, Error> {
    let first = events::<E>(args, options, pages)?;
    let again = events::<E>(args, options, pages)?;
    assert!(first == again, "{}: the same arguments and pages gave different bytes", E::NAME);
    let files = files(first);
    for file in &files {
        assert!(
            file.key.starts_with(&options.data_prefix) && file.key.ends_with(&format!(".{}", E::FILE_EXTENSION)),
            "{} is not under the data prefix with the extension {}",
            file.key,
            E::FILE_EXTENSION
        );
    }
    let counted: u64 = files.iter().map(|f| f.item_count).sum();
    let given = pages.iter().map(|p| ddb_export_data_files::page::read(p).map_or(0, |items| items.len() as u64));
    assert_eq!(counted, given.sum::<u64>(), "the files' item counts do not add up to the items given");
    Ok(files)
}

/// Every event of one run.
fn events<E: Encoder>(args: &[(&str, &str)], options: &Options, pages: &[Vec<u8>]) -> Result<Vec<Event>, Error> {
    let mut writer = ShardWriter::<E>::open(options, args.iter().copied())?;
    let mut events = Vec::new();
    for page in pages {
        events.extend(writer.encode_page(page)?);
    }
    events.extend(writer.finish()?);
    Ok(events)
}

/// The files that `events` describe.
///
/// # Panics
///
/// When the events break their order (per file: started, bytes, finished; one file open at
/// a time), or a file's MD5 or size does not match its bytes.
pub fn files(events: impl IntoIterator<Item = Event>) -> Vec<File> {
    let mut files = Vec::new();
    let mut open: Option<(String, Vec<u8>)> = None;
    for event in events {
        match event {
            Event::Started(key) => {
                assert!(open.is_none(), "{key} started while another file was open");
                open = Some((key, Vec::new()));
            }
            Event::Bytes(bytes) => match &mut open {
                Some((_, file)) => file.extend(bytes),
                None => panic!("bytes outside a file"),
            },
            Event::Finished(facts) => {
                let Some((key, bytes)) = open.take() else { panic!("{} finished but never started", facts.key) };
                assert_eq!(facts.key, key, "a file finished under another key");
                assert_eq!(facts.size_bytes, bytes.len() as u64, "{key}: size-bytes");
                assert_eq!(facts.md5, STANDARD.encode(Md5::digest(&bytes)), "{key}: md5");
                files.push(File {
                    key,
                    bytes,
                    item_count: facts.item_count,
                    md5: facts.md5,
                    size_bytes: facts.size_bytes,
                });
            }
        }
    }
    assert!(open.is_none(), "a file was never finished");
    files
}
