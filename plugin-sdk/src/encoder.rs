//! What a plugin implements.

use crate::{Args, Error, Item};

/// An encoder plugin: the format of the data files of one shard.
///
/// The SDK does everything around it: it decodes each packed page into [`Item`]s, names the
/// data files, opens one before the first item (a shard without items has none), keeps a
/// page's items in one file, closes a file after the page that brings it to the target size,
/// frames the bytes (gzip, or as they are), counts their MD5 and size, and refuses calls after
/// `finish`. Per data file it calls [`begin_file`](Self::begin_file) once, then
/// [`write_items`](Self::write_items) once per page, then [`end_file`](Self::end_file) once.
///
/// Each hook appends the bytes it produces to `out`, which the SDK puts out after the call;
/// a format that buffers (Parquet's row groups) should hand its bytes over as soon as it has
/// them, so that the file's size, and with it the roll-over, follows the data.
///
/// An encoder must be deterministic: the same arguments and pages give the same bytes (no
/// clock, no randomness, no hash-map order), so that a rerun shard rewrites a file under its
/// own name with its own MD5. [`testing::run`](crate::testing::run) checks that.
pub trait Encoder: Sized + 'static {
    /// A short name for messages, for example `csv`.
    const NAME: &'static str;
    /// The plugin's own version, for messages. There is no default, because a default here
    /// could only be the SDK's version; use `env!("CARGO_PKG_VERSION")`.
    const VERSION: &'static str;
    /// Each data file's extension without the leading dot, as the file is stored (so with
    /// `.gz` when [`GZIP`](Self::GZIP)): 1 to 16 of `a-z`, `0-9` and `.`, neither starting nor
    /// ending with `.` (for example `csv.gz`, `parquet`).
    const FILE_EXTENSION: &'static str;
    /// The manifest summary's `outputFormat`: 1 to 32 of `A-Z`, `0-9` and `_` (for example
    /// `CSV`).
    const OUTPUT_FORMAT: &'static str;
    /// Whether the SDK gzips each data file at the user's `--compression-level`. `false` for
    /// formats that compress themselves, such as Parquet: their bytes are stored as they are.
    const GZIP: bool = true;

    /// Starts an encoder for one shard from the user's `--encoder-arg` pairs. Look up every
    /// argument you take, given or not: afterwards the SDK refuses any given argument that
    /// was never looked up (see [`Args`]).
    fn open(args: &Args) -> Result<Self, Error>;

    /// Writes what a data file begins with (a CSV header, Parquet's magic). Called before the
    /// first items of every file; if that first page is then refused, the file is not started,
    /// and the next page calls `begin_file` again, so it must start afresh each time.
    fn begin_file(&mut self, out: &mut Vec<u8>) -> Result<(), Error> {
        let _ = out;
        Ok(())
    }

    /// Writes one page's items (at least one; their attributes sorted by name) into the open
    /// file.
    ///
    /// Return [`Error::InvalidPage`] (see [`Error::item`]) for an item you cannot write, and
    /// only before changing your own state: the page is then refused as a whole (the SDK
    /// discards `out`) and the encoder carries on with the next page. Any other error breaks
    /// the encoder: the SDK refuses every later call.
    fn write_items(&mut self, items: &[Item<'_>], out: &mut Vec<u8>) -> Result<(), Error>;

    /// Writes what a data file ends with (a Parquet footer). Called once per file, after the
    /// page that fills it or at `finish`.
    fn end_file(&mut self, out: &mut Vec<u8>) -> Result<(), Error> {
        let _ = out;
        Ok(())
    }
}

/// Checks an encoder's constants against the rules of `plugin-info` (which the host enforces
/// too), so that a mistake shows in the plugin's own tests.
pub(crate) fn check_info<E: Encoder>() -> Result<(), String> {
    ddb_export_data_files::check_file_extension(E::FILE_EXTENSION).map_err(|e| format!("FILE_EXTENSION: {e}"))?;
    ddb_export_data_files::check_output_format(E::OUTPUT_FORMAT).map_err(|e| format!("OUTPUT_FORMAT: {e}"))?;
    if matches!(E::OUTPUT_FORMAT, "DYNAMODB_JSON" | "ION") {
        return Err(format!("OUTPUT_FORMAT {} is the default component's", E::OUTPUT_FORMAT));
    }
    if E::NAME.is_empty() {
        return Err("NAME must not be empty".into());
    }
    Ok(())
}
