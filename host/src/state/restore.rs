//! A restore's state: the formats of `ddb-export-state-format` (`restore.json`, one record per
//! restored data file; keys in [`crate::state::keys`]), read and written through
//! [`crate::state::checkpoint`]'s `load` and `save`.

pub use ddb_export_state_format::restore::*;
