//! `--format ion` through the real binary, against the stand-ins: every AttributeValue kind and
//! edge case, and a few hundred generated items, exported as ION to S3 and to a directory, then
//! read back by an independent Ion reader (`tests/check_export.py`, with Amazon's `amazon.ion`)
//! and compared with a plain Scan of the table.
//!
//! The comparison is exact, numbers included: the checker dumps an Ion decimal in DynamoDB's own
//! spelling (plain digits, no exponent, no leading or trailing zeros), which is how dynalite and
//! DynamoDB return numbers, so a digit lost or changed on the way shows.

use std::io::Read as _;
use std::path::Path;

use aws_sdk_dynamodb::types::AttributeValue;
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde_json::Value;

use crate::items;
use crate::roundtrip::{attribute_item, dynamodb_values};
use crate::util::{self, Standins};

/// The summary key named by a COMPLETED ION export's description.
fn completed(output: &std::process::Output, expected_items: usize) -> String {
    let (json, summary_key) = util::completed(output);
    let d = &json["ExportDescription"];
    assert_eq!(d["ExportFormat"], "ION");
    assert_eq!(d["ItemCount"].as_u64(), Some(expected_items as u64));
    summary_key
}

/// What the checker does not look at: the summary's exact bytes for `outputFormat`, the data
/// files' extension. Returns every data line, in file order.
fn ion_lines(bucket_dir: &Path, summary_key: &str) -> Vec<String> {
    let summary = std::fs::read_to_string(bucket_dir.join(summary_key)).expect("manifest-summary.json");
    assert!(summary.ends_with(r#","outputFormat":"ION"}"#), "{summary}");
    let root = summary_key.trim_end_matches("/manifest-summary.json");
    let listing = std::fs::read_to_string(bucket_dir.join(root).join("manifest-files.json")).unwrap();
    let mut lines = Vec::new();
    for line in listing.lines() {
        let entry: Value = serde_json::from_str(line).unwrap();
        let key = entry["dataFileS3Key"].as_str().unwrap();
        assert!(key.starts_with(&format!("{root}/data/")) && key.ends_with(".ion.gz"), "{key}");
        let mut text = String::new();
        let bytes = std::fs::read(bucket_dir.join(key)).unwrap();
        flate2::read::GzDecoder::new(&bytes[..]).read_to_string(&mut text).expect("gzip of UTF-8");
        lines.extend(text.lines().map(str::to_string));
    }
    lines
}

/// The line of the item whose `pk` is `pk`.
fn line_of<'a>(lines: &'a [String], pk: &str) -> &'a str {
    let needle = format!("pk:\"{pk}\"");
    lines.iter().find(|l| l.contains(&needle)).unwrap_or_else(|| panic!("no line has {needle}"))
}

/// `actual` (a checker's dump) and `expected` (a table's scan) hold the same items; if not, the
/// panic shows a few of the differences rather than both lists.
fn assert_same_items(actual: &[String], expected: &[String], what: &str) {
    if actual != expected {
        let missing: Vec<&String> = expected.iter().filter(|e| !actual.contains(e)).take(3).collect();
        let extra: Vec<&String> = actual.iter().filter(|a| !expected.contains(a)).take(3).collect();
        panic!(
            "{what} differs from the table ({} items read back, {} in the table)\nin the table only: {missing:#?}\n\
             in the export only: {extra:#?}",
            actual.len(),
            expected.len()
        );
    }
}

#[tokio::test]
async fn ion_every_attribute_kind_and_edge_case_reads_back_equal_from_s3_and_a_directory() {
    let standins = Standins::start();
    let dynamodb = standins.dynamodb();
    let mut seeded = items::edge_cases();
    // ~2.5 MB besides the edge cases: each of the two segments spans several Scan pages (of at
    // most 1 MB), so files roll over.
    seeded.extend(items::ordinary(5000));
    util::create_table(&dynamodb, "ion-edge-cases", &seeded).await;
    standins.create_bucket("exports").await;
    let table = util::scan_all(&dynamodb, "ion-edge-cases").await;
    assert_eq!(table.len(), seeded.len());
    let expected = util::sorted_canonical(table.iter().map(util::canonical));

    // To S3, under a prefix, in two segments, files rolled over small.
    let output = util::run(standins.command().args([
        "export",
        "--table",
        "ion-edge-cases",
        "--to",
        "s3://exports/ion",
        "--format",
        "ion",
        "--segments",
        "2",
        "--file-size",
        "4096",
    ]));
    let summary_key = completed(&output, table.len());
    let bucket_dir = standins.bucket_dir("exports");
    assert_same_items(&util::independent_check(&bucket_dir, &summary_key), &expected, "the S3 export");
    let lines = ion_lines(&bucket_dir, &summary_key);
    assert_eq!(lines.len(), table.len());
    let root = summary_key.trim_end_matches("/manifest-summary.json");
    let files = std::fs::read_to_string(bucket_dir.join(root).join("manifest-files.json")).unwrap();
    assert!(files.lines().count() > 2, "expected roll-over into more files than segments:\n{files}");

    // The spelling FORMAT.md gives, on a few lines whose bytes are known: numbers are decimals
    // with every digit the server returned, sets are annotated lists, names that are no plain
    // identifier are quoted symbols.
    assert_eq!(line_of(&lines, "scalars"), r#"$ion_1_0 {Item:{no:false,'null':null,pk:"scalars",yes:true}}"#);
    let numbers = line_of(&lines, "numbers");
    for part in [
        "digits38:12345678901234567890123456789012345678.,",
        "exponent:150000000000000000000.,",
        "fraction:0.000000000000000000000000000000000001,",
        "negative38:-98765432109876543210987654321098765432.,",
        "negative_exponent:-0.00000000025,",
        "zero:0.}",
    ] {
        assert!(numbers.contains(part), "{part} not in {numbers}");
    }
    let sets = line_of(&lines, "sets");
    assert!(sets.starts_with(r#"$ion_1_0 {Item:{numbers:$dynamodb_NS::["#), "{sets}");
    assert!(sets.contains(r#"strings:$dynamodb_SS::["#), "{sets}");
    assert!(line_of(&lines, "binary").contains("binary_set:$dynamodb_BS::[{{"));
    assert!(line_of(&lines, "text").contains(r#"'a "strange" name\n':"attribute names are escaped too""#));

    // To a directory: the same items.
    let out_dir = tempfile::tempdir().unwrap();
    let output = util::run(
        standins.command().args(["export", "--table", "ion-edge-cases", "--format", "ion", "--to"]).arg(out_dir.path()),
    );
    let summary_key = completed(&output, table.len());
    assert_same_items(&util::independent_check(out_dir.path(), &summary_key), &expected, "the directory export");
    let root = out_dir.path().join(summary_key.trim_end_matches("/manifest-summary.json"));
    let verified = util::run(std::process::Command::new(env!("CARGO_BIN_EXE_ddb-export")).arg("verify").arg(&root));
    assert!(verified.status.success(), "edge cases: {}", String::from_utf8_lossy(&verified.stdout));
    assert_eq!(ion_lines(out_dir.path(), &summary_key).len(), table.len());
}

/// Items from the encoder's property-test generators (`tests/support/dynamodb_values.rs`: every
/// kind, awkward text and names, numbers in several spellings, nesting to 32), each with a
/// unique `pk`. The seed is `$DDB_EXPORT_ION_SEED` or random, and printed.
fn generated_items(count: usize) -> Vec<crate::items::Item> {
    let seed: u64 = std::env::var("DDB_EXPORT_ION_SEED")
        .ok()
        .map(|s| s.parse().expect("DDB_EXPORT_ION_SEED is a u64"))
        .unwrap_or_else(rand_seed);
    eprintln!("generated items from DDB_EXPORT_ION_SEED={seed}");
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes);
    let mut runner = TestRunner::new_with_rng(Config::default(), rng);
    let strategy = dynamodb_values::item();
    (0..count)
        .map(|i| {
            let item = strategy.new_tree(&mut runner).expect("an item").current();
            let mut item = attribute_item(&item);
            item.insert("pk".into(), AttributeValue::S(format!("generated#{i:04}")));
            item
        })
        .collect()
}

fn rand_seed() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now())
}

#[tokio::test]
async fn ion_generated_items_read_back_equal_to_a_scan() {
    let standins = Standins::start();
    let dynamodb = standins.dynamodb();
    let seeded = generated_items(300);
    util::create_table(&dynamodb, "ion-generated", &seeded).await;
    let table = util::scan_all(&dynamodb, "ion-generated").await;
    assert_eq!(table.len(), seeded.len());
    let expected = util::sorted_canonical(table.iter().map(util::canonical));

    let out_dir = tempfile::tempdir().unwrap();
    let output = util::run(
        standins
            .command()
            .args(["export", "--table", "ion-generated", "--format", "ion", "--segments", "3", "--to"])
            .arg(out_dir.path()),
    );
    let summary_key = completed(&output, table.len());
    assert_same_items(&util::independent_check(out_dir.path(), &summary_key), &expected, "the ION export");
    // `ddb-export verify` reads every line with its own Ion syntax check.
    let root = out_dir.path().join(summary_key.trim_end_matches("/manifest-summary.json"));
    let verified = util::run(std::process::Command::new(env!("CARGO_BIN_EXE_ddb-export")).arg("verify").arg(&root));
    assert!(verified.status.success(), "{}", String::from_utf8_lossy(&verified.stdout));
}
