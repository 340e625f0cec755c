//! `restore`: a data file's lines decoded into the batches of writes that put its items back
//! (`wit/restore.wit`), packed (`page-format.md`'s `map`) for the host to hand to DynamoDB.
//! A full export's DYNAMODB_JSON lines, most of any restore, are read by the borrowing page
//! reader and packed as they are, their key attributes checked; every other line is read and
//! judged as `verify` judges it ([`DataLine`]). The host runs `verify` on the export first.

use std::collections::HashSet;

use ddb_export_data_files::json_page::{self, Arena};
use ddb_export_data_files::page::{self, Value, writer};
use md5::{Digest, Md5};

use crate::data_line::DataLine;
use crate::gz_lines::GzLines;
use crate::item_check::{self, Attr, KeyHash};
use crate::wit::{DecodeError, ExportFormat, KeyAttribute, KeyType, WriteBatch, WriteRequest};

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
        let request = match self.fast_item(line) {
            Some(request) => request,
            None => self.request(line),
        };
        match request {
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

    /// The write a line asks for, with its key hash.
    fn request(&self, line: &[u8]) -> Result<(KeyHash, WriteRequest), String> {
        let text = std::str::from_utf8(line).map_err(|e| format!("not UTF-8: {e}"))?;
        let read = DataLine::read(self.format, self.incremental, text)?;
        let hash = read.check(&self.key)?;
        let request = match read {
            DataLine::Item(item) => WriteRequest::Put(pack(&item)),
            DataLine::Change(change) => match change.new_image {
                Some(image) => WriteRequest::Put(pack(&image)),
                None => {
                    let names: Vec<KeyAttribute> = if self.key.is_empty() {
                        change.keys.iter().map(|(name, _)| item_check::untyped(name)).collect()
                    } else {
                        self.key.clone()
                    };
                    WriteRequest::Delete(pack(&item_check::key_of(&change.keys, &names)?))
                }
            },
        };
        Ok((hash, request))
    }

    /// A full export's DYNAMODB_JSON line as AWS and ddb-export write it (`{"Item":…}`,
    /// nothing around it), read by the borrowing page reader (`json_page`) and packed as it is,
    /// without an owned tree: most lines of most restores. `None`: another kind of line, for
    /// [`Self::request`]. The item's key attributes are checked (present, of the key's types);
    /// the rest of DynamoDB's rules are `verify`'s, which the host runs first.
    fn fast_item(&mut self, line: &[u8]) -> Option<Result<(KeyHash, WriteRequest), String>> {
        if self.format != ExportFormat::DynamodbJson || self.incremental {
            return None;
        }
        let inner = line.strip_prefix(b"{\"Item\":")?.strip_suffix(b"}")?;
        self.arena.reset();
        let item = match json_page::read_item(inner, &self.arena) {
            Ok(item) => item,
            Err(e) => return Some(Err(format!("not {{\"Item\":{{…}}}}: {}", e.0))),
        };
        Some(packed_item(&item, &self.key))
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

/// A borrowed item packed as a put, with the hash of its key (of the whole item when the key
/// is unknown), after checking its key attributes.
fn packed_item(item: &[(&str, Value<'_>)], key: &[KeyAttribute]) -> Result<(KeyHash, WriteRequest), String> {
    if item.is_empty() {
        return Err("the item has no attributes".into());
    }
    let mut key_entries = Vec::with_capacity(key.len());
    for attribute in key {
        let name = attribute.name.as_str();
        let value = page::attribute(item, name).ok_or_else(|| format!("the item has no key attribute {name:?}"))?;
        let kind = match value {
            Value::S(_) => KeyType::S,
            Value::N(_) => KeyType::N,
            Value::B(_) => KeyType::B,
            _ => return Err(format!("key attribute {name:?} is not a string, number or binary")),
        };
        if let Some(wanted) = attribute.attribute_type
            && wanted != kind
        {
            let said = |t: KeyType| match t {
                KeyType::S => "S",
                KeyType::N => "N",
                KeyType::B => "B",
            };
            return Err(format!(
                "key attribute {name:?} is {}, but the table's {name:?} is {}",
                said(kind),
                said(wanted)
            ));
        }
        key_entries.push((name, value.clone()));
    }
    let mut out = Vec::new();
    writer::map(&mut out, item);
    let hash: KeyHash = if key_entries.is_empty() {
        Md5::digest(&out).into()
    } else {
        let mut key_bytes = Vec::new();
        writer::map(&mut key_bytes, &key_entries);
        Md5::digest(&key_bytes).into()
    };
    Ok((hash, WriteRequest::Put(out)))
}

/// An item (or key) as one packed `map`.
fn pack(entries: &[(String, Attr)]) -> Vec<u8> {
    let values: Vec<(&str, Value<'_>)> = entries.iter().map(|(name, attr)| (name.as_str(), value(attr))).collect();
    let mut out = Vec::new();
    writer::map(&mut out, &values);
    out
}

fn value(attr: &Attr) -> Value<'_> {
    match attr {
        Attr::S(s) => Value::S(s),
        Attr::N(n) => Value::N(n),
        Attr::B(b) => Value::B(b),
        Attr::Bool(b) => Value::Bool(*b),
        Attr::Null => Value::Null,
        Attr::Ss(set) => Value::Ss(set.iter().map(String::as_str).collect()),
        Attr::Ns(set) => Value::Ns(set.iter().map(String::as_str).collect()),
        Attr::Bs(set) => Value::Bs(set.iter().map(Vec::as_slice).collect()),
        Attr::L(list) => Value::L(list.iter().map(value).collect()),
        Attr::M(entries) => Value::M(entries.iter().map(|(name, attr)| (name.as_str(), value(attr))).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_gzip::gzip;
    use ddb_export_data_files::page;

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
    fn the_fast_path_packs_what_the_general_reader_would() {
        let line = br#"{"Item":{"z":{"L":[{"S":"\u00e9"},{"BS":["AAE="]}]},"pk":{"S":"a"},"n":{"N":"-1.5E+3"},"m":{"M":{"b":{"BOOL":true},"a":{"NULL":true}}}}}"#;
        let key = vec![item_check::untyped("pk")];
        let mut decoder = DataFileDecoder::new(ExportFormat::DynamodbJson, "FULL_EXPORT", key.clone());
        let (fast_hash, fast) = decoder.fast_item(line).expect("the fast path takes it").unwrap();
        let (slow_hash, slow) = decoder.request(line).unwrap();
        let (WriteRequest::Put(fast), WriteRequest::Put(slow)) = (fast, slow) else { panic!("puts") };
        assert_eq!(page::read_map(&fast).unwrap(), page::read_map(&slow).unwrap());
        let _ = (fast_hash, slow_hash);
        // A key of another type is refused on the fast path as on the other.
        let typed = vec![KeyAttribute { name: "pk".into(), attribute_type: Some(KeyType::N) }];
        let mut decoder = DataFileDecoder::new(ExportFormat::DynamodbJson, "FULL_EXPORT", typed);
        let error = decoder.fast_item(line).unwrap().unwrap_err();
        assert_eq!(error, "key attribute \"pk\" is S, but the table's \"pk\" is N");
        assert!(decoder.fast_item(br#"{"Item":{"pk":{"Q":"a"}}}"#).unwrap().is_err());
        assert!(decoder.fast_item(br#" {"Item":{}}"#).is_none(), "another shape goes the general way");
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
