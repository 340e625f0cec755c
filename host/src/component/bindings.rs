//! The generated bindings of the `exporter` world and of the encoder plugin world. Only
//! `crate::component` sees these types.

wasmtime::component::bindgen!({
    world: "exporter",
    path: "../wit",
});

pub use self::ddb_export::core::logging;
pub use self::ddb_export::core::types;
pub use self::exports::ddb_export::core::{shard_plan, snapshot, verify, write};

/// `ddb-export:plugin`'s `encoder-plugin` world (`wit/plugin`).
pub mod plugin {
    wasmtime::component::bindgen!({
        world: "encoder-plugin",
        path: "../wit/plugin",
    });

    pub use self::exports::ddb_export::plugin::encoder;
}
