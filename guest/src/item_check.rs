//! What `verify` asks of every item in an export: that DynamoDB could hold it, and that the
//! export holds it once. Both line formats are read into the borrowed [`Value`] trees of the
//! packed page format (`json_line`, `ion_check`), refusing a name twice in one map as they
//! read; the rules below then judge the item the same way whatever its format:
//!
//! - it has attributes, and its key attributes when the table's key is known, each a string,
//!   number or binary ([`check_item`], [`key_of`]);
//! - it is at most 400 KB by DynamoDB's size rules ([`MAX_ITEM_BYTES`]);
//! - `L`/`M` nest at most 32 levels; numbers have at most 38 significant digits and a magnitude
//!   DynamoDB takes ([`Number`]); sets are non-empty and hold no value twice (numbers by value);
//! - its key hash ([`KeyHash`]), which the host compares across the whole export: the key
//!   attributes' values when the key is known (numbers and binaries by value, so `1` and `1.0`
//!   are the same key), else the whole item, so that a line written twice is still found.
//!   Hashes are compared within one run only (never stored), so their bytes may change.
//!
//! `restore`'s decoder, which runs after `verify`, judges a change record whole but an item by
//! its key half alone ([`key_hash`]).

use ddb_export_data_files::page::Value;
use md5::{Digest, Md5};

use crate::wit::{KeyAttribute, KeyType};

/// DynamoDB's limit on an item's size.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;
/// Deepest nesting of `L`/`M` DynamoDB allows.
pub const MAX_DEPTH: usize = 32;
/// Most significant digits a DynamoDB number holds.
pub const MAX_DIGITS: usize = 38;

/// An item, a key or an `M`: names and values, borrowed from the line (or its arena).
pub type Entries<'a> = [(&'a str, Value<'a>)];

/// An item's (or a change record's) identity across the export: 16 bytes, never all zero.
pub type KeyHash = [u8; 16];

/// The hash the host gets for a line that could not be read: it is never compared.
pub const NO_KEY: KeyHash = [0; 16];

/// A DynamoDB number, by value: its sign, its significant digits (borrowed from the text it
/// was read from, never copied) and the power of ten of the first of them.
#[derive(Debug, Clone, Copy)]
pub struct Number<'a> {
    negative: bool,
    whole: &'a str,
    fraction: &'a str,
    /// Zeros before the first significant digit, counted over `whole` then `fraction`.
    leading: usize,
    /// 0 for zero.
    significant: usize,
    exponent: i64,
}

impl<'a> Number<'a> {
    /// Reads DynamoDB's number syntax (an optional `-`, digits with an optional fraction, an
    /// optional exponent) and checks what DynamoDB holds: at most 38 significant digits, a
    /// magnitude from 1E-130 to under 1E+126.
    pub fn parse(text: &'a str) -> Result<Self, String> {
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
        let all = whole.len() + fraction.len();
        let leading = whole.bytes().chain(fraction.bytes()).take_while(|b| *b == b'0').count();
        if leading == all {
            let zero = Self { negative: false, whole: "", fraction: "", leading: 0, significant: 0, exponent: 0 };
            return Ok(zero);
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
        Ok(Self { negative, whole, fraction, leading, significant, exponent })
    }

    /// Its significant digits, without joining the whole part and the fraction.
    fn digits(&self) -> impl Iterator<Item = u8> + '_ {
        self.whole.bytes().chain(self.fraction.bytes()).skip(self.leading).take(self.significant)
    }

    /// Its size by DynamoDB's rules: a byte per two significant digits, and one more.
    pub fn size(&self) -> usize {
        self.significant.max(1).div_ceil(2) + 1
    }

    /// One spelling per value: `-1.50` and `-15e-1` are both `-15E-1`, zero is `0E0`.
    fn canonical(&self) -> String {
        let mut text = String::with_capacity(self.significant + 8);
        if self.negative {
            text.push('-');
        }
        if self.significant == 0 {
            text.push('0');
        }
        text.extend(self.digits().map(char::from));
        text.push('E');
        text.push_str(&self.exponent.to_string());
        text
    }
}

impl PartialEq for Number<'_> {
    fn eq(&self, other: &Self) -> bool {
        (self.negative, self.significant, self.exponent) == (other.negative, other.significant, other.exponent)
            && self.digits().eq(other.digits())
    }
}

impl Eq for Number<'_> {}

/// Checks a full export's item; returns its key hash.
pub fn check_item(item: &Entries<'_>, key_attributes: &[KeyAttribute]) -> Result<KeyHash, String> {
    if item.is_empty() {
        return Err("the item has no attributes".into());
    }
    let size = check_map(item, 0)?;
    if size > MAX_ITEM_BYTES {
        return Err(format!(
            "the item is {size} bytes by DynamoDB's size rules, over its limit of 400 KB ({MAX_ITEM_BYTES})"
        ));
    }
    key_hash(item, key_attributes)
}

/// The key half of [`check_item`]: the item's key attributes checked ([`key_of`]) and hashed,
/// or, when the key is not known, the whole item hashed.
pub fn key_hash(item: &Entries<'_>, key_attributes: &[KeyAttribute]) -> Result<KeyHash, String> {
    if item.is_empty() {
        return Err("the item has no attributes".into());
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
    keys: &Entries<'_>,
    images: &[(&str, &Entries<'_>)],
    key_attributes: &[KeyAttribute],
) -> Result<KeyHash, String> {
    if keys.is_empty() {
        return Err("Keys has no attributes".into());
    }
    check_map(keys, 0).map_err(|e| format!("Keys: {e}"))?;
    for (name, value) in keys {
        if !is_key_type(value) {
            return Err(format!("Keys: {name:?} is {}, not a string, number or binary", kind(value)));
        }
    }
    if !key_attributes.is_empty() {
        let mut named: Vec<&str> = keys.iter().map(|(n, _)| *n).collect();
        named.sort_unstable();
        let mut expected: Vec<&str> = key_attributes.iter().map(|k| k.name.as_str()).collect();
        expected.sort_unstable();
        if named != expected {
            return Err(format!("Keys holds {}, not the table's key {}", named.join(", "), expected.join(", ")));
        }
        key_of(keys, key_attributes).map_err(|e| format!("Keys: {e}"))?;
    }
    let names = untyped_names(keys);
    let wanted = hash(|h| write_map(h, keys));
    for (image, item) in images {
        check_item(item, &[]).map_err(|e| format!("{image}: {e}"))?;
        let key = key_of(item, &names).map_err(|e| format!("{image}: {e}"))?;
        if hash(|h| write_map(h, &key)) != wanted {
            return Err(format!("{image}: its key is not the record's Keys"));
        }
    }
    Ok(wanted)
}

/// A key attribute of any of the three key types.
pub fn untyped(name: &str) -> KeyAttribute {
    KeyAttribute { name: name.to_string(), attribute_type: None }
}

/// The names of a record's `Keys`, as untyped key attributes.
fn untyped_names(keys: &Entries<'_>) -> Vec<KeyAttribute> {
    keys.iter().map(|(name, _)| untyped(name)).collect()
}

/// The key attributes of an item, in the order named; each must be there, a string, number
/// or binary, and of its type when the key gives one.
pub fn key_of<'a>(item: &Entries<'a>, key_attributes: &[KeyAttribute]) -> Result<Vec<(&'a str, Value<'a>)>, String> {
    key_attributes
        .iter()
        .map(|key| {
            let name = key.name.as_str();
            let Some((found, value)) = item.iter().find(|(n, _)| *n == name) else {
                return Err(format!("the item has no key attribute {name:?}"));
            };
            if !is_key_type(value) {
                return Err(format!("key attribute {name:?} is {}, not a string, number or binary", kind(value)));
            }
            let wanted = key.attribute_type.map(|t| match t {
                KeyType::S => "S",
                KeyType::N => "N",
                KeyType::B => "B",
            });
            match wanted {
                Some(wanted) if wanted != kind(value) => {
                    Err(format!("key attribute {name:?} is {}, but the table's {name:?} is {wanted}", kind(value)))
                }
                _ => Ok((*found, value.clone())),
            }
        })
        .collect()
}

fn is_key_type(value: &Value<'_>) -> bool {
    matches!(value, Value::S(_) | Value::N(_) | Value::B(_))
}

fn kind(value: &Value<'_>) -> &'static str {
    match value {
        Value::S(_) => "S",
        Value::N(_) => "N",
        Value::B(_) => "B",
        Value::Bool(_) => "BOOL",
        Value::Null => "NULL",
        Value::Ss(_) => "SS",
        Value::Ns(_) => "NS",
        Value::Bs(_) => "BS",
        Value::L(_) => "L",
        Value::M(_) => "M",
    }
}

/// A set's elements (by value: numbers canonical) are at least one and none twice.
fn unique<T: Ord>(set: &Value<'_>, mut elements: Vec<T>) -> Result<(), String> {
    let count = elements.len();
    if count == 0 {
        return Err(format!("{} is empty; DynamoDB sets hold at least one value", kind(set)));
    }
    elements.sort_unstable();
    elements.dedup();
    if elements.len() != count {
        return Err(format!("{} holds a value twice", kind(set)));
    }
    Ok(())
}

/// Checks a map's entries; returns their size by DynamoDB's rules, so that an item is judged
/// and measured in one pass: every attribute's name and value; strings by their UTF-8 bytes,
/// binaries by their bytes, numbers by [`Number::size`], `BOOL` and `NULL` one byte, sets
/// their elements, `L` and `M` three bytes plus one per element (and an `M`'s names).
fn check_map(entries: &Entries<'_>, depth: usize) -> Result<usize, String> {
    let mut size = 0;
    for (name, value) in entries {
        if name.is_empty() {
            return Err("an attribute has an empty name".into());
        }
        size += name.len() + check_value(value, depth).map_err(|e| format!("{name:?}: {e}"))?;
    }
    Ok(size)
}

/// Checks one value; returns its size.
fn check_value(value: &Value<'_>, depth: usize) -> Result<usize, String> {
    match value {
        Value::N(n) => Number::parse(n).map(|n| n.size()).map_err(|e| format!("N {e}")),
        Value::Ss(set) => {
            unique(value, set.iter().map(|s| s.as_bytes()).collect())?;
            Ok(set.iter().map(|s| s.len()).sum())
        }
        Value::Ns(set) => {
            let numbers = set.iter().map(|n| Number::parse(n)).collect::<Result<Vec<_>, _>>();
            let numbers = numbers.map_err(|e| format!("NS holds {e}"))?;
            unique(value, numbers.iter().map(Number::canonical).collect())?;
            Ok(numbers.iter().map(Number::size).sum())
        }
        Value::Bs(set) => {
            unique(value, set.to_vec())?;
            Ok(set.iter().map(|b| b.len()).sum())
        }
        Value::L(_) | Value::M(_) if depth >= MAX_DEPTH => Err(format!("nested deeper than {MAX_DEPTH} levels")),
        Value::L(values) => {
            let mut size = 3;
            for (i, v) in values.iter().enumerate() {
                size += 1 + check_value(v, depth + 1).map_err(|e| format!("[{i}]: {e}"))?;
            }
            Ok(size)
        }
        Value::M(entries) => Ok(3 + entries.len() + check_map(entries, depth + 1)?),
        Value::S(s) => Ok(s.len()),
        Value::B(b) => Ok(b.len()),
        Value::Bool(_) | Value::Null => Ok(1),
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
fn write_map(h: &mut Md5, entries: &Entries<'_>) {
    let mut sorted: Vec<&(&str, Value<'_>)> = entries.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    h.update((sorted.len() as u64).to_le_bytes());
    for (name, value) in sorted {
        write_bytes(h, name.as_bytes());
        write_value(h, value);
    }
}

/// A set by value: its elements sorted (as bytes), whatever order the line gave.
fn write_set<T: AsRef<[u8]> + Ord>(h: &mut Md5, tag: &str, mut elements: Vec<T>) {
    elements.sort_unstable();
    write_bytes(h, tag.as_bytes());
    h.update((elements.len() as u64).to_le_bytes());
    for element in &elements {
        write_bytes(h, element.as_ref());
    }
}

fn write_value(h: &mut Md5, value: &Value<'_>) {
    let number = |n: &str| Number::parse(n).map_or_else(|_| n.to_string(), |n| n.canonical());
    match value {
        Value::Ss(s) => return write_set(h, "SS", s.iter().map(|s| s.as_bytes()).collect()),
        Value::Ns(s) => return write_set(h, "NS", s.iter().map(|n| number(n)).collect()),
        Value::Bs(s) => return write_set(h, "BS", s.to_vec()),
        _ => {}
    }
    write_bytes(h, kind(value).as_bytes());
    match value {
        Value::S(s) => write_bytes(h, s.as_bytes()),
        Value::N(n) => write_bytes(h, number(n).as_bytes()),
        Value::B(b) => write_bytes(h, b),
        Value::Bool(b) => h.update([u8::from(*b)]),
        Value::Null => {}
        Value::L(values) => {
            h.update((values.len() as u64).to_le_bytes());
            values.iter().for_each(|v| write_value(h, v));
        }
        Value::M(entries) => write_map(h, entries),
        Value::Ss(_) | Value::Ns(_) | Value::Bs(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> Value<'_> {
        Value::S(text)
    }

    fn n(text: &str) -> Value<'_> {
        Value::N(text)
    }

    fn item<'a>(entries: &[(&'a str, Value<'a>)]) -> Vec<(&'a str, Value<'a>)> {
        entries.to_vec()
    }

    #[test]
    fn numbers_are_judged_by_value_and_by_dynamodb_s_limits() {
        for (a, b) in [("1", "1.0"), ("10", "1e1"), ("-0.05", "-5E-2"), ("0", "-0.000"), ("123.4500", "1234.5e-1")] {
            assert_eq!(Number::parse(a).unwrap(), Number::parse(b).unwrap(), "{a} {b}");
            assert_eq!(Number::parse(a).unwrap().canonical(), Number::parse(b).unwrap().canonical(), "{a} {b}");
        }
        assert_ne!(Number::parse("1").unwrap(), Number::parse("-1").unwrap());
        assert_ne!(Number::parse("12").unwrap(), Number::parse("13").unwrap());
        assert_eq!(Number::parse("-0.0150").unwrap().canonical(), "-15E-2");
        assert_eq!(Number::parse("0.00").unwrap().canonical(), "0E0");
        let max = "9".repeat(38);
        assert!(Number::parse(&max).is_ok());
        let padded = format!("{max}000e-3");
        assert!(Number::parse(&padded).is_ok(), "trailing zeros are not significant");
        let long = "1".repeat(39);
        let error = Number::parse(&long).unwrap_err();
        assert!(error.contains("39 significant digits"), "{error}");
        assert!(Number::parse("1e125").is_ok() && Number::parse("9.99e125").is_ok() && Number::parse("1e-130").is_ok());
        for beyond in ["1e126", "10e125", "1e-131", "0.1e-130", "1e99999999999999999999"] {
            assert!(Number::parse(beyond).unwrap_err().contains("range"), "{beyond}");
        }
        for bad in ["", "-", ".", "1e", "+1", "1.2.3", "0x10", "1 ", "NaN"] {
            assert!(Number::parse(bad).unwrap_err().contains("not a number"), "{bad:?}");
        }
        assert_eq!(Number::parse("1234").unwrap().size(), 3);
        assert_eq!(Number::parse("0").unwrap().size(), 2);
    }

    #[test]
    fn an_item_needs_attributes_and_its_key() {
        let keys = [untyped("pk"), untyped("sk")];
        let good = item(&[("pk", s("a")), ("sk", n("1")), ("x", Value::Null)]);
        assert!(check_item(&good, &keys).is_ok());
        // Typed, as a restore's table says: a number where the table has a string is refused.
        let typed = [
            KeyAttribute { name: "pk".into(), attribute_type: Some(KeyType::S) },
            KeyAttribute { name: "sk".into(), attribute_type: Some(KeyType::S) },
        ];
        assert_eq!(check_item(&good, &typed).unwrap_err(), "key attribute \"sk\" is N, but the table's \"sk\" is S");
        assert_eq!(key_hash(&good, &typed).unwrap_err(), "key attribute \"sk\" is N, but the table's \"sk\" is S");
        assert_eq!(check_item(&[], &keys).unwrap_err(), "the item has no attributes");
        let no_sort_key = item(&[("pk", s("a"))]);
        assert!(check_item(&no_sort_key, &keys).unwrap_err().contains("no key attribute \"sk\""));
        let bool_key = item(&[("pk", s("a")), ("sk", Value::Bool(true))]);
        assert!(check_item(&bool_key, &keys).unwrap_err().contains("is BOOL, not a string"));
        assert_eq!(key_of(&good, &keys).unwrap(), vec![("pk", s("a")), ("sk", n("1"))]);
    }

    #[test]
    fn the_key_hash_is_the_key_by_value_or_else_the_whole_item() {
        let keys = [untyped("pk")];
        let a = item(&[("pk", n("1")), ("x", s("one"))]);
        let b = item(&[("x", s("two")), ("pk", n("1.0"))]);
        assert_eq!(check_item(&a, &keys).unwrap(), check_item(&b, &keys).unwrap(), "the same key");
        assert_eq!(key_hash(&a, &keys).unwrap(), check_item(&a, &keys).unwrap(), "one hash for verify and restore");
        assert_ne!(check_item(&a, &[]).unwrap(), check_item(&b, &[]).unwrap(), "other items");
        let reordered = item(&[("x", s("one")), ("pk", n("1"))]);
        assert_eq!(check_item(&a, &[]).unwrap(), check_item(&reordered, &[]).unwrap(), "names in any order");
        let other = item(&[("pk", n("2"))]);
        assert_ne!(check_item(&a, &keys).unwrap(), check_item(&other, &keys).unwrap());
        assert_ne!(check_item(&a, &keys).unwrap(), NO_KEY);
        let binary = item(&[("pk", Value::B(b"1"))]);
        assert_ne!(check_item(&binary, &keys).unwrap(), check_item(&item(&[("pk", s("1"))]), &keys).unwrap());
    }

    #[test]
    fn sizes_follow_dynamodb_s_rules_and_400_kb_is_the_most() {
        let entries = item(&[("ab", s("héllo")), ("n", n("12345")), ("l", Value::L(vec![Value::Null]))]);
        assert_eq!(check_map(&entries, 0).unwrap(), (2 + 6) + (1 + 4) + (1 + 3 + 2));
        let nested = item(&[("m", Value::M(vec![("xy", Value::Bool(true))])), ("ss", Value::Ss(vec!["a", "bc"]))]);
        assert_eq!(check_map(&nested, 0).unwrap(), (1 + 3 + 1 + 2 + 1) + (2 + 3));
        let blob = vec![0; MAX_ITEM_BYTES];
        let big = item(&[("pk", s("a")), ("blob", Value::B(&blob))]);
        let error = check_item(&big, &[]).unwrap_err();
        assert!(error.contains("over its limit of 400 KB"), "{error}");
        let just = item(&[("pk", s("a")), ("blob", Value::B(&blob[7..]))]);
        assert!(check_item(&just, &[]).is_ok());
    }

    #[test]
    fn sets_and_nesting_follow_dynamodb() {
        let twice = item(&[("pk", s("a")), ("ns", Value::Ns(vec!["1", "1.00"]))]);
        assert!(check_item(&twice, &[]).unwrap_err().contains("NS holds a value twice"));
        let distinct = item(&[("pk", s("a")), ("ns", Value::Ns(vec!["1", "10"])), ("bs", Value::Bs(vec![b"a", b"b"]))]);
        assert!(check_item(&distinct, &[]).is_ok());
        let empty = item(&[("pk", s("a")), ("ss", Value::Ss(vec![]))]);
        assert!(check_item(&empty, &[]).unwrap_err().contains("SS is empty"));
        let digits = "1".repeat(39);
        let long = item(&[("pk", s("a")), ("n", Value::Ns(vec![&digits]))]);
        assert!(check_item(&long, &[]).unwrap_err().contains("39 significant digits"));
        let mut deep = s("leaf");
        for _ in 0..=MAX_DEPTH {
            deep = Value::M(vec![("x", deep)]);
        }
        let error = check_item(&item(&[("pk", s("a")), ("d", deep)]), &[]).unwrap_err();
        assert!(error.contains("nested deeper than 32 levels"), "{error}");
    }

    #[test]
    fn a_change_record_s_keys_are_the_table_s_and_its_images_agree() {
        let keys = item(&[("pk", s("a"))]);
        let image = item(&[("pk", s("a")), ("v", n("1"))]);
        let table = [untyped("pk")];
        let hash = check_change(&keys, &[("NewImage", &image)], &table).unwrap();
        assert_eq!(hash, check_change(&keys, &[], &[]).unwrap());
        let other = item(&[("pk", s("b"))]);
        assert!(check_change(&keys, &[("OldImage", &other)], &table).unwrap_err().contains("OldImage: its key"));
        assert!(check_change(&image, &[], &table).unwrap_err().contains("not the table's key pk"));
        assert!(check_change(&[], &[], &table).unwrap_err().contains("Keys has no attributes"));
    }
}
