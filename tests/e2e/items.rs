//! Items that exercise every AttributeValue type and the edges of each.

use std::collections::HashMap;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;

pub type Item = HashMap<String, AttributeValue>;

fn item(pk: &str, attrs: Vec<(&str, AttributeValue)>) -> Item {
    let mut item: Item = attrs.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    item.insert("pk".into(), AttributeValue::S(pk.into()));
    item
}

fn n(text: &str) -> AttributeValue {
    AttributeValue::N(text.into())
}

fn s(text: &str) -> AttributeValue {
    AttributeValue::S(text.into())
}

/// Containers nested `levels` deep (alternating M and L), with a string inside the innermost.
pub fn nested(levels: usize) -> AttributeValue {
    let mut value = s("bottom");
    for level in 0..levels {
        value = if level % 2 == 0 {
            AttributeValue::M(HashMap::from([(format!("level{level}"), value)]))
        } else {
            AttributeValue::L(vec![value])
        };
    }
    value
}

/// One item per edge case.
pub fn edge_cases() -> Vec<Item> {
    let all_bytes: Vec<u8> = (0..=255).collect();
    vec![
        item(
            "numbers",
            vec![
                ("digits38", n("12345678901234567890123456789012345678")),
                ("negative38", n("-98765432109876543210987654321098765432")),
                ("fraction", n("0.000000000000000000000000000000000001")),
                ("exponent", n("1.5E+20")),
                ("negative_exponent", n("-2.5E-10")),
                ("huge", n("9.9999999999999999999999999999999999999E+125")),
                ("tiny", n("-1E-130")),
                ("zero", n("0")),
            ],
        ),
        item(
            "binary",
            vec![
                ("all_bytes", AttributeValue::B(Blob::new(all_bytes.clone()))),
                ("one_byte", AttributeValue::B(Blob::new(vec![0]))),
                (
                    "binary_set",
                    AttributeValue::Bs(vec![Blob::new(vec![0]), Blob::new(vec![255, 254]), Blob::new(all_bytes)]),
                ),
            ],
        ),
        item(
            "sets",
            vec![
                ("strings", AttributeValue::Ss(vec!["a".into(), "b".into(), "ü".into(), "🎉".into()])),
                (
                    "numbers",
                    AttributeValue::Ns(vec![
                        "1".into(),
                        "-2.5".into(),
                        "1E+10".into(),
                        "12345678901234567890123456789012345678".into(),
                    ]),
                ),
            ],
        ),
        item(
            "empties",
            vec![
                ("empty_list", AttributeValue::L(vec![])),
                ("empty_map", AttributeValue::M(HashMap::new())),
                (
                    "list_of_empties",
                    AttributeValue::L(vec![AttributeValue::L(vec![]), AttributeValue::M(HashMap::new())]),
                ),
            ],
        ),
        item(
            "scalars",
            vec![
                ("null", AttributeValue::Null(true)),
                ("yes", AttributeValue::Bool(true)),
                ("no", AttributeValue::Bool(false)),
            ],
        ),
        item(
            "text",
            vec![
                ("escapes", s("quote\" backslash\\ slash/ newline\n return\r tab\t nul\u{0} unit\u{1f} del\u{7f}")),
                ("unicode", s("日本語 Ünïcödé עברית 🎉 \u{2028}\u{2029} \u{fffd} \u{10ffff}")),
                ("a \"strange\" name\n", s("attribute names are escaped too")),
            ],
        ),
        item("nested", vec![("deep", nested(32))]),
        item("large", vec![("payload", s(&"x".repeat(390 * 1024)))]),
    ]
}

/// `count` ordinary items, spread over every segment.
pub fn ordinary(count: usize) -> Vec<Item> {
    (0..count)
        .map(|i| {
            item(
                &format!("item#{i:06}"),
                vec![
                    ("n", n(&i.to_string())),
                    ("name", s(&format!("name {i}"))),
                    ("filler", s(&format!("{i:06}").repeat(60))),
                    ("tags", AttributeValue::Ss(vec![format!("t{}", i % 5), "all".into()])),
                    ("nested", AttributeValue::M(HashMap::from([("i".to_string(), n(&i.to_string()))]))),
                ],
            )
        })
        .collect()
}

/// `count` items of ~390 KiB of incompressible bytes each (xorshift from `seed`): data files
/// that gzip cannot shrink below a multipart upload's part size.
pub fn incompressible(count: usize, seed: u64) -> Vec<Item> {
    let mut state = seed;
    (0..count)
        .map(|i| {
            let bytes: Vec<u8> = (0..390 * 1024)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect();
            HashMap::from([
                ("pk".to_string(), AttributeValue::S(format!("big#{i}"))),
                ("noise".to_string(), AttributeValue::B(Blob::new(bytes))),
            ])
        })
        .collect()
}
