//! The foundation of ddb-export's host: plain data, no I/O.
//!
//! - the model of an export ([`Snapshot`], [`ShardPlan`], [`EncoderEvent`], …): what the WIT
//!   steps take and return, as the host holds them (the generated bindings stay inside the
//!   runtime crate);
//! - [`Field`]: the name of every setting a request has, so that an error can say which one is
//!   wrong and the command line can say it with its flag;
//! - [`time`]: now, and every form a time is read or written in;
//! - [`checksum`]: MD5 in the encodings S3 and the manifests use;
//! - [`settings`]: the defaults of an export's settings and the rules they keep;
//! - [`step`]: the step component's calls and answers (`wit/step`).
//!
//! The export layout (keys, ids, data file names) and `manifest-summary.json` are shared with
//! the component, so they live one crate lower, in `ddb-export-data-files` (re-exported here
//! as [`layout`] and [`summary`]).

pub mod checksum;
mod export;
mod field;
mod scan_filter;
pub mod settings;
pub mod step;
pub mod time;

pub use ddb_export_data_files::{layout, summary};
pub use export::*;
pub use field::Field;
pub use scan_filter::ScanFilter;
