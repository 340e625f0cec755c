//! The names of a shard's data files.
//!
//! AWS draws data file names at random. Deriving them from a hash of the export, the shard and
//! the file's sequence number instead keeps their shape while letting a resumed run or a
//! fan-out worker recompute every name without coordination, and makes a rewritten file
//! replace, never duplicate, a stored one.

use md5::{Digest, Md5};
use thiserror::Error;

/// 26 characters of lowercase unpadded base32 of 16 bytes derived from the export, the shard
/// and the file's sequence number within the shard.
pub fn data_file_name(export_id: &str, shard_id: u32, sequence: u32) -> String {
    let mut md5 = Md5::new();
    // A separator byte that cannot occur in the parts, after each part.
    for part in [export_id.as_bytes(), &shard_id.to_be_bytes(), &sequence.to_be_bytes()] {
        md5.update(part);
        md5.update([0u8]);
    }
    data_encoding::BASE32_NOPAD.encode(&md5.finalize()).to_ascii_lowercase()
}

/// The name of a data file rewritten from the one named `name` (the consistent mode's cut
/// rewrites a file without some lines, under a new name, so the original stays readable until
/// the manifests stop listing it): 26 characters of lowercase base32 of 16 bytes of
/// SHA-256(`consistent:<name>`), so a resumed cut finds the same name again.
pub fn rewritten_file_name(name: &str) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(format!("consistent:{name}").as_bytes());
    data_encoding::BASE32_NOPAD.encode(&digest[..16]).to_ascii_lowercase()
}

/// The keys of one shard's data files, in order:
/// `<data-prefix><data_file_name(export, shard, sequence)>.<extension>` for sequence
/// `first_sequence`, `first_sequence + 1`, ...
#[derive(Debug, Clone)]
pub struct DataFileKeys {
    export_id: String,
    data_prefix: String,
    shard_id: u32,
    extension: String,
    /// `None` once `u32::MAX` has been used.
    next_sequence: Option<u32>,
}

/// A shard has used every sequence number up to `u32::MAX`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("shard {shard_id} has used every data file sequence number")]
pub struct SequencesExhausted {
    pub shard_id: u32,
}

impl DataFileKeys {
    /// `extension` without its leading dot (`json.gz`).
    pub fn new(export_id: &str, data_prefix: &str, shard_id: u32, extension: &str, first_sequence: u32) -> Self {
        Self {
            export_id: export_id.to_string(),
            data_prefix: data_prefix.to_string(),
            shard_id,
            extension: extension.to_string(),
            next_sequence: Some(first_sequence),
        }
    }

    /// The next file's key; each call uses up a sequence number.
    pub fn next_key(&mut self) -> Result<String, SequencesExhausted> {
        let sequence = self.next_sequence.ok_or(SequencesExhausted { shard_id: self.shard_id })?;
        self.next_sequence = sequence.checked_add(1);
        let name = data_file_name(&self.export_id, self.shard_id, sequence);
        Ok(format!("{}{name}.{}", self.data_prefix, self.extension))
    }
}

/// The rule a plugin's `outputFormat` follows (`custom-format` in `wit/types.wit`): 1 to 32 of
/// `A-Z`, `0-9` and `_`; it goes into the summary. The default component, the host, `verify`
/// and the plugin SDK all check it with this one function.
pub fn check_output_format(output_format: &str) -> Result<(), String> {
    if output_format.is_empty()
        || output_format.len() > 32
        || !output_format.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(format!("output format {output_format:?} is not 1 to 32 of A-Z, 0-9 and _"));
    }
    Ok(())
}

/// The rule a plugin's data file extension follows: 1 to 16 of `a-z`, `0-9` and `.`, without a
/// `.` at either end; it goes into every data file's key.
pub fn check_file_extension(file_extension: &str) -> Result<(), String> {
    if file_extension.is_empty()
        || file_extension.len() > 16
        || file_extension.starts_with('.')
        || file_extension.ends_with('.')
        || !file_extension.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.')
    {
        return Err(format!(
            "file extension {file_extension:?} is not 1 to 16 of a-z, 0-9 and '.', without a '.' at either end"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_file_names_are_26_base32_characters_and_distinct() {
        let a = data_file_name("01693467621041-a1b2c3d4", 0, 0);
        assert_eq!(a.len(), 26);
        assert!(a.bytes().all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b)));
        assert_ne!(a, data_file_name("01693467621041-a1b2c3d4", 0, 1));
        assert_ne!(a, data_file_name("01693467621041-a1b2c3d4", 1, 0));
    }

    #[test]
    fn data_file_names_are_stable() {
        // Resumed exports recompute stored names: this value must never change.
        assert_eq!(data_file_name("01693467621041-a1b2c3d4", 3, 7), PINNED_NAME);
    }

    const PINNED_NAME: &str = "n5l3mdnrzpwknhgk7cxmgjospq";

    #[test]
    fn keys_count_up_from_the_first_sequence_and_stop_at_the_last() {
        let mut keys = DataFileKeys::new("e", "p/data/", 2, "csv.gz", 5);
        assert_eq!(keys.next_key(), Ok(format!("p/data/{}.csv.gz", data_file_name("e", 2, 5))));
        assert_eq!(keys.next_key(), Ok(format!("p/data/{}.csv.gz", data_file_name("e", 2, 6))));
        let mut last = DataFileKeys::new("e", "p/", 2, "csv", u32::MAX);
        assert!(last.next_key().is_ok());
        assert_eq!(last.next_key(), Err(SequencesExhausted { shard_id: 2 }));
    }
}
