//! The files are read back with the parquet crate's own reader.

use bytes::Bytes;
use ddb_export_plugin_sdk::testing::{self, File, files, options, page};
use ddb_export_plugin_sdk::{Event, Options, ShardWriter};
use parquet::basic::Compression;
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;

use super::*;

fn reader(file: &File) -> SerializedFileReader<Bytes> {
    SerializedFileReader::new(Bytes::copy_from_slice(&file.bytes)).unwrap()
}

/// Every row of a file, as (column, value) pairs.
fn rows(file: &File) -> Vec<Vec<(String, Field)>> {
    let reader = reader(file);
    let rows = reader.get_row_iter(None).unwrap();
    rows.map(|row| row.unwrap().get_column_iter().map(|(name, field)| (name.clone(), field.clone())).collect())
        .collect()
}

fn run(args: &[(&str, &str)], pages: &[Vec<u8>]) -> Result<Vec<File>, Error> {
    testing::run::<Parquet>(args, &options(), pages)
}

fn str(s: &str) -> Field {
    Field::Str(s.into())
}

#[test]
fn every_type_reads_back_and_missing_or_null_is_null() {
    let columns = "pk,price:double,stock:int64,active:boolean,tags:json,data:json";
    let items: Vec<Item> = vec![
        vec![
            ("pk", Value::S("a")),
            ("price", Value::N("12.5")),
            ("stock", Value::N("-9007199254740993")),
            ("active", Value::Bool(true)),
            ("tags", Value::Ss(vec!["x", "y"])),
            ("data", Value::M(vec![("n", Value::N("1.50")), ("b", Value::B(b"\xff"))])),
        ],
        vec![("pk", Value::S("b")), ("price", Value::Null), ("tags", Value::S("plain")), ("data", Value::Bool(false))],
    ];
    let files = run(&[("columns", columns)], &[page(&items)]).unwrap();
    assert_eq!(files.len(), 1);
    assert!(files[0].key.ends_with(".parquet"));
    assert_eq!(&files[0].bytes[..4], b"PAR1", "stored as is, not gzipped");
    let expected = vec![
        vec![
            ("pk".to_string(), str("a")),
            ("price".to_string(), Field::Double(12.5)),
            ("stock".to_string(), Field::Long(-9007199254740993)),
            ("active".to_string(), Field::Bool(true)),
            ("tags".to_string(), str(r#"["x","y"]"#)),
            ("data".to_string(), str(r#"{"b":"/w==","n":1.50}"#)),
        ],
        vec![
            ("pk".to_string(), str("b")),
            ("price".to_string(), Field::Null),
            ("stock".to_string(), Field::Null),
            ("active".to_string(), Field::Null),
            ("tags".to_string(), str(r#""plain""#)),
            ("data".to_string(), str("false")),
        ],
    ];
    assert_eq!(rows(&files[0]), expected);
}

#[test]
fn the_schema_is_optional_typed_columns_in_argument_order() {
    let files = run(&[("columns", "a:string,b:int64,c:double,d:boolean,e:json")], &[page(&[vec![]])]).unwrap();
    let reader = reader(&files[0]);
    let schema = reader.metadata().file_metadata().schema_descr();
    let described: Vec<String> = schema
        .columns()
        .iter()
        .map(|c| {
            let t = c.self_type();
            format!(
                "{} {} {:?} {:?}",
                t.get_basic_info().repetition(),
                c.name(),
                c.physical_type(),
                c.logical_type_ref()
            )
        })
        .collect();
    assert_eq!(
        described,
        [
            "OPTIONAL a BYTE_ARRAY Some(String)",
            "OPTIONAL b INT64 None",
            "OPTIONAL c DOUBLE None",
            "OPTIONAL d BOOLEAN None",
            "OPTIONAL e BYTE_ARRAY Some(String)",
        ]
    );
}

#[test]
fn each_page_is_a_row_group_compressed_as_asked() {
    let pages: Vec<Vec<u8>> = ["a", "b", "c"].iter().map(|k| page(&[vec![("pk", Value::S(k))]])).collect();
    for (args, codec) in [
        (vec![("columns", "pk")], Compression::SNAPPY),
        (vec![("columns", "pk"), ("compression", "none")], Compression::UNCOMPRESSED),
    ] {
        let files = run(&args, &pages).unwrap();
        let reader = reader(&files[0]);
        let groups = reader.metadata().row_groups();
        assert_eq!(groups.len(), 3);
        assert!(groups.iter().all(|g| g.num_rows() == 1 && g.column(0).compression() == codec));
    }
}

#[test]
fn bytes_leave_with_each_page_so_files_roll_over_by_size() {
    let keys: Vec<String> = (0..300).map(|n| format!("item-{n:04}")).collect();
    let pages: Vec<Vec<u8>> =
        keys.chunks(30).map(|c| page(&c.iter().map(|k| vec![("pk", Value::S(k))]).collect::<Vec<_>>())).collect();
    let mut writer = ShardWriter::<Parquet>::open(&options(), [("columns", "pk")]).unwrap();
    let events = writer.encode_page(&pages[0]).unwrap();
    let put_out: usize = events.iter().map(|e| if let Event::Bytes(b) = e { b.len() } else { 0 }).sum();
    assert!(put_out > 100, "the first row group left with its page ({put_out} bytes)");

    let opts = Options { target_file_bytes: 600, ..options() };
    let files = testing::run::<Parquet>(&[("columns", "pk")], &opts, &pages).unwrap();
    assert!(files.len() > 1, "expected roll-over, got {} file(s)", files.len());
    let read: Vec<Field> = files.iter().flat_map(rows).map(|mut row| row.remove(0).1).collect();
    assert_eq!(read, keys.iter().map(|k| str(k)).collect::<Vec<_>>());
}

#[test]
fn a_value_of_the_wrong_type_refuses_the_page_naming_item_column_and_value() {
    let refused = |columns: &str, value: Value<'static>| {
        let items = vec![vec![("x", Value::S("ok"))], vec![("v", value)]];
        match run(&[("columns", columns)], &[page(&items)]) {
            Err(Error::InvalidPage(message)) => message,
            other => panic!("expected invalid-page, got {other:?}"),
        }
    };
    assert_eq!(
        refused("v:int64", Value::N("abc")),
        "item 1: column \"v\" (int64) cannot hold N \"abc\": not an integer in the int64 range"
    );
    assert_eq!(refused("v:boolean", Value::S("true")), "item 1: column \"v\" (boolean) cannot hold S \"true\"");
    assert!(refused("v:int64", Value::N("1.5")).contains("N \"1.5\": not an integer"));
    assert!(refused("v:int64", Value::N("9223372036854775808")).contains("int64 range"));
    assert!(refused("v:double", Value::N("1e400")).contains("not a finite double"));
    assert!(refused("v:double", Value::N("NaN")).contains("not a finite double"));
    assert_eq!(refused("v", Value::N("1")), "item 1: column \"v\" (string) cannot hold N \"1\"");
    assert!(refused("v:string", Value::L(vec![])).ends_with("cannot hold an L"));
    assert!(
        refused("v:json", Value::Ns(vec!["0x1"]))
            .ends_with("cannot hold an NS: the number \"0x1\" is not a JSON number")
    );
}

#[test]
fn a_refused_page_changes_nothing() {
    let mut writer = ShardWriter::<Parquet>::open(&options(), [("columns", "n:int64")]).unwrap();
    let mut events = writer.encode_page(&page(&[vec![("n", Value::N("1"))]])).unwrap();
    assert!(writer.encode_page(&page(&[vec![("n", Value::N("2"))], vec![("n", Value::N("x"))]])).is_err());
    events.extend(writer.encode_page(&page(&[vec![("n", Value::N("3"))]])).unwrap());
    events.extend(writer.finish().unwrap());
    let files = files(events);
    assert_eq!(files[0].item_count, 2);
    assert_eq!(reader(&files[0]).metadata().num_row_groups(), 2);
    let read: Vec<Field> = rows(&files[0]).into_iter().map(|mut row| row.remove(0).1).collect();
    assert_eq!(read, [Field::Long(1), Field::Long(3)]);
}

#[test]
fn a_refused_first_page_starts_the_file_afresh() {
    let mut writer = ShardWriter::<Parquet>::open(&options(), [("columns", "n:int64")]).unwrap();
    assert!(writer.encode_page(&page(&[vec![("n", Value::S("x"))]])).is_err());
    let mut events = writer.encode_page(&page(&[vec![("n", Value::N("7"))]])).unwrap();
    events.extend(writer.finish().unwrap());
    let files = files(events);
    assert_eq!(rows(&files[0]), [vec![("n".to_string(), Field::Long(7))]]);
}

#[test]
fn bad_arguments_are_refused_naming_the_problem() {
    let refused = |args: &[(&str, &str)]| match run(args, &[]) {
        Err(Error::InvalidArguments(message)) => message,
        other => panic!(
            "expected invalid-arguments, got {}",
            other.map(|f| f.len().to_string()).unwrap_or_else(|e| e.to_string())
        ),
    };
    assert!(refused(&[]).contains("`columns`: is required"));
    assert!(refused(&[("columns", "a:float")]).contains("\"a:float\" has the unknown type \"float\""));
    assert!(refused(&[("columns", "a,,b")]).contains("empty column name"));
    assert!(refused(&[("columns", ":int64")]).contains("empty column name"));
    assert!(refused(&[("columns", "a:int64,a")]).contains("names the column \"a\" twice"));
    assert_eq!(refused(&[("columns", "a"), ("compression", "zstd")]), "`compression`: \"zstd\" is not snappy or none");
    assert!(refused(&[("columns", "a"), ("level", "3")]).starts_with("`level`: is unknown"));
}

#[test]
fn a_name_with_a_colon_takes_an_explicit_type() {
    let files = run(&[("columns", "a:b:string")], &[page(&[vec![("a:b", Value::S("v"))]])]).unwrap();
    assert_eq!(rows(&files[0]), [vec![("a:b".to_string(), str("v"))]]);
}
