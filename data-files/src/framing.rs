//! One data file's bytes as they leave an encoder: gzip-compressed at a level, or stored as
//! the encoder made them (for formats that compress themselves, such as Parquet), with the MD5
//! and size of exactly the bytes put out, which the manifests record.
//!
//! The file speaks in [`Event`]s. Each encoder turns them into its own WIT `output`: the
//! functions here push into any `Vec<E>` with `E: From<Event>`.

use std::io::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use flate2::Compression;
use flate2::write::GzEncoder;
use md5::{Digest, Md5};
use thiserror::Error;

/// One step of an encoder's output, in the order a host applies them: per data file,
/// `Started`, `Bytes`*, `Finished`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A new data file begins at this key.
    Started(String),
    /// The next bytes of the open data file.
    Bytes(Vec<u8>),
    /// The open data file is complete.
    Finished(FileFacts),
}

/// The facts of one finished data file, as a manifest lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileFacts {
    pub key: String,
    pub item_count: u64,
    /// base64 of the MD5 of the file's bytes.
    pub md5: String,
    pub size_bytes: u64,
}

/// A gzip compression level, 0 (stored) to 9 (smallest).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GzipLevel(u8);

/// A gzip level above 9. The message names `--compression-level`, where levels come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("compression-level must be 0 to 9, not {0}")]
pub struct InvalidLevel(pub u8);

impl GzipLevel {
    pub fn new(level: u8) -> Result<Self, InvalidLevel> {
        if level <= 9 { Ok(Self(level)) } else { Err(InvalidLevel(level)) }
    }

    pub fn get(self) -> u8 {
        self.0
    }
}

/// How a data file's bytes are framed.
#[derive(Clone, Copy)]
pub enum Framing {
    /// One gzip member over the whole file, sync-flushed after every append, made by a
    /// [`Gzip`] from the given maker (the default component asks its host, natively; the
    /// plugin SDK and native code use [`Flate2Gzip`]).
    Gzip(GzipLevel, NewGzip),
    /// The bytes exactly as appended.
    Raw,
}

impl Framing {
    /// Gzip at `level`, compressed by flate2 (zlib-rs) in this process.
    pub fn gzip(level: GzipLevel) -> Self {
        Framing::Gzip(level, Flate2Gzip::boxed)
    }
}

/// One gzip member being written: every append is compressed and sync-flushed, so its bytes
/// come out at once. Implementations must give zlib-rs's bytes for the level (as
/// [`Flate2Gzip`] does): a data file is the same wherever it was compressed.
pub trait Gzip {
    /// Compresses `bytes` with a sync flush; returns the compressed bytes since the last call.
    fn append(&mut self, bytes: &[u8]) -> Result<Vec<u8>, FramingError>;
    /// Ends the member; returns its last bytes.
    fn finish(&mut self) -> Result<Vec<u8>, FramingError>;
}

/// Makes the compressor of one file.
pub type NewGzip = fn(GzipLevel) -> Box<dyn Gzip>;

/// A gzip member compressed here, by flate2 with zlib-rs.
pub struct Flate2Gzip(GzEncoder<Vec<u8>>);

impl Flate2Gzip {
    pub fn new(level: GzipLevel) -> Self {
        Self(GzEncoder::new(Vec::new(), Compression::new(u32::from(level.get()))))
    }

    /// [`Self::new`], boxed: a [`NewGzip`].
    pub fn boxed(level: GzipLevel) -> Box<dyn Gzip> {
        Box::new(Self::new(level))
    }
}

impl Gzip for Flate2Gzip {
    fn append(&mut self, bytes: &[u8]) -> Result<Vec<u8>, FramingError> {
        self.0.write_all(bytes)?;
        self.0.flush()?;
        Ok(std::mem::take(self.0.get_mut()))
    }

    fn finish(&mut self) -> Result<Vec<u8>, FramingError> {
        self.0.try_finish()?;
        Ok(std::mem::take(self.0.get_mut()))
    }
}

/// The compressor failed (flate2 writes to memory, so in practice it does not; a host's may).
#[derive(Debug, Error)]
#[error("gzip: {0}")]
pub struct FramingError(#[from] std::io::Error);

/// The data file being written: its framing, and the MD5 and size of the bytes it has put out
/// so far.
pub struct OpenFile {
    key: String,
    /// The compressor; `None` for raw framing.
    gzip: Option<Box<dyn Gzip>>,
    md5: Md5,
    size_bytes: u64,
    item_count: u64,
}

impl OpenFile {
    /// Starts the file `key`, announced in `out`.
    pub fn start<E: From<Event>>(key: String, framing: Framing, out: &mut Vec<E>) -> Self {
        out.push(Event::Started(key.clone()).into());
        let gzip = match framing {
            Framing::Gzip(level, new) => Some(new(level)),
            Framing::Raw => None,
        };
        Self { key, gzip, md5: Md5::new(), size_bytes: 0, item_count: 0 }
    }

    /// Appends `bytes`, which hold `items` more items. Gzip gets a sync flush: the bytes leave
    /// the encoder now (in `out`), and the file's size is exact for a roll-over check.
    pub fn append<E: From<Event>>(&mut self, bytes: &[u8], items: u64, out: &mut Vec<E>) -> Result<(), FramingError> {
        self.item_count += items;
        let bytes = match &mut self.gzip {
            Some(gzip) => gzip.append(bytes)?,
            None => bytes.to_vec(),
        };
        self.put_out(bytes, out);
        Ok(())
    }

    /// The key the file was started at.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The bytes put out so far.
    pub fn size_bytes(&self) -> u64 {
        self.size_bytes
    }

    /// The items appended so far.
    pub fn item_count(&self) -> u64 {
        self.item_count
    }

    /// Ends the framing and reports the file's facts.
    pub fn close<E: From<Event>>(mut self, out: &mut Vec<E>) -> Result<(), FramingError> {
        if let Some(gzip) = &mut self.gzip {
            let last = gzip.finish()?;
            self.put_out(last, out);
        }
        out.push(
            Event::Finished(FileFacts {
                key: self.key,
                item_count: self.item_count,
                md5: STANDARD.encode(self.md5.finalize()),
                size_bytes: self.size_bytes,
            })
            .into(),
        );
        Ok(())
    }

    /// Counts `bytes` into the file's facts and puts them out.
    fn put_out<E: From<Event>>(&mut self, bytes: Vec<u8>, out: &mut Vec<E>) {
        if !bytes.is_empty() {
            self.md5.update(&bytes);
            self.size_bytes += bytes.len() as u64;
            out.push(Event::Bytes(bytes).into());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use super::*;

    /// The bytes of the one file in `events`, checking the order and the facts.
    fn one_file(events: Vec<Event>) -> (Vec<u8>, FileFacts) {
        let mut events = events.into_iter();
        assert_eq!(events.next(), Some(Event::Started("k".into())));
        let mut bytes = Vec::new();
        for event in events {
            match event {
                Event::Bytes(b) => bytes.extend(b),
                Event::Finished(facts) => {
                    assert_eq!(facts.size_bytes, bytes.len() as u64);
                    assert_eq!(facts.md5, STANDARD.encode(Md5::digest(&bytes)));
                    return (bytes, facts);
                }
                Event::Started(_) => panic!("a second start"),
            }
        }
        panic!("no finish")
    }

    #[test]
    fn gzip_frames_every_append_and_counts_the_compressed_bytes() {
        let mut events = Vec::new();
        let mut file = OpenFile::start("k".into(), Framing::gzip(GzipLevel::new(6).unwrap()), &mut events);
        file.append(b"one\n", 1, &mut events).unwrap();
        let after_first = file.size_bytes();
        assert!(after_first > 0, "a sync flush puts the first page out at once");
        file.append(b"two\nthree\n", 2, &mut events).unwrap();
        assert_eq!(file.item_count(), 3);
        file.close(&mut events).unwrap();
        let (bytes, facts) = one_file(events);
        assert_eq!(facts.item_count, 3);
        let mut text = String::new();
        flate2::read::GzDecoder::new(&bytes[..]).read_to_string(&mut text).unwrap();
        assert_eq!(text, "one\ntwo\nthree\n");
    }

    #[test]
    fn raw_framing_puts_out_exactly_the_bytes_appended() {
        let mut events = Vec::new();
        let mut file = OpenFile::start("k".into(), Framing::Raw, &mut events);
        file.append(b"PAR1", 0, &mut events).unwrap();
        file.append(b"", 0, &mut events).unwrap();
        file.append(b"rows", 2, &mut events).unwrap();
        file.close(&mut events).unwrap();
        assert_eq!(events.iter().filter(|e| matches!(e, Event::Bytes(_))).count(), 2, "no empty bytes event");
        let (bytes, facts) = one_file(events);
        assert_eq!(bytes, b"PAR1rows");
        assert_eq!(facts.item_count, 2);
    }

    #[test]
    fn gzip_levels_stop_at_9() {
        assert_eq!(GzipLevel::new(9).map(GzipLevel::get), Ok(9));
        let err = GzipLevel::new(10).unwrap_err();
        assert_eq!(err.to_string(), "compression-level must be 0 to 9, not 10");
    }
}
