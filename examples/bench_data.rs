//! The benchmark's tables, item by item, the same wherever they are served (included with
//! `#[path]` by `seed_sample_table` and `fast_dynamodb`).
//!
//! - [`Kind::Realistic`]: ~1 KB items that compress like real tables (about 3x at gzip 6):
//!   ids, dates, prose made of a large vocabulary, prices and counts, a random 120-byte blob,
//!   a map and a list of maps.
//! - [`Kind::Sample`]: the demo's sample item with a filler of one repeated character, which
//!   gzip squeezes about 30x: the easy case.

#![allow(dead_code)]

use std::collections::HashMap;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine as _;

/// Which table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Realistic,
    Sample,
}

impl std::str::FromStr for Kind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "realistic" => Ok(Kind::Realistic),
            "sample" => Ok(Kind::Sample),
            other => Err(format!("{other:?} is not a table kind (realistic, sample)")),
        }
    }
}

/// One AttributeValue, in the order its item lists attributes (not sorted: a server's order is
/// its own).
#[derive(Debug, Clone)]
pub enum V {
    S(String),
    N(String),
    B(Vec<u8>),
    Bool(bool),
    Null,
    Ss(Vec<String>),
    Ns(Vec<String>),
    L(Vec<V>),
    M(Vec<(String, V)>),
}

pub type Item = Vec<(String, V)>;

/// Item `i` of a table of `kind`.
pub fn item(kind: Kind, i: u64) -> Item {
    match kind {
        Kind::Realistic => realistic(i),
        Kind::Sample => sample(i, 800),
    }
}

/// A small deterministic generator (SplitMix64), seeded per item so that any item can be made
/// on its own.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn hex(&mut self, digits: usize) -> String {
        (0..digits).map(|_| char::from(b"0123456789abcdef"[self.below(16) as usize])).collect()
    }

    /// A word of a vocabulary of 4,096, most often one of the common ones (as in real text).
    fn word(&mut self) -> String {
        let rank = (self.below(64) * self.below(64)) as usize;
        vocabulary_word(rank)
    }

    /// `least` to `least + spread - 1` words.
    fn words(&mut self, least: u64, spread: u64) -> String {
        let count = least + self.below(spread);
        (0..count).map(|_| self.word()).collect::<Vec<_>>().join(" ")
    }
}

/// Word `rank` of a made-up vocabulary: syllables, 1 to 4 of them.
fn vocabulary_word(rank: usize) -> String {
    const SYLLABLES: [&str; 24] = [
        "ka", "lo", "mi", "ne", "su", "ta", "ri", "po", "de", "va", "gu", "sho", "tre", "an", "el", "or", "ul", "is",
        "fen", "dar", "qui", "bel", "mor", "zen",
    ];
    let mut n = rank;
    let mut word = String::new();
    loop {
        word.push_str(SYLLABLES[n % SYLLABLES.len()]);
        n /= SYLLABLES.len();
        if n == 0 {
            return word;
        }
    }
}

fn realistic(i: u64) -> Item {
    let mut rng = Rng(i.wrapping_mul(0x2545_f491_4f6c_dd1d) ^ 0x5eed);
    let s = |t: String| V::S(t);
    let day = 1 + rng.below(28);
    let created = 1_700_000_000 + rng.below(50_000_000);
    let lines: Vec<V> = (0..2 + rng.below(3))
        .map(|_| {
            V::M(vec![
                ("sku".into(), s(format!("SKU-{}", rng.hex(10).to_uppercase()))),
                ("qty".into(), V::N((1 + rng.below(9)).to_string())),
                ("price".into(), V::N(format!("{}.{:02}", rng.below(500), rng.below(100)))),
                ("note".into(), s(rng.words(3, 6))),
            ])
        })
        .collect();
    let blob: Vec<u8> = (0..120).map(|_| rng.next() as u8).collect();
    vec![
        ("pk".into(), s(format!("customer#{}#{i:07}", rng.hex(8)))),
        (
            "sk".into(),
            s(format!(
                "order#2026-{:02}-{day:02}T{:02}:{:02}:{:02}Z#{:08}",
                1 + rng.below(12),
                rng.below(24),
                rng.below(60),
                rng.below(60),
                i
            )),
        ),
        ("status".into(), s(["NEW", "PAID", "SHIPPED", "DELIVERED", "RETURNED"][rng.below(5) as usize].into())),
        ("total".into(), V::N(format!("{}.{:02}", rng.below(5_000), rng.below(100)))),
        ("created".into(), V::N(created.to_string())),
        ("paid".into(), V::Bool(rng.below(3) > 0)),
        ("customer".into(), s(format!("{} {}", capitalized(&rng.word()), capitalized(&rng.word())))),
        ("email".into(), s(format!("{}.{}{}@{}.example.com", rng.word(), rng.word(), rng.below(100), rng.word()))),
        ("description".into(), s(rng.words(25, 25))),
        ("signature".into(), V::B(blob)),
        (
            "tags".into(),
            V::Ss({
                let mut tags: Vec<String> = (0..1 + rng.below(4)).map(|t| format!("{}-{t}", rng.word())).collect();
                tags.dedup();
                tags
            }),
        ),
        ("ratings".into(), V::Ns(vec![(1 + rng.below(5)).to_string(), format!("{}.5", rng.below(5))])),
        ("coupon".into(), if rng.below(4) == 0 { s(rng.hex(8)) } else { V::Null }),
        (
            "address".into(),
            V::M(vec![
                ("street".into(), s(format!("{} {} Street", 1 + rng.below(999), capitalized(&rng.word())))),
                ("city".into(), s(capitalized(&rng.word()))),
                ("zip".into(), s(format!("{:05}", rng.below(100_000)))),
                ("country".into(), s(["US", "DE", "FR", "JP", "BR", "IN"][rng.below(6) as usize].into())),
            ]),
        ),
        ("lines".into(), V::L(lines)),
    ]
}

fn capitalized(word: &str) -> String {
    let mut chars = word.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

/// The demo's sample item (`seed_sample_table`'s), every attribute type, with a filler of
/// `filler` repeated characters.
pub fn sample(i: u64, filler: usize) -> Item {
    let s = |v: &str| V::S(v.to_string());
    vec![
        ("pk".into(), s(&format!("item#{i:08}"))),
        ("price".into(), V::N(format!("{}.{:02}", i % 1000, i % 100))),
        ("name".into(), s(&format!("Ünïcode \"quoted\" item {i} ✓"))),
        ("active".into(), V::Bool(i.is_multiple_of(2))),
        ("nothing".into(), V::Null),
        ("blob".into(), V::B((i as u32).to_be_bytes().to_vec())),
        ("tags".into(), V::Ss(vec!["a".into(), format!("t{}", i % 7)])),
        ("scores".into(), V::Ns(vec!["1".into(), format!("{}", i + 2)])),
        (
            "details".into(),
            V::M(vec![
                ("list".into(), V::L(vec![V::N(i.to_string()), s("x")])),
                ("filler".into(), s(&"f".repeat(filler))),
            ]),
        ),
    ]
}

/// The item for the SDK (to seed a table).
pub fn attribute_values(item: &Item) -> HashMap<String, AttributeValue> {
    item.iter().map(|(name, value)| (name.clone(), attribute_value(value))).collect()
}

fn attribute_value(value: &V) -> AttributeValue {
    match value {
        V::S(s) => AttributeValue::S(s.clone()),
        V::N(n) => AttributeValue::N(n.clone()),
        V::B(b) => AttributeValue::B(Blob::new(b.clone())),
        V::Bool(b) => AttributeValue::Bool(*b),
        V::Null => AttributeValue::Null(true),
        V::Ss(s) => AttributeValue::Ss(s.clone()),
        V::Ns(s) => AttributeValue::Ns(s.clone()),
        V::L(l) => AttributeValue::L(l.iter().map(attribute_value).collect()),
        V::M(m) => AttributeValue::M(m.iter().map(|(k, v)| (k.clone(), attribute_value(v))).collect()),
    }
}

/// The item as DynamoDB's API writes it: DynamoDB JSON, attributes in the item's order.
pub fn dynamodb_json(item: &Item, out: &mut Vec<u8>) {
    write_map(out, item);
}

fn write_map(out: &mut Vec<u8>, entries: &[(String, V)]) {
    out.push(b'{');
    for (position, (name, value)) in entries.iter().enumerate() {
        if position > 0 {
            out.push(b',');
        }
        write_string(out, name);
        out.push(b':');
        write_value(out, value);
    }
    out.push(b'}');
}

fn write_value(out: &mut Vec<u8>, value: &V) {
    let tagged = |out: &mut Vec<u8>, tag: &str| {
        out.extend_from_slice(b"{\"");
        out.extend_from_slice(tag.as_bytes());
        out.extend_from_slice(b"\":");
    };
    let strings = |out: &mut Vec<u8>, values: &[String]| {
        out.push(b'[');
        for (position, value) in values.iter().enumerate() {
            if position > 0 {
                out.push(b',');
            }
            write_string(out, value);
        }
        out.push(b']');
    };
    match value {
        V::S(s) => {
            tagged(out, "S");
            write_string(out, s);
        }
        V::N(n) => {
            tagged(out, "N");
            write_string(out, n);
        }
        V::B(b) => {
            tagged(out, "B");
            write_string(out, &base64::engine::general_purpose::STANDARD.encode(b));
        }
        V::Bool(b) => {
            tagged(out, "BOOL");
            out.extend_from_slice(if *b { b"true" } else { b"false" });
        }
        V::Null => {
            tagged(out, "NULL");
            out.extend_from_slice(b"true");
        }
        V::Ss(s) => {
            tagged(out, "SS");
            strings(out, s);
        }
        V::Ns(s) => {
            tagged(out, "NS");
            strings(out, s);
        }
        V::L(values) => {
            tagged(out, "L");
            out.push(b'[');
            for (position, value) in values.iter().enumerate() {
                if position > 0 {
                    out.push(b',');
                }
                write_value(out, value);
            }
            out.push(b']');
        }
        V::M(entries) => {
            tagged(out, "M");
            write_map(out, entries);
        }
    }
    out.push(b'}');
}

/// A JSON string as DynamoDB's API writes one: UTF-8 as is, `"`, `\` and control characters
/// escaped.
fn write_string(out: &mut Vec<u8>, text: &str) {
    out.push(b'"');
    for byte in text.bytes() {
        match byte {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0..0x20 => out.extend_from_slice(format!("\\u{byte:04x}").as_bytes()),
            _ => out.push(byte),
        }
    }
    out.push(b'"');
}

/// An item's size by DynamoDB's rules (names and values; numbers about a byte per two digits),
/// for the 1 MB a Scan page holds and the read capacity it costs.
pub fn item_size(item: &Item) -> usize {
    item.iter().map(|(name, value)| name.len() + value_size(value)).sum()
}

fn value_size(value: &V) -> usize {
    let number = |n: &String| n.trim_start_matches('-').len().div_ceil(2) + 1;
    match value {
        V::S(s) => s.len(),
        V::N(n) => number(n),
        V::B(b) => b.len(),
        V::Bool(_) | V::Null => 1,
        V::Ss(s) => s.iter().map(String::len).sum(),
        V::Ns(s) => s.iter().map(number).sum(),
        V::L(l) => 3 + l.iter().map(|v| 1 + value_size(v)).sum::<usize>(),
        V::M(m) => 3 + m.iter().map(|(k, v)| 1 + k.len() + value_size(v)).sum::<usize>(),
    }
}

/// The item's partition key (`pk`), which every benchmark table is keyed by.
pub fn partition_key(item: &Item) -> &str {
    match item.iter().find(|(name, _)| name == "pk") {
        Some((_, V::S(pk))) => pk,
        _ => "",
    }
}
