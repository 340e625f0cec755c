//! Packing a Scan page into the bytes of `wit/page-format.md` for `encoder.encode-page`, and
//! stream records into those of `wit/record-format.md` for `change-encoder.add-records`; and
//! ([`unpack_map`]) a packed `map` a restore's decoder returns back into an SDK item.

use std::collections::HashMap;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use ddb_export_data_files::page::{self, Value};

use crate::io::stream::{ChangeEvent, ChangeRecord};
use crate::model::UnsupportedItem;

/// DynamoDB nests `L` and `M` at most 32 levels deep; a component refuses deeper pages.
const MAX_DEPTH: usize = 32;

/// Packs the items of one page, in order, into `out` (cleared first).
pub fn pack(items: &[HashMap<String, AttributeValue>], out: &mut Vec<u8>) -> Result<(), UnsupportedItem> {
    out.clear();
    let count = u32::try_from(items.len()).map_err(|_| unsupported("the page", "more than 2^32 items"))?;
    out.extend_from_slice(&count.to_le_bytes());
    for (index, item) in items.iter().enumerate() {
        map(out, item, 0).map_err(|e| UnsupportedItem { index: Some(index), ..e })?;
    }
    Ok(())
}

/// Packs stream records, in order, into `out` (cleared first).
pub fn pack_records(records: &[ChangeRecord], out: &mut Vec<u8>) -> Result<(), UnsupportedItem> {
    out.clear();
    let count = u32::try_from(records.len()).map_err(|_| unsupported("the page", "more than 2^32 records"))?;
    out.extend_from_slice(&count.to_le_bytes());
    for record in records {
        out.push(match record.event {
            ChangeEvent::Insert => 1,
            ChangeEvent::Modify => 2,
            ChangeEvent::Remove => 3,
        });
        out.extend_from_slice(&record.micros.to_le_bytes());
        let images = u8::from(record.new_image.is_some()) | (u8::from(record.old_image.is_some()) << 1);
        let named =
            |what: &'static str| move |e: UnsupportedItem| UnsupportedItem { path: format!("{what}.{}", e.path), ..e };
        map(out, &record.keys, 0).map_err(named("Keys"))?;
        out.push(images);
        if let Some(image) = &record.new_image {
            map(out, image, 0).map_err(named("NewImage"))?;
        }
        if let Some(image) = &record.old_image {
            map(out, image, 0).map_err(named("OldImage"))?;
        }
    }
    Ok(())
}

/// One packed `map` (a restore's item or key) as the SDK's item, read by the one page reader
/// (`ddb_export_data_files::page`), which also refuses a name twice and nesting past 32.
pub fn unpack_map(bytes: &[u8]) -> Result<HashMap<String, AttributeValue>, String> {
    let entries = page::read_map(bytes).map_err(|e| e.to_string())?;
    Ok(entries.iter().map(|(name, value)| (name.to_string(), attribute(value))).collect())
}

fn attribute(value: &Value<'_>) -> AttributeValue {
    let strings = |set: &[&str]| set.iter().map(|s| s.to_string()).collect();
    match value {
        Value::S(s) => AttributeValue::S(s.to_string()),
        Value::N(n) => AttributeValue::N(n.to_string()),
        Value::B(b) => AttributeValue::B(Blob::new(b.to_vec())),
        Value::Bool(b) => AttributeValue::Bool(*b),
        Value::Null => AttributeValue::Null(true),
        Value::Ss(set) => AttributeValue::Ss(strings(set)),
        Value::Ns(set) => AttributeValue::Ns(strings(set)),
        Value::Bs(set) => AttributeValue::Bs(set.iter().map(|b| Blob::new(b.to_vec())).collect()),
        Value::L(list) => AttributeValue::L(list.iter().map(attribute).collect()),
        Value::M(entries) => {
            AttributeValue::M(entries.iter().map(|(name, value)| (name.to_string(), attribute(value))).collect())
        }
    }
}

fn unsupported(path: &str, reason: &str) -> UnsupportedItem {
    UnsupportedItem { path: path.to_string(), reason: reason.to_string(), index: None, key: None }
}

fn varint(out: &mut Vec<u8>, n: usize) -> Result<(), UnsupportedItem> {
    let mut n = u32::try_from(n).map_err(|_| unsupported("a value", "a length above 2^32"))?;
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return Ok(());
        }
        out.push(byte | 0x80);
    }
}

fn bytes(out: &mut Vec<u8>, b: &[u8]) -> Result<(), UnsupportedItem> {
    varint(out, b.len())?;
    out.extend_from_slice(b);
    Ok(())
}

fn map(out: &mut Vec<u8>, entries: &HashMap<String, AttributeValue>, depth: usize) -> Result<(), UnsupportedItem> {
    varint(out, entries.len())?;
    for (name, v) in entries {
        bytes(out, name.as_bytes())?;
        value(out, v, depth).map_err(|e| UnsupportedItem { path: format!("{name}{}", e.path), ..e })?;
    }
    Ok(())
}

fn value(out: &mut Vec<u8>, v: &AttributeValue, depth: usize) -> Result<(), UnsupportedItem> {
    let strings = |out: &mut Vec<u8>, tag: u8, set: &[String]| -> Result<(), UnsupportedItem> {
        out.push(tag);
        varint(out, set.len())?;
        set.iter().try_for_each(|s| bytes(out, s.as_bytes()))
    };
    match v {
        AttributeValue::S(s) => {
            out.push(1);
            bytes(out, s.as_bytes())
        }
        AttributeValue::N(n) => {
            out.push(2);
            bytes(out, n.as_bytes())
        }
        AttributeValue::B(b) => {
            out.push(3);
            bytes(out, b.as_ref())
        }
        AttributeValue::Bool(b) => {
            out.push(if *b { 5 } else { 4 });
            Ok(())
        }
        AttributeValue::Null(_) => {
            out.push(6);
            Ok(())
        }
        AttributeValue::Ss(set) => strings(out, 7, set),
        AttributeValue::Ns(set) => strings(out, 8, set),
        AttributeValue::Bs(set) => {
            out.push(9);
            varint(out, set.len())?;
            set.iter().try_for_each(|b| bytes(out, b.as_ref()))
        }
        AttributeValue::L(list) => {
            if depth >= MAX_DEPTH {
                return Err(unsupported("", "nesting deeper than 32 levels"));
            }
            out.push(10);
            varint(out, list.len())?;
            for (position, element) in list.iter().enumerate() {
                value(out, element, depth + 1)
                    .map_err(|e| UnsupportedItem { path: format!("[{position}]{}", e.path), ..e })?;
            }
            Ok(())
        }
        AttributeValue::M(entries) => {
            if depth >= MAX_DEPTH {
                return Err(unsupported("", "nesting deeper than 32 levels"));
            }
            out.push(11);
            map(out, entries, depth + 1).map_err(|e| UnsupportedItem { path: format!(".{}", e.path), ..e })
        }
        other => Err(unsupported("", &format!("an AttributeValue type this version does not know ({other:?})"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The guest's reader, compiled natively, reads back exactly what the host packed.
    #[test]
    fn the_guest_reads_back_what_the_host_packs() {
        let item = HashMap::from([
            ("s".to_string(), AttributeValue::S("é\"\n".into())),
            ("n".to_string(), AttributeValue::N("-1E-130".into())),
            ("b".to_string(), AttributeValue::B(Blob::new((0..=255u8).collect::<Vec<_>>()))),
            ("t".to_string(), AttributeValue::Bool(true)),
            ("z".to_string(), AttributeValue::Null(true)),
            ("ss".to_string(), AttributeValue::Ss(vec!["a".into(), "b".into()])),
            ("ns".to_string(), AttributeValue::Ns(vec!["1".into()])),
            ("bs".to_string(), AttributeValue::Bs(vec![Blob::new(vec![1u8])])),
            (
                "l".to_string(),
                AttributeValue::L(vec![AttributeValue::M(HashMap::from([(
                    "x".to_string(),
                    AttributeValue::Null(true),
                )]))]),
            ),
        ]);
        let mut packed = Vec::new();
        pack(&[item.clone(), HashMap::new()], &mut packed).unwrap();
        let items = page::read(&packed).unwrap();
        assert_eq!(items.len(), 2);
        assert!(items[1].is_empty());
        let read: HashMap<&str, &Value> = items[0].iter().map(|(k, v)| (*k, v)).collect();
        assert_eq!(read.len(), item.len());
        assert_eq!(read["s"], &Value::S("é\"\n"));
        assert_eq!(read["n"], &Value::N("-1E-130"));
        assert_eq!(read["b"], &Value::B(&(0..=255u8).collect::<Vec<_>>()));
        assert_eq!(read["t"], &Value::Bool(true));
        assert_eq!(read["z"], &Value::Null);
        assert_eq!(read["ss"], &Value::Ss(vec!["a", "b"]));
        assert_eq!(read["ns"], &Value::Ns(vec!["1"]));
        assert_eq!(read["bs"], &Value::Bs(vec![&[1u8][..]]));
        assert_eq!(read["l"], &Value::L(vec![Value::M(vec![("x", Value::Null)])]));

        // And back: the map alone (a page without its count) unpacks to the same item.
        pack(std::slice::from_ref(&item), &mut packed).unwrap();
        assert_eq!(unpack_map(&packed[4..]).unwrap(), item);
        let error = unpack_map(&packed).unwrap_err();
        assert!(!error.is_empty(), "a page is not a map");
    }

    /// The guest's record reader, compiled natively, reads back what the host packed.
    #[test]
    fn the_guest_reads_back_the_records_the_host_packs() {
        use ddb_export_guest::records::{self, Event};
        let item = |v: &str| {
            HashMap::from([
                ("pk".to_string(), AttributeValue::S("a".into())),
                ("v".to_string(), AttributeValue::N(v.into())),
            ])
        };
        let keys = HashMap::from([("pk".to_string(), AttributeValue::S("a".into()))]);
        let changes = [
            ChangeRecord {
                event: ChangeEvent::Insert,
                micros: 1,
                keys: keys.clone(),
                new_image: Some(item("1")),
                old_image: None,
            },
            ChangeRecord {
                event: ChangeEvent::Modify,
                micros: 1_700_000_000_000_001,
                keys: keys.clone(),
                new_image: Some(item("2")),
                old_image: Some(item("1")),
            },
            ChangeRecord { event: ChangeEvent::Remove, micros: 3, keys, new_image: None, old_image: Some(item("2")) },
        ];
        let mut packed = Vec::new();
        pack_records(&changes, &mut packed).unwrap();
        let read = records::read(&packed).unwrap();
        let events: Vec<Event> = read.iter().map(|r| r.event).collect();
        assert_eq!(events, [Event::Insert, Event::Modify, Event::Remove]);
        assert_eq!(read[1].micros, 1_700_000_000_000_001);
        assert_eq!(read[0].keys, vec![("pk", Value::S("a"))]);
        let new = page::read_map(read[1].new_image.unwrap()).unwrap();
        assert_eq!(new, vec![("pk", Value::S("a")), ("v", Value::N("2"))]);
        assert!(read[2].new_image.is_none() && read[0].old_image.is_none());
    }

    #[test]
    fn refuses_nesting_deeper_than_dynamodb_allows_and_names_the_path() {
        let deep = (0..33).fold(AttributeValue::Null(true), |inner, _| AttributeValue::L(vec![inner]));
        let error = pack(&[HashMap::from([("deep".to_string(), deep)])], &mut Vec::new()).unwrap_err();
        assert!(error.path.starts_with("deep[0][0]"), "{error}");
        assert!(error.reason.contains("32 levels"), "{error}");
    }
}
