//! `verify`: what an export's own bytes say, checked: its manifests against each other, and
//! each data file's lines against its format. The host supplies the bytes and compares the
//! rest (which objects exist, their ETags and MD5s) with what [`check_manifests`] returns.

use std::collections::HashSet;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use md5::{Digest, Md5};
use serde_json::Value;

use ddb_export_data_files::json_page::Arena;
use ddb_export_data_files::summary::ManifestSummary;

use crate::bindings::exports::ddb_export::core::verify::{Error, FileReport, ListedFile, Manifests};
use crate::data_line::DataLine;
use crate::gz_lines::GzLines;
use crate::item_check;
use crate::wit::{ExportFormat, KeyAttribute};

/// Problems a file report keeps; the count of lines is exact whatever the number.
const MAX_PROBLEMS: usize = 10;
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
    let parsed = ManifestSummary::parse(summary).map_err(Error::UnreadableSummary)?;
    let format = match parsed.output_format.as_str() {
        "DYNAMODB_JSON" => Some(ExportFormat::DynamodbJson),
        "ION" => Some(ExportFormat::Ion),
        // A plugin's format (`custom-format`'s rule): readable, if not by this component.
        other if ddb_export_data_files::check_output_format(other).is_ok() => None,
        other => {
            return Err(Error::UnreadableSummary(format!(
                "outputFormat {other:?} is neither DYNAMODB_JSON, ION nor a plugin's (A-Z, 0-9, _)"
            )));
        }
    };
    let item_count = parsed.item_count;
    let missing: Vec<&'static str> = parsed.missing();
    let mut manifests = Manifests {
        export_type: parsed.export_type().to_string(),
        export_arn: parsed.export_arn,
        output_format: parsed.output_format,
        format,
        item_count,
        manifest_files_key: parsed.manifest_files_s3_key,
        files: Vec::new(),
        problems: Vec::new(),
    };
    let problems = &mut manifests.problems;
    for field in missing {
        problems.push(format!("manifest-summary.json: it has no string {field:?}"));
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
    /// The table's key attributes, when known.
    key: Vec<KeyAttribute>,
    /// Key hashes of the lines completed since they were last handed out.
    key_hashes: Vec<u8>,
    lines: GzLines,
    problems: Vec<String>,
    /// Where a line's decoded strings live while it is judged (reset for each line).
    arena: Arena,
}

impl DataFileChecker {
    pub fn new(format: ExportFormat, export_type: &str, key: Vec<KeyAttribute>) -> Self {
        Self {
            format,
            incremental: export_type == "INCREMENTAL_EXPORT",
            key,
            key_hashes: Vec::new(),
            lines: GzLines::default(),
            problems: Vec::new(),
            arena: Arena::new(),
        }
    }

    /// Reads the next bytes; returns the key hashes of the lines they completed.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut lines = std::mem::take(&mut self.lines);
        if let Err(why) = lines.feed(bytes, |number, line| self.check_line(number, line)) {
            self.problem(why);
        }
        self.lines = lines;
        std::mem::take(&mut self.key_hashes)
    }

    pub fn finish(&mut self) -> FileReport {
        let mut lines = std::mem::take(&mut self.lines);
        let ended = lines.finish(|number, line| self.check_line(number, line));
        if let Some(why) = ended.cut_short {
            self.problem(why);
        }
        if let Some(number) = ended.unterminated {
            self.problem(format!("line {number}: the last line has no newline"));
        }
        FileReport {
            lines: lines.lines(),
            problems: std::mem::take(&mut self.problems),
            key_hashes: std::mem::take(&mut self.key_hashes),
        }
    }

    fn problem(&mut self, problem: String) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(problem);
        }
    }

    fn check_line(&mut self, number: u64, line: &[u8]) {
        self.arena.reset();
        let checked =
            DataLine::read(self.format, self.incremental, line, &self.arena).and_then(|read| read.check(&self.key));
        let hash = match checked {
            Ok(hash) => hash,
            Err(why) => {
                self.problem(format!("line {number}: {why}"));
                item_check::NO_KEY
            }
        };
        self.key_hashes.extend_from_slice(&hash);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_gzip::gzip;

    fn check_with(text: &str, chunk: usize, keys: &[&str]) -> (FileReport, Vec<u8>) {
        let keys = keys.iter().map(|k| crate::item_check::untyped(k)).collect();
        let mut checker = DataFileChecker::new(ExportFormat::DynamodbJson, "FULL_EXPORT", keys);
        let mut hashes = Vec::new();
        for piece in gzip(text).chunks(chunk) {
            hashes.extend(checker.feed(piece));
        }
        let report = checker.finish();
        hashes.extend_from_slice(&report.key_hashes);
        (report, hashes)
    }

    fn check(text: &str, chunk: usize) -> FileReport {
        check_with(text, chunk, &[]).0
    }

    #[test]
    fn good_lines_pass_in_any_chunking() {
        let text = "{\"Item\":{\"pk\":{\"S\":\"a\"},\"n\":{\"N\":\"-1.5E+3\"},\"l\":{\"L\":[{\"NULL\":true},{\"BS\":[\"AA==\"]}]}}}\n\
                    {\"Item\":{\"pk\":{\"S\":\"b\"},\"m\":{\"M\":{\"x\":{\"BOOL\":false},\"s\":{\"SS\":[\"\",\"x\"]}}}}}\n";
        let mut hashes = None;
        for chunk in [1, 7, 4096] {
            let (report, these) = check_with(text, chunk, &["pk"]);
            assert_eq!((report.lines, report.problems), (2, vec![]), "chunk {chunk}");
            assert_eq!(these.len(), 32, "a hash a line");
            assert_ne!(these[..16], these[16..], "two keys");
            assert_eq!(*hashes.get_or_insert(these.clone()), these, "the same hashes in any chunking");
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
        assert!(report.problems[1].starts_with("line 3: not {\"Item\":{…}}"), "{:?}", report.problems);
        assert!(report.problems[2].contains("line 4: \"s\": SS holds a value twice"), "{:?}", report.problems);
        assert!(report.problems[3].contains("no newline"), "{:?}", report.problems);
    }

    #[test]
    fn what_a_consistent_forgery_could_slip_in_is_named() {
        let line = |item: &str| format!("{{\"Item\":{item}}}\n");
        let lines = [
            line(r#"{"pk":{"S":"a"}}"#),
            line(r#"{}"#),
            line(r#"{"x":{"S":"no key"}}"#),
            line(&format!(r#"{{"pk":{{"S":"b"}},"n":{{"N":"{}"}}}}"#, "1".repeat(39))),
            line(r#"{"pk":{"S":"c"},"v":{"S":"1"},"v":{"S":"2"}}"#),
            line(&format!(r#"{{"pk":{{"S":"d"}},"big":{{"S":"{}"}}}}"#, "x".repeat(410_000))),
        ];
        let (report, hashes) = check_with(&lines.concat(), 4096, &["pk"]);
        assert_eq!(report.lines, 6);
        let expected = [
            "line 2: the item has no attributes",
            "line 3: the item has no key attribute \"pk\"",
            "line 4: \"n\": N",
            "line 5: ",
            "line 6: the item is",
        ];
        assert_eq!(report.problems.len(), 5, "{:?}", report.problems);
        for (problem, words) in report.problems.iter().zip(expected) {
            assert!(problem.starts_with(words), "{problem:?} should start {words:?}");
        }
        assert!(report.problems[2].contains("39 significant digits"), "{:?}", report.problems);
        assert!(report.problems[3].contains("\"v\" appears twice"), "{:?}", report.problems);
        assert!(report.problems[4].contains("over its limit of 400 KB"), "{:?}", report.problems);
        // Only the first line has a key hash; the others get the marker of no key.
        assert_ne!(hashes[..16], item_check::NO_KEY);
        assert!(hashes[16..].iter().all(|b| *b == 0));
    }

    #[test]
    fn broken_gzip_is_reported_once() {
        let mut bytes = gzip("{\"Item\":{\"pk\":{\"S\":\"a\"}}}\n");
        bytes.truncate(bytes.len() - 4);
        let mut checker = DataFileChecker::new(ExportFormat::DynamodbJson, "FULL_EXPORT", vec![]);
        checker.feed(&bytes);
        let report = checker.finish();
        assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
        assert!(report.problems[0].contains("gzip"), "{:?}", report.problems);
        let mut checker = DataFileChecker::new(ExportFormat::DynamodbJson, "FULL_EXPORT", vec![]);
        checker.feed(b"plain text, not gzip");
        assert!(checker.finish().problems[0].contains("not a gzip stream"));
    }

    #[test]
    fn ion_items_are_judged_by_the_same_rules() {
        let text = "$ion_1_0 {Item:{pk:\"a\",n:1.}}\n$ion_1_0 {Item:{pk:\"a\",n:1.00}}\n$ion_1_0 {Item:{n:1.}}\n";
        let mut checker =
            DataFileChecker::new(ExportFormat::Ion, "FULL_EXPORT", vec![crate::item_check::untyped("pk")]);
        let mut hashes = checker.feed(&gzip(text));
        let report = checker.finish();
        hashes.extend_from_slice(&report.key_hashes);
        assert_eq!(report.lines, 3);
        assert_eq!(hashes[..16], hashes[16..32], "the same key twice");
        assert_eq!(report.problems, vec!["line 3: the item has no key attribute \"pk\"".to_string()]);
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
