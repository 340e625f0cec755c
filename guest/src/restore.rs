//! `restore`: a data file's lines decoded into the batches of writes that put its items back
//! (`wit/restore.wit`), packed (`page-format.md`'s `map`) for the host to hand to DynamoDB.
//! Each line is read as `verify` reads it ([`DataLine`], borrowed, into an arena reset per
//! line) and its write taken with its key hash ([`DataLine::write`]): an item's key attributes
//! are checked, the rest of DynamoDB's rules are `verify`'s, which the host runs first.

use std::collections::HashSet;

use ddb_export_data_files::json_page::Arena;
use ddb_export_data_files::page::writer;

use crate::data_line::{DataLine, Write};
use crate::gz_lines::GzLines;
use crate::item_check::KeyHash;
use crate::wit::{DecodeError, ExportFormat, KeyAttribute, WriteBatch, WriteRequest};

/// Most requests `BatchWriteItem` takes in one call. 25 items of at most 400 KB are at most
/// 10 MB, under the call's 16 MB limit, so the count is the only bound a batch needs.
pub const MAX_BATCH: usize = 25;

/// The state behind the WIT `data-file-decoder` resource.
pub struct DataFileDecoder {
    format: ExportFormat,
    incremental: bool,
    key: Vec<KeyAttribute>,
    lines: GzLines,
    /// The batch being filled, and the keys it holds.
    batch: WriteBatch,
    batch_keys: HashSet<KeyHash>,
    /// Batches filled since they were last handed out.
    filled: Vec<WriteBatch>,
    /// The first error; nothing is decoded after it.
    error: Option<DecodeError>,
    /// Where a line's decoded strings live while it is packed (reset for each line).
    arena: Arena,
}

impl DataFileDecoder {
    pub fn new(format: ExportFormat, export_type: &str, key: Vec<KeyAttribute>) -> Self {
        Self {
            format,
            incremental: export_type == "INCREMENTAL_EXPORT",
            key,
            lines: GzLines::default(),
            batch: WriteBatch { requests: Vec::new(), first_line: 1 },
            batch_keys: HashSet::new(),
            filled: Vec::new(),
            error: None,
            arena: Arena::new(),
        }
    }

    /// Reads the next bytes; returns the batches they filled.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<WriteBatch>, DecodeError> {
        let mut lines = std::mem::take(&mut self.lines);
        let fed = lines.feed(bytes, |number, line| self.line(number, line));
        self.lines = lines;
        if let Err(message) = fed {
            self.fail(0, message);
        }
        self.take()
    }

    /// Ends the file; returns the last batch.
    pub fn finish(&mut self) -> Result<Vec<WriteBatch>, DecodeError> {
        let mut lines = std::mem::take(&mut self.lines);
        let ended = lines.finish(|number, line| self.line(number, line));
        if let Some(message) = ended.cut_short {
            self.fail(0, message);
        }
        if let Some(number) = ended.unterminated {
            self.fail(number, "the last line has no newline: the file is cut short".into());
        }
        self.close_batch(lines.lines() + 1);
        self.take()
    }

    fn take(&mut self) -> Result<Vec<WriteBatch>, DecodeError> {
        match &self.error {
            Some(error) => Err(error.clone()),
            None => Ok(std::mem::take(&mut self.filled)),
        }
    }

    fn fail(&mut self, line: u64, message: String) {
        self.error.get_or_insert(DecodeError { line, message });
    }

    /// One line: a request in the batch being filled.
    fn line(&mut self, number: u64, line: &[u8]) {
        if self.error.is_some() {
            return;
        }
        self.arena.reset();
        match self.request(line) {
            Ok((hash, request)) => {
                if self.batch.requests.len() == MAX_BATCH || self.batch_keys.contains(&hash) {
                    self.close_batch(number);
                }
                self.batch_keys.insert(hash);
                self.batch.requests.push(request);
            }
            Err(message) => self.fail(number, message),
        }
    }

    /// The write a line asks for, packed, with its key hash.
    fn request(&self, line: &[u8]) -> Result<(KeyHash, WriteRequest), String> {
        let read = DataLine::read(self.format, self.incremental, line, &self.arena)?;
        let (hash, write) = read.write(&self.key)?;
        let packed = |entries: &[_]| {
            let mut out = Vec::new();
            writer::map(&mut out, entries);
            out
        };
        let request = match write {
            Write::Put(item) => WriteRequest::Put(packed(item)),
            Write::Delete(key) => WriteRequest::Delete(packed(&key)),
        };
        Ok((hash, request))
    }

    /// Hands out the batch being filled, if it holds anything; the next starts at `next_line`.
    fn close_batch(&mut self, next_line: u64) {
        let batch = std::mem::replace(&mut self.batch, WriteBatch { requests: Vec::new(), first_line: next_line });
        self.batch_keys.clear();
        if !batch.requests.is_empty() {
            self.filled.push(batch);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::item_check;
    use crate::test_gzip::gzip;
    use crate::wit::KeyType;
    use ddb_export_data_files::page::{self, Value};

    fn decode(
        format: ExportFormat,
        export_type: &str,
        text: &str,
        chunk: usize,
    ) -> Result<Vec<WriteBatch>, DecodeError> {
        let key = vec![item_check::untyped("pk")];
        let mut decoder = DataFileDecoder::new(format, export_type, key);
        let mut batches = Vec::new();
        for piece in gzip(text).chunks(chunk) {
            batches.extend(decoder.feed(piece)?);
        }
        batches.extend(decoder.finish()?);
        Ok(batches)
    }

    fn item_lines(count: usize) -> String {
        (0..count).map(|i| format!("{{\"Item\":{{\"pk\":{{\"S\":\"k{i}\"}},\"n\":{{\"N\":\"{i}\"}}}}}}\n")).collect()
    }

    #[test]
    fn items_come_back_in_batches_of_25_in_any_chunking() {
        for chunk in [3, 100, 1 << 16] {
            let batches = decode(ExportFormat::DynamodbJson, "FULL_EXPORT", &item_lines(60), chunk).unwrap();
            let sizes: Vec<usize> = batches.iter().map(|b| b.requests.len()).collect();
            assert_eq!(sizes, vec![25, 25, 10], "chunk {chunk}");
            assert_eq!(batches.iter().map(|b| b.first_line).collect::<Vec<_>>(), vec![1, 26, 51]);
            let WriteRequest::Put(first) = &batches[1].requests[0] else { panic!("a put") };
            let item = page::read_map(first).unwrap();
            assert_eq!(item, vec![("n", Value::N("25")), ("pk", Value::S("k25"))]);
        }
    }

    #[test]
    fn keys_are_checked_and_compared_by_value() {
        let line = "{\"Item\":{\"z\":{\"L\":[{\"S\":\"\\u00e9\"}]},\"pk\":{\"S\":\"a\"},\"n\":{\"N\":\"-1.5E+3\"}}}\n";
        let typed = vec![KeyAttribute { name: "pk".into(), attribute_type: Some(KeyType::N) }];
        let mut decoder = DataFileDecoder::new(ExportFormat::DynamodbJson, "FULL_EXPORT", typed);
        let fed = decoder.feed(&gzip(line)).and_then(|_| decoder.finish());
        let error = fed.unwrap_err();
        assert_eq!((error.line, error.message.as_str()), (1, "key attribute \"pk\" is S, but the table's \"pk\" is N"));
        // `1` and `1.0` are one key to DynamoDB: they may not share a batch.
        let numbers = "{\"Item\":{\"pk\":{\"N\":\"1\"}}}\n{\"Item\":{\"pk\":{\"N\":\"1.0\"}}}\n";
        let batches = decode(ExportFormat::DynamodbJson, "FULL_EXPORT", numbers, 4096).unwrap();
        assert_eq!(batches.iter().map(|b| b.requests.len()).collect::<Vec<_>>(), vec![1, 1]);
    }

    #[test]
    fn change_records_are_puts_of_their_new_image_or_deletes_of_their_keys() {
        let text = "{\"Metadata\":{\"WriteTimestampMicros\":{\"N\":\"1\"}},\"Keys\":{\"pk\":{\"S\":\"a\"}},\
                    \"NewImage\":{\"pk\":{\"S\":\"a\"},\"v\":{\"BOOL\":true}}}\n\
                    {\"Metadata\":{\"WriteTimestampMicros\":{\"N\":\"2\"}},\"Keys\":{\"pk\":{\"S\":\"b\"}}}\n";
        let batches = decode(ExportFormat::DynamodbJson, "INCREMENTAL_EXPORT", text, 7).unwrap();
        assert_eq!(batches.len(), 1);
        let [WriteRequest::Put(put), WriteRequest::Delete(delete)] = &batches[0].requests[..] else {
            panic!("a put then a delete: {:?}", batches[0].requests)
        };
        assert_eq!(page::read_map(put).unwrap(), vec![("pk", Value::S("a")), ("v", Value::Bool(true))]);
        assert_eq!(page::read_map(delete).unwrap(), vec![("pk", Value::S("b"))]);
    }

    #[test]
    fn a_key_twice_starts_a_new_batch() {
        let line = "{\"Item\":{\"pk\":{\"S\":\"same\"}}}\n";
        let batches = decode(ExportFormat::DynamodbJson, "FULL_EXPORT", &line.repeat(3), 4096).unwrap();
        assert_eq!(
            batches.iter().map(|b| (b.requests.len(), b.first_line)).collect::<Vec<_>>(),
            vec![(1, 1), (1, 2), (1, 3)]
        );
    }

    #[test]
    fn ion_lines_decode_like_json_ones() {
        let text = "$ion_1_0 {Item:{pk:\"a\",n:1.5d0,b:{{AAE=}},s:$dynamodb_SS::[\"x\"]}}\n";
        let batches = decode(ExportFormat::Ion, "FULL_EXPORT", text, 5).unwrap();
        let WriteRequest::Put(put) = &batches[0].requests[0] else { panic!("a put") };
        let item = page::read_map(put).unwrap();
        assert_eq!(item.len(), 4, "{item:?}");
        assert_eq!(page::attribute(&item, "b"), Some(&Value::B(&[0, 1])));
        assert_eq!(page::attribute(&item, "s"), Some(&Value::Ss(vec!["x"])));
    }

    #[test]
    fn bad_input_is_refused_naming_the_line() {
        let mut lines = item_lines(2);
        lines.push_str("{\"Item\":{\"x\":{\"S\":\"no key\"}}}\n");
        let error = decode(ExportFormat::DynamodbJson, "FULL_EXPORT", &lines, 4096).unwrap_err();
        assert_eq!((error.line, error.message.as_str()), (3, "the item has no key attribute \"pk\""));

        let mut truncated = gzip(&item_lines(3));
        truncated.truncate(truncated.len() - 6);
        let mut decoder = DataFileDecoder::new(ExportFormat::DynamodbJson, "FULL_EXPORT", vec![]);
        let fed = decoder.feed(&truncated);
        let error = fed.and_then(|_| decoder.finish()).unwrap_err();
        assert!(error.message.contains("cut short"), "{error:?}");

        let unterminated = item_lines(2).trim_end().to_string();
        let error = decode(ExportFormat::DynamodbJson, "FULL_EXPORT", &unterminated, 4096).unwrap_err();
        assert_eq!(error.line, 2, "{error:?}");
    }
}
