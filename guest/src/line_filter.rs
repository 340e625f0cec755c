//! `rewrite`: a gzip data file copied without some of its lines (see `wit/rewrite.wit`).

use std::io::Write as _;

use flate2::Compression;
use flate2::write::{GzEncoder, MultiGzDecoder};

/// The state behind the WIT `line-filter` resource.
pub struct LineFilter {
    /// Lines to leave out, ascending; `next_drop` indexes the next one not yet reached.
    drop: Vec<u64>,
    next_drop: usize,
    gzip_in: MultiGzDecoder<Vec<u8>>,
    gzip_out: GzEncoder<Vec<u8>>,
    /// The line being read: its index, and whether it is kept.
    line: u64,
    kept: u64,
    /// Whether the current line had any bytes yet (a file must end with a newline).
    mid_line: bool,
    failed: Option<String>,
}

impl LineFilter {
    pub fn new(mut drop: Vec<u64>, compression_level: u8) -> Self {
        drop.sort_unstable();
        drop.dedup();
        Self {
            drop,
            next_drop: 0,
            gzip_in: MultiGzDecoder::new(Vec::new()),
            gzip_out: GzEncoder::new(Vec::new(), Compression::new(u32::from(compression_level.min(9)))),
            line: 0,
            kept: 0,
            mid_line: false,
            failed: None,
        }
    }

    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<u8>, String> {
        if let Some(why) = &self.failed {
            return Err(why.clone());
        }
        let result = self
            .gzip_in
            .write_all(bytes)
            .map_err(|e| format!("not a gzip stream (or bytes after its end): {e}"))
            .and_then(|()| self.copy_lines());
        self.fail_on(result)?;
        Ok(std::mem::take(self.gzip_out.get_mut()))
    }

    pub fn finish(&mut self) -> Result<(Vec<u8>, u64), String> {
        if let Some(why) = &self.failed {
            return Err(why.clone());
        }
        self.gzip_in.try_finish().map_err(|e| format!("the gzip stream is cut short: {e}"))?;
        self.copy_lines()?;
        if self.mid_line {
            return Err(format!("line {} has no newline", self.line));
        }
        if let Some(missing) = self.drop.get(self.next_drop) {
            return Err(format!("line {missing} is to be dropped, but the file has {} lines", self.line));
        }
        let gzip_out = std::mem::replace(&mut self.gzip_out, GzEncoder::new(Vec::new(), Compression::none()));
        let bytes = gzip_out.finish().map_err(|e| format!("gzip: {e}"))?;
        Ok((bytes, self.kept))
    }

    fn fail_on<T>(&mut self, result: Result<T, String>) -> Result<T, String> {
        if let Err(why) = &result {
            self.failed = Some(why.clone());
        }
        result
    }

    /// Copies every decompressed byte of a kept line to the output.
    fn copy_lines(&mut self) -> Result<(), String> {
        let decoded = std::mem::take(self.gzip_in.get_mut());
        let mut rest: &[u8] = &decoded;
        while !rest.is_empty() {
            let dropped = self.drop.get(self.next_drop) == Some(&self.line);
            let (piece, ends_line) = match rest.iter().position(|b| *b == b'\n') {
                Some(end) => (&rest[..=end], true),
                None => (rest, false),
            };
            if !dropped {
                self.gzip_out.write_all(piece).map_err(|e| format!("gzip: {e}"))?;
            }
            rest = &rest[piece.len()..];
            self.mid_line = !ends_line;
            if ends_line {
                if dropped {
                    self.next_drop += 1;
                } else {
                    self.kept += 1;
                }
                self.line += 1;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_gzip::{gunzip, gzip};

    fn filter(text: &str, drop: Vec<u64>, chunk: usize) -> Result<(String, u64), String> {
        let mut filter = LineFilter::new(drop, 6);
        let mut out = Vec::new();
        for piece in gzip(text).chunks(chunk) {
            out.extend(filter.feed(piece)?);
        }
        let (tail, kept) = filter.finish()?;
        out.extend(tail);
        Ok((gunzip(&out), kept))
    }

    #[test]
    fn drops_exactly_the_lines_named_in_any_chunking() {
        let text = "l0\nl1 is longer\nl2\nl3\n";
        for chunk in [1, 3, 1000] {
            assert_eq!(filter(text, vec![1, 3], chunk), Ok(("l0\nl2\n".into(), 2)), "chunk {chunk}");
            assert_eq!(filter(text, vec![], chunk), Ok((text.into(), 4)));
            assert_eq!(filter(text, vec![0, 1, 2, 3], chunk), Ok((String::new(), 0)));
        }
    }

    #[test]
    fn refuses_what_does_not_add_up() {
        assert!(filter("a\nb\n", vec![5], 10).unwrap_err().contains("line 5 is to be dropped"));
        assert!(filter("a\nb", vec![], 10).unwrap_err().contains("no newline"));
        let mut f = LineFilter::new(vec![], 6);
        assert!(f.feed(b"not gzip at all").is_err());
        assert!(f.finish().is_err(), "a failed filter stays failed");
    }
}
