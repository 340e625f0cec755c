//! Step 3a: turning a shard's pages of items into gzip data files.

use ddb_export_data_files::framing::{Event, Framing, GzipLevel};
use ddb_export_data_files::json_page;
use ddb_export_data_files::naming::DataFileKeys;
use ddb_export_data_files::shard_files::ShardFiles;

use crate::bindings::exports::ddb_export::core::write::Error;
use crate::dynamodb_json;
use crate::ion_text;
use crate::page;
use crate::wit::{DataFile, EncoderOptions, ExportFormat, ExportSnapshot, Output};

impl From<Event> for Output {
    fn from(event: Event) -> Self {
        match event {
            Event::Started(key) => Output::FileStarted(key),
            Event::Bytes(bytes) => Output::Bytes(bytes),
            Event::Finished(facts) => Output::FileFinished(DataFile {
                key: facts.key,
                item_count: facts.item_count,
                md5: facts.md5,
                size_bytes: facts.size_bytes,
            }),
        }
    }
}

/// A shard's gzip data files, from the snapshot and the encoder's options (the full export's
/// encoder and the incremental change encoder name and roll over files alike). Refuses a gzip
/// level above 9.
pub(crate) fn shard_files(snapshot: &ExportSnapshot, options: &EncoderOptions) -> Result<ShardFiles, String> {
    let level = GzipLevel::new(options.compression_level).map_err(|e| e.to_string())?;
    let keys = DataFileKeys::new(
        &snapshot.export_id,
        &snapshot.keys.data_prefix,
        options.shard_id,
        &snapshot.data_file_extension,
        options.first_sequence,
    );
    Ok(ShardFiles::new(keys, Framing::Gzip(level, crate::compress::gzip()), options.target_file_bytes))
}

/// The encoder of one shard: the state behind the WIT `encoder` resource.
pub struct ShardEncoder {
    files: ShardFiles,
    /// Which line writer: `DYNAMODB_JSON` or `ION`; everything else is the same.
    format: ExportFormat,
    finished: bool,
    /// Scratch buffer for one page of lines, reused between pages.
    lines: Vec<u8>,
    /// Where a JSON page's decoded strings live while it is encoded, reused between pages.
    arena: json_page::Arena,
}

impl ShardEncoder {
    /// Checks the options; opens no file yet.
    pub fn open(snapshot: &ExportSnapshot, options: EncoderOptions) -> Result<Self, Error> {
        if snapshot.incremental.is_some() {
            return Err(Error::InvalidOptions(
                "the snapshot is of an incremental export, whose data files incremental.change-encoder writes".into(),
            ));
        }
        if let Some(custom) = &snapshot.custom_format {
            return Err(Error::InvalidOptions(format!(
                "the snapshot is of a plugin's format ({}), whose data files the plugin writes",
                custom.output_format
            )));
        }
        Ok(Self {
            files: shard_files(snapshot, &options).map_err(Error::InvalidOptions)?,
            format: snapshot.export_format,
            finished: false,
            lines: Vec::new(),
            arena: json_page::Arena::new(),
        })
    }

    /// Encodes one packed page (`wit/page-format.md`). All-or-nothing: the whole page is read
    /// and encoded before any output.
    pub fn encode_page(&mut self, page: &[u8]) -> Result<Vec<Output>, Error> {
        self.ensure_not_finished()?;
        let items = page::read(page).map_err(|e| Error::InvalidPage(e.0))?;
        self.encode_items(&items)
    }

    /// Encodes one page of items in DynamoDB JSON, as a Scan response's `Items` holds them:
    /// the same output as [`Self::encode_page`] for the same items.
    pub fn encode_json_page(&mut self, items: &[u8]) -> Result<Vec<Output>, Error> {
        self.ensure_not_finished()?;
        let mut arena = std::mem::take(&mut self.arena);
        arena.reset();
        let encoded = match json_page::read(items, &arena) {
            Ok(items) => self.encode_items(&items),
            Err(e) => Err(Error::InvalidPage(e.0)),
        };
        self.arena = arena;
        encoded
    }

    fn encode_items(&mut self, items: &[page::Item<'_>]) -> Result<Vec<Output>, Error> {
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
        // A sync flush per page: the page's bytes leave the component now (the host uploads
        // them while the next page is read), and the file's size is exact for the roll-over
        // check. It costs a few bytes per page of up to 1 MB.
        self.files.append(&self.lines, items.len() as u64, &mut output).map_err(|e| Error::Other(e.to_string()))?;
        if self.files.is_full() {
            self.files.close(&mut output).map_err(|e| Error::Other(e.to_string()))?;
        }
        Ok(output)
    }

    /// Closes the open file, if any; no calls are accepted afterwards.
    pub fn finish(&mut self) -> Result<Vec<Output>, Error> {
        self.ensure_not_finished()?;
        self.finished = true;
        let mut output = Vec::new();
        self.files.close(&mut output).map_err(|e| Error::Other(e.to_string()))?;
        Ok(output)
    }

    fn ensure_not_finished(&self) -> Result<(), Error> {
        if self.finished { Err(Error::Finished) } else { Ok(()) }
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use md5::{Digest, Md5};

    use super::*;
    use crate::page::{Value, writer};
    use crate::snapshot;
    use crate::test_gzip::gunzip;
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

    /// An ION export's snapshot, and an encoder of shard `shard_id` for it.
    fn ion_encoder(shard_id: u32) -> (ExportSnapshot, ShardEncoder) {
        let request = ExportRequest { export_format: ExportFormat::Ion, ..snapshot::tests::request() };
        let snap = snapshot::create(snapshot::tests::table(), request).unwrap();
        let options = EncoderOptions { shard_id, target_file_bytes: 0, compression_level: 6, first_sequence: 0 };
        let enc = ShardEncoder::open(&snap, options).unwrap();
        (snap, enc)
    }

    #[test]
    fn the_snapshot_s_format_picks_the_line_writer_and_the_extension() {
        let (snap, mut enc) = ion_encoder(1);
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
        let (_, mut enc) = ion_encoder(0);
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
