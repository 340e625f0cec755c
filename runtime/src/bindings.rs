//! The generated bindings of the `exporter` world and of the encoder plugin world. Only
//! the rest of this crate sees these types.

wasmtime::component::bindgen!({
    world: "exporter",
    path: "../wit",
    imports: { "ddb-export:core/compression": trappable },
    with: { "ddb-export:core/compression.gzip-stream": super::compression::GzipStream },

});

pub use self::ddb_export::core::compression;
pub use self::ddb_export::core::logging;
pub use self::ddb_export::core::types;
pub use self::exports::ddb_export::core::{incremental, restore, shard_plan, snapshot, verify, write};

/// `ddb-export:plugin`'s `encoder-plugin` world (`wit/plugin`).
pub mod plugin {
    wasmtime::component::bindgen!({
        world: "encoder-plugin",
        path: "../wit/plugin",
    });

    pub use self::exports::ddb_export::plugin::encoder;
}

/// `ddb-export:step`'s `step` world (`wit/step`): a component that runs the export's steps
/// itself over the DynamoDB and S3 imports the host supplies.
pub mod step {
    wasmtime::component::bindgen!({
        world: "step",
        path: "../wit/step",
    });

    pub use self::ddb_export::step::{dynamodb, s3};
    pub use self::exports::ddb_export::step::steps;
}
