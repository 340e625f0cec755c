//! The `DYNAMODB_JSON` line format: one `{"Item":{...}}` per line, AttributeValues written
//! exactly as the DynamoDB API writes them.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::page::Value;

/// Appends `{"Item":{...}}\n` for an item to `out`, entries in the order given: the page
/// reader sorts every map by name, so the same table yields the same bytes (and MD5s) on every
/// run whatever order the host's SDK used.
pub fn write_line(out: &mut Vec<u8>, item: &[(&str, Value<'_>)]) {
    out.extend_from_slice(b"{\"Item\":");
    write_map(out, item);
    out.extend_from_slice(b"}\n");
}

/// Appends an incremental export's change record line to `out`:
/// `{"Metadata":{"WriteTimestampMicros":{"N":"<micros>"}},"Keys":{…},"NewImage":{…},"OldImage":{…}}\n`,
/// each image only when given.
pub fn write_change_line(
    out: &mut Vec<u8>,
    micros: u64,
    keys: &[(&str, Value<'_>)],
    new_image: Option<&[(&str, Value<'_>)]>,
    old_image: Option<&[(&str, Value<'_>)]>,
) {
    out.extend_from_slice(b"{\"Metadata\":{\"WriteTimestampMicros\":{\"N\":\"");
    out.extend_from_slice(micros.to_string().as_bytes());
    out.extend_from_slice(b"\"}},\"Keys\":");
    write_map(out, keys);
    if let Some(image) = new_image {
        out.extend_from_slice(b",\"NewImage\":");
        write_map(out, image);
    }
    if let Some(image) = old_image {
        out.extend_from_slice(b",\"OldImage\":");
        write_map(out, image);
    }
    out.extend_from_slice(b"}\n");
}

/// A map of AttributeValues as DynamoDB JSON (`{"a":{"S":"x"}}`), entries in the order given.
pub fn write_map(out: &mut Vec<u8>, entries: &[(&str, Value<'_>)]) {
    out.push(b'{');
    for (position, (name, value)) in entries.iter().enumerate() {
        if position > 0 {
            out.push(b',');
        }
        write_str(out, name);
        out.push(b':');
        write_value(out, value);
    }
    out.push(b'}');
}

/// Writes one AttributeValue object, e.g. `{"S":"x"}`. The page reader bounded the depth.
fn write_value(out: &mut Vec<u8>, value: &Value<'_>) {
    match value {
        Value::S(s) => tagged(out, "S", |out| write_str(out, s)),
        Value::N(n) => tagged(out, "N", |out| write_str(out, n)),
        Value::B(b) => tagged(out, "B", |out| write_base64(out, b)),
        Value::Bool(b) => tagged(out, "BOOL", |out| out.extend_from_slice(if *b { b"true" } else { b"false" })),
        Value::Null => out.extend_from_slice(b"{\"NULL\":true}"),
        Value::Ss(set) => tagged(out, "SS", |out| write_array(out, set, |out, s| write_str(out, s))),
        Value::Ns(set) => tagged(out, "NS", |out| write_array(out, set, |out, n| write_str(out, n))),
        Value::Bs(set) => tagged(out, "BS", |out| write_array(out, set, |out, b| write_base64(out, b))),
        Value::L(values) => {
            out.extend_from_slice(b"{\"L\":[");
            for (position, value) in values.iter().enumerate() {
                if position > 0 {
                    out.push(b',');
                }
                write_value(out, value);
            }
            out.extend_from_slice(b"]}");
        }
        Value::M(entries) => {
            out.extend_from_slice(b"{\"M\":");
            write_map(out, entries);
            out.push(b'}');
        }
    }
}

fn tagged(out: &mut Vec<u8>, tag: &str, body: impl FnOnce(&mut Vec<u8>)) {
    out.extend_from_slice(b"{\"");
    out.extend_from_slice(tag.as_bytes());
    out.extend_from_slice(b"\":");
    body(out);
    out.push(b'}');
}

fn write_array<T>(out: &mut Vec<u8>, values: &[T], mut write: impl FnMut(&mut Vec<u8>, &T)) {
    out.push(b'[');
    for (position, value) in values.iter().enumerate() {
        if position > 0 {
            out.push(b',');
        }
        write(out, value);
    }
    out.push(b']');
}

/// A JSON string with serde_json's escaping, byte for byte (`json_text`).
fn write_str(out: &mut Vec<u8>, s: &str) {
    ddb_export_data_files::json_text::write_str(out, s);
}

fn write_base64(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    let start = out.len();
    out.resize(start + base64::encoded_len(bytes.len(), true).unwrap_or(0), 0);
    let written = STANDARD.encode_slice(bytes, &mut out[start..]).unwrap_or(0);
    out.truncate(start + written);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::page::{self, writer};

    /// The line for an item, read through a page as an encoder sees it.
    fn line(item: &[(&str, Value<'_>)]) -> String {
        let packed = writer::page(&[item.to_vec()]);
        let items = page::read(&packed).unwrap();
        let mut out = Vec::new();
        write_line(&mut out, &items[0]);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn writes_every_attribute_kind_as_the_api_does_with_names_sorted() {
        let item = vec![
            ("s", Value::S("é\"\n\u{1}")),
            ("n", Value::N("-1.5E+38")),
            ("b", Value::B(&[0, 255, 128])),
            ("t", Value::Bool(false)),
            ("z", Value::Null),
            ("ss", Value::Ss(vec!["a", "b"])),
            ("ns", Value::Ns(vec!["1", "99999999999999999999999999999999999999"])),
            ("bs", Value::Bs(vec![&[1u8][..], &[][..]])),
            ("l", Value::L(vec![Value::L(vec![])])),
            ("m", Value::M(vec![("y", Value::M(vec![])), ("x", Value::S(""))])),
        ];
        assert_eq!(
            line(&item),
            concat!(
                r#"{"Item":{"b":{"B":"AP+A"},"bs":{"BS":["AQ==",""]},"l":{"L":[{"L":[]}]},"#,
                r#""m":{"M":{"x":{"S":""},"y":{"M":{}}}},"n":{"N":"-1.5E+38"},"#,
                r#""ns":{"NS":["1","99999999999999999999999999999999999999"]},"s":{"S":"é\"\n\u0001"},"#,
                r#""ss":{"SS":["a","b"]},"t":{"BOOL":false},"z":{"NULL":true}}}"#,
                "\n"
            )
        );
    }

    #[test]
    fn change_lines_carry_metadata_keys_and_the_images_given() {
        let keys = [("pk", Value::S("a"))];
        let new = [("pk", Value::S("a")), ("n", Value::N("1"))];
        let mut out = Vec::new();
        write_change_line(&mut out, 1_700_000_000_000_001, &keys, Some(&new), Some(&keys));
        write_change_line(&mut out, 5, &keys, None, None);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            concat!(
                r#"{"Metadata":{"WriteTimestampMicros":{"N":"1700000000000001"}},"Keys":{"pk":{"S":"a"}},"#,
                r#""NewImage":{"pk":{"S":"a"},"n":{"N":"1"}},"OldImage":{"pk":{"S":"a"}}}"#,
                "\n",
                r#"{"Metadata":{"WriteTimestampMicros":{"N":"5"}},"Keys":{"pk":{"S":"a"}}}"#,
                "\n"
            )
        );
    }

    #[test]
    fn output_parses_back_with_every_byte_value() {
        let all_bytes: Vec<u8> = (0..=255).collect();
        let parsed: serde_json::Value = serde_json::from_str(&line(&[("bin", Value::B(&all_bytes))])).unwrap();
        let b64 = parsed["Item"]["bin"]["B"].as_str().unwrap();
        assert_eq!(STANDARD.decode(b64).unwrap(), all_bytes);
    }
}
