//! The generated bindings of the `exporter` world. Only `crate::component` sees these types.

wasmtime::component::bindgen!({
    world: "exporter",
    path: "../wit",
});

pub use self::ddb_export::core::logging;
pub use self::ddb_export::core::types;
pub use self::exports::ddb_export::core::{shard_plan, snapshot, verify, write};
