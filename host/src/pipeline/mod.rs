//! A shard's way from the table to the destination: scan → encode (in the component, on
//! blocking threads) → store, under a read budget, with progress; the scheduler that runs a
//! plan's shards in lanes; the consistent mode's cut, which rewrites stored files; and the step
//! component's DynamoDB and S3 imports, carried out by this host's I/O (`step_io`).

pub mod capacity;
pub mod cut;
pub mod offload;
pub mod progress;
pub mod restore;
pub mod retry;
pub mod schedule;
pub mod shard;
pub mod sink;
pub mod step_io;
