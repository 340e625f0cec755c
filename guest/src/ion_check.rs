//! Reads an ION data line far enough to say it is one: `$ion_1_0` and one struct holding an
//! `Item` struct (or, for an incremental export, a change record), every value well-formed Ion
//! text of the kinds AWS writes (strings, decimals and other numbers, blobs, booleans, nulls,
//! lists, structs, annotations such as `$dynamodb_SS::`). It checks syntax, not meaning: the
//! writer (`ion_text`) and an independent reader in the tests own the type mapping.

/// Deepest nesting accepted (DynamoDB's 32 levels, plus the record around the item).
const MAX_DEPTH: usize = 40;

/// Checks one line (without its newline).
pub fn line(text: &str, incremental: bool) -> Result<(), String> {
    let body = text.strip_prefix("$ion_1_0").ok_or("does not start with $ion_1_0")?;
    let mut reader = Reader { bytes: body.as_bytes(), at: 0 };
    reader.space();
    if reader.peek() != Some(b'{') {
        return Err("is not `$ion_1_0 {…}`".into());
    }
    let fields = reader.structure(0)?;
    reader.space();
    if reader.at != reader.bytes.len() {
        return Err(format!("has bytes after its record, at column {}", reader.at + 9));
    }
    let (required, allowed): (&[&str], &[&str]) = if incremental {
        (&["Keys", "Metadata"], &["Keys", "Metadata", "NewImage", "OldImage"])
    } else {
        (&["Item"], &["Item"])
    };
    for name in required {
        if !fields.iter().any(|f| f == name) {
            return Err(format!("has no `{name}` field"));
        }
    }
    if let Some(other) = fields.iter().find(|f| !allowed.contains(&f.as_str())) {
        return Err(format!("has the unexpected field `{other}`"));
    }
    Ok(())
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
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

    /// A value, with any annotations before it.
    fn value(&mut self, depth: usize) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err(self.error("nested too deeply"));
        }
        self.space();
        match self.peek() {
            Some(b'{') if self.bytes.get(self.at + 1) == Some(&b'{') => self.blob(),
            Some(b'{') => self.structure(depth).map(drop),
            Some(b'[') => self.list(depth),
            Some(b'"') => self.string(b'"').map(drop),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b'\'' | b'a'..=b'z' | b'A'..=b'Z' | b'_' | b'$') => {
                self.symbol()?;
                self.space();
                if self.bytes[self.at..].starts_with(b"::") {
                    self.at += 2;
                    return self.value(depth);
                }
                Ok(())
            }
            _ => Err(self.error("expected a value")),
        }
    }

    /// `{name: value, …}`; returns the field names.
    fn structure(&mut self, depth: usize) -> Result<Vec<String>, String> {
        self.expect(b'{')?;
        let mut names = Vec::new();
        loop {
            self.space();
            if self.peek() == Some(b'}') {
                self.at += 1;
                return Ok(names);
            }
            let name = match self.peek() {
                Some(b'"') => self.string(b'"')?,
                _ => self.symbol()?,
            };
            names.push(name);
            self.expect(b':')?;
            self.value(depth + 1)?;
            self.space();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b'}') => {}
                _ => return Err(self.error("expected `,` or `}` in a struct")),
            }
        }
    }

    fn list(&mut self, depth: usize) -> Result<(), String> {
        self.expect(b'[')?;
        loop {
            self.space();
            if self.peek() == Some(b']') {
                self.at += 1;
                return Ok(());
            }
            self.value(depth + 1)?;
            self.space();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b']') => {}
                _ => return Err(self.error("expected `,` or `]` in a list")),
            }
        }
    }

    /// A quoted string or symbol, escapes checked; returns its raw text.
    fn string(&mut self, quote: u8) -> Result<String, String> {
        let start = self.at;
        self.at += 1;
        loop {
            match self.peek() {
                None | Some(b'\n') => return Err(self.error("an unterminated string")),
                Some(b'\\') => {
                    let escape = self.bytes.get(self.at + 1).copied();
                    let length = match escape {
                        Some(b'x') => 2,
                        Some(b'u') => 4,
                        Some(b'U') => 8,
                        Some(b'0' | b'a' | b'b' | b't' | b'n' | b'f' | b'r' | b'v' | b'?' | b'/') => 0,
                        Some(b'"' | b'\'' | b'\\') => 0,
                        _ => return Err(self.error("an unknown escape")),
                    };
                    let hex = self.bytes.get(self.at + 2..self.at + 2 + length);
                    if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                        return Err(self.error("a bad hex escape"));
                    }
                    self.at += 2 + length;
                }
                Some(byte) if byte == quote => {
                    self.at += 1;
                    return Ok(String::from_utf8_lossy(&self.bytes[start + 1..self.at - 1]).into_owned());
                }
                Some(byte) if byte < 0x20 && byte != b'\t' => return Err(self.error("a control character in a string")),
                Some(_) => self.at += 1,
            }
        }
    }

    /// An identifier (a keyword such as `null`, `true`, `null.string` included) or a quoted symbol.
    fn symbol(&mut self) -> Result<String, String> {
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
        Ok(String::from_utf8_lossy(&self.bytes[start..self.at]).into_owned())
    }

    /// `{{ base64 }}`.
    fn blob(&mut self) -> Result<(), String> {
        self.at += 2;
        let start = self.at;
        let end = self.bytes[start..]
            .windows(2)
            .position(|w| w == b"}}")
            .ok_or_else(|| self.error("an unterminated blob"))?;
        let text: Vec<u8> =
            self.bytes[start..start + end].iter().copied().filter(|b| !b.is_ascii_whitespace()).collect();
        let valid = text.len().is_multiple_of(4)
            && text.iter().enumerate().all(|(i, b)| {
                b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/' || (*b == b'=' && i + 2 >= text.len())
            });
        if !valid {
            return Err(self.error("a blob that is not base64"));
        }
        self.at = start + end + 2;
        Ok(())
    }

    /// An int, a decimal (`1.`, `1.5d-3`) or a float (`1e3`): digits without a leading zero.
    fn number(&mut self) -> Result<(), String> {
        let start = self.at;
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        let digits = |reader: &mut Self| {
            let from = reader.at;
            while matches!(reader.peek(), Some(b'0'..=b'9' | b'_')) {
                reader.at += 1;
            }
            reader.at - from
        };
        let whole_start = self.at;
        let whole = digits(self);
        if whole == 0 || (whole > 1 && self.bytes[whole_start] == b'0') {
            return Err(self.error("a number with no digits or a leading zero"));
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            digits(self);
        }
        if matches!(self.peek(), Some(b'd' | b'D' | b'e' | b'E')) {
            self.at += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            if digits(self) == 0 {
                return Err(self.error("an exponent with no digits"));
            }
        }
        if matches!(self.peek(), Some(b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9')) {
            return Err(format!("{} (after {:?})", self.error("a malformed number"), &self.bytes[start..self.at]));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn what_aws_writes_reads() {
        let good = [
            r#"$ion_1_0 {Item:{pk:"a\"b\u00e9\x00",n:103.,m:6d2,f:-1.5d-10,b:{{AAE=}},t:true,z:null,ss:$dynamodb_SS::["a",""],ns:$dynamodb_NS::[1.,2.5],bs:$dynamodb_BS::[{{}}],l:[{x:'quoted name'::null}],'odd key':{}}}"#,
            "$ion_1_0 {Item:{}}",
            "$ion_1_0 {'Item':{\"pk\":\"x\"}}",
        ];
        for line in good {
            assert_eq!(super::line(line, false), Ok(()), "{line}");
        }
    }

    #[test]
    fn malformed_lines_say_where() {
        let bad = [
            ("{Item:{}}", "does not start"),
            ("$ion_1_0 {Item:{pk:\"a}}", "unterminated string"),
            ("$ion_1_0 {Item:{n:007.}}", "leading zero"),
            ("$ion_1_0 {Item:{b:{{not base64!}}}}", "not base64"),
            ("$ion_1_0 {Item:{pk:\"a\"}} x", "after its record"),
            ("$ion_1_0 {Other:{}}", "no `Item`"),
            ("$ion_1_0 {Item:{pk \"a\"}}", "expected `:`"),
            ("$ion_1_0 {Item:{n:1e}}", "exponent"),
        ];
        for (line, expected) in bad {
            let error = super::line(line, false).unwrap_err();
            assert!(error.contains(expected), "{line}: {error}");
        }
    }
}
