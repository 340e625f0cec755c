//! A shard's data files, written one at a time: the next file's numbered key, the open file,
//! and when it is full. The default component's encoders and the plugin SDK all write their
//! shards through it, so every encoder starts, numbers and rolls over files alike.

use thiserror::Error;

use crate::framing::{Event, Framing, FramingError, OpenFile};
use crate::naming::{DataFileKeys, SequencesExhausted};

/// Why a shard's file could not be started or written.
#[derive(Debug, Error)]
pub enum ShardFilesError {
    #[error(transparent)]
    Framing(#[from] FramingError),
    #[error(transparent)]
    Sequences(#[from] SequencesExhausted),
}

/// The data files of one shard.
pub struct ShardFiles {
    keys: DataFileKeys,
    framing: Framing,
    /// A file is full once it holds at least this many bytes; 0: never.
    target_file_bytes: u64,
    open: Option<OpenFile>,
}

impl ShardFiles {
    /// No file is open until the first [`append`](Self::append).
    pub fn new(keys: DataFileKeys, framing: Framing, target_file_bytes: u64) -> Self {
        Self { keys, framing, target_file_bytes, open: None }
    }

    /// Whether a file is open.
    pub fn is_open(&self) -> bool {
        self.open.is_some()
    }

    /// Appends `bytes`, which hold `items` items, to the open file, starting the next file
    /// first (announced in `out`) when none is open.
    pub fn append<E: From<Event>>(
        &mut self,
        bytes: &[u8],
        items: u64,
        out: &mut Vec<E>,
    ) -> Result<(), ShardFilesError> {
        let file = match &mut self.open {
            Some(file) => file,
            None => self.open.insert(OpenFile::start(self.keys.next_key()?, self.framing, out)),
        };
        file.append(bytes, items, out)?;
        Ok(())
    }

    /// Whether the open file has reached the target size (never with a target of 0, or with
    /// no file open).
    pub fn is_full(&self) -> bool {
        let target = self.target_file_bytes;
        target > 0 && self.open.as_ref().is_some_and(|file| file.size_bytes() >= target)
    }

    /// Closes the open file, if any, reporting its facts in `out`.
    pub fn close<E: From<Event>>(&mut self, out: &mut Vec<E>) -> Result<(), FramingError> {
        match self.open.take() {
            Some(file) => file.close(out),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framing::GzipLevel;
    use crate::naming::data_file_name;

    fn keys() -> DataFileKeys {
        DataFileKeys::new("e", "p/data/", 1, "txt", 3)
    }

    #[test]
    fn files_start_on_the_first_append_take_numbered_keys_and_fill_up() {
        let mut files = ShardFiles::new(keys(), Framing::Raw, 4);
        let mut events: Vec<Event> = Vec::new();
        assert!(!files.is_open() && !files.is_full());
        files.close(&mut events).unwrap();
        assert!(events.is_empty(), "closing with no file open says nothing");
        files.append(b"ab", 1, &mut events).unwrap();
        assert!(files.is_open() && !files.is_full());
        files.append(b"cd", 1, &mut events).unwrap();
        assert!(files.is_full());
        files.close(&mut events).unwrap();
        files.append(b"e", 1, &mut events).unwrap();
        files.close(&mut events).unwrap();
        let started: Vec<&str> = events
            .iter()
            .filter_map(|e| match e {
                Event::Started(key) => Some(key.as_str()),
                _ => None,
            })
            .collect();
        let name = |sequence| format!("p/data/{}.txt", data_file_name("e", 1, sequence));
        assert_eq!(started, [name(3), name(4)]);
        let counts: Vec<u64> = events
            .iter()
            .filter_map(|e| match e {
                Event::Finished(facts) => Some(facts.item_count),
                _ => None,
            })
            .collect();
        assert_eq!(counts, [2, 1]);
    }

    #[test]
    fn a_target_of_zero_never_fills_a_file() {
        let mut files = ShardFiles::new(keys(), Framing::gzip(GzipLevel::new(0).unwrap()), 0);
        let mut events: Vec<Event> = Vec::new();
        files.append(&[7; 4096], 1, &mut events).unwrap();
        assert!(!files.is_full());
    }
}
