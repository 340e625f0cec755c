//! The shared half of the encoder's property tests: arbitrary DynamoDB items as an owned value
//! type ([`Av`]), the cases that cut them into pages, and an independent checker of what an
//! encoder writes (its file events, each file's facts, and every line read back by serde_json,
//! not by our writer, into [`Av`] again).
//!
//! Two test modules include this file with `#[path = "..."] mod`: the guest's unit tests
//! (`guest/src/roundtrip_tests.rs`, from its test-only page writer) and the host's e2e tests
//! (`tests/e2e/roundtrip.rs`, through the host's `pack_page` and the real component). The guest's
//! side is a `#[cfg(test)]` module, which no other crate can import, so the file is included by
//! path instead of shared as a crate. It therefore uses only what both crates already depend on
//! (std, proptest, serde, serde_json, data-encoding, base64, md-5, flate2) and names nothing of
//! either crate; each side keeps only its conversion from [`Av`] to its own item type and its
//! encoder driver, and turns its encoder's output into [`Event`]s.
//!
//! The generated items stay within what DynamoDB accepts: attribute names are non-empty;
//! `S` and `B` may be empty (also inside sets, lists and maps); sets are non-empty with unique
//! elements (`NS` unique by value); numbers have at most 38 significant digits and a magnitude
//! between 1E-130 and 9.99…E+125; `L`/`M` nest at most [`MAX_DEPTH`] levels. `N` is written
//! verbatim (FORMAT.md: digits preserved exactly), so it is compared as a string, in several
//! spellings.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read as _;

use base64::Engine as _;
use md5::{Digest, Md5};
use proptest::collection::{btree_map, btree_set, vec};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};

/// DynamoDB's nesting limit for `L` and `M`.
pub const MAX_DEPTH: usize = 32;

/// An owned AttributeValue. Sets keep the order they are written in; the checker compares them
/// as sets.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Av {
    S(String),
    N(String),
    B(Vec<u8>),
    Bool(bool),
    Null,
    Ss(Vec<String>),
    Ns(Vec<String>),
    Bs(Vec<Vec<u8>>),
    L(Vec<Av>),
    M(BTreeMap<String, Av>),
}

pub type Item = BTreeMap<String, Av>;

/// Sets compared as sets: their elements sorted.
fn canonical(value: &Av) -> Av {
    fn sorted<T: Ord + Clone>(set: &[T]) -> Vec<T> {
        let mut set = set.to_vec();
        set.sort();
        set
    }
    match value {
        Av::Ss(set) => Av::Ss(sorted(set)),
        Av::Ns(set) => Av::Ns(sorted(set)),
        Av::Bs(set) => Av::Bs(sorted(set)),
        Av::L(list) => Av::L(list.iter().map(canonical).collect()),
        Av::M(map) => Av::M(canonical_map(map)),
        other => other.clone(),
    }
}

fn canonical_map(map: &Item) -> Item {
    map.iter().map(|(k, v)| (k.clone(), canonical(v))).collect()
}

/// Levels of `L`/`M` in a value: 0 for a scalar or a set.
fn depth(value: &Av) -> usize {
    match value {
        Av::L(list) => 1 + list.iter().map(depth).max().unwrap_or(0),
        Av::M(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

// ---------------------------------------------------------------------------------------------
// Generators

/// Characters that break naive JSON writers, plus the edges of the Unicode ranges.
const AWKWARD: &str = "\"\\/\n\r\t\u{0}\u{1}\u{8}\u{c}\u{1f} \u{7f}\u{80}\u{9f}\u{a0}\u{ad}\u{2028}\u{2029}\u{d7ff}\u{e000}\
    \u{feff}\u{fffd}\u{fffe}\u{ffff}\u{10000}\u{1f389}\u{10ffff}éß日{}[]:,";

/// A character from a `u32` (cheaper to generate than a union of char strategies, and it
/// shrinks towards ' '): half printable ASCII, a quarter [`AWKWARD`], a quarter anything.
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

fn scalar_or_set() -> impl Strategy<Value = Av> {
    prop_oneof![
        4 => text(0..12).prop_map(Av::S),
        1 => text(0..400).prop_map(Av::S),
        4 => number().prop_map(Av::N),
        2 => bytes().prop_map(Av::B),
        1 => any::<bool>().prop_map(Av::Bool),
        1 => Just(Av::Null),
        1 => btree_set(text(0..8), 1..6).prop_map(|s| s.into_iter().collect::<Vec<_>>()).prop_shuffle().prop_map(Av::Ss),
        1 => number_set().prop_map(Av::Ns),
        1 => btree_set(bytes(), 1..6).prop_map(|s| s.into_iter().collect::<Vec<_>>()).prop_shuffle().prop_map(Av::Bs),
    ]
}

/// A value: mostly small trees, sometimes wrapped in a chain of containers up to the 32 levels
/// DynamoDB allows.
fn value() -> impl Strategy<Value = Av> {
    let tree = scalar_or_set().prop_recursive(6, 24, 4, |inner| {
        prop_oneof![vec(inner.clone(), 0..5).prop_map(Av::L), btree_map(name(), inner, 0..5).prop_map(Av::M),]
    });
    let chained = (tree.clone(), prop_oneof![0..=MAX_DEPTH, Just(MAX_DEPTH)], vec(any::<bool>(), MAX_DEPTH), name())
        .prop_map(|(tree, levels, kinds, key)| {
            let levels = levels.min(MAX_DEPTH - depth(&tree));
            kinds[..levels].iter().fold(tree, |inner, &is_map| {
                if is_map { Av::M(BTreeMap::from([(key.clone(), inner)])) } else { Av::L(vec![inner]) }
            })
        });
    prop_oneof![12 => tree, 1 => chained]
}

/// An item of 1 to 6 attributes.
pub fn item() -> impl Strategy<Value = Item> {
    btree_map(name(), value(), 1..7)
}

/// A shard's worth of items, cut into pages, and how the encoder is set up.
#[derive(Debug, Clone)]
pub struct Case {
    pub items: Vec<Item>,
    /// Page sizes, used in turn until the items run out (0: an empty page).
    pub page_sizes: Vec<usize>,
    pub target_file_bytes: u64,
    pub compression_level: u8,
}

pub fn case() -> impl Strategy<Value = Case> {
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

/// The case's items cut into pages of its page sizes, in order.
pub fn pages(case: &Case) -> Vec<&[Item]> {
    let sizes = &case.page_sizes;
    let mut pages = Vec::new();
    let mut rest = &case.items[..];
    for &size in sizes.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        // A whole cycle of empty pages would never end.
        let size = if sizes.iter().all(|&s| s == 0) { rest.len() } else { size.min(rest.len()) };
        let (page, tail) = rest.split_at(size);
        pages.push(page);
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

fn binary(json: Json) -> Result<Vec<u8>, String> {
    match json {
        // data-encoding, not the base64 crate the writer uses; strict about padding.
        Json::String(s) => data_encoding::BASE64.decode(s.as_bytes()).map_err(|e| format!("base64 {s:?}: {e}")),
        other => Err(format!("binary is not a string: {other:?}")),
    }
}

fn string(json: Json) -> Result<String, String> {
    match json {
        Json::String(s) => Ok(s),
        other => Err(format!("expected a string, got {other:?}")),
    }
}

fn set<T: Ord + Clone>(json: Json, element: impl Fn(Json) -> Result<T, String>) -> Result<Vec<T>, String> {
    let Json::Array(elements) = json else { return Err(format!("a set is not an array: {json:?}")) };
    let set: Vec<T> = elements.into_iter().map(element).collect::<Result<_, _>>()?;
    if set.is_empty() {
        return Err("an empty set".into());
    }
    if set.iter().collect::<BTreeSet<_>>().len() != set.len() {
        return Err("a set holds an element twice".into());
    }
    Ok(set)
}

fn av_from_json(json: Json) -> Result<Av, String> {
    let Json::Object(mut entries) = json else { return Err(format!("an AttributeValue is not an object: {json:?}")) };
    if entries.len() != 1 {
        return Err(format!("an AttributeValue has {} entries, not 1", entries.len()));
    }
    let (tag, payload) = entries.pop().expect("one entry");
    Ok(match (tag.as_str(), payload) {
        ("S", payload) => Av::S(string(payload)?),
        ("N", payload) => Av::N(string(payload)?),
        ("B", payload) => Av::B(binary(payload)?),
        ("BOOL", Json::Bool(b)) => Av::Bool(b),
        ("NULL", Json::Bool(true)) => Av::Null,
        ("SS", payload) => Av::Ss(set(payload, string)?),
        ("NS", payload) => Av::Ns(set(payload, string)?),
        ("BS", payload) => Av::Bs(set(payload, binary)?),
        ("L", Json::Array(list)) => Av::L(list.into_iter().map(av_from_json).collect::<Result<_, _>>()?),
        ("M", Json::Object(entries)) => Av::M(map_from_json(entries)?),
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

// ---------------------------------------------------------------------------------------------
// Checking an encoder's output

/// An encoder event; each side converts its encoder's output into these.
pub enum Event {
    Started(String),
    Bytes(Vec<u8>),
    Finished { key: String, item_count: u64, md5: String, size_bytes: u64 },
}

/// One finished data file.
struct File {
    bytes: Vec<u8>,
    item_count: u64,
    md5: String,
    size_bytes: u64,
}

/// Checks the event sequence, every file's key (unique, and as `check_key` says) and facts,
/// every line's shape, and that the lines read back are the case's items, in order (one shard's
/// encoder keeps them in order, which implies the same multiset), sets compared as sets.
pub fn check_output(
    case: &Case,
    events: Vec<Event>,
    check_key: impl Fn(&str) -> Result<(), String>,
) -> Result<(), TestCaseError> {
    let mut files = Vec::new();
    let mut keys = BTreeSet::new();
    let mut open: Option<(String, Vec<u8>)> = None;
    for event in events {
        match event {
            Event::Started(key) => {
                prop_assert!(open.is_none(), "file {key} started while another was open");
                check_key(&key).map_err(TestCaseError::fail)?;
                prop_assert!(keys.insert(key.clone()), "key {key} twice");
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
                files.push(File { bytes, item_count, md5, size_bytes });
            }
        }
    }
    prop_assert!(open.is_none(), "a file is still open after finish");
    prop_assert_eq!(files.is_empty(), case.items.is_empty(), "a file exactly when there are items");
    if case.target_file_bytes == 0 {
        prop_assert!(files.len() <= 1, "target 0 wrote {} files", files.len());
    }
    let mut read_back = Vec::new();
    for (index, file) in files.iter().enumerate() {
        prop_assert_eq!(file.size_bytes, file.bytes.len() as u64);
        prop_assert_eq!(&file.md5, &base64::engine::general_purpose::STANDARD.encode(Md5::digest(&file.bytes)));
        // Only the last file may stay under the target: the others closed because they reached it.
        if index + 1 < files.len() {
            prop_assert!(file.size_bytes >= case.target_file_bytes, "file {index} closed early");
        }
        let mut text = String::new();
        flate2::read::GzDecoder::new(&file.bytes[..])
            .read_to_string(&mut text)
            .map_err(|e| TestCaseError::fail(format!("file {index} does not gunzip to UTF-8: {e}")))?;
        prop_assert!(text.ends_with('\n'), "file {index} does not end with a newline");
        let lines: Vec<&str> = text[..text.len() - 1].split('\n').collect();
        prop_assert_eq!(lines.len() as u64, file.item_count, "file {}'s item count", index);
        for line in lines {
            read_back.push(item_from_line(line).map_err(TestCaseError::fail)?);
        }
    }
    prop_assert_eq!(files.iter().map(|f| f.item_count).sum::<u64>(), case.items.len() as u64);
    let expected: Vec<Item> = case.items.iter().map(canonical_map).collect();
    let actual: Vec<Item> = read_back.iter().map(canonical_map).collect();
    prop_assert_eq!(actual, expected);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Running

pub fn runner(cases: u32) -> TestRunner {
    // No regression files in the source tree; a failure prints its minimal case instead.
    TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() })
}

/// Panics with the shrunk failing case, if any.
pub fn shrunk<T: std::fmt::Debug>(result: Result<(), TestError<T>>) {
    if let Err(error) = result {
        panic!("{error}");
    }
}
