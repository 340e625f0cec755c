//! The `DYNAMODB_JSON` line format: one `{"Item":{...}}` per line, AttributeValues written
//! exactly as the DynamoDB API writes them.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::arena::{self, InvalidItem};
use crate::wit::{AttrNode, Item};

/// Appends `{"Item":{...}}\n` for `item` to `out`. Map keys are written sorted by name.
///
/// On error `out` may hold part of the line; callers encode into a scratch buffer.
pub fn write_line(out: &mut Vec<u8>, item: &Item) -> Result<(), InvalidItem> {
    arena::check(item)?;
    out.extend_from_slice(b"{\"Item\":");
    write_map(out, item, &item.attrs)?;
    out.extend_from_slice(b"}\n");
    Ok(())
}

fn write_map(out: &mut Vec<u8>, item: &Item, entries: &[(String, u32)]) -> Result<(), InvalidItem> {
    out.push(b'{');
    for (position, (name, index)) in arena::sorted_entries(entries)?.into_iter().enumerate() {
        if position > 0 {
            out.push(b',');
        }
        write_str(out, name);
        out.push(b':');
        write_value(out, item, *index)?;
    }
    out.push(b'}');
    Ok(())
}

/// Writes one AttributeValue object, e.g. `{"S":"x"}`. `arena::check` has bounded the index
/// and the recursion depth.
fn write_value(out: &mut Vec<u8>, item: &Item, index: u32) -> Result<(), InvalidItem> {
    match &item.nodes[index as usize] {
        AttrNode::S(s) => tagged(out, "S", |out| write_str(out, s)),
        AttrNode::N(n) => tagged(out, "N", |out| write_str(out, n)),
        AttrNode::B(b) => tagged(out, "B", |out| write_base64(out, b)),
        AttrNode::Bool(b) => tagged(out, "BOOL", |out| out.extend_from_slice(if *b { b"true" } else { b"false" })),
        AttrNode::Null => out.extend_from_slice(b"{\"NULL\":true}"),
        AttrNode::Ss(set) => tagged(out, "SS", |out| write_array(out, set, |out, s| write_str(out, s))),
        AttrNode::Ns(set) => tagged(out, "NS", |out| write_array(out, set, |out, n| write_str(out, n))),
        AttrNode::Bs(set) => tagged(out, "BS", |out| write_array(out, set, |out, b| write_base64(out, b))),
        AttrNode::L(children) => {
            out.extend_from_slice(b"{\"L\":[");
            for (position, child) in children.iter().enumerate() {
                if position > 0 {
                    out.push(b',');
                }
                write_value(out, item, *child)?;
            }
            out.extend_from_slice(b"]}");
        }
        AttrNode::M(entries) => {
            out.extend_from_slice(b"{\"M\":");
            write_map(out, item, entries)?;
            out.push(b'}');
        }
    }
    Ok(())
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

/// A JSON string with serde_json's escaping (UTF-8 kept as is, control characters escaped).
fn write_str(out: &mut Vec<u8>, s: &str) {
    // Writing a &str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
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

    fn line(item: &Item) -> String {
        let mut out = Vec::new();
        write_line(&mut out, item).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn writes_every_attribute_kind_as_the_api_does() {
        let item = Item {
            attrs: vec![
                ("s".into(), 0),
                ("n".into(), 1),
                ("b".into(), 2),
                ("t".into(), 3),
                ("z".into(), 4),
                ("ss".into(), 5),
                ("ns".into(), 6),
                ("bs".into(), 7),
                ("l".into(), 8),
                ("m".into(), 9),
            ],
            nodes: vec![
                AttrNode::S("é\"\n\u{1}".into()),
                AttrNode::N("-1.5E+38".into()),
                AttrNode::B(vec![0, 255, 128]),
                AttrNode::Bool(false),
                AttrNode::Null,
                AttrNode::Ss(vec!["a".into(), "b".into()]),
                AttrNode::Ns(vec!["1".into(), "99999999999999999999999999999999999999".into()]),
                AttrNode::Bs(vec![vec![1], vec![]]),
                AttrNode::L(vec![10]),
                AttrNode::M(vec![("y".into(), 11), ("x".into(), 12)]),
                AttrNode::L(vec![]),
                AttrNode::M(vec![]),
                AttrNode::S("".into()),
            ],
        };
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
    fn output_parses_back_with_every_byte_value() {
        let all_bytes: Vec<u8> = (0..=255).collect();
        let item = Item { attrs: vec![("bin".into(), 0)], nodes: vec![AttrNode::B(all_bytes.clone())] };
        let parsed: serde_json::Value = serde_json::from_str(&line(&item)).unwrap();
        let b64 = parsed["Item"]["bin"]["B"].as_str().unwrap();
        assert_eq!(STANDARD.decode(b64).unwrap(), all_bytes);
    }

    #[test]
    fn refuses_duplicate_names() {
        let item = Item { attrs: vec![("a".into(), 0), ("a".into(), 1)], nodes: vec![AttrNode::Null, AttrNode::Null] };
        assert!(write_line(&mut Vec::new(), &item).unwrap_err().0.contains("twice"));
    }
}
