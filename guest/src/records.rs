//! Reading the packed record page of `wit/record-format.md`: DynamoDB stream records for an
//! incremental export, checked, with each image kept as the packed bytes it came in (the
//! compactor keeps those, and decodes them again only to write a line).

use crate::page::{InvalidPage, Item, Reader, tag};

/// A stream record's `eventName`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Insert,
    Modify,
    Remove,
}

/// One stream record, borrowing from the page.
#[derive(Debug, Clone, PartialEq)]
pub struct Record<'a> {
    pub event: Event,
    /// `ApproximateCreationDateTime`, in microseconds since the Unix epoch.
    pub micros: u64,
    /// The key attributes, sorted by name.
    pub keys: Item<'a>,
    /// The packed `map` of `Keys`.
    pub keys_bytes: &'a [u8],
    /// The packed `map` of `NewImage`, checked.
    pub new_image: Option<&'a [u8]>,
    /// The packed `map` of `OldImage`, checked.
    pub old_image: Option<&'a [u8]>,
}

const NEW_IMAGE: u8 = 1;
const OLD_IMAGE: u8 = 2;

/// The records of a page, in order, every map checked as `page-format.md` says.
pub fn read(page: &[u8]) -> Result<Vec<Record<'_>>, InvalidPage> {
    let mut reader = Reader::new(page);
    let count = reader.u32_le()? as usize;
    // A record takes at least 11 bytes: a larger count is a lie, refused before allocating.
    if count > reader.remaining() / 11 {
        return Err(reader.invalid(format!("the page claims {count} records in {} bytes", reader.remaining())));
    }
    let mut records = Vec::with_capacity(count);
    for index in 0..count {
        let record = one(&mut reader).map_err(|e| InvalidPage(format!("record {index}: {}", e.0)))?;
        records.push(record);
    }
    if reader.remaining() != 0 {
        return Err(reader.invalid(format!("{} bytes follow the last record", reader.remaining())));
    }
    Ok(records)
}

fn one<'a>(reader: &mut Reader<'a>) -> Result<Record<'a>, InvalidPage> {
    let event = match reader.u8()? {
        tag::INSERT => Event::Insert,
        tag::MODIFY => Event::Modify,
        tag::REMOVE => Event::Remove,
        other => return Err(reader.invalid(format!("unknown event {other}"))),
    };
    let time = reader.take(8)?;
    let micros = u64::from_le_bytes(time.try_into().unwrap_or_default());
    let start = reader.position();
    let keys = reader.map(0)?;
    let keys_bytes = reader.since(start);
    if keys.is_empty() {
        return Err(reader.invalid("a record without keys".into()));
    }
    let images = reader.u8()?;
    if images & !(NEW_IMAGE | OLD_IMAGE) != 0 {
        return Err(reader.invalid(format!("images byte {images:#04x} has unknown bits")));
    }
    let mut image = |present: bool| -> Result<Option<&'a [u8]>, InvalidPage> {
        if !present {
            return Ok(None);
        }
        let start = reader.position();
        reader.map(0)?;
        Ok(Some(reader.since(start)))
    };
    let new_image = image(images & NEW_IMAGE != 0)?;
    let old_image = image(images & OLD_IMAGE != 0)?;
    Ok(Record { event, micros, keys, keys_bytes, new_image, old_image })
}

/// Writes record pages, for this crate's tests (the host has its own writer).
#[cfg(test)]
pub mod writer {
    use super::Event;
    use crate::page::Value;
    use crate::page::tag;
    use crate::page::writer::map;

    /// One record: event, time, keys, and the images present.
    #[derive(Clone)]
    pub struct Rec<'a> {
        pub event: Event,
        pub micros: u64,
        pub keys: Vec<(&'a str, Value<'a>)>,
        pub new: Option<Vec<(&'a str, Value<'a>)>>,
        pub old: Option<Vec<(&'a str, Value<'a>)>>,
    }

    pub fn page(records: &[Rec<'_>]) -> Vec<u8> {
        let mut out = (records.len() as u32).to_le_bytes().to_vec();
        for r in records {
            out.push(match r.event {
                Event::Insert => tag::INSERT,
                Event::Modify => tag::MODIFY,
                Event::Remove => tag::REMOVE,
            });
            out.extend_from_slice(&r.micros.to_le_bytes());
            map(&mut out, &r.keys);
            out.push(u8::from(r.new.is_some()) | (u8::from(r.old.is_some()) << 1));
            for image in [&r.new, &r.old].into_iter().flatten() {
                map(&mut out, image);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::writer::{Rec, page};
    use super::*;
    use crate::page::{Value, read_map};

    #[test]
    fn reads_back_what_the_writer_wrote_with_images_as_bytes() {
        let records = [
            Rec {
                event: Event::Modify,
                micros: 1_700_000_000_123_456,
                keys: vec![("sk", Value::N("2")), ("pk", Value::S("a"))],
                new: Some(vec![("pk", Value::S("a")), ("v", Value::L(vec![Value::Null]))]),
                old: Some(vec![("pk", Value::S("a"))]),
            },
            Rec { event: Event::Remove, micros: 7, keys: vec![("pk", Value::S("b"))], new: None, old: None },
        ];
        let packed = page(&records);
        let read = read(&packed).unwrap();
        assert_eq!(read.len(), 2);
        assert_eq!(read[0].event, Event::Modify);
        assert_eq!(read[0].micros, 1_700_000_000_123_456);
        assert_eq!(read[0].keys, vec![("pk", Value::S("a")), ("sk", Value::N("2"))]);
        assert_eq!(read_map(read[0].keys_bytes).unwrap(), read[0].keys);
        let new = read_map(read[0].new_image.unwrap()).unwrap();
        assert_eq!(new, vec![("pk", Value::S("a")), ("v", Value::L(vec![Value::Null]))]);
        assert_eq!(read_map(read[0].old_image.unwrap()).unwrap(), vec![("pk", Value::S("a"))]);
        assert_eq!((read[1].event, read[1].new_image, read[1].old_image), (Event::Remove, None, None));
    }

    #[test]
    fn refuses_malformed_records_naming_them() {
        let good =
            page(&[Rec { event: Event::Insert, micros: 1, keys: vec![("pk", Value::S("a"))], new: None, old: None }]);
        let mut bad_event = good.clone();
        bad_event[4] = 9;
        let mut bad_bits = good.clone();
        let last = bad_bits.len() - 1;
        bad_bits[last] = 4;
        let no_keys = page(&[Rec { event: Event::Insert, micros: 1, keys: vec![], new: None, old: None }]);
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (bad_event, "unknown event 9"),
            (bad_bits, "unknown bits"),
            (no_keys, "without keys"),
            ([good.clone(), vec![0]].concat(), "follow the last record"),
            (good[..good.len() - 1].to_vec(), "wanted"),
            (vec![255, 255, 255, 255], "claims"),
        ];
        for (page, expected) in cases {
            let err = read(&page).unwrap_err();
            assert!(err.0.contains(expected), "expected {expected:?} in {err}");
        }
        let mut flipped = good;
        flipped[4] = 7;
        assert!(read(&flipped).unwrap_err().0.starts_with("record 0:"));
    }
}
