//! Plain JSON of a DynamoDB value: what the value is, without DynamoDB JSON's type wrappers,
//! for formats that hold a nested value as text (a CSV field, a Parquet `JSON` column).
//!
//! | value | JSON |
//! |---|---|
//! | `S` | a string |
//! | `N` | a number, with exactly the text DynamoDB sent |
//! | `B` | a string: the bytes in base64 |
//! | `BOOL` | `true` / `false` |
//! | `NULL` | `null` |
//! | `SS` / `NS` / `BS` | an array of those, in the order given |
//! | `L` | an array |
//! | `M` | an object, its keys sorted by name (as the page reader sorts them) |
//!
//! Compact: no space anywhere. Strings escape `"`, `\` and the control characters only.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use thiserror::Error;

use crate::Value;

/// An `N` whose text is not a JSON number (`-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`),
/// which plain JSON cannot hold exactly. DynamoDB itself sends none.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("the number {0:?} is not a JSON number")]
pub struct NotJsonNumber(pub String);

/// `value` as compact plain JSON.
pub fn to_string(value: &Value<'_>) -> Result<String, NotJsonNumber> {
    let mut out = String::new();
    write(&mut out, value)?;
    Ok(out)
}

/// Appends `value` as compact plain JSON to `out`.
pub fn write(out: &mut String, value: &Value<'_>) -> Result<(), NotJsonNumber> {
    match value {
        Value::S(s) => write_str(out, s),
        Value::N(n) => write_number(out, n)?,
        Value::B(b) => write_str(out, &STANDARD.encode(b)),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Null => out.push_str("null"),
        Value::Ss(set) => write_array(out, set, |out, s| {
            write_str(out, s);
            Ok(())
        })?,
        Value::Ns(set) => write_array(out, set, |out, n| write_number(out, n))?,
        Value::Bs(set) => write_array(out, set, |out, b| {
            write_str(out, &STANDARD.encode(b));
            Ok(())
        })?,
        Value::L(list) => write_array(out, list, write)?,
        Value::M(entries) => {
            out.push('{');
            for (index, (name, value)) in entries.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                write_str(out, name);
                out.push(':');
                write(out, value)?;
            }
            out.push('}');
        }
    }
    Ok(())
}

fn write_array<T>(
    out: &mut String,
    elements: &[T],
    mut element: impl FnMut(&mut String, &T) -> Result<(), NotJsonNumber>,
) -> Result<(), NotJsonNumber> {
    out.push('[');
    for (index, e) in elements.iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        element(out, e)?;
    }
    out.push(']');
    Ok(())
}

fn write_number(out: &mut String, n: &str) -> Result<(), NotJsonNumber> {
    if !is_json_number(n) {
        return Err(NotJsonNumber(n.to_string()));
    }
    out.push_str(n);
    Ok(())
}

/// A JSON string literal of `s`.
pub fn write_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Whether `n` is a number in JSON's grammar.
fn is_json_number(n: &str) -> bool {
    fn digits(b: &[u8]) -> usize {
        b.iter().take_while(|b| b.is_ascii_digit()).count()
    }
    let b = n.as_bytes();
    let mut i = usize::from(b.first() == Some(&b'-'));
    match digits(&b[i..]) {
        0 => return false,
        // No leading zeros.
        d if d > 1 && b[i] == b'0' => return false,
        d => i += d,
    }
    if b.get(i) == Some(&b'.') {
        match digits(&b[i + 1..]) {
            0 => return false,
            d => i += 1 + d,
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        match digits(&b[i..]) {
            0 => return false,
            d => i += d,
        }
    }
    i == b.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_renders_as_plain_json() {
        let value = Value::M(vec![
            ("b", Value::B(b"\x00\xff")),
            ("bool", Value::Bool(true)),
            ("bs", Value::Bs(vec![b"a", b""])),
            ("l", Value::L(vec![Value::Null, Value::Bool(false), Value::S("x")])),
            ("m", Value::M(vec![])),
            ("n", Value::N("-1.50E+3")),
            ("ns", Value::Ns(vec!["3", "1", "2.5"])),
            ("s", Value::S("q\"\\\n\u{1}é")),
            ("ss", Value::Ss(vec!["b", "a"])),
        ]);
        assert_eq!(
            to_string(&value).unwrap(),
            r#"{"b":"AP8=","bool":true,"bs":["YQ==",""],"l":[null,false,"x"],"m":{},"n":-1.50E+3,"ns":[3,1,2.5],"s":"q\"\\\n\u0001é","ss":["b","a"]}"#
        );
    }

    #[test]
    fn numbers_keep_their_text_or_are_refused() {
        for good in ["0", "-0", "12", "1.0", "1e5", "1E-5", "-1.25e+10", "123456789012345678901234567890.5"] {
            assert_eq!(to_string(&Value::N(good)).as_deref(), Ok(good));
        }
        for bad in ["", "-", "01", "1.", ".5", "+1", "1e", "1e+", "NaN", "Infinity", "0x10", "1 "] {
            assert_eq!(to_string(&Value::N(bad)), Err(NotJsonNumber(bad.into())), "{bad:?}");
        }
        assert!(to_string(&Value::L(vec![Value::Ns(vec!["1", "abc"])])).is_err());
    }
}
