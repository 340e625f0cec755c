//! The SDK for ddb-export encoder plugins.
//!
//! A plugin writes an export's data files in a format of its own (CSV, Parquet, ...). It
//! implements one trait, [`Encoder`], and registers it with [`export_encoder!`]; built for
//! `wasm32-wasip2`, the crate is a component of the `encoder-plugin` world
//! (`wit/plugin/encoder.wit`, API version [`API_VERSION`]), which `ddb-export` runs with
//! `--encoder`.
//!
//! ```
//! use ddb_export_plugin_sdk::{Args, Encoder, Error, Item, Value};
//!
//! /// One line per item: the value of one string attribute.
//! struct Lines {
//!     attribute: String,
//! }
//!
//! impl Encoder for Lines {
//!     const NAME: &'static str = "lines";
//!     const VERSION: &'static str = env!("CARGO_PKG_VERSION");
//!     const FILE_EXTENSION: &'static str = "txt.gz";
//!     const OUTPUT_FORMAT: &'static str = "LINES";
//!
//!     fn open(args: &Args) -> Result<Self, Error> {
//!         Ok(Lines { attribute: args.required("attribute")?.to_string() })
//!     }
//!
//!     fn write_items(&mut self, items: &[Item<'_>], out: &mut Vec<u8>) -> Result<(), Error> {
//!         for (index, item) in items.iter().enumerate() {
//!             match ddb_export_plugin_sdk::attribute(item, &self.attribute) {
//!                 Some(Value::S(s)) if !s.contains('\n') => out.extend_from_slice(s.as_bytes()),
//!                 _ => return Err(Error::item(index, format!("{} is not a one-line S", self.attribute))),
//!             }
//!             out.push(b'\n');
//!         }
//!         Ok(())
//!     }
//! }
//!
//! ddb_export_plugin_sdk::export_encoder!(Lines);
//! ```
//!
//! The SDK does the rest, as the default encoder does it: it decodes the packed pages into
//! [`Item`]s, names the data files (`<data-prefix><name>.<FILE_EXTENSION>`, the name derived
//! from the export, the shard and a sequence that starts at the host's `first-sequence`),
//! keeps a page's items in one file, closes a file after the page that brings it to
//! `target-file-bytes`, gzips (or, for self-compressed formats, stores) the bytes, reports
//! each file's MD5, size and item count, refuses a page as a whole, and refuses calls after
//! `finish`. See [`ShardWriter`].
//!
//! Test a plugin natively with [`testing::run`], which drives the same code as the component.
//! Build it with `cargo build --target wasm32-wasip2 --release` (crate-type `cdylib`).

extern crate self as ddb_export_plugin_sdk;

mod args;
#[doc(hidden)]
pub mod bindings;
#[doc(hidden)]
pub mod component;
mod encoder;
mod error;
pub mod plain_json;
mod shard;
pub mod testing;
#[cfg(test)]
mod tests;

pub use args::Args;
pub use ddb_export_data_files::framing::{Event, FileFacts};
pub use ddb_export_data_files::page::{self, Item, Value, attribute};
pub use encoder::Encoder;
pub use error::Error;
pub use shard::{Options, ShardWriter};

/// The plugin API's version: the version of the WIT package `ddb-export:plugin` this SDK
/// builds against. It is part of the exported interface's name
/// (`ddb-export:plugin/encoder@0.1.0`), so every plugin carries it, and the host refuses a
/// plugin of another version.
pub const API_VERSION: &str = "0.1.0";

/// Exports the [`Encoder`] `$encoder` as the plugin's component (on `wasm32` only; natively it
/// only checks that the type is an `Encoder`). Use it once, in the plugin's crate.
#[macro_export]
macro_rules! export_encoder {
    ($encoder:ty) => {
        const _: () = {
            fn is_an_encoder<E: $crate::Encoder>() {}
            let _ = is_an_encoder::<$encoder>;
        };
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            type DdbExportPlugin = $crate::component::Component<$encoder>;
    $crate::bindings::export!(DdbExportPlugin with_types_in $crate::bindings);
        };
    };
}

#[doc(hidden)]
pub mod __private {
    pub use wit_bindgen;
}
