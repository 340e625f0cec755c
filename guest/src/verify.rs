//! `verify`: what an export's own bytes say, checked: its manifests against each other, and
//! each data file's lines against its format. The host supplies the bytes and compares the
//! rest (which objects exist, their ETags and MD5s) with what [`check_manifests`] returns.

use std::collections::HashSet;
use std::io::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use flate2::write::MultiGzDecoder;
use md5::{Digest, Md5};
use serde_json::Value;

use crate::bindings::exports::ddb_export::core::verify::{Error, FileReport, ListedFile, Manifests};
use crate::ion_check;
use crate::wit::ExportFormat;

/// Problems a file report keeps; the count of lines is exact whatever the number.
const MAX_PROBLEMS: usize = 10;
/// Deepest nesting of `L`/`M` DynamoDB allows.
const MAX_DEPTH: usize = 32;
/// The keys of a `manifest-files.json` line, in AWS's order.
const LISTING_KEYS: [&str; 4] = ["itemCount", "md5Checksum", "etag", "dataFileS3Key"];

fn md5_base64(bytes: &[u8]) -> String {
    STANDARD.encode(Md5::digest(bytes))
}

/// See `check-manifests` in `wit/verify.wit`.
pub fn check_manifests(
    summary: &[u8],
    summary_md5: Option<&[u8]>,
    files: &[u8],
    files_md5: Option<&[u8]>,
) -> Result<Manifests, Error> {
    let unreadable = |why: String| Error::UnreadableSummary(why);
    let json: Value = serde_json::from_slice(summary).map_err(|e| unreadable(format!("not JSON: {e}")))?;
    let text = |field: &str| json.get(field).and_then(Value::as_str).map(str::to_string);
    let required = |field: &str| text(field).ok_or_else(|| unreadable(format!("it has no string {field:?}")));
    let output_format = required("outputFormat")?;
    let format = match output_format.as_str() {
        "DYNAMODB_JSON" => Some(ExportFormat::DynamodbJson),
        "ION" => Some(ExportFormat::Ion),
        // A plugin's format (`custom-format`'s rule): readable, if not by this component.
        other if ddb_export_data_files::check_output_format(other).is_ok() => None,
        other => {
            return Err(unreadable(format!(
                "outputFormat {other:?} is neither DYNAMODB_JSON, ION nor a plugin's (A-Z, 0-9, _)"
            )));
        }
    };
    let item_count =
        json.get("itemCount").and_then(Value::as_u64).ok_or_else(|| unreadable("it has no itemCount".into()))?;
    let mut manifests = Manifests {
        export_arn: required("exportArn")?,
        export_type: text("exportType").unwrap_or_else(|| "FULL_EXPORT".into()),
        output_format,
        format,
        item_count,
        manifest_files_key: required("manifestFilesS3Key")?,
        files: Vec::new(),
        problems: Vec::new(),
    };
    let problems = &mut manifests.problems;
    for field in ["startTime", "endTime", "tableArn", "tableId", "s3Bucket", "s3SseAlgorithm"] {
        if text(field).is_none() {
            problems.push(format!("manifest-summary.json: it has no string {field:?}"));
        }
    }
    for (name, bytes, expected) in [("manifest-summary", summary, summary_md5), ("manifest-files", files, files_md5)] {
        let Some(expected) = expected else { continue };
        let expected = String::from_utf8_lossy(expected).trim().to_string();
        let actual = md5_base64(bytes);
        if expected != actual {
            problems.push(format!("{name}.md5 says {expected:?}, but {name}.json has MD5 {actual:?}"));
        }
    }

    let mut keys = HashSet::new();
    let mut listed_items = 0u64;
    let text = String::from_utf8_lossy(files);
    if !files.is_empty() && !files.ends_with(b"\n") {
        problems.push("manifest-files.json: the last line has no newline".into());
    }
    for (number, line) in text.lines().enumerate().map(|(i, l)| (i + 1, l)) {
        match listing_line(line) {
            Ok(file) => {
                if !keys.insert(file.key.clone()) {
                    problems.push(format!("manifest-files.json line {number}: {} is listed twice", file.key));
                }
                listed_items = listed_items.saturating_add(file.item_count);
                manifests.files.push(file);
            }
            Err(why) => problems.push(format!("manifest-files.json line {number}: {why}")),
        }
    }
    if listed_items != item_count {
        problems.push(format!(
            "manifest-summary.json: itemCount is {item_count}, but manifest-files.json lists {listed_items} items"
        ));
    }
    Ok(manifests)
}

/// One `manifest-files.json` line: the four keys, in AWS's order, of the right types.
fn listing_line(line: &str) -> Result<ListedFile, String> {
    // serde_json's map keeps insertion order here only with `preserve_order`; check the
    // order on the text instead: each key's first quoted occurrence, in sequence.
    let json: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    let object = json.as_object().ok_or("not a JSON object")?;
    if object.len() != LISTING_KEYS.len() || LISTING_KEYS.iter().any(|k| !object.contains_key(*k)) {
        return Err(format!("its keys are not exactly {}", LISTING_KEYS.join(", ")));
    }
    let positions: Vec<Option<usize>> = LISTING_KEYS.iter().map(|k| line.find(&format!("\"{k}\":"))).collect();
    if positions.windows(2).any(|w| w[0] >= w[1]) {
        return Err(format!("its keys are not in the order {}", LISTING_KEYS.join(", ")));
    }
    let string = |k: &str| object[k].as_str().map(str::to_string).ok_or(format!("{k} is not a string"));
    Ok(ListedFile {
        key: string("dataFileS3Key")?,
        item_count: object["itemCount"].as_u64().ok_or("itemCount is not a count")?,
        md5: string("md5Checksum")?,
        etag: string("etag")?,
    })
}

/// The state behind the WIT `data-file-checker` resource.
pub struct DataFileChecker {
    format: ExportFormat,
    incremental: bool,
    gzip: MultiGzDecoder<Vec<u8>>,
    /// Bytes of a line not yet ended.
    partial: Vec<u8>,
    lines: u64,
    problems: Vec<String>,
    /// Once the gzip stream is broken, nothing more is read.
    broken: bool,
}

impl DataFileChecker {
    pub fn new(format: ExportFormat, export_type: &str) -> Self {
        Self {
            format,
            incremental: export_type == "INCREMENTAL_EXPORT",
            gzip: MultiGzDecoder::new(Vec::new()),
            partial: Vec::new(),
            lines: 0,
            problems: Vec::new(),
            broken: false,
        }
    }

    pub fn feed(&mut self, bytes: &[u8]) {
        if self.broken {
            return;
        }
        if let Err(e) = self.gzip.write_all(bytes) {
            self.problem(format!("not a gzip stream (or bytes after its end): {e}"));
            self.broken = true;
        }
        self.take_lines();
    }

    pub fn finish(&mut self) -> FileReport {
        if !self.broken {
            if let Err(e) = self.gzip.try_finish() {
                self.problem(format!("the gzip stream is cut short: {e}"));
            }
            self.take_lines();
            if !self.partial.is_empty() {
                let line = std::mem::take(&mut self.partial);
                self.lines += 1;
                self.check_line(&line);
                self.problem(format!("line {}: the last line has no newline", self.lines));
            }
        }
        FileReport { lines: self.lines, problems: std::mem::take(&mut self.problems) }
    }

    fn problem(&mut self, problem: String) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(problem);
        }
    }

    /// Checks every complete line decompressed so far.
    fn take_lines(&mut self) {
        let decoded = std::mem::take(self.gzip.get_mut());
        let mut rest: &[u8] = &decoded;
        while let Some(end) = rest.iter().position(|b| *b == b'\n') {
            let line = if self.partial.is_empty() {
                rest[..end].to_vec()
            } else {
                let mut joined = std::mem::take(&mut self.partial);
                joined.extend_from_slice(&rest[..end]);
                joined
            };
            self.lines += 1;
            self.check_line(&line);
            rest = &rest[end + 1..];
        }
        self.partial.extend_from_slice(rest);
    }

    fn check_line(&mut self, line: &[u8]) {
        let checked = match std::str::from_utf8(line) {
            Err(e) => Err(format!("not UTF-8: {e}")),
            Ok(text) => match (self.format, self.incremental) {
                (ExportFormat::DynamodbJson, false) => json_item_line(text),
                (ExportFormat::DynamodbJson, true) => json_change_line(text),
                (ExportFormat::Ion, incremental) => ion_check::line(text, incremental),
            },
        };
        if let Err(why) = checked {
            let number = self.lines;
            self.problem(format!("line {number}: {why}"));
        }
    }
}

/// `{"Item":{…}}` with typed AttributeValues.
fn json_item_line(line: &str) -> Result<(), String> {
    let json: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    let object = json.as_object().filter(|o| o.len() == 1).ok_or("not {\"Item\":{…}}")?;
    let item = object.get("Item").ok_or("not {\"Item\":{…}}")?;
    attribute_map(item, 0)
}

/// An incremental export's change record: `Keys`, `NewImage`, `OldImage`, `Metadata`.
fn json_change_line(line: &str) -> Result<(), String> {
    let json: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    let object = json.as_object().ok_or("not a JSON object")?;
    if let Some(key) = object.keys().find(|k| !["Metadata", "Keys", "NewImage", "OldImage"].contains(&k.as_str())) {
        return Err(format!("unexpected key {key:?} in a change record"));
    }
    attribute_map(object.get("Keys").ok_or("a change record without Keys")?, 0)?;
    for image in ["NewImage", "OldImage"] {
        if let Some(value) = object.get(image) {
            attribute_map(value, 0).map_err(|e| format!("{image}: {e}"))?;
        }
    }
    let micros = object.get("Metadata").and_then(|m| m.get("WriteTimestampMicros")).and_then(|t| t.get("N"));
    match micros.and_then(Value::as_str) {
        Some(n) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => Ok(()),
        _ => Err("Metadata.WriteTimestampMicros is not {\"N\":\"<micros>\"}".into()),
    }
}

fn attribute_map(value: &Value, depth: usize) -> Result<(), String> {
    let map = value.as_object().ok_or("an item or map that is not a JSON object")?;
    for (name, attribute) in map {
        check_attribute(attribute, depth).map_err(|e| format!("{name:?}: {e}"))?;
    }
    Ok(())
}

/// One AttributeValue: exactly one type tag, with a value of the right JSON type.
fn check_attribute(value: &Value, depth: usize) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err(format!("nested deeper than {MAX_DEPTH} levels"));
    }
    let (tag, inner) = value
        .as_object()
        .filter(|o| o.len() == 1)
        .and_then(|o| o.iter().next())
        .ok_or("not an AttributeValue ({\"<type>\": value})")?;
    let strings = |what: &str| -> Result<Vec<&str>, String> {
        let array = inner.as_array().filter(|a| !a.is_empty()).ok_or(format!("{tag} is not a non-empty array"))?;
        let items: Vec<&str> = array.iter().filter_map(Value::as_str).collect();
        if items.len() != array.len() {
            return Err(format!("{tag} holds something other than {what}"));
        }
        if items.iter().collect::<HashSet<_>>().len() != items.len() {
            return Err(format!("{tag} holds a value twice"));
        }
        Ok(items)
    };
    match tag.as_str() {
        "S" => inner.as_str().map(drop).ok_or("S is not a string".into()),
        "N" => inner.as_str().filter(|n| is_number(n)).map(drop).ok_or(format!("N {inner} is not a number")),
        "B" => inner.as_str().filter(|b| STANDARD.decode(b).is_ok()).map(drop).ok_or("B is not base64".into()),
        "BOOL" => inner.as_bool().map(drop).ok_or("BOOL is not true or false".into()),
        "NULL" => (inner == &Value::Bool(true)).then_some(()).ok_or("NULL is not true".into()),
        "SS" => strings("strings").map(drop),
        "NS" => match strings("numbers")?.into_iter().find(|n| !is_number(n)) {
            Some(n) => Err(format!("NS holds {n:?}, not a number")),
            None => Ok(()),
        },
        "BS" => match strings("base64")?.into_iter().find(|b| STANDARD.decode(b).is_err()) {
            Some(b) => Err(format!("BS holds {b:?}, not base64")),
            None => Ok(()),
        },
        "L" => {
            let list = inner.as_array().ok_or("L is not an array")?;
            list.iter().try_for_each(|v| check_attribute(v, depth + 1))
        }
        "M" => attribute_map(inner, depth + 1),
        other => Err(format!("{other:?} is not an AttributeValue type")),
    }
}

/// DynamoDB's number syntax: an optional sign, digits with an optional fraction, an optional
/// exponent.
pub fn is_number(text: &str) -> bool {
    let body = text.strip_prefix('-').unwrap_or(text);
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(at) => (&body[..at], Some(&body[at + 1..])),
        None => (body, None),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = digits(whole) && digits(fraction) && !(whole.is_empty() && fraction.is_empty());
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    mantissa_ok && exponent_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_gzip::gzip;

    fn check(text: &str, chunk: usize) -> FileReport {
        let mut checker = DataFileChecker::new(ExportFormat::DynamodbJson, "FULL_EXPORT");
        for piece in gzip(text).chunks(chunk) {
            checker.feed(piece);
        }
        checker.finish()
    }

    #[test]
    fn good_lines_pass_in_any_chunking() {
        let text = "{\"Item\":{\"pk\":{\"S\":\"a\"},\"n\":{\"N\":\"-1.5E+3\"},\"l\":{\"L\":[{\"NULL\":true},{\"BS\":[\"AA==\"]}]}}}\n\
                    {\"Item\":{\"pk\":{\"S\":\"b\"},\"m\":{\"M\":{\"x\":{\"BOOL\":false},\"s\":{\"SS\":[\"\",\"x\"]}}}}}\n";
        for chunk in [1, 7, 4096] {
            let report = check(text, chunk);
            assert_eq!((report.lines, report.problems), (2, vec![]), "chunk {chunk}");
        }
    }

    #[test]
    fn bad_lines_are_named_by_number() {
        let report = check(
            "{\"Item\":{\"pk\":{\"S\":\"a\"}}}\n{\"Item\":{\"n\":{\"N\":\"1x\"}}}\nnot json\n{\"Item\":{\"s\":{\"SS\":[\"a\",\"a\"]}}}",
            5,
        );
        assert_eq!(report.lines, 4);
        assert!(report.problems[0].starts_with("line 2: \"n\": N"), "{:?}", report.problems);
        assert!(report.problems[1].starts_with("line 3: not JSON"), "{:?}", report.problems);
        assert!(report.problems[2].contains("line 4: \"s\": SS holds a value twice"), "{:?}", report.problems);
        assert!(report.problems[3].contains("no newline"), "{:?}", report.problems);
    }

    #[test]
    fn broken_gzip_is_reported_once() {
        let mut bytes = gzip("{\"Item\":{\"pk\":{\"S\":\"a\"}}}\n");
        bytes.truncate(bytes.len() - 4);
        let mut checker = DataFileChecker::new(ExportFormat::DynamodbJson, "FULL_EXPORT");
        checker.feed(&bytes);
        let report = checker.finish();
        assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
        assert!(report.problems[0].contains("gzip"), "{:?}", report.problems);
        let mut checker = DataFileChecker::new(ExportFormat::DynamodbJson, "FULL_EXPORT");
        checker.feed(b"plain text, not gzip");
        assert!(checker.finish().problems[0].contains("not a gzip stream"));
    }

    #[test]
    fn numbers_follow_dynamodb() {
        for good in ["0", "-1", "1.5", ".5", "5.", "1E10", "-1.5e-130", "12345678901234567890123456789012345678"] {
            assert!(is_number(good), "{good}");
        }
        for bad in ["", "-", ".", "1e", "1e+", "+1", "1.2.3", "0x10", "1 "] {
            assert!(!is_number(bad), "{bad}");
        }
    }

    fn manifests(summary: &str, files: &str) -> Manifests {
        let md5 = |s: &str| md5_base64(s.as_bytes()).into_bytes();
        check_manifests(summary.as_bytes(), Some(&md5(summary)), files.as_bytes(), Some(&md5(files))).unwrap()
    }

    const SUMMARY: &str = r#"{"version":"2020-06-30","exportArn":"arn:x/export/1","startTime":"t","endTime":"t","tableArn":"a","tableId":"i","exportTime":"t","s3Bucket":"b","s3Prefix":null,"s3SseAlgorithm":"AES256","s3SseKmsKeyId":null,"manifestFilesS3Key":"AWSDynamoDB/1/manifest-files.json","billedSizeBytes":0,"itemCount":3,"outputFormat":"DYNAMODB_JSON"}"#;

    #[test]
    fn sound_manifests_have_no_problems() {
        let files = "{\"itemCount\":1,\"md5Checksum\":\"m\",\"etag\":\"e\",\"dataFileS3Key\":\"k1\"}\n\
                     {\"itemCount\":2,\"md5Checksum\":\"m\",\"etag\":\"e\",\"dataFileS3Key\":\"k2\"}\n";
        let m = manifests(SUMMARY, files);
        assert_eq!(m.problems, Vec::<String>::new());
        assert_eq!(m.files.len(), 2);
        assert_eq!(
            (m.item_count, m.export_type.as_str(), m.format),
            (3, "FULL_EXPORT", Some(ExportFormat::DynamodbJson))
        );
    }

    #[test]
    fn a_plugin_s_output_format_is_read_but_not_its_files() {
        let csv = SUMMARY.replace("DYNAMODB_JSON", "CSV");
        let m = manifests(&csv, "");
        assert_eq!((m.output_format.as_str(), m.format), ("CSV", None));
        for bad in ["csv", "C S V", ""] {
            let summary = SUMMARY.replace("DYNAMODB_JSON", bad);
            let error = check_manifests(summary.as_bytes(), None, b"", None).unwrap_err();
            assert!(matches!(error, Error::UnreadableSummary(_)), "{bad:?}");
        }
    }

    #[test]
    fn manifest_problems_name_the_file_and_line() {
        let files = "{\"itemCount\":1,\"md5Checksum\":\"m\",\"etag\":\"e\",\"dataFileS3Key\":\"k1\"}\n\
                     {\"dataFileS3Key\":\"k1\",\"itemCount\":1,\"md5Checksum\":\"m\",\"etag\":\"e\"}\n";
        let m = manifests(SUMMARY, files);
        assert!(m.problems.iter().any(|p| p.contains("line 2: its keys are not in the order")), "{:?}", m.problems);
        assert!(
            m.problems.iter().any(|p| p.contains("itemCount is 3, but manifest-files.json lists 1")),
            "{:?}",
            m.problems
        );
        let md5 = check_manifests(SUMMARY.as_bytes(), Some(b"AAAA"), b"", None).unwrap();
        assert!(md5.problems[0].starts_with("manifest-summary.md5 says"), "{:?}", md5.problems);
        assert!(matches!(check_manifests(b"{}", None, b"", None), Err(Error::UnreadableSummary(_))));
    }
}
