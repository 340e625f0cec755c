//! Reading a `DYNAMODB_JSON` data line for `verify` and `restore`: `{"Item":{…}}`, or an
//! incremental export's change record, into borrowed [`Value`] trees by the page reader
//! (`json_page`, the one DynamoDB JSON reader of the workspace): strings without escapes are
//! borrowed from the line, the rest live in the caller's arena. Stricter than a JSON parser
//! into a map: a name twice in one object (which a map would silently keep once) is refused, as
//! is an AttributeValue with no type or two, a value of the wrong JSON type, binary that is not
//! base64.

use ddb_export_data_files::json_page::{self, Arena};
use ddb_export_data_files::page::{Item, Value};

/// An incremental export's change record, read.
#[derive(Debug, Default)]
pub struct ChangeLine<'a> {
    pub keys: Item<'a>,
    pub new_image: Option<Item<'a>>,
    pub old_image: Option<Item<'a>>,
}

/// `{"Item":{…}}`: the item.
pub fn item_line<'a>(line: &'a [u8], arena: &'a Arena) -> Result<Item<'a>, String> {
    let shape = |why: String| format!("not {{\"Item\":{{…}}}}: {why}");
    let mut parts = json_page::read_record(line, &["Item"], arena).map_err(|e| shape(e.0))?;
    // One name allowed, none twice: at most one part.
    parts.pop().map(|(_, item)| item).ok_or_else(|| shape("no \"Item\"".into()))
}

/// A change record: `Keys`, `NewImage`, `OldImage`, `Metadata.WriteTimestampMicros`.
pub fn change_line<'a>(line: &'a [u8], arena: &'a Arena) -> Result<ChangeLine<'a>, String> {
    let shape = |why: &str| format!("not a DynamoDB JSON change record: {why}");
    let mut parts =
        json_page::read_record(line, &["Metadata", "Keys", "NewImage", "OldImage"], arena).map_err(|e| shape(&e.0))?;
    let mut take = |name: &str| parts.iter().position(|(n, _)| *n == name).map(|at| parts.swap_remove(at).1);
    let keys = take("Keys").ok_or_else(|| shape("a change record without Keys"))?;
    let metadata = take("Metadata").ok_or_else(|| shape("a change record without Metadata"))?;
    match metadata.as_slice() {
        [("WriteTimestampMicros", Value::N(micros))]
            if !micros.is_empty() && micros.bytes().all(|b| b.is_ascii_digit()) => {}
        _ => return Err(shape("Metadata is not {\"WriteTimestampMicros\":{\"N\":\"<micros>\"}}")),
    }
    Ok(ChangeLine { keys, new_image: take("NewImage"), old_image: take("OldImage") })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::item_check::MAX_DEPTH;

    fn item(line: &str) -> Result<Vec<(String, String)>, String> {
        let arena = Arena::new();
        let item = item_line(line.as_bytes(), &arena)?;
        Ok(item.iter().map(|(name, value)| (name.to_string(), format!("{value:?}"))).collect())
    }

    #[test]
    fn every_type_reads_back() {
        let line = r#"{"Item":{"pk":{"S":"a"},"n":{"N":"-1.5E+3"},"b":{"B":"AAE="},"t":{"BOOL":true},"z":{"NULL":true},"ss":{"SS":["x",""]},"ns":{"NS":["1"]},"bs":{"BS":["AA=="]},"l":{"L":[{"M":{"x":{"S":"y"}}}]}}}"#;
        let arena = Arena::new();
        let item = item_line(line.as_bytes(), &arena).unwrap();
        let get = |name: &str| ddb_export_data_files::page::attribute(&item, name).cloned();
        assert_eq!(get("pk"), Some(Value::S("a")));
        assert_eq!(get("b"), Some(Value::B(&[0, 1])));
        assert_eq!(get("l"), Some(Value::L(vec![Value::M(vec![("x", Value::S("y"))])])));
        assert_eq!(item.len(), 9);
        assert_eq!(item_line(br#"{"Item":{}}"#, &arena).unwrap(), vec![]);
    }

    #[test]
    fn what_a_map_would_hide_is_refused() {
        let cases = [
            (r#"{"Item":{"pk":{"S":"a"},"pk":{"S":"b"}}}"#, "\"pk\" appears twice"),
            (r#"{"Item":{"m":{"M":{"x":{"S":"a"},"x":{"N":"1"}}}}}"#, "\"x\" appears twice"),
            (r#"{"Item":{"pk":{"S":"a"}},"Item":{"pk":{"S":"b"}}}"#, "\"Item\" appears twice"),
            (r#"{"Item":{"pk":{"S":"a","N":"1"}}}"#, "a second type"),
            (r#"{"Item":{"pk":{}}}"#, "an AttributeValue with no type"),
            (r#"{"Item":{"pk":{"B":"not base64!"}}}"#, "not base64"),
            (r#"{"Item":{"pk":{"X":"a"}}}"#, "\"X\" is not an AttributeValue type"),
            (r#"{"Item":{"pk":{"S":"a"}}} x"#, "bytes follow"),
            (r#"{"Item":{"pk":{"S":"a"}},"Other":1}"#, "unexpected key \"Other\""),
            (r#"{"Item":{"pk":{"NULL":false}}}"#, "NULL is not true"),
            (r#"{}"#, "no \"Item\""),
            ("not json", "not {\"Item\":{…}}"),
        ];
        for (line, expected) in cases {
            let error = item(line).unwrap_err();
            assert!(error.contains(expected), "{line}: {error}");
        }
    }

    #[test]
    fn nesting_is_bounded_while_reading() {
        let mut value = r#"{"S":"leaf"}"#.to_string();
        for _ in 0..=MAX_DEPTH {
            value = format!(r#"{{"L":[{value}]}}"#);
        }
        let error = item(&format!(r#"{{"Item":{{"d":{value}}}}}"#)).unwrap_err();
        assert!(error.contains("deeper than 32 levels"), "{error}");
    }

    #[test]
    fn change_records_read_back_and_their_shape_is_checked() {
        let arena = Arena::new();
        let line =
            br#"{"Metadata":{"WriteTimestampMicros":{"N":"17"}},"Keys":{"pk":{"S":"a"}},"NewImage":{"pk":{"S":"a"}}}"#;
        let change = change_line(line, &arena).unwrap();
        assert_eq!(change.keys, vec![("pk", Value::S("a"))]);
        assert!(change.new_image.is_some() && change.old_image.is_none());
        let cases = [
            (r#"{"Keys":{"pk":{"S":"a"}}}"#, "without Metadata"),
            (r#"{"Metadata":{"WriteTimestampMicros":{"N":"x"}},"Keys":{}}"#, "Metadata is not"),
            (r#"{"Metadata":{"WriteTimestampMicros":{"N":"1"}}}"#, "without Keys"),
            (r#"{"Metadata":{"WriteTimestampMicros":{"N":"1"}},"Keys":{},"Keys":{}}"#, "\"Keys\" appears twice"),
            (r#"{"Metadata":{"WriteTimestampMicros":{"N":"1"}},"Keys":{},"Item":{}}"#, "unexpected key \"Item\""),
        ];
        for (line, expected) in cases {
            let error = change_line(line.as_bytes(), &arena).unwrap_err();
            assert!(error.contains(expected), "{line}: {error}");
        }
    }
}
