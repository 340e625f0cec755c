//! What every ddb-export encoder shares, free of WIT types: the default component (`guest/`)
//! and the plugin SDK (`plugin-sdk/`) both build their encoders from these parts and adapt
//! them to their own generated bindings.
//!
//! - [`page`]: reading the packed page of `wit/page-format.md` into borrowed [`page::Value`]s;
//! - [`json_page`]: reading a page of DynamoDB JSON (a Scan response's `Items`) into the same;
//! - [`json_text`]: JSON strings, found and escaped eight bytes at a time;
//! - [`layout`]: AWS's export layout, where every object of an export goes;
//! - [`naming`]: the deterministic names of a shard's data files;
//! - [`summary`]: `manifest-summary.json`, one typed record for its writers and readers;
//! - [`framing`]: one data file's bytes as they leave an encoder (gzip or stored as is), with
//!   the MD5 and size the manifests record;
//! - [`shard_files`]: a shard's files one at a time, started, numbered and rolled over.

pub mod framing;
pub mod json_page;
pub mod json_text;
pub mod layout;
pub mod naming;
pub mod page;
pub mod shard_files;
pub mod summary;

pub use framing::{
    Event, FileFacts, Flate2Gzip, Framing, FramingError, Gzip, GzipLevel, InvalidLevel, NewGzip, OpenFile,
};
pub use naming::{DataFileKeys, SequencesExhausted, check_file_extension, check_output_format, data_file_name};
pub use shard_files::{ShardFiles, ShardFilesError};
