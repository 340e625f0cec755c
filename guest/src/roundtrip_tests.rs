//! Property tests: arbitrary DynamoDB items, packed into a page by the test-only page writer,
//! through [`ShardEncoder`], gunzipped and parsed back by serde_json (not by our writer), are the
//! items we started from; and the page reader returns what the writer wrote.
//!
//! The generators (items within DynamoDB's limits), the owned value type and the checker of an
//! encoder's output are shared with the host's e2e tests (`tests/e2e/roundtrip.rs`) in
//! `tests/support/dynamodb_values.rs`, included here by `#[path]`: this module is `#[cfg(test)]`,
//! so no other crate can import it, and the file is the one copy both sides compile. What stays
//! here is the guest's own part: turning [`Av`] into the page [`Value`]s its writer takes, and
//! driving the encoder.

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use crate::encoder::ShardEncoder;
use crate::page::{self, MAX_DEPTH, Value, writer};
use crate::snapshot;
use crate::wit::{EncoderOptions, ExportSnapshot, Output};

#[path = "../../tests/support/dynamodb_values.rs"]
mod dynamodb_values;

use dynamodb_values::{Av, Case, Event, Item, case, check_output, item, pages, runner, shrunk};

// The generators nest to the shared file's limit; the page reader enforces its own.
const _: () = assert!(dynamodb_values::MAX_DEPTH == MAX_DEPTH);

// ---------------------------------------------------------------------------------------------
// Writing pages: map entries in a shuffled order, as an SDK's hash map would give them

/// A small deterministic shuffle, so a failing case replays.
struct Shuffle(u64);

impl Shuffle {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn apply<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, (self.next() % (i as u64 + 1)) as usize);
        }
    }
}

fn borrowed<'a>(value: &'a Av, shuffle: &mut Shuffle) -> Value<'a> {
    match value {
        Av::S(s) => Value::S(s),
        Av::N(n) => Value::N(n),
        Av::B(b) => Value::B(b),
        Av::Bool(b) => Value::Bool(*b),
        Av::Null => Value::Null,
        Av::Ss(set) => Value::Ss(set.iter().map(String::as_str).collect()),
        Av::Ns(set) => Value::Ns(set.iter().map(String::as_str).collect()),
        Av::Bs(set) => Value::Bs(set.iter().map(Vec::as_slice).collect()),
        Av::L(list) => Value::L(list.iter().map(|v| borrowed(v, shuffle)).collect()),
        Av::M(map) => Value::M(borrowed_map(map, shuffle)),
    }
}

fn borrowed_map<'a>(map: &'a Item, shuffle: &mut Shuffle) -> Vec<(&'a str, Value<'a>)> {
    let mut entries: Vec<_> = map.iter().map(|(k, v)| (k.as_str(), borrowed(v, shuffle))).collect();
    shuffle.apply(&mut entries);
    entries
}

fn packed_page(items: &[Item], shuffle: &mut Shuffle) -> Vec<u8> {
    let items: Vec<_> = items.iter().map(|item| borrowed_map(item, shuffle)).collect();
    writer::page(&items)
}

// ---------------------------------------------------------------------------------------------
// Driving the encoder

fn snapshot() -> ExportSnapshot {
    snapshot::create(snapshot::tests::table(), snapshot::tests::request()).expect("a valid request")
}

fn event(output: Output) -> Event {
    match output {
        Output::FileStarted(key) => Event::Started(key),
        Output::Bytes(bytes) => Event::Bytes(bytes),
        Output::FileFinished(f) => {
            Event::Finished { key: f.key, item_count: f.item_count, md5: f.md5, size_bytes: f.size_bytes }
        }
    }
}

/// `seed` shuffles every map's entries on the way into the pages.
fn roundtrip(snapshot: &ExportSnapshot, case: &Case, seed: u64) -> Result<(), TestCaseError> {
    let options = EncoderOptions {
        shard_id: 7,
        target_file_bytes: case.target_file_bytes,
        compression_level: case.compression_level,
        first_sequence: 0,
    };
    let mut encoder = ShardEncoder::open(snapshot, options).map_err(|e| TestCaseError::fail(format!("open: {e:?}")))?;
    let mut shuffle = Shuffle(seed);
    let mut events = Vec::new();
    for page in pages(case) {
        let packed = packed_page(page, &mut shuffle);
        let output = encoder.encode_page(&packed).map_err(|e| TestCaseError::fail(format!("encode: {e:?}")))?;
        events.extend(output.into_iter().map(event));
    }
    events.extend(encoder.finish().map_err(|e| TestCaseError::fail(format!("finish: {e:?}")))?.into_iter().map(event));
    let prefix = &snapshot.keys.data_prefix;
    check_output(case, events, |key| {
        if key.starts_with(prefix) && key.ends_with(".json.gz") { Ok(()) } else { Err(format!("key {key}")) }
    })
}

#[test]
fn encoded_items_parse_back_to_the_same_items() {
    let snapshot = snapshot();
    shrunk(runner(512).run(&(case(), any::<u64>()), |(case, seed)| roundtrip(&snapshot, &case, seed | 1)));
}

#[test]
fn the_page_reader_returns_what_was_written_with_maps_sorted() {
    fn owned(value: &Value<'_>) -> Result<Av, String> {
        Ok(match value {
            Value::S(s) => Av::S(s.to_string()),
            Value::N(n) => Av::N(n.to_string()),
            Value::B(b) => Av::B(b.to_vec()),
            Value::Bool(b) => Av::Bool(*b),
            Value::Null => Av::Null,
            Value::Ss(set) => Av::Ss(set.iter().map(|s| s.to_string()).collect()),
            Value::Ns(set) => Av::Ns(set.iter().map(|s| s.to_string()).collect()),
            Value::Bs(set) => Av::Bs(set.iter().map(|b| b.to_vec()).collect()),
            Value::L(list) => Av::L(list.iter().map(owned).collect::<Result<_, _>>()?),
            Value::M(entries) => Av::M(owned_map(entries)?),
        })
    }
    fn owned_map(entries: &[(&str, Value<'_>)]) -> Result<Item, String> {
        if entries.windows(2).any(|pair| pair[0].0 >= pair[1].0) {
            return Err(format!("entries not sorted: {:?}", entries.iter().map(|e| e.0).collect::<Vec<_>>()));
        }
        entries.iter().map(|(k, v)| Ok((k.to_string(), owned(v)?))).collect()
    }
    let strategy = (vec(item(), 0..8), any::<u64>());
    shrunk(runner(512).run(&strategy, |(items, seed)| {
        let packed = packed_page(&items, &mut Shuffle(seed | 1));
        let read = page::read(&packed).map_err(|e| TestCaseError::fail(e.0))?;
        let read: Vec<Item> =
            read.iter().map(|item| owned_map(item)).collect::<Result<_, _>>().map_err(TestCaseError::fail)?;
        // Sets keep their order through a page.
        prop_assert_eq!(read, items);
        Ok(())
    }));
}
