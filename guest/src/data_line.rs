//! One line of a data file, read in its format and judged by `item_check`: what `verify`'s
//! checker and `restore`'s decoder both make of a line.

use crate::item_check::{self, Attr, KeyHash};
use crate::json_line::{ChangeLine, Entries};
use crate::wit::{ExportFormat, KeyAttribute};
use crate::{ion_check, json_line};

/// What a line holds.
pub enum DataLine {
    /// A full export's `{"Item":…}`.
    Item(Entries),
    /// An incremental export's change record.
    Change(ChangeLine),
}

impl DataLine {
    /// Reads `text` as a line of `format`: a change record when `incremental`, else an item.
    pub fn read(format: ExportFormat, incremental: bool, text: &str) -> Result<Self, String> {
        Ok(match (format, incremental) {
            (ExportFormat::DynamodbJson, false) => DataLine::Item(json_line::item_line(text)?),
            (ExportFormat::DynamodbJson, true) => DataLine::Change(json_line::change_line(text)?),
            (ExportFormat::Ion, false) => DataLine::Item(ion_check::item_line(text)?),
            (ExportFormat::Ion, true) => DataLine::Change(ion_check::change_line(text)?),
        })
    }

    /// Judges the line's item (or change record) against DynamoDB's rules and the table's
    /// key; returns its key hash.
    pub fn check(&self, key: &[KeyAttribute]) -> Result<KeyHash, String> {
        match self {
            DataLine::Item(item) => item_check::check_item(item, key),
            DataLine::Change(change) => {
                let images: Vec<(&str, &[(String, Attr)])> =
                    [("NewImage", &change.new_image), ("OldImage", &change.old_image)]
                        .into_iter()
                        .filter_map(|(name, image)| image.as_deref().map(|image| (name, image)))
                        .collect();
                item_check::check_change(&change.keys, &images, key)
            }
        }
    }
}
