//! Step 3a: turning a shard's pages of items into gzip data files.

use std::io::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use flate2::Compression;
use flate2::write::GzEncoder;
use md5::{Digest, Md5};

use crate::bindings::exports::ddb_export::core::write::Error;
use crate::dynamodb_json;
use crate::ids;
use crate::ion_text;
use crate::page;
use crate::wit::{DataFile, EncoderOptions, ExportFormat, ExportSnapshot, Output};

/// The data file being written: its gzip stream, and the MD5 and size of the bytes it has put
/// out so far. Shared by the full export's encoder and the incremental change encoder.
pub(crate) struct OpenFile {
    key: String,
    gzip: GzEncoder<Vec<u8>>,
    md5: Md5,
    size_bytes: u64,
    item_count: u64,
}

impl OpenFile {
    /// Starts the file `key` (announced in `output`) at a gzip level of 0 to 9.
    pub(crate) fn start(key: String, compression_level: u8, output: &mut Vec<Output>) -> Self {
        output.push(Output::FileStarted(key.clone()));
        let level = Compression::new(u32::from(compression_level));
        Self { key, gzip: GzEncoder::new(Vec::new(), level), md5: Md5::new(), size_bytes: 0, item_count: 0 }
    }

    /// Compresses `lines`, which hold `items` lines, with a sync flush: their bytes leave the
    /// component now (in `output`), and the file's size is exact for the roll-over check.
    /// Errors are gzip's, said as such.
    pub(crate) fn append(&mut self, lines: &[u8], items: u64, output: &mut Vec<Output>) -> Result<(), String> {
        self.gzip.write_all(lines).map_err(gzip_error)?;
        self.gzip.flush().map_err(gzip_error)?;
        self.item_count += items;
        self.put_out(output);
        Ok(())
    }

    /// The compressed bytes put out so far.
    pub(crate) fn size_bytes(&self) -> u64 {
        self.size_bytes
    }

    /// Finishes the gzip stream and reports the file's facts.
    pub(crate) fn close(mut self, output: &mut Vec<Output>) -> Result<(), String> {
        self.gzip.try_finish().map_err(gzip_error)?;
        self.put_out(output);
        output.push(Output::FileFinished(DataFile {
            key: self.key,
            item_count: self.item_count,
            md5: STANDARD.encode(self.md5.finalize()),
            size_bytes: self.size_bytes,
        }));
        Ok(())
    }

    /// Moves the bytes gzip has written so far to `output`, counting them.
    fn put_out(&mut self, output: &mut Vec<Output>) {
        let bytes = std::mem::take(self.gzip.get_mut());
        if !bytes.is_empty() {
            self.md5.update(&bytes);
            self.size_bytes += bytes.len() as u64;
            output.push(Output::Bytes(bytes));
        }
    }
}

fn gzip_error(e: std::io::Error) -> String {
    format!("gzip: {e}")
}

/// The encoder of one shard: the state behind the WIT `encoder` resource.
pub struct ShardEncoder {
    export_id: String,
    data_prefix: String,
    extension: String,
    /// Which line writer: `DYNAMODB_JSON` or `ION`; everything else is the same.
    format: ExportFormat,
    options: EncoderOptions,
    next_sequence: u32,
    open: Option<OpenFile>,
    finished: bool,
    /// Scratch buffer for one page of lines, reused between pages.
    lines: Vec<u8>,
}

impl ShardEncoder {
    /// Checks the options; opens no file yet.
    pub fn open(snapshot: &ExportSnapshot, options: EncoderOptions) -> Result<Self, Error> {
        if snapshot.incremental.is_some() {
            return Err(Error::InvalidOptions(
                "the snapshot is of an incremental export, whose data files incremental.change-encoder writes".into(),
            ));
        }
        if options.compression_level > 9 {
            return Err(Error::InvalidOptions(format!(
                "compression-level must be 0 to 9, not {}",
                options.compression_level
            )));
        }
        Ok(Self {
            export_id: snapshot.export_id.clone(),
            data_prefix: snapshot.keys.data_prefix.clone(),
            extension: snapshot.data_file_extension.clone(),
            format: snapshot.export_format,
            options,
            next_sequence: options.first_sequence,
            open: None,
            finished: false,
            lines: Vec::new(),
        })
    }

    /// Encodes one packed page (`wit/page-format.md`). All-or-nothing: the whole page is read
    /// and encoded before any output.
    pub fn encode_page(&mut self, page: &[u8]) -> Result<Vec<Output>, Error> {
        self.ensure_not_finished()?;
        let items = page::read(page).map_err(|e| Error::InvalidPage(e.0))?;
        self.lines.clear();
        for (index, item) in items.iter().enumerate() {
            match self.format {
                ExportFormat::DynamodbJson => dynamodb_json::write_line(&mut self.lines, item),
                ExportFormat::Ion => ion_text::write_line(&mut self.lines, item)
                    .map_err(|e| Error::InvalidPage(format!("item {index}: {}", e.0)))?,
            }
        }
        let mut output = Vec::new();
        if items.is_empty() {
            return Ok(output);
        }
        let mut file = match self.open.take() {
            Some(file) => file,
            None => OpenFile::start(self.next_key(), self.options.compression_level, &mut output),
        };
        // A sync flush per page: the page's bytes leave the component now (the host uploads
        // them while the next page is read), and the file's size is exact for the roll-over
        // check. It costs a few bytes per page of up to 1 MB.
        file.append(&self.lines, items.len() as u64, &mut output).map_err(Error::Other)?;
        let target = self.options.target_file_bytes;
        if target > 0 && file.size_bytes() >= target {
            file.close(&mut output).map_err(Error::Other)?;
        } else {
            self.open = Some(file);
        }
        Ok(output)
    }

    /// Closes the open file, if any; no calls are accepted afterwards.
    pub fn finish(&mut self) -> Result<Vec<Output>, Error> {
        self.ensure_not_finished()?;
        self.finished = true;
        let mut output = Vec::new();
        if let Some(file) = self.open.take() {
            file.close(&mut output).map_err(Error::Other)?;
        }
        Ok(output)
    }

    fn ensure_not_finished(&self) -> Result<(), Error> {
        if self.finished { Err(Error::Finished) } else { Ok(()) }
    }

    fn next_key(&mut self) -> String {
        let name = ids::data_file_name(&self.export_id, self.options.shard_id, self.next_sequence);
        self.next_sequence += 1;
        format!("{}{name}.{}", self.data_prefix, self.extension)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use super::*;
    use crate::page::{Value, writer};
    use crate::snapshot;
    use crate::wit::ExportRequest;

    fn snapshot() -> ExportSnapshot {
        let request = ExportRequest { s3_prefix: None, ..snapshot::tests::request() };
        snapshot::create(snapshot::tests::table(), request).unwrap()
    }

    fn pk(i: u32) -> String {
        format!("item-{i:08}-{}", "x".repeat(200))
    }

    /// A packed page of the items `range`.
    fn page(range: std::ops::Range<u32>) -> Vec<u8> {
        let keys: Vec<String> = range.map(pk).collect();
        let items: Vec<Vec<(&str, Value)>> = keys.iter().map(|k| vec![("pk", Value::S(k))]).collect();
        writer::page(&items)
    }

    /// Files as (key, bytes, facts), checking the event sequence on the way.
    fn collect(events: Vec<Output>) -> Vec<(String, Vec<u8>, DataFile)> {
        let mut files = Vec::new();
        let mut open: Option<(String, Vec<u8>)> = None;
        for event in events {
            match event {
                Output::FileStarted(key) => {
                    assert!(open.is_none(), "a file started while another was open");
                    open = Some((key, Vec::new()));
                }
                Output::Bytes(bytes) => open.as_mut().expect("bytes outside a file").1.extend(bytes),
                Output::FileFinished(facts) => {
                    let (key, bytes) = open.take().expect("finished without a start");
                    assert_eq!(facts.key, key);
                    files.push((key, bytes, facts));
                }
            }
        }
        assert!(open.is_none());
        files
    }

    fn gunzip(bytes: &[u8]) -> String {
        let mut text = String::new();
        flate2::read::GzDecoder::new(bytes).read_to_string(&mut text).unwrap();
        text
    }

    #[test]
    fn a_shard_without_items_writes_no_file() {
        let mut enc = ShardEncoder::open(
            &snapshot(),
            EncoderOptions { shard_id: 0, target_file_bytes: 0, compression_level: 6, first_sequence: 0 },
        )
        .unwrap();
        assert!(enc.encode_page(&page(0..0)).unwrap().is_empty());
        assert!(enc.finish().unwrap().is_empty());
        assert!(matches!(enc.encode_page(&page(0..0)), Err(Error::Finished)));
    }

    #[test]
    fn files_roll_over_and_keep_every_item_once_in_order() {
        let snap = snapshot();
        let mut enc = ShardEncoder::open(
            &snap,
            EncoderOptions { shard_id: 3, target_file_bytes: 2_000, compression_level: 1, first_sequence: 0 },
        )
        .unwrap();
        let mut events = Vec::new();
        for n in 0..20 {
            events.extend(enc.encode_page(&page(n * 50..n * 50 + 50)).unwrap());
        }
        events.extend(enc.finish().unwrap());
        let files = collect(events);
        assert!(files.len() > 1, "expected roll-over, got {} file(s)", files.len());
        let mut lines = Vec::new();
        for (key, bytes, facts) in &files {
            assert!(key.starts_with(&snap.keys.data_prefix) && key.ends_with(".json.gz"));
            assert_eq!(facts.size_bytes, bytes.len() as u64);
            assert_eq!(facts.md5, STANDARD.encode(Md5::digest(bytes)));
            let text = gunzip(bytes);
            assert_eq!(text.lines().count() as u64, facts.item_count);
            lines.extend(text.lines().map(str::to_string));
        }
        let expected: Vec<String> = (0..1000)
            .map(|i| {
                let mut line = Vec::new();
                let key = pk(i);
                dynamodb_json::write_line(&mut line, &[("pk", Value::S(&key))]);
                String::from_utf8(line).unwrap().trim_end().to_string()
            })
            .collect();
        assert_eq!(lines, expected);
    }

    #[test]
    fn a_bad_item_fails_the_whole_page_and_names_it() {
        let mut enc = ShardEncoder::open(
            &snapshot(),
            EncoderOptions { shard_id: 0, target_file_bytes: 0, compression_level: 6, first_sequence: 0 },
        )
        .unwrap();
        let key = pk(0);
        let bad = writer::page(&[vec![("pk", Value::S(&key))], vec![("a", Value::Null), ("a", Value::Null)]]);
        match enc.encode_page(&bad) {
            Err(Error::InvalidPage(message)) => assert!(message.contains("item 1"), "{message}"),
            other => panic!("expected invalid-page, got {other:?}"),
        }
        // Nothing of the failed page was emitted: the next page opens the first file.
        let events = enc.encode_page(&page(0..1)).unwrap();
        assert!(matches!(events.first(), Some(Output::FileStarted(_))));
    }

    #[test]
    fn the_snapshot_s_format_picks_the_line_writer_and_the_extension() {
        let snap = snapshot::create(
            snapshot::tests::table(),
            ExportRequest { export_format: ExportFormat::Ion, ..snapshot::tests::request() },
        )
        .unwrap();
        let mut enc = ShardEncoder::open(
            &snap,
            EncoderOptions { shard_id: 1, target_file_bytes: 0, compression_level: 6, first_sequence: 0 },
        )
        .unwrap();
        let item = vec![("pk", Value::S("a")), ("n", Value::N("600"))];
        let mut events = enc.encode_page(&writer::page(&[item.clone(), item])).unwrap();
        events.extend(enc.finish().unwrap());
        let files = collect(events);
        assert_eq!(files.len(), 1);
        let (key, bytes, facts) = &files[0];
        assert!(key.starts_with(&snap.keys.data_prefix) && key.ends_with(".ion.gz"), "{key}");
        assert_eq!(facts.item_count, 2);
        assert_eq!(gunzip(bytes), "$ion_1_0 {Item:{n:600.,pk:\"a\"}}\n".repeat(2));
    }

    #[test]
    fn an_ion_encoder_refuses_a_page_with_a_number_it_cannot_write() {
        let snap = snapshot::create(
            snapshot::tests::table(),
            ExportRequest { export_format: ExportFormat::Ion, ..snapshot::tests::request() },
        )
        .unwrap();
        let mut enc = ShardEncoder::open(
            &snap,
            EncoderOptions { shard_id: 0, target_file_bytes: 0, compression_level: 6, first_sequence: 0 },
        )
        .unwrap();
        let bad = writer::page(&[vec![("n", Value::N("1"))], vec![("n", Value::L(vec![Value::N("1e")]))]]);
        match enc.encode_page(&bad) {
            Err(Error::InvalidPage(message)) => {
                assert!(message.contains("item 1") && message.contains("\"1e\""), "{message}")
            }
            other => panic!("expected invalid-page, got {other:?}"),
        }
        assert!(enc.finish().unwrap().is_empty(), "nothing of the failed page was written");
    }

    #[test]
    fn refuses_a_compression_level_above_9() {
        let options = EncoderOptions { shard_id: 0, target_file_bytes: 0, compression_level: 10, first_sequence: 0 };
        assert!(matches!(ShardEncoder::open(&snapshot(), options), Err(Error::InvalidOptions(_))));
    }
}
