//! The state formats of ddb-export: everything it keeps at a destination beside AWS's layout,
//! under `_ddb-export/`, and nothing that reads or writes it.
//!
//! - [`keys`]: the one place every state object's key is made;
//! - [`export`]: an export's run state and its fingerprint, shard checkpoints, failure and
//!   client-token records;
//! - [`lease`]: the lease objects and the timing rules every holder keeps;
//! - [`restore`]: a restore's plan and its per-file records.
//!
//! A run resumed on another machine, a fan-out worker and any other program that runs the
//! export's steps agree with each other only through these objects, so their shapes and keys
//! live here once, for the host and for components alike (this crate builds for
//! `wasm32-wasip2`). The I/O over them is the host's `state` layer.

pub mod export;
pub mod keys;
pub mod lease;
pub mod restore;
