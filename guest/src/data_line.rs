//! One line of a data file, read in its format and judged by `item_check`: what `verify`'s
//! checker and `restore`'s decoder both make of a line.

use ddb_export_data_files::json_page::Arena;
use ddb_export_data_files::page::{Item, Value};

use crate::item_check::{self, Entries, KeyHash};
use crate::json_line::ChangeLine;
use crate::wit::{ExportFormat, KeyAttribute};
use crate::{ion_check, json_line};

/// What a line holds, borrowed from the line and the arena it was read into.
pub enum DataLine<'a> {
    /// A full export's `{"Item":…}`.
    Item(Item<'a>),
    /// An incremental export's change record.
    Change(ChangeLine<'a>),
}

/// The write a line asks of the table: its item put back, or its key deleted.
pub enum Write<'l, 'a> {
    Put(&'l Entries<'a>),
    Delete(Vec<(&'a str, Value<'a>)>),
}

impl<'a> DataLine<'a> {
    /// Reads `line` as a line of `format`: a change record when `incremental`, else an item.
    /// What cannot be borrowed from the line (unescaped strings, binaries) goes to `arena`.
    pub fn read(format: ExportFormat, incremental: bool, line: &'a [u8], arena: &'a Arena) -> Result<Self, String> {
        let text = || std::str::from_utf8(line).map_err(|e| format!("not UTF-8: {e}"));
        Ok(match (format, incremental) {
            (ExportFormat::DynamodbJson, false) => DataLine::Item(json_line::item_line(line, arena)?),
            (ExportFormat::DynamodbJson, true) => DataLine::Change(json_line::change_line(line, arena)?),
            (ExportFormat::Ion, false) => DataLine::Item(ion_check::item_line(text()?, arena)?),
            (ExportFormat::Ion, true) => DataLine::Change(ion_check::change_line(text()?, arena)?),
        })
    }

    /// Judges the line's item (or change record) against DynamoDB's rules and the table's
    /// key; returns its key hash.
    pub fn check(&self, key: &[KeyAttribute]) -> Result<KeyHash, String> {
        match self {
            DataLine::Item(item) => item_check::check_item(item, key),
            DataLine::Change(change) => {
                let images: Vec<(&str, &Entries<'a>)> =
                    [("NewImage", &change.new_image), ("OldImage", &change.old_image)]
                        .into_iter()
                        .filter_map(|(name, image)| image.as_deref().map(|image| (name, image)))
                        .collect();
                item_check::check_change(&change.keys, &images, key)
            }
        }
    }

    /// The write the line asks for, with its key hash (the one [`Self::check`] returns). An
    /// item's key attributes are checked (present, of the key's types), a change record as
    /// `verify` checks it; the rest of an item's rules are `verify`'s, which runs first.
    pub fn write(&self, key: &[KeyAttribute]) -> Result<(KeyHash, Write<'_, 'a>), String> {
        match self {
            DataLine::Item(item) => Ok((item_check::key_hash(item, key)?, Write::Put(item))),
            DataLine::Change(change) => {
                let hash = self.check(key)?;
                let write = match &change.new_image {
                    Some(image) => Write::Put(image),
                    // `check` found `Keys` to be key attributes only.
                    None if key.is_empty() => Write::Delete(change.keys.clone()),
                    None => Write::Delete(item_check::key_of(&change.keys, key)?),
                };
                Ok((hash, write))
            }
        }
    }
}
