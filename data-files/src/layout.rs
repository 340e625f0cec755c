//! AWS's export layout: where each object of an export goes under a prefix. The default
//! component makes an export's keys with these functions and the host checks any component's
//! keys against them, so each rule is written once.
//!
//! ```text
//! <prefix>/AWSDynamoDB/<export id>/_started
//!                                 /data/<26 base32 characters>.json.gz   (a full export's files)
//!                                 /manifest-files.json, manifest-files.md5
//!                                 /manifest-summary.json, manifest-summary.md5
//! <prefix>/AWSDynamoDB/data/<26 base32 characters>.json.gz                (every incremental export's files)
//! ```
//!
//! ddb-export's own state beside an export (`_ddb-export/…`) is the host's business: its keys
//! are in the host's `state::keys`.

use crate::naming;

/// The folder every export under a prefix lives in.
pub const EXPORTS_FOLDER: &str = "AWSDynamoDB";
/// The extension of DynamoDB JSON data files.
pub const JSON_EXTENSION: &str = "json.gz";
/// The extension of ION data files.
pub const ION_EXTENSION: &str = "ion.gz";

/// Every key of one export, as AWS names them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExportKeys {
    /// `<prefix>/AWSDynamoDB/<export id>`.
    pub root: String,
    pub started: String,
    /// The folder of the data files, ending with `/`.
    pub data_prefix: String,
    pub manifest_files: String,
    pub manifest_files_md5: String,
    pub manifest_summary: String,
    pub manifest_summary_md5: String,
}

/// `<prefix>/AWSDynamoDB/` (or `AWSDynamoDB/` without a prefix): where the exports are.
pub fn exports_prefix(prefix: Option<&str>) -> String {
    match prefix {
        Some(prefix) => format!("{prefix}/{EXPORTS_FOLDER}/"),
        None => format!("{EXPORTS_FOLDER}/"),
    }
}

/// `<prefix>/AWSDynamoDB/<export id>`: an export's folder.
pub fn export_root(prefix: Option<&str>, export_id: &str) -> String {
    format!("{}{export_id}", exports_prefix(prefix))
}

/// The keys of export `export_id` under `prefix`. A full export's data files are in its own
/// folder; an incremental export's in the `data/` folder all of them under the prefix share.
pub fn export_keys(prefix: Option<&str>, export_id: &str, incremental: bool) -> ExportKeys {
    let root = export_root(prefix, export_id);
    let data_prefix = match incremental {
        false => format!("{root}/data/"),
        true => format!("{}data/", exports_prefix(prefix)),
    };
    ExportKeys {
        started: format!("{root}/_started"),
        data_prefix,
        manifest_files: format!("{root}/manifest-files.json"),
        manifest_files_md5: format!("{root}/manifest-files.md5"),
        manifest_summary: format!("{root}/manifest-summary.json"),
        manifest_summary_md5: format!("{root}/manifest-summary.md5"),
        root,
    }
}

/// `<data prefix><data_file_name(export, shard, sequence)>.<extension>`: the key of a shard's
/// data file number `sequence`.
pub fn data_file_key(data_prefix: &str, export_id: &str, shard_id: u32, sequence: u32, extension: &str) -> String {
    format!("{data_prefix}{}.{extension}", naming::data_file_name(export_id, shard_id, sequence))
}

/// `<folder>/<name>.<extension>` -> `<folder>/<rewritten_file_name(name)>.<extension>`: where
/// the consistent mode's rewrite of a data file goes.
pub fn rewritten_data_file_key(key: &str) -> String {
    let (folder, file) = key.rsplit_once('/').unwrap_or(("", key));
    let (name, extension) = file.split_once('.').unwrap_or((file, ""));
    format!("{folder}/{}.{extension}", naming::rewritten_file_name(name))
}

/// A data file's key must be `<data prefix><26 characters of [a-z2-7]>.<extension>`.
pub fn check_data_file_key(data_prefix: &str, extension: &str, key: &str) -> Result<(), String> {
    let name = key
        .strip_prefix(data_prefix)
        .and_then(|rest| rest.strip_suffix(extension))
        .and_then(|rest| rest.strip_suffix('.'))
        .ok_or_else(|| format!("data file key {key:?} is not <data prefix><name>.{extension}"))?;
    if is_data_file_name(name) {
        Ok(())
    } else {
        Err(format!("data file name {name:?} is not 26 characters of lowercase base32"))
    }
}

/// 26 characters of lowercase unpadded base32: what [`naming::data_file_name`] makes.
pub fn is_data_file_name(name: &str) -> bool {
    name.len() == 26 && name.bytes().all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b))
}

/// An export id: `<14 digits: the start time in ms>-<8 lowercase hex>`.
pub fn is_export_id(id: &str) -> bool {
    let bytes = id.as_bytes();
    bytes.len() == 23
        && bytes[..14].iter().all(u8::is_ascii_digit)
        && bytes[14] == b'-'
        && bytes[15..].iter().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_export_keeps_its_files_in_its_folder_an_incremental_one_in_the_shared_one() {
        let id = "01693467621041-a1b2c3d4";
        let full = export_keys(Some("p/q"), id, false);
        assert_eq!(full.root, format!("p/q/AWSDynamoDB/{id}"));
        assert_eq!(full.data_prefix, format!("p/q/AWSDynamoDB/{id}/data/"));
        assert_eq!(full.manifest_summary, format!("p/q/AWSDynamoDB/{id}/manifest-summary.json"));
        assert_eq!(full.started, format!("p/q/AWSDynamoDB/{id}/_started"));
        let incremental = export_keys(None, id, true);
        assert_eq!(incremental.root, format!("AWSDynamoDB/{id}"));
        assert_eq!(incremental.data_prefix, "AWSDynamoDB/data/");
    }

    #[test]
    fn data_file_keys_are_checked_by_the_rule_that_makes_them() {
        let key = data_file_key("r/data/", "01693467621041-a1b2c3d4", 3, 7, JSON_EXTENSION);
        assert!(check_data_file_key("r/data/", JSON_EXTENSION, &key).is_ok(), "{key}");
        assert!(check_data_file_key("r/data/", ION_EXTENSION, &key).is_err());
        assert!(check_data_file_key("other/data/", JSON_EXTENSION, &key).is_err());
        let bad = ["r/data/short.json.gz", "r/data/ABCDEFGHIJKLMNOPQRSTUVWXYZ.json.gz", "r/data/x/../y.json.gz"];
        for key in bad {
            assert!(check_data_file_key("r/data/", JSON_EXTENSION, key).is_err(), "{key}");
        }
        assert!(check_data_file_key("r/data/", JSON_EXTENSION, "r/data/abcdefghijklmnopqrstuvwxyzjson.gz").is_err());
    }

    #[test]
    fn a_rewritten_file_has_a_valid_stable_name_of_its_own() {
        let key = "p/AWSDynamoDB/01700000000000-0123abcd/data/abcdefghijklmnopqrstuvwxyz.json.gz";
        let rewritten = rewritten_data_file_key(key);
        assert_ne!(rewritten, key);
        assert!(check_data_file_key("p/AWSDynamoDB/01700000000000-0123abcd/data/", JSON_EXTENSION, &rewritten).is_ok());
        assert_eq!(rewritten, rewritten_data_file_key(key));
    }

    #[test]
    fn export_ids_are_fourteen_digits_a_dash_and_eight_lowercase_hex() {
        assert!(is_export_id("01693467621041-a1b2c3d4"));
        for bad in ["01693467621041-A1B2C3D4", "1693467621041-a1b2c3d4", "01693467621041_a1b2c3d4", "", "x"] {
            assert!(!is_export_id(bad), "{bad}");
        }
    }
}
