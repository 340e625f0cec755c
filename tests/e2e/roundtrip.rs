//! Property tests through the host's real packer: arbitrary `AttributeValue` items ->
//! `pack_page` -> the encoder (the guest's natively, many cases; the real component, fewer) ->
//! gunzip -> serde_json -> `AttributeValue` again, equal to the input.
//!
//! The items stay within what DynamoDB accepts: non-empty attribute names; `S` and `B` may be
//! empty (also inside sets, lists and maps); sets non-empty with unique elements (`NS` unique
//! by value); numbers of at most 38 significant digits with a magnitude from 1E-130 to
//! 9.99…E+125, in several spellings (the encoder copies `N` verbatim: FORMAT.md); `L`/`M`
//! nested at most 32 levels. The guest's own unit tests (`guest/src/roundtrip_tests.rs`) run the
//! same property from its test-only page writer.

use std::collections::{BTreeSet, HashMap};
use std::io::Read as _;
use std::time::Instant;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine as _;
use ddb_export::component::{Session, check_data_file_key, pack_page};
use ddb_export::model::{
    Billing, EncoderEvent, EncoderOptions, ExportFormat, Snapshot, SnapshotRequest, SseAlgorithm, TableInfo,
};
use ddb_export::{CacheDir, ComponentRuntime, ComponentSource, GuestLimits};
use ddb_export_guest::encoder::ShardEncoder;
use ddb_export_guest::wit as guest;
use md5::{Digest, Md5};
use proptest::collection::{btree_map, btree_set, hash_map, vec};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

type Item = HashMap<String, AttributeValue>;

/// DynamoDB's nesting limit for `L` and `M`.
const MAX_DEPTH: usize = 32;

// ---------------------------------------------------------------------------------------------
// Generators

/// Characters that break naive JSON writers, plus the edges of the Unicode ranges.
const AWKWARD: &str = "\"\\/\n\r\t\u{0}\u{1}\u{8}\u{c}\u{1f} \u{7f}\u{80}\u{9f}\u{a0}\u{ad}\u{2028}\u{2029}\u{d7ff}\u{e000}\
    \u{feff}\u{fffd}\u{fffe}\u{ffff}\u{10000}\u{1f389}\u{10ffff}éß日{}[]:,";

/// A character from a `u32` (cheap to generate, shrinks towards ' '): half printable ASCII, a
/// quarter [`AWKWARD`], a quarter anything.
fn text_char(x: u32) -> char {
    let rest = x / 8;
    match x % 8 {
        0..=3 => char::from(b' ' + (rest % 95) as u8),
        4 | 5 => AWKWARD.chars().nth(rest as usize % AWKWARD.chars().count()).unwrap_or('"'),
        _ => char::from_u32(rest % 0x11_0000).unwrap_or('\u{fffd}'),
    }
}

fn text(len: std::ops::Range<usize>) -> impl Strategy<Value = String> {
    vec(any::<u32>(), len).prop_map(|chars| chars.into_iter().map(text_char).collect())
}

/// An attribute or map key name: DynamoDB refuses empty names.
fn name() -> impl Strategy<Value = String> {
    text(1..8)
}

/// A non-zero number's value: sign, significant digits (no leading or trailing zero) and the
/// decimal exponent of the first digit. Two numbers are equal exactly when their keys are.
type NumberKey = (bool, Vec<u8>, i32);

fn number_key() -> impl Strategy<Value = NumberKey> {
    (any::<bool>(), vec(0u8..10, 1..=38)).prop_flat_map(|(negative, mut digits)| {
        if digits[0] == 0 {
            digits[0] = 1;
        }
        let last = digits.len() - 1;
        if digits[last] == 0 {
            digits[last] = 7;
        }
        // Every digit at or above 1E-130, the first at or below 1E+125.
        let lowest = -130 + last as i32;
        prop_oneof![3 => -12i32..=12, 1 => lowest..=125, 1 => Just(lowest), 1 => Just(125)]
            .prop_map(move |e| (negative, digits.clone(), e.max(lowest)))
    })
}

/// The ways a number may be spelled; DynamoDB itself returns the plain or the `E` form.
#[derive(Debug, Clone, Copy)]
enum Spelling {
    Plain,
    Exponent { upper: bool, plus: bool },
    LeadingZeros(usize),
    TrailingZeros(usize),
}

fn spelling() -> impl Strategy<Value = Spelling> {
    prop_oneof![
        3 => Just(Spelling::Plain),
        3 => (any::<bool>(), any::<bool>()).prop_map(|(upper, plus)| Spelling::Exponent { upper, plus }),
        1 => (1usize..4).prop_map(Spelling::LeadingZeros),
        1 => (1usize..4).prop_map(Spelling::TrailingZeros),
    ]
}

/// `None` is zero.
fn spell(key: Option<&NumberKey>, spelling: Spelling) -> String {
    let Some((negative, digits, e)) = key else {
        return "0".into();
    };
    let digits: String = digits.iter().map(|d| char::from(b'0' + d)).collect();
    let sign = if *negative { "-" } else { "" };
    let plain = |digits: &str| {
        let k = digits.len() as i32;
        if *e < 0 {
            format!("0.{}{digits}", "0".repeat((-e - 1) as usize))
        } else if *e >= k - 1 {
            format!("{digits}{}", "0".repeat((e - (k - 1)) as usize))
        } else {
            format!("{}.{}", &digits[..=*e as usize], &digits[*e as usize + 1..])
        }
    };
    let exponent = |upper: bool, plus: bool| {
        let (first, rest) = digits.split_at(1);
        let mantissa = if rest.is_empty() { first.to_string() } else { format!("{first}.{rest}") };
        let sign = if *e < 0 {
            "-"
        } else if plus {
            "+"
        } else {
            ""
        };
        format!("{mantissa}{}{sign}{}", if upper { 'E' } else { 'e' }, e.abs())
    };
    let body = match spelling {
        // Plain only where it stays short; DynamoDB's own output switches to E there too.
        Spelling::Plain if (-20..=40).contains(e) => plain(&digits),
        Spelling::LeadingZeros(n) if (0..=40).contains(e) => format!("{}{}", "0".repeat(n), plain(&digits)),
        Spelling::TrailingZeros(n) if (-20..=40).contains(e) && digits.len() + n <= 38 => {
            let p = plain(&digits);
            if p.contains('.') { format!("{p}{}", "0".repeat(n)) } else { format!("{p}.{}", "0".repeat(n)) }
        }
        Spelling::Exponent { upper, plus } => exponent(upper, plus),
        _ => exponent(true, true),
    };
    format!("{sign}{body}")
}

fn number() -> impl Strategy<Value = String> {
    (prop::option::weighted(0.95, number_key()), spelling()).prop_map(|(key, s)| spell(key.as_ref(), s))
}

/// A number set: unique by value, each element spelled its own way.
fn number_set() -> impl Strategy<Value = Vec<String>> {
    btree_map(prop::option::weighted(0.9, number_key()), spelling(), 1..6)
        .prop_map(|set| set.iter().map(|(key, s)| spell(key.as_ref(), *s)).collect::<Vec<_>>())
        .prop_shuffle()
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![3 => vec(any::<u8>(), 0..8), 1 => vec(any::<u8>(), 0..200)]
}

fn scalar_or_set() -> impl Strategy<Value = AttributeValue> {
    prop_oneof![
        4 => text(0..12).prop_map(AttributeValue::S),
        1 => text(0..400).prop_map(AttributeValue::S),
        4 => number().prop_map(AttributeValue::N),
        2 => bytes().prop_map(|b| AttributeValue::B(Blob::new(b))),
        1 => any::<bool>().prop_map(AttributeValue::Bool),
        1 => Just(AttributeValue::Null(true)),
        1 => btree_set(text(0..8), 1..6)
            .prop_map(|s| s.into_iter().collect::<Vec<_>>())
            .prop_shuffle()
            .prop_map(AttributeValue::Ss),
        1 => number_set().prop_map(AttributeValue::Ns),
        1 => btree_set(bytes(), 1..6)
            .prop_map(|s| s.into_iter().map(Blob::new).collect::<Vec<_>>())
            .prop_shuffle()
            .prop_map(AttributeValue::Bs),
    ]
}

/// Levels of `L`/`M` in a value: 0 for a scalar or a set.
fn depth(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::L(list) => 1 + list.iter().map(depth).max().unwrap_or(0),
        AttributeValue::M(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// A value: mostly small trees, sometimes wrapped in a chain of containers up to the 32 levels
/// DynamoDB allows.
fn value() -> impl Strategy<Value = AttributeValue> {
    let tree = scalar_or_set().prop_recursive(6, 24, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..5).prop_map(AttributeValue::L),
            hash_map(name(), inner, 0..5).prop_map(AttributeValue::M),
        ]
    });
    let chained = (tree.clone(), prop_oneof![0..=MAX_DEPTH, Just(MAX_DEPTH)], vec(any::<bool>(), MAX_DEPTH), name())
        .prop_map(|(tree, levels, kinds, key)| {
            let levels = levels.min(MAX_DEPTH - depth(&tree));
            kinds[..levels].iter().fold(tree, |inner, &is_map| {
                if is_map {
                    AttributeValue::M(HashMap::from([(key.clone(), inner)]))
                } else {
                    AttributeValue::L(vec![inner])
                }
            })
        });
    prop_oneof![12 => tree, 1 => chained]
}

/// An item of 1 to 6 attributes.
fn item() -> impl Strategy<Value = Item> {
    hash_map(name(), value(), 1..7)
}

/// A shard's worth of items, cut into pages, and how the encoder is set up.
#[derive(Debug, Clone)]
struct Case {
    items: Vec<Item>,
    /// Page sizes, used in turn until the items run out (0: an empty page).
    page_sizes: Vec<usize>,
    target_file_bytes: u64,
    compression_level: u8,
}

fn case() -> impl Strategy<Value = Case> {
    (
        vec(item(), 0..16),
        vec(prop_oneof![1 => Just(0usize), 6 => 1usize..8], 1..6),
        prop_oneof![1 => Just(0u64), 3 => 1u64..2_000],
        0u8..=9,
    )
        .prop_map(|(items, page_sizes, target_file_bytes, compression_level)| Case {
            items,
            page_sizes,
            target_file_bytes,
            compression_level,
        })
}

fn pages(items: &[Item], sizes: &[usize]) -> Vec<Vec<Item>> {
    let mut pages = Vec::new();
    let mut rest = items;
    for &size in sizes.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        // A whole cycle of empty pages would never end.
        let size = if sizes.iter().all(|&s| s == 0) { rest.len() } else { size.min(rest.len()) };
        let (page, tail) = rest.split_at(size);
        pages.push(page.to_vec());
        rest = tail;
    }
    pages
}

// ---------------------------------------------------------------------------------------------
// Reading lines back with serde_json

/// JSON with objects as ordered lists of entries, so a name written twice is seen.
#[derive(Debug)]
enum Json {
    Null,
    Bool(bool),
    Number,
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl<'de> serde::Deserialize<'de> for Json {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Json;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("JSON")
            }
            fn visit_unit<E>(self) -> Result<Json, E> {
                Ok(Json::Null)
            }
            fn visit_bool<E>(self, b: bool) -> Result<Json, E> {
                Ok(Json::Bool(b))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Json, E> {
                Ok(Json::Number)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Json, E> {
                Ok(Json::Number)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Json, E> {
                Ok(Json::Number)
            }
            fn visit_str<E>(self, s: &str) -> Result<Json, E> {
                Ok(Json::String(s.to_string()))
            }
            fn visit_string<E>(self, s: String) -> Result<Json, E> {
                Ok(Json::String(s))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
                let mut out = Vec::new();
                while let Some(element) = seq.next_element()? {
                    out.push(element);
                }
                Ok(Json::Array(out))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    out.push(entry);
                }
                Ok(Json::Object(out))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// An `M` or an item: names strictly ascending (the default component sorts them), so also
/// none twice.
fn map_from_json(entries: Vec<(String, Json)>) -> Result<Item, String> {
    if let Some(pair) = entries.windows(2).find(|pair| pair[0].0 >= pair[1].0) {
        return Err(format!("names out of order or repeated: {:?} then {:?}", pair[0].0, pair[1].0));
    }
    if entries.iter().any(|(name, _)| name.is_empty()) {
        return Err("an empty attribute name".into());
    }
    entries.into_iter().map(|(name, json)| Ok((name, av_from_json(json)?))).collect()
}

fn string(json: Json) -> Result<String, String> {
    match json {
        Json::String(s) => Ok(s),
        other => Err(format!("expected a string, got {other:?}")),
    }
}

fn blob(json: Json) -> Result<Blob, String> {
    // data-encoding, not the base64 crate the writer uses; strict about padding.
    let s = string(json)?;
    data_encoding::BASE64.decode(s.as_bytes()).map(Blob::new).map_err(|e| format!("base64 {s:?}: {e}"))
}

fn set<T>(
    json: Json,
    element: impl Fn(Json) -> Result<T, String>,
    key: impl Fn(&T) -> Vec<u8>,
) -> Result<Vec<T>, String> {
    let Json::Array(elements) = json else { return Err(format!("a set is not an array: {json:?}")) };
    let set: Vec<T> = elements.into_iter().map(element).collect::<Result<_, _>>()?;
    if set.is_empty() {
        return Err("an empty set".into());
    }
    if set.iter().map(key).collect::<BTreeSet<_>>().len() != set.len() {
        return Err("a set holds an element twice".into());
    }
    Ok(set)
}

fn av_from_json(json: Json) -> Result<AttributeValue, String> {
    let Json::Object(mut entries) = json else { return Err(format!("an AttributeValue is not an object: {json:?}")) };
    if entries.len() != 1 {
        return Err(format!("an AttributeValue has {} entries, not 1", entries.len()));
    }
    let (tag, payload) = entries.pop().expect("one entry");
    let text = |s: &String| s.as_bytes().to_vec();
    Ok(match (tag.as_str(), payload) {
        ("S", payload) => AttributeValue::S(string(payload)?),
        ("N", payload) => AttributeValue::N(string(payload)?),
        ("B", payload) => AttributeValue::B(blob(payload)?),
        ("BOOL", Json::Bool(b)) => AttributeValue::Bool(b),
        ("NULL", Json::Bool(true)) => AttributeValue::Null(true),
        ("SS", payload) => AttributeValue::Ss(set(payload, string, text)?),
        ("NS", payload) => AttributeValue::Ns(set(payload, string, text)?),
        ("BS", payload) => AttributeValue::Bs(set(payload, blob, |b| b.as_ref().to_vec())?),
        ("L", Json::Array(list)) => AttributeValue::L(list.into_iter().map(av_from_json).collect::<Result<_, _>>()?),
        ("M", Json::Object(entries)) => AttributeValue::M(map_from_json(entries)?),
        (tag, payload) => return Err(format!("not an AttributeValue: {tag:?}: {payload:?}")),
    })
}

/// One line: exactly `{"Item":{...}}`.
fn item_from_line(line: &str) -> Result<Item, String> {
    let json: Json = serde_json::from_str(line).map_err(|e| format!("not JSON ({e}): {line:?}"))?;
    match json {
        Json::Object(mut entries) if entries.len() == 1 && entries[0].0 == "Item" => match entries.pop() {
            Some((_, Json::Object(item))) => map_from_json(item),
            other => Err(format!("Item is not an object: {other:?}")),
        },
        other => Err(format!("a line is not {{\"Item\":{{...}}}}: {other:?}")),
    }
}

/// Sets compared as sets: their elements sorted.
fn sets_sorted(value: &AttributeValue) -> AttributeValue {
    match value {
        AttributeValue::Ss(set) => {
            AttributeValue::Ss(set.iter().cloned().collect::<BTreeSet<_>>().into_iter().collect())
        }
        AttributeValue::Ns(set) => {
            AttributeValue::Ns(set.iter().cloned().collect::<BTreeSet<_>>().into_iter().collect())
        }
        AttributeValue::Bs(set) => {
            let mut set = set.clone();
            set.sort_by(|a, b| a.as_ref().cmp(b.as_ref()));
            AttributeValue::Bs(set)
        }
        AttributeValue::L(list) => AttributeValue::L(list.iter().map(sets_sorted).collect()),
        AttributeValue::M(map) => AttributeValue::M(item_sets_sorted(map)),
        other => other.clone(),
    }
}

fn item_sets_sorted(item: &Item) -> Item {
    item.iter().map(|(k, v)| (k.clone(), sets_sorted(v))).collect()
}

// ---------------------------------------------------------------------------------------------
// Checking an encoder's output

/// An encoder event, from either encoder.
enum Event {
    Started(String),
    Bytes(Vec<u8>),
    Finished { key: String, item_count: u64, md5: String, size_bytes: u64 },
}

impl From<guest::Output> for Event {
    fn from(output: guest::Output) -> Self {
        match output {
            guest::Output::FileStarted(key) => Event::Started(key),
            guest::Output::Bytes(bytes) => Event::Bytes(bytes),
            guest::Output::FileFinished(f) => {
                Event::Finished { key: f.key, item_count: f.item_count, md5: f.md5, size_bytes: f.size_bytes }
            }
        }
    }
}

impl From<EncoderEvent> for Event {
    fn from(event: EncoderEvent) -> Self {
        match event {
            EncoderEvent::FileStarted(key) => Event::Started(key),
            EncoderEvent::Bytes(bytes) => Event::Bytes(bytes),
            EncoderEvent::FileFinished(f) => {
                Event::Finished { key: f.key, item_count: f.item_count, md5: f.md5, size_bytes: f.size_bytes }
            }
        }
    }
}

/// Checks the event sequence, every file's facts, every line's shape, and that the lines read
/// back are the case's items, in order (one shard's encoder keeps them in order, which implies
/// the same multiset).
fn check_output(
    case: &Case,
    events: Vec<Event>,
    check_key: impl Fn(&str) -> Result<(), String>,
) -> Result<(), TestCaseError> {
    let mut files: Vec<(String, Vec<u8>, u64, String, u64)> = Vec::new();
    let mut open: Option<(String, Vec<u8>)> = None;
    for event in events {
        match event {
            Event::Started(key) => {
                prop_assert!(open.is_none(), "file {key} started while another was open");
                check_key(&key).map_err(TestCaseError::fail)?;
                prop_assert!(files.iter().all(|f| f.0 != key), "key {key} twice");
                open = Some((key, Vec::new()));
            }
            Event::Bytes(bytes) => match open.as_mut() {
                Some((_, file)) => file.extend(bytes),
                None => return Err(TestCaseError::fail("bytes outside a file")),
            },
            Event::Finished { key, item_count, md5, size_bytes } => {
                let Some((started, bytes)) = open.take() else {
                    return Err(TestCaseError::fail("finished, never started"));
                };
                prop_assert_eq!(&key, &started);
                files.push((key, bytes, item_count, md5, size_bytes));
            }
        }
    }
    prop_assert!(open.is_none(), "a file is still open after finish");
    prop_assert_eq!(files.is_empty(), case.items.is_empty(), "a file exactly when there are items");
    if case.target_file_bytes == 0 {
        prop_assert!(files.len() <= 1, "target 0 wrote {} files", files.len());
    }
    let mut read_back = Vec::new();
    for (index, (_, bytes, item_count, md5, size_bytes)) in files.iter().enumerate() {
        prop_assert_eq!(*size_bytes, bytes.len() as u64);
        prop_assert_eq!(md5, &base64::engine::general_purpose::STANDARD.encode(Md5::digest(bytes)));
        // Only the last file may stay under the target: the others closed because they reached it.
        if index + 1 < files.len() {
            prop_assert!(*size_bytes >= case.target_file_bytes, "file {index} closed early");
        }
        let mut text = String::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_string(&mut text)
            .map_err(|e| TestCaseError::fail(format!("file {index} does not gunzip to UTF-8: {e}")))?;
        prop_assert!(text.ends_with('\n'), "file {index} does not end with a newline");
        let lines: Vec<&str> = text[..text.len() - 1].split('\n').collect();
        prop_assert_eq!(lines.len() as u64, *item_count, "file {}'s item count", index);
        for line in lines {
            read_back.push(item_from_line(line).map_err(TestCaseError::fail)?);
        }
    }
    prop_assert_eq!(files.iter().map(|f| f.2).sum::<u64>(), case.items.len() as u64);
    let expected: Vec<Item> = case.items.iter().map(item_sets_sorted).collect();
    let actual: Vec<Item> = read_back.iter().map(item_sets_sorted).collect();
    prop_assert_eq!(actual, expected);
    Ok(())
}

fn runner(cases: u32) -> TestRunner {
    // No regression files in the source tree; a failure prints its minimal case instead.
    TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() })
}

fn shrunk<T: std::fmt::Debug>(result: Result<(), proptest::test_runner::TestError<T>>) {
    if let Err(error) = result {
        panic!("{error}");
    }
}

// ---------------------------------------------------------------------------------------------
// (a) the host's packer and the guest's encoder, natively

fn guest_snapshot() -> guest::ExportSnapshot {
    let table = guest::TableDescription {
        table_name: "orders".into(),
        table_arn: "arn:aws:dynamodb:eu-west-1:123456789012:table/orders".into(),
        table_id: None,
        item_count: 0,
        table_size_bytes: 0,
        billing: guest::Billing::OnDemand,
    };
    let request = guest::ExportRequest {
        s3_bucket: "bucket".into(),
        s3_prefix: Some("p".into()),
        s3_bucket_owner: None,
        s3_sse_algorithm: guest::SseAlgorithm::Aes256,
        s3_sse_kms_key_id: None,
        export_format: guest::ExportFormat::DynamodbJson,
        client_token: "token".into(),
        start_time_ms: 1_700_000_000_000,
        region: "eu-west-1".into(),
    };
    ddb_export_guest::snapshot::create(table, request).expect("a valid request")
}

#[test]
fn roundtrip_packed_pages_through_the_native_encoder() {
    let snapshot = guest_snapshot();
    let started = Instant::now();
    shrunk(runner(512).run(&case(), |case| {
        let options = guest::EncoderOptions {
            shard_id: 2,
            target_file_bytes: case.target_file_bytes,
            compression_level: case.compression_level,
            first_sequence: 0,
        };
        let mut encoder = ShardEncoder::open(&snapshot, options).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
        let mut packed = Vec::new();
        let mut events: Vec<Event> = Vec::new();
        for page in pages(&case.items, &case.page_sizes) {
            pack_page(&page, &mut packed).map_err(|e| TestCaseError::fail(format!("pack: {e}")))?;
            let output = encoder.encode_page(&packed).map_err(|e| TestCaseError::fail(format!("encode: {e:?}")))?;
            events.extend(output.into_iter().map(Event::from));
        }
        events
            .extend(encoder.finish().map_err(|e| TestCaseError::fail(format!("{e:?}")))?.into_iter().map(Event::from));
        let prefix = snapshot.keys.data_prefix.clone();
        check_output(&case, events, |key| {
            if key.starts_with(&prefix) && key.ends_with(".json.gz") { Ok(()) } else { Err(format!("key {key}")) }
        })
    }));
    eprintln!("512 cases through the native encoder in {:?}", started.elapsed());
}

// ---------------------------------------------------------------------------------------------
// (b) the real component under the host's limits

fn table() -> TableInfo {
    TableInfo {
        table_name: "orders".into(),
        table_arn: "arn:aws:dynamodb:eu-west-1:123456789012:table/orders".into(),
        table_id: None,
        item_count: 0,
        table_size_bytes: 0,
        billing: Billing::OnDemand,
    }
}

fn request() -> SnapshotRequest {
    SnapshotRequest {
        s3_bucket: "bucket".into(),
        s3_prefix: Some("p".into()),
        s3_bucket_owner: None,
        s3_sse_algorithm: SseAlgorithm::Aes256,
        s3_sse_kms_key_id: None,
        export_format: ExportFormat::DynamodbJson,
        client_token: "token".into(),
        start_time_ms: 1_700_000_000_000,
        region: "eu-west-1".into(),
    }
}

fn through_component(session: Session, snapshot: &Snapshot, case: &Case) -> Result<Vec<Event>, String> {
    let options = EncoderOptions {
        shard_id: 2,
        target_file_bytes: case.target_file_bytes,
        compression_level: case.compression_level,
        first_sequence: 0,
    };
    let mut encoder = session.open_encoder(snapshot, &options).map_err(|e| e.to_string())?;
    let mut events = Vec::new();
    for page in pages(&case.items, &case.page_sizes) {
        events.extend(encoder.encode_page(&page).map_err(|e| e.to_string())?.into_iter().map(Event::from));
    }
    events.extend(encoder.finish().map_err(|e| e.to_string())?.into_iter().map(Event::from));
    Ok(events)
}

#[test]
fn roundtrip_packed_pages_through_the_real_component() {
    let runtime = ComponentRuntime::load(&ComponentSource::Default, GuestLimits::default(), &CacheDir::Disabled)
        .expect("the default component loads");
    let started = Instant::now();
    shrunk(runner(64).run(&case(), |case| {
        let mut session = runtime.session().map_err(|e| TestCaseError::fail(e.to_string()))?;
        let snapshot = session.snapshot(&table(), &request()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let events = through_component(session, &snapshot, &case).map_err(TestCaseError::fail)?;
        check_output(&case, events, |key| check_data_file_key(&snapshot, key))
    }));
    eprintln!("64 cases through the component in {:?}", started.elapsed());
}
