//! An export's life, shared by every mode: the request, the claim on the export it names,
//! its start, its resumption, its publication; and the check of a stored one ([`verify`]),
//! which `verify` and `restore` share.
//!
//! Order of writes, so that a reader can trust what it sees: `_started` first, then the run's
//! saved state (`crate::state::checkpoint`), data files as shards finish them, then
//! `manifest-files.json` (+ `.md5`) and `manifest-summary.json` (+ `.md5`) last, and only when
//! every shard succeeded and every listed data file was found in the store as written. A failed
//! export has no summary.
//!
//! An export found again, by `--resume <id>` or by its client token, carries on from its
//! checkpoints: finished shards are not read again, unfinished ones scan on from their last
//! stored file, uploads the interrupted run left open are aborted, and data files it stored but
//! never recorded are deleted before the manifests list what is there.

mod claim;
mod publish;
mod request;
mod resume;
mod settings;
mod start;
pub mod verify;

pub(crate) use claim::*;
pub(crate) use publish::*;
pub use request::*;
pub(crate) use resume::*;
pub(crate) use settings::*;
pub(crate) use start::*;
