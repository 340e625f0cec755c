//! gzip for the unit tests: data files in, text out.

use std::io::{Read as _, Write as _};

use flate2::Compression;
use flate2::write::GzEncoder;

/// `text` as one gzip member, at the default level.
pub(crate) fn gzip(text: &str) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(text.as_bytes()).unwrap();
    encoder.finish().unwrap()
}

/// The text of a gzip stream.
pub(crate) fn gunzip(bytes: &[u8]) -> String {
    let mut text = String::new();
    flate2::read::GzDecoder::new(bytes).read_to_string(&mut text).unwrap();
    text
}
