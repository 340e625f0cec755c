//! Everything an export keeps at its destination beside AWS's layout (`_ddb-export/…`): the
//! run's saved state and checkpoints, leases, client tokens and failures; and what is read
//! back from there: the catalog of exports, their descriptions, the stored-file check.

pub use ddb_export_state_format::keys;

pub mod catalog;
pub mod checkpoint;
pub mod description;
pub mod lease;
pub mod restore;
pub mod stored;
