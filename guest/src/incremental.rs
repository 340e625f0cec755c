//! An incremental export's computation: stream records compacted to one change record per
//! item, then encoded into gzip data files (`wit/incremental.wit`).

use std::collections::{BTreeMap, HashSet, btree_map};
use std::iter::Peekable;

use ddb_export_data_files::shard_files::ShardFiles;

use crate::bindings::ddb_export::core::types::ExportViewType;
use crate::bindings::exports::ddb_export::core::incremental::Error;
use crate::records::{self, Event};
use crate::wit::{EncoderOptions, ExportFormat, ExportSnapshot, Output};
use crate::{dynamodb_json, ion_text, page};

/// Lines encoded per `encode-next` call, about: one call's output stays small.
const BATCH_BYTES: usize = 1 << 20;

/// What the window did to one item, as far as the records added so far say.
#[derive(Debug, Clone)]
struct Change {
    /// The packed `Keys` of the item's first record.
    keys: Vec<u8>,
    /// The first record was not an `INSERT`: the item existed before the window.
    existed_before: bool,
    /// The first record's `OldImage` (packed), kept with `new-and-old-images` only.
    old_image: Option<Vec<u8>>,
    /// The last record's `NewImage` (packed); `None` when the last record is a `REMOVE`.
    new_image: Option<Vec<u8>>,
    /// The last record's time.
    micros: u64,
}

impl Change {
    /// Inserted and deleted inside the window: no change record.
    fn is_absent(&self) -> bool {
        !self.existed_before && self.new_image.is_none()
    }
}

/// The state behind the WIT `change-encoder` resource.
pub struct ChangeEncoder {
    files: ShardFiles,
    format: ExportFormat,
    view: ExportViewType,
    /// The window, in microseconds: `[from, to)`.
    from_micros: u64,
    to_micros: u64,
    /// By the item's key as DynamoDB JSON: the order of the output.
    changes: BTreeMap<Vec<u8>, Change>,
    /// Once encoding has begun: what is left to encode.
    queue: Option<Peekable<btree_map::IntoIter<Vec<u8>, Change>>>,
    finished: bool,
    lines: Vec<u8>,
}

impl ChangeEncoder {
    /// Checks the snapshot and options; opens no file yet.
    pub fn open(snapshot: &ExportSnapshot, options: EncoderOptions) -> Result<Self, Error> {
        let Some(spec) = snapshot.incremental else {
            return Err(Error::InvalidOptions("the snapshot is of a full export, not an incremental one".into()));
        };
        let files = crate::encoder::shard_files(snapshot, &options).map_err(Error::InvalidOptions)?;
        if spec.export_from_time_ms >= spec.export_to_time_ms {
            return Err(Error::InvalidOptions("the snapshot's window is empty".into()));
        }
        Ok(Self {
            files,
            format: snapshot.export_format,
            view: spec.export_view_type,
            from_micros: spec.export_from_time_ms.saturating_mul(1000),
            to_micros: spec.export_to_time_ms.saturating_mul(1000),
            changes: BTreeMap::new(),
            queue: None,
            finished: false,
            lines: Vec::new(),
        })
    }

    /// Compacts one page of records into the changes so far. All-or-nothing: every record is
    /// checked before any is applied.
    pub fn add_records(&mut self, page: &[u8]) -> Result<(), Error> {
        if self.queue.is_some() || self.finished {
            return Err(Error::Finished);
        }
        let records = records::read(page).map_err(|e| Error::InvalidRecords(e.0))?;
        let mut keys = Vec::with_capacity(records.len());
        let mut first_in_page = HashSet::new();
        for (index, record) in records.iter().enumerate() {
            let invalid = |why: String| Error::InvalidRecords(format!("record {index}: {why}"));
            if !(self.from_micros..self.to_micros).contains(&record.micros) {
                return Err(invalid(format!(
                    "its time {} µs is outside the window [{}, {}) µs",
                    record.micros, self.from_micros, self.to_micros
                )));
            }
            if record.event != Event::Remove && record.new_image.is_none() {
                return Err(invalid(format!("an {:?} without a NewImage", record.event)));
            }
            let mut key = Vec::new();
            dynamodb_json::write_map(&mut key, &record.keys);
            let first = !self.changes.contains_key(&key) && first_in_page.insert(key.clone());
            if first
                && self.view == ExportViewType::NewAndOldImages
                && record.event != Event::Insert
                && record.old_image.is_none()
            {
                return Err(invalid(format!(
                    "the first {:?} of {} in the window has no OldImage, which new-and-old-images needs",
                    record.event,
                    String::from_utf8_lossy(&key)
                )));
            }
            keys.push(key);
        }
        for (record, key) in records.iter().zip(keys) {
            let new_image = match record.event {
                Event::Remove => None,
                _ => record.new_image.map(<[u8]>::to_vec),
            };
            match self.changes.entry(key) {
                btree_map::Entry::Occupied(mut entry) => {
                    let change = entry.get_mut();
                    change.new_image = new_image;
                    change.micros = record.micros;
                }
                btree_map::Entry::Vacant(entry) => {
                    let existed_before = record.event != Event::Insert;
                    let keep_old = existed_before && self.view == ExportViewType::NewAndOldImages;
                    entry.insert(Change {
                        keys: record.keys_bytes.to_vec(),
                        existed_before,
                        old_image: if keep_old { record.old_image.map(<[u8]>::to_vec) } else { None },
                        new_image,
                        micros: record.micros,
                    });
                }
            }
        }
        Ok(())
    }

    /// Encodes the next batch of change records (see `encode-next` in the WIT). An empty
    /// result means everything is written and every file closed.
    pub fn encode_next(&mut self) -> Result<Vec<Output>, Error> {
        if self.finished {
            return Err(Error::Finished);
        }
        let queue = self.queue.get_or_insert_with(|| std::mem::take(&mut self.changes).into_iter().peekable());
        self.lines.clear();
        let mut count = 0u64;
        while self.lines.len() < BATCH_BYTES {
            let Some((key, change)) = queue.next() else { break };
            if change.is_absent() {
                continue;
            }
            write_change(&mut self.lines, self.format, &change).map_err(|why| {
                Error::InvalidRecords(format!("the change record of {}: {why}", String::from_utf8_lossy(&key)))
            })?;
            count += 1;
        }
        let exhausted = queue.peek().is_none();
        let mut output = Vec::new();
        if count == 0 {
            self.files.close(&mut output).map_err(|e| Error::Other(e.to_string()))?;
            self.finished = output.is_empty();
            return Ok(output);
        }
        self.files.append(&self.lines, count, &mut output).map_err(|e| Error::Other(e.to_string()))?;
        if exhausted || self.files.is_full() {
            self.files.close(&mut output).map_err(|e| Error::Other(e.to_string()))?;
        }
        Ok(output)
    }
}

/// One change record's line, its images decoded from the bytes the compactor kept.
fn write_change(out: &mut Vec<u8>, format: ExportFormat, change: &Change) -> Result<(), String> {
    fn decode(bytes: &Option<Vec<u8>>) -> Result<Option<page::Item<'_>>, String> {
        bytes.as_deref().map(page::read_map).transpose().map_err(|e| e.0)
    }
    let keys = page::read_map(&change.keys).map_err(|e| e.0)?;
    let new_image = decode(&change.new_image)?;
    let old_image = decode(&change.old_image)?;
    match format {
        ExportFormat::DynamodbJson => {
            dynamodb_json::write_change_line(out, change.micros, &keys, new_image.as_deref(), old_image.as_deref());
            Ok(())
        }
        ExportFormat::Ion => {
            ion_text::write_change_line(out, change.micros, &keys, new_image.as_deref(), old_image.as_deref())
                .map_err(|e| e.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use md5::{Digest, Md5};

    use super::*;
    use crate::page::Value;
    use crate::records::writer::{Rec, page as record_page};
    use crate::snapshot;
    use crate::wit::{ExportRequest, IncrementalExportSpecification};

    const FROM_MS: u64 = 1_700_000_000_000;
    const TO_MS: u64 = 1_700_000_100_000;

    fn snapshot(view: ExportViewType, format: ExportFormat) -> ExportSnapshot {
        let spec = IncrementalExportSpecification {
            export_from_time_ms: FROM_MS,
            export_to_time_ms: TO_MS,
            export_view_type: view,
        };
        let request = ExportRequest { incremental: Some(spec), export_format: format, ..snapshot::tests::request() };
        snapshot::create(snapshot::tests::table(), request).unwrap()
    }

    fn options(target_file_bytes: u64) -> EncoderOptions {
        EncoderOptions { shard_id: 0, target_file_bytes, compression_level: 6, first_sequence: 0 }
    }

    /// At `FROM_MS` plus `ms`.
    fn at(ms: u64) -> u64 {
        (FROM_MS + ms) * 1000
    }

    fn item<'a>(pk: &'a str, v: &'a str) -> Vec<(&'a str, Value<'a>)> {
        vec![("pk", Value::S(pk)), ("v", Value::N(v))]
    }

    fn rec<'a>(event: Event, ms: u64, pk: &'a str, new: Option<&'a str>, old: Option<&'a str>) -> Rec<'a> {
        Rec {
            event,
            micros: at(ms),
            keys: vec![("pk", Value::S(pk))],
            new: new.map(|v| item(pk, v)),
            old: old.map(|v| item(pk, v)),
        }
    }

    /// The stream of the scenario: c inserted and deleted, a inserted, b updated twice, d
    /// deleted, e updated (all in the window; `b`, `d`, `e` existed before it).
    fn scenario() -> Vec<Rec<'static>> {
        vec![
            rec(Event::Insert, 1, "c", Some("1"), None),
            rec(Event::Modify, 2, "b", Some("2"), Some("1")),
            rec(Event::Insert, 3, "a", Some("1"), None),
            rec(Event::Remove, 4, "d", None, Some("9")),
            rec(Event::Remove, 5, "c", None, Some("1")),
            rec(Event::Modify, 6, "b", Some("3"), Some("2")),
            rec(Event::Modify, 7, "e", Some("5"), Some("4")),
        ]
    }

    /// Runs the encoder over the pages, returning the data files' text, checking the events.
    fn run(snapshot: &ExportSnapshot, options: EncoderOptions, pages: &[Vec<Rec<'_>>]) -> Vec<(String, String, u64)> {
        let mut encoder = ChangeEncoder::open(snapshot, options).unwrap();
        for page in pages {
            encoder.add_records(&record_page(page)).unwrap();
        }
        let mut files = Vec::new();
        let mut open: Option<(String, Vec<u8>)> = None;
        loop {
            let events = encoder.encode_next().unwrap();
            if events.is_empty() {
                break;
            }
            for event in events {
                match event {
                    Output::FileStarted(key) => {
                        assert!(open.is_none());
                        assert!(key.starts_with(&snapshot.keys.data_prefix), "{key}");
                        open = Some((key, Vec::new()));
                    }
                    Output::Bytes(bytes) => open.as_mut().unwrap().1.extend(bytes),
                    Output::FileFinished(facts) => {
                        let (key, bytes) = open.take().unwrap();
                        assert_eq!((facts.key.as_str(), facts.size_bytes), (key.as_str(), bytes.len() as u64));
                        assert_eq!(facts.md5, STANDARD.encode(Md5::digest(&bytes)));
                        let mut text = String::new();
                        flate2::read::GzDecoder::new(&bytes[..]).read_to_string(&mut text).unwrap();
                        assert_eq!(text.lines().count() as u64, facts.item_count);
                        files.push((key, text, facts.item_count));
                    }
                }
            }
        }
        assert!(open.is_none());
        assert!(matches!(encoder.encode_next(), Err(Error::Finished)));
        files
    }

    fn line(micros: u64, pk: &str, new: Option<&str>, old: Option<&str>) -> String {
        let image = |v: &str| format!(r#"{{"pk":{{"S":"{pk}"}},"v":{{"N":"{v}"}}}}"#);
        let mut line =
            format!(r#"{{"Metadata":{{"WriteTimestampMicros":{{"N":"{micros}"}}}},"Keys":{{"pk":{{"S":"{pk}"}}}}"#);
        if let Some(v) = new {
            line += &format!(r#","NewImage":{}"#, image(v));
        }
        if let Some(v) = old {
            line += &format!(r#","OldImage":{}"#, image(v));
        }
        line + "}\n"
    }

    #[test]
    fn compacts_to_the_final_state_per_key_sorted_by_key() {
        let snap = snapshot(ExportViewType::NewAndOldImages, ExportFormat::DynamodbJson);
        // Split across pages: compaction carries over.
        let records = scenario();
        let (first, second) = records.split_at(3);
        let files = run(&snap, options(0), &[first.to_vec(), second.to_vec()]);
        assert_eq!(files.len(), 1);
        let expected = [
            line(at(3), "a", Some("1"), None),
            line(at(6), "b", Some("3"), Some("1")),
            line(at(4), "d", None, Some("9")),
            line(at(7), "e", Some("5"), Some("4")),
        ]
        .concat();
        assert_eq!(files[0].1, expected);
        assert_eq!(files[0].2, 4);

        let snap = snapshot(ExportViewType::NewImage, ExportFormat::DynamodbJson);
        let files = run(&snap, options(0), &[scenario()]);
        let expected = [
            line(at(3), "a", Some("1"), None),
            line(at(6), "b", Some("3"), None),
            line(at(4), "d", None, None),
            line(at(7), "e", Some("5"), None),
        ]
        .concat();
        assert_eq!(files[0].1, expected);
    }

    #[test]
    fn a_deleted_then_reinserted_item_is_an_update_and_an_inserted_then_updated_one_an_insert() {
        let snap = snapshot(ExportViewType::NewAndOldImages, ExportFormat::DynamodbJson);
        let records = vec![
            rec(Event::Remove, 1, "x", None, Some("1")),
            rec(Event::Insert, 2, "x", Some("2"), None),
            rec(Event::Insert, 3, "y", Some("1"), None),
            rec(Event::Modify, 4, "y", Some("2"), Some("1")),
            rec(Event::Remove, 5, "z", None, Some("1")),
            rec(Event::Insert, 6, "z", Some("2"), None),
            rec(Event::Remove, 7, "z", None, Some("2")),
        ];
        let files = run(&snap, options(0), &[records]);
        let expected = [
            line(at(2), "x", Some("2"), Some("1")),
            line(at(4), "y", Some("2"), None),
            line(at(7), "z", None, Some("1")),
        ]
        .concat();
        assert_eq!(files[0].1, expected);
    }

    #[test]
    fn writes_ion_and_rolls_files_over_and_writes_nothing_for_an_empty_window() {
        let snap = snapshot(ExportViewType::NewAndOldImages, ExportFormat::Ion);
        let files = run(&snap, options(0), &[scenario()]);
        assert!(files[0].0.ends_with(".ion.gz"));
        assert!(files[0].1.starts_with(&format!(
            "$ion_1_0 {{Metadata:{{WriteTimestampMicros:{}.}},Keys:{{pk:\"a\"}},NewImage:{{pk:\"a\",v:1.}}}}\n",
            at(3)
        )));
        for text in files[0].1.lines() {
            assert!(crate::ion_check::change_line(text, &Default::default()).is_ok(), "{text}");
        }

        // Big images: several batches (of about 1 MiB), one file or small files.
        let big = "x".repeat(100_000);
        let numbers: Vec<String> = (0..30).map(|i| (i % 25).to_string()).collect();
        let records: Vec<Rec> = numbers
            .iter()
            .enumerate()
            .map(|(i, n)| Rec {
                event: Event::Insert,
                micros: at(i as u64),
                keys: vec![("pk", Value::N(n))],
                new: Some(vec![("pk", Value::N(n)), ("big", Value::S(&big))]),
                old: None,
            })
            .collect();
        let snap = snapshot(ExportViewType::NewImage, ExportFormat::DynamodbJson);
        let files = run(&snap, options(0), std::slice::from_ref(&records));
        assert_eq!((files.len(), files[0].2), (1, 25));
        let files = run(&snap, options(100), &[records]);
        assert!(files.len() > 1, "{} files", files.len());
        assert_eq!(files.iter().map(|f| f.2).sum::<u64>(), 25);

        assert!(run(&snap, options(0), &[vec![]]).is_empty());
        let only_absent =
            vec![rec(Event::Insert, 1, "c", Some("1"), None), rec(Event::Remove, 2, "c", None, Some("1"))];
        assert!(run(&snap, options(0), &[only_absent]).is_empty());
    }

    #[test]
    fn refuses_records_outside_the_window_or_without_the_images_needed() {
        let snap = snapshot(ExportViewType::NewAndOldImages, ExportFormat::DynamodbJson);
        let mut before = rec(Event::Insert, 0, "a", Some("1"), None);
        before.micros = FROM_MS * 1000 - 1;
        let mut at_end = rec(Event::Insert, 0, "a", Some("1"), None);
        at_end.micros = TO_MS * 1000;
        let cases = [
            (vec![before], "outside the window"),
            (vec![at_end], "outside the window"),
            (vec![rec(Event::Modify, 1, "a", None, Some("1"))], "without a NewImage"),
            (vec![rec(Event::Insert, 1, "a", Some("1"), None), rec(Event::Modify, 2, "a", Some("2"), None)], ""),
            (vec![rec(Event::Remove, 1, "a", None, None)], "no OldImage"),
        ];
        for (records, expected) in cases {
            let mut encoder = ChangeEncoder::open(&snap, options(0)).unwrap();
            match encoder.add_records(&record_page(&records)) {
                Ok(()) => assert!(expected.is_empty(), "accepted a page without {expected}"),
                Err(Error::InvalidRecords(message)) => {
                    assert!(!expected.is_empty() && message.contains(expected), "{message}");
                    // All-or-nothing: nothing was kept.
                    assert!(encoder.encode_next().unwrap().is_empty());
                }
                Err(other) => panic!("{other:?}"),
            }
        }
        // The new-image view needs no old image.
        let snap = snapshot(ExportViewType::NewImage, ExportFormat::DynamodbJson);
        let mut encoder = ChangeEncoder::open(&snap, options(0)).unwrap();
        encoder.add_records(&record_page(&[rec(Event::Remove, 1, "a", None, None)])).unwrap();
        assert!(!encoder.encode_next().unwrap().is_empty());
        assert!(matches!(encoder.add_records(&record_page(&[])), Err(Error::Finished)));
    }

    #[test]
    fn refuses_a_full_export_s_snapshot() {
        let full = snapshot::create(snapshot::tests::table(), snapshot::tests::request()).unwrap();
        assert!(matches!(ChangeEncoder::open(&full, options(0)), Err(Error::InvalidOptions(_))));
    }
}
