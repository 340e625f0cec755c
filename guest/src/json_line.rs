//! Reading a `DYNAMODB_JSON` data line back into [`Attr`]s, for `verify`: `{"Item":{…}}`, or an
//! incremental export's change record. Stricter than a JSON parser into a map: a name twice in
//! one object (which a map would silently keep once) is refused, as is an AttributeValue with
//! no type or two, a value of the wrong JSON type, binary that is not base64.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::item_check::{Attr, MAX_DEPTH};

/// An item or map: its entries in the line's order.
pub type Entries = Vec<(String, Attr)>;

/// An incremental export's change record, read.
#[derive(Debug, Default)]
pub struct ChangeLine {
    pub keys: Entries,
    pub new_image: Option<Entries>,
    pub old_image: Option<Entries>,
}

/// `{"Item":{…}}`: the item.
pub fn item_line(line: &str) -> Result<Entries, String> {
    let mut reader = serde_json::Deserializer::from_str(line);
    let item = reader.deserialize_map(RecordVisitor::Item).map_err(|e| format!("not {{\"Item\":{{…}}}}: {e}"))?;
    reader.end().map_err(|e| format!("bytes after the item: {e}"))?;
    match item {
        Record::Item(item) => Ok(item),
        Record::Change(_) => Err("not {\"Item\":{…}}".into()),
    }
}

/// A change record: `Keys`, `NewImage`, `OldImage`, `Metadata.WriteTimestampMicros`.
pub fn change_line(line: &str) -> Result<ChangeLine, String> {
    let mut reader = serde_json::Deserializer::from_str(line);
    let record =
        reader.deserialize_map(RecordVisitor::Change).map_err(|e| format!("not a DynamoDB JSON change record: {e}"))?;
    reader.end().map_err(|e| format!("bytes after the change record: {e}"))?;
    match record {
        Record::Change(change) => Ok(change),
        Record::Item(_) => Err("not a change record".into()),
    }
}

enum Record {
    Item(Entries),
    Change(ChangeLine),
}

/// The line's outer object.
enum RecordVisitor {
    Item,
    Change,
}

impl<'de> Visitor<'de> for RecordVisitor {
    type Value = Record;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            RecordVisitor::Item => f.write_str("{\"Item\":{…}}"),
            RecordVisitor::Change => f.write_str("a change record {\"Metadata\":…,\"Keys\":{…},…}"),
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Record, A::Error> {
        match self {
            RecordVisitor::Item => {
                let mut item = None;
                while let Some(name) = map.next_key::<String>()? {
                    if name != "Item" {
                        return Err(de::Error::custom(format!("the unexpected key {name:?} beside Item")));
                    }
                    if item.is_some() {
                        return Err(de::Error::custom("\"Item\" appears twice"));
                    }
                    item = Some(map.next_value_seed(MapSeed { depth: 0 })?);
                }
                item.map(Record::Item).ok_or_else(|| de::Error::custom("no \"Item\""))
            }
            RecordVisitor::Change => {
                let mut change = ChangeLine::default();
                let (mut keys, mut metadata) = (false, false);
                while let Some(name) = map.next_key::<String>()? {
                    let twice = || de::Error::custom(format!("{name:?} appears twice"));
                    match name.as_str() {
                        "Keys" if keys => return Err(twice()),
                        "Keys" => {
                            change.keys = map.next_value_seed(MapSeed { depth: 0 })?;
                            keys = true;
                        }
                        "NewImage" if change.new_image.is_some() => return Err(twice()),
                        "NewImage" => change.new_image = Some(map.next_value_seed(MapSeed { depth: 0 })?),
                        "OldImage" if change.old_image.is_some() => return Err(twice()),
                        "OldImage" => change.old_image = Some(map.next_value_seed(MapSeed { depth: 0 })?),
                        "Metadata" if metadata => return Err(twice()),
                        "Metadata" => {
                            let entries = map.next_value_seed(MapSeed { depth: 0 })?;
                            match entries.as_slice() {
                                [(name, Attr::N(micros))]
                                    if name == "WriteTimestampMicros"
                                        && !micros.is_empty()
                                        && micros.bytes().all(|b| b.is_ascii_digit()) => {}
                                _ => {
                                    return Err(de::Error::custom(
                                        "Metadata is not {\"WriteTimestampMicros\":{\"N\":\"<micros>\"}}",
                                    ));
                                }
                            }
                            metadata = true;
                        }
                        other => {
                            return Err(de::Error::custom(format!("the unexpected key {other:?} in a change record")));
                        }
                    }
                }
                match (keys, metadata) {
                    (true, true) => Ok(Record::Change(change)),
                    (false, _) => Err(de::Error::custom("a change record without Keys")),
                    (true, false) => Err(de::Error::custom("a change record without Metadata")),
                }
            }
        }
    }
}

/// An item or `M`: names once each.
struct MapSeed {
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for MapSeed {
    type Value = Entries;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Entries, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for MapSeed {
    type Value = Entries;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a map of attribute names to AttributeValues")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entries, A::Error> {
        let mut entries: Entries = Vec::new();
        while let Some(name) = map.next_key::<String>()? {
            if entries.iter().any(|(seen, _)| *seen == name) {
                return Err(de::Error::custom(format!("the attribute name {name:?} appears twice in one map")));
            }
            let value = map
                .next_value_seed(AttrSeed { depth: self.depth })
                .map_err(|e| de::Error::custom(format!("{name:?}: {e}")))?;
            entries.push((name, value));
        }
        Ok(entries)
    }
}

/// One AttributeValue, `{"<type>": value}`.
struct AttrSeed {
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for AttrSeed {
    type Value = Attr;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Attr, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for AttrSeed {
    type Value = Attr;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an AttributeValue {\"<type>\": value}")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Attr, A::Error> {
        let tag = map.next_key::<String>()?.ok_or_else(|| de::Error::custom("an AttributeValue with no type"))?;
        let blob =
            |text: String| STANDARD.decode(&text).map_err(|e| de::Error::custom(format!("{tag} is not base64: {e}")));
        let container = || {
            if self.depth >= MAX_DEPTH {
                return Err(de::Error::custom(format!("nested deeper than {MAX_DEPTH} levels")));
            }
            Ok(self.depth + 1)
        };
        let value = match tag.as_str() {
            "S" => Attr::S(map.next_value()?),
            "N" => Attr::N(map.next_value()?),
            "B" => Attr::B(blob(map.next_value()?)?),
            "BOOL" => Attr::Bool(map.next_value()?),
            "NULL" => match map.next_value()? {
                true => Attr::Null,
                false => return Err(de::Error::custom("NULL is not true")),
            },
            "SS" => Attr::Ss(map.next_value()?),
            "NS" => Attr::Ns(map.next_value()?),
            "BS" => Attr::Bs(map.next_value::<Vec<String>>()?.into_iter().map(blob).collect::<Result<_, _>>()?),
            "L" => Attr::L(map.next_value_seed(ListSeed { depth: container()? })?),
            "M" => Attr::M(map.next_value_seed(MapSeed { depth: container()? })?),
            other => return Err(de::Error::custom(format!("{other:?} is not an AttributeValue type"))),
        };
        if let Some(other) = map.next_key::<String>()? {
            return Err(de::Error::custom(format!("an AttributeValue with two types, {tag} and {other}")));
        }
        Ok(value)
    }
}

/// An `L`'s elements.
struct ListSeed {
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for ListSeed {
    type Value = Vec<Attr>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Vec<Attr>, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ListSeed {
    type Value = Vec<Attr>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of AttributeValues")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Attr>, A::Error> {
        let mut values = Vec::new();
        while let Some(value) = seq.next_element_seed(AttrSeed { depth: self.depth })? {
            values.push(value);
        }
        Ok(values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_reads_back() {
        let line = r#"{"Item":{"pk":{"S":"a"},"n":{"N":"-1.5E+3"},"b":{"B":"AAE="},"t":{"BOOL":true},"z":{"NULL":true},"ss":{"SS":["x",""]},"ns":{"NS":["1"]},"bs":{"BS":["AA=="]},"l":{"L":[{"M":{"x":{"S":"y"}}}]}}}"#;
        let item = item_line(line).unwrap();
        assert_eq!(item[0], ("pk".to_string(), Attr::S("a".into())));
        assert_eq!(item[2], ("b".to_string(), Attr::B(vec![0, 1])));
        assert_eq!(item[8].1, Attr::L(vec![Attr::M(vec![("x".into(), Attr::S("y".into()))])]));
        assert_eq!(item_line(r#"{"Item":{}}"#).unwrap(), vec![]);
    }

    #[test]
    fn what_a_map_would_hide_is_refused() {
        let cases = [
            (r#"{"Item":{"pk":{"S":"a"},"pk":{"S":"b"}}}"#, "\"pk\" appears twice"),
            (r#"{"Item":{"m":{"M":{"x":{"S":"a"},"x":{"N":"1"}}}}}"#, "\"x\" appears twice"),
            (r#"{"Item":{"pk":{"S":"a"}},"Item":{"pk":{"S":"b"}}}"#, "\"Item\" appears twice"),
            (r#"{"Item":{"pk":{"S":"a","N":"1"}}}"#, "two types"),
            (r#"{"Item":{"pk":{}}}"#, "no type"),
            (r#"{"Item":{"pk":{"B":"not base64!"}}}"#, "not base64"),
            (r#"{"Item":{"pk":{"X":"a"}}}"#, "\"X\" is not an AttributeValue type"),
            (r#"{"Item":{"pk":{"S":"a"}}} x"#, "bytes after"),
            (r#"{"Item":{"pk":{"S":"a"}},"Other":1}"#, "unexpected key \"Other\""),
            (r#"{"Item":{"pk":{"NULL":false}}}"#, "NULL is not true"),
        ];
        for (line, expected) in cases {
            let error = item_line(line).unwrap_err();
            assert!(error.contains(expected), "{line}: {error}");
        }
    }

    #[test]
    fn nesting_is_bounded_while_reading() {
        let mut value = r#"{"S":"leaf"}"#.to_string();
        for _ in 0..=MAX_DEPTH {
            value = format!(r#"{{"L":[{value}]}}"#);
        }
        let error = item_line(&format!(r#"{{"Item":{{"d":{value}}}}}"#)).unwrap_err();
        assert!(error.contains("nested deeper than 32 levels"), "{error}");
    }

    #[test]
    fn change_records_read_back_and_their_shape_is_checked() {
        let line =
            r#"{"Metadata":{"WriteTimestampMicros":{"N":"17"}},"Keys":{"pk":{"S":"a"}},"NewImage":{"pk":{"S":"a"}}}"#;
        let change = change_line(line).unwrap();
        assert_eq!(change.keys, vec![("pk".to_string(), Attr::S("a".into()))]);
        assert!(change.new_image.is_some() && change.old_image.is_none());
        let cases = [
            (r#"{"Keys":{"pk":{"S":"a"}}}"#, "without Metadata"),
            (r#"{"Metadata":{"WriteTimestampMicros":{"N":"x"}},"Keys":{}}"#, "Metadata is not"),
            (r#"{"Metadata":{"WriteTimestampMicros":{"N":"1"}}}"#, "without Keys"),
            (r#"{"Metadata":{"WriteTimestampMicros":{"N":"1"}},"Keys":{},"Keys":{}}"#, "\"Keys\" appears twice"),
            (r#"{"Metadata":{"WriteTimestampMicros":{"N":"1"}},"Keys":{},"Item":{}}"#, "unexpected key \"Item\""),
        ];
        for (line, expected) in cases {
            let error = change_line(line).unwrap_err();
            assert!(error.contains(expected), "{line}: {error}");
        }
    }
}
