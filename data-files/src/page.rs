//! Reading the packed page of `wit/page-format.md` into borrowed values, without copying a
//! single string; and ([`writer`]) packing values into pages, for tests and tools.

use std::fmt;

/// DynamoDB nests `L` and `M` at most 32 levels deep.
pub const MAX_DEPTH: usize = 32;

/// One AttributeValue, borrowing its strings and bytes from the page.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    S(&'a str),
    N(&'a str),
    B(&'a [u8]),
    Bool(bool),
    Null,
    Ss(Vec<&'a str>),
    Ns(Vec<&'a str>),
    Bs(Vec<&'a [u8]>),
    L(Vec<Value<'a>>),
    M(Vec<(&'a str, Value<'a>)>),
}

/// An item: its top-level attributes, sorted by name (as every `M` is).
pub type Item<'a> = Vec<(&'a str, Value<'a>)>;

/// The value of the attribute `name` of an item or `M` read by this module (whose entries are
/// sorted by name, so this is a binary search).
pub fn attribute<'i, 'a>(entries: &'i [(&'a str, Value<'a>)], name: &str) -> Option<&'i Value<'a>> {
    entries.binary_search_by(|(n, _)| (*n).cmp(name)).ok().map(|index| &entries[index].1)
}

/// The most elements a count may reserve memory for up front; more grow as they are read, so
/// a lying count costs nothing before the bytes run out.
const MAX_PREALLOCATION: usize = 1024;

/// Why a page cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidPage(pub String);

impl fmt::Display for InvalidPage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InvalidPage {}

/// The items of a page, in order. Every map's entries come back sorted by name, so encoders
/// write the same bytes whatever order the host's SDK used; a name twice in one map is refused.
pub fn read(page: &[u8]) -> Result<Vec<Item<'_>>, InvalidPage> {
    let mut reader = Reader { buf: page, pos: 0 };
    let count = reader.u32_le()? as usize;
    // Each item takes at least one byte: a larger count is a lie, refused before allocating.
    if count > reader.remaining() {
        return Err(reader.invalid(format!("the page claims {count} items in {} bytes", reader.remaining())));
    }
    let mut items = Vec::with_capacity(count.min(MAX_PREALLOCATION));
    for index in 0..count {
        let item = reader.map(0).map_err(|e| InvalidPage(format!("item {index}: {}", e.0)))?;
        items.push(item);
    }
    if reader.remaining() != 0 {
        return Err(reader.invalid(format!("{} bytes follow the last item", reader.remaining())));
    }
    Ok(items)
}

/// Reads one packed `map` on its own (as `records` keeps them): its entries sorted by name.
/// The whole of `bytes` must be the map.
pub fn read_map(bytes: &[u8]) -> Result<Item<'_>, InvalidPage> {
    let mut reader = Reader::new(bytes);
    let map = reader.map(0)?;
    if reader.remaining() != 0 {
        return Err(reader.invalid(format!("{} bytes follow the map", reader.remaining())));
    }
    Ok(map)
}

/// A cursor over packed bytes. Public for readers of other packed layouts built from the same
/// parts (the default component's stream records, `wit/record-format.md`).
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Bytes read so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// The bytes from `start` (an earlier [`position`](Self::position)) to the current
    /// position; empty if `start` is not an earlier position.
    pub fn since(&self, start: usize) -> &'a [u8] {
        self.buf.get(start..self.pos).unwrap_or_default()
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// An error saying `message` and where the cursor is.
    pub fn invalid(&self, message: String) -> InvalidPage {
        InvalidPage(format!("{message} (at byte {})", self.pos))
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], InvalidPage> {
        if n > self.remaining() {
            return Err(self.invalid(format!("{n} bytes wanted, {} left", self.remaining())));
        }
        let bytes = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(bytes)
    }

    /// The next byte.
    pub fn u8(&mut self) -> Result<u8, InvalidPage> {
        Ok(self.take(1)?[0])
    }

    /// The next four bytes as a little-endian `u32`.
    pub fn u32_le(&mut self) -> Result<u32, InvalidPage> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn varint(&mut self) -> Result<usize, InvalidPage> {
        let mut value = 0u32;
        for shift in [0, 7, 14, 21, 28] {
            let byte = self.u8()?;
            value |= u32::from(byte & 0x7f).checked_shl(shift).unwrap_or(0);
            if byte & 0x80 == 0 {
                if shift == 28 && byte > 0x0f {
                    return Err(self.invalid("a varint overflows u32".into()));
                }
                return Ok(value as usize);
            }
        }
        Err(self.invalid("a varint is longer than 5 bytes".into()))
    }

    /// A count of elements that each take at least one byte.
    fn count(&mut self) -> Result<usize, InvalidPage> {
        let count = self.varint()?;
        if count > self.remaining() {
            return Err(self.invalid(format!("a count of {count} exceeds the {} bytes left", self.remaining())));
        }
        Ok(count)
    }

    fn bytes(&mut self) -> Result<&'a [u8], InvalidPage> {
        let len = self.varint()?;
        self.take(len)
    }

    fn str(&mut self) -> Result<&'a str, InvalidPage> {
        let start = self.pos;
        let bytes = self.bytes()?;
        std::str::from_utf8(bytes).map_err(|_| InvalidPage(format!("a string is not UTF-8 (at byte {start})")))
    }

    /// A packed `map` nested `depth` containers deep, its entries sorted by name.
    pub fn map(&mut self, depth: usize) -> Result<Vec<(&'a str, Value<'a>)>, InvalidPage> {
        let count = self.count()?;
        let mut entries = Vec::with_capacity(count.min(MAX_PREALLOCATION));
        for _ in 0..count {
            let name = self.str()?;
            let value = self.value(depth)?;
            entries.push((name, value));
        }
        entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
        if let Some(pair) = entries.windows(2).find(|pair| pair[0].0 == pair[1].0) {
            return Err(self.invalid(format!("attribute name {:?} appears twice in one map", pair[0].0)));
        }
        Ok(entries)
    }

    fn value(&mut self, depth: usize) -> Result<Value<'a>, InvalidPage> {
        let kind = self.u8()?;
        Ok(match kind {
            tag::S => Value::S(self.str()?),
            tag::N => Value::N(self.str()?),
            tag::B => Value::B(self.bytes()?),
            tag::FALSE => Value::Bool(false),
            tag::TRUE => Value::Bool(true),
            tag::NULL => Value::Null,
            tag::SS | tag::NS => {
                let count = self.count()?;
                let elements = (0..count).map(|_| self.str()).collect::<Result<Vec<_>, _>>()?;
                // (`collect` grows the vector as elements are read, without trusting `count`.)
                if kind == tag::SS { Value::Ss(elements) } else { Value::Ns(elements) }
            }
            tag::BS => {
                let count = self.count()?;
                Value::Bs((0..count).map(|_| self.bytes()).collect::<Result<Vec<_>, _>>()?)
            }
            tag::L | tag::M => {
                if depth >= MAX_DEPTH {
                    return Err(self.invalid(format!("containers nest deeper than {MAX_DEPTH} levels")));
                }
                if kind == tag::L {
                    let count = self.count()?;
                    Value::L((0..count).map(|_| self.value(depth + 1)).collect::<Result<Vec<_>, _>>()?)
                } else {
                    Value::M(self.map(depth + 1)?)
                }
            }
            other => return Err(self.invalid(format!("unknown value tag {other}"))),
        })
    }
}

/// The one-byte tags of `wit/page-format.md`: a value's type, and a stream record's event
/// (`wit/record-format.md`). Every reader and writer of pages uses these.
pub mod tag {
    pub const S: u8 = 1;
    pub const N: u8 = 2;
    pub const B: u8 = 3;
    pub const FALSE: u8 = 4;
    pub const TRUE: u8 = 5;
    pub const NULL: u8 = 6;
    pub const SS: u8 = 7;
    pub const NS: u8 = 8;
    pub const BS: u8 = 9;
    pub const L: u8 = 10;
    pub const M: u8 = 11;

    /// A stream record's `eventName` (`wit/record-format.md`).
    pub const INSERT: u8 = 1;
    pub const MODIFY: u8 = 2;
    pub const REMOVE: u8 = 3;
}

/// Packs values into pages, for tests (this workspace's and plugin authors') and tools. The host
/// has its own writer; this one is small and trusts its input.
pub mod writer {
    use super::{Value, tag};

    /// Unsigned LEB128.
    pub fn varint(out: &mut Vec<u8>, mut n: usize) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }

    fn bytes(out: &mut Vec<u8>, b: &[u8]) {
        varint(out, b.len());
        out.extend_from_slice(b);
    }

    /// One tagged value.
    pub fn value(out: &mut Vec<u8>, v: &Value<'_>) {
        match v {
            Value::S(s) => {
                out.push(tag::S);
                bytes(out, s.as_bytes())
            }
            Value::N(n) => {
                out.push(tag::N);
                bytes(out, n.as_bytes())
            }
            Value::B(b) => {
                out.push(tag::B);
                bytes(out, b)
            }
            Value::Bool(b) => out.push(if *b { tag::TRUE } else { tag::FALSE }),
            Value::Null => out.push(tag::NULL),
            Value::Ss(set) | Value::Ns(set) => {
                out.push(if matches!(v, Value::Ss(_)) { tag::SS } else { tag::NS });
                varint(out, set.len());
                set.iter().for_each(|s| bytes(out, s.as_bytes()));
            }
            Value::Bs(set) => {
                out.push(tag::BS);
                varint(out, set.len());
                set.iter().for_each(|b| bytes(out, b));
            }
            Value::L(list) => {
                out.push(tag::L);
                varint(out, list.len());
                list.iter().for_each(|v| value(out, v));
            }
            Value::M(entries) => {
                out.push(tag::M);
                map(out, entries);
            }
        }
    }

    /// A `map`, its entries in the order given.
    pub fn map(out: &mut Vec<u8>, entries: &[(&str, Value<'_>)]) {
        varint(out, entries.len());
        for (name, v) in entries {
            bytes(out, name.as_bytes());
            value(out, v);
        }
    }

    /// A whole page of items.
    pub fn page(items: &[Vec<(&str, Value<'_>)>]) -> Vec<u8> {
        let mut out = (items.len() as u32).to_le_bytes().to_vec();
        items.iter().for_each(|item| map(&mut out, item));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_back_what_the_writer_wrote() {
        let all_bytes: Vec<u8> = (0..=255).collect();
        let item: Item = vec![
            ("s", Value::S("é\"\n")),
            ("n", Value::N("-1.5E+38")),
            ("b", Value::B(&all_bytes)),
            ("t", Value::Bool(true)),
            ("f", Value::Bool(false)),
            ("z", Value::Null),
            ("ss", Value::Ss(vec!["a", "b"])),
            ("ns", Value::Ns(vec!["1"])),
            ("bs", Value::Bs(vec![&[1u8][..], &[][..]])),
            ("l", Value::L(vec![Value::L(vec![]), Value::M(vec![("x", Value::Null)])])),
            ("m", Value::M(vec![])),
        ];
        let page = writer::page(&[item.clone(), vec![]]);
        let mut sorted = item;
        sorted.sort_by(|a, b| a.0.cmp(b.0));
        assert_eq!(read(&page).unwrap(), vec![sorted, vec![]]);
    }

    fn nested(levels: usize) -> Value<'static> {
        (0..levels).fold(Value::Null, |inner, _| Value::L(vec![inner]))
    }

    #[test]
    fn allows_32_levels_of_containers_and_no_more() {
        assert!(read(&writer::page(&[vec![("a", nested(32))]])).is_ok());
        let err = read(&writer::page(&[vec![("a", nested(33))]])).unwrap_err();
        assert!(err.0.contains("deeper than 32"), "{err}");
    }

    #[test]
    fn refuses_malformed_pages_with_the_item_and_the_reason() {
        let good = writer::page(&[vec![("a", Value::S("x"))]]);
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (good[..good.len() - 1].to_vec(), "wanted"),
            ([good.clone(), vec![0]].concat(), "follow the last item"),
            (vec![255, 255, 255, 255], "claims"),
            ([&1u32.to_le_bytes()[..], &[1, 1, b'a', 99]].concat(), "unknown value tag 99"),
            ([&1u32.to_le_bytes()[..], &[1, 1, 0xff, 6]].concat(), "not UTF-8"),
            ([&1u32.to_le_bytes()[..], &[0xff, 0xff, 0xff, 0xff, 0x0f]].concat(), "count of"),
            ([&1u32.to_le_bytes()[..], &[0x80, 0x80, 0x80, 0x80, 0x80, 0x01]].concat(), "longer than 5 bytes"),
        ];
        for (page, expected) in cases {
            let err = read(&page).unwrap_err();
            assert!(err.0.contains(expected), "expected {expected:?} in {err}");
        }
        let err = read(&[&1u32.to_le_bytes()[..], &[1, 1, b'a', 99]].concat()).unwrap_err();
        assert!(err.0.starts_with("item 0:"), "{err}");
        let twice = writer::page(&[vec![("m", Value::M(vec![("k", Value::Null), ("k", Value::Null)]))]]);
        assert!(read(&twice).unwrap_err().0.contains("\"k\" appears twice"));
    }

    #[test]
    fn attribute_finds_a_name_in_a_read_item() {
        let page = writer::page(&[vec![("z", Value::Null), ("a", Value::S("x")), ("m", Value::Bool(true))]]);
        let items = read(&page).unwrap();
        assert_eq!(attribute(&items[0], "a"), Some(&Value::S("x")));
        assert_eq!(attribute(&items[0], "m"), Some(&Value::Bool(true)));
        assert_eq!(attribute(&items[0], "b"), None);
    }
}
