//! Everything that talks to AWS or to the disk: the clients, a DynamoDB table (described once,
//! scanned), its stream, and the destinations an export is written to. No wasmtime here: the
//! pipeline joins what this layer reads with what the runtime encodes.

pub mod aws;
pub mod destination;
pub mod dynamodb;
pub mod items;
pub mod pack;
pub mod stream;
pub mod table_writer;
