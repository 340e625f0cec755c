//! What `verify` asks of every item in an export: that DynamoDB could hold it, and that the
//! export holds it once. Both line formats are read into an [`Attr`] tree (`json_line`,
//! `ion_check`), refusing a name twice in one map as they read; the rules below then judge the
//! item the same way whatever its format:
//!
//! - it has attributes, and its key attributes when the table's key is known, each a string,
//!   number or binary ([`check_item`]);
//! - it is at most 400 KB by DynamoDB's size rules ([`MAX_ITEM_BYTES`], [`item_size`]);
//! - `L`/`M` nest at most 32 levels; numbers have at most 38 significant digits and a magnitude
//!   DynamoDB takes ([`Number`]); sets are non-empty and hold no value twice (numbers by value);
//! - its key hash ([`KeyHash`]), which the host compares across the whole export: the key
//!   attributes' values when the key is known (numbers and binaries by value, so `1` and `1.0`
//!   are the same key), else the whole item, so that a line written twice is still found.

use md5::{Digest, Md5};

use crate::wit::{KeyAttribute, KeyType};

/// DynamoDB's limit on an item's size.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;
/// Deepest nesting of `L`/`M` DynamoDB allows.
pub const MAX_DEPTH: usize = 32;
/// Most significant digits a DynamoDB number holds.
pub const MAX_DIGITS: usize = 38;

/// One AttributeValue, as read from a data line.
#[derive(Debug, Clone, PartialEq)]
pub enum Attr {
    S(String),
    N(String),
    B(Vec<u8>),
    Bool(bool),
    Null,
    Ss(Vec<String>),
    Ns(Vec<String>),
    Bs(Vec<Vec<u8>>),
    L(Vec<Attr>),
    M(Vec<(String, Attr)>),
}

/// An item's (or a change record's) identity across the export: 16 bytes, never all zero.
pub type KeyHash = [u8; 16];

/// The hash the host gets for a line that could not be read: it is never compared.
pub const NO_KEY: KeyHash = [0; 16];

/// A DynamoDB number, by value: its sign, its significant digits, and the power of ten of the
/// first of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Number {
    negative: bool,
    digits: String,
    exponent: i64,
}

impl Number {
    /// Reads DynamoDB's number syntax (an optional `-`, digits with an optional fraction, an
    /// optional exponent) and checks what DynamoDB holds: at most 38 significant digits, a
    /// magnitude from 1E-130 to under 1E+126.
    pub fn parse(text: &str) -> Result<Self, String> {
        let syntax = || format!("{text:?} is not a number");
        let (negative, body) = match text.strip_prefix('-') {
            Some(body) => (true, body),
            None => (false, text),
        };
        let (mantissa, exponent) = match body.find(['e', 'E']) {
            Some(at) => (&body[..at], Some(&body[at + 1..])),
            None => (body, None),
        };
        let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let is_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if !is_digits(whole) || !is_digits(fraction) || (whole.is_empty() && fraction.is_empty()) {
            return Err(syntax());
        }
        let exponent: i64 = match exponent {
            None => 0,
            Some(e) => {
                let digits = e.strip_prefix(['+', '-']).unwrap_or(e);
                if digits.is_empty() || !is_digits(digits) {
                    return Err(syntax());
                }
                // Far beyond any magnitude DynamoDB takes: refused below, not overflowed.
                e.parse::<i64>().unwrap_or(if e.starts_with('-') { i64::MIN / 2 } else { i64::MAX / 2 })
            }
        };
        // The digits of the whole part then the fraction, without joining them (this runs for
        // every number of every item `verify` reads).
        let digits = || whole.bytes().chain(fraction.bytes());
        let all = whole.len() + fraction.len();
        let leading = digits().take_while(|b| *b == b'0').count();
        if leading == all {
            return Ok(Self { negative: false, digits: "0".into(), exponent: 0 });
        }
        let trailing = fraction.bytes().rev().chain(whole.bytes().rev()).take_while(|b| *b == b'0').count();
        let significant = all - leading - trailing;
        if significant > MAX_DIGITS {
            return Err(format!(
                "{text:?} has {significant} significant digits; DynamoDB numbers have at most {MAX_DIGITS}"
            ));
        }
        // The power of ten of the first significant digit.
        let exponent = exponent.saturating_add(whole.len() as i64 - 1 - leading as i64);
        if !(-130..=125).contains(&exponent) {
            return Err(format!("{text:?} is beyond DynamoDB's range (1E-130 to 9.99…E+125 in magnitude)"));
        }
        let digits = digits().skip(leading).take(significant).map(char::from).collect();
        Ok(Self { negative, digits, exponent })
    }

    /// Its size by DynamoDB's rules: a byte per two significant digits, and one more.
    pub fn size(&self) -> usize {
        self.digits.len().div_ceil(2) + 1
    }

    /// One spelling per value: `-1.50` and `-15e-1` are both `-15E-1`.
    fn canonical(&self) -> String {
        format!("{}{}E{}", if self.negative { "-" } else { "" }, self.digits, self.exponent)
    }
}

/// Checks a full export's item; returns its key hash.
pub fn check_item(item: &[(String, Attr)], key_attributes: &[KeyAttribute]) -> Result<KeyHash, String> {
    if item.is_empty() {
        return Err("the item has no attributes".into());
    }
    check_map(item, 0)?;
    let size = item_size(item);
    if size > MAX_ITEM_BYTES {
        return Err(format!(
            "the item is {size} bytes by DynamoDB's size rules, over its limit of 400 KB ({MAX_ITEM_BYTES})"
        ));
    }
    if key_attributes.is_empty() {
        return Ok(hash(|h| write_map(h, item)));
    }
    let key = key_of(item, key_attributes)?;
    Ok(hash(|h| write_map(h, &key)))
}

/// Checks an incremental export's change record (`Keys`, and the images it carries); returns
/// the hash of its `Keys`: each item once per export.
pub fn check_change(
    keys: &[(String, Attr)],
    images: &[(&str, &[(String, Attr)])],
    key_attributes: &[KeyAttribute],
) -> Result<KeyHash, String> {
    if keys.is_empty() {
        return Err("Keys has no attributes".into());
    }
    check_map(keys, 0).map_err(|e| format!("Keys: {e}"))?;
    for (name, value) in keys {
        if !matches!(value, Attr::S(_) | Attr::N(_) | Attr::B(_)) {
            return Err(format!("Keys: {name:?} is {}, not a string, number or binary", kind(value)));
        }
    }
    if !key_attributes.is_empty() {
        let mut named: Vec<&str> = keys.iter().map(|(n, _)| n.as_str()).collect();
        named.sort_unstable();
        let mut expected: Vec<&str> = key_attributes.iter().map(|k| k.name.as_str()).collect();
        expected.sort_unstable();
        if named != expected {
            return Err(format!("Keys holds {}, not the table's key {}", named.join(", "), expected.join(", ")));
        }
        key_of(keys, key_attributes).map_err(|e| format!("Keys: {e}"))?;
    }
    let names: Vec<KeyAttribute> = keys.iter().map(|(n, _)| untyped(n)).collect();
    let wanted = canonical_map(keys);
    for (image, item) in images {
        check_item(item, &[]).map_err(|e| format!("{image}: {e}"))?;
        let key = key_of(item, &names).map_err(|e| format!("{image}: {e}"))?;
        if canonical_map(&key) != wanted {
            return Err(format!("{image}: its key is not the record's Keys"));
        }
    }
    Ok(hash(|h| write_map(h, keys)))
}

/// A key attribute of any of the three key types.
pub fn untyped(name: &str) -> KeyAttribute {
    KeyAttribute { name: name.to_string(), attribute_type: None }
}

/// The key attributes of an item, in the order named; each must be there, a string, number
/// or binary, and of its type when the key gives one.
pub fn key_of(item: &[(String, Attr)], key_attributes: &[KeyAttribute]) -> Result<Vec<(String, Attr)>, String> {
    key_attributes
        .iter()
        .map(|key| {
            let name = &key.name;
            match item.iter().find(|(n, _)| n == name) {
                None => Err(format!("the item has no key attribute {name:?}")),
                Some((_, value @ (Attr::S(_) | Attr::N(_) | Attr::B(_)))) => {
                    let wanted = key.attribute_type.map(|t| match t {
                        KeyType::S => "S",
                        KeyType::N => "N",
                        KeyType::B => "B",
                    });
                    match wanted {
                        Some(wanted) if wanted != kind(value) => Err(format!(
                            "key attribute {name:?} is {}, but the table's {name:?} is {wanted}",
                            kind(value)
                        )),
                        _ => Ok((name.clone(), value.clone())),
                    }
                }
                Some((_, value)) => {
                    Err(format!("key attribute {name:?} is {}, not a string, number or binary", kind(value)))
                }
            }
        })
        .collect()
}

fn kind(value: &Attr) -> &'static str {
    match value {
        Attr::S(_) => "S",
        Attr::N(_) => "N",
        Attr::B(_) => "B",
        Attr::Bool(_) => "BOOL",
        Attr::Null => "NULL",
        Attr::Ss(_) => "SS",
        Attr::Ns(_) => "NS",
        Attr::Bs(_) => "BS",
        Attr::L(_) => "L",
        Attr::M(_) => "M",
    }
}

fn check_map(entries: &[(String, Attr)], depth: usize) -> Result<(), String> {
    for (name, value) in entries {
        if name.is_empty() {
            return Err("an attribute has an empty name".into());
        }
        check_value(value, depth).map_err(|e| format!("{name:?}: {e}"))?;
    }
    Ok(())
}

fn check_value(value: &Attr, depth: usize) -> Result<(), String> {
    let unique = |count: usize, mut keys: Vec<String>| {
        if count == 0 {
            return Err(format!("{} is empty; DynamoDB sets hold at least one value", kind(value)));
        }
        keys.sort_unstable();
        keys.dedup();
        if keys.len() != count {
            return Err(format!("{} holds a value twice", kind(value)));
        }
        Ok(())
    };
    match value {
        Attr::N(n) => Number::parse(n).map(drop).map_err(|e| format!("N {e}")),
        Attr::Ss(set) => unique(set.len(), set.clone()),
        Attr::Ns(set) => {
            let numbers = set.iter().map(|n| Number::parse(n).map(|n| n.canonical())).collect::<Result<Vec<_>, _>>();
            unique(set.len(), numbers.map_err(|e| format!("NS holds {e}"))?)
        }
        Attr::Bs(set) => unique(set.len(), set.iter().map(|b| String::from_utf8_lossy(&hex(b)).into_owned()).collect()),
        Attr::L(_) | Attr::M(_) if depth >= MAX_DEPTH => Err(format!("nested deeper than {MAX_DEPTH} levels")),
        Attr::L(values) => values
            .iter()
            .enumerate()
            .try_for_each(|(i, v)| check_value(v, depth + 1).map_err(|e| format!("[{i}]: {e}"))),
        Attr::M(entries) => check_map(entries, depth + 1),
        Attr::S(_) | Attr::B(_) | Attr::Bool(_) | Attr::Null => Ok(()),
    }
}

fn hex(bytes: &[u8]) -> Vec<u8> {
    bytes
        .iter()
        .flat_map(|b| [b"0123456789abcdef"[usize::from(b >> 4)], b"0123456789abcdef"[usize::from(b & 15)]])
        .collect()
}

/// An item's size by DynamoDB's rules: every attribute's name and value; strings by their
/// UTF-8 bytes, binaries by their bytes, numbers by [`Number::size`], `BOOL` and `NULL` one
/// byte, sets their elements, `L` and `M` three bytes plus one per element (and an `M`'s
/// names).
pub fn item_size(item: &[(String, Attr)]) -> usize {
    item.iter().map(|(name, value)| name.len() + value_size(value)).sum()
}

fn value_size(value: &Attr) -> usize {
    let number = |n: &String| Number::parse(n).map_or(n.len(), |n| n.size());
    match value {
        Attr::S(s) => s.len(),
        Attr::N(n) => number(n),
        Attr::B(b) => b.len(),
        Attr::Bool(_) | Attr::Null => 1,
        Attr::Ss(set) => set.iter().map(String::len).sum(),
        Attr::Ns(set) => set.iter().map(number).sum(),
        Attr::Bs(set) => set.iter().map(Vec::len).sum(),
        Attr::L(values) => 3 + values.iter().map(|v| 1 + value_size(v)).sum::<usize>(),
        Attr::M(entries) => 3 + entries.iter().map(|(n, v)| 1 + n.len() + value_size(v)).sum::<usize>(),
    }
}

fn hash(write: impl FnOnce(&mut Md5)) -> KeyHash {
    let mut hasher = Md5::new();
    write(&mut hasher);
    let digest: KeyHash = hasher.finalize().into();
    if digest == NO_KEY { [1; 16] } else { digest }
}

fn write_bytes(h: &mut Md5, bytes: &[u8]) {
    h.update((bytes.len() as u64).to_le_bytes());
    h.update(bytes);
}

/// A map by value: its entries sorted by name, each value canonical.
fn write_map(h: &mut Md5, entries: &[(String, Attr)]) {
    let mut sorted: Vec<&(String, Attr)> = entries.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    h.update((sorted.len() as u64).to_le_bytes());
    for (name, value) in sorted {
        write_bytes(h, name.as_bytes());
        write_value(h, value);
    }
}

fn write_value(h: &mut Md5, value: &Attr) {
    let number = |n: &String| Number::parse(n).map_or_else(|_| n.clone(), |n| n.canonical());
    let mut set = |tag: &str, mut elements: Vec<Vec<u8>>| {
        elements.sort_unstable();
        write_bytes(h, tag.as_bytes());
        h.update((elements.len() as u64).to_le_bytes());
        for element in &elements {
            write_bytes(h, element);
        }
    };
    match value {
        Attr::Ss(s) => return set("SS", s.iter().map(|s| s.as_bytes().to_vec()).collect()),
        Attr::Ns(s) => return set("NS", s.iter().map(|n| number(n).into_bytes()).collect()),
        Attr::Bs(s) => return set("BS", s.clone()),
        _ => {}
    }
    write_bytes(h, kind(value).as_bytes());
    match value {
        Attr::S(s) => write_bytes(h, s.as_bytes()),
        Attr::N(n) => write_bytes(h, number(n).as_bytes()),
        Attr::B(b) => write_bytes(h, b),
        Attr::Bool(b) => h.update([u8::from(*b)]),
        Attr::Null => {}
        Attr::L(values) => {
            h.update((values.len() as u64).to_le_bytes());
            values.iter().for_each(|v| write_value(h, v));
        }
        Attr::M(entries) => write_map(h, entries),
        Attr::Ss(_) | Attr::Ns(_) | Attr::Bs(_) => {}
    }
}

/// A map's canonical bytes, for comparing two keys.
fn canonical_map(entries: &[(String, Attr)]) -> KeyHash {
    hash(|h| write_map(h, entries))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> Attr {
        Attr::S(text.into())
    }

    fn item(entries: &[(&str, Attr)]) -> Vec<(String, Attr)> {
        entries.iter().map(|(n, v)| (n.to_string(), v.clone())).collect()
    }

    #[test]
    fn numbers_are_judged_by_value_and_by_dynamodb_s_limits() {
        for (a, b) in [("1", "1.0"), ("10", "1e1"), ("-0.05", "-5E-2"), ("0", "-0.000"), ("123.4500", "1234.5e-1")] {
            assert_eq!(Number::parse(a).unwrap(), Number::parse(b).unwrap(), "{a} {b}");
        }
        assert_ne!(Number::parse("1").unwrap(), Number::parse("-1").unwrap());
        let max = "9".repeat(38);
        assert!(Number::parse(&max).is_ok());
        assert!(Number::parse(&format!("{max}000e-3")).is_ok(), "trailing zeros are not significant");
        let error = Number::parse(&"1".repeat(39)).unwrap_err();
        assert!(error.contains("39 significant digits"), "{error}");
        assert!(Number::parse("1e125").is_ok() && Number::parse("9.99e125").is_ok() && Number::parse("1e-130").is_ok());
        for beyond in ["1e126", "10e125", "1e-131", "0.1e-130", "1e99999999999999999999"] {
            assert!(Number::parse(beyond).unwrap_err().contains("range"), "{beyond}");
        }
        for bad in ["", "-", ".", "1e", "+1", "1.2.3", "0x10", "1 ", "NaN"] {
            assert!(Number::parse(bad).unwrap_err().contains("not a number"), "{bad:?}");
        }
        assert_eq!(Number::parse("1234").unwrap().size(), 3);
    }

    #[test]
    fn an_item_needs_attributes_and_its_key() {
        let keys = [untyped("pk"), untyped("sk")];
        let good = item(&[("pk", s("a")), ("sk", Attr::N("1".into())), ("x", Attr::Null)]);
        assert!(check_item(&good, &keys).is_ok());
        // Typed, as a restore's table says: a number where the table has a string is refused.
        let typed = [
            KeyAttribute { name: "pk".into(), attribute_type: Some(KeyType::S) },
            KeyAttribute { name: "sk".into(), attribute_type: Some(KeyType::S) },
        ];
        assert_eq!(check_item(&good, &typed).unwrap_err(), "key attribute \"sk\" is N, but the table's \"sk\" is S");
        assert_eq!(check_item(&[], &keys).unwrap_err(), "the item has no attributes");
        let no_sort_key = item(&[("pk", s("a"))]);
        assert!(check_item(&no_sort_key, &keys).unwrap_err().contains("no key attribute \"sk\""));
        let bool_key = item(&[("pk", s("a")), ("sk", Attr::Bool(true))]);
        assert!(check_item(&bool_key, &keys).unwrap_err().contains("is BOOL, not a string"));
    }

    #[test]
    fn the_key_hash_is_the_key_by_value_or_else_the_whole_item() {
        let keys = [untyped("pk")];
        let a = item(&[("pk", Attr::N("1".into())), ("x", s("one"))]);
        let b = item(&[("x", s("two")), ("pk", Attr::N("1.0".into()))]);
        assert_eq!(check_item(&a, &keys).unwrap(), check_item(&b, &keys).unwrap(), "the same key");
        assert_ne!(check_item(&a, &[]).unwrap(), check_item(&b, &[]).unwrap(), "other items");
        let reordered = item(&[("x", s("one")), ("pk", Attr::N("1".into()))]);
        assert_eq!(check_item(&a, &[]).unwrap(), check_item(&reordered, &[]).unwrap(), "names in any order");
        let other = item(&[("pk", Attr::N("2".into()))]);
        assert_ne!(check_item(&a, &keys).unwrap(), check_item(&other, &keys).unwrap());
        assert_ne!(check_item(&a, &keys).unwrap(), NO_KEY);
    }

    #[test]
    fn sizes_follow_dynamodb_s_rules_and_400_kb_is_the_most() {
        let entries = item(&[("ab", s("héllo")), ("n", Attr::N("12345".into())), ("l", Attr::L(vec![Attr::Null]))]);
        assert_eq!(item_size(&entries), (2 + 6) + (1 + 4) + (1 + 3 + 2));
        let big = item(&[("pk", s("a")), ("blob", Attr::B(vec![0; MAX_ITEM_BYTES]))]);
        let error = check_item(&big, &[]).unwrap_err();
        assert!(error.contains("over its limit of 400 KB"), "{error}");
        let just = item(&[("pk", s("a")), ("blob", Attr::B(vec![0; MAX_ITEM_BYTES - 7]))]);
        assert!(check_item(&just, &[]).is_ok());
    }

    #[test]
    fn sets_and_nesting_follow_dynamodb() {
        let twice = item(&[("pk", s("a")), ("ns", Attr::Ns(vec!["1".into(), "1.00".into()]))]);
        assert!(check_item(&twice, &[]).unwrap_err().contains("NS holds a value twice"));
        let empty = item(&[("pk", s("a")), ("ss", Attr::Ss(vec![]))]);
        assert!(check_item(&empty, &[]).unwrap_err().contains("SS is empty"));
        let long = item(&[("pk", s("a")), ("n", Attr::Ns(vec!["1".repeat(39)]))]);
        assert!(check_item(&long, &[]).unwrap_err().contains("39 significant digits"));
        let mut deep = s("leaf");
        for _ in 0..=MAX_DEPTH {
            deep = Attr::M(vec![("x".into(), deep)]);
        }
        let error = check_item(&item(&[("pk", s("a")), ("d", deep)]), &[]).unwrap_err();
        assert!(error.contains("nested deeper than 32 levels"), "{error}");
    }

    #[test]
    fn a_change_record_s_keys_are_the_table_s_and_its_images_agree() {
        let keys = item(&[("pk", s("a"))]);
        let image = item(&[("pk", s("a")), ("v", Attr::N("1".into()))]);
        let table = [untyped("pk")];
        let hash = check_change(&keys, &[("NewImage", &image)], &table).unwrap();
        assert_eq!(hash, check_change(&keys, &[], &[]).unwrap());
        let other = item(&[("pk", s("b"))]);
        assert!(check_change(&keys, &[("OldImage", &other)], &table).unwrap_err().contains("OldImage: its key"));
        assert!(check_change(&image, &[], &table).unwrap_err().contains("not the table's key pk"));
        assert!(check_change(&[], &[], &table).unwrap_err().contains("Keys has no attributes"));
    }
}
