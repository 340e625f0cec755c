//! An example ddb-export encoder plugin: the attributes you name, one CSV record per item.
//!
//! ```text
//! ddb-export export ... --encoder csv_encoder.wasm --encoder-arg columns=pk,sk,price
//! ```
//!
//! # Arguments
//!
//! - `columns` (required): the top-level attribute names, comma-separated, in column order.
//!   Each name is taken exactly as written; an empty name, a name given twice, or one with
//!   a leading or trailing space (almost surely a typo of `a, b`) is refused.
//! - `header` (`true` or `false`, default `true`): whether each data file begins with a
//!   record of the column names.
//!
//! # Output
//!
//! Data files `<name>.csv.gz` (output format `CSV`), gzipped at `--compression-level`.
//! Records follow RFC 4180: fields separated by `,`, each record ended by CRLF; a field is
//! quoted (`"..."`, a `"` inside doubled) when it holds `,`, `"`, CR or LF, or begins or ends
//! with a space or a tab. A record of a single empty field is written `""`, so that it is not
//! a blank line.
//!
//! | attribute | field |
//! |---|---|
//! | `S` | the string as is |
//! | `N` | the number's text as DynamoDB sent it |
//! | `B` | base64 (standard alphabet, padded) |
//! | `BOOL` | `true` / `false` |
//! | `NULL`, or no such attribute | empty |
//! | `SS`, `NS`, `BS`, `L`, `M` | compact JSON of the plain values: numbers as JSON numbers with their exact text, binary as base64 strings, sets as arrays in the order given, maps with their keys sorted |
//!
//! An empty `S` and a missing attribute both give an empty field. An item whose `NS` (or `N`
//! inside an `L` or `M`) is not a JSON number cannot be rendered as JSON, and its page is
//! refused naming the item and the column.
//!
//! # Why no `csv` crate
//!
//! The `csv` crate's `QuoteStyle::Necessary` quotes a field for a delimiter, a quote or a line
//! break only, not for leading or trailing spaces (which many readers trim), and its other
//! style quotes every field; the rule above is a few lines of [`write_field`].

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ddb_export_plugin_sdk::{Args, Encoder, Error, Item, Value, attribute, plain_json};

/// The plugin: its columns, and whether files begin with a header record.
#[derive(Debug)]
pub struct Csv {
    columns: Vec<String>,
    header: bool,
}

impl Encoder for Csv {
    const NAME: &'static str = "csv";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const FILE_EXTENSION: &'static str = "csv.gz";
    const OUTPUT_FORMAT: &'static str = "CSV";

    fn open(args: &Args) -> Result<Self, Error> {
        let columns = parse_columns(args.required("columns")?)?;
        let header = args.parse_or("header", true)?;
        Ok(Csv { columns, header })
    }

    fn begin_file(&mut self, out: &mut Vec<u8>) -> Result<(), Error> {
        if self.header {
            write_record(out, self.columns.iter().map(String::as_str));
        }
        Ok(())
    }

    fn write_items(&mut self, items: &[Item<'_>], out: &mut Vec<u8>) -> Result<(), Error> {
        let mut fields = Vec::with_capacity(self.columns.len());
        for (index, item) in items.iter().enumerate() {
            fields.clear();
            for column in &self.columns {
                let field = render(attribute(item, column))
                    .map_err(|e| Error::item(index, format!("column {column:?}: {e}")))?;
                fields.push(field);
            }
            write_record(out, fields.iter().map(|f| f.as_ref()));
        }
        Ok(())
    }
}

ddb_export_plugin_sdk::export_encoder!(Csv);

/// The `columns` argument's names.
fn parse_columns(spec: &str) -> Result<Vec<String>, Error> {
    let mut columns: Vec<String> = Vec::new();
    for name in spec.split(',') {
        let why = if name.is_empty() {
            "has an empty column name"
        } else if name.trim() != name {
            "has a column name with a leading or trailing space"
        } else if columns.iter().any(|c| c == name) {
            "names a column twice"
        } else {
            columns.push(name.to_string());
            continue;
        };
        return Err(Error::argument("columns", format!("{spec:?} {why} ({name:?})")));
    }
    Ok(columns)
}

/// One attribute's field (see the crate doc).
pub fn render<'a>(value: Option<&Value<'a>>) -> Result<Cow<'a, str>, plain_json::NotJsonNumber> {
    Ok(match value {
        None | Some(Value::Null) => Cow::Borrowed(""),
        Some(Value::S(s)) => Cow::Borrowed(s),
        Some(Value::N(n)) => Cow::Borrowed(n),
        Some(Value::B(b)) => Cow::Owned(STANDARD.encode(b)),
        Some(Value::Bool(b)) => Cow::Borrowed(if *b { "true" } else { "false" }),
        Some(nested) => Cow::Owned(plain_json::to_string(nested)?),
    })
}

/// Appends one record: the fields, `,`-separated and quoted as needed, then CRLF.
pub fn write_record<'f>(out: &mut Vec<u8>, fields: impl ExactSizeIterator<Item = &'f str>) {
    let lone = fields.len() == 1;
    for (index, field) in fields.enumerate() {
        if index > 0 {
            out.push(b',');
        }
        if lone && field.is_empty() {
            out.extend_from_slice(b"\"\"");
        } else {
            write_field(out, field);
        }
    }
    out.extend_from_slice(b"\r\n");
}

/// Appends one field, quoted when it holds `,`, `"`, CR or LF, or begins or ends with a space
/// or a tab; a quote inside is doubled.
pub fn write_field(out: &mut Vec<u8>, field: &str) {
    let padded = |c: Option<char>| matches!(c, Some(' ' | '\t'));
    let needs_quotes =
        field.contains([',', '"', '\r', '\n']) || padded(field.chars().next()) || padded(field.chars().last());
    if !needs_quotes {
        out.extend_from_slice(field.as_bytes());
        return;
    }
    out.push(b'"');
    for (index, part) in field.split('"').enumerate() {
        if index > 0 {
            out.extend_from_slice(b"\"\"");
        }
        out.extend_from_slice(part.as_bytes());
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use ddb_export_plugin_sdk::testing::{self, options, page};

    use super::*;

    fn field(text: &str) -> String {
        let mut out = Vec::new();
        write_field(&mut out, text);
        String::from_utf8(out).unwrap()
    }

    /// The one data file's text, from `args` and pages of `items`.
    fn csv(args: &[(&str, &str)], items: &[Item<'_>]) -> String {
        let files = testing::run::<Csv>(args, &options(), &[page(items)]).unwrap();
        assert_eq!(files.len(), 1);
        String::from_utf8(files[0].gunzip().unwrap()).unwrap()
    }

    #[test]
    fn fields_are_quoted_only_when_rfc_4180_or_spaces_need_it() {
        let cases = [
            ("plain", "plain"),
            ("", ""),
            ("a,b", "\"a,b\""),
            ("say \"hi\"", "\"say \"\"hi\"\"\""),
            ("\"", "\"\"\"\""),
            ("line\nbreak", "\"line\nbreak\""),
            ("cr\r", "\"cr\r\""),
            ("crlf\r\n", "\"crlf\r\n\""),
            (" lead", "\" lead\""),
            ("trail ", "\"trail \""),
            ("\ttab", "\"\ttab\""),
            ("in side", "in side"),
            ("é ünïcode", "é ünïcode"),
        ];
        for (text, expected) in cases {
            assert_eq!(field(text), expected, "{text:?}");
        }
    }

    #[test]
    fn records_end_with_crlf_and_a_lone_empty_field_is_quoted() {
        let mut out = Vec::new();
        write_record(&mut out, ["a", "", "c"].into_iter());
        write_record(&mut out, [""].into_iter());
        write_record(&mut out, ["x"].into_iter());
        assert_eq!(out, b"a,,c\r\n\"\"\r\nx\r\n");
    }

    #[test]
    fn every_type_renders_as_documented() {
        let columns = "s,n,b,t,f,null,missing,ss,ns,bs,l,m";
        let item = vec![
            ("s", Value::S("hello, \"world\"")),
            ("n", Value::N("-12.50E+3")),
            ("b", Value::B(b"\x00\x01\xfe\xff")),
            ("t", Value::Bool(true)),
            ("f", Value::Bool(false)),
            ("null", Value::Null),
            ("ss", Value::Ss(vec!["b", "a,c"])),
            ("ns", Value::Ns(vec!["10", "-1.5"])),
            ("bs", Value::Bs(vec![b"hi", b""])),
            ("l", Value::L(vec![Value::N("1"), Value::S("x"), Value::Null, Value::B(b"?")])),
            ("m", Value::M(vec![("z", Value::Bool(true)), ("a", Value::L(vec![]))])),
            ("ignored", Value::S("not a column")),
        ];
        let text = csv(&[("columns", columns)], &[item]);
        let expected = concat!(
            "s,n,b,t,f,null,missing,ss,ns,bs,l,m\r\n",
            r#""hello, ""world""",-12.50E+3,AAH+/w==,true,false,,,"[""b"",""a,c""]","[10,-1.5]","[""aGk="",""""]","[1,""x"",null,""Pw==""]","{""a"":[],""z"":true}""#,
            "\r\n",
        );
        assert_eq!(text, expected);
    }

    #[test]
    fn header_is_optional_and_each_file_has_its_own() {
        let items: Vec<Item> = vec![vec![("pk", Value::S("a"))], vec![("pk", Value::S("b"))]];
        assert_eq!(csv(&[("columns", "pk"), ("header", "false")], &items), "a\r\nb\r\n");
        let pages = [page(&items[..1]), page(&items[1..])];
        let opts = ddb_export_plugin_sdk::Options { target_file_bytes: 1, ..options() };
        let files = testing::run::<Csv>(&[("columns", "pk")], &opts, &pages).unwrap();
        let texts: Vec<Vec<u8>> = files.iter().map(|f| f.gunzip().unwrap()).collect();
        assert_eq!(texts, [b"pk\r\na\r\n".to_vec(), b"pk\r\nb\r\n".to_vec()]);
    }

    #[test]
    fn bad_arguments_are_refused_naming_the_problem() {
        let refused = |args: &[(&str, &str)]| match testing::run::<Csv>(args, &options(), &[]) {
            Err(Error::InvalidArguments(message)) => message,
            other => panic!("expected invalid-arguments, got {other:?}"),
        };
        assert!(refused(&[]).contains("`columns`: is required"));
        assert!(refused(&[("columns", "a,,b")]).contains("empty column name"));
        assert!(refused(&[("columns", "")]).contains("empty column name"));
        assert!(refused(&[("columns", "a,b,a")]).contains("names a column twice (\"a\")"));
        assert!(refused(&[("columns", "a, b")]).contains("leading or trailing space (\" b\")"));
        assert!(refused(&[("columns", "a"), ("header", "yes")]).starts_with("`header`: cannot use \"yes\""));
        assert_eq!(
            refused(&[("columns", "a"), ("delimiter", ";")]),
            "`delimiter`: is unknown: this encoder takes columns, header"
        );
    }

    #[test]
    fn a_number_json_cannot_hold_refuses_the_page_naming_item_and_column() {
        let items: Vec<Item> = vec![vec![("l", Value::L(vec![]))], vec![("l", Value::Ns(vec!["1", "0x1"]))]];
        let err = testing::run::<Csv>(&[("columns", "l")], &options(), &[page(&items)]).unwrap_err();
        assert_eq!(err, Error::InvalidPage("item 1: column \"l\": the number \"0x1\" is not a JSON number".into()));
        // As a scalar `N` it is copied as it is.
        assert_eq!(csv(&[("columns", "n"), ("header", "false")], &[vec![("n", Value::N("0x1"))]]), "0x1\r\n");
    }
}
