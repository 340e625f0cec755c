//! The lines of a gzip data file as its bytes stream past, in bounded memory: what `verify`'s
//! checker and `restore`'s decoder both read a data file with.

use std::io::Write as _;

use flate2::write::MultiGzDecoder;

/// A gzip stream (members one after another, as a multipart upload may write them) cut into
/// lines. Each line is handed out with its number (1-based) once its newline has arrived.
pub struct GzLines {
    gzip: MultiGzDecoder<Vec<u8>>,
    /// Bytes of a line not yet ended.
    partial: Vec<u8>,
    lines: u64,
    /// Once the gzip stream is broken, nothing more is read.
    broken: bool,
}

/// How a stream ended ([`GzLines::finish`]).
pub struct Ended {
    /// Why the gzip stream is incomplete, when it is.
    pub cut_short: Option<String>,
    /// The number of the last line when it had no newline (it was handed out all the same).
    pub unterminated: Option<u64>,
}

impl Default for GzLines {
    fn default() -> Self {
        Self { gzip: MultiGzDecoder::new(Vec::new()), partial: Vec::new(), lines: 0, broken: false }
    }
}

impl GzLines {
    /// Lines handed out so far.
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// Decompresses `bytes` and hands `line` every line they complete. An error (not gzip, or
    /// bytes after its end) is returned once; the stream then reads nothing more.
    pub fn feed(&mut self, bytes: &[u8], line: impl FnMut(u64, &[u8])) -> Result<(), String> {
        if self.broken {
            return Ok(());
        }
        let written = self.gzip.write_all(bytes);
        self.take_lines(line);
        written.map_err(|e| {
            self.broken = true;
            format!("not a gzip stream (or bytes after its end): {e}")
        })
    }

    /// Ends the stream: hands `line` what is left, the last line even without its newline.
    pub fn finish(&mut self, mut line: impl FnMut(u64, &[u8])) -> Ended {
        let mut ended = Ended { cut_short: None, unterminated: None };
        if self.broken {
            return ended;
        }
        if let Err(e) = self.gzip.try_finish() {
            ended.cut_short = Some(format!("the gzip stream is cut short: {e}"));
        }
        self.take_lines(&mut line);
        if !self.partial.is_empty() {
            let last = std::mem::take(&mut self.partial);
            self.lines += 1;
            line(self.lines, &last);
            ended.unterminated = Some(self.lines);
        }
        self.broken = true;
        ended
    }

    /// Hands out every complete line decompressed so far.
    fn take_lines(&mut self, mut line: impl FnMut(u64, &[u8])) {
        let decoded = std::mem::take(self.gzip.get_mut());
        let mut rest: &[u8] = &decoded;
        while let Some(end) = rest.iter().position(|b| *b == b'\n') {
            self.lines += 1;
            if self.partial.is_empty() {
                line(self.lines, &rest[..end]);
            } else {
                let mut joined = std::mem::take(&mut self.partial);
                joined.extend_from_slice(&rest[..end]);
                line(self.lines, &joined);
            }
            rest = &rest[end + 1..];
        }
        self.partial.extend_from_slice(rest);
        // The decoder's buffer is reused: hand its allocation back.
        let mut decoded = decoded;
        decoded.clear();
        *self.gzip.get_mut() = decoded;
    }
}
