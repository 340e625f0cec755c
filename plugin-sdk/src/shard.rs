//! The encoder of one shard: everything the WIT `encoder` resource does, around a plugin's
//! [`Encoder`], with no generated types (so it also runs natively, in tests).

use ddb_export_data_files::framing::{Event, Framing, GzipLevel};
use ddb_export_data_files::naming::DataFileKeys;
use ddb_export_data_files::page;
use ddb_export_data_files::shard_files::ShardFiles;

use crate::encoder::check_info;
use crate::{Args, Encoder, Error};

/// Where one shard's data files go and how large they get: the WIT `encoder-options`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The export's id; data file names derive from it, `shard_id` and a sequence.
    pub export_id: String,
    /// Every data file's key is `<data_prefix><26 characters of [a-z2-7]>.<FILE_EXTENSION>`.
    pub data_prefix: String,
    /// The shard this encoder writes for.
    pub shard_id: u32,
    /// A data file is closed after the page that brings its size to at least this many
    /// bytes. 0: one data file for the whole shard.
    pub target_file_bytes: u64,
    /// `--compression-level`, 0 to 9: the gzip level when [`Encoder::GZIP`].
    pub compression_level: u8,
    /// Sequence number of the first data file.
    pub first_sequence: u32,
}

/// Whether a [`ShardWriter`] takes more calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Accepting,
    Finished,
    /// An error left the open file or the plugin's state unknown.
    Broken,
}

/// One shard's data files, written by the plugin's [`Encoder`]: the state behind the WIT
/// `encoder` resource. [`testing`](crate::testing) drives it natively.
pub struct ShardWriter<E: Encoder> {
    encoder: E,
    files: ShardFiles,
    state: State,
    /// The plugin's output for one call, reused.
    buffer: Vec<u8>,
}

impl<E: Encoder> ShardWriter<E> {
    /// Checks the options, opens the plugin's encoder with `args` and refuses any argument
    /// it did not look up. Opens no file yet.
    pub fn open<K: Into<String>, V: Into<String>>(
        options: &Options,
        args: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Self, Error> {
        check_info::<E>().map_err(|why| Error::Other(format!("the plugin {} is broken: {why}", E::NAME)))?;
        let level = GzipLevel::new(options.compression_level).map_err(|e| Error::InvalidOptions(e.to_string()))?;
        let args = Args::new(args)?;
        let encoder = E::open(&args)?;
        args.check_all_known()?;
        Ok(Self {
            encoder,
            files: ShardFiles::new(
                DataFileKeys::new(
                    &options.export_id,
                    &options.data_prefix,
                    options.shard_id,
                    E::FILE_EXTENSION,
                    options.first_sequence,
                ),
                if E::GZIP { Framing::gzip(level) } else { Framing::Raw },
                options.target_file_bytes,
            ),
            state: State::Accepting,
            buffer: Vec::new(),
        })
    }

    /// Encodes one packed page (`wit/page-format.md`). All-or-nothing: on error no event of
    /// this page is returned; after an `invalid-page` error the writer takes the next page.
    pub fn encode_page(&mut self, page: &[u8]) -> Result<Vec<Event>, Error> {
        self.check_accepting()?;
        let items = page::read(page).map_err(|e| Error::InvalidPage(e.0))?;
        if items.is_empty() {
            return Ok(Vec::new());
        }
        self.buffer.clear();
        let starts_a_file = !self.files.is_open();
        let written = if starts_a_file { self.encoder.begin_file(&mut self.buffer) } else { Ok(()) }
            .and_then(|()| self.encoder.write_items(&items, &mut self.buffer));
        if let Err(error) = written {
            if !matches!(error, Error::InvalidPage(_)) {
                self.state = State::Broken;
            }
            return Err(error);
        }
        let mut events = Vec::new();
        // From here on nothing depends on the page: a failure leaves the file unusable.
        let committed = self.commit(items.len() as u64, &mut events);
        if committed.is_err() {
            self.state = State::Broken;
        }
        committed.map(|()| events)
    }

    /// Closes the open file, if any. The writer takes no more calls, whatever the outcome.
    pub fn finish(&mut self) -> Result<Vec<Event>, Error> {
        self.check_accepting()?;
        self.state = State::Finished;
        let mut events = Vec::new();
        if self.files.is_open() {
            self.close(&mut events)?;
        }
        Ok(events)
    }

    /// Puts the page's bytes (in `buffer`) into the open file, starting one if needed, and
    /// closes the file when it has reached the target size.
    fn commit(&mut self, items: u64, events: &mut Vec<Event>) -> Result<(), Error> {
        self.files.append(&self.buffer, items, events).map_err(|e| Error::Other(e.to_string()))?;
        if self.files.is_full() { self.close(events) } else { Ok(()) }
    }

    /// Lets the plugin end the open file, then closes it.
    fn close(&mut self, events: &mut Vec<Event>) -> Result<(), Error> {
        self.buffer.clear();
        self.encoder.end_file(&mut self.buffer)?;
        if !self.buffer.is_empty() {
            self.files.append(&self.buffer, 0, events).map_err(|e| Error::Other(e.to_string()))?;
        }
        self.files.close(events).map_err(|e| Error::Other(e.to_string()))
    }

    fn check_accepting(&self) -> Result<(), Error> {
        match self.state {
            State::Accepting => Ok(()),
            State::Finished => Err(Error::Other("the encoder has finished: it takes no more calls".into())),
            State::Broken => Err(Error::Other("an earlier error broke the encoder: it takes no more calls".into())),
        }
    }
}
