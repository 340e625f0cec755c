//! Every key of a state object, made here and nowhere else.
//!
//! Beside an export's own objects, under `<root>/_ddb-export/`:
//! - `run.json`: its [`RunState`](crate::export::RunState), written once, after `_started` and
//!   before any data file;
//! - `shards/<id>.json`: a [`ShardCheckpoint`](crate::export::ShardCheckpoint) per shard,
//!   rewritten whenever the shard has stored a data file; deleted once the export is complete;
//! - `failed.json`: a [`FailureRecord`](crate::export::FailureRecord), when a run ended with an
//!   error (not when it was killed); removed when a run resumes the export;
//! - `incremental.json`: an [`IncrementalFiles`](crate::export::IncrementalFiles);
//! - `leases/<shard>.json`, `leases/export.json`: [leases](crate::lease);
//! - `keys/<data file>.keys`, `consistent.json`, `cut-keys`: the consistent mode's cut;
//! - `restores/<sha256 of a token>/…`: a [restore](crate::restore) kept beside the export;
//!
//! and, at the bucket's (or directory's) root, `_ddb-export/client-tokens/<sha256 of the
//! token>.json` (a [`TokenRecord`](crate::export::TokenRecord)) and its `.lease.json`. A token is
//! scoped to the bucket, not the prefix, so that the same token with another prefix is refused,
//! as AWS refuses it. Tokens are hashed: they may be anything printable, and a key should not
//! reveal one. AWS's layout has none of these objects; readers of an export go by
//! `manifest-files.json`, which never lists them.

use ddb_export_model::checksum::hex;
use sha2::{Digest, Sha256};

/// Folder of the state objects, under an export's root or a bucket's.
pub const STATE_DIR: &str = "_ddb-export";

/// `<root>/_ddb-export/`: the folder of an export's own state.
pub fn state_prefix(export_root: &str) -> String {
    format!("{export_root}/{STATE_DIR}/")
}

/// `<root>/_ddb-export/run.json`.
pub fn run_key(export_root: &str) -> String {
    format!("{}run.json", state_prefix(export_root))
}

/// `<root>/_ddb-export/failed.json`.
pub fn failure_key(export_root: &str) -> String {
    format!("{}failed.json", state_prefix(export_root))
}

/// `<root>/_ddb-export/incremental.json`.
pub fn incremental_key(export_root: &str) -> String {
    format!("{}incremental.json", state_prefix(export_root))
}

/// `<root>/_ddb-export/shards/`.
pub fn shards_prefix(export_root: &str) -> String {
    format!("{}shards/", state_prefix(export_root))
}

/// `<root>/_ddb-export/shards/<shard, 7 digits>.json`.
pub fn shard_key(export_root: &str, shard: u32) -> String {
    format!("{}{shard:07}.json", shards_prefix(export_root))
}

/// `_ddb-export/client-tokens/<sha256 of the token>.json`, at the bucket's root.
pub fn token_key(client_token: &str) -> String {
    format!("{STATE_DIR}/client-tokens/{}.json", sha256_hex(client_token))
}

/// The lease held while a client token's export is found or started, beside its record.
pub fn token_lease_key(client_token: &str) -> String {
    format!("{STATE_DIR}/client-tokens/{}.lease.json", sha256_hex(client_token))
}

/// `<root>/_ddb-export/leases/`.
pub fn leases_prefix(export_root: &str) -> String {
    format!("{}leases/", state_prefix(export_root))
}

/// The lease of fan-out shard `shard`.
pub fn shard_lease_key(export_root: &str, shard: u32) -> String {
    format!("{}{shard:07}.json", leases_prefix(export_root))
}

/// The lease on a whole export (an `export` run's, `finalize`'s).
pub fn export_lease_key(export_root: &str) -> String {
    format!("{}export.json", leases_prefix(export_root))
}

/// `<root>/_ddb-export/keys/`: the consistent mode's key hashes of each data file.
pub fn key_hashes_prefix(export_root: &str) -> String {
    format!("{}keys/", state_prefix(export_root))
}

/// Where one data file's key hashes are kept (by the file's name).
pub fn key_hashes_key(export_root: &str, data_file_key: &str) -> String {
    let name = data_file_key.rsplit('/').next().unwrap_or(data_file_key);
    format!("{}{name}.keys", key_hashes_prefix(export_root))
}

/// `<root>/_ddb-export/consistent.json`: the cut's progress.
pub fn cut_state_key(export_root: &str) -> String {
    format!("{}consistent.json", state_prefix(export_root))
}

/// `<root>/_ddb-export/cut-keys`: the hashes of the keys the stream changed before the cut.
pub fn changed_keys_key(export_root: &str) -> String {
    format!("{}cut-keys", state_prefix(export_root))
}

/// `<base>/_ddb-export/restores/<sha256 of the token>/`: the state of one restore, kept beside
/// the export it restores (`base` is its root) or under `--state` (`base` is that location's
/// prefix, empty for a bucket's or directory's root).
pub fn restore_prefix(base: &str, client_token: &str) -> String {
    let digest = sha256_hex(client_token);
    match base.trim_end_matches('/') {
        "" => format!("{STATE_DIR}/restores/{digest}/"),
        base => format!("{base}/{STATE_DIR}/restores/{digest}/"),
    }
}

/// `<restore>/restore.json`: a [`RestoreRun`](crate::restore::RestoreRun).
pub fn restore_run_key(restore_prefix: &str) -> String {
    format!("{restore_prefix}restore.json")
}

/// `<restore>/report.json`: the finished restore's report.
pub fn restore_report_key(restore_prefix: &str) -> String {
    format!("{restore_prefix}report.json")
}

/// `<restore>/files/`: the [`RestoredFile`](crate::restore::RestoredFile) records.
pub fn restored_files_prefix(restore_prefix: &str) -> String {
    format!("{restore_prefix}files/")
}

/// `<restore>/files/<export>-<file>.json`: one restored data file (the chain's `export`-th
/// export, its listing's `file`-th data file).
pub fn restored_file_key(restore_prefix: &str, export: usize, file: usize) -> String {
    format!("{}{export:04}-{file:07}.json", restored_files_prefix(restore_prefix))
}

fn sha256_hex(text: &str) -> String {
    hex(&Sha256::digest(text.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_keys_sit_under_its_state_folder() {
        assert_eq!(run_key("p/AWSDynamoDB/x"), "p/AWSDynamoDB/x/_ddb-export/run.json");
        assert_eq!(shard_key("p/AWSDynamoDB/x", 12), "p/AWSDynamoDB/x/_ddb-export/shards/0000012.json");
        assert_eq!(shard_lease_key("p/AWSDynamoDB/x", 3), "p/AWSDynamoDB/x/_ddb-export/leases/0000003.json");
        assert_eq!(export_lease_key("p/AWSDynamoDB/x"), "p/AWSDynamoDB/x/_ddb-export/leases/export.json");
        assert_eq!(
            key_hashes_key("AWSDynamoDB/x", "AWSDynamoDB/x/data/abc.json.gz"),
            "AWSDynamoDB/x/_ddb-export/keys/abc.json.gz.keys"
        );
        for key in [failure_key("r"), incremental_key("r"), cut_state_key("r"), changed_keys_key("r")] {
            assert!(key.starts_with(&state_prefix("r")), "{key}");
        }
    }

    #[test]
    fn token_keys_hide_the_token() {
        let key = token_key("my secret token");
        assert!(key.starts_with("_ddb-export/client-tokens/") && key.ends_with(".json"), "{key}");
        assert!(!key.contains("secret"));
        assert_ne!(key, token_key("another token"));
        let lease = token_lease_key("my secret token");
        assert_eq!(lease.replace(".lease.json", ".json"), key);
    }

    #[test]
    fn restore_keys_hide_the_token_and_sit_under_their_base() {
        let beside = restore_prefix("p/AWSDynamoDB/01", "secret");
        assert!(beside.starts_with("p/AWSDynamoDB/01/_ddb-export/restores/") && beside.ends_with('/'), "{beside}");
        assert!(!beside.contains("secret"));
        assert!(restore_prefix("", "secret").starts_with("_ddb-export/restores/"));
        assert_eq!(restore_prefix("q/", "t"), restore_prefix("q", "t"));
        assert_eq!(restored_file_key("r/", 1, 12), "r/files/0001-0000012.json");
        assert!(restored_file_key("r/", 1, 12).starts_with(&restored_files_prefix("r/")));
    }
}
