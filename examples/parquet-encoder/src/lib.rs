//! An example ddb-export encoder plugin: the attributes you name, as typed Parquet columns.
//!
//! ```text
//! ddb-export export ... --encoder parquet_encoder.wasm \
//!     --encoder-arg columns=pk,sk:string,price:double,stock:int64,active:boolean,tags:json
//! ```
//!
//! # Arguments
//!
//! - `columns` (required): `name[:type]`, comma-separated, in column order. `name` is a
//!   top-level attribute; the type (after the last `:`) is `string` when left out. An empty
//!   name, a name given twice or an unknown type is refused. A name that itself holds `:`
//!   needs its type spelt out (`a:b:string`).
//! - `compression` (`snappy` or `none`, default `snappy`): the codec of the data pages.
//!
//! # Schema
//!
//! One column per name, every column `OPTIONAL`: an item without the attribute, or with
//! `NULL`, has a null there. Each type takes these attributes; any other is refused (the page
//! fails with `invalid-page`, naming the item's index in the page, the column and the value):
//!
//! | type | Parquet column | takes |
//! |---|---|---|
//! | `string` | `BYTE_ARRAY` (`STRING`) | `S` |
//! | `int64` | `INT64` | `N` holding an integer in the `i64` range (`12`, `-3`; not `1.0` or `1E3`) |
//! | `double` | `DOUBLE` | `N` whose value is a finite double (rounded to the nearest; about 15 significant digits survive) |
//! | `boolean` | `BOOLEAN` | `BOOL` |
//! | `json` | `BYTE_ARRAY` (`STRING`) | any value, as compact plain JSON: `S` a string, `N` a number with its exact text, `B` a base64 string, `BOOL`, and `SS`/`NS`/`BS`/`L`/`M` as arrays and objects of those (see `ddb_export_plugin_sdk::plain_json`) |
//!
//! A `json` column is a `STRING` column whose values are JSON texts; it does not carry
//! Parquet's `JSON` logical type, which not every reader takes as a string (pyarrow 19 and
//! later read it as an extension type).
//!
//! # Files
//!
//! Data files `<name>.parquet` (output format `PARQUET`), stored as they are (Parquet
//! compresses its own pages, so `--compression-level` does not apply). Each Scan page is one
//! row group, written out as soon as its page is encoded, so a file's size follows its data
//! and `--file-size` rolls files over as for the other formats; the footer comes when
//! the file is closed. The writer is deterministic (its `created_by` names the parquet
//! crate's version, and no time is recorded).

use std::sync::Arc;

use ddb_export_plugin_sdk::{Args, Encoder, Error, Item, Value, attribute, plain_json};
use parquet::basic::{Compression, LogicalType, Repetition, Type as PhysicalType};
use parquet::column::writer::ColumnWriter;
use parquet::data_type::ByteArray;
use parquet::errors::ParquetError;
use parquet::file::properties::{WriterProperties, WriterPropertiesPtr};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::{Type, TypePtr};

/// A column's type (see the crate doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    String,
    Int64,
    Double,
    Boolean,
    Json,
}

impl Kind {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "string" => Kind::String,
            "int64" => Kind::Int64,
            "double" => Kind::Double,
            "boolean" => Kind::Boolean,
            "json" => Kind::Json,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Kind::String => "string",
            Kind::Int64 => "int64",
            Kind::Double => "double",
            Kind::Boolean => "boolean",
            Kind::Json => "json",
        }
    }

    /// The Parquet field of a column of this type.
    fn field(self, name: &str) -> Result<Type, ParquetError> {
        let (physical, logical) = match self {
            Kind::String => (PhysicalType::BYTE_ARRAY, Some(LogicalType::String)),
            Kind::Int64 => (PhysicalType::INT64, None),
            Kind::Double => (PhysicalType::DOUBLE, None),
            Kind::Boolean => (PhysicalType::BOOLEAN, None),
            // STRING, not Parquet's JSON logical type: every reader takes a string column,
            // while pyarrow (19 and later) turns a JSON one into an extension type.
            Kind::Json => (PhysicalType::BYTE_ARRAY, Some(LogicalType::String)),
        };
        Type::primitive_type_builder(name, physical)
            .with_repetition(Repetition::OPTIONAL)
            .with_logical_type(logical)
            .build()
    }
}

/// One column: the attribute it holds and its type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub kind: Kind,
}

/// The plugin: the schema, and the writer of the open file.
pub struct Parquet {
    columns: Vec<Column>,
    schema: TypePtr,
    properties: WriterPropertiesPtr,
    /// The open file's writer; its `Vec` holds the bytes not yet handed to the SDK.
    writer: Option<SerializedFileWriter<Vec<u8>>>,
}

impl Encoder for Parquet {
    const NAME: &'static str = "parquet";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const FILE_EXTENSION: &'static str = "parquet";
    const OUTPUT_FORMAT: &'static str = "PARQUET";
    const GZIP: bool = false;

    fn open(args: &Args) -> Result<Self, Error> {
        let columns = parse_columns(args.required("columns")?)?;
        let compression = match args.get("compression").unwrap_or("snappy") {
            "snappy" => Compression::SNAPPY,
            "none" => Compression::UNCOMPRESSED,
            other => return Err(Error::argument("compression", format!("{other:?} is not snappy or none"))),
        };
        let fields = columns
            .iter()
            .map(|c| c.kind.field(&c.name).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| Error::argument("columns", e))?;
        let schema =
            Type::group_type_builder("item").with_fields(fields).build().map_err(|e| Error::argument("columns", e))?;
        let properties = WriterProperties::builder().set_compression(compression).build();
        Ok(Parquet { columns, schema: Arc::new(schema), properties: Arc::new(properties), writer: None })
    }

    fn begin_file(&mut self, out: &mut Vec<u8>) -> Result<(), Error> {
        let writer = self.writer.insert(
            SerializedFileWriter::new(Vec::new(), self.schema.clone(), self.properties.clone())
                .map_err(parquet_error)?,
        );
        drain(writer, out)
    }

    fn write_items(&mut self, items: &[Item<'_>], out: &mut Vec<u8>) -> Result<(), Error> {
        // Every value is checked before the writer is touched: a refused page changes nothing.
        let columns =
            self.columns.iter().map(|column| ColumnValues::of(column, items)).collect::<Result<Vec<_>, _>>()?;
        let Some(writer) = self.writer.as_mut() else {
            return Err(Error::Other("parquet: items came before the file began".into()));
        };
        let mut row_group = writer.next_row_group().map_err(parquet_error)?;
        for values in &columns {
            let Some(mut column) = row_group.next_column().map_err(parquet_error)? else {
                return Err(Error::Other("parquet: the schema has fewer columns than the arguments".into()));
            };
            values.write(column.untyped()).map_err(parquet_error)?;
            column.close().map_err(parquet_error)?;
        }
        row_group.close().map_err(parquet_error)?;
        drain(writer, out)
    }

    fn end_file(&mut self, out: &mut Vec<u8>) -> Result<(), Error> {
        if let Some(writer) = self.writer.take() {
            out.extend(writer.into_inner().map_err(parquet_error)?);
        }
        Ok(())
    }
}

ddb_export_plugin_sdk::export_encoder!(Parquet);

/// Moves the bytes the writer has produced so far to `out`. The writer counts what it has
/// written itself, so emptying its sink does not disturb the offsets in the footer.
fn drain(writer: &mut SerializedFileWriter<Vec<u8>>, out: &mut Vec<u8>) -> Result<(), Error> {
    writer.flush()?;
    out.append(writer.inner_mut());
    Ok(())
}

fn parquet_error(e: ParquetError) -> Error {
    Error::Other(format!("parquet: {e}"))
}

/// The `columns` argument's columns.
fn parse_columns(spec: &str) -> Result<Vec<Column>, Error> {
    let mut columns: Vec<Column> = Vec::new();
    for part in spec.split(',') {
        let (name, kind) = match part.rsplit_once(':') {
            None => (part, Kind::String),
            Some((name, kind)) => {
                let kind = Kind::parse(kind).ok_or_else(|| {
                    Error::argument(
                        "columns",
                        format!("{part:?} has the unknown type {kind:?} (string, int64, double, boolean or json)"),
                    )
                })?;
                (name, kind)
            }
        };
        if name.is_empty() {
            return Err(Error::argument("columns", format!("{spec:?} has an empty column name")));
        }
        if columns.iter().any(|c| c.name == name) {
            return Err(Error::argument("columns", format!("{spec:?} names the column {name:?} twice")));
        }
        columns.push(Column { name: name.to_string(), kind });
    }
    Ok(columns)
}

/// One column of one page: its non-null values, and per row whether it has one (definition
/// level 1) or is null (0).
struct ColumnValues {
    values: Values,
    levels: Vec<i16>,
}

enum Values {
    Bytes(Vec<ByteArray>),
    Int64(Vec<i64>),
    Double(Vec<f64>),
    Boolean(Vec<bool>),
}

impl ColumnValues {
    /// The column's values of `items`, or `invalid-page` for the first value it cannot hold.
    fn of(column: &Column, items: &[Item<'_>]) -> Result<Self, Error> {
        let mut values = match column.kind {
            Kind::String | Kind::Json => Values::Bytes(Vec::new()),
            Kind::Int64 => Values::Int64(Vec::new()),
            Kind::Double => Values::Double(Vec::new()),
            Kind::Boolean => Values::Boolean(Vec::new()),
        };
        let mut levels = Vec::with_capacity(items.len());
        for (index, item) in items.iter().enumerate() {
            let value = match attribute(item, &column.name) {
                None | Some(Value::Null) => {
                    levels.push(0);
                    continue;
                }
                Some(value) => value,
            };
            let refuse = |why: String| {
                Error::item(
                    index,
                    format!("column {:?} ({}) cannot hold {}{why}", column.name, column.kind.name(), describe(value)),
                )
            };
            match (&mut values, column.kind, value) {
                (Values::Bytes(v), Kind::String, Value::S(s)) => v.push(ByteArray::from(*s)),
                (Values::Bytes(v), Kind::Json, value) => {
                    let json = plain_json::to_string(value).map_err(|e| refuse(format!(": {e}")))?;
                    v.push(ByteArray::from(json.into_bytes()));
                }
                (Values::Int64(v), _, Value::N(n)) => {
                    v.push(n.parse().map_err(|_| refuse(": not an integer in the int64 range".into()))?)
                }
                (Values::Double(v), _, Value::N(n)) => match n.parse::<f64>() {
                    Ok(x) if x.is_finite() => v.push(x),
                    _ => return Err(refuse(": not a finite double".into())),
                },
                (Values::Boolean(v), _, Value::Bool(b)) => v.push(*b),
                _ => return Err(refuse(String::new())),
            }
            levels.push(1);
        }
        Ok(ColumnValues { values, levels })
    }

    fn write(&self, writer: &mut ColumnWriter<'_>) -> Result<(), ParquetError> {
        let levels = Some(&self.levels[..]);
        match (writer, &self.values) {
            (ColumnWriter::ByteArrayColumnWriter(w), Values::Bytes(v)) => w.write_batch(v, levels, None),
            (ColumnWriter::Int64ColumnWriter(w), Values::Int64(v)) => w.write_batch(v, levels, None),
            (ColumnWriter::DoubleColumnWriter(w), Values::Double(v)) => w.write_batch(v, levels, None),
            (ColumnWriter::BoolColumnWriter(w), Values::Boolean(v)) => w.write_batch(v, levels, None),
            _ => return Err(ParquetError::General("a column's writer does not match its type".into())),
        }
        .map(drop)
    }
}

/// A value, for messages: its type and, for a scalar, its text (long ones shortened).
fn describe(value: &Value<'_>) -> String {
    fn text(s: &str) -> String {
        const MAX: usize = 40;
        match s.char_indices().nth(MAX) {
            Some((end, _)) => format!("{:?}...", &s[..end]),
            None => format!("{s:?}"),
        }
    }
    match value {
        Value::S(s) => format!("S {}", text(s)),
        Value::N(n) => format!("N {}", text(n)),
        Value::B(b) => format!("B of {} bytes", b.len()),
        Value::Bool(b) => format!("BOOL {b}"),
        Value::Null => "NULL".into(),
        Value::Ss(_) => "an SS".into(),
        Value::Ns(_) => "an NS".into(),
        Value::Bs(_) => "a BS".into(),
        Value::L(_) => "an L".into(),
        Value::M(_) => "an M".into(),
    }
}

#[cfg(test)]
mod tests;
