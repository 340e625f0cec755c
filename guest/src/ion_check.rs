//! Reading an `ION` data line into borrowed [`Value`] trees (in the caller's arena), for
//! `verify` and `restore`: `$ion_1_0 {Item:{…}}` (or an
//! incremental export's change record), Ion text of the kinds AWS writes, typed as AWS types
//! them (`ion_text` is the writer, `../shared/FORMAT.md` the mapping):
//!
//! string -> `S`; decimal (or int) -> `N`; blob -> `B`; bool -> `BOOL`; `null` -> `NULL`;
//! `$dynamodb_SS::[…]` / `$dynamodb_NS::[…]` / `$dynamodb_BS::[…]` -> sets; list -> `L`;
//! struct -> `M`. Anything else (a float, a typed null, another annotation, a field name twice
//! in one struct) is refused, naming the column.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use ddb_export_data_files::json_page::Arena;
use ddb_export_data_files::page::{Item, Value};

use crate::item_check::MAX_DEPTH;
use crate::json_line::ChangeLine;

/// `$ion_1_0 {Item:{…}}`: the item.
pub fn item_line<'a>(text: &'a str, arena: &'a Arena) -> Result<Item<'a>, String> {
    let mut fields = record(text, arena)?;
    match fields.as_slice() {
        [("Item", _)] => match fields.pop() {
            Some((_, Value::M(item))) => Ok(item),
            _ => Err("`Item` is not a struct".into()),
        },
        _ => match fields.iter().find(|(name, _)| *name != "Item") {
            Some((other, _)) => Err(format!("has the unexpected field `{other}`")),
            None => Err("has no `Item` field".into()),
        },
    }
}

/// `$ion_1_0 {Metadata:{WriteTimestampMicros:<decimal>},Keys:{…},NewImage:{…},OldImage:{…}}`.
pub fn change_line<'a>(text: &'a str, arena: &'a Arena) -> Result<ChangeLine<'a>, String> {
    let mut change = ChangeLine::default();
    let (mut keys, mut metadata) = (false, false);
    for (name, value) in record(text, arena)? {
        let Value::M(entries) = value else { return Err(format!("`{name}` is not a struct")) };
        match name {
            "Keys" => (change.keys, keys) = (entries, true),
            "NewImage" => change.new_image = Some(entries),
            "OldImage" => change.old_image = Some(entries),
            "Metadata" => {
                match entries.as_slice() {
                    [("WriteTimestampMicros", Value::N(micros))]
                        if micros.bytes().all(|b| b.is_ascii_digit() || b == b'.') => {}
                    _ => return Err("`Metadata` is not {WriteTimestampMicros:<micros>}".into()),
                }
                metadata = true;
            }
            other => return Err(format!("has the unexpected field `{other}`")),
        }
    }
    match (keys, metadata) {
        (true, true) => Ok(change),
        (false, _) => Err("has no `Keys` field".into()),
        (true, false) => Err("has no `Metadata` field".into()),
    }
}

/// The record struct of a line, its fields read as attributes (each a struct for a good line).
fn record<'a>(text: &'a str, arena: &'a Arena) -> Result<Item<'a>, String> {
    let body = text.strip_prefix("$ion_1_0").ok_or("does not start with $ion_1_0")?;
    let mut reader = Reader { bytes: body.as_bytes(), at: 0, arena };
    reader.space();
    if reader.peek() != Some(b'{') {
        return Err("is not `$ion_1_0 {…}`".into());
    }
    // The record's own fields hold items: their structs are the items' top level.
    let fields = reader.structure(0, true)?;
    reader.space();
    if reader.at != reader.bytes.len() {
        return Err(format!("has bytes after its record, at column {}", reader.at + 9));
    }
    Ok(fields)
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
    /// Where the line's unescaped strings, numbers and blobs live.
    arena: &'a Arena,
}

/// A set's annotation.
#[derive(Clone, Copy)]
enum Set {
    Strings,
    Numbers,
    Binaries,
}

impl<'a> Reader<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\r')) {
            self.at += 1;
        }
    }

    fn error(&self, what: &str) -> String {
        format!("{what} at column {}", self.at + 9)
    }

    fn expect(&mut self, byte: u8) -> Result<(), String> {
        self.space();
        if self.peek() == Some(byte) {
            self.at += 1;
            Ok(())
        } else {
            Err(self.error(&format!("expected `{}`", byte as char)))
        }
    }

    /// A value, with a set annotation if it has one. `depth` counts the `L`/`M` containers
    /// around it, as DynamoDB does.
    fn value(&mut self, depth: usize) -> Result<Value<'a>, String> {
        self.space();
        match self.peek() {
            Some(b'{') if self.bytes.get(self.at + 1) == Some(&b'{') => self.blob().map(Value::B),
            Some(b'{') => {
                let depth = self.container(depth)?;
                self.structure(depth, false).map(Value::M)
            }
            Some(b'[') => {
                let depth = self.container(depth)?;
                self.list(|reader| reader.value(depth)).map(Value::L)
            }
            Some(b'"') => self.string(b'"').map(Value::S),
            Some(b'-' | b'0'..=b'9') => self.number().map(Value::N),
            Some(b'\'' | b'a'..=b'z' | b'A'..=b'Z' | b'_' | b'$') => {
                let start = self.at;
                let symbol = self.symbol()?;
                self.space();
                if self.bytes[self.at..].starts_with(b"::") {
                    self.at += 2;
                    let set = match symbol {
                        "$dynamodb_SS" => Set::Strings,
                        "$dynamodb_NS" => Set::Numbers,
                        "$dynamodb_BS" => Set::Binaries,
                        other => return Err(format!("the annotation {other:?}, not a set's, at column {}", start + 9)),
                    };
                    return self.set(set);
                }
                match symbol {
                    "true" => Ok(Value::Bool(true)),
                    "false" => Ok(Value::Bool(false)),
                    "null" | "null.null" => Ok(Value::Null),
                    other if other.starts_with("null.") => {
                        Err(format!("the typed null {other}, not a DynamoDB value, at column {}", start + 9))
                    }
                    other => Err(format!("the symbol {other:?}, not a DynamoDB value, at column {}", start + 9)),
                }
            }
            _ => Err(self.error("expected a value")),
        }
    }

    /// The depth inside one more container, refused beyond DynamoDB's.
    fn container(&self, depth: usize) -> Result<usize, String> {
        if depth >= MAX_DEPTH {
            return Err(self.error(&format!("nested deeper than {MAX_DEPTH} levels")));
        }
        Ok(depth + 1)
    }

    /// `$dynamodb_SS::["…",…]` and its kin, after the annotation.
    fn set(&mut self, set: Set) -> Result<Value<'a>, String> {
        self.space();
        Ok(match set {
            Set::Strings => Value::Ss(self.list(|reader| {
                reader.space();
                match reader.peek() {
                    Some(b'"') => reader.string(b'"'),
                    _ => Err(reader.error("a string set holds a value that is not a string")),
                }
            })?),
            Set::Numbers => Value::Ns(self.list(|reader| {
                reader.space();
                match reader.peek() {
                    Some(b'-' | b'0'..=b'9') => reader.number(),
                    _ => Err(reader.error("a number set holds a value that is not a number")),
                }
            })?),
            Set::Binaries => Value::Bs(self.list(|reader| {
                reader.space();
                match (reader.peek(), reader.bytes.get(reader.at + 1)) {
                    (Some(b'{'), Some(b'{')) => reader.blob(),
                    _ => Err(reader.error("a binary set holds a value that is not a blob")),
                }
            })?),
        })
    }

    /// `{name: value, …}`. `items`: the record's own struct, whose fields hold items (their
    /// structs are at depth 0, not containers nested in one).
    fn structure(&mut self, depth: usize, items: bool) -> Result<Item<'a>, String> {
        self.expect(b'{')?;
        let mut fields: Item<'a> = Vec::new();
        loop {
            self.space();
            if self.peek() == Some(b'}') {
                self.at += 1;
                // Sorted by name, as every map of the page format is.
                fields.sort_unstable_by(|a, b| a.0.cmp(b.0));
                return Ok(fields);
            }
            let start = self.at;
            let name = match self.peek() {
                Some(b'"') => self.string(b'"')?,
                _ => self.symbol()?,
            };
            if fields.iter().any(|(seen, _)| *seen == name) {
                return Err(format!("the field name {name:?} appears twice in one struct, at column {}", start + 9));
            }
            self.expect(b':')?;
            self.space();
            let value = match (items, self.peek()) {
                (true, Some(b'{')) => Value::M(self.structure(0, false)?),
                _ => self.value(depth)?,
            };
            fields.push((name, value));
            self.space();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b'}') => {}
                _ => return Err(self.error("expected `,` or `}` in a struct")),
            }
        }
    }

    /// `[element, …]`.
    fn list<T>(&mut self, mut element: impl FnMut(&mut Self) -> Result<T, String>) -> Result<Vec<T>, String> {
        self.expect(b'[')?;
        let mut values = Vec::new();
        loop {
            self.space();
            if self.peek() == Some(b']') {
                self.at += 1;
                return Ok(values);
            }
            values.push(element(self)?);
            self.space();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b']') => {}
                _ => return Err(self.error("expected `,` or `]` in a list")),
            }
        }
    }

    /// A quoted string or symbol, unescaped.
    fn string(&mut self, quote: u8) -> Result<&'a str, String> {
        self.at += 1;
        let mut text: Vec<u8> = Vec::new();
        loop {
            match self.peek() {
                None | Some(b'\n') => return Err(self.error("an unterminated string")),
                Some(b'\\') => {
                    let escape = self.bytes.get(self.at + 1).copied();
                    let simple = match escape {
                        Some(b'0') => Some(0),
                        Some(b'a') => Some(7),
                        Some(b'b') => Some(8),
                        Some(b't') => Some(b'\t'),
                        Some(b'n') => Some(b'\n'),
                        Some(b'v') => Some(11),
                        Some(b'f') => Some(12),
                        Some(b'r') => Some(b'\r'),
                        Some(byte @ (b'?' | b'/' | b'"' | b'\'' | b'\\')) => Some(byte),
                        _ => None,
                    };
                    if let Some(byte) = simple {
                        text.push(byte);
                        self.at += 2;
                        continue;
                    }
                    let length = match escape {
                        Some(b'x') => 2,
                        Some(b'u') => 4,
                        Some(b'U') => 8,
                        _ => return Err(self.error("an unknown escape")),
                    };
                    let code = self
                        .bytes
                        .get(self.at + 2..self.at + 2 + length)
                        .and_then(|hex| std::str::from_utf8(hex).ok())
                        .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                        .and_then(char::from_u32)
                        .ok_or_else(|| self.error("a bad hex escape"))?;
                    text.extend_from_slice(code.encode_utf8(&mut [0; 4]).as_bytes());
                    self.at += 2 + length;
                }
                Some(byte) if byte == quote => {
                    self.at += 1;
                    let text = std::str::from_utf8(&text).map_err(|_| self.error("a string that is not UTF-8"))?;
                    return Ok(self.arena.alloc_str(text));
                }
                Some(byte) if byte < 0x20 && byte != b'\t' => return Err(self.error("a control character in a string")),
                Some(byte) => {
                    text.push(byte);
                    self.at += 1;
                }
            }
        }
    }

    /// An identifier (a keyword such as `null`, `true`, `null.string` included) or a quoted symbol.
    fn symbol(&mut self) -> Result<&'a str, String> {
        if self.peek() == Some(b'\'') {
            return self.string(b'\'');
        }
        let start = self.at;
        while matches!(self.peek(), Some(b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'$' | b'.')) {
            self.at += 1;
        }
        if start == self.at {
            return Err(self.error("expected a symbol"));
        }
        // Only ASCII was taken: the slice is whole UTF-8, borrowed from the line.
        std::str::from_utf8(&self.bytes[start..self.at]).map_err(|_| self.error("a symbol that is not UTF-8"))
    }

    /// `{{ base64 }}`, decoded.
    fn blob(&mut self) -> Result<&'a [u8], String> {
        self.at += 2;
        let start = self.at;
        let end = self.bytes[start..]
            .windows(2)
            .position(|w| w == b"}}")
            .ok_or_else(|| self.error("an unterminated blob"))?;
        let text: Vec<u8> =
            self.bytes[start..start + end].iter().copied().filter(|b| !b.is_ascii_whitespace()).collect();
        let bytes = STANDARD.decode(&text).map_err(|_| self.error("a blob that is not base64"))?;
        self.at = start + end + 2;
        Ok(self.arena.alloc_slice_copy(&bytes))
    }

    /// A decimal (`1.`, `1.5d-3`, `6d2`) or an int: no leading zero. Returns it in DynamoDB's
    /// number syntax (`1.`, `1.5E-3`, `6E2`); a float (`1e3`) is not a DynamoDB number.
    fn number(&mut self) -> Result<&'a str, String> {
        let start = self.at;
        let mut text = String::new();
        if self.peek() == Some(b'-') {
            text.push('-');
            self.at += 1;
        }
        let digits = |reader: &mut Self, text: &mut String| {
            let from = reader.at;
            while let Some(byte @ (b'0'..=b'9' | b'_')) = reader.peek() {
                if byte != b'_' {
                    text.push(byte as char);
                }
                reader.at += 1;
            }
            reader.at - from
        };
        let whole_start = self.at;
        let whole = digits(self, &mut text);
        if whole == 0 || (whole > 1 && self.bytes[whole_start] == b'0') {
            return Err(self.error("a number with no digits or a leading zero"));
        }
        if self.peek() == Some(b'.') {
            text.push('.');
            self.at += 1;
            digits(self, &mut text);
        }
        match self.peek() {
            Some(b'd' | b'D') => {
                text.push('E');
                self.at += 1;
                if let Some(sign @ (b'+' | b'-')) = self.peek() {
                    text.push(sign as char);
                    self.at += 1;
                }
                if digits(self, &mut text) == 0 {
                    return Err(self.error("an exponent with no digits"));
                }
            }
            Some(b'e' | b'E') => return Err(self.error("a float (DynamoDB numbers are Ion decimals)")),
            _ => {}
        }
        if matches!(self.peek(), Some(b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9')) {
            return Err(format!("{} (after {:?})", self.error("a malformed number"), &self.bytes[start..self.at]));
        }
        Ok(self.arena.alloc_str(&text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_aws_writes_reads_back_typed() {
        let line = r#"$ion_1_0 {Item:{pk:"a\"b\u00e9\x00",n:103.,m:6d2,f:-1.5d-10,b:{{AAE=}},t:true,z:null,ss:$dynamodb_SS::["a",""],ns:$dynamodb_NS::[1.,2.5],bs:$dynamodb_BS::[{{}}],l:[{x:null}],'odd key':{}}}"#;
        let arena = Arena::new();
        let item = item_line(line, &arena).unwrap();
        let get = |name: &str| ddb_export_data_files::page::attribute(&item, name).cloned().unwrap();
        assert_eq!(get("pk"), Value::S("a\"bé\0"));
        assert_eq!((get("n"), get("m"), get("f")), (Value::N("103."), Value::N("6E2"), Value::N("-1.5E-10")));
        assert_eq!(get("b"), Value::B(&[0, 1]));
        assert_eq!((get("t"), get("z")), (Value::Bool(true), Value::Null));
        assert_eq!(get("ss"), Value::Ss(vec!["a", ""]));
        assert_eq!(get("ns"), Value::Ns(vec!["1.", "2.5"]));
        assert_eq!(get("bs"), Value::Bs(vec![&[]]));
        assert_eq!(get("l"), Value::L(vec![Value::M(vec![("x", Value::Null)])]));
        assert_eq!(get("odd key"), Value::M(vec![]));
        assert_eq!(item_line("$ion_1_0 {Item:{}}", &arena).unwrap(), vec![]);
        assert_eq!(item_line("$ion_1_0 {'Item':{\"pk\":\"x\"}}", &arena).unwrap(), vec![("pk", Value::S("x"))]);
    }

    #[test]
    fn malformed_or_foreign_lines_say_where() {
        let bad = [
            ("{Item:{}}", "does not start"),
            ("$ion_1_0 {Item:{pk:\"a}}", "unterminated string"),
            ("$ion_1_0 {Item:{n:007.}}", "leading zero"),
            ("$ion_1_0 {Item:{b:{{not base64!}}}}", "not base64"),
            ("$ion_1_0 {Item:{pk:\"a\"}} x", "after its record"),
            ("$ion_1_0 {Other:{}}", "unexpected field `Other`"),
            ("$ion_1_0 {}", "no `Item`"),
            ("$ion_1_0 {Item:{pk \"a\"}}", "expected `:`"),
            ("$ion_1_0 {Item:{n:1e}}", "float"),
            ("$ion_1_0 {Item:{n:1.5e3}}", "float"),
            ("$ion_1_0 {Item:{pk:\"a\",pk:\"b\"}}", "\"pk\" appears twice"),
            ("$ion_1_0 {Item:{s:$dynamodb_SS::[1.]}}", "not a string"),
            ("$ion_1_0 {Item:{s:other::\"a\"}}", "annotation \"other\""),
            ("$ion_1_0 {Item:{s:null.string}}", "typed null"),
            ("$ion_1_0 {Item:{s:sym}}", "symbol \"sym\""),
        ];
        for (line, expected) in bad {
            let error = item_line(line, &Arena::new()).unwrap_err();
            assert!(error.contains(expected), "{line}: {error}");
        }
    }

    #[test]
    fn change_records_read_back() {
        let line = r#"$ion_1_0 {Metadata:{WriteTimestampMicros:17.},Keys:{pk:"a"},OldImage:{pk:"a",v:1.}}"#;
        let arena = Arena::new();
        let change = change_line(line, &arena).unwrap();
        assert_eq!(change.keys, vec![("pk", Value::S("a"))]);
        assert!(change.old_image.is_some() && change.new_image.is_none());
        assert!(change_line(r#"$ion_1_0 {Keys:{pk:"a"}}"#, &arena).unwrap_err().contains("no `Metadata`"));
    }

    #[test]
    fn nesting_is_bounded_while_reading() {
        let mut value = "\"leaf\"".to_string();
        for _ in 0..=MAX_DEPTH {
            value = format!("[{value}]");
        }
        let error = item_line(&format!("$ion_1_0 {{Item:{{d:{value}}}}}"), &Arena::new()).unwrap_err();
        assert!(error.contains("nested deeper than 32 levels"), "{error}");
        let mut fits = "\"leaf\"".to_string();
        for _ in 0..MAX_DEPTH {
            fits = format!("[{fits}]");
        }
        assert!(item_line(&format!("$ion_1_0 {{Item:{{d:{fits}}}}}"), &Arena::new()).is_ok());
    }
}
