//! What an export keeps at its destination so that an interrupted run can be resumed, and a
//! client token found again: the formats of `ddb-export-state-format` (re-exported here; their
//! keys in [`crate::state::keys`]), read and written at a [`Destination`]. The destination is
//! the only state there is: a resumed run may start on another machine.

use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

pub use ddb_export_state_format::export::*;

use crate::error::ExportError;
use crate::io::destination::Destination;

/// The fingerprint of an export's encoder plugin: its SHA-256, its arguments' digest (they
/// may hold a secret, and this state is stored beside the exported data), its format.
pub fn encoder_fingerprint(plugin: &crate::runtime::EncoderPlugin) -> EncoderFingerprint {
    let args = serde_json::to_vec(plugin.args()).unwrap_or_default();
    EncoderFingerprint {
        sha256: plugin.digest().to_string(),
        args_sha256: crate::model::checksum::hex(&Sha256::digest(&args)),
        format: plugin.custom_format(),
    }
}

/// Reads a state object; `None` when it does not exist.
pub async fn load<T: DeserializeOwned>(destination: &Destination, key: &str) -> Result<Option<T>, ExportError> {
    let Some(bytes) = destination.get(key).await? else { return Ok(None) };
    parse(destination, key, &bytes).map(Some)
}

/// A state object from the bytes stored at `key`.
pub fn parse<T: DeserializeOwned>(destination: &Destination, key: &str, bytes: &[u8]) -> Result<T, ExportError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ExportError::CorruptState { location: destination.locate(key), message: e.to_string() })
}

/// Writes a state object.
pub async fn save<T: Serialize>(destination: &Destination, key: &str, value: &T) -> Result<(), ExportError> {
    let body = serde_json::to_vec_pretty(value).map_err(|e| ExportError::Internal(format!("encoding {key}: {e}")))?;
    destination.put(key, body).await.map(drop)
}
