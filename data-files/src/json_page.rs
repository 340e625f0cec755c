//! Reading a page of items in DynamoDB JSON (the `Items` array of a Scan response, exactly as
//! the service sent it) into the same borrowed [`Item`]s as [`page::read`](crate::page::read)
//! gives for a packed page, with the same rules: every map's entries sorted by name, a name
//! twice in one map refused, `L`/`M` at most [`MAX_DEPTH`] deep. A data file's line, one item
//! or change record wrapped in an object of named parts, is read the same way ([`read_record`]).
//!
//! Strings without escapes are borrowed from the page; the few with escapes, and binaries
//! (base64 in JSON), are decoded into an [`Arena`] that lives as long as the items. The
//! parser is written for this one shape (`[{"name":{"<type>":value},…},…]`) rather than
//! through a general JSON value, so that a page costs one pass and no allocation per string.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::json_text;
use crate::page::{InvalidPage, Item, MAX_DEPTH, Value};

/// Where decoded strings and binaries of a page live.
pub type Arena = bumpalo::Bump;

/// The items of a JSON page, in order.
pub fn read<'a>(json: &'a [u8], arena: &'a Arena) -> Result<Vec<Item<'a>>, InvalidPage> {
    let text = std::str::from_utf8(json).map_err(|e| InvalidPage(format!("the page is not UTF-8: {e}")))?;
    let mut parser = Parser { text, bytes: json, at: 0, arena };
    parser.space();
    parser.expect(b'[')?;
    let mut items = Vec::new();
    parser.space();
    if parser.peek() == Some(b']') {
        parser.at += 1;
    } else {
        loop {
            let index = items.len();
            let item = parser.map(0).map_err(|e| InvalidPage(format!("item {index}: {}", e.0)))?;
            items.push(item);
            parser.space();
            match parser.next() {
                Some(b',') => parser.space(),
                Some(b']') => break,
                _ => return Err(parser.invalid("expected `,` or `]` after an item")),
            }
        }
    }
    parser.space();
    if parser.at != json.len() {
        return Err(parser.invalid("bytes follow the last item"));
    }
    Ok(items)
}

/// One item in DynamoDB JSON (`{"name":{"<type>":value},…}`, the whole of `json`), read as
/// [`read`] reads each item of a page: what a data line's `{"Item":…}` holds.
pub fn read_item<'a>(json: &'a [u8], arena: &'a Arena) -> Result<Item<'a>, InvalidPage> {
    let text = std::str::from_utf8(json).map_err(|e| InvalidPage(format!("the item is not UTF-8: {e}")))?;
    let mut parser = Parser { text, bytes: json, at: 0, arena };
    let item = parser.map(0)?;
    parser.space();
    if parser.at != json.len() {
        return Err(parser.invalid("bytes follow the item"));
    }
    Ok(item)
}

/// A data line's record in DynamoDB JSON: an object whose every value is an item-shaped map
/// (`{"Item":{…}}`, or a change record's `{"Metadata":{…},"Keys":{…},"NewImage":{…}}`), its
/// parts in the line's order, each read as [`read_item`] reads an item. Only the names in
/// `allowed` may appear, each at most once: any other is refused by its name, before its value
/// is read, so a line's cost stays linear whatever it holds. Which parts a line must have is
/// the caller's rule.
pub fn read_record<'a>(
    json: &'a [u8],
    allowed: &[&str],
    arena: &'a Arena,
) -> Result<Vec<(&'a str, Item<'a>)>, InvalidPage> {
    let text = std::str::from_utf8(json).map_err(|e| InvalidPage(format!("the line is not UTF-8: {e}")))?;
    let mut parser = Parser { text, bytes: json, at: 0, arena };
    parser.expect(b'{')?;
    let mut parts: Vec<(&'a str, Item<'a>)> = Vec::new();
    parser.space();
    if parser.peek() == Some(b'}') {
        parser.at += 1;
    } else {
        loop {
            parser.space();
            let start = parser.at;
            let name = parser.string()?;
            if !allowed.contains(&name) {
                parser.at = start;
                return Err(parser.invalid(&format!("the unexpected key {name:?}")));
            }
            // At most `allowed.len()` parts: this search is bounded.
            if parts.iter().any(|(seen, _)| *seen == name) {
                return Err(parser.invalid(&format!("{name:?} appears twice")));
            }
            parser.expect(b':')?;
            let part = parser.map(0).map_err(|e| InvalidPage(format!("{name}: {}", e.0)))?;
            parts.push((name, part));
            parser.space();
            match parser.next() {
                Some(b',') => {}
                Some(b'}') => break,
                _ => return Err(parser.invalid("expected `,` or `}` after a part of the record")),
            }
        }
    }
    parser.space();
    if parser.at != json.len() {
        return Err(parser.invalid("bytes follow the record"));
    }
    Ok(parts)
}

/// The text of element `index` of a JSON array of items (to name an item a message is about),
/// `None` when there is none.
pub fn item_text(json: &[u8], index: usize) -> Option<&str> {
    let text = std::str::from_utf8(json).ok()?;
    let bytes = text.as_bytes();
    let (mut depth, mut element, mut start) = (0usize, 0usize, None);
    let mut at = 0;
    while at < bytes.len() {
        match bytes[at] {
            b'"' => {
                at += 1;
                while at < bytes.len() && bytes[at] != b'"' {
                    at += if bytes[at] == b'\\' { 2 } else { 1 };
                }
            }
            b'[' | b'{' => {
                if depth == 1 && element == index && start.is_none() {
                    start = Some(at);
                }
                depth += 1;
            }
            b']' | b'}' => {
                depth = depth.saturating_sub(1);
                if depth == 1 && element == index {
                    return start.and_then(|start| text.get(start..=at));
                }
            }
            b',' if depth == 1 => element += 1,
            _ => {}
        }
        at += 1;
    }
    None
}

struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
    arena: &'a Arena,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let byte = self.peek()?;
        self.at += 1;
        Some(byte)
    }

    fn invalid(&self, message: &str) -> InvalidPage {
        InvalidPage(format!("{message} (at byte {})", self.at))
    }

    fn space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\n' | b'\r' | b'\t')) {
            self.at += 1;
        }
    }

    fn expect(&mut self, byte: u8) -> Result<(), InvalidPage> {
        self.space();
        if self.next() == Some(byte) {
            Ok(())
        } else {
            self.at = self.at.saturating_sub(1);
            Err(self.invalid(&format!("expected `{}`", byte as char)))
        }
    }

    /// A map (an item or an `M`): `{"name": <attribute>, …}`, sorted by name.
    fn map(&mut self, depth: usize) -> Result<Item<'a>, InvalidPage> {
        self.expect(b'{')?;
        let mut entries: Item<'a> = Vec::new();
        self.space();
        if self.peek() == Some(b'}') {
            self.at += 1;
            return Ok(entries);
        }
        loop {
            self.space();
            let name = self.string()?;
            self.expect(b':')?;
            let value = self.attribute(depth).map_err(|e| InvalidPage(format!("{name}: {}", e.0)))?;
            entries.push((name, value));
            self.space();
            match self.next() {
                Some(b',') => {}
                Some(b'}') => break,
                _ => return Err(self.invalid("expected `,` or `}` in a map")),
            }
        }
        entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
        if let Some(pair) = entries.windows(2).find(|pair| pair[0].0 == pair[1].0) {
            return Err(self.invalid(&format!("attribute name {:?} appears twice in one map", pair[0].0)));
        }
        Ok(entries)
    }

    /// `{"<type>": value}`.
    fn attribute(&mut self, depth: usize) -> Result<Value<'a>, InvalidPage> {
        self.expect(b'{')?;
        self.space();
        if self.peek() == Some(b'}') {
            return Err(self.invalid("an AttributeValue with no type"));
        }
        let tag = self.string()?;
        self.expect(b':')?;
        self.space();
        let value = match tag {
            "S" => Value::S(self.string()?),
            "N" => Value::N(self.string()?),
            "B" => Value::B(self.binary()?),
            "BOOL" => Value::Bool(self.boolean()?),
            "NULL" => match self.boolean()? {
                true => Value::Null,
                false => return Err(self.invalid("NULL is not true")),
            },
            "SS" => Value::Ss(self.list(|p| p.string())?),
            "NS" => Value::Ns(self.list(|p| p.string())?),
            "BS" => Value::Bs(self.list(|p| p.binary())?),
            "L" | "M" if depth >= MAX_DEPTH => {
                return Err(self.invalid(&format!("containers nest deeper than {MAX_DEPTH} levels")));
            }
            "L" => Value::L(self.list(|p| p.attribute(depth + 1))?),
            "M" => Value::M(self.map(depth + 1)?),
            other => return Err(self.invalid(&format!("{other:?} is not an AttributeValue type"))),
        };
        self.space();
        match self.next() {
            Some(b'}') => Ok(value),
            Some(b',') => Err(self.invalid(&format!("an AttributeValue with a second type beside {tag}"))),
            _ => Err(self.invalid("expected `}` after an AttributeValue")),
        }
    }

    /// `[element, …]`.
    fn list<T>(&mut self, mut element: impl FnMut(&mut Self) -> Result<T, InvalidPage>) -> Result<Vec<T>, InvalidPage> {
        self.expect(b'[')?;
        let mut values = Vec::new();
        self.space();
        if self.peek() == Some(b']') {
            self.at += 1;
            return Ok(values);
        }
        loop {
            self.space();
            values.push(element(self)?);
            self.space();
            match self.next() {
                Some(b',') => {}
                Some(b']') => return Ok(values),
                _ => return Err(self.invalid("expected `,` or `]` in a list")),
            }
        }
    }

    fn boolean(&mut self) -> Result<bool, InvalidPage> {
        if self.bytes[self.at..].starts_with(b"true") {
            self.at += 4;
            Ok(true)
        } else if self.bytes[self.at..].starts_with(b"false") {
            self.at += 5;
            Ok(false)
        } else {
            Err(self.invalid("expected true or false"))
        }
    }

    /// A base64 string, decoded into the arena.
    fn binary(&mut self) -> Result<&'a [u8], InvalidPage> {
        let text = self.string()?;
        let decoded = STANDARD.decode(text).map_err(|e| self.invalid(&format!("binary that is not base64: {e}")))?;
        Ok(self.arena.alloc_slice_copy(&decoded))
    }

    /// A JSON string: borrowed from the page when it has no escapes, else decoded into the
    /// arena.
    fn string(&mut self) -> Result<&'a str, InvalidPage> {
        if self.peek() != Some(b'"') {
            return Err(self.invalid("expected a string"));
        }
        let start = self.at + 1;
        let at = json_text::plain_run_end(self.bytes, start);
        match self.bytes.get(at) {
            None => Err(self.invalid("a string is not closed")),
            Some(b'"') => {
                self.at = at + 1;
                // The quotes are ASCII: the slice between them is whole UTF-8.
                Ok(&self.text[start..at])
            }
            Some(b'\\') => self.escaped(start),
            Some(_) => {
                self.at = at;
                Err(self.invalid("a control character in a string"))
            }
        }
    }

    /// The rest of a string that has escapes, from `start` (after its opening quote).
    fn escaped(&mut self, start: usize) -> Result<&'a str, InvalidPage> {
        let mut out = String::new();
        let mut at = start;
        loop {
            let run = at;
            at = json_text::plain_run_end(self.bytes, at);
            out.push_str(&self.text[run..at]);
            self.at = at;
            match self.bytes.get(at) {
                None => return Err(self.invalid("a string is not closed")),
                Some(b'"') => {
                    self.at = at + 1;
                    return Ok(self.arena.alloc_str(&out));
                }
                Some(b'\\') => {
                    let simple = match self.bytes.get(at + 1) {
                        Some(b'"') => Some('"'),
                        Some(b'\\') => Some('\\'),
                        Some(b'/') => Some('/'),
                        Some(b'b') => Some('\u{8}'),
                        Some(b'f') => Some('\u{c}'),
                        Some(b'n') => Some('\n'),
                        Some(b'r') => Some('\r'),
                        Some(b't') => Some('\t'),
                        Some(b'u') => None,
                        _ => return Err(self.invalid("an unknown escape in a string")),
                    };
                    match simple {
                        Some(c) => {
                            out.push(c);
                            at += 2;
                        }
                        None => {
                            let (c, length) = self.unicode_escape(at)?;
                            out.push(c);
                            at += length;
                        }
                    }
                }
                Some(_) => return Err(self.invalid("a control character in a string")),
            }
        }
    }

    /// `\uXXXX` at `at`, or a surrogate pair `\uD8XX\uDCXX`: the character and the escape's length.
    fn unicode_escape(&mut self, at: usize) -> Result<(char, usize), InvalidPage> {
        let hex = |parser: &Self, from: usize| -> Result<u32, InvalidPage> {
            parser
                .text
                .get(from..from + 4)
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .ok_or_else(|| parser.invalid("a bad \\u escape"))
        };
        self.at = at;
        let first = hex(self, at + 2)?;
        if !(0xd800..0xdc00).contains(&first) {
            return char::from_u32(first)
                .map(|c| (c, 6))
                .ok_or_else(|| self.invalid("a lone surrogate in a \\u escape"));
        }
        if self.bytes.get(at + 6..at + 8) != Some(b"\\u") {
            return Err(self.invalid("a lone surrogate in a \\u escape"));
        }
        let second = hex(self, at + 8)?;
        if !(0xdc00..0xe000).contains(&second) {
            return Err(self.invalid("a lone surrogate in a \\u escape"));
        }
        let code = 0x10000 + ((first - 0xd800) << 10) + (second - 0xdc00);
        char::from_u32(code).map(|c| (c, 12)).ok_or_else(|| self.invalid("a bad \\u escape"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_item_reads_as_a_page_s_item_does() {
        let arena = Arena::new();
        let item = read_item(br#"{"b":{"N":"1"},"a":{"S":"x"}}"#, &arena).unwrap();
        assert_eq!(item, vec![("a", Value::S("x")), ("b", Value::N("1"))]);
        assert!(read_item(br#"{"a":{"S":"x"}} x"#, &arena).is_err());
        assert!(read_item(br#"{"a":{"S":"x"},"a":{"S":"y"}}"#, &arena).is_err());
    }
    use crate::page::{self, writer};

    #[test]
    fn a_record_s_parts_read_as_items_in_the_line_s_order() {
        let arena = Arena::new();
        let line = br#"{"Keys":{"pk":{"S":"a"}}, "NewImage":{"v":{"N":"1"},"pk":{"S":"a"}}}"#;
        let allowed = ["Keys", "NewImage", "Item"];
        let parts = read_record(line, &allowed, &arena).unwrap();
        assert_eq!(parts[0], ("Keys", vec![("pk", Value::S("a"))]));
        assert_eq!(parts[1], ("NewImage", vec![("pk", Value::S("a")), ("v", Value::N("1"))]));
        assert!(read_record(b"{}", &allowed, &arena).unwrap().is_empty());
        for (line, expected) in [
            (&br#"{"Item":{},"Item":{}}"#[..], "\"Item\" appears twice"),
            (br#"{"Item":{"a":{"Q":"x"}}}"#, "Item: a: \"Q\" is not"),
            (br#"{"Item":{}} x"#, "bytes follow the record"),
            (br#"{"Item":1}"#, "expected `{`"),
            (b"not json", "expected `{`"),
            (br#"{"Item":{},"eventName":"INSERT"}"#, "the unexpected key \"eventName\" (at byte 11)"),
            (br#"{"Item":{"pk":{}}}"#, "Item: pk: an AttributeValue with no type"),
        ] {
            let error = read_record(line, &allowed, &arena).unwrap_err();
            assert!(error.0.contains(expected), "{}: {error}", String::from_utf8_lossy(line));
        }
    }

    #[test]
    fn reads_what_dynamodb_writes_as_the_packed_reader_reads_its_page() {
        let json = br#" [ {"z":{"NULL":true},"s":{"S":"\u00e9\"\n\\\/\ud83d\ude00 plain"},"n":{"N":"-1.5E+38"},
            "b":{"B":"AAH/"},"t":{"BOOL":true},"f":{"BOOL":false},"ss":{"SS":["a","b"]},"ns":{"NS":["1"]},
            "bs":{"BS":["AQ==",""]},"l":{"L":[{"L":[]},{"M":{"x":{"NULL":true}}}]},"m":{"M":{}}} , {} ] "#;
        let arena = Arena::new();
        let items = read(json, &arena).unwrap();
        let expected_item: Item = vec![
            ("s", Value::S("é\"\n\\/😀 plain")),
            ("n", Value::N("-1.5E+38")),
            ("b", Value::B(&[0, 1, 255])),
            ("t", Value::Bool(true)),
            ("f", Value::Bool(false)),
            ("z", Value::Null),
            ("ss", Value::Ss(vec!["a", "b"])),
            ("ns", Value::Ns(vec!["1"])),
            ("bs", Value::Bs(vec![&[1u8][..], &[][..]])),
            ("l", Value::L(vec![Value::L(vec![]), Value::M(vec![("x", Value::Null)])])),
            ("m", Value::M(vec![])),
        ];
        // The same items as a packed page of them reads back as.
        let packed = writer::page(&[expected_item, vec![]]);
        assert_eq!(items, page::read(&packed).unwrap());
        assert!(read(b"[]", &arena).unwrap().is_empty());
    }

    #[test]
    fn an_item_is_found_without_reading_the_page() {
        let json = br#" [ {"a":{"S":"x,]}"}}, {"b":{"L":[{"S":"\"],"}]}} ,{} ] "#;
        assert_eq!(item_text(json, 1), Some(r#"{"b":{"L":[{"S":"\"],"}]}}"#));
        assert_eq!(item_text(json, 2), Some("{}"));
        assert_eq!(item_text(json, 3), None);
    }

    #[test]
    fn strings_without_escapes_are_borrowed_from_the_page() {
        let json = br#"[{"pk":{"S":"plain"}}]"#;
        let arena = Arena::new();
        let items = read(json, &arena).unwrap();
        let Value::S(text) = items[0][0].1 else { panic!("not a string") };
        assert!(json.as_ptr_range().contains(&text.as_ptr()), "a copy was made");
        assert_eq!(arena.allocated_bytes(), 0);
    }

    #[test]
    fn refuses_what_the_packed_reader_refuses_naming_the_item() {
        let deep = (0..33).fold(r#"{"NULL":true}"#.to_string(), |inner, _| format!(r#"{{"L":[{inner}]}}"#));
        let cases: Vec<(String, &str)> = vec![
            (format!(r#"[{{"a":{deep}}}]"#), "deeper than 32"),
            (r#"[{"k":{"S":"a"},"k":{"S":"b"}}]"#.into(), "\"k\" appears twice"),
            (r#"[{"m":{"M":{"x":{"NULL":true},"x":{"NULL":true}}}}]"#.into(), "\"x\" appears twice"),
            (r#"[{"a":{"X":"y"}}]"#.into(), "\"X\" is not an AttributeValue type"),
            (r#"[{"a":{"S":"x","N":"1"}}]"#.into(), "a second type"),
            (r#"[{"a":{"B":"not base64!"}}]"#.into(), "not base64"),
            (r#"[{"a":{"NULL":false}}]"#.into(), "NULL is not true"),
            (r#"[{"a":{"S":"x"}}] x"#.into(), "bytes follow"),
            (r#"[{"a":{"S":"x"}}"#.into(), "expected `,` or `]`"),
            (r#"[{"a":{"S":"\q"}}]"#.into(), "unknown escape"),
            (r#"[{"a":{"S":"\ud800"}}]"#.into(), "lone surrogate"),
            ("[{\"a\":{\"S\":\"tab\there\"}}]".into(), "control character"),
            (r#"{"a":{"S":"x"}}"#.into(), "expected `[`"),
        ];
        for (json, expected) in cases {
            let error = read(json.as_bytes(), &Arena::new()).unwrap_err();
            assert!(error.0.contains(expected), "{json}: {error}");
        }
        let second = read(br#"[{"a":{"S":"x"}},{"b":{"Q":1}}]"#, &Arena::new()).unwrap_err();
        assert!(second.0.starts_with("item 1: b:"), "{second}");
        assert!(read(&[b'[', 0xff, b']'], &Arena::new()).unwrap_err().0.contains("not UTF-8"));
    }
}
