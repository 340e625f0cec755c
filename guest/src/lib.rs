//! ddb-export's default component.
//!
//! Pure computation behind the WIT contract in `../wit`: the export's identity ([`snapshot`]),
//! its Scan segments ([`plan`]), and the data files and manifests of a full export
//! ([`encoder`], which writes [`dynamodb_json`] or [`ion_text`] lines, and [`manifest`]), and
//! the change records of an incremental export ([`incremental`], compacting the stream records
//! [`records`] reads); and the way back, an export's data files decoded into table writes
//! ([`restore`]). It performs no I/O; the host does all of it.
//!
//! Everything here also compiles natively, so the logic is unit-tested and benchmarked without
//! a WebAssembly runtime; only the `export!` in [`component`] is specific to `wasm32` (and to
//! the default `component` feature).

// Public only for crates that wrap the default component (tests/hostile); not an API.
#[doc(hidden)]
pub mod bindings;
#[doc(hidden)]
pub mod component;

mod compress;
mod data_line;

pub mod dynamodb_json;
pub mod encoder;
mod gz_lines;
pub mod ids;
pub mod incremental;
mod ion_check;
pub mod ion_text;
mod item_check;
mod json_line;
pub mod line_filter;
pub mod manifest;
/// The packed page reader, shared with plugins (`ddb-export-data-files`).
pub use ddb_export_data_files::page;
pub mod plan;
pub mod records;
pub mod restore;
#[cfg(test)]
mod roundtrip_tests;
pub mod snapshot;
#[cfg(test)]
mod test_gzip;
pub mod verify;

/// The generated WIT types the public functions of this crate take and return.
pub mod wit {
    pub use crate::bindings::ddb_export::core::types::{
        Billing, CustomFormat, ExportFormat, ExportViewType, IncrementalExportSpecification, KeyAttribute, KeyType,
        SseAlgorithm, TableDescription,
    };
    pub use crate::bindings::exports::ddb_export::core::restore::{DecodeError, WriteBatch, WriteRequest};
    pub use crate::bindings::exports::ddb_export::core::shard_plan::{Error as PlanError, Plan, PlanRequest, Shard};
    pub use crate::bindings::exports::ddb_export::core::snapshot::{
        Error as SnapshotError, ExportKeys, ExportRequest, ExportSnapshot,
    };
    pub use crate::bindings::exports::ddb_export::core::write::{
        DataFile, EncoderOptions, Error as WriteError, ExportTotals, ManifestEntry, Object, Output,
    };
}
