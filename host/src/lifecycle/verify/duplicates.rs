//! Finding the keys an export holds twice, in bounded memory whatever its size.
//!
//! Every line's key hash (16 bytes, from `verify`'s data file checker) is kept with where it
//! was (file and line). Up to [`DuplicateFinder::new`]'s limit they stay in memory; past it, they
//! are sorted and spilled to an anonymous temporary file (a sorted run), and memory starts over.
//! At the end the runs are merged, a record at a time from each, and equal hashes side by side
//! are the duplicates. Memory: the limit's records, plus a read buffer per run.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};

use crate::model::KeyHash;

/// Where a line is: the index of its data file (in the caller's list) and its line number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct LineAt {
    pub file: u32,
    pub line: u64,
}

/// One line's hash and place, as sorted and as spilled (28 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Record {
    hash: KeyHash,
    at: LineAt,
}

const RECORD_BYTES: usize = 16 + 4 + 8;

impl Record {
    fn write(&self, out: &mut impl Write) -> io::Result<()> {
        out.write_all(&self.hash)?;
        out.write_all(&self.at.file.to_le_bytes())?;
        out.write_all(&self.at.line.to_le_bytes())
    }

    fn read(input: &mut impl Read) -> io::Result<Option<Self>> {
        let mut bytes = [0u8; RECORD_BYTES];
        match input.read_exact(&mut bytes) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e),
        }
        let mut hash = [0u8; 16];
        hash.copy_from_slice(&bytes[..16]);
        let file = u32::from_le_bytes([bytes[16], bytes[17], bytes[18], bytes[19]]);
        let mut line = [0u8; 8];
        line.copy_from_slice(&bytes[20..]);
        Ok(Some(Self { hash, at: LineAt { file, line: u64::from_le_bytes(line) } }))
    }
}

/// What the merge found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Duplicates {
    /// The first pairs found (the line a key was first seen at, and one more line holding it).
    pub pairs: Vec<(LineAt, LineAt)>,
    /// Lines holding a key an earlier line holds: all of them, listed or not.
    pub count: u64,
}

/// Collects key hashes and finds the ones seen twice.
pub struct DuplicateFinder {
    memory: Vec<Record>,
    limit: usize,
    runs: Vec<File>,
}

impl DuplicateFinder {
    /// Keeps at most `limit` records in memory (28 bytes each) before it spills a run.
    pub fn new(limit: usize) -> Self {
        Self { memory: Vec::new(), limit: limit.max(1), runs: Vec::new() }
    }

    /// Adds a line's key hash.
    pub fn add(&mut self, hash: KeyHash, at: LineAt) -> io::Result<()> {
        self.memory.push(Record { hash, at });
        if self.memory.len() >= self.limit {
            self.spill()?;
        }
        Ok(())
    }

    fn spill(&mut self) -> io::Result<()> {
        self.memory.sort_unstable();
        let mut out = BufWriter::new(tempfile::tempfile()?);
        for record in &self.memory {
            record.write(&mut out)?;
        }
        let mut file = out.into_inner().map_err(|e| e.into_error())?;
        file.seek(SeekFrom::Start(0))?;
        self.runs.push(file);
        self.memory.clear();
        Ok(())
    }

    /// Merges everything added; lists at most `most` pairs (and counts them all).
    pub fn finish(mut self, most: usize) -> io::Result<Duplicates> {
        self.memory.sort_unstable();
        let memory = std::mem::take(&mut self.memory);
        let mut sources: Vec<Box<dyn Iterator<Item = io::Result<Record>>>> = Vec::new();
        sources.push(Box::new(memory.into_iter().map(Ok)));
        for file in self.runs {
            let mut reader = BufReader::with_capacity(64 * 1024, file);
            sources.push(Box::new(std::iter::from_fn(move || Record::read(&mut reader).transpose())));
        }
        let mut heap = BinaryHeap::new();
        for (index, source) in sources.iter_mut().enumerate() {
            if let Some(record) = source.next() {
                heap.push(Reverse((record?, index)));
            }
        }
        let mut found = Duplicates::default();
        let mut first: Option<Record> = None;
        while let Some(Reverse((record, index))) = heap.pop() {
            if let Some(next) = sources[index].next() {
                heap.push(Reverse((next?, index)));
            }
            match first {
                Some(seen) if seen.hash == record.hash => {
                    found.count += 1;
                    if found.pairs.len() < most {
                        found.pairs.push((seen.at, record.at));
                    }
                }
                _ => first = Some(record),
            }
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(n: u8) -> KeyHash {
        [n; 16]
    }

    fn at(file: u32, line: u64) -> LineAt {
        LineAt { file, line }
    }

    #[test]
    fn keys_seen_twice_are_found_across_spilled_runs() {
        // A limit of 3 records: the 10 lines below spill three runs and keep one in memory.
        let mut finder = DuplicateFinder::new(3);
        let lines = [(1, at(0, 1)), (2, at(0, 2)), (3, at(0, 3)), (4, at(1, 1)), (1, at(1, 2))];
        let more = [(5, at(1, 3)), (6, at(2, 1)), (4, at(2, 2)), (7, at(2, 3)), (1, at(3, 1))];
        for (key, place) in lines.into_iter().chain(more) {
            finder.add(hash(key), place).unwrap();
        }
        assert_eq!(finder.runs.len(), 3);
        let found = finder.finish(10).unwrap();
        assert_eq!(found.count, 3);
        assert_eq!(found.pairs, vec![(at(0, 1), at(1, 2)), (at(0, 1), at(3, 1)), (at(1, 1), at(2, 2))]);
    }

    #[test]
    fn distinct_keys_are_not_duplicates_and_the_listing_is_bounded() {
        let mut finder = DuplicateFinder::new(1000);
        for line in 0..500 {
            finder.add(hash((line % 250) as u8), at(0, line)).unwrap();
        }
        let found = finder.finish(2).unwrap();
        assert_eq!((found.count, found.pairs.len()), (250, 2));
        let mut finder = DuplicateFinder::new(2);
        for n in 0..100 {
            finder.add(hash(n), at(0, u64::from(n))).unwrap();
        }
        assert_eq!(finder.finish(10).unwrap(), Duplicates::default());
    }
}
