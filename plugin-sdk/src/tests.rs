//! The SDK's own tests, with small encoders that show each rule.

use ddb_export_data_files::naming::data_file_name;

use crate::testing::{self, File, options, page};
use crate::{Args, Encoder, Error, Event, Item, Options, ShardWriter, Value, attribute};

/// `begin\n`, one `pk` per line, `end\n`; refuses an item without an `S` `pk`.
struct Lines {
    /// `fail-end=true`: `end_file` fails.
    fail_end: bool,
}

impl Encoder for Lines {
    const NAME: &'static str = "lines";
    const VERSION: &'static str = "1.2.3";
    const FILE_EXTENSION: &'static str = "txt.gz";
    const OUTPUT_FORMAT: &'static str = "LINES";

    fn open(args: &Args) -> Result<Self, Error> {
        Ok(Lines { fail_end: args.parse_or("fail-end", false)? })
    }

    fn begin_file(&mut self, out: &mut Vec<u8>) -> Result<(), Error> {
        out.extend_from_slice(b"begin\n");
        Ok(())
    }

    fn write_items(&mut self, items: &[Item<'_>], out: &mut Vec<u8>) -> Result<(), Error> {
        for (index, item) in items.iter().enumerate() {
            let Some(Value::S(pk)) = attribute(item, "pk") else {
                return Err(Error::item(index, "no S pk"));
            };
            out.extend_from_slice(format!("{pk}\n").as_bytes());
        }
        Ok(())
    }

    fn end_file(&mut self, out: &mut Vec<u8>) -> Result<(), Error> {
        if self.fail_end {
            return Err(Error::Other("the footer failed".into()));
        }
        out.extend_from_slice(b"end\n");
        Ok(())
    }
}

/// [`Lines`] stored as is.
struct RawLines(Lines);

impl Encoder for RawLines {
    const NAME: &'static str = "raw-lines";
    const VERSION: &'static str = "1.2.3";
    const FILE_EXTENSION: &'static str = "txt";
    const OUTPUT_FORMAT: &'static str = "LINES";
    const GZIP: bool = false;

    fn open(args: &Args) -> Result<Self, Error> {
        Lines::open(args).map(RawLines)
    }

    fn begin_file(&mut self, out: &mut Vec<u8>) -> Result<(), Error> {
        self.0.begin_file(out)
    }

    fn write_items(&mut self, items: &[Item<'_>], out: &mut Vec<u8>) -> Result<(), Error> {
        self.0.write_items(items, out)
    }

    fn end_file(&mut self, out: &mut Vec<u8>) -> Result<(), Error> {
        self.0.end_file(out)
    }
}

/// A page of items `pk` = `item-<n>` for `n` in `range`.
fn items(range: std::ops::Range<u32>) -> Vec<u8> {
    let keys: Vec<String> = range.map(|n| format!("item-{n:05}")).collect();
    page(&keys.iter().map(|k| vec![("pk", Value::S(k))]).collect::<Vec<_>>())
}

fn text(file: &File) -> String {
    String::from_utf8(file.gunzip().unwrap()).unwrap()
}

#[test]
fn one_file_per_shard_by_default_with_begin_and_end() {
    let files = testing::run::<Lines>(&[], &options(), &[items(0..2), items(2..3)]).unwrap();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].item_count, 3);
    assert_eq!(text(&files[0]), "begin\nitem-00000\nitem-00001\nitem-00002\nend\n");
}

#[test]
fn files_roll_over_after_the_page_that_reaches_the_target_and_keep_pages_whole() {
    let pages: Vec<Vec<u8>> = (0..20).map(|n| items(n * 10..n * 10 + 10)).collect();
    let target = Options { target_file_bytes: 150, compression_level: 1, ..options() };
    let files = testing::run::<Lines>(&[], &target, &pages).unwrap();
    assert!(files.len() > 2, "expected roll-over, got {} file(s)", files.len());
    let mut all = Vec::new();
    for (index, file) in files.iter().enumerate() {
        assert_eq!(file.item_count % 10, 0, "a page was split");
        // Closed after the page that reached the target: all but the last reached it, and
        // only with their last page.
        if index + 1 < files.len() {
            assert!(file.size_bytes >= 150, "{} closed at {} bytes", file.key, file.size_bytes);
        }
        let text = text(file);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!((lines[0], lines[lines.len() - 1]), ("begin", "end"));
        all.extend(lines[1..lines.len() - 1].iter().map(|l| l.to_string()));
    }
    let expected: Vec<String> = (0..200).map(|n| format!("item-{n:05}")).collect();
    assert_eq!(all, expected);
}

#[test]
fn keys_start_at_the_first_sequence_under_the_data_prefix() {
    let opts = Options { shard_id: 4, first_sequence: 7, target_file_bytes: 1, ..options() };
    let files = testing::run::<Lines>(&[], &opts, &[items(0..1), items(1..2)]).unwrap();
    let keys: Vec<&str> = files.iter().map(|f| f.key.as_str()).collect();
    let expected: Vec<String> = (7..9)
        .map(|sequence| format!("{}{}.txt.gz", opts.data_prefix, data_file_name(&opts.export_id, 4, sequence)))
        .collect();
    assert_eq!(keys, expected);
}

#[test]
fn a_shard_without_items_writes_no_file() {
    let empty = page(&[]);
    let files = testing::run::<Lines>(&[], &options(), &[empty.clone(), empty]).unwrap();
    assert!(files.is_empty());
    assert!(testing::run::<Lines>(&[], &options(), &[]).unwrap().is_empty());
}

#[test]
fn raw_framing_stores_the_plugins_bytes_as_they_are() {
    let files = testing::run::<RawLines>(&[], &options(), &[items(0..2)]).unwrap();
    assert_eq!(files.len(), 1);
    assert!(files[0].key.ends_with(".txt"));
    assert_eq!(files[0].bytes, b"begin\nitem-00000\nitem-00001\nend\n");
    let gzipped = testing::run::<Lines>(&[], &options(), &[items(0..2)]).unwrap();
    assert_eq!(gzipped[0].gunzip().unwrap(), files[0].bytes);
    assert_ne!(gzipped[0].bytes, files[0].bytes);
}

#[test]
fn the_compression_level_sets_the_gzip_level() {
    let page = items(0..200);
    let stored =
        testing::run::<Lines>(&[], &Options { compression_level: 0, ..options() }, std::slice::from_ref(&page))
            .unwrap();
    let best = testing::run::<Lines>(&[], &Options { compression_level: 9, ..options() }, &[page]).unwrap();
    assert!(stored[0].size_bytes > best[0].size_bytes * 3, "{} vs {}", stored[0].size_bytes, best[0].size_bytes);
    assert_eq!(stored[0].gunzip().unwrap(), best[0].gunzip().unwrap());
}

#[test]
fn md5_and_size_are_those_of_the_bytes_put_out() {
    // `testing::files` checks both for every file; this checks it does.
    let mut events = vec![Event::Started("k".into()), Event::Bytes(b"abc".to_vec())];
    events.push(Event::Finished(crate::FileFacts {
        key: "k".into(),
        item_count: 1,
        md5: "kAFQmDzST7DWlj99KOF/cg==".into(),
        size_bytes: 3,
    }));
    assert_eq!(testing::files(events.clone())[0].bytes, b"abc");
    events[2] = Event::Finished(crate::FileFacts {
        key: "k".into(),
        item_count: 1,
        md5: "kAFQmDzST7DWlj99KOF/cg==".into(),
        size_bytes: 4,
    });
    assert!(std::panic::catch_unwind(|| testing::files(events)).is_err());
}

#[test]
fn arguments_the_plugin_does_not_know_are_refused_by_name() {
    let err = testing::run::<Lines>(&[("fail-end", "false"), ("colour", "red")], &options(), &[]).unwrap_err();
    assert_eq!(err, Error::InvalidArguments("`colour`: is unknown: this encoder takes fail-end".into()));
    let err = testing::run::<Lines>(&[("fail-end", "yes")], &options(), &[]).unwrap_err();
    assert!(matches!(&err, Error::InvalidArguments(m) if m.starts_with("`fail-end`")), "{err}");
}

#[test]
fn a_compression_level_above_9_is_refused() {
    let err = testing::run::<Lines>(&[], &Options { compression_level: 10, ..options() }, &[]).unwrap_err();
    assert_eq!(err, Error::InvalidOptions("compression-level must be 0 to 9, not 10".into()));
}

#[test]
fn a_refused_page_emits_nothing_and_the_next_page_opens_the_first_file() {
    let mut writer = ShardWriter::<Lines>::open(&options(), Vec::<(String, String)>::new()).unwrap();
    let bad = page(&[vec![("pk", Value::S("a"))], vec![("pk", Value::N("1"))]]);
    assert_eq!(writer.encode_page(&bad).unwrap_err(), Error::InvalidPage("item 1: no S pk".into()));
    let malformed = [&1u32.to_le_bytes()[..], &[1, 1, b'a', 99]].concat();
    assert!(matches!(writer.encode_page(&malformed), Err(Error::InvalidPage(m)) if m.starts_with("item 0:")));
    let mut events = writer.encode_page(&items(0..1)).unwrap();
    events.extend(writer.finish().unwrap());
    let files = testing::files(events);
    let o = options();
    assert_eq!(files[0].key, format!("{}{}.txt.gz", o.data_prefix, data_file_name(&o.export_id, 0, 0)));
    assert_eq!(text(&files[0]), "begin\nitem-00000\nend\n");
}

#[test]
fn no_call_is_taken_after_finish() {
    let mut writer = ShardWriter::<Lines>::open(&options(), [("fail-end", "false")]).unwrap();
    writer.encode_page(&items(0..1)).unwrap();
    assert_eq!(writer.finish().unwrap().len(), 3);
    assert!(matches!(writer.encode_page(&items(1..2)), Err(Error::Other(m)) if m.contains("finished")));
    assert!(matches!(writer.finish(), Err(Error::Other(m)) if m.contains("finished")));
}

#[test]
fn an_error_after_the_file_was_touched_breaks_the_encoder() {
    let opts = Options { target_file_bytes: 1, ..options() };
    let mut writer = ShardWriter::<Lines>::open(&opts, [("fail-end", "true")]).unwrap();
    assert_eq!(writer.encode_page(&items(0..1)).unwrap_err(), Error::Other("the footer failed".into()));
    assert!(matches!(writer.encode_page(&items(1..2)), Err(Error::Other(m)) if m.contains("broke")));
}

#[test]
fn constants_that_break_plugin_info_fail_the_plugins_own_tests() {
    struct Bad;
    impl Encoder for Bad {
        const NAME: &'static str = "bad";
        const VERSION: &'static str = "0";
        const FILE_EXTENSION: &'static str = ".CSV";
        const OUTPUT_FORMAT: &'static str = "CSV";
        fn open(_: &Args) -> Result<Self, Error> {
            Ok(Bad)
        }
        fn write_items(&mut self, _: &[Item<'_>], _: &mut Vec<u8>) -> Result<(), Error> {
            Ok(())
        }
    }
    let err = testing::run::<Bad>(&[], &options(), &[]).unwrap_err();
    assert!(matches!(&err, Error::Other(m) if m.contains("FILE_EXTENSION") && m.contains("\".CSV\"")), "{err}");
}

#[test]
fn info_and_errors_map_to_the_wit_types() {
    use crate::bindings::exports::ddb_export::plugin::encoder as wit;
    let info = crate::component::info::<Lines>();
    assert_eq!(
        (info.name.as_str(), info.version.as_str(), info.file_extension.as_str(), info.output_format.as_str()),
        ("lines", "1.2.3", "txt.gz", "LINES")
    );
    assert!(matches!(wit::Error::from(Error::item(3, "why")), wit::Error::InvalidPage(m) if m == "item 3: why"));
    assert!(matches!(wit::Error::from(Error::InvalidArguments("a".into())), wit::Error::InvalidArguments(_)));
    assert!(matches!(wit::Error::from(Error::InvalidOptions("a".into())), wit::Error::InvalidOptions(_)));
    assert!(matches!(wit::Error::from(Error::Other("a".into())), wit::Error::Other(_)));
}

#[test]
fn api_version_is_the_wit_packages() {
    let wit = include_str!("../../wit/plugin/world.wit");
    assert!(wit.contains(&format!("package ddb-export:plugin@{};", crate::API_VERSION)));
}
