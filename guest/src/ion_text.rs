//! The `ION` line format: one `$ion_1_0 {Item:{...}}` per line, Amazon Ion text, with the type
//! mapping of AWS's export (`../shared/FORMAT.md`, "Data lines"):
//!
//! | AttributeValue | Ion |
//! |---|---|
//! | `S` | string |
//! | `N` | decimal, always in decimal syntax (`103.`, `1.50`, `1.5d20`), never an int or a float |
//! | `B` | blob, `{{base64}}` |
//! | `BOOL` | bool |
//! | `NULL` | `null` |
//! | `SS` / `NS` / `BS` | a list annotated `$dynamodb_SS::` / `$dynamodb_NS::` / `$dynamodb_BS::` |
//! | `L` | list |
//! | `M` | struct |
//!
//! Numbers keep every digit the server sent, only respelled as Ion needs (see [`write_decimal`]);
//! field names are symbols, written bare when they are plain identifiers and quoted otherwise
//! (see [`write_symbol`]). The bytes are deterministic: maps come sorted from the page reader,
//! as for `DYNAMODB_JSON`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::page::Value;

/// Why an item cannot be written as Ion: an `N` that is not a decimal number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidNumber(pub String);

/// Appends `$ion_1_0 {Item:{...}}\n` for an item to `out`, entries in the order given (the page
/// reader sorts every map by name). On error `out` may hold part of the line: the caller drops
/// the whole page.
pub fn write_line(out: &mut Vec<u8>, item: &[(&str, Value<'_>)]) -> Result<(), InvalidNumber> {
    out.extend_from_slice(b"$ion_1_0 {Item:");
    write_struct(out, item)?;
    out.extend_from_slice(b"}\n");
    Ok(())
}

/// Appends an incremental export's change record line to `out`:
/// `$ion_1_0 {Metadata:{WriteTimestampMicros:<micros>.},Keys:{…},NewImage:{…},OldImage:{…}}\n`
/// (the record of `DYNAMODB_JSON`, with the timestamp an Ion decimal as every `N` is), each
/// image only when given. On error `out` may hold part of the line.
pub fn write_change_line(
    out: &mut Vec<u8>,
    micros: u64,
    keys: &[(&str, Value<'_>)],
    new_image: Option<&[(&str, Value<'_>)]>,
    old_image: Option<&[(&str, Value<'_>)]>,
) -> Result<(), InvalidNumber> {
    out.extend_from_slice(b"$ion_1_0 {Metadata:{WriteTimestampMicros:");
    write_decimal(out, &micros.to_string())?;
    out.extend_from_slice(b"},Keys:");
    write_struct(out, keys)?;
    if let Some(image) = new_image {
        out.extend_from_slice(b",NewImage:");
        write_struct(out, image)?;
    }
    if let Some(image) = old_image {
        out.extend_from_slice(b",OldImage:");
        write_struct(out, image)?;
    }
    out.extend_from_slice(b"}\n");
    Ok(())
}

fn write_struct(out: &mut Vec<u8>, entries: &[(&str, Value<'_>)]) -> Result<(), InvalidNumber> {
    out.push(b'{');
    for (position, (name, value)) in entries.iter().enumerate() {
        if position > 0 {
            out.push(b',');
        }
        write_symbol(out, name);
        out.push(b':');
        write_value(out, value)?;
    }
    out.push(b'}');
    Ok(())
}

/// Writes one value. The page reader bounded the depth.
fn write_value(out: &mut Vec<u8>, value: &Value<'_>) -> Result<(), InvalidNumber> {
    match value {
        Value::S(s) => write_string(out, s),
        Value::N(n) => write_decimal(out, n)?,
        Value::B(b) => write_blob(out, b),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Null => out.extend_from_slice(b"null"),
        Value::Ss(set) => {
            out.extend_from_slice(b"$dynamodb_SS::");
            write_list(out, set, |out, s| {
                write_string(out, s);
                Ok(())
            })?;
        }
        Value::Ns(set) => {
            out.extend_from_slice(b"$dynamodb_NS::");
            write_list(out, set, |out, n| write_decimal(out, n))?;
        }
        Value::Bs(set) => {
            out.extend_from_slice(b"$dynamodb_BS::");
            write_list(out, set, |out, b| {
                write_blob(out, b);
                Ok(())
            })?;
        }
        Value::L(values) => write_list(out, values, write_value)?,
        Value::M(entries) => write_struct(out, entries)?,
    }
    Ok(())
}

fn write_list<T>(
    out: &mut Vec<u8>,
    values: &[T],
    mut write: impl FnMut(&mut Vec<u8>, &T) -> Result<(), InvalidNumber>,
) -> Result<(), InvalidNumber> {
    out.push(b'[');
    for (position, value) in values.iter().enumerate() {
        if position > 0 {
            out.push(b',');
        }
        write(out, value)?;
    }
    out.push(b']');
    Ok(())
}

/// An Ion string: `"…"` with `"`, `\` and every control character escaped; all other text,
/// non-ASCII included, stays as its UTF-8.
fn write_string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    write_escaped(out, s, b'"');
    out.push(b'"');
}

/// A field name as an Ion symbol. Bare when it is an identifier (`[$_A-Za-z][$_A-Za-z0-9]*`)
/// that means nothing else: not a keyword (`null`, `true`, `false`, `nan`) and not `$`
/// followed by digits only (bare, that is a symbol id, not text). Otherwise quoted, `'…'`, with
/// `'`, `\` and control characters escaped, which always means the text itself.
fn write_symbol(out: &mut Vec<u8>, name: &str) {
    if is_bare_symbol(name) {
        out.extend_from_slice(name.as_bytes());
    } else {
        out.push(b'\'');
        write_escaped(out, name, b'\'');
        out.push(b'\'');
    }
}

fn is_bare_symbol(name: &str) -> bool {
    let bytes = name.as_bytes();
    let Some((&first, rest)) = bytes.split_first() else { return false };
    let identifier = (first == b'$' || first == b'_' || first.is_ascii_alphabetic())
        && rest.iter().all(|&b| b == b'$' || b == b'_' || b.is_ascii_alphanumeric());
    let keyword = matches!(name, "null" | "true" | "false" | "nan");
    let symbol_id = first == b'$' && !rest.is_empty() && rest.iter().all(u8::is_ascii_digit);
    identifier && !keyword && !symbol_id
}

/// The body of a quoted string or symbol. Ion text allows any Unicode scalar in a quoted
/// string or symbol except the quote, `\` and most control characters; we escape all of
/// U+0000-U+001F and U+007F, and keep everything else (UTF-8 is valid by construction).
fn write_escaped(out: &mut Vec<u8>, text: &str, quote: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = text.as_bytes();
    let mut start = 0;
    for (index, &byte) in bytes.iter().enumerate() {
        let escape: &[u8] = match byte {
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            _ if byte == quote => {
                if quote == b'"' {
                    b"\\\""
                } else {
                    b"\\'"
                }
            }
            0x00..=0x1f | 0x7f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..index]);
        if escape.is_empty() {
            out.extend_from_slice(&[b'\\', b'x', HEX[usize::from(byte >> 4)], HEX[usize::from(byte & 0xf)]]);
        } else {
            out.extend_from_slice(escape);
        }
        start = index + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

/// An Ion blob: `{{` standard base64 with padding `}}`.
fn write_blob(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(b"{{");
    let start = out.len();
    out.resize(start + base64::encoded_len(bytes.len(), true).unwrap_or(0), 0);
    let written = STANDARD.encode_slice(bytes, &mut out[start..]).unwrap_or(0);
    out.truncate(start + written);
    out.extend_from_slice(b"}}");
}

/// A DynamoDB number as an Ion decimal, every digit kept, only respelled where Ion's grammar
/// needs it:
///
/// - accepted: `[+-]? digits? ('.' digits?)? ([eE] [+-]? digits)?` with at least one mantissa
///   digit; anything else is refused (it could not be a decimal);
/// - the mantissa sign: `-` is kept, `+` dropped; zero loses its sign (DynamoDB has no
///   negative zero, Ion does);
/// - the integer part loses its leading zeros (Ion forbids them), keeping one `0` before a
///   fraction or when it is all zeros: `007` -> `7.`, `.5` -> `0.5`;
/// - the fraction is kept as written, trailing zeros included (Ion decimals carry precision):
///   `1.50` -> `1.50`;
/// - without an exponent the number ends in `.` when it has no fraction, so it is a decimal and
///   not an Ion int: `103` -> `103.`, `5.` -> `5.`;
/// - an exponent becomes `d`, its `+` and leading zeros dropped: `1.5E+20` -> `1.5d20`,
///   `-2.5e-07` -> `-2.5d-7`, `6E2` -> `6d2`, `5.E3` -> `5d3`.
fn write_decimal(out: &mut Vec<u8>, number: &str) -> Result<(), InvalidNumber> {
    let invalid = || InvalidNumber(format!("N {number:?} is not a decimal number"));
    let (mantissa, exponent) = match number.find(['e', 'E']) {
        Some(at) => (&number[..at], Some(&number[at + 1..])),
        None => (number, None),
    };
    let (negative, mantissa) = match mantissa.as_bytes().first() {
        Some(b'-') => (true, &mantissa[1..]),
        Some(b'+') => (false, &mantissa[1..]),
        _ => (false, mantissa),
    };
    let (integer, fraction) = match mantissa.split_once('.') {
        Some((integer, fraction)) => (integer, Some(fraction)),
        None => (mantissa, None),
    };
    let fraction_digits = fraction.unwrap_or("");
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if integer.len() + fraction_digits.len() == 0 || !all_digits(integer) || !all_digits(fraction_digits) {
        return Err(invalid());
    }
    let exponent = match exponent {
        None => None,
        Some(text) => {
            let (exponent_negative, digits) = match text.as_bytes().first() {
                Some(b'-') => (true, &text[1..]),
                Some(b'+') => (false, &text[1..]),
                _ => (false, text),
            };
            if digits.is_empty() || !all_digits(digits) {
                return Err(invalid());
            }
            let digits = digits.trim_start_matches('0');
            // `-0` is `0`; an exponent of zero is written `d0`.
            Some((exponent_negative && !digits.is_empty(), if digits.is_empty() { "0" } else { digits }))
        }
    };
    let is_zero = integer.bytes().chain(fraction_digits.bytes()).all(|b| b == b'0');
    if negative && !is_zero {
        out.push(b'-');
    }
    let integer = integer.trim_start_matches('0');
    out.extend_from_slice(if integer.is_empty() { b"0" } else { integer.as_bytes() });
    if !fraction_digits.is_empty() {
        out.push(b'.');
        out.extend_from_slice(fraction_digits.as_bytes());
    }
    match exponent {
        Some((exponent_negative, digits)) => {
            out.push(b'd');
            if exponent_negative {
                out.push(b'-');
            }
            out.extend_from_slice(digits.as_bytes());
        }
        None if fraction_digits.is_empty() => out.push(b'.'),
        None => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::page::{self, writer};

    #[test]
    fn change_lines_are_the_dynamodb_json_record_in_ion() {
        let keys = [("pk", Value::S("a")), ("sk", Value::N("600"))];
        let new = [("pk", Value::S("a")), ("sk", Value::N("600")), ("b", Value::B(&[1]))];
        let mut out = Vec::new();
        write_change_line(&mut out, 1_700_000_000_000_001, &keys, Some(&new), Some(&keys)).unwrap();
        write_change_line(&mut out, 5, &keys, None, None).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            concat!(
                "$ion_1_0 {Metadata:{WriteTimestampMicros:1700000000000001.},Keys:{pk:\"a\",sk:600.},",
                "NewImage:{pk:\"a\",sk:600.,b:{{AQ==}}},OldImage:{pk:\"a\",sk:600.}}\n",
                "$ion_1_0 {Metadata:{WriteTimestampMicros:5.},Keys:{pk:\"a\",sk:600.}}\n",
            )
        );
        let line = String::from_utf8({
            let mut out = Vec::new();
            write_change_line(&mut out, 5, &keys, Some(&new), None).unwrap();
            out
        })
        .unwrap();
        assert!(crate::ion_check::change_line(line.trim_end(), &Default::default()).is_ok(), "{line}");
        assert!(write_change_line(&mut Vec::new(), 5, &[("n", Value::N("1e"))], None, None).is_err());
    }

    /// The line for an item, read through a page as an encoder sees it.
    fn line(item: &[(&str, Value<'_>)]) -> String {
        let packed = writer::page(&[item.to_vec()]);
        let items = page::read(&packed).unwrap();
        let mut out = Vec::new();
        write_line(&mut out, &items[0]).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn decimal(number: &str) -> Result<String, InvalidNumber> {
        let mut out = Vec::new();
        write_decimal(&mut out, number)?;
        Ok(String::from_utf8(out).unwrap())
    }

    fn symbol(name: &str) -> String {
        let mut out = Vec::new();
        write_symbol(&mut out, name);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn writes_every_attribute_kind_as_aws_does_with_names_sorted() {
        let item = vec![
            ("s", Value::S("é\"\n\u{1}")),
            ("n", Value::N("-1.5E+38")),
            ("b", Value::B(&[0, 255, 128])),
            ("t", Value::Bool(false)),
            ("u", Value::Bool(true)),
            ("z", Value::Null),
            ("ss", Value::Ss(vec!["a", "b"])),
            ("ns", Value::Ns(vec!["1", "99999999999999999999999999999999999999"])),
            ("bs", Value::Bs(vec![&[1u8][..], &[][..]])),
            ("l", Value::L(vec![Value::L(vec![]), Value::N("0")])),
            ("m", Value::M(vec![("y", Value::M(vec![])), ("x", Value::S(""))])),
        ];
        assert_eq!(
            line(&item),
            concat!(
                r#"$ion_1_0 {Item:{b:{{AP+A}},bs:$dynamodb_BS::[{{AQ==}},{{}}],l:[[],0.],"#,
                r#"m:{x:"",y:{}},n:-1.5d38,ns:$dynamodb_NS::[1.,99999999999999999999999999999999999999.],"#,
                r#"s:"é\"\n\x01",ss:$dynamodb_SS::["a","b"],t:false,u:true,z:null}}"#,
                "\n"
            )
        );
    }

    #[test]
    fn numbers_are_decimals_with_every_digit_kept() {
        let cases = [
            ("103", "103."),
            ("0", "0."),
            ("-0", "0."),
            ("-0.000", "0.000"),
            ("+7", "7."),
            ("007", "7."),
            ("000", "0."),
            ("00.5", "0.5"),
            (".5", "0.5"),
            ("-.5", "-0.5"),
            ("5.", "5."),
            ("1.50", "1.50"),
            ("600", "600."),
            ("6E2", "6d2"),
            ("6e+2", "6d2"),
            ("5.E3", "5d3"),
            ("1.5E+20", "1.5d20"),
            ("-2.5E-10", "-2.5d-10"),
            ("-2.5e-07", "-2.5d-7"),
            ("1E+0", "1d0"),
            ("1E-0", "1d0"),
            ("0.0E5", "0.0d5"),
            ("-1E-130", "-1d-130"),
            ("9.9999999999999999999999999999999999999E+125", "9.9999999999999999999999999999999999999d125"),
            ("12345678901234567890123456789012345678", "12345678901234567890123456789012345678."),
            ("-98765432109876543210987654321098765432", "-98765432109876543210987654321098765432."),
            ("0.000000000000000000000000000000000001", "0.000000000000000000000000000000000001"),
        ];
        for (number, expected) in cases {
            assert_eq!(decimal(number).unwrap(), expected, "{number}");
        }
    }

    #[test]
    fn refuses_what_is_not_a_number() {
        for bad in [
            "", "-", "+", ".", "-.", "1e", "1E+", "e5", "1.2.3", "0x10", "1_000", " 1", "1 ", "NaN", "Infinity",
            "1e5.5", "١",
        ] {
            let err = decimal(bad).unwrap_err();
            assert!(err.0.contains("is not a decimal number"), "{bad:?}: {err:?}");
        }
        let packed = writer::page(&[vec![("n", Value::Ns(vec!["1", "x"]))]]);
        let items = page::read(&packed).unwrap();
        assert!(write_line(&mut Vec::new(), &items[0]).is_err());
    }

    #[test]
    fn field_names_are_bare_only_when_plain_identifiers() {
        let cases = [
            ("pk", "pk"),
            ("_x9$", "_x9$"),
            ("$dynamodb_SS", "$dynamodb_SS"),
            ("$ion_symbol_table", "$ion_symbol_table"),
            ("Item", "Item"),
            ("$", "$"),
            ("$1", "'$1'"),
            ("$0", "'$0'"),
            ("$12x", "$12x"),
            ("null", "'null'"),
            ("true", "'true'"),
            ("false", "'false'"),
            ("nan", "'nan'"),
            ("Null", "Null"),
            ("nulls", "nulls"),
            ("null.string", "'null.string'"),
            ("9lives", "'9lives'"),
            ("a b", "'a b'"),
            ("a-b", "'a-b'"),
            ("+inf", "'+inf'"),
            ("", "''"),
            ("it's", r"'it\'s'"),
            ("back\\slash", r"'back\\slash'"),
            ("say \"hi\"", "'say \"hi\"'"),
            ("a \"strange\" name\n", "'a \"strange\" name\\n'"),
            ("tab\tnul\0del\u{7f}", r"'tab\tnul\x00del\x7f'"),
            ("é", "'é'"),
        ];
        for (name, expected) in cases {
            assert_eq!(symbol(name), expected, "{name:?}");
        }
    }

    #[test]
    fn strings_escape_quotes_backslashes_and_control_characters_only() {
        let text = "quote\" apostrophe' backslash\\ slash/ newline\n return\r tab\t nul\u{0} unit\u{1f} del\u{7f} \
                    日本語 🎉 \u{2028}\u{2029} \u{fffd} \u{10ffff}";
        let mut out = Vec::new();
        write_string(&mut out, text);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\"quote\\\" apostrophe' backslash\\\\ slash/ newline\\n return\\r tab\\t nul\\x00 unit\\x1f del\\x7f \
             日本語 🎉 \u{2028}\u{2029} \u{fffd} \u{10ffff}\""
        );
    }

    #[test]
    fn every_byte_value_goes_into_a_blob() {
        let all_bytes: Vec<u8> = (0..=255).collect();
        let text = line(&[("bin", Value::B(&all_bytes))]);
        let b64 = text.strip_prefix("$ion_1_0 {Item:{bin:{{").unwrap().strip_suffix("}}}}\n").unwrap();
        assert_eq!(STANDARD.decode(b64).unwrap(), all_bytes);
    }
}
