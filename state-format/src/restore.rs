//! What a restore keeps in its state folder (keys in [`crate::keys`]): what it
//! restores and how, with the data files it verified and their grouping into shards
//! (`restore.json`, written before the first write), one record per data file it finished
//! (`files/…`), and its report once done (`report.json`). A fanned-out restore's workers read
//! `restore.json` and nothing else to know their files.
//!
//! A data file is recorded only after every write it asked for went through; a run that
//! carries on skips the recorded ones and writes the others again from their first line,
//! which puts and deletes make harmless (the same item put twice is the item). The exports
//! of a chain are restored one after the other, so a later export's change never lands before
//! an earlier one's.

use serde::{Deserialize, Serialize};

use ddb_export_model::{ExportFormat, KeyAttribute};

/// `restore.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreRun {
    pub version: u32,
    pub client_token: String,
    /// The exports restored, in order (a full export, then incremental ones): their ARNs.
    pub exports: Vec<String>,
    /// The table written.
    pub table: String,
    /// How existing items are treated (`overwrite`, `if-absent`, `if-older <attribute>`).
    pub writes: String,
    /// Whether this restore created the table (`--create-table`): a run that carries on
    /// finds it there, and does not refuse it as a table that exists.
    pub created_table: bool,
    pub started_ms: u64,
    /// The table's key attributes, typed as the table has them.
    pub key: Vec<KeyAttribute>,
    /// Each export's data files as they were verified, in the chain's order.
    pub plan: Vec<PlannedExport>,
    /// The data files in groups, each a shard a worker restores (`restore-shard`); a shard's
    /// files are all of one export.
    pub shards: Vec<PlannedShard>,
}

/// One export of a restore, as verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedExport {
    /// Where it is: `s3://…/AWSDynamoDB/<id>` or a directory's path to it.
    pub location: String,
    pub format: ExportFormat,
    /// `FULL_EXPORT` or `INCREMENTAL_EXPORT`.
    pub export_type: String,
    pub files: Vec<PlannedFile>,
}

/// A verified data file: its key where it is now, and what the store held when it verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedFile {
    pub key: String,
    pub etag: String,
    /// base64.
    pub md5: String,
    pub items: u64,
}

/// A group of one export's data files, by their index in [`PlannedExport::files`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedShard {
    pub id: u32,
    /// The export's index in [`RestoreRun::plan`].
    pub export: usize,
    pub files: Vec<usize>,
}

/// The version of [`RestoreRun`] this build writes.
pub const RESTORE_STATE_VERSION: u32 = 1;

impl RestoreRun {
    /// What `now` asks differently, in words; empty when it is the same restore.
    pub fn differences(&self, now: &RestoreRun) -> Vec<String> {
        let mut differences = Vec::new();
        if self.exports != now.exports {
            differences.push(format!(
                "the exports: {} before, {} now",
                self.exports.join(", "),
                now.exports.join(", ")
            ));
        }
        if self.table != now.table {
            differences.push(format!("the table: {} before, {} now", self.table, now.table));
        }
        if self.writes != now.writes {
            differences.push(format!("the writes: {} before, {} now", self.writes, now.writes));
        }
        differences
    }
}

/// `files/<export>-<file>.json`: a data file whose every write went through.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RestoredFile {
    pub key: String,
    pub etag: String,
    pub puts: u64,
    pub deletes: u64,
    /// Puts a condition kept out (and deletes it skipped).
    pub skipped: u64,
    /// Write capacity its writes consumed.
    #[serde(default)]
    pub wcu: f64,
    /// Writes of it DynamoDB throttled (or left unprocessed).
    #[serde(default)]
    pub throttles: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_say_what_changed() {
        let run = RestoreRun {
            version: RESTORE_STATE_VERSION,
            client_token: "t".into(),
            exports: vec!["arn:1".into()],
            table: "t".into(),
            writes: "overwrite".into(),
            created_table: false,
            started_ms: 1,
            key: Vec::new(),
            plan: Vec::new(),
            shards: Vec::new(),
        };
        assert!(run.differences(&RestoreRun { started_ms: 2, created_table: true, ..run.clone() }).is_empty());
        let other = RestoreRun { table: "u".into(), writes: "if-absent".into(), ..run.clone() };
        assert_eq!(
            run.differences(&other),
            vec!["the table: t before, u now".to_string(), "the writes: overwrite before, if-absent now".to_string()]
        );
    }
}
