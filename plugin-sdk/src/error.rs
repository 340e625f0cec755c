//! The error a plugin returns: the WIT `error` variant of `ddb-export:plugin/encoder`.

use std::fmt::Display;

use thiserror::Error;

/// Why a plugin could not encode. Each case becomes the WIT case of the same name, with the
/// message as its payload; the host prints it to the user, so say what and why.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Error {
    /// An `--encoder-arg` is missing, unknown or unusable.
    #[error("invalid encoder arguments: {0}")]
    InvalidArguments(String),
    /// The options the host passed are unusable.
    #[error("invalid encoder options: {0}")]
    InvalidOptions(String),
    /// A page breaks the page format, or holds an item the plugin cannot write. Returned from
    /// [`Encoder::write_items`](crate::Encoder::write_items), it also promises that the
    /// encoder is as it was before the call (see there).
    #[error("invalid page: {0}")]
    InvalidPage(String),
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

impl Error {
    /// `invalid-page` for the item at `index` in its page: `item <index>: <why>`.
    pub fn item(index: usize, why: impl Display) -> Self {
        Self::InvalidPage(format!("item {index}: {why}"))
    }

    /// `invalid-arguments` for the argument `key`: `` `<key>`: <why> ``.
    pub fn argument(key: &str, why: impl Display) -> Self {
        Self::InvalidArguments(format!("`{key}`: {why}"))
    }
}

/// An I/O error of a writer the plugin uses (its sinks are in memory, so these are rare).
impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Self::Other(format!("I/O: {e}"))
    }
}
